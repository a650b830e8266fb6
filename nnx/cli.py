"""The ``nnx`` command: lesson figures, training on bundled data, a CSV or NumPy files,
prediction, info.

::

    nnx demo [--out DIR] [--backend B] [--quick]
    nnx train --data moons [--hidden 64,32] [--optimizer adam] [--epochs 300] [--out DIR]
    nnx train --csv data.csv --target label [--features A,B | --drop C] [--missing median]
              [--categorical auto] [--delimiter ';'] [--decimal ,] [--na-values -] [...]
    nnx train --data X.npy --target y.npy [...]       # memory-mapped, read batch by batch
    nnx train --data data.npz [...]                   # arrays X and y, loaded into memory
    nnx predict --model DIR/model.nnx --csv new.csv [--out predictions.csv]
                [--missing-rows skip]
    nnx predict --model DIR/model.nnx --data X.npy [--out predictions.npy]
    nnx info

``.npy`` features are opened with ``np.load(path, mmap_mode="r")`` and never loaded whole:
they are checked and their statistics taken block by block
(:meth:`nnx.datasets.Standardizer.partial_fit`), the training rows are standardized once into
a scratch ``.npy`` under ``--out`` (deleted after training) whose memmap ``Network.fit`` reads
batch by batch, and the test rows are predicted a block at a time. The split and the order
of the training rows are those of the same data in memory (same ``--seed``); each block of
rows is read in file order. Only the labels (one value per row) are read into memory. NumPy
cannot memory-map the members of an ``.npz``, so an ``.npz`` is loaded whole: use ``.npy``
files for data larger than memory.

A CSV goes through :mod:`nnx.tabular`: the delimiter and decimal mark are detected (or
given), columns are chosen (unnamed ones left out), missing cells (with the ``--na-values``
markers) refused, left out or filled, text columns one-hot encoded; that preparation is
learned from the training file (fill values from the training split only).

The defaults (Adam at 0.01, early stopping on the last 20% of the training rows with a
patience of 40, up to 300 epochs) train every bundled data set well;
``benchmarks/cli_defaults.py`` measures them. The rows early stopping holds out are the tail
of the training rows, which are already in the split's random order, for arrays and memmaps
alike.

Every mistake of the user (missing file, unknown column, text or missing cells without the
option that handles them, a malformed option, an output folder that cannot be written) ends
with one line on stderr and exit status 2, never a traceback. ``NNX_DEBUG=1`` shows the
traceback instead.

``nnx train`` writes the trained network to ``--out``/``model.nnx`` (see :mod:`nnx.io`) with
the feature names (none for arrays), the feature count, the target, whether it is
classification or regression, the data source and, for a CSV, the preparation
(:meth:`nnx.tabular.Preparation.to_dict`); ``nnx predict`` finds those columns of a new CSV
by name and prepares them the same way. Training standardizes the features (mean and deviation of the training rows)
and, for regression, the target; both are then folded into the first and last Dense layers,
so the saved model takes the raw columns and returns values in the target's own units:

.. math::
    \\frac{x - \\mu}{\\sigma} W + b = x \\, \\frac{W}{\\sigma}
    + \\Big(b - \\frac{\\mu}{\\sigma} W\\Big)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import tabular
from .checks import check_in_range, first_nonfinite
from .version import __version__

_MISSING = tabular.MISSING  # cells read as missing (see nnx.tabular)


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


def _data_source(text):
    """``--data`` of ``nnx train``: a bundled dataset's name, or a ``.npy`` / ``.npz`` path."""
    from .datasets import NAMES

    if text in NAMES:
        return text
    if _is_array_file(text):
        return text
    hint = " (a CSV file goes to --csv FILE --target COLUMN)" if text.lower().endswith(
        ".csv") else ""
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r}: give a bundled dataset ({', '.join(NAMES)}) or a .npy or "
        f".npz file{hint}"
    )


def _array_file(text):
    """``--data`` of ``nnx predict``: a ``.npy`` or ``.npz`` path."""
    if not _is_array_file(text):
        raise argparse.ArgumentTypeError(f"expected a .npy or .npz file, got {text!r}")
    return text


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


# --------------------------------------------------------------------------- .npy / .npz

#: rows are read from a memory-mapped file in blocks of about this many bytes (as float64)
BLOCK_BYTES = 32 * 2**20

_ARRAY_SUFFIXES = (".npy", ".npz")


def _is_array_file(path) -> bool:
    return Path(path).suffix.lower() in _ARRAY_SUFFIXES


