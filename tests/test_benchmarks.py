"""The benchmark scripts run end to end (tiny settings): a harness that only runs by hand rots.

Timings are never asserted; these check that every side runs, on every CPU backend the GPU
path shares code with (torch, array_api_strict's fake device), and that the outputs hold what
the README's tables are made from.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
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
        assert "\n## Targets\n" in table
        assert "| tiny | sgd | nnx.fit / hand.fit <= 1.15 |" in table


def test_foreach_threshold_quick_sweep():
    out = _run("foreach_threshold.py", "--quick", "--repeats", "1", "--block-seconds", "0.002")
    rows = [line for line in out.splitlines() if line.startswith("| 64-64-32-10 ")]
    assert len(rows) == 2  # adam and momentum, packed / per-parameter ratio printed
    assert all(line.count("|") == 8 for line in rows)


def test_fit_overhead_runs_every_variant():
    out = _run("fit_overhead.py", "--repeats", "1", "--epochs", "2")
    rows = [line for line in out.splitlines() if line.startswith("| ") and " us |" in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| fit", "| without the divergence guard", "| without the shuffle"]
    for row in rows:
        per_step = float(row.split(" | ")[1].split()[0])
        assert per_step > 0, row


@pytest.mark.parametrize("side", [
    "nnx", "hand",
    pytest.param("torch", marks=pytest.mark.skipif(
        importlib.util.find_spec("torch") is None, reason="torch is not installed")),
])
def test_memory_child_reports_its_peak(side):
    """What each subprocess of the memory part runs, on a small config and one epoch."""
    out = _run("train_throughput.py", "--rss-child", side, "--configs", "medium",
               "--rss-epochs", "1", "--keep-openblas-env")
    record = json.loads(out.strip().splitlines()[-1])
    assert record["kind"] == side
    assert record["peak_mib"] >= record["before_training_mib"] > 0


@pytest.fixture
def targets(monkeypatch):
    """``benchmarks/throughput/targets.py``, imported as the scripts import it (their folder
    first on the path)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    yield importlib.import_module("throughput.targets")
    for name in [n for n in sys.modules if n.split(".")[0] == "throughput"]:
        del sys.modules[name]


def _median(value):
    return {"median": value}


def test_targets_are_evaluated_from_the_results(targets):
    results = {"backend": "numpy", "device": "cpu", "throughput": {"configs": {
        "tiny": {"ratios": {"sgd:nnx.step/hand": _median(1.2),
                            "sgd:nnx.fit/hand.fit": _median(1.0),
                            "sgd:nnx.step/torch": _median(0.25)},
                 "adam_overhead_s": {"nnx.step": _median(1e-5), "torch": _median(2e-4),
                                     "nnx.fit": _median(3e-4), "torch.fit": _median(2e-4)}},
        "xlarge": {"skipped": "GPU only; not yet measured"}}},
        "memory": {"nnx/hand_peak": 0.5},
        "accuracy": {"sk/nnx": _median(0.8)}}
    assert targets.evaluate(results) == [
        ("tiny", "sgd", "nnx.step / hand <= 1.15", "1.200", "**missed**"),
        ("tiny", "sgd", "nnx.fit / hand.fit <= 1.15", "1.000", "met"),
        ("tiny", "sgd", "torch / nnx.step >= 3.0", "4.000", "met"),
        ("tiny", "adam", "Adam overhead nnx.step <= torch foreach", "10.0us vs 200us", "met"),
        ("tiny", "adam", "Adam overhead nnx.fit <= torch foreach", "300us vs 200us",
         "**missed**"),
        ("large", "sgd", "peak RSS nnx / hand <= 1.25", "0.500", "met"),
        ("digits", "adam", "time to 97%: sklearn / nnx > 1", "0.80", "**missed**"),
    ]


