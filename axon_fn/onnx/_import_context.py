"""What an op handler sees while importing one ONNX node (private).

:class:`Value` is what one ONNX tensor is in axon_fn terms: a constant known at import time, a
float initializer (a trainable parameter waiting for the node that uses it), or the output of a
graph node. :class:`NodeContext` gives a handler the node's inputs and attributes and the two
ways to make its output: :meth:`NodeContext.apply`, which computes a function of arrays at once
when every input is a constant and otherwise adds an op node to the graph, and
:meth:`NodeContext.layer`, which records an axon_fn layer built by the handler together with
the imported values of its parameters.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .. import graph
from ..graph.core import make_node
from ..graph.node import Parameter

__all__ = ["Value", "NodeContext", "fixed_initializer", "sanitize"]


def sanitize(name):
    """An ONNX name as an axon_fn name: no leading '/', no '/', '.' or ':' inside, not empty."""
    name = re.sub(r"[/.:]+", "_", name.strip("/")).strip("_")
    return name or "node"


def fixed_initializer(value):
    """An initializer that returns the imported ``value`` (so ``init`` of an imported model
    reproduces the imported weights)."""
    value = np.asarray(value)

    def initialize(key, shape, dtype):
        return np.array(value, dtype=dtype).reshape(shape)

    return initialize


class Value:
    """One ONNX tensor during import.

    Exactly one of these holds: ``node`` is set (a graph value, computed when the model runs),
    or ``array`` is set (known now). An ``array`` from a float initializer is a parameter
    (``initializer`` names it); any other array is a constant. ``shape`` holds what is known
    statically (ints, ``None`` for sizes known only at run time) or is ``None``.
    """

    __slots__ = ("node", "array", "initializer", "uses", "shape", "dtype", "_node_cache")

    def __init__(self, node=None, array=None, initializer=None, uses=0, shape=None, dtype=None):
        self.node = node
        self.array = array
        self.initializer = initializer
        self.uses = uses
        self.shape = shape
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self._node_cache = None

    @classmethod
    def initializer_of(cls, name, array, uses):
        """A trainable weight read by ``uses`` nodes."""
        return cls(array=array, initializer=name, uses=uses, shape=tuple(array.shape),
                   dtype=array.dtype)

    @classmethod
    def constant(cls, array):
        array = np.asarray(array)
        return cls(array=array, shape=tuple(array.shape), dtype=array.dtype)

    @classmethod
    def of_node(cls, node, shape=None, dtype=None):
        return cls(node=node, shape=shape, dtype=dtype)

    @property
    def is_param(self):
        return self.node is None and self.initializer is not None

    @property
    def is_const(self):
        """Known at import time and not a parameter: folding may compute with it."""
        return self.node is None and self.initializer is None

    @property
    def rank(self):
        return None if self.shape is None else len(self.shape)

    def static_shape(self):
        """The shape if every dim is known at import time, else None."""
        if self.shape is None or any(d is None for d in self.shape):
            return None
        return self.shape

    def as_node(self, importer, name):
        """This value as a graph node: a node as it is, a parameter as a node of its own (a
        weight shared by several ONNX nodes), a constant as a ``constant`` node."""
        if self.node is not None:
            return self.node
        if self._node_cache is None:
            if self.is_param:
                layer = importer.unique_name_for(sanitize(self.initializer))
                weight = graph.param("value", tuple(self.array.shape),
                                     fixed_initializer(self.array), dtype=self.array.dtype.name)
                self._node_cache = make_node("parameter", [weight], _identity, name=layer)
                importer.add_params(layer, trainable={"value": self.array})
            else:
                self._node_cache = graph.constant(self.array,
                                                  name=importer.unique_name_for(name))
        return self._node_cache


def _identity(value):
    return value


class NodeContext:
    """One ONNX node being imported: its inputs, attributes and opset, and the ways to build its
    outputs."""

    def __init__(self, importer, proto, index, inputs, shapes):
        self._importer = importer
        self.proto = proto
        self.index = index
        self.inputs = inputs
        self.op_type = proto.op_type
        self.opset = importer.opset
        self.n_outputs = len(proto.output)
        self._shapes = shapes
        self._name = None
        self.attrs = {a.name: importer.onnx.helper.get_attribute_value(a)
                      for a in proto.attribute}
        for key, value in self.attrs.items():
            if isinstance(value, bytes):
                self.attrs[key] = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                self.attrs[key] = [v.decode() for v in value]

    # -- reading ----------------------------------------------------------------------------------

    @property
    def name(self):
        """The axon_fn name of this node (its sanitized ONNX name, made unique)."""
        if self._name is None:
            self._name = self._importer.unique_name(self.proto, self.index)
        return self._name

    def attr(self, name, default=None):
        value = self.attrs.get(name, default)
        if hasattr(value, "dims"):  # a TensorProto attribute (Constant's value)
            value = self._importer.onnx.numpy_helper.to_array(value)
        return value

    def input(self, i):
        """Input ``i``, or None when it is omitted (an empty name or past the end)."""
        return self.inputs[i] if i < len(self.inputs) else None

    def output_shape(self, i=0):
        """The statically inferred shape of output ``i`` (ints and None), or None."""
        return self._shapes.get(self.proto.output[i]) if i < self.n_outputs else None

    def constant(self, i, what, default=None):
        """Input ``i`` as a numpy array known at import time; ``default`` if it is omitted. A
        value only known at run time is an error naming the node and the input."""
        value = self.input(i)
        if value is None:
            return default
        if value.node is not None:
            raise self.error(f"input {i} ({what}) must be known when the model is imported, but "
                             f"it is computed from the model's inputs at run time; pass "
                             f"dim_values={{...}} to import_model to fix the dynamic sizes")
        return value.array

    def exclusive_param(self, i):
        """Input ``i``'s array when it is a float initializer that only this node uses (so a
        layer can own it as its parameter), else None."""
        value = self.input(i)
        if value is not None and value.is_param and value.uses == 1:
            return value.array
        return None

    def error(self, message):
        from ._common import OnnxImportError
        return OnnxImportError(f"import_model: node {self.proto.name or self.name!r} "
                               f"({self.op_type}, opset {self.opset}): {message}")

    # -- building ---------------------------------------------------------------------------------

    def apply(self, fn, inputs, *, n_out=1, op_name=None, **static):
        """``fn(*arrays, **static)`` on ``inputs`` (Values or None): computed now when no input
        is a graph node or a parameter, else an op node of the graph. ``n_out`` > 1 means
        ``fn`` returns that many arrays; a tuple of Values is returned then."""
        if all(v is None or v.is_const for v in inputs):
            out = fn(*[None if v is None else v.array for v in inputs], **static)
            if n_out == 1:
                return Value.constant(out)
            return tuple(Value.constant(o) for o in out)
        node = self._op_node(fn, inputs, op_name or self.op_type, static)
        if n_out == 1:
            return Value.of_node(node, self.output_shape(0))
        parts = []
        for i in range(n_out):
            part = make_node("output", [node], _Pick(i), name=self._importer.unique_name_for(
                f"{self.name}_out{i}"))
            parts.append(Value.of_node(part, self.output_shape(i)))
        return tuple(parts)

    def _op_node(self, fn, inputs, op_name, static):
        args, slots, fixed = [], [], []
        params = {}
        roles = self._importer.input_roles(self.op_type)
        for i, value in enumerate(inputs):
            if value is None or value.is_const:
                fixed.append((i, None if value is None else value.array))
            elif value.is_param and value.uses == 1:
                role = roles[i] if i < len(roles) else f"input_{i}"
                role = sanitize(role if role not in params else f"{role}_{i}")
                args.append(graph.param(role, tuple(value.array.shape),
                                        fixed_initializer(value.array),
                                        dtype=value.array.dtype.name))
                params[role] = value.array
                slots.append(i)
            else:
                args.append(value.as_node(self._importer, f"{self.name}_in{i}"))
                slots.append(i)
        if params:
            self._importer.add_params(self.name, trainable=params)
        run = _OpCall(fn, len(inputs), tuple(slots), tuple(fixed))
        return make_node(op_name, args, run, name=self.name, opts=static)

    def layer(self, node, trainable=None, state=None):
        """Record ``node``, an axon_fn layer the handler built (named ``self.name``), with the
        imported values of its parameters, and return its output value. The parameters'
        initializers become the imported values, so ``init`` of an imported model gives the
        imported weights and statistics, as it does for op nodes."""
        values = {**(trainable or {}), **(state or {})}
        args = tuple(dataclasses.replace(a, initializer=fixed_initializer(values[a.name]))
                     if isinstance(a, Parameter) and a.name in values else a for a in node.args)
        self._importer.add_params(self.name, trainable, state)
        return Value.of_node(dataclasses.replace(node, args=args), self.output_shape(0))


class _OpCall:
    """An op node's function: puts the constants back among the run-time values, in ONNX
    input order, then calls the op's function. A class, not a closure, so a summary shows the
    function it wraps."""

    __slots__ = ("fn", "n", "slots", "fixed", "__name__")

    def __init__(self, fn, n, slots, fixed):
        self.fn, self.n, self.slots, self.fixed = fn, n, slots, fixed
        self.__name__ = getattr(fn, "__name__", "onnx_op")

    def __call__(self, *values, **static):
        full = [None] * self.n
        for i, array in self.fixed:
            full[i] = array
        for i, value in zip(self.slots, values):
            full[i] = value
        return self.fn(*full, **static)


class _Pick:
    """Output ``i`` of a node with several outputs."""

    __slots__ = ("i", "__name__")

    def __init__(self, i):
        self.i = i
        self.__name__ = f"output_{i}"

    def __call__(self, outputs):
        return outputs[self.i]
