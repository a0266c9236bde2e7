"""Transfer learning: pretrain a network on a task with plenty of data, then reuse its body,
frozen, under a new head for a task with only a few labelled examples.

Both tasks read the same kind of 40-channel signal: four hidden factors mixed in nonlinearly,
over a stronger background from four irrelevant factors. Task A (12,000 examples) has 16
classes, one per direction in factor space; task B (3 classes, a different function of the
same factors) has only 30 labelled examples. The pretrained body has learned to pull the
factors out of the background, so a small head on top of it learns task B from those 30
examples; the same head on a randomly initialized frozen body, or the whole network trained
from scratch on the 30 examples, does much worse. The script also checks that training
the head leaves the frozen body's parameters bit for bit as they were.

    python examples/transfer_learning.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import evaluator, trainer

FACTORS, FEATURES = 4, 40
BODY = ["hidden_1", "hidden_2"]          # the layers that task B reuses


def signals(n, seed):
    """(x, z): ``n`` signals and the factors of interest ``z``. Each signal mixes ``z``
    nonlinearly into 40 channels, over a stronger background made the same way from four
    other, irrelevant factors. The mixtures are the same for every seed."""
    world = np.random.default_rng(1234)

    def mixture(factors):
        return (np.tanh(factors @ world.normal(size=(FACTORS, 32)))
                @ world.normal(size=(32, FEATURES)) / np.sqrt(32))
    rng = np.random.default_rng(seed)
    z, background = rng.normal(size=(n, FACTORS)), rng.normal(size=(n, FACTORS))
    x = mixture(z) + 2.0 * mixture(background) + 0.05 * rng.normal(size=(n, FEATURES))
    return x.astype(np.float32), z


def task_a(z):
    """16 classes: which of 16 fixed directions in factor space is closest to the factors."""
    directions = np.random.default_rng(5).normal(size=(FACTORS, 16))
    return np.argmax(z @ directions, axis=1).astype(np.int32)


def task_b(z):
    """3 classes: which of three mixtures of the factors is largest."""
    weights = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, -1.0, 1.0, 0.5], [-1.0, 0.0, -1.0, 1.0]])
    return np.argmax(z @ weights.T, axis=1).astype(np.int32)


def body(x):
    return (x >> axon_fn.dense(64, activation="relu", name=BODY[0])
            >> axon_fn.dense(32, activation="relu", name=BODY[1]))


def classifier(classes, head_name):
    x = axon_fn.input("x", shape=(None, FEATURES))
    return body(x) >> axon_fn.dense(classes, name=head_name)


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


def train(model, x, y, *, epochs, batch_size, learning_rate, init_state=None, name=""):
    loop = trainer(model, cross_entropy, "adam", learning_rate=learning_rate).metric(
        accuracy, "accuracy")
    if name:
        loop = loop.log(f"{name} epoch {{state.epoch}}  loss {{loss:.4f}}  "
                        f"accuracy {{accuracy:.3f}}", filter={"every": max(1, epochs // 5)})
    final = loop.run(lambda epoch: batches(x, y, batch_size, shuffle_seed=epoch), init_state,
                     epochs=epochs)
    return final.step_state.model_state


def evaluate(model, state, x, y):
    return evaluator(model).metric(accuracy, "accuracy").run([(x, y)], state).history[-1][
        "accuracy"]


def main(pretrain_size=12000, pretrain_epochs=20, few=30, head_epochs=150, learning_rate=3e-3,
         head_learning_rate=1e-2, quick=False):
    if quick:
        pretrain_size, pretrain_epochs = 3000, 6
    x_a, z_a = signals(pretrain_size, seed=0)
    x_b, z_b = signals(few, seed=1)
    x_test, z_test = signals(2000, seed=2)
    start = time.perf_counter()

    # 1. pretrain body + head A on task A
    model_a = classifier(16, "head_a")
    pretrained = train(model_a, x_a, task_a(z_a), epochs=pretrain_epochs, batch_size=64,
                       learning_rate=learning_rate, name="task A")
    accuracy_a = evaluate(model_a, pretrained, x_test, task_a(z_test))
    print(f"task A test accuracy {accuracy_a:.3f} (chance 1/16)")

    # 2. task B: the pretrained body, frozen, under a new head
    model_b = classifier(3, "head_b")
    initial = axon_fn.init(model_b, key=1, initial={name: pretrained[name] for name in BODY})
    initial = axon_fn.freeze(initial, BODY)
    print(f"task B trains {list(initial.trainable)}; frozen: {list(initial.frozen)}")
    settings = {"epochs": head_epochs, "batch_size": few, "learning_rate": head_learning_rate}
    transferred = train(model_b, x_b, task_b(z_b), init_state=initial, name="task B", **settings)
    unchanged = all(np.array_equal(transferred.frozen[name][p], pretrained[name][p])
                    for name in BODY for p in pretrained[name])

    # 3. the comparisons: a random frozen body, and the whole network from scratch
    random_body = axon_fn.freeze(axon_fn.init(model_b, key=1), BODY)
    with_random_body = train(model_b, x_b, task_b(z_b), init_state=random_body, **settings)
    from_scratch = train(model_b, x_b, task_b(z_b), **settings)
    seconds = time.perf_counter() - start

    figures = {"task_a_accuracy": accuracy_a, "body_unchanged": unchanged}
    for label, state in [("pretrained_frozen_body", transferred),
                         ("random_frozen_body", with_random_body),
                         ("from_scratch", from_scratch)]:
        figures[label] = evaluate(model_b, state, x_test, task_b(z_test))
    print(f"frozen body parameters unchanged by fine-tuning: {unchanged}")
    print(f"task B test accuracy with {few} labelled examples (chance 1/3): "
          f"pretrained frozen body {figures['pretrained_frozen_body']:.3f}, "
          f"random frozen body {figures['random_frozen_body']:.3f}, "
          f"from scratch {figures['from_scratch']:.3f}  ({seconds:.1f} s)")
    return {**figures, "seconds": seconds}


if __name__ == "__main__":
    main()
