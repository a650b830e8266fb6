"""Backends: the only module that knows backend names.

A :class:`Context` bundles everything the math needs to run on one backend: the array API
namespace ``xp``, the device, the float dtype and whether arrays may be updated in place. It is
resolved once per network; every other module computes with ``ctx.xp`` and array operators.

This module also owns the two boundary crossings, host data in (:func:`to_device`) and results
out (:func:`to_numpy`, :func:`to_namespace_of`), because CuPy and torch refuse implicit
conversions.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "cupy", "torch", "array_api_strict")
DTYPES = ("float32", "float64")

_INSTALL_HINT = {
    "cupy": "pip install 'nnx[cupy]' (or the cupy-cudaXXx wheel matching your CUDA)",
    "torch": "pip install 'nnx[torch]'",
    "array_api_strict": "pip install array-api-strict",
    "numpy": "pip install numpy",
}


@dataclass(frozen=True)
class Context:
    """Where and how a network computes.

    Attributes
    ----------
    name : str
        Backend name, one of ``BACKENDS``.
    xp : module
        The array API namespace every computation goes through.
    device : object
        The device arrays are created on (``None`` for the namespace default).
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

    name: str
    xp: Any = field(repr=False)
    device: Any
    dtype: Any
    writeable: bool
    views: bool = False

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

    def errstate(self):
        """Silence floating-point warnings while training: the divergence guard of
        ``fit`` turns a NaN/inf into one clear error instead (NumPy-based backends warn per
        operation; the others never do)."""
        if self.name in ("numpy", "array_api_strict"):
            return np.errstate(over="ignore", invalid="ignore", divide="ignore")
        return contextlib.nullcontext()

    def owns(self, x) -> bool:
        """True when ``x`` is already an array of this context's namespace."""
        return _namespace_name(x) == self.name


def _import_backend(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"backend={name!r} needs the {name!r} package, which is not installed here: "
            f"{_INSTALL_HINT[name]}"
        ) from exc


class _NumPyNamespace(types.ModuleType):
    """NumPy (>= 2, which implements the standard itself) with five hot functions bound
    straight to C.

    ``np.sum``/``np.max``/``np.min`` are Python wrappers around the ufunc reductions and
    ``np.reshape``/``np.take`` around the array methods; on a small network's batch the
    wrappers cost as much as the arithmetic (``np.max(z, axis=1, keepdims=True)`` on a 32 x 10
    batch: 4.4 us, the reduction itself: 2.6 us). The replacements take the standard's
    signatures and return exactly what NumPy's functions return (the wrappers forward to
    these same calls for ndarrays); every other name is NumPy's own.
    """

    def __getattr__(self, name):
        return getattr(np, name)

    def __reduce__(self):
        # copies and pickles of a Context refer to the one namespace, like a module would
        return _numpy_namespace, ()

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


_NUMPY = _NumPyNamespace("nnx.backend.numpy", "NumPy as nnx computes with it")


def _numpy_namespace():
    return _NUMPY


# NumPy's loaded names as attributes of their own: a module-level __getattr__ runs in Python
# on every lookup, only names NumPy itself loads lazily go through it
for _name, _value in vars(np).items():
    if not _name.startswith("__") and _name not in vars(_NumPyNamespace):
        setattr(_NUMPY, _name, _value)


def _resolve_namespace(name: str):
    """Return the array API namespace for a backend name (imported lazily)."""
    if name == "numpy":
        # NumPy >= 2 implements the standard itself; calling it directly skips the compat
        # wrappers, which cost a measurable share of a small network's step.
        if int(np.__version__.split(".")[0]) >= 2:
            return _NUMPY
        import array_api_compat.numpy as xp

        return xp
    if name == "array_api_strict":
        xp = _import_backend("array_api_strict")
        return xp
    module = _import_backend(name)
    if name == "cupy":
        try:
            n_gpus = module.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise ImportError(
                f"backend='cupy' is installed but no usable CUDA GPU was found ({exc}); "
                "use backend='numpy' on this machine"
            ) from exc
        if n_gpus == 0:
            raise ImportError("backend='cupy' needs a CUDA GPU and none is visible here")
        import array_api_compat.cupy as xp

        return xp
    import array_api_compat.torch as xp

    return xp


