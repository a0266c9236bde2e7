"""The primitives under ``ops.linalg``: solve, cholesky, qr, svd, eigh and slogdet, each with
the standard reverse-mode rule (written with ops, so second derivatives work).

A decomposition with several results is one primitive with a static ``part`` naming the result
it returns (``svd(a, part="s")``): the public function calls it once per result it needs. Each
part's rule is the joint rule with the other cotangents zero, which is exact because the joint
rule is linear in the cotangents. Batched (leading) axes work throughout.

>>> import numpy as np
>>> solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0]))
array([0.5 , 0.25])
"""

from __future__ import annotations

import numpy as np

from .._core import primitive
from .._dtypes import is_floating
from ..backend import array_module
from ..errors import AxonTypeError, ShapeError, TracerError
from ._rules import (
    AbstractArray, broadcast_shapes, dtype_of, float_dtype, in_float32, shape_of,
)
from .creation import zeros_like
from .elementwise import add, divide, multiply, negative, subtract, where
from .shape import expand_dims, squeeze, swapaxes

__all__ = ["solve", "cholesky", "qr_part", "svd_part", "eigh_part", "slogdet_part"]


def _mm(a, b):
    from .linalg import matmul

    return matmul(a, b)


def _t(x):
    return swapaxes(x, -1, -2)


def _eye(n, like):
    return array_module(like).eye(n, dtype=dtype_of(like))


def _square(name, a, argument="a"):
    shape = shape_of(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"{name}: {argument} must be a square matrix or a stack of them "
                         f"(shape (..., M, M)), got shape {shape}")
    return shape


def _matrix(name, a):
    shape = shape_of(a)
    if len(shape) < 2:
        raise ShapeError(f"{name}: a must have at least 2 dimensions (..., M, N), got shape "
                         f"{shape}")
    if not (np.issubdtype(dtype_of(a), np.number) or is_floating(dtype_of(a))) or np.issubdtype(
            dtype_of(a), np.complexfloating):
        raise AxonTypeError(f"{name}: a must be a real numeric array, got dtype {dtype_of(a)}")
    return shape


# solve -------------------------------------------------------------------------------------------


def _solve_rule(a, b):
    sa, sb = _square("solve", a), shape_of(b)
    m = sa[-1]
    if len(sb) == 1:
        if sb[0] != m:
            raise ShapeError(f"solve: b of shape {sb} does not fit a of shape {sa} (expected "
                             f"({m},))")
        return AbstractArray(sa[:-2] + (m,), float_dtype(a, b))
    if len(sb) < 2 or sb[-2] != m:
        raise ShapeError(f"solve: b must have shape ({m},) or (..., {m}, K) for a of shape {sa}, "
                         f"got {sb}")
    batch = broadcast_shapes("solve", sa[:-2], sb[:-2])
    return AbstractArray(batch + sb[-2:], float_dtype(a, b))


def _solve_db(g, x, a, b):
    if len(shape_of(b)) == 1:
        return squeeze(solve(_t(a), expand_dims(g, -1)), -1)
    return solve(_t(a), g)


def _solve_da(g, x, a, b):
    gb = _solve_db(g, x, a, b)
    if len(shape_of(b)) == 1:
        return negative(multiply(expand_dims(gb, -1), expand_dims(x, -2)))
    return negative(_mm(gb, _t(x)))


solve = primitive(
    "solve", in_float32("solve")(lambda xp, a, b: xp.linalg.solve(a, b)), _solve_rule,
    (_solve_da, _solve_db),
    doc="""The solution ``x`` of ``a @ x = b`` (``b`` a vector when 1-d, else a stack of
    matrices ``(..., M, K)``, as numpy 2).

    >>> solve(np.array([[1.0, 1.0], [0.0, 2.0]]), np.array([3.0, 2.0]))
    array([2., 1.])
    """,
    signature="a, b",
)


# cholesky ----------------------------------------------------------------------------------------


