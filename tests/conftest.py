"""Shared fixtures: every behavioural test runs on every backend available here.

- ``numpy``;
- ``array_api_strict`` with data on the fake ``Device("device1")`` and API version 2024.12
  pinned, so a forgotten ``device=`` or a non-standard call fails on the CPU; the device
  object cannot be hashed outside array_api_strict, as CuPy's cannot;
- ``torch`` on the CPU when installed;
- ``cupy`` and ``torch-cuda`` when a CUDA GPU is present (marked ``gpu``, skipped otherwise).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nnx

if importlib.util.find_spec("torch") is not None:
    import torch as _torch

    # The tests run small tensors: torch's thread pool on a 2-core machine shared with
    # OpenBLAS costs far more than it saves (a 40 ms stall for a 5 us matmul was measured).
    _torch.set_num_threads(1)


def _strict_device():
    # a device that nnx may compare but never hash, as CuPy's (see cupy_like.py)
    from cupy_like import UnhashableDevice

    return UnhashableDevice("device1")


def _has_cuda_torch():
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _has_cupy_gpu():
    try:
        nnx.get_context("cupy")
    except (ImportError, ValueError):
        return False
    return True


class Backend:
    """What a test needs to build a network on one backend."""

    def __init__(self, name, device=None):
        self.name = name
        self.device = device

    @property
    def kwargs(self):
        return {"backend": self.name, "device": self.device}

    def context(self, dtype="float32"):
        return nnx.get_context(self.name, self.device, dtype)

    def asarray(self, x, dtype="float64"):
        """Host data as an array of this backend (for standalone function tests)."""
        ctx = self.context(dtype)
        return ctx.asarray(np.asarray(x), dtype=getattr(ctx.xp, dtype))

    def __repr__(self):
        return self.name if self.device is None else f"{self.name}:{self.device}"


def _backend_params():
    params = [pytest.param(("numpy", None), id="numpy")]
    # shown as skipped (never silently dropped) where the test extra is not installed
    for name, device in (("array_api_strict", "device1"), ("torch", "cpu")):
        missing = importlib.util.find_spec(name) is None
        params.append(pytest.param((name, device), id=name, marks=pytest.mark.skipif(
            missing, reason=f"{name} is not installed (pip install -e '.[test]')")))
    params.append(
        pytest.param(("cupy", None), id="cupy",
                     marks=[pytest.mark.gpu,
                            pytest.mark.skipif(not _has_cupy_gpu(), reason="no CUDA GPU for CuPy")])
    )
    params.append(
        pytest.param(("torch", "cuda"), id="torch-cuda",
                     marks=[pytest.mark.gpu,
                            pytest.mark.skipif(not _has_cuda_torch(), reason="no CUDA GPU for torch")])
    )
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    name, device = request.param
    if name == "array_api_strict":
        device = _strict_device()
    return Backend(name, device)


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")
