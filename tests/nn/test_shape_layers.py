"""Graph constructors of the shape layers (axon_fn.nn.shape): outputs against the functional
layers, numpy and hand-written loops, output shapes, gradients through small models, and
option / shape errors."""

import importlib
import itertools

import numpy as np
import pytest

import axon_fn as ax
from axon_fn.layers.shape import flatten as flatten_fn
from axon_fn.layers.shape import resize as resize_fn
from tests.nn.harness import check_model_grads, one_layer, run

shape_nn = importlib.import_module("axon_fn.nn.shape")

rng = np.random.default_rng(5)


def predict(layer, x):
    model = one_layer(layer, x.shape)
    y, state = run(model, x)
    assert state.trainable == {}
    assert ax.get_output_shape(model, x) == y.shape
    return y


def test_flatten():
    x = rng.standard_normal((2, 3, 2, 2))
    y = predict(shape_nn.flatten(), x)
    np.testing.assert_array_equal(y, flatten_fn(x))
    np.testing.assert_array_equal(y, x.reshape(2, 12))
    assert ax.get_output_shape(ax.input("x", shape=(None, 5)) >> shape_nn.flatten()) == (1, 5)


def test_reshape_excludes_the_batch_axis():
    x = rng.standard_normal((2, 12))
    y = predict(shape_nn.reshape((3, 4)), x)
    np.testing.assert_array_equal(y, x.reshape(2, 3, 4))
    np.testing.assert_array_equal(predict(shape_nn.reshape([2, -1, 1]), x), x.reshape(2, 2, 6, 1))
    np.testing.assert_array_equal(predict(shape_nn.reshape(12), x.reshape(2, 3, 4)), x)
    mnist = ax.input("x", shape=(None, 784)) >> shape_nn.reshape((28, 28, 1))
    assert ax.get_output_shape(mnist, np.zeros((5, 784))) == (5, 28, 28, 1)


def test_transpose_permutes_the_non_batch_axes():
    x = rng.standard_normal((2, 2, 3, 4))
    y = predict(shape_nn.transpose((2, 0, 1)), x)
    ref = np.zeros((2, 4, 2, 3))
    for n, a, b, c in itertools.product(range(2), range(2), range(3), range(4)):
        ref[n, c, a, b] = x[n, a, b, c]
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(predict(shape_nn.transpose([1, 0]), x[:, :, :, 0]),
                                  x[:, :, :, 0].transpose(0, 2, 1))


def test_pad_pads_the_spatial_axes_only():
    x = rng.standard_normal((2, 3, 2, 2))
    y = predict(shape_nn.pad([(1, 0), (2, 1)], value=0.5), x)
    ref = np.full((2, 4, 5, 2), 0.5)
    for n, i, j, c in itertools.product(range(2), range(3), range(2), range(2)):
        ref[n, i + 1, j + 2, c] = x[n, i, j, c]
    np.testing.assert_array_equal(y, ref)
    y = predict(shape_nn.pad([1, (0, 2)], channels="first"), x)
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 0), (1, 1), (0, 2)]))
    y = predict(shape_nn.pad([(0, 1)]), x[:, :, :, 0])  # (N, T, C): pads T
    assert y.shape == (2, 4, 2)


def test_resize_matches_functional_and_loops():
    x = rng.standard_normal((2, 3, 2, 2))
    y = predict(shape_nn.resize((5, 4)), x)
    ref = np.zeros((2, 5, 4, 2))
    for n, i, j, c in itertools.product(range(2), range(5), range(4), range(2)):
        ref[n, i, j, c] = x[n, i * 3 // 5, j * 2 // 4, c]  # nearest: floor(i * S_in / S_out)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(y, resize_fn(x, size=(5, 4)))
    y = predict(shape_nn.resize(4, method="bilinear", channels="first"), x)
    np.testing.assert_allclose(y, resize_fn(x, size=4, method="bilinear", channels="first"),
                               rtol=1e-12)
    assert y.shape == (2, 3, 4, 4)


@pytest.mark.parametrize("layer, shape", [
    (shape_nn.flatten(), (2, 2, 3)),
    (shape_nn.reshape((3, -1)), (2, 6)),
    (shape_nn.transpose((1, 0)), (2, 3, 2)),
    (shape_nn.pad([(1, 2)], value=3.0), (2, 3, 2)),
    (shape_nn.pad([(1, 0), (0, 1)], channels="first"), (2, 2, 3, 3)),
    (shape_nn.resize((5, 3)), (2, 4, 2, 2)),
    (shape_nn.resize(5, method="linear"), (2, 4, 3)),
], ids=repr)
def test_every_shape_layer_grads(layer, shape):
    model = one_layer(layer, shape) >> ax.dense(2)
    check_model_grads(model, rng.standard_normal(shape))


@pytest.mark.parametrize("make, message", [
    (lambda: shape_nn.reshape((2, -1, -1)), r"reshape: `shape` expected .*at most one -1.*"
                                            r"\(2, -1, -1\)"),
    (lambda: shape_nn.reshape((2, 0)), r"reshape: `shape`"),
    (lambda: shape_nn.reshape("28x28"), r"reshape: `shape`"),
    (lambda: shape_nn.transpose((0, 2)), r"transpose: `permutation` expected a permutation"),
    (lambda: shape_nn.transpose((1, 0, 1)), r"transpose: `permutation`"),
    (lambda: shape_nn.pad(2), r"pad: `padding` expected one \(lo, hi\) pair"),
    (lambda: shape_nn.pad([(1, -1)]), r"pad: `padding`"),
    (lambda: shape_nn.pad([]), r"pad: `padding`"),
    (lambda: shape_nn.pad([(1, 1)], value="zero"), r"pad: `value` expected a number"),
    (lambda: shape_nn.pad([(1, 1)], channels="middle"), r"pad: `channels`"),
    (lambda: shape_nn.resize(0), r"resize: `size` expected"),
    (lambda: shape_nn.resize(4, method="cubic"), r"resize: `method` expected one of"),
    (lambda: shape_nn.flatten(2), r"flatten"),
])
def test_bad_options_fail_when_written(make, message):
    with pytest.raises((ax.InvalidArgumentError, ax.AxonTypeError), match=message):
        make()


def test_input_mismatches_name_the_layer_and_the_shape():
    x = ax.input("x", shape=(None, 10))
    with pytest.raises(ax.ShapeError, match=r"'reshape_0'.*reshape: `shape` expected sizes "
                                            r"holding 10 elements.*\(1, 10\).*got \(3, 3\)"):
        ax.init(x >> shape_nn.reshape((3, 3)))
    with pytest.raises(ax.ShapeError, match=r"reshape: .*got \(3, -1\)"):
        ax.init(x >> shape_nn.reshape((3, -1)))
    with pytest.raises(ax.ShapeError, match=r"'transpose_0'.*`permutation` expected 1 "
                                            r"entries.*got \(1, 0\)"):
        ax.init(x >> shape_nn.transpose((1, 0)))
    with pytest.raises(ax.ShapeError, match=r"'pad_0'.*`padding` expected 2 pairs .*\(1, 4, 4, "
                                            r"1\)\), got 1: \(\(1, 1\),\)"):
        ax.init(ax.input("x", shape=(None, 4, 4, 1)) >> shape_nn.pad([(1, 1)]))
    with pytest.raises(ax.ShapeError, match=r"'resize_0'.*size"):
        ax.init(ax.input("x", shape=(None, 4, 4, 1)) >> shape_nn.resize((2, 2, 2)))
