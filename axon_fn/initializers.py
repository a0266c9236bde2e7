"""Parameter initializers in the style of Axon and Flax.

Each function here is a factory: it takes the initializer's options and returns
``init(key, shape, dtype="float32") -> numpy array``, a pure function of an explicit
:mod:`axon_fn.random` key (the same key, shape and dtype always give the same array).

Fans follow Flax: for a dense kernel of shape ``(in, out)`` they are ``in`` and ``out``; for a
convolution kernel ``(*spatial, in, out)`` both are multiplied by the receptive field size
``prod(spatial)``. ``in_axis`` / ``out_axis`` pick other layouts.

>>> from axon_fn import random
>>> w = glorot_uniform()(random.key(0), (3, 4))
>>> w.shape, w.dtype
((3, 4), dtype('float32'))
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import random
from ._checks import dtype_argument, shape_argument
from .errors import InvalidArgumentError, ShapeError
from .typing import Array, DTypeLike, PRNGKey, Shape

Initializer = Callable[[PRNGKey, Shape, DTypeLike], Array]
"""``init(key, shape, dtype="float32") -> array``: what every initializer here returns."""

__all__ = [
    "zeros", "ones", "full", "identity", "uniform", "normal", "lecun_uniform", "lecun_normal",
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "variance_scaling",
    "orthogonal",
]

# Standard deviation of a standard normal truncated to [-2, 2] (the constant JAX uses).
_TRUNCATED_STDDEV = 0.87962566103423978

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def _shape(shape, where):
    return shape_argument(shape, f"initializers.{where}")


def _dtype(dtype, where):
    return dtype_argument(dtype, f"initializers.{where}")


def _float_dtype(dtype, where):
    return dtype_argument(dtype, f"initializers.{where}", floating=True)


def _compute_fans(shape, in_axis, out_axis, where):
    """``(fan_in, fan_out)`` of a kernel shape (Flax's rule; Axon's for rank 0 and 1)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    rank = len(shape)
    for name, axis in (("in_axis", in_axis), ("out_axis", out_axis)):
        if not isinstance(axis, (int, np.integer)) or not -rank <= axis < rank:
            raise InvalidArgumentError(f"initializers.{where}: `{name}` {axis!r} is out of "
                                       f"range for a shape of rank {rank}: {shape}")
    in_axis, out_axis = in_axis % rank, out_axis % rank
    if in_axis == out_axis:
        raise InvalidArgumentError(f"initializers.{where}: `in_axis` and `out_axis` must be "
                                   f"different axes, both are {in_axis}")
    receptive = math.prod(d for i, d in enumerate(shape) if i not in (in_axis, out_axis))
    return float(shape[in_axis] * receptive), float(shape[out_axis] * receptive)


def zeros() -> Initializer:
    """All zeros.

    >>> from axon_fn import random
    >>> zeros()(random.key(0), (2,)).tolist()
    [0.0, 0.0]
    """
    def init(key, shape, dtype="float32"):
        return np.zeros(_shape(shape, "zeros"), _dtype(dtype, "zeros"))
    return init


def ones() -> Initializer:
    """All ones.

    >>> from axon_fn import random
    >>> ones()(random.key(0), (2,)).tolist()
    [1.0, 1.0]
    """
    def init(key, shape, dtype="float32"):
        return np.ones(_shape(shape, "ones"), _dtype(dtype, "ones"))
    return init


def full(value: float) -> Initializer:
    """Every entry equal to ``value``.

    >>> from axon_fn import random
    >>> full(0.5)(random.key(0), (2,)).tolist()
    [0.5, 0.5]
    """
    def init(key, shape, dtype="float32"):
        return np.full(_shape(shape, "full"), value, _dtype(dtype, "full"))
    return init


