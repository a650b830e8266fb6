#!/usr/bin/env python
"""Training throughput of nnx side by side with PyTorch, scikit-learn and a hand-written step.

Run from the repository root::

    python benchmarks/train_throughput.py                       # CPU, numpy backend, everything
    python benchmarks/train_throughput.py --parts throughput --configs medium --repeats 7
    python benchmarks/train_throughput.py --backend torch --device cuda --configs medium,xlarge
    python benchmarks/train_throughput.py --backend cupy --device cuda --scaling-full

What it measures (see benchmarks/README.md for the method and the latest numbers):

``throughput``
    Per-step time of one MLP training step (forward, fused loss, backward, optimizer update)
    for every config and optimizer, on these sides, all float32 on the same data, the same
    architecture, batch size and learning rate:

    - ``nnx.step``  the raw ``net.step`` loop over the batches of one epoch;
    - ``nnx.fit``   ``Network.fit`` over a fixed number of epochs (per-step time = wall time /
      steps; includes what users pay per epoch: the shuffle ``take`` and the loss sync);
    - ``hand``      a plain hand-written NumPy (CPU) / CuPy (GPU) step, kept in this file;
    - ``torch``     eager PyTorch: ``nn.Sequential`` + ``torch.optim`` on the same device;
    - ``sk32`` / ``sk64``  scikit-learn ``MLPClassifier.fit(max_iter=E)`` on float32 / float64
      input, ``tol`` disabled so it runs exactly ``E`` epochs; per-step time = wall / steps
      (CPU runs only);
    - ``gemm``      the step's matrix products alone, at the step's shapes (a measured floor).

    Blocks run interleaved (A B C ... A B C ...) in one process, each preceded by its own
    warm-up (NumPy's OpenBLAS threads and torch's OpenMP threads fight over the cores when
    they alternate), ``--repeats`` times. Ratios are taken pair by pair within a repetition,
    then summarised as median (min-max).

``scaling``   step time against batch size and against width, nnx vs torch, with the floor.
``memory``    peak RSS of training the large config, nnx vs hand NumPy, each in a subprocess.
``accuracy``  wall-clock time to 97% test accuracy on scikit-learn's digits, nnx vs MLPClassifier.

OpenBLAS: a machine may set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, which can pick a
slower kernel for NumPy. Unless ``--keep-openblas-env`` is given, this script re-executes
itself once with both unset (for its own process only) and records what was set and which
kernel ran. Tests and CI never touch these variables.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

_OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_MARK = "NNX_BENCH_UNSET_OPENBLAS"


def _reexec_without_openblas_overrides() -> None:
    """Restart this process without the OpenBLAS overrides (OpenBLAS reads them at load time)."""
    if "--keep-openblas-env" in sys.argv or _REEXEC_MARK in os.environ:
        return
    found = {k: os.environ[k] for k in _OPENBLAS_OVERRIDES if k in os.environ}
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_OVERRIDES}
    env[_REEXEC_MARK] = json.dumps(found)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__":
    _reexec_without_openblas_overrides()

import numpy as np  # noqa: E402  (imported after the re-exec on purpose)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple
    batch: int
    n_samples: int
    data: str  # "moons" | "digits" | "synthetic"
    gpu_only: bool = False


CONFIGS = {
    "tiny": Config("tiny", (2, 16, 8, 4, 1), 32, 200, "moons"),
    "medium": Config("medium", (64, 64, 32, 10), 32, 1797, "digits"),
    "large": Config("large", (784, 512, 256, 10), 256, 20_000, "synthetic"),
    "xlarge": Config("xlarge", (1024, 4096, 4096, 10), 4096, 32_768, "synthetic", gpu_only=True),
}
LEARNING_RATE = {"sgd": 0.01, "adam": 1e-3}
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


@dataclass
class Problem:
    config: Config
    X: np.ndarray  # (n, in) float32, host
    y: np.ndarray  # (n,) int64 labels
    n_classes: int

    @property
    def bounds(self):
        n, b = self.X.shape[0], self.config.batch
        return [(s, min(s + b, n)) for s in range(0, n, b)]

    @property
    def binary(self) -> bool:
        return self.config.sizes[-1] == 1


def make_problem(cfg: Config) -> Problem:
    """The same host data for every side of a config (float32 features, integer labels)."""
    if cfg.data == "moons":
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=cfg.n_samples, noise=0.2, random_state=42)
        return Problem(cfg, X.astype(np.float32), y.astype(np.int64), 2)
    if cfg.data == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return Problem(cfg, (X / 16.0).astype(np.float32), y.astype(np.int64), 10)
    X, y = synthetic(cfg.n_samples, cfg.sizes[0], cfg.sizes[-1])
    return Problem(cfg, X, y, cfg.sizes[-1])


def synthetic(n, n_features, n_classes, seed=0):
    """Gaussian class blobs, drawn directly in float32 (no float64 copy of the data)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n).astype(np.int64)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    X *= 2.0
    X += centers[y]
    return X, y


def one_hot(y, k):
    if k == 1:
        return y.reshape(-1, 1).astype(np.float32)
    out = np.zeros((y.shape[0], k), dtype=np.float32)
    out[np.arange(y.shape[0]), y] = 1.0
    return out


# --------------------------------------------------------------------------- hand reference


class HandMLP:
    """A plain hand-written MLP training step in NumPy or CuPy (``xp`` is either module).

    ReLU hidden layers, logits out, sigmoid/softmax cross-entropy fused with its gradient,
    SGD or Adam applied in place; what a careful person writes without a framework. It is the
    yardstick of the array-API layer's overhead, so it does nothing clever beyond that.
    """

    def __init__(self, xp, params, binary, optimizer, lr):
        self.xp = xp
        self.params = [(xp.asarray(W), xp.asarray(b)) for W, b in params]
        self.binary = binary
        self.optimizer = optimizer
        self.lr = lr
        self.t = 0
        if optimizer == "adam":
            self.m = [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in self.params]
            self.v = [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in self.params]

    def step(self, x, y):
        xp = self.xp
        acts = [x]
        a = x
        last = len(self.params) - 1
        for i, (W, b) in enumerate(self.params):
            z = a @ W + b
            a = xp.maximum(z, 0) if i < last else z
            acts.append(a)
        z = acts[-1]
        n = z.shape[0]
        if self.binary:
            e = xp.exp(-xp.abs(z))
            loss = (xp.maximum(z, 0) - z * y + xp.log1p(e)).mean()
            p = xp.where(z >= 0, 1 / (1 + e), e / (1 + e))
            dz = (p - y) / n
        else:
            s = z - z.max(axis=1, keepdims=True)
            e = xp.exp(s)
            total = e.sum(axis=1, keepdims=True)
            loss = (xp.log(total).sum() - (y * s).sum()) / n
            dz = (e / total - y) / n
        self.t += 1
        for i in range(last, -1, -1):
            W, b = self.params[i]
            a_prev = acts[i]
            dW = a_prev.T @ dz
            db = dz.sum(axis=0)
            if i > 0:
                dz = (dz @ W.T) * (a_prev > 0)
            self._update(i, W, b, dW, db)
        return loss

    def _update(self, i, W, b, dW, db):
        if self.optimizer == "sgd":
            W -= self.lr * dW
            b -= self.lr * db
            return
        b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
        c1 = 1 - b1**self.t
        c2 = math.sqrt(1 - b2**self.t)
        (mW, mb), (vW, vb) = self.m[i], self.v[i]
        for p, g, m, v in ((W, dW, mW, vW), (b, db, mb, vb)):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= (self.lr / c1) * m / (self.xp.sqrt(v) / c2 + eps)

    def host_params(self):
        return self.params


