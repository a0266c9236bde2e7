"""The heart of axon_fn: primitives, traced values, abstract values and the dispatch between them.

A *primitive* is one registration: a forward written once against an array module ``xp`` (numpy
or cupy), optional faster overrides (C kernels for numpy arrays, CuPy kernels), one VJP rule per
positional argument, and a shape rule. Calling a primitive's op function dispatches on its
positional arguments:

* plain numpy arrays and Python scalars take the *fast path* straight into the CPU kernel;
* a :class:`Tracer` (a value watched by ``grad``/``vjp``) records a tape entry;
* an :class:`AbstractArray` (shape and dtype, no data) runs the shape rule;
* cupy arrays run the GPU kernel; mixing them with numpy arrays is an error.

This module imports nothing else from axon_fn except its error types, so that ``ops`` and
``autodiff`` can both stand on it.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ._signature import numpy_signature_op
from .errors import (
    AxonError, AxonTypeError, BackendMismatchError, ShapeError, StagingError, TracerError,
    add_note,
)

__all__ = ["AbstractArray", "Tracer", "Trace", "Staged", "Recording", "Primitive", "VariadicVJP",
           "primitive", "stageable", "PRIMITIVES", "full_value", "backing_value", "numpy_backed"]

PRIMITIVES: dict[str, "Primitive"] = {}

# Argument types that can take the fast path without further inspection.
_FAST_TYPES = frozenset(
    {np.ndarray, float, int, bool, np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_}
)


class AbstractArray:
    """The shape and dtype of an array, without its data.

    Ops given an ``AbstractArray`` run their shape rule instead of computing, which is how
    ``axon_fn.eval_shape`` and model initialization infer shapes without arithmetic.

    >>> from axon_fn import ops
    >>> ops.matmul(AbstractArray((8, 3), "float32"), AbstractArray((3, 5), "float32"))
    AbstractArray(shape=(8, 5), dtype=float32)
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype="float32"):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d AbstractArray")
        return self.shape[0]

    def __repr__(self):
        return f"AbstractArray(shape={self.shape}, dtype={self.dtype})"

    def __eq__(self, other):
        return (
            isinstance(other, AbstractArray)
            and self.shape == other.shape
            and self.dtype == other.dtype
        )

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __bool__(self):
        raise TracerError("an AbstractArray has no value: it cannot be used in Python control flow")


_trace_levels = itertools.count(1)


class Trace:
    """One ``grad``/``vjp`` call's record: a tape of entries in execution order.

    ``level`` orders nested traces: the innermost (most recent) trace has the highest level, so a
    primitive given tracers of several traces records on the innermost one first.
    """

    __slots__ = ("level", "tape", "count", "active")

    def __init__(self):
        self.level = next(_trace_levels)
        self.tape = []
        self.count = 0
        self.active = True

    def new_tracer(self, value):
        tracer = Tracer(value, self, self.count)
        self.count += 1
        return tracer


class _Wrapper:
    """What traced and staged values share: an array's shape facts, read from the value they
    wrap, and numpy deferring its operators to them (``ndarray + x`` calls ``x.__radd__``)."""

    __slots__ = ()
    __array_ufunc__ = None
    __array_priority__ = 1000

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)

    def __len__(self):
        return len(self.value)


class Tracer(_Wrapper):
    """A value being differentiated: the array (or a lower-level tracer) plus its trace and index.

    Tracers behave like arrays (``shape``, ``dtype``, arithmetic, indexing, ``.sum()``...); all
    operators route through axon_fn primitives so the tape sees them. Converting a tracer to a
    numpy array would silently drop its gradient, so ``np.asarray(tracer)`` raises; use
    ``float(x)`` or ``x.item()`` for a concrete number (tracing is eager, so values exist).
    """

    __slots__ = ("value", "trace", "index")

    def __init__(self, value, trace, index):
        self.value = value
        self.trace = trace
        self.index = index


    def __array__(self, dtype=None, copy=None):
        raise TracerError(
            "a traced value was converted to a numpy array, which would drop its gradient; "
            "use axon_fn.ops functions on it, or axon_fn.stop_gradient(x) if that is intended"
        )

    def __bool__(self):
        return bool(full_value(self))

    def __float__(self):
        return float(full_value(self))

    def __int__(self):
        return int(full_value(self))

    def __index__(self):
        return int(full_value(self))

    def item(self):
        """The concrete Python number held by a single-element traced array."""
        return full_value(self).item()

    def __repr__(self):
        return f"Tracer(level={self.trace.level}, value={full_value(self)!r})"

    __hash__ = object.__hash__


def full_value(x):
    """Strip every level of tracing from ``x`` and return the concrete value."""
    while type(x) is Tracer:
        x = x.value
    return x


