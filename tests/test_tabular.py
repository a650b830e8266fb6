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


# --------------------------------------------------------------------------- spreadsheet files


def _european_rows(n=200, seed=0, marker="#N/A"):
    """A ';' file as a European spreadsheet writes it: decimal commas, Excel's #N/A in a
    numeric column, one text column. The label follows x1 + x2."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal(size=4)
        cells = [f"{v:.3f}".replace(".", ",") for v in x]
        if i % 17 == 3:
            cells[2] = marker
        rows.append(cells + [["red", "green", "blue"][i % 3], str(int(x[0] + x[1] > 0))])
    return rows


EURO_HEADER = ["x1", "x2", "x3", "x4", "color", "label"]


def test_decimal_commas_and_excel_markers_stay_numbers(tmp_path, capsys, monkeypatch):
    quiet_plots(monkeypatch)
    path = write_table(tmp_path / "euro.csv", EURO_HEADER, _european_rows(), ";")
    out = tmp_path / "o"
    code, stdout, err = run(["train", "--csv", path, "--target", "label", "--categorical",
                             "auto", "--missing", "median", "--hidden", "8", "--epochs", "30",
                             "--out", out], capsys)
    assert code == 0, err
    assert "decimal commas" in stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_features"] == 7  # four numbers and three colours, not one per value
    assert report["encoded_features"][:4] == ["x1", "x2", "x3", "x4"]
    assert report["metrics"]["accuracy"] > 0.8
    stored = nnx.load(out / "model.nnx").metadata["preparation"]
    assert stored["decimal"] == ","
    # new rows written the same way predict, numbers and #N/A included
    new = write_table(tmp_path / "new.csv", EURO_HEADER, _european_rows(20, seed=1), ";")
    code, stdout, err = run(["predict", "--model", out / "model.nnx", "--csv", new], capsys)
    assert code == 0, err
    assert len(stdout.splitlines()) == 21


def test_an_unknown_marker_in_a_numeric_column_is_named_with_the_option(tmp_path, capsys,
                                                                        monkeypatch):
    quiet_plots(monkeypatch)
    rows = [[r[0].replace(",", "."), r[1].replace(",", "."), r[2].replace(",", "."), r[5]]
            for r in _european_rows(marker="missing")]
    path = write_table(tmp_path / "t.csv", ["x1", "x2", "x3", "label"], rows)
    base = ["train", "--csv", path, "--target", "label", "--missing", "mean", "--epochs", "5",
            "--hidden", "4", "--out", tmp_path / "o"]
    for extra in ([], ["--categorical", "auto"]):
        code, _, err = run(base + extra, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert ("non-numeric feature column 'x3' in" in err and "'missing' on line 5" in err
                and "declare them with --na-values missing" in err), err
        assert "--categorical" not in err  # a number column is not a category
    code, _, err = run(base + ["--na-values", "missing"], capsys)
    assert code == 0, err
    stored = nnx.load(tmp_path / "o" / "model.nnx").metadata["preparation"]
    assert stored["na_values"] == ["missing"] and stored["columns"][2]["fill"] is not None
    code, stdout, err = run(["predict", "--model", tmp_path / "o" / "model.nnx", "--csv", path],
                            capsys)
    assert code == 0, err
    assert len(stdout.splitlines()) == 201  # every row predicted, "missing" cells filled


def test_decimal_commas_next_to_decimal_points_point_to_the_option(tmp_path, capsys):
    rows = [[f"{i % 7},5" if i % 4 == 1 else f"{i % 7}.5", str(i % 2)] for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["x", "y"], rows, ";")
    code, _, err = run(["train", "--csv", path, "--target", "y", "--out", tmp_path / "o"],
                       capsys)
    assert code == 2 and "'1,5' on line 3" in err and "--decimal ," in err, err


def test_auto_refuses_a_column_of_identifiers(tmp_path, capsys):
    rows = [[f"p{i}", str(i % 5), str(i % 2)] for i in range(100)]
    path = write_table(tmp_path / "t.csv", ["name", "x", "y"], rows)
    code, _, err = run(["train", "--csv", path, "--target", "y", "--categorical", "auto",
                        "--out", tmp_path / "o"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "column 'name'" in err and "100 different values in 100 rows" in err
    assert "--drop name" in err


def test_number_like_levels_are_one_level_however_written(tmp_path):
    rows = [["2008", "0"], ["2009", "1"], ["2008.0", "0"], ["10", "1"]]
    table = read_table(write_table(tmp_path / "t.csv", ["year", "y"], rows))
    prep = Preparation.fit(table, ["year"], np.arange(4), categorical=["year"])
    assert prep.columns[0].levels == ["10", "2008", "2009"]  # numeric order
    new = read_table(write_table(tmp_path / "n.csv", ["year"], [["2009.0"], ["2.008e3"]]))
    np.testing.assert_array_equal(prep.transform(new), [[0, 0, 1], [0, 1, 0]])


# --------------------------------------------------------------------------- unnamed columns


def test_unnamed_columns_are_left_out_and_predictions_ignore_the_index(tmp_path, capsys,
                                                                       monkeypatch):
    quiet_plots(monkeypatch)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] > 0).astype(int)
    rows = [[str(i), f"{a:.3f}", f"{b:.3f}", str(t), ""] for i, ((a, b), t) in
            enumerate(zip(X, y))]
    # pandas' to_csv() index (no name) and a trailing delimiter's empty column
    path = write_table(tmp_path / "t.csv", ["", "a", "b", "label", ""], rows)
    out = tmp_path / "o"
    code, stdout, err = run(["train", "--csv", path, "--target", "label", "--epochs", "20",
                             "--hidden", "4", "--out", out], capsys)
    assert code == 0, err
    assert "Left out 2 column(s) without a name" in stdout and "position 1, 5 of 5" in stdout
    assert json.loads((out / "metrics.json").read_text())["features"] == ["a", "b"]
    shifted = write_table(tmp_path / "s.csv", ["", "a", "b", "label", ""],
                          [[str(1000 + 7 * int(r[0]))] + r[1:] for r in rows])
    predictions = []
    for file in (path, shifted):
        code, stdout, err = run(["predict", "--model", out / "model.nnx", "--csv", file],
                                capsys)
        assert code == 0, err
        predictions.append([line.split(",")[5:] for line in stdout.splitlines()])
    assert predictions[0] == predictions[1]


def test_a_named_row_index_is_warned_about(tmp_path, capsys, monkeypatch):
    quiet_plots(monkeypatch)
    rows = [[str(i), f"{np.sin(i):.3f}", str(i % 2)] for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["id", "x", "y"], rows)
    code, out, err = run(["train", "--csv", path, "--target", "y", "--epochs", "1",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "Warning: column 'id'" in out and "row index" in out and "--drop id" in out


# --------------------------------------------------------------------------- wide files


def test_a_wide_file_is_detected_and_its_columns_kept_short_in_errors(tmp_path, capsys):
    header = [f"feature_{j}" for j in range(500)] + ["y"]
    rows = [[f"{(i * j) % 97 / 7:.6f}" for j in range(500)] + [str(i % 2)] for i in range(30)]
    path = write_table(tmp_path / "wide.csv", header, rows, ";")
    assert path.stat().st_size > 65536
    table = read_table(path)
    assert table.delimiter == ";" and len(table.header) == 501
    code, _, err = run(["train", "--csv", path, "--target", "label", "--out", tmp_path / "o"],
                       capsys)
    assert code == 2 and "unknown target column 'label'" in err and "and 493 more" in err
    assert len(err) < 400, err


# --------------------------------------------------------------------------- smaller matters


def test_rows_a_drop_model_cannot_fill_can_be_left_unpredicted(tmp_path, capsys,
                                                               monkeypatch):
    quiet_plots(monkeypatch)
    rows = [[f"{i / 10:.1f}", "NA" if i % 9 == 4 else f"{i % 3}", str(i % 2)]
            for i in range(60)]
    path = write_table(tmp_path / "t.csv", ["x", "z", "y"], rows)
    out = tmp_path / "o"
    code, _, err = run(["train", "--csv", path, "--target", "y", "--missing", "drop",
                        "--epochs", "2", "--out", out], capsys)
    assert code == 0, err
    code, _, err = run(["predict", "--model", out / "model.nnx", "--csv", path], capsys)
    assert code == 2 and "first on line 6" in err and "--missing-rows skip" in err
    code, stdout, err = run(["predict", "--model", out / "model.nnx", "--csv", path,
                             "--missing-rows", "skip"], capsys)
    assert code == 0 and "Left 7 of 60 rows unpredicted" in err, err
    lines = stdout.splitlines()[1:]
    assert len(lines) == 60 and lines[4].endswith(",,,") and not lines[5].endswith(",")


def test_duplicate_names_and_python_words_in_option_messages(penguins, tmp_path, capsys):
    for argv, message in [
        (["--features", "island,island"], "--features names 'island' more than once"),
        (["--test-size", "1.5"], "--test-size must be between 0 and 1"),
        (["--test-size", "0.999"], "--test-size 0.999 leaves no training rows out of 240"),
    ]:
        code, _, err = run(["train", "--csv", penguins, "--target", "species",
                            "--categorical", "auto", "--missing", "median", *argv,
                            "--out", tmp_path / "o"], capsys)
        assert code == 2 and re.search(message, err), (argv, err)
