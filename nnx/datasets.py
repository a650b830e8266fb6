"""Datasets for the examples, the tests and the ``nnx`` command, and the lesson's preprocessing.

Two kinds of data:

- **generated with NumPy alone**, so the examples and ``nnx train`` work without
  scikit-learn: ``linear``, ``moons`` and ``circles`` with the lesson's settings
  (``make_classification(n_samples=200, n_features=2, n_redundant=0, n_informative=2,
  n_clusters_per_class=1)``, ``make_moons(200, noise=0.2)``, ``make_circles(200, noise=0.1,
  factor=0.5)``, all ``random_state=42``), and ``spiral`` (interleaved arms, several classes).
  The first three replay scikit-learn's random draws one for one, so an integer ``seed`` gives
  exactly the arrays scikit-learn gives for that ``random_state`` (checked in the tests);
- **scikit-learn's bundled tables** ``iris``, ``wine``, ``breast_cancer``, ``digits`` and
  ``diabetes`` (regression), loaded from scikit-learn, an optional extra
  (``pip install 'nnx[sklearn]'``).

And the lesson's two preprocessing steps, again draw for draw as scikit-learn does them:
:class:`Standardizer` (``StandardScaler``) and :func:`train_test_split`.

Everything here is host-side NumPy: data is made once, before any network sees it. The
generators use the legacy ``numpy.random.RandomState`` on purpose, because that is the stream
scikit-learn draws from.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .checks import check_number

_SKLEARN_HINT = "pip install 'nnx[sklearn]'"


class Dataset(NamedTuple):
    """A table of features and targets.

    Attributes
    ----------
    X : numpy.ndarray, shape (n_samples, n_features)
    y : numpy.ndarray, shape (n_samples,)
        Integer class labels, or float values for regression.
    task : {"classification", "regression"}
    feature_names : list of str
    target_names : list of str
        Class names (classification) or the target's name (regression).
    name : str
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list
    target_names: list
    name: str


# --------------------------------------------------------------------------- generated


def _rng(seed):
    if seed is not None:
        check_number("seed", seed, low=0, integer=True)
    return np.random.RandomState(seed)


def _check_n_samples(n_samples, low=2):
    return check_number("n_samples", n_samples, low=low, integer=True)


def _shuffled(X, y, rng):
    # scikit-learn's utils.shuffle: shuffle an index vector in place, then gather.
    idx = np.arange(X.shape[0])
    rng.shuffle(idx)
    return X[idx], y[idx]


def make_moons(n_samples=200, noise=0.2, seed=42):
    """Two interleaving half circles (the lesson's ``make_moons(200, noise=0.2)``).

    Parameters
    ----------
    n_samples : int, default 200
        The first ``n_samples // 2`` points start on the upper moon (class 0).
    noise : float >= 0, default 0.2
        Standard deviation of the Gaussian noise added to every coordinate.
    seed : int or None, default 42
        Same arrays as ``sklearn.datasets.make_moons(..., random_state=seed)``.

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2), float64
    y : numpy.ndarray, shape (n_samples,), int64 in {0, 1}
    """
    n_samples = _check_n_samples(n_samples)
    noise = check_number("noise", noise, low=0)
    rng = _rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.column_stack([
        np.append(np.cos(t_out), 1 - np.cos(t_in)),
        np.append(np.sin(t_out), 1 - np.sin(t_in) - 0.5),
    ])
    y = np.append(np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64))
    X, y = _shuffled(X, y, rng)
    return X + rng.normal(scale=noise, size=X.shape), y


