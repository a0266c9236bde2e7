"""Reading and rewriting model graphs: inputs, op counts, parameters, node maps and rewrites,
popping the last node, and hooks.

Graphs are immutable, so every rewrite returns a new graph that shares the untouched nodes.

>>> import axon_fn
>>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4) >> axon_fn.relu()
>>> get_op_counts(model)
{'input': 1, 'dense': 1, 'relu': 1}
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Iterable

from ._program import compile_graph
from .errors import AxonTypeError, InvalidArgumentError
from .graph.core import make_node
from .graph.node import Hook, Node, constructor
from .model_state import nest_paths
from .typing import PyTree

__all__ = ["get_inputs", "get_op_counts", "get_parameters", "map_nodes", "rewrite_nodes",
           "pop_node", "attach_hook", "freeze_statistics"]


def _order(model):
    return [step.node for step in compile_graph(model).steps]


def get_inputs(model: Node | PyTree) -> dict[str, tuple[int | None, ...] | None]:
    """``{input name: declared shape}`` in graph order.

    >>> import axon_fn
    >>> a, b = axon_fn.input("a", shape=(None, 2)), axon_fn.input("b", shape=(None, 2))
    >>> get_inputs(axon_fn.add(a, b))
    {'a': (None, 2), 'b': (None, 2)}
    """
    return {name: node.meta["shape"] for name, node in compile_graph(model).inputs.items()}


def get_op_counts(model: Node | PyTree) -> dict[str, int]:
    """``{op: number of nodes}`` in graph order (see the module example)."""
    counts = {}
    for node in _order(model):
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def get_parameters(model: Node | PyTree) -> dict[str, Any]:
    """The declared parameters as ``{layer: {name: Parameter}}`` (nested like the ModelState;
    shapes may still be functions of the input shapes).

    >>> import axon_fn
    >>> params = get_parameters(axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4))
    >>> {k: v.kind for k, v in params["dense_0"].items()}
    {'kernel': 'trainable', 'bias': 'trainable'}
    """
    return nest_paths({path: parameter for path, (_, parameter) in
                       compile_graph(model).parameters().items()})


def _rebuild(model, replace_node):
    """Walk ``model`` inputs-first; ``replace_node(original, with_new_inputs)`` gives each
    node's replacement. Containers (dicts/tuples of nodes) are rebuilt too."""
    new = {}
    program = compile_graph(model)
    for step in program.steps:
        node = step.node
        args = tuple(new[id(a)] if isinstance(a, Node) else a for a in node.args)
        moved = node if all(a is b for a, b in zip(args, node.args)) else dataclasses.replace(
            node, args=args)
        new[id(node)] = replace_node(node, moved)
    output = program.steps[program.output_slot].node
    if isinstance(model, Node):
        return new[id(output)]
    rebuilt = new[id(output)]
    return rebuilt.fn(*rebuilt.inputs)  # the container's pytree of new nodes


def map_nodes(model: Node | PyTree, fn: Callable[[Node], Any]) -> Node | PyTree:
    """A new graph where each node is ``fn(node)`` (``node`` already reads the mapped inputs);
    ``fn`` returns a node, e.g. ``dataclasses.replace(node, op=..., fn=...)``.

    >>> import dataclasses, axon_fn
    >>> from axon_fn import activations
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.relu()
    >>> swap = lambda n: dataclasses.replace(n, op="tanh", fn=activations.tanh) if n.op == "relu" else n
    >>> map_nodes(model, swap).op
    'tanh'
    """
    def replace(_, node):
        out = fn(node)
        if not isinstance(out, Node):
            raise AxonTypeError(f"map_nodes: `fn` must return a node, got {type(out).__name__} "
                                f"for {node!r}")
        return out

    return _rebuild(model, replace)


def rewrite_nodes(model: Node | PyTree,
                  fn: Callable[[Node], Callable[[list[Node], Node], Node] | None]) -> Node | PyTree:
    """Replace nodes by subgraphs. ``fn(node)`` returns ``None`` (keep) or a function
    ``rewrite(inputs, output) -> new_output`` that receives the node's (rewritten) input nodes
    and the node itself, e.g. to add a low-rank (LoRA) branch beside every dense layer.

    >>> import axon_fn
    >>> model = axon_fn.input("x", shape=(None, 4)) >> axon_fn.dense(3, name="proj")
    >>> def lora(node):
    ...     if node.op != "dense":
    ...         return None
    ...     return lambda inputs, out: axon_fn.add(out, inputs[0] >> axon_fn.dense(1) >> axon_fn.dense(3))
    >>> axon_fn.get_op_counts(rewrite_nodes(model, lora))["dense"]
    3
    """
    def replace(_, node):
        rewrite = fn(node)
        if rewrite is None:
            return node
        out = rewrite(list(node.inputs), node)
        if not isinstance(out, Node):
            raise AxonTypeError(f"rewrite_nodes: the rewrite of {node!r} must return a node, got "
                                f"{type(out).__name__}")
        return out

    return _rebuild(model, replace)


