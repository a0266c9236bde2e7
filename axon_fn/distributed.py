"""Data-parallel training over an existing communication engine: MPI through ``mpi4py`` on
CPUs, NCCL through CuPy on GPUs.

A script that calls these functions runs alone (``python train.py``) or as ``N`` copies
(``mpiexec -n N python train.py``), one *rank* each. Alone, or without ``mpi4py``, every function
is the identity: ``rank()`` is 0, ``world_size()`` 1, ``allreduce`` and ``broadcast`` give their
argument back. ``pip install "axon_fn[mpi]"`` installs ``mpi4py`` and the ``mpich`` wheel,
which brings ``mpiexec``.

``trainer(..., distributed=True)`` uses :func:`broadcast` once (the initial state from rank 0)
and :func:`allreduce` every step (the gradients, the loss and the batch-norm statistics, in
one flat buffer); see ``guides/distributed.md``.

>>> import numpy as np
>>> init()                       # no launcher: a world of one process
1
>>> rank(), world_size()
(0, 1)
>>> allreduce({"g": np.ones(2)})  # the mean over one rank
{'g': array([1., 1.])}

Every array leaf goes to the wire; Python numbers come back as numbers of their type. CuPy
arrays are reduced with NCCL (``cupy.cuda.nccl``), one GPU per rank, with MPI only used to
hand out NCCL's id. The NCCL path is written against CuPy's documented API but has not been
run on a real multi-GPU machine yet.

When a rank raises an uncaught exception (world size > 1) its traceback is printed and the
whole job is aborted (``MPI_Abort``), so no other rank waits forever in a collective. A rank
killed by a signal is noticed by the launcher (``mpiexec``), which ends the other ranks.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._dtypes import is_real_floating
from ._core import stageable
from .backend import is_gpu_array
from .errors import AxonTypeError, InvalidArgumentError

__all__ = ["init", "rank", "world_size", "local_rank", "broadcast", "allreduce", "allgather",
           "barrier", "shard", "gather_rows", "active", "is_writer"]

# Environment variables an MPI launcher sets in the processes it starts (MPICH/Hydra and
# Intel MPI: PMI_*; Open MPI: OMPI_COMM_WORLD_*; PMIx launchers such as srun: PMIX_RANK)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_RANK",
                  "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
_LOCAL_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
_OPS = ("mean", "sum", "max", "min")
# allreduce sends at most this many bytes per call: a large model is reduced in buckets, so
# no second buffer the size of the whole model is needed by the MPI library
BUCKET_BYTES = 64 << 20


class _World:
    """Where this process stands: its communicator (None alone), rank and size."""

    def __init__(self):
        self.comm = None
        self.rank = 0
        self.size = 1
        self.local_rank = 0
        self.initialized = False
        self.nccl = None       # the NCCL communicator, made on the first GPU allreduce
        self.hook = None       # the excepthook replaced by the abort-on-error hook


_world = _World()


def _launched():
    return any(name in os.environ for name in _LAUNCHER_VARS)


def _launcher_size():
    for name in _SIZE_VARS:
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    return None


def init(comm: Any = None) -> int:
    """Join the job this process was started in and return the world size.

    Under an MPI launcher (``mpiexec``, ``srun``) this uses ``mpi4py``'s ``COMM_WORLD`` (or the
    mpi4py communicator ``comm``); otherwise the process is a world of one and MPI is not
    loaded. Calling it again does nothing. With more than one rank, an uncaught exception on
    any rank aborts the whole job (see the module docstring). The other functions call it for
    you.

    >>> init()
    1
    """
    if _world.initialized and comm is None:
        return _world.size
    if comm is None and _launched():
        try:
            from mpi4py import MPI
        except ImportError:
            size = _launcher_size()
            if size is not None and size > 1:
                raise InvalidArgumentError(
                    f"distributed.init: this process is one of {size} started by an MPI "
                    f"launcher, but mpi4py is not installed; pip install 'axon_fn[mpi]'"
                    ) from None
        else:
            comm = MPI.COMM_WORLD
    if comm is not None:
        for method in ("Get_rank", "Get_size", "Allreduce", "bcast", "Barrier"):
            if not hasattr(comm, method):
                raise AxonTypeError(f"distributed.init: `comm` must be an mpi4py communicator, "
                                    f"got {type(comm).__name__} (it has no {method})")
        _world.comm, _world.rank, _world.size = comm, comm.Get_rank(), comm.Get_size()
        _world.local_rank = _find_local_rank(comm)
        if _world.size > 1 and _world.hook is None:
            _world.hook = sys.excepthook
            sys.excepthook = _abort_on_error
    _world.initialized = True
    return _world.size


def _find_local_rank(comm):
    for name in _LOCAL_VARS:
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    split = getattr(comm, "Split_type", None)
    if split is not None:
        try:
            from mpi4py import MPI

            node = split(MPI.COMM_TYPE_SHARED)
            try:
                return node.Get_rank()
            finally:
                node.Free()
        except Exception:  # noqa: BLE001 - an exotic communicator: fall back to the rank
            pass
    return comm.Get_rank()


_ABORT_GRACE_S = 0.5


def _abort_on_error(exc_type, exc, tb):
    """sys.excepthook under a launcher: print the traceback, then end every rank."""
    hook = _world.hook or sys.__excepthook__
    try:
        sys.stderr.write(f"axon_fn.distributed: rank {_world.rank} of {_world.size} raised; "
                         f"aborting the job\n")
        hook(exc_type, exc, tb)
        sys.stdout.flush()
        sys.stderr.flush()
        # The launcher forwards each rank's output through its own pipes, and an abort kills
        # them at once: give it a moment to pass the traceback on, or the user sees nothing
        time.sleep(_ABORT_GRACE_S)
    finally:
        abort = getattr(_world.comm, "Abort", None)
        if abort is not None:
            abort(1)


def active() -> bool:
    """True once :func:`init` has joined a world of more than one rank (no MPI is loaded for
    this question: the loop's handlers ask it to decide who writes files).

    >>> active()
    False
    """
    return _world.initialized and _world.size > 1


def is_writer() -> bool:
    """True unless this process is a rank other than 0 of an initialized job: only rank 0
    writes checkpoints, experiment files and progress output.

    >>> is_writer()
    True
    """
    return not active() or _world.rank == 0


def rank() -> int:
    """This process's rank, from 0 to ``world_size() - 1`` (0 when alone).

    >>> rank()
    0
    """
    init()
    return _world.rank


def world_size() -> int:
    """How many ranks the job has (1 when alone).

    >>> world_size()
    1
    """
    return init()


def local_rank() -> int:
    """This process's rank among the ranks on its machine: the GPU it should use
    (``trainer(..., device=f"cuda:{local_rank()}")``).

    >>> local_rank()
    0
    """
    init()
    return _world.local_rank


def barrier() -> None:
    """Wait until every rank has called ``barrier`` (nothing to wait for when alone).

    >>> barrier()
    """
    if init() > 1:
        _world.comm.Barrier()


def _check_root(root, where):
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not (
            0 <= root < world_size()):
        raise InvalidArgumentError(f"{where}: `root` must be a rank from 0 to "
                                   f"{world_size() - 1}, got {root!r}")


def broadcast(tree: Any, root: int = 0) -> Any:
    """Rank ``root``'s ``tree`` on every rank (the others' ``tree`` is ignored). Any picklable
    pytree; CuPy arrays travel through the host and land on the current GPU. Made for what is
    sent once (initial parameters, a resumed state), not for every step.

    >>> broadcast({"w": [1.0, 2.0]})
    {'w': [1.0, 2.0]}
    """
    _check_root(root, "distributed.broadcast")
    if world_size() == 1:
        return tree
    sending = _world.rank == root
    payload = _to_host(tree) if sending else None
    return _from_host(_world.comm.bcast(payload, root=root))


_GPU_MARK = "__axon_fn_cupy__"


def _to_host(tree):
    return optree.tree_map(lambda leaf: (_GPU_MARK, leaf.get()) if is_gpu_array(leaf) else leaf,
                           tree, none_is_leaf=True)


def _from_host(tree):
    def back(leaf):
        if _is_marked(leaf):
            import cupy

            return cupy.asarray(leaf[1])
        return leaf

    return optree.tree_map(back, tree, none_is_leaf=True, is_leaf=_is_marked)


def _is_marked(x):
    return type(x) is tuple and len(x) == 2 and isinstance(x[0], str) and x[0] == _GPU_MARK


def allgather(tree: Any) -> list:
    """A list with every rank's ``tree``, in rank order (any picklable pytree).

    >>> allgather({"rows": 3})
    [{'rows': 3}]
    """
    if world_size() == 1:
        return [tree]
    return [_from_host(t) for t in _world.comm.allgather(_to_host(tree))]


def gather_rows(tree: Any) -> Any:
    """Every rank's arrays in ``tree`` concatenated along the first axis (rank 0's rows first);
    what a distributed loop's metrics see. Leaves that are not arrays come from rank 0.

    >>> gather_rows({"y": np.arange(3)})  # alone: this rank's rows are all the rows
    {'y': array([0, 1, 2])}
    """
    if world_size() == 1:
        return tree
    trees = allgather(tree)

    def join(*leaves):
        first = leaves[0]
        if is_gpu_array(first):
            import cupy

            return cupy.concatenate(leaves) if first.ndim else first
        if isinstance(first, np.ndarray) and first.ndim:
            return np.concatenate(leaves)
        return first

    return optree.tree_map(join, *trees, none_is_leaf=True)


def shard(tree: Any, *, where: str = "distributed.shard") -> Any:
    """This rank's rows of every array in ``tree``: rows ``rank()::world_size()`` of each
    (rank 0 takes rows 0, N, 2N, ...). Scalars and 0-d arrays are kept whole. A batch with
    fewer rows than ranks is an error (a rank would get no rows).

    >>> shard({"x": np.arange(4)})["x"]  # alone: every row
    array([0, 1, 2, 3])
    """
    size = world_size()
    if size == 1:
        return tree
    r = _world.rank

    def take(leaf):
        if getattr(leaf, "ndim", 0) == 0:
            return leaf
        if leaf.shape[0] < size:
            raise InvalidArgumentError(f"{where}: a batch of {leaf.shape[0]} rows cannot be "
                                       f"split over {size} ranks; use batches of at least "
                                       f"{size} rows")
        return leaf[r::size]

    return optree.tree_map(take, tree)


def _check_op(op, where):
    if op not in _OPS:
        raise InvalidArgumentError(f"{where}: `op` must be one of {', '.join(_OPS)}, got "
                                   f"{op!r}")


def allreduce(tree: Any, op: str = "mean") -> Any:
    """Every leaf of ``tree`` combined over the ranks: ``"mean"`` (default), ``"sum"``,
    ``"max"`` or ``"min"``; every rank gets the result. Leaves are arrays (numpy or CuPy, not
    mixed) or Python/numpy numbers; all leaves of one dtype go in one flat buffer (in buckets of
    at most :data:`BUCKET_BYTES`), so a whole gradient tree costs one call per dtype. The mean
    of integers is a float64. Every rank must pass the same structure, shapes and dtypes.

    >>> allreduce({"loss": 0.5, "count": 3}, op="sum")
    {'loss': 0.5, 'count': 3}
    """
    _check_op(op, "distributed.allreduce")
    leaves, treedef = optree.tree_flatten(tree)
    arrays = []
    for path, leaf in zip(treedef.paths(), leaves):
        if is_gpu_array(leaf) or isinstance(leaf, np.ndarray):
            arrays.append(leaf)
        elif isinstance(leaf, (bool, np.bool_)) or not isinstance(leaf, (int, float, np.number)):
            where = "/".join(map(str, path)) or "the tree"
            raise AxonTypeError(f"distributed.allreduce: every leaf of `tree` must be an array "
                                f"or a number; the leaf {where!r} is {type(leaf).__name__}")
        else:
            arrays.append(np.asarray(leaf))
    if world_size() == 1:
        return tree
    reduced = _reduce_arrays(arrays, op)

    def back(leaf, result):
        if isinstance(leaf, (int, float)):  # a number (the mean of ints a float, not truncated)
            return (float if op == "mean" else type(leaf))(result.item())
        return result.reshape(())[()] if isinstance(leaf, np.generic) else result

    return treedef.unflatten([back(leaf, r) for leaf, r in zip(leaves, reduced)])


def _reduce_arrays(arrays, op, weight=None):
    """``arrays`` reduced over the ranks, grouped by dtype into flat buffers.

    With ``weight`` (this rank's number of rows), each rank's values are multiplied by its
    weight, the weights summed in the same buffer, and the sums divided by the total: the
    weighted mean, exact for mean losses when ranks hold different numbers of rows."""
    groups = {}
    for i, a in enumerate(arrays):
        gpu = is_gpu_array(a)
        groups.setdefault((gpu, a.dtype), []).append(i)
    out = [None] * len(arrays)
    for (gpu, dtype), members in groups.items():
        xp = _cupy() if gpu else np
        if weight is not None or op == "mean":
            work = np.promote_types(dtype, np.float32) if is_real_floating(dtype) else \
                np.dtype(np.float64)
        else:
            work = dtype
        parts = [xp.ravel(arrays[i]).astype(work, copy=False) for i in members]
        if weight is not None:
            parts = [p * work.type(weight) for p in parts] + [xp.full((1,), weight, work)]
        buffer = xp.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        _sum_in_place(buffer, "sum" if op == "mean" else op, gpu)
        if weight is not None:
            buffer = buffer[:-1] / buffer[-1]
        elif op == "mean":
            buffer = buffer / work.type(_world.size)
        start = 0
        for i in members:
            a = arrays[i]
            piece = buffer[start:start + a.size].reshape(a.shape)
            start += a.size
            keep = dtype if (weight is not None or op != "mean"
                             or is_real_floating(dtype)) else work
            out[i] = piece.astype(keep, copy=False)
    return out


def _cupy():
    import cupy

    return cupy


def _sum_in_place(buffer, op, gpu):
    """Reduce the flat ``buffer`` over the ranks in place: NCCL for a GPU buffer (one call:
    NCCL pipelines large buffers itself), MPI in buckets of at most BUCKET_BYTES otherwise."""
    if gpu:
        _nccl_backend().allreduce_(buffer, op)
        return
    step = max(1, BUCKET_BYTES // max(1, buffer.itemsize))
    for start in range(0, buffer.size, step):
        _mpi_allreduce(buffer[start:start + step], op)


def _mpi_allreduce(chunk, op):
    from mpi4py import MPI

    _world.comm.Allreduce(MPI.IN_PLACE, chunk, op={"sum": MPI.SUM, "max": MPI.MAX,
                                                   "min": MPI.MIN}[op])


class _Nccl:
    """One NCCL communicator for the job, made on the device of the first GPU buffer: rank 0
    draws NCCL's unique id and MPI broadcasts it."""

    def __init__(self, device_id):
        import cupy
        from cupy.cuda import nccl

        self.nccl, self.cupy = nccl, cupy
        uid = nccl.get_unique_id() if _world.rank == 0 else None
        uid = _world.comm.bcast(uid, root=0)
        with cupy.cuda.Device(device_id):
            self.comm = nccl.NcclCommunicator(_world.size, uid, _world.rank)
        self.device_id = device_id
        self.dtypes = {np.dtype(np.float16): nccl.NCCL_FLOAT16,
                       np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.int32): nccl.NCCL_INT32,
                       np.dtype(np.int64): nccl.NCCL_INT64}
        self.ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}

    def allreduce_(self, buffer, op):
        """Reduce the contiguous device array ``buffer`` in place on the current stream."""
        if buffer.device.id != self.device_id:
            raise InvalidArgumentError(f"distributed.allreduce: NCCL was set up on GPU "
                                       f"{self.device_id}, but this array is on GPU "
                                       f"{buffer.device.id}; use one GPU per rank")
        if buffer.dtype not in self.dtypes:
            raise AxonTypeError(f"distributed.allreduce: NCCL cannot reduce {buffer.dtype} "
                                f"arrays")
        stream = self.cupy.cuda.get_current_stream()
        with self.cupy.cuda.Device(self.device_id):
            self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size,
                                self.dtypes[buffer.dtype], self.ops[op], stream.ptr)


