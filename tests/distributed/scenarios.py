"""The training runs the distributed tests compare: the same functions build them in the
pytest process (one rank, the reference) and in the ranks ``mpiexec`` starts (``worker.py``).

Small models and few steps: the whole module must run in well under a minute on 2 cores.
"""

from __future__ import annotations

import numpy as np

import axon_fn
from axon_fn import optim
from axon_fn.loop import trainer

GLOBAL_BATCH = 64
BATCHES = 4          # per epoch
EPOCHS = 5           # 20 steps in all
CONFIGS = [(opt, compiled) for opt in ("sgd", "adam") for compiled in (False, True)]


def data(seed=0):
    """``BATCHES`` global batches of ``GLOBAL_BATCH`` rows, the same on every rank."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCHES * GLOBAL_BATCH, 6)).astype(np.float32)
    labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.8)
    y = np.eye(3, dtype=np.float32)[labels]
    return [(x[i:i + GLOBAL_BATCH], y[i:i + GLOBAL_BATCH])
            for i in range(0, len(x), GLOBAL_BATCH)]


def mlp():
    return (axon_fn.input("x", shape=(None, 6)) >> axon_fn.dense(16, activation="tanh")
            >> axon_fn.dense(3, activation="softmax"))


def optimizer(name):
    return optim.sgd(0.5) if name == "sgd" else optim.adam(0.01)


def train(opt, compiled, distributed, *, epochs=EPOCHS):
    loop = trainer(mlp(), "categorical_cross_entropy", optimizer(opt), seed=3,
                   compile=True if compiled else False, distributed=distributed)
    return loop.metric("accuracy").run(data(), epochs=epochs)


def train_accumulated_and_scaled(distributed):
    """Adam with gradient accumulation over 2 batches and a dynamic loss scale (which grows
    every 3 finite steps): 10 updates from 20 batches."""
    loop = trainer(mlp(), "categorical_cross_entropy", optimizer("adam"), seed=3,
                   accumulate_steps=2, distributed=distributed,
                   loss_scale=optim.DynamicLossScale(loss_scale=2.0 ** 10, period=3))
    return loop.metric("accuracy").run(data(), epochs=EPOCHS)


def bn_dropout_model():
    return (axon_fn.input("x", shape=(None, 6)) >> axon_fn.dense(16, activation="relu")
            >> axon_fn.batch_norm() >> axon_fn.dropout(0.2)
            >> axon_fn.dense(3, activation="softmax"))


def halt_after(epoch):
    """A handler that halts the loop when ``epoch`` epochs are done (a stand-in for a crash or
    a time limit)."""
    def halt(state):
        return ("halt_loop" if state.epoch == epoch else "continue"), state
    return halt


def resumable(distributed, accumulate_steps=1):
    """A trainer with batch norm, dropout and gradient accumulation: what a resume must restore
    (batch-norm statistics, keys, optimizer and accumulation state)."""
    return trainer(bn_dropout_model(), "categorical_cross_entropy", "adam", learning_rate=0.01,
                   seed=1, accumulate_steps=accumulate_steps, distributed=distributed)


def flat_params(state):
    """Every trainable leaf, by its path, as float64."""
    trainable = state.step_state.model_state.trainable
    return {f"{layer}/{name}": np.asarray(value, np.float64)
            for layer, params in trainable.items() for name, value in params.items()}


def uneven_data():
    """Global batches of 63 rows: 32 on rank 0, 31 on rank 1."""
    return [(x[:63], y[:63]) for x, y in data(seed=5)]


def train_uneven(distributed, *, own_rows=False):
    """SGD on batches that do not split evenly; with ``own_rows`` each rank is handed its rows
    (``shard=False``) instead of the global batch."""
    from axon_fn import distributed as dist

    batches = uneven_data()
    if own_rows:
        batches = [dist.shard(batch) for batch in batches]
    loop = trainer(mlp(), "categorical_cross_entropy", optimizer("sgd"), seed=3,
                   distributed=distributed, shard=not own_rows)
    return loop.metric("accuracy").run(batches, epochs=2)


def evaluate(state, distributed):
    """Accuracy and loss of ``state`` on the data, by an evaluator."""
    from axon_fn.loop import evaluator

    loop = evaluator(mlp(), distributed=distributed).metric("accuracy").metric(
        axon_fn.losses.categorical_cross_entropy, "loss")
    return loop.run(uneven_data(), state.step_state.model_state).history[-1]
