"""Evaluation metrics that accept arrays of any backend and equal scikit-learn's.

Every function takes NumPy, CuPy, torch or array_api_strict arrays (or lists, pandas objects)
and returns Python floats or NumPy arrays, so results can be printed, compared and handed to
scikit-learn code whatever the network computed on.

Where the computation is arithmetic on numbers (accuracy, top-k accuracy, log loss, R^2,
MSE, MAE) it runs with the array API in the namespace of the inputs, on their device, and
only the scalar result crosses to the host. Where it is bookkeeping on labels (the label set
of a confusion matrix, precision / recall / F1, the classification report), it runs on the
host: labels may be strings, the result is a small ``(k, k)`` table, and nnx's rule is that
label encoding is host work (:mod:`nnx.data`). Inputs of different backends are all brought
to the host.

Every function is tested against :mod:`sklearn.metrics` on the same inputs. Where
scikit-learn would warn about an undefined value (a class never predicted, say), these
functions return ``zero_division`` silently, which is scikit-learn's value for
``zero_division="warn"``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from array_api_compat import device as _device

from .backend import common_namespace, to_numpy

__all__ = [
    "accuracy_score",
    "top_k_accuracy_score",
    "confusion_matrix",
    "precision_recall_fscore_support",
    "precision_score",
    "recall_score",
    "f1_score",
    "log_loss",
    "classification_report",
    "r2_score",
    "mean_squared_error",
    "mean_absolute_error",
]

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


# --------------------------------------------------------------------------- input plumbing


def _common(*arrays):
    """``(xp, arrays)`` in one namespace: see :func:`nnx.backend.common_namespace`."""
    return common_namespace(*arrays)


def _host(x):
    return None if x is None else np.asarray(to_numpy(x))


def _float_dtype(xp, x):
    """float64 where the device has it (exact sums), else the device's default float."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            if "float64" in info().dtypes(device=_device(x), kind="real floating"):
                return xp.float64
        except (TypeError, ValueError, AttributeError):
            pass
        return info().default_dtypes(device=_device(x))["real floating"]
    return xp.float64


def _to_float(x) -> float:
    return float(to_numpy(x))


