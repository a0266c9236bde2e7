"""Gradient checks (float64, against central differences) for the numpy-named functions and
``ops.linalg``, plus their shape rules, through the shared op-test table."""

from __future__ import annotations

import numpy as np

import axon_fn
from axon_fn import ops
from axon_fn.ops import linalg
from tests.ops.harness import OpCase, rand, table_tests

X = rand(3, 4)
T3 = rand(2, 3, 4, seed=1)
POS = rand(3, 4, seed=2, low=0.5, high=2.0)
INSIDE = rand(3, 4, seed=3, low=-0.8, high=0.8)
ABOVE = rand(3, 4, seed=4, low=1.2, high=3.0)
DISTINCT = np.array([[0.3, -1.2, 2.5, 0.9], [1.7, 0.1, -0.4, -2.2], [0.6, 1.1, -0.9, 2.0]])
SQ = rand(3, 3, seed=5) + 3 * np.eye(3)
TALL = rand(5, 3, seed=6)
WIDE = rand(3, 5, seed=7)
IDX = np.array([[1, 0, 3, 2], [0, 2, 1, 3], [2, 1, 0, 3]])


def _sym(a):
    """A symmetric positive-definite matrix from ``a``, so checks perturb it symmetrically."""
    return a @ a.T + 3 * ops.eye(a.shape[0], dtype=a.dtype, like=a)


def _sym_distinct(a):
    """A symmetric matrix with well-separated eigenvalues."""
    return (a + a.T) / 2 + ops.diag(ops.arange(3, dtype=a.dtype, like=a) * 4.0)


