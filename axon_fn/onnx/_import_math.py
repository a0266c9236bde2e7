"""ONNX importers of the elementwise ops, activations, reductions and matrix products
(private).

Each op is written once with ``axon_fn.ops``, so the same function folds constants at import
and runs (differentiably) in the imported model.
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..nn import dense
from ._import_registry import handles
from ._import_shape import _axes

__all__ = []


def _is_int(x):
    return np.dtype(x.dtype).kind in "iub"


def _unary(fn):
    def handler(ctx):
        return ctx.apply(fn, ctx.inputs[:1], **_float_attrs(ctx))
    return handler


def _float_attrs(ctx):
    return {k: float(v) for k, v in ctx.attrs.items() if isinstance(v, float)}


# Elementwise arithmetic -------------------------------------------------------------------------


def _same_dtype(a, b):
    """ONNX arithmetic keeps its operands' (equal) dtype; casting the second operand keeps a
    float32 model float32 when an exporter typed a constant differently."""
    if hasattr(a, "dtype") and hasattr(b, "dtype") and a.dtype != b.dtype and not _is_int(a):
        b = ops.astype(b, dtype=a.dtype)
    return a, b


def _add(a, b):
    return ops.add(*_same_dtype(a, b))


def _sub(a, b):
    return ops.subtract(*_same_dtype(a, b))


def _mul(a, b):
    return ops.multiply(*_same_dtype(a, b))


def _div(a, b):
    if _is_int(a) and _is_int(b):  # integer division truncates toward zero in ONNX
        a, b = np.asarray(a), np.asarray(b)
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return ops.divide(*_same_dtype(a, b))


def _pow(x, y):
    return ops.power(x, ops.astype(y, dtype=x.dtype))


def _mod(a, b, *, fmod=0):
    a, b = np.asarray(a), np.asarray(b)
    return np.fmod(a, b) if fmod else np.mod(a, b)


for _op, _fn in (("Add", _add), ("Sub", _sub), ("Mul", _mul), ("Div", _div), ("Pow", _pow)):
    handles(_op)(lambda ctx, fn=_fn: ctx.apply(fn, ctx.inputs[:2]))


@handles("Mod")
def _mod_op(ctx):
    return ctx.apply(_mod, ctx.inputs[:2], fmod=int(ctx.attr("fmod", 0)))


def _variadic(fn):
    def reduce(*arrays):
        out = arrays[0]
        for a in arrays[1:]:
            out = fn(out, a)
        return out
    return reduce


def _mean(*arrays):
    return ops.divide(_variadic(_add)(*arrays), np.asarray(len(arrays), arrays[0].dtype))


@handles("Sum")
def _sum_op(ctx):
    return ctx.apply(_variadic(_add), ctx.inputs)


@handles("Max")
def _max_op(ctx):
    return ctx.apply(_variadic(ops.maximum), ctx.inputs)


@handles("Min")
def _min_op(ctx):
    return ctx.apply(_variadic(ops.minimum), ctx.inputs)


@handles("Mean")
def _mean_op(ctx):
    return ctx.apply(_mean, ctx.inputs)


_UNARY = {
    "Neg": ops.negative, "Abs": ops.abs, "Exp": ops.exp, "Log": ops.log, "Sqrt": ops.sqrt,
    "Floor": ops.floor, "Ceil": ops.ceil, "Sign": ops.sign, "Sin": ops.sin, "Cos": ops.cos,
    "Tanh": ops.tanh, "Sigmoid": ops.sigmoid, "Relu": ops.relu, "Erf": ops.erf,
    "Not": ops.logical_not, "IsNaN": ops.isnan,
    "Reciprocal": lambda x: ops.divide(np.asarray(1, x.dtype), x),
    "Round": lambda x: ops.round(x),  # half to even, as ONNX
    "Tan": lambda x: ops.divide(ops.sin(x), ops.cos(x)),
}

def _isinf(x, *, negative, positive):
    infinite = ops.logical_and(ops.logical_not(ops.isfinite(x)), ops.logical_not(ops.isnan(x)))
    sign = (ops.less(x, 0) if negative else False) | (ops.greater(x, 0) if positive else False)
    return ops.logical_and(infinite, sign)


@handles("IsInf")
def _isinf_op(ctx):
    return ctx.apply(_isinf, ctx.inputs[:1], negative=bool(ctx.attr("detect_negative", 1)),
                     positive=bool(ctx.attr("detect_positive", 1)))


for _op, _fn in _UNARY.items():
    handles(_op)(lambda ctx, fn=_fn: ctx.apply(fn, ctx.inputs[:1]))

_BINARY = {
    "And": ops.logical_and, "Or": ops.logical_or, "Xor": ops.logical_xor,
    "Equal": ops.equal, "Greater": ops.greater, "GreaterOrEqual": ops.greater_equal,
    "Less": ops.less, "LessOrEqual": ops.less_equal,
}

for _op, _fn in _BINARY.items():
    handles(_op)(lambda ctx, fn=_fn: ctx.apply(fn, ctx.inputs[:2]))


@handles("Where")
def _where_op(ctx):
    return ctx.apply(lambda c, x, y: ops.where(c, *_same_dtype(x, y)), ctx.inputs[:3])


def _clip(x, lo=None, hi=None):
    if lo is not None:
        x = ops.maximum(x, ops.astype(lo, dtype=x.dtype))
    if hi is not None:
        x = ops.minimum(x, ops.astype(hi, dtype=x.dtype))
    return x


@handles("Clip", settings=(1, 2))
def _clip_op(ctx):
    if ctx.opset < 11:  # bounds were attributes
        lo, hi = ctx.attr("min", -np.inf), ctx.attr("max", np.inf)
        return ctx.apply(lambda x: _clip(x, np.asarray(lo), np.asarray(hi)), ctx.inputs[:1])
    return ctx.apply(_clip, [ctx.input(0), ctx.input(1), ctx.input(2)])


def _dtype_of(onnx_type):
    from onnx import helper  # the importer runs only with onnx installed
    return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def _cast(x, *, dtype):
    if np.dtype(dtype).kind in "iub" and hasattr(x, "dtype") and np.dtype(x.dtype).kind == "f":
        x = ops.where(ops.isnan(x), 0, x)  # numpy warns on NaN casts; ONNX leaves them undefined
        x = ops.sign(x) * ops.floor(ops.abs(x))  # truncation toward zero, as C and ONNX
    return ops.astype(x, dtype=dtype)


@handles("Cast")
def _cast_op(ctx):
    return ctx.apply(_cast, ctx.inputs[:1], dtype=_dtype_of(ctx.attr("to")).name)


@handles("CastLike")
def _cast_like_op(ctx):
    dtype = ctx.input(1).dtype
    if dtype is None:
        return ctx.apply(lambda x, like: _cast(x, dtype=like.dtype), ctx.inputs[:2])
    return ctx.apply(_cast, ctx.inputs[:1], dtype=dtype.name)


# Activations ----------------------------------------------------------------------------------------


def _softplus(x):
    return ops.relu(x) + ops.log1p(ops.exp(-ops.abs(x)))


def _elu(x, *, alpha=1.0):
    return ops.where(x > 0, x, alpha * ops.expm1(ops.minimum(x, 0)))


_ACTIVATIONS = {
    "Elu": _elu,
    "Celu": lambda x, *, alpha=1.0: ops.maximum(x, 0) + ops.minimum(
        0, alpha * ops.expm1(ops.minimum(x, 0) / alpha)),
    "Selu": lambda x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875:
        gamma * _elu(x, alpha=alpha),
    "LeakyRelu": lambda x, *, alpha=0.01: ops.where(x >= 0, x, alpha * x),
    "ThresholdedRelu": lambda x, *, alpha=1.0: ops.where(x > alpha, x, 0 * x),
    "HardSigmoid": lambda x, *, alpha=0.2, beta=0.5: ops.clip(alpha * x + beta, 0, 1),
    "HardSwish": lambda x: x * ops.clip(x / 6 + 0.5, 0, 1),
    "Softplus": _softplus,
    "Softsign": lambda x: x / (1 + ops.abs(x)),
    "Mish": lambda x: x * ops.tanh(_softplus(x)),
}

for _op, _fn in _ACTIVATIONS.items():
    handles(_op)(_unary(_fn))


def _gelu(x, *, approximate="none"):
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        return 0.5 * x * (1 + ops.tanh(inner))
    return 0.5 * x * (1 + ops.erf(x / math.sqrt(2)))


@handles("Gelu")
def _gelu_op(ctx):
    return ctx.apply(_gelu, ctx.inputs[:1], approximate=ctx.attr("approximate", "none"))


@handles("PRelu", weights=(1,))
def _prelu_op(ctx):
    return ctx.apply(lambda x, slope: ops.where(x >= 0, x, x * slope), ctx.inputs[:2])


def _coerced(fn, x, axis):
    """Softmax before opset 13: over the 2-D view of ``x`` split at ``axis``."""
    shape = tuple(x.shape)
    axis = axis % len(shape) if shape else 0
    flat = ops.reshape(x, shape=(math.prod(shape[:axis]), math.prod(shape[axis:])))
    return ops.reshape(fn(flat, axis=-1), shape=shape)


def _softmax_family(fn):
    def handler(ctx):
        if ctx.opset < 13:
            axis = int(ctx.attr("axis", 1))
            return ctx.apply(lambda x: _coerced(fn, x, axis), ctx.inputs[:1])
        return ctx.apply(lambda x, *, axis: fn(x, axis=axis), ctx.inputs[:1],
                         axis=int(ctx.attr("axis", -1)))
    return handler


def _hardmax(x, *, axis):
    return ops.astype(ops.one_hot(ops.argmax(x, axis=axis), x.shape[axis], axis=axis),
                      dtype=x.dtype)


handles("Softmax")(_softmax_family(ops.softmax))
handles("LogSoftmax")(_softmax_family(ops.log_softmax))
handles("Hardmax")(_softmax_family(_hardmax))


# Reductions ---------------------------------------------------------------------------------------


def _reduce_axes(ctx, axes_input_since):
    """The reduced axes (a tuple, or None for all) and keepdims, from the attribute or, from
    ``axes_input_since`` on, the second input."""
    axes = _axes(ctx, 1, axes_input_since)
    if axes == ():
        axes = "noop" if ctx.attr("noop_with_empty_axes", 0) else None
    return axes, bool(ctx.attr("keepdims", 1))


_REDUCERS = {
    "ReduceSum": (13, lambda x, axis, k: ops.sum(x, axis=axis, keepdims=k)),
    "ReduceMean": (18, lambda x, axis, k: ops.mean(x, axis=axis, keepdims=k)),
    "ReduceMax": (18, lambda x, axis, k: ops.max(x, axis=axis, keepdims=k)),
    "ReduceMin": (18, lambda x, axis, k: ops.min(x, axis=axis, keepdims=k)),
    "ReduceProd": (18, lambda x, axis, k: ops.prod(x, axis=axis, keepdims=k)),
    "ReduceL1": (18, lambda x, axis, k: ops.sum(ops.abs(x), axis=axis, keepdims=k)),
    "ReduceL2": (18, lambda x, axis, k: ops.sqrt(ops.sum(x * x, axis=axis, keepdims=k))),
    "ReduceSumSquare": (18, lambda x, axis, k: ops.sum(x * x, axis=axis, keepdims=k)),
    "ReduceLogSum": (18, lambda x, axis, k: ops.log(ops.sum(x, axis=axis, keepdims=k))),
    "ReduceLogSumExp": (18, lambda x, axis, k: ops.logsumexp(x, axis=axis, keepdims=k)),
}


def _reducer(since, fn):
    def handler(ctx):
        axes, keepdims = _reduce_axes(ctx, since)
        if axes == "noop":
            return ctx.apply(lambda x: x, ctx.inputs[:1])
        return ctx.apply(lambda x, *, axes, keepdims: fn(x, axes, keepdims), ctx.inputs[:1],
                         axes=axes, keepdims=keepdims)
    return handler


for _op, (_since, _fn) in _REDUCERS.items():
    handles(_op, settings=(1,))(_reducer(_since, _fn))


def _arg(fn):
    def run(x, *, axis, keepdims, last):
        if last:  # the last maximal index: search the flipped axis
            size = x.shape[axis]
            flipped = fn(ops.flip(x, axis=axis), axis=axis, keepdims=keepdims)
            return ops.astype(size - 1 - flipped, dtype="int64")
        return ops.astype(fn(x, axis=axis, keepdims=keepdims), dtype="int64")

    def handler(ctx):
        return ctx.apply(run, ctx.inputs[:1], axis=int(ctx.attr("axis", 0)),
                         keepdims=bool(ctx.attr("keepdims", 1)),
                         last=bool(ctx.attr("select_last_index", 0)))
    return handler


handles("ArgMax")(_arg(ops.argmax))
handles("ArgMin")(_arg(ops.argmin))


def _cumsum(x, axis, *, exclusive, reverse):
    axis = int(np.asarray(axis).reshape(()))
    total = ops.cumsum(x, axis=axis, reverse=reverse)
    return total - x if exclusive else total


@handles("CumSum", settings=(1,))
def _cumsum_op(ctx):
    return ctx.apply(_cumsum, ctx.inputs[:2], exclusive=bool(ctx.attr("exclusive", 0)),
                     reverse=bool(ctx.attr("reverse", 0)))


# Matrix products ---------------------------------------------------------------------------------


@handles("MatMul")
def _matmul_op(ctx):
    x, kernel = ctx.input(0), ctx.exclusive_param(1)
    if x.node is not None and kernel is not None and kernel.ndim == 2:
        node = dense(x.node, kernel.shape[1], use_bias=False, name=ctx.name)
        return ctx.layer(node, trainable={"kernel": kernel})
    return ctx.apply(lambda a, b: ops.matmul(*_same_dtype(a, b)), ctx.inputs[:2])


def _gemm(a, b, c=None, *, alpha, beta, trans_a, trans_b):
    a = ops.transpose(a) if trans_a else a
    b = ops.transpose(b) if trans_b else b
    y = ops.matmul(a, b)
    if alpha != 1.0:
        y = alpha * y
    if c is not None:
        y = y + (c if beta == 1.0 else beta * c)
    return y


@handles("Gemm", weights=(1, 2))
def _gemm_op(ctx):
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    trans_a, trans_b = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    x, kernel = ctx.input(0), ctx.exclusive_param(1)
    bias = ctx.exclusive_param(2)
    bias_fits = ctx.input(2) is None or (bias is not None and bias.size == bias.shape[-1])
    if (x.node is not None and kernel is not None and kernel.ndim == 2 and not trans_a
            and alpha == 1.0 and beta == 1.0 and bias_fits):
        kernel = kernel.T if trans_b else kernel
        trainable = {"kernel": np.ascontiguousarray(kernel)}
        if bias is not None:
            trainable["bias"] = bias.reshape(-1)
        node = dense(x.node, kernel.shape[1], use_bias=bias is not None, name=ctx.name)
        return ctx.layer(node, trainable=trainable)
    return ctx.apply(_gemm, ctx.inputs[:3], alpha=alpha, beta=beta, trans_a=trans_a,
                     trans_b=trans_b)


@handles("Einsum")
def _einsum_op(ctx):
    equation = ctx.attr("equation").replace(" ", "")
    return ctx.apply(lambda *xs: ops.einsum(equation, *xs), ctx.inputs)

