"""Importing ONNX LSTM, GRU and RNN nodes, checked against onnxruntime.

Every case builds a one-node ONNX model with seeded random weights, runs it in onnxruntime, and
compares ``axon_fn.predict`` on the imported model. onnxruntime rejects ``layout=1`` (batch-major
tensors), so a layout-1 case is compared with onnxruntime on the same node in layout 0, given the
transposed inputs (and, where onnx's reference evaluator covers the case, with that evaluator on
the layout-1 node itself).
"""

import itertools

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import axon_fn  # noqa: E402
from axon_fn.onnx import OnnxImportError, import_model  # noqa: E402
from axon_fn.testing import check_grads  # noqa: E402
from tests import simulated_cupy  # noqa: E402

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
INPUTS = {"LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
          "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
          "RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h")}
OUTPUTS = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h"), "RNN": ("Y", "Y_h")}
STEPS, BATCH, FEATURES, HIDDEN = 5, 3, 4, 3
LENGTHS = np.array([5, 2, 4], np.int32)
RTOL, ATOL = 1e-5, 1e-6
BATCHED = ("X", "sequence_lens", "initial_h", "initial_c")  # graph inputs get a symbolic batch


# Building and running models -----------------------------------------------------------------

def _arrays(op, direction="forward", *, lengths=None, initial=False, peepholes=False, bias=True,
            seed=0, shape=(STEPS, BATCH, FEATURES, HIDDEN), dtype=np.float32):
    """The node's input arrays, in layout 0 (time-major), keyed by ONNX input name."""
    rng = np.random.default_rng(seed)
    steps, batch, features, hidden = shape
    dirs, gates = 2 if direction == "bidirectional" else 1, GATES[op]

    def normal(*dims, scale=1.0):
        return (scale * rng.standard_normal(dims)).astype(dtype)

    arrays = {"X": normal(steps, batch, features), "W": normal(dirs, gates * hidden, features,
                                                                scale=0.5),
              "R": normal(dirs, gates * hidden, hidden, scale=0.5)}
    if bias:
        arrays["B"] = normal(dirs, 2 * gates * hidden, scale=0.5)
    if lengths is not None:
        arrays["sequence_lens"] = np.asarray(lengths, np.int32)
    if initial:
        arrays["initial_h"] = normal(dirs, batch, hidden)
        if op == "LSTM":
            arrays["initial_c"] = normal(dirs, batch, hidden)
    if peepholes:
        arrays["P"] = normal(dirs, 3 * hidden, scale=0.5)
    return arrays


def _batch_major(name, array):
    """An input array of layout 0 in layout 1."""
    return np.swapaxes(array, 0, 1) if name in ("X", "initial_h", "initial_c") else array


def _batch_major_output(name, array):
    """An output of layout 0 in layout 1: Y (T, D, B, H) -> (B, T, D, H), Y_h (D, B, H) ->
    (B, D, H)."""
    return np.transpose(array, (2, 0, 1, 3)) if name == "Y" else np.swapaxes(array, 0, 1)


def _model(op, arrays, *, outputs=None, feeds=("X", "sequence_lens"), layout=0, opset=14,
           name="rnn", **attrs):
    """A one-node model: the arrays named in ``feeds`` are graph inputs, the others
    initializers. ``outputs`` lists the node's outputs ("" for one left out)."""
    outputs = list(OUTPUTS[op] if outputs is None else outputs)
    inputs = [n if n in arrays else "" for n in INPUTS[op]]
    while inputs[-1] == "":
        inputs.pop()
    if layout:
        attrs["layout"] = layout
        arrays = {n: _batch_major(n, a) for n, a in arrays.items()}
    graph_inputs, initializers = [], []
    for n in filter(None, inputs):
        a = arrays[n]
        if n in feeds:
            batch_axis = 0 if layout or n == "sequence_lens" else 1
            dims = ["batch" if d == batch_axis and n in BATCHED else size
                    for d, size in enumerate(a.shape)]
            elem = helper.np_dtype_to_tensor_dtype(a.dtype)
            graph_inputs.append(helper.make_tensor_value_info(n, elem, dims))
        else:
            initializers.append(numpy_helper.from_array(a, n))
    node = helper.make_node(op, inputs, outputs, name=name, hidden_size=arrays["R"].shape[-1],
                            **attrs)
    elem = helper.np_dtype_to_tensor_dtype(arrays["X"].dtype)
    steps, dirs, hidden = arrays["X"].shape[1 if layout else 0], *arrays["R"].shape[::2]
    shapes = {"Y": [steps, dirs, "batch", hidden], "Y_h": [dirs, "batch", hidden]}
    if layout:
        shapes = {"Y": ["batch", steps, dirs, hidden], "Y_h": ["batch", dirs, hidden]}
    shapes["Y_c"] = shapes["Y_h"]
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info(o, elem, shapes[o])
                               for o in outputs if o],
                              initializer=initializers)
    model = _make_model(graph, opset)
    onnx.checker.check_model(model)
    return model


