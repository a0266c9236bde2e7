"""The same ops, gradients and training steps on the GPU path, compared with numpy.

Every test runs twice: on ``tests/simulated_cupy.py`` (numpy-backed, on any machine, counting
host transfers) and on a real CuPy device (skipped without one).
"""

import numpy as np
import optree
import pytest

import axon_fn
from tests import simulated_cupy


def _real_cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the optional 'gpu' extra)")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as err:  # CUDA driver missing
        pytest.skip(f"no usable CUDA device ({err})")
    return cupy


@pytest.fixture(params=["simulated", "cuda"])
def device(request):
    """The ``cupy`` module the test runs on: the simulation, or a real device."""
    if request.param == "cuda":
        yield _real_cupy()
    else:
        with simulated_cupy.installed() as cupy:
            yield cupy


from tests.ops.harness import all_cases

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_and_gradient_match_numpy(device, case):
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


def test_device_put_round_trip(device):
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    on_gpu = axon_fn.device_put(tree, "cuda:0")
    assert axon_fn.backend.is_gpu_array(on_gpu["w"])
    assert axon_fn.device_put(on_gpu, "cuda:0")["w"] is on_gpu["w"]
    np.testing.assert_array_equal(axon_fn.to_numpy(on_gpu)["w"], tree["w"])


def _transfers(device):
    """Host transfers counted so far (the simulation counts them; a real device cannot)."""
    return dict(simulated_cupy.transfers) if device is simulated_cupy.cupy else None


OPTIMIZERS = {
    "adam": lambda: axon_fn.optim.adam(0.05),
    "sgd_momentum": lambda: axon_fn.optim.sgd(0.05, momentum=0.9),
    "adamw_schedule_clip": lambda: axon_fn.optim.chain(
        axon_fn.optim.clip_by_global_norm(1.0),
        axon_fn.optim.adamw(axon_fn.optim.warmup_cosine_decay_schedule(0.0, 0.05, 2, 10))),
}


def _mlp():
    return (axon_fn.input("x", shape=(None, 4)) >> axon_fn.dense(8, activation="relu")
            >> axon_fn.dropout(rate=0.25) >> axon_fn.dense(1))


def _cnn():
    image = axon_fn.input("x", shape=(None, 4)) >> axon_fn.reshape((2, 2, 1))
    return (image >> axon_fn.conv(3, kernel_size=2, padding="same", activation="relu")
            >> axon_fn.batch_norm() >> axon_fn.max_pool(kernel_size=2) >> axon_fn.flatten()
            >> axon_fn.dense(1))


MODELS = {"mlp_dropout": _mlp, "cnn_batch_norm": _cnn}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("model_name, name", [("mlp_dropout", o) for o in sorted(OPTIMIZERS)]
                         + [("cnn_batch_norm", "adam")])
def test_a_training_step_stays_on_the_gpu_and_matches_numpy(device, model_name, name,
                                                             compiled):
    """Parameters, optimizer state, key and batch on the device: the step makes no host
    transfer at all (no round trip to read a count, a norm or a random draw), and it computes
    what the numpy step computes."""
    init_fn, train_fn = axon_fn.build(MODELS[model_name](), mode="train")
    optimizer = OPTIMIZERS[name]()

    def step(state, opt_state, key, x, y):
        key, step_key = axon_fn.random.split(key)

        def loss_fn(trainable):
            prediction, new_state = train_fn(state.replace(trainable=trainable), x,
                                             key=step_key)
            return axon_fn.losses.mean_squared_error(y, prediction), new_state

        (loss, new_state), grads = axon_fn.value_and_grad(loss_fn, has_aux=True)(
            state.trainable)
        updates, opt_state = optimizer.update(grads, opt_state, state.trainable)
        trainable = axon_fn.optim.apply_updates(state.trainable, updates)
        return new_state.replace(trainable=trainable), opt_state, key, loss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = x[:, :1] * 2.0
    state = init_fn(x[:1], axon_fn.random.key(0))
    cpu = (state, optimizer.init(state.trainable), axon_fn.random.key(1))
    gpu = axon_fn.device_put(cpu, "cuda")
    gx, gy = axon_fn.device_put((x, y), "cuda")
    gpu_step = axon_fn.jit(step) if compiled else step
    before = _transfers(device)
    for _ in range(4):  # compiled: a recording, then replays
        *gpu, gpu_loss = gpu_step(*gpu, gx, gy)
        *cpu, cpu_loss = step(*cpu, x, y)
    assert _transfers(device) == before  # None on a real device
    for leaf in optree.tree_leaves(gpu):
        assert axon_fn.backend.is_gpu_array(leaf)
    np.testing.assert_allclose(float(axon_fn.to_numpy(gpu_loss)), float(cpu_loss), rtol=1e-5)
    for g, c in zip(optree.tree_leaves(axon_fn.to_numpy(gpu)), optree.tree_leaves(cpu)):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-6)


