"""Elementwise primitives: arithmetic, transcendental functions, comparisons and casts.

Every op broadcasts like numpy and accepts Python scalars. VJP rules are written with ops, so
gradients of gradients work. Masks (which have zero derivative) are computed with
non-differentiable comparison ops.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.multiply(np.array([1.0, 2.0]), 3.0)
array([3., 6.])
"""

from __future__ import annotations

import numpy as np

from .._core import primitive
from . import _erf
from ._rules import (
    AbstractArray,
    broadcast_rule,
    dtype_of,
    float_unary_rule,
    same_rule,
    shape_of,
)

_TWO_OVER_SQRT_PI = 1.1283791670955126


def _unary(name, impl, vjp, rule=float_unary_rule, doc=None):
    return primitive(name, impl, rule, None if vjp is None else (vjp,), doc=doc)


def _binary(name, impl, vjps, **rule_kw):
    return primitive(name, impl, broadcast_rule(name, **rule_kw), vjps)


# Arithmetic -----------------------------------------------------------------------------------

add = _binary("add", lambda xp, x, y: xp.add(x, y),
              (lambda g, ans, x, y: g, lambda g, ans, x, y: g))
subtract = _binary("subtract", lambda xp, x, y: xp.subtract(x, y),
                   (lambda g, ans, x, y: g, lambda g, ans, x, y: negative(g)))
multiply = _binary("multiply", lambda xp, x, y: xp.multiply(x, y),
                   (lambda g, ans, x, y: multiply(g, y), lambda g, ans, x, y: multiply(g, x)))
divide = _binary("divide", lambda xp, x, y: xp.divide(x, y),
                 (lambda g, ans, x, y: divide(g, y),
                  lambda g, ans, x, y: negative(divide(multiply(g, ans), y))),
                 to_float=True)
negative = _unary("negative", lambda xp, x: xp.negative(x), lambda g, ans, x: negative(g),
                  rule=same_rule)


def _power_dx(g, ans, x, y):
    return multiply(g, multiply(y, power(x, subtract(y, 1))))


def _power_dy(g, ans, x, y):
    safe_x = where(greater(x, 0), x, 1)
    return multiply(g, multiply(ans, log(safe_x)))


power = _binary("power", lambda xp, x, y: xp.power(x, y), (_power_dx, _power_dy))

# Transcendental -------------------------------------------------------------------------------

exp = _unary("exp", lambda xp, x: xp.exp(x), lambda g, ans, x: multiply(g, ans))
log = _unary("log", lambda xp, x: xp.log(x), lambda g, ans, x: divide(g, x))
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda g, ans, x: divide(g, add(x, 1)))
expm1 = _unary("expm1", lambda xp, x: xp.expm1(x), lambda g, ans, x: multiply(g, add(ans, 1)))
sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x),
              lambda g, ans, x: divide(multiply(g, 0.5), ans))


def _rsqrt(xp, x):
    out = xp.sqrt(x)
    return xp.divide(1, out, out=out) if out.ndim else 1 / out


rsqrt = _unary("rsqrt", _rsqrt,
               lambda g, ans, x: multiply(g, divide(multiply(ans, -0.5), x)))
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda g, ans, x: multiply(g, cos(x)))
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda g, ans, x: negative(multiply(g, sin(x))))
erf = _unary("erf", _erf.erf,
             lambda g, ans, x: multiply(g, multiply(_TWO_OVER_SQRT_PI, exp(negative(multiply(x, x))))))
abs = _unary("abs", lambda xp, x: xp.abs(x), lambda g, ans, x: multiply(g, sign(x)),  # noqa: A001
             rule=same_rule)
sign = _unary("sign", lambda xp, x: xp.sign(x), None, rule=same_rule)


def _tanh_grad_impl(xp, g, ans):
    return g * (1 - ans * ans)


tanh_grad = primitive(
    "tanh_grad", _tanh_grad_impl, broadcast_rule("tanh_grad"),
    (lambda gg, _, g, ans: tanh_grad(gg, ans),
     lambda gg, _, g, ans: multiply(multiply(gg, g), multiply(ans, -2.0))),
    doc="``g * (1 - ans**2)``: the VJP of tanh given its output ``ans``.",
)
tanh = _unary("tanh", lambda xp, x: xp.tanh(x), lambda g, ans, x: tanh_grad(g, ans))


