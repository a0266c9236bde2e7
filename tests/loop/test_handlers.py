"""The built-in handlers: log, progress, validate, monitor, early_stop, reduce_lr_on_plateau and
nan_guard (checkpoints are in test_checkpoint.py)."""

import io
import sys
import types

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError
from axon_fn.loop import Loop, evaluator, trainer

rng = np.random.default_rng(7)
X = rng.standard_normal((32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
BATCHES = [(X[:16], Y[:16]), (X[16:], Y[16:])]


def regression():
    return ax.input("x", shape=(None, 3)) >> ax.dense(4, activation="tanh") >> ax.dense(1)


def scripted(values, name="value"):
    """A loop whose metric ``name`` is, in epoch e, the number ``values[e]``."""
    loop = Loop(lambda batch, state: batch, lambda _: None).metric(lambda v: v, name)
    return loop, (lambda epoch: [values[epoch]])


# log -----------------------------------------------------------------------------------------

def test_log_default_format_string_function_and_filters(capsys):
    loop, data = scripted([3.0, 2.0, 1.0])
    loop.log().run(data, epochs=3)
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1/3  value 3.0000", "epoch 2/3  value 2.0000", "epoch 3/3  value 1.0000"]
    loop.log("{state.epoch}:{value:.0f}", filter={"every": 2}).run(data, epochs=3)
    assert capsys.readouterr().out == "2:2\n"
    loop.log(lambda s: f"it {s.iteration}", event="iteration_completed").run(data, epochs=1)
    assert capsys.readouterr().out == "it 1\n"
    loop.log(event="iteration_completed").run(lambda e: [1.0, 2.0], epochs=1)
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1/1  iteration 1/2  value 1.0000", "epoch 1/1  iteration 2/2  value 1.5000"]


def test_log_to_a_file_and_a_stream(tmp_path):
    loop, data = scripted([3.0, 2.0])
    path = tmp_path / "train.log"
    loop.log(file=path).run(data, epochs=2)
    loop.log(file=str(path)).run(data, epochs=1)
    assert path.read_text().splitlines() == ["epoch 1/2  value 3.0000", "epoch 2/2  value 2.0000",
                                             "epoch 1/1  value 3.0000"]
    stream = io.StringIO()
    loop.log(file=stream, event="completed").run(data, epochs=1)
    assert stream.getvalue() == "epoch 1/1  value 3.0000\n"
    with pytest.raises(AxonTypeError, match="`message` must be None"):
        loop.log(42)


# progress ------------------------------------------------------------------------------------

def test_progress_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss")
    loop.progress(file=out).run([float(i) for i in range(20)], epochs=2)
    lines = out.getvalue().splitlines()
    # five lines per epoch of 20 (every 4 iterations) and an epoch summary
    assert len(lines) == 12
    assert lines[0].startswith("epoch 1/2  iteration 4/20  loss 1.5000  ")
    assert "it/s  ETA " in lines[0]
    assert lines[5].startswith("epoch 1/2 done in ") and lines[5].endswith("loss 9.5000")
    unknown_length = io.StringIO()
    loop.progress(file=unknown_length, every=3).run(lambda e: iter([1.0] * 7))
    lines = unknown_length.getvalue().splitlines()
    assert [line.split("  ")[1] for line in lines[:2]] == ["iteration 3", "iteration 6"]
    assert "ETA" not in lines[0]


class _FakeBar:
    made = []

    def __init__(self, total, file, leave, desc):
        self.total, self.desc, self.n, self.closed, self.postfix = total, desc, 0, False, None
        _FakeBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix(self, values, refresh):
        self.postfix = dict(values)

    def close(self):
        self.closed = True


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_uses_tqdm_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=_FakeBar))
    _FakeBar.made = []
    loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss")
    loop.progress(file=_Terminal()).run([1.0, 3.0, 5.0], epochs=2)
    assert [(bar.desc, bar.total, bar.n, bar.closed) for bar in _FakeBar.made] == [
        ("epoch 1/2", 3, 3, True), ("epoch 2/2", 3, 3, True)]
    assert _FakeBar.made[0].postfix == {"loss": 3.0}
    _FakeBar.made = []
    loop.progress(file=_Terminal(), bar=False).run([1.0])
    assert _FakeBar.made == []


