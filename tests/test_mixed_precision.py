"""Mixed-precision policies (axon_fn.mixed_precision) and bfloat16 beyond the ops: dtypes at
every layer, gradients, the trainer under bfloat16 and float16 with dynamic loss scaling,
optimizers, saving and loading, safetensors files, and the error without ml_dtypes."""

import dataclasses
import json
import os
import struct
import subprocess
import sys

import numpy as np
import optree
import pytest

import axon_fn
from axon_fn import losses, mixed_precision as mp, ops, optim, random
from axon_fn.graph.node import Hook
from axon_fn.loop import trainer

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F32, F16 = np.dtype(np.float32), np.dtype(np.float16)


def mlp():
    x = axon_fn.input("x", shape=(None, 4))
    return (x >> axon_fn.dense(16, activation="relu") >> axon_fn.batch_norm()
            >> axon_fn.dense(16) >> axon_fn.layer_norm() >> axon_fn.tanh() >> axon_fn.dense(3))


def cnn():
    x = axon_fn.input("image", shape=(None, 8, 8, 1))
    return (x >> axon_fn.conv(4, 3, padding="same", activation="relu") >> axon_fn.max_pool(2)
            >> axon_fn.flatten() >> axon_fn.dense(3))


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    return x, np.argmax(x @ w, axis=1).astype(np.int32)


def xent(labels, logits):
    return losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


# Policies ------------------------------------------------------------------------------------


def test_create_policy_takes_names_and_numpy_dtypes():
    policy = mp.create_policy()
    assert (policy.params, policy.compute, policy.output) == (F32, BF16, F32)
    assert mp.create_policy(np.float32, np.float16, "bfloat16") == mp.Policy(F32, F16, BF16)
    assert mp.create_policy(compute="bf16").compute == BF16
    assert repr(policy) == "Policy(params=float32, compute=bfloat16, output=float32)"
    assert axon_fn.create_policy is mp.create_policy and axon_fn.apply_policy is mp.apply_policy
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.compute = F16


@pytest.mark.parametrize("bad, message", [
    ({"compute": "int8"}, "`compute` must be a floating dtype"),
    ({"params": "no-such-type"}, "`params`"),
    ({"output": np.complex64}, "`output` must be a floating dtype"),
])
def test_create_policy_refuses_what_is_not_a_float(bad, message):
    with pytest.raises(axon_fn.AxonTypeError, match=message):
        mp.create_policy(**bad)


def test_apply_policy_checks_its_arguments():
    with pytest.raises(axon_fn.AxonTypeError, match="create_policy"):
        mp.apply_policy(mlp(), "bfloat16")
    with pytest.raises(axon_fn.InvalidArgumentError, match="'dense_9'"):
        mp.apply_policy(mlp(), mp.create_policy(), except_=["dense_9"])


def _named_mlp():
    x = axon_fn.input("x", shape=(None, 4))
    return (x >> axon_fn.dense(16, activation="relu", name="d0") >> axon_fn.batch_norm(name="bn")
            >> axon_fn.dense(16, name="d1") >> axon_fn.layer_norm(name="ln")
            >> axon_fn.tanh(name="act") >> axon_fn.dense(3, name="out"))


def _watch(model, state, inputs, mode="inference", key=None):
    seen = {}
    hooked = axon_fn.map_nodes(model, lambda n: n if n.op == "input" else dataclasses.replace(
        n, hooks=(Hook(lambda v, name=n.name: seen.setdefault(name, np.asarray(v).dtype)),)))
    _, predict_fn = axon_fn.build(hooked, mode=mode)
    out = predict_fn(state, inputs)
    return seen, out


def test_dtypes_at_each_layer():
    model = mp.apply_policy(_named_mlp(), mp.create_policy())
    state = axon_fn.init(model, np.zeros((1, 4), np.float32))
    for layer in state.trainable.values():
        assert {v.dtype for v in layer.values()} == {F32}  # stored in the params dtype
    assert {v.dtype for v in state.state["bn"].values()} == {F32}
    seen, out = _watch(model, state, data()[0])
    # the normalization layers compute in float32; every other layer in bfloat16; the
    # output layer's result is cast to the output dtype
    assert seen == {"d0": BF16, "bn": F32, "d1": BF16, "ln": F32, "act": BF16, "out": F32}
    assert out.dtype == F32


