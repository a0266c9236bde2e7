"""Shape and dtype rules shared by the primitives.

A shape rule receives the op's positional arguments (``AbstractArray``s, concrete arrays or
Python scalars) and its static keyword arguments, and returns the ``AbstractArray`` of the result,
or raises :class:`ShapeError` naming the op and the shapes that do not fit.
"""

from __future__ import annotations

import functools

import numpy as np

from .._dtypes import is_floating, is_low_precision
from .._core import AbstractArray
from ..errors import AxonTypeError, ShapeError


def shape_of(x):
    """The shape of an array, abstract array or Python scalar (``()``)."""
    return tuple(getattr(x, "shape", ()))


def as_operand(a):
    """Arrays, tracers, abstract arrays and Python scalars as they are (scalars stay weakly
    typed, as numpy 2 treats them); nested lists and tuples as numpy arrays."""
    if type(a) is list or type(a) is tuple:
        return np.asarray(a)
    return a


def dtype_of(x):
    """The dtype of an array-like; Python scalars take numpy's default for their kind."""
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.result_type(x)


def result_dtype(*args):
    """numpy's promotion of the arguments, with Python scalars weakly typed (NEP 50)."""
    return np.result_type(*(a.dtype if hasattr(a, "dtype") else a for a in args))


def float_dtype(*args):
    """The promoted dtype, made floating (as numpy does for ``exp`` of integers)."""
    dtype = result_dtype(*args)
    return dtype if is_floating(dtype) else np.dtype(np.float64)


