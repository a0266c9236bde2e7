"""``ops.linalg``: matmul (batched, numpy semantics, on numpy's BLAS) and the functions of
``numpy.linalg`` (norm, inv, solve, det, slogdet, cholesky, qr, svd, eigh, pinv, matrix_power,
lstsq), differentiable with the standard rules. The decompositions are primitives in
:mod:`axon_fn.ops._decompositions`; the rest are compositions.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.matmul(np.ones((2, 3)), np.ones((3, 4))).shape
(2, 4)
"""

from __future__ import annotations

import operator
from collections import namedtuple

import numpy as np

from .._core import full_value, primitive
from ..backend import array_module
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..typing import Array, ArrayLike
from . import _decompositions as _dec
from ._decompositions import cholesky as _cholesky, solve
from ._rules import (
    AbstractArray, as_operand, broadcast_shapes, dtype_of, float_dtype, in_float32, named,
    normalize_axis, result_dtype, shape_of,
)
from .elementwise import divide, multiply, subtract, where
from .shape import expand_dims, reshape, squeeze, swapaxes


def _matmul_rule(x, y):
    xs, ys = shape_of(x), shape_of(y)
    if not xs or not ys:
        raise ShapeError(f"matmul: operands must have at least one dimension, got {xs} @ {ys}")
    xk = xs[-1]
    yk = ys[-2] if len(ys) > 1 else ys[0]
    if xk != yk:
        raise ShapeError(f"matmul: contracting dims differ: {xs} @ {ys}")
    batch = broadcast_shapes("matmul", xs[:-2], ys[:-2])
    out = batch + (xs[-2:-1] if len(xs) > 1 else ()) + (ys[-1:] if len(ys) > 1 else ())
    return AbstractArray(out, result_dtype(x, y))


def _matmul_dx(g, ans, x, y):
    if len(shape_of(y)) == 1:  # (..., k) @ (k,) -> (...)
        return multiply(expand_dims(g, axis=-1), y)
    if len(shape_of(x)) == 1:  # (k,) @ (..., k, n) -> (..., n)
        return squeeze(matmul(y, expand_dims(g, axis=-1)), axis=-1)
    return matmul(g, swapaxes(y))


def _matmul_dy(g, ans, x, y):
    if len(shape_of(x)) == 1:
        if len(shape_of(y)) == 1:
            return multiply(g, x)
        return multiply(expand_dims(x, axis=-1), expand_dims(g, axis=-2))
    if len(shape_of(y)) == 1:  # (..., m, k) @ (k,) -> (..., m)
        return squeeze(matmul(swapaxes(x), expand_dims(g, axis=-1)), axis=-1)
    return matmul(swapaxes(x), g)


_matmul_16 = in_float32("matmul")(lambda xp, x, y: xp.matmul(x, y))


def _matmul_impl(xp, x, y):
    if getattr(x, "itemsize", 8) != 2 and getattr(y, "itemsize", 8) != 2:
        return xp.matmul(x, y)  # the hot path of small models: no wrapper in between
    return _matmul_16(xp, x, y)  # float16/bfloat16: computed in float32


matmul = primitive(
    "matmul", _matmul_impl, _matmul_rule, (_matmul_dx, _matmul_dy),
    signature="x1, x2, /, out=None, *, dtype=None",
    doc="""Matrix product with numpy's rules: batched over leading axes, 1-d operands promoted.

    >>> matmul(np.ones((2, 3)), np.ones(3))
    array([3., 3.])
    """,
)


# numpy.linalg ------------------------------------------------------------------------------------

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])

__all__ = ["matmul", "norm", "inv", "solve", "det", "slogdet", "cholesky", "qr", "svd", "eigh",
           "pinv", "matrix_power", "lstsq"]


def _as_float(a):
    from .elementwise import astype

    a = as_operand(a)
    dtype = float_dtype(a)
    return a if dtype_of(a) == dtype else astype(a, dtype)


