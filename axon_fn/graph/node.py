"""Graph values: :class:`Node` (an applied layer), :class:`Parameter` (a declared weight),
:class:`Layer` (a layer waiting for its input) and :class:`Pipeline` (layers composed with ``>>``).

All four are immutable. A node refers to its inputs, so graphs share structure: building
``y = x >> dense(3)`` twice from the same ``x`` gives two graphs over one input node.

>>> import axon_fn
>>> x = axon_fn.input("x", shape=(None, 4))
>>> block = axon_fn.dense(8) >> axon_fn.relu()
>>> y = x >> block
>>> len(block), y.op
(2, 'relu')
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, NamedTuple, Sequence

from ..errors import AxonTypeError, InvalidArgumentError

__all__ = ["Node", "Parameter", "Layer", "Pipeline", "StatefulOutput", "is_node"]

_EMPTY = MappingProxyType({})


class StatefulOutput(NamedTuple):
    """What a layer's forward returns in train mode when it updates state (batch-norm statistics):
    the output and ``{state_name: new_value}``.

    >>> StatefulOutput(1.0, {"mean": 0.0}).state
    {'mean': 0.0}
    """

    output: Any
    state: dict


@dataclasses.dataclass(frozen=True, eq=False)
class Parameter:
    """A parameter declared by a layer (see :func:`axon_fn.param`).

    ``shape`` is a tuple or a function of the shapes of the layer's node inputs; ``kind`` is
    ``"trainable"`` or ``"state"`` (updated by the forward pass in train mode, never by gradients).
    """

    name: str
    shape: Any
    initializer: Callable
    dtype: str = "float32"
    kind: str = "trainable"

    def resolve_shape(self, input_shapes: Sequence[tuple]) -> tuple:
        """The concrete shape for a layer whose node inputs have ``input_shapes``."""
        shape = self.shape(*input_shapes) if callable(self.shape) else self.shape
        return tuple(int(d) for d in shape)


@dataclasses.dataclass(frozen=True)
class Hook:
    """A function called with a node's output (forward) or its cotangent (backward)."""

    fn: Callable
    on: str = "forward"
    mode: str = "both"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Node:
    """One applied layer of a model graph.

    ``fn(*values, **opts)`` computes the output from ``args`` (input nodes and parameters, in
    the order ``fn`` takes them). ``takes_training`` / ``takes_key`` ask the interpreter to pass
    ``training=`` and ``key=``; ``sees_missing`` lets ``fn`` receive absent optional values.
    Nodes compare by identity, so two equal-looking layers stay two layers.
    """

    op: str
    args: tuple = ()
    fn: Callable | None = None
    opts: Any = dataclasses.field(default_factory=lambda: _EMPTY)
    name: str | None = None
    meta: Any = dataclasses.field(default_factory=lambda: _EMPTY)
    takes_training: bool = False
    takes_key: bool = False
    sees_missing: bool = False
    hooks: tuple = ()

    __array_ufunc__ = None  # so `array >> node` reaches __rrshift__ instead of numpy

    @property
    def inputs(self) -> tuple:
        """The nodes this node reads, in order."""
        return tuple(a for a in self.args if isinstance(a, Node))

    @property
    def parameters(self) -> tuple:
        """The parameters this node declares, in order."""
        return tuple(a for a in self.args if isinstance(a, Parameter))

    def __rshift__(self, layer):
        if isinstance(layer, (Layer, Pipeline)):
            return layer(self)
        raise AxonTypeError(f"`>>`: the right-hand side must be a layer such as "
                            f"axon_fn.dense(10) or a Pipeline, got {type(layer).__name__}")

    def __rrshift__(self, other):
        _bad_left(other)

    def __repr__(self):
        label = f"{self.name!r}" if self.name else "unnamed"
        shapes = ""
        if self.op == "input":
            shapes = f", shape={self.meta.get('shape')}"
        return f"<Node {self.op} {label}{shapes}>"


def is_node(value: Any) -> bool:
    """Whether ``value`` is a graph :class:`Node`."""
    return isinstance(value, Node)


def _bad_left(other):
    raise AxonTypeError(f"`>>`: the left-hand side must be a model node (from axon_fn.input or "
                        f"a layer applied to one) or a layer, got {type(other).__name__}; "
                        f"start the graph with x = axon_fn.input('x', shape=...)")


class _Composable:
    """``>>`` for layers and pipelines (shared by both)."""

    __array_ufunc__ = None

    def __rshift__(self, other):
        if isinstance(other, (Layer, Pipeline)):
            return Pipeline(*_steps(self), *_steps(other))
        raise AxonTypeError(f"`>>`: the right-hand side must be a layer or a Pipeline, got "
                            f"{type(other).__name__}")

    def __rrshift__(self, other):
        if isinstance(other, Node):
            return self(other)
        _bad_left(other)