def _check_lengths(**arrays):
    lengths = {name: int(a.shape[0]) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise ValueError(f"inputs have different numbers of samples ({detail})")
    if lengths and next(iter(lengths.values())) == 0:
        raise ValueError("metrics need at least one sample; got empty inputs")


def _check_1d_or_2d(name, a):
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {tuple(a.shape)}")
    if a.ndim == 2 and a.shape[1] == 1:
        return a[:, 0]
    return a


def _check_weight(sample_weight, n):
    if sample_weight is None:
        return None
    w = _host(sample_weight).astype(np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    return w


def _check_zero_division(zero_division):
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0
    if isinstance(zero_division, numbers.Real) and (
        zero_division in (0, 1) or math.isnan(zero_division)
    ):
        return float(zero_division)
    raise ValueError(f"zero_division must be 0.0, 1.0, nan or 'warn'; got {zero_division!r}")


def _is_indicator(a) -> bool:
    """A 2-D 0/1 matrix with more than one column (multilabel or one-hot targets)."""
    return a.ndim == 2 and a.shape[1] > 1


# --------------------------------------------------------------------------- accuracy


def accuracy_score(y_true, y_pred, *, normalize=True, sample_weight=None) -> float:
    r"""Fraction (or weighted count) of samples predicted exactly right.

    .. math:: \mathrm{accuracy} = \frac{\sum_i w_i\, [\hat y_i = y_i]}{\sum_i w_i}

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_labels)
        Labels of any comparable type, or 0/1 indicator matrices (multilabel: a row counts
        only when every label is right, scikit-learn's "subset accuracy").
    normalize : bool, default True
        ``False`` returns the (weighted) number of correct samples.
    sample_weight : array-like, shape (n_samples,), optional

    Returns
    -------
    float
    """
    xp, (t, p) = _common(y_true, y_pred)
    t, p = _check_1d_or_2d("y_true", t), _check_1d_or_2d("y_pred", p)
    _check_lengths(y_true=t, y_pred=p)
    if t.ndim != p.ndim:
        raise ValueError(
            f"y_true and y_pred mix label vectors and indicator matrices: shapes "
            f"{tuple(t.shape)} and {tuple(p.shape)}"
        )
    correct = t == p
    if correct.ndim == 2:
        correct = xp.all(correct, axis=1)
    w = _check_weight(sample_weight, int(t.shape[0]))
    return _weighted_mean(xp, correct, w, normalize)


def _weighted_mean(xp, values, w, normalize):
    """Mean (or sum) of a 1-D bool/float device array with optional host weights."""
    dtype = _float_dtype(xp, values)
    v = xp.astype(values, dtype)
    if w is None:
        return _to_float(xp.mean(v) if normalize else xp.sum(v))
    wd = xp.asarray(w, dtype=dtype, device=_device(v))
    total = xp.sum(wd * v)
    return _to_float(total / xp.sum(wd) if normalize else total)


def top_k_accuracy_score(y_true, y_score, *, k=2, normalize=True, sample_weight=None,
                         labels=None) -> float:
    r"""Fraction of samples whose true class is among the ``k`` highest scores.

    Ties are broken as scikit-learn breaks them (a stable ascending sort, reversed): among
    equal scores, the class with the larger index ranks first. The rank of the true class
    :math:`c` of sample :math:`i` is therefore

    .. math:: r_i = \#\{j : s_{ij} > s_{ic}\} + \#\{j > c : s_{ij} = s_{ic}\}

    and the sample is a hit when :math:`r_i < k`; computed in the namespace of ``y_score``.

    Parameters
    ----------
    y_true : array-like, shape (n_samples,)
        Labels of any sortable type.
    y_score : array-like, shape (n_samples, n_classes) or (n_samples,)
        Scores or probabilities, columns in the sorted order of ``labels`` (or of the labels
        of ``y_true``). A 1-D score is the positive class's score of a binary problem.
    k : int, default 2
    normalize : bool, default True
    sample_weight : array-like, shape (n_samples,), optional
    labels : array-like, optional
        All classes, when ``y_true`` does not contain every one.

    Returns
    -------
    float
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    t = _check_1d_or_2d("y_true", _host(y_true))
    if t.ndim != 1:
        raise ValueError("top_k_accuracy_score needs 1-D labels y_true")
    xp, (s,) = _common(y_score)
    _check_lengths(y_true=t, y_score=s)
    classes = np.unique(t) if labels is None else np.asarray(labels)
    if labels is not None and np.unique(classes).shape[0] != classes.shape[0]:
        raise ValueError("labels must be unique")
    classes = np.sort(classes) if labels is not None else classes
    idx = _indices(classes, t)
    w = _check_weight(sample_weight, t.shape[0])
    n_classes = classes.shape[0]
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        if n_classes > 2:
            raise ValueError("a 1-D y_score is for binary problems; y_true has more classes")
        s1 = s if s.ndim == 1 else s[:, 0]
        if k > 1:
            hits = xp.ones(s1.shape, dtype=xp.bool, device=_device(s1))
        else:
            threshold = 0.5 if (_to_float(xp.min(s1)) >= 0 and _to_float(xp.max(s1)) <= 1) else 0.0
            pred = xp.astype(s1 > threshold, xp.int64)
            hits = pred == xp.asarray(idx, dtype=xp.int64, device=_device(s1))
        return _weighted_mean(xp, hits, w, normalize)
    if s.ndim != 2 or s.shape[1] != n_classes:
        raise ValueError(
            f"y_score has {s.shape[1] if s.ndim == 2 else '?'} columns but there are "
            f"{n_classes} classes; pass labels= when y_true lacks some classes"
        )
    dev = _device(s)
    idx_d = xp.asarray(idx, dtype=xp.int64, device=dev)
    cols = xp.arange(n_classes, dtype=xp.int64, device=dev)
    own = xp.sum(xp.where(cols == idx_d[:, None], s, xp.zeros_like(s)), axis=1)[:, None]
    above = xp.astype(s > own, xp.int64)
    tied_later = xp.astype((s == own) & (cols > idx_d[:, None]), xp.int64)
    rank = xp.sum(above + tied_later, axis=1)
    return _weighted_mean(xp, rank < k, w, normalize)


# --------------------------------------------------------------------------- labels


def _indices(classes, labels):
    """Host index of every label in the sorted ``classes``; -1 where absent."""
    pos = np.searchsorted(classes, labels)
    pos = np.clip(pos, 0, classes.shape[0] - 1)
    return np.where(classes[pos] == labels, pos, -1)


def _unique_labels(*ys):
    try:
        return np.unique(np.concatenate([y.ravel() for y in ys]))
    except TypeError as exc:
        raise ValueError(f"labels must be sortable values of one type; {exc}") from None


def _label_inputs(y_true, y_pred):
    """Host labels (1-D) or indicator matrices, validated alike."""
    t = _check_1d_or_2d("y_true", _host(y_true))
    p = _check_1d_or_2d("y_pred", _host(y_pred))
    _check_lengths(y_true=t, y_pred=p)
    if _is_indicator(t) != _is_indicator(p):
        raise ValueError(
            "y_true and y_pred mix label vectors and indicator matrices: shapes "
            f"{t.shape} and {p.shape}"
        )
    if _is_indicator(t):
        if t.shape[1] != p.shape[1]:
            raise ValueError(f"indicator matrices have {t.shape[1]} and {p.shape[1]} columns")
        for name, a in (("y_true", t), ("y_pred", p)):
            if not np.all((a == 0) | (a == 1)):
                raise ValueError(f"2-D {name} must be a 0/1 indicator matrix")
    return t, p


def confusion_matrix(y_true, y_pred, *, labels=None, sample_weight=None,
                     normalize=None) -> np.ndarray:
    r"""Counts :math:`C_{ij}` of samples of true class :math:`i` predicted as class :math:`j`.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,)
        Labels of any sortable type.
    labels : array-like, optional
        Row/column order; samples whose true or predicted label is not listed are ignored.
        Default: the sorted union of both label sets.
    sample_weight : array-like, shape (n_samples,), optional
    normalize : {"true", "pred", "all"}, optional
        Divide by row sums, column sums or the total (empty rows / columns give 0).

    Returns
    -------
    numpy.ndarray, shape (n_classes, n_classes)
        int64 counts, float64 with float weights or ``normalize``.
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all'; got {normalize!r}")
    t, p = _label_inputs(y_true, y_pred)
    if _is_indicator(t):
        raise ValueError("confusion_matrix needs label vectors, not indicator matrices")
    if labels is None:
        classes = _unique_labels(t, p)
    else:
        classes = np.asarray(labels)
        if classes.size == 0:
            raise ValueError("labels must not be empty")
        if not np.any(np.isin(classes, t)):
            raise ValueError("none of the given labels is in y_true")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    k = classes.shape[0]
    # position in the user's label order (sorted search, then undo the sort)
    ti, pi = _indices(sorted_classes, t), _indices(sorted_classes, p)
    keep = (ti >= 0) & (pi >= 0)
    ti, pi = order[ti[keep]], order[pi[keep]]
    w = _check_weight(sample_weight, t.shape[0])
    integer_weights = sample_weight is None or _host(sample_weight).dtype.kind in "iub"
    weights = None if w is None else w[keep]
    cm = np.bincount(ti * k + pi, weights=weights, minlength=k * k).reshape(k, k)
    cm = cm.astype(np.int64) if integer_weights else cm.astype(np.float64)
    if normalize is None:
        return cm
    cm = cm.astype(np.float64)
    if normalize == "all":
        total = cm.sum()
        return cm / total if total else np.zeros_like(cm)
    axis = 1 if normalize == "true" else 0
    sums = cm.sum(axis=axis, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums != 0)


def _counts(t, p, labels, sample_weight):
    """Per-label (tp, predicted, true) weighted counts and the labels they belong to."""
    w = _check_weight(sample_weight, t.shape[0])
    if _is_indicator(t):
        n_labels = t.shape[1]
        cols = np.arange(n_labels) if labels is None else np.asarray(labels)
        if cols.dtype.kind not in "iu" or np.any((cols < 0) | (cols >= n_labels)):
            raise ValueError(f"labels of indicator targets must be column indices < {n_labels}")
        tt, pp = t[:, cols].astype(np.float64), p[:, cols].astype(np.float64)
        ww = np.ones(t.shape[0]) if w is None else w
        return ((ww @ (tt * pp)), ww @ pp, ww @ tt), cols
    present = _unique_labels(t, p)
    chosen = present if labels is None else np.asarray(labels)
    universe = _unique_labels(present, chosen)
    k = universe.shape[0]
    ti, pi = _indices(universe, t), _indices(universe, p)
    tp = np.bincount(ti[ti == pi], weights=None if w is None else w[ti == pi], minlength=k)
    pred = np.bincount(pi, weights=w, minlength=k)
    true = np.bincount(ti, weights=w, minlength=k)
    sel = _indices(universe, chosen)
    return (tp[sel].astype(np.float64), pred[sel].astype(np.float64),
            true[sel].astype(np.float64)), chosen


def _divide(num, den, zero_division):
    out = np.full(num.shape, zero_division, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_fscore_support(y_true, y_pred, *, beta=1.0, labels=None, pos_label=1,
                                    average=None, sample_weight=None, zero_division=0.0):
    r"""Precision, recall, F-beta and support per class, or averaged.

    .. math::
        P = \frac{TP}{TP + FP}, \qquad R = \frac{TP}{TP + FN}, \qquad
        F_\beta = \frac{(1 + \beta^2)\, TP}{(1 + \beta^2)\, TP + \beta^2 FN + FP}

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_labels)
        Labels of any sortable type, or 0/1 multilabel indicator matrices.
    beta : float, default 1.0
    labels : array-like, optional
        Which labels to report (and average over), in this order.
    pos_label : label, default 1
        The positive class of ``average="binary"``.
    average : {None, "binary", "micro", "macro", "weighted"}, default None
        ``None``: per class. ``"micro"``: from the summed counts. ``"macro"``: unweighted
        mean over classes. ``"weighted"``: mean weighted by support. ``"binary"``: the
        positive class only (binary targets).
    sample_weight : array-like, shape (n_samples,), optional
    zero_division : {0.0, 1.0, nan, "warn"}, default 0.0
        Value of a ratio whose denominator is zero (``"warn"`` means 0.0, without the
        warning scikit-learn prints). ``nan`` entries are left out of averages.

    Returns
    -------
    precision, recall, fbeta : float or numpy.ndarray of shape (n_labels,)
    support : numpy.ndarray of shape (n_labels,) or None when averaged
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}; got {average!r}")
    if not (isinstance(beta, numbers.Real) and beta >= 0):
        raise ValueError(f"beta must be a number >= 0; got {beta!r}")
    zd = _check_zero_division(zero_division)
    t, p = _label_inputs(y_true, y_pred)
    if average == "binary":
        if _is_indicator(t):
            raise ValueError("average='binary' is for binary targets; these are multilabel")
        present = _unique_labels(t, p)
        if present.shape[0] > 2:
            raise ValueError(
                "Target is multiclass but average='binary'; choose average in "
                "[None, 'micro', 'macro', 'weighted']"
            )
        if present.shape[0] == 2 and pos_label not in present.tolist():
            raise ValueError(f"pos_label={pos_label!r} is not a valid label; it should be one "
                             f"of {present.tolist()}")
        labels = [pos_label]
    (tp, pred, true), _ = _counts(t, p, labels, sample_weight)
    b2 = float(beta) ** 2
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)
    precision = _divide(tp, pred, zd)
    recall = _divide(tp, true, zd)
    fn, fp = true - tp, pred - tp
    fscore = _divide((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp, zd)
    if average is None:
        support = true if sample_weight is not None else true.astype(np.int64)
        return precision, recall, fscore, support
    if average == "weighted":
        weights = true
        if weights.sum() == 0:
            return zd, zd, zd, None
    else:
        weights = None
    return (_nanaverage(precision, weights), _nanaverage(recall, weights),
            _nanaverage(fscore, weights), None)


def _nanaverage(values, weights):
    keep = ~np.isnan(values)
    if not np.any(keep):
        return float("nan")
    if weights is None:
        return float(np.mean(values[keep]))
    return float(np.average(values[keep], weights=weights[keep]))


def precision_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                    sample_weight=None, zero_division=0.0):
    """Precision :math:`TP / (TP + FP)`; see :func:`precision_recall_fscore_support`."""
    return precision_recall_fscore_support(
        y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
        sample_weight=sample_weight, zero_division=zero_division)[0]


def recall_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division=0.0):
    """Recall :math:`TP / (TP + FN)`; see :func:`precision_recall_fscore_support`."""
    return precision_recall_fscore_support(
        y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
        sample_weight=sample_weight, zero_division=zero_division)[1]


def f1_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
             sample_weight=None, zero_division=0.0):
    """F1, the harmonic mean of precision and recall; see
    :func:`precision_recall_fscore_support`."""
    return precision_recall_fscore_support(
        y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
        sample_weight=sample_weight, zero_division=zero_division)[2]


def classification_report(y_true, y_pred, *, labels=None, target_names=None,
                          sample_weight=None, digits=2, output_dict=False, zero_division=0.0):
    """Precision, recall, F1 and support per class plus averages, as text or a dict.

    The text is laid out exactly as :func:`sklearn.metrics.classification_report` lays it
    out (one row per class, then ``accuracy`` (or ``micro avg``), ``macro avg`` and
    ``weighted avg``).

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_labels)
    labels : array-like, optional
    target_names : list of str, optional
        Display names of ``labels`` (default: the labels as text).
    sample_weight : array-like, optional
    digits : int, default 2
    output_dict : bool, default False
    zero_division : {0.0, 1.0, nan, "warn"}, default 0.0

    Returns
    -------
    str or dict
    """
    t, p = _label_inputs(y_true, y_pred)
    multilabel = _is_indicator(t)
    labels_given = labels is not None
    if labels is None:
        labels = np.arange(t.shape[1]) if multilabel else _unique_labels(t, p)
    else:
        labels = np.asarray(labels)
    micro_is_accuracy = not multilabel and (
        not labels_given or set(labels.tolist()) >= set(_unique_labels(t, p).tolist())
    )
    if target_names is not None and len(labels) != len(target_names):
        if not labels_given:
            raise ValueError(
                f"Number of classes, {len(labels)}, does not match size of target_names, "
                f"{len(target_names)}. Try specifying the labels parameter"
            )
        warnings.warn(f"labels size, {len(labels)}, does not match size of target_names, "
                      f"{len(target_names)}", UserWarning, stacklevel=2)
    if target_names is None:
        target_names = [f"{label}" for label in labels.tolist()]
    headers = ["precision", "recall", "f1-score", "support"]
    kw = dict(labels=labels, sample_weight=sample_weight, zero_division=zero_division)
    per_class = precision_recall_fscore_support(t, p, average=None, **kw)
    rows = list(zip(target_names, *per_class))
    averages = ("micro", "macro", "weighted") + (("samples",) if multilabel else ())
    support_total = np.sum(per_class[3])
    summary = []
    for average in averages:
        heading = "accuracy" if average == "micro" and micro_is_accuracy else f"{average} avg"
        if average == "samples":
            values = _samples_average(t, p, labels, sample_weight, zero_division)
        else:
            values = precision_recall_fscore_support(t, p, average=average, **kw)[:3]
        summary.append((heading, [*values, support_total]))
    if output_dict:
        report = {name: dict(zip(headers, [float(v) for v in values]))
                  for name, *values in rows}
        for heading, values in summary:
            report[heading] = dict(zip(headers, [float(v) for v in values]))
        if "accuracy" in report:
            report["accuracy"] = report["accuracy"]["precision"]
        return report
    width = max(max(len(name) for name in target_names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    text = head_fmt.format("", *headers, width=width) + "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for row in rows:
        text += row_fmt.format(*row, width=width, digits=digits)
    text += "\n"
    for heading, values in summary:
        if heading == "accuracy":
            fmt = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
            text += fmt.format(heading, "", "", *values[2:], width=width, digits=digits)
        else:
            text += row_fmt.format(heading, *values, width=width, digits=digits)
    return text


def _samples_average(t, p, labels, sample_weight, zero_division):
    """Per-sample precision / recall / F1 of multilabel targets, averaged over samples."""
    zd = _check_zero_division(zero_division)
    tt, pp = t[:, labels].astype(np.float64), p[:, labels].astype(np.float64)
    tp = (tt * pp).sum(axis=1)
    pred, true = pp.sum(axis=1), tt.sum(axis=1)
    precision, recall = _divide(tp, pred, zd), _divide(tp, true, zd)
    fscore = _divide(2 * tp, pred + true, zd)
    w = _check_weight(sample_weight, t.shape[0])
    return tuple(_nanaverage(v, w) for v in (precision, recall, fscore))


# --------------------------------------------------------------------------- log loss


def log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None) -> float:
    r"""Cross-entropy of predicted probabilities against the true labels.

    .. math:: L = -\frac{1}{\sum_i w_i} \sum_i w_i \sum_j y_{ij} \log \operatorname{clip}
              (p_{ij}, \epsilon, 1 - \epsilon)

    with :math:`\epsilon` the machine epsilon of ``y_proba``'s dtype (as scikit-learn).
    The labels are encoded on the host, the sum runs in the namespace of ``y_proba``.

    Parameters
    ----------
    y_true : array-like, shape (n_samples,) or (n_samples, n_classes)
        Labels of any sortable type, or a 0/1 indicator matrix.
    y_proba : array-like, shape (n_samples, n_classes) or (n_samples,)
        Probabilities, columns in the sorted order of the labels; a 1-D array is the
        probability of the positive (larger) class of a binary problem.
    normalize : bool, default True
        ``False`` returns the sum instead of the mean.
    sample_weight : array-like, shape (n_samples,), optional
    labels : array-like, optional
        All classes, when ``y_true`` lacks some.

    Returns
    -------
    float
    """
    xp, (proba,) = _common(y_proba)
    if not xp.isdtype(proba.dtype, "real floating"):
        proba = xp.astype(proba, _float_dtype(xp, proba))
    if proba.ndim not in (1, 2):
        raise ValueError(f"y_proba must be 1-D or 2-D; got shape {tuple(proba.shape)}")
    if _to_float(xp.max(proba)) > 1 or _to_float(xp.min(proba)) < 0:
        raise ValueError("y_proba must contain probabilities in [0, 1]")
    t = _host(y_true)
    _check_lengths(y_true=t, y_proba=proba)
    w = _check_weight(sample_weight, t.shape[0])
    dev = _device(proba)
    if _is_indicator(t):
        onehot = xp.asarray(t, dtype=proba.dtype, device=dev)
    else:
        t = _check_1d_or_2d("y_true", t)
        classes = _unique_labels(t) if labels is None else _unique_labels(np.asarray(labels))
        if classes.shape[0] == 1:
            raise ValueError(
                f"y_true contains only one label ({classes[0]!r}); pass every expected class "
                "with labels="
            )
        idx = _indices(classes, t)
        if np.any(idx < 0):
            raise ValueError(f"y_true contains labels not in labels: {np.unique(t[idx < 0])!r}")
        cols = xp.arange(classes.shape[0], dtype=xp.int64, device=dev)
        onehot = xp.astype(xp.asarray(idx, dtype=xp.int64, device=dev)[:, None] == cols,
                           proba.dtype)
    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.shape[1] == 1:
        proba = xp.concat([1 - proba, proba], axis=1)
    if proba.shape[1] != onehot.shape[1]:
        raise ValueError(
            f"y_true has {onehot.shape[1]} classes but y_proba has {proba.shape[1]} columns; "
            "pass every class with labels="
        )
    eps = float(xp.finfo(proba.dtype).eps)
    rows = xp.sum(proba, axis=1)
    if not bool(to_numpy(xp.all(xp.abs(rows - 1) <= math.sqrt(eps)))):
        warnings.warn("The y_proba rows do not sum to one; pass probabilities",
                      UserWarning, stacklevel=2)
    clipped = xp.clip(proba, eps, 1 - eps)
    losses = -xp.sum(onehot * xp.log(clipped), axis=1)
    if w is None:
        return _to_float(xp.mean(losses) if normalize else xp.sum(losses))
    wd = xp.asarray(w, dtype=losses.dtype, device=dev)
    total = xp.sum(wd * losses)
    return _to_float(total / xp.sum(wd) if normalize else total)


# --------------------------------------------------------------------------- regression


def _regression_inputs(y_true, y_pred, sample_weight, multioutput):
    xp, (t, p) = _common(y_true, y_pred)
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D; got shape {tuple(a.shape)}")
    _check_lengths(y_true=t, y_pred=p)
    dtype = _float_dtype(xp, t)
    t = xp.reshape(xp.astype(t, dtype), (t.shape[0], -1))
    p = xp.reshape(xp.astype(p, dtype), (p.shape[0], -1))
    if t.shape[1] != p.shape[1]:
        raise ValueError(f"y_true has {t.shape[1]} outputs and y_pred {p.shape[1]}")
    w = _check_weight(sample_weight, int(t.shape[0]))
    if not isinstance(multioutput, str):
        multioutput = _host(multioutput).astype(np.float64)
        if multioutput.shape != (t.shape[1],):
            raise ValueError(f"multioutput weights must have shape ({t.shape[1]},)")
    elif multioutput not in ("raw_values", "uniform_average", "variance_weighted"):
        raise ValueError("multioutput must be 'raw_values', 'uniform_average', "
                         f"'variance_weighted' or an array of weights; got {multioutput!r}")
    wd = None if w is None else xp.asarray(w, dtype=dtype, device=_device(t))[:, None]
    return xp, t, p, wd, multioutput


def _column_mean(xp, values, wd):
    if wd is None:
        return xp.mean(values, axis=0)
    return xp.sum(wd * values, axis=0) / xp.sum(wd)


def _combine(values, multioutput, weights=None):
    """Per-output host values -> float (or array for ``raw_values``)."""
    values = np.asarray(values, dtype=np.float64)
    if isinstance(multioutput, str):
        if multioutput == "raw_values":
            return values
        if multioutput == "uniform_average" or weights is None:
            return float(np.mean(values))
        return float(np.average(values, weights=weights))
    return float(np.average(values, weights=multioutput))


def mean_squared_error(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Mean squared error :math:`\frac{1}{\sum w}\sum_i w_i (y_i - \hat y_i)^2` per output.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like, shape (n_samples,), optional
    multioutput : {"raw_values", "uniform_average"} or array of weights

    Returns
    -------
    float, or numpy.ndarray of shape (n_outputs,) for ``"raw_values"``
    """
    xp, t, p, wd, mo = _regression_inputs(y_true, y_pred, sample_weight, multioutput)
    d = t - p
    return _combine(to_numpy(_column_mean(xp, d * d, wd)), mo)


def mean_absolute_error(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Mean absolute error :math:`\frac{1}{\sum w}\sum_i w_i |y_i - \hat y_i|` per output.

    Parameters and returns as :func:`mean_squared_error`.
    """
    xp, t, p, wd, mo = _regression_inputs(y_true, y_pred, sample_weight, multioutput)
    return _combine(to_numpy(_column_mean(xp, xp.abs(t - p), wd)), mo)


def r2_score(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Coefficient of determination per output,

    .. math:: R^2 = 1 - \frac{\sum_i w_i (y_i - \hat y_i)^2}{\sum_i w_i (y_i - \bar y)^2}

    with scikit-learn's finite conventions: 1.0 when both sums are zero (a constant target
    predicted exactly), 0.0 when only the denominator is. Fewer than two samples give NaN
    (with a warning), as in scikit-learn.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like, shape (n_samples,), optional
    multioutput : {"raw_values", "uniform_average", "variance_weighted"} or array of weights

    Returns
    -------
    float, or numpy.ndarray of shape (n_outputs,) for ``"raw_values"``
    """
    xp, t, p, wd, mo = _regression_inputs(y_true, y_pred, sample_weight, multioutput)
    if t.shape[0] < 2:
        warnings.warn("R^2 score is not well-defined with less than two samples.",
                      UserWarning, stacklevel=2)
        return float("nan")
    d = t - p
    c = t - _column_mean(xp, t, wd)
    if wd is None:
        num, den = xp.sum(d * d, axis=0), xp.sum(c * c, axis=0)
    else:
        num, den = xp.sum(wd * d * d, axis=0), xp.sum(wd * c * c, axis=0)
    num, den = to_numpy(num), to_numpy(den)
    scores = np.ones(num.shape)
    valid = (num != 0) & (den != 0)
    scores[valid] = 1 - num[valid] / den[valid]
    scores[(num != 0) & (den == 0)] = 0.0
    weights = den if mo == "variance_weighted" and np.any(den != 0) else None
    return _combine(scores, mo, weights)
