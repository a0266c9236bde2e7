"""The mixed-precision example trains the KMNIST CNN under the three precisions (a slice of
the data, one epoch)."""

import pytest

from ._load import load_example

pytest.importorskip("ml_dtypes")


def test_mixed_precision_kmnist_quick_run(capsys):
    results = load_example("mixed_precision_kmnist").main(quick=True)
    assert list(results) == ["float32", "bfloat16", "float16 + dynamic loss scale"]
    for name, figures in results.items():
        assert figures["test_accuracy"] > 0.3, name  # chance is 0.1
        assert figures["logits_dtype"] == "float32" and figures["kernel_dtype"] == "float32"
    assert "points against float32" in capsys.readouterr().out
