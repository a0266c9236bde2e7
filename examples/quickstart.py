"""Train a small MLP on a 3-arm spiral: a model graph, build, and an Adam training step.

The model is an immutable graph (``input >> dense >> ...``); ``build`` turns it into pure
``init_fn`` / ``predict_fn`` functions; gradients are taken with respect to the trainable
parameters and applied with an Optax-style optimizer. Runs in a few seconds on a laptop CPU.

    python examples/quickstart.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn import losses, optim, random


def spirals(key, points_per_class=300, classes=3, noise=0.2):
    """Points on interleaved spiral arms; the label is the arm."""
    radius = np.tile(np.linspace(0.05, 1.0, points_per_class), classes)
    labels = np.repeat(np.arange(classes), points_per_class)
    jitter = np.asarray(random.normal(key, (classes * points_per_class,), "float64")) * noise
    angle = labels * (2 * np.pi / classes) + radius * 4.0 + jitter
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1).astype(np.float32)
    return x, labels.astype(np.int32)


def mlp():
    x = axon_fn.input("x", shape=(None, 2))
    return (x >> axon_fn.dense(64, activation="relu") >> axon_fn.dense(64, activation="relu")
            >> axon_fn.dense(3))


def main(epochs=300, learning_rate=0.02, seed=0):
    data_key, split_key, init_key = random.split(random.key(seed), 3)
    x, labels = spirals(data_key)
    order = np.asarray(random.permutation(split_key, len(x)))
    train, test = order[:720], order[720:]

    model = mlp()
    init_fn, predict_fn = axon_fn.build(model)
    state = init_fn(x[:1], init_key)
    optimizer = optim.adam(learning_rate)
    opt_state = optimizer.init(state.trainable)

    def loss_fn(trainable, inputs, targets):
        logits = predict_fn(state.replace(trainable=trainable), inputs)
        return losses.categorical_cross_entropy(targets, logits, from_logits=True, sparse=True)

    loss_and_grad = axon_fn.value_and_grad(loss_fn)
    print(f"axon_fn {axon_fn.__version__} | native kernels: {axon_fn.backend_info()['native_detail']}")
    axon_fn.summary(model, x[:1])
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        loss, grads = loss_and_grad(state.trainable, x[train], labels[train])
        updates, opt_state = optimizer.update(grads, opt_state, state.trainable)
        state = state.replace(trainable=optim.apply_updates(state.trainable, updates))
        if epoch % 50 == 0 or epoch == 1:
            print(f"epoch {epoch:4d}  train loss {float(loss):.4f}")
    accuracy = float(np.mean(np.argmax(predict_fn(state, x[test]), axis=1) == labels[test]))
    print(f"test accuracy {accuracy:.3f} on {len(test)} held-out points "
          f"({time.perf_counter() - start:.1f} s)")
    return accuracy


if __name__ == "__main__":
    main()
