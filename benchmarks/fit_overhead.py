#!/usr/bin/env python
"""What ``Network.fit`` adds per step, part by part: the divergence guard and the shuffle.

``fit`` does, once per epoch, what the raw ``net.step`` loop of ``train_throughput.py`` does
not: reorder the rows (``shuffle``) and, with the divergence guard, take a restore point and
read the epoch's loss together with the parameters' finiteness. This times, interleaved on
one config, every block on a fresh network from the same seed (so every variant trains the
same trajectory):

``fit``
    ``Network.fit(X, y, epochs=E, shuffle=True)``;
``without the divergence guard``
    the same per-call preparation (``net.prepare``, fit's ``EpochBatches``, a ``History``)
    and ``nnx.training.run_epochs(..., guard=None)``: fit's epoch loop over the same batches
    without the guard (a measurement device only: never train without it);
``without the shuffle``
    ``Network.fit(..., shuffle=False)``.

It prints the median per-step time of each variant and the median of its paired difference
from ``fit``.

Usage::

    python benchmarks/fit_overhead.py [--config tiny] [--optimizer sgd] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics

import nnx
from nnx.data import EpochBatches
from nnx.training import run_epochs

from throughput.harness import Harness, paired_differences
from throughput.problems import CONFIGS, make_problem
from throughput.sides import Side, nnx_network


def fit(net, X, y, epochs, batch):
    net.fit(X, y, epochs=epochs, batch_size=batch, shuffle=True)


def without_guard(net, X, y, epochs, batch):
    Xd, Yd = net.prepare(X, y)
    batches = EpochBatches((Xd, Yd, None), batch, net.random, net.ctx)
    history = nnx.callbacks.History()
    history.set_network(net)
    with net.ctx.errstate():
        run_epochs(net, batches, epochs, True, [history], guard=None)


def without_shuffle(net, X, y, epochs, batch):
    net.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False)


VARIANTS = {"fit": fit, "without the divergence guard": without_guard,
            "without the shuffle": without_shuffle}


class Variant(Side):
    """One variant as a side of the harness: each warm-up builds a fresh network from the
    same seed, so the timed block after it trains the same trajectory as every other."""

    def __init__(self, name, prob, optimizer):
        self.name, self.train = name, VARIANTS[name]
        self.prob, self.optimizer = prob, optimizer
        self.steps_per_epoch = len(prob.bounds)

    def warmup(self):
        prob = self.prob
        self.net = nnx_network(prob, self.optimizer)
        self.net.fit(prob.X[:64], prob.y[:64], epochs=1, batch_size=prob.config.batch)

    def run(self, epochs):
        self.train(self.net, self.prob.X, self.prob.y, epochs, self.prob.config.batch)

    def sync(self):
        self.net.ctx.synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", choices=["tiny", "medium"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--block-seconds", type=float, default=0.15,
                        help="length of fit's timed block, which sets the epochs per block")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per block (default: from --block-seconds)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    prob = make_problem(CONFIGS[args.config])
    sides = [Variant(name, prob, args.optimizer) for name in VARIANTS]
    harness = Harness(warmup_seconds=0.0, block_seconds=args.block_seconds,
                      repeats=args.repeats)
    epochs = args.epochs or harness.calibrate(sides[0])
    times = harness.interleaved(sides, epochs)
    print(f"{args.config}, {args.optimizer}, {epochs} epochs of {len(prob.bounds)} steps per "
          f"block, {args.repeats} interleaved repetitions, one BLAS thread\n")
    print("| variant | per step (median) | saved against fit (paired median) |")
    print("|---|---|---|")
    for name, values in times.items():
        saved = paired_differences(times, "fit", name)["median"]
        print(f"| {name} | {statistics.median(values) * 1e6:.1f} us | {saved * 1e6:+.1f} us |")


if __name__ == "__main__":
    main()