def test_train_mode_keeps_batch_norm_statistics_in_the_params_dtype():
    model = mp.apply_policy(_named_mlp(), mp.create_policy(), except_=())
    state = axon_fn.init(model, np.zeros((1, 4), np.float32))
    seen, (out, new_state) = _watch(model, state, data()[0], mode="train")
    assert seen["bn"] == BF16 and seen["ln"] == BF16  # nothing excepted: all in bfloat16
    assert {v.dtype for v in new_state.state["bn"].values()} == {F32}
    assert out.dtype == F32


def test_except_takes_ops_and_layer_names():
    model = mp.apply_policy(_named_mlp(), mp.create_policy(compute="float16"),
                            except_=("d1", "tanh"))
    state = axon_fn.init(model, np.zeros((1, 4), np.float32))
    seen, _ = _watch(model, state, data()[0])
    assert seen == {"d0": F16, "bn": F16, "d1": F32, "ln": F16, "act": F32, "out": F32}


def test_output_and_params_dtypes_follow_the_policy():
    policy = mp.create_policy(params="bfloat16", compute="bfloat16", output="float16")
    model = mp.apply_policy(cnn(), policy)
    state = axon_fn.init(model, np.zeros((1, 8, 8, 1), np.float32))
    assert {v.dtype for layer in state.trainable.values() for v in layer.values()} == {BF16}
    out = axon_fn.predict(model, state, np.ones((2, 8, 8, 1), np.float32))
    assert out.dtype == F16 and mp.policy_of(model) == policy
    assert mp.policy_of(cnn()) is None


def test_a_float32_policy_changes_nothing():
    model, x = mlp(), data()[0]
    state = axon_fn.init(model, x[:1])
    same = mp.apply_policy(model, mp.create_policy(compute="float32"))
    np.testing.assert_array_equal(axon_fn.predict(same, state, x),
                                  axon_fn.predict(model, state, x))
    assert axon_fn.get_op_counts(same) == axon_fn.get_op_counts(model)


def test_containers_and_multiple_outputs_are_cast():
    x = axon_fn.input("x", shape=(None, 4))
    h = x >> axon_fn.dense(8)
    model = axon_fn.container({"a": h >> axon_fn.dense(2), "b": h >> axon_fn.dense(1)})
    mixed = mp.apply_policy(model, mp.create_policy())
    state = axon_fn.init(mixed, np.zeros((1, 4), np.float32))
    out = axon_fn.predict(mixed, state, np.ones((3, 4), np.float32))
    assert out["a"].dtype == F32 and out["b"].dtype == F32


# Gradients -----------------------------------------------------------------------------------


def _loss(model, state, x, y):
    _, predict_fn = axon_fn.build(model)

    def loss(trainable):
        return ops.mean(xent(y, predict_fn(state.replace(trainable=trainable), x)))

    return loss


def test_gradients_come_back_in_the_params_dtype_and_match_float32():
    model, (x, y) = mlp(), data()
    state = axon_fn.init(model, x[:1])
    reference = axon_fn.grad(_loss(model, state, x, y))(state.trainable)
    mixed = mp.apply_policy(model, mp.create_policy())
    grads = axon_fn.grad(_loss(mixed, state, x, y))(state.trainable)
    for layer, params in grads.items():
        for name, g in params.items():
            want = reference[layer][name]
            assert g.dtype == F32, (layer, name)
            # bfloat16 keeps 8 bits of mantissa: the gradient agrees to a few per cent
            scale = float(np.max(np.abs(want))) + 1e-3
            assert np.max(np.abs(g - want)) <= 0.08 * scale, (layer, name)


def test_gradients_through_the_policy_casts_are_exact():
    # a float64 compute policy over float32 parameters: the casts and their VJPs must give the
    # derivative of the function actually computed (central differences in float64)
    model = mp.apply_policy(cnn(), mp.create_policy(params="float64", compute="float64",
                                                    output="float64"), except_=())
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1))
    y = np.array([0, 2])
    state = axon_fn.init(model, x[:1])
    assert state.trainable["conv_0"]["kernel"].dtype == np.float64
    axon_fn.testing.check_grads(_loss(model, state, x, y), state.trainable)