def _resolve_device(name: str, xp, device):
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"backend='numpy' runs on the CPU only; got device={device!r}")
        return "cpu"
    if name == "torch":
        import torch

        try:
            dev = torch.device("cpu" if device is None else device)
        except (RuntimeError, TypeError) as exc:  # "foo", 1.5: torch's own message says why
            raise ValueError(f"backend='torch' cannot use device={device!r}: {exc}") from None
        if dev.type not in ("cpu", "cuda", "mps", "xpu"):  # meta tensors hold no values
            raise ValueError(f"backend='torch' computes on cpu, cuda, mps or xpu devices; "
                             f"got device={device!r}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ImportError(
                f"device={device!r} needs a CUDA build of torch and a GPU; none is available here"
            )
        return dev
    if name == "cupy":
        import cupy

        if device is None:
            return cupy.cuda.Device(cupy.cuda.runtime.getDevice())
        if isinstance(device, str):
            if not device.startswith("cuda"):
                raise ValueError(f"backend='cupy' expects device=int or 'cuda:N'; got {device!r}")
            device = int(device.split(":")[1]) if ":" in device else 0
        if isinstance(device, int):
            n = cupy.cuda.runtime.getDeviceCount()
            if not 0 <= device < n:
                raise ValueError(f"device={device} does not exist: {n} CUDA device(s) visible")
            return cupy.cuda.Device(device)
        return device
    # array_api_strict: accept a Device object or its name
    if device is None:
        return xp.Device("CPU_DEVICE")
    if isinstance(device, str):
        return xp.Device(device)
    return device


def get_context(backend: str | Context = "numpy", device=None, dtype: str = "float32") -> Context:
    """Resolve a backend name, device and dtype into a :class:`Context`.

    Parameters
    ----------
    backend : {"numpy", "cupy", "torch", "array_api_strict"} or Context
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
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    dtype_name = getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype
    dtype_name = str(dtype_name).replace("torch.", "")
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    xp = _resolve_namespace(backend)
    dev = _resolve_device(backend, xp, device)
    probe = xp.zeros(1, dtype=getattr(xp, dtype_name), device=dev)
    from array_api_compat import is_writeable_array

    writeable = bool(is_writeable_array(probe))
    return Context(backend, xp, dev, getattr(xp, dtype_name), writeable,
                   views=writeable and backend in ("numpy", "cupy", "torch"))


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


# --------------------------------------------------------------------------- crossings


def _namespace_name(x) -> str | None:
    """Which backend an array belongs to, without importing backends that are not loaded."""
    module = type(x).__module__.split(".")[0]
    if module == "numpy":
        return "numpy"
    if module in ("cupy", "torch", "array_api_strict"):
        return module
    return None


def is_host_array(x) -> bool:
    """True for NumPy arrays, lists, scalars and DataFrames (anything not on a device)."""
    return _namespace_name(x) in (None, "numpy")


def to_numpy(x) -> np.ndarray:
    """Convert an array of any supported backend (or a list / scalar) to a NumPy array.

    Device arrays are copied to the host (this waits for the GPU).
    """
    kind = _namespace_name(x)
    if kind == "cupy":
        return x.get()
    if kind == "torch":
        return x.detach().cpu().numpy()
    if kind == "array_api_strict":
        import array_api_strict as xps

        return np.asarray(x.to_device(xps.Device("CPU_DEVICE")))
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):  # pandas objects
        return x.to_numpy()
    return np.asarray(x)


def to_device(x, ctx: Context, dtype=None):
    """Move ``x`` into ``ctx``: host data is copied once; an array already there is kept."""
    if ctx.owns(x):
        return ctx.xp.asarray(x, dtype=ctx.dtype if dtype is None else dtype, device=ctx.device)
    return ctx.asarray(to_numpy(x), dtype=dtype)


def to_namespace_of(reference, x, ctx: Context):
    """Return ``x`` (a ``ctx`` array) in the namespace of the user's input ``reference``.

    NumPy (or list, DataFrame) in gives NumPy out, even when the network runs on a GPU; an
    input that is already of the network's backend gets the device array back, uncopied.
    """
    if ctx.owns(reference):
        return x
    return to_numpy(x)


def synchronize(ctx: Context) -> None:
    """Wait for queued device work (for timing); a no-op on CPU backends."""
    if ctx.name == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    elif ctx.name == "torch" and ctx.device.type == "cuda":
        import torch

        torch.cuda.synchronize(ctx.device)


def device_info() -> dict:
    """Devices each installed backend can see (for ``nnx info``)."""
    info = {"numpy": ["cpu"]}
    try:
        import torch

        info["torch"] = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    try:
        get_context("cupy")
        import cupy

        info["cupy"] = [f"cuda:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]
    except (ImportError, ValueError):
        pass
    try:
        import array_api_strict as xps

        info["array_api_strict"] = [str(d) for d in xps.__array_namespace_info__().devices()]
    except ImportError:
        pass
    return info


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
    return xp, arrays
