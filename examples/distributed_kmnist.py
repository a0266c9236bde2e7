"""Data-parallel training of the Kuzushiji-MNIST CNN of ``kmnist_cnn.py`` over MPI ranks.

The same script runs alone or as N ranks; every rank builds the same global batches of 64
images, trains on its rows of each (``rank::N``), and averages gradients with the others every
step, so N ranks train the model one process would, N times faster at best:

    pip install -e ".[mpi]"
    python examples/distributed_kmnist.py                   # one process
    mpiexec -n 2 python examples/distributed_kmnist.py      # two ranks (MPICH: add
                                                            # -launcher fork on one machine)

Give each rank one BLAS thread (``OMP_NUM_THREADS=1``) when the ranks share a machine. Only
rank 0 prints, shows progress and writes the checkpoint; ``--quick`` trains on a slice of the
data for two epochs (a smoke test).

On the 2-core VM of ``benchmarks/README.md`` (12 epochs, the same seeds): one process reached
a test accuracy of 0.9540, two ranks 0.9545 (their dropout masks differ, so the runs are not
bit-equal). The machine was shared with other jobs, so the times of those runs say nothing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from kmnist_cnn import accuracy, batches, cnn, cross_entropy, load_kmnist  # noqa: E402

import axon_fn  # noqa: E402
from axon_fn import distributed  # noqa: E402
from axon_fn.loop import evaluator, trainer  # noqa: E402


def main(epochs=12, batch_size=64, learning_rate=2e-3, quick=False, checkpoints=None):
    ranks = distributed.init()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_kmnist()
    if quick:
        epochs, (x_train, y_train), (x_val, y_val) = 2, (x_train[:640], y_train[:640]), (
            x_val[:200], y_val[:200])
    model = cnn()
    schedule = axon_fn.optim.schedules.cosine_decay_schedule(
        learning_rate, decay_steps=epochs * -(-len(x_train) // batch_size))
    loop = (trainer(model, cross_entropy, axon_fn.optim.adam(schedule), seed=0,
                    distributed=True)          # alone, distributed=True changes nothing
            .metric(accuracy, "accuracy")
            # every rank validates on all of it: the parameters are the same on every rank,
            # so early stopping decides the same everywhere
            .validate(model, batches(x_val, y_val, 500))
            .progress()
            .early_stop("validation_loss", patience=4))
    if checkpoints:
        loop = loop.checkpoint(checkpoints, monitor="validation_accuracy", mode="max",
                               file_pattern="best.npz")  # written by rank 0 only
    start = time.perf_counter()
    # the same global batches on every rank (shuffled by the epoch); each uses its rows
    final = loop.run(lambda epoch: batches(x_train, y_train, batch_size, epoch), epochs=epochs)
    seconds = time.perf_counter() - start

    # the test set split over the ranks too: each predicts its rows, the metric sees them all
    tested = (evaluator(model, distributed=True).metric(accuracy, "accuracy")
              .run(batches(x_test, y_test, 500), final.step_state.model_state))
    result = {"ranks": ranks, "test_accuracy": float(tested.history[-1]["accuracy"]),
              "epochs": final.epoch, "seconds": seconds,
              "images_per_second": final.epoch * len(x_train) / seconds}
    if distributed.rank() == 0:
        print(f"\n{ranks} rank(s): test accuracy {result['test_accuracy']:.4f} after "
              f"{final.epoch} epochs in {seconds:.0f} s "
              f"({result['images_per_second']:.0f} training images/s)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checkpoints", default=None, help="a directory for best.npz")
    parser.add_argument("--json", default=None, help="rank 0 writes the figures here")
    args = parser.parse_args()
    figures = main(epochs=args.epochs, quick=args.quick, checkpoints=args.checkpoints)
    if args.json and distributed.rank() == 0:
        with open(args.json, "w") as f:
            json.dump(figures, f)
