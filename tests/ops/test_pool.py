"""Pooling: gradients, shape rules, and values against naive loops."""

import doctest

import numpy as np
import pytest

from axon_fn import eval_shape, grad, ops, vjp
from axon_fn._core import AbstractArray
from axon_fn.errors import ShapeError, TracerError
from tests.ops.harness import OpCase, rand, table_tests


def _windows(x, window, strides, pads):
    """Yield (output index, [(input index or None for padding), ...]) in row-major order."""
    spatial = x.shape[1:-1]
    out = [(n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(spatial, window, strides, pads)]
    for o in np.ndindex(*out):
        cells = []
        for k in np.ndindex(*window):
            idx = tuple(a * s + b - lo for a, b, s, (lo, _) in zip(o, k, strides, pads))
            cells.append(idx if all(0 <= i < n for i, n in zip(idx, spatial)) else None)
        yield o, cells


def naive_max_pool(x, window, strides, pads):
    out_shape = [(n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in
                 zip(x.shape[1:-1], window, strides, pads)]
    out = np.full((x.shape[0],) + tuple(out_shape) + (x.shape[-1],), -np.inf)
    for o, cells in _windows(x, window, strides, pads):
        for idx in cells:
            if idx is not None:
                out[(slice(None),) + o] = np.maximum(out[(slice(None),) + o],
                                                     x[(slice(None),) + idx])
    return out


def naive_max_pool_grad(x, g, window, strides, pads):
    """PyTorch's rule: the first maximal element of each window (row-major) takes the gradient."""
    dx = np.zeros(x.shape)
    for o, cells in _windows(x, window, strides, pads):
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                values = [x[(n,) + idx + (c,)] if idx is not None else -np.inf for idx in cells]
                first = cells[int(np.argmax(values))]
                dx[(n,) + first + (c,)] += g[(n,) + o + (c,)]
    return dx


def naive_avg_pool(x, window, strides, pads, count_include_pad=True):
    out_shape = [(n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in
                 zip(x.shape[1:-1], window, strides, pads)]
    out = np.zeros((x.shape[0],) + tuple(out_shape) + (x.shape[-1],))
    for o, cells in _windows(x, window, strides, pads):
        real = [idx for idx in cells if idx is not None]
        total = sum(x[(slice(None),) + idx] for idx in real)
        out[(slice(None),) + o] = total / (len(cells) if count_include_pad else len(real))
    return out


X1 = rand(2, 6, 2, seed=1)
X2 = rand(1, 4, 5, 2, seed=2)
X3 = rand(1, 3, 4, 3, 1, seed=3)
XF = rand(1, 2, 4, 4, seed=4)
POOL_1D = dict(window=(2,), strides=(1,), padding=((1, 0),))

CASES = [
    OpCase("max_pool1d", lambda x: ops.max_pool(x, 2), (X1,)),
    OpCase("max_pool2d_overlapping_same", lambda x: ops.max_pool(x, 3, strides=1, padding="same"),
           (X2,)),
    OpCase("max_pool2d_stride_padding",
           lambda x: ops.max_pool(x, (2, 3), strides=(2, 1), padding=((1, 0), (1, 1))), (X2,)),
    OpCase("max_pool3d", lambda x: ops.max_pool(x, 2, strides=(1, 2, 1)), (X3,)),
    OpCase("max_pool_channels_first",
           lambda x: ops.max_pool(x, 2, strides=1, padding=1, channels="first"), (XF,)),
    OpCase("avg_pool1d", lambda x: ops.avg_pool(x, 3, strides=2), (X1,), order=2),
    OpCase("avg_pool2d_same_exclude_pad",
           lambda x: ops.avg_pool(x, 3, strides=2, padding="same", count_include_pad=False),
           (X2,), order=2),
    OpCase("avg_pool3d", lambda x: ops.avg_pool(x, (2, 2, 1), strides=1, padding=((0, 1), (1, 0),
                                                                                   (0, 0))),
           (X3,)),
    OpCase("avg_pool_channels_first",
           lambda x: ops.avg_pool(x, 2, padding=((1, 1), (0, 1)), channels="first"), (XF,)),
    OpCase("avg_pool_general_grad",
           lambda g: ops.avg_pool_general_grad(g, input_shape=(2, 4, 2), count_include_pad=False,
                                               **POOL_1D), (rand(2, 4, 2, seed=5),), order=2),
    OpCase("max_pool_general_grad",
           lambda x, g: ops.max_pool_general_grad(x, g, **POOL_1D),
           (X1[:, :4], rand(2, 4, 2, seed=6)), grad=False),
]


test_gradients, test_shape_rules = table_tests(CASES)


CONFIGS = [
    # x shape, window, strides, padding pairs
    ((2, 7, 3), (3,), (2,), ((1, 1),)),
    ((1, 5, 6, 2), (2, 3), (1, 2), ((0, 1), (2, 0))),
    ((2, 4, 4, 1), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((1, 3, 4, 5, 2), (2, 2, 3), (1, 2, 2), ((1, 0), (0, 1), (1, 1))),
    ((1, 1, 1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("xs,window,strides,pads", CONFIGS,
                         ids=[str(i) for i in range(len(CONFIGS))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_match_naive_loops(xs, window, strides, pads, dtype):
    x = rand(*xs, seed=10).astype(dtype)
    out = ops.max_pool(x, window, strides, pads)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, naive_max_pool(x, window, strides, pads))
    for include in (True, False):
        avg = ops.avg_pool(x, window, strides, pads, count_include_pad=include)
        assert avg.dtype == dtype
        np.testing.assert_allclose(avg, naive_avg_pool(x.astype(np.float64), window, strides,
                                                       pads, include), rtol=1e-6, atol=1e-6)
    g = rand(*out.shape, seed=11)
    dx = vjp(lambda a: ops.max_pool(a, window, strides, pads), x.astype(np.float64))[1](g)[0]
    np.testing.assert_allclose(dx, naive_max_pool_grad(x, g, window, strides, pads), rtol=1e-12)


def test_max_pool_gradient_goes_to_first_maximum_and_accumulates():
    x = np.array([1.0, 3.0, 3.0, 2.0, 3.0]).reshape(1, 5, 1)
    dx = grad(lambda a: ops.sum(ops.max_pool(a, 2, strides=1)))(x)
    # windows [1,3] [3,3] [3,2] [2,3] -> first maxima at 1, 1, 2, 4
    np.testing.assert_array_equal(dx[0, :, 0], [0.0, 2.0, 1.0, 0.0, 1.0])
    x2 = np.array([[5.0, 5.0], [5.0, 5.0]]).reshape(1, 2, 2, 1)
    dx2 = grad(lambda a: ops.sum(ops.max_pool(a, 2)))(x2)
    np.testing.assert_array_equal(dx2[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_nan_takes_the_gradient():
    x = np.array([1.0, np.nan, 2.0, 0.0]).reshape(1, 4, 1)
    out = ops.max_pool(x, 2)
    assert np.isnan(out[0, 0, 0]) and out[0, 1, 0] == 2.0
    dx = grad(lambda a: ops.sum(ops.max_pool(a, 2)))(x)
    np.testing.assert_array_equal(dx[0, :, 0], [0.0, 1.0, 1.0, 0.0])


def test_integer_input():
    x = np.arange(12).reshape(1, 3, 4, 1)
    out = ops.max_pool(x, 2, strides=1, padding=((0, 1), (0, 0)))
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 6, 7], [9, 10, 11], [9, 10, 11]])
    assert ops.max_pool(x, 2).dtype == x.dtype
    avg = ops.avg_pool(x, 2)
    assert avg.dtype == np.float64
    np.testing.assert_allclose(avg[0, :, :, 0], [[2.5, 4.5]])


def test_channels_first_matches_channels_last():
    x = rand(2, 3, 5, 6, seed=12)
    for pool in (ops.max_pool, ops.avg_pool):
        first = pool(x, (2, 3), strides=(1, 2), padding="same", channels="first")
        last = pool(x.transpose(0, 2, 3, 1), (2, 3), strides=(1, 2), padding="same")
        np.testing.assert_allclose(first, last.transpose(0, 3, 1, 2), rtol=1e-12)


def test_non_contiguous_batch_one():
    x = rand(3, 9, 8, 4, seed=13)[2:3, 1::2, ::-1, ::2]
    assert not x.flags.c_contiguous
    pads = ((1, 0), (0, 1))
    np.testing.assert_array_equal(ops.max_pool(x, 2, 2, pads),
                                  naive_max_pool(x, (2, 2), (2, 2), pads))
    np.testing.assert_allclose(ops.avg_pool(x, 2, 1, pads),
                               naive_avg_pool(x, (2, 2), (1, 1), pads), rtol=1e-12)


def test_same_padding_and_default_strides():
    x = np.zeros((1, 7, 8, 1))
    assert ops.max_pool(x, 2).shape == (1, 3, 4, 1)  # strides default to the window
    assert ops.avg_pool(x, 3, strides=2, padding="same").shape == (1, 4, 4, 1)
    assert ops.max_pool(x, (3, 2), strides=1, padding="same").shape == (1, 7, 8, 1)


def test_avg_pool_second_order_and_max_pool_second_order_error():
    x = rand(1, 4, 1, seed=14)
    h = grad(lambda a: ops.sum(grad(lambda b: ops.sum(ops.avg_pool(b, 2) ** 2))(a) ** 2))(x)
    assert h.shape == x.shape
    with pytest.raises(TracerError, match="max_pool_general_grad: gradients of this op's"):
        grad(lambda a: ops.sum(grad(lambda b: ops.sum(ops.max_pool(b, 2) ** 2))(a)))(x)


def test_eval_shape_without_data():
    out = eval_shape(lambda x: ops.max_pool(x, 3, strides=2, padding="same", channels="first"),
                     AbstractArray((8, 16, 32, 31)))
    assert out == AbstractArray((8, 16, 16, 16), "float32")
    assert eval_shape(lambda x: ops.avg_pool(x, 2), AbstractArray((2, 4, 4, 3), "int32")) == \
        AbstractArray((2, 2, 2, 3), "float64")


def test_primitive_docstring_examples():
    for op in (ops.max_pool_general, ops.max_pool_general_grad, ops.avg_pool_general,
               ops.avg_pool_general_grad):
        test = doctest.DocTestParser().get_doctest(op.__doc__, {op.__name__: op}, op.__name__,
                                                    None, 0)
        runner = doctest.DocTestRunner()
        runner.run(test)
        assert runner.failures == 0, op.__name__


@pytest.mark.parametrize("call,message", [
    (lambda: ops.max_pool(np.ones((4, 4)), 2), r"max_pool: input must have rank >= 3"),
    (lambda: ops.max_pool(np.ones((1, 4, 4, 1)), (2, 2, 2)),
     r"max_pool: window must have 2 entries"),
    (lambda: ops.avg_pool(np.ones((1, 4, 4, 1)), 0), r"avg_pool: window must be >= 1"),
    (lambda: ops.max_pool(np.ones((1, 3, 1)), 4),
     r"max_pool: in spatial dim 0 the window \(dilated size 4\) is larger than the padded "
     r"input \(size 3\)"),
    (lambda: ops.max_pool(np.ones((1, 6, 1)), 2, padding=2),
     r"max_pool: padding \(2, 2\) in spatial dim 0 must be smaller than the window \(2\)"),
    (lambda: ops.avg_pool(np.ones((1, 6, 1)), 2, padding="full"),
     r"avg_pool: padding must be 'valid', 'same'"),
    (lambda: ops.avg_pool(np.ones((1, 6, 1)), 2, channels="none"),
     r"avg_pool: channels must be 'last' or 'first'"),
    (lambda: ops.max_pool_general(np.ones((1, 6, 1)), window=(2, 2), strides=(1, 1),
                                  padding=((0, 0), (0, 0))),
     r"max_pool_general: input must have rank 4"),
    (lambda: ops.max_pool_general_grad(np.ones((1, 6, 1)), np.ones((1, 4, 1)), window=(2,),
                                       strides=(1,), padding=((0, 0),)),
     r"max_pool_general_grad: g must have shape \(1, 5, 1\)"),
])
def test_clear_errors(call, message):
    with pytest.raises(ShapeError, match=message):
        call()


def test_tied_maxima_send_the_gradient_to_one_element_in_every_max_pooling_layer():
    """max_pool, global_max_pool and adaptive_max_pool agree on images with tied maxima (as
    PyTorch's do): the first maximum in row-major order takes the whole gradient."""
    from axon_fn import layers

    image = np.array([[3.0, 1.0, 3.0, 0.0], [2.0, 3.0, 1.0, 3.0],
                      [0.0, 0.0, 1.0, 1.0], [3.0, 2.0, 1.0, 0.0]]).reshape(1, 4, 4, 1)
    grads = [
        grad(lambda x: ops.sum(layers.max_pool(x, window=4)))(image),
        grad(lambda x: ops.sum(layers.global_max_pool(x)))(image),
        grad(lambda x: ops.sum(layers.adaptive_max_pool(x, output_size=1)))(image),
    ]
    expected = np.zeros_like(image)
    expected[0, 0, 0, 0] = 1.0
    for g in grads:
        np.testing.assert_array_equal(g, expected)
    # windows of 2x2: each tied window sends its gradient to its first maximum
    two = [grad(lambda x: ops.sum(layers.max_pool(x, window=2)))(image),
           grad(lambda x: ops.sum(layers.adaptive_max_pool(x, output_size=2)))(image)]
    np.testing.assert_array_equal(two[0], two[1])
    assert two[0].sum() == 4.0
