"""Fused layer primitives: a whole layer as one tape entry with one joint VJP.

``dense(x, kernel, bias, activation=...)`` is ``activation(x @ kernel + bias)``. Composed from
ops it records three tape entries, allocates three outputs, and its backward pass recomputes
the activation's mask per input and sums the bias gradient through the generic broadcast
undo. As one primitive it writes the bias and the activation into the product's buffer, and
its VJP computes the activation's gradient once, then only the products whose gradients are
needed (none for the data input of a first layer). Activations covered: none, ``"relu"``,
``"sigmoid"``, ``"tanh"`` (their gradients need only the output).

>>> import numpy as np
>>> dense(np.array([[1.0, -2.0]]), np.eye(2), np.array([0.5, 0.5]), activation="relu")
array([[1.5, 0. ]])
"""

from __future__ import annotations

from .._core import AbstractArray, JointVJP, primitive
from ..errors import InvalidArgumentError, ShapeError
from ._rules import in_float32, result_dtype, shape_of
from .elementwise import relu_grad, sigmoid, sigmoid_grad, tanh_grad
from .linalg import _matmul_rule, matmul
from .shape import reshape, swapaxes

__all__ = ["dense", "DENSE_ACTIVATIONS"]


# activation(xp, y), in y's own buffer where it can (y is the product, made by this call)
_FORWARD = {
    None: lambda xp, y: y,
    "relu": lambda xp, y: xp.maximum(y, 0, out=y) if y.ndim else xp.maximum(y, 0),
    "tanh": lambda xp, y: xp.tanh(y, out=y) if y.ndim else xp.tanh(y),
    "sigmoid": lambda xp, y: sigmoid(y),
}
_GRAD = {None: None, "relu": relu_grad, "tanh": tanh_grad, "sigmoid": sigmoid_grad}
DENSE_ACTIVATIONS = tuple(name for name in _FORWARD if name is not None)


def _check_activation(activation):
    if activation not in _FORWARD:
        raise InvalidArgumentError(f"dense: activation must be one of {DENSE_ACTIVATIONS} or "
                                   f"None, got {activation!r}")


@in_float32("dense")
def _dense_impl(xp, x, kernel, *bias, activation=None):
    _check_activation(activation)
    y = xp.matmul(x, kernel)
    if bias:
        b = bias[0]
        if y.ndim and b.dtype == y.dtype:
            y += b  # y is this call's own buffer
        else:
            y = y + b
    return _FORWARD[activation](xp, y)


def _dense_rule(x, kernel, *bias, activation=None):
    _check_activation(activation)
    ks = shape_of(kernel)
    if len(ks) != 2 or len(shape_of(x)) < 1:
        raise ShapeError(f"dense: expected x (..., in) and kernel (in, out), got x "
                         f"{shape_of(x)} and kernel {ks}")
    out = _matmul_rule(x, kernel)
    if bias:
        if shape_of(bias[0]) != (ks[1],):
            raise ShapeError(f"dense: bias must have shape ({ks[1]},), got {shape_of(bias[0])}")
        return AbstractArray(out.shape, result_dtype(out, bias[0]))
    return out


def _rows(a):
    shape = shape_of(a)
    return a if len(shape) == 2 else reshape(a, shape=(-1, shape[-1]))


def _dense_vjp(needed, g, ans, x, kernel, *bias, activation=None):
    gz = g if activation is None else _GRAD[activation](g, ans)
    d_x = matmul(gz, swapaxes(kernel)) if needed[0] else None
    d_kernel = matmul(swapaxes(_rows(x)), _rows(gz)) if needed[1] else None
    # the bias's cotangent is gz itself: the engine sums it back to the bias's shape
    return (d_x, d_kernel, gz)[:2 + len(bias)]


dense = primitive(
    "dense", _dense_impl, _dense_rule, JointVJP(_dense_vjp),
    doc="``activation(x @ kernel + bias)`` (bias optional) as one primitive; activation None, "
        "'relu', 'sigmoid' or 'tanh'.",
)
