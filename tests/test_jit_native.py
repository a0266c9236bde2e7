"""The native jit backend: every C lowering against numpy's own functions, on contiguous
arrays, broadcast operands and transposed views; fusion, products, the optimizer steps, calls
out, donation, the disk cache and the fallbacks.

tests/test_staging.py runs the general jit tests on both backends; this file checks what only
the compiled programs do. Without a C compiler, the tests that need one skip.
"""

import math
import threading
import weakref

import numpy as np
import pytest

import axon_fn
from axon_fn import grad, jit, ops, optim
from axon_fn._compile import emit, lowering, toolchain

from .jit_support import needs_cc

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AXON_FN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jit-cache"))
    monkeypatch.delenv("AXON_FN_JIT", raising=False)


def native(f, **kwargs):
    return jit(f, backend="native", **kwargs)


def tol(dtype):
    # libm against numpy's own SIMD functions: a few ulp apart
    return {"rtol": 2e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13,
                                                                      "atol": 1e-13}


def assert_compiled(f, *args, callouts=False):
    text = f.explain(*args)
    assert "C segment" in text, text
    if not callouts:
        assert "call out" not in text, text
    return text


# Elementwise: (op, numpy reference, input maker) ---------------------------------------------

def positive(*shape):
    return rng.uniform(0.2, 2.0, shape)


def unit(*shape):
    return rng.uniform(-0.9, 0.9, shape)


def normal(*shape):
    return rng.standard_normal(shape)


UNARY = {
    "negative": (np.negative, normal), "exp": (np.exp, normal), "log": (np.log, positive),
    "tanh": (np.tanh, normal), "sqrt": (np.sqrt, positive), "abs": (np.abs, normal),
    "log1p": (np.log1p, positive), "expm1": (np.expm1, normal), "sin": (np.sin, normal),
    "cos": (np.cos, normal), "tan": (np.tan, unit), "sinh": (np.sinh, normal),
    "cosh": (np.cosh, normal), "arcsin": (np.arcsin, unit), "arccos": (np.arccos, unit),
    "arctan": (np.arctan, normal), "arcsinh": (np.arcsinh, normal),
    "arccosh": (np.arccosh, lambda *s: 1.0 + positive(*s)), "arctanh": (np.arctanh, unit),
    "floor": (np.floor, normal), "ceil": (np.ceil, normal), "round": (np.round, normal),
    "erf": (lambda x: np.vectorize(math.erf)(x).astype(x.dtype), normal),
    "rsqrt": (lambda x: 1 / np.sqrt(x), positive), "relu": (lambda x: np.maximum(x, 0), normal),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), normal), "sign": (np.sign, normal),
}
BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "power": lambda a, b: np.power(np.abs(a), b), "arctan2": np.arctan2,
    "maximum": np.maximum, "minimum": np.minimum,
    "relu_grad": lambda g, ans: np.where(ans > 0, g, 0),
    "tanh_grad": lambda g, ans: g * (1 - ans * ans),
    "sigmoid_grad": lambda g, ans: g * ans * (1 - ans),
}
COMPARE = {"greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
           "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal}
LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or}


def op_of(name):
    return axon_fn._core.PRIMITIVES[name].op


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_match_numpy(name, dtype):
    reference, make = UNARY[name]
    x = make(3, 5).astype(dtype)
    f = native(lambda x: op_of(name)(x.T) * 1)
    assert_compiled(f, x)
    for _ in range(2):
        x = make(3, 5).astype(dtype)
        got = f(x)
        want = reference(x.T)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol(dtype))


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_broadcast_like_numpy(name, dtype):
    reference = BINARY[name]
    fn = op_of(name)
    if name == "power":
        fn = (lambda a, b: op_of("power")(op_of("abs")(a), b))
    f = native(lambda a, b, c: (fn(a, b), fn(a.T, c), fn(b, 2.0)))
    a, b, c = normal(4, 6).astype(dtype), normal(6).astype(dtype), normal(6, 1).astype(dtype)
    assert_compiled(f, a, b, c)
    got = f(a, b, c)
    want = (reference(a, b), reference(a.T, c), reference(b, dtype(2.0)))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, **tol(dtype))


