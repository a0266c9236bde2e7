"""axon_fn.onnx.export: every built-in layer family runs in onnxruntime with the outputs of
axon_fn.predict, at the template's batch size and at others."""

import numpy as np
import optree
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import axon_fn  # noqa: E402
from axon_fn import nn, ops  # noqa: E402
from axon_fn._core import PRIMITIVES, stageable  # noqa: E402
from axon_fn.model_state import ModelState, flatten_paths, nest_paths  # noqa: E402
from axon_fn.onnx import OnnxExportError, export  # noqa: E402
from axon_fn.onnx._export import RULES, UNEXPORTED  # noqa: E402

TEMPLATE_BATCH = 3
OTHER_BATCHES = (1, 5)


# Helpers -----------------------------------------------------------------------------------------


def _inputs(specs, batch, seed):
    """Random inputs for ``{name: (shape with None for the batch, kind)}``; kind is "float",
    "int<n>" (ids below n), "bool" (at least one True per row) or "pos" (positive floats)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, kind) in specs.items():
        shape = tuple(batch if d is None else d for d in shape)
        if kind == "float":
            out[name] = rng.normal(size=shape).astype(np.float32)
        elif kind == "pos":
            out[name] = rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
        elif kind.startswith("int"):
            out[name] = rng.integers(0, int(kind[3:]), size=shape).astype(np.int64)
        else:
            mask = rng.random(shape) < 0.7
            mask[..., 0] = True
            out[name] = mask
    return out


def _randomize(state, seed=0):
    """Parameters away from their initial values (non-zero biases and statistics), so a
    wrong or missing parameter shows."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if path[-1] == "var":
            return rng.uniform(0.5, 2.0, leaf.shape).astype(leaf.dtype)
        return (rng.normal(size=leaf.shape) * 0.5).astype(leaf.dtype)

    return ModelState(*(nest_paths({p: fill(p, v) for p, v in flatten_paths(part).items()})
                        for part in state))


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _compare(model, state, session, inputs, rtol=1e-5, atol=1e-6):
    """onnxruntime's outputs against predict's: names, dtypes, shapes and values."""
    ref = axon_fn.predict(model, state, inputs)
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, inputs)))
    if isinstance(ref, np.ndarray):
        ref = {"output": ref}
    else:
        paths, leaves, _ = optree.tree_flatten_with_path(ref)
        ref = {".".join(map(str, p)): leaf for p, leaf in zip(paths, leaves)}
    assert sorted(got) == sorted(ref)
    for name, expected in ref.items():
        assert got[name].dtype == expected.dtype, name
        assert got[name].shape == expected.shape, name
        np.testing.assert_allclose(got[name], expected, rtol=rtol, atol=atol, err_msg=name)


def _roundtrip(model, specs, *, batches=OTHER_BATCHES, seed=0, **kw):
    template = _inputs(specs, TEMPLATE_BATCH, seed)
    state = _randomize(axon_fn.init(model, template, 0), seed)
    proto = export(model, state, None, template, **kw)
    session = _session(proto)
    for i, batch in enumerate((TEMPLATE_BATCH, *batches)):
        _compare(model, state, session, _inputs(specs, batch, seed + 1 + i))
    return proto


# The layer table: (id, nn names covered, model builder -> (model, input specs)) ------------------


def _x(shape, kind="float", name="x"):
    return axon_fn.input(name, shape=(None, *shape)), {name: ((None, *shape), kind)}


def _on(shape, *layers, kind="float"):
    def build():
        x, specs = _x(shape, kind)
        for layer in layers:  # a layer, or a function of the node
            x = x >> layer if isinstance(layer, (axon_fn.Layer, axon_fn.Pipeline)) else layer(x)
        return x, specs
    return build


def _two(shape_a, shape_b, fn):
    def build():
        a, sa = _x(shape_a, name="a")
        b, sb = _x(shape_b, name="b")
        return fn(a, b), {**sa, **sb}
    return build


def _masked(fn, shape, mask_len):
    def build():
        x, specs = _x(shape)
        m = axon_fn.input("mask", shape=(None, mask_len), dtype="bool")
        return fn(x, m), {**specs, "mask": ((None, mask_len), "bool")}
    return build


