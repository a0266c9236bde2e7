"""Looking at a model: a summary table, and Graphviz (DOT) and Mermaid exports.

>>> import axon_fn
>>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(2)
>>> print(to_mermaid(model))
graph TD
    n0["x (input)"]
    n1["dense_0 (dense)"]
    n0 --> n1
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ._program import compile_graph
from .build import trace_shapes
from .graph.node import Node, Parameter
from .typing import ArrayLike, PyTree

__all__ = ["summary", "to_dot", "to_mermaid"]


def _shape_text(value):
    if hasattr(value, "shape"):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shape_text(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in value.items()) + "}"
    return "-"


def summary(model: Node | PyTree, template: ArrayLike | Mapping[str, ArrayLike] | None = None, *,
            print_fn: Callable[[str], Any] = print) -> None:
    """Print a table of the layers: name, op, input shapes, output shape, parameters and their
    bytes, with totals. ``template`` is as for ``init`` (``None``: the declared shapes).

    >>> import axon_fn
    >>> summary(axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(2))  # doctest: +NORMALIZE_WHITESPACE
    layer    op     inputs  output  params  bytes
    x        input  -       (1, 3)  0       0
    dense_0  dense  (1, 3)  (1, 2)  8       32
    total                           8       32
    """
    _, records, _ = trace_shapes(model, template)
    rows = [("layer", "op", "inputs", "output", "params", "bytes")]
    total_params = total_bytes = 0
    for step, path, args, out in records:
        params = [a for a, ref in zip(args, step.refs) if isinstance(ref, Parameter)]
        inputs = [a for a, ref in zip(args, step.refs) if not isinstance(ref, Parameter)]
        count = sum(int(np.prod(p.shape)) for p in params)
        size = sum(int(np.prod(p.shape)) * np.dtype(p.dtype).itemsize for p in params)
        total_params += count
        total_bytes += size
        rows.append((".".join(path), step.node.op,
                     ", ".join(_shape_text(a) for a in inputs) or "-", _shape_text(out),
                     str(count), str(size)))
    rows.append(("total", "", "", "", str(total_params), str(total_bytes)))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print_fn("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _graph(model):
    program = compile_graph(model)
    nodes = [(i, step.name, step.node.op) for i, step in enumerate(program.steps)]
    edges = [(ref, i) for i, step in enumerate(program.steps) for ref in step.refs
             if not isinstance(ref, Parameter)]
    return nodes, edges


def to_dot(model: Node | PyTree) -> str:
    """The graph in Graphviz DOT format (render with ``dot -Tsvg``).

    >>> import axon_fn
    >>> "n0 -> n1" in to_dot(axon_fn.input("x") >> axon_fn.relu())
    True
    """
    nodes, edges = _graph(model)
    lines = ["digraph model {", "    rankdir=TB;", "    node [shape=box];"]
    lines += [f'    n{i} [label="{name}\\n{op}"];' for i, name, op in nodes]
    lines += [f"    n{a} -> n{b};" for a, b in edges]
    return "\n".join(lines + ["}"])


def to_mermaid(model: Node | PyTree) -> str:
    """The graph as a Mermaid flowchart (renders in GitHub Markdown); see the module example."""
    nodes, edges = _graph(model)
    lines = ["graph TD"]
    lines += [f'    n{i}["{name} ({op})"]' for i, name, op in nodes]
    lines += [f"    n{a} --> n{b}" for a, b in edges]
    return "\n".join(lines)