def _phi(x):
    """The lower triangle of ``x`` with its diagonal halved (self-adjoint)."""
    n = shape_of(x)[-1]
    xp = array_module(x)
    mask = xp.tril(xp.ones((n, n), dtype_of(x))) - 0.5 * xp.eye(n, dtype=dtype_of(x))
    return multiply(x, mask)


def _cholesky_vjp(g, ell, a):
    p = _phi(_mm(_t(ell), g))
    y = solve(_t(ell), p)  # L^-T P
    s = _t(solve(_t(ell), _t(y)))  # L^-T P L^-1
    return multiply(add(s, _t(s)), 0.5)


def _cholesky_rule(a):
    return AbstractArray(_square("cholesky", a), float_dtype(a))


cholesky = primitive(
    "cholesky", in_float32("cholesky")(lambda xp, a: xp.linalg.cholesky(a)), _cholesky_rule,
    (_cholesky_vjp,),
    doc="""The lower-triangular ``L`` with ``L @ L.T == a`` for a symmetric positive-definite
    ``a`` (only its lower triangle is read, as numpy; the gradient is the symmetric one).

    >>> cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    array([[2., 0.],
           [1., 1.]])
    """,
)


# qr ----------------------------------------------------------------------------------------------


def _qr_rule(a, *, mode, part):
    shape = _matrix("qr", a)
    m, n = shape[-2:]
    k = min(m, n)
    if mode not in ("reduced", "complete"):
        raise ShapeError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    q_cols, r_rows = (k, k) if mode == "reduced" else (m, m)
    if part == "q":
        return AbstractArray(shape[:-2] + (m, q_cols), float_dtype(a))
    return AbstractArray(shape[:-2] + (r_rows, n), float_dtype(a))


@in_float32("qr")
def _qr_impl(xp, a, *, mode, part):
    q, r = xp.linalg.qr(a, mode=mode)
    return q if part == "q" else r


def _qr_vjp(g, ans, a, *, mode, part):
    m, n = shape_of(a)[-2:]
    if m < n or (mode == "complete" and m != n):
        raise TracerError(f"qr: the gradient is implemented for a of shape (..., M, N) with "
                          f"M >= N in mode='reduced', got shape {shape_of(a)} in mode={mode!r}")
    q = _qr_part(a, mode=mode, part="q")
    r = _qr_part(a, mode=mode, part="r")
    gq = g if part == "q" else zeros_like(q)
    gr = g if part == "r" else zeros_like(r)
    from .arrange import tril

    mm = subtract(_mm(r, _t(gr)), _mm(_t(gq), q))
    copyltu = add(tril(mm), _t(tril(mm, -1)))
    b = add(gq, _mm(q, copyltu))
    return _t(solve(r, _t(b)))  # b @ R^-T


_qr_part = primitive("qr", _qr_impl, _qr_rule, (_qr_vjp,),
                     doc="One result (``part`` 'q' or 'r') of the QR decomposition.")
qr_part = _qr_part


# svd ---------------------------------------------------------------------------------------------


def _svd_rule(a, *, full_matrices, part):
    shape = _matrix("svd", a)
    m, n = shape[-2:]
    k = min(m, n)
    batch = shape[:-2]
    if part == "s":
        return AbstractArray(batch + (k,), float_dtype(a))
    if part == "u":
        return AbstractArray(batch + (m, m if full_matrices else k), float_dtype(a))
    return AbstractArray(batch + (n if full_matrices else k, n), float_dtype(a))


@in_float32("svd")
def _svd_impl(xp, a, *, full_matrices, part):
    if part == "s":
        return xp.linalg.svd(a, compute_uv=False)
    u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
    return u if part == "u" else vh


def _off_diagonal_inverse(d):
    """``F[..., i, j] = 1 / d[..., i, j]`` off the diagonal and 0 on it."""
    n = shape_of(d)[-1]
    off = ~array_module(d).eye(n, dtype=bool)
    safe = where(off, d, 1.0)
    return where(off, divide(1.0, safe), 0.0)


