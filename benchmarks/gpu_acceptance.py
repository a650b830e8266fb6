#!/usr/bin/env python
"""GPU acceptance in one command: nnx's GPU path works, never waits for the GPU per step, and
how fast it is against torch eager on the same card.

Run from the repository root, on any machine::

    python benchmarks/gpu_acceptance.py            # writes benchmarks/results/gpu-acceptance.*
    python benchmarks/gpu_acceptance.py --quick    # fewer repeats (a smoke run)

Parts, each reported as ``passed``, ``failed`` or ``skipped`` with the reason:

``sync_audit``
    ``tests/test_sync_audit.py`` on torch's CPU: no configuration dispatches a host-blocking
    operator per training step. Runs everywhere.
``gpu_tests``
    The ``gpu``-marked tests (every backend-parametrized test on ``cupy`` and ``torch-cuda``).
``sync_debug``
    ``Network.fit`` on torch-CUDA under ``torch.cuda.set_sync_debug_mode("warn")``, with 2 and
    with 20 steps per epoch: CUDA itself counts the synchronising calls; the two counts must
    be equal (per-epoch and per-call syncs only). The calls' source lines are listed.
``host_runs_ahead``
    On CuPy and torch-CUDA: a kernel that keeps the GPU busy for about a second is queued,
    then 20 training steps (``Network.step`` on device data); the host must queue them in
    well under that second, or some step waited for the GPU. The only sync check CuPy has.
``benchmarks``
    ``train_throughput.py`` on the medium and xlarge configurations, nnx on CuPy and on
    torch-CUDA against torch eager on the same GPU (every block synchronised before its
    clock stops); ratios paired within the run.
``per_call``
    What ``fit`` costs per call apart from per step, on device-resident data: ``fit`` timed
    for two epoch counts, ``t(E) = per_call + E * per_epoch``, solved for both; and one
    ``predict`` of a batch (which reads the output's finiteness back).
``streaming``
    On CuPy and torch-CUDA: an epoch of ``fit`` fed from a ``.npy`` memmap with prefetch on
    (the next group read on a host thread and copied from pinned buffers on a copy stream
    while the current one trains) and off (``prefetch=0``), against the in-memory fit;
    medians and ratios to the in-memory fit.

On a machine without a CUDA GPU the GPU parts are skipped with the reason and the script
still runs end to end. The exit status is 1 when a part failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import nnx
from nnx.backend import to_device

ROOT = Path(__file__).resolve().parents[1]

GPU_BACKENDS = (("cupy", "cuda:0"), ("torch", "cuda:0"))


def gpu_backends() -> dict:
    """``{backend: device or reason it cannot run}`` for the GPU backends."""
    found = {}
    for name, device in GPU_BACKENDS:
        try:
            nnx.get_context(name, device)
            found[name] = device
        except (ImportError, ValueError) as exc:
            found[name] = None
            found[f"{name}_reason"] = str(exc).splitlines()[0]
    return found


def _pytest(args, timeout):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, (lines[-1] if lines else proc.stderr.strip()[-500:])


def part_sync_audit(args, gpus):
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "torch is not installed"}
    code, last = _pytest(["tests/test_sync_audit.py"], timeout=600)
    return {"status": "passed" if code == 0 else "failed", "pytest": last}


def part_gpu_tests(args, gpus):
    if not (gpus["cupy"] or gpus["torch"]):
        return {"status": "skipped", "reason": _no_gpu(gpus)}
    code, last = _pytest(["-m", "gpu", "tests"], timeout=args.timeout)
    return {"status": "passed" if code == 0 else "failed", "pytest": last}


def _busy_network(backend, device):
    from nnx.layers import BatchNorm, Dense, Dropout

    layers = [Dense(64, activation="relu"), BatchNorm(), Dropout(0.1),
              Dense(64, activation="gelu"), Dense(3)]
    return nnx.Network(layers, input_dim=16, optimizer=nnx.optimizers.Adam(1e-3, clip_norm=1.0),
                       l2=1e-4, backend=backend, device=device, seed=0)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16)).astype(np.float32)
    return X, np.argmax(X[:, :3], axis=1)


def count_cuda_syncs(device, steps, batch=32, epochs=2):
    """Synchronising CUDA calls of one ``fit`` (torch's sync debug mode), by source line."""
    import torch

    X, y = _data(steps * batch)
    net = _busy_network("torch", device)
    net.fit(X, y, epochs=1, batch_size=batch)  # warm: one-time work (kernels, caches) first
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net.fit(X, y, epochs=epochs, batch_size=batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    places = {}
    for w in caught:
        if "synchroniz" in str(w.message):
            where = f"{Path(w.filename).name}:{w.lineno}"
            places[where] = places.get(where, 0) + 1
    return places


def part_sync_debug(args, gpus):
    if not gpus["torch"]:
        return {"status": "skipped", "reason": gpus.get("torch_reason", "no CUDA GPU")}
    few = count_cuda_syncs(gpus["torch"], 2)
    many = count_cuda_syncs(gpus["torch"], 20)
    ok = sum(few.values()) == sum(many.values())
    return {"status": "passed" if ok else "failed", "syncs_2_steps": few, "syncs_20_steps": many}


def _spin(backend, cycles):
    """Queue one GPU kernel that busy-waits ``cycles`` clock ticks (returns at once)."""
    if backend == "torch":
        import torch

        torch.cuda._sleep(int(cycles))
        return
    import cupy

    kernel = cupy.RawKernel(r"""
extern "C" __global__ void nnx_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}""", "nnx_spin")
    kernel((1,), (1,), (np.int64(cycles),))


def host_runs_ahead(backend, device, steps=20, batch=32, cycles=1e9):
    """Seconds the host spends queueing ``steps`` training steps behind a busy GPU, and the
    busy wait's own length: a step that waits for the GPU anywhere makes the first at least
    as long as the second. Works for CuPy, which has no sync debug mode."""
    X, y = _data(steps * batch)
    net = _busy_network(backend, device)
    ctx = net.ctx
    net.fit(X, y, epochs=1, batch_size=batch)  # build and warm
    with ctx.scope():
        Xd, Yd = net.prepare(X, y)
        batches = [(Xd[i:i + batch, ...], Yd[i:i + batch, ...]) for i in range(0, len(X), batch)]
        ctx.synchronize()
        t0 = time.perf_counter()
        _spin(backend, cycles)
        ctx.synchronize()
        spin_s = time.perf_counter() - t0
        _spin(backend, cycles)
        t0 = time.perf_counter()
        for xb, yb in batches:
            net.step(xb, yb)
        host_s = time.perf_counter() - t0
        ctx.synchronize()
        total_s = time.perf_counter() - t0
    return {"spin_s": spin_s, "host_s_for_steps": host_s, "total_s": total_s,
            "steps": len(batches)}


def part_host_runs_ahead(args, gpus):
    if not (gpus["cupy"] or gpus["torch"]):
        return {"status": "skipped", "reason": _no_gpu(gpus)}
    out = {"status": "passed"}
    for name in ("cupy", "torch"):
        if not gpus[name]:
            out[name] = {"skipped": gpus[f"{name}_reason"]}
            continue
        result = host_runs_ahead(name, gpus[name])
        result["ahead"] = result["host_s_for_steps"] < 0.5 * result["spin_s"]
        out[name] = result
        if not result["ahead"]:
            out["status"] = "failed"
    return out


def part_benchmarks(args, gpus):
    if not (gpus["cupy"] or gpus["torch"]):
        return {"status": "skipped", "reason": _no_gpu(gpus)}
    out = {"status": "passed", "runs": {}}
    for name in ("cupy", "torch"):
        if not gpus[name]:
            out["runs"][name] = {"status": "skipped", "reason": gpus[f"{name}_reason"]}
            continue
        tag = f"gpu-acceptance-{name}"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--backend",
               name, "--device", gpus[name], "--configs", "medium,xlarge", "--parts",
               "throughput", "--repeats", "3" if args.quick else "5", "--out", str(args.out),
               "--tag", tag]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=args.timeout)
        if proc.returncode != 0:
            out["status"] = "failed"
            out["runs"][name] = {"status": "failed", "output": proc.stdout[-2000:]
                                 + proc.stderr[-2000:]}
            continue
        results = json.loads((Path(args.out) / f"{tag}.json").read_text())
        out["runs"][name] = {"status": "passed", "results": f"{tag}.json",
                             "configs": _ratios(results)}
    return out


