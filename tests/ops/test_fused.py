"""The fused dense primitive: gradients (first and second order), shape rules, values against
the composed ops, and the joint VJP skipping gradients nobody needs."""

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AbstractArray, ShapeError, ops
from tests.ops.harness import OpCase, rand, table_tests

X, W, B = rand(5, 3, seed=21), rand(3, 4, seed=22), rand(4, seed=23)


def fused(activation, bias=True):
    if bias:
        return lambda x, w, b: ops.fused.dense(x, w, b, activation=activation)
    return lambda x, w: ops.fused.dense(x, w, activation=activation)


CASES = [
    OpCase(f"dense_{name}", fused(name), (X, W, B), order=2)
    for name in (None, "relu", "sigmoid", "tanh")
] + [
    OpCase("dense_no_bias", fused("tanh", bias=False), (X, W), order=2),
    OpCase("dense_batched_input", fused("relu"), (rand(2, 5, 3, seed=24), W, B)),
    OpCase("dense_vector_input", fused("sigmoid"), (rand(3, seed=25), W, B)),
]

test_gradients, test_shape_rules = table_tests(CASES)

ACTIVATIONS = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0),
               "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_values_match_numpy(name):
    for dtype in (np.float32, np.float64):
        x, w, b = (a.astype(dtype) for a in (X, W, B))
        got = ops.fused.dense(x, w, b, activation=name)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ACTIVATIONS[name](x @ w + b), rtol=1e-6)


def test_gradients_equal_the_composition_and_skip_unneeded_inputs():
    def composed(w, b, x):
        return ops.sum(ops.tanh(ops.matmul(x, w) + b) ** 2)

    def one_op(w, b, x):
        return ops.sum(ops.fused.dense(x, w, b, activation="tanh") ** 2)

    want = ax.grad(composed, argnums=(0, 1))(W, B, X)
    got = ax.grad(one_op, argnums=(0, 1))(W, B, X)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-12)
    seen = []
    rule = ops.fused.dense.primitive.vjps.rule

    def spy(needed, *args, **kwargs):
        seen.append(needed)
        return rule(needed, *args, **kwargs)
    ops.fused.dense.primitive.vjps.rule = spy
    try:
        ax.grad(one_op)(W, B, X)
    finally:
        ops.fused.dense.primitive.vjps.rule = rule
    assert seen == [(False, True, False)]  # only the kernel's gradient was asked for


def test_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"dense: bias must have shape \(4,\), got \(3,\)"):
        ops.fused.dense(X, W, np.ones(3))
    with pytest.raises(ShapeError, match="contracting dims differ"):
        ops.fused.dense(AbstractArray((5, 2)), W)
    with pytest.raises(ValueError, match="activation must be one of"):
        ops.fused.dense(X, W, activation="gelu")


def test_layers_dense_fuses_known_activations_and_composes_others():
    for activation in (None, "relu", ax.activations.relu, ax.activations.sigmoid):
        got = ax.layers.dense(X, W, B, activation=activation)
        name = activation if isinstance(activation, str) or activation is None else \
            activation.__name__
        np.testing.assert_allclose(got, ACTIVATIONS[name](X @ W + B), rtol=1e-12)
    gelu = ax.layers.dense(X, W, B, activation=ax.activations.gelu)
    np.testing.assert_allclose(gelu, ax.activations.gelu(X @ W + B), rtol=1e-12)
