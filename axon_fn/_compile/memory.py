"""Where the values of a scheduled program live: which stay in registers, the arena offsets
(first fit over the items where each value is live), the ``io`` table the Python driver
fills, and the outputs written into donated inputs.
"""

from __future__ import annotations

import os

from .schedule import outs_of

__all__ = ["place", "mark_storage", "item_reads"]

_ALIGN = 64
# AXON_FN_JIT_DEBUG=1: every intermediate in memory, each in its own place in the arena, for
# comparing them with the Python replay's one by one
DEBUG = os.environ.get("AXON_FN_JIT_DEBUG") == "1"


def place(plan, donated=()):
    """Decide ``plan``'s storage in place (outputs may reuse the ``donated`` input slots)."""
    mark_storage(plan)
    _allocate(plan, set(donated))


def mark_storage(plan):
    """Index who reads what, and decide which values live in memory: those read outside the
    loop that makes them or through a view, the sums, the outputs, and what products,
    optimizer steps and call outs read."""
    values, items = plan.values, plan.items
    for index, item in enumerate(items):
        for slot in item_reads(item):
            base = plan.storage_slot(slot)
            plan.readers.setdefault(base, set()).add(index)
            if values[slot].kind == "view":
                plan.view_readers.setdefault(base, set()).add(index)
    for product, loop in plan.epilogues.items():
        # an epilogue runs while its product still reads its operands, not element by element
        # (like a view): nothing the loop writes may take their memory
        for slot in item_reads(items[product]):
            base = plan.storage_slot(slot)
            plan.readers[base].add(loop)
            plan.view_readers.setdefault(base, set()).add(loop)
    for slot, v in values.items():
        if v.kind != "temp":
            continue
        outside = plan.readers.get(slot, set()) - {v.producer}
        v.in_memory = (DEBUG or bool(outside) or slot in plan.view_readers
                       or slot in plan.outputs or items[v.producer].kind != "loop"
                       or v.hidden_in is not None)
    for slot in plan.outputs:
        v = values[slot]
        if v.kind == "temp":
            v.kind = "output"


def item_reads(item):
    if item.kind == "callout":
        return list(item.step[1])
    return [s for op in item.ops for s in op.ins]


def _allocate(plan, donated=frozenset()):
    """Arena offsets by first fit over the items where each temporary is live, and io slots
    for what the Python side hands to C."""
    values, items = plan.values, plan.items
    last_use = {slot: max(readers) for slot, readers in plan.readers.items()}
    # a Python kernel may hand back a view of its input (a slice, a reshape): an arena array a
    # call out reads lives as long as what the call out returns
    end = len(items)
    for index in reversed(range(len(items))):
        item = items[index]
        if item.kind != "callout":
            continue
        outs = outs_of(item.step[3])
        until = max(end if s in plan.outputs else last_use.get(s, index) for s in outs)
        for slot in item.step[1]:
            base = plan.storage_slot(slot)
            if base in values and values[base].kind in ("temp", "callout"):
                last_use[base] = max(last_use.get(base, index), until)
    intervals = []
    for slot, v in values.items():
        if v.kind == "temp" and v.in_memory:
            nbytes = max(v.size, 1) * v.dtype.itemsize
            intervals.append((v.producer, last_use.get(slot, v.producer), nbytes, slot))
    for index, item in enumerate(items):  # per-item scratch: double accumulators of sums
        if item.kind == "loop":
            for op in item.ops:
                out = values[op.outs[0]]
                if op.kind == "sum" and len(out.shape) > 0 and out.size > 0:
                    intervals.append((index, index, out.size * 8, ("scratch", op.outs[0])))
    intervals.sort(key=lambda t: (t[0], -t[2]))
    live, top = [], 0  # live: [(end item, start byte, nbytes)]
    for start, end, nbytes, key in intervals:
        live = [b for b in live if b[0] >= start or DEBUG]
        nbytes = -(-nbytes // _ALIGN) * _ALIGN
        offset = 0
        for _, b_start, b_bytes in sorted(live, key=lambda b: b[1]):
            if offset + nbytes <= b_start:
                break
            offset = max(offset, b_start + b_bytes)
        live.append((end, offset, nbytes))
        top = max(top, offset + nbytes)
        if type(key) is tuple:
            plan.scratch[key[1]] = offset
        else:
            plan.offsets[key] = offset
    plan.arena_bytes = max(top, _ALIGN)
    io = 1  # io[0] is the arena
    aliases = _donations(plan, donated)
    for slot, v in sorted(values.items()):
        if slot in aliases:
            continue
        if v.kind in ("input", "const", "output", "callout") and (
                _read_or_written_by_c(plan, slot) or slot in aliases.values()):
            plan.io[slot] = io
            io += 1
    for out, source in aliases.items():
        plan.io[out] = plan.io[source]
    plan.donations = aliases
    plan.n_io = io


def _donations(plan, donated):
    """``{output slot: donated input slot}``: outputs written into a donated input's array,
    where nothing reads that input after the output is written, or only the same loop reads
    it, at the very element it writes (not through a view)."""
    values, items = plan.values, plan.items
    aliases, claimed = {}, set(plan.outputs)
    for out in plan.outputs:
        v = values[out]
        if v.kind != "output" or out in aliases:
            continue
        for d in plan.inputs:
            source = values[d]
            if d not in donated or d in claimed or source.shape != v.shape \
                    or source.dtype != v.dtype:
                continue
            writer, through_views = v.producer, plan.view_readers.get(d, set())
            safe = all(index < writer or (index == writer and index not in through_views
                                          and items[writer].kind == "loop")
                       for index in plan.readers.get(d, ()))
            if safe:
                aliases[out] = d
                claimed.add(d)
                break
    return aliases


def _read_or_written_by_c(plan, slot):
    """Whether C touches ``slot``'s array (directly or through a view): it needs an io slot."""
    return plan.values[slot].kind == "output" or any(
        plan.items[index].kind != "callout" for index in plan.readers.get(slot, ()))
