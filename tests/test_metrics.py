import numpy as np
import pytest

from axon_fn import metrics
from axon_fn.errors import InvalidArgumentError, ShapeError

Y = np.array([1, 0, 1, 1, 0, 0])
P = np.array([0.9, 0.6, 0.4, 0.8, 0.1, 0.3])
# predicted positive: [1, 1, 0, 1, 0, 0] -> tp=2, fp=1, fn=1, tn=2


def test_confusion_counts():
    assert metrics.confusion_counts(Y, P) == {"tp": 2.0, "tn": 2.0, "fp": 1.0, "fn": 1.0}
    assert metrics.true_positives(Y, P) == 2.0
    assert metrics.true_negatives(Y, P) == 2.0
    assert metrics.false_positives(Y, P) == 1.0
    assert metrics.false_negatives(Y, P) == 1.0
    assert isinstance(metrics.true_positives(Y, P), float)
    assert metrics.true_positives(Y, P, threshold=0.85) == 1.0


def test_ratios():
    assert metrics.precision(Y, P) == pytest.approx(2 / 3)
    assert metrics.recall(Y, P) == pytest.approx(2 / 3)
    assert metrics.sensitivity(Y, P) == pytest.approx(2 / 3)
    assert metrics.specificity(Y, P) == pytest.approx(2 / 3)
    assert metrics.f1(Y, P) == pytest.approx(2 / 3)
    y, p = np.array([1, 1, 1, 0]), np.array([0.9, 0.9, 0.1, 0.9])
    assert metrics.precision(y, p) == pytest.approx(2 / 3)
    assert metrics.recall(y, p) == pytest.approx(2 / 3)
    assert metrics.f1(y, p) == pytest.approx(2 / 3)
    assert metrics.specificity(y, p) == 0.0


def test_zero_denominators_give_zero():
    y = np.array([1.0, 0.0, 1.0])
    p = np.zeros(3)
    assert metrics.precision(y, p) == 0.0
    assert metrics.f1(y, p) == 0.0
    assert metrics.recall(np.zeros(3), p) == 0.0
    assert metrics.specificity(np.ones(3), p) == 0.0


def test_binary_accuracy():
    assert metrics.accuracy(Y[:, None], P[:, None]) == pytest.approx(4 / 6)
    assert metrics.accuracy(Y, P) == pytest.approx(4 / 6)
    assert metrics.accuracy(Y, P, threshold=0.95) == pytest.approx(3 / 6)
    logits = np.log(P / (1 - P))
    assert metrics.accuracy(Y, logits, from_logits=True) == pytest.approx(4 / 6)
    assert metrics.accuracy(Y, np.array([1e4, -1e4, 1e4, 1e4, -1e4, -1e4]),
                            from_logits=True) == 1.0


def test_categorical_and_sparse_accuracy():
    y_pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    labels = np.array([1, 0, 0, 2])
    assert metrics.accuracy(np.eye(3)[labels], y_pred) == 0.5
    assert metrics.accuracy(labels, y_pred, sparse=True) == 0.5
    assert metrics.accuracy(labels[:, None], y_pred, sparse=True) == 0.5


def test_top_k():
    y_pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    labels = np.array([1, 2, 0, 2])
    assert metrics.top_k_categorical_accuracy(labels, y_pred, k=1, sparse=True) == 0.25
    assert metrics.top_k_categorical_accuracy(np.eye(3)[labels], y_pred, k=2) == 0.5
    assert metrics.top_k_categorical_accuracy(labels, y_pred, k=3, sparse=True) == 1.0
    assert metrics.top_k_categorical_accuracy(labels, y_pred, sparse=True) == 1.0
    with pytest.raises(InvalidArgumentError):
        metrics.top_k_categorical_accuracy(labels, y_pred, k=0, sparse=True)


def test_regression_metrics():
    t = np.array([[0.0, 1.0], [2.0, 3.0]])
    p = np.array([[1.0, 1.0], [0.0, 3.0]])
    assert metrics.mean_absolute_error(t, p) == pytest.approx(0.75)
    assert metrics.mean_squared_error(t, p) == pytest.approx(1.25)


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        metrics.precision(np.ones(3), np.ones(2))
    with pytest.raises(ShapeError):
        metrics.accuracy(np.array([0, 1]), np.ones((3, 2)), sparse=True)
    with pytest.raises(ShapeError):
        metrics.mean_squared_error(np.ones(3), np.ones(2))


def test_all_exported_and_documented():
    for name in metrics.__all__:
        fn = getattr(metrics, name)
        assert fn.__doc__ and ">>>" in fn.__doc__, name


# Multi-class averages against scikit-learn's definitions, written out ------------------------


