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

from .._dtypes import canonical, is_floating, is_low_precision
from .._core import primitive
from ..typing import Array, ArrayLike, DTypeLike
from . import _erf
from ._rules import (
    AbstractArray,
    as_operand,
    broadcast_rule,
    dtype_of,
    float_unary_rule,
    result_dtype,
    same_rule,
    shape_of,
)

_TWO_OVER_SQRT_PI = 1.1283791670955126


#: numpy's ufunc signatures (``where=``, ``casting=``, ``order=`` and ``subok=`` are not taken).
UNARY = "x, /, out=None, *, dtype=None"
BINARY = "x1, x2, /, out=None, *, dtype=None"


def _doc(what, example, result):
    """A ufunc's docstring: one line of meaning and a doctest."""
    return f"{what}\n\n    >>> import numpy as np\n    >>> {example}\n    {result}\n    "


def _unary(name, impl, vjp, rule=float_unary_rule, doc=None, signature=UNARY):
    return primitive(name, impl, rule, None if vjp is None else (vjp,), doc=doc,
                     signature=signature)


def _binary(name, impl, vjps, doc=None, **rule_kw):
    return primitive(name, impl, broadcast_rule(name, **rule_kw), vjps, doc=doc,
                     signature=BINARY)


# Arithmetic -----------------------------------------------------------------------------------

add = _binary("add", lambda xp, x, y: xp.add(x, y),
              (lambda g, ans, x, y: g, lambda g, ans, x, y: g),
              doc=_doc("``x1 + x2`` elementwise, with numpy broadcasting.",
                       "add(np.array([1.0, 2.0]), 1.0)", "array([2., 3.])"))
subtract = _binary("subtract", lambda xp, x, y: xp.subtract(x, y),
                   (lambda g, ans, x, y: g, lambda g, ans, x, y: negative(g)),
                   doc=_doc("``x1 - x2`` elementwise.", "subtract(np.array([1.0, 2.0]), 1.0)",
                            "array([0., 1.])"))
multiply = _binary("multiply", lambda xp, x, y: xp.multiply(x, y),
                   (lambda g, ans, x, y: multiply(g, y), lambda g, ans, x, y: multiply(g, x)),
                   doc=_doc("``x1 * x2`` elementwise.", "multiply(np.array([1.0, 2.0]), 3.0)",
                            "array([3., 6.])"))
divide = _binary("divide", lambda xp, x, y: xp.divide(x, y),
                 (lambda g, ans, x, y: divide(g, y),
                  lambda g, ans, x, y: negative(divide(multiply(g, ans), y))),
                 doc=_doc("``x1 / x2`` elementwise (true division: integers give floats).",
                          "divide(np.array([1, 2]), 4)", "array([0.25, 0.5 ])"),
                 to_float=True)
negative = _unary("negative", lambda xp, x: xp.negative(x), lambda g, ans, x: negative(g),
                  rule=same_rule, doc=_doc("``-x`` elementwise.", "negative(np.array([1.0]))",
                                           "array([-1.])"))


def _power_dx(g, ans, x, y):
    return multiply(g, multiply(y, power(x, subtract(y, 1))))


def _power_dy(g, ans, x, y):
    safe_x = where(greater(x, 0), x, 1)
    return multiply(g, multiply(ans, log(safe_x)))


power = _binary("power", lambda xp, x, y: xp.power(x, y), (_power_dx, _power_dy),
                doc=_doc("``x1 ** x2`` elementwise (the gradient in ``x2`` is 0 where "
                         "``x1 <= 0``).", "power(np.array([2.0, 3.0]), 2)", "array([4., 9.])"))


def _floor_divide_impl(xp, x, y):
    return xp.floor_divide(x, y)


floor_divide = primitive(
    "floor_divide", _floor_divide_impl, broadcast_rule("floor_divide"), None,
    doc=_doc("``x1 // x2`` elementwise, rounded toward minus infinity (piecewise constant: no "
             "gradient).", "floor_divide(np.array([7.0, -7.0]), 2.0)", "array([ 3., -4.])"),
    signature=BINARY)
