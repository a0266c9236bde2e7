"""Pytree helpers: maps, reductions and arithmetic over nested containers of arrays.

A pytree is any nesting of dicts, lists, tuples, namedtuples (and other optree-registered nodes)
whose leaves are numpy arrays, cupy arrays, traced values (inside ``axon_fn.grad``) or Python
scalars. ``None`` is an empty subtree, as in optree and JAX. Arithmetic goes through
``axon_fn.ops``, so every helper here is differentiable.

Paths name a leaf by its keys from the root joined with ``/``: dict keys, sequence indices and
namedtuple field names, e.g. ``"dense_0/kernel"`` or ``"layers/1/bias"``. The root itself, when it
is a leaf, has the empty path ``""``.

>>> import numpy as np
>>> params = {"dense_0": {"kernel": np.ones((2, 2)), "bias": np.zeros(2)}}
>>> [path for path, _ in leaves_with_path(params)]
['dense_0/bias', 'dense_0/kernel']
>>> float(global_norm(add(params, params)))
4.0
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._dtypes import is_real_floating
from . import ops
from ._core import full_value
from .backend import to_numpy
from .errors import AxonTypeError, ShapeError
from .typing import Array, ArrayLike, DTypeLike, PyTree

__all__ = ["register_pytree_node", "tree_map", "leaves", "leaves_with_path", "structure",
           "zeros_like", "ones_like",
           "add", "sub", "scale", "scalar_as", "mul", "dot", "global_norm", "size", "allclose",
           "cast"]


# Registration ---------------------------------------------------------------------------------


def register_pytree_node(cls: type, flatten_fn: Callable[[Any], tuple],
                         unflatten_fn: Callable[[Any, Any], Any]) -> None:
    """Make instances of ``cls`` pytree nodes for axon_fn (``grad``, ``jit``, the optimizers,
    these helpers and ``save_tree``), the way ``jax.tree_util.register_pytree_node`` does.

    ``flatten_fn(node) -> (children, aux_data)``: the children (arrays or subtrees) and any
    hashable static data; ``unflatten_fn(aux_data, children) -> node`` rebuilds it. The
    registration lives in axon_fn's own optree namespace, so other libraries' trees are not
    affected. Returns ``cls``, so it can decorate a class.

    >>> class Pair:
    ...     def __init__(self, a, b):
    ...         self.a, self.b = a, b
    >>> _ = register_pytree_node(Pair, lambda p: ((p.a, p.b), None),
    ...                          lambda aux, children: Pair(*children))
    >>> import axon_fn
    >>> g = axon_fn.grad(lambda p: ops.sum(p.a * p.b))(Pair(np.ones(2), np.full(2, 3.0)))
    >>> g.a, g.b
    (array([3., 3.]), array([1., 1.]))
    """
    if not isinstance(cls, type):
        raise AxonTypeError(f"tree.register_pytree_node: `cls` must be a class, got {cls!r}")
    if not (callable(flatten_fn) and callable(unflatten_fn)):
        raise AxonTypeError("tree.register_pytree_node: `flatten_fn` and `unflatten_fn` must be "
                            "functions")

    def flatten(node):
        children, aux = flatten_fn(node)
        return tuple(children), aux

    optree.register_pytree_node(cls, flatten, lambda aux, children: unflatten_fn(aux, children),
                                namespace=optree.NAMESPACE)
    return cls


# Structure and paths --------------------------------------------------------------------------


def _entry_name(spec, entry):
    node_type = spec.type
    fields = getattr(node_type, "_fields", None)
    if isinstance(fields, tuple) and issubclass(node_type, tuple):  # namedtuple: use the field
        return str(fields[entry])
    return str(entry)


def _spec_paths(spec, prefix, out):
    if spec.is_leaf():
        out.append("/".join(prefix))
        return
    for entry, child in zip(spec.entries(), spec.children()):
        _spec_paths(child, prefix + [_entry_name(spec, entry)], out)


def _describe(spec):
    if spec.is_leaf():
        return "a leaf"
    node_type = spec.type
    if node_type is type(None):
        return "None"
    entries = list(spec.entries())
    if issubclass(node_type, dict):
        return f"a {node_type.__name__} with keys {entries}"
    if isinstance(getattr(node_type, "_fields", None), tuple):
        return f"a {node_type.__name__} namedtuple"
    if node_type in (list, tuple):
        return f"a {node_type.__name__} of length {len(entries)}"
    return f"a {node_type.__name__} node with {len(entries)} children"


def _first_difference(a, b, path, prefix):
    """(path, description of a, description of b) where the structures ``a`` and ``b`` first
    differ, or None. With ``prefix``, a leaf of ``a`` matches any subtree of ``b``."""
    if prefix and a.is_leaf():
        return None
    if a == b:
        return None
    if (a.is_leaf() or b.is_leaf() or a.type is not b.type
            or list(a.entries()) != list(b.entries())):
        return path, _describe(a), _describe(b)
    for entry, child_a, child_b in zip(a.entries(), a.children(), b.children()):
        found = _first_difference(child_a, child_b, path + [_entry_name(a, entry)], prefix)
        if found:
            return found
    if prefix:  # every child matched (optree itself still checks node metadata)
        return None
    # Same node type and keys, different node metadata (e.g. a custom node's aux data).
    return path, _describe(a), _describe(b)


def _check_match(where, names, a, b, *, prefix=False, is_leaf=None):
    spec_a = optree.tree_structure(a, is_leaf=is_leaf)
    spec_b = optree.tree_structure(b, is_leaf=is_leaf)
    if spec_a == spec_b:
        return
    found = _first_difference(spec_a, spec_b, [], prefix)
    if found:
        path, got_a, got_b = found
        where_text = f"'{'/'.join(path)}'" if path else "the root"
        raise ShapeError(f"tree.{where}: the trees differ in structure at {where_text}: "
                         f"`{names[0]}` has {got_a} while `{names[1]}` has {got_b}")


def tree_map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree,
             is_leaf: Optional[Callable[[Any], bool]] = None) -> PyTree:
    """``fn`` applied leaf by leaf to ``tree`` and the matching leaves of each tree in ``rest``.

    Each tree in ``rest`` must have ``tree``'s structure, or have it as a prefix (then ``fn``
    receives the whole subtree found at each of ``tree``'s leaves).

    >>> tree_map(lambda x, y: x + y, {"a": 1, "b": (2, None)}, {"a": 10, "b": (20, None)})
    {'a': 11, 'b': (22, None)}
    """
    for i, other in enumerate(rest):
        _check_match("tree_map", ("tree", f"rest[{i}]"), tree, other, prefix=True,
                     is_leaf=is_leaf)
    return optree.tree_map(fn, tree, *rest, is_leaf=is_leaf)


def leaves(tree: PyTree) -> list:
    """The leaves of ``tree`` in optree's order (dict keys sorted); ``None`` contributes none.

    >>> leaves({"b": [2, 3], "a": 1, "c": None})
    [1, 2, 3]
    """
    return optree.tree_leaves(tree)


def leaves_with_path(tree: PyTree) -> list:
    """``(path, leaf)`` pairs in :func:`leaves` order; paths are ``/``-joined keys.

    >>> import collections
    >>> Point = collections.namedtuple("Point", ["x", "y"])
    >>> leaves_with_path({"layers": [Point(1, 2)], "scale": 3})
    [('layers/0/x', 1), ('layers/0/y', 2), ('scale', 3)]
    """
    flat, spec = optree.tree_flatten(tree)
    paths = []
    _spec_paths(spec, [], paths)
    return list(zip(paths, flat))


def structure(tree: PyTree) -> Any:
    """The structure of ``tree`` without its leaves (an optree ``PyTreeSpec``).

    >>> structure({"a": 1, "b": (2, None)})
    PyTreeSpec({'a': *, 'b': (*, None)})
    """
    return optree.tree_structure(tree)


# Arithmetic -----------------------------------------------------------------------------------


def _leaf_like(fn, leaf):
    if hasattr(full_value(leaf), "dtype"):
        return fn(leaf)
    return fn(np.asarray(leaf))  # a Python scalar leaf becomes a 0-d array


def zeros_like(tree: PyTree) -> PyTree:
    """Zeros shaped (and typed, and placed) like every leaf; never traced.

    >>> zeros_like({"w": np.ones(2, np.float32), "n": None})
    {'w': array([0., 0.], dtype=float32), 'n': None}
    """
    return optree.tree_map(lambda x: _leaf_like(ops.zeros_like, x), tree)


def ones_like(tree: PyTree) -> PyTree:
    """Ones shaped (and typed, and placed) like every leaf; never traced.

    >>> ones_like([np.zeros(2)])
    [array([1., 1.])]
    """
    return optree.tree_map(lambda x: _leaf_like(ops.ones_like, x), tree)


def _binary(where, fn, a, b):
    _check_match(where, ("a", "b"), a, b)
    return optree.tree_map(fn, a, b)


def add(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a + b``; the trees must have the same structure.

    >>> add({"w": np.array([1.0])}, {"w": np.array([2.0])})
    {'w': array([3.])}
    """
    return _binary("add", ops.add, a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``; the trees must have the same structure.

    >>> sub([np.array([3.0])], [np.array([1.0])])
    [array([2.])]
    """
    return _binary("sub", ops.subtract, a, b)


def mul(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a * b``; the trees must have the same structure.

    >>> mul((np.array([2.0]),), (np.array([4.0]),))
    (array([8.]),)
    """
    return _binary("mul", ops.multiply, a, b)


def _dtype_of(x):
    value = full_value(x)
    dtype = getattr(value, "dtype", None)
    return np.result_type(value) if dtype is None else np.dtype(dtype)


def scale(tree: PyTree, scalar: ArrayLike) -> PyTree:
    """Every leaf times ``scalar``. A concrete scalar takes each floating leaf's dtype first, so
    float32 parameters stay float32 even for a numpy float64 scalar.

    >>> scale({"w": np.array([1.0, 2.0], np.float32)}, np.float64(0.5))
    {'w': array([0.5, 1. ], dtype=float32)}
    """
    def leaf(x):
        dtype = _dtype_of(x)
        if is_real_floating(dtype):
            return ops.multiply(x, scalar_as(scalar, dtype))
        return ops.multiply(x, scalar)

    return optree.tree_map(leaf, tree)


def scalar_as(scalar: ArrayLike, dtype: DTypeLike) -> Array:
    """``scalar`` in ``dtype``, so that it multiplies a ``dtype`` array as a weak Python float
    would: a numpy scalar for a concrete value, or a cast on the device for a 0-d array that
    must not be read (a schedule's value inside jit, or on the GPU).

    >>> scalar_as(np.float64(0.5), np.float32).dtype
    dtype('float32')
    """
    if isinstance(scalar, (int, float, np.generic)) or (
            isinstance(scalar, np.ndarray) and scalar.ndim == 0):
        return np.dtype(dtype).type(scalar)
    if getattr(scalar, "ndim", None) == 0:
        return ops.astype(scalar, dtype=dtype)
    return scalar


def _total(terms):
    """Sum of scalar terms with ops.add (differentiable); float32 zero for an empty tree."""
    out = None
    for term in terms:
        out = term if out is None else ops.add(out, term)
    return np.float32(0.0) if out is None else out


def dot(a: PyTree, b: PyTree) -> Array:
    """The sum over all leaves of the elementwise products: the inner product of two trees.

    >>> float(dot({"w": np.array([1.0, 2.0]), "b": np.array(3.0)},
    ...           {"w": np.array([3.0, 4.0]), "b": np.array(2.0)}))
    17.0
    """
    _check_match("dot", ("a", "b"), a, b)
    return _total(ops.sum(ops.multiply(x, y)) for x, y in zip(leaves(a), leaves(b)))


def global_norm(tree: PyTree) -> Array:
    """The Euclidean norm of all leaves taken together, ``sqrt(sum of squares)``. Its gradient
    is undefined (NaN) when the tree is all zeros, as for any norm.

    >>> float(global_norm([np.array([3.0]), {"b": np.array([4.0])}]))
    5.0
    """
    return ops.sqrt(_total(ops.sum(ops.multiply(x, x)) for x in leaves(tree)))


def size(tree: PyTree) -> int:
    """The total number of elements in all leaves (a Python scalar leaf counts 1).

    >>> size({"w": np.zeros((3, 4)), "b": np.zeros(4), "s": 1.0, "n": None})
    17
    """
    total = 0
    for x in leaves(tree):
        value = full_value(x)
        shape = value.shape if hasattr(value, "shape") else np.shape(value)
        total += int(np.prod(shape, dtype=np.int64))
    return total


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """True when ``a`` and ``b`` have the same structure and every pair of leaves has the same
    shape and close values (``numpy.allclose``); False otherwise, never an error.

    >>> allclose({"w": np.array([1.0])}, {"w": np.array([1.0 + 1e-9])})
    True
    >>> allclose({"w": np.array([1.0])}, [np.array([1.0])])
    False
    """
    if structure(a) != structure(b):
        return False
    for x, y in zip(leaves(a), leaves(b)):
        x, y = np.asarray(to_numpy(x)), np.asarray(to_numpy(y))
        if x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan):
            return False
    return True


def cast(tree: PyTree, dtype: DTypeLike) -> PyTree:
    """Floating leaves converted to the floating ``dtype`` (differentiably); integer, boolean
    and other leaves are left as they are.

    >>> out = cast({"w": np.ones(2), "step": np.array(3, np.int32)}, "float32")
    >>> out["w"].dtype, out["step"].dtype
    (dtype('float32'), dtype('int32'))
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise AxonTypeError(f"tree.cast: {dtype!r} is not a numpy dtype") from err
    if not is_real_floating(dtype):
        raise AxonTypeError(f"tree.cast: the target dtype must be floating, got {dtype}; "
                            "use tree_map with .astype for other conversions")

    def leaf(x):
        current = _dtype_of(x)
        if not is_real_floating(current) or current == dtype:
            return x
        return ops.astype(x, dtype=dtype)

    return optree.tree_map(leaf, tree)
