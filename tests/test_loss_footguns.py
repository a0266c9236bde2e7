"""Losses that expect probabilities refuse logits; integer labels get their own names and the
shape errors of the dense forms suggest sparse=True; strings are refused naming the function."""

import functools

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, ShapeError, losses, metrics


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_logits_given_to_a_probability_loss_are_refused_with_the_fix():
    logits = np.array([[5.0, -1.0, 2.0], [0.5, 3.0, -2.0]])
    labels = np.eye(3)[[0, 1]]
    with pytest.raises(InvalidArgumentError, match=r"categorical_cross_entropy: y_pred holds "
                                                   r"values in \[-2, 5\], not probabilities.*"
                                                   r"from_logits=True.*softmax activation"):
        losses.categorical_cross_entropy(labels, logits)
    with pytest.raises(InvalidArgumentError, match=r"binary_cross_entropy: .*sigmoid"):
        losses.binary_cross_entropy(np.ones((2, 1)), np.array([[3.0], [-2.0]]))
    # the fix gives PyTorch's cross_entropy: -log softmax(z)[label], averaged
    expected = -np.mean(np.log(softmax(logits))[[0, 1], [0, 1]])
    np.testing.assert_allclose(
        losses.categorical_cross_entropy(labels, logits, from_logits=True), expected)
    np.testing.assert_allclose(losses.categorical_cross_entropy(labels, softmax(logits)),
                               expected)


def test_the_trainer_refuses_logits_at_its_first_step():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32) * 3
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    model = ax.input("x", shape=(None, 4)) >> ax.dense(3)  # logits, no softmax
    loop = ax.loop.trainer(model, "categorical_cross_entropy", "adam", learning_rate=0.01)
    with pytest.raises(InvalidArgumentError, match="from_logits=True"):
        loop.run([(x, y)], epochs=1)
    fixed = ax.loop.trainer(model, functools.partial(losses.categorical_cross_entropy,
                                                     from_logits=True), "adam",
                            learning_rate=0.01).run([(x, y)], epochs=2)
    assert fixed.history[-1]["loss"] > 0.0


def test_sparse_names_take_integer_labels():
    probs = np.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]])
    labels = np.array([1, 0, 1])
    expected = -np.mean(np.log([0.75, 0.5, 0.1]))
    np.testing.assert_allclose(losses.sparse_categorical_cross_entropy(labels, probs), expected)
    logits = np.log(probs)
    np.testing.assert_allclose(
        losses.sparse_categorical_cross_entropy(labels, logits, from_logits=True), expected)
    # argmax is [1, 0, 0] (a tie takes the first class)
    assert metrics.sparse_categorical_accuracy(labels, probs) == pytest.approx(2 / 3)
    model = ax.input("x", shape=(None, 2)) >> ax.softmax()
    final = ax.loop.evaluator(model).metric("sparse_categorical_accuracy").run(
        [(logits, labels)], init_state=ax.init(model))
    assert final.metrics["sparse_categorical_accuracy"] == pytest.approx(2 / 3)


def test_shape_errors_suggest_sparse_when_y_true_has_one_axis_fewer():
    probs = np.full((3, 4), 0.25)
    with pytest.raises(ShapeError, match=r"got y_true \(3,\) and y_pred \(3, 4\); y_true looks "
                                         r"like integer class labels: pass sparse=True \(or use "
                                         r"sparse_categorical_cross_entropy\)"):
        losses.categorical_cross_entropy(np.array([0, 1, 2]), probs)
    with pytest.raises(ShapeError, match=r"pass sparse=True \(or use "
                                         r"sparse_categorical_accuracy\)"):
        metrics.accuracy(np.array([0, 1, 2]), probs)


@pytest.mark.parametrize("fn", [losses.mean_squared_error, losses.categorical_cross_entropy,
                                metrics.accuracy, metrics.precision, metrics.mean_squared_error])
def test_strings_are_refused_naming_the_function_and_argument(fn):
    with pytest.raises(AxonTypeError, match=rf"{fn.__name__}: `y_true` must hold numbers, got "
                                            rf"list of dtype <U1"):
        fn(["a", "b"], np.array([0.5, 0.5]))
    with pytest.raises(AxonTypeError, match=rf"{fn.__name__}: `y_pred` must hold numbers"):
        fn(np.array([1.0, 0.0]), np.array([object(), object()]))
