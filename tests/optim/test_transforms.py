"""Each transformation against a hand-written numpy reference for 3 steps on tiny inputs."""

import math

import numpy as np
import optree
import pytest

from axon_fn import optim
from axon_fn.errors import InvalidArgumentError, ShapeError

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.4, 1.0]), np.array([1.0, 1.0, -2.0])]
PARAMS = np.array([1.0, -2.0, 0.5])


def run3(tx, params=PARAMS, grads=GRADS):
    state = tx.init(params)
    outs = []
    for g in grads:
        u, state = tx.update(g, state, params)
        outs.append(u)
    return outs, state


def check(tx, expected, params=PARAMS, grads=GRADS, rtol=1e-6, atol=1e-12):
    outs, _ = run3(tx, params, grads)
    for step, (got, want) in enumerate(zip(outs, expected)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"step {step}")


# References (plain numpy, straight from the papers / Optax's formulas) -----------------------


def ref_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    m = v = 0.0
    out = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = m / (1 - b1 ** t)
        out.append(m_hat / (np.sqrt(v / (1 - b2 ** t) + eps_root) + eps))
    return out


def test_scale_by_adam_literal_first_step():
    # Step 1 of Adam is g / (|g| + eps) after bias correction: the sign of g.
    outs, state = run3(optim.scale_by_adam(eps=0.0))
    np.testing.assert_allclose(outs[0], [1.0, -1.0, 1.0], rtol=1e-12)
    assert int(state.count) == 3 and type(state).__name__ == "ScaleByAdamState"


@pytest.mark.parametrize("nesterov", [False, True])
def test_scale_by_adam(nesterov):
    check(optim.scale_by_adam(b1=0.8, b2=0.9, eps=1e-3, eps_root=1e-4, nesterov=nesterov),
          ref_adam(0.8, 0.9, 1e-3, 1e-4, nesterov))


def test_scale_by_amsgrad():
    b1, b2, eps = 0.9, 0.99, 1e-8
    m = v = vmax = 0.0
    want = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v / (1 - b2 ** t))
        want.append(m / (1 - b1 ** t) / (np.sqrt(vmax) + eps))
    check(optim.scale_by_amsgrad(b1, b2, eps), want)


def test_scale_by_adamax():
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = u = 0.0
    want = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        want.append(m / (1 - b1 ** t) / u)
    check(optim.scale_by_adamax(b1, b2, eps), want)


def test_scale_by_rms_and_stddev():
    decay, eps = 0.9, 1e-8
    v, m = np.full(3, 0.5), 0.0
    want_rms, want_std = [], []
    v2 = np.full(3, 0.5)
    for g in GRADS:
        v = decay * v + (1 - decay) * g * g
        want_rms.append(g / np.sqrt(v + eps))
        m = decay * m + (1 - decay) * g
        v2 = decay * v2 + (1 - decay) * g * g
        want_std.append(g / np.sqrt(v2 - m * m + eps))
    check(optim.scale_by_rms(decay, eps, initial_scale=0.5), want_rms)
    check(optim.scale_by_stddev(decay, eps, initial_scale=0.5), want_std)
    v = 0.0
    want = []
    for g in GRADS:
        v = decay * v + (1 - decay) * g * g
        want.append(g / (np.sqrt(v) + 0.1))
    check(optim.scale_by_rms(decay, 0.1, eps_in_sqrt=False), want)


def test_scale_by_rss_literal():
    # Adagrad with accumulator 0 and eps 0: g1 / |g1|, then g2 / sqrt(g1^2 + g2^2), ...
    grads = [np.array([3.0, 0.0]), np.array([4.0, 0.0]), np.array([0.0, 2.0])]
    check(optim.scale_by_rss(0.0, 0.0),
          [np.array([1.0, 0.0]), np.array([0.8, 0.0]), np.array([0.0, 1.0])],
          params=np.zeros(2), grads=grads)


def test_scale_by_rss():
    s = np.full(3, 0.1)
    want = []
    for g in GRADS:
        s = s + g * g
        want.append(g / np.sqrt(s + 1e-7))
    check(optim.scale_by_rss(), want)


