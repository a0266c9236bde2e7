"""Array creation: zeros, ones, empty, full, *_like, arange, linspace, eye, identity; not
differentiable (no array inputs).

``like=`` picks the backend (numpy or cupy) from an existing array.

>>> zeros((2,), "float32")
array([0., 0.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .._core import AbstractArray, full_value
from ..backend import array_module
from ..typing import Array, ArrayLike, DTypeLike, Shape


def _xp(like):
    return np if like is None else array_module(like)


def _float32_default(dtype):
    return np.float32 if dtype is None else dtype


def zeros(shape: int | Shape, dtype: DTypeLike = "float32", order: str = "C", *,
          device: str | None = None, like: ArrayLike | None = None) -> Array:
    """An array of zeros; float32 by default (a deliberate difference from numpy's float64,
    like PyTorch and JAX). ``like=`` picks the backend from an array.

    >>> zeros((2,))
    array([0., 0.], dtype=float32)
    """
    return _xp(like).zeros(shape, _float32_default(dtype), order)


def ones(shape: int | Shape, dtype: DTypeLike = "float32", order: str = "C", *,
         device: str | None = None, like: ArrayLike | None = None) -> Array:
    """An array of ones (float32 by default, unlike numpy).

    >>> ones(2, np.float64)
    array([1., 1.])
    """
    return _xp(like).ones(shape, _float32_default(dtype), order)


def empty(shape: int | Shape, dtype: DTypeLike = "float32", order: str = "C", *,
          device: str | None = None, like: ArrayLike | None = None) -> Array:
    """An array of ``shape`` (float32 by default, unlike numpy); axon_fn fills it with zeros,
    so its contents are defined.

    >>> empty((1, 2)).shape
    (1, 2)
    """
    return _xp(like).zeros(shape, _float32_default(dtype), order)


def full(shape: int | Shape, fill_value: ArrayLike, dtype: DTypeLike = "float32", order: str = "C",
         *, device: str | None = None, like: ArrayLike | None = None) -> Array:
    """An array filled with ``fill_value`` (float32 by default, unlike numpy, which takes the
    dtype of ``fill_value``).

    >>> full(2, 7)
    array([7., 7.], dtype=float32)
    """
    return _xp(like).full(shape, fill_value, _float32_default(dtype), order)


def _like(fn, x, dtype, shape, *value):
    x = full_value(x)
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    shape = x.shape if shape is None else shape
    if isinstance(x, AbstractArray):
        return AbstractArray(shape, dtype)
    return fn(array_module(x), shape, dtype, *value)


def zeros_like(a: ArrayLike, dtype: DTypeLike | None = None, order: str = "K", subok: bool = True,
               shape: int | Shape | None = None, *, device: str | None = None) -> Array:
    """Zeros with the shape (and by default dtype and backend) of ``a``; never traced.

    >>> zeros_like(np.ones((2,), np.float32))
    array([0., 0.], dtype=float32)
    """
    return _like(lambda xp, s, d: xp.zeros(s, d), a, dtype, shape)


def ones_like(a: ArrayLike, dtype: DTypeLike | None = None, order: str = "K", subok: bool = True,
              shape: int | Shape | None = None, *, device: str | None = None) -> Array:
    """Ones with the shape (and by default dtype and backend) of ``a``; never traced.

    >>> ones_like(np.zeros(2))
    array([1., 1.])
    """
    return _like(lambda xp, s, d: xp.ones(s, d), a, dtype, shape)


def full_like(a: ArrayLike, fill_value: ArrayLike, dtype: DTypeLike | None = None, order: str = "K",
              subok: bool = True, shape: int | Shape | None = None, *,
              device: str | None = None) -> Array:
    """``fill_value`` everywhere, with the shape (and by default dtype and backend) of ``a``.

    >>> full_like(np.zeros(2), 3.0)
    array([3., 3.])
    """
    return _like(lambda xp, s, d, v: xp.full(s, v, d), a, dtype, shape, fill_value)


def arange(start: ArrayLike, stop: ArrayLike | None = None, step: float | None = None,
           dtype: DTypeLike | None = None, *, device: str | None = None,
           like: ArrayLike | None = None) -> Array:
    """Evenly spaced values in ``[start, stop)``, as ``numpy.arange`` (numpy's dtype rules:
    integers for integer arguments).

    >>> arange(3)
    array([0, 1, 2])
    """
    if stop is None:
        start, stop = 0, start
    return _xp(like).arange(start, stop, 1 if step is None else step, dtype=dtype)


def linspace(start: ArrayLike, stop: ArrayLike, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: DTypeLike | None = None, axis: int = 0, *,
             device: str | None = None,
             like: ArrayLike | None = None) -> Array | tuple[Array, float]:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``),
    as ``numpy.linspace`` (float64 by default, like numpy).

    >>> linspace(0.0, 1.0, 5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    return _xp(like).linspace(start, stop, num, endpoint, retstep, dtype, axis)


def eye(N: int, M: int | None = None, k: int = 0, dtype: DTypeLike = "float32", order: str = "C", *,
        device: str | None = None, like: ArrayLike | None = None) -> Array:
    """An ``N x M`` matrix with ones on the ``k``-th diagonal (float32 by default, unlike
    numpy).

    >>> eye(2, k=1)
    array([[0., 1.],
           [0., 0.]], dtype=float32)
    """
    return _xp(like).eye(N, M, k, dtype=_float32_default(dtype), order=order)


def identity(n: int, dtype: DTypeLike = "float32", *, like: ArrayLike | None = None) -> Array:
    """The ``n x n`` identity matrix (float32 by default, unlike numpy).

    >>> identity(2)
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    return eye(n, dtype=dtype, like=like)
