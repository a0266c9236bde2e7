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

import numpy as np

from .errors import AxonError, BackendMismatchError, ShapeError, TracerError

__all__ = ["AbstractArray", "Tracer", "Trace", "Primitive", "VariadicVJP", "primitive",
           "PRIMITIVES", "full_value"]

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
        return int(np.prod(self.shape, dtype=np.int64))

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


class Tracer:
    """A value being differentiated: the array (or a lower-level tracer) plus its trace and index.

    Tracers behave like arrays (``shape``, ``dtype``, arithmetic, indexing, ``.sum()``...); all
    operators route through axon_fn primitives so the tape sees them. Converting a tracer to a
    numpy array would silently drop its gradient, so ``np.asarray(tracer)`` raises; use
    ``float(x)`` or ``x.item()`` for a concrete number (tracing is eager, so values exist).
    """

    __slots__ = ("value", "trace", "index")
    __array_ufunc__ = None  # numpy defers `ndarray + tracer` to Tracer.__radd__
    __array_priority__ = 1000

    def __init__(self, value, trace, index):
        self.value = value
        self.trace = trace
        self.index = index

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)

    def __len__(self):
        return len(self.value)

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


def primitive(name, impl, shape_rule, vjps=None, *, gpu=None, doc=None):
    """Register a primitive and return its op function.

    ``impl(xp, *arrays, **static)`` is the forward against an array module; ``vjps`` holds one
    rule per positional argument, ``rule(g, ans, *arrays, **static) -> cotangent`` (``None`` for
    an argument that takes no gradient, e.g. integer indices); ``vjps=None`` marks the whole
    primitive as non-differentiable. ``shape_rule(*arrays, **static) -> AbstractArray`` must
    raise :class:`ShapeError` for inputs that do not fit.
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
    return op


def _bind(prim, args, params):
    """Dispatch for anything but plain numpy arrays and scalars."""
    trace = None
    abstract = gpu = False
    for a in args:
        t = type(a)
        if t is Tracer:
            if trace is None or a.trace.level > trace.level:
                trace = a.trace
        elif t is AbstractArray:
            abstract = True
        elif t not in _FAST_TYPES and _is_cupy_type(t):
            gpu = True
    if trace is not None:
        return _bind_traced(prim, trace, args, params)
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
    err.add_note(f"in axon_fn op {prim.name!r} with argument shapes {shapes}")


def _abstract(a):
    value = full_value(a)
    if isinstance(value, AbstractArray) or not hasattr(value, "shape"):
        return value
    return AbstractArray(value.shape, value.dtype)
