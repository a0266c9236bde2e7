"""What each recorded step becomes in C: one small rule per primitive, in tables keyed by the
primitive's name (the way ``ops`` and the ONNX exporter keep theirs).

A rule sees the step's settings and the shapes and dtypes of its inputs and output, and returns
one IR operation (:class:`Op`), or ``None`` when it does not cover the case; the step then runs
as a call out to its Python kernel inside the compiled program.

IR kinds:

* ``"map"``: an elementwise expression over the broadcast of its inputs (``expr(ct, *args)``
  gives the C expression in compute type ``ct``, from inputs already cast to it unless
  ``cast_inputs`` is False);
* ``"sum"``: a sum over ``axes`` of its input (accumulated in double, or int64 for integers);
* ``"view"``: the input's memory seen with another shape (reshape, transpose, broadcast...);
* ``"gemm"``: a matrix product, batched over leading axes;
* ``"increment"``: the optimizer's step counter (recorded by a ``stageable`` function);
* ``"group"``: several of the above for one step (``ops``): the fused Adam step's expressions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

__all__ = ["Op", "CTYPES", "UNARY", "LOWERED", "lower", "literal"]

CTYPES = {
    np.dtype(np.float32): "float", np.dtype(np.float64): "double",
    np.dtype(np.bool_): "unsigned char", np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t", np.dtype(np.int16): "int16_t",
    np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t",
}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclasses.dataclass
class Op:
    """One IR operation: ``kind``, input and output slots, and what its kind needs."""

    kind: str
    ins: tuple
    outs: tuple
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


def literal(value, ctype):
    """``value`` as an exact C literal of type ``ctype`` (hex floats: no decimal rounding)."""
    if ctype in ("float", "double"):
        v = float(value)
        if math.isnan(v):
            return f"(({ctype})NAN)"
        if math.isinf(v):
            return f"(({ctype})({'-' if v < 0 else ''}INFINITY))"
        return f"(({ctype}){v.hex()})"
    if ctype == "unsigned char":
        return "1" if bool(value) else "0"
    return f"(({ctype}){int(value)}LL)"


def _libm(name):
    return lambda ct, x: f"{name}{'f' if ct == 'float' else ''}({x})"


UNARY = {
    "negative": lambda ct, x: f"(-{x})",
    "exp": _libm("exp"), "log": _libm("log"), "tanh": _libm("tanh"), "sqrt": _libm("sqrt"),
    "abs": _libm("fabs"), "log1p": _libm("log1p"), "expm1": _libm("expm1"),
    "sin": _libm("sin"), "cos": _libm("cos"), "tan": _libm("tan"), "sinh": _libm("sinh"),
    "cosh": _libm("cosh"), "arcsin": _libm("asin"), "arccos": _libm("acos"),
    "arctan": _libm("atan"), "arcsinh": _libm("asinh"), "arccosh": _libm("acosh"),
    "arctanh": _libm("atanh"), "floor": _libm("floor"), "ceil": _libm("ceil"),
    "round": _libm("rint"), "erf": _libm("erf"),
    "rsqrt": lambda ct, x: f"(({ct})1 / {_libm('sqrt')(ct, x)})",
    "relu": lambda ct, x: f"(({x} > 0 || {x} != {x}) ? {x} : ({ct})0)",
    "sigmoid": lambda ct, x: f"axon_sigmoid_{ct}({x})",
    "sign": lambda ct, x: f"axon_sign_{ct}({x})",
}
_BINARY = {
    "add": lambda ct, a, b: f"({a} + {b})",
    "subtract": lambda ct, a, b: f"({a} - {b})",
    "multiply": lambda ct, a, b: f"({a} * {b})",
    "divide": lambda ct, a, b: f"({a} / {b})",
    "power": lambda ct, a, b: _libm("pow")(ct, f"{a}, {b}"),
    "arctan2": lambda ct, a, b: _libm("atan2")(ct, f"{a}, {b}"),
    # numpy's maximum and minimum return NaN when either side is NaN
    "maximum": lambda ct, a, b: f"(({a} > {b} || {a} != {a}) ? {a} : {b})",
    "minimum": lambda ct, a, b: f"(({a} < {b} || {a} != {a}) ? {a} : {b})",
    "relu_grad": lambda ct, g, ans: f"({ans} > 0 ? {g} : ({ct})0)",
    "tanh_grad": lambda ct, g, ans: f"({g} * (({ct})1 - {ans} * {ans}))",
    "sigmoid_grad": lambda ct, g, ans: f"({g} * {ans} * (({ct})1 - {ans}))",
}
_COMPARE = {"greater": ">", "greater_equal": ">=", "less": "<", "less_equal": "<=",
            "equal": "==", "not_equal": "!="}
_LOGICAL = {"logical_and": "&&", "logical_or": "||"}
_VIEWS = ("reshape", "expand_dims", "squeeze", "transpose", "broadcast_to")


def _result_type(in_avals, constants_values):
    """numpy's promotion over the inputs: arrays by dtype, Python scalars weakly."""
    return np.result_type(*[v if v is not None else a[1]
                            for a, v in zip(in_avals, constants_values)])


