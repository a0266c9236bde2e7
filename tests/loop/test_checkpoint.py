"""Checkpoints: what is written when, the file format, and exact resumption."""

import os
from typing import NamedTuple

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError
from axon_fn.loop import Loop, State, TrainState, load_checkpoint, save_checkpoint, trainer

rng = np.random.default_rng(11)
X = rng.standard_normal((48, 4)).astype(np.float32)
Y = (X[:, :1] * 2 - X[:, 1:2] + 0.1).astype(np.float32)


def model():
    return (ax.input("x", shape=(None, 4)) >> ax.dense(8, activation="relu") >> ax.batch_norm()
            >> ax.dropout(0.25) >> ax.dense(1))


def shuffled(epoch):
    """The same batches for an epoch on every run: what makes resuming exact."""
    order = np.random.default_rng(epoch).permutation(len(X))
    return [(X[order[i:i + 12]], Y[order[i:i + 12]]) for i in range(0, len(X), 12)]


def training_loop():
    return (trainer(model(), "mean_squared_error", "adam", learning_rate=0.02)
            .validate(model(), shuffled(100))
            .early_stop("validation_loss", patience=50))


def halt_at(total):
    return lambda state: ("halt_loop" if state.total_iterations == total else "continue", state)


def assert_same_run(a, b):
    assert a.history == b.history
    assert (a.epoch, a.total_iterations, a.status) == (b.epoch, b.total_iterations, b.status)
    for x, y in zip(ax.tree.leaves(a.step_state.model_state),
                    ax.tree.leaves(b.step_state.model_state)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(ax.tree.leaves(a.step_state.optimizer_state),
                    ax.tree.leaves(b.step_state.optimizer_state)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.step_state.key, b.step_state.key)
    mine = {name: data for name, data in a.handler_data.items() if name != "checkpoint"}
    assert mine == b.handler_data


@pytest.mark.parametrize("event, stop_after", [("epoch_completed", 8),
                                               ("iteration_completed", 6)],
                         ids=["at-epoch-end", "mid-epoch"])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, event, stop_after):
    uninterrupted = training_loop().run(shuffled, epochs=4)

    with_checkpoints = training_loop().checkpoint(tmp_path, event=event)
    stopped = with_checkpoints.handle("iteration_completed", halt_at(stop_after)).run(
        shuffled, epochs=4)
    assert stopped.status == "halted" and stopped.total_iterations == stop_after
    resumed = with_checkpoints.from_checkpoint(tmp_path).run(shuffled, epochs=4)

    assert_same_run(resumed, uninterrupted)
    losses = [epoch["loss"] for epoch in resumed.history]
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_checkpoint_every_n_with_keep_and_a_pattern(tmp_path):
    loop = Loop(lambda b, s: s + b, lambda _: 0).checkpoint(
        tmp_path, filter={"every": 2}, keep=2, file_pattern="step{total_iterations:03d}.npz")
    loop.run([1, 2, 3], epochs=4)  # epochs end after iterations 3, 6, 9, 12
    names = sorted(os.listdir(tmp_path))
    assert names == ["latest", "step006.npz", "step012.npz"]
    state = load_checkpoint(tmp_path / "step006.npz")
    assert (state.step_state, state.epoch, state.in_epoch) == (12, 2, False)
    assert load_checkpoint(tmp_path).step_state == 24
    assert load_checkpoint(tmp_path).handler_data["checkpoint"]["files"] == [
        "step006.npz", "step012.npz"]  # names in the directory, which can move


def test_checkpoint_best_by_metric(tmp_path):
    values = [3.0, 1.0, 2.0, 0.5, 0.7]
    loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "loss").checkpoint(
        tmp_path, monitor="loss", file_pattern="best.npz")
    saved = []
    loop = loop.handle("epoch_completed", lambda s: (saved.append(  # after the checkpoint
        load_checkpoint(tmp_path).epoch), ("continue", s))[1], last=True)
    final = loop.run(lambda epoch: [values[epoch]], epochs=5)
    assert saved == [1, 2, 2, 4, 4]
    assert load_checkpoint(tmp_path / "best.npz").metrics == {"loss": 0.5}
    assert final.handler_data["checkpoint"]["best"] == 0.5
    maximize = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "acc").checkpoint(
        tmp_path / "max", monitor="acc", mode="max", file_pattern="best.npz")
    maximize.run(lambda epoch: [values[epoch]], epochs=5)
    assert load_checkpoint(tmp_path / "max").metrics == {"acc": 3.0}


def test_file_format_is_plain_npz_and_writes_leave_no_temporaries(tmp_path):
    final = trainer(model(), "mean_squared_error", "adam").checkpoint(tmp_path).run(
        shuffled, epochs=1)
    path = tmp_path / "checkpoint_1_4.npz"
    with np.load(path, allow_pickle=False) as data:
        assert "step_state/model_state/trainable/dense_0/kernel" in data.files
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_1_4.npz", "latest"]
    restored = load_checkpoint(path)
    assert isinstance(restored.step_state, TrainState)
    assert isinstance(restored.step_state.model_state, ax.ModelState)
    assert type(restored.step_state.optimizer_state) is type(final.step_state.optimizer_state)
    assert restored.history == final.history
    assert restored.times["epochs"] == final.times["epochs"]
    assert 0 < restored.times["total"] <= final.times["total"]


class Counter(NamedTuple):
    total: np.ndarray
    seen: int


def test_own_namedtuples_need_types_and_bad_inputs(tmp_path):
    state = State(step_state=Counter(np.zeros(2), 3), epoch=1)
    save_checkpoint(state, tmp_path / "c.npz")
    assert load_checkpoint(tmp_path / "c.npz").step_state == {"total": pytest.approx([0, 0]),
                                                               "seen": 3}
    restored = load_checkpoint(tmp_path / "c.npz", types=[Counter])
    assert isinstance(restored.step_state, Counter) and restored.step_state.seen == 3
    with pytest.raises(AxonTypeError, match="`types` must list NamedTuple classes"):
        load_checkpoint(tmp_path / "c.npz", types=[dict])
    with pytest.raises(AxonTypeError, match="must be a loop State"):
        save_checkpoint({"epoch": 1}, tmp_path / "d.npz")
    ax.save_tree({"a": 1}, tmp_path / "tree.npz")
    with pytest.raises(InvalidArgumentError, match="is not a loop checkpoint"):
        load_checkpoint(tmp_path / "tree.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="has no 'latest' file"):
        load_checkpoint(tmp_path / "empty")
    with pytest.raises(AxonTypeError, match="handler_data"):
        save_checkpoint(State(handler_data={"mine": object()}), tmp_path / "bad.npz")
    with pytest.raises(AxonTypeError, match="`state` must be a loop State"):
        Loop(lambda b, s: s).run([1], state={"epoch": 1})


def test_resuming_with_shorter_data_is_an_error(tmp_path):
    loop = Loop(lambda b, s: s + b, lambda _: 0).checkpoint(tmp_path, event="iteration_completed")
    loop.handle("iteration_completed", halt_at(3)).run([1, 2, 3, 4])
    with pytest.raises(InvalidArgumentError, match="fewer batches than that"):
        loop.from_checkpoint(tmp_path).run([1, 2])
    assert loop.from_checkpoint(tmp_path).run([1, 2, 3, 4]).step_state == 10
