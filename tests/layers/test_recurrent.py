import numpy as np
import pytest

from axon_fn import AbstractArray, InvalidArgumentError, ShapeError, eval_shape
from axon_fn.layers import recurrent
from axon_fn.testing import check_grads

rng = np.random.default_rng(7)


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _normal(*shape, scale=0.6):
    return rng.standard_normal(shape) * scale


# Parameters --------------------------------------------------------------------------------------


def _lstm_params(features, units):
    return {"input_kernel": _normal(features, 4 * units),
            "hidden_kernel": _normal(units, 4 * units), "bias": _normal(4 * units)}


def _gru_params(features, units):
    return {"input_kernel": _normal(features, 3 * units),
            "hidden_kernel": _normal(units, 3 * units),
            "input_bias": _normal(3 * units), "hidden_bias": _normal(3 * units)}


def _conv_params(kernel, channels, filters):
    return {"input_kernel": _normal(*kernel, channels, 4 * filters),
            "hidden_kernel": _normal(*kernel, filters, 4 * filters), "bias": _normal(4 * filters)}


# Independent float64 references: one gate at a time ---------------------------------------------


def _ref_lstm_cell(x, carry, p):
    c, h = carry
    u = h.shape[-1]

    def pre(k):  # PyTorch order: 0 input, 1 forget, 2 cell candidate, 3 output
        cols = slice(k * u, (k + 1) * u)
        return x @ p["input_kernel"][:, cols] + h @ p["hidden_kernel"][:, cols] + p["bias"][cols]

    i, f, g, o = _sig(pre(0)), _sig(pre(1)), np.tanh(pre(2)), _sig(pre(3))
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, (c_new, h_new)


def _ref_gru_cell(x, h, p):
    u = h.shape[-1]
    wi, wh, bi, bh = p["input_kernel"], p["hidden_kernel"], p["input_bias"], p["hidden_bias"]
    r_, z_, n_ = slice(0, u), slice(u, 2 * u), slice(2 * u, 3 * u)
    r = _sig(x @ wi[:, r_] + bi[r_] + h @ wh[:, r_] + bh[r_])
    z = _sig(x @ wi[:, z_] + bi[z_] + h @ wh[:, z_] + bh[z_])
    n = np.tanh(x @ wi[:, n_] + bi[n_] + r * (h @ wh[:, n_] + bh[n_]))
    h_new = (1 - z) * n + z * h
    return h_new, h_new


def _ref_same_conv2d(x, w):
    """Stride-1 "same" cross-correlation; an even kernel pads one more on the high side."""
    kh, kw = w.shape[:2]
    lo_h, lo_w = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (lo_h, kh - 1 - lo_h), (lo_w, kw - 1 - lo_w), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (w.shape[-1],))
    for a in range(kh):
        for b in range(kw):
            out += xp[:, a:a + height, b:b + width, :] @ w[a, b]
    return out


def _ref_conv_lstm_cell(x, carry, p):
    c, h = carry
    f_ = h.shape[-1]
    zx = _ref_same_conv2d(x, p["input_kernel"])
    zh = _ref_same_conv2d(h, p["hidden_kernel"])

    def pre(k):
        cols = slice(k * f_, (k + 1) * f_)
        return zx[..., cols] + zh[..., cols] + p["bias"][cols]

    c_new = _sig(pre(1)) * c + _sig(pre(0)) * np.tanh(pre(2))
    h_new = _sig(pre(3)) * np.tanh(c_new)
    return h_new, (c_new, h_new)


def _row(carry, b):
    return tuple(part[b:b + 1] for part in carry) if isinstance(carry, tuple) else carry[b:b + 1]


def _stack_rows(rows):
    if isinstance(rows[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*rows))
    return np.concatenate(rows)


def _ref_sequence(ref_cell, x, carry, p, mask=None, reverse=False):
    """Each row run alone over its valid steps only (in reverse if asked); the outputs of the
    skipped steps are zero. Independent of how the layer implements masking."""
    batch, steps = x.shape[:2]
    mask = np.ones((batch, steps), bool) if mask is None else np.asarray(mask).astype(bool)
    outputs, finals = None, []
    for b in range(batch):
        state = _row(carry, b)
        valid = [t for t in range(steps) if mask[b, t]]
        for t in (valid[::-1] if reverse else valid):
            out, state = ref_cell(x[b:b + 1, t], state, p)
            if outputs is None:
                outputs = np.zeros((batch, steps) + out.shape[1:])
            outputs[b, t] = out[0]
        finals.append(state)
    return outputs, _stack_rows(finals)


