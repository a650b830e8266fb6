"""Data-parallel scaling: the large configuration on 1 and 2 MPI ranks, and a cost model.

    python benchmarks/scaling.py [--epochs 4] [--repeats 15] [--rows 20000]
                                 [--out benchmarks/results]

Measured here, side by side in one run (each process with one BLAS thread, bound to its own
core by ``mpiexec -bind-to core``), ``--repeats``
rounds of five runs each, interleaved so that a busy moment of the shared machine hits every
kind alike; the medians are reported:

- the training throughput (rows/s) of the one-process ``fit``, and of ``fit(...,
  distributed="mpi")`` on 2 ranks of ``mpiexec`` with the same global batch (256) and data,
  once with the default gradient sum (MPI shared-memory windows within the machine,
  :class:`nnx.communicators.SharedMemorySum`) and once with one ``MPI_Allreduce`` per step
  (``shared_memory=False``); the ratios to one process (the target is 1.7x);
- two plain fits side by side that never communicate (batch 128 each): what two processes
  compute together here, the ceiling of any data-parallel speed-up;
- the same two fits held in lockstep by an MPI barrier at every step, with no sum: what
  waiting for the slower rank at every step costs by itself (any synchronous data-parallel
  fit pays it);
- the share of a 2-rank step spent summing the gradients (time inside the sum, which
  includes waiting for the slower rank);
- MPI's allreduce latency and bandwidth between two ranks, fitted as the ring model's
  ``alpha`` and ``beta`` (two ranks: ``t(bytes) = 2 alpha + bytes / beta``) from a 4-byte
  and a 4 MiB sum, and both sums of the large network's 2 MiB gradient alone.

Every run also appends its medians as one line to ``scaling-cpu-mpi-runs.md`` next to the
report (with the date and the commit), so the record keeps every run, not only the last.

Then a ring-allreduce cost model predicts the step time and the efficiency of the xlarge
configuration on 8 to 1,024 GPUs over NVLink and InfiniBand (inputs not measured here are
stated as assumptions in the output and in benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LARGE = (784, 512, 256, 10)  # benchmarks/throughput/problems.py: "large"
XLARGE = (1024, 4096, 4096, 10)
ROWS, BATCH = 20_000, 256  # the default rows (``--rows``) and the global batch
#: the runs of one round: how many ranks, and what each rank does
MODES = {"one": 1, "shared": 2, "allreduce": 2, "independent": 2, "lockstep": 2}


def parameter_count(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# --------------------------------------------------------------------------- on each rank


def timed_communicator(shared_memory: bool):
    """An MPI communicator that adds up the seconds spent in each step's gradient sum."""
    from nnx.communicators import MPICommunicator

    class Timed(MPICommunicator):
        spent = 0.0

        def step_sum(self, ctx, size):
            inner, outer = super().step_sum(ctx, size), self

            class TimedSum:
                vector = inner.vector

                def sum(self, what):
                    start = time.perf_counter()
                    result = inner.sum(what)
                    outer.spent += time.perf_counter() - start
                    return result

            return TimedSum()

    return Timed(shared_memory=shared_memory)


def sum_seconds(comm, ctx, size: int, repeats: int = 50) -> float:
    """Mean seconds of one sum of a ``(size,)`` vector by ``comm``'s step sum."""
    step_sum = comm.step_sum(ctx, size)
    comm.comm.Barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        step_sum.vector()[:] = 1.0
        step_sum.sum("a probe")
    return (time.perf_counter() - start) / repeats


def step_vector_size(net) -> int:
    """Elements of the vector a data-parallel step sums: the parameters laid out as
    :class:`nnx.distributed.GradientSum` lays them out (aligned), and the loss's 16."""
    from nnx.packing import FlatLayout

    return FlatLayout(net.parameters(), align=16).size + 16


