"""Functional convolution layers: ``conv``, ``conv_transpose``, ``depthwise_conv`` and the
spatially separable ``separable_conv2d`` / ``separable_conv3d`` of Elixir Axon.

Channels-last by default: ``x`` is ``(N, *S, C)`` and kernels are ``(*K, in, out)``; with
``channels="first"`` ``x`` is ``(N, C, *S)`` and kernels use PyTorch's layouts. Every bias has
shape ``(out_channels,)`` (or is ``None``) and is added on the output's channel axis.

>>> import numpy as np
>>> conv(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 8)), np.zeros(8), padding="same").shape
(1, 5, 5, 8)
"""

from __future__ import annotations

import math
from typing import Sequence

from .. import ops
from .._checks import is_int
from ..errors import InvalidArgumentError, ShapeError
from ..ops._window import explicit_pairs
from ..typing import Array, ArrayLike
from ._util import expect, shape_of

__all__ = ["conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d"]


# Helpers shared with the pooling and shape layers ------------------------------------------------


def _layout(layer, x, channels, rank=None):
    """Check ``channels`` and the rank of ``x``; returns ``(spatial dims, channel axis)``."""
    if not isinstance(channels, str) or channels not in ("last", "first"):
        raise InvalidArgumentError(f"layers.{layer}: `channels` must be 'last' or 'first', got "
                                   f"{channels!r}")
    xs = shape_of(x)
    order = "channels, spatial dims..." if channels == "first" else "spatial dims..., channels"
    if rank is not None and len(xs) != rank:
        expect(layer, "x", f"rank {rank} (batch, {order})", f"shape {xs}")
    if len(xs) < 3:
        expect(layer, "x", f"rank >= 3 (batch, {order})", f"shape {xs}")
    return len(xs) - 2, 1 if channels == "first" else len(xs) - 1


def _spatial_axes(nd, channels):
    return tuple(range(2, nd + 2)) if channels == "first" else tuple(range(1, nd + 1))


def _per_axis(layer, argument, value, nd):
    """An int, or one int per spatial dim, as a tuple of ``nd`` positive ints."""
    values = (value,) * nd if is_int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        raise InvalidArgumentError(f"layers.{layer}: `{argument}` must be an int or {nd} ints, "
                                   f"got {value!r}") from None
    if len(values) != nd:
        expect(layer, argument, f"{nd} entries (one per spatial dim)", f"{value!r}")
    if not all(is_int(v) and v >= 1 for v in values):
        raise InvalidArgumentError(f"layers.{layer}: `{argument}` must hold ints >= 1, got "
                                   f"{value!r}")
    return tuple(int(v) for v in values)


def _call(layer, op, *args, **kwargs):
    """Run an op, prefixing its ShapeError with the layer so every message names the layer."""
    try:
        return op(*args, **kwargs)
    except ShapeError as e:
        raise ShapeError(f"layers.{layer}: {e}") from e


# Convolutions ------------------------------------------------------------------------------------


def _kernel_io(ks, channels, transposed=False):
    """(spatial kernel shape, kernel input channels, kernel output channels)."""
    if channels == "last":
        return ks[:-2], ks[-2], ks[-1]
    if transposed:  # PyTorch's ConvTranspose weight: (Cin, Cout, *K)
        return ks[2:], ks[0], ks[1]
    return ks[2:], ks[1], ks[0]


def _layout_text(channels, cin, cout, transposed=False):
    if channels == "last":
        return f"(*kernel_size, {cin}, {cout})"
    return f"({cin}, {cout}, *kernel_size)" if transposed else f"({cout}, {cin}, *kernel_size)"


def _check_kernel(layer, argument, x, kernel, channels, cin, cout="Cout", transposed=False):
    """The kernel's rank and input channels; returns its output channels."""
    xs, ks = shape_of(x), shape_of(kernel)
    text = _layout_text(channels, cin, cout, transposed)
    if len(ks) != len(xs):
        expect(layer, argument, f"rank {len(xs)} {text} for input shape {xs}", f"shape {ks}")
    _, kin, kout = _kernel_io(ks, channels, transposed)
    if kin != cin:
        expect(layer, argument, f"layout {text} for input shape {xs}", f"shape {ks}")
    return kout


