"""Graph constructors for Elixir Axon's 22 activations, plus ``activation(x, name)``.

Each takes its function's options as keywords: ``leaky_relu(alpha=0.2)``, ``softmax(axis=1)``.

>>> import numpy as np, axon_fn
>>> model = axon_fn.input("x", shape=(None, 2)) >> relu()
>>> axon_fn.predict(model, axon_fn.init(model), np.array([[-1.0, 1.0]]))
array([[0., 1.]])
"""

from __future__ import annotations

from typing import Any, Callable

from .. import activations as _activations
from ..graph.core import make_node
from ..graph.node import Node, constructor
from ..typing import Array
from ._common import ACTIVATIONS, resolve_activation

__all__ = ["activation", *ACTIVATIONS]


@constructor("activation")
def activation(x: Node, activation: str | Callable[[Array], Array], *, name: str | None = None,
               **opts: Any) -> Node:
    """Apply an activation given by name (``"relu"``) or function, as Axon's ``activation``.

    >>> import axon_fn
    >>> (axon_fn.input("x") >> activation("gelu")).op
    'gelu'
    """
    fn = resolve_activation(activation, "activation")
    op = activation if isinstance(activation, str) else getattr(fn, "__name__", "activation")
    return make_node(op, [x], fn, name=name, opts=opts)


def _activation_layer(op):
    fn = getattr(_activations, op)

    @constructor(op)
    def make(x: Node, *, name: str | None = None, **opts: Any) -> Node:
        return make_node(op, [x], fn, name=name, opts=opts)

    make.__name__ = make.__qualname__ = op
    make.__doc__ = (f"Layer applying :func:`axon_fn.activations.{op}` (options as keywords).\n\n"
                    f"    >>> import axon_fn\n"
                    f"    >>> (axon_fn.input('x', shape=(None, 3)) >> axon_fn.{op}()).op\n"
                    f"    '{op}'\n    ")
    return make


for _op in ACTIVATIONS:
    globals()[_op] = _activation_layer(_op)
del _op