def _make_model(graph, opset):
    """A model at a low IR version that its opset allows and every onnxruntime reads (the
    newest onnx writes an IR version that older onnxruntime releases refuse; below IR 4 an
    initializer must also be a graph input)."""
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = max(helper.find_min_ir_version_for(opsets), 4)
    return model


def _feeds(model, arrays, layout=0):
    names = {i.name for i in model.graph.input}
    return {n: _batch_major(n, a) if layout else a for n, a in arrays.items() if n in names}


def _onnxruntime(op, arrays, *, outputs=None, feeds=("X", "sequence_lens"), layout=0, **attrs):
    """onnxruntime's outputs, keyed by name; a layout-1 node runs as its layout-0 twin."""
    model = _model(op, arrays, outputs=outputs, feeds=feeds, **attrs)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    results = session.run(names, _feeds(model, arrays))
    return {n: _batch_major_output(n, r) if layout else r for n, r in zip(names, results)}


def _imported(op, arrays, *, layout=0, feeds=("X", "sequence_lens"), **kwargs):
    """axon_fn's outputs of the imported model, keyed by name, with the model and state."""
    model_proto = _model(op, arrays, layout=layout, feeds=feeds, **kwargs)
    model, state = import_model(model_proto)
    result = axon_fn.predict(model, state, _feeds(model_proto, arrays, layout))
    names = [o.name for o in model_proto.graph.output]
    result = result if isinstance(result, dict) else {names[0]: result}
    return {n: np.asarray(result[n]) for n in names}, model, state


def _assert_matches(op, arrays, **kwargs):
    expected = _onnxruntime(op, arrays, **kwargs)
    got, _, _ = _imported(op, arrays, **kwargs)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_allclose(got[name], value, rtol=RTOL, atol=ATOL, err_msg=name)
    return got


# The matrix: op x direction x sequence_lens x initial states x layout --------------------------

