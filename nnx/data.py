"""Targets: from the user's labels to the loss's encoding, and back.

The lesson's network needed one-hot labels made by hand and silently misbehaved on integer
labels. Here the network learns the label set once (``classes_``, any sortable labels:
integers, strings, booleans) and encodes targets itself:

====================  ==========================  =========================================
problem               y as given                  what the loss sees
====================  ==========================  =========================================
binary                1-D, two labels             ``(n, 1)`` 0/1 column, sigmoid output
multi-class           1-D, k labels               ``(n, k)`` one-hot, softmax output
multi-class           2-D one-hot ``(n, k)``      itself (``classes_ = 0..k-1``)
multilabel            2-D 0/1 ``(n, k)``          itself, k independent sigmoids
regression            1-D or 2-D floats           ``(n, k)`` floats, identity output
====================  ==========================  =========================================

Labels become integer indices on the host (strings cannot live on a GPU), cross to the
device once, and are one-hot encoded there with the array API.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import Context
from .checks import check_number, check_regression_targets


class TargetEncoder:
    """Learns the label set at the first ``fit`` and encodes / decodes targets.

    Attributes
    ----------
    kind : {"binary", "multiclass", "multilabel", "regression"}
    classes_ : numpy.ndarray or None
        Sorted labels (classification only).
    n_outputs : int
        Width of the encoded target.
    """

    def __init__(self, task: str, n_outputs: int):
        self.task = task
        self.n_outputs = n_outputs
        self.kind = None
        self.classes_ = None

    def state_dict(self) -> dict:
        """What was learned, as plain values and a NumPy array of labels."""
        return {"kind": self.kind, "task": self.task, "n_outputs": int(self.n_outputs),
                "classes": self.classes_}

    @classmethod
    def from_state_dict(cls, state: dict) -> "TargetEncoder":
        """The encoder a :meth:`state_dict` describes (checked for consistency)."""
        kinds = ("binary", "multiclass", "multilabel", "regression")
        if state["kind"] not in kinds:
            raise ValueError(f"unknown target kind {state['kind']!r}; expected one of {kinds}")
        encoder = cls(state["task"], int(state["n_outputs"]))
        encoder.kind = state["kind"]
        encoder.classes_ = None if state["classes"] is None else np.asarray(state["classes"])
        if (encoder.kind == "regression") != (encoder.classes_ is None):
            raise ValueError("the target kind and the class labels disagree")
        return encoder

    # ------------------------------------------------------------------ learning the labels

    def fit(self, y: np.ndarray, classes=None) -> "TargetEncoder":
        """Learn the target kind and the label set from ``y`` (host NumPy array).

        Parameters
        ----------
        y : numpy.ndarray, shape (n_samples,) or (n_samples, k)
        classes : array-like, optional
            Every label the classifier will ever see, for training in chunks whose first
            chunk may lack some classes (scikit-learn's ``partial_fit(..., classes=)``).
            Default: the labels present in ``y``.

        Raises
        ------
        ValueError
            Fewer than two classes, labels of mixed unsortable types, labels of ``y`` not in
            ``classes``, a label count that does not fit the network's outputs, a 2-D ``y``
            that is not 0/1.
        """
        k = self.n_outputs
        if self.task == "regression":
            if classes is not None:
                raise ValueError("classes= is for classifiers; this network does regression")
            check_regression_targets(y)
            width = 1 if y.ndim == 1 else y.shape[1]
            if width != k:
                raise ValueError(f"y has {width} target column(s) but the network has {k} output(s)")
            self.kind = "regression"
            return self
        if y.ndim == 2 and y.shape[1] > 1:
            if classes is not None and len(classes) != y.shape[1]:
                raise ValueError(
                    f"classes has {len(classes)} entries but the 2-D y has {y.shape[1]} columns"
                )
            return self._fit_matrix(y)
        labels = y.ravel()
        declared = classes is not None
        try:
            classes = np.unique(np.asarray(classes) if declared else labels)
        except TypeError as exc:
            raise ValueError(f"class labels must be sortable (one type); {exc}") from None
        if (not declared and self.task == "binary" and classes.dtype.kind in "biuf"
                and np.all((classes == 0) | (classes == 1))):
            # 0/1 targets of a sigmoid output: both classes exist even if a batch has one
            classes = np.array([0, 1], dtype=classes.dtype)
        if (not declared and k > 1 and classes.dtype.kind in "biu" and classes.size
                and classes.min() >= 0 and classes.max() < k):
            # integers in [0, outputs) are class indices (as in torch and Keras), whether or
            # not a batch shows every class
            classes = np.arange(k, dtype=classes.dtype)
        if (not declared and classes.dtype.kind == "f" and classes.shape[0] != max(k, 2)
                and not np.all(np.isfinite(classes) & (classes == np.round(classes)))):
            # not a label set the outputs can hold: fractional floats are regression targets
            raise ValueError(
                f"y holds {classes.shape[0]} distinct non-integer values, which look like "
                "regression targets, not class labels: pass loss='mse' (or another "
                "regression loss) to Network"
            )
        if classes.ndim != 1 or classes.shape[0] < 2:
            shown = classes.tolist()
            raise ValueError(
                f"y has only one class ({shown[0] if shown else None!r}); a classifier needs at "
                "least two (pass classes= with every label when training in chunks)"
            )
        if k == 1 and classes.shape[0] == 2:
            self.kind = "binary"
        elif k == classes.shape[0]:
            self.kind = "multiclass"
        elif k == 1:
            raise ValueError(
                f"y has {classes.shape[0]} classes but the network has 1 output; give the last "
                f"layer {classes.shape[0]} units (softmax) for a multi-class problem"
            )
        else:
            raise ValueError(
                f"y has {classes.shape[0]} classes but the network has {k} outputs; they must match"
            )
        self.classes_ = classes
        self.indices(labels)  # every label of y must be one of the declared classes
        return self

    def _fit_matrix(self, y):
        k = y.shape[1]
        if y.dtype.kind not in "biuf" or not np.all((y == 0) | (y == 1)):
            raise ValueError("a 2-D y must be a one-hot or multilabel matrix of 0s and 1s")
        if k != self.n_outputs:
            raise ValueError(f"y has {k} columns but the network has {self.n_outputs} outputs")
        one_hot = bool(np.all(y.sum(axis=1) == 1))
        if self.task == "categorical" and not one_hot:
            raise ValueError(
                "categorical cross-entropy needs exactly one 1 per row of a 2-D y; use "
                "loss='binary_crossentropy' for multilabel targets"
            )
        self.kind = "multiclass" if self.task == "categorical" else "multilabel"
        self.classes_ = np.arange(k)
        return self

    # ------------------------------------------------------------------ encoding

    def indices(self, y: np.ndarray) -> np.ndarray:
        """Integer class index of every label (1-D labels only)."""
        labels = y.ravel()
        try:
            idx = np.searchsorted(self.classes_, labels)
        except TypeError:  # labels of another type than the classes (str vs int)
            raise ValueError(
                f"y contains labels of type {labels.dtype} but the classes are "
                f"{self.classes_!r}"
            ) from None
        # (searchsorted is never negative; np.minimum costs a fraction of np.clip's wrapper)
        idx = np.minimum(idx, self.classes_.shape[0] - 1)
        unseen = self.classes_[idx] != labels
        if np.any(unseen):
            raise ValueError(
                f"y contains labels that are not among the classes learned at the first fit: "
                f"{np.unique(labels[unseen])[:5].tolist()!r} (first at row "
                f"{int(np.argmax(unseen))}); known classes are {self.classes_.tolist()!r} (declare every class up front with "
                "classes= when training in chunks)"
            )
        return idx

    def encode(self, y: np.ndarray, ctx: Context):
        """Targets as a ``(n, n_outputs)`` device array of the network's dtype."""
        xp = ctx.xp
        if self.kind == "regression":  # values cross as floats: they must fit the dtype
            y = check_regression_targets(y, dtype=ctx.dtype_name)
            width = 1 if y.ndim == 1 else y.shape[1]
            if width != self.n_outputs:  # else the loss would broadcast (n, 1) - (n, k)
                raise ValueError(f"y has {width} target column(s) but the network has "
                                 f"{self.n_outputs} output(s)")
            return ctx.asarray(y.reshape(y.shape[0], -1))
        if y.ndim == 2 and y.shape[1] > 1:
            if self.kind not in ("multiclass", "multilabel") or y.shape[1] != self.n_outputs:
                raise ValueError(
                    f"a 2-D y with {y.shape[1]} columns does not fit this {self.kind} network "
                    f"with {self.n_outputs} output(s)"
                )
            if y.dtype.kind not in "biuf" or not np.all((y == 0) | (y == 1)):
                raise ValueError("a 2-D y must be a one-hot or multilabel matrix of 0s and 1s")
            return ctx.asarray(y)
        if self.kind == "multilabel":
            raise ValueError(
                f"this multilabel network needs a 2-D 0/1 y with {self.n_outputs} columns; "
                f"got shape {y.shape}"
            )
        idx = ctx.asarray(self.indices(y), dtype=xp.int64)
        if self.kind == "binary":
            return xp.reshape(xp.astype(idx, ctx.dtype), (-1, 1))
        classes = xp.arange(self.classes_.shape[0], dtype=xp.int64, device=ctx.device)
        return xp.astype(idx[:, None] == classes, ctx.dtype)

    def class_weights(self, class_weight, y: np.ndarray) -> np.ndarray:
        """Per-row weight from a ``{label: weight}`` dict or ``"balanced"`` (see
        :meth:`per_class_weights`), counted over the rows of ``y``."""
        return self.per_class_weights(class_weight, y)[self.class_index(y)]

    def class_index(self, y: np.ndarray) -> np.ndarray:
        """Integer class index of every row of 1-D labels or a 2-D one-hot ``y``."""
        return np.argmax(y, axis=1) if y.ndim == 2 and y.shape[1] > 1 else self.indices(y)

    def per_class_weights(self, class_weight, y: np.ndarray) -> np.ndarray:
        """Weight of each class, shape ``(n_classes,)``, from a ``{label: weight}`` dict or
        ``"balanced"``.

        ``"balanced"`` is scikit-learn's ``n_samples / (n_classes * count(class))`` over the
        rows of ``y`` (a streamed source's labels, read once before training, for a source
        read batch by batch). A label missing from the dict weighs 1.

        Raises
        ------
        ValueError
            Regression or multilabel targets, a label that is not a class, a negative weight.
        """
        if self.kind not in ("binary", "multiclass"):
            raise ValueError(f"class_weight needs a binary or multi-class problem, not {self.kind}")
        k = self.classes_.shape[0]
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(f"class_weight must be a dict or 'balanced'; got {class_weight!r}")
            idx = self.class_index(y)
            counts = np.bincount(idx, minlength=k).astype(np.float64)
            return np.where(counts > 0, idx.shape[0] / (k * np.maximum(counts, 1)), 0.0)
        if isinstance(class_weight, dict):
            per_class = np.ones(k)
            for label, weight in class_weight.items():
                where = np.flatnonzero(self.classes_ == label)
                if where.size == 0:
                    raise ValueError(
                        f"class_weight has a label {label!r} that is not a class; classes are "
                        f"{self.classes_.tolist()!r}"
                    )
                per_class[where[0]] = check_number(f"class_weight[{label!r}]", weight, low=0)
            return per_class
        raise ValueError(f"class_weight must be a dict or 'balanced'; got {class_weight!r}")

    # ------------------------------------------------------------------ decoding

    def decode(self, proba_positive_or_scores, xp):
        """Device array of class indices (or 0/1 matrix for multilabel) from link outputs."""
        if self.kind == "binary":
            return xp.astype(proba_positive_or_scores[:, 0] > 0.5, xp.int64)
        if self.kind == "multilabel":
            return xp.astype(proba_positive_or_scores > 0.5, xp.int64)
        return xp.argmax(proba_positive_or_scores, axis=1)

    def labels(self, idx: np.ndarray) -> np.ndarray:
        """Host labels, in the user's type, for host indices."""
        if self.kind == "multilabel":
            return idx
        return self.classes_[idx]


# --------------------------------------------------------------------------- epoch batching

#: rows per block of ``shuffle="block"``
BLOCK_ROWS = 4096


def epoch_order(n: int, shuffle, rng):
    """The row order of one epoch: ``None`` (in order), a permutation, or a block shuffle
    (see the module docstring), drawn from ``rng`` (a ``numpy.random.Generator``)."""
    if shuffle is False:
        return None
    if shuffle is True:
        return rng.permutation(n)
    starts = rng.permutation(range(0, n, BLOCK_ROWS))
    return np.concatenate([start + rng.permutation(min(BLOCK_ROWS, n - start))
                           for start in starts])



def rank_slice(rows: int, rank: int, size: int) -> tuple:
    """The part ``(start, stop)`` of a batch of ``rows`` rows that rank ``rank`` of ``size``
    computes on in a data-parallel fit: contiguous, the first ``rows % size`` ranks one row
    longer."""
    base, extra = divmod(rows, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class EpochBatches:
    """The mini-batches of training epochs: one policy for ``fit``, ``lr_find`` and the
    benchmarks.

    Batch ``k`` holds rows ``bounds[k]`` of the epoch's order. A shuffled data set is put in
    its new order once per epoch with one ``take`` when it is small (one call per epoch
    instead of one per batch), and batch by batch when it is larger than
    :attr:`GATHER_PER_BATCH_BYTES`: no second copy of the data set per epoch (on a GPU that is
    memory a large set may not have), and each batch is gathered right before its forward
    pass, still in cache. The row order is drawn on the host from the network's shuffle
    stream (the same seed gives the same batches on every backend) and crosses once per epoch.

    Parameters
    ----------
    arrays : tuple of device arrays or None
        Row-aligned arrays (features, encoded targets, weights); ``None`` entries stay None.
    batch_size : int or None
        ``None``: one batch of every row.
    random : nnx.random.Random
        The network's random streams (its ``permutation``).
    ctx : Context
    shard : (rank, size), optional
        In a data-parallel fit, rank ``rank`` of ``size`` takes only its part
        (:func:`rank_slice`) of each batch; the row counts reported stay the whole batch's.
    """

    #: shuffled data sets larger than this are gathered batch by batch
    GATHER_PER_BATCH_BYTES = 16 * 2**20

    def __init__(self, arrays, batch_size, random, ctx: Context, shard=(0, 1)):
        self.arrays = tuple(arrays)
        self.ctx = ctx
        self.random = random
        n = self.n_rows = int(arrays[0].shape[0])
        step = n if batch_size is None else min(batch_size, n)
        # out-of-range slice stops are not portable: clamp them once
        self.bounds = [(s, min(s + step, n)) for s in range(0, n, step)]
        # per batch, made once: the rows' index and their count as a Python float
        self._pieces = [((slice(a + lo, a + hi), ...), float(b - a)) for a, b in self.bounds
                        for lo, hi in [rank_slice(b - a, *shard)]]

    def __len__(self):
        return len(self.bounds)

    def epoch(self, shuffle) -> tuple:
        """One epoch's data: ``(arrays, order)`` for :meth:`batch`; ``shuffle`` (``True``
        or ``"block"``) draws a new order (:func:`epoch_order`)."""
        if not shuffle:
            return self.arrays, None
        xp = self.ctx.xp
        order = self.ctx.asarray(epoch_order(self.n_rows, shuffle, self.random.shuffle),
                                 dtype=xp.int64)
        itemsize = 8 if self.ctx.dtype_name == "float64" else 4
        if math.prod(self.arrays[0].shape) * itemsize > self.GATHER_PER_BATCH_BYTES:
            return self.arrays, order
        return tuple(None if a is None else xp.take(a, order, axis=0) for a in self.arrays), None

    def batch(self, data, k: int) -> list:
        """Batch ``k`` of an :meth:`epoch`: a list like ``arrays``."""
        arrays, order = data
        index = self._pieces[k][0]
        if order is None:
            return [None if a is None else a[index] for a in arrays]
        xp, rows = self.ctx.xp, order[index[0]]
        return [None if a is None else xp.take(a, rows, axis=0) for a in arrays]

    def __call__(self, data):
        """Every batch of an :meth:`epoch` in order, with its row count as a float:
        ``(batch, rows)`` pairs."""
        arrays, order = data
        if order is None:
            for index, rows in self._pieces:
                yield [None if a is None else a[index] for a in arrays], rows
            return
        xp = self.ctx.xp
        for index, rows in self._pieces:
            part = order[index[0]]
            yield [None if a is None else xp.take(a, part, axis=0) for a in arrays], rows
