from ._load import load_example


def test_lstm_beats_repeating_the_last_value():
    figures = load_example("time_series").main(quick=True)
    assert figures["mse"] < 0.5 * figures["baseline_mse"]
