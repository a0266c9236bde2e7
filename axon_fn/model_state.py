"""ModelState: a model's parameters and state, as a pytree of three nested dicts.

``trainable`` holds the parameters that gradients and optimizers update, ``state`` the values the
forward pass updates in train mode (batch-norm statistics), ``frozen`` the parameters
:func:`freeze` took out of training. All three are nested ``{layer: {name: array}}`` dicts
(namespaces and blocks add levels). Differentiate with respect to ``state.trainable``.

>>> import numpy as np
>>> s = ModelState({"dense_0": {"kernel": np.ones((2, 2)), "bias": np.zeros(2)}})
>>> frozen = freeze(s, ["dense_0.bias"])
>>> list(frozen.trainable["dense_0"]), list(frozen.frozen["dense_0"])
(['kernel'], ['bias'])
>>> sorted(frozen["dense_0"])
['bias', 'kernel']
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._dtypes import is_real_floating
from .errors import AxonTypeError, InvalidArgumentError
from .typing import DTypeLike

__all__ = ["ModelState", "freeze", "unfreeze", "flatten_paths", "merge_trees", "nest_paths"]


def flatten_paths(tree: Mapping[Any, Any], prefix: tuple = ()) -> dict:
    """``{path tuple: leaf}`` of a nested dict, in insertion order."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten_paths(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


def nest_paths(flat: Mapping[tuple, Any]) -> dict:
    """The nested dict of ``{path tuple: leaf}`` (the inverse of :func:`flatten_paths`)."""
    tree = {}
    for path, leaf in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf
    return tree


def merge_trees(*trees: Mapping[Any, Any]) -> dict:
    """One nested dict holding the leaves of all ``trees`` (later trees win)."""
    flat = {}
    for tree in trees:
        flat.update(flatten_paths(tree))
    return nest_paths(flat)


class ModelState(NamedTuple):
    """Parameters (``trainable`` and ``frozen``) and layer ``state`` of a built model.

    ``state_obj["dense_0"]`` reads a layer's arrays from all three parts.
    """

    trainable: dict = {}
    state: dict = {}
    frozen: dict = {}

    @property
    def params(self) -> dict:
        """Every parameter, trainable and frozen, as one nested dict."""
        return merge_trees(self.trainable, self.frozen)

    @property
    def data(self) -> dict:
        """Everything: parameters and state, as one nested dict."""
        return merge_trees(self.trainable, self.frozen, self.state)

    def __getitem__(self, key):
        if isinstance(key, int):  # still a tuple underneath
            return tuple.__getitem__(self, key)
        return self.data[key]

    def replace(self, **parts: dict) -> ModelState:
        """A copy with some of ``trainable`` / ``state`` / ``frozen`` replaced."""
        return self._replace(**parts)

    def drop(self, *names: str) -> ModelState:
        """A copy without the given layers or namespaces (dotted paths allowed), e.g. to pass as
        ``initial`` and re-initialize just those."""
        dropped = _selector(list(names), "ModelState.drop")

        def keep(tree):
            return nest_paths({p: v for p, v in flatten_paths(tree).items()
                               if not dropped(p, v)})

        return ModelState(keep(self.trainable), keep(self.state), keep(self.frozen))

    def astype(self, dtype: DTypeLike) -> ModelState:
        """A copy with every floating array cast to ``dtype`` (e.g. float64 for gradient checks)."""
        def cast(leaf):
            is_float = is_real_floating(np.dtype(leaf.dtype))
            return leaf.astype(dtype) if is_float else leaf

        return optree.tree_map(cast, self)

    def count(self) -> int:  # type: ignore[override]
        """The number of scalars in the trainable and frozen parameters."""
        return int(sum(np.prod(np.shape(v)) for v in optree.tree_leaves(
            (self.trainable, self.frozen))))

    def __repr__(self):
        def describe(tree):
            return "{" + ", ".join(f"{'.'.join(p)}: {tuple(np.shape(v))}"
                                   for p, v in flatten_paths(tree).items()) + "}"

        return (f"ModelState(trainable={describe(self.trainable)}, state={describe(self.state)}, "
                f"frozen={describe(self.frozen)})")


def _selector(predicate, where):
    if predicate is None:
        return lambda path, value: True
    if isinstance(predicate, str):
        predicate = [predicate]
    if callable(predicate):
        return lambda path, value: bool(predicate(".".join(path), value))
    if isinstance(predicate, (list, tuple, set)) and all(isinstance(p, str) for p in predicate):
        prefixes = [tuple(p.split(".")) for p in predicate]

        def select(path, value):
            return any(path[:len(q)] == q for q in prefixes)

        select.names = tuple(predicate)
        return select
    raise AxonTypeError(f"{where}: `predicate` must be None (everything), a layer name or dotted "
                        f"path, a list of them, or a function (path, value) -> bool; got "
                        f"{predicate!r}")


def _move(source, target, select, where):
    stay, moved = {}, dict(flatten_paths(target))
    for path, value in flatten_paths(source).items():
        (moved if select(path, value) else stay)[path] = value
    names = getattr(select, "names", ())
    for name in names:  # a misspelt layer name should not silently freeze nothing
        prefix = tuple(name.split("."))
        if not any(p[:len(prefix)] == prefix for p in flatten_paths(source)):
            layers = sorted({".".join(p[:-1]) for p in flatten_paths(source)})
            raise InvalidArgumentError(f"{where}: {name!r} matches no parameter here; names are "
                                       f"whole layer names or dotted paths, e.g. "
                                       f"{', '.join(layers[:5]) or 'none'}")
    return nest_paths(stay), nest_paths(moved)


def freeze(state: ModelState, predicate: Any = None) -> ModelState:
    """Move the trainable parameters picked by ``predicate`` to ``frozen``: gradients and
    optimizers no longer see them, ``predict`` still uses them.

    ``predicate``: ``None`` (all), a layer/namespace name or dotted path (``"dense_0.bias"``),
    a list of them, or ``fn(path, value) -> bool`` with ``path`` like ``"encoder.dense_0.kernel"``.

    >>> s = ModelState({"a": {"w": np.ones(1)}, "b": {"w": np.ones(1)}})
    >>> list(freeze(s, lambda path, v: path.startswith("a")).trainable)
    ['b']
    """
    trainable, frozen = _move(state.trainable, state.frozen, _selector(predicate, "freeze"),
                              "freeze")
    return ModelState(trainable, state.state, frozen)


def unfreeze(state: ModelState, predicate: Any = None) -> ModelState:
    """Move frozen parameters picked by ``predicate`` back to ``trainable`` (see :func:`freeze`).

    >>> s = freeze(ModelState({"a": {"w": np.ones(1)}}))
    >>> list(unfreeze(s).trainable), s.frozen["a"]["w"].shape
    (['a'], (1,))
    """
    frozen, trainable = _move(state.frozen, state.trainable, _selector(predicate, "unfreeze"),
                              "unfreeze")
    return ModelState(trainable, state.state, frozen)