@named
def norm(x: ArrayLike, ord: int | float | str | None = None,  # noqa: A002 - numpy's name
         axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Array:
    """Vector or matrix norm, as ``numpy.linalg.norm``: vector orders (None/2, 1, inf, -inf, 0,
    any p) over one axis, matrix orders (None/'fro', 'nuc', 1, -1, 2, -2, inf, -inf) over two.
    Without ``axis``, a 1-d ``x`` takes a vector norm, a 2-d one a matrix norm, and with
    ``ord=None`` any ``x`` the 2-norm of all its elements. The gradient of the 2-norm at zero
    is NaN (the derivative of ``sqrt`` at 0), as in JAX.

    >>> float(norm(np.array([3.0, 4.0])))
    5.0
    >>> float(norm(np.array([[1.0, 2.0], [3.0, 4.0]]), 1))
    6.0
    """
    from .elementwise import abs as absolute, not_equal, power, sqrt
    from .reductions import max as rmax, min as rmin, sum as rsum

    x = _as_float(x)
    ndim = len(shape_of(x))
    if axis is None:
        if ord is None:
            out = sqrt(rsum(multiply(x, x)))
            return reshape(out, (1,) * ndim) if keepdims else out
        if ndim not in (1, 2):
            raise ShapeError(f"norm: ord={ord!r} needs a 1-d or 2-d x (or axis=), got shape "
                             f"{shape_of(x)}")
        axis = tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(normalize_axis("norm", a, ndim) for a in axes)
    if len(axes) == 1:
        a = axes[0]
        if ord is None or ord == 2:
            return sqrt(rsum(multiply(x, x), a, keepdims=keepdims))
        if ord == np.inf:
            return rmax(absolute(x), a, keepdims=keepdims)
        if ord == -np.inf:
            return rmin(absolute(x), a, keepdims=keepdims)
        if ord == 0:
            return rsum(not_equal(x, 0), a, dtype=dtype_of(x), keepdims=keepdims)
        if ord == 1:
            return rsum(absolute(x), a, keepdims=keepdims)
        if isinstance(ord, str):
            raise InvalidArgumentError(f"norm: ord={ord!r} is not a vector norm")
        return power(rsum(power(absolute(x), ord), a, keepdims=keepdims), 1.0 / ord)
    if len(axes) != 2 or axes[0] == axes[1]:
        raise ShapeError(f"norm: axis must name one or two distinct axes, got {axis!r}")
    r, c = axes
    if ord is None or ord == "fro":
        return sqrt(rsum(multiply(x, x), axes, keepdims=keepdims))
    if ord in ("nuc", 2, -2):
        from .arrange import moveaxis

        moved = moveaxis(x, (r, c), (-2, -1))
        s = svd(moved, compute_uv=False)
        out = rsum(s, -1) if ord == "nuc" else (rmax(s, -1) if ord == 2 else rmin(s, -1))
        return _keep(out, x, axes, keepdims)
    if ord in (1, -1, np.inf, -np.inf):
        summed_axis, other = (r, c) if ord in (1, -1) else (c, r)
        sums = rsum(absolute(x), summed_axis, keepdims=True)
        pick = rmax if ord in (1, np.inf) else rmin
        return _keep(pick(sums, other, keepdims=True), x, axes, keepdims, kept=True)
    raise InvalidArgumentError(f"norm: ord={ord!r} is not a matrix norm")


def _keep(out, x, axes, keepdims, kept=False):
    shape = shape_of(x)
    if keepdims:
        return reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shape)))
    if kept:
        return reshape(out, tuple(d for i, d in enumerate(shape) if i not in axes))
    return out


