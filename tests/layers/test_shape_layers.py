import math

import numpy as np
import pytest

from axon_fn import AbstractArray, InvalidArgumentError, ShapeError, eval_shape
from axon_fn.layers.shape import flatten, resize
from axon_fn.testing import check_grads

rng = np.random.default_rng(5)


def to_first(a):
    return np.moveaxis(a, -1, 1)


# flatten -----------------------------------------------------------------------------------------


def test_flatten_keeps_the_batch_axis():
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(flatten(x), x.reshape(2, 60))
    np.testing.assert_array_equal(flatten(np.arange(3.0)), [[0.0], [1.0], [2.0]])
    assert eval_shape(flatten, AbstractArray((7, 2, 3))).shape == (7, 6)
    check_grads(flatten, rng.standard_normal((2, 3, 2)))
    with pytest.raises(ShapeError, match=r"layers\.flatten: `x` expected rank >= 1.*shape \(\)"):
        flatten(np.float64(1.0))


# resize: references written per output element -------------------------------------------------


def ref_nearest(x, size):
    """PyTorch mode="nearest": source index floor(dst * in / out), per spatial axis."""
    spatial = x.shape[1:-1]
    out = np.zeros((x.shape[0],) + tuple(size) + (x.shape[-1],))
    for o in np.ndindex(*size):
        src = tuple(math.floor(i * n / m) for i, n, m in zip(o, spatial, size))
        out[(slice(None),) + o] = x[(slice(None),) + src]
    return out


def ref_linear(x, size):
    """PyTorch align_corners=False: every output is a sum over 2**nd corners of products of
    1-d weights (src = (dst + 0.5) * in / out - 0.5, clamped at 0; right index clamped)."""
    spatial = x.shape[1:-1]
    out = np.zeros((x.shape[0],) + tuple(size) + (x.shape[-1],))
    for o in np.ndindex(*size):
        taps = []
        for i, n, m in zip(o, spatial, size):
            src = max((i + 0.5) * n / m - 0.5, 0.0)
            lo = min(int(src), n - 1)
            hi = min(lo + 1, n - 1)
            frac = src - lo
            taps.append(((lo, 1.0 - frac), (hi, frac)))
        for corner in np.ndindex(*(2,) * len(size)):
            idx = tuple(taps[d][c][0] for d, c in enumerate(corner))
            weight = np.prod([taps[d][c][1] for d, c in enumerate(corner)])
            out[(slice(None),) + o] += weight * x[(slice(None),) + idx]
    return out


def test_resize_known_pytorch_values():
    # F.interpolate(torch.tensor([[[1., 2., 3., 4.]]]), size=8, mode="linear")
    x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    np.testing.assert_allclose(resize(x, size=8, method="linear")[0, :, 0],
                               [1.0, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.0], rtol=1e-12)
    np.testing.assert_allclose(resize(x, size=2, method="linear")[0, :, 0], [1.5, 3.5])
    np.testing.assert_array_equal(resize(x, size=6)[0, :, 0], [1, 1, 2, 3, 3, 4])
    np.testing.assert_array_equal(resize(x, size=3)[0, :, 0], [1, 2, 3])


@pytest.mark.parametrize("size", [(7, 3), (2, 8), (4, 5)])
def test_resize_2d_matches_references(size):
    x = rng.standard_normal((2, 4, 5, 3))
    np.testing.assert_array_equal(resize(x, size=size), ref_nearest(x, size))
    np.testing.assert_allclose(resize(x, size=size, method="bilinear"), ref_linear(x, size),
                               rtol=1e-12, atol=1e-14)


def test_resize_3d_channels_first_and_1d():
    x = rng.standard_normal((1, 3, 2, 4, 2))
    size = (5, 3, 6)
    y = resize(to_first(x), size=size, method="trilinear", channels="first")
    np.testing.assert_allclose(y, to_first(ref_linear(x, size)), rtol=1e-12, atol=1e-14)
    y = resize(to_first(x), size=size, channels="first")
    np.testing.assert_array_equal(y, to_first(ref_nearest(x, size)))
    x1 = rng.standard_normal((2, 5, 1))
    np.testing.assert_allclose(resize(x1, size=(9,), method="linear"), ref_linear(x1, (9,)),
                               rtol=1e-12, atol=1e-14)


def test_resize_dtypes():
    x = rng.standard_normal((1, 3, 3, 1)).astype(np.float32)
    assert resize(x, size=5, method="bilinear").dtype == np.float32
    ints = np.arange(4).reshape(1, 4, 1)
    assert resize(ints, size=8).dtype == ints.dtype
    np.testing.assert_allclose(resize(ints, size=2, method="linear")[0, :, 0], [0.5, 2.5])
    assert resize(ints, size=4, method="linear").dtype == np.float64


def test_resize_grads():
    x = rng.standard_normal((2, 3, 4, 2))
    check_grads(lambda x: resize(x, size=(5, 3), method="bilinear"), x)
    check_grads(lambda x: resize(x, size=(2, 6), method="nearest", channels="first"), x)


def test_resize_errors():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(InvalidArgumentError, match=r"layers\.resize: `method` must be one of "
                                                   r"'nearest', 'linear'.*got 'cubic'"):
        resize(x, size=8, method="cubic")
    with pytest.raises(ShapeError, match=r"layers\.resize: `size` expected 2 entries.*"
                                         r"\(4, 4\).*got \(8, 8, 8\)"):
        resize(x, size=(8, 8, 8))
    with pytest.raises(InvalidArgumentError, match=r"layers\.resize: `size` must hold ints >= 1"):
        resize(x, size=(8, 0))
    with pytest.raises(ShapeError, match=r"layers\.resize: `x` expected rank >= 3"):
        resize(np.ones((4, 4)), size=2)
    with pytest.raises(InvalidArgumentError, match=r"layers\.resize: `channels`"):
        resize(x, size=2, channels=-1)


def test_resize_eval_shape():
    assert eval_shape(lambda x: resize(x, size=(7, 9), method="bilinear"),
                      AbstractArray((2, 4, 5, 3))).shape == (2, 7, 9, 3)
    y = eval_shape(lambda x: resize(x, size=3, channels="first"), AbstractArray((2, 3, 4, 5)))
    assert y.shape == (2, 3, 3, 3) and y.dtype == np.float32