@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("initial", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_matches_onnxruntime(op, direction, lengths, initial, layout):
    arrays = _arrays(op, direction, lengths=lengths, initial=initial)
    _assert_matches(op, arrays, direction=direction, layout=layout)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_layout_1_matches_onnx_reference_evaluator(op):
    # The reference evaluator runs layout 1 itself (it ignores sequence_lens and activations).
    arrays = _arrays(op, "bidirectional", initial=True, peepholes=op == "LSTM")
    model = _model(op, arrays, layout=1, direction="bidirectional")
    expected = ReferenceEvaluator(model).run(None, _feeds(model, arrays, layout=1))
    got, _, _ = _imported(op, arrays, layout=1, direction="bidirectional")
    for name, value in zip(OUTPUTS[op], expected):
        np.testing.assert_allclose(got[name], value, rtol=RTOL, atol=ATOL, err_msg=name)


# LSTM and GRU options -------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_lstm_peepholes(direction):
    arrays = _arrays("LSTM", direction, lengths=LENGTHS, initial=True, peepholes=True)
    _assert_matches("LSTM", arrays, direction=direction)


@pytest.mark.parametrize("peepholes", [False, True])
def test_lstm_input_forget(peepholes):
    arrays = _arrays("LSTM", "reverse", lengths=LENGTHS, initial=True, peepholes=peepholes)
    _assert_matches("LSTM", arrays, direction="reverse", input_forget=1)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_clip(op):
    arrays = _arrays(op, "bidirectional", initial=True, peepholes=op == "LSTM")
    _assert_matches(op, arrays, direction="bidirectional", clip=0.6)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru_linear_before_reset(linear_before_reset, direction):
    arrays = _arrays("GRU", direction, lengths=LENGTHS, initial=True)
    _assert_matches("GRU", arrays, direction=direction, linear_before_reset=linear_before_reset)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_without_bias(op):
    arrays = _arrays(op, "bidirectional", lengths=LENGTHS, bias=False)
    _assert_matches(op, arrays, direction="bidirectional")


# Activations: alpha and beta are consumed in order by the activations that take them.
ACTIVATION_CASES = [
    ("LSTM", "forward", ["HardSigmoid", "Tanh", "Affine"], [0.3, 0.8], [0.4, 0.1]),
    ("LSTM", "forward", ["Sigmoid", "LeakyRelu", "Softsign"], [0.2], None),
    ("LSTM", "forward", ["Sigmoid", "ScaledTanh", "Softplus"], [1.3], [0.7]),
    ("LSTM", "forward", ["Sigmoid", "Elu", "Relu"], [0.9], None),
    ("LSTM", "forward", ["sigmoid", "thresholdedrelu", "tanh"], [0.1], None),  # any case
    ("LSTM", "bidirectional", ["Sigmoid", "Tanh", "Tanh", "HardSigmoid", "Softsign", "Affine"],
     [0.3, 0.9], [0.4, 0.2]),
    ("LSTM", "forward", ["HardSigmoid", "LeakyRelu", "Elu"], None, None),  # operator defaults
    ("GRU", "bidirectional", ["HardSigmoid", "Softsign", "Sigmoid", "Elu"], [0.3, 0.5], [0.4]),
    ("RNN", "forward", ["Relu"], None, None),
    ("RNN", "bidirectional", ["Affine", "ScaledTanh"], [0.5, 1.5], [0.1, 0.6]),
]


@pytest.mark.parametrize("op, direction, activations, alpha, beta", ACTIVATION_CASES)
def test_activations(op, direction, activations, alpha, beta):
    attrs = {"activations": activations}
    if alpha is not None:
        attrs["activation_alpha"] = alpha
    if beta is not None:
        attrs["activation_beta"] = beta
    arrays = _arrays(op, direction, lengths=LENGTHS, initial=True)
    _assert_matches(op, arrays, direction=direction, **attrs)


def test_activation_defaults_follow_the_onnx_operators():
    # The spec gives activations the defaults of the ONNX operators of the same name
    # (ThresholdedRelu alpha=1, Affine alpha=1 beta=0); onnxruntime takes 0 when they are
    # left out, so the reference is onnxruntime with the defaults written out, one value per
    # activation (older onnxruntime releases read the lists by position and abort when short).
    arrays = _arrays("RNN", "bidirectional", lengths=LENGTHS)
    written = _onnxruntime("RNN", arrays, direction="bidirectional",
                           activations=["ThresholdedRelu", "Affine"],
                           activation_alpha=[1.0, 1.0], activation_beta=[0.0, 0.0])
    got, _, _ = _imported("RNN", arrays, direction="bidirectional",
                          activations=["ThresholdedRelu", "Affine"])
    for name, value in written.items():
        np.testing.assert_allclose(got[name], value, rtol=RTOL, atol=ATOL, err_msg=name)


# Outputs, inputs and opsets -----------------------------------------------------------------------

@pytest.mark.parametrize("op, outputs", [
    ("LSTM", ["", "Y_h"]), ("LSTM", ["Y"]), ("LSTM", ["", "", "Y_c"]), ("LSTM", ["Y", "", "Y_c"]),
    ("GRU", ["", "Y_h"]), ("GRU", ["Y"]), ("RNN", ["", "Y_h"]),
])
def test_some_outputs(op, outputs):
    arrays = _arrays(op, "bidirectional", lengths=LENGTHS, initial=True)
    got = _assert_matches(op, arrays, direction="bidirectional", outputs=outputs)
    assert sorted(got) == sorted(filter(None, outputs))


def test_one_output_is_an_array():
    arrays = _arrays("GRU", "forward")
    proto = _model("GRU", arrays, outputs=["", "Y_h"])
    model, state = import_model(proto)
    result = axon_fn.predict(model, state, _feeds(proto, arrays))
    assert result.shape == (1, BATCH, HIDDEN)


def test_weights_and_states_as_graph_inputs():
    arrays = _arrays("LSTM", "bidirectional", lengths=LENGTHS, initial=True, peepholes=True)
    feeds = tuple(arrays)
    got = _assert_matches("LSTM", arrays, direction="bidirectional", feeds=feeds)
    assert set(got) == {"Y", "Y_h", "Y_c"}
    _, _, state = _imported("LSTM", arrays, direction="bidirectional", feeds=feeds)
    assert not state.trainable  # nothing was an initializer


@pytest.mark.parametrize("layout", [0, 1])
def test_states_as_graph_inputs_and_lengths_as_an_initializer(layout):
    arrays = _arrays("GRU", "reverse", lengths=LENGTHS, initial=True)
    _assert_matches("GRU", arrays, direction="reverse", layout=layout,
                    feeds=("X", "initial_h"))


def test_initializers_become_trainable_parameters():
    arrays = _arrays("LSTM", "bidirectional", lengths=LENGTHS, initial=True, peepholes=True)
    _, _, state = _imported("LSTM", arrays, direction="bidirectional")
    params = state.trainable["rnn"]
    assert sorted(params) == ["B", "P", "R", "W", "initial_c", "initial_h"]
    for key, value in params.items():
        np.testing.assert_array_equal(value, arrays[key])


def test_shared_weights():
    # Two nodes reading the same initializers: the weights become parameters of their own.
    arrays = _arrays("GRU", "forward", lengths=LENGTHS)
    x2 = np.random.default_rng(5).standard_normal(arrays["X"].shape).astype(np.float32)
    nodes = [helper.make_node("GRU", [x, "W", "R", "B", "sequence_lens"], ["", h],
                              name=f"gru{k}", hidden_size=HIDDEN)
             for k, (x, h) in enumerate([("X", "h1"), ("X2", "h2")])]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g",
        [value("X", TensorProto.FLOAT, [STEPS, "batch", FEATURES]),
         value("X2", TensorProto.FLOAT, [STEPS, "batch", FEATURES]),
         value("sequence_lens", TensorProto.INT32, ["batch"])],
        [value("h1", TensorProto.FLOAT, None), value("h2", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(arrays[n], n) for n in ("W", "R", "B")])
    proto = _make_model(graph, 14)
    feeds = {"X": arrays["X"], "X2": x2, "sequence_lens": LENGTHS}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(["h1", "h2"], feeds)
    model, state = import_model(proto)
    got = axon_fn.predict(model, state, feeds)
    for name, value in zip(["h1", "h2"], expected):
        np.testing.assert_allclose(got[name], value, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("opset", [7, 22])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_opsets(op, opset):
    arrays = _arrays(op, "bidirectional", lengths=LENGTHS, initial=True)
    _assert_matches(op, arrays, direction="bidirectional", opset=opset)


@pytest.mark.skipif(tuple(int(v) for v in ort.__version__.split(".")[:2]) < (1, 32),
                    reason="older onnxruntime releases leave an empty row's Y_h uninitialized "
                           "(1.23 returns whatever memory held); 1.32 writes zeros")
def test_empty_sequence_ends_in_zero_states():
    # A row of length 0 writes zeros to Y and, as onnxruntime does, to Y_h and Y_c too.
    for op in GATES:
        arrays = _arrays(op, "bidirectional", lengths=[5, 0, 3], initial=True)
        got = _assert_matches(op, arrays, direction="bidirectional")
        assert not got["Y_h"][:, 1].any()


def test_float64_model():
    arrays = _arrays("GRU", "bidirectional", lengths=LENGTHS, initial=True, dtype=np.float64)
    got, _, _ = _imported("GRU", arrays, direction="bidirectional")
    arrays32 = {n: a.astype(np.float32) if a.dtype == np.float64 else a
                for n, a in arrays.items()}
    expected = _onnxruntime("GRU", arrays32, direction="bidirectional")
    for name, value in expected.items():
        assert got[name].dtype == np.float64
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5)


# Errors -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs, message", [
    ({"direction": "sideways"}, "direction"),
    ({"direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Tanh"]}, "activations"),
    ({"activations": ["Sigmoid", "Swish", "Tanh"]}, "Swish"),
    ({"hidden_size": HIDDEN + 1}, "hidden_size"),
])
def test_invalid_attributes(attrs, message):
    arrays = _arrays("LSTM", "bidirectional" if attrs.get("direction") == "bidirectional"
                     else "forward")
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="bad",
                            **{"hidden_size": HIDDEN, **attrs})
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, arrays["X"].shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(arrays[n], n) for n in ("W", "R")])
    proto = _make_model(graph, 14)
    with pytest.raises(OnnxImportError, match=message):
        import_model(proto)


