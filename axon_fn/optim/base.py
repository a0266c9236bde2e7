"""The Optax-style base: a gradient transformation is a pair of pure functions.

``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``.
Transformations compose with :func:`chain`; :func:`apply_updates` adds the final updates to the
parameters. States are NamedTuples of arrays and pytrees, so they are pytrees themselves.

>>> import numpy as np
>>> sgd = chain(scale(-0.1))
>>> params = {"w": np.array([1.0, 2.0], np.float32)}
>>> updates, state = sgd.update({"w": np.array([1.0, 1.0], np.float32)}, sgd.init(params))
>>> apply_updates(params, updates)["w"]
array([0.9, 1.9], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np  # noqa: F401  (used by the doctests)
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .. import tree as tree_util
from ..errors import InvalidArgumentError
from ..typing import PyTree

__all__ = [
    "GradientTransformation", "EmptyState", "chain", "apply_updates", "identity", "stateless",
    "set_to_zero", "scale",
]


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after the other; the state is the tuple of their states.

    >>> opt = chain(identity(), scale(-1.0))
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([-2.])
    """

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise InvalidArgumentError(
                f"chain: the state holds {len(state)} inner states but the chain has "
                f"{len(transforms)} transforms; pass the state that this chain's init returned"
            )
        new_states = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    return GradientTransformation(init, update)


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype (``None`` leaves stay).

    >>> apply_updates({"w": np.ones(2, np.float32)}, {"w": np.array([0.5, -0.5])})["w"]
    array([1.5, 0.5], dtype=float32)
    """
    try:
        return optree.tree_map(_apply_one, params, updates, none_is_leaf=True)
    except (ValueError, TypeError) as error:  # find the leaf only once something went wrong
        from ._validate import check_apply_updates
        check_apply_updates(params, updates, error)


class _LeafMismatch(ValueError):
    pass


def _apply_one(p, u):
    if u is None:
        return p
    if type(p) is np.ndarray and type(u) is np.ndarray and p.dtype == u.dtype and p.ndim:
        if p.shape != u.shape:  # numpy would broadcast a (4, 4) update onto a (4,) parameter
            raise _LeafMismatch("apply_updates: shapes differ")
        return p + u  # the common case, without the dispatch of ops
    if (p.shape if hasattr(p, "shape") else np.shape(p)) != (
            u.shape if hasattr(u, "shape") else np.shape(u)):
        raise _LeafMismatch("apply_updates: shapes differ")
    return ops.astype(ops.add(p, u), dtype=p.dtype)


def identity() -> GradientTransformation:
    """Leave updates unchanged.

    >>> identity().update(np.ones(2), EmptyState())[0]
    array([1., 1.])
    """
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (updates, state))


def stateless(fn: Callable[[PyTree, PyTree | None], PyTree]) -> GradientTransformation:
    """A transformation from ``fn(updates, params) -> updates``, with no state.

    >>> halve = stateless(lambda updates, params: tree_util.scale(updates, 0.5))
    >>> halve.update(np.ones(2), halve.init(None))[0]
    array([0.5, 0.5])
    """
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (fn(updates, params), state))


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes parameters when used inside multi_transform).

    >>> set_to_zero().update(np.ones(2), EmptyState())[0]
    array([0., 0.])
    """
    return stateless(lambda updates, params: tree_util.zeros_like(updates))


def scale(step_size: float) -> GradientTransformation:
    """Multiply updates by the constant ``step_size``.

    >>> scale(-0.5).update(np.array([2.0]), EmptyState())[0]
    array([-1.])
    """
    return stateless(lambda updates, params: tree_util.scale(updates, step_size))
