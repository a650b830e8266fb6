#!/usr/bin/env python
"""How good a model ``nnx train --data NAME`` gives with nothing else on the command line.

Trains every bundled data set through the command itself (``nnx.cli.main``, figures off) with
the default options, once per seed (``--seed`` draws both the 80/20 split and the initial
weights), and prints the test score of each run, accuracy or R², next to a linear model
fitted to the same standardized training rows (scikit-learn's ``LogisticRegression`` /
``RidgeCV``): the reference a default MLP should reach or beat. ``--options`` adds command-line
options to every run, to compare other settings against the defaults.

Usage::

    python benchmarks/cli_defaults.py [--seeds 5] [--datasets moons,iris] [--options "--optimizer sgd"]
        [--out benchmarks/results/cli-defaults.md]

It prints a Markdown table and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

from nnx import cli, datasets


def run_cli(name, seed, options) -> tuple[float, int]:
    """Test score and epochs run of ``nnx train --data name --seed seed *options``."""
    with tempfile.TemporaryDirectory() as out, \
            mock.patch.object(cli, "_train_plots", lambda *a, **k: []), \
            contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["train", "--data", name, "--seed", str(seed), "--out", out, *options])
        if code != 0:
            raise RuntimeError(f"nnx train --data {name} failed: {err.getvalue()[-500:]}")
        report = json.loads((Path(out) / "metrics.json").read_text())
    metrics = report["metrics"]
    return metrics.get("accuracy", metrics.get("r2")), report["epochs_run"]


def linear_reference(name, seed) -> float:
    """A linear model's test score on the split and scaling ``nnx train`` uses."""
    from sklearn.linear_model import LogisticRegression, RidgeCV

    data = datasets.load(name)
    train, test = datasets.train_test_indices(data.X.shape[0], 0.2, seed)
    scaler = datasets.Standardizer().fit(data.X[train])
    X_train, X_test = scaler.transform(data.X[train]), scaler.transform(data.X[test])
    model = RidgeCV() if data.task == "regression" else LogisticRegression(max_iter=5000)
    return float(model.fit(X_train, data.y[train]).score(X_test, data.y[test]))


def measure(names, seeds, options) -> list[dict]:
    rows = []
    for name in names:
        runs = [run_cli(name, seed, options) for seed in seeds]
        scores = [score for score, _ in runs]
        rows.append({
            "dataset": name,
            "score": "R²" if datasets.load(name).task == "regression" else "accuracy",
            "mean": float(np.mean(scores)), "min": float(np.min(scores)),
            "epochs": float(np.mean([epochs for _, epochs in runs])),
            "linear": float(np.mean([linear_reference(name, seed) for seed in seeds])),
        })
        print(f"  {name}: {scores}", flush=True)
    return rows


def table(rows, seeds, options) -> str:
    head = (f"`nnx train --data NAME {' '.join(options)}`".replace(" `", "`") +
            f", test score over seeds {seeds[0]}..{seeds[-1]} (split and initial weights)\n\n"
            "| data set | score | mean | worst | epochs run (mean) | linear model (mean) |\n"
            "|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['dataset']} | {r['score']} | {r['mean']:.3f} | {r['min']:.3f} | "
        f"{r['epochs']:.0f} | {r['linear']:.3f} |\n" for r in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per data set (default: 5)")
    parser.add_argument("--datasets", default=",".join(datasets.NAMES),
                        help="comma-separated names (default: every bundled data set)")
    parser.add_argument("--options", default="",
                        help="extra nnx train options for every run, e.g. \"--optimizer sgd\"")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the table to this file too (default: print only)")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    options = shlex.split(args.options)
    text = table(measure(args.datasets.split(","), seeds, options), seeds, options)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
