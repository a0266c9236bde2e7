"""int8 weight-only quantization: the C kernel (every instruction set the CPU has) and the numpy
path against a float64 reference, ``quantize`` on an MLP and on CNNs of both layouts, parameter
bytes, saving and loading, jit, gradients, and the numpy-only install."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import axon_fn
from axon_fn import _native_quantize, quantization
from axon_fn._core import PRIMITIVES
from axon_fn.quantization import dequantize_array, parameter_bytes, quantize, quantize_array

REPO = Path(__file__).resolve().parents[1]
needs_kernel = pytest.mark.skipif(not _native_quantize.available(),
                                  reason="the C quantization kernel is not built")

SHAPES = [  # (rows, k, n): batch 1, odd sizes, tails of every tile width (64, 16 columns; 6 rows)
    (1, 1, 1), (1, 784, 512), (1, 3, 17), (1, 100, 65), (2, 5, 15), (5, 17, 33), (6, 64, 64),
    (7, 33, 70), (13, 129, 130), (64, 40, 10), (3, 0, 4),
]


def data(rows, k, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    q = rng.integers(-127, 128, size=(k, n)).astype(np.int8)
    scale = rng.uniform(1e-3, 0.1, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    return x, q, scale, bias


def reference(x, q, scale, bias=None, relu=False):
    """float64: x @ (q * scale) + bias, the dequantized kernel written out."""
    y = x.astype(np.float64) @ (q.astype(np.float64) * scale.astype(np.float64))
    if bias is not None:
        y = y + bias
    return np.maximum(y, 0) if relu else y


def assert_close_to_reference(got, x, q, scale, bias=None, relu=False):
    want = reference(x, q, scale, bias, relu)
    # float32 sums of k terms: the error is relative to the sum of the terms' magnitudes
    bound = np.abs(x).astype(np.float64) @ np.abs(q * scale.astype(np.float64))
    bound = 1e-5 * bound + 1e-6 * (1 + (0 if bias is None else np.abs(bias)))
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)


def isas():
    if not _native_quantize.available():
        return []
    best = _native_quantize.set_isa(None)
    return list(range(best + 1))


@pytest.fixture
def isa_restored():
    yield
    _native_quantize.set_isa(None)


# The kernel ------------------------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{k}x{n}" for r, k, n in SHAPES])
def test_kernel_matches_the_float64_reference_on_every_instruction_set(shape, isa_restored):
    x, q, scale, bias = data(*shape)
    for isa in isas():
        assert _native_quantize.set_isa(isa) == isa
        for b in (bias, None):
            for relu in (False, True):
                got = _native_quantize.quantized_dense(
                    x, q, scale, *(() if b is None else (b,)), activation="relu" if relu else None)
                assert_close_to_reference(got, x, q, scale, b, relu)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{k}x{n}" for r, k, n in SHAPES])
def test_numpy_path_matches_the_reference(shape):
    x, q, scale, bias = data(*shape)
    got = PRIMITIVES["quantized_dense"].numpy_cpu(x, q, scale, bias, activation="relu")
    assert_close_to_reference(got, x, q, scale, bias, relu=True)


@needs_kernel
def test_native_and_numpy_paths_agree(isa_restored):
    x, q, scale, bias = data(9, 300, 200, seed=3)
    numpy_out = PRIMITIVES["quantized_dense"].numpy_cpu(x, q, scale, bias)
    for isa in isas():
        _native_quantize.set_isa(isa)
        np.testing.assert_allclose(_native_quantize.quantized_dense(x, q, scale, bias),
                                   numpy_out, rtol=1e-4, atol=1e-4)
    assert PRIMITIVES["quantized_dense"].cpu is _native_quantize.quantized_dense


@needs_kernel
def test_kernel_handles_leading_axes_views_nan_and_falls_back_for_other_dtypes():
    x, q, scale, bias = data(6, 10, 7, seed=4)
    wrapper = _native_quantize.quantized_dense
    out = wrapper(x.reshape(2, 3, 10), q, scale, bias)
    assert out.shape == (2, 3, 7)
    np.testing.assert_allclose(out.reshape(6, 7), wrapper(x, q, scale, bias), rtol=1e-6)
    assert wrapper(x[0], q, scale).shape == (7,)
    strided = np.asfortranarray(x)
    np.testing.assert_allclose(wrapper(strided, q, scale), wrapper(x, q, scale), rtol=1e-6)
    nan_bias = bias.copy()
    nan_bias[0] = np.nan
    assert np.isnan(wrapper(x, q, scale, nan_bias, activation="relu")[:, 0]).all()
    doubled = wrapper(x.astype(np.float64), q, scale, bias)  # float64: the numpy path
    assert doubled.dtype == np.float64
    np.testing.assert_allclose(doubled, reference(x, q, scale, bias), rtol=1e-6, atol=1e-6)
    wide = wrapper(x, q.astype(np.int16), scale)  # not int8: the numpy path
    np.testing.assert_allclose(wide, reference(x, q, scale), rtol=1e-4, atol=1e-5)


def test_wrapper_falls_back_without_the_kernel(monkeypatch):
    monkeypatch.setitem(_native_quantize._state, "fn", None)
    monkeypatch.setitem(_native_quantize._state, "loaded", True)
    x, q, scale, bias = data(3, 8, 5)
    assert_close_to_reference(_native_quantize.quantized_dense(x, q, scale, bias),
                              x, q, scale, bias)


# Quantizing arrays -----------------------------------------------------------------------------


def test_quantize_array_is_symmetric_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    w[..., 5] = 0.0
    for axis in (-1, 0):
        q, scale = quantize_array(w, axis)
        assert q.dtype == np.int8 and scale.dtype == np.float32
        assert scale.shape == (w.shape[axis],)
        assert q.min() >= -127 and q.max() <= 127
        moved = np.moveaxis(w, axis, -1).reshape(-1, w.shape[axis])
        amax = np.abs(moved).max(axis=0)
        np.testing.assert_allclose(scale, np.where(amax > 0, amax / 127, 1), rtol=1e-6)
        back = np.asarray(dequantize_array(q, scale, axis))
        shape = [1] * w.ndim
        shape[axis] = -1
        assert np.all(np.abs(back - w) <= scale.reshape(shape) / 2 * (1 + 1e-5))
        # every non-zero channel uses the full range
        used = np.abs(np.moveaxis(q, axis, -1).reshape(-1, w.shape[axis])).max(axis=0)
        assert all(u == 127 for i, u in enumerate(used) if amax[i] > 0)
    assert not quantize_array(w)[0][..., 5].any()


def test_quantize_array_refuses_bad_input():
    with pytest.raises(axon_fn.InvalidArgumentError, match="NaN"):
        quantize_array(np.array([[1.0, np.nan]]))
    with pytest.raises(axon_fn.AxonTypeError, match="float"):
        quantize_array(np.ones((2, 2), np.int32))
    with pytest.raises(axon_fn.InvalidArgumentError, match="axis"):
        quantize_array(np.ones((2, 2)), axis=2)


# Quantizing models -----------------------------------------------------------------------------


def mlp(sizes=(784, 512, 512, 10)):
    x = axon_fn.input("x", shape=(None, sizes[0]))
    h = x
    for units in sizes[1:-1]:
        h = h >> axon_fn.dense(units, activation="relu")
    return h >> axon_fn.dense(sizes[-1])


def cnn(channels="last"):
    shape = (None, 12, 12, 1) if channels == "last" else (None, 1, 12, 12)
    x = axon_fn.input("image", shape=shape)
    return (x >> axon_fn.conv(8, 3, padding="same", activation="relu", channels=channels)
            >> axon_fn.max_pool(2, channels=channels)
            >> axon_fn.conv(16, 3, strides=2, activation="tanh", channels=channels)
            >> axon_fn.flatten() >> axon_fn.dense(32, activation="relu") >> axon_fn.dense(10))


def dequantized_state(model, qstate):
    """The float state whose kernels are the quantized model's, dequantized in float64."""
    flat = axon_fn.model_state.flatten_paths(qstate.frozen)
    trainable = axon_fn.model_state.flatten_paths(qstate.trainable)
    out = dict(trainable)
    for path, value in flat.items():
        if path[-1] == "scale":
            continue
        if path[-1] == "kernel" and value.dtype == np.int8:
            scale = flat[path[:-1] + ("scale",)].astype(np.float64)
            channels_first = value.ndim > 2 and any(
                n.op == "quantized_conv" and n.opts.get("channels") == "first"
                for n in _nodes(model) if n.name == path[-2])
            shape = [1] * value.ndim
            shape[0 if channels_first else -1] = -1
            value = value.astype(np.float64) * scale.reshape(shape)
        out[path] = value
    nest = axon_fn.model_state.nest_paths
    return axon_fn.ModelState(nest(out), qstate.state, {})


