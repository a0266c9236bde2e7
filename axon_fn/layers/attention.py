"""Functional attention layers: scaled dot-product attention, multi-head attention, causal
masks and position encodings.

Masks are boolean with **True = may attend** (the Flax / JAX convention). This is the opposite
of PyTorch's ``key_padding_mask`` and boolean ``attn_mask``, where True means *ignore*; convert
a PyTorch mask with ``~mask``. Masked logits are replaced by half the most negative finite value
of their dtype rather than ``-inf``, so a row with every key masked gets uniform weights instead
of NaN (and NaN-free gradients).

>>> import numpy as np
>>> x = np.ones((1, 3, 4))
>>> dot_product_attention(x, x, x, mask=causal_mask(3)).shape
(1, 3, 4)
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .._dtypes import is_floating
from .. import ops
from ..errors import AxonTypeError, InvalidArgumentError
from ..typing import Array, ArrayLike, DTypeLike, PyTree
from ._util import expect, shape_of

__all__ = [
    "causal_mask", "dot_product_attention", "multi_head_attention", "position_embedding",
    "sinusoidal_position_encoding",
]

_MHA = "multi_head_attention"
_PARAM_NAMES = ("query_kernel", "key_kernel", "value_kernel", "output_kernel",
                "query_bias", "key_bias", "value_bias", "output_bias")


# Helpers --------------------------------------------------------------------------------------


def _check_count(layer, argument, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise InvalidArgumentError(
            f"layers.{layer}: `{argument}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _broadcasts_to(shape, target):
    """True when ``shape`` broadcasts to exactly ``target`` (never growing it)."""
    if len(shape) > len(target):
        return False
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False


def _check_mask(layer, argument, mask, target, described):
    """``mask`` as a boolean array that broadcasts to ``target``; None stays None."""
    if mask is None:
        return None
    if not hasattr(mask, "shape"):
        mask = np.asarray(mask)
    # A float mask is most likely an additive (0 / -inf) PyTorch mask: reading it as a boolean
    # would silently invert it, so it is refused rather than converted.
    if np.dtype(mask.dtype) != np.bool_:
        raise AxonTypeError(
            f"layers.{layer}: `{argument}` must be a boolean array (True = attend), got dtype "
            f"{np.dtype(mask.dtype)}; pass additive float masks as `bias`")
    if not _broadcasts_to(shape_of(mask), target):
        expect(layer, argument, f"a shape broadcastable to {described} = {tuple(target)}",
               f"shape {shape_of(mask)}")
    return mask


def _masked_fill_value(logits):
    # Half the most negative finite value of the logits' dtype: -inf would turn a fully masked
    # row into 0/0 = NaN, a fixed constant such as -1e9 overflows float16, and the full minimum
    # overflows (with a RuntimeWarning) when softmax subtracts a positive row maximum.
    dtype = np.dtype(getattr(logits, "dtype", np.float64))
    if not is_floating(dtype):
        dtype = np.dtype(np.float64)
    return dtype.type(np.finfo(dtype).min / 2)


def _attend(query, key, value, mask, bias, scale):
    """Unchecked core of the attention layers; returns ``(output, weights)``."""
    logits = ops.multiply(ops.matmul(query, ops.swapaxes(key, -1, -2)), scale)
    if bias is not None:
        logits = ops.add(logits, bias)
    if mask is not None:
        logits = ops.where(mask, logits, _masked_fill_value(logits))
    weights = ops.softmax(logits, axis=-1)
    return ops.matmul(weights, value), weights


# Scaled dot-product attention -----------------------------------------------------------------


def dot_product_attention(query: ArrayLike, key: ArrayLike, value: ArrayLike, *,
                          mask: ArrayLike | None = None, bias: ArrayLike | None = None,
                          scale: float | None = None) -> Array:
    """Scaled dot-product attention ``softmax(q k^T * scale + bias) v``.

    ``query`` has shape ``(..., Lq, d)``, ``key`` ``(..., Lk, d)`` and ``value``
    ``(..., Lk, dv)``; leading axes broadcast. The result has shape ``(..., Lq, dv)``.
    ``scale`` defaults to ``1 / sqrt(d)``. ``bias`` (added to the logits, differentiable) and
    ``mask`` (boolean, **True = attend**) broadcast to the logits' shape ``(..., Lq, Lk)``. A
    query row with every key masked attends uniformly to all keys.

    >>> import numpy as np
    >>> q, k = np.ones((1, 2, 4)), np.ones((1, 3, 4))
    >>> v = np.arange(6.0).reshape(1, 3, 2)
    >>> dot_product_attention(q, k, v)  # equal logits: the mean of the value rows
    array([[[2., 3.],
            [2., 3.]]])
    >>> dot_product_attention(q, k, v, mask=np.array([True, False, False]))
    array([[[0., 1.],
            [0., 1.]]])
    """
    layer = "dot_product_attention"
    qs, ks, vs = shape_of(query), shape_of(key), shape_of(value)
    for name, s, form in (("query", qs, "(..., Lq, d)"), ("key", ks, "(..., Lk, d)"),
                          ("value", vs, "(..., Lk, dv)")):
        if len(s) < 2:
            expect(layer, name, f"an array of shape {form} (at least 2-D)", f"shape {s}")
    if ks[-1] != qs[-1]:
        expect(layer, "key", f"last axis of size {qs[-1]} (query shape {qs})", f"shape {ks}")
    if vs[-2] != ks[-2]:
        expect(layer, "value", f"{ks[-2]} rows on axis -2 like key (key shape {ks})",
               f"shape {vs}")
    try:
        lead = tuple(np.broadcast_shapes(qs[:-2], ks[:-2], vs[:-2]))
    except ValueError:
        expect(layer, "key", f"leading axes broadcastable with query {qs} and value {vs}",
               f"shape {ks}")
    target = lead + (qs[-2], ks[-2])
    mask = _check_mask(layer, "mask", mask, target, "the logits' shape (..., Lq, Lk)")
    if bias is not None and not _broadcasts_to(shape_of(bias), target):
        expect(layer, "bias", f"a shape broadcastable to the logits' shape (..., Lq, Lk) = "
               f"{target}", f"shape {shape_of(bias)}")
    if scale is None:
        scale = 1.0 / math.sqrt(qs[-1]) if qs[-1] else 1.0
    elif isinstance(scale, bool) or not isinstance(scale, Real) or not math.isfinite(scale):
        raise InvalidArgumentError(
            f"layers.{layer}: `scale` must be a finite real number, got {scale!r}")
    return _attend(query, key, value, mask, bias, float(scale))[0]


def causal_mask(length_q: int, length_k: int | None = None) -> Array:
    """Boolean ``(length_q, length_k)`` mask where query ``i`` attends keys ``j <= i + offset``.

    ``offset = length_k - length_q`` aligns the last query with the last key, so the mask also
    fits queries that continue a longer cached key sequence. ``length_k`` defaults to
    ``length_q``. When ``length_q > length_k`` the first rows attend nothing (uniform weights).

    >>> causal_mask(3).astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    >>> causal_mask(2, 3).astype(int)
    array([[1, 1, 0],
           [1, 1, 1]])
    """
    length_q = _check_count("causal_mask", "length_q", length_q, 0)
    length_k = length_q if length_k is None else _check_count("causal_mask", "length_k",
                                                              length_k, 0)
    return np.tri(length_q, length_k, k=length_k - length_q, dtype=bool)


# Multi-head attention -------------------------------------------------------------------------


def _check_params(params):
    unknown = sorted(str(k) for k in params.keys() if k not in _PARAM_NAMES)
    if unknown:
        # A misspelled bias would otherwise be dropped without a word.
        raise InvalidArgumentError(f"layers.{_MHA}: unknown `params` entries {unknown}; the "
                                   f"accepted names are {list(_PARAM_NAMES)}")
    for name in _PARAM_NAMES[:4]:
        if name not in params:
            raise InvalidArgumentError(f"layers.{_MHA}: `params` is missing {name!r}")


def _check_param(params, name, expected):
    """The param ``name`` (None when it is an absent bias) after checking its shape."""
    p = params.get(name)
    if p is not None and shape_of(p) != expected:
        expect(_MHA, f"params[{name!r}]", f"shape {expected}", f"shape {shape_of(p)}")
    return p


def _project(x, kernel, bias, heads, head_dim):
    """``x @ kernel + bias`` split into heads: ``(batch, L, F)`` -> ``(batch, heads, L, dh)``."""
    batch, length, _ = shape_of(x)
    y = ops.matmul(x, kernel)
    if bias is not None:
        y = ops.add(y, bias)
    y = ops.reshape(y, shape=(batch, length, heads, head_dim))
    return ops.transpose(y, axes=(0, 2, 1, 3))


def multi_head_attention(query: ArrayLike, key: ArrayLike, value: ArrayLike, params: PyTree, *,
                         num_heads: int, key_mask: ArrayLike | None = None, causal: bool = False,
                         attention_mask: ArrayLike | None = None,
                         return_weights: bool = False) -> Array | tuple[Array, Array]:
    """Multi-head attention (as in "Attention is all you need" and PyTorch's
    ``nn.MultiheadAttention``) on ``(batch, length, features)`` inputs.

    For self attention pass the same array as ``query``, ``key`` and ``value``; for cross
    attention ``key`` and ``value`` come from another sequence (``Lk`` and feature sizes may
    differ from the query's). ``params`` holds, with ``W = num_heads * head_dim``:

    * ``query_kernel (dq, W)``, ``key_kernel (dk, W)``, ``value_kernel (dv, W)``,
      ``output_kernel (W, d_out)``: required;
    * ``query_bias (W,)``, ``key_bias (W,)``, ``value_bias (W,)``, ``output_bias (d_out,)``:
      optional, a missing bias means no bias.

    Head ``h`` uses columns ``h * head_dim : (h + 1) * head_dim`` of each input projection;
    logits are scaled by ``1 / sqrt(head_dim)``. The masks are boolean with **True = attend**:

    * ``key_mask (batch, Lk)``: True marks a real key token, False padding. This is the
      opposite of PyTorch's ``key_padding_mask`` (pass ``~key_padding_mask``).
    * ``causal=True``: query ``i`` attends keys ``j <= i + Lk - Lq`` (see :func:`causal_mask`).
    * ``attention_mask``: any extra mask broadcastable to ``(batch, num_heads, Lq, Lk)``.

    The masks are combined with logical AND. The result is the output ``(batch, Lq, d_out)``,
    or ``(output, weights)`` with ``weights`` of shape ``(batch, num_heads, Lq, Lk)`` when
    ``return_weights`` is true.

    >>> import numpy as np
    >>> p = {"query_kernel": np.ones((4, 8)), "key_kernel": np.ones((4, 8)),
    ...      "value_kernel": np.ones((4, 8)), "output_kernel": np.ones((8, 5))}
    >>> x = np.ones((2, 3, 4))
    >>> y, w = multi_head_attention(x, x, x, p, num_heads=2, causal=True, return_weights=True)
    >>> y.shape, w.shape
    ((2, 3, 5), (2, 2, 3, 3))
    >>> w[0, 0].round(2)
    array([[1.  , 0.  , 0.  ],
           [0.5 , 0.5 , 0.  ],
           [0.33, 0.33, 0.33]])
    """
    heads = _check_count(_MHA, "num_heads", num_heads, 1)
    qs, ks, vs = shape_of(query), shape_of(key), shape_of(value)
    for name, s, form in (("query", qs, "Lq, dq"), ("key", ks, "Lk, dk"),
                          ("value", vs, "Lk, dv")):
        if len(s) != 3:
            expect(_MHA, name, f"a 3-D array of shape (batch, {form})", f"shape {s}")
    if ks[0] != qs[0]:
        expect(_MHA, "key", f"batch size {qs[0]} like query (shape {qs})", f"shape {ks}")
    if vs[:2] != ks[:2]:
        expect(_MHA, "value", f"shape {ks[:2]} + (dv,) to match key (shape {ks})",
               f"shape {vs}")
    batch, length_q, length_k = qs[0], qs[1], ks[1]

    _check_params(params)
    qk = shape_of(params["query_kernel"])
    if len(qk) != 2 or qk[0] != qs[2]:
        expect(_MHA, "params['query_kernel']", f"shape ({qs[2]}, num_heads * head_dim) for "
               f"query features {qs[2]}", f"shape {qk}")
    width = qk[1]
    if width == 0 or width % heads:
        raise InvalidArgumentError(
            f"layers.{_MHA}: `num_heads` {heads} must divide the projection width {width} "
            f"(params['query_kernel'] shape {qk}) into heads of at least one feature")
    head_dim = width // heads
    ok = shape_of(params["output_kernel"])
    if len(ok) != 2 or ok[0] != width:
        expect(_MHA, "params['output_kernel']", f"shape ({width}, d_out)", f"shape {ok}")
    p = {name: _check_param(params, name, shape) for name, shape in (
        ("query_kernel", qk), ("key_kernel", (ks[2], width)), ("value_kernel", (vs[2], width)),
        ("output_kernel", ok), ("query_bias", (width,)), ("key_bias", (width,)),
        ("value_bias", (width,)), ("output_bias", (ok[1],)))}

    key_mask = _check_mask(_MHA, "key_mask", key_mask, (batch, length_k), "(batch, Lk)")
    if key_mask is not None and len(shape_of(key_mask)) != 2:
        expect(_MHA, "key_mask", f"a 2-D mask of shape (batch, Lk) = {(batch, length_k)}",
               f"shape {shape_of(key_mask)}")
    attention_mask = _check_mask(_MHA, "attention_mask", attention_mask,
                                 (batch, heads, length_q, length_k), "(batch, heads, Lq, Lk)")
    masks = []
    if key_mask is not None:
        km = shape_of(key_mask)
        masks.append(ops.reshape(key_mask, shape=(km[0], 1, 1, km[1])))
    if causal:
        masks.append(causal_mask(length_q, length_k))
    if attention_mask is not None:
        masks.append(attention_mask)
    mask = None
    for m in masks:
        mask = m if mask is None else ops.logical_and(mask, m)

    q = _project(query, p["query_kernel"], p["query_bias"], heads, head_dim)
    k = _project(key, p["key_kernel"], p["key_bias"], heads, head_dim)
    v = _project(value, p["value_kernel"], p["value_bias"], heads, head_dim)
    out, weights = _attend(q, k, v, mask, None, 1.0 / math.sqrt(head_dim))
    out = ops.reshape(ops.transpose(out, axes=(0, 2, 1, 3)), shape=(batch, length_q, width))
    out = ops.matmul(out, p["output_kernel"])
    if p["output_bias"] is not None:
        out = ops.add(out, p["output_bias"])
    return (out, weights) if return_weights else out


# Position encodings ---------------------------------------------------------------------------


def sinusoidal_position_encoding(length: int, dim: int, *, max_timescale: float = 10000.0,
                                 dtype: DTypeLike = "float32") -> Array:
    """The fixed ``(length, dim)`` position table of "Attention is all you need".

    ``table[pos, 2i] = sin(pos / max_timescale ** (2i / dim))`` and
    ``table[pos, 2i + 1] = cos(pos / max_timescale ** (2i / dim))``: sines on even columns,
    cosines on odd ones, as in the PyTorch tutorials. An odd ``dim`` ends with a sine column.
    Computed in float64 from the static sizes, then cast to ``dtype``; add it to embeddings
    with :func:`position_embedding`.

    >>> sinusoidal_position_encoding(3, 4, dtype="float64").round(4)
    array([[ 0.    ,  1.    ,  0.    ,  1.    ],
           [ 0.8415,  0.5403,  0.01  ,  1.    ],
           [ 0.9093, -0.4161,  0.02  ,  0.9998]])
    """
    layer = "sinusoidal_position_encoding"
    length = _check_count(layer, "length", length, 0)
    dim = _check_count(layer, "dim", dim, 1)
    if isinstance(max_timescale, bool) or not isinstance(max_timescale, Real) \
            or not 0 < max_timescale < math.inf:
        raise InvalidArgumentError(
            f"layers.{layer}: `max_timescale` must be a finite number > 0, got {max_timescale!r}")
    even = np.arange(0, dim, 2, dtype=np.float64)
    angles = np.arange(length, dtype=np.float64)[:, None] / max_timescale ** (even / dim)
    table = np.empty((length, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :dim // 2])
    return table.astype(dtype)


def position_embedding(x: ArrayLike, table: ArrayLike) -> Array:
    """Add the first ``L`` rows of a position ``table (max_len, d)`` to ``x (..., L, d)``.

    ``table`` may be a fixed encoding (:func:`sinusoidal_position_encoding`) or a learned
    parameter, which then receives gradients. It must have at least ``L`` rows.

    >>> import numpy as np
    >>> position_embedding(np.zeros((1, 2, 3)), np.arange(12.0).reshape(4, 3))
    array([[[0., 1., 2.],
            [3., 4., 5.]]])
    """
    layer = "position_embedding"
    xs, ts = shape_of(x), shape_of(table)
    if len(xs) < 2:
        expect(layer, "x", "an array of shape (..., L, d) (at least 2-D)", f"shape {xs}")
    if len(ts) != 2 or ts[1] != xs[-1] or ts[0] < xs[-2]:
        expect(layer, "table", f"shape (max_len >= {xs[-2]}, {xs[-1]}) for x of shape {xs}",
               f"shape {ts}")
    return ops.add(x, ops.getitem(table, slice(0, xs[-2])))
