#!/usr/bin/env python
"""What ``Network.fit`` adds per step over the raw training step, part by part.

``fit`` does, once per epoch, what the raw ``_train_step`` loop of ``train_throughput.py``
does not: reorder the rows (``shuffle``), take the divergence guard's restore point
(``_snapshot``) and check the parameters for NaN/inf together with the epoch's loss
(``_finite_check``). This times ``fit`` on one config with each of those switched off in
turn, interleaved, every block on a fresh network from the same seed (so every variant trains
the same trajectory), and prints the median per-step time of each variant and its difference
from the full ``fit``. The switched-off variants are measurement devices only: they disable
the guard, so never train like that.

Usage::

    python benchmarks/fit_overhead.py [--config tiny] [--optimizer sgd] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_throughput's configs
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, not an install
import train_throughput as tt  # noqa: E402

import nnx  # noqa: E402

VARIANTS = {
    "fit": {},
    "without the restore point": {"_snapshot": lambda self, *a, **k: None},
    "without the finiteness check": {"_finite_check": lambda self, total: total},
    "without the shuffle": {"shuffle": False},
}


class _Patched(nnx.Network):
    """A Network whose per-epoch parts can be switched off for one measurement."""


def time_variant(prob, optimizer, patch, epochs) -> float:
    """Seconds per step of ``fit(epochs=epochs)`` on a fresh network with ``patch`` applied."""
    shuffle = patch.get("shuffle", True)
    cls = type("Variant", (_Patched,), {k: v for k, v in patch.items() if k != "shuffle"})
    net = cls(list(prob.config.sizes), activation="relu",
              optimizer=tt._nnx_optimizer(optimizer), seed=0)
    net.fit(prob.X[:64], prob.y[:64], epochs=1, batch_size=prob.config.batch)  # build, warm
    gc.disable()
    start = time.perf_counter()
    net.fit(prob.X, prob.y, epochs=epochs, batch_size=prob.config.batch, shuffle=shuffle)
    seconds = time.perf_counter() - start
    gc.enable()
    return seconds / (epochs * len(prob.bounds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", choices=["tiny", "medium"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per block (default: about 0.15 s of training)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    prob = tt.make_problem(tt.CONFIGS[args.config])
    epochs = args.epochs or max(1, int(0.15 / (len(prob.bounds) * 100e-6)))
    times = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, patch in VARIANTS.items():
            times[name].append(time_variant(prob, args.optimizer, patch, epochs))
    full = statistics.median(times["fit"])
    print(f"{args.config}, {args.optimizer}, {epochs} epochs of {len(prob.bounds)} steps per "
          f"block, {args.repeats} interleaved repetitions, one BLAS thread\n")
    print("| variant | per step (median) | saved against fit |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e6:.1f} us | {(full - median) * 1e6:+.1f} us |")


if __name__ == "__main__":
    main()
