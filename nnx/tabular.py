"""Delimited text tables (CSV, semicolon, tab) and the preparation that turns their columns
into a float matrix: which columns, what to do with missing cells, how text columns become
numbers. The preparation is learned once, at training, and stored with the model as plain
JSON (:meth:`Preparation.to_dict`), so that new rows are prepared exactly the same way.

Rules (the command line's ``nnx train`` / ``nnx predict`` follow them):

- **Delimiter.** Given, or detected from the first whole lines: the one of ``,`` ``;`` tab ``|``
  that splits the header into the most fields while every sampled row has as many; ``,`` when
  none splits it.
- **Unnamed columns** (an empty header cell: pandas' unnamed index column, a trailing
  delimiter) are never features (:meth:`Table.unnamed`).
- **Numbers** use a decimal point, or a decimal comma (``1,5``) when the table is read with
  ``decimal=","`` (:func:`detect_decimal` picks it for a file not delimited by commas whose
  numbers have commas and no points). A column whose present cells are mostly numbers is a
  number column: its other cells are refused by value and line (an undeclared missing
  marker, a decimal comma), never made categories.
- **Missing cells** are empty or one of :data:`MISSING` or of the table's ``na_values``
  (case-insensitive). Policies:
  ``"error"`` (refuse, naming the column, the count and the first line), ``"drop"`` (leave
  those rows out of training; a model trained so refuses new rows with missing cells, as it
  has no value to put there), ``"mean"`` / ``"median"`` (fill numeric columns with the mean
  or median of the *training rows*, text columns with their most frequent level there; new
  rows get the same values). A missing target is never filled: with ``drop``, ``mean`` or
  ``median`` those rows are left out.
- **Text columns** are one-hot encoded: one 0/1 column per level, named ``column=level``,
  levels in sorted order (numeric order, one spelling per number, when every level is a
  number). The levels are every value the column takes in the training file.
  A new row with a level the model never saw is refused (naming the column, the value and
  the known levels) rather than encoded as nothing: a silent guess would hide a typo or a
  changed spelling.
- **Columns are found by name** in new files, in any order; a missing one is refused.

Every problem raises :class:`TableError` (a ``ValueError``) with one line that names it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .checks import check_in_range

#: cells read as missing, compared lower-cased after stripping blanks: the markers of R,
#: pandas and spreadsheets (Excel's ``#N/A``). A lone ``-`` is not among them: it is a level
#: in some text columns; declare it with ``--na-values -`` where it marks a hole.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a", "#n/a n/a", "#na",
                     "<na>", "n.a.", "-nan", "1.#ind", "-1.#ind", "1.#qnan", "-1.#qnan"})

#: the decimal marks a table's numbers may use (``","``: ``1,5`` is one and a half)
DECIMALS = (".", ",")

#: the names ``--delimiter`` takes, and the delimiters tried when none is given
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}
_CANDIDATES = (",", ";", "\t", "|")
_SNIFF_LINES = 20
#: column names shown in a message before the rest are counted ("... and 490 more")
_SHOWN = 8
#: ``--categorical auto`` refuses a text column with more levels than this and than half
#: the rows: an identifier or free text, whose one-hot columns would each hold a row or two
MAX_AUTO_LEVELS = 20

MISSING_POLICIES = ("error", "drop", "mean", "median")


class TableError(ValueError):
    """A problem with a table or its preparation, said in one line."""


def is_missing(cell: str, extra=frozenset()) -> bool:
    """Whether ``cell`` is one of :data:`MISSING` or of ``extra`` (lower-cased markers)."""
    key = cell.strip().lower()
    return key in MISSING or key in extra


def parse_number(cell: str, decimal: str = "."):
    """The float a cell holds, or ``None``. With ``decimal=","`` the comma is the decimal
    mark and a dot makes the cell text (``1.000`` may mean a thousand there)."""
    if decimal == ",":
        if "." in cell:
            return None
        cell = cell.replace(",", ".", 1)
    try:
        return float(cell)
    except ValueError:
        return None


def shorten(names, limit: int = _SHOWN) -> str:
    """``"a, b, c"``; past ``limit`` names, ``"a, b, ... and 492 more"`` (a wide file's
    columns would make a message of thousands of characters)."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... and {len(names) - limit} more"


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
    na_values : frozenset of str
        Missing-value markers besides :data:`MISSING`, lower-cased (``--na-values``).
    decimal : {".", ","}
        The decimal mark of its numbers (``--decimal``).
    """

    path: str
    header: list
    rows: list
    lines: list
    delimiter: str = ","
    na_values: frozenset = frozenset()
    decimal: str = "."

    def using(self, na_values=None, decimal=None) -> "Table":
        """The same rows read with other missing-value markers or another decimal mark."""
        return replace(self, na_values=self.na_values if na_values is None else
                       frozenset(v.strip().lower() for v in na_values),
                       decimal=self.decimal if decimal is None else decimal)

    def missing(self, cell: str) -> bool:
        return is_missing(cell, self.na_values)

    def number(self, cell: str):
        return parse_number(cell, self.decimal)

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
        return replace(self, rows=[self.rows[i] for i in pick],
                       lines=[self.lines[i] for i in pick])

    def unnamed(self) -> list:
        """Positions (from 1) of the columns whose header cell is empty: a row index that
        pandas writes without a name, or the empty column a trailing delimiter makes."""
        return [j + 1 for j, name in enumerate(self.header) if not name]


def parse_delimiter(text):
    """``--delimiter``: ``,``, ``;``, ``|``, ``tab`` (or ``\\t``); ``None`` means detect."""
    if text is None:
        return None
    if text not in DELIMITERS:
        raise TableError(f"unknown delimiter {text!r}; use one of , ; | tab")
    return DELIMITERS[text]


def head_lines(text: str, n: int = _SNIFF_LINES + 1) -> str:
    """The first ``n`` whole lines of ``text``, however long (a wide file's header alone may
    be larger than any fixed-size sample, and a cut line has too few fields)."""
    end = -1
    for _ in range(n):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end]


def detect_delimiter(sample: str) -> str:
    """The candidate that splits the header into the most fields, every sampled row into as
    many (quotes respected); ``,`` when none splits the header. ``sample`` holds whole lines
    (see :func:`head_lines`)."""
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
            delimiter = detect_delimiter(head_lines(text))
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
    # unnamed columns (empty header cells) are never used, so several of them are no clash
    dupes = sorted({column for column in header if column and header.count(column) > 1})
    if dupes:
        raise TableError(f"{name} has duplicate column names: {shorten(map(repr, dupes))}")
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
            f"{option} names column(s) {shorten(map(repr, unknown))} that {table.name} does "
            f"not have; its columns are: {shorten(table.header)}"
        )
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise TableError(f"{option} names {shorten(map(repr, dupes))} more than once")


def select_columns(table: Table, target: str, features=(), drop=()) -> list:
    """The feature columns: ``features`` in that order, or every named column but the target
    and ``drop``, in file order. Columns without a name (:meth:`Table.unnamed`) are never
    chosen: they are a row index or an artefact of a trailing delimiter."""
    if target not in table.header:
        raise TableError(f"unknown target column {target!r} in {table.name}; columns are: "
                         f"{shorten(table.header)}")
    if features and drop:
        raise TableError("give --features or --drop, not both")
    _require_columns(table, features, "--features")
    _require_columns(table, drop, "--drop")
    if target in features:
        raise TableError(f"--features lists the target {target!r}; it cannot be a feature")
    columns = list(features) or [c for c in table.header
                                 if c and c != target and c not in drop]
    if not columns:
        raise TableError(f"{table.name} has no feature columns besides the target {target!r}")
    return columns


def _non_numbers(table: Table, column: str):
    """``(n_present, [(value, line), ...])``: the present cells that are not numbers."""
    present, bad = 0, []
    for value, line in zip(table.cells(column), table.lines):
        if not table.missing(value):
            present += 1
            if table.number(value) is None:
                bad.append((value, line))
    return present, bad


def text_columns(table: Table, columns) -> list:
    """The columns with at least one present cell that is not a number."""
    return [c for c in columns if _non_numbers(table, c)[1]]


def number_like(table: Table, column: str) -> bool:
    """Whether most (over half) of the column's present cells are numbers: a numeric
    column with a few odd cells (an unknown missing marker, a decimal comma), not text."""
    present, bad = _non_numbers(table, column)
    return present > 0 and len(bad) < present / 2


def auto_categorical(table: Table, columns) -> list:
    """``--categorical auto``: the text columns among ``columns``, leaving numeric columns
    with a few odd cells to :meth:`Preparation.fit` (which names those cells) and refusing
    columns with too many levels to be categories (:data:`MAX_AUTO_LEVELS`)."""
    chosen = [c for c in text_columns(table, columns) if not number_like(table, c)]
    n = len(table.rows)
    for column in chosen:
        levels = {v for v in table.cells(column) if not table.missing(v)}
        if len(levels) > MAX_AUTO_LEVELS and len(levels) > n / 2:
            raise TableError(
                f"--categorical auto: column {column!r} of {table.name} has {len(levels)} "
                f"different values in {n} rows, too many for categories (an identifier or "
                f"free text); leave it out with --drop {column}, or name the text columns to "
                "encode with --categorical A,B"
            )
    return chosen


def detect_decimal(table: Table, columns) -> str:
    """``","`` when the file is not comma-delimited and its cells in ``columns`` hold
    numbers written with a decimal comma (``1,5``) and none with a decimal point; else
    ``"."`` (a European spreadsheet writes ``;`` between fields and ``,`` in numbers)."""
    if table.delimiter == ",":
        return "."
    comma = dot = False
    for column in columns:
        for value in table.cells(column):
            if _COMMA_NUMBER.fullmatch(value):
                comma = True
            elif _DOT_NUMBER.fullmatch(value):
                dot = True
                break
    return "," if comma and not dot else "."


_COMMA_NUMBER = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
_DOT_NUMBER = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")


def _refuse_odd_cells(table: Table, columns):
    """Refuse numeric columns with cells that are not numbers, in one line: for mostly
    numeric columns the odd values themselves (a missing-value marker to declare, decimal
    commas), for text columns the options that encode or drop them."""
    odd = [c for c in columns if number_like(table, c) and _non_numbers(table, c)[1]]
    if odd:
        column = odd[0]
        bad = _non_numbers(table, column)[1]
        values = list(dict.fromkeys(v for v, _ in bad))
        shown = ", ".join(f"{v!r} on line {next(l for w, l in bad if w == v)}"
                          for v in values[:3])
        more = f" and {len(values) - 3} other value(s)" if len(values) > 3 else ""
        others = (f" (so do {shorten(map(repr, odd[1:]))})" if len(odd) > 1 else "")
        if any(_COMMA_NUMBER.fullmatch(v) for v in values) and table.decimal == ".":
            fix = "its numbers have decimal commas: read them with --decimal ,"
        else:
            fix = (f"if they mark missing values, declare them with --na-values "
                   f"{','.join(values[:3])}")
        raise TableError(
            f"non-numeric feature column {column!r} in {table.name}: it holds numbers but "
            f"also {len(bad)} cell(s) that are not: {shown}{more}{others}; {fix}"
        )
    text = text_columns(table, columns)
    if text:
        raise TableError(
            f"non-numeric feature column(s) in {table.name}: {shorten(map(repr, text))}; "
            f"one-hot encode them with --categorical auto (or --categorical "
            f"{','.join(text[:_SHOWN])}) or leave them out with --drop"
        )


def missing_report(table: Table, columns) -> str:
    """``"'x2' (2 row(s), first on line 3), ..."`` for the columns with missing cells, or
    an empty string."""
    parts = []
    for column in columns:
        lines = [line for v, line in zip(table.cells(column), table.lines) if table.missing(v)]
        if lines:
            parts.append(f"{column!r} ({len(lines)} row(s), first on line {lines[0]})")
    return shorten(parts, 4)


def rows_without_missing(table: Table, columns):
    """Boolean mask of the rows whose cells in ``columns`` are all present."""
    index = [table.index(c) for c in columns]
    return [not any(table.missing(row[j]) for j in index) for row in table.rows]


def row_index_columns(table: Table, columns) -> list:
    """The columns of ``columns`` that hold exactly 0, 1, ..., n-1 (or 1, ..., n) in file
    order: the row numbers, which tell a model only where a row sat in the file."""
    n = len(table.rows)
    if n < 10:  # a short column counts up by chance
        return []
    found = []
    for column in columns:
        values = [table.number(v) for v in table.cells(column)]
        if None in values:
            continue
        steps = np.array(values) - np.arange(n)
        if np.all(steps == 0) or np.all(steps == 1):
            found.append(column)
    return found


def _level(value: str, decimal: str) -> str:
    """A number-like category as one spelling (``2008``, ``2008.0`` and ``2.008e3`` are
    one level): integers without a fraction, others as Python writes the float (with a
    decimal point, whatever the file's mark)."""
    x = parse_number(value, decimal)
    if x is None or not np.isfinite(x):
        return value
    return str(int(x)) if x.is_integer() and abs(x) < 2.0**53 else repr(x)


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
    na_values : list of str
        Missing-value markers besides :data:`MISSING` (``--na-values``).
    decimal : {".", ","}
        The decimal mark of the numbers (``--decimal``).

    Output: for each column in order, one value (numeric) or one 0/1 indicator per level
    (categorical), so ``X`` has shape ``(n_rows, len(self.feature_names))``.
    """

    def __init__(self, columns, missing="error", na_values=(), decimal="."):
        self.columns = list(columns)
        self.missing = missing
        self.na_values = sorted({v.strip().lower() for v in na_values})
        self.decimal = decimal

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
            The training file after any rows were dropped, read with its missing-value
            markers and decimal mark (:meth:`Table.using`), which the preparation keeps.
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
        _refuse_odd_cells(table, [c for c in columns if c not in categorical])
        out = []
        for name in columns:
            cells = table.cells(name)
            train = [cells[i] for i in train_rows if not table.missing(cells[i])]
            if not train:
                raise TableError(f"column {name!r} of {table.name} has no values in the "
                                 "training rows; leave it out with --drop")
            if name in categorical:
                present = [v for v in cells if not table.missing(v)]
                numbers = all(table.number(v) is not None for v in present)
                if numbers:  # one spelling per number, in numeric order
                    present = [_level(v, table.decimal) for v in present]
                    train = [_level(v, table.decimal) for v in train]
                    levels = sorted(set(present), key=float)
                else:
                    levels = sorted(set(present))
                column = Column(name, "categorical", levels=levels)
                if missing in ("mean", "median"):  # the most frequent level, ties by order
                    values, counts = np.unique(train, return_counts=True)
                    column.fill = str(values[int(np.argmax(counts))])
            else:
                column = Column(name)
                if missing in ("mean", "median"):
                    values = np.array([table.number(v) for v in train])
                    column.fill = float(np.mean(values) if missing == "mean"
                                        else np.median(values))
            out.append(column)
        return cls(out, missing, table.na_values, table.decimal)

    def missing_rows(self, table: Table) -> list:
        """Indices of the rows with a missing cell the preparation cannot fill."""
        table = table.using(self.na_values, self.decimal)
        unfilled = [c.name for c in self.columns if c.fill is None and c.name in table.header]
        keep = rows_without_missing(table, unfilled)
        return [i for i, k in enumerate(keep) if not k]

    def transform(self, table: Table) -> np.ndarray:
        """The feature matrix of every row of ``table``, shape ``(n_rows, n_features)``.

        The table is read with the preparation's missing-value markers and decimal mark.

        Raises
        ------
        TableError
            A column absent from the table, a missing cell the preparation cannot fill,
            text in a numeric column, inf, values beyond float32, an unseen category.
        """
        table = table.using(self.na_values, self.decimal)
        absent = [c.name for c in self.columns if c.name not in table.header]
        if absent:
            raise TableError(
                f"{table.name} lacks the feature column(s) {shorten(map(repr, absent))} the "
                f"model was trained on; its columns are: {shorten(table.header)}"
            )
        unfilled = [c.name for c in self.columns if c.fill is None]
        holes = missing_report(table, unfilled)
        if holes:
            why = ("the model was trained with --missing drop and has no value to put there "
                   "(nnx predict --missing-rows skip leaves those rows unpredicted)"
                   if self.missing == "drop" else "fill or drop them first (nnx train "
                   "takes --missing drop|mean|median)")
            raise TableError(f"{table.name} has missing values in {holes}; {why}")
        text = text_columns(table, [c.name for c in self.columns if c.kind == "numeric"])
        if text:
            column = text[0]
            value, line = _non_numbers(table, column)[1][0]
            raise TableError(
                f"non-numeric feature column(s) in {table.name}: {shorten(map(repr, text))} "
                f"({value!r} on line {line}); the model was trained on numbers there"
                + (f" written with the decimal mark {self.decimal!r}"
                   if _COMMA_NUMBER.fullmatch(value) or self.decimal == "," else "")
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
        if column.kind == "numeric":
            return np.array([column.fill if table.missing(v) else table.number(v)
                             for v in table.cells(column.name)], dtype=np.float64)[:, None]
        cells = [column.fill if table.missing(v) else v for v in table.cells(column.name)]
        # levels stored in one spelling per number (every model since they are) take new
        # cells in that spelling: 2008.0 is the level 2008
        if column.levels and all(_level(v, self.decimal) == v for v in column.levels):
            cells = [_level(v, self.decimal) for v in cells]
        position = {level: k for k, level in enumerate(column.levels)}
        for value, line in zip(cells, table.lines):
            if value not in position:
                raise TableError(
                    f"column {column.name!r} of {table.name} has the value {value!r} on line "
                    f"{line}, a category the model never saw (it knows: "
                    f"{shorten(column.levels)}); unseen categories are refused, not guessed"
                )
        onehot = np.zeros((len(cells), len(column.levels)))
        onehot[np.arange(len(cells)), [position[v] for v in cells]] = 1.0
        return onehot

    # ------------------------------------------------------------------ stored with the model

    def to_dict(self) -> dict:
        """Plain JSON: the policy, the missing-value markers, the decimal mark and, per
        column, its kind, fill value and levels."""
        return {"missing": self.missing, "na_values": list(self.na_values),
                "decimal": self.decimal,
                "columns": [{"name": c.name, "kind": c.kind, "fill": c.fill,
                             "levels": list(c.levels)} for c in self.columns]}

    @classmethod
    def from_dict(cls, data) -> "Preparation":
        try:
            columns = [Column(c["name"], c["kind"], c["fill"], list(c["levels"]))
                       for c in data["columns"]]
            missing = data["missing"]
            # models written before these were stored read "." and no extra markers
            na_values = [str(v) for v in data.get("na_values", [])]
            decimal = data.get("decimal", ".")
        except (KeyError, TypeError, AttributeError) as exc:
            raise TableError(f"the model's stored table preparation is damaged ({exc})") \
                from None
        if missing not in MISSING_POLICIES or decimal not in DECIMALS or any(
                c.kind not in ("numeric", "categorical") for c in columns):
            raise TableError("the model's stored table preparation is damaged")
        return cls(columns, missing, na_values, decimal)