def _ratios(results):
    """Median ratios and nnx samples/s per configuration from a train_throughput result."""
    table = {}
    for config, entry in results["throughput"]["configs"].items():
        if "ratios" not in entry:
            table[config] = entry
            continue
        row = {key: round(value["median"], 3) for key, value in entry["ratios"].items()
               if value is not None and ("/torch" in key or "/gemm" in key)}
        row.update({f"{key} samples/s": round(value)
                    for key, value in entry["samples_per_s"].items() if "nnx" in key})
        if "launches_per_step" in entry:
            row["launches_per_step"] = entry["launches_per_step"]
        table[config] = row
    return table


def _seconds(run, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def per_call_costs(backend, device, repeats, epochs=(1, 5), n=4096, batch=256):
    """``fit``'s fixed cost per call and its cost per epoch (device-resident data), and the
    latency of ``predict`` on one batch, in seconds."""
    X, y = _data(n)
    net = _busy_network(backend, device)
    ctx = net.ctx
    net.fit(X[:batch], y[:batch], epochs=1, batch_size=batch)  # build, warm up, classes
    Xd, yd = to_device(X, ctx), to_device(y, ctx, dtype=ctx.xp.int64)

    def fit(e):
        def run():
            net.fit(Xd, yd, epochs=e, batch_size=batch)
            ctx.synchronize()
        return run

    short, long_ = (_seconds(fit(e), repeats) for e in epochs)
    per_epoch = (long_ - short) / (epochs[1] - epochs[0])
    one = Xd[:batch, ...]

    def predict():
        net.predict(one)
        ctx.synchronize()

    return {"fit_per_call_s": short - epochs[0] * per_epoch, "fit_per_epoch_s": per_epoch,
            "fit_per_step_s": per_epoch / (n // batch), "predict_batch_s": _seconds(predict, repeats),
            "steps_per_epoch": n // batch}


def part_per_call(args, gpus):
    repeats = 3 if args.quick else 7
    out = {"status": "passed", "cpu_reference": per_call_costs("numpy", None, repeats)}
    if not (gpus["cupy"] or gpus["torch"]):
        out.update(status="skipped", reason=_no_gpu(gpus))
        return out
    for name in ("cupy", "torch"):
        out[name] = (per_call_costs(name, gpus[name], repeats) if gpus[name]
                     else {"skipped": gpus[f"{name}_reason"]})
    return out


def streaming_epochs(backend, device, repeats, n=2**18, batch=256):
    """Seconds per epoch of ``fit`` from arrays in memory and from a memmap with prefetch
    on and off (interleaved), and each memmap side's ratio to memory."""
    import tempfile

    X, y = _data(n)
    net = _busy_network(backend, device)
    net.fit(X[:batch], y[:batch], epochs=1, batch_size=batch)  # build, warm up, classes
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "X.npy", X)
        np.save(Path(folder) / "y.npy", y)
        Xm = np.load(Path(folder) / "X.npy", mmap_mode="r")
        ym = np.load(Path(folder) / "y.npy", mmap_mode="r")
        sides = {"memory": dict(X=X, y=y), "memmap_prefetch": dict(X=Xm, y=ym, prefetch=2),
                 "memmap_noprefetch": dict(X=Xm, y=ym, prefetch=0)}
        times = {side: [] for side in sides}
        for _ in range(repeats):
            for side, kwargs in sides.items():
                def run():
                    net.fit(epochs=1, batch_size=batch, **kwargs)
                    net.ctx.synchronize()
                times[side].append(_seconds(run, 1))
    out = {f"{side}_epoch_s": float(np.median(t)) for side, t in times.items()}
    for side in ("memmap_prefetch", "memmap_noprefetch"):
        out[f"{side}_ratio"] = float(np.median(np.array(times[side]) / times["memory"]))
    out["steps_per_epoch"] = -(-n // batch)
    return out


def part_streaming(args, gpus):
    if not (gpus["cupy"] or gpus["torch"]):
        return {"status": "skipped", "reason": _no_gpu(gpus)}
    repeats = 1 if args.quick else 3
    out = {"status": "passed"}
    for name in ("cupy", "torch"):
        out[name] = (streaming_epochs(name, gpus[name], repeats) if gpus[name]
                     else {"skipped": gpus[f"{name}_reason"]})
    return out


def _no_gpu(gpus):
    return ("no CUDA GPU: " + "; ".join(f"{name}: {gpus[f'{name}_reason']}"
                                         for name, _ in GPU_BACKENDS if not gpus[name]))


PARTS = {"sync_audit": part_sync_audit, "gpu_tests": part_gpu_tests,
         "sync_debug": part_sync_debug, "host_runs_ahead": part_host_runs_ahead,
         "benchmarks": part_benchmarks, "per_call": part_per_call,
         "streaming": part_streaming}


def environment():
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "nnx": nnx.__version__, "machine": platform.machine()}
    for module in ("torch", "cupy", "array_api_compat"):
        try:
            env[module] = __import__(module).__version__
        except ImportError:
            env[module] = None
    try:
        import torch

        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
    except ImportError:
        pass
    return env


def markdown(report):
    env = report["environment"]
    lines = [f"# GPU acceptance ({env.get('gpu', 'no CUDA GPU')})", "",
             "Written by `python benchmarks/gpu_acceptance.py`. Environment: "
             + ", ".join(f"{k} {v}" for k, v in env.items() if v), "",
             "| part | status | detail |", "|---|---|---|"]
    for name, part in report["parts"].items():
        detail = {k: v for k, v in part.items() if k != "status"}
        lines.append(f"| {name} | {part['status']} | `{json.dumps(detail, default=str)[:600]}` |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    p.add_argument("--parts", default=",".join(PARTS), help="comma list of " + ",".join(PARTS))
    p.add_argument("--timeout", type=float, default=420,
                   help="seconds allowed for each subprocess (tests, each benchmark)")
    args = p.parse_args(argv)
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    gpus = gpu_backends()
    report = {"environment": environment(), "gpu_backends": gpus, "parts": {}}
    for name in args.parts.split(","):
        started = time.perf_counter()
        try:
            result = PARTS[name](args, gpus)
        except Exception as exc:  # a part that crashes is a failed part, the others still run
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["parts"][name] = result
        print(f"{name}: {result['status']}" + (f" ({result['reason']})" if "reason" in result
                                               else ""), flush=True)
    (args.out / "gpu-acceptance.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "gpu-acceptance.md").write_text(markdown(report))
    print(f"wrote {args.out / 'gpu-acceptance.json'} and .md")
    return 1 if any(part["status"] == "failed" for part in report["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