def backing_value(x):
    """The array under every layer of tracing and staging, for asking its type or backend
    (never its values: a staged array's values are not fixed)."""
    while type(x) is Tracer or type(x) is Staged:
        x = x.value
    return x


def numpy_backed(x):
    """True for a numpy array, staged or not (a C kernel can take it, also inside jit), and
    False for traced values, whose ops must stay on the tape."""
    return type(x) is np.ndarray or (type(x) is Staged and type(x.value) is np.ndarray)


class Recording:
    """One ``axon_fn.jit`` recording: the steps (primitive calls) a function made, in order.

    Slots number the values: inputs, constants (every argument that is not staged) and each
    step's outputs. A step is ``(fn, input slots, static params, output slot or slots)``.
    ``origins`` maps a step's first output slot to what was called (a primitive's op, or a
    ``stageable`` function), and ``avals`` each staged slot to ``(shape, dtype, is_scalar,
    on_host)`` of its recorded value (a numpy scalar; a numpy array or scalar): what the native
    compiler lowers from.
    """

    __slots__ = ("steps", "constants", "count", "active", "origins", "avals")

    def __init__(self):
        self.steps = []
        self.constants = {}  # slot -> value
        self.count = 0
        self.active = True
        self.origins = {}
        self.avals = {}

    def new_value(self, value):
        staged = Staged(value, self, self.count)
        self.avals[self.count] = (getattr(value, "shape", ()), getattr(value, "dtype", None),
                                  not isinstance(value, np.ndarray),
                                  isinstance(value, (np.ndarray, np.generic)))
        self.count += 1
        return staged

    def constant(self, value):
        self.constants[self.count] = value
        self.count += 1
        return self.count - 1


class Staged(_Wrapper):
    """A value inside a function that ``axon_fn.jit`` is recording: the concrete array of the
    recording run plus its slot. Ops on it run and record a step; anything that would read its
    values into Python (``bool``, ``float``, ``np.asarray``) raises :class:`StagingError`,
    because the replayed program could not follow a different value.
    """

    __slots__ = ("value", "recording", "slot")

    def __init__(self, value, recording, slot):
        self.value = value
        self.recording = recording
        self.slot = slot


    def _concrete(self, what):
        raise StagingError(
            f"{what} of an array inside a function being compiled by axon_fn.jit: the compiled "
            "program replays the same ops for every value, so it cannot depend on one; use "
            "ops.where for value-dependent choices, pass the value as a static argument, or "
            "keep this code outside the jitted function")

    def __array__(self, dtype=None, copy=None):
        self._concrete("a numpy conversion (np.asarray or a numpy function)")

    def __bool__(self):
        self._concrete("bool()")

    def __float__(self):
        self._concrete("float()")

    def __int__(self):
        self._concrete("int()")

    def __index__(self):
        self._concrete("use as an index")

    def item(self):
        self._concrete(".item()")

    def __repr__(self):
        return f"Staged(shape={self.shape}, dtype={self.dtype})"

    __hash__ = object.__hash__


def _record(recording, fn, replay_fn, args, params):
    """Run ``fn`` on the concrete values of ``args`` and record ``replay_fn`` as one step."""
    if not recording.active:
        raise StagingError(
            f"{getattr(fn, '__name__', fn)}: got an array staged by an axon_fn.jit call that has "
            "returned; do not keep staged values outside the function being compiled")
    staged_params = [k for k, v in params.items() if _holds_staged(v)]
    if staged_params:  # index arrays passed as settings (a gather's VJP): inputs of the step
        return _record_staged_params(recording, fn, replay_fn, args, params, staged_params)
    values = []
    slots = []
    for a in args:
        if type(a) is Staged:
            if a.recording is not recording:
                raise StagingError("arrays of two axon_fn.jit recordings met in one op")
            values.append(a.value)
            slots.append(a.slot)
        else:
            values.append(a)
            slots.append(recording.constant(a))
    ans = fn(*values, **params)
    for a, v in zip(args, values):
        if ans is v and type(a) is Staged:
            return a  # the op handed back its input (a cast to the same dtype): no step
    if type(ans) is tuple:  # several outputs (a fused optimizer step)
        outs = tuple(recording.new_value(v) for v in ans)
        recording.steps.append((replay_fn, tuple(slots), params, tuple(o.slot for o in outs)))
        if outs:
            recording.origins[outs[0].slot] = fn
        return outs
    out = recording.new_value(ans)
    recording.steps.append((replay_fn, tuple(slots), params, out.slot))
    recording.origins[out.slot] = fn
    return out


def _holds_staged(v):
    return type(v) is Staged or (type(v) is tuple and any(type(e) is Staged for e in v))


