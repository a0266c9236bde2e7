import numpy as np
import pytest

from axon_fn import InvalidArgumentError, ShapeError
from axon_fn import layers
from axon_fn.testing import check_grads

rng = np.random.default_rng(1)


def _ref_norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def _params(c):
    return rng.standard_normal(c), rng.standard_normal(c)


# batch norm -------------------------------------------------------------------------------------


def test_batch_norm_training_and_running_stats_pytorch_convention():
    x = rng.standard_normal((4, 3, 5)) * 2 + 1  # channels last: 5 channels, n = 12 per channel
    g, b = _params(5)
    rm, rv = rng.standard_normal(5), rng.random(5) + 0.5
    y, nm, nv = layers.batch_norm(x, g, b, rm, rv, training=True, momentum=0.1, epsilon=1e-5)
    np.testing.assert_allclose(y, _ref_norm(x, (0, 1), 1e-5) * g + b, rtol=1e-10, atol=1e-12)
    # PyTorch: running = (1 - momentum) * running + momentum * batch, unbiased variance.
    flat = x.reshape(-1, 5)
    n = flat.shape[0]
    batch_mean = flat.sum(0) / n
    unbiased = ((flat - batch_mean) ** 2).sum(0) / (n - 1)
    np.testing.assert_allclose(nm, 0.9 * rm + 0.1 * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(nv, 0.9 * rv + 0.1 * unbiased, rtol=1e-12)


def test_batch_norm_channels_first():
    x = rng.standard_normal((3, 2, 4))  # channel axis 1
    g, b = _params(2)
    y, nm, nv = layers.batch_norm(x, g, b, np.zeros(2), np.ones(2), training=True,
                                  momentum=0.5, channel_index=1)
    np.testing.assert_allclose(y, _ref_norm(x, (0, 2), 1e-5) * g[:, None] + b[:, None],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nm, 0.5 * x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(nv, 0.5 + 0.5 * x.var(axis=(0, 2), ddof=1), rtol=1e-12)


def test_batch_norm_inference_uses_running_stats():
    x = rng.standard_normal((4, 3))
    g, b = _params(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    y = layers.batch_norm(x, g, b, rm, rv, training=False, epsilon=1e-3)
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-3) * g + b, rtol=1e-12)


def test_batch_norm_float32_preserved():
    x = rng.standard_normal((4, 3)).astype(np.float32)
    p = np.ones(3, np.float32)
    y, nm, nv = layers.batch_norm(x, p, 0 * p, 0 * p, p, training=True)
    assert y.dtype == nm.dtype == nv.dtype == np.float32


@pytest.mark.parametrize("layout", ["channels_last", "channels_first", "strided"])
def test_batch_norm_float32_statistics_match_float64(layout):
    # A float32 sum over the 50,176 values of a channel drifted by 1e-5 to 6e-4 of the data's
    # scale (100 times PyTorch's error); the moments must match float64 to float32 rounding.
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(64, 28, 28, 8)) * 3.0 + 100.0).astype(np.float32)
    axis = 3
    if layout == "channels_first":
        x, axis = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), 1
    elif layout == "strided":
        x, axis = x.transpose(0, 3, 1, 2), 1  # a view: the channel axis has stride 1
    c = x.shape[axis]
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    y, mean, var = layers.batch_norm(x, ones, zeros, zeros, ones, training=True, momentum=1.0,
                                channel_index=axis)
    axes = tuple(i for i in range(4) if i != axis)
    x64 = x.astype(np.float64)
    mean64, var64 = x64.mean(axes), x64.var(axes)
    n = x.size // c
    scale = np.abs(x64).max()
    assert mean.dtype == var.dtype == y.dtype == np.float32
    assert np.max(np.abs(mean - mean64)) / scale < 1e-6
    assert np.max(np.abs(var - var64 * n / (n - 1))) / var64.max() < 1e-6
    shape = [1, 1, 1, 1]
    shape[axis] = c
    y64 = (x64 - mean64.reshape(shape)) / np.sqrt(var64.reshape(shape) + 1e-5)
    assert np.max(np.abs(y - y64)) < 1e-6 * np.abs(y64).max() + 2e-6


