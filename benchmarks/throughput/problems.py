"""The problems every side trains on: configurations, data and hyperparameters.

Every side of a configuration gets the same host data (float32 features, integer labels),
the same architecture (ReLU hidden layers, logits out), batch size and learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def batch_bounds(n: int, batch: int) -> list:
    """``(start, stop)`` of every batch of an epoch over ``n`` rows, the last one shorter."""
    return [(s, min(s + batch, n)) for s in range(0, n, batch)]


@dataclass
class Problem:
    config: Config
    X: np.ndarray  # (n, in) float32, host
    y: np.ndarray  # (n,) int64 labels

    @property
    def bounds(self) -> list:
        return batch_bounds(self.X.shape[0], self.config.batch)

    @property
    def binary(self) -> bool:
        return self.config.sizes[-1] == 1


def make_problem(cfg: Config) -> Problem:
    """The same host data for every side of a config (float32 features, integer labels)."""
    if cfg.data == "moons":
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=cfg.n_samples, noise=0.2, random_state=42)
        return Problem(cfg, X.astype(np.float32), y.astype(np.int64))
    if cfg.data == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return Problem(cfg, (X / 16.0).astype(np.float32), y.astype(np.int64))
    return Problem(cfg, *synthetic(cfg.n_samples, cfg.sizes[0], cfg.sizes[-1]))


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
    """Float32 targets of the hand step: a 0/1 column for one output, else one-hot rows."""
    if k == 1:
        return y.reshape(-1, 1).astype(np.float32)
    out = np.zeros((y.shape[0], k), dtype=np.float32)
    out[np.arange(y.shape[0]), y] = 1.0
    return out