mod = primitive(
    "mod", lambda xp, x, y: xp.mod(x, y), broadcast_rule("mod"),
    (lambda g, ans, x, y: g,
     lambda g, ans, x, y: negative(multiply(g, floor_divide(x, y)))),
    doc=_doc("The remainder of ``x1 // x2``, with the sign of ``x2`` (numpy's ``mod``, Python's "
             "``%``).", "mod(np.array([7.0, -7.0]), 3.0)", "array([1., 2.])"),
    signature=BINARY)

# Transcendental -------------------------------------------------------------------------------

exp = _unary("exp", lambda xp, x: xp.exp(x), lambda g, ans, x: multiply(g, ans),
             doc=_doc("``e ** x`` elementwise.", "exp(np.array([0.0]))", "array([1.])"))
log = _unary("log", lambda xp, x: xp.log(x), lambda g, ans, x: divide(g, x),
             doc=_doc("Natural logarithm elementwise.", "log(np.array([1.0]))", "array([0.])"))
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda g, ans, x: divide(g, add(x, 1)),
               doc=_doc("``log(1 + x)``, accurate for small ``x``.", "log1p(np.array([0.0]))",
                        "array([0.])"))
expm1 = _unary("expm1", lambda xp, x: xp.expm1(x), lambda g, ans, x: multiply(g, add(ans, 1)),
               doc=_doc("``exp(x) - 1``, accurate for small ``x``.", "expm1(np.array([0.0]))",
                        "array([0.])"))
sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x),
              lambda g, ans, x: divide(multiply(g, 0.5), ans),
              doc=_doc("Square root elementwise.", "sqrt(np.array([4.0]))", "array([2.])"))


def _rsqrt(xp, x):
    out = xp.sqrt(x)
    return xp.divide(1, out, out=out) if out.ndim else 1 / out


rsqrt = _unary("rsqrt", _rsqrt,
               lambda g, ans, x: multiply(g, divide(multiply(ans, -0.5), x)), signature=None,
               doc=_doc("``1 / sqrt(x)`` elementwise.", "rsqrt(np.array([4.0]))",
                        "array([0.5])"))
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda g, ans, x: multiply(g, cos(x)),
             doc=_doc("Sine elementwise.", "sin(np.array([0.0]))", "array([0.])"))
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda g, ans, x: negative(multiply(g, sin(x))),
             doc=_doc("Cosine elementwise.", "cos(np.array([0.0]))", "array([1.])"))
erf = _unary("erf", _erf.erf,
             lambda g, ans, x: multiply(g, multiply(_TWO_OVER_SQRT_PI, exp(negative(multiply(x, x))))),
             signature=None, doc=_doc("The error function elementwise.", "erf(np.array([0.0]))",
                                      "array([0.])"))
abs = _unary("abs", lambda xp, x: xp.abs(x), lambda g, ans, x: multiply(g, sign(x)),  # noqa: A001
             rule=same_rule, doc=_doc("``|x|`` elementwise (gradient 0 at 0).",
                                      "abs(np.array([-2.0]))", "array([2.])"))
sign = _unary("sign", lambda xp, x: xp.sign(x), None, rule=same_rule,
              doc=_doc("-1, 0 or 1 by the sign of ``x`` (no gradient).",
                       "sign(np.array([-2.0, 0.0]))", "array([-1.,  0.])"))


def _tanh_grad_impl(xp, g, ans):
    return g * (1 - ans * ans)


tanh_grad = primitive(
    "tanh_grad", _tanh_grad_impl, broadcast_rule("tanh_grad"),
    (lambda gg, _, g, ans: tanh_grad(gg, ans),
     lambda gg, _, g, ans: multiply(multiply(gg, g), multiply(ans, -2.0))),
    doc=_doc("``g * (1 - ans**2)``: the VJP of tanh given its output ``ans``.",
             "tanh_grad(np.array([2.0]), np.array([0.5]))", "array([1.5])"),
)
tanh = _unary("tanh", lambda xp, x: xp.tanh(x), lambda g, ans, x: tanh_grad(g, ans),
              doc=_doc("Hyperbolic tangent elementwise.", "tanh(np.array([0.0]))",
                       "array([0.])"))


