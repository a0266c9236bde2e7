"""``export``: write an axon_fn model as an ONNX model that onnxruntime runs.

The model is traced through its primitives: the interpreter runs it once in inference mode on
staged inputs and parameters (see ``_export_trace``), every primitive call is recorded with the
layer that made it, and a table keyed by primitive name (``_export_rules_math``,
``_export_rules_array``) turns each call into ONNX nodes named ``"<layer>/<OpType>_<k>"``.
With a dynamic batch the model is traced at two batch sizes; sizes that follow the batch are
read from a graph input at run time.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ..build import _as_input_dict, _as_state, _check_inputs
from .._program import compile_graph
from ..graph.node import Node
from ..model_state import ModelState
from ..staging import _live_steps
from ..typing import ArrayLike, PathLike, PyTree
from ._common import OnnxExportError, require_onnx
from ._export_graph import Graph, Value
from . import _export_rules_math  # noqa: F401 - fills the rule table
from ._export_registry import RULES
from ._export_rules_array import BATCH_PARAMS
from ._export_trace import Batch, StepsDiffer, merge_traces, primitive_table, trace

__all__ = ["export", "RULES", "UNEXPORTED", "OPSETS"]


_GRADIENT = "a gradient (VJP) primitive: inference never runs it"
UNEXPORTED = {  # primitive -> why it has no rule, by design
    **{name: _GRADIENT for name in (
        "relu_grad", "sigmoid_grad", "tanh_grad", "softmax_grad", "log_softmax_grad",
        "conv_general_kernel_grad", "max_pool_general_grad", "avg_pool_general_grad",
        "softmax_cross_entropy_grad", "prod_of_others")},
    "index_add": "a scatter-add, the VJP of the gathers: inference never runs it",
    "softmax_cross_entropy": "a training loss: a model's forward pass does not call it",
    "quantized_dense": "int8 weight-only layers (axon_fn.quantize): export the float model",
    **{name: "ONNX has no matrix decomposition or solver operator" for name in (
        "solve", "cholesky", "qr", "svd", "eigh", "slogdet")},
}

OPSETS = range(13, 22)


def _has_batch(obj):
    if isinstance(obj, Batch):
        return True
    if isinstance(obj, slice):
        return any(_has_batch(v) for v in (obj.start, obj.stop, obj.step))
    if isinstance(obj, (tuple, list)):
        return any(_has_batch(v) for v in obj)
    if isinstance(obj, dict):
        return any(_has_batch(v) for v in obj.values())
    return False


def _check_opset(opset):
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset not in OPSETS:
        raise OnnxExportError(f"export: `opset` expected an int from {OPSETS[0]} to "
                              f"{OPSETS[-1]} (the ONNX opsets supported), got {opset!r}")
    return int(opset)


def _rows(array, n):
    """``array`` with ``n`` rows, its own repeated in turn."""
    return np.take(array, np.arange(n) % array.shape[0], axis=0)


def _batched(program, inputs, dynamic_batch):
    """The inputs with a batch axis (declared size None on axis 0), and their batch size."""
    if not dynamic_batch:
        return [], None
    batched = [n for n, v in inputs.items() if np.ndim(v) >= 1 and (
        program.inputs[n].meta["shape"] is None or program.inputs[n].meta["shape"][0] is None)]
    sizes = {inputs[n].shape[0] for n in batched}
    if len(sizes) > 1 or 0 in sizes:
        shown = ", ".join(f"{n!r}: {inputs[n].shape}" for n in batched)
        raise OnnxExportError(f"export: a dynamic batch needs every input's axis 0 to be the "
                              f"same non-zero batch size, got {shown}; pass dynamic_batch=False")
    return batched, (sizes.pop() if sizes else None)


# Built-in layers that pick a code path by array size (the conv layers' bias add: a tiled add
# for large outputs), each path the same function; any other layer's path may not change.
_SIZE_PATHS = {"conv", "conv_transpose", "depthwise_conv", "separable_conv2d",
               "separable_conv3d"}


def _calls(t, table):
    """``{layer: (op, primitive names)}`` of a trace."""
    out = {}
    for (fn, *_), (layer, op) in zip(t.steps, t.layers):
        out.setdefault(layer, (op, []))[1].append(getattr(table.get(id(fn)), "name", fn))
    return out


def _same_paths(small, large, table):
    """Whether the traces ``small`` and ``large`` differ only in layers of ``_SIZE_PATHS``."""
    a, b = (_calls(t, table) for t in (small, large))
    return a.keys() == b.keys() and all(a[k][0] in _SIZE_PATHS or a[k] == b[k] for k in a)


def _trace_all(model, program, inputs, state, dynamic_batch, table):
    """Trace once (static batch), or at two batch sizes and merge; returns the first trace,
    the merged steps and constants, every slot's dims and the batched input names."""
    batched, size = _batched(program, inputs, dynamic_batch)
    if not batched:
        t = trace(model, inputs, state)
        return t, list(t.steps), dict(t.constants), {s: np.shape(v) for s, v in
                                                         t.values.items()}, []

    def traces(b):
        return [trace(model, {n: _rows(v, rows) if n in batched else v
                              for n, v in inputs.items()}, state) for rows in (b, b + 1)]

    b1 = max(size, 2)  # two sizes > 1, so no batch axis is mistaken for a unit axis
    t1, t2 = traces(b1)
    try:
        return (t1, *merge_traces(t1, t2, b1, b1 + 1, table), batched)
    except StepsDiffer:
        # A size threshold between b1 and b1 + 1 in a built-in layer: trace again where both
        # sizes are above it (the paths compute the same function).
        l1, l2 = traces(4 * b1)
        if not (_same_paths(t1, l1, table) and _same_paths(t2, l1, table)):
            raise
        return (l1, *merge_traces(l1, l2, 4 * b1, 4 * b1 + 1, table), batched)