def _record_staged_params(recording, fn, replay_fn, args, params, keys):
    """Record a call whose settings hold staged arrays: those arrays become extra positional
    inputs, put back into the settings by a wrapper at replay."""
    extra = []
    masks = []
    for k in keys:
        v = params[k]
        mask = None if type(v) is Staged else tuple(type(e) is Staged for e in v)
        extra.extend([v] if mask is None else [e for e in v if type(e) is Staged])
        masks.append(mask)
    static = {k: v for k, v in params.items() if k not in keys}
    n = len(args)

    def with_settings(call):
        def run(*arrays, **settings):
            rest = iter(arrays[n:])
            for k, mask in zip(keys, masks):
                settings[k] = next(rest) if mask is None else tuple(
                    next(rest) if m else e for m, e in zip(mask, params[k]))
            return call(*arrays[:n], **settings)
        return run

    return _record(recording, with_settings(fn), with_settings(replay_fn), (*args, *extra),
                   static)


def stageable(fn):
    """Let ``fn`` (pure: arrays positional, settings keyword-only) run inside ``axon_fn.jit`` as
    one recorded step, for host code that is not made of primitives (PRNG bits, a fused C
    optimizer update). It may return an array or a tuple of arrays."""

    @functools.wraps(fn)
    def wrapper(*args, **params):
        for a in args:
            if type(a) is Staged:
                return _record(a.recording, fn, fn, args, params)
        return fn(*args, **params)

    return wrapper


def _is_cupy_type(t):
    return t.__module__.split(".", 1)[0] == "cupy"


class VariadicVJP:
    """VJP rules of a primitive taking any number of arrays (concatenate, stack, einsum).

    ``rule_for(i)`` builds the rule of positional argument ``i``; rules are made on first use.
    """

    __slots__ = ("rule_for", "_rules")

    def __init__(self, rule_for):
        self.rule_for = rule_for
        self._rules = {}

    def __getitem__(self, i):
        rule = self._rules.get(i)
        if rule is None:
            rule = self._rules[i] = self.rule_for(i)
        return rule

    def __iter__(self):
        raise TypeError("VariadicVJP rules are indexed by argument position, not iterated")


class JointVJP:
    """One VJP rule for all of a primitive's arguments, for when their cotangents share work
    (a fused layer computes its activation's gradient once for the input, kernel and bias).

    ``rule(needed, g, ans, *arrays, **static)`` returns one cotangent per argument; ``needed[i]``
    says whether argument ``i`` needs one (the rule returns ``None`` for the others and skips
    their work).
    """

    __slots__ = ("rule",)

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, i):
        return self  # every argument is differentiable

    def __iter__(self):
        raise TypeError("a JointVJP is one rule for all arguments, not a rule per argument")


class Primitive:
    """One differentiable (or not) operation: forward, overrides, VJP rules and shape rule.

    Build one with :func:`primitive`, which returns the op function users call.
    """

    __slots__ = ("name", "impl", "cpu", "numpy_cpu", "gpu_override", "_gpu", "vjps",
                 "shape_rule", "op")

    def __init__(self, name, impl, shape_rule, vjps, gpu):
        self.name = name
        self.impl = impl
        self.numpy_cpu = functools.partial(impl, np)
        self.cpu = self.numpy_cpu
        self.gpu_override = gpu
        self._gpu = None
        self.vjps = vjps if vjps is None or isinstance(vjps, (VariadicVJP, JointVJP)) else tuple(
            vjps)
        self.shape_rule = shape_rule
        self.op = None

    @property
    def differentiable(self):
        return self.vjps is not None

    def gpu(self):
        """The CuPy implementation (imports cupy on first use)."""
        if self._gpu is None:
            import cupy

            self._gpu = self.gpu_override or functools.partial(self.impl, cupy)
        return self._gpu

    def set_native(self, fn):
        """Install (or, with ``None``, remove) a C override of the numpy path."""
        self.cpu = self.numpy_cpu if fn is None else fn

    def __repr__(self):
        return f"Primitive({self.name!r})"


def primitive(name, impl, shape_rule, vjps=None, *, gpu=None, doc=None, signature=None,
              normalize=None, ignore=()):
    """Register a primitive and return its op function.

    ``impl(xp, *arrays, **static)`` is the forward against an array module; ``vjps`` holds one
    rule per positional argument, ``rule(g, ans, *arrays, **static) -> cotangent`` (``None`` for
    an argument that takes no gradient, e.g. integer indices); ``vjps=None`` marks the whole
    primitive as non-differentiable. ``shape_rule(*arrays, **static) -> AbstractArray`` must
    raise :class:`ShapeError` for inputs that do not fit.

    ``signature`` (numpy's parameters as Python source, e.g. ``"a, axis=None, out=None"``) makes
    the returned op bind its arguments exactly as numpy's function of that name does (see
    :mod:`axon_fn._signature`); without it, arrays are positional and settings keyword-only.
    Either way ``prim.op`` is the internal form (arrays positional, settings keyword).
    """
    if name in PRIMITIVES:
        raise AxonError(f"primitive {name!r} is registered twice")
    prim = Primitive(name, impl, shape_rule, vjps, gpu)
    fast = _FAST_TYPES

    def op(*args, **params):
        for a in args:
            if type(a) not in fast:
                return _bind(prim, args, params)
        try:
            return prim.cpu(*args, **params)
        except Exception as err:
            _explain(prim, args, params, err)
            raise

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    op.primitive = prim
    prim.op = op
    PRIMITIVES[name] = prim
    if signature is None:
        return op
    public = numpy_signature_op(prim, signature, fast=fast, bind=_bind, explain=_explain,
                                refuse=_refuse, cast=lambda: PRIMITIVES["astype"].op,
                                normalize=normalize, ignore=ignore)
    public.__doc__ = doc
    public.__qualname__ = name
    public.primitive = prim
    return public


