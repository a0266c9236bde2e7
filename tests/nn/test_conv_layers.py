"""Graph constructors of the convolution layers (axon_fn.nn.conv): outputs against the
functional layers and hand-written numpy loops, parameter shapes, output shapes, gradients
through small models, and option / shape errors."""

import importlib
import itertools

import numpy as np
import optree
import pytest

import axon_fn as ax
from axon_fn.layers.conv import conv as conv_fn
from axon_fn.layers.conv import conv_transpose as conv_transpose_fn
from axon_fn.layers.conv import depthwise_conv as depthwise_conv_fn
from axon_fn.layers.conv import separable_conv2d as separable_conv2d_fn
from axon_fn.layers.conv import separable_conv3d as separable_conv3d_fn
from tests.nn.harness import check_model_grads, one_layer

# A module import that stays the module once axon_fn.nn re-exports the `conv` function.
conv_nn = importlib.import_module("axon_fn.nn.conv")
pooling_nn = importlib.import_module("axon_fn.nn.pooling")
shape_nn = importlib.import_module("axon_fn.nn.shape")

rng = np.random.default_rng(7)


def randomized(model, x, seed=0):
    """The model's float64 state with every trainable parameter redrawn (non-zero biases)."""
    state = ax.init(model, x, key=0).astype(np.float64)
    r = np.random.default_rng(seed)
    return state.replace(trainable=optree.tree_map(lambda v: r.standard_normal(v.shape),
                                                   state.trainable))


def shapes(state, layer):
    return {k: v.shape for k, v in state[layer].items()}


# Hand-written references (explicit loops) --------------------------------------------------------


def ref_conv_last(x, k, b, strides, pads, kernel_dilation=1, input_dilation=1, groups=1):
    """Channels-last N-d cross-correlation, one output element at a time."""
    n_batch, *spatial, _ = x.shape
    *ksize, cg, n_out = k.shape
    nd = len(spatial)
    if input_dilation > 1:
        dilated = np.zeros((n_batch, *[(s - 1) * input_dilation + 1 for s in spatial],
                            x.shape[-1]))
        dilated[(slice(None),) + (slice(None, None, input_dilation),) * nd] = x
        x = dilated
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(xp.shape[1 + a] - (ksize[a] - 1) * kernel_dilation - 1) // strides + 1
           for a in range(nd)]
    y = np.zeros((n_batch, *out, n_out))
    per_group = n_out // groups
    for n in range(n_batch):
        for o in itertools.product(*map(range, out)):
            for f in range(n_out):
                g = f // per_group
                acc = 0.0 if b is None else b[f]
                for kk in itertools.product(*map(range, ksize)):
                    pos = tuple(o[a] * strides + kk[a] * kernel_dilation for a in range(nd))
                    for c in range(cg):
                        acc += xp[(n, *pos, g * cg + c)] * k[(*kk, c, f)]
                y[(n, *o, f)] = acc
    return y


def ref_conv2d_first(x, k, b, stride, pad):
    """Channels-first 2-d convolution, NCHW input and (F, C, kh, kw) kernel."""
    n_batch, n_in, h, w = x.shape
    n_out, _, kh, kw = k.shape
    xp = np.zeros((n_batch, n_in, h + 2 * pad, w + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + w] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    y = np.zeros((n_batch, n_out, oh, ow))
    for n in range(n_batch):
        for f in range(n_out):
            for i in range(oh):
                for j in range(ow):
                    acc = b[f]
                    for c in range(n_in):
                        for a in range(kh):
                            for d in range(kw):
                                acc += xp[n, c, i * stride + a, j * stride + d] * k[f, c, a, d]
                    y[n, f, i, j] = acc
    return y


def ref_conv_transpose2d_last(x, k, b, stride):
    """'valid' transposed convolution: input (i, j) scatters x[i, j] @ k[a, d] to
    (i * stride + a, j * stride + d)."""
    n_batch, h, w, n_in = x.shape
    kh, kw, _, n_out = k.shape
    y = np.zeros((n_batch, h * stride + max(kh - stride, 0), w * stride + max(kw - stride, 0),
                  n_out))
    for n in range(n_batch):
        for i in range(h):
            for j in range(w):
                for a in range(kh):
                    for d in range(kw):
                        for c in range(n_in):
                            for f in range(n_out):
                                y[n, i * stride + a, j * stride + d, f] += \
                                    x[n, i, j, c] * k[a, d, c, f]
    return y + b


# conv --------------------------------------------------------------------------------------------


def test_conv_channels_last_strided_padded_matches_functional_and_loops():
    x = rng.standard_normal((2, 5, 5, 3))
    pads = [(1, 0), (0, 2)]
    model = one_layer(conv_nn.conv(4, 3, strides=2, padding=pads), x.shape)
    state = randomized(model, x)
    assert shapes(state, "conv_0") == {"kernel": (3, 3, 3, 4), "bias": (4,)}
    p = state["conv_0"]
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, conv_fn(x, p["kernel"], p["bias"], strides=2, padding=pads),
                               rtol=1e-12)
    np.testing.assert_allclose(y, ref_conv_last(x, p["kernel"], p["bias"], 2, pads), rtol=1e-10)
    assert ax.get_output_shape(model, x) == y.shape == (2, 2, 3, 4)