def worker(mode: str, epochs: int, rows: int, out: Path) -> None:
    """One rank of one run: train the large configuration and time it.

    ``mode``: ``"one"`` (the plain one-process fit), ``"shared"`` or ``"allreduce"`` (the
    data-parallel fit with either gradient sum), ``"independent"`` (each rank a plain fit of
    its own on half the global batch, no communication), ``"lockstep"`` (those fits waiting
    for each other at every step)."""
    import nnx
    from nnx.callbacks import Callback
    from nnx.distributed import DataParallel

    class Lockstep(Callback):
        def on_batch_outputs(self, out, yb):  # once per step
            comm.comm.Barrier()

    comm = timed_communicator(shared_memory=mode != "allreduce")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, LARGE[0])).astype(np.float32)
    y = np.argmax(X[:, :10] @ rng.normal(size=(10, 10)), axis=1)
    net = nnx.Network(list(LARGE), loss="categorical_crossentropy", optimizer="sgd",
                      learning_rate=0.01, seed=0)
    plan = DataParallel(comm) if mode in ("shared", "allreduce") else None
    alone = mode in ("independent", "lockstep")  # a plain fit on each rank
    batch = BATCH // comm.size if alone else BATCH
    callbacks = [Lockstep()] if mode == "lockstep" else None
    net.fit(X, y, epochs=1, batch_size=batch, distributed=plan, callbacks=callbacks)  # warm-up
    comm.spent = 0.0
    comm.comm.Barrier()
    start = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=batch, distributed=plan, callbacks=callbacks)
    seconds = time.perf_counter() - start
    if alone:  # the slower rank's time; the rows of both ranks
        seconds = max(comm.comm.allgather(seconds))
    probe = {}
    if mode == "shared":
        for size in (1, 2**20):  # float32 elements: 4 bytes and 4 MiB
            buffer = np.ones(size, dtype=np.float32)
            repeats = 400 if size == 1 else 20
            comm.comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(repeats):
                comm.comm.Allreduce(comm.MPI.IN_PLACE, buffer)
            probe[size * 4] = (time.perf_counter() - t0) / repeats
        size = step_vector_size(net)
        probe["gradient shared"] = sum_seconds(comm, net.ctx, size)
        plain = timed_communicator(shared_memory=False)
        probe["gradient allreduce"] = sum_seconds(plain, net.ctx, size)
    if comm.rank == 0:
        trained = epochs * rows * (comm.size if alone else 1)
        out.write_text(json.dumps({"mode": mode, "ranks": comm.size, "seconds": seconds,
                                   "rows_per_s": trained / seconds,
                                   "sum_share": comm.spent / seconds,
                                   "steps": epochs * -(-rows // BATCH), "probe": probe}))


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


def run(mode: str, epochs: int, rows: int, scratch: Path) -> dict:
    out = scratch / f"scaling-{mode}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    # each process bound to its own core, as MPI jobs run on a cluster: no migration
    # between the cores while the ranks wait on each other
    subprocess.run(["mpiexec", "-bind-to", "core", "-n", str(MODES[mode]), sys.executable,
                    __file__, "--worker",
                    mode, "--epochs", str(epochs), "--rows", str(rows), "--json", str(out)],
                   env=env, check=True, timeout=1800)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def code_version() -> str:
    """The commit measured (with ``+changes`` when the tree differs from it), or
    ``unknown`` outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True,
                              text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no")
                         else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


RUNS_HEADER = """# Every run of the data-parallel scaling benchmark

`benchmarks/scaling.py` appends one line per run: the medians over its rounds of the throughput
of each kind of run as a ratio to one process (large configuration, float32, SGD, global batch
256, each process with one BLAS thread on its own core). "Of the ceiling": the shared-memory
sum's ratio over the two independent fits'. The report of the last run is
`scaling-cpu-mpi.md`.

"""
RUNS_COLUMNS = ("date (UTC)", "commit", "rounds", "rows", "one process, rows/s",
                "2 ranks, shared-memory sum", "2 ranks, MPI_Allreduce",
                "2 independent fits (ceiling)", "2 fits in lockstep", "of the ceiling")
RUNS_HEADER += ("| " + " | ".join(RUNS_COLUMNS) + " |\n"
                + "|" + "---|" * len(RUNS_COLUMNS) + "\n")


def log_run(rounds: list, rows: int, code: str, path: Path) -> None:
    """Append this run's medians to the runs log at ``path`` (made with its header)."""
    ratio = {mode: statistics.median(v) for mode, v in ratios_to_one(rounds).items()}
    line = (f"| {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} | {code} | {len(rounds)} | "
            f"{rows} | {median(rounds, 'one', 'rows_per_s'):.0f} | "
            + " | ".join(f"{ratio[m]:.2f}x" for m in ("shared", "allreduce", "independent",
                                                       "lockstep"))
            + f" | {ratio['shared'] / ratio['independent']:.0%} |\n")
    if not path.exists():
        path.write_text(RUNS_HEADER)
    with path.open("a") as log:
        log.write(line)


def ratios_to_one(rounds: list) -> dict:
    """Each two-process kind's throughput over the one process's, round by round."""
    return {mode: [r[mode]["rows_per_s"] / r["one"]["rows_per_s"] for r in rounds]
            for mode in ("shared", "allreduce", "independent", "lockstep")}


def median(rounds: list, mode: str, key: str) -> float:
    return statistics.median(r[mode][key] for r in rounds)


def report(rounds: list, table: list) -> str:
    ratios = ratios_to_one(rounds)
    speedup = {mode: statistics.median(v) for mode, v in ratios.items()}
    probe = {k: statistics.median(r["shared"]["probe"][k] for r in rounds)
             for k in rounds[0]["shared"]["probe"]}
    # two ranks: t = 2 (n - 1) alpha + 2 (n - 1) / n * bytes / beta = 2 alpha + bytes / beta
    alpha = probe["4"] / 2
    beta = (2**22 - 4) / (probe[str(2**22)] - probe["4"])
    gradient = 4 * parameter_count(LARGE)

    def spread(mode):
        return f"{min(ratios[mode]):.2f}x to {max(ratios[mode]):.2f}x"

    lines = [
        "# Data-parallel scaling (MPI, large configuration, float32, SGD, batch 256)",
        "",
        f"Written by `benchmarks/scaling.py`: {len(rounds)} rounds of the five runs below, "
        f"interleaved, {rounds[0]['one']['steps']} timed steps per run, one BLAS thread per "
        "process, each process bound to a core; medians over the rounds.",
        "",
        "| run | rows/s | / one process (median, range) | gradient sum's share of the step |",
        "|---|---|---|---|",
        f"| 1 process (plain fit) | {median(rounds, 'one', 'rows_per_s'):.0f} | 1.00x | none |",
        f"| 2 ranks, shared-memory sum (default) | {median(rounds, 'shared', 'rows_per_s'):.0f}"
        f" | {speedup['shared']:.2f}x ({spread('shared')}) | "
        f"{median(rounds, 'shared', 'sum_share'):.1%} |",
        f"| 2 ranks, one MPI_Allreduce per step | {median(rounds, 'allreduce', 'rows_per_s'):.0f}"
        f" | {speedup['allreduce']:.2f}x ({spread('allreduce')}) | "
        f"{median(rounds, 'allreduce', 'sum_share'):.1%} |",
        f"| 2 independent plain fits, batch 128 each (no communication) | "
        f"{median(rounds, 'independent', 'rows_per_s'):.0f} | {speedup['independent']:.2f}x "
        f"({spread('independent')}) | none |",
        f"| the same 2 fits in lockstep (an MPI barrier at every step, no sum) | "
        f"{median(rounds, 'lockstep', 'rows_per_s'):.0f} | {speedup['lockstep']:.2f}x "
        f"({spread('lockstep')}) | none |",
        "",
        f"**2 ranks / 1 process throughput: {speedup['shared']:.2f}x** (median; target >= "
        f"1.7x); {speedup['allreduce']:.2f}x with one MPI_Allreduce per step. Two processes "
        f"that never communicate reach {speedup['independent']:.2f}x here: the ceiling of any "
        "data-parallel speed-up on this machine's two cores; the data-parallel fit gets "
        f"{speedup['shared'] / speedup['independent']:.0%} of it. Held in lockstep at every "
        f"step without summing anything, the same two fits reach {speedup['lockstep']:.2f}x "
        "(what waiting for the slower rank at every step leaves by itself); what the "
        "data-parallel fit loses beyond that is its own work per step (the gradient sum, "
        "the loss's share).",
        "",
        f"The large network's gradient ({gradient / 2**20:.1f} MiB) summed alone on 2 ranks: "
        f"{1e3 * probe['gradient shared']:.2f} ms through the shared-memory windows, "
        f"{1e3 * probe['gradient allreduce']:.2f} ms by MPI_Allreduce (both with the copy "
        "into the vector). MPI allreduce between the two ranks: latency alpha = "
        f"{alpha * 1e6:.1f} us, bandwidth beta = {beta / 1e9:.2f} GB/s, so "
        f"{1e3 * ring_allreduce_seconds(2, gradient, beta, alpha):.2f} ms for the gradient "
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
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15, help="rounds of the five runs")
    parser.add_argument("--rows", type=int, default=ROWS, help="training rows (a quick check: "
                        "fewer; the recorded runs use the default)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", choices=tuple(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.epochs, args.rows, args.json)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    code = code_version()  # before this run writes its results
    rounds = []
    for i in range(args.repeats):
        rounds.append({mode: run(mode, args.epochs, args.rows, args.out) for mode in MODES})
        print(f"round {i + 1}/{args.repeats}: " + ", ".join(
            f"{mode} {r['rows_per_s']:.0f} rows/s" for mode, r in rounds[-1].items()),
            flush=True)
    text = report(rounds, model_table(4096))
    (args.out / "scaling-cpu-mpi.md").write_text(text)
    log_run(rounds, args.rows, code, args.out / "scaling-cpu-mpi-runs.md")
    print(text)


if __name__ == "__main__":
    main()