def _add_channel_bias(layer, argument, y, bias, channels):
    """``y + bias`` with ``bias`` of shape ``(out_channels,)`` on the channel axis (None: none)."""
    if bias is None:
        return y
    ys, bs = shape_of(y), shape_of(bias)
    cout = ys[1] if channels == "first" else ys[-1]
    if bs != (cout,):
        expect(layer, argument, f"shape ({cout},) (one per output channel)", f"shape {bs}")
    if channels == "first":
        bias = ops.reshape(bias, shape=(cout,) + (1,) * (len(ys) - 2))
    elif len(ys) >= 3 and cout < _SHORT_ROW and math.prod(ys) >= _LARGE:
        # numpy broadcasts a short bias row slowly (its inner loop is the channel count): add
        # the bias tiled along the last spatial axis, a row that many times longer (4x faster
        # for LeNet's first layer, the same sums); its gradient sums as fast over long rows
        width = ys[-2]
        rows = ops.add(ops.reshape(y, shape=(-1, width * cout)), ops.tile(bias, width))
        return ops.reshape(rows, shape=ys)
    return ops.add(y, bias)


_SHORT_ROW = 64  # channels below which the tiled bias pays for its reshapes
_LARGE = 1 << 14  # elements below which it does not


def conv(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, *,
         strides: int | Sequence[int] = 1, padding: str | Sequence[tuple[int, int]] = "valid",
         input_dilation: int | Sequence[int] = 1, kernel_dilation: int | Sequence[int] = 1,
         feature_group_count: int = 1, channels: str = "last") -> Array:
    """N-d convolution (cross-correlation) plus a per-output-channel bias.

    Channels last: ``x`` ``(N, *S, Cin)``, ``kernel`` ``(*K, Cin // feature_group_count,
    Cout)``, result ``(N, *O, Cout)``. Channels first: ``x`` ``(N, Cin, *S)``, ``kernel``
    ``(Cout, Cin // feature_group_count, *K)``, result ``(N, Cout, *O)``. ``bias`` is ``(Cout,)``
    or ``None``. ``strides``, ``padding`` and the dilations are as :func:`axon_fn.ops.conv`.

    >>> import numpy as np
    >>> conv(np.arange(5.0).reshape(1, 5, 1), np.ones((3, 1, 1)), np.array([0.5]))[0, :, 0]
    array([3.5, 6.5, 9.5])
    """
    layer = "conv"
    _, axis = _layout(layer, x, channels)
    cin = shape_of(x)[axis]
    if not is_int(feature_group_count) or feature_group_count < 1:
        raise InvalidArgumentError(f"layers.conv: `feature_group_count` must be an int >= 1, got "
                                   f"{feature_group_count!r}")
    groups = int(feature_group_count)
    if cin % groups:
        expect(layer, "x", f"channels divisible by feature_group_count {groups}",
               f"shape {shape_of(x)}")
    cout = _check_kernel(layer, "kernel", x, kernel, channels, cin // groups)
    if cout % groups:
        expect(layer, "kernel", f"output channels divisible by feature_group_count {groups}",
               f"shape {shape_of(kernel)}")
    y = _call(layer, ops.conv, x, kernel, strides=strides, padding=padding,
              input_dilation=input_dilation, kernel_dilation=kernel_dilation,
              feature_group_count=groups, channels=channels)
    return _add_channel_bias(layer, "bias", y, bias, channels)


def conv_transpose(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, *,
                   strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Transposed convolution (the input gradient of :func:`conv`) plus a per-channel bias.

    Channels last: ``x`` ``(N, *S, Cin)``, ``kernel`` ``(*K, Cin, Cout)``. Channels first: ``x``
    ``(N, Cin, *S)``, ``kernel`` ``(Cin, Cout, *K)`` (PyTorch's ``ConvTranspose`` layout).
    ``bias`` is ``(Cout,)`` or ``None``. ``padding="same"`` gives ``S * strides`` outputs,
    ``"valid"`` ``S * strides + max(K - strides, 0)``; see :func:`axon_fn.ops.conv_transpose`
    for explicit padding. Input element ``i`` scatters ``x[i] @ kernel[k]`` to output
    ``i * strides + k`` (for ``"valid"``), as PyTorch and ``jax.lax.conv_transpose(...,
    transpose_kernel=True)`` do, so this is exactly the gradient of ``conv``; Axon instead
    convolves the stride-dilated input with the kernel as given (a flipped kernel here).

    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 2, 1)), np.array([[[1.0]], [[2.0]]]), strides=2)[0, :, 0]
    array([1., 2., 1., 2.])
    """
    layer = "conv_transpose"
    _, axis = _layout(layer, x, channels)
    _check_kernel(layer, "kernel", x, kernel, channels, shape_of(x)[axis], transposed=True)
    y = _call(layer, ops.conv_transpose, x, kernel, strides=strides, padding=padding,
              kernel_dilation=kernel_dilation, channels=channels)
    return _add_channel_bias(layer, "bias", y, bias, channels)


def _depthwise(layer, names, x, kernel, bias, strides, padding, kernel_dilation, channels):
    _, axis = _layout(layer, x, channels)
    c = shape_of(x)[axis]
    cout = _check_kernel(layer, names[0], x, kernel, channels, 1, f"{c} * multiplier")
    if cout % c:
        expect(layer, names[0], f"layout {_layout_text(channels, 1, f'{c} * multiplier')} for "
               f"input shape {shape_of(x)}", f"shape {shape_of(kernel)}")
    y = _call(layer, ops.depthwise_conv, x, kernel, strides=strides, padding=padding,
              kernel_dilation=kernel_dilation, channels=channels)
    return _add_channel_bias(layer, names[1], y, bias, channels)


def depthwise_conv(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, *,
                   strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Depthwise convolution: each input channel convolved with its own ``multiplier`` filters.

    Channels last: ``x`` ``(N, *S, C)``, ``kernel`` ``(*K, 1, C * multiplier)``. Channels first:
    ``x`` ``(N, C, *S)``, ``kernel`` ``(C * multiplier, 1, *K)``. Output channel
    ``c * multiplier + j`` comes from input channel ``c``; ``bias`` is ``(C * multiplier,)`` or
    ``None``.

    >>> import numpy as np
    >>> x = np.array([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]])
    >>> depthwise_conv(x, np.array([[[1.0, -1.0]], [[1.0, 1.0]]]))[0]
    array([[ 3., 10.],
           [ 5., 10.]])
    """
    return _depthwise("depthwise_conv", ("kernel", "bias"), x, kernel, bias, strides, padding,
                      kernel_dilation, channels)


