"""A recorded ``jit`` program compiled to C: the generated library plus the Python driver that
calls its segments and the steps left to Python (the call outs), in order.

The driver is generated Python, like the replay's: it binds the input arrays' addresses into
the ``io`` table, allocates the outputs, calls segment 0, runs a call out on arena views, hands
its result to C, calls segment 1, and so on. Intermediates live in one arena allocated when the
program is built; a lock keeps two threads from sharing it (a second thread meanwhile runs the
Python replay, which gives the same results).
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import numpy as np

from .. import _native
from . import toolchain
from .emit import threading_mode, write_source
from .memory import place
from .schedule import SPLIT_MIN, describe, schedule

__all__ = ["NativeProgram", "compile_native"]


def compile_native(steps, origins, avals, constants, inputs, outputs, fallback, donated=()):
    """A :class:`NativeProgram` for the live ``steps`` of a recording; ``fallback(*leaves)``
    is the Python replay; outputs may reuse the arrays of the ``donated`` input slots. Raises
    :class:`toolchain.Unavailable` when it cannot compile."""
    plan = schedule(steps, origins, avals, constants, inputs, outputs)
    place(plan, donated)
    plan.threading = threading_mode(plan, toolchain.threads(), can_hold_blas=(
        toolchain.blas_thread_control() is not None and _native.available()))
    plan.source = write_source(plan)
    if not plan.segments:
        raise toolchain.Unavailable("the program has no step with a C lowering")
    program = NativeProgram(plan, constants, fallback)
    program.steps, program.constants = steps, constants  # for comparing with the replay
    return program


class NativeProgram:
    """Runs a :class:`~axon_fn._compile.schedule.Plan` through its compiled library."""

    def __init__(self, plan, constants, fallback):
        self.plan = plan
        blas, int_type = toolchain.blas_gemm()
        _native.configure_openmp()  # before a program's OpenMP runtime may be the first loaded
        names = [f"void SEGMENT{k}(void **io);" for k in range(len(plan.segments))]
        header = (f"#define AXON_BLAS_INT {int_type}\n#include \"runtime.h\"\n"
                  f"#include <stdint.h>\n\n")
        self.source = header + plan.source
        self.ffi, self.lib, self.compile_seconds, self.cached = toolchain.build(
            self.source,
            names + ["void axon_set_runtime(void *, void *, void *, int);"])
        own = _own_sgemm()  # its big float products on axon_fn's own product (runtime.h)
        self.own_products = own is not None
        self.lib.axon_set_runtime(*(self.ffi.cast("void *", address or 0)
                                    for address in (*blas, own)), toolchain.threads())
        self.arena = np.zeros(plan.arena_bytes + 64, np.uint8)
        self.io = self.ffi.new(f"void *[{plan.n_io}]")
        self._keep = [self.arena]
        self.io[0] = self.ffi.from_buffer(self.arena)
        for slot, index in plan.io.items():
            if plan.values[slot].kind == "const":
                array = np.ascontiguousarray(constants[slot])
                self._keep.append(array)
                self.io[index] = self.ffi.from_buffer(array)
        self.lock = threading.Lock()
        self.driver_source, namespace = self._driver(constants, fallback)
        exec(compile(self.driver_source, "<axon_fn.jit native driver>", "exec"), namespace)
        self.run = namespace["program"]

    def _arena_view(self, slot):
        v = self.plan.values[slot]
        base = self.plan.values[v.base] if v.kind == "view" else v
        size = v.dtype.itemsize
        offset = self.plan.offsets[base.slot] + v.offset * size
        return np.ndarray(v.shape, v.dtype, buffer=self.arena, offset=offset,
                          strides=tuple(s * size for s in v.strides))

    def _driver(self, constants, fallback):
        plan, values = self.plan, self.plan.values
        ns = {"io": self.io, "fb": _from_buffer(self.ffi), "empty": np.empty,
              "refs": sys.getrefcount,
              "may_share": np.may_share_memory, "arena": self.arena,
              "lock": self.lock, "replay": fallback, "cont": np.ascontiguousarray}
        names = {}

        def name(slot):
            if slot in names:
                return names[slot]
            v = values[slot]
            if v.kind in ("scalar", "const", "pyconst"):
                ns[f"c{slot}"] = constants[slot]
                names[slot] = f"c{slot}"
            elif v.kind == "view" and values[v.base].kind in ("input", "output", "callout"):
                base = name(v.base)
                ns[f"view{slot}"] = _view_maker(v)
                return f"view{slot}({base})"
            elif v.kind in ("temp", "view"):
                ns[f"a{slot}"] = self._arena_view(slot)
                names[slot] = f"a{slot}"
            else:
                names[slot] = f"v{slot}"
            return names[slot]

        args = ", ".join(f"v{s}" for s in plan.inputs)
        held = plan.threading == "held"
        if held:
            ns["hold"] = functools.partial(_CORES.hold, toolchain.threads())
            ns["release"] = _CORES.release
        lines = [f"def program({args}):",
                 "    if not lock.acquire(False):",
                 f"        return replay({args})",
                 "    try:"]
        body = []
        # an input passed again (a donated array coming back) keeps its bound address; a
        # scattered one (a transposed or Fortran-ordered array) is copied into memory order;
        # one of the program's own output arrays (last call's result passed back) has its
        # address at hand
        ns["last"] = [None] * len(plan.inputs)
        ns["bound"] = {}  # id of an array in an output's ring -> its address
        ns["address"] = functools.partial(self.ffi.cast, "void *")
        for k, s in enumerate(plan.inputs):
            if s not in plan.io:
                continue
            body += [f"if v{s} is not last[{k}]:",
                     f"    p = bound.get(id(v{s}))",
                     "    try:",
                     f"        io[{plan.io[s]}] = fb(v{s}) if p is None else p",
                     f"        last[{k}] = v{s}",
                     "    except (BufferError, ValueError, TypeError):",
                     f"        v{s} = cont(v{s})",
                     f"        io[{plan.io[s]}] = fb(v{s})",
                     f"        last[{k}] = None"]
        # An output array goes back to the caller; the one this output had two calls ago is
        # written again when nothing but the program holds it any more (the caller has moved on
        # to newer values: `state = step(state, ...)`), which spares allocating and faulting in
        # fresh memory every call. Anything else holding it (a name, a list, a view, the
        # arguments of this very call) shows in its reference count and a new array is made.
        for slot in sorted(s for s, v in values.items() if v.kind == "output"):
            v = values[slot]
            if slot in plan.donations:  # written into the donated input's own array
                names[slot] = f"v{plan.donations[slot]}"
                continue
            ns[f"d{slot}"] = v.dtype
            ns[f"ring{slot}"] = [None, None]  # this output's arrays: two calls ago, last call
            body += [f"o{slot} = ring{slot}[0]",
                     f"if o{slot} is None or refs(o{slot}) != {_SOLE_REFS}:",
                     f"    if o{slot} is not None:",  # it leaves the ring
                     f"        del bound[id(o{slot})]",
                     f"    o{slot} = empty({v.shape}, d{slot})",
                     f"    bound[id(o{slot})] = address(fb(o{slot}))",
                     f"ring{slot}[0] = ring{slot}[1]",
                     f"ring{slot}[1] = o{slot}",
                     f"io[{plan.io[slot]}] = bound[id(o{slot})]"]
            names[slot] = f"o{slot}"
        done_items = 0
        for k, segment in enumerate(plan.segments):
            for index in range(done_items, segment[0]):
                body.extend(self._callout(index, name, ns))
            body.append(f"SEG{k}(io)")
            ns[f"SEG{k}"] = getattr(self.lib, f"SEGMENT{k}")
            done_items = segment[-1] + 1
        for index in range(done_items, len(plan.items)):
            body.extend(self._callout(index, name, ns))
        results = []
        for slot in plan.outputs:
            v = values[slot]
            ref = name(slot)
            results.append(f"{ref}[()]" if v.kind == "output" and v.scalar_result
                           and slot not in plan.donations else ref)
        body.append(f"return ({''.join(r + ', ' for r in results)})")
        if held:
            body = ["hold()", "try:", *(f"    {line}" for line in body),
                    "finally:", "    release()"]
        lines += [f"        {line}" for line in body]
        lines += ["    finally:", "        lock.release()"]
        return "\n".join(lines) + "\n", ns

    def _callout(self, index, name, ns):
        item = self.plan.items[index]
        fn, ins, params, out = item.step[:4]
        ns[f"f{index}"] = fn
        call = ", ".join([name(s) for s in ins] + ([f"**p{index}"] if params else []))
        if params:
            ns[f"p{index}"] = params
        outs = (out,) if type(out) is int else out
        target = f"v{out}" if type(out) is int else "".join(f"v{s}, " for s in out)
        lines = [f"{target} = f{index}({call})"]
        reads_arena = any(self.plan.values[self.plan.storage_slot(s)].kind == "temp" for s in ins
                          if s in self.plan.values)
        for s in outs:
            if reads_arena and s in self.plan.outputs:  # a view of the arena must not escape
                lines.append(f"if may_share(v{s}, arena):")
                lines.append(f"    v{s} = v{s}.copy()")
            if s in self.plan.io:  # C reads it: in memory order, kept alive in a local
                lines.append(f"k{s} = cont(v{s})")
                lines.append(f"io[{self.plan.io[s]}] = fb(k{s})")
        return lines

    def explain(self):
        """What became of each step: the fused loops, the products, the call outs."""
        plan = self.plan
        lines = []
        for k, segment in enumerate(plan.segments):
            lines.append(f"C segment {k}:")
            lines.extend(f"  {describe(plan, i)}" for i in segment)
        callouts = [i for i, item in enumerate(plan.items) if item.kind == "callout"]
        if callouts:
            lines.append("Python call outs:")
            lines.extend(f"  {describe(plan, i)}" for i in callouts)
        lines.append(_THREADING[plan.threading].format(n=toolchain.threads()))
        if any(item.kind == "gemm" for item in plan.items):
            own = self.own_products and (plan.threading == "held" or toolchain.threads() == 1)
            lines.append(f"products of {SPLIT_MIN:,} multiply-adds and more: "
                         + ("axon_fn's own (AVX-512), each epilogue on its blocks as they are "
                            "done" if own else "the BLAS"))
        lines.append(f"arena: {plan.arena_bytes} bytes; compile "
                     f"{'loaded from cache' if self.cached else 'took'} "
                     f"{self.compile_seconds * 1e3:.0f} ms")
        return "\n".join(lines)


def _own_sgemm():
    """The address of axon_fn's own float product (``native/axon_gemm.c``) for a program
    loaded now, or None: the C kernels are not loaded, the CPU has no AVX-512, or
    ``AXON_FN_JIT_OWN_GEMM=0`` keeps the products on the BLAS."""
    if os.environ.get("AXON_FN_JIT_OWN_GEMM", "1") == "0" or not _native.available():
        return None
    lib, ffi = _native.lib(), _native.ffi()
    if not hasattr(lib, "axon_own_sgemm") or not lib.axon_own_sgemm_available():
        return None  # (an extension built before it existed)
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, "axon_own_sgemm")))


class _HeldCores:
    """The cores as programs that hold them while they run (emit.threading_mode) leave them:
    the first such program to start sets the BLAS to one thread and axon_fn's C kernels (its
    calls out) to the programs' threads; the last to finish, in any thread, puts both back."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0
        self._saved = None

    def hold(self, threads):
        with self._lock:
            if self._running == 0:
                blas_set, blas_get = _blas_thread_functions()
                self._saved = blas_get(), _native.num_threads()
                blas_set(1)
                _native.set_num_threads(threads)
            self._running += 1

    def release(self):
        with self._lock:
            self._running -= 1
            if self._running == 0:
                blas_set, _ = _blas_thread_functions()
                blas_set(self._saved[0])
                _native.set_num_threads(self._saved[1])


