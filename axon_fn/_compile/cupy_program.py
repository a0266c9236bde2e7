"""``jit``'s backend for CuPy arrays: each fused loop of the schedule (:mod:`.schedule`)
becomes one ``cupy.ElementwiseKernel``, where the replay launches one CUDA kernel per
primitive.

A loop's chain of elementwise operations is one kernel over the loop's shape (CuPy broadcasts
its inputs and follows their strides); the values the chain makes and nothing else reads stay
in registers. The loop's sums run after its kernel through ``cupy.sum``, accumulating in double
(int64 for integers) as the C backend does. Products go to ``cupy.matmul``, views are strided
views of their source, and steps with no lowering run their recorded CuPy kernels (call outs),
as in the replay. Every value is an array of its own, dropped after its last reader (CuPy's
memory pool reuses the memory): no arena, no donation.

The kernels' bodies are the C backend's statements (:func:`.emit.map_statement`), with CUDA's
names for the integer types, and ``scalar.h`` as their preamble.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .emit import map_statement
from .memory import item_reads, mark_storage
from .schedule import describe, schedule
from .toolchain import SCALAR, Unavailable, header_text

__all__ = ["CupyProgram", "compile_cupy"]

_CUDA_TYPES = {"int8_t": "signed char", "uint8_t": "unsigned char", "int16_t": "short",
               "int32_t": "int", "int64_t": "long long"}
_INT32_MAX = 2**31 - 1


def compile_cupy(steps, origins, avals, constants, inputs, outputs, *, fallback, cupy):
    """A :class:`CupyProgram` for the live ``steps`` of a recording made on CuPy arrays
    (``cupy``: the module); ``fallback(*leaves)`` is the replay. Raises
    :class:`~.toolchain.Unavailable` when no step fuses."""
    if not hasattr(cupy, "ElementwiseKernel"):
        raise Unavailable("this CuPy has no ElementwiseKernel")
    plan = schedule(steps, origins, avals, constants, inputs, outputs)
    mark_storage(plan)
    if not any(item.kind == "loop" and any(op.kind == "map" for op in item.ops)
               for item in plan.items):
        raise Unavailable("the program has no elementwise step to fuse")
    return CupyProgram(plan, constants, cupy, fallback)


class CupyProgram:
    """Runs a plan on CuPy arrays: its loops as fused kernels, in order with its products,
    sums and call outs."""

    def __init__(self, plan, constants, cupy, fallback):
        self.plan, self.xp, self.fallback = plan, cupy, fallback
        self.failed = None  # why the kernels could not run (the replay runs instead)
        preamble = header_text(SCALAR)
        values = plan.values
        self.constants = {}
        for slot, v in values.items():
            if v.kind in ("scalar", "pyconst"):
                self.constants[slot] = constants[slot]
            elif v.kind == "const":
                self.constants[slot] = cupy.asarray(constants[slot])  # to the device once
        self.kernels = {}  # item index -> (kernel, input slots, output slots)
        self.source = []  # each kernel's body, for explain and the tests
        for index, item in enumerate(plan.items):
            if item.kind == "loop" and any(op.kind == "map" for op in item.ops):
                loads, stores, body = _kernel_parts(plan, item)
                params = [", ".join(f"{_type(values[s].dtype)} {prefix}{s}" for s in slots)
                          for prefix, slots in (("in", loads), ("out", stores))]
                self.kernels[index] = (cupy.ElementwiseKernel(
                    *params, "\n".join(body), f"axon_loop{index}", preamble=preamble),
                    loads, stores)
                self.source.append(f"// item {index}: {describe(plan, index)}\n"
                                   + "\n".join(body))
        self.drop_after = _last_reads(plan)

    def run(self, *leaves):
        """The program's output leaves for input ``leaves``; on the first failure of a kernel
        (CUDA could not compile it), a warning, and the replay from then on."""
        if self.failed is not None:
            return self.fallback(*leaves)
        try:
            return self._run(leaves)
        except _KernelFailed as failure:
            exc = failure.__cause__
            self.failed = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"axon_fn.jit: the fused CuPy kernels failed ({self.failed}); this "
                          "program runs its recorded kernels instead", RuntimeWarning,
                          stacklevel=3)
            return self.fallback(*leaves)

    def _run(self, leaves):
        plan, xp = self.plan, self.xp
        env = dict(self.constants)
        for slot, leaf in zip(plan.inputs, leaves):
            env[slot] = _in_order(xp, leaf)  # views read it by its strides
        for index, item in enumerate(plan.items):
            if index in self.kernels:
                kernel, loads, stores = self.kernels[index]
                outs = [xp.empty(plan.values[s].shape, plan.values[s].dtype) for s in stores]
                try:
                    kernel(*(self._get(env, s) for s in loads), *outs)
                except Exception as exc:  # noqa: BLE001 - CuPy's compiler, or a launch
                    raise _KernelFailed from exc
                env.update(zip(stores, outs))
            if item.kind == "loop":
                for op in item.ops:
                    if op.kind == "sum":
                        env[op.outs[0]] = self._sum(env, op)
            elif item.kind == "gemm":
                a, b = (self._get(env, s) for s in item.ops[0].ins)
                env[item.ops[0].outs[0]] = xp.matmul(a, b)
            elif item.kind == "increment":
                count = self._get(env, item.ops[0].ins[0])
                env[item.ops[0].outs[0]] = count + (count < _INT32_MAX).astype(count.dtype)
            elif item.kind == "callout":
                fn, ins, params, out = item.step[:4]
                result = fn(*(self._get(env, s) for s in ins), **params)
                outs = (out,) if type(out) is int else out
                env.update(zip(outs, (result,) if type(out) is int else result))
            for slot in self.drop_after[index]:
                env.pop(slot, None)
        results = []
        for slot in plan.outputs:
            value = self._get(env, slot)
            results.append(value[()] if plan.values[slot].scalar_result else value)
        return tuple(results)

    def _get(self, env, slot):
        v = self.plan.values[slot]
        if v.kind != "view":
            return env[slot]
        base = env[v.base] = _in_order(self.xp, env[v.base])  # a call out's result may not be
        flat = base.reshape(-1)
        return self.xp.lib.stride_tricks.as_strided(
            flat[v.offset:] if v.offset else flat, shape=v.shape,
            strides=tuple(s * base.itemsize for s in v.strides))

    def _sum(self, env, op):
        out = self.plan.values[op.outs[0]]
        x = self._get(env, op.ins[0])
        if not op.attrs["axes"]:  # a gradient already of its parameter's shape: a copy
            return x.astype(out.dtype).reshape(out.shape)
        total = self.xp.sum(x, axis=op.attrs["axes"],
                            dtype=np.float64 if out.dtype.kind == "f" else np.int64)
        return total.astype(out.dtype).reshape(out.shape)

    def explain(self):
        """What runs: each fused kernel's loop, the products, the sums and the call outs."""
        lines = []
        for index, item in enumerate(self.plan.items):
            kind = "CuPy kernel" if index in self.kernels else "CuPy"
            lines.append(f"{kind}: {describe(self.plan, index)}")
        maps = sum(op.kind == "map" for item in self.plan.items if item.kind == "loop"
                   for op in item.ops)
        lines.append(f"kernels: {len(self.kernels)} fused, in place of {maps} elementwise ones")
        if self.failed:
            lines.append(f"the kernels failed ({self.failed}): the replay runs")
        return "\n".join(lines)