@needs_cc
@pytest.mark.parametrize("name", sorted(COMPARE) + sorted(LOGICAL))
def test_comparisons_and_logic_give_booleans(name):
    reference = {**COMPARE, **LOGICAL}[name]
    a = rng.integers(-2, 3, (5, 4)).astype(np.float32)
    b = rng.integers(-2, 3, (4,)).astype(np.float64)  # promoted to float64, as numpy does
    f = native(lambda a, b: op_of(name)(a, b))
    assert_compiled(f, a, b)
    got = f(a, b)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, reference(a, b))


@needs_cc
def test_where_not_astype_and_nan_rules():
    x = np.array([[np.nan, -1.0, 0.0, 2.0]], np.float32)
    y = np.array([1.0, np.nan, -3.0, 0.5], np.float32)
    f = native(lambda x, y: (ops.where(x > 0, x, y), ops.maximum(x, y), ops.minimum(x, y),
                             ops.logical_not(x > 0), ops.astype(y > 0, dtype=np.float64),
                             ops.relu(x)))
    assert_compiled(f, x, y)
    got = f(x, y)
    want = (np.where(x > 0, x, y), np.maximum(x, y), np.minimum(x, y), np.logical_not(x > 0),
            (y > 0).astype(np.float64), np.maximum(x, 0))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@needs_cc
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, False)])
def test_sums_over_axes_match_numpy(axis, keepdims):
    x = normal(4, 3, 5).astype(np.float32)
    f = native(lambda x: (ops.sum(ops.exp(x), axis=axis, keepdims=keepdims),
                          ops.sum(x > 0, axis=axis)))
    assert_compiled(f, x)
    got = f(x)
    np.testing.assert_allclose(got[0], np.sum(np.exp(x), axis=axis, keepdims=keepdims),
                               rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.sum(x > 0, axis=axis))
    assert got[1].dtype == np.sum(x > 0, axis=axis).dtype


@needs_cc
def test_views_feed_loops_and_outputs_get_their_own_arrays():
    x = normal(2, 3, 4).astype(np.float32)

    def f(x):
        t = ops.transpose(x, (2, 0, 1))               # a view read by a loop
        r = ops.reshape(t, (4, 6))                     # a reshape of scattered memory: a copy
        b = ops.broadcast_to(ops.sum(x, axis=0), (5, 3, 4))
        return r * 2.0, ops.reshape(x, (6, 4)), b, ops.expand_dims(x, 0), ops.squeeze(
            ops.expand_dims(x * 1.0, 1), axis=1)

    compiled = native(f)
    assert_compiled(compiled, x)
    got = compiled(x)
    want = (np.transpose(x, (2, 0, 1)).reshape(4, 6) * 2, x.reshape(6, 4),
            np.broadcast_to(x.sum(0), (5, 3, 4)), x[None], x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
        assert g.flags.c_contiguous and not np.shares_memory(g, x)


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape,b_shape", [
    ((4, 3), (3, 5)), ((3,), (3, 5)), ((4, 3), (3,)), ((3,), (3,)), ((2, 4, 3), (3, 5)),
    ((2, 4, 3), (2, 3, 5)), ((2, 1, 4, 3), (3, 3, 2)), ((128, 256), (256, 96))])
def test_products_match_numpy(a_shape, b_shape, dtype):
    a, b = normal(*a_shape).astype(dtype), normal(*b_shape).astype(dtype)
    f = native(lambda a, b: (a @ b, ops.swapaxes(b, -1, -2) @ ops.swapaxes(a, -1, -2))
               if len(a_shape) > 1 and len(b_shape) > 1 else (a @ b,))
    assert_compiled(f, a, b)
    got = f(a, b)
    want = (a @ b,) if len(got) == 1 else (a @ b, np.swapaxes(b, -1, -2) @ np.swapaxes(a, -1, -2))
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


