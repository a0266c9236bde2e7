"""Experiment records on disk, in open formats (JSON and CSV), for comparing training runs.

An :class:`Experiment` owns one directory ``directory/name/`` (``name-1``, ``name-2``, ... when
the name is taken, so runs never overwrite each other) holding:

* ``params.json``: the hyper-parameters (:meth:`Experiment.log_params`);
* ``metrics.csv``: one row per :meth:`Experiment.log_metrics` call, columns ``step, epoch`` then
  the metric names in the order they first appeared (an empty cell: not logged in that row);
* ``epochs.csv``: one row per :meth:`Experiment.log_epoch` call, columns ``epoch`` then the
  metric names;
* ``artifacts/``: files copied in by :meth:`Experiment.log_artifact`;
* ``summary.json``: written with ``"status": "running"`` when the run starts and rewritten by
  :meth:`Experiment.finish` (times, duration, final and best metrics, params, artifacts).

JSON files are strict JSON: non-finite floats are written as ``null``. CSV numbers are written
with ``repr`` (exact round trip); NaN is written as ``nan``. Every file is written through a
temporary file and ``os.replace``, except that a row added to a CSV file whose header is
unchanged is appended with a single write.

In a distributed job (:mod:`axon_fn.distributed`) only rank 0 writes: on the other ranks an
Experiment keeps its records in memory, creates nothing, and its ``path`` is where rank 0
writes when the name is free.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     with Experiment("mlp", d, params={"lr": 0.1}) as exp:
...         exp.log_epoch(0, {"loss": 0.9, "accuracy": 0.6})
...         exp.log_epoch(1, {"loss": 0.5, "accuracy": 0.8})
...     Experiment.load(exp.path).summary["best"]
{'loss': 0.5, 'accuracy': 0.8}
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import shutil
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .. import distributed
from ..backend import is_gpu_array
from ..errors import AxonTypeError, InvalidArgumentError
from .._files import atomic_write
from ..typing import PathLike

if TYPE_CHECKING:
    from .core import Loop

__all__ = ["Experiment"]

_PARAMS = "params.json"
_METRICS = "metrics.csv"
_EPOCHS = "epochs.csv"
_SUMMARY = "summary.json"
_ARTIFACTS = "artifacts"
_SUMMARY_KEYS = ("name", "run", "status", "start_time", "end_time", "duration_seconds",
                 "final_metrics", "best", "best_epoch", "params", "artifacts")


# ---------------------------------------------------------------------------------------------
# helpers


def _now():
    return datetime.now(timezone.utc)


def _atomic_write(path, data):
    """Write ``data`` (str or bytes) to ``path`` through a temporary file in the same folder."""
    if not distributed.is_writer():  # a rank other than 0 of a distributed job writes nothing
        return
    payload = data.encode("utf-8") if isinstance(data, str) else data
    atomic_write(path, lambda file: file.write(payload), "Experiment")


def _to_json(value):
    """``value`` as plain JSON data: numpy scalars and arrays become Python values, non-finite
    floats ``None``, mappings get string keys, anything unknown its ``repr``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if is_gpu_array(value):
        value = value.get()
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind in "biuf":
            return _to_json(value.tolist())
        if value.dtype.kind in "US":
            return value.tolist()
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _dump_json(path, data):
    _atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InvalidArgumentError(f"Experiment.load: {path} is not valid JSON: {e}") from None


def _real(where, name, value):
    """``value`` as a Python int or float, or an :class:`AxonTypeError` naming ``name``."""
    if is_gpu_array(value):
        value = value.get()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise AxonTypeError(f"{where}: metric {name!r} must be a real number (int, float, numpy "
                            f"scalar or 0-d array), got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _check_index(where, arg, value, *, optional):
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise AxonTypeError(f"{where}: {arg} must be an int{' or None' if optional else ''}, "
                            f"got {type(value).__name__} {value!r}")
    if value < 0:
        raise InvalidArgumentError(f"{where}: {arg} must be >= 0, got {value}")
    return int(value)


def _check_metrics(where, metrics, reserved):
    if not isinstance(metrics, Mapping):
        raise AxonTypeError(f"{where}: metrics must be a mapping of metric name to number, got "
                            f"{type(metrics).__name__}")
    if not metrics:
        raise InvalidArgumentError(f"{where}: metrics is empty")
    row = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{where}: metric names must be non-empty strings, got "
                                       f"{name!r}")
        if name in reserved:
            raise InvalidArgumentError(f"{where}: {name!r} is a column of its own and cannot be "
                                       f"a metric name; pass it as the {name}= argument")
        row[name] = _real(where, name, value)
    return row