@named
def inv(a: ArrayLike) -> Array:
    """The inverse of a square matrix (or of each in a stack).

    >>> inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    a = _as_float(a)
    n = _dec._square("inv", a)[-1]
    return solve(a, _dec._eye(n, a))


@named
def slogdet(a: ArrayLike) -> tuple[Array, Array]:
    """``(sign, logabsdet)`` of the determinant, without overflow; the gradient flows through
    ``logabsdet``.

    >>> slogdet(np.array([[2.0, 0.0], [0.0, -3.0]]))
    SlogdetResult(sign=np.float64(-1.0), logabsdet=np.float64(1.791759469228055))
    """
    a = _as_float(a)
    return SlogdetResult(_dec.slogdet_part(a, part="sign"), _dec.slogdet_part(a, part="logabsdet"))


@named
def det(a: ArrayLike) -> Array:
    """The determinant (``sign * exp(logabsdet)``; the gradient is ``det * inv(a).T``, NaN for
    a singular ``a``).

    >>> round(float(det(np.array([[2.0, 1.0], [1.0, 3.0]]))), 12)
    5.0
    """
    from .elementwise import exp

    sign, logabsdet = slogdet(a)
    return multiply(sign, exp(logabsdet))


@named
def cholesky(a: ArrayLike, /, *, upper: bool = False) -> Array:
    """The Cholesky factor of a symmetric positive-definite ``a``: lower-triangular ``L`` with
    ``L @ L.T == a`` (``upper=True``: ``L.T``).

    >>> cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 0.],
           [1., 1.]])
    """
    ell = _cholesky(_as_float(a))
    return swapaxes(ell) if upper else ell


@named
def qr(a: ArrayLike, mode: str = "reduced") -> Array | tuple[Array, Array]:
    """The QR decomposition ``(Q, R)`` (``mode`` 'reduced', 'complete' or 'r', for which only
    ``R`` is returned). The gradient needs ``M >= N`` and mode 'reduced' or 'r'.

    >>> q, r = qr(np.array([[3.0, 0.0], [4.0, 1.0]]))
    >>> np.allclose(q @ r, [[3.0, 0.0], [4.0, 1.0]])
    True
    """
    a = _as_float(a)
    if mode == "r":
        return _dec.qr_part(a, mode="reduced", part="r")
    return QRResult(_dec.qr_part(a, mode=mode, part="q"), _dec.qr_part(a, mode=mode, part="r"))


@named
def svd(a: ArrayLike, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Array | tuple[Array, Array, Array]:
    """The singular value decomposition ``(U, S, Vh)`` with ``a == U @ diag(S) @ Vh``, or
    ``S`` alone when ``compute_uv=False``. Gradients of ``U`` and ``Vh`` need distinct
    singular values (and ``full_matrices=False`` for a matrix that is not square); the
    gradient of ``S`` alone is always defined.

    >>> svd(np.array([[3.0, 0.0], [0.0, -2.0]]), compute_uv=False)
    array([3., 2.])
    """
    if hermitian:
        raise AxonTypeError("svd: hermitian=True is not supported; use eigh for symmetric input")
    a = _as_float(a)
    s = _dec.svd_part(a, full_matrices=bool(full_matrices), part="s")
    if not compute_uv:
        return s
    return SVDResult(_dec.svd_part(a, full_matrices=bool(full_matrices), part="u"), s,
                     _dec.svd_part(a, full_matrices=bool(full_matrices), part="vh"))


@named
def eigh(a: ArrayLike, UPLO: str = "L") -> tuple[Array, Array]:  # noqa: N803 - numpy's name
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (only the ``UPLO``
    triangle is read). Gradients of the eigenvectors need distinct eigenvalues.

    >>> eigh(np.array([[2.0, 0.0], [0.0, 1.0]])).eigenvalues
    array([1., 2.])
    """
    if UPLO not in ("L", "U"):
        raise InvalidArgumentError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = _as_float(a)
    return EighResult(_dec.eigh_part(a, UPLO=UPLO, part="w"), _dec.eigh_part(a, UPLO=UPLO,
                                                                              part="v"))


