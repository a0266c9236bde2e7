"""Metrics in the style of Elixir's ``Axon.Metrics``: pure functions over one batch.

Each takes ``(y_true, y_pred)`` and returns a Python float. Metrics are not differentiated; they
are computed with numpy on host copies of the inputs. The confusion counts
(:func:`true_positives`, :func:`false_positives`, ...) and :func:`confusion_counts` return float
*counts*, so a training loop can accumulate them over batches and form ratios at the end.

>>> import numpy as np
>>> accuracy(np.array([[0, 1], [1, 0]]), np.array([[0.1, 0.9], [0.2, 0.8]]))
0.5
"""

from __future__ import annotations

import numpy as np

from ._checks import is_int, numeric_arguments
from ._core import full_value
from .backend import to_numpy
from .errors import InvalidArgumentError, ShapeError
from .typing import ArrayLike

__all__ = [
    "accuracy",
    "class_confusion_counts",
    "confusion_counts",
    "f1",
    "false_negatives",
    "false_positives",
    "mean_absolute_error",
    "mean_squared_error",
    "precision",
    "recall",
    "sensitivity",
    "sparse_categorical_accuracy",
    "specificity",
    "top_k_categorical_accuracy",
    "true_negatives",
    "true_positives",
]


_AVERAGES = ("binary", "micro", "macro", "weighted")


def _np(x):
    return np.asarray(to_numpy(full_value(x)))


def _ratio(num, den):
    return float(num / den) if den > 0 else 0.0


def _sparse_labels(name, y_true, y_pred):
    labels = y_true
    if labels.shape == y_pred.shape[:-1] + (1,) and y_pred.ndim > 1:
        labels = labels.reshape(y_pred.shape[:-1])
    if labels.shape != y_pred.shape[:-1]:
        raise ShapeError(f"{name}: sparse y_true must have shape y_pred.shape[:-1] (optionally "
                         f"with a trailing 1), got y_true {y_true.shape} and y_pred "
                         f"{y_pred.shape}")
    return labels.astype(np.int64)


def _binary(name, y_true, y_pred, threshold, from_logits=False):
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"{name}: y_true and y_pred must have the same shape, got y_true "
                         f"{y_true.shape} and y_pred {y_pred.shape}")
    if from_logits:
        with np.errstate(over="ignore"):
            y_pred = 1.0 / (1.0 + np.exp(-y_pred.astype(np.float64)))
    return y_true > 0.5, y_pred > threshold


def _check_average(name, average, allowed=_AVERAGES):
    if average not in allowed:
        raise InvalidArgumentError(f"{name}: `average` must be one of "
                                   f"{', '.join(repr(a) for a in allowed)}, got {average!r}")


def _accuracy_counts(y_true, y_pred, *, threshold=0.5, sparse=False, from_logits=False):
    name = "accuracy"
    t, p = _np(y_true), _np(y_pred)
    if sparse:
        correct = np.argmax(p, axis=-1) == _sparse_labels(name, t, p)
    elif p.ndim <= 1 or p.shape[-1] == 1:
        truth, pred = _binary(name, t, p, threshold, from_logits)
        correct = truth == pred
    else:
        if t.shape != p.shape:
            hint = ("; y_true looks like integer class labels: pass sparse=True (or use "
                    "sparse_categorical_accuracy)" if t.shape == p.shape[:-1] else "")
            raise ShapeError(f"{name}: y_true and y_pred must have the same shape, got y_true "
                             f"{t.shape} and y_pred {p.shape}{hint}")
        correct = np.argmax(t, axis=-1) == np.argmax(p, axis=-1)
    return {"correct": float(np.sum(correct)), "total": float(correct.size)}


def _sparse_accuracy_counts(y_true, y_pred):
    return _accuracy_counts(y_true, y_pred, sparse=True)


def _accuracy_value(counts, **_):
    return _ratio(counts["correct"], counts["total"])


def accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5, sparse: bool = False,
             from_logits: bool = False) -> float:
    """Fraction of correct predictions.

    * ``sparse=True``: ``y_true`` holds integer labels; compared with ``argmax(y_pred, -1)``.
    * binary (``y_pred``'s last axis has size 1, or ``y_pred`` is 1-D): ``y_pred > threshold``
      (after a sigmoid when ``from_logits``) compared with ``y_true``.
    * otherwise categorical: ``argmax(y_true, -1) == argmax(y_pred, -1)``.

    A Loop tracking ``"accuracy"`` counts correct predictions over the epoch, so its value is
    the accuracy over all the epoch's examples.

    >>> import numpy as np
    >>> accuracy(np.array([[1.0], [0.0]]), np.array([[0.7], [0.6]]))
    0.5
    >>> accuracy(np.array([1, 0]), np.array([[0.1, 0.9], [0.2, 0.8]]), sparse=True)
    0.5
    """
    return _accuracy_value(_accuracy_counts(y_true, y_pred, threshold=threshold, sparse=sparse,
                                            from_logits=from_logits))


def _top_k_counts(y_true, y_pred, *, k=5, sparse=False):
    name = "top_k_categorical_accuracy"
    if not is_int(k) or k < 1:  # int(2.5) would silently count the top 2
        raise InvalidArgumentError(f"{name}: `k` must be an int of at least 1, got {k!r}")
    t, p = _np(y_true), _np(y_pred)
    if sparse:
        labels = _sparse_labels(name, t, p)
    else:
        if t.shape != p.shape:
            raise ShapeError(f"{name}: y_true and y_pred must have the same shape, got y_true "
                             f"{t.shape} and y_pred {p.shape}")
        labels = np.argmax(t, axis=-1)
    top = np.argsort(-p, axis=-1, kind="stable")[..., :int(k)]
    hits = np.any(top == labels[..., None], axis=-1)
    return {"correct": float(np.sum(hits)), "total": float(hits.size)}


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """:func:`accuracy` with integer class labels (``sparse=True``), Keras's name: the fraction
    of examples whose label is ``argmax(y_pred, -1)``.

    >>> import numpy as np
    >>> sparse_categorical_accuracy(np.array([1, 0]), np.array([[0.1, 0.9], [0.2, 0.8]]))
    0.5
    """
    return _accuracy_value(_sparse_accuracy_counts(y_true, y_pred))


def top_k_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike, *, k: int = 5,
                               sparse: bool = False) -> float:
    """Fraction of examples whose true class is among the ``k`` highest predictions.

    >>> import numpy as np
    >>> y_pred = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    >>> top_k_categorical_accuracy(np.array([2, 2]), y_pred, k=2, sparse=True)
    0.5
    """
    return _accuracy_value(_top_k_counts(y_true, y_pred, k=k, sparse=sparse))


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> dict:
    """Binary confusion counts as floats: ``{"tp", "tn", "fp", "fn"}``.

    >>> import numpy as np
    >>> confusion_counts(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.1, 0.2]))
    {'tp': 1.0, 'tn': 1.0, 'fp': 1.0, 'fn': 1.0}
    """
    truth, pred = _binary("confusion_counts", y_true, y_pred, threshold)
    return {
        "tp": float(np.sum(truth & pred)),
        "tn": float(np.sum(~truth & ~pred)),
        "fp": float(np.sum(~truth & pred)),
        "fn": float(np.sum(truth & ~pred)),
    }


def class_confusion_counts(y_true: ArrayLike, y_pred: ArrayLike, *, sparse: bool = False) -> dict:
    """Per-class counts of a multi-class prediction (``argmax(y_pred, -1)``) as float arrays
    of length ``classes``: ``{"tp", "fp", "fn"}``. ``y_true`` is one-hot (or class scores), or
    integer labels with ``sparse=True``.

    >>> import numpy as np
    >>> y_pred = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    >>> counts = class_confusion_counts(np.array([0, 1, 2]), y_pred, sparse=True)
    >>> counts["tp"], counts["fp"], counts["fn"]
    (array([1., 1., 0.]), array([1., 0., 0.]), array([0., 0., 1.]))
    """
    name = "class_confusion_counts"
    t, p = _np(y_true), _np(y_pred)
    if p.ndim < 2 or p.shape[-1] < 2:
        raise ShapeError(f"{name}: a multi-class average needs class scores y_pred of shape "
                         f"(..., classes) with at least 2 classes, got {p.shape}; for one "
                         f"probability per example use average='binary'")
    classes = p.shape[-1]
    if sparse:
        truth = _sparse_labels(name, t, p)
        bad = (truth < 0) | (truth >= classes)
        if np.any(bad):
            raise InvalidArgumentError(f"{name}: sparse labels must lie in [0, {classes}) "
                                       f"for {classes} classes, got {t[bad].flat[0]!r}")
    else:
        if t.shape != p.shape:
            raise ShapeError(f"{name}: y_true and y_pred must have the same shape, got y_true "
                             f"{t.shape} and y_pred {p.shape} (integer labels need "
                             f"sparse=True)")
        truth = np.argmax(t, axis=-1)
    pred = np.argmax(p, axis=-1).ravel()
    truth = truth.ravel()
    tp = np.bincount(truth[truth == pred], minlength=classes).astype(np.float64)
    return {"tp": tp,
            "fp": np.bincount(pred, minlength=classes) - tp,
            "fn": np.bincount(truth, minlength=classes) - tp}


