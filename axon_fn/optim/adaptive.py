"""Adaptive (moment-based) gradient transformations: Adam and its relatives, RMS, Adagrad.

The formulas, defaults and state names follow Optax exactly. Step counts are ``int32`` 0-d
numpy arrays that start at 0; the first update sees ``count + 1 == 1`` in bias corrections.
A count moved to the GPU (``device_put`` of the state) stays there: the increment, the bias
corrections and schedules are then computed on the device, so no step reads it on the host.

>>> import numpy as np
>>> opt = scale_by_adam()
>>> params = {"w": np.zeros(2, np.float32)}
>>> updates, state = opt.update({"w": np.array([0.5, -2.0], np.float32)}, opt.init(params))
>>> np.round(updates["w"], 6), int(state.count)
(array([ 1., -1.], dtype=float32), 1)
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import ops
from .. import tree as tree_util
from .._checks import is_real_scalar as _is_concrete_scalar
from .._core import stageable
from ..backend import array_module, is_gpu_array
from ..errors import InvalidArgumentError, ShapeError
from ..typing import ArrayLike, DTypeLike
from ._fused import adam_moments_and_update
from .base import GradientTransformation

__all__ = [
    "ScaleByAdamState", "ScaleByAmsgradState", "ScaleByRmsState", "ScaleByRStdDevState",
    "ScaleByRssState", "ScaleByBeliefState", "ScaleByLionState", "FactoredState",
    "scale_by_adam", "scale_by_amsgrad", "scale_by_adamax", "scale_by_rms", "scale_by_stddev",
    "scale_by_rss", "scale_by_belief", "scale_by_radam", "scale_by_yogi", "scale_by_lion",
    "scale_by_factored_rms",
]

_INT32_MAX = np.iinfo(np.int32).max


# Shared helpers (also used by transforms.py, combinators.py and aliases.py) -------------------


def _zero_count():
    return np.zeros([], np.int32)


@stageable
def _increment(count):
    """``count + 1`` as an int32 0-d array, saturating at the int32 maximum (Optax's
    ``safe_increment``)."""
    if is_gpu_array(count):
        return count + (count < _INT32_MAX).astype(np.int32)
    c = int(count)
    return np.asarray(c + 1 if c < _INT32_MAX else c, np.int32)


# hyperparameters that are magnitudes: a negative one is a typo that would train silently wrong
_NON_NEGATIVE = frozenset({"eps", "eps_root", "epsilon", "max_norm", "max_delta", "min_norm",
                           "min_scale", "initial_accumulator_value", "initial_scale", "threshold",
                           "trust_coefficient", "eta", "gamma", "min_dim_size_to_factor"})


def _hyper(value, where, name, *, allow_nan=False):
    """A hyperparameter as a Python float (weakly typed: float32 leaves stay float32); NaN is
    refused, and so is a negative value for the magnitudes in ``_NON_NEGATIVE``."""
    if not _is_concrete_scalar(value):
        raise InvalidArgumentError(f"optim.{where}: `{name}` must be a real number, got "
                                   f"{value!r}")
    v = float(value)
    if (math.isnan(v) and not allow_nan) or (name in _NON_NEGATIVE and not v >= 0):
        raise InvalidArgumentError(f"optim.{where}: `{name}` must be a number >= 0, got "
                                   f"{value!r}" if name in _NON_NEGATIVE else
                                   f"optim.{where}: `{name}` must be a real number, not NaN")
    return v


def _decay(value, where, name, *, allow_one=False):
    """A decay rate, checked to lie in [0, 1) (or [0, 1] with ``allow_one``)."""
    v = _hyper(value, where, name, allow_nan=True)  # NaN gets the decay-rate message below
    if not (0.0 <= v < 1.0 or (allow_one and v == 1.0)) or math.isnan(v):
        upper = "1]" if allow_one else "1)"
        raise InvalidArgumentError(f"optim.{where}: `{name}` is a decay rate and must lie in "
                                   f"[0, {upper}, got {value!r}")
    return v


def _schedule_name(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


@stageable
def _evaluate(schedule, count, where):
    """``schedule(count)`` checked to be a real scalar, as a numpy float64, or a float64 0-d
    GPU array for a GPU count (one recorded step inside ``axon_fn.jit``)."""
    value = schedule(count)
    if not _is_concrete_scalar(value):
        raise InvalidArgumentError(
            f"optim.{where}: the schedule {_schedule_name(schedule)} returned {value!r} "
            f"(type {type(value).__name__}) for count {int(count)}; a schedule must return a "
            "real number")
    if is_gpu_array(count):
        return array_module(count).asarray(value, dtype=np.float64)
    return np.float64(value)


def _map(fn, tree, *rest):
    """Leafwise map over trees of the same structure (``None`` subtrees are skipped)."""
    return optree.tree_map(fn, tree, *rest)


def _first_path_difference(a, b):
    paths_a = [p for p, _ in tree_util.leaves_with_path(a)]
    paths_b = [p for p, _ in tree_util.leaves_with_path(b)]
    for pa, pb in zip(paths_a, paths_b):
        if pa != pb:
            return pa, pb
    if len(paths_a) != len(paths_b):
        n = min(len(paths_a), len(paths_b))
        return (paths_a[n] if n < len(paths_a) else "<nothing>",
                paths_b[n] if n < len(paths_b) else "<nothing>")
    return "<root>", "<root>"


def _check_params(where, updates, params, *, name="params"):
    """Raise unless ``params`` is given and has the structure of ``updates``."""
    if params is None:
        raise InvalidArgumentError(f"optim.{where}: this transformation needs the parameters; "
                                   f"call update(updates, state, params)")
    spec_u, spec_p = optree.tree_structure(updates), optree.tree_structure(params)
    if spec_u != spec_p:
        pu, pp = _first_path_difference(updates, params)
        raise ShapeError(f"optim.{where}: `updates` and `{name}` have different structures; "
                         f"they first differ at leaf path '{pu}' in updates vs '{pp}' in "
                         f"{name} (updates: {spec_u}, {name}: {spec_p})")


def _moment(updates, moments, decay, order):
    """``(1 - decay) * g**order + decay * m`` leafwise (Optax's update_moment)."""
    def leaf(g, m):
        gp = g if order == 1 else ops.multiply(g, g)
        return ops.add(ops.multiply(gp, 1.0 - decay), ops.multiply(m, decay))

    return _map(leaf, updates, moments)


def _bias_correction(moments, decay, count):
    return _map(lambda m: ops.divide(m, _correction(count, decay=decay, dtype=m.dtype)), moments)


@stageable
def _correction(count, *, decay, dtype):
    """``1 - decay ** count`` as a scalar of the moment's dtype (it divides as a weak Python
    float would): a numpy scalar, which cupy moments accept too, or for a GPU count a 0-d
    GPU array."""
    if is_gpu_array(count):
        return (1.0 - decay ** count.astype(np.float64)).astype(dtype)
    return np.dtype(dtype).type(1.0 - decay ** int(count))


def _zeros(params, dtype=None):
    if dtype is None:
        return tree_util.zeros_like(params)
    return _map(lambda p: ops.zeros_like(p, dtype=np.dtype(dtype)), params)


def _full(params, value):
    return _map(lambda p: ops.full_like(p, value), params)


def _nesterov_mu_hat(updates, mu, b1, count):
    mu_next = _bias_correction(mu, b1, _increment(count))
    g_hat = _bias_correction(updates, b1, count)
    return _map(lambda m, g: ops.add(ops.multiply(m, b1), ops.multiply(g, 1.0 - b1)),
                mu_next, g_hat)


def _cast_tree(tree, dtype):
    if dtype is None:
        return tree
    return _map(lambda x: ops.astype(x, dtype=np.dtype(dtype)), tree)


def _backend(x):
    return array_module(x)


# States ---------------------------------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam` (also adamax, radam, yogi)."""

    count: Any
    mu: Any
    nu: Any


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`."""

    count: Any
    mu: Any
    nu: Any
    nu_max: Any


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`."""

    nu: Any


class ScaleByRStdDevState(NamedTuple):
    """State of :func:`scale_by_stddev`."""

    mu: Any
    nu: Any


class ScaleByRssState(NamedTuple):
    """State of :func:`scale_by_rss`."""

    sum_of_squares: Any


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`."""

    count: Any
    mu: Any
    nu: Any


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`."""

    count: Any
    mu: Any


class FactoredState(NamedTuple):
    """State of :func:`scale_by_factored_rms`."""

    count: Any
    v_row: Any
    v_col: Any
    v: Any


# Adam family ----------------------------------------------------------------------------------


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  mu_dtype: DTypeLike | None = None, *,
                  nesterov: bool = False) -> GradientTransformation:
    """Rescale updates by Adam's bias-corrected moments: ``m_hat / (sqrt(v_hat + eps_root) +
    eps)``; with ``nesterov`` the first moment is NAdam's look-ahead.

    >>> import numpy as np
    >>> opt = scale_by_adam()
    >>> u, s = opt.update(np.array([3.0]), opt.init(np.zeros(1)))
    >>> np.round(u, 6), type(s).__name__
    (array([1.]), 'ScaleByAdamState')
    """
    b1, b2 = _decay(b1, "scale_by_adam", "b1"), _decay(b2, "scale_by_adam", "b2")
    eps, eps_root = _hyper(eps, "scale_by_adam", "eps"), _hyper(eps_root, "scale_by_adam",
                                                               "eps_root")

    def init(params):
        return ScaleByAdamState(_zero_count(), _zeros(params, mu_dtype), _zeros(params))

    def update(updates, state, params=None):
        count = _increment(state.count)
        if not nesterov and mu_dtype is None:
            fused = adam_moments_and_update(updates, state.mu, state.nu, b1, b2, eps, eps_root,
                                            count)
            if fused is not None:
                mu, nu, out = fused
                return out, ScaleByAdamState(count, mu, nu)
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment(updates, state.nu, b2, 2)
        mu_hat = (_nesterov_mu_hat(updates, mu, b1, count) if nesterov
                  else _bias_correction(mu, b1, count))
        nu_hat = _bias_correction(nu, b2, count)
        out = _map(lambda m, v: ops.divide(m, ops.add(ops.sqrt(ops.add(v, eps_root)), eps)),
                   mu_hat, nu_hat)
        out = _map(lambda o, g: ops.astype(o, dtype=g.dtype), out, updates)
        return out, ScaleByAdamState(count, _cast_tree(mu, mu_dtype), nu)

    return GradientTransformation(init, update)


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                     mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    """AMSGrad: Adam with the running maximum of the bias-corrected second moment.

    >>> import numpy as np
    >>> opt = scale_by_amsgrad()
    >>> u, s = opt.update(np.array([2.0]), opt.init(np.zeros(1)))
    >>> np.round(u, 6), s.nu_max
    (array([1.]), array([4.]))
    """
    b1, b2 = _decay(b1, "scale_by_amsgrad", "b1"), _decay(b2, "scale_by_amsgrad", "b2")
    eps, eps_root = _hyper(eps, "scale_by_amsgrad", "eps"), _hyper(eps_root, "scale_by_amsgrad",
                                                                  "eps_root")

    def init(params):
        return ScaleByAmsgradState(_zero_count(), _zeros(params, mu_dtype), _zeros(params),
                                   _zeros(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment(updates, state.nu, b2, 2)
        count = _increment(state.count)
        mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        nu_max = _map(ops.maximum, state.nu_max, nu_hat)
        out = _map(lambda m, v: ops.divide(m, ops.add(ops.sqrt(ops.add(v, eps_root)), eps)),
                   mu_hat, nu_max)
        return out, ScaleByAmsgradState(count, _cast_tree(mu, mu_dtype), nu, nu_max)

    return GradientTransformation(init, update)


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8) -> GradientTransformation:
    """Adamax: the first moment divided by the infinity norm ``max(b2 * u, |g| + eps)``.

    >>> import numpy as np
    >>> opt = scale_by_adamax()
    >>> u, s = opt.update(np.array([-2.0]), opt.init(np.zeros(1)))
    >>> np.round(u, 6)
    array([-1.])
    """
    b1, b2 = _decay(b1, "scale_by_adamax", "b1"), _decay(b2, "scale_by_adamax", "b2")
    eps = _hyper(eps, "scale_by_adamax", "eps")

    def init(params):
        return ScaleByAdamState(_zero_count(), _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        count = _increment(state.count)
        mu = _moment(updates, state.mu, b1, 1)
        nu = _map(lambda g, v: ops.maximum(ops.add(ops.abs(g), eps), ops.multiply(v, b2)),
                  updates, state.nu)
        mu_hat = _bias_correction(mu, b1, count)
        return _map(ops.divide, mu_hat, nu), ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                   threshold: float = 5.0, *, nesterov: bool = False) -> GradientTransformation:
    """Rectified Adam: the bias-corrected first moment alone while the variance estimate is
    unreliable (``rho_t < threshold``), then Adam rescaled by the rectification term ``r_t``.

    >>> import numpy as np
    >>> opt = scale_by_radam()
    >>> opt.update(np.array([3.0]), opt.init(np.zeros(1)))[0]  # step 1: momentum only
    array([3.])
    """
    b1, b2 = _decay(b1, "scale_by_radam", "b1"), _decay(b2, "scale_by_radam", "b2")
    eps, eps_root = _hyper(eps, "scale_by_radam", "eps"), _hyper(eps_root, "scale_by_radam",
                                                                "eps_root")
    threshold = _hyper(threshold, "scale_by_radam", "threshold")
    ro_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        return ScaleByAdamState(_zero_count(), _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment(updates, state.nu, b2, 2)
        count = _increment(state.count)
        rectify, r = _rectification(count, b2=b2, ro_inf=ro_inf, threshold=threshold)
        mu_hat = (_nesterov_mu_hat(updates, mu, b1, count) if nesterov
                  else _bias_correction(mu, b1, count))
        nu_hat = _bias_correction(nu, b2, count)
        # both updates, selected by value (as Optax does): no step count read on the host
        with np.errstate(invalid="ignore", divide="ignore"):  # eps=0: 0/0 where not selected
            rectified = _map(lambda m, v: ops.divide(
                tree_util.scale(m, r), ops.add(ops.sqrt(ops.add(v, eps_root)), eps)),
                mu_hat, nu_hat)
        out = _map(lambda a, m: ops.where(rectify, a, m), rectified, mu_hat)
        return out, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


@stageable
def _rectification(count, *, b2, ro_inf, threshold):
    """RAdam's ``(rho_t >= threshold, r_t)`` for step ``count`` (``r_t`` is 0 while the
    variance is not rectified), as numpy scalars or, for a GPU count, 0-d GPU arrays."""
    if is_gpu_array(count):
        xp = array_module(count)
        t = count.astype(np.float64)
        b2t = b2 ** t
        ro = ro_inf - 2.0 * t * b2t / (1.0 - b2t)
        rectify = ro >= threshold
        r2 = (ro - 4.0) * (ro - 2.0) * ro_inf / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro)
        return rectify, xp.sqrt(xp.where(rectify, r2, 0.0))
    t = int(count)
    b2t = b2 ** t
    ro = ro_inf - 2.0 * t * b2t / (1.0 - b2t)
    if ro < threshold:
        return np.bool_(False), np.float64(0.0)
    return np.bool_(True), np.float64(math.sqrt((ro - 4.0) * (ro - 2.0) * ro_inf
                                                / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro)))


def scale_by_yogi(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3, eps_root: float = 0.0,
                  initial_accumulator_value: float = 1e-6) -> GradientTransformation:
    """Yogi: Adam whose second moment moves additively, ``v - (1 - b2) sign(v - g^2) g^2``.

    >>> import numpy as np
    >>> opt = scale_by_yogi()
    >>> opt.init(np.zeros(2)).nu
    array([1.e-06, 1.e-06])
    """
    b1, b2 = _decay(b1, "scale_by_yogi", "b1"), _decay(b2, "scale_by_yogi", "b2")
    eps, eps_root = _hyper(eps, "scale_by_yogi", "eps"), _hyper(eps_root, "scale_by_yogi",
                                                               "eps_root")
    init_value = _hyper(initial_accumulator_value, "scale_by_yogi", "initial_accumulator_value")

    def init(params):
        return ScaleByAdamState(_zero_count(), _full(params, init_value),
                                _full(params, init_value))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)

        def nu_leaf(g, v):
            g2 = ops.multiply(g, g)
            return ops.subtract(v, ops.multiply(ops.multiply(ops.sign(ops.subtract(v, g2)), g2),
                                                1.0 - b2))

        nu = _map(nu_leaf, updates, state.nu)
        count = _increment(state.count)
        mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        out = _map(lambda m, v: ops.divide(m, ops.add(ops.sqrt(ops.add(v, eps_root)), eps)),
                   mu_hat, nu_hat)
        return out, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16, eps_root: float = 1e-16,
                    *, nesterov: bool = False) -> GradientTransformation:
    """AdaBelief: Adam whose second moment tracks ``(g - m)^2``, the "belief" in the gradient,
    with ``m`` the first moment *after* this step's update (as in the paper and Optax);
    ``eps_root`` is added to that moment before bias correction; with ``nesterov`` the first
    moment is NAdam's look-ahead.

    >>> import numpy as np
    >>> opt = scale_by_belief()  # step 1: m = 0.2, (g - m)^2 = 1.8^2, so 2 / 1.8
    >>> np.round(opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0], 6)
    array([1.111111])
    """
    b1, b2 = _decay(b1, "scale_by_belief", "b1"), _decay(b2, "scale_by_belief", "b2")
    eps, eps_root = _hyper(eps, "scale_by_belief", "eps"), _hyper(eps_root, "scale_by_belief",
                                                                 "eps_root")

    def init(params):
        return ScaleByBeliefState(_zero_count(), _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        error = _map(ops.subtract, updates, mu)
        nu = _moment(error, state.nu, b2, 2)
        nu = _map(lambda v: ops.add(v, eps_root), nu)
        count = _increment(state.count)
        mu_hat = (_nesterov_mu_hat(updates, mu, b1, count) if nesterov
                  else _bias_correction(mu, b1, count))
        nu_hat = _bias_correction(nu, b2, count)
        out = _map(lambda m, v: ops.divide(m, ops.add(ops.sqrt(v), eps)), mu_hat, nu_hat)
        return out, ScaleByBeliefState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_lion(b1: float = 0.9, b2: float = 0.99,
                  mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    """Lion: ``sign((1 - b1) g + b1 m)``, then ``m <- (1 - b2) g + b2 m``.

    >>> import numpy as np
    >>> opt = scale_by_lion()
    >>> opt.update(np.array([0.3, -2.0]), opt.init(np.zeros(2)))[0]
    array([ 1., -1.])
    """
    b1, b2 = _decay(b1, "scale_by_lion", "b1"), _decay(b2, "scale_by_lion", "b2")

    def init(params):
        return ScaleByLionState(_zero_count(), _zeros(params, mu_dtype))

    def update(updates, state, params=None):
        out = _map(lambda g, m: ops.sign(ops.add(ops.multiply(g, 1.0 - b1), ops.multiply(m, b1))),
                   updates, state.mu)
        mu = _moment(updates, state.mu, b2, 1)
        return out, ScaleByLionState(_increment(state.count), _cast_tree(mu, mu_dtype))

    return GradientTransformation(init, update)


# RMS family -----------------------------------------------------------------------------------


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True) -> GradientTransformation:
    """RMSProp's scaling: ``g / sqrt(v + eps)`` (or ``g / (sqrt(v) + eps)`` without
    ``eps_in_sqrt``), where ``v`` is an EMA of ``g^2`` starting at ``initial_scale``.

    >>> import numpy as np
    >>> opt = scale_by_rms(decay=0.75, eps=0.0)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([2.])
    """
    decay = _decay(decay, "scale_by_rms", "decay")
    eps = _hyper(eps, "scale_by_rms", "eps")
    initial_scale = _hyper(initial_scale, "scale_by_rms", "initial_scale")

    def init(params):
        return ScaleByRmsState(_full(params, initial_scale))

    def update(updates, state, params=None):
        nu = _moment(updates, state.nu, decay, 2)
        if eps_in_sqrt:
            out = _map(lambda g, v: ops.multiply(g, ops.rsqrt(ops.add(v, eps))), updates, nu)
        else:
            out = _map(lambda g, v: ops.divide(g, ops.add(ops.sqrt(v), eps)), updates, nu)
        return out, ScaleByRmsState(nu)

    return GradientTransformation(init, update)


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True) -> GradientTransformation:
    """Centered RMSProp's scaling: ``g / sqrt(v - m^2 + eps)`` with EMAs ``m`` of ``g`` and
    ``v`` of ``g^2``.

    >>> import numpy as np
    >>> opt = scale_by_stddev(decay=0.5, eps=0.0)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([2.])
    """
    decay = _decay(decay, "scale_by_stddev", "decay")
    eps = _hyper(eps, "scale_by_stddev", "eps")
    initial_scale = _hyper(initial_scale, "scale_by_stddev", "initial_scale")

    def init(params):
        return ScaleByRStdDevState(_zeros(params), _full(params, initial_scale))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, decay, 1)
        nu = _moment(updates, state.nu, decay, 2)
        if eps_in_sqrt:
            out = _map(lambda g, m, v: ops.multiply(
                g, ops.rsqrt(ops.add(ops.subtract(v, ops.multiply(m, m)), eps))), updates, mu, nu)
        else:
            out = _map(lambda g, m, v: ops.divide(
                g, ops.add(ops.sqrt(ops.subtract(v, ops.multiply(m, m))), eps)), updates, mu, nu)
        return out, ScaleByRStdDevState(mu, nu)

    return GradientTransformation(init, update)


def scale_by_rss(initial_accumulator_value: float = 0.1,
                 eps: float = 1e-7) -> GradientTransformation:
    """Adagrad's scaling: ``g / sqrt(sum of g^2 + eps)``, the sum starting at
    ``initial_accumulator_value`` (0 where the sum is 0).

    >>> import numpy as np
    >>> opt = scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
    >>> opt.update(np.array([3.0, 0.0]), opt.init(np.zeros(2)))[0]
    array([1., 0.])
    """
    init_value = _hyper(initial_accumulator_value, "scale_by_rss", "initial_accumulator_value")
    eps = _hyper(eps, "scale_by_rss", "eps")

    def init(params):
        return ScaleByRssState(_full(params, init_value))

    def update(updates, state, params=None):
        sos = _map(lambda g, s: ops.add(ops.multiply(g, g), s), updates, state.sum_of_squares)

        def leaf(g, s):
            positive = ops.greater(s, 0)
            safe = ops.where(positive, ops.add(s, eps), ops.ones_like(s))
            inv = ops.where(positive, ops.rsqrt(safe), ops.zeros_like(s))
            return ops.multiply(inv, g)

        return _map(leaf, updates, sos), ScaleByRssState(sos)

    return GradientTransformation(init, update)


# Adafactor ------------------------------------------------------------------------------------


def _decay_rate_pow(i, exponent=0.8):
    """``1 - (i + 1) ** -exponent``, with ``i + 1`` rounded to float32 as Optax does; ``i``
    a Python int or a 0-d GPU array."""
    if is_gpu_array(i):
        return 1.0 - (i + 1).astype(np.float32).astype(np.float64) ** (-exponent)
    t = float(np.float32(i + 1))
    return 1.0 - t ** (-exponent)


@stageable
def _factored_decay(decay_rate_fn, count, *, step_offset, decay_rate):
    """Adafactor's decay for step ``count``: a numpy float64, or for a GPU count the 0-d GPU
    array ``decay_rate_fn`` makes of it (one recorded step inside ``axon_fn.jit``)."""
    if is_gpu_array(count):
        return decay_rate_fn(count - step_offset, decay_rate)
    return np.float64(decay_rate_fn(int(count) - step_offset, decay_rate))


def _factored_dims(shape, factored, min_dim_size_to_factor):
    if not factored or len(shape) < 2:
        return None
    sorted_dims = np.argsort(shape, kind="stable")
    if shape[sorted_dims[-2]] < min_dim_size_to_factor:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def scale_by_factored_rms(
        factored: bool = True, decay_rate: float = 0.8, step_offset: int = 0,
        min_dim_size_to_factor: int = 128, epsilon: float = 1e-30,
        decay_rate_fn: Callable[..., ArrayLike] = _decay_rate_pow) -> GradientTransformation:
    """Adafactor's scaling: ``g / sqrt(v)`` where ``v`` is an EMA of ``g^2 + epsilon`` with
    decay ``1 - (t + 1)^-decay_rate``, stored as row and column means (factored) for leaves of
    rank >= 2 whose second-largest dimension is at least ``min_dim_size_to_factor``.

    >>> import numpy as np
    >>> opt = scale_by_factored_rms()
    >>> s = opt.init({"w": np.zeros((256, 128), np.float32), "b": np.zeros(3, np.float32)})
    >>> s.v_row["w"].shape, s.v_col["w"].shape, s.v["b"].shape
    ((128,), (256,), (3,))
    """
    decay_rate = _hyper(decay_rate, "scale_by_factored_rms", "decay_rate")
    epsilon = _hyper(epsilon, "scale_by_factored_rms", "epsilon")

    def placeholder(p):
        return _backend(p).zeros((1,), dtype=p.dtype)

    def init(params):
        def row(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            if dims is None:
                return placeholder(p)
            return _backend(p).zeros(tuple(np.delete(p.shape, dims[1])), dtype=p.dtype)

        def col(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            if dims is None:
                return placeholder(p)
            return _backend(p).zeros(tuple(np.delete(p.shape, dims[0])), dtype=p.dtype)

        def full(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            return placeholder(p) if dims is not None else ops.zeros_like(p)

        return FactoredState(_zero_count(), _map(row, params), _map(col, params),
                             _map(full, params))

    def update(updates, state, params=None):
        decay = _factored_decay(decay_rate_fn, state.count, step_offset=step_offset,
                                decay_rate=decay_rate)

        def leaf(g, v_row, v_col, v):
            dtype = g.dtype
            rate = tree_util.scalar_as(decay, dtype)
            rest = tree_util.scalar_as(1.0 - decay, dtype)
            dims = _factored_dims(g.shape, factored, min_dim_size_to_factor)
            g_sqr = ops.add(ops.multiply(g, g), epsilon)
            if dims is not None:
                d1, d0 = dims
                new_row = ops.add(ops.multiply(v_row, rate),
                                  ops.multiply(ops.mean(g_sqr, axis=d0), rest))
                new_col = ops.add(ops.multiply(v_col, rate),
                                  ops.multiply(ops.mean(g_sqr, axis=d1), rest))
                new_row = ops.astype(new_row, dtype=dtype)
                new_col = ops.astype(new_col, dtype=dtype)
                reduced_d1 = d1 - 1 if d1 > d0 else d1
                row_col_mean = ops.mean(new_row, axis=reduced_d1, keepdims=True)
                row_factor = ops.rsqrt(ops.divide(new_row, row_col_mean))
                col_factor = ops.rsqrt(new_col)
                out = ops.multiply(ops.multiply(g, ops.expand_dims(row_factor, axis=d0)),
                                   ops.expand_dims(col_factor, axis=d1))
                new_v = v
            else:
                new_v = ops.astype(ops.add(ops.multiply(v, rate), ops.multiply(g_sqr, rest)),
                                   dtype=dtype)
                out = ops.multiply(g, ops.rsqrt(new_v))
                new_row, new_col = v_row, v_col
            return (ops.astype(out, dtype=dtype), new_row, new_col, new_v)

        flat, spec = optree.tree_flatten(updates)
        rows, cols, vs = (optree.tree_leaves(t) for t in (state.v_row, state.v_col, state.v))
        packed = [leaf(*args) for args in zip(flat, rows, cols, vs)]
        parts = [optree.tree_unflatten(spec, [p[i] for p in packed]) for i in range(4)]
        return parts[0], FactoredState(_increment(state.count), parts[1], parts[2], parts[3])

    return GradientTransformation(init, update)
