"""Functional dropout layers. Each takes an explicit PRNG key from :mod:`axon_fn.random`.

All are the identity when ``training=False`` or ``rate == 0``. The same key always gives the
same mask; split the key (``axon_fn.random.split``) to get a fresh mask each step.

>>> import numpy as np
>>> from axon_fn import random
>>> dropout(np.ones(4), random.key(0), rate=0.5, training=False)
array([1., 1., 1., 1.])
"""

from __future__ import annotations

import numbers

from .. import ops
from .. import random as _random
from ..errors import InvalidArgumentError
from ..typing import Array, ArrayLike, PRNGKey
from ._util import channel_axis, shape_of

__all__ = ["alpha_dropout", "dropout", "feature_alpha_dropout", "spatial_dropout"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_P = -_SELU_ALPHA * _SELU_SCALE  # the value selu saturates to at -inf


def check_rate(layer, rate):
    if (not isinstance(rate, numbers.Real) or isinstance(rate, bool)
            or not 0 <= float(rate) < 1):
        raise InvalidArgumentError(f"layers.{layer}: `rate` must lie in [0, 1), got {rate!r}")
    return float(rate)


def _channel_noise_shape(layer, x, channel_index):
    """``(batch, 1, ..., 1, channels)``: one draw per sample and channel."""
    xs = shape_of(x)
    axis = channel_axis(layer, x, channel_index)
    return tuple(d if i in (0, axis) else 1 for i, d in enumerate(xs))


def _keep_mask(layer, key, rate, noise_shape, x):
    mask = _random.bernoulli(key, 1.0 - rate, noise_shape)
    return ops.broadcast_to(mask, shape=shape_of(x)) if noise_shape != shape_of(x) else mask


def _inverted(layer, x, key, rate, training, noise_shape):
    rate = check_rate(layer, rate)
    if not training or rate == 0:
        return x
    mask = _keep_mask(layer, key, rate, noise_shape, x)
    return ops.where(mask, ops.divide(x, 1.0 - rate), 0.0)


def _alpha(layer, x, key, rate, training, noise_shape):
    rate = check_rate(layer, rate)
    if not training or rate == 0:
        return x
    keep = 1.0 - rate
    mask = _keep_mask(layer, key, rate, noise_shape, x)
    # Affine correction keeping zero mean and unit variance of SELU-normalized inputs
    # (Klambauer et al. 2017), as in Axon and PyTorch.
    a = (keep * (1.0 + rate * _ALPHA_P ** 2)) ** -0.5
    b = -a * _ALPHA_P * rate
    return ops.add(ops.multiply(ops.where(mask, x, _ALPHA_P), a), b)


def dropout(x: ArrayLike, key: PRNGKey, *, rate: float, training: bool = True) -> Array:
    """Zero each element with probability ``rate`` and scale the survivors by ``1 / (1 - rate)``.

    >>> import numpy as np
    >>> from axon_fn import random
    >>> y = dropout(np.ones(1000), random.key(0), rate=0.25)
    >>> sorted(set(y.tolist())) == [0.0, 1 / 0.75]
    True
    """
    return _inverted("dropout", x, key, rate, training, shape_of(x))


def spatial_dropout(x: ArrayLike, key: PRNGKey, *, rate: float, training: bool = True,
                    channel_index: int = -1) -> Array:
    """Drop whole feature maps: one draw per (sample, channel), shared across spatial positions
    (channels-last by default), with inverted scaling ``1 / (1 - rate)``.

    >>> import numpy as np
    >>> from axon_fn import random
    >>> y = spatial_dropout(np.ones((2, 5, 3)), random.key(1), rate=0.5)
    >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())
    True
    """
    noise = _channel_noise_shape("spatial_dropout", x, channel_index)
    return _inverted("spatial_dropout", x, key, rate, training, noise)


def alpha_dropout(x: ArrayLike, key: PRNGKey, *, rate: float, training: bool = True) -> Array:
    """Alpha dropout for SELU networks: dropped elements are set to selu's negative saturation
    value, then an affine map restores the input's mean and variance.

    >>> import numpy as np
    >>> from axon_fn import random
    >>> alpha_dropout(np.zeros(3), random.key(0), rate=0.0).tolist()
    [0.0, 0.0, 0.0]
    """
    return _alpha("alpha_dropout", x, key, rate, training, shape_of(x))


def feature_alpha_dropout(x: ArrayLike, key: PRNGKey, *, rate: float, training: bool = True,
                          channel_index: int = -1) -> Array:
    """Alpha dropout of whole channels: one draw per (sample, channel), shared across spatial
    positions (channels-last by default).

    >>> import numpy as np
    >>> from axon_fn import random
    >>> feature_alpha_dropout(np.ones((2, 4, 3)), random.key(0), rate=0.5).shape
    (2, 4, 3)
    """
    noise = _channel_noise_shape("feature_alpha_dropout", x, channel_index)
    return _alpha("feature_alpha_dropout", x, key, rate, training, noise)