RANDOM_DRAWS = {
    "split": lambda k: axon_fn.random.split(k, 3),
    "fold_in": lambda k: axon_fn.random.fold_in(k, 2**40 + 7),
    "uniform": lambda k: axon_fn.random.uniform(k, (5, 3), "float32", -2.0, 3.0),
    "uniform_float64": lambda k: axon_fn.random.uniform(k, (7,), "float64"),
    "normal": lambda k: axon_fn.random.normal(k, (4001,), "float64", mean=1.0, stddev=2.0),
    "normal_float32": lambda k: axon_fn.random.normal(k, (6, 2)),
    "bernoulli": lambda k: axon_fn.random.bernoulli(k, 0.3, (64,)),
}


@pytest.mark.parametrize("name", sorted(RANDOM_DRAWS))
def test_a_key_on_the_gpu_draws_there_the_same_values(device, name):
    draw = RANDOM_DRAWS[name]
    host_key = axon_fn.random.key(11)
    device_key = axon_fn.device_put(host_key, "cuda")
    before = _transfers(device)
    got = draw(device_key)
    assert _transfers(device) == before
    assert axon_fn.backend.is_gpu_array(got)
    np.testing.assert_array_equal(axon_fn.to_numpy(got), draw(host_key))


def test_a_trainer_on_the_gpu_copies_each_batch_once_and_reads_the_loss_once_an_epoch(device):
    model = (axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(8, activation="tanh")
             >> axon_fn.dropout(rate=0.1) >> axon_fn.dense(1))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]

    def run(**device):
        loop = axon_fn.loop.trainer(model, "mean_squared_error", axon_fn.optim.adam(0.02),
                                    compile=True, **device)
        return loop.validate(model, batches[:2]).run(batches, epochs=3)

    on_host = run()
    before = _transfers(device)
    on_gpu = run(device="cuda")
    for leaf in optree.tree_leaves(on_gpu.step_state.model_state):
        assert axon_fn.backend.is_gpu_array(leaf)
    for got, expected in zip(on_gpu.history, on_host.history):
        assert got.keys() == expected.keys() == {"loss", "validation_loss"}
        for name in got:
            assert isinstance(got[name], float)
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5)
    if before is not None:
        moved = {k: n - before.get(k, 0) for k, n in _transfers(device).items()}
        state_leaves = len(optree.tree_leaves(on_gpu.step_state.model_state)) + 1  # and the key
        assert moved == {"to_device": state_leaves + 2 * (4 + 2) * 3, "to_host": 2 * 3}


ALIASES = ["adabelief", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw", "amsgrad",
           "fromage", "lamb", "lars", "lion", "nadam", "nadamw", "noisy_sgd", "radam", "rmsprop",
           "sgd", "yogi"]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", ALIASES)
def test_every_optimizer_updates_on_the_gpu_without_a_transfer(device, name, compiled):
    optimizer = getattr(axon_fn.optim, name)(0.01)
    params = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
              "b": np.linspace(0, 1, 4, dtype=np.float32)}
    grads = optree.tree_map(lambda p: p * np.float32(0.3) + np.float32(0.1), params)
    cpu_state = optimizer.init(params)
    gpu_params, gpu_grads, gpu_state = axon_fn.device_put((params, grads, cpu_state), "cuda")
    update = axon_fn.jit(optimizer.update) if compiled else optimizer.update
    before = _transfers(device)
    for _ in range(7):  # radam rectifies from step 6 on
        cpu_updates, cpu_state = optimizer.update(grads, cpu_state, params)
        gpu_updates, gpu_state = update(gpu_grads, gpu_state, gpu_params)
    assert _transfers(device) == before
    for g, c in zip(optree.tree_leaves(axon_fn.to_numpy((gpu_updates, gpu_state))),
                    optree.tree_leaves((cpu_updates, cpu_state))):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-7)


def _image():
    return axon_fn.input("x", shape=(None, 6, 6, 3))


def _sequence():
    return axon_fn.input("x", shape=(None, 5, 4))


