"""The shape primitives every VJP rule leans on: reshape, transpose, broadcast_to,
expand_dims, squeeze.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.transpose(np.zeros((2, 3, 4)), axes=(2, 0, 1)).shape
(4, 2, 3)
"""

from __future__ import annotations

import math

import numpy as np

from .._core import primitive
from ..errors import ShapeError
from ..typing import Array, ArrayLike
from ._rules import (
    AbstractArray, as_operand, broadcast_shapes, canonical_axis, canonical_shape, dtype_of, normalize_axis,
    shape_of,
)


def _canonical_axes(axes):
    return None if axes is None else tuple(int(a) for a in axes)


_canonical_axes.canonical_types = (type(None), tuple)


def _resolve_shape(name, old, new):
    new = (int(new),) if isinstance(new, (int, np.integer)) else tuple(int(d) for d in new)
    size = math.prod(old)
    if new.count(-1) > 1:
        raise ShapeError(f"{name}: at most one dimension may be -1, got shape={new}")
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        if known == 0 or size % known:
            raise ShapeError(f"{name}: cannot reshape an array of shape {old} into {new}")
        new = tuple(size // known if d == -1 else d for d in new)
    if math.prod(new) != size:
        raise ShapeError(
            f"{name}: cannot reshape an array of shape {old} ({size} elements) into {new}"
        )
    return new


reshape = primitive(
    "reshape",
    lambda xp, x, *, shape: xp.reshape(x, shape),
    lambda x, *, shape: AbstractArray(_resolve_shape("reshape", shape_of(x), shape), dtype_of(x)),
    (lambda g, ans, x, *, shape: reshape(g, shape=shape_of(x)),),
    signature="a, /, shape, order='C', *, copy=None", normalize={"shape": canonical_shape},
    doc="""``a`` with a new ``shape`` of the same size (an int or a tuple; one dimension may
    be -1). Only ``order='C'`` is supported.

    >>> reshape(np.arange(6.0), (2, -1))
    array([[0., 1., 2.],
           [3., 4., 5.]])
    >>> reshape(np.zeros((2, 3)), -1).shape
    (6,)
    """,
)


def _perm(name, axes, ndim):
    if axes is None:
        return tuple(range(ndim - 1, -1, -1))
    perm = tuple(normalize_axis(name, a, ndim, argument="axes") for a in axes)
    if sorted(perm) != list(range(ndim)):
        raise ShapeError(f"{name}: axes={tuple(axes)} is not a permutation of {ndim} axes")
    return perm


def _transpose_rule(x, *, axes=None):
    shape = shape_of(x)
    return AbstractArray(tuple(shape[p] for p in _perm("transpose", axes, len(shape))), dtype_of(x))


def _transpose_vjp(g, ans, x, *, axes=None):
    perm = _perm("transpose", axes, len(shape_of(x)))
    return transpose(g, axes=tuple(np.argsort(perm)))


transpose = primitive(
    "transpose", lambda xp, x, *, axes=None: xp.transpose(x, axes), _transpose_rule,
    (_transpose_vjp,),
    signature="a, axes=None", normalize={"axes": _canonical_axes},
    doc="""Permute the axes of ``a`` (reverse them when ``axes`` is None).

    >>> transpose(np.zeros((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """,
)


def swapaxes(a: ArrayLike, axis1: int = -1, axis2: int = -2) -> Array:
    """``x`` with two axes exchanged (a transpose).

    >>> swapaxes(np.zeros((2, 3, 4))).shape
    (2, 4, 3)
    """
    a = as_operand(a)
    ndim = len(shape_of(a))
    perm = list(range(ndim))
    i, j = normalize_axis("swapaxes", axis1, ndim), normalize_axis("swapaxes", axis2, ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, axes=tuple(perm))


def _broadcast_to_rule(x, *, shape):
    shape = tuple(int(d) for d in shape)
    if broadcast_shapes("broadcast_to", shape_of(x), shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast an array of shape {shape_of(x)} to {shape}")
    return AbstractArray(shape, dtype_of(x))


def _broadcast_to_impl(xp, x, *, shape):
    if xp is np and type(x) is np.ndarray and x.ndim == 0:
        # the VJP of a full reduction: numpy's broadcast_to costs ~5 us of Python here
        view = np.ndarray(shape, x.dtype, buffer=x, strides=(0,) * len(shape))
        view.flags.writeable = False
        return view
    return xp.broadcast_to(x, shape)


broadcast_to = primitive(
    "broadcast_to", _broadcast_to_impl, _broadcast_to_rule,
    # The engine sums a cotangent back to its argument's shape, which is this VJP.
    (lambda g, ans, x, *, shape: g,),
    signature="array, shape, subok=False", normalize={"shape": canonical_shape},
    doc="""A read-only view of ``array`` broadcast to ``shape``.

    >>> broadcast_to(np.array([1.0, 2.0]), (2, 2))
    array([[1., 2.],
           [1., 2.]])
    """,
)


def _expanded_shape(shape, axis):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = len(shape) + len(axes)
    axes = sorted(normalize_axis("expand_dims", a, ndim) for a in axes)
    out = list(shape)
    for a in axes:
        out.insert(a, 1)
    return tuple(out)


expand_dims = primitive(
    "expand_dims",
    lambda xp, x, *, axis: xp.reshape(x, _expanded_shape(x.shape, axis)),
    lambda x, *, axis: AbstractArray(_expanded_shape(shape_of(x), axis), dtype_of(x)),
    (lambda g, ans, x, *, axis: reshape(g, shape=shape_of(x)),),
    signature="a, axis", normalize={"axis": canonical_axis},
    doc="""Insert length-1 axes at ``axis`` (an int or a tuple).

    >>> expand_dims(np.zeros((2, 3)), 0).shape
    (1, 2, 3)
    """,
)


def _squeezed_shape(shape, axis):
    if axis is None:
        return tuple(d for d in shape if d != 1)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = {normalize_axis("squeeze", a, len(shape)) for a in axes}
    for a in axes:
        if shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} has length {shape[a]}, expected 1 (shape {shape})")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


squeeze = primitive(
    "squeeze",
    lambda xp, x, *, axis=None: xp.reshape(x, _squeezed_shape(x.shape, axis)),
    lambda x, *, axis=None: AbstractArray(_squeezed_shape(shape_of(x), axis), dtype_of(x)),
    (lambda g, ans, x, *, axis=None: reshape(g, shape=shape_of(x)),),
    signature="a, axis=None", normalize={"axis": canonical_axis},
    doc="""Remove length-1 axes (all of them, or those named by ``axis``).

    >>> squeeze(np.zeros((1, 2, 1)), 0).shape
    (2, 1)
    """,
)


from ._rules import primitive_doctests  # noqa: E402

__test__ = primitive_doctests(globals())
