"""Graph constructors of the attention layers: multi-head attention, position encodings and the
transformer blocks, against the functional layers and hand-written numpy references, with
gradients through small models."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn.layers import attention as F
from axon_fn.nn import attention as attn
from tests.nn.harness import check_model_grads, one_layer, run

rng = np.random.default_rng(11)
B, L, D, H, FF = 2, 3, 4, 2, 6
X = rng.standard_normal((B, L, D))
MEM = rng.standard_normal((B, 5, D))
KEY_MASK = np.array([[True, True, False, True, False], [True, False, False, False, False]])


def _perturbed(model, inputs):
    """A float64 state whose every trainable value is moved off its initial value (so zero
    biases and unit gammas are tested too)."""
    state = ax.init(model, inputs, key=0).astype(np.float64)
    noise = np.random.default_rng(5)
    return state.replace(trainable=ax.tree.tree_map(
        lambda a: a + 0.3 * noise.standard_normal(a.shape), state.trainable))


# numpy references --------------------------------------------------------------------------


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mha(q, kv, p, heads, mask=None):
    """Attention head by head; ``mask (batch, Lq, Lk)`` True = attend."""
    width = p["query_kernel"].shape[1]
    dh = width // heads
    Q = q @ p["query_kernel"] + p.get("query_bias", 0)
    K = kv @ p["key_kernel"] + p.get("key_bias", 0)
    V = kv @ p["value_kernel"] + p.get("value_bias", 0)
    outs = []
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        logits = np.einsum("bqd,bkd->bqk", Q[..., cols], K[..., cols]) / np.sqrt(dh)
        if mask is not None:
            logits = np.where(mask, logits, -1e300)
        outs.append(np_softmax(logits) @ V[..., cols])
    return np.concatenate(outs, -1) @ p["output_kernel"] + p.get("output_bias", 0)


def np_layer_norm(x, p, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * p["gamma"] \
        + p["beta"]


def np_ff(x, p0, p1):
    return np.maximum(x @ p0["kernel"] + p0["bias"], 0) @ p1["kernel"] + p1["bias"]


def np_causal(lq, lk):
    return np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)


def np_encoder(x, p, heads, norm_first, mask=None):
    sa = lambda v: np_mha(v, v, p["multi_head_attention_0"], heads, mask)  # noqa: E731
    ff = lambda v: np_ff(v, p["dense_0"], p["dense_1"])  # noqa: E731
    n1 = lambda v: np_layer_norm(v, p["layer_norm_0"])  # noqa: E731
    n2 = lambda v: np_layer_norm(v, p["layer_norm_1"])  # noqa: E731
    if norm_first:
        x = x + sa(n1(x))
        return x + ff(n2(x))
    x = n1(x + sa(x))
    return n2(x + ff(x))


def np_decoder(x, mem, p, heads, norm_first, mem_mask=None):
    self_mask = np_causal(x.shape[1], x.shape[1])[None]
    cross_mask = None if mem_mask is None else mem_mask[:, None, :]
    sa = lambda v: np_mha(v, v, p["multi_head_attention_0"], heads, self_mask)  # noqa: E731
    ca = lambda v: np_mha(v, mem, p["multi_head_attention_1"], heads, cross_mask)  # noqa: E731
    ff = lambda v: np_ff(v, p["dense_0"], p["dense_1"])  # noqa: E731
    norms = [lambda v, i=i: np_layer_norm(v, p[f"layer_norm_{i}"]) for i in range(3)]
    for sub, norm in zip((sa, ca, ff), norms):
        x = x + sub(norm(x)) if norm_first else norm(x + sub(x))
    return x


# multi-head attention ----------------------------------------------------------------------


def test_self_attention_layer_matches_functional_and_numpy():
    model = one_layer(attn.multi_head_attention(num_heads=H), X.shape)
    state = _perturbed(model, X)
    p = state["multi_head_attention_0"]
    assert {k: v.shape for k, v in p.items()} == {
        "query_kernel": (4, 4), "key_kernel": (4, 4), "value_kernel": (4, 4),
        "output_kernel": (4, 4), "query_bias": (4,), "key_bias": (4,), "value_bias": (4,),
        "output_bias": (4,)}
    y = ax.predict(model, state, X)
    np.testing.assert_allclose(y, F.multi_head_attention(X, X, X, p, num_heads=H), rtol=1e-12)
    np.testing.assert_allclose(y, np_mha(X, X, p, H), rtol=1e-10)


def test_cross_attention_with_key_mask_and_causal_matches_functional_and_numpy():
    q = ax.input("q", shape=(None, L, D))
    kv = ax.input("kv", shape=(None, 5, 6))
    km = ax.input("km", shape=(None, 5), dtype="bool")
    model = attn.multi_head_attention(q, kv, num_heads=H, head_dim=3, output_size=5,
                                      key_mask=km, causal=True)
    feed = {"q": X, "kv": rng.standard_normal((B, 5, 6)), "km": KEY_MASK}
    state = _perturbed(model, feed)
    p = state["multi_head_attention_0"]
    assert p["key_kernel"].shape == (6, 6) and p["output_kernel"].shape == (6, 5)
    y = ax.predict(model, state, feed)
    assert y.shape == (B, L, 5)
    expected = F.multi_head_attention(X, feed["kv"], feed["kv"], p, num_heads=H,
                                      key_mask=KEY_MASK, causal=True)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    mask = KEY_MASK[:, None, :] & np_causal(L, 5)[None]
    np.testing.assert_allclose(y, np_mha(X, feed["kv"], p, H, mask), rtol=1e-10)
    check_model_grads(model, feed)


def test_separate_value_node_and_no_bias():
    q, k, v = (ax.input(n, shape=(None, None, D)) for n in "qkv")
    model = attn.multi_head_attention(q, k, v, num_heads=1, use_bias=False)
    feed = {"q": X, "k": MEM, "v": rng.standard_normal(MEM.shape)}
    state = ax.init(model, feed).astype(np.float64)
    p = state["multi_head_attention_0"]
    assert list(p) == ["query_kernel", "key_kernel", "value_kernel", "output_kernel"]
    np.testing.assert_allclose(ax.predict(model, state, feed),
                               F.multi_head_attention(X, MEM, feed["v"], p, num_heads=1),
                               rtol=1e-12)


def test_self_attention_grads_and_layer_form():
    layer = attn.multi_head_attention(num_heads=H, causal=True)
    assert repr(layer) == "multi_head_attention(num_heads=2, causal=True)"
    check_model_grads(one_layer(layer, X.shape), X)


# position encodings ------------------------------------------------------------------------


def test_sinusoidal_position_encoding_matches_formula():
    x = rng.standard_normal((2, 4, 5))
    y, state = run(one_layer(attn.sinusoidal_position_encoding(max_timescale=100.0), x.shape), x)
    assert not state.trainable
    table = np.zeros((4, 5))
    for pos in range(4):
        for i in range(5):
            angle = pos / 100.0 ** (2 * (i // 2) / 5)
            table[pos, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
    np.testing.assert_allclose(y, x + table, rtol=1e-12, atol=1e-15)
    y32, _ = run(one_layer(attn.sinusoidal_position_encoding(), x.shape), x.astype(np.float32))
    assert y32.dtype == np.float32
    check_model_grads(one_layer(attn.sinusoidal_position_encoding(), X.shape), X)


def test_learned_position_embedding_values_and_gradient_to_the_table():
    model = one_layer(attn.learned_position_embedding(6), X.shape)
    state = ax.init(model, X).astype(np.float64)
    table = state["learned_position_embedding_0"]["table"]
    assert table.shape == (6, D) and np.abs(table).max() > 0
    np.testing.assert_allclose(ax.predict(model, state, X), X + table[:L], rtol=1e-12)
    cot = rng.standard_normal(X.shape)
    grads = ax.grad(lambda t: ax.ops.sum(
        ax.predict(model, state.replace(trainable=t), X) * cot))(state.trainable)
    g = grads["learned_position_embedding_0"]["table"]
    np.testing.assert_allclose(g[:L], cot.sum(0), rtol=1e-12)
    np.testing.assert_array_equal(g[L:], 0)
    check_model_grads(model, X)


# transformer blocks ------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_numpy(norm_first):
    x = ax.input("x", shape=(None, L, D))
    km = ax.input("km", shape=(None, L), dtype="bool")
    model = attn.transformer_encoder_block(x, num_heads=H, ff_size=FF, norm_first=norm_first,
                                           key_mask=km)
    mask = np.array([[True, True, False], [True, True, True]])
    feed = {"x": X, "km": mask}
    state = _perturbed(model, feed)
    p = state["transformer_encoder_block_0"]
    assert {k: sorted(v) for k, v in p.items()} == {
        "multi_head_attention_0": sorted(["query_kernel", "key_kernel", "value_kernel",
                                          "output_kernel", "query_bias", "key_bias",
                                          "value_bias", "output_bias"]),
        "layer_norm_0": ["beta", "gamma"], "layer_norm_1": ["beta", "gamma"],
        "dense_0": ["bias", "kernel"], "dense_1": ["bias", "kernel"]}
    assert p["dense_0"]["kernel"].shape == (D, FF) and p["dense_1"]["kernel"].shape == (FF, D)
    np.testing.assert_allclose(ax.predict(model, state, feed),
                               np_encoder(X, p, H, norm_first, mask[:, None, :]), rtol=1e-10)
    check_model_grads(model, feed)


def test_encoder_block_layer_form_and_train_mode_dropout():
    model = one_layer(attn.transformer_encoder_block(num_heads=H, ff_size=FF, dropout_rate=0.5),
                      X.shape)
    state = ax.init(model, X).astype(np.float64)
    inference = ax.predict(model, state, X)
    np.testing.assert_allclose(inference, np_encoder(X, state["transformer_encoder_block_0"], H,
                                                     False), rtol=1e-10)
    with pytest.raises(ax.InvalidArgumentError, match="transformer_encoder_block_0"):
        ax.predict(model, state, X, mode="train")
    key = ax.random.key(3)
    a, _ = ax.predict(model, state, X, mode="train", key=key)
    b, _ = ax.predict(model, state, X, mode="train", key=key)
    c, _ = ax.predict(model, state, X, mode="train", key=ax.random.key(4))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - inference).max() > 1e-3 and np.abs(a - c).max() > 1e-3
    check_model_grads(model, X, mode="train", key=key)
    no_dropout = one_layer(attn.transformer_encoder_block(num_heads=H, ff_size=FF,
                                                          dropout_rate=0.0), X.shape)
    y, _ = ax.predict(no_dropout, state, X, mode="train")  # no random layer: no key needed
    np.testing.assert_allclose(y, inference, rtol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_numpy(norm_first):
    x, mem = ax.input("x", shape=(None, L, D)), ax.input("mem", shape=(None, 5, D))
    mm = ax.input("mm", shape=(None, 5), dtype="bool")
    model = attn.transformer_decoder_block(x, mem, num_heads=H, ff_size=FF,
                                           norm_first=norm_first, memory_mask=mm)
    feed = {"x": X, "mem": MEM, "mm": KEY_MASK}
    state = _perturbed(model, feed)
    p = state["transformer_decoder_block_0"]
    assert sorted(p) == ["dense_0", "dense_1", "layer_norm_0", "layer_norm_1", "layer_norm_2",
                         "multi_head_attention_0", "multi_head_attention_1"]
    np.testing.assert_allclose(ax.predict(model, state, feed),
                               np_decoder(X, MEM, p, H, norm_first, KEY_MASK), rtol=1e-10)
    check_model_grads(model, feed)


def test_decoder_block_layer_form_named_and_train_mode():
    x, mem = ax.input("x", shape=(None, L, D)), ax.input("mem", shape=(None, 5, D))
    layer = attn.transformer_decoder_block(num_heads=H, ff_size=FF, dropout_rate=0.3,
                                           name="dec")
    model = layer(x, mem)
    feed = {"x": X, "mem": MEM}
    state = ax.init(model, feed).astype(np.float64)
    assert list(state.trainable) == ["dec"]
    inference = ax.predict(model, state, feed)
    np.testing.assert_allclose(inference, np_decoder(X, MEM, state["dec"], H, False),
                               rtol=1e-10)
    y, _ = ax.predict(model, state, feed, mode="train", key=ax.random.key(0))
    assert np.abs(y - inference).max() > 1e-3
    check_model_grads(model, feed, mode="train", key=ax.random.key(0))


# errors ------------------------------------------------------------------------------------


def test_errors_name_the_layer_argument_and_shapes():
    with pytest.raises(ax.ShapeError, match=r"`num_heads` 3 must divide the query feature "
                                            r"size 4 \(query shape \(2, 3, 4\)\)"):
        ax.init(one_layer(attn.multi_head_attention(num_heads=3), X.shape), X)
    x = ax.input("x", shape=(None, L, D))
    km = ax.input("km", shape=(None, None), dtype="bool")
    model = attn.multi_head_attention(x, num_heads=H, key_mask=km)
    with pytest.raises(ax.ShapeError, match=r"multi_head_attention_0.*`key_mask` expected .*"
                                            r"\(2, 3\), got shape \(2, 4\)"):
        ax.init(model, {"x": X, "km": np.ones((B, 4), bool)})
    untyped = attn.multi_head_attention(x, num_heads=H, key_mask=ax.input("m", shape=(None, L)))
    with pytest.raises(ax.AxonTypeError, match="`key_mask` must be a boolean array"):
        ax.init(untyped, {"x": X, "m": np.ones((B, L))})
    with pytest.raises(ax.AxonTypeError, match="multi_head_attention: `key_mask` must be a "
                                               "model node"):
        attn.multi_head_attention(num_heads=2, key_mask=np.ones((B, L), bool))
    with pytest.raises(ax.InvalidArgumentError, match="`num_heads` must be a positive int"):
        attn.multi_head_attention(num_heads=0)
    with pytest.raises(ax.ShapeError, match=r"`query` expected shape \(batch, length, "
                                            r"features\), got shape \(2, 4\)"):
        ax.init(one_layer(attn.multi_head_attention(num_heads=2), (2, 4)), np.ones((2, 4)))
    with pytest.raises(ax.ShapeError, match=r"learned_position_embedding: `x` expected shape "
                                            r"\(\.\.\., length <= 2, features\)"):
        ax.init(one_layer(attn.learned_position_embedding(2), X.shape), X)
    with pytest.raises(ax.InvalidArgumentError, match="`max_timescale`"):
        attn.sinusoidal_position_encoding(max_timescale=0)
    with pytest.raises(ax.InvalidArgumentError, match=r"transformer_encoder_block: `rate` "):
        attn.transformer_encoder_block(num_heads=2, ff_size=4, dropout_rate=1.0)
    with pytest.raises(ax.InvalidArgumentError, match="transformer_decoder_block: unknown "
                                                      "activation 'nope'"):
        attn.transformer_decoder_block(num_heads=2, ff_size=4, activation="nope")
    with pytest.raises(ax.ShapeError, match="num_heads"):
        ax.init(one_layer(attn.transformer_encoder_block(num_heads=3, ff_size=4), X.shape), X)
