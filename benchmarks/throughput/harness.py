"""The interleaved pairing harness: warm-ups, timed blocks, paired ratios, summaries.

All sides run interleaved, A B C ... A B C ..., ``repeats`` times in one process; every timed
block is preceded by a warm-up of that same side, and the garbage collector is paused inside
it (as ``timeit`` does). Ratios are taken pair by pair within a repetition, then summarised
as median (min-max).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


def summary(values) -> dict:
    v = sorted(values)
    return {"median": float(np.median(v)), "min": float(v[0]), "max": float(v[-1]), "n": len(v),
            "values": [float(x) for x in values]}


def pair_ratios(times, a, b):
    """Median (min-max) of t_a / t_b over repetitions, paired within each repetition; None
    when either side did not run."""
    if a not in times or b not in times:
        return None
    return summary([x / y for x, y in zip(times[a], times[b])])


def paired_differences(times, a, b):
    """Median (min-max) of t_a - t_b, paired within each repetition; None when either side
    did not run."""
    if not times.get(a) or not times.get(b):
        return None
    return summary([x - y for x, y in zip(times[a], times[b])])


def us(seconds) -> str:
    """A duration for tables and logs: one decimal in us below 100 us, whole us below 10 ms,
    one decimal in ms above."""
    value = seconds * 1e6
    if value >= 10_000:
        return f"{value / 1000:.1f}ms"
    return f"{value:.1f}us" if value < 100 else f"{value:.0f}us"


@dataclass
class Harness:
    """How blocks are timed.

    warmup_seconds
        Minimum warm-up of a side right before each of its blocks: after a NumPy block
        OpenBLAS's worker threads keep spinning for a while, and torch's OpenMP threads (or
        the reverse) lose the cores to them (what that costs is under "Protocol" in
        benchmarks/README.md).
    block_seconds
        Target length of the reference side's timed block (the others run as many epochs).
    repeats
        Rounds of A B C ...
    """

    warmup_seconds: float
    block_seconds: float
    repeats: int

    def timed_block(self, side, epochs) -> float:
        """Warm the side up, then time one block with the garbage collector paused; seconds
        per step."""
        t0 = time.perf_counter()
        side.warmup()
        while time.perf_counter() - t0 < self.warmup_seconds:
            side.warmup()
        side.sync()
        gc.collect()
        gc.disable()
        try:
            seconds = side.block(epochs)
        finally:
            gc.enable()
        return seconds / (epochs * side.steps_per_epoch)

    def calibrate(self, side, block_seconds=None) -> int:
        """Epochs per timed block so that ``side``'s block lasts about ``block_seconds``."""
        side.warmup()
        t = self.timed_block(side, 1) * side.steps_per_epoch
        return max(1, int(round((block_seconds or self.block_seconds) / max(t, 1e-9))))

    def interleaved(self, sides, epochs, repeats=None, log: Callable | None = None) -> dict:
        """``repeats`` rounds of A B C ...; returns name -> list of per-step seconds."""
        times = {s.name: [] for s in sides}
        repeats = repeats or self.repeats
        for r in range(repeats):
            for s in sides:
                times[s.name].append(self.timed_block(s, epochs))
            if log:
                log(f"    rep {r + 1}/{repeats}: " + "  ".join(
                    f"{k}={us(v[-1])}" for k, v in times.items()))
        return times