def _value(t, slot, dims, constants):
    is_const = slot in constants
    return Value(slot, t.values[slot], dims[slot], constants.get(slot), is_const)


def _describe_missing(missing):
    lines = []
    for layer, op, what in missing:
        lines.append(f"  layer {layer!r} (op {op}): {what}")
    return (f"export: {len(missing)} primitive call(s) have no ONNX rule:\n" + "\n".join(lines) +
            "\nWrite these layers with axon_fn.ops primitives that export (see "
            "axon_fn.onnx._export.RULES), or export the model without them")


def _emit_steps(g, t, steps, constants, dims, table):
    missing, seen = [], set()
    outputs = [leaf for _, leaf in t.outputs if type(leaf) is int]
    live = {id(step) for step in _live_steps(steps, outputs)}
    for step, (layer, op) in zip(steps, t.layers):
        if id(step) not in live:
            continue
        fn, ins, params, out = step
        prim = table.get(id(fn))
        if prim is None:
            what = (f"calls {getattr(fn, '__name__', fn)!r}, a host function recorded as one "
                    f"step (a stageable, or a primitive given arrays among its settings), "
                    f"which has no ONNX form")
        elif prim.name not in RULES:
            why = UNEXPORTED.get(prim.name, "no export rule yet")
            what = f"calls primitive {prim.name!r} ({why})"
        else:
            what = None
        if what is not None:
            if (layer, what) not in seen:
                seen.add((layer, what))
                missing.append((layer, op, what))
            continue
        if missing:
            continue  # only collecting the rest of the missing rules now
        if prim.name not in BATCH_PARAMS and _has_batch(params):
            raise OnnxExportError(
                f"export: layer {layer!r} (op {op}): the settings of its {prim.name} call depend "
                f"on the batch size ({params}); pass dynamic_batch=False")
        if type(out) is not int:
            raise OnnxExportError(f"export: layer {layer!r} (op {op}): primitive {prim.name} "
                                  f"has several outputs, which the exporter does not handle")
        g.layer = layer
        try:
            g.names[out] = RULES[prim.name](g, [_value(t, s, dims, constants) for s in ins],
                                            _value(t, out, dims, constants), **params)
        except Exception as error:  # a rule's failure is reported with the layer it is in
            raise OnnxExportError(f"export: layer {layer!r} (op {op}), primitive {prim.name}: "
                                  f"{error}") from error
    if missing:
        raise OnnxExportError(_describe_missing(missing))


def _shape_info(dims):
    return [("batch" if d.k == 1 else None) if isinstance(d, Batch) else int(d) for d in dims]


