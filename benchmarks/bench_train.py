"""End-to-end training and inference speed: axon_fn against PyTorch eager, JAX (jit + optax) and,
for inference, a hand-written numpy forward.

Workloads (float32, the same seeded synthetic data for every framework):

* ``mlp_train``: MLP 784-512-512-10 (ReLU), softmax cross-entropy from logits with sparse
  int labels, Adam lr 1e-3, batch 128. PyTorch also runs with ``Adam(fused=True)`` (or
  ``foreach=True`` where fused Adam is not supported on CPU).
* ``cnn_train``: LeNet-5 on 28x28x1 (axon_fn and JAX channels-last, PyTorch NCHW): conv 5x5
  6 ch, ReLU, max-pool 2, conv 5x5 16 ch, ReLU, max-pool 2, dense 120, 84, 10; cross-entropy,
  Adam lr 1e-3, batch 64 (PyTorch fused Adam too).
* ``small_train``: MLP 32-64-64-1 (ReLU), MSE, SGD lr 1e-2, batch 16: the per-step overhead.
* ``mlp_infer_b1`` / ``mlp_infer_b1024``: the ``mlp_train`` network, inference only
  (axon_fn ``predict_fn``; PyTorch eval mode under ``torch.inference_mode()``; JAX jit; and
  "numpy", a hand-written numpy forward with JAX's weights, ``h = max(x @ W1 + b1, 0)``, ...).
* memory (``--memory``): peak RSS (``ru_maxrss``) after 1,000 and after 10,000 ``small_train``
  steps (for axon_fn the plain, the jit and the donated jit step), and their ratio (goal: within
  5 %).
  Part of a default full run (no ``--workloads``, no ``--quick``) as it takes a few seconds
  per framework.

axon_fn is used as a user would: a ``>>`` model, ``axon_fn.build``, ``axon_fn.value_and_grad``
and ``axon_fn.optim``, one plain step function per iteration (the "axon_fn" row); the
"axon_fn (jit)" row runs that step function wrapped in ``axon_fn.jit`` with its default backend
(compiled to C on the second call where a C compiler is found; ``jit(predict_fn)`` for
inference), "axon_fn (jit, donated)" the same with ``donate_argnums=(0, 1)`` (parameters and
optimizer state updated in place), "axon_fn (replay)" ``jit(..., backend="python")`` (the
recorded kernels replayed from Python: the jit before the native backend), and the
"axon_fn (Loop)" row the same training through ``axon_fn.loop.trainer(...).run(...)``, whose
step is compiled by default. The JAX step is ``jax.jit(..., donate_argnums=(0, 1))``
(parameters and optimizer state donated).

Compile time: for each "axon_fn (jit)" row, the first call's compile of the native program
(and whether it came from the disk cache), and the load of the same program from the disk
cache by a second ``axon_fn.jit`` of the same function in the same worker. Each run of the
script uses a fresh temporary ``AXON_FN_CACHE_DIR`` (inherited by the workers), so the first
row's compile is a real one (later rounds and rows may find it cached; the table says so).

Each framework runs in its own processes: the parent starts ``sys.executable bench_train.py
--worker FRAMEWORK ...`` with ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
set to ``--threads`` (PyTorch also gets ``torch.set_num_threads``), one process per measured row
(framework, workload, variant) so that no row inherits another's allocator or cache state (axon_fn's
large temporaries make its speed depend on the heap's history); the worker prints its result as
JSON on stdout. The rows run workload by workload, the frameworks back to back, so that a
shared machine's drifting speed moves the rows compared with each other together. Per row:
warm-up steps (whose losses are the sanity check: the loss must fall), then ``--reps`` timed
repetitions of a fixed number of steps (the same for every framework); steps/s is the median
over repetitions, with the min-max spread; ``--rounds N`` runs the whole sequence N times and
pools each row's repetitions. Frameworks that are not installed are reported as skipped.

    python benchmarks/bench_train.py [--frameworks axon_fn,torch,jax,numpy]
        [--workloads mlp_train,cnn_train,small_train,mlp_infer_b1,mlp_infer_b1024]
        [--reps 7] [--rounds 1] [--threads 2] [--memory] [--json out.json] [--quick]
        [--torch-python /path/to/python]

Ratio columns: "x torch" is steps/s over PyTorch's with its default optimizer, "x fast Adam"
over PyTorch's fused (or foreach) Adam, "x jax" over the JAX row of the same workload and
"x numpy" (inference) over the numpy forward; "-" where that row is missing.
``--torch-python`` (or ``BENCH_TORCH_PYTHON``) runs the PyTorch workers with another
interpreter (one with torch and numpy; they do not import axon_fn), e.g. a separate venv.

``--quick`` is a smoke run: a fifth of the steps, shorter warm-up, 3 repetitions unless
``--reps`` is given.

On a GPU: ``--device cuda`` runs axon_fn on CuPy against PyTorch CUDA (JAX and numpy are left
out): the parameters, optimizer state and batches are put on the device first, and each
repetition waits for the device to finish. The Loop row copies each host batch to the device, as
``trainer(..., device="cuda")`` does. ``--batch-scale 8`` multiplies every batch size (the
issue's "batch sizes x8"). No memory run on a GPU.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Optional

# numpy and the frameworks are imported lazily, after the thread variables are set.
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, print_table, write_json  # noqa: E402

FRAMEWORKS = ("axon_fn", "torch", "jax", "numpy")
REQUIRES = {"axon_fn": ("axon_fn",), "torch": ("torch",), "jax": ("jax", "optax"),
            "numpy": ("numpy",)}
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Workload:
    net: str  # "mlp", "cnn" or "small"
    train: bool
    batch: int
    steps: int  # steps per timed repetition, the same for every framework (~0.3-1 s for axon_fn)
    warmup: int  # a multiple of N_BATCHES: the sanity check compares the first and last cycle


WORKLOADS = {
    "mlp_train": Workload("mlp", train=True, batch=128, steps=100, warmup=12),
    "cnn_train": Workload("cnn", train=True, batch=64, steps=80, warmup=12),
    "small_train": Workload("small", train=True, batch=16, steps=1500, warmup=40),
    "mlp_infer_b1": Workload("mlp", train=False, batch=1, steps=4000, warmup=20),
    "mlp_infer_b1024": Workload("mlp", train=False, batch=1024, steps=60, warmup=4),
}
N_BATCHES = 4  # pre-generated batches, cycled through
INPUT_SHAPES = {"mlp": (784,), "cnn": (28, 28, 1), "small": (32,)}  # channels-last
N_CLASSES = 10
LEARNING_RATE = {"mlp": 1e-3, "cnn": 1e-3, "small": 1e-2}  # Adam, Adam, SGD
MEMORY_STEPS = (1_000, 10_000)
QUICK_DIVISOR = 5


def thread_env(threads):
    return {name: str(threads) for name in THREAD_VARIABLES}


def scaled(workload, factor):
    """``workload`` with its batch size multiplied by ``factor``."""
    return Workload(workload.net, workload.train, workload.batch * factor, workload.steps,
                    workload.warmup)


def make_data(name, workload):
    """``N_BATCHES`` float32 ``(x, y)`` batches from a seeded teacher (channels-last images).

    Classification labels are the argmax of a fixed random linear map of ``x`` (int64); the
    regression target is ``tanh`` of one plus noise, so the losses can fall during warm-up.
    """
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shape = INPUT_SHAPES[workload.net]
    features = int(np.prod(shape))
    out = 1 if workload.net == "small" else N_CLASSES
    teacher = rng.standard_normal((features, out)).astype(np.float32) / np.sqrt(features)
    batches = []
    for _ in range(N_BATCHES):
        x = rng.standard_normal((workload.batch, *shape)).astype(np.float32)
        z = x.reshape(workload.batch, features) @ teacher
        if workload.net == "small":
            y = (np.tanh(z) + 0.1 * rng.standard_normal(z.shape)).astype(np.float32)
        else:
            y = np.argmax(z, axis=1).astype(np.int64)
        batches.append((x, y))
    return batches


class Variant(NamedTuple):
    """One framework setup of a workload. ``run(n)`` does ``n`` steps, cycling through the
    batches, and returns the last step's output (the loss, or the prediction)."""

    name: str
    run: Callable
    n_params: int
    loss_value: Callable = float  # the output of ``run`` as a float (training only)
    sync: Callable = lambda output: None  # wait for asynchronous work to finish (JAX)
    note: Optional[str] = None
    compile_info: Optional[Callable] = None  # () -> dict: the jit's compile (after the timing)