def _sigmoid_impl(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_grad_impl(xp, g, ans):
    return g * ans * (1 - ans)


sigmoid_grad = primitive(
    "sigmoid_grad", _sigmoid_grad_impl, broadcast_rule("sigmoid_grad"),
    (lambda gg, _, g, ans: sigmoid_grad(gg, ans),
     lambda gg, _, g, ans: multiply(multiply(gg, g), subtract(1, multiply(ans, 2.0)))),
    doc=_doc("``g * ans * (1 - ans)``: the VJP of sigmoid given its output ``ans``.",
             "sigmoid_grad(np.array([1.0]), np.array([0.5]))", "array([0.25])"),
)
sigmoid = _unary("sigmoid", _sigmoid_impl, lambda g, ans, x: sigmoid_grad(g, ans),
                 signature=None,
                 doc=_doc("Numerically stable logistic function ``1 / (1 + exp(-x))``.",
                          "sigmoid(np.array([0.0]))", "array([0.5])"))


def _half_inf(*arrays):
    """The bit pattern of +inf when every argument is a numpy float16 or bfloat16 array of one
    dtype and shape (else None): relu and its gradient then work on the 16-bit patterns,
    several times faster than numpy's and ``ml_dtypes``' 16-bit ufuncs."""
    first = arrays[0]
    if not all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == first.shape
               for a in arrays) or not is_low_precision(first.dtype):
        return None
    return 0x7C00 if first.dtype == np.float16 else 0x7F80


def _relu_impl(xp, x):
    inf = _half_inf(x) if xp is np else None
    if inf is not None:
        # sign-magnitude: negative numbers, -0.0 and -inf are <= the pattern of -inf (as int16);
        # the negative NaNs lie above it and are kept, as np.maximum keeps them
        bits = x.view(np.int16)
        return np.multiply(bits, bits > inf - 0x8000, dtype=np.int16).view(x.dtype)
    return xp.maximum(x, 0)


def _relu_grad_impl(xp, g, ans):
    inf = _half_inf(g, ans) if xp is np else None
    if inf is not None:
        bits = ans.view(np.int16)  # positive, up to +inf: not NaN
        return np.multiply(g.view(np.int16), (bits > 0) & (bits <= inf),
                           dtype=np.int16).view(g.dtype)
    return _keep_low(xp.where(ans > 0, g, 0), g)


relu_grad = primitive(
    "relu_grad", _relu_grad_impl, broadcast_rule("relu_grad"),
    (lambda gg, _, g, ans: relu_grad(gg, ans), None),
    doc=_doc("``g * (ans > 0)``: the VJP of relu given its output ``ans``.",
             "relu_grad(np.array([1.0, 1.0]), np.array([0.0, 2.0]))", "array([0., 1.])"),
)
relu = _unary("relu", _relu_impl, lambda g, ans, x: relu_grad(g, ans),
              rule=same_rule, signature=None,
              doc=_doc("``max(x, 0)`` elementwise (gradient 0 at 0, as in PyTorch).",
                       "relu(np.array([-1.0, 2.0]))", "array([0., 2.])"))

# Selection ------------------------------------------------------------------------------------


def _share(x, y):
    """Mask giving x the whole gradient where it wins and half of it on ties (as JAX does)."""
    return add(greater(x, y), multiply(equal(x, y), 0.5))


maximum = _binary("maximum", lambda xp, x, y: xp.maximum(x, y),
                  (lambda g, ans, x, y: multiply(g, _share(x, y)),
                   lambda g, ans, x, y: multiply(g, _share(y, x))),
                  doc=_doc("The larger of ``x1`` and ``x2`` elementwise (ties share the "
                           "gradient equally, as in JAX).", "maximum(np.array([1.0, 3.0]), 2.0)",
                           "array([2., 3.])"))
minimum = _binary("minimum", lambda xp, x, y: xp.minimum(x, y),
                  (lambda g, ans, x, y: multiply(g, _share(y, x)),
                   lambda g, ans, x, y: multiply(g, _share(x, y))),
                  doc=_doc("The smaller of ``x1`` and ``x2`` elementwise.",
                           "minimum(np.array([1.0, 3.0]), 2.0)", "array([1., 2.])"))


def _where_rule(cond, x, y):
    shape = broadcast_rule("where")(cond, x, y).shape
    return AbstractArray(shape, broadcast_rule("where")(x, y).dtype)