def test_conv_channels_first_matches_functional_and_loops():
    x = rng.standard_normal((2, 3, 5, 5))
    model = one_layer(conv_nn.conv(2, (3, 3), strides=2, padding=1, channels="first"), x.shape)
    state = randomized(model, x)
    assert shapes(state, "conv_0") == {"kernel": (2, 3, 3, 3), "bias": (2,)}
    p = state["conv_0"]
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, conv_fn(x, p["kernel"], p["bias"], strides=2, padding=1,
                                          channels="first"), rtol=1e-12)
    np.testing.assert_allclose(y, ref_conv2d_first(x, p["kernel"], p["bias"], 2, 1), rtol=1e-10)
    assert y.shape == ax.get_output_shape(model, x) == (2, 2, 3, 3)


def test_conv_groups_dilations_activation_and_no_bias():
    x = rng.standard_normal((2, 6, 4))
    model = one_layer(conv_nn.conv(6, 2, input_dilation=2, kernel_dilation=2, padding="same",
                                   feature_group_count=2, activation="tanh", use_bias=False),
                      x.shape)
    state = randomized(model, x)
    assert shapes(state, "conv_0") == {"kernel": (2, 2, 6)}
    k = state["conv_0"]["kernel"]
    y = ax.predict(model, state, x)
    expected = np.tanh(conv_fn(x, k, strides=1, padding="same", input_dilation=2,
                               kernel_dilation=2, feature_group_count=2))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # "same" on the dilated input (11 long) with a dilated kernel (extent 3): pad (1, 1)
    np.testing.assert_allclose(y, np.tanh(ref_conv_last(x, k, None, 1, [(1, 1)], 2, 2, 2)),
                               rtol=1e-10)
    assert y.shape == (2, 11, 6)


@pytest.mark.parametrize("shape, kernel_size, out, kernel", [
    ((2, 5, 2), 3, (1, 3, 3), (3, 2, 3)),
    ((2, 4, 5, 2), (2, 3), (1, 3, 3, 3), (2, 3, 2, 3)),
    ((2, 4, 4, 4, 2), 2, (1, 3, 3, 3, 3), (2, 2, 2, 2, 3)),
])
def test_conv_rank_follows_the_input_and_grads(shape, kernel_size, out, kernel):
    model = ax.input("x", shape=(None, *shape[1:])) >> conv_nn.conv(3, kernel_size)
    assert ax.get_output_shape(model) == out
    assert ax.init(model)["conv_0"]["kernel"].shape == kernel
    check_model_grads(model, rng.standard_normal(shape))


def test_conv_default_initializer_uses_the_layout_fans():
    # glorot-uniform bound sqrt(6 / (fan_in + fan_out)); fans = channels * receptive field
    last = ax.init(one_layer(conv_nn.conv(8, 3), (1, 5, 5, 4)))["conv_0"]
    first = ax.init(one_layer(conv_nn.conv(8, 3, channels="first"), (1, 4, 5, 5)))["conv_0"]
    bound = np.sqrt(6 / (4 * 9 + 8 * 9))
    for params in (last, first):
        assert 0.9 * bound < np.abs(params["kernel"]).max() <= bound
        np.testing.assert_array_equal(params["bias"], np.zeros(8))
    custom = ax.init(one_layer(conv_nn.conv(2, kernel_initializer=ax.initializers.ones(),
                                            bias_initializer=ax.initializers.full(0.5)),
                               (1, 3, 2)))["conv_0"]
    np.testing.assert_array_equal(custom["kernel"], np.ones((1, 2, 2)))
    np.testing.assert_array_equal(custom["bias"], np.full(2, 0.5))


# conv_transpose ----------------------------------------------------------------------------------


