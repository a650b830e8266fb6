"""Wall-clock time to a test accuracy on scikit-learn's digits, nnx against MLPClassifier."""

from __future__ import annotations

import time
import warnings

import numpy as np

import nnx

from .harness import summary

OPTIMIZER, LEARNING_RATE = "adam", 1e-3


def run_accuracy(args, log, target=0.97, max_epochs=300, seeds=(0, 1, 2, 3, 4)):
    """Wall-clock from construction to >= ``target`` test accuracy on digits (75/25 split).

    Both train 64-64-32-10 (ReLU) with batch 32 and Adam at 1e-3, alpha 0, and check the
    test accuracy after every epoch (nnx: a callback; sklearn: ``partial_fit`` + ``score``,
    its incremental API). ``sk-oracle`` is ``fit(max_iter=k)`` told the epoch count k that
    sklearn needed, a lower bound no real user gets.
    """
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

    class StopAt(nnx.callbacks.Callback):
        def __init__(self):
            self.epochs = None

        def on_epoch_end(self, epoch, logs=None):
            if self.network.score(Xte, yte) >= target:
                self.epochs = epoch + 1
                self.network.stop_training = True

    def nnx_run(seed):
        t0 = time.perf_counter()
        net = nnx.Network([64, 64, 32, 10], activation="relu",
                          optimizer=nnx.optimizers.Adam(learning_rate=LEARNING_RATE), seed=seed,
                          backend=args.backend, device=args.device)
        cb = StopAt()
        net.fit(Xtr, ytr, epochs=max_epochs, batch_size=32, callbacks=[cb])
        return time.perf_counter() - t0, cb.epochs

    def sk_clf(seed, max_iter=1):
        return MLPClassifier(hidden_layer_sizes=(64, 32), solver=OPTIMIZER, alpha=0.0,
                             batch_size=32, learning_rate_init=LEARNING_RATE, max_iter=max_iter,
                             tol=0.0, n_iter_no_change=max_iter + 1, random_state=seed,
                             shuffle=True)

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
    out = {"optimizer": OPTIMIZER, "learning_rate": LEARNING_RATE, "target": target,
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