def _nccl_backend(device_id=None):
    if _world.nccl is None:
        _world.nccl = _Nccl(_cupy().cuda.Device().id if device_id is None else device_id)
    return _world.nccl


@stageable
def sync_step(*arrays, rows):
    """The trainer's per-step exchange: ``arrays`` (gradients, loss, batch-norm statistics)
    averaged over the ranks, each rank weighted by its ``rows``. One host step inside a
    compiled (``jit``) training step; replayed every step.

    >>> sync_step(np.ones(2, np.float32), rows=32)  # alone: the arrays as they are
    (array([1., 1.], dtype=float32),)
    """
    if world_size() == 1:
        return tuple(arrays)
    return tuple(_reduce_arrays(list(arrays), "mean", weight=rows))


def load_on_root(load):
    """``load()`` run on rank 0 and its result (or its exception) sent to every rank, so a
    file only rank 0 can read still resumes every rank.

    >>> load_on_root(lambda: {"epoch": 3})
    {'epoch': 3}
    """
    if world_size() == 1:
        return load()
    result, error = None, None
    if _world.rank == 0:
        try:
            result = load()
        except Exception as e:  # noqa: BLE001 - sent to the other ranks, raised everywhere
            error = e
    result, error = _world.comm.bcast((result, error), root=0)
    if error is not None:
        raise error
    return result


def _reset():
    """Forget the world (tests): undo the excepthook, drop the communicators."""
    if _world.hook is not None:
        sys.excepthook = _world.hook
    _world.__init__()
