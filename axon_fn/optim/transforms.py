"""Gradient transformations in Optax's style: learning rates, momentum, weight decay, clipping.

The moment-based scalings (Adam, RMSProp, Adagrad, ...) live in :mod:`axon_fn.optim.adaptive`
and are re-exported here. Names, defaults, formulas and state NamedTuples follow Optax.

>>> import numpy as np
>>> opt = trace(decay=0.5)
>>> state = opt.init(np.zeros(1))
>>> u, state = opt.update(np.array([1.0]), state)
>>> u, state = opt.update(np.array([1.0]), state)
>>> u
array([1.5])
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .. import random as axon_random
from .. import tree as tree_util
from .._core import stageable
from ..backend import array_module, is_gpu_array
from ..errors import InvalidArgumentError
from ..typing import DTypeLike, PyTree
from . import adaptive as _adaptive
from .adaptive import *  # noqa: F401,F403
from .adaptive import (
    _bias_correction, _cast_tree, _check_params, _decay, _evaluate, _hyper, _increment, _map,
    _moment, _zero_count, _zeros,
)
from .base import EmptyState, GradientTransformation, scale
from .schedules import Schedule

__all__ = [
    "ScaleByScheduleState", "TraceState", "EmaState", "AddNoiseState", "ZeroNansState",
    "AddDecayedWeightsState", "ClipState", "ClipByGlobalNormState", "ScaleByTrustRatioState",
    "scale_by_learning_rate", "scale_by_schedule", "trace", "ema", "add_decayed_weights",
    "add_noise", "clip", "clip_by_global_norm", "clip_by_block_rms", "centralize",
    "keep_params_nonnegative", "zero_nans", "scale_by_trust_ratio", "scale_by_param_block_rms",
    "scale_by_param_block_norm",
] + list(_adaptive.__all__)

AddDecayedWeightsState = EmptyState
ClipState = EmptyState
ClipByGlobalNormState = EmptyState
ScaleByTrustRatioState = EmptyState


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_schedule`: the number of updates so far."""

    count: Any


class TraceState(NamedTuple):
    """State of :func:`trace`."""

    trace: Any


class EmaState(NamedTuple):
    """State of :func:`ema`."""

    count: Any
    ema: Any


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`."""

    count: Any
    rng_key: Any


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans`: per leaf, whether its last update held a NaN."""

    found_nan: Any


# Learning rates -------------------------------------------------------------------------------


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply updates by ``step_size_fn(count)``, ``count`` being 0 at the first update.

    >>> import numpy as np
    >>> opt = scale_by_schedule(lambda count: 1.0 / (count + 1))
    >>> s = opt.init(np.zeros(1))
    >>> u, s = opt.update(np.array([4.0]), s)
    >>> opt.update(np.array([4.0]), s)[0]
    array([2.])
    """
    if not callable(step_size_fn):
        raise InvalidArgumentError(f"optim.scale_by_schedule: `step_size_fn` must be callable "
                                   f"(count -> value), got {step_size_fn!r}")
    return _schedule_transform(step_size_fn, 1.0, "scale_by_schedule")


def _schedule_transform(fn, sign, where):
    def init(params):
        return ScaleByScheduleState(_zero_count())

    def update(updates, state, params=None):
        step = sign * _evaluate(fn, state.count, where)
        return tree_util.scale(updates, step), ScaleByScheduleState(_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate: float | Schedule, *,
                           flip_sign: bool = True) -> GradientTransformation:
    """Multiply updates by ``-learning_rate`` (``+learning_rate`` without ``flip_sign``); the
    rate is a number or a schedule ``count -> value``.

    >>> import numpy as np
    >>> opt = scale_by_learning_rate(0.1)
    >>> opt.update(np.array([2.0], np.float32), opt.init(None))[0]
    array([-0.2], dtype=float32)
    """
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return _schedule_transform(learning_rate, sign, "scale_by_learning_rate")
    return scale(sign * _hyper(learning_rate, "scale_by_learning_rate", "learning_rate"))


# Momentum and averages ------------------------------------------------------------------------