def identity(scale: float = 1.0) -> Initializer:
    """``scale`` times the identity matrix; the shape must be 2-d and square.

    >>> from axon_fn import random
    >>> identity(2.0)(random.key(0), (2, 2)).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    def init(key, shape, dtype="float32"):
        shape = _shape(shape, "identity")
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ShapeError(f"initializers.identity: `shape` must be 2-d and square, "
                             f"got {shape}")
        return (np.eye(shape[0]) * scale).astype(_dtype(dtype, "identity"))
    return init


def uniform(scale: float = 1e-2) -> Initializer:
    """Uniform on ``[-scale, scale)``.

    >>> from axon_fn import random
    >>> w = uniform()(random.key(0), (100,))
    >>> bool(abs(w).max() <= 0.01)
    True
    """
    def init(key, shape, dtype="float32"):
        shape = _shape(shape, "uniform")
        dtype = _float_dtype(dtype, "uniform")
        return random.uniform(key, shape, dtype, -scale, scale)
    return init


def normal(scale: float = 1e-2, mean: float = 0.0) -> Initializer:
    """Normal with standard deviation ``scale`` (and mean ``mean``).

    >>> from axon_fn import random
    >>> normal()(random.key(0), (3, 2)).shape
    (3, 2)
    """
    def init(key, shape, dtype="float32"):
        shape = _shape(shape, "normal")
        dtype = _float_dtype(dtype, "normal")
        return random.normal(key, shape, dtype, mean=mean, stddev=scale)
    return init


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal",
                     in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """Draws with variance ``scale / n``, ``n`` the fan chosen by ``mode`` (``"fan_in"``,
    ``"fan_out"`` or ``"fan_avg"``, the mean of the two).

    ``distribution`` is ``"normal"``, ``"truncated_normal"`` (a normal truncated to two
    standard deviations, rescaled by 0.87962566103423978 so the variance is still
    ``scale / n``, as in JAX) or ``"uniform"`` (on ``[-sqrt(3 scale / n), sqrt(3 scale / n)]``).

    >>> from axon_fn import random
    >>> w = variance_scaling(2.0, "fan_in", "uniform")(random.key(0), (8, 4))
    >>> bool(abs(w).max() <= (3 * 2.0 / 8) ** 0.5)
    True
    """
    if not isinstance(scale, (int, float, np.integer, np.floating)) or not scale > 0:
        raise InvalidArgumentError(f"initializers.variance_scaling: `scale` must be a positive "
                                   f"number, got {scale!r}")
    if mode not in _MODES:
        raise InvalidArgumentError(f"initializers.variance_scaling: `mode` must be one of "
                                   f"{', '.join(map(repr, _MODES))}; got {mode!r}")
    if distribution not in _DISTRIBUTIONS:
        raise InvalidArgumentError(f"initializers.variance_scaling: `distribution` must be one "
                                   f"of {', '.join(map(repr, _DISTRIBUTIONS))}; "
                                   f"got {distribution!r}")

    def init(key, shape, dtype="float32"):
        shape = _shape(shape, "variance_scaling")
        dtype = _float_dtype(dtype, "variance_scaling")
        fan_in, fan_out = _compute_fans(shape, in_axis, out_axis, "variance_scaling")
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return random.uniform(key, shape, dtype, -limit, limit)
        if distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
            draws = random.truncated_normal(key, -2.0, 2.0, shape, dtype)
            return (draws * np.asarray(stddev, dtype)).astype(dtype)
        return (random.normal(key, shape, dtype) * np.asarray(math.sqrt(variance), dtype)) \
            .astype(dtype)
    return init


def lecun_uniform(scale: float = 1.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """LeCun uniform: ``variance_scaling(scale, "fan_in", "uniform")``."""
    return variance_scaling(scale, "fan_in", "uniform", in_axis, out_axis)


def lecun_normal(scale: float = 1.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """LeCun normal: ``variance_scaling(scale, "fan_in", "truncated_normal")``."""
    return variance_scaling(scale, "fan_in", "truncated_normal", in_axis, out_axis)


def glorot_uniform(scale: float = 1.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """Glorot (Xavier) uniform: ``variance_scaling(scale, "fan_avg", "uniform")``."""
    return variance_scaling(scale, "fan_avg", "uniform", in_axis, out_axis)


def glorot_normal(scale: float = 1.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """Glorot (Xavier) normal: ``variance_scaling(scale, "fan_avg", "truncated_normal")``."""
    return variance_scaling(scale, "fan_avg", "truncated_normal", in_axis, out_axis)


def he_uniform(scale: float = 2.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """He (Kaiming) uniform: ``variance_scaling(scale, "fan_in", "uniform")``, scale 2."""
    return variance_scaling(scale, "fan_in", "uniform", in_axis, out_axis)


def he_normal(scale: float = 2.0, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """He (Kaiming) normal: ``variance_scaling(scale, "fan_in", "truncated_normal")``, scale 2."""
    return variance_scaling(scale, "fan_in", "truncated_normal", in_axis, out_axis)


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Initializer:
    """A (semi-)orthogonal matrix times ``scale``, from the QR decomposition of a normal matrix
    with the signs of ``R``'s diagonal folded into ``Q`` (so the result is uniformly distributed).

    The shape is flattened to ``(prod(other axes), shape[column_axis])``; the columns are
    orthonormal when there are at least as many rows as columns, the rows otherwise.

    >>> import numpy as np
    >>> from axon_fn import random
    >>> q = orthogonal()(random.key(0), (4, 4), "float64")
    >>> bool(np.allclose(q.T @ q, np.eye(4)))
    True
    """
    def init(key, shape, dtype="float32"):
        shape = _shape(shape, "orthogonal")
        dtype = _float_dtype(dtype, "orthogonal")
        if len(shape) < 2:
            raise ShapeError(f"initializers.orthogonal: `shape` must have at least 2 "
                             f"dimensions, got {shape}")
        rank = len(shape)
        if not isinstance(column_axis, (int, np.integer)) or not -rank <= column_axis < rank:
            raise InvalidArgumentError(f"initializers.orthogonal: `column_axis` "
                                       f"{column_axis!r} is out of range for shape {shape}")
        axis = column_axis % rank
        n_cols = shape[axis]
        n_rows = math.prod(shape) // n_cols if n_cols else 0
        matrix_shape = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
        a = random.normal(key, matrix_shape, "float64")
        q, r = np.linalg.qr(a)
        signs = np.sign(np.diag(r))
        q = q * np.where(signs == 0, 1.0, signs)
        if n_rows < n_cols:
            q = q.T
        other = tuple(d for i, d in enumerate(shape) if i != axis)
        q = np.moveaxis(q.reshape(other + (n_cols,)), -1, axis)
        return (scale * q).astype(dtype)
    return init