def test_conv_transpose_matches_functional_and_loops():
    x = rng.standard_normal((2, 3, 3, 2))
    model = one_layer(conv_nn.conv_transpose(3, 3, strides=2), x.shape)
    state = randomized(model, x)
    assert shapes(state, "conv_transpose_0") == {"kernel": (3, 3, 2, 3), "bias": (3,)}
    p = state["conv_transpose_0"]
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, conv_transpose_fn(x, p["kernel"], p["bias"], strides=2),
                               rtol=1e-12)
    np.testing.assert_allclose(y, ref_conv_transpose2d_last(x, p["kernel"], p["bias"], 2),
                               rtol=1e-10)
    assert y.shape == ax.get_output_shape(model, x) == (2, 7, 7, 3)
    check_model_grads(model, x)


def test_conv_transpose_channels_first_same_padding_and_grads():
    x = rng.standard_normal((2, 2, 3, 3))
    model = one_layer(conv_nn.conv_transpose(3, 2, strides=2, padding="same", channels="first",
                                             activation="relu"), x.shape)
    state = randomized(model, x)
    p = state["conv_transpose_0"]
    assert shapes(state, "conv_transpose_0") == {"kernel": (2, 3, 2, 2), "bias": (3,)}
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, np.maximum(conv_transpose_fn(
        x, p["kernel"], p["bias"], strides=2, padding="same", channels="first"), 0), rtol=1e-12)
    # the channels-first layer equals the channels-last one on transposed data and kernel
    last = conv_transpose_fn(x.transpose(0, 2, 3, 1), p["kernel"].transpose(2, 3, 0, 1),
                             p["bias"], strides=2, padding="same")
    np.testing.assert_allclose(y, np.maximum(last, 0).transpose(0, 3, 1, 2), rtol=1e-12)
    assert ax.get_output_shape(model, x) == (2, 3, 6, 6)
    check_model_grads(one_layer(conv_nn.conv_transpose(2, 2, strides=2, padding="same",
                                                       channels="first"), x.shape), x)


# depthwise_conv ----------------------------------------------------------------------------------


def test_depthwise_conv_matches_functional_and_loops():
    x = rng.standard_normal((2, 5, 4, 3))
    model = one_layer(conv_nn.depthwise_conv(2, (3, 2), strides=(1, 2), padding="same"), x.shape)
    state = randomized(model, x)
    assert shapes(state, "depthwise_conv_0") == {"kernel": (3, 2, 1, 6), "bias": (6,)}
    p = state["depthwise_conv_0"]
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, depthwise_conv_fn(x, p["kernel"], p["bias"], strides=(1, 2),
                                                    padding="same"), rtol=1e-12)
    # output channel c * 2 + j reads input channel c only
    out = np.zeros((2, 5, 2, 6))
    xp = np.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)])  # "same": H (1, 1), W: 2 at stride 2: none
    for n, i, j, c, m in itertools.product(range(2), range(5), range(2), range(3), range(2)):
        f = c * 2 + m
        out[n, i, j, f] = p["bias"][f] + sum(xp[n, i + a, j * 2 + d, c] * p["kernel"][a, d, 0, f]
                                             for a in range(3) for d in range(2))
    np.testing.assert_allclose(y, out, rtol=1e-10)
    assert y.shape == ax.get_output_shape(model, x)
    check_model_grads(model, x)


def test_depthwise_conv_channels_first_and_input_dilation():
    x = rng.standard_normal((2, 2, 4))
    model = one_layer(conv_nn.depthwise_conv(2, 2, channels="first", input_dilation=2), x.shape)
    state = randomized(model, x)
    p = state["depthwise_conv_0"]
    assert shapes(state, "depthwise_conv_0") == {"kernel": (4, 1, 2), "bias": (4,)}
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, conv_fn(x, p["kernel"], p["bias"], input_dilation=2,
                                          feature_group_count=2, channels="first"), rtol=1e-12)
    ref = ref_conv_last(x.transpose(0, 2, 1), p["kernel"].transpose(2, 1, 0), p["bias"], 1,
                        [(0, 0)], input_dilation=2, groups=2)
    np.testing.assert_allclose(y, ref.transpose(0, 2, 1), rtol=1e-10)
    check_model_grads(model, x)


# separable convolutions --------------------------------------------------------------------------


