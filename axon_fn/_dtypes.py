"""Floating dtypes in one place: numpy's float16/32/64 plus bfloat16 from ``ml_dtypes``.

``ml_dtypes`` is optional (``pip install axon_fn[bfloat16]``): without it everything but
bfloat16 works, and asking for bfloat16 raises an error that says how to install it.
``np.issubdtype(bfloat16, np.inexact)`` is False (numpy knows nothing of the type), so every
"is this floating?" question in axon_fn goes through :func:`is_floating`.

>>> is_floating("float32"), is_floating("int32")
(True, False)
>>> canonical("float16")
dtype('float16')
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import AxonTypeError

__all__ = ["bfloat16", "is_floating", "is_low_precision", "canonical", "accumulation_dtype",
           "has_bfloat16", "finfo"]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_INSTALL = ("bfloat16 needs the ml_dtypes package: pip install axon_fn[bfloat16] "
            "(or pip install ml_dtypes)")


@functools.lru_cache(maxsize=None)
def _bf16_dtype():
    """``ml_dtypes.bfloat16`` as a numpy dtype, or None: imported on first need, because
    importing ml_dtypes costs most of a second and a bfloat16 array cannot exist before it."""
    try:  # an optional dependency: the extra ``axon_fn[bfloat16]``
        import ml_dtypes
    except ImportError:  # pragma: no cover - exercised by the no-ml_dtypes test in a subprocess
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _is_bf16(dtype):
    return dtype.name == "bfloat16"  # numpy itself has no dtype of that name


def has_bfloat16():
    """True when ``ml_dtypes`` is installed, so bfloat16 arrays can be made.

    >>> isinstance(has_bfloat16(), bool)
    True
    """
    return _bf16_dtype() is not None


def bfloat16():
    """The numpy dtype of bfloat16 (``ml_dtypes.bfloat16``); an error naming
    ``pip install axon_fn[bfloat16]`` when ``ml_dtypes`` is missing.

    >>> bfloat16().name  # doctest: +SKIP
    'bfloat16'
    """
    dtype = _bf16_dtype()
    if dtype is None:
        raise AxonTypeError(_INSTALL)
    return dtype


def canonical(dtype):
    """``dtype`` (a numpy dtype, a type, or a name such as ``"bfloat16"``/``"bf16"``) as a numpy
    dtype; an AxonTypeError for what is not a dtype.

    >>> canonical(np.float32), canonical("float64")
    (dtype('float32'), dtype('float64'))
    """
    if isinstance(dtype, str) and dtype.lower() in ("bfloat16", "bf16"):
        return bfloat16()
    try:
        return np.dtype(dtype)
    except TypeError as err:
        raise AxonTypeError(f"{dtype!r} is not a numpy dtype") from err


def is_floating(dtype):
    """True for real or complex floating dtypes, bfloat16 included (``None`` gives False).

    >>> is_floating(np.float16), is_floating(np.int64), is_floating(None)
    (True, False, False)
    """
    if dtype is None:
        return False
    dtype = np.dtype(dtype)
    return dtype.kind in "fc" or _is_bf16(dtype)


def is_real_floating(dtype):
    """Like :func:`is_floating` but False for complex dtypes.

    >>> is_real_floating(np.complex64), is_real_floating(np.float32)
    (False, True)
    """
    if dtype is None:
        return False
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or _is_bf16(dtype)


def is_low_precision(dtype):
    """True for the 16-bit floats (float16 and bfloat16), which accumulate in float32.

    >>> is_low_precision(np.float16), is_low_precision(np.float32)
    (True, False)
    """
    dtype = np.dtype(dtype)
    return dtype.itemsize == 2 and (dtype.kind == "f" or _is_bf16(dtype))


def accumulation_dtype(dtype):
    """The dtype sums, means and softmax of ``dtype`` are computed in: float32 for float16
    and bfloat16, ``dtype`` itself otherwise.

    >>> accumulation_dtype(np.float16), accumulation_dtype(np.float64)
    (dtype('float32'), dtype('float64'))
    """
    dtype = np.dtype(dtype)
    return _F32 if is_low_precision(dtype) else dtype


def finfo(dtype):
    """``np.finfo`` that also knows bfloat16 (through ``ml_dtypes.finfo``).

    >>> float(finfo(np.float16).max)
    65504.0
    """
    dtype = np.dtype(dtype)
    if _is_bf16(dtype):
        import ml_dtypes

        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype)
