"""``axon_fn.ops`` against numpy: every op named like a numpy function, called in numpy's own
positional and keyword forms, gives numpy's value, shape and dtype.

``PATTERNS`` holds the call patterns of each name; ``test_every_numpy_named_op_has_patterns``
fails when an op named like a numpy function has none. Values are compared with rtol 1e-6 for
float32 results and 1e-12 for float64; integers and booleans exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from axon_fn import ops
from axon_fn.errors import AxonTypeError

RNG = np.random.default_rng(0)
F = RNG.uniform(-2, 2, (3, 4))                      # float64 matrix
F32 = F.astype(np.float32)
T3 = RNG.uniform(-2, 2, (2, 3, 4))                  # rank 3
V = np.array([0.5, -1.5, 2.0, 0.0, 3.25])           # float64 vector
P = RNG.uniform(0.5, 3.0, (3, 4))                   # positive
U = RNG.uniform(-0.9, 0.9, (3, 4))                  # inside (-1, 1)
G1 = RNG.uniform(1.1, 3.0, (3, 4))                  # above 1
S0 = np.array(1.5)                                  # 0-d
E = np.zeros((0, 3))                                # empty
I = np.array([[3, -1, 2], [0, 5, -4]])              # integers
B = np.array([[True, False, True], [False, False, True]])
L = [[1.0, 2.0], [3.0, 4.0]]                        # a Python list
NAN = np.array([[1.0, np.nan, 3.0], [np.nan, 5.0, 6.0]])
SQ = RNG.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)     # well-conditioned square
SPD = SQ @ SQ.T + np.eye(3)
TALL = RNG.uniform(-1, 1, (5, 3))
IDX = np.array([[1, 0, 3, 2], [0, 0, 1, 3], [2, 1, 0, 0]])


def c(*args, **kwargs):
    return args, kwargs


UNARY_DOMAINS = {"log": P, "log1p": P, "log2": P, "log10": P, "sqrt": P, "reciprocal": P,
                 "arcsin": U, "arccos": U, "arctanh": U, "arccosh": G1}

PATTERNS = {}
for _name in ("abs", "negative", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin",
              "cos", "tan", "tanh", "sinh", "cosh", "arcsin", "arccos", "arctan", "arcsinh",
              "arccosh", "arctanh", "square", "reciprocal", "sign", "floor", "ceil", "isnan",
              "isfinite", "isinf", "logical_not"):
    _x = UNARY_DOMAINS.get(_name, F)
    PATTERNS[_name] = [c(_x), c(_x.astype(np.float32)), c(np.array(_x[0, 0])), c(_x[:0]),
                       c(_x.tolist()), c(_x, dtype=np.float32)]
for _name in ("isnan", "isfinite", "isinf", "logical_not", "sign", "floor", "ceil"):
    PATTERNS[_name] = [c(F), c(F32), c(np.array([np.inf, -np.inf, np.nan, 1.0])), c(S0), c(E),
                       c([1.0, np.inf])]
PATTERNS["abs"] += [c(I)]
PATTERNS["negative"] += [c(I)]
PATTERNS["square"] += [c(I)]

for _name in ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "arctan2",
              "mod", "floor_divide", "logaddexp", "equal", "not_equal", "less", "less_equal",
              "greater", "greater_equal", "logical_and", "logical_or", "logical_xor"):
    _a = P if _name == "power" else F
    PATTERNS[_name] = [c(_a, V[:4]), c(_a.astype(np.float32), 2.0), c(S0, _a), c(E, E[:1]),
                       c(_a.tolist(), 1.5)]
    if not _name.startswith(("logical", "equal", "not_equal", "less", "greater")):
        wide = _name in ("mod", "floor_divide")  # float32 rounding could move a quotient
        PATTERNS[_name].append(c(_a, P[0], dtype=np.float64 if wide else np.float32))
PATTERNS["mod"] += [c(I, 3), c(I, -3)]
PATTERNS["floor_divide"] += [c(I, 3)]
PATTERNS["add"] += [c(I, I), c(I, 2)]
PATTERNS["equal"] += [c(I, 2)]
PATTERNS["logaddexp"] += [c(np.array([np.inf, -np.inf, 1000.0]), np.array([1.0, -np.inf, 1000.0]))]

PATTERNS.update({
    "sum": [c(F), c(F, 1), c(F, axis=0), c(F, (0, 1)), c(F, -1, keepdims=True), c(F32, 0),
            c(F, 1, np.float32), c(F, dtype=np.float32), c(I), c(I, 0), c(B, 1), c(S0), c(E),
            c(E, 0), c(L), c(a=F, axis=1), c(T3, (0, 2), None, None, True)],
    "prod": [c(F), c(F, 1), c(F32, 0, keepdims=True), c(I, 1), c(E, 1), c(L), c(F, (0, 1)),
             c(F, 0, np.float32)],
    "max": [c(F), c(F, 1), c(F, 1, keepdims=True), c(F, axis=(0, 1)), c(F32, -1), c(I, 0),
            c(S0), c(L), c(E, 1)],
    "min": [c(F), c(F, 0), c(F, 0, None, True), c(I, 1), c(S0), c(L)],
    "mean": [c(F), c(F, 1), c(F, axis=0, keepdims=True), c(F32, 1), c(F, dtype=np.float32),
             c(I), c(I, 0), c(L), c([1.0, 2.0]), c(S0), c(F, (0, 1))],
    "var": [c(F), c(F, 1), c(F, 0, ddof=1), c(F32, 0), c(I), c(L), c(F, 1, keepdims=True),
            c(F, None, None, None, 1, True), c(F, 1, correction=1)],
    "std": [c(F), c(F, 1), c(F, 0, ddof=1), c(F32, 1), c(I), c(L), c(F, axis=1, keepdims=True)],
    "argmax": [c(F), c(F, 1), c(F, axis=0), c(F, 1, keepdims=True), c(I), c(L), c(S0)],
    "argmin": [c(F), c(F, 0), c(F, -1, keepdims=True), c(I, 1), c(L)],
    "any": [c(F), c(B, 1), c(B, axis=0, keepdims=True), c(E), c(E, 0), c(I), c([0.0, 1.0]),
            c(np.zeros((2, 3)), 1)],
    "all": [c(F), c(B, 1), c(B, axis=0, keepdims=True), c(E), c(E, 1), c(I, 0), c([0.0, 1.0])],
    "cumsum": [c(F), c(F, 1), c(F, axis=0), c(I), c(I, 1), c(F, 0, np.float32), c(L), c(S0),
               c(E, 0)],
    "cumprod": [c(F), c(F, 1), c(F, axis=0), c(np.array([2.0, 0.0, 3.0])), c(I, 1), c(L),
                c(F, 0, np.float32)],
    "nansum": [c(NAN), c(NAN, 1), c(NAN, axis=0, keepdims=True), c(F), c(I, 1)],
    "nanmean": [c(NAN), c(NAN, 1), c(NAN, axis=0, keepdims=True), c(F32, 0)],
    "nanmax": [c(NAN), c(NAN, 1), c(NAN, axis=0, keepdims=True), c(F)],
    "nanmin": [c(NAN), c(NAN, 0), c(NAN, axis=1, keepdims=True), c(I)],
    "median": [c(F), c(F, 1), c(F, axis=0, keepdims=True), c(V), c(V[:4]), c(I, 1), c(L),
               c(T3, (0, 2))],
    "quantile": [c(F, 0.3), c(F, [0.25, 0.5, 1.0], 1), c(V, 0.5, method="lower"),
                 c(V, 0.4, method="higher"), c(V, 0.4, method="nearest"),
                 c(V, 0.4, method="midpoint"), c(F, 0.7, axis=0, keepdims=True), c(I, 0.5)],
    "percentile": [c(F, 30), c(F, [25, 50], 1), c(V, 90, keepdims=True)],
    "sort": [c(F), c(F, 0), c(F, axis=None), c(F32, -1), c(I), c(L), c(NAN, 1),
             c(F, stable=True), c(F, kind="stable")],
    "argsort": [c(F), c(F, 0), c(F, axis=None), c(I, kind="stable"), c(L), c(V, stable=True)],
    "searchsorted": [c(np.sort(V), 0.7), c(np.sort(V), V, "right"), c(np.sort(V), V, side="left"),
                     c(V, 1.0, sorter=np.argsort(V)), c([1.0, 2.0, 3.0], [2.0])],
    "nonzero": [c(F > 0), c(I), c(V), c(L)],
    "unique": [c(I), c(np.array([3.0, 1.0, 3.0, 2.0])), c(I, return_counts=True),
               c(np.array([2, 1, 2]), True, True, True), c([1, 1, 0])],
    "reshape": [c(F, (6, 2)), c(F, -1), c(F, (2, -1)), c(F, shape=(4, 3)), c(S0, (1, 1)),
                c(E, (3, 0)), c(L, 4), c(F, (12,), order="C")],
    "transpose": [c(F), c(T3, (2, 0, 1)), c(T3, axes=(1, 0, 2)), c(S0), c(L), c(E)],
    "expand_dims": [c(F, 0), c(F, -1), c(F, axis=(0, 2)), c(S0, 0), c(L, 1)],
    "squeeze": [c(F[None]), c(F[None, :, None], 0), c(F[:, None], axis=1), c(S0), c([[1.0]])],
    "broadcast_to": [c(V[:4], (3, 4)), c(S0, (2, 2)), c(V, shape=(2, 5)), c([1.0, 2.0], (2, 2)),
                     c(V[:1], (0, 1))],
    "astype": [c(F, np.float32), c(F, np.int64), c(F, np.float32, copy=False), c(I, np.float64),
               c(S0, np.int32), c(E, np.bool_)],
    "round": [c(F), c(F, 2), c(F, decimals=1), c(F32, 3), c(I), c(S0), c(np.array([0.5, 1.5, 2.5]))],
    "clip": [c(F, 0, 1), c(F, a_min=0, a_max=1), c(F, max=1), c(F, min=-0.5), c(F, -1, None),
             c(F32, -0.5, 0.5), c(I, 0, 2), c(F, V[:4], 1.5), c(L, 1.5, 3.0), c(S0, 0, 1)],
    "where": [c(F > 0, F, 0.0), c(B, I, -1), c(F > 0), c(V), c([True, False], 1.0, 2.0)],
    "concatenate": [c([F, F]), c([F, P], 1), c((F, P), axis=0), c([F, P], axis=None),
                    c([V, V], dtype=np.float32), c([L, L])],
    "stack": [c([F, P]), c([F, P], 1), c((V, V), axis=-1), c([S0, S0]), c([L, L], dtype=np.float32)],
    "split": [c(V[:4], 2), c(V, [2, 3]), c(F, 2, axis=1), c(F, [1], 0)],
    "array_split": [c(V, 3), c(F, 3, axis=1), c(V, [1, 4]), c(np.arange(7.0), 3)],
    "pad": [c(F, 1), c(F, ((1, 0), (2, 1))), c(V, 2, constant_values=5), c(F, 1, mode="edge"),
            c(V, 2, "reflect"), c(V, (1, 2), mode="symmetric"), c(V, 2, mode="wrap"), c(L, 1)],
    "flip": [c(F), c(F, 0), c(F, axis=1), c(T3, (0, 2)), c(L)],
    "tile": [c(V, 2), c(F, (2, 1)), c(V, (2, 2)), c(S0, 3), c(L, 2)],
    "repeat": [c(V, 2), c(F, 2, 1), c(F, [1, 0, 2], axis=0), c(L, 2), c(S0, 3)],
    "take": [c(V, [0, 2]), c(F, [1, 0], 0), c(F, IDX[:1, :2], axis=1), c(L, 3), c(F, 5)],
    "take_along_axis": [c(F, IDX), c(F, IDX[:, :2], 1), c(F, IDX[:1] % 3, axis=0),
                        c(V, np.array([4, 0]), axis=None)],
    "put_along_axis": [c(F, IDX[:, :1], 9.0, 1), c(F, IDX[:1] % 3, V[:4][None], axis=0)],
    "swapaxes": [c(T3, 0, 2), c(F, axis1=1, axis2=0), c(L, 0, 1)],
    "moveaxis": [c(T3, 0, -1), c(T3, (0, 1), (2, 0)), c(F, source=1, destination=0)],
    "ravel": [c(F), c(T3), c(S0), c(L), c(F, "C")],
    "atleast_1d": [c(S0), c(V), c(F), c(S0, V)],
    "atleast_2d": [c(S0), c(V), c(F), c(V, F)],
    "atleast_3d": [c(S0), c(V), c(F), c(T3), c(V, F)],
    "vstack": [c([V, V]), c((F, P)), c([S0, S0]), c([L, L])],
    "hstack": [c([V, V]), c((F, P)), c([S0, S0]), c([L, L])],
    "dstack": [c([V, V]), c((F, P)), c([F, T3.reshape(3, 4, 2)])],
    "roll": [c(V, 2), c(V, -1), c(F, 1, 0), c(F, (1, 2), (0, 1)), c(F, 3), c(F, shift=1, axis=1)],
    "tril": [c(F), c(F, 1), c(F, k=-1), c(T3)],
    "triu": [c(F), c(F, -1), c(F, k=2), c(T3, 1)],
    "diag": [c(V), c(V, 1), c(V, k=-2), c(F), c(F, 1), c(F, k=-1)],
    "diagonal": [c(F), c(F, 1), c(T3, 0, 1, 2), c(T3, offset=-1, axis1=2, axis2=0)],
    "trace": [c(F), c(F, 1), c(T3, 0, 1, 2), c(I)],
    "matmul": [c(F, P.T), c(V[:4], P.T), c(F, V[:4]), c(T3, P.T), c(L, L), c(F32, F32.T),
               c(F, P.T, dtype=np.float32)],
    "dot": [c(F, P.T), c(V, V), c(S0, F), c(T3, P.T), c(L, L)],
    "outer": [c(V, V[:3]), c(F, V), c(L, [1.0, 2.0])],
    "inner": [c(V, V), c(F, P), c(S0, F), c(T3, P)],
    "kron": [c(V[:2], V[:3]), c(F[:2, :2], P[:2, :3]), c(L, [[1.0], [2.0]])],
    "tensordot": [c(T3, F, 2), c(F, P, ([0, 1], [0, 1])),
                  c(F, P.T, axes=1), c(F, P, axes=([0], [0]))],
    "einsum": [c("ij,kj->ik", F, P), c("ii", SQ), c("...j,j", T3, V[:4]), c("ij->", F)],
    "isclose": [c(F, F + 1e-9), c(F, P), c(V, 0.0, atol=0.6), c(np.array([np.nan, np.inf]),
                np.array([np.nan, np.inf]), equal_nan=True), c(L, L)],
    "allclose": [c(F, F + 1e-9), c(F, P), c(V, V, 0.0, 0.0), c([1.0], [1.0 + 1e-6])],
    "zeros": [c((2, 3), np.float64), c(3, dtype=np.int32), c((0,), np.float32)],
    "ones": [c((2, 3), np.float64), c(3, dtype=np.int64)],
    "empty": [c((2, 3), np.float64), c(4, dtype=np.int32)],
    "full": [c((2, 2), 7.0, np.float64), c(3, 2, dtype=np.int64)],
    "zeros_like": [c(F), c(I), c(F, np.float32), c(F, shape=(2,)), c(L)],
    "ones_like": [c(F), c(I, dtype=np.float64), c(S0)],
    "full_like": [c(F, 3.0), c(I, 7), c(F, 2, np.int32)],
    "eye": [c(3, dtype=np.float64), c(3, k=1, dtype=np.float64), c(3, 4, 1, np.float64),
            c(2, 3, dtype=np.int64)],
    "identity": [c(3, np.float64), c(2, dtype=np.int32)],
    "arange": [c(5), c(1, 7, 2), c(0.0, 1.0, 0.25), c(5, dtype=np.float32), c(stop=4, start=1)],
    "linspace": [c(0.0, 1.0), c(0, 10, 5), c(0.0, 1.0, 4, endpoint=False), c(1, 2, 3,
                 dtype=np.float32)],
})

#: numpy functions whose ops version is not compared value for value here, and why.
NOT_COMPARED = {
    "linalg": "a module: ops.linalg is compared in LINALG_PATTERNS",
}

#: The deliberate differences from numpy (asserted in their own tests below).
FLOAT32_DEFAULTS = ("zeros", "ones", "empty", "full", "eye", "identity")

LINALG_PATTERNS = {
    "norm": [c(V), c(F), c(F, "fro"), c(F, "nuc"), c(F, 1), c(F, -1), c(F, 2), c(F, -2),
             c(F, np.inf), c(F, -np.inf), c(V, 1), c(V, np.inf), c(V, -np.inf), c(V, 0), c(V, 3),
             c(F, axis=1), c(F, 2, 0), c(T3, axis=(1, 2)), c(T3, "fro", (0, 2), True), c(T3),
             c(F, keepdims=True), c(L)],
    "inv": [c(SQ), c(np.stack([SQ, SPD]))],
    "solve": [c(SQ, V[:3]), c(SQ, F[:, :2].copy()), c(np.stack([SQ, SPD]), F[:, :2])],
    "det": [c(SQ), c(np.stack([SQ, SPD])), c(L)],
    "slogdet": [c(SQ), c(-SPD), c(np.stack([SQ, SPD]))],
    "cholesky": [c(SPD), c(SPD, upper=True)],
    "qr": [c(TALL), c(SQ), c(TALL, "r"), c(TALL, mode="complete")],
    "svd": [c(TALL, compute_uv=False), c(F, full_matrices=False), c(SQ), c(TALL, False)],
    "eigh": [c(SPD), c(SPD, "U")],
    "pinv": [c(TALL), c(F), c(np.diag([2.0, 0.0, 1.0]))],
    "matrix_power": [c(SQ, 3), c(SQ, 0), c(SQ, -2), c(SQ, n=1)],
    "lstsq": [c(TALL, V), c(TALL, TALL[:, :2]), c(SQ, V[:3], rcond=None)],
    "matmul": [c(F, P.T)],
}


def _leaves(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _check_same(name, got, want):
    got_leaves, want_leaves = _leaves(got), _leaves(want)
    assert len(got_leaves) == len(want_leaves), f"{name}: {len(got_leaves)} results, numpy gives {len(want_leaves)}"
    for g, w in zip(got_leaves, want_leaves):
        if w is None or isinstance(w, (int, np.integer)) and not isinstance(w, np.ndarray):
            assert g == w, f"{name}: got {g!r}, numpy {w!r}"
            continue
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{name}: shape {g.shape}, numpy {w.shape}"
        assert g.dtype == w.dtype, f"{name}: dtype {g.dtype}, numpy {w.dtype}"
        if np.issubdtype(w.dtype, np.inexact):
            rtol = 1e-6 if w.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * 1e-3, equal_nan=True,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


def _reference(name, module):
    if name == "take_along_axis":  # numpy >= 2.3 defaults axis to -1; older numpy needs it
        return lambda arr, indices, axis=-1: np.take_along_axis(arr, indices, axis)
    if name == "put_along_axis":
        def put(arr, indices, values, axis):
            out = np.array(arr, copy=True)
            np.put_along_axis(out, indices, values, axis)
            return out

        return put
    return getattr(module, name)


def _cases(patterns):
    return [(name, i, args, kwargs) for name, calls in sorted(patterns.items())
            for i, (args, kwargs) in enumerate(calls)]


@pytest.mark.parametrize("name,i,args,kwargs", _cases(PATTERNS),
                         ids=[f"{n}-{i}" for n, i, _, _ in _cases(PATTERNS)])
def test_matches_numpy(name, i, args, kwargs):
    with np.errstate(all="ignore"):
        want = _reference(name, np)(*args, **kwargs)
        got = getattr(ops, name)(*args, **kwargs)
    if name == "empty":
        assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype
        return
    _check_same(name, got, want)


@pytest.mark.parametrize("name,i,args,kwargs", _cases(LINALG_PATTERNS),
                         ids=[f"{n}-{i}" for n, i, _, _ in _cases(LINALG_PATTERNS)])
def test_linalg_matches_numpy(name, i, args, kwargs):
    want = getattr(np.linalg, name)(*args, **kwargs)
    got = getattr(ops.linalg, name)(*args, **kwargs)
    if name in ("qr", "svd", "eigh") and isinstance(want, tuple):
        # factors are unique up to signs: compare the products and the invariant parts
        for g, w in zip(got, want):
            assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == w.dtype
        if name == "svd":
            _check_same(name, got[1], want[1])
            np.testing.assert_allclose(np.abs(got[0]), np.abs(want[0]), rtol=1e-9, atol=1e-12)
        elif name == "eigh":
            _check_same(name, got[0], want[0])
            np.testing.assert_allclose(np.abs(got[1]), np.abs(want[1]), rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(np.abs(got[1]), np.abs(want[1]), rtol=1e-12, atol=1e-14)
        return
    _check_same(name, got, want)


def test_every_numpy_named_op_has_patterns():
    """A new op named like a numpy function needs call patterns in this table."""
    named_like_numpy = {n for n in ops.__all__ if hasattr(np, n)}
    missing = sorted(named_like_numpy - set(PATTERNS) - set(NOT_COMPARED))
    assert not missing, f"ops named like numpy functions with no call pattern: {missing}"
    linalg_named = {n for n in ops.linalg.__all__ if hasattr(np.linalg, n)}
    missing = sorted(linalg_named - set(LINALG_PATTERNS))
    assert not missing, f"ops.linalg functions with no call pattern: {missing}"


@pytest.mark.parametrize("name", FLOAT32_DEFAULTS)
def test_creation_defaults_to_float32(name):
    args = {"full": ((2,), 1.0), "eye": (2,), "identity": (2,)}.get(name, ((2,),))
    assert getattr(ops, name)(*args).dtype == np.float32


def test_out_is_refused_with_a_clear_error():
    for call in (lambda: ops.sum(F, out=np.zeros(4)), lambda: ops.add(F, F, out=F),
                 lambda: ops.mean(F, out=np.zeros(())), lambda: ops.clip(F, 0, 1, out=F)):
        with pytest.raises(AxonTypeError, match="out="):
            call()
    with pytest.raises(AxonTypeError, match="reshape: order='F'"):
        ops.reshape(F, (12,), order="F")


def test_shape_mismatch_raises_numpys_class():
    with pytest.raises(ValueError):
        ops.add(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        ops.reshape(F, (5, 5))
    with pytest.raises(ValueError):
        ops.matmul(F, F)


@pytest.mark.parametrize("call,name", [
    (lambda: ops.mean(F, axis=3), "mean"), (lambda: ops.var(F, 5), "var"),
    (lambda: ops.std(F, axis=(0, 7)), "std"), (lambda: ops.logsumexp(F, axis=4), "logsumexp"),
    (lambda: ops.median(F, 3), "median"), (lambda: ops.nanmean(F, 3), "nanmean"),
    (lambda: ops.cumprod(F, 2), "cumprod"), (lambda: ops.sort(F, 2), "sort"),
    (lambda: ops.linalg.norm(F, axis=4), "norm"), (lambda: ops.linalg.inv(F), "inv"),
])
def test_errors_in_compositions_name_the_function_called(call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call()


def test_logsumexp_weights_follow_scipy():
    # scipy.special.logsumexp(a, b=w) = log(sum(w * exp(a)))
    a, w = np.array([[0.5, 1.0, -2.0], [3.0, 0.0, 1.0]]), np.array([0.2, 1.0, 3.0])
    np.testing.assert_allclose(ops.logsumexp(a, b=w), np.log(np.sum(w * np.exp(a))), rtol=1e-12)
    np.testing.assert_allclose(ops.logsumexp(a, 1, b=w, keepdims=True),
                               np.log(np.sum(w * np.exp(a), 1, keepdims=True)), rtol=1e-12)
    value, sign = ops.logsumexp(np.array([0.0, 1.0]), b=np.array([1.0, -1.0]), return_sign=True)
    np.testing.assert_allclose([value, sign], [np.log(np.e - 1), -1.0], rtol=1e-12)


def test_softmax_over_several_axes():
    a = RNG.standard_normal((2, 3, 4))
    e = np.exp(a - a.max(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(ops.softmax(a, axis=(0, 1)), e / e.sum(axis=(0, 1), keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(ops.log_softmax(a, axis=(0, 2)),
                               a - np.log(np.exp(a).sum(axis=(0, 2), keepdims=True)), rtol=1e-12)


def test_topk_matches_a_sort():
    a = np.array([[1.0, 5.0, 3.0, 5.0], [0.0, -1.0, 2.0, 2.0]])
    values, indices = ops.topk(a, 3)
    np.testing.assert_array_equal(values, [[5.0, 5.0, 3.0], [2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(indices, [[1, 3, 2], [2, 3, 0]])
    values, indices = ops.topk(a, 1, axis=0)
    np.testing.assert_array_equal(values, [[1.0, 5.0, 3.0, 5.0]])


def test_the_arrays_guide_lists_every_numpy_named_op():
    from pathlib import Path
    import re

    guide = (Path(__file__).resolve().parents[2] / "guides" / "arrays.md").read_text()
    listed = set(re.findall(r"`([a-z_0-9]+)`", guide.split("## What is there")[1]
                            .split("## The deliberate")[0]))
    named = {n for n in ops.__all__ if hasattr(np, n)} - set(NOT_COMPARED)
    assert not sorted(named - listed), f"ops missing from guides/arrays.md: {sorted(named - listed)}"
    unknown = {n for n in listed if not hasattr(ops, n) and not hasattr(ops.linalg, n)}
    assert not unknown, f"guides/arrays.md lists functions ops lacks: {sorted(unknown)}"


def test_value_dependent_shapes_refuse_jit_and_eval_shape():
    import axon_fn
    from axon_fn.errors import StagingError

    with pytest.raises(StagingError, match="nonzero"):
        axon_fn.jit(lambda x: ops.nonzero(x)[0])(V)
    with pytest.raises(AxonTypeError, match="unique"):
        axon_fn.eval_shape(lambda x: ops.unique(x), ops.AbstractArray((3,), "float32"))
    # traced values are concrete: nonzero and where(condition) work inside grad
    g = axon_fn.grad(lambda x: ops.sum(x[ops.where(x > 0)]))(V)
    np.testing.assert_array_equal(g, (V > 0).astype(float))


def test_signature_machinery_binds_like_python_and_records_canonical_settings():
    import types

    from axon_fn._signature import numpy_signature_op

    seen = []

    def impl(xp, a, b, *, axis=None, keepdims=False):
        return ("kernel", axis, keepdims)

    prim = types.SimpleNamespace(name="demo", impl=impl)
    prim.cpu = lambda *args, **params: impl(np, *args, **params)
    fast = frozenset({np.ndarray, float, int})
    op = numpy_signature_op(
        prim, "a, b, axis=None, out=None, keepdims=False, *, order='K'", fast=fast,
        bind=lambda p, args, params: seen.append((args, params)) or "bound",
        explain=lambda *a: None, refuse=lambda *a: (_ for _ in ()).throw(AxonTypeError(a)),
        cast=None, normalize={"axis": lambda x: tuple(x)})
    assert op(F, 1.0, 1, None, True) == ("kernel", 1, True)
    assert op(F, b=2.0, keepdims=True) == ("kernel", None, True)
    assert op([1.0], 1.0, axis=[0, 1]) == "bound"
    assert seen[-1] == (([1.0], 1.0), {"axis": (0, 1)})  # defaults left out, axis made canonical
    with pytest.raises(TypeError):
        op(F)  # b is required, as Python says
    with pytest.raises(AxonTypeError):
        op(F, F, order="F")
    with pytest.raises(TypeError, match="lacks the settings"):
        numpy_signature_op(prim, "a, b, axis=None", fast=fast, bind=None, explain=None,
                           refuse=None, cast=None)
