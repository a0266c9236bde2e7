import csv
import json
import math
import os
import sys

import numpy as np
import pytest

from axon_fn.errors import AxonTypeError, InvalidArgumentError
from axon_fn.loop.experiment import Experiment
from axon_fn.loop.plot import plot_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def no_temp_files(folder):
    return not [f for root, _, files in os.walk(folder) for f in files if f.endswith(".tmp")]


def test_directory_creation_with_suffixes(tmp_path):
    root = tmp_path / "runs" / "nested"  # created as needed
    paths = [Experiment("mlp", root).path for _ in range(3)]
    assert [os.path.basename(p) for p in paths] == ["mlp", "mlp-1", "mlp-2"]
    assert all(os.path.isdir(p) for p in paths)
    assert Experiment("other", root).path == os.path.join(str(root), "other")
    exp = Experiment("mlp", str(root))
    assert exp.name == "mlp" and os.path.basename(exp.path) == "mlp-3"
    summary = read_json(os.path.join(exp.path, "summary.json"))
    assert summary["status"] == "running" and summary["run"] == "mlp-3"
    assert summary["end_time"] is None


def test_default_directory_is_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = Experiment("x")
    assert os.path.samefile(exp.path, tmp_path / "runs" / "x")


def test_params_json_with_numpy_values(tmp_path):
    exp = Experiment("p", tmp_path, params={"lr": np.float32(0.25), "epochs": np.int64(3)})
    exp.log_params({"layers": np.array([[1, 2], [3, 4]])}, name="mlp", dropout=None,
                   flags=(True, False), shape=np.array(5.0), mask=np.array([True, False]))
    exp.log_params(lr=0.5, bad=float("nan"), obj=object, path=tmp_path)
    on_disk = read_json(os.path.join(exp.path, "params.json"))
    assert on_disk == exp.params
    assert on_disk["lr"] == 0.5 and on_disk["epochs"] == 3
    assert isinstance(on_disk["epochs"], int)
    assert on_disk["layers"] == [[1, 2], [3, 4]]
    assert on_disk["shape"] == 5.0 and on_disk["mask"] == [True, False]
    assert on_disk["flags"] == [True, False] and on_disk["dropout"] is None
    assert on_disk["bad"] is None  # strict JSON: non-finite floats become null
    assert on_disk["obj"] == repr(object)
    assert on_disk["path"] == str(tmp_path)
    assert list(on_disk)[:2] == ["lr", "epochs"]  # merged, order of first appearance
    assert no_temp_files(exp.path)


def test_log_params_bad_inputs(tmp_path):
    exp = Experiment("p", tmp_path)
    with pytest.raises(AxonTypeError, match="log_params"):
        exp.log_params([1, 2])
    with pytest.raises(AxonTypeError, match="at most one"):
        exp.log_params({}, {})
    with pytest.raises(InvalidArgumentError, match="log_params.*names must be strings"):
        exp.log_params({1: 2})
    with pytest.raises(AxonTypeError, match="Experiment: params"):
        Experiment("q", tmp_path, params=[("lr", 1)])
    assert not os.path.exists(tmp_path / "q")  # nothing created for a bad call


def test_metrics_csv_and_header_growth(tmp_path):
    exp = Experiment("m", tmp_path)
    exp.log_metrics({"loss": np.float32(2.5)}, step=0, epoch=0)
    exp.log_metrics({"loss": np.array(1.25)}, step=np.int64(1), epoch=0)
    path = os.path.join(exp.path, "metrics.csv")
    assert read_csv(path) == [["step", "epoch", "loss"], ["0", "0", "2.5"], ["1", "0", "1.25"]]
    exp.log_metrics({"accuracy": 0.5, "loss": float("nan")}, step=2, epoch=1)
    exp.log_metrics({"loss": 0.1 + 0.2, "lr": 3})  # no step / epoch
    assert read_csv(path) == [
        ["step", "epoch", "loss", "accuracy", "lr"],
        ["0", "0", "2.5", "", ""],
        ["1", "0", "1.25", "", ""],
        ["2", "1", "nan", "0.5", ""],
        ["", "", "0.30000000000000004", "", "3"],
    ]
    assert exp.history[0] == {"step": 0, "epoch": 0, "loss": 2.5}
    assert exp.history[3] == {"step": None, "epoch": None, "loss": 0.1 + 0.2, "lr": 3}
    assert math.isnan(exp.history[2]["loss"])
    assert type(exp.history[0]["loss"]) is float and type(exp.history[3]["lr"]) is int
    assert no_temp_files(exp.path)


