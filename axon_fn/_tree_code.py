"""Generated Python that reads the leaves of one fixed pytree structure, or builds it back.

``jit`` calls a program thousands of times with arguments of one structure (a ``ModelState``,
an optimizer state, a batch). optree's general flatten and unflatten cost about 10 us on such
arguments, a third of a small compiled training step; a function written for that one
structure (its nodes' types, lengths and keys checked inline, its leaves read by subscripts)
costs a fifth of that. Only the containers optree flattens natively are written out (tuples,
lists, dicts, namedtuples, None); a structure with any other node gets no generated code and
the caller keeps using optree.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import _pytree as optree

__all__ = ["leaf_reader", "tree_builder"]

_GUARDED = (KeyError, IndexError, TypeError)


def leaf_reader(treedef, signature):
    """A function ``read(tree)`` giving the leaves of ``tree`` in optree's order when ``tree``
    has the structure ``treedef`` and its leaves are numpy arrays of the ``(shape, dtype)``
    pairs in ``signature``, and None otherwise; or None when ``treedef`` has a node it cannot
    check.

    >>> import numpy as np
    >>> from axon_fn import _pytree as optree
    >>> tree = ({"b": np.zeros(2), "a": np.ones(1)},)
    >>> leaves, treedef = optree.tree_flatten(tree)
    >>> read = leaf_reader(treedef, [(a.shape, a.dtype) for a in leaves])
    >>> [a.tolist() for a in read(tree)]
    [[1.0], [0.0, 0.0]]
    >>> read(({"b": np.zeros(3), "a": np.ones(1)},)) is None  # another shape
    True
    """
    template = treedef.unflatten(range(treedef.num_leaves))
    namespace = {"ndarray": np.ndarray, "guarded": _GUARDED}
    lines = []
    names = itertools.count()
    constant = _constant_maker(namespace, names)

    def visit(node, expr):
        kind = type(node)
        if kind is int:  # a leaf: its index in optree's order
            shape, dtype = signature[node]
            lines.append(f"l{node} = {expr}")
            lines.append(f"if type(l{node}) is not ndarray or l{node}.shape != {shape!r} "
                         f"or l{node}.dtype is not {constant(dtype)}: return None")
            return True
        if node is None:
            lines.append(f"if {expr} is not None: return None")
            return True
        children = _children(node)
        if children is None:
            return False
        name = f"n{next(names)}"
        lines.append(f"{name} = {expr}")
        if kind in (tuple, list, dict):
            lines.append(f"if type({name}) is not {kind.__name__} or len({name}) != "
                         f"{len(node)}: return None")
        else:
            lines.append(f"if type({name}) is not {constant(kind)}: return None")
        return all(visit(child, f"{name}[{_key(key, constant)}]") for key, child in children)

    if not visit(template, "tree"):
        return None
    body = "\n".join(f"        {line}" for line in lines)
    leaves = "".join(f"l{i}, " for i in range(treedef.num_leaves))
    source = (f"def read(tree):\n    try:\n{body}\n    except guarded:\n        return None\n"
              f"    return [{leaves}]\n")
    exec(compile(source, "<axon_fn.jit leaf reader>", "exec"), namespace)
    return namespace["read"]


def tree_builder(treedef):
    """A function ``build(leaves)`` equal to ``treedef.unflatten(leaves)``, or None when
    ``treedef`` has a node it cannot write out.

    >>> from axon_fn import _pytree as optree
    >>> treedef = optree.tree_structure(({"b": 0, "a": 0}, [0, None]))
    >>> tree_builder(treedef)((1, 2, 3))
    ({'b': 2, 'a': 1}, [3, None])
    """
    template = treedef.unflatten(range(treedef.num_leaves))
    namespace = {}
    constant = _constant_maker(namespace, itertools.count())

    def expression(node):
        kind = type(node)
        if kind is int:
            return f"leaves[{node}]"
        if node is None:
            return "None"
        children = _children(node)
        if children is None:
            raise _Unsupported
        parts = [expression(child) for _, child in children]
        if kind is dict:
            return "{" + ", ".join(f"{_key(key, constant)}: {part}"
                                   for (key, _), part in zip(children, parts)) + "}"
        if kind is list:
            return "[" + ", ".join(parts) + "]"
        if kind is tuple:
            return "(" + "".join(f"{part}, " for part in parts) + ")"
        return f"{constant(kind)}({', '.join(parts)})"

    try:
        source = f"def build(leaves):\n    return {expression(template)}\n"
    except _Unsupported:
        return None
    exec(compile(source, "<axon_fn.jit tree builder>", "exec"), namespace)
    return namespace["build"]


def _constant_maker(namespace, names):
    """``constant(value)``: a new name in ``namespace`` (drawn from ``names``) bound to
    ``value``, for generated code to refer to it."""
    def constant(value):
        name = f"k{next(names)}"
        namespace[name] = value
        return name

    return constant


class _Unsupported(Exception):
    pass


def _children(node):
    """``(key, child)`` pairs of a container optree flattens natively (in the template's own
    order), or None for any other node."""
    kind = type(node)
    if kind is dict:
        return list(node.items())
    if kind in (tuple, list):
        return list(enumerate(node))
    if (issubclass(kind, tuple) and hasattr(kind, "_fields")
            and optree.registered(kind) is None):  # a namedtuple
        return list(enumerate(node))
    return None


def _key(key, constant):
    return repr(key) if type(key) in (str, int) else constant(key)
