"""Hyperparameters that live in the optimizer state: :func:`inject_hyperparams`, as in Optax.

``inject_hyperparams(factory)(**kwargs)`` builds ``factory(**kwargs)`` anew at every update
from values kept in the state, an :class:`InjectHyperparamsState`:

- a **numeric** argument (int, float, numpy array) is stored in ``state.hyperparams[name]`` as
  a 0-d array; whatever is there when ``update`` runs is what the inner transformation uses,
  so a training loop may change it between steps by giving ``update`` a state with a new
  dict (``state._replace(hyperparams={**state.hyperparams, "learning_rate": 1e-4})``);
- a **callable** argument is a schedule: each update evaluates it at ``state.count`` (the
  number of updates done before this one) and writes the value into ``state.hyperparams``, so
  the state always shows the value used by the last update (the value at count 0 after
  ``init``); writing a scheduled entry yourself has no effect, as in Optax;
- ``bool`` arguments, arguments named in ``static_args``, and anything else (strings,
  ``None``, masks...) are passed through unchanged. Callables that are not schedules (a mask
  function, say) must be named in ``static_args``.

Floating hyperparameters are cast to ``hyperparam_dtype`` or, by default, to the dtype of the
first parameter leaf (of the first update leaf during ``update``) when that dtype is floating.

**Multiplicative scales (an axon_fn addition).** A scheduled value cannot be changed from
outside, since the schedule overwrites it at every step; yet reduce-on-plateau style training
loops need to cut the learning rate *whatever* produces it. So the state has a fourth field,
``hyperparams_scale``: a dict holding one 0-d float array, initially 1.0, for every floating
hyperparameter (numeric or scheduled). The inner transformation receives
``hyperparams[name] * hyperparams_scale[name]``: the schedule (or the stored number) first,
then the scale. ``state.hyperparams`` keeps the *unscaled* values, so a stored number is never
multiplied twice, and with every scale at 1.0 the state reads exactly as Optax's;
:func:`effective_hyperparams` gives the values actually used. Changing a scale is a state
change like any other::

    state = state._replace(hyperparams_scale={
        **state.hyperparams_scale,
        "learning_rate": state.hyperparams_scale["learning_rate"] * 0.5})

The field comes last and defaults to ``None`` (meaning "all 1.0"), so Optax-style code that
builds or unpacks ``InjectHyperparamsState(count, hyperparams, inner_state)`` positionally
still works. The structure of the state (its keys, dtypes and shapes) never changes from one
update to the next.

>>> import numpy as np
>>> from axon_fn.optim import base
>>> sgd = inject_hyperparams(lambda learning_rate: base.scale(-learning_rate))
>>> opt = sgd(learning_rate=0.1)
>>> state = opt.init(np.zeros(2, np.float32))
>>> state.hyperparams
{'learning_rate': array(0.1, dtype=float32)}
>>> state = state._replace(hyperparams={"learning_rate": 0.5})
>>> opt.update(np.ones(2, np.float32), state)[0]
array([-0.5, -0.5], dtype=float32)
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .._dtypes import is_floating, is_real_floating
from ..errors import InvalidArgumentError
from ..typing import DTypeLike
from .base import GradientTransformation

__all__ = ["InjectHyperparamsState", "inject_hyperparams", "effective_hyperparams"]

_INT32_MAX = np.iinfo(np.int32).max


class InjectHyperparamsState(NamedTuple):
    """The state of an :func:`inject_hyperparams` transformation.

    ``count``: 0-d int32, the number of updates done. ``hyperparams``: name -> value (0-d
    arrays for floats), the unscaled values. ``inner_state``: the inner transformation's
    state. ``hyperparams_scale``: name -> 0-d float multiplier for each floating
    hyperparameter (``None`` means all 1.0).

    >>> state = InjectHyperparamsState(np.zeros([], np.int32), {"lr": np.array(0.1)}, ())
    >>> state.hyperparams_scale is None
    True
    """

    count: Any
    hyperparams: dict
    inner_state: Any
    hyperparams_scale: Any = None


def _is_floating(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return isinstance(x, float)
    return is_real_floating(np.dtype(dtype))


def _convert_floats(x, dtype):
    """Floating values to 0-d (or n-d) arrays of ``dtype``; anything else unchanged."""
    if _is_floating(x):
        return np.asarray(x, dtype=dtype)
    return x


def _leaf_dtype(tree):
    """The dtype of the first leaf of ``tree`` when it is floating, else None."""
    for leaf in optree.tree_leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and is_real_floating(np.dtype(dtype)):
            return np.dtype(dtype)
        return None
    return None


def _is_numeric(value):
    if isinstance(value, (int, float, np.ndarray, np.generic)):
        return True
    return type(value).__module__.split(".", 1)[0] == "cupy" and hasattr(value, "dtype")


def _scale_dtype(value):
    value = np.asarray(value)
    return value.dtype if is_real_floating(value.dtype) else np.float64


def _safe_increment(count):
    count = np.asarray(count, np.int32)
    return np.asarray(count + 1 if count < _INT32_MAX else count, np.int32)


def _scaled(hparams, scales, dtype, where):
    if not scales:
        return dict(hparams)
    out = dict(hparams)
    for name, factor in scales.items():
        if name not in hparams:
            raise InvalidArgumentError(
                f"{where}: `hyperparams_scale` has an entry {name!r} that is not a "
                f"hyperparameter; the hyperparameters are {sorted(hparams)}")
        value = np.asarray(hparams[name])
        product = value * np.asarray(factor)
        out[name] = _convert_floats(product, dtype if dtype is not None else product.dtype)
    return out


def effective_hyperparams(state: InjectHyperparamsState) -> dict[str, Any]:
    """The hyperparameters the last update used: ``state.hyperparams`` times
    ``state.hyperparams_scale`` (a new dict; the state is not changed).

    >>> state = InjectHyperparamsState(np.zeros([], np.int32),
    ...                                {"learning_rate": np.array(0.1)}, (),
    ...                                {"learning_rate": np.array(0.5)})
    >>> effective_hyperparams(state)
    {'learning_rate': array(0.05)}
    """
    return _scaled(state.hyperparams, state.hyperparams_scale, None, "effective_hyperparams")


def inject_hyperparams(
        inner_factory: Callable[..., GradientTransformation], static_args: str | Iterable[str] = (),
        hyperparam_dtype: DTypeLike | None = None) -> Callable[..., GradientTransformation]:
    """Wrap ``inner_factory`` so that its hyperparameters live in the optimizer state.

    Returns a factory taking the same arguments as ``inner_factory``, where any numeric
    argument may also be a schedule (``count -> value``); it builds a
    :class:`~axon_fn.optim.GradientTransformation` whose state is an
    :class:`InjectHyperparamsState`. See the module docstring for what is stored, how a
    training loop changes values between steps, and the ``hyperparams_scale`` multipliers.

    ``static_args`` (a name or an iterable of names) lists arguments passed through unchanged
    even when callable; they must be parameters of ``inner_factory``.
    ``hyperparam_dtype`` overrides the dtype floating hyperparameters are cast to.

    >>> from axon_fn.optim import base, schedules
    >>> factory = inject_hyperparams(lambda learning_rate: base.scale(-learning_rate))
    >>> opt = factory(learning_rate=schedules.linear_schedule(1.0, 0.0, transition_steps=4))
    >>> state = opt.init(np.zeros(1))
    >>> for _ in range(3):
    ...     updates, state = opt.update(np.ones(1), state)
    >>> updates, state.hyperparams["learning_rate"], int(state.count)
    (array([-0.5]), array(0.5), 3)
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static_args.issubset(signature.parameters):
        raise InvalidArgumentError(
            "inject_hyperparams: `static_args` must name parameters of `inner_factory`; got "
            f"{sorted(static_args)}, while its parameters are {list(signature.parameters)}")

    @functools.wraps(inner_factory)
    def wrapped_transform(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise InvalidArgumentError(
                        "inject_hyperparams: hyperparameters must be passed by name, not "
                        f"through `*{name}`")
            else:
                arguments[name] = value

        sched_hps, numeric_hps, other_hps = {}, {}, {}
        for name, value in arguments.items():
            if name in static_args or isinstance(value, bool):
                other_hps[name] = value
            elif callable(value):
                sched_hps[name] = value
            elif _is_numeric(value):
                numeric_hps[name] = value
            else:
                other_hps[name] = value

        def schedule_values(count, dtype):
            return {name: _convert_floats(fn(count), dtype) for name, fn in sched_hps.items()}

        def build(hparams, scales, dtype):
            return inner_factory(**other_hps, **_scaled(hparams, scales, dtype,
                                                        "inject_hyperparams"))

        def init(params):
            count = np.zeros([], np.int32)
            dtype = hyperparam_dtype if hyperparam_dtype is not None else _leaf_dtype(params)
            hparams = {name: np.asarray(_convert_floats(value, dtype))
                       for name, value in numeric_hps.items()}
            hparams.update(schedule_values(count, dtype))
            scales = {name: np.ones([], np.asarray(value).dtype)
                      for name, value in hparams.items() if _is_floating(np.asarray(value))}
            inner_state = build(hparams, scales, dtype).init(params)
            return InjectHyperparamsState(count, hparams, inner_state, scales)

        def update(updates, state, params=None):
            dtype = hyperparam_dtype if hyperparam_dtype is not None else _leaf_dtype(updates)
            hparams = {name: _convert_floats(value, dtype)
                       for name, value in state.hyperparams.items()}
            hparams.update(schedule_values(state.count, dtype))
            updates, inner_state = build(hparams, state.hyperparams_scale, dtype).update(
                updates, state.inner_state, params)
            scales = state.hyperparams_scale
            if scales is not None:  # keep each scale a 0-d array of its hyperparameter's dtype
                scales = {name: np.asarray(factor, dtype=_scale_dtype(hparams.get(name)))
                          for name, factor in scales.items()}
            return updates, InjectHyperparamsState(
                _safe_increment(state.count), hparams, inner_state, scales)

        return GradientTransformation(init, update)

    return wrapped_transform
