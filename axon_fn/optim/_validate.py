"""Checks of the trees an optimizer is given (private; used by the aliases and apply_updates).

Optax trusts its inputs; numpy broadcasts a ``(4, 4)`` gradient against a ``(4,)`` moment and
optree reports a bare "dictionary key mismatch". Here the gradients, the parameters and the state
are compared once per structure and state (a loop that passes back the state the previous
update returned pays an identity test a step; a compiled step pays nothing, the check runs
while it is recorded), and a mismatch names the first differing path and the argument it came
from.
"""

from __future__ import annotations

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .._dtypes import is_low_precision, is_real_floating
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..tree import _first_difference, _spec_paths
from .base import GradientTransformation

__all__ = ["CheckedTransformation", "checked", "check_apply_updates"]

_LIMIT = 64


class CheckedTransformation(GradientTransformation):
    """A GradientTransformation whose ``update`` checks its arguments first (see
    :func:`checked`)."""

    __slots__ = ()


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _paths(spec):
    out = []
    _spec_paths(spec, [], out)
    return [path or "<root>" for path in out]


def _structure_error(where, a, b, names):
    spec_a, spec_b = optree.tree_structure(a), optree.tree_structure(b)
    found = _first_difference(spec_a, spec_b, [], False)
    path, got_a, got_b = found if found else ([], str(spec_a), str(spec_b))
    at = f"'{'/'.join(map(str, path))}'" if path else "the root"
    return ShapeError(f"{where}: `{names[0]}` and `{names[1]}` differ in structure at {at}: "
                      f"`{names[0]}` has {got_a} while `{names[1]}` has {got_b}")


def _check_leaves(where, a, b, names):
    """Same structure and, leaf by leaf, the same shape."""
    leaves_a, spec_a = optree.tree_flatten(a)
    leaves_b, spec_b = optree.tree_flatten(b)
    if spec_a != spec_b:
        raise _structure_error(where, a, b, names)
    for path, la, lb in zip(_paths(spec_a), leaves_a, leaves_b):
        if _shape(la) != _shape(lb):
            raise ShapeError(f"{where}: `{names[0]}` leaf '{path}' has shape {_shape(la)} but "
                             f"`{names[1]}` leaf '{path}' has shape {_shape(lb)}; every "
                             f"gradient must have its parameter's shape")


def _check_numeric(where, name, tree):
    leaves, spec = optree.tree_flatten(tree)
    for path, leaf in zip(_paths(spec), leaves):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            dtype = np.asarray(leaf).dtype
        if np.dtype(dtype).kind not in "fiuc" and not is_real_floating(dtype):
            raise AxonTypeError(f"{where}: `{name}` leaf '{path}' has dtype {np.dtype(dtype)} "
                                f"({type(leaf).__name__}); it must be a numeric array")


def _kinds(state):
    """The optimizer-state types in ``state`` (NamedTuples, in order), not looking into the
    per-parameter trees: what tells an Adam state from an SGD one."""
    out = []
    if isinstance(state, tuple):
        if hasattr(state, "_fields"):
            out.append(type(state).__name__)
        for item in state:
            out.extend(_kinds(item))
    return out


def _check_state(where, init, updates, state, params):
    try:
        expected = init(params if params is not None else updates)
    except Exception:  # noqa: BLE001  an init that needs more than shapes: nothing to compare
        return
    source = "params" if params is not None else "updates"
    leaves, spec = optree.tree_flatten(state)
    wanted, wanted_spec = optree.tree_flatten(expected)
    if spec == wanted_spec:
        for path, got, want in zip(_paths(spec), leaves, wanted):
            if _shape(got) != _shape(want):
                raise ShapeError(f"{where}: `state` leaf '{path}' has shape {_shape(got)}, but "
                                 f"for these `{source}` it must have shape {_shape(want)}: the "
                                 f"optimizer state was made for parameters of other shapes; "
                                 f"call init(params) again")
        return
    got, want = _kinds(state), _kinds(expected)
    if got != want:
        raise InvalidArgumentError(
            f"{where}: `state` was made by a different optimizer: it holds "
            f"{', '.join(got) or type(state).__name__}, while this optimizer's init makes "
            f"{', '.join(want) or type(expected).__name__}. Pass the state this optimizer's "
            f"init returned (a checkpoint's optimizer state must come from the same optimizer)")
    error = _structure_error(where, state, expected, ("state", f"init({source})"))
    raise ShapeError(f"{error}: the optimizer state was made for another parameter tree; call "
                     f"init(params) again after changing the model")


def _check(where, init, updates, state, params):
    _check_numeric(where, "updates", updates)
    if params is not None:
        _check_leaves(where, updates, params, ("updates", "params"))
    _check_state(where, init, updates, state, params)


