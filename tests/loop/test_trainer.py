"""trainer and evaluator: the train step, losses, optimizers, state, and errors."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, ShapeError
from axon_fn.loop.trainer import TrainState, evaluator, trainer

rng = np.random.default_rng(4)
X = rng.standard_normal((16, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def regression():
    return ax.input("x", shape=(None, 3)) >> ax.dense(8, activation="tanh") >> ax.dense(1)


def test_trainer_step_equals_a_hand_written_step():
    batches = [(X[:8], Y[:8]), (X[8:], Y[8:])]
    final = trainer(regression(), "mean_squared_error", ax.optim.sgd(0.1), seed=3).run(batches)

    init_fn, train_fn = ax.build(regression(), mode="train")
    state = init_fn(X[:8], ax.random.fold_in(ax.random.key(3), 0))
    opt = ax.optim.sgd(0.1)
    opt_state = opt.init(state.trainable)
    losses = []
    for x, y in batches:
        def loss(p):
            pred, _ = train_fn(state.replace(trainable=p), x)
            return ax.losses.mean_squared_error(y, pred)
        value, grads = ax.value_and_grad(loss)(state.trainable)
        updates, opt_state = opt.update(grads, opt_state, state.trainable)
        state = state.replace(trainable=ax.optim.apply_updates(state.trainable, updates))
        losses.append(float(value))
    got = final.step_state.model_state.trainable
    for layer in ("dense_0", "dense_1"):
        np.testing.assert_allclose(got[layer]["kernel"], state.trainable[layer]["kernel"],
                                   rtol=1e-6)
    assert final.history[0]["loss"] == pytest.approx(np.mean(losses), rel=1e-6)


def test_trainer_learns_and_tracks_metrics():
    labels = (X[:, 0] > 0).astype(np.int32)
    model = ax.input("x", shape=(None, 3)) >> ax.dense(2) >> ax.softmax()
    loop = trainer(model, lambda y, p: ax.losses.categorical_cross_entropy(y, p, sparse=True),
                   "adam", learning_rate=0.1).metric(
        lambda y, p: ax.metrics.accuracy(y, p, sparse=True), "accuracy")
    final = loop.run([(X, labels)], epochs=60)
    assert final.history[-1]["accuracy"] == 1.0
    assert final.history[-1]["loss"] < final.history[0]["loss"]
    assert isinstance(final.step_state, TrainState)


def test_batch_norm_state_and_dropout_keys_move_every_step():
    model = (ax.input("x", shape=(None, 3)) >> ax.dense(4) >> ax.batch_norm()
             >> ax.dropout(0.5) >> ax.dense(1))
    final = trainer(model, "mean_squared_error", "sgd").run([(X, Y)], epochs=3)
    mean = final.step_state.model_state.state["batch_norm_0"]["mean"]
    assert np.all(mean != 0) and mean.dtype == np.float32
    keys = []
    loop = trainer(model, "mean_squared_error", "sgd").handle(
        "iteration_completed", lambda s: (keys.append(tuple(s.step_state.key)), ("continue", s))[1])
    loop.run([(X, Y)], epochs=3)
    assert len(set(keys)) == 3


def test_frozen_layers_stay_put_and_initial_state_is_used():
    state = ax.freeze(ax.init(regression(), X, key=1), ["dense_0"])
    final = trainer(regression(), "mean_squared_error", "sgd").run([(X, Y)], state, epochs=2)
    done = final.step_state.model_state
    np.testing.assert_array_equal(done.frozen["dense_0"]["kernel"],
                                  state.frozen["dense_0"]["kernel"])
    assert not np.array_equal(done.trainable["dense_1"]["kernel"],
                              state.trainable["dense_1"]["kernel"])


def test_multi_output_weighted_losses():
    x = ax.input("x", shape=(None, 3))
    hidden = x >> ax.dense(4)
    model = ax.container({"a": hidden >> ax.dense(1), "b": hidden >> ax.dense(2)})
    targets = {"a": Y, "b": np.zeros((16, 2), np.float32)}
    loop = trainer(model, {"a": "mean_squared_error", "b": "mean_absolute_error"}, "sgd",
                   loss_weights={"a": 1.0, "b": 0.5})
    first = loop.run([(X, targets)], epochs=1, iterations=1)
    state = ax.init(model, X, ax.random.fold_in(ax.random.key(0), 0))
    init_fn, train_fn = ax.build(model, mode="train")
    pred, _ = train_fn(state, X)
    expected = (ax.losses.mean_squared_error(Y, pred["a"])
                + 0.5 * ax.losses.mean_absolute_error(targets["b"], pred["b"]))
    assert first.history[0]["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_gradient_accumulation_and_clipping():
    loop = trainer(regression(), "mean_squared_error", ax.optim.sgd(0.1), accumulate_steps=2)
    one = loop.run([(X, Y)], iterations=1).step_state.model_state
    two = loop.run([(X, Y)], epochs=2).step_state.model_state
    start = ax.init(regression(), X, ax.random.fold_in(ax.random.key(0), 0))
    np.testing.assert_array_equal(one.trainable["dense_1"]["kernel"],
                                  start.trainable["dense_1"]["kernel"])  # not applied yet
    assert not np.array_equal(two.trainable["dense_1"]["kernel"],
                              start.trainable["dense_1"]["kernel"])
    tiny = trainer(regression(), "mean_squared_error", ax.optim.sgd(1.0), clip_norm=1e-3)
    moved = tiny.run([(X, Y)]).step_state.model_state.trainable
    delta = ax.tree.tree_map(lambda a, b: a - b, moved, start.trainable)
    assert float(ax.tree.global_norm(delta)) == pytest.approx(1e-3, rel=1e-3)


def test_dynamic_loss_scale_skips_non_finite_steps():
    scale = ax.optim.DynamicLossScale(loss_scale=2.0 ** 15, period=1)
    final = trainer(regression(), "mean_squared_error", "sgd", loss_scale=scale).run(
        [(X, Y)], epochs=2)
    assert float(final.step_state.loss_scale.loss_scale) == 2.0 ** 17


def test_evaluator_with_counting_metrics():
    model = ax.input("x", shape=(None, 1)) >> ax.sigmoid()
    batches = [(np.array([[2.0], [-2.0]]), np.array([[1.0], [1.0]])),
               (np.array([[2.0], [3.0]]), np.array([[0.0], [1.0]]))]
    final = evaluator(model).metric("precision").metric("recall").run(batches, ax.init(model))
    assert final.history == [{"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3)}]


def test_clear_errors():
    with pytest.raises(InvalidArgumentError, match="unknown loss 'mse'.*mean_squared_error"):
        trainer(regression(), "mse", "adam")
    with pytest.raises(InvalidArgumentError, match="unknown optimizer 'adamm'"):
        trainer(regression(), "mean_squared_error", "adamm")
    loop = trainer(regression(), "mean_squared_error", "adam")
    with pytest.raises(AxonTypeError, match="each batch must be a pair"):
        loop.run([X])
    with pytest.raises(ShapeError, match=r"input 'x' expected shape \(None, 3\).*got \(16, 4\)"):
        loop.run([(np.ones((16, 4), np.float32), Y)])
    with pytest.raises(InvalidArgumentError, match="epoch 0 had no batches"):
        loop.run([])
    with pytest.raises(AxonTypeError, match="init_state must be the model's ModelState"):
        evaluator(regression()).run([(X, Y)])
