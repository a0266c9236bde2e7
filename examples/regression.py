"""Regression on synthetic tabular data: an MLP fitted with mean squared error.

The target is a smooth nonlinear function of four features plus noise,
``y = sin(2 x0) + 0.5 x1^2 - 0.8 x0 x2 + 0.3 x3 + noise`` (``x3`` enters linearly, and the
noise sets a floor no model can beat). A ``trainer`` loop fits the MLP on shuffled minibatches
(a data function of the epoch, so every epoch has its own seeded order) and the held-out test
set is scored against the simplest baseline: always predicting the training mean.

    python examples/regression.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import trainer

FEATURES = 4
NOISE = 0.1


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, FEATURES)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - 0.8 * x[:, 0] * x[:, 2] + 0.3 * x[:, 3]
         + NOISE * rng.normal(size=n))
    return x, y[:, None].astype(np.float32)


def mlp(hidden=64):
    x = axon_fn.input("x", shape=(None, FEATURES))
    return (x >> axon_fn.dense(hidden, activation="tanh")
            >> axon_fn.dense(hidden, activation="tanh") >> axon_fn.dense(1))


def main(epochs=60, batch_size=64, learning_rate=3e-3, train_size=2000, seed=0, quick=False):
    if quick:
        epochs, train_size = 25, 1000
    x_train, y_train = make_data(train_size, seed)
    x_test, y_test = make_data(1000, seed + 1)

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(len(x_train))
        return [(x_train[i], y_train[i]) for i in np.array_split(order, len(order) // batch_size)]

    model = mlp()
    loop = (trainer(model, "mean_squared_error", "adam", learning_rate=learning_rate, seed=seed)
            .validate(model, [(x_test, y_test)])
            .log(filter={"every": max(1, epochs // 5)}))
    start = time.perf_counter()
    final = loop.run(batches, epochs=epochs)
    seconds = time.perf_counter() - start

    error = axon_fn.predict(model, final.step_state.model_state, x_test) - y_test
    baseline_error = y_train.mean() - y_test
    figures = {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))),
               "baseline_rmse": float(np.sqrt(np.mean(baseline_error ** 2))),
               "baseline_mae": float(np.mean(np.abs(baseline_error)))}
    print(f"test RMSE {figures['rmse']:.4f} (baseline {figures['baseline_rmse']:.4f}, "
          f"noise floor {NOISE})  MAE {figures['mae']:.4f} (baseline {figures['baseline_mae']:.4f})"
          f"  ({seconds:.1f} s)")
    return figures


if __name__ == "__main__":
    main()
