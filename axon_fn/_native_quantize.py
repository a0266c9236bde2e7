"""The C override of the ``quantized_dense`` primitive (``native/quantize.c``).

:func:`quantized_dense` takes the primitive's signature. It runs ``axon_q8_matmul_f32`` for
numpy float32 inputs, an int8 kernel and float32 scale and bias (the reduced axis of ``x`` last,
any number of leading axes) with activation None or ``"relu"``, and otherwise calls the
primitive's numpy implementation, which is also what runs when the compiled kernels lack the
quantization kernel. ``axon_fn._native_ops`` installs it with the other C kernels.

>>> import numpy as np
>>> q = np.array([[2, -1]], np.int8)
>>> quantized_dense(np.array([[3.0]], np.float32), q, np.array([0.5, 1.0], np.float32))
array([[ 3., -3.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from . import _native
from ._core import PRIMITIVES

__all__ = ["quantized_dense", "isa", "set_isa", "ISA_NAMES"]

#: what :func:`isa` returns, by number
ISA_NAMES = {0: "portable C", 1: "AVX2+FMA", 2: "AVX-512"}

_F32 = np.dtype(np.float32)
_I8 = np.dtype(np.int8)
_state = {"fn": None, "ffi": None, "loaded": False}


def _load():
    if not _state["loaded"]:
        lib = _native.lib()
        fn = getattr(lib, "axon_q8_matmul_f32", None) if lib is not None else None
        _state.update(fn=fn, ffi=_native.ffi() if fn is not None else None, loaded=True)
    return _state["fn"]


def available():
    """True when the C quantization kernel is built and loaded.

    >>> isinstance(available(), bool)
    True
    """
    return _load() is not None


def isa():
    """The instruction set the kernel uses (see ``ISA_NAMES``), or None without the kernel.

    >>> isa() in (None, 0, 1, 2)
    True
    """
    return int(_native.lib().axon_q8_isa()) if available() else None


def set_isa(value):
    """Use at most instruction set ``value`` (0, 1 or 2; -1 or None: the best the CPU has);
    returns the one now in use, or None without the kernel. For tests and benchmarks.

    >>> set_isa(None) == isa()
    True
    """
    if not available():
        return None
    return int(_native.lib().axon_q8_set_isa(-1 if value is None else int(value)))


def _fallback(x, q, scale, *bias, activation=None):
    return PRIMITIVES["quantized_dense"].numpy_cpu(x, q, scale, *bias, activation=activation)


def quantized_dense(x, q, scale, *bias, activation=None):
    """``activation((x @ q) * scale + bias)`` on the C kernel when it covers the arrays."""
    fn = _state["fn"] if _state["loaded"] else _load()
    if (fn is None or type(x) is not np.ndarray or type(q) is not np.ndarray
            or type(scale) is not np.ndarray or x.dtype != _F32 or q.dtype != _I8
            or scale.dtype != _F32 or q.ndim != 2 or x.ndim == 0 or activation not in (None, "relu")
            or len(bias) > 1):
        return _fallback(x, q, scale, *bias, activation=activation)
    k, n = q.shape
    b = bias[0] if bias else None
    if (x.shape[-1] != k or scale.shape != (n,)
            or (b is not None and (type(b) is not np.ndarray or b.dtype != _F32
                                   or b.shape != (n,)))):
        return _fallback(x, q, scale, *bias, activation=activation)
    ffi = _state["ffi"]
    x2 = x if x.flags.c_contiguous else np.ascontiguousarray(x)
    q = q if q.flags.c_contiguous else np.ascontiguousarray(q)
    scale = scale if scale.flags.c_contiguous else np.ascontiguousarray(scale)
    rows = x2.size // k if k else int(np.prod(x.shape[:-1]))
    y = np.empty(x.shape[:-1] + (n,), _F32)
    if y.size:
        if b is not None and not b.flags.c_contiguous:
            b = np.ascontiguousarray(b)
        fn(ffi.from_buffer("float[]", x2), ffi.from_buffer("int8_t[]", q),
           ffi.from_buffer("float[]", scale),
           ffi.from_buffer("float[]", b) if b is not None else ffi.NULL,
           ffi.from_buffer("float[]", y), rows, k, n, int(activation == "relu"))
    return y
