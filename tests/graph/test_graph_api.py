"""The graph vocabulary: >>, pipelines, names, inputs, containers, custom layers, blocks,
namespaces, optional values."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, LayerError, ShapeError

rng = np.random.default_rng(0)


def x4():
    return ax.input("x", shape=(None, 4))


def test_pipeline_is_an_immutable_sequence():
    p = ax.dense(8) >> ax.relu() >> ax.dense(2)
    assert isinstance(p, ax.Pipeline) and len(p) == 3
    assert [layer.op for layer in p] == ["dense", "relu", "dense"]
    assert repr(p[1]) == "relu()" and isinstance(p[1:], ax.Pipeline) and len(p[1:]) == 2
    assert [lay.op for lay in p.replace(1, ax.tanh())] == ["dense", "tanh", "dense"]
    assert [lay.op for lay in p.insert(3, ax.softmax())][-1] == "softmax"
    assert [lay.op for lay in p.insert(0, ax.layer_norm())][0] == "layer_norm"
    assert [lay.op for lay in p.remove(-1)] == ["dense", "relu"]
    assert len(p) == 3  # unchanged
    with pytest.raises(AttributeError):
        p.layers = ()
    with pytest.raises(InvalidArgumentError, match="index 3 is out of range"):
        p.remove(3)
    assert ax.Pipeline([p[0], p[1]]) == p[:2] and p[:2] != p[1:]


def test_pipeline_and_chain_build_the_same_model():
    p = ax.Pipeline(ax.dense(3, name="a"), ax.tanh(), ax.dense(2, name="b"))
    m1 = x4() >> p
    m2 = x4() >> ax.dense(3, name="a") >> ax.tanh() >> ax.dense(2, name="b")
    state = ax.init(m1, key=3)
    x = rng.standard_normal((5, 4))
    np.testing.assert_allclose(ax.predict(m1, state, x), ax.predict(m2, state, x))
    np.testing.assert_allclose(ax.predict(m1, state, x), ax.predict(p(x4()), state, x))


def test_layer_called_directly_or_with_input_first():
    x = x4()
    assert ax.dense(x, 3).op == "dense" and ax.dense(3)(x).op == "dense"
    assert isinstance(ax.dense(3), ax.Layer)


@pytest.mark.parametrize("left", [np.ones(3), 5, "x", [1, 2]])
def test_non_node_on_the_left_of_rshift(left):
    with pytest.raises(AxonTypeError, match="left-hand side must be a model node"):
        left >> ax.dense(3)


def test_non_layer_on_the_right_of_rshift():
    with pytest.raises(AxonTypeError, match="right-hand side must be a layer"):
        x4() >> np.tanh
    with pytest.raises(AxonTypeError, match="right-hand side must be a layer"):
        ax.relu() >> 3


def test_constructor_options_are_checked_when_written():
    with pytest.raises(InvalidArgumentError, match="units"):
        ax.dense(0)
    with pytest.raises(AxonTypeError, match="unexpected keyword argument 'unit'"):
        ax.dense(3, unit=3)
    with pytest.raises(InvalidArgumentError, match="unknown activation 'rleu'"):
        ax.dense(3, activation="rleu")


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rate_outside_unit_interval(rate):
    for constructor in (ax.dropout, ax.alpha_dropout, ax.spatial_dropout,
                        ax.feature_alpha_dropout):
        with pytest.raises(InvalidArgumentError, match=r"`rate` must lie in \[0, 1\)"):
            constructor(rate)


def test_default_names_count_per_op_in_graph_order():
    model = x4() >> ax.dense(3) >> ax.relu() >> ax.dense(2, name="head") >> ax.dense(2)
    state = ax.init(model, key=0)
    assert list(state.trainable) == ["dense_0", "head", "dense_1"]
    lines = []
    ax.summary(model, print_fn=lines.append)
    assert [line.split()[0] for line in lines[1:-1]] == ["x", "dense_0", "relu_0", "head",
                                                         "dense_1"]


def test_default_names_skip_explicit_ones():
    model = x4() >> ax.dense(3, name="dense_0") >> ax.dense(2)
    assert list(ax.init(model, key=0).trainable) == ["dense_0", "dense_1"]


def test_duplicate_layer_names():
    x = x4()
    model = ax.add(x >> ax.dense(3, name="proj"), x >> ax.dense(3, name="proj"))
    with pytest.raises(InvalidArgumentError, match="duplicate layer name 'proj'"):
        ax.build(model)
    with pytest.raises(InvalidArgumentError, match="duplicate layer name 'x'"):
        ax.build(ax.add(x, ax.input("x", shape=(None, 4))))


def test_unknown_missing_and_extra_inputs_list_what_the_model_expects():
    a, b = ax.input("a", shape=(None, 2)), ax.input("b", shape=(None, 2), dtype="float32")
    model = ax.add(a, b)
    state = ax.init(model)
    ones = np.ones((1, 2), np.float32)
    with pytest.raises(InvalidArgumentError,
                       match=r"unknown input 'c'; the model expects: 'a' \(shape \(None, 2\)\), "
                             r"'b' \(shape \(None, 2\), float32\)"):
        ax.predict(model, state, {"a": ones, "b": ones, "c": ones})
    with pytest.raises(InvalidArgumentError, match="missing input 'b'"):
        ax.predict(model, state, {"a": ones})
    with pytest.raises(AxonTypeError, match="has 2 inputs; pass a dict"):
        ax.predict(model, state, ones)


def test_wrong_input_rank_size_and_dtype():
    model = ax.input("x", shape=(None, 4), dtype="float32") >> ax.dense(2)
    state = ax.init(model)
    with pytest.raises(ShapeError, match=r"input 'x' expected shape \(None, 4\).*got \(2, 4, 1\)"):
        ax.predict(model, state, np.ones((2, 4, 1)))
    with pytest.raises(ShapeError, match=r"got \(2, 5\)"):
        ax.predict(model, state, np.ones((2, 5)))
    with pytest.raises(AxonTypeError, match="expected dtype float32, got int64"):
        ax.predict(model, state, np.ones((2, 4), np.int64))
    with pytest.raises(ShapeError, match="input 'x' expected shape"):
        ax.init(model, np.ones((4,)))
    assert ax.predict(model, state, np.ones((2, 4))).shape == (2, 2)  # float64 is a float


def test_mismatched_add_shapes_name_the_layer():
    x = x4()
    model = ax.add(x >> ax.dense(3), x >> ax.dense(5))
    with pytest.raises(ShapeError, match=r"layer 'add_0' \(op add\) failed on inputs of shape "
                                         r"\(1, 3\), \(1, 5\)"):
        ax.init(model)


def test_failure_inside_a_layer_names_layer_op_and_shapes():
    model = x4() >> ax.nx(lambda v: ax.ops.matmul(v, np.ones((3, 3))), name="bad")
    with pytest.raises(ShapeError, match=r"layer 'bad' \(op nx\) failed on inputs of shape "
                                         r"\(1, 4\): matmul"):
        ax.init(model)

    def boom(v):
        raise RuntimeError("kaput")

    model = x4() >> ax.nx(boom)
    with pytest.raises(LayerError, match=r"layer 'nx_0' \(op nx\).*\(2, 4\): kaput") as info:
        ax.predict(model, {}, np.ones((2, 4)))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_container_gives_multi_output_and_multi_input():
    a, b = ax.input("a", shape=(None, 2)), ax.input("b", shape=(None, 3))
    joined = ax.concatenate(a, b)
    model = ax.container({"sum": joined >> ax.dense(1), "parts": (a, b >> ax.relu())})
    state = ax.init(model)
    va, vb = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    out = ax.predict(model, state, {"a": va, "b": vb})
    k, bias = state["dense_0"]["kernel"], state["dense_0"]["bias"]
    np.testing.assert_allclose(out["sum"], np.concatenate([va, vb], 1) @ k + bias, rtol=1e-6)
    np.testing.assert_array_equal(out["parts"][0], va)
    np.testing.assert_array_equal(out["parts"][1], np.maximum(vb, 0))
    # build accepts a plain dict of nodes too
    assert ax.get_output_shape({"a": a, "j": joined}) == {"a": (1, 2), "j": (1, 5)}
    with pytest.raises(AxonTypeError, match="container: the value at k must be a model node"):
        ax.container({"k": 3})


def test_constant_and_custom_layer_with_params_and_options():
    x = x4()
    shift = ax.constant(np.arange(4.0))
    w = ax.param("w", lambda s, _: (s[-1], 2), initializer=ax.initializers.ones())
    model = ax.layer(lambda v, c, w, *, power: (v + c) ** power @ w, [x, shift, w], power=2,
                     name="custom")
    state = ax.init(model)
    assert state["custom"]["w"].shape == (4, 2)
    v = rng.standard_normal((3, 4))
    np.testing.assert_allclose(ax.predict(model, state, v),
                               ((v + np.arange(4.0)) ** 2) @ np.ones((4, 2)))


def test_custom_layer_gets_mode_and_key_when_it_asks():
    seen = []

    def fn(v, *, training, key):
        seen.append((training, key is None))
        return v

    model = ax.layer(fn, x4())
    init_fn, train_fn = ax.build(model, mode="train")
    state = init_fn()
    train_fn(state, np.ones((1, 4)), key=ax.random.key(0))
    ax.predict(model, state, np.ones((1, 4)))
    assert seen[-2:] == [(True, False), (False, True)]
    with pytest.raises(InvalidArgumentError, match=r"random layers \(custom_0\).*pass key="):
        train_fn(state, np.ones((1, 4)))


def test_block_shares_parameters_between_calls():
    shared = ax.block(lambda v: v >> ax.dense(3) >> ax.tanh(), name="enc")
    a, b = ax.input("a", shape=(None, 4)), ax.input("b", shape=(None, 4))
    model = ax.container((shared(a), shared(b)))
    state = ax.init(model)
    assert list(state.trainable) == ["enc"] and list(state.trainable["enc"]) == ["dense_0"]
    v = rng.standard_normal((2, 4))
    ya, yb = ax.predict(model, state, {"a": v, "b": v})
    np.testing.assert_array_equal(ya, yb)
    k = state["enc"]["dense_0"]["kernel"]
    g = ax.grad(lambda p: ax.ops.sum(ax.predict(model, state.replace(trainable=p),
                                                {"a": v, "b": 2 * v})[0]))(state.trainable)
    assert g["enc"]["dense_0"]["kernel"].shape == k.shape


def test_namespace_nests_parameters_and_initial_loads_a_pretrained_part():
    x = x4()
    encoder = ax.namespace("encoder", x >> ax.dense(3) >> ax.relu() >> ax.dense(3))
    model = encoder >> ax.dense(1)
    state = ax.init(model, key=0)
    assert list(state.trainable) == ["encoder", "dense_2"]
    assert list(state.trainable["encoder"]) == ["dense_0", "dense_1"]
    pretrained = {"encoder": ax.tree.tree_map(np.ones_like, state.trainable["encoder"])}
    fresh = ax.init(model, key=1, initial=pretrained)
    np.testing.assert_array_equal(fresh["encoder"]["dense_0"]["kernel"], np.ones((4, 3)))
    assert not np.array_equal(fresh["dense_2"]["kernel"], state["dense_2"]["kernel"])


def test_optional_input_and_or_else():
    x = ax.input("x", shape=(None, 2))
    bonus = ax.input("bonus", shape=(None, 2), optional=True)
    model = ax.or_else(ax.add(x, bonus), x)
    state = ax.init(model)
    v = np.ones((1, 2))
    np.testing.assert_array_equal(ax.predict(model, state, {"x": v}), v)
    np.testing.assert_array_equal(ax.predict(model, state, {"x": v, "bonus": v}), 2 * v)

    def use(v, extra):
        return v if extra is None else v * extra

    model = ax.layer(use, [x, ax.optional(bonus)])
    np.testing.assert_array_equal(ax.predict(model, state, {"x": v}), v)
    np.testing.assert_array_equal(ax.predict(model, state, {"x": v, "bonus": 3 * v}), 3 * v)
    both = ax.container({"x": x, "b": bonus})
    assert ax.predict(both, ax.init(both), {"x": v})["b"] is None


def test_cond_takes_one_branch_and_checks_shapes():
    x = ax.input("x", shape=(None, 2))
    model = ax.cond(x, lambda v: ax.ops.sum(v) > 0, x >> ax.relu(), x >> ax.tanh())
    state = ax.init(model)
    np.testing.assert_allclose(ax.predict(model, state, np.array([[2.0, -1.0]])), [[2.0, 0.0]])
    np.testing.assert_allclose(ax.predict(model, state, np.array([[-2.0, 1.0]])),
                               np.tanh([[-2.0, 1.0]]))
    bad = ax.cond(x, lambda v: True, x, x >> ax.dense(3))
    with pytest.raises(ShapeError, match="both branches"):
        ax.init(bad)


def test_parameter_shapes_follow_a_container_input():
    a, b = ax.input("a", shape=(None, 2)), ax.input("b", shape=(None, 3))
    k = ax.param("k", lambda shapes: (shapes[0][-1], shapes[1][-1]))
    model = ax.layer(lambda pair, k: pair[0] @ k + pair[1], [ax.container((a, b)), k])
    state = ax.init(model)
    assert state["custom_0"]["k"].shape == (2, 3)
    va, vb = np.ones((1, 2)), np.ones((1, 3))
    np.testing.assert_allclose(ax.predict(model, state, {"a": va, "b": vb}),
                               va @ state["custom_0"]["k"] + vb)
