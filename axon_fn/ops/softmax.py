"""Softmax, log-softmax and softmax cross-entropy as primitives with their gradients.

All are computed with the maximum subtracted first, so huge logits neither overflow nor lose
precision. The gradient primitives have VJPs of their own built from ops, so gradients of any
order work (Hessian-vector products of a classification loss, gradient penalties).

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.softmax(np.array([0.0, np.log(3.0)]))
array([0.25, 0.75])
"""

from __future__ import annotations

import numpy as np

from .._dtypes import is_floating, is_real_floating
from .._core import primitive
from ..errors import AxonTypeError, ShapeError
from ..typing import Array, ArrayLike
from ._rules import (
    AbstractArray, dtype_of, float_dtype, in_float32, normalize_axis, shape_of,
)
from .creation import ones_like
from .elementwise import exp, multiply, negative, subtract
from .reductions import sum as reduce_sum
from .shape import expand_dims

__all__ = [
    "softmax", "log_softmax", "softmax_cross_entropy",
    "softmax_grad", "log_softmax_grad", "softmax_cross_entropy_grad",
]


def _axis(name, x, axis):
    ndim = len(shape_of(x))
    if ndim == 0:
        raise ShapeError(f"{name}: x must have at least one dimension, got a scalar")
    return normalize_axis(name, axis, ndim)


def _as_float(xp, x):
    x = xp.asarray(x)
    return x if is_floating(x.dtype) else x.astype(np.float64)


def _shifted(xp, x, axis):
    """``x - max(x)`` along ``axis`` (rows whose max is infinite are left unshifted)."""
    peak = xp.max(x, axis=axis, keepdims=True)
    return x - xp.where(xp.isfinite(peak), peak, 0)


@in_float32("softmax")
def _softmax_impl(xp, x, *, axis):
    e = xp.exp(_shifted(xp, _as_float(xp, x), axis))
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


