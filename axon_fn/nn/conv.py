"""Graph constructors for the convolution layers: ``conv``, ``conv_transpose``,
``depthwise_conv``, ``separable_conv2d`` and ``separable_conv3d`` (Elixir Axon's names and
options).

The number of spatial dims (1, 2 or 3) comes from the input's rank. Channels are last by
default (input ``(N, *S, C)``); ``channels="first"`` takes ``(N, C, *S)`` and stores kernels in
PyTorch's layouts. Parameter shapes follow the input shape (``K`` = ``kernel_size`` per axis,
``C`` = input channels, ``F`` = ``filters``, ``m`` = ``channel_multiplier``, ``g`` =
``feature_group_count``):

* ``conv``: ``kernel (*K, C // g, F)``, channels first ``(F, C // g, *K)``; ``bias (F,)``
* ``conv_transpose``: ``kernel (*K, C, F)``, channels first ``(C, F, *K)``; ``bias (F,)``
* ``depthwise_conv``: ``kernel (*K, 1, C * m)``, channels first ``(C * m, 1, *K)``;
  ``bias (C * m,)``
* ``separable_conv2d`` / ``separable_conv3d``: ``kernel_i`` (``i`` = 1, 2[, 3]) has the
  depthwise layout with size ``K[i - 1]`` on spatial axis ``i - 1`` and 1 on the others (2-d,
  channels last: ``kernel_1 (kh, 1, 1, C * m)``, ``kernel_2 (1, kw, 1, C * m)``); each
  ``bias_i`` is ``(C * m,)``

Kernels start glorot-uniform with fans over the receptive field (Flax's rule; for
channels-first kernels the default initializer reads the in/out channel axes at their
channels-first positions), biases at zero. A custom ``kernel_initializer`` is used as given:
pass it ``in_axis``/``out_axis`` for channels-first kernels if its fans matter
(``he_uniform(in_axis=1, out_axis=0)`` for ``conv``).

>>> import axon_fn
>>> x = axon_fn.input("image", shape=(None, 8, 8, 3))
>>> axon_fn.get_output_shape(x >> conv(16, 3, padding="same", activation="relu"))
(1, 8, 8, 16)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .. import initializers as init
from .._checks import is_int
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..graph.core import make_node, param
from ..graph.node import Node, constructor
from ..initializers import Initializer
from ..layers.conv import conv as _conv_fn
from ..layers.conv import conv_transpose as _conv_transpose_fn
from ..layers.conv import depthwise_conv as _depthwise_conv_fn
from ..layers.conv import separable_conv2d as _separable_conv2d_fn
from ..layers.conv import separable_conv3d as _separable_conv3d_fn
from ..typing import Array
from ._common import apply_activation, positive_int, resolve_activation

__all__ = ["conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d"]


# Option checks shared with the pooling and shape constructors (private) --------------------------


def _sizes(layer, argument, value, *, allow_none=False):
    """A positive int, or a tuple/list of them (one per spatial axis); None when allowed."""
    if allow_none and value is None:
        return None
    if is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, (tuple, list)) and value and all(is_int(v) and v >= 1 for v in value):
        return tuple(int(v) for v in value)
    none = "None, " if allow_none else ""
    raise InvalidArgumentError(f"{layer}: `{argument}` expected {none}a positive int or a tuple "
                               f"of positive ints (one per spatial axis), got {value!r}")


def _per_axis(layer, argument, value, nd, shape, channels="last"):
    """``value`` (an int or ``nd`` ints) as ``nd`` ints for an input of ``shape``; ShapeError.

    A tuple reveals the rank the user meant: one entry more than the input has spatial axes is
    the usual missing channel axis ((None, 28, 28) given to a 2-d layer), which is said so."""
    if is_int(value):
        return (int(value),) * nd
    if len(value) != nd:
        message = (f"{layer}: `{argument}` {value!r} asks for a {len(value)}-d layer but the "
                   f"input of shape {tuple(shape)} has {nd} spatial "
                   f"{'axis' if nd == 1 else 'axes'} (batch, "
                   f"{'channels, *spatial' if channels == 'first' else '*spatial, channels'})")
        if len(value) == nd + 1:
            fix = (f"(1, {', '.join(map(str, shape[1:]))})" if channels == "first"
                   else f"({', '.join(map(str, shape[1:]))}, 1)")
            message += (f"; the input seems to have no channel axis: add one, e.g. "
                        f"x >> axon_fn.reshape({fix})")
        raise ShapeError(message)
    return tuple(value)


def _check_rank(layer, shape, nd, channels, **options):
    """Every per-axis option given as a tuple must have one entry per spatial axis."""
    for argument, value in options.items():
        if isinstance(value, tuple):
            _per_axis(layer, argument, value, nd, shape, channels)


def _padding(layer, value):
    """``"valid"``, ``"same"``, an int, or one int or ``(lo, hi)`` pair of ints per spatial
    axis. Signs and the number of axes are checked when the layer meets its input."""
    if isinstance(value, str):
        if value in ("valid", "same"):
            return value
    elif is_int(value):
        return int(value)
    elif isinstance(value, (tuple, list)) and value:
        pairs = []
        for entry in value:
            if is_int(entry):
                pairs.append(int(entry))
            elif (isinstance(entry, (tuple, list)) and len(entry) == 2
                  and all(is_int(v) for v in entry)):
                pairs.append((int(entry[0]), int(entry[1])))
            else:
                break
        else:
            return tuple(pairs)
    raise InvalidArgumentError(f"{layer}: `padding` expected 'valid', 'same', an int, or one int "
                               f"or (lo, hi) pair of ints per spatial axis, got {value!r}")


def _channels(layer, value):
    if not isinstance(value, str) or value not in ("last", "first"):
        raise InvalidArgumentError(f"{layer}: `channels` expected 'last' or 'first', got "
                                   f"{value!r}")
    return value


def _flag(layer, argument, value):
    if not isinstance(value, (bool, np.bool_)):
        raise AxonTypeError(f"{layer}: `{argument}` expected True or False, got {value!r}")
    return bool(value)


def _initializer(layer, argument, value, default):
    if value is None:
        return default
    if not callable(value):
        raise AxonTypeError(f"{layer}: `{argument}` expected a function (key, shape, dtype) -> "
                            f"array such as axon_fn.initializers.glorot_uniform(), got {value!r}")
    return value


def _layout(layer, shape, channels, rank=None):
    """``(spatial dims, channels)`` of an input of ``shape``; a ShapeError naming the layer."""
    order = "channels, *spatial" if channels == "first" else "*spatial, channels"
    if rank is not None and len(shape) != rank:
        raise ShapeError(f"{layer}: the input `x` expected rank {rank} (batch, {order}), got "
                         f"shape {tuple(shape)}")
    if len(shape) < 3:
        raise ShapeError(f"{layer}: the input `x` expected rank >= 3 (batch, {order}), got "
                         f"shape {tuple(shape)}")
    return len(shape) - 2, shape[1] if channels == "first" else shape[-1]


# Convolutions ------------------------------------------------------------------------------------


def _kernel_init(value, channels, transposed=False):
    """The kernel initializer: glorot-uniform with the channel axes of the kernel layout."""
    if value is not None:
        return value
    if channels == "last":
        return init.glorot_uniform()
    return init.glorot_uniform(in_axis=0, out_axis=1) if transposed else \
        init.glorot_uniform(in_axis=1, out_axis=0)


def _common(layer, strides, padding, kernel_dilation, channels, activation, use_bias,
            kernel_initializer, bias_initializer):
    """Check the options every convolution shares; returns (channels, opts, kernel_init,
    bias_init, use_bias)."""
    channels = _channels(layer, channels)
    opts = {"strides": _sizes(layer, "strides", strides),
            "padding": _padding(layer, padding),
            "kernel_dilation": _sizes(layer, "kernel_dilation", kernel_dilation),
            "channels": channels,
            "activation": resolve_activation(activation, layer)}
    use_bias = _flag(layer, "use_bias", use_bias)
    kernel_initializer = _initializer(layer, "kernel_initializer", kernel_initializer, None)
    bias_initializer = _initializer(layer, "bias_initializer", bias_initializer, init.zeros())
    return channels, opts, kernel_initializer, bias_initializer, use_bias


def _conv(x, kernel, bias=None, *, activation, **opts):
    return apply_activation(_conv_fn(x, kernel, bias, **opts), activation)


def _conv_transpose(x, kernel, bias=None, *, activation, **opts):
    return apply_activation(_conv_transpose_fn(x, kernel, bias, **opts), activation)


def _depthwise_conv(x, kernel, bias=None, *, activation, input_dilation, channels, **opts):
    if input_dilation == 1:
        y = _depthwise_conv_fn(x, kernel, bias, channels=channels, **opts)
    else:  # a depthwise convolution is a grouped one with one group per input channel
        c = x.shape[1] if channels == "first" else x.shape[-1]
        y = _conv_fn(x, kernel, bias, input_dilation=input_dilation, feature_group_count=c,
                     channels=channels, **opts)
    return apply_activation(y, activation)


def _separable(x, *params, activation, use_bias, **opts):
    nd = len(params) // (2 if use_bias else 1)
    if use_bias:
        args = params
    else:
        args = [p for k in params for p in (k, None)]
    fn = _separable_conv2d_fn if nd == 2 else _separable_conv3d_fn
    return apply_activation(fn(x, *args, **opts), activation)


@constructor("conv")
def conv(x: Node, filters: int, kernel_size: int | Sequence[int] = 1, *,
         strides: int | Sequence[int] = 1, padding: str | Sequence[tuple[int, int]] = "valid",
         input_dilation: int | Sequence[int] = 1, kernel_dilation: int | Sequence[int] = 1,
         feature_group_count: int = 1, channels: str = "last",
         activation: str | Callable[[Array], Array] | None = None, use_bias: bool = True,
         kernel_initializer: Initializer | None = None, bias_initializer: Initializer | None = None,
         name: str | None = None) -> Node:
    """N-d convolution with ``filters`` output channels (see :func:`axon_fn.layers.conv`).

    Parameters ``kernel`` ``(*kernel_size, C // feature_group_count, filters)`` (channels
    first: ``(filters, C // feature_group_count, *kernel_size)``) and ``bias (filters,)``.
    ``kernel_size``, ``strides`` and the dilations are an int or one int per spatial axis;
    ``padding`` is ``"valid"``, ``"same"``, an int or one ``(lo, hi)`` pair per spatial axis.

    The rank comes from the input: ``(batch, *spatial, channels)``, so an input declared
    ``(None, 28, 28)`` is a 1-d signal of length 28 with 28 channels, and ``conv(8, 3)`` on it
    is a 1-d convolution. A tuple ``kernel_size`` (or ``strides``, dilations) states the rank
    you mean: ``conv(8, (3, 3))`` on that input is a ShapeError that names both ranks and says
    the input seems to lack its channel axis (reshape it to ``(28, 28, 1)``). Write sizes as
    tuples to have that check.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3, 8, 8))
    >>> model = x >> conv(4, (3, 3), strides=2, padding="same", channels="first")
    >>> axon_fn.get_output_shape(model)
    (1, 4, 4, 4)
    >>> {k: v.shape for k, v in axon_fn.init(model)["conv_0"].items()}
    {'kernel': (4, 3, 3, 3), 'bias': (4,)}
    """
    layer = "conv"
    filters = positive_int(filters, layer, "filters")
    kernel_size = _sizes(layer, "kernel_size", kernel_size)
    groups = positive_int(feature_group_count, layer, "feature_group_count")
    if filters % groups:
        raise InvalidArgumentError(f"conv: `filters` expected a multiple of feature_group_count "
                                   f"{groups}, got {filters}")
    channels, opts, kernel_init, bias_init, use_bias = _common(
        layer, strides, padding, kernel_dilation, channels, activation, use_bias,
        kernel_initializer, bias_initializer)
    opts["input_dilation"] = _sizes(layer, "input_dilation", input_dilation)
    opts["feature_group_count"] = groups

    def kernel_shape(s):
        nd, c = _layout(layer, s, channels)
        if c % groups:
            raise ShapeError(f"conv: the input `x` expected channels divisible by "
                             f"feature_group_count {groups}, got shape {tuple(s)}")
        k = _per_axis(layer, "kernel_size", kernel_size, nd, s, channels)
        _check_rank(layer, s, nd, channels, strides=opts["strides"],
                    kernel_dilation=opts["kernel_dilation"],
                    input_dilation=opts["input_dilation"])
        return (*k, c // groups, filters) if channels == "last" else (filters, c // groups, *k)

    args = [x, param("kernel", kernel_shape, _kernel_init(kernel_init, channels))]
    if use_bias:
        args.append(param("bias", (filters,), bias_init))
    return make_node(layer, args, _conv, name=name, opts=opts)


@constructor("conv_transpose")
def conv_transpose(x: Node, filters: int, kernel_size: int | Sequence[int] = 1, *,
                   strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last",
                   activation: str | Callable[[Array], Array] | None = None, use_bias: bool = True,
                   kernel_initializer: Initializer | None = None,
                   bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Transposed convolution with ``filters`` output channels (the input gradient of
    :func:`conv`; see :func:`axon_fn.layers.conv_transpose` for the padding rules).

    Parameters ``kernel`` ``(*kernel_size, C, filters)`` (channels first: ``(C, filters,
    *kernel_size)``, PyTorch's ``ConvTranspose`` layout) and ``bias (filters,)``. With
    ``padding="same"`` the spatial size is multiplied by ``strides``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 4, 4, 3))
    >>> model = x >> conv_transpose(2, 3, strides=2, padding="same")
    >>> axon_fn.get_output_shape(model), axon_fn.init(model)["conv_transpose_0"]["kernel"].shape
    ((1, 8, 8, 2), (3, 3, 3, 2))
    """
    layer = "conv_transpose"
    filters = positive_int(filters, layer, "filters")
    kernel_size = _sizes(layer, "kernel_size", kernel_size)
    channels, opts, kernel_init, bias_init, use_bias = _common(
        layer, strides, padding, kernel_dilation, channels, activation, use_bias,
        kernel_initializer, bias_initializer)

    def kernel_shape(s):
        nd, c = _layout(layer, s, channels)
        k = _per_axis(layer, "kernel_size", kernel_size, nd, s, channels)
        _check_rank(layer, s, nd, channels, strides=opts["strides"],
                    kernel_dilation=opts["kernel_dilation"])
        return (*k, c, filters) if channels == "last" else (c, filters, *k)

    args = [x, param("kernel", kernel_shape, _kernel_init(kernel_init, channels, True))]
    if use_bias:
        args.append(param("bias", (filters,), bias_init))
    return make_node(layer, args, _conv_transpose, name=name, opts=opts)


