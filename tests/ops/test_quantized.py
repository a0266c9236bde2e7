"""The int8 weight-only dense primitive: gradients (input, scale, bias) and shape rules.

Kernel values, native parity and the model rewrite are in tests/test_quantization.py."""

import numpy as np
import pytest

from axon_fn import AbstractArray, AxonTypeError, ShapeError
from axon_fn.ops.quantized import quantized_dense
from tests.ops.harness import OpCase, rand, table_tests

X, S, B = rand(5, 3, seed=31), rand(4, seed=32, low=0.01, high=0.1), rand(4, seed=33)
Q = np.random.default_rng(34).integers(-127, 128, size=(3, 4)).astype(np.int8)


def op(activation, bias=True):
    if bias:
        return lambda x, q, s, b: quantized_dense(x, q, s, b, activation=activation)
    return lambda x, q, s: quantized_dense(x, q, s, activation=activation)


CASES = [
    OpCase("quantized_dense", op(None), (X, Q, S, B)),
    OpCase("quantized_dense_relu", op("relu"), (X + 0.3, Q, S, B)),
    OpCase("quantized_dense_no_bias", op(None, bias=False), (X, Q, S)),
    OpCase("quantized_dense_batched_input", op("relu"), (rand(2, 5, 3, seed=35), Q, S, B)),
    OpCase("quantized_dense_vector_input", op(None), (rand(3, seed=36), Q, S, B)),
]

test_gradients, test_shape_rules = table_tests(CASES)


def test_shape_rule_names_the_mismatch():
    x = AbstractArray((2, 3), "float32")
    with pytest.raises(ShapeError, match="kernel"):
        quantized_dense(x, AbstractArray((4, 2), "int8"), AbstractArray((2,), "float32"))
    with pytest.raises(ShapeError, match="scale"):
        quantized_dense(x, AbstractArray((3, 2), "int8"), AbstractArray((3,), "float32"))
    with pytest.raises(AxonTypeError, match="integer"):
        quantized_dense(x, AbstractArray((3, 2), "float32"), AbstractArray((2,), "float32"))
    out = quantized_dense(AbstractArray((7, 3), "float16"), AbstractArray((3, 2), "int8"),
                          AbstractArray((2,), "float32"))
    assert out == AbstractArray((7, 2), "float32")
