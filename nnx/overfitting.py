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
from .callbacks import Callback, EarlyStopping
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


class DataLoss(Callback):
    """The loss of the training points after each epoch, without the weight penalty and
    with dropout off (``Network.evaluate``): the number to set beside ``val_loss``, which is
    measured the same way. (``fit``'s ``loss`` is the running mean over the epoch's batches
    and includes the penalty, so with L1/L2 it sits far above the validation loss.)

    One host read-back per epoch; the training steps are untouched.
    """

    def __init__(self, X, y):
        super().__init__()
        self.X, self.y, self.values = X, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(self.network.evaluate(self.X, self.y)["loss"])


def run_study(backend="numpy", device=None, seed=0, epochs=400, width=256, verbose=True):
    """Train every variant; returns name -> dict(train_acc, val_acc, gap, epochs, network,
    history, data_loss). Adam (lr 3e-3), mini-batches of 20, validation data passed to
    ``fit``; ``data_loss`` is :class:`DataLoss`'s list."""
    X, y = noisy_moons(100, seed)
    Xv, yv = noisy_moons(500, seed + 1)
    mean, std = X.mean(axis=0), X.std(axis=0)
    X, Xv = (X - mean) / std, (Xv - mean) / std
    results = {}
    for name, (layers, early) in variants(width).items():
        net = Network(copy.deepcopy(layers), input_dim=2, optimizer=Adam(3e-3), seed=seed,
                      backend=backend, device=device)
        data_loss = DataLoss(X, y)
        callbacks = [data_loss] + (
            [EarlyStopping(monitor="val_loss", patience=30)] if early else [])
        history = net.fit(X, y, epochs=epochs, batch_size=20, validation_data=(Xv, yv),
                          callbacks=callbacks)
        train_acc, val_acc = net.score(X, y), net.score(Xv, yv)
        results[name] = {"train_acc": train_acc, "val_acc": val_acc, "gap": train_acc - val_acc,
                         "epochs": len(history.epoch), "network": net, "history": history,
                         "data_loss": data_loss.values}
    if verbose:
        print(format_table(results))
        print(f"({backend} backend, seed {seed}; {_blas()})")
    return results, (X, y, Xv, yv)


def _blas() -> str:
    """The BLAS library and kernel NumPy runs on: the table's last digits depend on it."""
    try:
        import threadpoolctl
    except ImportError:
        return "BLAS not identified (pip install threadpoolctl)"
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not pools:
        return "no BLAS library found"
    p = pools[0]
    return (f"BLAS: {p['internal_api']} {p['version']}, {p.get('architecture') or '?'} kernel, "
            f"{p['num_threads']} thread(s)")


def format_table(results) -> str:
    lines = [f"{'regularization':<28}{'train acc':>10}{'val acc':>10}{'gap':>8}{'epochs':>8}",
             "-" * 64]
    for name, r in results.items():
        lines.append(f"{name:<28}{r['train_acc']:>10.3f}{r['val_acc']:>10.3f}{r['gap']:>8.3f}"
                     f"{r['epochs']:>8d}")
    return "\n".join(lines)


_READING = ("Each curve is the loss of the network after\nan epoch, weight penalty "
            "and dropout left\nout: blue on the 100 training points,\norange on the 500 "
            "validation points.\nThe gap between them is the overfitting;\nthe shading below "
            "is the class the\nnetwork predicts.")


def regularization(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100,
                   seed=0):
    """The overfitting study: for every variant, its loss curves above its decision boundary
    (writes regularization.png), and the table of train/validation accuracy.

    Both curves are the data loss of the final function of each epoch (:class:`DataLoss`
    for the training points, ``val_loss`` for the 500 validation points), on one shared
    loss axis, so the gap between them is the overfitting and the panels compare directly.
    """
    from .plotting import _pyplot, HISTORY_COLOURS, plot_decision_boundary, save_figure

    width = 64 if quick else 256
    results, (X, y, Xv, yv) = run_study(backend, device, seed, epochs=150 if quick else 400,
                                        width=width)
    plt = _pyplot()
    cols = 4
    blocks = -(-len(results) // cols)  # a row of loss curves over a row of boundaries each
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(3.4 * cols, 6.2 * blocks),
                             squeeze=False)
    curves = [v for r in results.values() for v in r["data_loss"] + r["history"].history[
        "val_loss"]]
    top = min(2.5, 1.05 * max(curves))  # the same loss axis in every panel
    for i, (name, r) in enumerate(results.items()):
        ax, below = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        epochs = np.arange(1, len(r["data_loss"]) + 1)
        ax.plot(epochs, r["data_loss"], color=HISTORY_COLOURS["train"], label="training points")
        ax.plot(epochs, r["history"].history["val_loss"], color=HISTORY_COLOURS["validation"],
                label="validation points")
        ax.set_ylim(0, top)
        ax.set_title(f"{name}\ntrain acc {r['train_acc']:.2f} / val acc {r['val_acc']:.2f}",
                     fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel("data loss (no penalty)")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=9)
        plot_decision_boundary(r["network"], X, y, ax=below, resolution=80 if quick else 150,
                               title="training points", legend=i == 0)
    for i in range(len(results), blocks * cols):  # the grid's empty cells
        axes[2 * (i // cols), i % cols].axis("off")
        axes[2 * (i // cols) + 1, i % cols].axis("off")
    if len(results) < blocks * cols:
        axes[-2, -1].text(0.0, 0.5, _READING, fontsize=10, va="center", wrap=True,
                          transform=axes[-2, -1].transAxes)
    fig.suptitle(f"Overfitting: 100 noisy Moons points (15% of labels flipped), 2x{width} ReLU "
                 "network, 500 validation points", fontsize=13)
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "regularization.png", dpi)
    summary = {name: {k: r[k] for k in ("train_acc", "val_acc", "gap", "epochs")}
               for name, r in results.items()}
    return {"results": summary, "files": [path]}
