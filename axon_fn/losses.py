"""Loss functions in the style of Elixir's ``Axon.Losses``.

Every loss is a pure function ``loss(y_true, y_pred, *, reduction="mean", ...)`` built from
:mod:`axon_fn.ops`, so it can be differentiated with :func:`axon_fn.grad`. The argument order is
Axon's: targets first, predictions second. Losses that compare vectors reduce the last axis
first (as Axon does); ``reduction`` then chooses what happens over the remaining (batch) axes:

* ``"none"``: the per-example losses,
* ``"mean"``: their mean (the default),
* ``"sum"``: their sum.

>>> import numpy as np
>>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
>>> y_pred = np.array([[1.0, 1.0], [1.0, 0.0]])
>>> mean_squared_error(y_true, y_pred, reduction="none")
array([0.5, 0.5])
>>> float(mean_squared_error(y_true, y_pred))
0.5
"""

from __future__ import annotations

import numpy as np

from ._dtypes import is_real_floating
from . import ops
from ._checks import numeric_arguments
from ._core import Staged, Tracer, stageable
from .backend import array_module, is_gpu_array
from .errors import InvalidArgumentError, ShapeError
from .ops._rules import shape_of
from .typing import Array, ArrayLike

__all__ = [
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "categorical_hinge",
    "connectionist_temporal_classification",
    "cosine_similarity",
    "hinge",
    "huber",
    "kl_divergence",
    "label_smoothing",
    "log_cosh",
    "margin_ranking",
    "mean_absolute_error",
    "mean_squared_error",
    "poisson",
    "soft_margin",
    "sparse_categorical_cross_entropy",
]

_REDUCTIONS = ("none", "mean", "sum")
_EPS = 1e-7
# Stand-in for log(0) in the CTC recursion: finite, so gradients never see inf - inf.
_LOG_ZERO = -1e30


# --------------------------------------------------------------------------------- helpers
def _as_array(x):
    """Leave arrays and traced values alone; turn lists and Python scalars into numpy arrays."""
    if hasattr(x, "shape"):
        return x
    return np.asarray(x, dtype=np.float64 if not isinstance(x, np.ndarray) else None)


def _check_reduction(name, reduction):
    if reduction not in _REDUCTIONS:
        raise InvalidArgumentError(
            f"{name}: reduction must be one of {', '.join(repr(r) for r in _REDUCTIONS)}, "
            f"got {reduction!r}")


def _reduce(name, loss, reduction):
    _check_reduction(name, reduction)
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _same_shape(name, y_true, y_pred):
    st, sp = shape_of(y_true), shape_of(y_pred)
    if st != sp:
        raise ShapeError(f"{name}: y_true and y_pred must have the same shape, "
                         f"got y_true {st} and y_pred {sp}")


def _prepare(name, y_true, y_pred, reduction):
    _check_reduction(name, reduction)
    y_true, y_pred = _as_array(y_true), _as_array(y_pred)
    _same_shape(name, y_true, y_pred)
    return y_true, y_pred


def _mean_last(x):
    """Mean over the last axis (a 0-d input is returned as is)."""
    return ops.mean(x, axis=-1) if len(shape_of(x)) > 0 else x


def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return ops.maximum(x, 0.0) + ops.log1p(ops.exp(-ops.abs(x)))


def _check_probabilities(name, y_pred, last_layer):
    """Refuse a ``y_pred`` that holds values outside [0, 1] where probabilities are expected:
    clipped, logits make the loss fall to 0.0 while nothing is learned. Checked where the
    values are on the host for free: eager calls, and the recording of a compiled step (a
    trainer's first step); a replay and a GPU array are not read."""
    value = y_pred
    while type(value) is Tracer or type(value) is Staged:
        value = value.value
    if type(value) is not np.ndarray or not value.size or not is_real_floating(value.dtype):
        return
    low, high = float(value.min()), float(value.max())
    if low < -1e-3 or high > 1.0 + 1e-3:
        raise InvalidArgumentError(
            f"{name}: y_pred holds values in [{low:.4g}, {high:.4g}], not probabilities in "
            f"[0, 1]; clipped to [0, 1] they would train to a loss of 0.0 without learning. If "
            f"the model's last layer gives logits, pass from_logits=True (e.g. "
            f"functools.partial(losses.{name}, from_logits=True) as the trainer's loss), or "
            f"end the model with a {last_layer} activation")


