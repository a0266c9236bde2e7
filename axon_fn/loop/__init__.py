"""Training loops, as in Elixir Axon's ``Axon.Loop``: a :class:`Loop` reduces batches with a
step function, tracks metrics and runs handlers on events; :func:`trainer` and
:func:`evaluator` build the usual ones.

>>> import numpy as np, axon_fn
>>> from axon_fn.loop import trainer
>>> model = axon_fn.input("x", shape=(None, 1)) >> axon_fn.dense(1)
>>> x = np.arange(8.0, dtype=np.float32).reshape(8, 1) / 8
>>> final = trainer(model, "mean_squared_error", "sgd").run([(x, 2 * x)], epochs=2)
>>> final.epoch, sorted(final.history[-1])
(2, ['loss'])
"""

from . import filters
from .checkpoint import load_checkpoint, save_checkpoint
from .core import Loop, State
from .events import CONTINUE, EVENTS, HALT_EPOCH, HALT_LOOP
from .experiment import Experiment
from .metric_specs import MetricSpec
from .plot import plot_metrics
from .trainer import EvalState, TrainState, evaluator, trainer

__all__ = ["CONTINUE", "EVENTS", "EvalState", "Experiment", "HALT_EPOCH", "HALT_LOOP", "Loop",
           "MetricSpec", "State", "TrainState", "evaluator", "filters", "load_checkpoint",
           "plot_metrics", "save_checkpoint", "trainer"]
