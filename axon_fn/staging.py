"""``jit``: compile a function of arrays into a fixed program of kernel calls.

The first call with a new *signature* (the pytree structure of the arguments, each array's
type, shape and dtype, and the value of every other leaf) runs the function once with its
arrays *staged*: every primitive it calls, including those of ``grad``'s backward pass and of
the optimizer, computes as usual and is recorded as one step. Later calls with that signature
run the steps with none of the Python work around them (layer interpretation, tracing, tape
walking, pytree plumbing, argument checks): compiled to C by :mod:`axon_fn._compile` (fused
loops, one arena, calls out to Python for steps without a C lowering), or replayed from a
generated Python function that calls each kernel in turn and releases each intermediate after
its last use. Steps whose results are never used are dropped.

This is JAX's ``jit`` contract, kept for the same reason: the function must be pure, and its
Python control flow may depend on shapes, dtypes and static values but not on array values
(``bool(x)``, ``float(x)`` and numpy functions given a staged array raise
:class:`~axon_fn.StagingError`). Arrays the function closes over are baked into the program
as constants.

>>> import numpy as np
>>> from axon_fn import ops
>>> f = jit(lambda x, y: ops.sum(ops.tanh(x) * y))
>>> float(f(np.zeros(3), np.ones(3)))
0.0
>>> float(np.round(f(np.ones(3), np.ones(3)), 4))  # the same signature: a replay
2.2848
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Callable, Sequence

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from . import _compile
from ._core import AbstractArray, Recording, Staged, Tracer, _is_cupy_type
from ._tree_code import leaf_reader, tree_builder
from .errors import AxonTypeError, InvalidArgumentError, StagingError

__all__ = ["jit"]


DEFAULT_MAX_PROGRAMS = 32
_flatten = optree.tree_flatten


def jit(fun: Callable[..., Any] | None = None, *, static_argnums: int | Sequence[int] = (),
        max_programs: int | None = DEFAULT_MAX_PROGRAMS, backend: str | None = None,
        donate_argnums: int | Sequence[int] = ()) -> Callable[..., Any]:
    """Record ``fun`` on the first call per argument signature; run the recording compiled to C
    (or replayed kernel by kernel) on later calls.

    ``static_argnums`` names positional arguments that are settings, not arrays: they are
    part of the signature (a new value records again) and reach ``fun`` as they are. Leaves
    that are not arrays (Python numbers, strings, None) are static too. Calls made with traced,
    staged or abstract values (``jit`` inside ``grad``, ``jit`` or ``eval_shape``) run ``fun``
    directly. ``compiled.cache_size()`` counts the recorded programs.

    At most ``max_programs`` programs are kept (default 32; ``None``: no bound): a new
    signature past the bound drops the least recently used one, so a stream of new batch
    shapes records again instead of holding every program it ever made.

    ``backend`` picks how programs run: ``"native"`` compiles each to C as it is recorded
    (elementwise chains fused into single loops, sums into the loop that feeds them, products
    on the BLAS or small C kernels, intermediates in one arena; steps without a C lowering run
    as calls out to Python inside it), ``"python"`` replays the recorded kernels, and
    ``"auto"`` (the default, unless ``AXON_FN_JIT=python``) compiles a program on its second
    call, so a function called once pays no compile. Compiled programs are cached on disk
    (``AXON_FN_CACHE_DIR``, default ``~/.cache/axon_fn/jit``); without a C compiler the
    replay runs and ``backend_info()["jit"]`` says why. ``compiled.explain(*args)`` shows
    what became of each step.

    ``donate_argnums`` (as in JAX) names positional arguments whose arrays the compiled
    program may overwrite with its outputs: a training step ``jit(step, donate_argnums=(0,
    1))`` then updates the parameters and optimizer state in place, and the arrays it returns
    are the ones passed in. After such a call the donated arguments hold the new values (or
    garbage), so pass each donated array once and use only what the call returns.

    >>> import numpy as np
    >>> from axon_fn import grad, ops
    >>> step = jit(lambda w, x: w - 0.1 * grad(lambda w: ops.sum((x @ w) ** 2))(w))
    >>> w = step(np.ones(2), np.array([[1.0, 0.0]]))
    >>> w
    array([0.8, 1. ])
    >>> step(w, np.array([[1.0, 0.0]]))
    array([0.64, 1.  ])
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums, max_programs=max_programs,
                                 backend=backend, donate_argnums=donate_argnums)
    if not callable(fun):
        raise AxonTypeError(f"jit: expected a function, got {type(fun).__name__}")
    if max_programs is not None and not (isinstance(max_programs, int)
                                         and not isinstance(max_programs, bool)
                                         and max_programs >= 1):
        raise InvalidArgumentError(f"jit: `max_programs` must be a positive int or None, got "
                                   f"{max_programs!r}")
    if backend is None:
        backend = _compile.default_backend()
    elif backend not in _compile.BACKENDS:
        raise InvalidArgumentError(f"jit: `backend` must be one of {_compile.BACKENDS} or None, "
                                   f"got {backend!r}")
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    donate = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
    if set(donate) & set(static):
        raise InvalidArgumentError(f"jit: argument(s) {sorted(set(donate) & set(static))} are "
                                   f"both static and donated; a setting has no array to donate")
    return _Jitted(fun, static, max_programs, backend, donate)