def trace(decay: float, nesterov: bool = False,
          accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    """Momentum: ``t <- g + decay * t``; outputs ``t`` (or ``g + decay * t`` with
    ``nesterov``).

    >>> import numpy as np
    >>> opt = trace(decay=0.9, nesterov=True)
    >>> opt.update(np.array([1.0]), opt.init(np.zeros(1)))[0]
    array([1.9])
    """
    decay = _decay(decay, "trace", "decay", allow_one=True)

    def init(params):
        return TraceState(_zeros(params, accumulator_dtype))

    def update(updates, state, params=None):
        step = lambda g, t: ops.add(g, ops.multiply(t, decay))  # noqa: E731
        new_trace = _map(step, updates, state.trace)
        out = _map(step, updates, new_trace) if nesterov else new_trace
        return out, TraceState(_cast_tree(new_trace, accumulator_dtype))

    return GradientTransformation(init, update)


def ema(decay: float, debias: bool = True,
        accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    """Exponential moving average ``e <- (1 - decay) g + decay e``, bias-corrected by
    ``1 - decay^t`` when ``debias``.

    >>> import numpy as np
    >>> opt = ema(0.5)
    >>> opt.update(np.array([4.0]), opt.init(np.zeros(1)))[0]
    array([4.])
    """
    decay = _decay(decay, "ema", "decay")

    def init(params):
        return EmaState(_zero_count(), _zeros(params, accumulator_dtype))

    def update(updates, state, params=None):
        new_ema = _moment(updates, state.ema, decay, 1)
        count = _increment(state.count)
        out = _bias_correction(new_ema, decay, count) if debias else new_ema
        return out, EmaState(count, _cast_tree(new_ema, accumulator_dtype))

    return GradientTransformation(init, update)


# Weight decay and noise -----------------------------------------------------------------------


def add_decayed_weights(
        weight_decay: float = 0.0,
        mask: PyTree | Callable[[PyTree], PyTree] | None = None) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay); ``mask`` (a tree
    of bools or a function of the params) limits it to some leaves.

    >>> import numpy as np
    >>> opt = add_decayed_weights(0.1)
    >>> opt.update(np.array([1.0]), opt.init(None), np.array([2.0]))[0]
    array([1.2])
    """
    weight_decay = _hyper(weight_decay, "add_decayed_weights", "weight_decay")

    def init(params):
        return AddDecayedWeightsState()

    def update(updates, state, params=None):
        _check_params("add_decayed_weights", updates, params)
        out = _map(lambda g, p: ops.add(g, ops.multiply(p, weight_decay)), updates, params)
        return out, state

    tx = GradientTransformation(init, update)
    if mask is not None:
        from .combinators import masked
        return masked(tx, mask)
    return tx


@stageable
def _noise_std(count, *, eta, gamma):
    """``sqrt(eta / count ** gamma)``: a numpy float64, or a 0-d GPU array for a GPU count."""
    if is_gpu_array(count):
        return (eta / count.astype(np.float64) ** gamma) ** 0.5
    return np.float64((eta / float(int(count)) ** gamma) ** 0.5)


def add_noise(eta: float, gamma: float, seed: int) -> GradientTransformation:
    """Add Gaussian noise of variance ``eta / (t + 1)^gamma`` (t counting from 0), drawn with
    explicit keys from ``axon_fn.random.key(seed)``.

    >>> import numpy as np
    >>> opt = add_noise(0.01, 0.55, seed=0)
    >>> u, s = opt.update(np.zeros(3, np.float32), opt.init(np.zeros(3, np.float32)))
    >>> u.dtype, int(s.count), bool(np.all(np.abs(u) < 1.0))
    (dtype('float32'), 1, True)
    """
    eta = _hyper(eta, "add_noise", "eta")
    gamma = _hyper(gamma, "add_noise", "gamma")
    if eta < 0:
        raise InvalidArgumentError(f"optim.add_noise: `eta` is a variance and must be >= 0, "
                                   f"got {eta!r}")

    def init(params):
        return AddNoiseState(_zero_count(), axon_random.key(seed))

    def update(updates, state, params=None):
        flat = tree_util.leaves(updates)
        count = _increment(state.count)
        std = _noise_std(count, eta=eta, gamma=gamma)
        keys = axon_random.split(state.rng_key, len(flat) + 1)
        noisy = []
        for k, g in zip(keys[1:], flat):
            noise = axon_random.normal(k, tuple(g.shape), dtype=np.dtype(g.dtype))
            if is_gpu_array(g) and not is_gpu_array(noise):  # a host key: one copy per leaf
                noise = array_module(g).asarray(noise)
            noisy.append(ops.add(g, tree_util.scale(noise, std)))
        out = optree.tree_unflatten(optree.tree_structure(updates), noisy)
        return out, AddNoiseState(count, keys[0])

    return GradientTransformation(init, update)


# Clipping -------------------------------------------------------------------------------------


def clip(max_delta: float) -> GradientTransformation:
    """Clip every update element to ``[-max_delta, max_delta]``.

    >>> import numpy as np
    >>> clip(1.0).update(np.array([-3.0, 0.5, 2.0]), EmptyState())[0]
    array([-1. ,  0.5,  1. ])
    """
    max_delta = _hyper(max_delta, "clip", "max_delta")
    if max_delta < 0:
        raise InvalidArgumentError(f"optim.clip: `max_delta` must be >= 0, got {max_delta!r}")

    def init(params):
        return ClipState()

    def update(updates, state, params=None):
        return _map(lambda g: ops.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so that their global norm is at most ``max_norm``.

    >>> import numpy as np
    >>> clip_by_global_norm(1.0).update([np.array([3.0]), np.array([4.0])], EmptyState())[0]
    [array([0.6]), array([0.8])]
    """
    max_norm = _hyper(max_norm, "clip_by_global_norm", "max_norm")
    if max_norm < 0:
        raise InvalidArgumentError(f"optim.clip_by_global_norm: `max_norm` must be >= 0, "
                                   f"got {max_norm!r}")

    def init(params):
        return ClipByGlobalNormState()

    def clipped(t, g_norm):
        return ops.multiply(ops.divide(t, g_norm), max_norm)

    def update(updates, state, params=None):
        g_norm = tree_util.global_norm(updates)
        if isinstance(g_norm, (np.ndarray, np.generic)):  # a host value: skip the work
            if float(g_norm) < max_norm:
                return updates, state
            return _map(lambda t: clipped(t, g_norm), updates), state
        # staged, traced or on the GPU: decide on the device, as Optax does, with no host read
        keep = ops.less(g_norm, max_norm)
        return _map(lambda t: ops.where(keep, t, clipped(t, g_norm)), updates), state

    return GradientTransformation(init, update)


def _rms(x):
    return ops.sqrt(ops.mean(ops.multiply(x, x)))


def clip_by_block_rms(threshold: float) -> GradientTransformation:
    """Divide each leaf by ``max(1, rms(leaf) / threshold)`` (Adafactor's update clipping).

    >>> import numpy as np
    >>> clip_by_block_rms(1.0).update(np.array([2.0, -2.0]), EmptyState())[0]
    array([ 1., -1.])
    """
    threshold = _hyper(threshold, "clip_by_block_rms", "threshold")

    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        def leaf(u):
            denom = ops.maximum(ops.divide(_rms(u), threshold), 1.0)
            return ops.astype(ops.divide(u, denom), dtype=u.dtype)

        return _map(leaf, updates), state

    return GradientTransformation(init, update)


# Per-leaf rescalings that read the parameters -------------------------------------------------


def _safe_norm(x, min_norm):
    norm = ops.sqrt(ops.sum(ops.multiply(x, x)))
    return ops.where(ops.less_equal(norm, min_norm), ops.full_like(norm, min_norm), norm)


def scale_by_trust_ratio(min_norm: float = 0.0, trust_coefficient: float = 1.0,
                         eps: float = 0.0) -> GradientTransformation:
    """LARS/LAMB's layer-wise trust ratio: each leaf's update times
    ``trust_coefficient * ||param|| / (||update|| + eps)`` (1 when either norm is 0).

    >>> import numpy as np
    >>> opt = scale_by_trust_ratio()
    >>> opt.update(np.array([0.0, 2.0]), opt.init(None), np.array([3.0, 4.0]))[0]
    array([0., 5.])
    """
    min_norm = _hyper(min_norm, "scale_by_trust_ratio", "min_norm")
    trust_coefficient = _hyper(trust_coefficient, "scale_by_trust_ratio", "trust_coefficient")
    eps = _hyper(eps, "scale_by_trust_ratio", "eps")

    def init(params):
        return ScaleByTrustRatioState()

    def update(updates, state, params=None):
        _check_params("scale_by_trust_ratio", updates, params)

        def leaf(u, p):
            p_norm = _safe_norm(p, min_norm)
            u_norm = _safe_norm(u, min_norm)
            zero = ops.logical_or(ops.equal(p_norm, 0.0), ops.equal(u_norm, 0.0))
            denom = ops.add(u_norm, eps)
            denom = ops.where(ops.equal(denom, 0.0), ops.ones_like(denom), denom)
            ratio = ops.divide(ops.multiply(p_norm, trust_coefficient), denom)
            safe = ops.where(zero, ops.ones_like(ratio), ratio)
            return ops.multiply(u, ops.astype(safe, dtype=u.dtype))

        return _map(leaf, updates, params), state

    return GradientTransformation(init, update)


def scale_by_param_block_rms(min_scale: float = 1e-3) -> GradientTransformation:
    """Each leaf's update times ``max(rms(param), min_scale)`` (Adafactor's relative step).

    >>> import numpy as np
    >>> opt = scale_by_param_block_rms()
    >>> opt.update(np.array([1.0, 1.0]), opt.init(None), np.array([3.0, -3.0]))[0]
    array([3., 3.])
    """
    min_scale = _hyper(min_scale, "scale_by_param_block_rms", "min_scale")

    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        _check_params("scale_by_param_block_rms", updates, params)
        return _map(lambda u, p: ops.multiply(u, ops.astype(ops.maximum(_rms(p), min_scale),
                                                              dtype=u.dtype)),
                    updates, params), state

    return GradientTransformation(init, update)


def scale_by_param_block_norm(min_scale: float = 1e-3) -> GradientTransformation:
    """Each leaf's update times ``max(||param||, min_scale)``.

    >>> import numpy as np
    >>> opt = scale_by_param_block_norm()
    >>> opt.update(np.array([1.0, 1.0]), opt.init(None), np.array([3.0, 4.0]))[0]
    array([5., 5.])
    """
    min_scale = _hyper(min_scale, "scale_by_param_block_norm", "min_scale")

    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        _check_params("scale_by_param_block_norm", updates, params)
        return _map(lambda u, p: ops.multiply(
            u, ops.astype(ops.maximum(ops.sqrt(ops.sum(ops.multiply(p, p))), min_scale),
                          dtype=u.dtype)), updates, params), state

    return GradientTransformation(init, update)


# Miscellaneous --------------------------------------------------------------------------------


def centralize() -> GradientTransformation:
    """Gradient centralization: subtract from each leaf of rank >= 2 its mean over all axes
    but the first.

    >>> import numpy as np
    >>> centralize().update(np.array([[1.0, 3.0], [0.0, 2.0]]), EmptyState())[0]
    array([[-1.,  1.],
           [-1.,  1.]])
    """
    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        def leaf(g):
            if len(g.shape) < 2:
                return g
            return ops.subtract(g, ops.mean(g, axis=tuple(range(1, len(g.shape))),
                                            keepdims=True))

        return _map(leaf, updates), state

    return GradientTransformation(init, update)


def keep_params_nonnegative() -> GradientTransformation:
    """Shrink updates that would make a parameter negative so that it lands on 0 instead.

    >>> import numpy as np
    >>> opt = keep_params_nonnegative()
    >>> opt.update(np.array([-3.0, 1.0]), opt.init(None), np.array([1.0, 1.0]))[0]
    array([-1.,  1.])
    """
    def init(params):
        return EmptyState()

    def update(updates, state, params=None):
        _check_params("keep_params_nonnegative", updates, params)
        return _map(lambda u, p: ops.where(ops.less(ops.add(p, u), 0.0), ops.negative(p), u),
                    updates, params), state

    return GradientTransformation(init, update)


def zero_nans() -> GradientTransformation:
    """Replace NaNs in the updates by 0; the state records, per leaf, whether a NaN was seen.

    >>> import numpy as np
    >>> opt = zero_nans()
    >>> u, s = opt.update(np.array([np.nan, 1.0]), opt.init(np.zeros(2)))
    >>> u, bool(s.found_nan)
    (array([0., 1.]), True)
    """
    def init(params):
        return ZeroNansState(_map(lambda p: np.asarray(False), params))

    def update(updates, state, params=None):
        found = _map(lambda g: array_module(g).asarray(array_module(g).isnan(g).any()),
                     updates)
        out = _map(lambda g: ops.where(ops.isnan(g), ops.zeros_like(g), g), updates)
        return out, ZeroNansState(found)

    return GradientTransformation(init, update)