CASES = [
    # elementwise -------------------------------------------------------------------------------
    OpCase("square", lambda x: ops.square(x), (X,), order=2),
    OpCase("reciprocal", lambda x: ops.reciprocal(x), (POS,), order=2),
    OpCase("log2", lambda x: ops.log2(x), (POS,)),
    OpCase("log10", lambda x: ops.log10(x), (POS,)),
    OpCase("tan", lambda x: ops.tan(x), (INSIDE,), order=2),
    OpCase("arcsin", lambda x: ops.arcsin(x), (INSIDE,), order=2),
    OpCase("arccos", lambda x: ops.arccos(x), (INSIDE,), order=2),
    OpCase("arctan", lambda x: ops.arctan(x), (X,), order=2),
    OpCase("sinh", lambda x: ops.sinh(x), (X,), order=2),
    OpCase("cosh", lambda x: ops.cosh(x), (X,), order=2),
    OpCase("arcsinh", lambda x: ops.arcsinh(x), (X,), order=2),
    OpCase("arccosh", lambda x: ops.arccosh(x), (ABOVE,), order=2),
    OpCase("arctanh", lambda x: ops.arctanh(x), (INSIDE,), order=2),
    OpCase("arctan2", lambda y, x: ops.arctan2(y, x), (X, rand(3, 4, seed=9)), order=2),
    OpCase("mod", lambda x, y: ops.mod(x, y), (X * 3, POS), order=2),
    OpCase("floor_divide", lambda x, y: ops.floor_divide(x, y), (X * 3, POS), grad=False),
    OpCase("logaddexp", lambda x, y: ops.logaddexp(x, y), (X, rand(3, 4, seed=10)), order=2),
    OpCase("clip_min_max", lambda x: ops.clip(x, min=-0.5, max=0.5), (X,)),
    OpCase("cast_to_int_stops_gradient",
           lambda x: x + ops.astype(ops.astype(x * 3.0, np.int64), np.float64), (X,)),
    # reductions and statistics ------------------------------------------------------------------
    OpCase("std", lambda x: ops.std(x, 1), (X,), order=2),
    OpCase("std_ddof", lambda x: ops.std(x, axis=0, ddof=1, keepdims=True), (X,)),
    OpCase("var_correction", lambda x: ops.var(x, (0, 1), correction=1), (T3,)),
    OpCase("cumprod", lambda x: ops.cumprod(x, 1), (X,)),
    OpCase("cumprod_zero", lambda x: ops.cumprod(x), (np.array([1.5, 0.0, -2.0, 0.5]),)),
    OpCase("cumsum_flat", lambda x: ops.cumsum(x), (X,)),
    OpCase("median_odd", lambda x: ops.median(x, 0), (DISTINCT,)),
    OpCase("median_even", lambda x: ops.median(x, axis=1), (DISTINCT,)),
    OpCase("quantile", lambda x: ops.quantile(x, [0.1, 0.5, 0.9], axis=1), (DISTINCT,)),
    OpCase("percentile", lambda x: ops.percentile(x, 30), (DISTINCT,)),
    OpCase("nansum", lambda x: ops.nansum(x, 1), (X,)),
    OpCase("nanmean", lambda x: ops.nanmean(x, 0), (X,)),
    OpCase("nanmax", lambda x: ops.nanmax(x, 1), (DISTINCT,)),
    OpCase("nanmin", lambda x: ops.nanmin(x), (DISTINCT,)),
    OpCase("logsumexp_b", lambda x, b: ops.logsumexp(x, 1, b=b), (X, POS), order=2),
    OpCase("softmax_axes", lambda x: ops.softmax(x, axis=(0, 2)), (T3,)),
    OpCase("log_softmax_axes", lambda x: ops.log_softmax(x, axis=None), (X,)),
    # sorting ------------------------------------------------------------------------------------
    OpCase("sort", lambda x: ops.sort(x, 0), (DISTINCT,)),
    OpCase("sort_flat", lambda x: ops.sort(x, axis=None), (DISTINCT,)),
    OpCase("topk", lambda x: ops.topk(x, 2)[0], (DISTINCT,)),
    OpCase("argsort", lambda x: ops.argsort(x, 1), (DISTINCT,), grad=False),
    OpCase("searchsorted", lambda a, v: ops.searchsorted(a, v), (np.array([-1.0, 0.0, 1.0]), X),
           grad=False),
    # arranging ----------------------------------------------------------------------------------
    OpCase("moveaxis", lambda x: ops.moveaxis(x, 0, -1), (T3,)),
    OpCase("ravel", lambda x: ops.ravel(x), (X,)),
    OpCase("atleast_1d", lambda x: ops.atleast_1d(x), (np.array(0.5),)),
    OpCase("atleast_2d", lambda x: ops.atleast_2d(x), (X[0],)),
    OpCase("atleast_3d", lambda x: ops.atleast_3d(x), (X,)),
    OpCase("vstack", lambda a, b: ops.vstack([a, b]), (X[0], X[1])),
    OpCase("hstack", lambda a, b: ops.hstack((a, b)), (X, POS)),
    OpCase("dstack", lambda a, b: ops.dstack([a, b]), (X, POS)),
    OpCase("array_split", lambda x: ops.array_split(x, 3, axis=1)[1], (X,)),
    OpCase("roll", lambda x: ops.roll(x, (1, -2), (0, 1)), (X,)),
    OpCase("tril", lambda x: ops.tril(x, 1), (X,)),
    OpCase("triu", lambda x: ops.triu(x), (X,)),
    OpCase("diag_of_vector", lambda v: ops.diag(v, 1), (X[0],)),
    OpCase("diag_of_matrix", lambda x: ops.diag(x, -1), (X,)),
    OpCase("diagonal", lambda x: ops.diagonal(x, 1, 0, 2), (T3,)),
    OpCase("trace", lambda x: ops.trace(x), (X,)),
    OpCase("put_along_axis", lambda x, v, i: ops.put_along_axis(x, i, v, 1),
           (X, rand(3, 1, seed=11), IDX[:, :1])),
    OpCase("take_along_axis_default_axis", lambda x, i: ops.take_along_axis(x, i), (X, IDX)),
    OpCase("inner", lambda a, b: ops.inner(a, b), (X, POS)),
    OpCase("kron", lambda a, b: ops.kron(a, b), (X[:2, :2], POS[:2, :3])),
    # linalg -------------------------------------------------------------------------------------
    OpCase("norm_vector", lambda x: linalg.norm(x, axis=1), (X,)),
    OpCase("norm_vector_orders", lambda x: linalg.norm(x[0], 3) + linalg.norm(x[1], 1)
           + linalg.norm(x[2], np.inf), (DISTINCT,)),
    OpCase("norm_fro", lambda x: linalg.norm(x), (X,)),
    OpCase("norm_nuc", lambda x: linalg.norm(x, "nuc"), (DISTINCT,)),
    OpCase("norm_2", lambda x: linalg.norm(x, 2) + linalg.norm(x, -1), (DISTINCT,)),
    OpCase("inv", lambda a: linalg.inv(a), (SQ,), order=2),
    OpCase("solve_vector", lambda a, b: linalg.solve(a, b), (SQ, X[0, :3])),
    OpCase("solve_matrix", lambda a, b: linalg.solve(a, b), (np.stack([SQ, SQ.T]), X[:, :2])),
    OpCase("det", lambda a: linalg.det(a), (SQ,)),
    OpCase("slogdet", lambda a: linalg.slogdet(a).logabsdet, (-SQ,)),
    OpCase("cholesky", lambda a: linalg.cholesky(_sym(a)), (rand(3, 3, seed=12),)),
    OpCase("qr_q", lambda a: linalg.qr(a).Q, (TALL,)),
    OpCase("qr_r", lambda a: linalg.qr(a)[1], (TALL,)),
    OpCase("svd_s", lambda a: linalg.svd(a, compute_uv=False), (WIDE,)),
    OpCase("svd_u", lambda a: linalg.svd(a, full_matrices=False).U, (TALL,)),
    OpCase("svd_vh", lambda a: linalg.svd(a, full_matrices=False).Vh, (WIDE,)),
    OpCase("eigh_values", lambda a: linalg.eigh(_sym_distinct(a)).eigenvalues,
           (rand(3, 3, seed=13),)),
    OpCase("eigh_vectors", lambda a: linalg.eigh(_sym_distinct(a))[1], (rand(3, 3, seed=13),)),
    OpCase("pinv", lambda a: linalg.pinv(a), (TALL,)),
    OpCase("matrix_power", lambda a: linalg.matrix_power(a, 3), (rand(3, 3, seed=14),)),
    OpCase("matrix_power_negative", lambda a: linalg.matrix_power(a, -2), (SQ,)),
    OpCase("lstsq", lambda a, b: linalg.lstsq(a, b)[0], (TALL, rand(5, seed=15))),
]