def broadcast_shapes(name, *shapes):
    """numpy broadcasting of ``shapes``, or a ShapeError naming the op and all shapes."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{name}: shapes {listed} cannot be broadcast together") from None


def normalize_axis(name, axis, ndim, *, argument="axis"):
    """An axis in ``[-ndim, ndim)`` made non-negative, or a ShapeError."""
    axis = int(axis)
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(f"{name}: {argument}={axis} is out of range for an array of rank {ndim}")
    return axis % max(ndim, 1)


def normalize_axes(name, axis, ndim):
    """``axis`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(name, a, ndim) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: repeated axis in axis={axis}")
    return axes


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# Common rule factories -----------------------------------------------------------------------

def same_rule(x, **_):
    """Result has the input's shape and dtype."""
    return AbstractArray(shape_of(x), dtype_of(x))


def float_unary_rule(x, **_):
    """Result has the input's shape and a floating dtype."""
    return AbstractArray(shape_of(x), float_dtype(x))


def broadcast_rule(name, *, to_float=False, to_bool=False):
    """Rule for an n-ary elementwise op with numpy broadcasting."""

    def rule(*args, **_):
        shape = broadcast_shapes(name, *(shape_of(a) for a in args))
        if to_bool:
            dtype = np.dtype(bool)
        elif to_float:
            dtype = float_dtype(*args)
        else:
            dtype = result_dtype(*args)
        return AbstractArray(shape, dtype)

    return rule


def reduction_rule(name, *, dtype=None):
    """Rule for a reduction with ``axis`` and ``keepdims``."""

    def rule(x, *, axis=None, keepdims=False, **_):
        shape = shape_of(x)
        axes = normalize_axes(name, axis, len(shape))
        out_dtype = dtype_of(x) if dtype is None else np.dtype(dtype)
        return AbstractArray(reduced_shape(shape, axes, keepdims), out_dtype)

    return rule


def require_float(name, x, argument="x"):
    if not is_floating(dtype_of(x)):
        raise AxonTypeError(f"{name}: {argument} must be a floating array, got dtype {dtype_of(x)}")


def in_float32(name):
    """Decorate a primitive's ``impl(xp, *arrays, **static)`` so that float16 and bfloat16
    inputs are computed in float32 (sums, products and matrix products accumulate there, and
    numpy's BLAS and axon_fn's C kernels take float32) and the floating results are rounded
    back to the dtype the op returns for its inputs (numpy's promotion: bfloat16 with bfloat16
    stays bfloat16). On numpy the float32 call goes through the primitive's CPU kernel, so a C
    override runs. Other dtypes call ``impl`` unchanged."""

    def wrap(impl):
        @functools.wraps(impl)
        def run(xp, *arrays, **static):
            for a in arrays:  # the usual float32/float64 call costs one attribute read
                if getattr(a, "itemsize", 8) == 2 and is_low_precision(a.dtype):
                    break
            else:
                return impl(xp, *arrays, **static)
            target = np.result_type(*(a.dtype for a in arrays
                                      if is_floating(getattr(a, "dtype", None))))
            wide = tuple(a.astype(np.float32) if is_low_precision(getattr(a, "dtype", "i1"))
                         else a for a in arrays)
            if xp is np:
                from .._core import PRIMITIVES

                out = PRIMITIVES[name].cpu(*wide, **static)
            else:
                out = impl(xp, *wide, **static)
            if not is_low_precision(target):
                return out
            if type(out) is tuple:
                return tuple(_narrow(o, target) for o in out)
            return _narrow(out, target)

        return run

    return wrap


def _narrow(out, target):
    """A floating result in ``target`` (float32 from the widened inputs, or float64 where a
    Python scalar operand became a numpy array); integer and boolean results as they are."""
    return out.astype(target) if out.dtype != target and is_floating(out.dtype) else out


def no_second_order(name):
    """A VJP rule for backward-pass primitives whose own gradient is not implemented."""

    def rule(*_, **__):
        from ..errors import TracerError

        raise TracerError(
            f"{name}: gradients of this op's gradient (second order) are not implemented; "
            "nested grad works through elementwise ops, reductions, shape ops and matmul"
        )

    rule.second_order_unsupported = True
    return rule


def canonical_axis(axis):
    """An ``axis`` setting as recorded: None, an int, or a tuple of ints (lists and numpy
    integers are accepted at the surface)."""
    kind = type(axis)
    if axis is None or kind is int:
        return axis
    if kind is tuple or kind is list:
        return tuple(a if type(a) is int else int(a) for a in axis)
    return int(axis)


canonical_axis.canonical_types = (type(None), int)


def canonical_shape(shape):
    """A ``shape`` setting as recorded: a tuple of ints (numpy also takes a bare int)."""
    if type(shape) is tuple:
        for d in shape:
            if type(d) is not int:
                return tuple(int(d) for d in shape)
        return shape
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


canonical_shape.canonical_types = (tuple,)


def named(fn):
    """Make the errors raised inside composite ``fn`` name ``fn`` (``mean: ...``, not
    ``sum: ...``), keeping their class (a ShapeError stays a ShapeError, hence a ValueError).

    The wrapper is built on ``fn``'s globals, so doctest still finds ``fn``'s docstring in its
    module.
    """
    import functools
    import types

    from ..errors import AxonError

    name = fn.__name__

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AxonError as err:
            message = err.args[0] if len(err.args) == 1 and isinstance(err.args[0], str) else ""
            prefix, sep, rest = message.partition(": ")
            if not sep or prefix == name or not prefix.isidentifier():
                raise
            try:
                renamed = type(err)(f"{name}: {rest}")
            except Exception:
                raise err from None
            raise renamed from err

    rebuilt = types.FunctionType(wrapper.__code__, fn.__globals__, name, None,
                                 wrapper.__closure__)
    return functools.wraps(fn)(rebuilt)


def primitive_doctests(namespace):
    """``__test__`` for a module defining primitives: their op functions are compiled outside
    the module (see :mod:`axon_fn._signature`), so doctest would not find their examples."""
    module = namespace["__name__"]
    return {name: fn.__doc__ for name, fn in list(namespace.items())
            if callable(fn) and hasattr(fn, "primitive") and ">>>" in (fn.__doc__ or "")
            and getattr(fn, "__globals__", namespace) is not namespace
            and getattr(fn.primitive.impl, "__module__", None) == module}
