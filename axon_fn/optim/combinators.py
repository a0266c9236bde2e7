"""Wrappers that route, accumulate or guard other gradient transformations (Optax semantics).

>>> import numpy as np
>>> from axon_fn.optim.base import scale
>>> opt = masked(scale(0.0), {"frozen": True, "w": False})
>>> u = {"frozen": np.ones(1), "w": np.ones(1)}
>>> opt.update(u, opt.init(u))[0]
{'frozen': array([0.]), 'w': array([1.])}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .. import tree as tree_util
from ..errors import InvalidArgumentError, ShapeError
from ..typing import Array, ArrayLike, PyTree
from .adaptive import _increment, _zero_count
from .base import GradientTransformation
from .loss_scale import all_finite

__all__ = [
    "MaskedNode", "MaskedState", "masked", "MultiTransformState", "multi_transform",
    "MultiStepsState", "MultiSteps", "ApplyIfFiniteState", "apply_if_finite",
]


class MaskedNode(NamedTuple):
    """Stands in for a masked-out subtree inside a masked transformation (it has no leaves)."""


class MaskedState(NamedTuple):
    """State of :func:`masked`."""

    inner_state: Any


def _resolve_mask(mask, tree, where):
    mask_tree = mask(tree) if callable(mask) else mask
    try:
        # The mask must be a prefix of the tree (a bool may stand for a whole subtree).
        tree_util.tree_map(lambda m, sub: None, mask_tree, tree)
    except ShapeError as err:
        raise ShapeError(f"optim.{where}: the mask does not match the updates/params tree: "
                         f"{err}") from None
    for path, m in tree_util.leaves_with_path(mask_tree):
        if not isinstance(m, (bool, np.bool_)) and not (
                hasattr(m, "dtype") and np.dtype(m.dtype) == np.bool_ and m.shape == ()):
            raise InvalidArgumentError(f"optim.{where}: mask leaves must be booleans; the leaf "
                                       f"at '{path}' is {m!r}")
    return mask_tree


def _mask_tree(tree, mask_tree):
    return optree.tree_map(lambda m, sub: sub if bool(m) else MaskedNode(), mask_tree, tree)


def masked(inner: GradientTransformation,
           mask: PyTree | Callable[[PyTree], PyTree]) -> GradientTransformation:
    """Apply ``inner`` only to the leaves where ``mask`` is True; the others pass through
    unchanged. ``mask`` is a tree of bools (a prefix of the params tree) or a function
    ``params -> mask``.

    >>> import numpy as np
    >>> from axon_fn.optim.base import scale
    >>> opt = masked(scale(2.0), lambda p: {k: k.startswith("w") for k in p})
    >>> u = {"w": np.ones(1), "b": np.ones(1)}
    >>> opt.update(u, opt.init(u))[0]
    {'w': array([2.]), 'b': array([1.])}
    """

    def init(params):
        mask_tree = _resolve_mask(mask, params, "masked")
        return MaskedState(inner.init(_mask_tree(params, mask_tree)))

    def update(updates, state, params=None):
        mask_tree = _resolve_mask(mask, updates, "masked")
        masked_updates = _mask_tree(updates, mask_tree)
        masked_params = None if params is None else _mask_tree(params, mask_tree)
        new_updates, inner_state = inner.update(masked_updates, state.inner_state, masked_params)
        out = optree.tree_map(lambda m, new, old: new if bool(m) else old,
                              mask_tree, new_updates, updates)
        return out, MaskedState(inner_state)

    return GradientTransformation(init, update)


class MultiTransformState(NamedTuple):
    """State of :func:`multi_transform`: one inner state per label."""

    inner_states: Any


def multi_transform(transforms: Mapping[Any, GradientTransformation],
                    param_labels: PyTree | Callable[[PyTree], PyTree]) -> GradientTransformation:
    """Apply ``transforms[label]`` to the leaves labelled ``label``; ``param_labels`` is a tree
    of labels (a prefix of the params tree) or a function ``params -> labels``.

    >>> import numpy as np
    >>> from axon_fn.optim.base import scale, set_to_zero
    >>> opt = multi_transform({"train": scale(-1.0), "freeze": set_to_zero()},
    ...                       {"w": "train", "emb": "freeze"})
    >>> u = {"w": np.ones(1), "emb": np.ones(1)}
    >>> opt.update(u, opt.init(u))[0]
    {'w': array([-1.]), 'emb': array([0.])}
    """
    if not isinstance(transforms, dict) or not transforms:
        raise InvalidArgumentError("optim.multi_transform: `transforms` must be a non-empty dict "
                                   f"{{label: transformation}}, got {transforms!r}")

    def labels_of(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        missing = set(tree_util.leaves(labels)) - set(transforms)
        if missing:
            raise InvalidArgumentError(
                f"optim.multi_transform: the labels {sorted(map(repr, missing))} have no "
                f"transformation; known labels are {sorted(map(repr, transforms))}")
        return labels

    def mask_for(labels, label):
        return optree.tree_map(lambda lab: lab == label, labels)

    def init(params):
        labels = labels_of(params)
        return MultiTransformState({label: masked(tx, mask_for(labels, label)).init(params)
                                    for label, tx in transforms.items()})

    def update(updates, state, params=None):
        labels = labels_of(updates)
        new_states = {}
        for label, tx in transforms.items():
            updates, new_states[label] = masked(tx, mask_for(labels, label)).update(
                updates, state.inner_states[label], params)
        return updates, MultiTransformState(new_states)

    return GradientTransformation(init, update)


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps`."""

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


