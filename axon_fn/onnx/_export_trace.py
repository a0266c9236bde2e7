"""Tracing a model for export: one inference run on staged values, its primitive calls grouped
by the layer that made them, and the comparison of two such runs at different batch sizes.

The interpreter (``Program.run``) calls the layers as ``predict`` does; inputs and every state
leaf are staged values of one :class:`~axon_fn._core.Recording`, so each primitive call records
a step and parameters stay graph values (initializers) rather than baked constants.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .._core import PRIMITIVES, Recording, Staged
from .._program import compile_graph
from ..backend import to_numpy
from ..errors import StagingError
from ..graph.core import MISSING
from ..model_state import flatten_paths
from ..nn.combine import _cond
from ._common import OnnxExportError

__all__ = ["Batch", "BatchConst", "StepsDiffer", "Trace", "trace", "primitive_table",
           "merge_traces"]


class Batch:
    """A size that is ``k`` times the batch size, known only when the model runs."""

    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    def __eq__(self, other):
        return isinstance(other, Batch) and other.k == self.k

    def __hash__(self):
        return hash(("batch", self.k))

    def __repr__(self):
        return "batch" if self.k == 1 else f"{self.k}*batch"


class BatchConst:
    """A constant array whose batch-sized axes (``dims`` holding :class:`Batch`) repeat one
    slice (``sample``, size 1 on those axes): zeros((B, H)) initial states and the like."""

    __slots__ = ("sample", "dims")

    def __init__(self, sample, dims):
        self.sample, self.dims = sample, dims

    @property
    def dtype(self):
        return self.sample.dtype


class _Capture(Recording):
    """A recording that also keeps every staged value, for its shape and dtype."""

    def __init__(self):
        super().__init__()
        self.values = {}

    def new_value(self, value):
        staged = super().new_value(value)
        self.values[staged.slot] = value
        return staged


@dataclasses.dataclass
class Trace:
    """One recorded inference run.

    ``steps``: the recording's ``(fn, input slots, params, output slot)``; ``layers``: per step,
    the ``(layer path, op)`` that made it; ``values``: every slot's concrete value (staged and
    constant); ``inputs``: ``{input name: slot}``; ``params``: ``{parameter path: slot}``;
    ``outputs``: ``[(key path, slot or ("constant", value))]``; ``constants``: the constant slots.
    """

    steps: list
    layers: list
    values: dict
    constants: dict
    inputs: dict
    params: dict
    outputs: list
    tree_root: bool


def _traced_cond(x, on_true, on_false, *, predicate):
    """``cond`` without reading the predicate into Python: both branches are inputs of the
    layer (computed anyway), so picking one is a ``where`` on the traced predicate."""
    chosen = predicate(x)
    if type(chosen) is not Staged:
        return on_true if bool(chosen) else on_false
    if chosen.size != 1:
        raise OnnxExportError(f"cond: the predicate must give one value, got an array of shape "
                              f"{tuple(chosen.shape)}; reduce it (e.g. with .sum() or .max())")
    return ops.where(ops.reshape(chosen, shape=()), on_true, on_false)


def _patch(program, seen):
    if id(program) in seen:
        return
    seen.add(id(program))
    for step in program.steps:
        if step.node.op == "cond" and step.node.fn is _cond:
            step.node = dataclasses.replace(step.node, fn=_traced_cond)
        if step.sub is not None:
            _patch(step.sub, seen)


def _output_name(path):
    return ".".join(str(p) for p in path)


def trace(model, inputs, state):
    """Run ``model`` in inference mode on staged ``inputs`` (``{name: numpy array}``) and the
    staged leaves of ``state`` (a ModelState); returns a :class:`Trace`."""
    program = compile_graph(model)
    _patch(program, set())
    rec = _Capture()
    staged = {name: rec.new_value(np.asarray(to_numpy(v))) for name, v in inputs.items()}
    params = {}
    for part in (state.trainable, state.frozen, state.state):
        for path, leaf in flatten_paths(part).items():
            if path not in params:
                params[path] = rec.new_value(np.asarray(to_numpy(leaf)))
    layers, mark = [], [0]

    def record(step, path, args, out):
        n = len(rec.steps)
        layers.extend([(".".join(path), step.node.op)] * (n - mark[0]))
        mark[0] = n

    def provider(step, path, parameter, args):
        full = path + (parameter.name,)
        if full not in params:
            raise OnnxExportError(f"export: the state has no parameter {'.'.join(full)!r} (layer "
                                  f"{'.'.join(path)!r}, op {step.node.op}); pass the ModelState "
                                  f"from axon_fn.init for this model")
        return params[full]

    try:
        out = program.run(staged, provider, training=False, record=record, hooks=False)
    except StagingError as error:
        raise OnnxExportError(
            f"export: {error}\nAn ONNX graph runs the same operations for every input, so a "
            f"layer cannot branch on array values; express the choice with ops.where") from error
    finally:
        rec.active = False
    paths, leaves = optree.tree_flatten_with_path(out, none_is_leaf=True)[:2]
    outputs = []
    for path, leaf in zip(paths, leaves):
        where = _output_name(path) or "the output"
        if leaf is MISSING or leaf is None:
            raise OnnxExportError(f"export: model output {where!r} has no value (an optional "
                                  f"input left out of the template?); pass every input")
        if type(leaf) is Staged:
            outputs.append((path, leaf.slot))
        elif hasattr(leaf, "shape") or isinstance(leaf, (int, float, bool, np.generic)):
            outputs.append((path, ("constant", np.asarray(to_numpy(leaf)))))
        else:
            raise OnnxExportError(f"export: model output {where!r} is a "
                                  f"{type(leaf).__name__}, not an array")
    values = dict(rec.values)
    values.update(rec.constants)
    return Trace(list(rec.steps), layers, values, dict(rec.constants),
                 {name: s.slot for name, s in staged.items()},
                 {path: s.slot for path, s in params.items()}, outputs,
                 len(paths) == 1 and paths[0] == ())


def primitive_table():
    """``{id(function): Primitive}`` for every function a step may record."""
    table = {}
    for prim in PRIMITIVES.values():
        for f in (prim.op, prim.cpu, prim.numpy_cpu):
            table[id(f)] = prim
    return table


# Two traces, two batch sizes ---------------------------------------------------------------------


class _Mismatch(Exception):
    pass


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _merge_int(a, b, b1, b2):
    if a == b:
        return a
    k, rest = divmod(int(a), b1)
    if rest == 0 and k >= 1 and int(b) == k * b2:
        return Batch(k)
    raise _Mismatch(f"{a} and {b}")


def _merge(a, b, b1, b2):
    """``a`` with every batch-sized int replaced by a :class:`Batch`; _Mismatch where the two
    runs differ in another way."""
    if isinstance(a, slice):
        if not isinstance(b, slice):
            raise _Mismatch(f"{a} and {b}")
        return slice(*(_merge(x, y, b1, b2) for x, y in
                       ((a.start, b.start), (a.stop, b.stop), (a.step, b.step))))
    if isinstance(a, (tuple, list)):
        if type(a) is not type(b) or len(a) != len(b):
            raise _Mismatch(f"{a} and {b}")
        return type(a)(_merge(x, y, b1, b2) for x, y in zip(a, b))
    if isinstance(a, dict):
        if not isinstance(b, dict) or list(a) != list(b):
            raise _Mismatch(f"{a} and {b}")
        return {k: _merge(a[k], b[k], b1, b2) for k in a}
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")):
            return a
        raise _Mismatch(f"arrays of shapes {np.shape(a)} and {np.shape(b)}")
    if _is_int(a) and _is_int(b):
        return _merge_int(a, b, b1, b2)
    if type(a) is type(b) and (a == b or (a != a and b != b)):
        return a
    raise _Mismatch(f"{a!r} and {b!r}")


def _merge_dims(s1, s2, b1, b2):
    if len(s1) != len(s2):
        raise _Mismatch(f"shapes {s1} and {s2}")
    try:
        return tuple(_merge_int(x, y, b1, b2) for x, y in zip(s1, s2))
    except _Mismatch:
        raise _Mismatch(f"shapes {s1} and {s2}") from None


def _merge_constant(a, b, b1, b2):
    """A constant of both runs: the same value, a batch-sized count (a mean's divisor), or a
    :class:`BatchConst`."""
    if not hasattr(a, "shape") or not hasattr(b, "shape") or np.ndim(a) == 0:
        if _is_int(a) and _is_int(b):
            return _merge_int(a, b, b1, b2)
        return _merge(a, b, b1, b2)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape:
        return _merge(a, b, b1, b2)
    dims = _merge_dims(a.shape, b.shape, b1, b2)
    index = tuple(slice(0, 1) if isinstance(d, Batch) else slice(None) for d in dims)
    sample = a[index]
    if not (np.array_equal(np.broadcast_to(sample, a.shape), a, equal_nan=a.dtype.kind in "fc")
            and np.array_equal(np.broadcast_to(sample, b.shape), b,
                               equal_nan=b.dtype.kind in "fc")):
        raise _Mismatch(f"constant arrays of shapes {a.shape} and {b.shape} whose values vary "
                        f"along the batch-sized axes")
    return BatchConst(np.ascontiguousarray(sample), dims)


def _where(traces, i):
    for t in traces:
        if i < len(t.layers):
            return f"layer {t.layers[i][0]!r} (op {t.layers[i][1]})"
    return "the model"


class StepsDiffer(OnnxExportError):
    """The two traces made different primitive calls (not only different sizes)."""


def _refuse(traces, i, what, error=OnnxExportError):
    raise error(
        f"export: {_where(traces, i)} depends on the batch size in a way a dynamic batch axis "
        f"cannot follow: {what} (the model was traced at two batch sizes); pass "
        f"dynamic_batch=False to export for the template's batch size only")


def merge_traces(t1, t2, b1, b2, table):
    """Check that two traces at batch sizes ``b1`` and ``b2`` made the same steps and fold them
    into ``(steps, constants, dims)``: the steps' params and the constants with batch-sized
    values as :class:`Batch` / :class:`BatchConst`, and each slot's dims (ints or Batch)."""
    if len(t1.steps) != len(t2.steps):
        i = next((i for i, (a, b) in enumerate(zip(t1.steps, t2.steps))
                  if table.get(id(a[0])) is not table.get(id(b[0]))),
                 min(len(t1.steps), len(t2.steps)))
        _refuse((t1, t2), i, f"the model made {len(t1.steps)} primitive calls at batch size "
                             f"{b1} and {len(t2.steps)} at {b2}, the first different one here",
                StepsDiffer)
    steps = []
    for i, (s1, s2) in enumerate(zip(t1.steps, t2.steps)):
        p1, p2 = table.get(id(s1[0])), table.get(id(s2[0]))
        if p1 is not p2 or s1[1] != s2[1] or s1[3] != s2[3]:
            _refuse((t1, t2), i, f"its primitive calls differ ({getattr(p1, 'name', s1[0])} "
                                 f"and {getattr(p2, 'name', s2[0])})", StepsDiffer)
        try:
            params = _merge(s1[2], s2[2], b1, b2)
        except _Mismatch as m:
            _refuse((t1, t2), i,
                    f"the settings of its {getattr(p1, 'name', '?')} call differ: {m}")
        steps.append((s1[0], s1[1], params, s1[3]))
    step_of = {}  # a slot's producing step, or for a constant its first reader
    for i, (_, ins, _, outs) in enumerate(t1.steps):
        for s in (*ins, *((outs,) if type(outs) is int else outs)):
            step_of.setdefault(s, i)
    constants = {}
    for slot, v in t1.constants.items():
        try:
            constants[slot] = _merge_constant(v, t2.constants.get(slot), b1, b2)
        except _Mismatch as m:
            _refuse((t1, t2), step_of.get(slot, len(t1.layers)), f"a constant differs: {m}")
    dims = {}
    for slot, v in t1.values.items():
        if slot in t1.constants:
            c = constants[slot]
            dims[slot] = c.dims if isinstance(c, BatchConst) else np.shape(v)
            continue
        try:
            dims[slot] = _merge_dims(np.shape(v), np.shape(t2.values[slot]), b1, b2)
        except _Mismatch as m:
            _refuse((t1, t2), step_of.get(slot, len(t1.layers)),
                    f"a value's shape differs: {m}")
    return steps, constants, dims
