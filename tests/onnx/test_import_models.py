"""Whole models exported from PyTorch (both exporters, committed fixtures made by
``fixtures/make_fixtures.py``) imported into axon_fn: the outputs agree with onnxruntime on
the same inputs, at several batch sizes; an imported LeNet fine-tunes; unsupported ops are all
named in one error."""

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import axon_fn  # noqa: E402
from axon_fn import losses, optim  # noqa: E402
from axon_fn import onnx as axon_onnx  # noqa: E402
from axon_fn.loop import trainer  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
IMPORTABLE = [entry for entry in MANIFEST if entry["model"] != "unsupported"]


def make_inputs(entry, batch, seq, rng):
    """Random inputs for a manifest entry at ``batch`` rows and ``seq`` time steps (its
    symbolic dims are named ``batch`` and ``T``)."""
    feeds = {}
    sizes = {"batch": batch, "T": seq}
    for spec in entry["inputs"]:
        dims = [sizes[d] if isinstance(d, str) else d for d in spec["dims"]]
        kind = spec.get("gen", {}).get("kind")
        dtype = np.dtype(spec["dtype"])
        time = seq if seq is not None else dims[-1]
        if kind == "padding_mask":  # True past a random length, at least one real step
            lengths = rng.integers(1, dims[1] + 1, dims[0])
            feeds[spec["name"]] = np.arange(dims[1])[None, :] >= lengths[:, None]
        elif kind == "lengths":
            feeds[spec["name"]] = rng.integers(1, time + 1, dims).astype(dtype)
        elif dtype.kind == "f":
            feeds[spec["name"]] = rng.normal(size=dims).astype(dtype)
        else:
            feeds[spec["name"]] = rng.integers(0, 3, dims).astype(dtype)
    return feeds


def seq_lengths(entry):
    """Time lengths to try: two where time is symbolic, else the fixed one."""
    symbolic = {d for spec in entry["inputs"] for d in spec["dims"] if isinstance(d, str)}
    return (4, 7) if "T" in symbolic else (None,)


@pytest.fixture(scope="module")
def imported():
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = axon_onnx.import_model(FIXTURES / name)
        return cache[name]
    return load


@pytest.mark.parametrize("entry", IMPORTABLE, ids=[e["file"] for e in IMPORTABLE])
def test_fixture_matches_onnxruntime(entry, imported):
    model, state = imported(entry["file"])
    session = ort.InferenceSession(str(FIXTURES / entry["file"]),
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        for seq in seq_lengths(entry):
            feeds = make_inputs(entry, batch, seq, rng)
            expected = session.run(None, feeds)
            got = axon_fn.predict(model, state, feeds)
            got = [got[name] for name in entry["outputs"]] if isinstance(got, dict) else [got]
            for want, have in zip(expected, got):
                assert np.shape(have) == want.shape
                scale = np.max(np.abs(want)) + 1e-6
                np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-4 * scale)


def test_fixtures_cover_both_exporters_and_the_opsets():
    for model in ("mlp", "lenet", "resnet", "mobilenet", "lstm", "gru", "transformer"):
        exporters = {e["exporter"] for e in MANIFEST if e["model"] == model}
        assert {"ts", "dynamo"} <= exporters or model == "transformer" and exporters, model
    opsets = {e["opset"] for e in MANIFEST}
    assert {9, 11, 13, 17, 18, 21} <= opsets


def test_imported_lenet_is_an_ordinary_model(imported):
    model, state = imported("lenet_ts_op17.onnx")
    counts = axon_fn.get_op_counts(model)
    assert counts.get("conv") == 2 and counts.get("dense") == 3, counts
    # every parameter of the state is one the model declares, with the imported values
    init_state = axon_fn.init(model, np.zeros((1, 1, 28, 28), np.float32))
    flat = lambda tree: {(layer, name): value for layer, params in tree.items()  # noqa: E731
                         for name, value in params.items()}
    assert flat(init_state.trainable).keys() == flat(state.trainable).keys()
    for key, value in flat(state.trainable).items():
        np.testing.assert_array_equal(init_state.trainable[key[0]][key[1]], value)
    proto = onnx.load(FIXTURES / "lenet_ts_op17.onnx")
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    kernels = [v for (layer, name), v in flat(state.trainable).items() if name == "kernel"]
    assert any(any(np.array_equal(k, w) for w in weights.values()) for k in kernels)
    lines = []
    axon_fn.summary(model, np.zeros((1, 1, 28, 28), np.float32), print_fn=lines.append)
    assert "conv" in "\n".join(lines)


def test_batch_norm_statistics_are_state_and_update_in_train_mode(imported):
    # PyTorch's exporters fold eval-mode batch norm into the convolution; this handmade
    # model keeps BatchNormalization nodes
    model, state = imported("batchnorm_handmade_op15.onnx")
    assert axon_fn.get_op_counts(model).get("batch_norm") == 2
    assert state.state, "batch-norm running statistics belong in state.state"
    for params in state.state.values():
        assert set(params) == {"mean", "var"}
        assert not np.allclose(params["mean"], 0.0)
    entry = next(e for e in MANIFEST if e["file"] == "batchnorm_handmade_op15.onnx")
    feeds = make_inputs(entry, 4, None, np.random.default_rng(0))
    _, train_fn = axon_fn.build(model, mode="train")
    _, new_state = train_fn(state, feeds)
    for layer, params in new_state.state.items():
        assert not np.allclose(params["mean"], state.state[layer]["mean"])


