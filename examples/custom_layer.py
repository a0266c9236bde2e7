"""A custom layer with its own parameters: radial basis function (RBF) units.

Each unit ``j`` responds to how close the input is to its centre ``c_j``, with its own width:
``exp(-gamma_j * |x - c_j|^2)``, where ``gamma_j = exp(s_j)`` (the log scale keeps it
positive). The layer is a plain function of arrays written with ``axon_fn.ops``, turned into a
graph layer by ``axon_fn.layer`` with two ``axon_fn.param`` declarations (the centres' shape
follows the input's feature size). Its gradients are checked against finite differences with
``axon_fn.testing.check_grads``; then it is trained, under a dense output layer, to tell apart
three concentric rings of points, which no linear model of the coordinates can.

    python examples/custom_layer.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn import initializers, ops
from axon_fn.loop import evaluator, trainer
from axon_fn.testing import check_grads


def rbf_units(v, centers, log_gamma):
    """``(batch, features)`` -> ``(batch, units)`` responses, centres ``(units, features)``."""
    squared_distance = (ops.sum(v * v, axis=-1, keepdims=True) - 2 * v @ ops.transpose(centers)
                        + ops.sum(centers * centers, axis=-1))
    return ops.exp(-ops.exp(log_gamma) * squared_distance)


def rbf(x, units, *, name=None):
    centers = axon_fn.param("centers", lambda shape: (units, shape[-1]),
                            initializer=initializers.normal(scale=1.0))
    log_gamma = axon_fn.param("log_gamma", (units,), initializer=initializers.zeros())
    return axon_fn.layer(rbf_units, [x, centers, log_gamma], name=name, op_name="rbf")


def rings(n, seed, classes=3, noise=0.08):
    """Points on ``classes`` concentric rings (radius 0.5, 1.0, 1.5); the label is the ring."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    radius = 0.5 * (labels + 1) + noise * rng.normal(size=n)
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x.astype(np.float32), labels.astype(np.int32)


def check_rbf_gradients():
    """Compare the layer's gradients, for its parameters and its input, with finite
    differences (``check_grads`` raises ``GradientCheckError`` on a mismatch)."""
    x = axon_fn.input("x", shape=(None, 2))
    layer = rbf(x, 4, name="rbf")
    state = axon_fn.init(layer, key=0)
    points, _ = rings(5, seed=9)

    def forward(trainable, inputs):
        return axon_fn.predict(layer, state.replace(trainable=trainable), inputs)

    check_grads(forward, state.trainable, points)
    return True


def cross_entropy(labels, logits):
    return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


def accuracy(labels, logits):
    return axon_fn.metrics.accuracy(labels, logits, sparse=True)


def batches(x, y, batch_size, shuffle_seed=None):
    order = np.arange(len(x))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]])
            for i in range(0, len(x), batch_size)]


def main(epochs=30, units=16, batch_size=64, learning_rate=2e-2, train_size=3000, quick=False):
    if quick:
        epochs, train_size = 15, 1500
    gradients_ok = check_rbf_gradients()
    print("check_grads: the rbf layer's gradients match finite differences")

    x_train, y_train = rings(train_size, seed=0)
    x_test, y_test = rings(1000, seed=1)
    x = axon_fn.input("x", shape=(None, 2))
    model = rbf(x, units, name="rbf") >> axon_fn.dense(3, name="out")
    axon_fn.summary(model, x_train[:1])

    start = time.perf_counter()
    loop = (trainer(model, cross_entropy, "adam", learning_rate=learning_rate)
            .metric(accuracy, "accuracy")
            .log("epoch {state.epoch:2d}  loss {loss:.4f}  accuracy {accuracy:.3f}",
                 filter={"every": 5}))
    final = loop.run(lambda epoch: batches(x_train, y_train, batch_size, shuffle_seed=epoch),
                     epochs=epochs)
    state = final.step_state.model_state
    test_accuracy = evaluator(model).metric(accuracy, "accuracy").run(
        [(x_test, y_test)], state).history[-1]["accuracy"]
    seconds = time.perf_counter() - start

    gamma = np.exp(np.asarray(state["rbf"]["log_gamma"]))
    print(f"learned gamma of the rbf units: {gamma.min():.2f} .. {gamma.max():.2f} "
          f"(all 1 at the start)")
    print(f"test accuracy {test_accuracy:.3f} on {len(x_test)} held-out points, chance 0.333 "
          f"({seconds:.1f} s)")
    return {"test_accuracy": test_accuracy, "gradients_ok": gradients_ok,
            "first_epoch_loss": final.history[0]["loss"], "final_loss": final.history[-1]["loss"],
            "seconds": seconds}


if __name__ == "__main__":
    main()