# --------------------------------------------------------------------------- sides


class Side:
    """One contestant: ``warmup()`` then ``block(epochs)`` returns seconds for that many epochs."""

    name = "side"
    steps_per_epoch = 0

    def warmup(self):
        self.block(1)

    def block(self, epochs) -> float:
        raise NotImplementedError("abstract method: each side times its own block")

    def sync(self):
        pass

    def _reorder_rows(self, shuffle):
        """``shuffle=True`` makes this the ``<name>.fit`` side: rows reordered every epoch."""
        self.shuffle = shuffle
        if shuffle:
            self.name = f"{self.name}.fit"

    def _time_steps(self, step, X, Y, epochs, permutation=None) -> float:
        """Seconds for ``epochs`` passes of ``step`` over the batches, synchronised at the end.

        With ``permutation`` (a callable returning a new row order), every epoch first puts
        the rows in that order, ``X[perm]``: what a training loop written by hand does.
        """
        bounds = self.bounds
        t0 = time.perf_counter()
        for _ in range(epochs):
            Xe, Ye = X, Y
            if permutation is not None:
                perm = permutation()
                Xe, Ye = X[perm], Y[perm]
            for s, e in bounds:
                step(Xe[s:e, ...], Ye[s:e, ...])
        self.sync()
        return time.perf_counter() - t0


def _nnx_optimizer(name):
    import nnx

    lr = LEARNING_RATE[name]
    if name == "sgd":
        return nnx.optimizers.SGD(learning_rate=lr)
    return nnx.optimizers.Adam(learning_rate=lr, beta_1=ADAM["beta1"], beta_2=ADAM["beta2"],
                               epsilon=ADAM["eps"])


def adam_available() -> bool:
    import nnx

    return hasattr(nnx.optimizers, "Adam")


class NnxStep(Side):
    """The raw training step: ``net.step`` over the batches, data already on the device."""

    name = "nnx.step"

    def __init__(self, prob, optimizer, backend, device):
        import nnx
        from nnx.backend import synchronize

        self.net = nnx.Network(list(prob.config.sizes), activation="relu",
                               optimizer=_nnx_optimizer(optimizer), backend=backend,
                               device=device, seed=0)
        self.Xd, self.Yd = self.net.prepare(prob.X, prob.y)
        self.bounds = prob.bounds
        self.steps_per_epoch = len(self.bounds)
        self._sync = lambda: synchronize(self.net.ctx)

    def sync(self):
        self._sync()

    def block(self, epochs):
        return self._time_steps(self.net.step, self.Xd, self.Yd, epochs)


class NnxFit(NnxStep):
    """The public API: ``Network.fit(X, y, epochs=E)`` on host NumPy data, shuffling each epoch."""

    name = "nnx.fit"

    def __init__(self, prob, optimizer, backend, device):
        super().__init__(prob, optimizer, backend, device)
        self.X, self.y, self.batch = prob.X, prob.y, prob.config.batch

    def warmup(self):
        n = min(self.X.shape[0], 4 * self.batch)
        self.net.fit(self.X[:n], self.y[:n], epochs=1, batch_size=self.batch)

    def block(self, epochs):
        t0 = time.perf_counter()
        self.net.fit(self.X, self.y, epochs=epochs, batch_size=self.batch, shuffle=True)
        self._sync()
        return time.perf_counter() - t0


def initial_params(prob):
    """nnx's initial weights (seed 0) as host float32 arrays, so hand and torch start equal."""
    import nnx

    net = nnx.Network(list(prob.config.sizes), activation="relu", seed=0)
    p = {k: nnx.to_numpy(v) for k, v in net.parameters().items()}
    n_layers = len(prob.config.sizes) - 1
    return [(p[f"layers.{i}.W"].copy(), p[f"layers.{i}.b"].copy()) for i in range(n_layers)]


class Hand(Side):
    """The hand-written step; ``shuffle=True`` (side ``hand.fit``) reorders the rows every
    epoch, like ``nnx.fit``."""

    name = "hand"

    def __init__(self, prob, optimizer, xp, shuffle=False):
        self.xp = xp
        self._reorder_rows(shuffle)
        self.mlp = HandMLP(xp, initial_params(prob), prob.binary, optimizer,
                           LEARNING_RATE[optimizer])
        self.X = xp.asarray(prob.X)
        self.Y = xp.asarray(one_hot(prob.y, prob.config.sizes[-1]))
        self.bounds = prob.bounds
        self.steps_per_epoch = len(self.bounds)

    def sync(self):
        if self.xp.__name__ == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def block(self, epochs):
        n = self.X.shape[0]
        permutation = (lambda: self.xp.random.permutation(n)) if self.shuffle else None
        return self._time_steps(self.mlp.step, self.X, self.Y, epochs, permutation)