@pytest.mark.parametrize("nesterov", [False, True])
def test_scale_by_belief(nesterov):
    # Optax's scale_by_belief, written out: the prediction error uses the *updated* first moment
    # (mu = b1 mu + (1 - b1) g; prediction_error = g - mu), eps_root is added before the bias
    # correction, and nesterov is NAdam's look-ahead.
    b1, b2, eps, eps_root = 0.8, 0.9, 1e-3, 1e-4
    m = s = 0.0
    want = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = m / (1 - b1 ** t)
        want.append(m_hat / (np.sqrt(s / (1 - b2 ** t)) + eps))
    check(optim.scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov), want)


def test_scale_by_belief_matches_optax():
    optax = pytest.importorskip("optax")
    for nesterov in (False, True):
        ours, theirs = optim.adabelief(0.1, nesterov=nesterov), optax.adabelief(0.1,
                                                                                nesterov=nesterov)
        # JAX computes in float32 unless x64 is on: compare float32 runs of both
        params, grads = PARAMS.astype(np.float32), [g.astype(np.float32) for g in GRADS]
        want = run3(theirs, params, grads)[0]
        check(ours, [np.asarray(w) for w in want], params, grads, rtol=1e-5, atol=1e-7)


def test_scale_by_radam():
    # With b2 = 0.5, rho_inf = 3 < 5: always the un-rectified momentum.
    b1 = 0.9
    m = 0.0
    want = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        want.append(m / (1 - b1 ** t))
    check(optim.scale_by_radam(b2=0.5), want)
    # b2 = 0.9: rho_inf = 19 and rho_t = rho_inf - 2 t b2^t / (1 - b2^t) first reaches the
    # threshold 5 at t = 6 (rho_6 = 5.39), so steps 1-5 are momentum only, 6-7 rectified.
    b2, eps = 0.9, 1e-8
    grads = [np.array([0.5, -1.0]) * (1 + 0.1 * t) for t in range(7)]
    rho_inf = 2 / (1 - b2) - 1
    m = v = 0.0
    want, rectified = [], []
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        rectified.append(rho >= 5.0)
        if rho >= 5.0:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            want.append(r * m_hat / (np.sqrt(v_hat) + eps))
        else:
            want.append(m_hat)
    assert rectified == [False] * 5 + [True] * 2
    check(optim.scale_by_radam(b2=b2), want, params=np.zeros(2), grads=grads)


def test_scale_by_yogi():
    b1, b2, eps, v0 = 0.9, 0.999, 1e-3, 1e-6
    m = np.full(3, v0)
    v = np.full(3, v0)
    want = []
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        want.append(m / (1 - b1 ** t) / (np.sqrt(v / (1 - b2 ** t)) + eps))
    check(optim.scale_by_yogi(), want)


def test_scale_by_lion():
    b1, b2 = 0.9, 0.99
    m = 0.0
    want = []
    for g in GRADS:
        want.append(np.sign((1 - b1) * g + b1 * m))
        m = b2 * m + (1 - b2) * g
    check(optim.scale_by_lion(), want)


def test_scale_by_factored_rms_unfactored_and_factored():
    # Unfactored (rank 1): v = rate v + (1 - rate)(g^2 + eps), rate_t = 1 - (t + 1)^-0.8.
    v = 0.0
    want = []
    for t, g in enumerate(GRADS):
        rate = 1 - (t + 1.0) ** -0.8
        v = rate * v + (1 - rate) * (g * g + 1e-30)
        want.append(g / np.sqrt(v))
    check(optim.scale_by_factored_rms(), want)
    # Factored (min_dim_size_to_factor=2 on a 2x3 leaf): row/col means of g^2.
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(2, 3)) for _ in range(3)]
    vr, vc = np.zeros(2), np.zeros(3)
    want = []
    for t, g in enumerate(grads):
        rate = 1 - (t + 1.0) ** -0.8
        g2 = g * g + 1e-30
        vr = rate * vr + (1 - rate) * g2.mean(axis=1)  # reduce the largest dim (axis 1)
        vc = rate * vc + (1 - rate) * g2.mean(axis=0)
        want.append(g / np.sqrt(np.outer(vr / vr.mean(), vc)))
    check(optim.scale_by_factored_rms(min_dim_size_to_factor=2), want,
          params=np.zeros((2, 3)), grads=grads)