@functools.lru_cache(maxsize=None)
def _blas_thread_functions():
    """OpenBLAS's ``openblas_set_num_threads`` and ``openblas_get_num_threads``, callable."""
    from cffi import FFI

    ffi = FFI()
    set_address, get_address = toolchain.blas_thread_control()
    return ffi.cast("void (*)(int)", set_address), ffi.cast("int (*)(void)", get_address)


_CORES = _HeldCores()

_THREADING = {  # what explain says of each emit.threading_mode
    "free": "threads: {n}, splitting long loops and matrix-vector products",
    "held": "threads: {n}, held while it runs (the BLAS on one; the C kernels, long loops and "
            "big products split on all)",
    "shared": "threads: one of its own, beside the BLAS's",
}


def _sole_references():
    """What ``sys.getrefcount`` says of an array held only by a list and a local variable, as
    the driver holds a reusable output (measured, not assumed: interpreters count differently,
    and 3.14 borrows some references)."""
    ring = [np.empty(1), None]
    o = ring[0]
    return sys.getrefcount(o)


_SOLE_REFS = _sole_references()


def _from_buffer(ffi):
    """``ffi.from_buffer`` as a ``char[]`` view, without the Python method around cffi's C
    function (a third of its cost, paid for every array a call binds)."""
    try:
        import _cffi_backend

        return functools.partial(_cffi_backend.from_buffer, ffi.typeof("char[]"))
    except (ImportError, AttributeError, TypeError):
        return ffi.from_buffer


def _view_maker(view):
    size = view.dtype.itemsize
    shape, strides = view.shape, tuple(s * size for s in view.strides)
    offset = view.offset

    def make(array):
        flat = np.ravel(array)  # a contiguous input: a view
        return np.lib.stride_tricks.as_strided(flat[offset:], shape, strides)

    return make
