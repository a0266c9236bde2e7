"""examples/quantize_kmnist.py: the int8 model keeps the float model's accuracy in a quarter of
the bytes (on a slice of the data)."""

from tests.examples._load import load_example


def test_quantized_kmnist_keeps_its_accuracy_in_a_quarter_of_the_bytes(capsys):
    result = load_example("quantize_kmnist").main(quick=True)
    assert result["float32_accuracy"] > 0.4  # chance is 0.1
    assert abs(result["int8_accuracy"] - result["float32_accuracy"]) <= 0.02
    assert 0.24 < result["int8_bytes"] / result["float32_bytes"] < 0.27
    assert result["int8_file_bytes"] < 0.3 * result["float32_bytes"]
    assert "int8" in capsys.readouterr().out