def _sklearn_prf(labels_true, labels_pred, average):
    """scikit-learn's precision_recall_fscore_support(average=..., zero_division=0): per-class
    counts over the labels present in y_true or y_pred; micro pools them, macro is the plain
    mean over those labels, weighted the mean weighted by each label's support."""
    present = np.union1d(labels_true, labels_pred)
    tp = np.array([np.sum((labels_true == c) & (labels_pred == c)) for c in present], float)
    pred = np.array([np.sum(labels_pred == c) for c in present], float)
    true = np.array([np.sum(labels_true == c) for c in present], float)

    def div(a, b):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)

    if average == "micro":
        p, r = div(tp.sum(), pred.sum()), div(tp.sum(), true.sum())
        return float(p), float(r), float(div(2 * p * r, p + r))
    p, r = div(tp, pred), div(tp, true)
    f = div(2 * p * r, p + r)
    weights = np.ones_like(true) if average == "macro" else true
    return tuple(float(np.sum(v * weights) / np.sum(weights)) for v in (p, r, f))


@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_multiclass_averages_match_sklearn_definitions(average):
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 5))
    scores[:, 4] -= 100.0  # class 4 is never predicted nor true: sklearn leaves it out
    labels = rng.integers(0, 4, size=40)
    want = _sklearn_prf(labels, np.argmax(scores, -1), average)
    one_hot = np.eye(5)[labels]
    for y_true, sparse in ((labels, True), (one_hot, False)):
        got = tuple(fn(y_true, scores, average=average, sparse=sparse)
                    for fn in (metrics.precision, metrics.recall, metrics.f1))
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert metrics.sensitivity(labels, scores, average=average, sparse=True) == want[1]


def test_multiclass_averages_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    scores, labels = rng.normal(size=(30, 4)), rng.integers(0, 4, size=30)
    pred = np.argmax(scores, -1)
    for average in ("micro", "macro", "weighted"):
        for ours, theirs in ((metrics.precision, sk.precision_score),
                             (metrics.recall, sk.recall_score), (metrics.f1, sk.f1_score)):
            want = theirs(labels, pred, average=average, zero_division=0)
            assert ours(labels, scores, average=average, sparse=True) == pytest.approx(want)


def test_average_errors():
    scores = np.array([[0.2, 0.8], [0.9, 0.1]])
    with pytest.raises(InvalidArgumentError, match=r"precision: `average` must be one of "
                                                   r"'binary', 'micro', 'macro', 'weighted'"):
        metrics.precision(np.array([0, 1]), scores, average="samples", sparse=True)
    with pytest.raises(ShapeError, match=r"at least 2 classes.*average='binary'"):
        metrics.f1(np.array([1.0, 0.0]), np.array([0.7, 0.2]), average="macro")
    with pytest.raises(InvalidArgumentError, match=r"labels must lie in \[0, 2\)"):
        metrics.recall(np.array([0, 2]), scores, average="micro", sparse=True)
    with pytest.raises(InvalidArgumentError, match=r"sparse=True applies to the multi-class"):
        metrics.recall(np.array([0, 1]), np.array([0.2, 0.7]), sparse=True)


# Epoch values from counts ---------------------------------------------------------------------


def test_epoch_ratios_are_over_the_epochs_examples():
    from axon_fn.loop import Loop

    rng = np.random.default_rng(5)
    scores = rng.normal(size=(10, 3))
    labels = rng.integers(0, 3, size=10)
    batches = [(labels[:4], scores[:4]), (labels[4:8], scores[4:8]), (labels[8:], scores[8:])]
    loop = Loop(lambda batch, _: batch)
    for name, options in [("accuracy", {"sparse": True}),
                          ("top_k_categorical_accuracy", {"k": 2, "sparse": True}),
                          ("precision", {"average": "macro", "sparse": True}),
                          ("recall", {"average": "weighted", "sparse": True}),
                          ("f1", {"average": "micro", "sparse": True}),
                          ("f1", {"average": "macro", "sparse": True})]:
        label = f"{name}_{options.get('average', '')}"
        loop = loop.metric(name, label, **options)
        epoch = loop.run(batches).history[0]
        whole = getattr(metrics, name)(labels, scores, **options)
        assert epoch[label] == pytest.approx(whole, rel=1e-12), label
        per_batch = np.mean([getattr(metrics, name)(t, p, **options) for t, p in batches])
        assert per_batch != pytest.approx(whole), label  # the batches are uneven: they differ


def test_loop_metric_options_are_checked():
    from axon_fn.loop import Loop

    with pytest.raises(InvalidArgumentError, match=r"'accuracy' takes the options \['threshold'"
                                                   r".*got \['average'\]"):
        Loop(lambda b, s: b).metric("accuracy", average="macro")
    with pytest.raises(InvalidArgumentError, match=r"f1: `average` must be one of"):
        Loop(lambda b, s: b).metric("f1", average="sample")
    with pytest.raises(InvalidArgumentError, match=r"functools.partial"):
        Loop(lambda b, s: b).metric(metrics.f1, average="macro")
