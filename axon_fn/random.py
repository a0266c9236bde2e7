"""Explicit-key pseudo-random numbers in JAX's style: every function is a pure function of its key.

A key is a numpy ``uint32`` array of shape ``(2,)``. Make one with :func:`key`, derive fresh ones
with :func:`split` or :func:`fold_in`, and never reuse a key for two different draws. A key moved
to the GPU (``axon_fn.device_put``) draws on the GPU: :func:`split`, :func:`fold_in`,
:func:`uniform`, :func:`normal` and :func:`bernoulli` then give the same values as on the host
without a transfer, so a training step with dropout never waits for the host.

The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011), the one JAX uses, laid out like JAX's original (non-partitionable)
scheme, so ``key``, ``split``, ``fold_in`` and float32/float64 ``uniform`` give JAX's bits. It is
a counter-based hash written with wrapping numpy integer arithmetic, so the numbers are the same
on every run, platform and numpy version. Normals go through an inverse CDF built only from
``+ - * /``, ``sqrt`` and ``frexp`` (all exact or correctly rounded in IEEE arithmetic), because
numpy's SIMD ``log``/``exp`` may differ in the last bit between CPUs.

>>> k = key(0)
>>> k
array([0, 0], dtype=uint32)
>>> split(k)
array([[4146024105,  967050713],
       [2718843009, 1272950319]], dtype=uint32)
>>> normal(split(k)[0], (2, 3)).shape
(2, 3)
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from ._checks import dtype_argument, is_int, shape_argument
from ._core import stageable
from .backend import array_module, is_gpu_array
from .errors import AxonTypeError, InvalidArgumentError, ShapeError
from .typing import Array, ArrayLike, DTypeLike, PRNGKey, Shape

__all__ = ["key", "split", "fold_in", "uniform", "normal", "truncated_normal", "bernoulli",
           "randint", "permutation", "choice"]


_MASK32 = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds, of the counter pairs ``(x0, x1)`` (uint32 arrays) under key
    ``(k0, k1)``. numpy array arithmetic wraps modulo 2**32 silently, which is what we want."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 += x1
            x1 = (x1 << r) | (x1 >> (32 - r))
            x1 ^= x0
        # Key injection; the constant is added separately so no numpy *scalar* can overflow
        # (scalar overflow warns, and warnings are errors in the test suite).
        x0 += ks[(i + 1) % 3]
        x1 += ks[(i + 2) % 3]
        x1 += np.uint32(i + 1)
    return x0, x1


def _words(k, count, where):
    """``count`` random uint32 words: Threefry of the counters 0..count-1, the first half of the
    counters in the first lane and the second half in the second (JAX's original layout)."""
    if count >= 2**32:
        raise InvalidArgumentError(f"random.{where}: cannot draw {count} words from one key; "
                                   "split the key and draw in smaller pieces")
    counters = array_module(k).arange(count + (count & 1), dtype=np.uint32)
    if count & 1:
        counters[-1] = 0  # JAX pads an odd count with a zero counter
    half = counters.size // 2
    y0, y1 = _threefry2x32(k[0], k[1], counters[:half], counters[half:])
    return array_module(k).concatenate([y0, y1])[:count]


def _bits(k, n, width, where):
    """``n`` random unsigned integers of ``width`` (32 or 64) bits."""
    if width == 32:
        return _words(k, n, where)
    words = _words(k, 2 * n, where)
    return (words[:n].astype(np.uint64) << np.uint64(32)) | words[n:].astype(np.uint64)


# Argument checking ----------------------------------------------------------------------------


def _is_array(k):
    return isinstance(k, np.ndarray) or is_gpu_array(k)


def _check_key(k, where):
    if _is_array(k) and k.dtype == np.uint32 and k.shape == (2,):
        return k
    if isinstance(k, (int, np.integer)):
        hint = f" Make a key from an integer seed with axon_fn.random.key({k!r})."
    elif _is_array(k) and k.dtype == np.uint32 and k.ndim == 2 and k.shape[1] == 2:
        hint = " This looks like the result of random.split: pick one key from it, e.g. keys[0]."
    else:
        hint = " Make one with axon_fn.random.key(seed)."
    got = (f"{type(k).__name__} of dtype {k.dtype} and shape {k.shape}"
           if hasattr(k, "dtype") and hasattr(k, "shape") else f"{type(k).__name__} {k!r}")
    raise AxonTypeError(f"random.{where}: `key` must be a PRNG key, a numpy uint32 array of "
                        f"shape (2,); got {got}.{hint}")


def _shape(shape, where):
    return shape_argument(shape, f"random.{where}")


def _fits(shape, where, **arrays):
    """Check that each named argument broadcasts to the output ``shape``."""
    for name, value in arrays.items():
        got = np.shape(value)
        try:
            ok = np.broadcast_shapes(shape, got) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"random.{where}: `{name}` of shape {got} does not broadcast to "
                             f"the output shape {shape}")


