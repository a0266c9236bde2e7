"""Reductions: sum, max, min, prod, argmax, argmin, cumsum as primitives; mean, var and
logsumexp as compositions of them. All take ``axis`` (None, an int or a tuple) and ``keepdims``.

>>> import numpy as np
>>> from axon_fn import ops
>>> float(ops.logsumexp(np.array([0.0, 0.0])))
0.6931471805599453
"""

from __future__ import annotations

import math

import numpy as np

from .._core import primitive
from ._rules import (
    AbstractArray,
    dtype_of,
    float_dtype,
    no_second_order,
    normalize_axes,
    normalize_axis,
    reduction_rule,
    shape_of,
)
from .elementwise import add, astype, divide, equal, exp, isfinite, log, multiply, subtract, where
from .shape import broadcast_to, reshape, squeeze


def _restore(g, x, axis, keepdims):
    """Reshape a reduction's cotangent so it broadcasts against the input."""
    if keepdims:
        return g
    shape = shape_of(x)
    axes = normalize_axes("reduce", axis, len(shape))
    return reshape(g, shape=tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _sum_vjp(g, ans, x, *, axis=None, keepdims=False, dtype=None):
    return broadcast_to(_restore(g, x, axis, keepdims), shape=shape_of(x))


def _sum_rule(x, *, axis=None, keepdims=False, dtype=None):
    out = reduction_rule("sum")(x, axis=axis, keepdims=keepdims)
    if dtype is not None:
        return AbstractArray(out.shape, dtype)
    if dtype_of(x) == np.bool_ or np.issubdtype(dtype_of(x), np.signedinteger):
        return AbstractArray(out.shape, np.result_type(dtype_of(x), np.int_))
    return out


sum = primitive(  # noqa: A001
    "sum",
    lambda xp, x, *, axis=None, keepdims=False, dtype=None: xp.sum(
        x, axis=_axis_arg(axis), keepdims=keepdims, dtype=dtype),
    _sum_rule, (_sum_vjp,),
    doc="Sum of elements over ``axis``.",
)


def _axis_arg(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _chooser_vjp(g, ans, x, *, axis=None, keepdims=False):
    """Gradient of max/min: shared equally between the elements that attain it."""
    ans = _restore(ans, x, axis, keepdims)
    hits = equal(x, ans)
    share = astype(divide(hits, sum(hits, axis=axis, keepdims=True)), dtype=dtype_of(x))
    return multiply(_restore(g, x, axis, keepdims), share)


def _check_nonempty(name):
    base = reduction_rule(name)

    def rule(x, *, axis=None, keepdims=False):
        shape = shape_of(x)
        for a in normalize_axes(name, axis, len(shape)):
            if shape[a] == 0:
                from ..errors import ShapeError

                raise ShapeError(f"{name}: cannot reduce over an empty axis {a} (shape {shape})")
        return base(x, axis=axis, keepdims=keepdims)

    return rule


max = primitive(  # noqa: A001
    "max", lambda xp, x, *, axis=None, keepdims=False: xp.max(x, axis=_axis_arg(axis),
                                                             keepdims=keepdims),
    _check_nonempty("max"), (_chooser_vjp,), doc="Largest element over ``axis``.")
min = primitive(  # noqa: A001
    "min", lambda xp, x, *, axis=None, keepdims=False: xp.min(x, axis=_axis_arg(axis),
                                                             keepdims=keepdims),
    _check_nonempty("min"), (_chooser_vjp,), doc="Smallest element over ``axis``.")


def _moved_last(xp, x, axes):
    """``x`` with ``axes`` moved to the end and merged into one."""
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = xp.transpose(x, rest + list(axes))
    return moved.reshape(moved.shape[: len(rest)] + (-1,)), rest


def _prod_of_others_impl(xp, x, *, axis=None):
    """For each element, the product of the *other* elements in its reduction group.

    Computed from exclusive cumulative products from both sides, so zeros are handled exactly.
    """
    axes = normalize_axes("prod", axis, x.ndim)
    flat, rest = _moved_last(xp, x, axes)
    ones = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([flat[..., 1:], ones], axis=-1), -1), -1), -1)
    others = (left * right).reshape(tuple(x.shape[i] for i in rest) + tuple(x.shape[i] for i in axes))
    return xp.transpose(others, tuple(np.argsort(rest + list(axes)).tolist()))


