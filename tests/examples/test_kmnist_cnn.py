"""The main example trains, validates, checkpoints and records its run (on a slice of data)."""

import json
import os

import axon_fn as ax
from tests.examples._load import load_example


def test_kmnist_cnn_quick_run_learns_and_records(tmp_path, capsys):
    result = load_example("kmnist_cnn").main(runs=str(tmp_path), quick=True)
    assert result["test_accuracy"] > 0.5  # chance is 0.1
    run = result["path"]
    with open(os.path.join(run, "summary.json")) as file:
        summary = json.load(file)
    assert summary["status"] == "completed" and summary["params"]["train"] == 640
    assert "validation_accuracy" in summary["final_metrics"]
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["best.npz", "latest"]
    model = ax.load(os.path.join(run, "artifacts", "model.npz"))
    assert model.trainable["dense_1"]["kernel"].shape == (128, 10)
    assert "test accuracy" in capsys.readouterr().out