def test_targets_hold_each_platform_to_its_own(targets):
    gpu_run = {"backend": "cupy", "device": "cuda:0", "throughput": {
        "matmul_rate_flops": 1e12, "configs": {"xlarge": {
            "ratios": {"sgd:nnx.step/torch": _median(1.25)}, "flops_per_step": 5e8,
            "step_s": {"sgd:nnx.step": _median(1e-3)}}}}}
    assert targets.evaluate(gpu_run) == [
        ("xlarge", "sgd", "nnx samples/s / torch-cuda >= 0.9", "0.800", "**missed**"),
        ("xlarge", "sgd", "nnx flop rate / matmul rate >= 0.6", "0.500", "**missed**"),
    ]
    gpu_run["throughput"]["configs"] = {"medium": {"ratios": {}}}
    assert targets.evaluate(gpu_run) == [
        ("xlarge", "-", "GPU targets", "not yet measured", "-")]
    assert targets.evaluate({"backend": "torch", "device": "cpu"}) == []
    # any list of records is evaluated the same way
    mine = [targets.Target("cpu-numpy", "tiny", "ratio", "torch", "<=", 0.3,
                           optimizers=("sgd",), through_fit=False)]
    results = {"backend": "numpy", "throughput": {"configs": {"tiny": {
        "ratios": {"sgd:nnx.step/torch": _median(0.25)}}}}}
    assert targets.evaluate(results, mine) == [
        ("tiny", "sgd", "nnx.step / torch <= 0.3", "0.250", "met")]


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
    for name in ("gpu_tests", "sync_debug", "host_runs_ahead", "benchmarks", "per_call"):
        assert parts[name]["status"] == "skipped" and "GPU" in parts[name]["reason"], name
    assert set(parts["per_call"]["cpu_reference"]) >= {"fit_per_call_s", "fit_per_epoch_s"}
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


def test_streaming_benchmark_runs_every_side():
    out = _run("streaming.py", "--configs", "medium", "--repeats", "1", "--epochs", "1")
    for side in ("memory", "memmap", "memmap.noprefetch", "generator"):
        assert f"| medium | {side} |" in out


def _has_mpi():
    return (importlib.util.find_spec("mpi4py") is not None
            and shutil.which("mpiexec") is not None)


@pytest.mark.skipif(not _has_mpi(), reason="mpi4py and mpiexec (the 'mpi' extra) are not "
                    "installed")
def test_scaling_benchmark_runs_every_kind_and_logs_each_run(tmp_path):
    out = _run("scaling.py", "--repeats", "1", "--epochs", "1", "--rows", "1024",
               "--out", str(tmp_path))
    report = (tmp_path / "scaling-cpu-mpi.md").read_text()
    assert report in out
    for kind in ("| 1 process (plain fit) |", "| 2 ranks, shared-memory sum (default) |",
                 "| 2 ranks, one MPI_Allreduce per step |", "| 2 independent plain fits",
                 "| the same 2 fits in lockstep", "| NVLink (H100, one node) | 8 | strong |"):
        assert kind in report
    log = (tmp_path / "scaling-cpu-mpi-runs.md").read_text().splitlines()
    assert log[-2].startswith("|---|") and log[-1].count("|") == 11
    assert "| 1 | 1024 |" in log[-1]

    # a second run appends its line under the same header
    spec = importlib.util.spec_from_file_location("scaling", ROOT / "benchmarks" / "scaling.py")
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    one = {"rows_per_s": 100.0}
    rounds = [{"one": one, "shared": {"rows_per_s": 170.0}, "allreduce": {"rows_per_s": 160.0},
               "independent": {"rows_per_s": 190.0}, "lockstep": {"rows_per_s": 180.0}}]
    scaling.log_run(rounds, 20_000, "abc1234", tmp_path / "scaling-cpu-mpi-runs.md")
    again = (tmp_path / "scaling-cpu-mpi-runs.md").read_text().splitlines()
    assert again[:-1] == log
    assert again[-1].endswith("| abc1234 | 1 | 20000 | 100 | 1.70x | 1.60x | 1.90x | 1.80x "
                              "| 89% |")
