"""Graph constructors for the pooling layers (Elixir Axon's names and options): windowed
``max_pool`` / ``avg_pool`` / ``lp_pool``, ``adaptive_*_pool`` to a fixed output size and
``global_*_pool`` over every spatial axis. None has parameters.

Channels are last by default (input ``(N, *S, C)``); ``channels="first"`` takes ``(N, C, *S)``.
The computations are those of :mod:`axon_fn.layers.pooling` (Lp pooling sums ``x ** norm``
over each window, as Axon and PyTorch).

>>> import axon_fn
>>> x = axon_fn.input("image", shape=(None, 8, 8, 3))
>>> axon_fn.get_output_shape(x >> max_pool(2) >> global_avg_pool())
(1, 3)
"""

from __future__ import annotations

import math
from typing import Sequence

from .._checks import is_int
from ..errors import InvalidArgumentError
from ..graph.core import make_node
from ..graph.node import Node, constructor
from ..layers.pooling import adaptive_avg_pool as _adaptive_avg_pool_fn
from ..layers.pooling import adaptive_lp_pool as _adaptive_lp_pool_fn
from ..layers.pooling import adaptive_max_pool as _adaptive_max_pool_fn
from ..layers.pooling import avg_pool as _avg_pool_fn
from ..layers.pooling import global_avg_pool as _global_avg_pool_fn
from ..layers.pooling import global_lp_pool as _global_lp_pool_fn
from ..layers.pooling import global_max_pool as _global_max_pool_fn
from ..layers.pooling import lp_pool as _lp_pool_fn
from ..layers.pooling import max_pool as _max_pool_fn
from .conv import _channels, _flag, _layout, _padding, _per_axis, _sizes

__all__ = [
    "max_pool", "avg_pool", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool",
    "adaptive_lp_pool", "global_avg_pool", "global_max_pool", "global_lp_pool",
]


def _norm(layer, norm):
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not 0 < norm < math.inf:
        raise InvalidArgumentError(f"{layer}: `norm` expected a finite number > 0, got {norm!r}")
    return norm


def _windowed(layer, fn):
    def forward(x, *, kernel_size, strides, channels, **opts):
        shape = x.shape
        nd, _ = _layout(layer, shape, channels)
        window = _per_axis(layer, "kernel_size", kernel_size, nd, shape, channels)
        if strides is not None:
            strides = _per_axis(layer, "strides", strides, nd, shape, channels)
        return fn(x, window=window, strides=strides, channels=channels, **opts)
    return forward


def _adaptive(layer, fn):
    def forward(x, *, output_size, channels, **opts):
        shape = x.shape
        nd, _ = _layout(layer, shape, channels)
        output_size = _per_axis(layer, "output_size", output_size, nd, shape, channels)
        return fn(x, output_size=output_size, channels=channels, **opts)
    return forward


_FORWARD = {
    "max_pool": _windowed("max_pool", _max_pool_fn),
    "avg_pool": _windowed("avg_pool", _avg_pool_fn),
    "lp_pool": _windowed("lp_pool", _lp_pool_fn),
    "adaptive_avg_pool": _adaptive("adaptive_avg_pool", _adaptive_avg_pool_fn),
    "adaptive_max_pool": _adaptive("adaptive_max_pool", _adaptive_max_pool_fn),
    "adaptive_lp_pool": _adaptive("adaptive_lp_pool", _adaptive_lp_pool_fn),
    "global_avg_pool": _global_avg_pool_fn,
    "global_max_pool": _global_max_pool_fn,
    "global_lp_pool": _global_lp_pool_fn,
}


def _windowed_node(layer, x, kernel_size, strides, padding, channels, name, **extra):
    opts = {"kernel_size": _sizes(layer, "kernel_size", kernel_size),
            "strides": _sizes(layer, "strides", strides, allow_none=True),
            "padding": _padding(layer, padding), "channels": _channels(layer, channels), **extra}
    return make_node(layer, [x], _FORWARD[layer], name=name, opts=opts)


@constructor("max_pool")
def max_pool(x: Node, kernel_size: int | Sequence[int] = 1, *,
             strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", channels: str = "last",
             name: str | None = None) -> Node:
    """Max pooling over windows of ``kernel_size`` (an int or one per spatial axis).

    ``strides`` defaults to ``kernel_size`` (Axon's default); ``padding`` is ``"valid"``,
    ``"same"``, an int or one ``(lo, hi)`` pair per spatial axis (padding never wins the max).

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 4, 1)) >> max_pool(2)
    >>> x = np.array([[[1.0], [5.0], [2.0], [4.0]]])
    >>> axon_fn.predict(model, axon_fn.init(model), x)[0, :, 0]
    array([5., 4.])
    """
    return _windowed_node("max_pool", x, kernel_size, strides, padding, channels, name)


@constructor("avg_pool")
def avg_pool(x: Node, kernel_size: int | Sequence[int] = 1, *,
             strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "valid", count_include_pad: bool = True,
             channels: str = "last", name: str | None = None) -> Node:
    """Average pooling over windows of ``kernel_size``; other options as :func:`max_pool`.

    Padding counts as zeros and, with ``count_include_pad=True`` (Axon's and PyTorch's
    default), in the divisor.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 4, 1)) >> avg_pool(2)
    >>> x = np.array([[[2.0], [4.0], [6.0], [9.0]]])
    >>> axon_fn.predict(model, axon_fn.init(model), x)[0, :, 0]
    array([3. , 7.5])
    """
    return _windowed_node("avg_pool", x, kernel_size, strides, padding, channels, name,
                          count_include_pad=_flag("avg_pool", "count_include_pad",
                                                  count_include_pad))


