"""Optax-style schedules: pure functions from a step count to a hyperparameter value.

A schedule is any callable ``schedule(count) -> value``. Pass one wherever an optimizer takes a
learning rate (or wrap a factory with :func:`~axon_fn.optim.inject_hyperparams`) and it is
evaluated at every update with the number of updates done so far.

Names, signatures, defaults and formulas are Optax's. ``count`` may be a Python int, a 0-d
integer array, or an integer array of any shape (the schedule is then evaluated elementwise,
handy for plotting). A Python-scalar count gives a Python float; an array count gives a float
array of the count's shape on the count's device (a CuPy count is never read on the host).
:func:`constant_schedule` returns its value unchanged.

As in Optax, degenerate settings that Optax accepts silently still work: a non-positive
``transition_steps`` in :func:`polynomial_schedule`, :func:`linear_schedule` or
:func:`exponential_decay` (and a zero ``decay_rate``) gives a constant schedule at
``init_value``, and a negative ``transition_begin`` falls back to 0; each is reported with
``logging.info`` on the ``axon_fn.optim.schedules`` logger (not a warning, so that common
settings such as ``warmup_steps=0`` stay quiet). Where Optax raises, these raise
:class:`~axon_fn.errors.InvalidArgumentError` (a ``ValueError``).

>>> schedule = warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=6)
>>> [round(schedule(t), 3) for t in range(8)]
[0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import numbers
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .._dtypes import is_real_floating
from .._checks import is_real_scalar
from ..backend import array_module
from ..errors import AxonTypeError, InvalidArgumentError
from ..typing import Array, ArrayLike

__all__ = [
    "constant_schedule", "polynomial_schedule", "linear_schedule", "piecewise_constant_schedule",
    "exponential_decay", "cosine_decay_schedule", "piecewise_interpolate_schedule",
    "linear_onecycle_schedule", "cosine_onecycle_schedule", "warmup_constant_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "join_schedules",
    "sgdr_schedule",
]

Schedule = Callable[[ArrayLike], Array]
"""A schedule: the step count (an int or a 0-d array) to the value at that step."""

_log = logging.getLogger(__name__)


def _is_python_scalar(count):
    return isinstance(count, (int, float)) and not isinstance(count, np.generic)


def _result(count, value):
    """A Python float for a Python-scalar count, otherwise a floating array on the count's
    device."""
    value = array_module(count).asarray(value)
    if not is_real_floating(value.dtype):
        value = value.astype(np.float64)
    if _is_python_scalar(count) and value.ndim == 0:
        return float(value)
    return value


def _count_array(count):
    """The count as an array, so that arithmetic and comparisons broadcast. A GPU count stays
    on the GPU: the numpy functions below dispatch to CuPy for its arrays."""
    return array_module(count).asarray(count)


def constant_schedule(value: float) -> Schedule:
    """A schedule that always returns ``value`` (unchanged, whatever its type).

    >>> schedule = constant_schedule(5)
    >>> schedule(0), schedule(100)
    (5, 5)
    """
    return lambda count: value


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """From ``init_value`` to ``end_value`` along ``(1 - t / transition_steps) ** power``.

    The value is ``init_value`` until ``transition_begin``, then
    ``(init_value - end_value) * (1 - (count - transition_begin) / transition_steps) ** power
    + end_value``, and ``end_value`` from ``transition_begin + transition_steps`` on. A
    non-positive ``transition_steps`` gives the constant ``init_value``.

    >>> schedule = polynomial_schedule(1.0, 0.01, power=2, transition_steps=100,
    ...                                transition_begin=5)
    >>> [round(schedule(t), 4) for t in (0, 5, 6, 104, 105, 110)]
    [1.0, 1.0, 0.9803, 0.0101, 0.01, 0.01]
    """
    if transition_steps <= 0:
        _log.info("A polynomial schedule was set with a non-positive `transition_steps` value; "
                  "this results in a constant schedule with value `init_value`.")
        return lambda count: init_value
    if transition_begin < 0:
        _log.info("A polynomial schedule was set with a negative `transition_begin` value; "
                  "this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0

    def schedule(count):
        steps = np.clip(_count_array(count) - transition_begin, 0, transition_steps)
        frac = 1 - steps / transition_steps
        with np.errstate(all="ignore"):
            value = (init_value - end_value) * frac ** power + end_value
        return _result(count, value)

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear from ``init_value`` to ``end_value``: :func:`polynomial_schedule` with power 1.

    >>> schedule = linear_schedule(1.0, 0.0, transition_steps=4, transition_begin=2)
    >>> [schedule(t) for t in range(8)]
    [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps,
                               transition_begin=transition_begin)


def piecewise_constant_schedule(
        init_value: float, boundaries_and_scales: Mapping[int, float] | None = None) -> Schedule:
    """``init_value`` times the product of every scale whose boundary is ``<= count``.

    ``boundaries_and_scales`` maps a step to a non-negative factor; from that step on the value
    is multiplied by the factor.

    >>> schedule = piecewise_constant_schedule(1.0, {100: 0.1, 200: 0.01})
    >>> [schedule(t) for t in (50, 99, 100, 150, 250)]
    [1.0, 1.0, 0.1, 0.1, 0.001]
    """
    if boundaries_and_scales is not None:
        if not all(scale >= 0.0 for scale in boundaries_and_scales.values()):
            raise InvalidArgumentError(
                "piecewise_constant_schedule: `boundaries_and_scales` must hold non-negative "
                f"scale factors, got {boundaries_and_scales}")
        items = sorted(boundaries_and_scales.items())
    else:
        items = []

    def schedule(count):
        step = _count_array(count)
        value = init_value
        for threshold, scale in items:
            before = np.maximum(0.0, np.sign(threshold - step))  # 1 while count < threshold
            value = value * before + (1 - before) * scale * value
        return _result(count, value)

    return schedule


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """``init_value * decay_rate ** ((count - transition_begin) / transition_steps)``.

    The value is ``init_value`` up to ``transition_begin``. With ``staircase`` the exponent is
    floored, so the value drops every ``transition_steps`` steps. ``end_value`` bounds the
    result: from below when ``decay_rate < 1``, from above otherwise. A non-positive
    ``transition_steps`` or a zero ``decay_rate`` gives the constant ``init_value``.

    >>> schedule = exponential_decay(1.0, transition_steps=2, decay_rate=0.5)
    >>> [round(schedule(t), 4) for t in range(5)]
    [1.0, 0.7071, 0.5, 0.3536, 0.25]
    >>> stairs = exponential_decay(1.0, 2, 0.5, transition_begin=1, staircase=True,
    ...                            end_value=0.3)
    >>> [stairs(t) for t in range(7)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3]
    """
    if transition_steps <= 0:
        _log.info("An exponential schedule was set with a non-positive `transition_steps` "
                  "value; this will result in a constant schedule with value `init_value`.")
        return lambda count: init_value
    if decay_rate == 0:
        _log.info("An exponential schedule was set with a zero `decay_rate` value; this will "
                  "result in a constant schedule with value `init_value`.")
        return lambda count: init_value
    if transition_begin < 0:
        _log.info("An exponential schedule was set with a negative `transition_begin` value; "
                  "this will result in `transition_begin` falling back to `0`.")
        transition_begin = 0
    clip_fn = None
    if end_value is not None:
        clip_fn = np.maximum if decay_rate < 1.0 else np.minimum

    def schedule(count):
        decreased = _count_array(count) - transition_begin
        p = decreased / transition_steps
        if staircase:
            p = np.floor(p)
        with np.errstate(all="ignore"):
            value = np.where(decreased <= 0, init_value,
                             init_value * np.power(decay_rate, p))
        if clip_fn is not None:
            value = clip_fn(value, end_value)
        return _result(count, value)

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps`` steps.

    ``init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * t / decay_steps))) ** exponent + alpha)``
    with ``t = min(count, decay_steps)``. ``decay_steps`` must be positive.

    >>> schedule = cosine_decay_schedule(1.0, decay_steps=4, alpha=0.1)
    >>> [round(schedule(t), 4) for t in range(6)]
    [1.0, 0.8682, 0.55, 0.2318, 0.1, 0.1]
    """
    if not decay_steps > 0:
        raise InvalidArgumentError("cosine_decay_schedule: `decay_steps` must be positive, "
                                   f"got {decay_steps}")

    def schedule(count):
        t = np.minimum(_count_array(count), decay_steps)
        cosine = 0.5 * (1 + np.cos(np.pi * t / decay_steps))
        with np.errstate(all="ignore"):
            decayed = (1 - alpha) * cosine ** exponent + alpha
        return _result(count, init_value * decayed)

    return schedule


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)


