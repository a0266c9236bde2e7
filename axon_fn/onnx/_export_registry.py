"""The table of ONNX export rules: primitive name -> rule (private).

A rule ``rule(graph, inputs, output, **settings)`` emits the ONNX nodes of one recorded
primitive call and returns the name of the value holding its result.
"""

from __future__ import annotations

__all__ = ["RULES", "rule"]

RULES = {}


def rule(*names):
    """Register the decorated function as the export rule of the primitives ``names``."""
    def register(fn):
        for name in names:
            if name in RULES:
                raise RuntimeError(f"primitive {name} has two export rules")
            RULES[name] = fn
        return fn
    return register
