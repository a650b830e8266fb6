#!/usr/bin/env python
"""Streaming throughput: ``fit`` from a memmap and from a generator against the in-memory fit.

For the medium and large configurations, one interleaved run times an epoch of
``Network.fit`` (nnx on NumPy, SGD, ``shuffle=True``, one BLAS thread) fed four ways:

``memory``           the arrays in memory (moved to the device once);
``memmap``           the same data as a ``.npy`` memmap, read batch by batch, prefetched;
``memmap.noprefetch``  the memmap read in the training loop (``prefetch=0``);
``generator``        a callable returning a generator of ``(X, y)`` batches.

and prints per-epoch medians and each streaming side's paired ratio to ``memory`` (target:
at most 1.15).

Usage::

    python benchmarks/streaming.py [--configs medium,large] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import nnx

from throughput.problems import CONFIGS, make_problem

TARGET = 1.15


def sides(prob, folder):
    X, y = prob.X, prob.y
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    Xm = np.load(folder / "X.npy", mmap_mode="r")
    ym = np.load(folder / "y.npy", mmap_mode="r")
    batch = prob.config.batch

    def batches():
        for start in range(0, len(X), batch):
            yield X[start:start + batch], y[start:start + batch]

    return {
        "memory": dict(X=X, y=y),
        "memmap": dict(X=Xm, y=ym),
        "memmap.noprefetch": dict(X=Xm, y=ym, prefetch=0),
        "generator": dict(X=batches, y=None),
    }


def time_epochs(prob, kwargs, epochs) -> float:
    net = nnx.Network(list(prob.config.sizes), activation="relu",
                      optimizer=nnx.optimizers.SGD(learning_rate=0.01), seed=0)
    net.fit(prob.X[:prob.config.batch * 2], prob.y[:prob.config.batch * 2], epochs=1,
            batch_size=prob.config.batch)  # build and warm
    start = time.perf_counter()
    net.fit(epochs=epochs, batch_size=prob.config.batch, **kwargs)
    return (time.perf_counter() - start) / epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="medium,large")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    print("| config | side | per epoch (median) | / memory (paired median) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.configs.split(","):
            prob = make_problem(CONFIGS[name])
            ways = sides(prob, Path(folder))
            times = {side: [] for side in ways}
            for _ in range(args.repeats):
                for side, kwargs in ways.items():
                    times[side].append(time_epochs(prob, kwargs, args.epochs))
            for side, values in times.items():
                ratio = statistics.median(a / b for a, b in zip(values, times["memory"]))
                mark = "" if side == "memory" else (" (met)" if ratio <= TARGET else " (missed)")
                print(f"| {name} | {side} | {statistics.median(values) * 1e3:.1f} ms | "
                      f"{ratio:.3f}{mark} |")


if __name__ == "__main__":
    main()
