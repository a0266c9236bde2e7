"""build/init/predict, ModelState, freezing, train mode and hooks."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, ShapeError

rng = np.random.default_rng(1)


def mlp(order=("a", "b")):
    x = ax.input("x", shape=(None, 3))
    return x >> ax.dense(4, name=order[0]) >> ax.relu() >> ax.dense(4, name=order[1])


def test_init_infers_shapes_from_the_template_and_declared_shapes():
    state = ax.init(mlp(), np.zeros((7, 3), np.float32), ax.random.key(0))
    assert {k: v.shape for k, v in state["a"].items()} == {"kernel": (3, 4), "bias": (4,)}
    assert state["a"]["kernel"].dtype == np.float32
    x = ax.input("x", shape=(None, None))  # no feature size declared: a template is needed
    model = x >> ax.dense(2)
    assert ax.init(model, ax.AbstractArray((1, 5)))["dense_0"]["kernel"].shape == (5, 2)
    with pytest.raises(InvalidArgumentError, match="input 'y' declares no shape"):
        ax.init(ax.input("y") >> ax.dense(2))


def test_init_is_deterministic_per_seed_layer_and_param_not_graph_order():
    def square(order):
        x = ax.input("x", shape=(None, 4))
        return x >> ax.dense(4, name=order[0]) >> ax.dense(4, name=order[1])

    a = ax.init(square(("a", "b")), key=5)
    b = ax.init(square(("b", "a")), key=5)
    np.testing.assert_array_equal(a["a"]["kernel"], b["a"]["kernel"])
    np.testing.assert_array_equal(a["b"]["kernel"], b["b"]["kernel"])
    assert not np.array_equal(a["a"]["kernel"], a["b"]["kernel"])
    c = ax.init(square(("a", "b")), key=6)
    assert not np.array_equal(a["a"]["kernel"], c["a"]["kernel"])
    a = ax.init(mlp(), key=5)
    np.testing.assert_array_equal(ax.init(mlp(), key=ax.random.key(5))["a"]["kernel"],
                                  a["a"]["kernel"])
    with pytest.raises(AxonTypeError, match="`key` must be an int seed"):
        ax.init(mlp(), key="seed")


def test_initial_is_merged_after_a_shape_check_and_unknown_paths_are_errors():
    base = ax.init(mlp(), key=0)
    kernel = np.full((3, 4), 0.5, np.float32)
    state = ax.init(mlp(), key=1, initial={"a": {"kernel": kernel}})
    np.testing.assert_array_equal(state["a"]["kernel"], kernel)
    assert not np.array_equal(state["b"]["kernel"], base["b"]["kernel"])
    with pytest.raises(ShapeError, match=r"initial value for 'a.kernel' has shape \(4, 3\); "
                                         r"the model expects \(3, 4\)"):
        ax.init(mlp(), initial={"a": {"kernel": np.ones((4, 3))}})
    with pytest.raises(InvalidArgumentError, match="'c.kernel', which is not a parameter.*"
                                                   "it has: a.kernel, a.bias, b.kernel"):
        ax.init(mlp(), initial={"c": {"kernel": np.ones((3, 4))}})
    with pytest.raises(InvalidArgumentError, match="'a.scale'"):
        ax.init(mlp(), initial={"a": {"scale": np.ones(4)}})


def test_reinitialize_one_layer_without_touching_the_others():
    state = ax.init(mlp(), key=0)
    again = ax.init(mlp(), key=9, initial=state.drop("b"))
    np.testing.assert_array_equal(again["a"]["kernel"], state["a"]["kernel"])
    assert not np.array_equal(again["b"]["kernel"], state["b"]["kernel"])
    same = ax.init(mlp(), key=0, initial=state.drop("b"))  # same key: the same values again
    np.testing.assert_array_equal(same["b"]["kernel"], state["b"]["kernel"])


def test_predict_matches_numpy():
    state = ax.init(mlp(), key=0)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    a, b = state["a"], state["b"]
    expected = np.maximum(x @ a["kernel"] + a["bias"], 0) @ b["kernel"] + b["bias"]
    np.testing.assert_allclose(ax.predict(mlp(), state, x), expected, rtol=1e-6)
    init_fn, predict_fn = ax.build(mlp())
    np.testing.assert_allclose(predict_fn(init_fn(key=0), {"x": x}), expected, rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="`mode` must be 'inference' or 'train'"):
        ax.build(mlp(), mode="eval")
    with pytest.raises(AxonTypeError, match="waiting for its input"):
        ax.build(ax.dense(2) >> ax.relu())


def test_predict_with_a_state_missing_a_parameter():
    state = ax.init(mlp(), key=0)
    with pytest.raises(InvalidArgumentError, match="no parameter 'b.kernel'"):
        ax.predict(mlp(), state.drop("b"), np.ones((1, 3)))


def test_freeze_moves_leaves_out_of_gradients_and_unfreeze_brings_them_back():
    state = ax.init(mlp(), key=0)
    frozen = ax.freeze(state, ["a"])
    assert list(frozen.trainable) == ["b"] and list(frozen.frozen) == ["a"]
    x = np.ones((2, 3))
    np.testing.assert_array_equal(ax.predict(mlp(), frozen, x), ax.predict(mlp(), state, x))

    def loss(trainable):
        return ax.ops.sum(ax.predict(mlp(), frozen.replace(trainable=trainable), x))

    grads = ax.grad(loss)(frozen.trainable)
    assert list(grads) == ["b"]
    optimizer = ax.optim.adam(0.1)
    opt_state = optimizer.init(frozen.trainable)
    updates, _ = optimizer.update(grads, opt_state, frozen.trainable)
    assert list(updates) == ["b"]
    only_bias = ax.freeze(state, lambda path, value: path.endswith("bias"))
    assert sorted(only_bias.frozen) == ["a", "b"] and list(only_bias.frozen["a"]) == ["bias"]
    back = ax.unfreeze(frozen)
    assert sorted(back.trainable) == ["a", "b"] and back.frozen == {}
    assert ax.unfreeze(only_bias, "b.bias").frozen == {"a": {"bias": only_bias.frozen["a"]["bias"]}}
    with pytest.raises(AxonTypeError, match="`predicate` must be"):
        ax.freeze(state, 3)


def test_model_state_is_a_pytree_with_views():
    state = ax.init(mlp(), key=0)
    assert len(ax.tree.leaves(state)) == 4
    doubled = ax.tree.tree_map(lambda v: 2 * v, state)
    assert isinstance(doubled, ax.ModelState)
    assert state.count() == 3 * 4 + 4 + 4 * 4 + 4
    assert state.astype(np.float64)["a"]["kernel"].dtype == np.float64
    assert "a.kernel: (3, 4)" in repr(state)


def bn_model():
    return ax.input("x", shape=(None, 2)) >> ax.batch_norm(momentum=0.25) >> ax.dropout(0.5)


def test_train_mode_updates_batch_norm_state_and_uses_the_key():
    init_fn, train_fn = ax.build(bn_model(), mode="train")
    state = init_fn()
    x = rng.standard_normal((6, 2)).astype(np.float32)
    y, new = train_fn(state, x, key=ax.random.key(3))
    mean, var = x.mean(0), x.var(0, ddof=1)
    np.testing.assert_allclose(new.state["batch_norm_0"]["mean"], 0.25 * mean, rtol=1e-5)
    np.testing.assert_allclose(new.state["batch_norm_0"]["var"], 0.75 + 0.25 * var, rtol=1e-5)
    normalized = (x - mean) / np.sqrt(x.var(0) + 1e-5)
    kept = y != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(y[kept], 2 * normalized[kept], rtol=1e-4)
    y2, _ = train_fn(state, x, key=ax.random.key(3))
    np.testing.assert_array_equal(y, y2)
    assert new.trainable is state.trainable
    with pytest.raises(InvalidArgumentError, match=r"random layers \(dropout_0\)"):
        train_fn(state, x)
    # inference: running statistics, no dropout
    out = ax.predict(bn_model(), new, x)
    expected = (x - new.state["batch_norm_0"]["mean"]) / np.sqrt(
        new.state["batch_norm_0"]["var"] + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # float64 batches keep float32 statistics
    _, new64 = train_fn(state, x.astype(np.float64), key=ax.random.key(0))
    assert new64.state["batch_norm_0"]["mean"].dtype == np.float32


def test_train_step_gradients_with_state_as_aux():
    init_fn, train_fn = ax.build(bn_model(), mode="train")
    state = init_fn()
    x = rng.standard_normal((6, 2))

    def loss(trainable):
        y, new = train_fn(state.replace(trainable=trainable), x, key=ax.random.key(1))
        return ax.ops.sum(y * y), new

    (value, new), grads = ax.value_and_grad(loss, has_aux=True)(state.trainable)
    assert type(new.state["batch_norm_0"]["mean"]) is np.ndarray
    assert set(grads["batch_norm_0"]) == {"gamma", "beta"}
    assert np.isfinite(value)


def test_forward_and_backward_hooks():
    seen = []
    x = ax.input("x", shape=(None, 2))
    model = (x >> ax.attach_hook(lambda v: seen.append(("in", v.shape)))
             >> ax.dense(3) >> ax.attach_hook(lambda g: seen.append(("grad", g.shape)),
                                              on="backward")
             >> ax.attach_hook(lambda v: seen.append(("train",)), mode="train"))
    state = ax.init(model)
    assert seen == []  # init runs on shapes only: no hooks
    ax.predict(model, state, np.ones((4, 2)))
    assert seen == [("in", (4, 2))]
    seen.clear()
    ax.grad(lambda p: ax.ops.sum(ax.predict(model, state.replace(trainable=p),
                                            np.ones((4, 2)))))(state.trainable)
    assert seen == [("in", (4, 2)), ("grad", (4, 3))]
    seen.clear()
    ax.predict(model, state, np.ones((1, 2)), mode="train")
    assert ("train",) in seen
    with pytest.raises(InvalidArgumentError, match="`on` must be"):
        ax.attach_hook(print, on="sideways")


def test_a_block_called_on_different_shapes_is_an_init_error():
    blk = ax.block(lambda v: v >> ax.dense(3))
    a, b = ax.input("a", shape=(None, 2)), ax.input("b", shape=(None, 5))
    with pytest.raises(ShapeError, match=r"'block_0.dense_0'.*shared.*\(2, 3\).*\(5, 3\)"):
        ax.init(ax.container((blk(a), blk(b))))


def test_a_hook_on_a_shared_node_adds_no_layer():
    x = ax.input("x", shape=(None, 2))
    h = x >> ax.dense(4, name="shared")
    seen = []
    model = ax.add(h >> ax.attach_hook(lambda v: seen.append(v.shape)), h >> ax.relu())
    assert ax.get_op_counts(model) == {"input": 1, "dense": 1, "hook": 1, "relu": 1, "add": 1}
    ax.predict(model, ax.init(model), np.ones((3, 2)))
    assert seen == [(3, 4)]


def test_freeze_by_a_name_that_matches_nothing_is_an_error():
    state = ax.init(mlp())
    with pytest.raises(InvalidArgumentError, match="freeze: 'dense_9' matches no parameter.*a, b"):
        ax.freeze(state, "dense_9")
    with pytest.raises(InvalidArgumentError, match="unfreeze: 'a' matches no parameter"):
        ax.unfreeze(state, ["a"])


def test_comparisons_in_layers_work_while_shapes_are_traced():
    ids = ax.input("ids", shape=(None, 4), dtype="int32")
    mask = ids >> ax.nx(lambda v: v != 0)
    assert ax.get_output_shape(mask) == (1, 4)
    model = ax.lstm(ids >> ax.embedding(5, 3), 2, mask=ids >> ax.nx(lambda v: v == 0))
    state = ax.init(model, key=0)
    out = ax.predict(model, state, np.array([[1, 0, 2, 0]], np.int32))
    assert out.shape == (1, 4, 2)
