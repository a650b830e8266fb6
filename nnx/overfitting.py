"""The overfitting study: an oversized network on a small noisy data set, trained without
regularization and with each remedy of the lesson (L2, L1, dropout, batch norm, early
stopping, and a combination).

The data are 100 Moons points (noise 0.25) with 15% of the labels flipped, and an independent
500-point validation set drawn the same way: label noise is what an oversized network
memorizes, so the gap between training and validation accuracy is wide without
regularization (about 0.2) and easy to see close with it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from . import datasets, regularizers
from .callbacks import EarlyStopping
from .layers import BatchNorm, Dense, Dropout
from .network import Network
from .optimizers import Adam


def noisy_moons(n_samples, seed, noise=0.25, flip=0.15):
    """Moons with Gaussian noise and a fraction ``flip`` of labels flipped."""
    X, y = datasets.make_moons(n_samples, noise=noise, seed=seed)
    flipped = np.random.default_rng(seed + 1000).random(n_samples) < flip
    return X, np.where(flipped, 1 - y, y)


def _layers(width, *, dropout=0.0, batch_norm=False, regularizer=None):
    layers = []
    for _ in range(2):
        layers.append(Dense(width, activation="relu", kernel_regularizer=regularizer))
        if batch_norm:
            layers.append(BatchNorm())
        if dropout:
            layers.append(Dropout(dropout))
    return layers + [Dense(1)]


def variants(width=256):
    """Name -> (layers, uses early stopping). Strengths were picked on seed 0 (see the
    module docstring of the example) and kept fixed."""
    return {
        "none": (_layers(width), False),
        "L2(3e-2)": (_layers(width, regularizer=regularizers.L2(3e-2)), False),
        "L1(1e-2)": (_layers(width, regularizer=regularizers.L1(1e-2)), False),
        "dropout 0.5": (_layers(width, dropout=0.5), False),
        "batch norm": (_layers(width, batch_norm=True), False),
        "early stopping": (_layers(width), True),
        "L2 + dropout + early stop": (
            _layers(width, dropout=0.3, regularizer=regularizers.L2(1e-2)), True),
    }


def run_study(backend="numpy", device=None, seed=0, epochs=400, width=256, verbose=True):
    """Train every variant; returns name -> dict(train_acc, val_acc, gap, epochs, network,
    history). Adam (lr 3e-3), mini-batches of 20, validation data passed to ``fit``."""
    X, y = noisy_moons(100, seed)
    Xv, yv = noisy_moons(500, seed + 1)
    mean, std = X.mean(axis=0), X.std(axis=0)
    X, Xv = (X - mean) / std, (Xv - mean) / std
    results = {}
    for name, (layers, early) in variants(width).items():
        net = Network(copy.deepcopy(layers), input_dim=2, optimizer=Adam(3e-3), seed=seed,
                      backend=backend, device=device)
        callbacks = [EarlyStopping(monitor="val_loss", patience=30)] if early else []
        history = net.fit(X, y, epochs=epochs, batch_size=20, validation_data=(Xv, yv),
                          callbacks=callbacks)
        train_acc, val_acc = net.score(X, y), net.score(Xv, yv)
        results[name] = {"train_acc": train_acc, "val_acc": val_acc, "gap": train_acc - val_acc,
                         "epochs": len(history.epoch), "network": net, "history": history}
    if verbose:
        print(format_table(results))
    return results, (X, y, Xv, yv)


def format_table(results) -> str:
    lines = [f"{'regularization':<28}{'train acc':>10}{'val acc':>10}{'gap':>8}{'epochs':>8}",
             "-" * 64]
    for name, r in results.items():
        lines.append(f"{name:<28}{r['train_acc']:>10.3f}{r['val_acc']:>10.3f}{r['gap']:>8.3f}"
                     f"{r['epochs']:>8d}")
    return "\n".join(lines)


def regularization(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100,
                   seed=0):
    """The overfitting study: loss curves and decision boundaries of every variant side by
    side (writes regularization.png) and a table of train/validation accuracy."""
    from .plotting import _pyplot, plot_decision_boundary, save_figure

    results, (X, y, Xv, yv) = run_study(backend, device, seed,
                                        epochs=150 if quick else 400,
                                        width=64 if quick else 256)
    plt = _pyplot()
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), squeeze=False)
    for col, (name, r) in enumerate(results.items()):
        h = r["history"].history
        ax = axes[0, col]
        ax.plot(h["loss"], label="train")
        ax.plot(h["val_loss"], label="validation")
        ax.set_title(f"{name}\ntrain {r['train_acc']:.2f} / val {r['val_acc']:.2f}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, max(1.5, min(3.0, max(h["val_loss"]))))
        if col == 0:
            ax.set_ylabel("loss")
            ax.legend(fontsize=8)
        plot_decision_boundary(r["network"], X, y, ax=axes[1, col], resolution=80 if quick else 150)
        axes[1, col].set_title("")
    fig.suptitle("Overfitting: 100 noisy Moons points, 2x%d ReLU network" % (64 if quick else 256))
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "regularization.png", dpi)
    summary = {name: {k: r[k] for k in ("train_acc", "val_acc", "gap", "epochs")}
               for name, r in results.items()}
    return {"results": summary, "files": [path]}
