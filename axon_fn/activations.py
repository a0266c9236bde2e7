"""Activation functions with Elixir Axon's names, defaults and formulas.

Every activation is a pure function of an array built from :mod:`axon_fn.ops`, so it works on
numpy (or cupy) arrays, under :func:`axon_fn.grad` and under :func:`axon_fn.eval_shape`. The
functions that can overflow (``softplus``, ``log_sigmoid``, ``mish``, ``elu``, ``celu``,
``selu``, ``log_sumexp``...) are written in a numerically stable form.

>>> import numpy as np
>>> relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

import math

from . import ops
from .typing import Array, ArrayLike

__all__ = [
    "celu", "elu", "exp", "gelu", "hard_sigmoid", "hard_silu", "hard_tanh", "leaky_relu",
    "linear", "log_sumexp", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "sigmoid",
    "silu", "selu", "softmax", "softplus", "softsign", "tanh",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _negative_expm1(x, alpha):
    """``alpha * expm1(x)`` for ``x <= 0`` (the input is clamped so positives cannot overflow)."""
    return alpha * ops.expm1(_nonpositive(x))


def _nonpositive(x):
    """``x`` where ``x <= 0``, else 0 (a ``where``, so the gradient at 0 passes through whole)."""
    return ops.where(ops.greater(x, 0), 0.0, x)


def celu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Continuously-differentiable ELU: ``x`` if ``x > 0`` else ``alpha * (exp(x / alpha) - 1)``.

    >>> import numpy as np
    >>> celu(np.array([1.0, 0.0])).tolist()
    [1.0, 0.0]
    """
    return ops.where(ops.greater(x, 0), x, alpha * ops.expm1(_nonpositive(x) / alpha))


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    >>> import numpy as np
    >>> elu(np.array([2.0, 0.0])).tolist()
    [2.0, 0.0]
    """
    return ops.where(ops.greater(x, 0), x, _negative_expm1(x, alpha))


def exp(x: ArrayLike) -> Array:
    """``exp(x)`` elementwise.

    >>> import numpy as np
    >>> exp(np.array([0.0])).tolist()
    [1.0]
    """
    return ops.exp(x)


def gelu(x: ArrayLike, approximate: bool = False) -> Array:
    """Gaussian error linear unit ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))``; with
    ``approximate=True`` the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> import numpy as np
    >>> gelu(np.array([0.0, 10.0])).tolist()
    [0.0, 10.0]
    """
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + ops.tanh(inner))
    return 0.5 * x * (1.0 + ops.erf(x / math.sqrt(2.0)))


def hard_sigmoid(x: ArrayLike, alpha: float = 0.2, beta: float = 0.2) -> Array:
    """Piecewise-linear sigmoid ``max(0, min(1, alpha * x + beta))`` (Axon's formula and defaults).

    At the two kinks the gradient is ``alpha`` (the inside slope, the convention of
    ``ops.clip`` and PyTorch's ``clamp``); PyTorch's ``hardsigmoid`` gives 0 there. Only inputs
    exactly at a kink see the difference.

    >>> import numpy as np
    >>> hard_sigmoid(np.array([-10.0, 0.0, 10.0])).tolist()
    [0.0, 0.2, 1.0]
    """
    return ops.clip(alpha * x + beta, 0.0, 1.0)


def hard_silu(x: ArrayLike, alpha: float = 0.2, beta: float = 0.2) -> Array:
    """Hard SiLU (hard swish): ``x * hard_sigmoid(x, alpha, beta)``.

    At the kinks the gradient is ``hard_sigmoid(x) + alpha * x`` (the product rule with the
    inside slope), which is PyTorch's ``hardswish`` convention (-0.5 and 1.5 at -3 and 3 for its
    ``alpha=1/6, beta=0.5``).

    >>> import numpy as np
    >>> hard_silu(np.array([-10.0, 10.0])).tolist()
    [-0.0, 10.0]
    """
    return x * hard_sigmoid(x, alpha=alpha, beta=beta)


def hard_tanh(x: ArrayLike) -> Array:
    """``x`` clipped to ``[-1, 1]``.

    At -1 and 1 the gradient is 1 (the convention of ``ops.clip`` and PyTorch's ``clamp``);
    PyTorch's ``hardtanh`` gives 0 there. Only inputs exactly at a kink see the difference.

    >>> import numpy as np
    >>> hard_tanh(np.array([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    return ops.clip(x, -1.0, 1.0)


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> Array:
    """``x`` if ``x > 0`` else ``alpha * x``.

    >>> import numpy as np
    >>> leaky_relu(np.array([-100.0, 2.0])).tolist()
    [-1.0, 2.0]
    """
    return ops.where(ops.greater(x, 0), x, alpha * x)


def linear(x: ArrayLike) -> Array:
    """The identity.

    >>> import numpy as np
    >>> linear(np.array([-1.5])).tolist()
    [-1.5]
    """
    return x


def log_sumexp(x: ArrayLike, axis: int = -1) -> Array:
    """``log(sum(exp(x)))`` along ``axis``, keeping the reduced axis (as Axon does); stable.

    >>> import numpy as np
    >>> log_sumexp(np.array([[1000.0, 1000.0]])).shape
    (1, 1)
    """
    return ops.logsumexp(x, axis=axis, keepdims=True)


def log_sigmoid(x: ArrayLike) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite for very negative ``x``.

    >>> import numpy as np
    >>> log_sigmoid(np.array([-1000.0, 0.0])).round(6).tolist()
    [-1000.0, -0.693147]
    """
    return -softplus(-x)


def log_softmax(x: ArrayLike, axis: int = -1) -> Array:
    """``x - log_sumexp(x)`` along ``axis``.

    >>> import numpy as np
    >>> np.exp(log_softmax(np.array([1.0, 1.0]))).tolist()
    [0.5, 0.5]
    """
    return ops.log_softmax(x, axis=axis)


def mish(x: ArrayLike) -> Array:
    """``x * tanh(softplus(x))``.

    >>> import numpy as np
    >>> mish(np.array([0.0, 100.0])).tolist()
    [0.0, 100.0]
    """
    return x * ops.tanh(softplus(x))


def relu(x: ArrayLike) -> Array:
    """``max(x, 0)``.

    >>> import numpy as np
    >>> relu(np.array([-1.0, 3.0])).tolist()
    [0.0, 3.0]
    """
    return ops.relu(x)


def relu6(x: ArrayLike) -> Array:
    """``min(max(x, 0), 6)``.

    At 0 and 6 the gradient is 1 (the convention of ``ops.clip`` and PyTorch's ``clamp``);
    PyTorch's ``relu6`` gives 0 there. Only inputs exactly at a kink see the difference.

    >>> import numpy as np
    >>> relu6(np.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return ops.clip(x, 0.0, 6.0)


def sigmoid(x: ArrayLike) -> Array:
    """The logistic function ``1 / (1 + exp(-x))`` (stable).

    >>> import numpy as np
    >>> sigmoid(np.array([0.0])).tolist()
    [0.5]
    """
    return ops.sigmoid(x)


def silu(x: ArrayLike) -> Array:
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``.

    >>> import numpy as np
    >>> silu(np.array([0.0, 1000.0])).tolist()
    [0.0, 1000.0]
    """
    return x * ops.sigmoid(x)


def selu(x: ArrayLike) -> Array:
    """Scaled ELU: ``scale * (x if x > 0 else alpha * (exp(x) - 1))`` with the self-normalizing
    constants ``alpha = 1.6732632423543772`` and ``scale = 1.0507009873554805``.

    >>> import numpy as np
    >>> selu(np.array([0.0, 1.0])).round(6).tolist()
    [0.0, 1.050701]
    """
    return _SELU_SCALE * ops.where(ops.greater(x, 0), x, _negative_expm1(x, _SELU_ALPHA))


def softmax(x: ArrayLike, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis`` (stable).

    >>> import numpy as np
    >>> softmax(np.array([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    return ops.softmax(x, axis=axis)


def softplus(x: ArrayLike) -> Array:
    """``log(1 + exp(x))``, computed without overflow or loss of precision for large ``|x|``.

    >>> import numpy as np
    >>> softplus(np.array([-1000.0, 1000.0])).tolist()
    [0.0, 1000.0]
    """
    positive = ops.greater(x, 0)
    # Each branch only ever sees inputs where its formula is safe, so neither it nor its
    # gradient overflows; both branches are smooth, so the derivative at 0 is exactly 1/2.
    x_pos = ops.where(positive, x, 0.0)
    x_neg = ops.where(positive, 0.0, x)
    return ops.where(positive, x_pos + ops.log1p(ops.exp(-x_pos)), ops.log1p(ops.exp(x_neg)))


def softsign(x: ArrayLike) -> Array:
    """``x / (1 + |x|)``.

    >>> import numpy as np
    >>> softsign(np.array([-1.0, 3.0])).tolist()
    [-0.5, 0.75]
    """
    return x / (1.0 + ops.abs(x))


def tanh(x: ArrayLike) -> Array:
    """Hyperbolic tangent.

    >>> import numpy as np
    >>> tanh(np.array([0.0])).tolist()
    [0.0]
    """
    return ops.tanh(x)
