"""ONNX import: an ONNX graph becomes an ordinary axon_fn graph and a :class:`ModelState`.

The importer walks the ONNX nodes in their (topological) order, keeping for every ONNX value
what it is in axon_fn terms (:class:`Value`): a constant known at import time, a float
initializer that becomes a trainable parameter, or a graph node. Each ONNX op is one small
handler in the op tables (``_import_*.py``); a handler maps the node onto an axon_fn layer
where one fits (``Conv`` -> ``conv(channels="first")``, ``Gemm`` -> ``dense``) and onto an op
node (a :func:`axon_fn.layer` over ``axon_fn.ops``) otherwise. An op whose inputs are all
constants is computed at once, which folds the shape-computation subgraphs of exporters
(``Shape -> Gather -> Concat -> Reshape``) when the shapes are static. Where a shape is only
known at run time (a dynamic batch), the same subgraph stays in the model and computes on host
integers from the arrays' shapes, which are concrete under ``grad``, ``jit`` and ``init`` alike.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from .. import graph
from ..graph.node import Node
from ..model_state import ModelState
from ..typing import PathLike
from ._common import OnnxImportError, require_onnx
from ._import_context import NodeContext, Value, sanitize
from ._import_registry import HANDLERS, SETTINGS, WEIGHTS, load_handlers

__all__ = ["import_model", "supported_ops"]


def supported_ops() -> list[str]:
    """The ONNX op types (default domain) that :func:`import_model` handles, sorted.

    >>> from axon_fn import onnx as axon_onnx
    >>> {"Conv", "Gemm", "LSTM"} <= set(axon_onnx.supported_ops())
    True
    """
    load_handlers()
    return sorted(HANDLERS)


def import_model(
        source: PathLike | bytes | Any, *,
        dim_values: Mapping[str, int] | None = None) -> tuple[Node | dict[str, Node], ModelState]:
    """Read an ONNX model and return ``(model, state)``: an axon_fn graph and its ModelState.

    ``source`` is a path, the file's bytes, or an ``onnx.ModelProto``. Graph inputs keep their
    ONNX names (``.`` and ``/``, which axon_fn names cannot hold, become ``_``), dtypes and
    shapes, symbolic and unknown dims becoming ``None``; ``dim_values`` (``{dim name: size}``)
    fixes symbolic dims instead. Inputs that have an initializer (older exporters list weights
    as inputs) are parameters, not model inputs. One graph output gives an array; several give a
    dict keyed by output name. Float initializers become trainable parameters named after the
    node that uses them (``state["conv1_Conv"]["kernel"]``); batch-norm running statistics go
    to ``state.state``. Initializers that are settings (shapes, axes, resize scales) or
    scalars (a formula's constants, which exporters also store as initializers) stay
    constants. The model is a normal axon_fn model: ``predict``, ``build``, ``jit``,
    ``grad``, ``freeze`` and the trainer all work on it.

    >>> import numpy as np, onnx
    >>> from onnx import helper, TensorProto
    >>> from axon_fn import onnx as axon_onnx
    >>> import axon_fn
    >>> node = helper.make_node("Relu", ["x"], ["y"], name="act")
    >>> g = helper.make_graph([node], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    >>> model, state = axon_onnx.import_model(helper.make_model(g))
    >>> axon_fn.predict(model, state, {"x": np.array([[-1.0, 0.0, 2.0]], np.float32)})
    array([[0., 0., 2.]], dtype=float32)

    Raises :class:`OnnxImportError` listing every unsupported op (type, node name, opset) at
    once.
    """
    onnx = require_onnx("axon_fn.onnx.import_model")
    load_handlers()
    proto = _load(onnx, source)
    return _Importer(onnx, proto, dim_values or {}).run()


def _load(onnx, source):
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        return onnx.load_model_from_string(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise OnnxImportError(f"import_model: no ONNX file at {os.fspath(source)!r}")
        return onnx.load(os.fspath(source))
    raise OnnxImportError(f"import_model: `source` must be a path, bytes or an onnx.ModelProto, "
                          f"got {type(source).__name__}")


class _Importer:
    """One import: the ONNX graph, the values met so far, and the parameters collected."""

    def __init__(self, onnx, proto, dim_values):
        self.onnx = onnx
        self.proto = proto
        self.dim_values = dict(dim_values)
        self.opset = _default_opset(proto)
        self.values = {}
        self.names = set()
        self.trainable = {}
        self.state = {}
        self.roles = {}

    def run(self):
        graph_proto = self.proto.graph
        self._check_supported(graph_proto)
        shapes = self._inferred_shapes()
        initializers = {t.name: self.onnx.numpy_helper.to_array(t) for t in
                        graph_proto.initializer}
        uses = _count_uses(graph_proto)
        settings, weights = _read_at(graph_proto, SETTINGS), _read_at(graph_proto, WEIGHTS)
        for name, array in initializers.items():
            array = np.asarray(array)
            if name in settings or not _is_weight(array, name in weights):
                self.values[name] = Value.constant(array)
            else:
                self.values[name] = Value.initializer_of(name, array, uses.get(name, 0))
        for info in graph_proto.input:
            if info.name in initializers:
                continue  # an initializer listed as an input (older exporters): a parameter
            node = self._input(info)
            self.values[info.name] = Value.of_node(node, node.meta["shape"],
                                                   node.meta["dtype"] or np.dtype("float32"))
        for index, node_proto in enumerate(graph_proto.node):
            self._convert(node_proto, index, shapes)
        return self._outputs(graph_proto), ModelState(self.trainable, self.state)

    # -- set-up ---------------------------------------------------------------------------------

    def _check_supported(self, graph_proto):
        missing = []
        for node in graph_proto.node:
            if node.domain not in ("", "ai.onnx") or node.op_type not in HANDLERS:
                domain = f"{node.domain}::" if node.domain not in ("", "ai.onnx") else ""
                missing.append(f"{domain}{node.op_type} (node {node.name or '<unnamed>'!r})")
        if missing:
            kinds = sorted({m.split(" ")[0] for m in missing})
            raise OnnxImportError(
                f"import_model: this model uses {len(kinds)} op type(s) axon_fn cannot import "
                f"at opset {self.opset}: {', '.join(kinds)}. Nodes: {'; '.join(missing)}. "
                f"Supported: axon_fn.onnx.supported_ops()")

    def _inferred_shapes(self):
        """Static shapes of the graph's values from ONNX's own shape inference (dims as ints or
        None), used to fold shape computations on values whose shape is fully known."""
        try:
            inferred = self.onnx.shape_inference.infer_shapes(self.proto)
        except Exception:  # inference is a help for folding, never a requirement
            return {}
        shapes = {}
        for info in (*inferred.graph.value_info, *inferred.graph.output):
            shape = self._shape(info)
            if shape is not None:
                shapes[info.name] = shape
        return shapes

    def _shape(self, info):
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            return None
        dims = []
        for d in tensor.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(self.dim_values.get(d.dim_param) if d.dim_param else None)
        return tuple(dims)

    def _input(self, info):
        shape = self._shape(info)
        elem = info.type.tensor_type.elem_type
        dtype = np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else None
        name = sanitize(info.name)
        self._claim(name, f"graph input {info.name!r}")
        return graph.input(name, shape=shape, dtype=dtype)

    def _claim(self, name, what):
        if name in self.names:
            raise OnnxImportError(f"import_model: {what} becomes the axon_fn name {name!r}, "
                                  f"which another input or node already has")
        self.names.add(name)

    def unique_name(self, proto, index):
        """The axon_fn name of an ONNX node: its own name sanitized, or the op type and index."""
        return self.unique_name_for(sanitize(proto.name) if proto.name else
                                    f"{proto.op_type.lower()}_{index}")

    def unique_name_for(self, base):
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def input_roles(self, op_type):
        """The names ONNX's schema gives the inputs of ``op_type`` at this opset (``X``,
        ``W``, ``B``...), which name an op node's parameters."""
        roles = self.roles.get(op_type)
        if roles is None:
            try:
                schema = self.onnx.defs.get_schema(op_type, self.opset, "")
                roles = [p.name for p in schema.inputs]
            except Exception:  # an op newer than the model's opset claims: positional names
                roles = []
            self.roles[op_type] = roles
        return roles

    # -- nodes ----------------------------------------------------------------------------------

    def _convert(self, proto, index, shapes):
        inputs = [self.values[n] if n else None for n in proto.input]
        for n, value in zip(proto.input, inputs):
            if n and value is None:
                raise OnnxImportError(f"import_model: node {proto.name!r} ({proto.op_type}) "
                                      f"reads {n!r}, which no earlier node produces")
        context = NodeContext(self, proto, index, inputs, shapes)
        try:
            outputs = HANDLERS[proto.op_type](context)
        except OnnxImportError:
            raise
        except Exception as err:
            raise OnnxImportError(f"import_model: node {proto.name!r} ({proto.op_type}, opset "
                                  f"{self.opset}) could not be imported: {err}") from err
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        for name, value in zip(proto.output, outputs):
            if name:
                if value.shape is None and name in shapes:
                    value.shape = shapes[name]
                self.values[name] = value

    def add_params(self, layer_name, trainable=None, state=None):
        """Record the imported values of a layer's parameters."""
        if trainable:
            self.trainable.setdefault(layer_name, {}).update(trainable)
        if state:
            self.state.setdefault(layer_name, {}).update(state)

    def _outputs(self, graph_proto):
        nodes = {}
        for info in graph_proto.output:
            value = self.values.get(info.name)
            if value is None:
                raise OnnxImportError(f"import_model: graph output {info.name!r} is produced by "
                                      f"no node")
            nodes[info.name] = value.as_node(self, f"output_{sanitize(info.name)}")
        if len(nodes) == 1:
            return next(iter(nodes.values()))
        return graph.container(nodes)


def _default_opset(proto):
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _read_at(graph_proto, positions):
    """Names of the values some node reads at one of ``positions[op_type]``."""
    return {name for node in graph_proto.node
            for i, name in enumerate(node.input) if i in positions.get(node.op_type, ())}


def _is_weight(array, in_weight_slot):
    """Whether an initializer is a trainable weight: finite floats, and several of them unless
    an op reads it as a weight. Other scalars are the constants of a formula (a scale, an
    epsilon) that exporters store as initializers too; training them would change it."""
    return (array.dtype.kind == "f" and bool(np.isfinite(array).all())
            and (array.size > 1 or in_weight_slot))


def _count_uses(graph_proto):
    uses = {}
    for node in graph_proto.node:
        for name in node.input:
            if name:
                uses[name] = uses.get(name, 0) + 1
    for info in graph_proto.output:
        uses[info.name] = uses.get(info.name, 0) + 1
    return uses

