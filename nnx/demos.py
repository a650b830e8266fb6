"""The lesson's demonstrations, rebuilt on nnx: each one trains with nnx, prints its numbers
and writes its figure.

These functions are what ``examples/*.py`` and ``nnx demo`` run. They live in the package (not
only in ``examples/``) so that ``nnx demo`` works after a plain ``pip install``. Each is a thin
script over the reusable parts: :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:class:`nnx.callbacks.GradientMonitor`.

Every demo takes ``out`` (folder for the PNGs), ``backend``/``device`` (where nnx computes),
``quick`` (smaller data, fewer epochs, coarser grids: for tests) and ``dpi``, prints what it
found, and returns a dict of its numbers with ``"files"``, the paths it wrote. matplotlib is
needed (``pip install 'nnx-mlp[plot]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import activations as _activations
from . import datasets
from .backend import get_context, to_numpy
from .callbacks import GradientMonitor
from .layers import Dense, Residual
from .network import Network
from .optimizers import SGD
from .overfitting import regularization
from .plotting import (
    _TITLES,
    ACTIVATION_NAMES,
    _pyplot,
    plot_activations,
    plot_decision_boundary,
    plot_gradient_flow,
    plot_history,
    save_figure,
)


def _lesson_split(X, y):
    """The lesson's preprocessing: standardize all rows, then a 70/30 split (seed 42);
    ``(X_train, X_test, y_train, y_test)``."""
    return datasets.train_test_split(datasets.standardize(X), y, test_size=0.3, seed=42)


# --------------------------------------------------------------------------- 1


ARCHITECTURES = (
    ([2, 1], "No hidden"),
    ([2, 4, 1], "1 hidden (4)"),
    ([2, 8, 4, 1], "2 hidden (8,4)"),
    ([2, 16, 8, 4, 1], "3 hidden (16,8,4)"),
)


def decision_boundaries(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100,
                        seed=0):
    """Linear / Moons / Circles x four depths of ReLU network: the lesson's 3x4 grid.

    200 samples each, standardized, 70/30 split; SGD with learning rate 0.1, 100 epochs,
    mini-batches of 32 (``quick``: 100 samples, 20 epochs). Test accuracy in each title;
    the training points are circles, the test points the accuracy is measured on triangles.
    """
    n, epochs, resolution = (100, 20, 60) if quick else (200, 100, 200)
    data = {
        "Linear": datasets.make_linear(n),
        "Moons": datasets.make_moons(n),
        "Circles": datasets.make_circles(n),
    }
    plt = _pyplot()
    fig, axes = plt.subplots(3, 4, figsize=(16, 12), squeeze=False)
    accuracy = {}
    print("Decision boundaries: test accuracy (ReLU, SGD lr=0.1, "
          f"{epochs} epochs, batch 32, backend={backend})")
    for row, (name, (X, y)) in enumerate(data.items()):
        X_train, X_test, y_train, y_test = _lesson_split(X, y)
        for col, (sizes, label) in enumerate(ARCHITECTURES):
            net = Network(sizes, activation="relu", learning_rate=0.1, backend=backend,
                          device=device, seed=seed)
            net.fit(X_train, y_train, epochs=epochs, batch_size=32)
            acc = net.score(X_test, y_test)
            accuracy[(name, label)] = acc
            print(f"  {name:<8} {label:<18} accuracy {acc:.3f}")
            plot_decision_boundary(net, X_train, y_train, axes[row, col], X_test=X_test,
                                   y_test=y_test, resolution=resolution,
                                   title=f"{name}\n{label}\ntest accuracy {acc:.2f}",
                                   legend=row == col == 0)
    fig.suptitle("Neural network decision boundaries", fontsize=14)
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "decision_boundaries.png", dpi)
    return {"accuracy": accuracy, "files": [path]}


# --------------------------------------------------------------------------- 2


def activations(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100):
    """Every element-wise activation of nnx and its derivative (``Activation.derivative``).

    Prints each at x = -1, 0, 1, computed on ``backend`` in float64 (the standalone
    functions work on any backend's arrays); the figure is drawn from NumPy inputs.
    """
    names = ACTIVATION_NAMES
    ctx = get_context(backend, device, "float64")
    points = ctx.asarray(np.array([-1.0, 0.0, 1.0]))
    table = {}
    print(f"Activation functions f(x) and derivatives f'(x) at x = -1, 0, 1 (backend={backend})")
    for name in names:
        act = _activations.get(name)
        f, df = to_numpy(act(points)), to_numpy(act.derivative(points))
        table[name] = (f, df)
        print(f"  {name:<11} f: {' '.join(f'{v:+.4f}' for v in f)}   "
              f"f': {' '.join(f'{v:+.4f}' for v in df)}")
    fig, _ = plot_activations(names, x=np.linspace(-5, 5, 200 if quick else 1000))
    fig.suptitle("Activation functions (top) and their derivatives (bottom)", fontsize=14)
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "activations.png", dpi)
    return {"values": table, "files": [path]}


# --------------------------------------------------------------------------- 3


def activation_comparison(out="nnx-output", backend="numpy", device=None, quick=False,
                          dpi=100, seed=0):
    """Sigmoid vs tanh vs ReLU on Moons (500 samples), network [2, 16, 8, 1].

    SGD with learning rate 0.1, 100 epochs, batches of 32 (``quick``: 200 samples, 20 epochs).
    Top row: learning curves; bottom row: decision boundaries with the test points.
    """
    n, epochs, resolution = (200, 20, 60) if quick else (500, 100, 200)
    X_train, X_test, y_train, y_test = _lesson_split(*datasets.make_moons(n))
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 10), squeeze=False)
    for ax in axes[0, 1:]:  # one loss axis for the three curves, numbers on each
        ax.sharey(axes[0, 0])
        ax.tick_params(axis="y", labelleft=True)
    results = {}
    print(f"Activation comparison on Moons ({n} samples), [2, 16, 8, 1], backend={backend}")
    for col, name in enumerate(("sigmoid", "tanh", "relu")):
        net = Network([2, 16, 8, 1], activation=name, learning_rate=0.1, backend=backend,
                      device=device, seed=seed)
        history = net.fit(X_train, y_train, epochs=epochs, batch_size=32)
        acc = net.score(X_test, y_test)
        results[name] = {"loss": history.history["loss"], "accuracy": acc}
        print(f"  {name:<8} final loss {history.history['loss'][-1]:.4f}  "
              f"test accuracy {acc:.3f}")
        plot_history(history, axes=[axes[0, col]])
        axes[0, col].set_title(f"{_TITLES[name]}\ntest accuracy {acc:.3f}")
        axes[0, col].set_ylabel("Loss")
        plot_decision_boundary(net, X_test, y_test, axes[1, col], resolution=resolution,
                               title="Decision boundary (test points)")
    fig.suptitle("Activation function performance comparison", fontsize=14)
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "activation_comparison.png", dpi)
    return {"results": results, "files": [path]}


# --------------------------------------------------------------------------- 4


def _row(a):
    """A host copy shaped as the lesson prints it (biases as ``(1, units)`` rows)."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    return a.reshape(1, -1) if a.ndim == 1 else a


def backprop_step_by_step(out=None, backend="numpy", device=None, quick=False, dpi=100):
    """One SGD step on the lesson's 2-2-1 network, every number computed by nnx's layers.

    ``np.random.seed(42)``; ``W1 = randn(2, 2) * 0.5``, ``W2 = randn(2, 1) * 0.5``, zero
    biases, sigmoid hidden layer, input ``[0.5, 0.3]``, target 1, learning rate 0.1, in
    float64. The forward values come from ``Network.forward(..., return_cache=True)``, the
    gradients from each layer's ``backward``, the update from nnx's SGD.

    nnx fuses the output sigmoid into the binary cross-entropy, so the gradient it feeds back
    is :math:`dz_2 = a_2 - y` directly; the lesson's chain-rule route
    :math:`da_2 = -(y/a_2 - (1-y)/(1-a_2))`, :math:`dz_2 = da_2\\,\\sigma'(z_2)` is printed
    next to it to show they agree. Writes no figure (``out`` is ignored).
    """
    np.random.seed(42)  # the lesson's initial weights, drawn exactly as it draws them
    W1 = np.random.randn(2, 2) * 0.5
    W2 = np.random.randn(2, 1) * 0.5
    lr = 0.1
    net = Network([Dense(2, activation="sigmoid"), Dense(1)], input_dim=2,
                  loss="binary_crossentropy", optimizer=SGD(learning_rate=lr),
                  backend=backend, device=device, dtype="float64")
    net.set_parameters({"layers.0.W": W1, "layers.0.b": np.zeros(2),
                        "layers.1.W": W2, "layers.1.b": np.zeros(1)})
    hidden_layer, output_layer = net.layers
    X = np.array([[0.5, 0.3]])
    y = np.array([[1]])
    p = {k: _row(v) for k, v in net.parameters().items()}

    print("\nSimple Backpropagation Example (computed by nnx's layers):")
    print("-" * 40)
    print("Network Architecture: 2 -> 2 -> 1")
    print(f"\nInput: {X}")
    print(f"Target: {y}")
    print("\nInitial Weights:")
    print(f"W1:\n{p['layers.0.W']}")
    print(f"b1: {p['layers.0.b']}")
    print(f"W2:\n{p['layers.1.W']}")
    print(f"b2: {p['layers.1.b']}")

    print("\n" + "=" * 40 + "\nFORWARD PASS\n" + "=" * 40)
    _, (hidden, output) = net.forward(X, return_cache=True)
    z2 = output.z
    a2 = net.loss_.link(z2)  # the loss's output link: sigmoid
    v = {"z1": _row(hidden.z), "a1": _row(hidden.a), "z2": _row(z2), "a2": _row(a2)}
    print("\nLayer 1:")
    print(f" z1 = X @ W1 + b1 = {v['z1']}")
    print(f" a1 = sigmoid(z1) = {v['a1']}")
    print("\nLayer 2:")
    print(f" z2 = a1 @ W2 + b2 = {v['z2']}")
    print(f" a2 = sigmoid(z2) = {v['a2']}")
    target = net.ctx.asarray(y)
    v["loss"] = float(net.loss_(z2, target))
    print(f"\nLoss (Binary Cross-Entropy): {v['loss']:.4f}")

    print("\n" + "=" * 40 + "\nBACKWARD PASS\n" + "=" * 40)
    xp = net.ctx.xp
    dz2 = net.loss_.gradient(xp, z2, target)  # fused sigmoid + BCE: a2 - y (over n = 1)
    # the lesson's route, from a2 on the host: dL/da2, then the sigmoid's own derivative
    a2_host, y_host = v["a2"], y.astype(np.float64)
    da2 = -(y_host / a2_host - (1 - y_host) / (1 - a2_host))
    dz2_chain = da2 * _row(_activations.sigmoid.derivative(z2))
    da1, grads2 = output_layer.backward(output, dz2)
    v.update(da2=da2, dz2=_row(dz2), dz2_chain=dz2_chain, dW2=_row(grads2["W"]),
             db2=_row(grads2["b"]), da1=_row(da1))
    print("\nOutput Layer Gradients:")
    print(f" da2 = dL/da2 = -(y/a2 - (1-y)/(1-a2)) = {v['da2']}")
    print(f" dz2 = da2 * sigmoid'(z2) (chain rule)  = {v['dz2_chain']}")
    print(f" dz2 = a2 - y (nnx's fused BCE)         = {v['dz2']}")
    agree = bool(np.allclose(v["dz2"], v["dz2_chain"], rtol=1e-12, atol=0.0))
    print(f"   the two agree: {agree}")
    print(f" dW2 = a1.T @ dz2 = {v['dW2']}")
    print(f" db2 = sum(dz2) = {v['db2']}")
    # dz1 is what Dense.backward forms internally: the same activation call, shown here
    dz1 = hidden_layer.activation.backward(xp, hidden.z, hidden.a, da1)
    _, grads1 = hidden_layer.backward(hidden, da1, need_dx=False)
    v.update(dz1=_row(dz1), dW1=_row(grads1["W"]), db1=_row(grads1["b"]))
    print("\nHidden Layer Gradients:")
    print(f" da1 = dz2 @ W2.T = {v['da1']}")
    print(f" dz1 = da1 * sigmoid'(z1) = {v['dz1']}")
    print(f" dW1 = X.T @ dz1 = {v['dW1']}")
    print(f" db1 = sum(dz1) = {v['db1']}")

    grads = {"layers.0.W": grads1["W"], "layers.0.b": grads1["b"],
             "layers.1.W": grads2["W"], "layers.1.b": grads2["b"]}
    net.set_parameters(net.optimizer.step(net.parameters(), grads))
    new = {k: _row(val) for k, val in net.parameters().items()}
    v.update(W1_new=new["layers.0.W"], b1_new=new["layers.0.b"],
             W2_new=new["layers.1.W"], b2_new=new["layers.1.b"])
    print("\n" + "=" * 40 + f"\nWEIGHT UPDATE (learning_rate={lr})\n" + "=" * 40)
    print(f"\nUpdated W1:\n{v['W1_new']}")
    print(f"Updated b1: {v['b1_new']}")
    print(f"Updated W2:\n{v['W2_new']}")
    print(f"Updated b2: {v['b2_new']}")
    v["agree"] = agree
    v["files"] = []
    return v


# --------------------------------------------------------------------------- 5


def gradient_flow(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100,
                  seed=0):
    r"""Per-layer gradient norms over 50 epochs: deep ReLU vs deep sigmoid vs residual sigmoid.

    The plain networks are ``[2, 16 x 6, 1]``; the residual one has a sigmoid stem
    ``Dense(16)`` and three blocks :math:`x + W_2\,\sigma(W_1 x)` (``Residual`` of two Dense
    layers). All train full-batch (one step per epoch, as the lesson's gradient-flow loop)
    with SGD, learning rate 0.1, on 100 points :math:`x \sim N(0, I)`,
    :math:`y = [x_1 + x_2 > 0]`; the norms come from
    :class:`~nnx.callbacks.GradientMonitor`. The plain sigmoid network's first layers get
    gradients orders of magnitude smaller than its last (the vanishing gradient) and it does
    not learn; the skip connections carry the gradient back to the first layer. (``quick``:
    4 hidden layers of 8, 10 epochs.)
    """
    depth, width, epochs = (4, 8, 10) if quick else (6, 16, 50)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    sizes = [2] + [width] * depth + [1]
    common = dict(learning_rate=0.1, backend=backend, device=device, seed=seed)
    residual = [Dense(width, activation="sigmoid")] + [
        Residual([Dense(width, activation="sigmoid"), Dense(width)]) for _ in range(depth // 2)
    ]
    nets = {
        f"ReLU {depth}x{width}": Network(sizes, activation="relu", **common),
        f"Sigmoid {depth}x{width}": Network(sizes, activation="sigmoid", **common),
        f"Residual sigmoid {depth // 2} blocks": Network(residual + [Dense(1)], input_dim=2,
                                                          **common),
    }
    norms = {}
    print(f"Gradient flow: weight-gradient norm per layer after {epochs} full-batch epochs "
          f"(backend={backend})")
    for name, net in nets.items():
        monitor = GradientMonitor()
        history = net.fit(X, y, epochs=epochs, batch_size=None, callbacks=[monitor])
        norms[name] = monitor.history
        first = [values[0] for values in monitor.history.values()]
        print(f"  {name}: final loss {history.history['loss'][-1]:.4f}, "
              f"epoch 1 first/last layer norm ratio {first[0] / first[-1]:.1e}")
        print("    final norms by layer: "
              + " ".join(f"{v:.2e}" for v in monitor.final().values()))
    plt = _pyplot()
    fig, axes = plt.subplots(len(nets), 2, figsize=(12, 4.2 * len(nets)), squeeze=False,
                             sharey=True)
    for row, (name, history) in enumerate(norms.items()):
        plot_gradient_flow(history, axes=axes[row], title=name)
    fig.suptitle("Gradient flow analysis", fontsize=14)
    fig.tight_layout()
    path = save_figure(fig, Path(out) / "gradient_flow.png", dpi)
    return {"norms": norms, "files": [path]}


# --------------------------------------------------------------------------- all


DEMOS = {
    "decision_boundaries": decision_boundaries,
    "activations": activations,
    "activation_comparison": activation_comparison,
    "backprop_step_by_step": backprop_step_by_step,
    "gradient_flow": gradient_flow,
    "regularization": regularization,
}


def run_all(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100) -> list:
    """Run every demonstration; returns the paths of the figures written."""
    files = []
    for name, demo in DEMOS.items():
        print(f"\n{'#' * 60}\n# {name}\n{'#' * 60}")
        result = demo(out=out, backend=backend, device=device, quick=quick, dpi=dpi)
        files += result["files"]
    print("\nFigures written:")
    for path in files:
        print(f"  {path}")
    return files


def run_example(demo, argv=None, description=None) -> int:
    """Command line of ``examples/*.py``: parse ``--backend --device --out --quick --dpi`` and
    run ``demo`` (one of :data:`DEMOS` or :func:`run_all`)."""
    from .backend import BACKENDS

    summary = description or (demo.__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--backend", default="numpy", choices=BACKENDS,
                        help="array backend nnx computes on (default: numpy)")
    parser.add_argument("--device", default=None, help="e.g. cuda:0 (default: the backend's)")
    parser.add_argument("--out", default="nnx-output", help="folder for the figures")
    parser.add_argument("--quick", action="store_true",
                        help="smaller data, fewer epochs: a few seconds (for tests)")
    parser.add_argument("--dpi", type=int, default=100, help="figure resolution")
    args = parser.parse_args(argv)
    demo(out=args.out, backend=args.backend, device=args.device, quick=args.quick, dpi=args.dpi)
    return 0
