"""Data-parallel training on several processes: MPI (mpi4py) or ``torch.distributed``.

``net.fit(X, y, batch_size=B, distributed="mpi")``, launched as ``mpiexec -n N python
train.py`` (or ``srun``, or ``torchrun`` with ``distributed="torch"``), trains one model on N
processes ("ranks"). With the default ``data="global"`` every rank passes the same data and
the result is the one-process fit with the same seed and global batch ``B``:

- rank 0's parameters, layer state and shuffle stream are broadcast at the start, so every
  rank draws the same permutation each epoch; rank ``r`` computes on its slice of each global
  batch (:func:`~nnx.data.rank_slice`); memmaps, ``.npy`` paths, Dask arrays and datasets
  are read batch by batch, each rank reading only its rows (the label pass and a
  ``Standardize`` layer's first adaptation read every row on every rank; an iterable of
  batches cannot be split by position and is refused);
- each rank scales its loss gradient by its share of the global batch
  (:math:`b_r / B`, or :math:`\\sum w_r / \\sum w` for weight-normalised losses) *before*
  the backward pass, so that a synchronised :class:`~nnx.layers.BatchNorm` sees global
  means; the penalties of the regularizers are added on rank 0 only; then the gradients and
  the loss, packed into one vector, are summed once per step (the communicator's
  :meth:`~nnx.communicators.Communicator.step_sum`: MPI sums it in shared memory within a
  machine, :class:`~nnx.communicators.SharedMemorySum`; gloo in buckets of
  :data:`BUCKET_BYTES`, NCCL in one call). Every rank then applies the same update:
  clipping, the optimizer and the divergence guard see the global gradient and agree on
  every rank;
- the epoch's loss is the global mean; at each epoch's end the layer state (BatchNorm's
  running statistics, updated by each rank from its part unless synchronised) is averaged
  over the ranks, and each rank scores its part of the validation rows, summed into the
  global means: every rank sees the same logs, so ``EarlyStopping``,
  ``ReduceLROnPlateau`` and the divergence guard decide the same everywhere, and every
  rank ends with the same model;
- dropout masks differ per rank (rank ``r > 0`` draws from a stream derived from rank 0's and
  ``r``) and are reproducible;
- progress bars and the callbacks that write files (``rank_zero_only``) run on rank 0 only.

``data="local"``: each rank passes its own shard. Rank ``r`` takes its part of each global
batch from its own rows (in an order drawn from rank 0's shuffle stream for its shard's
size), and an epoch has as many steps as the smallest shard allows. That is the usual
sharded data-parallel fit; it is *not* the one-process fit (the batches differ).

Ranks that disagree at the start (data sizes, the network, epochs, shuffle, validation, the
callbacks that run on every rank) are refused on every rank. A rank that fails makes the
others fail too: every MPI and gloo collective waits at most ``timeout`` seconds, then
raises :class:`DistributedError` naming the step, never a hang (NCCL's sums, queued on the
GPU, are bounded by NCCL's own watchdog for torch and not at all for CuPy: see
:class:`~nnx.communicators.NCCLCommunicator`). A next fit in the same processes starts
clean: a fit runs its collectives on a communicator of its own (a duplicate of MPI's, a new
``torch.distributed`` process group), so that what a failed one left pending never meets
the next one.

The communicators themselves (MPI, NCCL, ``torch.distributed``) are in
:mod:`nnx.communicators`; their names are importable from here too.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np

from .checks import check_choice, check_number
from .communicators import (COMMUNICATORS, DEFAULT_TIMEOUT, Communicator,
                            DistributedError, MPICommunicator, NCCLCommunicator,
                            TorchCommunicator, import_mpi)
from .data import rank_slice
from .guard import DivergenceError
from .packing import FlatLayout


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _from_difference(value, reference, width: int = 80) -> str:
    """``value`` as text, from a little before where it first differs from ``reference``
    (two long configurations differ somewhere in the middle)."""
    text, other = str(value), str(reference)
    first = next((i for i, (a, b) in enumerate(zip(text, other)) if a != b),
                 min(len(text), len(other)))
    start = max(0, first - 20)
    return ("..." if start else "") + text[start:start + width]


# --------------------------------------------------------------------------- the plan


_NAMED: dict = {}


def communicator_named(name: str, timeout=DEFAULT_TIMEOUT) -> Communicator:
    """The communicator ``distributed=name`` stands for: one per name and timeout in a
    process, so that what it sets up once (NCCL's communicator, the shared-memory windows
    of the gradient sum) serves every fit instead of being made again by each."""
    key = (name, check_number("timeout", timeout, low=0, low_open=True))
    if key not in _NAMED:
        _NAMED[key] = COMMUNICATORS[name](timeout=timeout)
    return _NAMED[key]


def data_parallel(spec):
    """``fit``'s ``distributed=`` as a :class:`DataParallel` (``None`` stays ``None``)."""
    if spec is None or isinstance(spec, DataParallel):
        return spec
    return DataParallel(spec)