def _zero_carry(kind, shape):
    return np.zeros(shape) if kind == "gru" else (np.zeros(shape), np.zeros(shape))


def _random_carry(kind, shape):
    return _normal(*shape) if kind == "gru" else (_normal(*shape), _normal(*shape))


CASES = {
    # kind: (layer, cell, reference cell, params, input shape, carry shape)
    "lstm": (recurrent.lstm, recurrent.lstm_cell, _ref_lstm_cell,
             lambda: _lstm_params(3, 4), (3, 5, 3), (3, 4)),
    "gru": (recurrent.gru, recurrent.gru_cell, _ref_gru_cell,
            lambda: _gru_params(3, 4), (3, 5, 3), (3, 4)),
    "conv_lstm": (recurrent.conv_lstm, recurrent.conv_lstm_cell, _ref_conv_lstm_cell,
                  lambda: _conv_params((3, 2), 2, 3), (3, 4, 4, 5, 2), (3, 4, 5, 3)),
}


def _assert_tree_close(got, want, **tol):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, **tol)
    else:
        np.testing.assert_allclose(got, want, **tol)


# Cells -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CASES)
def test_cell_matches_reference(kind):
    _, cell, ref_cell, make_params, xshape, cshape = CASES[kind]
    p = make_params()
    x = _normal(xshape[0], *xshape[2:], scale=1.0)
    carry = _random_carry(kind, cshape)
    out, new_carry = cell(x, carry, p)
    want_out, want_carry = ref_cell(x, carry, p)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    _assert_tree_close(new_carry, want_carry, rtol=1e-12, atol=1e-12)
    if kind != "gru":
        assert new_carry[1] is out  # h_new is both the output and the carried h


def test_lstm_cell_hand_computed_gates():
    # Units 1, features 1, weights picked so every gate has a round pre-activation.
    p = {"input_kernel": np.array([[1.0, 2.0, 0.5, -1.0]]),
         "hidden_kernel": np.array([[0.0, 1.0, 0.0, 1.0]]), "bias": np.array([0.0, 0.0, 0.0, 1.0])}
    h, (c, _) = recurrent.lstm_cell(np.array([[1.0]]), (np.array([[2.0]]), np.array([[1.0]])), p)
    i, f, g, o = _sig(1.0), _sig(3.0), np.tanh(0.5), _sig(1.0)
    np.testing.assert_allclose(c, [[f * 2.0 + i * g]], rtol=1e-14)
    np.testing.assert_allclose(h, [[o * np.tanh(f * 2.0 + i * g)]], rtol=1e-14)


def test_gru_hidden_bias_sits_inside_the_reset_gate():
    # Only b_hn is non-zero and the reset gate is sigmoid(0) = 0.5, so n = tanh(0.5 * b_hn):
    # the input bias variant (tanh(b_in + r * ...)) would give tanh(b_hn) instead.
    p = {"input_kernel": np.zeros((1, 3)), "hidden_kernel": np.zeros((1, 3)),
         "input_bias": np.zeros(3), "hidden_bias": np.array([0.0, 0.0, 2.0])}
    h, _ = recurrent.gru_cell(np.ones((1, 1)), np.zeros((1, 1)), p)
    np.testing.assert_allclose(h, [[0.5 * np.tanh(1.0)]], rtol=1e-14)


