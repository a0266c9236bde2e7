"""Functional linear layers: dense, bilinear, embedding and bias.

>>> import numpy as np
>>> dense(np.ones((2, 3)), np.ones((3, 4))).shape
(2, 4)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import activations as _activations
from .. import ops
from .._core import Staged
from ..errors import InvalidArgumentError
from ..typing import Array, ArrayLike
from ._util import expect, shape_of

__all__ = ["bias", "bilinear", "dense", "embedding"]

# activation (None, a name or the function) -> its name in the fused dense primitive
_FUSED_ACTIVATIONS = {None: None}
for _name in ops.fused.DENSE_ACTIVATIONS:
    _FUSED_ACTIVATIONS[_name] = _FUSED_ACTIVATIONS[getattr(_activations, _name)] = _name


def _check_bias(layer, bias, units):
    if bias is not None and shape_of(bias) != (units,):
        expect(layer, "bias", f"shape ({units},)", f"shape {shape_of(bias)}")


def _add_bias(layer, y, bias, units):
    """``y + bias`` for a layer with ``units`` outputs, checking the bias shape (None: no bias)."""
    _check_bias(layer, bias, units)
    return y if bias is None else ops.add(y, bias)


def dense(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None, *,
          activation: str | Callable[[Array], Array] | None = None) -> Array:
    """Fully connected layer: ``activation(x @ kernel + bias)`` with ``kernel`` of shape
    ``(in, out)``. ``x`` has shape ``(..., in)``; the result has shape ``(..., out)``.

    ``activation`` is None or a function; None, ``activations.relu``, ``sigmoid`` and ``tanh``
    (or their names) run fused with the product, as one differentiable unit
    (:func:`axon_fn.ops.fused.dense`).

    >>> import numpy as np
    >>> dense(np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]]), np.array([0.5]))
    array([[3.5]])
    """
    xs, ks = shape_of(x), shape_of(kernel)
    if len(ks) != 2:
        expect("dense", "kernel", "a 2-D array of shape (in, out)", f"shape {ks}")
    if len(xs) < 1 or xs[-1] != ks[0]:
        expect("dense", "x", f"last axis of size {ks[0]} (kernel shape {ks})", f"shape {xs}")
    _check_bias("dense", bias, ks[1])
    fused = _FUSED_ACTIVATIONS.get(activation, False)
    if fused is False:  # an activation the fused primitive does not cover
        return activation(ops.fused.dense(x, kernel, *_bias(bias)))
    return ops.fused.dense(x, kernel, *_bias(bias), activation=fused)


def _bias(bias):
    return () if bias is None else (bias,)


def bilinear(x1: ArrayLike, x2: ArrayLike, kernel: ArrayLike,
             bias: ArrayLike | None = None) -> Array:
    """Bilinear layer ``y[..., o] = sum_ij x1[..., i] kernel[o, i, j] x2[..., j] + bias[o]``.

    ``kernel`` has shape ``(out, in1, in2)`` as in Elixir Axon.

    >>> import numpy as np
    >>> bilinear(np.ones((2, 3)), np.ones((2, 4)), np.ones((5, 3, 4))).shape
    (2, 5)
    """
    s1, s2, ks = shape_of(x1), shape_of(x2), shape_of(kernel)
    if len(ks) != 3:
        expect("bilinear", "kernel", "a 3-D array of shape (out, in1, in2)", f"shape {ks}")
    if len(s1) < 1 or s1[-1] != ks[1]:
        expect("bilinear", "x1", f"last axis of size {ks[1]} (kernel shape {ks})", f"shape {s1}")
    if len(s2) < 1 or s2[-1] != ks[2]:
        expect("bilinear", "x2", f"last axis of size {ks[2]} (kernel shape {ks})", f"shape {s2}")
    if s1[:-1] != s2[:-1]:
        expect("bilinear", "x2", f"leading axes {s1[:-1]} matching x1", f"shape {s2}")
    return _add_bias("bilinear", ops.einsum("...i,oij,...j->...o", x1, kernel, x2), bias, ks[0])


def embedding(indices: ArrayLike, kernel: ArrayLike) -> Array:
    """Look up rows of ``kernel`` (shape ``(vocab, features)``) at integer ``indices``.

    The result has shape ``indices.shape + (features,)``; gradients flow to ``kernel``.

    >>> import numpy as np
    >>> embedding(np.array([2, 0]), np.arange(6.0).reshape(3, 2))
    array([[4., 5.],
           [0., 1.]])
    """
    ks = shape_of(kernel)
    if len(ks) != 2:
        expect("embedding", "kernel", "a 2-D array of shape (vocab, features)", f"shape {ks}")
    staged = type(indices) is Staged
    ids = indices.value if staged else indices  # while recording, the recorded batch's ids
    if type(ids) is np.ndarray and ids.size and ids.dtype.kind in "iu":
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= ks[0]:
            bad = low if low < 0 else high
            raise InvalidArgumentError(
                f"embedding: id {bad} is out of range for a table of {ks[0]} rows (ids must lie "
                f"in [0, {ks[0] - 1}]; a negative id would silently read a row from the end)")
    if staged:  # a replay reads no values: send negative ids past the end, where take raises
        indices = ops.where(ops.less(indices, 0), ks[0], indices)
    return ops.take(kernel, indices, axis=0)


def bias(x: ArrayLike, bias: ArrayLike) -> Array:
    """Add a bias (broadcast along the last axis): ``x + bias``.

    >>> import numpy as np
    >>> bias(np.zeros((2, 2)), np.array([1.0, 2.0]))
    array([[1., 2.],
           [1., 2.]])
    """
    xs, bs = shape_of(x), shape_of(bias)
    if len(bs) > 1 or (len(bs) == 1 and (len(xs) < 1 or bs[0] not in (1, xs[-1]))):
        expect("bias", "bias", f"shape ({xs[-1] if xs else 1},)", f"shape {bs}")
    return ops.add(x, bias)