class GradientSum:
    """What a :class:`~nnx.network.Network` consults while a data-parallel fit runs
    (``net.reduction``): this rank's share of the global batch, and the sum over ranks.

    Parameters
    ----------
    net : Network
    comm : Communicator
    """

    def __init__(self, net, comm: Communicator):
        self.net, self.comm = net, comm
        self.ctx = net.ctx
        # every parameter's slice starts on a 64-byte boundary, and so does every rank's
        # vector in a shared-memory window (16 elements for the loss keep the vector's size
        # a multiple of 16): the layers' products made there round as into new arrays
        self.layout = FlatLayout(net.parameters(), align=16)
        self.owns_penalties = comm.rank == 0
        #: rows of the global batch of the coming step (set by :class:`RankBatches`)
        self.rows_total = None
        self.steps = 0
        #: sums the packed gradients and the loss (the last element), ``(layout.size + 16,)``,
        #: at every step
        self.step_sum = comm.step_sum(net.ctx, self.layout.size + 16)
        self._destinations = {}  # id of a step vector -> its slices (destinations)

    def share(self, loss_fn, out, yb, wb):
        """This rank's part of the global batch's mean loss and its gradient: the local
        mean scaled by :math:`s_r / \\sum_q s_q` (:math:`s_r` the rows, or the weight sum of
        a weight-normalised loss; then one scalar allreduce finds the total).

        A rank without rows (a last batch smaller than the number of ranks) contributes
        zeros, and still takes part in every sum."""
        xp, ctx = self.ctx.xp, self.ctx
        rows = out.shape[0]
        if wb is not None and loss_fn.normalize_by_weight:
            mine = xp.reshape(xp.sum(wb), (1,))
            total = self.comm.allreduce(ctx, xp.asarray(mine, copy=True),
                                        self._where("the batch weights"))
            tiny = float(xp.finfo(ctx.dtype).smallest_normal)
            factor = mine[0] / xp.maximum(total[0], tiny)
        else:
            factor = rows / self.rows_total
        if rows == 0:
            return ctx.zeros(()), xp.zeros_like(out)
        loss, dloss = loss_fn.value_and_grad(xp, out, yb, wb)
        return loss * factor, dloss * factor

    def destinations(self):
        """Name -> the slice of the coming step's vector (see :meth:`sum`) that holds the
        parameter's gradient, in its shape, or ``None`` where the library's slices are not
        views of writeable arrays.

        The layers that can (``Layer.gradients_into``) make their gradients right there,
        so :meth:`sum` need not copy them in, as PyTorch DDP's ``gradient_as_bucket_view``
        (the backend's ``matmul_into`` makes the product there on NumPy and torch; other
        libraries copy it there, as :meth:`sum` would). The vectors alternate or repeat
        (one per window, see :class:`~nnx.communicators.SharedMemorySum`): their slices are
        made once each.
        """
        ctx = self.ctx
        if not (ctx.views and ctx.writeable):
            return None
        flat = self.step_sum.vector()
        views = self._destinations.get(id(flat))
        if views is None:  # the vectors live as long as the step sum: their ids are kept
            views = self._destinations[id(flat)] = self.layout.unpack(ctx.xp, flat[:-1])
        return views

    def sum(self, loss, grads: dict, keep: bool = False):
        """The loss and gradients summed over ranks, in one sum of the packed vector (the
        loss rides at its end).

        The gradients are copied into the communicator's vector for the step
        (:meth:`~nnx.communicators.Communicator.step_sum`: one kept for the whole fit, or a
        shared-memory segment), unless they were made there (:meth:`destinations`), and
        the gradients returned are slices of the sum, which a later step overwrites: the
        optimizer consumes them within the step; with ``keep`` (callbacks that see every
        step's gradients and may hold on to them) they are copies. The loss is always a
        copy.
        """
        xp = self.ctx.xp
        flat = self.step_sum.vector()
        made_there = self.destinations() or {}
        for name, (start, stop) in zip(self.layout.names, self.layout.bounds):
            if grads[name] is not made_there.get(name):
                flat[start:stop] = xp.reshape(grads[name], (-1,))
        flat[-1] = loss
        flat = self.step_sum.sum(self._where("the gradient sum"))
        self.steps += 1
        loss = xp.asarray(flat[-1], copy=True)
        if keep:
            flat = xp.asarray(flat, copy=True)
        return loss, self.layout.unpack(xp, flat[:-1])

    def sum_counts(self, *counts) -> list:
        """Counts (device integers or Python ints) summed over the ranks, as Python floats:
        one small allreduce (a training accuracy, once per epoch)."""
        xp, ctx = self.ctx.xp, self.ctx
        column = xp.stack([xp.astype(xp.asarray(c, device=ctx.device), xp.float64)
                           for c in counts])
        total = self.comm.allreduce(ctx, column, self._where("the epoch's counts"))
        return [float(v) for v in ctx.backend.to_host(total)]

    def sum_over_ranks(self, array, what):
        """An array summed over ranks (a synchronised BatchNorm's statistics)."""
        return self.comm.allreduce(self.ctx, array, self._where(what))

    def _where(self, what):
        return f"{what} of step {self.steps + 1}"


