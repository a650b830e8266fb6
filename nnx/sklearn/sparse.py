"""Sparse ``X`` for :class:`~nnx.sklearn.NNXClassifier` / :class:`~nnx.sklearn.NNXRegressor`.

A ``scipy.sparse`` matrix reaches :meth:`nnx.Network.fit` and ``predict`` as a map-style data
source (:class:`nnx.sources.Dataset`): the training loop reads a group of batches at a time
and each group is made dense on its own, so the whole data set is never dense at once.
"""

from __future__ import annotations

import scipy.sparse

from ..sources import Dataset


class SparseRows(Dataset):
    """Rows of a ``scipy.sparse`` matrix (and their targets), made dense when read.

    Parameters
    ----------
    X : scipy.sparse matrix or array of shape (n_samples, n_features)
        Converted to CSR once (row reads are cheap there); CSR input is not copied.
    y : numpy.ndarray of shape (n_samples,) or (n_samples, n_outputs), optional
    """

    def __init__(self, X, y=None):
        self.X = X.tocsr()
        self.y = y

    def __len__(self):
        return self.X.shape[0]

    def take(self, rows):
        return self.X[rows].toarray(), None if self.y is None else self.y[rows]

    def chunks(self, rows=4096):
        """The rows in order, ``rows`` at a time, as dense host arrays."""
        for start in range(0, len(self), rows):
            yield self.X[start:start + rows].toarray()


def as_source(X, y=None):
    """``SparseRows(X, y)`` for a sparse ``X``; a dense ``X`` as it is (``y`` then goes to
    ``fit`` on its own)."""
    return SparseRows(X, y) if scipy.sparse.issparse(X) else X