def cycling(step, batches):
    """``run(n)``: ``step(x, y)`` over the batches in turn; the last output."""
    batch_iter = itertools.cycle(batches)

    def run(n):
        for _ in range(n):
            output = step(*next(batch_iter))
        return output

    return run


# --- axon_fn -----------------------------------------------------------------------------------


def axon_fn_model(ax, net):
    x = ax.input("x", shape=(None, *INPUT_SHAPES[net]))
    if net == "mlp":
        return (x >> ax.dense(512, activation="relu") >> ax.dense(512, activation="relu")
                >> ax.dense(N_CLASSES))
    if net == "cnn":  # max_pool's strides default to its window
        return (x >> ax.conv(6, 5, activation="relu") >> ax.max_pool(2)
                >> ax.conv(16, 5, activation="relu") >> ax.max_pool(2) >> ax.flatten()
                >> ax.dense(120, activation="relu") >> ax.dense(84, activation="relu")
                >> ax.dense(N_CLASSES))
    return x >> ax.dense(64, activation="relu") >> ax.dense(64, activation="relu") >> ax.dense(1)


def jit_compile_info(compiled, again=None):
    """How the latest program of the jitted ``compiled`` was compiled: ``compile_seconds`` (the
    compile, or the load when ``cached``: found in ``AXON_FN_CACHE_DIR``), or why it stays on
    the Python replay. ``again()``, if given, makes a second ``axon_fn.jit`` of the same
    function in this process and has it record and compile (``explain`` does both), which
    finds the library on disk: its ``compile_seconds`` is the disk cache's load time."""
    program = next(reversed(compiled.programs.values()))
    native = program.native
    if native is None:
        return {"native": False, "why_python": program.why_python}
    if not hasattr(native, "compile_seconds"):  # fused CuPy kernels: CuPy compiles them itself
        return {"native": False, "note": f"{len(native.kernels)} fused CuPy kernels, compiled "
                "by CuPy on the first call", "explain": program.explain()}
    info = {"native": True, "compile_seconds": native.compile_seconds, "cached": native.cached,
            "explain": program.explain()}
    if again is not None:
        second = next(reversed(again().programs.values())).native
        info["cached_load_seconds"] = None if second is None else second.compile_seconds
        info["cached_load_cached"] = None if second is None else second.cached
    return info