# Gradients, init and jit --------------------------------------------------------------------------

GRAD_SHAPE = (3, 2, 2, 2)  # steps, batch, features, hidden


@pytest.mark.parametrize("op, direction, initial, attrs", [
    ("LSTM", "bidirectional", True, {}),
    ("GRU", "reverse", False, {"linear_before_reset": 0}),
    ("GRU", "forward", True, {"linear_before_reset": 1, "clip": 1.5}),
    ("RNN", "bidirectional", False, {"activations": ["Softsign", "Elu"]}),
])
def test_gradients_through_imported_model(op, direction, initial, attrs):
    arrays = _arrays(op, direction, lengths=[3, 2], initial=initial, shape=GRAD_SHAPE,
                     peepholes=op == "LSTM")
    proto = _model(op, arrays, direction=direction, **attrs)
    model, state = import_model(proto)
    state = state.astype(np.float64)
    lengths = np.array([3, 2], np.int32)

    def outputs(params, x):
        return axon_fn.predict(model, state.replace(trainable=params),
                               {"X": x, "sequence_lens": lengths})

    check_grads(outputs, state.trainable, arrays["X"].astype(np.float64))


def test_every_parameter_of_a_bidirectional_lstm_gets_a_gradient():
    arrays = _arrays("LSTM", "bidirectional", lengths=LENGTHS, initial=True, peepholes=True)
    proto = _model("LSTM", arrays, direction="bidirectional")
    model, state = import_model(proto)
    inputs = _feeds(proto, arrays)

    def loss(params):
        out = axon_fn.predict(model, state.replace(trainable=params), inputs)
        return sum(axon_fn.ops.sum(axon_fn.ops.multiply(out[n], out[n])) for n in out)

    grads = axon_fn.grad(loss)(state.trainable)["rnn"]
    assert sorted(grads) == ["B", "P", "R", "W", "initial_c", "initial_h"]
    for name, g in grads.items():
        assert g.shape == arrays[name].shape, name
        assert np.all(np.isfinite(g)) and np.any(g != 0), name
        for d in range(2):  # both directions learn
            assert np.any(g[d] != 0), (name, d)