def _separable(layer, x, kernels, biases, strides, padding, kernel_dilation, channels):
    """One depthwise convolution per spatial axis ``i``, kernel ``i`` of size 1 on the other
    axes; axis ``i``'s stride and explicit padding are used by convolution ``i`` alone."""
    nd = len(kernels)
    _layout(layer, x, channels, rank=nd + 2)
    strides = _per_axis(layer, "strides", strides, nd)
    if isinstance(padding, str):
        pads = [padding] * nd  # a size-1, stride-1 axis gets no padding from "same" either
    else:
        pairs = explicit_pairs(f"layers.{layer}", padding, nd)
        pads = [tuple(pair if j == i else (0, 0) for j, pair in enumerate(pairs))
                for i in range(nd)]
    for i, (k, b) in enumerate(zip(kernels, biases)):
        name = f"k{i + 1}"
        spatial = _kernel_io(shape_of(k), channels)[0]
        if len(shape_of(k)) == nd + 2 and any(s != 1 for j, s in enumerate(spatial) if j != i):
            size = ", ".join("k" if j == i else "1" for j in range(nd))
            expect(layer, name, f"spatial size 1 on every axis but axis {i}: kernel_size "
                   f"({size})", f"shape {shape_of(k)}")
        step = tuple(s if j == i else 1 for j, s in enumerate(strides))
        x = _depthwise(layer, (name, f"b{i + 1}"), x, k, b, step, pads[i], kernel_dilation,
                       channels)
    return x