def _same_shape_or_sparse(name, y_true, y_pred):
    """:func:`_same_shape`, suggesting ``sparse=True`` for integer labels (one axis fewer)."""
    st, sp = shape_of(y_true), shape_of(y_pred)
    if st != sp and len(sp) >= 1 and st == sp[:-1]:
        raise ShapeError(f"{name}: y_true and y_pred must have the same shape, got y_true {st} "
                         f"and y_pred {sp}; y_true looks like integer class labels: pass "
                         f"sparse=True (or use sparse_{name})")
    _same_shape(name, y_true, y_pred)


# ------------------------------------------------------------------------------------ losses
def label_smoothing(y_true: ArrayLike, smoothing: float) -> Array:
    """Smooth one-hot targets: ``y_true * (1 - smoothing) + smoothing / num_classes``.

    The classes are along the last axis.

    >>> import numpy as np
    >>> label_smoothing(np.array([[0.0, 1.0]]), 0.2)
    array([[0.1, 0.9]])
    """
    if not 0.0 <= float(smoothing) <= 1.0:
        raise InvalidArgumentError(
            f"label_smoothing: smoothing must be in [0, 1], got {smoothing!r}")
    y_true = _as_array(y_true)
    classes = shape_of(y_true)[-1]
    return y_true * (1.0 - smoothing) + smoothing / classes


def binary_cross_entropy(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean",
                         from_logits: bool = False, positive_class_weight: float | None = None,
                         negative_class_weight: float | None = None) -> Array:
    """Binary cross-entropy, averaged over the last axis.

    ``loss = -mean(w_pos * y log p + w_neg * (1 - y) log(1 - p), axis=-1)``. With
    ``from_logits=True``, ``y_pred`` holds logits and the log-sigmoids are computed stably;
    otherwise probabilities are clipped to ``[1e-7, 1 - 1e-7]``.

    >>> import numpy as np
    >>> y_true = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> y_pred = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> binary_cross_entropy(y_true, y_pred, reduction="none")
    array([0.69314718, 0.69314718])
    """
    name = "binary_cross_entropy"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    if from_logits:
        neg_log_p = _softplus(-y_pred)        # -log(sigmoid(x))
        neg_log_1mp = _softplus(y_pred)       # -log(1 - sigmoid(x))
    else:
        _check_probabilities(name, y_pred, "sigmoid")
        p = ops.clip(y_pred, _EPS, 1.0 - _EPS)
        neg_log_p = -ops.log(p)
        neg_log_1mp = -ops.log1p(-p)
    pos = y_true * neg_log_p
    neg = (1.0 - y_true) * neg_log_1mp
    if positive_class_weight is not None:
        pos = pos * positive_class_weight
    if negative_class_weight is not None:
        neg = neg * negative_class_weight
    return _reduce(name, _mean_last(pos + neg), reduction)


@stageable
def _integer_labels(labels, *, name):
    """Sparse labels as integers (integer-valued floats are accepted), checked on every call,
    a compiled one included."""
    if np.issubdtype(labels.dtype, np.integer):
        return labels
    if np.all(np.mod(labels, 1) == 0):
        return labels.astype(np.int64)
    raise InvalidArgumentError(f"{name}: sparse labels must be integers")


