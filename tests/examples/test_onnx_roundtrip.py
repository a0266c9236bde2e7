"""examples/onnx_roundtrip.py: a PyTorch LeNet in, trained, served by onnxruntime, back in."""

from __future__ import annotations

import pytest

from ._load import load_example

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_imported_lenet_trains_exports_and_round_trips():
    result = load_example("onnx_roundtrip").main(quick=True)
    assert result["import_max_abs_diff"] < 1e-4
    assert result["accuracy"] > 0.45                  # chance is 0.1; two epochs on 2,048 images
    assert result["body_unchanged"] is True
    assert result["export_max_abs_diff"] < 1e-4
    assert abs(result["served_accuracy"] - result["fine_tuned_accuracy"]) <= 1 / 256
    assert result["round_trip_same_parameters"] is True
