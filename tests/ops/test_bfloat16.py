"""Every op case of the table, run in bfloat16: the result is bfloat16 and matches the float32
result of the same (bfloat16-rounded) inputs within bfloat16's rounding; gradients come back
in bfloat16. Sums, means, softmax and matrix products accumulate in float32, and the C
kernels never see a bfloat16 buffer."""

import numpy as np
import optree
import pytest

ml_dtypes = pytest.importorskip("ml_dtypes")

import axon_fn  # noqa: E402
from axon_fn import ops  # noqa: E402
from tests.ops.harness import all_cases, parametrize  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
# cases whose float32 result does not come from an op given bfloat16: an explicit cast to
# float32 (astype, one_hot's default dtype), or plain numpy operators on the case's arrays
# (``x.T @ x`` of two ndarrays is numpy's, which returns float32 for bfloat16)
NOT_BF16_OUTPUT = {"astype", "one_hot", "method_syntax", "cholesky"}
# ill-conditioned gradients (matrix inverses, determinants, eigenvectors, pole-like
# derivatives): their bfloat16 values are only checked for dtype and finiteness
LOOSE_GRADS = {"inv", "solve_vector", "solve_matrix", "det", "slogdet", "pinv", "lstsq",
               "matrix_power_negative", "eigh_vectors", "svd_u", "svd_vh", "qr_q", "qr_r",
               "norm_nuc", "norm_2", "svd_s", "eigh_values", "cholesky", "power", "rsqrt",
               "divide", "log", "log1p", "sqrt", "arctan2", "median_even", "quantile",
               "percentile"}
# int8 weight-only quantization computes in float32 by design (its scales are float32)
CASES = [c for c in all_cases() if not c.id.startswith("quantized")]


def _is_float(x):
    return hasattr(x, "dtype") and np.asarray(x).dtype.kind == "f"


def _inputs(case):
    leaves, spec = optree.tree_flatten(case.args)
    wide = [np.asarray(x).astype(BF16).astype(np.float32) if _is_float(x) else x for x in leaves]
    narrow = [x.astype(BF16) if _is_float(x) else x for x in wide]
    return spec.unflatten(wide), spec.unflatten(narrow)


def _close(got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


@parametrize(CASES)
def test_forward_in_bfloat16(case):
    wide, narrow = _inputs(case)
    want = case.fn(*wide)
    got = case.fn(*narrow)
    predicted = optree.tree_leaves(axon_fn.eval_shape(case.fn, *narrow))
    for w, g, p in zip(optree.tree_leaves(want), optree.tree_leaves(got), predicted):
        w, g = np.asarray(w), np.asarray(g)
        if case.id not in NOT_BF16_OUTPUT:
            assert (p.shape, p.dtype) == (g.shape, g.dtype), f"{case.id}: the rule says {p}"
        if w.dtype != np.float32:
            continue  # integer or boolean results (argsort, comparisons)
        if case.id not in NOT_BF16_OUTPUT:
            assert g.dtype == BF16, f"{case.id}: {g.dtype}"
        _close(g.astype(np.float32), w, 2e-2)


@parametrize([c for c in CASES if c.grad])
def test_gradients_in_bfloat16(case):
    wide, narrow = _inputs(case)
    outs = {}
    for name, args in (("wide", wide), ("narrow", narrow)):
        out, pullback = axon_fn.vjp(case.fn, *args)
        cotangent = optree.tree_map(
            lambda o: np.ones(np.shape(o), np.asarray(o).dtype)
            if np.asarray(o).dtype.kind in "fV" else np.zeros(np.shape(o), np.float32), out)
        outs[name] = pullback(cotangent)
    flat_args = optree.tree_leaves(narrow)
    for arg, w, g in zip(flat_args, optree.tree_leaves(outs["wide"]),
                         optree.tree_leaves(outs["narrow"])):
        if getattr(arg, "dtype", None) != BF16:
            continue
        g = np.asarray(g)
        assert g.dtype == BF16, f"{case.id}: gradient dtype {g.dtype}"
        if case.id in LOOSE_GRADS:
            assert np.all(np.isfinite(g.astype(np.float32))) or not np.all(np.isfinite(w))
        else:
            _close(g.astype(np.float32), w, 6e-2)


def test_sums_accumulate_in_float32():
    ones = np.ones(10_000, BF16)
    # a bfloat16 accumulator stops at 256 (256 + 1 rounds back to 256)
    assert float(ops.sum(ones)) == float(np.float32(10_000).astype(BF16))
    assert ops.sum(ones).dtype == BF16
    assert float(ops.mean(ones)) == 1.0 and ops.mean(ones).dtype == BF16
    assert float(ops.cumsum(ones)[-1]) == float(np.float32(10_000).astype(BF16))
    x = np.random.default_rng(0).normal(size=(4, 4096)).astype(BF16)
    want = x.astype(np.float32).var(axis=1)
    got = ops.var(x, axis=1)
    assert got.dtype == BF16
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2)


