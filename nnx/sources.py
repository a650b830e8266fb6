"""Data larger than memory: sources that ``fit``, ``evaluate`` and ``predict`` read batch by batch.

Arrays already in memory go to the device once (:class:`~nnx.data.EpochBatches`). Everything
else is read a group of batches at a time (about :data:`GROUP_BYTES`), checked, and moved to
the device while the previous steps compute (a host thread, ``prefetch`` groups ahead):

- NumPy memmaps and ``.npy`` paths (opened with ``np.load(path, mmap_mode="r")``), Dask
  arrays and any row-indexable array, through :class:`ArrayDataset`;
- map-style datasets: any object with ``len(ds)`` and ``ds.take(rows) -> (X_rows, y_rows)``
  for a sorted array of row indices (the :class:`Dataset` protocol);
- iterables of ``(X, y)`` batches: a callable returning a fresh iterator each epoch, a
  re-iterable (a list, an object with ``__iter__``), or one iterator read across epochs with
  ``steps_per_epoch``.

Randomness, per source (the same seed gives the same batches on every backend):

- ``shuffle=True``: a fresh permutation of all rows each epoch, drawn from the network's
  shuffle stream exactly as for arrays in memory, so a streamed fit takes the same batches
  and ends with the same parameters as the in-memory fit. Each batch's rows are read in
  sorted order and put back in the permutation's order in memory;
- ``shuffle="block"``: blocks of :data:`nnx.data.BLOCK_ROWS` consecutive rows in a random
  order, the rows of each block shuffled among themselves; a batch then reads one or two
  contiguous blocks (for data on disk that is not in the page cache). Arrays in memory
  accept it too and give the same batches;
- ``shuffle=False``: the rows in order;
- iterables: their own order (``shuffle`` does not apply).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from pathlib import Path

import numpy as np

from .checks import check_in_range
from .data import epoch_order, rank_slice

#: bytes of rows (at float64) read, checked and moved to the device at a time
GROUP_BYTES = 4 * 2**20
#: at most this many batches of an iterable are pulled at a time: fewer hand-overs between
#: the threads (on a busy machine each can cost as much as a small group of batches),
#: while a slow generator delays the first step by at most this many batches (the end of
#: training stops a pull at its next batch)
MAX_GROUP_BATCHES = 64


class Dataset:
    """The map-style protocol: ``len(ds)`` rows, ``ds.take(rows)`` returns the host arrays
    ``(X_rows, y_rows)`` of the given sorted row indices (``y_rows`` ``None`` when the
    dataset has no targets). Subclass it or just provide both methods."""

    def __len__(self) -> int:
        raise NotImplementedError("abstract method: a dataset says how many rows it has")

    def take(self, rows: np.ndarray) -> tuple:
        raise NotImplementedError("abstract method: a dataset reads rows")


class ArrayDataset(Dataset):
    """Rows of a pair of arrays that need not fit in memory.

    Parameters
    ----------
    X : array-like, numpy.memmap, dask array or path to a ``.npy`` file, shape (n, features)
    y : array-like, memmap, dask array or ``.npy`` path, shape (n,) or (n, k), optional

    ``take`` reads only the rows asked for (``X[rows]``), never the whole array.
    """

    def __init__(self, X, y=None):
        self.X = _rows_of(open_array(X, "X"))
        self.y = None if y is None else _rows_of(open_array(y, "y"))
        if getattr(self.X, "ndim", 0) != 2:
            raise ValueError(f"X must be 2-D (rows, features); got shape "
                             f"{getattr(self.X, 'shape', None)}")
        if self.y is not None and len(self.y) != len(self.X):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")

    def __len__(self):
        return int(self.X.shape[0])

    def take(self, rows):
        X = np.asarray(self.X[rows])
        return X, (None if self.y is None else np.asarray(self.y[rows]))


def _rows_of(value):
    """An array indexable by row position: NumPy arrays and memmaps, Dask arrays and any other
    array-like with ``shape``, ``ndim`` and row indexing (h5py, zarr, ...) as they are (read
    lazily); lists and pandas objects as a NumPy array."""
    if hasattr(value, "to_numpy"):  # pandas: its positional rows are NumPy's
        return np.asarray(value.to_numpy())
    if all(hasattr(value, name) for name in ("shape", "ndim", "__getitem__")):
        return value
    return np.asarray(value)


class Rows(Dataset):
    """Rows ``start:stop`` of a dataset (a held-out validation tail, the rows before it)."""

    def __init__(self, source, start, stop):
        self.source, self.start, self.stop = source, start, stop

    def __len__(self):
        return self.stop - self.start

    def take(self, rows):
        return self.source.take(np.asarray(rows) + self.start)


def open_array(value, name):
    """A path to a ``.npy`` file opened memory-mapped; anything else as it is."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{name} path {str(path)!r} is not a .npy file (memory-mapped "
                             "reading needs .npy; load an .npz yourself)")
        return np.load(path, mmap_mode="r")
    return value


