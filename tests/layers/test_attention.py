import math

import numpy as np
import pytest

from axon_fn import AbstractArray, AxonTypeError, InvalidArgumentError, ShapeError, eval_shape
from axon_fn import grad, ops
from axon_fn.layers import attention
from axon_fn.testing import check_grads

rng = np.random.default_rng(0)


# Independent float64 references: explicit loops over rows and heads, and masked keys dropped
# from the softmax instead of filled with a large negative value.


def ref_row_attention(q_row, k, v, allowed, scale, bias_row=None):
    """One query row: softmax over the allowed keys only (uniform over all if none allowed)."""
    logits = np.array([q_row @ k[j] * scale for j in range(k.shape[0])])
    if bias_row is not None:
        logits = logits + bias_row
    keep = np.nonzero(allowed)[0]
    weights = np.zeros(k.shape[0])
    if keep.size == 0:
        weights[:] = 1.0 / k.shape[0]
    else:
        e = np.exp(logits[keep] - logits[keep].max())
        weights[keep] = e / e.sum()
    return weights @ v, weights


def ref_dpa(q, k, v, mask=None, bias=None, scale=None):
    """Reference for equal leading axes ``(..., L, d)``; mask / bias broadcast explicitly."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    lq, lk = q.shape[-2], k.shape[-2]
    lead = q.shape[:-2]
    mask = np.broadcast_to(np.ones((), bool) if mask is None else mask, lead + (lq, lk))
    out = np.zeros(lead + (lq, v.shape[-1]))
    for idx in np.ndindex(*lead):
        for i in range(lq):
            b = None if bias is None else np.broadcast_to(bias, lead + (lq, lk))[idx + (i,)]
            out[idx + (i,)] = ref_row_attention(q[idx + (i,)], k[idx], v[idx], mask[idx + (i,)],
                                                scale, b)[0]
    return out


def ref_mha(query, key, value, params, heads, key_mask=None, causal=False, attention_mask=None):
    batch, lq, _ = query.shape
    lk = key.shape[1]
    width = params["query_kernel"].shape[1]
    dh = width // heads

    def proj(x, name):
        y = x @ params[name + "_kernel"]
        return y + params[name + "_bias"] if name + "_bias" in params else y

    q, k, v = proj(query, "query"), proj(key, "key"), proj(value, "value")
    concat = np.zeros((batch, lq, width))
    weights = np.zeros((batch, heads, lq, lk))
    for n in range(batch):
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            for i in range(lq):
                allowed = np.ones(lk, bool)
                for j in range(lk):
                    if key_mask is not None and not key_mask[n, j]:
                        allowed[j] = False
                    if causal and j > i + (lk - lq):
                        allowed[j] = False
                    if attention_mask is not None and not np.broadcast_to(
                            attention_mask, (batch, heads, lq, lk))[n, h, i, j]:
                        allowed[j] = False
                concat[n, i, cols], weights[n, h, i] = ref_row_attention(
                    q[n, i, cols], k[n, :, cols], v[n, :, cols], allowed, 1.0 / math.sqrt(dh))
    out = concat @ params["output_kernel"]
    if "output_bias" in params:
        out = out + params["output_bias"]
    return out, weights


def make_params(dq, dk, dv, width, d_out, biases=True):
    p = {"query_kernel": rng.standard_normal((dq, width)),
         "key_kernel": rng.standard_normal((dk, width)),
         "value_kernel": rng.standard_normal((dv, width)),
         "output_kernel": rng.standard_normal((width, d_out))}
    if biases:
        p.update(query_bias=rng.standard_normal(width), key_bias=rng.standard_normal(width),
                 value_bias=rng.standard_normal(width), output_bias=rng.standard_normal(d_out))
    return p


# dot_product_attention ------------------------------------------------------------------------


def test_dot_product_attention_matches_reference():
    q, k, v = (rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)),
               rng.standard_normal((2, 3, 6, 7)))
    out = attention.dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 4, 7)
    np.testing.assert_allclose(out, ref_dpa(q, k, v), rtol=1e-10, atol=1e-12)


def test_dot_product_attention_mask_bias_scale_and_fully_masked_row():
    q, k, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3)), \
        rng.standard_normal((2, 5, 2))
    mask = rng.random((2, 4, 5)) > 0.4
    mask[0, 1] = False  # every key masked for this query row
    bias = rng.standard_normal((4, 5))
    out = attention.dot_product_attention(q, k, v, mask=mask, bias=bias, scale=0.7)
    np.testing.assert_allclose(out, ref_dpa(q, k, v, mask, bias, 0.7), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out[0, 1], v[0].mean(axis=0), rtol=1e-12)


def test_dot_product_attention_broadcasts_leading_axes_and_mask():
    q = rng.standard_normal((2, 1, 3, 4))
    k, v = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 2))
    key_mask = np.array([True, True, False, True, False])  # broadcast over rows and batches
    out = attention.dot_product_attention(q, k, v, mask=key_mask)
    assert out.shape == (2, 3, 3, 2)
    qb = np.broadcast_to(q, (2, 3, 3, 4))
    kb, vb = np.broadcast_to(k, (2, 3, 5, 4)), np.broadcast_to(v, (2, 3, 5, 2))
    np.testing.assert_allclose(out, ref_dpa(qb, kb, vb, key_mask), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_dot_product_attention_low_precision_no_nan(dtype):
    q = (rng.standard_normal((1, 3, 4)) * 30).astype(dtype)  # large logits
    v = rng.standard_normal((1, 3, 2)).astype(dtype)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    out = attention.dot_product_attention(q, q, v, mask=mask)
    assert out.dtype == np.dtype(dtype) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0, 0], v[0, 0], rtol=1e-3)
    np.testing.assert_allclose(out[0, 1], v[0].astype(np.float64).mean(0), rtol=1e-2, atol=1e-3)
    g = grad(lambda q: ops.sum(attention.dot_product_attention(q, q, v, mask=mask)))(q)
    assert np.all(np.isfinite(g))


def test_dot_product_attention_grads_with_mask():
    mask = np.array([[True, False, True], [True, True, True], [False, False, False]])
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4)), \
        rng.standard_normal((2, 3, 4))
    bias = rng.standard_normal((3, 3))
    check_grads(lambda q, k, v, b: attention.dot_product_attention(q, k, v, mask=mask, bias=b),
                q, k, v, bias, jacobian_limit=128)


def test_dot_product_attention_eval_shape():
    out = eval_shape(lambda q, k, v, m: attention.dot_product_attention(q, k, v, mask=m),
                     AbstractArray((2, 4, 8)), AbstractArray((2, 6, 8)),
                     AbstractArray((2, 6, 3)), AbstractArray((4, 6), "bool"))
    assert out.shape == (2, 4, 3) and out.dtype == np.float32


def test_dot_product_attention_errors():
    q, k, v = np.ones((2, 3, 4)), np.ones((2, 5, 4)), np.ones((2, 5, 6))
    dpa = attention.dot_product_attention
    with pytest.raises(ShapeError, match=r"dot_product_attention: `key` expected last axis of "
                       r"size 4 \(query shape \(2, 3, 4\)\), got shape \(2, 5, 3\)"):
        dpa(q, np.ones((2, 5, 3)), v)
    with pytest.raises(ShapeError, match=r"`value` expected 5 rows.*got shape \(2, 4, 6\)"):
        dpa(q, k, np.ones((2, 4, 6)))
    with pytest.raises(ShapeError, match=r"`query` expected .*at least 2-D.*got shape \(4,\)"):
        dpa(np.ones(4), k, v)
    with pytest.raises(ShapeError, match=r"`key` expected leading axes"):
        dpa(q, np.ones((3, 5, 4)), np.ones((3, 5, 6)))
    with pytest.raises(ShapeError, match=r"`mask` expected a shape broadcastable to .* = "
                       r"\(2, 3, 5\), got shape \(3, 4\)"):
        dpa(q, k, v, mask=np.ones((3, 4), bool))
    with pytest.raises(ShapeError, match=r"`mask`.*got shape \(7, 2, 3, 5\)"):
        dpa(q, k, v, mask=np.ones((7, 2, 3, 5), bool))  # would grow the result
    with pytest.raises(AxonTypeError, match=r"`mask` must be a boolean array.*float64"):
        dpa(q, k, v, mask=np.zeros((3, 5)))
    with pytest.raises(ShapeError, match=r"`bias` expected .*got shape \(3, 4\)"):
        dpa(q, k, v, bias=np.zeros((3, 4)))
    with pytest.raises(InvalidArgumentError, match=r"`scale` must be a finite real"):
        dpa(q, k, v, scale=float("nan"))


# causal_mask ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lq, lk", [(4, None), (2, 5), (5, 2), (1, 1), (0, 3)])
def test_causal_mask(lq, lk):
    m = attention.causal_mask(lq, lk)
    lk_ = lq if lk is None else lk
    expected = np.array([[j <= i + lk_ - lq for j in range(lk_)] for i in range(lq)],
                        bool).reshape(lq, lk_)
    assert m.dtype == np.bool_
    np.testing.assert_array_equal(m, expected)


def test_causal_mask_errors():
    with pytest.raises(InvalidArgumentError, match=r"causal_mask: `length_q`.*-1"):
        attention.causal_mask(-1)
    with pytest.raises(InvalidArgumentError, match=r"`length_k`.*2.5"):
        attention.causal_mask(2, 2.5)


# multi_head_attention -------------------------------------------------------------------------


def test_mha_self_attention_matches_per_head_reference():
    x = rng.standard_normal((3, 5, 6))
    params = make_params(6, 6, 6, 8, 7)
    out, w = attention.multi_head_attention(x, x, x, params, num_heads=4, return_weights=True)
    ref_out, ref_w = ref_mha(x, x, x, params, 4)
    assert out.shape == (3, 5, 7) and w.shape == (3, 4, 5, 5)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-14)
    no_weights = attention.multi_head_attention(x, x, x, params, num_heads=4)
    np.testing.assert_array_equal(no_weights, out)


def test_mha_causal_and_key_mask_with_fully_padded_positions():
    x = rng.standard_normal((3, 4, 6))
    params = make_params(6, 6, 6, 6, 5)
    key_mask = np.array([[True, True, True, False],     # last key is padding
                         [False, True, True, False],    # first key padded: row 0 attends none
                         [False, False, False, False]])  # everything padded: uniform weights
    out, w = attention.multi_head_attention(x, x, x, params, num_heads=3, key_mask=key_mask,
                                            causal=True, return_weights=True)
    ref_out, ref_w = ref_mha(x, x, x, params, 3, key_mask=key_mask, causal=True)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-14)
    assert np.all(w[0, :, :, 3] == 0) and np.all(np.triu(w[0, 1], 1) == 0)
    np.testing.assert_allclose(w[1, :, 0], 0.25)
    np.testing.assert_allclose(w[2], 0.25)


def test_mha_cross_attention_different_lengths_and_widths():
    query, kv_source = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 6, 4))
    value = rng.standard_normal((2, 6, 7))
    params = make_params(5, 4, 7, 4, 3, biases=False)
    params["output_bias"] = rng.standard_normal(3)  # only some biases present
    attn = rng.random((2, 1, 3, 6)) > 0.3
    key_mask = np.ones((2, 6), bool)
    key_mask[1, 4:] = False
    out, w = attention.multi_head_attention(query, kv_source, value, params, num_heads=2,
                                            key_mask=key_mask, attention_mask=attn,
                                            causal=True, return_weights=True)
    ref_out, ref_w = ref_mha(query, kv_source, value, params, 2, key_mask=key_mask,
                             causal=True, attention_mask=attn)
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, rtol=1e-10, atol=1e-14)


def test_mha_grads_inputs_and_all_params_with_mask():
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    params = make_params(4, 4, 4, 4, 4)
    key_mask = np.array([[True, True, False], [True, False, False]])

    def f(q, k, v, params):
        return attention.multi_head_attention(q, k, v, params, num_heads=2, key_mask=key_mask,
                                              causal=True, return_weights=True)

    check_grads(f, q, k, v, params, jacobian_limit=200)


def test_mha_self_attention_grad_accumulates_over_shared_input():
    x = rng.standard_normal((2, 3, 4))
    params = make_params(4, 4, 4, 4, 2)
    check_grads(lambda x: attention.multi_head_attention(x, x, x, params, num_heads=2), x)


def test_mha_eval_shape():
    p = {name: AbstractArray(s) for name, s in [
        ("query_kernel", (16, 32)), ("key_kernel", (8, 32)), ("value_kernel", (8, 32)),
        ("output_kernel", (32, 16)), ("query_bias", (32,)), ("output_bias", (16,))]}
    out, w = eval_shape(
        lambda q, kv, p, m: attention.multi_head_attention(
            q, kv, kv, p, num_heads=4, key_mask=m, causal=True, return_weights=True),
        AbstractArray((2, 5, 16)), AbstractArray((2, 7, 8)), p, AbstractArray((2, 7), "bool"))
    assert out.shape == (2, 5, 16) and w.shape == (2, 4, 5, 7)


def test_mha_matches_torch():
    torch = pytest.importorskip("torch")
    batch, lq, lk, e, heads = 2, 4, 5, 8, 2
    mod = torch.nn.MultiheadAttention(e, heads, batch_first=True, dtype=torch.float64)
    wq, wk, wv = mod.in_proj_weight.detach().numpy().reshape(3, e, e)
    bq, bk, bv = mod.in_proj_bias.detach().numpy().reshape(3, e)
    params = {"query_kernel": wq.T, "key_kernel": wk.T, "value_kernel": wv.T,
              "output_kernel": mod.out_proj.weight.detach().numpy().T,
              "query_bias": bq, "key_bias": bk, "value_bias": bv,
              "output_bias": mod.out_proj.bias.detach().numpy()}
    q, kv = rng.standard_normal((batch, lq, e)), rng.standard_normal((batch, lk, e))
    key_mask = np.array([[True] * lk, [True, True, True, False, False]])
    out, w = attention.multi_head_attention(q, kv, kv, params, num_heads=heads,
                                            key_mask=key_mask, return_weights=True)
    t_out, t_w = mod(torch.from_numpy(q), torch.from_numpy(kv), torch.from_numpy(kv),
                     key_padding_mask=torch.from_numpy(~key_mask), need_weights=True,
                     average_attn_weights=False)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w, t_w.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_mha_errors():
    x, y = np.ones((2, 3, 4)), np.ones((2, 5, 6))
    p = make_params(4, 4, 4, 8, 4)
    mha = attention.multi_head_attention
    with pytest.raises(InvalidArgumentError, match=r"`num_heads` 3 must divide the projection "
                       r"width 8"):
        mha(x, x, x, p, num_heads=3)
    with pytest.raises(InvalidArgumentError, match=r"`num_heads` must be an integer >= 1"):
        mha(x, x, x, p, num_heads=0)
    with pytest.raises(ShapeError, match=r"`params\['key_kernel'\]` expected shape \(6, 8\), "
                       r"got shape \(4, 8\)"):
        mha(x, y, y, p, num_heads=2)
    with pytest.raises(ShapeError, match=r"`params\['query_kernel'\]` expected shape \(6, "
                       r"num_heads \* head_dim\).*got shape \(4, 8\)"):
        mha(y, x, x, p, num_heads=2)
    with pytest.raises(ShapeError, match=r"`params\['output_kernel'\]` expected shape "
                       r"\(8, d_out\), got shape \(6, 4\)"):
        mha(x, x, x, {**p, "output_kernel": np.ones((6, 4))}, num_heads=2)
    with pytest.raises(ShapeError, match=r"`params\['value_bias'\]` expected shape \(8,\), "
                       r"got shape \(4,\)"):
        mha(x, x, x, {**p, "value_bias": np.ones(4)}, num_heads=2)
    with pytest.raises(InvalidArgumentError, match=r"unknown `params` entries \['query_bais'\]"):
        mha(x, x, x, {**p, "query_bais": np.ones(8)}, num_heads=2)
    with pytest.raises(InvalidArgumentError, match=r"missing 'value_kernel'"):
        mha(x, x, x, {k: a for k, a in p.items() if k != "value_kernel"}, num_heads=2)
    with pytest.raises(ShapeError, match=r"`query` expected a 3-D array.*got shape \(3, 4\)"):
        mha(np.ones((3, 4)), x, x, p, num_heads=2)
    with pytest.raises(ShapeError, match=r"`key` expected batch size 2.*got shape \(1, 3, 4\)"):
        mha(x, np.ones((1, 3, 4)), np.ones((1, 3, 4)), p, num_heads=2)
    with pytest.raises(ShapeError, match=r"`value` expected shape \(2, 3\).*got shape "
                       r"\(2, 4, 4\)"):
        mha(x, x, np.ones((2, 4, 4)), p, num_heads=2)
    with pytest.raises(ShapeError, match=r"`key_mask` expected .*\(2, 3\), got shape \(2, 4\)"):
        mha(x, x, x, p, num_heads=2, key_mask=np.ones((2, 4), bool))
    with pytest.raises(ShapeError, match=r"`key_mask` expected a 2-D mask.*got shape \(3,\)"):
        mha(x, x, x, p, num_heads=2, key_mask=np.ones(3, bool))
    with pytest.raises(AxonTypeError, match=r"`key_mask` must be a boolean"):
        mha(x, x, x, p, num_heads=2, key_mask=np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"`attention_mask` expected .*\(2, 2, 3, 3\), got "
                       r"shape \(3, 2\)"):
        mha(x, x, x, p, num_heads=2, attention_mask=np.ones((3, 2), bool))


# Position encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("length, dim", [(6, 8), (5, 7), (3, 1)])
def test_sinusoidal_position_encoding(length, dim):
    table = attention.sinusoidal_position_encoding(length, dim, dtype="float64")
    expected = np.zeros((length, dim))
    for pos in range(length):
        for i in range(dim):
            angle = pos / 10000.0 ** ((i - i % 2) / dim)
            expected[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(table, expected, rtol=1e-12, atol=1e-15)
    default = attention.sinusoidal_position_encoding(length, dim, max_timescale=100.0)
    assert default.dtype == np.float32 and default.shape == (length, dim)


def test_sinusoidal_position_encoding_errors():
    enc = attention.sinusoidal_position_encoding
    with pytest.raises(InvalidArgumentError, match=r"`dim` must be an integer >= 1, got 0"):
        enc(4, 0)
    with pytest.raises(InvalidArgumentError, match=r"`length`.*-2"):
        enc(-2, 4)
    with pytest.raises(InvalidArgumentError, match=r"`max_timescale`.*-1"):
        enc(4, 4, max_timescale=-1.0)


def test_position_embedding_values_and_grads():
    x, table = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4))
    np.testing.assert_allclose(attention.position_embedding(x, table), x + table[None, :3])
    enc = attention.sinusoidal_position_encoding(5, 4)
    np.testing.assert_allclose(attention.position_embedding(x[0], enc), x[0] + enc[:3])
    check_grads(attention.position_embedding, x, table)
    g = grad(lambda t: ops.sum(attention.position_embedding(x, t)))(table)
    np.testing.assert_array_equal(g, np.array([[2.0] * 4] * 3 + [[0.0] * 4] * 2))


def test_position_embedding_eval_shape_and_errors():
    out = eval_shape(attention.position_embedding, AbstractArray((2, 7, 16)),
                     AbstractArray((128, 16)))
    assert out.shape == (2, 7, 16)
    with pytest.raises(ShapeError, match=r"position_embedding: `table` expected shape "
                       r"\(max_len >= 7, 16\).*got shape \(5, 16\)"):
        attention.position_embedding(np.ones((2, 7, 16)), np.ones((5, 16)))
    with pytest.raises(ShapeError, match=r"`table`.*got shape \(128, 8\)"):
        attention.position_embedding(np.ones((2, 7, 16)), np.ones((128, 8)))
    with pytest.raises(ShapeError, match=r"`x` expected.*got shape \(16,\)"):
        attention.position_embedding(np.ones(16), np.ones((128, 16)))
