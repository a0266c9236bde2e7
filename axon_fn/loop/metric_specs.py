"""How a Loop accumulates a metric over an epoch.

A metric sees what the loop's ``output_transform`` returns for each step (for a trainer,
``(y_true, y_pred)``): a tuple is spread into the metric's arguments. Ratios (accuracy,
top-k accuracy, precision, recall, f1, sensitivity, specificity) given by name accumulate
their counts (correct and total, or the confusion counts) and divide at the end, so an epoch's
accuracy is the accuracy over all its examples, not the mean of per-batch accuracies (they
differ when the last batch is smaller).

>>> import numpy as np
>>> spec = as_metric("precision")
>>> acc = spec.empty()
>>> acc = spec.update(acc, (np.array([1, 0]), np.array([0.9, 0.8])), 0)  # 1 tp, 1 fp
>>> acc = spec.update(acc, (np.array([1, 1, 1]), np.array([0.9, 0.9, 0.9])), 1)  # 3 tp
>>> spec.value(acc)
0.8

A step value on the GPU (a trainer's loss) is averaged there, and read on the host once an
epoch, so no step waits for the one before it to finish.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .. import metrics as _metrics
from .._checks import by_name
from ..backend import is_gpu_array
from ..errors import AxonTypeError, InvalidArgumentError

__all__ = ["MetricSpec", "as_metric", "host_metrics"]

_COUNTS = {"true_positives": "tp", "true_negatives": "tn", "false_positives": "fp",
           "false_negatives": "fn"}
_ACCUMULATORS = ("running_average", "running_sum")


def _number(name, value):
    if is_gpu_array(value) and value.size == 1:
        # averaged on the GPU: reading it every step would make each step wait for the last
        return value.reshape(()).astype(np.float64)
    try:
        value = float(np.asarray(value))
    except (TypeError, ValueError):
        raise AxonTypeError(f"metric {name!r}: each step must give a number, got "
                            f"{type(value).__name__}") from None
    return value


def host_metrics(metrics: Mapping[str, Any]) -> dict:
    """``metrics`` with the values a GPU step left on the device read as Python floats (the
    Loop does this once an epoch, for its history).

    >>> host_metrics({"loss": 0.5})
    {'loss': 0.5}
    """
    return {name: float(value) if is_gpu_array(value) else value
            for name, value in metrics.items()}


def _call(fn, seen):
    """A plain tuple is spread into the metric's arguments; anything else (a NamedTuple such
    as a ModelState included) is one argument."""
    return fn(*seen) if type(seen) is tuple else fn(seen)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A metric to track: ``fn`` gives a step's value, ``accumulate`` folds them; ``transform``
    (applied by the Loop to the step state) chooses the metric's inputs. ``evaluation`` is the
    spec to use instead when validating on ``(y_true, y_pred)`` (a trainer's ``loss`` reads
    the step's loss in training and recomputes it from predictions in validation)."""

    name: str
    fn: Any
    accumulate: Any = "running_average"
    transform: Any = None
    counts: Any = None  # for ratios: (counts of a step, value of the summed counts)
    evaluation: Any = None

    def empty(self) -> Any:
        return None

    def update(self, acc: Any, seen: Any, index: int) -> Any:
        """Fold one step's output into the accumulated value (``index``: the step in the epoch)."""
        if self.counts:
            counts = _call(self.counts[0], seen)
            return counts if acc is None else {k: acc[k] + counts[k] for k in acc}
        value = _number(self.name, _call(self.fn, seen))
        if self.accumulate == "running_average":
            return value if acc is None else acc + (value - acc) / (index + 1)
        if self.accumulate == "running_sum":
            return value if acc is None else acc + value
        return self.accumulate(acc, value, index)

    def value(self, acc: Any) -> Any:
        """The metric's value from the accumulated state."""
        if not self.counts:
            return acc
        return 0.0 if acc is None else self.counts[1](acc)


def as_metric(metric: Any, name: Optional[str] = None, accumulate: Any = None,
              transform: Optional[Callable] = None,
              options: Optional[Mapping[str, Any]] = None) -> MetricSpec:
    """A :class:`MetricSpec` from a name in :mod:`axon_fn.metrics`, a function or a spec
    (``name``, ``accumulate`` and ``transform``, when given, replace the spec's own).
    ``accumulate`` defaults to ``"running_average"``. ``options`` are keyword arguments of a
    metric given by name (``{"average": "macro", "sparse": True}`` for ``"f1"``).

    >>> as_metric("accuracy").name, as_metric(lambda y, p: 0.0, "zero").name
    ('accuracy', 'zero')
    >>> as_metric("f1", "macro_f1", options={"average": "macro"}).name
    'macro_f1'
    """
    if accumulate is not None and not (accumulate in _ACCUMULATORS or callable(accumulate)):
        raise InvalidArgumentError(f"Loop.metric: `accumulate` must be one of "
                                   f"{', '.join(_ACCUMULATORS)} or a function (acc, value, "
                                   f"index) -> acc; got {accumulate!r}")
    options = dict(options or {})
    if options and not isinstance(metric, str):
        raise InvalidArgumentError(f"Loop.metric: keyword options {sorted(options)} apply to a "
                                   f"metric given by name; for a function, bind them with "
                                   f"functools.partial")
    if isinstance(metric, MetricSpec):
        changes = {"name": name, "accumulate": accumulate, "transform": transform}
        if metric.counts and accumulate is not None:
            raise InvalidArgumentError(f"Loop.metric: {metric.name!r} accumulates counts over "
                                       f"the epoch; `accumulate` does not apply to it")
        return dataclasses.replace(metric, **{k: v for k, v in changes.items() if v is not None})
    counted = isinstance(metric, str) and (metric in _metrics.COUNTED or metric in _COUNTS)
    if counted and accumulate is not None:
        raise InvalidArgumentError(f"Loop.metric: {metric!r} accumulates counts over the epoch "
                                   f"(a ratio of the epoch's totals); `accumulate` does not "
                                   f"apply to it")
    accumulate = accumulate or "running_average"
    if isinstance(metric, str):
        if metric in _metrics.COUNTED:
            count, value = _metrics.COUNTED[metric]
            _check_options(metric, getattr(_metrics, metric), options)
            return MetricSpec(name or metric, None, "counts", transform,
                              (functools.partial(count, **options),
                               functools.partial(value, **options)))
        fn = by_name(_metrics, metric, "metric", "Loop.metric", "pass a function")
        _check_options(metric, fn, options)
        if metric in _COUNTS:
            key = _COUNTS[metric]
            return MetricSpec(name or metric, lambda y_true, y_pred: _metrics.confusion_counts(
                y_true, y_pred, **options)[key], "running_sum", transform)
        if options:
            fn = functools.partial(fn, **options)
        return MetricSpec(name or metric, fn, accumulate, transform)
    if callable(metric):
        label = name or getattr(metric, "__name__", None)
        if not label or label == "<lambda>":
            raise InvalidArgumentError("Loop.metric: a function metric needs name=...")
        return MetricSpec(label, metric, accumulate, transform)
    raise AxonTypeError(f"Loop.metric: `metric` must be a metric name, a function or a "
                        f"MetricSpec, got {metric!r}")


def _check_options(metric, fn, options):
    """Options must be keyword-only parameters of the metric function (checked now, not at
    the first batch)."""
    known = [p.name for p in inspect.signature(fn).parameters.values()
             if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidArgumentError(f"Loop.metric: {metric!r} takes the options "
                                   f"{known or 'none'}, got {unknown}")
    if "average" in options:
        _metrics._check_average(metric, options["average"])
