"""Delimited text tables (CSV, semicolon, tab) and the preparation that turns their columns
into a float matrix: which columns, what to do with missing cells, how text columns become
numbers. The preparation is learned once, at training, and stored with the model as plain
JSON (:meth:`Preparation.to_dict`), so that new rows are prepared exactly the same way.

Rules (the command line's ``nnx train`` / ``nnx predict`` follow them):

- **Delimiter.** Given, or detected from the first lines: the one of ``,`` ``;`` tab ``|``
  that splits the header into the most fields while every sampled row has as many; ``,`` when
  none splits it.
- **Missing cells** are empty or one of :data:`MISSING` (case-insensitive). Policies:
  ``"error"`` (refuse, naming the column, the count and the first line), ``"drop"`` (leave
  those rows out of training; a model trained so refuses new rows with missing cells, as it
  has no value to put there), ``"mean"`` / ``"median"`` (fill numeric columns with the mean
  or median of the *training rows*, text columns with their most frequent level there; new
  rows get the same values). A missing target is never filled: with ``drop``, ``mean`` or
  ``median`` those rows are left out.
- **Text columns** are one-hot encoded: one 0/1 column per level, named ``column=level``,
  levels in sorted order. The levels are every value the column takes in the training file.
  A new row with a level the model never saw is refused (naming the column, the value and
  the known levels) rather than encoded as nothing: a silent guess would hide a typo or a
  changed spelling.
- **Columns are found by name** in new files, in any order; a missing one is refused.

Every problem raises :class:`TableError` (a ``ValueError``) with one line that names it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import check_in_range

#: cells read as missing, compared lower-cased after stripping blanks
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})

#: the names ``--delimiter`` takes, and the delimiters tried when none is given
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}
_CANDIDATES = (",", ";", "\t", "|")
_SNIFF_LINES = 20

MISSING_POLICIES = ("error", "drop", "mean", "median")


class TableError(ValueError):
    """A problem with a table or its preparation, said in one line."""


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


# --------------------------------------------------------------------------- reading


@dataclass
class Table:
    """A delimited text file: header, rows of stripped strings, and each row's line number.

    Attributes
    ----------
    path : str
    header : list of str
    rows : list of list of str, each as long as ``header``
    lines : list of int
        The file line of each row (for messages; blank lines are skipped).
    delimiter : str
    """

    path: str
    header: list
    rows: list
    lines: list
    delimiter: str = ","

    @property
    def name(self) -> str:
        return repr(self.path)

    def index(self, column: str) -> int:
        return self.header.index(column)

    def cells(self, column: str) -> list:
        j = self.index(column)
        return [row[j] for row in self.rows]

    def subset(self, keep) -> "Table":
        """The rows where ``keep`` (a boolean sequence) is true."""
        pick = [i for i, k in enumerate(keep) if k]
        return Table(self.path, self.header, [self.rows[i] for i in pick],
                     [self.lines[i] for i in pick], self.delimiter)


def parse_delimiter(text):
    """``--delimiter``: ``,``, ``;``, ``|``, ``tab`` (or ``\\t``); ``None`` means detect."""
    if text is None:
        return None
    if text not in DELIMITERS:
        raise TableError(f"unknown delimiter {text!r}; use one of , ; | tab")
    return DELIMITERS[text]


def detect_delimiter(sample: str) -> str:
    """The candidate that splits the header into the most fields, every sampled row into as
    many (quotes respected); ``,`` when none splits the header."""
    lines = [line for line in sample.splitlines() if line.strip()][:_SNIFF_LINES]
    best, best_fields = ",", 1
    for delimiter in _CANDIDATES:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
        except csv.Error:
            continue
        if rows and len(rows[0]) > best_fields and all(len(r) == len(rows[0]) for r in rows):
            best, best_fields = delimiter, len(rows[0])
    return best


def read_table(path, delimiter=None) -> Table:
    """Read a delimited text file with a header row, checking its shape.

    Parameters
    ----------
    path : str or Path
    delimiter : str, optional
        One character; detected by :func:`detect_delimiter` when omitted.

    Raises
    ------
    TableError
        No such file, not text, empty, no data rows, duplicate column names, a row with
        another number of fields than the header.
    """
    path = Path(path)
    name = repr(str(path))
    if not path.is_file():
        raise TableError(f"no such CSV file: {name}")
    try:
        text = path.read_text(encoding="utf-8-sig")
        if delimiter is None:
            delimiter = detect_delimiter(text[:65536])
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows, lines = [], []
        for row in reader:
            if row:
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"{name} is not a readable CSV file: {exc}") from None
    if not rows:
        raise TableError(f"{name} is empty")
    header = rows[0]
    if len(rows) == 1:
        raise TableError(f"{name} has a header but no data rows")
    dupes = sorted({column for column in header if header.count(column) > 1})
    if dupes:
        raise TableError(f"{name} has duplicate column names: {', '.join(map(repr, dupes))}")
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(header):
            raise TableError(
                f"{name} line {line} has {len(row)} fields but the header has {len(header)}"
                + ("" if delimiter != "," else " (for another delimiter use --delimiter)")
            )
    return Table(str(path), header, rows[1:], lines[1:], delimiter)


def write_table(stream, header, rows, delimiter=","):
    writer = csv.writer(stream, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)


# --------------------------------------------------------------------------- choosing columns


def split_names(text) -> list:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; ``None`` -> ``[]``."""
    return [] if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _require_columns(table: Table, names, option: str):
    unknown = [n for n in names if n not in table.header]
    if unknown:
        raise TableError(
            f"{option} names column(s) {', '.join(map(repr, unknown))} that {table.name} does "
            f"not have; its columns are: {', '.join(table.header)}"
        )


