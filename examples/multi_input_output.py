"""A model with two inputs and two outputs: house prices and market segments.

Each synthetic house has numeric features (size, rooms, age, distance to the centre) and a city
id. The model embeds the city id, joins it with the features, and from a shared trunk predicts
two things at once: the price (a regression head) and the segment, budget / mid-range / luxury
(a classification head). The ``trainer`` gets one loss per head, as a dict matching the
model's outputs, and ``loss_weights`` to balance them. Each city has its own hidden price
level, so the embedding has something to learn: the test figures are compared with a model of
the features alone.

    python examples/multi_input_output.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import evaluator, trainer

CITIES = 12
SEGMENTS = ["budget", "mid-range", "luxury"]


def make_houses(n, seed):
    """({"features", "city"}, {"price", "segment"}) arrays for ``n`` houses. The city price
    levels are the same for every seed (they are the world, the houses are samples of it)."""
    city_level = np.random.default_rng(1234).uniform(-1.5, 1.5, CITIES)
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 4)).astype(np.float32)
    city = rng.integers(0, CITIES, n).astype(np.int32)
    size, rooms, age, distance = features.T
    price = (2.0 * size + 0.5 * rooms - 0.6 * age + np.cos(1.5 * distance) + city_level[city]
             + 0.1 * rng.normal(size=n))
    value = price - 0.5 * age + 0.2 * rng.normal(size=n)
    segment = np.digitize(value, [-0.7, 1.3])              # about a third in each
    inputs = {"features": features, "city": city}
    targets = {"price": price[:, None].astype(np.float32), "segment": segment.astype(np.int32)}
    return inputs, targets


def two_headed_model(use_city=True):
    features = axon_fn.input("features", shape=(None, 4))
    hidden = features >> axon_fn.dense(32, activation="relu")
    if use_city:
        city = axon_fn.input("city", shape=(None,), dtype="int32")
        city_vector = city >> axon_fn.embedding(CITIES, 4, name="city_embedding")
        hidden = axon_fn.concatenate(hidden, city_vector)
    trunk = hidden >> axon_fn.dense(32, activation="relu", name="trunk")
    return axon_fn.container({"price": trunk >> axon_fn.dense(1, name="price"),
                              "segment": trunk >> axon_fn.dense(len(SEGMENTS), name="segment")})


def segment_loss(labels, logits):
    return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


def price_mae(y_true, y_pred):
    return axon_fn.metrics.mean_absolute_error(y_true["price"], y_pred["price"])


def segment_accuracy(y_true, y_pred):
    return axon_fn.metrics.accuracy(y_true["segment"], y_pred["segment"], sparse=True)


def batches(inputs, targets, batch_size, shuffle_seed=None):
    n = len(targets["price"])
    order = np.arange(n)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)

    def take(tree, rows):
        return {name: value[rows] for name, value in tree.items()}
    return [(take(inputs, order[i:i + batch_size]), take(targets, order[i:i + batch_size]))
            for i in range(0, n, batch_size)]


def fit(model, train, test, *, epochs, batch_size, learning_rate, log=True):
    loop = (trainer(model, {"price": "mean_squared_error", "segment": segment_loss}, "adam",
                    learning_rate=learning_rate, loss_weights={"price": 1.0, "segment": 0.5})
            .metric(price_mae, "price_mae").metric(segment_accuracy, "segment_accuracy"))
    if log:
        loop = loop.log("epoch {state.epoch:2d}  loss {loss:.4f}  price MAE {price_mae:.3f}  "
                        "segment accuracy {segment_accuracy:.3f}", filter={"every": 5})
    final = loop.run(lambda epoch: batches(*train, batch_size, shuffle_seed=epoch), epochs=epochs)
    evaluation = (evaluator(model).metric(price_mae, "price_mae")
                  .metric(segment_accuracy, "segment_accuracy"))
    return final.step_state.model_state, evaluation.run([test], final.step_state.model_state)


def main(epochs=30, batch_size=64, learning_rate=3e-3, train_size=3000, quick=False):
    if quick:
        epochs, train_size = 10, 1500
    train = make_houses(train_size, seed=0)
    test = make_houses(1000, seed=1)
    test_inputs, test_targets = test

    start = time.perf_counter()
    model = two_headed_model()
    axon_fn.summary(model, test_inputs)
    state, result = fit(model, train, test, epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate)
    figures = result.history[-1]
    # the same model without the city input, for comparison
    features_only = two_headed_model(use_city=False)
    _, without_city = fit(features_only, ({"features": train[0]["features"]}, train[1]),
                          ({"features": test_inputs["features"]}, test_targets), epochs=epochs,
                          batch_size=batch_size, learning_rate=learning_rate, log=False)
    seconds = time.perf_counter() - start

    out = axon_fn.predict(model, state, {name: v[:3] for name, v in test_inputs.items()})
    for i in range(3):
        print(f"  house {i}: price {out['price'][i, 0]:+.2f} "
              f"(true {test_targets['price'][i, 0]:+.2f})  segment "
              f"{SEGMENTS[int(np.argmax(out['segment'][i]))]} "
              f"(true {SEGMENTS[test_targets['segment'][i]]})")
    baseline_mae = float(np.mean(np.abs(test_targets["price"] - train[1]["price"].mean())))
    majority = np.bincount(test_targets["segment"]).max() / len(test_targets["segment"])
    print(f"test price MAE {figures['price_mae']:.3f} (predicting the mean: {baseline_mae:.3f}; "
          f"without the city: {without_city.history[-1]['price_mae']:.3f})")
    print(f"test segment accuracy {figures['segment_accuracy']:.3f} (the majority class: "
          f"{majority:.3f}; without the city: {without_city.history[-1]['segment_accuracy']:.3f})"
          f"  ({seconds:.1f} s)")
    return {"price_mae": figures["price_mae"], "segment_accuracy": figures["segment_accuracy"],
            "baseline_price_mae": baseline_mae,
            "price_mae_without_city": without_city.history[-1]["price_mae"],
            "segment_accuracy_without_city": without_city.history[-1]["segment_accuracy"],
            "seconds": seconds}


if __name__ == "__main__":
    main()