def test_float16_sums_and_products_accumulate_in_float32():
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 20_000)).astype(np.float16)
    want = x.astype(np.float64).sum(axis=1).astype(np.float16)
    np.testing.assert_array_equal(ops.sum(x, axis=1), want)  # rounded once, at the end
    np.testing.assert_array_equal(ops.mean(x, axis=1),
                                  (x.astype(np.float64).mean(axis=1)).astype(np.float16))
    a = np.random.default_rng(1).normal(size=(64, 256)).astype(np.float16)
    got = ops.matmul(a, a.T)
    assert got.dtype == np.float16
    want = (a.astype(np.float32) @ a.T.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-3,
                               atol=1e-2)


def test_softmax_and_cross_entropy_in_bfloat16():
    logits = np.random.default_rng(2).normal(size=(8, 1000)).astype(BF16)
    p = ops.softmax(logits)
    assert p.dtype == BF16
    np.testing.assert_allclose(p.astype(np.float32).sum(axis=1), 1.0, rtol=1e-2)
    labels = np.arange(8)
    loss = ops.softmax_cross_entropy(logits, labels)
    wide = logits.astype(np.float32)
    want = -(wide - np.log(np.exp(wide - wide.max(1, keepdims=True)).sum(1, keepdims=True))
             - wide.max(1, keepdims=True))[np.arange(8), labels]
    assert loss.dtype == BF16
    np.testing.assert_allclose(loss.astype(np.float32), want, rtol=1e-2)


def test_the_c_kernels_are_never_given_bfloat16(monkeypatch):
    from axon_fn import _native_ops

    if not axon_fn.native_available():
        pytest.skip("no compiled kernels")
    seen = []
    original = _native_ops._buf

    def spy(a):
        seen.append(a.dtype)
        assert a.dtype in (np.float32, np.float64), f"a C kernel was given {a.dtype}"
        return original(a)

    monkeypatch.setattr(_native_ops, "_buf", spy)
    for name in _native_ops.ELEMENTWISE_MIN_SIZE:
        monkeypatch.setitem(_native_ops.ELEMENTWISE_MIN_SIZE, name, 0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 8, 3)).astype(BF16)
    w = rng.normal(size=(3, 3, 3, 4)).astype(BF16)
    out = axon_fn.grad(lambda x, w: ops.sum(ops.relu(ops.conv(x, w))), argnums=(0, 1))(x, w)
    assert out[0].dtype == BF16 and out[1].dtype == BF16
    y = ops.max_pool(x, (2, 2))
    assert y.dtype == BF16
    assert ops.softmax_cross_entropy(x.reshape(-1, 3), np.zeros(128, np.int64)).dtype == BF16
    for f in (ops.tanh, ops.sigmoid, ops.relu, ops.softmax, ops.log_softmax,
              lambda v: ops.avg_pool(v, (2, 2))):
        assert f(x).dtype == BF16
    rows, kernel = x.reshape(-1, 3), w.reshape(-1, 4)[:3]
    for activation in (None, "relu", "sigmoid", "tanh"):
        out = axon_fn.grad(lambda k: ops.sum(ops.fused.dense(rows, k, activation=activation)))(
            kernel)
        assert out.dtype == BF16
    assert seen  # the float32 computations did run on the kernels


def test_jit_replays_bfloat16_steps():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(5, 3)).astype(BF16)
    x = rng.normal(size=(16, 5)).astype(BF16)

    def step(w, x):
        loss, g = axon_fn.value_and_grad(lambda w: ops.mean(ops.tanh(x @ w) ** 2))(w)
        return w - 0.1 * g, loss

    compiled = axon_fn.jit(step)
    for _ in range(3):
        want, got = step(w, x), compiled(w, x)
        assert got[0].dtype == BF16 and got[1].dtype == BF16
        np.testing.assert_allclose(np.asarray(got[0]).astype(np.float32),
                                   np.asarray(want[0]).astype(np.float32), rtol=1e-2)
        w = want[0]
    assert compiled.cache_size() == 1


@pytest.mark.parametrize("dtype", [BF16, np.dtype(np.float16)])
def test_relu_on_16_bit_patterns_matches_numpy(dtype):
    x = np.array([-2, -0.0, 0, 1.5, np.inf, -np.inf, np.nan, -np.nan, 6e4, -6e4, 1e-7, -1e-7],
                 np.float32).astype(dtype)
    np.testing.assert_array_equal(ops.relu(x).astype(np.float32),
                                  np.maximum(x, 0).astype(np.float32))
    g = np.arange(12).astype(dtype)
    ans = ops.relu(x)
    got = ops.relu_grad(g, ans)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.float32),
                                  np.where(ans.astype(np.float32) > 0, g.astype(np.float32), 0))
