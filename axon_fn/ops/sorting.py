"""Sorting and searching: sort, argsort, topk, searchsorted, nonzero, unique, and the order
statistics median and quantile.

``argsort`` and ``searchsorted`` are primitives (integer results, no gradient); ``sort``,
``topk``, ``median`` and ``quantile`` gather with ``take_along_axis`` at those indices, so the
gradient reaches the elements that were picked. ``nonzero`` and ``unique`` have shapes that
depend on the values: they work on concrete arrays (also traced ones), not inside ``jit`` or
``eval_shape``.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.sort(np.array([3.0, 1.0, 2.0]))
array([1., 2., 3.])
"""

from __future__ import annotations

import operator

import numpy as np

from .._dtypes import is_floating
from .._core import AbstractArray, Staged, full_value, primitive
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError, StagingError
from ..typing import Array, ArrayLike
from ._rules import as_operand, dtype_of, named, normalize_axis, shape_of
from .elementwise import add, astype, isnan, multiply, subtract
from .indexing import take_along_axis
from .reductions import any as reduce_any, _no_out
from .shape import reshape

__all__ = ["sort", "argsort", "topk", "searchsorted", "nonzero", "unique", "median", "quantile",
           "percentile"]


def _argsort_rule(a, *, axis, kind=None, stable=None):
    normalize_axis("argsort", axis, len(shape_of(a)))
    return AbstractArray(shape_of(a), np.intp)


_argsort = primitive(
    "argsort",
    lambda xp, a, *, axis, kind=None, stable=None: xp.argsort(a, axis=axis, kind=kind,
                                                               stable=stable),
    _argsort_rule, None,
    doc="The argsort primitive (``axis`` an int); see :func:`argsort`.",
)


def _flat(a, axis):
    a = as_operand(a)
    if axis is None:
        return reshape(a, shape=(-1,)), 0
    if len(shape_of(a)) == 0:
        raise ShapeError(f"sort: axis={axis} is out of range for a 0-d array")
    return a, normalize_axis("sort", axis, len(shape_of(a)))


@named
def argsort(a: ArrayLike, axis: int = -1, kind: str | None = None, order: str | None = None, *,
            stable: bool | None = None) -> Array:
    """Indices that sort ``a`` along ``axis`` (of the flattened ``a`` if None); ``stable=True``
    or ``kind="stable"`` keeps equal elements in order. ``order`` (structured arrays) is not
    supported. NaNs sort last, as numpy.

    >>> argsort(np.array([3.0, 1.0, 2.0]))
    array([1, 2, 0])
    """
    if order is not None:
        raise AxonTypeError("argsort: order= (structured arrays) is not supported")
    a, axis = _flat(a, axis)
    return _argsort(a, axis=axis, kind=kind, stable=stable)


@named
def sort(a: ArrayLike, axis: int = -1, kind: str | None = None, order: str | None = None, *,
         stable: bool | None = None) -> Array:
    """``a`` sorted along ``axis`` (flattened if None); the gradient goes back to the position
    each element came from.

    >>> sort(np.array([[3.0, 1.0], [0.0, 2.0]]), axis=0)
    array([[0., 1.],
           [3., 2.]])
    """
    a, axis = _flat(a, axis)
    return take_along_axis(a, argsort(a, axis, kind, order, stable=stable), axis)


@named
def topk(operand: ArrayLike, k: int, axis: int = -1) -> tuple[Array, Array]:
    """The ``k`` largest elements along ``axis`` (last by default, as ``jax.lax.top_k``), in
    decreasing order, and their indices; among equal values the lower index comes first.

    >>> values, indices = topk(np.array([1.0, 5.0, 3.0, 5.0]), 2)
    >>> values, indices
    (array([5., 5.]), array([1, 3]))
    """
    from .elementwise import negative

    operand = as_operand(operand)
    axis = normalize_axis("topk", axis, len(shape_of(operand)))
    n = shape_of(operand)[axis]
    k = operator.index(k)
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k={k} is out of range for axis {axis} of length {n} "
                         f"(shape {shape_of(operand)})")
    order = _argsort(negative(operand) if np.issubdtype(dtype_of(operand), np.number)
                     or is_floating(dtype_of(operand))
                     else operand, axis=axis, kind="stable", stable=None)
    from .indexing import getitem

    indices = getitem(order, (slice(None),) * axis + (slice(0, k),))
    return take_along_axis(operand, indices, axis), indices