def make_circles(n_samples=200, noise=0.1, factor=0.5, seed=42):
    """A small circle inside a large one (the lesson's ``make_circles(200, noise=0.1,
    factor=0.5)``).

    Parameters
    ----------
    n_samples : int, default 200
    noise : float >= 0, default 0.1
    factor : float in (0, 1), default 0.5
        Radius of the inner circle (class 1) relative to the outer one (class 0).
    seed : int or None, default 42
        Same arrays as ``sklearn.datasets.make_circles(..., random_state=seed)``.

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray, shape (n_samples,), int64 in {0, 1}
    """
    n_samples = _check_n_samples(n_samples)
    noise = check_number("noise", noise, low=0)
    factor = check_number("factor", factor, low=0, high=1, low_open=True, high_open=True)
    rng = _rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    # endpoint=False so that the first point of a circle is not also its last
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.column_stack([
        np.append(np.cos(t_out), np.cos(t_in) * factor),
        np.append(np.sin(t_out), np.sin(t_in) * factor),
    ])
    y = np.append(np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64))
    X, y = _shuffled(X, y, rng)
    return X + rng.normal(scale=noise, size=X.shape), y


def make_linear(n_samples=200, class_sep=1.0, flip_y=0.01, seed=42):
    """Two Gaussian clusters, one per class, in 2-D: the lesson's "Linear" dataset.

    ``sklearn.datasets.make_classification(n_samples, n_features=2, n_redundant=0,
    n_informative=2, n_clusters_per_class=1, class_sep, flip_y, random_state=seed)`` written
    out for that case: each class is a standard normal cloud mixed by a random matrix
    :math:`A \\sim U(-1, 1)^{2\\times 2}` and centred on a distinct vertex of the square
    :math:`\\{-s, s\\}^2`; a fraction ``flip_y`` of labels is then redrawn at random.

    Parameters
    ----------
    n_samples : int, default 200
    class_sep : float > 0, default 1.0
        Half the side of the square whose vertices are the cluster centres.
    flip_y : float in [0, 1], default 0.01
        Fraction of labels replaced by random ones (label noise).
    seed : int or None, default 42

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray, shape (n_samples,), int64 in {0, 1}
    """
    n_samples = _check_n_samples(n_samples)
    class_sep = check_number("class_sep", class_sep, low=0, low_open=True)
    flip_y = check_number("flip_y", flip_y, low=0, high=1)
    rng = _rng(seed)
    sizes = [n_samples - n_samples // 2, n_samples // 2]
    # two distinct vertices of the square: codes 0..3 read as two bits (high bit = x)
    codes = rng.permutation(4)[:2]
    centroids = np.column_stack([(codes >> 1) & 1, codes & 1]).astype(float) * 2 * class_sep
    centroids -= class_sep
    X = rng.standard_normal(size=(n_samples, 2))
    y = np.zeros(n_samples, dtype=np.int64)
    stop = 0
    for k, centroid in enumerate(centroids):
        start, stop = stop, stop + sizes[k]
        y[start:stop] = k
        A = 2 * rng.uniform(size=(2, 2)) - 1  # a random covariance for the cluster
        X[start:stop] = X[start:stop] @ A + centroid
    flip = rng.uniform(size=n_samples) < flip_y
    y[flip] = rng.randint(2, size=int(flip.sum()))
    X, y = _shuffled(X, y, rng)
    columns = np.arange(2)
    rng.shuffle(columns)
    return X[:, columns], y


def make_spiral(n_samples=300, n_classes=3, noise=0.2, seed=42):
    """Interleaved spiral arms, one per class: a small problem no linear model can solve.

    Arm :math:`k` has points at radius :math:`r \\in [0, 1]` and angle
    :math:`\\theta = 4(k + r) + \\epsilon`, :math:`\\epsilon \\sim N(0, \\text{noise}^2)`,
    at :math:`(r \\sin\\theta, r \\cos\\theta)` (the classic CS231n toy data).

    Parameters
    ----------
    n_samples : int, default 300
        Split as evenly as possible between the classes.
    n_classes : int >= 2, default 3
    noise : float >= 0, default 0.2
        Standard deviation of the angular noise, in radians.
    seed : int or None, default 42

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, 2)
    y : numpy.ndarray, shape (n_samples,), int64 in ``0..n_classes-1``
    """
    n_classes = check_number("n_classes", n_classes, low=2, integer=True)
    n_samples = _check_n_samples(n_samples, low=n_classes)
    noise = check_number("noise", noise, low=0)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    y.sort()
    X = np.empty((n_samples, 2))
    for k in range(n_classes):
        rows = y == k
        r = np.linspace(0.0, 1.0, int(rows.sum()))
        theta = 4.0 * (k + r) + rng.normal(scale=noise, size=r.shape)
        X[rows] = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    perm = rng.permutation(n_samples)
    return X[perm], y[perm]


# --------------------------------------------------------------------------- by name

GENERATED = {
    "linear": make_linear,
    "moons": make_moons,
    "circles": make_circles,
    "spiral": make_spiral,
}

#: scikit-learn loaders of the bundled (offline) tables, and each one's task.
SKLEARN = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}