def test_batch_norm_grads():
    x = rng.standard_normal((3, 2, 2))
    g, b = _params(2)
    rm, rv = np.zeros(2), np.ones(2)
    check_grads(lambda x, g, b: layers.batch_norm(x, g, b, rm, rv, training=True)[0], x, g, b)
    check_grads(lambda x, g, b: layers.batch_norm(x, g, b, rm, rv, training=False), x, g, b)


def test_batch_norm_errors():
    x = np.ones((2, 3))
    with pytest.raises(ShapeError, match=r"batch_norm.*`gamma`.*\(3,\).*\(2,\)"):
        layers.batch_norm(x, np.ones(2), np.zeros(3), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ShapeError, match=r"batch_norm.*`mean`"):
        layers.batch_norm(x, np.ones(3), np.zeros(3), np.zeros(4), np.ones(3), training=False)
    with pytest.raises(InvalidArgumentError, match=r"batch_norm.*`momentum`.*1.5"):
        layers.batch_norm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), training=True,
                          momentum=1.5)
    with pytest.raises(ShapeError, match="channel_index"):
        layers.batch_norm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), training=True,
                          channel_index=2)


# layer / group / instance / rms -----------------------------------------------------------------


def test_layer_norm():
    x = rng.standard_normal((2, 3, 4))
    g, b = _params(4)
    np.testing.assert_allclose(layers.layer_norm(x, g, b), _ref_norm(x, (-1,), 1e-5) * g + b,
                               rtol=1e-10, atol=1e-12)
    g1, b1 = _params(3)
    np.testing.assert_allclose(layers.layer_norm(x, g1, b1, channel_index=1, epsilon=0.1),
                               _ref_norm(x, (1,), 0.1) * g1[:, None] + b1[:, None], rtol=1e-10)
    check_grads(layers.layer_norm, rng.standard_normal((2, 3)), *_params(3))


def test_group_norm():
    x = rng.standard_normal((2, 3, 6))  # (batch, spatial, channels), 2 groups of 3
    g, b = _params(6)
    ref = _ref_norm(x.reshape(2, 3, 2, 3), (1, 3), 1e-5).reshape(x.shape) * g + b
    np.testing.assert_allclose(layers.group_norm(x, g, b, num_groups=2), ref, rtol=1e-10,
                               atol=1e-12)
    # channels-first with channel_index=1
    xc = np.moveaxis(x, -1, 1)
    yc = layers.group_norm(xc, g, b, num_groups=2, channel_index=1)
    np.testing.assert_allclose(np.moveaxis(yc, 1, -1), ref, rtol=1e-10, atol=1e-12)
    check_grads(lambda x, g, b: layers.group_norm(x, g, b, num_groups=2),
                rng.standard_normal((2, 2, 4)), *_params(4))


def test_group_norm_errors():
    with pytest.raises(ShapeError, match=r"group_norm.*`num_groups`.*6.*num_groups=4"):
        layers.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), num_groups=4)
    with pytest.raises(InvalidArgumentError, match=r"group_norm.*`num_groups`"):
        layers.group_norm(np.ones((2, 6)), np.ones(6), np.zeros(6), num_groups=0)


def test_instance_norm():
    x = rng.standard_normal((2, 3, 4, 5))
    g, b = _params(5)
    np.testing.assert_allclose(layers.instance_norm(x, g, b), _ref_norm(x, (1, 2), 1e-5) * g + b,
                               rtol=1e-10, atol=1e-12)
    check_grads(layers.instance_norm, rng.standard_normal((2, 3, 2)), *_params(2))
    with pytest.raises(ShapeError, match="instance_norm"):
        layers.instance_norm(np.ones((2, 3)), np.ones(3), np.zeros(3))


def test_rms_norm():
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal(4)
    ref = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * g
    np.testing.assert_allclose(layers.rms_norm(x, g), ref, rtol=1e-10)
    check_grads(layers.rms_norm, x, g)
    with pytest.raises(ShapeError, match=r"rms_norm.*`gamma`"):
        layers.rms_norm(x, np.ones(3))