def test_jit_records_and_replays_a_policy_step():
    model = mp.apply_policy(mlp(), mp.create_policy())
    x, y = data()
    state = axon_fn.init(model, x[:1])
    loss = _loss(model, state, x, y)
    step = axon_fn.jit(lambda trainable: axon_fn.value_and_grad(loss)(trainable))
    want_value, want_grads = axon_fn.value_and_grad(loss)(state.trainable)
    for _ in range(3):
        value, grads = step(state.trainable)
    assert step.cache_size() == 1
    np.testing.assert_allclose(value, want_value, rtol=1e-3)
    assert grads["dense_0"]["kernel"].dtype == F32
    np.testing.assert_allclose(grads["dense_0"]["kernel"], want_grads["dense_0"]["kernel"],
                               rtol=1e-3, atol=1e-5)


# Training ------------------------------------------------------------------------------------


def _train(model, epochs=15, **kwargs):
    x, y = data(256)
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    return trainer(model, xent, optim.adam(1e-2), **kwargs).run(batches, epochs=epochs)


def test_trainer_learns_under_bfloat16():
    final = _train(mp.apply_policy(mlp(), mp.create_policy()), compile=True)
    history = [h["loss"] for h in final.history]
    assert history[-1] < 0.5 * history[0]
    state = final.step_state.model_state
    assert state.trainable["dense_0"]["kernel"].dtype == F32
    assert state.state["batch_norm_0"]["mean"].dtype == F32


def test_trainer_learns_under_float16_with_dynamic_loss_scaling():
    model = mp.apply_policy(mlp(), mp.create_policy(compute="float16"))
    final = _train(model, loss_scale="dynamic")
    history = [h["loss"] for h in final.history]
    assert history[-1] < 0.5 * history[0]
    assert isinstance(final.step_state.loss_scale, optim.DynamicLossScale)


def test_dynamic_loss_scale_shrinks_when_float16_overflows():
    # 2**40 times the loss overflows float16's 65504 in the backward pass: those steps are
    # skipped and the scale halves until the gradients are finite again
    model = mp.apply_policy(mlp(), mp.create_policy(compute="float16"))
    final = _train(model, epochs=8, loss_scale=optim.DynamicLossScale(2.0 ** 40))
    scale = float(final.step_state.loss_scale.loss_scale)
    assert scale < 2.0 ** 40
    history = [h["loss"] for h in final.history]
    assert np.isfinite(history).all() and history[-1] < history[0]
    trainable = final.step_state.model_state.trainable
    assert all(np.isfinite(v).all() for layer in trainable.values() for v in layer.values())


def test_trainer_refuses_an_unknown_loss_scale_name():
    with pytest.raises(axon_fn.InvalidArgumentError, match="'dynamic'"):
        trainer(mlp(), xent, "adam", loss_scale="static")


# Optimizers on bfloat16 parameters -----------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "lion", "adafactor",
                                  "lamb", "adagrad"])
def test_optimizers_keep_state_in_the_params_dtype_and_compute_in_float32(name):
    rng = np.random.default_rng(5)
    params = {"w": rng.normal(size=(4, 3)).astype(BF16), "b": rng.normal(size=3).astype(BF16)}
    grads = {k: rng.normal(size=v.shape).astype(BF16) for k, v in params.items()}
    tx = getattr(optim, name)(1e-2)
    state = tx.init(params)
    wide = {k: v.astype(np.float32) for k, v in params.items()}
    wide_state = tx.init(wide)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        want, wide_state = tx.update({k: v.astype(np.float32) for k, v in grads.items()},
                                     wide_state, wide)
        for k in params:
            assert updates[k].dtype == BF16
            np.testing.assert_allclose(updates[k].astype(np.float32), want[k], rtol=0.05,
                                       atol=1e-3 * float(np.max(np.abs(want[k]))) + 1e-6)
    for leaf in optree.tree_leaves(state):  # moments in the params dtype, as in Optax
        if getattr(leaf, "ndim", 0):
            assert leaf.dtype == BF16
    new = optim.apply_updates(params, updates)
    assert {v.dtype for v in new.values()} == {BF16}


# Saving and loading --------------------------------------------------------------------------