# Whole sequences ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CASES)
@pytest.mark.parametrize("with_carry", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_matches_reference(kind, with_carry, reverse):
    layer, _, ref_cell, make_params, xshape, cshape = CASES[kind]
    p = make_params()
    x = _normal(*xshape, scale=1.0)
    carry = _random_carry(kind, cshape) if with_carry else None
    out, final = layer(x, p, carry=carry, reverse=reverse)
    start = carry if with_carry else _zero_carry(kind, cshape)
    want_out, want_final = _ref_sequence(ref_cell, x, start, p, reverse=reverse)
    assert out.shape == xshape[:-1] + cshape[-1:]
    np.testing.assert_allclose(out, want_out, rtol=1e-11, atol=1e-12)
    _assert_tree_close(final, want_final, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(final if kind == "gru" else final[1],
                               out[:, 0 if reverse else -1], rtol=1e-14)


MASKS = {
    "right_padded": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool),
    "holes": np.array([[1, 0, 1, 1, 1], [0, 1, 1, 0, 1], [1, 1, 0, 1, 0]], np.float64),
}


@pytest.mark.parametrize("kind", CASES)
@pytest.mark.parametrize("mask_name", MASKS)
@pytest.mark.parametrize("reverse", [False, True])
def test_masked_sequence_skips_masked_steps(kind, mask_name, reverse):
    layer, _, ref_cell, make_params, xshape, cshape = CASES[kind]
    mask = MASKS[mask_name][:, :xshape[1]]
    p = make_params()
    x = _normal(*xshape, scale=1.0)
    carry = _random_carry(kind, cshape)
    out, final = layer(x, p, carry=carry, mask=mask, reverse=reverse)
    want_out, want_final = _ref_sequence(ref_cell, x, carry, p, mask=mask, reverse=reverse)
    np.testing.assert_allclose(out, want_out, rtol=1e-11, atol=1e-12)
    _assert_tree_close(final, want_final, rtol=1e-11, atol=1e-12)
    assert not np.any(out[~mask.astype(bool)])


def test_right_padding_gives_the_state_of_the_truncated_row():
    p = _lstm_params(2, 3)
    x = _normal(2, 4, 2)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    out, (c, h) = recurrent.lstm(x, p, mask=mask)
    short_out, (c1, h1) = recurrent.lstm(x[1:, :2], p)
    np.testing.assert_allclose(c[1:], c1, rtol=1e-13)
    np.testing.assert_allclose(h[1:], h1, rtol=1e-13)
    np.testing.assert_allclose(out[1, :2], short_out[0], rtol=1e-13)
    # Reversed, the padded row starts from the initial (zero) carry at its last valid step.
    rev_out, _ = recurrent.lstm(x, p, mask=mask, reverse=True)
    short_rev, _ = recurrent.lstm(x[1:, :2], p, reverse=True)
    np.testing.assert_allclose(rev_out[1, :2], short_rev[0], rtol=1e-13)
    np.testing.assert_array_equal(rev_out[1, 2:], 0.0)


def test_all_masked_row_keeps_the_initial_carry():
    p = _gru_params(2, 2)
    h0 = _normal(2, 2)
    out, h = recurrent.gru(_normal(2, 3, 2), p, carry=h0, mask=np.array([[0, 0, 0], [1, 1, 1]]))
    np.testing.assert_array_equal(h[0], h0[0])
    np.testing.assert_array_equal(out[0], 0.0)
    assert not np.allclose(h[1], h0[1])


def test_unroll_with_a_custom_cell():
    def accumulate(x_t, carry, scale):
        total = carry + scale * x_t
        return total * 10, total

    x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    out, total = recurrent.unroll(accumulate, x, np.zeros((1, 1)), 2.0)
    np.testing.assert_array_equal(out[0, :, 0], [20, 60, 120, 200])
    out, total = recurrent.unroll(accumulate, x, np.zeros((1, 1)), 2.0, reverse=True,
                                  mask=np.array([[1, 1, 0, 1]]))
    np.testing.assert_array_equal(out[0, :, 0], [140, 120, 0, 80])
    np.testing.assert_array_equal(total, [[14.0]])


def test_unroll_with_library_cells_matches_the_layers():
    p = _lstm_params(3, 2)
    x = _normal(2, 4, 3)
    mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]])
    zeros = (np.zeros((2, 2)), np.zeros((2, 2)))
    got = recurrent.unroll(recurrent.lstm_cell, x, zeros, p, mask=mask, reverse=True)
    want = recurrent.lstm(x, p, mask=mask, reverse=True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
    _assert_tree_close(got[1], want[1], rtol=1e-13)


def test_float32_in_float32_out_and_default_carry_dtype():
    p = {k: v.astype(np.float32) for k, v in _gru_params(3, 2).items()}
    out, h = recurrent.gru(_normal(2, 3, 3).astype(np.float32), p)
    assert out.dtype == h.dtype == np.float32
    p = {k: v.astype(np.float32) for k, v in _conv_params((3, 3), 1, 2).items()}
    out, (c, h) = recurrent.conv_lstm(_normal(1, 2, 4, 4, 1).astype(np.float32), p)
    assert out.dtype == c.dtype == h.dtype == np.float32


def test_conv_lstm_one_spatial_axis():
    p = _conv_params((3,), 2, 2)
    x = _normal(2, 3, 5, 2)
    out, (c, h) = recurrent.conv_lstm(x, p)
    assert out.shape == (2, 3, 5, 2) and c.shape == h.shape == (2, 5, 2)
    # A 1-D ConvLSTM is a 2-D one over a height-1 image with a (1, K) kernel.
    p2 = {k: (v[None] if k != "bias" else v) for k, v in p.items()}
    out2, _ = recurrent.conv_lstm(x[:, :, None], p2)
    np.testing.assert_allclose(out2[:, :, 0], out, rtol=1e-12)


# Bidirectional -----------------------------------------------------------------------------------


@pytest.mark.parametrize("merge", ["concatenate", "sum", "mean", "callable"])
def test_bidirectional_merge_modes(merge):
    pf, pb = _lstm_params(3, 2), _lstm_params(3, 2)
    x = _normal(3, 4, 3)
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 1, 1]])
    carry = ((_normal(3, 2), _normal(3, 2)), (_normal(3, 2), _normal(3, 2)))
    fwd, fwd_final = _ref_sequence(_ref_lstm_cell, x, carry[0], pf, mask=mask)
    bwd, bwd_final = _ref_sequence(_ref_lstm_cell, x, carry[1], pb, mask=mask, reverse=True)
    want = {"concatenate": np.concatenate([fwd, bwd], axis=-1), "sum": fwd + bwd,
            "mean": (fwd + bwd) / 2, "callable": fwd * bwd}[merge]
    how = (lambda a, b: a * b) if merge == "callable" else merge
    out, (f_final, b_final) = recurrent.bidirectional(recurrent.lstm, x, pf, pb, carry=carry,
                                                      mask=mask, merge=how)
    np.testing.assert_allclose(out, want, rtol=1e-11, atol=1e-13)
    _assert_tree_close(f_final, fwd_final, rtol=1e-11)
    _assert_tree_close(b_final, bwd_final, rtol=1e-11)


