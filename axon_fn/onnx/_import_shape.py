"""ONNX importers of the shape, indexing and constant-making ops (private).

Shape values (the outputs of ``Shape``, ``Range``, ``ConstantOfShape`` and the integer
arithmetic around them) are host numpy arrays: computed at import when the shapes are static,
and from the arrays' concrete shapes at run time otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ._import_context import Value
from ._import_registry import handles

__all__ = []

_INT64_MAX = np.iinfo(np.int64).max


def _ints(values):
    return tuple(int(v) for v in np.ravel(np.asarray(values)))


def _axes(ctx, position, since, attr="axes"):
    """Axes given as an attribute (before opset ``since``) or as input ``position``."""
    if ctx.opset >= since:
        axes = ctx.constant(position, attr)
    else:
        axes = ctx.attr(attr)
    return None if axes is None else _ints(axes)


# Constants --------------------------------------------------------------------------------------


@handles("Constant")
def _constant(ctx):
    for key in ("value", "sparse_value"):
        if key in ctx.attrs:
            if key == "sparse_value":
                raise ctx.error("sparse constants are not supported")
            return Value.constant(ctx.attr(key))
    if "value_float" in ctx.attrs:
        return Value.constant(np.asarray(ctx.attr("value_float"), np.float32))
    if "value_floats" in ctx.attrs:
        return Value.constant(np.asarray(ctx.attr("value_floats"), np.float32))
    if "value_int" in ctx.attrs:
        return Value.constant(np.asarray(ctx.attr("value_int"), np.int64))
    if "value_ints" in ctx.attrs:
        return Value.constant(np.asarray(ctx.attr("value_ints"), np.int64))
    raise ctx.error("a Constant needs a numeric value attribute (strings are not supported)")


@handles("ConstantOfShape", settings=(0,))
def _constant_of_shape(ctx):
    value = ctx.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return ctx.apply(lambda shape: np.full(_ints(shape), fill[0], fill.dtype), ctx.inputs[:1])


def _range(start, limit, delta):
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    count = max(int(math.ceil((limit - start) / delta)), 0)
    return (start + np.arange(count) * delta).astype(start.dtype)


@handles("Range", settings=(0, 1, 2))
def _range_op(ctx):
    return ctx.apply(_range, ctx.inputs[:3])


@handles("Identity")
def _identity(ctx):
    return ctx.inputs[0]


@handles("Dropout")
def _dropout(ctx):
    if ctx.n_outputs > 1 and ctx.proto.output[1]:
        mask = ctx.apply(lambda x: np.ones(x.shape, bool), ctx.inputs[:1])
        return ctx.inputs[0], mask
    return ctx.inputs[0]


# Shapes -------------------------------------------------------------------------------------------


def _shape_of(x, *, start=0, end=None):
    return np.asarray(x.shape, np.int64)[start:end]


@handles("Shape")
def _shape(ctx):
    x = ctx.input(0)
    start, end = int(ctx.attr("start", 0)), ctx.attr("end")
    end = None if end is None else int(end)
    static = x.static_shape()
    if static is not None:  # folded: a shape subgraph over static shapes disappears
        return Value.constant(np.asarray(static, np.int64)[start:end])
    return ctx.apply(_shape_of, ctx.inputs[:1], start=start, end=end)


@handles("Size")
def _size(ctx):
    static = ctx.input(0).static_shape()
    if static is not None:
        return Value.constant(np.asarray(math.prod(static), np.int64))
    return ctx.apply(lambda x: np.asarray(math.prod(x.shape), np.int64), ctx.inputs[:1])


def _reshape(x, shape, *, allowzero=0):
    target = list(_ints(shape))
    if not allowzero:  # 0 copies the input's size on that axis
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return ops.reshape(x, shape=tuple(target))


@handles("Reshape", settings=(1,))
def _reshape_op(ctx):
    if ctx.opset < 5:
        shape = np.asarray(ctx.attr("shape"), np.int64)
        return ctx.apply(lambda x: _reshape(x, shape), ctx.inputs[:1])
    return ctx.apply(_reshape, ctx.inputs[:2], allowzero=int(ctx.attr("allowzero", 0)))


def _flatten(x, *, axis):
    axis = axis % len(x.shape) if axis < 0 else axis
    return ops.reshape(x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


@handles("Flatten")
def _flatten_op(ctx):
    return ctx.apply(_flatten, ctx.inputs[:1], axis=int(ctx.attr("axis", 1)))


@handles("Transpose")
def _transpose(ctx):
    perm = ctx.attr("perm")
    return ctx.apply(lambda x, *, axes: ops.transpose(x, axes=axes), ctx.inputs[:1],
                     axes=None if perm is None else tuple(int(p) for p in perm))


@handles("Squeeze", settings=(1,))
def _squeeze(ctx):
    axes = _axes(ctx, 1, 13)

    def squeeze(x, *, axes):
        if axes is None:
            axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
        return ops.squeeze(x, axis=tuple(a % len(x.shape) for a in axes)) if axes else x

    return ctx.apply(squeeze, ctx.inputs[:1], axes=axes)


@handles("Unsqueeze", settings=(1,))
def _unsqueeze(ctx):
    axes = _axes(ctx, 1, 13)

    def unsqueeze(x, *, axes):
        rank = len(x.shape) + len(axes)
        for a in sorted(a % rank for a in axes):
            x = ops.expand_dims(x, axis=a)
        return x

    return ctx.apply(unsqueeze, ctx.inputs[:1], axes=axes)


@handles("Concat")
def _concat(ctx):
    def concat(*xs, axis):
        xs = [x for x in xs if x is not None]
        if len({np.dtype(x.dtype) for x in xs}) > 1 and all(
                np.dtype(x.dtype).kind in "iu" for x in xs):
            xs = [ops.astype(x, dtype="int64") for x in xs]
        return ops.concatenate(xs, axis=axis)
    return ctx.apply(concat, ctx.inputs, axis=int(ctx.attr("axis")))


def _split_sizes(x, split, axis, n):
    size = x.shape[axis]
    if split is not None:
        return _ints(split)
    part = -(-size // n)  # equal parts, the last one smaller (opset 18's num_outputs)
    return tuple(min(part, size - part * i) for i in range(n))


@handles("Split", settings=(1,))
def _split(ctx):
    axis = int(ctx.attr("axis", 0))
    split = ctx.constant(1, "split") if ctx.opset >= 13 else ctx.attr("split")
    n = ctx.n_outputs

    def run(x, *, split, axis):
        sizes = _split_sizes(x, split, axis, n)
        ends = np.cumsum(sizes)
        index = [slice(None)] * len(x.shape)
        parts = []
        for start, end in zip(ends - np.asarray(sizes), ends):
            index[axis] = slice(int(start), int(end))
            parts.append(x[tuple(index)])
        return tuple(parts)

    return ctx.apply(run, ctx.inputs[:1], n_out=n,
                     split=None if split is None else _ints(split), axis=axis)


def _slice_bounds(size, start, end, step):
    """ONNX's clamped slice bounds as a Python slice."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        return slice(start, end, step)
    start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
    return slice(start, None if end < 0 else end, step)


