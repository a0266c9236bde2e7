"""The int8 weight-only dense primitive (used by :mod:`axon_fn.quantization`).

``quantized_dense(x, q, scale, bias, activation=...)`` is
``activation((x @ q) * scale + bias)`` for an integer kernel ``q (in, out)`` (int8 from
:func:`axon_fn.quantization.quantize_array`) with one float ``scale`` per output column:
the product of ``x`` with the dequantized kernel ``q * scale``, computed without making that
float kernel. On numpy arrays the C kernel ``native/quantize.c`` runs it (float32 ``x``, int8
``q``; installed by :mod:`axon_fn._native_ops`); the implementation here, written against
``xp`` (numpy or cupy), is the reference and the fallback: ``x @ q.astype(float) * scale``.
Activations fused: none and ``"relu"``. The result has the dtype numpy gives ``x`` and
``scale`` together (float32 for float32 ``x``).

Gradients flow to ``x``, ``scale`` and ``bias`` (fine-tuning a quantized model's biases or
scales works); ``q`` is an integer and gets none.

>>> import numpy as np
>>> q = np.array([[1, -2], [3, 4]], np.int8)
>>> quantized_dense(np.array([[1.0, 1.0]], np.float32), q, np.array([0.5, 0.25], np.float32))
array([[2. , 0.5]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .._core import AbstractArray, primitive
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ._rules import shape_of
from .elementwise import astype, multiply, relu_grad
from .linalg import matmul
from .shape import swapaxes

__all__ = ["quantized_dense", "QUANTIZED_ACTIVATIONS"]

#: activations fused into the primitive (others are applied after it by the layer)
QUANTIZED_ACTIVATIONS = ("relu",)


def _check_activation(activation):
    if activation not in (None, "relu"):
        raise InvalidArgumentError(f"quantized_dense: activation must be None or 'relu', got "
                                   f"{activation!r}")


def _result_dtype(x, scale):
    return np.result_type(np.dtype(x.dtype), np.dtype(scale.dtype))


def _impl(xp, x, q, scale, *bias, activation=None):
    _check_activation(activation)
    dtype = _result_dtype(x, scale)
    y = xp.matmul(x.astype(dtype, copy=False), q.astype(dtype))
    if y.ndim:
        y *= scale  # y is this call's own buffer
        if bias:
            y += bias[0]
        if activation == "relu":
            xp.maximum(y, 0, out=y)
        return y
    y = y * scale + (bias[0] if bias else 0)
    return xp.maximum(y, 0) if activation == "relu" else y


def _rule(x, q, scale, *bias, activation=None):
    _check_activation(activation)
    xs, qs = shape_of(x), shape_of(q)
    if len(qs) != 2 or len(xs) < 1 or xs[-1] != qs[0]:
        raise ShapeError(f"quantized_dense: expected x (..., in) and kernel (in, out), got x "
                         f"{xs} and kernel {qs}")
    if np.dtype(q.dtype).kind not in "iu":
        raise AxonTypeError(f"quantized_dense: the kernel must be an integer array (int8), got "
                            f"dtype {np.dtype(q.dtype)}")
    for name, value in (("scale", scale), *((("bias", b) for b in bias))):
        if shape_of(value) != (qs[1],):
            raise ShapeError(f"quantized_dense: {name} must have shape ({qs[1]},), got "
                             f"{shape_of(value)}")
    return AbstractArray(xs[:-1] + (qs[1],), _result_dtype(x, scale))


def _gz(g, ans, activation):
    return g if activation is None else relu_grad(g, ans)


def _vjp_x(g, ans, x, q, scale, *bias, activation=None):
    gz = _gz(g, ans, activation)
    return matmul(multiply(gz, scale), swapaxes(astype(q, dtype=_result_dtype(x, scale))))


def _vjp_scale(g, ans, x, q, scale, *bias, activation=None):
    # summed over the leading axes by the engine, like every broadcast operand
    gz = _gz(g, ans, activation)
    return multiply(gz, matmul(x, astype(q, dtype=_result_dtype(x, scale))))


def _vjp_bias(g, ans, x, q, scale, *bias, activation=None):
    return _gz(g, ans, activation)


quantized_dense = primitive(
    "quantized_dense", _impl, _rule, (_vjp_x, None, _vjp_scale, _vjp_bias),
    doc="``activation((x @ q) * scale + bias)`` (bias optional) for an integer kernel ``q`` with "
        "per-column float scales; activation None or 'relu'.",
)