def _parameter_for(k, value, dtype):
    """A parameter next to draws from key ``k``: a numpy scalar when 0-d (CuPy takes those by
    value, no transfer), else an array on ``k``'s device."""
    value = np.asarray(value, dtype)
    if value.ndim == 0:
        return value[()]
    return array_module(k).asarray(value)


def _dtype(dtype, where, floating=True):
    return dtype_argument(dtype, f"random.{where}", floating)


def _axis(axis, ndim, where):
    if not is_int(axis) or not -ndim <= axis < ndim:
        raise ShapeError(f"random.{where}: `axis` {axis!r} is out of range for an array of "
                         f"{ndim} dimension(s)")
    return int(axis) % ndim


def _seed_words(value, where, name):
    """The high and low 32-bit words of a 64-bit integer, as a uint32 array of shape (2,)."""
    if not is_int(value):
        raise AxonTypeError(f"random.{where}: `{name}` must be an int, got "
                            f"{type(value).__name__} {value!r}")
    value = int(value)
    if not -2**63 <= value < 2**64:
        raise InvalidArgumentError(f"random.{where}: `{name}` {value} does not fit in 64 bits")
    return np.array([(value >> 32) & _MASK32, value & _MASK32], dtype=np.uint32)


# Keys -----------------------------------------------------------------------------------------


def key(seed: int) -> PRNGKey:
    """A PRNG key from an integer seed: the seed's high and low 32-bit words.

    >>> key(42)
    array([ 0, 42], dtype=uint32)
    """
    return _seed_words(seed, "key", "seed")


@stageable
def split(key: PRNGKey, num: int = 2) -> Array:
    """``num`` new independent keys, as an array of shape ``(num, 2)``.

    >>> a, b = split(key(0))
    >>> bool((a != b).any())
    True
    """
    k = _check_key(key, "split")
    if not is_int(num) or num < 0:
        raise InvalidArgumentError(f"random.split: `num` must be a non-negative int, got {num!r}")
    return _words(k, 2 * int(num), "split").reshape(int(num), 2)


@stageable
def fold_in(key: PRNGKey, data: int) -> PRNGKey:
    """A new key derived from ``key`` and the integer ``data`` (e.g. a step or layer index).

    >>> fold_in(key(0), 1).shape
    (2,)
    >>> bool((fold_in(key(0), 1) == fold_in(key(0), 2)).all())
    False
    """
    k = _check_key(key, "fold_in")
    xp = array_module(k)
    # As JAX: hash the pair key(data) would make, as one counter block. The counters are made
    # where the key lives (xp.full takes the word by value: no host-to-device copy).
    x0, x1 = (xp.full((1,), word, np.uint32) for word in _seed_words(data, "fold_in", "data"))
    y0, y1 = _threefry2x32(k[0], k[1], x0, x1)
    return xp.concatenate([y0, y1])


# Floating-point draws -------------------------------------------------------------------------


def _unit(k, shape, dtype, where):
    """Uniform draws in [0, 1) that are exact multiples of 2**-nmant in ``dtype``: the top
    mantissa-width bits of a 32-bit (float16/32) or 64-bit (float64) word."""
    nmant = np.finfo(dtype).nmant
    width = 64 if nmant > 23 else 32
    bits = _bits(k, math.prod(shape), width, where) >> (width - nmant)
    return (bits.astype(np.float64) * 2.0**-nmant).astype(dtype).reshape(shape)


