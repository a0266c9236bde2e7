"""Train a convolutional classifier on Kuzushiji-MNIST (28x28 images of cursive Japanese
characters, 10 classes), bundled in ``examples/data/kmnist``: no download needed.

It shows the whole training workflow: a conv net built with ``>>``, a ``trainer`` loop with
accuracy, validation each epoch, a progress display, a checkpoint of the best epoch, early
stopping, an ``Experiment`` record on disk (params, per-epoch metrics, summary, artifacts), a
plot of the curves, and the trained model saved with ``axon_fn.save``. About 45 seconds
on a 2-core CPU.

    pip install -e ".[examples]" && python examples/kmnist_cnn.py

The 10,000 bundled images (the dataset's official test split) are shuffled with a fixed seed
and split 7,000 / 1,000 / 2,000 into training, validation and test sets.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

import numpy as np

import axon_fn
from axon_fn.loop import Experiment, plot_metrics, trainer

DATA = pathlib.Path(__file__).resolve().parent / "data" / "kmnist"


def load_kmnist(seed=0):
    """(train, validation, test) pairs of float32 images (N, 28, 28, 1) in [0, 1] and int32
    labels."""
    images = np.load(DATA / "kmnist-test-imgs.npz")["arr_0"]
    labels = np.load(DATA / "kmnist-test-labels.npz")["arr_0"]
    order = np.random.default_rng(seed).permutation(len(images))
    images = images[order, :, :, None].astype(np.float32) / 255.0
    labels = labels[order].astype(np.int32)
    cuts = [(0, 7000), (7000, 8000), (8000, 10000)]
    return [(images[lo:hi], labels[lo:hi]) for lo, hi in cuts]


def cnn():
    image = axon_fn.input("image", shape=(None, 28, 28, 1))
    return (image
            >> axon_fn.conv(32, 3, padding="same", activation="relu") >> axon_fn.max_pool(2)
            >> axon_fn.conv(64, 3, padding="same", activation="relu") >> axon_fn.max_pool(2)
            >> axon_fn.flatten()
            >> axon_fn.dense(128, activation="relu") >> axon_fn.dropout(0.4)
            >> axon_fn.dense(10))


def batches(images, labels, batch_size, shuffle_seed=None):
    """The data for one epoch: a list of (images, labels) batches, shuffled when a seed is
    given (the seed is the epoch, so a resumed run sees the same batches)."""
    order = np.arange(len(images))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    return [(images[order[i:i + batch_size]], labels[order[i:i + batch_size]])
            for i in range(0, len(order), batch_size)]


def cross_entropy(labels, logits):
    return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


def accuracy(labels, logits):
    return axon_fn.metrics.accuracy(labels, logits, sparse=True)


def main(epochs=12, batch_size=64, learning_rate=2e-3, runs="runs", quick=False):
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_kmnist()
    if quick:  # a smoke test: a slice of the data, two epochs
        epochs, (x_train, y_train), (x_val, y_val) = 2, (x_train[:640], y_train[:640]), (
            x_val[:200], y_val[:200])
    model = cnn()
    params = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
              "train": len(x_train), "validation": len(x_val), "test": len(x_test)}
    print(f"axon_fn {axon_fn.__version__} | native kernels: "
          f"{axon_fn.backend_info()['native_detail']}")
    axon_fn.summary(model, x_train[:1])

    with Experiment("kmnist_cnn", runs, params=params) as experiment:
        checkpoints = os.path.join(experiment.path, "checkpoints")
        schedule = axon_fn.optim.schedules.cosine_decay_schedule(
            learning_rate, decay_steps=epochs * -(-len(x_train) // batch_size))
        loop = (trainer(model, cross_entropy, axon_fn.optim.adam(schedule), seed=0)
                .metric(accuracy, "accuracy")
                .validate(model, batches(x_val, y_val, 500))
                .progress()
                .checkpoint(checkpoints, monitor="validation_accuracy", mode="max",
                            file_pattern="best.npz")
                .early_stop("validation_loss", patience=4))
        loop = experiment.attach(loop)
        start = time.perf_counter()
        final = loop.run(lambda epoch: batches(x_train, y_train, batch_size, epoch),
                         epochs=epochs)
        seconds = time.perf_counter() - start

        model_state = final.step_state.model_state
        _, predict = axon_fn.build(model)
        logits = np.concatenate([predict(model_state, x) for x, _ in batches(x_test, y_test, 500)])
        test_accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
        experiment.log_params(test_accuracy=test_accuracy, train_seconds=round(seconds, 1))

        with tempfile.TemporaryDirectory() as scratch:  # log_artifact copies files in
            axon_fn.save(model_state, os.path.join(scratch, "model.npz"))
            experiment.log_artifact(os.path.join(scratch, "model.npz"))
            try:
                plot_metrics(final, os.path.join(scratch, "curves.png"))
                experiment.log_artifact(os.path.join(scratch, "curves.png"))
                plotted = True
            except ImportError:  # matplotlib is the optional "examples" extra
                plotted = False

    best = max(final.history, key=lambda epoch: epoch["validation_accuracy"])
    print(f"\ntest accuracy {test_accuracy:.4f} on {len(x_test)} held-out images after "
          f"{final.epoch} epochs ({seconds:.0f} s; best validation accuracy "
          f"{best['validation_accuracy']:.4f})")
    print(f"run recorded in {experiment.path}/: params.json, epochs.csv, summary.json, "
          f"checkpoints/best.npz, artifacts/model.npz"
          + (", artifacts/curves.png" if plotted else " (pip install matplotlib for a plot)"))
    return {"test_accuracy": test_accuracy, "epochs": final.epoch, "seconds": seconds,
            "path": experiment.path}


if __name__ == "__main__":
    main()
