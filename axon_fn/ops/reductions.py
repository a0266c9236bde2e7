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
from .._dtypes import is_low_precision
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import (
    AbstractArray,
    as_operand,
    canonical_axis,
    dtype_of,
    float_dtype,
    in_float32,
    no_second_order,
    normalize_axes,
    normalize_axis,
    named,
    reduction_rule,
    shape_of,
)
from .elementwise import (
    add, astype, divide, equal, exp, greater, isfinite, log, multiply, not_equal, sqrt,
    subtract, where,
)
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
    lambda xp, x, *, axis=None, keepdims=False, dtype=None: _sum_impl(
        xp, x, axis=_axis_arg(axis), keepdims=keepdims, dtype=dtype),
    _sum_rule, (_sum_vjp,),
    signature="a, axis=None, dtype=None, out=None, keepdims=False",
    normalize={"axis": canonical_axis},
    doc="""Sum of elements over ``axis`` (None: all; an int or a tuple of ints).

    >>> sum(np.array([[1.0, 2.0], [3.0, 4.0]]), 1)
    array([3., 7.])
    """,
)


def _sum_impl(xp, x, *, axis, keepdims, dtype):
    """numpy's sum, accumulated in float32 for float16 and bfloat16 (numpy sums bfloat16 in
    bfloat16: ten thousand ones would add up to 256) and returned in the input's dtype."""
    if dtype is None and getattr(x, "itemsize", 8) == 2 and is_low_precision(x.dtype):
        return xp.sum(x, axis=axis, keepdims=keepdims, dtype=np.float32).astype(x.dtype)
    return xp.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)


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
    _check_nonempty("max"), (_chooser_vjp,),
    signature="a, axis=None, out=None, keepdims=False", normalize={"axis": canonical_axis},
    doc="""Largest element over ``axis``; ties share the gradient equally (as in JAX).

    >>> max(np.array([[1.0, 5.0], [3.0, 4.0]]), 1, keepdims=True)
    array([[5.],
           [4.]])
    """)
min = primitive(  # noqa: A001
    "min", lambda xp, x, *, axis=None, keepdims=False: xp.min(x, axis=_axis_arg(axis),
                                                             keepdims=keepdims),
    _check_nonempty("min"), (_chooser_vjp,),
    signature="a, axis=None, out=None, keepdims=False", normalize={"axis": canonical_axis},
    doc="""Smallest element over ``axis``; ties share the gradient equally.

    >>> min(np.array([[1.0, 5.0], [3.0, 4.0]]), 0)
    array([1., 4.])
    """)


def _moved_last(xp, x, axes):
    """``x`` with ``axes`` moved to the end and merged into one."""
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = xp.transpose(x, rest + list(axes))
    return moved.reshape(moved.shape[: len(rest)] + (-1,)), rest


@in_float32("prod_of_others")
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
    "prod", in_float32("prod")(lambda xp, x, *, axis=None, keepdims=False: xp.prod(
        x, axis=_axis_arg(axis), keepdims=keepdims)),
    reduction_rule("prod"),
    (lambda g, ans, x, *, axis=None, keepdims=False: multiply(
        _restore(g, x, axis, keepdims), _prod_of_others(x, axis=axis)),),
    signature="a, axis=None, dtype=None, out=None, keepdims=False",
    normalize={"axis": canonical_axis},
    doc="""Product of elements over ``axis`` (gradient exact also where elements are zero).

    >>> prod(np.array([[1.0, 2.0], [3.0, 4.0]]), 0)
    array([3., 8.])
    """,
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
    signature="a, axis=None, out=None, *, keepdims=False",
    doc="""Index of the largest element over ``axis`` (of the flattened ``a`` if None; the
    first one on ties).

    >>> argmax(np.array([[1.0, 5.0], [3.0, 2.0]]), 1)
    array([1, 0])
    """)
argmin = primitive("argmin", lambda xp, x, *, axis=None, keepdims=False: xp.argmin(
    x, axis=axis, keepdims=keepdims), _arg_rule("argmin"), None,
    signature="a, axis=None, out=None, *, keepdims=False",
    doc="""Index of the smallest element over ``axis`` (the first one on ties).

    >>> argmin(np.array([[1.0, 5.0], [3.0, 2.0]]), 1)
    array([0, 1])
    """)


@in_float32("cumsum")
def _cumsum_impl(xp, x, *, axis, reverse=False):
    if reverse:
        return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)
    return xp.cumsum(x, axis=axis)


def _cumsum_rule(x, *, axis, reverse=False):
    normalize_axis("cumsum", axis, len(shape_of(x)))
    return AbstractArray(shape_of(x), _sum_rule(x).dtype)


_cumsum = primitive(
    "cumsum", _cumsum_impl, _cumsum_rule,
    (lambda g, ans, x, *, axis, reverse=False: _cumsum(g, axis=axis, reverse=not reverse),),
    doc="The running-sum primitive (``axis`` an int); see :func:`cumsum`.",
)


@named
def cumsum(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
           out: None = None, *, reverse: bool = False) -> Array:
    """Running sum along ``axis`` (of the flattened ``a`` when None, as numpy); from the end
    when ``reverse`` (axon_fn's addition).

    >>> cumsum(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([ 1.,  3.,  6., 10.])
    >>> cumsum(np.array([1.0, 2.0, 3.0]), reverse=True)
    array([6., 5., 3.])
    """
    a, axis = _scan_operand("cumsum", a, axis, dtype, out)
    return _cumsum(a, axis=axis, reverse=reverse)


