from ._load import load_example


def test_xor_learns_all_four_points():
    figures = load_example("xor").main(quick=True)
    assert figures["accuracy"] == 1.0
    assert figures["loss"] < 0.1