def _searchsorted_rule(a, v, *, side):
    if len(shape_of(a)) != 1:
        raise ShapeError(f"searchsorted: a must be 1-d, got shape {shape_of(a)}")
    return AbstractArray(shape_of(v), np.intp)


_searchsorted = primitive(
    "searchsorted",
    lambda xp, a, v, *, side: xp.searchsorted(a, v, side=side),
    _searchsorted_rule, None,
    doc="The searchsorted primitive; see :func:`searchsorted`.",
)


@named
def searchsorted(a: ArrayLike, v: ArrayLike, side: str = "left",
                 sorter: ArrayLike | None = None) -> Array:
    """Where to insert ``v`` into the sorted 1-d ``a`` to keep it sorted (the first such place
    with ``side="left"``, the last with ``"right"``); ``sorter`` sorts ``a`` first.

    >>> searchsorted(np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.5]))
    array([1, 0])
    """
    if side not in ("left", "right"):
        raise InvalidArgumentError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a, v = as_operand(a), as_operand(v)
    if sorter is not None:
        a = take_along_axis(a, as_operand(sorter), 0)
    return _searchsorted(a, v, side=side)


def _concrete(name, a):
    """The values of ``a`` for an op whose result shape depends on them."""
    value = full_value(as_operand(a))
    if type(value) is Staged:
        raise StagingError(f"{name}: the result's shape depends on the values, which a function "
                           "being compiled by axon_fn.jit cannot do; call it outside jit")
    if isinstance(value, AbstractArray):
        raise AxonTypeError(f"{name}: the result's shape depends on the values, which an abstract "
                            "(eval_shape) array does not have")
    return value


def nonzero(a: ArrayLike) -> tuple[Array, ...]:
    """The indices of the non-zero elements of ``a``, one integer array per axis (no
    gradient).

    >>> nonzero(np.array([[0.0, 2.0], [3.0, 0.0]]))
    (array([0, 1]), array([1, 0]))
    """
    value = _concrete("nonzero", a)
    if np.ndim(value) == 0:
        raise ShapeError("nonzero: called on a 0-d array; use atleast_1d(a) first, as numpy "
                         "asks")
    from ..backend import array_module

    return array_module(value).nonzero(value)


def unique(ar: ArrayLike, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: int | None = None, *,
           equal_nan: bool = True) -> Array | tuple[Array, ...]:
    """The sorted unique elements of ``ar`` (no gradient), with numpy's optional indices,
    inverse and counts.

    >>> unique(np.array([3, 1, 3, 2]))
    array([1, 2, 3])
    """
    value = _concrete("unique", ar)
    from ..backend import array_module

    return array_module(value).unique(value, return_index, return_inverse, return_counts, axis,
                                      equal_nan=equal_nan)


# Order statistics --------------------------------------------------------------------------------

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