def _scan_operand(name, a, axis, dtype, out):
    """``a`` and ``axis`` as a running op (cumsum, cumprod) takes them: flattened when ``axis``
    is None (as numpy), cast to ``dtype``, the axis normalized."""
    _no_out(name, out)
    a = as_operand(a)
    if axis is None:
        a, axis = reshape(a, shape=(-1,)), 0
    if dtype is not None:
        a = astype(a, np.dtype(dtype))
    return a, normalize_axis(name, axis, len(shape_of(a)))


def _no_out(name, out):
    if out is not None:
        from .._core import _refuse

        _refuse(name, "out", out, "axon_fn ops return new arrays; assign the result instead")

# Compositions ---------------------------------------------------------------------------------


def _count(x, axis):
    shape = shape_of(x)
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in normalize_axes("mean", axis, len(shape)))


@named
def mean(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
         out: None = None, keepdims: bool = False) -> Array:
    """Arithmetic mean over ``axis`` (floating result for integer input; ``dtype`` is the
    dtype the sum is taken in, as numpy).

    >>> mean(np.array([[1.0, 2.0], [3.0, 4.0]]), 0)
    array([2., 3.])
    >>> float(mean([1.0, 2.0]))
    1.5
    """
    _no_out("mean", out)
    a = as_operand(a)
    wide = dtype is None and is_low_precision(float_dtype(a))  # float16/bfloat16: sum in float32
    dtype = float_dtype(a) if dtype is None else np.dtype(dtype)
    total = sum(a, axis=axis, keepdims=keepdims, dtype=np.dtype(np.float32) if wide else dtype)
    result = divide(total, _count(a, axis))
    return result if dtype_of(result) == dtype else astype(result, dtype)


@named
def var(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
        out: None = None, ddof: float = 0, keepdims: bool = False, *, mean: ArrayLike | None = None,
        correction: float | None = None) -> Array:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (numpy's definition;
    ``correction`` is numpy 2's name for ``ddof``, ``mean`` a precomputed mean with
    ``keepdims=True``).

    >>> float(var(np.array([1.0, 2.0, 3.0, 4.0])))
    1.25
    """
    _no_out("var", out)
    a = as_operand(a)
    if correction is not None:
        ddof = correction
    center = globals()["mean"](a, axis=axis, dtype=dtype, keepdims=True) if mean is None else mean
    centered = subtract(a, center)
    squares = sum(multiply(centered, centered), axis=axis, keepdims=keepdims,
                  dtype=None if dtype is None else np.dtype(dtype))
    return divide(squares, _count(a, axis) - ddof)


@named
def std(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
        out: None = None, ddof: float = 0, keepdims: bool = False, *, mean: ArrayLike | None = None,
        correction: float | None = None) -> Array:
    """Standard deviation, ``sqrt(var(...))`` with numpy's arguments (the gradient is infinite
    where the deviation is 0, as numpy's formula implies).

    >>> float(std(np.array([1.0, 3.0])))
    1.0
    """
    return sqrt(var(a, axis, dtype, out, ddof, keepdims, mean=mean, correction=correction))


@named
def logsumexp(a: ArrayLike, axis: int | tuple[int, ...] | None = None, b: ArrayLike | None = None,
              keepdims: bool = False, return_sign: bool = False) -> Array | tuple[Array, Array]:
    """``log(sum(b * exp(a)))`` over ``axis``, computed without overflow (scipy's
    ``scipy.special.logsumexp``: ``b`` weights the terms, broadcasting against ``a``;
    ``return_sign=True`` returns ``(log|s|, sign(s))`` for weights that may be negative).

    >>> float(logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> float(logsumexp(np.array([0.0, 0.0]), b=np.array([1.0, 3.0])))
    1.3862943611198906
    """
    from ..autodiff.api import stop_gradient
    from .elementwise import abs as absolute, sign

    a = as_operand(a)
    if len(shape_of(a)) == 0 and axis is None:
        a = reshape(a, shape=(1,))
    peak = stop_gradient(max(a, axis=axis, keepdims=True))
    peak = where(isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):  # all -inf: the answer is -inf, not a warning
        terms = exp(subtract(a, peak))
        if b is not None:
            terms = multiply(as_operand(b), terms)
        total = sum(terms, axis=axis, keepdims=True)
        signs = sign(total) if return_sign else None
        if return_sign:
            total = absolute(total)
        out = add(log(total), peak)
    if not keepdims:
        out = reshape(out, shape=()) if axis is None else squeeze(out, axis=axis)
        if signs is not None:
            signs = reshape(signs, shape=()) if axis is None else squeeze(signs, axis=axis)
    return (out, signs) if return_sign else out


@named
def any(a: ArrayLike, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        out: None = None, keepdims: bool = False) -> Array:
    """Whether any element over ``axis`` is true (non-zero); False over an empty axis.

    >>> any(np.array([[0.0, 1.0], [0.0, 0.0]]), 1)
    array([ True, False])
    """
    return greater(_count_passing("any", not_equal, a, axis, out, keepdims), 0)


@named
def all(a: ArrayLike, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        out: None = None, keepdims: bool = False) -> Array:
    """Whether every element over ``axis`` is true (non-zero); True over an empty axis.

    >>> all(np.array([[1.0, 1.0], [0.0, 1.0]]), 1)
    array([ True, False])
    """
    return equal(_count_passing("all", equal, a, axis, out, keepdims), 0)


def _count_passing(name, test, a, axis, out, keepdims):
    """How many elements over ``axis`` pass ``test(a, 0)`` (any and all count them)."""
    _no_out(name, out)
    return sum(test(as_operand(a), 0), axis=axis, keepdims=keepdims, dtype=np.intp)


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
