"""Graph constructors of the recurrent layers (lstm, gru, conv_lstm): the functional layers and
numpy loops as references, carries, masks, reverse and bidirectional runs, gradients through
the unrolled sequence, a training step in a pipeline, and errors."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn.errors import AxonTypeError, InvalidArgumentError, ShapeError
from axon_fn.layers import recurrent as F
from axon_fn.nn import recurrent as rnn
from tests.nn.harness import check_model_grads, one_layer, run

rng = np.random.default_rng(7)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def numpy_lstm(x, p, c=None, h=None):
    """The LSTM equations, gates i, f, g, o; returns (outputs, c, h)."""
    units = p["hidden_kernel"].shape[0]
    c = np.zeros((x.shape[0], units)) if c is None else c
    h = np.zeros((x.shape[0], units)) if h is None else h
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ p["input_kernel"] + h @ p["hidden_kernel"] + p["bias"]
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1), c, h


def numpy_gru(x, p, h=None):
    """PyTorch's GRU: r, z, n with the reset gate applied after the hidden bias."""
    h = np.zeros((x.shape[0], p["hidden_kernel"].shape[0])) if h is None else h
    outputs = []
    for t in range(x.shape[1]):
        xr, xz, xn = np.split(x[:, t] @ p["input_kernel"] + p["input_bias"], 3, axis=-1)
        hr, hz, hn = np.split(h @ p["hidden_kernel"] + p["hidden_bias"], 3, axis=-1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return np.stack(outputs, 1), h


def same_conv1d(v, kernel):
    """(batch, width, C) * (K, C, out) with 'same' zero padding, K odd."""
    k = kernel.shape[0]
    padded = np.pad(v, ((0, 0), (k // 2, k // 2), (0, 0)))
    return sum(np.einsum("bwc,co->bwo", padded[:, j:j + v.shape[1]], kernel[j])
               for j in range(k))


def numpy_conv_lstm(x, p):
    filters = p["hidden_kernel"].shape[-2]
    c = h = np.zeros(x.shape[:1] + x.shape[2:-1] + (filters,))
    outputs = []
    for t in range(x.shape[1]):
        z = same_conv1d(x[:, t], p["input_kernel"]) + same_conv1d(h, p["hidden_kernel"])
        i, f, g, o = np.split(z + p["bias"], 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1)


def test_lstm_matches_functional_and_numpy_loop_with_default_initializers():
    x = rng.standard_normal((2, 4, 3))
    model = one_layer(rnn.lstm(5), x.shape)
    y, state = run(model, x)
    p = state["lstm_0"]
    assert {k: v.shape for k, v in p.items()} == {
        "input_kernel": (3, 20), "hidden_kernel": (5, 20), "bias": (20,)}
    np.testing.assert_allclose(p["hidden_kernel"] @ p["hidden_kernel"].T, np.eye(5), atol=1e-6)
    np.testing.assert_array_equal(p["bias"], 0)  # the forget-gate bias starts at zero too
    assert y.shape == (2, 4, 5)
    np.testing.assert_allclose(y, F.lstm(x, dict(p))[0], rtol=1e-12)
    np.testing.assert_allclose(y, numpy_lstm(x, p)[0], rtol=1e-10, atol=1e-12)


def test_gru_matches_functional_and_numpy_loop():
    x = rng.standard_normal((3, 4, 2))
    bias = ax.initializers.normal(0.5)
    model = one_layer(rnn.gru(3, bias_initializer=bias), x.shape)
    y, state = run(model, x)
    p = state["gru_0"]
    assert sorted(p) == ["hidden_bias", "hidden_kernel", "input_bias", "input_kernel"]
    assert p["input_kernel"].shape == (2, 9) and p["hidden_kernel"].shape == (3, 9)
    np.testing.assert_allclose(y, F.gru(x, dict(p))[0], rtol=1e-12)
    np.testing.assert_allclose(y, numpy_gru(x, p)[0], rtol=1e-10, atol=1e-12)


def test_conv_lstm_matches_functional_and_numpy_loop():
    x = rng.standard_normal((2, 3, 5, 2))
    model = one_layer(rnn.conv_lstm(3, (3,), bias_initializer=ax.initializers.normal(0.3)),
                      x.shape)
    y, state = run(model, x)
    p = state["conv_lstm_0"]
    assert p["input_kernel"].shape == (3, 2, 12) and p["hidden_kernel"].shape == (3, 3, 12)
    assert y.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(y, F.conv_lstm(x, dict(p))[0], rtol=1e-12)
    np.testing.assert_allclose(y, numpy_conv_lstm(x, p), rtol=1e-10, atol=1e-12)
    x2 = rng.standard_normal((1, 2, 4, 4, 1))
    y2, s2 = run(one_layer(rnn.conv_lstm(2, 3), x2.shape), x2)
    assert y2.shape == (1, 2, 4, 4, 2)
    np.testing.assert_allclose(y2, F.conv_lstm(x2, dict(s2["conv_lstm_0"]))[0], rtol=1e-12)


def test_initial_carry_mask_and_reverse_match_functional():
    x = rng.standard_normal((2, 4, 3))
    c0, h0 = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], float)  # right padding
    xs = ax.input("x", shape=(None, 4, 3))
    c, h = ax.input("c", shape=(None, 2)), ax.input("h", shape=(None, 2))
    m = ax.input("mask", shape=(None, 4))
    inputs = {"x": x, "c": c0, "h": h0, "mask": mask}
    for reverse in (False, True):
        model = ax.container(rnn.lstm(xs, 2, carry=(c, h), mask=m, reverse=reverse,
                                      return_state=True))
        state = ax.init(model, inputs).astype(np.float64)
        out, (cf, hf) = ax.predict(model, state, inputs)
        ref, (rc, rh) = F.lstm(x, dict(state["lstm_0"]), carry=(c0, h0), mask=mask,
                               reverse=reverse)
        np.testing.assert_allclose(out, ref, rtol=1e-12)
        np.testing.assert_allclose(cf, rc, rtol=1e-12)
        np.testing.assert_allclose(hf, rh, rtol=1e-12)
        np.testing.assert_array_equal(out[1, 2:], 0)  # padded steps output zeros
    # forward: the padded row's final state is the state after its last valid step
    model = ax.container(rnn.lstm(xs, 2, carry=(c, h), mask=m, return_state=True))
    state = ax.init(model, inputs).astype(np.float64)
    _, (cf, hf) = ax.predict(model, state, inputs)
    _, rc, rh = numpy_lstm(x[1:, :2], state["lstm_0"], c0[1:], h0[1:])
    np.testing.assert_allclose(cf[1:], rc, rtol=1e-10)
    np.testing.assert_allclose(hf[1:], rh, rtol=1e-10)

    g = ax.input("g", shape=(None, 2))
    model = rnn.gru(xs, 2, carry=g, mask=m, reverse=True)
    gin = {"x": x, "g": h0, "mask": mask}
    state = ax.init(model, gin).astype(np.float64)
    np.testing.assert_allclose(ax.predict(model, state, gin),
                               F.gru(x, dict(state["gru_0"]), carry=h0, mask=mask,
                                     reverse=True)[0], rtol=1e-12)


@pytest.mark.parametrize("merge", ["concatenate", "sum"])
def test_bidirectional_matches_functional(merge):
    x = rng.standard_normal((2, 3, 2))
    model = one_layer(rnn.lstm(3, bidirectional=True, merge=merge), x.shape)
    y, state = run(model, x)
    p = state["lstm_0"]
    assert sorted(p) == sorted(f"{d}_{n}" for d in ("forward", "backward")
                               for n in ("input_kernel", "hidden_kernel", "bias"))
    assert not np.allclose(p["forward_input_kernel"], p["backward_input_kernel"])
    fwd = {n[8:]: v for n, v in p.items() if n.startswith("forward_")}
    bwd = {n[9:]: v for n, v in p.items() if n.startswith("backward_")}
    ref = F.bidirectional(F.lstm, x, fwd, bwd, merge=merge)[0]
    assert y.shape == ((2, 3, 6) if merge == "concatenate" else (2, 3, 3))
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    forward_only = numpy_lstm(x, fwd)[0]
    backward_only = numpy_lstm(x[:, ::-1], bwd)[0][:, ::-1]
    expected = (np.concatenate([forward_only, backward_only], -1) if merge == "concatenate"
                else forward_only + backward_only)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_return_state_structures_feed_other_layers():
    x = rng.standard_normal((2, 3, 2))
    xs = ax.input("x", shape=(None, 3, 2))
    outputs, (c, h) = rnn.lstm(xs, 4, return_state=True, name="encoder")
    decoded = rnn.lstm(xs, 4, carry=(c, h), name="decoder")
    model = ax.container({"out": outputs, "h": h, "dec": decoded})
    state = ax.init(model, x).astype(np.float64)
    res = ax.predict(model, state, x)
    ref, (rc, rh) = F.lstm(x, dict(state["encoder"]))
    np.testing.assert_allclose(res["out"], ref, rtol=1e-12)
    np.testing.assert_allclose(res["h"], rh, rtol=1e-12)
    np.testing.assert_allclose(res["dec"], F.lstm(x, dict(state["decoder"]),
                                                  carry=(rc, rh))[0], rtol=1e-12)
    # a node holding the pair (a container) is split into c and h
    pair = rnn.lstm(xs, 4, carry=ax.container((c, h)), name="decoder")
    np.testing.assert_allclose(ax.predict(pair, state, x), res["dec"], rtol=1e-12)

    _, (h_fwd, h_bwd) = rnn.gru(xs, 2, bidirectional=True, return_state=True)
    _, ((c_f, h_f), (c_b, h_b)) = rnn.lstm(xs, 2, bidirectional=True, return_state=True)
    shapes = ax.get_output_shape((h_fwd, h_bwd, c_f, h_b))
    assert shapes == ((1, 2),) * 4
    out, final = rnn.conv_lstm(ax.input("v", shape=(None, 2, 3, 1)), 2, 3, return_state=True)
    assert ax.get_output_shape((out, final)) == ((1, 2, 3, 2), ((1, 3, 2), (1, 3, 2)))


@pytest.mark.parametrize("layer, shape", [
    (rnn.lstm(2), (2, 3, 2)),
    (rnn.gru(2), (2, 3, 2)),
    (rnn.conv_lstm(2, 3), (2, 3, 3, 1)),
    (rnn.gru(2, bidirectional=True, merge="sum"), (2, 3, 2)),
], ids=["lstm", "gru", "conv_lstm", "bidirectional_gru"])
def test_gradients_through_the_unrolled_sequence(layer, shape):
    check_model_grads(one_layer(layer, shape), rng.standard_normal(shape))


def test_gradients_with_carry_and_mask_inputs():
    xs, m = ax.input("x", shape=(None, 3, 2)), ax.input("m", shape=(None, 3))
    c, h = ax.input("c", shape=(None, 2)), ax.input("h", shape=(None, 2))
    model = rnn.lstm(xs, 2, carry=(c, h), mask=m, reverse=True)
    inputs = {"x": rng.standard_normal((2, 3, 2)), "c": rng.standard_normal((2, 2)),
              "h": rng.standard_normal((2, 2)), "m": np.array([[1.0, 1, 1], [1, 0, 0]])}
    state = ax.init(model, inputs).astype(np.float64)

    def forward(trainable, x, c0, h0):
        return ax.predict(model, state.replace(trainable=trainable),
                          {"x": x, "c": c0, "h": h0, "m": inputs["m"]})

    ax.testing.check_grads(forward, state.trainable, inputs["x"], inputs["c"], inputs["h"])


def test_trains_in_a_pipeline():
    x = rng.standard_normal((4, 5, 3))
    target = rng.standard_normal((4, 5, 1))
    model = ax.input("x", shape=(None, 5, 3)) >> rnn.lstm(4) >> ax.dense(1)
    state = ax.init(model, x, key=1).astype(np.float64)

    def loss(trainable):
        y = ax.predict(model, state.replace(trainable=trainable), x, mode="train")[0]
        return ax.ops.mean((y - target) ** 2)

    before, grads = ax.value_and_grad(loss)(state.trainable)
    assert sorted(grads) == ["dense_0", "lstm_0"]
    assert all(np.any(g != 0) for g in grads["lstm_0"].values())
    stepped = ax.tree.tree_map(lambda p, g: p - 0.1 * g, state.trainable, grads)
    assert float(loss(stepped)) < float(before)


def test_errors_name_the_layer_and_argument():
    xs = ax.input("x", shape=(None, 3, 2))
    with pytest.raises(InvalidArgumentError, match=r"lstm: `units` must be a positive int, got 0"):
        rnn.lstm(0)
    with pytest.raises(InvalidArgumentError, match=r"gru: `units` .* got '4'"):
        xs >> rnn.gru("4")
    with pytest.raises(InvalidArgumentError, match=r"conv_lstm: `filters`"):
        rnn.conv_lstm(-1, 3)
    with pytest.raises(InvalidArgumentError, match=r"conv_lstm: `kernel_size` expected .* got 0"):
        rnn.conv_lstm(2, 0)
    with pytest.raises(InvalidArgumentError, match=r"lstm: `merge` expected .* got 'max'"):
        rnn.lstm(2, bidirectional=True, merge="max")
    with pytest.raises(InvalidArgumentError, match=r"gru: `reverse` expected False"):
        rnn.gru(2, bidirectional=True, reverse=True)
    with pytest.raises(AxonTypeError, match=r"lstm: `carry` expected nodes \(c, h\) .*, got a "
                                            r"list of 1"):
        rnn.lstm(xs, 2, carry=[xs])
    with pytest.raises(AxonTypeError, match=r"gru: `carry` expected nodes \(h_fwd, h_bwd\) .*, got "
                                            r"a tuple of 2"):
        rnn.gru(xs, 2, carry=(xs, 3), bidirectional=True)
    with pytest.raises(AxonTypeError, match=r"lstm: `mask` expected a model node"):
        rnn.lstm(xs, 2, mask=np.ones((1, 3)))

    bad_mask = rnn.lstm(xs, 2, mask=ax.input("m", shape=(None, 4)))
    with pytest.raises(ShapeError, match=r"'lstm_0' .*`mask` expected shape \(1, 3\).*got shape "
                                         r"\(1, 4\)"):
        ax.init(bad_mask)
    with pytest.raises(ShapeError, match=r"'gru_0'.*gru: the input `x` expected shape \(batch, "
                                         r"time, features\), got shape \(1, 3\)"):
        ax.init(ax.input("x", shape=(None, 3)) >> rnn.gru(2))
    with pytest.raises(ShapeError, match=r"conv_lstm: `kernel_size` expected 1 sizes"):
        ax.init(ax.input("v", shape=(None, 2, 3, 1)) >> rnn.conv_lstm(2, (3, 3)))
    small_carry = rnn.gru(xs, 2, carry=ax.input("h", shape=(None, 3)))
    with pytest.raises(ShapeError, match=r"'gru_0'.*`carry` expected an array of shape \(1, 2\)"):
        ax.init(small_carry)