def test_scale_by_learning_rate_and_schedule():
    check(optim.scale_by_learning_rate(0.5), [-0.5 * g for g in GRADS])
    check(optim.scale_by_learning_rate(0.5, flip_sign=False), [0.5 * g for g in GRADS])
    sched = lambda count: 0.1 * (count + 1)  # noqa: E731  count is 0, 1, 2
    check(optim.scale_by_learning_rate(sched), [-0.1 * (i + 1) * g for i, g in enumerate(GRADS)])
    check(optim.scale_by_schedule(sched), [0.1 * (i + 1) * g for i, g in enumerate(GRADS)])


def test_trace_and_ema():
    t = 0.0
    want, want_nag = [], []
    for g in GRADS:
        t = g + 0.9 * t
        want.append(t)
        want_nag.append(g + 0.9 * t)
    check(optim.trace(0.9), want)
    check(optim.trace(0.9, nesterov=True), want_nag)
    e = 0.0
    want, want_raw = [], []
    for i, g in enumerate(GRADS, 1):
        e = 0.5 * e + 0.5 * g
        want.append(e / (1 - 0.5 ** i))
        want_raw.append(e)
    check(optim.ema(0.5), want)
    check(optim.ema(0.5, debias=False), want_raw)


def test_trace_literal():
    check(optim.trace(0.5), [np.array([1.0]), np.array([1.5]), np.array([1.75])],
          params=np.zeros(1), grads=[np.array([1.0])] * 3)


def test_add_decayed_weights_and_mask():
    check(optim.add_decayed_weights(0.1), [g + 0.1 * PARAMS for g in GRADS])
    params = {"w": np.ones(2), "b": np.ones(2)}
    tx = optim.add_decayed_weights(0.5, mask={"w": True, "b": False})
    u, _ = tx.update({"w": np.zeros(2), "b": np.zeros(2)}, tx.init(params), params)
    np.testing.assert_allclose(u["w"], [0.5, 0.5])
    np.testing.assert_allclose(u["b"], [0.0, 0.0])


def test_add_noise_statistics_and_determinism():
    tx = optim.add_noise(eta=1.0, gamma=0.0, seed=3)
    params = np.zeros(20000, np.float32)
    state = tx.init(params)
    u1, state = tx.update(params, state)
    u2, state = tx.update(params, state)
    assert u1.dtype == np.float32 and abs(u1.std() - 1.0) < 0.05 and not np.allclose(u1, u2)
    again, _ = tx.update(params, tx.init(params))
    np.testing.assert_array_equal(again, u1)
    # Variance eta / t^gamma: at step 4 with eta=1, gamma=2, std = 1/4.
    tx = optim.add_noise(1.0, 2.0, 0)
    state = tx.init(params)
    for _ in range(4):
        u, state = tx.update(params, state)
    assert abs(u.std() - 0.25) < 0.02


def test_clipping():
    check(optim.clip(0.6), [np.clip(g, -0.6, 0.6) for g in GRADS])
    want = []
    for g in GRADS:
        n = np.linalg.norm(g)
        want.append(g if n < 1.5 else g / n * 1.5)
    check(optim.clip_by_global_norm(1.5), want)
    want = [g / max(1.0, np.sqrt(np.mean(g * g)) / 0.7) for g in GRADS]
    check(optim.clip_by_block_rms(0.7), want)