LAYER_MODELS = {
    "dense_activations": lambda: (_image() >> axon_fn.flatten()
                                  >> axon_fn.dense(4) >> axon_fn.gelu() >> axon_fn.selu()
                                  >> axon_fn.mish() >> axon_fn.log_softmax()),
    "convs": lambda: (_image() >> axon_fn.conv(4, 3, strides=2, padding="same")
                      >> axon_fn.conv_transpose(3, 3, strides=2)
                      >> axon_fn.conv(6, 2, kernel_dilation=2, feature_group_count=3)
                      >> axon_fn.depthwise_conv(2, 3) >> axon_fn.separable_conv2d(2, 2)),
    "pools": lambda: (lambda x: axon_fn.concatenate([
        x >> axon_fn.max_pool(2) >> axon_fn.avg_pool(2, strides=1, padding="same")
        >> axon_fn.flatten(),
        x >> axon_fn.adaptive_max_pool(3) >> axon_fn.flatten(),
        x >> axon_fn.global_lp_pool(norm=2)]))(_image()),
    "norms_dropouts": lambda: (_image() >> axon_fn.batch_norm() >> axon_fn.layer_norm()
                               >> axon_fn.group_norm(3) >> axon_fn.rms_norm()
                               >> axon_fn.spatial_dropout(0.3) >> axon_fn.alpha_dropout(0.2)),
    "resize_pad": lambda: (_image() >> axon_fn.pad([(1, 1), (0, 1)])
                           >> axon_fn.resize(size=(9, 4), method="linear")
                           >> axon_fn.resize(size=(3, 8))),
    "transformer": lambda: (_sequence() >> axon_fn.learned_position_embedding(5)
                            >> axon_fn.transformer_encoder_block(num_heads=2, ff_size=8)),
    "recurrent": lambda: _sequence() >> axon_fn.lstm(3) >> axon_fn.gru(2),
}


@pytest.mark.parametrize("name", sorted(LAYER_MODELS))
def test_layers_run_and_differentiate_on_the_gpu_without_a_transfer(device, name):
    model = LAYER_MODELS[name]()
    (x_name, x_shape), = axon_fn.get_inputs(model).items()
    x = np.random.default_rng(0).standard_normal((2, *x_shape[1:])).astype(np.float32)
    init_fn, train_fn = axon_fn.build(model, mode="train")
    state, key = init_fn(x, axon_fn.random.key(0)), axon_fn.random.key(3)

    def loss(trainable, state, x, key):
        y, new_state = train_fn(state.replace(trainable=trainable), x, key=key)
        return axon_fn.ops.sum(y * y), new_state

    loss_and_grads = axon_fn.value_and_grad(loss, has_aux=True)
    expected = loss_and_grads(state.trainable, state, x, key)
    on_gpu = axon_fn.device_put((state, x, key), "cuda")
    before = _transfers(device)
    got = loss_and_grads(on_gpu[0].trainable, *on_gpu)
    assert _transfers(device) == before
    for g, e in zip(optree.tree_leaves(axon_fn.to_numpy(got)), optree.tree_leaves(expected)):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-5)


def test_a_gpu_trainer_resumes_from_a_checkpoint_on_the_gpu(device, tmp_path):
    model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1)
    x = np.random.default_rng(5).standard_normal((32, 2)).astype(np.float32)
    batches = [(x[i:i + 8], x[i:i + 8] @ np.array([[1.5], [-0.5]], np.float32))
               for i in range(0, 32, 8)]
    loop = axon_fn.loop.trainer(model, "mean_squared_error", "adam", learning_rate=0.05,
                                device="cuda")
    straight = loop.run(batches, epochs=4)
    loop.checkpoint(tmp_path).run(batches, epochs=2)
    resumed = loop.from_checkpoint(tmp_path).run(batches, epochs=4)
    for leaf in optree.tree_leaves(resumed.step_state.model_state):
        assert axon_fn.backend.is_gpu_array(leaf)
    np.testing.assert_allclose([h["loss"] for h in resumed.history],
                               [h["loss"] for h in straight.history], rtol=1e-6)


# jit on GPU arrays: each fused loop one ElementwiseKernel ------------------------------------

def _fused_program(f):
    (program,) = f.programs.values()
    return program.native


needs_kernels = pytest.mark.usefixtures("kernels")


@pytest.fixture
def kernels(device):
    if not hasattr(device, "ElementwiseKernel"):
        pytest.skip("the simulation runs ElementwiseKernel through a C compiler: none found")