def categorical_cross_entropy(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean",
                              from_logits: bool = False, sparse: bool = False,
                              class_weights: ArrayLike | None = None,
                              label_smoothing: float = 0.0) -> Array:
    """Categorical cross-entropy over the last (class) axis.

    ``loss = -sum(w * y_true * log p, axis=-1)``. ``sparse=True`` takes integer class labels of
    shape ``y_pred.shape[:-1]`` (or with a trailing 1). ``class_weights`` (one per class) weight
    each class's term; ``reduction="mean"`` then divides as PyTorch's ``cross_entropy(weight=w)``
    does: with ``sparse`` labels, by the sum of the weights of the true classes (also with
    ``label_smoothing``); with probability targets (``sparse=False``), by the number of
    examples. ``label_smoothing`` smooths the targets first. With ``from_logits=True`` a stable
    log-softmax is used; otherwise probabilities are clipped to ``[1e-7, 1]``.

    >>> import numpy as np
    >>> y_true = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> np.round(categorical_cross_entropy(y_true, y_pred, reduction="none"), 4)
    array([0.0513, 2.3026])
    >>> float(np.round(categorical_cross_entropy(np.array([1, 2]), y_pred, sparse=True), 4))
    1.1769
    """
    name = "categorical_cross_entropy"
    _check_reduction(name, reduction)
    y_true, y_pred = _as_array(y_true), _as_array(y_pred)
    sp = shape_of(y_pred)
    if sparse:
        keep = type(y_true) is Staged or is_gpu_array(y_true)
        labels = _integer_labels(y_true if keep else np.asarray(y_true), name=name)
        if labels.shape == sp[:-1] + (1,) and len(sp) > 1:
            labels = labels.reshape(sp[:-1])
        if labels.shape != sp[:-1]:
            raise ShapeError(f"{name}: sparse y_true must have shape y_pred.shape[:-1] "
                             f"(optionally with a trailing 1), got y_true {labels.shape} "
                             f"and y_pred {sp}")
        if from_logits and class_weights is None and not label_smoothing:
            # the common case as one fused primitive (a C kernel), with its own VJP
            return _reduce(name, ops.softmax_cross_entropy(y_pred, labels), reduction)
        dtype = getattr(y_pred, "dtype", np.float64)
        y_true = ops.one_hot(labels, sp[-1], dtype=dtype)
        true_classes = y_true  # before smoothing: the mean divides by their weights
    else:
        _same_shape_or_sparse(name, y_true, y_pred)
    if label_smoothing:
        y_true = globals()["label_smoothing"](y_true, label_smoothing)
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
    else:
        _check_probabilities(name, y_pred, "softmax")
        log_p = ops.log(ops.clip(y_pred, _EPS, 1.0))
    if class_weights is None:
        return _reduce(name, -ops.sum(y_true * log_p, axis=-1), reduction)
    weights = np.asarray(class_weights, dtype=np.float64)
    if weights.shape != (sp[-1],):
        raise ShapeError(f"{name}: class_weights must have shape ({sp[-1]},), "
                         f"got {weights.shape}")
    if is_gpu_array(y_pred):
        weights = array_module(y_pred).asarray(weights)  # one small copy to the device
    loss = -ops.sum(y_true * log_p * weights, axis=-1)
    if reduction == "mean" and sparse:
        return ops.sum(loss) / ops.sum(true_classes * weights)
    return _reduce(name, loss, reduction)


