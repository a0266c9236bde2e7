"""numpy's rearranging functions as compositions of primitives: moveaxis, ravel, atleast_*d,
vstack/hstack/dstack, array_split, roll, tril/triu, diag, diagonal, trace, put_along_axis,
inner and kron. Every one is differentiable through the primitives it is made of.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.moveaxis(np.zeros((2, 3, 4)), 0, -1).shape
(3, 4, 2)
"""

from __future__ import annotations

import operator
from typing import Sequence

import numpy as np

from .._core import full_value
from ..backend import array_module
from ..errors import ShapeError
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import as_operand, dtype_of, named, normalize_axis, shape_of
from .creation import zeros_like
from .einsum import tensordot
from .elementwise import multiply, where
from .indexing import getitem, index_add
from .manipulation import _cast, _slice_axis, concatenate, split
from .reductions import sum as reduce_sum
from .shape import reshape, transpose

__all__ = ["moveaxis", "ravel", "atleast_1d", "atleast_2d", "atleast_3d", "vstack", "hstack",
           "dstack", "array_split", "roll", "tril", "triu", "diag", "diagonal", "trace",
           "put_along_axis", "inner", "kron"]


def _axes(name, axis, ndim):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return [normalize_axis(name, a, ndim) for a in axes]


@named
def moveaxis(a: ArrayLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Array:
    """``a`` with the axes ``source`` moved to positions ``destination`` (ints or sequences).

    >>> moveaxis(np.zeros((2, 3, 4)), -1, 0).shape
    (4, 2, 3)
    """
    a = as_operand(a)
    ndim = len(shape_of(a))
    src, dst = _axes("moveaxis", source, ndim), _axes("moveaxis", destination, ndim)
    if len(src) != len(dst):
        raise ShapeError(f"moveaxis: source {source} and destination {destination} must have "
                         "the same number of elements")
    order = [i for i in range(ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, tuple(order))


def ravel(a: ArrayLike, order: str = "C") -> Array:
    """``a`` flattened to one dimension (``order="C"`` only).

    >>> ravel(np.zeros((2, 3))).shape
    (6,)
    """
    return reshape(as_operand(a), (-1,), order)


def _atleast(n, arrays):
    out = []
    for a in arrays:
        a = as_operand(a)
        shape = shape_of(a)
        if len(shape) < n:
            new = {1: (1,), 2: (1, 1), 3: (1, 1, 1)}[n]
            if n == 2 and len(shape) == 1:
                new = (1,) + shape
            elif n == 3 and len(shape) == 1:
                new = (1,) + shape + (1,)
            elif n == 3 and len(shape) == 2:
                new = shape + (1,)
            a = reshape(a, new)
        out.append(a)
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*arrays: ArrayLike) -> Array | list[Array]:
    """Each array with at least one dimension (scalars become shape ``(1,)``).

    >>> atleast_1d(np.float64(2.0))
    array([2.])
    """
    return _atleast(1, arrays)


def atleast_2d(*arrays: ArrayLike) -> Array | list[Array]:
    """Each array with at least two dimensions (a 1-d array becomes a row).

    >>> atleast_2d(np.zeros(3)).shape
    (1, 3)
    """
    return _atleast(2, arrays)


def atleast_3d(*arrays: ArrayLike) -> Array | list[Array]:
    """Each array with at least three dimensions (numpy's placement: ``(n,)`` becomes
    ``(1, n, 1)`` and ``(m, n)`` becomes ``(m, n, 1)``).

    >>> atleast_3d(np.zeros((2, 3))).shape
    (2, 3, 1)
    """
    return _atleast(3, arrays)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@named
def vstack(tup: Sequence[ArrayLike], *, dtype: DTypeLike | None = None) -> Array:
    """Arrays stacked vertically (along the first axis, 1-d arrays as rows).

    >>> vstack([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    array([[1., 2.],
           [3., 4.]])
    """
    return _cast(concatenate(_as_tuple(atleast_2d(*tup)), axis=0), dtype)


@named
def hstack(tup: Sequence[ArrayLike], *, dtype: DTypeLike | None = None) -> Array:
    """Arrays stacked horizontally (along the second axis; 1-d arrays end to end).

    >>> hstack([np.array([1.0]), np.array([2.0, 3.0])])
    array([1., 2., 3.])
    """
    arrays = _as_tuple(atleast_1d(*tup))
    axis = 0 if len(shape_of(arrays[0])) == 1 else 1
    return _cast(concatenate(arrays, axis=axis), dtype)


@named
def dstack(tup: Sequence[ArrayLike]) -> Array:
    """Arrays stacked along the third axis.

    >>> dstack([np.zeros((2, 3)), np.ones((2, 3))]).shape
    (2, 3, 2)
    """
    return concatenate(_as_tuple(atleast_3d(*tup)), axis=2)


@named
def array_split(ary: ArrayLike, indices_or_sections: int | Sequence[int],
                axis: int = 0) -> list[Array]:
    """Like :func:`split`, but ``N`` sections need not divide the axis evenly: the first
    ``length % N`` parts get one element more, as numpy.

    >>> [p.tolist() for p in array_split(np.arange(5.0), 3)]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    ary = as_operand(ary)
    if not isinstance(indices_or_sections, (int, np.integer)):
        return split(ary, indices_or_sections, axis)
    sections = operator.index(indices_or_sections)
    if sections <= 0:
        raise ShapeError(f"array_split: the number of sections must be positive, got {sections}")
    axis = normalize_axis("array_split", axis, len(shape_of(ary)))
    size = shape_of(ary)[axis]
    each, extra = divmod(size, sections)
    bounds = np.cumsum([0] + [each + 1] * extra + [each] * (sections - extra))
    return [_slice_axis(ary, axis, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]


@named
def roll(a: ArrayLike, shift: int | Sequence[int],
         axis: int | tuple[int, ...] | None = None) -> Array:
    """Elements of ``a`` shifted cyclically by ``shift`` along ``axis`` (the flattened array
    when None, then reshaped back); ``shift`` and ``axis`` may be tuples.

    >>> roll(np.array([1.0, 2.0, 3.0]), 1)
    array([3., 1., 2.])
    """
    a = as_operand(a)
    if axis is None:
        return reshape(roll(reshape(a, (-1,)), shift, 0), shape_of(a))
    shifts, axes = np.broadcast_arrays(np.asarray(full_value(shift)), np.asarray(axis))
    for s, ax in zip(shifts.ravel(), axes.ravel()):
        ax = normalize_axis("roll", int(ax), len(shape_of(a)))
        n = shape_of(a)[ax]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            a = concatenate([_slice_axis(a, ax, n - s, n), _slice_axis(a, ax, 0, n - s)], ax)
    return a


def _triangle(m, k, lower):
    shape = shape_of(m)
    if len(shape) < 2:
        raise ShapeError(f"{'tril' if lower else 'triu'}: m must have at least 2 dimensions, "
                         f"got shape {shape}")
    rows, cols = shape[-2:]
    xp = array_module(m)
    keep = (xp.tri(rows, cols, k, dtype=bool) if lower
            else ~xp.tri(rows, cols, operator.index(k) - 1, dtype=bool))
    return where(keep, m, zeros_like(m))


@named
def tril(m: ArrayLike, k: int = 0) -> Array:
    """The lower triangle of ``m`` (of its last two axes) at and below the ``k``-th diagonal,
    zeros above.

    >>> tril(np.ones((2, 2)))
    array([[1., 0.],
           [1., 1.]])
    """
    return _triangle(as_operand(m), k, True)


@named
def triu(m: ArrayLike, k: int = 0) -> Array:
    """The upper triangle of ``m`` at and above the ``k``-th diagonal, zeros below.

    >>> triu(np.ones((2, 2)))
    array([[1., 1.],
           [0., 1.]])
    """
    return _triangle(as_operand(m), k, False)


def _diagonal_positions(rows, cols, offset):
    """Row and column indices of the ``offset``-th diagonal of a ``rows x cols`` matrix."""
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(rows - start_r, cols - start_c))
    return np.arange(start_r, start_r + length), np.arange(start_c, start_c + length)


@named
def diagonal(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Array:
    """The ``offset``-th diagonal of the matrices of ``a`` over ``axis1`` and ``axis2``,
    placed on a last axis (a new array, not numpy's read-only view).

    >>> diagonal(np.arange(9.0).reshape(3, 3), 1)
    array([1., 5.])
    """
    a = as_operand(a)
    ndim = len(shape_of(a))
    if ndim < 2:
        raise ShapeError(f"diagonal: a must have at least 2 dimensions, got shape {shape_of(a)}")
    i, j = normalize_axis("diagonal", axis1, ndim), normalize_axis("diagonal", axis2, ndim)
    if i == j:
        raise ShapeError("diagonal: axis1 and axis2 cannot be the same")
    rest = [d for d in range(ndim) if d not in (i, j)]
    moved = transpose(a, tuple(rest + [i, j]))
    rows, cols = shape_of(moved)[-2:]
    r, c = _diagonal_positions(rows, cols, operator.index(offset))
    return getitem(moved, (Ellipsis, r, c))


@named
def diag(v: ArrayLike, k: int = 0) -> Array:
    """The ``k``-th diagonal of a 2-d ``v``, or a square matrix with the 1-d ``v`` on its
    ``k``-th diagonal.

    >>> diag(np.array([1.0, 2.0]))
    array([[1., 0.],
           [0., 2.]])
    """
    v = as_operand(v)
    shape = shape_of(v)
    k = operator.index(k)
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ShapeError(f"diag: v must be 1-d or 2-d, got shape {shape}")
    n = shape[0] + abs(k)
    r, c = _diagonal_positions(n, n, k)
    base = array_module(v).zeros((n, n), dtype_of(v))
    return index_add(base, (r, c), v)


@named
def trace(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1,
          dtype: DTypeLike | None = None, out: None = None) -> Array:
    """The sum along a diagonal of ``a`` (see :func:`diagonal`).

    >>> float(trace(np.arange(9.0).reshape(3, 3)))
    12.0
    """
    return reduce_sum(diagonal(a, offset, axis1, axis2), -1, dtype, out)


@named
def put_along_axis(arr: ArrayLike, indices: ArrayLike, values: ArrayLike, axis: int,
                   mode: str | None = None) -> Array:
    """A copy of ``arr`` with ``values`` put at ``indices`` along ``axis`` (numpy's
    ``put_along_axis``, but functional: the result is returned and ``arr`` is unchanged).
    Differentiable in ``arr`` (except at the replaced places) and in ``values``; where an index
    repeats, the values put there add up.

    >>> put_along_axis(np.zeros((2, 3)), np.array([[1], [2]]), 5.0, axis=1)
    array([[0., 5., 0.],
           [0., 0., 5.]])
    """
    if mode is not None:
        raise ShapeError("put_along_axis: mode= is not supported (indices must be in range)")
    arr = as_operand(arr)
    indices = np.asarray(full_value(indices)) if not hasattr(full_value(indices), "dtype") \
        else full_value(indices)
    if axis is None:
        arr_flat = reshape(arr, (-1,))
        return reshape(put_along_axis(arr_flat, indices, values, 0), shape_of(arr))
    shape = shape_of(arr)
    axis = normalize_axis("put_along_axis", axis, len(shape))
    if len(shape_of(indices)) != len(shape):
        raise ShapeError(f"put_along_axis: indices must have the rank of arr: arr has shape "
                         f"{shape}, indices {shape_of(indices)}")
    index = tuple(
        indices if d == axis
        else np.arange(n).reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1))
        for d, n in enumerate(shape))
    hit = index_add(array_module(arr).zeros(shape, dtype=bool), index, True)
    placed = index_add(zeros_like(arr), index, as_operand(values))
    return where(hit, placed, arr)


@named
def inner(a: ArrayLike, b: ArrayLike) -> Array:
    """The sum of products over the last axes of ``a`` and ``b`` (a product for scalars).

    >>> float(inner(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    11.0
    """
    a, b = as_operand(a), as_operand(b)
    if not shape_of(a) or not shape_of(b):
        return multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


@named
def kron(a: ArrayLike, b: ArrayLike) -> Array:
    """The Kronecker product: blocks ``a[i, j] * b``.

    >>> kron(np.array([1.0, 10.0]), np.array([1.0, 2.0]))
    array([ 1.,  2., 10., 20.])
    """
    a, b = as_operand(a), as_operand(b)
    sa, sb = shape_of(a), shape_of(b)
    rank = max(len(sa), len(sb))
    sa, sb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    a2 = reshape(a, tuple(v for d in sa for v in (d, 1)))
    b2 = reshape(b, tuple(v for d in sb for v in (1, d)))
    return reshape(multiply(a2, b2), tuple(x * y for x, y in zip(sa, sb)))

