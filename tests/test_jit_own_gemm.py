"""axon_fn's own float product in compiled programs (``_compile/gemm.h``, AVX-512 only) and the
loops that run on each block of a product as it is done (epilogues).

Every expected value is numpy's: the product in float64, Adam written out as Optax defines it.
Sizes are picked to cross the product's block boundaries (rows of A in blocks of at most 144,
k in blocks of at most 400, columns in blocks of at most 1024) and to leave partial tiles (6
rows by 64 columns), with one and three threads.
"""

import numpy as np
import pytest

from axon_fn import grad, jit, ops, optim

from .jit_support import needs_cc


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


AVX512 = _has_avx512()
rng = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AXON_FN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jit-cache"))
    monkeypatch.delenv("AXON_FN_JIT", raising=False)
    monkeypatch.delenv("AXON_FN_JIT_OWN_GEMM", raising=False)


def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def compiled(f, *args):
    """``f`` (a ``jit`` function) run twice on ``args`` (it compiles on the second call), its
    program and the result."""
    f(*args)
    result = f(*args)
    program = next(iter(f.programs.values())).native
    assert program is not None, next(iter(f.programs.values())).why_python
    return program, result


def assert_own_products(program, threads):
    """The program's big products ran on axon_fn's own where it exists (AVX-512) and the
    program has every core it may use; else on the BLAS."""
    expected = AVX512 and (program.plan.threading == "held" or threads == "1")
    assert program.own_products == AVX512  # gemm.h compiled where it should
    line = [s for s in program.explain().splitlines() if s.startswith("products of")]
    assert line and (("axon_fn's own" in line[0]) == expected), line


def close(got, want):
    """float32 products against float64 ones: to float32's rounding of their magnitude."""
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * float(np.abs(want).max()))


@needs_cc
@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("m, k, n, a_t, b_t", [
    (128, 900, 512, False, False),  # one block of rows; k in three blocks (results added)
    (301, 77, 190, True, True),  # both transposed; partial tiles both ways
    (400, 130, 256, True, False),  # rows in three blocks; each thread its rows
    (20, 64, 4200, False, True),  # columns in five blocks; few rows: each thread its columns
    (7, 700, 1000, False, False),  # a partial tile of one row; k in two blocks
])
def test_own_products_match_numpy(monkeypatch, threads, m, k, n, a_t, b_t):
    monkeypatch.setenv("AXON_FN_NUM_THREADS", threads)
    a = normal(k, m) if a_t else normal(m, k)
    b = normal(n, k) if b_t else normal(k, n)
    f = jit(lambda a, b: ops.matmul(ops.transpose(a) if a_t else a,
                                    ops.transpose(b) if b_t else b), backend="native")
    program, got = compiled(f, a, b)
    assert_own_products(program, threads)
    close(got, (a.T if a_t else a).astype(np.float64) @ (b.T if b_t else b))


@needs_cc
@pytest.mark.parametrize("threads", ["1", "3"])
def test_a_layers_bias_and_activation_run_on_each_finished_block(monkeypatch, threads):
    monkeypatch.setenv("AXON_FN_NUM_THREADS", threads)
    x, w, b = normal(150, 300), normal(300, 256), normal(256)
    f = jit(lambda x, w, b: ops.relu(x @ w + b), backend="native")
    program, got = compiled(f, x, w, b)
    assert program.plan.epilogues
    assert "(the product's epilogue)" in program.explain()
    assert_own_products(program, threads)
    close(got, np.maximum(x.astype(np.float64) @ w + b, 0))


@needs_cc
@pytest.mark.parametrize("threads", ["1", "3"])
def test_adam_runs_on_each_finished_block_of_its_gradient(monkeypatch, threads):
    """The weight gradient's product (300 x 128 @ 128 x 256) takes Adam's update of the weight
    as its epilogue: the update loop moves up next to it, the step counter to the start."""
    monkeypatch.setenv("AXON_FN_NUM_THREADS", threads)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    optimizer = optim.adam(lr, b1=b1, b2=b2, eps=eps)

    def step(w, state, x, y):
        g = grad(lambda w: ops.sum((x @ w - y) ** 2))(w)
        updates, state = optimizer.update(g, state, w)
        return optim.apply_updates(w, updates), state

    w0, x, y = normal(300, 256) * 0.1, normal(128, 300), normal(128, 256)
    f = jit(step, backend="native", donate_argnums=(0, 1))
    w, state = w0.copy(), optimizer.init(w0)
    for _ in range(3):
        w, state = f(w, state, x, y)
    program = next(iter(f.programs.values())).native
    products = [i for i, item in enumerate(program.plan.items) if item.kind == "gemm"]
    assert products[-1] in program.plan.epilogues  # the gradient's, the last one
    assert program.plan.items[0].kind == "increment"
    assert_own_products(program, threads)

    want, m, v = w0.astype(np.float64), np.zeros(w0.shape), np.zeros(w0.shape)
    for t in range(1, 4):  # optax.adam
        g = 2 * x.T.astype(np.float64) @ (x @ want - y)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        want = want - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(w, want, rtol=1e-4, atol=1e-5)


@needs_cc
@pytest.mark.parametrize("threads", ["1", "3"])
def test_an_epilogue_never_writes_where_its_product_still_reads(monkeypatch, threads):
    """tanh(a) is last read by the product (transposed), so without care its memory would be
    free for the epilogue's result, of the same size: the first block of rows would write over
    rows of tanh(a) that the next block still reads."""
    monkeypatch.setenv("AXON_FN_NUM_THREADS", threads)
    a, w, w2 = normal(256, 200), normal(256, 256) * 0.1, normal(256, 8)
    f = jit(lambda a, w, w2: ops.relu(ops.transpose(ops.tanh(a)) @ w + 1.0) @ w2,
            backend="native")
    program, got = compiled(f, a, w, w2)
    assert program.plan.epilogues
    hidden = np.maximum(np.tanh(a.astype(np.float64)).T @ w + 1.0, 0)
    close(got, hidden @ w2)


@needs_cc
def test_a_loop_reading_its_product_through_a_view_is_no_epilogue(monkeypatch):
    """c + c.T reads elements of c from other blocks than the one just done: that loop must
    wait for the whole product."""
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "1")
    a, w = normal(256, 256), normal(256, 256)

    def f(a, w):
        c = a @ w
        return c + ops.transpose(c)

    program, got = compiled(jit(f, backend="native"), a, w)
    assert not program.plan.epilogues
    c = a.astype(np.float64) @ w
    close(got, c + c.T)


@needs_cc
def test_own_products_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("AXON_FN_JIT_OWN_GEMM", "0")
    monkeypatch.setenv("AXON_FN_NUM_THREADS", "1")
    a, b = normal(128, 300), normal(300, 512)
    program, got = compiled(jit(lambda a, b: a @ b, backend="native"), a, b)
    assert not program.own_products
    assert "products of 4,194,304 multiply-adds and more: the BLAS" in program.explain()
    close(got, a.astype(np.float64) @ b)