@constructor("depthwise_conv")
def depthwise_conv(x: Node, channel_multiplier: int, kernel_size: int | Sequence[int] = 1, *,
                   strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   input_dilation: int | Sequence[int] = 1,
                   kernel_dilation: int | Sequence[int] = 1, channels: str = "last",
                   activation: str | Callable[[Array], Array] | None = None, use_bias: bool = True,
                   kernel_initializer: Initializer | None = None,
                   bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Depthwise convolution: every input channel convolved with its own
    ``channel_multiplier`` filters (see :func:`axon_fn.layers.depthwise_conv`).

    Parameters ``kernel`` ``(*kernel_size, 1, C * channel_multiplier)`` (channels first:
    ``(C * channel_multiplier, 1, *kernel_size)``) and ``bias (C * channel_multiplier,)``;
    output channel ``c * channel_multiplier + j`` comes from input channel ``c``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 6, 6, 3))
    >>> model = x >> depthwise_conv(2, 3)
    >>> {k: v.shape for k, v in axon_fn.init(model)["depthwise_conv_0"].items()}
    {'kernel': (3, 3, 1, 6), 'bias': (6,)}
    """
    layer = "depthwise_conv"
    multiplier = positive_int(channel_multiplier, layer, "channel_multiplier")
    kernel_size = _sizes(layer, "kernel_size", kernel_size)
    channels, opts, kernel_init, bias_init, use_bias = _common(
        layer, strides, padding, kernel_dilation, channels, activation, use_bias,
        kernel_initializer, bias_initializer)
    opts["input_dilation"] = _sizes(layer, "input_dilation", input_dilation)

    def kernel_shape(s):
        nd, c = _layout(layer, s, channels)
        k = _per_axis(layer, "kernel_size", kernel_size, nd, s, channels)
        _check_rank(layer, s, nd, channels, strides=opts["strides"],
                    kernel_dilation=opts["kernel_dilation"],
                    input_dilation=opts["input_dilation"])
        return (*k, 1, c * multiplier) if channels == "last" else (c * multiplier, 1, *k)

    def bias_shape(s):
        return (_layout(layer, s, channels)[1] * multiplier,)

    args = [x, param("kernel", kernel_shape, _kernel_init(kernel_init, channels))]
    if use_bias:
        args.append(param("bias", bias_shape, bias_init))
    return make_node(layer, args, _depthwise_conv, name=name, opts=opts)


def _separable_node(layer, nd, x, channel_multiplier, kernel_size, strides, padding,
                    kernel_dilation, channels, activation, use_bias, kernel_initializer,
                    bias_initializer, name):
    multiplier = positive_int(channel_multiplier, layer, "channel_multiplier")
    kernel_size = _sizes(layer, "kernel_size", kernel_size)
    if not is_int(kernel_size) and len(kernel_size) != nd:
        raise InvalidArgumentError(f"{layer}: `kernel_size` expected an int or {nd} ints, got "
                                   f"{kernel_size!r}")
    channels, opts, kernel_init, bias_init, use_bias = _common(
        layer, strides, padding, kernel_dilation, channels, activation, use_bias,
        kernel_initializer, bias_initializer)
    sizes = (kernel_size,) * nd if is_int(kernel_size) else kernel_size

    def kernel_shape(axis):
        def shape(s):
            _, c = _layout(layer, s, channels, rank=nd + 2)
            k = tuple(sizes[axis] if j == axis else 1 for j in range(nd))
            return (*k, 1, c * multiplier) if channels == "last" else (c * multiplier, 1, *k)
        return shape

    def bias_shape(s):
        return (_layout(layer, s, channels, rank=nd + 2)[1] * multiplier,)

    args = [x]
    for i in range(nd):
        args.append(param(f"kernel_{i + 1}", kernel_shape(i), _kernel_init(kernel_init, channels)))
        if use_bias:
            args.append(param(f"bias_{i + 1}", bias_shape, bias_init))
    opts["use_bias"] = use_bias
    return make_node(layer, args, _separable, name=name, opts=opts)


@constructor("separable_conv2d")
def separable_conv2d(x: Node, channel_multiplier: int, kernel_size: int | Sequence[int] = 1, *,
                     strides: int | Sequence[int] = 1,
                     padding: str | Sequence[tuple[int, int]] = "valid",
                     kernel_dilation: int | Sequence[int] = 1, channels: str = "last",
                     activation: str | Callable[[Array], Array] | None = None,
                     use_bias: bool = True, kernel_initializer: Initializer | None = None,
                     bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Spatially separable 2-d depthwise convolution: a ``(kh, 1)`` depthwise convolution with
    ``channel_multiplier`` followed by a ``(1, kw)`` one (see
    :func:`axon_fn.layers.separable_conv2d`, which also explains how strides split per axis).

    Parameters (``C`` input channels, ``m`` = ``channel_multiplier``): ``kernel_1 (kh, 1, 1, C *
    m)``, ``bias_1 (C * m,)``, ``kernel_2 (1, kw, 1, C * m)``, ``bias_2 (C * m,)``; channels
    first ``kernel_1 (C * m, 1, kh, 1)`` and ``kernel_2 (C * m, 1, 1, kw)``. The input must be
    ``(N, H, W, C)`` (``(N, C, H, W)``).

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 6, 6, 2))
    >>> model = x >> separable_conv2d(2, (3, 5))
    >>> axon_fn.get_output_shape(model)
    (1, 4, 2, 4)
    >>> {k: v.shape for k, v in axon_fn.init(model)["separable_conv2d_0"].items()}
    {'kernel_1': (3, 1, 1, 4), 'bias_1': (4,), 'kernel_2': (1, 5, 1, 4), 'bias_2': (4,)}
    """
    return _separable_node("separable_conv2d", 2, x, channel_multiplier, kernel_size, strides,
                           padding, kernel_dilation, channels, activation, use_bias,
                           kernel_initializer, bias_initializer, name)