def test_centralize_and_nonnegative_and_zero_nans():
    g = np.arange(6.0).reshape(2, 3)
    u, _ = optim.centralize().update({"m": g, "v": np.array([1.0, 2.0])}, optim.EmptyState())
    np.testing.assert_allclose(u["m"], [[-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_allclose(u["v"], [1.0, 2.0])
    tx = optim.keep_params_nonnegative()
    check(tx, [np.where(PARAMS + g < 0, -PARAMS, g) for g in GRADS])
    tx = optim.zero_nans()
    params = {"a": np.zeros(2), "b": np.zeros(1)}
    state = tx.init(params)
    assert not bool(state.found_nan["a"])
    u, state = tx.update({"a": np.array([np.nan, 1.0]), "b": np.array([2.0])}, state)
    np.testing.assert_array_equal(u["a"], [0.0, 1.0])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])


def test_trust_ratio_and_param_scales():
    want = []
    for g in GRADS:
        want.append(g * np.linalg.norm(PARAMS) / np.linalg.norm(g))
    check(optim.scale_by_trust_ratio(), want)
    check(optim.scale_by_trust_ratio(trust_coefficient=0.01, eps=0.5),
          [g * 0.01 * np.linalg.norm(PARAMS) / (np.linalg.norm(g) + 0.5) for g in GRADS])
    # A zero parameter leaf keeps the raw update.
    u, _ = optim.scale_by_trust_ratio().update(np.ones(2), optim.EmptyState(), np.zeros(2))
    np.testing.assert_allclose(u, [1.0, 1.0])
    check(optim.scale_by_param_block_rms(),
          [g * np.sqrt(np.mean(PARAMS ** 2)) for g in GRADS])
    check(optim.scale_by_param_block_norm(), [g * np.linalg.norm(PARAMS) for g in GRADS])


def test_float32_stays_float32_with_numpy_scalar_hyperparameters():
    params = {"w": np.ones(3, np.float32)}
    grads = {"w": np.array([0.1, -0.2, 0.3], np.float32)}
    for tx in [optim.scale_by_adam(np.float64(0.9), np.asarray(0.99)),
               optim.scale_by_learning_rate(np.float64(0.1)),
               optim.scale_by_learning_rate(lambda c: np.float64(0.1)),
               optim.trace(np.asarray(0.9)), optim.scale_by_rms(), optim.scale_by_rss(),
               optim.scale_by_factored_rms(), optim.ema(0.9), optim.scale_by_yogi()]:
        state = tx.init(params)
        for _ in range(2):
            u, state = tx.update(grads, state, params)
        assert u["w"].dtype == np.float32


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: optim.scale_by_adam(b1=1.0), lambda: optim.scale_by_adam(b2=-0.1),
    lambda: optim.scale_by_rms(decay=1.5), lambda: optim.ema(1.0),
    lambda: optim.scale_by_lion(b1=float("nan")), lambda: optim.trace(-0.5),
])
def test_decay_outside_unit_interval(make):
    with pytest.raises(InvalidArgumentError, match="decay rate"):
        make()


def test_schedule_returning_non_number():
    def bad_schedule(count):
        return "fast"

    tx = optim.scale_by_learning_rate(bad_schedule)
    with pytest.raises(InvalidArgumentError, match="bad_schedule.*'fast'"):
        tx.update(np.ones(1), tx.init(np.ones(1)))
    tx = optim.scale_by_schedule(lambda c: np.ones(2))
    with pytest.raises(InvalidArgumentError, match="must return a real number"):
        tx.update(np.ones(1), tx.init(np.ones(1)))


@pytest.mark.parametrize("tx", [optim.add_decayed_weights(0.1), optim.scale_by_trust_ratio(),
                                optim.keep_params_nonnegative(),
                                optim.scale_by_param_block_rms()])
def test_mismatched_params_names_path(tx):
    updates = {"dense": {"kernel": np.ones(2), "bias": np.ones(2)}}
    params = {"dense": {"kernel": np.ones(2), "scale": np.ones(2)}}
    with pytest.raises(ShapeError, match="dense/bias"):
        tx.update(updates, tx.init(params), params)
    with pytest.raises(InvalidArgumentError, match="needs the parameters"):
        tx.update(updates, tx.init(params))


def test_state_is_a_pytree_with_none_leaves():
    params = {"w": np.ones(2, np.float32), "frozen": None}
    tx = optim.scale_by_adam()
    state = tx.init(params)
    u, new_state = tx.update({"w": np.ones(2, np.float32), "frozen": None}, state)
    assert u["frozen"] is None
    assert optree.tree_structure(state) == optree.tree_structure(new_state)