def select_columns(table: Table, target: str, features=(), drop=()) -> list:
    """The feature columns: ``features`` in that order, or every column but the target and
    ``drop``, in file order."""
    if target not in table.header:
        raise TableError(f"unknown target column {target!r} in {table.name}; columns are: "
                         f"{', '.join(table.header)}")
    if features and drop:
        raise TableError("give --features or --drop, not both")
    _require_columns(table, features, "--features")
    _require_columns(table, drop, "--drop")
    if target in features:
        raise TableError(f"--features lists the target {target!r}; it cannot be a feature")
    columns = list(features) or [c for c in table.header if c != target and c not in drop]
    if not columns:
        raise TableError(f"{table.name} has no feature columns besides the target {target!r}")
    return columns


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def text_columns(table: Table, columns) -> list:
    """The columns with at least one present cell that is not a number."""
    return [c for c in columns
            if any(not is_missing(v) and not _is_number(v) for v in table.cells(c))]


def missing_report(table: Table, columns) -> str:
    """``"'x2' (2 row(s), first on line 3), ..."`` for the columns with missing cells, or
    an empty string."""
    parts = []
    for column in columns:
        lines = [line for v, line in zip(table.cells(column), table.lines) if is_missing(v)]
        if lines:
            parts.append(f"{column!r} ({len(lines)} row(s), first on line {lines[0]})")
    return ", ".join(parts)


def rows_without_missing(table: Table, columns):
    """Boolean mask of the rows whose cells in ``columns`` are all present."""
    index = [table.index(c) for c in columns]
    return [not any(is_missing(row[j]) for j in index) for row in table.rows]


# --------------------------------------------------------------------------- preparation


@dataclass
class Column:
    """One input column: ``kind`` is ``"numeric"`` or ``"categorical"``; ``fill`` the value
    for a missing cell (``None``: refused); ``levels`` the categories, in encoding order."""

    name: str
    kind: str = "numeric"
    fill: object = None
    levels: list = field(default_factory=list)

    def outputs(self) -> list:
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}={level}" for level in self.levels]