def _block_rows(n_features: int) -> int:
    return max(1, BLOCK_BYTES // (8 * max(1, n_features)))


def _load_npy(path, what: str):
    """A ``.npy`` file memory-mapped read-only (``np.load(path, mmap_mode="r")``): nothing
    is read until rows are used."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no such .npy file ({what}): {str(path)!r}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # not .npy, truncated, Python objects
        raise CLIError(f"{str(path)!r} is not a readable .npy file: {_npy_reason(exc)}") from None
    if not isinstance(arr, np.ndarray):  # an .npz renamed .npy
        raise CLIError(f"{str(path)!r} is not a single-array .npy file")
    return arr


def _npy_reason(exc) -> str:
    # NumPy falls back to unpickling what is not an .npy or .npz, then refuses to
    if "pickle" in str(exc):
        return "not in NumPy's format, or it holds Python objects (save numbers with np.save)"
    return str(exc)


def _load_npz(path, names):
    """The named arrays of an ``.npz`` file, loaded into memory (NumPy cannot memory-map
    the members of a zip archive)."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no such .npz file: {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise CLIError(f"{str(path)!r} is a .npy file, not an .npz archive")
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise CLIError(
                    f"{str(path)!r} has no array named {', '.join(map(repr, missing))} (it holds: "
                    f"{', '.join(archive.files) or 'nothing'}); save it with "
                    f"np.savez(path, {', '.join(f'{n}={n}' for n in names)})"
                )
            return [archive[name] for name in names]
    except (ValueError, OSError, EOFError) as exc:  # not a zip, truncated, Python objects
        raise CLIError(f"{str(path)!r} is not a readable .npz file: {_npy_reason(exc)}") from None


def _check_feature_array(X, name: str, n_features=None):
    """Shape and dtype of a feature matrix from a file (no data read)."""
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CLIError(
            f"the features in {name} must be a 2-D array of shape (rows, features) with at "
            f"least one of each; got shape {X.shape}"
        )
    if X.dtype.kind != "f":
        raise CLIError(
            f"the features in {name} must be floats; got {X.dtype} (save them with "
            "X.astype(np.float32))"
        )
    if n_features is not None and X.shape[1] != n_features:
        raise CLIError(
            f"the model takes {n_features} feature(s) per row; the features in {name} have "
            f"{X.shape[1]}"
        )
    return X


def _check_label_array(y, n_rows: int, name: str, features: str):
    """1-D labels (or one column), one per row of the features, as an in-memory array."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise CLIError(f"the labels in {name} must be 1-D, one per row; got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise CLIError(
            f"the labels in {name} have {y.shape[0]} rows but the features in {features} have "
            f"{n_rows}"
        )
    if y.dtype.kind == "S":
        y = y.astype(str)
    if y.dtype.kind not in "biufU":
        raise CLIError(f"the labels in {name} must be numbers or text; got {y.dtype}")
    y = np.array(y)  # labels are one value per row: read them into memory
    if y.dtype.kind == "f" and np.isnan(y).any():
        first = int(np.flatnonzero(np.isnan(y))[0])
        raise CLIError(f"the labels in {name} contain NaN (first at row {first}); drop those rows")
    return y


def load_arrays(data, target=None):
    """Features and labels of ``nnx train --data X.npy --target y.npy`` or ``--data d.npz``.

    A ``.npy`` pair is memory-mapped: the features stay on disk (a ``numpy.memmap``) and only
    the labels are read. An ``.npz`` holds arrays ``X`` and ``y`` and is loaded whole.

    Returns
    -------
    X : numpy.ndarray or numpy.memmap, shape (n_samples, n_features), float
    y : numpy.ndarray, shape (n_samples,)
    source : str
        The file(s) the data came from.
    """
    data = Path(data)
    features = _features_name(data)
    if data.suffix.lower() == ".npz":
        X, y = _load_npz(data, ["X", "y"])
        labels, source = f"{str(data)!r} (array y)", str(data)
    else:
        X = _load_npy(data, "features")
        y = _load_npy(target, "labels")
        labels, source = repr(str(target)), f"{data} + {target}"
    _check_feature_array(X, features)
    return X, _check_label_array(y, X.shape[0], labels, features), source


def _features_name(path) -> str:
    """How errors name the features of a ``.npy`` or ``.npz`` file."""
    path = Path(path)
    return f"{str(path)!r}" + (" (array X)" if path.suffix.lower() == ".npz" else "")


def _checked_block(block, start: int, name: str):
    """One block of feature rows, refused with its file row when it holds NaN, inf, or
    values a float32 model cannot take."""
    bad = first_nonfinite(block)
    if bad is not None:
        raise CLIError(
            f"the features in {name} hold NaN or inf (first at row {start + bad[0]}, column "
            f"{bad[1]}); drop or fill those rows first"
        )
    check_in_range(block, name, "float32", hint="rescale those columns")
    return block


def _scan_features(X, name: str, train_rows=None):
    """Check every row of ``X``, reading it in blocks (a memmap is never loaded whole), and,
    given the training rows, fit a Standardizer on them chunk by chunk
    (:meth:`~nnx.datasets.Standardizer.partial_fit`)."""
    from .datasets import Standardizer

    scaler = Standardizer()
    is_train = None
    if train_rows is not None:
        is_train = np.zeros(X.shape[0], dtype=bool)
        is_train[train_rows] = True
    step = _block_rows(X.shape[1])
    for start in range(0, X.shape[0], step):
        block = _checked_block(np.asarray(X[start:start + step]), start, name)
        if is_train is not None:
            rows = block[is_train[start:start + step]]
            if rows.shape[0]:
                scaler.partial_fit(rows)
    return scaler


def _gather(X, rows) -> np.ndarray:
    """``X[rows]`` in memory, the rows read in file order (a memmap is read front to back
    within the block) and put back in the order asked for."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((rows.shape[0],) + X.shape[1:], dtype=X.dtype)
    out[order] = X[rows[order]]
    return out


def _standardized_copy(X, rows, scaler, path: Path, dtype: str):
    """``scaler.transform(X[rows])`` written block by block to a ``.npy`` file of the
    network's dtype, returned memory-mapped read-only."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(rows.shape[0], X.shape[1]))
    step = _block_rows(X.shape[1])
    for start in range(0, rows.shape[0], step):
        out[start:start + step] = scaler.transform(_gather(X, rows[start:start + step]))
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


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
                            ("mpi4py", "data-parallel training")):
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
        raise CLIError("nnx demo draws figures with matplotlib: pip install 'nnx-mlp[plot]'")
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
    """``(X, y, task, features, target, source, source_format, preparation)`` of ``nnx
    train``'s data options; ``X`` is a memmap for a ``.npy`` file, an in-memory array
    otherwise; ``preparation`` is the CSV's :class:`~nnx.tabular.Preparation` (else None)."""
    from . import datasets

    if args.data is not None and _is_array_file(args.data):
        X, y_raw, source = load_arrays(args.data, args.target)
        npz = Path(args.data).suffix.lower() == ".npz"
        target = "y" if npz else Path(args.target).stem
        task, y = _target_task(y_raw, args.task, target)
        return X, y, task, None, target, source, "npz" if npz else "npy", None
    if args.data is not None:
        data = datasets.load(args.data)
        task = "regression" if data.task == "regression" else "classification"
        if args.task != "auto" and args.task != task:
            raise CLIError(f"dataset {args.data!r} is a {task} problem; drop --task {args.task}")
        y = data.y
        if task == "classification":
            y = np.asarray(data.target_names)[data.y] if data.name in datasets.SKLEARN else y
        return (data.X, y, task, list(data.feature_names), "target", args.data, "bundled",
                None)
    X, y, task, prep = _csv_training_data(args)
    return X, y, task, prep.input_columns, args.target, str(args.csv), "csv", prep


def _csv_training_data(args):
    """Read ``--csv``, leave out rows as ``--missing`` says, learn the preparation of the
    feature columns (fill values from the training split only) and apply it."""
    table = tabular.read_table(args.csv, args.delimiter)
    table = table.using(na_values=tabular.split_names(args.na_values))
    target = args.target
    columns = tabular.select_columns(table, target, tabular.split_names(args.features),
                                     tabular.split_names(args.drop))
    unnamed = table.unnamed()
    if unnamed:  # pandas' unnamed index column, or a trailing delimiter's empty one
        print(f"Left out {len(unnamed)} column(s) without a name in the header of "
              f"{table.name} (position {tabular.shorten(unnamed)} of {len(table.header)})")
    decimal = args.decimal
    if decimal == "auto":
        decimal = tabular.detect_decimal(table, columns)
        if decimal == ",":
            print(f"Reading the numbers of {table.name} with decimal commas (1,5 is 1.5); "
                  "--decimal . reads them as text")
    table = table.using(decimal=decimal)
    for column in tabular.row_index_columns(table, columns):
        # on stdout with the other notes: stderr holds one line, the error, if any
        print(f"Warning: column {column!r} of {table.name} holds the row numbers (0, 1, 2, "
              f"... in file order): a row index tells the model nothing about the target; "
              f"leave it out with --drop {column}")
    categorical = _categorical_columns(args.categorical, table, columns)
    if args.missing != "error":  # a target is never filled in: those rows are left out
        keep = tabular.rows_without_missing(
            table, [target] + (columns if args.missing == "drop" else []))
        if not all(keep):
            print(f"Left out {len(keep) - sum(keep)} of {len(keep)} rows with missing values "
                  f"(--missing {args.missing})")
            table = table.subset(keep)
        if not table.rows:
            raise CLIError(f"every row of {table.name} has a missing value; nothing is left")
    # the same split cmd_train makes next: fill values come from the training rows only
    try:
        train, _ = _split(len(table.rows), args)
    except CLIError:  # too few rows: a problem in the cells is the one to name first
        tabular.Preparation.fit(table, columns, np.arange(len(table.rows)),
                                categorical=categorical, missing=args.missing).transform(table)
        raise
    prep = tabular.Preparation.fit(table, columns, train, categorical=categorical,
                                   missing=args.missing)
    X = prep.transform(table)
    holes = tabular.missing_report(table, [target])
    if holes:
        raise CLIError(f"{table.name} has missing values in the target {holes}; leave those "
                       "rows out with --missing drop")
    task, y = _target_task(np.array(table.cells(target)), args.task, target)
    return X, y, task, prep


def _categorical_columns(spec, table, columns) -> list:
    """``--categorical``: ``none``, ``auto`` (every feature column holding text) or names."""
    if spec == "none":
        return []
    if spec == "auto":
        return tabular.auto_categorical(table, columns)
    names = tabular.split_names(spec)
    stray = [name for name in names if name not in columns]
    if stray:
        raise CLIError(f"--categorical names {tabular.shorten(map(repr, stray))}, not among "
                       f"the feature columns ({tabular.shorten(columns)})")
    return names


#: ``--lr`` when none is given. Adam's 0.01 (ten times torch's default) is what trains every
#: bundled data set well within the default epochs (``benchmarks/cli_defaults.py`` measures
#: it); the Adam family and SGD with momentum share it, plain SGD takes 0.1, and the rest
#: keep torch's defaults (Lion's is a tenth of Adam's by design; Adadelta and L-BFGS scale
#: their own steps).
DEFAULT_LEARNING_RATES = {
    "sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.01, "adamw": 0.01,
    "nadam": 0.01, "radam": 0.01, "adamax": 0.01, "adagrad": 0.01, "rmsprop": 0.01,
    "lion": 1e-3, "adadelta": 1.0, "lbfgs": 1.0,
}


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
    # an optimizer without an entry starts at its own default rate
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES.get(args.optimizer)
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


def _check_data_options(args):
    """The combinations of ``--data``, ``--csv`` and ``--target`` that ``nnx train`` takes."""
    if (args.data is None) == (args.csv is None):
        raise CLIError("give exactly one of --data NAME|FILE or --csv FILE")
    if not 0 < args.test_size < 1:
        raise CLIError(f"--test-size must be between 0 and 1 (a fraction of the rows); got "
                       f"{args.test_size:g}")
    if args.csv is not None and args.target is None:
        raise CLIError("--csv needs --target COLUMN (the column to predict)")
    if args.data is None or not _is_array_file(args.data):
        return
    if Path(args.data).suffix.lower() == ".npz":
        if args.target is not None:
            raise CLIError("an .npz file holds its labels as the array 'y'; drop --target")
    elif args.target is None:
        raise CLIError(f"--data {args.data} needs --target LABELS.npy (one label per row)")
    elif Path(args.target).suffix.lower() != ".npy":
        raise CLIError(f"with --data {args.data}, --target is the labels' .npy file; "
                       f"got {args.target!r}")


def cmd_train(args) -> int:
    """``nnx train``; in a data-parallel launch the ranks other than 0 train in silence."""
    plan = None
    if args.distributed is not None:
        from .distributed import DataParallel

        plan = DataParallel(args.distributed)
        if args.device is not None and "local" in args.device:  # cuda:local: one GPU a rank
            args.device = args.device.replace("local", str(plan.comm.local_rank))
    if plan is None or plan.rank == 0:
        return _train(args, plan)
    with contextlib.redirect_stdout(io.StringIO()):
        return _train(args, plan)


def _train(args, plan) -> int:
    from . import datasets

    _check_data_options(args)
    parse_hidden(args.hidden)  # fail before loading anything
    out = _prepare_out(args.out)
    X, y, task, features, target, source, source_format, prep = _training_data(args)
    train, test = _split(X.shape[0], args)
    streamed = isinstance(X, np.memmap)
    y_train, y_test = y[train], y[test]
    if task == "regression" and test.shape[0] < 2:  # else the test R^2 would be NaN
        raise CLIError(
            f"{X.shape[0]} rows leave {test.shape[0]} test row(s) and R^2 needs at least 2: "
            "add rows or raise --test-size"
        )
    if task == "classification":
        unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
        if unseen.size:
            raise CLIError(
                f"class(es) {', '.join(map(repr, unseen.tolist()))} of {target!r} have too few "
                "rows: none landed in the training split (add rows or change --seed)"
            )
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
    callbacks = []
    if args.early_stopping:
        from .callbacks import EarlyStopping

        # the best epoch's weights are restored, judged on rows held out of the training part
        callbacks.append(EarlyStopping(monitor="val_loss", patience=args.patience))
    with contextlib.ExitStack() as stack:
        if source_format in ("npy", "npz"):  # every row checked, block by block
            x_scaler = _scan_features(X, _features_name(args.data), train if streamed else None)
        if streamed:
            # The network reads the training rows from disk batch by batch; they are
            # standardized once into a scratch .npy of the network's dtype (as large as the
            # training rows), deleted after training. They go in the split's shuffled order,
            # as in memory: the rows early stopping holds out (the last ones) are a random
            # subset even when the file is sorted by class.
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix=".nnx-train-", dir=out, ignore_cleanup_errors=True)))
            X_fit = _standardized_copy(X, train, x_scaler, scratch / "train.npy",
                                       net.ctx.dtype_name)
        else:
            X_train = X[train]
            x_scaler = datasets.Standardizer().fit(X_train)
            X_fit = x_scaler.transform(X_train)
        print(f"Training on {source}: {train.shape[0]} train / {test.shape[0]} test rows, "
              f"{X.shape[1]} features, {task}"
              + ("" if task == "regression" else f" ({np.unique(y).size} classes)"))
        net.summary()
        validation = None
        if args.early_stopping:
            X_fit, y_fit, validation = _held_out_tail(X_fit, y_fit, args.validation_split)
            if task == "classification" and np.unique(y_fit).size < 2:
                raise CLIError(
                    f"the target {target!r} has a single class in the rows left to train on "
                    "after --validation-split holds out its part: add rows, lower "
                    "--validation-split or use --no-early-stopping")
        history = net.fit(X_fit, y_fit, epochs=args.epochs, batch_size=args.batch_size,
                          verbose=1, callbacks=callbacks, validation_data=validation,
                          distributed=plan)
        del X_fit, validation  # the scratch file's memory maps, closed before the folder goes
    if plan is not None and plan.rank != 0:  # one model, written by rank 0
        return 0
    _fold_affine(net, x_scaler.mean_, x_scaler.scale_, y_mean, y_scale)
    metrics, pred = _test_metrics(net, X, test, y_test, task)
    print("Test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    report = {
        "source": source, "source_format": source_format, "task": task, "target": target,
        "features": features, "n_features": int(X.shape[1]),
        "n_train": int(train.shape[0]), "n_test": int(test.shape[0]),
        "hidden": parse_hidden(args.hidden), "activation": args.activation,
        "optimizer": args.optimizer, "learning_rate": net.optimizer.learning_rate,
        "dropout": args.dropout, "l2": args.l2, "batch_norm": args.batch_norm,
        "early_stopping": args.early_stopping, "epochs_run": len(history.history["loss"]),
        "epochs": args.epochs, "batch_size": args.batch_size,
        "backend": args.backend, "seed": args.seed, "metrics": metrics,
        "history": history.history,
    }
    # The folded network maps raw columns to labels or target units; the column names (none
    # for arrays from .npy/.npz files) go with it so that `nnx predict` can pick them out of a
    # new CSV. No optimizer state: its moments belong to the unfolded (standardized) parameters.
    metadata = {"features": features, "n_features": int(X.shape[1]), "target": target,
                "task": task, "source": source, "source_format": source_format}
    if source_format == "npy":
        metadata.update(features_file=str(args.data), labels_file=str(args.target))
    if prep is not None:  # how `nnx predict` turns a new CSV's columns into these features
        metadata["preparation"] = prep.to_dict()
        report.update(encoded_features=prep.feature_names, missing=args.missing)
    model = net.save(out / "model.nnx", include_optimizer=False, metadata=metadata)
    report["model"] = str(model)
    written = [str(model), _write_json(out / "metrics.json", report)]
    plot_rows = test[:_PLOT_ROWS]
    written += _train_plots(net, history, _gather(X, plot_rows), y[plot_rows], y_test, pred,
                            task, out, args.dpi)
    print("Wrote:\n" + "\n".join(f"  {p}" for p in written))
    return 0


