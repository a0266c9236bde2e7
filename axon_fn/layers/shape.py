"""Functional shape layers: ``flatten`` and spatial ``resize``.

``resize`` is built from gathers (``ops.take``) and weighted sums whose weights are constants
computed from the static shapes, so it is differentiable with respect to its input.

>>> import numpy as np
>>> flatten(np.ones((2, 3, 4))).shape
(2, 12)
"""

from __future__ import annotations

import math

import numpy as np

from .._dtypes import is_real_floating
from .. import ops
from .._checks import is_int
from ..backend import array_module
from ..errors import InvalidArgumentError
from ..ops._rules import dtype_of
from ..typing import Array, ArrayLike, Shape
from ._util import expect, shape_of
from .conv import _layout, _spatial_axes

__all__ = ["flatten", "resize"]

_METHODS = ("nearest", "linear", "bilinear", "trilinear")


def flatten(x: ArrayLike) -> Array:
    """Merge every axis but the batch axis: ``(N, ...) -> (N, prod(...))``.

    >>> import numpy as np
    >>> flatten(np.arange(6).reshape(1, 2, 3))
    array([[0, 1, 2, 3, 4, 5]])
    """
    xs = shape_of(x)
    if len(xs) < 1:
        expect("flatten", "x", "rank >= 1 (batch, ...)", f"shape {xs}")
    return ops.reshape(x, shape=(xs[0], math.prod(xs[1:])))


def _sizes(size, spatial):
    nd = len(spatial)
    sizes = (size,) * nd if is_int(size) else size
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise InvalidArgumentError(f"layers.resize: `size` must be an int or {nd} ints, got "
                                   f"{size!r}") from None
    if len(sizes) != nd:
        expect("resize", "size", f"{nd} entries (one per spatial dim, input spatial shape "
               f"{tuple(spatial)})", f"{size!r}")
    if not all(is_int(s) and s >= 1 for s in sizes):
        raise InvalidArgumentError(f"layers.resize: `size` must hold ints >= 1, got {size!r}")
    return tuple(int(s) for s in sizes)


def _linear_taps(xp, n_in, n_out):
    """Left/right source indices and weights of half-pixel linear interpolation, made with the
    array module of the input (on the GPU they are computed there, not copied)."""
    src = (xp.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = xp.maximum(src, 0.0)  # PyTorch clamps sample points left of the first centre
    left = xp.minimum(xp.floor(src).astype(np.int64), n_in - 1)
    right = xp.minimum(left + 1, n_in - 1)
    w_right = src - left
    return left, right, 1.0 - w_right, w_right


def resize(x: ArrayLike, *, size: Shape, method: str = "nearest", channels: str = "last") -> Array:
    """Resize the spatial dims of ``x`` (``(N, *S, C)``; ``(N, C, *S)`` channels first) to
    ``size`` (an int, or one int per spatial dim).

    * ``"nearest"``: output ``i`` takes input ``floor(i * S_in / S_out)`` (PyTorch's
      ``mode="nearest"``, computed exactly in integers).
    * ``"linear"`` (aliases ``"bilinear"``, ``"trilinear"``): separable linear interpolation
      with half-pixel centres, source ``(i + 0.5) * S_in / S_out - 0.5`` clamped to the input,
      as PyTorch's ``align_corners=False`` without antialiasing (``jax.image.resize`` agrees
      when upsampling; it antialiases when downsampling).

    Floating input keeps its dtype; integer input gives float64 for the linear methods.

    >>> import numpy as np
    >>> x = np.array([[[0.0], [4.0]]])
    >>> resize(x, size=4)[0, :, 0]
    array([0., 0., 4., 4.])
    >>> resize(x, size=4, method="linear")[0, :, 0]
    array([0., 1., 3., 4.])
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidArgumentError(f"layers.resize: `method` must be one of "
                                   f"{', '.join(map(repr, _METHODS))}, got {method!r}")
    nd, _ = _layout("resize", x, channels)
    axes = _spatial_axes(nd, channels)
    sizes = _sizes(size, [shape_of(x)[a] for a in axes])
    dtype = dtype_of(x)
    if method != "nearest" and not is_real_floating(dtype):
        dtype = np.dtype(np.float64)
        x = ops.astype(x, dtype=dtype)
    for axis, n_out in zip(axes, sizes):
        rank, n_in = len(shape_of(x)), shape_of(x)[axis]
        if n_in == n_out:
            continue
        xp = array_module(x)  # indices and weights join x on its backend: ops never mix them
        if method == "nearest":
            x = ops.take(x, xp.arange(n_out) * n_in // n_out, axis=axis)
            continue
        left, right, w_left, w_right = _linear_taps(xp, n_in, n_out)
        along = tuple(n_out if a == axis else 1 for a in range(rank))
        w_left, w_right = (w.reshape(along).astype(dtype) for w in (w_left, w_right))
        x = ops.add(ops.multiply(ops.take(x, left, axis=axis), w_left),
                    ops.multiply(ops.take(x, right, axis=axis), w_right))
    return x
