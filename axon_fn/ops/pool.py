"""Pooling: max and average pooling over 1, 2 or 3 spatial dims, as primitives with their
gradients; ``max_pool`` and ``avg_pool`` are the public functions.

The canonical layout is channels-last ``(N, *S, C)``. The numpy/cupy path loops over the window
offsets (one strided slice of the padded input each), vectorized over batch, pixels and channels.
The max-pool gradient goes to the *first* maximal element of each window in row-major window order
(as PyTorch does); overlapping windows accumulate.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.max_pool(np.arange(16.0).reshape(1, 4, 4, 1), 2)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._dtypes import is_floating
from .._core import primitive
from ..errors import ShapeError
from ..typing import Array, ArrayLike
from ._rules import (
    AbstractArray, dtype_of, float_dtype, in_float32, no_second_order, shape_of,
)
from ._window import (
    check_channels_arg,
    crop,
    offsets,
    pad_dilate,
    padding_pairs,
    size_of,
    spatial_tuple,
    to_first_axes,
    to_last_axes,
    window_geometry,
    window_slice,
)
from .shape import transpose

__all__ = [
    "max_pool", "avg_pool",
    "max_pool_general", "max_pool_general_grad", "avg_pool_general", "avg_pool_general_grad",
]


def _geometry(name, xs, window, strides, padding, shown=None):
    """Validate a channels-last pooling; returns the output spatial shape."""
    nd = len(window)
    shown = xs if shown is None else shown
    if len(xs) != nd + 2:
        raise ShapeError(f"{name}: input must have rank {nd + 2} (batch, {nd} spatial dims, "
                         f"channels) for a {nd}-d window, got shape {shown}")
    describe = f"input shape {shown}, window {tuple(window)}"
    out = window_geometry(name, xs[1:-1], window, strides, padding, (1,) * nd, (1,) * nd,
                          describe)
    for i, ((lo, hi), k) in enumerate(zip(padding, window)):
        if lo >= k or hi >= k:
            raise ShapeError(f"{name}: padding ({lo}, {hi}) in spatial dim {i} must be smaller "
                             f"than the window ({k}); {describe}")
    return out


def _lowest(xp, dtype):
    if is_floating(dtype):
        return -np.inf
    if dtype == np.bool_:
        return False
    return np.iinfo(dtype).min


# Max pooling ---------------------------------------------------------------------------------


@in_float32("max_pool_general")
def _max_pool_impl(xp, x, *, window, strides, padding):
    out_spatial = _geometry("max_pool_general", x.shape, window, strides, padding)
    xpad = pad_dilate(xp, x, padding, (1,) * len(window), fill=_lowest(xp, x.dtype))
    out = None
    for off in offsets(window, (1,) * len(window)):
        view = xpad[window_slice(off, out_spatial, strides)]
        if out is None:
            out = view.copy()
        else:
            xp.maximum(out, view, out=out)
    return out


@in_float32("max_pool_general_grad")
def _max_pool_grad_impl(xp, x, g, *, window, strides, padding):
    nd = len(window)
    out_spatial = _geometry("max_pool_general_grad", x.shape, window, strides, padding)
    _expect_g("max_pool_general_grad", x.shape, out_spatial, g.shape)
    xpad = pad_dilate(xp, x, padding, (1,) * nd, fill=_lowest(xp, x.dtype))
    best = _max_pool_impl(xp, x, window=window, strides=strides, padding=padding)
    dpad = xp.zeros(xpad.shape, dtype=float_dtype(x, g))
    taken = xp.zeros(best.shape, dtype=bool)
    floating = is_floating(x.dtype)
    for off in offsets(window, (1,) * nd):
        index = window_slice(off, out_spatial, strides)
        view = xpad[index]
        hit = view == best
        if floating:  # a NaN is the maximum of its window (np.maximum propagates it)
            hit |= view != view
        hit &= ~taken
        taken |= hit
        dpad[index] += xp.where(hit, g, 0)
    return crop(xp, dpad, x.shape[1:-1], padding, (1,) * nd)


def _expect_g(name, xs, out_spatial, gs):
    expected = (xs[0],) + tuple(out_spatial) + (xs[-1],)
    if tuple(gs) != expected:
        raise ShapeError(f"{name}: g must have shape {expected} (the pooling output for input "
                         f"shape {tuple(xs)}), got {tuple(gs)}")


def _max_pool_rule(x, *, window, strides, padding):
    xs = shape_of(x)
    out = _geometry("max_pool_general", xs, window, strides, padding)
    return AbstractArray((xs[0],) + out + (xs[-1],), dtype_of(x))


def _max_pool_grad_rule(x, g, *, window, strides, padding):
    xs = shape_of(x)
    _expect_g("max_pool_general_grad", xs,
              _geometry("max_pool_general_grad", xs, window, strides, padding), shape_of(g))
    return AbstractArray(xs, float_dtype(x, g))


max_pool_general_grad = primitive(
    "max_pool_general_grad", _max_pool_grad_impl, _max_pool_grad_rule,
    # Piecewise constant in x (no gradient); linear in g, but that VJP is not implemented.
    (None, no_second_order("max_pool_general_grad")),
    doc="""The VJP of :func:`max_pool_general`: ``g`` routed to the first maximal element of
    each window (row-major window order); overlapping windows accumulate.

    >>> import numpy as np
    >>> max_pool_general_grad(np.array([[[1.0], [3.0], [3.0], [2.0]]]), np.ones((1, 2, 1)),
    ...                       window=(2,), strides=(2,), padding=((0, 0),))[0, :, 0]
    array([0., 1., 1., 0.])
    """,
)

max_pool_general = primitive(
    "max_pool_general", _max_pool_impl, _max_pool_rule,
    (lambda g, ans, x, **s: max_pool_general_grad(x, g, **s),),
    doc="""Max pooling of ``x`` ``(N, *S, C)`` over ``window`` with ``strides`` (one int per
    spatial dim) and ``padding`` ``(lo, hi)`` pairs (padded with -inf, each smaller than the
    window). Prefer :func:`axon_fn.ops.max_pool`, which normalizes these arguments.

    >>> import numpy as np
    >>> max_pool_general(np.array([[[1.0], [3.0], [2.0]]]), window=(2,), strides=(1,),
    ...                  padding=((0, 1),))[0, :, 0]
    array([3., 3., 2.])
    """,
)


# Average pooling -----------------------------------------------------------------------------


def _counts(xp, spatial, window, strides, padding, out_spatial, dtype):
    """How many real (non-padding) elements each window covers, shaped ``(1, *O, 1)``."""
    ones = xp.ones((1,) + tuple(spatial) + (1,), dtype=dtype)
    padded = pad_dilate(xp, ones, padding, (1,) * len(window))
    total = xp.zeros((1,) + tuple(out_spatial) + (1,), dtype=dtype)
    for off in offsets(window, (1,) * len(window)):
        total += padded[window_slice(off, out_spatial, strides)]
    return total


def _avg_divisor(xp, spatial, window, strides, padding, out_spatial, count_include_pad, dtype):
    if count_include_pad or all(lo == 0 and hi == 0 for lo, hi in padding):
        return size_of(window)
    return _counts(xp, spatial, window, strides, padding, out_spatial, dtype)


@in_float32("avg_pool_general")
def _avg_pool_impl(xp, x, *, window, strides, padding, count_include_pad):
    nd = len(window)
    out_spatial = _geometry("avg_pool_general", x.shape, window, strides, padding)
    dtype = float_dtype(x)
    xpad = pad_dilate(xp, x, padding, (1,) * nd, dtype=dtype)
    out = xp.zeros((x.shape[0],) + out_spatial + (x.shape[-1],), dtype=dtype)
    for off in offsets(window, (1,) * nd):
        out += xpad[window_slice(off, out_spatial, strides)]
    out /= _avg_divisor(xp, x.shape[1:-1], window, strides, padding, out_spatial,
                        count_include_pad, dtype)
    return out


@in_float32("avg_pool_general_grad")
def _avg_pool_grad_impl(xp, g, *, input_shape, window, strides, padding, count_include_pad):
    nd = len(window)
    input_shape = tuple(input_shape)
    out_spatial = _geometry("avg_pool_general_grad", input_shape, window, strides, padding)
    _expect_g("avg_pool_general_grad", input_shape, out_spatial, g.shape)
    dtype = float_dtype(g)
    share = g / _avg_divisor(xp, input_shape[1:-1], window, strides, padding, out_spatial,
                             count_include_pad, dtype)
    spatial = tuple(n + lo + hi for n, (lo, hi) in zip(input_shape[1:-1], padding))
    dpad = xp.zeros((input_shape[0],) + spatial + (input_shape[-1],), dtype=dtype)
    for off in offsets(window, (1,) * nd):
        dpad[window_slice(off, out_spatial, strides)] += share
    return crop(xp, dpad, input_shape[1:-1], padding, (1,) * nd)


def _avg_pool_rule(x, *, window, strides, padding, count_include_pad):
    xs = shape_of(x)
    out = _geometry("avg_pool_general", xs, window, strides, padding)
    return AbstractArray((xs[0],) + out + (xs[-1],), float_dtype(x))


def _avg_pool_grad_rule(g, *, input_shape, window, strides, padding, count_include_pad):
    input_shape = tuple(int(d) for d in input_shape)
    out = _geometry("avg_pool_general_grad", input_shape, window, strides, padding)
    _expect_g("avg_pool_general_grad", input_shape, out, shape_of(g))
    return AbstractArray(input_shape, float_dtype(g))


# Both are linear and each is the other's adjoint, so gradients of any order work.
avg_pool_general = primitive(
    "avg_pool_general", _avg_pool_impl, _avg_pool_rule,
    (lambda g, ans, x, **s: avg_pool_general_grad(g, input_shape=shape_of(x), **s),),
    doc="""Average pooling of ``x`` ``(N, *S, C)`` over ``window`` with ``strides`` and
    ``padding`` ``(lo, hi)`` pairs (zeros); ``count_include_pad`` divides by the window size,
    otherwise by the number of real elements in each window. Prefer
    :func:`axon_fn.ops.avg_pool`.

    >>> import numpy as np
    >>> avg_pool_general(np.array([[[1.0], [3.0], [2.0]]]), window=(2,), strides=(2,),
    ...                  padding=((0, 1),), count_include_pad=False)[0, :, 0]
    array([2., 2.])
    """,
)

avg_pool_general_grad = primitive(
    "avg_pool_general_grad", _avg_pool_grad_impl, _avg_pool_grad_rule,
    (lambda c, ans, g, *, input_shape, **s: avg_pool_general(c, **s),),
    doc="""The VJP of :func:`avg_pool_general`: each output's cotangent spread evenly over its
    window, returned with ``input_shape``.

    >>> import numpy as np
    >>> avg_pool_general_grad(np.ones((1, 2, 1)), input_shape=(1, 3, 1), window=(2,),
    ...                       strides=(1,), padding=((0, 0),), count_include_pad=True)[0, :, 0]
    array([0.5, 1. , 0.5])
    """,
)


# Public functions ----------------------------------------------------------------------------


def _pool(name, prim, x, window, strides, padding, channels, **extra):
    check_channels_arg(name, channels)
    xs = shape_of(x)
    nd = len(xs) - 2
    if nd < 1:
        raise ShapeError(f"{name}: input must have rank >= 3 (batch, spatial dims..., channels), "
                         f"got shape {xs}")
    perm = to_last_axes(nd + 2) if channels == "first" else None
    cx = xs if perm is None else tuple(xs[a] for a in perm)
    window = spatial_tuple(name, "window", window, nd)
    strides = window if strides is None else spatial_tuple(name, "strides", strides, nd)
    pads = padding_pairs(name, padding, nd, cx[1:-1], window, strides)
    _geometry(name, cx, window, strides, pads, shown=xs)
    if perm is not None:
        x = transpose(x, axes=perm)
    out = prim(x, window=window, strides=strides, padding=pads, **extra)
    return out if perm is None else transpose(out, axes=to_first_axes(nd + 2))


def max_pool(x: ArrayLike, window: int | Sequence[int], strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", channels: str = "last") -> Array:
    """Max pooling over the spatial dims of ``x`` (``(N, *S, C)``, or ``(N, C, *S)`` with
    ``channels="first"``).

    ``window`` and ``strides`` are an int or one int per spatial dim; ``strides`` defaults to
    ``window`` (non-overlapping windows, as in Axon and PyTorch). ``padding`` is ``"valid"``,
    ``"same"``, an int, or per-dim ints or ``(lo, hi)`` pairs; padding counts as -inf and must be
    smaller than the window. The gradient goes to the first maximal element of each window.

    >>> import numpy as np
    >>> x = np.array([[[1.0], [5.0], [2.0], [4.0], [3.0]]])
    >>> max_pool(x, 2)[0, :, 0]
    array([5., 4.])
    >>> max_pool(x, 3, strides=1, padding="same")[0, :, 0]
    array([5., 5., 5., 4., 4.])
    """
    return _pool("max_pool", max_pool_general, x, window, strides, padding, channels)


def avg_pool(x: ArrayLike, window: int | Sequence[int], strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", count_include_pad: bool = True,
             channels: str = "last") -> Array:
    """Average pooling over the spatial dims of ``x`` (``(N, *S, C)``, or ``(N, C, *S)`` with
    ``channels="first"``).

    Arguments as :func:`max_pool`; padding counts as zeros. With ``count_include_pad=True``
    (default, as PyTorch) every window is divided by its full size; with ``False`` by the number
    of real elements it covers. Integer input gives a floating result.

    >>> import numpy as np
    >>> x = np.array([[[2.0], [4.0], [6.0]]])
    >>> avg_pool(x, 2, strides=1)[0, :, 0]
    array([3., 5.])
    >>> avg_pool(x, 2, padding=((0, 1),), count_include_pad=False)[0, :, 0]
    array([3., 6.])
    """
    return _pool("avg_pool", avg_pool_general, x, window, strides, padding, channels,
                 count_include_pad=bool(count_include_pad))
