"""Inference speed of int8 weight-only quantized models (``axon_fn.quantize``) against float32.

Models: a dense MLP 784-512-512-10 (ReLU) and the KMNIST CNN of ``examples/kmnist_cnn.py``
(conv 32 -> pool -> conv 64 -> pool -> dense 128 -> dense 10), with their initial parameters
(speed does not depend on the values). For each model and batch size (1 and 64) it times
``predict_fn(state, x)`` of the float32 model and of the quantized one: the median of several
timed batches of calls (``time.perf_counter``), each batch long enough to time. A second table
times one layer's product alone, 784x512 (the MLP's first layer) and 512x512: numpy's float32
``x @ w + b`` against the int8 kernel (``axon_fn.ops.quantized.quantized_dense``) on each
instruction set the CPU has, and against the numpy fallback (``x @ q.astype(float32) * scale``).

    python benchmarks/bench_quantize.py [--repeats 7] [--rounds 3] [--json out.json]

Model rows: the median over rounds of each round's median (in brackets the fastest timed
batch); the rounds interleave float32 and int8, so both see the same drift of a shared VM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from _common import machine, print_table, time_call, write_json  # noqa: E402
from kmnist_cnn import cnn  # noqa: E402 - the example's KMNIST CNN, the model measured here

import axon_fn  # noqa: E402
from axon_fn import _native_quantize  # noqa: E402
from axon_fn._core import PRIMITIVES  # noqa: E402
from axon_fn.quantization import parameter_bytes  # noqa: E402


def mlp():
    x = axon_fn.input("x", shape=(None, 784))
    return (x >> axon_fn.dense(512, activation="relu") >> axon_fn.dense(512, activation="relu")
            >> axon_fn.dense(10))


def model_rows(repeats, rounds, rng):
    """Each round times every (model, batch, float32/int8) once, back to back: the VM's speed
    drifts over minutes, and pooling rounds lets the compared rows drift together."""
    cases = []
    for name, model, shape in (("mlp 784-512-512-10", mlp(), (784,)),
                               ("kmnist cnn", cnn(), (28, 28, 1))):
        data = rng.uniform(0, 1, (64, *shape)).astype(np.float32)
        state = axon_fn.init(model, data[:1], key=0)
        qmodel, qstate = axon_fn.quantize(model, state)
        _, predict = axon_fn.build(model)
        _, qpredict = axon_fn.build(qmodel)
        for batch in (1, 64):
            cases.append((name, batch, (predict, state), (qpredict, qstate), data[:batch],
                          parameter_bytes(state), parameter_bytes(qstate)))
    medians = {i: ([], []) for i in range(len(cases))}
    minima = {i: ([], []) for i in range(len(cases))}
    for _ in range(rounds):
        for i, (_, _, f32, i8, x, _, _) in enumerate(cases):
            for j, (fn, st) in enumerate((f32, i8)):
                median, low, _ = time_call(lambda: fn(st, x), repeats=repeats)
                medians[i][j].append(median)
                minima[i][j].append(low)
    rows, results = [], []
    for i, (name, batch, _, _, _, f32_bytes, i8_bytes) in enumerate(cases):
        f32, i8 = float(np.median(medians[i][0])), float(np.median(medians[i][1]))
        f32_min, i8_min = min(minima[i][0]), min(minima[i][1])
        results.append({"model": name, "batch": batch, "float32_s": f32, "int8_s": i8,
                        "float32_min_s": f32_min, "int8_min_s": i8_min,
                        "float32_bytes": f32_bytes, "int8_bytes": i8_bytes})
        rows.append((name, batch, f"{f32 * 1e6:.1f} ({f32_min * 1e6:.1f})",
                     f"{i8 * 1e6:.1f} ({i8_min * 1e6:.1f})", f"{f32 / i8:.2f}x",
                     f"{f32_bytes:,}", f"{i8_bytes:,}"))
    return rows, results


def kernel_rows(repeats, rng):
    rows, results = [], []
    prim = PRIMITIVES["quantized_dense"]
    best = _native_quantize.set_isa(None)
    try:
        for k, n in ((784, 512), (512, 512)):
            w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
            b = np.zeros(n, np.float32)
            q, scale = axon_fn.quantization.quantize_array(w)
            for batch in (1, 64):
                x = rng.standard_normal((batch, k)).astype(np.float32)
                entry = {"shape": f"{batch}x{k} @ {k}x{n}",
                         "float32_numpy_s": time_call(lambda: x @ w + b, repeats=repeats)[0],
                         "int8_numpy_fallback_s": time_call(
                             lambda: prim.numpy_cpu(x, q, scale, b), repeats=repeats)[0]}
                for isa in range(best + 1) if best is not None else ():
                    _native_quantize.set_isa(isa)
                    entry[f"int8_{_native_quantize.ISA_NAMES[isa]}_s"] = time_call(
                        lambda: _native_quantize.quantized_dense(x, q, scale, b),
                        repeats=repeats)[0]
                _native_quantize.set_isa(None)
                results.append(entry)
                rows.append((entry["shape"], *(f"{v * 1e6:.1f}" for key, v in entry.items()
                                               if key != "shape")))
    finally:
        _native_quantize.set_isa(None)
    names = ["float32 numpy", "int8 numpy fallback"] + [
        f"int8 {_native_quantize.ISA_NAMES[i]}" for i in range(best + 1)] if best is not None \
        else ["float32 numpy", "int8 numpy fallback"]
    return names, rows, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3,
                        help="times every model row this many times, interleaved, and pools")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    info = machine()
    isa = _native_quantize.isa()
    info["int8_kernel"] = _native_quantize.ISA_NAMES.get(isa, "not built (numpy fallback)")
    print(f"machine: {info}")

    rows, model_results = model_rows(args.repeats, args.rounds, rng)
    print("\npredict_fn per call (microseconds: median (fastest) over the rounds)")
    print_table(["model", "batch", "float32 us", "int8 us", "speed-up", "float32 bytes",
                 "int8 bytes"], rows)

    names, rows, kernel_results = kernel_rows(args.repeats, rng)
    print("\none layer's product x @ W + b (microseconds, median)")
    print_table(["product", *(f"{name} us" for name in names)], rows)
    write_json(args.json, {"machine": info, "models": model_results, "kernels": kernel_results})


if __name__ == "__main__":
    main()
