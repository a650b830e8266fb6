"""The collectives of a data-parallel fit, over real engines: MPI through mpi4py (host
buffers), NCCL through ``cupy.cuda.nccl`` (bootstrapped over MPI) and ``torch.distributed``
(gloo on the CPU, NCCL on CUDA). :mod:`nnx.distributed` uses them through the
:class:`Communicator` interface; a new engine subclasses it.

Every MPI and gloo collective waits at most ``timeout`` seconds for the other ranks, then
raises :class:`DistributedError` (never a hang); see :class:`NCCLCommunicator` for NCCL.
"""

from __future__ import annotations

import atexit
import collections
import datetime
import os
import pickle
import time
import warnings

import numpy as np

from .backend import DISTRIBUTION
from .checks import check_number

#: seconds a rank waits at a collective for the others before it gives up
DEFAULT_TIMEOUT = 300.0
#: gradient bytes per allreduce (as PyTorch DDP's default bucket)
BUCKET_BYTES = 25 * 2**20


class DistributedError(RuntimeError):
    """The ranks of a data-parallel fit disagree, or one of them stopped answering."""


# --------------------------------------------------------------------------- communicators


class Communicator:
    """The collectives a data-parallel fit needs. Subclasses wrap a real engine.

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of processes.
    timeout : float
        Seconds a collective may wait for the other ranks.
    """

    rank = 0
    size = 1
    timeout = DEFAULT_TIMEOUT

    @property
    def local_rank(self) -> int:
        """This process's rank among those on its machine (the GPU it should use)."""
        return self.rank

    def allreduce(self, ctx, array, what: str):
        """The element-wise sum over ranks of a device array (1-D, the network's dtype)."""
        raise NotImplementedError("abstract method: a communicator sums arrays")

    def broadcast(self, ctx, array, what: str):
        """Rank 0's value of a device array, on every rank."""
        raise NotImplementedError("abstract method: a communicator broadcasts arrays")

    def allgather_object(self, value, what: str) -> list:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        raise NotImplementedError("abstract method: a communicator gathers objects")

    def broadcast_object(self, value, what: str):
        """Rank 0's ``value`` on every rank."""
        return self.allgather_object(value, what)[0]

    def gather_object(self, value, what: str):
        """Every rank's ``value`` in rank order on rank 0; ``None`` on the others."""
        values = self.allgather_object(value, what)
        return values if self.rank == 0 else None

    def begin_run(self) -> None:
        """Called by every rank first thing in a run over the ranks (a fit, or an
        ``evaluate`` or ``predict`` split over them), before any other collective of it."""

    def start(self, ctx) -> None:
        """Set up what the fit's collectives need on ``ctx``'s device (called by every rank
        at the start of a fit, after the ranks agreed)."""

    def step_sum(self, ctx, size: int) -> "StepSum":
        """What sums one ``(size,)`` vector over the ranks at every step of a fit (the
        packed gradients and loss); called by every rank at the start of the fit."""
        return StepSum(self, ctx, size)

    def abandon(self, failure: BaseException) -> None:
        """Forget what the run set up, after it failed with ``failure`` here: the ranks may
        have stopped at different steps and left collectives pending, so nothing of it can
        be trusted by the next run."""

    def end_run(self, failure: BaseException | None) -> None:
        """Called by every rank at the end of a run that began (:meth:`begin_run`), with
        the error that ended it here, or ``None``: a success, or an error every rank
        raised alike (then nothing is left pending). After an error, :meth:`abandon`."""
        if failure is not None:
            self.abandon(failure)

    def _late(self, what: str, seconds=None) -> DistributedError:
        seconds = self.timeout if seconds is None else seconds
        return DistributedError(
            f"rank {self.rank} of {self.size} waited {seconds:g} s for the other ranks "
            f"at {what}: another rank failed or stopped (see its error); every rank must run "
            "the same fit on the same data"
        )


