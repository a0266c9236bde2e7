"""A ModelState is checked against the model it is given to (missing, unexpected, wrong shape,
wrong dtype), once per state structure; one param object used by two layers is one parameter."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, ShapeError


def x3():
    return ax.input("x", shape=(None, 3))


def test_predict_refuses_a_state_of_another_width_instead_of_returning_its_columns():
    state = ax.init(x3() >> ax.dense(5))
    with pytest.raises(ShapeError, match=r"predict: parameter 'dense_0.kernel' of layer "
                                         r"'dense_0' \(op dense\) has shape \(3, 5\) in the "
                                         r"state; the layer expects \(3, 3\)"):
        ax.predict(x3() >> ax.dense(3), state, np.ones((2, 3), np.float32))


def test_predict_fn_names_missing_and_unexpected_parameters():
    _, predict_fn = ax.build(x3() >> ax.dense(2, use_bias=False))
    with_bias = ax.init(x3() >> ax.dense(2))
    with pytest.raises(InvalidArgumentError, match=r"the state has 'dense_0.bias' \(in "
                                                   r"state.trainable\), which is not a "
                                                   r"parameter of this model"):
        predict_fn(with_bias, np.ones((1, 3)))
    _, predict_fn = ax.build(x3() >> ax.dense(2))
    with pytest.raises(InvalidArgumentError, match=r"no parameter 'dense_0.bias', which layer "
                                                   r"'dense_0' \(op dense\) needs with shape "
                                                   r"\(2,\)"):
        predict_fn(with_bias.drop("dense_0.bias"), np.ones((1, 3)))


def test_a_sub_graph_runs_on_the_whole_models_state_but_a_trainer_wants_its_own():
    x = x3()
    code = x >> ax.dense(2, name="encoder")
    whole = code >> ax.dense(3, name="decoder")
    state = ax.init(whole)
    kernel, bias = state["encoder"]["kernel"], state["encoder"]["bias"]
    np.testing.assert_allclose(ax.predict(code, state, np.ones((1, 3))),
                               np.ones((1, 3)) @ kernel + bias, rtol=1e-6)
    batch = (np.ones((4, 3), np.float32), np.ones((4, 2), np.float32))
    loop = ax.loop.trainer(code, "mean_squared_error", "sgd", learning_rate=0.1)
    with pytest.raises(InvalidArgumentError, match=r"trainer: run's init_state: the state has "
                                                   r"'decoder.kernel' .*not a parameter"):
        loop.run([batch], epochs=1, init_state=state)


def test_wrong_dtype_kind_is_refused_but_float64_for_float32_is_fine():
    model = x3() >> ax.dense(2)
    state = ax.init(model)
    ints = state.replace(trainable={"dense_0": {"kernel": np.ones((3, 2), np.int64),
                                                "bias": state["dense_0"]["bias"]}})
    with pytest.raises(AxonTypeError, match=r"'dense_0.kernel' of layer 'dense_0' \(op dense\) "
                                            r"has dtype int64 in the state; the layer declares "
                                            r"float32"):
        ax.predict(model, ints, np.ones((1, 3)))
    wide = state.astype(np.float64)
    x = np.ones((1, 3))
    kernel, bias = wide["dense_0"]["kernel"], wide["dense_0"]["bias"]
    np.testing.assert_allclose(ax.predict(model, wide, x), x @ kernel + bias)
    with pytest.raises(AxonTypeError, match=r"init: initial value for 'dense_0.kernel' .* "
                                            r"dtype int64"):
        ax.init(model, initial={"dense_0": {"kernel": np.ones((3, 2), np.int64)}})


def test_train_mode_and_trainer_init_state_are_checked():
    model = x3() >> ax.dense(1)
    wrong = ax.init(x3() >> ax.dense(4))
    _, train_fn = ax.build(model, mode="train")
    with pytest.raises(ShapeError, match="'dense_0.kernel'.*expects \\(3, 1\\)"):
        train_fn(wrong, np.ones((2, 3)))
    batch = (np.ones((4, 3), np.float32), np.ones((4, 1), np.float32))
    loop = ax.loop.trainer(model, "mean_squared_error", "sgd", learning_rate=0.1)
    with pytest.raises(ShapeError, match="'dense_0.kernel'.*has shape \\(3, 4\\)"):
        loop.run([batch], epochs=1, init_state=wrong)


def test_the_check_runs_once_per_state_structure():
    calls = []

    def shape(s):
        calls.append(s)
        return (s[-1], 2)

    model = ax.layer(lambda v, w: v @ w, [x3(), ax.param("w", shape)])
    init_fn, predict_fn = ax.build(model)
    state = init_fn()
    calls.clear()
    for _ in range(3):
        predict_fn(state, np.ones((4, 3), np.float32))
    assert len(calls) == 1  # the first run checks; the same state is not checked again
    predict_fn(ax.ModelState({"custom_0": {"w": np.ones((3, 2), np.float32)}}),
               np.ones((4, 3), np.float32))
    assert len(calls) == 1  # a new state of the same structure is remembered too
    predict_fn(state, np.ones((7, 3), np.float32))
    assert len(calls) == 2  # new input shapes: checked again
    with pytest.raises(ShapeError):
        predict_fn(ax.ModelState({"custom_0": {"w": np.ones((3, 3), np.float32)}}),
                   np.ones((4, 3), np.float32))


def test_one_param_object_in_two_layers_is_one_tied_parameter():
    x = ax.input("ids", shape=(None,), dtype="int32")
    table = ax.param("table", (10, 4), ax.initializers.normal())
    embedded = ax.layer(lambda ids, t: ax.ops.take(t, ids, axis=0), [x, table], op_name="embed")
    logits = ax.layer(lambda h, t: h @ ax.ops.transpose(t), [embedded, table], op_name="project")
    init_fn, predict_fn = ax.build(logits)
    state = init_fn()
    assert list(state.trainable) == ["embed_0"]  # one home: the first layer that uses it
    assert list(ax.get_parameters(logits)) == ["embed_0"]
    t = state["embed_0"]["table"]
    ids = np.array([1, 3], np.int32)
    np.testing.assert_allclose(predict_fn(state, ids), t[ids] @ t.T, rtol=1e-6)

    def loss(trainable):
        return ax.ops.sum(predict_fn(state.replace(trainable=trainable), ids))

    grad = ax.grad(loss)(state.trainable)["embed_0"]["table"]
    # d/dT sum(T[ids] @ T.T): rows ids get sum_j T[j] from the first use; every row j gets
    # sum_i T[ids_i] from the second
    expected = np.zeros_like(t)
    for i in ids:
        expected[i] += t.sum(axis=0)
    expected += t[ids].sum(axis=0)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_a_tied_param_whose_uses_need_different_shapes_is_an_error():
    w = ax.param("w", lambda s: (s[-1], s[-1]))
    a = ax.layer(lambda v, w: v @ w, [x3(), w])
    b = ax.layer(lambda v, w: v @ w, [a >> ax.dense(5), w])
    with pytest.raises(ShapeError, match="one param object used by several layers"):
        ax.init(b)


def test_freeze_statistics_runs_batch_norm_on_its_running_statistics_in_train_mode():
    x = ax.input("x", shape=(None, 2))
    body = ax.namespace("body", x >> ax.dense(2, name="proj") >> ax.batch_norm(momentum=0.5))
    model = body >> ax.batch_norm(name="head_norm") >> ax.dense(1, name="head")
    state = ax.init(model)
    mean, var = np.array([1.0, -1.0], np.float32), np.array([4.0, 0.25], np.float32)
    state = state.replace(state={**state.state, "body": {"batch_norm_0": {"mean": mean,
                                                                          "var": var}}})
    frozen_model = ax.freeze_statistics(model, "body")
    _, train_fn = ax.build(frozen_model, mode="train")
    batch = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]], np.float32)
    _, new_state = train_fn(ax.freeze(state, "body"), batch)
    np.testing.assert_array_equal(new_state.state["body"]["batch_norm_0"]["mean"], mean)
    np.testing.assert_array_equal(new_state.state["body"]["batch_norm_0"]["var"], var)
    # the head's statistics outside the namespace still move (PyTorch's momentum 0.1 default)
    assert not np.array_equal(new_state.state["head_norm"]["mean"],
                              state.state["head_norm"]["mean"])
    # and the frozen layer normalizes with the running statistics, as in inference
    h = batch @ state["body"]["proj"]["kernel"] + state["body"]["proj"]["bias"]
    gamma, beta = state["body"]["batch_norm_0"]["gamma"], state["body"]["batch_norm_0"]["beta"]
    expected = (h - mean) / np.sqrt(var + 1e-5) * gamma + beta
    _, train_body = ax.build(ax.freeze_statistics(body, "body"), mode="train")
    got, _ = train_body(state, batch)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match="'backbone' names no layer or namespace"):
        ax.freeze_statistics(model, "backbone")


def test_pop_node_returns_the_node_under_its_name_in_the_model():
    model = x3() >> ax.dense(4) >> ax.dense(2)
    popped, rest = ax.pop_node(model)
    assert popped.name == "dense_1"
    state = ax.init(model)
    assert list(state.drop(popped.name).trainable) == ["dense_0"]
    named, _ = ax.pop_node(x3() >> ax.dense(2, name="head"))
    assert named.name == "head"
