"""Schedule a recorded ``jit`` program for C: which steps fuse into which loops.

The schedule is a list of *items*, each one piece of generated code or one call out:

* a **loop** over one shape holding a chain of elementwise operations and the sums that
  consume them; a value used only inside its loop never touches memory (a local variable),
  and an operation joins the earliest loop of its shape that comes after everything it reads,
  so the scattered elementwise work of a backward pass and an optimizer update lands in a few
  loops;
* a **product** (a matmul, or the product of a dense layer, whose bias and activation then
  form the loop right after it);
* a fused **optimizer** step (Adam, the step counter);
* a **call out**: a step with no C lowering, run by its Python kernel between two C segments.

Views (reshapes, transposes, broadcasts) are no items: they read their source's memory with
other strides. :mod:`.memory` then places the values, :mod:`.emit` writes the C.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .lowering import CTYPES, UNARY, Op, lower

__all__ = ["Plan", "Value", "Item", "schedule", "describe", "contiguous_strides", "SPLIT_MIN",
           "multiply_adds", "product_sides"]

# multiply-adds: runtime.h's AXON_SPLIT_MIN, from which a product is split between threads
# (and may take an epilogue); smaller: one thread, unsplit
SPLIT_MIN = 1 << 22

def contiguous_strides(shape):
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def is_contiguous(shape, strides):
    return all(s == c for d, s, c in zip(shape, strides, contiguous_strides(shape)) if d > 1)


@dataclasses.dataclass
class Value:
    """A slot of the program: where its elements live and how to index them."""

    slot: int
    shape: tuple
    dtype: np.dtype
    kind: str  # input, const, scalar, temp, output, callout, view
    strides: tuple = ()
    offset: int = 0  # elements from the base value's start (views)
    base: int | None = None  # the slot whose memory a view reads
    literal: object = None  # the value of a scalar constant
    producer: int | None = None  # the item that computes it
    hidden_in: int | None = None  # an item inside which it is not yet complete (sums, views)
    scalar_result: bool = False  # returned as a numpy scalar (as numpy's own call returned it)
    in_memory: bool = False  # stored (else only a local variable of its loop): see .memory

    @property
    def ctype(self):
        return CTYPES.get(self.dtype)

    @property
    def size(self):
        return math.prod(self.shape)


@dataclasses.dataclass
class Item:
    kind: str  # loop, gemm, dense, increment, callout
    ops: list
    shape: tuple = ()
    step: tuple | None = None  # a call out's recorded step
    origin: object = None


@dataclasses.dataclass
class Plan:
    """The scheduled program: values, items, storage and the generated C source."""

    values: dict
    items: list
    inputs: list
    outputs: list
    arena_bytes: int = 0
    offsets: dict = dataclasses.field(default_factory=dict)  # slot -> arena byte offset
    scratch: dict = dataclasses.field(default_factory=dict)  # (item, slot) -> byte offset
    io: dict = dataclasses.field(default_factory=dict)  # slot -> io index
    source: str = ""
    segments: list = dataclasses.field(default_factory=list)  # [[item indices] of a C function]
    readers: dict = dataclasses.field(default_factory=dict)  # storage slot -> items reading it
    view_readers: dict = dataclasses.field(default_factory=dict)  # ... those through a view
    donations: dict = dataclasses.field(default_factory=dict)  # output slot -> donated input
    n_io: int = 1
    threading: str = "shared"  # how it shares the cores: emit.threading_mode
    epilogues: dict = dataclasses.field(default_factory=dict)  # product item -> its loop

    def storage_slot(self, slot):
        v = self.values[slot]
        return v.base if v.kind == "view" else slot


def _origin_name(origin):
    prim = getattr(origin, "primitive", None)
    if prim is not None:
        return prim.name
    return f"{getattr(origin, '__module__', '')}.{getattr(origin, '__qualname__', origin)}"


def schedule(steps, origins, avals, constants, inputs, outputs):
    """The :class:`Plan` of ``steps`` (a recording's live steps): its values and items."""
    values = {}
    for slot in inputs:
        shape, dtype = avals[slot][:2]
        values[slot] = Value(slot, tuple(shape), np.dtype(dtype), "input",
                             contiguous_strides(shape))
    scalars = {}
    for slot, c in constants.items():
        if isinstance(c, (bool, int, float, np.generic)) or (
                isinstance(c, np.ndarray) and c.ndim == 0 and c.dtype in CTYPES):
            dtype = np.asarray(c).dtype
            scalars[slot] = c.item() if hasattr(c, "item") else c
            values[slot] = Value(slot, (), dtype, "scalar", (), literal=scalars[slot])
        elif isinstance(c, np.ndarray):
            values[slot] = Value(slot, c.shape, c.dtype, "const",
                                 contiguous_strides(c.shape))
    all_avals = dict(avals)
    for slot, v in values.items():
        all_avals.setdefault(slot, (v.shape, v.dtype, False, True))
    planner = _Planner(values, all_avals, scalars, set(outputs))
    for step in steps:
        planner.add(step, origins.get(first_out(step[3])))
    plan = Plan(values, planner.items, list(inputs), list(outputs))
    _hoist_counters(plan)
    _pull_epilogues(plan)
    return plan


def first_out(out):
    return out if type(out) is int else out[0]


def outs_of(out):
    return (out,) if type(out) is int else tuple(out)


class _Planner:
    """Builds the item list one recorded step at a time."""

    def __init__(self, values, avals, scalars, outputs):
        self.values, self.avals, self.scalars, self.outputs = values, avals, scalars, outputs
        self.items = []
        self.next_slot = max(list(avals) + [0]) + 1

    def add(self, step, origin):
        _, ins, params, out = step[:4]
        outs = outs_of(out)
        name = _origin_name(origin)
        op = lower(name, params, ins, outs, self.avals, self.scalars)
        if op is not None and any(s not in self.values or self.values[s].kind == "pyconst"
                                  for s in ins):
            op = None  # an input C cannot read (a constant that is no array or number)
        if op is None:
            return self._callout(step, origin, ins, outs)
        op.attrs.setdefault("name", name)
        for slot in outs:
            shape, dtype, is_scalar = self.avals[slot][:3]
            self.values[slot] = Value(slot, tuple(shape), np.dtype(dtype), "temp",
                                      contiguous_strides(shape), scalar_result=is_scalar)
        kind = op.kind
        if kind == "view":
            return self._view(op)
        if kind == "map":
            return self._join_loop(op, self.values[outs[0]].shape)
        if kind == "sum":
            return self._join_loop(op, self.values[ins[0]].shape)
        if kind == "dense":
            return self._dense(op)
        if kind == "group":
            for sub in op.attrs["ops"]:
                self._join_loop(sub, self.values[sub.outs[0]].shape)
            return
        self._append(Item(kind, [op]), outs)

    def _append(self, item, outs):
        self.items.append(item)
        for slot in outs:
            self.values[slot].producer = len(self.items) - 1

    def _callout(self, step, origin, ins, outs):
        for slot in outs:
            shape, dtype, is_scalar = self.avals[slot][:3]
            self.values[slot] = Value(slot, tuple(shape), np.dtype(dtype), "callout",
                                      contiguous_strides(shape), scalar_result=is_scalar)
        for slot in ins:
            if slot not in self.values:  # a constant that is neither scalar nor array
                self.values[slot] = Value(slot, (), np.dtype(object), "pyconst")
        self._append(Item("callout", [], step=step, origin=origin), outs)

    def _earliest(self, ins):
        """The first item index at which every one of ``ins`` can be read."""
        first = 0
        for slot in ins:
            v = self.values[slot]
            if v.producer is not None:
                first = max(first, v.producer + (1 if v.hidden_in == v.producer else 0))
            if v.kind == "view" and v.base is not None:
                base = self.values[v.base]
                if base.producer is not None:
                    first = max(first, base.producer + 1)
        return first

    def _join_loop(self, op, shape):
        first = self._earliest(op.ins)
        for index in range(first, len(self.items)):
            item = self.items[index]
            if item.kind == "loop" and item.shape == shape:
                item.ops.append(op)
                break
        else:
            self.items.append(Item("loop", [op], shape=shape))
            index = len(self.items) - 1
        for slot in op.outs:
            self.values[slot].producer = index
            if op.kind == "sum":
                self.values[slot].hidden_in = index

    def _view(self, op):
        src = self.values[op.ins[0]]
        out_slot = op.outs[0]
        out = self.values[out_slot]
        if src.kind == "scalar":  # a number broadcast: fill
            return self._join_loop(_copy(op.ins, op.outs, out.ctype), out.shape)
        strides = _view_strides(op.attrs["view"], op.attrs["axes"], src, out)
        if strides is None:  # a reshape of scattered memory: gather it in order first
            gathered = self._temp(src)
            self._join_loop(_copy((src.slot,), (gathered,), src.ctype), src.shape)
            src = self.values[gathered]
            strides = contiguous_strides(out.shape)
        if out_slot in self.outputs:  # the caller gets its own array: copy the view there
            view = self._temp(out)
            self._make_view(self.values[view], src, strides)
            return self._join_loop(_copy((view,), op.outs, out.ctype), out.shape)
        self._make_view(out, src, strides)

    @staticmethod
    def _make_view(out, src, strides):
        out.kind, out.strides = "view", strides
        out.base = src.base if src.kind == "view" else src.slot
        out.offset = src.offset
        out.producer = src.producer
        out.hidden_in = None

    def _dense(self, op):
        x, kernel, *bias = op.ins
        out = self.values[op.outs[0]]
        activation = op.attrs["activation"]
        if not bias and activation is None:
            return self._append(Item("gemm", [Op("gemm", (x, kernel), op.outs)]), op.outs)
        product = self._temp(out)
        self._append(Item("gemm", [Op("gemm", (x, kernel), (product,))]), (product,))
        ct = out.ctype
        if bias:
            target = self._temp(out) if activation else op.outs[0]
            self._join_loop(Op("map", (product, bias[0]), (target,),
                               {"expr": lambda ct, a, b: f"({a} + {b})", "ctype": ct,
                                "name": "dense bias"}), out.shape)
            product = target
        if activation:
            expr = UNARY[activation]
            self._join_loop(Op("map", (product,), op.outs,
                               {"expr": expr, "ctype": ct, "name": f"dense {activation}"}),
                            out.shape)

    def _temp(self, like):
        slot = self.next_slot
        self.next_slot += 1
        self.values[slot] = Value(slot, like.shape, like.dtype, "temp",
                                  contiguous_strides(like.shape))
        self.avals[slot] = (like.shape, like.dtype, False, True)
        return slot


def _ready_at(values, slot):
    """The first index at which another item can read ``slot`` (0: a program input)."""
    v = values[slot]
    first = 0 if v.producer is None else v.producer + 1
    if v.kind == "view" and v.base is not None and values[v.base].producer is not None:
        first = max(first, values[v.base].producer + 1)
    return first


def _move(plan, source, target):
    """Move item ``source`` to index ``target`` (earlier), renumbering the producers."""
    items = plan.items
    order = list(range(len(items)))
    order.insert(target, order.pop(source))
    where = {old: new for new, old in enumerate(order)}
    plan.items = [items[old] for old in order]
    for v in plan.values.values():
        if v.producer is not None:
            v.producer = where[v.producer]
        if v.hidden_in is not None:
            v.hidden_in = where[v.hidden_in]


def _hoist_counters(plan):
    """Move each optimizer step counter to the start of the program (it reads only the
    count), so the update loops that read it can move up next to the products they follow."""
    for index in range(len(plan.items)):
        item = plan.items[index]  # a move shifts only the items before this one
        if item.kind == "increment":
            first = max((_ready_at(plan.values, s) for s in item.ops[0].ins), default=0)
            if first < index:
                _move(plan, index, first)


def _pull_epilogues(plan):
    """Give a big float product the loop over its result that follows it (a layer's bias
    and activation, an update of the weights by their gradient) as an *epilogue*, which
    runtime.h's own product runs on each block of the result as soon as the block is done,
    while it is in cache
    (``plan.epilogues``: product item -> loop item, right after it). The first such loop
    moves up next to the product when every value it reads is ready there and it sums
    nothing. Values are written once, so nothing between the two places reads what the loop
    writes."""
    for index in range(len(plan.items)):
        item = plan.items[index]  # (the list is a new one after each move)
        if item.kind != "gemm" or _epilogue_shape(plan, item) is None:
            continue
        for later in range(index + 1, len(plan.items)):
            if not _epilogue_of(plan, item, plan.items[later]):
                continue
            loop = plan.items[later]
            made = {s for op in loop.ops for s in op.outs}
            if all(_ready_at(plan.values, s) <= index + 1
                   for op in loop.ops for s in op.ins if s not in made):
                _move(plan, later, index + 1)
                plan.epilogues[index] = index + 1
            break


def _epilogue_shape(plan, item):
    """The shape of a product's result when it may have an epilogue: one float32 matrix (no
    batch) at least 2 x 2, from a product big enough for runtime.h's own (SPLIT_MIN)."""
    a, b = (plan.values[s] for s in item.ops[0].ins)
    out = plan.values[item.ops[0].outs[0]]
    if len(a.shape) != 2 or len(b.shape) != 2 or out.dtype != np.float32 or \
            min(out.shape) < 2 or multiply_adds(plan, item) < SPLIT_MIN:
        return None
    return out.shape


def multiply_adds(plan, item):
    """Multiply-adds of one matrix of a (batched) product."""
    m, n = product_sides(plan, item)
    return m * n * plan.values[item.ops[0].ins[0]].shape[-1]


def product_sides(plan, item):
    """The result's two sides (rows, columns) of one matrix of a product."""
    a, b = (plan.values[s] for s in item.ops[0].ins)
    return (a.shape[-2] if len(a.shape) > 1 else 1), (b.shape[-1] if len(b.shape) > 1 else 1)


def _epilogue_of(plan, item, loop):
    """Whether ``loop`` may be product ``item``'s epilogue: over its result's shape, reading
    it, summing nothing, and never through a view (a transpose would read other blocks of
    the result than the one just done)."""
    product = item.ops[0].outs[0]
    reads = [s for op in loop.ops for s in op.ins]
    return (loop.kind == "loop" and loop.shape == _epilogue_shape(plan, item)
            and not any(op.kind == "sum" for op in loop.ops) and product in reads
            and not any(plan.values[s].kind == "view" and plan.values[s].base == product
                        for s in reads))


def _copy(ins, outs, ctype):
    return Op("map", tuple(ins), tuple(outs), {"expr": lambda ct, x: x, "ctype": ctype,
                                               "name": "copy"})


def _view_strides(kind, axes, src, out):
    """The strides of ``out`` seen in ``src``'s memory, or None when it needs a copy."""
    if kind == "transpose":
        order = tuple(reversed(range(len(src.shape)))) if axes is None else tuple(axes)
        return tuple(src.strides[a] for a in order)
    if kind == "broadcast_to":
        lead = len(out.shape) - len(src.shape)
        return tuple(0 if i < lead or src.shape[i - lead] == 1 and d != 1
                     else src.strides[i - lead] for i, d in enumerate(out.shape))
    # reshape, expand_dims, squeeze: a new shape over the same order of elements
    if is_contiguous(src.shape, src.strides):
        return contiguous_strides(out.shape)
    return None


def describe(plan, index):
    """One line on what item ``index`` does (for ``explain`` and the C comments)."""
    item = plan.items[index]
    if item.kind == "callout":
        return f"call out: {_origin_name(item.origin)} (no C lowering)"
    if item.kind == "loop":
        names = ", ".join(op.attrs.get("name", op.kind) for op in item.ops)
        role = " (the product's epilogue)" if index - 1 in plan.epilogues else ""
        return f"loop over {item.shape}{role}: {names}"
    op = item.ops[0]
    if item.kind == "gemm":
        a, b = (plan.values[s] for s in op.ins)
        return f"product {a.shape} @ {b.shape}"
    return f"{op.attrs.get('name', item.kind)}"
