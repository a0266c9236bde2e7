"""The same ops and gradients on CuPy arrays, compared with numpy. Skipped without a GPU."""

import numpy as np
import optree
import pytest

import axon_fn

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the optional 'gpu' extra)")
try:
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no CUDA device", allow_module_level=True)
except Exception as err:  # CUDA driver missing
    pytest.skip(f"no usable CUDA device ({err})", allow_module_level=True)

from tests.ops.harness import all_cases  # noqa: E402

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_and_gradient_match_numpy(case):
    gpu_args = axon_fn.device_put(case.args, "cuda")
    expected = case.fn(*case.args)
    got = case.fn(*gpu_args)
    for e, g in zip(optree.tree_leaves(expected), optree.tree_leaves(got)):
        assert axon_fn.backend.is_gpu_array(g) or np.ndim(g) == 0
        np.testing.assert_allclose(axon_fn.to_numpy(g), e, rtol=1e-6, atol=1e-9)
    if not case.grad:
        return
    floats = [i for i, a in enumerate(case.args) if np.issubdtype(np.asarray(a).dtype, np.floating)]

    def loss(*args):
        out = case.fn(*args)
        return sum(axon_fn.ops.sum(o * 1.0) for o in optree.tree_leaves(out))

    g_cpu = axon_fn.grad(loss, argnums=tuple(floats))(*case.args)
    g_gpu = axon_fn.grad(loss, argnums=tuple(floats))(*gpu_args)
    for c, g in zip(g_cpu, g_gpu):
        np.testing.assert_allclose(axon_fn.to_numpy(g), c, rtol=1e-6, atol=1e-9)


def test_device_put_round_trip():
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    on_gpu = axon_fn.device_put(tree, "cuda:0")
    assert axon_fn.backend.is_gpu_array(on_gpu["w"])
    assert axon_fn.device_put(on_gpu, "cuda:0")["w"] is on_gpu["w"]
    np.testing.assert_array_equal(axon_fn.to_numpy(on_gpu)["w"], tree["w"])


def test_a_compiled_training_step_stays_on_the_gpu_and_matches_numpy():
    model = (axon_fn.input("x", shape=(None, 4)) >> axon_fn.dense(8, activation="relu")
             >> axon_fn.dense(1))
    init_fn, predict_fn = axon_fn.build(model)
    optimizer = axon_fn.optim.adam(0.05)

    def step(state, opt_state, x, y):
        def loss_fn(trainable):
            prediction = predict_fn(state.replace(trainable=trainable), x)
            return axon_fn.losses.mean_squared_error(y, prediction)

        loss, grads = axon_fn.value_and_grad(loss_fn)(state.trainable)
        updates, opt_state = optimizer.update(grads, opt_state, state.trainable)
        trainable = axon_fn.optim.apply_updates(state.trainable, updates)
        return state.replace(trainable=trainable), opt_state, loss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = x[:, :1] * 2.0
    state = init_fn(x[:1], axon_fn.random.key(0))
    cpu = (state, optimizer.init(state.trainable))
    gpu = axon_fn.device_put(cpu, "cuda")
    compiled = axon_fn.jit(step)
    gx, gy = axon_fn.device_put((x, y), "cuda")
    for _ in range(3):  # a recording, then replays
        *cpu, cpu_loss = step(*cpu, x, y)
        *gpu, gpu_loss = compiled(*gpu, gx, gy)
    for leaf in optree.tree_leaves(gpu[0].trainable):
        assert axon_fn.backend.is_gpu_array(leaf)
    np.testing.assert_allclose(float(axon_fn.to_numpy(gpu_loss)), float(cpu_loss), rtol=1e-5)
    for g, c in zip(optree.tree_leaves(axon_fn.to_numpy(gpu[0].trainable)),
                    optree.tree_leaves(cpu[0].trainable)):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-6)