class Torch(Side):
    """Eager PyTorch: nn.Sequential + torch.optim (Adam with ``foreach=True``);
    ``shuffle=True`` (side ``torch.fit``) reorders the rows every epoch with
    ``torch.randperm``, like ``nnx.fit``."""

    name = "torch"

    def __init__(self, prob, optimizer, device, shuffle=False):
        import torch
        from torch import nn

        self.torch = torch
        self._reorder_rows(shuffle)
        self.device = torch.device(device)
        sizes = prob.config.sizes
        mods = []
        for i, (W, b) in enumerate(initial_params(prob)):
            lin = nn.Linear(sizes[i], sizes[i + 1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.model = nn.Sequential(*mods).to(self.device)
        lr = LEARNING_RATE[optimizer]
        if optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=lr,
                                        betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"],
                                        foreach=True)
        self.X = torch.from_numpy(prob.X).to(self.device)
        if prob.binary:
            self.loss_fn = nn.BCEWithLogitsLoss()
            self.Y = torch.from_numpy(prob.y.astype(np.float32).reshape(-1, 1)).to(self.device)
        else:
            self.loss_fn = nn.CrossEntropyLoss()
            self.Y = torch.from_numpy(prob.y).to(self.device)
        self.bounds = prob.bounds
        self.steps_per_epoch = len(self.bounds)

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def one_step(self, xb, yb):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        return loss

    def block(self, epochs):
        n, torch = self.X.shape[0], self.torch
        permutation = ((lambda: torch.randperm(n, device=self.device)) if self.shuffle
                       else None)
        return self._time_steps(self.one_step, self.X, self.Y, epochs, permutation)


class Sklearn(Side):
    """``MLPClassifier.fit`` with ``max_iter=E`` epochs (tol disabled, no early stopping).

    sklearn has no per-step entry point; ``fit`` over a fixed number of epochs of fixed-size
    batches is its training loop, so per-step time = fit wall time / (E * batches per epoch).
    It includes sklearn's per-fit validation and initialisation, amortised over E epochs.
    """

    def __init__(self, prob, optimizer, dtype):
        self.name = "sk32" if dtype == np.float32 else "sk64"
        self.X = prob.X.astype(dtype)
        self.y = prob.y
        self.optimizer = optimizer
        self.hidden = tuple(prob.config.sizes[1:-1])
        self.batch = prob.config.batch
        self.steps_per_epoch = len(prob.bounds)

    def _clf(self, epochs):
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=self.hidden, activation="relu", solver=self.optimizer,
            alpha=0.0, batch_size=self.batch, learning_rate="constant",
            learning_rate_init=LEARNING_RATE[self.optimizer], momentum=0.0,
            nesterovs_momentum=False, beta_1=ADAM["beta1"], beta_2=ADAM["beta2"],
            epsilon=ADAM["eps"], shuffle=True, max_iter=epochs, tol=0.0,
            n_iter_no_change=epochs + 1, early_stopping=False, random_state=0,
        )

    def _fit(self, X, y, epochs):
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._clf(epochs).fit(X, y)

    def warmup(self):
        n = min(self.X.shape[0], 4 * self.batch)
        self._fit(self.X[:n], self.y[:n], 1)

    def block(self, epochs):
        t0 = time.perf_counter()
        self._fit(self.X, self.y, epochs)
        return time.perf_counter() - t0


class Gemm(Side):
    """The step's matrix products alone, at its shapes: forward ``x W``, ``dW = a^T dz`` and
    ``dx = dz W^T`` (skipped for the first layer, as every contestant skips it)."""

    name = "gemm"

    def __init__(self, prob, ctx):
        from nnx.backend import synchronize

        rng = np.random.default_rng(1)
        sizes, B = prob.config.sizes, prob.config.batch
        self.layers = []
        for i in range(len(sizes) - 1):
            mk = lambda *s: ctx.asarray(rng.standard_normal(s, dtype=np.float32))  # noqa: E731
            self.layers.append((mk(B, sizes[i]), mk(sizes[i], sizes[i + 1]),
                                mk(B, sizes[i + 1]), i > 0))
        self.steps_per_epoch = len(prob.bounds)
        self._sync = lambda: synchronize(ctx)

    def sync(self):
        self._sync()

    def block(self, epochs):
        layers = self.layers
        t0 = time.perf_counter()
        for _ in range(epochs * self.steps_per_epoch):
            for x, W, dz, need_dx in layers:
                x @ W
                x.T @ dz
                if need_dx:
                    dz @ W.T
        self._sync()
        return time.perf_counter() - t0


def step_flops(sizes, batch):
    """The issue's floor count: 6 B sum(in * out) (forward, dW and dx of every layer)."""
    return 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_rate(ctx, n=None, repeats=5):
    """Float32 matmul rate (flop/s) of ``ctx``'s namespace on an n x n x n product."""
    from nnx.backend import synchronize

    gpu = _is_gpu(ctx)
    n = n or (8192 if gpu else 1024)
    rng = np.random.default_rng(2)
    a = ctx.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = ctx.asarray(rng.standard_normal((n, n), dtype=np.float32))
    a @ b
    synchronize(ctx)
    inner = 10 if gpu else 3
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        synchronize(ctx)
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2.0 * n**3 / best


def _is_gpu(ctx):
    return ctx.name == "cupy" or (ctx.name == "torch" and ctx.device.type == "cuda")


# --------------------------------------------------------------------------- statistics


def summary(values):
    v = sorted(values)
    return {"median": float(np.median(v)), "min": float(v[0]), "max": float(v[-1]), "n": len(v),
            "values": [float(x) for x in values]}


WARMUP_SECONDS = [0.05]


def timed_block(side, epochs):
    """Warm the side up, then time one block with the garbage collector paused (as timeit).

    The warm-up runs for at least ``--warmup-seconds``: after a NumPy block OpenBLAS's worker
    threads keep spinning for a while, and torch's OpenMP threads (or the reverse) lose the
    cores to them; a tiny torch step ran 2x slower right after a NumPy block on 2 cores.
    """
    t0 = time.perf_counter()
    side.warmup()
    while time.perf_counter() - t0 < WARMUP_SECONDS[0]:
        side.warmup()
    side.sync()
    gc.collect()
    gc.disable()
    try:
        seconds = side.block(epochs)
    finally:
        gc.enable()
    return seconds / (epochs * side.steps_per_epoch)


def interleaved(sides, epochs, repeats, log=None):
    """Run ``repeats`` rounds of A B C ...; returns name -> list of per-step seconds."""
    times = {s.name: [] for s in sides}
    for r in range(repeats):
        for s in sides:
            times[s.name].append(timed_block(s, epochs[s.name] if isinstance(epochs, dict)
                                             else epochs))
        if log:
            log(f"    rep {r + 1}/{repeats}: " + "  ".join(
                f"{k}={_us(v[-1])}" for k, v in times.items()))
    return times


def pair_ratios(times, a, b):
    """Median (min-max) of t_a / t_b over repetitions, paired within each repetition."""
    if a not in times or b not in times:
        return None
    return summary([x / y for x, y in zip(times[a], times[b])])


def _us(seconds):
    us = seconds * 1e6
    if us >= 10_000:
        return f"{us / 1000:.1f}ms"
    return f"{us:.1f}us" if us < 100 else f"{us:.0f}us"


# --------------------------------------------------------------------------- parts


def calibrate_epochs(side, block_seconds, steps_per_epoch):
    """Epochs per timed block so that the fastest side's block lasts about ``block_seconds``."""
    side.warmup()
    t = timed_block(side, 1) * steps_per_epoch
    return max(1, int(round(block_seconds / max(t, 1e-9))))


