"""The targets, as data: each :class:`Target` names a quantity of a run's results, a
comparison and a bound; :func:`evaluate` turns them into the report's rows.

A target on a ratio of the raw step (``nnx.step``) is also evaluated through the public API
(``nnx.fit``) against the side that does the same per-epoch work (:func:`fit_counterpart`):
the loops that reorder the rows every epoch.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

from .harness import us
from .sides import fit_counterpart

OPS = {"<=": operator.le, ">=": operator.ge, ">": operator.gt}


def throughput_entry(results, config):
    entry = results.get("throughput", {}).get("configs", {}).get(config)
    return entry if isinstance(entry, dict) and "ratios" in entry else None


def ratio(results, config, opt, a, b):
    entry = throughput_entry(results, config)
    r = entry["ratios"].get(f"{opt}:{a}/{b}") if entry else None
    return None if r is None else r["median"]


def speedup(results, config, opt, a, b):
    r = ratio(results, config, opt, a, b)
    return None if r is None else 1 / r


def adam_overhead(results, config, opt, a, b):
    entry = throughput_entry(results, config)
    s = (entry.get("adam_overhead_s") or {}).get(a) if entry else None
    return None if s is None else s["median"]


def flop_fraction(results, config, opt, a, b):
    entry = throughput_entry(results, config)
    s = entry["step_s"].get(f"{opt}:{a}") if entry else None
    if s is None:
        return None
    return entry["flops_per_step"] / s["median"] / results["throughput"]["matmul_rate_flops"]


def peak_rss(results, config, opt, a, b):
    memory = results.get("memory")
    return memory["nnx/hand_peak"] if memory else None


def time_to_accuracy(results, config, opt, a, b):
    accuracy = results.get("accuracy") or {}
    return accuracy["sk/nnx"]["median"] if "sk/nnx" in accuracy else None


def three_decimals(value, reference) -> str:
    return f"{value:.3f}"


@dataclass(frozen=True)
class Quantity:
    """How to read a quantity (``read(results, config, opt, a, b)``, None when the run did
    not measure it), how a target on it reads, and how its value is shown."""

    read: Callable
    text: str
    shown: Callable = three_decimals


QUANTITIES = {
    "ratio": Quantity(ratio, "{a} / {b} {op} {bound}"),
    "speedup": Quantity(speedup, "{b} / {a} {op} {bound}"),
    "adam overhead": Quantity(adam_overhead, "Adam overhead {a} {op} torch foreach",
                              lambda value, reference: f"{us(value)} vs {us(reference)}"),
    "flop fraction": Quantity(flop_fraction, "nnx flop rate / matmul rate {op} {bound}"),
    "peak RSS": Quantity(peak_rss, "peak RSS nnx / hand {op} {bound}"),
    "time to accuracy": Quantity(time_to_accuracy, "time to 97%: sklearn / nnx {op} {bound}",
                                 lambda value, reference: f"{value:.2f}"),
}

#: where a target applies: nnx on NumPy on a CPU, or any CUDA run
PLATFORMS = {"cpu-numpy": "CPU", "gpu": "GPU"}


@dataclass(frozen=True)
class Target:
    """``quantity`` of side ``a`` (against ``b``) on ``config`` must satisfy ``op bound``;
    ``bound=None`` compares with the same quantity of side ``b``."""

    platform: str
    config: str
    quantity: str
    b: str | None = None
    op: str = "<="
    bound: float | None = None
    a: str = "nnx.step"
    optimizers: tuple = ("sgd", "adam")
    through_fit: bool = True
    label: str | None = None


TARGETS = [
    Target("cpu-numpy", "large", "ratio", "torch", "<=", 1.0),
    Target("cpu-numpy", "large", "ratio", "hand", "<=", 1.05),
    Target("cpu-numpy", "medium", "ratio", "hand", "<=", 1.15),
    Target("cpu-numpy", "medium", "speedup", "torch", ">=", 3.0),
    Target("cpu-numpy", "medium", "speedup", "sk32", ">=", 3.0),
    Target("cpu-numpy", "medium", "speedup", "sk64", ">=", 3.0),
    Target("cpu-numpy", "tiny", "ratio", "hand", "<=", 1.15),
    Target("cpu-numpy", "tiny", "speedup", "torch", ">=", 3.0),
    Target("cpu-numpy", "tiny", "speedup", "sk32", ">=", 3.0),
    Target("cpu-numpy", "tiny", "speedup", "sk64", ">=", 3.0),
    Target("cpu-numpy", "tiny", "adam overhead", "torch", optimizers=("adam",)),
    Target("cpu-numpy", "medium", "adam overhead", "torch", optimizers=("adam",)),
    Target("cpu-numpy", "large", "adam overhead", "torch", optimizers=("adam",)),
    Target("cpu-numpy", "large", "peak RSS", bound=1.25, optimizers=("sgd",),
           through_fit=False),
    Target("cpu-numpy", "digits", "time to accuracy", op=">", bound=1, optimizers=("adam",),
           through_fit=False),
    Target("gpu", "xlarge", "speedup", "torch", ">=", 0.9, through_fit=False,
           label="nnx samples/s / torch-cuda {op} {bound}"),
    Target("gpu", "xlarge", "flop fraction", op=">=", bound=0.6, through_fit=False),
]


def platform_of(results):
    """The platform whose targets a run is held to, or None (nnx on torch or
    array_api_strict on a CPU has none)."""
    if results.get("device", "cpu").startswith("cuda"):
        return "gpu"
    return "cpu-numpy" if results.get("backend") == "numpy" else None


def evaluate(results, targets=TARGETS) -> list:
    """``(config, optimizer, target, value, status)`` rows of the targets of the run's
    platform that it measured; one "not yet measured" row when it measured none of them."""
    platform = platform_of(results)
    mine = [t for t in targets if t.platform == platform]
    rows = []
    for t in mine:
        quantity = QUANTITIES[t.quantity]
        modes = [(t.a, t.b)]
        if t.through_fit:
            modes.append((t.a.replace("step", "fit"), fit_counterpart(t.b)))
        for opt in t.optimizers:
            for a, b in modes:
                value = quantity.read(results, t.config, opt, a, b)
                reference = (quantity.read(results, t.config, opt, b, None) if t.bound is None
                             else t.bound)
                if value is None or reference is None:
                    continue
                text = (t.label or quantity.text).format(a=a, b=b, op=t.op, bound=t.bound)
                met = OPS[t.op](value, reference)
                rows.append((t.config, opt, text, quantity.shown(value, reference),
                             "met" if met else "**missed**"))
    if mine and not rows:
        configs = ", ".join(dict.fromkeys(t.config for t in mine))
        rows.append((configs, "-", f"{PLATFORMS[platform]} targets", "not yet measured", "-"))
    return rows
