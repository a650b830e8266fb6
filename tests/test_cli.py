"""The ``nnx`` command: every subcommand runs, writes what it promises, and every user mistake
is one line on stderr with exit status 2."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnx
from nnx import cli, datasets

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def assert_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 50


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def metrics_line(out):
    line = re.search(r"^Test metrics: (.+)$", out, re.M).group(1)
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+\d.e]+)", line)}


# --------------------------------------------------------------------------- help and info


@pytest.mark.parametrize("argv", [[], ["demo"], ["train"], ["predict"], ["info"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnx")
    if argv == ["train"]:
        for flag in ("--data", "--csv", "--target", "--hidden", "--activation", "--optimizer",
                     "--lr", "--epochs", "--batch-size", "--dropout", "--l2", "--batch-norm",
                     "--early-stopping", "--backend", "--device", "--seed", "--out"):
            assert flag in out


def test_info(capsys):
    code, out, _ = run(["info"], capsys)
    assert code == 0
    assert f"nnx {nnx.__version__}" in out
    backends = re.search(r"^backends usable here: (.+)$", out, re.M).group(1).split(", ")
    assert backends == nnx.available_backends() and "numpy" in backends
    assert "  numpy: cpu" in out


# --------------------------------------------------------------------------- train


def test_train_on_bundled_data_writes_metrics_and_plots(tmp_path, capsys):
    code, out, err = run(["train", "--data", "moons", "--hidden", "8", "--epochs", "15",
                          "--optimizer", "sgd", "--dpi", "40", "--out", tmp_path], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "metrics.json").read_text())
    printed = metrics_line(out)
    assert printed["accuracy"] == pytest.approx(report["metrics"]["accuracy"], abs=5e-5)
    assert 0.75 < printed["accuracy"] <= 1.0  # moons with one hidden layer of 8
    assert report["task"] == "classification" and report["features"] == ["x1", "x2"]
    assert report["n_train"] == 160 and report["n_test"] == 40
    assert len(report["history"]["loss"]) == 15
    for name in ("history.png", "decision_boundary.png", "confusion_matrix.png"):
        assert_png(tmp_path / name)
    assert "epoch" in err  # the progress bar (tqdm or plain lines) went to stderr


def test_train_on_a_csv_with_text_labels(tmp_path, capsys):
    X, y = datasets.make_spiral(150, n_classes=3, seed=1)
    extra = np.random.default_rng(0).normal(size=150)
    names = np.array(["apple", "kiwi", "plum"])[y]
    path = write_csv(tmp_path / "fruit.csv", ["a", "fruit", "b", "noise"],
                     [[f"{r[0]:.6f}", n, f"{r[1]:.6f}", f"{e:.3f}"]
                      for r, n, e in zip(X, names, extra)])
    code, out, err = run(["train", "--csv", path, "--target", "fruit", "--hidden", "32",
                          "--epochs", "40", "--lr", "0.01", "--dpi", "40",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert report["features"] == ["a", "b", "noise"] and report["target"] == "fruit"
    assert "(3 classes)" in out
    assert 0.0 <= metrics_line(out)["accuracy"] <= 1.0
    assert_png(tmp_path / "o" / "confusion_matrix.png")
    assert not (tmp_path / "o" / "decision_boundary.png").exists()  # 3 features: no plane


def test_train_regression_reports_in_the_target_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) * [10.0, 0.1] + [50.0, -3.0]
    y = 3.0 * X[:, 0] - 200.0 * X[:, 1] + 1000.0
    path = write_csv(tmp_path / "r.csv", ["x1", "x2", "price"],
                     [[*row, t] for row, t in zip(X, y)])
    code, out, err = run(["train", "--csv", path, "--target", "price", "--hidden", "16",
                          "--epochs", "60", "--lr", "0.01", "--dpi", "40",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"mse", "mae", "r2"}
    # raw-unit target (mean 1000, sd ~40) learned through standardization folded into the net
    assert metrics["r2"] > 0.95 and metrics["mae"] < 15.0


def test_train_with_regularization_flags(tmp_path, capsys):
    code, out, err = run(["train", "--data", "breast_cancer", "--hidden", "16",
                          "--dropout", "0.2", "--l2", "1e-4", "--batch-norm",
                          "--early-stopping", "--patience", "3", "--epochs", "200",
                          "--dpi", "40", "--out", tmp_path], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert set(report["history"]) >= {"loss", "val_loss"}
    assert report["epochs_run"] < 200  # early stopping stopped it
    assert report["metrics"]["accuracy"] > 0.85
    assert "BatchNorm" in out and "Dropout" in out  # the summary shows the layers


def test_standardization_is_folded_exactly_into_the_network():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3)) * [100.0, 0.01, 5.0] + [1e3, 2.0, -7.0]
    y = rng.normal(size=50) * 30.0 + 500.0
    scaler = datasets.Standardizer().fit(X)
    net = nnx.Network([nnx.Dense(8, activation="tanh"), nnx.Dense(1)], input_dim=3,
                      loss="mse", dtype="float64", seed=0)
    y_mean, y_scale = y.mean(), y.std()
    net.fit(scaler.transform(X), (y - y_mean) / y_scale, epochs=3)
    before = net.predict(scaler.transform(X)) * y_scale + y_mean
    cli._fold_affine(net, scaler.mean_, scaler.scale_, y_mean, y_scale)
    np.testing.assert_allclose(net.predict(X), before, rtol=1e-10)


# --------------------------------------------------------------------------- demo


def test_demo_subset(tmp_path, capsys):
    code, out, err = run(["demo", "--quick", "--dpi", "40", "--only", "activations",
                          "backprop_step_by_step", "--out", tmp_path], capsys)
    assert code == 0, err
    assert_png(tmp_path / "activations.png")
    assert "Loss (Binary Cross-Entropy): 0.7598" in out
    assert f"  {tmp_path / 'activations.png'}" in out


# --------------------------------------------------------------------------- predict


def _read_table(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_train_then_predict_round_trip(tmp_path, capsys):
    """``nnx train`` writes the folded model with its column names; ``nnx predict`` picks
    those columns by name from a CSV in another order, on another backend, and gives the
    labels and probabilities of the trained network."""
    X, y = datasets.make_spiral(120, n_classes=3, seed=2)
    names = np.array(["apple", "kiwi", "plum"])[y]
    path = write_csv(tmp_path / "fruit.csv", ["a", "fruit", "b"],
                     [[f"{r[0]:.6f}", n, f"{r[1]:.6f}"] for r, n in zip(X, names)])
    code, out, err = run(["train", "--csv", path, "--target", "fruit", "--hidden", "16",
                          "--epochs", "20", "--lr", "0.01", "--dpi", "30",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    model = tmp_path / "o" / "model.nnx"
    assert f"  {model}" in out
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["model"] == str(model)
    net = nnx.load(model)
    assert net.metadata["features"] == ["a", "b"] and net.metadata["target"] == "fruit"
    assert net.metadata["task"] == "classification"
    assert nnx.io.read_header(model)["optimizer_state"] is None

    new = write_csv(tmp_path / "new.csv", ["b", "id", "a"],
                    [[f"{r[1]:.6f}", i, f"{r[0]:.6f}"] for i, r in enumerate(X[:30])])
    backend = "torch" if "torch" in nnx.available_backends() else "numpy"
    code, out, err = run(["predict", "--model", model, "--csv", new, "--backend", backend,
                          "--out", tmp_path / "pred.csv"], capsys)
    assert code == 0, err
    assert "Wrote 30 predictions" in out
    header, rows = _read_table(tmp_path / "pred.csv")
    assert header == ["b", "id", "a", "predicted_fruit", "proba_apple", "proba_kiwi",
                      "proba_plum"]
    X_new = np.round(X[:30], 6)
    assert [r[3] for r in rows] == net.predict(X_new).tolist()
    proba = np.array([[float(v) for v in r[4:]] for r in rows])
    np.testing.assert_allclose(proba, net.predict_proba(X_new), rtol=1e-6, atol=1e-7)
    assert [r[1] for r in rows] == [str(i) for i in range(30)]  # input rows kept, in order

    code, out, err = run(["predict", "--model", model, "--csv", new], capsys)  # to stdout
    assert code == 0, err
    assert out.splitlines()[0] == ",".join(header) and len(out.splitlines()) == 31


def test_predict_regression_in_target_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) * [10.0, 0.1] + [50.0, -3.0]
    y = 3.0 * X[:, 0] - 200.0 * X[:, 1] + 1000.0
    path = write_csv(tmp_path / "r.csv", ["x1", "x2", "price"],
                     [[*row, t] for row, t in zip(X, y)])
    code, _, err = run(["train", "--csv", path, "--target", "price", "--hidden", "8",
                        "--epochs", "30", "--lr", "0.01", "--dpi", "30",
                        "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    code, out, err = run(["predict", "--model", tmp_path / "o" / "model.nnx", "--csv", path],
                         capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "x1,x2,price,predicted_price"
    pred = np.array([float(line.split(",")[-1]) for line in lines[1:]])
    expected = nnx.load(tmp_path / "o" / "model.nnx").predict(X)
    np.testing.assert_allclose(pred, expected, rtol=1e-7)
    assert np.mean(np.abs(pred - y)) < 40.0  # in the target's units (sd ~ 35), not z-scores


def test_predict_mistakes_are_one_line(tmp_path, capsys):
    model = nnx.Network([nnx.Dense(4, activation="relu"), nnx.Dense(1)], input_dim=2, seed=0)
    model.fit(np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), [0, 1, 1, 0],
              epochs=1)
    named = model.save(tmp_path / "named.nnx", metadata={"features": ["x1", "x2"],
                                                         "target": "y"})
    unnamed = model.save(tmp_path / "unnamed.nnx")
    data = write_csv(tmp_path / "d.csv", ["x1", "z", "w"], [[1, 2, 3]])
    text = write_csv(tmp_path / "t.csv", ["x1", "x2"], [[1, "high"]])
    cases = [
        (["predict", "--model", tmp_path / "nope.nnx", "--csv", data], "no such model file"),
        (["predict", "--model", data, "--csv", data], "is not an nnx model file"),
        (["predict", "--model", named, "--csv", data],
         r"lacks the feature column\(s\) 'x2' the model was trained on; its columns are: "
         "x1, z, w"),
        (["predict", "--model", unnamed, "--csv", data],
         r"no feature names and takes 2 column\(s\); .* has 3"),
        (["predict", "--model", named, "--csv", text], "non-numeric feature column.*'x2'"),
    ]
    for argv, message in cases:
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert re.search(message, err), (argv, err)


# --------------------------------------------------------------------------- user mistakes


@pytest.fixture
def table(tmp_path):
    return write_csv(tmp_path / "t.csv", ["x1", "x2", "label"],
                     [[0.1, 1.0, "a"], [0.2, 2.0, "b"], [0.3, 3.0, "a"], [0.4, 4.0, "b"]])


def _bad_cases(tmp_path, table):
    mixed = write_csv(tmp_path / "mixed.csv", ["x1", "city", "color", "y"],
                      [[1, "Paris", "red", 0], [2, "Rome", "blue", 1]])
    holes = write_csv(tmp_path / "holes.csv", ["x1", "x2", "y"],
                      [[1, 2, 0], [2, "", 1], [3, "NA", 0], [4, 5, 1]])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x1,x2,y\n1,2,0\n3,4\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = ["--out", tmp_path / "o"]
    return [
        (["train", "--csv", tmp_path / "nope.csv", "--target", "y", *out],
         "no such CSV file"),
        (["train", "--csv", table, "--target", "price", *out],
         "unknown target column 'price'.*columns are: x1, x2, label"),
        (["train", "--csv", mixed, "--target", "y", *out],
         "non-numeric feature column.*'city', 'color'"),
        (["train", "--csv", holes, "--target", "y", *out],
         r"missing values in 'x2' \(2 row\(s\), first on line 3\)"),
        (["train", "--csv", ragged, "--target", "y", *out], "line 3 has 2 fields"),
        (["train", "--csv", empty, "--target", "y", *out], "is empty"),
        (["train", "--csv", table, *out], "--csv needs --target"),
        (["train", "--data", "moons", "--csv", table, "--target", "label", *out],
         "exactly one of --data"),
        (["train", "--data", "moons", "--hidden", "64,,x", *out], "--hidden must be"),
        (["train", "--data", "moons", "--hidden", "64,-3", *out], "--hidden must be"),
        (["train", "--data", "moons", "--out", blocker / "sub"], "is not writable"),
        (["train", "--data", "moons", "--epochs", "zero", *out],
         "argument --epochs: expected a positive integer"),
        (["train", "--data", "moons", "--lr", "nan", *out], "expected a finite number"),
        (["train", "--data", "mnist", *out], "argument --data: invalid choice"),
        (["train", "--data", "moons", "--frobnicate", *out], "unrecognized arguments"),
        (["train", "--data", "moons", "--optimizer", "adamm", "--epochs", "1", *out],
         "unknown optimizer 'adamm'"),
        (["train", "--data", "moons", "--activation", "relux", "--epochs", "1", *out],
         "unknown activation 'relux'"),
        (["train", "--data", "moons", "--dropout", "1.5", "--epochs", "1", *out],
         "Dropout rate"),
        (["train", "--data", "moons", "--task", "regression", *out],
         "classification problem"),
        (["demo", "--only", "everything", *out], "invalid choice"),
        (["predict", "--csv", table], "--model"),
    ]


def test_every_user_mistake_is_one_line_and_exit_2(tmp_path, table, capsys):
    for argv, message in _bad_cases(tmp_path, table):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("nnx: error: "), (argv, err)
        assert re.search(message, lines[0]), (argv, lines[0])
        assert "Traceback" not in err


def test_the_console_command_exits_2_without_traceback(tmp_path):
    """A real process, as a user would run it (``python -m nnx.cli`` is what ``nnx`` calls)."""
    result = subprocess.run(
        [sys.executable, "-m", "nnx.cli", "train", "--csv", str(tmp_path / "missing.csv"),
         "--target", "y", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"nnx: error: no such CSV file: {str(tmp_path / 'missing.csv')!r}")
    version = subprocess.run([sys.executable, "-m", "nnx.cli", "--version"],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"nnx {nnx.__version__}"