def run_throughput(args, ctx_info, log):
    from nnx.backend import get_context

    nnx_ctx = get_context(args.backend, args.device)
    gpu = _is_gpu(nnx_ctx)
    hand_xp = np
    if gpu:
        try:
            import cupy as hand_xp  # noqa: F811
        except ImportError:
            hand_xp = None
    torch_device = _torch_device(args)
    optimizers = [o for o in args.optimizer if o != "adam" or adam_available()]
    pending = [o for o in args.optimizer if o not in optimizers]
    if pending:
        log(f"  nnx.optimizers.Adam is not there yet: Adam pending ({pending})")
    rate = matmul_rate(nnx_ctx)
    log(f"  matmul rate of {args.backend}: {rate / 1e9:.1f} GFLOP/s")
    results = {"matmul_rate_flops": rate, "adam_pending": bool(pending), "configs": {}}
    for name in args.configs:
        cfg = CONFIGS[name]
        if cfg.gpu_only and not gpu and not args.allow_cpu_xlarge:
            log(f"  {name}: GPU only, skipped on the CPU (not yet measured)")
            results["configs"][name] = {"skipped": "GPU only; not yet measured"}
            continue
        prob = make_problem(cfg)
        sides = []
        for opt in optimizers:
            group = [NnxStep(prob, opt, args.backend, args.device),
                     NnxFit(prob, opt, args.backend, args.device)]
            if hand_xp is not None:
                group += [Hand(prob, opt, hand_xp), Hand(prob, opt, hand_xp, shuffle=True)]
            if torch_device is not None:
                group += [Torch(prob, opt, torch_device),
                          Torch(prob, opt, torch_device, shuffle=True)]
            if not gpu and not args.no_sklearn:
                group += [Sklearn(prob, opt, np.float32), Sklearn(prob, opt, np.float64)]
            for s in group:
                s.name = f"{opt}:{s.name}"
            sides += group
        gemm = Gemm(prob, nnx_ctx)
        sides.append(gemm)
        ref = next(s for s in sides if s.name.endswith(":nnx.step"))
        epochs = calibrate_epochs(ref, args.block_seconds, ref.steps_per_epoch)
        log(f"  {name}: {cfg.sizes} batch {cfg.batch}, {len(prob.bounds)} steps/epoch, "
            f"{epochs} epoch(s) per block, {args.repeats} repeats, sides: "
            + ", ".join(s.name for s in sides))
        times = interleaved(sides, epochs, args.repeats, log if args.verbose else None)
        flops = step_flops(cfg.sizes, cfg.batch)
        entry = {
            "sizes": list(cfg.sizes), "batch": cfg.batch, "n_samples": prob.X.shape[0],
            "steps_per_epoch": len(prob.bounds), "epochs_per_block": epochs,
            "flops_per_step": flops, "floor_at_peak_s": flops / rate,
            "step_s": {k: summary(v) for k, v in times.items()},
            "ratios": {}, "samples_per_s": {},
        }
        for k, v in times.items():
            entry["samples_per_s"][k] = cfg.batch / float(np.median(v))
        for opt in optimizers:
            for a in ("nnx.step", "nnx.fit"):
                # like for like: the raw step against the raw loops, fit (which reorders the
                # rows every epoch) against the loops that do too; sklearn's fit shuffles
                refs = ("hand", "torch") if a == "nnx.step" else ("hand.fit", "torch.fit")
                for b in refs + ("sk32", "sk64"):
                    r = pair_ratios(times, f"{opt}:{a}", f"{opt}:{b}")
                    if r is not None:
                        entry["ratios"][f"{opt}:{a}/{b}"] = r
                r = pair_ratios(times, f"{opt}:{a}", "gemm")
                entry["ratios"][f"{opt}:{a}/gemm"] = r
            r = pair_ratios(times, f"{opt}:torch", "gemm")
            if r is not None:
                entry["ratios"][f"{opt}:torch/gemm"] = r
        if "adam" in optimizers and "sgd" in optimizers:
            entry["adam_overhead_s"] = {}
            for side in ("nnx.step", "nnx.fit", "hand", "hand.fit", "torch", "torch.fit",
                         "sk32", "sk64"):
                a, s = times.get(f"adam:{side}"), times.get(f"sgd:{side}")
                if a and s:
                    entry["adam_overhead_s"][side] = summary([x - y for x, y in zip(a, s)])
        if gpu and args.count_launches:
            entry["launches_per_step"] = count_launches(prob, optimizers[0], args, torch_device)
        results["configs"][name] = entry
        log(format_config_lines(name, entry))
    return results


def _torch_device(args):
    try:
        import torch
    except ImportError:
        return None
    dev = str(args.device) if args.device is not None else "cpu"
    if args.backend == "cupy":  # CuPy takes an int or "cuda:N"; torch eager runs beside it
        dev = dev if dev.startswith("cuda") else ("cuda" if dev == "cpu" else f"cuda:{dev}")
    elif not dev.startswith("cuda"):  # numpy, array_api_strict's fake devices: torch on CPU
        dev = "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        return None
    return dev


def count_launches(prob, optimizer, args, torch_device):
    """CUDA kernels launched per step, counted with torch's profiler (torch-based sides only)."""
    out = {}
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return {"error": "torch profiler not available"}
    candidates = {"torch": lambda: Torch(prob, optimizer, torch_device)}
    if args.backend == "torch":
        candidates["nnx.step"] = lambda: NnxStep(prob, optimizer, args.backend, args.device)
    for name, make in candidates.items():
        side = make()
        side.warmup()
        side.sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            side.block(1)
            side.sync()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        out[name] = len(kernels) / side.steps_per_epoch
    if args.backend == "cupy":
        out["nnx.step"] = "not counted (CuPy launches are invisible to torch's profiler)"
    return out


def format_config_lines(name, entry):
    lines = [f"  {name} results (median per step):"]
    for k, v in entry["step_s"].items():
        lines.append(f"    {k:<14} {_us(v['median']):>9} ({_us(v['min'])}-{_us(v['max'])})")
    for k, v in entry["ratios"].items():
        if v is not None:
            lines.append(f"    {k:<22} {v['median']:.3f} ({v['min']:.3f}-{v['max']:.3f})")
    return "\n".join(lines)


# ----------------------------------------------------------------- scaling


