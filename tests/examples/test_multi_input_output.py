"""examples/multi_input_output.py: two inputs, two heads, one loss per head."""

from __future__ import annotations

import axon_fn

from ._load import load_example


def test_both_heads_learn_and_use_the_city():
    result = load_example("multi_input_output").main(quick=True)
    assert result["price_mae"] < 0.2 * result["baseline_price_mae"]
    assert result["segment_accuracy"] >= 0.85                     # chance is 1/3
    # the city embedding carries the hidden price levels
    assert result["price_mae"] < 0.5 * result["price_mae_without_city"]
    assert result["segment_accuracy"] > result["segment_accuracy_without_city"] + 0.05


def test_model_reads_two_inputs_and_returns_two_outputs():
    example = load_example("multi_input_output")
    model = example.two_headed_model()
    assert axon_fn.get_inputs(model) == {"features": (None, 4), "city": (None,)}
    inputs, _ = example.make_houses(5, seed=3)
    out = axon_fn.predict(model, axon_fn.init(model, key=0), inputs)
    assert out["price"].shape == (5, 1) and out["segment"].shape == (5, 3)
