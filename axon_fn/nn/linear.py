"""Graph constructors for the linear layers: dense, bilinear, embedding, bias.

>>> import axon_fn
>>> x = axon_fn.input("x", shape=(None, 4))
>>> axon_fn.get_output_shape(x >> dense(8, activation="relu"))
(1, 8)
"""

from __future__ import annotations

from typing import Callable

from .. import initializers as init
from .. import layers
from ..graph.core import make_node, param
from ..graph.node import Node, constructor
from ..initializers import Initializer
from ..typing import Array
from ._common import apply_activation, last_axis, positive_int, resolve_activation

__all__ = ["dense", "bilinear", "embedding", "bias"]


def _dense(x, kernel, bias=None, *, activation=None):
    return layers.dense(x, kernel, bias, activation=activation)


def _bilinear(x1, x2, kernel, bias=None, *, activation=None):
    return apply_activation(layers.bilinear(x1, x2, kernel, bias), activation)


@constructor("dense")
def dense(x: Node, units: int, *, activation: str | Callable[[Array], Array] | None = None,
          use_bias: bool = True, kernel_initializer: Initializer | None = None,
          bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Fully connected layer with parameters ``kernel (in, units)`` and ``bias (units,)``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3))
    >>> state = axon_fn.init(x >> dense(2), key=0)
    >>> {k: v.shape for k, v in state["dense_0"].items()}
    {'kernel': (3, 2), 'bias': (2,)}
    """
    units = positive_int(units, "dense", "units")
    size = last_axis("dense")
    args = [x, param("kernel", lambda s: (size(s), units),
                     kernel_initializer or init.glorot_uniform())]
    if use_bias:
        args.append(param("bias", (units,), bias_initializer or init.zeros()))
    return make_node("dense", args, _dense, name=name,
                     opts={"activation": resolve_activation(activation, "dense")})


@constructor("bilinear", n_inputs=2)
def bilinear(x1: Node, x2: Node, units: int, *,
             activation: str | Callable[[Array], Array] | None = None, use_bias: bool = True,
             kernel_initializer: Initializer | None = None,
             bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Bilinear layer ``y = x1 W x2 + b`` with ``kernel (units, in1, in2)``.

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 3)), axon_fn.input("b", shape=(None, 2))
    >>> axon_fn.get_output_shape(bilinear(a, b, 4))
    (1, 4)
    """
    units = positive_int(units, "bilinear", "units")
    size = last_axis("bilinear")
    args = [x1, x2, param("kernel", lambda s1, s2: (units, size(s1), size(s2)),
                          kernel_initializer or init.glorot_uniform())]
    if use_bias:
        args.append(param("bias", (units,), bias_initializer or init.zeros()))
    return make_node("bilinear", args, _bilinear, name=name,
                     opts={"activation": resolve_activation(activation, "bilinear")})


@constructor("embedding")
def embedding(x: Node, vocab_size: int, embedding_size: int, *,
              kernel_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Look up integer ids in a trainable table ``kernel (vocab_size, embedding_size)``.

    >>> import axon_fn
    >>> ids = axon_fn.input("ids", shape=(None, 5), dtype="int32")
    >>> axon_fn.get_output_shape(ids >> embedding(100, 8))
    (1, 5, 8)
    """
    vocab = positive_int(vocab_size, "embedding", "vocab_size")
    size = positive_int(embedding_size, "embedding", "embedding_size")
    kernel = param("kernel", (vocab, size), kernel_initializer or init.uniform())
    return make_node("embedding", [x, kernel], layers.embedding, name=name)


@constructor("bias")
def bias(x: Node, *, bias_initializer: Initializer | None = None, name: str | None = None) -> Node:
    """Add a trainable bias along the last axis.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3))
    >>> axon_fn.init(x >> bias(), key=0)["bias_0"]["bias"].shape
    (3,)
    """
    size = last_axis("bias")
    b = param("bias", lambda s: (size(s),), bias_initializer or init.zeros())
    return make_node("bias", [x, b], layers.bias, name=name)