def _slice(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = range(len(starts)) if axes is None else _ints(axes)
    steps = (1,) * len(starts) if steps is None else _ints(steps)
    index = [slice(None)] * len(x.shape)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        axis %= len(x.shape)
        index[axis] = _slice_bounds(x.shape[axis], start, min(end, _INT64_MAX), step)
    return x[tuple(index)]


@handles("Slice", settings=(1, 2, 3, 4))
def _slice_op(ctx):
    if ctx.opset < 10:
        starts, ends, axes = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes")
        return ctx.apply(lambda x: _slice(x, starts, ends, axes), ctx.inputs[:1])
    return ctx.apply(_slice, [ctx.input(i) for i in range(5)])


def _positive(indices, size):
    """Negative indices counted from the end, as ONNX allows (host index arrays only)."""
    if isinstance(indices, np.ndarray) and indices.size and indices.min() < 0:
        return np.where(indices < 0, indices + size, indices)
    return indices


@handles("Gather")
def _gather(ctx):
    def gather(x, indices, *, axis):
        indices = _positive(indices, x.shape[axis])
        if isinstance(x, np.ndarray) and isinstance(indices, np.ndarray):
            return np.take(x, indices, axis=axis)
        return ops.take(x, indices, axis=axis)
    return ctx.apply(gather, ctx.inputs[:2], axis=int(ctx.attr("axis", 0)))


@handles("GatherElements")
def _gather_elements(ctx):
    def gather(x, indices, *, axis):
        return ops.take_along_axis(x, _positive(indices, x.shape[axis]), axis=axis)
    return ctx.apply(gather, ctx.inputs[:2], axis=int(ctx.attr("axis", 0)))


def _expand(x, shape):
    target = np.broadcast_shapes(tuple(x.shape), _ints(shape))
    return x if tuple(target) == tuple(x.shape) else ops.broadcast_to(x, shape=target)


@handles("Expand", settings=(1,))
def _expand_op(ctx):
    return ctx.apply(_expand, ctx.inputs[:2])


@handles("Tile", settings=(1,))
def _tile(ctx):
    return ctx.apply(lambda x, repeats: ops.tile(x, _ints(repeats)), ctx.inputs[:2])


def _pad(x, pads, value=None, axes=None, *, mode):
    pads = _ints(pads)
    rank = len(x.shape)
    axes = range(rank) if axes is None else [a % rank for a in _ints(axes)]
    half = len(pads) // 2
    pairs = [(0, 0)] * rank
    for i, axis in enumerate(axes):
        pairs[axis] = (pads[i], pads[i + half])
    crop = [slice(-lo if lo < 0 else None, hi if hi < 0 else None) for lo, hi in pairs]
    if any(lo < 0 or hi < 0 for lo, hi in pairs):  # negative pads crop
        x = x[tuple(crop)]
        pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if not any(lo or hi for lo, hi in pairs):
        return x
    if mode == "constant":
        fill = 0 if value is None else np.asarray(value).reshape(()).item()
        return ops.pad(x, tuple(pairs), constant_value=fill)
    return ops.pad(x, tuple(pairs), mode={"reflect": "reflect", "edge": "edge",
                                           "wrap": "wrap"}[mode])


@handles("Pad", settings=(1, 2, 3))
def _pad_op(ctx):
    mode = ctx.attr("mode", "constant")
    if ctx.opset < 11:
        pads, value = ctx.attr("pads"), ctx.attr("value", 0.0)
        return ctx.apply(lambda x: _pad(x, pads, np.asarray(value), mode=mode), ctx.inputs[:1])
    return ctx.apply(_pad, [ctx.input(i) for i in range(4)], mode=mode)


@handles("Trilu", settings=(1,))
def _trilu(ctx):
    def trilu(x, k=None, *, upper):
        k = 0 if k is None else int(np.asarray(k).reshape(()))
        rows, cols = x.shape[-2], x.shape[-1]
        i, j = np.arange(rows)[:, None], np.arange(cols)[None, :]
        keep = (j - i >= k) if upper else (j - i <= k)
        return ops.where(keep, x, ops.zeros_like(x))
    return ctx.apply(trilu, ctx.inputs[:2], upper=bool(ctx.attr("upper", 1)))


@handles("OneHot", settings=(1, 2))
def _one_hot(ctx):
    def one_hot(indices, depth, values, *, axis):
        depth = int(np.asarray(depth).reshape(()))
        indices = ops.where(ops.less(indices, 0), indices + depth, indices)
        hot = ops.one_hot(indices, depth, dtype=values.dtype, axis=axis)
        return values[0] + hot * (values[1] - values[0])
    return ctx.apply(one_hot, ctx.inputs[:3], axis=int(ctx.attr("axis", -1)))
