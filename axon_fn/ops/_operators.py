"""Array-like operators and methods for traced and abstract values.

Installed on :class:`Tracer`, :class:`Staged` and :class:`AbstractArray` so code written for numpy arrays
(``x + y``, ``x @ w``, ``x.sum(axis=1)``, ``x.T``, ``x[idx]``) records on the tape or infers shapes.
"""

from __future__ import annotations

from .._core import AbstractArray, Staged, Tracer
from . import elementwise as ew
from . import linalg, reductions, shape


def _flip(fn):
    return lambda self, other: fn(other, self)


def _reshape(self, *shape, order="C", **kw):
    if "shape" in kw:
        shape = kw["shape"]
    elif len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return shape_ops.reshape(self, shape, order)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return shape_ops.transpose(self, axes=axes or None)


shape_ops = shape


def _round(self, decimals=0):
    return ew.round(self, decimals)


_METHODS = {
    "__add__": ew.add, "__radd__": _flip(ew.add),
    "__sub__": ew.subtract, "__rsub__": _flip(ew.subtract),
    "__mul__": ew.multiply, "__rmul__": _flip(ew.multiply),
    "__truediv__": ew.divide, "__rtruediv__": _flip(ew.divide),
    "__floordiv__": ew.floor_divide, "__rfloordiv__": _flip(ew.floor_divide),
    "__mod__": ew.mod, "__rmod__": _flip(ew.mod),
    "__pow__": ew.power, "__rpow__": _flip(ew.power),
    "__matmul__": linalg.matmul, "__rmatmul__": _flip(linalg.matmul),
    "__neg__": ew.negative, "__pos__": lambda self: self, "__abs__": ew.abs,
    "__lt__": ew.less, "__le__": ew.less_equal, "__gt__": ew.greater, "__ge__": ew.greater_equal,
    "__eq__": ew.equal, "__ne__": ew.not_equal,
    "__and__": ew.logical_and, "__or__": ew.logical_or, "__xor__": ew.logical_xor,
    "__invert__": ew.logical_not,
    # plain functions bind as methods: ``x.sum(1)`` is ``sum(x, 1)``, numpy's arguments and all
    "sum": reductions.sum, "mean": reductions.mean, "max": reductions.max, "min": reductions.min,
    "prod": reductions.prod, "var": reductions.var, "std": reductions.std,
    "cumsum": reductions.cumsum, "argmax": reductions.argmax, "argmin": reductions.argmin,
    "clip": ew.clip, "squeeze": shape.squeeze,
    "ravel": lambda self, order="C": shape.reshape(self, (-1,), order),
    "flatten": lambda self, order="C": shape.reshape(self, (-1,), order),
    "dot": lambda self, b, out=None: _dot()(self, b),
    "round": _round,
    "astype": lambda self, dtype, *args, **kwargs: ew.astype(self, dtype, *args, **kwargs),
    "reshape": _reshape,
    "transpose": _transpose,
    "T": property(lambda self: shape.transpose(self)),
}


def _dot():
    from .einsum import dot

    return dot


def install():
    for name, fn in _METHODS.items():
        setattr(Tracer, name, fn)
        setattr(Staged, name, fn)
        if name not in ("__eq__", "__ne__"):
            setattr(AbstractArray, name, fn)
    # Between two AbstractArrays, == stays structural (same shape and dtype), which shape rules
    # and tests rely on; against anything else (``ids != 0`` in a layer probed for its output
    # shape) it is the elementwise comparison, as on an array.
    structural_eq, structural_ne = AbstractArray.__eq__, AbstractArray.__ne__
    AbstractArray.__eq__ = lambda self, other: (
        structural_eq(self, other) if isinstance(other, AbstractArray) else
        _METHODS["__eq__"](self, other))
    AbstractArray.__ne__ = lambda self, other: (
        structural_ne(self, other) if isinstance(other, AbstractArray) else
        _METHODS["__ne__"](self, other))
    Tracer.__hash__ = Staged.__hash__ = object.__hash__


def install_indexing(getitem):
    """Add ``x[index]`` once the indexing primitives exist."""
    for cls in (Tracer, Staged, AbstractArray):
        cls.__getitem__ = getitem