def axon_fn_variants(workload, batches, threads, device="cpu"):
    """Yield the plain step (or ``predict_fn``), its ``jit`` (default backend), for training the
    donated ``jit``, the Python replay (``backend="python"``), then for training the Loop;
    threads come from the environment (OpenBLAS and the OpenMP kernels read it when they
    load). On ``"cuda"`` the state and batches are put on the GPU first."""
    import axon_fn

    host_batches = batches
    model = axon_fn_model(axon_fn, workload.net)
    init_fn, predict_fn = axon_fn.build(model)
    state = init_fn(batches[0][0][:1], axon_fn.random.key(0))
    n_params = sum(leaf.size for leaf in axon_fn.tree.leaves(state.trainable))
    extra = {}
    if device == "cuda":
        import cupy

        state, batches = axon_fn.device_put((state, batches), "cuda")
        extra = {"sync": lambda output: cupy.cuda.Device().synchronize()}
    if not workload.train:
        yield Variant("axon_fn", cycling(lambda x, y: predict_fn(state, x), batches), n_params,
                      **extra)
        compiled_predict = axon_fn.jit(predict_fn)

        def predict_again():  # a second jit of predict_fn: records, then loads from disk
            again = axon_fn.jit(predict_fn)
            again.explain(state, batches[0][0])
            return again

        yield Variant("axon_fn (jit)", cycling(lambda x, y: compiled_predict(state, x), batches),
                      n_params, compile_info=lambda: jit_compile_info(compiled_predict,
                                                                      predict_again), **extra)
        replay_predict = axon_fn.jit(predict_fn, backend="python")
        yield Variant("axon_fn (replay)", cycling(lambda x, y: replay_predict(state, x), batches),
                      n_params, **extra)
        return

    if workload.net == "small":
        loss = axon_fn.losses.mean_squared_error

        def make_optimizer():
            return axon_fn.optim.sgd(LEARNING_RATE["small"])
    else:
        def loss(y, logits):
            return axon_fn.losses.categorical_cross_entropy(y, logits, from_logits=True,
                                                            sparse=True)

        def make_optimizer():
            return axon_fn.optim.adam(LEARNING_RATE[workload.net])

    opt = make_optimizer()

    def loss_fn(trainable, state, x, y):
        return loss(y, predict_fn(state.replace(trainable=trainable), x))

    loss_and_grads = axon_fn.value_and_grad(loss_fn)  # with respect to `trainable`

    def train_step(state, opt_state, x, y):
        value, grads = loss_and_grads(state.trainable, state, x, y)
        updates, opt_state = opt.update(grads, opt_state, state.trainable)
        trainable = axon_fn.optim.apply_updates(state.trainable, updates)
        return state.replace(trainable=trainable), opt_state, value

    opt_state = opt.init(state.trainable)

    def step(x, y):
        nonlocal state, opt_state
        state, opt_state, value = train_step(state, opt_state, x, y)
        return value

    yield Variant("axon_fn", cycling(step, batches), n_params, **extra)

    # The same step function compiled: recorded once, compiled to C on the second call (the
    # default backend), or with the parameters and optimizer state donated, or its recorded
    # kernels replayed from Python (backend="python": the jit before the native backend).
    def jitted(compiled):
        def jit_step(x, y):
            nonlocal state, opt_state
            state, opt_state, value = compiled(state, opt_state, x, y)
            return value

        return jit_step

    def step_again():  # a second jit of train_step (not donated): records, then loads from disk
        again = axon_fn.jit(train_step)
        again.explain(state, opt_state, *batches[0])
        return again

    compiled_step = axon_fn.jit(train_step)
    yield Variant("axon_fn (jit)", cycling(jitted(compiled_step), batches), n_params,
                  compile_info=lambda: jit_compile_info(compiled_step, step_again), **extra)
    donated_step = axon_fn.jit(train_step, donate_argnums=(0, 1))
    yield Variant("axon_fn (jit, donated)", cycling(jitted(donated_step), batches), n_params,
                  compile_info=lambda: jit_compile_info(donated_step), **extra)
    replay_step = axon_fn.jit(train_step, backend="python")
    yield Variant("axon_fn (replay)", cycling(jitted(replay_step), batches), n_params, **extra)

    # The same training through the Loop API: one `run` over the repetition's batches (host
    # batches: on a GPU the trainer copies each one to the device).
    loop = axon_fn.loop.trainer(model, loss, make_optimizer(),
                                device=None if device == "cpu" else device)
    loop_state = init_fn(host_batches[0][0][:1], axon_fn.random.key(0))  # then a TrainState
    loop_position = 0

    def run_loop(n):
        nonlocal loop_state, loop_position
        data = [host_batches[(loop_position + i) % len(batches)] for i in range(n)]
        loop_position += n
        loop_state = loop.run(data, loop_state, epochs=1).step_state
        return loop_state.loss

    yield Variant("axon_fn (Loop)", run_loop, n_params, **extra)


