"""Argument checks shared by the modules that take shapes, dtypes and integer settings.

``where`` is the qualified name of the public function (``"random.normal"``), which every
message starts with.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._dtypes import bfloat16, is_low_precision, is_real_floating
from .errors import AxonTypeError, InvalidArgumentError, ShapeError

_FLOATS = (np.float16, np.float32, np.float64)


def is_int(value):
    """True for Python and numpy integers, but not for bools."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real_scalar(value):
    """True for a concrete real number: a Python or numpy int or float, or a 0-d array of an
    integer or floating dtype; not for bools."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return hasattr(value, "shape") and hasattr(value, "dtype") and tuple(value.shape) == () and (
        np.dtype(value.dtype).kind in "iuf" or is_real_floating(value.dtype))


def shape_argument(shape, where):
    """``shape`` (an int or a sequence of non-negative ints) as a tuple of Python ints."""
    dims = (shape,) if is_int(shape) else shape
    if not (isinstance(dims, (tuple, list)) and all(is_int(d) and d >= 0 for d in dims)):
        raise ShapeError(f"{where}: `shape` must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def dtype_argument(dtype, where, floating=False):
    """``dtype`` as a numpy dtype (``"bfloat16"`` included); with ``floating``, one of
    float16, bfloat16, float32 or float64."""
    if isinstance(dtype, str) and dtype.lower() in ("bfloat16", "bf16"):
        try:
            return bfloat16()
        except AxonTypeError as err:
            raise AxonTypeError(f"{where}: {err}") from None
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise AxonTypeError(f"{where}: `dtype` {dtype!r} is not a numpy dtype") from err
    if floating and dtype not in _FLOATS and not is_low_precision(dtype):
        raise AxonTypeError(f"{where}: `dtype` must be float16, bfloat16, float32 or float64, "
                            f"got {dtype}")
    return dtype


def by_name(module, name, what, where, alternative):
    """The public function ``name`` of ``module`` (an activation, loss, metric or optimizer
    given by name); an InvalidArgumentError listing the choices and the ``alternative``."""
    choices = [n for n in module.__all__ if n[:1].islower() and callable(getattr(module, n))]
    if name not in choices:
        raise InvalidArgumentError(f"{where}: unknown {what} {name!r}; choose one of "
                                   f"{', '.join(choices)}, or {alternative}")
    return getattr(module, name)


def numeric_arguments(fn, where, names=("y_true", "y_pred")):
    """``fn`` refusing strings and objects in the arguments ``names`` (its first positional
    ones) with an AxonTypeError naming ``where`` and the argument, instead of numpy's
    ``UFuncTypeError`` from deep inside. The wrapper keeps ``fn``'s name, module and docstring.
    """
    import functools

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        for i, name in enumerate(names):
            value = args[i] if i < len(args) else kwargs.get(name)
            if value is not None:
                _check_numeric(where, name, value)
        return fn(*args, **kwargs)

    return checked


def _check_numeric(where, name, value):
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        if isinstance(value, (tuple, list)) and value and hasattr(value[0], "shape"):
            for item in value:  # a pair of arrays (margin_ranking)
                _check_numeric(where, name, item)
            return
        try:
            dtype = np.asarray(value).dtype
        except (TypeError, ValueError):
            dtype = np.dtype(object)
    if np.dtype(dtype).kind not in "biufc" and not is_real_floating(dtype):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise AxonTypeError(f"{where}: `{name}` must hold numbers, got {type(value).__name__} "
                            f"of dtype {np.dtype(dtype)}: {shown}")