def sparse_categorical_cross_entropy(y_true: ArrayLike, y_pred: ArrayLike, *,
                                     reduction: str = "mean", from_logits: bool = False,
                                     class_weights: ArrayLike | None = None,
                                     label_smoothing: float = 0.0) -> Array:
    """:func:`categorical_cross_entropy` with integer class labels (``sparse=True``), Keras's
    name: ``y_true`` has shape ``y_pred.shape[:-1]`` (or with a trailing 1).

    >>> import numpy as np
    >>> y_pred = np.array([[0.25, 0.75], [0.5, 0.5]])
    >>> float(np.round(sparse_categorical_cross_entropy(np.array([1, 0]), y_pred), 4))
    0.4904
    """
    return categorical_cross_entropy(y_true, y_pred, reduction=reduction,
                                     from_logits=from_logits, sparse=True,
                                     class_weights=class_weights,
                                     label_smoothing=label_smoothing)


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Categorical hinge: ``max(0, max((1 - y) * p) - sum(y * p) + 1)`` over the last axis.

    At the kink (a margin of exactly 0) the gradient is 0, as PyTorch's ``MultiMarginLoss``;
    where several classes tie for the largest wrong score, they share its gradient equally.

    >>> import numpy as np
    >>> categorical_hinge(np.array([[0.0, 1.0]]), np.array([[0.2, 0.6]]), reduction="none")
    array([0.6])
    """
    name = "categorical_hinge"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return _reduce(name, ops.relu(neg - pos + 1.0), reduction)


def hinge(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Hinge loss ``mean(max(0, 1 - y_true * y_pred), axis=-1)`` with targets in {-1, 1}.

    At the kink (``y_true * y_pred == 1``) the gradient is 0, as PyTorch's ``MultiMarginLoss``.

    >>> import numpy as np
    >>> hinge(np.array([[1.0, -1.0]]), np.array([[0.5, 0.5]]), reduction="none")
    array([1.])
    """
    name = "hinge"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    return _reduce(name, _mean_last(ops.relu(1.0 - y_true * y_pred)), reduction)


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Kullback-Leibler divergence ``sum(y * log(y / p), axis=-1)``; both clipped to [1e-7, 1].

    >>> import numpy as np
    >>> kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), reduction="none")
    array([0.])
    """
    name = "kl_divergence"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    t = ops.clip(y_true, _EPS, 1.0)
    p = ops.clip(y_pred, _EPS, 1.0)
    return _reduce(name, ops.sum(t * (ops.log(t) - ops.log(p)), axis=-1), reduction)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Log-cosh ``mean(log(cosh(p - y)), axis=-1)``, computed without overflow.

    >>> import numpy as np
    >>> log_cosh(np.array([[0.0, 0.0]]), np.array([[0.0, 1000.0]]), reduction="none")
    array([499.65342641])
    """
    name = "log_cosh"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    a = ops.abs(y_pred - y_true)
    value = a + ops.log1p(ops.exp(-2.0 * a)) - np.log(2.0)
    return _reduce(name, _mean_last(value), reduction)


def margin_ranking(y_true: ArrayLike, y_pred: ArrayLike, *, margin: float = 0.0,
                   reduction: str = "mean") -> Array:
    """Margin ranking ``max(0, -y_true * (y_pred1 - y_pred2) + margin)``, elementwise.

    ``y_pred`` is a pair ``(y_pred1, y_pred2)``; ``y_true`` holds 1 (the first should rank
    higher) or -1.

    >>> import numpy as np
    >>> margin_ranking(np.array([1.0, -1.0]), (np.array([0.3, 0.3]), np.array([0.1, 0.1])),
    ...                reduction="none")
    array([0. , 0.2])
    """
    name = "margin_ranking"
    _check_reduction(name, reduction)
    if not isinstance(y_pred, (tuple, list)) or len(y_pred) != 2:
        raise InvalidArgumentError(f"{name}: y_pred must be a pair (y_pred1, y_pred2)")
    y_true = _as_array(y_true)
    p1, p2 = _as_array(y_pred[0]), _as_array(y_pred[1])
    _same_shape(name, y_true, p1)
    _same_shape(name, y_true, p2)
    return _reduce(name, ops.maximum(-y_true * (p1 - p2) + margin, 0.0), reduction)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Mean absolute error ``mean(|y_true - y_pred|, axis=-1)``.

    >>> import numpy as np
    >>> mean_absolute_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]]), reduction="none")
    array([0.5])
    """
    name = "mean_absolute_error"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    return _reduce(name, _mean_last(ops.abs(y_true - y_pred)), reduction)


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Mean squared error ``mean((y_true - y_pred) ** 2, axis=-1)``.

    >>> import numpy as np
    >>> mean_squared_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]]), reduction="none")
    array([0.5])
    """
    name = "mean_squared_error"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    d = y_true - y_pred
    return _reduce(name, _mean_last(d * d), reduction)