def lower(name, params, ins, outs, avals, scalars):
    """The :class:`Op` for one recorded step, or None (it runs as a call out).

    ``avals``: slot -> (shape, dtype, is_scalar); ``scalars``: slot -> value for constants
    that are Python or numpy scalars (inlined as literals)."""
    if len(outs) != 1 and name not in _MULTI:
        return None
    rule = _RULES.get(name)
    if rule is None:
        return None
    dtypes = [avals[s][1] for s in ins if s in avals] + [avals[s][1] for s in outs]
    if any(d not in CTYPES for d in dtypes):
        return None  # bfloat16, float16, complex, strings: the Python kernels
    return rule(name, params, ins, outs, avals, scalars)


def _map(name, params, ins, outs, avals, scalars):
    out_dtype = avals[outs[0]][1]
    if name in UNARY:
        if len(ins) != 1 or params:
            return None
        expr = UNARY[name]
        if name in ("sign", "sigmoid") and out_dtype not in FLOATS:
            return None
        return Op("map", tuple(ins), tuple(outs), {"expr": expr, "ctype": CTYPES[out_dtype]})
    if len(ins) != 2 or params:
        return None
    if name in _BINARY:
        return Op("map", tuple(ins), tuple(outs),
                  {"expr": _BINARY[name], "ctype": CTYPES[out_dtype]})
    compute = _compute_type(ins, avals, scalars)
    if compute is None:
        return None
    if name in _COMPARE:
        symbol = _COMPARE[name]
        return Op("map", tuple(ins), tuple(outs),
                  {"expr": lambda ct, a, b: f"({a} {symbol} {b})", "ctype": compute,
                   "out_ctype": "unsigned char"})
    symbol = _LOGICAL[name]
    return Op("map", tuple(ins), tuple(outs),
              {"expr": lambda ct, a, b: f"(({a} != 0) {symbol} ({b} != 0))", "ctype": compute,
               "out_ctype": "unsigned char"})


def _compute_type(ins, avals, scalars):
    try:
        dtype = _result_type([avals.get(s, ((), None)) for s in ins],
                             [scalars.get(s) if s not in avals else None for s in ins])
    except TypeError:
        return None
    return CTYPES.get(np.dtype(dtype))


def _logical_not(name, params, ins, outs, avals, scalars):
    if len(ins) != 1 or params:
        return None
    return Op("map", tuple(ins), tuple(outs),
              {"expr": lambda ct, x: f"(!{x})", "ctype": _compute_type(ins, avals, scalars)
               or "double", "out_ctype": "unsigned char"})


def _where(name, params, ins, outs, avals, scalars):
    if len(ins) != 3 or params:
        return None
    out = CTYPES[avals[outs[0]][1]]
    return Op("map", tuple(ins), tuple(outs),
              {"expr": lambda ct, c, a, b: f"(({c}) ? ({ct})({a}) : ({ct})({b}))",
               "ctype": out, "cast_inputs": False})


def _astype(name, params, ins, outs, avals, scalars):
    out = CTYPES[avals[outs[0]][1]]
    expr = ((lambda ct, x: f"({x} != 0)") if out == "unsigned char"
            else (lambda ct, x: f"(({ct})({x}))"))
    return Op("map", tuple(ins), tuple(outs), {"expr": expr, "ctype": out, "cast_inputs": False})


def _sum(name, params, ins, outs, avals, scalars):
    if len(ins) != 1 or ins[0] not in avals:
        return None
    shape = avals[ins[0]][0]
    ndim = len(shape)
    if name.endswith("_sum_leading"):
        axes = tuple(range(ndim - len(params["shape"])))
    else:
        if set(params) - {"axis", "dtype", "keepdims"}:
            return None
        axis = params.get("axis")
        axes = tuple(range(ndim)) if axis is None else (
            (axis,) if isinstance(axis, int) else tuple(axis))
        axes = tuple(sorted(a % ndim for a in axes)) if ndim else ()
    return Op("sum", tuple(ins), tuple(outs), {"axes": axes})


def _view(name, params, ins, outs, avals, scalars):
    if ins[0] not in avals:
        return None
    return Op("view", (ins[0],), tuple(outs), {"view": name, "axes": params.get("axes")})


def _matmul(name, params, ins, outs, avals, scalars):
    if params or len(ins) != 2 or any(s not in avals for s in ins):
        return None
    a, b = (avals[s] for s in ins)
    dtype = avals[outs[0]][1]
    if a[1] != dtype or b[1] != dtype or dtype not in FLOATS or not a[0] or not b[0]:
        return None
    return Op("gemm", tuple(ins), tuple(outs), {})


