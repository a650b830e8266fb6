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
  (``pip install 'nnx-mlp[sklearn]'``).

And the lesson's two preprocessing steps, again draw for draw as scikit-learn does them:
:class:`Standardizer` (``StandardScaler``; its ``partial_fit`` takes the statistics one chunk
of rows at a time, for a memmap larger than memory) and :func:`train_test_split` (its rows as
indices: :func:`train_test_indices`).

Everything here is host-side NumPy: data is made once, before any network sees it. The
generators use the legacy ``numpy.random.RandomState`` on purpose, because that is the stream
scikit-learn draws from.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .checks import check_number, first_nonfinite

_SKLEARN_HINT = "pip install 'nnx-mlp[sklearn]'"


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


def _merge_moments(a, b):
    """Chan et al.'s pairwise update: ``(n, mean, M2)`` of two row sets merged into the
    statistics of their union (``M2``: sum of squared deviations from the mean)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    if n_a == 0:
        return n_b, mean_b, m2_b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)


class Standardizer:
    """Centre each feature and divide it by its standard deviation (``StandardScaler``).

    .. math:: x' = (x - \\mu) / \\sigma, \\qquad \\sigma = \\sqrt{\\tfrac1n \\sum (x - \\mu)^2}

    A constant feature (:math:`\\sigma = 0`) is only centred.

    The statistics come from the whole array at once (:meth:`fit`), or from one chunk of rows
    at a time (:meth:`partial_fit`, or ``fit(X, chunk_rows=...)``) for data that does not fit
    in memory, such as a NumPy memmap of a large ``.npy`` file: after every chunk they are the
    whole set's, up to rounding (about ``1e-15`` relative). Fit on the training rows only,
    then transform every split with those statistics::

        scaler = Standardizer().fit(X_train)          # or partial_fit(chunk) chunk by chunk
        X_train_s, X_test_s = scaler.transform(X_train), scaler.transform(X_test)

    Attributes
    ----------
    mean_ : numpy.ndarray, shape (n_features,)
    scale_ : numpy.ndarray, shape (n_features,)
        The standard deviation, or 1 for a constant feature.
    var_ : numpy.ndarray, shape (n_features,)
        The (population) variance :math:`\\sigma^2`.
    n_samples_seen_ : int
        Rows seen by :meth:`fit` or by every :meth:`partial_fit` since the last :meth:`fit`.
    """

    #: ``partial_fit`` converts a chunk to float64 in row blocks of at most this many bytes,
    #: so that a large chunk (a whole memmap) is never copied whole
    BLOCK_BYTES = 32 * 2**20

    def __init__(self):
        self._reset()

    def fit(self, X, chunk_rows=None) -> "Standardizer":
        """Compute the mean and standard deviation of every column of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        chunk_rows : int, optional
            Read ``X`` in blocks of this many rows and fold each one in with
            :meth:`partial_fit` (each block checked as a chunk), instead of converting it
            whole to float64: for a ``numpy.memmap`` (``np.load(path, mmap_mode="r")``) only
            one block is in memory at a time. Same statistics up to rounding.

        Returns
        -------
        Standardizer
            ``self``, fitted.
        """
        if chunk_rows is not None:
            chunk_rows = check_number("chunk_rows", chunk_rows, low=1, integer=True)
            if not (hasattr(X, "shape") and hasattr(X, "dtype")):
                X = np.asarray(X)
            shape = tuple(X.shape)
            if len(shape) != 2 or shape[0] == 0:
                raise ValueError(f"X must be a non-empty 2-D array; got shape {shape}")
            fresh = Standardizer()  # a failing chunk leaves this one as it was
            for start in range(0, shape[0], chunk_rows):
                stop = min(start + chunk_rows, shape[0])
                fresh._partial_fit(X[start:stop], (start, stop))
            self.__dict__.update(fresh.__dict__)
            return self
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array; got shape {X.shape}")
        self._reset()
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.var_ = scale**2
        self.scale_ = self._guarded(scale)
        # the running form, for a partial_fit that adds rows: shifted by the mean found,
        # keeping what its rounding lost (that matters for a large mean with a tiny spread)
        self.n_samples_seen_, self._chunks = X.shape[0], 1
        self._shift, self._mean_shifted = self.mean_, (X - self.mean_).mean(axis=0)
        self._m2 = self.var_ * X.shape[0]
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

    def partial_fit(self, X) -> "Standardizer":
        """Update the statistics with one more chunk of rows.

        Call it once per chunk, in any order: the running mean and variance are merged with
        the chunk's exactly (Chan, Golub and LeVeque's parallel update, in float64), so
        after the last chunk :attr:`mean_` and :attr:`scale_` are those of :meth:`fit` on all
        the rows together, up to rounding. With :math:`n_A` rows seen so far (mean
        :math:`\\mu_A`, sum of squared deviations :math:`M_A`) and a chunk of :math:`n_B` rows
        (:math:`\\mu_B`, :math:`M_B`, computed in two passes over the chunk):

        .. math::
            n = n_A + n_B, \\qquad \\delta = \\mu_B - \\mu_A, \\qquad
            \\mu = \\mu_A + \\delta \\frac{n_B}{n}, \\qquad
            M = M_A + M_B + \\delta^2 \\frac{n_A n_B}{n}, \\qquad
            \\sigma^2 = \\frac{M}{n}

        The moments are kept for :math:`x - K`, with :math:`K` the mean of the first rows
        seen (:math:`\\mu = K + \\mu_{x-K}`, :math:`M` unchanged by the shift), so that a
        column with a large mean and a small spread (say :math:`10^3 \\pm 10^{-2}`) keeps its
        digits even when fed one row at a time.

        A :meth:`fit` starts afresh; ``partial_fit`` after ``fit`` adds rows to it. The chunk
        may be a ``numpy.memmap`` (or a slice of one): it is read in row blocks of at most
        :attr:`BLOCK_BYTES` as float64, never converted whole. To fit a whole memmap, loop::

            scaler = Standardizer()
            for start in range(0, X.shape[0], 65536):
                scaler.partial_fit(X[start:start + 65536])

        or call ``fit(X, chunk_rows=65536)``, which does the same.

        Parameters
        ----------
        X : array-like, shape (n_rows, n_features)
            One chunk: at least one row, real finite numbers, as many columns as the chunks
            before it.

        Returns
        -------
        Standardizer
            ``self``, with updated ``mean_``, ``var_``, ``scale_`` and ``n_samples_seen_``.

        Raises
        ------
        ValueError
            A chunk that is not 2-D, has no rows, has another column count than the earlier
            chunks, is not real numbers, or holds NaN or inf; the message names the chunk's
            number (counted from 1 since the last :meth:`fit`, whose rows count as chunk 1,
            or since the start). The statistics are left as they were before that chunk.
        """
        return self._partial_fit(X, None)

    def _partial_fit(self, X, rows):
        """:meth:`partial_fit`; ``rows``: the chunk's ``(start, stop)`` in a larger array,
        named in the errors of ``fit(X, chunk_rows=...)``."""
        number = self._chunks + 1
        where = f"chunk {number}" + ("" if rows is None else f" (rows {rows[0]} to {rows[1] - 1})")
        if not (hasattr(X, "shape") and hasattr(X, "dtype")):
            X = np.asarray(X)
        if len(X.shape) != 2 or X.shape[0] == 0:
            raise ValueError(
                f"{where} must be a 2-D array with at least one row; got shape {tuple(X.shape)}"
            )
        if self.n_samples_seen_ and X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"{where} has {X.shape[1]} columns, but the earlier chunks had "
                f"{self.mean_.shape[0]}"
            )
        if np.asarray(X[:0]).dtype.kind not in "biuf":  # any array's dtype, torch's too
            raise ValueError(f"{where} must hold real numbers; got dtype {X.dtype}")
        shift, chunk = self._chunk_stats(X, where, self._shift)
        n, self._mean_shifted, self._m2 = _merge_moments(
            (self.n_samples_seen_, self._mean_shifted, self._m2), chunk)
        self._shift, self.n_samples_seen_, self._chunks = shift, n, number
        self._publish()
        return self

    def _chunk_stats(self, X, where, shift):
        """``(shift, (rows, mean, M2))`` of one chunk, read in row blocks.

        Statistics are taken of ``x - shift``: the first block's mean when nothing was seen
        yet, so that a column with a large mean and a small spread keeps its digits (the
        "shifted data" form of the update).
        """
        n_rows, n_cols = X.shape
        step = max(1, self.BLOCK_BYTES // (8 * max(1, n_cols)))
        moments = (0, None, None)
        for start in range(0, n_rows, step):
            block = np.asarray(X[start:start + step], dtype=np.float64)
            bad = first_nonfinite(block)
            if bad is not None:
                raise ValueError(
                    f"{where} holds NaN or inf (first at row {start + bad[0]} of the chunk, "
                    f"column {bad[1]}); drop or fill those rows first"
                )
            if shift is None:
                shift = block.mean(axis=0)
            block = block - shift  # never in place: asarray may have returned X itself
            mean = block.mean(axis=0)
            moments = _merge_moments(moments, (block.shape[0], mean,
                                               ((block - mean) ** 2).sum(axis=0)))
        return shift, moments

    def _publish(self):
        """The public attributes from the running ``(shift, n, mean, M2)``."""
        self.mean_ = self._shift + self._mean_shifted
        self.var_ = self._m2 / self.n_samples_seen_
        self.scale_ = self._guarded(np.sqrt(self.var_))

    @classmethod
    def merged(cls, parts) -> "Standardizer":
        """The statistics of the union of several row sets, from each set's
        ``(n_samples, mean, var)`` (Chan et al.'s pairwise merge): for rows held by several
        processes, each of which fitted its own. Later :meth:`partial_fit` calls add to it.

        Parameters
        ----------
        parts : sequence of (int, array of shape (n_features,), array of shape (n_features,))
        """
        n, mean, m2 = 0, None, None
        for rows, part_mean, part_var in parts:
            part = (int(rows), np.asarray(part_mean, dtype=np.float64),
                    np.asarray(part_var, dtype=np.float64) * int(rows))
            n, mean, m2 = part if mean is None else _merge_moments((n, mean, m2), part)
        if not n:
            raise ValueError("Standardizer.merged needs at least one row")
        return cls()._from_moments(n, mean, m2, len(parts))

    def _from_moments(self, n, mean, m2, chunks) -> "Standardizer":
        """Take the statistics of ``n`` rows of ``mean`` and summed squared deviations
        ``m2`` (the running form too, so that :meth:`partial_fit` adds to them)."""
        self.mean_, self.var_ = mean, m2 / n
        self.scale_ = self._guarded(np.sqrt(self.var_))
        self.n_samples_seen_, self._chunks = n, chunks
        self._shift, self._mean_shifted, self._m2 = mean, np.zeros_like(mean), m2
        return self

    def _reset(self):
        for name in ("mean_", "scale_", "var_"):
            self.__dict__.pop(name, None)
        self.n_samples_seen_ = self._chunks = 0
        self._shift = self._mean_shifted = self._m2 = None

    def _guarded(self, scale):
        # a spread that is only rounding error (a constant column) counts as zero
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean_))
        return np.where(scale < tiny, 1.0, scale)


def standardize(X) -> np.ndarray:
    """``Standardizer().fit_transform(X)``: zero mean and unit variance per column."""
    return Standardizer().fit_transform(X)


def train_test_indices(n_samples, test_size=0.3, seed=42):
    """The row indices :func:`train_test_split` puts on each side, without touching the data.

    For data too large to index in one go (a memmap): gather the rows of each part block by
    block. ``X[train], X[test]`` are exactly :func:`train_test_split`'s ``X_train, X_test``.

    Parameters
    ----------
    n_samples : int >= 2
    test_size : float in (0, 1), default 0.3
    seed : int or None, default 42

    Returns
    -------
    train, test : numpy.ndarray of int
        Disjoint, together every row once, in the split's (shuffled) order.
    """
    n = check_number("n_samples", n_samples, low=0, integer=True)
    test_size = check_number("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise ValueError(
            f"test_size={test_size} leaves no training rows out of {n}; use a smaller test_size"
        )
    perm = _rng(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


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

    See Also
    --------
    train_test_indices : the same split as row indices.
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X and y have different lengths: {n} and {y.shape[0]}")
    train, test = train_test_indices(n, test_size, seed)
    return X[train], X[test], y[train], y[test]
