"""Export rules for the arithmetic primitives: elementwise ops, comparisons, reductions,
softmax, products (matmul, the fused dense, einsum).

A rule is ``rule(graph, ins, out, **params) -> output name``: ``ins`` and ``out`` are
:class:`~axon_fn.onnx._export_graph.Value`\\ s and ``params`` the primitive's static settings.
Inputs are cast to the dtype numpy computed in (``out.dtype`` for arithmetic), because ONNX
operators take operands of one type while numpy promotes.
"""

from __future__ import annotations

import string

import numpy as np

from ..ops.einsum import _plan
from ._common import OnnxExportError
from ._export_registry import rule as _rule

__all__ = []



def _axes(axis, ndim):
    if axis is None:
        return list(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return sorted(int(a) % ndim for a in axes) if ndim else []


# Elementwise -------------------------------------------------------------------------------------


def _unary(op_type):
    def emit(g, ins, out, **_):
        return g.node(op_type, [g.get(ins[0], out.dtype)])
    return emit


for _name, _op in {"abs": "Abs", "negative": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
                   "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "erf": "Erf",
                   "sigmoid": "Sigmoid", "relu": "Relu", "sign": "Sign", "floor": "Floor",
                   "ceil": "Ceil", "tan": "Tan", "arcsin": "Asin", "arccos": "Acos",
                   "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "arcsinh": "Asinh",
                   "arccosh": "Acosh", "arctanh": "Atanh"}.items():
    _rule(_name)(_unary(_op))


def _binary(op_type):
    def emit(g, ins, out, **_):
        return g.node(op_type, [g.get(v, out.dtype) for v in ins])
    return emit


for _name, _op in {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div",
                   "power": "Pow", "maximum": "Max", "minimum": "Min"}.items():
    _rule(_name)(_binary(_op))


def _floor_quotient(g, x, y, dtype):
    """floor(x / y) in ``dtype``; integers divide in float64 (exact below 2**53), since ONNX's
    integer Div truncates toward zero where numpy floors."""
    if np.dtype(dtype).kind in "iu":
        q = g.node("Floor", [g.node("Div", [g.get(x, np.float64), g.get(y, np.float64)])])
        return g.cast(q, np.float64, dtype)
    return g.node("Floor", [g.node("Div", [g.get(x, dtype), g.get(y, dtype)])])


@_rule("floor_divide")
def _floor_divide(g, ins, out):
    return _floor_quotient(g, ins[0], ins[1], out.dtype)


@_rule("mod")
def _mod(g, ins, out):
    # numpy's remainder takes the divisor's sign: x - floor(x / y) * y
    x, y = ins
    if out.dtype.kind in "iu":  # ONNX's integer Mod (fmod=0) has that sign rule already
        return g.node("Mod", [g.get(x, out.dtype), g.get(y, out.dtype)])
    product = g.node("Mul", [_floor_quotient(g, x, y, out.dtype), g.get(y, out.dtype)])
    return g.node("Sub", [g.get(x, out.dtype), product])


@_rule("arctan2")
def _arctan2(g, ins, out):
    # atan(y / x), moved by pi into the left half-plane; x == 0 gives +-pi/2 (0 at the origin)
    y, x = (g.get(v, out.dtype) for v in ins)
    zero, pi = g.const(0, out.dtype), g.const(np.pi, out.dtype)
    x_zero = g.node("Equal", [x, zero])
    safe_x = g.node("Where", [x_zero, g.const(1, out.dtype), x])
    angle = g.node("Atan", [g.node("Div", [y, safe_x])])
    y_negative = g.node("Less", [y, zero])
    turn = g.node("Where", [y_negative, g.node("Neg", [pi]), pi])
    left = g.node("Add", [angle, turn])
    angle = g.node("Where", [g.node("Less", [x, zero]), left, angle])
    axis = g.node("Mul", [g.node("Sign", [y]), g.const(np.pi / 2, out.dtype)])
    return g.node("Where", [x_zero, axis, angle])


@_rule("argsort")
def _argsort(g, ins, out, *, axis, kind=None, stable=None):
    # TopK keeps equal values in index order (ONNX spec), so it is a stable argsort
    (x,) = ins
    axis = int(axis) % x.ndim
    size = x.shape[axis]
    if not isinstance(size, (int, np.integer)):
        raise OnnxExportError("argsort along the batch axis cannot be exported")
    indices = g.node("TopK", [g.get(x), g.ints([size])], outputs=2, axis=axis, largest=0,
                     sorted=1)[1]
    return g.cast(indices, np.int64, out.dtype)


@_rule("searchsorted")
def _searchsorted(g, ins, out, *, side):
    # the insertion index counts the sorted entries before v: a < v (left) or a <= v (right)
    a, v = ins
    dtype = _common_dtype(ins)
    values = g.node("Unsqueeze", [g.get(v, dtype), g.ints([-1])])
    before = g.node("Less" if side == "left" else "LessOrEqual", [g.get(a, dtype), values])
    counts = g.reduce("ReduceSum", g.cast(before, np.bool_, np.int64), [-1], keepdims=0)
    return g.cast(counts, np.int64, out.dtype)


def _common_dtype(ins):
    return np.result_type(*(v.value for v in ins))


def _compare(op_type, negate=False):
    def emit(g, ins, out, **_):
        dtype = _common_dtype(ins)
        y = g.node(op_type, [g.get(v, dtype) for v in ins])
        return g.node("Not", [y]) if negate else y
    return emit


for _name, _op in {"equal": "Equal", "less": "Less", "less_equal": "LessOrEqual",
                   "greater": "Greater", "greater_equal": "GreaterOrEqual"}.items():
    _rule(_name)(_compare(_op))
_rule("not_equal")(_compare("Equal", negate=True))


def _logical(op_type):
    def emit(g, ins, out, **_):
        return g.node(op_type, [g.get(v, np.bool_) for v in ins])
    return emit


for _name, _op in {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor",
                   "logical_not": "Not"}.items():
    _rule(_name)(_logical(_op))


@_rule("isnan")
def _isnan(g, ins, out):
    (x,) = ins
    if x.dtype.kind in "fc":
        return g.node("IsNaN", [g.get(x)])
    return g.node("Not", [g.node("Equal", [g.get(x), g.get(x)])])  # all False


@_rule("isfinite")
def _isfinite(g, ins, out):
    (x,) = ins
    if x.dtype.kind in "fc":
        bad = g.node("Or", [g.node("IsNaN", [g.get(x)]), g.node("IsInf", [g.get(x)])])
        return g.node("Not", [bad])
    return g.node("Equal", [g.get(x), g.get(x)])  # all True


@_rule("rsqrt")
def _rsqrt(g, ins, out):
    return g.node("Reciprocal", [g.node("Sqrt", [g.get(ins[0], out.dtype)])])


@_rule("log1p")
def _log1p(g, ins, out):
    # log(1 + x) loses every digit of a tiny x; Kahan's form keeps them: with u = 1 + x,
    # log1p(x) = x * log(u) / (u - 1), and x itself where u rounds to 1.
    x = g.get(ins[0], out.dtype)
    one = g.const(1, out.dtype)
    u = g.node("Add", [x, one])
    d = g.node("Sub", [u, one])
    rounds_to_one = g.node("Equal", [d, g.const(0, out.dtype)])
    safe_d = g.node("Where", [rounds_to_one, one, d])  # no 0/0 for a runtime to warn about
    ratio = g.node("Div", [g.node("Mul", [g.node("Log", [u]), x]), safe_d])
    return g.node("Where", [rounds_to_one, x, ratio])


@_rule("expm1")
def _expm1(g, ins, out):
    # Kahan's form again: with u = exp(x), expm1(x) = (u - 1) * x / log(u), and x where u
    # rounds to 1; -1 and inf are exact already.
    x = g.get(ins[0], out.dtype)
    one = g.const(1, out.dtype)
    u = g.node("Exp", [x])
    d = g.node("Sub", [u, one])
    log_u = g.node("Log", [u])
    safe_log = g.node("Where", [g.node("Equal", [log_u, g.const(0, out.dtype)]), one, log_u])
    ratio = g.node("Div", [g.node("Mul", [d, x]), safe_log])
    exact = g.node("Or", [g.node("Equal", [d, g.const(-1, out.dtype)]),
                          g.node("IsInf", [u])])
    ratio = g.node("Where", [exact, d, ratio])
    return g.node("Where", [g.node("Equal", [d, g.const(0, out.dtype)]), x, ratio])


@_rule("where")
def _where(g, ins, out):
    c, x, y = ins
    return g.node("Where", [g.get(c, np.bool_), g.get(x, out.dtype), g.get(y, out.dtype)])


@_rule("clip")
def _clip(g, ins, out):
    x, lo, hi = ins
    name = g.get(x, out.dtype)
    bounds = []
    for v in (lo, hi):
        absent = v.is_const and v.const is None
        scalar = v.static is not None and np.ndim(v.static) == 0
        bounds.append("" if absent else g.get(v, out.dtype) if scalar else None)
    if None not in bounds:
        while bounds and bounds[-1] == "":
            bounds.pop()
        return g.node("Clip", [name, *bounds])
    # array bounds: Clip takes scalars only
    for v, op in ((lo, "Max"), (hi, "Min")):
        if not (v.is_const and v.const is None):
            name = g.node(op, [name, g.get(v, out.dtype)])
    return name


@_rule("round")
def _round(g, ins, out, decimals=0):
    x = g.get(ins[0], out.dtype)
    if out.dtype.kind not in "fc":
        if decimals < 0:
            raise OnnxExportError("round: negative `decimals` of an integer array")
        return g.node("Identity", [x])
    if decimals == 0:
        return g.node("Round", [x])
    scale = g.const(10.0 ** decimals, out.dtype)
    return g.node("Div", [g.node("Round", [g.node("Mul", [x, scale])]), scale])


@_rule("astype")
def _astype(g, ins, out, dtype):
    return g.node("Cast", [g.get(ins[0])], to=g.tensor_type(out.dtype))


# Reductions --------------------------------------------------------------------------------------


def _reduction(op_type):
    def emit(g, ins, out, axis=None, keepdims=False, dtype=None):
        (x,) = ins
        name = g.get(x, out.dtype)
        axes = _axes(axis, x.ndim)
        if not axes:  # nothing to reduce (a 0-d input, axis=())
            return g.node("Identity", [name])
        return g.reduce(op_type, name, axes, keepdims)
    return emit


_rule("sum")(_reduction("ReduceSum"))
_rule("max")(_reduction("ReduceMax"))
_rule("min")(_reduction("ReduceMin"))
_rule("prod")(_reduction("ReduceProd"))


def _arg(op_type):
    def emit(g, ins, out, axis=None, keepdims=False):
        (x,) = ins
        name = g.get(x)
        if axis is None:  # over the flattened array
            flat = g.node("Reshape", [name, g.ints([-1])])
            y = g.node(op_type, [flat], axis=0, keepdims=1, select_last_index=0)
            return g.node("Reshape", [y, g.ints(out.shape)])
        y = g.node(op_type, [name], axis=int(axis) % x.ndim, keepdims=int(bool(keepdims)),
                   select_last_index=0)
        return g.cast(y, np.int64, out.dtype)
    return emit


_rule("argmax")(_arg("ArgMax"))
_rule("argmin")(_arg("ArgMin"))


@_rule("cumsum")
def _cumsum(g, ins, out, axis, reverse=False):
    (x,) = ins
    return g.node("CumSum", [g.get(x, out.dtype), g.const(int(axis) % x.ndim, np.int64)],
                  reverse=int(bool(reverse)))


@_rule("softmax")
def _softmax(g, ins, out, axis):
    return g.node("Softmax", [g.get(ins[0], out.dtype)], axis=int(axis))


@_rule("log_softmax")
def _log_softmax(g, ins, out, axis):
    return g.node("LogSoftmax", [g.get(ins[0], out.dtype)], axis=int(axis))


# Products ----------------------------------------------------------------------------------------


@_rule("matmul")
def _matmul(g, ins, out):
    return g.node("MatMul", [g.get(v, out.dtype) for v in ins])


_DENSE_ACTIVATIONS = {None: None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


@_rule("dense")
def _dense(g, ins, out, activation=None):
    x, kernel, *bias = ins
    names = [g.get(v, out.dtype) for v in ins]
    if x.ndim == 2 and bias:
        y = g.node("Gemm", names)
    else:
        y = g.node("MatMul", names[:2])
        if bias:
            y = g.node("Add", [y, names[2]])
    if activation not in _DENSE_ACTIVATIONS:
        raise OnnxExportError(f"dense: activation {activation!r} has no ONNX operator")
    act = _DENSE_ACTIVATIONS[activation]
    return y if act is None else g.node(act, [y])


@_rule("einsum")
def _einsum(g, ins, out, subscripts):
    expr, _ = _plan(subscripts, tuple(v.shape for v in ins))
    # onnxruntime takes lower-case labels only: rename them in order of appearance
    labels = []
    for c in expr:
        if c.isalpha() and c not in labels:
            labels.append(c)
    if len(labels) > 26:
        raise OnnxExportError(f"einsum {subscripts!r}: more than 26 labels")
    rename = dict(zip(labels, string.ascii_lowercase))
    equation = "".join(rename.get(c, c) for c in expr)
    terms = equation.split("->")[0].split(",")
    sizes = {}
    for term, v in zip(terms, ins):
        for c, n in zip(term, v.dims):
            sizes.setdefault(c, set()).add(n)
    if any(len(s - {1}) and 1 in s for s in sizes.values()):
        raise OnnxExportError(f"einsum {subscripts!r}: a label of size 1 in one operand and "
                              f"larger in another (numpy broadcasts it, ONNX Einsum does not); "
                              f"broadcast the operand first")
    return g.node("Einsum", [g.get(v, out.dtype) for v in ins], equation=equation)