class _Jitted:
    __slots__ = ("fun", "static_argnums", "programs", "max_programs", "backend", "donate_argnums",
                 "_last", "_read_last", "__wrapped__", "__doc__", "__name__")

    def __init__(self, fun, static_argnums, max_programs=DEFAULT_MAX_PROGRAMS, backend="python",
                 donate_argnums=()):
        self.fun = fun
        self.backend = backend
        self.donate_argnums = donate_argnums
        self.static_argnums = static_argnums
        self.programs = collections.OrderedDict()  # least recently used first
        self._last = None  # the program the last call ran (already at the end of the order)
        self._read_last = _never  # its arguments' leaves when a call matches its signature
        self.max_programs = max_programs
        self.__wrapped__ = fun
        self.__doc__ = getattr(fun, "__doc__", None)
        self.__name__ = getattr(fun, "__name__", "function")

    def cache_size(self):
        """How many signatures have a recorded program."""
        return len(self.programs)

    def explain(self, *args):
        """What the program for these arguments runs: its fused C loops, products and calls
        out, or why it stays on the Python replay (records or compiles it if needed).

        >>> from axon_fn import ops
        >>> f = jit(lambda x: ops.sum(ops.tanh(x) * 2.0), backend="python")
        >>> print(f.explain(np.ones(3)))
        Python replay of 3 steps (backend='python')
        """
        self(*args)
        return next(reversed(self.programs.values())).explain()

    def __call__(self, *args):
        # the common call: the signature of the last one, read by code generated for it
        leaves = self._read_last(args)
        if leaves is not None:
            return self._last.run(leaves)
        if self.static_argnums:
            n = len(args)
            static = tuple(sorted(i % n for i in self.static_argnums if -n <= i < n))
            dynamic = tuple(a for i, a in enumerate(args) if i not in static)
            return self._call(args, static, *optree.tree_flatten(dynamic))
        leaves, treedef = _flatten(args)
        # every leaf a numpy array: keyed as _call keys it, in one pass
        signature = [(a.shape, a.dtype) for a in leaves if type(a) is np.ndarray]
        if len(signature) == len(leaves):
            key = (treedef, tuple(signature), ())
            program = self.programs.get(key)
            if program is not None:
                self._ran(key, program)
                return program.run(leaves)
        return self._call(args, (), leaves, treedef)

    def _ran(self, key, program):
        """Mark ``program`` the most recently used, and read the next call's leaves for it."""
        if program is self._last:
            return
        self.programs.move_to_end(key)
        self._last = program
        self._read_last = program.read_args or _never

    def _call(self, args, static, leaves, treedef):
        """Replay or record for the flattened dynamic arguments ``leaves``."""
        kinds = [_leaf_kind(leaf) for leaf in leaves]
        if "inline" in kinds:
            return self.fun(*args)
        try:
            key = (treedef, tuple(_signature(leaf, kind) for leaf, kind in zip(leaves, kinds)),
                   tuple((type(args[i]), args[i]) for i in static))
            program = self.programs.get(key)
        except TypeError as err:  # an unhashable static value
            raise AxonTypeError(f"jit of {self.__name__}: a static argument or non-array leaf "
                                f"is not hashable ({err}); pass arrays or hashable settings"
                                ) from err
        if program is not None:
            self._ran(key, program)
            return program.run([leaf for leaf, kind in zip(leaves, kinds) if kind == "array"])
        donated = _donated_leaves(args, static, self.donate_argnums) if self.donate_argnums \
            else ()
        program, out = _record_program(self.fun, args, static, leaves, kinds, treedef,
                                       self.backend, donated)
        self.programs[key] = program
        if not static and all(type(leaf) is np.ndarray for leaf in leaves):
            program.read_args = leaf_reader(treedef, [(a.shape, a.dtype) for a in leaves])
        self._ran(key, program)
        if self.max_programs is not None and len(self.programs) > self.max_programs:
            self.programs.popitem(last=False)
        return out

    def __repr__(self):
        return f"jit({self.fun!r})"