def checked(transform, where):
    """``transform`` with an ``update`` that checks the gradients against the parameters
    (structure, then each leaf's shape) and the state against what ``init`` makes (another
    optimizer's state is named as such), once per structure and shapes.

    >>> import numpy as np, axon_fn
    >>> from axon_fn import optim
    >>> opt = checked(optim.chain(optim.scale(-0.1)), "optim.my_sgd")
    >>> params = {"w": np.ones(4)}
    >>> try:
    ...     opt.update({"w": np.ones((4, 4))}, opt.init(params), params)
    ... except axon_fn.ShapeError as error:
    ...     print(str(error)[:71])
    optim.my_sgd: `updates` leaf 'w' has shape (4, 4) but `params` leaf 'w'
    """
    if isinstance(transform, CheckedTransformation):
        return transform
    inner_init, passed = transform.init, set()
    inner_update = in_float32(transform.update)
    last = [None]  # the state the previous call returned, when its leaves were plain arrays

    def update(updates, state, params=None):
        if state is last[0] and state is not None:
            # the state this update made last time: it fits the parameters it was made for,
            # so only a mismatch that makes the update fail (optree's structure errors) is
            # looked into; a gradient of another shape is stopped by apply_updates
            try:
                out = inner_update(updates, state, params)
            except (ValueError, TypeError):
                _check(where, inner_init, updates, state, params)
                raise
            last[0] = out[1]
            return out
        try:
            leaves, spec = optree.tree_flatten((updates, state, params))
            key = (spec, tuple([(_shape(leaf), getattr(leaf, "dtype", None))
                                for leaf in leaves]))
            hash(key)
        except Exception:  # noqa: BLE001  unhashable leaves: check every call
            leaves, key = (), None
        if key is None or key not in passed:
            _check(where, inner_init, updates, state, params)
            if key is not None:
                if len(passed) >= _LIMIT:
                    passed.clear()
                passed.add(key)
        out = inner_update(updates, state, params)
        # remember it only when it holds plain arrays: a staged state would keep a recording
        last[0] = out[1] if key is not None and all(
            type(leaf) is np.ndarray for leaf in leaves) else None
        return out

    return CheckedTransformation(inner_init, update)


def _low(x):
    dtype = getattr(x, "dtype", None)
    return dtype is not None and is_low_precision(dtype)


def _widen(tree):
    return optree.tree_map(lambda x: ops.astype(x, np.float32) if _low(x) else x, tree)


def _narrow_like(new, old):
    """``new``'s leaves cast back to the float16/bfloat16 dtypes of ``old``'s (same
    structure; otherwise ``new`` as it is)."""
    new_leaves, new_spec = optree.tree_flatten(new, none_is_leaf=True)
    old_leaves, old_spec = optree.tree_flatten(old, none_is_leaf=True)
    if new_spec != old_spec:
        return new
    return new_spec.unflatten([ops.astype(n, o.dtype) if _low(o) and hasattr(n, "dtype") else n
                               for n, o in zip(new_leaves, old_leaves)])


def in_float32(update):
    """``update`` computing in float32 when the gradients hold float16 or bfloat16 leaves:
    gradients, state and parameters are widened, and the new state and the updates are
    rounded back to the dtypes they came in (the state stays in the parameters' dtype, as in
    Optax, while squares, square roots and bias corrections are not rounded to 8 bits of
    mantissa at every step).

    >>> import numpy as np
    >>> from axon_fn import optim
    >>> tx = optim.adam(0.1)
    >>> p = {"w": np.ones(2, np.float16)}
    >>> u, s = tx.update({"w": np.ones(2, np.float16)}, tx.init(p), p)
    >>> u["w"].dtype, s[0].mu["w"].dtype
    (dtype('float16'), dtype('float16'))
    """

    def wrapped(updates, state, params=None):
        if not any(_low(leaf) for leaf in optree.tree_leaves(updates)):
            return update(updates, state, params)
        new_updates, new_state = update(_widen(updates), _widen(state), _widen(params))
        return _narrow_like(new_updates, updates), _narrow_like(new_state, state)

    return wrapped


def check_apply_updates(params, updates, error):
    """Called when ``apply_updates`` failed: raise an error naming the first leaf where
    ``updates`` does not fit ``params`` (or re-raise ``error`` when they fit)."""
    spec_p = optree.tree_structure(params, none_is_leaf=True)
    spec_u = optree.tree_structure(updates, none_is_leaf=True)
    if spec_p != spec_u:
        found = _first_difference(spec_p, spec_u, [], False)
        path, got_p, got_u = found if found else ([], str(spec_p), str(spec_u))
        at = f"'{'/'.join(map(str, path))}'" if path else "the root"
        raise ShapeError(f"apply_updates: `params` and `updates` differ in structure at {at}: "
                         f"`params` has {got_p} while `updates` has {got_u}") from error
    leaves_p = optree.tree_leaves(params, none_is_leaf=True)
    leaves_u = optree.tree_leaves(updates, none_is_leaf=True)
    for path, p, u in zip(_paths(spec_p), leaves_p, leaves_u):
        if u is not None and _shape(p) != _shape(u):
            raise ShapeError(f"apply_updates: `updates` leaf '{path}' has shape {_shape(u)} "
                             f"but `params` leaf '{path}' has shape {_shape(p)}; an update "
                             f"must have its parameter's shape") from error
    raise error
