"""Convolutions: ``conv_general`` and its two gradients as primitives; ``conv``,
``conv_transpose`` and ``depthwise_conv`` as the public functions built on them.

The canonical layout is channels-last: input ``(N, *S, Cin)``, kernel ``(*K, Cin // groups,
Cout)``, output ``(N, *O, Cout)``, for 1, 2 or 3 spatial dims. It is cross-correlation (no kernel
flip), as in PyTorch, JAX and Axon. The numpy/cupy path is im2col (a strided view of every window
of the padded, input-dilated array, copied once) followed by one matrix product per feature group;
the input gradient is col2im: per kernel offset, one product added into that offset's strided
slice. Depthwise convolutions (one input channel per group) are elementwise instead.

The three primitives are bilinear and each one's VJPs are the other two, so gradients of any order
work through convolutions.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 8)), padding="same").shape
(1, 5, 5, 8)
"""

from __future__ import annotations

from typing import Sequence

from .._core import primitive
from ..errors import ShapeError
from ..typing import Array, ArrayLike
from ._rules import AbstractArray, in_float32, result_dtype, shape_of
from ._window import (
    check_channels_arg,
    crop,
    dilate,
    offsets,
    pad_dilate,
    padded_shape,
    padding_pairs,
    explicit_pairs,
    size_of,
    spatial_tuple,
    to_first_axes,
    to_last_axes,
    window_geometry,
    window_slice,
)
from .shape import transpose

__all__ = [
    "conv", "conv_transpose", "depthwise_conv",
    "conv_general", "conv_general_input_grad", "conv_general_kernel_grad",
]


# Geometry ------------------------------------------------------------------------------------


def _check(name, xs, ws, strides, padding, lhs_dilation, rhs_dilation, groups, shown=None):
    """Validate a canonical (channels-last) convolution; returns the output spatial shape.

    ``shown`` is ``(input shape, kernel shape)`` as the user passed them, for the messages.
    """
    nd = len(strides)
    x_shown, w_shown = shown or (xs, ws)
    describe = f"input shape {x_shown}, kernel shape {w_shown}"
    if len(xs) != nd + 2:
        raise ShapeError(f"{name}: input must have rank {nd + 2} (batch, {nd} spatial dims, "
                         f"channels), got shape {x_shown}")
    if len(ws) != nd + 2:
        raise ShapeError(f"{name}: kernel must have rank {nd + 2} ({nd} spatial dims, input and "
                         f"output channels), got kernel shape {w_shown}")
    if int(groups) < 1:
        raise ShapeError(f"{name}: feature_group_count must be >= 1, got {groups}")
    cin, cout = xs[-1], ws[-1]
    if cin % groups:
        raise ShapeError(f"{name}: input channels {cin} must be divisible by "
                         f"feature_group_count {groups}; {describe}")
    if ws[-2] * groups != cin:
        raise ShapeError(f"{name}: kernel input channels must be {cin // groups} (input channels "
                         f"{cin} / feature_group_count {groups}), got kernel shape {w_shown}")
    if cout % groups:
        raise ShapeError(f"{name}: kernel output channels {cout} must be divisible by "
                         f"feature_group_count {groups}; {describe}")
    return window_geometry(name, xs[1:-1], ws[:-2], strides, padding, lhs_dilation, rhs_dilation,
                           describe)


def _out_shape(name, xs, ws, statics):
    return (xs[0],) + _check(name, xs, ws, **statics) + (ws[-1],)


def _expect(name, argument, expected, got):
    if tuple(got) != tuple(expected):
        raise ShapeError(f"{name}: {argument} must have shape {tuple(expected)} (the convolution "
                         f"output for these shapes), got {tuple(got)}")


# numpy / cupy implementation -----------------------------------------------------------------
#
# Dense convolutions (one feature group) are im2col plus one BLAS product. Grouped ones run the
# dense kernels once per group on its channel slice; depthwise ones (one input channel per group)
# are elementwise, one multiply-add per kernel offset.


def _statics(strides, padding, lhs_dilation, rhs_dilation, groups):
    return dict(strides=strides, padding=padding, lhs_dilation=lhs_dilation,
                rhs_dilation=rhs_dilation, groups=groups)


