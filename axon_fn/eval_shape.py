"""Shape inference without arithmetic: run a function on :class:`AbstractArray` values."""

from __future__ import annotations

from typing import Any, Callable

from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._core import AbstractArray

__all__ = ["eval_shape"]


def eval_shape(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The shapes and dtypes ``fun`` would return, computed by the ops' shape rules alone.

    Array leaves of ``args`` may be arrays or :class:`AbstractArray`s; no data is touched.

    >>> from axon_fn import ops
    >>> eval_shape(lambda x, w: ops.tanh(x @ w), AbstractArray((32, 784)), AbstractArray((784, 10)))
    AbstractArray(shape=(32, 10), dtype=float32)
    """

    def abstract(leaf):
        if isinstance(leaf, AbstractArray) or not hasattr(leaf, "shape"):
            return leaf
        return AbstractArray(leaf.shape, leaf.dtype)

    return fun(*optree.tree_map(abstract, args), **kwargs)
