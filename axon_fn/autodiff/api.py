"""Reverse-mode differentiation in JAX's shape: grad, value_and_grad, vjp, stop_gradient,
custom_vjp. Arguments and results are pytrees (dicts, lists, tuples, namedtuples, None).

>>> import numpy as np
>>> from axon_fn import ops
>>> grad(lambda x: ops.sum(x * x))(np.array([1.0, 2.0]))
array([2., 4.])
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .._dtypes import is_floating
from .._core import AbstractArray, Trace, Tracer, full_value
from ..errors import AxonTypeError, TracerError
from ..ops.creation import ones_like, zeros_like
from ..typing import PyTree
from ._engine import CUSTOM, backward

__all__ = ["grad", "value_and_grad", "vjp", "stop_gradient", "custom_vjp"]


def _as_array(leaf, where):
    value = full_value(leaf)
    if isinstance(value, (float, int, bool, np.generic)):
        return np.asarray(leaf) if type(leaf) is not Tracer else leaf
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise AxonTypeError(f"{where}: expected arrays as leaves, got {type(leaf).__name__}")
    return leaf


def _trace_inputs(trace, primals, where):
    leaves, treedef = optree.tree_flatten(primals)
    leaves = [_as_array(leaf, where) for leaf in leaves]
    tracers = [trace.new_tracer(leaf) for leaf in leaves]
    return leaves, tracers, treedef


def _untrace(tree, trace):
    """Replace tracers of ``trace`` by their values (which may be tracers of outer traces)."""
    return optree.tree_map(lambda x: x.value if type(x) is Tracer and x.trace is trace else x, tree)


def _vjp(fun, primals, has_aux, where):
    trace = Trace()
    leaves, tracers, treedef = _trace_inputs(trace, primals, where)
    try:
        out = fun(*treedef.unflatten(tracers))
    finally:
        trace.active = False
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise AxonTypeError(f"{where}: with has_aux=True the function must return (output, aux)")
        out, aux = out
        aux = stop_gradient(aux)
    out_leaves, out_tree = optree.tree_flatten(out)
    primal_out = _untrace(out, trace)

    def pullback(cotangents):
        ct_leaves = out_tree.flatten_up_to(cotangents)
        seeds = {}
        for o, ct in zip(out_leaves, ct_leaves):
            if type(o) is Tracer and o.trace is trace:
                seeds[o.index] = ct if o.index not in seeds else seeds[o.index] + ct
        cts = backward(trace, seeds)
        grads = [
            zeros_like(leaf) if cts[t.index] is None else cts[t.index]
            for leaf, t in zip(leaves, tracers)
        ]
        return treedef.unflatten(grads)

    return primal_out, pullback, aux


def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """The output of ``fun(*primals)`` and a function pulling cotangents back to the inputs.

    Returns ``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with ``has_aux``); ``vjp_fn(ct)`` takes a
    cotangent shaped like ``out`` and returns a tuple with one cotangent per primal.

    >>> out, pull = vjp(lambda x: x * 3.0, np.array([1.0, 2.0]))
    >>> pull(np.array([1.0, 10.0]))
    (array([ 3., 30.]),)
    """
    out, pullback, aux = _vjp(fun, primals, has_aux, "vjp")
    return (out, pullback, aux) if has_aux else (out, pullback)


def _check_differentiable(args, argnums, where):
    for argnum, arg in zip(argnums, args):
        if all(type(leaf) is np.ndarray and (leaf.dtype.kind in "fc" or is_floating(leaf.dtype))
               for leaf in optree.tree_leaves(arg)):
            continue  # the usual case, checked without building the paths
        for path, leaf in zip(*optree.tree_flatten_with_path(arg)[:2]):
            dtype = getattr(full_value(leaf), "dtype", None)
            if dtype is None:
                dtype = np.result_type(leaf) if isinstance(leaf, (int, float, bool)) else None
            if dtype is None or not is_floating(dtype):
                location = "".join(f"[{p!r}]" for p in path)
                raise AxonTypeError(
                    f"{where}: argument {argnum}{location} has dtype {dtype}; gradients need "
                    "floating-point inputs (cast with .astype('float32'), or pass integer data "
                    "through an argument not in argnums)"
                )


def value_and_grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """A function returning ``fun``'s value and its gradient with respect to ``argnums``.

    ``fun`` must return a scalar (shape ``()``). With ``has_aux=True`` it returns
    ``(scalar, aux)`` and the result is ``((value, aux), grads)``.

    >>> f = value_and_grad(lambda w, x: ((w * x) ** 2).sum())
    >>> value, dw = f(np.array([1.0, 2.0]), np.array([3.0, 1.0]))
    >>> float(value), dw
    (13.0, array([18.,  4.]))
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    name = getattr(fun, "__name__", "function")

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        for n in nums:
            if not -len(args) <= n < len(args):
                raise AxonTypeError(
                    f"grad of {name}: argnums={argnums} but only {len(args)} positional "
                    "arguments were given"
                )
        diff = tuple(args[n] for n in nums)
        _check_differentiable(diff, nums, f"grad of {name}")

        def partial(*values):
            full = list(args)
            for n, v in zip(nums, values):
                full[n] = v
            return fun(*full, **kwargs)

        out, pullback, aux = _vjp(partial, diff, has_aux, f"grad of {name}")
        _check_scalar(out, name)
        grads = pullback(ones_like(out) if hasattr(full_value(out), "shape") else 1.0)
        grads = grads[0] if single else grads
        return ((out, aux) if has_aux else out), grads

    return wrapped


