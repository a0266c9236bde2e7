"""Activations against hand-written numpy references, and their gradients."""

import math

import numpy as np
import pytest

import axon_fn
from axon_fn import activations as A
from axon_fn.testing import check_grads

_erf = np.vectorize(math.erf)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def np_softplus(x):
    return np.logaddexp(0.0, x)


def np_sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def np_hard_sigmoid(x, alpha=0.2, beta=0.2):
    return np.minimum(1.0, np.maximum(0.0, alpha * x + beta))


def np_lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


REFERENCES = {
    "celu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "exp": np.exp,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2.0))),
    "hard_sigmoid": np_hard_sigmoid,
    "hard_silu": lambda x: x * np_hard_sigmoid(x),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "linear": lambda x: x,
    "log_sumexp": np_lse,
    "log_sigmoid": lambda x: -np_softplus(-x),
    "log_softmax": lambda x: x - np_lse(x),
    "mish": lambda x: x * np.tanh(np_softplus(x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "sigmoid": np_sigmoid,
    "silu": lambda x: x * np_sigmoid(x),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "softmax": lambda x: np.exp(x - np_lse(x)),
    "softplus": np_softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "tanh": np.tanh,
}

# Names whose formulas never overflow or are written to be stable: checked at extreme inputs.
STABLE = ["celu", "elu", "gelu", "hard_sigmoid", "hard_silu", "hard_tanh", "leaky_relu",
          "linear", "log_sumexp", "log_sigmoid", "log_softmax", "mish", "relu", "relu6",
          "sigmoid", "silu", "selu", "softmax", "softplus", "softsign", "tanh"]

MODERATE = np.array([-3.7, -1.3, -0.45, 0.3, 0.8, 1.6, 2.9, 7.5])
EXTREME = np.array([-1000.0, -200.0, -40.0, 40.0, 200.0, 1000.0])
# Points where a piecewise activation has a kink: excluded from the gradient checks.
KINKS = np.array([-5.0, -1.0, 0.0, 1.0, 4.0, 6.0])


def test_all_lists_the_22_activations():
    assert sorted(A.__all__) == sorted(REFERENCES)
    assert len(A.__all__) == 22


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_reference(name):
    x = MODERATE.reshape(2, 4)
    np.testing.assert_allclose(getattr(A, name)(x), REFERENCES[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", STABLE)
def test_stable_at_extremes(name):
    x = EXTREME
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = np.asarray(getattr(A, name)(x))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, REFERENCES[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", STABLE)
def test_stable_gradients_at_extremes(name):
    g = axon_fn.grad(lambda x: axon_fn.ops.sum(getattr(A, name)(x)))(EXTREME)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_grads(name):
    x = MODERATE.reshape(2, 4)
    if name in ("hard_sigmoid", "hard_silu"):
        assert not np.any(np.isin(x, KINKS))  # the kinks at -1 and 4 are avoided
    check_grads(getattr(A, name), x)


@pytest.mark.parametrize("name", ["celu", "elu", "gelu", "log_sigmoid", "mish",
                                  "sigmoid", "silu", "softplus", "softsign", "tanh"])
def test_grads_at_zero_for_smooth(name):
    check_grads(getattr(A, name), np.array([0.0, -1e-3, 1e-3]))


def test_float32_preserved():
    x = MODERATE.astype(np.float32)
    for name in A.__all__:
        assert np.asarray(getattr(A, name)(x)).dtype == np.float32, name


def test_options():
    x = MODERATE
    np.testing.assert_allclose(A.celu(x, alpha=2.0),
                               np.where(x > 0, x, 2.0 * np.expm1(np.minimum(x, 0) / 2.0)))
    np.testing.assert_allclose(A.elu(x, alpha=0.5), np.where(x > 0, x, 0.5 * np.expm1(x)))
    np.testing.assert_allclose(A.leaky_relu(x, alpha=0.3), np.where(x > 0, x, 0.3 * x))
    np.testing.assert_allclose(A.hard_sigmoid(x, alpha=0.5, beta=0.5), np_hard_sigmoid(x, 0.5, 0.5))
    np.testing.assert_allclose(A.hard_silu(x, alpha=0.5, beta=0.5), x * np_hard_sigmoid(x, 0.5, 0.5))
    approx = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(A.gelu(x, approximate=True), approx, rtol=1e-12)
    np.testing.assert_allclose(A.gelu(x, approximate=True), A.gelu(x), atol=1e-3)
    check_grads(lambda v: A.gelu(v, approximate=True), x)
    check_grads(lambda v: A.celu(v, alpha=2.0), x)


@pytest.mark.parametrize("name", ["log_sumexp", "log_softmax", "softmax"])
def test_axis(name):
    x = MODERATE.reshape(2, 4)
    out = getattr(A, name)(x, axis=0)
    if name == "log_sumexp":
        assert out.shape == (1, 4)
        np.testing.assert_allclose(out, np_lse(x, axis=0))
    elif name == "softmax":
        np.testing.assert_allclose(out, np.exp(x - np_lse(x, axis=0)))
    else:
        np.testing.assert_allclose(out, x - np_lse(x, axis=0))
    check_grads(lambda v: getattr(A, name)(v, axis=0), x)


def test_log_sumexp_keeps_axis_and_second_order():
    assert A.log_sumexp(np.zeros((3, 5))).shape == (3, 1)
    check_grads(A.softplus, MODERATE, order=2)
    check_grads(A.log_sigmoid, MODERATE, order=2)


def test_eval_shape():
    for name in A.__all__:
        out = axon_fn.eval_shape(getattr(A, name), axon_fn.AbstractArray((2, 3), np.float32))
        expected = (2, 1) if name == "log_sumexp" else (2, 3)
        assert out.shape == expected, name
        assert out.dtype == np.float32, name


def test_gradient_conventions_at_the_kinks():
    """Documented in each docstring: clip's convention (the inside slope) for relu6, hard_tanh
    and hard_sigmoid; PyTorch's hardswish values for hard_silu; 0 for the hinge losses."""
    import axon_fn
    from axon_fn import activations, losses, ops

    def slope(fn, x):
        return axon_fn.grad(lambda v: ops.sum(fn(v)))(np.array(x, np.float64))

    np.testing.assert_array_equal(slope(activations.relu6, [0.0, 6.0]), [1.0, 1.0])
    np.testing.assert_array_equal(slope(activations.hard_tanh, [-1.0, 1.0]), [1.0, 1.0])
    np.testing.assert_array_equal(slope(activations.hard_sigmoid, [-1.0, 4.0]), [0.2, 0.2])
    torch_hardswish = lambda v: activations.hard_silu(v, alpha=1 / 6, beta=0.5)  # noqa: E731
    np.testing.assert_allclose(slope(torch_hardswish, [-3.0, 3.0]), [-0.5, 1.5], rtol=1e-12)
    y = np.array([[1.0, -1.0]])
    g = axon_fn.grad(lambda p: losses.hinge(y, p))(np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(g, [[0.0, 0.0]])
    g = axon_fn.grad(lambda p: losses.categorical_hinge(np.array([[0.0, 1.0]]), p))(
        np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(g, [[0.0, 0.0]])