def _teacher_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 1, 28, 28)).astype(np.float32)
    labels = (images[:, 0, 8:20, 8:20].mean(axis=(1, 2)) > 0).astype(np.int64)
    labels += 2 * (images[:, 0, :14].mean(axis=(1, 2)) > 0)
    return images, labels


def test_imported_lenet_fine_tunes_and_every_parameter_gets_a_gradient(imported):
    model, state = imported("lenet_dynamo_op18.onnx")
    images, labels = _teacher_data()

    def loss_fn(trainable):
        logits = axon_fn.predict(model, state.replace(trainable=trainable), images)
        return losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)

    grads = axon_fn.grad(loss_fn)(state.trainable)
    for layer, params in grads.items():
        for name, g in params.items():
            assert np.any(g != 0), f"no gradient reaches {layer}.{name}"

    loss = lambda y, p: losses.categorical_cross_entropy(  # noqa: E731
        y, p, from_logits=True, sparse=True)
    batches = [(images[i:i + 32], labels[i:i + 32]) for i in range(0, len(images), 32)]
    final = trainer(model, loss, optim.adam(1e-3)).run(batches, epochs=6, init_state=state)
    history = [epoch["loss"] for epoch in final.history]
    assert history[-1] < 0.7 * history[0], history


def test_freezing_the_imported_body_trains_only_the_head(imported):
    model, state = imported("mlp_ts_op17.onnx")
    names = list(state.trainable)
    head = names[-1]
    frozen = axon_fn.freeze(state, lambda path, value: not path.startswith(head + "."))
    x = np.random.default_rng(1).normal(size=(64, 20)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(64, 5)).astype(np.float32)
    final = trainer(model, "mean_squared_error", "sgd", learning_rate=0.1).run(
        [(x, y)], epochs=3, init_state=frozen)
    after = final.step_state.model_state
    for layer in names[:-1]:
        for name, value in state.trainable[layer].items():
            np.testing.assert_array_equal(after.frozen[layer][name], value)
    assert not np.array_equal(after.trainable[head]["kernel"], state.trainable[head]["kernel"])


def test_jit_and_predict_agree_on_an_imported_model(imported):
    model, state = imported("transformer_ts_op17.onnx")
    entry = next(e for e in MANIFEST if e["file"] == "transformer_ts_op17.onnx")
    feeds = make_inputs(entry, 2, None, np.random.default_rng(3))
    _, predict_fn = axon_fn.build(model)
    compiled = axon_fn.jit(predict_fn)
    np.testing.assert_allclose(compiled(state, feeds), predict_fn(state, feeds), rtol=1e-5)
    np.testing.assert_allclose(compiled(state, feeds), predict_fn(state, feeds), rtol=1e-5)


def test_unsupported_ops_are_all_named_at_once():
    with pytest.raises(axon_onnx.OnnxImportError) as raised:
        axon_onnx.import_model(FIXTURES / "unsupported_handmade_op17.onnx")
    message = str(raised.value)
    proto = onnx.load(FIXTURES / "unsupported_handmade_op17.onnx")
    missing = {n.op_type for n in proto.graph.node} - set(axon_onnx.supported_ops())
    assert len(missing) >= 3
    for op_type in missing:
        assert op_type in message
    for node in proto.graph.node:
        if node.op_type in missing:
            assert node.name in message
    assert "opset" in message


def test_weights_listed_as_graph_inputs_are_parameters():
    entry = next(e for e in MANIFEST if e["model"] == "older_weights_as_inputs")
    model, state = axon_onnx.import_model(FIXTURES / entry["file"])
    assert list(axon_fn.get_inputs(model)) == [spec["name"] for spec in entry["inputs"]]
    assert sum(v.size for params in state.trainable.values() for v in params.values()) > 0


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(axon_onnx.OnnxImportError, match="no ONNX file"):
        axon_onnx.import_model(tmp_path / "missing.onnx")
    with pytest.raises(axon_onnx.OnnxImportError, match="path, bytes or an onnx.ModelProto"):
        axon_onnx.import_model(42)
    model, _ = axon_onnx.import_model((FIXTURES / "mlp_ts_op17.onnx").read_bytes())
    assert axon_fn.get_inputs(model)


@pytest.mark.parametrize("name", ["cnn_zoo_b_dynamo_op18.onnx", "transformer_dynamo_op18.onnx",
                                  "transformer_ts_op17.onnx"])
def test_scalars_and_settings_stay_constants_and_gradients_flow(name, imported):
    """Exporters store a formula's scalars (-inf masks, 1/sqrt(d)) and resize scales as
    initializers; they are constants of the imported model, not trainable weights."""
    model, state = imported(name)
    leaves = [v for params in state.trainable.values() for v in params.values()]
    assert leaves and all(v.size > 1 for v in leaves)
    entry = next(e for e in MANIFEST if e["file"] == name)
    feeds = make_inputs(entry, 2, 4 if seq_lengths(entry)[0] else None,
                        np.random.default_rng(0))

    def total(trainable):
        out = axon_fn.predict(model, state.replace(trainable=trainable), feeds)
        return axon_fn.ops.sum(out * out)

    grads = axon_fn.grad(total)(state.trainable)
    assert all(np.all(np.isfinite(g)) for params in grads.values() for g in params.values())


def test_a_single_prelu_slope_is_still_a_weight():
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"], name="act")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        initializer=[numpy_helper.from_array(np.asarray([0.25], np.float32), "slope")])
    model, state = axon_onnx.import_model(helper.make_model(graph))
    np.testing.assert_array_equal(state.trainable["act"]["slope"], [0.25])