def _bf16_state():
    rng = np.random.default_rng(6)
    return axon_fn.ModelState({"dense_0": {
        "kernel": rng.normal(size=(3, 2)).astype(BF16),
        "bias": np.arange(2, dtype=np.float32)}})


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_bfloat16_state_round_trips(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    state = _bf16_state()
    path = str(tmp_path / f"model{suffix}")
    axon_fn.save(state, path)
    back = axon_fn.load(path)
    kernel = back.trainable["dense_0"]["kernel"]
    assert kernel.dtype == BF16
    np.testing.assert_array_equal(kernel.view(np.uint16),
                                  state.trainable["dense_0"]["kernel"].view(np.uint16))
    assert back.trainable["dense_0"]["bias"].dtype == F32


def test_optimizer_state_of_bfloat16_params_round_trips(tmp_path):
    params = _bf16_state().trainable
    tx = optim.adam(1e-3)
    opt_state = tx.update(params, tx.init(params), params)[1]
    path = str(tmp_path / "opt.npz")
    axon_fn.save_tree(opt_state, path)
    back = axon_fn.load_tree(path, like=tx.init(params))  # checks dtypes against the template
    assert back[0].mu["dense_0"]["kernel"].dtype == BF16
    np.testing.assert_array_equal(back[0].nu["dense_0"]["kernel"].view(np.uint16),
                                  opt_state[0].nu["dense_0"]["kernel"].view(np.uint16))


def test_npz_holds_the_bits_readable_without_ml_dtypes(tmp_path):
    state = _bf16_state()
    path = str(tmp_path / "model.npz")
    axon_fn.save(state, path)
    with np.load(path, allow_pickle=False) as archive:
        raw = [archive[name] for name in archive.files if archive[name].dtype == np.uint16]
    assert len(raw) == 1
    np.testing.assert_array_equal(raw[0], state.trainable["dense_0"]["kernel"].view(np.uint16))


def test_safetensors_file_declares_bf16_for_the_safetensors_package(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    state = _bf16_state()
    path = str(tmp_path / "model.safetensors")
    axon_fn.save(state, path)
    with open(path, "rb") as file:
        (size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(size))
        body = file.read()
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    assert sorted(v["dtype"] for v in entries.values()) == ["BF16", "F32"]
    kernel = next(v for v in entries.values() if v["dtype"] == "BF16")
    assert kernel["shape"] == [3, 2]
    start, stop = kernel["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(body[start:stop], "<u2").reshape(3, 2),
                                  state.trainable["dense_0"]["kernel"].view(np.uint16))
    with safetensors.safe_open(path, framework="np") as file:  # the package reads the file
        names = {name: file.get_slice(name).get_dtype() for name in file.keys()}
        assert sorted(names.values()) == ["BF16", "F32"]
        bias = next(n for n, d in names.items() if d == "F32")
        np.testing.assert_array_equal(file.get_tensor(bias), np.arange(2, dtype=np.float32))


def test_safetensors_bf16_loads_in_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    state = _bf16_state()
    path = str(tmp_path / "model.safetensors")
    axon_fn.save(state, path)
    tensors = load_file(path)
    kernel = next(t for t in tensors.values() if t.dtype == torch.bfloat16)
    np.testing.assert_array_equal(kernel.float().numpy(),
                                  state.trainable["dense_0"]["kernel"].astype(np.float32))


# Without ml_dtypes ---------------------------------------------------------------------------


def test_import_works_without_ml_dtypes_and_bfloat16_says_how_to_get_it():
    code = """
import sys
sys.modules["ml_dtypes"] = None  # as if not installed
import numpy as np, axon_fn
from axon_fn import mixed_precision as mp, ops
assert float(ops.sum(np.ones(3, np.float16))) == 3.0
assert mp.create_policy(compute="float16").compute == np.float16
for call in (lambda: mp.create_policy(), lambda: ops.astype(np.ones(2), "bfloat16"),
             lambda: axon_fn.random.normal(axon_fn.random.key(0), (2,), dtype="bfloat16")):
    try:
        call()
    except axon_fn.AxonTypeError as error:
        assert "pip install axon_fn[bfloat16]" in str(error), error
    else:
        raise AssertionError("no error")
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_dtype_helpers():
    from axon_fn import _dtypes

    assert _dtypes.is_floating(BF16) and not np.issubdtype(BF16, np.inexact)
    assert _dtypes.canonical("bfloat16") == BF16 == _dtypes.canonical("bf16")
    assert _dtypes.accumulation_dtype(BF16) == F32
    assert float(_dtypes.finfo(BF16).eps) == 2.0 ** -7
    key = random.key(0)
    for init in (axon_fn.initializers.glorot_uniform(), axon_fn.initializers.zeros()):
        assert init(key, (2, 3), dtype="bfloat16").dtype == BF16
    assert random.normal(key, (4,), dtype=BF16).dtype == BF16
