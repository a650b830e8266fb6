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

from .data import epoch_order

#: bytes of rows (at float64) read, checked and moved to the device at a time
GROUP_BYTES = 4 * 2**20
#: at most this many batches of an iterable are pulled at a time (a slow generator must not
#: delay the first step, or the end of training, by a whole group)
MAX_GROUP_BATCHES = 16


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
    """An array indexable by row position: memmaps and Dask arrays as they are (read lazily),
    anything else in memory (lists, pandas objects) as a NumPy array."""
    if isinstance(value, np.ndarray) or type(value).__module__.partition(".")[0] == "dask":
        return value
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)


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


# --------------------------------------------------------------------------- batches


class StreamBatches:
    """The batches of a data source, read ahead by a host thread and moved to the device.

    Rows are read in groups of whole batches (about :data:`GROUP_BYTES` each): one read of
    the group's rows (in sorted order), one check, one transfer to the device, then the
    group's batches are slices of it, so that a small batch costs what it costs in memory.
    The same interface as :class:`~nnx.data.EpochBatches` (``epoch``, calling it for the
    batches, ``batch`` for one again), so the training loop and the divergence guard do not
    know which they have.

    Parameters
    ----------
    net : Network
        Its ``prepare_batch`` checks and moves host rows; its shuffle stream orders rows.
    source : Dataset-like or iterable source (see :func:`source_for`)
    batch_size : int or None
    prefetch : int >= 0
        Groups (or, for iterables, batches) read ahead by a host thread (0: read in the loop).
    steps_per_epoch : int, optional
        Batches per epoch of an iterable source.
    """

    def __init__(self, net, source, batch_size, prefetch=2, steps_per_epoch=None):
        self.net, self.source, self.prefetch = net, source, prefetch
        self.steps_per_epoch = steps_per_epoch
        self.map_style = not isinstance(source, IterableSource)
        self.replayable = self.map_style or source.replayable
        self.n_rows = self.bounds = self.groups = self._pool = None
        if self.map_style:
            n = self.n_rows = len(source)
            if n == 0:
                raise ValueError("the data source has no rows")
            step = n if batch_size is None else min(batch_size, n)
            self.bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
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

    def _read_rows(self, order, a, b):
        """Host rows ``a:b`` of an epoch's order, read in sorted order: ``(X, y)``."""
        if order is None:
            return self.source.take(np.arange(a, b))
        rows = order[a:b]
        sort = np.argsort(rows, kind="stable")
        X, y = self.source.take(rows[sort])
        X, y = np.asarray(X), (None if y is None else np.asarray(y))
        back = np.empty_like(sort)
        back[sort] = np.arange(sort.shape[0])
        return X[back], (None if y is None else y[back])

    def _reads(self, data):
        """What the host thread does, in order: read a group (map-style) or a batch."""
        if not self.map_style:
            yield from self.source.reads(data)
            return
        for k0, k1 in self.groups:
            yield lambda k0=k0, k1=k1: (k0, k1, *self._read_rows(
                data, self.bounds[k0][0], self.bounds[k1 - 1][1]))

    def _ahead(self, data):
        """The results of :meth:`_reads`, ``prefetch`` ahead on a thread."""
        reads = self._reads(data)
        if self.prefetch <= 0 or (self.map_style and len(self.groups) == 1):
            for read in reads:  # (one group an epoch: nothing to overlap it with)
                yield read()
            return
        if self._pool is None:  # one thread for the whole fit, closed by close()
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="nnx-prefetch")
        pending = collections.deque()
        try:
            for read in reads:
                pending.append(self._pool.submit(read))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
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

    def _prepare_group(self, k0, k1, X, y):
        """A group's rows checked and on the device; an error names the batch."""
        try:
            return self.net.prepare_batch(X, y, k0)
        except ValueError:
            start = self.bounds[k0][0]
            for k in range(k0, k1):  # find the batch
                a, b = (i - start for i in self.bounds[k])
                self.net.prepare_batch(X[a:b], None if y is None else y[a:b], k)
            raise

    def __call__(self, data):
        """Device batches of an epoch: ``([xb, yb, None], rows)`` pairs."""
        if not self.map_style:
            yield from self._iterable_batches(data)
            return
        for k0, k1, X, y in self._ahead(data):
            Xd, Yd = self._prepare_group(k0, k1, X, y)
            start = self.bounds[k0][0]
            for k in range(k0, k1):
                a, b = (i - start for i in self.bounds[k])
                yield [Xd[a:b, ...], Yd[a:b, ...], None], float(b - a)

    def _iterable_batches(self, data):
        """An iterable's batches, pulled a group at a time on the prefetch thread, each
        group checked and moved to the device at once."""
        for group in self._ahead(data):
            if not group:
                return
            yield from self._flush(group)

    def _flush(self, group):
        if not group:
            return
        if len({np.shape(X)[1:] for _, X, _ in group}) > 1 or any(y is None for *_, y in group):
            Xd = Yd = None  # batches that do not stack: each on its own (and named)
        else:
            try:
                Xd, Yd = self.net.prepare_batch(np.concatenate([X for _, X, _ in group]),
                                                np.concatenate([y for *_, y in group]),
                                                group[0][0])
            except ValueError:
                Xd = Yd = None  # find the batch at fault below
        start = 0
        for k, X, y in group:
            rows = len(X)
            if Xd is None:
                yield list(self.net.prepare_batch(X, y, k)) + [None], float(rows)
            else:
                yield [Xd[start:start + rows, ...], Yd[start:start + rows, ...], None], \
                    float(rows)
            start += rows

    def batch(self, data, k):
        """Batch ``k`` of an epoch again (the divergence guard's replay)."""
        if not self.map_style:
            raise ValueError("an iterator cannot be replayed")
        X, y = self._read_rows(data, *self.bounds[k])
        xb, yb = self.net.prepare_batch(X, y, k)
        return [xb, yb, None]