def axon_fn_info():
    import axon_fn

    return {"version": axon_fn.__version__, **axon_fn.backend_info()}


# --- PyTorch -----------------------------------------------------------------------------------


def torch_model(nn, net):
    if net == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, N_CLASSES))
    if net == "cnn":
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(16 * 4 * 4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                             nn.Linear(84, N_CLASSES))
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1))


def torch_fused_adam(torch):
    """(kwargs, note) for the fast Adam: fused where this torch supports it on CPU."""
    probe = torch.nn.Linear(2, 2)
    try:
        opt = torch.optim.Adam(probe.parameters(), lr=1e-3, fused=True)
        probe(torch.ones(1, 2)).sum().backward()
        opt.step()
        return {"fused": True}, "fused Adam"
    except (RuntimeError, TypeError, ValueError) as error:
        return {"foreach": True}, (f"fused Adam unsupported on CPU in torch "
                                   f"{torch.__version__} ({error}); foreach Adam instead")


def torch_variants(workload, batches, threads, device="cpu"):
    """Yield eager PyTorch with the default optimizer, then for Adam the fused (or foreach) one;
    each variant starts from the same seeded initialization. On ``"cuda"`` the model and the
    batches are on the GPU and each repetition synchronizes."""
    import torch

    torch.set_num_threads(threads)
    net = workload.net
    to_nchw = (lambda x: x.transpose(0, 3, 1, 2).copy()) if net == "cnn" else (lambda x: x)
    data = [(torch.from_numpy(to_nchw(x)).to(device), torch.from_numpy(y).to(device))
            for x, y in batches]
    extra = {"sync": lambda output: torch.cuda.synchronize()} if device == "cuda" else {}

    def fresh_model():
        torch.manual_seed(0)
        return torch_model(torch.nn, net).to(device)

    def count(model):
        return sum(p.numel() for p in model.parameters())

    if not workload.train:
        model = fresh_model().eval()

        def predict(x, y):
            with torch.inference_mode():
                return model(x)

        yield Variant("torch", cycling(predict, data), count(model), **extra)
        return

    loss_fn = (torch.nn.functional.mse_loss if net == "small"
               else torch.nn.functional.cross_entropy)

    def variant(name, make_optimizer, note=None):
        model = fresh_model()
        optimizer = make_optimizer(model.parameters())

        def step(x, y):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.detach()

        return Variant(name, cycling(step, data), count(model), note=note, **extra)

    if net == "small":
        yield variant("torch", lambda p: torch.optim.SGD(p, lr=LEARNING_RATE[net]))
        return
    yield variant("torch", lambda p: torch.optim.Adam(p, lr=LEARNING_RATE[net]))
    fast_kwargs, note = ({"fused": True}, "fused Adam") if device == "cuda" else \
        torch_fused_adam(torch)
    fast_name = "torch (fused Adam)" if "fused" in fast_kwargs else "torch (foreach Adam)"
    yield variant(fast_name, lambda p: torch.optim.Adam(p, lr=LEARNING_RATE[net], **fast_kwargs),
                  note)


def torch_info(threads):
    import torch

    torch.set_num_threads(threads)
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "interop_threads": torch.get_num_interop_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "fast_adam": torch_fused_adam(torch)[1]}


# --- JAX ---------------------------------------------------------------------------------------


def jax_params(net):
    """Glorot-uniform kernels and zero biases (numpy, seeded), as a list of (kernel, bias); the
    numpy forward uses them too."""
    import numpy as np

    rng = np.random.default_rng(0)
    if net == "mlp":
        shapes = [(784, 512), (512, 512), (512, N_CLASSES)]
    elif net == "cnn":  # conv kernels HWIO
        shapes = [(5, 5, 1, 6), (5, 5, 6, 16), (256, 120), (120, 84), (84, N_CLASSES)]
    else:
        shapes = [(32, 64), (64, 64), (64, 1)]
    params = []
    for shape in shapes:
        receptive = int(np.prod(shape[:-2]))
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append((rng.uniform(-limit, limit, shape).astype(np.float32),
                       np.zeros(shape[-1], np.float32)))
    return params


def jax_forward(jax, net):
    jnp = jax.numpy

    def dense_stack(layers, x):
        for kernel, bias in layers[:-1]:
            x = jax.nn.relu(x @ kernel + bias)
        kernel, bias = layers[-1]
        return x @ kernel + bias

    def conv_relu_pool(x, kernel, bias):
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.nn.relu(y + bias)
        return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                     "VALID")

    def cnn(params, x):
        x = conv_relu_pool(x, *params[0])
        x = conv_relu_pool(x, *params[1])
        return dense_stack(params[2:], x.reshape(x.shape[0], -1))

    return cnn if net == "cnn" else dense_stack