def _open_unit(k, shape, where):
    """float64 draws in the open interval (0, 1), symmetric under u -> 1 - u: (m + 1/2) / 2**52
    for a 52-bit m (exact), so an inverse CDF never sees 0 or 1 and both tails reach ~8.1."""
    m = _bits(k, math.prod(shape), 64, where) >> 12
    return ((m.astype(np.float64) + 0.5) * 2.0**-52).reshape(shape)


@stageable
def uniform(key: PRNGKey, shape: Shape = (), dtype: DTypeLike = "float32",
            minval: ArrayLike = 0.0, maxval: ArrayLike = 1.0) -> Array:
    """Uniform floats in ``[minval, maxval)``; ``minval``/``maxval`` broadcast to ``shape``.

    >>> u = uniform(key(0), (1000,))
    >>> bool(u.min() >= 0.0 and u.max() < 1.0), u.dtype
    (True, dtype('float32'))
    """
    k = _check_key(key, "uniform")
    shape = _shape(shape, "uniform")
    dtype = _dtype(dtype, "uniform")
    _fits(shape, "uniform", minval=minval, maxval=maxval)
    lo, hi = np.asarray(minval, dtype), np.asarray(maxval, dtype)
    if not np.all(lo < hi):
        raise InvalidArgumentError(f"random.uniform: need minval < maxval, got minval={minval!r}"
                                   f" and maxval={maxval!r}")
    u = _unit(k, shape, dtype, "uniform")
    with np.errstate(over="ignore"):  # hi - lo may overflow for huge ranges; clamped below
        lo, span, top = (_parameter_for(k, v, dtype) for v in (lo, hi - lo, np.nextafter(hi, lo)))
        out = u * span + lo
    # Rounding of the scaled value can land on maxval itself; the interval is half-open.
    return array_module(k).asarray(array_module(k).clip(out, lo, top), dtype)


def _log(x):
    """Natural log of positive float64 values using only exact or correctly rounded operations,
    so it gives the same bits on every CPU (error about 1e-16 relative)."""
    m, e = np.frexp(x)
    low = m < 0.7071067811865476
    m = np.where(low, 2.0 * m, m)  # now m in [sqrt(1/2), sqrt(2))
    e = (e - low).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = 1.0 / 27.0  # log(m) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...), |s| < 0.172
    for n in range(25, 0, -2):
        acc = acc * s2 + 1.0 / n
    # ln 2 split in two (fdlibm) so e * ln2_hi is exact.
    return e * 6.93147180369123816490e-01 + (2.0 * s * acc + e * 1.90821492927058770002e-10)


# Wichura's AS241 (PPND16) rational approximations of the normal quantile, highest power first.
_A = (2509.0809287301226727, 33430.575583588128105, 67265.770927008700853,
      45921.953931549871457, 13731.693765509461125, 1971.5909503065514427,
      133.14166789178437745, 3.387132872796366608)
_B = (5226.495278852545925, 28729.085735721942674, 39307.89580009271061,
      21213.794301586595867, 5394.1960214247511077, 687.1870074920579083,
      42.313330701600911252, 1.0)
_C = (7.7454501427834140764e-4, 0.0227238449892691845833, 0.24178072517745061177,
      1.27045825245236838258, 3.64784832476320460504, 5.7694972214606914055,
      4.6303378461565452959, 1.42343711074968357734)
_D = (1.05075007164441684324e-9, 5.475938084995344946e-4, 0.0151986665636164571966,
      0.14810397642748007459, 0.68976733498510000455, 1.6763848301838038494,
      2.05319162663775882187, 1.0)
_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 0.0012426609473880784386,
      0.026532189526576123093, 0.29656057182850489123, 1.7848265399172913358,
      5.4637849111641143699, 6.6579046435011037772)
_F = (2.04426310338993978564e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5,
      7.868691311456132591e-4, 0.0148753612908506148525, 0.13692988092273580531,
      0.59983220655588793769, 1.0)


def _poly(coeffs, x):
    return functools.reduce(lambda acc, c: acc * x + c, coeffs[1:], coeffs[0])


