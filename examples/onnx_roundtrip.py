"""ONNX both ways: bring a PyTorch model in, fine-tune it, and serve it with onnxruntime.

`data/lenet_pytorch.onnx` is a LeNet that PyTorch exported (`torch.onnx.export`, opset 17,
dynamic batch; made by `tests/onnx/fixtures/make_fixtures.py`, its weights PyTorch's random
initialization). The script

1. imports it with `axon_fn.onnx.import_model` and checks that axon_fn predicts what
   onnxruntime predicts from the same file;
2. trains it on Kuzushiji-MNIST (the bundled images) with the `trainer`, first the whole
   network, then only its last layer with the convolutional body frozen;
3. exports the trained model with `axon_fn.onnx.export`, runs the file in onnxruntime, and
   compares its predictions and accuracy with axon_fn's;
4. imports the exported file again and checks that the parameters came back by value.

    pip install -e ".[onnx]" onnxruntime && python examples/onnx_roundtrip.py

Without onnxruntime the import, training and export still run; the comparisons with
onnxruntime are skipped, and the script says so.
"""

from __future__ import annotations

import pathlib
import tempfile
import time

import numpy as np

import axon_fn
from axon_fn import onnx as axon_onnx
from axon_fn.loop import trainer

HERE = pathlib.Path(__file__).resolve().parent
LENET = HERE / "data" / "lenet_pytorch.onnx"
KMNIST = HERE / "data" / "kmnist"


def load_kmnist():
    """(train, test) pairs of float32 images (N, 1, 28, 28) in [0, 1] (the layout PyTorch
    exported the LeNet for) and int64 labels: 8,000 and 2,000 of the bundled images."""
    images = np.load(KMNIST / "kmnist-test-imgs.npz")["arr_0"]
    labels = np.load(KMNIST / "kmnist-test-labels.npz")["arr_0"]
    order = np.random.default_rng(0).permutation(len(images))
    images = images[order, None].astype(np.float32) / 255.0
    labels = labels[order].astype(np.int64)
    return (images[:8000], labels[:8000]), (images[8000:], labels[8000:])


def batches(images, labels, size, seed):
    order = np.random.default_rng(seed).permutation(len(images))
    return [(images[order[i:i + size]], labels[order[i:i + size]])
            for i in range(0, len(order), size)]


def cross_entropy(labels, logits):
    return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


def accuracy(model, state, images, labels):
    return float(np.mean(np.argmax(axon_fn.predict(model, state, images), -1) == labels))


def onnxruntime_session(path):
    """An onnxruntime session for ``path``, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def train(model, state, data, epochs, learning_rate):
    loop = trainer(model, cross_entropy, "adam", learning_rate=learning_rate)
    return loop.run(data, init_state=state, epochs=epochs).step_state.model_state


def main(epochs=3, quick=False):
    (x_train, y_train), (x_test, y_test) = load_kmnist()
    if quick:  # a smoke test: a slice of the data
        epochs, (x_train, y_train), (x_test, y_test) = 2, (x_train[:2048], y_train[:2048]), (
            x_test[:256], y_test[:256])
    result = {}

    # 1. In: the PyTorch model as an axon_fn graph and ModelState
    model, state = axon_onnx.import_model(LENET)
    print("imported:", axon_fn.get_inputs(model), f"{state.count():,} parameters")
    axon_fn.summary(model, x_test[:1])
    session = onnxruntime_session(LENET)
    if session is not None:
        expected = session.run(None, {"x": x_test[:64]})[0]
        got = axon_fn.predict(model, state, x_test[:64])
        result["import_max_abs_diff"] = float(np.max(np.abs(got - expected)))
        print(f"axon_fn vs onnxruntime on the imported file: max |diff| "
              f"{result['import_max_abs_diff']:.1e}")
    else:
        print("onnxruntime is not installed: skipping the comparisons with it")

    # 2. Train it, then fine-tune only the last layer with the body frozen
    start = time.perf_counter()
    state = train(model, state, lambda epoch: batches(x_train, y_train, 64, epoch), epochs,
                  2e-3)
    result["accuracy"] = accuracy(model, state, x_test, y_test)
    head = list(state.trainable)[-1]
    body_frozen = axon_fn.freeze(state, lambda path, value: not path.startswith(head + "."))
    tuned = train(model, body_frozen, lambda epoch: batches(x_train, y_train, 64, 100 + epoch),
                  1, 5e-4)
    result["body_unchanged"] = all(
        np.array_equal(tuned.frozen[layer][name], value)
        for layer, params in body_frozen.frozen.items() for name, value in params.items())
    result["fine_tuned_accuracy"] = accuracy(model, tuned, x_test, y_test)
    print(f"trained {epochs} epoch(s): test accuracy {result['accuracy']:.4f}; the last layer "
          f"({head}) fine-tuned with the body frozen: {result['fine_tuned_accuracy']:.4f} "
          f"({time.perf_counter() - start:.1f} s)")

    # 3. Out: the trained model as an ONNX file that onnxruntime serves
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "lenet_axon_fn.onnx"
        axon_onnx.export(model, tuned, path, x_test[:8])
        print(f"exported {path.name}: {path.stat().st_size / 1024:.0f} KiB")
        served = onnxruntime_session(path)
        if served is not None:
            logits = served.run(None, {"x": x_test})[0]
            ours = axon_fn.predict(model, tuned, x_test)
            result["export_max_abs_diff"] = float(np.max(np.abs(logits - ours)))
            result["served_accuracy"] = float(np.mean(np.argmax(logits, -1) == y_test))
            print(f"onnxruntime on the exported file: accuracy {result['served_accuracy']:.4f}, "
                  f"max |diff| from axon_fn {result['export_max_abs_diff']:.1e}")

        # 4. And back in: the same parameters, by value
        again, again_state = axon_onnx.import_model(path)
    before = sorted(v.tobytes() for params in tuned.params.values() for v in params.values())
    after = sorted(v.tobytes() for params in again_state.params.values() for v in params.values())
    result["round_trip_same_parameters"] = before == after
    print("re-imported: same parameters by value:", result["round_trip_same_parameters"])
    return result


if __name__ == "__main__":
    main()