class MultiSteps:
    """Gradient accumulation: average ``every_k_schedule`` micro-batch gradients (or sum them
    without ``use_grad_mean``), emit zero updates in between, and apply the inner optimizer on
    the k-th call. ``every_k_schedule`` is an int or a function of the gradient step.

    >>> import numpy as np
    >>> from axon_fn.optim.base import scale
    >>> ms = MultiSteps(scale(-1.0), every_k_schedule=2)
    >>> s = ms.init(np.zeros(1))
    >>> u, s = ms.update(np.array([1.0]), s)
    >>> u, ms.has_updated(s)
    (array([0.]), False)
    >>> u, s = ms.update(np.array([3.0]), s)
    >>> u, ms.has_updated(s)
    (array([-2.]), True)
    """

    def __init__(self, opt: GradientTransformation,
                 every_k_schedule: int | Callable[[ArrayLike], ArrayLike],
                 use_grad_mean: bool = True,
                 should_skip_update_fn: Callable[..., ArrayLike] | None = None) -> None:
        if not callable(every_k_schedule):
            k = every_k_schedule
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise InvalidArgumentError(f"optim.MultiSteps: `every_k_schedule` must be a "
                                           f"positive int or a schedule, got {k!r}")
        self._opt = opt
        self._every_k = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip = should_skip_update_fn

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped transformation."""
        return self._opt

    def _k(self, gradient_step):
        if not callable(self._every_k):
            return int(self._every_k)
        k = self._every_k(gradient_step)
        try:
            k_int = int(k)
        except (TypeError, ValueError):
            k_int = None
        if k_int is None or k_int < 1 or k_int != k:
            raise InvalidArgumentError(f"optim.MultiSteps: `every_k_schedule` returned {k!r} for "
                                       f"gradient step {int(gradient_step)}; it must return a "
                                       "positive integer")
        return k_int

    def init(self, params: PyTree) -> MultiStepsState:
        """The initial state: counters at 0, zero accumulators, the inner optimizer's state."""
        skip_state = ()
        if self._should_skip is not None:
            skip_state = self._should_skip(tree_util.zeros_like(params), _zero_count(),
                                           params)[1]
        return MultiStepsState(_zero_count(), _zero_count(), self._opt.init(params),
                               tree_util.zeros_like(params), skip_state)

    def update(self, updates: PyTree, state: MultiStepsState,
               params: PyTree | None = None) -> tuple[PyTree, MultiStepsState]:
        """Accumulate ``updates``; on the k-th call return the inner optimizer's updates."""
        skip_state = state.skip_state
        if self._should_skip is not None:
            skip, skip_state = self._should_skip(updates, state.gradient_step, params)
            if bool(skip):
                return (tree_util.zeros_like(updates),
                        state._replace(skip_state=skip_state))
        k = self._k(state.gradient_step)
        n = int(state.mini_step) + 1
        if self._use_grad_mean:
            acc = optree.tree_map(lambda g, a: ops.add(a, ops.divide(ops.subtract(g, a), n)),
                                  updates, state.acc_grads)
        else:
            acc = optree.tree_map(ops.add, updates, state.acc_grads)
        acc = optree.tree_map(lambda a, old: ops.astype(a, dtype=old.dtype), acc, state.acc_grads)
        if n >= k:
            new_updates, inner_state = self._opt.update(acc, state.inner_opt_state, params)
            return new_updates, MultiStepsState(_zero_count(), _increment(state.gradient_step),
                                                inner_state, tree_util.zeros_like(acc),
                                                skip_state)
        return tree_util.zeros_like(updates), MultiStepsState(
            np.asarray(n, np.int32), state.gradient_step, state.inner_opt_state, acc, skip_state)

    def has_updated(self, state: MultiStepsState) -> Array:
        """True when the last update applied the inner optimizer."""
        return int(state.mini_step) == 0 and int(state.gradient_step) > 0

    def gradient_transformation(self) -> GradientTransformation:
        """This accumulator as a plain :class:`GradientTransformation`."""
        return GradientTransformation(self.init, self.update)


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite`."""

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


def apply_if_finite(inner: GradientTransformation,
                    max_consecutive_errors: int) -> GradientTransformation:
    """Apply ``inner`` only when every update is finite; otherwise return zeros and keep the
    inner state, unless more than ``max_consecutive_errors`` non-finite updates came in a row.

    >>> import numpy as np
    >>> from axon_fn.optim.base import scale
    >>> opt = apply_if_finite(scale(-1.0), max_consecutive_errors=2)
    >>> u, s = opt.update(np.array([np.inf]), opt.init(np.zeros(1)))
    >>> u, int(s.notfinite_count), bool(s.last_finite)
    (array([0.]), 1, False)
    """
    if isinstance(max_consecutive_errors, bool) or not isinstance(
            max_consecutive_errors, (int, np.integer)) or max_consecutive_errors < 0:
        raise InvalidArgumentError(f"optim.apply_if_finite: `max_consecutive_errors` must be a "
                                   f"non-negative int, got {max_consecutive_errors!r}")

    def init(params):
        return ApplyIfFiniteState(_zero_count(), np.asarray(True), _zero_count(),
                                  inner.init(params))

    def update(updates, state, params=None):
        finite = bool(all_finite(updates))
        notfinite = 0 if finite else int(state.notfinite_count) + 1
        if finite or notfinite > max_consecutive_errors:
            out, inner_state = inner.update(updates, state.inner_state, params)
        else:
            out, inner_state = tree_util.zeros_like(updates), state.inner_state
        total = int(state.total_notfinite) + (0 if finite else 1)
        return out, ApplyIfFiniteState(np.asarray(notfinite, np.int32), np.asarray(finite),
                                       np.asarray(total, np.int32), inner_state)

    return GradientTransformation(init, update)