class Preparation:
    """Raw table columns -> a float64 feature matrix, the same way at training and predict.

    Parameters
    ----------
    columns : list of Column
        The input columns, in the order of the matrix's blocks.
    missing : {"error", "drop", "mean", "median"}
        The policy the preparation was learned with (see the module's rules).

    Output: for each column in order, one value (numeric) or one 0/1 indicator per level
    (categorical), so ``X`` has shape ``(n_rows, len(self.feature_names))``.
    """

    def __init__(self, columns, missing="error"):
        self.columns = list(columns)
        self.missing = missing

    @property
    def input_columns(self) -> list:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list:
        return [name for c in self.columns for name in c.outputs()]

    @classmethod
    def numeric(cls, names) -> "Preparation":
        """Every column numeric and no missing cell allowed (a model without a stored
        preparation)."""
        return cls([Column(name) for name in names])

    @classmethod
    def fit(cls, table: Table, columns, train_rows, *, categorical=(), missing="error"):
        """Learn the preparation of ``columns`` of ``table``.

        Parameters
        ----------
        table : Table
            The training file after any rows were dropped.
        columns : list of str
        train_rows : numpy.ndarray of int
            Rows whose statistics fill missing numeric cells (the training split, never the
            test rows).
        categorical : list of str
            Columns to one-hot encode; every other column must hold numbers.
        missing : {"error", "drop", "mean", "median"}
        """
        if missing not in MISSING_POLICIES:
            raise TableError(f"--missing must be one of {', '.join(MISSING_POLICIES)}; "
                             f"got {missing!r}")
        if missing in ("error", "drop"):  # "drop" removed those rows before the fit
            holes = missing_report(table, columns)
            if holes:
                raise TableError(
                    f"{table.name} has missing values in {holes}; drop those rows with "
                    "--missing drop, fill them with --missing mean or median, or leave the "
                    "column out with --drop"
                )
        numeric = [c for c in columns if c not in categorical]
        text = text_columns(table, numeric)
        if text:
            raise TableError(
                f"non-numeric feature column(s) in {table.name}: {', '.join(map(repr, text))}; "
                f"one-hot encode them with --categorical auto (or --categorical "
                f"{','.join(text)}) or leave them out with --drop"
            )
        out = []
        for name in columns:
            cells = table.cells(name)
            present = [v for v in cells if not is_missing(v)]
            train = [cells[i] for i in train_rows if not is_missing(cells[i])]
            if not train:
                raise TableError(f"column {name!r} of {table.name} has no values in the "
                                 "training rows; leave it out with --drop")
            if name in categorical:
                column = Column(name, "categorical", levels=sorted(set(present)))
                if missing in ("mean", "median"):  # the most frequent level, ties by order
                    levels, counts = np.unique(train, return_counts=True)
                    column.fill = str(levels[int(np.argmax(counts))])
            else:
                column = Column(name)
                if missing in ("mean", "median"):
                    values = np.array([float(v) for v in train])
                    column.fill = float(np.mean(values) if missing == "mean"
                                        else np.median(values))
            out.append(column)
        return cls(out, missing)

    def transform(self, table: Table) -> np.ndarray:
        """The feature matrix of every row of ``table``, shape ``(n_rows, n_features)``.

        Raises
        ------
        TableError
            A column absent from the table, a missing cell the preparation cannot fill,
            text in a numeric column, inf, values beyond float32, an unseen category.
        """
        absent = [c.name for c in self.columns if c.name not in table.header]
        if absent:
            raise TableError(
                f"{table.name} lacks the feature column(s) {', '.join(map(repr, absent))} the "
                f"model was trained on; its columns are: {', '.join(table.header)}"
            )
        unfilled = [c.name for c in self.columns if c.fill is None]
        holes = missing_report(table, unfilled)
        if holes:
            why = ("the model was trained with --missing drop and has no value to put there"
                   if self.missing == "drop" else "fill or drop them first (nnx train "
                   "takes --missing drop|mean|median)")
            raise TableError(f"{table.name} has missing values in {holes}; {why}")
        text = text_columns(table, [c.name for c in self.columns if c.kind == "numeric"])
        if text:
            raise TableError(
                f"non-numeric feature column(s) in {table.name}: {', '.join(map(repr, text))}; "
                "the model was trained on numbers there"
            )
        blocks = [self._encode(c, table) for c in self.columns]
        numeric = [(c.name, b[:, 0]) for c, b in zip(self.columns, blocks) if c.kind == "numeric"]
        for name, values in numeric:  # every column's inf before any column's range
            if not np.all(np.isfinite(values)):
                raise TableError(f"column {name!r} of {table.name} contains inf or nan")
        for name, values in numeric:  # the saved model takes raw columns in float32
            check_in_range(values, f"column {name!r} of {table.name}", "float32",
                           hint="rescale that column")
        return np.concatenate(blocks, axis=1)

    def _encode(self, column: Column, table: Table) -> np.ndarray:
        cells = [column.fill if is_missing(v) else v for v in table.cells(column.name)]
        if column.kind == "numeric":
            return np.array([float(v) for v in cells])[:, None]
        position = {level: k for k, level in enumerate(column.levels)}
        for value, line in zip(cells, table.lines):
            if value not in position:
                raise TableError(
                    f"column {column.name!r} of {table.name} has the value {value!r} on line "
                    f"{line}, a category the model never saw (it knows: "
                    f"{', '.join(column.levels)}); unseen categories are refused, not guessed"
                )
        onehot = np.zeros((len(cells), len(column.levels)))
        onehot[np.arange(len(cells)), [position[v] for v in cells]] = 1.0
        return onehot

    # ------------------------------------------------------------------ stored with the model

    def to_dict(self) -> dict:
        """Plain JSON: the policy and, per column, its kind, fill value and levels."""
        return {"missing": self.missing,
                "columns": [{"name": c.name, "kind": c.kind, "fill": c.fill,
                             "levels": list(c.levels)} for c in self.columns]}

    @classmethod
    def from_dict(cls, data) -> "Preparation":
        try:
            columns = [Column(c["name"], c["kind"], c["fill"], list(c["levels"]))
                       for c in data["columns"]]
            missing = data["missing"]
        except (KeyError, TypeError) as exc:
            raise TableError(f"the model's stored table preparation is damaged ({exc})") \
                from None
        if missing not in MISSING_POLICIES or any(
                c.kind not in ("numeric", "categorical") for c in columns):
            raise TableError("the model's stored table preparation is damaged")
        return cls(columns, missing)
