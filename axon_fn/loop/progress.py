"""The progress display behind ``Loop.progress``: a tqdm bar on a terminal, plain lines
elsewhere (logs, CI, notebooks' captured output).

>>> import io
>>> from axon_fn.loop import Loop
>>> out = io.StringIO()
>>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss")
>>> _ = loop.progress(file=out, every=2).run([4.0, 2.0, 3.0, 1.0], epochs=1)
>>> print(out.getvalue().replace("\\r", ""))  # doctest: +ELLIPSIS
epoch 1/1  iteration 2/4  loss 3.0000  ... it/s  ETA ...s
epoch 1/1  iteration 4/4  loss 2.5000  ... it/s  ETA 0.0s
epoch 1/1 done in ...s  loss 2.5000
<BLANKLINE>
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Optional

from .. import distributed
from .._checks import is_int
from ..errors import InvalidArgumentError
from .events import CONTINUE
from .handlers import describe_position, format_metrics, write_line
from .metric_specs import host_metrics

if TYPE_CHECKING:
    from .core import Loop

__all__ = ["attach_progress"]

# how often the bar's metrics are refreshed: tqdm redraws about as often, and reading metrics a
# GPU step left on the device waits for that step
_POSTFIX_SECONDS = 0.2


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class _Display:
    """What is on screen; kept out of the loop State because it is not worth checkpointing."""

    def __init__(self, every, file, bar):
        self.every, self.file, self.bar_wanted = every, file, bar
        self.bar = None
        self.epoch_start = None  # stays None on a run resumed mid-epoch until the next batch
        self.postfix_time = -math.inf

    def stream(self):
        return self.file if self.file is not None else sys.stderr

    def use_bar(self):
        if not distributed.is_writer():  # only rank 0 of a distributed job shows progress
            return False
        if self.bar_wanted is not None:
            return self.bar_wanted
        stream = self.stream()
        return _tqdm() is not None and hasattr(stream, "isatty") and stream.isatty()

    def epoch_started(self, state):
        self.epoch_start = time.perf_counter()
        if self.use_bar():
            tqdm = _tqdm()
            if tqdm is None:
                raise InvalidArgumentError("Loop.progress: bar=True needs the tqdm package "
                                           "(pip install tqdm)")
            self.bar = tqdm(total=state.epoch_size, file=self.stream(), leave=True,
                            desc=f"epoch {state.epoch + 1}/{state.max_epochs}")
        return CONTINUE, state

    def iteration_completed(self, state):
        if self.epoch_start is None:
            self.epoch_start = time.perf_counter()
        if self.bar is not None:
            self.bar.update(1)
            now = time.perf_counter()
            if now - self.postfix_time >= _POSTFIX_SECONDS:  # GPU metrics are read here
                self.postfix_time = now
                self.bar.set_postfix(host_metrics(state.metrics), refresh=False)
            return CONTINUE, state
        every = self.every or (max(1, state.epoch_size // 5) if state.epoch_size else 50)
        if state.iteration % every == 0:
            elapsed = time.perf_counter() - self.epoch_start
            rate = state.iteration / elapsed if elapsed > 0 else float("inf")
            eta = (f"  ETA {(state.epoch_size - state.iteration) / rate:.1f}s"
                   if state.epoch_size and rate > 0 else "")
            write_line(self.stream(), f"{describe_position(state)}  "
                                      f"{format_metrics(state.metrics)}  {rate:.1f} it/s{eta}")
        return CONTINUE, state

    def epoch_ended(self, state):
        if self.bar is not None:
            self.bar.set_postfix(host_metrics(state.metrics), refresh=True)
            self.bar.close()
            self.bar = None
        else:
            took = time.perf_counter() - (self.epoch_start or time.perf_counter())
            write_line(self.stream(), f"{describe_position(state)} done in {took:.1f}s  "
                                      f"{format_metrics(state.metrics)}")
        return CONTINUE, state

    def closed(self, state):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return CONTINUE, state


def attach_progress(loop: Loop, *, every: Optional[int] = None, file: Any = None,
                    bar: Optional[bool] = None) -> Loop:
    """``loop`` with a progress display on its epoch and iteration events (see
    :meth:`~axon_fn.loop.handlers.HandlerMethods.progress`)."""
    if every is not None and (not is_int(every) or every < 1):
        raise InvalidArgumentError(f"Loop.progress: `every` must be a positive int, got "
                                   f"{every!r}")
    if bar not in (None, True, False):
        raise InvalidArgumentError(f"Loop.progress: `bar` must be None, True or False, got "
                                   f"{bar!r}")
    display = _Display(every, file, bar)
    name = loop._unique_name("progress")
    loop = loop.handle("epoch_started", display.epoch_started, name=name)
    loop = loop.handle("iteration_completed", display.iteration_completed, name=name)
    loop = loop.handle("epoch_completed", display.epoch_ended, name=name)
    loop = loop.handle("epoch_halted", display.epoch_ended, name=name)
    return loop.handle("halted", display.closed, name=name)
