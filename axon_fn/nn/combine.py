"""Graph constructors that combine nodes: add, subtract, multiply, concatenate, split, cond.

>>> import axon_fn
>>> a, b = axon_fn.input("a", shape=(None, 3)), axon_fn.input("b", shape=(None, 3))
>>> axon_fn.get_output_shape(concatenate([a, b]))
(1, 6)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .. import ops
from .._core import AbstractArray
from .._checks import is_int
from ..autodiff import stop_gradient
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..graph.core import make_node
from ..graph.node import Node, constructor
from ..typing import Array
from ._common import apply_activation, resolve_activation

__all__ = ["add", "subtract", "multiply", "concatenate", "split", "cond"]


def _nodes(op, nodes):
    if len(nodes) == 1 and isinstance(nodes[0], (list, tuple)):
        nodes = tuple(nodes[0])
    if len(nodes) < 2:
        raise InvalidArgumentError(f"{op}: needs at least two nodes, got {len(nodes)}")
    for i, node in enumerate(nodes):
        if not isinstance(node, Node):
            raise AxonTypeError(f"{op}: input {i} must be a model node, got {type(node).__name__}")
    return nodes


def _combine(fn, *values, activation=None):
    return apply_activation(functools.reduce(fn, values), activation)


def _elementwise(op, fn, doc):
    def make(*nodes: Node | Sequence[Node],
             activation: str | Callable[[Array], Array] | None = None,
             name: str | None = None) -> Node:
        return make_node(op, _nodes(op, nodes), functools.partial(_combine, fn), name=name,
                         opts={"activation": resolve_activation(activation, op)})

    make.__name__ = make.__qualname__ = op
    make.__doc__ = doc
    return make


add = _elementwise("add", ops.add, """Elementwise sum of two or more nodes (``add(a, b)`` or
    ``add([a, b, c])``); their shapes must broadcast.

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 3)), axon_fn.input("b", shape=(None, 3))
    >>> add(a, b).op
    'add'
    """)
subtract = _elementwise("subtract", ops.subtract, """``a - b - ...`` of two or more nodes.

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 3)), axon_fn.input("b", shape=(None, 3))
    >>> subtract(a, b).op
    'subtract'
    """)
multiply = _elementwise("multiply", ops.multiply, """Elementwise product of two or more nodes.

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 3)), axon_fn.input("b", shape=(None, 3))
    >>> multiply(a, b).op
    'multiply'
    """)


def _concatenate(*values, axis):
    return ops.concatenate(list(values), axis=axis)


def concatenate(*nodes: Node | Sequence[Node], axis: int = -1, name: str | None = None) -> Node:
    """Join two or more nodes along ``axis`` (default: the last, features).

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 2)), axon_fn.input("b", shape=(None, 3))
    >>> axon_fn.get_output_shape(concatenate(a, b))
    (1, 5)
    """
    return make_node("concatenate", _nodes("concatenate", nodes), _concatenate, name=name,
                     opts={"axis": axis})


def _split(x, *, sections, axis):
    return tuple(ops.split(x, sections, axis=axis))


def _part(pieces, *, index):
    return pieces[index]


@constructor("split")
def split(x: Node, sections: int | Sequence[int], *, axis: int = -1,
          name: str | None = None) -> tuple[Node, ...]:
    """Split a node into ``sections`` equal parts (or at the given indices) along ``axis``;
    returns a tuple of nodes.

    >>> import axon_fn
    >>> a, b = split(axon_fn.input("x", shape=(None, 4)), 2)
    >>> axon_fn.get_output_shape(b)
    (1, 2)
    """
    if not (is_int(sections) or (isinstance(sections, (list, tuple))
                                 and all(is_int(i) for i in sections))):
        raise InvalidArgumentError(f"split: `sections` must be a positive int (the number of "
                                   f"equal parts) or a list of int indices, got {sections!r}")
    count = sections if is_int(sections) else len(sections) + 1
    if is_int(sections) and sections < 1:
        raise InvalidArgumentError(f"split: `sections` must be a positive int or a list of "
                                   f"indices, got {sections!r}")
    whole = make_node("split", [x], _split, name=name, opts={"sections": sections, "axis": axis})
    return tuple(make_node("split_part", [whole], _part, opts={"index": i}) for i in range(count))


def _cond(x, on_true, on_false, *, predicate):
    if isinstance(x, AbstractArray):
        if tuple(on_true.shape) != tuple(on_false.shape):
            raise ShapeError(f"cond: both branches must have the same shape, got "
                             f"{tuple(on_true.shape)} and {tuple(on_false.shape)}")
        return on_true
    return on_true if bool(stop_gradient(predicate(x))) else on_false


def cond(x: Node, predicate: Callable[[Array], Any], on_true: Node, on_false: Node, *,
         name: str | None = None) -> Node:
    """``on_true`` when ``predicate(value of x)`` is true, else ``on_false`` (both branches are
    nodes of the same shape; gradients flow through the branch taken).

    >>> import numpy as np, axon_fn
    >>> x = axon_fn.input("x", shape=(None, 2))
    >>> model = cond(x, lambda v: v.sum() > 0, x >> axon_fn.relu(), x >> axon_fn.tanh())
    >>> axon_fn.predict(model, axon_fn.init(model), np.array([[3.0, -1.0]]))
    array([[3., 0.]])
    """
    if not callable(predicate):
        raise AxonTypeError(f"cond: `predicate` must be a function of the input value, got "
                            f"{type(predicate).__name__}")
    return make_node("cond", [x, on_true, on_false], _cond, name=name,
                     opts={"predicate": predicate})