def test_separable_conv2d_matches_functional_and_loops():
    x = rng.standard_normal((2, 5, 4, 2))
    model = one_layer(conv_nn.separable_conv2d(2, (3, 2)), x.shape)
    state = randomized(model, x)
    assert shapes(state, "separable_conv2d_0") == {
        "kernel_1": (3, 1, 1, 4), "bias_1": (4,), "kernel_2": (1, 2, 1, 4), "bias_2": (4,)}
    p = state["separable_conv2d_0"]
    y = ax.predict(model, state, x)
    np.testing.assert_allclose(y, separable_conv2d_fn(x, p["kernel_1"], p["bias_1"],
                                                      p["kernel_2"], p["bias_2"]), rtol=1e-12)
    # a (3, 1) depthwise convolution with multiplier 2, then a (1, 2) one with multiplier 1
    mid = ref_conv_last(x, p["kernel_1"], p["bias_1"], 1, [(0, 0)] * 2, groups=2)
    ref = ref_conv_last(mid, p["kernel_2"], p["bias_2"], 1, [(0, 0)] * 2, groups=4)
    np.testing.assert_allclose(y, ref, rtol=1e-10)
    assert y.shape == ax.get_output_shape(model, x) == (2, 3, 3, 4)
    check_model_grads(model, x)


def test_separable_conv2d_channels_first_no_bias():
    x = rng.standard_normal((2, 2, 4, 4))
    model = one_layer(conv_nn.separable_conv2d(1, 3, padding="same", channels="first",
                                               use_bias=False), x.shape)
    state = randomized(model, x)
    assert shapes(state, "separable_conv2d_0") == {"kernel_1": (2, 1, 3, 1),
                                                   "kernel_2": (2, 1, 1, 3)}
    p = state["separable_conv2d_0"]
    np.testing.assert_allclose(ax.predict(model, state, x), separable_conv2d_fn(
        x, p["kernel_1"], None, p["kernel_2"], None, padding="same", channels="first"),
        rtol=1e-12)
    check_model_grads(model, x)


def test_separable_conv3d_matches_functional_and_grads():
    x = rng.standard_normal((2, 4, 3, 4, 2))
    model = one_layer(conv_nn.separable_conv3d(1, (2, 3, 2), activation="sigmoid"), x.shape)
    state = randomized(model, x)
    assert shapes(state, "separable_conv3d_0") == {
        "kernel_1": (2, 1, 1, 1, 2), "bias_1": (2,), "kernel_2": (1, 3, 1, 1, 2),
        "bias_2": (2,), "kernel_3": (1, 1, 2, 1, 2), "bias_3": (2,)}
    p = state["separable_conv3d_0"]
    y = ax.predict(model, state, x)
    expected = separable_conv3d_fn(x, p["kernel_1"], p["bias_1"], p["kernel_2"], p["bias_2"],
                                   p["kernel_3"], p["bias_3"])
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-expected)), rtol=1e-12)
    assert y.shape == ax.get_output_shape(model, x) == (2, 3, 1, 3, 2)
    check_model_grads(model, x)


# A small model and layer composition -------------------------------------------------------------


def test_lenet_style_model_builds_inits_predicts_and_differentiates():
    x = rng.standard_normal((2, 8, 8, 1))
    model = (ax.input("image", shape=(None, 8, 8, 1)) >> conv_nn.conv(4, 3) >> ax.relu()
             >> pooling_nn.max_pool(2) >> shape_nn.flatten() >> ax.dense(3))
    assert ax.get_output_shape(model) == (1, 3)
    state = ax.init(model, x, key=0)
    assert shapes(state, "conv_0") == {"kernel": (3, 3, 1, 4), "bias": (4,)}
    assert shapes(state, "dense_0") == {"kernel": (36, 3), "bias": (3,)}
    y = ax.predict(model, state, x)
    assert y.shape == (2, 3) and np.isfinite(y).all()

    def loss(trainable):
        return ax.ops.sum(ax.predict(model, state.replace(trainable=trainable), x) ** 2)

    grads = ax.grad(loss)(state.trainable)
    assert {k: v.shape for k, v in grads["conv_0"].items()} == shapes(state, "conv_0")
    assert np.abs(grads["conv_0"]["kernel"]).sum() > 0
    check_model_grads(model, x, wrt_input=False)


def test_layers_compose_with_pipelines_and_names():
    block = conv_nn.conv(2, 3, padding="same", name="c1") >> conv_nn.depthwise_conv(
        1, 3, name="d1")
    model = ax.input("x", shape=(None, 6, 6, 1)) >> block
    assert ax.get_output_shape(model) == (1, 4, 4, 2)
    assert sorted(ax.init(model).trainable) == ["c1", "d1"]
    assert repr(conv_nn.conv(2, 3, padding="same")) == "conv(2, 3, padding='same')"


# Errors ------------------------------------------------------------------------------------------