def is_streamed(X) -> bool:
    """Whether ``fit``/``evaluate``/``predict`` read ``X`` batch by batch instead of moving
    it to the device whole: memmaps, ``.npy`` paths, datasets, Dask arrays, iterables."""
    if isinstance(X, (np.memmap, os.PathLike, Dataset)):
        return True
    if isinstance(X, str):
        return X.lower().endswith(".npy")  # any other string is data, checked as such
    if type(X).__module__.partition(".")[0] == "dask":
        return True
    if hasattr(X, "take") and hasattr(X, "__len__") and not hasattr(X, "shape"):
        return True  # the Dataset protocol without the base class
    return callable(X) or (hasattr(X, "__iter__") and not hasattr(X, "shape")
                           and not isinstance(X, (list, tuple, dict)))


# --------------------------------------------------------------------------- weights

#: rows of a weight column checked at a time before training
CHECK_ROWS = 2**20


def weight_column(weights, n: int):
    """The user's ``sample_weight`` for a source of ``n`` rows, opened (a ``.npy`` path
    memory-mapped) but not read: one weight per row, shape ``(n,)`` or ``(n, 1)``."""
    weights = _rows_of(open_array(weights, "sample_weight"))
    shape = tuple(getattr(weights, "shape", ()))
    if len(shape) not in (1, 2) or shape[0] != n or shape[1:] not in ((), (1,)):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per row of the "
                         f"data source; got shape {shape}")
    return weights


def check_weights(w, name: str, first_row=None) -> np.ndarray:
    """Host weights checked and returned as a float64 vector: numeric, finite,
    non-negative. An error names the first bad row: of ``w``, or of the source when
    ``first_row`` (the source's row of ``w[0]``) is given."""
    w = np.asarray(w)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {w.dtype}")
    w = w.astype(np.float64).reshape(w.shape[0] if w.ndim else 1)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        i = int(bad[0])
        where = f"row {i}" if first_row is None else f"row {first_row + i} of the source"
        raise ValueError(f"{name} must be finite and non-negative; {where} has {float(w[i])!r}")
    return w


class Weighted(Dataset):
    """A dataset's rows with a weight each: ``take`` gives ``(X_rows, y_rows, w_rows)``.

    Parameters
    ----------
    source : Dataset-like
    weights : array-like, memmap, dask array or ``.npy`` path, shape (len(source),)
        Read with the rows, batch by batch. Checked up front a chunk at a time (finite,
        non-negative, not all zero), so a bad weight is refused before the first step.
    """

    def __init__(self, source, weights):
        self.source = source
        self.weights = weight_column(weights, len(source))
        positive = False
        for a in range(0, len(source), CHECK_ROWS):
            w = check_weights(self.weights[a:a + CHECK_ROWS], "sample_weight", a)
            positive = positive or bool(np.any(w > 0))
        if not positive:
            raise ValueError("sample_weight is zero everywhere")

    def __len__(self):
        return len(self.source)

    def take(self, rows):
        X, y = self.source.take(rows)[:2]
        return X, y, np.asarray(self.weights[rows])