def test_bidirectional_gru_default_carry():
    pf, pb = _gru_params(2, 3), _gru_params(2, 3)
    x = _normal(2, 3, 2)
    out, (hf, hb) = recurrent.bidirectional(recurrent.gru, x, pf, pb)
    fwd, _ = _ref_sequence(_ref_gru_cell, x, np.zeros((2, 3)), pf)
    bwd, _ = _ref_sequence(_ref_gru_cell, x, np.zeros((2, 3)), pb, reverse=True)
    np.testing.assert_allclose(out, np.concatenate([fwd, bwd], -1), rtol=1e-11)
    np.testing.assert_allclose(hf, fwd[:, -1], rtol=1e-12)
    np.testing.assert_allclose(hb, bwd[:, 0], rtol=1e-12)


# Shape inference ---------------------------------------------------------------------------------


def _abstract(tree):
    if isinstance(tree, dict):
        return {k: AbstractArray(v.shape, "float32") for k, v in tree.items()}
    return AbstractArray(tree, "float32")


def test_eval_shape_every_layer():
    out, (c, h) = eval_shape(lambda x, p: recurrent.lstm(x, p, mask=np.ones((8, 7))),
                             _abstract((8, 7, 5)), _abstract(_lstm_params(5, 6)))
    assert out == AbstractArray((8, 7, 6)) and c == h == AbstractArray((8, 6))
    out, h = eval_shape(lambda x, p: recurrent.gru(x, p, reverse=True), _abstract((8, 7, 5)),
                        _abstract(_gru_params(5, 6)))
    assert out == AbstractArray((8, 7, 6)) and h == AbstractArray((8, 6))
    out, (c, h) = eval_shape(recurrent.conv_lstm, _abstract((2, 3, 6, 5, 4)),
                             _abstract(_conv_params((3, 3), 4, 7)))
    assert out == AbstractArray((2, 3, 6, 5, 7)) and c == h == AbstractArray((2, 6, 5, 7))
    out, (hf, hb) = eval_shape(
        lambda x, pf, pb: recurrent.bidirectional(recurrent.gru, x, pf, pb),
        _abstract((8, 7, 5)), _abstract(_gru_params(5, 6)), _abstract(_gru_params(5, 6)))
    assert out == AbstractArray((8, 7, 12)) and hf == hb == AbstractArray((8, 6))
    h, (c, h2) = eval_shape(recurrent.lstm_cell, _abstract((8, 5)),
                            (_abstract((8, 6)), _abstract((8, 6))), _abstract(_lstm_params(5, 6)))
    assert h == c == AbstractArray((8, 6))
    h, _ = eval_shape(recurrent.gru_cell, _abstract((8, 5)), _abstract((8, 6)),
                      _abstract(_gru_params(5, 6)))
    assert h == AbstractArray((8, 6))
    h, _ = eval_shape(recurrent.conv_lstm_cell, _abstract((2, 6, 4)),
                      (_abstract((2, 6, 3)), _abstract((2, 6, 3))),
                      _abstract(_conv_params((3,), 4, 3)))
    assert h == AbstractArray((2, 6, 3))