def test_init_reproduces_the_imported_weights_and_jit_matches():
    arrays = _arrays("LSTM", "bidirectional", lengths=LENGTHS, initial=True, peepholes=True)
    proto = _model("LSTM", arrays, direction="bidirectional", layout=1)
    model, state = import_model(proto)
    inputs = _feeds(proto, arrays, layout=1)
    fresh = axon_fn.init(model, inputs)  # runs the op on shapes alone
    for key, value in state.trainable["rnn"].items():
        np.testing.assert_array_equal(fresh.trainable["rnn"][key], value)
    expected = axon_fn.predict(model, state, inputs)
    run = axon_fn.jit(lambda s, x: axon_fn.predict(model, s, x))
    for _ in range(2):
        got = run(state, inputs)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=ATOL)


def test_many_seeds_agree():
    # A few more random draws over the full option space, as a net for rare sign patterns.
    for seed, (op, direction) in enumerate(itertools.product(
            ["LSTM", "GRU"], ["forward", "reverse", "bidirectional"])):
        arrays = _arrays(op, direction, lengths=[1, 5, 3], initial=True, seed=100 + seed,
                         peepholes=op == "LSTM")
        _assert_matches(op, arrays, direction=direction)


def test_runs_and_differentiates_on_the_gpu_path_without_a_transfer():
    # numpy-backed CuPy stand-in (tests/simulated_cupy.py): values stay on the device, the
    # sequence lengths included, and nothing mixes host and device arrays.
    arrays = _arrays("LSTM", "bidirectional", lengths=LENGTHS, peepholes=True)
    proto = _model("LSTM", arrays, direction="bidirectional")
    model, state = import_model(proto)
    inputs = _feeds(proto, arrays)

    def loss(params, inputs):
        out = axon_fn.predict(model, state.replace(trainable=params), inputs)
        return axon_fn.ops.sum(out["Y"]) + axon_fn.ops.sum(out["Y_c"])

    expected = axon_fn.value_and_grad(loss)(state.trainable, inputs)
    with simulated_cupy.installed():
        on_gpu = axon_fn.device_put((state.trainable, inputs), "cuda")
        before = dict(simulated_cupy.transfers)
        got = axon_fn.value_and_grad(loss)(*on_gpu)
        assert dict(simulated_cupy.transfers) == before
        assert axon_fn.backend.is_gpu_array(got[1]["rnn"]["W"])
        got = axon_fn.to_numpy(got)
    np.testing.assert_allclose(got[0], expected[0], rtol=RTOL)
    for key, value in expected[1]["rnn"].items():
        np.testing.assert_allclose(got[1]["rnn"][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