class _KernelFailed(Exception):
    """A fused kernel could not be built or launched (its cause says why)."""


def _kernel_parts(plan, item):
    """``(input slots, output slots, body lines)`` of a loop's elementwise kernel: it stores
    what anything outside the loop reads, and what the loop's sums read."""
    values = plan.values
    maps = [op for op in item.ops if op.kind == "map"]
    made = {op.outs[0] for op in maps}
    summed = {op.ins[0] for op in item.ops if op.kind == "sum"}
    loads = []
    for op in maps:
        for s in op.ins:
            if values[s].kind != "scalar" and s not in made and s not in loads:
                loads.append(s)
    stores = [s for s in (op.outs[0] for op in maps) if values[s].in_memory or s in summed]
    reg = {s: (f"in{s}", _ctype(values[s].ctype)) for s in loads}
    body = [_decimal_floats(map_statement(op, values, reg, _ctype)) for op in maps]
    body += [f"out{s} = r{s};" for s in stores]
    return loads, stores, body


_HEX_FLOAT = re.compile(r"0x[0-9a-f]+(?:\.[0-9a-f]*)?p[+-]?[0-9]+")


def _decimal_floats(statement):
    """``statement`` with the C backend's hexadecimal float literals written in decimal (the
    shortest that reads back as the same double): C++ has them only from C++17 on."""
    return _HEX_FLOAT.sub(lambda m: repr(float.fromhex(m.group())), statement)


def _in_order(xp, array):
    """``array`` in C order (``ascontiguousarray`` alone would make a 0-d array 1-d)."""
    flags = getattr(array, "flags", None)
    return array if flags is None or flags.c_contiguous else xp.ascontiguousarray(array)


def _ctype(name):
    return _CUDA_TYPES.get(name, name)


def _type(dtype):
    """CuPy's name of a dtype in a kernel's parameters."""
    return np.dtype(dtype).name


def _last_reads(plan):
    """Per item, the values no later item reads (neither the outputs nor the constants):
    dropped after it, as the replay deletes each intermediate after its last use."""
    values, last = plan.values, {}
    for index, item in enumerate(plan.items):
        for slot in item_reads(item):
            base = values[slot].base if values[slot].kind == "view" else slot
            last[base] = index
            last[slot] = index
    keep = set(plan.outputs) | {values[s].base for s in plan.outputs if values[s].kind == "view"}
    drop = [[] for _ in plan.items]
    for slot, index in last.items():
        if slot not in keep and values[slot].kind not in ("scalar", "pyconst", "const"):
            drop[index].append(slot)
    return drop