def test_log_metrics_bad_inputs(tmp_path):
    exp = Experiment("m", tmp_path)
    with pytest.raises(AxonTypeError, match="log_metrics: metric 'accuracy' must be a real"):
        exp.log_metrics({"loss": 1.0, "accuracy": "high"})
    with pytest.raises(AxonTypeError, match="metric 'loss'"):
        exp.log_metrics({"loss": np.array([1.0, 2.0])})
    with pytest.raises(AxonTypeError, match="metric 'ok'"):
        exp.log_metrics({"ok": True})
    with pytest.raises(AxonTypeError, match="metric 'z'"):
        exp.log_metrics({"z": 1 + 2j})
    with pytest.raises(AxonTypeError, match="metric 'n'"):
        exp.log_metrics({"n": None})
    with pytest.raises(AxonTypeError, match="log_metrics: metrics must be a mapping"):
        exp.log_metrics([("loss", 1.0)])
    with pytest.raises(InvalidArgumentError, match="log_metrics: metrics is empty"):
        exp.log_metrics({})
    with pytest.raises(InvalidArgumentError, match="'step' is a column"):
        exp.log_metrics({"step": 1.0})
    with pytest.raises(InvalidArgumentError, match="log_metrics: step must be >= 0"):
        exp.log_metrics({"loss": 1.0}, step=-1)
    with pytest.raises(AxonTypeError, match="log_metrics: epoch must be an int"):
        exp.log_metrics({"loss": 1.0}, epoch=1.5)
    with pytest.raises(InvalidArgumentError, match="metric names must be non-empty"):
        exp.log_metrics({"": 1.0})
    assert exp.history == []  # nothing was recorded by the failed calls
    assert not os.path.exists(os.path.join(exp.path, "metrics.csv"))


def test_epochs_csv(tmp_path):
    exp = Experiment("e", tmp_path)
    exp.log_epoch(0, {"loss": 1.0, "accuracy": np.float64(0.5)})
    exp.log_epoch(1, {"loss": 0.5, "accuracy": 0.75, "validation_loss": 0.625})
    exp.log_epoch(2, {"loss": 0.75, "accuracy": 0.875, "validation_loss": 0.5})
    assert read_csv(os.path.join(exp.path, "epochs.csv")) == [
        ["epoch", "loss", "accuracy", "validation_loss"],
        ["0", "1.0", "0.5", ""],
        ["1", "0.5", "0.75", "0.625"],
        ["2", "0.75", "0.875", "0.5"],
    ]
    assert exp.epochs[1] == {"epoch": 1, "loss": 0.5, "accuracy": 0.75, "validation_loss": 0.625}
    assert exp.metrics[2] == {"loss": 0.75, "accuracy": 0.875, "validation_loss": 0.5}
    with pytest.raises(AxonTypeError, match="log_epoch: epoch must be an int"):
        exp.log_epoch(None, {"loss": 1.0})
    with pytest.raises(AxonTypeError, match="log_epoch: metric 'loss'"):
        exp.log_epoch(3, {"loss": [1.0]})
    assert len(exp.epochs) == 3


