"""Data-parallel training: measured throughput on 1 and 2 MPI ranks of this machine, bytes
communicated per step, and an alpha-beta model of ring allreduce that predicts the step time
on 8, 64 and 256 ranks of a cluster network.

Workloads (float32, seeded synthetic data, the same networks as ``bench_train.py``), trained
with ``loop.trainer(..., distributed=True)`` (compiled step, Adam):

* ``mlp``: MLP 784-512-512-10 (ReLU), softmax cross-entropy from logits, global batch 128;
* ``cnn``: LeNet-5 on 28x28x1 (conv 5x5 6, pool, conv 5x5 16, pool, dense 120, 84, 10), global
  batch 64.

Each configuration runs as ``mpiexec -n R python bench_distributed.py --worker ...`` with one
BLAS/OpenMP thread per rank (MPICH's ``-launcher fork``: every rank on this machine). A
worker times ``--steps`` steps after warm-up (median step time over repetitions) and the time
spent inside MPI's allreduce (wrapping ``axon_fn.distributed._mpi_allreduce``); rank 0 prints
JSON. The parent prints the tables and the model (see ``benchmarks/README.md``).

    python benchmarks/bench_distributed.py [--workloads mlp,cnn] [--steps 40] [--reps 5]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

GLOBAL_BATCH = {"mlp": 128, "cnn": 64}

# Cluster networks for the model: alpha = per-message latency (s), beta = seconds per byte
# (1 / bandwidth a rank achieves), gamma = seconds per byte to add two float32 buffers on a core.
NETWORKS = {
    "InfiniBand HDR 100 Gb/s": {"alpha": 2e-6, "beta": 1 / 11e9},
    "Ethernet 25 Gb/s (TCP)": {"alpha": 25e-6, "beta": 1 / 2.5e9},
}
GAMMA = 1 / 5e9
RANKS = (8, 64, 256)


def model(workload):
    import axon_fn

    if workload == "mlp":
        return (axon_fn.input("x", shape=(None, 784)) >> axon_fn.dense(512, activation="relu")
                >> axon_fn.dense(512, activation="relu") >> axon_fn.dense(10))
    return (axon_fn.input("x", shape=(None, 28, 28, 1))
            >> axon_fn.conv(6, 5, activation="relu") >> axon_fn.max_pool(2)
            >> axon_fn.conv(16, 5, activation="relu") >> axon_fn.max_pool(2)
            >> axon_fn.flatten() >> axon_fn.dense(120, activation="relu")
            >> axon_fn.dense(84, activation="relu") >> axon_fn.dense(10))


def worker(workload, steps, reps, batch):
    import axon_fn
    from axon_fn import distributed
    from axon_fn.loop import trainer

    ranks = distributed.init()
    comm = {"seconds": 0.0, "bytes": 0, "calls": 0}
    reduce = distributed._mpi_allreduce

    def timed(chunk, op):
        start = time.perf_counter()
        reduce(chunk, op)
        comm["seconds"] += time.perf_counter() - start
        comm["bytes"] += chunk.nbytes
        comm["calls"] += 1

    distributed._mpi_allreduce = timed
    rng = np.random.default_rng(0)
    shape = (batch, 784) if workload == "mlp" else (batch, 28, 28, 1)
    data = [(rng.normal(size=shape).astype(np.float32), rng.integers(0, 10, batch))
            for _ in range(8)]

    def loss(labels, logits):
        return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True,
                                                         sparse=True)

    times = []

    def stamp(state):
        times.append(time.perf_counter())
        return "continue", state

    loop = trainer(model(workload), loss, "adam", compile=True, distributed=True).handle(
        "iteration_completed", stamp)
    state = loop.run(data, epochs=2)  # warm-up: records the compiled step
    params = sum(int(np.size(v)) for layer in state.step_state.model_state.trainable.values()
                 for v in layer.values())
    samples, comm_per_step = [], []
    for _ in range(reps):
        distributed.barrier()
        times.clear()
        comm.update(seconds=0.0, bytes=0, calls=0)
        start = time.perf_counter()
        state = loop.run(data, state.step_state, epochs=-(-steps // len(data)))
        elapsed = time.perf_counter() - start
        n = len(times)
        samples.append(elapsed / n)
        comm_per_step.append((comm["seconds"] / n, comm["bytes"] / n, comm["calls"] / n))
    # the allreduce alone, ranks in step (after a barrier): the transfer cost without the
    # waiting for a slower rank that the in-step figure includes
    buffer = np.zeros(max(1, int(comm_per_step[-1][1]) // 4), np.float32)
    pure = []
    for _ in range(20 if ranks > 1 else 0):
        distributed.barrier()
        start = time.perf_counter()
        reduce(buffer, "sum")
        pure.append(time.perf_counter() - start)
    if distributed.rank() == 0:
        seconds = statistics.median(samples)
        print(json.dumps({
            "workload": workload, "ranks": ranks, "global_batch": batch, "params": params,
            "step_seconds": seconds, "spread": [min(samples), max(samples)],
            "images_per_second": batch / seconds,
            "allreduce_seconds": statistics.median(c[0] for c in comm_per_step),
            "allreduce_bytes": comm_per_step[-1][1], "allreduce_calls": comm_per_step[-1][2],
            "pure_allreduce_seconds": statistics.median(pure) if pure else 0.0,
        }))


def launch(workload, ranks, steps, reps, batch=None):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               AXON_FN_NUM_THREADS="1")
    command = [mpiexec, "-launcher", "fork", "-n", str(ranks), sys.executable, __file__,
               "--worker", workload, "--steps", str(steps), "--reps", str(reps),
               "--batch", str(batch or GLOBAL_BATCH[workload])]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ring_allreduce_seconds(nbytes, ranks, alpha, beta, gamma=GAMMA):
    """Ring allreduce (reduce-scatter then allgather): 2(p-1) messages of n/p bytes each, and
    (p-1)/p n bytes of additions: 2(p-1) alpha + 2 (p-1)/p n beta + (p-1)/p n gamma."""
    if ranks == 1:
        return 0.0
    share = (ranks - 1) / ranks * nbytes
    return 2 * (ranks - 1) * alpha + 2 * share * beta + share * gamma


def predict(measured_one_rank, nbytes, per_rank_batch, ranks, network):
    """Weak scaling: each rank keeps ``per_rank_batch`` rows (global batch = ranks x that); a
    step is the compute of one rank plus an allreduce that does not overlap it (axon_fn reduces
    after the whole backward pass)."""
    compute = measured_one_rank
    comm = ring_allreduce_seconds(nbytes, ranks, **network)
    step = compute + comm
    return {"ranks": ranks, "step_ms": 1e3 * step, "allreduce_ms": 1e3 * comm,
            "images_per_second": ranks * per_rank_batch / step,
            "efficiency": compute / step}


def main():
    parser = argparse.ArgumentParser(description="distributed training benchmark")
    parser.add_argument("--worker", default=None)
    parser.add_argument("--workloads", default="mlp,cnn")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.reps, args.batch)
        return

    from _common import machine, print_table

    print(json.dumps(machine()))
    results, rows = {}, []
    for workload in args.workloads.split(","):
        for ranks in (1, 2):
            r = launch(workload, ranks, args.steps, args.reps)
            results[f"{workload}/{ranks}"] = r
            rows.append([workload, ranks, r["global_batch"], f"{1e3 * r['step_seconds']:.2f}",
                         f"{r['images_per_second']:.0f}",
                         f"{1e3 * r['allreduce_seconds']:.3f}",
                         f"{1e3 * r['pure_allreduce_seconds']:.3f}",
                         f"{r['allreduce_bytes'] / 1e6:.3f}", f"{r['allreduce_calls']:.0f}"])
        # one rank at the per-rank batch of 2 ranks: the compute of a rank, for the model
        half = launch(workload, 1, args.steps, args.reps, GLOBAL_BATCH[workload] // 2)
        results[f"{workload}/1/half"] = half
    print("\nMeasured on this machine (one thread per rank, global batch split over the ranks)")
    print_table(["workload", "ranks", "batch", "step ms", "images/s", "allreduce in step ms",
                 "allreduce alone ms", "MB reduced/step", "calls/step"], rows)
    for workload in args.workloads.split(","):
        one, two = results[f"{workload}/1"], results[f"{workload}/2"]
        print(f"{workload}: 2 ranks give {two['images_per_second'] / one['images_per_second']:.2f}"
              f"x the images/s of 1")

    prediction_rows, predictions = [], {}
    for workload in args.workloads.split(","):
        two = results[f"{workload}/2"]
        nbytes = two["allreduce_bytes"]
        per_rank = GLOBAL_BATCH[workload] // 2
        # the compute of one rank: one process (one thread) at the per-rank batch
        compute = results[f"{workload}/1/half"]["step_seconds"]
        for name, network in NETWORKS.items():
            for ranks in RANKS:
                p = predict(compute, nbytes, per_rank, ranks, network)
                predictions[f"{workload}/{name}/{ranks}"] = p
                prediction_rows.append([workload, name, ranks, per_rank * ranks,
                                        f"{p['step_ms']:.2f}", f"{p['allreduce_ms']:.3f}",
                                        f"{p['images_per_second']:.0f}",
                                        f"{100 * p['efficiency']:.0f}%"])
    print("\nModel: ring allreduce, alpha-beta (weak scaling: per-rank batch fixed)")
    print_table(["workload", "network", "ranks", "global batch", "step ms", "allreduce ms",
                 "images/s", "efficiency"], prediction_rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "measured": results, "model": predictions,
                       "networks": NETWORKS, "gamma": GAMMA}, f, indent=2)


if __name__ == "__main__":
    main()