@needs_kernels
def test_jit_runs_a_training_step_as_fused_kernels(device):
    """An MLP's Adam step under jit: the elementwise chains of forward, backward and update
    become a few kernels, no value leaves the device, and the steps match numpy's."""
    x = axon_fn.input("x", shape=(None, 8))
    model = x >> axon_fn.dense(16, activation="relu") >> axon_fn.dense(4)
    init_fn, predict_fn = axon_fn.build(model)
    optimizer = axon_fn.optim.adam(1e-2)

    def step(state, opt_state, x, y):
        def loss(trainable):
            pred = predict_fn(state.replace(trainable=trainable), x)
            return axon_fn.losses.mean_squared_error(y, pred)

        value, grads = axon_fn.value_and_grad(loss)(state.trainable)
        updates, opt_state = optimizer.update(grads, opt_state, state.trainable)
        trainable = axon_fn.optim.apply_updates(state.trainable, updates)
        return state.replace(trainable=trainable), opt_state, value

    rng = np.random.default_rng(0)
    state = init_fn({"x": np.zeros((5, 8), np.float32)})
    cpu = (state, optimizer.init(state.trainable), rng.standard_normal((5, 8), np.float32),
           rng.standard_normal((5, 4), np.float32))
    gpu = axon_fn.device_put(cpu, "cuda")
    compiled = axon_fn.jit(step)
    gpu_state, gpu_opt = compiled(*gpu)[:2]  # records
    cpu_state, cpu_opt = step(*cpu)[:2]
    before = _transfers(device)
    for _ in range(3):
        gpu_state, gpu_opt, gpu_loss = compiled(gpu_state, gpu_opt, *gpu[2:])
        cpu_state, cpu_opt, cpu_loss = step(cpu_state, cpu_opt, *cpu[2:])
    assert _transfers(device) == before
    program = _fused_program(compiled)
    assert program is not None and program.failed is None and len(program.kernels) >= 8
    text = compiled.explain(gpu_state, gpu_opt, *gpu[2:])
    assert "CuPy kernel: loop over (5, 16): dense bias, dense relu" in text
    assert "0x" not in "".join(program.source)  # decimal literals: C++ before 17 has no hex
    for g, c in zip(optree.tree_leaves(axon_fn.to_numpy((gpu_state, gpu_opt, gpu_loss))),
                    optree.tree_leaves((cpu_state, cpu_opt, cpu_loss))):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)


@needs_kernels
def test_fused_kernels_broadcast_view_select_cast_and_sum_as_numpy_does(device):
    ops = axon_fn.ops

    def fn(a, b, m, s):
        t = ops.transpose(a)  # a view: the kernel reads a's memory by its strides
        z = ops.tanh(t * b + 1.5)  # (4, 3) * (3,): broadcast
        w = ops.where(ops.greater(z, 0.9), z, -ops.sign(z) * ops.exp(-z))
        return (w, ops.astype(w * 10.0, np.int32), ops.sum(w * m, axis=0),
                ops.sigmoid(w) - m, ops.sum(ops.exp(s)))  # the last sums over no axis

    rng = np.random.default_rng(1)
    a, b, m = (rng.standard_normal(s) for s in ((3, 4), (3,), (4, 1)))
    s = np.array(0.25)
    z = np.tanh(a.T * b + 1.5)
    w = np.where(z > 0.9, z, -np.sign(z) * np.exp(-z))
    expected = (w, (w * 10.0).astype(np.int32), np.sum(w * m, axis=0), 1 / (1 + np.exp(-w)) - m,
                np.exp(s))
    compiled = axon_fn.jit(fn)
    args = axon_fn.device_put((a, b, m, s), "cuda")
    compiled(*args)  # records
    got = axon_fn.to_numpy(compiled(*args))
    assert _fused_program(compiled).kernels
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@needs_kernels
def test_a_kernel_that_fails_warns_once_and_leaves_the_replay_running(device, monkeypatch):
    class Unbuildable:  # CUDA's compiler refusing a kernel, say
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args):
            raise RuntimeError("nvrtc: error: simulated")

    monkeypatch.setattr(device, "ElementwiseKernel", Unbuildable)
    compiled = axon_fn.jit(lambda a: axon_fn.ops.exp(a) * 2.0 + 1.0)
    a = np.linspace(-1, 1, 6)
    gpu_a = axon_fn.device_put(a, "cuda")
    compiled(gpu_a)  # records
    with pytest.warns(RuntimeWarning, match="fused CuPy kernels failed"):
        got = compiled(gpu_a)
    np.testing.assert_allclose(axon_fn.to_numpy(got), np.exp(a) * 2.0 + 1.0, rtol=1e-12)
    np.testing.assert_allclose(axon_fn.to_numpy(compiled(gpu_a)), np.exp(a) * 2.0 + 1.0)
    assert "nvrtc: error: simulated" in compiled.explain(gpu_a)


@needs_kernels
def test_a_program_with_nothing_to_fuse_keeps_the_replay(device):
    compiled = axon_fn.jit(lambda a, b: a @ b)
    a, b = np.ones((2, 3)), np.ones((3, 4))
    gpu = axon_fn.device_put((a, b), "cuda")
    compiled(*gpu)
    np.testing.assert_allclose(axon_fn.to_numpy(compiled(*gpu)), a @ b)
    assert "no elementwise step to fuse" in compiled.explain(*gpu)