def test_artifacts(tmp_path):
    exp = Experiment("a", tmp_path / "runs")
    src = tmp_path / "weights.npz"
    src.write_bytes(b"\x00\x01weights")
    out = exp.log_artifact(src)
    assert out == os.path.join(exp.path, "artifacts", "weights.npz")
    with open(out, "rb") as f:
        assert f.read() == b"\x00\x01weights"
    exp.log_artifact(str(src), name="copy.npz")
    exp.log_artifact(b"v1", name="notes.txt")
    exp.log_artifact(bytearray(b"v2"), name="notes.txt")  # replaced, listed once
    with open(os.path.join(exp.path, "artifacts", "notes.txt"), "rb") as f:
        assert f.read() == b"v2"
    assert exp.artifacts == ["weights.npz", "copy.npz", "notes.txt"]
    with pytest.raises(InvalidArgumentError, match="log_artifact: name is required"):
        exp.log_artifact(b"data")
    with pytest.raises(InvalidArgumentError, match="not an existing file"):
        exp.log_artifact(tmp_path / "missing.bin")
    with pytest.raises(InvalidArgumentError, match="log_artifact: name must be a plain"):
        exp.log_artifact(b"x", name="../escape")
    with pytest.raises(AxonTypeError, match="log_artifact: path_or_bytes"):
        exp.log_artifact(123)
    assert exp.finish()["artifacts"] == ["weights.npz", "copy.npz", "notes.txt"]
    assert no_temp_files(exp.path)


def _trained(tmp_path):
    exp = Experiment("run", tmp_path, params={"lr": 0.1, "batch_size": 32})
    losses = [1.0, 0.4, 0.6]
    accuracies = [0.5, 0.9, 0.8]
    val_errors = [float("nan"), 0.3, 0.2]
    for epoch, (loss, acc, err) in enumerate(zip(losses, accuracies, val_errors)):
        for step in range(2):
            exp.log_metrics({"loss": loss + step / 10}, step=2 * epoch + step, epoch=epoch)
        exp.log_epoch(epoch, {"loss": loss, "accuracy": acc, "validation_error": err})
    return exp


def test_summary_fields(tmp_path):
    exp = _trained(tmp_path)
    returned = exp.finish(seed=np.int32(7), notes="baseline")
    summary = read_json(os.path.join(exp.path, "summary.json"))
    assert summary == returned == exp.summary
    assert summary["name"] == "run" and summary["run"] == "run"
    assert summary["status"] == "completed"
    assert summary["final_metrics"] == {"epoch": 2, "loss": 0.6, "accuracy": 0.8,
                                        "validation_error": 0.2}
    assert summary["best"] == {"loss": 0.4, "accuracy": 0.9, "validation_error": 0.2}
    assert summary["best_epoch"] == {"loss": 1, "accuracy": 1, "validation_error": 2}
    assert summary["params"] == {"lr": 0.1, "batch_size": 32}
    assert summary["artifacts"] == []
    assert summary["seed"] == 7 and summary["notes"] == "baseline"
    from datetime import datetime
    start = datetime.fromisoformat(summary["start_time"])
    end = datetime.fromisoformat(summary["end_time"])
    assert start.tzinfo is not None and start <= end
    assert 0 <= summary["duration_seconds"] < 60
    # calling finish again overwrites
    again = exp.finish("failed", notes="second")
    assert read_json(os.path.join(exp.path, "summary.json")) == again
    assert again["status"] == "failed" and again["notes"] == "second" and "seed" not in again
    with pytest.raises(InvalidArgumentError, match="finish: 'best' is a field"):
        exp.finish(best=1)
    with pytest.raises(InvalidArgumentError, match="finish: status"):
        exp.finish("")


def test_summary_without_epochs_uses_last_history_row(tmp_path):
    exp = Experiment("s", tmp_path)
    exp.log_metrics({"loss": 0.5}, step=3)
    summary = exp.finish()
    assert summary["final_metrics"] == {"step": 3, "loss": 0.5}
    assert summary["best"] == {}