def piecewise_interpolate_schedule(
        interpolate_type: str, init_value: float,
        boundaries_and_scales: Mapping[int, float] | None = None) -> Schedule:
    """Linear or cosine interpolation between values that change by a factor at boundaries.

    The values at the boundaries are ``init_value`` at step 0 and the running product of the
    scales at each boundary; between two boundaries the schedule interpolates (``"linear"`` or
    ``"cosine"``); after the last boundary it holds the last value. Scales must be
    non-negative.

    >>> schedule = piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    >>> [round(schedule(t), 6) for t in range(0, 11, 2)]
    [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]
    """
    if interpolate_type == "linear":
        interpolate_fn = _linear_interpolate
    elif interpolate_type == "cosine":
        interpolate_fn = _cosine_interpolate
    else:
        raise InvalidArgumentError("piecewise_interpolate_schedule: `interpolate_type` must be "
                                   f"either 'cosine' or 'linear', got {interpolate_type!r}")
    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
        if not all(scale >= 0.0 for scale in scales):
            raise InvalidArgumentError(
                "piecewise_interpolate_schedule: `boundaries_and_scales` must hold "
                f"non-negative scale factors, got {boundaries_and_scales}")
    else:
        boundaries, scales = (), ()
    bounds = [0, *boundaries]
    values = list(np.cumprod(np.asarray((init_value, *scales), dtype=np.float64)))

    def schedule(count):
        step = _count_array(count)
        out = (bounds[-1] <= step) * values[-1]
        for i in range(len(bounds) - 1):
            size = max(bounds[i + 1] - bounds[i], 1)
            inside = (bounds[i] <= step) & (step < bounds[i + 1])
            pct = (step - bounds[i]) / size
            out = out + inside * interpolate_fn(values[i], values[i + 1], pct)
        return _result(count, out)

    return schedule