NAMES = tuple(GENERATED) + tuple(SKLEARN)


def load(name: str, **kwargs) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of ``linear``, ``moons``, ``circles``, ``spiral`` (generated; keyword arguments go
        to :func:`make_linear`, :func:`make_moons`, ... e.g. ``n_samples=500``) or ``iris``,
        ``wine``, ``breast_cancer``, ``digits``, ``diabetes`` (from scikit-learn; no keyword
        arguments).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name, or keyword arguments for a scikit-learn table.
    ImportError
        A scikit-learn table was asked for and scikit-learn is not installed.
    """
    if name in GENERATED:
        X, y = GENERATED[name](**kwargs)
        k = int(y.max()) + 1
        return Dataset(X, y, "classification", ["x1", "x2"], [str(c) for c in range(k)], name)
    if name not in SKLEARN:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if kwargs:
        raise ValueError(
            f"dataset {name!r} is a fixed table; it takes no options (got {', '.join(kwargs)})"
        )
    try:
        from sklearn import datasets as skd
    except ImportError:
        raise ImportError(
            f"dataset {name!r} comes from scikit-learn, which is not installed: {_SKLEARN_HINT}"
        ) from None
    loader, task = SKLEARN[name]
    bunch = getattr(skd, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    if task == "regression":
        y = np.asarray(bunch.target, dtype=np.float64)
        targets = ["target"]
    else:
        y = np.asarray(bunch.target, dtype=np.int64)
        targets = [str(t) for t in getattr(bunch, "target_names", np.unique(y))]
    features = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"x{i + 1}" for i in range(X.shape[1])
    ]
    return Dataset(X, y, task, features, targets, name)


# --------------------------------------------------------------------------- preprocessing


class Standardizer:
    """Centre each feature and divide it by its standard deviation (``StandardScaler``).

    .. math:: x' = (x - \\mu) / \\sigma, \\qquad \\sigma = \\sqrt{\\tfrac1n \\sum (x - \\mu)^2}

    A constant feature (:math:`\\sigma = 0`) is only centred.

    Attributes
    ----------
    mean_ : numpy.ndarray, shape (n_features,)
    scale_ : numpy.ndarray, shape (n_features,)
    """

    def fit(self, X) -> "Standardizer":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array; got shape {X.shape}")
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        # a spread that is only rounding error (a constant column) counts as zero
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean_))
        self.scale_ = np.where(scale < tiny, 1.0, scale)
        return self

    def transform(self, X) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise ValueError("Standardizer.transform needs fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"X must have {self.mean_.shape[0]} columns, as at fit; got shape {X.shape}"
            )
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_


def standardize(X) -> np.ndarray:
    """``Standardizer().fit_transform(X)``: zero mean and unit variance per column."""
    return Standardizer().fit_transform(X)


def train_test_split(X, y, test_size=0.3, seed=42):
    """Shuffle and split into train and test parts (``sklearn.model_selection.
    train_test_split`` with ``random_state=seed``: the same rows land on the same side).

    Parameters
    ----------
    X : array-like, shape (n_samples, ...)
    y : array-like, shape (n_samples, ...)
    test_size : float in (0, 1), default 0.3
        Fraction of rows for the test part, rounded up: ``ceil(test_size * n_samples)``.
    seed : int or None, default 42

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X and y have different lengths: {n} and {y.shape[0]}")
    test_size = check_number("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise ValueError(
            f"test_size={test_size} leaves no training rows out of {n}; use a smaller test_size"
        )
    perm = _rng(seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]
