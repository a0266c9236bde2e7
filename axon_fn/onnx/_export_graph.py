"""The ONNX graph being written: nodes named by layer, initializers, casts and constants, and the
batch size read at run time. The export rules (``_export_rules_*``) build on this.
"""

from __future__ import annotations

import numpy as np

from ._common import OnnxExportError
from ._export_trace import Batch, BatchConst

__all__ = ["Graph", "Value", "INT64_MAX", "INT64_MIN"]

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class Value:
    """One slot as a rule sees it: its value from the (first) trace, its dims (ints, or
    :class:`Batch` for batch-sized axes) and, for a constant, the constant (a value, a
    :class:`Batch` count or a :class:`BatchConst`)."""

    __slots__ = ("slot", "value", "dims", "const", "is_const")

    def __init__(self, slot, value, dims, const=None, is_const=False):
        self.slot, self.value, self.dims = slot, value, tuple(dims)
        self.const, self.is_const = const, is_const

    @property
    def shape(self):
        return np.shape(self.value)

    @property
    def ndim(self):
        return len(self.dims)

    @property
    def dtype(self):
        return np.asarray(self.value).dtype if not hasattr(self.value, "dtype") else \
            np.dtype(self.value.dtype)

    @property
    def static(self):
        """The constant's value when it is known at export time (not batch-sized), else None."""
        if not self.is_const or isinstance(self.const, (Batch, BatchConst)):
            return None
        return self.const


class Graph:
    """Nodes and initializers of the graph being exported.

    ``layer`` is the layer the next nodes belong to; node names are ``"<layer>/<OpType>_<k>"``
    and a node's (first) output is named like the node.
    """

    def __init__(self, onnx, opset):
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes, self.initializers, self.names = [], {}, {}
        self.layer = "model"
        self.batch_input = None
        self._counts, self._consts, self._casts = {}, {}, {}
        self._batch = None

    # Nodes and constants -------------------------------------------------------------------

    def node(self, op, inputs, outputs=1, **attrs):
        """Add a node; returns its output name (a list of them when ``outputs > 1``)."""
        key = (self.layer, op)
        k = self._counts.get(key, 0)
        self._counts[key] = k + 1
        name = f"{self.layer}/{op}_{k}"
        outs = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        attrs = {a: v for a, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def initializer(self, name, array):
        self.initializers[name] = self.onnx.numpy_helper.from_array(np.asarray(array), name)
        return name

    def const(self, array, dtype=None):
        """An initializer holding ``array`` (small ones are shared by value)."""
        array = np.asarray(array, dtype)
        if array.dtype == object:
            raise OnnxExportError(f"export: layer {self.layer!r}: cannot store a constant of "
                                  f"Python objects")
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        k = self._counts.get((self.layer, "const"), 0)
        self._counts[(self.layer, "const")] = k + 1
        name = self.initializer(f"{self.layer}/const_{k}", array)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        """A 1-D int64 constant (axes, shapes, pads)."""
        return self.const(np.asarray(list(values), np.int64).reshape(-1))

    def tensor_type(self, dtype):
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def cast(self, name, source, dtype):
        dtype = np.dtype(dtype)
        if np.dtype(source) == dtype:
            return name
        key = (name, dtype.str)
        if key not in self._casts:
            self._casts[key] = self.node("Cast", [name], to=self.tensor_type(dtype))
        return self._casts[key]

    def get(self, v, dtype=None):
        """The name of value ``v``, cast to ``dtype`` if given (constants are stored in it)."""
        if not v.is_const:
            return self.cast(self.names[v.slot], v.dtype, dtype or v.dtype)
        c = v.const
        if isinstance(c, Batch):
            return self.batch_scalar(c.k, dtype or np.int64)
        if isinstance(c, BatchConst):
            sample = self.const(c.sample, dtype or c.sample.dtype)
            return self.node("Expand", [sample, self.shape_tensor(c.dims)])
        return self.const(c, dtype or np.asarray(c).dtype)

    # Axes and shapes -----------------------------------------------------------------------

    def reduce(self, op, x, axes, keepdims):
        """``Reduce*`` over ``axes`` in the form of this opset (axes an input from opset 13 for
        ReduceSum, from 18 for the others)."""
        keep = int(bool(keepdims))
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(op, [x, self.ints(axes)], keepdims=keep)
        return self.node(op, [x], axes=list(axes), keepdims=keep)

    def batch(self):
        """The batch size as a 1-D int64 tensor ``[B]``, read from a graph input at run time."""
        if self._batch is None:
            if self.batch_input is None:
                raise OnnxExportError(f"export: layer {self.layer!r} needs the batch size but "
                                      f"no input has a batch axis; pass dynamic_batch=False")
            shape = self.node("Shape", [self.batch_input])
            self._batch = self.node("Gather", [shape, self.ints([0])], axis=0)
        return self._batch

    def _batch_times(self, k):
        """``[k * B]``, a 1-D int64 tensor."""
        return self.batch() if k == 1 else self.node("Mul", [self.batch(), self.ints([k])])

    def batch_scalar(self, k, dtype):
        n = self.node("Squeeze", [self._batch_times(k), self.ints([0])])
        return self.cast(n, np.int64, dtype)

    def shape_tensor(self, dims):
        """A 1-D int64 shape from ints and :class:`Batch` sizes (a constant when static)."""
        if not any(isinstance(d, Batch) for d in dims):
            return self.ints(dims)
        parts, run = [], []
        for d in dims:
            if isinstance(d, Batch):
                if run:
                    parts.append(self.ints(run))
                    run = []
                parts.append(self._batch_times(d.k))
            else:
                run.append(int(d))
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, axis=0)

    def transpose(self, x, perm):
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        return self.node("Transpose", [x], perm=perm)
