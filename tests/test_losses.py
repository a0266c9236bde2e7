import itertools

import numpy as np
import pytest

import axon_fn
from axon_fn import losses, ops
from axon_fn.errors import InvalidArgumentError, ShapeError
from axon_fn.testing import check_grads

RNG = np.random.default_rng(0)
EPS = 1e-7


def _reduce(x, reduction):
    return {"none": x, "mean": np.mean(x), "sum": np.sum(x)}[reduction]


def _softplus(x):
    return np.logaddexp(0.0, x)


def _probs(shape):
    x = RNG.uniform(0.1, 0.9, size=shape)
    return x


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


Y01 = (RNG.uniform(size=(4, 3)) > 0.5).astype(float)
P = _probs((4, 3))
X = RNG.normal(size=(4, 3))
X2 = RNG.normal(size=(4, 3)) + 0.5
PM1 = np.where(Y01 > 0, 1.0, -1.0)
ONEHOT = np.eye(3)[[0, 2, 1, 2]]
DIST = _softmax(RNG.normal(size=(4, 3)))
DIST2 = _softmax(RNG.normal(size=(4, 3)))
POS = RNG.uniform(0.5, 2.0, size=(4, 3))
COUNTS = RNG.integers(0, 4, size=(4, 3)).astype(float)

