"""The machine and libraries of a run, and the OpenBLAS re-execution.

A machine may set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, which can pick a slower
kernel for NumPy. :func:`reexec_without_openblas_overrides` restarts the command once with
both unset (for its own process only) before NumPy is imported; :func:`environment` records
what was set and which kernel ran. This module imports no NumPy.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "NNX_BENCH_UNSET_OPENBLAS"


def reexec_without_openblas_overrides() -> None:
    """Restart this process without the OpenBLAS overrides (OpenBLAS reads them at load time)."""
    if "--keep-openblas-env" in sys.argv or REEXEC_MARK in os.environ:
        return
    found = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    env[REEXEC_MARK] = json.dumps(found)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def environment(threads, root) -> dict:
    """What the JSON records of the machine: CPU, load, BLAS pools and kernel, versions, GPU.
    ``root`` is the checkout, for the command line relative to it."""
    import threadpoolctl

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], root)] + sys.argv[1:]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_start": os.getloadavg(),
        "openblas_env_unset": json.loads(os.environ.get(REEXEC_MARK, "null")),
        "openblas_env_now": {k: os.environ.get(k) for k in OPENBLAS_OVERRIDES},
        "threads_cap": threads,
        "versions": {},
    }
    for mod in ("numpy", "torch", "sklearn", "array_api_compat", "array_api_strict", "cupy",
                "threadpoolctl", "nnx"):
        try:
            info["versions"][mod] = __import__(mod).__version__
        except Exception:  # not installed (or no GPU for cupy)
            info["versions"][mod] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_parallel"] = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()
                                  if "MKL" in ln or "OpenMP" in ln or "backend" in ln]
        if torch.cuda.is_available():
            info["gpu"] = {"name": torch.cuda.get_device_name(0),
                           "cuda_runtime": torch.version.cuda}
    except ImportError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0:
            info.setdefault("gpu", {})["nvidia_smi"] = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    pools = threadpoolctl.threadpool_info()
    info["threadpools"] = [
        {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                               "architecture", "threading_layer", "prefix")}
        for p in pools
    ]
    # NumPy's own OpenBLAS (SciPy's may be loaded too, and the pools come in no fixed order)
    blas = [p for p in pools if p["internal_api"] == "openblas"]
    blas = [p for p in blas if "numpy" in (p.get("filepath") or "")] or blas
    info["numpy_blas_kernel"] = blas[0]["architecture"] if blas else None
    return info


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def file_tag(backend, device, env) -> str:
    """The output files' stem: ``cpu-numpy``, ``cuda-<card>-<backend>``."""
    gpu = env.get("gpu")
    where = "cuda-" + gpu.get("name", "gpu") if device.startswith("cuda") and gpu else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", f"{where}-{backend}".lower()).strip("-")
