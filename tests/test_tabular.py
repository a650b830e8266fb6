"""Tables with text columns and missing cells: reading them (delimiters), preparing them
(column choice, missing values, one-hot encoding), and the same preparation at prediction
time through ``nnx train --csv`` / ``nnx predict``."""

import csv
import json
import re

import numpy as np
import pytest

import nnx
from nnx import cli, tabular
from nnx.tabular import Preparation, TableError, read_table

#: per species: island weights, and mean bill length, bill depth, flipper length, body mass
_SPECIES = {
    "Adelie": ([0.3, 0.35, 0.35], (38.8, 18.3, 190.0, 3700.0)),
    "Chinstrap": ([0.0, 1.0, 0.0], (48.8, 18.4, 196.0, 3730.0)),
    "Gentoo": ([1.0, 0.0, 0.0], (47.5, 15.0, 217.0, 5080.0)),
}
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
HEADER = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
          "body_mass_g", "sex", "year"]


def penguin_rows(n=240, seed=0):
    """Rows shaped like the Palmer penguins file: text columns island and sex, numbers in
    raw units, "NA" in a few cells (two rows with no measurements at all, some without sex).
    Males are larger, as in the real data."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        species = list(_SPECIES)[i % 3]
        weights, means = _SPECIES[species]
        island = ISLANDS[rng.choice(3, p=weights)]
        male = rng.random() < 0.5
        bump = np.array([1.5, 0.6, 4.0, 350.0]) * (1 if male else -1) / 2
        values = np.array(means) + bump + rng.normal(size=4) * [2.5, 0.8, 6.0, 300.0]
        cells = [f"{values[0]:.1f}", f"{values[1]:.1f}", f"{values[2]:.0f}",
                 f"{values[3]:.0f}"]
        sex = "male" if male else "female"
        if i in (3, 150):
            cells, sex = ["NA"] * 4, "NA"
        elif i % 23 == 5:
            sex = "NA"
        rows.append([species, island, *cells, sex, str(2007 + i % 3)])
    return rows


def write_table(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def penguins(tmp_path):
    return write_table(tmp_path / "penguins.csv", HEADER, penguin_rows())


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def quiet_plots(monkeypatch):
    monkeypatch.setattr(cli, "_train_plots", lambda *a, **k: [])  # figures: test_cli.py


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected(tmp_path, delimiter):
    path = write_table(tmp_path / "t.txt", ["a", "b c", "y"],
                       [["1,5" if delimiter != "," else "1.5", "x;y", "0"], ["2", "z", "1"]],
                       delimiter)
    table = read_table(path)
    assert table.delimiter == delimiter and table.header == ["a", "b c", "y"]
    assert table.rows[1] == ["2", "z", "1"] and table.lines == [2, 3]


def test_a_given_delimiter_wins_and_quotes_are_respected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('name;note\n"Smith, J";"a;b"\n')
    assert read_table(path).rows == [["Smith, J", "a;b"]]
    assert read_table(path, delimiter=",").header == ["name;note"]
    assert tabular.parse_delimiter("tab") == "\t" and tabular.parse_delimiter(None) is None
    with pytest.raises(TableError, match="unknown delimiter ':'"):
        tabular.parse_delimiter(":")


def test_a_ragged_row_names_its_line_and_suggests_the_delimiter(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,0\n\n3,4\n")
    with pytest.raises(TableError, match=r"line 4 has 2 fields .*--delimiter"):
        read_table(path)


# --------------------------------------------------------------------------- preparation


def test_one_hot_columns_and_fill_values_from_the_training_rows(penguins):
    table = read_table(penguins)
    columns = ["island", "bill_length_mm", "sex"]
    train = np.arange(100)
    prep = Preparation.fit(table, columns, train, categorical=["island", "sex"],
                           missing="mean")
    assert prep.feature_names == ["island=Biscoe", "island=Dream", "island=Torgersen",
                                  "bill_length_mm", "sex=female", "sex=male"]
    bills = [float(v) for v in table.cells("bill_length_mm")[:100] if v != "NA"]
    assert prep.columns[1].fill == pytest.approx(np.mean(bills))  # training rows only
    sexes = [v for v in table.cells("sex")[:100] if v != "NA"]
    assert prep.columns[2].fill == max(sorted(set(sexes)), key=sexes.count)
    X = prep.transform(table)
    assert X.shape == (240, 6)
    np.testing.assert_array_equal(X[:, :3].sum(axis=1), 1.0)  # one island per row
    assert X[3, 3] == pytest.approx(np.mean(bills))  # row 3 has no measurements
    assert float(table.cells("bill_length_mm")[0]) == X[0, 3]
    # stored as JSON and read back: the same matrix
    again = Preparation.from_dict(json.loads(json.dumps(prep.to_dict())))
    np.testing.assert_array_equal(again.transform(table), X)


def test_median_fills_and_missing_columns_or_unseen_levels_are_refused(penguins, tmp_path):
    table = read_table(penguins)
    prep = Preparation.fit(table, ["body_mass_g", "island"], np.arange(240),
                           categorical=["island"], missing="median")
    masses = [float(v) for v in table.cells("body_mass_g") if v != "NA"]
    assert prep.columns[0].fill == np.median(masses)
    new = read_table(write_table(tmp_path / "new.csv", ["island", "body_mass_g"],
                                 [["Dream", "4000"], ["Atlantis", "3900"]]))
    with pytest.raises(TableError, match=r"'island' .* value 'Atlantis' on line 3, a category "
                                         r"the model never saw \(it knows: Biscoe, Dream, "
                                         r"Torgersen\)"):
        prep.transform(new)
    lacking = read_table(write_table(tmp_path / "lack.csv", ["island"], [["Dream"]]))
    with pytest.raises(TableError, match="lacks the feature column.*'body_mass_g'"):
        prep.transform(lacking)


def test_the_policies_that_fill_nothing_refuse_missing_cells(penguins, tmp_path):
    table = read_table(penguins)
    with pytest.raises(TableError, match=r"missing values in 'bill_length_mm' \(2 row\(s\), "
                                         r"first on line 5\); drop those rows with --missing"):
        Preparation.fit(table, ["bill_length_mm"], np.arange(200))
    with pytest.raises(TableError, match=r"non-numeric feature column\(s\) .*'island'; one-hot "
                                         "encode them with --categorical auto"):
        Preparation.fit(table, ["island", "year"], np.arange(200))
    kept = table.subset(tabular.rows_without_missing(table, ["bill_length_mm"]))
    prep = Preparation.fit(kept, ["bill_length_mm"], np.arange(200), missing="drop")
    with pytest.raises(TableError, match="trained with --missing drop and has no value"):
        prep.transform(table)
    with pytest.raises(TableError, match="--missing must be one of"):
        Preparation.fit(kept, ["bill_length_mm"], np.arange(200), missing="zero")


def test_column_selection(penguins):
    table = read_table(penguins)
    assert tabular.select_columns(table, "species", drop=["year", "sex"]) == [
        "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    assert tabular.select_columns(table, "species", ["sex", "island"]) == ["sex", "island"]
    for kwargs, message in [
        (dict(features=["beak"]), r"--features names column\(s\) 'beak' that"),
        (dict(drop=["weight"]), r"--drop names column\(s\) 'weight'"),
        (dict(features=["sex"], drop=["year"]), "not both"),
        (dict(features=["species"]), "lists the target 'species'"),
    ]:
        with pytest.raises(TableError, match=message):
            tabular.select_columns(table, "species", **kwargs)


# --------------------------------------------------------------------------- the command line


def test_train_on_penguins_then_predict_new_rows_the_same_way(penguins, tmp_path, capsys,
                                                               monkeypatch):
    quiet_plots(monkeypatch)
    out = tmp_path / "o"
    code, stdout, err = run(["train", "--csv", penguins, "--target", "species",
                             "--categorical", "auto", "--missing", "median", "--drop", "year",
                             "--hidden", "16", "--epochs", "60", "--out", out], capsys)
    assert code == 0, err
    report = json.loads((out / "metrics.json").read_text())
    assert report["features"] == ["island", "bill_length_mm", "bill_depth_mm",
                                  "flipper_length_mm", "body_mass_g", "sex"]
    assert report["n_features"] == 9 and report["encoded_features"][-2:] == ["sex=female",
                                                                             "sex=male"]
    assert report["n_train"] + report["n_test"] == 240  # median: no row left out
    assert report["metrics"]["accuracy"] > 0.9
    net = nnx.load(out / "model.nnx")
    stored = net.metadata["preparation"]
    assert stored["missing"] == "median" and stored["columns"][0]["levels"] == ISLANDS

    # new rows: columns in another order, the target absent, a missing cell, semicolons
    rows = penguin_rows(30, seed=7)
    new_header = ["sex", "body_mass_g", "id", "flipper_length_mm", "bill_depth_mm",
                  "bill_length_mm", "island"]
    new_rows = [[r[6], r[5], f"p{i}", r[4], r[3], r[2], r[1]] for i, r in enumerate(rows)]
    new = write_table(tmp_path / "new.csv", new_header, new_rows, ";")
    code, stdout, err = run(["predict", "--model", out / "model.nnx", "--csv", new], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0] == ";".join(new_header + ["predicted_species", "proba_Adelie",
                                              "proba_Chinstrap", "proba_Gentoo"])
    expected = net.predict(Preparation.from_dict(stored).transform(read_table(new)))
    assert [line.split(";")[7] for line in lines[1:]] == expected.tolist()
    truth = [r[0] for r in rows]
    assert np.mean(expected == np.array(truth)) > 0.85

    # an island the model never saw, a column it needs: one line each, exit 2
    unseen = write_table(tmp_path / "unseen.csv", new_header, [new_rows[0][:6] + ["Atlantis"]])
    lacking = write_table(tmp_path / "lacking.csv", new_header[1:], [r[1:] for r in new_rows])
    for path, message in [(unseen, "value 'Atlantis' on line 2, a category the model never "
                                   "saw"),
                          (lacking, r"lacks the feature column\(s\) 'sex'")]:
        code, _, err = run(["predict", "--model", out / "model.nnx", "--csv", path], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err)


def test_regression_on_one_column_with_text_columns_around(penguins, tmp_path, capsys,
                                                           monkeypatch):
    quiet_plots(monkeypatch)
    out = tmp_path / "o"
    code, stdout, err = run(["train", "--csv", penguins, "--target", "body_mass_g",
                             "--categorical", "species,island,sex", "--missing", "drop",
                             "--hidden", "16", "--out", out], capsys)
    assert code == 0, err
    dropped = 2 + sum(1 for i in range(240) if i % 23 == 5 and i not in (3, 150))
    assert f"Left out {dropped} of 240 rows with missing values (--missing drop)" in stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["task"] == "regression" and report["metrics"]["r2"] > 0.7
    assert "year" in report["features"]  # numeric, kept as a number
    # a model trained with --missing drop refuses a new row with a hole
    code, _, err = run(["predict", "--model", out / "model.nnx", "--csv", penguins], capsys)
    assert code == 2 and "trained with --missing drop" in err


def test_text_and_missing_cells_point_to_the_options(penguins, tmp_path, capsys):
    out = ["--out", tmp_path / "o", "--epochs", "1"]
    for argv, message in [
        ([], r"missing values in 'bill_length_mm' .*--missing drop"),
        (["--missing", "mean"], r"non-numeric feature column\(s\) .*'island', 'sex'; one-hot "
                                "encode them with --categorical auto"),
        (["--missing", "mean", "--categorical", "island"], r"non-numeric .*: 'sex'"),
        (["--categorical", "beak"], "--categorical names 'beak', not among the feature"),
        (["--features", "island", "--drop", "sex"], "--features or --drop, not both"),
        (["--delimiter", ":"], "argument --delimiter: unknown delimiter ':'"),
        (["--missing", "zero"], "argument --missing: invalid choice"),
        (["--delimiter", ";"], "unknown target column 'species'"),
    ]:
        code, _, err = run(["train", "--csv", penguins, "--target", "species", *argv, *out],
                           capsys)
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert re.search(message, err), (argv, err)


def test_a_missing_target_is_left_out_never_filled(tmp_path, capsys, monkeypatch):
    quiet_plots(monkeypatch)
    rows = [[f"{i * 0.1:.1f}", "NA" if i == 4 else str(i % 2)] for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["x", "y"], rows)
    code, _, err = run(["train", "--csv", path, "--target", "y", "--epochs", "1",
                        "--out", tmp_path / "o"], capsys)
    assert code == 2 and "missing values in the target 'y' (1 row(s), first on line 6)" in err
    code, stdout, err = run(["train", "--csv", path, "--target", "y", "--epochs", "1",
                             "--missing", "mean", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "Left out 1 of 40 rows" in stdout