class IterableSource:
    """Batches ``(X, y)`` from an iterable (see the module docstring)."""

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
        group is a list of ``(k, X, y)``; an empty one means the epoch is over."""
        iterator, steps = data
        state = {"count": 0, "done": False}

        def pull():
            group, size = [], 0
            while (not state["done"] and not self.stopping.is_set() and size < GROUP_BYTES
                   and len(group) < MAX_GROUP_BATCHES
                   and (steps is None or state["count"] < steps)):
                try:
                    item = next(iterator)
                except StopIteration:
                    state["done"] = True
                    break
                X, y = _split_item(item, state["count"])
                X, y = np.asarray(X), None if y is None else np.asarray(y)
                group.append((state["count"], X, y))
                state["count"] += 1
                size += X.size * 8
            if not group:
                count = state["count"]
                if count == 0:
                    raise ValueError("the data source gave no batch this epoch (an empty or "
                                     "exhausted iterator)")
                if steps is not None and count < steps:
                    raise ValueError(f"the data source was exhausted after {count} of "
                                     f"steps_per_epoch={steps} batches")
            return group

        while (not state["done"] and not self.stopping.is_set()
               and (steps is None or state["count"] < steps)):
            yield pull
        yield pull  # the last one: finds the end (or the missing batches) and says so

    def labels(self):
        """Every batch's targets, from one pass (to learn the classes)."""
        if self.one_shot:
            raise ValueError("pass classes= (every label) when training from a one-shot "
                             "iterator: the labels cannot be read ahead")
        ys = [y for _, y in (_split_item(item, k) for k, item in enumerate(self.fresh()))]
        if not ys:
            raise ValueError("the data source gave no batch")
        if any(y is None for y in ys):
            raise ValueError("y is missing: a training source must give (X, y) batches")
        return np.concatenate([np.asarray(y) for y in ys])


def _split_item(item, k):
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ValueError(f"batch {k}: a data source must give (X, y) pairs; got "
                         f"{type(item).__name__}")
    return item


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


__all__ = ["ArrayDataset", "Dataset", "Rows", "StreamBatches", "is_streamed", "open_array",
           "source_for", "targets_of"]
