"""Graph constructors for the shape layers: ``flatten``, ``reshape``, ``transpose``, ``pad`` and
``resize`` (Elixir Axon's names). None has parameters.

Every one leaves the batch axis (axis 0) alone: ``reshape`` and ``transpose`` describe the
non-batch axes only, and ``pad`` / ``resize`` act on the spatial axes (axes ``1 .. rank - 2``
channels last, ``2 .. rank - 1`` with ``channels="first"``).

>>> import axon_fn
>>> x = axon_fn.input("pixels", shape=(None, 784))
>>> axon_fn.get_output_shape(x >> reshape((28, 28, 1)) >> pad([(2, 2), (2, 2)]) >> flatten())
(1, 1024)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import ops
from .._checks import is_int
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..graph.core import make_node
from ..graph.node import Node, constructor
from ..layers.shape import _METHODS
from ..layers.shape import flatten as _flatten_fn
from ..layers.shape import resize as _resize_fn
from ..typing import Shape
from .conv import _channels, _sizes

__all__ = ["flatten", "reshape", "transpose", "pad", "resize"]


@constructor("flatten")
def flatten(x: Node, *, name: str | None = None) -> Node:
    """Merge every axis but the batch axis: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``.

    >>> import axon_fn
    >>> axon_fn.get_output_shape(axon_fn.input("x", shape=(None, 4, 4, 3)) >> flatten())
    (1, 48)
    """
    return make_node("flatten", [x], _flatten_fn, name=name)


def _reshape(x, *, shape):
    xs = tuple(x.shape)
    size = math.prod(xs[1:])
    known = math.prod(d for d in shape if d != -1)
    if (size % known if -1 in shape else size != known):
        raise ShapeError(f"reshape: `shape` expected sizes holding {size} elements (the input "
                         f"shape {xs} without its batch axis), got {shape}")
    return ops.reshape(x, shape=(xs[0], *shape))


@constructor("reshape")
def reshape(x: Node, shape: Shape, *, name: str | None = None) -> Node:
    """Reshape every sample: ``shape`` excludes the batch axis, which is kept; one entry may
    be -1 (worked out from the others).

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 784))
    >>> axon_fn.get_output_shape(x >> reshape((28, -1, 1)))
    (1, 28, 28, 1)
    """
    dims = (shape,) if is_int(shape) else shape
    if not (isinstance(dims, (tuple, list)) and dims
            and all(is_int(d) and (d >= 1 or d == -1) for d in dims)
            and list(dims).count(-1) <= 1):
        raise InvalidArgumentError(f"reshape: `shape` expected a tuple of positive ints (without "
                                   f"the batch axis; at most one -1), got {shape!r}")
    return make_node("reshape", [x], _reshape, name=name,
                     opts={"shape": tuple(int(d) for d in dims)})


def _transpose(x, *, permutation):
    xs = tuple(x.shape)
    if len(xs) != len(permutation) + 1:
        raise ShapeError(f"transpose: `permutation` expected {len(xs) - 1} entries (one per axis "
                         f"of the input shape {xs} but the batch axis), got {permutation}")
    return ops.transpose(x, axes=(0, *(p + 1 for p in permutation)))


@constructor("transpose")
def transpose(x: Node, permutation: Sequence[int], *, name: str | None = None) -> Node:
    """Permute the non-batch axes: ``permutation`` numbers them from 0, so ``(1, 0)`` turns
    ``(N, A, B)`` into ``(N, B, A)``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 2, 3, 4))
    >>> axon_fn.get_output_shape(x >> transpose((2, 0, 1)))
    (1, 4, 2, 3)
    """
    if not (isinstance(permutation, (tuple, list)) and permutation
            and all(is_int(p) for p in permutation)
            and sorted(int(p) for p in permutation) == list(range(len(permutation)))):
        raise InvalidArgumentError(f"transpose: `permutation` expected a permutation of the "
                                   f"non-batch axes 0, 1, ..., rank - 2, got {permutation!r}")
    return make_node("transpose", [x], _transpose, name=name,
                     opts={"permutation": tuple(int(p) for p in permutation)})


def _pad(x, *, padding, value, channels):
    xs = tuple(x.shape)
    if len(xs) != len(padding) + 2:
        order = "channels, *spatial" if channels == "first" else "*spatial, channels"
        raise ShapeError(f"pad: `padding` expected {max(len(xs) - 2, 0)} pairs (one per spatial "
                         f"axis of an input (batch, {order}) of shape {xs}), got "
                         f"{len(padding)}: {padding}")
    none = ((0, 0),)
    pairs = none * 2 + padding if channels == "first" else none + padding + none
    return ops.pad(x, pairs, constant_value=value)


@constructor("pad")
def pad(x: Node, padding: Sequence[tuple[int, int]], *, value: float = 0.0, channels: str = "last",
        name: str | None = None) -> Node:
    """Pad the spatial axes with ``value``: ``padding`` holds one ``(lo, hi)`` pair (or one int
    for both sides) per spatial axis, in order. Channels last, the input is ``(N, *S, C)`` and
    the pairs apply to axes ``1 .. rank - 2``; with ``channels="first"`` it is ``(N, C, *S)``
    and they apply to axes ``2 .. rank - 1``. The batch and channel axes are never padded.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2, 1)) >> pad([(1, 2)], value=-1.0)
    >>> axon_fn.predict(model, axon_fn.init(model), np.array([[[5.0], [6.0]]]))[0, :, 0]
    array([-1.,  5.,  6., -1., -1.])
    """
    entries = padding if isinstance(padding, (tuple, list)) else None
    pairs = []
    for entry in entries or ():
        if is_int(entry) and entry >= 0:
            pairs.append((int(entry), int(entry)))
        elif (isinstance(entry, (tuple, list)) and len(entry) == 2
              and all(is_int(v) and v >= 0 for v in entry)):
            pairs.append((int(entry[0]), int(entry[1])))
        else:
            entries = None
            break
    if not entries:
        raise InvalidArgumentError(f"pad: `padding` expected one (lo, hi) pair of non-negative "
                                   f"ints (or one int) per spatial axis, got {padding!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise AxonTypeError(f"pad: `value` expected a number, got {value!r}")
    return make_node("pad", [x], _pad, name=name,
                     opts={"padding": tuple(pairs), "value": value,
                           "channels": _channels("pad", channels)})


@constructor("resize")
def resize(x: Node, size: Shape, *, method: str = "nearest", channels: str = "last",
           name: str | None = None) -> Node:
    """Resize the spatial axes to ``size`` (an int, or one int per spatial axis); ``method`` is
    ``"nearest"`` or ``"linear"`` (aliases ``"bilinear"``, ``"trilinear"``), as
    :func:`axon_fn.layers.resize`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2, 1)) >> resize(4, method="linear")
    >>> axon_fn.predict(model, axon_fn.init(model), np.array([[[0.0], [4.0]]]))[0, :, 0]
    array([0., 1., 3., 4.])
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidArgumentError(f"resize: `method` expected one of "
                                   f"{', '.join(map(repr, _METHODS))}, got {method!r}")
    return make_node("resize", [x], _resize_fn, name=name,
                     opts={"size": _sizes("resize", "size", size), "method": method,
                           "channels": _channels("resize", channels)})
