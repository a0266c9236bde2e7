"""The generated leaf readers and tree builders of jit's call path, against optree's own
flatten and unflatten (the reference), on matching and on every kind of mismatching tree."""

import collections
from typing import NamedTuple

import numpy as np
import optree
import pytest

import axon_fn as ax
from axon_fn import _pytree
from axon_fn._tree_code import leaf_reader, tree_builder
from axon_fn.model_state import ModelState


class Pair(NamedTuple):
    a: object
    b: object


class Empty(NamedTuple):
    pass


class Box:
    def __init__(self, value):
        self.value = value


ax.tree.register_pytree_node(Box, lambda box: ((box.value,), None),
                             lambda _, children: Box(children[0]))


def arr(*shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


TREES = {
    "tuple of arrays": (arr(2, 3), arr(3)),
    "model state": (ModelState({"dense_1": {"kernel": arr(2, 2), "bias": arr(2)},
                                "dense_0": {"kernel": arr(3, 2), "bias": arr(2)}}, {}, {}),
                    (Empty(), Empty()), arr(4, 3), arr(4, 1)),
    "nested": ([arr(1), None, (arr(2),)], {"z": arr(3), "a": {"y": arr(), 1: arr(5)}},
               Pair(arr(2, 2), [])),
    "empty": ((), [], {}, None),
}


def reference(tree):
    leaves, treedef = _pytree.tree_flatten(tree)
    return leaves, treedef, [(a.shape, a.dtype) for a in leaves]


@pytest.mark.parametrize("name", sorted(TREES))
def test_reader_reads_optree_leaves_in_order(name):
    leaves, treedef, signature = reference(TREES[name])
    read = leaf_reader(treedef, signature)
    got = read(TREES[name])
    assert len(got) == len(leaves) and all(a is b for a, b in zip(got, leaves))


@pytest.mark.parametrize("name", sorted(TREES))
def test_builder_equals_unflatten(name):
    leaves, treedef, _ = reference(TREES[name])
    marks = [object() for _ in leaves]
    built = tree_builder(treedef)(marks)
    expected = treedef.unflatten(marks)
    assert _pytree.tree_structure(built) == treedef
    assert all(a is b for a, b in zip(_pytree.tree_leaves(built), marks))
    assert repr(built) == repr(expected)  # the same types and the same dict key order


def test_builder_makes_new_mutable_containers():
    _, treedef, _ = reference(([], {}, [arr(1)]))
    build = tree_builder(treedef)
    first, second = build([1]), build([1])
    assert first == second and first[0] is not second[0] and first[2] is not second[2]


STATE = TREES["model state"]


def replaced(tree, path, value):
    """``tree`` with the node at ``path`` (a list of subscripts) replaced by ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {**tree, head: replaced(tree[head], rest, value)}
    items = list(tree)
    items[head] = replaced(tree[head], rest, value)
    return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)


MISMATCHES = {
    "another shape": replaced(STATE, [2], arr(5, 3)),
    "another dtype": replaced(STATE, [2], arr(4, 3, dtype=np.float64)),
    "a scalar leaf": replaced(STATE, [3], 1.0),
    "a list for a tuple": replaced(STATE, [1], [Empty(), Empty()]),
    "a renamed key": replaced(STATE, [0, 0], {"dense_1": STATE[0][0]["dense_1"],
                                               "dense_9": STATE[0][0]["dense_0"]}),
    "an extra key": replaced(STATE, [0, 0], {**STATE[0][0], "dense_2": {}}),
    "a missing key": replaced(STATE, [0, 0], {"dense_1": STATE[0][0]["dense_1"]}),
    "an ordered dict": replaced(STATE, [0, 0], collections.OrderedDict(STATE[0][0])),
    "another namedtuple": replaced(STATE, [1, 0], Pair(None, None)),
    "None for an array": replaced(STATE, [3], None),
    "an array subclass": replaced(STATE, [3], np.ma.masked_array(arr(4, 1))),
    "a shorter tuple": STATE[:3],
    "not a tuple": list(STATE),
}


@pytest.mark.parametrize("name", sorted(MISMATCHES))
def test_reader_refuses_what_optree_flattens_differently(name):
    _, treedef, signature = reference(STATE)
    other = MISMATCHES[name]
    leaves, other_def = optree.tree_flatten(other, namespace="axon_fn")
    assert other_def != treedef or [(np.shape(a), getattr(a, "dtype", None))
                                    for a in leaves] != signature \
        or any(type(a) is not np.ndarray for a in leaves)  # a real mismatch
    assert leaf_reader(treedef, signature)(other) is None


def test_unsupported_nodes_get_no_generated_code():
    for tree in [(Box(arr(2)),), (collections.OrderedDict(a=arr(1)),),
                 (collections.deque([arr(1)]),)]:
        _, treedef, signature = reference(tree)
        assert leaf_reader(treedef, signature) is None
        assert tree_builder(treedef) is None


def test_jit_records_again_when_the_structure_changes_under_the_same_leaf_count():
    calls = []

    def f(tree):
        calls.append(1)
        return {key: ax.ops.sum(value) for key, value in tree.items()}

    g = ax.jit(f, backend="python")
    assert g({"a": arr(2), "b": arr(3)}) == {"a": 1.0, "b": 3.0}
    assert g({"a": arr(2), "b": arr(3) + 1}) == {"a": 1.0, "b": 6.0}
    assert len(calls) == 1
    assert g({"a": arr(2), "c": arr(3)}) == {"a": 1.0, "c": 3.0}  # a renamed key: new program
    assert g({"a": arr(3), "b": arr(3)}) == {"a": 3.0, "b": 3.0}  # a new shape: new program
    assert len(calls) == 3 and g.cache_size() == 3
    assert g({"a": arr(2), "b": arr(3)}) == {"a": 1.0, "b": 3.0}  # back to the first one
    assert len(calls) == 3