class StepSum:
    """One ``(size,)`` vector of the network's dtype, filled and summed over the ranks at
    every step: one array kept for the whole fit (as Horovod's fusion buffer and PyTorch
    DDP's buckets are), summed in place by :meth:`Communicator.allreduce`.

    A vector kept also spares an allocation per step, and MPI never meets freshly mapped
    pages (which can cost MPICH several times the sum of memory it has seen before,
    depending on what the allocator hands back).
    """

    def __init__(self, comm: Communicator, ctx, size: int):
        self.comm, self.ctx = comm, ctx
        self._vector = ctx.zeros((size,))

    def vector(self):
        """The array to fill with this step's values (then call :meth:`sum`)."""
        return self._vector

    def sum(self, what: str):
        """This step's vector summed over the ranks: valid until the next step's
        :meth:`vector` (it may be, or share memory with, a vector a later step reuses)."""
        return self.comm.allreduce(self.ctx, self._vector, what)


def _cores() -> set:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def shared_memory_free():
    """Bytes free in ``/dev/shm``, where MPI's shared-memory windows live (``None`` where
    there is no such file system to ask)."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def _host_buffer(ctx, array):
    """``(buffer, shared)``: ``array``'s memory as a writable NumPy array when the library
    allows it (NumPy, torch on the CPU), else a host copy to send back afterwards."""
    view = ctx.backend.host_view(array)
    if view is not None:
        return view, True
    return np.ascontiguousarray(ctx.backend.to_host(array)), False


class _RunsOfTheirOwn:
    """What :class:`MPICommunicator` and :class:`TorchCommunicator` share: each run over
    the ranks gets collectives of its own (:meth:`_open_run`), freed at its end on every
    rank, whatever happened (:meth:`_close_run`), so that one a failed run left pending
    on some rank is never met again. Runs nest (an ``evaluate`` from a fit's callback
    keeps the fit's collectives; an inner failure fails the outer run), and the ranks must
    be at the same run: a start that timed out, or ranks that began different numbers of
    runs, refuse every later run (start the processes again)."""

    NEVER_STARTED = ("a run before this one never started on some rank, so the ranks' "
                     "communicator is out of step")

    def _init_runs(self) -> None:
        self._out_of_step = None  # why later runs are refused (see begin_run), if they are
        self._runs = 0  # runs begun (begin_run), the same on every rank
        self._depth = 0  # runs begun and not ended: more than 1 when nested
        self._failure = None  # a nested run's, until the outer run ends

    def begin_run(self):
        if self._depth:  # a run inside a run (an evaluate from a fit's callback): its own
            self._depth += 1
            return
        if self._out_of_step:
            raise DistributedError(f"rank {self.rank} of {self.size}: {self._out_of_step}; "
                                   "start the processes again")
        try:
            # twice the timeout: after a failed run, a rank that failed by itself comes
            # here at once, while the others may still be waiting out their timeout
            self._open_run("the start of the run", 2 * self.timeout)
            # a rank that failed before it began a run would meet the others' next one:
            # every rank must be at the same run
            runs = self.allgather_object(self._runs, "the start of the run")
        except BaseException:  # a timeout, or anything else midway: out of step from now
            self._out_of_step = self.NEVER_STARTED
            self._abandon_start()
            raise
        if any(r != runs[0] for r in runs):
            self._out_of_step = self.NEVER_STARTED
            self._abandon_start()
            raise DistributedError(
                f"rank {self.rank} of {self.size}: the ranks are at different runs (the "
                f"number of fits, evaluates and predicts each began: {runs}); a rank failed "
                "before one began; start the processes again")
        self._runs += 1
        self._depth = 1

    def end_run(self, failure):
        self._depth -= 1
        self._failure = self._failure or failure
        if self._depth:  # the outer run goes on (and fails with an inner failure)
            return
        failure, self._failure = self._failure, None
        try:
            super().end_run(failure)
        finally:
            # every rank frees the same collectives, whatever happened, so the next run
            # makes the same new ones everywhere
            self._close_run(failure)

    def _open_run(self, what: str, seconds: float) -> None:
        """Make the run's collectives (collective: every rank), waiting at most
        ``seconds``; raises :class:`DistributedError` when the others do not come."""
        raise NotImplementedError("abstract method: a communicator makes a run's collectives")

    def _abandon_start(self) -> None:
        """Forget a start that failed (the ranks are out of step from now on)."""
        raise NotImplementedError("abstract method: a communicator forgets a failed start")

    def _close_run(self, failure) -> None:
        """Free the run's collectives (every rank, at the end of every run; ``failure``:
        the error that ended it here, or ``None``)."""
        raise NotImplementedError("abstract method: a communicator frees a run's collectives")


class MPICommunicator(_RunsOfTheirOwn, Communicator):
    """Collectives over MPI, through mpi4py, on host buffers.

    Device arrays the host cannot see (a GPU) are copied through the host; on CuPy,
    :class:`NCCLCommunicator` sums on the device instead.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``. Each fit (and each ``evaluate`` or ``predict`` over the
        ranks) runs its collectives on a duplicate of it of its own (``MPI_Comm_idup`` at
        :meth:`begin_run`), so that one which fails on some rank, leaving collectives
        pending, leaves them there: ``comm`` itself only ever makes those duplicates (the
        machine's communicators of the gradient sum are the run's too). A rank that never
        starts a run leaves its duplicate pending on the others, and ranks that began
        different numbers of runs (one failed before it began one) are found at the next
        start: then every later run on this communicator is refused with a clear error
        (start the processes again).
    timeout : float, default DEFAULT_TIMEOUT
    shared_memory : bool, default True
        Sum each step's gradients through MPI shared-memory windows among the ranks of one
        machine, and with ``MPI_Allreduce`` between machines (:class:`SharedMemorySum`);
        ``False``: one ``MPI_Allreduce`` over all ranks (:class:`StepSum`). The other
        collectives are MPI's own either way.
    machine : mpi4py.MPI.Comm, optional
        The ranks that share memory with this one. Default: ``comm`` split by
        ``MPI.COMM_TYPE_SHARED`` (the ranks on this machine).
    """

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT, shared_memory=True, machine=None):
        MPI = import_mpi()
        self.MPI = MPI
        self.world = MPI.COMM_WORLD if comm is None else comm
        #: the communicator collectives use: a fit's own duplicate of ``world`` while it
        #: runs (:meth:`begin_run`), ``world`` otherwise
        self.comm = self.world
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = check_number("timeout", timeout, low=0, low_open=True)
        self.shared_memory = bool(shared_memory)
        self.machine = machine
        self._machine = None  # the machine's ranks as the shared-memory sum uses them
        self._stage = {}  # host buffers for device arrays, by shape and dtype (_staged)
        self._step_sum = None  # the last fit's SharedMemorySum, reused by the next
        self._init_runs()
        #: more ranks on this machine than cores (known once the machine's ranks are):
        #: a waiting rank then yields its core between polls
        self.oversubscribed = False

    #: seconds a wait polls without sleeping (as MPI's own blocking calls do): a rank that
    #: arrives a little early must not oversleep the others' arrival
    SPIN_SECONDS = 0.05

    @property
    def local_rank(self) -> int:
        machine = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return machine.Get_rank()
        finally:
            machine.Free()

    def _wait(self, requests, what, seconds=None):
        """Wait for nonblocking requests, at most ``timeout`` seconds (MPI's own waits
        cannot time out): poll without sleeping for :attr:`SPIN_SECONDS` (yielding the core
        between polls when :attr:`oversubscribed`: the rank being waited for may need it),
        then with growing sleeps (a rank waiting long for a slow or failed one frees its
        core)."""
        start = time.monotonic()
        deadline = start + (self.timeout if seconds is None else seconds)
        pause = 0.0
        for request in requests:
            while not request.Test():
                now = time.monotonic()
                if now > start + self.SPIN_SECONDS:
                    pause = min(1e-3, pause + 1e-5)
                    time.sleep(pause)
                elif self.oversubscribed:
                    os.sched_yield()
                if now > deadline:
                    raise self._late(what, seconds)

    def allreduce(self, ctx, array, what):
        buffer, shared = _host_buffer(ctx, array)
        if not shared:  # a device array: its host copy goes through one kept buffer
            buffer = self._staged(buffer)
        self._sum_in_place(self.comm, buffer.reshape(-1), what)
        # a copy of the kept buffer: a library that wraps host memory without copying
        # (array_api_strict) would otherwise hand out an array the next sum overwrites
        return array if shared else ctx.asarray(buffer.copy())

    def _sum_in_place(self, comm, flat, what) -> None:
        """``flat`` (host, 1-D) summed over ``comm``'s ranks in place, in buckets of
        :data:`BUCKET_BYTES` in flight together."""
        step = max(1, BUCKET_BYTES // flat.itemsize)
        requests = [comm.Iallreduce(self.MPI.IN_PLACE, flat[i:i + step])
                    for i in range(0, flat.shape[0], step)]
        self._wait(requests, what)

    def _staged(self, host):
        """``host`` copied into a host buffer of its size kept from call to call (see
        :class:`StepSum` for why a kept buffer)."""
        key = (host.shape, host.dtype.str)
        if key not in self._stage:  # a handful of shapes per fit: the gradient, the counts
            self._stage[key] = np.empty(host.shape, dtype=host.dtype)
        np.copyto(self._stage[key], host)
        return self._stage[key]

    def step_sum(self, ctx, size):
        if not self.shared_memory:
            return StepSum(self, ctx, size)
        host = self.MPI.Get_processor_name()
        # every rank's machine, cores and free shared memory, exchanged with a timeout: no
        # rank is missing when the blocking calls below run (the splits, the windows)
        every = self.allgather_object((host, sorted(_cores()), shared_memory_free()),
                                      "the start of fit")
        if self._machine is None:  # the run's (end_run frees it)
            self._machine = (self.comm.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
                             if self.machine is None else self.machine.Dup())
        last = self._step_sum  # kept from fit to fit: windows are made and freed collectively
        if last is not None and last.fits(ctx, size):
            last.restart()
            return last
        need = 2 * size * np.dtype(ctx.dtype_name).itemsize  # two windows per rank
        if last is not None:
            last.free()
            self._step_sum = None
        ranks_on = collections.Counter(h for h, _, _ in every)
        cores_here = set().union(*(cores for h, cores, _ in every if h == host))
        self.oversubscribed = ranks_on[host] > len(cores_here)
        # the windows of a machine's ranks all live in its /dev/shm: too small a one (a
        # container's 64 MiB) would end the ranks with SIGBUS when they touch the windows
        short = [(h, free, need * ranks_on[h]) for h, _, free in every
                 if free is not None and free < need * ranks_on[h]]
        if short:
            if self.rank == 0:
                host, free, needed = short[0]
                warnings.warn(
                    f"the gradient sum needs {needed / 2**20:.0f} MiB of shared memory "
                    f"(/dev/shm) on {host}, which has {free / 2**20:.0f} MiB free: summing "
                    "with MPI_Allreduce instead (a larger /dev/shm, e.g. docker's "
                    "--shm-size, restores the faster sum)", RuntimeWarning, stacklevel=2)
            return StepSum(self, ctx, size)
        self._step_sum = SharedMemorySum(self, ctx, size)
        return self._step_sum

    def _open_run(self, what, seconds):
        comm, request = self.world.Idup()
        self._wait([request], what, seconds)
        self.comm = comm

    def _abandon_start(self):
        self.comm = self.world  # a duplicate still pending stays so: the next would mismatch

    def _close_run(self, failure):
        # the run's communicators, freed: MPICH frees one with pending operations (which a
        # failed run may leave on some ranks) once they end, and nothing meets them again.
        # The windows stay (freeing them synchronises the ranks).
        if self._machine is not None:
            self._machine.Free()
            self._machine = None
        if self._step_sum is not None:
            self._step_sum.drop()
        self.comm.Free()
        self.comm = self.world

    def broadcast(self, ctx, array, what):
        buffer, shared = _host_buffer(ctx, array)
        buffer = np.ascontiguousarray(buffer)
        self._wait([self.comm.Ibcast(buffer, root=0)], what)
        return array if shared and self.rank == 0 else ctx.asarray(buffer)

    def allgather_object(self, value, what):
        return self._exchange_objects(value, what, to_all=True)

    def gather_object(self, value, what):
        return self._exchange_objects(value, what, to_all=False)

    def _exchange_objects(self, value, what, to_all):
        """Every rank's pickled ``value`` on every rank (``to_all``) or on rank 0 only
        (``None`` elsewhere): the byte counts first, then the bytes."""
        receives = to_all or self.rank == 0
        data = np.frombuffer(pickle.dumps(value), dtype=np.uint8)
        sizes = np.zeros(self.size, dtype=np.int64)
        count = np.array([data.size], dtype=np.int64)
        if to_all:
            self._wait([self.comm.Iallgather(count, sizes)], what)
            out = np.empty(int(sizes.sum()), dtype=np.uint8)
            self._wait([self.comm.Iallgatherv(data, [out, sizes])], what)
        else:
            self._wait([self.comm.Igather(count, sizes)], what)
            out = np.empty(int(sizes.sum()) if receives else 0, dtype=np.uint8)
            self._wait([self.comm.Igatherv(data, [out, sizes] if receives else None)], what)
        if not receives:
            return None
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [pickle.loads(out[a:b].tobytes()) for a, b in zip(bounds[:-1], bounds[1:])]


class SharedMemorySum(StepSum):
    """The step's vector summed through MPI-3 shared-memory windows
    (``MPI_Win_allocate_shared``) among the ranks of one machine, and by ``MPI_Allreduce``
    between one rank per machine (in buckets of :data:`BUCKET_BYTES`): a hierarchical
    allreduce, as Horovod's (NCCL within a machine, MPI between machines) and MPI
    libraries' own shared-memory collectives.

    Each rank's vector *is* its segment of a window every rank on the machine can read, so
    a :class:`~nnx.layers.Dense` layer makes its gradients right there
    (:meth:`~nnx.distributed.GradientSum.destinations`); the others are copied in once.
    After a barrier, the machine's rank ``r`` adds the ``r``-th of its ``n`` slices of
    every segment into the first segment (segments in rank order: the same rounding on
    every rank); after a second barrier that segment holds the sum, and every rank reads
    it in place. Each rank reads ``1/n`` of every segment, where ``MPI_Allreduce`` copies
    the whole vector through MPICH's shared-memory cells several times: about four times
    faster for the large network's 2 MiB on two ranks here (``benchmarks/scaling.py``
    measures both).

    Two windows serve alternate steps: a rank may pack step ``k + 1`` while another still
    reads step ``k``'s sum, but never step ``k + 2`` (that needs step ``k + 1``'s barriers,
    which wait for every rank). The sum handed out is valid until this rank's next
    :meth:`sum` returns (then another rank may be packing into it).
    Where the network's library cannot use host memory in place (array_api_strict, a GPU)
    its vector is one kept array, copied into the segment, and the sum is copied back.
    The barriers and the sum between machines wait at most the communicator's timeout.
    """

    def __init__(self, comm: "MPICommunicator", ctx, size: int):
        self.comm, self.ctx, self.size = comm, ctx, size
        MPI, machine = comm.MPI, comm._machine
        dtype = np.dtype(ctx.dtype_name)
        n, r = machine.Get_size(), machine.Get_rank()
        self.rank = r
        self.part = slice(r * size // n, (r + 1) * size // n)
        self.windows, self.segments = [], []
        for _ in range(2):
            window = MPI.Win.Allocate_shared(size * dtype.itemsize, dtype.itemsize,
                                             comm=machine)
            window.Lock_all()  # one passive epoch: Sync and a barrier order the accesses
            self.windows.append(window)
            self.segments.append([np.ndarray((size,), dtype, buffer=window.Shared_query(q)[0])
                                  for q in range(n)])
        # the first rank of each machine sums the machines' sums (when there are several)
        self.machines = n < comm.size
        self._join_machines()
        self.own = [self._in_place(segments[r]) for segments in self.segments]
        self.sums = [self._in_place(segments[0]) for segments in self.segments]
        self._vector = None if self.own[0] is not None else ctx.zeros((size,))
        self.step = 0

    def _join_machines(self) -> None:
        """The communicator of the machines' first ranks (on them, with several machines;
        ``None`` elsewhere): collective over the run's communicator."""
        self.between, self.joined = None, True
        if self.machines:
            MPI, comm = self.comm.MPI, self.comm
            between = comm.comm.Split(0 if self.rank == 0 else MPI.UNDEFINED, comm.rank)
            self.between = None if between == MPI.COMM_NULL else between

    def drop(self) -> None:
        """At the end of a run: its communicator between machines freed (a sum a failed
        run left pending ends on it, never meeting the next run's)."""
        if self.between is not None:
            self.between.Free()
        self.between, self.joined = None, False

    def restart(self) -> None:
        """Serve a new fit (every rank at once): from the first window again, with the new
        run's communicator between machines."""
        self.step = 0
        if not self.joined:
            self._join_machines()

    def _in_place(self, host):
        """``host`` as an array of the network's library sharing its memory, or ``None``."""
        ctx = self.ctx
        array = ctx.backend.from_host(ctx.xp, host, ctx.dtype, ctx.device)
        view = ctx.backend.host_view(array)
        same = view is not None and view.ctypes.data == host.ctypes.data
        return array if same else None

    def fits(self, ctx, size) -> bool:
        """Whether this serves a fit of ``size`` elements on ``ctx`` (another fit's)."""
        return size == self.size and (ctx.name, ctx.device_name, ctx.dtype_name) == (
            self.ctx.name, self.ctx.device_name, self.ctx.dtype_name)

    def vector(self):
        k = self.step % 2
        return self._vector if self._vector is not None else self.own[k]

    def sum(self, what):
        k = self.step % 2
        self.step += 1
        segments = self.segments[k]
        if self._vector is not None:
            np.copyto(segments[self.rank], self.ctx.backend.to_host(self._vector))
        total, part = segments[0], self.part
        self._barrier(what)
        for segment in segments[1:]:
            np.add(total[part], segment[part], out=total[part])
        self._barrier(what)
        if self.machines:
            if self.between is not None:
                self.comm._sum_in_place(self.between, total, what)
            self._barrier(what)
        if self.sums[k] is not None:
            return self.sums[k]
        return self.ctx.asarray(total.copy())

    def _barrier(self, what):
        # both windows: the barrier orders this step's accesses and the other window's
        # from the step before
        for window in self.windows:
            window.Sync()
        self.comm._wait([self.comm._machine.Ibarrier()], what)
        for window in self.windows:
            window.Sync()

    def free(self) -> None:
        """Free the windows (collective: every rank of the machine at once)."""
        for window in self.windows:
            window.Unlock_all()
            window.Free()
        if self.between is not None:
            self.between.Free()
        self.windows = self.segments = self.own = self.sums = []