def _keep_low(out, *args):
    """numpy promotes a Python scalar against a bfloat16 array to float32 in ``where`` and
    ``clip`` (it treats the scalar weakly only for its own dtypes): round back to the dtype
    the rules promise."""
    dtype = getattr(out, "dtype", None)
    if dtype is None or dtype != np.float32:
        return out
    target = result_dtype(*(a for a in args if a is not None))
    return out.astype(target) if is_low_precision(target) else out


_where = primitive(
    "where", lambda xp, cond, x, y: _keep_low(xp.where(cond, x, y), x, y), _where_rule,
    (None,
     lambda g, ans, c, x, y: _where(c, g, 0),
     lambda g, ans, c, x, y: _where(c, 0, g)),
    doc="``where(condition, x, y)``, the primitive of :func:`where`.",
)


def where(condition: ArrayLike, x: ArrayLike | None = None, y: ArrayLike | None = None, /) -> Array:
    """``x`` where ``condition`` is true, else ``y`` (the condition takes no gradient); with
    ``condition`` alone, ``nonzero(condition)``, as numpy.

    >>> where(np.array([True, False]), 1.0, np.array([5.0, 6.0]))
    array([1., 6.])
    >>> where(np.array([0, 3, 4]))
    (array([1, 2]),)
    """
    if x is None and y is None:
        from .sorting import nonzero

        return nonzero(condition)
    if x is None or y is None:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError("where: either both or neither of x and y should be given")
    return _where(condition, x, y)


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


_clip = primitive(
    "clip", lambda xp, x, lo, hi: _keep_low(xp.clip(x, lo, hi), x, lo, hi), _clip_rule,
    (lambda g, ans, x, lo, hi: _where(_clip_inside(x, lo, hi), g, 0),
     lambda g, ans, x, lo, hi: _where(less(x, lo), g, 0),
     lambda g, ans, x, lo, hi: _where(greater(x, hi), g, 0)),
    doc="``clip(x, lo, hi)``, the primitive of :func:`clip`.",
)


def clip(a: ArrayLike, a_min: ArrayLike | None = None, a_max: ArrayLike | None = None,
         out: None = None, *, min: ArrayLike | None = None,  # noqa: A002
         max: ArrayLike | None = None, dtype: DTypeLike | None = None) -> Array:  # noqa: A002
    """``a`` limited to ``[a_min, a_max]``; either bound may be None (numpy 2's ``min=`` and
    ``max=`` are the same bounds). Inside the bounds the gradient flows to ``a``; where a bound
    is active it flows to that bound.

    >>> clip(np.array([-1.0, 0.5, 2.0]), a_min=0, a_max=1)
    array([0. , 0.5, 1. ])
    >>> clip(np.array([-1.0, 2.0]), max=1)
    array([-1.,  1.])
    """
    if out is not None:
        from .._core import _refuse

        _refuse("clip", "out", out, "axon_fn ops return new arrays; assign the result instead")
    if min is not None:
        if a_min is not None:
            from ..errors import InvalidArgumentError

            raise InvalidArgumentError("clip: give the lower bound as a_min or min, not both")
        a_min = min
    if max is not None:
        if a_max is not None:
            from ..errors import InvalidArgumentError

            raise InvalidArgumentError("clip: give the upper bound as a_max or max, not both")
        a_max = max
    result = _clip(as_operand(a), a_min, a_max)
    return result if dtype is None else astype(result, np.dtype(dtype))


# Casts ----------------------------------------------------------------------------------------


def _astype_rule(x, *, dtype):
    return AbstractArray(shape_of(x), dtype)


def _astype_vjp(g, ans, x, *, dtype):
    source = dtype_of(x)
    if is_floating(source) and is_floating(np.dtype(dtype)):
        return astype(g, dtype=source)
    return None  # a cast to integers or booleans stops the gradient (as in JAX and PyTorch)


