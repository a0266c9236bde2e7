"""The fused Adam kernel gives the values of the leafwise formulas, and steps aside when it
does not cover the trees."""

import numpy as np
import pytest

from axon_fn import _native, optim
from axon_fn.optim import _fused

pytestmark = pytest.mark.skipif(not _native.available(), reason="C kernels not built")

rng = np.random.default_rng(3)


def params(dtype=np.float32):
    return {"dense": {"kernel": rng.standard_normal((70, 300)).astype(dtype),
                      "bias": rng.standard_normal(300).astype(dtype)},
            "scale": rng.standard_normal(()).astype(dtype)}


def run(opt, tree, steps=4):
    state = opt.init(tree)
    outs = []
    for i in range(steps):
        grads = optim.apply_updates(tree, tree)  # 2 * params: a deterministic gradient
        grads = {"dense": {n: g * (i + 1) for n, g in grads["dense"].items()},
                 "scale": grads["scale"]}
        updates, state = opt.update(grads, state, tree)
        tree = optim.apply_updates(tree, updates)
        outs.append(updates)
    return tree, state, outs


def numpy_path(monkeypatch, fn):
    with monkeypatch.context() as patch:
        patch.setattr(_native, "available", lambda: False)
        return fn()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda: optim.adam(1e-2), lambda: optim.scale_by_adam(),
                                  lambda: optim.adam(1e-2, eps_root=1e-8, b1=0.8)],
                         ids=["adam", "scale_by_adam", "adam-options"])
def test_fused_adam_matches_the_leafwise_formulas(monkeypatch, make, dtype):
    start = params(dtype)
    fused = run(make(), start)
    plain = numpy_path(monkeypatch, lambda: run(make(), start))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(optim_leaves(fused), optim_leaves(plain)):
        got, want = np.asarray(got), np.asarray(want)  # 0-d leaves may be numpy scalars
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)


def optim_leaves(result):
    import optree
    return optree.tree_leaves(result)


def test_fused_path_is_taken_and_steps_aside(monkeypatch):
    calls = []
    original = _fused.adam_moments_and_update

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out is not None)
        return out
    monkeypatch.setattr("axon_fn.optim.aliases.adam_moments_and_update", spy)
    opt = optim.adam(1e-3)
    state = opt.init(params())
    opt.update(params(), state)
    mixed = {"a": np.ones(3, np.float32), "b": np.ones(3, np.float64)}
    opt.update(mixed, opt.init(mixed))
    half = {"a": np.ones(3, np.float16)}
    updates, _ = opt.update(half, opt.init(half))
    # float16 gradients are widened to float32 for the update (optim._validate.in_float32),
    # so the fused float32 kernel runs and the updates are rounded back to float16
    assert calls == [True, False, True]
    assert updates["a"].dtype == np.float16
    np.testing.assert_allclose(updates["a"], -1e-3, rtol=1e-3)
