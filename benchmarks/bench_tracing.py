"""Per-primitive cost of axon_fn's dispatch and tracing, against a plain numpy call.

For each primitive on a small float32 array it times: numpy alone, the axon_fn op on numpy
arrays (dispatch), the op on traced values (dispatch + one tape entry), and a full
forward + backward through ``value_and_grad`` of a 50-op chain (per op).

    python benchmarks/bench_tracing.py [--json out.json]
    python benchmarks/bench_tracing.py --against HEAD [--rounds 15]

``--against REV`` compares the working tree with the package as of git revision ``REV`` in
one process: the old package is imported under another name and the two are timed in
interleaved rounds, so the machine's drift (tens of percent on a shared VM) hits both alike;
it reports the medians per case and of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, print_table, time_call, write_json  # noqa: E402

import axon_fn  # noqa: E402
from axon_fn import ops  # noqa: E402
from axon_fn._core import Trace  # noqa: E402

X = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
Y = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)

CASES = {
    "add": (ops.add, np.add, (X, Y), {}),
    "multiply": (ops.multiply, np.multiply, (X, Y), {}),
    "exp": (ops.exp, np.exp, (X,), {}),
    "tanh": (ops.tanh, np.tanh, (X,), {}),
    "maximum": (ops.maximum, np.maximum, (X, Y), {}),
    "matmul": (ops.matmul, np.matmul, (X, Y), {}),
    "sum(axis=1)": (ops.sum, np.sum, (X,), {"axis": 1}),
    "reshape": (ops.reshape, np.reshape, (X,), {"shape": (64,)}),
    "transpose": (ops.transpose, np.transpose, (X,), {}),
}


def measure_primitive(op, reference, args, kwargs):
    trace = Trace()
    traced = [trace.new_tracer(a) for a in args]
    if reference is np.reshape:  # numpy spells the shape positionally
        ref_call = lambda: np.reshape(args[0], kwargs["shape"])  # noqa: E731
    else:
        ref_call = lambda: reference(*args, **kwargs)  # noqa: E731

    def traced_call():
        op(*traced, **kwargs)
        trace.tape.clear()

    numpy_s = time_call(ref_call)[0]
    dispatch_s = time_call(lambda: op(*args, **kwargs))[0]
    traced_s = time_call(traced_call)[0]
    return numpy_s, dispatch_s, traced_s


def chain_cost(length=50):
    """Seconds per op for forward + backward of a chain of elementwise ops."""

    def f(x):
        for _ in range(length // 2):
            x = ops.tanh(x * 0.9)
        return ops.sum(x)

    def plain(x):
        for _ in range(length // 2):
            x = np.tanh(x * 0.9)
        return np.sum(x)

    vg = axon_fn.value_and_grad(f)
    grad_s = time_call(lambda: vg(X))[0] / length
    plain_s = time_call(lambda: plain(X))[0] / length
    return plain_s, grad_s


def import_revision(rev):
    """The ``axon_fn`` package of git revision ``rev``, imported as ``axon_fn_at_rev`` (its
    C extension copied from the working tree)."""
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "axon_fn"],
                             capture_output=True, check=True).stdout
    root = Path(tempfile.mkdtemp(prefix="axon_fn_at_rev_"))
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(root)
    package = root / "axon_fn_at_rev"
    (root / "axon_fn").rename(package)
    for extension in Path(axon_fn.__file__).parent.glob("_native_kernels*"):
        shutil.copy(extension, package)
    for source in package.rglob("*.py"):
        source.write_text(re.sub(r"\baxon_fn\b", "axon_fn_at_rev", source.read_text()))
    sys.path.insert(0, str(root))
    return importlib.import_module("axon_fn_at_rev")


def _traced_calls(package):
    """name -> (traced call, numpy-array call) for every case, on ``package``'s ops."""
    core = importlib.import_module(package.__name__ + "._core")
    calls = {}
    for name, (op, _, args, kwargs) in CASES.items():
        op = getattr(package.ops, op.__name__)
        trace = core.Trace()
        traced = [trace.new_tracer(a) for a in args]

        def traced_call(op=op, traced=traced, kwargs=kwargs, trace=trace):
            op(*traced, **kwargs)
            trace.tape.clear()

        calls[name] = (traced_call, lambda op=op, args=args, kwargs=kwargs: op(*args, **kwargs))
    return calls


def compare(rev, rounds):
    """Interleaved rounds of the revision's and the working tree's calls in one process."""
    old, new = _traced_calls(import_revision(rev)), _traced_calls(axon_fn)

    def best(fn, number=2000):
        return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6

    rows = []
    for name, (op, reference, args, kwargs) in CASES.items():
        if reference is np.reshape:
            ref_call = lambda: np.reshape(args[0], kwargs["shape"])  # noqa: E731
        else:
            ref_call = lambda: reference(*args, **kwargs)  # noqa: E731
        samples = []
        for _ in range(rounds):
            numpy_us = best(ref_call)
            samples.append((best(old[name][0]) - numpy_us, best(new[name][0]) - numpy_us,
                            best(old[name][1]), best(new[name][1])))
        before, after = (statistics.median(s[i] for s in samples) for i in (0, 1))
        ratio = statistics.median(s[1] / s[0] for s in samples)
        dispatch = statistics.median(s[3] / s[2] for s in samples)
        rows.append([name, f"{before:.2f}", f"{after:.2f}", f"{100 * (ratio - 1):+.1f}%",
                     f"{100 * (dispatch - 1):+.1f}%"])
    print(f"tracing overhead (traced op minus numpy), {rev} against the working tree, "
          f"{rounds} interleaved rounds", machine())
    print_table(["primitive", f"{rev} us", "now us", "change (median ratio)",
                 "op(numpy) change"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--against", metavar="REV",
                        help="compare with the package at this git revision, in one process")
    parser.add_argument("--rounds", type=int, default=15, help="rounds for --against")
    args = parser.parse_args(argv)
    if args.against:
        compare(args.against, args.rounds)
        return

    rows, results = [], {}
    for name, (op, reference, op_args, kwargs) in CASES.items():
        numpy_s, dispatch_s, traced_s = measure_primitive(op, reference, op_args, kwargs)
        results[name] = {"numpy_us": numpy_s * 1e6, "dispatch_us": dispatch_s * 1e6,
                         "traced_us": traced_s * 1e6, "overhead_us": (traced_s - numpy_s) * 1e6}
        rows.append([name, f"{numpy_s * 1e6:.2f}", f"{dispatch_s * 1e6:.2f}",
                     f"{traced_s * 1e6:.2f}", f"{(traced_s - numpy_s) * 1e6:+.2f}"])
    plain_s, grad_s = chain_cost()
    results["chain_forward_backward_per_op"] = {"numpy_forward_us": plain_s * 1e6,
                                                "value_and_grad_us": grad_s * 1e6}
    print("axon_fn tracing overhead, float32 (8, 8) arrays", machine())
    print_table(["primitive", "numpy us", "op(numpy) us", "op(traced) us", "tracing overhead us"],
                rows)
    print(f"\n50-op chain, per op: numpy forward {plain_s * 1e6:.2f} us, "
          f"value_and_grad forward+backward {grad_s * 1e6:.2f} us")
    write_json(args.json, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