def _never(args):
    return None


def _leaf_kind(leaf):
    t = type(leaf)
    if t is np.ndarray or isinstance(leaf, np.generic) or _is_cupy_type(t):
        return "array"
    if t is Tracer or t is Staged or t is AbstractArray:
        return "inline"
    return "static"


def _signature(leaf, kind):
    if kind == "array":  # a numpy array by shape and dtype, other arrays by their type too
        return (leaf.shape, leaf.dtype) if type(leaf) is np.ndarray else (
            type(leaf), leaf.shape, leaf.dtype)
    hash(leaf)
    return type(leaf), leaf  # the type keeps 1, 1.0 and True apart


def _donated_leaves(args, static, donate_argnums):
    """Which flattened dynamic leaves belong to donated arguments."""
    n = len(args)
    donate = {i % n for i in donate_argnums if -n <= i < n}
    flags = []
    for i, a in enumerate(args):
        if i not in static:
            flags.extend([i in donate] * len(optree.tree_leaves(a)))
    return flags


def _record_program(fun, args, static, leaves, kinds, treedef, backend="python", donated=()):
    recording = Recording()
    inputs = []
    staged = []
    donated_slots = []
    for k, (leaf, kind) in enumerate(zip(leaves, kinds)):
        if kind == "array":
            value = recording.new_value(leaf)
            inputs.append(value.slot)
            staged.append(value)
            if k < len(donated) and donated[k]:
                donated_slots.append(value.slot)
        else:
            staged.append(leaf)
    dynamic = iter(treedef.unflatten(staged))
    call_args = [a if i in static else next(dynamic) for i, a in enumerate(args)]
    try:
        out = fun(*call_args)
    finally:
        recording.active = False
    out_leaves, out_tree = optree.tree_flatten(out)
    outputs = []
    concrete = []
    for leaf in out_leaves:
        if type(leaf) is Staged and leaf.recording is recording:
            outputs.append(leaf.slot)
            concrete.append(leaf.value)
        elif type(leaf) in (Staged, Tracer):
            raise StagingError(f"jit of {getattr(fun, '__name__', 'function')}: the result "
                               "holds a value traced or staged by another call")
        else:
            outputs.append(recording.constant(leaf))
            concrete.append(leaf)
    return (Program(recording, inputs, outputs, out_tree, backend, donated_slots),
            out_tree.unflatten(concrete))