class NCCLCommunicator(MPICommunicator):
    """Sums CuPy device arrays with NCCL (``cupy.cuda.nccl``), bootstrapped over MPI: rank 0
    makes the NCCL id and MPI broadcasts it. Objects and broadcasts still go over MPI.

    Each rank uses the GPU its network is on (``device="cuda:<local rank>"``). The sums are
    queued on the device and the host never waits for them, so they have no timeout: a rank
    that dies after the fit started leaves the others waiting in the epoch's one read of
    the loss (MPI's timeout still covers the start of the fit and every object exchange).
    """

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT):
        super().__init__(comm, timeout)
        self._nccl = None

    def step_sum(self, ctx, size):
        # the gradients stay on the GPU: one vector summed there by NCCL
        return StepSum(self, ctx, size)

    def start(self, ctx):
        probe = ctx.zeros((1,))
        if not hasattr(getattr(probe, "data", None), "ptr"):
            raise ValueError("distributed='nccl' sums CuPy arrays on their GPU: build the "
                             "network with backend='cupy' (or use 'mpi' or 'torch')")
        self._communicator()  # now, while MPI's timeout covers every rank

    def abandon(self, failure):
        # sums a failed run left queued would meet the next run's on the same NCCL
        # communicator: aborted, and a new one set up by the next fit (start)
        if self._nccl is not None:
            getattr(self._nccl, "abort", lambda: None)()  # ncclCommAbort (NCCL >= 2.4)
            self._nccl = None
        super().abandon(failure)

    def _communicator(self):
        if self._nccl is None:
            from cupy.cuda import nccl

            uid = nccl.get_unique_id() if self.rank == 0 else None
            uid = self.broadcast_object(uid, "the NCCL set-up")
            self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl

    def allreduce(self, ctx, array, what):
        import cupy
        from cupy.cuda import nccl

        kind = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}[str(array.dtype)]
        stream = cupy.cuda.get_current_stream()
        # in place, queued on the compute stream: the update that reads it follows in
        # order, and the host does not wait
        array = cupy.ascontiguousarray(array)
        self._communicator().allReduce(array.data.ptr, array.data.ptr, array.size, kind,
                                       nccl.NCCL_SUM, stream.ptr)
        return array


