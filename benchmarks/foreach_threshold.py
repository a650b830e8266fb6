#!/usr/bin/env python
"""Where packing the parameters (``foreach``) starts to pay: packed / per-parameter step time.

An element-wise rule packed into one vector saves a dozen array calls per parameter and costs
one copy of the gradients per step. This sweeps networks whose parameters average from ~1k to
~90k entries and times the raw training step (``net.step`` over a fixed batch, float32,
one BLAS thread) with ``foreach=False`` and ``foreach=True`` for Adam and SGD with momentum,
interleaved, ``--repeats`` times; it prints the median time of each and the median of the
paired ratios. ``nnx.optimizers.Optimizer.FOREACH_MAX_MEAN_SIZE`` (the ``foreach=None``
threshold) is set from the last row where packing still wins here.

Usage::

    python benchmarks/foreach_threshold.py [--repeats 7] [--backend numpy] [--device ...] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import nnx

# (layer sizes, batch): parameters averaging ~1k, 5k, 9k, 20k, 45k and 90k entries
NETWORKS = [
    ((64, 64, 32, 10), 32),
    ((256, 64, 64, 10), 64),
    ((784, 64, 64, 10), 256),
    ((784, 128, 128, 10), 256),
    ((784, 256, 256, 10), 256),
    ((784, 512, 256, 10), 256),
]
RULES = {
    "adam": lambda foreach: nnx.optimizers.Adam(1e-3, foreach=foreach),
    "momentum": lambda foreach: nnx.optimizers.SGD(1e-2, momentum=0.9, foreach=foreach),
}


def mean_parameter_size(sizes) -> int:
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(a * b + b for a, b in pairs) // (2 * len(pairs))


def time_steps(net, x, y, steps) -> float:
    """Seconds per step of ``steps`` raw training steps on one batch, synchronised."""
    net.step(x, y)
    net.ctx.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        net.step(x, y)
    net.ctx.synchronize()
    return (time.perf_counter() - start) / steps


def sweep(args) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for sizes, batch in NETWORKS[:1] if args.quick else NETWORKS:
        x_host = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        y_host = rng.integers(0, sizes[-1], batch)
        flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        steps = max(20, int(args.block_seconds * 3e10 / flops))  # ~block_seconds at 30 GFLOP/s
        for rule, make in RULES.items():
            nets = {}
            for foreach in (False, True):
                net = nnx.Network(list(sizes), optimizer=make(foreach), backend=args.backend,
                                  device=args.device, seed=0)
                nets[foreach] = (net, *net.prepare(x_host, y_host))
            times = {False: [], True: []}
            for _ in range(args.repeats):
                for foreach, (net, x, y) in nets.items():
                    times[foreach].append(time_steps(net, x, y, steps))
            ratios = [p / q for p, q in zip(times[True], times[False])]
            rows.append({"sizes": sizes, "batch": batch, "rule": rule,
                         "mean_size": mean_parameter_size(sizes),
                         "per_parameter_us": 1e6 * statistics.median(times[False]),
                         "packed_us": 1e6 * statistics.median(times[True]),
                         "ratio": statistics.median(ratios),
                         "ratio_range": (min(ratios), max(ratios))})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--block-seconds", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--quick", action="store_true", help="the smallest network only")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    print(f"backend {args.backend}, device {args.device}, float32, "
          f"current threshold FOREACH_MAX_MEAN_SIZE = "
          f"{nnx.optimizers.Optimizer.FOREACH_MAX_MEAN_SIZE}\n")
    print("| sizes | batch | rule | mean entries / parameter | per-parameter | packed | "
          "packed / per-parameter |")
    print("|---|---|---|---|---|---|---|")
    for row in sweep(args):
        lo, hi = row["ratio_range"]
        print(f"| {'-'.join(map(str, row['sizes']))} | {row['batch']} | {row['rule']} | "
              f"{row['mean_size']:,} | {row['per_parameter_us']:.1f} us | "
              f"{row['packed_us']:.1f} us | {row['ratio']:.3f} ({lo:.3f}-{hi:.3f}) |")


if __name__ == "__main__":
    main()
