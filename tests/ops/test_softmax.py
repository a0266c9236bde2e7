"""Softmax, log-softmax and cross-entropy: gradients (to second order), shape rules, values and
numerical stability."""

import doctest

import numpy as np
import pytest

from axon_fn import eval_shape, grad, ops, vjp
from axon_fn._core import AbstractArray
from axon_fn.errors import AxonTypeError, ShapeError
from tests.ops.harness import OpCase, rand, table_tests


def np_log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


X = rand(2, 3, seed=1) * 3
X3 = rand(2, 3, 2, seed=2) * 3
LOGITS = rand(3, 4, seed=3) * 2
LABELS = np.array([2, 0, 3])
PROBS = np.exp(np_log_softmax(rand(2, 3, seed=4)))
LABELS3 = np.array([[0, 2], [1, 1]])

CASES = [
    OpCase("softmax", ops.softmax, (X,), order=2),
    OpCase("softmax_axis1", lambda x: ops.softmax(x, axis=1), (X3,), order=2),
    OpCase("log_softmax", ops.log_softmax, (X,), order=2),
    OpCase("log_softmax_axis0", lambda x: ops.log_softmax(x, axis=0), (X3,)),
    OpCase("xent_sparse", ops.softmax_cross_entropy, (LOGITS, LABELS), order=2),
    OpCase("xent_dense", ops.softmax_cross_entropy, (rand(2, 3, seed=5), PROBS), order=2),
    OpCase("xent_sparse_axis1", lambda x, y: ops.softmax_cross_entropy(x, y, axis=1),
           (X3, LABELS3), order=2),
    OpCase("xent_mean_loss", lambda x, y: ops.mean(ops.softmax_cross_entropy(x, y)),
           (LOGITS * 100, LABELS)),
    OpCase("softmax_grad", lambda g, a: ops.softmax_grad(g, a, axis=1),
           (rand(2, 3, seed=6), np.exp(np_log_softmax(X))), order=2),
    OpCase("log_softmax_grad", lambda g, a: ops.log_softmax_grad(g, a, axis=0),
           (rand(2, 3, seed=7), np_log_softmax(X, axis=0)), order=2),
    OpCase("xent_grad_dense", lambda x, y, g: ops.softmax_cross_entropy_grad(x, y, g, axis=1),
           (rand(2, 3, seed=8), PROBS, rand(2, seed=9)), order=2),
    OpCase("xent_grad_sparse", lambda x, y, g: ops.softmax_cross_entropy_grad(x, y, g, axis=-1),
           (LOGITS, LABELS, rand(3, seed=10))),
]


test_gradients, test_shape_rules = table_tests(CASES)


