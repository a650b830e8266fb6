#!/usr/bin/env python
"""What one whole ``Network(...).fit`` call costs against a hand-written NumPy loop.

The tiny configuration (2-16-8-4-1, batch 32, 200 rows of moons, SGD) trained for 60 epochs,
construction included, two ways, interleaved in one process:

``nnx``
    ``nnx.Network([2, 16, 8, 4, 1], activation="relu", optimizer=SGD(0.01), seed=0)``
    then ``fit(X, y, epochs=60, batch_size=32)``: checks, the device crossing, the shuffle,
    the divergence guard and the history included;
``hand``
    the same He-initialised weights drawn with NumPy, then 60 epochs of a plain NumPy step
    (``throughput.handwritten.HandMLP``) over the rows reordered every epoch.

On networks this small, what ``fit`` does around the steps is a visible share of the time;
the target is ``nnx / hand <= 1.10`` (paired median over interleaved repetitions).

Usage::

    python benchmarks/fit_call.py [--repeats 15] [--epochs 60]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np

import nnx

from throughput.handwritten import HandMLP, run_batches
from throughput.problems import CONFIGS, make_problem

TARGET = 1.10


def nnx_call(prob, epochs):
    net = nnx.Network(list(prob.config.sizes), activation="relu",
                      optimizer=nnx.optimizers.SGD(learning_rate=0.01), seed=0)
    net.fit(prob.X, prob.y, epochs=epochs, batch_size=prob.config.batch)


def hand_call(prob, epochs):
    rng = np.random.default_rng(0)
    sizes = prob.config.sizes
    params = [((rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32),
               np.zeros(b, np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]
    mlp = HandMLP(np, params, binary=True, optimizer="sgd", lr=0.01)
    Y = prob.y.reshape(-1, 1).astype(np.float32)
    run_batches(mlp.step, prob.X, Y, prob.bounds, epochs,
                lambda: rng.permutation(prob.X.shape[0]))


def timed(call, prob, epochs) -> float:
    call(prob, 1)  # warm
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        call(prob, epochs)
        return time.perf_counter() - t0
    finally:
        gc.enable()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    prob = make_problem(CONFIGS["tiny"])
    times = {"nnx": [], "hand": []}
    for _ in range(args.repeats):
        times["nnx"].append(timed(nnx_call, prob, args.epochs))
        times["hand"].append(timed(hand_call, prob, args.epochs))
    ratios = [a / b for a, b in zip(times["nnx"], times["hand"])]
    ratio = statistics.median(ratios)
    print(f"tiny {prob.config.sizes}, batch {prob.config.batch}, {prob.X.shape[0]} rows, "
          f"{args.epochs} epochs, construction included, {args.repeats} interleaved "
          "repetitions, one BLAS thread\n")
    print("| side | whole call (median) |")
    print("|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1e3:.2f} ms |")
    print(f"\nnnx / hand: {ratio:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"target <= {TARGET}: {'met' if ratio <= TARGET else 'missed'}")


if __name__ == "__main__":
    main()
