"""More of numpy's elementwise functions: trigonometric and hyperbolic functions and their
inverses, ``square``, ``reciprocal``, ``log2``, ``log10``, ``logaddexp``, ``isinf``,
``isclose`` and ``allclose``.

The inverse and hyperbolic functions are primitives (one kernel, numpy's exact values); the
rest are compositions of primitives, so their gradients come for free.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.arctan2(np.array([1.0]), np.array([-1.0]))
array([2.35619449])
"""

from __future__ import annotations

import math

import numpy as np

from .._core import primitive
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import as_operand, broadcast_rule, named
from .elementwise import (
    BINARY, _doc, _unary, abs as absolute, add, divide, exp, isfinite, isnan,
    less_equal, log, log1p, logical_and, logical_not, logical_or, maximum, multiply, negative,
    sqrt, subtract,
)
from .manipulation import _cast
from .reductions import _no_out, all as reduce_all

__all__ = [
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
    "arctanh", "square", "reciprocal", "log2", "log10", "logaddexp", "isinf", "isclose",
    "allclose",
]


def _one_minus_square(x):
    return subtract(1, multiply(x, x))


tan = _unary("tan", lambda xp, x: xp.tan(x),
             lambda g, ans, x: multiply(g, add(1, multiply(ans, ans))),
             doc=_doc("Tangent elementwise.", "tan(np.array([0.0]))", "array([0.])"))
arcsin = _unary("arcsin", lambda xp, x: xp.arcsin(x),
                lambda g, ans, x: divide(g, sqrt(_one_minus_square(x))),
                doc=_doc("Inverse sine elementwise.", "arcsin(np.array([0.0]))", "array([0.])"))
arccos = _unary("arccos", lambda xp, x: xp.arccos(x),
                lambda g, ans, x: negative(divide(g, sqrt(_one_minus_square(x)))),
                doc=_doc("Inverse cosine elementwise.", "arccos(np.array([1.0]))",
                         "array([0.])"))
arctan = _unary("arctan", lambda xp, x: xp.arctan(x),
                lambda g, ans, x: divide(g, add(1, multiply(x, x))),
                doc=_doc("Inverse tangent elementwise.", "arctan(np.array([0.0]))",
                         "array([0.])"))
sinh = _unary("sinh", lambda xp, x: xp.sinh(x), lambda g, ans, x: multiply(g, cosh(x)),
              doc=_doc("Hyperbolic sine elementwise.", "sinh(np.array([0.0]))", "array([0.])"))
cosh = _unary("cosh", lambda xp, x: xp.cosh(x), lambda g, ans, x: multiply(g, sinh(x)),
              doc=_doc("Hyperbolic cosine elementwise.", "cosh(np.array([0.0]))",
                       "array([1.])"))
arcsinh = _unary("arcsinh", lambda xp, x: xp.arcsinh(x),
                 lambda g, ans, x: divide(g, sqrt(add(multiply(x, x), 1))),
                 doc=_doc("Inverse hyperbolic sine elementwise.", "arcsinh(np.array([0.0]))",
                          "array([0.])"))
arccosh = _unary("arccosh", lambda xp, x: xp.arccosh(x),
                 lambda g, ans, x: divide(g, sqrt(subtract(multiply(x, x), 1))),
                 doc=_doc("Inverse hyperbolic cosine elementwise.", "arccosh(np.array([1.0]))",
                          "array([0.])"))
arctanh = _unary("arctanh", lambda xp, x: xp.arctanh(x),
                 lambda g, ans, x: divide(g, _one_minus_square(x)),
                 doc=_doc("Inverse hyperbolic tangent elementwise.",
                          "arctanh(np.array([0.0]))", "array([0.])"))


def _arctan2_denominator(y, x):
    return add(multiply(x, x), multiply(y, y))