class Program:
    """A recording made replayable: its live steps as one generated Python function, each
    intermediate a local variable deleted after its last use; with the native backend, the
    same steps compiled to C once the program has run ``compile_after`` times (see
    :mod:`axon_fn._compile`)."""

    __slots__ = ("run_leaves", "out_tree", "build_out", "read_args", "n_steps", "source",
                 "native", "why_python", "_replay", "_calls", "_pending")

    def __init__(self, recording, inputs, outputs, out_tree, backend="python", donated=()):
        self.out_tree = out_tree
        self.build_out = tree_builder(out_tree) or out_tree.unflatten
        self.read_args = None  # set by jit for programs of numpy arguments
        steps = _live_steps(recording.steps, outputs)
        self.n_steps = len(steps)
        self.source, namespace = _generate(steps, recording.constants, inputs, outputs)
        exec(compile(self.source, "<axon_fn.jit program>", "exec"), namespace)
        self._replay = self.run_leaves = namespace["program"]
        self.native = None
        self.why_python = "backend='python'" if backend == "python" else None
        self._pending = None
        if backend == "python":
            return
        on_gpu = not all(aval[3] for aval in recording.avals.values())
        args = (steps, recording.origins, recording.avals, recording.constants, inputs, outputs)
        self._pending = (on_gpu, args if on_gpu else args + (donated,))  # CuPy: no donation
        self._calls = 0
        after = _compile.compile_after() if backend == "auto" else 0
        if after <= 1:
            self._promote()
        else:
            self.run_leaves = self._counting

    def _counting(self, *leaves):
        self._calls += 1  # replays; the recording was call 1
        if self._calls + 1 >= _compile.compile_after():
            self._promote()
        return self.run_leaves(*leaves)

    def _promote(self):
        """Compile the program (to C, or to fused CuPy kernels on GPU arrays) and run it from
        now on, or keep the replay, saying why."""
        pending, self._pending = self._pending, None
        self.run_leaves = self._replay
        if pending is None:
            return
        on_gpu, args = pending
        compile_program = _compile.compile_cupy if on_gpu else _compile.compile_native
        try:
            self.native = compile_program(*args, fallback=self._replay)
        except _compile.Unavailable as why:
            self.why_python = str(why)
            return
        self.run_leaves = self.native.run

    def run(self, leaves):
        return self.build_out(self.run_leaves(*leaves))

    def explain(self):
        """Which steps run in which fused C loops, and which run in Python (and why)."""
        if self._pending is not None:
            self._promote()
        if self.native is None:
            return f"Python replay of {self.n_steps} steps ({self.why_python})"
        return self.native.explain()


def _generate(steps, constants, inputs, outputs):
    """Python source calling each step's kernel on local variables, and its namespace (the
    kernels, their settings and the constants, by name)."""
    namespace = {}
    kept = set(outputs) | set(inputs) | set(constants)
    for slot, value in constants.items():
        namespace[f"c{slot}"] = value

    def name(slot):
        return f"c{slot}" if slot in constants else f"v{slot}"

    last_use = {}
    for index, (_, ins, _, out) in enumerate(steps):
        for slot in _outs(out):
            last_use[slot] = index  # an output nobody reads dies where it is made
        for slot in ins:
            last_use[slot] = index
    dead_after = [[] for _ in steps]
    for slot, index in last_use.items():
        if slot not in kept:
            dead_after[index].append(slot)
    lines = [f"def program({', '.join(name(s) for s in inputs)}):"]
    for index, (fn, ins, params, out) in enumerate(steps):
        namespace[f"f{index}"] = fn
        call = ", ".join([name(s) for s in ins] + ([f"**p{index}"] if params else []))
        if params:
            namespace[f"p{index}"] = params
        target = name(out) if type(out) is int else "".join(f"{name(s)}, " for s in out)
        lines.append(f"    {target} = f{index}({call})")
        if dead_after[index]:
            lines.append(f"    del {', '.join(name(s) for s in sorted(dead_after[index]))}")
    lines.append(f"    return ({''.join(name(s) + ', ' for s in outputs)})")
    return "\n".join(lines) + "\n", namespace


def _outs(out):
    return (out,) if type(out) is int else out


def _live_steps(steps, outputs):
    """The steps some output depends on (every recorded function is pure)."""
    needed = set(outputs)
    live = []
    for step in reversed(steps):
        if any(o in needed for o in _outs(step[3])):
            needed.update(step[1])
            live.append(step)
    live.reverse()
    return live
