"""nnx.sklearn against scikit-learn's MLP: test scores and time per epoch, as Markdown tables.

Two tables:

1. **Parity.** scikit-learn's ``MLPClassifier`` / ``MLPRegressor``, nnx's drop-ins of the same
   name (``nnx.sklearn.MLPClassifier``: scikit-learn's procedure, which reproduces its fit) and
   nnx's own ``NNXClassifier`` / ``NNXRegressor``, all with the same settings (scikit-learn's
   defaults: one hidden layer of 100 ReLU units, Adam at 1e-3, ``alpha=1e-4``,
   ``batch_size=min(200, n)``, up to 200 epochs, ``tol=1e-4``, ``n_iter_no_change=10``) on
   iris, wine, breast_cancer, digits (test accuracy) and diabetes (test :math:`R^2`; the
   target is standardized for all). Features are standardized inside a ``Pipeline``. Each
   seed draws its own stratified 75/25 split and is the ``random_state`` of every model. Time
   per epoch is a fit's CPU time (``time.process_time``: what the fit itself costs, even on a
   busy shared machine) divided by its ``n_iter_``; all run with one BLAS thread
   (``threadpoolctl``), interleaved, and the median over seeds is shown. ``--dtype float32``
   feeds float32 data to all (scikit-learn's MLP then computes in float32 too).
2. **Digits on every backend.** The documented configuration
   ``make_pipeline(StandardScaler(), NNXClassifier(dtype="float32", random_state=seed))``
   (all other parameters at their defaults) on numpy, array_api_strict and torch (CPU).

Usage::

    python benchmarks/sklearn_parity.py                 # 5 seeds, float64 and float32
    python benchmarks/sklearn_parity.py --seeds 2 --quick
    python benchmarks/sklearn_parity.py --save benchmarks/results/sklearn_parity-cpu-numpy.md
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nnx import sklearn as nnx_sklearn
from nnx.sklearn import NNXClassifier, NNXRegressor

#: the estimators compared, by column: (classifier, regressor)
SIDES = {
    "sklearn": (MLPClassifier, MLPRegressor),
    "drop-in": (nnx_sklearn.MLPClassifier, nnx_sklearn.MLPRegressor),
    "nnx": (NNXClassifier, NNXRegressor),
}

DATASETS = {
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "digits": (datasets.load_digits, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


def _model(estimator, task):
    model = make_pipeline(StandardScaler(), estimator)
    if task == "regression":
        model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return model


def _final(model):
    """The MLP inside the pipeline (for n_iter_)."""
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    return model[-1]


def _fit_score(model, split, task, clock=time.process_time):
    Xtr, Xte, ytr, yte = split
    start = clock()
    model.fit(Xtr, ytr)
    elapsed = clock() - start
    n_iter = _final(model).n_iter_
    return model.score(Xte, yte), elapsed / n_iter * 1e3, n_iter


def parity(names, seeds, dtype):
    rows = []
    for name in names:
        loader, task = DATASETS[name]
        X, y = loader(return_X_y=True)
        X = X.astype(dtype)
        side = 0 if task == "classification" else 1
        results = {lib: [] for lib in SIDES}
        for seed in seeds:
            split = train_test_split(X, y, test_size=0.25, random_state=seed,
                                     stratify=y if task == "classification" else None)
            for lib, estimators in SIDES.items():  # interleaved: a busy spell hits all alike
                est = estimators[side](random_state=seed)
                results[lib].append(_fit_score(_model(clone(est), task), split, task))
        n_train = int(round(X.shape[0] * 0.75))
        rows.append({
            "name": name, "task": "accuracy" if task == "classification" else "R^2",
            "n": f"{n_train}/{X.shape[0] - n_train}",
            **{lib: np.array(r) for lib, r in results.items()},
        })
    return rows


def print_parity(rows, dtype, n_seeds, out=print):
    out(f"\n### Parity with scikit-learn's MLP ({np.dtype(dtype).name}, mean over "
        f"{n_seeds} seeds, stratified 75/25)\n")
    out("Scores are means; ms/epoch and epochs are medians; speed-up is scikit-learn's "
        "ms/epoch over the column's.\n")
    out("| data set | score | train/test | scikit-learn | drop-in | nnx | epochs sk / drop-in "
        "/ nnx | sklearn ms/epoch | drop-in ms/epoch | nnx ms/epoch | drop-in speed-up "
        "| nnx speed-up |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sk, di, nx = r["sklearn"], r["drop-in"], r["nnx"]
        ms = {lib: statistics.median(r[lib][:, 1]) for lib in SIDES}
        epochs = " / ".join(f"{statistics.median(r[lib][:, 2]):.0f}" for lib in SIDES)
        out(f"| {r['name']} | {r['task']} | {r['n']} | {sk[:, 0].mean():.4f} "
            f"| {di[:, 0].mean():.4f} | {nx[:, 0].mean():.4f} | {epochs} "
            f"| {ms['sklearn']:.2f} | {ms['drop-in']:.2f} | {ms['nnx']:.2f} "
            f"| {ms['sklearn'] / ms['drop-in']:.2f}x | {ms['sklearn'] / ms['nnx']:.2f}x |")


def digits_backends(backends, seeds, out=print):
    X, y = datasets.load_digits(return_X_y=True)
    splits = [train_test_split(X, y, test_size=0.25, stratify=y, random_state=s) for s in seeds]
    rows = []
    for backend in backends:
        if backend == "torch":  # torch's own thread pool: one thread, like the BLAS above
            import torch

            torch.set_num_threads(1)
        scores, seconds = [], []
        for seed, split in zip(seeds, splits):
            model = make_pipeline(StandardScaler(),
                                  NNXClassifier(dtype="float32", random_state=seed,
                                                backend=backend))
            score, ms, n_iter = _fit_score(model, split, "classification", time.perf_counter)
            scores.append(score)
            seconds.append(ms * n_iter / 1e3)
        rows.append((backend, np.array(scores), statistics.median(seconds)))
    out(f"\n### Digits, `make_pipeline(StandardScaler(), NNXClassifier(dtype=\"float32\", "
        f"random_state=seed))`, {len(seeds)} seeds\n")
    out("| backend | mean test accuracy | min | max | points from numpy "
        "| wall s per fit (median) |")
    out("|---|---|---|---|---|---|")
    reference = rows[0][1].mean()
    for backend, scores, sec in rows:
        out(f"| {backend} | {scores.mean():.4f} | {scores.min():.4f} | {scores.max():.4f} "
            f"| {100 * (scores.mean() - reference):+.2f} | {sec:.2f} |")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--backends", nargs="+", default=None,
                        help="backends of the digits table (default: numpy, array_api_strict, "
                             "torch when installed)")
    parser.add_argument("--digits-only", action="store_true", help="skip the parity tables")
    parser.add_argument("--save", default=None,
                        help="also write the tables to this Markdown file")
    parser.add_argument("--quick", action="store_true",
                        help="iris and diabetes only, float64 only, digits on numpy only")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    names, dtypes = args.datasets, args.dtype
    backends = args.backends or [b for b in ("numpy", "array_api_strict", "torch")
                                 if b == "numpy" or importlib.util.find_spec(b) is not None]
    if args.quick:
        names, dtypes, backends = ["iris", "diabetes"], ["float64"], ["numpy"]
    warnings.simplefilter("ignore", ConvergenceWarning)
    import sklearn

    lines = []

    def out(line):
        print(line, flush=True)
        lines.append(line)

    out(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, one BLAS thread; "
        "ms/epoch is CPU time")
    with threadpool_limits(1):
        for dtype in [] if args.digits_only else dtypes:
            print_parity(parity(names, seeds, getattr(np, dtype)), getattr(np, dtype),
                         len(seeds), out)
        digits_backends(backends, seeds, out)
    if args.save:
        with open(args.save, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