def _nodes(model):
    from axon_fn._program import compile_graph

    return [step.node for step in compile_graph(model).steps]


def check_model(model, template, inputs, atol_float):
    state = axon_fn.init(model, template, key=1)
    qmodel, qstate = quantize(model, state)
    counts = axon_fn.get_op_counts(qmodel)
    assert "dense" not in counts and "conv" not in counts
    got = axon_fn.predict(qmodel, qstate, inputs)
    assert got.dtype == np.float32
    # the float model with the dequantized kernels, in float64: what the int8 model computes
    ref_state = dequantized_state(qmodel, qstate)
    want = axon_fn.predict(model, ref_state.astype(np.float64), inputs.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # and close to the float model: the weights moved by at most half a step
    float_out = axon_fn.predict(model, state, inputs)
    np.testing.assert_allclose(got, float_out, atol=atol_float)
    return state, qmodel, qstate


def test_quantize_mlp_matches_the_dequantized_reference_and_the_float_model():
    inputs = np.random.default_rng(2).uniform(0, 1, (16, 784)).astype(np.float32)
    state, qmodel, qstate = check_model(mlp(), inputs[:1], inputs, atol_float=0.05)
    assert axon_fn.get_op_counts(qmodel)["quantized_dense"] == 3
    for name in ("dense_0", "dense_1", "dense_2"):
        assert qstate.frozen[name]["kernel"].dtype == np.int8
        assert qstate.frozen[name]["scale"].dtype == np.float32
        assert qstate.trainable[name]["bias"] is state.trainable[name]["bias"]
        assert "kernel" not in qstate.trainable[name]
    ratio = parameter_bytes(qstate) / parameter_bytes(state)
    assert 0.25 <= ratio < 0.26, ratio


def test_single_layer_error_stays_within_the_quantization_bound():
    model = mlp((50, 20))
    inputs = np.random.default_rng(3).standard_normal((8, 50)).astype(np.float32)
    state = axon_fn.init(model, inputs[:1], key=2)
    qmodel, qstate = quantize(model, state)
    scale = qstate.frozen["dense_0"]["scale"].astype(np.float64)
    # |x @ (w - q * scale)| <= sum_k |x_k| * scale / 2, plus float32 rounding
    bound = np.abs(inputs).sum(axis=1, keepdims=True) * scale / 2 + 1e-5
    diff = np.abs(axon_fn.predict(qmodel, qstate, inputs) - axon_fn.predict(model, state, inputs))
    assert np.all(diff <= bound)


@pytest.mark.parametrize("channels", ["last", "first"])
def test_quantize_cnn_both_layouts(channels):
    shape = (6, 12, 12, 1) if channels == "last" else (6, 1, 12, 12)
    inputs = np.random.default_rng(4).uniform(0, 1, shape).astype(np.float32)
    state, qmodel, qstate = check_model(cnn(channels), inputs[:1], inputs, atol_float=0.05)
    assert axon_fn.get_op_counts(qmodel)["quantized_conv"] == 2
    kernel = qstate.frozen["conv_0"]["kernel"]
    assert kernel.shape == state["conv_0"]["kernel"].shape and kernel.dtype == np.int8
    assert qstate.frozen["conv_1"]["scale"].shape == (16,)


def test_layer_names_exclusions_and_unquantized_layers():
    x = axon_fn.input("x", shape=(None, 6))
    shared = axon_fn.block(lambda v: v >> axon_fn.dense(6))
    model = shared(x >> axon_fn.dense(6, name="first")) >> axon_fn.dense(4) >> axon_fn.dense(2)
    state = axon_fn.init(model, np.zeros((1, 6), np.float32))
    qmodel, qstate = quantize(model, state, exclude=["dense_1"])
    counts = axon_fn.get_op_counts(qmodel)
    assert counts["quantized_dense"] == 2 and counts["dense"] == 1
    assert sorted(qstate.frozen) == ["dense_0", "first"]
    assert qstate.trainable["dense_1"]["kernel"].dtype == np.float32  # excluded
    block_params = [p for p in qstate.trainable if p.startswith("block")]
    assert block_params, "the block's dense stays float"
    inputs = np.random.default_rng(5).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(axon_fn.predict(qmodel, qstate, inputs),
                               axon_fn.predict(model, state, inputs), atol=0.05)
    with pytest.raises(axon_fn.InvalidArgumentError, match="no layer"):
        quantize(model, state, exclude="nope")
    with pytest.raises(axon_fn.AxonTypeError, match="ModelState"):
        quantize(model, state.trainable)


def test_a_fresh_init_of_the_quantized_model_keeps_the_int8_kernels_frozen():
    model = cnn()
    template = np.zeros((1, 12, 12, 1), np.float32)
    state = axon_fn.init(model, template)
    qmodel, qstate = quantize(model, state)
    fresh = axon_fn.init(qmodel, template)
    assert sorted(fresh.frozen) == sorted(qstate.frozen) == ["conv_0", "conv_1", "dense_0",
                                                             "dense_1"]
    assert all(sorted(layer) == ["bias"] for layer in fresh.trainable.values())
    again = axon_fn.init(qmodel, template, initial=qstate)
    for a, b in zip(axon_fn.tree.leaves(again), axon_fn.tree.leaves(qstate)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_training_the_biases_of_a_quantized_model():
    model = mlp((4, 8, 1))
    rng = np.random.default_rng(6)
    inputs = rng.standard_normal((32, 4)).astype(np.float32)
    target = rng.standard_normal((32, 1)).astype(np.float32)
    qmodel, qstate = quantize(model, axon_fn.init(model, inputs[:1], key=0))
    _, predict_fn = axon_fn.build(qmodel)

    def loss(trainable):
        out = predict_fn(qstate.replace(trainable=trainable), inputs)
        return axon_fn.ops.mean((out - target) ** 2)

    grads = axon_fn.grad(loss)(qstate.trainable)
    assert sorted(grads["dense_0"]) == ["bias"] and np.any(grads["dense_1"]["bias"] != 0)


# Saving, jit, the numpy-only install -------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_quantized_state_saves_and_loads(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    model = cnn()
    inputs = np.random.default_rng(7).uniform(0, 1, (2, 12, 12, 1)).astype(np.float32)
    qmodel, qstate = quantize(model, axon_fn.init(model, inputs[:1]))
    path = tmp_path / f"quantized{suffix}"
    axon_fn.save(qstate, path)
    loaded = axon_fn.load(path)
    for part in ("trainable", "state", "frozen"):
        a = axon_fn.model_state.flatten_paths(getattr(qstate, part))
        b = axon_fn.model_state.flatten_paths(getattr(loaded, part))
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
    np.testing.assert_array_equal(axon_fn.predict(qmodel, loaded, inputs),
                                  axon_fn.predict(qmodel, qstate, inputs))
    assert os.path.getsize(path) < 0.4 * parameter_bytes(
        axon_fn.init(model, inputs[:1])) + 20000


def test_jit_records_and_replays_the_quantized_model():
    model = cnn()
    inputs = np.random.default_rng(8).uniform(0, 1, (4, 12, 12, 1)).astype(np.float32)
    qmodel, qstate = quantize(model, axon_fn.init(model, inputs[:1]))
    _, predict_fn = axon_fn.build(qmodel)
    compiled = axon_fn.jit(predict_fn)
    eager = predict_fn(qstate, inputs)
    np.testing.assert_allclose(compiled(qstate, inputs), eager, rtol=1e-5, atol=1e-6)
    other = inputs[::-1].copy()
    np.testing.assert_allclose(compiled(qstate, other), predict_fn(qstate, other), rtol=1e-5,
                               atol=1e-6)
    assert compiled.cache_size() == 1
    mlp_model = mlp((20, 16, 3))
    one = np.random.default_rng(9).standard_normal((1, 20)).astype(np.float32)
    qm, qs = quantize(mlp_model, axon_fn.init(mlp_model, one))
    step = axon_fn.jit(axon_fn.build(qm)[1])
    for _ in range(4):  # past the first replays, where a jit backend may compile the program
        np.testing.assert_allclose(step(qs, one), axon_fn.predict(qm, qs, one), rtol=1e-6)


def test_quantized_model_runs_on_the_gpu_path():
    from tests import simulated_cupy

    model = mlp((10, 8, 3))
    inputs = np.random.default_rng(10).standard_normal((5, 10)).astype(np.float32)
    qmodel, qstate = quantize(model, axon_fn.init(model, inputs[:1]))
    want = axon_fn.predict(qmodel, qstate, inputs)
    with simulated_cupy.installed():
        gpu_state, gpu_inputs = axon_fn.device_put((qstate, inputs), "cuda")
        got = axon_fn.predict(qmodel, gpu_state, gpu_inputs)
        assert axon_fn.backend.is_gpu_array(got)
        np.testing.assert_allclose(axon_fn.to_numpy(got), want, rtol=1e-5, atol=1e-6)


def test_numpy_only_install_quantizes_silently():
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("error")
        import numpy as np
        import axon_fn
        from axon_fn._core import PRIMITIVES
        assert PRIMITIVES["quantized_dense"].cpu is PRIMITIVES["quantized_dense"].numpy_cpu
        x = axon_fn.input("x", shape=(None, 6))
        model = x >> axon_fn.dense(5, activation="relu") >> axon_fn.dense(2)
        state = axon_fn.init(model, np.zeros((1, 6), np.float32))
        qmodel, qstate = axon_fn.quantize(model, state)
        inputs = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
        got = axon_fn.predict(qmodel, qstate, inputs)
        diff = np.abs(got - axon_fn.predict(model, state, inputs))
        assert diff.max() < 0.05, diff
        print("ok")
        """)
    env = {k: v for k, v in os.environ.items()}
    env["AXON_FN_NATIVE"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr


def test_public_names():
    assert axon_fn.quantize is quantization.quantize
    assert "quantize" in axon_fn.__all__ and "quantization" in axon_fn.__all__