# A ratio metric from its counts: (numerator keys, denominator keys), as in sklearn
_RATIOS = {"precision": (("tp",), ("tp", "fp")), "recall": (("tp",), ("tp", "fn")),
           "specificity": (("tn",), ("tn", "fp")),
           "f1": (("tp", "tp"), ("tp", "tp", "fp", "fn"))}


def _ratio_counts(metric):
    def counts(y_true, y_pred, *, threshold=0.5, average="binary", sparse=False):
        _check_average(metric, average, ("binary",) if metric == "specificity" else _AVERAGES)
        if average == "binary":
            if sparse:
                raise InvalidArgumentError(f"{metric}: sparse=True applies to the multi-class "
                                           f"averages ('micro', 'macro', 'weighted')")
            return confusion_counts(y_true, y_pred, threshold=threshold)
        return class_confusion_counts(y_true, y_pred, sparse=sparse)

    return counts


def _ratio_value(metric):
    numerator, denominator = _RATIOS[metric]

    def value(counts, *, average="binary", **_):
        num = sum(counts[k] for k in numerator)
        den = sum(counts[k] for k in denominator)
        if average in ("binary", "micro"):
            return _ratio(np.sum(num), np.sum(den))
        per_class = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        if average == "macro":  # over the classes seen in y_true or y_pred, as sklearn does
            seen = (counts["tp"] + counts["fp"] + counts["fn"]) > 0
            return float(np.mean(per_class[seen])) if np.any(seen) else 0.0
        support = counts["tp"] + counts["fn"]
        return _ratio(np.sum(per_class * support), np.sum(support))

    return value


def _ratio_metric(metric, y_true, y_pred, threshold, average, sparse):
    count, value = COUNTED[metric]
    return value(count(y_true, y_pred, threshold=threshold, average=average, sparse=sparse),
                 average=average)


def true_positives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """Number of positives predicted positive (``y_pred > threshold``), as a float.

    >>> import numpy as np
    >>> true_positives(np.array([1, 1, 0]), np.array([0.9, 0.2, 0.7]))
    1.0
    """
    return confusion_counts(y_true, y_pred, threshold=threshold)["tp"]


def true_negatives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """Number of negatives predicted negative, as a float.

    >>> import numpy as np
    >>> true_negatives(np.array([1, 0, 0]), np.array([0.9, 0.2, 0.7]))
    1.0
    """
    return confusion_counts(y_true, y_pred, threshold=threshold)["tn"]


def false_positives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """Number of negatives predicted positive, as a float.

    >>> import numpy as np
    >>> false_positives(np.array([1, 0, 0]), np.array([0.9, 0.2, 0.7]))
    1.0
    """
    return confusion_counts(y_true, y_pred, threshold=threshold)["fp"]


