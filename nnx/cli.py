"""The ``nnx`` command: lesson figures, training on bundled data or a CSV, prediction, info.

::

    nnx demo [--out DIR] [--backend B] [--quick]
    nnx train --data moons [--hidden 64,32] [--optimizer adam] [--epochs 100] [--out DIR]
    nnx train --csv data.csv --target label [...]
    nnx predict --model DIR/model.nnx --csv new.csv [--out predictions.csv]
    nnx info

Every mistake of the user (missing file, unknown column, non-numeric or missing values in the
CSV, a malformed option, an output folder that cannot be written) ends with one line on stderr
and exit status 2, never a traceback. ``NNX_DEBUG=1`` shows the traceback instead.

``nnx train`` writes the trained network to ``--out``/``model.nnx`` (see :mod:`nnx.io`) with
the feature names, the target and the task; ``nnx predict`` picks those columns of a new CSV
by name. Training standardizes the features (mean and deviation of the training rows) and, for
regression, the target; both are then folded into the first and last Dense layers, so the saved
model takes the raw CSV columns and returns values in the target's own units:

.. math::
    \\frac{x - \\mu}{\\sigma} W + b = x \\, \\frac{W}{\\sigma}
    + \\Big(b - \\frac{\\mu}{\\sigma} W\\Big)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .version import __version__
from .checks import check_in_range

_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


class CLIError(Exception):
    """A user mistake: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (not usage + error) and goes through main."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- helpers


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_hidden(text: str) -> list[int]:
    """``"64,32"`` -> ``[64, 32]``; ``""`` or ``"none"`` -> no hidden layer."""
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return []
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise CLIError(
                f"--hidden must be comma-separated positive layer widths like 64,32; got {text!r}"
            )
        sizes.append(int(part))
    return sizes


def _prepare_out(folder) -> Path:
    """Create the output folder and prove it is writable before any training starts."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CLIError(f"output folder {str(path)!r} is not writable: {reason}") from None
    return path


def _use_agg():
    """Render into files only: no window, no display needed (called before pyplot loads)."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    return True


# --------------------------------------------------------------------------- CSV


def _is_missing(text: str) -> bool:
    return text.strip().lower() in _MISSING