# name -> (function, kwargs, y_true, y_pred, numpy reference giving per-example losses)
CASES = {
    "bce": (losses.binary_cross_entropy, {}, Y01, P,
            lambda t, p: -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), -1)),
    "bce_logits": (losses.binary_cross_entropy, {"from_logits": True}, Y01, X,
                   lambda t, p: -np.mean(t * np.log(1 / (1 + np.exp(-p)))
                                         + (1 - t) * np.log(1 - 1 / (1 + np.exp(-p))), -1)),
    "bce_weighted": (losses.binary_cross_entropy,
                     {"positive_class_weight": 2.0, "negative_class_weight": 0.5}, Y01, P,
                     lambda t, p: -np.mean(2.0 * t * np.log(p)
                                           + 0.5 * (1 - t) * np.log(1 - p), -1)),
    "cce": (losses.categorical_cross_entropy, {}, ONEHOT, DIST,
            lambda t, p: -np.sum(t * np.log(p), -1)),
    "cce_logits": (losses.categorical_cross_entropy, {"from_logits": True}, ONEHOT, X,
                   lambda t, p: -np.sum(t * np.log(_softmax(p)), -1)),
    "cce_smooth": (losses.categorical_cross_entropy, {"label_smoothing": 0.3}, ONEHOT, DIST,
                   lambda t, p: -np.sum((t * 0.7 + 0.1) * np.log(p), -1)),
    "categorical_hinge": (losses.categorical_hinge, {}, ONEHOT, X,
                          lambda t, p: np.maximum(0, np.max((1 - t) * p, -1)
                                                  - np.sum(t * p, -1) + 1)),
    "hinge": (losses.hinge, {}, PM1, X,
              lambda t, p: np.mean(np.maximum(0, 1 - t * p), -1)),
    "kl": (losses.kl_divergence, {}, DIST, DIST2,
           lambda t, p: np.sum(t * np.log(t / p), -1)),
    "log_cosh": (losses.log_cosh, {}, X, X2,
                 lambda t, p: np.mean(np.log(np.cosh(p - t)), -1)),
    "mae": (losses.mean_absolute_error, {}, X, X2, lambda t, p: np.mean(np.abs(t - p), -1)),
    "mse": (losses.mean_squared_error, {}, X, X2, lambda t, p: np.mean((t - p) ** 2, -1)),
    "huber": (losses.huber, {"delta": 0.7}, X, X2 * 2,
              lambda t, p: np.mean(np.where(np.abs(t - p) <= 0.7, 0.5 * (t - p) ** 2,
                                            0.7 * (np.abs(t - p) - 0.35)), -1)),
    "poisson": (losses.poisson, {}, COUNTS, POS,
                lambda t, p: np.mean(p - t * np.log(p + EPS), -1)),
    "soft_margin": (losses.soft_margin, {}, PM1, X,
                    lambda t, p: np.mean(np.log(1 + np.exp(-t * p)), -1)),
    "cosine": (losses.cosine_similarity, {}, X, X2,
               lambda t, p: np.sum(t * p, -1) / (np.linalg.norm(t, axis=-1)
                                                 * np.linalg.norm(p, axis=-1))),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_against_numpy_reference(case, reduction):
    fn, kw, t, p, ref = CASES[case]
    out = fn(t, p, reduction=reduction, **kw)
    np.testing.assert_allclose(out, _reduce(ref(t, p), reduction), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", sorted(set(CASES) - {"mae"}))
def test_gradients(case):
    fn, kw, t, p, _ = CASES[case]
    check_grads(lambda pred: fn(t, pred, **kw), p)


def test_mae_gradient_away_from_kink():
    check_grads(lambda pred: losses.mean_absolute_error(X, pred), X + 0.3)


def test_sparse_categorical_matches_one_hot():
    labels = np.array([0, 2, 1, 2])
    for kw in [{}, {"from_logits": True}, {"label_smoothing": 0.2}]:
        pred = X if kw.get("from_logits") else DIST
        a = losses.categorical_cross_entropy(labels, pred, sparse=True, **kw)
        b = losses.categorical_cross_entropy(ONEHOT, pred, **kw)
        np.testing.assert_allclose(a, b)
    a = losses.categorical_cross_entropy(labels[:, None], DIST, sparse=True, reduction="none")
    np.testing.assert_allclose(a, -np.log(DIST[np.arange(4), labels]))
    check_grads(lambda x: losses.categorical_cross_entropy(labels, x, sparse=True,
                                                           from_logits=True), X)


def test_class_weights():
    w = np.array([1.0, 2.0, 0.5])
    labels = np.array([0, 2, 1, 2])
    per = -np.log(DIST[np.arange(4), labels]) * w[labels]
    np.testing.assert_allclose(
        losses.categorical_cross_entropy(ONEHOT, DIST, class_weights=w, reduction="none"), per)
    np.testing.assert_allclose(
        losses.categorical_cross_entropy(ONEHOT, DIST, class_weights=w, reduction="sum"),
        per.sum())
    np.testing.assert_allclose(
        losses.categorical_cross_entropy(labels, DIST, sparse=True, class_weights=w),
        per.sum() / w[labels].sum())
    check_grads(lambda p: losses.categorical_cross_entropy(ONEHOT, p, class_weights=w), DIST)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_margin_ranking(reduction):
    y = np.array([1.0, -1.0, 1.0, -1.0])
    a, b = RNG.normal(size=4), RNG.normal(size=4)
    ref = np.maximum(0, -y * (a - b) + 0.1)
    out = losses.margin_ranking(y, (a, b), margin=0.1, reduction=reduction)
    np.testing.assert_allclose(out, _reduce(ref, reduction))
    check_grads(lambda p, q: losses.margin_ranking(y, (p, q), margin=0.1), a, b + 0.05)


def test_label_smoothing_helper():
    np.testing.assert_allclose(losses.label_smoothing(np.eye(4), 0.4),
                               np.eye(4) * 0.6 + 0.1)
    with pytest.raises(InvalidArgumentError):
        losses.label_smoothing(np.eye(2), 1.5)


def test_stability_huge_logits():
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    t = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    out = losses.binary_cross_entropy(t, big, from_logits=True, reduction="none")
    np.testing.assert_allclose(out, [np.log(2) / 3, (1e4 + 1e4 + 5e3) / 3])
    g = axon_fn.grad(lambda x: losses.binary_cross_entropy(t, x, from_logits=True))(big)
    assert np.all(np.isfinite(g))
    out = losses.categorical_cross_entropy(np.array([0, 1]), big, sparse=True,
                                           from_logits=True, reduction="none")
    np.testing.assert_allclose(out, [0.0, 0.0], atol=1e-12)
    g = axon_fn.grad(lambda x: losses.categorical_cross_entropy(
        np.array([2, 0]), x, sparse=True, from_logits=True))(big)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(losses.log_cosh(np.zeros(2), np.array([1e4, -1e4]),
                                               reduction="none"), 1e4 - np.log(2))
    np.testing.assert_allclose(losses.soft_margin(np.array([[1.0, -1.0]]),
                                                  np.array([[-1e4, -1e4]])), 5e3)
    # probabilities of exactly 0 and 1 are clipped, not log(0)
    out = losses.binary_cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(out, -np.log(EPS), rtol=1e-6)


def test_float32_stays_float32():
    t = Y01.astype(np.float32)
    out = losses.binary_cross_entropy(t, X.astype(np.float32), from_logits=True,
                                      reduction="none")
    assert out.dtype == np.float32


# ------------------------------------------------------------------------------------- CTC
def _collapse(path, blank=0):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out


def _ctc_brute(log_probs, target):
    t_steps, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=t_steps):
        if _collapse(path) == list(target):
            total += np.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
    return -np.log(total)


def _log_softmax(x):
    return x - np.log(np.sum(np.exp(x - x.max(-1, keepdims=True)), -1,
                             keepdims=True)) - x.max(-1, keepdims=True)


