"""Optimizers side by side: the lesson's first exercise, as pictures.

Writes three figures to ``--out``:

- ``optimizers_loss_curves.png``: training loss per epoch of every nnx optimizer on the
  lesson's Moons network ([2, 16, 8, 1], ReLU) and on the 8x8 digits (a [64, 32, 10] network);
- ``optimizers_paths.png``: the paths of SGD, momentum, Nesterov, RMSprop, Adam and Lion on
  the Rosenbrock valley and on a saddle, over contour plots. The 2-D paths are driven by the
  nnx optimizer objects directly on a 2-element parameter dict, exactly as a network drives
  them on its weight matrices;
- ``optimizers_lr_find.png``: the learning-rate range test (:func:`nnx.lr_find`) for Adam on
  Moons, with the suggested rate.

and prints one line per optimizer and data set (final loss, test accuracy) and per path
(distance to the minimum).

Run::

    python examples/optimizers.py [--backend B] [--device D] [--out DIR] [--quick] [--dpi N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import nnx
from nnx.demos import run_example
from nnx import optimizers as O
from nnx import schedules as S

# Rates chosen per optimizer for these problems (the same as the tests' Moons table):
# a fair comparison gives each rule a rate that suits it, not one shared number.
TRAINING = {
    "SGD": lambda: O.SGD(0.1),
    "Momentum": lambda: O.SGD(0.05, momentum=0.9),
    "Nesterov": lambda: O.SGD(0.05, momentum=0.9, nesterov=True),
    "Adagrad": lambda: O.Adagrad(0.1),
    "RMSprop": lambda: O.RMSprop(0.01),
    "Adadelta": lambda: O.Adadelta(1.0),
    "Adam": lambda: O.Adam(0.01),
    "AdamW": lambda: O.AdamW(0.01),
    "NAdam": lambda: O.NAdam(0.01),
    "RAdam": lambda: O.RAdam(0.01),
    "Adamax": lambda: O.Adamax(0.02),
    "Lion": lambda: O.Lion(3e-3),
    "LBFGS": lambda: O.LBFGS(),
}


def rosenbrock(xp, p):
    """:math:`f = (1 - x)^2 + 100 (y - x^2)^2`, minimum 0 at (1, 1), and its gradient."""
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2, \
        xp.stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def saddle(xp, p):
    """:math:`f = x^2 - y^2 + y^4 / 4`: a saddle at the origin between two valleys
    (minima -1 at :math:`(0, \\pm\\sqrt 2)`)."""
    x, y = p[0], p[1]
    return x * x - y * y + y**4 / 4, xp.stack([2 * x, -2 * y + y**3])


PATHS = {  # name: (Rosenbrock optimizer, saddle optimizer)
    "SGD": (lambda: O.SGD(2e-3), lambda: O.SGD(0.05)),
    "Momentum": (lambda: O.SGD(1e-3, momentum=0.9), lambda: O.SGD(0.05, momentum=0.9)),
    "Nesterov": (lambda: O.SGD(1e-3, momentum=0.9, nesterov=True),
                 lambda: O.SGD(0.05, momentum=0.9, nesterov=True)),
    "RMSprop": (lambda: O.RMSprop(1e-3, momentum=0.9), lambda: O.RMSprop(0.02)),
    "Adam": (lambda: O.Adam(0.05), lambda: O.Adam(0.05)),
    "Lion": (lambda n: O.Lion(S.CosineAnnealing(3e-3, n, 1e-5)), lambda: O.Lion(0.02)),
}


def descend(make, f, start, steps, ctx):
    """Iterates of one optimizer on ``f`` from ``start``: array of shape (steps + 1, 2)."""
    opt = make()
    params = {"xy": ctx.asarray(np.asarray(start, dtype=np.float64))}
    opt.build(params, ctx)
    path = [np.asarray(start, dtype=np.float64)]
    for _ in range(steps):
        _, grad = f(ctx.xp, params["xy"])
        params = opt.step(params, {"xy": grad})
        path.append(np.array(nnx.to_numpy(params["xy"]), dtype=np.float64))
    return np.stack(path)


def _moons():
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_moons(n_samples=200, noise=0.2, random_state=42)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.3, random_state=42)


def _digits(quick):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    if quick:
        X, y = X[:600], y[:600]
    X = X / 16.0  # pixel intensities 0..16 -> 0..1
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


def loss_curves(ax_moons, ax_digits, backend, device, quick):
    import matplotlib

    problems = [
        ("moons", ax_moons, _moons(), [2, 16, 8, 1], 30 if quick else 100, 32),
        ("digits", ax_digits, _digits(quick), [64, 32, 10], 8 if quick else 30, 64),
    ]
    colors = matplotlib.colormaps["tab20"].colors
    for data, ax, (Xtr, Xte, ytr, yte), sizes, epochs, batch in problems:
        for i, (name, make) in enumerate(TRAINING.items()):
            net = nnx.Network(sizes, activation="relu", optimizer=make(), seed=0,
                              backend=backend, device=device)
            label = name
            if name == "LBFGS":  # one full-batch step (up to 20 iterations) per "epoch"
                n_epochs, label = max(2, epochs // 10), "LBFGS (1 step per 10 epochs)"
            else:
                n_epochs = epochs
            loss = net.fit(Xtr, ytr, epochs=n_epochs, batch_size=batch).history["loss"]
            x = np.arange(1, n_epochs + 1) * (epochs // n_epochs)
            # SGD family solid, adaptive rates dashed, sign / quasi-Newton dotted
            style = "-" if i < 3 else ":" if name in ("Lion", "LBFGS") else "--"
            ax.semilogy(x, loss, style, color=colors[i], label=label, linewidth=1.4)
            print(f"  {data:7s} {name:9s} final loss {loss[-1]:.4f}  "
                  f"test accuracy {net.score(Xte, yte):.3f}")
        ax.set_title(f"{data}: training loss per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
    ax_digits.legend(fontsize="x-small", ncol=2)


def optimizer_paths(ax_rosen, ax_saddle, backend, device, quick):
    from nnx.plotting import plot_optimizer_paths

    ctx = nnx.get_context(backend, device, "float64")
    steps = 400 if quick else 3000
    rosen_paths, saddle_paths = {}, {}
    for name, (make_rosen, make_saddle) in PATHS.items():
        make = (lambda m=make_rosen: m(steps)) if name == "Lion" else make_rosen
        path = descend(make, rosenbrock, (-1.2, 1.0), steps, ctx)
        rosen_paths[name] = path
        print(f"  rosenbrock {name:9s} after {steps} steps at ({path[-1, 0]:.4f}, "
              f"{path[-1, 1]:.4f}), distance to (1, 1) {np.linalg.norm(path[-1] - 1):.2e}")
        path = descend(make_saddle, saddle, (1.5, 1e-3), 60 if quick else 120, ctx)
        saddle_paths[name] = path
        print(f"  saddle     {name:9s} ends at ({path[-1, 0]:.4f}, {path[-1, 1]:.4f}), "
              f"f = {float(saddle(np, path[-1])[0]):.4f}")
    plot_optimizer_paths(lambda x, y: (1 - x) ** 2 + 100 * (y - x * x) ** 2, rosen_paths,
                         (-2.0, 2.0), (-1.0, 3.0), ax=ax_rosen, levels=np.logspace(-1, 3.5, 20),
                         title=f"Rosenbrock from (-1.2, 1), {steps} steps")
    plot_optimizer_paths(lambda x, y: x * x - y * y + y**4 / 4, saddle_paths,
                         (-2.0, 2.0), (-2.0, 2.0), ax=ax_saddle, levels=25,
                         title="saddle x² - y² + y⁴/4 from (1.5, 0.001)")


def lr_range_test(ax, backend, device, quick):
    Xtr, _, ytr, _ = _moons()
    net = nnx.Network([2, 16, 8, 1], activation="relu", optimizer="adam", seed=0,
                      backend=backend, device=device)
    result = nnx.lr_find(net, Xtr, ytr, num_steps=60 if quick else 200)
    result.plot(ax)
    ax.set_title("lr_find: Adam on Moons")
    print(f"  lr_find   Adam on Moons: suggested learning rate {result.suggestion:.3g}, "
          f"loss minimum at {result.min_loss_rate:.3g}")


def run(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    figures = [
        ("optimizers_loss_curves.png", "Loss curves (every optimizer, its own rate):",
         (1, 2, (13, 5)), lambda axes: loss_curves(*axes, backend, device, quick)),
        ("optimizers_paths.png", "Paths on two surfaces:",
         (1, 2, (13, 5.5)), lambda axes: optimizer_paths(*axes, backend, device, quick)),
        ("optimizers_lr_find.png", "Learning-rate range test:",
         (1, 1, (6, 4)), lambda axes: lr_range_test(*axes, backend, device, quick)),
    ]
    for name, title, (rows, cols, size), draw in figures:
        fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
        print(title)
        draw(list(axes.ravel()))
        fig.tight_layout()
        written.append(Path(nnx.plotting.save_figure(fig, out / name, dpi)))

    for path in written:
        print(f"wrote {path}")
    return [str(p) for p in written]


def main(argv=None) -> int:
    return run_example(run, argv, description=__doc__.split("\n")[0])

if __name__ == "__main__":
    sys.exit(main())
