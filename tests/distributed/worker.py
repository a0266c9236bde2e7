"""One rank of the distributed tests: ``mpiexec -n 2 python worker.py SCENARIO OUT_DIR``.

Each rank writes what it ended with to ``OUT_DIR/rank<r>.json`` (the harness does this on every
rank; axon_fn itself writes only from rank 0, which is one of the things checked).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenarios  # noqa: E402

from axon_fn import distributed  # noqa: E402
from axon_fn.loop import Experiment  # noqa: E402


def summary(state):
    return {"params": {k: v.ravel().tolist() for k, v in scenarios.flat_params(state).items()},
            "history": state.history, "status": state.status, "epoch": state.epoch}


def train(out):
    result = {}
    for opt, compiled in scenarios.CONFIGS:
        result[f"{opt}-{'jit' if compiled else 'eager'}"] = summary(
            scenarios.train(opt, compiled, True))
    result["adam-accumulated-scaled"] = summary(scenarios.train_accumulated_and_scaled(True))
    uneven = scenarios.train_uneven(True)
    result["uneven"] = summary(uneven)
    result["own-rows"] = summary(scenarios.train_uneven(True, own_rows=True))
    result["evaluated"] = scenarios.evaluate(uneven, True)
    return result


def files(out):
    """Checkpoints, an experiment, log lines and progress: only rank 0 may write them."""
    exp = Experiment("run", os.path.join(out, "experiments"), params={"ranks": 2})
    loop = scenarios.resumable(True).checkpoint(os.path.join(out, "checkpoints"))
    loop = loop.log(file=os.path.join(out, "log.txt")).progress(file=sys.stdout, every=1)
    final = exp.attach(loop).run(scenarios.data(), epochs=2)
    return {"files": summary(final), "experiment_path": exp.path}


def resume(out):
    data = scenarios.data()
    whole = scenarios.resumable(True, accumulate_steps=2).checkpoint(
        os.path.join(out, "whole")).run(data, epochs=4)
    halted = (scenarios.resumable(True, accumulate_steps=2)
              .handle("epoch_completed", scenarios.halt_after(2))
              .checkpoint(os.path.join(out, "halted")).run(data, epochs=4))
    resumed = (scenarios.resumable(True, accumulate_steps=2)
               .checkpoint(os.path.join(out, "halted"))
               .from_checkpoint(os.path.join(out, "halted")).run(data, epochs=4))
    return {"whole": summary(whole), "halted": summary(halted), "resumed": summary(resumed)}


def raises(out):
    """Rank 1 fails at its third step; rank 0 would wait for it in the next allreduce."""
    def fail(state):
        if distributed.rank() == 1 and state.total_iterations == 3:
            raise RuntimeError("rank 1 fails on purpose")
        return "continue", state

    scenarios.resumable(True).handle("iteration_completed", fail).run(
        scenarios.data(), epochs=1000)
    return {}


def killed(out):
    """Rank 1 is killed (SIGKILL: no Python code runs) at its third step."""
    import signal

    def die(state):
        if distributed.rank() == 1 and state.total_iterations == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return "continue", state

    scenarios.resumable(True).handle("iteration_completed", die).run(
        scenarios.data(), epochs=1000)
    return {}


def main():
    scenario, out = sys.argv[1], sys.argv[2]
    names = scenario.split(",")
    result = {"rank": distributed.rank(), "world_size": distributed.world_size()}
    for name in names:
        result.update({"train": train, "files": files, "resume": resume,
                       "raises": raises, "killed": killed}[name](out))
    with open(os.path.join(out, f"rank{distributed.rank()}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
