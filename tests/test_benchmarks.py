"""The benchmark scripts run end to end (tiny settings): a harness that only runs by hand rots.

Timings are never asserted; these check that every side runs, on every CPU backend the GPU
path shares code with (torch, array_api_strict's fake device), and that the outputs hold what
the README's tables are made from.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args, timeout=240):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("backend,device", [
    ("numpy", None),
    pytest.param("torch", "cpu", marks=pytest.mark.skipif(
        importlib.util.find_spec("torch") is None, reason="torch is not installed")),
    pytest.param("array_api_strict", "device1", marks=pytest.mark.skipif(
        importlib.util.find_spec("array_api_strict") is None,
        reason="array_api_strict is not installed")),
])
def test_train_throughput_runs_every_side(backend, device, tmp_path):
    args = ["--backend", backend, "--parts", "throughput", "--configs", "tiny", "--repeats",
            "1", "--block-seconds", "0.002", "--warmup-seconds", "0", "--out", str(tmp_path),
            "--tag", "t", "--keep-openblas-env"]
    if device:
        args += ["--device", device]
    if backend != "numpy":
        args.append("--no-sklearn")
    _run("train_throughput.py", *args)
    results = json.loads((tmp_path / "t.json").read_text())
    entry = results["throughput"]["configs"]["tiny"]
    sides = {key.split(":")[1] for key in entry["step_s"] if ":" in key}
    expected = {"nnx.step", "nnx.fit", "hand", "hand.fit", "torch", "torch.fit"}
    if backend == "numpy":
        expected |= {"sk32", "sk64"}
    assert expected <= sides
    assert "adam:nnx.fit/torch.fit" in entry["ratios"]
    table = (tmp_path / "t.md").read_text()
    assert "| tiny | adam |" in table
    if backend == "numpy":
        assert "## Targets (issue 7)" in table


def test_foreach_threshold_quick_sweep():
    out = _run("foreach_threshold.py", "--quick", "--repeats", "1", "--block-seconds", "0.002")
    rows = [line for line in out.splitlines() if line.startswith("| 64-64-32-10 ")]
    assert len(rows) == 2  # adam and momentum, packed / per-parameter ratio printed
    assert all(line.count("|") == 8 for line in rows)


def test_fit_overhead_runs_every_variant():
    out = _run("fit_overhead.py", "--repeats", "1", "--epochs", "2")
    for variant in ("| fit |", "| without the restore point |", "| without the finiteness check |",
                    "| without the shuffle |"):
        assert variant in out


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_acceptance_runs_end_to_end_and_skips_what_needs_a_gpu(tmp_path):
    gpus = _load_benchmark("gpu_acceptance").gpu_backends()
    if gpus["cupy"] or gpus["torch"]:
        pytest.skip("a CUDA GPU is present: the full acceptance run is the GPU check itself")
    _run("gpu_acceptance.py", "--quick", "--out", str(tmp_path))
    report = json.loads((tmp_path / "gpu-acceptance.json").read_text())
    parts = report["parts"]
    expected_audit = "passed" if importlib.util.find_spec("torch") else "skipped"
    assert parts["sync_audit"]["status"] == expected_audit
    for name in ("gpu_tests", "sync_debug", "benchmarks", "per_call"):
        assert parts[name]["status"] == "skipped" and "GPU" in parts[name]["reason"], name
    assert parts["per_call"]["cpu_reference"]["fit_per_epoch_s"] > 0
    assert "| sync_audit |" in (tmp_path / "gpu-acceptance.md").read_text()


def test_gpu_acceptance_pieces_on_cpu_devices(tmp_path, torch):
    """What the GPU run executes, on torch's CPU: the per-call split and the ratio table."""
    module = _load_benchmark("gpu_acceptance")
    costs = module.per_call_costs("torch", "cpu", repeats=1, n=512, batch=128)
    assert costs["steps_per_epoch"] == 4 and costs["predict_batch_s"] > 0
    _run("train_throughput.py", "--backend", "torch", "--device", "cpu", "--parts",
         "throughput", "--configs", "tiny", "--repeats", "1", "--block-seconds", "0.002",
         "--warmup-seconds", "0", "--out", str(tmp_path), "--tag", "t", "--keep-openblas-env",
         "--no-sklearn", "--no-count-launches")
    table = module._ratios(json.loads((tmp_path / "t.json").read_text()))
    assert "sgd:nnx.step/torch" in table["tiny"]
    assert "adam:nnx.fit samples/s" in table["tiny"]