@named
def quantile(a: ArrayLike, q: ArrayLike, axis: int | tuple[int, ...] | None = None,
             out: None = None, overwrite_input: bool = False, method: str = "linear",
             keepdims: bool = False, *, weights: ArrayLike | None = None) -> Array:
    """The ``q``-th quantiles (``q`` in [0, 1], a number or an array) of ``a`` along ``axis``
    (all elements if None), with numpy's ``method`` among ``"linear"`` (the default),
    ``"lower"``, ``"higher"``, ``"nearest"`` and ``"midpoint"``. Differentiable: the gradient
    goes to the one or two elements each quantile interpolates. ``q`` of shape ``s`` puts
    ``s`` first in the result, as numpy.

    >>> float(quantile(np.array([1.0, 2.0, 3.0, 4.0]), 0.5))
    2.5
    """
    _no_out("quantile", out)
    if weights is not None:
        raise AxonTypeError("quantile: weights= is not supported")
    if method not in _METHODS:
        raise InvalidArgumentError(f"quantile: method must be one of {_METHODS}, got {method!r}")
    a = as_operand(a)
    q = np.asarray(full_value(q), dtype=np.float64)
    if np.any((q < 0) | (q > 1)):
        raise InvalidArgumentError(f"quantile: q must be in [0, 1], got {q}")
    shape = shape_of(a)
    if axis is None:
        flat, ax = reshape(a, shape=(-1,)), 0
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = tuple(sorted(normalize_axis("quantile", x, len(shape)) for x in axes))
        rest = [i for i in range(len(shape)) if i not in axes]
        from .shape import transpose

        moved = transpose(a, axes=tuple(rest + list(axes)))
        flat = reshape(moved, shape=tuple(shape[i] for i in rest) + (-1,))
        ax = len(rest)
    n = shape_of(flat)[ax]
    if n == 0:
        raise ShapeError(f"quantile: cannot take a quantile over an empty axis (shape {shape})")
    ordered = sort(flat, axis=ax)
    position = q * (n - 1)
    lo = np.floor(position).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = position - lo
    if method == "lower":
        hi, frac = lo, np.zeros_like(frac)
    elif method == "higher":
        lo, frac = np.ceil(position).astype(np.intp), np.zeros_like(frac)
    elif method == "nearest":
        lo, frac = np.round(position).astype(np.intp), np.zeros_like(frac)  # half to even
    elif method == "midpoint":
        frac = np.where(frac > 0, 0.5, 0.0)
    results = [_interpolate(ordered, ax, int(i), int(j), float(f))
               for i, j, f in zip(lo.ravel(), hi.ravel(), frac.ravel())]
    if q.ndim == 0:
        out = results[0]
    else:
        from .manipulation import stack

        out = reshape(stack(results, axis=0), shape=q.shape + shape_of(results[0]))
    if keepdims:
        kept = tuple(1 if axis is None or i in axes else d for i, d in enumerate(shape))
        out = reshape(out, shape=q.shape + kept)
    if np.issubdtype(dtype_of(a), np.integer) or dtype_of(a) == np.bool_:
        return out
    return out if dtype_of(out) == dtype_of(a) else astype(out, dtype_of(a))


def _interpolate(ordered, axis, lo, hi, frac):
    from .indexing import getitem

    prefix = (slice(None),) * axis
    low = getitem(ordered, prefix + (lo,))
    if frac == 0.0 or hi == lo:
        return low if is_floating(dtype_of(low)) else astype(low, np.float64)
    high = getitem(ordered, prefix + (hi,))
    return add(low, multiply(subtract(high, low), frac))


@named
def percentile(a: ArrayLike, q: ArrayLike, axis: int | tuple[int, ...] | None = None,
               out: None = None, overwrite_input: bool = False, method: str = "linear",
               keepdims: bool = False, *, weights: ArrayLike | None = None) -> Array:
    """The ``q``-th percentiles (``q`` in [0, 100]); see :func:`quantile`.

    >>> float(percentile(np.array([1.0, 2.0, 3.0, 4.0]), 50))
    2.5
    """
    q = np.asarray(full_value(q), dtype=np.float64) / 100
    return quantile(a, q, axis, out, overwrite_input, method, keepdims, weights=weights)


@named
def median(a: ArrayLike, axis: int | tuple[int, ...] | None = None, out: None = None,
           overwrite_input: bool = False, keepdims: bool = False) -> Array:
    """The median along ``axis`` (the mean of the two middle elements for an even count);
    NaN when the data hold a NaN, as numpy.

    >>> float(median(np.array([3.0, 1.0, 4.0, 2.0])))
    2.5
    """
    a = as_operand(a)
    out_ = quantile(a, 0.5, axis, out, overwrite_input, "midpoint", keepdims)
    if is_floating(dtype_of(a)):
        from .elementwise import where

        has_nan = reduce_any(isnan(a), axis=axis, keepdims=keepdims)
        out_ = where(has_nan, np.nan, out_)
    return out_


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