def _finish_outputs(g, t, dims, taken):
    """One graph output per model output leaf: ``"output"`` for a single array, else the key
    path. Returns the output value infos."""
    helper, infos, renames = g.helper, [], {}
    produced = {o for n in g.nodes for o in n.output}
    taken = taken | produced | set(g.initializers)
    claimed = set()
    for path, leaf in t.outputs:
        name = "output" if t.tree_root else ".".join(str(p) for p in path)
        if name in taken:
            raise OnnxExportError(f"export: the output name {name!r} is also the name of an "
                                  f"input, a parameter or a node; rename the input or the "
                                  f"output's key")
        taken.add(name)
        g.layer = name
        if type(leaf) is int:
            source, dtype, shape = g.names[leaf], t.values[leaf], dims[leaf]
            dtype = np.asarray(dtype).dtype if not hasattr(dtype, "dtype") else dtype.dtype
        else:
            value = leaf[1]
            source, dtype, shape = g.const(value), value.dtype, value.shape
        if source in produced and source not in claimed and source not in renames:
            renames[source] = name
            claimed.add(source)
        else:
            g.nodes.append(helper.make_node("Identity", [source], [name],
                                            name=f"{name}/Identity_0"))
        infos.append(helper.make_tensor_value_info(name, g.tensor_type(dtype),
                                                   _shape_info(shape)))
    for node in g.nodes:
        for i, o in enumerate(node.output):
            if o in renames:
                node.output[i] = renames[o]
        for i, o in enumerate(node.input):
            if o in renames:
                node.input[i] = renames[o]
    return infos


def export(model: Node | PyTree, state: ModelState | Mapping[str, Any], path: PathLike | None,
           template: ArrayLike | Mapping[str, ArrayLike], *, opset: int = 17,
           dynamic_batch: bool = True) -> Any:
    """Write ``model`` (a node, or a container of nodes) with its parameters ``state`` as an
    ONNX model; returns the ``onnx.ModelProto`` (also written to ``path`` unless it is None).

    ``template`` is an example input, an array or ``{input name: array}``; the model is traced
    on it in inference mode (dropout is the identity, batch norm uses its running statistics).
    The result runs in onnxruntime with outputs equal to ``axon_fn.predict(model, state,
    inputs)``:

    * graph inputs keep the model's input names and the template's dtypes; with
      ``dynamic_batch=True`` axis 0 of each input declared with a ``None`` batch axis is the
      symbolic ``"batch"`` (the model is traced at two batch sizes to find the sizes that follow
      it), every other size is the template's;
    * one output named ``"output"``, or one per leaf of a container output, named by its key
      path (``"logits"``, ``"heads.0"``);
    * parameters and state are initializers named ``"<layer path>.<param>"``
      (``"encoder.dense_0.kernel"``); nodes are named ``"<layer>/<OpType>_<k>"``.

    ``opset`` is the ONNX opset, 13 to 21. Custom layers (``axon_fn.layer``, ``nx``) export
    through the primitives they call; a primitive with no ONNX rule (the gradient primitives,
    host functions) raises :class:`OnnxExportError` naming every such layer and primitive.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(2, activation="relu")
    >>> state = axon_fn.init(model, np.zeros((1, 3), np.float32))
    >>> proto = export(model, state, None, np.zeros((4, 3), np.float32))
    >>> [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    (['x'], ['output'])
    >>> sorted(t.name for t in proto.graph.initializer), proto.producer_name
    (['dense_0.bias', 'dense_0.kernel'], 'axon_fn')
    """
    onnx = require_onnx("axon_fn.onnx.export")
    from .. import __version__

    opset = _check_opset(opset)
    state = _as_state(state)
    program = compile_graph(model)
    inputs = _check_inputs(program, _as_input_dict(program, template, "export"), "export")
    inputs = {n: np.asarray(v) for n, v in inputs.items()}
    table = primitive_table()
    t, steps, constants, dims, batched = _trace_all(model, program, inputs, state,
                                                    bool(dynamic_batch), table)
    g = Graph(onnx, opset)
    helper = onnx.helper
    graph_inputs, taken = [], set()
    for name, slot in t.inputs.items():
        g.names[slot] = name
        taken.add(name)
        if name in batched and g.batch_input is None:
            g.batch_input = name
        graph_inputs.append(helper.make_tensor_value_info(
            name, g.tensor_type(t.values[slot].dtype), _shape_info(dims[slot])))
    for where, slot in t.params.items():
        g.names[slot] = ".".join(where)
    _emit_steps(g, t, steps, constants, dims, table)
    taken |= {".".join(p) for p in t.params}
    outputs = _finish_outputs(g, t, dims, taken)
    used = {i for node in g.nodes for i in node.input}
    params = [onnx.numpy_helper.from_array(np.asarray(t.values[slot]), g.names[slot])
              for slot in t.params.values() if g.names[slot] in used]
    graph = helper.make_graph(g.nodes, "axon_fn", graph_inputs, outputs,
                              initializer=params + list(g.initializers.values()))
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="axon_fn",
                              producer_version=__version__)
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save_model(proto, os.fspath(path))
    return proto
