"""nnx.metrics against sklearn.metrics on the same inputs, on every backend."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nnx import metrics


def _on(backend, x, dtype=None):
    """Host data as an array of ``backend``, keeping integer labels integral."""
    x = np.asarray(x)
    ctx = backend.context("float64")
    if dtype is None:
        dtype = "int64" if x.dtype.kind in "iub" else "float64"
    return ctx.asarray(x, dtype=getattr(ctx.xp, dtype))


def _labels(n=60, k=4, seed=0, accuracy=0.6):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < accuracy, t, rng.integers(0, k, n))
    return t, p


def _proba(n=60, k=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_sklearn(backend, weighted):
    t, p = _labels()
    w = np.random.default_rng(1).random(t.shape[0]) if weighted else None
    for normalize in (True, False):
        got = metrics.accuracy_score(_on(backend, t), _on(backend, p), normalize=normalize,
                                     sample_weight=w)
        assert isinstance(got, float)
        assert got == pytest.approx(skm.accuracy_score(t, p, normalize=normalize,
                                                       sample_weight=w), rel=1e-12)


def test_accuracy_of_strings_lists_and_multilabel():
    t = ["cat", "dog", "dog", "bird"]
    p = np.array(["cat", "dog", "cat", "bird"])
    assert metrics.accuracy_score(t, p) == skm.accuracy_score(t, p) == 0.75
    T = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    P = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    assert metrics.accuracy_score(T, P) == pytest.approx(skm.accuracy_score(T, P))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_top_k_accuracy_matches_sklearn_including_ties(backend, k):
    t, _ = _labels(n=80, k=5)
    s = np.round(_proba(n=80, k=5), 1)  # rounding creates many ties
    w = np.random.default_rng(2).random(80)
    got = metrics.top_k_accuracy_score(_on(backend, t), _on(backend, s), k=k, sample_weight=w)
    assert got == pytest.approx(skm.top_k_accuracy_score(t, s, k=k, sample_weight=w), rel=1e-12)


def test_top_k_accuracy_binary_scores_and_labels():
    t = np.array([0, 1, 1, 0, 1])
    s = np.array([0.2, 0.7, 0.4, 0.6, 0.9])
    assert metrics.top_k_accuracy_score(t, s, k=1) == skm.top_k_accuracy_score(t, s, k=1)
    t3 = np.array(["a", "c", "c"])  # class "b" absent from y_true: labels= says it exists
    s3 = _proba(3, 3, seed=4)
    assert metrics.top_k_accuracy_score(t3, s3, k=1, labels=["a", "b", "c"]) == pytest.approx(
        skm.top_k_accuracy_score(t3, s3, k=1, labels=["a", "b", "c"]))


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(backend, normalize):
    t, p = _labels(k=5)
    p[p == 4] = 3  # a class never predicted: an empty column
    got = metrics.confusion_matrix(_on(backend, t), _on(backend, p), normalize=normalize)
    assert isinstance(got, np.ndarray)
    want = skm.confusion_matrix(t, p, normalize=normalize)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_confusion_matrix_labels_order_weights_and_strings():
    t = np.array(["b", "a", "c", "a", "b", "d"])
    p = np.array(["b", "c", "c", "a", "a", "a"])
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    for labels in (None, ["c", "a", "b"]):
        np.testing.assert_array_equal(metrics.confusion_matrix(t, p, labels=labels),
                                      skm.confusion_matrix(t, p, labels=labels))
        np.testing.assert_allclose(
            metrics.confusion_matrix(t, p, labels=labels, sample_weight=w),
            skm.confusion_matrix(t, p, labels=labels, sample_weight=w))


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_precision_recall_f1_match_sklearn(backend, average):
    t, p = _labels(k=5, accuracy=0.4)
    p[p == 4] = 3  # an undefined precision: zero_division applies
    w = np.random.default_rng(3).random(t.shape[0])
    for sample_weight in (None, w):
        for beta in (1.0, 0.5):
            got = metrics.precision_recall_fscore_support(
                _on(backend, t), _on(backend, p), beta=beta, average=average,
                sample_weight=sample_weight, zero_division=0.0)
            want = skm.precision_recall_fscore_support(
                t, p, beta=beta, average=average, sample_weight=sample_weight,
                zero_division=0.0)
            for g, s in zip(got, want):
                if s is None:
                    assert g is None
                else:
                    np.testing.assert_allclose(g, s, rtol=1e-12)


def test_binary_and_label_subsets_and_shortcuts():
    t = np.array([1, 0, 1, 1, 0, 2, 2])
    p = np.array([1, 1, 1, 0, 0, 2, 1])
    for labels in ([0, 1], [2, 0]):
        for average in ("micro", "macro", None):
            np.testing.assert_allclose(
                metrics.f1_score(t, p, labels=labels, average=average),
                skm.f1_score(t, p, labels=labels, average=average))
    tb, pb = t[t < 2], p[t < 2]
    assert metrics.precision_score(tb, pb) == pytest.approx(skm.precision_score(tb, pb))
    assert metrics.recall_score(tb, pb, pos_label=0) == pytest.approx(
        skm.recall_score(tb, pb, pos_label=0))
    with pytest.raises(ValueError, match="multiclass"):
        metrics.f1_score(t, p)  # average="binary" on 3 classes
    s = np.array(["no", "yes", "yes"])
    with pytest.raises(ValueError, match="pos_label"):
        metrics.f1_score(s, s)


def test_multilabel_precision_recall():
    rng = np.random.default_rng(5)
    T, P = rng.integers(0, 2, (30, 4)), rng.integers(0, 2, (30, 4))
    for average in (None, "micro", "macro", "weighted"):
        got = metrics.precision_recall_fscore_support(T, P, average=average)
        want = skm.precision_recall_fscore_support(T, P, average=average, zero_division=0.0)
        for g, s in zip(got[:3], want[:3]):
            np.testing.assert_allclose(g, s, rtol=1e-12)


def test_classification_report_is_sklearns_text(backend):
    t, p = _labels(k=3)
    names = ["setosa", "versicolor", "virginica"]
    for kw in ({}, {"target_names": names, "digits": 4}):
        got = metrics.classification_report(_on(backend, t), _on(backend, p), **kw)
        assert got == skm.classification_report(t, p, **kw)
    got = metrics.classification_report(t, p, output_dict=True)
    want = skm.classification_report(t, p, output_dict=True)
    assert got.keys() == want.keys()
    assert got["accuracy"] == pytest.approx(want["accuracy"])
    assert got["macro avg"] == pytest.approx(want["macro avg"])
    # strings, and labels that leave a class out: "micro avg" replaces "accuracy"
    ts = np.array(["x", "y", "z", "y", "x"])
    ps = np.array(["x", "z", "z", "y", "y"])
    assert metrics.classification_report(ts, ps, labels=["x", "y"]) == \
        skm.classification_report(ts, ps, labels=["x", "y"])


@pytest.mark.parametrize("k", [2, 4])
def test_log_loss_matches_sklearn(backend, k):
    t, _ = _labels(k=k)
    proba = _proba(k=k)
    proba[0] = np.eye(k)[(t[0] + 1) % k]  # a confident mistake: clipping matters
    w = np.random.default_rng(6).random(t.shape[0])
    for sample_weight in (None, w):
        got = metrics.log_loss(_on(backend, t), _on(backend, proba), sample_weight=sample_weight)
        want = skm.log_loss(t, proba, sample_weight=sample_weight)
        assert got == pytest.approx(want, rel=1e-10)


def test_log_loss_strings_binary_column_labels_and_float32(backend):
    t = ["spam", "ham", "ham", "spam"]
    proba = np.array([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    assert metrics.log_loss(t, proba) == pytest.approx(skm.log_loss(t, proba))
    tb = np.array([0, 1, 1, 0])
    assert metrics.log_loss(tb, proba[:, 1]) == pytest.approx(skm.log_loss(tb, proba[:, 1]))
    p3 = _proba(4, 3, seed=9)
    assert metrics.log_loss(tb, p3, labels=[0, 1, 2]) == pytest.approx(
        skm.log_loss(tb, p3, labels=[0, 1, 2]))
    p32 = _on(backend, p3, "float32")  # eps follows the dtype, as in sklearn
    assert metrics.log_loss(tb, p32, labels=[0, 1, 2]) == pytest.approx(
        skm.log_loss(tb, p3.astype(np.float32), labels=[0, 1, 2]), rel=1e-6)
    with pytest.raises(ValueError, match="only one label"):
        metrics.log_loss([1, 1], [[0.2, 0.8], [0.3, 0.7]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.log_loss([0, 1], [[-0.2, 1.2], [0.3, 0.7]])


# --------------------------------------------------------------------------- regression


@pytest.mark.parametrize("multioutput", ["raw_values", "uniform_average", "variance_weighted"])
def test_regression_metrics_match_sklearn(backend, multioutput):
    rng = np.random.default_rng(7)
    t = rng.normal(size=(50, 3)) * [1.0, 5.0, 0.1]
    p = t + rng.normal(size=(50, 3))
    w = rng.random(50)
    for sample_weight in (None, w):
        for name in ("r2_score", "mean_squared_error", "mean_absolute_error"):
            if multioutput == "variance_weighted" and name != "r2_score":
                continue
            got = getattr(metrics, name)(_on(backend, t), _on(backend, p),
                                         sample_weight=sample_weight, multioutput=multioutput)
            want = getattr(skm, name)(t, p, sample_weight=sample_weight, multioutput=multioutput)
            if multioutput == "raw_values":
                assert isinstance(got, np.ndarray)
            else:
                assert isinstance(got, float)
            np.testing.assert_allclose(got, want, rtol=1e-10)


def test_regression_1d_float32_and_constant_targets(backend):
    rng = np.random.default_rng(8)
    t = rng.normal(size=40)
    p = t + 0.3 * rng.normal(size=40)
    t32, p32 = _on(backend, t, "float32"), _on(backend, p, "float32")
    want = skm.r2_score(t.astype(np.float32), p.astype(np.float32))
    assert metrics.r2_score(t32, p32) == pytest.approx(want, rel=1e-5)
    assert metrics.mean_squared_error(list(t), list(p)) == pytest.approx(
        skm.mean_squared_error(t, p))
    c = np.ones(5)
    assert metrics.r2_score(c, c) == skm.r2_score(c, c) == 1.0
    assert metrics.r2_score(c, c + 1) == skm.r2_score(c, c + 1) == 0.0


def test_mixed_backends_go_to_the_host(backend):
    t, p = _labels()
    assert metrics.accuracy_score(_on(backend, t), list(p)) == pytest.approx(
        skm.accuracy_score(t, p))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="different numbers of samples"):
        metrics.accuracy_score([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="average"):
        metrics.f1_score([0, 1], [0, 1], average="bogus")
    with pytest.raises(ValueError, match="sample_weight"):
        metrics.accuracy_score([0, 1], [0, 1], sample_weight=[1.0])
    with pytest.raises(ValueError, match="zero_division"):
        metrics.precision_score([0, 1], [0, 1], zero_division=2)
    with pytest.raises(ValueError, match="k must be"):
        metrics.top_k_accuracy_score([0, 1], [[0.5, 0.5], [0.2, 0.8]], k=0)