def _im2col(xp, xpad, window, out_spatial, strides, rhs_dilation):
    """Every window of the padded input at once, ``(N * prod(O), prod(K) * C)``: one strided
    view ``(N, *O, *K, C)`` copied once."""
    nd = len(window)
    st = xpad.strides
    patches = xp.lib.stride_tricks.as_strided(
        xpad,
        (xpad.shape[0],) + tuple(out_spatial) + tuple(window) + (xpad.shape[-1],),
        (st[0],) + tuple(st[1 + i] * strides[i] for i in range(nd))
        + tuple(st[1 + i] * rhs_dilation[i] for i in range(nd)) + (st[-1],),
    )
    return xp.ascontiguousarray(patches).reshape(
        xpad.shape[0] * size_of(out_spatial), size_of(window) * xpad.shape[-1])


def _group_slices(x_channels, w_channels, groups):
    ci, co = x_channels // groups, w_channels // groups
    return [(slice(k * ci, (k + 1) * ci), slice(k * co, (k + 1) * co)) for k in range(groups)]


def _rows(xp, a):
    """``a`` as a C-contiguous ``(rows, channels)`` matrix."""
    return xp.ascontiguousarray(a).reshape(size_of(a.shape[:-1]), a.shape[-1])


@in_float32("conv_general")
def _conv_impl(xp, x, w, *, strides, padding, lhs_dilation, rhs_dilation, groups):
    out_shape = _out_shape("conv_general", x.shape, w.shape,
                           _statics(strides, padding, lhs_dilation, rhs_dilation, groups))
    window, out_spatial = w.shape[:-2], out_shape[1:-1]
    if groups == 1:
        xpad = pad_dilate(xp, x, padding, lhs_dilation)
        cols = _im2col(xp, xpad, window, out_spatial, strides, rhs_dilation)
        return xp.matmul(cols, w.reshape(cols.shape[1], w.shape[-1])).reshape(out_shape)
    if w.shape[-2] == 1:  # depthwise
        mult = w.shape[-1] // groups
        out = xp.zeros(out_shape[:-1] + (groups, mult), dtype=result_dtype(x, w))
        xpad = pad_dilate(xp, x, padding, lhs_dilation)
        w_rows = w.reshape(size_of(window), groups, mult)
        for i, off in enumerate(offsets(window, rhs_dilation)):
            out += xpad[window_slice(off, out_spatial, strides)][..., None] * w_rows[i]
        return out.reshape(out_shape)
    out = xp.empty(out_shape, dtype=result_dtype(x, w))
    for cin, cout in _group_slices(x.shape[-1], w.shape[-1], groups):
        group = xp.ascontiguousarray(pad_dilate(xp, x[..., cin], padding, lhs_dilation))
        cols = _im2col(xp, group, window, out_spatial, strides, rhs_dilation)
        cog = cout.stop - cout.start
        part = xp.matmul(cols, w[..., cout].reshape(cols.shape[1], cog))
        out[..., cout] = part.reshape(out_shape[:-1] + (cog,))
    return out


