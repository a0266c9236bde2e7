"""The built-in handlers: methods of :class:`~axon_fn.loop.Loop` that return a new loop.

* :meth:`~HandlerMethods.log` writes a line (to stdout, a stream or a file) on an event;
* :meth:`~HandlerMethods.progress` shows a live progress bar with loss, metrics and ETA;
* :meth:`~HandlerMethods.validate` evaluates on validation data, adding ``validation_<metric>``;
* :meth:`~HandlerMethods.checkpoint` saves the loop state every N events or when a metric
  improves;
* :meth:`~HandlerMethods.monitor` calls a function when a metric stops improving, and
  :meth:`~HandlerMethods.early_stop` and :meth:`~HandlerMethods.reduce_lr_on_plateau` are the
  two usual uses of it;
* :meth:`~HandlerMethods.nan_guard` halts with a clear message when the loss is NaN or infinite.

Handlers run in the order they were added, so add ``validate`` before the handlers that read
``validation_*`` metrics on the same event. What a handler remembers between calls (the best
value so far, how long since it improved, the files it wrote) lives in
``state.handler_data[name]``, so a checkpoint holds it and a resumed run behaves as if it had
never stopped.

>>> import numpy as np, axon_fn
>>> from axon_fn.loop import trainer
>>> model = axon_fn.input("x", shape=(None, 1)) >> axon_fn.dense(1)
>>> x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(16, 1)
>>> loop = (trainer(model, "mean_squared_error", "sgd")
...         .validate(model, [(x, 3 * x)])
...         .early_stop("validation_loss", patience=2))
>>> final = loop.run([(x, 3 * x)], epochs=3)
>>> sorted(final.history[-1])
['loss', 'validation_loss']
"""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .._dtypes import is_real_floating
from .. import distributed
from .._checks import is_int
from ..errors import AxonTypeError, InvalidArgumentError
from .events import CONTINUE, HALT_LOOP, STATUSES
from .metric_specs import host_metrics

if TYPE_CHECKING:
    from ..typing import PathLike
    from .core import Loop

__all__ = ["HandlerMethods", "format_metrics"]