def test_context_manager_records_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with Experiment("c", tmp_path) as exp:
            exp.log_epoch(0, {"loss": 1.0})
            raise RuntimeError("diverged")
    summary = read_json(os.path.join(exp.path, "summary.json"))
    assert summary["status"] == "failed" and "diverged" in summary["error"]
    with Experiment("ok", tmp_path) as exp:
        pass
    assert read_json(os.path.join(exp.path, "summary.json"))["status"] == "completed"


def test_load_round_trip(tmp_path):
    exp = _trained(tmp_path)
    exp.log_artifact(b"abc", name="model.bin")
    exp.finish(notes="x")
    back = Experiment.load(exp.path)
    assert back.name == "run" and back.path == exp.path
    assert back.params == exp.params
    assert back.history == exp.history
    assert back.artifacts == ["model.bin"]
    assert back.summary == exp.summary
    # NaN survives the CSV round trip (and NaN != NaN, so compare separately)
    assert math.isnan(back.epochs[0]["validation_error"])
    assert [{k: v for k, v in r.items() if k != "validation_error"} for r in back.epochs] == \
        [{k: v for k, v in r.items() if k != "validation_error"} for r in exp.epochs]
    assert back.epochs[1:] == exp.epochs[1:]
    # logging to a loaded experiment extends the same files
    back.log_epoch(3, {"loss": 0.1, "accuracy": 0.95, "validation_error": 0.1})
    again = Experiment.load(exp.path)
    assert again.epochs[-1] == {"epoch": 3, "loss": 0.1, "accuracy": 0.95,
                                "validation_error": 0.1}
    assert back.finish()["best"]["loss"] == 0.1