@needs_cc
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
def test_dense_forward_and_gradients(activation):
    x, k, b = normal(6, 5), normal(5, 3), normal(3)
    reference = {None: lambda y: y, "relu": lambda y: np.maximum(y, 0), "tanh": np.tanh,
                 "sigmoid": lambda y: 1 / (1 + np.exp(-y))}[activation]
    f = native(lambda x, k, b: op_of("dense")(x, k, b, activation=activation))
    assert_compiled(f, x, k, b)
    np.testing.assert_allclose(f(x, k, b), reference(x @ k + b), rtol=1e-12)
    loss = native(grad(lambda k, x, b: ops.sum(op_of("dense")(x, k, b, activation=activation) ** 2)))
    assert_compiled(loss, k, x, b)
    eps = 1e-6  # float64 central differences of the loss, element by element
    numeric = np.zeros_like(k)
    for i in np.ndindex(*k.shape):
        d = np.zeros_like(k)
        d[i] = eps
        numeric[i] = (np.sum(reference(x @ (k + d) + b) ** 2)
                      - np.sum(reference(x @ (k - d) + b) ** 2)) / (2 * eps)
    np.testing.assert_allclose(loss(k, x, b), numeric, rtol=1e-6, atol=1e-8)


def mlp_step(optimizer):
    model = axon_fn.input("x", shape=(None, 6)) >> axon_fn.dense(8, activation="relu") \
        >> axon_fn.dense(2)
    init_fn, predict_fn = axon_fn.build(model)
    state = init_fn(np.zeros((1, 6), np.float32), axon_fn.random.key(0))

    def step(trainable, opt_state, x, y):
        def loss(t):
            return axon_fn.losses.mean_squared_error(y, predict_fn(state.replace(trainable=t), x))
        value, grads = axon_fn.value_and_grad(loss)(trainable)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optim.apply_updates(trainable, updates), opt_state, value

    return step, state.trainable, optimizer.init(state.trainable)


def batches(n):
    return [(normal(16, 6).astype(np.float32), normal(16, 2).astype(np.float32))
            for _ in range(n)]


@needs_cc
@pytest.mark.parametrize("name", ["adam", "sgd", "adamw", "adam-unfused"])
@pytest.mark.parametrize("donate", [(), (0, 1)])
def test_training_steps_match_the_replay(name, donate, monkeypatch):
    if name == "adam-unfused":  # Adam from elementwise ops and its bias-correction steps
        monkeypatch.setattr("axon_fn.optim.aliases.adam_moments_and_update",
                            lambda *args, **kwargs: None)
    optimizer = {"adam": optim.adam(1e-2), "sgd": optim.sgd(1e-2, momentum=0.9),
                 "adamw": optim.adamw(1e-2), "adam-unfused": optim.adam(1e-2)}[name]
    step, params, opt_state = mlp_step(optimizer)
    data = batches(6)
    runs = []
    for f in (jit(step, backend="python"), native(step, donate_argnums=donate)):
        p = axon_fn.tree.tree_map(np.copy, params)
        s = axon_fn.tree.tree_map(np.copy, opt_state)
        losses = []
        for x, y in data:
            p, s, value = f(p, s, x, y)
            losses.append(float(value))
        runs.append((losses, p, s))
    text = native(step).explain(params, opt_state, *data[0])
    assert "call out" not in text, text
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    for g, w in zip(axon_fn.tree.leaves(runs[1][1:]), axon_fn.tree.leaves(runs[0][1:])):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


@needs_cc
def test_donated_arrays_come_back_as_the_outputs():
    def f(w, x):
        return w - 0.5 * (w * x), ops.sum(w * x)

    compiled = native(f, donate_argnums=0)
    w, x = normal(4, 3), normal(4, 3)
    compiled(w.copy(), x)  # records (and compiles)
    w_in = w.copy()
    new_w, total = compiled(w_in, x)
    assert new_w is w_in  # written in place
    np.testing.assert_allclose(new_w, w - 0.5 * w * x, rtol=1e-12)
    np.testing.assert_allclose(total, np.sum(w * x), rtol=1e-12)

    # read again after the output is written (by a product): not donated, still right
    g = native(lambda w, x: (w + 1.0, ops.swapaxes(w, 0, 1) @ x), donate_argnums=0)
    g(w.copy(), x)
    w_in = w.copy()
    out, product = g(w_in, x)
    np.testing.assert_allclose(out, w + 1.0)
    np.testing.assert_allclose(product, w.T @ x, rtol=1e-12)