def huber(y_true: ArrayLike, y_pred: ArrayLike, *, delta: float = 1.0,
          reduction: str = "mean") -> Array:
    """Huber loss, averaged over the last axis.

    Elementwise ``0.5 d^2`` where ``|d| <= delta`` and ``delta * (|d| - 0.5 delta)`` elsewhere,
    with ``d = y_true - y_pred``.

    >>> import numpy as np
    >>> huber(np.array([[0.0, 0.0]]), np.array([[0.5, 3.0]]), reduction="none")
    array([1.3125])
    """
    name = "huber"
    if delta <= 0:
        raise InvalidArgumentError(f"{name}: delta must be positive, got {delta!r}")
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    a = ops.abs(y_true - y_pred)
    quadratic = ops.minimum(a, delta)
    linear = a - quadratic
    # 0.5 q^2 + delta * l equals both branches and has no where() at the kink.
    return _reduce(name, _mean_last(0.5 * quadratic * quadratic + delta * linear), reduction)


def poisson(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Poisson loss ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    >>> import numpy as np
    >>> np.round(poisson(np.array([[1.0]]), np.array([[1.0]]), reduction="none"), 6)
    array([1.])
    """
    name = "poisson"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    return _reduce(name, _mean_last(y_pred - y_true * ops.log(y_pred + _EPS)), reduction)


def soft_margin(y_true: ArrayLike, y_pred: ArrayLike, *, reduction: str = "mean") -> Array:
    """Soft margin ``mean(log(1 + exp(-y_true * y_pred)), axis=-1)``, stable for large inputs.

    >>> import numpy as np
    >>> soft_margin(np.array([[1.0, -1.0]]), np.array([[0.0, 0.0]]), reduction="none")
    array([0.69314718])
    """
    name = "soft_margin"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    return _reduce(name, _mean_last(_softplus(-y_true * y_pred)), reduction)


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, *, axis: int = -1, eps: float = 1e-8,
                      reduction: str = "mean") -> Array:
    """Cosine similarity ``<y, p> / max(|y| |p|, eps)`` along ``axis`` (Axon's definition: the
    similarity itself; use ``1 - cosine_similarity`` or its negation to minimise).

    >>> import numpy as np
    >>> cosine_similarity(np.array([[1.0, 0.0], [1.0, 1.0]]),
    ...                   np.array([[2.0, 0.0], [-1.0, -1.0]]), reduction="none")
    array([ 1., -1.])
    """
    name = "cosine_similarity"
    y_true, y_pred = _prepare(name, y_true, y_pred, reduction)
    dot = ops.sum(y_true * y_pred, axis=axis)
    norms = ops.sqrt(ops.sum(y_true * y_true, axis=axis) * ops.sum(y_pred * y_pred, axis=axis))
    return _reduce(name, dot / ops.maximum(norms, eps), reduction)


def connectionist_temporal_classification(y_true: ArrayLike, y_pred: ArrayLike, *,
                                          target_lengths: ArrayLike | None = None,
                                          input_lengths: ArrayLike | None = None, blank: int = 0,
                                          reduction: str = "mean") -> Array:
    """Connectionist temporal classification loss (negative log-likelihood per sequence).

    ``y_pred`` holds log-probabilities of shape ``(batch, time, classes)`` (apply
    ``ops.log_softmax`` to logits first). ``y_true`` holds integer targets ``(batch, S)`` padded
    to the longest; ``target_lengths`` (default: ``S`` for all) and ``input_lengths`` (default:
    ``time``) give the true lengths. As in Axon, ``y_true`` may also be a pair
    ``(target_lengths, targets)``. The class ``blank`` (0) is the blank. The forward algorithm
    runs in log space over the target extended with blanks; ``"mean"`` averages over the batch.
    An impossible alignment (target too long for the input) gives a loss of about ``1e30``.

    >>> import numpy as np
    >>> log_probs = np.log(np.full((1, 2, 2), 0.5))
    >>> # paths for target [1] over 2 steps: (1,1), (0,1), (1,0): probability 3/4
    >>> round(float(connectionist_temporal_classification(np.array([[1]]), log_probs)), 6)
    0.287682
    """
    name = "connectionist_temporal_classification"
    _check_reduction(name, reduction)
    if isinstance(y_true, tuple):
        target_lengths, y_true = y_true
    targets = np.asarray(y_true)
    if targets.ndim == 1:
        targets = targets[None, :]
    y_pred = _as_array(y_pred)
    sp = shape_of(y_pred)
    if len(sp) != 3:
        raise ShapeError(f"{name}: y_pred must have shape (batch, time, classes), got {sp}")
    batch, steps, classes = sp
    if targets.ndim != 2 or targets.shape[0] != batch:
        raise ShapeError(f"{name}: y_true must have shape (batch, S) with batch {batch}, "
                         f"got y_true {targets.shape} and y_pred {sp}")
    targets = targets.astype(np.int64)
    s_max = targets.shape[1]
    t_len = (np.full(batch, s_max, np.int64) if target_lengths is None
             else np.asarray(target_lengths, np.int64).reshape(batch))
    in_len = (np.full(batch, steps, np.int64) if input_lengths is None
              else np.asarray(input_lengths, np.int64).reshape(batch))
    if np.any(t_len < 0) or np.any(t_len > s_max) or np.any(in_len < 1) or np.any(in_len > steps):
        raise InvalidArgumentError(f"{name}: target_lengths must be in [0, {s_max}] and "
                                   f"input_lengths in [1, {steps}]")
    valid = np.arange(s_max)[None, :] < t_len[:, None]
    if np.any(valid & ((targets < 0) | (targets >= classes))):
        raise InvalidArgumentError(f"{name}: targets must be class indices in [0, {classes})")
    targets = np.where(valid, targets, blank)

    # Extended label sequence: blank, l1, blank, l2, ..., lS, blank.
    ext_len = 2 * s_max + 1
    ext = np.full((batch, ext_len), blank, np.int64)
    ext[:, 1::2] = targets
    # A label position may be reached from two positions back when that label differs.
    skip = np.zeros((batch, ext_len), bool)
    if s_max > 1:
        skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    emit = ops.take_along_axis(
        y_pred, np.broadcast_to(ext[:, None, :], (batch, steps, ext_len)), axis=2)

    # Virtual start: log-probability 0 at position 0, so step 0 enters positions 0 and 1.
    alpha = np.full((batch, ext_len), _LOG_ZERO)
    alpha[:, 0] = 0.0
    for t in range(steps):
        stay = alpha
        step1 = ops.pad(alpha[:, :-1], ((0, 0), (1, 0)), constant_value=_LOG_ZERO)
        if ext_len > 2:
            step2 = ops.where(skip, ops.pad(alpha[:, :-2], ((0, 0), (2, 0)),
                                            constant_value=_LOG_ZERO), _LOG_ZERO)
        else:
            step2 = np.full((batch, ext_len), _LOG_ZERO)
        new = ops.logsumexp(ops.stack([stay, step1, step2]), axis=0) + emit[:, t, :]
        if t == 0:
            alpha = new
        else:
            alpha = ops.where((t < in_len)[:, None], new, alpha)
    last = 2 * t_len
    ends = np.stack([last, np.maximum(last - 1, 0)], axis=1)
    final = ops.take_along_axis(alpha, ends, axis=1)
    final = ops.where(np.stack([np.ones(batch, bool), t_len > 0], axis=1), final, _LOG_ZERO)
    loss = -ops.logsumexp(final, axis=1)
    return _reduce(name, loss, reduction)


for _name in __all__:  # strings or objects as targets or predictions: an error naming the loss
    if _name != "label_smoothing":
        globals()[_name] = numeric_arguments(globals()[_name], _name)
del _name