def _split(n, args):
    """The train and test rows of ``--test-size`` and ``--seed``, refused in the options'
    words when too few rows are left to train on."""
    from . import datasets

    if n - math.ceil(args.test_size * n) < 1:
        raise CLIError(f"--test-size {args.test_size:g} leaves no training rows out of {n}; "
                       "lower it or add rows")
    return datasets.train_test_indices(n, args.test_size, args.seed)


def _held_out_tail(X, y, fraction):
    """``(X_head, y_head, (X_tail, y_tail))``: the last ``fraction`` of the training rows
    (already in the split's random order) held out for early stopping. The same rows for
    arrays in memory and for a memmap (whose slices stay memmaps, read in chunks), so a
    ``.npy`` file and the same data as ``.npz`` or CSV train the same model."""
    if not 0 < fraction < 1:
        raise CLIError(f"--validation-split must be between 0 and 1; got {fraction}")
    n = X.shape[0]
    n_val = int(round(n * fraction))
    if n_val < 1 or n_val >= n:
        raise CLIError(f"--validation-split {fraction} of {n} training rows leaves "
                       f"{n - n_val} to train on and {n_val} to validate on; both need one, "
                       "or use --no-early-stopping")
    return X[:n - n_val], y[:n - n_val], (X[n - n_val:], y[n - n_val:])


