"""The contestants of the throughput part: each times one block of whole epochs.

``nnx.step``
    the raw ``net.step`` loop over the batches of ``EpochBatches.bounds``, data already on
    the device (what the library's math costs);
``nnx.fit``
    the public API, ``Network.fit(X, y, epochs=E, shuffle=True)`` on host NumPy data;
``hand`` / ``hand.fit``, ``torch`` / ``torch.fit``
    the hand-written NumPy/CuPy step and eager PyTorch, in a fixed batch order or (``.fit``)
    with the rows reordered every epoch as ``fit`` does;
``sk32`` / ``sk64``
    scikit-learn's ``MLPClassifier.fit(max_iter=E)`` on float32 / float64 input;
``gemm``
    the step's matrix products alone, at the step's shapes: a measured floor.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

import nnx
from nnx.data import EpochBatches

from .handwritten import HandMLP, run_batches, torch_mlp, torch_optimizer, torch_step
from .problems import ADAM, LEARNING_RATE, one_hot

#: every side of the throughput part, in table order (per optimizer; ``gemm`` is shared)
SIDES = ("nnx.step", "nnx.fit", "hand", "hand.fit", "torch", "torch.fit", "sk32", "sk64")


def fit_counterpart(side: str) -> str:
    """The side ``nnx.fit`` is compared with in place of ``side``: the variant of the hand
    and torch loops that reorders the rows every epoch (scikit-learn's ``fit`` does already)."""
    return side + ".fit" if side in ("hand", "torch") else side


class Side:
    """One contestant: ``warmup()``, then ``block(epochs)`` returns the seconds of ``run``
    for that many epochs, synchronised with the device at the end."""

    name = "side"
    steps_per_epoch = 0

    def warmup(self):
        self.block(1)

    def run(self, epochs) -> None:
        raise NotImplementedError("abstract method: each side runs its own epochs")

    def sync(self):
        pass

    def block(self, epochs) -> float:
        t0 = time.perf_counter()
        self.run(epochs)
        self.sync()
        return time.perf_counter() - t0


class LoopSide(Side):
    """A side driven by :func:`~.handwritten.run_batches` over fixed-size batches.

    ``permutation`` (a callable returning a new row order) makes it the ``<name>.fit`` side:
    the rows are put in a new order every epoch, like ``nnx.fit``.
    """

    def __init__(self, name, step, X, Y, bounds, permutation=None):
        self.name = name if permutation is None else f"{name}.fit"
        self.step, self.X, self.Y, self.bounds = step, X, Y, bounds
        self.permutation = permutation
        self.steps_per_epoch = len(bounds)

    def run(self, epochs):
        run_batches(self.step, self.X, self.Y, self.bounds, epochs, self.permutation)


def nnx_optimizer(name):
    """nnx's SGD or Adam with the benchmark's settings."""
    lr = LEARNING_RATE[name]
    if name == "sgd":
        return nnx.optimizers.SGD(learning_rate=lr)
    return nnx.optimizers.Adam(learning_rate=lr, beta_1=ADAM["beta1"], beta_2=ADAM["beta2"],
                               epsilon=ADAM["eps"])


def nnx_network(prob, optimizer, backend="numpy", device=None):
    """The config's network with nnx's initial weights (seed 0), on ``backend``."""
    return nnx.Network(list(prob.config.sizes), activation="relu",
                       optimizer=nnx_optimizer(optimizer), backend=backend, device=device,
                       seed=0)


def initial_params(prob):
    """nnx's initial weights (seed 0) as host float32 arrays, so hand and torch start equal."""
    p = {k: nnx.to_numpy(v) for k, v in nnx_network(prob, "sgd").parameters().items()}
    n_layers = len(prob.config.sizes) - 1
    return [(p[f"layers.{i}.W"].copy(), p[f"layers.{i}.b"].copy()) for i in range(n_layers)]


class NnxStep(LoopSide):
    """The raw training step: ``net.step`` over the batches of fit's batching
    (``EpochBatches``) in a fixed order, data already on the device."""

    def __init__(self, prob, optimizer, backend, device):
        self.net = nnx_network(prob, optimizer, backend, device)
        Xd, Yd = self.net.prepare(prob.X, prob.y)
        batches = EpochBatches((Xd, Yd, None), prob.config.batch, self.net.random,
                               self.net.ctx)
        super().__init__("nnx.step", self.net.step, Xd, Yd, batches.bounds)

    def sync(self):
        self.net.ctx.synchronize()


class NnxFit(Side):
    """The public API: ``Network.fit(X, y, epochs=E)`` on host NumPy data, shuffling each epoch
    (fit's own batching, ``EpochBatches``)."""

    name = "nnx.fit"

    def __init__(self, prob, optimizer, backend, device):
        self.net = nnx_network(prob, optimizer, backend, device)
        self.X, self.y, self.batch = prob.X, prob.y, prob.config.batch
        self.steps_per_epoch = len(prob.bounds)

    def sync(self):
        self.net.ctx.synchronize()

    def warmup(self):
        n = min(self.X.shape[0], 4 * self.batch)
        self.net.fit(self.X[:n], self.y[:n], epochs=1, batch_size=self.batch)

    def run(self, epochs):
        self.net.fit(self.X, self.y, epochs=epochs, batch_size=self.batch, shuffle=True)


class Hand(LoopSide):
    """The hand-written step; ``shuffle=True`` (side ``hand.fit``) reorders the rows every
    epoch, ``X[perm]``."""

    def __init__(self, prob, optimizer, xp, shuffle=False):
        self.xp = xp
        mlp = HandMLP(xp, initial_params(prob), prob.binary, optimizer, LEARNING_RATE[optimizer])
        n = prob.X.shape[0]
        permutation = (lambda: xp.random.permutation(n)) if shuffle else None
        super().__init__("hand", mlp.step, xp.asarray(prob.X),
                         xp.asarray(one_hot(prob.y, prob.config.sizes[-1])), prob.bounds,
                         permutation)

    def sync(self):
        if self.xp.__name__ == "cupy":
            self.xp.cuda.get_current_stream().synchronize()


class Torch(LoopSide):
    """Eager PyTorch: nn.Sequential + torch.optim (Adam with ``foreach=True``);
    ``shuffle=True`` (side ``torch.fit``) reorders the rows every epoch with
    ``torch.randperm``."""

    def __init__(self, prob, optimizer, device, shuffle=False):
        import torch
        from torch import nn

        self.torch = torch
        self.device = torch.device(device)
        model = torch_mlp(prob.config.sizes, initial_params(prob)).to(self.device)
        if prob.binary:
            loss_fn = nn.BCEWithLogitsLoss()
            Y = torch.from_numpy(prob.y.astype(np.float32).reshape(-1, 1)).to(self.device)
        else:
            loss_fn = nn.CrossEntropyLoss()
            Y = torch.from_numpy(prob.y).to(self.device)
        n = prob.X.shape[0]
        permutation = (lambda: torch.randperm(n, device=self.device)) if shuffle else None
        super().__init__("torch", torch_step(model, torch_optimizer(model, optimizer), loss_fn),
                         torch.from_numpy(prob.X).to(self.device), Y, prob.bounds, permutation)

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


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

    def classifier(self, epochs):
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=self.hidden, activation="relu", solver=self.optimizer,
            alpha=0.0, batch_size=self.batch, learning_rate="constant",
            learning_rate_init=LEARNING_RATE[self.optimizer], momentum=0.0,
            nesterovs_momentum=False, beta_1=ADAM["beta1"], beta_2=ADAM["beta2"],
            epsilon=ADAM["eps"], shuffle=True, max_iter=epochs, tol=0.0,
            n_iter_no_change=epochs + 1, early_stopping=False, random_state=0,
        )

    def fit(self, X, y, epochs):
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.classifier(epochs).fit(X, y)

    def warmup(self):
        n = min(self.X.shape[0], 4 * self.batch)
        self.fit(self.X[:n], self.y[:n], 1)

    def run(self, epochs):
        self.fit(self.X, self.y, epochs)