@in_float32("conv_general_input_grad")
def _input_grad_impl(xp, g, w, *, input_shape, strides, padding, lhs_dilation, rhs_dilation,
                     groups):
    input_shape = tuple(input_shape)
    name = "conv_general_input_grad"
    _expect(name, "g", _out_shape(name, input_shape, w.shape,
                                  _statics(strides, padding, lhs_dilation, rhs_dilation, groups)),
            g.shape)
    window, out_spatial = w.shape[:-2], tuple(g.shape[1:-1])
    p = size_of(window)
    dpad = xp.zeros(padded_shape(input_shape, padding, lhs_dilation), dtype=result_dtype(g, w))
    # col2im without the columns: for every kernel offset, a product added into its slice.
    if w.shape[-2] == 1 and groups > 1:  # depthwise
        g_split = g.reshape(g.shape[:-1] + (groups, w.shape[-1] // groups))
        w_rows = w.reshape(p, groups, w.shape[-1] // groups)
        for i, off in enumerate(offsets(window, rhs_dilation)):
            part = g_split[..., 0] * w_rows[i, :, 0] if g_split.shape[-1] == 1 else \
                (g_split * w_rows[i]).sum(axis=-1)
            dpad[window_slice(off, out_spatial, strides)] += part
        return crop(xp, dpad, input_shape[1:-1], padding, lhs_dilation)
    if groups == 1:
        _col2im(xp, dpad, g.reshape(size_of(g.shape[:-1]), g.shape[-1]), w, out_spatial, strides,
                rhs_dilation)
        return crop(xp, dpad, input_shape[1:-1], padding, lhs_dilation)
    part = xp.empty(dpad.shape[:-1] + (w.shape[-2],), dtype=dpad.dtype)
    for cin, cout in _group_slices(input_shape[-1], w.shape[-1], groups):
        part[...] = 0
        _col2im(xp, part, _rows(xp, g[..., cout]), w[..., cout], out_spatial, strides,
                rhs_dilation)
        dpad[..., cin] = part
    return crop(xp, dpad, input_shape[1:-1], padding, lhs_dilation)


def _col2im(xp, dpad, g_rows, w, out_spatial, strides, rhs_dilation):
    """Add ``g_rows @ w[k].T`` into the slice of ``dpad`` read by each kernel offset ``k``."""
    window = w.shape[:-2]
    w_rows = w.reshape(size_of(window), w.shape[-2], w.shape[-1])
    for i, off in enumerate(offsets(window, rhs_dilation)):
        view = dpad[window_slice(off, out_spatial, strides)]
        view += xp.matmul(g_rows, w_rows[i].T).reshape(view.shape)


@in_float32("conv_general_kernel_grad")
def _kernel_grad_impl(xp, x, g, *, kernel_shape, strides, padding, lhs_dilation, rhs_dilation,
                      groups):
    kernel_shape = tuple(kernel_shape)
    name = "conv_general_kernel_grad"
    _expect(name, "g", _out_shape(name, x.shape, kernel_shape,
                                  _statics(strides, padding, lhs_dilation, rhs_dilation, groups)),
            g.shape)
    window, out_spatial = kernel_shape[:-2], tuple(g.shape[1:-1])
    p = size_of(window)
    dtype = result_dtype(x, g)
    if kernel_shape[-2] == 1 and groups > 1:  # depthwise
        xpad = pad_dilate(xp, x, padding, lhs_dilation)
        g_split = g.reshape(g.shape[:-1] + (groups, kernel_shape[-1] // groups))
        dw = xp.empty((p, groups, kernel_shape[-1] // groups), dtype=dtype)
        lead = "abdefghiklmnopqrstuvwxyz"[:len(out_spatial) + 1]  # no c, j
        spec = f"{lead}c,{lead}cj->cj"
        for i, off in enumerate(offsets(window, rhs_dilation)):
            dw[i] = xp.einsum(spec, xpad[window_slice(off, out_spatial, strides)], g_split)
        return dw.reshape(kernel_shape)
    dw = xp.empty((p * kernel_shape[-2], kernel_shape[-1]), dtype=dtype)
    for cin, cout in _group_slices(x.shape[-1], kernel_shape[-1], groups):
        group = pad_dilate(xp, x if groups == 1 else x[..., cin], padding, lhs_dilation)
        cols = _im2col(xp, xp.ascontiguousarray(group), window, out_spatial, strides,
                       rhs_dilation)
        dw[:, cout] = xp.matmul(cols.T, _rows(xp, g[..., cout]))
    return dw.reshape(kernel_shape)


# Shape rules and VJPs ------------------------------------------------------------------------


def _conv_rule(x, w, **statics):
    out = _out_shape("conv_general", shape_of(x), shape_of(w), statics)
    return AbstractArray(out, result_dtype(x, w))


def _input_grad_rule(g, w, *, input_shape, **statics):
    input_shape = tuple(int(d) for d in input_shape)
    expected = _out_shape("conv_general_input_grad", input_shape, shape_of(w), statics)
    _expect("conv_general_input_grad", "g", expected, shape_of(g))
    return AbstractArray(input_shape, result_dtype(g, w))


def _kernel_grad_rule(x, g, *, kernel_shape, **statics):
    kernel_shape = tuple(int(d) for d in kernel_shape)
    expected = _out_shape("conv_general_kernel_grad", shape_of(x), kernel_shape, statics)
    _expect("conv_general_kernel_grad", "g", expected, shape_of(g))
    return AbstractArray(kernel_shape, result_dtype(x, g))


# <conv(x, w), c> = <x, input_grad(c, w)> = <w, kernel_grad(x, c)>: each op's VJPs are the others.
conv_general = primitive(
    "conv_general", _conv_impl, _conv_rule,
    (lambda g, ans, x, w, **s: conv_general_input_grad(g, w, input_shape=shape_of(x), **s),
     lambda g, ans, x, w, **s: conv_general_kernel_grad(x, g, kernel_shape=shape_of(w), **s)),
    doc="""Canonical N-d convolution (cross-correlation), channels-last.

    ``conv_general(x, w, *, strides, padding, lhs_dilation, rhs_dilation, groups)`` with ``x``
    ``(N, *S, Cin)``, ``w`` ``(*K, Cin // groups, Cout)``; ``strides``, ``lhs_dilation`` (input
    dilation) and ``rhs_dilation`` (kernel dilation) hold one int per spatial dim and ``padding``
    one ``(lo, hi)`` pair (>= 0) per spatial dim. The output is ``(N, *O, Cout)`` with
    ``O = ((S - 1) * lhs_dilation + 1 + lo + hi - ((K - 1) * rhs_dilation + 1)) // strides + 1``.
    Prefer :func:`axon_fn.ops.conv`, which normalizes these arguments.

    >>> import numpy as np
    >>> conv_general(np.ones((1, 4, 1)), np.ones((2, 1, 1)), strides=(1,), padding=((0, 0),),
    ...              lhs_dilation=(1,), rhs_dilation=(1,), groups=1)[0, :, 0]
    array([2., 2., 2.])
    """,
)

conv_general_input_grad = primitive(
    "conv_general_input_grad", _input_grad_impl, _input_grad_rule,
    (lambda c, ans, g, w, *, input_shape, **s: conv_general(c, w, **s),
     lambda c, ans, g, w, *, input_shape, **s: conv_general_kernel_grad(
         c, g, kernel_shape=shape_of(w), **s)),
    doc="""The VJP of :func:`conv_general` with respect to its input (a transposed convolution).

    ``conv_general_input_grad(g, w, *, input_shape, strides, padding, lhs_dilation,
    rhs_dilation, groups)`` returns an array of ``input_shape``; ``g`` has the output's shape.

    >>> import numpy as np
    >>> conv_general_input_grad(np.ones((1, 3, 1)), np.ones((2, 1, 1)), input_shape=(1, 4, 1),
    ...                         strides=(1,), padding=((0, 0),), lhs_dilation=(1,),
    ...                         rhs_dilation=(1,), groups=1)[0, :, 0]
    array([1., 2., 2., 1.])
    """,
)

conv_general_kernel_grad = primitive(
    "conv_general_kernel_grad", _kernel_grad_impl, _kernel_grad_rule,
    (lambda c, ans, x, g, *, kernel_shape, **s: conv_general_input_grad(
        g, c, input_shape=shape_of(x), **s),
     lambda c, ans, x, g, *, kernel_shape, **s: conv_general(x, c, **s)),
    doc="""The VJP of :func:`conv_general` with respect to its kernel.

    ``conv_general_kernel_grad(x, g, *, kernel_shape, strides, padding, lhs_dilation,
    rhs_dilation, groups)`` returns an array of ``kernel_shape``; ``g`` has the output's shape.

    >>> import numpy as np
    >>> conv_general_kernel_grad(np.arange(4.0).reshape(1, 4, 1), np.ones((1, 3, 1)),
    ...                          kernel_shape=(2, 1, 1), strides=(1,), padding=((0, 0),),
    ...                          lhs_dilation=(1,), rhs_dilation=(1,), groups=1)[:, 0, 0]
    array([3., 6.])
    """,
)


# Public functions ----------------------------------------------------------------------------


def _layouts(name, x, kernel, channels):
    """Ranks checked; returns (nd, user shapes, canonical shapes, x/kernel permutations or None).

    Channels-first kernels ``(A, B, *K)`` become ``(*K, B, A)``.
    """
    check_channels_arg(name, channels)
    xs, ks = shape_of(x), shape_of(kernel)
    nd = len(xs) - 2
    if nd < 1:
        raise ShapeError(f"{name}: input must have rank >= 3 (batch, spatial dims..., channels), "
                         f"got shape {xs}")
    if len(ks) != len(xs):
        raise ShapeError(f"{name}: kernel must have rank {len(xs)} ({nd} spatial dims plus input "
                         f"and output channels) for input shape {xs}, got kernel shape {ks}")
    if channels == "first":
        x_perm = to_last_axes(nd + 2)
        k_perm = tuple(range(2, nd + 2)) + (1, 0)
        cx, ck = tuple(xs[a] for a in x_perm), tuple(ks[a] for a in k_perm)
        return nd, xs, ks, cx, ck, x_perm, k_perm
    return nd, xs, ks, xs, ks, None, None


def conv(x: ArrayLike, kernel: ArrayLike, strides: int | Sequence[int] = 1,
         padding: str | Sequence[tuple[int, int]] = "valid",
         input_dilation: int | Sequence[int] = 1, kernel_dilation: int | Sequence[int] = 1,
         feature_group_count: int = 1, channels: str = "last") -> Array:
    """N-d convolution (cross-correlation, no kernel flip) of ``x`` with ``kernel``.

    With ``channels="last"`` (default) ``x`` is ``(N, *S, Cin)`` and ``kernel`` is
    ``(*K, Cin // feature_group_count, Cout)``; with ``channels="first"`` they are ``(N, Cin, *S)``
    and ``(Cout, Cin // feature_group_count, *K)`` (PyTorch's layout) and the output is
    ``(N, Cout, *O)``. ``strides``, ``input_dilation`` and ``kernel_dilation`` are an int or one
    int per spatial dim. ``padding`` is ``"valid"``, ``"same"`` (output ``ceil(S / stride)``,
    split as in JAX/TF with the extra on the high side; ``S`` counts the input dilation), an int,
    or per-dim ints or ``(lo, hi)`` pairs. Feature groups split the channels: output channel block
    ``g`` sees only input channel block ``g``.

    >>> import numpy as np
    >>> x = np.arange(5.0).reshape(1, 5, 1)
    >>> conv(x, np.ones((3, 1, 1)))[0, :, 0]
    array([3., 6., 9.])
    >>> conv(np.ones((2, 3, 7, 7)), np.ones((4, 3, 3, 3)), strides=2, padding=1,
    ...      channels="first").shape
    (2, 4, 4, 4)
    """
    name = "conv"
    nd, xs, ks, cx, ck, x_perm, k_perm = _layouts(name, x, kernel, channels)
    strides = spatial_tuple(name, "strides", strides, nd)
    lhs = spatial_tuple(name, "input_dilation", input_dilation, nd)
    rhs = spatial_tuple(name, "kernel_dilation", kernel_dilation, nd)
    groups = spatial_tuple(name, "feature_group_count", feature_group_count, 1)[0]
    pads = padding_pairs(name, padding, nd, [dilate(s, d) for s, d in zip(cx[1:-1], lhs)],
                         [dilate(k, d) for k, d in zip(ck[:-2], rhs)], strides)
    statics = dict(strides=strides, padding=pads, lhs_dilation=lhs, rhs_dilation=rhs,
                   groups=groups)
    _check(name, cx, ck, shown=(xs, ks), **statics)
    if x_perm is not None:
        x, kernel = transpose(x, axes=x_perm), transpose(kernel, axes=k_perm)
    out = conv_general(x, kernel, **statics)
    return out if x_perm is None else transpose(out, axes=to_first_axes(nd + 2))


def depthwise_conv(x: ArrayLike, kernel: ArrayLike, strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Depthwise convolution: every input channel convolved with its own filters.

    ``kernel`` is ``(*K, 1, C * multiplier)`` (channels last) or ``(C * multiplier, 1, *K)``
    (channels first); output channel ``c * multiplier + j`` comes from input channel ``c``. This
    is :func:`conv` with ``feature_group_count`` equal to the input channels.

    >>> import numpy as np
    >>> depthwise_conv(np.ones((1, 6, 6, 3)), np.ones((3, 3, 1, 6)), padding="same").shape
    (1, 6, 6, 6)
    """
    xs = shape_of(x)
    check_channels_arg("depthwise_conv", channels)
    if len(xs) < 3:
        raise ShapeError(f"depthwise_conv: input must have rank >= 3 (batch, spatial dims..., "
                         f"channels), got shape {xs}")
    c = xs[1] if channels == "first" else xs[-1]
    return conv(x, kernel, strides, padding, 1, kernel_dilation, feature_group_count=c,
                channels=channels)


def _transpose_pads(name, padding, nd, window, strides):
    """The transposed convolution's padding of its (virtually) stride-dilated input, as JAX."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ShapeError(f"{name}: padding must be 'valid', 'same', an int or (lo, hi) pairs, "
                             f"got {padding!r}")
        pads = []
        for k, s in zip(window, strides):
            if mode == "same":
                total = k + s - 2
                lo = k - 1 if s > k - 1 else -(-total // 2)
            else:
                total = k + s - 2 + max(k - s, 0)
                lo = k - 1
            pads.append((lo, total - lo))
        return tuple(pads)
    return explicit_pairs(name, padding, nd)


def conv_transpose(x: ArrayLike, kernel: ArrayLike, strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Transposed convolution ("deconvolution"): the gradient of :func:`conv` with respect to its
    input, used to upsample by ``strides``.

    With ``channels="last"`` ``x`` is ``(N, *S, Cin)`` and ``kernel`` is ``(*K, Cin, Cout)``; with
    ``channels="first"`` they are ``(N, Cin, *S)`` and ``(Cin, Cout, *K)``, PyTorch's
    ``ConvTranspose`` weight layout. Each input element scatters ``x[i] @ kernel[k]`` to output
    position ``i * stride + k * kernel_dilation - (dilated_K - 1 - lo)``. ``padding`` follows JAX's
    ``conv_transpose``: ``"same"`` gives ``S * stride`` outputs, ``"valid"`` gives
    ``S * stride + max(dilated_K - stride, 0)``, and explicit ``(lo, hi)`` pairs pad the
    stride-dilated input of the equivalent convolution with the flipped kernel (PyTorch's
    ``padding=p, output_padding=q`` is ``(dilated_K - 1 - p, dilated_K - 1 - p + q)``). It equals
    ``jax.lax.conv_transpose(x, swapaxes(kernel, -1, -2), ..., transpose_kernel=True)``. It is
    computed as ``conv_general_input_grad`` (col2im), so no work is spent on inserted zeros.
    Explicit padding may be negative (cropping) but at most ``dilated_K - 1`` below and
    ``dilated_K - 2 + stride`` above.

    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 3, 1)), np.ones((2, 1, 1)), strides=2)[0, :, 0]
    array([1., 1., 1., 1., 1., 1.])
    >>> conv_transpose(np.ones((2, 4, 8, 8)), np.ones((4, 3, 3, 3)), strides=2, padding="same",
    ...                channels="first").shape
    (2, 3, 16, 16)
    """
    name = "conv_transpose"
    # The forward convolution whose input gradient this is has kernel (*K, Cout, Cin).
    nd, xs, ks, cx, ck, x_perm, k_perm = _layouts(name, x, kernel, channels)
    if x_perm is None:
        k_perm = tuple(range(nd)) + (nd + 1, nd)
        forward_k = tuple(ks[a] for a in k_perm)
    else:
        forward_k, ck = ck, ck[:-2] + (ck[-1], ck[-2])
    if ck[-2] != cx[-1]:
        raise ShapeError(f"{name}: kernel input channels must be {cx[-1]} (the input's channels), "
                         f"got kernel shape {ks} for input shape {xs}")
    strides = spatial_tuple(name, "strides", strides, nd)
    rhs = spatial_tuple(name, "kernel_dilation", kernel_dilation, nd)
    window = [dilate(k, d) for k, d in zip(ck[:-2], rhs)]
    forward_pads, sizes = [], []
    for i, ((lo, hi), k, s, n) in enumerate(zip(
            _transpose_pads(name, padding, nd, window, strides), window, strides, cx[1:-1])):
        size = (n - 1) * s + lo + hi - k + 2
        if lo > k - 1 or hi > k - 2 + s or size < 1:
            raise ShapeError(
                f"{name}: padding ({lo}, {hi}) in spatial dim {i} is out of range for dilated "
                f"kernel size {k} and stride {s} (need lo <= {k - 1}, hi <= {k - 2 + s} and a "
                f"positive output size); input shape {xs}, kernel shape {ks}")
        forward_pads.append((k - 1 - lo, max(k - 1 - hi, 0)))
        sizes.append(size)
    statics = dict(strides=strides, padding=tuple(forward_pads), lhs_dilation=(1,) * nd,
                   rhs_dilation=rhs, groups=1)
    out_shape = (cx[0],) + tuple(sizes) + (ck[-1],)
    _check(name, out_shape, forward_k, **statics)
    x = x if x_perm is None else transpose(x, axes=x_perm)
    out = conv_general_input_grad(x, transpose(kernel, axes=k_perm), input_shape=out_shape,
                                  **statics)
    return out if x_perm is None else transpose(out, axes=to_first_axes(nd + 2))