# Gradients through the whole unrolled sequence ---------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_grads_through_sequence(masked):
    mask = np.array([[1, 0, 1], [1, 1, 0]], bool) if masked else None
    x, p = _normal(2, 3, 2, scale=1.0), _lstm_params(2, 2)
    carry = (_normal(2, 2), _normal(2, 2))
    check_grads(lambda x, p, carry: recurrent.lstm(x, p, carry=carry, mask=mask), x, p, carry)


@pytest.mark.parametrize("masked", [False, True])
def test_gru_grads_through_sequence(masked):
    mask = np.array([[1, 1, 0, 1], [1, 1, 1, 0]]) if masked else None
    x, p, h0 = _normal(2, 4, 3, scale=1.0), _gru_params(3, 2), _normal(2, 2)
    check_grads(lambda x, p, h0: recurrent.gru(x, p, carry=h0, mask=mask, reverse=masked),
                x, p, h0)


def test_conv_lstm_grads_through_sequence():
    x, p = _normal(2, 3, 3, 3, 1, scale=1.0), _conv_params((3, 2), 1, 1)
    carry = (_normal(2, 3, 3, 1), _normal(2, 3, 3, 1))
    mask = np.array([[1, 1, 0], [1, 0, 1]])

    def run(x, p, carry):
        return recurrent.conv_lstm(x, p, carry=carry, mask=mask)

    check_grads(run, x, p, carry, directions=8)
    # Small enough for the full Jacobian with respect to the parameters.
    check_grads(lambda p: run(x, p, carry), p)


def test_bidirectional_grads():
    x, pf, pb = _normal(2, 3, 2, scale=1.0), _gru_params(2, 2), _gru_params(2, 2)
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    check_grads(lambda x, pf, pb: recurrent.bidirectional(recurrent.gru, x, pf, pb, mask=mask,
                                                          merge="mean"), x, pf, pb)


# PyTorch parity (skipped when torch is absent) ---------------------------------------------------


def test_matches_torch_lstm_and_gru():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = _normal(2, 5, 3, scale=1.0)
    tx = torch.tensor(x)
    lstm = torch.nn.LSTM(3, 4, batch_first=True).double()
    gru = torch.nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        t_out, (t_h, t_c) = lstm(tx)
        g_out, g_h = gru(tx)

    def w(name, module):
        return getattr(module, name).detach().numpy()

    p = {"input_kernel": w("weight_ih_l0", lstm).T, "hidden_kernel": w("weight_hh_l0", lstm).T,
         "bias": w("bias_ih_l0", lstm) + w("bias_hh_l0", lstm)}
    out, (c, h) = recurrent.lstm(x, p)
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, t_h.numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, t_c.numpy()[0], rtol=1e-10, atol=1e-12)
    p = {"input_kernel": w("weight_ih_l0", gru).T, "hidden_kernel": w("weight_hh_l0", gru).T,
         "input_bias": w("bias_ih_l0", gru), "hidden_bias": w("bias_hh_l0", gru)}
    out, h = recurrent.gru(x, p)
    np.testing.assert_allclose(out, g_out.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, g_h.numpy()[0], rtol=1e-10, atol=1e-12)


# Errors ------------------------------------------------------------------------------------------