@pytest.mark.parametrize("target", [[1], [2], [1, 2], [1, 1], [2, 2], [2, 1]])
def test_ctc_brute_force(target):
    lp = _log_softmax(RNG.normal(size=(1, 3, 3)))
    out = losses.connectionist_temporal_classification(np.array([target]), lp,
                                                       reduction="none")
    np.testing.assert_allclose(out, [_ctc_brute(lp[0], target)], rtol=1e-10)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_batched_with_lengths(reduction):
    lp = _log_softmax(RNG.normal(size=(4, 3, 3)))
    targets = np.array([[1, 2], [1, 0], [2, 2], [0, 0]])
    t_len = np.array([2, 1, 1, 0])
    in_len = np.array([3, 3, 2, 2])
    ref = np.array([_ctc_brute(lp[b, :in_len[b]], targets[b, :t_len[b]]) for b in range(4)])
    out = losses.connectionist_temporal_classification(
        targets, lp, target_lengths=t_len, input_lengths=in_len, reduction=reduction)
    np.testing.assert_allclose(out, _reduce(ref, reduction), rtol=1e-10)
    # Axon-style (lengths, targets) pair
    out2 = losses.connectionist_temporal_classification(
        (t_len, targets), lp, input_lengths=in_len, reduction=reduction)
    np.testing.assert_allclose(out2, out)


def test_ctc_gradient():
    targets = np.array([[1, 2], [2, 0]])
    t_len = np.array([2, 1])

    def f(logits):
        lp = ops.log_softmax(logits, axis=-1)
        return losses.connectionist_temporal_classification(targets, lp,
                                                            target_lengths=t_len)

    check_grads(f, RNG.normal(size=(2, 4, 3)))


# ---------------------------------------------------------------------------------- errors
def test_unknown_reduction():
    with pytest.raises(InvalidArgumentError, match="'none'.*'mean'.*'sum'"):
        losses.mean_squared_error(X, X2, reduction="avg")
    with pytest.raises(InvalidArgumentError):
        losses.connectionist_temporal_classification(np.array([[1]]), np.zeros((1, 2, 2)),
                                                     reduction="max")


def test_shape_mismatch():
    with pytest.raises(ShapeError, match=r"mean_squared_error.*\(4, 3\).*\(4, 2\)"):
        losses.mean_squared_error(X, X2[:, :2])
    with pytest.raises(ShapeError, match="binary_cross_entropy"):
        losses.binary_cross_entropy(Y01[:2], P)
    with pytest.raises(ShapeError, match="categorical_cross_entropy"):
        losses.categorical_cross_entropy(np.array([0, 1]), DIST, sparse=True)
    with pytest.raises(ShapeError, match="margin_ranking"):
        losses.margin_ranking(np.ones(3), (np.ones(3), np.ones(2)))


def test_all_exported_and_documented():
    for name in losses.__all__:
        fn = getattr(losses, name)
        assert fn.__doc__ and ">>>" in fn.__doc__, name


def _torch_cross_entropy(logits, labels_or_probs, w, smoothing):
    """PyTorch's documented ``cross_entropy(input, target, weight=w, label_smoothing=eps)``
    with ``reduction="mean"``, written out: class indices divide by the sum of the true
    classes' weights (the smoothing term too), probability targets by the batch size."""
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    n, c = logits.shape
    if labels_or_probs.ndim == 1:
        labels = labels_or_probs
        nll = -(w[labels] * log_p[np.arange(n), labels]).sum() / w[labels].sum()
        smooth = -(log_p * w).sum() / w[labels].sum()
        return (1 - smoothing) * nll + smoothing / c * smooth
    probs = labels_or_probs * (1 - smoothing) + smoothing / c
    return -(probs * log_p * w).sum(-1).mean()


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("sparse", [True, False])
def test_class_weights_mean_divides_like_pytorch(sparse, smoothing):
    logits = RNG.normal(size=(6, 4))
    labels = np.array([0, 3, 1, 3, 2, 0])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    target = labels if sparse else RNG.dirichlet(np.ones(4), size=6)
    got = losses.categorical_cross_entropy(target, logits, sparse=sparse, from_logits=True,
                                           class_weights=w, label_smoothing=smoothing)
    np.testing.assert_allclose(got, _torch_cross_entropy(logits, target, w, smoothing),
                               rtol=1e-10)


def test_class_weights_against_torch():
    torch = pytest.importorskip("torch")
    logits = RNG.normal(size=(5, 3))
    labels = np.array([0, 2, 1, 2, 2])
    probs = RNG.dirichlet(np.ones(3), size=5)
    w = np.array([1.0, 2.0, 0.5])
    for target, sparse in ((labels, True), (probs, False)):
        want = torch.nn.functional.cross_entropy(
            torch.tensor(logits), torch.tensor(target), weight=torch.tensor(w),
            label_smoothing=0.1).item()
        got = losses.categorical_cross_entropy(target, logits, sparse=sparse, from_logits=True,
                                               class_weights=w, label_smoothing=0.1)
        np.testing.assert_allclose(got, want, rtol=1e-10)
