"""Graph constructors for attention: multi-head attention, position encodings and the
PyTorch-style transformer encoder / decoder blocks.

Masks are boolean nodes with **True = attend** (a real token), the opposite of PyTorch's
``key_padding_mask``; declare mask inputs with ``dtype="bool"``.

>>> import axon_fn
>>> x = axon_fn.input("x", shape=(None, 5, 8))
>>> y = x >> sinusoidal_position_encoding() >> transformer_encoder_block(num_heads=2, ff_size=16)
>>> axon_fn.get_output_shape(y)
(1, 5, 8)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .._dtypes import is_real_floating
from .. import initializers as init
from ..errors import AxonTypeError, ShapeError
from ..graph.core import block, make_node, param
from ..graph.node import Node, constructor
from .. import layers as _layers
from ..initializers import Initializer
from ..layers import attention as _attention
from ..layers.dropout import check_rate
from ..typing import Array
from ._common import last_axis, positive_int, resolve_activation
from .combine import add
from .dropout import dropout
from .linear import dense
from .normalization import layer_norm

__all__ = [
    "multi_head_attention", "sinusoidal_position_encoding", "learned_position_embedding",
    "transformer_encoder_block", "transformer_decoder_block",
]

_MHA = "multi_head_attention"


def _check_node(layer, argument, value, optional=True):
    if (value is None and optional) or isinstance(value, Node):
        return value
    hint = (" (a boolean mask input: axon_fn.input('mask', shape=(None, L), dtype='bool'))"
            if "mask" in argument else "")
    raise AxonTypeError(f"{layer}: `{argument}` must be a model node{hint}, got "
                        f"{type(value).__name__}")


def _sequence(layer, argument, shape):
    if len(shape) != 3:
        raise ShapeError(f"{layer}: `{argument}` expected shape (batch, length, features), got "
                         f"shape {shape}")
    return shape


def _mha_forward(query, key, value, *rest, num_heads, causal, masked, names):
    mask = rest[0] if masked else None
    params = dict(zip(names, rest[int(masked):]))
    return _attention.multi_head_attention(query, key, value, params, num_heads=num_heads,
                                           key_mask=mask, causal=causal)


@constructor(_MHA)
def multi_head_attention(query: Node, key: Node | None = None, value: Node | None = None, *,
                         num_heads: int, head_dim: int | None = None,
                         output_size: int | Sequence[int] | None = None,
                         key_mask: Node | None = None, causal: bool = False, use_bias: bool = True,
                         kernel_initializer: Initializer | None = None,
                         name: str | None = None) -> Node:
    """Multi-head attention over ``(batch, length, features)`` nodes, as PyTorch's
    ``nn.MultiheadAttention`` (see :func:`axon_fn.layers.multi_head_attention`).

    ``x >> multi_head_attention(num_heads=h)`` is self-attention; pass ``key`` (and ``value``,
    which defaults to ``key``) for cross-attention. ``key_mask`` is a boolean node
    ``(batch, Lk)``, True for real tokens; ``causal=True`` lets query ``i`` see keys ``<= i``.
    With ``W = num_heads * head_dim`` (``head_dim`` defaults to ``d_query // num_heads``) the
    parameters are ``query_kernel (dq, W)``, ``key_kernel (dk, W)``, ``value_kernel (dv, W)``,
    ``output_kernel (W, d_out)`` and, with ``use_bias``, ``query_bias``, ``key_bias``,
    ``value_bias (W,)`` and ``output_bias (d_out,)``; ``d_out`` (``output_size``) defaults to dq.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3, 4))
    >>> state = axon_fn.init(x >> multi_head_attention(num_heads=2), key=0)
    >>> {k: v.shape for k, v in state["multi_head_attention_0"].items() if "kernel" in k}
    {'query_kernel': (4, 4), 'key_kernel': (4, 4), 'value_kernel': (4, 4), 'output_kernel': (4, 4)}
    """
    heads = positive_int(num_heads, _MHA, "num_heads")
    head_dim = None if head_dim is None else positive_int(head_dim, _MHA, "head_dim")
    output_size = None if output_size is None else positive_int(output_size, _MHA,
                                                                "output_size")
    _check_node(_MHA, "query", query, optional=False)
    key = _check_node(_MHA, "key", key) or query
    value = _check_node(_MHA, "value", value) or key
    mask = _check_node(_MHA, "key_mask", key_mask)

    def width(qs, *_):
        d = _sequence(_MHA, "query", qs)[-1]
        if head_dim is not None:
            return heads * head_dim
        if d % heads:
            raise ShapeError(f"{_MHA}: `num_heads` {heads} must divide the query feature size "
                             f"{d} (query shape {qs}); pass head_dim= to choose the head size")
        return d

    def out(qs, *_):
        return output_size or qs[-1]

    kernel = kernel_initializer or init.glorot_uniform()
    specs = [("query_kernel", lambda *s: (s[0][-1], width(*s)), kernel),
             ("key_kernel", lambda *s: (_sequence(_MHA, "key", s[1])[-1], width(*s)), kernel),
             ("value_kernel", lambda *s: (_sequence(_MHA, "value", s[2])[-1], width(*s)),
              kernel),
             ("output_kernel", lambda *s: (width(*s), out(*s)), kernel)]
    if use_bias:
        specs += [(f"{p}_bias", lambda *s: (width(*s),), init.zeros())
                  for p in ("query", "key", "value")]
        specs.append(("output_bias", lambda *s: (out(*s),), init.zeros()))
    params = [param(n, shape, initializer) for n, shape, initializer in specs]
    args = [query, key, value, *([mask] if mask is not None else []), *params]
    return make_node(_MHA, args, _mha_forward, name=name,
                     opts={"num_heads": heads, "causal": bool(causal),
                           "masked": mask is not None, "names": tuple(n for n, *_ in specs)})


def _sinusoidal(x, *, max_timescale):
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ShapeError(f"sinusoidal_position_encoding: `x` expected shape (..., length, "
                         f"features), got shape {shape}")
    dtype = np.dtype(getattr(x, "dtype", np.float64))
    dtype = dtype if is_real_floating(dtype) else np.dtype(np.float32)
    table = _attention.sinusoidal_position_encoding(shape[-2], shape[-1], dtype=dtype,
                                                    max_timescale=max_timescale)
    return _attention.position_embedding(x, table)


@constructor("sinusoidal_position_encoding")
def sinusoidal_position_encoding(x: Node, *, max_timescale: float = 10000.0,
                                 name: str | None = None) -> Node:
    """Add the fixed sine / cosine position table of "Attention is all you need" to
    ``x (batch, length, features)`` (no parameters; see
    :func:`axon_fn.layers.sinusoidal_position_encoding`).

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2, 2)) >> sinusoidal_position_encoding()
    >>> axon_fn.predict(model, {}, np.zeros((1, 2, 2))).round(4)
    array([[[0.    , 1.    ],
            [0.8415, 0.5403]]])
    """
    _attention.sinusoidal_position_encoding(1, 1, max_timescale=max_timescale)  # check it now
    return make_node("sinusoidal_position_encoding", [x], _sinusoidal, name=name,
                     opts={"max_timescale": float(max_timescale)})


@constructor("learned_position_embedding")
def learned_position_embedding(x: Node, max_length: int, *, initializer: Initializer | None = None,
                               name: str | None = None) -> Node:
    """Add a trainable position table ``table (max_length, features)`` (its first ``length``
    rows) to ``x (batch, length, features)``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3, 4))
    >>> state = axon_fn.init(x >> learned_position_embedding(10), key=0)
    >>> state["learned_position_embedding_0"]["table"].shape
    (10, 4)
    """
    layer = "learned_position_embedding"
    max_length = positive_int(max_length, layer, "max_length")

    def shape(xs):
        if len(xs) < 2 or xs[-2] > max_length:
            raise ShapeError(f"{layer}: `x` expected shape (..., length <= {max_length}, "
                             f"features), got shape {xs}")
        return (max_length, xs[-1])

    table = param("table", shape, initializer or init.uniform())
    return make_node(layer, [x, table], _attention.position_embedding, name=name)


def _options(layer, num_heads, ff_size, dropout_rate, activation):
    positive_int(num_heads, layer, "num_heads")
    positive_int(ff_size, layer, "ff_size")
    resolve_activation(activation, layer)
    return check_rate(layer, dropout_rate)


def _dense_back(h, like, kernel, bias):
    return _layers.dense(h, kernel, bias)


def _dense_to(h, like):
    """A dense layer from ``h`` back to the feature size of ``like`` (read for its shape only):
    the feed-forward output, whose size is the model's, unknown when the block is written."""
    size = last_axis("transformer block feed-forward")
    return make_node("dense", [h, like, param("kernel", lambda hs, ls: (size(hs), size(ls)),
                                              init.glorot_uniform()),
                               param("bias", lambda hs, ls: (size(ls),), init.zeros())],
                     _dense_back)


