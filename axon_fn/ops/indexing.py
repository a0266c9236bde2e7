"""Indexing: ``x[index]`` with numpy's basic and advanced rules, take, take_along_axis, the
functional scatter-add ``index_add``, and ``one_hot``.

Indices take no gradient, so ``getitem`` strips tracers from its index and passes it as a static
keyword. The VJP of every gather is a scatter-add of the cotangent into zeros (``index_add``),
and the VJP of ``index_add``'s values is the gather again, so gradients of gradients work.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.getitem(np.arange(6.0).reshape(2, 3), (slice(None), [2, 0]))
array([[2., 0.],
       [5., 3.]])
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .._core import AbstractArray, full_value, primitive
from ..backend import array_module
from ..errors import AxonTypeError, ShapeError
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import as_operand, broadcast_shapes, dtype_of, normalize_axis, shape_of
from .creation import zeros_like
from .shape import reshape

__all__ = ["getitem", "index_add", "take", "take_along_axis", "one_hot"]


class IndexingError(ShapeError, IndexError):
    """An index that does not fit its array (out of bounds, too many indices, bad mask shape).

    Both a :class:`ShapeError` and an ``IndexError``, like numpy's, so that iterating over a
    traced array (which calls ``x[0]``, ``x[1]``, ... until ``IndexError``) stops as it should.
    """


# Index normalization -----------------------------------------------------------------------------


def _is_index_array(c):
    return not isinstance(c, (int, slice)) and c is not None and c is not Ellipsis


def _slice_bound(v):
    v = full_value(v)
    return None if v is None else operator.index(v)


def _component(c, name):
    """One index component as an int, slice, None, Ellipsis, integer array or boolean mask."""
    c = full_value(c)
    if c is None or c is Ellipsis:
        return c
    if isinstance(c, slice):
        if c.step is not None and _slice_bound(c.step) == 0:
            raise IndexingError(f"{name}: slice step cannot be zero")
        return slice(_slice_bound(c.start), _slice_bound(c.stop), _slice_bound(c.step))
    if isinstance(c, (bool, np.bool_)):
        raise IndexingError(
            f"{name}: a scalar boolean index is not supported; use None to insert an axis"
        )
    if isinstance(c, (int, np.integer)):
        return int(c)
    if not hasattr(c, "dtype"):
        c = np.asarray(c)
        if c.size == 0 and c.dtype == np.float64:  # `x[[]]` is an empty integer index in numpy
            c = c.astype(np.intp)
    dtype = np.dtype(c.dtype)
    if dtype == np.bool_:
        if c.ndim == 0:
            raise IndexingError(
                f"{name}: a scalar boolean index is not supported; use None to insert an axis"
            )
        return c
    if not np.issubdtype(dtype, np.integer):
        raise IndexingError(f"{name}: index arrays must be integer or boolean, got dtype {dtype}")
    if c.ndim == 0 and not isinstance(c, AbstractArray):
        return int(c)
    return c


def _consumed(c):
    """How many axes of the indexed array a component uses."""
    if c is None or c is Ellipsis:
        return 0
    if _is_index_array(c) and dtype_of(c) == np.bool_:
        return len(shape_of(c))
    return 1


_BOUND_TYPES = (int, type(None))


def _is_plain_basic(index, ndim):
    """Whether ``index`` is already normalized: Python ints, int-bounded slices and None only.

    The common case (``x[0]``, ``x[:, 1:3]``), checked cheaply to skip the general path.
    """
    used = 0
    for c in index:
        kind = type(c)
        if kind is slice:
            if (type(c.start) not in _BOUND_TYPES or type(c.stop) not in _BOUND_TYPES
                    or type(c.step) not in _BOUND_TYPES or c.step == 0):
                return False
        elif kind is not int:
            if c is not None:
                return False
            continue
        used += 1
    return used <= ndim


def normalize_index(index, shape, name="getitem"):
    """``index`` as a tuple of ints, slices, None and integer arrays (numpy's meaning kept).

    Tracers are stripped, lists become arrays, the Ellipsis is expanded and boolean masks are
    replaced by the integer arrays of their true positions.
    """
    if not isinstance(index, tuple):
        index = (index,)
    if _is_plain_basic(index, len(shape)):
        return index
    parts = [_component(c, name) for c in index]
    if sum(c is Ellipsis for c in parts) > 1:
        raise IndexingError(f"{name}: an index can only have a single ellipsis ('...')")
    used = sum(_consumed(c) for c in parts)
    if used > len(shape):
        raise IndexingError(
            f"{name}: too many indices for an array of shape {shape}: the index uses {used} axes"
        )
    out, dim = [], 0
    for c in parts:
        if c is Ellipsis:
            fill = len(shape) - used
            out.extend([slice(None)] * fill)
            dim += fill
        elif _is_index_array(c) and dtype_of(c) == np.bool_:
            out.extend(_mask_positions(c, shape, dim, name))
            dim += len(shape_of(c))
        else:
            out.append(c)
            dim += _consumed(c)
    return tuple(out)


def _mask_positions(mask, shape, dim, name):
    mask_shape = shape_of(mask)
    if isinstance(mask, AbstractArray):
        raise AxonTypeError(
            f"{name}: the result shape of boolean-mask indexing depends on the mask's values, "
            "which an abstract (eval_shape) mask does not have"
        )
    for k, size in enumerate(mask_shape):
        if shape[dim + k] != size:
            raise IndexingError(
                f"{name}: boolean index did not match the indexed array along axis {dim + k}: "
                f"the axis has size {shape[dim + k]}, the mask {size} (mask shape {mask_shape}, "
                f"array shape {shape})"
            )
    return array_module(mask).nonzero(mask)


# Shape of an indexing result ---------------------------------------------------------------------


def _check_bounds(name, c, axis, size):
    if isinstance(c, AbstractArray):
        return
    if isinstance(c, int):
        low = high = c
    elif c.size == 0:
        return
    else:
        low, high = int(c.min()), int(c.max())
    for i in (low, high):
        if not -size <= i < size:
            raise IndexingError(
                f"{name}: index {i} is out of bounds for axis {axis} with size {size}"
            )


def indexed_shape(name, shape, index):
    """The shape of ``x[index]`` for an array of ``shape`` and a normalized index."""
    used = sum(c is not None for c in index)
    if used > len(shape):
        raise IndexingError(
            f"{name}: too many indices for an array of shape {shape}: the index uses {used} axes"
        )
    # With any index array present, numpy treats integers as (0-d) index arrays too.
    advanced = any(_is_index_array(c) for c in index)
    out, positions, index_shapes, dim = [], [], [], 0
    place = None
    for pos, c in enumerate(index):
        if c is None:
            out.append(1)
            continue
        size = shape[dim]
        if isinstance(c, slice):
            out.append(len(range(*c.indices(size))))
        else:
            _check_bounds(name, c, dim, size)
            if advanced:
                if place is None:
                    place = len(out)
                positions.append(pos)
                index_shapes.append(shape_of(c))
        dim += 1
    out.extend(shape[dim:])
    if not advanced:
        return tuple(out)
    try:
        gathered = tuple(np.broadcast_shapes(*index_shapes))
    except ValueError:
        listed = ", ".join(str(s) for s in index_shapes)
        raise IndexingError(
            f"{name}: index arrays could not be broadcast together: shapes {listed}"
        ) from None
    # Index arrays separated by a slice or None put their dimensions first (numpy's rule).
    if positions == list(range(positions[0], positions[0] + len(positions))):
        return tuple(out[:place]) + gathered + tuple(out[place:])
    return gathered + tuple(out)


def _on_backend(xp, index):
    """Index arrays moved to the data's backend (indices are metadata, not data)."""
    if xp is np:
        return index
    return tuple(xp.asarray(c) if isinstance(c, np.ndarray) else c for c in index)


def _has_abstract(index):
    return any(isinstance(c, AbstractArray) for c in index)


# getitem and index_add ---------------------------------------------------------------------------


def _getitem_vjp(g, ans, x, *, index):
    return _index_add(zeros_like(x), g, index=index)


getitem_normalized = primitive(
    "getitem",
    lambda xp, x, *, index: x[_on_backend(xp, index)],
    lambda x, *, index: AbstractArray(indexed_shape("getitem", shape_of(x), index), dtype_of(x)),
    (_getitem_vjp,),
    doc="``x[index]`` for an index already normalized by ``normalize_index`` (internal callers).",
)


def getitem(x: ArrayLike, index: Any) -> Array:
    """``x[index]`` with numpy's rules: ints, slices, None, ``...``, integer and boolean arrays.

    This is ``__getitem__`` of traced values, so ``x[idx]`` works inside ``grad``; the gradient
    scatters back into the indexed positions (repeated indices accumulate).

    >>> x = np.arange(12.0).reshape(3, 4)
    >>> getitem(x, (slice(1, None), -1))
    array([ 7., 11.])
    >>> getitem(x, x[:, 0] > 3)
    array([[ 4.,  5.,  6.,  7.],
           [ 8.,  9., 10., 11.]])
    """
    if type(x) is list:
        x = np.asarray(x)
    shape = shape_of(x)
    index = normalize_index(index, shape)
    if _has_abstract(index):
        return AbstractArray(indexed_shape("getitem", shape, index), dtype_of(full_value(x)))
    return getitem_normalized(x, index=index)


def _index_add_impl(xp, x, values, *, index):
    out = xp.array(x, copy=True)
    index = _on_backend(xp, index)
    if any(_is_index_array(c) for c in index):
        xp.add.at(out, index, values)  # unbuffered: repeated indices accumulate
    else:
        out[index] += values
    return out


def _index_add_rule(x, values, *, index):
    target = indexed_shape("index_add", shape_of(x), index)
    try:
        fits = broadcast_shapes("index_add", shape_of(values), target) == target
    except ShapeError:
        fits = False
    if not fits:
        raise ShapeError(
            f"index_add: values of shape {shape_of(values)} do not broadcast to the indexed "
            f"shape {target} (x has shape {shape_of(x)})"
        )
    return AbstractArray(shape_of(x), dtype_of(x))


_index_add = primitive(
    "index_add", _index_add_impl, _index_add_rule,
    (lambda g, ans, x, values, *, index: g,
     lambda g, ans, x, values, *, index: getitem_normalized(g, index=index)),
    doc="``x`` with ``values`` added at a normalized ``index`` (internal callers).",
)


def index_add(x: ArrayLike, index: Any, values: ArrayLike) -> Array:
    """A copy of ``x`` with ``values`` added at ``x[index]``; repeated indices accumulate.

    The functional form of ``np.add.at(x.copy(), index, values)``; differentiable in ``x`` and
    ``values``. ``values`` broadcasts to the shape of ``x[index]``.

    >>> index_add(np.zeros(4), np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    array([4., 0., 2., 0.])
    """
    shape = shape_of(x)
    index = normalize_index(index, shape, "index_add")
    if _has_abstract(index):
        return _index_add_rule(AbstractArray(shape, dtype_of(full_value(x))),
                               AbstractArray(shape_of(values), dtype_of(full_value(values))),
                               index=index)
    return _index_add(x, values, index=index)


# take and take_along_axis ------------------------------------------------------------------------


def _require_integer(name, indices, argument="indices"):
    dtype = dtype_of(full_value(indices))
    if not np.issubdtype(dtype, np.integer):
        raise AxonTypeError(f"{name}: {argument} must be integers, got dtype {dtype}")


def _as_indices(indices):
    indices = full_value(indices)
    return indices if hasattr(indices, "dtype") or isinstance(indices, int) else np.asarray(indices)


def _take_rule(x, indices, *, axis):
    _require_integer("take", indices)
    shape = shape_of(x)
    axis = normalize_axis("take", axis, len(shape))
    _check_bounds("take", indices, axis, shape[axis])
    return AbstractArray(shape[:axis] + shape_of(indices) + shape[axis + 1:], dtype_of(x))


def _take_vjp(g, ans, x, indices, *, axis):
    index = (slice(None),) * axis + (full_value(indices),)
    return _index_add(zeros_like(x), g, index=index)


_take = primitive(
    "take", lambda xp, x, indices, *, axis: xp.take(x, indices, axis=axis), _take_rule,
    (_take_vjp, None),
)


def take(a: ArrayLike, indices: ArrayLike, axis: int | None = None, out: None = None,
         mode: str | None = None) -> Array:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (of the flattened ``x`` if None).

    The result has shape ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]``; negative
    indices count from the end. An embedding lookup is ``take(table, tokens, axis=0)``.

    >>> take(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1, 1, 0]), axis=0)
    array([[3., 4.],
           [3., 4.],
           [1., 2.]])
    """
    _no_out_or_mode("take", out, mode)
    x = as_operand(a)
    indices = _as_indices(indices)
    _require_integer("take", indices)
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    return _take(x, indices, axis=normalize_axis("take", axis, len(shape_of(x))))


def _no_out_or_mode(name, out, mode):
    if out is not None:
        raise AxonTypeError(f"{name}: out={out!r} is not supported: axon_fn ops return new "
                            "arrays; assign the result instead")
    if mode not in (None, "raise"):
        raise AxonTypeError(f"{name}: mode={mode!r} is not supported: indices must be in range "
                            "(mode='raise')")


def _take_along_axis_rule(x, indices, *, axis):
    _require_integer("take_along_axis", indices)
    xs, js = shape_of(x), shape_of(indices)
    if len(xs) != len(js):
        raise ShapeError(
            f"take_along_axis: indices must have the rank of x: x has shape {xs}, "
            f"indices {js}"
        )
    axis = normalize_axis("take_along_axis", axis, len(xs))
    others = broadcast_shapes("take_along_axis", xs[:axis] + (1,) + xs[axis + 1:],
                              js[:axis] + (1,) + js[axis + 1:])
    _check_bounds("take_along_axis", indices, axis, xs[axis])
    return AbstractArray(others[:axis] + (js[axis],) + others[axis + 1:], dtype_of(x))


def _take_along_axis_vjp(g, ans, x, indices, *, axis):
    # Scatter through a full integer index: a broadcastable arange for every other axis.
    xs, indices = shape_of(x), full_value(indices)
    xp = array_module(indices)
    index = tuple(
        indices if d == axis
        else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (len(xs) - d - 1))
        for d, n in enumerate(xs)
    )
    return _index_add(zeros_like(x), g, index=index)


_take_along_axis = primitive(
    "take_along_axis",
    lambda xp, x, indices, *, axis: xp.take_along_axis(x, indices, axis=axis),
    _take_along_axis_rule, (_take_along_axis_vjp, None),
)


def take_along_axis(arr: ArrayLike, indices: ArrayLike, axis: int = -1) -> Array:
    """Pick, along ``axis`` (the last by default, as numpy 2), the elements of ``arr`` that
    ``indices`` names (``np.take_along_axis``).

    ``indices`` has the rank of ``arr``; other axes broadcast. With ``axis=None`` ``arr`` is
    flattened and ``indices`` must be 1-d. Typical use: the log-probability of each label,
    ``take_along_axis(logp, labels[:, None], axis=1)``.

    >>> take_along_axis(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1], [0]]), axis=1)
    array([[2.],
           [3.]])
    """
    x = as_operand(arr)
    indices = _as_indices(indices)
    _require_integer("take_along_axis", indices)
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    return _take_along_axis(x, indices, axis=normalize_axis("take_along_axis", axis,
                                                            len(shape_of(x))))


# one_hot -----------------------------------------------------------------------------------------


def _one_hot_impl(xp, labels, *, num_classes, dtype, axis):
    labels = xp.asarray(labels)
    axis = normalize_axis("one_hot", axis, labels.ndim + 1)
    classes = xp.arange(num_classes).reshape((num_classes,) + (1,) * (labels.ndim - axis))
    return (xp.expand_dims(labels, axis) == classes).astype(dtype)


def _one_hot_rule(labels, *, num_classes, dtype, axis):
    _require_integer("one_hot", labels, "labels")
    shape = shape_of(labels)
    axis = normalize_axis("one_hot", axis, len(shape) + 1)
    return AbstractArray(shape[:axis] + (num_classes,) + shape[axis:], dtype)


_one_hot = primitive("one_hot", _one_hot_impl, _one_hot_rule, None)


def one_hot(labels: ArrayLike, num_classes: int, dtype: DTypeLike = "float32",
            axis: int = -1) -> Array:
    """Integer ``labels`` as one-hot vectors of length ``num_classes`` along a new ``axis``.

    Labels outside ``[0, num_classes)`` give all-zero vectors. Not differentiable.

    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    num_classes = operator.index(num_classes)
    if num_classes < 0:
        raise ShapeError(f"one_hot: num_classes must be non-negative, got {num_classes}")
    labels = _as_indices(labels)
    _require_integer("one_hot", labels, "labels")
    return _one_hot(labels, num_classes=num_classes, dtype=np.dtype(dtype), axis=int(axis))


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
