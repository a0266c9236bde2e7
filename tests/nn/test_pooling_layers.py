"""Graph constructors of the pooling layers (axon_fn.nn.pooling): outputs against the functional
layers and hand-written numpy loops, output shapes, gradients through small models, and
option / shape errors."""

import importlib
import itertools

import numpy as np
import pytest

import axon_fn as ax
from axon_fn.layers import pooling as pooling_fn
from tests.nn.harness import check_model_grads, one_layer, run

pooling_nn = importlib.import_module("axon_fn.nn.pooling")

rng = np.random.default_rng(11)


def predict(layer, x):
    model = one_layer(layer, x.shape)
    y, state = run(model, x)
    assert state.trainable == {} and state.state == {}  # pooling has no parameters
    assert ax.get_output_shape(model, x) == y.shape
    return y


# Windowed pooling --------------------------------------------------------------------------------


def ref_window_pool(x, k, stride, pads, reduce, fill):
    """Channels-last 2-d pooling, one window at a time (padding holds ``fill``)."""
    n_batch, h, w, c = x.shape
    xp = np.full((n_batch, h + sum(pads[0]), w + sum(pads[1]), c), float(fill))
    xp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w] = x
    oh, ow = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    y = np.zeros((n_batch, oh, ow, c))
    for n, i, j, ch in itertools.product(range(n_batch), range(oh), range(ow), range(c)):
        y[n, i, j, ch] = reduce([xp[n, i * stride + a, j * stride + b, ch]
                                 for a in range(k) for b in range(k)])
    return y


def test_max_pool_strided_padded_matches_functional_and_loops():
    x = rng.standard_normal((2, 5, 5, 2))
    pads = [(1, 1), (0, 1)]
    y = predict(pooling_nn.max_pool(3, strides=2, padding=pads), x)
    np.testing.assert_array_equal(y, pooling_fn.max_pool(x, window=3, strides=2, padding=pads))
    np.testing.assert_array_equal(y, ref_window_pool(x, 3, 2, pads, max, -np.inf))
    assert y.shape == (2, 3, 2, 2)


def test_max_pool_defaults_strides_to_the_kernel_size_and_channels_first():
    x = rng.standard_normal((2, 3, 4, 5))
    y = predict(pooling_nn.max_pool((2, 2), channels="first"), x)
    np.testing.assert_array_equal(y, pooling_fn.max_pool(x, window=2, channels="first"))
    np.testing.assert_array_equal(
        y, ref_window_pool(x.transpose(0, 2, 3, 1), 2, 2, [(0, 0)] * 2, max, 0)
        .transpose(0, 3, 1, 2))
    assert y.shape == (2, 3, 2, 2)
    assert predict(pooling_nn.max_pool(1), x).shape == x.shape  # Axon's default kernel_size 1


def test_avg_pool_matches_functional_and_loops():
    x = rng.standard_normal((2, 4, 5, 3))
    y = predict(pooling_nn.avg_pool(2), x)
    np.testing.assert_allclose(y, pooling_fn.avg_pool(x, window=2), rtol=1e-12)
    np.testing.assert_allclose(y, ref_window_pool(x, 2, 2, [(0, 0)] * 2, np.mean, 0),
                               rtol=1e-12)
    y = predict(pooling_nn.avg_pool(3, strides=1, padding="same", count_include_pad=False), x)
    np.testing.assert_allclose(y, pooling_fn.avg_pool(x, window=3, strides=1, padding="same",
                                                      count_include_pad=False), rtol=1e-12)
    assert y.shape == x.shape


