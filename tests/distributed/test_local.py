"""axon_fn.distributed in one process: the identity when alone, argument errors, and, with a
fake two-rank world (no MPI), sharding, the weighted gradient mean, who writes files, dropout
keys per rank and the choice of NCCL for GPU arrays."""

from __future__ import annotations

import os

import numpy as np
import pytest

import axon_fn
from axon_fn import distributed
from axon_fn.errors import AxonTypeError, InvalidArgumentError
from axon_fn.loop import Experiment, Loop, trainer
from axon_fn.loop.trainer import _check_world

from .. import simulated_cupy


class FakeComm:
    """A world of ``size`` ranks in which this process is ``rank``; the other ranks' part of
    every reduction is ``peer(buffer)`` (default: the same as this rank's)."""

    def __init__(self, rank=0, size=2, peer=None):
        self.rank, self.size, self.peer = rank, size, peer
        self.reductions = []

    def Get_rank(self):  # noqa: N802 (mpi4py's names)
        return self.rank

    def Get_size(self):  # noqa: N802
        return self.size

    def Allreduce(self, *args, **kwargs):  # noqa: N802
        raise AssertionError("the tests replace distributed._mpi_allreduce")

    def Barrier(self):  # noqa: N802
        pass

    def bcast(self, obj, root=0):
        return obj

    def allgather(self, obj):
        return [obj] * self.size


@pytest.fixture
def world(monkeypatch):
    """A function that makes this process rank ``rank`` of a fake world; undone after."""
    def make(rank=0, size=2, peer=None):
        comm = FakeComm(rank, size, peer)

        def reduce(chunk, op):
            comm.reductions.append((chunk.size, op))
            chunk += comm.peer(chunk.copy()) if comm.peer else chunk.copy()

        monkeypatch.setattr(distributed, "_mpi_allreduce", reduce)
        distributed._reset()
        distributed.init(comm)
        return comm

    yield make
    distributed._reset()


def test_alone_every_function_is_the_identity():
    distributed._reset()
    tree = {"w": np.arange(3.0), "n": 2}
    assert distributed.init() == 1 and distributed.world_size() == 1
    assert distributed.rank() == 0 and distributed.local_rank() == 0
    assert distributed.allreduce(tree) is tree
    assert distributed.broadcast(tree) is tree
    assert distributed.allgather(tree) == [tree]
    assert distributed.shard(tree) is tree
    assert distributed.barrier() is None
    assert distributed.is_writer() and not distributed.active()


def test_errors_name_the_function_and_the_argument():
    with pytest.raises(InvalidArgumentError, match=r"distributed.allreduce: `op` must be"):
        distributed.allreduce({"a": np.ones(2)}, op="median")
    with pytest.raises(AxonTypeError, match=r"distributed.allreduce: .*'a'.* is str"):
        distributed.allreduce({"a": "text"})
    with pytest.raises(InvalidArgumentError, match=r"distributed.broadcast: `root` must be"):
        distributed.broadcast(1.0, root=1)
    with pytest.raises(AxonTypeError, match=r"distributed.init: `comm` must be an mpi4py"):
        distributed.init(object())


def test_launcher_without_mpi4py_is_an_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpi4py(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    distributed._reset()
    monkeypatch.setattr(builtins, "__import__", no_mpi4py)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "4")
    try:
        with pytest.raises(InvalidArgumentError, match=r"one of 4 .*axon_fn\[mpi\]"):
            distributed.init()
    finally:
        distributed._reset()


def test_shard_takes_rows_rank_stride_world_size(world):
    world(rank=1, size=3)
    batch = {"x": np.arange(14).reshape(7, 2), "scale": np.float32(2.0)}
    got = distributed.shard(batch)
    assert got["x"].tolist() == [[2, 3], [8, 9]]  # rows 1 and 4
    assert got["scale"] == 2.0
    with pytest.raises(InvalidArgumentError, match=r"trainer: a batch of 2 rows cannot be "
                                                   r"split over 3 ranks"):
        distributed.shard(np.ones((2, 1)), where="trainer")


def test_allreduce_mean_sum_and_numbers(world):
    comm = world(peer=lambda buffer: 3 * buffer)  # the other rank holds 3 times our values
    out = distributed.allreduce({"g": np.array([1.0, 2.0], np.float32), "n": 1, "x": 0.5})
    assert out["g"].dtype == np.float32 and out["g"].tolist() == [2.0, 4.0]
    assert out["n"] == 2.0 and type(out["n"]) is float and out["x"] == 1.0
    total = distributed.allreduce({"n": np.int64(2)}, op="sum")["n"]
    assert total == 8 and total.dtype == np.int64
    assert len(comm.reductions) == 4  # one buffer per dtype: float32, int64, float64; int64


def test_large_buffers_go_in_buckets(world, monkeypatch):
    comm = world()
    monkeypatch.setattr(distributed, "BUCKET_BYTES", 400)  # 100 float32 values
    grads = [np.ones(150, np.float32), np.ones((10, 10), np.float32)]
    out = distributed.allreduce(grads)
    assert [size for size, _ in comm.reductions] == [100, 100, 50]
    assert all(np.array_equal(o, g) for o, g in zip(out, grads))


