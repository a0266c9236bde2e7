"""An autoencoder: compress 32-dimensional data to a 2-number code and back.

The data are points on a curved 2-D surface embedded in 32 dimensions (each feature is a sine of
a random mix of two hidden coordinates, plus a little noise), so two numbers per point are
enough to describe it, if the network finds them. A dense encoder squeezes each point to a
2-unit bottleneck and a dense decoder expands it back; the loss is the reconstruction error,
compared on held-out points with the baseline that reconstructs every point as the mean.

Every layer is named (``name=...``), and parameters live under their layer's name. So after
training, the encoder alone, ``build(code)`` on the sub-graph that ends at the bottleneck, runs
with the trained state as it is; and a decoder built from a fresh ``input`` with the same
layer names decodes codes. Together they reproduce the full model's output.

    python examples/autoencoder.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import trainer

FEATURES, LATENT, NOISE = 32, 2, 0.05


def make_data(n, seed, mixing_seed=0):
    """(points (n, FEATURES), hidden coordinates (n, LATENT)); the surface is fixed by
    ``mixing_seed``, the points sampled on it by ``seed``."""
    mixing = np.random.default_rng(mixing_seed)
    weights, phases = mixing.normal(size=(LATENT, FEATURES)), mixing.uniform(0, np.pi, FEATURES)
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=(n, LATENT))
    x = np.sin(z @ weights + phases) + NOISE * rng.normal(size=(n, FEATURES))
    return x.astype(np.float32), z.astype(np.float32)


def encoder(x, hidden=64):
    return (x >> axon_fn.dense(hidden, activation="tanh", name="encoder_hidden")
            >> axon_fn.dense(LATENT, name="code"))


def decoder(code, hidden=64):
    return (code >> axon_fn.dense(hidden, activation="tanh", name="decoder_hidden")
            >> axon_fn.dense(FEATURES, name="reconstruction"))


def main(epochs=40, batch_size=64, learning_rate=3e-3, train_size=3000, seed=0, quick=False):
    if quick:
        epochs, train_size = 25, 1000
    x_train, _ = make_data(train_size, seed + 1)
    x_test, z_test = make_data(1000, seed + 2)

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(len(x_train))
        return [(x_train[i], x_train[i]) for i in np.array_split(order, len(order) // batch_size)]

    points = axon_fn.input("points", shape=(None, FEATURES))
    code = encoder(points)
    autoencoder = decoder(code)
    loop = (trainer(autoencoder, "mean_squared_error", "adam", learning_rate=learning_rate,
                    seed=seed)
            .validate(autoencoder, [(x_test, x_test)])
            .log(filter={"every": max(1, epochs // 5)}))
    start = time.perf_counter()
    final = loop.run(batches, epochs=epochs)
    seconds = time.perf_counter() - start
    trained = final.step_state.model_state

    reconstructions = axon_fn.predict(autoencoder, trained, x_test)
    figures = {"mse": float(np.mean((reconstructions - x_test) ** 2)),
               "baseline_mse": float(np.mean((x_train.mean(axis=0) - x_test) ** 2))}
    print(f"test reconstruction MSE {figures['mse']:.4f}  mean baseline "
          f"{figures['baseline_mse']:.4f}  noise floor {NOISE ** 2:.4f}  ({seconds:.1f} s)")

    # The encoder alone: the same nodes, so `build` finds the trained "encoder_hidden" and
    # "code" parameters in the full state (the decoder's are there too, and simply unused).
    _, encode = axon_fn.build(code)
    codes = encode(trained, x_test)
    # A stand-alone decoder: a new input, the same layer names, the same trained state.
    _, decode = axon_fn.build(decoder(axon_fn.input("code", shape=(None, LATENT))))
    roundtrip = float(np.max(np.abs(decode(trained, codes) - reconstructions)))
    # How much of the hidden coordinates a linear map of the code recovers (R^2).
    design = np.column_stack([codes, np.ones(len(codes))])
    fit = design @ np.linalg.lstsq(design, z_test, rcond=None)[0]
    r2 = float(1 - np.sum((fit - z_test) ** 2) / np.sum((z_test - z_test.mean(axis=0)) ** 2))
    print(f"encoder: {x_test.shape} -> codes {codes.shape}; decode(encode(x)) matches the "
          f"autoencoder to {roundtrip:.1e}; a linear map of the codes explains {r2:.1%} of the "
          f"hidden coordinates' variance")
    figures.update(code_shape=codes.shape, roundtrip_error=roundtrip, latent_r2=r2)
    return figures


if __name__ == "__main__":
    main()