class DataParallel:
    """How ``fit`` trains on several processes (see the module docstring).

    Parameters
    ----------
    communicator : {"mpi", "nccl", "torch"} or Communicator, default "mpi"
        ``"mpi"``: mpi4py on host buffers; ``"nccl"``: CuPy arrays summed by NCCL,
        bootstrapped over MPI; ``"torch"``: ``torch.distributed`` (gloo on CPU, NCCL on CUDA).
    data : {"global", "local"}, default "global"
        ``"global"``: every rank passes the same data (the one-process fit);
        ``"local"``: each rank passes its own shard (not the one-process fit).
    sync_batchnorm : bool, default False
        BatchNorm statistics over the global batch (as torch's ``SyncBatchNorm``; three small
        allreduces per BatchNorm layer and step) instead of each rank's part.
    timeout : float, default DEFAULT_TIMEOUT
        Seconds a rank waits for the others at a collective before it raises
        :class:`DistributedError`.
    """

    def __init__(self, communicator="mpi", data="global", sync_batchnorm=False,
                 timeout=DEFAULT_TIMEOUT):
        self.data = check_choice("data", data, ("global", "local"))
        self.sync_batchnorm = bool(sync_batchnorm)
        if isinstance(communicator, str):
            check_choice("distributed", communicator, tuple(COMMUNICATORS))
            communicator = communicator_named(communicator, timeout)
        elif not isinstance(communicator, Communicator):
            raise TypeError(f"distributed must be 'mpi', 'nccl', 'torch', a Communicator or "
                            f"a DataParallel; got {type(communicator).__name__}")
        self.comm = communicator

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    # ------------------------------------------------------------------ one fit

    #: more of ``fit``'s arguments every rank must share (set by ``fit``; see :meth:`begin`)
    settings = None
    #: the progress this rank asks for (set by ``fit``); :meth:`begin` makes it the largest
    #: any rank asked for
    verbose = 0
    #: fits whose run began (:meth:`open`) and has not ended (:meth:`end`)
    began = 0

    def open(self) -> None:
        """Begin the fit's run over the ranks
        (:meth:`~nnx.communicators.Communicator.begin_run`), first thing in ``fit``: a rank
        that fails anywhere after this makes every rank's fit fail (:meth:`end`)."""
        self.comm.begin_run()
        self.began += 1

    def begin(self, net, n_rows: int, batch_size) -> None:
        """Start a fit on every rank: check that the ranks agree, then give every rank rank
        0's parameters, layer state and random streams (its own mask streams forked).

        :attr:`settings` (epochs, shuffle, validation, the callbacks that run on every rank)
        must agree too. :attr:`verbose` may differ: it becomes the largest any rank asked
        for, so that every rank counts the training accuracy (a sum over the ranks) and
        rank 0 shows the progress."""
        comm = self.comm
        facts = {
            "the number of training rows": n_rows if self.data == "global" else None,
            "the number of features": net.input_dim,
            "batch_size": batch_size,
            "the targets": (net.targets_.kind, None if net.targets_.classes_ is None
                            else list(net.targets_.classes_)),
            # the seed may differ (rank 0's streams are broadcast), the device must (a GPU
            # per rank); a function's address differs per process
            "the network": _ADDRESS.sub("0x...", repr({
                k: v for k, v in net.get_config().items() if k not in ("seed", "device")})),
            "the optimizer's step count": net.optimizer.iterations,
            **(self.settings or {}),
        }
        every = comm.allgather_object({**facts, "verbose": self.verbose}, "the start of fit")
        self.verbose = max(f["verbose"] for f in every)
        for key in facts:
            values = [f[key] for f in every]
            if any(v != values[0] for v in values):
                shown = ", ".join(f"rank {r}: {_from_difference(v, values[0])}"
                                  for r, v in enumerate(values))
                error = DistributedError(
                    f"the ranks disagree on {key} ({shown}); every rank must build the same "
                    "network and pass the same data (or its own shard with data='local')")
                error.on_every_rank = True  # decided from what every rank sees (see end)
                raise error
        xp = net.ctx.xp
        start = net.snapshot(parameters=True)
        layout = FlatLayout(start["arrays"])
        flat = comm.broadcast(net.ctx, layout.pack(xp, start["arrays"]), "the start of fit")
        streams = comm.broadcast_object(
            (start["random"], net.random.mask_seed), "the start of fit")
        net.restore({"arrays": layout.unpack(xp, flat), "random": streams[0]})
        net.random.fork_masks(streams[1], comm.rank, net.optimizer.iterations)
        comm.start(net.ctx)
        self.gradient_sum = GradientSum(net, comm)

    def share_scaling(self, net) -> None:
        """With ``data="local"``, a first :class:`~nnx.layers.Standardize` layer adapted on
        each rank's own shard gets the statistics of every rank's training rows, merged
        (:meth:`nnx.datasets.Standardizer.merged`); statistics it was given (or loaded) are
        rank 0's everywhere. With ``data="global"`` every rank adapted it on the same rows
        already."""
        from .datasets import Standardizer

        layer = net.layers[0]
        if self.data != "local" or not getattr(layer, "adapted", False):
            return
        parts = self.comm.allgather_object((layer.moments, layer.mean, layer.scale),
                                           "the input scaling")
        if all(moments is not None for moments, _, _ in parts):
            merged = Standardizer.merged([moments for moments, _, _ in parts])
            layer.set_statistics(merged.mean_, merged.scale_)
        else:
            layer.set_statistics(parts[0][1], parts[0][2])

    def agree_state(self, net) -> None:
        """Average the layer state over the ranks (BatchNorm running statistics, which
        each rank updates from its part of the batches unless they are synchronised), as
        torch's DDP shares its buffers: every rank then evaluates and saves one model."""
        state = net.state()
        if not state or self.sync_batchnorm or self.comm.size == 1:
            return
        xp = net.ctx.xp
        layout = FlatLayout(state)
        total = self.comm.allreduce(net.ctx, layout.pack(xp, state), "the layer state")
        net.restore({"arrays": layout.unpack(xp, total / self.comm.size), "random": {}})

    def validator(self, net, validation, keys):
        """The epoch-end scoring of a data-parallel fit, a callable returning the logs'
        ``val_`` scores: the layer state agreed (:meth:`agree_state`), then each rank
        scores its part of the validation rows (its contiguous slice of the shared
        validation data, or with ``data="local"`` its own), and the row-weighted sums give
        every rank the global means, so that callbacks decide the same everywhere.

        ``validation``: ``None``, device arrays ``(X, Y)`` or a source; ``keys``: the
        score names (``loss``, and ``accuracy`` for a classifier)."""
        from .sources import Rows

        def part():
            if isinstance(validation, tuple):
                n = int(validation[0].shape[0])
                a, b = rank_slice(n, self.rank, self.size) if self.data == "global" else (0, n)
                return (b - a, lambda: net.scores(*(v[a:b, ...] for v in validation)))
            n = len(validation)
            a, b = rank_slice(n, self.rank, self.size) if self.data == "global" else (0, n)
            return b - a, lambda: net.evaluate(Rows(validation, a, b), None)

        def scores():
            self.agree_state(net)
            if validation is None:
                return {}
            rows, score = part()
            mine = score() if rows else dict.fromkeys(keys, 0.0)
            sums = self.gradient_sum.sum_counts(*(mine[k] * rows for k in keys), rows)
            return {k: value / sums[-1] for k, value in zip(keys, sums)}
        return scores

    def install(self, net) -> None:
        """Make ``net``'s objective and gradients the global batch's (undone by
        :meth:`end`)."""
        net.reduction = self.gradient_sum
        if self.sync_batchnorm:
            for _, layer in net.named_layers():
                if hasattr(layer, "synchronized"):
                    layer.synchronized = self.gradient_sum

    def end(self, net, failure: BaseException | None = None) -> None:
        """Remove what :meth:`begin` installed (also after an error), and end the fit's run
        (:meth:`~nnx.communicators.Communicator.end_run`). After an error (``failure``) the
        ranks may have stopped at different steps, and a next fit must not meet what they
        left behind; an error every rank raises at the same point (a
        :class:`~nnx.guard.DivergenceError`, decided from global values; ranks that
        disagree at the start) leaves nothing behind. A fit that failed before :meth:`open`
        leaves the communicator alone."""
        if self.began:
            self.began -= 1
            self.comm.end_run(_uneven(failure))
        net.reduction = None
        for _, layer in net.named_layers():
            if hasattr(layer, "synchronized"):
                layer.synchronized = None

    def batches(self, net, make, batch_size, min_rows=0) -> "RankBatches":
        """This rank's batches: its part of each global batch (``data="global"``) or of
        its own shard (``data="local"``).

        ``make(batch_size, shard)`` builds one process's batches (an
        :class:`~nnx.data.EpochBatches` or :class:`~nnx.sources.StreamBatches`, which take
        only their ``shard`` of each batch); ``min_rows`` is the fewest rows a rank's part
        may have (a streamed part cannot be empty)."""
        comm = self.comm
        if self.data == "global":
            inner = make(batch_size, (comm.rank, comm.size))
            rows = [float(b - a) for a, b in inner.bounds]
            smallest = min(int(r) // comm.size for r in rows)
        else:
            local = batch_size
            if batch_size is not None:  # this rank's part of the global batch size
                start, stop = rank_slice(batch_size, comm.rank, comm.size)
                local = max(1, stop - start)
            inner = make(local, (0, 1))
            sizes = comm.allgather_object([b - a for a, b in inner.bounds],
                                          "the shards' batch sizes")
            steps = min(len(s) for s in sizes)
            rows = [float(sum(s[k] for s in sizes)) for k in range(steps)]
            smallest = min(min(s[:steps]) for s in sizes) if steps else 0
        need = max([min_rows] + [getattr(layer, "min_batch_size", 0)
                                 for _, layer in net.named_layers()
                                 if not (self.sync_batchnorm and hasattr(layer, "synchronized"))])
        if smallest < need:
            error = DistributedError(
                f"with {comm.size} ranks a batch leaves a rank {smallest} row(s), fewer than "
                f"the {need} it needs; choose batch_size (and the number of rows) so that "
                f"every batch has at least {need * comm.size} rows")
            error.on_every_rank = True  # from the batches every rank knows
            raise error
        return RankBatches(inner, self.gradient_sum, rows)


class RankBatches:
    """A rank's batches: its part of each global batch, with the global batch's row count
    (reported to the loop and told to the gradient sum before each step).

    Parameters
    ----------
    inner : EpochBatches
        The rank's parts.
    gradient_sum : GradientSum
    rows : list of float
        Rows of each global batch; the epoch has ``len(rows)`` steps.
    """

    def __init__(self, inner, gradient_sum, rows):
        self.inner, self.gradient_sum, self.rows = inner, gradient_sum, rows
        self.replayable = getattr(inner, "replayable", True)
        self.source = getattr(inner, "source", None)  # a streamed fit's source

    def __len__(self):
        return len(self.rows)

    def epoch(self, shuffle):
        return self.inner.epoch(shuffle)

    def __call__(self, data):
        for k, (batch, _) in zip(range(len(self.rows)), self.inner(data)):
            self.gradient_sum.rows_total = self.rows[k]
            yield batch, self.rows[k]

    def batch(self, data, k):
        self.gradient_sum.rows_total = self.rows[k]
        return self.inner.batch(data, k)

    def close(self):
        getattr(self.inner, "close", lambda: None)()


# --------------------------------------------------------------------------- inference


def _parts(X, y):
    """``(n, part)``: the rows of the user's data and ``part(a, b)``, the pair
    ``(X_rows, y_rows)`` of rows ``a:b`` (an array, a DataFrame, or a source with rows read
    through :class:`~nnx.sources.Rows`)."""
    from .sources import IterableSource, Rows, is_streamed, source_for

    if is_streamed(X):
        source = source_for(X, y)
        if isinstance(source, IterableSource):
            raise ValueError("evaluate and predict over the ranks split rows by position: "
                             "pass an array, a memmap, a .npy path or a dataset")
        return len(source), lambda a, b: (Rows(source, a, b), None)

    def rows(v, a, b):
        return None if v is None else (v.iloc[a:b] if hasattr(v, "iloc") else v[a:b])
    return len(X), lambda a, b: (rows(X, a, b), rows(y, a, b))


def _uneven(failure):
    """``failure``, or ``None`` where every rank raises it alike (a
    :class:`~nnx.guard.DivergenceError`, decided from global values; an error marked
    ``on_every_rank``): then the run leaves nothing pending and ends as a clean one."""
    everywhere = isinstance(failure, DivergenceError) or getattr(failure, "on_every_rank",
                                                                 False)
    return None if everywhere else failure


@contextlib.contextmanager
def _run(comm):
    """One run over the ranks (:meth:`~nnx.communicators.Communicator.begin_run`)."""
    comm.begin_run()
    failure = None
    try:
        yield comm
    except BaseException as error:
        failure = error
        raise
    finally:
        comm.end_run(_uneven(failure))


def evaluate(net, X, y, distributed) -> dict:
    """``net.evaluate(X, y)`` with the rows split over the ranks: each rank scores its
    contiguous part, and every rank gets the global means."""
    with _run(data_parallel(distributed).comm) as comm:
        n, part = _parts(X, y)
        start, stop = rank_slice(n, comm.rank, comm.size)
        mine = net.evaluate(*part(start, stop)) if stop > start else None
        parts = [(s, b - a) for s, (a, b) in zip(
            comm.allgather_object(mine, "evaluate"),
            (rank_slice(n, r, comm.size) for r in range(comm.size))) if s is not None]
    return {key: sum(s[key] * rows for s, rows in parts) / n for key in parts[0][0]}


def predict(net, method, X, distributed):
    """``method(X)`` (``net.predict``, ``net.predict_proba``) with the rows split over the
    ranks: each rank computes its contiguous part; rank 0 gets the whole result as a NumPy
    array, the other ranks ``None``."""
    from .backend import to_numpy

    with _run(data_parallel(distributed).comm) as comm:
        n, part = _parts(X, None)
        start, stop = rank_slice(n, comm.rank, comm.size)
        mine = to_numpy(method(part(start, stop)[0])) if stop > start else None
        parts = comm.gather_object(mine, method.__name__)
    return (np.concatenate([p for p in parts if p is not None]) if comm.rank == 0
            else None)


__all__ = ["COMMUNICATORS", "DEFAULT_TIMEOUT", "Communicator", "DataParallel",
           "DistributedError", "GradientSum", "MPICommunicator", "NCCLCommunicator",
           "RankBatches", "TorchCommunicator", "communicator_named", "data_parallel",
           "evaluate", "import_mpi", "predict"]
