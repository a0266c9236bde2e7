"""examples/distributed_kmnist.py on 2 ranks, on a slice of the data (``--quick``)."""

from __future__ import annotations

import json
import pathlib

from .launch import launch_script

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "distributed_kmnist.py"


def test_distributed_kmnist_learns_on_two_ranks(tmp_path):
    figures = tmp_path / "figures.json"
    code, output = launch_script([str(EXAMPLE), "--quick", "--json", str(figures)])
    assert code == 0, output[-4000:]
    result = json.loads(figures.read_text())
    assert result["ranks"] == 2 and result["epochs"] == 2
    assert result["test_accuracy"] > 0.5  # chance is 0.1; 640 images, 2 epochs
    assert output.count("test accuracy") == 1  # rank 0 prints, alone