def _check_file_name(where, arg, name):
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"{where}: {arg} must be a non-empty string, got {name!r}")
    if name in (".", "..") or "/" in name or (os.sep != "/" and os.sep in name):
        raise InvalidArgumentError(f"{where}: {arg} must be a plain file name (no path "
                                   f"separators, not '.' or '..'), got {name!r}")
    return name


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # 'nan', 'inf', '-inf' and exact round trip otherwise
    return str(value)


def _parse_cell(text):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _csv_text(rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


class _CsvLog:
    """A CSV file with fixed leading columns and metric columns added as they appear."""

    def __init__(self, path, fixed):
        self.path = path
        self.fixed = tuple(fixed)
        self.names = []
        self.rows = []

    def _line(self, row):
        return [_cell(row.get(c)) for c in self.fixed + tuple(self.names)]

    def add(self, row):
        new = [name for name in row if name not in self.fixed and name not in self.names]
        self.names.extend(new)
        self.rows.append(row)
        if new or len(self.rows) == 1:
            header = list(self.fixed) + self.names
            _atomic_write(self.path, _csv_text([header] + [self._line(r) for r in self.rows]))
        elif distributed.is_writer():
            with open(self.path, "a", encoding="utf-8", newline="") as f:
                f.write(_csv_text([self._line(row)]))  # one write of a whole line

    def load(self):
        try:
            with open(self.path, encoding="utf-8", newline="") as f:
                lines = list(csv.reader(f))
        except FileNotFoundError:
            return
        if not lines:
            return
        header = lines[0]
        if tuple(header[:len(self.fixed)]) != self.fixed:
            raise InvalidArgumentError(f"Experiment.load: {self.path} must start with the "
                                       f"columns {', '.join(self.fixed)}, got {header!r}")
        self.names = header[len(self.fixed):]
        for number, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            if len(line) != len(header):
                raise InvalidArgumentError(f"Experiment.load: {self.path} line {number} has "
                                           f"{len(line)} cells, the header {len(header)}")
            try:
                values = [_parse_cell(cell) for cell in line]
            except ValueError:
                raise InvalidArgumentError(f"Experiment.load: {self.path} line {number} holds "
                                           f"a cell that is not a number: {line!r}") from None
            row = {c: v for c, v in zip(self.fixed, values)}
            row.update({n: v for n, v in zip(self.names, values[len(self.fixed):])
                        if v is not None})
            self.rows.append(row)


def _lower_is_better(name):
    lowered = name.lower()
    return "loss" in lowered or "error" in lowered


# ---------------------------------------------------------------------------------------------
# Experiment


class Experiment:
    """One training run recorded under ``directory/name/`` (see the module docstring for the
    files). If that folder exists, ``name-1``, ``name-2``, ... is used instead; ``.path`` is the
    folder actually used. ``params`` are logged as by :meth:`log_params`.

    Used as a context manager, the run is finished on exit: ``"completed"``, or ``"failed"``
    with the exception's ``repr`` as ``error`` when the block raised.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a, b = Experiment("run", d), Experiment("run", d)
    ...     os.path.basename(a.path), os.path.basename(b.path), sorted(os.listdir(a.path))
    ('run', 'run-1', ['params.json', 'summary.json'])
    """

    def __init__(self, name: str, directory: PathLike = "runs", *,
                 params: Optional[Mapping[str, Any]] = None) -> None:
        where = "Experiment"
        _check_file_name(where, "name", name)
        if not isinstance(directory, (str, os.PathLike)):
            raise AxonTypeError(f"{where}: directory must be a str or os.PathLike, got "
                                f"{type(directory).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise AxonTypeError(f"{where}: params must be a mapping or None, got "
                                f"{type(params).__name__}")
        writer = distributed.is_writer()  # other ranks of a distributed job write nothing
        if writer:
            os.makedirs(directory, exist_ok=True)
        suffix = 0
        while writer:
            run = name if suffix == 0 else f"{name}-{suffix}"
            path = os.path.join(os.fspath(directory), run)
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                suffix += 1
        if not writer:  # where rank 0 writes when the name is free; not created here
            path = os.path.join(os.fspath(directory), name)
        self._setup(name, path)
        self._start = _now()
        self._t0 = time.monotonic()
        if params is not None:
            self.log_params(params)
        else:
            _dump_json(os.path.join(self.path, _PARAMS), self.params)
        self.summary = self._summary("running", {}, end=None)
        _dump_json(os.path.join(self.path, _SUMMARY), self.summary)

    def _setup(self, name, path):
        self.name = name
        self.path = path
        self.params = {}
        self.artifacts = []
        self._metrics = _CsvLog(os.path.join(path, _METRICS), ("step", "epoch"))
        self._epochs = _CsvLog(os.path.join(path, _EPOCHS), ("epoch",))

    @property
    def history(self) -> list:
        """The rows logged by :meth:`log_metrics`: dicts with ``step``, ``epoch`` and the metrics
        of that row.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("h", d)
        ...     exp.log_metrics({"loss": 1.5}, step=0)
        ...     exp.history
        [{'step': 0, 'epoch': None, 'loss': 1.5}]
        """
        return self._metrics.rows

    @property
    def epochs(self) -> list:
        """The rows logged by :meth:`log_epoch`: dicts with ``epoch`` and that epoch's metrics.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("e", d)
        ...     exp.log_epoch(0, {"loss": 0.25})
        ...     exp.epochs
        [{'epoch': 0, 'loss': 0.25}]
        """
        return self._epochs.rows

    @property
    def metrics(self) -> dict:
        """The per-epoch metrics as ``{epoch: {name: value}}`` (the shape :func:`plot_metrics`
        also accepts from a loop's state).

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("m", d)
        ...     exp.log_epoch(3, {"loss": 0.5})
        ...     exp.metrics
        {3: {'loss': 0.5}}
        """
        return {row["epoch"]: {k: v for k, v in row.items() if k != "epoch"}
                for row in self.epochs}

    def log_params(self, *args: Mapping[str, Any], **params: Any) -> None:
        """Merge hyper-parameters into ``params.json``: ``log_params(lr=0.1)`` or
        ``log_params({"lr": 0.1})``. numpy scalars and arrays become Python values; other
        objects are recorded by their ``repr``.

        >>> import numpy as np, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("p", d)
        ...     exp.log_params({"lr": np.float32(0.5)}, layers=np.array([8, 4]))
        ...     exp.params
        {'lr': 0.5, 'layers': [8, 4]}
        """
        where = "Experiment.log_params"
        if len(args) > 1:
            raise AxonTypeError(f"{where}: takes at most one positional mapping, got "
                                f"{len(args)} positional arguments")
        merged = {}
        if args:
            if not isinstance(args[0], Mapping):
                raise AxonTypeError(f"{where}: the positional argument must be a mapping, got "
                                    f"{type(args[0]).__name__}")
            merged.update(args[0])
        merged.update(params)
        for key in merged:
            if not isinstance(key, str):
                raise InvalidArgumentError(f"{where}: parameter names must be strings, got "
                                           f"{key!r}")
        self.params.update(_to_json(merged))
        _dump_json(os.path.join(self.path, _PARAMS), self.params)

    def log_metrics(self, metrics: Mapping[str, Any], *, step: Optional[int] = None,
                    epoch: Optional[int] = None) -> None:
        """Append one row to ``metrics.csv`` and :attr:`history`. Values must be real numbers
        (numpy scalars and 0-d arrays accepted; NaN allowed). A metric name not seen before
        adds a column (the file is rewritten with the longer header).

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("s", d)
        ...     exp.log_metrics({"loss": 2.0}, step=0, epoch=0)
        ...     exp.log_metrics({"loss": 1.0, "lr": 0.1}, step=1, epoch=0)
        ...     with open(os.path.join(exp.path, "metrics.csv")) as f:
        ...         print(f.read(), end="")
        step,epoch,loss,lr
        0,0,2.0,
        1,0,1.0,0.1
        """
        where = "Experiment.log_metrics"
        step = _check_index(where, "step", step, optional=True)
        epoch = _check_index(where, "epoch", epoch, optional=True)
        row = {"step": step, "epoch": epoch}
        row.update(_check_metrics(where, metrics, ("step", "epoch")))
        self._metrics.add(row)

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Append one epoch's metrics to ``epochs.csv`` and :attr:`epochs` (rules as for
        :meth:`log_metrics`).

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("ep", d)
        ...     exp.log_epoch(0, {"loss": 0.5, "validation_loss": float("nan")})
        ...     with open(os.path.join(exp.path, "epochs.csv")) as f:
        ...         print(f.read(), end="")
        epoch,loss,validation_loss
        0,0.5,nan
        """
        where = "Experiment.log_epoch"
        epoch = _check_index(where, "epoch", epoch, optional=False)
        row = {"epoch": epoch}
        row.update(_check_metrics(where, metrics, ("epoch",)))
        self._epochs.add(row)

    def log_artifact(self, path_or_bytes: PathLike | bytes, name: Optional[str] = None) -> str:
        """Copy a file (a path) into ``artifacts/``, or write ``bytes`` there (``name`` then
        required; for a path it defaults to the file's name). An artifact of the same name is
        replaced. Returns the artifact's path.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("a", d)
        ...     p = exp.log_artifact(b"weights", name="model.bin")
        ...     with open(p, "rb") as f:
        ...         f.read(), exp.artifacts
        (b'weights', ['model.bin'])
        """
        where = "Experiment.log_artifact"
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            if name is None:
                raise InvalidArgumentError(f"{where}: name is required when path_or_bytes is "
                                           f"bytes")
            data, source = bytes(path_or_bytes), None
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            source = os.fspath(path_or_bytes)
            if not os.path.isfile(source):
                raise InvalidArgumentError(f"{where}: path_or_bytes {source!r} is not an "
                                           f"existing file")
            if name is None:
                name = os.path.basename(source)
            data = None
        else:
            raise AxonTypeError(f"{where}: path_or_bytes must be a path (str or os.PathLike) or "
                                f"bytes, got {type(path_or_bytes).__name__}")
        _check_file_name(where, "name", name)
        folder = os.path.join(self.path, _ARTIFACTS)
        target = os.path.join(folder, name)
        if distributed.is_writer():  # other ranks of a distributed job write nothing
            os.makedirs(folder, exist_ok=True)
            if source is None:
                _atomic_write(target, data)
            else:
                with open(source, "rb") as file:
                    atomic_write(target, lambda out: shutil.copyfileobj(file, out), where)
        if name not in self.artifacts:
            self.artifacts.append(name)
        return target

    def _summary(self, status, extra, *, end):
        final = {}
        if self.epochs:
            final = dict(self.epochs[-1])
        elif self.history:
            final = {k: v for k, v in self.history[-1].items() if v is not None}
        best, best_epoch = {}, {}
        for name in self._epochs.names:
            candidates = [(row[name], row["epoch"]) for row in self.epochs
                          if name in row and not math.isnan(row[name])]
            if not candidates:
                continue
            pick = min if _lower_is_better(name) else max
            value, epoch = pick(candidates, key=lambda c: c[0])
            best[name], best_epoch[name] = value, epoch
        summary = {
            "name": self.name,
            "run": os.path.basename(self.path),
            "status": status,
            "start_time": self._start.isoformat(),
            "end_time": None if end is None else end.isoformat(),
            "duration_seconds": None,
            "final_metrics": final,
            "best": best,
            "best_epoch": best_epoch,
            "params": dict(self.params),
            "artifacts": list(self.artifacts),
        }
        if end is not None:
            if self._t0 is not None:
                summary["duration_seconds"] = time.monotonic() - self._t0
            else:
                summary["duration_seconds"] = (end - self._start).total_seconds()
        summary.update(extra)
        return _to_json(summary)

    def finish(self, status: str = "completed", **summary: Any) -> dict:
        """Write ``summary.json`` and return it as a dict: ``name`` (as given), ``run`` (the
        folder's name), ``status``, ``start_time`` / ``end_time`` (ISO-8601, UTC),
        ``duration_seconds``, ``final_metrics`` (the last :meth:`log_epoch` row, else the last
        :meth:`log_metrics` row), ``best`` / ``best_epoch`` (per epoch metric: the minimum for
        names containing "loss" or "error", the maximum otherwise; NaN ignored), ``params``,
        ``artifacts``, then the extra ``summary`` fields. Calling it again rewrites the file.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("f", d)
        ...     exp.log_epoch(0, {"loss": 0.4, "accuracy": 0.7})
        ...     exp.log_epoch(1, {"loss": 0.6, "accuracy": 0.9})
        ...     s = exp.finish(note="baseline")
        ...     s["status"], s["best"], s["best_epoch"], s["note"]
        ('completed', {'loss': 0.4, 'accuracy': 0.9}, {'loss': 0, 'accuracy': 1}, 'baseline')
        """
        where = "Experiment.finish"
        if not isinstance(status, str) or not status:
            raise InvalidArgumentError(f"{where}: status must be a non-empty string, got "
                                       f"{status!r}")
        clash = [key for key in summary if key in _SUMMARY_KEYS]
        if clash:
            raise InvalidArgumentError(f"{where}: {clash[0]!r} is a field finish writes itself "
                                       f"and cannot be passed as an extra summary field")
        self.summary = self._summary(status, summary, end=_now())
        _dump_json(os.path.join(self.path, _SUMMARY), self.summary)
        return self.summary

    def attach(self, loop: Loop) -> Loop:
        """A copy of ``loop`` that logs each finished epoch's metrics here and finishes the
        experiment with the loop's final status.

        >>> import tempfile
        >>> from axon_fn.loop import Loop
        >>> loop = Loop(lambda b, s: b, lambda _: None).metric(lambda v: v, "value")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("run", d)
        ...     _ = exp.attach(loop).run([1.0, 3.0], epochs=2)
        ...     exp.summary["status"], exp.epochs[-1]["value"]
        ('completed', 2.0)
        """
        def log_epoch(state):
            self.log_epoch(state.epoch, state.history[-1] or {"iterations": state.iteration})
            return "continue", state

        def finish(state):
            self.finish(state.status, epochs=state.epoch, iterations=state.total_iterations)
            return "continue", state

        loop = loop.handle("epoch_completed", log_epoch, name="experiment_log_epoch")
        loop = loop.handle("epoch_halted", log_epoch, name="experiment_log_epoch")
        loop = loop.handle("completed", finish, name="experiment_finish")
        return loop.handle("halted", finish, name="experiment_finish")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            # a loop attached with attach() may have finished the run already (say "halted"):
            # keep its status and fields, rewriting to list artifacts logged since
            done = self.summary if self.summary.get("status") != "running" else {}
            extra = {k: v for k, v in done.items() if k not in _SUMMARY_KEYS}
            self.finish(done.get("status", "completed"), **extra)
        else:
            self.finish("failed", error=repr(exc))
        return False

    def __repr__(self):
        return f"Experiment({self.name!r}, path={self.path!r})"

    @classmethod
    def load(cls, path: PathLike) -> Experiment:
        """Read an experiment folder back: :attr:`params`, :attr:`history`, :attr:`epochs`,
        :attr:`artifacts` and :attr:`summary` (``None`` when there is no ``summary.json``).
        Logging to the loaded experiment appends to the same files.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     exp = Experiment("l", d, params={"batch_size": 32})
        ...     exp.log_metrics({"loss": 0.5}, step=7)
        ...     back = Experiment.load(exp.path)
        ...     back.params, back.history, back.summary["status"]
        ({'batch_size': 32}, [{'step': 7, 'epoch': None, 'loss': 0.5}], 'running')
        """
        where = "Experiment.load"
        if not isinstance(path, (str, os.PathLike)):
            raise AxonTypeError(f"{where}: path must be a str or os.PathLike, got "
                                f"{type(path).__name__}")
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise InvalidArgumentError(f"{where}: path {path!r} is not a directory")
        summary_path = os.path.join(path, _SUMMARY)
        summary = _load_json(summary_path) if os.path.isfile(summary_path) else None
        self = cls.__new__(cls)
        name = summary.get("name") if isinstance(summary, dict) else None
        self._setup(name if isinstance(name, str) else os.path.basename(path), path)
        params_path = os.path.join(path, _PARAMS)
        if os.path.isfile(params_path):
            params = _load_json(params_path)
            if not isinstance(params, dict):
                raise InvalidArgumentError(f"{where}: {params_path} must hold a JSON object")
            self.params = params
        self._metrics.load()
        self._epochs.load()
        self.summary = summary
        self._start, self._t0 = _now(), None
        if isinstance(summary, dict) and isinstance(summary.get("start_time"), str):
            try:
                self._start = datetime.fromisoformat(summary["start_time"])
            except ValueError:
                pass
        recorded = summary.get("artifacts") if isinstance(summary, dict) else None
        recorded = [a for a in recorded if isinstance(a, str)] if isinstance(recorded, list) \
            else []
        folder = os.path.join(path, _ARTIFACTS)
        present = sorted(f for f in os.listdir(folder) if not f.endswith(".tmp")) \
            if os.path.isdir(folder) else []
        self.artifacts = [a for a in recorded if a in present] + \
            [a for a in present if a not in recorded]
        return self