_prod_of_others = primitive(
    "prod_of_others", _prod_of_others_impl,
    lambda x, *, axis=None: AbstractArray(shape_of(x), dtype_of(x)),
    (no_second_order("prod"),),
)

prod = primitive(
    "prod", lambda xp, x, *, axis=None, keepdims=False: xp.prod(x, axis=_axis_arg(axis),
                                                               keepdims=keepdims),
    reduction_rule("prod"),
    (lambda g, ans, x, *, axis=None, keepdims=False: multiply(
        _restore(g, x, axis, keepdims), _prod_of_others(x, axis=axis)),),
    doc="Product of elements over ``axis`` (gradient exact also where elements are zero).",
)


def _arg_rule(name):
    def rule(x, *, axis=None, keepdims=False):
        shape = shape_of(x)
        if axis is None:
            out = (1,) * len(shape) if keepdims else ()
        else:
            a = normalize_axis(name, axis, len(shape))
            out = tuple(1 if i == a else d for i, d in enumerate(shape) if keepdims or i != a)
        return AbstractArray(out, np.intp)

    return rule


argmax = primitive("argmax", lambda xp, x, *, axis=None, keepdims=False: xp.argmax(
    x, axis=axis, keepdims=keepdims), _arg_rule("argmax"), None,
    doc="Index of the largest element over ``axis`` (the first one on ties).")
argmin = primitive("argmin", lambda xp, x, *, axis=None, keepdims=False: xp.argmin(
    x, axis=axis, keepdims=keepdims), _arg_rule("argmin"), None,
    doc="Index of the smallest element over ``axis`` (the first one on ties).")


def _cumsum_impl(xp, x, *, axis, reverse=False):
    if reverse:
        return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)
    return xp.cumsum(x, axis=axis)


def _cumsum_rule(x, *, axis, reverse=False):
    normalize_axis("cumsum", axis, len(shape_of(x)))
    return AbstractArray(shape_of(x), _sum_rule(x).dtype)


cumsum = primitive(
    "cumsum", _cumsum_impl, _cumsum_rule,
    (lambda g, ans, x, *, axis, reverse=False: cumsum(g, axis=axis, reverse=not reverse),),
    doc="Running sum along ``axis`` (from the end when ``reverse``).",
)

# Compositions ---------------------------------------------------------------------------------


def _count(x, axis):
    shape = shape_of(x)
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in normalize_axes("mean", axis, len(shape)))


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over ``axis`` (floating result for integer input).

    >>> mean(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([2., 3.])
    """
    total = sum(x, axis=axis, keepdims=keepdims, dtype=float_dtype(x))
    return divide(total, _count(x, axis))


def var(x, axis=None, keepdims=False, ddof=0):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (numpy's definition).

    >>> float(var(np.array([1.0, 2.0, 3.0, 4.0])))
    1.25
    """
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    squares = sum(multiply(centered, centered), axis=axis, keepdims=keepdims)
    return divide(squares, _count(x, axis) - ddof)


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow.

    >>> float(logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    from ..autodiff.api import stop_gradient

    peak = stop_gradient(max(x, axis=axis, keepdims=True))
    peak = where(isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):  # all -inf: the answer is -inf, not a warning
        out = add(log(sum(exp(subtract(x, peak)), axis=axis, keepdims=True)), peak)
    if keepdims:
        return out
    if axis is None:
        return reshape(out, shape=())
    return squeeze(out, axis=axis)