def _steps(value):
    return value.layers if isinstance(value, Pipeline) else (value,)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Layer(_Composable):
    """A layer waiting for its input: ``dense(10)`` before it is applied.

    Call it on a node (``layer(x)``) or write ``x >> layer``; ``layer >> layer`` is a
    :class:`Pipeline`.
    """

    op: str
    apply: Callable
    label: str = ""

    def __call__(self, *inputs: Node) -> Node:
        return self.apply(*inputs)

    def __repr__(self):
        return self.label or f"{self.op}()"


class Pipeline(_Composable):
    """Layers applied one after another: ``Pipeline(dense(64), relu(), dense(10))`` is
    ``dense(64) >> relu() >> dense(10)``.

    A pipeline is an immutable sequence: ``len``, indexing, slicing (a Pipeline), iteration, and
    ``replace`` / ``insert`` / ``remove``, each returning a new pipeline.

    >>> import axon_fn
    >>> p = axon_fn.Pipeline(axon_fn.dense(4), axon_fn.relu(), axon_fn.dense(2))
    >>> p.replace(1, axon_fn.tanh())
    Pipeline(dense(4), tanh(), dense(2))
    >>> p[:2], len(p.remove(0))
    (Pipeline(dense(4), relu()), 2)
    """

    __slots__ = ("layers",)

    def __init__(self, *layers: Layer | Pipeline) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            _check_layer(layer, f"Pipeline: element {i}")
        object.__setattr__(self, "layers", tuple(layers))

    def __setattr__(self, name, value):
        raise AttributeError("a Pipeline is immutable; use replace, insert or remove")

    def __call__(self, node: Node) -> Node:
        for layer in self.layers:
            node = layer(node)
        return node

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Pipeline(*self.layers[index])
        return self.layers[self._index(index, "index")]

    def _index(self, i, where, upper=0):
        n = len(self.layers) + upper
        if not isinstance(i, int) or not -n <= i < n:
            raise InvalidArgumentError(f"Pipeline.{where}: index {i!r} is out of range for a "
                                       f"pipeline of {len(self.layers)} layers")
        return i % n

    def replace(self, index: int, layer: Any) -> Pipeline:
        """A new pipeline with the layer at ``index`` replaced by ``layer``."""
        _check_layer(layer, "Pipeline.replace: `layer`")
        i = self._index(index, "replace")
        return Pipeline(*self.layers[:i], layer, *self.layers[i + 1:])

    def insert(self, index: int, layer: Any) -> Pipeline:
        """A new pipeline with ``layer`` inserted before position ``index`` (``len`` appends)."""
        _check_layer(layer, "Pipeline.insert: `layer`")
        i = self._index(index, "insert", upper=1)
        return Pipeline(*self.layers[:i], layer, *self.layers[i:])

    def remove(self, index: int) -> Pipeline:
        """A new pipeline without the layer at ``index``."""
        i = self._index(index, "remove")
        return Pipeline(*self.layers[:i], *self.layers[i + 1:])

    def __eq__(self, other):
        return isinstance(other, Pipeline) and self.layers == other.layers

    def __hash__(self):
        return hash(self.layers)

    def __repr__(self):
        return f"Pipeline({', '.join(map(repr, self.layers))})"


def _check_layer(layer, where):
    if not isinstance(layer, (Layer, Pipeline)):
        raise AxonTypeError(f"{where} must be a layer such as axon_fn.dense(10), got "
                            f"{type(layer).__name__}")


def _describe(value):
    if isinstance(value, str):
        return repr(value)
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


def constructor(op: str, n_inputs: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a graph constructor callable with its inputs (``dense(x, 10)``, a Node) or without
    (``dense(10)``, a :class:`Layer` waiting for ``n_inputs`` nodes).

    The decorated function takes its input nodes first. Arguments are bound once, when the layer
    is written down, so a wrong keyword fails there and not at apply time.
    """

    def wrap(make):
        signature = inspect.signature(make)

        def build(*args, **kwargs):
            if args and (isinstance(args[0], Node) or _is_node_list(args[0])):
                return make(*args, **kwargs)
            try:
                signature.bind(*([None] * n_inputs), *args, **kwargs)
            except TypeError as error:
                raise AxonTypeError(f"{op}: {error}") from None
            make(*_PROBES[:n_inputs], *args, **kwargs)  # check the options now, not at apply
            shown = [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in
                                                    kwargs.items()]
            return Layer(op, lambda *nodes: make(*nodes, *args, **kwargs),
                         f"{op}({', '.join(shown)})")

        build.__name__ = make.__name__
        build.__qualname__ = make.__qualname__
        build.__module__ = make.__module__  # so doctest finds the example in make's module
        build.__doc__ = make.__doc__
        build.__wrapped__ = make
        return build

    return wrap


_PROBES = tuple(Node("input", name=f"probe_{i}") for i in range(4))


def _is_node_list(value):
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, Node) for v in value)