class _Sublayers:
    """The pieces of a transformer block, sharing its options."""

    def __init__(self, num_heads, ff_size, rate, activation, epsilon, norm_first):
        self.heads, self.ff_size, self.rate = num_heads, ff_size, rate
        self.activation, self.epsilon, self.norm_first = activation, epsilon, norm_first

    def drop(self, h):
        return dropout(h, self.rate) if self.rate > 0 else h

    def attend(self, query, memory=None, mask=None, causal=False):
        return self.drop(multi_head_attention(query, memory, num_heads=self.heads,
                                              key_mask=mask, causal=causal))

    def feed_forward(self, h):
        hidden = self.drop(dense(h, self.ff_size, activation=self.activation))
        return self.drop(_dense_to(hidden, h))

    def residual(self, x, sublayer):
        """``x + sublayer(norm(x))`` (pre-norm) or ``norm(x + sublayer(x))`` (post-norm)."""
        if self.norm_first:
            return add(x, sublayer(layer_norm(x, epsilon=self.epsilon)))
        return layer_norm(add(x, sublayer(x)), epsilon=self.epsilon)


@constructor("transformer_encoder_block")
def transformer_encoder_block(x: Node, *, num_heads: int, ff_size: int, dropout_rate: float = 0.1,
                              activation: str | Callable[[Array], Array] | None = "relu",
                              norm_first: bool = False, key_mask: Node | None = None,
                              causal: bool = False, epsilon: float = 1e-5,
                              name: str | None = None) -> Node:
    """A transformer encoder layer with PyTorch's ``nn.TransformerEncoderLayer`` semantics:
    self-attention then feed-forward (``dense(ff_size) -> activation -> dropout ->
    dense(features)``), each with dropout, a residual connection and layer normalization
    (after the residual by default, before the sublayer with ``norm_first=True``).

    One block: its parameters (``multi_head_attention_0``, ``layer_norm_0`` / ``_1``,
    ``dense_0`` / ``_1``) are nested under its name. ``key_mask``: a boolean node
    ``(batch, length)``, True for real tokens. Dropout is active in train mode only.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 3, 4))
    >>> state = axon_fn.init(x >> transformer_encoder_block(num_heads=2, ff_size=8), key=0)
    >>> sorted(state["transformer_encoder_block_0"])
    ['dense_0', 'dense_1', 'layer_norm_0', 'layer_norm_1', 'multi_head_attention_0']
    """
    layer = "transformer_encoder_block"
    rate = _options(layer, num_heads, ff_size, dropout_rate, activation)
    mask = _check_node(layer, "key_mask", key_mask)
    parts = _Sublayers(num_heads, ff_size, rate, activation, epsilon, norm_first)

    def body(h, m=None):
        h = parts.residual(h, lambda v: parts.attend(v, mask=m, causal=causal))
        return parts.residual(h, parts.feed_forward)

    inputs = [x] if mask is None else [x, mask]
    return block(body, name=name, op_name=layer)(*inputs)


