"""Peak RSS of training one config, each side in a fresh subprocess.

The parent runs the command again with ``--rss-child <side>``; the child makes the data,
resets the kernel's high-water mark (Linux >= 4.0: writing 5 to ``/proc/self/clear_refs``),
trains, and prints its peak (``VmHWM``) as JSON. The children import only what their side
trains with (nnx for nnx, NumPy for the hand loop, torch for torch).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np

from .handwritten import HandMLP, run_batches, torch_mlp, torch_optimizer, torch_step
from .problems import CONFIGS, batch_bounds, one_hot, synthetic


def status_mib(field, default=None):
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB, or ``default``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return default


def reset_peak() -> bool:
    """Reset VmHWM so that the peak covers training only; False where the kernel cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib():
    peak = status_mib("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(kind, config_name, epochs):
    """Train ``config_name`` in this fresh process and print peak RSS (MiB) as JSON."""
    cfg = CONFIGS[config_name]
    X, y = synthetic(cfg.n_samples, cfg.sizes[0], cfg.sizes[-1])
    before = status_mib("VmRSS", float("nan"))
    peak_reset = reset_peak()
    bounds = batch_bounds(X.shape[0], cfg.batch)
    if kind == "nnx":
        import nnx

        net = nnx.Network(list(cfg.sizes), activation="relu", optimizer=nnx.optimizers.SGD(0.01),
                          seed=0)
        net.fit(X, y, epochs=epochs, batch_size=cfg.batch, shuffle=True)
    elif kind == "hand":
        rng = np.random.default_rng(0)
        params = [(rng.standard_normal((a, b), dtype=np.float32) * np.float32(math.sqrt(2 / a)),
                   np.zeros(b, np.float32)) for a, b in zip(cfg.sizes[:-1], cfg.sizes[1:])]
        mlp = HandMLP(np, params, cfg.sizes[-1] == 1, "sgd", 0.01)
        # the usual hand loop (and the lesson's): shuffled copies of X and Y every epoch
        run_batches(mlp.step, X, one_hot(y, cfg.sizes[-1]), bounds, epochs,
                    lambda: rng.permutation(X.shape[0]))
    elif kind == "torch":
        import torch
        from torch import nn

        model = torch_mlp(cfg.sizes)
        step = torch_step(model, torch_optimizer(model, "sgd"), nn.CrossEntropyLoss())
        Xt = torch.from_numpy(X)
        run_batches(step, Xt, torch.from_numpy(y), bounds, epochs,
                    lambda: torch.randperm(Xt.shape[0]))
    print(json.dumps({"kind": kind, "peak_mib": peak_mib(), "before_training_mib": before,
                      "data_mib": (X.nbytes + y.nbytes) / 2**20, "peak_reset": peak_reset}))


def run_memory(command, sides, log, config_name="large", epochs=2):
    """Peak RSS of ``sides`` (``"nnx"``, ``"hand"``, ``"torch"``) training ``config_name``,
    each in a fresh ``command --rss-child`` process; the smaller of two rounds each (noise is
    upward)."""
    out = {"config": config_name, "epochs": epochs, "runs": {}}
    for _ in range(2):
        for kind in sides:
            cmd = [sys.executable, str(command), "--rss-child", kind,
                   "--configs", config_name, "--rss-epochs", str(epochs)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env=os.environ.copy())
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            prev = out["runs"].get(kind)
            if prev is None or rec["peak_mib"] < prev["peak_mib"]:
                out["runs"][kind] = rec
    r = out["runs"]
    out["nnx/hand_peak"] = r["nnx"]["peak_mib"] / r["hand"]["peak_mib"]
    out["nnx/hand_increment"] = ((r["nnx"]["peak_mib"] - r["nnx"]["before_training_mib"])
                                 / (r["hand"]["peak_mib"] - r["hand"]["before_training_mib"]))
    for kind, rec in r.items():
        log(f"  {kind:<6} peak {rec['peak_mib']:.1f} MiB (before training "
            f"{rec['before_training_mib']:.1f} MiB, data {rec['data_mib']:.1f} MiB)")
    log(f"  nnx/hand peak RSS: {out['nnx/hand_peak']:.3f}; "
        f"training increment ratio {out['nnx/hand_increment']:.3f}")
    return out
