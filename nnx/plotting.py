"""Figures of the lesson: decision boundaries, activations, learning curves, gradient flow.

matplotlib is an optional extra (``pip install 'nnx-mlp[plot]'``), imported when a function is
called, never when nnx is. Every function draws into the axes it is given (or makes new ones
with ``plt.subplots``, so figures show up in notebooks) and returns the matplotlib objects; none
calls ``plt.show()``. Networks of any backend are accepted: they are queried with NumPy input,
so their answers come back as NumPy.
"""

from __future__ import annotations

import numpy as np

from . import activations as _activations
from .backend import to_numpy

#: The activations of :func:`plot_activations`: the lesson's six, then the rest nnx offers
#: (softmax is left out: it is not element-wise).
ACTIVATION_NAMES = (
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "swish", "selu", "gelu", "softplus",
)

_TITLES = {
    "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "Leaky ReLU",
    "elu": "ELU", "swish": "Swish", "silu": "SiLU", "selu": "SELU", "gelu": "GELU",
    "softplus": "Softplus", "identity": "Identity", "linear": "Linear", "logistic": "Logistic",
}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("nnx.plotting needs matplotlib: pip install 'nnx-mlp[plot]'") from None
    return plt


def save_figure(fig, path, dpi: int = 100) -> str:
    """Write ``fig`` to ``path`` (folders created, the margins trimmed) and close it.

    Returns the path as a string. Every figure nnx writes (demos, examples, the command
    line) goes through here.
    """
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    return str(path)


def _subplots(nrows, ncols, figsize):
    fig, axes = _pyplot().subplots(nrows, ncols, figsize=figsize, squeeze=False)
    return fig, axes


def _label_indices(classes, labels, what):
    """Position of every label in ``classes`` (for colouring), refusing unknown labels."""
    labels = np.asarray(labels).ravel()
    idx = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    if not np.all(classes[idx] == labels):
        raise ValueError(f"{what} contains labels the network was not trained on")
    return idx


# --------------------------------------------------------------------------- decision regions


def plot_decision_boundary(net, X, y=None, ax=None, *, X_test=None, y_test=None,
                           resolution=200, margin=1.0, cmap="viridis", title=None, legend=True):
    """Shade the class a trained classifier predicts over the plane, and scatter the data.

    Works for binary and multi-class networks with two input features; the regions are the
    labels of ``net.predict`` on a ``resolution x resolution`` grid covering the points plus
    ``margin`` on every side (the lesson used a step of 0.02 and a margin of 1). Points are
    coloured like the region of their true class, so a point on the wrong colour is an error.

    Parameters
    ----------
    net : Network (or any fitted object with ``predict`` and ``classes_``)
    X : array-like, shape (n_samples, 2)
        The points to scatter (circles); with ``X_test``, the training points.
    y : array-like, shape (n_samples,), optional
        Labels of ``X``; omitted: no points are drawn.
    ax : matplotlib Axes, optional
    X_test, y_test : array-like, shapes (n_test, 2) and (n_test,), optional
        Held-out points, drawn as triangles over the training points, so a test score in
        the title can be checked against the points it was computed on.
    resolution : int, default 200
    margin : float, default 1.0
    cmap : str, default "viridis"
    title : str, optional
    legend : bool, default True
        Name each class's colour (and the markers, when test points are drawn).

    Returns
    -------
    matplotlib.axes.Axes
    """
    X = _points(X)
    classes = getattr(net, "classes_", None)
    if classes is None:
        raise ValueError("plot_decision_boundary needs a fitted classifier (classes_ is unset)")
    classes = np.asarray(classes)
    if ax is None:
        ax = _subplots(1, 1, (5, 4))[1][0, 0]
    everything = X if X_test is None else np.concatenate([X, _points(X_test)])
    (x0, y0), (x1, y1) = everything.min(axis=0) - margin, everything.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    zz = _label_indices(classes, to_numpy(net.predict(grid)), "the prediction")
    k = len(classes)
    colours = dict(cmap=cmap, vmin=0, vmax=max(k - 1, 1))
    # one band per class index, so binary and multi-class share a single code path
    ax.contourf(xx, yy, zz.reshape(xx.shape), levels=np.arange(k + 1) - 0.5, alpha=0.3,
                **colours)
    # with test points, the training points step back: the title's score is about the test
    sets = [(X, y, "o", 20, 0.5, 1.0 if X_test is None else 0.55, "train")]
    if X_test is not None:
        sets.append((_points(X_test), y_test, "^", 42, 1.0, 1.0, "test"))
    drawn = []
    for points, labels, marker, size, edge, alpha, name in sets:
        if labels is not None:
            c = _label_indices(classes, to_numpy(labels), "y" if name == "train" else "y_test")
            ax.scatter(points[:, 0], points[:, 1], c=c, marker=marker, s=size, alpha=alpha,
                       edgecolor="black", linewidth=edge, **colours)
            drawn.append((marker, name))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("Feature 1")
    ax.set_ylabel("Feature 2")
    if title is not None:
        ax.set_title(title)
    if legend:
        _class_legend(ax, classes, colours, drawn if len(drawn) > 1 else [])
    return ax


