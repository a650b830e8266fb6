"""Backends: everything that differs between array libraries, in one descriptor per library.

The math of nnx is written once against the array API standard. What the standard leaves to
each library lives here, in one :class:`Backend` subclass per library (:class:`NumPyBackend`,
:class:`CuPyBackend`, :class:`TorchBackend`, :class:`StrictBackend`), looked up by name in a
registry. No other module asks which backend it runs on; it asks the :class:`Context` (the
namespace ``ctx.xp``, ``ctx.scope()``, ``ctx.asarray``, ...).

A :class:`Context` bundles what one network computes with: the backend descriptor, the
namespace ``xp``, the device, the float dtype and whether arrays may be updated in place. It is
resolved once per network.

The namespace a backend hands out is the library's array API namespace with the few functions
replaced whose stock form would make the host wait for a GPU on every training step (see
:meth:`Backend.namespace`); host data crosses only at the boundary (:func:`to_device` in,
:func:`to_numpy` and :func:`to_namespace_of` out).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import math
import numbers
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = ("float32", "float64")
DISTRIBUTION = "nnx-mlp"  # the name to pip install (the import name is nnx)


class Backend:
    """What nnx needs from one array library.

    A new backend (JAX, Dask, ...) subclasses this, fills in the attributes and the methods
    below that differ from these defaults, and calls :func:`register_backend`; nothing else in
    nnx changes. What it must provide:

    ``name``, ``package``, ``install_hint``
        The name users pass as ``backend=``, the import name of the library, and the pip line
        shown when it is missing.
    :meth:`load_namespace`
        The array API namespace, with sync-free forms (no boolean-mask indexing, no host data
        made into an array, no value read back) of ``maximum``/``minimum`` with a Python
        scalar, ``sign`` and ``clip``, and creation functions that honour ``device=``
        (``zeros``, ``ones``, ``full``, ``empty``, ``arange``, ``eye``, ``linspace`` and the
        ``*_like`` functions). The training step calls nothing else that could synchronise.
    :meth:`device`, :meth:`device_name`
        Parse and validate a user's ``device=`` (an early, clear error for a device that does
        not exist), and name a device as a plain string for model files and caches. Device
        objects need not be hashable (CuPy's are not): nnx never keys a dict on one.
    :meth:`owns`, :meth:`to_host`, :meth:`from_host`, :meth:`device_of`, :meth:`move`
        The boundary: recognise the library's arrays, copy them to NumPy, copy NumPy data in
        (detached, writeable and contiguous as the library needs), find an array's device and
        move an array to another device of the same library.
    :meth:`scope`, ``scoped``
        A context manager every public entry point runs in: the device made current (CuPy
        allocates many arrays on the *current* device), gradient recording off (torch);
        ``scoped = True`` when it does anything.
    :meth:`errstate`
        Silences floating-point warnings inside the math (NumPy-based libraries warn per
        operation; the divergence guard reports a NaN once, clearly).
    :meth:`synchronize`
        Wait for queued work on a device (for timing).
    :meth:`native_uniform`
        The library's own uniform generator for per-step masks (a :class:`NativeUniform`), or
        ``None`` to draw on the host and copy.
    :meth:`devices`
        Names of the devices usable here (for ``nnx info``).
    :meth:`transfer`
        How a streamed source's groups of rows cross to the device (a :class:`Transfer`):
        plain copies by default, pinned buffers and a copy stream on CUDA.
    ``views``
        Whether a basic slice or reshape of a contiguous array shares its memory.
    ``scipy_sparse``
        Whether the library's arrays multiply ``scipy.sparse`` matrices directly
        (``X @ W``, ``X.T @ dz``), so sparse data can stay sparse (:func:`sparse_to_device`).
    ``foreach_max_mean_size``
        The mean parameter size up to which element-wise optimizers pack their parameters
        (``None``: :attr:`nnx.optimizers.Optimizer.FOREACH_MAX_MEAN_SIZE`, measured on a CPU;
        ``benchmarks/foreach_threshold.py`` measures it for a backend and device).
    """

    name: str = ""
    package: str = ""
    install_hint: str = ""
    views: bool = False
    scipy_sparse: bool = False
    foreach_max_mean_size: int | None = None
    #: whether :meth:`scope` enters anything (entry points skip a scope that does nothing)
    scoped: bool = False

    # -- namespace and devices

    def load_namespace(self):
        raise NotImplementedError("abstract method: a backend provides its namespace")

    def namespace(self):
        """The namespace, built once per backend (imports the library lazily)."""
        xp = self.__dict__.get("_xp")
        if xp is None:
            xp = self._xp = self.load_namespace()
        return xp

    def import_package(self):
        try:
            return importlib.import_module(self.package)
        except ImportError as exc:
            raise ImportError(
                f"backend={self.name!r} needs the {self.package!r} package, which is not "
                f"installed here: {self.install_hint}"
            ) from exc

    def device(self, xp, spec):
        """The device object for a user's ``device=`` (``None``: the library's default)."""
        raise NotImplementedError("abstract method: a backend parses its devices")

    def device_name(self, device) -> str:
        """A plain, hashable name of ``device`` (``"cpu"``, ``"cuda:1"``)."""
        return str(device)

    def devices(self) -> list[str]:
        return [self.device_name(self.device(self.namespace(), None))]

    def same_device_kind(self, saved_name, device) -> bool:
        """Whether state saved on the device named ``saved_name`` fits ``device`` (the kind
        before the index: "cuda" of "cuda:1")."""
        kind = str(saved_name or "").partition(":")[0]
        return kind == self.device_name(device).partition(":")[0]

    # -- the boundary

    def owns(self, x) -> bool:
        return type(x).__module__.split(".")[0] == self.package

    def to_host(self, x) -> np.ndarray:
        return np.asarray(x)

    def from_host(self, xp, x: np.ndarray, dtype, device):
        return xp.asarray(x, dtype=dtype, device=device)

    def host_view(self, x):
        """``x``'s memory as a writable, contiguous NumPy array (for MPI to sum in place),
        or ``None`` where the host cannot see it (a GPU) or the library would copy."""
        return None

    def matmul_into(self, a, b, out):
        """``a @ b`` written into ``out`` (of the product's shape and dtype), and ``out``
        returned. Made right there (the library's matmul with an output), a product needed
        in a slice of a larger vector (the gradient sum's, see
        :meth:`nnx.distributed.GradientSum.destinations`) is not copied there; this default
        copies it. Only called where ``views`` holds and the arrays are writeable."""
        out[...] = a @ b
        return out

    def device_of(self, x):
        return x.device

    def move(self, x, device):
        """``x`` on ``device`` (the same array when it is there already)."""
        return x if self.device_of(x) == device else x.to_device(device)

    # -- running

    def scope(self, device):
        return contextlib.nullcontext()

    def errstate(self):
        return contextlib.nullcontext()

    def synchronize(self, device) -> None:
        """Wait for queued device work; nothing to wait for on the CPU."""

    def native_uniform(self, ctx: "Context", seed: int):
        return None

    def transfer(self, device) -> "Transfer":
        """How the groups of rows a streamed source reads cross to ``device``: plain copies
        (:class:`Transfer`), or a :class:`StreamTransfer` where copies can overlap compute."""
        return Transfer()

    def writeable(self, xp, probe) -> bool:
        from array_api_compat import is_writeable_array

        return bool(is_writeable_array(probe))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"

    def __reduce__(self):
        # copies and pickles of a Context refer to the registered descriptor
        return get_backend, (self.name,)


class NativeUniform:
    """A backend's own uniform generator for per-step masks (dropout).

    The generator object itself stays out of copies and pickles (CuPy's holds a
    ``threading.Lock`` and a cuRAND handle that must not be shared): a copy builds its own
    generator with :meth:`make` and continues from the same :meth:`get_state`.
    """

    def __init__(self, ctx: "Context", seed: int):
        self.ctx = ctx
        self.gen = self.make(seed)

    def make(self, seed: int):
        raise NotImplementedError("abstract method: a native generator makes its generator")

    def __call__(self, shape):
        raise NotImplementedError("abstract method: a native generator draws uniforms")

    def get_state(self):
        raise NotImplementedError("abstract method: a native generator exports its state")

    def set_state(self, state) -> None:
        raise NotImplementedError("abstract method: a native generator imports its state")

    def export_state(self):
        """:meth:`get_state` as plain values and NumPy arrays, for a model file."""
        return self.get_state()

    def import_state(self, saved):
        """What :meth:`set_state` takes, from an :meth:`export_state` read back."""
        return saved

    def __getstate__(self):
        return {"ctx": self.ctx, "state": self.get_state()}

    def __setstate__(self, saved):
        self.ctx = saved["ctx"]
        self.gen = self.make(0)
        self.set_state(saved["state"])


# --------------------------------------------------------------------------- transfers

#: the :class:`StreamTransfer` whose scope this thread is in (:func:`to_device` asks)
_staging = threading.local()


class Transfer:
    """How the groups of rows a streamed source reads (:mod:`nnx.sources`) cross to the
    device.

    The prefetch thread prepares each group (reads, checks, copies) inside :meth:`scope` and
    hands :meth:`record`'s token over with it; the training thread calls :meth:`wait` with
    the token before the group's first step and :meth:`release` after its last. This base
    class is the plain path of the CPU backends: copies as :func:`to_device` makes them,
    nothing to wait for, nothing to hold.
    """

    def scope(self):
        return contextlib.nullcontext()

    def record(self):
        """A token for the copies made in the scope so far (``None``: nothing to wait for)."""
        return None

    def wait(self, token) -> None:
        """Make the training's computations wait for the copies of ``token`` (on the
        device: the host does not wait)."""

    def release(self, arrays) -> None:
        """The training thread is done queueing work on a group's ``arrays``."""

    def close(self) -> None:
        """The fit is over: nothing more to hold."""


class StreamTransfer(Transfer):
    """Copies from pinned host buffers on a stream of their own (CUDA).

    Inside :meth:`scope`, :func:`to_device` on the prefetch thread writes the host rows into
    a pinned (page-locked) buffer, casting to the network's dtype on the way (float32 moves
    half the bytes of float64), and starts an asynchronous copy on the copy stream; the
    targets are encoded on the copy stream too. The training stream waits for the copy's
    event on the device, so the host never waits and the next group's copy overlaps the
    current group's steps. A group's device arrays (allocated on the copy stream) and its
    pinned buffers are held until an event recorded after the group's last step has passed:
    neither allocator may hand their memory to a new copy while a queued step still reads it.

    Parameters
    ----------
    streams : object
        The library's stream operations: ``scope()`` (the device and the copy stream
        current on this thread), ``pinned(shape, dtype)`` (a host NumPy array in pinned
        memory), ``upload(pinned)`` (a device array, copied asynchronously on the copy
        stream), ``record(copy)`` (an event on the copy stream, or on the current stream),
        ``wait(event)`` (the current stream waits for it) and ``done(event)`` (a query that
        never waits).
    """

    def __init__(self, streams):
        self.streams = streams
        self.held = collections.deque()  # (event, what a queued step may still read)
        self._pinned = []  # this group's pinned buffers, until its token takes them

    @contextlib.contextmanager
    def scope(self):
        with self.streams.scope():
            _staging.transfer = self
            try:
                yield
            finally:
                _staging.transfer = None

    def from_host(self, x: np.ndarray, dtype):
        """``x`` on the device in ``dtype``, through a pinned buffer on the copy stream."""
        pinned = self.streams.pinned(x.shape, dtype)
        pinned[...] = x
        self._pinned.append(pinned)
        return self.streams.upload(pinned)

    def record(self):
        token, self._pinned = (self.streams.record(copy=True), self._pinned), []
        return token

    def wait(self, token):
        self.streams.wait(token[0])

    def release(self, arrays):
        self.held.append((self.streams.record(copy=False), arrays))
        while self.held and self.streams.done(self.held[0][0]):
            self.held.popleft()

    def close(self):
        # After a normal end the epoch's loss was read back, which waited for every step.
        # Training that failed mid-epoch may leave steps queued that still read the held
        # arrays: wait for the last of them before their memory can be reused.
        if self.held:
            self.streams.finish(self.held[-1][0])
        self.held.clear()


class _CupyStreams:
    """CuPy's streams, events and pinned memory for a :class:`StreamTransfer`."""

    def __init__(self, device):
        import cupy

        self.cupy, self.device = cupy, device
        with device:
            self.stream = cupy.cuda.Stream(non_blocking=True)

    @contextlib.contextmanager
    def scope(self):
        with self.device, self.stream:
            yield

    def pinned(self, shape, dtype):
        dtype, size = np.dtype(dtype), math.prod(shape)
        memory = self.cupy.cuda.alloc_pinned_memory(max(1, size * dtype.itemsize))
        return np.frombuffer(memory, dtype, size).reshape(shape)  # keeps the memory alive

    def upload(self, pinned):
        out = self.cupy.empty(pinned.shape, dtype=pinned.dtype)
        out.set(pinned, stream=self.stream)
        return out

    def record(self, copy):
        return (self.stream if copy else self.cupy.cuda.get_current_stream()).record()

    def wait(self, event):
        self.cupy.cuda.get_current_stream().wait_event(event)

    def done(self, event):
        return event.done

    def finish(self, event):
        event.synchronize()


class _TorchStreams:
    """torch's CUDA streams, events and pinned memory for a :class:`StreamTransfer`."""

    def __init__(self, device):
        import torch

        self.torch, self.device = torch, device
        self.stream = torch.cuda.Stream(device)

    @contextlib.contextmanager
    def scope(self):
        with self.torch.no_grad(), self.torch.cuda.stream(self.stream):
            yield

    def pinned(self, shape, dtype):
        # the NumPy view keeps the pinned tensor alive
        return self.torch.empty(shape, dtype=dtype, pin_memory=True).numpy()

    def upload(self, pinned):
        return self.torch.from_numpy(pinned).to(self.device, non_blocking=True)

    def record(self, copy):
        stream = self.stream if copy else self.torch.cuda.current_stream(self.device)
        return stream.record_event()

    def wait(self, event):
        self.torch.cuda.current_stream(self.device).wait_event(event)

    def done(self, event):
        return event.query()

    def finish(self, event):
        event.synchronize()


# --------------------------------------------------------------------------- namespaces


class Namespace(types.ModuleType):
    """A library's namespace with some functions replaced.

    Every name of ``base`` is copied in as an attribute of its own (so a lookup costs what a
    module lookup costs); names the base loads lazily go through ``__getattr__``. Subclasses
    define the replacements as static methods. Copies and pickles refer to the backend's one
    namespace, like a module would.
    """

    def __init__(self, backend_name: str, base):
        super().__init__(f"nnx.backend.{backend_name}", f"{base.__name__} as nnx computes with it")
        self._backend_name = backend_name
        self._base = base
        own = {name for klass in type(self).__mro__ for name in vars(klass)}
        for name, value in vars(base).items():
            if not name.startswith("__") and name not in own:
                setattr(self, name, value)

    def __getattr__(self, name):
        return getattr(self._base, name)

    def __reduce__(self):
        return _namespace_of_backend, (self._backend_name,)


def _namespace_of_backend(name):
    return get_backend(name).namespace()


_CREATION = ("zeros", "ones", "empty", "full", "arange", "eye", "linspace")
_CREATION_LIKE = ("zeros_like", "ones_like", "empty_like", "full_like")


def honour_device(namespace, use_device, device_of) -> None:
    """Make the creation functions of ``namespace`` honour ``device=``.

    For libraries that allocate on a *current* device whatever ``device=`` says (CuPy, and
    array-api-compat's wrappers of it): each creation call runs inside ``use_device(device)``;
    a ``*_like`` call without ``device=`` uses its argument's device, as the standard says.
    """
    def creation(f):
        def wrapped(*args, device=None, **kwargs):
            if device is None:
                return f(*args, **kwargs)
            with use_device(device):
                return f(*args, device=device, **kwargs)
        return wrapped

    def creation_like(f):
        def wrapped(x, /, *args, device=None, **kwargs):
            with use_device(device_of(x) if device is None else device):
                return f(x, *args, device=device, **kwargs)
        return wrapped

    for name in _CREATION:
        setattr(namespace, name, creation(getattr(namespace, name)))
    for name in _CREATION_LIKE:
        setattr(namespace, name, creation_like(getattr(namespace, name)))


def _is_scalar(v) -> bool:
    """A host number (Python's or a NumPy scalar), passed to a kernel as an argument."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


class _NumPyNamespace(Namespace):
    """NumPy (>= 2, which implements the standard itself) with five hot functions bound
    straight to C.

    ``np.sum``/``np.max``/``np.min`` are Python wrappers around the ufunc reductions and
    ``np.reshape``/``np.take`` around the array methods; on a small network's batch the
    wrappers cost as much as the arithmetic (measured by ``benchmarks/fit_overhead.py``). The
    replacements take the standard's signatures and return exactly what NumPy's functions
    return (the wrappers forward to these same calls for ndarrays); every other name is
    NumPy's own.
    """

    @staticmethod
    def sum(x, /, *, axis=None, dtype=None, keepdims=False):
        return np.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)

    @staticmethod
    def max(x, /, *, axis=None, keepdims=False):
        return np.maximum.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def min(x, /, *, axis=None, keepdims=False):
        return np.minimum.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def take(x, indices, /, *, axis=None):
        if isinstance(x, np.ndarray):
            return x.take(indices, axis=axis)
        return np.take(x, indices, axis=axis)

    @staticmethod
    def reshape(x, /, shape, *, copy=None):
        if copy is None and isinstance(x, np.ndarray):
            return x.reshape(shape)
        return np.reshape(x, shape, copy=copy)


def _torch_namespace(compat):
    """array-api-compat's torch namespace without its per-step host synchronisations.

    Its ``maximum``/``minimum`` turn a Python scalar into a tensor with
    ``asarray(..., device=cuda)`` (a blocking host-to-device copy), its ``sign`` writes NaN
    through a boolean mask (``nonzero``: a count read back), and its ``clip`` with one tensor
    and one scalar bound makes a tensor of the scalar. Here a scalar goes to ``clamp`` as a
    kernel argument and NaN passes through ``where``.
    """
    import torch

    def with_scalar(clamp, fallback):
        """``maximum``/``minimum``: a Python number goes to ``clamp`` as a kernel argument."""
        def f(x1, x2, /):
            if _is_scalar(x2) and isinstance(x1, torch.Tensor) and x1.is_floating_point():
                return clamp(x1, x2)
            if _is_scalar(x1) and isinstance(x2, torch.Tensor) and x2.is_floating_point():
                return clamp(x2, x1)
            return fallback(x1, x2)
        return staticmethod(f)

    class TorchNamespace(Namespace):
        maximum = with_scalar(torch.clamp_min, compat.maximum)
        minimum = with_scalar(torch.clamp_max, compat.minimum)

        @staticmethod
        def sign(x, /):
            if x.is_floating_point():
                return torch.where(torch.isnan(x), x, torch.sign(x))
            return compat.sign(x)

        @staticmethod
        def clip(x, /, min=None, max=None):
            if not x.is_floating_point() or (
                    any(_is_scalar(v) and math.isnan(v) for v in (min, max))):
                return compat.clip(x, min, max)
            if min is None and max is None:
                return torch.clone(x)
            if _is_scalar(min) and isinstance(max, torch.Tensor):
                return torch.minimum(torch.clamp_min(x, min), max)
            if _is_scalar(max) and isinstance(min, torch.Tensor):
                return torch.clamp_max(torch.maximum(x, min), max)
            return torch.clamp(x, min, max)

    return TorchNamespace("torch", compat)


def _cupy_namespace(compat):
    """array-api-compat's CuPy namespace without its per-step host synchronisations, with
    creation functions that honour ``device=``.

    Its ``sign`` writes NaN through a boolean mask and its ``clip`` is built from boolean
    masks (each a ``nonzero`` whose count is read back); CuPy's own ufuncs need neither. Its
    ``zeros``, ``ones``, ``full``, ``arange`` and ``*_like`` ignore ``device=`` and allocate on
    the current device (see :func:`honour_device`).
    """
    import cupy

    class CuPyNamespace(Namespace):
        @staticmethod
        def sign(x, /):
            if x.dtype.kind == "f":
                return cupy.where(cupy.isnan(x), x, cupy.sign(x))
            return compat.sign(x)

        @staticmethod
        def clip(x, /, min=None, max=None):
            if x.dtype.kind != "f":
                return compat.clip(x, min, max)
            out = x if min is None else cupy.maximum(x, cupy.asarray(min, dtype=x.dtype)
                                                     if not _is_scalar(min) else min)
            out = out if max is None else cupy.minimum(out, cupy.asarray(max, dtype=x.dtype)
                                                       if not _is_scalar(max) else max)
            return out.astype(x.dtype, copy=out is x)

    ns = CuPyNamespace("cupy", compat)
    honour_device(ns, lambda device: cupy.cuda.Device(_cupy_device_id(device)),
                  lambda x: x.device)
    return ns


def _cupy_device_id(device) -> int:
    return device if isinstance(device, int) else device.id


# --------------------------------------------------------------------------- the backends


class NumPyBackend(Backend):
    """NumPy on the CPU. NumPy >= 2 is called directly (no compat wrappers: they cost a
    measurable share of a small network's step)."""

    name = package = "numpy"
    install_hint = "pip install numpy"
    views = True
    scipy_sparse = True

    def load_namespace(self):
        if int(np.__version__.split(".")[0]) >= 2:
            return _NumPyNamespace("numpy", np)
        import array_api_compat.numpy as xp

        return xp

    def device(self, xp, spec):
        if spec not in (None, "cpu"):
            raise ValueError(f"backend='numpy' runs on the CPU only; got device={spec!r}")
        return "cpu"

    def devices(self):
        return ["cpu"]

    def move(self, x, device):
        return x

    def host_view(self, x):
        x = np.asarray(x)
        return x if x.flags.c_contiguous and x.flags.writeable else None

    def matmul_into(self, a, b, out):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return np.matmul(a, b, out=out)
        return super().matmul_into(a, b, out)  # a scipy.sparse operand has no out=

    def errstate(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")


class StrictBackend(Backend):
    """array_api_strict: the standard and nothing else, with fake devices, so a forgotten
    ``device=`` or a non-standard call fails on the CPU."""

    name = package = "array_api_strict"
    install_hint = "pip install array-api-strict"

    def load_namespace(self):
        return self.import_package()

    def device(self, xp, spec):
        if spec is None:
            return xp.Device("CPU_DEVICE")
        if isinstance(spec, str):
            try:
                return xp.Device(spec)
            except ValueError as exc:
                raise ValueError(f"backend='array_api_strict' has no device {spec!r}: {exc}"
                                 ) from None
        return spec

    def device_name(self, device):
        return getattr(device, "_device", str(device))

    def devices(self):
        xp = self.namespace()
        return [self.device_name(d) for d in xp.__array_namespace_info__().devices()]

    def to_host(self, x):
        return np.asarray(x.to_device(self.namespace().Device("CPU_DEVICE")))

    def errstate(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")


class TorchBackend(Backend):
    """PyTorch tensors on any torch device (CPU, CUDA, MPS, XPU), through array-api-compat.

    Entry points run under ``torch.no_grad()`` and inputs are detached, so a user's tensor
    with ``requires_grad=True`` never turns training into an autograd graph.
    """

    name = package = "torch"
    install_hint = f"pip install '{DISTRIBUTION}[torch]'"
    views = True

    def load_namespace(self):
        self.import_package()
        import array_api_compat.torch as compat

        return _torch_namespace(compat)

    def device(self, xp, spec):
        import torch

        try:
            dev = torch.device("cpu" if spec is None else spec)
        except (RuntimeError, TypeError) as exc:  # "foo", 1.5: torch's own message says why
            raise ValueError(f"backend='torch' cannot use device={spec!r}: {exc}") from None
        if dev.type not in ("cpu", "cuda", "mps", "xpu"):  # meta tensors hold no values
            raise ValueError(f"backend='torch' computes on cpu, cuda, mps or xpu devices; "
                             f"got device={spec!r}")
        if dev.type in ("mps", "xpu") and not getattr(torch.backends, dev.type,
                                                     getattr(torch, dev.type, None)).is_available():
            raise ImportError(f"device={spec!r} needs a torch build with {dev.type} support "
                              "and the device; none is available here")
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise ImportError(
                    f"device={spec!r} needs a CUDA build of torch and a GPU; none is available "
                    "here"
                )
            count = torch.cuda.device_count()
            if dev.index is None:
                dev = torch.device("cuda", torch.cuda.current_device())
            if not 0 <= dev.index < count:
                raise ValueError(f"device={spec!r} does not exist: {count} CUDA device(s) "
                                 "visible")
        return dev

    def devices(self):
        import torch

        return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]

    def to_host(self, x):
        return x.detach().cpu().numpy()

    def host_view(self, x):
        if x.device.type != "cpu" or not x.is_contiguous():
            return None
        return x.detach().numpy()

    def matmul_into(self, a, b, out):
        import torch

        if a.ndim == b.ndim == 2 and a.layout == b.layout == torch.strided:
            return torch.mm(a, b, out=out)
        # a vector's product would be resized into out (deprecated by torch): copied instead
        return super().matmul_into(a, b, out)

    def from_host(self, xp, x, dtype, device):
        # torch cannot view a negative-stride array, and would share (and warn about) a
        # read-only one: copy those on the host first
        if any(s < 0 for s in x.strides) or not x.flags.writeable:
            x = np.array(x, copy=True)
        return xp.asarray(x, dtype=dtype, device=device)

    def move(self, x, device):
        return x if x.device == device else x.to(device)

    scoped = True

    def scope(self, device):
        import torch

        return torch.no_grad()

    def synchronize(self, device):
        if device.type == "cuda":
            import torch

            torch.cuda.synchronize(device)

    def native_uniform(self, ctx, seed):
        return _TorchUniform(ctx, seed)

    def transfer(self, device):
        return StreamTransfer(_TorchStreams(device)) if device.type == "cuda" else Transfer()


class _TorchUniform(NativeUniform):
    def make(self, seed):
        import torch

        gen = torch.Generator(device=self.ctx.device)
        gen.manual_seed(seed)
        return gen

    def __call__(self, shape):
        import torch

        return torch.rand(shape, generator=self.gen, device=self.ctx.device,
                          dtype=self.ctx.dtype)

    def get_state(self):
        return self.gen.get_state().cpu().numpy().tolist()

    def set_state(self, state):
        import torch

        self.gen.set_state(torch.tensor(state, dtype=torch.uint8))

    def export_state(self):
        return np.asarray(self.get_state(), dtype=np.uint8)  # a few thousand bytes

    def import_state(self, saved):
        return np.asarray(saved, dtype=np.uint8).tolist()


class CuPyBackend(Backend):
    """CuPy on a CUDA GPU, through array-api-compat (see :func:`_cupy_namespace` for what is
    replaced). Entry points run with the network's GPU as CuPy's current device."""

    name = package = "cupy"
    install_hint = (f"pip install '{DISTRIBUTION}[cupy]' (or the cupy-cudaXXx wheel matching "
                    "your CUDA)")
    views = True

    def load_namespace(self):
        module = self.import_package()
        try:
            n_gpus = module.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise ImportError(
                f"backend='cupy' is installed but no usable CUDA GPU was found ({exc}); "
                "use backend='numpy' on this machine"
            ) from exc
        if n_gpus == 0:
            raise ImportError("backend='cupy' needs a CUDA GPU and none is visible here")
        import array_api_compat.cupy as compat

        return _cupy_namespace(compat)

    def device(self, xp, spec):
        import cupy

        if spec is None:
            return cupy.cuda.Device(cupy.cuda.runtime.getDevice())
        if isinstance(spec, cupy.cuda.Device):
            spec = spec.id
        if isinstance(spec, str) and spec.isdigit():
            spec = int(spec)
        if isinstance(spec, str):
            head, _, index = spec.partition(":")
            if head != "cuda" or not (index.isdigit() or index == ""):
                raise ValueError(f"backend='cupy' expects device=int or 'cuda:N'; got {spec!r}")
            # "cuda" alone: the current GPU, as torch's "cuda"
            spec = int(index) if index else cupy.cuda.runtime.getDevice()
        if not isinstance(spec, int) or isinstance(spec, bool):
            raise ValueError(f"backend='cupy' expects device=int or 'cuda:N'; got {spec!r}")
        n = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= spec < n:
            raise ValueError(f"device={spec} does not exist: {n} CUDA device(s) visible")
        return cupy.cuda.Device(spec)

    def device_name(self, device):
        return f"cuda:{_cupy_device_id(device)}"

    def devices(self):
        import cupy

        self.namespace()
        return [f"cuda:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]

    def to_host(self, x):
        return x.get()

    def move(self, x, device):
        import cupy

        if x.device == device:
            return x
        with device:
            return cupy.asarray(x)

    scoped = True

    def scope(self, device):
        return device  # a cupy.cuda.Device is its own context manager

    def synchronize(self, device):
        import cupy

        with device:
            cupy.cuda.get_current_stream().synchronize()

    def native_uniform(self, ctx, seed):
        return _CupyUniform(ctx, seed)

    def transfer(self, device):
        return StreamTransfer(_CupyStreams(device))


class _CupyUniform(NativeUniform):
    """CuPy's Philox generator, re-seeded before every draw from a host NumPy stream.

    Re-seeding Philox only sets a key (no state initialisation on the GPU) and passes the seed
    as a kernel argument, so no data crosses to the device; in exchange the generator's whole
    state is the host stream's, which can be saved and restored for an exact resume (CuPy's
    own generator state cannot be read back).
    """

    def make(self, seed):
        import cupy
        from cupy.cuda import curand

        self.host = np.random.default_rng(seed)
        with self.ctx.device:
            return cupy.random.RandomState(seed, method=curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)

    def __call__(self, shape):
        with self.ctx.device:
            self.gen.seed(int(self.host.integers(2**63)))
            return self.gen.random_sample(shape, dtype=self.ctx.dtype)

    def get_state(self):
        return self.host.bit_generator.state

    def set_state(self, state):
        self.host.bit_generator.state = state


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` (a :class:`Backend` instance) usable as ``backend=backend.name``."""
    if not isinstance(backend, Backend) or not backend.name:
        raise TypeError(f"register_backend expects a named nnx.backend.Backend; got {backend!r}")
    _REGISTRY[backend.name] = backend
    return backend


def unregister_backend(name: str) -> None:
    _REGISTRY.pop(name, None)


for _backend in (NumPyBackend(), CuPyBackend(), TorchBackend(), StrictBackend()):
    register_backend(_backend)

BACKENDS = tuple(_REGISTRY)  # the built-in backends, for command-line choices


def backend_names() -> tuple:
    """Every registered backend name (the built-in ones first)."""
    return tuple(_REGISTRY)


def get_backend(name) -> Backend:
    """The registered :class:`Backend` called ``name``."""
    backend = _REGISTRY.get(name) if isinstance(name, str) else None
    if backend is None:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(_REGISTRY)}")
    return backend


# --------------------------------------------------------------------------- the context


@dataclass(frozen=True)
class Context:
    """Where and how a network computes.

    Attributes
    ----------
    backend : Backend
        The descriptor of the array library.
    xp : module
        The array API namespace every computation goes through.
    device : object
        The device arrays are created on.
    dtype : dtype
        Floating dtype of parameters and data (``xp.float32`` by default).
    writeable : bool
        Whether arrays of this backend can be updated in place (``p -= u``).
    views : bool
        Whether a basic slice or reshape of a contiguous array shares its memory, so that
        in-place updates of the array show through it (NumPy, CuPy, torch). The standard
        leaves this to each library; array_api_strict counts as not sharing, so that the code
        path which never relies on it runs in the tests.
    """

    backend: Backend = field(repr=False)
    xp: Any = field(repr=False)
    device: Any
    dtype: Any
    writeable: bool
    views: bool = False

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def device_name(self) -> str:
        """The device as a plain string (``"cpu"``, ``"cuda:1"``): hashable, saveable."""
        return self.backend.device_name(self.device)

    @property
    def dtype_name(self) -> str:
        return "float64" if self.dtype == self.xp.float64 else "float32"

    def asarray(self, x, dtype=None):
        """Move host data (NumPy array, list, scalar) to this context's device and dtype."""
        return self.xp.asarray(x, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def ones(self, shape, dtype=None):
        return self.xp.ones(shape, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def scope(self):
        """Context manager of a public entry point: the device current, no autograd."""
        return self.backend.scope(self.device)

    def errstate(self):
        """Silence floating-point warnings while training: the divergence guard of
        ``fit`` turns a NaN/inf into one clear error instead (NumPy-based backends warn per
        operation; the others never do)."""
        return self.backend.errstate()

    def owns(self, x) -> bool:
        """True when ``x`` is already an array of this context's library."""
        return self.backend.owns(x)

    def synchronize(self) -> None:
        """Wait for this device's queued work (for timing); a no-op on the CPU."""
        self.backend.synchronize(self.device)

    def transfer(self) -> Transfer:
        """A new :class:`Transfer` for a streamed source's copies to this device."""
        return self.backend.transfer(self.device)

    # A Context is immutable: copies of a network share it, and a pickle re-resolves it
    # from plain names (namespaces are modules, devices need not pickle).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return get_context, (self.name, self.device_name, self.dtype_name)


def entry_point(method):
    """Run a method of an object with a ``ctx`` inside ``ctx.scope()`` (see
    :meth:`Backend.scope`): decorates every public entry point of the network."""
    @functools.wraps(method)
    def within_scope(self, *args, **kwargs):
        if not self.ctx.backend.scoped:  # nothing to enter (the CPU backends)
            return method(self, *args, **kwargs)
        with self.ctx.scope():
            return method(self, *args, **kwargs)
    return within_scope


def get_context(backend: str | Context = "numpy", device=None, dtype: str = "float32") -> Context:
    """Resolve a backend name, device and dtype into a :class:`Context`.

    Parameters
    ----------
    backend : {"numpy", "cupy", "torch", "array_api_strict"} or Context
        Or the name of a backend added with :func:`register_backend`.
    device : optional
        ``"cpu"``/``"cuda:0"``/``torch.device`` for torch, an int or ``"cuda:N"`` for CuPy,
        an ``array_api_strict.Device`` (or its name) for array_api_strict.
    dtype : {"float32", "float64"}

    Raises
    ------
    ValueError
        Unknown backend or dtype, or a device the backend cannot use.
    ImportError
        The backend's package is not installed, or it needs a GPU that is not present.
    """
    if isinstance(backend, Context):
        return backend
    descriptor = get_backend(backend)
    dtype_name = str(dtype).rpartition(".")[2]  # "float32", torch.float32, xp.float32
    if dtype_name not in DTYPES:
        try:  # np.float32, np.dtype("float32"), xp.float32 of a namespace
            dtype_name = np.dtype(dtype).name
        except TypeError:
            pass
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    xp = descriptor.namespace()
    dev = descriptor.device(xp, device)
    with descriptor.scope(dev):
        probe = xp.zeros(1, dtype=getattr(xp, dtype_name), device=dev)
    writeable = descriptor.writeable(xp, probe)
    return Context(descriptor, xp, dev, getattr(xp, dtype_name), writeable,
                   views=writeable and descriptor.views)


def available_backends() -> list[str]:
    """Backends usable on this machine, in order of preference (numpy is always there)."""
    names = []
    for name in BACKENDS:
        try:
            get_context(name)
        except (ImportError, ValueError):
            continue
        names.append(name)
    return names


def device_info() -> dict:
    """Devices each installed backend can see (for ``nnx info``); a backend that cannot run
    here maps to the reason."""
    info = {}
    for name in BACKENDS:
        try:
            info[name] = get_backend(name).devices()
        except (ImportError, ValueError) as exc:
            info[name] = f"not available: {str(exc).splitlines()[0]}"
    return info


# --------------------------------------------------------------------------- crossings


def backend_of(x) -> Backend | None:
    """The registered backend whose library ``x`` belongs to (``None`` for host data that is
    not an array of any, such as lists and DataFrames), without importing libraries."""
    package = type(x).__module__.partition(".")[0]
    for backend in _REGISTRY.values():
        if backend.package == package and backend.owns(x):
            return backend
    return None


def namespace_of(*arrays):
    """The namespace nnx computes with for ``arrays`` of one registered backend (its
    sync-free forms included); array-api-compat's ``array_namespace`` for anything else."""
    backends = {backend_of(a) for a in arrays}
    if len(backends) == 1 and None not in backends:
        return backends.pop().namespace()
    from array_api_compat import array_namespace

    return array_namespace(*arrays)


def is_host_array(x) -> bool:
    """True for NumPy arrays, lists, scalars and DataFrames (anything not on a device)."""
    backend = backend_of(x)
    return backend is None or isinstance(backend, NumPyBackend)


def to_numpy(x) -> np.ndarray:
    """Convert an array of any supported backend (or a list / scalar) to a NumPy array.

    Device arrays are copied to the host (this waits for the GPU).
    """
    backend = backend_of(x)
    if backend is not None:
        return backend.to_host(x)
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):  # pandas objects
        return x.to_numpy()
    return np.asarray(x)


def to_device(x, ctx: Context, dtype=None):
    """Move ``x`` into ``ctx``: host data is copied once; an array already there is kept.

    A torch tensor that records gradients is detached: nnx computes its own.
    """
    dtype = ctx.dtype if dtype is None else dtype
    if ctx.owns(x) and not isinstance(ctx.backend, NumPyBackend):
        x = getattr(x, "detach", lambda: x)()
        return ctx.xp.asarray(ctx.backend.move(x, ctx.device), dtype=dtype, device=ctx.device)
    staging = getattr(_staging, "transfer", None)  # a streamed group's copy (CUDA)
    if staging is not None:
        return staging.from_host(np.asarray(to_numpy(x)), dtype)
    return ctx.backend.from_host(ctx.xp, np.asarray(to_numpy(x)), dtype, ctx.device)


def sparse_to_device(x, ctx: Context):
    """A ``scipy.sparse`` matrix (a batch of rows) ready for ``x @ W`` in ``ctx``: kept sparse
    (CSR or CSC, in the context's dtype) where the backend multiplies scipy matrices, else
    made dense on the device, so only this batch is ever densified."""
    if ctx.backend.scipy_sparse:
        return x.astype(np.dtype(ctx.dtype_name), copy=False)
    return to_device(x.toarray(), ctx)


def to_namespace_of(reference, x, ctx: Context):
    """Return ``x`` (a ``ctx`` array) where the user's input ``reference`` came from.

    NumPy (or list, DataFrame) in gives NumPy out, even when the network runs on a GPU; an
    array of the network's library comes back in that library, on the input's device (a CPU
    tensor given to a CUDA network gets a CPU tensor back).
    """
    if ctx.owns(reference) and not is_host_array(reference):
        return ctx.backend.move(x, ctx.backend.device_of(reference))
    return to_numpy(x)


def common_namespace(*arrays):
    """``(xp, arrays)`` with every non-None input in one array API namespace.

    Arrays that already share a device namespace (all torch, all CuPy, ...) stay where they
    are; anything else (NumPy, lists, pandas, a mix of backends) becomes host NumPy, computed
    with NumPy itself rather than the compat wrapper.
    """
    from array_api_compat import array_namespace, is_numpy_namespace

    present = [a for a in arrays if a is not None]
    try:
        xp = array_namespace(*present)
    except TypeError:  # lists, pandas, mixed backends
        xp = np
    if xp is np or is_numpy_namespace(xp):
        return np, tuple(None if a is None else np.asarray(to_numpy(a)) for a in arrays)
    backend = backend_of(present[0])
    return (xp if backend is None else backend.namespace()), arrays