@needs_cc
def test_steps_without_a_lowering_run_as_calls_out_between_segments():
    def f(x, w):
        h = ops.tanh(x) * 2.0
        y = axon_fn.ops.conv(h, w)  # no C lowering: a call out
        return ops.sum(ops.relu(y) + 1.0)

    x, w = normal(2, 6, 6, 3).astype(np.float32), normal(3, 3, 3, 4).astype(np.float32)
    compiled = native(f)
    text = assert_compiled(compiled, x, w, callouts=True)
    assert "call out: conv_general" in text and "C segment 1" in text
    want = np.sum(np.maximum(axon_fn.ops.conv(np.tanh(x) * 2.0, w), 0) + 1.0)
    for _ in range(2):
        np.testing.assert_allclose(compiled(x, w), want, rtol=1e-5)


@needs_cc
def test_scattered_views_returned_by_calls_out_are_read_in_order():
    # an LSTM's gates are column slices of one product: strided views, made by a call out
    # (getitem) and read by the fused gate loop; and a slice of the arena as an output
    def f(x, w):
        z = ops.tanh(x @ w)
        return ops.sigmoid(z[:, :3]) * ops.tanh(z[:, 3:]), z[1:3]

    x, w = normal(5, 4).astype(np.float32), normal(4, 6).astype(np.float32)
    compiled = native(f)
    text = assert_compiled(compiled, x, w, callouts=True)
    assert "call out: getitem" in text
    first = compiled(x, w)
    z = np.tanh(x @ w)
    for _ in range(2):
        x2 = normal(5, 4).astype(np.float32)
        got = compiled(x2, w)
    np.testing.assert_allclose(first[1], z[1:3], rtol=1e-6)  # not overwritten by later calls
    z2 = np.tanh(x2 @ w)
    np.testing.assert_allclose(got[0], 1 / (1 + np.exp(-z2[:, :3])) * np.tanh(z2[:, 3:]),
                               rtol=1e-5)
    np.testing.assert_allclose(got[1], z2[1:3], rtol=1e-6)


@needs_cc
def test_a_cached_program_loads_without_compiling(monkeypatch):
    def f(x):
        return ops.sum(ops.exp(x) * 3.0 + 1.0)

    x = normal(7).astype(np.float32)
    first = native(f)
    first(x)
    assert not first.programs[next(iter(first.programs))].native.cached
    calls = []
    monkeypatch.setattr(toolchain, "_compile", lambda *a: calls.append(a))
    second = native(f)  # a new jit: records again, finds the library on disk
    np.testing.assert_allclose(second(x), np.sum(np.exp(x) * 3 + 1), rtol=1e-6)
    program = next(iter(second.programs.values()))
    assert program.native.cached and calls == []


def test_without_a_compiler_the_replay_runs_and_says_why(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr("shutil.which", lambda name: None)
    toolchain.compiler.cache_clear()
    toolchain.compiler_info.cache_clear()
    try:
        f = native(lambda x: ops.sum(ops.tanh(x)))
        x = normal(5)
        np.testing.assert_allclose(f(x), np.sum(np.tanh(x)))
        text = f.explain(x)
        assert "Python replay" in text and "no C compiler" in text
        assert axon_fn.backend_info()["jit"]["backend"] == "python"
    finally:
        toolchain.compiler.cache_clear()
        toolchain.compiler_info.cache_clear()


@needs_cc
def test_scattered_inputs_are_copied_and_a_busy_program_replays():
    f = native(lambda x, y: ops.exp(x) + y)
    x, y = normal(4, 4), normal(4, 4)
    f(x, y)
    np.testing.assert_allclose(f(x.T, y), np.exp(x.T) + y)  # not C-contiguous: copied
    np.testing.assert_allclose(f(np.asfortranarray(x), y), np.exp(x) + y)
    results, errors = [], []

    def work():
        try:
            for _ in range(200):
                results.append(np.allclose(f(x, y), np.exp(x) + y))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results) and len(results) == 600