def _sigmoid_impl(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_grad_impl(xp, g, ans):
    return g * ans * (1 - ans)


sigmoid_grad = primitive(
    "sigmoid_grad", _sigmoid_grad_impl, broadcast_rule("sigmoid_grad"),
    (lambda gg, _, g, ans: sigmoid_grad(gg, ans),
     lambda gg, _, g, ans: multiply(multiply(gg, g), subtract(1, multiply(ans, 2.0)))),
    doc="``g * ans * (1 - ans)``: the VJP of sigmoid given its output ``ans``.",
)
sigmoid = _unary("sigmoid", _sigmoid_impl, lambda g, ans, x: sigmoid_grad(g, ans),
                 doc="Numerically stable logistic function ``1 / (1 + exp(-x))``.")


def _relu_grad_impl(xp, g, ans):
    return xp.where(ans > 0, g, 0)


relu_grad = primitive(
    "relu_grad", _relu_grad_impl, broadcast_rule("relu_grad"),
    (lambda gg, _, g, ans: relu_grad(gg, ans), None),
    doc="``g * (ans > 0)``: the VJP of relu given its output ``ans``.",
)
relu = _unary("relu", lambda xp, x: xp.maximum(x, 0), lambda g, ans, x: relu_grad(g, ans),
              rule=same_rule, doc="``max(x, 0)`` elementwise (gradient 0 at 0, as in PyTorch).")

# Selection ------------------------------------------------------------------------------------


def _share(x, y):
    """Mask giving x the whole gradient where it wins and half of it on ties (as JAX does)."""
    return add(greater(x, y), multiply(equal(x, y), 0.5))


maximum = _binary("maximum", lambda xp, x, y: xp.maximum(x, y),
                  (lambda g, ans, x, y: multiply(g, _share(x, y)),
                   lambda g, ans, x, y: multiply(g, _share(y, x))))
minimum = _binary("minimum", lambda xp, x, y: xp.minimum(x, y),
                  (lambda g, ans, x, y: multiply(g, _share(y, x)),
                   lambda g, ans, x, y: multiply(g, _share(x, y))))


def _where_rule(cond, x, y):
    shape = broadcast_rule("where")(cond, x, y).shape
    return AbstractArray(shape, broadcast_rule("where")(x, y).dtype)


where = primitive(
    "where", lambda xp, cond, x, y: xp.where(cond, x, y), _where_rule,
    (None,
     lambda g, ans, c, x, y: where(c, g, 0),
     lambda g, ans, c, x, y: where(c, 0, g)),
    doc="``x`` where ``cond`` is true, else ``y`` (the condition takes no gradient).",
)


def _clip_rule(x, lo, hi):
    rule = broadcast_rule("clip")
    return rule(*(a for a in (x, lo, hi) if a is not None))


def _clip_inside(x, lo, hi):
    inside = np.True_
    if lo is not None:
        inside = logical_and(inside, greater_equal(x, lo))
    if hi is not None:
        inside = logical_and(inside, less_equal(x, hi))
    return inside


clip = primitive(
    "clip", lambda xp, x, lo, hi: xp.clip(x, lo, hi), _clip_rule,
    (lambda g, ans, x, lo, hi: where(_clip_inside(x, lo, hi), g, 0),
     lambda g, ans, x, lo, hi: where(less(x, lo), g, 0),
     lambda g, ans, x, lo, hi: where(greater(x, hi), g, 0)),
    doc="``x`` limited to ``[lo, hi]``; either bound may be ``None``.",
)

# Casts ----------------------------------------------------------------------------------------


def _astype_rule(x, *, dtype):
    return AbstractArray(shape_of(x), dtype)


def _astype_vjp(g, ans, x, *, dtype):
    source = dtype_of(x)
    return astype(g, dtype=source) if np.issubdtype(source, np.inexact) else None


astype = primitive(
    "astype", lambda xp, x, *, dtype: xp.asarray(x).astype(dtype, copy=False), _astype_rule,
    (_astype_vjp,),
    doc="``x`` converted to ``dtype`` (gradients flow back between floating dtypes).",
)

# Non-differentiable ---------------------------------------------------------------------------


def _predicate(name, fn):
    return primitive(name, fn, broadcast_rule(name, to_bool=True), None)


equal = _predicate("equal", lambda xp, x, y: xp.equal(x, y))
not_equal = _predicate("not_equal", lambda xp, x, y: xp.not_equal(x, y))
less = _predicate("less", lambda xp, x, y: xp.less(x, y))
less_equal = _predicate("less_equal", lambda xp, x, y: xp.less_equal(x, y))
greater = _predicate("greater", lambda xp, x, y: xp.greater(x, y))
greater_equal = _predicate("greater_equal", lambda xp, x, y: xp.greater_equal(x, y))
logical_and = _predicate("logical_and", lambda xp, x, y: xp.logical_and(x, y))
logical_or = _predicate("logical_or", lambda xp, x, y: xp.logical_or(x, y))
logical_xor = _predicate("logical_xor", lambda xp, x, y: xp.logical_xor(x, y))
logical_not = _predicate("logical_not", lambda xp, x: xp.logical_not(x))
isnan = _predicate("isnan", lambda xp, x: xp.isnan(x))
isfinite = _predicate("isfinite", lambda xp, x: xp.isfinite(x))
floor = primitive("floor", lambda xp, x: xp.floor(x), same_rule, None)
ceil = primitive("ceil", lambda xp, x: xp.ceil(x), same_rule, None)
round = primitive("round", lambda xp, x, *, decimals=0: xp.round(x, decimals), same_rule, None)  # noqa: A001