@constructor("transformer_decoder_block", n_inputs=2)
def transformer_decoder_block(x: Node, memory: Node, *, num_heads: int, ff_size: int,
                              dropout_rate: float = 0.1,
                              activation: str | Callable[[Array], Array] | None = "relu",
                              norm_first: bool = False, causal: bool = True,
                              memory_mask: Node | None = None, epsilon: float = 1e-5,
                              name: str | None = None) -> Node:
    """A transformer decoder layer with PyTorch's ``nn.TransformerDecoderLayer`` semantics:
    (causal) self-attention on ``x``, cross-attention from ``x`` to the encoder output
    ``memory``, then the feed-forward, each with dropout, a residual connection and layer
    normalization (post-norm by default, pre-norm with ``norm_first=True``).

    Parameters, nested under the block's name: ``multi_head_attention_0`` (self),
    ``multi_head_attention_1`` (cross), ``layer_norm_0`` to ``_2``, ``dense_0`` / ``_1``.
    ``memory_mask``: a boolean node ``(batch, memory length)``, True for real tokens.

    >>> import axon_fn
    >>> x, m = axon_fn.input("x", shape=(None, 3, 4)), axon_fn.input("m", shape=(None, 5, 4))
    >>> axon_fn.get_output_shape(transformer_decoder_block(x, m, num_heads=2, ff_size=8))
    (1, 3, 4)
    """
    layer = "transformer_decoder_block"
    rate = _options(layer, num_heads, ff_size, dropout_rate, activation)
    _check_node(layer, "memory", memory, optional=False)
    mask = _check_node(layer, "memory_mask", memory_mask)
    parts = _Sublayers(num_heads, ff_size, rate, activation, epsilon, norm_first)

    def body(h, mem, m=None):
        h = parts.residual(h, lambda v: parts.attend(v, causal=causal))
        h = parts.residual(h, lambda v: parts.attend(v, mem, mask=m))
        return parts.residual(h, parts.feed_forward)

    inputs = [x, memory] if mask is None else [x, memory, mask]
    return block(body, name=name, op_name=layer)(*inputs)
