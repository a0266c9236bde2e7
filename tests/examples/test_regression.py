from ._load import load_example


def test_regression_beats_the_mean_baseline():
    figures = load_example("regression").main(quick=True)
    assert figures["rmse"] < 0.5 * figures["baseline_rmse"]
    assert figures["mae"] < 0.5 * figures["baseline_mae"]
