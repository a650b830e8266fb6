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