def run_scaling(args, log):
    """Step time against batch size and against width, nnx vs torch, with the GEMM floor."""
    from nnx.backend import get_context

    ctx = get_context(args.backend, args.device)
    gpu = _is_gpu(ctx)
    full = args.scaling_full or gpu
    batches = [32, 128, 512, 2048, 8192] if full else [32, 128, 512, 2048]
    widths = [64, 256, 1024, 4096] if full else [64, 256, 1024]
    if full:
        batches = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
        widths = [64, 128, 256, 512, 1024, 2048, 4096]
    torch_device = _torch_device(args)
    rate = matmul_rate(ctx)
    repeats = max(3, min(args.repeats, 5))
    points = []
    sweeps = [("batch", b, (784, 512, 256, 10), b) for b in batches]
    sweeps += [("width", w, (784, w, w, 10), 256) for w in widths]
    for sweep, x, sizes, batch in sweeps:
        cfg = Config(f"{sweep}={x}", sizes, batch, batch * 4, "synthetic")
        prob = make_problem(cfg)
        sides = [NnxStep(prob, "sgd", args.backend, args.device)]
        if torch_device is not None:
            sides.append(Torch(prob, "sgd", torch_device))
        sides.append(Gemm(prob, ctx))
        epochs = calibrate_epochs(sides[0], args.block_seconds / 2, sides[0].steps_per_epoch)
        times = interleaved(sides, epochs, repeats)
        flops = step_flops(sizes, batch)
        point = {"sweep": sweep, "x": x, "sizes": list(sizes), "batch": batch,
                 "floor_at_peak_s": flops / rate,
                 "step_s": {k: summary(v) for k, v in times.items()},
                 "nnx/torch": pair_ratios(times, "nnx.step", "torch"),
                 "nnx/gemm": pair_ratios(times, "nnx.step", "gemm")}
        points.append(point)
        t = point["step_s"]
        log(f"  {sweep:>5}={x:<5} nnx {_us(t['nnx.step']['median']):>9}  "
            + (f"torch {_us(t['torch']['median']):>9}  " if "torch" in t else "")
            + f"gemm {_us(t['gemm']['median']):>9}  floor {_us(flops / rate):>9}")
    return {"matmul_rate_flops": rate, "full": full, "points": points}


def plot_scaling(scaling, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, xlabel in ((axes[0], "batch", "batch size (784-512-256-10)"),
                              (axes[1], "width", "hidden width w (784-w-w-10, batch 256)")):
        pts = [p for p in scaling["points"] if p["sweep"] == sweep]
        xs = [p["x"] for p in pts]
        for key, style, label in (("nnx.step", "o-", "nnx"), ("torch", "s-", "torch eager"),
                                  ("gemm", "--", "GEMM only (measured)")):
            if all(key in p["step_s"] for p in pts):
                ax.plot(xs, [p["step_s"][key]["median"] * 1e3 for p in pts], style, label=label)
        ax.plot(xs, [p["floor_at_peak_s"] * 1e3 for p in pts], ":", color="gray",
                label="6B·Σin·out at peak matmul rate")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("step time (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------- memory


def _rss_child(kind, config_name, epochs):
    """Train ``config_name`` in this fresh process and print peak RSS (MiB) as JSON."""
    cfg = CONFIGS[config_name]
    X, y = synthetic(cfg.n_samples, cfg.sizes[0], cfg.sizes[-1])
    before = _rss_now()
    _reset_peak()
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
        Y = one_hot(y, cfg.sizes[-1])
        n = X.shape[0]
        for _ in range(epochs):
            # the usual hand loop (and the lesson's): shuffle copies of X and Y per epoch
            perm = rng.permutation(n)
            Xs, Ys = X[perm], Y[perm]
            for s in range(0, n, cfg.batch):
                mlp.step(Xs[s:s + cfg.batch], Ys[s:s + cfg.batch])
    elif kind == "torch":
        import torch
        from torch import nn

        sizes = cfg.sizes
        mods = []
        for i in range(len(sizes) - 1):
            mods.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        model = nn.Sequential(*mods)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(epochs):
            perm = torch.randperm(Xt.shape[0])
            Xs, ys = Xt[perm], yt[perm]
            for s in range(0, Xt.shape[0], cfg.batch):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(Xs[s:s + cfg.batch]), ys[s:s + cfg.batch]).backward()
                opt.step()
    peak = _peak_rss()
    print(json.dumps({"kind": kind, "peak_mib": peak, "before_training_mib": before,
                      "data_mib": (X.nbytes + y.nbytes) / 2**20,
                      "peak_reset": _PEAK_RESET[0]}))


_PEAK_RESET = [False]


def _rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM, so the peak covers training only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _PEAK_RESET[0] = True
    except OSError:
        _PEAK_RESET[0] = False


def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_memory(args, log, config_name="large", epochs=2):
    out = {"config": config_name, "epochs": epochs, "runs": {}}
    kinds = ["nnx", "hand"] + (["torch"] if _torch_device(args) is not None else [])
    for _ in range(2):  # two rounds, keep the smaller peak of each (noise is upward)
        for kind in kinds:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", kind,
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


# ----------------------------------------------------------------- time to accuracy


def run_accuracy(args, log, target=0.97, max_epochs=300, seeds=(0, 1, 2, 3, 4)):
    """Wall-clock from construction to >= ``target`` test accuracy on digits (75/25 split).

    Both train 64-64-32-10 (ReLU) with batch 32 and the same optimizer, alpha 0, and check the
    test accuracy after every epoch (nnx: a callback; sklearn: ``partial_fit`` + ``score``,
    its incremental API). ``sk-oracle`` is ``fit(max_iter=k)`` told the epoch count k that
    sklearn needed, a lower bound no real user gets.
    """
    import nnx
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    opt = "adam" if adam_available() else "sgd"
    lr = 1e-3 if opt == "adam" else 0.05
    momentum = 0.0 if opt == "adam" else 0.9

    class StopAt(nnx.callbacks.Callback):
        def __init__(self):
            self.epochs = None

        def on_epoch_end(self, epoch, logs=None):
            if self.network.score(Xte, yte) >= target:
                self.epochs = epoch + 1
                self.network.stop_training = True

    def nnx_run(seed):
        t0 = time.perf_counter()
        o = (nnx.optimizers.Adam(learning_rate=lr) if opt == "adam"
             else nnx.optimizers.SGD(learning_rate=lr, momentum=momentum))
        net = nnx.Network([64, 64, 32, 10], activation="relu", optimizer=o, seed=seed,
                          backend=args.backend, device=args.device)
        cb = StopAt()
        net.fit(Xtr, ytr, epochs=max_epochs, batch_size=32, callbacks=[cb])
        return time.perf_counter() - t0, cb.epochs

    def sk_clf(seed, max_iter=1):
        return MLPClassifier(hidden_layer_sizes=(64, 32), solver=opt, alpha=0.0, batch_size=32,
                             learning_rate_init=lr, momentum=momentum, nesterovs_momentum=False,
                             max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter + 1,
                             random_state=seed, shuffle=True)

    def sk_run(seed):
        t0 = time.perf_counter()
        clf = sk_clf(seed)
        classes = np.unique(ytr)
        for epoch in range(max_epochs):
            clf.partial_fit(Xtr, ytr, classes=classes)
            if clf.score(Xte, yte) >= target:
                return time.perf_counter() - t0, epoch + 1
        return time.perf_counter() - t0, None

    def sk_oracle(seed, k):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = sk_clf(seed, max_iter=k).fit(Xtr, ytr)
        return time.perf_counter() - t0, clf.score(Xte, yte)

    rows = []
    nnx_run(0), sk_run(0)  # warm-up
    for seed in seeds:
        tn, en = nnx_run(seed)
        ts, es = sk_run(seed)
        to, acc_o = sk_oracle(seed, es) if es else (None, None)
        rows.append({"seed": seed, "nnx_s": tn, "nnx_epochs": en, "sk_s": ts, "sk_epochs": es,
                     "sk_oracle_s": to, "sk_oracle_acc": acc_o})
        log(f"  seed {seed}: nnx {tn:.3f}s ({en} epochs)  sklearn {ts:.3f}s ({es} epochs)"
            + (f"  sklearn fit(max_iter={es}) {to:.3f}s" if to else ""))
    ok = [r for r in rows if r["nnx_epochs"] and r["sk_epochs"]]
    out = {"optimizer": opt, "learning_rate": lr, "momentum": momentum, "target": target,
           "rows": rows}
    if ok:
        out["nnx_s"] = summary([r["nnx_s"] for r in ok])
        out["sk_s"] = summary([r["sk_s"] for r in ok])
        out["sk_oracle_s"] = summary([r["sk_oracle_s"] for r in ok])
        out["sk/nnx"] = summary([r["sk_s"] / r["nnx_s"] for r in ok])
        out["sk_oracle/nnx"] = summary([r["sk_oracle_s"] / r["nnx_s"] for r in ok])
        out["nnx_epochs"] = summary([r["nnx_epochs"] for r in ok])
        out["sk_epochs"] = summary([r["sk_epochs"] for r in ok])
    return out


# ----------------------------------------------------------------- environment


def environment(args):
    import threadpoolctl

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_start": os.getloadavg(),
        "openblas_env_unset": json.loads(os.environ.get(_REEXEC_MARK, "null")),
        "openblas_env_now": {k: os.environ.get(k) for k in _OPENBLAS_OVERRIDES},
        "threads_cap": args.threads,
        "versions": {},
    }
    for mod in ("numpy", "torch", "sklearn", "array_api_compat", "array_api_strict", "cupy",
                "threadpoolctl", "nnx"):
        try:
            info["versions"][mod] = __import__(mod).__version__
        except Exception:  # not installed (or no GPU for cupy)
            info["versions"][mod] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_parallel"] = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()
                                  if "MKL" in ln or "OpenMP" in ln or "backend" in ln]
        if torch.cuda.is_available():
            info["gpu"] = {"name": torch.cuda.get_device_name(0),
                           "cuda_runtime": torch.version.cuda}
    except ImportError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0:
            info.setdefault("gpu", {})["nvidia_smi"] = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    info["threadpools"] = [
        {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                               "architecture", "threading_layer", "prefix")}
        for p in threadpoolctl.threadpool_info()
    ]
    blas = [p for p in info["threadpools"] if p["internal_api"] == "openblas"]
    info["numpy_blas_kernel"] = blas[0]["architecture"] if blas else None
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ----------------------------------------------------------------- markdown