#: test rows drawn in the decision-boundary plot (the first ones of the shuffled test part)
_PLOT_ROWS = 5000


def _predict_blocks(net, X, rows, y=None):
    """Predictions (and the summed evaluation loss when ``y`` is given) of ``X[rows]``,
    gathered and predicted a block at a time; one block for data of a few MiB."""
    step = _block_rows(X.shape[1])
    preds, loss = [], 0.0
    for start in range(0, rows.shape[0], step):
        part = rows[start:start + step]
        block = _gather(X, part)
        preds.append(_host(net.predict(block)))
        if y is not None:
            loss += net.evaluate(block, y[start:start + step])["loss"] * part.shape[0]
    return np.concatenate(preds), loss


def _test_metrics(net, X, test, y_test, task):
    """Metrics of the test rows ``X[test]``, and their predictions."""
    from . import metrics

    if task == "regression":
        pred, _ = _predict_blocks(net, X, test)
        return {"mse": metrics.mean_squared_error(y_test, pred),
                "mae": metrics.mean_absolute_error(y_test, pred),
                "r2": metrics.r2_score(y_test, pred)}, pred
    pred, loss = _predict_blocks(net, X, test, y_test)
    return {"loss": loss / test.shape[0],
            "accuracy": metrics.accuracy_score(y_test, pred),
            "f1_macro": metrics.f1_score(y_test, pred, average="macro")}, pred


