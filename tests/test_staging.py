"""axon_fn.jit: a replayed program computes what the function computes, for new values."""

import numpy as np
import optree
import pytest

import axon_fn
from axon_fn import StagingError, jit, ops, optim, random
from axon_fn.loop import trainer

rng = np.random.default_rng(0)
BACKEND = {"name": "python"}


@pytest.fixture(autouse=True, params=["python", "native"])
def backend(request, monkeypatch):
    """Every test runs on both jit backends: the Python replay, and C compiled on the first
    replay (with a compiler; without one the native run checks the replay again)."""
    if request.param == "python":
        monkeypatch.setenv("AXON_FN_JIT", "python")
    else:
        monkeypatch.delenv("AXON_FN_JIT", raising=False)
        monkeypatch.setenv("AXON_FN_JIT_COMPILE_AFTER", "0")
    BACKEND["name"] = request.param
    return request.param


def arrays(*shapes, dtype=np.float32):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def assert_trees_equal(got, want):
    got_leaves, got_def = optree.tree_flatten(got)
    want_leaves, want_def = optree.tree_flatten(want)
    assert got_def == want_def
    for g, w in zip(got_leaves, want_leaves):
        if BACKEND["name"] == "python":  # the same kernels on the same values
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
        else:  # C loops round float32 differently (sums in double, no pairwise order)
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-6, atol=1e-7)
        assert np.asarray(g).dtype == np.asarray(w).dtype


def test_replay_computes_the_function_on_new_values():
    def f(x, w):
        return {"y": ops.tanh(x @ w).sum(axis=0), "n": ops.mean(x * x)}

    compiled = jit(f)
    for _ in range(3):  # the first call records, the others replay
        x, w = arrays((4, 3), (3, 2))
        assert_trees_equal(compiled(x, w), f(x, w))
    assert compiled.cache_size() == 1
    x, w = arrays((5, 3), (3, 2))  # a new shape is a new signature
    assert_trees_equal(compiled(x, w), f(x, w))
    assert compiled.cache_size() == 2


def test_a_training_step_with_grad_and_adam_replays_exactly():
    x_in = axon_fn.input("x", shape=(None, 6))
    model = (x_in >> axon_fn.dense(8, activation="relu") >> axon_fn.batch_norm()
             >> axon_fn.dropout(0.3) >> axon_fn.dense(3))
    init_fn, train_fn = axon_fn.build(model, mode="train")
    opt = optim.adam(1e-2)

    def step(state, opt_state, key, x, labels):
        key, step_key = random.split(key)

        def loss_fn(trainable):
            logits, new_state = train_fn(state.replace(trainable=trainable), x, key=step_key)
            loss = axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True,
                                                            sparse=True)
            return loss, new_state

        (loss, new_state), grads = axon_fn.value_and_grad(loss_fn, has_aux=True)(
            state.trainable)
        updates, opt_state = opt.update(grads, opt_state, state.trainable)
        new_state = new_state.replace(trainable=optim.apply_updates(state.trainable, updates))
        return new_state, opt_state, key, loss

    state = init_fn(np.zeros((1, 6), np.float32), random.key(0))
    eager = (state, opt.init(state.trainable), random.key(1))
    compiled_step, compiled = jit(step), eager
    for _ in range(4):
        x = arrays((16, 6))[0]
        labels = rng.integers(0, 3, size=16)
        *eager, eager_loss = step(*eager, x, labels)
        *compiled, compiled_loss = compiled_step(*compiled, x, labels)
        assert_trees_equal((compiled, compiled_loss), (eager, eager_loss))
    assert compiled_step.cache_size() == 1


def test_value_dependent_python_control_flow_is_a_staging_error():
    with pytest.raises(StagingError, match=r"bool\(\)"):
        jit(lambda x: x if ops.sum(x) > 0 else -x)(np.ones(3))
    with pytest.raises(StagingError, match="numpy conversion"):
        jit(lambda x: np.asarray(x) * 2)(np.ones(3))
    with pytest.raises(StagingError, match=r"float\(\)"):
        jit(lambda x: x * float(ops.max(x)))(np.ones(3))


def test_static_arguments_and_non_array_leaves_are_part_of_the_signature():
    power = jit(lambda x, n: x ** n, static_argnums=1)
    x = np.array([2.0, 3.0])
    np.testing.assert_array_equal(power(x, 2), [4.0, 9.0])
    np.testing.assert_array_equal(power(x, 3), [8.0, 27.0])
    assert power.cache_size() == 2

    scaled = jit(lambda tree: tree["x"] * tree["factor"])  # a Python float leaf is static
    np.testing.assert_array_equal(scaled({"x": x, "factor": 0.5}), [1.0, 1.5])
    np.testing.assert_array_equal(scaled({"x": x, "factor": 2.0}), [4.0, 6.0])
    assert scaled.cache_size() == 2
    # 1, 1.0 and True hash alike but are different settings
    kinds = jit(lambda x, k: x * k, static_argnums=1)
    assert kinds(np.array([3], np.int64), 1).dtype == np.int64
    assert kinds(np.array([3], np.int64), 1.0).dtype == np.float64
    with pytest.raises(axon_fn.AxonTypeError, match="not hashable"):
        jit(lambda x, s: x, static_argnums=1)(x, [1, 2])


def test_unused_work_is_dropped_from_the_program():
    def f(x):
        ops.exp(x)  # its result is never used
        return ops.tanh(x)

    compiled = jit(f)
    compiled(np.ones(3))
    (program,) = compiled.programs.values()
    assert program.n_steps == 1
    np.testing.assert_allclose(compiled(np.zeros(3)), np.zeros(3))