def _fmt(s):
    if s is None:
        return "–"
    return f"{_us(s['median'])} ({_us(s['min'])}–{_us(s['max'])})"


def _fmt_ratio(r, invert=False):
    if r is None:
        return "–"
    if invert:
        return f"{1 / r['median']:.2f}x ({1 / r['max']:.2f}–{1 / r['min']:.2f})"
    return f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"


TARGETS = [
    # (config, numerator, denominator, bound, kind) ; kind "le": ratio <= bound, "ge": 1/ratio >= bound
    ("large", "nnx.step", "torch", 1.0, "le"),
    ("large", "nnx.step", "hand", 1.05, "le"),
    ("medium", "nnx.step", "hand", 1.15, "le"),
    ("medium", "nnx.step", "torch", 3.0, "ge"),
    ("medium", "nnx.step", "sk32", 3.0, "ge"),
    ("medium", "nnx.step", "sk64", 3.0, "ge"),
    ("tiny", "nnx.step", "hand", 1.15, "le"),
    ("tiny", "nnx.step", "torch", 3.0, "ge"),
    ("tiny", "nnx.step", "sk32", 3.0, "ge"),
    ("tiny", "nnx.step", "sk64", 3.0, "ge"),
]


def _fit_side(side):
    """The side ``nnx.fit`` is compared with: the shuffling variant of hand and torch."""
    return side + ".fit" if side in ("hand", "torch") else side


def target_rows(results):
    rows = []
    thr = results.get("throughput", {}).get("configs", {})
    if results.get("device", "cpu").startswith("cuda"):
        return gpu_target_rows(results, thr)
    if results.get("backend") != "numpy":
        return rows  # the CPU targets are stated for nnx on NumPy
    for cfg, a, b, bound, kind in TARGETS:
        entry = thr.get(cfg)
        if not entry or "ratios" not in entry:
            continue
        for opt in ("sgd", "adam"):
            for mode, ref in ((a, b), (a.replace("step", "fit"), _fit_side(b))):
                r = entry["ratios"].get(f"{opt}:{mode}/{ref}")
                if r is None:
                    continue
                value = r["median"] if kind == "le" else 1 / r["median"]
                ok = value <= bound if kind == "le" else value >= bound
                text = (f"{mode} / {ref} <= {bound}" if kind == "le"
                        else f"{ref} / {mode} >= {bound}")
                rows.append((cfg, opt, text, f"{value:.3f}", "met" if ok else "**missed**"))
    for cfg, entry in thr.items():
        ov = entry.get("adam_overhead_s") if isinstance(entry, dict) else None
        if ov and "nnx.step" in ov and "torch" in ov:
            for mode in ("nnx.step", "nnx.fit"):
                mine = ov[mode]["median"]
                theirs = ov.get(_fit_side("torch") if mode == "nnx.fit" else "torch",
                                ov["torch"])["median"]
                rows.append((cfg, "adam", f"Adam overhead {mode} <= torch foreach",
                             f"{_us(mine)} vs {_us(theirs)}",
                             "met" if mine <= theirs else "**missed**"))
    mem = results.get("memory")
    if mem:
        rows.append(("large", "sgd", "peak RSS nnx / hand <= 1.25", f"{mem['nnx/hand_peak']:.3f}",
                     "met" if mem["nnx/hand_peak"] <= 1.25 else "**missed**"))
    acc = results.get("accuracy")
    if acc and "sk/nnx" in acc:
        v = acc["sk/nnx"]["median"]
        rows.append(("digits", acc["optimizer"], "time to 97%: sklearn / nnx > 1", f"{v:.2f}",
                     "met" if v > 1 else "**missed**"))
    return rows


