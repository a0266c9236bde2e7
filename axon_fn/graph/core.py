"""The graph vocabulary: inputs, parameters, constants, containers, custom layers, blocks
(shared parameters), namespaces and optional values.

>>> import numpy as np, axon_fn
>>> x = axon_fn.input("x", shape=(None, 3))
>>> scale = axon_fn.param("scale", (3,), initializer=axon_fn.initializers.ones())
>>> y = axon_fn.layer(lambda v, s: v * s, [x, scale], name="scaled")
>>> state = axon_fn.init(y, np.ones((1, 3)), 0)
>>> axon_fn.predict(y, state, np.array([[1.0, 2.0, 3.0]]))
array([[1., 2., 3.]])
"""

from __future__ import annotations

import dataclasses
import inspect
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import initializers as _init
from .._checks import dtype_argument
from ..errors import AxonTypeError, InvalidArgumentError
from ..typing import ArrayLike, DTypeLike, PyTree, Shape
from .node import Node, Parameter, constructor

__all__ = [
    "input", "param", "constant", "container", "layer", "nx", "block", "namespace",
    "optional", "or_else", "make_node",
]

MISSING = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def _check_name(name, where, required=False):
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name or "/" in name or "." in name:
        raise InvalidArgumentError(f"{where}: `name` must be a non-empty string without '/' or "
                                   f"'.', got {name!r}")
    return name


def _shape_spec(shape, where):
    if shape is None:
        return None
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            d is None or (isinstance(d, (int, np.integer)) and d >= 0) for d in shape):
        raise InvalidArgumentError(f"{where}: `shape` must be a tuple of non-negative ints or None "
                                   f"(any size), got {shape!r}")
    return tuple(None if d is None else int(d) for d in shape)


def make_node(op: str, args: Sequence[Node | Parameter], fn: Optional[Callable[..., Any]], *,
              name: Optional[str] = None, opts: Optional[Mapping[str, Any]] = None,
              training: bool = False, key: bool = False,
              meta: Optional[Mapping[str, Any]] = None) -> Node:
    """The one way layers become nodes: check the inputs and freeze the options.

    ``args`` mixes input nodes and :class:`Parameter`s in the order ``fn`` takes them.
    """
    for i, arg in enumerate(args):
        if not isinstance(arg, (Node, Parameter)):
            raise AxonTypeError(f"{op}: input {i} must be a model node (from axon_fn.input or a "
                                f"layer) or an axon_fn.param, got {type(arg).__name__}")
    return Node(op, tuple(args), fn, MappingProxyType(dict(opts or {})),
                _check_name(name, op), MappingProxyType(dict(meta or {})), training, key)


def input(name: str, shape: Optional[Sequence[Optional[int]]] = None,  # noqa: A001 - Axon's
          dtype: Optional[DTypeLike] = None, optional: bool = False) -> Node:
    """A named model input. ``None`` in ``shape`` is a size that may vary (the batch).

    ``dtype`` (optional) fixes the kind of array accepted: a float input takes any float
    precision, an integer input any integer type. An ``optional`` input may be left out of
    ``predict``; the layers that need it then produce no value (see :func:`or_else`).

    >>> x = input("image", shape=(None, 28, 28, 1))
    >>> x
    <Node input 'image', shape=(None, 28, 28, 1)>
    """
    _check_name(name, "input", required=True)
    shape = _shape_spec(shape, f"input {name!r}")
    if dtype is not None:
        dtype = dtype_argument(dtype, f"input {name!r}")
    return Node("input", (), None, MappingProxyType({}), name,
                MappingProxyType({"shape": shape, "dtype": dtype, "optional": bool(optional)}))


def param(name: str, shape: Shape | Callable[..., Shape], initializer: Any = None, *,
          dtype: DTypeLike = "float32", kind: str = "trainable") -> Parameter:
    """Declare a parameter for :func:`layer`. ``shape`` is a tuple or a function of the shapes
    of the layer's node inputs (so it can follow the input's size).

    ``kind="state"`` declares a non-trainable value the forward updates in train mode by
    returning :class:`~axon_fn.graph.node.StatefulOutput`.

    >>> kernel = param("kernel", lambda s: (s[-1], 8))
    >>> kernel.resolve_shape([(None, 3)])
    (3, 8)
    """
    _check_name(name, "param", required=True)
    if not callable(shape):
        shape = _shape_spec(shape, f"param {name!r}")
        if None in shape:
            raise InvalidArgumentError(f"param {name!r}: a parameter shape cannot hold None, got "
                                       f"{shape}")
    if kind not in ("trainable", "state"):
        raise InvalidArgumentError(f"param {name!r}: `kind` must be 'trainable' or 'state', got "
                                   f"{kind!r}")
    initializer = _init.glorot_uniform() if initializer is None else initializer
    if not callable(initializer):
        raise AxonTypeError(f"param {name!r}: `initializer` must be a function (key, shape, "
                            f"dtype) -> array, e.g. axon_fn.initializers.zeros(); got "
                            f"{initializer!r}")
    return Parameter(name, shape, initializer, dtype_argument(dtype, f"param {name!r}"), kind)


def constant(value: ArrayLike, *, name: Optional[str] = None) -> Node:
    """A node holding a fixed array (never trained).

    >>> import numpy as np
    >>> constant(np.eye(2)).op
    'constant'
    """
    value = value if hasattr(value, "shape") else np.asarray(value)
    return make_node("constant", (), lambda: value, name=name, meta={"value": value})