def test_kernel_shape_errors_name_the_parameter_and_both_shapes():
    x = np.ones((2, 3, 5))
    p = _lstm_params(5, 3)
    with pytest.raises(ShapeError, match=r"lstm.*`hidden_kernel`.*\(3, 12\).*got shape \(3, 8\)"):
        recurrent.lstm(x, {**p, "hidden_kernel": np.ones((3, 8))})
    with pytest.raises(ShapeError, match=r"lstm.*`input_kernel`.*\(5, 12\).*got shape \(4, 12\)"):
        recurrent.lstm(x, {**p, "input_kernel": np.ones((4, 12))})
    with pytest.raises(ShapeError, match=r"lstm_cell.*`bias`.*\(12,\).*got shape \(9,\)"):
        recurrent.lstm_cell(x[:, 0], (np.ones((2, 3)),) * 2, {**p, "bias": np.ones(9)})
    g = _gru_params(5, 3)
    with pytest.raises(ShapeError, match=r"gru.*`hidden_bias`.*\(9,\).*got shape \(12,\)"):
        recurrent.gru(x, {**g, "hidden_bias": np.ones(12)})
    c = _conv_params((3, 3), 2, 4)
    xc = np.ones((1, 2, 5, 5, 2))
    with pytest.raises(ShapeError, match=r"conv_lstm.*`hidden_kernel`.*\(3, 3, 4, 16\).*"
                                         r"got shape \(3, 3, 4, 12\)"):
        recurrent.conv_lstm(xc, {**c, "hidden_kernel": np.ones((3, 3, 4, 12))})
    with pytest.raises(ShapeError, match=r"conv_lstm.*`input_kernel`.*\(3, 3, 2, 16\).*"
                                         r"got shape \(3, 3, 3, 16\)"):
        recurrent.conv_lstm(xc, {**c, "input_kernel": np.ones((3, 3, 3, 16))})
    with pytest.raises(ShapeError, match=r"conv_lstm.*`hidden_kernel`.*4-D"):
        recurrent.conv_lstm(xc, {**c, "hidden_kernel": np.ones((3, 4, 16))})


def test_input_carry_and_param_errors():
    p = _lstm_params(5, 3)
    with pytest.raises(ShapeError, match=r"lstm.*`x`.*3-D.*\(2, 5\)"):
        recurrent.lstm(np.ones((2, 5)), p)
    with pytest.raises(ShapeError, match=r"conv_lstm.*`x`.*4-D"):
        recurrent.conv_lstm(np.ones((2, 3, 5)), _conv_params((3,), 5, 2))
    with pytest.raises(ShapeError, match=r"lstm.*`carry`.*\(2, 3\).*\(\(2, 3\), \(2, 4\)\)"):
        recurrent.lstm(np.ones((2, 4, 5)), p, carry=(np.ones((2, 3)), np.ones((2, 4))))
    with pytest.raises(ShapeError, match=r"lstm.*`carry`.*pair.*got ndarray of shape \(2, 3\)"):
        recurrent.lstm(np.ones((2, 4, 5)), p, carry=np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"gru_cell.*`carry`.*\(2, 3\).*got shape \(3, 3\)"):
        recurrent.gru_cell(np.ones((2, 5)), np.ones((3, 3)), _gru_params(5, 3))
    with pytest.raises(InvalidArgumentError, match=r"lstm.*'bias'"):
        recurrent.lstm(np.ones((2, 4, 5)), {k: v for k, v in p.items() if k != "bias"})
    with pytest.raises(ShapeError, match=r"unroll.*`x`.*time step"):
        recurrent.unroll(recurrent.gru_cell, np.ones((2, 0, 5)), np.ones((2, 3)),
                         _gru_params(5, 3))


def test_mask_and_merge_errors():
    x = np.ones((2, 3, 5))
    with pytest.raises(ShapeError, match=r"lstm.*`mask`.*\(2, 3\).*input shape \(2, 3, 5\)"
                                         r".*got shape \(2, 4\)"):
        recurrent.lstm(x, _lstm_params(5, 3), mask=np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"gru.*`mask`.*got shape \(2, 3, 1\)"):
        recurrent.gru(x, _gru_params(5, 3), mask=np.ones((2, 3, 1)))
    p = _gru_params(5, 3)
    with pytest.raises(InvalidArgumentError, match=r"bidirectional.*`merge`.*'max'"):
        recurrent.bidirectional(recurrent.gru, x, p, p, merge="max")
    with pytest.raises(InvalidArgumentError, match=r"bidirectional.*`carry`.*pair"):
        recurrent.bidirectional(recurrent.gru, x, p, p, carry=np.ones((2, 3)))