def read_csv(path):
    """Header and rows (lists of stripped strings) of a CSV file, with shape checks."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no such CSV file: {str(path)!r}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [[cell.strip() for cell in row] for row in csv.reader(f) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"{str(path)!r} is not a readable CSV file: {exc}") from None
    if not rows:
        raise CLIError(f"{str(path)!r} is empty")
    header, body = rows[0], rows[1:]
    if not body:
        raise CLIError(f"{str(path)!r} has a header but no data rows")
    dupes = sorted({name for name in header if header.count(name) > 1})
    if dupes:
        raise CLIError(f"{str(path)!r} has duplicate column names: {', '.join(map(repr, dupes))}")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CLIError(
                f"{str(path)!r} line {i} has {len(row)} fields but the header has {len(header)}"
            )
    return header, body


def _check_no_missing(path, header, body, columns):
    """One error naming every column with missing cells (empty, NA, NaN, ...)."""
    bad = {}
    for i, row in enumerate(body, start=2):
        for j in columns:
            if _is_missing(row[j]):
                first, count = bad.get(header[j], (i, 0))
                bad[header[j]] = (first, count + 1)
    if bad:
        parts = [f"{name!r} ({count} row(s), first on line {first})"
                 for name, (first, count) in bad.items()]
        raise CLIError(
            f"{str(path)!r} has missing values in {', '.join(parts)}; fill or drop them first"
        )


def _numeric_columns(path, header, body, columns) -> np.ndarray:
    """The given columns as a float64 matrix; names every column that is not numeric."""
    _check_no_missing(path, header, body, columns)
    out = np.empty((len(body), len(columns)))
    bad = []
    for k, j in enumerate(columns):
        try:
            out[:, k] = [float(row[j]) for row in body]
        except ValueError:
            bad.append(header[j])
    if bad:
        raise CLIError(
            f"non-numeric feature column(s) in {str(path)!r}: {', '.join(map(repr, bad))}; "
            "encode them as numbers or drop them"
        )
    if not np.all(np.isfinite(out)):
        j = int(np.argwhere(~np.isfinite(out))[0][1])
        raise CLIError(f"column {header[columns[j]]!r} of {str(path)!r} contains inf or nan")
    for k, j in enumerate(columns):  # the saved model takes raw columns in float32
        check_in_range(out[:, k], f"column {header[j]!r} of {str(path)!r}", "float32",
                       hint="rescale that column")
    return out


def load_csv(path, target):
    """Features and target of a CSV file for ``nnx train``.

    Returns
    -------
    X : numpy.ndarray, shape (n_samples, n_features)
    y : numpy.ndarray of str or float
    feature_names : list of str
    """
    header, body = read_csv(path)
    if target not in header:
        raise CLIError(
            f"unknown target column {target!r} in {str(path)!r}; columns are: {', '.join(header)}"
        )
    t = header.index(target)
    features = [j for j in range(len(header)) if j != t]
    if not features:
        raise CLIError(f"{str(path)!r} has no feature columns besides the target {target!r}")
    X = _numeric_columns(path, header, body, features)
    _check_no_missing(path, header, body, [t])
    y = np.array([row[t] for row in body])
    return X, y, [header[j] for j in features]


def _target_task(y_text: np.ndarray, requested: str, name: str = "target"):
    """Decide classification vs regression and convert the target accordingly.

    ``auto``: text labels, or integers with at most 20 distinct values, are classes; other
    numbers are regression values.
    """
    try:
        values = y_text.astype(np.float64)
    except ValueError:
        values = None
    if values is not None and not np.all(np.isfinite(values)):  # "inf", "1e999"
        raise CLIError(f"the target column {name!r} contains inf; fix or drop those rows")
    if requested == "regression":
        if values is None:
            raise CLIError("--task regression needs a numeric target column")
        # predictions come out of a float32 network in the target's own units
        return "regression", check_in_range(values, f"the target column {name!r}", "float32",
                                            hint="rescale that column")
    # integers exactly representable as such (2**53), so the int64 labels are the same numbers
    integral = values is not None and np.all((values == np.round(values))
                                             & (np.abs(values) < 2.0**53))
    if requested == "auto" and values is not None and not (
            integral and np.unique(values).size <= 20):
        return "regression", check_in_range(values, f"the target column {name!r}", "float32",
                                            hint="rescale that column")
    if integral:
        return "classification", values.astype(np.int64)
    return "classification", y_text


# --------------------------------------------------------------------------- commands


def cmd_info(args) -> int:
    from . import backend

    print(f"nnx {__version__}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"backends usable here: {', '.join(backend.available_backends())}")
    print("devices:")
    for name, devices in backend.device_info().items():
        # a backend that cannot run here maps to the reason, said as it is
        print(f"  {name}: {devices if isinstance(devices, str) else ', '.join(devices)}")
    extras = []
    for module, purpose in (("matplotlib", "plots"), ("sklearn", "datasets, estimators"),
                            ("tqdm", "progress bars")):
        try:
            version = __import__(module).__version__
        except ImportError:
            version = "not installed"
        extras.append(f"{module} {version} ({purpose})")
    print("optional: " + "; ".join(extras))
    return 0


def cmd_demo(args) -> int:
    out = _prepare_out(args.out)
    if not _use_agg():
        raise CLIError("nnx demo draws figures with matplotlib: pip install 'nnx[plot]'")
    from . import demos

    if args.only:
        files = []
        for name in args.only:
            files += demos.DEMOS[name](out=out, backend=args.backend, device=args.device,
                                       quick=args.quick, dpi=args.dpi)["files"]
        print("\nFigures written:\n" + "\n".join(f"  {f}" for f in files))
    else:
        demos.run_all(out=out, backend=args.backend, device=args.device, quick=args.quick,
                      dpi=args.dpi)
    return 0


def _training_data(args):
    from . import datasets

    if args.data is not None:
        data = datasets.load(args.data)
        task = "regression" if data.task == "regression" else "classification"
        if args.task != "auto" and args.task != task:
            raise CLIError(f"dataset {args.data!r} is a {task} problem; drop --task {args.task}")
        y = data.y
        if task == "classification":
            y = np.asarray(data.target_names)[data.y] if data.name in datasets.SKLEARN else y
        return data.X, y, task, list(data.feature_names), "target", args.data
    X, y_text, features = load_csv(args.csv, args.target)
    task, y = _target_task(y_text, args.task, args.target)
    return X, y, task, features, args.target, str(args.csv)


def _build_network(args, n_features, n_outputs, task):
    """Hidden blocks ``Dense -> [BatchNorm] -> activation -> [Dropout]``, then a logit layer."""
    from . import layers, optimizers
    from .network import Network

    stack = []
    for width in parse_hidden(args.hidden):
        if args.batch_norm:
            # normalize the pre-activations, then apply the nonlinearity
            stack += [layers.Dense(width), layers.BatchNorm(), layers.Activation(args.activation)]
        else:
            stack.append(layers.Dense(width, activation=args.activation))
        if args.dropout != 0:  # Dropout checks the range (a negative rate is an error)
            stack.append(layers.Dropout(args.dropout))
    stack.append(layers.Dense(n_outputs))
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 1e-3)
    loss = "mse" if task == "regression" else None  # None: picked from the output width
    return Network(stack, input_dim=n_features, loss=loss,
                   optimizer=optimizers.get(args.optimizer, lr), l2=args.l2,
                   backend=args.backend, device=args.device, seed=args.seed)


def _fold_affine(net, x_mean, x_scale, y_mean=None, y_scale=None):
    """Fold input standardization into the first Dense layer and the target's into the last,
    so the network maps raw features to raw targets (in float64 on the host, then cast)."""
    params = {k: np.asarray(_host(v), dtype=np.float64) for k, v in net.parameters().items()}
    W, b = params["layers.0.W"], params["layers.0.b"]
    new = {"layers.0.W": W / x_scale[:, None], "layers.0.b": b - (x_mean / x_scale) @ W}
    if y_mean is not None:
        last = len(net.layers) - 1
        Wl = new.get(f"layers.{last}.W", params[f"layers.{last}.W"])
        bl = new.get(f"layers.{last}.b", params[f"layers.{last}.b"])
        new[f"layers.{last}.W"] = Wl * y_scale
        new[f"layers.{last}.b"] = bl * y_scale + y_mean
    net.set_parameters(new)


def _host(x):
    from .backend import to_numpy

    return to_numpy(x)


def cmd_train(args) -> int:
    from . import datasets

    if (args.data is None) == (args.csv is None):
        raise CLIError("give exactly one of --data NAME or --csv FILE")
    if args.csv is not None and args.target is None:
        raise CLIError("--csv needs --target COLUMN (the column to predict)")
    parse_hidden(args.hidden)  # fail before loading anything
    out = _prepare_out(args.out)
    X, y, task, features, target, source = _training_data(args)
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=args.test_size, seed=args.seed)
    if task == "regression" and X_test.shape[0] < 2:  # else the test R^2 would be NaN
        raise CLIError(
            f"{X.shape[0]} rows leave {X_test.shape[0]} test row(s) and R^2 needs at least 2: "
            "add rows or raise --test-size"
        )
    if task == "classification":
        unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
        if unseen.size:
            raise CLIError(
                f"class(es) {', '.join(map(repr, unseen.tolist()))} of {target!r} have too few "
                "rows: none landed in the training split (add rows or change --seed)"
            )
    x_scaler = datasets.Standardizer().fit(X_train)
    y_mean = y_scale = None
    y_fit = y_train
    if task == "regression":
        y_mean, y_scale = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
        y_fit = (y_train - y_mean) / y_scale
        n_outputs = 1
    else:
        classes = np.unique(y_train)
        if classes.size < 2:
            raise CLIError(f"the target {target!r} has a single class in the training rows")
        n_outputs = 1 if classes.size == 2 else int(classes.size)
    net = _build_network(args, X.shape[1], n_outputs, task)
    print(f"Training on {source}: {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
          f"{X.shape[1]} features, {task}"
          + ("" if task == "regression" else f" ({np.unique(y).size} classes)"))
    net.summary()
    callbacks, validation_split = [], None
    if args.early_stopping:
        from .callbacks import EarlyStopping

        # the best epoch's weights are restored, judged on rows held out of the training part
        callbacks.append(EarlyStopping(monitor="val_loss", patience=args.patience))
        validation_split = args.validation_split
    history = net.fit(x_scaler.transform(X_train), y_fit, epochs=args.epochs,
                      batch_size=args.batch_size, verbose=1, callbacks=callbacks,
                      validation_split=validation_split)
    _fold_affine(net, x_scaler.mean_, x_scaler.scale_, y_mean, y_scale)
    metrics = _test_metrics(net, X_test, y_test, task)
    print("Test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    report = {
        "source": source, "task": task, "target": target, "features": features,
        "n_train": int(X_train.shape[0]), "n_test": int(X_test.shape[0]),
        "hidden": parse_hidden(args.hidden), "activation": args.activation,
        "optimizer": args.optimizer, "learning_rate": net.optimizer.learning_rate,
        "dropout": args.dropout, "l2": args.l2, "batch_norm": args.batch_norm,
        "early_stopping": args.early_stopping, "epochs_run": len(history.history["loss"]),
        "epochs": args.epochs, "batch_size": args.batch_size,
        "backend": args.backend, "seed": args.seed, "metrics": metrics,
        "history": history.history,
    }
    # The folded network maps raw CSV columns to labels or target units; the column names
    # go with it so that `nnx predict` can pick them out of a new CSV. No optimizer state:
    # its moments belong to the unfolded (standardized) parameters.
    model = net.save(out / "model.nnx", include_optimizer=False,
                     metadata={"features": features, "target": target, "task": task,
                               "source": source})
    report["model"] = str(model)
    written = [str(model), _write_json(out / "metrics.json", report)]
    written += _train_plots(net, history, X_test, y_test, task, out, args.dpi)
    print("Wrote:\n" + "\n".join(f"  {p}" for p in written))
    return 0


def _test_metrics(net, X_test, y_test, task) -> dict:
    from . import metrics

    pred = _host(net.predict(X_test))
    if task == "regression":
        return {"mse": metrics.mean_squared_error(y_test, pred),
                "mae": metrics.mean_absolute_error(y_test, pred),
                "r2": metrics.r2_score(y_test, pred)}
    return {"loss": net.evaluate(X_test, y_test)["loss"],
            "accuracy": metrics.accuracy_score(y_test, pred),
            "f1_macro": metrics.f1_score(y_test, pred, average="macro")}


def _write_json(path, obj) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=str)
    return str(path)


def _train_plots(net, history, X_test, y_test, task, out, dpi) -> list:
    if not _use_agg():
        print("(plots skipped: pip install 'nnx[plot]' to get them)")
        return []
    from . import plotting

    files = []
    fig, _ = plotting.plot_history(history)
    files.append(plotting.save_figure(fig, out / "history.png", dpi))
    if task == "classification":
        classes = net.classes_
        if X_test.shape[1] == 2:
            ax = plotting.plot_decision_boundary(net, X_test, y_test,
                                                 title="Decision boundary (test rows)")
            files.append(plotting.save_figure(ax.figure, out / "decision_boundary.png", dpi))
        from .metrics import confusion_matrix

        cm = confusion_matrix(y_test, _host(net.predict(X_test)), labels=classes)
        ax = plotting.plot_confusion_matrix(cm, labels=classes, title="Confusion matrix (test)")
        files.append(plotting.save_figure(ax.figure, out / "confusion_matrix.png", dpi))
    return files


def cmd_predict(args) -> int:
    """Predict every row of a CSV with a model written by ``nnx train`` (or ``Network.save``).

    The model's feature columns are picked by name (other columns, the target included, are
    ignored for the prediction); the output is the input CSV with a ``predicted_<target>``
    column, and one ``proba_<label>`` column per class for classifiers.
    """
    from .io import load

    if not args.model.is_file():
        raise CLIError(f"no such model file: {str(args.model)!r}")
    net = load(args.model, backend=args.backend, device=args.device)
    header, body = read_csv(args.csv)
    meta = net.metadata
    features = meta.get("features")
    if features is None:  # saved from Python without names: every column, in order
        if len(header) != net.input_dim:
            raise CLIError(
                f"the model has no feature names and takes {net.input_dim} column(s); "
                f"{str(args.csv)!r} has {len(header)}"
            )
        features = header
    missing = [name for name in features if name not in header]
    if missing:
        raise CLIError(
            f"{str(args.csv)!r} lacks the feature column(s) {', '.join(map(repr, missing))} "
            f"the model was trained on; its columns are: {', '.join(header)}"
        )
    X = _numeric_columns(args.csv, header, body, [header.index(name) for name in features])
    target = meta.get("target", "target")
    pred = _host(net.predict(X))
    columns, names = [], []
    if pred.ndim == 1:
        columns.append(pred)
        names.append(f"predicted_{target}")
    else:
        for j in range(pred.shape[1]):
            columns.append(pred[:, j])
            names.append(f"predicted_{target}_{j}")
    if net.targets_.kind != "regression":
        proba = _host(net.predict_proba(X))
        for j, label in enumerate(net.classes_.tolist()):
            columns.append(proba[:, j])
            names.append(f"proba_{label}")
    table = [row + [_cell(col[i]) for col in columns] for i, row in enumerate(body)]
    if args.out is None:
        _write_csv(sys.stdout, header + names, table)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header + names, table)
        print(f"Wrote {len(table)} predictions to {args.out}")
    return 0


def _cell(value) -> str:
    """Labels as they were given; numbers with float32's precision (8 significant digits)."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return str(value)


