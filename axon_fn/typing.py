"""Type aliases for annotating code that uses axon_fn (as ``jax.typing`` does for JAX).

An array here is a numpy array, a CuPy array or a value traced by :func:`axon_fn.grad` or
:func:`axon_fn.jit`, so :data:`Array` is deliberately loose; :data:`ArrayLike` also admits
Python numbers and nested lists. A pytree is any nesting of dicts, lists, tuples and
namedtuples with arrays (or other leaves) at the bottom.

>>> from axon_fn.typing import PyTree
>>> def count_leaves(tree: PyTree) -> int:
...     from axon_fn import tree as t
...     return len(t.leaves(tree))
>>> count_leaves({"a": 1, "b": [2, 3]})
3
"""

from __future__ import annotations

import os
from typing import Any, Sequence, Union

import numpy as np

__all__ = ["Array", "ArrayLike", "DTypeLike", "PRNGKey", "PathLike", "PyTree", "Shape"]

Array = Any
"""A numpy array, a CuPy array, or a traced value standing for one."""

ArrayLike = Union[Array, np.ndarray, np.generic, float, int, bool, Sequence[Any]]
"""Anything an op converts to an array: arrays, numpy scalars, Python numbers, nested lists."""

DTypeLike = Union[str, type, np.dtype]
"""A dtype, its name (``"float32"``) or a scalar type (``np.float32``)."""

PRNGKey = np.ndarray
"""A key of :mod:`axon_fn.random`: a ``uint32`` array of shape ``(2,)``."""

PathLike = Union[str, os.PathLike[str]]
"""A file-system path."""

PyTree = Any
"""A nesting of dicts, lists, tuples and namedtuples with leaves at the bottom."""

Shape = Sequence[int]
"""An array shape: a tuple (or list) of non-negative ints."""

