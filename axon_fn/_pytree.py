"""optree, seen through axon_fn's own registry namespace (private).

Every module of axon_fn imports this as ``optree``: the tree functions here are optree's with
``namespace="axon_fn"``, so a container registered with :func:`axon_fn.tree.register_pytree_node`
is a pytree node for ``grad``, ``jit``, the optimizers and serialization, without becoming one
for every other library in the process (optree's global registry). Containers optree knows
(dicts, lists, tuples, namedtuples, None) are unaffected, and their structures compare equal to
those made outside the namespace.
"""

import functools

import optree
from optree import PyTreeSpec  # noqa: F401  (re-exported)

NAMESPACE = "axon_fn"

_NAMESPACED = ("tree_flatten", "tree_flatten_with_path", "tree_leaves", "tree_map",
               "tree_map_with_path", "tree_paths", "tree_structure")

for _name in _NAMESPACED:
    globals()[_name] = functools.partial(getattr(optree, _name), namespace=NAMESPACE)
del _name


def __getattr__(name):
    """The rest of optree as it is (``tree_unflatten`` too: a structure carries its namespace)."""
    return getattr(optree, name)


def registered(cls):
    """The registry entry of a container class registered with
    :func:`axon_fn.tree.register_pytree_node` (``flatten_func``, ``unflatten_func``), or None
    for any other class, built-in containers included."""
    entry = optree.register_pytree_node.get(cls, namespace=NAMESPACE)
    if entry is None or entry.kind != optree.PyTreeKind.CUSTOM:
        return None
    return entry


def class_name(cls):
    """How files name a registered container class: ``module.qualname``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_named(name):
    """The registered container class that :func:`class_name` calls ``name``, or None."""
    for cls in optree.register_pytree_node.get(namespace=NAMESPACE):
        if isinstance(cls, type) and registered(cls) is not None and class_name(cls) == name:
            return cls
    return None