def jax_variants(workload, batches, threads, device="cpu"):
    """Yield one jitted step (value_and_grad + optax, parameters and optimizer state donated) or
    jitted predict; the data is put on the device beforehand and each repetition waits for its
    last result."""
    import jax
    import jax.numpy as jnp
    import optax

    net = workload.net
    forward = jax_forward(jax, net)
    params = jax.tree_util.tree_map(jnp.asarray, jax_params(net))
    n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    label_dtype = jnp.float32 if net == "small" else jnp.int32
    data = [(jnp.asarray(x), jnp.asarray(y, label_dtype)) for x, y in batches]

    def block(output):
        output.block_until_ready()

    if not workload.train:
        predict = jax.jit(forward)
        yield Variant("jax (jit)", cycling(lambda x, y: predict(params, x), data), n_params,
                      sync=block)
        return

    if net == "small":
        opt = optax.sgd(LEARNING_RATE[net])

        def loss_fn(params, x, y):
            return jnp.mean((forward(params, x) - y) ** 2)
    else:
        opt = optax.adam(LEARNING_RATE[net])

        def loss_fn(params, x, y):
            logits = forward(params, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def train_step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    train_step = jax.jit(train_step, donate_argnums=(0, 1))  # params and opt_state donated

    opt_state = opt.init(params)

    def step(x, y):
        nonlocal params, opt_state
        params, opt_state, value = train_step(params, opt_state, x, y)
        return value

    yield Variant("jax (jit+optax)", cycling(step, data), n_params, sync=block)


def jax_info(threads):
    import jax
    import optax

    return {"version": jax.__version__, "optax": optax.__version__,
            "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS")}


# --- numpy -------------------------------------------------------------------------------------


def numpy_variants(workload, batches, threads, device="cpu"):
    """Inference only: a hand-written float32 forward of the MLP with JAX's weights (numpy's
    BLAS reads its threads from the environment)."""
    import numpy as np

    if workload.train or workload.net != "mlp":
        return
    (w1, b1), (w2, b2), (w3, b3) = jax_params(workload.net)
    n_params = sum(a.size for a in (w1, b1, w2, b2, w3, b3))

    def predict(x, y):
        h = np.maximum(x @ w1 + b1, 0)
        h = np.maximum(h @ w2 + b2, 0)
        return h @ w3 + b3

    yield Variant("numpy", cycling(predict, batches), n_params)


def numpy_info(threads):
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: no dict form
        blas = None
    return {"version": np.__version__, "blas": blas}


def supports(framework, workload):
    """Whether ``framework`` has a row for ``workload`` (numpy: MLP inference only)."""
    return framework != "numpy" or (not workload.train and workload.net == "mlp")


VARIANTS = {"axon_fn": axon_fn_variants, "torch": torch_variants, "jax": jax_variants,
            "numpy": numpy_variants}
INFO = {"axon_fn": lambda threads: axon_fn_info(), "torch": torch_info, "jax": jax_info,
        "numpy": numpy_info}


# --- measuring (in the worker) -----------------------------------------------------------------


def measure(variant, workload, reps, steps, warmup):
    """Warm-up (recording the losses), then ``reps`` timed repetitions of ``steps`` steps."""
    warmup_losses = []
    for _ in range(warmup):
        output = variant.run(1)
        if workload.train:
            warmup_losses.append(variant.loss_value(output))
    variant.sync(output)
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        output = variant.run(steps)
        variant.sync(output)
        seconds.append(time.perf_counter() - start)
    rates = [steps / s for s in seconds]
    record = {"variant": variant.name, "batch": workload.batch, "steps_per_rep": steps,
              "warmup": warmup, "reps": reps, "seconds": seconds,
              "steps_per_s": statistics.median(rates), "steps_per_s_min": min(rates),
              "steps_per_s_max": max(rates),
              "samples_per_s": statistics.median(rates) * workload.batch,
              "n_params": variant.n_params, "note": variant.note}
    if workload.train:
        first, last = warmup_losses[:N_BATCHES], warmup_losses[-N_BATCHES:]
        record.update(loss_first=warmup_losses[0], loss_after_warmup=warmup_losses[-1],
                      loss_end=variant.loss_value(output),
                      loss_decreased=statistics.fmean(last) < statistics.fmean(first))
    return record


def peak_rss_mib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def memory_run(framework, threads, index=0):
    """Peak RSS after each of MEMORY_STEPS small_train steps of variant ``index`` (0: the plain
    step), in one process."""
    workload = WORKLOADS["small_train"]
    variants = VARIANTS[framework](workload, make_data("small_train", workload), threads)
    variant = next(itertools.islice(variants, index, None))
    start, done, peaks = time.perf_counter(), 0, {}
    for mark in MEMORY_STEPS:
        variant.sync(variant.run(mark - done))
        done = mark
        peaks[str(mark)] = peak_rss_mib()
    first, last = peaks[str(MEMORY_STEPS[0])], peaks[str(MEMORY_STEPS[-1])]
    return {"variant": variant.name, "peak_rss_mib": peaks, "ratio": last / first,
            "seconds": time.perf_counter() - start}


