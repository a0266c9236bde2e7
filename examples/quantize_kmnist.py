"""Quantize the Kuzushiji-MNIST CNN to int8 weights and compare it with the float32 model.

It trains the convolutional network of ``examples/kmnist_cnn.py`` (same data split, model,
optimizer and schedule), then calls ``axon_fn.quantize``: every conv and dense kernel becomes
int8 with one float32 scale per output channel, the biases stay float32. It prints the test
accuracy and the parameter bytes of both models, checks that the quantized state saves and
loads, and times one-image and 64-image predictions. About a minute on a 2-core CPU.

    python examples/quantize_kmnist.py

``guides/quantization.md`` explains the scheme; ``benchmarks/bench_quantize.py`` measures the
speed more carefully.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kmnist_cnn import accuracy, batches, cnn, cross_entropy, load_kmnist  # noqa: E402

import axon_fn  # noqa: E402
from axon_fn.loop import trainer  # noqa: E402
from axon_fn.quantization import parameter_bytes  # noqa: E402


def test_accuracy(model, state, images, labels):
    _, predict = axon_fn.build(model)
    logits = np.concatenate([predict(state, x) for x, _ in batches(images, labels, 500)])
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def latency(predict, state, x, seconds=0.3):
    """Median seconds per call over a few timed batches of calls."""
    predict(state, x)
    calls, times = 1, []
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            predict(state, x)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 5 or calls > 1 << 16:
            break
        calls *= 2
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            predict(state, x)
        times.append((time.perf_counter() - start) / calls)
    return sorted(times)[2]


def main(epochs=12, batch_size=64, learning_rate=2e-3, quick=False):
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_kmnist()
    if quick:  # a smoke test: a slice of the data, two epochs
        epochs, (x_train, y_train), (x_val, y_val) = 2, (x_train[:640], y_train[:640]), (
            x_val[:200], y_val[:200])
    model = cnn()
    schedule = axon_fn.optim.schedules.cosine_decay_schedule(
        learning_rate, decay_steps=epochs * -(-len(x_train) // batch_size))
    loop = (trainer(model, cross_entropy, axon_fn.optim.adam(schedule), seed=0)
            .metric(accuracy, "accuracy")
            .validate(model, batches(x_val, y_val, 500))
            .early_stop("validation_loss", patience=4))
    start = time.perf_counter()
    final = loop.run(lambda epoch: batches(x_train, y_train, batch_size, epoch), epochs=epochs)
    train_seconds = time.perf_counter() - start
    state = final.step_state.model_state

    qmodel, qstate = axon_fn.quantize(model, state)
    with tempfile.TemporaryDirectory() as scratch:  # the int8 state saves and loads
        path = os.path.join(scratch, "model_int8.npz")
        axon_fn.save(qstate, path)
        qstate = axon_fn.load(path)
        file_bytes = os.path.getsize(path)

    result = {
        "epochs": final.epoch, "train_seconds": train_seconds,
        "float32_accuracy": test_accuracy(model, state, x_test, y_test),
        "int8_accuracy": test_accuracy(qmodel, qstate, x_test, y_test),
        "float32_bytes": parameter_bytes(state), "int8_bytes": parameter_bytes(qstate),
        "int8_file_bytes": file_bytes,
    }
    _, predict = axon_fn.build(model)
    _, qpredict = axon_fn.build(qmodel)
    for batch in (1, 64):
        x = x_test[:batch]
        seconds = 0.02 if quick else 0.3
        result[f"float32_ms_batch{batch}"] = 1e3 * latency(predict, state, x, seconds)
        result[f"int8_ms_batch{batch}"] = 1e3 * latency(qpredict, qstate, x, seconds)

    drop = 100 * (result["float32_accuracy"] - result["int8_accuracy"])
    ratio = result["int8_bytes"] / result["float32_bytes"]
    print(f"trained {final.epoch} epochs in {train_seconds:.0f} s; "
          f"native kernels: {axon_fn.backend_info()['native_detail']}")
    print(f"{'':8}{'test accuracy':>15}{'parameter bytes':>17}{'batch 1 (ms)':>14}"
          f"{'batch 64 (ms)':>15}")
    for name in ("float32", "int8"):
        print(f"{name:8}{result[name + '_accuracy']:>15.4f}{result[name + '_bytes']:>17,}"
              f"{result[name + '_ms_batch1']:>14.3f}{result[name + '_ms_batch64']:>15.3f}")
    print(f"int8 - float32 accuracy: {-drop:+.2f} points; parameters: {ratio:.3f} of the bytes "
          f"(the .npz file: {file_bytes:,} bytes)")
    return result


if __name__ == "__main__":
    main()