@constructor("lp_pool")
def lp_pool(x: Node, kernel_size: int | Sequence[int] = 1, *, norm: float = 2,
            strides: int | Sequence[int] | None = None,
            padding: str | Sequence[tuple[int, int]] = "valid", channels: str = "last",
            name: str | None = None) -> Node:
    """Power-average pooling: ``(sum over each window of x ** norm) ** (1 / norm)``; other
    options as :func:`max_pool`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 4, 1)) >> lp_pool(2)
    >>> x = np.array([[[3.0], [4.0], [6.0], [8.0]]])
    >>> axon_fn.predict(model, axon_fn.init(model), x)[0, :, 0]
    array([ 5., 10.])
    """
    return _windowed_node("lp_pool", x, kernel_size, strides, padding, channels, name,
                          norm=_norm("lp_pool", norm))


def _output_size(layer, value):
    if is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, (tuple, list)) and value and all(
            v is None or (is_int(v) and v >= 1) for v in value):
        return tuple(None if v is None else int(v) for v in value)
    raise InvalidArgumentError(f"{layer}: `output_size` expected a positive int or a tuple of "
                               f"positive ints or None (keep that axis), one per spatial axis, "
                               f"got {value!r}")


def _adaptive_node(layer, x, output_size, channels, name, **extra):
    opts = {"output_size": _output_size(layer, output_size),
            "channels": _channels(layer, channels), **extra}
    return make_node(layer, [x], _FORWARD[layer], name=name, opts=opts)


@constructor("adaptive_avg_pool")
def adaptive_avg_pool(x: Node, output_size: int | Sequence[int], *, channels: str = "last",
                      name: str | None = None) -> Node:
    """Average pooling to a fixed spatial ``output_size`` (an int, or per spatial axis an int
    or None to keep that axis). Output ``i`` of an axis of size ``S`` averages
    ``[floor(i * S / O), ceil((i + 1) * S / O))``, as PyTorch's ``AdaptiveAvgPool``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 7, 9, 3))
    >>> axon_fn.get_output_shape(x >> adaptive_avg_pool((2, None)))
    (1, 2, 9, 3)
    """
    return _adaptive_node("adaptive_avg_pool", x, output_size, channels, name)


@constructor("adaptive_max_pool")
def adaptive_max_pool(x: Node, output_size: int | Sequence[int], *, channels: str = "last",
                      name: str | None = None) -> Node:
    """Max pooling to a fixed spatial ``output_size``; windows as :func:`adaptive_avg_pool`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 5, 1)) >> adaptive_max_pool(2)
    >>> x = np.array([[[1.0], [5.0], [2.0], [8.0], [3.0]]])
    >>> axon_fn.predict(model, axon_fn.init(model), x)[0, :, 0]
    array([5., 8.])
    """
    return _adaptive_node("adaptive_max_pool", x, output_size, channels, name)


@constructor("adaptive_lp_pool")
def adaptive_lp_pool(x: Node, output_size: int | Sequence[int], *, norm: float = 2,
                     channels: str = "last", name: str | None = None) -> Node:
    """Lp pooling to a fixed spatial ``output_size``: ``(sum of x ** norm) ** (1 / norm)`` over
    the windows of :func:`adaptive_avg_pool`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 4, 1)) >> adaptive_lp_pool(1)
    >>> x = np.array([[[3.0], [4.0], [0.0], [12.0]]])
    >>> axon_fn.predict(model, axon_fn.init(model), x)
    array([[[13.]]])
    """
    return _adaptive_node("adaptive_lp_pool", x, output_size, channels, name,
                          norm=_norm("adaptive_lp_pool", norm))


def _global_node(layer, x, keep_axes, channels, name, **extra):
    opts = {"keep_axes": _flag(layer, "keep_axes", keep_axes),
            "channels": _channels(layer, channels), **extra}
    return make_node(layer, [x], _FORWARD[layer], name=name, opts=opts)


@constructor("global_avg_pool")
def global_avg_pool(x: Node, *, keep_axes: bool = False, channels: str = "last",
                    name: str | None = None) -> Node:
    """Mean over every spatial axis: ``(N, C)``, or with ``keep_axes`` ``(N, 1, ..., 1, C)``
    (channels first ``(N, C, 1, ..., 1)``).

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 5, 5, 3))
    >>> axon_fn.get_output_shape(x >> global_avg_pool(keep_axes=True))
    (1, 1, 1, 3)
    """
    return _global_node("global_avg_pool", x, keep_axes, channels, name)


@constructor("global_max_pool")
def global_max_pool(x: Node, *, keep_axes: bool = False, channels: str = "last",
                    name: str | None = None) -> Node:
    """Maximum over every spatial axis; shapes as :func:`global_avg_pool`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 3, 2)) >> global_max_pool()
    >>> axon_fn.predict(model, axon_fn.init(model), np.arange(6.0).reshape(1, 3, 2))
    array([[4., 5.]])
    """
    return _global_node("global_max_pool", x, keep_axes, channels, name)


@constructor("global_lp_pool")
def global_lp_pool(x: Node, *, norm: float = 2, keep_axes: bool = False, channels: str = "last",
                   name: str | None = None) -> Node:
    """``(sum over every spatial axis of x ** norm) ** (1 / norm)``; shapes as
    :func:`global_avg_pool`.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2, 1)) >> global_lp_pool(norm=1)
    >>> axon_fn.predict(model, axon_fn.init(model), np.array([[[3.0], [4.0]]]))
    array([[7.]])
    """
    return _global_node("global_lp_pool", x, keep_axes, channels, name,
                        norm=_norm("global_lp_pool", norm))
