"""Joining, splitting and rearranging arrays: concatenate, stack, split, pad, flip, tile, repeat.

concatenate, stack, pad and flip are primitives; split, tile and repeat are compositions of
slicing, broadcasting and reshaping, so their gradients come for free.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.concatenate([np.zeros((2, 1)), np.ones((2, 2))], axis=1)
array([[0., 1., 1.],
       [0., 1., 1.]])
"""

from __future__ import annotations

import operator
from typing import Sequence

import numpy as np

from .._core import AbstractArray, Tracer, VariadicVJP, full_value, primitive
from ..backend import array_module
from ..errors import AxonTypeError, ShapeError
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import (
    as_operand, dtype_of, normalize_axes, normalize_axis, result_dtype, shape_of,
)
from .indexing import getitem_normalized, take
from .shape import broadcast_to, reshape

__all__ = ["concatenate", "stack", "split", "pad", "flip", "tile", "repeat"]

def _slice_axis(x, axis, start, stop):
    """``x`` restricted to ``start:stop`` along ``axis``."""
    return getitem_normalized(x, index=(slice(None),) * axis + (slice(start, stop),))


# concatenate -------------------------------------------------------------------------------------


def _concatenate_rule(*arrays, axis):
    shapes = [shape_of(a) for a in arrays]
    if not shapes:
        raise ShapeError("concatenate: need at least one array")
    first = shapes[0]
    if not first:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis("concatenate", axis, len(first))
    for i, s in enumerate(shapes[1:], 1):
        if len(s) != len(first) or any(a != b for d, (a, b) in enumerate(zip(s, first))
                                       if d != axis):
            raise ShapeError(
                f"concatenate: along axis {axis}, array 0 has shape {first} but array {i} has "
                f"shape {s}; all dimensions except axis {axis} must match"
            )
    size = sum(s[axis] for s in shapes)
    return AbstractArray(first[:axis] + (size,) + first[axis + 1:], result_dtype(*arrays))


def _concatenate_vjp(position):
    def rule(g, ans, *arrays, axis):
        axis = normalize_axis("concatenate", axis, len(shape_of(g)))
        start = sum(shape_of(a)[axis] for a in arrays[:position])
        return _slice_axis(g, axis, start, start + shape_of(arrays[position])[axis])

    return rule


_concatenate = primitive(
    "concatenate",
    lambda xp, *arrays, axis: xp.concatenate(arrays, axis=axis),
    _concatenate_rule,
    VariadicVJP(_concatenate_vjp),
)


def concatenate(arrays: ArrayLike, /, axis: int = 0, out: None = None, *,
                dtype: DTypeLike | None = None, casting: str = "same_kind") -> Array:
    """Join a sequence of arrays along an existing ``axis`` (all arrays if ``axis`` is None,
    after flattening them).

    >>> concatenate([np.array([1.0, 2.0]), np.array([3.0])])
    array([1., 2., 3.])
    """
    _no_out("concatenate", out, casting)
    arrays = [as_operand(a) for a in arrays]
    if axis is None:
        arrays, axis = [reshape(a, shape=(-1,)) for a in arrays], 0
    return _cast(_concatenate(*arrays, axis=axis), dtype)


def _no_out(name, out, casting="same_kind"):
    if out is not None:
        raise AxonTypeError(f"{name}: out={out!r} is not supported: axon_fn ops return new "
                            "arrays; assign the result instead")
    if casting != "same_kind":
        raise AxonTypeError(f"{name}: casting={casting!r} is not supported: only the default "
                            "'same_kind'")


def _cast(result, dtype):
    if dtype is None:
        return result
    from .elementwise import astype

    return astype(result, np.dtype(dtype))


# stack -------------------------------------------------------------------------------------------