def pop_node(model: Node | PyTree) -> tuple[Node, Node]:
    """``(last node, its input)``: the graph without its final layer.

    >>> import axon_fn
    >>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4) >> axon_fn.softmax()
    >>> popped, rest = pop_node(model)
    >>> popped.op, rest.op
    ('softmax', 'dense')
    """
    if not isinstance(model, Node):
        raise AxonTypeError(f"pop_node: `model` must be a model node, got {type(model).__name__}")
    if len(model.inputs) != 1:
        raise InvalidArgumentError(f"pop_node: the last node ({model.op}) has "
                                   f"{len(model.inputs)} inputs; only a node with one input can "
                                   f"be popped")
    if model.name is None:  # give it the name it had in the model, so state.drop(popped.name)
        program = compile_graph(model)
        model = dataclasses.replace(model, name=program.steps[program.output_slot].name)
    return model, model.inputs[0]


def freeze_statistics(model: Node | PyTree, names: Iterable[str] | None = None) -> Node | PyTree:
    """A copy of ``model`` whose layers with running statistics (``batch_norm``) inside the
    layers or namespaces ``names`` (all when ``None``) always run in inference mode: in train
    mode they normalize with their running statistics and leave them unchanged, as a Keras
    layer with ``trainable=False`` or a PyTorch ``BatchNorm`` in ``.eval()`` does. Use it with
    :func:`axon_fn.freeze` when fine-tuning a pretrained part (freeze stops its parameters
    from being trained; this stops its statistics from drifting). The layer names, and so the
    ModelState, stay the same.

    >>> import numpy as np, axon_fn
    >>> x = axon_fn.input("x", shape=(None, 2))
    >>> model = axon_fn.namespace("body", x >> axon_fn.batch_norm()) >> axon_fn.dense(1)
    >>> state = axon_fn.init(model)
    >>> _, train_fn = axon_fn.build(freeze_statistics(model, "body"), mode="train")
    >>> _, new_state = train_fn(state, np.array([[1.0, 2.0], [3.0, 6.0]]))
    >>> new_state.state["body"]["batch_norm_0"]["mean"]  # unchanged
    array([0., 0.], dtype=float32)
    """
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        if not all(isinstance(n, str) for n in names):
            raise AxonTypeError(f"freeze_statistics: `names` must be None, a layer or namespace "
                                f"name (dotted paths allowed) or a list of them, got {names!r}")
        prefixes = [tuple(n.split(".")) for n in names]
    program = compile_graph(model)
    chosen, matched = set(), set()
    for step in program.steps:
        hits = [p for p in (prefixes if names is not None else [()])
                if step.path[:len(p)] == p]
        matched.update(hits)
        if hits and step.node.takes_training and any(
                p.kind == "state" for p in step.node.parameters):
            chosen.add(id(step.node))
    if names is not None and len(matched) < len(prefixes):
        missing = [".".join(p) for p in prefixes if p not in matched]
        raise InvalidArgumentError(f"freeze_statistics: {missing[0]!r} names no layer or "
                                   f"namespace of this model")

    def replace(original, node):
        if id(original) not in chosen:
            return node
        return dataclasses.replace(node, takes_training=False,
                                   opts=MappingProxyType({**node.opts, "training": False}))

    return _rebuild(model, replace)


@constructor("attach_hook")
def attach_hook(x: Node, fn: Callable[[Any], Any], *, on: str = "forward",
                mode: str = "both") -> Node:
    """Call ``fn`` with the node's output (``on="forward"``), with the gradient reaching it
    (``"backward"``, during ``grad``), or both; ``mode`` limits it to ``"train"`` or
    ``"inference"``. Hooks are for inspection: what ``fn`` returns is ignored. The hook is a
    node of op ``hook`` placed after ``x``.

    >>> import numpy as np, axon_fn
    >>> seen = []
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.relu() >> attach_hook(
    ...     lambda v: seen.append(v.shape))
    >>> _ = axon_fn.predict(model, axon_fn.init(model), np.ones((5, 2)))
    >>> seen
    [(5, 2)]
    """
    if on not in ("forward", "backward", "both"):
        raise InvalidArgumentError(f"attach_hook: `on` must be 'forward', 'backward' or 'both', "
                                   f"got {on!r}")
    if mode not in ("both", "train", "inference"):
        raise InvalidArgumentError(f"attach_hook: `mode` must be 'both', 'train' or "
                                   f"'inference', got {mode!r}")
    if not callable(fn):
        raise AxonTypeError(f"attach_hook: `fn` must be callable, got {type(fn).__name__}")
    # A new identity node, not a hooked copy of x: a copy would be a second layer wherever
    # other layers also read x.
    return dataclasses.replace(make_node("hook", [x], _identity), hooks=(Hook(fn, on, mode),))


def _identity(value):
    return value


