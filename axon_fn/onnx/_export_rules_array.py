"""Export rules for the structural primitives: shapes, joining, padding, indexing and gathers,
convolution and pooling.

Rules are ``rule(graph, ins, out, **params) -> output name`` as in ``_export_rules_math``.
Sizes that follow the batch appear in ``Value.dims`` (and, for the primitives in
``BATCH_PARAMS``, in their settings) as :class:`~axon_fn.onnx._export_trace.Batch`, so the
graph reads them at run time instead of baking the template's batch size in.
"""

from __future__ import annotations

import numpy as np

from ._common import OnnxExportError
from ._export_registry import rule as _rule
from ._export_rules_math import _axes
from ._export_graph import INT64_MAX, INT64_MIN
from ._export_trace import Batch

__all__ = ["BATCH_PARAMS"]

# primitives whose settings may hold batch-sized ints (as Batch); every other rule gets ints
BATCH_PARAMS = {"reshape", "broadcast_to", "conv_general_input_grad"}


def _is_batch(d):
    return isinstance(d, Batch)


# Shapes ------------------------------------------------------------------------------------------


@_rule("reshape")
def _reshape(g, ins, out, shape):
    (x,) = ins
    dims = [shape] if not isinstance(shape, (tuple, list)) else list(shape)
    batched = [i for i, d in enumerate(dims) if _is_batch(d)]
    if len(batched) == 1 and -1 not in dims:
        dims[batched[0]] = -1  # the one unknown size: Reshape works it out
    return g.node("Reshape", [g.get(x), g.shape_tensor(dims)])


@_rule("transpose")
def _transpose(g, ins, out, axes=None):
    (x,) = ins
    perm = list(range(x.ndim))[::-1] if axes is None else [int(a) % x.ndim for a in axes]
    return g.node("Transpose", [g.get(x)], perm=perm)


@_rule("broadcast_to")
def _broadcast_to(g, ins, out, shape):
    (x,) = ins
    dims = list(shape)
    # Expand broadcasts both ways: a 1 keeps the input's own (batch-sized) size
    lead = len(dims) - x.ndim
    for i, d in enumerate(dims):
        if _is_batch(d) and i >= lead and x.dims[i - lead] == d:
            dims[i] = 1
    return g.node("Expand", [g.get(x), g.shape_tensor(dims)])


@_rule("expand_dims")
def _expand_dims(g, ins, out, axis):
    return g.node("Unsqueeze", [g.get(ins[0]), g.ints(_axes(axis, out.ndim))])


@_rule("squeeze")
def _squeeze(g, ins, out, axis=None):
    (x,) = ins
    if axis is None:
        axes = [i for i, d in enumerate(x.dims) if d == 1 and not _is_batch(d)]
    else:
        axes = _axes(axis, x.ndim)
    if not axes:
        return g.node("Identity", [g.get(x)])
    return g.node("Squeeze", [g.get(x), g.ints(axes)])


@_rule("concatenate")
def _concatenate(g, ins, out, axis):
    return g.node("Concat", [g.get(v, out.dtype) for v in ins], axis=int(axis) % out.ndim)


@_rule("stack")
def _stack(g, ins, out, axis):
    axis = int(axis) % out.ndim
    parts = [g.node("Unsqueeze", [g.get(v, out.dtype), g.ints([axis])]) for v in ins]
    return g.node("Concat", parts, axis=axis)


@_rule("pad")
def _pad(g, ins, out, pad_width, constant_value):
    (x,) = ins
    pads = [lo for lo, _ in pad_width] + [hi for _, hi in pad_width]
    if not any(pads):
        return g.node("Identity", [g.get(x)])
    return g.node("Pad", [g.get(x), g.ints(pads), g.const(constant_value, out.dtype)],
                  mode="constant")


@_rule("flip")
def _flip(g, ins, out, axis):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = [int(a) % out.ndim for a in axes]
    if not axes:
        return g.node("Identity", [g.get(ins[0])])
    n = len(axes)
    return g.node("Slice", [g.get(ins[0]), g.ints([-1] * n), g.ints([INT64_MIN] * n),
                            g.ints(axes), g.ints([-1] * n)])


# Indexing ----------------------------------------------------------------------------------------


def _bounds(c):
    """ONNX Slice ``(start, end, step)`` of a Python slice (None ends run to the array's end;
    ONNX clamps out-of-range bounds as Python does)."""
    step = 1 if c.step is None else int(c.step)
    if step > 0:
        start = 0 if c.start is None else int(c.start)
        end = INT64_MAX if c.stop is None else int(c.stop)
    else:
        start = INT64_MAX if c.start is None else int(c.start)
        end = INT64_MIN if c.stop is None else int(c.stop)
    return start, end, step