def _stack_rule(*arrays, axis):
    shapes = [shape_of(a) for a in arrays]
    if not shapes:
        raise ShapeError("stack: need at least one array")
    for i, s in enumerate(shapes[1:], 1):
        if s != shapes[0]:
            raise ShapeError(
                f"stack: all arrays must have the same shape, but array 0 has shape "
                f"{shapes[0]} and array {i} has shape {s}"
            )
    axis = normalize_axis("stack", axis, len(shapes[0]) + 1)
    return AbstractArray(shapes[0][:axis] + (len(shapes),) + shapes[0][axis:],
                         result_dtype(*arrays))


def _stack_vjp(position):
    def rule(g, ans, *arrays, axis):
        axis = normalize_axis("stack", axis, len(shape_of(g)))
        return getitem_normalized(g, index=(slice(None),) * axis + (position,))

    return rule


_stack = primitive(
    "stack",
    lambda xp, *arrays, axis: xp.stack(arrays, axis=axis),
    _stack_rule,
    VariadicVJP(_stack_vjp),
)


def stack(arrays: ArrayLike, axis: int = 0, out: None = None, *, dtype: DTypeLike | None = None,
          casting: str = "same_kind") -> Array:
    """Join a sequence of same-shaped arrays along a new ``axis``.

    >>> stack([np.zeros(2), np.ones(2)], axis=1)
    array([[0., 1.],
           [0., 1.]])
    """
    _no_out("stack", out, casting)
    return _cast(_stack(*(as_operand(a) for a in arrays), axis=axis), dtype)


# split -------------------------------------------------------------------------------------------