def test_load_unfinished_and_bad_inputs(tmp_path):
    exp = Experiment("u", tmp_path)
    back = Experiment.load(exp.path)
    assert back.summary["status"] == "running"
    assert back.history == [] and back.epochs == [] and back.params == {}
    with pytest.raises(InvalidArgumentError, match="Experiment.load: path .* is not a directory"):
        Experiment.load(tmp_path / "missing")
    with pytest.raises(AxonTypeError, match="Experiment.load: path"):
        Experiment.load(3)
    with open(os.path.join(exp.path, "epochs.csv"), "w") as f:
        f.write("epoch,loss\n0,abc\n")
    with pytest.raises(InvalidArgumentError, match="epochs.csv line 2"):
        Experiment.load(exp.path)
    with open(os.path.join(exp.path, "summary.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(InvalidArgumentError, match="summary.json is not valid JSON"):
        Experiment.load(exp.path)
    # a bare folder (no files at all) loads as an empty experiment named after it
    bare = tmp_path / "bare"
    bare.mkdir()
    empty = Experiment.load(bare)
    assert empty.name == "bare" and empty.summary is None and empty.history == []


def test_bad_names(tmp_path):
    for name in ("", "a/b", "..", "."):
        with pytest.raises(InvalidArgumentError, match="Experiment: name"):
            Experiment(name, tmp_path)
    with pytest.raises(InvalidArgumentError, match="Experiment: name"):
        Experiment(3, tmp_path)
    with pytest.raises(AxonTypeError, match="Experiment: directory"):
        Experiment("x", 3)


# --------------------------------------------------------------------------------------------
# plot_metrics


class FakeState:
    def __init__(self, metrics):
        self.metrics = metrics


def _png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    return data


def _agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")


def test_plot_metrics_from_experiment(tmp_path):
    _agg()
    exp = _trained(tmp_path)
    out = plot_metrics(exp, tmp_path / "exp.png")
    assert out == tmp_path / "exp.png"
    _png(out)
    _png(plot_metrics(exp.path, str(tmp_path / "dir.png"), metrics=["loss"]))
    assert no_temp_files(tmp_path)


def test_plot_metrics_from_state_shapes(tmp_path):
    _agg()
    rows = [{"loss": 0.9, "validation_loss": np.float32(1.0), "accuracy": 0.4,
             "validation_accuracy": np.array(0.3), "confusion": np.eye(2)},
            {"loss": 0.5, "validation_loss": 0.7, "accuracy": 0.7,
             "validation_accuracy": 0.6, "confusion": np.eye(2)}]
    _png(plot_metrics(FakeState(rows), tmp_path / "list.png"))
    as_dict = {1: rows[1], 0: rows[0]}
    _png(plot_metrics(FakeState(as_dict), str(tmp_path / "dict.png")))
    with pytest.raises(AxonTypeError, match="plot_metrics: metric 'confusion'"):
        plot_metrics(FakeState(rows), tmp_path / "c.png", metrics=["confusion"])
    steps_only = Experiment("steps", tmp_path)
    steps_only.log_metrics({"loss": 1.0}, step=0)
    steps_only.log_metrics({"loss": 0.5}, step=1)
    _png(plot_metrics(steps_only, tmp_path / "steps.png"))


class FakeLoopState:
    """The shape of axon_fn.loop's State: history per epoch, metrics of the current epoch."""

    def __init__(self, history, metrics, epoch):
        self.history, self.metrics, self.epoch = history, metrics, epoch


def test_plot_metrics_from_loop_state(tmp_path):
    _agg()
    history = [{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.5, "accuracy": 0.75}]
    _png(plot_metrics(FakeLoopState(history, history[-1], 2), tmp_path / "h.png"))
    # before any epoch finished: the flat current metrics are one point
    _png(plot_metrics(FakeLoopState([], {"loss": 1.0}, 0), tmp_path / "flat.png"))
    core = pytest.importorskip("axon_fn.loop.core")
    state = core.State(epoch=2, metrics=dict(history[-1]), history=history)
    _png(plot_metrics(state, tmp_path / "state.png", metrics="loss"))


def test_plot_metrics_bad_inputs(tmp_path):
    with pytest.raises(AxonTypeError, match="plot_metrics: source must be"):
        plot_metrics(42, tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="is not an experiment directory"):
        plot_metrics(tmp_path / "missing", tmp_path / "x.png")
    with pytest.raises(AxonTypeError, match="source.metrics must be"):
        plot_metrics(FakeState(3), tmp_path / "x.png")
    with pytest.raises(AxonTypeError, match="metrics of epoch 0"):
        plot_metrics(FakeState([1.0]), tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="no scalar metrics"):
        plot_metrics(FakeState([]), tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="metric 'acc' not found.*available: loss"):
        plot_metrics(FakeState([{"loss": 1.0}]), tmp_path / "x.png", metrics=["acc"])
    with pytest.raises(InvalidArgumentError, match="folder of path"):
        plot_metrics(FakeState([{"loss": 1.0}]), tmp_path / "no" / "x.png")
    with pytest.raises(AxonTypeError, match="plot_metrics: path"):
        plot_metrics(FakeState([{"loss": 1.0}]), None)
    assert not os.path.exists(tmp_path / "x.png")


def test_plot_metrics_without_matplotlib(tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plot_metrics: matplotlib is required.*"
                                          r"axon_fn\[examples\].*pip install matplotlib"):
        plot_metrics(FakeState([{"loss": 1.0}]), tmp_path / "x.png")
    assert not os.path.exists(tmp_path / "x.png")


def test_attach_inside_a_with_block_keeps_the_loop_status(tmp_path):
    from axon_fn.loop import Loop

    loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss").early_stop(
        "loss", patience=1)
    with Experiment("stop", tmp_path) as exp:
        exp.attach(loop).run(lambda e: [[1.0, 2.0, 3.0][e]], epochs=3)
        exp.log_artifact(b"weights", "model.bin")
    summary = Experiment.load(exp.path).summary
    assert summary["status"] == "halted" and summary["epochs"] == 2
    assert summary["artifacts"] == ["model.bin"]