def _write_json(path, obj) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=str)
    return str(path)


def _train_plots(net, history, X_plot, y_plot, y_test, pred, task, out, dpi) -> list:
    if not _use_agg():
        print("(plots skipped: pip install 'nnx-mlp[plot]' to get them)")
        return []
    from . import plotting

    files = []
    fig, _ = plotting.plot_history(history)
    files.append(plotting.save_figure(fig, out / "history.png", dpi))
    if task == "classification":
        classes = net.classes_
        if X_plot.shape[1] == 2:
            accuracy = np.mean(np.asarray(pred) == np.asarray(y_test))
            ax = plotting.plot_decision_boundary(
                net, X_plot, y_plot, title=f"Decision boundary (test rows: accuracy "
                                           f"{accuracy:.3f})")
            files.append(plotting.save_figure(ax.figure, out / "decision_boundary.png", dpi))
        from .metrics import confusion_matrix

        cm = confusion_matrix(y_test, pred, labels=classes)
        ax = plotting.plot_confusion_matrix(cm, labels=classes, title="Confusion matrix (test)")
        files.append(plotting.save_figure(ax.figure, out / "confusion_matrix.png", dpi))
    return files


def cmd_predict(args) -> int:
    """Predict every row of a CSV or ``.npy``/``.npz`` file with a model written by
    ``nnx train`` (or ``Network.save``).

    CSV: the model's feature columns are picked by name (other columns, the target included,
    are ignored for the prediction); the output is the input CSV with a ``predicted_<target>``
    column, and one ``proba_<label>`` column per class for classifiers. Arrays: the columns
    are the model's features in order; the output has those prediction columns alone, one
    row per input row, or is a ``.npy`` of the predictions when ``--out`` ends in ``.npy``.
    """
    from .io import load

    if not args.model.is_file():
        raise CLIError(f"no such model file: {str(args.model)!r}")
    net = load(args.model, backend=args.backend, device=args.device)
    if args.data is not None:
        return _predict_arrays(net, args)
    table = tabular.read_table(args.csv, args.delimiter)
    prep = _stored_preparation(net, table)
    skipped = prep.missing_rows(table) if args.missing_rows == "skip" else []
    keep = np.ones(len(table.rows), dtype=bool)
    keep[skipped] = False
    if skipped:
        print(f"Left {len(skipped)} of {len(keep)} rows unpredicted (empty prediction cells): "
              f"they have missing values the model has no fill for (first on line "
              f"{table.lines[skipped[0]]})", file=sys.stderr)
    names, columns = [], []
    if keep.any():
        X = prep.transform(table.subset(keep))
        names, columns = _prediction_columns(net, X, net.metadata.get("target", "target"))
    else:  # the header still names the prediction columns
        names = _prediction_columns(net, None, net.metadata.get("target", "target"))[0]
    where = np.cumsum(keep) - 1  # a kept row's position among the predicted ones
    rows = [row + ([_cell(col[where[i]]) for col in columns] if keep[i] else [""] * len(names))
            for i, row in enumerate(table.rows)]
    if args.out is None:
        tabular.write_table(sys.stdout, table.header + names, rows, table.delimiter)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            tabular.write_table(f, table.header + names, rows, table.delimiter)
        print(f"Wrote {len(rows)} predictions to {args.out}")
    return 0