def worker(args):
    """Measure one variant (``--variant``, an index) of one workload, or the memory run, and
    print the result as one JSON line on stdout."""

    def log(message):  # progress goes to stderr: stdout carries the JSON
        print(f"[{args.worker}] {message}", file=sys.stderr, flush=True)

    result = {"framework": args.worker, "info": INFO[args.worker](args.threads),
              "env": {name: os.environ.get(name) for name in
                      (*THREAD_VARIABLES, "OPENBLAS_CORETYPE", "XLA_FLAGS")}}
    if args.memory_run:
        log(f"memory: small_train, {' and '.join(map(str, MEMORY_STEPS))} steps")
        result["memory"] = memory_run(args.worker, args.threads, args.variant)
    else:
        (name,) = args.workloads
        workload = scaled(WORKLOADS[name], args.batch_scale)
        steps = max(1, workload.steps // QUICK_DIVISOR) if args.quick else workload.steps
        warmup = max(2 * N_BATCHES, workload.warmup // 2) if args.quick else workload.warmup
        variants = VARIANTS[args.worker](workload, make_data(name, workload), args.threads,
                                         args.device)
        variant = next(itertools.islice(variants, args.variant, None))
        log(f"{name}: {variant.name}, {args.reps} x {steps} steps")
        result["record"] = measure(variant, workload, args.reps, steps, warmup)
        if variant.compile_info is not None:  # after the timing: it compiles a second jit
            result["record"]["compile"] = variant.compile_info()
        result["more"] = next(variants, None) is not None
    print(json.dumps(result))


# --- the parent: start the workers, print the tables -------------------------------------------


def python_for(framework, args):
    """The interpreter that runs ``framework``'s workers."""
    return args.torch_python if framework == "torch" else sys.executable


def missing_modules(framework, python=sys.executable):
    if python == sys.executable:
        return [m for m in REQUIRES[framework] if importlib.util.find_spec(m) is None]
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] " \
            "if u.find_spec(m) is None))"
    try:
        done = subprocess.run([python, "-c", probe, *REQUIRES[framework]],
                              stdout=subprocess.PIPE, text=True, timeout=60)
    except OSError as error:
        return [f"{python}: {error}"]
    return done.stdout.split() if done.returncode == 0 else [f"{python} failed"]


def spawn(framework, args, workload="small_train", variant=0, *, memory_run=False):
    """Run one worker process; its JSON result, or {"error": ...}."""
    command = [python_for(framework, args), str(Path(__file__).resolve()), "--worker", framework,
               "--workloads", workload, "--variant", str(variant), "--reps", str(args.reps),
               "--threads", str(args.threads), "--device", args.device,
               "--batch-scale", str(args.batch_scale)]
    command += ["--quick"] * args.quick + ["--memory-run"] * memory_run
    env = {**os.environ, **thread_env(args.threads)}
    if framework == "jax" and args.threads == 1:  # XLA's CPU thread pool ignores the above
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"worker exited with status {done.returncode}"}
    return json.loads(lines[-1])


def run_frameworks(frameworks, args):
    """Every variant of every workload, each in a fresh worker process (so no measurement
    inherits another's allocator or cache state), workload by workload with the frameworks back
    to back, ``--rounds`` times over: a shared machine's speed drifts over minutes, and the rows
    that are compared then drift together. The merged results per framework."""
    results = {fw: {"info": None, "env": None, "workloads": {}, "errors": {}}
               for fw in frameworks}
    rounds = {}  # (framework, workload) -> per variant, its record of each round
    for _ in range(args.rounds):
        for name in args.workloads:
            for framework in frameworks:
                if not supports(framework, WORKLOADS[name]):
                    continue
                merged, variants = results[framework], rounds.setdefault((framework, name), [])
                for index in itertools.count():
                    result = spawn(framework, args, name, index)
                    if "error" in result:
                        merged["errors"][f"{name}[{index}]"] = result["error"]
                        break
                    merged["info"], merged["env"] = result["info"], result["env"]
                    if index == len(variants):
                        variants.append([])
                    variants[index].append(result["record"])
                    if not result["more"]:
                        break
    for (framework, name), variants in rounds.items():
        results[framework]["workloads"][name] = [pool_rounds(records) for records in variants]
    return results


def pool_rounds(records):
    """One row's records of several rounds as one record: the repetitions pooled."""
    first = records[0]
    seconds = [s for record in records for s in record["seconds"]]
    rates = [first["steps_per_rep"] / s for s in seconds]
    pooled = {**first, "rounds": len(records), "reps": len(seconds), "seconds": seconds,
              "steps_per_s": statistics.median(rates), "steps_per_s_min": min(rates),
              "steps_per_s_max": max(rates),
              "samples_per_s": statistics.median(rates) * first["batch"]}
    if "loss_decreased" in first:
        pooled["loss_decreased"] = all(record["loss_decreased"] for record in records)
    if "compile" in first:  # the first round's (a real compile); every round's in the JSON
        pooled["compile_rounds"] = [record.get("compile") for record in records]
    return pooled


