"""The collectives of a data-parallel fit, over real engines: MPI through mpi4py (host
buffers), NCCL through ``cupy.cuda.nccl`` (bootstrapped over MPI) and ``torch.distributed``
(gloo on the CPU, NCCL on CUDA). :mod:`nnx.distributed` uses them through the
:class:`Communicator` interface; a new engine subclasses it.

Every MPI and gloo collective waits at most ``timeout`` seconds for the other ranks, then
raises :class:`DistributedError` (never a hang); see :class:`NCCLCommunicator` for NCCL.
"""

from __future__ import annotations

import atexit
import datetime
import os
import pickle
import time

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

    def start(self, ctx) -> None:
        """Set up what the fit's collectives need on ``ctx``'s device (called by every rank
        at the start of a fit, after the ranks agreed)."""

    def _late(self, what: str) -> DistributedError:
        return DistributedError(
            f"rank {self.rank} of {self.size} waited {self.timeout:g} s for the other ranks "
            f"at {what}: another rank failed or stopped (see its error); every rank must run "
            "the same fit on the same data"
        )


def _host_buffer(ctx, array):
    """``(buffer, shared)``: ``array``'s memory as a writable NumPy array when the library
    allows it (NumPy, torch on the CPU), else a host copy to send back afterwards."""
    view = ctx.backend.host_view(array)
    if view is not None:
        return view, True
    return np.ascontiguousarray(ctx.backend.to_host(array)), False


class MPICommunicator(Communicator):
    """Collectives over MPI, through mpi4py, on host buffers.

    Device arrays the host cannot see (a GPU) are copied through the host; on CuPy,
    :class:`NCCLCommunicator` sums on the device instead.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    timeout : float, default DEFAULT_TIMEOUT
    """

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT):
        MPI = import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = check_number("timeout", timeout, low=0, low_open=True)

    #: seconds a wait polls without sleeping (as MPI's own blocking calls do): a rank that
    #: arrives a little early must not oversleep the others' arrival
    SPIN_SECONDS = 0.05

    @property
    def local_rank(self) -> int:
        return self.comm.Split_type(self.MPI.COMM_TYPE_SHARED).Get_rank()

    def _wait(self, requests, what):
        """Wait for nonblocking requests, at most ``timeout`` seconds (MPI's own waits
        cannot time out): poll without sleeping for :attr:`SPIN_SECONDS`, then with
        growing sleeps (a rank waiting long for a slow or failed one frees its core)."""
        start = time.monotonic()
        deadline = start + self.timeout
        pause = 0.0
        for request in requests:
            while not request.Test():
                now = time.monotonic()
                if now > start + self.SPIN_SECONDS:
                    pause = min(1e-3, pause + 1e-5)
                    time.sleep(pause)
                if now > deadline:
                    raise self._late(what)

    def allreduce(self, ctx, array, what):
        buffer, shared = _host_buffer(ctx, array)
        flat = buffer.reshape(-1)
        step = max(1, BUCKET_BYTES // flat.itemsize)
        requests = [self.comm.Iallreduce(self.MPI.IN_PLACE, flat[i:i + step])
                    for i in range(0, flat.shape[0], step)]
        self._wait(requests, what)
        return array if shared else ctx.asarray(buffer)

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

    def start(self, ctx):
        probe = ctx.zeros((1,))
        if not hasattr(getattr(probe, "data", None), "ptr"):
            raise ValueError("distributed='nccl' sums CuPy arrays on their GPU: build the "
                             "network with backend='cupy' (or use 'mpi' or 'torch')")
        self._communicator()  # now, while MPI's timeout covers every rank

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
        out = cupy.empty_like(array)
        stream = cupy.cuda.get_current_stream()
        # queued on the compute stream: the update that reads it follows in order, and the
        # host does not wait
        self._communicator().allReduce(array.data.ptr, out.data.ptr, array.size, kind,
                                       nccl.NCCL_SUM, stream.ptr)
        return out


class TorchCommunicator(Communicator):
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

    @property
    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.rank))

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
            if "timed out" in text.lower() or "timeout" in text.lower() or "closed" in text:
                raise DistributedError(f"{self._late(what)} ({text})") from error
            raise DistributedError(f"rank {self.rank} of {self.size} failed at {what}: "
                                   f"{text}") from error

    def allreduce(self, ctx, array, what):
        tensor = self._tensor(ctx, array)
        step = max(1, BUCKET_BYTES // tensor.element_size())
        for i in range(0, tensor.shape[0], step):
            part = tensor[i:i + step]
            self._run(lambda part=part: self.dist.all_reduce(part, async_op=True), what)
        if tensor is array:  # summed in place
            return array
        return array if ctx.backend.host_view(array) is not None else ctx.asarray(
            tensor.numpy())

    def broadcast(self, ctx, array, what):
        tensor = self._tensor(ctx, array).clone()
        self._run(lambda: self.dist.broadcast(tensor, src=0, async_op=True), what)
        return ctx.asarray(tensor) if self.torch.is_tensor(array) else ctx.asarray(
            tensor.numpy())

    def allgather_object(self, value, what):
        out = [None] * self.size
        self._run(lambda: self.dist.all_gather_object(out, value), what)
        return out

    def gather_object(self, value, what):
        out = [None] * self.size if self.rank == 0 else None
        self._run(lambda: self.dist.gather_object(value, out, dst=0), what)
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