astype = primitive(
    "astype", lambda xp, x, *, dtype: xp.asarray(x).astype(
        canonical(dtype) if type(dtype) is str else dtype, copy=False), _astype_rule,
    (_astype_vjp,),
    doc=_doc("``x`` converted to ``dtype`` (numpy's ``astype(x, dtype)``). Gradients flow back "
             "between floating dtypes; a cast to an integer or boolean dtype stops them.",
             "astype(np.array([1.5, 2.5]), np.int64)", "array([1, 2])"),
    signature="x, dtype, *, copy=True, device=None", normalize={"dtype": canonical},
    ignore=("copy",),
)

# Non-differentiable ---------------------------------------------------------------------------


def _predicate(name, fn, what, example, result, signature=BINARY):
    return primitive(name, fn, broadcast_rule(name, to_bool=True), None,
                     doc=_doc(what, example, result), signature=signature)


equal = _predicate("equal", lambda xp, x, y: xp.equal(x, y), "``x1 == x2`` elementwise.",
                   "equal(np.array([1.0, 2.0]), 2.0)", "array([False,  True])")
not_equal = _predicate("not_equal", lambda xp, x, y: xp.not_equal(x, y),
                       "``x1 != x2`` elementwise.", "not_equal(np.array([1.0, 2.0]), 2.0)",
                       "array([ True, False])")
less = _predicate("less", lambda xp, x, y: xp.less(x, y), "``x1 < x2`` elementwise.",
                  "less(np.array([1.0, 2.0]), 2.0)", "array([ True, False])")
less_equal = _predicate("less_equal", lambda xp, x, y: xp.less_equal(x, y),
                        "``x1 <= x2`` elementwise.", "less_equal(np.array([1.0, 3.0]), 2.0)",
                        "array([ True, False])")
greater = _predicate("greater", lambda xp, x, y: xp.greater(x, y), "``x1 > x2`` elementwise.",
                     "greater(np.array([1.0, 3.0]), 2.0)", "array([False,  True])")
greater_equal = _predicate("greater_equal", lambda xp, x, y: xp.greater_equal(x, y),
                           "``x1 >= x2`` elementwise.",
                           "greater_equal(np.array([1.0, 2.0]), 2.0)", "array([False,  True])")
logical_and = _predicate("logical_and", lambda xp, x, y: xp.logical_and(x, y),
                         "Elementwise logical and.", "logical_and(np.array([True, False]), True)",
                         "array([ True, False])")
logical_or = _predicate("logical_or", lambda xp, x, y: xp.logical_or(x, y),
                        "Elementwise logical or.", "logical_or(np.array([True, False]), False)",
                        "array([ True, False])")
logical_xor = _predicate("logical_xor", lambda xp, x, y: xp.logical_xor(x, y),
                         "Elementwise logical exclusive or.",
                         "logical_xor(np.array([True, False]), True)", "array([False,  True])")
logical_not = _predicate("logical_not", lambda xp, x: xp.logical_not(x),
                         "Elementwise logical not.", "logical_not(np.array([True, False]))",
                         "array([False,  True])", signature=UNARY)
isnan = _predicate("isnan", lambda xp, x: xp.isnan(x), "Whether each element is NaN.",
                   "isnan(np.array([np.nan, 1.0]))", "array([ True, False])", signature=UNARY)
isfinite = _predicate("isfinite", lambda xp, x: xp.isfinite(x),
                      "Whether each element is finite (not infinite, not NaN).",
                      "isfinite(np.array([np.inf, 1.0]))", "array([False,  True])",
                      signature=UNARY)
floor = primitive("floor", lambda xp, x: xp.floor(x), same_rule, None, signature=UNARY,
                  doc=_doc("The largest integer not above ``x`` (no gradient).",
                           "floor(np.array([1.5, -1.5]))", "array([ 1., -2.])"))
ceil = primitive("ceil", lambda xp, x: xp.ceil(x), same_rule, None, signature=UNARY,
                 doc=_doc("The smallest integer not below ``x`` (no gradient).",
                          "ceil(np.array([1.5, -1.5]))", "array([ 2., -1.])"))
round = primitive(  # noqa: A001
    "round", lambda xp, x, *, decimals=0: xp.round(x, decimals), same_rule, None,
    signature="a, decimals=0, out=None",
    doc=_doc("``a`` rounded to ``decimals`` places, halves to even as numpy (no gradient).",
             "round(np.array([1.234, 2.5]), 1)", "array([1.2, 2.5])"))


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
