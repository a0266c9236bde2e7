"""Write the C source of a placed plan: one function per segment of consecutive C items,
each loop with one restrict pointer per distinct memory it touches and its dimensions merged
where every operand steps evenly, so a contiguous chain is one long vectorizable loop.
"""

from __future__ import annotations

import math

from .lowering import CTYPES, literal
from .schedule import SPLIT_MIN, contiguous_strides, describe, multiply_adds, product_sides

__all__ = ["write_source", "threading_mode", "map_statement"]

PAR_MIN = 1 << 15  # elements: a loop this long is split between the threads
BLAS_MIN = 1 << 18  # multiply-adds: a product this big goes to the BLAS (runtime.h)
SPLIT_WIDTH = 64  # a product split between t threads has a longer side of at least 64 * t
SUM_PARTS_MAX = 4096  # elements: each thread keeps partial sums this long on its stack (32 KB)


def threading_mode(plan, threads, can_hold_blas):
    """How a program shares the cores (``threads`` of them; ``can_hold_blas``: the BLAS's
    thread count can be set while it runs, and axon_fn's C kernels are loaded):

    * ``"free"``: it never runs the BLAS nor calls out to Python, so its long loops, Adam's
      update and its matrix-vector products are split between the threads;
    * ``"held"``: it calls out (convolutions, pooling: axon_fn's C kernels) or runs products
      on the BLAS, each small (under ``SPLIT_MIN`` multiply-adds) or with a longer side of at
      least ``SPLIT_WIDTH`` per thread: while it runs, the BLAS keeps to one thread, and the
      C kernels, the loops and the products use every thread, a big product split in blocks
      of its longer side, one single-thread BLAS call each (runtime.h). Every thread packs
      the whole of the other operand, so blocks at least 64 wide keep that repeated work
      under 1/64 of the product's. A LeNet training step took 2.5-2.9 ms this way against
      3.7-4.8 with the kernels on one thread beside a two-thread BLAS, and 6.7 with both on
      two threads; a 784-512-512-10 step (batch 128, Adam) 2.6-2.9 ms against 3.3 with its
      loops on one thread beside the BLAS's two; its inference at batch 1024 and 4096 was
      2-6 % faster;
    * ``"shared"``: otherwise, one thread of its own beside the BLAS's threads: two pools of
      threads that spin waiting for work fight over the cores (splitting a 784-512-512-10
      training step's loops beside the BLAS made it 10 % slower).
    """
    products = [item for item in plan.items if item.kind == "gemm" and _calls_blas(plan, item)]
    if threads <= 1:
        return "shared"
    if not products and not any(item.kind == "callout" for item in plan.items):
        return "free"
    if can_hold_blas and all(multiply_adds(plan, item) < SPLIT_MIN
                             or max(product_sides(plan, item)) >= SPLIT_WIDTH * threads
                             for item in products):
        return "held"
    return "shared"


def write_source(plan):
    """The C source of ``plan`` (also sets ``plan.segments``)."""
    return _Emitter(plan).source()