def separable_conv2d(x: ArrayLike, k1: ArrayLike, b1: ArrayLike | None, k2: ArrayLike,
                     b2: ArrayLike | None, *, strides: int | Sequence[int] = 1,
                     padding: str | Sequence[tuple[int, int]] = "valid",
                     kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Spatially separable 2-d depthwise convolution (Elixir Axon's ``separable_conv2d``): a
    ``(kh, 1)`` depthwise convolution followed by a ``(1, kw)`` one.

    Channels last: ``x`` ``(N, H, W, C)``, ``k1`` ``(kh, 1, 1, C * m)``, ``k2`` ``(1, kw, 1,
    C * m)``. Channels first: ``x`` ``(N, C, H, W)``, ``k1`` ``(C * m, 1, kh, 1)``, ``k2``
    ``(C * m, 1, 1, kw)``. ``b1``/``b2`` are ``(C * m,)`` or ``None``. (``k2`` may itself carry a
    channel multiplier, its last/first axis then being ``C * m * m2``.)

    The H stride and explicit H padding go to the first convolution and the W ones to the
    second, so with zero biases the result equals one depthwise convolution with kernel
    ``k1 * k2`` and the same ``strides``/``padding``. Axon instead passes ``strides`` (and
    explicit padding) to both convolutions, which strides every axis twice; for ``strides=1``
    and ``"valid"``/``"same"`` padding the two agree.

    >>> import numpy as np
    >>> y = separable_conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 1, 1, 2)), None,
    ...                      np.ones((1, 3, 1, 2)), np.zeros(2))
    >>> y.shape, y[0, 0, 0].tolist()
    ((1, 2, 2, 2), [9.0, 9.0])
    """
    return _separable("separable_conv2d", x, (k1, k2), (b1, b2), strides, padding,
                      kernel_dilation, channels)


def separable_conv3d(x: ArrayLike, k1: ArrayLike, b1: ArrayLike | None, k2: ArrayLike,
                     b2: ArrayLike | None, k3: ArrayLike, b3: ArrayLike | None, *,
                     strides: int | Sequence[int] = 1,
                     padding: str | Sequence[tuple[int, int]] = "valid",
                     kernel_dilation: int | Sequence[int] = 1, channels: str = "last") -> Array:
    """Spatially separable 3-d depthwise convolution (Elixir Axon's ``separable_conv3d``):
    ``(kd, 1, 1)``, ``(1, kh, 1)`` then ``(1, 1, kw)`` depthwise convolutions.

    Channels last: ``x`` ``(N, D, H, W, C)``, ``k1`` ``(kd, 1, 1, 1, C * m)``, ``k2`` ``(1, kh,
    1, 1, C * m)``, ``k3`` ``(1, 1, kw, 1, C * m)``. Channels first: ``x`` ``(N, C, D, H, W)``,
    ``k1`` ``(C * m, 1, kd, 1, 1)``, ``k2`` ``(C * m, 1, 1, kh, 1)``, ``k3`` ``(C * m, 1, 1, 1,
    kw)``. Biases are ``(C * m,)`` or ``None``. Strides and padding per axis as
    :func:`separable_conv2d`.

    >>> import numpy as np
    >>> k = [np.ones(s + (1, 1)) for s in ((2, 1, 1), (1, 2, 1), (1, 1, 2))]
    >>> separable_conv3d(np.ones((1, 3, 3, 3, 1)), k[0], None, k[1], None, k[2], None,
    ...                  strides=2).shape
    (1, 1, 1, 1, 1)
    """
    return _separable("separable_conv3d", x, (k1, k2, k3), (b1, b2, b3), strides, padding,
                      kernel_dilation, channels)