def test_values_match_numpy():
    np.testing.assert_allclose(ops.softmax(X3, axis=1),
                               np.exp(X3) / np.exp(X3).sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(ops.log_softmax(X3, axis=0), np_log_softmax(X3, 0), rtol=1e-12)
    expected = -np_log_softmax(LOGITS)[np.arange(3), LABELS]
    np.testing.assert_allclose(ops.softmax_cross_entropy(LOGITS, LABELS), expected, rtol=1e-12)
    dense = -(np.eye(4)[LABELS] * np_log_softmax(LOGITS)).sum(-1)
    np.testing.assert_allclose(ops.softmax_cross_entropy(LOGITS, np.eye(4)[LABELS]), dense,
                               rtol=1e-12)
    moved = np.moveaxis(X3, 1, -1)
    np.testing.assert_allclose(ops.softmax_cross_entropy(X3, LABELS3, axis=1),
                               ops.softmax_cross_entropy(moved, LABELS3), rtol=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    g = grad(lambda x: ops.mean(ops.softmax_cross_entropy(x, LABELS)))(LOGITS)
    expected = (np.exp(np_log_softmax(LOGITS)) - np.eye(4)[LABELS]) / 3
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)
    gy = grad(lambda y: ops.sum(ops.softmax_cross_entropy(LOGITS, y)))(np.eye(4)[LABELS])
    np.testing.assert_allclose(gy, -np_log_softmax(LOGITS), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_are_stable(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-3e4, -3e4, -3e4], [5e3, 5e3 + 1.0, 5e3]], dtype)
    labels = np.array([0, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = ops.softmax(logits)
        lp = ops.log_softmax(logits)
        loss = ops.softmax_cross_entropy(logits, labels)
        g = grad(lambda x: ops.sum(ops.softmax_cross_entropy(x, labels)))(logits)
    for a in (p, lp, loss, g):
        assert a.dtype == dtype and np.all(np.isfinite(a))
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(lp[0], [0.0, -1e4, -2e4], rtol=1e-6)
    np.testing.assert_allclose(loss, [0.0, np.log(3.0), 1.0 + np.log(1 + 2 * np.exp(-1.0))],
                               rtol=1e-5)
    np.testing.assert_allclose(g[0], [0.0, 0.0, 0.0], atol=1e-6)


def test_masked_logits_and_zero_probabilities():
    logits = np.array([[0.0, -np.inf, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(ops.softmax(logits), [[0.5, 0.0, 0.5]])
        loss = ops.softmax_cross_entropy(logits, np.array([[0.5, 0.0, 0.5]]))
    np.testing.assert_allclose(loss, [np.log(2.0)])


def test_float32_and_integer_inputs():
    x32 = X.astype(np.float32)
    assert ops.softmax(x32).dtype == np.float32
    assert ops.log_softmax(x32).dtype == np.float32
    assert ops.softmax_cross_entropy(x32, np.array([0, 1], np.int32)).dtype == np.float32
    assert eval_shape(ops.softmax_cross_entropy, x32, np.array([0, 1])).dtype == np.float32
    np.testing.assert_allclose(ops.softmax(np.array([0, 0])), [0.5, 0.5])
    g = grad(lambda x: ops.sum(ops.softmax_cross_entropy(x, np.array([1, 2]))))(x32)
    assert g.dtype == np.float32


def test_non_contiguous_and_size_one_axis():
    x = rand(4, 6, seed=11)[::2, ::-2]
    np.testing.assert_allclose(ops.softmax(x, axis=0), np.exp(np_log_softmax(x, 0)), rtol=1e-12)
    np.testing.assert_array_equal(ops.softmax(np.ones((3, 1))), np.ones((3, 1)))
    np.testing.assert_array_equal(ops.softmax_cross_entropy(np.ones((3, 1)), np.zeros(3, int)),
                                  np.zeros(3))


def test_third_order_through_cross_entropy():
    from axon_fn.testing import check_grads

    v = rand(3, 4, seed=13)

    def hessian_times_v(x):
        return grad(lambda y: ops.sum(grad(lambda z: ops.sum(
            ops.softmax_cross_entropy(z, LABELS)))(y) * v))(x)

    check_grads(hessian_times_v, LOGITS)  # its VJP is the third derivative


def test_hessian_vector_product_of_loss():
    labels = LABELS
    v = rand(3, 4, seed=12)
    hv = vjp(lambda x: grad(lambda y: ops.sum(ops.softmax_cross_entropy(y, labels)))(x),
             LOGITS)[1](v)[0]
    p = np.exp(np_log_softmax(LOGITS))
    expected = p * v - p * (p * v).sum(-1, keepdims=True)  # (diag(p) - p p^T) v per row
    np.testing.assert_allclose(hv, expected, rtol=1e-10, atol=1e-14)


def test_eval_shape_without_data():
    assert eval_shape(lambda x, y: ops.softmax_cross_entropy(x, y, axis=1),
                      AbstractArray((8, 10, 5)), AbstractArray((8, 5), "int64")) == \
        AbstractArray((8, 5), "float32")
    assert eval_shape(ops.log_softmax, AbstractArray((2, 3), "float64")) == \
        AbstractArray((2, 3), "float64")


def test_primitive_docstring_examples():
    for op in (ops.softmax_grad, ops.log_softmax_grad, ops.softmax_cross_entropy_grad):
        test = doctest.DocTestParser().get_doctest(op.__doc__, {op.__name__: op}, op.__name__,
                                                    None, 0)
        runner = doctest.DocTestRunner()
        runner.run(test)
        assert runner.failures == 0, op.__name__


@pytest.mark.parametrize("call,error,message", [
    (lambda: ops.softmax(np.float64(1.0)), ShapeError, r"softmax: x must have at least one"),
    (lambda: ops.log_softmax(X, axis=2), ShapeError, r"log_softmax: axis=2 is out of range"),
    (lambda: ops.softmax_cross_entropy(LOGITS, np.array([0, 1])), ShapeError,
     r"softmax_cross_entropy: integer labels must have the logits' shape without axis 1, "
     r"\(3,\), got \(2,\)"),
    (lambda: ops.softmax_cross_entropy(LOGITS, np.ones((3, 3))), ShapeError,
     r"probability labels must have the logits' shape \(3, 4\), got \(3, 3\)"),
    (lambda: ops.softmax_cross_entropy(LOGITS, np.array([0, 4, 1])), ShapeError,
     r"integer labels must lie in \[0, 4\), got values from 0 to 4"),
    (lambda: ops.softmax_cross_entropy(LOGITS, np.array([True, False, True])), AxonTypeError,
     r"labels must be integer class indices or floating probabilities, got dtype bool"),
    (lambda: ops.softmax_grad(np.ones(3), np.ones(2), axis=0), ShapeError,
     r"softmax_grad: g must have the shape of ans \(2,\), got \(3,\)"),
])
def test_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