class _Emitter:
    """Writes the C source of a plan: one function per segment of consecutive C items."""

    def __init__(self, plan):
        self.plan = plan
        self.lines = []
        self.pointers = {}  # pointer expression -> restrict variable of the current loop
        self.accumulators = {}  # sum output slot -> its double (or int64) buffer
        self.threaded = plan.threading != "shared"  # see threading_mode
        self.functions = []  # file-scope C the current segment calls (epilogues)
        self.fused = set()  # loops emitted as a product's epilogue

    def source(self):
        plan = self.plan
        segments, current = [], []
        for index, item in enumerate(plan.items):
            if item.kind == "callout":
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(index)
        if current:
            segments.append(current)
        plan.segments = segments
        out = []
        for k, seg in enumerate(segments):
            self.lines, self.functions = [], []
            self._segment(k, seg)
            out.extend(self.functions)
            out.extend(self.lines)
        return "\n".join(out) + "\n"

    def _ptr(self, slot):
        """A C expression of the first element of ``slot``'s memory, typed."""
        plan = self.plan
        v = plan.values[slot]
        if v.kind == "view":  # the same dtype as its base, another shape
            return f"({self._ptr(v.base)} + {v.offset})" if v.offset else self._ptr(v.base)
        ct = v.ctype
        if slot in plan.io:
            return f"(({ct} *)io[{plan.io[slot]}])"
        return f"(({ct} *)(arena + {plan.offsets[slot]}))"

    def _segment(self, k, seg):
        self.lines.append(f"void SEGMENT{k}(void **io)\n{{\n    char *arena = (char *)io[0];\n"
                          "    (void)arena;")
        self.lines.append(f"    axon_team = {'axon_threads' if self.threaded else 1};")
        for index in seg:
            if index in self.fused:
                continue
            item = self.plan.items[index]
            self.lines.append(f"    /* item {index}: {describe(self.plan, index)} */")
            getattr(self, f"_emit_{item.kind}")(index, item)
        self.lines.append("}\n")

    # ---- loops ----------------------------------------------------------------------------

    def _operand_strides(self, slot, shape):
        """``slot``'s element strides over the loop ``shape`` (0 along broadcast axes)."""
        v = self.plan.values[slot]
        lead = len(shape) - len(v.shape)
        return tuple(0 if i < lead or v.shape[i - lead] == 1 else v.strides[i - lead]
                     for i in range(len(shape)))

    def _loop_operands(self, item):
        """What a loop reads from memory, what it stores, and its sums."""
        values = self.plan.values
        made = {s for op in item.ops for s in op.outs}
        loads, stores, sums = [], [], []
        for op in item.ops:
            for s in op.ins:
                v = values[s]
                if v.kind == "scalar" or (s in made and values[s].hidden_in is None) \
                        or s in loads:
                    continue
                loads.append(s)
            if op.kind == "sum":
                sums.append(op)
            elif values[op.outs[0]].in_memory:
                stores.append(op.outs[0])
        return loads, stores, sums

    def _restrict_pointers(self, loads, stores):
        """One restrict pointer per distinct memory (``self.pointers`` maps each)."""
        values = self.plan.values
        self.pointers = {}
        pointers = []
        for s in stores + loads:
            expr = self._ptr(s)
            if expr not in self.pointers:
                self.pointers[expr] = f"p{len(self.pointers)}"
                const = "" if s in stores else "const "
                pointers.append(f"{const}{values[s].ctype} *restrict {self.pointers[expr]} = "
                                f"{expr};")
        return pointers

    def _emit_loop(self, index, item):
        plan, values = self.plan, self.plan.values
        shape = item.shape
        loads, stores, sums = self._loop_operands(item)
        operands = {}
        for s in loads + stores:
            operands[s] = self._operand_strides(s, shape)
        for op in sums:
            operands[("acc", op.outs[0])] = self._sum_strides(op, shape)
        dims, strides = _merge_dims(shape, operands)
        size = math.prod(shape)
        pre, post = [], []
        for op in sums:
            out = values[op.outs[0]]
            acc_t = _accumulator_type(out)
            if not out.shape:
                pre.append(f"    {acc_t} acc{out.slot} = 0;")
                post.append(f"    {self._ptr(out.slot)}[0] = ({out.ctype})acc{out.slot};")
                self.accumulators[out.slot] = f"acc{out.slot}"
            else:
                buf = f"(({acc_t} *)(arena + {plan.scratch[out.slot]}))"
                pre.append(f"    memset({buf}, 0, {out.size * 8});")
                post.append(f"    for (int64_t j = 0; j < {out.size}; j++) "
                            f"{self._ptr(out.slot)}[j] = ({out.ctype}){buf}[j];")
                self.accumulators[out.slot] = buf
        self.lines.append("    {")
        pointers = self._restrict_pointers(loads, stores)
        self.lines.extend(pre)
        if size and sums and self.threaded and size >= PAR_MIN and dims[0] > 1 and all(
                strides[("acc", op.outs[0])][0] == 0 and values[op.outs[0]].size <= SUM_PARTS_MAX
                for op in sums):
            self._split_sums(item, loads, stores, sums, dims, strides, pointers)
        elif size:
            invariant, body = self._loop_body(item, loads, stores, sums, dims, strides)
            # a loop with a sum of another kind accumulates in one order on one thread
            self.lines.extend(_nest(dims, body, parallel=self.threaded and not sums
                                    and size >= PAR_MIN, setup=pointers + invariant))
        self.lines.extend(post)
        self.lines.append("    }")

    def _split_sums(self, item, loads, stores, sums, dims, strides, pointers):
        """A loop whose sums reduce its outer axis (a bias gradient: the sum over the batch),
        split between the threads by blocks of that axis: each thread sums its block into
        partial sums of its own (on its stack), then the threads add their partials to the
        total one after the other, in thread order, so that a given number of threads always
        gives the same result. One thread gives the serial loop's result exactly."""
        values, finals = self.plan.values, {}
        partials = []
        for op in sums:
            out = values[op.outs[0]]
            finals[out.slot] = self.accumulators[out.slot]
            self.accumulators[out.slot] = f"part{out.slot}"
            acc_t = _accumulator_type(out)
            partials.append(f"{acc_t} part{out.slot}" + (f"[{out.size}] = {{0}};" if out.shape
                                                          else " = 0;"))
        invariant, body = self._loop_body(item, loads, stores, sums, dims, strides)
        adds = []
        for op in sums:
            slot = op.outs[0]
            adds.append(f"for (int64_t j = 0; j < {values[slot].size}; j++) "
                        f"{finals[slot]}[j] += part{slot}[j];" if values[slot].shape
                        else f"{finals[slot]} += part{slot};")
        lines = ["#pragma omp parallel num_threads(axon_team) if (axon_team > 1)", "{",
                 "    const int t = axon_thread_num(), n_threads = axon_team_size();",
                 f"    const int64_t lo = {dims[0]} * t / n_threads, "
                 f"hi = {dims[0]} * (t + 1) / n_threads;",
                 *(f"    {line}" for line in partials),
                 *_nest(dims, body, setup=pointers + invariant, bounds=(("lo", "hi"),)),
                 "    for (int u = 0; u < n_threads; u++) {",
                 "        #pragma omp barrier",
                 "        if (u == t) {",
                 *(f"            {line}" for line in adds),
                 "        }",
                 "    }",
                 "}"]
        self.lines.extend(f"    {line}" for line in lines)

    def _sum_strides(self, op, shape):
        """The accumulator's strides over the loop: 0 along the summed axes."""
        axes = set(op.attrs["axes"])
        kept = [d for i, d in enumerate(shape) if i not in axes]
        contiguous = contiguous_strides(tuple(kept))
        it = iter(contiguous)
        return tuple(0 if i in axes else next(it) for i in range(len(shape)))

    def _loop_body(self, item, loads, stores, sums, dims, strides):
        values = self.plan.values
        lines = []
        reg = {}

        def index_of(key):
            terms = [f"i{d} * {st}" if st != 1 else f"i{d}"
                     for d, st in enumerate(strides[key]) if st and dims[d] > 1]
            return " + ".join(terms) or "0"

        invariant = []  # loads of one element for the whole loop: read once, before it
        for s in loads:
            v = values[s]
            index = index_of(s)
            (invariant if index == "0" else lines).append(
                f"const {v.ctype} r{s} = {self.pointers[self._ptr(s)]}[{index}];")
            reg[s] = (f"r{s}", v.ctype)
        for op in item.ops:
            if op.kind == "sum":
                x, ct = reg[op.ins[0]]
                out = values[op.outs[0]]
                acc_t = _accumulator_type(out)
                target = self.accumulators[out.slot]
                if out.shape:
                    target = f"{target}[{index_of(('acc', out.slot))}]"
                lines.append(f"{target} += ({acc_t}){x};")
                continue
            lines.append(map_statement(op, values, reg))
        for s in stores:
            lines.append(f"{self.pointers[self._ptr(s)]}[{index_of(s)}] = r{s};")
        return invariant, lines

    # ---- products and fused steps ---------------------------------------------------------

    def _emit_gemm(self, index, item):
        op = item.ops[0]
        values = self.plan.values
        a, b = (values[s] for s in op.ins)
        c = values[op.outs[0]]
        a_shape, a_st = (((1,) + a.shape, (0,) + a.strides) if len(a.shape) == 1
                         else (a.shape, a.strides))
        b_shape, b_st = ((b.shape + (1,), b.strides + (0,)) if len(b.shape) == 1
                         else (b.shape, b.strides))
        M, K = a_shape[-2:]
        N = b_shape[-1]
        c_shape, c_st = list(c.shape), list(c.strides)
        if len(b.shape) == 1:
            c_shape, c_st = c_shape + [1], c_st + [0]
        if len(a.shape) == 1:
            c_shape.insert(len(c_shape) - 1, 1)
            c_st.insert(len(c_st) - 1, 0)
        c_shape, c_st = tuple(c_shape), tuple(c_st)
        batch = c_shape[:-2]
        ct = c.ctype

        def batch_strides(shape, st):
            lead = len(batch) - (len(shape) - 2)
            return [0 if i < lead or shape[i - lead] == 1 else st[i - lead]
                    for i in range(len(batch))]

        sa, sb, sc = (batch_strides(a_shape, a_st), batch_strides(b_shape, b_st),
                      batch_strides(c_shape, c_st))
        args = (f"{M}, {N}, {K}, {self._ptr(a.slot)} + {_offset(sa)}, {a_st[-2]}, {a_st[-1]}, "
                f"{self._ptr(b.slot)} + {_offset(sb)}, {b_st[-2]}, {b_st[-1]}, "
                f"{self._ptr(c.slot)} + {_offset(sc)}, {c_st[-2]}, {c_st[-1]}")
        call = f"axon_gemm_{ct}({args});"
        self.lines.append("    {")
        if index not in self.plan.epilogues:
            self.lines.extend(_nest(batch, [call], var="b"))
        else:  # runtime.h says whether its own product takes this one (else the BLAS's)
            epilogue = self.plan.items[index + 1]
            name = self._emit_epilogue(index + 1, epilogue)
            self.lines.append(f"    if (!axon_gemm_epilogue_{ct}({args}, {name}, arena, io)) {{")
            self.lines.append(f"    {call}")
            self.lines.append(f"    /* item {index + 1}: {describe(self.plan, index + 1)} */")
            self._emit_loop(index + 1, epilogue)
            self.lines.append("    }")
        self.lines.append("    }")

    def _emit_epilogue(self, index, loop):
        """A function at file scope running ``loop`` (item ``index``) over a block of its
        rows and columns; the loop is then marked as emitted."""
        shape = loop.shape
        loads, stores, _ = self._loop_operands(loop)
        strides = {s: self._operand_strides(s, shape) for s in loads + stores}
        pointers = self._restrict_pointers(loads, stores)
        invariant, body = self._loop_body(loop, loads, stores, [], shape, strides)
        name = f"EPILOGUE{index}"
        self.functions += [f"/* item {index} on a block of rows and columns: "
                           f"{describe(self.plan, index)} */",
                           f"static void {name}(char *arena, void **io, int64_t r0, int64_t r1, "
                           "int64_t c0, int64_t c1)", "{", "    (void)arena, (void)io;",
                           *_nest(shape, body, setup=pointers + invariant,
                                  bounds=(("r0", "r1"), ("c0", "c1"))),
                           "}", ""]
        self.fused.add(index)
        return name

    def _emit_increment(self, index, item):
        op = item.ops[0]
        src, dst = self._ptr(op.ins[0]), self._ptr(op.outs[0])
        self.lines.append(f"    {{ const int32_t c = {src}[0]; {dst}[0] = c < 2147483647 ? "
                          f"c + 1 : c; }}")


