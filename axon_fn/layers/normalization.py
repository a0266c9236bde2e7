"""Functional normalization layers: batch, layer, group, instance and RMS normalization.

The layout is channels-last by default (``channel_index=-1``); every per-channel parameter
(``gamma``, ``beta``, running ``mean`` and ``var``) has shape ``(channels,)``. Axis 0 is the batch.

>>> import numpy as np
>>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
>>> layer_norm(x, np.ones(2), np.zeros(2)).round(3)
array([[-1.,  1.],
       [-1.,  1.]])
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .._dtypes import is_real_floating
from .. import ops
from ..autodiff import stop_gradient
from ..errors import InvalidArgumentError
from ..ops._rules import dtype_of
from ..typing import Array, ArrayLike
from ._util import channel_axis, expect, per_channel, shape_of

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"]


def _normalize(x, axes, epsilon):
    mu = ops.mean(x, axis=axes, keepdims=True)
    centered = ops.subtract(x, mu)
    sigma2 = ops.mean(ops.multiply(centered, centered), axis=axes, keepdims=True)
    return ops.multiply(centered, ops.rsqrt(ops.add(sigma2, epsilon)))


def _precise_moments(x, axes):
    """``(mean, x - mean, biased variance)`` over ``axes`` (kept as size-1 axes) in ``x``'s
    dtype, two passes each summed in float64: a float32 sum over the ~10^5 values of a
    channel (a strided one, channels-first, most of all) drifts by 1e-5 to 1e-4 of the data's
    scale, while this stays within float32's rounding of the float64 result."""
    dtype = np.dtype(dtype_of(x))
    wide = np.float64 if is_real_floating(dtype) and dtype.itemsize < 8 else None
    mean = ops.mean(x, axis=axes, keepdims=True, dtype=wide)
    if wide is not None:
        mean = ops.astype(mean, dtype)
    centered = ops.subtract(x, mean)
    var = ops.mean(ops.multiply(centered, centered), axis=axes, keepdims=True, dtype=wide)
    if wide is not None:
        var = ops.astype(var, dtype)
    return mean, centered, var


def _affine(layer, y, x, gamma, beta, axis):
    y = ops.multiply(y, per_channel(layer, "gamma", gamma, x, axis))
    if beta is not None:
        y = ops.add(y, per_channel(layer, "beta", beta, x, axis))
    return y


def _check_epsilon(layer, epsilon):
    if not epsilon >= 0:
        raise InvalidArgumentError(f"layers.{layer}: `epsilon` must be >= 0, got {epsilon!r}")


def batch_norm(x: ArrayLike, gamma: ArrayLike, beta: Optional[ArrayLike], mean: ArrayLike,
               var: ArrayLike, *, training: bool, momentum: float = 0.1, epsilon: float = 1e-5,
               channel_index: int = -1) -> Array | tuple[Array, Array, Array]:
    """Batch normalization over every axis but the channel axis.

    In training, ``x`` is normalized with the batch statistics and the result is
    ``(y, new_mean, new_var)`` where, as in PyTorch, ``momentum`` weighs the NEW statistics::

        new_mean = (1 - momentum) * mean + momentum * batch_mean
        new_var  = (1 - momentum) * var  + momentum * batch_var * n / (n - 1)

    (the running variance takes the unbiased batch variance; ``n`` is the count per channel).
    Outside training, ``y`` alone, normalized with the running ``mean`` and ``var``.

    >>> import numpy as np
    >>> x = np.array([[0.0], [2.0]])
    >>> y, m, v = batch_norm(x, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1), training=True)
    >>> y.round(3).ravel().tolist(), m.tolist(), v.tolist()
    ([-1.0, 1.0], [0.1], [1.1])
    >>> batch_norm(x, np.ones(1), np.zeros(1), np.ones(1), np.ones(1), training=False).round(3)
    array([[-1.],
           [ 1.]])
    """
    axis = channel_axis("batch_norm", x, channel_index)
    _check_epsilon("batch_norm", epsilon)
    if not 0 <= momentum <= 1:
        raise InvalidArgumentError(f"layers.batch_norm: `momentum` must lie in [0, 1], got "
                                   f"{momentum!r}")
    xs = shape_of(x)
    for name, value in (("mean", mean), ("var", var)):
        if shape_of(value) != (xs[axis],):
            expect("batch_norm", name, f"shape ({xs[axis]},) (the channel axis {axis} of input "
                   f"shape {xs})", f"shape {shape_of(value)}")
    axes = tuple(i for i in range(len(xs)) if i != axis)
    if not training:
        m = per_channel("batch_norm", "mean", mean, x, axis)
        v = per_channel("batch_norm", "var", var, x, axis)
        y = ops.multiply(ops.subtract(x, m), ops.rsqrt(ops.add(v, epsilon)))
        return _affine("batch_norm", y, x, gamma, beta, axis)
    n = math.prod(xs[i] for i in axes)
    batch_mean, centered, batch_var = _precise_moments(x, axes)
    y = ops.multiply(centered, ops.rsqrt(ops.add(batch_var, epsilon)))
    y = _affine("batch_norm", y, x, gamma, beta, axis)
    bm = stop_gradient(ops.reshape(batch_mean, shape=(xs[axis],)))
    unbiased = ops.multiply(stop_gradient(ops.reshape(batch_var, shape=(xs[axis],))),
                            n / max(n - 1, 1))
    new_mean = ops.add(ops.multiply(mean, 1.0 - momentum), ops.multiply(bm, momentum))
    new_var = ops.add(ops.multiply(var, 1.0 - momentum), ops.multiply(unbiased, momentum))
    return y, new_mean, new_var