def _stored_preparation(net, table):
    """The preparation ``nnx train`` stored with the model; for a model without one, its
    feature columns as numbers, or (no names: saved from Python or trained on arrays)
    every column of the table, in order."""
    meta = net.metadata
    if "preparation" in meta:
        return tabular.Preparation.from_dict(meta["preparation"])
    if meta.get("features") is not None:
        return tabular.Preparation.numeric(meta["features"])
    if len(table.header) != net.input_dim:
        raise CLIError(f"the model has no feature names and takes {net.input_dim} column(s); "
                       f"{table.name} has {len(table.header)}")
    return tabular.Preparation.numeric(table.header)


def _prediction_columns(net, X, target):
    """Names and values of the prediction columns for the rows of ``X``: the prediction
    (one column per output), then each class's probability for a classifier. ``X=None``:
    the names alone."""
    if X is None:
        X = np.zeros((1, net.input_dim))
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
    return names, columns


def _predict_arrays(net, args) -> int:
    """``nnx predict --data X.npy|data.npz``: every row, a block of rows at a time, written
    as it comes (a ``.npy`` input is memory-mapped, never loaded whole)."""
    path = Path(args.data)
    if path.suffix.lower() == ".npz":
        X = _load_npz(path, ["X"])[0]
    else:
        X = _load_npy(path, "features")
    name = _features_name(path)
    _check_feature_array(X, name, n_features=net.input_dim)
    _scan_features(X, name)  # a bad row is refused before anything is written
    target = net.metadata.get("target", "target")
    to_npy = args.out is not None and args.out.suffix.lower() == ".npy"
    step = _block_rows(X.shape[1])
    with contextlib.ExitStack() as stack:
        stream = sys.stdout
        if args.out is not None and not to_npy:
            stream = stack.enter_context(open(args.out, "w", newline="", encoding="utf-8"))
        writer, saved = csv.writer(stream), None
        for start in range(0, X.shape[0], step):
            block = np.asarray(X[start:start + step])
            if to_npy:
                pred = _host(net.predict(block))
                if saved is None:  # the dtype of the labels (or values) is known now
                    saved = np.lib.format.open_memmap(args.out, mode="w+", dtype=pred.dtype,
                                                      shape=(X.shape[0],) + pred.shape[1:])
                saved[start:start + step] = pred
                continue
            names, columns = _prediction_columns(net, block, target)
            if start == 0:
                writer.writerow(names)
            writer.writerows(zip(*[[_cell(v) for v in col] for col in columns]))
        if saved is not None:
            saved.flush()
            del saved
    if args.out is not None:
        print(f"Wrote {X.shape[0]} predictions to {args.out}")
    return 0


