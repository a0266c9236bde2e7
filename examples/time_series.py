"""Forecast a time series with an LSTM: from a window of ``T`` past values, the next value.

The signal is a sum of two sines of different periods plus noise. Windows of ``T`` steps are
cut from it (the first 80% of the series for training, the rest for testing, so the test
windows lie strictly after the training ones). The model is an ``lstm`` whose final hidden
state (``return_state=True`` gives the ``(c, h)`` carry as nodes) feeds a ``dense`` readout.
It must beat the naive forecast "the next value equals the last one".

    python examples/time_series.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import trainer

NOISE = 0.1


def make_series(length, seed):
    t = np.arange(length)
    noise = np.random.default_rng(seed).normal(size=length)
    return (np.sin(2 * np.pi * t / 25) + 0.5 * np.sin(2 * np.pi * t / 9 + 1.0)
            + NOISE * noise).astype(np.float32)


def windows(series, steps):
    """(inputs (N, steps, 1), targets (N, 1)): every window of ``steps`` values and the next."""
    idx = np.arange(len(series) - steps)[:, None] + np.arange(steps + 1)
    cut = series[idx]
    return cut[:, :steps, None], cut[:, steps:]


def forecaster(steps, units=32):
    x = axon_fn.input("series", shape=(None, steps, 1))
    _, (_, h) = axon_fn.lstm(x, units, return_state=True)
    return h >> axon_fn.dense(1)


def main(epochs=20, steps=20, batch_size=32, learning_rate=1e-2, length=1500, seed=0,
         quick=False):
    if quick:
        epochs, length = 8, 700
    series = make_series(length, seed)
    split = int(0.8 * length)
    x_train, y_train = windows(series[:split], steps)
    x_test, y_test = windows(series[split:], steps)

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(len(x_train))
        return [(x_train[i], y_train[i]) for i in np.array_split(order, len(order) // batch_size)]

    model = forecaster(steps)
    loop = (trainer(model, "mean_squared_error", "adam", learning_rate=learning_rate, seed=seed)
            .validate(model, [(x_test, y_test)])
            .log(filter={"every": max(1, epochs // 5)}))
    start = time.perf_counter()
    final = loop.run(batches, epochs=epochs)
    seconds = time.perf_counter() - start

    predictions = axon_fn.predict(model, final.step_state.model_state, x_test)
    figures = {"mse": float(np.mean((predictions - y_test) ** 2)),
               "baseline_mse": float(np.mean((x_test[:, -1] - y_test) ** 2))}
    print(f"test MSE {figures['mse']:.4f}  repeat-last-value baseline "
          f"{figures['baseline_mse']:.4f}  noise floor {NOISE ** 2:.4f}  ({seconds:.1f} s)")
    return figures


if __name__ == "__main__":
    main()