class Gemm(Side):
    """The step's matrix products alone, at its shapes: forward ``x W``, ``dW = a^T dz`` and
    ``dx = dz W^T`` (skipped for the first layer, as every contestant skips it)."""

    name = "gemm"

    def __init__(self, prob, ctx):
        rng = np.random.default_rng(1)
        sizes, B = prob.config.sizes, prob.config.batch

        def normal(*shape):
            return ctx.asarray(rng.standard_normal(shape, dtype=np.float32))

        self.layers = [(normal(B, sizes[i]), normal(sizes[i], sizes[i + 1]),
                        normal(B, sizes[i + 1]), i > 0) for i in range(len(sizes) - 1)]
        self.steps_per_epoch = len(prob.bounds)
        self.ctx = ctx

    def sync(self):
        self.ctx.synchronize()

    def run(self, epochs):
        layers = self.layers
        for _ in range(epochs * self.steps_per_epoch):
            for x, W, dz, need_dx in layers:
                x @ W
                x.T @ dz
                if need_dx:
                    dz @ W.T


def step_flops(sizes, batch):
    """The floor count of one step: 6 B sum(in * out) (forward, dW and dx of every layer)."""
    return 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def is_gpu(ctx):
    return ctx.name == "cupy" or (ctx.name == "torch" and ctx.device.type == "cuda")


def matmul_rate(ctx, n=None, repeats=5):
    """Float32 matmul rate (flop/s) of ``ctx``'s namespace on an n x n x n product."""
    gpu = is_gpu(ctx)
    n = n or (8192 if gpu else 1024)
    rng = np.random.default_rng(2)
    a = ctx.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = ctx.asarray(rng.standard_normal((n, n), dtype=np.float32))
    a @ b
    ctx.synchronize()
    inner = 10 if gpu else 3
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        ctx.synchronize()
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2.0 * n**3 / best


def torch_device(backend, device):
    """Where the torch sides run beside nnx on ``backend``/``device``, or None without torch
    (or without the CUDA device asked for)."""
    try:
        import torch
    except ImportError:
        return None
    dev = str(device) if device is not None else "cpu"
    if backend == "cupy":  # CuPy takes an int or "cuda:N"; torch eager runs beside it
        dev = dev if dev.startswith("cuda") else ("cuda" if dev == "cpu" else f"cuda:{dev}")
    elif not dev.startswith("cuda"):  # numpy, array_api_strict's fake devices: torch on CPU
        dev = "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        return None
    return dev