def test_conv_on_a_rank_2_input_names_the_layer_and_the_shape():
    model = ax.input("x", shape=(None, 4)) >> conv_nn.conv(2, 3)
    with pytest.raises(ax.ShapeError, match=r"conv.*rank >= 3.*\(1, 4\)"):
        ax.init(model)
    with pytest.raises(ax.ShapeError, match=r"conv_transpose.*\(1, 4\)"):
        ax.init(ax.input("x", shape=(None, 4)) >> conv_nn.conv_transpose(2))
    with pytest.raises(ax.ShapeError, match=r"separable_conv2d.*rank 4.*\(1, 5, 3\)"):
        ax.init(ax.input("x", shape=(None, 5, 3)) >> conv_nn.separable_conv2d(1, 3))


@pytest.mark.parametrize("make, message", [
    (lambda: conv_nn.conv(2, 3, padding="full"),
     r"conv: `padding` expected 'valid', 'same'.*'full'"),
    (lambda: conv_nn.conv(2, 3, padding=[(1, "a")]), r"conv: `padding`"),
    (lambda: conv_nn.conv(0, 3), r"conv: `filters` must be a positive int, got 0"),
    (lambda: conv_nn.conv(2, (3, 0)), r"conv: `kernel_size` expected .*positive.*\(3, 0\)"),
    (lambda: conv_nn.conv(2, strides=0), r"conv: `strides`"),
    (lambda: conv_nn.conv(2, channels="NHWC"), r"conv: `channels` expected 'last' or 'first'"),
    (lambda: conv_nn.conv(3, feature_group_count=2), r"conv: `filters` expected a multiple"),
    (lambda: conv_nn.conv(2, activation="nope"), r"conv: unknown activation 'nope'"),
    (lambda: conv_nn.conv_transpose(2, kernel_dilation=-1), r"conv_transpose: `kernel_dilation`"),
    (lambda: conv_nn.depthwise_conv(0), r"depthwise_conv: `channel_multiplier`"),
    (lambda: conv_nn.separable_conv2d(1, (3, 3, 3)), r"separable_conv2d: `kernel_size` expected "
                                                     r"an int or 2 ints"),
    (lambda: conv_nn.separable_conv3d(1, input_dilation=2), r"separable_conv3d: .*input_dilation"),
])
def test_bad_options_fail_when_written(make, message):
    with pytest.raises((ax.InvalidArgumentError, ax.AxonTypeError), match=message):
        make()


def test_bad_types_and_input_mismatches():
    with pytest.raises(ax.AxonTypeError, match=r"conv: `use_bias` expected True or False"):
        conv_nn.conv(2, use_bias="yes")
    with pytest.raises(ax.AxonTypeError, match=r"conv: `kernel_initializer` expected a function"):
        conv_nn.conv(2, kernel_initializer="glorot")
    x = ax.input("x", shape=(None, 5, 5, 3))
    with pytest.raises(ax.InvalidArgumentError, match=r"conv: `padding`"):
        conv_nn.conv(x, 2, padding="full")  # applied form checks too
    with pytest.raises(ax.ShapeError, match=r"'conv_0'.*conv: `kernel_size` \(3, 3, 3\) asks "
                                            r"for a 3-d layer but the input of shape "
                                            r"\(1, 5, 5, 3\) has 2 spatial axes"):
        ax.init(x >> conv_nn.conv(2, (3, 3, 3)))
    with pytest.raises(ax.ShapeError, match=r"feature_group_count 2, got shape \(1, 5, 5, 3\)"):
        ax.init(x >> conv_nn.conv(4, feature_group_count=2))
    with pytest.raises(ax.ShapeError, match=r"conv_0.*strides"):
        ax.init(x >> conv_nn.conv(2, strides=(1, 1, 1)))


def test_a_tuple_size_reveals_the_rank_and_a_missing_channel_axis_is_named():
    x = ax.input("x", shape=(None, 28, 28))
    hint = r"seems to have no channel axis: add one, e.g. x >> axon_fn.reshape\(\(28, 28, 1\)\)"
    for layer in (conv_nn.conv(4, (3, 3)), conv_nn.conv(4, 3, strides=(2, 2)),
                  conv_nn.depthwise_conv(2, (3, 3)), conv_nn.conv_transpose(4, (3, 3))):
        with pytest.raises(ax.ShapeError, match=r"asks for a 2-d layer but the input of shape "
                                                r"\(1, 28, 28\) has 1 spatial axis .*" + hint):
            ax.init(x >> layer)
    with pytest.raises(ax.ShapeError, match=hint):
        ax.init(x >> ax.max_pool((2, 2)))
    # a bare int keeps the 1-d reading: length 28, 28 channels
    assert ax.get_output_shape(x >> conv_nn.conv(4, 3)) == (1, 26, 4)
    assert ax.get_output_shape(ax.input("x", shape=(None, 28, 28, 1))
                               >> conv_nn.conv(4, (3, 3))) == (1, 26, 26, 4)