def _ndtri(p):
    """The standard normal quantile of float64 ``p`` in [0, 1], to about 1e-16 relative."""
    if is_gpu_array(p):
        return _ndtri_branchless(p)
    p = np.asarray(p, np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    # Each rational branch runs only on its own elements (the tails are ~15% of draws).
    central = np.abs(q) <= 0.425
    qc = q[central]
    r = 0.180625 - qc * qc
    out[central] = qc * _poly(_A, r) / _poly(_B, r)
    tail = ~central
    pt, qt = p[tail], q[tail]
    t = np.minimum(pt, 1.0 - pt)  # 1 - p is exact where it is the smaller one
    r = np.sqrt(-_log(np.maximum(t, 1e-300)))
    value = np.empty_like(r)
    near = r <= 5.0
    value[near] = _poly(_C, r[near] - 1.6) / _poly(_D, r[near] - 1.6)
    value[~near] = _poly(_E, r[~near] - 5.0) / _poly(_F, r[~near] - 5.0)
    value[t == 0] = np.inf
    out[tail] = np.where(qt < 0, -value, value)
    return out


def _ndtri_branchless(p):
    """:func:`_ndtri` with every branch computed everywhere and selected elementwise: the
    same values, without boolean-mask indexing (which makes CuPy wait to learn a size)."""
    xp = array_module(p)
    q = p - 0.5
    central = xp.abs(q) <= 0.425
    r = 0.180625 - q * q
    inner = q * _poly(_A, r) / _poly(_B, r)
    t = xp.minimum(p, 1.0 - p)
    r = xp.sqrt(-_log(xp.maximum(t, 1e-300)))
    value = xp.where(r <= 5.0, _poly(_C, r - 1.6) / _poly(_D, r - 1.6),
                     _poly(_E, r - 5.0) / _poly(_F, r - 5.0))
    value = xp.where(t == 0, np.inf, value)
    return xp.where(central, inner, xp.where(q < 0, -value, value))


@stageable
def normal(key: PRNGKey, shape: Shape = (), dtype: DTypeLike = "float32",
           mean: ArrayLike = 0.0, stddev: ArrayLike = 1.0) -> Array:
    """Normal draws (by inverse CDF from 52-bit uniforms, computed in float64).

    >>> z = normal(key(0), (10000,))
    >>> z.dtype, bool(abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05)
    (dtype('float32'), True)
    """
    k = _check_key(key, "normal")
    shape = _shape(shape, "normal")
    dtype = _dtype(dtype, "normal")
    _fits(shape, "normal", mean=mean, stddev=stddev)
    if not np.all(np.asarray(stddev, np.float64) >= 0):
        raise InvalidArgumentError(f"random.normal: `stddev` must be >= 0, got {stddev!r}")
    z = _ndtri(_open_unit(k, shape, "normal"))
    if not (np.ndim(mean) == 0 and mean == 0 and np.ndim(stddev) == 0 and stddev == 1):
        z = z * _parameter_for(k, stddev, np.float64) + _parameter_for(k, mean, np.float64)
    return array_module(k).asarray(z, dtype)


def _ndtr(x):
    """The standard normal CDF via erfc, which keeps its relative accuracy in the lower tail."""
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(x * -0.7071067811865476)


@stageable
def truncated_normal(key: PRNGKey, lower: ArrayLike = -2.0, upper: ArrayLike = 2.0,
                     shape: Optional[Shape] = None, dtype: DTypeLike = "float32") -> Array:
    """Standard normal draws conditioned on ``[lower, upper]`` (by inverse CDF).

    ``shape=None`` means the broadcast shape of ``lower`` and ``upper``. The bounds' CDF values
    come from the platform's ``erfc``; the draws are exact functions of those.

    >>> z = truncated_normal(key(0), -2.0, 2.0, (1000,))
    >>> bool(z.min() >= -2.0 and z.max() <= 2.0)
    True
    """
    k = _check_key(key, "truncated_normal")
    dtype = _dtype(dtype, "truncated_normal")
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    if shape is None:
        shape = np.broadcast_shapes(lower.shape, upper.shape)
    shape = _shape(shape, "truncated_normal")
    _fits(shape, "truncated_normal", lower=lower, upper=upper)
    if not np.all(lower < upper):
        raise InvalidArgumentError(f"random.truncated_normal: need lower < upper, got "
                                   f"lower={lower.tolist()!r} and upper={upper.tolist()!r}")
    # Work in the lower half (flip intervals lying above 0): CDF values near 1 lose precision.
    flip = lower > 0
    lo, hi = np.where(flip, -upper, lower), np.where(flip, -lower, upper)
    p_lo, p_hi = _ndtr(lo), _ndtr(hi)
    u = _open_unit(k, shape, "truncated_normal")
    z = np.clip(_ndtri(p_lo + (p_hi - p_lo) * u), lo, hi)
    out = np.asarray(np.where(flip, -z, z), dtype)
    return np.asarray(np.clip(out, lower.astype(dtype), upper.astype(dtype)), dtype)


# Discrete draws -------------------------------------------------------------------------------


@stageable
def bernoulli(key: PRNGKey, p: ArrayLike = 0.5, shape: Optional[Shape] = None) -> Array:
    """Booleans that are True with probability ``p`` (``shape=None``: the shape of ``p``).

    >>> bernoulli(key(0), 0.5, (4,)).dtype
    dtype('bool')
    >>> bool(bernoulli(key(0), 1.0, (100,)).all()), bool(bernoulli(key(0), 0.0, (100,)).any())
    (True, False)
    """
    k = _check_key(key, "bernoulli")
    p = np.asarray(p, np.float64)
    if not np.all((p >= 0) & (p <= 1)):
        raise InvalidArgumentError(f"random.bernoulli: `p` must lie in [0, 1], got {p.tolist()!r}")
    shape = p.shape if shape is None else _shape(shape, "bernoulli")
    _fits(shape, "bernoulli", p=p)
    # 32-bit draws scaled to [0, 1) are exact in float64; u < p has probability ceil(p 2^32)/2^32.
    u = _bits(k, math.prod(shape), 32, "bernoulli").astype(np.float64) * 2.0**-32
    return array_module(k).asarray(u.reshape(shape) < _parameter_for(k, p, np.float64))


@stageable
def randint(key: PRNGKey, shape: Shape, minval: ArrayLike, maxval: ArrayLike,
            dtype: DTypeLike = "int32") -> Array:
    """Integers in ``[minval, maxval)`` (bounds broadcast to ``shape``). Each value is a 64-bit
    draw modulo the span, so the bias is below ``span / 2**64``.

    >>> r = randint(key(0), (1000,), 3, 7)
    >>> sorted(set(r.tolist())), r.dtype
    ([3, 4, 5, 6], dtype('int32'))
    """
    k = _check_key(key, "randint")
    shape = _shape(shape, "randint")
    dtype = _dtype(dtype, "randint", floating=False)
    lo, hi = np.asarray(minval), np.asarray(maxval)
    if dtype.kind not in "iu" or lo.dtype.kind not in "iu" or hi.dtype.kind not in "iu":
        raise AxonTypeError(f"random.randint: `dtype`, `minval` and `maxval` must be integers, "
                            f"got dtype {dtype}, minval {minval!r}, maxval {maxval!r}")
    _fits(shape, "randint", minval=lo, maxval=hi)
    info = np.iinfo(dtype)
    if not np.all(lo < hi) or np.any(lo < info.min) or np.any(hi > min(info.max, 2**63 - 2) + 1):
        raise InvalidArgumentError(f"random.randint: need {info.min} <= minval < maxval <= "
                                   f"{info.max} + 1 for {dtype}, got minval={minval!r} and "
                                   f"maxval={maxval!r}")
    # 1-d uint64 arrays: wrapping array arithmetic handles negative bounds without warnings.
    lo = np.broadcast_to(lo, shape).astype(np.int64).ravel().astype(np.uint64)
    span = np.broadcast_to(hi, shape).astype(np.int64).ravel().astype(np.uint64) - lo
    out = lo + _bits(k, math.prod(shape), 64, "randint") % span
    return out.view(np.int64).astype(dtype).reshape(shape)


def _shuffled_indices(k, n, where):
    # A stable sort of 64-bit keys is a uniform permutation up to (vanishing) ties, and is
    # deterministic even when ties occur.
    return np.argsort(_bits(k, n, 64, where), kind="stable").astype(np.int64)


def _population(a, axis, where):
    """(n, array or None, axis) for ``a``: a count, or an array sampled along ``axis``."""
    if is_int(a):
        if a < 0:
            raise InvalidArgumentError(f"random.{where}: the population size must be >= 0, "
                                       f"got {a}")
        return int(a), None, 0
    xp = array_module(a)
    arr = xp.asarray(a)
    if arr.ndim == 0:
        raise ShapeError(f"random.{where}: expected an int or an array with at least one "
                         "dimension, got a 0-d array")
    axis = _axis(axis, arr.ndim, where)
    return arr.shape[axis], arr, axis


def _take(arr, indices, axis):
    if arr is None:
        return indices
    xp = array_module(arr)
    return xp.take(arr, xp.asarray(indices), axis=axis)


@stageable
def permutation(key: PRNGKey, x: ArrayLike, axis: int = 0) -> Array:
    """A random permutation of ``arange(x)`` (``x`` an int), or ``x`` shuffled along ``axis``.

    >>> sorted(permutation(key(0), 5).tolist())
    [0, 1, 2, 3, 4]
    >>> permutation(key(0), np.arange(6).reshape(3, 2)).shape
    (3, 2)
    """
    k = _check_key(key, "permutation")
    n, arr, axis = _population(x, axis, "permutation")
    return _take(arr, _shuffled_indices(k, n, "permutation"), axis)


@stageable
def choice(key: PRNGKey, a: ArrayLike, shape: Shape = (), replace: bool = True,
           p: Optional[ArrayLike] = None, axis: int = 0) -> Array:
    """Random elements of ``arange(a)`` (``a`` an int) or of the array ``a`` along ``axis``.

    ``p`` gives the weight of each element (normalized here; non-negative with a positive sum).
    Without replacement, weighted draws follow sequential sampling (Efraimidis-Spirakis keys).

    >>> sorted(choice(key(0), 10, (10,), replace=False).tolist()) == list(range(10))
    True
    >>> choice(key(0), np.array([1.0, 2.0]), (3,), p=np.array([0.0, 1.0])).tolist()
    [2.0, 2.0, 2.0]
    """
    k = _check_key(key, "choice")
    shape = _shape(shape, "choice")
    n, arr, axis = _population(a, axis, "choice")
    count = math.prod(shape)
    if p is not None:
        p = np.asarray(p, np.float64)
        if p.shape != (n,):
            raise ShapeError(f"random.choice: `p` must have shape ({n},), one weight per "
                             f"element, got {p.shape}")
        if not (np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0):
            raise InvalidArgumentError("random.choice: `p` must be finite and non-negative with "
                                       "a positive sum")
    available = n if p is None else int(np.count_nonzero(p))
    if count > 0 and (available == 0 or (not replace and count > available)):
        raise InvalidArgumentError(
            f"random.choice: cannot draw {count} element(s) {'with' if replace else 'without'} "
            f"replacement from {available} element(s) with non-zero probability")
    if replace and p is None:
        idx = randint(k, (count,), 0, max(n, 1), dtype=np.int64)
    elif replace:
        cdf = np.cumsum(p)
        u = _unit(k, (count,), np.float64, "choice") * cdf[-1]
        # A rounding excess past the total maps to the last element that can be drawn.
        idx = np.minimum(np.searchsorted(cdf, u, side="right"), np.flatnonzero(p)[-1])
    elif p is None:
        idx = _shuffled_indices(k, n, "choice")[:count]
    else:
        # The count largest of log(u_i) / p_i are a weighted draw without replacement.
        positive = p > 0
        keys = np.where(positive, _log(_open_unit(k, (n,), "choice")) / np.where(positive, p, 1),
                        -np.inf)
        idx = np.argsort(-keys, kind="stable")[:count]
    return _take(arr, np.asarray(idx, np.int64).reshape(shape), axis)


# Each draw is @stageable: inside axon_fn.jit it is one recorded step, computed from the key's
# value at replay. doctest skips the wrappers (they belong to _core's globals), so list them.
__test__ = {name: globals()[name].__wrapped__ for name in __all__
            if hasattr(globals()[name], "__wrapped__")}