test_gradients, test_shape_rules = table_tests(CASES)


def test_cast_to_integers_stops_the_gradient():
    # JAX and PyTorch give 0: the cast is piecewise constant
    g = axon_fn.grad(lambda v: ops.sum(ops.astype(v * 3.0, dtype=np.int64) * 1.5))(X)
    np.testing.assert_array_equal(g, np.zeros_like(X))


def test_traced_values_have_numpys_methods():
    def f(x):
        parts = [x.var(1), x.std(axis=0), x.prod(), x.ravel(), x.flatten(), x.clip(-0.5, 0.5),
                 x.cumsum(1), x[None].squeeze(0), x.dot(x.T), x // 0.5, x % 0.7, x.round(1),
                 x.max(1, keepdims=True), x.mean(0), x.sum(1)]
        assert int(x.argmax()) == int(np.argmax(X)) and int(x.argmin(1)[0]) == int(np.argmin(X, 1)[0])
        return sum(ops.sum(p) for p in parts)

    grad = axon_fn.grad(f)(X)
    assert grad.shape == X.shape
    expected = (np.var(X, 1).sum() + np.std(X, 0).sum() + np.prod(X) + 2 * X.sum()
                + np.clip(X, -0.5, 0.5).sum() + np.cumsum(X, 1).sum() + X.sum() + (X @ X.T).sum()
                + (X // 0.5).sum() + (X % 0.7).sum() + X.round(1).sum() + X.max(1).sum()
                + X.mean(0).sum() + X.sum())
    np.testing.assert_allclose(f(X), expected, rtol=1e-12)


def test_staged_values_have_numpys_methods():
    @axon_fn.jit
    def f(x):
        return (x.var(1).sum() + x.std() + x.ravel()[0] + x.clip(max=0.5).sum() + x.cumsum()[-1]
                + (x // 0.5).sum() + (x % 0.7).sum() + x.dot(x.T).sum() + x.round(1).sum())

    expected = (np.var(X, 1).sum() + np.std(X) + X.ravel()[0] + np.clip(X, None, 0.5).sum()
                + np.cumsum(X)[-1] + (X // 0.5).sum() + (X % 0.7).sum() + (X @ X.T).sum()
                + X.round(1).sum())
    for _ in range(2):  # the recording, then the replay
        np.testing.assert_allclose(f(X), expected, rtol=1e-12)
