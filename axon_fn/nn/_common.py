"""Helpers shared by the graph constructors (private)."""

from __future__ import annotations

from .. import activations as _activations
from .._checks import by_name, is_int
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError

ACTIVATIONS = tuple(_activations.__all__)


def resolve_activation(activation, where):
    """``None`` (identity), an activation name such as ``"relu"``, or a function of arrays."""
    if activation is None:
        return None
    if isinstance(activation, str):
        return by_name(_activations, activation, "activation", where, "pass a function")
    if callable(activation):
        return activation
    raise AxonTypeError(f"{where}: `activation` must be a name such as 'relu' or a function, got "
                        f"{activation!r}")


def apply_activation(y, activation):
    return y if activation is None else activation(y)


def positive_int(value, where, argument):
    if not is_int(value) or value <= 0:
        raise InvalidArgumentError(f"{where}: `{argument}` must be a positive int, got {value!r}")
    return int(value)


def last_axis(layer):
    """A parameter-shape helper: the size of the input's last axis, with a clear error."""
    def size(shape):
        if len(shape) < 1:
            raise ShapeError(f"{layer}: the input needs at least one axis (features), got shape "
                             f"{shape}")
        return shape[-1]
    return size