class TorchCommunicator(_RunsOfTheirOwn, Communicator):
    """Collectives over ``torch.distributed``: gloo for CPU tensors (and NumPy arrays, seen
    as tensors without a copy), NCCL for CUDA tensors.

    The process group is the user's when one is initialised; otherwise one is made from the
    environment ``torchrun`` sets (``MASTER_ADDR``, ``RANK``, ``WORLD_SIZE``, ...).

    Parameters
    ----------
    backend : str, optional
        ``torch.distributed``'s backend. Default: ``"cpu:gloo,cuda:nccl"`` where CUDA is
        available (each tensor goes to the backend of its device, so a network on the CPU
        works there too), else ``"gloo"``.
    timeout : float, default DEFAULT_TIMEOUT
        The group's timeout. On CUDA, NCCL enforces it through its own watchdog, which
        ends the process rather than raising.

    Notes
    -----
    Each fit (and each ``evaluate`` or ``predict`` over the ranks) runs its collectives
    on a process group of its own (``torch.distributed.new_group`` at
    :meth:`begin_run`, destroyed at its end on every rank), so that operations a fit that
    failed on some rank left unmatched are never met again: the next fit works. Each run
    pays for the group's setup (gloo connects the ranks again, and the rendezvous store
    keeps a few keys per group), which an ``evaluate`` or ``predict`` over the ranks
    called in a loop notices. A rank that never starts a run, or ranks that began
    different numbers of runs, make every later run refused with a clear error (start the
    processes again).

    The group's rendezvous waits twice the timeout (a rank that failed by itself arrives
    early), then its operations are set back to the timeout with
    ``torch.distributed.distributed_c10d._set_pg_timeout``: before torch 2.3 there is no
    such function, and gloo honours it only in recent releases; otherwise the object
    collectives wait twice the timeout. After a failed run over NCCL the group is not
    destroyed (NCCL's destroy would wait for its queued operations) and later runs are
    refused.
    """

    def __init__(self, backend=None, timeout=DEFAULT_TIMEOUT):
        import torch
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.timeout = check_number("timeout", timeout, low=0, low_open=True)
        if not dist.is_initialized():
            missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                       if k not in os.environ]
            if missing:
                raise DistributedError(
                    f"distributed='torch' needs a process group: launch with torchrun (which "
                    f"sets {', '.join(missing)}), or call torch.distributed.init_process_group "
                    "first"
                )
            if backend is None:
                backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            local = int(os.environ.get("LOCAL_RANK", 0))
            if "nccl" in backend and local < torch.cuda.device_count():
                torch.cuda.set_device(local)  # NCCL's object collectives use the current GPU
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=self.timeout))
            # a group still alive when the interpreter exits aborts the process (gloo's
            # threads): the group made here is destroyed at exit
            atexit.register(_destroy_group, dist)
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.group = None  # the run's process group while a run goes on (begin_run)
        self._init_runs()

    @property
    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.rank))

    def _open_run(self, what, seconds):
        # the group's rendezvous waits at most its timeout: ``seconds``, then the run's
        # collectives wait the communicator's own (``work.wait`` for the sums; the group's,
        # set below, for the object collectives)
        try:
            self.group = self.dist.new_group(timeout=datetime.timedelta(seconds=seconds))
        except RuntimeError as error:  # the store's wait timed out, gloo could not connect
            raise DistributedError(f"{self._late(what, seconds)} ({error})") from error
        from torch.distributed import distributed_c10d

        set_timeout = getattr(distributed_c10d, "_set_pg_timeout", None)  # torch >= 2.3
        if set_timeout is not None:
            set_timeout(datetime.timedelta(seconds=self.timeout), self.group)

    def _abandon_start(self):
        self._close_run(None)

    def _close_run(self, failure):
        group, self.group = self.group, None
        if group is None:
            return
        if failure is not None and "nccl" in str(self.dist.get_backend(group)):
            # NCCL's destroy waits for the operations queued on the GPU, which a run that
            # failed on some rank may leave unmatched for ever: the group is left as it is,
            # and later runs are refused (NCCL's watchdog ends a stuck process)
            self._out_of_step = ("an earlier run over NCCL failed on some rank and may have "
                                 "left operations queued on the GPU")
            return
        # the group's connections close: a peer still waiting in it stops, and nothing a
        # failed run left behind meets the next run's group
        self.dist.destroy_process_group(group)

    def _tensor(self, ctx, array):
        """``array`` as a tensor: itself, a tensor over its memory, or over a host copy."""
        if self.torch.is_tensor(array):
            return array
        buffer, _ = _host_buffer(ctx, array)
        return self.torch.from_numpy(buffer)

    def _run(self, collective, what):
        try:
            work = collective()
            if work is not None:
                work.wait(datetime.timedelta(seconds=self.timeout))
        except RuntimeError as error:  # gloo's timeouts and a peer's closed connection
            text = str(error)
            lowered = text.lower()
            if "timed out" in lowered or "timeout" in lowered:
                raise DistributedError(f"{self._late(what)} ({text})") from error
            if "closed" in lowered or "reset" in lowered:  # a peer left the run's group
                raise DistributedError(
                    f"rank {self.rank} of {self.size}: another rank left the run at {what} "
                    f"(see its error) ({text})") from error
            raise DistributedError(f"rank {self.rank} of {self.size} failed at {what}: "
                                   f"{text}") from error

    def allreduce(self, ctx, array, what):
        tensor = self._tensor(ctx, array)
        step = max(1, BUCKET_BYTES // tensor.element_size())
        for i in range(0, tensor.shape[0], step):
            part = tensor[i:i + step]
            self._run(lambda part=part: self.dist.all_reduce(
                part, group=self.group, async_op=True), what)
        if tensor is array:  # summed in place
            return array
        return array if ctx.backend.host_view(array) is not None else ctx.asarray(
            tensor.numpy())

    def broadcast(self, ctx, array, what):
        tensor = self._tensor(ctx, array).clone()
        self._run(lambda: self.dist.broadcast(
            tensor, src=0, group=self.group, async_op=True), what)
        return ctx.asarray(tensor) if self.torch.is_tensor(array) else ctx.asarray(
            tensor.numpy())

    def allgather_object(self, value, what):
        out = [None] * self.size
        self._run(lambda: self.dist.all_gather_object(out, value, group=self.group), what)
        return out

    def gather_object(self, value, what):
        out = [None] * self.size if self.rank == 0 else None
        self._run(lambda: self.dist.gather_object(value, out, dst=0, group=self.group), what)
        return out


def _destroy_group(dist):
    if dist.is_initialized():
        dist.destroy_process_group()


def import_mpi():
    """mpi4py's ``MPI`` module, or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            f"distributed='mpi' needs mpi4py and an MPI runtime: pip install "
            f"'{DISTRIBUTION}[mpi]' (mpi4py and the MPICH wheel, which brings mpiexec; no "
            f"system MPI needed) ({error})"
        ) from error
    return MPI


COMMUNICATORS = {"mpi": MPICommunicator, "nccl": NCCLCommunicator, "torch": TorchCommunicator}