@needs_cc
@pytest.mark.skipif(axon_fn._compile.default_backend() == "python",
                    reason="AXON_FN_JIT=python or AXON_FN_NATIVE=0: the replay is the default")
def test_the_trainer_and_evaluator_compile_their_steps(monkeypatch):
    built = []
    original = toolchain.build

    def spy(source, exports):
        built.append(source)
        return original(source, exports)

    monkeypatch.setattr(toolchain, "build", spy)
    model = axon_fn.input("x", shape=(None, 6)) >> axon_fn.dense(4, activation="tanh") \
        >> axon_fn.dense(2)
    data = batches(4)
    state = axon_fn.loop.trainer(model, "mean_squared_error", "adam",
                                 learning_rate=1e-2).run(data, epochs=2).step_state
    assert len(built) == 1  # the step: recorded by the first call, compiled by the second
    axon_fn.loop.evaluator(model).run(data, state.model_state)
    assert len(built) == 2


def test_every_lowering_has_a_test_case():
    covered = set(UNARY) | set(BINARY) | set(COMPARE) | set(LOGICAL) | {
        "logical_not", "where", "astype", "sum", "matmul", "dense", "reshape", "expand_dims",
        "squeeze", "transpose", "broadcast_to", "axon_fn.autodiff._engine._sum_leading",
        "axon_fn.optim.adaptive._increment", "axon_fn.optim._fused._adam_step",
        "axon_fn.optim.adaptive._correction"}  # the unfused Adam (AXON_FN_NATIVE=0)
    assert set(lowering.LOWERED) - covered == set()


# Work split between threads (three, so that no split is even) -------------------------------

def parallel_source(f):
    return next(iter(f.programs.values())).native.source


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_vector_products_split_between_threads(dtype, monkeypatch):
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "3")
    x, w, wt = (normal(1, 301).astype(dtype), normal(301, 263).astype(dtype),
                normal(263, 301).astype(dtype))
    f = native(lambda x, w, wt: (x @ w, x[0] @ w, x @ ops.swapaxes(wt, 0, 1)))
    got = f(x, w, wt)
    for g, want in zip(got, (x @ w, x[0] @ w, x @ wt.T)):
        assert g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-4 if dtype == np.float32 else 1e-12)


@needs_cc
def test_long_loops_split_between_threads(monkeypatch):
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "3")
    a, b, c = normal(301, 200), normal(200), normal(70001)
    f = native(lambda a, b, c: (ops.tanh(a) * b + 1.0, ops.exp(-c) * 2.0, ops.sum(a * a)))
    got = f(a, b, c)
    assert "#pragma omp parallel for" in parallel_source(f)
    np.testing.assert_allclose(got[0], np.tanh(a) * b + 1.0, rtol=1e-13)
    np.testing.assert_allclose(got[1], np.exp(-c) * 2.0, rtol=1e-13)
    np.testing.assert_allclose(got[2], np.sum(a * a), rtol=1e-12)
    # a program with a product too narrow to split between three threads (blocks under 64
    # wide) keeps to one thread beside the BLAS's (both spin waiting for work)
    g = native(lambda a, w: ops.tanh(a @ w) * 2.0)
    a, w = normal(190, 190), normal(190, 190)
    assert 190**3 >= emit.SPLIT_MIN and 190 < 3 * emit.SPLIT_WIDTH
    np.testing.assert_allclose(g(a, w), np.tanh(a @ w) * 2.0, rtol=1e-12)
    assert "axon_team = 1;" in parallel_source(g) and "omp parallel" not in parallel_source(g)