@in_float32("log_softmax")
def _log_softmax_impl(xp, x, *, axis):
    z = _shifted(xp, _as_float(xp, x), axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def _same_float_rule(name):
    def rule(x, *, axis):
        _axis(name, x, axis)
        return AbstractArray(shape_of(x), float_dtype(x))

    return rule


def _pair_rule(name):
    def rule(g, ans, *, axis):
        _axis(name, ans, axis)
        if shape_of(g) != shape_of(ans):
            raise ShapeError(f"{name}: g must have the shape of ans {shape_of(ans)}, "
                             f"got {shape_of(g)}")
        return AbstractArray(shape_of(ans), float_dtype(g, ans))

    return rule


# softmax -------------------------------------------------------------------------------------


@in_float32("softmax_grad")
def _softmax_grad_impl(xp, g, ans, *, axis):
    return ans * (g - xp.sum(g * ans, axis=axis, keepdims=True))


def _softmax_grad_dans(c, out, g, ans, *, axis):
    # d/d ans_j of sum_i c_i ans_i (g_i - s), s = sum_k g_k ans_k
    s = reduce_sum(multiply(g, ans), axis=axis, keepdims=True)
    t = reduce_sum(multiply(c, ans), axis=axis, keepdims=True)
    return subtract(multiply(c, subtract(g, s)), multiply(g, t))


softmax_grad = primitive(
    "softmax_grad", _softmax_grad_impl, _pair_rule("softmax_grad"),
    (lambda c, out, g, ans, *, axis: softmax_grad(c, ans, axis=axis), _softmax_grad_dans),
    doc="""``ans * (g - sum(g * ans, axis))``: the VJP of softmax given its output ``ans``.

    >>> import numpy as np
    >>> softmax_grad(np.array([1.0, 0.0]), np.array([0.5, 0.5]), axis=0)
    array([ 0.25, -0.25])
    """,
)

_softmax = primitive(
    "softmax", _softmax_impl, _same_float_rule("softmax"),
    (lambda g, ans, x, *, axis: softmax_grad(g, ans, axis=axis),),
    doc="The softmax primitive, ``softmax(x, *, axis)``; see :func:`axon_fn.ops.softmax`.",
)


def softmax(x: ArrayLike, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int, or a tuple of axes normalized
    together, or None for all), computed without overflow. The default ``axis=-1`` differs
    from ``scipy.special.softmax`` (all axes), deliberately: it is the axis of classes.

    >>> import numpy as np
    >>> softmax(np.array([[1000.0, 1000.0], [0.0, -np.inf]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    >>> float(softmax(np.zeros((2, 2)), axis=(0, 1))[0, 0])
    0.25
    """
    if type(axis) is not int:
        return _over_axes(_softmax, "softmax", x, axis)
    if type(x) is list:
        x = np.asarray(x)
    return _softmax(x, axis=_axis("softmax", x, axis))


def _over_axes(prim, name, x, axis):
    """``prim`` (softmax or log_softmax) over several axes at once: they are moved last and
    merged into one, so the one-axis kernel does the work."""
    from ._rules import as_operand, normalize_axes
    from .shape import reshape, transpose

    x = as_operand(x)
    shape = shape_of(x)
    if not isinstance(axis, (tuple, list)) and axis is not None:
        return prim(x, axis=_axis(name, x, int(axis)))
    axes = list(normalize_axes(name, axis, len(shape)))
    if not shape:
        raise ShapeError(f"{name}: x must have at least one dimension, got a scalar")
    rest = [i for i in range(len(shape)) if i not in axes]
    moved = transpose(x, axes=tuple(rest + axes))
    merged = reshape(moved, shape=tuple(shape[i] for i in rest) + (-1,))
    out = reshape(prim(merged, axis=len(rest)), shape=shape_of(moved))
    return transpose(out, axes=tuple(np.argsort(rest + axes).tolist()))


# log_softmax ---------------------------------------------------------------------------------


@in_float32("log_softmax_grad")
def _log_softmax_grad_impl(xp, g, ans, *, axis):
    return g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True)


log_softmax_grad = primitive(
    "log_softmax_grad", _log_softmax_grad_impl, _pair_rule("log_softmax_grad"),
    (lambda c, out, g, ans, *, axis: subtract(
        c, reduce_sum(multiply(c, exp(ans)), axis=axis, keepdims=True)),
     lambda c, out, g, ans, *, axis: negative(multiply(
         multiply(c, exp(ans)), reduce_sum(g, axis=axis, keepdims=True)))),
    doc="""``g - exp(ans) * sum(g, axis)``: the VJP of log_softmax given its output ``ans``.

    >>> import numpy as np
    >>> log_softmax_grad(np.array([1.0, 0.0]), np.log(np.array([0.5, 0.5])), axis=0)
    array([ 0.5, -0.5])
    """,
)

_log_softmax = primitive(
    "log_softmax", _log_softmax_impl, _same_float_rule("log_softmax"),
    (lambda g, ans, x, *, axis: log_softmax_grad(g, ans, axis=axis),),
    doc="The log-softmax primitive, ``log_softmax(x, *, axis)``; see "
        ":func:`axon_fn.ops.log_softmax`.",
)


def log_softmax(x: ArrayLike, axis: int = -1) -> Array:
    """``x - logsumexp(x)`` along ``axis`` (an int, a tuple or None, as :func:`softmax`):
    log-probabilities, exact for huge logits.

    >>> import numpy as np
    >>> log_softmax(np.array([1000.0, 1000.0]))
    array([-0.69314718, -0.69314718])
    """
    if type(axis) is not int:
        return _over_axes(_log_softmax, "log_softmax", x, axis)
    if type(x) is list:
        x = np.asarray(x)
    return _log_softmax(x, axis=_axis("log_softmax", x, axis))


# softmax_cross_entropy -----------------------------------------------------------------------


def _is_sparse(name, logits, labels, axis):
    """True for integer class labels; checks the labels' shape and dtype against the logits."""
    ls, ys = shape_of(logits), shape_of(labels)
    axis = _axis(name, logits, axis)
    dtype = dtype_of(labels)
    if np.issubdtype(dtype, np.integer):
        expected = ls[:axis] + ls[axis + 1:]
        if ys != expected:
            raise ShapeError(f"{name}: integer labels must have the logits' shape without axis "
                             f"{axis}, {expected}, got {ys} (logits shape {ls})")
        return True
    if not is_real_floating(dtype):
        raise AxonTypeError(f"{name}: labels must be integer class indices or floating "
                            f"probabilities, got dtype {dtype}")
    if ys != ls:
        raise ShapeError(f"{name}: probability labels must have the logits' shape {ls}, got {ys}")
    return False


def _check_labels(xp, labels, classes, name):
    if xp is np and labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ShapeError(f"{name}: integer labels must lie in [0, {classes}), got values from "
                         f"{labels.min()} to {labels.max()}")


def _onehot(xp, labels, classes, axis, dtype):
    shape = [1] * (labels.ndim + 1)
    shape[axis] = classes
    return (xp.expand_dims(labels, axis) == xp.arange(classes).reshape(shape)).astype(dtype)


@in_float32("softmax_cross_entropy")
def _xent_impl(xp, logits, labels, *, axis):
    name = "softmax_cross_entropy"
    sparse = _is_sparse(name, logits, labels, axis)
    z = _shifted(xp, _as_float(xp, logits), axis)
    lse = xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))
    if sparse:
        _check_labels(xp, labels, logits.shape[axis], name)
        picked = xp.take_along_axis(z, xp.expand_dims(labels, axis), axis=axis)
        return xp.squeeze(lse - picked, axis=axis)
    logp = z - lse
    terms = labels * xp.where(labels == 0, 0, logp)  # 0 * log(0) counts as 0
    return 0.0 - xp.sum(terms, axis=axis)  # not -sum: no -0.0 for a perfect prediction


def _xent_rule(logits, labels, *, axis):
    sparse = _is_sparse("softmax_cross_entropy", logits, labels, axis)
    axis = _axis("softmax_cross_entropy", logits, axis)
    ls = shape_of(logits)
    dtype = float_dtype(logits) if sparse else float_dtype(logits, labels)
    return AbstractArray(ls[:axis] + ls[axis + 1:], dtype)


@in_float32("softmax_cross_entropy_grad")
def _xent_grad_impl(xp, logits, labels, g, *, axis):
    name = "softmax_cross_entropy_grad"
    sparse = _is_sparse(name, logits, labels, axis)
    p = _softmax_impl(xp, logits, axis=axis)
    if sparse:
        _check_labels(xp, labels, logits.shape[axis], name)
        p -= _onehot(xp, labels, logits.shape[axis], axis, p.dtype)
    else:  # the derivative of -sum(y log p) is p sum(y) - y: labels need not sum to one
        p = p * xp.sum(labels, axis=axis, keepdims=True) - labels
    return p * xp.expand_dims(g, axis)


def _xent_grad_rule(logits, labels, g, *, axis):
    name = "softmax_cross_entropy_grad"
    sparse = _is_sparse(name, logits, labels, axis)
    axis = _axis(name, logits, axis)
    ls = shape_of(logits)
    if shape_of(g) != ls[:axis] + ls[axis + 1:]:
        raise ShapeError(f"{name}: g must have the loss shape {ls[:axis] + ls[axis + 1:]}, "
                         f"got {shape_of(g)}")
    dtype = float_dtype(logits, g) if sparse else float_dtype(logits, labels, g)
    return AbstractArray(ls, dtype)


def _labels_vjp(cotangent_of_probs):
    """VJP for the labels: a gradient for probabilities, none for integer classes."""

    def rule(c, out, logits, labels, *rest, axis):
        if np.issubdtype(dtype_of(labels), np.integer):
            return None
        return cotangent_of_probs(c, logits, labels, *rest, axis=axis)

    return rule


def _xent_grad_dlogits(c, out, logits, labels, g, *, axis):
    weighted = multiply(c, expand_dims(g, axis=axis))
    if not np.issubdtype(dtype_of(labels), np.integer):
        weighted = multiply(weighted, reduce_sum(labels, axis=axis, keepdims=True))
    return softmax_grad(weighted, _softmax(logits, axis=axis), axis=axis)


def _xent_grad_dlabels(c, logits, labels, g, *, axis):
    # d/dy_j of sum_i c_i g (p_i sum(y) - y_i) = g (sum_i c_i p_i - c_j)
    p = _softmax(logits, axis=axis)
    both = subtract(reduce_sum(multiply(c, p), axis=axis, keepdims=True), c)
    return multiply(both, expand_dims(g, axis=axis))


def _xent_grad_dg(c, out, logits, labels, g, *, axis):
    diff = softmax_cross_entropy_grad(logits, labels, ones_like(g), axis=axis)
    return reduce_sum(multiply(c, diff), axis=axis)


softmax_cross_entropy_grad = primitive(
    "softmax_cross_entropy_grad", _xent_grad_impl, _xent_grad_rule,
    (_xent_grad_dlogits,
     _labels_vjp(_xent_grad_dlabels),
     _xent_grad_dg),
    doc="""``(softmax(logits) * sum(labels) - labels) * expand_dims(g, axis)`` (one-hot labels
    for integer classes, whose sum is one): the VJP of softmax_cross_entropy with respect to the
    logits.

    >>> import numpy as np
    >>> softmax_cross_entropy_grad(np.zeros((1, 2)), np.array([1]), np.ones(1), axis=1)
    array([[ 0.5, -0.5]])
    """,
)

_softmax_cross_entropy = primitive(
    "softmax_cross_entropy", _xent_impl, _xent_rule,
    (lambda g, ans, logits, labels, *, axis: softmax_cross_entropy_grad(
        logits, labels, g, axis=axis),
     _labels_vjp(lambda g, logits, labels, *, axis: multiply(
         negative(_log_softmax(logits, axis=axis)), expand_dims(g, axis=axis)))),
    doc="The cross-entropy primitive, ``softmax_cross_entropy(logits, labels, *, axis)``; see "
        ":func:`axon_fn.ops.softmax_cross_entropy`.",
)


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike, axis: int = -1) -> Array:
    """Per-example cross-entropy ``-sum(labels * log_softmax(logits))`` along ``axis``.

    ``labels`` are integer class indices (the logits' shape without ``axis``; no gradient) or
    floating probabilities (the logits' shape; differentiable). The result has the logits' shape
    without ``axis``; reduce it (e.g. ``ops.mean``) for a scalar loss. Stable for huge logits.

    >>> import numpy as np
    >>> logits = np.array([[0.0, 0.0], [1000.0, -1000.0]])
    >>> softmax_cross_entropy(logits, np.array([1, 0]))
    array([0.69314718, 0.        ])
    >>> softmax_cross_entropy(logits, np.array([[0.5, 0.5], [1.0, 0.0]]))
    array([0.69314718, 0.        ])
    """
    if type(logits) is list:
        logits = np.asarray(logits)
    if type(labels) is list:
        labels = np.asarray(labels)
    return _softmax_cross_entropy(logits, labels, axis=_axis("softmax_cross_entropy", logits,
                                                             axis))


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
