import numpy as np
import pytest

from axon_fn import AbstractArray, InvalidArgumentError, ShapeError, eval_shape
from axon_fn.layers.conv import (
    conv, conv_transpose, depthwise_conv, separable_conv2d, separable_conv3d,
)
from axon_fn.testing import check_grads

rng = np.random.default_rng(7)


def _rand(*shape):
    return rng.standard_normal(shape)


# Loop references, channels last: x (N, *S, Cin), w (*K, Cin // groups, Cout). --------------------


def ref_conv(x, w, strides=None, pads=None, lhs=None, rhs=None, groups=1):
    nd = x.ndim - 2
    strides, lhs, rhs = (v or (1,) * nd for v in (strides, lhs, rhs))
    pads = pads or ((0, 0),) * nd
    dil = np.zeros((x.shape[0],) + tuple((s - 1) * d + 1 for s, d in zip(x.shape[1:-1], lhs))
                   + (x.shape[-1],))
    dil[(slice(None),) + tuple(slice(None, None, d) for d in lhs)] = x
    xp = np.pad(dil, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    ksz, cin_g, cout = w.shape[:-2], w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    extent = [(k - 1) * r + 1 for k, r in zip(ksz, rhs)]
    out_sp = [(p - e) // s + 1 for p, e, s in zip(xp.shape[1:-1], extent, strides)]
    out = np.zeros((x.shape[0],) + tuple(out_sp) + (cout,))
    for o in np.ndindex(*out_sp):
        for k in np.ndindex(*ksz):
            pos = tuple(oi * s + ki * r for oi, ki, s, r in zip(o, k, strides, rhs))
            patch = xp[(slice(None),) + pos]
            for g in range(groups):
                out[(slice(None),) + o + (slice(g * cout_g, (g + 1) * cout_g),)] += (
                    patch[:, g * cin_g:(g + 1) * cin_g] @ w[k][:, g * cout_g:(g + 1) * cout_g])
    return out


def ref_conv_transpose_full(x, w, strides, rhs=None):
    """Scatter: out[i * s + k * r] += x[i] @ w[k], w (*K, Cin, Cout); size (S-1)*s + dilated K."""
    nd = x.ndim - 2
    rhs = rhs or (1,) * nd
    ksz = w.shape[:-2]
    size = [(n - 1) * s + (k - 1) * r + 1 for n, s, k, r in zip(x.shape[1:-1], strides, ksz, rhs)]
    out = np.zeros((x.shape[0],) + tuple(size) + (w.shape[-1],))
    for i in np.ndindex(*x.shape[1:-1]):
        for k in np.ndindex(*ksz):
            pos = tuple(ii * s + kk * r for ii, kk, s, r in zip(i, k, strides, rhs))
            out[(slice(None),) + pos] += x[(slice(None),) + i] @ w[k]
    return out


def to_first(a):
    return np.moveaxis(a, -1, 1)


def kernel_first(w):
    """(*K, A, B) -> (B, A, *K): PyTorch's conv layout from the channels-last one."""
    return np.transpose(w, (w.ndim - 1, w.ndim - 2) + tuple(range(w.ndim - 2)))


# conv --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_matches_loops_with_bias(nd):
    x, w, b = _rand(2, *(5,) * nd, 3), _rand(*(2,) * nd, 3, 4), _rand(4)
    np.testing.assert_allclose(conv(x, w, b), ref_conv(x, w) + b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv(x, w), ref_conv(x, w), rtol=1e-10, atol=1e-12)


def test_conv_strides_padding_dilations_groups():
    x, w, b = _rand(2, 6, 5, 4), _rand(3, 2, 2, 6), _rand(6)
    y = conv(x, w, b, strides=(2, 1), padding=((1, 2), (0, 1)), input_dilation=(1, 2),
             kernel_dilation=(2, 1), feature_group_count=2)
    expected = ref_conv(x, w, (2, 1), ((1, 2), (0, 1)), (1, 2), (2, 1), groups=2) + b
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_conv_same_padding():
    x, w = _rand(1, 7, 2), _rand(4, 2, 3)
    # TF/JAX SAME, stride 2: output ceil(7 / 2) = 4, total pad 3 * 2 + 4 - 7 = 3, odd one high.
    y = conv(x, w, strides=2, padding="same")
    np.testing.assert_allclose(y, ref_conv(x, w, (2,), ((1, 2),)), rtol=1e-10, atol=1e-12)


def test_conv_channels_first():
    x, w, b = _rand(2, 5, 4, 4), _rand(3, 3, 2, 4), _rand(4)
    y = conv(to_first(x), kernel_first(w), b, padding=1, feature_group_count=2, channels="first")
    expected = to_first(ref_conv(x, w, pads=((1, 1), (1, 1)), groups=2) + b)
    assert y.shape == (2, 4, 5, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_conv_grads():
    check_grads(lambda x, w, b: conv(x, w, b, strides=2, padding="same"),
                _rand(2, 4, 4, 2), _rand(2, 2, 2, 3), _rand(3))
    check_grads(lambda x, w, b: conv(x, w, b, padding=1, feature_group_count=2,
                                     channels="first"),
                _rand(2, 2, 5), _rand(4, 1, 3), _rand(4))


def test_conv_float32_preserved():
    y = conv(np.ones((1, 4, 2), np.float32), np.ones((2, 2, 3), np.float32),
             np.zeros(3, np.float32))
    assert y.dtype == np.float32


def test_conv_errors():
    with pytest.raises(ShapeError, match=r"layers\.conv: `bias` expected shape \(4,\).*got "
                                         r"shape \(3,\)"):
        conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), np.ones(3))
    with pytest.raises(ShapeError, match=r"layers\.conv: `kernel` expected .*\(\*kernel_size, "
                                         r"2, Cout\).*got shape \(3, 3, 4\)"):
        conv(np.ones((1, 5, 2)), np.ones((3, 3, 4)))
    with pytest.raises(ShapeError, match=r"layers\.conv: `kernel` expected rank 3.*"
                                         r"got shape \(3, 3, 2, 4\)"):
        conv(np.ones((1, 5, 2)), np.ones((3, 3, 2, 4)))
    with pytest.raises(ShapeError, match=r"layers\.conv: `x` expected rank >= 3.*got shape "
                                         r"\(5, 2\)"):
        conv(np.ones((5, 2)), np.ones((2, 2)))
    with pytest.raises(ShapeError, match=r"layers\.conv: `x` expected channels divisible by "
                                         r"feature_group_count 2"):
        conv(np.ones((1, 5, 3)), np.ones((2, 1, 4)), feature_group_count=2)
    with pytest.raises(ShapeError, match=r"layers\.conv: .*kernel"):  # kernel larger than input
        conv(np.ones((1, 2, 1)), np.ones((3, 1, 1)))
    with pytest.raises(InvalidArgumentError, match=r"layers\.conv: `channels`.*'middle'"):
        conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), channels="middle")
    with pytest.raises(InvalidArgumentError, match=r"layers\.conv: `feature_group_count`"):
        conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), feature_group_count=0)