@needs_cc
def test_sums_over_the_outer_axis_split_between_threads_in_a_fixed_order(monkeypatch):
    """A bias gradient's sum over the batch (and a full sum) in a long loop: each of three
    threads sums its block of rows, and the partial sums are added in thread order, so the
    result is numpy's (within rounding) and the same every call."""
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "3")
    g, ans = normal(301, 200), normal(301, 200)
    counts = rng.integers(-5, 5, size=(301, 200)).astype(np.int32)

    def step(g, ans, counts):
        masked = ops.where(ans > 0, g, 0.0)
        return (masked, ops.sum(masked, axis=0), ops.sum(g * ans), ops.sum(counts, axis=0),
                ops.sum(ans > 0, axis=0))

    f = native(step)
    f(g, ans, counts)  # records
    got = f(g, ans, counts)
    source = parallel_source(f)
    assert "part" in source and "#pragma omp barrier" in source
    masked = np.where(ans > 0, g, 0.0)
    np.testing.assert_allclose(got[1], masked.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], np.sum(g * ans), rtol=1e-12)
    np.testing.assert_array_equal(got[3], counts.sum(axis=0))
    np.testing.assert_array_equal(got[4], (ans > 0).sum(axis=0))
    for _ in range(5):  # the threads finish in any order; the sums are added in one
        again = f(g, ans, counts)
        for a, b in zip(again, got):
            np.testing.assert_array_equal(a, b)


@needs_cc
@pytest.mark.parametrize("m, k, n", [(301, 200, 150), (100, 250, 333)])  # by rows, by columns
def test_products_split_between_held_threads(monkeypatch, m, k, n):
    """With the BLAS held to one thread, a product past AXON_SPLIT_MIN is split in blocks
    of its longer side (sizes no multiple of 16, three threads), transposed operands too."""
    from axon_fn import _native

    monkeypatch.setenv("AXON_FN_NUM_THREADS", "3")
    if toolchain.blas_thread_control() is None or not _native.available():
        pytest.skip("needs OpenBLAS's thread control and the C kernels")
    with open(toolchain.RUNTIME) as header:  # the two figures are one
        assert f"AXON_SPLIT_MIN ((int64_t)1 << {emit.SPLIT_MIN.bit_length() - 1})" in header.read()
    assert m * k * n >= emit.SPLIT_MIN and min(max(m, n), max(k, n), max(m, k)) >= 3 * 64
    a, w = normal(m, k), normal(k, n)
    f = native(grad(lambda a, w: ops.sum(ops.tanh(a @ w)), argnums=(0, 1)))
    f(a, w)  # records
    got_a, got_w = f(a, w)
    assert next(iter(f.programs.values())).native.plan.threading == "held"
    g = 1.0 - np.tanh(a @ w) ** 2  # d sum(tanh(z)) / dz
    np.testing.assert_allclose(got_a, g @ w.T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_w, a.T @ g, rtol=1e-10, atol=1e-10)


@needs_cc
def test_adam_over_a_large_parameter_split_between_threads(monkeypatch):
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "3")
    optimizer = optim.adam(1e-2)

    def step(w, s, x):
        grads = grad(lambda w: ops.sum((w * x) ** 2))(w)
        updates, s = optimizer.update(grads, s, w)
        return optim.apply_updates(w, updates), s

    w0, x = normal(257, 201).astype(np.float32), normal(257, 201).astype(np.float32)
    runs = []
    for f in (jit(step, backend="python"), native(step)):
        w, s = w0.copy(), optimizer.init(w0)
        for _ in range(3):
            w, s = f(w, s, x)
        runs.append((w, s))
    assert "#pragma omp parallel for" in parallel_source(f)
    for g, want in zip(axon_fn.tree.leaves(runs[1]), axon_fn.tree.leaves(runs[0])):
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-7)


# Outputs written again into arrays the caller has dropped -----------------------------------