arctan2 = primitive(
    "arctan2", lambda xp, y, x: xp.arctan2(y, x), broadcast_rule("arctan2", to_float=True),
    (lambda g, ans, y, x: divide(multiply(g, x), _arctan2_denominator(y, x)),
     lambda g, ans, y, x: negative(divide(multiply(g, y), _arctan2_denominator(y, x)))),
    doc=_doc("The angle of the point ``(x2, x1)``, quadrant-aware (``x1`` is y, ``x2`` is x, "
             "as numpy).", "arctan2(np.array([1.0]), np.array([1.0]))", "array([0.78539816])"),
    signature=BINARY,
)


@named
def square(x: ArrayLike, /, out: None = None, *, dtype: DTypeLike | None = None) -> Array:
    """``x * x`` elementwise.

    >>> square(np.array([-2.0, 3.0]))
    array([4., 9.])
    """
    _no_out("square", out)
    x = as_operand(x)
    return _cast(multiply(x, x), dtype)


@named
def reciprocal(x: ArrayLike, /, out: None = None, *, dtype: DTypeLike | None = None) -> Array:
    """``1 / x`` elementwise (for integers numpy's integer reciprocal is not reproduced: the
    result is floating).

    >>> reciprocal(np.array([2.0, 4.0]))
    array([0.5 , 0.25])
    """
    _no_out("reciprocal", out)
    x = as_operand(x)
    return _cast(divide(1.0, x), dtype)


_LOG2_E = 1 / math.log(2.0)
_LOG10_E = 1 / math.log(10.0)


@named
def log2(x: ArrayLike, /, out: None = None, *, dtype: DTypeLike | None = None) -> Array:
    """Base-2 logarithm elementwise.

    >>> log2(np.array([1.0, 0.5]))
    array([ 0., -1.])
    """
    _no_out("log2", out)
    return _cast(multiply(log(as_operand(x)), _LOG2_E), dtype)


@named
def log10(x: ArrayLike, /, out: None = None, *, dtype: DTypeLike | None = None) -> Array:
    """Base-10 logarithm elementwise.

    >>> log10(np.array([1.0, 10.0]))
    array([0., 1.])
    """
    _no_out("log10", out)
    return _cast(multiply(log(as_operand(x)), _LOG10_E), dtype)


@named
def logaddexp(x1: ArrayLike, x2: ArrayLike, /, out: None = None, *,
              dtype: DTypeLike | None = None) -> Array:
    """``log(exp(x1) + exp(x2))`` without overflow.

    >>> logaddexp(np.array([1000.0]), np.array([1000.0]))
    array([1000.69314718])
    """
    _no_out("logaddexp", out)
    from .elementwise import where

    x1, x2 = as_operand(x1), as_operand(x2)
    top = maximum(x1, x2)
    gap = negative(absolute(subtract(x1, x2)))
    with np.errstate(invalid="ignore"):  # inf - inf: the answer is the infinity itself
        tail = log1p(exp(where(isnan(gap), -np.inf, gap)))
    return _cast(where(isfinite(top), add(top, tail), top), dtype)


@named
def isinf(x: ArrayLike, /, out: None = None, *, dtype: DTypeLike | None = None) -> Array:
    """Whether each element is positive or negative infinity.

    >>> isinf(np.array([np.inf, -np.inf, np.nan, 1.0]))
    array([ True,  True, False, False])
    """
    _no_out("isinf", out)
    x = as_operand(x)
    return _cast(logical_and(logical_not(isfinite(x)), logical_not(isnan(x))), dtype)


@named
def isclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Array:
    """Whether ``|a - b| <= atol + rtol * |b|`` elementwise (numpy's asymmetric test; equal
    infinities are close; NaNs only with ``equal_nan``).

    >>> isclose(np.array([1.0, 1.1]), 1.0)
    array([ True, False])
    """
    from .elementwise import equal

    a, b = as_operand(a), as_operand(b)
    with np.errstate(invalid="ignore"):
        near = less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))
    both_finite = logical_and(isfinite(a), isfinite(b))
    out = logical_or(logical_and(near, both_finite), equal(a, b))
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))
    return out


@named
def allclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> Array:
    """Whether every element of ``a`` is close to ``b`` (see :func:`isclose`).

    >>> bool(allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9])))
    True
    """
    return reduce_all(isclose(a, b, rtol, atol, equal_nan))


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