def test_jit_inside_grad_and_grad_of_jit():
    f = jit(lambda x: ops.sum(ops.sin(x) * x))
    x = np.array([0.5, -1.0, 2.0])
    expected = np.sin(x) + x * np.cos(x)
    np.testing.assert_allclose(axon_fn.grad(f)(x), expected)  # traced values run f directly
    np.testing.assert_allclose(jit(axon_fn.grad(f))(x), expected)
    np.testing.assert_allclose(jit(axon_fn.grad(f))(2 * x), np.sin(2 * x) + 2 * x * np.cos(2 * x))


def test_random_draws_follow_the_key_at_replay():
    draw = jit(lambda key: random.normal(random.split(key)[1], (3,)))
    for seed in (0, 1, 2):
        np.testing.assert_array_equal(draw(random.key(seed)),
                                      random.normal(random.split(random.key(seed))[1], (3,)))


def test_gather_indices_are_inputs_of_the_program():
    table = arrays((5, 2))[0]
    loss = jit(axon_fn.value_and_grad(lambda t, ids: ops.sum(ops.take(t, ids, axis=0) ** 2)))
    for ids in (np.array([0, 0, 3]), np.array([4, 1, 1])):
        value, grad = loss(table, ids)
        want = np.zeros_like(table)
        np.add.at(want, ids, 2 * table[ids])
        np.testing.assert_allclose(value, np.sum(table[ids] ** 2), rtol=1e-6)
        np.testing.assert_allclose(grad, want, rtol=1e-6)
    assert loss.cache_size() == 1


def test_checks_on_values_still_run_at_replay():
    loss = jit(lambda logits, labels: axon_fn.losses.categorical_cross_entropy(
        labels, logits, from_logits=True, sparse=True))
    logits = arrays((2, 3))[0]
    loss(logits, np.array([0.0, 2.0]))  # integer-valued float labels are accepted
    with pytest.raises(axon_fn.InvalidArgumentError, match="sparse labels must be integers"):
        loss(logits, np.array([0.5, 2.0]))


def test_a_staged_value_kept_past_its_call_is_an_error():
    kept = []
    jit(lambda x: kept.append(x * 2) or x)(np.ones(2))
    with pytest.raises(StagingError, match="has returned"):
        ops.exp(kept[0])


def linear_data(n_batches=4):
    x = rng.standard_normal((n_batches * 8, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    return [(x[i:i + 8], y[i:i + 8]) for i in range(0, len(x), 8)]


@pytest.mark.parametrize("optimizer", ["adam", "sgd", lambda: optim.adamw(
    optim.cosine_decay_schedule(1e-2, 20))], ids=["adam", "sgd", "adamw-schedule"])
def test_the_compiled_trainer_matches_the_eager_one(optimizer):
    model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4, activation="tanh") \
        >> axon_fn.dropout(0.2) >> axon_fn.dense(1)
    make = optimizer if callable(optimizer) else (lambda: optimizer)
    data = linear_data()
    runs = [trainer(model, "mean_squared_error", make(), compile=mode,
                    learning_rate=None if callable(optimizer) else 1e-2).run(
        data, epochs=3) for mode in (True, False)]
    if BACKEND["name"] == "python":
        assert runs[0].history == runs[1].history
    else:
        assert [h.keys() for h in runs[0].history] == [h.keys() for h in runs[1].history]
        for got, want in zip(runs[0].history, runs[1].history):
            np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-6)
    assert_trees_equal(runs[0].step_state.model_state, runs[1].step_state.model_state)
    assert_trees_equal(runs[0].step_state.optimizer_state, runs[1].step_state.optimizer_state)


def test_a_trainer_step_that_cannot_compile_falls_back_or_raises():
    model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(1)
    data = linear_data()
    # MultiSteps decides on its count in Python: not compilable
    with pytest.raises(StagingError):
        trainer(model, "mean_squared_error", "sgd", learning_rate=0.1, accumulate_steps=2,
                compile=True).run(data, epochs=1)
    auto, eager = (trainer(model, "mean_squared_error", "sgd", learning_rate=0.1,
                           accumulate_steps=2, compile=mode).run(data, epochs=2)
                   for mode in ("auto", False))
    assert auto.history == eager.history
    with pytest.raises(axon_fn.InvalidArgumentError, match="compile"):
        trainer(model, "mean_squared_error", "sgd", compile="yes")
    with pytest.raises(axon_fn.InvalidArgumentError, match="loss scale cannot be compiled"):
        trainer(model, "mean_squared_error", "sgd", compile=True,
                loss_scale=optim.DynamicLossScale())


def test_differentiating_through_a_fused_adam_update_stays_on_the_tape():
    opt = optim.adam(0.1)
    params = {"w": arrays((3,))[0].astype(np.float64)}
    state = opt.update({"w": np.ones(3)}, opt.init(params), params)[1]  # moments not zero

    def moved(g):
        return ops.sum(opt.update({"w": g}, state, params)[0]["w"] ** 2)

    axon_fn.testing.check_grads(moved, np.array([0.3, -1.2, 2.0]))


def test_custom_vjp_rules_are_recorded_too():
    @axon_fn.custom_vjp
    def clip_gradient(x):
        return x * 1.0

    clip_gradient.defvjp(lambda x: (clip_gradient(x), None),
                         lambda _, g: (ops.clip(g, -0.5, 0.5),))
    gradient = axon_fn.grad(lambda x: ops.sum(clip_gradient(x) * x))
    compiled = jit(gradient)
    for x in (np.array([1.0, -2.0, 0.1]), np.array([3.0, 0.2, -0.3])):
        np.testing.assert_array_equal(compiled(x), np.clip(x, -0.5, 0.5) + x)