@needs_cc
def test_outputs_reuse_only_arrays_nothing_else_holds():
    f = native(lambda w, x: (w * 0.5 + x, ops.sum(w)))
    x = normal(3, 4)
    w = normal(3, 4)
    seen, expected = [], w
    for _ in range(6):  # the usual loop: the caller keeps only the newest result
        w, total = f(w, x)
        np.testing.assert_allclose(total, np.sum(expected), rtol=1e-12)
        expected = expected * 0.5 + x
        np.testing.assert_allclose(w, expected, rtol=1e-12)
        seen.append(weakref.ref(w))  # (holds no reference)
    # from the third call on, the array of two calls before is written again
    assert all(seen[i]() is seen[i - 2]() is not None for i in range(4, 6))

    kept, w = [], normal(3, 4)
    reference = [w]
    for _ in range(5):  # every result kept: always a new array, none overwritten later
        w, _ = f(w, x)
        kept.append(w)
        reference.append(reference[-1] * 0.5 + x)
    assert len({id(a) for a in kept}) == 5
    for got, want in zip(kept, reference[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12)

    a, _ = f(w, x)  # an earlier result passed back out of turn, while it is still held
    b, _ = f(a, x)
    c, _ = f(a, x)
    np.testing.assert_allclose(b, a * 0.5 + x, rtol=1e-12)
    np.testing.assert_array_equal(c, b)
    assert c is not b and c is not a

    row = f(normal(3, 4), x)[0][1]  # only a view of a result survives: its base is kept
    saved = row.copy()
    for _ in range(4):
        f(normal(3, 4), x)
    np.testing.assert_array_equal(row, saved)


@needs_cc
def test_programs_calling_out_hold_the_cores_while_they_run(monkeypatch):
    """A program that calls out and runs no product too big for one BLAS thread keeps the BLAS
    to one thread and gives the C kernels every thread while it runs, then restores both; a
    program with a bigger product leaves both as they are (emit.threading_mode)."""
    from axon_fn import _native

    monkeypatch.setenv("AXON_FN_NUM_THREADS", "2")
    control = toolchain.blas_thread_control()
    if control is None or not _native.available():
        pytest.skip("needs OpenBLAS's thread control and the C kernels")
    import cffi

    blas_threads = cffi.FFI().cast("int (*)(void)", control[1])
    seen = []

    @axon_fn._core.stageable
    def probe(y):  # a call out that reports the thread counts it runs with
        seen.append((int(blas_threads()), _native.num_threads()))
        return y.copy()

    def step(x, w, k):
        y = probe(ops.relu(axon_fn.ops.conv(x, w)))
        return ops.sum(ops.reshape(y, (x.shape[0], -1)) @ k)

    x, w = normal(8, 8, 8, 3).astype(np.float32), normal(3, 3, 3, 4).astype(np.float32)
    outside = (int(blas_threads()), _native.num_threads())
    # the second product is big enough to split; no split serves it when each thread's block
    # must be wider than any product is
    for rows, width, mode in ((64, emit.SPLIT_WIDTH, "held"),
                              (emit.SPLIT_MIN // (8 * 144) + 64, 10**9, "shared")):
        monkeypatch.setattr(emit, "SPLIT_WIDTH", width)
        k = normal(144, rows).astype(np.float32)
        f = native(step)
        f(x, w, k)  # records (the probe runs eagerly)
        seen.clear()
        got = f(x, w, k)
        want = np.sum(np.maximum(axon_fn.ops.conv(x, w), 0).reshape(8, -1) @ k)
        np.testing.assert_allclose(got, want, rtol=1e-4)
        assert next(iter(f.programs.values())).native.plan.threading == mode
        assert seen == [(1, 2) if mode == "held" else outside]
        assert (int(blas_threads()), _native.num_threads()) == outside  # restored

    # held programs overlapping in several threads: the last to finish restores the settings
    k = normal(144, 64).astype(np.float32)
    programs = [native(step), native(lambda x, w, k: step(x, w, k) * 2.0)]
    for f in programs:
        f(x, w, k)

    def run(f):
        for _ in range(30):
            f(x, w, k)

    threads = [threading.Thread(target=run, args=(f,)) for f in programs * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (int(blas_threads()), _native.num_threads()) == outside
