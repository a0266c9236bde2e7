"""Graph constructors of the linear, activation, normalization, dropout and combining layers:
numpy references through a built model, and gradients through a small model."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import activations
from tests.nn.harness import check_model_grads, one_layer, run

rng = np.random.default_rng(3)
X = rng.standard_normal((3, 4))


def test_dense_with_activation_matches_numpy_and_grads():
    model = one_layer(ax.dense(5, activation="tanh"), X.shape)
    y, state = run(model, X)
    p = state["dense_0"]
    np.testing.assert_allclose(y, np.tanh(X @ p["kernel"] + p["bias"]), rtol=1e-12)
    check_model_grads(model, X)
    no_bias = one_layer(ax.dense(2, use_bias=False, activation=np.negative), X.shape)
    y, state = run(no_bias, X)
    assert list(state["dense_0"]) == ["kernel"]
    np.testing.assert_allclose(y, -(X @ state["dense_0"]["kernel"]), rtol=1e-12)


def test_bilinear_embedding_bias():
    a, b = ax.input("a", shape=(None, 4)), ax.input("b", shape=(None, 2))
    model = ax.bilinear(a, b, 3)
    vb = rng.standard_normal((3, 2))
    state = ax.init(model, {"a": X, "b": vb}).astype(np.float64)
    k, bias = state["bilinear_0"]["kernel"], state["bilinear_0"]["bias"]
    np.testing.assert_allclose(ax.predict(model, state, {"a": X, "b": vb}),
                               np.einsum("ni,oij,nj->no", X, k, vb) + bias, rtol=1e-12)
    check_model_grads(model, {"a": X, "b": vb})

    ids = np.array([[0, 3], [2, 2]])
    emb = ax.input("ids", shape=(None, 2), dtype="int32") >> ax.embedding(4, 3)
    state = ax.init(emb, ids).astype(np.float64)
    np.testing.assert_array_equal(ax.predict(emb, state, ids),
                                  state["embedding_0"]["kernel"][ids])
    check_model_grads(emb, ids, wrt_input=False)

    model = one_layer(ax.bias(bias_initializer=ax.initializers.full(0.5)), X.shape)
    y, _ = run(model, X)
    np.testing.assert_allclose(y, X + 0.5)
    check_model_grads(model, X)


@pytest.mark.parametrize("name", activations.__all__)
def test_every_activation_layer_matches_its_function_and_grads(name):
    model = one_layer(getattr(ax, name)(), X.shape)
    y, _ = run(model, X)
    np.testing.assert_allclose(y, getattr(activations, name)(X), rtol=1e-12)
    check_model_grads(model, X)


def test_activation_layer_options_and_generic_activation():
    y, _ = run(one_layer(ax.leaky_relu(alpha=0.5), X.shape), X)
    np.testing.assert_allclose(y, np.where(X > 0, X, 0.5 * X))
    y, _ = run(one_layer(ax.activation("softmax", axis=0), X.shape), X)
    np.testing.assert_allclose(y.sum(0), np.ones(4))


def _norm_reference(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def test_normalization_layers_match_numpy():
    x = rng.standard_normal((2, 3, 4))
    y, s = run(one_layer(ax.layer_norm(), x.shape), x)
    np.testing.assert_allclose(y, _norm_reference(x, -1, 1e-5), rtol=1e-10)
    y, _ = run(one_layer(ax.instance_norm(), x.shape), x)
    np.testing.assert_allclose(y, _norm_reference(x, 1, 1e-5), rtol=1e-10)
    y, _ = run(one_layer(ax.group_norm(2), x.shape), x)
    grouped = x.reshape(2, 3, 2, 2)
    np.testing.assert_allclose(y, _norm_reference(grouped, (1, 3), 1e-5).reshape(x.shape),
                               rtol=1e-10)
    y, _ = run(one_layer(ax.rms_norm(), x.shape), x)
    np.testing.assert_allclose(y, x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6),
                               rtol=1e-10)
    y, _ = run(one_layer(ax.batch_norm(), x.shape), x)  # inference: running mean 0, var 1
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-10)
    y, state = run(one_layer(ax.batch_norm(channel_index=1), x.shape), x, mode="train")
    np.testing.assert_allclose(y, _norm_reference(x, (0, 2), 1e-5), rtol=1e-9)
    assert state["batch_norm_0"]["gamma"].shape == (3,)


@pytest.mark.parametrize("layer, mode", [
    (ax.layer_norm(), "inference"), (ax.instance_norm(), "inference"),
    (ax.group_norm(2), "inference"), (ax.rms_norm(), "inference"),
    (ax.batch_norm(), "inference"), (ax.batch_norm(), "train"),
])
def test_normalization_layer_grads(layer, mode):
    x = rng.standard_normal((3, 2, 4))
    check_model_grads(one_layer(layer, x.shape), x, mode=mode)


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout", "feature_alpha_dropout",
                                  "spatial_dropout"])
def test_dropout_layers_are_identity_in_inference_and_match_the_function_in_train(name):
    x = rng.standard_normal((4, 3, 5))
    model = one_layer(getattr(ax, name)(0.4), x.shape)
    y, _ = run(model, x)
    np.testing.assert_array_equal(y, x)
    key = ax.random.key(7)
    y, _ = run(model, x, mode="train", key=key)
    layer_key = ax.random.fold_in(key, __import__("zlib").crc32(f"{name}_0".encode()))
    np.testing.assert_array_equal(y, getattr(ax.layers, name)(x, layer_key, rate=0.4))
    assert not np.array_equal(y, x)
    check_model_grads(model, x, mode="train", key=key)


def test_combining_layers_match_numpy_and_grads():
    a, b, c = (ax.input(n, shape=(None, 4)) for n in "abc")
    inputs = {n: rng.standard_normal((2, 4)) for n in "abc"}
    for layer, expected in [
        (ax.add(a, b, c), inputs["a"] + inputs["b"] + inputs["c"]),
        (ax.subtract([a, b]), inputs["a"] - inputs["b"]),
        (ax.multiply(a, b, activation="relu"), np.maximum(inputs["a"] * inputs["b"], 0)),
        (ax.concatenate(a, b, axis=0), np.concatenate([inputs["a"], inputs["b"]], 0)),
    ]:
        names = ax.get_inputs(layer)
        feed = {n: inputs[n] for n in names}
        np.testing.assert_allclose(ax.predict(layer, ax.init(layer, feed), feed), expected)
        check_model_grads(layer, feed)
    first, second = ax.split(a, [1], axis=1)
    model = ax.container((first, second))
    out = ax.predict(model, {}, {"a": inputs["a"]})
    np.testing.assert_array_equal(out[0], inputs["a"][:, :1])
    np.testing.assert_array_equal(out[1], inputs["a"][:, 1:])
    check_model_grads(model, {"a": inputs["a"]})
    with pytest.raises(ax.InvalidArgumentError, match="at least two nodes"):
        ax.add(a)