def _cutoff(s, rcond, rtol, m, n):
    from .reductions import max as rmax

    if rcond is None and rtol is None:
        rtol = max(m, n) * np.finfo(dtype_of(s)).eps
    elif rtol is None:
        rtol = rcond
    return multiply(rtol, rmax(s, -1, keepdims=True))


@named
def pinv(a: ArrayLike, rcond: float | None = None, hermitian: bool = False, *,
         rtol: float | None = None) -> Array:
    """The Moore-Penrose pseudo-inverse, from the SVD with singular values at or below
    ``rtol * max(S)`` treated as zero (numpy's default ``rtol``: ``max(M, N) * eps``).

    >>> pinv(np.array([[2.0, 0.0], [0.0, 0.0]]))
    array([[0.5, 0. ],
           [0. , 0. ]])
    """
    from .elementwise import greater
    from ..autodiff.api import stop_gradient

    a = _as_float(a)
    m, n = _dec._matrix("pinv", a)[-2:]
    u, s, vh = svd(a, full_matrices=False)
    keep = greater(s, stop_gradient(_cutoff(s, rcond, rtol, m, n)))
    s_inv = where(keep, divide(1.0, where(keep, s, 1.0)), 0.0)
    return matmul(multiply(swapaxes(vh), expand_dims(s_inv, -2)), swapaxes(u))


@named
def matrix_power(a: ArrayLike, n: int) -> Array:
    """``a`` multiplied by itself ``n`` times (the inverse's powers for negative ``n``; the
    identity for 0), by repeated squaring.

    >>> matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 3)
    array([[1., 3.],
           [0., 1.]])
    """
    a = as_operand(a)
    size = _dec._square("matrix_power", a)[-1]
    n = operator.index(n)
    if n == 0:
        xp = array_module(a)
        return xp.broadcast_to(xp.eye(size, dtype=dtype_of(a)), shape_of(a)).copy()
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else matmul(result, a)
        n >>= 1
        if n:
            a = matmul(a, a)
    return result


@named
def lstsq(a: ArrayLike, b: ArrayLike,
          rcond: float | None = None) -> tuple[Array, Array, Array, Array]:
    """The least-squares solution of ``a @ x = b``: ``(x, residuals, rank, s)`` as numpy
    (``residuals``: squared residual norms per column when ``a`` has full column rank and more
    rows than columns, else empty). ``x`` is ``pinv(a) @ b``, differentiable in ``a`` and
    ``b``.

    >>> x, residuals, rank, s = lstsq(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    ...                               np.array([1.0, 2.0, 3.0]))
    >>> np.round(x, 6), int(rank)
    (array([1., 2.]), 2)
    """
    from ..autodiff.api import stop_gradient
    from .reductions import sum as rsum

    a, b = _as_float(a), _as_float(b)
    if len(shape_of(a)) != 2:
        raise ShapeError(f"lstsq: a must be 2-d, got shape {shape_of(a)}")
    m, n = shape_of(a)
    if shape_of(b)[:1] != (m,) or len(shape_of(b)) > 2:
        raise ShapeError(f"lstsq: b must have shape ({m},) or ({m}, K) for a of shape "
                         f"{shape_of(a)}, got {shape_of(b)}")
    s = svd(a, compute_uv=False)
    eps = np.finfo(dtype_of(a)).eps
    tol = (max(m, n) * eps if rcond is None else rcond)
    s_values = stop_gradient(s)
    concrete = full_value(s_values)
    concrete = concrete if type(concrete) is np.ndarray else None  # staged or abstract: unknown
    rank = None if concrete is None else np.int32(np.sum(concrete > tol * concrete.max(initial=0)))
    x = matmul(pinv(a, rcond=tol), b)
    if rank is not None and rank == n and m > n:
        r = subtract(matmul(a, x), b)
        residuals = rsum(multiply(r, r), 0)
        residuals = reshape(residuals, (1,)) if len(shape_of(b)) == 1 else residuals
    else:
        residuals = np.zeros((0,), dtype_of(a))
    return x, residuals, rank, s


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