def test_lp_pool_matches_functional_and_loops():
    x = rng.uniform(0.5, 2.0, (2, 4, 4, 2))
    y = predict(pooling_nn.lp_pool(2, norm=3), x)
    np.testing.assert_allclose(y, pooling_fn.lp_pool(x, norm=3, window=2), rtol=1e-12)
    ref = ref_window_pool(x, 2, 2, [(0, 0)] * 2, lambda v: sum(e ** 3 for e in v) ** (1 / 3), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    y = predict(pooling_nn.lp_pool(3, strides=(1, 2), padding=1, channels="first"), x)
    np.testing.assert_allclose(y, pooling_fn.lp_pool(x, window=3, strides=(1, 2), padding=1,
                                                     channels="first"), rtol=1e-12)


# Adaptive and global pooling ---------------------------------------------------------------------


def ref_adaptive(x, out, reduce):
    """PyTorch's windows: output i of an axis of size S covers [floor(iS/O), ceil((i+1)S/O))."""
    n_batch, h, w, c = x.shape
    y = np.zeros((n_batch, *out, c))
    for n, i, j, ch in itertools.product(range(n_batch), range(out[0]), range(out[1]), range(c)):
        rows = range(i * h // out[0], -(-(i + 1) * h // out[0]))
        cols = range(j * w // out[1], -(-(j + 1) * w // out[1]))
        y[n, i, j, ch] = reduce([x[n, r, q, ch] for r in rows for q in cols])
    return y


@pytest.mark.parametrize("name, reduce", [
    ("adaptive_avg_pool", np.mean),
    ("adaptive_max_pool", max),
    ("adaptive_lp_pool", lambda v: np.sqrt(sum(e * e for e in v))),
])
def test_adaptive_pools_match_functional_and_loops(name, reduce):
    x = rng.standard_normal((2, 5, 7, 2))
    y = predict(getattr(pooling_nn, name)((3, 2)), x)
    np.testing.assert_allclose(y, getattr(pooling_fn, name)(x, output_size=(3, 2)), rtol=1e-12)
    np.testing.assert_allclose(y, ref_adaptive(x, (3, 2), reduce), rtol=1e-12)
    assert y.shape == (2, 3, 2, 2)
    first = predict(getattr(pooling_nn, name)((None, 3), channels="first"), x)
    np.testing.assert_allclose(first, getattr(pooling_fn, name)(x, output_size=(None, 3),
                                                                channels="first"), rtol=1e-12)
    assert first.shape == (2, 5, 7, 3)


def test_adaptive_lp_pool_norm():
    x = rng.uniform(0.5, 2.0, (2, 6, 2))
    y = predict(pooling_nn.adaptive_lp_pool(4, norm=1.5), x)
    np.testing.assert_allclose(y, pooling_fn.adaptive_lp_pool(x, norm=1.5, output_size=4),
                               rtol=1e-12)


@pytest.mark.parametrize("name, reduce", [
    ("global_avg_pool", np.mean), ("global_max_pool", np.max),
    ("global_lp_pool", lambda v, axis, keepdims: np.sqrt((v ** 2).sum(axis, keepdims=keepdims))),
])
def test_global_pools_match_functional_and_numpy(name, reduce):
    x = rng.standard_normal((2, 3, 4, 2))
    layer = getattr(pooling_nn, name)
    y = predict(layer(), x)
    np.testing.assert_allclose(y, getattr(pooling_fn, name)(x), rtol=1e-12)
    np.testing.assert_allclose(y, reduce(x, axis=(1, 2), keepdims=False), rtol=1e-12)
    assert y.shape == (2, 2)
    y = predict(layer(keep_axes=True, channels="first"), x)
    np.testing.assert_allclose(y, reduce(x, axis=(2, 3), keepdims=True), rtol=1e-12)
    assert y.shape == (2, 3, 1, 1)


def test_global_lp_pool_norm():
    x = rng.uniform(0.5, 2.0, (2, 3, 2))
    y = predict(pooling_nn.global_lp_pool(norm=3), x)
    np.testing.assert_allclose(y, ((x ** 3).sum(1)) ** (1 / 3), rtol=1e-12)


# Gradients and a small model ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", [
    pooling_nn.max_pool(2), pooling_nn.max_pool(3, strides=1, padding="same"),
    pooling_nn.avg_pool(2, strides=1), pooling_nn.avg_pool(3, padding=1, channels="first"),
    pooling_nn.lp_pool(2), pooling_nn.lp_pool(2, norm=3, strides=1),
    pooling_nn.adaptive_avg_pool(3), pooling_nn.adaptive_max_pool((2, 3)),
    pooling_nn.adaptive_lp_pool(3), pooling_nn.global_avg_pool(),
    pooling_nn.global_max_pool(keep_axes=True), pooling_nn.global_lp_pool(channels="first"),
], ids=repr)
def test_every_pooling_layer_grads(layer):
    x = rng.uniform(0.5, 2.0, (2, 4, 5, 2)) * rng.choice([-1, 1], (2, 4, 5, 2))
    if "lp_pool" in repr(layer) and "norm=3" in repr(layer):
        x = np.abs(x)
    check_model_grads(one_layer(layer, x.shape), x)


def test_pooling_inside_a_model_with_parameters():
    x = rng.standard_normal((2, 5, 5, 2))
    model = (ax.input("x", shape=(None, 5, 5, 2)) >> ax.dense(3) >> pooling_nn.avg_pool(2)
             >> pooling_nn.global_max_pool() >> ax.dense(1))
    assert ax.get_output_shape(model) == (1, 1)
    check_model_grads(model, x)


# Errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda: pooling_nn.max_pool(0), r"max_pool: `kernel_size` expected a positive int.*got 0"),
    (lambda: pooling_nn.max_pool(2, padding="full"), r"max_pool: `padding` expected.*'full'"),
    (lambda: pooling_nn.avg_pool(2, strides=(1, 0)), r"avg_pool: `strides` expected None, a "
                                                     r"positive int.*\(1, 0\)"),
    (lambda: pooling_nn.avg_pool(2, count_include_pad=None), r"avg_pool: `count_include_pad`"),
    (lambda: pooling_nn.lp_pool(2, norm=0), r"lp_pool: `norm` expected a finite number > 0"),
    (lambda: pooling_nn.lp_pool(2, norm="2"), r"lp_pool: `norm`"),
    (lambda: pooling_nn.adaptive_avg_pool(0), r"adaptive_avg_pool: `output_size` expected"),
    (lambda: pooling_nn.adaptive_max_pool((2, "a")), r"adaptive_max_pool: `output_size`"),
    (lambda: pooling_nn.adaptive_lp_pool(2, norm=float("inf")), r"adaptive_lp_pool: `norm`"),
    (lambda: pooling_nn.global_avg_pool(keep_axes="yes"), r"global_avg_pool: `keep_axes`"),
    (lambda: pooling_nn.global_max_pool(channels="NCHW"), r"global_max_pool: `channels`"),
    (lambda: pooling_nn.global_lp_pool(norm=-1), r"global_lp_pool: `norm`"),
    (lambda: pooling_nn.max_pool(2, window=2), r"max_pool: .*window"),
])
def test_bad_options_fail_when_written(make, message):
    with pytest.raises((ax.InvalidArgumentError, ax.AxonTypeError), match=message):
        make()


def test_input_mismatches_name_the_layer_and_the_shape():
    flat = ax.input("x", shape=(None, 4))
    with pytest.raises(ax.ShapeError, match=r"'max_pool_0'.*max_pool: the input `x` expected "
                                            r"rank >= 3.*\(1, 4\)"):
        ax.init(flat >> pooling_nn.max_pool(2))
    with pytest.raises(ax.ShapeError, match=r"'global_avg_pool_0'.*\(1, 4\)"):
        ax.init(flat >> pooling_nn.global_avg_pool())
    image = ax.input("x", shape=(None, 4, 4, 1))
    with pytest.raises(ax.ShapeError, match=r"'avg_pool_0'.*`kernel_size` \(2, 2, 2\) asks "
                                            r"for a 3-d layer .* has 2 spatial axes"):
        ax.init(image >> pooling_nn.avg_pool((2, 2, 2)))
    with pytest.raises(ax.ShapeError,
                       match=r"'adaptive_avg_pool_0'.*`output_size` \(2, 2, 2\) asks for a 3-d"):
        ax.init(image >> pooling_nn.adaptive_avg_pool((2, 2, 2)))