def gpu_target_rows(results, thr):
    """xlarge: >= 0.9x torch-cuda samples/s and >= 60% of the measured fp32 matmul rate."""
    rows = []
    e = thr.get("xlarge")
    if not e or "ratios" not in e:
        return [("xlarge", "-", "GPU targets", "not yet measured", "-")]
    rate = results["throughput"]["matmul_rate_flops"]
    for opt in ("sgd", "adam"):
        r = e["ratios"].get(f"{opt}:nnx.step/torch")
        if r is not None:
            v = 1 / r["median"]
            rows.append(("xlarge", opt, "nnx samples/s / torch-cuda >= 0.9", f"{v:.3f}",
                         "met" if v >= 0.9 else "**missed**"))
        st = e["step_s"].get(f"{opt}:nnx.step")
        if st:
            frac = e["flops_per_step"] / st["median"] / rate
            rows.append(("xlarge", opt, "nnx flop rate / matmul rate >= 0.6", f"{frac:.3f}",
                         "met" if frac >= 0.6 else "**missed**"))
    return rows


def markdown(results):
    env = results["environment"]
    out = [f"# nnx training throughput — {results['title']}", "",
           f"Command: `{env['command']}`  ", f"Date: {env['date']}  ",
           f"Machine: {env['cpu_model']}, {env['cpus']} CPUs, {env['platform']}  ",
           "NumPy BLAS: " + ", ".join(
               f"{p['internal_api']} {p['version']} kernel={p['architecture']} "
               f"threads={p['num_threads']}" for p in env["threadpools"]
               if p["user_api"] == "blas"),
           f"Torch: {env['versions'].get('torch')} threads={env.get('torch_threads')} "
           + "; ".join(env.get("torch_parallel", [])) + "  ",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + "  ",
           f"OpenBLAS overrides unset for this run: {env['openblas_env_unset']}  ",
           f"Thread cap: {env.get('threads_cap') or 'none (library defaults)'}  ",
           f"Load average at start: {', '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
           + (f"  \nGPU: {env['gpu']}" if env.get("gpu") else ""), ""]
    thr = results.get("throughput")
    if thr:
        out += ["## Per-step time, median (min–max) over interleaved repetitions", "",
                f"Backend `{results['backend']}` on `{results['device']}`; float32; "
                f"matmul rate measured in this run: {thr['matmul_rate_flops'] / 1e9:.1f} GFLOP/s.",
                ""]
        if thr.get("adam_pending"):
            out += ["Adam pending: `nnx.optimizers.Adam` did not exist when this ran.", ""]
        cols = ["nnx.step", "nnx.fit", "hand", "hand.fit", "torch", "torch.fit", "sk32", "sk64"]
        out += ["`.fit` columns reorder the rows every epoch (nnx: `Network.fit(shuffle=True)`, "
                "hand: `X[perm]`, torch: `X[torch.randperm(n)]`), as scikit-learn's `fit` does; "
                "the others run the batches in a fixed order.", "",
                "| config | opt | " + " | ".join(cols) + " | GEMM only | floor (peak) |",
                "|---" * (len(cols) + 4) + "|"]
        for name, e in thr["configs"].items():
            if "skipped" in e:
                out.append(f"| {name} | – | " + " | ".join(["not yet measured"] * len(cols))
                           + " | – | – |")
                continue
            opts = sorted({k.split(":")[0] for k in e["step_s"] if ":" in k},
                          key=["sgd", "adam"].index)
            for opt in opts:
                cells = [_fmt(e["step_s"].get(f"{opt}:{c}")) for c in cols]
                out.append(f"| {name} | {opt} | " + " | ".join(cells)
                           + f" | {_fmt(e['step_s']['gemm'])} | {_us(e['floor_at_peak_s'])} |")
        out += ["", "## Ratios, paired within each repetition: median (min–max)", "",
                "`a/b` < 1 means nnx is faster. `x faster` columns are b/a.", "",
                "| config | opt | step/hand | step/torch | step/gemm | fit/hand.fit | "
                "fit/torch.fit | torch/step | sk32/step | sk64/step | sk32/fit | sk64/fit |",
                "|---" * 12 + "|"]
        for name, e in thr["configs"].items():
            if "skipped" in e:
                continue
            r = e["ratios"]
            for opt in ("sgd", "adam"):
                if f"{opt}:nnx.step/gemm" not in r:
                    continue
                g = lambda k, inv=False: _fmt_ratio(r.get(f"{opt}:{k}"), inv)  # noqa: E731
                out.append(
                    f"| {name} | {opt} | {g('nnx.step/hand')} | {g('nnx.step/torch')} | "
                    f"{g('nnx.step/gemm')} | {g('nnx.fit/hand.fit')} | {g('nnx.fit/torch.fit')} | "
                    f"{g('nnx.step/torch', True)} | {g('nnx.step/sk32', True)} | "
                    f"{g('nnx.step/sk64', True)} | {g('nnx.fit/sk32', True)} | "
                    f"{g('nnx.fit/sk64', True)} |")
        ov = [(n, e["adam_overhead_s"]) for n, e in thr["configs"].items()
              if isinstance(e, dict) and e.get("adam_overhead_s")]
        if ov:
            sides = ["nnx.step", "nnx.fit", "hand", "hand.fit", "torch", "torch.fit", "sk32",
                     "sk64"]
            out += ["", "## Adam overhead per step (Adam step − SGD step, paired)", "",
                    "| config | " + " | ".join(sides) + " |", "|---" * (len(sides) + 1) + "|"]
            for n, o in ov:
                out.append(f"| {n} | " + " | ".join(_fmt(o.get(s)) for s in sides) + " |")
        launches = [(n, e["launches_per_step"]) for n, e in thr["configs"].items()
                    if isinstance(e, dict) and e.get("launches_per_step")]
        for n, lp in launches:
            out += ["", f"CUDA launches per step on {n}: {lp}"]
    sc = results.get("scaling")
    if sc:
        out += ["", "## Scaling (SGD): step time, median of interleaved repetitions", "",
                f"Matmul rate in this run: {sc['matmul_rate_flops'] / 1e9:.1f} GFLOP/s. "
                f"Plot: `{results.get('plot', '')}`", "",
                "| sweep | sizes | batch | nnx | torch | GEMM only | floor (peak) | nnx/torch | "
                "nnx/GEMM | nnx samples/s |", "|---" * 10 + "|"]
        for p in sc["points"]:
            t = p["step_s"]
            out.append(
                f"| {p['sweep']}={p['x']} | {'-'.join(map(str, p['sizes']))} | {p['batch']} | "
                f"{_us(t['nnx.step']['median'])} | "
                f"{_us(t['torch']['median']) if 'torch' in t else '–'} | "
                f"{_us(t['gemm']['median'])} | {_us(p['floor_at_peak_s'])} | "
                f"{_fmt_ratio(p['nnx/torch'])} | {_fmt_ratio(p['nnx/gemm'])} | "
                f"{p['batch'] / t['nnx.step']['median']:,.0f} |")
    mem = results.get("memory")
    if mem:
        out += ["", f"## Peak RSS, {mem['config']} config, {mem['epochs']} epochs of training "
                "(each in a fresh subprocess)", "",
                "| side | peak RSS (MiB) | RSS before training | training increment |",
                "|---|---|---|---|"]
        for k, r in mem["runs"].items():
            out.append(f"| {k} | {r['peak_mib']:.1f} | {r['before_training_mib']:.1f} | "
                       f"{r['peak_mib'] - r['before_training_mib']:.1f} |")
        out += ["", f"nnx / hand: peak {mem['nnx/hand_peak']:.3f}, training increment "
                f"{mem['nnx/hand_increment']:.3f}."]
    acc = results.get("accuracy")
    if acc:
        out += ["", f"## Time to {acc['target']:.0%} test accuracy on digits "
                f"(64-64-32-10, {acc['optimizer']}, lr {acc['learning_rate']}, batch 32)", "",
                "| seed | nnx (s) | nnx epochs | sklearn partial_fit (s) | sklearn epochs | "
                "sklearn fit(max_iter=k) (s) |", "|---|---|---|---|---|---|"]
        for r in acc["rows"]:
            out.append(f"| {r['seed']} | {r['nnx_s']:.3f} | {r['nnx_epochs']} | {r['sk_s']:.3f} | "
                       f"{r['sk_epochs']} | "
                       + (f"{r['sk_oracle_s']:.3f}" if r["sk_oracle_s"] else "–") + " |")
        if "sk/nnx" in acc:
            out += ["", f"sklearn / nnx wall-clock: {_fmt_ratio(acc['sk/nnx'])}; "
                    f"sklearn told k / nnx: {_fmt_ratio(acc['sk_oracle/nnx'])}."]
    rows = target_rows(results)
    if rows:
        out += ["", "## Targets (issue 7)", "", "| config | opt | target | value | status |",
                "|---|---|---|---|---|"]
        out += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="numpy",
                   choices=["numpy", "torch", "cupy", "array_api_strict"])
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N")
    p.add_argument("--configs", default="tiny,medium,large,xlarge",
                   help="comma list of " + ",".join(CONFIGS))
    p.add_argument("--optimizer", default="sgd,adam", help="comma list of sgd,adam")
    p.add_argument("--parts", default="throughput,scaling,memory,accuracy",
                   help="comma list of throughput,scaling,memory,accuracy")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--tag", default=None, help="output file stem (default from device+backend)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--block-seconds", type=float, default=0.15,
                   help="target length of nnx.step's timed block (others take as many epochs)")
    p.add_argument("--warmup-seconds", type=float, default=0.05,
                   help="minimum warm-up of each side right before each of its timed blocks")
    p.add_argument("--scaling-full", action="store_true",
                   help="batch 32..8192 and width 64..4096 (default on GPU; minutes on a CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="cap BLAS/OpenMP threads of NumPy, scikit-learn and torch alike "
                        "(threadpoolctl + torch.set_num_threads); default: library defaults")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--allow-cpu-xlarge", action="store_true")
    p.add_argument("--count-launches", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU, count kernel launches per step with torch's profiler")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="do not unset OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for this run")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rss-epochs", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.optimizer = [o for o in args.optimizer.split(",") if o]
    args.parts = [x for x in args.parts.split(",") if x]
    for c in args.configs:
        if c not in CONFIGS:
            p.error(f"unknown config {c!r}; choose from {', '.join(CONFIGS)}")
    for o in args.optimizer:
        if o not in LEARNING_RATE:
            p.error(f"unknown optimizer {o!r}; choose sgd and/or adam")
    if args.repeats < 1:
        p.error("--repeats must be >= 1 (use >= 5 for published numbers)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child:
        _rss_child(args.rss_child, args.configs[0], args.rss_epochs)
        return
    WARMUP_SECONDS[0] = args.warmup_seconds
    if args.threads:
        # On a shared machine a second BLAS thread that loses its core turns a 10 us matmul
        # into a multi-millisecond wait; one thread everywhere keeps the comparison fair.
        import threadpoolctl

        try:  # load scikit-learn's SciPy (its own OpenBLAS) first, so that the cap covers it
            import sklearn.neural_network  # noqa: F401
        except ImportError:
            pass
        threadpoolctl.threadpool_limits(args.threads)  # applies the cap for the whole process
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(msg):
        print(msg, flush=True)

    env = environment(args)
    device = args.device or "cpu"
    title = f"{args.backend} on {device}"
    if env.get("gpu"):
        title += f" ({env['gpu'].get('name', '')})"
    tag = args.tag or _slug(f"{'cuda-' + env['gpu'].get('name', 'gpu') if device.startswith('cuda') and env.get('gpu') else 'cpu'}-{args.backend}")
    log(f"nnx benchmark: {title}; CPU {env['cpu_model']}; numpy BLAS kernel "
        f"{env['numpy_blas_kernel']}; OpenBLAS overrides unset: {env['openblas_env_unset']}")
    results = {"title": title, "backend": args.backend, "device": device, "environment": env}
    if "throughput" in args.parts:
        log("throughput:")
        results["throughput"] = run_throughput(args, env, log)
    if "scaling" in args.parts:
        log("scaling:")
        results["scaling"] = run_scaling(args, log)
        plot = out_dir / f"{tag}_scaling.png"
        plot_scaling(results["scaling"], plot, f"nnx vs torch step time — {title}; "
                     f"{env['cpu_model']}")
        results["plot"] = os.path.relpath(plot, ROOT)
    if "memory" in args.parts and device == "cpu" and args.backend == "numpy":
        log("memory:")
        results["memory"] = run_memory(args, log)
    if "accuracy" in args.parts and device == "cpu":
        log("accuracy (time to 97% on digits):")
        results["accuracy"] = run_accuracy(args, log)
    env["loadavg_end"] = os.getloadavg()
    env["wall_s"] = time.perf_counter() - started
    (out_dir / f"{tag}.json").write_text(json.dumps(results, indent=1, default=str))
    md = markdown(results)
    (out_dir / f"{tag}.md").write_text(md)
    log(f"wrote {out_dir / (tag + '.json')} and .md in {env['wall_s']:.0f}s")
    rows = target_rows(results)
    for r in rows:
        log("  " + " | ".join(r))


if __name__ == "__main__":
    main()
