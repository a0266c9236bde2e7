"""The table of ONNX op importers: op type -> handler (private).

A handler takes a :class:`~axon_fn.onnx._import_context.NodeContext` and returns the node's
output value, or a tuple of them for ops with several outputs.
"""

from __future__ import annotations

import importlib

__all__ = ["HANDLERS", "SETTINGS", "WEIGHTS", "handles", "load_handlers"]

HANDLERS = {}

# op type -> the input positions that are settings (shapes, axes, scales, pads, bounds): an
# initializer read there is a constant of the model, never a trainable parameter
SETTINGS = {}
# op type -> the input positions that hold weights: an initializer read there is trainable
# even when it is a single number (a PReLU slope)
WEIGHTS = {}

# The modules that fill the table, one per family of ops.
_FAMILIES = ("_import_math", "_import_nn", "_import_shape", "_import_rnn")


def handles(*op_types, settings=(), weights=()):
    """Register the decorated function as the importer of ``op_types``, whose inputs at the
    positions ``settings`` configure the op rather than carry data, and at ``weights`` are
    its learned parameters."""
    def register(handler):
        for op_type in op_types:
            if op_type in HANDLERS:
                raise RuntimeError(f"ONNX op {op_type} has two importers")
            HANDLERS[op_type] = handler
            if settings:
                SETTINGS[op_type] = frozenset(settings)
            if weights:
                WEIGHTS[op_type] = frozenset(weights)
        return handler
    return register


def load_handlers():
    """Import the op families (once), which registers their handlers."""
    for family in _FAMILIES:
        importlib.import_module(f"axon_fn.onnx.{family}")