def _calls_blas(plan, item):
    """Whether a product may run on the BLAS: more than one row, big enough."""
    a = plan.values[item.ops[0].ins[0]]
    return len(a.shape) > 1 and a.shape[-2] > 1 and multiply_adds(plan, item) >= BLAS_MIN


def map_statement(op, values, reg, type_name=str):
    """The C statement computing one ``map`` operation into a new local ``r{slot}``, which
    it enters in ``reg`` (slot -> (local name, C type) of the values already at hand: loads
    and earlier operations). ``type_name`` renames the C types (the CUDA kernels' ``long
    long`` for ``int64_t``)."""
    ct = type_name(op.attrs["ctype"])
    cast = op.attrs.get("cast_inputs", True)
    args = []
    for s in op.ins:
        v = values[s]
        if v.kind == "scalar":
            args.append(literal(v.literal, ct if cast else type_name(_scalar_ctype(v))))
            continue
        name, rt = reg[s]
        args.append(name if (rt == ct or not cast) else f"(({ct}){name})")
    out = values[op.outs[0]]
    out_ct = type_name(out.ctype)
    reg[out.slot] = (f"r{out.slot}", out_ct)
    return f"const {out_ct} r{out.slot} = ({out_ct}){op.attrs['expr'](ct, *args)};"


