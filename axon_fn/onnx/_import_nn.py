"""ONNX importers of the network ops: convolutions, normalizations, pooling and resizing
(private).

ONNX's layout (channels first) is kept, so a user feeds an imported model the arrays they give
onnxruntime. Where an axon_fn layer fits and owns its weights (``Conv`` with initializer
weights), the node becomes that layer (``conv(..., channels="first")``), which a summary shows
and ``freeze`` can address; otherwise it is an op node over ``axon_fn.ops``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..nn import batch_norm, conv, instance_norm, layer_norm
from ._import_registry import handles

__all__ = []


# Geometry shared by convolutions and pooling ------------------------------------------------------


def _spatial_attrs(ctx, nd):
    """strides, dilations and the explicit ``(lo, hi)`` pads of a window op, or the auto_pad
    mode ("SAME_UPPER", "SAME_LOWER") when the pads depend on the input size."""
    strides = tuple(ctx.attr("strides", [1] * nd))
    dilations = tuple(ctx.attr("dilations", [1] * nd))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return strides, dilations, auto_pad
    if auto_pad == "VALID":
        return strides, dilations, tuple((0, 0) for _ in range(nd))
    pads = ctx.attr("pads", [0] * (2 * nd))
    return strides, dilations, tuple((int(pads[i]), int(pads[i + nd])) for i in range(nd))


def _same_pads(spatial, kernel, strides, dilations, mode):
    """auto_pad SAME_*: the output is ceil(size / stride), the odd pad at the end (UPPER) or
    the start (LOWER)."""
    return tuple(_split_pad(max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0), mode)
                 for size, k, s, d in zip(spatial, kernel, strides, dilations))


def _split_pad(total, mode):
    """``total`` padding as ``(lo, hi)``, the odd one at the end (SAME_UPPER) or the start."""
    small, large = total // 2, total - total // 2
    return (small, large) if mode == "SAME_UPPER" else (large, small)


def _resolve_pads(x, pads, kernel, strides, dilations):
    if isinstance(pads, str):
        return _same_pads(x.shape[2:], kernel, strides, dilations, pads)
    return pads


# Convolutions ----------------------------------------------------------------------------------


def _conv(x, w, b=None, *, strides, dilations, pads, group):
    pads = _resolve_pads(x, pads, w.shape[2:], strides, dilations)
    y = ops.conv(x, w, strides=strides, padding=pads, kernel_dilation=dilations,
                 feature_group_count=group, channels="first")
    if b is not None:
        y = y + ops.reshape(b, shape=(-1,) + (1,) * (len(x.shape) - 2))
    return y


@handles("Conv", weights=(1, 2))
def _conv_op(ctx):
    kernel = ctx.exclusive_param(1)
    weight = ctx.input(1)
    nd = (len(weight.shape) if weight.shape is not None else 4) - 2
    strides, dilations, pads = _spatial_attrs(ctx, nd)
    group = int(ctx.attr("group", 1))
    bias = ctx.exclusive_param(2)
    x = ctx.input(0)
    if (x.node is not None and kernel is not None and (ctx.input(2) is None or bias is not None)
            and pads != "SAME_LOWER"):
        node = conv(x.node, kernel.shape[0], kernel.shape[2:], strides=strides,
                    padding="same" if pads == "SAME_UPPER" else pads,
                    kernel_dilation=dilations, feature_group_count=group, channels="first",
                    use_bias=bias is not None, name=ctx.name)
        trainable = {"kernel": kernel}
        if bias is not None:
            trainable["bias"] = bias
        return ctx.layer(node, trainable=trainable)
    return ctx.apply(_conv, ctx.inputs[:3], strides=strides, dilations=dilations, pads=pads,
                     group=group)


def _conv_transpose(x, w, b=None, *, strides, dilations, pads, group, output_padding,
                    output_shape):
    """A transposed convolution as the convolution of the stride-dilated input with the
    flipped kernel, its in and out channels swapped within each group."""
    nd = len(x.shape) - 2
    kernel = w.shape[2:]
    c_in, c_out_per_group = w.shape[0], w.shape[1]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if output_shape is not None or isinstance(pads, str):
        # ONNX: with output_shape and no auto_pad, the odd pad goes at the start
        pads = _transpose_pads(x.shape[2:], spans, strides, output_padding, output_shape,
                               pads if isinstance(pads, str) else "SAME_LOWER")
    w = ops.reshape(w, shape=(group, c_in // group, c_out_per_group, *kernel))
    w = ops.transpose(w, axes=(0, 2, 1, *range(3, nd + 3)))
    w = ops.reshape(w, shape=(group * c_out_per_group, c_in // group, *kernel))
    w = ops.flip(w, axis=tuple(range(2, nd + 2)))
    lows = [span - 1 - lo for span, (lo, _) in zip(spans, pads)]
    highs = [span - 1 - hi + extra for span, (_, hi), extra in zip(spans, pads, output_padding)]
    y = ops.conv(x, w, strides=1, input_dilation=strides, kernel_dilation=dilations,
                 padding=tuple((max(lo, 0), max(hi, 0)) for lo, hi in zip(lows, highs)),
                 feature_group_count=group, channels="first")
    if any(lo < 0 or hi < 0 for lo, hi in zip(lows, highs)):  # pads wider than the kernel crop
        y = y[(slice(None), slice(None), *(slice(-min(lo, 0), y.shape[i + 2] + min(hi, 0))
                                           for i, (lo, hi) in enumerate(zip(lows, highs))))]
    if b is not None:
        y = y + ops.reshape(b, shape=(-1,) + (1,) * nd)
    return y


def _transpose_pads(spatial, spans, strides, output_padding, output_shape, mode):
    pairs = []
    for i, (size, span, s, extra) in enumerate(zip(spatial, spans, strides, output_padding)):
        target = output_shape[i] if output_shape is not None else size * s
        pairs.append(_split_pad(max(s * (size - 1) + extra + span - target, 0), mode))
    return tuple(pairs)


@handles("ConvTranspose", weights=(1, 2))
def _conv_transpose_op(ctx):
    weight = ctx.input(1)
    nd = (len(weight.shape) if weight.shape is not None else 4) - 2
    strides, dilations, pads = _spatial_attrs(ctx, nd)
    output_shape = ctx.attr("output_shape")
    if output_shape is not None:
        output_shape = tuple(int(v) for v in output_shape)[-nd:]
    return ctx.apply(_conv_transpose, ctx.inputs[:3], strides=strides, dilations=dilations,
                     pads=pads, group=int(ctx.attr("group", 1)),
                     output_padding=tuple(ctx.attr("output_padding", [0] * nd)),
                     output_shape=output_shape)


# Normalizations -------------------------------------------------------------------------------------


def _per_channel(v, rank):
    return ops.reshape(v, shape=(-1,) + (1,) * (rank - 2))


def _batch_norm(x, scale, bias, mean, var, *, epsilon):
    rank = len(x.shape)
    inv = ops.rsqrt(_per_channel(var, rank) + epsilon)
    return (x - _per_channel(mean, rank)) * inv * _per_channel(scale, rank) + _per_channel(
        bias, rank)


@handles("BatchNormalization", weights=(1, 2, 3, 4))
def _batch_norm_op(ctx):
    epsilon = float(ctx.attr("epsilon", 1e-5))
    if ctx.attr("training_mode", 0):
        raise ctx.error("training_mode=1 is not supported; export the model in eval mode")
    params = [ctx.exclusive_param(i) for i in range(1, 5)]
    x = ctx.input(0)
    if x.node is not None and all(p is not None for p in params):
        scale, bias, mean, var = params
        # ONNX's momentum weighs the running value; axon_fn's (PyTorch's) the new batch
        node = batch_norm(x.node, momentum=1.0 - float(ctx.attr("momentum", 0.9)),
                          epsilon=epsilon, channel_index=1, name=ctx.name)
        return ctx.layer(node, trainable={"gamma": scale, "beta": bias},
                         state={"mean": mean, "var": var})
    return ctx.apply(_batch_norm, ctx.inputs[:5], epsilon=epsilon)


def _normalize(x, axes, epsilon):
    mean = ops.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = ops.mean(centered * centered, axis=axes, keepdims=True)
    return centered * ops.rsqrt(var + epsilon)


def _layer_norm(x, scale, bias=None, *, axis, epsilon):
    axis %= len(x.shape)
    y = _normalize(x, tuple(range(axis, len(x.shape))), epsilon) * scale
    return y if bias is None else y + bias


@handles("LayerNormalization", weights=(1, 2))
def _layer_norm_op(ctx):
    epsilon, axis = float(ctx.attr("epsilon", 1e-5)), int(ctx.attr("axis", -1))
    x, scale, bias = ctx.input(0), ctx.exclusive_param(1), ctx.exclusive_param(2)
    last = x.rank is not None and axis % x.rank == x.rank - 1
    if (x.node is not None and last and scale is not None and bias is not None
            and scale.ndim == 1 and bias.ndim == 1 and ctx.n_outputs == 1):
        node = layer_norm(x.node, epsilon=epsilon, channel_index=-1, name=ctx.name)
        return ctx.layer(node, trainable={"gamma": scale, "beta": bias})
    return ctx.apply(_layer_norm, ctx.inputs[:3], axis=axis, epsilon=epsilon)


def _instance_norm(x, scale, bias, *, epsilon):
    y = _normalize(x, tuple(range(2, len(x.shape))), epsilon)
    return y * _per_channel(scale, len(x.shape)) + _per_channel(bias, len(x.shape))


@handles("InstanceNormalization", weights=(1, 2))
def _instance_norm_op(ctx):
    epsilon = float(ctx.attr("epsilon", 1e-5))
    x, scale, bias = ctx.input(0), ctx.exclusive_param(1), ctx.exclusive_param(2)
    if x.node is not None and scale is not None and bias is not None and x.rank and x.rank > 2:
        node = instance_norm(x.node, epsilon=epsilon, channel_index=1, name=ctx.name)
        return ctx.layer(node, trainable={"gamma": scale, "beta": bias})
    return ctx.apply(_instance_norm, ctx.inputs[:3], epsilon=epsilon)


def _group_norm(x, scale, bias, *, groups, epsilon, per_group):
    n, c = x.shape[0], x.shape[1]
    grouped = ops.reshape(x, shape=(n, groups, -1))
    y = ops.reshape(_normalize(grouped, (2,), epsilon), shape=x.shape)
    if per_group:  # opsets 18-20: one scale and bias per group
        scale, bias = ops.repeat(scale, c // groups), ops.repeat(bias, c // groups)
    return y * _per_channel(scale, len(x.shape)) + _per_channel(bias, len(x.shape))


@handles("GroupNormalization", weights=(1, 2))
def _group_norm_op(ctx):
    return ctx.apply(_group_norm, ctx.inputs[:3], groups=int(ctx.attr("num_groups")),
                     epsilon=float(ctx.attr("epsilon", 1e-5)), per_group=ctx.opset < 21)


# Pooling --------------------------------------------------------------------------------------------


def _ceil_pads(spatial, kernel, strides, pads):
    """Extra end padding that makes a window op round its output size up (ceil_mode), minus a
    last window that would start in the end padding, as onnxruntime and PyTorch do."""
    pairs = []
    for size, k, s, (lo, hi) in zip(spatial, kernel, strides, pads):
        out = -(-(size + lo + hi - k) // s) + 1
        if (out - 1) * s >= size + lo:
            out -= 1
        pairs.append((lo, hi + max((out - 1) * s + k - (size + lo + hi), 0)))
    return tuple(pairs)


def _pool_geometry(x, kernel, strides, dilations, pads, ceil_mode):
    pads = _resolve_pads(x, pads, kernel, strides, dilations)
    if ceil_mode:
        pads = _ceil_pads(x.shape[2:], kernel, strides, pads)
    return pads


def _max_pool(x, *, kernel, strides, dilations, pads, ceil_mode):
    if any(d != 1 for d in dilations):
        raise ValueError(f"MaxPool with dilations {dilations} is not supported (only 1)")
    pads = _pool_geometry(x, kernel, strides, dilations, pads, ceil_mode)
    return ops.max_pool(x, kernel, strides=strides, padding=pads, channels="first")


def _avg_pool(x, *, kernel, strides, pads, ceil_mode, count_include_pad):
    explicit = _resolve_pads(x, pads, kernel, strides, (1,) * len(kernel))
    if count_include_pad and any(lo or hi for lo, hi in explicit):
        # the explicit pads count as elements, the ceil-mode extension does not
        x = ops.pad(x, ((0, 0), (0, 0), *explicit))
        explicit = tuple((0, 0) for _ in kernel)
    pads = _ceil_pads(x.shape[2:], kernel, strides, explicit) if ceil_mode else explicit
    return ops.avg_pool(x, kernel, strides=strides, padding=pads, count_include_pad=False,
                        channels="first")


def _window(ctx):
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape"))
    strides, dilations, pads = _spatial_attrs(ctx, len(kernel))
    return kernel, strides, dilations, pads


@handles("MaxPool")
def _max_pool_op(ctx):
    if ctx.n_outputs > 1 and ctx.proto.output[1]:
        raise ctx.error("the Indices output of MaxPool is not supported")
    kernel, strides, dilations, pads = _window(ctx)
    return ctx.apply(_max_pool, ctx.inputs[:1], kernel=kernel, strides=strides,
                     dilations=dilations, pads=pads, ceil_mode=bool(ctx.attr("ceil_mode", 0)))


@handles("AveragePool")
def _avg_pool_op(ctx):
    kernel, strides, dilations, pads = _window(ctx)
    if any(d != 1 for d in dilations):
        raise ctx.error(f"dilations {dilations} are not supported (only 1)")
    return ctx.apply(_avg_pool, ctx.inputs[:1], kernel=kernel, strides=strides, pads=pads,
                     ceil_mode=bool(ctx.attr("ceil_mode", 0)),
                     count_include_pad=bool(ctx.attr("count_include_pad", 0)))


def _lp_pool(x, *, kernel, strides, pads, p):
    pads = _resolve_pads(x, pads, kernel, strides, (1,) * len(kernel))
    powered = ops.power(ops.abs(x), float(p))
    summed = ops.avg_pool(powered, kernel, strides=strides, padding=pads,
                          count_include_pad=True, channels="first") * math.prod(kernel)
    return ops.power(summed, 1.0 / p)


@handles("LpPool")
def _lp_pool_op(ctx):
    kernel, strides, _, pads = _window(ctx)
    return ctx.apply(_lp_pool, ctx.inputs[:1], kernel=kernel, strides=strides, pads=pads,
                     p=int(ctx.attr("p", 2)))


def _spatial_axes(x):
    return tuple(range(2, len(x.shape)))


@handles("GlobalAveragePool")
def _global_avg_pool(ctx):
    return ctx.apply(lambda x: ops.mean(x, axis=_spatial_axes(x), keepdims=True),
                     ctx.inputs[:1])


@handles("GlobalMaxPool")
def _global_max_pool(ctx):
    return ctx.apply(lambda x: ops.max(x, axis=_spatial_axes(x), keepdims=True), ctx.inputs[:1])


@handles("GlobalLpPool")
def _global_lp_pool(ctx):
    p = float(ctx.attr("p", 2))
    return ctx.apply(lambda x: ops.power(ops.sum(ops.power(ops.abs(x), p), axis=_spatial_axes(
        x), keepdims=True), 1.0 / p), ctx.inputs[:1])


# Resizing -------------------------------------------------------------------------------------------


def _source_coordinates(out_size, in_size, scale, mode):
    """Where each output position samples the input, by coordinate_transformation_mode."""
    i = np.arange(out_size, dtype=np.float64)
    if mode == "asymmetric":
        return i / scale
    if mode == "align_corners":
        return i * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(i)
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(i)
    if mode in ("half_pixel", "half_pixel_symmetric"):
        if mode == "half_pixel_symmetric":
            adjustment = out_size / (scale * in_size)
            center = in_size / 2
            offset = center * (1 - adjustment)
            return offset + (i + 0.5) / scale - 0.5
        return (i + 0.5) / scale - 0.5
    raise ValueError(f"coordinate_transformation_mode {mode!r} is not supported")


def _nearest(coords, in_size, mode):
    if mode == "floor":
        index = np.floor(coords)
    elif mode == "ceil":
        index = np.ceil(coords)
    elif mode == "round_prefer_ceil":
        index = np.floor(coords + 0.5)
    else:  # round_prefer_floor
        index = np.ceil(coords - 0.5)
    return np.clip(index, 0, in_size - 1).astype(np.int64)


def _resize_axis(x, axis, out_size, scale, *, mode, transform, nearest_mode):
    in_size = x.shape[axis]
    if out_size == in_size and scale == 1.0:
        return x
    coords = _source_coordinates(out_size, in_size, scale, transform)
    if mode == "nearest":
        return ops.take(x, _nearest(coords, in_size, nearest_mode), axis=axis)
    coords = np.clip(coords, 0, in_size - 1)
    lo = np.floor(coords).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    weight = (coords - lo).astype(x.dtype).reshape((-1,) + (1,) * (len(x.shape) - axis - 1))
    a, b = ops.take(x, lo, axis=axis), ops.take(x, hi, axis=axis)
    return a + (b - a) * weight


def _resize(x, roi=None, scales=None, sizes=None, *, mode, transform, nearest_mode):
    rank = len(x.shape)
    if sizes is not None and np.size(sizes):
        sizes = [int(s) for s in np.ravel(sizes)]
        scales = [s / d for s, d in zip(sizes, x.shape)]
    else:
        scales = [float(s) for s in np.ravel(scales)]
        sizes = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
    if len(sizes) != rank:
        raise ValueError(f"Resize: expected {rank} sizes or scales, got {len(sizes)}")
    for axis in range(rank):
        x = _resize_axis(x, axis, sizes[axis], scales[axis], mode=mode, transform=transform,
                         nearest_mode=nearest_mode)
    return x


@handles("Resize", settings=(1, 2, 3))
def _resize_op(ctx):
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ctx.error(f"mode {mode!r} is not supported (nearest and linear are)")
    if ctx.attr("antialias", 0) or ctx.attr("axes") is not None:
        raise ctx.error("antialias and axes are not supported")
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if ctx.opset < 11:  # inputs X, scales; asymmetric coordinates
        inputs = [ctx.input(0), None, ctx.input(1), None]
        transform = "asymmetric"
    else:
        inputs = [ctx.input(i) for i in range(4)]
    return ctx.apply(_resize, inputs, mode=mode, transform=transform,
                     nearest_mode=ctx.attr("nearest_mode", "round_prefer_floor"))


@handles("Upsample", settings=(1,))
def _upsample_op(ctx):
    mode = ctx.attr("mode", "nearest")
    mode = "linear" if mode in ("linear", "bilinear") else mode
    scales = ctx.attr("scales")
    inputs = [ctx.input(0), None, ctx.input(1), None]
    if scales is not None:
        scales = np.asarray(scales, np.float32)
        return ctx.apply(lambda x: _resize(x, None, scales, mode=mode, transform="asymmetric",
                                           nearest_mode="floor"), ctx.inputs[:1])
    return ctx.apply(_resize, inputs, mode=mode, transform="asymmetric", nearest_mode="floor")