def test_sync_step_weights_each_rank_by_its_rows(world):
    # this rank: 3 rows, gradient a; the other: 1 row, gradient b (its buffer ends with 1)
    a, b = np.array([1.0, 2.0], np.float32), np.array([5.0, -2.0], np.float32)
    world(peer=lambda buffer: np.concatenate([b, [1.0]]).astype(buffer.dtype))
    (got,) = distributed.sync_step(a, rows=3)
    np.testing.assert_allclose(got, (3 * a + b) / 4)
    assert got.dtype == np.float32


def test_only_rank_zero_writes(world, tmp_path):
    world(rank=1)
    assert not distributed.is_writer()
    loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
    exp = Experiment("run", tmp_path / "experiments")
    loop = exp.attach(loop.checkpoint(tmp_path / "checkpoints").log(file=tmp_path / "log"))
    final = loop.run([1.0, 2.0], epochs=2)
    exp.log_artifact(b"data", "a.bin")
    assert os.listdir(tmp_path) == []
    # the same record as rank 0 keeps, so the ranks' States stay equal
    assert final.handler_data["checkpoint"]["files"] == ["checkpoint_1_2.npz",
                                                         "checkpoint_2_2.npz"]
    assert exp.summary["status"] == "completed" and exp.epochs[-1]["value"] == 1.5


def test_each_rank_draws_its_own_dropout_masks(world, monkeypatch):
    monkeypatch.setattr(distributed, "broadcast", lambda tree, root=0: tree)  # fake: no peers
    model = (axon_fn.input("x", shape=(None, 4)) >> axon_fn.dropout(0.5)
             >> axon_fn.dense(1, use_bias=False))
    x = np.ones((8, 4), np.float32)
    losses = []
    for rank in (0, 1):
        world(rank=rank)  # the other rank's values equal ours: the mean is our own
        final = trainer(model, "mean_squared_error", "sgd", distributed=True, shard=False,
                        compile=False).run([(x, np.zeros((8, 1), np.float32))])
        losses.append(float(final.step_state.loss))
    assert losses[0] != losses[1]


def test_resuming_on_another_world_size_is_an_error():
    from axon_fn.loop import State

    check = _check_world(2)
    _, state = check(State())
    assert state.handler_data["distributed"] == {"world_size": 2}
    with pytest.raises(InvalidArgumentError, match=r"saved by 4 ranks and now runs on 2"):
        check(State(handler_data={"distributed": {"world_size": 4}}))


def test_gpu_arrays_are_reduced_with_nccl(world):
    """CuPy arrays take the NCCL path (a fake communicator here: no GPU on this machine) and
    never cross to the host."""
    world()

    class FakeNccl:
        calls = []

        def allreduce_(self, buffer, op):
            self.calls.append((type(buffer).__module__, buffer.size, op))
            buffer[...] = buffer * 2  # two ranks with the same values

    with simulated_cupy.installed():
        import cupy

        distributed._world.nccl = FakeNccl()
        grads = {"w": cupy.asarray(np.ones((2, 3), np.float32)),
                 "b": cupy.asarray(np.full(3, 4.0, np.float32))}
        simulated_cupy.transfers.clear()
        out = distributed.allreduce(grads)
        assert not simulated_cupy.transfers.get("to_host")
        (weighted,) = distributed.sync_step(grads["b"], rows=5)
        assert not simulated_cupy.transfers.get("to_host")
        assert type(out["w"]).__module__ == "cupy" and out["w"].shape == (2, 3)
        np.testing.assert_array_equal(out["b"].get(), np.full(3, 4.0))
        np.testing.assert_array_equal(weighted.get(), np.full(3, 4.0))
    assert FakeNccl.calls == [("cupy", 9, "sum"), ("cupy", 4, "sum")]


def test_trainer_and_evaluator_check_their_flags():
    model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1)
    with pytest.raises(AxonTypeError, match=r"trainer: `distributed` must be True or False"):
        trainer(model, "mean_squared_error", "sgd", distributed="yes")
    with pytest.raises(AxonTypeError, match=r"evaluator: `shard` must be True or False"):
        axon_fn.loop.evaluator(model, distributed=True, shard=1)


def test_alone_distributed_training_is_plain_training():
    distributed._reset()
    model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1)
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    data = [(x, x[:, :1] - x[:, 1:])] * 3
    runs = [trainer(model, "mean_squared_error", "adam", distributed=flag).run(data, epochs=2)
            for flag in (False, True)]
    assert runs[0].history == runs[1].history
    assert "distributed" not in runs[1].handler_data  # alone: nothing recorded


def test_a_compiled_step_replays_one_allreduce_per_step(world):
    """The allreduce is one recorded host step of the jit program: replayed every step, one
    flat buffer for all the gradients, the loss and the row count."""
    comm = world(rank=0)
    model = (axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4, activation="tanh")
             >> axon_fn.dense(1))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    final = trainer(model, "mean_squared_error", "adam", compile=True,
                    distributed=True).run([(x, x[:, :1])] * 5)
    assert final.total_iterations == 5
    assert comm.reductions == [(3 * 4 + 4 + 4 * 1 + 1 + 1 + 1, "sum")] * 5