def layer_norm(x: ArrayLike, gamma: ArrayLike, beta: Optional[ArrayLike], *, epsilon: float = 1e-5,
               channel_index: int = -1) -> Array:
    """Layer normalization: normalize each position over its channel axis, then scale/shift.

    >>> import numpy as np
    >>> layer_norm(np.array([[0.0, 4.0]]), np.ones(2), np.array([1.0, 1.0])).round(3)
    array([[0., 2.]])
    """
    axis = channel_axis("layer_norm", x, channel_index)
    _check_epsilon("layer_norm", epsilon)
    y = _normalize(x, (axis,), epsilon)
    return _affine("layer_norm", y, x, gamma, beta, axis)


def group_norm(x: ArrayLike, gamma: ArrayLike, beta: Optional[ArrayLike], *, num_groups: int,
               epsilon: float = 1e-5, channel_index: int = -1) -> Array:
    """Group normalization: split the channels into ``num_groups`` groups and normalize each
    sample's group over its channels and spatial positions (axis 0 is the batch).

    >>> import numpy as np
    >>> x = np.array([[1.0, 3.0, 10.0, 30.0]])
    >>> group_norm(x, np.ones(4), np.zeros(4), num_groups=2).round(3)
    array([[-1.,  1., -1.,  1.]])
    """
    axis = channel_axis("group_norm", x, channel_index)
    _check_epsilon("group_norm", epsilon)
    xs = shape_of(x)
    channels = xs[axis]
    if (not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool)
            or num_groups < 1):
        raise InvalidArgumentError(f"layers.group_norm: `num_groups` must be a positive int, "
                                   f"got {num_groups!r}")
    if channels % num_groups:
        expect("group_norm", "num_groups", f"a divisor of the {channels} channels of input "
               f"shape {xs}", f"num_groups={num_groups}")
    if axis == 0:
        expect("group_norm", "channel_index", "a channel axis other than the batch axis 0",
               f"channel_index={channel_index}")
    split = xs[:axis] + (num_groups, channels // num_groups) + xs[axis + 1:]
    grouped = ops.reshape(x, shape=split)
    axes = tuple(i for i in range(1, len(split)) if i != axis)
    y = ops.reshape(_normalize(grouped, axes, epsilon), shape=xs)
    return _affine("group_norm", y, x, gamma, beta, axis)


def instance_norm(x: ArrayLike, gamma: ArrayLike, beta: Optional[ArrayLike], *, epsilon: float = 1e-5,
                  channel_index: int = -1) -> Array:
    """Instance normalization: normalize each sample's channel over its spatial axes.

    >>> import numpy as np
    >>> x = np.array([[[0.0], [2.0]]])  # (batch 1, width 2, channels 1)
    >>> instance_norm(x, np.ones(1), np.zeros(1)).round(3).ravel()
    array([-1.,  1.])
    """
    axis = channel_axis("instance_norm", x, channel_index)
    _check_epsilon("instance_norm", epsilon)
    xs = shape_of(x)
    axes = tuple(i for i in range(1, len(xs)) if i != axis)
    if axis == 0 or not axes:
        expect("instance_norm", "x", "a batched input with at least one spatial axis "
               "(batch, ..., channels)", f"shape {xs} with channel_index={channel_index}")
    y = _normalize(x, axes, epsilon)
    return _affine("instance_norm", y, x, gamma, beta, axis)


def rms_norm(x: ArrayLike, gamma: ArrayLike, *, epsilon: float = 1e-6, channel_index: int = -1) -> Array:
    """Root-mean-square normalization: ``x * rsqrt(mean(x**2, channels) + epsilon) * gamma``.

    >>> import numpy as np
    >>> rms_norm(np.array([[3.0, 4.0]]), np.ones(2), epsilon=0.0).round(4)
    array([[0.8485, 1.1314]])
    """
    axis = channel_axis("rms_norm", x, channel_index)
    _check_epsilon("rms_norm", epsilon)
    ms = ops.mean(ops.multiply(x, x), axis=axis, keepdims=True)
    y = ops.multiply(x, ops.rsqrt(ops.add(ms, epsilon)))
    return _affine("rms_norm", y, x, gamma, None, axis)