def _write_csv(stream, header, rows):
    writer = csv.writer(stream)
    writer.writerow(header)
    writer.writerows(rows)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from . import datasets
    from .backend import BACKENDS

    parser = _Parser(prog="nnx", description=(
        "Readable multi-layer perceptrons with hand-written backprop on NumPy, CuPy or PyTorch."))
    parser.add_argument("--version", action="version", version=f"nnx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    def common(p, out_default):
        p.add_argument("--backend", default="numpy", choices=BACKENDS,
                       help="array backend to compute on (default: numpy)")
        p.add_argument("--device", default=None,
                       help="device for the backend, e.g. cuda:0 (default: the backend's)")
        p.add_argument("--out", default=out_default, metavar="DIR",
                       help=f"output folder (default: {out_default})")
        p.add_argument("--dpi", type=_positive_int, default=100, help="figure resolution")

    p = sub.add_parser("demo", help="regenerate every figure of the lesson",
                       description="Run the lesson's demonstrations with nnx and write their "
                                   "figures (PNG) to --out.")
    common(p, "nnx-output")
    p.add_argument("--quick", action="store_true",
                   help="smaller data and fewer epochs (seconds; for tests)")
    from .demos import DEMOS

    p.add_argument("--only", nargs="+", choices=list(DEMOS), metavar="NAME",
                   help=f"run only these demos: {', '.join(DEMOS)}")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a network on bundled data or a CSV file",
                       description="Train an MLP, print test metrics, and write metrics.json "
                                   "and plots to --out.")
    src = p.add_argument_group("data (one of)")
    src.add_argument("--data", choices=datasets.NAMES, help="a bundled dataset")
    src.add_argument("--csv", type=Path, metavar="FILE", help="a CSV file with a header row")
    src.add_argument("--target", metavar="COLUMN", help="the column of --csv to predict")
    src.add_argument("--task", choices=("auto", "classification", "regression"),
                     default="auto", help="what the target is (default: guessed)")
    src.add_argument("--test-size", type=_float, default=0.2,
                     help="fraction of rows held out for testing (default: 0.2)")
    net = p.add_argument_group("network and training")
    net.add_argument("--hidden", default="64,32", help="hidden layer widths (default: 64,32)")
    net.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
    net.add_argument("--optimizer", default="adam",
                     help="optimizer name: sgd, momentum, adam, adamw, rmsprop, ... "
                          "(default: adam)")
    net.add_argument("--lr", type=_float, default=None,
                     help="learning rate (default: 0.1 for sgd, 1e-3 otherwise)")
    net.add_argument("--epochs", type=_positive_int, default=100)
    net.add_argument("--batch-size", type=_positive_int, default=32)
    net.add_argument("--dropout", type=_float, default=0.0, metavar="P",
                     help="dropout rate after each hidden layer")
    net.add_argument("--l2", type=_float, default=0.0, help="L2 weight penalty")
    net.add_argument("--batch-norm", action="store_true",
                     help="batch normalization after each hidden layer")
    net.add_argument("--early-stopping", action="store_true",
                     help="hold out --validation-split of the training rows and stop when "
                          "their loss has not improved for --patience epochs (best weights "
                          "are restored)")
    net.add_argument("--validation-split", type=_float, default=0.1,
                     help="fraction held out for --early-stopping (default: 0.1)")
    net.add_argument("--patience", type=_positive_int, default=10,
                     help="epochs without improvement before --early-stopping stops "
                          "(default: 10)")
    net.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    common(p, "nnx-output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predict a CSV file with a saved model",
                       description="Load a model written by 'nnx train' and predict every row "
                                   "of a CSV file.")
    p.add_argument("--model", type=Path, required=True, metavar="FILE")
    p.add_argument("--csv", type=Path, required=True, metavar="FILE")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write predictions here (default: print them)")
    p.add_argument("--backend", default="numpy", choices=BACKENDS)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("info", help="version, usable backends and devices",
                       description="Show the nnx version, the backends usable here and their "
                                   "devices.")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``nnx`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (CLIError, ValueError, ImportError, OSError, FloatingPointError) as exc:
        # FloatingPointError: nnx.DivergenceError, e.g. a --lr far too high
        if os.environ.get("NNX_DEBUG"):
            raise
        prefix = f"{type(exc).__name__}: " if isinstance(exc, (ImportError, OSError)) else ""
        message = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"nnx: error: {prefix}{message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
