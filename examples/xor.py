"""Learn XOR with a tiny MLP: the smallest problem a linear model cannot solve.

The four points of the XOR truth table are the whole data set. A hidden ``dense`` layer with a
``tanh`` activation bends the input space so that a ``sigmoid`` output can separate the two
classes; a ``trainer`` loop fits it with Adam and binary cross-entropy, full batch. Runs in
about a second.

    python examples/xor.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import trainer

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TARGETS = np.array([[0], [1], [1], [0]], np.float32)


def mlp(hidden=8):
    x = axon_fn.input("x", shape=(None, 2))
    return x >> axon_fn.dense(hidden, activation="tanh") >> axon_fn.dense(1, activation="sigmoid")


def main(epochs=300, hidden=8, learning_rate=0.05, seed=0, quick=False):
    if quick:
        epochs = 150
    model = mlp(hidden)
    loop = (trainer(model, "binary_cross_entropy", "adam", learning_rate=learning_rate, seed=seed)
            .metric("accuracy")
            .log(filter={"every": max(1, epochs // 5)}))
    start = time.perf_counter()
    final = loop.run([(INPUTS, TARGETS)], epochs=epochs)
    seconds = time.perf_counter() - start

    probabilities = axon_fn.predict(model, final.step_state.model_state, INPUTS)[:, 0]
    accuracy = float(np.mean((probabilities > 0.5) == TARGETS[:, 0]))
    for (a, b), target, p in zip(INPUTS.astype(int), TARGETS[:, 0].astype(int), probabilities):
        print(f"{a} xor {b} = {target}   predicted {p:.3f}")
    print(f"accuracy {accuracy:.2f}  final loss {final.history[-1]['loss']:.4f}  ({seconds:.1f} s)")
    return {"accuracy": accuracy, "loss": final.history[-1]["loss"]}


if __name__ == "__main__":
    main()