def _scalar_ctype(v):
    return CTYPES.get(v.dtype, "double")


def _offset(strides):
    terms = [f"b{d} * {s}" for d, s in enumerate(strides) if s]
    return "(" + (" + ".join(terms) or "0") + ")"


def _accumulator_type(out):
    """What a sum accumulates in: double for floats, int64 for integers and booleans."""
    return "double" if out.dtype.kind == "f" else "int64_t"


def _nest(dims, body, var="i", parallel=False, setup=(), bounds=()):
    """``body`` inside one for loop per dimension (variables ``i0``, ``i1``...; ``b0``... for
    the batch loops of products), after the declarations ``setup``. ``parallel``: the outermost
    loop runs in chunks shared between the threads (a one-dimensional loop in chunks of whole
    vectors), each chunk declaring ``setup`` itself: restrict pointers the compiler sees
    declared inside the function it outlines for the threads, so that it still vectorizes.

    The innermost loop is marked ``ivdep``: GCC honours ``restrict`` on local pointers only in
    part, and past ten pairs of pointers to check at run time it gave up vectorizing (a loop
    of Adam and ``apply_updates``: 7 arrays). The plan makes the promise true: no iteration
    reads memory another writes (memory.py). ``bounds``: the first loops' ``(start, end)``
    instead of 0 and their size (C expressions: one thread's block, an epilogue's block)."""
    lines, indent = [], "    "
    if parallel and dims[0] > 1:
        align = 16 if len(dims) == 1 else 1
        lines += [f"{indent}const int64_t chunk = axon_chunk({dims[0]}, {align});",
                  f"{indent}#pragma omp parallel for schedule(dynamic, 1) "
                  "num_threads(axon_team) if (axon_team > 1)",
                  f"{indent}for (int64_t c = 0; c < {dims[0]}; c += chunk) {{",
                  *(f"{indent}    {line}" for line in setup),
                  f"{indent}    const int64_t e = c + chunk < {dims[0]} ? c + chunk : {dims[0]};",
                  *([f"{indent}    #pragma GCC ivdep"] if len(dims) == 1 else []),
                  f"{indent}    for (int64_t {var}0 = c; {var}0 < e; {var}0++) {{"]
        indent += "        "
        first = 1
    else:
        lines += [f"{indent}{line}" for line in setup]
        first = 0
    for d in range(first, len(dims)):
        if d == len(dims) - 1:
            lines.append(f"{indent}#pragma GCC ivdep")
        start, end = bounds[d] if d < len(bounds) else (0, dims[d])
        lines.append(f"{indent}for (int64_t {var}{d} = {start}; {var}{d} < {end}; {var}{d}++) {{")
        indent += "    "
    lines.extend(indent + line for line in body)
    for d in reversed(range(len(dims) + first)):
        indent = indent[:-4]
        lines.append(f"{indent}}}")
    return lines


def _merge_dims(shape, operands):
    """Merge neighbouring axes along which every operand steps evenly, so loops run long
    (a contiguous elementwise chain becomes one loop)."""
    keep = [i for i, n in enumerate(shape) if n != 1]  # an axis of one is no loop
    dims = [shape[i] for i in keep]
    strides = {k: [v[i] for i in keep] for k, v in operands.items()}
    d = len(dims) - 2
    while d >= 0:
        if all(st[d] == st[d + 1] * dims[d + 1] for st in strides.values()):
            dims[d] *= dims[d + 1]
            del dims[d + 1]
            for st in strides.values():
                st[d] = st[d + 1]
                del st[d + 1]
        d -= 1
    return tuple(dims), {k: tuple(v) for k, v in strides.items()}
