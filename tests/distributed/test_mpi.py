"""Data-parallel training on 2 MPI ranks (``mpiexec -n 2``) against one process.

One launch runs every training scenario (``worker.py``); the tests read what each rank wrote.
Skipped when mpi4py or mpiexec is not installed in this environment.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from . import scenarios
from .launch import launch

# float32 rounding: the ranks sum two half-batch gradients where one process sums one batch
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    code, output, _ = launch("train,files,resume", out)
    assert code == 0, output[-4000:]
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return out, output, results


def relative_difference(a, b):
    """max |a - b| / max |b| over one parameter array."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64).ravel()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def test_two_ranks_form_a_world(ranks):
    _, _, results = ranks
    assert [(r["rank"], r["world_size"]) for r in results] == [(0, 2), (1, 2)]


@pytest.mark.parametrize("opt,compiled", scenarios.CONFIGS)
def test_two_ranks_match_one_process(ranks, opt, compiled):
    """Global batch 64 over 2 ranks for 20 steps ends where one process with batch 64 does."""
    _, _, results = ranks
    key = f"{opt}-{'jit' if compiled else 'eager'}"
    reference = scenarios.flat_params(scenarios.train(opt, compiled, False))
    for result in results:
        params = result[key]["params"]
        assert sorted(params) == sorted(reference)
        for name, expected in reference.items():
            assert relative_difference(params[name], expected) <= TOLERANCE, (key, name)
    # the ranks agree exactly: they applied the same updates
    assert results[0][key]["params"] == results[1][key]["params"]


def test_accumulation_and_loss_scaling_match_one_process(ranks):
    _, _, results = ranks
    reference = scenarios.train_accumulated_and_scaled(False)
    expected = scenarios.flat_params(reference)
    for result in results:
        got = result["adam-accumulated-scaled"]
        for name, value in expected.items():
            assert relative_difference(got["params"][name], value) <= TOLERANCE, name
        assert [h["accuracy"] for h in got["history"]] == \
            [h["accuracy"] for h in reference.history]
    assert results[0]["adam-accumulated-scaled"] == results[1]["adam-accumulated-scaled"]


def test_uneven_shards_and_own_rows_match_one_process(ranks):
    """Batches of 63 rows (32 + 31): the rows-weighted mean is the full-batch gradient; ranks
    handed their own rows (shard=False) train the same."""
    _, _, results = ranks
    reference = scenarios.train_uneven(False)
    expected = scenarios.flat_params(reference)
    for result in results:
        for key in ("uneven", "own-rows"):
            for name, value in expected.items():
                assert relative_difference(result[key]["params"][name], value) <= TOLERANCE
        assert result["own-rows"]["params"] == result["uneven"]["params"]
        evaluated = scenarios.evaluate(reference, False)
        assert result["evaluated"]["accuracy"] == evaluated["accuracy"]
        assert result["evaluated"]["loss"] == pytest.approx(evaluated["loss"], rel=TOLERANCE)


@pytest.mark.parametrize("opt,compiled", scenarios.CONFIGS)
def test_history_is_the_same_on_every_rank(ranks, opt, compiled):
    _, _, results = ranks
    key = f"{opt}-{'jit' if compiled else 'eager'}"
    assert results[0][key]["history"] == results[1][key]["history"]
    reference = scenarios.train(opt, compiled, False).history
    for got, expected in zip(results[0][key]["history"], reference):
        assert got["loss"] == pytest.approx(expected["loss"], rel=TOLERANCE)
        assert got["accuracy"] == expected["accuracy"]  # metrics see the whole global batch


def test_only_rank_zero_writes_files(ranks):
    out, output, results = ranks
    assert sorted(os.listdir(out / "checkpoints")) == ["checkpoint_1_4.npz",
                                                       "checkpoint_2_4.npz", "latest"]
    assert os.listdir(out / "experiments") == ["run"]  # no "run-1" from rank 1
    assert sorted(os.listdir(out / "experiments" / "run")) == ["epochs.csv", "params.json",
                                                               "summary.json"]
    with open(out / "log.txt") as f:
        assert len(f.read().splitlines()) == 2  # one line per epoch, not one per rank
    assert output.count("epoch 1/2 done") == 1  # progress from rank 0 only
    # rank 1 kept the same loop state (handler data, history) without writing
    assert results[0]["files"] == results[1]["files"]
    assert results[1]["experiment_path"] == str(out / "experiments" / "run")


def test_resume_after_a_halt_gives_the_uninterrupted_result(ranks):
    """Batch norm, dropout and gradient accumulation: halted after 2 of 4 epochs, resumed from
    rank 0's checkpoint on both ranks, the run ends exactly where the uninterrupted one does."""
    _, _, results = ranks
    for result in results:
        assert result["halted"]["status"] == "halted" and result["halted"]["epoch"] == 2
        assert result["resumed"]["epoch"] == 4
        assert result["resumed"]["params"] == result["whole"]["params"]
        assert result["resumed"]["history"] == result["whole"]["history"]
    assert results[0]["whole"]["params"] == results[1]["whole"]["params"]


def test_a_raising_rank_ends_the_job(tmp_path):
    code, output, seconds = launch("raises", tmp_path, timeout=60)
    assert code != 0
    assert seconds < 30
    assert "rank 1 fails on purpose" in output
    assert not os.path.exists(tmp_path / "rank0.json")


def test_a_killed_rank_ends_the_job(tmp_path):
    """No exception hook runs in a killed process: the launcher notices and ends the rest."""
    code, output, seconds = launch("killed", tmp_path, timeout=60)
    assert code != 0
    assert seconds < 30
    assert not os.path.exists(tmp_path / "rank0.json")