def _lstm_state(x):
    out, (c, h) = nn.lstm(x, 4, return_state=True)
    return axon_fn.container({"out": out, "c": c, "h": h})


def _decoder(x, m):
    return nn.transformer_decoder_block(x, m, num_heads=2, ff_size=8, dropout_rate=0.1)


CASES = [
    ("dense", ["dense"], _on((5,), nn.dense(4))),
    ("dense_relu_3d", ["dense"], _on((3, 5), nn.dense(4, activation="relu"))),
    ("dense_sigmoid_nobias", ["dense"], _on((5,), nn.dense(4, activation="sigmoid",
                                                            use_bias=False))),
    ("dense_gelu", ["dense"], _on((5,), nn.dense(4, activation="gelu"))),
    ("bilinear", ["bilinear"], _two((3,), (4,), lambda a, b: nn.bilinear(a, b, 5))),
    ("embedding", ["embedding"], _on((6,), nn.embedding(10, 4), kind="int10")),
    ("bias", ["bias"], _on((2, 5), nn.bias())),
    ("conv1d_valid", ["conv"], _on((9, 3), nn.conv(4, 3))),
    ("conv1d_same_stride", ["conv"], _on((9, 3), nn.conv(4, 3, strides=2, padding="same"))),
    ("conv2d_asym_dilated", ["conv"], _on((7, 8, 2), nn.conv(
        4, (3, 2), padding=((1, 2), (0, 1)), kernel_dilation=(2, 1), activation="relu"))),
    ("conv2d_input_dilation", ["conv"], _on((5, 6, 2), nn.conv(
        3, 3, input_dilation=(2, 3), padding="same"))),
    ("conv2d_groups_first", ["conv"], _on((4, 7, 6), nn.conv(
        6, 3, feature_group_count=2, strides=(2, 1), channels="first"))),
    # large outputs take the conv bias's tiled path, small ones not: traced where both agree
    ("conv2d_size_dependent_bias", ["conv"], _on((16, 16, 4), nn.conv(16, 3, padding="same"))),
    ("conv3d", ["conv"], _on((4, 5, 6, 2), nn.conv(3, 2, strides=(1, 2, 1), padding="same"))),
    ("conv_transpose1d", ["conv_transpose"], _on((5, 3), nn.conv_transpose(2, 3, strides=2))),
    ("conv_transpose2d_same_first", ["conv_transpose"], _on((3, 4, 5), nn.conv_transpose(
        2, (3, 2), strides=(2, 3), padding="same", channels="first"))),
    ("conv_transpose2d_dilated", ["conv_transpose"], _on((4, 5, 2), nn.conv_transpose(
        3, 2, kernel_dilation=2, padding=((1, 0), (0, 2))))),
    ("depthwise_conv", ["depthwise_conv"], _on((6, 7, 3), nn.depthwise_conv(
        2, 3, padding="same", strides=2))),
    ("depthwise_conv_input_dilation", ["depthwise_conv"], _on((5, 3), nn.depthwise_conv(
        2, 2, input_dilation=2, channels="first"))),
    ("separable_conv2d", ["separable_conv2d"], _on((6, 7, 2), nn.separable_conv2d(
        2, 3, padding="same"))),
    ("separable_conv3d", ["separable_conv3d"], _on((4, 5, 6, 2), nn.separable_conv3d(
        1, 2, strides=(1, 2, 1)))),
    ("max_pool", ["max_pool"], _on((7, 6, 3), nn.max_pool(2))),
    ("max_pool_same_first", ["max_pool"], _on((3, 7, 5), nn.max_pool(
        3, strides=2, padding="same", channels="first"))),
    ("avg_pool_exclude_pad", ["avg_pool"], _on((7, 3), nn.avg_pool(
        3, strides=2, padding=((1, 1),), count_include_pad=False))),
    ("avg_pool_2d", ["avg_pool"], _on((6, 6, 2), nn.avg_pool((2, 3), padding="same"))),
    ("lp_pool", ["lp_pool"], _on((6, 6, 2), nn.lp_pool(2, norm=3), kind="pos")),
    ("adaptive_avg_pool", ["adaptive_avg_pool"], _on((7, 6, 2), nn.adaptive_avg_pool((3, 2)))),
    ("adaptive_max_pool", ["adaptive_max_pool"], _on((2, 7), nn.adaptive_max_pool(
        3, channels="first"))),
    ("adaptive_lp_pool", ["adaptive_lp_pool"], _on((5, 2), nn.adaptive_lp_pool(2),
                                                   kind="pos")),
    ("global_avg_pool", ["global_avg_pool"], _on((4, 5, 3), nn.global_avg_pool())),
    ("global_max_pool", ["global_max_pool"], _on((3, 4, 5), nn.global_max_pool(
        keep_axes=True, channels="first"))),
    ("global_lp_pool", ["global_lp_pool"], _on((4, 3), nn.global_lp_pool(norm=1.5),
                                               kind="pos")),
    ("batch_norm", ["batch_norm"], _on((5, 4), nn.batch_norm())),
    ("batch_norm_first", ["batch_norm"], _on((4, 5), nn.batch_norm(channel_index=1))),
    ("layer_norm", ["layer_norm"], _on((3, 6), nn.layer_norm())),
    ("group_norm", ["group_norm"], _on((5, 6), nn.group_norm(3))),
    ("instance_norm", ["instance_norm"], _on((5, 3), nn.instance_norm())),
    ("rms_norm", ["rms_norm"], _on((6,), nn.rms_norm())),
    ("flatten", ["flatten"], _on((2, 3, 2), nn.flatten())),
    ("reshape", ["reshape"], _on((12,), nn.reshape((3, -1)))),
    ("transpose", ["transpose"], _on((2, 3, 4), nn.transpose((2, 0, 1)))),
    ("pad", ["pad"], _on((3, 4, 2), nn.pad([(1, 2), (0, 1)], value=-1.5))),
    ("resize_nearest", ["resize"], _on((3, 5, 2), nn.resize((7, 2)))),
    ("resize_linear_first", ["resize"], _on((2, 4, 3), nn.resize(
        (6, 5), method="bilinear", channels="first"))),
    ("add", ["add"], _two((4,), (4,), lambda a, b: nn.add(a, b, activation="tanh"))),
    ("subtract", ["subtract"], _two((4,), (1,), nn.subtract)),
    ("multiply", ["multiply"], _two((4,), (4,), nn.multiply)),
    ("concatenate", ["concatenate"], _two((2, 3), (2, 4), nn.concatenate)),
    ("split", ["split"], _on((6,), lambda x: nn.multiply(*nn.split(x, 2)))),
    ("split_indices", ["split"], _on((7,), lambda x: nn.concatenate(
        list(reversed(nn.split(x, [2, 5])))))),
    ("dropouts", ["dropout", "alpha_dropout", "feature_alpha_dropout", "spatial_dropout"],
     _on((4, 3), nn.dropout(0.5), nn.alpha_dropout(0.2), nn.feature_alpha_dropout(0.3),
         nn.spatial_dropout(0.4))),
    ("lstm", ["lstm"], _on((5, 3), nn.lstm(4))),
    ("lstm_state", ["lstm"], _on((4, 3), _lstm_state)),
    ("lstm_bidirectional_masked", ["lstm"], _masked(
        lambda x, m: nn.lstm(x, 3, mask=m, bidirectional=True), (4, 3), 4)),
    ("gru_reverse", ["gru"], _on((5, 3), nn.gru(4, reverse=True))),
    ("gru_bidirectional_sum", ["gru"], _on((4, 2), nn.gru(3, bidirectional=True,
                                                          merge="sum"))),
    ("conv_lstm", ["conv_lstm"], _on((3, 5, 4, 2), nn.conv_lstm(2, 3))),
    ("mha", ["multi_head_attention"], _on((4, 6), nn.multi_head_attention(num_heads=2))),
    ("mha_causal", ["multi_head_attention"], _on((4, 6), nn.multi_head_attention(
        num_heads=3, causal=True))),
    ("mha_masked_cross", ["multi_head_attention"], _masked(
        lambda x, m: nn.multi_head_attention(x, x >> nn.dense(5), num_heads=2, key_mask=m),
        (4, 6), 4)),
    ("sinusoidal", ["sinusoidal_position_encoding"], _on((5, 6),
                                                         nn.sinusoidal_position_encoding())),
    ("learned_position", ["learned_position_embedding"], _on(
        (4, 6), nn.learned_position_embedding(7))),
    ("encoder_block", ["transformer_encoder_block"], _masked(
        lambda x, m: nn.transformer_encoder_block(x, num_heads=2, ff_size=8, key_mask=m),
        (4, 6), 4)),
    ("encoder_block_pre_norm", ["transformer_encoder_block"], _on(
        (4, 6), nn.transformer_encoder_block(num_heads=3, ff_size=8, norm_first=True,
                                             activation="gelu"))),
    ("decoder_block", ["transformer_decoder_block"], _two((3, 6), (5, 6), _decoder)),
    *[(f"activation_{name}", [name], _on((2, 5), getattr(nn, name)()))
      for name in axon_fn.activations.__all__],
    ("activation_by_name", ["activation"], _on((5,), nn.activation("softplus"))),
]


