"""Running products and the NaN-ignoring reductions: cumprod, nansum, nanmean, nanmax, nanmin.

All are compositions of primitives. ``cumprod`` multiplies, for each position, the prefix of
elements up to it through ``prod``, whose gradient is exact also where elements are zero (a
quadratic amount of work in the axis length: meant for the short axes of models, not for
long series).

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.nanmean(np.array([1.0, np.nan, 3.0]))
np.float64(2.0)
"""

from __future__ import annotations

import numpy as np

from .._dtypes import is_floating
from ..backend import array_module
from ..typing import Array, ArrayLike, DTypeLike
from ._rules import as_operand, dtype_of, named, shape_of
from .elementwise import divide, isnan, logical_not, where
from .reductions import (
    _no_out, _scan_operand, max as reduce_max, min as reduce_min, prod, sum as reduce_sum,
)
from .shape import expand_dims, swapaxes

__all__ = ["cumprod", "nansum", "nanmean", "nanmax", "nanmin"]


@named
def cumprod(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
            out: None = None) -> Array:
    """Running product along ``axis`` (of the flattened ``a`` when None, as numpy).

    >>> cumprod(np.array([1.0, 2.0, 3.0, 0.0]))
    array([1., 2., 6., 0.])
    """
    a, axis = _scan_operand("cumprod", a, axis, dtype, out)
    n = shape_of(a)[axis]
    moved = swapaxes(a, axis, -1)  # (..., n)
    # prefix[..., j, i] = a[..., i] for i <= j, else 1; its product over i is the running product
    xp = array_module(a)
    upto = xp.tril(xp.ones((n, n), dtype=bool))
    prefix = where(upto, expand_dims(moved, -2), 1)
    return swapaxes(prod(prefix, axis=-1), axis, -1)


def _nan_filled(name, a, fill):
    a = as_operand(a)
    if not is_floating(dtype_of(a)):
        return a, None
    missing = isnan(a)
    return where(missing, fill, a), missing


@named
def nansum(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
           out: None = None, keepdims: bool = False) -> Array:
    """Sum over ``axis`` treating NaNs as zero.

    >>> nansum(np.array([1.0, np.nan, 3.0]))
    np.float64(4.0)
    """
    filled, _ = _nan_filled("nansum", a, 0)
    return reduce_sum(filled, axis, dtype, out, keepdims)


@named
def nanmean(a: ArrayLike, axis: int | tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
            out: None = None, keepdims: bool = False) -> Array:
    """Mean over ``axis`` of the elements that are not NaN (NaN where all are).

    >>> nanmean(np.array([[1.0, np.nan], [2.0, 4.0]]), 1)
    array([1., 3.])
    """
    _no_out("nanmean", out)
    filled, missing = _nan_filled("nanmean", a, 0)
    if missing is None:
        from .reductions import mean

        return mean(filled, axis, dtype, None, keepdims)
    dtype = dtype_of(filled) if dtype is None else np.dtype(dtype)
    total = reduce_sum(filled, axis, dtype, None, keepdims)
    count = reduce_sum(logical_not(missing), axis, dtype, None, keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(total, count)


@named
def nanmax(a: ArrayLike, axis: int | tuple[int, ...] | None = None, out: None = None,
           keepdims: bool = False) -> Array:
    """Largest element over ``axis`` ignoring NaNs (NaN where all are).

    >>> float(nanmax(np.array([1.0, np.nan, 3.0])))
    3.0
    """
    return _nan_extreme(reduce_max, -np.inf, a, axis, out, keepdims)


@named
def nanmin(a: ArrayLike, axis: int | tuple[int, ...] | None = None, out: None = None,
           keepdims: bool = False) -> Array:
    """Smallest element over ``axis`` ignoring NaNs (NaN where all are).

    >>> float(nanmin(np.array([1.0, np.nan, 3.0])))
    1.0
    """
    return _nan_extreme(reduce_min, np.inf, a, axis, out, keepdims)


def _nan_extreme(reduce, fill, a, axis, out, keepdims):
    _no_out(reduce.__name__, out)
    filled, missing = _nan_filled(reduce.__name__, a, fill)
    result = reduce(filled, axis, None, keepdims)
    if missing is None:
        return result
    from .reductions import all as reduce_all

    return where(reduce_all(missing, axis, None, keepdims), np.nan, result)
