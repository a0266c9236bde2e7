"""Graph constructors for the normalization layers.

Scales (``gamma``) start at ones and shifts (``beta``) at zeros. ``batch_norm`` keeps running
``mean`` / ``var`` as state: train mode normalizes with the batch and returns updated
statistics (``momentum`` weighs the new batch, as in PyTorch); inference mode uses them.

>>> import axon_fn
>>> x = axon_fn.input("x", shape=(None, 4))
>>> state = axon_fn.init(x >> batch_norm(), key=0)
>>> sorted(state.trainable["batch_norm_0"]), sorted(state.state["batch_norm_0"])
(['beta', 'gamma'], ['mean', 'var'])
"""

from __future__ import annotations

from .. import initializers as init
from .. import layers
from ..errors import ShapeError
from ..graph.core import make_node, param
from ..graph.node import Node, StatefulOutput, constructor
from ..initializers import Initializer
from ._common import positive_int

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm"]


def _channels(layer, channel_index):
    def size(shape):
        if not -len(shape) <= channel_index < len(shape):
            raise ShapeError(f"{layer}: `channel_index` {channel_index} is out of range for an "
                             f"input of shape {shape}")
        return (shape[channel_index],)
    return size


def _scale_shift(layer, channel_index, gamma_initializer, beta_initializer, with_beta=True):
    size = _channels(layer, channel_index)
    params = [param("gamma", size, gamma_initializer or init.ones())]
    if with_beta:
        params.append(param("beta", size, beta_initializer or init.zeros()))
    return params


def _batch_norm(x, gamma, beta, mean, var, *, training, momentum, epsilon, channel_index):
    if not training:
        return layers.batch_norm(x, gamma, beta, mean, var, training=False, epsilon=epsilon,
                                 channel_index=channel_index)
    y, new_mean, new_var = layers.batch_norm(x, gamma, beta, mean, var, training=True,
                                             momentum=momentum, epsilon=epsilon,
                                             channel_index=channel_index)
    return StatefulOutput(y, {"mean": new_mean, "var": new_var})


@constructor("batch_norm")
def batch_norm(x: Node, *, momentum: float = 0.1, epsilon: float = 1e-5, channel_index: int = -1,
               gamma_initializer: Initializer | None = None,
               beta_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Batch normalization with running statistics (state ``mean`` and ``var``).

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 1)) >> batch_norm()
    >>> init_fn, train_fn = axon_fn.build(model, mode="train")
    >>> y, new = train_fn(init_fn(), np.array([[0.0], [2.0]]))
    >>> y.ravel().round(3).tolist(), new.state["batch_norm_0"]["mean"]
    ([-1.0, 1.0], array([0.1], dtype=float32))
    """
    size = _channels("batch_norm", channel_index)
    args = [x, *_scale_shift("batch_norm", channel_index, gamma_initializer, beta_initializer),
            param("mean", size, init.zeros(), kind="state"),
            param("var", size, init.ones(), kind="state")]
    node = make_node("batch_norm", args, _batch_norm, name=name, training=True,
                     opts={"momentum": momentum, "epsilon": epsilon,
                           "channel_index": channel_index})
    return node


@constructor("layer_norm")
def layer_norm(x: Node, *, epsilon: float = 1e-5, channel_index: int = -1,
               gamma_initializer: Initializer | None = None,
               beta_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Layer normalization over the channel axis, with ``gamma`` and ``beta``.

    >>> import axon_fn
    >>> (axon_fn.input("x", shape=(None, 4)) >> layer_norm()).op
    'layer_norm'
    """
    args = [x, *_scale_shift("layer_norm", channel_index, gamma_initializer, beta_initializer)]
    return make_node("layer_norm", args, layers.layer_norm, name=name,
                     opts={"epsilon": epsilon, "channel_index": channel_index})


@constructor("group_norm")
def group_norm(x: Node, num_groups: int, *, epsilon: float = 1e-5, channel_index: int = -1,
               gamma_initializer: Initializer | None = None,
               beta_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Group normalization with ``num_groups`` channel groups.

    >>> import axon_fn
    >>> (axon_fn.input("x", shape=(None, 8, 4)) >> group_norm(2)).op
    'group_norm'
    """
    positive_int(num_groups, "group_norm", "num_groups")
    args = [x, *_scale_shift("group_norm", channel_index, gamma_initializer, beta_initializer)]
    return make_node("group_norm", args, layers.group_norm, name=name,
                     opts={"num_groups": num_groups, "epsilon": epsilon,
                           "channel_index": channel_index})


@constructor("instance_norm")
def instance_norm(x: Node, *, epsilon: float = 1e-5, channel_index: int = -1,
                  gamma_initializer: Initializer | None = None,
                  beta_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Instance normalization (per sample and channel, over the spatial axes).

    >>> import axon_fn
    >>> (axon_fn.input("x", shape=(None, 8, 4)) >> instance_norm()).op
    'instance_norm'
    """
    args = [x, *_scale_shift("instance_norm", channel_index, gamma_initializer,
                             beta_initializer)]
    return make_node("instance_norm", args, layers.instance_norm, name=name,
                     opts={"epsilon": epsilon, "channel_index": channel_index})


@constructor("rms_norm")
def rms_norm(x: Node, *, epsilon: float = 1e-6, channel_index: int = -1,
             gamma_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """RMS normalization with a ``gamma`` scale (no shift).

    >>> import axon_fn
    >>> (axon_fn.input("x", shape=(None, 4)) >> rms_norm()).op
    'rms_norm'
    """
    args = [x, *_scale_shift("rms_norm", channel_index, gamma_initializer, None,
                             with_beta=False)]
    return make_node("rms_norm", args, layers.rms_norm, name=name,
                     opts={"epsilon": epsilon, "channel_index": channel_index})