class BatchWeights:
    """Each streamed batch's row weights on the device, shape ``(rows, 1)``: the batch's
    sample weights (read with its rows, or the third element of an iterable's batch) times
    its labels' class weights. ``None`` for a batch without either (the unweighted path).

    Parameters
    ----------
    net : Network
        Its labels (``targets_``) index ``per_class``; its context takes the weights.
    per_class : numpy.ndarray of shape (n_classes,), optional
        Weight of each class, fixed before training
        (:meth:`~nnx.data.TargetEncoder.per_class_weights`; ``"balanced"`` counted in the
        label pass over the source).
    """

    def __init__(self, net, per_class=None):
        self.net, self.per_class = net, per_class

    def __call__(self, y, w, k):
        if w is None and self.per_class is None:
            return None
        n = len(y)
        try:
            if w is not None and len(w) != n:
                raise ValueError(f"w has {len(w)} rows but y has {n}")
            w = np.ones(n) if w is None else check_weights(w, "sample_weight")
            if self.per_class is not None:
                w = w * self.per_class[self.net.targets_.class_index(np.asarray(y))]
            check_in_range(w, "sample_weight * class_weight", self.net.ctx.dtype_name)
        except ValueError as exc:
            raise ValueError(f"batch {k} of the data source: {exc}") from None
        return self.net.ctx.asarray(w.reshape(n, 1))


# --------------------------------------------------------------------------- batches