def _full(c):
    return (isinstance(c, slice) and c.start in (None, 0) and c.stop is None
            and c.step in (None, 1))


@_rule("getitem")
def _getitem(g, ins, out, index):
    (x,) = ins
    name, dims = g.get(x), list(x.dims)
    comps = list(index)
    for c in comps:
        for part in ((c.start, c.stop, c.step) if isinstance(c, slice) else (c,)):
            if _is_batch(part):
                raise OnnxExportError(f"getitem: the index {index} depends on the batch size")
    # A new axis (None) is an axis of size 1 inserted first and then taken whole: the same
    # result, numpy's placement of gathered axes included.
    if any(c is None for c in comps):
        axes = [i for i, c in enumerate(comps) if c is None]
        name = g.node("Unsqueeze", [name, g.ints(axes)])
        for a in axes:
            dims.insert(a, 1)
        comps = [slice(None) if c is None else c for c in comps]
    comps += [slice(None)] * (len(dims) - len(comps))
    arrays = any(not isinstance(c, (int, slice)) for c in comps)
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for i, c in enumerate(comps):
        if isinstance(c, slice) and not _full(c):
            for acc, v in zip((starts, ends, steps), _bounds(c)):
                acc.append(v)
            axes.append(i)
        elif isinstance(c, int) and not arrays:
            starts.append(c)
            ends.append(INT64_MAX if c == -1 else c + 1)
            steps.append(1)
            axes.append(i)
            squeeze.append(i)
    if axes:
        name = g.node("Slice", [name, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if squeeze:
        name = g.node("Squeeze", [name, g.ints(squeeze)])
    if not arrays:
        return name if axes else g.node("Identity", [name])
    return _advanced(g, name, dims, comps, index)


def _advanced(g, name, dims, comps, index):
    """Integer-array indexing (ints count as 0-d arrays): Gather for one indexed axis, else
    GatherND over the indexed axes moved to the front, with numpy's placement of the result."""
    adv = [i for i, c in enumerate(comps) if not isinstance(c, slice)]
    idx = []
    for i in adv:
        a = np.asarray(comps[i]).astype(np.int64)
        if (a < 0).any():
            if _is_batch(dims[i]):
                raise OnnxExportError(f"getitem: negative indices {index} into a batch-sized "
                                      f"axis; pass dynamic_batch=False")
            a = np.where(a < 0, a + dims[i], a)
        idx.append(a)
    shape = np.broadcast_shapes(*(a.shape for a in idx))
    idx = [np.broadcast_to(a, shape) for a in idx]
    if len(adv) == 1:
        return g.node("Gather", [name, g.const(idx[0])], axis=adv[0])
    rest = [i for i in range(len(dims)) if i not in adv]
    moved = g.transpose(name, adv + rest)
    y = g.node("GatherND", [moved, g.const(np.stack(idx, axis=-1))])
    if adv == list(range(adv[0], adv[0] + len(adv))) and adv[0] > 0:
        # adjacent indexed axes: the gathered axes stay where the first of them was
        k, p = len(shape), adv[0]
        y = g.transpose(y, list(range(k, k + p)) + list(range(k)) +
                        list(range(k + p, k + len(rest))))
    return y


def _indices(g, v):
    return g.get(v, np.int64 if v.dtype not in (np.int32, np.int64) else v.dtype)


@_rule("take")
def _take(g, ins, out, axis):
    x, indices = ins
    return g.node("Gather", [g.get(x), _indices(g, indices)], axis=int(axis))


@_rule("take_along_axis")
def _take_along_axis(g, ins, out, axis):
    x, indices = ins
    axis = int(axis) % x.ndim
    data, idx = g.get(x), _indices(g, indices)
    # GatherElements does not broadcast: expand both to the output's other axes first
    if tuple(x.dims[:axis] + x.dims[axis + 1:]) != tuple(out.dims[:axis] + out.dims[axis + 1:]):
        data = g.node("Expand", [data, g.shape_tensor(out.dims[:axis] + (1,) +
                                                      out.dims[axis + 1:])])
    if tuple(indices.dims) != tuple(out.dims):
        idx = g.node("Expand", [idx, g.shape_tensor(out.dims)])
    return g.node("GatherElements", [data, idx], axis=axis)


@_rule("one_hot")
def _one_hot(g, ins, out, num_classes, dtype, axis):
    (labels,) = ins
    axis = int(axis) % out.ndim
    # a comparison, as numpy's implementation: ONNX OneHot wraps negative labels around
    classes = np.arange(num_classes, dtype=labels.dtype).reshape(
        (num_classes,) + (1,) * (labels.ndim - axis))
    hit = g.node("Equal", [g.node("Unsqueeze", [g.get(labels), g.ints([axis])]),
                           g.const(classes)])
    return g.cast(hit, np.bool_, out.dtype)


# Convolution and pooling -------------------------------------------------------------------------


def _to_first(g, name, nd):
    return g.transpose(name, (0, nd + 1) + tuple(range(1, nd + 1)))


def _to_last(g, name, nd):
    return g.transpose(name, (0,) + tuple(range(2, nd + 2)) + (1,))


def _kernel_first(g, name, nd):
    """``(*K, I, O)`` -> ``(O, I, *K)``, ONNX's weight layout."""
    return g.transpose(name, (nd + 1, nd) + tuple(range(nd)))


def _dilate(g, name, dims, axis, d):
    """Insert ``d - 1`` zeros between the elements of axis ``axis`` (channels-first ``dims``):
    append a length-1 axis, pad it to ``d`` and merge the two, then drop the trailing zeros."""
    n = dims[axis]
    y = g.node("Unsqueeze", [name, g.ints([axis + 1])])
    pads = [0] * (2 * (len(dims) + 1))
    pads[len(dims) + 1 + axis + 1] = d - 1
    y = g.node("Pad", [y, g.ints(pads)], mode="constant")
    # 0 copies the (batch-sized) leading sizes; the ones after are static
    merged = [0] * axis + [n * d] + [int(s) for s in dims[axis + 1:]]
    y = g.node("Reshape", [y, g.ints(merged)])
    return g.node("Slice", [y, g.ints([0]), g.ints([(n - 1) * d + 1]), g.ints([axis])])


def _spatial_attrs(padding, strides, dilations=None):
    attrs = {"pads": [int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding],
             "strides": [int(s) for s in strides]}
    if dilations is not None:
        attrs["dilations"] = [int(d) for d in dilations]
    return attrs


@_rule("conv_general")
def _conv(g, ins, out, strides, padding, lhs_dilation, rhs_dilation, groups):
    x, w = ins
    nd = len(strides)
    name = _to_first(g, g.get(x, out.dtype), nd)
    dims = [x.dims[0], x.dims[-1], *x.dims[1:-1]]
    for i, d in enumerate(lhs_dilation):  # ONNX Conv has no input dilation
        if d > 1:
            name = _dilate(g, name, dims, i + 2, int(d))
            dims[i + 2] = (dims[i + 2] - 1) * int(d) + 1
    y = g.node("Conv", [name, _kernel_first(g, g.get(w, out.dtype), nd)],
               kernel_shape=[int(k) for k in w.shape[:-2]], group=int(groups),
               **_spatial_attrs(padding, strides, rhs_dilation))
    return _to_last(g, y, nd)


@_rule("conv_general_input_grad")
def _conv_transpose(g, ins, out, input_shape, strides, padding, lhs_dilation, rhs_dilation,
                    groups):
    """The input gradient of a convolution (``conv_transpose``) is ONNX ConvTranspose with the
    forward convolution's weight; output_padding restores the sizes a strided forward dropped."""
    cot, w = ins
    nd = len(strides)
    if any(int(d) != 1 for d in lhs_dilation):
        raise OnnxExportError("conv_general_input_grad: input dilation (the gradient of an "
                              "input-dilated convolution) has no ONNX form")
    spatial = input_shape[1:-1]
    if any(_is_batch(n) for n in spatial):
        raise OnnxExportError("conv_general_input_grad: a batch-sized spatial size")
    window = w.shape[:-2]
    extra = []
    for n, (lo, hi), k, s, d in zip(spatial, padding, window, strides, rhs_dilation):
        extra.append((int(n) + lo + hi - ((k - 1) * d + 1)) % int(s))
    y = g.node("ConvTranspose", [_to_first(g, g.get(cot, out.dtype), nd),
                                 _kernel_first(g, g.get(w, out.dtype), nd)],
               kernel_shape=[int(k) for k in window], group=int(groups),
               output_padding=extra if any(extra) else None,
               **_spatial_attrs(padding, strides, rhs_dilation))
    return _to_last(g, y, nd)


@_rule("max_pool_general")
def _max_pool(g, ins, out, window, strides, padding):
    (x,) = ins
    nd = len(window)
    y = g.node("MaxPool", [_to_first(g, g.get(x, out.dtype), nd)],
               kernel_shape=[int(k) for k in window], **_spatial_attrs(padding, strides))
    return _to_last(g, y, nd)


@_rule("avg_pool_general")
def _avg_pool(g, ins, out, window, strides, padding, count_include_pad):
    (x,) = ins
    nd = len(window)
    y = g.node("AveragePool", [_to_first(g, g.get(x, out.dtype), nd)],
               kernel_shape=[int(k) for k in window], count_include_pad=int(count_include_pad),
               **_spatial_attrs(padding, strides))
    return _to_last(g, y, nd)