def false_negatives(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """Number of positives predicted negative, as a float.

    >>> import numpy as np
    >>> false_negatives(np.array([1, 1, 0]), np.array([0.9, 0.2, 0.7]))
    1.0
    """
    return confusion_counts(y_true, y_pred, threshold=threshold)["fn"]


_AVERAGE_DOC = """

    ``average`` chooses, as in scikit-learn: ``"binary"`` (the default) thresholds ``y_pred``
    at ``threshold`` and scores the positive class; for multi-class scores of shape
    ``(..., classes)`` (predicted class ``argmax(y_pred, -1)``; ``y_true`` one-hot, or integer
    labels with ``sparse=True``), ``"micro"`` pools the counts of all classes, ``"macro"``
    averages the per-class values over the classes present in ``y_true`` or ``y_pred``, and
    ``"weighted"`` weighs them by each class's number of true examples. An undefined ratio is
    0.0 (scikit-learn's ``zero_division=0``)."""


def precision(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5,
              average: str = "binary", sparse: bool = False) -> float:
    """``tp / (tp + fp)``; 0.0 when nothing is predicted positive.{average}

    >>> import numpy as np
    >>> precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.1]))
    0.5
    >>> scores = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> precision(np.array([0, 1, 1]), scores, average="macro", sparse=True)
    0.75
    """
    return _ratio_metric("precision", y_true, y_pred, threshold, average, sparse)


def recall(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5, average: str = "binary",
           sparse: bool = False) -> float:
    """``tp / (tp + fn)``; 0.0 when there are no positives.{average}

    >>> import numpy as np
    >>> recall(np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.7]))
    0.6666666666666666
    """
    return _ratio_metric("recall", y_true, y_pred, threshold, average, sparse)


def sensitivity(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5,
                average: str = "binary", sparse: bool = False) -> float:
    """True positive rate, the same as :func:`recall`.

    >>> import numpy as np
    >>> sensitivity(np.array([1, 1]), np.array([0.9, 0.1]))
    0.5
    """
    return _ratio_metric("recall", y_true, y_pred, threshold, average, sparse)


def specificity(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """True negative rate ``tn / (tn + fp)``; 0.0 when there are no negatives.

    >>> import numpy as np
    >>> specificity(np.array([0, 0, 1]), np.array([0.9, 0.1, 0.9]))
    0.5
    """
    return _ratio_metric("specificity", y_true, y_pred, threshold, "binary", False)


def f1(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5, average: str = "binary",
       sparse: bool = False) -> float:
    """Harmonic mean of precision and recall, ``2 tp / (2 tp + fp + fn)``; 0.0 when
    undefined.{average}

    >>> import numpy as np
    >>> f1(np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.7]))
    0.6666666666666666
    """
    return _ratio_metric("f1", y_true, y_pred, threshold, average, sparse)


for _fn in (precision, recall, f1):
    _fn.__doc__ = _fn.__doc__.replace("{average}", _AVERAGE_DOC)
del _fn

# How a Loop accumulates each ratio metric over an epoch: (counts of a batch, value of the
# summed counts); both take the metric's keyword options.
COUNTED = {
    "accuracy": (_accuracy_counts, _accuracy_value),
    "sparse_categorical_accuracy": (_sparse_accuracy_counts, _accuracy_value),
    "top_k_categorical_accuracy": (_top_k_counts, _accuracy_value),
    "precision": (_ratio_counts("precision"), _ratio_value("precision")),
    "recall": (_ratio_counts("recall"), _ratio_value("recall")),
    "sensitivity": (_ratio_counts("recall"), _ratio_value("recall")),
    "specificity": (_ratio_counts("specificity"), _ratio_value("specificity")),
    "f1": (_ratio_counts("f1"), _ratio_value("f1")),
}


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of ``|y_true - y_pred|`` over all entries.

    >>> import numpy as np
    >>> mean_absolute_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]]))
    0.5
    """
    t, p = _np(y_true), _np(y_pred)
    if t.shape != p.shape:
        raise ShapeError(f"mean_absolute_error: y_true and y_pred must have the same shape, "
                         f"got y_true {t.shape} and y_pred {p.shape}")
    return float(np.mean(np.abs(t.astype(np.float64) - p)))


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of ``(y_true - y_pred) ** 2`` over all entries.

    >>> import numpy as np
    >>> mean_squared_error(np.array([[0.0, 1.0]]), np.array([[2.0, 1.0]]))
    2.0
    """
    t, p = _np(y_true), _np(y_pred)
    if t.shape != p.shape:
        raise ShapeError(f"mean_squared_error: y_true and y_pred must have the same shape, "
                         f"got y_true {t.shape} and y_pred {p.shape}")
    return float(np.mean((t.astype(np.float64) - p) ** 2))


for _name in __all__:  # strings or objects as targets or predictions: an error naming the metric
    globals()[_name] = numeric_arguments(globals()[_name], _name)
del _name
