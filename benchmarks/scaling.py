"""Data-parallel scaling: the large configuration on 1 and 2 MPI ranks, and a cost model.

    python benchmarks/scaling.py [--epochs 3] [--out benchmarks/results]

Measured here, side by side in one run (each rank with one BLAS thread):

- training throughput (rows/s) of the one-process ``fit`` and of ``fit(...,
  distributed="mpi")`` on 2 ranks of ``mpiexec``, the same global batch (256) and data, and
  the ratio (the target is 1.7x);
- the share of a step spent in the gradient allreduce (time inside the collective, which
  includes waiting for the slower rank);
- the allreduce's latency and bandwidth between two ranks (MPI on this machine), fitted as
  as the ring model's ``alpha`` and ``beta`` (two ranks: ``t(bytes) = 2 alpha + bytes /
  beta``) from a 4-byte and a 4 MiB sum.

Then a ring-allreduce cost model predicts the step time and the efficiency of the xlarge
configuration on 8 to 1,024 GPUs over NVLink and InfiniBand (inputs not measured here are
stated as assumptions in the output and in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LARGE = (784, 512, 256, 10)  # benchmarks/throughput/problems.py: "large"
XLARGE = (1024, 4096, 4096, 10)
ROWS, BATCH = 20_000, 256


def parameter_count(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# --------------------------------------------------------------------------- on each rank


def worker(epochs: int, out: Path, independent: bool = False) -> None:
    """One rank: train the large configuration data-parallel and time it.

    ``independent``: each rank trains a plain fit of its own on half the global batch, with
    no communication at all: what two processes can compute side by side here, the ceiling
    of any data-parallel speed-up on this machine."""
    import nnx
    from nnx.communicators import MPICommunicator
    from nnx.distributed import DataParallel

    class TimedMPI(MPICommunicator):
        spent = 0.0

        def allreduce(self, ctx, array, what):
            start = time.perf_counter()
            result = super().allreduce(ctx, array, what)
            self.spent += time.perf_counter() - start
            return result

    comm = TimedMPI()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, LARGE[0])).astype(np.float32)
    y = np.argmax(X[:, :10] @ rng.normal(size=(10, 10)), axis=1)
    net = nnx.Network(list(LARGE), loss="categorical_crossentropy", optimizer="sgd",
                      learning_rate=0.01, seed=0)
    # one rank is the plain one-process fit (no gradient sum at all): the baseline
    plan = DataParallel(comm) if comm.size > 1 and not independent else None
    batch = BATCH // comm.size if independent else BATCH
    net.fit(X, y, epochs=1, batch_size=batch, distributed=plan)  # warm-up
    comm.spent = 0.0
    comm.comm.Barrier()
    start = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=batch, distributed=plan)
    seconds = time.perf_counter() - start
    if independent:  # the slower rank's time; the rows of both ranks
        seconds = max(comm.comm.allgather(seconds))
    probe = {}
    if comm.size > 1 and not independent:
        for size in (1, 2**20):  # float32 elements: 4 bytes and 4 MiB
            buffer = np.ones(size, dtype=np.float32)
            repeats = 400 if size == 1 else 20
            comm.comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(repeats):
                comm.comm.Allreduce(comm.MPI.IN_PLACE, buffer)
            probe[size * 4] = (time.perf_counter() - t0) / repeats
    if comm.rank == 0:
        rows = epochs * ROWS * (comm.size if independent else 1)
        out.write_text(json.dumps({"ranks": comm.size, "seconds": seconds,
                                   "rows_per_s": rows / seconds,
                                   "allreduce_share": comm.spent / seconds,
                                   "steps": epochs * -(-ROWS // BATCH), "probe": probe}))


# --------------------------------------------------------------------------- the model


def ring_allreduce_seconds(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    r"""Ring allreduce of ``nbytes`` on ``n`` ranks: :math:`2(n-1)/n \cdot B/\beta +
    2(n-1)\alpha` (a reduce-scatter and an all-gather, each ``n - 1`` steps)."""
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


#: interconnects of the model: bus bandwidth per GPU (bytes/s) and per-step latency (s).
#: Assumptions from vendor figures, not measured here.
LINKS = {"NVLink (H100, one node)": (360e9, 3e-6), "InfiniBand NDR 400 Gb/s": (45e9, 8e-6)}
#: the xlarge step on one H100: 6 * parameters * rows FLOPs at an assumed 50 TFLOP/s (TF32
#: matmuls at a fraction of peak); an assumption, not a measurement
GPU_FLOPS = 50e12


def model_table(global_batch: int) -> list:
    """Predicted step time and efficiency of xlarge, strong scaling (fixed global batch)
    and weak scaling (4,096 rows per GPU)."""
    params = parameter_count(XLARGE)
    nbytes = 4 * params  # float32 gradients
    rows = []
    for link, (bandwidth, latency) in LINKS.items():
        for n in (1, 8, 64, 256, 1024):
            if "NVLink" in link and n > 8:
                continue  # one node holds 8 GPUs
            comm = ring_allreduce_seconds(n, nbytes, bandwidth, latency)
            for scaling, batch in (("strong", global_batch / n), ("weak", global_batch)):
                compute = 6 * params * batch / GPU_FLOPS
                rows.append({"link": link, "gpus": n, "scaling": scaling,
                             "compute_ms": 1e3 * compute, "allreduce_ms": 1e3 * comm,
                             "efficiency": compute / (compute + comm)})
    return rows


# --------------------------------------------------------------------------- driver


def run(ranks: int, epochs: int, scratch: Path, independent=False) -> dict:
    out = scratch / f"scaling-{ranks}{'-independent' if independent else ''}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, __file__, "--worker",
                    "--epochs", str(epochs), "--json", str(out)]
                   + (["--independent"] if independent else []),
                   env=env, check=True, timeout=1800)
    return json.loads(out.read_text())


def report(one: dict, two: dict, apart: dict, table: list) -> str:
    speedup = two["rows_per_s"] / one["rows_per_s"]
    ceiling = apart["rows_per_s"] / one["rows_per_s"]
    probe = {int(k): v for k, v in two["probe"].items()}
    # two ranks: t = 2 (n - 1) alpha + 2 (n - 1) / n * bytes / beta = 2 alpha + bytes / beta
    alpha = probe[4] / 2
    beta = (2**22 - 4) / (probe[2**22] - probe[4])
    lines = [
        "# Data-parallel scaling (MPI, large configuration, float32, SGD, batch 256)",
        "",
        f"Written by `benchmarks/scaling.py`; {one['steps']} timed steps per run, one BLAS "
        "thread per rank, both runs in one invocation.",
        "",
        "| ranks | rows/s | allreduce share of the step |",
        "|---|---|---|",
        f"| 1 (plain fit) | {one['rows_per_s']:.0f} | none |",
        f"| 2 | {two['rows_per_s']:.0f} | {two['allreduce_share']:.1%} |",
        f"| 2 independent plain fits, batch 128 each (no communication) | "
        f"{apart['rows_per_s']:.0f} | none |",
        "",
        f"**2 ranks / 1 rank throughput: {speedup:.2f}x** (target >= 1.7x). Two processes "
        f"that never communicate reach {ceiling:.2f}x here: the ceiling of any "
        f"data-parallel speed-up on this machine's two cores; the data-parallel fit gets "
        f"{speedup / ceiling:.0%} of it.",
        "",
        f"MPI allreduce between the two ranks here: latency alpha = {alpha * 1e6:.1f} us, "
        f"bandwidth beta = {beta / 1e9:.2f} GB/s; the large network's gradient "
        f"({4 * parameter_count(LARGE) / 2**20:.1f} MiB) then takes "
        f"{1e3 * ring_allreduce_seconds(2, 4 * parameter_count(LARGE), beta, alpha):.2f} ms "
        "by the model.",
        "",
        f"## Model: xlarge ({parameter_count(XLARGE) / 1e6:.1f} M parameters, "
        f"{4 * parameter_count(XLARGE) / 2**20:.0f} MiB of float32 gradients), global batch 4096",
        "",
        "Assumed, not measured: one H100 computes at "
        f"{GPU_FLOPS / 1e12:.0f} TFLOP/s (6 x parameters x rows per step); bus bandwidth "
        "and latency per link: "
        + "; ".join(f"{k}: {b / 1e9:.0f} GB/s, {a * 1e6:.0f} us" for k, (b, a) in LINKS.items())
        + ". Strong scaling keeps the global batch at 4096; weak scaling gives each GPU 4096 "
        "rows.",
        "",
        "| link | GPUs | scaling | compute ms | allreduce ms | efficiency |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['link']} | {r['gpus']} | {r['scaling']} | {r['compute_ms']:.2f} | "
              f"{r['allreduce_ms']:.2f} | {r['efficiency']:.0%} |" for r in table]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.epochs, args.json, args.independent)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    one = run(1, args.epochs, args.out)
    two = run(2, args.epochs, args.out)
    apart = run(2, args.epochs, args.out, independent=True)
    text = report(one, two, apart, model_table(4096))
    (args.out / "scaling-cpu-mpi.md").write_text(text)
    for path in args.out.glob("scaling-*.json"):
        path.unlink()
    print(text)


if __name__ == "__main__":
    main()