def _svd_vjp(g, ans, a, *, full_matrices, part):
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n and part != "s":
        raise TracerError("svd: the gradient of U or Vh with full_matrices=True is defined only "
                          f"for square matrices, got shape {shape_of(a)}; pass "
                          "full_matrices=False")
    u = _svd_part(a, full_matrices=False, part="u")
    vh = _svd_part(a, full_matrices=False, part="vh")
    if part == "s":  # the common case: U diag(gs) V^T
        return _mm(multiply(u, expand_dims(g, -2)), vh)
    s = _svd_part(a, full_matrices=False, part="s")
    v = _t(vh)
    s_row = expand_dims(s, -2)
    s_col = expand_dims(s, -1)
    f = _off_diagonal_inverse(subtract(multiply(s_row, s_row), multiply(s_col, s_col)))
    if part == "u":
        gu = g
        j = multiply(f, subtract(_mm(_t(u), gu), _mm(_t(gu), u)))
        inner = multiply(j, s_row)
        outer = subtract(gu, _mm(u, _mm(_t(u), gu)))  # (I - U U^T) gU
        return add(_mm(_mm(u, inner), vh), _mm(divide(outer, s_row), vh))
    gv = _t(g)
    k = multiply(f, subtract(_mm(_t(v), gv), _mm(_t(gv), v)))
    inner = multiply(s_col, k)
    outer = subtract(_t(gv), _mm(_mm(_t(gv), v), vh))  # gV^T (I - V V^T)
    return add(_mm(_mm(u, inner), vh), _mm(divide(u, s_row), outer))


_svd_part = primitive("svd", _svd_impl, _svd_rule, (_svd_vjp,),
                      doc="One result (``part`` 'u', 's' or 'vh') of the SVD.")
svd_part = _svd_part


# eigh --------------------------------------------------------------------------------------------


def _eigh_rule(a, *, UPLO, part):  # noqa: N803 - numpy's name
    shape = _square("eigh", a)
    if part == "w":
        return AbstractArray(shape[:-1], float_dtype(a))
    return AbstractArray(shape, float_dtype(a))


@in_float32("eigh")
def _eigh_impl(xp, a, *, UPLO, part):  # noqa: N803
    if part == "w":
        return xp.linalg.eigvalsh(a, UPLO=UPLO)
    return xp.linalg.eigh(a, UPLO=UPLO)[1]


def _eigh_vjp(g, ans, a, *, UPLO, part):  # noqa: N803
    v = _eigh_part(a, UPLO=UPLO, part="v")
    if part == "w":
        inner = multiply(_eye(shape_of(g)[-1], g), expand_dims(g, -2))
    else:
        w = _eigh_part(a, UPLO=UPLO, part="w")
        f = _off_diagonal_inverse(subtract(expand_dims(w, -2), expand_dims(w, -1)))
        inner = multiply(f, _mm(_t(v), g))
    ga = _mm(_mm(v, inner), _t(v))
    return multiply(add(ga, _t(ga)), 0.5)


_eigh_part = primitive("eigh", _eigh_impl, _eigh_rule, (_eigh_vjp,),
                       doc="One result (``part`` 'w' or 'v') of the symmetric eigendecomposition.")
eigh_part = _eigh_part


# slogdet -----------------------------------------------------------------------------------------


def _slogdet_rule(a, *, part):
    shape = _square("slogdet", a)
    return AbstractArray(shape[:-2], float_dtype(a))


@in_float32("slogdet")
def _slogdet_impl(xp, a, *, part):
    sign, logabsdet = xp.linalg.slogdet(a)
    return sign if part == "sign" else logabsdet


def _slogdet_vjp(g, ans, a, *, part):
    if part == "sign":
        return None  # piecewise constant
    n = shape_of(a)[-1]
    inverse_t = solve(_t(a), array_module(a).broadcast_to(_eye(n, a), shape_of(a)))
    return multiply(expand_dims(expand_dims(g, -1), -1), inverse_t)


_slogdet_part = primitive("slogdet", _slogdet_impl, _slogdet_rule, (_slogdet_vjp,),
                          doc="The sign or the log-magnitude of the determinant (``part``).")
slogdet_part = _slogdet_part


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
