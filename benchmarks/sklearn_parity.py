"""nnx.sklearn against scikit-learn's MLP: test scores and time per epoch, as Markdown tables.

Two tables:

1. **Parity.** ``NNXClassifier`` / ``NNXRegressor`` and ``MLPClassifier`` / ``MLPRegressor``
   with the same settings (scikit-learn's defaults: one hidden layer of 100 ReLU units, Adam
   at 1e-3, ``alpha=1e-4``, ``batch_size=min(200, n)``, up to 200 epochs, ``tol=1e-4``,
   ``n_iter_no_change=10``) on iris, wine, breast_cancer, digits (test accuracy) and diabetes
   (test :math:`R^2`; the target is standardized for both). Features are standardized inside
   a ``Pipeline``. Each seed draws its own stratified 75/25 split and is the ``random_state``
   of both models. Time per epoch is a fit's CPU time (``time.process_time``: what the fit
   itself costs, even on a busy shared machine) divided by its ``n_iter_``; both run with one
   BLAS thread (``threadpoolctl``), interleaved, and the median over seeds is shown.
   ``--dtype float32`` feeds float32 data to both (scikit-learn's MLP then computes in
   float32 too).
2. **Digits on every backend.** The documented configuration
   ``make_pipeline(StandardScaler(), NNXClassifier(dtype="float32", random_state=seed))``
   (all other parameters at their defaults) on numpy, array_api_strict and torch (CPU).

Usage::

    python benchmarks/sklearn_parity.py                 # 5 seeds, float64 and float32
    python benchmarks/sklearn_parity.py --seeds 2 --quick
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

from nnx.sklearn import NNXClassifier, NNXRegressor

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
        Sk, Nx = (MLPClassifier, NNXClassifier) if task == "classification" else (
            MLPRegressor, NNXRegressor)
        results = {"sklearn": [], "nnx": []}
        for seed in seeds:
            split = train_test_split(X, y, test_size=0.25, random_state=seed,
                                     stratify=y if task == "classification" else None)
            for lib, est in (("sklearn", Sk(random_state=seed)), ("nnx", Nx(random_state=seed))):
                results[lib].append(_fit_score(_model(clone(est), task), split, task))
        sk = np.array(results["sklearn"])
        nx = np.array(results["nnx"])
        rows.append({
            "name": name, "task": "accuracy" if task == "classification" else "R^2",
            "n": f"{int(round(X.shape[0] * 0.75))}/{X.shape[0] - int(round(X.shape[0] * 0.75))}",
            "sk": sk[:, 0], "nx": nx[:, 0],
            "sk_ms": statistics.median(sk[:, 1]), "nx_ms": statistics.median(nx[:, 1]),
            "sk_iter": sk[:, 2].mean(), "nx_iter": nx[:, 2].mean(),
        })
    return rows


def print_parity(rows, dtype, n_seeds):
    print(f"\n### Parity with scikit-learn's MLP ({np.dtype(dtype).name}, mean over "
          f"{n_seeds} seeds, stratified 75/25)\n")
    print("| data set | score | train/test | scikit-learn | nnx | nnx - sklearn | epochs sk / nnx "
          "| sklearn ms/epoch | nnx ms/epoch | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sk, nx = r["sk"], r["nx"]
        print(f"| {r['name']} | {r['task']} | {r['n']} | {sk.mean():.4f} ± {sk.std():.4f} "
              f"| {nx.mean():.4f} ± {nx.std():.4f} | {nx.mean() - sk.mean():+.4f} "
              f"| {r['sk_iter']:.0f} / {r['nx_iter']:.0f} | {r['sk_ms']:.2f} | {r['nx_ms']:.2f} "
              f"| {r['sk_ms'] / r['nx_ms']:.2f}x |")


def digits_backends(backends, seeds):
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
    print(f"\n### Digits, `make_pipeline(StandardScaler(), NNXClassifier(dtype=\"float32\", "
          f"random_state=seed))`, {len(seeds)} seeds\n")
    print("| backend | mean test accuracy | min | max | points from numpy "
          "| wall s per fit (median) |")
    print("|---|---|---|---|---|---|")
    reference = rows[0][1].mean()
    for backend, scores, sec in rows:
        print(f"| {backend} | {scores.mean():.4f} | {scores.min():.4f} | {scores.max():.4f} "
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

    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, one BLAS thread; "
          "ms/epoch is CPU time")
    with threadpool_limits(1):
        for dtype in [] if args.digits_only else dtypes:
            print_parity(parity(names, seeds, getattr(np, dtype)), getattr(np, dtype), len(seeds))
        digits_backends(backends, seeds)


if __name__ == "__main__":
    main()
