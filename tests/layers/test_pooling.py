import math

import numpy as np
import pytest

from axon_fn import AbstractArray, InvalidArgumentError, ShapeError, eval_shape
from axon_fn.layers.pooling import (
    adaptive_avg_pool, adaptive_lp_pool, adaptive_max_pool, avg_pool, global_avg_pool,
    global_lp_pool, global_max_pool, lp_pool, max_pool,
)
from axon_fn.testing import check_grads

rng = np.random.default_rng(3)


def to_first(a):
    return np.moveaxis(a, -1, 1)


# Loop references, channels last ------------------------------------------------------------------


def ref_pool(x, window, strides, pads, reduce, fill):
    """``reduce`` over each window of ``x`` padded with ``fill``; returns values and counts."""
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=fill)
    real = np.pad(np.ones(x.shape[1:-1]), list(pads))
    out_sp = [(p - k) // s + 1 for p, k, s in zip(xp.shape[1:-1], window, strides)]
    out = np.zeros((x.shape[0],) + tuple(out_sp) + (x.shape[-1],))
    counts = np.zeros(out_sp)
    for o in np.ndindex(*out_sp):
        index = tuple(slice(i * s, i * s + k) for i, s, k in zip(o, strides, window))
        block = xp[(slice(None),) + index]
        out[(slice(None),) + o] = reduce(block.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
        counts[o] = real[index].sum()
    return out, counts


def ref_adaptive(x, out_size, reduce):
    """PyTorch's adaptive windows [floor(i * S / O), ceil((i + 1) * S / O)) on every axis."""
    spatial = x.shape[1:-1]
    bounds = [[(math.floor(i * s / o), math.ceil((i + 1) * s / o)) for i in range(o)]
              for s, o in zip(spatial, out_size)]
    out = np.zeros((x.shape[0],) + tuple(out_size) + (x.shape[-1],))
    for o in np.ndindex(*out_size):
        index = tuple(slice(*bounds[d][i]) for d, i in enumerate(o))
        block = x[(slice(None),) + index]
        out[(slice(None),) + o] = reduce(block.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
    return out


def _lp(p):
    return lambda block, axis: (block ** p).sum(axis=axis) ** (1 / p)


# Windowed pooling --------------------------------------------------------------------------------


def test_max_pool_matches_loops():
    x = rng.standard_normal((2, 5, 6, 3))
    np.testing.assert_array_equal(max_pool(x, window=2), ref_pool(x, (2, 2), (2, 2),
                                                                  ((0, 0),) * 2, np.max, 0)[0])
    y = max_pool(x, window=(3, 2), strides=(1, 2), padding=((1, 1), (0, 1)))
    expected = ref_pool(x, (3, 2), (1, 2), ((1, 1), (0, 1)), np.max, -np.inf)[0]
    np.testing.assert_array_equal(y, expected)
    yf = max_pool(to_first(x), window=(3, 2), strides=(1, 2), padding=((1, 1), (0, 1)),
                  channels="first")
    np.testing.assert_array_equal(yf, to_first(expected))


def test_avg_pool_matches_loops():
    x = rng.standard_normal((2, 5, 3))
    pads = ((1, 1),)
    total, counts = ref_pool(x, (3,), (2,), pads, np.sum, 0.0)
    np.testing.assert_allclose(avg_pool(x, window=3, strides=2, padding=1), total / 3,
                               rtol=1e-12)
    y = avg_pool(to_first(x), window=3, strides=2, padding=1, count_include_pad=False,
                 channels="first")
    np.testing.assert_allclose(y, to_first(total / counts[:, None]), rtol=1e-12)


@pytest.mark.parametrize("norm", [1, 2, 3.5])
def test_lp_pool_is_a_power_sum(norm):
    x = rng.random((2, 6, 5, 2)) + 0.1
    y = lp_pool(x, norm=norm, window=(2, 3), strides=(2, 1))
    expected = ref_pool(x, (2, 3), (2, 1), ((0, 0),) * 2, _lp(norm), 0.0)[0]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    yf = lp_pool(to_first(x), norm=norm, window=(2, 3), strides=(2, 1), channels="first")
    np.testing.assert_allclose(yf, to_first(expected), rtol=1e-12)


def test_lp_pool_known_value_and_padding():
    # PyTorch LPPool1d(2, 2) on [3, 4, 6, 8] is [5, 10]; zero padding adds nothing to the sum.
    x = np.array([[[3.0], [4.0], [6.0], [8.0]]])
    np.testing.assert_allclose(lp_pool(x, window=2)[0, :, 0], [5.0, 10.0])
    np.testing.assert_allclose(lp_pool(x, window=2, padding=((1, 1),))[0, :, 0],
                               [3.0, np.hypot(4, 6), 8.0])


def test_windowed_pool_grads():
    x = rng.standard_normal((2, 4, 4, 2))
    check_grads(lambda x: max_pool(x, window=2, channels="first"), x)
    check_grads(lambda x: avg_pool(x, window=3, strides=1, padding="same",
                                   count_include_pad=False), x)
    check_grads(lambda x: lp_pool(x, norm=3, window=2), rng.random((2, 4, 4, 2)) + 0.5)


def test_windowed_pool_errors():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ShapeError, match=r"layers\.max_pool: `window` expected 2 entries.*"
                                         r"\(2, 2, 2\)"):
        max_pool(x, window=(2, 2, 2))
    with pytest.raises(InvalidArgumentError, match=r"layers\.avg_pool: `window` must hold ints "
                                                   r">= 1, got 0"):
        avg_pool(x, window=0)
    with pytest.raises(ShapeError, match=r"layers\.max_pool: `x` expected rank >= 3.*\(4, 2\)"):
        max_pool(np.ones((4, 2)), window=2)
    with pytest.raises(ShapeError, match=r"layers\.avg_pool: .*window"):  # window > input
        avg_pool(x, window=5)
    with pytest.raises(InvalidArgumentError, match=r"layers\.lp_pool: `norm` must be a finite "
                                                   r"number > 0, got 0"):
        lp_pool(x, norm=0, window=2)
    with pytest.raises(InvalidArgumentError, match=r"layers\.max_pool: `channels`"):
        max_pool(x, window=2, channels="NCHW")


# Adaptive pooling --------------------------------------------------------------------------------


def test_adaptive_avg_pool_known_pytorch_values():
    # torch.nn.AdaptiveAvgPool1d(3)([1, 2, 3, 4, 5]): windows [0, 2), [1, 4), [3, 5).
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    np.testing.assert_allclose(adaptive_avg_pool(x, output_size=3)[0, :, 0], [1.5, 3.0, 4.5])
    np.testing.assert_allclose(adaptive_max_pool(x, output_size=3)[0, :, 0], [2.0, 4.0, 5.0])


@pytest.mark.parametrize("out_size", [(2, 3), (3, 4), (6, 1), (4, 5)])
def test_adaptive_pools_match_loops(out_size):
    x = rng.random((2, 6, 4, 3)) + 0.1  # (6, 1) divides; (4, 5) upsamples W
    np.testing.assert_allclose(adaptive_avg_pool(x, output_size=out_size),
                               ref_adaptive(x, out_size, np.mean), rtol=1e-12)
    np.testing.assert_array_equal(adaptive_max_pool(x, output_size=out_size),
                                  ref_adaptive(x, out_size, np.max))
    np.testing.assert_allclose(adaptive_lp_pool(x, norm=3, output_size=out_size),
                               ref_adaptive(x, out_size, _lp(3)), rtol=1e-12)


def test_adaptive_pools_channels_first_int_size_and_none():
    x = rng.standard_normal((2, 7, 5, 3))
    expected = ref_adaptive(x, (3, 3), np.mean)
    np.testing.assert_allclose(adaptive_avg_pool(to_first(x), output_size=3, channels="first"),
                               to_first(expected), rtol=1e-12)
    y = adaptive_max_pool(to_first(x), output_size=(None, 2), channels="first")
    np.testing.assert_array_equal(y, to_first(ref_adaptive(x, (7, 2), np.max)))
    y = adaptive_lp_pool(to_first(x), output_size=(2, 2), channels="first")
    np.testing.assert_allclose(y, to_first(ref_adaptive(x, (2, 2), _lp(2))), rtol=1e-12)


def test_adaptive_pool_grads():
    x = rng.standard_normal((2, 5, 4, 2))
    check_grads(lambda x: adaptive_avg_pool(x, output_size=(3, 2)), x)
    check_grads(lambda x: adaptive_max_pool(x, output_size=(2, 3), channels="first"), x)
    check_grads(lambda x: adaptive_lp_pool(x, output_size=(3, 3)), rng.random((2, 5, 4, 2)) + .5)


def test_adaptive_pool_errors():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ShapeError, match=r"layers\.adaptive_avg_pool: `output_size` expected 2 "
                                         r"entries.*\(2,\)"):
        adaptive_avg_pool(x, output_size=(2,))
    with pytest.raises(InvalidArgumentError, match=r"layers\.adaptive_max_pool: `output_size` "
                                                   r"must hold ints >= 1"):
        adaptive_max_pool(x, output_size=(2, 0))
    with pytest.raises(InvalidArgumentError, match=r"layers\.adaptive_lp_pool: `norm`"):
        adaptive_lp_pool(x, norm=-1, output_size=2)
    with pytest.raises(ShapeError, match=r"layers\.adaptive_lp_pool: `x` expected rank >= 3"):
        adaptive_lp_pool(np.ones(3), output_size=2)


# Global pooling ----------------------------------------------------------------------------------


def test_global_pools():
    x = rng.random((2, 3, 4, 5)) + 0.1
    np.testing.assert_allclose(global_avg_pool(x), x.mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(global_max_pool(x), x.max(axis=(1, 2)))
    np.testing.assert_allclose(global_lp_pool(x, norm=3),
                               ((x ** 3).sum(axis=(1, 2))) ** (1 / 3), rtol=1e-12)
    kept = global_avg_pool(x, keep_axes=True)
    assert kept.shape == (2, 1, 1, 5)
    np.testing.assert_allclose(kept[:, 0, 0], x.mean(axis=(1, 2)), rtol=1e-12)
    xf = to_first(x)  # (2, 5, 3, 4)
    yf = global_max_pool(xf, keep_axes=True, channels="first")
    assert yf.shape == (2, 5, 1, 1)
    np.testing.assert_array_equal(yf[:, :, 0, 0], x.max(axis=(1, 2)))
    np.testing.assert_allclose(global_lp_pool(xf, channels="first"),
                               np.sqrt((x ** 2).sum(axis=(1, 2))), rtol=1e-12)


def test_global_pool_grads_and_errors():
    x = rng.standard_normal((2, 3, 3, 2))
    check_grads(lambda x: global_avg_pool(x, keep_axes=True), x)
    check_grads(lambda x: global_max_pool(x, channels="first"), x)
    check_grads(lambda x: global_lp_pool(x, norm=2), x)
    with pytest.raises(ShapeError, match=r"layers\.global_avg_pool: `x` expected rank >= 3.*"
                                         r"got shape \(2, 3\)"):
        global_avg_pool(np.ones((2, 3)))
    with pytest.raises(InvalidArgumentError, match=r"layers\.global_lp_pool: `norm`.*inf"):
        global_lp_pool(x, norm=math.inf)


# eval_shape --------------------------------------------------------------------------------------


def test_eval_shape_every_pooling_layer():
    x = AbstractArray((8, 9, 7, 3))
    xf = AbstractArray((8, 3, 9, 7))
    cases = [
        (lambda x: max_pool(x, window=2), x, (8, 4, 3, 3)),
        (lambda x: avg_pool(x, window=3, strides=1, padding="same"), x, (8, 9, 7, 3)),
        (lambda x: lp_pool(x, window=2, channels="first"), xf, (8, 3, 4, 3)),
        (lambda x: adaptive_avg_pool(x, output_size=(4, 3)), x, (8, 4, 3, 3)),
        (lambda x: adaptive_max_pool(x, output_size=2, channels="first"), xf, (8, 3, 2, 2)),
        (lambda x: adaptive_lp_pool(x, output_size=(5, None)), x, (8, 5, 7, 3)),
        (lambda x: global_avg_pool(x), x, (8, 3)),
        (lambda x: global_max_pool(x, keep_axes=True), x, (8, 1, 1, 3)),
        (lambda x: global_lp_pool(x, keep_axes=True, channels="first"), xf, (8, 3, 1, 1)),
    ]
    for fn, arg, shape in cases:
        assert eval_shape(fn, arg).shape == shape