# conv_transpose ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (3, 1), (2, 2)])
def test_conv_transpose_valid_is_the_scatter(stride, dilation):
    x, w, b = _rand(2, 4, 3), _rand(2, 3, 2), _rand(2)
    full = ref_conv_transpose_full(x, w, (stride,), (dilation,))
    dk = dilation + 1
    extra = max(stride - dk, 0)  # "valid" gives S * s + max(dk - s, 0): zeros past the scatter
    expected = np.pad(full, ((0, 0), (0, extra), (0, 0))) + b
    y = conv_transpose(x, w, b, strides=stride, kernel_dilation=dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_conv_transpose_2d_torch_padding_and_channels_first():
    x, w, b = _rand(2, 3, 2, 2), _rand(3, 2, 2, 3), _rand(3)
    full = ref_conv_transpose_full(x, w, (2, 2))  # (2, 7, 4, 3): the whole scatter
    # PyTorch (padding p, output_padding q) is (dk - 1 - p, dk - 1 - p + q): p=1, q=1 on axis 0
    # (dk 3) and p=0, q=1 on axis 1 (dk 2) are both (1, 2). PyTorch's output: drop p, append q.
    expected = np.pad(full, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:7, 0:5] + b
    y = conv_transpose(x, w, b, strides=2, padding=((1, 2), (1, 2)))
    assert y.shape == (2, (3 - 1) * 2 - 2 + 3 + 1, (2 - 1) * 2 + 2 + 1, 3)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    # Channels first: kernel (Cin, Cout, *K).
    wf = np.transpose(w, (2, 3, 0, 1))
    yf = conv_transpose(to_first(x), wf, b, strides=2, padding=((1, 2), (1, 2)), channels="first")
    np.testing.assert_allclose(yf, to_first(expected), rtol=1e-10, atol=1e-12)


def test_conv_transpose_same_doubles_the_size():
    x, w = _rand(1, 4, 2), _rand(3, 2, 2)
    y = conv_transpose(x, w, strides=2, padding="same")
    assert y.shape == (1, 8, 2)
    # For k=3, s=2 JAX's SAME pads (2, 1): the scatter itself, cut to S * s.
    np.testing.assert_allclose(y, ref_conv_transpose_full(x, w, (2,))[:, :8], rtol=1e-10)


def test_conv_transpose_grads_and_errors():
    check_grads(lambda x, w, b: conv_transpose(x, w, b, strides=2, channels="first"),
                _rand(2, 2, 3), _rand(2, 3, 2), _rand(3))
    with pytest.raises(ShapeError, match=r"layers\.conv_transpose: `kernel` expected layout "
                                         r"\(\*kernel_size, 2, Cout\)"):
        conv_transpose(np.ones((1, 4, 2)), np.ones((2, 3, 2)))
    with pytest.raises(ShapeError, match=r"layers\.conv_transpose: `bias` expected shape \(3,\)"):
        conv_transpose(np.ones((1, 4, 2)), np.ones((2, 2, 3)), np.ones(2))


# depthwise ---------------------------------------------------------------------------------------


def ref_depthwise(x, w, strides=None, pads=None, rhs=None):
    """Per input channel c, output channel c * m + j = conv of x[..., c] with w[..., 0, c*m + j]."""
    c = x.shape[-1]
    m = w.shape[-1] // c
    outs = [ref_conv(x[..., ci:ci + 1], w[..., ci * m:(ci + 1) * m], strides, pads, None, rhs)
            for ci in range(c)]
    return np.concatenate(outs, axis=-1)


def test_depthwise_conv_matches_per_channel_convs():
    x, w, b = _rand(2, 6, 5, 3), _rand(3, 2, 1, 6), _rand(6)
    y = depthwise_conv(x, w, b, strides=(2, 1), padding=((1, 1), (0, 1)), kernel_dilation=(1, 2))
    expected = ref_depthwise(x, w, (2, 1), ((1, 1), (0, 1)), (1, 2)) + b
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    yf = depthwise_conv(to_first(x), kernel_first(w), b, strides=(2, 1),
                        padding=((1, 1), (0, 1)), kernel_dilation=(1, 2), channels="first")
    np.testing.assert_allclose(yf, to_first(expected), rtol=1e-10, atol=1e-12)


def test_depthwise_conv_grads_and_errors():
    check_grads(lambda x, w, b: depthwise_conv(x, w, b, padding="same"),
                _rand(2, 4, 2), _rand(3, 1, 4), _rand(4))
    with pytest.raises(ShapeError, match=r"layers\.depthwise_conv: `kernel` expected layout "
                                         r"\(\*kernel_size, 1, 3 \* multiplier\).*\(3, 1, 4\)"):
        depthwise_conv(np.ones((1, 5, 3)), np.ones((3, 1, 4)))
    with pytest.raises(ShapeError, match=r"layers\.depthwise_conv: `kernel`.*\(3, 2, 6\)"):
        depthwise_conv(np.ones((1, 5, 3)), np.ones((3, 2, 6)))


# separable ---------------------------------------------------------------------------------------


def test_separable_conv2d_is_two_depthwise_convs():
    x = _rand(2, 5, 6, 2)
    k1, b1, k2, b2 = _rand(3, 1, 1, 4), _rand(4), _rand(1, 2, 1, 4), _rand(4)
    y = separable_conv2d(x, k1, b1, k2, b2)
    expected = ref_depthwise(ref_depthwise(x, k1) + b1, k2) + b2
    assert y.shape == (2, 3, 5, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    yf = separable_conv2d(to_first(x), kernel_first(k1), b1, kernel_first(k2), b2,
                          channels="first")
    np.testing.assert_allclose(yf, to_first(expected), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", ["same", ((1, 0), (2, 1))])
def test_separable_conv2d_strides_and_padding_per_axis(padding):
    # Without biases it is one depthwise convolution with the outer-product kernel.
    x, k1, k2 = _rand(1, 7, 6, 2), _rand(3, 1, 1, 4), _rand(1, 3, 1, 4)
    y = separable_conv2d(x, k1, None, k2, None, strides=(2, 3), padding=padding)
    # SAME: H 7 -> 4 (total pad 3 * 2 + 3 - 7 = 2), W 6 -> 2 (total 1 * 3 + 3 - 6 = 0).
    pads = ((1, 1), (0, 0)) if padding == "same" else padding
    expected = ref_depthwise(x, k1 * k2, (2, 3), pads)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_separable_conv3d():
    x = _rand(1, 4, 3, 5, 2)
    ks = [_rand(2, 1, 1, 1, 2), _rand(1, 2, 1, 1, 2), _rand(1, 1, 3, 1, 2)]
    bs = [_rand(2), None, _rand(2)]
    y = separable_conv3d(x, ks[0], bs[0], ks[1], bs[1], ks[2], bs[2], kernel_dilation=(1, 1, 2))
    expected = x
    for k, b in zip(ks, bs):
        expected = ref_depthwise(expected, k, rhs=(1, 1, 2)) + (0 if b is None else b)
    assert y.shape == (1, 3, 2, 1, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    yf = separable_conv3d(to_first(x), *[kernel_first(ks[0]), bs[0], kernel_first(ks[1]), bs[1],
                                         kernel_first(ks[2]), bs[2]],
                          kernel_dilation=(1, 1, 2), channels="first")
    np.testing.assert_allclose(yf, to_first(expected), rtol=1e-10, atol=1e-12)


def test_separable_grads():
    check_grads(lambda x, k1, b1, k2, b2: separable_conv2d(x, k1, b1, k2, b2, padding="same"),
                _rand(2, 3, 3, 2), _rand(2, 1, 1, 2), _rand(2), _rand(1, 2, 1, 2), _rand(2))
    check_grads(lambda x, k1, k2, k3: separable_conv3d(x, k1, None, k2, None, k3, None,
                                                       channels="first"),
                _rand(1, 1, 3, 3, 3), _rand(1, 1, 2, 1, 1), _rand(1, 1, 1, 2, 1),
                _rand(1, 1, 1, 1, 2))


def test_separable_errors():
    x = np.ones((1, 5, 5, 2))
    with pytest.raises(ShapeError, match=r"layers\.separable_conv2d: `k2` expected spatial size "
                                         r"1 on every axis but axis 1: kernel_size \(1, k\), "
                                         r"got shape \(3, 3, 1, 2\)"):
        separable_conv2d(x, np.ones((3, 1, 1, 2)), None, np.ones((3, 3, 1, 2)), None)
    with pytest.raises(ShapeError, match=r"layers\.separable_conv2d: `b1` expected shape \(2,\)"):
        separable_conv2d(x, np.ones((3, 1, 1, 2)), np.ones(3), np.ones((1, 3, 1, 2)), None)
    with pytest.raises(ShapeError, match=r"layers\.separable_conv3d: `x` expected rank 5"):
        separable_conv3d(x, *[np.ones((1, 1, 1, 1, 2)), None] * 3)
    with pytest.raises(ShapeError, match=r"layers\.separable_conv2d: `strides` expected 2 "
                                         r"entries"):
        separable_conv2d(x, np.ones((3, 1, 1, 2)), None, np.ones((1, 3, 1, 2)), None,
                         strides=(1, 1, 1))


# eval_shape --------------------------------------------------------------------------------------


def test_eval_shape_every_conv_layer():
    a = AbstractArray
    x2 = a((8, 9, 9, 3))
    assert eval_shape(lambda x, w, b: conv(x, w, b, strides=2, padding="same"),
                      x2, a((3, 3, 3, 16)), a((16,))).shape == (8, 5, 5, 16)
    assert eval_shape(lambda x, w, b: conv_transpose(x, w, b, strides=2, padding="same",
                                                     channels="first"),
                      a((8, 3, 9, 9)), a((3, 4, 3, 3)), a((4,))).shape == (8, 4, 18, 18)
    assert eval_shape(lambda x, w, b: depthwise_conv(x, w, b), x2, a((3, 3, 1, 6)),
                      a((6,))).shape == (8, 7, 7, 6)
    assert eval_shape(lambda x, k1, b1, k2, b2: separable_conv2d(x, k1, b1, k2, b2, strides=2),
                      x2, a((3, 1, 1, 6)), a((6,)), a((1, 3, 1, 6)), a((6,))).shape == (8, 4, 4, 6)
    y = eval_shape(lambda x, k1, k2, k3: separable_conv3d(x, k1, None, k2, None, k3, None),
                   a((2, 5, 5, 5, 1)), a((2, 1, 1, 1, 1)), a((1, 2, 1, 1, 1)), a((1, 1, 2, 1, 1)))
    assert y.shape == (2, 4, 4, 4, 1) and y.dtype == np.float32