def _dense(name, params, ins, outs, avals, scalars):
    """``activation(x @ kernel + bias)``: a product, then one elementwise pass (fused by the
    scheduler into the loop after the product)."""
    activation = params.get("activation")
    if activation not in (None, "relu", "tanh", "sigmoid") or set(params) - {"activation"}:
        return None
    if any(s not in avals for s in ins):
        return None
    x, kernel = avals[ins[0]], avals[ins[1]]
    dtype = avals[outs[0]][1]
    if dtype not in FLOATS or x[1] != dtype or kernel[1] != dtype or len(x[0]) < 1:
        return None
    if len(ins) == 3 and avals[ins[2]][1] != dtype:
        return None
    return Op("dense", tuple(ins), tuple(outs), {"activation": activation})


def _increment(name, params, ins, outs, avals, scalars):
    if avals.get(ins[0], ((), None))[1] != np.int32 or avals[ins[0]][0] != ():
        return None
    return Op("increment", tuple(ins), tuple(outs), {})


def _bias_correction(decay, count):
    """Adam's bias correction ``1 - decay ** count``, in double, of the C expression
    ``count``."""
    return f"(1.0 - pow({float(decay).hex()}, (double){count}))"


def _correction(name, params, ins, outs, avals, scalars):
    """Adam's bias correction (the unfused update's)."""
    if set(params) != {"decay", "dtype"} or avals.get(ins[0], ((), None))[0] != ():
        return None
    decay = params["decay"]
    return Op("map", tuple(ins), tuple(outs), {
        "expr": lambda ct, c: _bias_correction(decay, c),
        "ctype": CTYPES[avals[outs[0]][1]], "cast_inputs": False})


def _adam(name, params, ins, outs, avals, scalars):
    """The fused Adam step as three elementwise expressions per parameter (new first moment,
    new second moment, update), so that they share one loop with whatever else walks the
    parameter (``apply_updates`` adding the update: the update then never touches memory).
    The same arithmetic, in the parameter's type, as the C kernel's (``adam_leaf``)."""
    count, leaves = ins[0], ins[1:]
    if avals.get(count, ((), None))[1] not in (np.dtype(np.int32), np.dtype(np.int64)):
        return None
    if any(s not in avals for s in leaves) or avals[count][0] != ():
        return None
    n = len(leaves) // 3
    dtype = avals[leaves[0]][1]
    for i in range(n):
        shape = avals[leaves[i]][0]
        group = (leaves[i], leaves[n + i], leaves[2 * n + i], outs[i], outs[n + i],
                 outs[2 * n + i])
        if any(avals[s][0] != shape or avals[s][1] != dtype for s in group):
            return None
    if dtype not in FLOATS:
        return None
    ct = CTYPES[dtype]
    b1, b2 = float(params["b1"]), float(params["b2"])
    c1, c2, k1, k2 = (literal(v, ct) for v in (1.0 - b1, 1.0 - b2, b1, b2))
    eps_root, eps, scale = (literal(params[k], ct) for k in ("eps_root", "eps", "scale"))
    sqrt = "sqrtf" if ct == "float" else "sqrt"

    def correction(decay, c):  # loop-invariant: the compiler computes it once
        return f"(({ct}){_bias_correction(decay, c)})"

    def update(ct_, m, v, c):
        return (f"(({m} / {correction(b1, c)}) / ({sqrt}({v} / {correction(b2, c)} + "
                f"{eps_root}) + {eps}) * {scale})")

    def first_moment(ct_, g, mu):
        return f"({g} * {c1} + {mu} * {k1})"

    def second_moment(ct_, g, nu):
        return f"({g} * {g} * {c2} + {nu} * {k2})"

    ops = []
    for i in range(n):
        g, mu, nu = leaves[i], leaves[n + i], leaves[2 * n + i]
        m, v, u = outs[i], outs[n + i], outs[2 * n + i]
        ops += [Op("map", (g, mu), (m,), {"expr": first_moment, "ctype": ct,
                                          "name": "adam first moment"}),
                Op("map", (g, nu), (v,), {"expr": second_moment, "ctype": ct,
                                          "name": "adam second moment"}),
                Op("map", (m, v, count), (u,), {"expr": update, "ctype": ct,
                                                "cast_inputs": False, "name": "adam update"})]
    return Op("group", tuple(ins), tuple(outs), {"ops": ops})


_RULES: dict[str, Callable] = {}
_RULES.update({n: _map for n in (*UNARY, *_BINARY, *_COMPARE, *_LOGICAL)})
_RULES.update({n: _view for n in _VIEWS})
_RULES.update({
    "logical_not": _logical_not, "where": _where, "astype": _astype, "sum": _sum,
    "matmul": _matmul, "dense": _dense,
    # stageable functions, by qualified name
    "axon_fn.autodiff._engine._sum_leading": _sum,
    "axon_fn.optim.adaptive._increment": _increment,
    "axon_fn.optim.adaptive._correction": _correction,
    "axon_fn.optim._fused._adam_step": _adam,
})
_MULTI = {"axon_fn.optim._fused._adam_step"}

LOWERED = frozenset(_RULES)