def split(ary: ArrayLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Array]:
    """A list of sub-arrays of ``x`` along ``axis``, as ``np.split``.

    An integer ``N`` gives ``N`` equal parts (the axis length must divide evenly); a sequence
    of indices gives the parts between those boundaries (out-of-range boundaries are clipped,
    so parts may be empty).

    >>> [p.tolist() for p in split(np.arange(5.0), [2, 3])]
    [[0.0, 1.0], [2.0], [3.0, 4.0]]
    """
    x = as_operand(ary)
    shape = shape_of(x)
    axis = normalize_axis("split", axis, len(shape))
    size = shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or size % sections:
            raise ShapeError(
                f"split: axis {axis} of length {size} (shape {shape}) cannot be split into "
                f"{sections} equal sections"
            )
        bounds = list(range(0, size + 1, size // sections)) if size else [0] * (sections + 1)
    else:
        bounds = [0] + [operator.index(i) for i in indices_or_sections] + [size]
    return [_slice_axis(x, axis, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


# pad ---------------------------------------------------------------------------------------------


def _pad_pairs(pad_width, shape):
    """numpy's ``pad_width`` forms (int, (n,), (lo, hi), per-axis pairs) as per-axis pairs."""
    try:
        widths = np.asarray(pad_width)
        if widths.dtype == object or not np.issubdtype(widths.dtype, np.integer):
            raise TypeError
        pairs = np.broadcast_to(widths, (len(shape), 2))
    except (TypeError, ValueError):
        raise ShapeError(
            f"pad: pad_width={pad_width!r} does not fit an array of shape {shape}; expected an "
            "int, a (before, after) pair, or one pair of ints per axis"
        ) from None
    if (pairs < 0).any():
        raise ShapeError(f"pad: pad_width must be non-negative, got {pad_width!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def _pad_rule(x, *, pad_width, constant_value):
    shape = shape_of(x)
    if len(pad_width) != len(shape):
        raise ShapeError(f"pad: pad_width has {len(pad_width)} pairs for an array of shape {shape}")
    return AbstractArray(tuple(d + lo + hi for d, (lo, hi) in zip(shape, pad_width)), dtype_of(x))


def _pad_vjp(g, ans, x, *, pad_width, constant_value):
    shape = shape_of(x)
    return getitem_normalized(
        g, index=tuple(slice(lo, lo + d) for d, (lo, _) in zip(shape, pad_width)))


_pad_constant = primitive(
    "pad",
    lambda xp, x, *, pad_width, constant_value: xp.pad(
        x, pad_width, mode="constant", constant_values=constant_value),
    _pad_rule,
    (_pad_vjp,),
)


def _pad_edges(x, axis, lo, hi, mode):
    """The pieces padded before and after ``x`` along ``axis`` for a non-constant ``mode``."""
    n = shape_of(x)[axis]
    limit = {"edge": None, "reflect": n - 1, "symmetric": n, "wrap": n}[mode]
    if n == 0:
        raise ShapeError(f"pad: mode={mode!r} cannot pad axis {axis}, which has length 0")
    if limit is not None and max(lo, hi) > limit:
        raise ShapeError(
            f"pad: mode={mode!r} can pad axis {axis} of length {n} by at most {limit} on each "
            f"side, got ({lo}, {hi})"
        )
    if mode == "edge":
        shape = shape_of(x)
        first, last = _slice_axis(x, axis, 0, 1), _slice_axis(x, axis, n - 1, n)
        return (broadcast_to(first, shape=_with(shape, axis, lo)),
                broadcast_to(last, shape=_with(shape, axis, hi)))
    if mode == "wrap":
        return _slice_axis(x, axis, n - lo, n), _slice_axis(x, axis, 0, hi)
    skip = 1 if mode == "reflect" else 0
    before = flip(_slice_axis(x, axis, skip, skip + lo), axis)
    after = flip(_slice_axis(x, axis, n - skip - hi, n - skip), axis)
    return before, after


def _with(shape, axis, size):
    return shape[:axis] + (size,) + shape[axis + 1:]


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(array: ArrayLike, pad_width: int | Sequence[int] | Sequence[Sequence[int]],
        mode: str = "constant", *, constant_values: float = 0,
        constant_value: float | None = None) -> Array:
    """``array`` padded by ``pad_width`` (numpy's forms: int, ``(before, after)``, or a pair per
    axis). ``mode`` is ``"constant"`` (fill with ``constant_values``, one number; the older
    spelling ``constant_value`` is accepted too), ``"edge"``,
    ``"reflect"``, ``"symmetric"`` or ``"wrap"`` as in ``np.pad``; the non-constant modes pad
    at most the axis length on each side (``reflect``: one less).

    >>> pad(np.array([[1.0, 2.0]]), ((0, 0), (1, 2)))
    array([[0., 1., 2., 0., 0.]])
    >>> pad(np.array([1.0, 2.0, 3.0]), 2, mode="reflect")
    array([3., 2., 1., 2., 3., 2., 1.])
    >>> pad(np.array([1.0]), 1, constant_values=5)
    array([5., 1., 5.])
    """
    x = as_operand(array)
    if constant_value is None:
        constant_value = constant_values
    if np.ndim(full_value(constant_value)) != 0 and not isinstance(constant_value,
                                                                   (Tracer, AbstractArray)):
        raise AxonTypeError(f"pad: constant_values must be one number, got {constant_value!r}")
    shape = shape_of(x)
    pairs = _pad_pairs(pad_width, shape)
    if mode == "constant":
        if isinstance(constant_value, (Tracer, AbstractArray)):
            raise AxonTypeError(
                "pad: constant_value must be a Python number (it takes no gradient); to pad with "
                "an array value v, pad x - v with zeros and add v"
            )
        return _pad_constant(x, pad_width=pairs, constant_value=constant_value)
    if mode not in _PAD_MODES:
        raise ShapeError(f"pad: mode={mode!r} is not supported; expected one of {_PAD_MODES}")
    for axis, (lo, hi) in enumerate(pairs):
        if lo or hi:
            before, after = _pad_edges(x, axis, lo, hi, mode)
            x = concatenate([before, x, after], axis=axis)
    return x


# flip --------------------------------------------------------------------------------------------


def _flip_rule(x, *, axis):
    normalize_axes("flip", axis, len(shape_of(x)))
    return AbstractArray(shape_of(x), dtype_of(x))


_flip = primitive(
    "flip", lambda xp, x, *, axis: xp.flip(x, axis), _flip_rule,
    (lambda g, ans, x, *, axis: _flip(g, axis=axis),),
)


def flip(m: ArrayLike, axis: int | tuple[int, ...] | None = None) -> Array:
    """``x`` with the order of elements reversed along ``axis`` (an int, a tuple, or all axes).

    >>> flip(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1)
    array([[2., 1.],
           [4., 3.]])
    """
    m = as_operand(m)
    return _flip(m, axis=normalize_axes("flip", axis, len(shape_of(m))))


# tile and repeat ---------------------------------------------------------------------------------


def _non_negative_ints(name, argument, values):
    values = tuple(operator.index(v) for v in values)
    if any(v < 0 for v in values):
        raise ShapeError(f"{name}: {argument} must be non-negative, got {values}")
    return values


def tile(A: ArrayLike, reps: int | Sequence[int]) -> Array:  # noqa: N803 - numpy's name
    """``x`` repeated ``reps`` times along each axis, as ``np.tile`` (``reps`` an int or tuple;
    the shorter of ``x.shape`` and ``reps`` is padded with leading ones).

    >>> tile(np.array([1.0, 2.0]), (2, 2))
    array([[1., 2., 1., 2.],
           [1., 2., 1., 2.]])
    """
    x = as_operand(A)
    reps = full_value(reps)
    reps = _non_negative_ints("tile", "reps", (reps,) if np.ndim(reps) == 0 else reps)
    shape = shape_of(x)
    rank = max(len(shape), len(reps))
    shape = (1,) * (rank - len(shape)) + shape
    reps = (1,) * (rank - len(reps)) + reps
    # Each axis d of length n becomes a pair (reps[d], n): broadcast, then merge the pairs.
    interleaved = tuple(v for pair in zip((1,) * rank, shape) for v in pair)
    expanded = tuple(v for pair in zip(reps, shape) for v in pair)
    out = broadcast_to(reshape(x, shape=interleaved), shape=expanded)
    return reshape(out, shape=tuple(r * n for r, n in zip(reps, shape)))


def repeat(a: ArrayLike, repeats: int | ArrayLike, axis: int | None = None) -> Array:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (of the flattened ``x``
    if None), as ``np.repeat``; ``repeats`` is an int or one count per element.

    >>> repeat(np.array([[1.0, 2.0]]), 2, axis=1)
    array([[1., 1., 2., 2.]])
    >>> repeat(np.array([1.0, 2.0, 3.0]), [0, 1, 2])
    array([2., 3., 3.])
    """
    x = as_operand(a)
    if axis is None:
        x, axis = reshape(x, shape=(-1,)), 0
    shape = shape_of(x)
    axis = normalize_axis("repeat", axis, len(shape))
    repeats = full_value(repeats)
    if np.ndim(repeats) == 0:
        (count,) = _non_negative_ints("repeat", "repeats", (repeats,))
        # An axis of length n becomes (n, count) by broadcasting, then n * count by merging.
        expanded = reshape(x, shape=shape[:axis + 1] + (1,) + shape[axis + 1:])
        expanded = broadcast_to(expanded, shape=shape[:axis + 1] + (count,) + shape[axis + 1:])
        return reshape(expanded, shape=_with(shape, axis, shape[axis] * count))
    counts = _non_negative_ints("repeat", "repeats", np.ravel(repeats))
    if len(counts) not in (1, shape[axis]):
        raise ShapeError(
            f"repeat: {len(counts)} repeat counts for axis {axis} of length {shape[axis]} "
            f"(shape {shape})"
        )
    positions = np.repeat(np.arange(shape[axis]), counts)
    return take(x, array_module(x).asarray(positions), axis=axis)


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
