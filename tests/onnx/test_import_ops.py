"""Every ONNX op the importer supports, one node at a time, against onnxruntime.

Each case is a one-node ONNX model built with ``onnx.helper``: onnxruntime runs it, and the
imported axon_fn model must give the same outputs on the same inputs. Inputs wrapped in
``Init`` are initializers (weights, or constants the importer folds); the others are fed at
run time. A completeness test fails when a supported op has no case here or in the recurrent
tests.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import axon_fn  # noqa: E402
from axon_fn import onnx as axon_onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)


class Init:
    """An input given as an initializer."""

    def __init__(self, array):
        self.array = np.asarray(array)


def f32(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


def i64(*values):
    return np.asarray(values, np.int64)


def single_node_model(op, inputs, attrs=None, *, opset=17, n_outputs=1, dynamic_batch=False):
    """A model of one ``op`` node; returns (model proto, feeds)."""
    names, feeds, graph_inputs, initializers = [], {}, [], []
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(value, Init):
            initializers.append(numpy_helper.from_array(value.array, name))
            continue
        value = np.asarray(value)
        shape = list(value.shape)
        if dynamic_batch and shape:
            shape[0] = "batch"
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        graph_inputs.append(helper.make_tensor_value_info(name, elem, shape))
        feeds[name] = value
    outputs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outputs, name=f"the_{op.lower()}", **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset < 21 else 10)
    return model, feeds


def run_both(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    imported, state = axon_onnx.import_model(model)
    used = axon_fn.get_inputs(imported)  # a fully folded graph reads no input
    got = axon_fn.predict(imported, state, {k: v for k, v in feeds.items() if k in used})
    got = list(got.values()) if isinstance(got, dict) else [got]
    return expected, got


X = f32(2, 3, 4)
IMG = f32(2, 3, 7, 6)
POS = f32(2, 3, 4, low=0.1, high=3.0)

# (id, op, inputs, attrs, opset, n_outputs)
CASES = [
    # elementwise arithmetic and comparisons
    ("add", "Add", [X, f32(4)], {}, 17, 1),
    ("sub", "Sub", [X, Init(f32(3, 1))], {}, 17, 1),
    ("mul", "Mul", [X, Init(f32(1))], {}, 17, 1),
    ("div", "Div", [X, POS], {}, 17, 1),
    ("div_int", "Div", [i64(7, -7, 9), Init(i64(2, 2, -4))], {}, 17, 1),
    ("pow", "Pow", [POS, Init(np.float32(2.5))], {}, 17, 1),
    ("pow_int_exponent", "Pow", [X, Init(i64(3))], {}, 17, 1),
    ("mod", "Mod", [i64(7, -7, 9), Init(i64(3, 3, -4))], {}, 17, 1),
    ("fmod", "Mod", [X, Init(np.float32(0.7))], {"fmod": 1}, 17, 1),
    ("sum", "Sum", [X, f32(4), f32(3, 1)], {}, 17, 1),
    ("max", "Max", [X, f32(4)], {}, 17, 1),
    ("min", "Min", [X, f32(3, 4)], {}, 17, 1),
    ("mean", "Mean", [X, f32(2, 3, 4)], {}, 17, 1),
    ("neg", "Neg", [X], {}, 17, 1),
    ("abs", "Abs", [X], {}, 17, 1),
    ("exp", "Exp", [X], {}, 17, 1),
    ("log", "Log", [POS], {}, 17, 1),
    ("sqrt", "Sqrt", [POS], {}, 17, 1),
    ("reciprocal", "Reciprocal", [POS], {}, 17, 1),
    ("floor", "Floor", [X], {}, 17, 1),
    ("ceil", "Ceil", [X], {}, 17, 1),
    ("round", "Round", [np.asarray([0.5, 1.5, 2.5, -0.5, 1.2], np.float32)], {}, 17, 1),
    ("sign", "Sign", [X], {}, 17, 1),
    ("sin", "Sin", [X], {}, 17, 1),
    ("cos", "Cos", [X], {}, 17, 1),
    ("tan", "Tan", [f32(3, 4, low=-1, high=1)], {}, 17, 1),
    ("tanh", "Tanh", [X], {}, 17, 1),
    ("sigmoid", "Sigmoid", [X], {}, 17, 1),
    ("relu", "Relu", [X], {}, 17, 1),
    ("erf", "Erf", [X], {}, 17, 1),
    ("not", "Not", [X > 0], {}, 17, 1),
    ("and", "And", [X > 0, X < 1], {}, 17, 1),
    ("or", "Or", [X > 1, X < -1], {}, 17, 1),
    ("xor", "Xor", [X > 0, X < 1], {}, 17, 1),
    ("equal", "Equal", [i64(1, 2, 3), Init(i64(1, 0, 3))], {}, 17, 1),
    ("greater", "Greater", [X, f32(4)], {}, 17, 1),
    ("greater_equal", "GreaterOrEqual", [X, Init(np.zeros(4, np.float32))], {}, 17, 1),
    ("less", "Less", [X, f32(4)], {}, 17, 1),
    ("less_equal", "LessOrEqual", [X, Init(np.zeros(1, np.float32))], {}, 17, 1),
    ("isnan", "IsNaN", [np.asarray([1.0, np.nan, np.inf], np.float32)], {}, 17, 1),
    ("isinf", "IsInf", [np.asarray([1.0, np.nan, np.inf, -np.inf], np.float32)], {}, 17, 1),
    ("isinf_positive", "IsInf", [np.asarray([1.0, np.inf, -np.inf], np.float32)],
     {"detect_negative": 0}, 17, 1),
    ("where", "Where", [X > 0, X, f32(4)], {}, 17, 1),
    ("clip", "Clip", [X, Init(np.float32(-0.5)), Init(np.float32(1.0))], {}, 17, 1),
    ("clip_max_only", "Clip", [X, None, Init(np.float32(0.3))], {}, 17, 1),
    ("clip_opset9", "Clip", [X], {"min": -0.2, "max": 0.4}, 9, 1),
    ("cast_int", "Cast", [X * 3], {"to": TensorProto.INT64}, 17, 1),
    ("cast_bool_float", "Cast", [X > 0], {"to": TensorProto.FLOAT}, 17, 1),
    ("cast_like", "CastLike", [X * 3, Init(i64(1))], {}, 17, 1),
    # activations
    ("elu", "Elu", [X], {"alpha": 0.7}, 17, 1),
    ("celu", "Celu", [X], {"alpha": 1.3}, 17, 1),
    ("selu", "Selu", [X], {}, 17, 1),
    ("leaky_relu", "LeakyRelu", [X], {"alpha": 0.1}, 17, 1),
    ("thresholded_relu", "ThresholdedRelu", [X], {"alpha": 0.5}, 17, 1),
    ("hard_sigmoid", "HardSigmoid", [X * 4], {"alpha": 0.3, "beta": 0.4}, 17, 1),
    ("hard_swish", "HardSwish", [X * 4], {}, 17, 1),
    ("softplus", "Softplus", [X * 10], {}, 17, 1),
    ("softsign", "Softsign", [X], {}, 17, 1),
    ("mish", "Mish", [X], {}, 18, 1),
    ("gelu", "Gelu", [X], {}, 20, 1),
    ("gelu_tanh", "Gelu", [X], {"approximate": "tanh"}, 20, 1),
    ("prelu", "PRelu", [IMG, Init(f32(3, 1, 1))], {}, 17, 1),
    ("softmax", "Softmax", [X], {"axis": 1}, 17, 1),
    ("softmax_opset11", "Softmax", [X], {"axis": 1}, 11, 1),
    ("log_softmax", "LogSoftmax", [X], {}, 17, 1),
    ("log_softmax_opset9", "LogSoftmax", [X], {}, 9, 1),
    ("hardmax", "Hardmax", [X], {"axis": 1}, 17, 1),
    # reductions
    ("reduce_sum", "ReduceSum", [X, Init(i64(1))], {"keepdims": 0}, 17, 1),
    ("reduce_sum_all", "ReduceSum", [X], {}, 17, 1),
    ("reduce_sum_opset11", "ReduceSum", [X], {"axes": [0, 2]}, 11, 1),
    ("reduce_mean", "ReduceMean", [X], {"axes": [-1]}, 17, 1),
    ("reduce_mean_opset18", "ReduceMean", [X, Init(i64(0, 2))], {"keepdims": 0}, 18, 1),
    ("reduce_max", "ReduceMax", [X], {"axes": [1], "keepdims": 0}, 17, 1),
    ("reduce_min", "ReduceMin", [X, Init(i64(2))], {}, 18, 1),
    ("reduce_prod", "ReduceProd", [X], {"axes": [2]}, 17, 1),
    ("reduce_l1", "ReduceL1", [X], {"axes": [2]}, 17, 1),
    ("reduce_l2", "ReduceL2", [X], {"axes": [1]}, 17, 1),
    ("reduce_sum_square", "ReduceSumSquare", [X], {"axes": [1]}, 17, 1),
    ("reduce_log_sum", "ReduceLogSum", [POS], {"axes": [1]}, 17, 1),
    ("reduce_log_sum_exp", "ReduceLogSumExp", [X], {"axes": [1]}, 17, 1),
    ("argmax", "ArgMax", [X], {"axis": 1}, 17, 1),
    ("argmin_last", "ArgMin", [np.asarray([[1, 0, 0, 2]], np.float32)],
     {"axis": 1, "keepdims": 0, "select_last_index": 1}, 17, 1),
    ("cumsum", "CumSum", [X, Init(i64(1))], {}, 17, 1),
    ("cumsum_exclusive_reverse", "CumSum", [X, Init(i64(2))], {"exclusive": 1, "reverse": 1},
     17, 1),
    # products
    ("matmul", "MatMul", [X, f32(4, 5)], {}, 17, 1),
    ("matmul_weight", "MatMul", [X, Init(f32(4, 5))], {}, 17, 1),
    ("gemm", "Gemm", [f32(3, 4), Init(f32(5, 4)), Init(f32(5))], {"transB": 1}, 17, 1),
    ("gemm_general", "Gemm", [f32(4, 3), f32(4, 5), Init(f32(3, 5))],
     {"transA": 1, "alpha": 0.5, "beta": 2.0}, 17, 1),
    ("einsum", "Einsum", [f32(2, 3, 4), f32(2, 4, 5)], {"equation": "bij,bjk->bik"}, 17, 1),
    # convolutions
    ("conv", "Conv", [IMG, Init(f32(4, 3, 3, 3)), Init(f32(4))], {"pads": [1, 0, 2, 1]}, 17, 1),
    ("conv_strided_dilated", "Conv", [IMG, Init(f32(4, 3, 2, 2))],
     {"strides": [2, 1], "dilations": [2, 2]}, 17, 1),
    ("conv_groups", "Conv", [f32(2, 4, 6, 6), Init(f32(6, 2, 3, 3))], {"group": 2}, 17, 1),
    ("conv_same_upper", "Conv", [IMG, Init(f32(2, 3, 4, 3))],
     {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, 17, 1),
    ("conv_same_lower", "Conv", [IMG, Init(f32(2, 3, 4, 3))], {"auto_pad": "SAME_LOWER"}, 17, 1),
    ("conv_1d", "Conv", [f32(2, 3, 9), Init(f32(4, 3, 3))], {"pads": [1, 1]}, 17, 1),
    ("conv_3d", "Conv", [f32(1, 2, 4, 5, 4), Init(f32(3, 2, 2, 3, 2))], {}, 17, 1),
    ("conv_runtime_weight", "Conv", [IMG, f32(2, 3, 3, 3)], {}, 17, 1),
    ("conv_transpose", "ConvTranspose", [IMG, Init(f32(3, 2, 3, 3)), Init(f32(2))],
     {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 0]}, 17, 1),
    ("conv_transpose_groups_dilated", "ConvTranspose", [f32(1, 4, 5, 5), Init(f32(4, 3, 2, 2))],
     {"group": 2, "dilations": [2, 1]}, 17, 1),
    ("conv_transpose_output_shape", "ConvTranspose", [IMG, Init(f32(3, 2, 3, 3))],
     {"strides": [2, 2], "output_shape": [15, 12]}, 17, 1),
    ("conv_transpose_1d", "ConvTranspose", [f32(2, 3, 5), Init(f32(3, 4, 3))],
     {"strides": [3]}, 17, 1),
    # normalizations
    ("batch_norm", "BatchNormalization",
     [IMG, Init(f32(3)), Init(f32(3)), Init(f32(3)), Init(f32(3, low=0.5, high=2))],
     {"epsilon": 1e-3}, 17, 1),
    ("batch_norm_runtime", "BatchNormalization",
     [IMG, f32(3), f32(3), f32(3), f32(3, low=0.5, high=2)], {}, 17, 1),
    ("layer_norm", "LayerNormalization", [X, Init(f32(4)), Init(f32(4))], {}, 17, 1),
    ("layer_norm_two_axes", "LayerNormalization", [X, Init(f32(3, 4))],
     {"axis": 1, "epsilon": 1e-3}, 17, 1),
    ("instance_norm", "InstanceNormalization", [IMG, Init(f32(3)), Init(f32(3))], {}, 17, 1),
    ("group_norm", "GroupNormalization", [f32(2, 4, 3, 3), Init(f32(4)), Init(f32(4))],
     {"num_groups": 2}, 21, 1),
    ("group_norm_opset18", "GroupNormalization", [f32(2, 4, 3, 3), Init(f32(2)), Init(f32(2))],
     {"num_groups": 2}, 18, 1),
    # pooling
    ("max_pool", "MaxPool", [IMG], {"kernel_shape": [2, 2]}, 17, 1),
    ("max_pool_pads_strides", "MaxPool", [IMG],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 0]}, 17, 1),
    ("max_pool_ceil", "MaxPool", [IMG], {"kernel_shape": [2, 2], "ceil_mode": 1}, 17, 1),
    ("max_pool_same", "MaxPool", [IMG],
     {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, 17, 1),
    ("max_pool_1d", "MaxPool", [f32(2, 3, 9)], {"kernel_shape": [3], "strides": [2]}, 17, 1),
    ("avg_pool", "AveragePool", [IMG], {"kernel_shape": [2, 2], "strides": [2, 2]}, 17, 1),
    ("avg_pool_pads_include", "AveragePool", [IMG],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, 17, 1),
    ("avg_pool_pads_exclude", "AveragePool", [IMG],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, 17, 1),
    ("avg_pool_ceil", "AveragePool", [IMG],
     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, 17, 1),
    ("avg_pool_ceil_include", "AveragePool", [IMG],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
      "count_include_pad": 1}, 19, 1),
    ("lp_pool", "LpPool", [IMG], {"kernel_shape": [2, 2], "p": 2}, 17, 1),
    ("global_avg_pool", "GlobalAveragePool", [IMG], {}, 17, 1),
    ("global_max_pool", "GlobalMaxPool", [IMG], {}, 17, 1),
    ("global_lp_pool", "GlobalLpPool", [IMG], {"p": 3}, 17, 1),
    # shapes
    ("reshape", "Reshape", [X, Init(i64(0, -1, 2))], {}, 17, 1),
    ("reshape_allowzero", "Reshape", [X, Init(i64(4, 6))], {"allowzero": 1}, 17, 1),
    ("flatten", "Flatten", [IMG], {"axis": 2}, 17, 1),
    ("flatten_negative", "Flatten", [IMG], {"axis": -1}, 17, 1),
    ("transpose", "Transpose", [X], {"perm": [2, 0, 1]}, 17, 1),
    ("transpose_default", "Transpose", [X], {}, 17, 1),
    ("squeeze", "Squeeze", [f32(2, 1, 3, 1), Init(i64(-1))], {}, 17, 1),
    ("squeeze_all", "Squeeze", [f32(2, 1, 3, 1)], {}, 17, 1),
    ("squeeze_opset11", "Squeeze", [f32(2, 1, 3, 1)], {"axes": [1]}, 11, 1),
    ("unsqueeze", "Unsqueeze", [X, Init(i64(0, -1))], {}, 17, 1),
    ("unsqueeze_opset11", "Unsqueeze", [X], {"axes": [1]}, 11, 1),
    ("concat", "Concat", [X, f32(2, 1, 4), Init(f32(2, 2, 4))], {"axis": 1}, 17, 1),
    ("split", "Split", [X, Init(i64(1, 3))], {"axis": 2}, 17, 2),
    ("split_equal", "Split", [f32(2, 6)], {"axis": 1}, 17, 3),
    ("split_opset11", "Split", [f32(2, 6)], {"axis": 1, "split": [2, 4]}, 11, 2),
    ("split_num_outputs", "Split", [f32(2, 7)], {"axis": 1, "num_outputs": 3}, 18, 3),
    ("slice", "Slice", [X, Init(i64(0, 1)), Init(i64(2, 100)), Init(i64(1, 2))], {}, 17, 1),
    ("slice_steps", "Slice", [X, Init(i64(-1, 3)), Init(i64(-100, 0)), Init(i64(1, 2)),
                              Init(i64(-1, -2))], {}, 17, 1),
    ("slice_opset9", "Slice", [X], {"starts": [1], "ends": [3], "axes": [2]}, 9, 1),
    ("gather", "Gather", [X, Init(i64(2, 0, -1))], {"axis": 2}, 17, 1),
    ("gather_scalar", "Gather", [X, Init(np.int64(1))], {"axis": 1}, 17, 1),
    ("gather_runtime", "Gather", [Init(f32(10, 3)), np.asarray([[1, 9], [0, 4]], np.int64)],
     {}, 17, 1),
    ("gather_elements", "GatherElements",
     [X, Init(np.asarray(RNG.integers(0, 3, (2, 2, 4)), np.int64))], {"axis": 1}, 17, 1),
    ("shape", "Shape", [X], {}, 17, 1),
    ("shape_slice", "Shape", [X], {"start": 1, "end": -1}, 17, 1),
    ("size", "Size", [X], {}, 17, 1),
    ("shape_folded", "Shape", [Init(X)], {}, 17, 1),
    ("expand", "Expand", [f32(3, 1), Init(i64(2, 1, 4))], {}, 17, 1),
    ("tile", "Tile", [X, Init(i64(1, 2, 3))], {}, 17, 1),
    ("pad", "Pad", [X, Init(i64(0, 1, 2, 0, 0, 1)), Init(np.float32(0.5))], {}, 17, 1),
    ("pad_reflect", "Pad", [X, Init(i64(0, 1, 2, 0, 1, 1))], {"mode": "reflect"}, 17, 1),
    ("pad_edge", "Pad", [X, Init(i64(0, 0, 1, 0, 2, 2))], {"mode": "edge"}, 17, 1),
    ("pad_wrap", "Pad", [X, Init(i64(0, 1, 0, 0, 2, 1))], {"mode": "wrap"}, 19, 1),
    ("pad_negative", "Pad", [X, Init(i64(0, -1, 1, 0, 0, -2))], {}, 17, 1),
    ("pad_axes", "Pad", [X, Init(i64(1, 2)), None, Init(i64(-1))], {}, 18, 1),
    ("pad_opset9", "Pad", [X], {"pads": [0, 1, 0, 0, 1, 0], "value": 2.0}, 9, 1),
    ("trilu", "Trilu", [f32(3, 4)], {}, 17, 1),
    ("trilu_lower_k", "Trilu", [f32(2, 4, 4), Init(i64(-1))], {"upper": 0}, 17, 1),
    ("one_hot", "OneHot", [np.asarray([0, 2, -1], np.int64), Init(i64(3)),
                           Init(np.asarray([0.0, 5.0], np.float32))], {}, 17, 1),
    ("identity", "Identity", [X], {}, 17, 1),
    ("dropout", "Dropout", [X], {}, 17, 1),
    ("range", "Range", [Init(np.float32(1.0)), Init(np.float32(4.0)), Init(np.float32(0.5))],
     {}, 17, 1),
    ("constant_of_shape", "ConstantOfShape", [Init(i64(2, 3))],
     {"value": numpy_helper.from_array(np.asarray([1.5], np.float32))}, 17, 1),
    ("constant", "Constant", [], {"value": numpy_helper.from_array(f32(2, 2))}, 17, 1),
    ("constant_floats", "Constant", [], {"value_floats": [1.0, 2.5]}, 17, 1),
    ("constant_int", "Constant", [], {"value_int": 7}, 17, 1),
    # resizing
    ("resize_nearest", "Resize", [IMG, None, Init(np.asarray([1, 1, 2, 2], np.float32))],
     {"mode": "nearest"}, 17, 1),
    ("resize_nearest_asymmetric_floor", "Resize",
     [IMG, None, Init(np.asarray([1, 1, 1.5, 2], np.float32))],
     {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
      "nearest_mode": "floor"}, 17, 1),
    ("resize_linear", "Resize", [IMG, None, Init(np.asarray([1, 1, 2, 1.5], np.float32))],
     {"mode": "linear"}, 17, 1),
    ("resize_linear_align_corners", "Resize",
     [IMG, None, None, Init(i64(2, 3, 11, 5))],
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, 17, 1),
    ("resize_linear_pytorch", "Resize", [IMG, None, Init(np.asarray([1, 1, 0.5, 2], np.float32))],
     {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, 17, 1),
    ("resize_opset10", "Resize", [IMG, Init(np.asarray([1, 1, 2, 2], np.float32))],
     {"mode": "nearest"}, 10, 1),
    ("upsample", "Upsample", [IMG, Init(np.asarray([1, 1, 2, 3], np.float32))],
     {"mode": "nearest"}, 9, 1),
]


# run with a symbolic batch dimension, so that shape values are computed at run time
DYNAMIC = {"shape", "shape_slice", "size", "reshape", "flatten", "conv_same_lower", "max_pool_ceil",
           "avg_pool_ceil_include", "resize_linear", "expand", "squeeze_all"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_single_node_matches_onnxruntime(case):
    case_id, op, inputs, attrs, opset, n_outputs = case
    model, feeds = single_node_model(op, inputs, attrs, opset=opset, n_outputs=n_outputs,
                                     dynamic_batch=case_id in DYNAMIC)
    expected, got = run_both(model, feeds)
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        have = np.asarray(have)
        assert have.shape == want.shape
        assert have.dtype == want.dtype, (have.dtype, want.dtype)
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_dynamic_batch_shape_subgraph_stays_in_the_model():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape on a dynamic batch, the way the
    exporters flatten: not foldable at import, so it computes from the array's shape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.int64(0), "zero"),
             numpy_helper.from_array(i64(0), "axes"),
             numpy_helper.from_array(i64(-1), "minus_one")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 12])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    imported, state = axon_onnx.import_model(model)
    for batch in (1, 5):
        x = f32(batch, 3, 4)
        np.testing.assert_array_equal(axon_fn.predict(imported, state, x), x.reshape(batch, 12))
    assert imported.op == "Reshape"
    fixed, state = axon_onnx.import_model(model, dim_values={"n": 2})
    assert fixed.op == "Reshape" and fixed.inputs[0].op == "input"  # the subgraph folded


def test_every_supported_op_has_a_case():
    covered = {case[1] for case in CASES} | {"LSTM", "GRU", "RNN"}
    missing = sorted(set(axon_onnx.supported_ops()) - covered)
    assert not missing, f"supported ONNX ops without a test case: {missing}"