def test_progress_bar_without_tqdm_and_bad_options(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    loop = Loop(lambda b, s: b, lambda _: None)
    out = _Terminal()
    loop.progress(file=out).run([1.0])  # falls back to plain lines on a terminal
    assert "done in" in out.getvalue()
    with pytest.raises(InvalidArgumentError, match="bar=True needs the tqdm package"):
        loop.progress(file=out, bar=True).run([1.0])
    with pytest.raises(InvalidArgumentError, match="`every` must be a positive int"):
        loop.progress(every=0)
    with pytest.raises(InvalidArgumentError, match="`bar` must be None, True or False"):
        loop.progress(bar="yes")


# validate ------------------------------------------------------------------------------------

def test_validate_merges_validation_metrics_into_metrics_and_history():
    model = regression()
    held_out = [(X[:8], Y[:8]), (X[8:], Y[8:])]
    loop = trainer(model, "mean_squared_error", "sgd").metric(
        lambda y, p: float(np.mean(np.abs(y - p))), "mae").validate(model, held_out)
    seen = []
    loop = loop.handle("epoch_completed", lambda s: (seen.append(dict(s.metrics)), ("continue", s))[1])
    final = loop.run(BATCHES, epochs=2)
    assert sorted(final.history[-1]) == ["loss", "mae", "validation_loss", "validation_mae"]
    assert seen[-1] == final.history[-1]
    expected = evaluator(model).metric(lambda y, p: float(ax.losses.mean_squared_error(y, p)),
                                       "loss").run(held_out, final.step_state.model_state)
    assert final.history[-1]["validation_loss"] == pytest.approx(expected.history[0]["loss"])


def test_validate_with_given_metrics_prefix_and_every_n_iterations():
    model = ax.input("x", shape=(None, 3)) >> ax.dense(2) >> ax.softmax()
    labels = (X[:, 0] > 0).astype(np.int32)
    loop = trainer(model, lambda y, p: ax.losses.categorical_cross_entropy(y, p, sparse=True),
                   "adam", learning_rate=0.1)
    checked = []
    loop = loop.validate(model, [(X, labels)], metrics=[sparse_accuracy],
                         event="iteration_completed", filter={"every": 2}, prefix="val_")
    loop = loop.handle("iteration_completed",
                       lambda s: (checked.append("val_sparse_accuracy" in s.metrics),
                                  ("continue", s))[1])
    final = loop.run([(X[:16], labels[:16]), (X[16:], labels[16:])], epochs=20)
    # every second iteration; an epoch's metrics start afresh, so it shows at its 2nd batch
    assert checked[:4] == [False, True, False, True]
    assert final.history[-1]["val_sparse_accuracy"] > 0.9


def sparse_accuracy(y_true, y_pred):
    return ax.metrics.accuracy(y_true, y_pred, sparse=True)


def test_validate_errors():
    model = regression()
    loop = Loop(lambda b, s: s, lambda init: init)
    with pytest.raises(InvalidArgumentError, match="no metric to compute"):
        loop.validate(model, BATCHES)
    loop = loop.validate(model, BATCHES, metrics=["mean_absolute_error"])
    with pytest.raises(AxonTypeError, match="must be a ModelState or have a `model_state`"):
        loop.run([1], init_state=3)


# monitor, early_stop, reduce_lr_on_plateau ---------------------------------------------------

def test_monitor_calls_after_patience_then_waits_again():
    loop, data = scripted([5.0, 4.0, 4.0, 4.5, 4.2, 3.0, 3.5, 3.6, 3.7])
    calls = []
    loop = loop.monitor("value", lambda s: (calls.append(s.epoch), ("continue", s))[1],
                        patience=1)
    final = loop.run(data, epochs=9)
    assert calls == [4, 8]  # two epochs without improving each time
    assert final.handler_data["monitor_value"] == {"best": 3.0, "best_epoch": 6, "wait": 1}
    maximize = scripted([1.0, 2.0, 2.05, 1.0])[0].monitor(
        "value", lambda s: (calls.append(-s.epoch), ("continue", s))[1], mode="max",
        min_delta=0.1)
    calls.clear()
    maximize.run(lambda e: [[1.0, 2.0, 2.05, 1.0][e]], epochs=4)
    assert calls == [-3, -4]  # 2.05 is not 0.1 better than 2.0


def test_monitor_errors():
    loop, data = scripted([1.0])
    with pytest.raises(InvalidArgumentError, match="no metric 'loss'.*metrics are: value"):
        loop.monitor("loss", lambda s: ("continue", s)).run(data)
    with pytest.raises(InvalidArgumentError, match=r"validation_loss.*add loop.validate"):
        loop.early_stop("validation_loss").run(data)
    with pytest.raises(AxonTypeError, match="must return \\(status, state\\)"):
        scripted([1.0, 2.0])[0].monitor("value", lambda s: None).run(
            lambda e: [[1.0, 2.0][e]], epochs=2)
    with pytest.raises(InvalidArgumentError, match="`mode` must be 'min' or 'max'"):
        loop.monitor("value", lambda s: ("continue", s), mode="up")
    with pytest.raises(InvalidArgumentError, match="`patience` must be an int >= 1"):
        loop.early_stop("value", patience=0)


def test_early_stop_halts_with_a_reason_and_two_monitors_keep_separate_data():
    loop, data = scripted([3.0, 2.0, 2.5, 2.4, 1.0, 0.5])
    final = loop.early_stop("value", patience=2).early_stop("value", patience=5).run(
        data, epochs=6)
    assert (final.status, final.epoch) == ("halted", 4)
    assert final.halt_reason == "early_stop: value has not improved for 2 epochs (best 2 at epoch 2)"
    assert set(final.handler_data) == {"early_stop_value", "early_stop_value_2"}
    assert final.event_counts["halted"] == 1 and "completed" not in final.event_counts
    never = loop.early_stop("value", patience=1, mode="max").run(
        lambda e: [float(e)], epochs=4)
    assert never.status == "completed" and never.halt_reason is None


@pytest.mark.parametrize("rate", [0.1, ax.optim.schedules.constant_schedule(0.1)],
                         ids=["number", "schedule"])
def test_reduce_lr_on_plateau_scales_the_injected_rate(rate):
    optimizer = ax.optim.inject_hyperparams(ax.optim.sgd)(learning_rate=rate)
    plateau = iter([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    loop = trainer(regression(), "mean_squared_error", optimizer).metric(
        lambda *_: next(plateau), "plateau").reduce_lr_on_plateau(
        "plateau", factor=0.5, patience=2, min_lr=0.03)
    rates = []
    loop = loop.handle("epoch_completed", lambda s: (rates.append(float(
        ax.optim.effective_hyperparams(s.step_state.optimizer_state)["learning_rate"])),
        ("continue", s))[1])
    final = loop.run([(X, Y)], epochs=7)
    # cut after epochs 4 and 6 (two epochs without improving each); 0.025 is floored to 0.03.
    # The callback runs after the handler, so it sees the new rate of the epoch just finished
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03])
    record = final.handler_data["reduce_lr_on_plateau_plateau"]
    assert record["reductions"] == 2 and record["learning_rate"] == pytest.approx(0.03)


def test_reduce_lr_on_plateau_cooldown_and_errors():
    optimizer = ax.optim.inject_hyperparams(ax.optim.sgd)(learning_rate=1.0)
    loop = trainer(regression(), "mean_squared_error", optimizer).metric(
        lambda *_: 1.0, "flat").reduce_lr_on_plateau("flat", factor=0.5, patience=1, cooldown=2)
    final = loop.run([(X[:4], Y[:4])], epochs=8)
    # epoch 1 sets the best; cuts at epochs 2, 5 and 8 (1 epoch of patience + 2 of cooldown)
    assert final.handler_data["reduce_lr_on_plateau_flat"]["reductions"] == 3
    plain = trainer(regression(), "mean_squared_error", "sgd").metric(lambda *_: 1.0, "flat")
    with pytest.raises(InvalidArgumentError, match="no injected 'learning_rate'.*inject_hyperparams"):
        plain.reduce_lr_on_plateau("flat", patience=1).run([(X, Y)], epochs=3)
    with pytest.raises(InvalidArgumentError, match=r"`factor` must be in \(0, 1\)"):
        plain.reduce_lr_on_plateau("flat", factor=2.0)


# nan_guard -----------------------------------------------------------------------------------

def test_nan_guard_halts_on_a_non_finite_training_loss(capsys):
    model = regression()
    poisoned = [(X[:16], Y[:16]), (X[16:], np.full_like(Y[16:], np.inf)), (X[:16], Y[:16])]
    final = trainer(model, "mean_squared_error", "sgd").nan_guard().run(poisoned, epochs=2)
    assert (final.status, final.epoch, final.iteration) == ("halted", 0, 2)
    assert final.halt_reason.startswith("nan_guard: loss is inf at epoch 1, iteration 2")
    assert capsys.readouterr().err.strip() == final.halt_reason
    fine = trainer(model, "mean_squared_error", "sgd").nan_guard().run(BATCHES, epochs=2)
    assert fine.status == "completed"


# regressions found while writing the guides ------------------------------------------------

def test_validate_calls_a_data_function_with_the_loop_epoch():
    model = regression()
    seen = []

    def held_out(epoch):
        seen.append(epoch)
        return BATCHES
    trainer(model, "mean_squared_error", "sgd").validate(model, held_out).run(BATCHES, epochs=3)
    assert seen == [1, 2, 3]


def test_nan_guard_watches_the_metric_it_is_given():
    loop = trainer(regression(), "mean_squared_error", "sgd").metric(
        lambda y, p: float("inf") if len(y) == 16 else 0.0, "odd")
    final = loop.nan_guard("odd", file=io.StringIO()).run(BATCHES)
    assert final.halt_reason.startswith("nan_guard: odd is inf at epoch 1, iteration 1")


def test_reduce_lr_on_plateau_without_injected_rate_fails_on_the_first_step():
    steps = []
    loop = trainer(regression(), "mean_squared_error", "sgd").metric(lambda *_: 1.0, "flat")
    loop = loop.handle("iteration_completed", lambda s: (steps.append(1), ("continue", s))[1])
    with pytest.raises(InvalidArgumentError, match="no injected 'learning_rate'"):
        loop.reduce_lr_on_plateau("flat", patience=5).run([(X, Y)], epochs=10)
    assert steps == [1]


def test_checkpoints_run_after_the_other_handlers_so_resuming_is_exact(tmp_path):
    values = [5.0, 4.0, 4.5, 4.6, 4.7, 4.8]
    loop, data = scripted(values, "loss")
    loop = loop.checkpoint(tmp_path).early_stop("loss", patience=3)
    whole = loop.run(data, epochs=6)
    assert (whole.status, whole.epoch) == ("halted", 5)
    stopped = loop.handle("epoch_completed", lambda s: ("halt_loop", s)).run(data, epochs=3)
    assert stopped.epoch == 1
    resumed = loop.from_checkpoint(tmp_path).run(data, epochs=6)
    assert (resumed.status, resumed.epoch) == ("halted", 5)
    assert resumed.handler_data["early_stop_loss"] == whole.handler_data["early_stop_loss"]
