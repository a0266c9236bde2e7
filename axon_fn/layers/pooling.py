"""Functional pooling layers: windowed (max, average, Lp), adaptive and global pooling.

Channels-last by default (``x`` is ``(N, *S, C)``); ``channels="first"`` takes ``(N, C, *S)``.
Lp pooling sums (not averages) ``x ** norm`` over each window, as PyTorch's ``LPPool`` and Axon.
Adaptive pooling follows PyTorch: output ``i`` of a spatial axis of size ``S`` pooled to ``O``
covers ``[floor(i * S / O), ceil((i + 1) * S / O))``.

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 4, 4, 1)
>>> max_pool(x, window=2)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""

from __future__ import annotations

import math
from typing import Sequence

from .. import ops
from .._checks import is_int
from ..errors import InvalidArgumentError
from ..typing import Array, ArrayLike
from ._util import expect, shape_of
from .conv import _call, _layout, _per_axis, _spatial_axes

__all__ = [
    "adaptive_avg_pool", "adaptive_lp_pool", "adaptive_max_pool", "avg_pool", "global_avg_pool",
    "global_lp_pool", "global_max_pool", "lp_pool", "max_pool",
]


def _check_norm(layer, norm):
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not 0 < norm < math.inf:
        raise InvalidArgumentError(f"layers.{layer}: `norm` must be a finite number > 0, got "
                                   f"{norm!r}")


def _window_args(layer, x, window, strides, channels):
    nd, _ = _layout(layer, x, channels)
    window = _per_axis(layer, "window", window, nd)
    strides = None if strides is None else _per_axis(layer, "strides", strides, nd)
    return window, strides


# Windowed pooling --------------------------------------------------------------------------------


def max_pool(x: ArrayLike, *, window: int | Sequence[int],
             strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", channels: str = "last") -> Array:
    """Max pooling over ``window`` (an int or one int per spatial dim).

    ``strides`` defaults to ``window``; ``padding`` is ``"valid"``, ``"same"``, an int or
    ``(lo, hi)`` pairs (padding never wins the max). See :func:`axon_fn.ops.max_pool`.

    >>> import numpy as np
    >>> max_pool(np.array([[[1.0], [5.0], [2.0], [4.0], [3.0]]]), window=2)[0, :, 0]
    array([5., 4.])
    """
    window, strides = _window_args("max_pool", x, window, strides, channels)
    return _call("max_pool", ops.max_pool, x, window, strides=strides, padding=padding,
                 channels=channels)


def avg_pool(x: ArrayLike, *, window: int | Sequence[int],
             strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", count_include_pad: bool = True,
             channels: str = "last") -> Array:
    """Average pooling over ``window`` (an int or one int per spatial dim).

    Arguments as :func:`max_pool`; padding counts as zeros and, with ``count_include_pad=True``
    (PyTorch's and Axon's default), in the divisor. See :func:`axon_fn.ops.avg_pool`.

    >>> import numpy as np
    >>> avg_pool(np.array([[[2.0], [4.0], [6.0], [9.0]]]), window=2)[0, :, 0]
    array([3. , 7.5])
    """
    window, strides = _window_args("avg_pool", x, window, strides, channels)
    return _call("avg_pool", ops.avg_pool, x, window, strides=strides, padding=padding,
                 count_include_pad=count_include_pad, channels=channels)


def lp_pool(x: ArrayLike, *, norm: float = 2, window: int | Sequence[int],
            strides: int | Sequence[int] | None = None,
            padding: str | Sequence[tuple[int, int]] = "valid", channels: str = "last") -> Array:
    """Power-average pooling: ``(sum over each window of x ** norm) ** (1 / norm)``.

    A sum, not a mean, as PyTorch's ``LPPool`` and Axon's ``lp_pool``; zero padding adds
    nothing. Other arguments as :func:`max_pool`. Negative ``x`` with a fractional ``norm`` gives
    NaN, as in PyTorch.

    >>> import numpy as np
    >>> lp_pool(np.array([[[3.0], [4.0], [6.0], [8.0]]]), window=2)[0, :, 0]
    array([ 5., 10.])
    """
    layer = "lp_pool"
    _check_norm(layer, norm)
    window, strides = _window_args(layer, x, window, strides, channels)
    mean = _call(layer, ops.avg_pool, ops.power(x, norm), window, strides=strides,
                 padding=padding, count_include_pad=True, channels=channels)
    return ops.power(ops.multiply(mean, math.prod(window)), 1.0 / norm)


# Adaptive pooling --------------------------------------------------------------------------------


def _output_size(layer, output_size, spatial):
    """``output_size`` (an int, or per spatial dim an int or None for "keep") as a tuple."""
    nd = len(spatial)
    sizes = (output_size,) * nd if is_int(output_size) else output_size
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise InvalidArgumentError(f"layers.{layer}: `output_size` must be an int or {nd} ints, "
                                   f"got {output_size!r}") from None
    if len(sizes) != nd:
        expect(layer, "output_size", f"{nd} entries (one per spatial dim of the input)",
               f"{output_size!r}")
    if not all(s is None or (is_int(s) and s >= 1) for s in sizes):
        raise InvalidArgumentError(f"layers.{layer}: `output_size` must hold ints >= 1 (or None "
                                   f"to keep a dim), got {output_size!r}")
    return tuple(n if s is None else int(s) for s, n in zip(sizes, spatial))


def _adaptive(layer, x, output_size, channels, reduce):
    """Pool each spatial axis in turn: a rectangular window's reduction is separable."""
    nd, _ = _layout(layer, x, channels)
    axes = _spatial_axes(nd, channels)
    sizes = _output_size(layer, output_size, [shape_of(x)[a] for a in axes])
    for axis, out in zip(axes, sizes):
        shape = shape_of(x)
        n = shape[axis]
        if n == out:
            continue
        if n % out == 0:  # equal, disjoint windows: one reshape and one reduction
            split = shape[:axis] + (out, n // out) + shape[axis + 1:]
            x = reduce(ops.reshape(x, shape=split), axis=axis + 1)
            continue
        parts = []
        for i in range(out):
            window = slice(i * n // out, -(-(i + 1) * n // out))
            index = (slice(None),) * axis + (window,)
            parts.append(reduce(ops.getitem(x, index), axis=axis, keepdims=True))
        x = ops.concatenate(parts, axis=axis)
    return x


def adaptive_avg_pool(x: ArrayLike, *, output_size: int | Sequence[int],
                      channels: str = "last") -> Array:
    """Average pooling to a fixed spatial ``output_size`` (an int, or per dim an int or None).

    Output ``i`` of an axis of size ``S`` averages ``[floor(i * S / O), ceil((i + 1) * S / O))``,
    PyTorch's ``AdaptiveAvgPool``; windows may overlap when ``S % O != 0``.

    >>> import numpy as np
    >>> adaptive_avg_pool(np.array([[[1.0], [2.0], [4.0], [8.0], [16.0]]]), output_size=2)[0, :, 0]
    array([2.33333333, 9.33333333])
    """
    return _adaptive("adaptive_avg_pool", x, output_size, channels, ops.mean)


def adaptive_max_pool(x: ArrayLike, *, output_size: int | Sequence[int],
                      channels: str = "last") -> Array:
    """Max pooling to a fixed spatial ``output_size``; windows as :func:`adaptive_avg_pool`.
    Where a window's maximum is tied, its gradient goes to the first of the tied elements, as
    in :func:`max_pool` and PyTorch.

    >>> import numpy as np
    >>> adaptive_max_pool(np.array([[[1.0], [5.0], [2.0], [8.0], [3.0]]]), output_size=2)[0, :, 0]
    array([5., 8.])
    """
    return _adaptive("adaptive_max_pool", x, output_size, channels, _max_to_one)


def adaptive_lp_pool(x: ArrayLike, *, norm: float = 2, output_size: int | Sequence[int],
                     channels: str = "last") -> Array:
    """Lp pooling to a fixed spatial ``output_size``: ``(sum of x ** norm) ** (1 / norm)`` over
    the windows of :func:`adaptive_avg_pool`.

    >>> import numpy as np
    >>> adaptive_lp_pool(np.array([[[3.0], [4.0], [0.0], [12.0]]]), output_size=1)[0, :, 0]
    array([13.])
    """
    layer = "adaptive_lp_pool"
    _check_norm(layer, norm)
    _layout(layer, x, channels)  # a bad input is reported before ops.power sees it
    total = _adaptive(layer, ops.power(x, norm), output_size, channels, ops.sum)
    return ops.power(total, 1.0 / norm)


def _max_to_one(x, axis, keepdims=False):
    """The maximum over ``axis`` (an int or a tuple) with the whole gradient routed to one
    element, the first maximum in row-major order, as :func:`max_pool` and PyTorch do
    (``ops.max`` shares it equally between tied elements, as JAX does). The forward pass is
    ``ops.max`` itself (one ReduceMax in an exported model); only the VJP differs."""
    key = ((int(axis),) if is_int(axis) else tuple(int(a) for a in axis), bool(keepdims))
    reduce = _MAX_TO_ONE.get(key)
    if reduce is None:
        reduce = _MAX_TO_ONE[key] = _max_to_one_for(*key)
    return reduce(x)


_MAX_TO_ONE: dict = {}


def _max_to_one_for(axes, keepdims):
    from ..autodiff.api import custom_vjp, vjp

    @custom_vjp
    def reduce(x):
        return ops.max(x, axes, keepdims=keepdims)

    def pick_first(x):
        shape = shape_of(x)
        kept = tuple(a % len(shape) for a in axes)
        rest = [i for i in range(len(shape)) if i not in kept]
        moved = ops.transpose(x, tuple(rest + list(kept)))
        flat = ops.reshape(moved, tuple(shape[i] for i in rest) + (-1,))
        out = ops.take_along_axis(flat, ops.argmax(flat, -1, keepdims=True), -1)
        return ops.reshape(out, tuple(1 if i in kept else d for i, d in enumerate(shape))
                           if keepdims else tuple(shape[i] for i in rest))

    def backward(x, g):
        _, pull_back = vjp(pick_first, x)
        return pull_back(g)

    reduce.defvjp(lambda x: (reduce(x), x), backward)
    return reduce


# Global pooling ----------------------------------------------------------------------------------


def _global(layer, x, keep_axes, channels, reduce):
    nd, _ = _layout(layer, x, channels)
    return reduce(x, axis=_spatial_axes(nd, channels), keepdims=bool(keep_axes))


def global_avg_pool(x: ArrayLike, *, keep_axes: bool = False, channels: str = "last") -> Array:
    """Mean over every spatial axis: ``(N, C)``, or ``(N, 1, ..., 1, C)`` with ``keep_axes``
    (``(N, C, 1, ..., 1)`` channels first).

    >>> import numpy as np
    >>> global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[3., 4.]])
    """
    return _global("global_avg_pool", x, keep_axes, channels, ops.mean)


def global_max_pool(x: ArrayLike, *, keep_axes: bool = False, channels: str = "last") -> Array:
    """Maximum over every spatial axis; shapes as :func:`global_avg_pool`. Where the maximum is
    tied, the gradient goes to the first of the tied elements (row-major), as in
    :func:`max_pool` and PyTorch.

    >>> import numpy as np
    >>> global_max_pool(np.arange(8.0).reshape(1, 2, 2, 2), keep_axes=True).shape
    (1, 1, 1, 2)
    """
    return _global("global_max_pool", x, keep_axes, channels, _max_to_one)


def global_lp_pool(x: ArrayLike, *, norm: float = 2, keep_axes: bool = False,
                   channels: str = "last") -> Array:
    """``(sum over every spatial axis of x ** norm) ** (1 / norm)``; shapes as
    :func:`global_avg_pool`.

    >>> import numpy as np
    >>> global_lp_pool(np.array([[[3.0], [4.0]]]))
    array([[5.]])
    """
    layer = "global_lp_pool"
    _check_norm(layer, norm)
    _layout(layer, x, channels)  # a bad input is reported before ops.power sees it
    total = _global(layer, ops.power(x, norm), keep_axes, channels, ops.sum)
    return ops.power(total, 1.0 / norm)