@constructor("separable_conv3d")
def separable_conv3d(x: Node, channel_multiplier: int, kernel_size: int | Sequence[int] = 1, *,
                     strides: int | Sequence[int] = 1,
                     padding: str | Sequence[tuple[int, int]] = "valid",
                     kernel_dilation: int | Sequence[int] = 1, channels: str = "last",
                     activation: str | Callable[[Array], Array] | None = None,
                     use_bias: bool = True, kernel_initializer: Initializer | None = None,
                     bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Spatially separable 3-d depthwise convolution: ``(kd, 1, 1)``, ``(1, kh, 1)`` then
    ``(1, 1, kw)`` depthwise convolutions (see :func:`axon_fn.layers.separable_conv3d`).

    Parameters ``kernel_1``, ``bias_1``, ``kernel_2``, ``bias_2``, ``kernel_3``, ``bias_3``;
    kernel ``i`` has size ``kernel_size[i]`` on spatial axis ``i`` and 1 on the others, with
    the layout of :func:`separable_conv2d`. The input must be ``(N, D, H, W, C)``
    (``(N, C, D, H, W)``).

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 4, 4, 4, 1))
    >>> model = x >> separable_conv3d(1, 3, padding="same", use_bias=False)
    >>> axon_fn.get_output_shape(model)
    (1, 4, 4, 4, 1)
    >>> [v.shape for v in axon_fn.init(model)["separable_conv3d_0"].values()]
    [(3, 1, 1, 1, 1), (1, 3, 1, 1, 1), (1, 1, 3, 1, 1)]
    """
    return _separable_node("separable_conv3d", 3, x, channel_multiplier, kernel_size, strides,
                           padding, kernel_dilation, channels, activation, use_bias,
                           kernel_initializer, bias_initializer, name)