class StreamBatches:
    """The batches of a data source, read ahead by a host thread and moved to the device.

    Rows are read in groups of whole batches (about :data:`GROUP_BYTES` each): one read of
    the group's rows (in sorted order), one check, one transfer to the device, then the
    group's batches are slices of it, so that a small batch costs what it costs in memory.
    The host thread does all of that (reading, checking, moving) for the groups ahead,
    inside the backend's :class:`~nnx.backend.Transfer` (on CUDA, copies from pinned host
    buffers on a stream of their own, which the training waits for on the device, not on
    the host). The same interface as :class:`~nnx.data.EpochBatches` (``epoch``, calling it
    for the batches, ``batch`` for one again), so the training loop and the divergence guard
    do not know which they have.

    A bad batch is a ``ValueError`` that names the batch and, where it can, the first bad
    row as a row of the source (of an iterable: counted from the epoch's first batch).

    Parameters
    ----------
    net : Network
        Its ``prepare_batch`` checks and moves host rows; its shuffle stream orders rows.
    source : Dataset-like or iterable source (see :func:`source_for`)
    batch_size : int or None
    prefetch : int >= 0
        Groups read ahead by a host thread (0: read in the loop).
    steps_per_epoch : int, optional
        Batches per epoch of an iterable source.
    weights : BatchWeights, optional
        Default: each batch's own weights (an iterable's ``(X, y, w)``), if any.
    shard : (rank, size), optional
        In a data-parallel fit, rank ``rank`` of ``size`` reads only its part
        (:func:`~nnx.data.rank_slice`) of each batch of a source with rows.
    """

    def __init__(self, net, source, batch_size, prefetch=2, steps_per_epoch=None,
                 weights=None, shard=(0, 1)):
        self.net, self.source, self.prefetch = net, source, prefetch
        self.steps_per_epoch = steps_per_epoch
        self.weights = BatchWeights(net) if weights is None else weights
        self.transfer = net.ctx.transfer()
        self.map_style = not isinstance(source, IterableSource)
        self.replayable = self.map_style or source.replayable
        self.n_rows = self.bounds = self.groups = self._pool = None
        if self.map_style:
            n = self.n_rows = len(source)
            if n == 0:
                raise ValueError("the data source has no rows")
            step = n if batch_size is None else min(batch_size, n)
            self.bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
            # the positions of the epoch's order this process reads for each batch
            self.parts = [(a + lo, a + hi) for a, b in self.bounds
                          for lo, hi in [rank_slice(b - a, *shard)]]
            row_bytes = max(1, (net.input_dim or 1) * 8)
            per_group = max(1, GROUP_BYTES // (row_bytes * step))
            self.groups = [(k, min(k + per_group, len(self.bounds)))
                           for k in range(0, len(self.bounds), per_group)]

    def __len__(self):
        return len(self.bounds) if self.map_style else (self.steps_per_epoch or 0)

    def epoch(self, shuffle):
        if not self.map_style:
            return self.source.epoch_iterator(self.steps_per_epoch)
        return epoch_order(self.n_rows, shuffle, self.net.random.shuffle)

    def _read_rows(self, order, positions):
        """Host rows at ``positions`` (sorted) of an epoch's order, read in sorted order:
        ``(X, y, w)`` (``w`` ``None`` for a source without weights)."""
        if order is None:
            return tuple(None if v is None else np.asarray(v)
                         for v in rows_item(self.source.take(positions)))
        rows = order[positions]
        sort = np.argsort(rows, kind="stable")
        back = np.empty_like(sort)
        back[sort] = np.arange(sort.shape[0])
        return tuple(None if v is None else np.asarray(v)[back]
                     for v in rows_item(self.source.take(rows[sort])))

    def _prepare(self, X, y, w, k):
        """Host rows of batch ``k`` (or a group from it) checked and on the device."""
        Xd, Yd = self.net.prepare_batch(X, y, k)
        return Xd, Yd, self.weights(y, w, k)

    def _prepare_group(self, ks, edges, X, y, w, rows, where="of the source"):
        """Batches ``ks`` (rows ``edges[i]:edges[i + 1]`` of the host arrays) checked and
        moved at once: ``([xb, yb, wb], rows)`` pairs. ``rows`` maps each row to the source's
        row, for errors."""
        try:
            Xd, Yd, Wd = self._prepare(X, y, w, ks[0])
        except ValueError:
            for k, a, b in zip(ks, edges, edges[1:]):  # find the batch, then the row
                self._check_batch(k, *(None if v is None else v[a:b] for v in (X, y, w)),
                                  rows[a:b], where)
            raise
        return [([Xd[a:b, ...], Yd[a:b, ...], None if Wd is None else Wd[a:b, ...]],
                 float(b - a)) for a, b in zip(edges, edges[1:])]

    def _check_batch(self, k, X, y, w, rows, where):
        """Raise the error of batch ``k``, naming its first bad row as a source row."""
        try:
            self._prepare(X, y, w, k)
        except ValueError as exc:
            n = len(rows)

            def prefix_fails(m):  # a prefix fails once it holds a bad row
                try:
                    self._prepare(*(None if v is None else v[:m] for v in (X, y, w)), k)
                except ValueError:
                    return True
                return False

            if n == 0:
                raise
            lo, hi = 1, n  # the shortest failing prefix, by bisection
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if prefix_fails(mid) else (mid + 1, hi)
            raise ValueError(f"{exc} (row {lo - 1} of batch {k} is row {rows[lo - 1]} "
                             f"{where})") from None

    def _group(self, order, k0, k1):
        """Batches ``k0:k1`` of a map-style source, read, checked and on the device."""
        parts = self.parts[k0:k1]
        positions = np.concatenate([np.arange(a, b) for a, b in parts])
        X, y, w = self._read_rows(order, positions)
        rows = positions if order is None else order[positions]
        edges = np.cumsum([0] + [b - a for a, b in parts]).tolist()
        return self._prepare_group(range(k0, k1), edges, X, y, w, rows)

    def _iterable_group(self, parts, start):
        """An iterable's batches ``parts`` (``(k, X, y, w)``, the first at row ``start`` of
        the epoch), stacked, checked and moved at once when they stack."""
        if not parts:
            return []  # the epoch is over
        where = "counted from the epoch's first batch"
        sizes = [X.shape[0] if X.ndim else 0 for _, X, _, _ in parts]
        firsts = np.cumsum([start] + sizes)
        if _stackable(parts):
            try:
                X, y = (np.concatenate([p[i] for p in parts]) for i in (1, 2))
                w = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])
            except (ValueError, TypeError):  # labels of types that do not mix
                pass
            else:
                return self._prepare_group([p[0] for p in parts], firsts - start, X, y, w,
                                           np.arange(start, firsts[-1]), where)
        batches = []  # each on its own, so that the one at fault is named
        for (k, X, y, w), first, last in zip(parts, firsts, firsts[1:]):
            batches += self._prepare_group([k], [0, last - first], X, y, w,
                                           np.arange(first, last), where)
        return batches

    def _staged(self, prepare):
        """``prepare()`` (a group's reading, checks and copies) inside the transfer's
        scope: ``(batches, token)``, the token marking when the copies are done."""
        with self.transfer.scope():
            batches = prepare()
            return batches, self.transfer.record()

    def _reads(self, data):
        """What the host thread does, in order: prepare a group (map-style) or pull one."""
        if not self.map_style:
            for pull in self.source.reads(data):
                yield lambda pull=pull: self._staged(lambda: self._iterable_group(*pull()))
            return
        for k0, k1 in self.groups:
            yield lambda k0=k0, k1=k1: self._staged(lambda: self._group(data, k0, k1))

    def _ahead(self, data):
        """The results of :meth:`_reads`, ``prefetch`` ahead on a thread. The epoch's first
        group is prepared here: there is nothing to overlap it with yet, and a source that
        fits in one group then never waits on the thread (a hand-over between threads costs
        more than a small group on a busy machine)."""
        reads = self._reads(data)
        if self.prefetch <= 0 or (self.map_style and len(self.groups) == 1):
            for read in reads:
                yield read()
            return
        first = next(reads, None)
        if first is None:
            return
        current = first()
        if self._pool is None:  # one thread for the whole fit, closed by close()
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="nnx-prefetch")
        pending = collections.deque()
        try:
            for read in reads:
                pending.append(self._pool.submit(read))
                if len(pending) >= self.prefetch:  # the next ones are on their way
                    yield current
                    current = pending.popleft().result()
            yield current
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Stop the prefetch thread (the training loop calls this when it ends)."""
        if isinstance(self.source, IterableSource):
            self.source.stopping.set()  # a pull in progress stops at its next batch
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.transfer.close()

    def __call__(self, data):
        """Device batches of an epoch: ``([xb, yb, wb], rows)`` pairs."""
        for batches, token in self._ahead(data):
            if not batches:  # an iterable's end
                return
            self.transfer.wait(token)  # the device waits for the copies, not the host
            yield from batches
            self.transfer.release((batches, token))

    def batch(self, data, k):
        """Batch ``k`` of an epoch again (the divergence guard's replay)."""
        if not self.map_style:
            raise ValueError("an iterator cannot be replayed")
        return list(self._prepare(*self._read_rows(data, np.arange(*self.parts[k])), k))


def _stackable(parts) -> bool:
    """Whether an iterable's batches ``(k, X, y, w)`` (NumPy arrays) can be checked as one
    array: 2-D features of one width, targets and weights of as many rows (else each batch
    is checked on its own, and the error names it). Attributes, not ``np.shape``: this runs
    for every batch."""
    _, X0, y0, w0 = parts[0]
    width, label_shape = X0.shape[1:], None if y0 is None else y0.shape[1:]
    for _, X, y, w in parts:
        n = X.shape[0] if X.ndim else 0
        if (X.ndim != 2 or n == 0 or X.shape[1:] != width or y is None or y.ndim == 0
                or y.shape[0] != n or y.shape[1:] != label_shape or (w is None) != (w0 is None)
                or (w is not None and (w.ndim == 0 or w.shape[0] != n))):
            return False
    return True


def rows_item(item):
    """A dataset's ``take`` result as ``(X, y, w)`` (``w`` ``None`` without weights)."""
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ValueError("a dataset's take(rows) must return (X, y) or (X, y, w); got "
                         f"{type(item).__name__}")
    return (*item, None)[:3]


class IterableSource:
    """Batches ``(X, y)`` or ``(X, y, w)`` from an iterable (see the module docstring)."""

    def __init__(self, data):
        self.data = data
        self.replayable = False
        #: set to stop pulling batches (training ended early)
        self.stopping = threading.Event()
        #: one iterator read across epochs (it cannot be read ahead or started again)
        self.one_shot = not callable(data) and hasattr(data, "__next__")

    def fresh(self):
        """An iterator over the batches: a new one, unless the source is one-shot."""
        if callable(self.data):
            return iter(self.data())
        return self.data if self.one_shot else iter(self.data)

    def epoch_iterator(self, steps):
        self.stopping.clear()
        if self.one_shot and steps is None:
            raise ValueError("a one-shot iterator needs steps_per_epoch= (how many batches "
                             "make an epoch); or pass a callable that returns a new iterator")
        return self.fresh(), steps

    def reads(self, data):
        """Callables for the host thread, each pulling the next group of batches (about
        GROUP_BYTES) from the iterator: the user's generator runs on the thread too. A
        pull returns ``(group, start)``: a list of ``(k, X, y, w)`` and the row its first
        batch starts at, counted from the epoch's first batch; an empty group means the
        epoch is over."""
        iterator, steps = data
        state = {"count": 0, "rows": 0, "done": False, "arity": None}

        def pull():
            group, size, start = [], 0, state["rows"]
            while (not state["done"] and not self.stopping.is_set() and size < GROUP_BYTES
                   and len(group) < MAX_GROUP_BATCHES
                   and (steps is None or state["count"] < steps)):
                try:
                    item = next(iterator)
                except StopIteration:
                    state["done"] = True
                    break
                X, y, w = (None if v is None else np.asarray(v)
                           for v in _split_item(item, state["count"], state))
                group.append((state["count"], X, y, w))
                state["count"] += 1
                state["rows"] += X.shape[0] if X.ndim else 0
                size += X.size * 8
            if not group:
                count = state["count"]
                if count == 0:
                    raise ValueError("the data source gave no batch this epoch (an empty or "
                                     "exhausted iterator)")
                if steps is not None and count < steps:
                    raise ValueError(f"the data source was exhausted after {count} of "
                                     f"steps_per_epoch={steps} batches ({state['rows']} rows)")
            return group, start

        while (not state["done"] and not self.stopping.is_set()
               and (steps is None or state["count"] < steps)):
            yield pull
        if state["count"] == 0 or (steps is not None and state["count"] < steps):
            yield pull  # one more: finds the missing batches and says so

    def labels(self):
        """Every batch's targets, from one pass (to learn the classes)."""
        if self.one_shot:
            raise ValueError("pass classes= (every label) when training from a one-shot "
                             "iterator: the labels cannot be read ahead")
        state = {"arity": None}
        ys = [_split_item(item, k, state)[1] for k, item in enumerate(self.fresh())]
        if not ys:
            raise ValueError("the data source gave no batch")
        if any(y is None for y in ys):
            raise ValueError("y is missing: a training source must give (X, y) batches")
        return np.concatenate([np.asarray(y) for y in ys])


def _split_item(item, k, state):
    """Batch ``k`` of an iterable as ``(X, y, w)``; every batch must have as many elements
    as the first (``state["arity"]``)."""
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ValueError(f"batch {k}: a data source must give (X, y) or (X, y, w) batches; "
                         f"got {type(item).__name__}")
    if state["arity"] is None:
        state["arity"] = len(item)
    elif len(item) != state["arity"]:
        raise ValueError(f"batch {k} of the data source has {len(item)} elements but the "
                         f"first had {state['arity']}: give every batch as (X, y), or every "
                         "batch as (X, y, w)")
    return (*item, None)[:3]


def source_for(X, y=None):
    """The source object for ``X`` (and ``y``) as :func:`is_streamed` recognises them."""
    if isinstance(X, Dataset) or (hasattr(X, "take") and hasattr(X, "__len__")
                                  and not hasattr(X, "shape")):
        if y is not None:
            raise ValueError("y must be None when X is a dataset: it gives (X, y) rows itself")
        return X
    if callable(X) or (hasattr(X, "__iter__") and not hasattr(X, "shape")
                       and not isinstance(X, (str, os.PathLike, dict))):
        if y is not None:
            raise ValueError("y must be None when X is an iterable of (X, y) batches")
        return IterableSource(X)
    return ArrayDataset(X, y)


def targets_of(source, classes=None):
    """Host targets to learn the label kind and set from: the whole ``y`` of a dataset over
    arrays (labels are small beside the features), one pass over an iterable, or only the
    first batch when ``classes=`` names every label."""
    if isinstance(source, ArrayDataset):
        if source.y is None:
            raise ValueError("y is missing: pass the targets (an array, memmap or .npy path)")
        return np.asarray(source.y)
    if isinstance(source, Weighted):
        return targets_of(source.source, classes)
    if isinstance(source, IterableSource):
        # every label named: enough to learn the kind and the set without a pass
        return np.asarray(classes) if classes is not None else source.labels()
    if (isinstance(source, Rows) and isinstance(source.source, ArrayDataset)
            and source.source.y is not None):  # rows of arrays: their labels alone
        return np.asarray(source.source.y[source.start:source.stop])
    n = len(source)
    parts = [source.take(np.arange(a, min(a + 65536, n)))[1]
             for a in range(0, n if classes is None else min(n, 1024), 65536)]
    if any(y is None for y in parts):
        raise ValueError("y is missing: the dataset's take() gave no targets")
    return np.concatenate([np.asarray(y) for y in parts])


__all__ = ["ArrayDataset", "BatchWeights", "Dataset", "Rows", "StreamBatches", "Weighted",
           "check_weights", "is_streamed", "open_array", "rows_item", "source_for",
           "targets_of", "weight_column"]