def linear_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
    """Three linear phases: up from ``peak_value / div_factor`` to ``peak_value`` by
    ``pct_start * transition_steps``, back down by ``pct_final * transition_steps``, then down
    to ``peak_value / div_factor / final_div_factor`` at ``transition_steps``.

    >>> schedule = linear_onecycle_schedule(10, peak_value=1.0, div_factor=10.0,
    ...                                     final_div_factor=100.0)
    >>> [round(schedule(t), 4) for t in (0, 3, 8, 10)]
    [0.1, 1.0, 0.1, 0.001]
    """
    if transition_steps <= 0:
        raise InvalidArgumentError("linear_onecycle_schedule: `transition_steps` must be "
                                   f"positive, got {transition_steps}")
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4) -> Schedule:
    """Cosine up from ``peak_value / div_factor`` to ``peak_value`` by
    ``pct_start * transition_steps``, then cosine down to
    ``peak_value / div_factor / final_div_factor`` at ``transition_steps``.

    >>> schedule = cosine_onecycle_schedule(10, peak_value=1.0, div_factor=10.0,
    ...                                     final_div_factor=100.0)
    >>> [round(schedule(t), 4) for t in (0, 3, 10)]
    [0.1, 1.0, 0.001]
    """
    if transition_steps <= 0:
        raise InvalidArgumentError("cosine_onecycle_schedule: `transition_steps` must be "
                                   f"positive, got {transition_steps}")
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` (counted from that
    boundary, i.e. called with ``count - boundaries[0]``), and so on.

    >>> schedule = join_schedules([constant_schedule(1.0), linear_schedule(1.0, 0.0, 2)], [3])
    >>> [float(schedule(t)) for t in range(6)]
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise InvalidArgumentError("join_schedules: `schedules` must hold at least one schedule")
    if len(boundaries) != len(schedules) - 1:
        raise InvalidArgumentError(f"join_schedules: {len(schedules)} schedules need "
                                   f"{len(schedules) - 1} boundaries (one between each pair), "
                                   f"got {len(boundaries)}: {boundaries!r}")
    if not all(callable(f) for f in schedules):
        raise AxonTypeError("join_schedules: every element of `schedules` must be a schedule "
                            "(a function count -> value)")

    def schedule(count):
        step = _count_array(count)
        output = schedules[0](count)
        for boundary, next_schedule in zip(boundaries, schedules[1:]):
            output = np.where(step < boundary, output, next_schedule(count - boundary))
        return _result(count, output)

    return schedule


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    constant.

    >>> schedule = warmup_constant_schedule(0.0, 1.0, warmup_steps=2)
    >>> [schedule(t) for t in range(4)]
    [0.0, 0.5, 1.0, 1.0]
    """
    return linear_schedule(init_value=init_value, end_value=peak_value,
                           transition_steps=warmup_steps)


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    """Linear warmup to ``peak_value`` over ``warmup_steps``, then cosine decay to
    ``end_value``. ``decay_steps`` counts the warmup too: the cosine part lasts
    ``decay_steps - warmup_steps`` steps (which must be positive).

    >>> schedule = warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=4,
    ...                                         end_value=0.1)
    >>> [round(schedule(t), 4) for t in range(6)]
    [0.0, 0.5, 1.0, 0.55, 0.1, 0.1]
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                              alpha=alpha, exponent=exponent),
    ]
    return join_schedules(schedules, [warmup_steps])


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value: float | None = None) -> Schedule:
    """Linear warmup to ``peak_value`` over ``warmup_steps``, then :func:`exponential_decay`
    from ``peak_value`` (its count starting at the end of the warmup).

    >>> schedule = warmup_exponential_decay_schedule(0.0, 1.0, warmup_steps=2,
    ...                                              transition_steps=1, decay_rate=0.5)
    >>> [schedule(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                          decay_rate=decay_rate, transition_begin=transition_begin,
                          staircase=staircase, end_value=end_value),
    ]
    return join_schedules(schedules, [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    """SGD with warm restarts: one :func:`warmup_cosine_decay_schedule` per dict of keyword
    arguments in ``cosine_kwargs``, each lasting its ``decay_steps``, joined end to end.

    >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)
    >>> schedule = sgdr_schedule([cycle, cycle])
    >>> [round(schedule(t), 3) for t in range(7)]
    [0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0]
    """
    boundaries, schedules, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])



# Argument checks, applied to every factory below: a string or NaN hyperparameter, or a count
# that is no number, would otherwise surface as numpy's UFuncTypeError or a NaN learning rate.
_NOT_SCALARS = frozenset({"boundaries_and_scales", "interpolate_type", "staircase", "schedules",
                          "boundaries", "cosine_kwargs"})
_NON_NEGATIVE = frozenset({"decay_rate", "warmup_steps", "div_factor", "final_div_factor"})


def _check_argument(where, name, value):
    if name in _NOT_SCALARS or value is None:
        return
    if not is_real_scalar(value):
        raise AxonTypeError(f"optim.{where}: `{name}` must be a real number, got {value!r}")
    if math.isnan(float(value)) or (name in _NON_NEGATIVE and float(value) < 0):
        raise InvalidArgumentError(f"optim.{where}: `{name}` must be a real number"
                                   f"{' >= 0' if name in _NON_NEGATIVE else ' (not NaN)'}, got "
                                   f"{value!r}")


def _check_count(count, where):
    if type(count) is int:
        return
    dtype = getattr(count, "dtype", None)
    kind = np.dtype(dtype).kind if dtype is not None else (
        "i" if isinstance(count, numbers.Real) and not isinstance(count, bool) else "O")
    if kind not in "iuf":
        raise AxonTypeError(f"optim.{where}: a schedule's `count` must be a step count (an int "
                            f"or an integer array), got {count!r}")


def _checking(factory):
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            _check_argument(factory.__name__, name, value)
        schedule = factory(*args, **kwargs)

        def checked(count):
            _check_count(count, factory.__name__)
            return schedule(count)

        return checked

    return make


for _name in __all__:
    if _name != "constant_schedule":  # returns its value unchanged, whatever its type
        globals()[_name] = _checking(globals()[_name])
del _name