@pytest.mark.parametrize("build", [c[2] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_exports_and_matches_predict(build):
    model, specs = build()
    _roundtrip(model, specs)


def test_cond_picks_the_branch_of_each_input():
    x = axon_fn.input("x", shape=(None, 3))
    model = nn.cond(x, lambda v: v.sum() > 0, x >> nn.relu(), x >> nn.tanh())
    template = np.ones((2, 3), np.float32)
    state = axon_fn.init(model, template)
    session = _session(export(model, state, None, template))
    for sign in (1.0, -1.0):
        _compare(model, state, session, {"x": sign * np.abs(_inputs(
            {"x": ((None, 3), "float")}, 4, 0)["x"])})


def test_every_nn_layer_is_covered():
    covered = {name for _, names, _ in CASES for name in names} | {"cond"}
    assert sorted(set(nn.__all__) - covered) == []


def test_every_primitive_has_a_rule_or_a_reason():
    missing = sorted(set(PRIMITIVES) - set(RULES) - set(UNEXPORTED))
    assert missing == []
    assert sorted(set(RULES) & set(UNEXPORTED)) == []


# Structure, names, options -----------------------------------------------------------------------


def _cnn():
    x = axon_fn.input("image", shape=(None, 6, 6, 2))
    h = x >> nn.conv(4, 3, padding="same") >> nn.batch_norm() >> nn.relu()
    h = nn.concatenate(h >> nn.global_max_pool(), h >> nn.global_avg_pool(),
                       h >> nn.adaptive_max_pool(2) >> nn.flatten())
    return h >> nn.dense(3) >> nn.log_softmax(), {"image": ((None, 6, 6, 2), "float")}


@pytest.mark.parametrize("opset", [13, 15, 17, 18, 21])
def test_opsets(opset):
    model, specs = _cnn()
    proto = _roundtrip(model, specs, opset=opset)
    assert proto.opset_import[0].version == opset
    reduce_max = [n for n in proto.graph.node if n.op_type == "ReduceMax"]
    assert reduce_max
    for node in reduce_max:  # axes: an attribute before opset 18, an input from it
        assert (len(node.input) == 2) == (opset >= 18)
        assert any(a.name == "axes" for a in node.attribute) == (opset < 18)


@pytest.mark.parametrize("opset", [12, 22, "17"])
def test_unsupported_opset(opset):
    model, specs = _cnn()
    template = _inputs(specs, 2, 0)
    with pytest.raises(OnnxExportError, match="13 to 21"):
        export(model, axon_fn.init(model, template), None, template, opset=opset)


def test_names_of_inputs_outputs_initializers_and_nodes(tmp_path):
    a = axon_fn.input("tokens", shape=(None, 4))
    b = axon_fn.input("features", shape=(None, 3))
    encoded = axon_fn.namespace("encoder", a >> nn.embedding(9, 3) >> nn.flatten())
    h = nn.concatenate(encoded, b >> nn.batch_norm()) >> nn.dense(2)
    model = axon_fn.container({"logits": h, "aux": (b >> nn.dense(1, name="head"), b)})
    specs = {"tokens": ((None, 4), "int9"), "features": ((None, 3), "float")}
    template = _inputs(specs, 2, 0)
    state = _randomize(axon_fn.init(model, template))
    head = state.trainable.pop("head")  # frozen parameters export as initializers too
    state = state.replace(frozen={"head": head})
    path = tmp_path / "model.onnx"
    proto = export(model, state, path, template)
    loaded = onnx.load(str(path))
    assert loaded == proto
    assert proto.producer_name == "axon_fn" and proto.producer_version == axon_fn.__version__
    inputs = {i.name: i for i in proto.graph.input}
    assert sorted(inputs) == ["features", "tokens"]
    assert inputs["tokens"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    dims = inputs["features"].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 3
    assert sorted(o.name for o in proto.graph.output) == ["aux.0", "aux.1", "logits"]
    assert sorted(t.name for t in proto.graph.initializer if "/" not in t.name) == [
        "batch_norm_0.beta", "batch_norm_0.gamma", "batch_norm_0.mean", "batch_norm_0.var",
        "dense_0.bias", "dense_0.kernel", "encoder.embedding_0.kernel", "head.bias",
        "head.kernel"]
    assert {n.name.split("/")[0] for n in proto.graph.node} >= {
        "encoder.embedding_0", "batch_norm_0", "dense_0", "head"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (2, 7):
        _compare(model, state, session, _inputs(specs, batch, batch))


def test_path_none_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, specs = _on((3,), nn.dense(2))()
    template = _inputs(specs, 2, 0)
    proto = export(model, axon_fn.init(model, template), None, template)
    assert isinstance(proto, onnx.ModelProto) and list(tmp_path.iterdir()) == []


def test_static_batch():
    model, specs = _on((4, 3), nn.lstm(2), nn.flatten())()
    template = _inputs(specs, 3, 0)
    state = _randomize(axon_fn.init(model, template))
    proto = export(model, state, None, template, dynamic_batch=False)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [3, 4, 3]
    _compare(model, state, _session(proto), template)


@pytest.mark.parametrize("fn", [lambda v: ops.concatenate([v, v[:1]], axis=0),
                                lambda v: v * 2.0 if v.shape[0] > 3 else v],
                         ids=["batch_plus_one", "branch_on_batch"])
def test_batch_dependent_model_needs_static_batch(fn):
    x = axon_fn.input("x", shape=(None, 3))
    model = x >> axon_fn.nx(fn)
    template = np.ones((3, 3), np.float32)
    with pytest.raises(OnnxExportError, match=r"nx_0.*dynamic_batch=False"):
        export(model, {}, None, template)
    proto = export(model, {}, None, template, dynamic_batch=False)
    _compare(model, {}, _session(proto), {"x": template})


def test_batch_sized_constants():
    # a mean over the batch divides by the batch size; a zeros((batch, n)) constant repeats
    x = axon_fn.input("x", shape=(None, 2, 3))
    centered = x >> axon_fn.nx(lambda v: v - ops.mean(v, axis=(0, 1)))
    model = centered >> axon_fn.nx(lambda v: ops.concatenate(
        [ops.reshape(v, shape=(-1, 6)), np.zeros((v.shape[0], 2), np.float32)], axis=1))
    proto = _roundtrip(model, {"x": ((None, 2, 3), "float")})
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_custom_layer_and_nx():
    x = axon_fn.input("x", shape=(None, 4, 3))
    scale = axon_fn.param("scale", (3,), initializer=axon_fn.initializers.ones())

    def custom(v, s):
        w = ops.einsum("bti,i->bt", v, s)
        picked = ops.take_along_axis(v, ops.argmax(v, axis=-1)[..., None], axis=-1)
        return ops.concatenate([ops.cumsum(w, axis=1), ops.max(picked, axis=-1),
                                ops.one_hot(ops.argmin(w, axis=1), 4)], axis=-1)

    def indexing(v):
        flat = v[:, ::-1, None, 1:]
        gathered = v[:, [2, 0], -1] + v[:, [0, 1], [2, 2]] - ops.flip(v, axis=1)[:, :2, 0]
        rounded = ops.round(v[:, 1, :2], decimals=1)
        return ops.sum(flat, axis=(1, 2)) * ops.clip(rounded, -0.5, None) \
            + ops.mean(ops.abs(gathered), axis=1, keepdims=True) \
            + ops.where(ops.isfinite(v[:, 0, 1:]), ops.expm1(v[:, 0, 1:]), 0.0) \
            + ops.log1p(ops.abs(v[:, 3, :2])) + ops.pad(v[:, 2, :1], ((0, 0), (1, 0)))

    y = axon_fn.layer(custom, [x, scale], name="mine")
    model = axon_fn.container({"custom": y, "nx": x >> axon_fn.nx(indexing)})
    _roundtrip(model, {"x": ((None, 4, 3), "float")})


_BOUNDED = lambda v: ops.tanh(v) * 0.9  # noqa: E731 - inside (-1, 1) for arcsin and friends

NUMPY_FUNCTIONS = {
    "tan": lambda v: ops.tan(_BOUNDED(v)),
    "arcsin": lambda v: ops.arcsin(_BOUNDED(v)),
    "arccos": lambda v: ops.arccos(_BOUNDED(v)),
    "arctan": ops.arctan,
    "sinh": ops.sinh,
    "cosh": ops.cosh,
    "arcsinh": ops.arcsinh,
    "arccosh": lambda v: ops.arccosh(1.5 + v * v),
    "arctanh": lambda v: ops.arctanh(_BOUNDED(v)),
    "floor_divide": lambda v: ops.floor_divide(v * 4, 1.5) + ops.astype(
        ops.floor_divide(ops.astype(v * 5, np.int64), -3), np.float32),
    "mod": lambda v: ops.mod(v * 4, -1.5) + ops.astype(
        ops.mod(ops.astype(v * 5, np.int64), 3), np.float32),
    "arctan2": lambda v: ops.arctan2(v, v[:, ::-1] * ops.astype(v[:, :1] > 0, np.float32)),
    "argsort": lambda v: ops.astype(ops.argsort(ops.round(v, 1), axis=1), np.float32),
    "searchsorted": lambda v: ops.astype(ops.searchsorted(
        np.asarray([-1.0, -0.2, 0.0, 0.5, 1.0], np.float32), v, side="right"), np.float32)
    + ops.astype(ops.searchsorted(np.asarray([-1.0, 0.0, 0.5], np.float32), ops.round(v, 0)),
                 np.float32),
}


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCTIONS))
def test_numpy_functions_export(name):
    x = axon_fn.input("x", shape=(None, 6))
    _roundtrip(x >> axon_fn.nx(NUMPY_FUNCTIONS[name]), {"x": ((None, 6), "float")})


def test_indexing():
    x = axon_fn.input("x", shape=(None, 3, 4, 5))
    index = {
        "basic": lambda v: v[:, 1:, ::-2, -1],
        "new_axes": lambda v: v[:, None, 0, ..., None, 1:4],
        "adjacent": lambda v: v[:, [0, 2, -1], [1, 1, 3]],
        "apart": lambda v: v[:, [0, 2], :, [1, -3]],
        "with_new_axis": lambda v: v[:, None, [0, 1]],
        "mask": lambda v: v[:, np.array([True, False, True])],
        "along_broadcast": lambda v: ops.take_along_axis(
            v, np.array([[[[4], [0], [2], [1]]]]), axis=-1),
        "take_flat": lambda v: ops.take(v[0], np.array([[3, 7], [59, 0]])),
    }
    model = axon_fn.container({k: x >> axon_fn.nx(fn, name=k) for k, fn in index.items()})
    _roundtrip(model, {"x": ((None, 3, 4, 5), "float")})


# Errors ------------------------------------------------------------------------------------------


def test_unsupported_primitives_are_all_named():
    x = axon_fn.input("x", shape=(None, 3))
    h = x >> axon_fn.nx(lambda v: ops.relu_grad(v, v), name="grads")
    h = axon_fn.layer(lambda v: ops.softmax_grad(v, v, axis=-1), [h], op_name="mine")
    model = h >> axon_fn.nx(stageable(lambda v: v * 2.0), name="host") >> nn.relu()
    with pytest.raises(OnnxExportError) as info:
        export(model, {}, None, np.ones((2, 3), np.float32))
    message = str(info.value)
    assert "3 primitive call(s)" in message
    for part in ("'grads' (op nx)", "'relu_grad'", "'mine_0' (op mine)", "'softmax_grad'",
                 "'host' (op nx)", "host function"):
        assert part in message


def test_value_dependent_layer_is_refused():
    x = axon_fn.input("x", shape=(None, 3))
    model = x >> axon_fn.nx(lambda v: v if float(v.sum()) > 0 else -v)
    with pytest.raises(OnnxExportError, match="ops.where"):
        export(model, {}, None, np.ones((2, 3), np.float32))
