"""The Loop: a reducer over batches with a step function, metrics and event handlers.

A :class:`Loop` is an immutable value. ``loop.handle(...)`` and ``loop.metric(...)`` return new
loops; ``loop.run(data, epochs=...)`` reduces the data and returns the final :class:`State`.

>>> loop = Loop(step_fn=lambda batch, total: total + batch, init_fn=lambda state: 0)
>>> final = loop.run([1, 2, 3], epochs=2)
>>> final.step_state, final.epoch, final.status
(12, 2, 'completed')
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Iterable, Mapping, Optional

from ..errors import AxonTypeError, InvalidArgumentError
from ..typing import PathLike
from .events import CONTINUE, EVENTS, HALT_EPOCH, HALT_LOOP, STATUSES
from .filters import as_filter
from .handlers import HandlerMethods
from .metric_specs import as_metric, host_metrics

__all__ = ["Loop", "State", "EVENTS", "CONTINUE", "HALT_EPOCH", "HALT_LOOP"]  # events re-exported



@dataclasses.dataclass(frozen=True)
class State:
    """Where a loop is: counters, the step state, metrics, history, event counts and times.

    ``epoch`` counts completed epochs (the one running while inside it); ``iteration`` counts
    batches in the current epoch and ``total_iterations`` in the whole run; ``epoch_size`` is
    the number of batches an epoch will have when the data has a length. ``metrics`` holds the
    current epoch's accumulated values; ``history`` one dict per finished epoch. ``in_epoch`` is
    true between an epoch's start and the end of its last batch (a checkpoint taken then resumes
    mid-epoch). ``halt_reason`` says why a built-in handler halted the loop. Everything here is
    plain data, so a checkpoint holds all of it.
    """

    step_state: Any = None
    epoch: int = 0
    iteration: int = 0
    total_iterations: int = 0
    max_epochs: int = 1
    max_iterations: int | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    event_counts: dict = dataclasses.field(default_factory=dict)
    times: dict = dataclasses.field(default_factory=dict)
    status: str = "running"
    metric_state: dict = dataclasses.field(default_factory=dict)
    handler_data: dict = dataclasses.field(default_factory=dict)
    epoch_event_counts: dict = dataclasses.field(default_factory=dict)
    epoch_size: int | None = None
    in_epoch: bool = False
    halt_reason: str | None = None

    def replace(self, **changes: Any) -> State:
        """A copy with some fields changed (handlers use it to change the state).

        >>> State(epoch=2).replace(iteration=5).iteration
        5
        """
        if not _STATE_FIELDS.issuperset(changes):  # a set difference every call costs twice this
            unknown = changes.keys() - _STATE_FIELDS
            raise TypeError(f"State.replace: no field named {', '.join(sorted(unknown))}")
        # a copy of the fields rather than dataclasses.replace, which re-runs __init__: the
        # loop replaces its state several times per batch
        new = object.__new__(State)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def merge_metrics(self, values: Mapping[str, Any]) -> State:
        """A copy with ``values`` merged into ``metrics``, and into the last ``history`` entry
        when an epoch has just finished (so a handler on ``epoch_completed``, such as
        validation, adds to that epoch's record).

        >>> State(metrics={"loss": 1.0}).merge_metrics({"validation_loss": 2.0}).metrics
        {'loss': 1.0, 'validation_loss': 2.0}
        """
        history = self.history
        if not self.in_epoch and history:
            history = history[:-1] + [{**history[-1], **values}]
        return self.replace(metrics={**self.metrics, **values}, history=history)


_STATE_FIELDS = frozenset(field.name for field in dataclasses.fields(State))


@dataclasses.dataclass(frozen=True)
class _Handler:
    event: str
    fn: Any
    filter: Any
    name: str
    last: bool = False


@dataclasses.dataclass(frozen=True)
class Loop(HandlerMethods):
    """``step_fn(batch, step_state) -> step_state`` reduced over data; ``init_fn(init_state)``
    gives the first step state (``init_state`` is what ``run`` received, may be ``None``);
    ``output_transform(step_state)`` is what metrics see (default: the step state).
    ``resume`` is a State the next ``run`` continues from (see :meth:`from_checkpoint`).

    The built-in handlers (``log``, ``progress``, ``validate``, ``checkpoint``, ``early_stop``,
    ``reduce_lr_on_plateau``, ``monitor``, ``nan_guard``) are methods that return new loops;
    see :mod:`axon_fn.loop.handlers`.
    """

    step_fn: Any
    init_fn: Any = None
    output_transform: Any = None
    metrics: tuple = ()
    handlers: tuple = ()
    resume: Any = None

    def __post_init__(self):
        # refused here, where the loop is built, rather than at the first batch of a run
        for name in ("step_fn", "init_fn", "output_transform"):
            value = getattr(self, name)
            if not callable(value) and not (value is None and name != "step_fn"):
                raise AxonTypeError(f"Loop: `{name}` must be a function, got "
                                    f"{type(value).__name__} {value!r}")

    def handle(self, event: str, handler: Callable[[State], Any],
               filter: Any = "always", *,  # noqa: A002
               name: Optional[str] = None, last: bool = False) -> Loop:
        """A new loop that calls ``handler(state) -> (status, state)`` when ``event`` fires and
        ``filter`` passes. Status is ``"continue"``, ``"halt_epoch"`` or ``"halt_loop"``.
        Handlers of an event run in the order they were added, those with ``last=True`` after
        all the others (a checkpoint is one: it saves what every other handler did).

        >>> loop = Loop(lambda b, s: s + b, lambda _: 0)
        >>> seen = []
        >>> loop = loop.handle("epoch_completed", lambda st: (seen.append(st.epoch), ("continue", st))[1])
        >>> _ = loop.run([1], epochs=3); seen
        [1, 2, 3]
        """
        if event not in EVENTS:
            raise InvalidArgumentError(f"Loop.handle: unknown event {event!r}; events are "
                                       f"{', '.join(EVENTS)}")
        if not callable(handler):
            raise AxonTypeError(f"Loop.handle: `handler` must be callable, got {handler!r}")
        label = name or getattr(handler, "__name__", type(handler).__name__)
        entry = _Handler(event, handler, as_filter(filter, "Loop.handle"), label, bool(last))
        return dataclasses.replace(self, handlers=self.handlers + (entry,))

    def metric(self, metric: Any, name: Optional[str] = None, *, accumulate: Any = None,
               transform: Optional[Callable[[Any], Any]] = None, **options: Any) -> Loop:
        """A new loop that tracks ``metric`` over each epoch: a name from
        :mod:`axon_fn.metrics` (``"accuracy"``, ``"precision"``...), a function of the metric
        inputs, or a :class:`~axon_fn.loop.metric_specs.MetricSpec`. ``accumulate`` is
        ``"running_average"`` (the default), ``"running_sum"`` or a function
        ``(accumulated, value, count)``.
        Ratios given by name (accuracy, precision, recall, f1, ...) accumulate counts over the
        epoch, not batch ratios. ``options`` are the named metric's keyword arguments
        (``.metric("f1", average="macro", sparse=True)``).
        ``transform(step_state)`` gives this metric its own inputs instead of the loop's
        ``output_transform``.

        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
        >>> loop.run([1.0, 3.0]).history
        [{'value': 2.0}]
        """
        spec = as_metric(metric, name, accumulate, transform, options)
        if any(existing.name == spec.name for existing in self.metrics):
            raise InvalidArgumentError(f"Loop.metric: a metric named {spec.name!r} is already "
                                       f"tracked; pass name=...")
        return dataclasses.replace(self, metrics=self.metrics + (spec,))

    def run(self, data: Any, init_state: Any = None, *, epochs: int = 1,
            iterations: Optional[int] = None, state: Optional[State] = None) -> State:
        """Reduce ``data`` (an iterable re-iterated every epoch, or a function returning one per
        epoch) for ``epochs`` epochs of at most ``iterations`` batches; return the final State.

        ``state`` resumes from a State (default: the loop's ``resume``, set by
        :meth:`from_checkpoint`): counters, metrics, history and handler data continue where
        they stopped. A State saved in the middle of an epoch resumes at the next batch of that
        epoch, skipping the batches already done, so with data that is the same on every run
        (a list, or a function of the epoch) the resumed run matches an uninterrupted one.
        """
        return _Run(self, data, epochs, iterations).run(
            init_state, state if state is not None else self.resume)

    def from_checkpoint(self, path: PathLike, *, types: Iterable[type] = ()) -> Loop:
        """A copy of this loop whose next ``run`` continues from the checkpoint at ``path`` (a
        file written by :meth:`checkpoint`, or a directory of them: the newest is used).
        ``types`` lists your own NamedTuple classes in the step state (axon_fn's are known).

        >>> import tempfile
        >>> loop = Loop(lambda b, s: s + b, lambda _: 0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     first = loop.checkpoint(d).run([1, 2], epochs=1)
        ...     loop.from_checkpoint(d).run([1, 2], epochs=3).step_state
        9
        """
        from .. import distributed
        from .checkpoint import load_checkpoint

        # in a distributed job rank 0 reads the file and sends the State to every rank
        state = distributed.load_on_root(lambda: load_checkpoint(path, types=types)) \
            if distributed.active() else load_checkpoint(path, types=types)
        return dataclasses.replace(self, resume=state)


class _Run:
    """One execution of a loop (mutable bookkeeping kept out of the Loop value)."""

    def __init__(self, loop, data, epochs, iterations):
        for value, argument in ((epochs, "epochs"), (iterations, "iterations")):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InvalidArgumentError(f"Loop.run: `{argument}` must be a non-negative int, "
                                           f"got {value!r}")
        if not (callable(data) or hasattr(data, "__iter__")):
            raise AxonTypeError(f"Loop.run: `data` must be an iterable of batches or a function "
                                f"returning one per epoch, got {type(data).__name__}")
        self.loop, self.data, self.epochs, self.iterations = loop, data, epochs, iterations
        self.handlers = sorted(loop.handlers, key=lambda handler: handler.last)  # stable

    def fire(self, event, state):
        counts = {**state.event_counts, event: state.event_counts.get(event, 0) + 1}
        in_epoch = {**state.epoch_event_counts,
                    event: state.epoch_event_counts.get(event, 0) + 1}
        state = state.replace(event_counts=counts, epoch_event_counts=in_epoch)
        status = CONTINUE
        for handler in self.handlers:
            if handler.event != event or not handler.filter(counts[event], in_epoch[event],
                                                            state):
                continue
            result = handler.fn(state)
            if (not isinstance(result, tuple) or len(result) != 2
                    or result[0] not in STATUSES or not isinstance(result[1], State)):
                raise AxonTypeError(f"Loop: handler {handler.name!r} on event {event!r} must "
                                    f"return (status, state) with status one of "
                                    f"{', '.join(STATUSES)} and the loop State; got {result!r:.120}")
            new_status, state = result
            if STATUSES.index(new_status) > STATUSES.index(status):
                status = new_status
        return status, state

    def elapsed(self):
        """Seconds this loop has run, over all runs of a resumed State."""
        return self.earlier + time.perf_counter() - self.started

    def epoch_data(self, epoch):
        data = self.data(epoch) if callable(self.data) else self.data
        if not hasattr(data, "__iter__"):
            raise AxonTypeError(f"Loop.run: the data function returned "
                                f"{type(data).__name__}, not an iterable of batches")
        return data

    def epoch_size(self, data):
        size = len(data) if hasattr(data, "__len__") else None
        if self.iterations is not None:
            size = self.iterations if size is None else min(size, self.iterations)
        return size

    def run(self, init_state, state):
        loop = self.loop
        if state is None:
            step_state = loop.init_fn(init_state) if loop.init_fn else init_state
            state = State(step_state=step_state, max_epochs=self.epochs,
                          max_iterations=self.iterations, times={"epochs": [], "total": 0.0})
        else:
            if not isinstance(state, State):
                raise AxonTypeError(f"Loop.run: `state` must be a loop State (from a previous "
                                    f"run or load_checkpoint), got {type(state).__name__}")
            state = state.replace(max_epochs=self.epochs, max_iterations=self.iterations,
                                  status="running", halt_reason=None)
        self.started, self.earlier = time.perf_counter(), state.times.get("total", 0.0)
        status, state = self.fire("started", state)
        while status == CONTINUE and state.epoch < self.epochs:
            status, state = self.run_epoch(state)
        state = state.replace(times={**state.times, "total": self.elapsed()})
        if status == HALT_LOOP:
            _, state = self.fire("halted", state.replace(status="halted"))
            return state
        _, state = self.fire("completed", state.replace(status="completed"))
        return state

    def run_epoch(self, state):
        epoch_start = time.perf_counter()
        data = self.epoch_data(state.epoch)
        if state.in_epoch and state.iteration > 0:  # resuming mid-epoch
            status, batches = CONTINUE, iter(data)
            for _ in range(state.iteration):
                if next(batches, _END) is _END:
                    raise InvalidArgumentError(
                        f"Loop.run: resuming epoch {state.epoch} after batch {state.iteration}, "
                        f"but the data now has fewer batches than that")
        else:
            state = state.replace(
                iteration=0, metrics={}, epoch_event_counts={}, in_epoch=True,
                epoch_size=self.epoch_size(data),
                metric_state={spec.name: spec.empty() for spec in self.loop.metrics})
            status, state = self.fire("epoch_started", state)
            batches = iter(data) if status == CONTINUE else iter(())
        # with no handler on either iteration event, a batch counts both events in the same
        # replace as its step (the state nobody sees in between is never made)
        quiet = not any(handler.event in _ITERATION_EVENTS for handler in self.handlers)
        while status == CONTINUE:
            if self.iterations is not None and state.iteration >= self.iterations:
                break
            batch = next(batches, _END)
            if batch is _END:
                break
            if quiet:
                state = self.step(batch, state, events=_ITERATION_EVENTS)
                continue
            status, state = self.fire("iteration_started", state)
            if status != CONTINUE:
                break
            state = self.step(batch, state)
            status, state = self.fire("iteration_completed", state)
        if status == HALT_LOOP:
            return status, state
        if state.iteration == 0 and status == CONTINUE:
            raise InvalidArgumentError(f"Loop.run: epoch {state.epoch} had no batches; the data "
                                       f"is empty (a generator can be iterated only once: pass "
                                       f"a list or a function returning a fresh iterable)")
        times = {"epochs": state.times.get("epochs", []) + [time.perf_counter() - epoch_start],
                 "total": self.elapsed()}
        metrics = host_metrics(state.metrics)
        state = state.replace(epoch=state.epoch + 1, history=state.history + [dict(metrics)],
                              metrics=metrics, times=times, in_epoch=False)
        event = "epoch_halted" if status == HALT_EPOCH else "epoch_completed"
        status, state = self.fire(event, state)
        return (HALT_LOOP if status == HALT_LOOP else CONTINUE), state

    def step(self, batch, state, events=()):
        """``state`` after the step on ``batch`` (and, for each of ``events``, one more in the
        event counts)."""
        loop = self.loop
        step_state = loop.step_fn(batch, state.step_state)
        metrics, metric_state = dict(state.metrics), dict(state.metric_state)
        if loop.metrics:
            seen = _UNSET  # computed once, and only when a metric reads it (it may communicate)
            for spec in loop.metrics:
                if spec.transform is None and seen is _UNSET:
                    seen = loop.output_transform(step_state) if loop.output_transform \
                        else step_state
                own = spec.transform(step_state) if spec.transform else seen
                metric_state[spec.name] = spec.update(metric_state[spec.name], own,
                                                      state.iteration)
                metrics[spec.name] = spec.value(metric_state[spec.name])
        counted = {}
        if events:
            counts, in_epoch = dict(state.event_counts), dict(state.epoch_event_counts)
            for event in events:
                counts[event] = counts.get(event, 0) + 1
                in_epoch[event] = in_epoch.get(event, 0) + 1
            counted = {"event_counts": counts, "epoch_event_counts": in_epoch}
        return state.replace(step_state=step_state, iteration=state.iteration + 1,
                             total_iterations=state.total_iterations + 1, metrics=metrics,
                             metric_state=metric_state, **counted)


_END = object()
_UNSET = object()
_ITERATION_EVENTS = ("iteration_started", "iteration_completed")