def fmt_rate(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


RATIO_COLUMNS = ("x torch", "x fast Adam", "x jax", "x numpy")


def result_rows(results, workloads):
    """Table rows and flat JSON records; ratios are steps/s over PyTorch's (default Adam/SGD),
    PyTorch's fused (or foreach) Adam, JAX's and numpy's (inference) of the same workload."""
    rows, flat = [], []
    for name in workloads:
        records = [(fw, r) for fw, res in results.items() for r in res.get("workloads", {})
                   .get(name, [])]
        baseline = {r["variant"]: r["steps_per_s"] for fw, r in records if fw == "torch"}

        def first_rate(framework):
            return next((r["steps_per_s"] for fw, r in records if fw == framework), None)

        peers = {"torch": baseline.get("torch"),
                 "torch_fast_adam": next((v for k, v in baseline.items() if k != "torch"), None),
                 "jax": first_rate("jax"), "numpy": first_rate("numpy")}
        for fw, r in records:
            ratios = {peer: r["steps_per_s"] / rate if rate else None
                      for peer, rate in peers.items()}
            rows.append([name, r["variant"], r["batch"], r["steps_per_rep"],
                         fmt_rate(r["steps_per_s"]),
                         f"{fmt_rate(r['steps_per_s_min'])}-{fmt_rate(r['steps_per_s_max'])}",
                         fmt_rate(r["samples_per_s"]),
                         *("-" if ratio is None else f"{ratio:.2f}" for ratio in ratios.values())])
            flat.append({"workload": name, "framework": fw, **r,
                         **{f"ratio_to_{peer}": ratio for peer, ratio in ratios.items()}})
    return rows, flat


def compile_rows(results, workloads):
    """Per axon_fn row with compile information (and per round): the first call's compile, and
    the load from the disk cache by a second jit of the same function."""

    def ms(seconds):
        return "-" if seconds is None else f"{seconds * 1e3:,.1f}"

    rows = []
    for name in workloads:
        for r in results.get("axon_fn", {}).get("workloads", {}).get(name, []):
            for round_index, c in enumerate(r.get("compile_rounds") or []):
                if c is None:
                    continue
                head = [name, r["variant"], round_index + 1]
                if not c["native"]:
                    rows.append([*head, "-", "-", "-",
                                 c.get("note") or f"Python replay ({c['why_python']})"])
                    continue
                note = ("the second jit compiled again: not found in the cache"
                        if c.get("cached_load_cached") is False else "")
                rows.append([*head, ms(c["compile_seconds"]), "yes" if c["cached"] else "no",
                             ms(c.get("cached_load_seconds")), note])
    return rows


def sanity_lines(results, workloads):
    lines = []
    for name in workloads:
        records = [r for res in results.values() for r in res.get("workloads", {}).get(name, [])]
        if not records:
            continue
        counts = {r["variant"]: r["n_params"] for r in records}
        same = "same" if len(set(counts.values())) == 1 else "DIFFERENT"
        lines.append(f"{name}: parameters ({same}): "
                     + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        if WORKLOADS[name].train:
            losses = [f"{r['variant']} {r['loss_first']:.3g} -> {r['loss_after_warmup']:.3g} -> "
                      f"{r['loss_end']:.3g} {'ok' if r['loss_decreased'] else 'NOT DECREASING'}"
                      for r in records]
            lines.append(f"{name}: loss first step -> end of warm-up -> end of timing: "
                         + "; ".join(losses))
    return lines


def print_header(info, threads, results, skipped):
    print(f"\nmachine: {info}")
    print(f"threads: {threads} (OPENBLAS/OMP/MKL_NUM_THREADS); OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE')}; axon_fn BLAS: {info['blas']}, "
          f"native kernels: {info['native']} ({info['native_threads']} threads)")
    if "torch" in results:
        t = results["torch"]["info"]
        print(f"torch {t['version']}: {t['threads']} threads ({t['interop_threads']} inter-op), "
              f"{t['fast_adam']}, CUDA device: {t.get('cuda')}")
    if "jax" in results:
        j = results["jax"]["info"]
        print(f"jax {j['version']}, optax {j['optax']}, devices {j['devices']}, "
              f"XLA_FLAGS={j['xla_flags']}")
    if "numpy" in results:
        n = results["numpy"]["info"]
        print(f"numpy {n['version']} (forward by hand), BLAS: {n['blas']}")
    for framework, reason in skipped.items():
        print(f"skipped {framework}: {reason}")
    for framework, result in results.items():
        for where, error in result["errors"].items():
            print(f"{framework} {where}: {error}")


def print_memory(memory):
    rows = []
    for framework, result in memory.items():
        if "error" in result:
            rows.append([framework, "-", "-", "-", result["error"]])
            continue
        m = result["memory"]
        peaks = [m["peak_rss_mib"][str(n)] for n in MEMORY_STEPS]
        rows.append([m["variant"], *(f"{p:.1f}" for p in peaks), f"{m['ratio']:.3f}",
                     f"{m['seconds']:.1f}"])
    if rows:
        print(f"\nmemory: peak RSS (MiB) after {MEMORY_STEPS[0]:,} and {MEMORY_STEPS[-1]:,} "
              f"small_train steps, each framework in a fresh process (goal: ratio within 1.05)")
        print_table(["framework", *(f"after {n:,}" for n in MEMORY_STEPS), "ratio", "seconds"],
                    rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated, from " + ", ".join(FRAMEWORKS))
    parser.add_argument("--workloads", help="comma-separated, from " + ", ".join(WORKLOADS)
                        + " (default: all)")
    parser.add_argument("--reps", type=int, help="timed repetitions (default 7; 3 with --quick)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every row this many times, in turn, and pool the repetitions")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / OpenMP / torch threads")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak RSS over 1,000 and 10,000 small_train steps")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--quick", action="store_true", help="fewer steps: a fast smoke run")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: axon_fn on CuPy against PyTorch CUDA (JAX, numpy left out)")
    parser.add_argument("--batch-scale", type=int, default=1,
                        help="multiply every workload's batch size (e.g. 8)")
    parser.add_argument("--torch-python",
                        default=os.environ.get("BENCH_TORCH_PYTHON") or sys.executable,
                        help="the Python that runs the PyTorch workers (default: "
                             "$BENCH_TORCH_PYTHON, else this one)")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--variant", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--memory-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    full_run = args.workloads is None and not args.quick
    args.workloads = (args.workloads or ",".join(WORKLOADS)).split(",")
    frameworks = args.frameworks.split(",")
    unknown = [w for w in args.workloads if w not in WORKLOADS] + [
        f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown workload or framework: {', '.join(unknown)}")
    if args.reps is None:
        args.reps = 3 if args.quick else 7
    if min(args.reps, args.rounds, args.threads, args.batch_scale) < 1:
        parser.error("--reps, --rounds, --threads and --batch-scale must be positive")
    # Before anything loads numpy or a BLAS (in a worker, and axon_fn in machine() here).
    os.environ.update(thread_env(args.threads))
    if args.worker:
        return worker(args)

    # A fresh compile cache for this run, inherited by every worker: the first jit compile is
    # a real one, and a second jit of the same function measures the load from the cache.
    cache_dir = tempfile.mkdtemp(prefix="bench_train_jit_")
    atexit.register(shutil.rmtree, cache_dir, True)
    os.environ["AXON_FN_CACHE_DIR"] = cache_dir

    skipped, memory = {}, {}
    gpu = args.device == "cuda"
    for framework in frameworks:
        missing = missing_modules(framework, python_for(framework, args)) + (
            ["cupy"] if gpu and framework == "axon_fn" and importlib.util.find_spec("cupy")
            is None else [])
        if missing:
            skipped[framework] = f"not installed ({', '.join(missing)})"
        elif gpu and framework in ("jax", "numpy"):
            skipped[framework] = "--device cuda compares axon_fn with PyTorch CUDA only"
        elif not any(supports(framework, WORKLOADS[name]) for name in args.workloads):
            skipped[framework] = "no row for these workloads (numpy: MLP inference only)"
    results = run_frameworks([fw for fw in frameworks if fw not in skipped], args)
    for framework, result in list(results.items()):
        if result["info"] is None:
            skipped[framework] = f"every worker failed: {result['errors']}"
            del results[framework]
            continue
        if (args.memory or full_run) and not gpu and supports(framework,
                                                              WORKLOADS["small_train"]):
            memory[framework] = spawn(framework, args, memory_run=True)
            if framework == "axon_fn":  # the compiled steps too: their programs free as they go
                memory["axon_fn (jit)"] = spawn(framework, args, variant=1, memory_run=True)
                memory["axon_fn (jit, donated)"] = spawn(framework, args, variant=2,
                                                         memory_run=True)

    info = machine()
    print_header(info, args.threads, results, skipped)
    print(f"device: {args.device}; batch sizes x{args.batch_scale}")
    print("\nsanity:")
    for line in sanity_lines(results, args.workloads):
        print("  " + line)
    rows, flat = result_rows(results, args.workloads)
    if rows:
        rounds = f" ({args.rounds} rounds of {args.reps})" if args.rounds > 1 else ""
        print(f"\nsteps/s: median of {args.reps * args.rounds} repetitions{rounds} (min-max) "
              f"after warm-up; "
              f"x torch = steps/s over torch's (default Adam / SGD); "
              f"x fast Adam = over torch's fused (or foreach) Adam; x jax = over jax's; "
              f"x numpy = over the numpy forward's (inference)")
        print_table(["workload", "framework", "batch", "steps/rep", "steps/s", "min-max",
                     "samples/s", *RATIO_COLUMNS], rows)
    compiled = compile_rows(results, args.workloads)
    if compiled:
        print("\ncompile: axon_fn.jit's native program, first call (cached: found in this run's "
              "fresh AXON_FN_CACHE_DIR) and cached load (a second jit of the same function in "
              "the same worker), ms")
        print_table(["workload", "framework", "round", "first call", "cached", "cached load",
                     "note"], compiled)
    print_memory(memory)

    write_json(args.json, {
        "machine": info, "threads": args.threads,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "config": {"reps": args.reps, "rounds": args.rounds, "quick": args.quick,
                   "workloads": args.workloads,
                   "device": args.device, "batch_scale": args.batch_scale,
                   "n_batches": N_BATCHES, "axon_fn_cache_dir": cache_dir,
                   "torch_python": args.torch_python,
                   "workload_specs": {k: vars(WORKLOADS[k]) for k in args.workloads}},
        "frameworks": {fw: {"info": r["info"], "env": r["env"], "errors": r["errors"]}
                       for fw, r in results.items()},
        "skipped": skipped, "results": flat,
        "memory": {fw: m.get("memory", m) for fw, m in memory.items()},
    })


if __name__ == "__main__":
    main()