def _points(X):
    X = np.asarray(to_numpy(X), dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs X with 2 features; got shape {X.shape}")
    return X


def _class_legend(ax, classes, colours, markers):
    """A legend entry per class in its colour, then one per marker (train / test)."""
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    cmap = _pyplot().get_cmap(colours["cmap"])
    norm = Normalize(colours["vmin"], colours["vmax"])
    handles = [Line2D([], [], linestyle="", marker="s", markersize=8, markeredgecolor="black",
                      markeredgewidth=0.5, markerfacecolor=cmap(norm(i)), label=str(label))
               for i, label in enumerate(classes.tolist())]
    handles += [Line2D([], [], linestyle="", marker=marker, markersize=7, color="0.5",
                       markeredgecolor="black", label=f"{name} points")
                for marker, name in markers]
    ax.legend(handles=handles, fontsize="small", framealpha=0.8, loc="best")


# --------------------------------------------------------------------------- activations


def plot_activations(names=ACTIVATION_NAMES, x=None, axes=None):
    """Each activation (top row) and its derivative (bottom row), from ``nnx.activations``.

    The derivatives are the activations' own ``derivative`` (what backprop uses), not a
    separate formula.

    Parameters
    ----------
    names : sequence of str, default :data:`ACTIVATION_NAMES`
    x : array-like, optional
        Inputs; default 1000 points on ``[-5, 5]``.
    axes : array of Axes, shape (2, len(names)), optional

    Returns
    -------
    fig : matplotlib Figure
    axes : numpy.ndarray of Axes, shape (2, len(names))
    """
    names = list(names)
    if not names:
        raise ValueError("plot_activations needs at least one activation name")
    acts = [_activations.get(name) for name in names]
    for name, act in zip(names, acts):
        if act is None or isinstance(act, _activations.Softmax):
            raise ValueError(f"plot_activations draws element-wise functions; {name!r} is not")
    x = np.linspace(-5.0, 5.0, 1000) if x is None else np.asarray(x, dtype=np.float64)
    if axes is None:
        fig, axes = _subplots(2, len(names), (2.6 * len(names), 5.5))
    else:
        axes = np.asarray(axes).reshape(2, len(names))
        fig = axes[0, 0].figure
    for j, (name, act) in enumerate(zip(names, acts)):
        title = _TITLES.get(str(name).lower(), str(name))
        for row, (values, color, label, ylim) in enumerate((
            (act(x), "tab:blue", "f(x)", (-2.0, 2.0)),
            (act.derivative(x), "tab:red", "f'(x)", (-0.5, 2.0)),
        )):
            ax = axes[row, j]
            ax.plot(x, values, linewidth=2, color=color)
            ax.axhline(0.0, color="k", linewidth=0.5, alpha=0.3)
            ax.axvline(0.0, color="k", linewidth=0.5, alpha=0.3)
            ax.set_ylim(*ylim)
            ax.set_title(title if row == 0 else f"{title} derivative")
            ax.set_xlabel("x")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
    return fig, axes


# --------------------------------------------------------------------------- training curves


#: the colours of :func:`plot_history`'s curves, the same in every panel
HISTORY_COLOURS = {"train": "tab:blue", "validation": "tab:orange"}


def plot_history(history, axes=None, title=None):
    """Learning curves: one panel per quantity (loss, accuracy, ...), train and validation.

    Parameters
    ----------
    history : History or dict
        ``fit``'s return value (or ``net.history_``), or a dict ``name -> list per epoch``;
        ``val_<name>`` is drawn in the panel of ``<name>``.
    axes : sequence of Axes, optional
        One per quantity.
    title : str, optional
        Prefix of every panel's title.

    Returns
    -------
    fig : matplotlib Figure
    axes : numpy.ndarray of Axes
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not any(len(v) for v in logs.values()):
        raise ValueError("plot_history needs a History or a dict of per-epoch values; got none")
    bases = []
    for key in logs:
        base = key[4:] if key.startswith("val_") else key
        if base not in bases:
            bases.append(base)
    if axes is None:
        fig, axes = _subplots(1, len(bases), (4.5 * len(bases), 3.5))
    axes = np.asarray(axes).ravel()
    if axes.size < len(bases):
        raise ValueError(
            f"plot_history needs {len(bases)} axes (one per quantity); got {axes.size}"
        )
    for ax, base in zip(axes, bases):
        # fixed colours: a panel with validation values alone must not draw them in the
        # training colour
        for key, label, colour in ((base, "train", HISTORY_COLOURS["train"]),
                                   (f"val_{base}", "validation", HISTORY_COLOURS["validation"])):
            values = logs.get(key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, linewidth=2, label=label,
                        color=colour)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(base)
        ax.set_title(base if title is None else f"{title}: {base}")
        ax.grid(True, alpha=0.3)
        if f"val_{base}" in logs:
            ax.legend()
    return axes[0].figure, axes


def plot_gradient_flow(norms, axes=None, title=None, log=True):
    """Per-layer gradient norms over the epochs (left) and their final values (right).

    Parameters
    ----------
    norms : dict of str -> sequence of float, or GradientMonitor
        ``parameter name -> norm per epoch``, e.g. ``GradientMonitor().history``. Layers are
        numbered in the dict's order (the network's order).
    axes : pair of Axes, optional
    title : str, optional
        Prefix of both panels' titles (e.g. the network's name).
    log : bool, default True
        Logarithmic norm axis, so that vanishing gradients (orders of magnitude apart) show.

    Returns
    -------
    fig : matplotlib Figure
    axes : numpy.ndarray of 2 Axes
    """
    norms = getattr(norms, "history", norms)
    norms = {name: np.asarray(v, dtype=np.float64) for name, v in dict(norms).items() if len(v)}
    if not norms:
        raise ValueError("plot_gradient_flow needs at least one non-empty series of norms")
    if axes is None:
        fig, axes = _subplots(1, 2, (11, 4))
    axes = np.asarray(axes).ravel()
    labels = [f"Layer {i + 1}" for i in range(len(norms))]
    for label, values in zip(labels, norms.values()):
        axes[0].plot(np.arange(1, values.size + 1), values, linewidth=2, label=label)
    final = [values[-1] for values in norms.values()]
    axes[1].bar(labels, final, color="steelblue")
    prefix = "" if title is None else f"{title}: "
    axes[0].set_title(f"{prefix}gradient norm during training")
    axes[0].set_xlabel("Epoch")
    axes[0].set_ylabel("Gradient norm")
    axes[0].legend(fontsize="small")
    axes[1].set_title(f"{prefix}final gradient norm by layer")
    axes[1].set_xlabel("Layer")
    axes[1].set_ylabel("Final gradient norm")
    for ax in axes[:2]:
        if log and all(np.all(v > 0) for v in norms.values()):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3, axis="y")
        # numbers on both panels, even when the caller shares the axis across them
        ax.tick_params(axis="y", labelleft=True)
    return axes[0].figure, axes


# --------------------------------------------------------------------------- evaluation


def plot_confusion_matrix(cm, labels=None, ax=None, *, normalize=False, cmap="Blues",
                          title="Confusion matrix"):
    """A confusion matrix as a heat map with the count (or row fraction) in every cell.

    Parameters
    ----------
    cm : array-like, shape (n_classes, n_classes)
        ``cm[i, j]``: samples of true class ``i`` predicted as class ``j``.
    labels : sequence of str, optional
        Class names, in the order of the rows.
    ax : matplotlib Axes, optional
    normalize : bool, default False
        Show each row as fractions of that class (recall on the diagonal).
    cmap : str, default "Blues"
    title : str, default "Confusion matrix"

    Returns
    -------
    matplotlib.axes.Axes
    """
    cm = np.asarray(to_numpy(cm), dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(
            f"cm must be a square (n_classes, n_classes) matrix; got shape {cm.shape}"
        )
    k = cm.shape[0]
    labels = [str(i) for i in range(k)] if labels is None else [str(v) for v in labels]
    if len(labels) != k:
        raise ValueError(f"labels has {len(labels)} names for a {k}x{k} matrix")
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    if ax is None:
        ax = _subplots(1, 1, (1.2 + 0.6 * k, 1.0 + 0.55 * k))[1][0, 0]
    image = ax.imshow(cm, cmap=cmap, vmin=0)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = cm.max() / 2.0
    for i in range(k):
        for j in range(k):
            text = f"{cm[i, j]:.2f}" if normalize else f"{int(round(cm[i, j]))}"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if cm[i, j] > threshold else "black")
    ax.set_xticks(range(k), labels, rotation=45 if k > 4 else 0)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- optimizers


def plot_optimizer_paths(f, paths, xlim, ylim, ax=None, *, levels=30, resolution=200,
                         title=None):
    """Contours of a 2-D function with the path each optimizer took on it.

    Parameters
    ----------
    f : callable
        ``f(x, y)`` evaluated element-wise on NumPy arrays (e.g. Rosenbrock
        ``lambda x, y: (1 - x)**2 + 100 * (y - x**2)**2``).
    paths : dict of str -> array-like, shape (n_steps, 2)
        The iterates of each optimizer, starting point first.
    xlim, ylim : (float, float)
        The plotted window.
    ax : matplotlib Axes, optional
    levels : int or sequence of float, default 30
        Contour levels, as ``Axes.contour`` takes them (pass log-spaced levels for valleys).
    resolution : int, default 200
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        ax = _subplots(1, 1, (6, 5))[1][0, 0]
    xx, yy = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    ax.contour(xx, yy, np.asarray(f(xx, yy), dtype=np.float64), levels=levels, cmap="gray_r",
               alpha=0.6, linewidths=0.8)
    for name, path in paths.items():
        path = np.asarray(to_numpy(path), dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"path {name!r} must have shape (n_steps, 2); got {path.shape}")
        (line,) = ax.plot(path[:, 0], path[:, 1], linewidth=1.5, marker=".", markersize=3,
                          label=name)
        ax.plot(*path[-1], marker="*", markersize=10, color=line.get_color())
    if paths:
        first = np.asarray(to_numpy(next(iter(paths.values()))), dtype=np.float64)
        ax.plot(*first[0], marker="o", color="black", markersize=6, label="start")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax
