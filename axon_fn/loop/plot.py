r"""Plots of training metrics against epochs, saved as PNG files.

matplotlib is an optional dependency (``pip install 'axon_fn[examples]'`` or
``pip install matplotlib``); it is imported only when :func:`plot_metrics` is called, and only
its object API is used (``Figure`` and the Agg canvas), so no pyplot state or GUI backend is
touched.

Metrics are grouped into families: a name and its ``validation_`` / ``val_`` / ``train_`` /
``training_`` / ``test_`` / ``eval_`` variants share one subplot (``loss`` with
``validation_loss``, ``accuracy`` with ``validation_accuracy``).
"""

from __future__ import annotations

import io
import numbers
import os
from collections.abc import Mapping
from typing import Any, Optional, Sequence

from ..errors import AxonTypeError, InvalidArgumentError
from ..typing import PathLike
from .experiment import Experiment, _atomic_write, _real

__all__ = ["plot_metrics"]

_PREFIXES = ("validation_", "val_", "training_", "train_", "test_", "eval_")
_INDEX_KEYS = ("epoch", "step")


def _family(name):
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def _experiment_rows(exp):
    if exp.epochs:
        return [(row["epoch"], row) for row in exp.epochs], "epoch"
    rows = exp.history
    if rows and all(row.get("step") is not None for row in rows):
        return [(row["step"], row) for row in rows], "step"
    if rows and all(row.get("epoch") is not None for row in rows):
        return [(row["epoch"], row) for row in rows], "epoch"
    return list(enumerate(rows)), "row"


def _rows(where, source):
    """``[(x, {name: value}), ...]`` and the x-axis label."""
    if isinstance(source, Experiment):
        return _experiment_rows(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isdir(source):
            raise InvalidArgumentError(f"{where}: source {os.fspath(source)!r} is not an "
                                       f"experiment directory")
        return _experiment_rows(Experiment.load(source))
    history = getattr(source, "history", None)
    if isinstance(history, (list, tuple)) and history:
        metrics, field = history, "history"  # a loop State: one dict per finished epoch
    elif hasattr(source, "metrics"):
        metrics, field = source.metrics, "metrics"
    else:
        raise AxonTypeError(f"{where}: source must be an Experiment, an experiment directory or "
                            f"an object with a metrics (or history) attribute, got "
                            f"{type(source).__name__}")
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
        if items and not any(isinstance(row, Mapping) for _, row in items):
            # a flat {name: value}: the current epoch's metrics only
            items = [(getattr(source, "epoch", 0), metrics)]
        elif all(isinstance(k, numbers.Real) and not isinstance(k, bool) for k, _ in items):
            items.sort(key=lambda item: item[0])
    elif isinstance(metrics, (list, tuple)):
        first = 1 if field == "history" else 0  # a loop counts finished epochs from 1
        items = [(row.get("epoch", i) if isinstance(row, Mapping) else i, row)
                 for i, row in enumerate(metrics, first)]
    else:
        raise AxonTypeError(f"{where}: source.{field} must be a dict {{epoch: {{name: value}}}} "
                            f"or a list of per-epoch dicts, got {type(metrics).__name__}")
    for epoch, row in items:
        if not isinstance(row, Mapping):
            raise AxonTypeError(f"{where}: the metrics of epoch {epoch!r} must be a dict of "
                                f"name to value, got {type(row).__name__}")
    return items, "epoch"


def _series(where, rows, wanted):
    """``{name: ([x...], [y...])}`` in the order names first appear."""
    series = {}
    for x, row in rows:
        for name, value in row.items():
            if name in _INDEX_KEYS or not isinstance(name, str):
                continue
            if wanted is not None and name not in wanted:
                continue
            try:
                y = float(_real(where, name, value))
            except AxonTypeError:
                if wanted is not None:
                    raise
                continue  # not a scalar (e.g. a confusion matrix): nothing to draw
            xs, ys = series.setdefault(name, ([], []))
            xs.append(x)
            ys.append(y)
    return series


def plot_metrics(source: Any, path: PathLike, *,
                 metrics: Optional[Sequence[str]] = None) -> PathLike:
    r"""Draw metrics against epochs and save the figure as a PNG at ``path`` (written through a
    temporary file); returns ``path``.

    ``source`` is an :class:`~axon_fn.loop.experiment.Experiment`, the path of an experiment
    directory, or any object with a ``metrics`` attribute holding ``{epoch: {name: value}}`` or
    a list of per-epoch dicts. An object with a non-empty ``history`` list of per-epoch dicts
    (a loop's :class:`~axon_fn.loop.State`, whose ``metrics`` is only the current epoch's) is
    drawn from ``history``; a flat ``metrics`` dict is one point. An experiment with no
    ``log_epoch`` rows is drawn from its ``log_metrics`` rows against ``step``. ``metrics``
    selects metric names to draw (default: every scalar metric). Each family of metrics
    (``loss`` and ``validation_loss``, ...) gets one subplot.

    Raises ``ImportError`` naming the packages to install when matplotlib is missing.

    >>> import importlib.util, os, tempfile
    >>> class State:  # what a training loop returns
    ...     metrics = [{"loss": 0.9, "validation_loss": 1.1, "accuracy": 0.5},
    ...                {"loss": 0.4, "validation_loss": 0.6, "accuracy": 0.8}]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     if importlib.util.find_spec("matplotlib") is None:  # an optional dependency
    ...         png = b"\x89PNG"
    ...     else:
    ...         with open(plot_metrics(State(), os.path.join(d, "m.png")), "rb") as f:
    ...             png = f.read(4)
    ...     png
    b'\x89PNG'
    """
    where = "plot_metrics"
    if not isinstance(path, (str, os.PathLike)):
        raise AxonTypeError(f"{where}: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise InvalidArgumentError(f"{where}: the folder of path {os.fspath(path)!r} does not "
                                   f"exist")
    wanted = None
    if metrics is not None:
        wanted = [metrics] if isinstance(metrics, str) else metrics
        if not isinstance(wanted, (list, tuple)) or not all(
                isinstance(m, str) for m in wanted):
            raise AxonTypeError(f"{where}: metrics must be a metric name or a list of metric "
                                f"names, got {metrics!r}")
        if not wanted:
            raise InvalidArgumentError(f"{where}: metrics is empty")
    rows, xlabel = _rows(where, source)
    series = _series(where, rows, wanted)
    if wanted is not None:
        missing = [m for m in wanted if m not in series]
        if missing:
            available = sorted({n for _, row in rows for n in row if n not in _INDEX_KEYS},
                               key=str)
            raise InvalidArgumentError(f"{where}: metric {missing[0]!r} not found in source; "
                                       f"available: {', '.join(map(str, available)) or 'none'}")
    if not series:
        raise InvalidArgumentError(f"{where}: source holds no scalar metrics to plot")

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        raise ImportError(f"{where}: matplotlib is required to draw plots; install it with "
                          f"pip install 'axon_fn[examples]' or pip install matplotlib") from e

    families = {}
    for name in series:
        families.setdefault(_family(name), []).append(name)
    fig = Figure(figsize=(7.0, 2.8 * len(families)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(families), 1, squeeze=False)[:, 0]
    for ax, (family, names) in zip(axes, families.items()):
        for name in names:
            xs, ys = series[name]
            ax.plot(xs, ys, marker="o" if len(xs) <= 50 else None, markersize=3, label=name)
        ax.set_title(family)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(family)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    if isinstance(source, Experiment):
        fig.suptitle(os.path.basename(source.path))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _atomic_write(os.fspath(path), buf.getvalue())
    return path