_MODES = ("min", "max")


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``"loss 0.1234  accuracy 0.9500"``: the metrics of a state, for a log line.

    >>> format_metrics({"loss": 0.12345, "accuracy": 1.0})
    'loss 0.1235  accuracy 1.0000'
    """
    return "  ".join(f"{name} {value:.4f}" if isinstance(value, (int, float)) else
                     f"{name} {value}" for name, value in host_metrics(metrics).items())


def describe_position(state):
    """``"epoch 2/5  iteration 30/100"``: where the loop is, for a log line."""
    if state.in_epoch:
        size = f"/{state.epoch_size}" if state.epoch_size else ""
        return f"epoch {state.epoch + 1}/{state.max_epochs}  iteration {state.iteration}{size}"
    return f"epoch {state.epoch}/{state.max_epochs}"


def write_line(file, line):
    """Write ``line`` to ``file``: ``None`` (standard output), a text stream, or a path (the
    line is appended). In a distributed job only rank 0 writes."""
    if not distributed.is_writer():
        return
    if file is None:
        file = sys.stdout
    if isinstance(file, (str, os.PathLike)):
        with open(file, "a", encoding="utf-8") as stream:
            stream.write(line + "\n")
        return
    file.write(line + "\n")
    file.flush()


def _check_mode(mode, where):
    if mode not in _MODES:
        raise InvalidArgumentError(f"{where}: `mode` must be 'min' or 'max', got {mode!r}")


def _check_count(value, name, where, minimum=0):
    if not is_int(value) or value < minimum:
        raise InvalidArgumentError(f"{where}: `{name}` must be an int >= {minimum}, got {value!r}")


def _metric_value(state, metric, where):
    if metric not in state.metrics:
        known = ", ".join(state.metrics) or "none yet"
        hint = (" (add loop.validate(...) before this handler)"
                if metric.startswith("validation_") else "")
        raise InvalidArgumentError(f"{where}: the loop has no metric {metric!r} when this "
                                   f"handler runs; its metrics are: {known}{hint}")
    return float(state.metrics[metric])


def _improved(value, best, mode, min_delta):
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _track(state, name, metric, mode, min_delta, where):
    """Update the best value of ``metric`` kept under ``handler_data[name]``; return the new
    record and whether the metric improved."""
    value = _metric_value(state, metric, where)
    record = state.handler_data.get(name, {"best": None, "best_epoch": None, "wait": 0})
    if _improved(value, record["best"], mode, min_delta):
        return {**record, "best": value, "best_epoch": state.epoch, "wait": 0}, True
    return {**record, "wait": record["wait"] + 1}, False


def _with_data(state, name, record):
    return state.replace(handler_data={**state.handler_data, name: record})


def _model_state(step_state, where):
    from ..model_state import ModelState

    if isinstance(step_state, ModelState):
        return step_state
    model_state = getattr(step_state, "model_state", None)
    if not isinstance(model_state, ModelState):
        raise AxonTypeError(f"{where}: the loop's step state must be a ModelState or have a "
                            f"`model_state` field (as the trainer's does); got "
                            f"{type(step_state).__name__}")
    return model_state


def _scale_hyperparam(opt_state, hyperparam, factor, min_value, where):
    """``opt_state`` with every injected ``hyperparam`` scaled by ``factor`` (not below
    ``min_value``); the new effective value of the first one."""
    from ..optim.hyperparams import InjectHyperparamsState

    found = []

    def scale(node):
        if not (isinstance(node, InjectHyperparamsState) and hyperparam in node.hyperparams):
            return node
        scales = node.hyperparams_scale or {}
        old = np.asarray(scales.get(hyperparam, 1.0))
        base = float(np.asarray(node.hyperparams[hyperparam]))
        new = float(old) * factor
        if base > 0 and base * new < min_value:
            new = min_value / base
        found.append(base * new)
        return node._replace(hyperparams_scale={
            **scales, hyperparam: np.asarray(new, dtype=old.dtype if old.ndim == 0 and
                                             is_real_floating(old.dtype) else np.float32)})

    new_state = optree.tree_map(scale, opt_state, none_is_leaf=True,
                                is_leaf=lambda node: isinstance(node, InjectHyperparamsState))
    if not found:
        raise InvalidArgumentError(
            f"{where}: the optimizer state has no injected {hyperparam!r}; build the optimizer "
            f"with optim.inject_hyperparams, e.g. "
            f"optim.inject_hyperparams(optim.adam)({hyperparam}=1e-3) (a schedule works too)")
    return new_state, found[0]


class HandlerMethods:
    """The built-in handlers, mixed into :class:`~axon_fn.loop.Loop`."""

    def _unique_name(self, name):
        taken = {handler.name for handler in self.handlers}
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    def log(self, message: Any = None, *, event: str = "epoch_completed",  # noqa: A002
            filter: Any = "always", file: Any = None) -> Loop:
        """A new loop that writes a line when ``event`` fires and ``filter`` passes.

        ``message`` is ``None`` (where the loop is and its metrics), a format string (its
        fields: ``state`` and the metric names) or a function ``state -> str``. ``file`` is
        ``None`` (standard output), a text stream, or a path the lines are appended to.

        >>> from axon_fn.loop import Loop
        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
        >>> _ = loop.log().run([1.0, 3.0], epochs=2)
        epoch 1/2  value 2.0000
        epoch 2/2  value 2.0000
        >>> _ = loop.log("done {state.epoch}: {value:.1f}", event="completed").run([5.0])
        done 1: 5.0
        """
        if not (message is None or isinstance(message, str) or callable(message)):
            raise AxonTypeError(f"Loop.log: `message` must be None, a format string or a "
                                f"function state -> str, got {message!r}")

        def log(state):
            if message is None:
                line = "  ".join(part for part in (describe_position(state),
                                                   format_metrics(state.metrics)) if part)
            elif isinstance(message, str):
                line = message.format(state=state, **state.metrics)
            else:
                line = message(state)
            write_line(file, line)
            return CONTINUE, state

        return self.handle(event, log, filter, name=self._unique_name("log"))

    def progress(self, *, every: Optional[int] = None, file: Any = None,
                 bar: Optional[bool] = None) -> Loop:
        """A new loop that shows its progress: a live bar with the metrics and the ETA when
        ``file`` (default standard error) is a terminal and ``tqdm`` is installed, and plain
        lines otherwise: one every ``every`` iterations (default: five per epoch, or every 50
        when the epoch's length is unknown) and one at the end of each epoch. ``bar=False``
        forces plain lines, ``bar=True`` the bar. Add it after ``validate`` so that the epoch
        lines show the validation metrics.
        """
        from .progress import attach_progress

        return attach_progress(self, every=every, file=file, bar=bar)

    def validate(self, model: Any, data: Any, *, metrics: Optional[Sequence[Any]] = None,
                 event: str = "epoch_completed", filter: Any = "always",  # noqa: A002
                 prefix: str = "validation_") -> Loop:
        """A new loop that evaluates ``model`` (in inference mode, with the step state's model
        state) on ``data`` when ``event`` fires, and merges the results into the metrics as
        ``validation_<name>``, into the epoch's history too.

        ``metrics`` defaults to the loop's own, including a trainer's ``loss``; otherwise give
        names, functions (with a ``__name__``) or MetricSpecs. ``data`` is a list of
        ``(inputs, targets)`` batches or a function of the loop's epoch (``state.epoch``)
        returning one.
        """
        from .metric_specs import as_metric
        from .trainer import evaluator

        if metrics is None:
            specs = [spec.evaluation or spec for spec in self.metrics
                     if spec.evaluation is not None or spec.transform is None]
        else:
            specs = [as_metric(metric) for metric in
                     (metrics if isinstance(metrics, (list, tuple)) else [metrics])]
        evaluation = evaluator(model)
        for spec in specs:
            evaluation = evaluation.metric(spec)
        if not evaluation.metrics:
            raise InvalidArgumentError("Loop.validate: there is no metric to compute; pass "
                                       "metrics=[...] (the loop itself tracks none that works "
                                       "on (y_true, y_pred))")

        def validate(state):
            batches = data(state.epoch) if callable(data) else data
            result = evaluation.run(batches, _model_state(state.step_state, "Loop.validate"))
            return CONTINUE, state.merge_metrics(
                {prefix + name: value for name, value in result.history[-1].items()})

        return self.handle(event, validate, filter, name=self._unique_name("validate"))

    def checkpoint(self, directory: PathLike = "checkpoints", *, event: str = "epoch_completed",
                   filter: Any = "always", monitor: Optional[str] = None,  # noqa: A002
                   mode: str = "min", keep: Optional[int] = None,
                   file_pattern: str = "checkpoint_{epoch}_{iteration}.npz") -> Loop:
        """A new loop that saves its whole State to ``directory`` when ``event`` fires and
        ``filter`` passes, atomically and without pickle (see :mod:`axon_fn.loop.checkpoint`).
        It runs after the event's other handlers, so it saves what they did.

        ``monitor`` (a metric name) saves only when that metric improves (``mode`` ``"min"``
        or ``"max"``): "keep the best". ``keep`` deletes all but the newest ``keep`` files
        this handler wrote. ``file_pattern`` is formatted with ``epoch``, ``iteration`` and
        ``total_iterations``. Resume with ``loop.from_checkpoint(directory)``.
        """
        _check_mode(mode, "Loop.checkpoint")
        if keep is not None:
            _check_count(keep, "keep", "Loop.checkpoint", minimum=1)
        name = self._unique_name("checkpoint")
        from .checkpoint import save_checkpoint

        def checkpoint(state):
            record = {"files": [], **state.handler_data.get(name, {})}
            if monitor is not None:
                record, improved = _track(state, name, monitor, mode, 0.0, "Loop.checkpoint")
                record = {"files": [], **record}
                if not improved:
                    return CONTINUE, _with_data(state, name, record)
            file_name = file_pattern.format(epoch=state.epoch, iteration=state.iteration,
                                            total_iterations=state.total_iterations)
            files = [f for f in record["files"] if f != file_name] + [file_name]
            stale = files[:-keep] if keep is not None else []
            state = _with_data(state, name, {**record, "files": files[len(stale):]})
            if not distributed.is_writer():  # a distributed run: rank 0 writes, alone
                return CONTINUE, state
            save_checkpoint(state, os.path.join(os.fspath(directory), file_name))
            for old in stale:
                old = os.path.join(os.fspath(directory), old)
                if os.path.exists(old):
                    os.remove(old)
            return CONTINUE, state

        return self.handle(event, checkpoint, filter, name=name, last=True)

    def monitor(self, metric: str, fn: Callable[[Any], Any], *, name: Optional[str] = None,
                mode: str = "min", patience: int = 0, min_delta: float = 0.0,
                event: str = "epoch_completed", filter: Any = "always") -> Loop:  # noqa: A002
        """A new loop that watches ``metric`` on each ``event`` and calls ``fn(state) ->
        (status, state)`` when it has not improved for more than ``patience`` checks in a row
        (the wait then starts again). Improving means below the best so far by more than
        ``min_delta`` (``mode="max"``: above). ``early_stop`` and ``reduce_lr_on_plateau``
        are monitors; this is the general form.

        >>> from axon_fn.loop import Loop
        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
        >>> calls = []
        >>> loop = loop.monitor("value", lambda st: (calls.append(st.epoch), ("continue", st))[1])
        >>> _ = loop.run(lambda epoch: [[3.0, 2.0, 2.0, 1.0][epoch]], epochs=4)
        >>> calls  # epoch 3 did not improve on epoch 2
        [3]
        """
        _check_mode(mode, "Loop.monitor")
        _check_count(patience, "patience", "Loop.monitor")
        if not callable(fn):
            raise AxonTypeError(f"Loop.monitor: `fn` must be a function state -> (status, "
                                f"state), got {fn!r}")
        name = self._unique_name(name or f"monitor_{metric}")

        def watch(state):
            record, improved = _track(state, name, metric, mode, min_delta, f"monitor {name!r}")
            if improved or record["wait"] <= patience:
                return CONTINUE, _with_data(state, name, record)
            result = fn(_with_data(state, name, {**record, "wait": 0}))
            if not (isinstance(result, tuple) and len(result) == 2 and result[0] in STATUSES):
                raise AxonTypeError(f"Loop.monitor: `fn` of monitor {name!r} must return "
                                    f"(status, state), got {result!r:.120}")
            return result

        return self.handle(event, watch, filter, name=name)

    def early_stop(self, metric: str, *, patience: int = 3, mode: str = "min",
                   min_delta: float = 0.0) -> Loop:
        """A new loop that halts once ``metric`` has gone ``patience`` epochs in a row without
        improving (checked when each epoch completes), and says why in ``state.halt_reason``.

        >>> from axon_fn.loop import Loop
        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
        >>> final = loop.early_stop("value", patience=2).run(
        ...     lambda epoch: [[3.0, 2.0, 2.5, 2.4, 1.0][epoch]], epochs=5)
        >>> final.status, final.epoch
        ('halted', 4)
        >>> final.halt_reason
        'early_stop: value has not improved for 2 epochs (best 2 at epoch 2)'
        """
        _check_count(patience, "patience", "Loop.early_stop", minimum=1)
        name = self._unique_name(f"early_stop_{metric}")

        def stop(state):
            record = state.handler_data[name]
            reason = (f"early_stop: {metric} has not improved for {patience} epoch"
                      f"{'s' if patience > 1 else ''} (best {record['best']:.6g} at epoch "
                      f"{record['best_epoch']})")
            return HALT_LOOP, state.replace(halt_reason=reason)

        return self.monitor(metric, stop, name=name, mode=mode, patience=patience - 1,
                            min_delta=min_delta)

    def reduce_lr_on_plateau(self, metric: str, *, factor: float = 0.1, patience: int = 3,
                             mode: str = "min", min_delta: float = 0.0, min_lr: float = 0.0,
                             cooldown: int = 0, hyperparam: str = "learning_rate") -> Loop:
        """A new loop that multiplies the learning rate by ``factor`` when ``metric`` has not
        improved for ``patience`` epochs, never below ``min_lr``; after a cut it waits
        ``cooldown`` more epochs before counting again.

        The optimizer must keep its learning rate in its state: build it with
        ``optim.inject_hyperparams(optim.adam)(learning_rate=...)``. A schedule works too: the
        cut is a multiplier on whatever the schedule gives (``hyperparams_scale``). The new
        rate is in ``state.handler_data[name]["learning_rate"]``.
        """
        if not (isinstance(factor, (int, float)) and 0 < factor < 1):
            raise InvalidArgumentError(f"Loop.reduce_lr_on_plateau: `factor` must be in (0, 1), "
                                       f"got {factor!r}")
        _check_count(cooldown, "cooldown", "Loop.reduce_lr_on_plateau")
        _check_count(patience, "patience", "Loop.reduce_lr_on_plateau", minimum=1)
        name = self._unique_name(f"reduce_lr_on_plateau_{metric}")

        def reduce(state):
            step_state = state.step_state
            if not hasattr(step_state, "optimizer_state"):
                raise AxonTypeError(f"Loop.reduce_lr_on_plateau: the step state "
                                    f"({type(step_state).__name__}) has no optimizer_state")
            opt_state, rate = _scale_hyperparam(step_state.optimizer_state, hyperparam, factor,
                                                min_lr, "Loop.reduce_lr_on_plateau")
            record = {**state.handler_data[name], "wait": -cooldown, hyperparam: rate,
                      "reductions": state.handler_data[name].get("reductions", 0) + 1}
            state = state.replace(step_state=step_state._replace(optimizer_state=opt_state))
            return CONTINUE, _with_data(state, name, record)

        def check_optimizer(state):  # fail on the first step, not when the first cut is due
            opt_state = getattr(state.step_state, "optimizer_state", None)
            _scale_hyperparam(opt_state, hyperparam, 1.0, 0.0, "Loop.reduce_lr_on_plateau")
            return CONTINUE, state

        loop = self.handle("iteration_completed", check_optimizer, "first",
                           name=f"{name}_check")
        return loop.monitor(metric, reduce, name=name, mode=mode, patience=patience - 1,
                            min_delta=min_delta)

    def nan_guard(self, metric: str = "loss", *, file: Any = None) -> Loop:
        """A new loop that halts after any iteration whose ``metric`` (for ``"loss"``, the
        trainer's loss of that very step when there is one) is NaN or infinite, writing why to ``file`` (default standard
        error) and to ``state.halt_reason``.

        >>> from axon_fn.loop import Loop
        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss")
        >>> final = loop.nan_guard(file=sys.stdout).run([1.0, float("nan"), 2.0])
        nan_guard: loss is nan at epoch 1, iteration 2; halting (check the learning rate, the data and the loss inputs)
        >>> final.status, final.iteration
        ('halted', 2)
        """
        def guard(state):
            value = getattr(state.step_state, "loss", None) if metric == "loss" else None
            if value is None:
                value = _metric_value(state, metric, "Loop.nan_guard")
            value = np.asarray(value)
            if np.all(np.isfinite(value)):
                return CONTINUE, state
            shown = float(value) if value.size == 1 else "non-finite"
            reason = (f"nan_guard: {metric} is {shown} at epoch {state.epoch + 1}, iteration "
                      f"{state.iteration}; halting (check the learning rate, the data and the "
                      f"loss inputs)")
            write_line(file if file is not None else sys.stderr, reason)
            return HALT_LOOP, state.replace(halt_reason=reason)

        return self.handle("iteration_completed", guard, name=self._unique_name("nan_guard"))

