#!/usr/bin/env python
"""How far the overfitting study's table moves with the BLAS kernel.

The table of ``python examples/regularization.py`` comes from 400 epochs of float32 training;
another BLAS kernel sums the matrix products in another order, the rounding differs in the last
bit, and over thousands of steps those bits grow into other decision boundaries. This runs the
study (:func:`nnx.overfitting.run_study`, numpy backend, seed 0, one BLAS thread) once per
OpenBLAS kernel, each in its own process with ``OPENBLAS_CORETYPE`` set, prints each table and
then the largest difference between kernels in each row. (NumPy's wheels carry every kernel
and pick one for the CPU; a kernel this CPU cannot run is reported and skipped.)

Usage::

    python benchmarks/regularization_blas.py [--kernels Prescott,Sandybridge,Haswell,SkylakeX]
        [--out benchmarks/results/regularization-blas.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, threadpoolctl
from nnx.overfitting import run_study
results, _ = run_study(verbose=False)
blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({"kernel": blas[0].get("architecture") if blas else None,
                  "rows": {name: {k: r[k] for k in ("train_acc", "val_acc", "gap", "epochs")}
                           for name, r in results.items()}}))
"""


def run_kernel(kernel: str):
    """The study's summary under one kernel, or ``None`` when this CPU cannot run it."""
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
               filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(runs: dict) -> str:
    from nnx.overfitting import format_table

    lines = []
    for kernel, run in runs.items():
        if run is None:
            lines += [f"### {kernel}: not usable on this CPU", ""]
            continue
        lines += [f"### {kernel} (OpenBLAS reports: {run['kernel']})", "", "```",
                  format_table(run["rows"]), "```", ""]
    usable = [run for run in runs.values() if run is not None]
    if len(usable) > 1:
        lines += ["### Largest difference between kernels", "",
                  "| variant | train acc | val acc | gap | epochs |", "|---|---|---|---|---|"]
        for name in usable[0]["rows"]:
            spread = {k: max(r["rows"][name][k] for r in usable) -
                      min(r["rows"][name][k] for r in usable)
                      for k in ("train_acc", "val_acc", "gap", "epochs")}
            lines.append(f"| {name} | {spread['train_acc']:.3f} | {spread['val_acc']:.3f} | "
                         f"{spread['gap']:.3f} | {spread['epochs']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernels", default="Prescott,Sandybridge,Haswell,SkylakeX",
                        help="OPENBLAS_CORETYPE values to try, comma-separated")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the report to this Markdown file too")
    args = parser.parse_args(argv)
    runs = {}
    for kernel in args.kernels.split(","):
        runs[kernel] = run_kernel(kernel)
        print(f"{kernel}: {'done' if runs[kernel] else 'not usable on this CPU'}", flush=True)
    text = report(runs)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