def container(tree: PyTree, *, name: Optional[str] = None) -> Node:
    """Several nodes as one output: a dict, tuple or list (nested) of nodes.

    >>> a, b = input("a", shape=(None, 2)), input("b", shape=(None, 2))
    >>> container({"a": a, "b": b}).op
    'container'
    """
    leaves, spec = optree.tree_flatten(tree, is_leaf=lambda v: isinstance(v, Node))
    for path, leaf in zip(optree.tree_paths(tree, is_leaf=lambda v: isinstance(v, Node)), leaves):
        if not isinstance(leaf, Node):
            raise AxonTypeError(f"container: the value at {'/'.join(map(str, path)) or 'root'} "
                                f"must be a model node, got {type(leaf).__name__}")
    node = make_node("container", leaves, lambda *values: optree.tree_unflatten(spec, values),
                     name=name)
    return dataclasses.replace(node, sees_missing=True)  # an absent optional leaf stays absent


def _accepts(fn, argument):
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def layer(fn: Callable[..., Any], inputs: Sequence[Node | Parameter], *,
          name: Optional[str] = None, op_name: str = "custom", **opts: Any) -> Node:
    """A custom layer: ``fn(*input_values, *param_values, **opts)`` over the values of
    ``inputs`` (nodes and :func:`param` declarations, in ``fn``'s order).

    If ``fn`` takes ``training`` it is told the mode; if it takes ``key`` it gets a PRNG key in
    train mode (``None`` in inference).

    >>> x = input("x", shape=(None, 2))
    >>> y = layer(lambda v, *, power: v ** power, [x], power=2, op_name="power")
    >>> y.op, dict(y.opts)
    ('power', {'power': 2})
    """
    if not callable(fn):
        raise AxonTypeError(f"layer: `fn` must be callable, got {type(fn).__name__}")
    inputs = [inputs] if isinstance(inputs, (Node, Parameter)) else list(inputs)
    return make_node(op_name, inputs, fn, name=name, opts=opts,
                     training=_accepts(fn, "training"), key=_accepts(fn, "key"))


@constructor("nx")
def nx(x: Node, fn: Callable[..., Any], *, name: Optional[str] = None) -> Node:
    """Apply a plain function of arrays to a node (no parameters), as Axon's ``nx``.

    >>> from axon_fn import ops
    >>> x = input("x", shape=(None, 2))
    >>> (x >> nx(ops.exp)).op
    'nx'
    """
    if not callable(fn):
        raise AxonTypeError(f"nx: `fn` must be callable, got {type(fn).__name__}")
    return make_node("nx", [x], fn, name=name)


@dataclasses.dataclass(frozen=True, eq=False)
class Block:
    """A sub-model whose every call shares one set of parameters (see :func:`block`)."""

    fn: object
    name: str | None = None
    op: str = "block"

    def __call__(self, *inputs: Node) -> Node:
        for i, node in enumerate(inputs):
            if not isinstance(node, Node):
                raise AxonTypeError(f"block: input {i} must be a model node, got "
                                    f"{type(node).__name__}")
        return Node(self.op, tuple(inputs), None, MappingProxyType({}), self.name,
                    MappingProxyType({"block": self}))


def block(fn: Callable[..., Any], *, name: Optional[str] = None,
          op_name: str = "block") -> Block:
    """Share parameters between several applications of a sub-model, as Axon's ``block``.

    ``fn`` builds a graph from input nodes; every call of the result reuses the same
    parameters (stored under the block's name, ``{op_name}_N`` by default). Composite layers
    (transformer blocks) are blocks called once.

    >>> import axon_fn
    >>> shared = block(lambda v: v >> axon_fn.dense(4))
    >>> a, b = input("a", shape=(None, 4)), input("b", shape=(None, 4))
    >>> model = axon_fn.add(shared(a), shared(b))
    >>> list(axon_fn.init(model, {"a": np.ones((1, 4)), "b": np.ones((1, 4))}, 0).trainable)
    ['block_0']
    """
    if not callable(fn):
        raise AxonTypeError(f"block: `fn` must be callable, got {type(fn).__name__}")
    return Block(fn, _check_name(name, "block"), _check_name(op_name, "block", required=True))


def namespace(name: str, model: Node) -> Node:
    """Group every parameter of ``model`` (and of the layers it reads) under ``name``, so a
    pretrained part can be loaded or re-initialized on its own.

    >>> import axon_fn
    >>> x = input("x", shape=(None, 2))
    >>> encoder = namespace("encoder", x >> axon_fn.dense(3))
    >>> list(axon_fn.init(encoder >> axon_fn.dense(1), np.ones((1, 2)), 0).trainable)
    ['encoder', 'dense_1']
    """
    _check_name(name, "namespace", required=True)
    if not isinstance(model, Node):
        raise AxonTypeError(f"namespace {name!r}: `model` must be a model node, got "
                            f"{type(model).__name__}")
    return Node("namespace", (model,), lambda value: value, MappingProxyType({}), name)


@constructor("optional")
def optional(x: Node, *, name: Optional[str] = None) -> Node:
    """Let the next layer run when ``x`` has no value (an optional input left out): it then
    receives ``None`` instead of being skipped.

    >>> x = input("mask", shape=(None, 4), optional=True)
    >>> optional(x).op
    'optional'
    """
    node = make_node("optional", [x], lambda value: None if value is MISSING else value,
                     name=name)
    return dataclasses.replace(node, sees_missing=True)


def or_else(x: Node, default: Any, *, name: Optional[str] = None) -> Node:
    """``x``'s value when it has one, else ``default``'s.

    >>> a = input("a", shape=(None, 2), optional=True)
    >>> b = input("b", shape=(None, 2))
    >>> or_else(a, b).op
    'or_else'
    """
    node = make_node("or_else", [x, default], lambda v, d: d if v is MISSING else v, name=name)
    return dataclasses.replace(node, sees_missing=True)