def _cell(value) -> str:
    """Labels as they were given; numbers with float32's precision (8 significant digits)."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return str(value)


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
                       help="device for the backend, e.g. cuda:0 (default: the backend's); "
                            "with --distributed, cuda:local is each rank's GPU on its "
                            "machine")
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
    src.add_argument("--data", type=_data_source, metavar="NAME|FILE",
                     help=f"a bundled dataset ({', '.join(datasets.NAMES)}); or X.npy, a 2-D "
                          "float array of features, memory-mapped (read from disk batch by "
                          "batch, never loaded whole), with --target y.npy; or data.npz with "
                          "arrays X and y (NumPy cannot memory-map an .npz: it is loaded into "
                          "memory, so use .npy files for data larger than memory)")
    src.add_argument("--csv", type=Path, metavar="FILE", help="a CSV file with a header row")
    src.add_argument("--target", metavar="COLUMN|FILE",
                     help="the column of --csv to predict, or the labels' .npy file for "
                          "--data X.npy (one label per row)")
    src.add_argument("--features", metavar="A,B,...",
                     help="--csv columns to learn from, in this order (default: every column "
                          "but the target and --drop)")
    src.add_argument("--drop", metavar="A,B,...", help="--csv columns to leave out")
    src.add_argument("--categorical", default="none", metavar="auto|none|A,B,...",
                     help="--csv columns to one-hot encode (one 0/1 column per level): auto = "
                          "every feature column holding text (not mostly numbers, not an "
                          "identifier with a value per row); or their names (default: none, "
                          "text is an error)")
    src.add_argument("--missing", default="error", choices=tabular.MISSING_POLICIES,
                     help="--csv cells that are empty or NA, #N/A, NaN, null, ? (or "
                          "--na-values): error (default), drop those rows, or fill with the "
                          "training rows' mean or median (text columns: their most frequent "
                          "level); rows without a target are always left out")
    src.add_argument("--na-values", metavar="A,B,...",
                     help="--csv cells that mark a missing value besides the usual ones "
                          "(empty, NA, N/A, #N/A, NaN, null, none, ?), e.g. -,missing; "
                          "stored with the model for nnx predict")
    src.add_argument("--decimal", choices=("auto", ".", ","), default="auto",
                     help="--csv decimal mark: auto (default) reads 1,5 as 1.5 in a file not "
                          "delimited by commas whose numbers have decimal commas and no "
                          "decimal points; stored with the model for nnx predict")
    _delimiter_option(src)
    src.add_argument("--task", choices=("auto", "classification", "regression"),
                     default="auto", help="what the target is (default: guessed)")
    src.add_argument("--test-size", type=_float, default=0.2,
                     help="fraction of rows held out for testing (default: 0.2)")
    net = p.add_argument_group("network and training")
    net.add_argument("--hidden", default="64,32", help="hidden layer widths (default: 64,32)")
    net.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
    net.add_argument("--optimizer", default="adam", type=_optimizer_name,
                     help="optimizer name: sgd, momentum, adam, adamw, rmsprop, ... "
                          "(default: adam)")
    net.add_argument("--lr", type=_float, default=None,
                     help="learning rate (default: 0.01 for adam and its kin, 0.1 for sgd; "
                          "see nnx.cli.DEFAULT_LEARNING_RATES)")
    net.add_argument("--epochs", type=_positive_int, default=300,
                     help="passes over the training rows (default: 300); early stopping "
                          "usually ends sooner")
    net.add_argument("--batch-size", type=_positive_int, default=32,
                     help="rows per training step (default: 32)")
    net.add_argument("--dropout", type=_float, default=0.0, metavar="P",
                     help="dropout rate after each hidden layer")
    net.add_argument("--l2", type=_float, default=0.0, help="L2 weight penalty")
    net.add_argument("--batch-norm", action="store_true",
                     help="batch normalization after each hidden layer")
    net.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=True,
                     help="hold out --validation-split of the training rows, stop when their "
                          "loss has not improved for --patience epochs and keep the best "
                          "epoch's weights (default: on; --no-early-stopping trains every "
                          "epoch on every training row)")
    net.add_argument("--validation-split", type=_float, default=0.2,
                     help="fraction held out for early stopping (default: 0.2)")
    net.add_argument("--patience", type=_positive_int, default=40,
                     help="epochs without improvement before early stopping stops "
                          "(default: 40: a small network can sit on a plateau for 20)")
    net.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    net.add_argument("--distributed", choices=("mpi", "nccl", "torch"), default=None,
                     help="train data-parallel on the processes of an mpiexec, srun or "
                          "torchrun launch (every rank reads the same file; --batch-size is "
                          "the global batch); rank 0 prints and writes the files")
    common(p, "nnx-output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predict a CSV or .npy file with a saved model",
                       description="Load a model written by 'nnx train' and predict every row "
                                   "of a CSV file, a .npy file or an .npz file.")
    p.add_argument("--model", type=Path, required=True, metavar="FILE")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", type=Path, metavar="FILE",
                     help="a CSV file with the model's feature columns (picked by name)")
    src.add_argument("--data", type=_array_file, metavar="FILE",
                     help="X.npy (memory-mapped, predicted a block of rows at a time) or an "
                          ".npz with an array X (loaded into memory): a 2-D float array whose "
                          "columns are the model's features, in training order")
    _delimiter_option(p)
    p.add_argument("--missing-rows", choices=("error", "skip"), default="error",
                   help="--csv rows with a missing value the model has no fill for (a model "
                        "trained with --missing drop): error (default, naming the first), or "
                        "skip: leave their prediction cells empty")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write predictions here (default: print them as CSV); with --data, "
                        "FILE.npy gets the predicted labels or values alone, one per row")
    p.add_argument("--backend", default="numpy", choices=BACKENDS)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("info", help="version, usable backends and devices",
                       description="Show the nnx version, the backends usable here and their "
                                   "devices.")
    p.set_defaults(func=cmd_info)
    return parser


def _delimiter_option(group):
    group.add_argument("--delimiter", type=_delimiter, default=None, metavar=",|;|tab|'|'",
                       help="--csv field delimiter (default: detected from the first lines)")


def _delimiter(text):
    try:
        return tabular.parse_delimiter(text)
    except tabular.TableError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _optimizer_name(value: str) -> str:
    from .optimizers import OPTIMIZERS

    if value.lower() not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {value!r}; choose one of {', '.join(sorted(OPTIMIZERS))}")
    return value.lower()


def main(argv=None) -> int:
    """Entry point of the ``nnx`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (CLIError, ValueError, ImportError, OSError, FloatingPointError) as exc:
        # FloatingPointError: nnx.DivergenceError, e.g. a --lr far too high
        if os.environ.get("NNX_DEBUG"):
            raise
        prefix = f"{type(exc).__name__}: " if isinstance(exc, ImportError) else ""
        message = " ".join(str(exc).split())  # one line, whatever the message held
        if isinstance(exc, OSError) and exc.filename is not None:  # a file, in plain words
            message = f"cannot use {str(exc.filename)!r}: {exc.strerror or exc}"
        print(f"nnx: error: {prefix}{message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