def _refuse(name, argument, value, why):
    shown = f"<array of shape {value.shape}>" if hasattr(value, "shape") else repr(value)
    raise AxonTypeError(f"{name}: {argument}={shown} is not supported: {why}")


def _bind(prim, args, params):
    """Dispatch for anything but plain numpy arrays and scalars."""
    trace = staged = None
    abstract = gpu = False
    for a in args:
        t = type(a)
        if t is Tracer:
            if trace is None or a.trace.level > trace.level:
                trace = a.trace
        elif t is Staged:
            staged = a.recording
        elif t is AbstractArray:
            abstract = True
        elif t is list or t is tuple:  # array-likes, as numpy takes them
            return _bind(prim, tuple(np.asarray(a) if type(a) in (list, tuple) else a
                                     for a in args), params)
        elif t not in _FAST_TYPES and _is_cupy_type(t):
            gpu = True
    if trace is not None:
        return _bind_traced(prim, trace, args, params)
    if staged is not None:
        return _bind_staged(prim, staged, args, params)
    if abstract:
        return prim.shape_rule(*args, **params)
    if gpu:
        _check_single_backend(prim, args)
        return prim.gpu()(*args, **params)
    try:
        return prim.cpu(*args, **params)
    except Exception as err:
        _explain(prim, args, params, err)
        raise


def _bind_traced(prim, trace, args, params):
    """Apply ``prim`` to the values under ``trace`` and record one tape entry (the hot path)."""
    if not trace.active:
        raise TracerError(
            f"{prim.name}: got a value traced by a grad/vjp call that has already returned; "
            "do not keep traced values outside the function being differentiated"
        )
    vjps = prim.vjps
    inner = []
    parents = []
    differentiable = False
    plain = True  # every inner value is a numpy array or scalar: call the kernel directly
    i = 0
    for a in args:
        if type(a) is Tracer and a.trace is trace:
            a_value = a.value
            inner.append(a_value)
            if vjps is not None and vjps[i] is not None:
                parents.append(a.index)
                differentiable = True
            else:
                parents.append(-1)
        else:
            a_value = a
            inner.append(a)
            parents.append(-1)
        if type(a_value) not in _FAST_TYPES:
            plain = False
        i += 1
    if plain:
        try:
            ans = prim.cpu(*inner, **params)
        except Exception as err:
            _explain(prim, inner, params, err)
            raise
    else:
        ans = prim.op(*inner, **params)
    if not differentiable:
        return ans
    out = Tracer(ans, trace, trace.count)
    trace.count += 1
    trace.tape.append((prim, out.index, parents, inner, params, ans))
    return out


def _bind_staged(prim, recording, args, params):
    """Run ``prim`` on the concrete values and record the kernel a replay calls: the CPU kernel
    itself when every value is a numpy array or scalar (as the fast path would), else the
    dispatching op."""
    plain = all(type(a.value if type(a) is Staged else a) in _FAST_TYPES for a in args)
    return _record(recording, prim.op, prim.cpu if plain else prim.op, args, params)


def _check_single_backend(prim, args):
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.ndim > 0:
            raise BackendMismatchError(
                f"{prim.name}: argument {i} is a numpy array of shape {a.shape} while another "
                "argument is a cupy array; move both to one device with axon_fn.device_put"
            )


def _explain(prim, args, params, err):
    """Turn a low-level failure into a named error when the shape rule can say what is wrong."""
    if isinstance(err, AxonError):
        return
    try:
        prim.shape_rule(*(_abstract(a) for a in args), **params)
    except ShapeError as shape_err:
        raise shape_err from err
    except Exception:
        pass
    shapes = ", ".join(str(getattr(a, "shape", type(a).__name__)) for a in args)
    add_note(err, f"in axon_fn op {prim.name!r} with argument shapes {shapes}")


def _abstract(a):
    value = full_value(a)
    if isinstance(value, AbstractArray) or not hasattr(value, "shape"):
        return value
    return AbstractArray(value.shape, value.dtype)