def _check_scalar(out, name):
    value = full_value(out)
    if isinstance(value, (float, int, np.generic)):
        return
    shape = getattr(value, "shape", None)
    if shape is None:
        raise AxonTypeError(
            f"grad of {name}: the function returned {type(value).__name__}, expected a scalar "
            "array (use vjp for pytree outputs, or has_aux=True to return extra values)"
        )
    if tuple(shape) != ():
        raise AxonTypeError(
            f"grad of {name}: the function must return a scalar, got shape {tuple(shape)} "
            "(reduce it, e.g. with ops.sum or ops.mean, or use vjp)"
        )
    if not is_floating(value.dtype):
        raise AxonTypeError(f"grad of {name}: the output has dtype {value.dtype}, expected float")


def grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    Gradients have the structure of the differentiated arguments. Nested ``grad`` gives higher
    derivatives.

    >>> from axon_fn import ops
    >>> d2 = grad(grad(lambda x: ops.sum(x ** 3)))
    >>> float(d2(np.array(2.0)))
    12.0
    """
    value_grad = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        value, grads = value_grad(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapped


def stop_gradient(tree: PyTree) -> PyTree:
    """The same values with no gradient flowing through them (at every nesting level).

    >>> grad(lambda x: (x * stop_gradient(x)).sum())(np.array([3.0]))
    array([3.])
    """
    return optree.tree_map(full_value, tree)


class custom_vjp:  # noqa: N801 - named like the JAX decorator it mirrors
    """Give a function a hand-written VJP (for stability or speed).

    ``fwd(*args) -> (out, residuals)`` runs the forward pass; ``bwd(residuals, g) -> tuple`` with
    one cotangent per positional argument (``None`` for no gradient).

    >>> @custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (np.clip(g, -1, 1),))
    >>> grad(lambda x: clip_gradient(x * 10.0).sum())(np.array([1.0]))
    array([10.])
    """

    def __init__(self, fun: Callable[..., Any]) -> None:
        self.fun = fun
        self.fwd = None
        self.bwd = None
        functools.update_wrapper(self, fun)

    def defvjp(self, fwd: Callable[..., tuple[Any, Any]],
               bwd: Callable[[Any, Any], tuple[Any, ...]]) -> None:
        """Set the forward (returning residuals) and backward functions."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any) -> Any:
        leaves, treedef = optree.tree_flatten(args)
        trace = None
        for leaf in leaves:
            if type(leaf) is Tracer and (trace is None or leaf.trace.level > trace.level):
                trace = leaf.trace
        if trace is None or isinstance(full_value(leaves[0]) if leaves else None, AbstractArray):
            return self.fun(*args)
        if self.fwd is None:
            raise TracerError(f"custom_vjp {self.__name__}: call defvjp(fwd, bwd) before grad")
        inner = [x.value if type(x) is Tracer and x.trace is trace else x for x in leaves]
        out, residuals = self.fwd(*treedef.unflatten(inner))
        out_leaves, out_tree = optree.tree_flatten(out)
        tracers = [trace.new_tracer(v) for v in out_leaves]
        parents = tuple(x.index if type(x) is Tracer and x.trace is trace else -1 for x in leaves)
        bwd = self.bwd

        def bwd_flat(gs):
            in_cts = bwd(residuals, out_tree.unflatten(gs))
            if not isinstance(in_cts, (tuple, list)) or len(in_cts) != len(args):
                raise AxonTypeError(
                    f"custom_vjp {self.__name__}: bwd must return a tuple with one cotangent per "
                    f"positional argument ({len(args)}), got {type(in_cts).__name__}"
                )
            flat = []
            for arg, ct in zip(args, in_cts):
                arg_leaves = optree.tree_leaves(arg)
                flat.extend([None] * len(arg_leaves) if ct is None else optree.tree_leaves(ct))
            return flat

        trace.tape.append(
            (CUSTOM, tuple(t.index for t in tracers), parents, inner, bwd_flat, out_leaves)
        )
        return out_tree.unflatten(tracers)
