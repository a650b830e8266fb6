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
    assert "epoch" in err  # the progress lines went to stderr


@pytest.mark.parametrize("options", [[], ["--hidden", "16,8", "--epochs", "100"]])
def test_the_defaults_give_a_good_moons_model(tmp_path, capsys, monkeypatch, options):
    """Nothing but the data set (and the README's first command): a curved boundary, not
    the near-straight one of an underfit network (a linear model scores 0.85 here)."""
    monkeypatch.setattr(cli, "_train_plots", lambda *a, **k: [])
    code, out, err = run(["train", "--data", "moons", *options, "--out", tmp_path], capsys)
    assert code == 0, err
    assert metrics_line(out)["accuracy"] >= 0.875  # seed 0: at most 5 of 40 test rows wrong


def test_early_stopping_is_on_by_default_and_can_be_turned_off(tmp_path, capsys, monkeypatch,
                                                              fit_spy):
    monkeypatch.setattr(cli, "_train_plots", lambda *a, **k: [])
    code, _, err = run(["train", "--data", "iris", "--epochs", "7", "--no-early-stopping",
                        "--out", tmp_path], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["early_stopping"] is False and report["epochs_run"] == 7
    assert "val_loss" not in report["history"]
    assert fit_spy[-1]["X"].shape[0] == 120 and fit_spy[-1]["validation_data"] is None
    for value, message in [("1.5", "--validation-split must be between 0 and 1; got 1.5"),
                           ("0.001", "leaves 120 to train on and 0 to validate on")]:
        code, _, err = run(["train", "--data", "iris", "--validation-split", value,
                            "--out", tmp_path], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_every_optimizer_has_a_default_rate_and_the_benchmark_runs(capsys):
    from nnx.optimizers import OPTIMIZERS

    assert set(cli.DEFAULT_LEARNING_RATES) == set(OPTIMIZERS)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import cli_defaults
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert cli_defaults.main(["--datasets", "moons,diabetes", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\| moons \| accuracy \| 0\.\d+ \|", out, re.M)
    assert re.search(r"^\| diabetes \| R² \| ", out, re.M)


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


# --------------------------------------------------------------------------- .npy and .npz files


def _spiral_arrays(n=200, seed=3):
    """Three classes in raw units far from standardized (what the folding must undo)."""
    X, y = datasets.make_spiral(n, n_classes=3, seed=seed)
    return (X * [50.0, 0.02] + [300.0, -4.0]).astype(np.float32), y


@pytest.fixture
def fit_spy(monkeypatch):
    """Records what ``nnx train`` hands to ``Network.fit`` (a copy of X, taken at the call)."""
    calls = []
    real_fit = nnx.Network.fit

    def fit(self, X, y, *args, **kwargs):
        calls.append({"type": type(X), "dtype": X.dtype, "X": np.array(X), "y": np.array(y),
                      "validation_data": kwargs.get("validation_data")})
        return real_fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(nnx.Network, "fit", fit)
    return calls


def test_train_from_npy_files_streams_a_memmap(tmp_path, capsys, monkeypatch, fit_spy):
    X, y = _spiral_arrays()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    monkeypatch.setattr(cli, "BLOCK_BYTES", 8 * 2 * 7)  # blocks of 7 rows: many of them
    out = tmp_path / "o"
    code, stdout, err = run(["train", "--data", tmp_path / "X.npy", "--target",
                             tmp_path / "y.npy", "--hidden", "32", "--epochs", "40", "--lr",
                             "0.01", "--dpi", "30", "--out", out], capsys)
    assert code == 0, err
    assert f"Training on {tmp_path / 'X.npy'} + {tmp_path / 'y.npy'}: 160 train / 40 test" in stdout

    # the network got a memmap (not an array read into memory) of the standardized training
    # rows: the split's rows in its shuffled order (as in memory), scaled with statistics of
    # those rows alone; early stopping (on by default) validates on their last 20%, also
    # a memmap
    (call,) = fit_spy
    assert call["type"] is np.memmap and call["dtype"] == np.float32
    train, test = datasets.train_test_indices(200, test_size=0.2, seed=0)
    scaler = datasets.Standardizer().fit(X[train])
    np.testing.assert_allclose(call["X"], scaler.transform(X[train])[:128], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_array_equal(call["y"], y[train][:128])
    X_val, y_val = call["validation_data"]
    assert type(X_val) is np.memmap
    np.testing.assert_allclose(X_val, scaler.transform(X[train])[128:], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y_val, y[train][128:])
    assert not [p for p in out.iterdir() if p.name.startswith(".nnx-train-")]  # scratch gone

    # the saved model takes raw rows; its metadata names the source and the feature count
    net = nnx.load(out / "model.nnx")
    assert net.metadata == {
        "features": None, "n_features": 2, "target": "y", "task": "classification",
        "source": f"{tmp_path / 'X.npy'} + {tmp_path / 'y.npy'}", "source_format": "npy",
        "features_file": str(tmp_path / "X.npy"), "labels_file": str(tmp_path / "y.npy")}
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_features"] == 2 and report["source_format"] == "npy"
    assert (report["n_train"], report["n_test"]) == (160, 40)
    accuracy = np.mean(net.predict(X[test]) == y[test])
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.8
    for name in ("history.png", "decision_boundary.png", "confusion_matrix.png"):
        assert_png(out / name)


def test_npz_trains_as_the_same_csv_and_npy_streams_the_same_model(tmp_path, capsys, fit_spy):
    X, y = datasets.make_spiral(150, n_classes=3, seed=4)
    X = X * [10.0, 3.0] + [1.0, -2.0]  # float64: repr() in the CSV gives back the same numbers
    np.savez(tmp_path / "d.npz", X=X, y=y)
    write_csv(tmp_path / "d.csv", ["a", "b", "y"], [[repr(float(r[0])), repr(float(r[1])), t]
                                                     for r, t in zip(X, y)])
    common = ["--hidden", "8", "--epochs", "5", "--dpi", "30"]
    code, _, err = run(["train", "--data", tmp_path / "d.npz", *common,
                        "--out", tmp_path / "npz"], capsys)
    assert code == 0, err
    code, _, err = run(["train", "--csv", tmp_path / "d.csv", "--target", "y", *common,
                        "--out", tmp_path / "csv"], capsys)
    assert code == 0, err
    assert fit_spy[0]["type"] is np.ndarray  # an .npz is in memory: the in-memory path
    np.testing.assert_array_equal(fit_spy[0]["X"], fit_spy[1]["X"])
    from_npz, from_csv = nnx.load(tmp_path / "npz" / "model.nnx"), nnx.load(tmp_path / "csv" /
                                                                             "model.nnx")
    for name, value in from_npz.parameters().items():
        np.testing.assert_array_equal(value, from_csv.parameters()[name])
    # the same arrays as .npy files: streamed, the same split and batches, the same model up
    # to the rounding of the streamed statistics
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, _, err = run(["train", "--data", tmp_path / "X.npy", "--target", tmp_path / "y.npy",
                        *common, "--out", tmp_path / "npy"], capsys)
    assert code == 0, err
    assert fit_spy[2]["type"] is np.memmap
    np.testing.assert_allclose(fit_spy[2]["X"], fit_spy[0]["X"], rtol=1e-6, atol=1e-6)
    from_npy = nnx.load(tmp_path / "npy" / "model.nnx")
    for name, value in from_npz.parameters().items():
        np.testing.assert_allclose(from_npy.parameters()[name], value, rtol=1e-4, atol=1e-5)
    assert from_npz.metadata["source"] == str(tmp_path / "d.npz")
    assert from_npz.metadata["source_format"] == "npz"
    assert from_npz.metadata["n_features"] == from_csv.metadata["n_features"] == 2
    assert from_csv.metadata["features"] == ["a", "b"]


def test_regression_from_npy_then_predict_every_row(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(250, 3)) * [10.0, 0.1, 1.0] + [50.0, -3.0, 0.0]).astype(np.float64)
    y = 3.0 * X[:, 0] - 200.0 * X[:, 1] + 1000.0
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "price.npy", y)
    monkeypatch.setattr(cli, "BLOCK_BYTES", 8 * 3 * 16)
    code, _, err = run(["train", "--data", tmp_path / "X.npy", "--target", tmp_path / "price.npy",
                        "--hidden", "16", "--epochs", "60", "--lr", "0.01", "--dpi", "30",
                        "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    model = tmp_path / "o" / "model.nnx"
    report = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert report["task"] == "regression" and report["metrics"]["r2"] > 0.95
    net = nnx.load(model)
    assert net.metadata["target"] == "price" and net.metadata["n_features"] == 3

    # CSV to stdout: one line per row, in the target's units
    code, out, err = run(["predict", "--model", model, "--data", tmp_path / "X.npy"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "predicted_price" and len(lines) == 251
    np.testing.assert_allclose([float(v) for v in lines[1:]], net.predict(X), rtol=1e-7)
    # .npy out: the predictions alone
    code, out, err = run(["predict", "--model", model, "--data", tmp_path / "X.npy",
                          "--out", tmp_path / "p.npy"], capsys)
    assert code == 0, err
    assert "Wrote 250 predictions" in out
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), net.predict(X))


def test_predict_an_npy_or_npz_classifier_block_by_block(tmp_path, capsys, monkeypatch):
    X, y = _spiral_arrays(150, seed=5)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.array(["apple", "kiwi", "plum"])[y])  # text labels
    code, _, err = run(["train", "--data", tmp_path / "X.npy", "--target", tmp_path / "y.npy",
                        "--hidden", "16", "--epochs", "10", "--lr", "0.01", "--dpi", "30",
                        "--early-stopping", "--patience", "3", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    history = json.loads((tmp_path / "o" / "metrics.json").read_text())["history"]
    assert len(history["val_loss"]) == len(history["loss"]) >= 1  # held out of the memmap
    model = tmp_path / "o" / "model.nnx"
    net = nnx.load(model)
    monkeypatch.setattr(cli, "BLOCK_BYTES", 8 * 2 * 11)
    code, out, err = run(["predict", "--model", model, "--data", tmp_path / "X.npy",
                          "--out", tmp_path / "p.csv"], capsys)
    assert code == 0, err
    assert out.strip() == f"Wrote 150 predictions to {tmp_path / 'p.csv'}"
    header, rows = _read_table(tmp_path / "p.csv")
    assert header == ["predicted_y", "proba_apple", "proba_kiwi", "proba_plum"]
    assert [r[0] for r in rows] == net.predict(X).tolist()
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], net.predict_proba(X),
                               rtol=1e-6, atol=1e-7)
    np.savez(tmp_path / "new.npz", X=X[:20])
    code, _, err = run(["predict", "--model", model, "--data", tmp_path / "new.npz",
                        "--out", tmp_path / "p.npy"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), net.predict(X[:20]))
    # a CSV of the same numbers works too: a model from arrays takes every column in order
    new = write_csv(tmp_path / "new.csv", ["u", "v"], [[repr(float(a)), repr(float(b))]
                                                       for a, b in X[:5]])
    code, out, err = run(["predict", "--model", model, "--csv", new], capsys)
    assert code == 0, err
    assert [line.split(",")[2] for line in out.splitlines()[1:]] == net.predict(X[:5]).tolist()


def test_array_file_mistakes_are_one_line(tmp_path, capsys):
    X, y = _spiral_arrays(40)
    files = {
        "X.npy": X, "y.npy": y, "ints.npy": np.arange(80).reshape(40, 2),
        "flat.npy": X[:, 0], "short.npy": y[:39], "wide_y.npy": np.zeros((40, 2)),
        "nan_y.npy": np.where(np.arange(40) == 9, np.nan, 1.0),
        "empty.npy": np.zeros((0, 2)), "huge.npy": np.full((40, 2), 1e300),
        "complex_y.npy": y + 1j, "three.npy": np.ones((5, 3)),
    }
    for name, arr in files.items():
        np.save(tmp_path / name, arr)
    holes = X.copy()
    holes[17, 1] = np.inf
    np.save(tmp_path / "holes.npy", holes)
    np.savez(tmp_path / "no_y.npz", X=X, labels=y)
    np.savez(tmp_path / "ok.npz", X=X, y=y)
    (tmp_path / "text.npy").write_text("not numpy")
    (tmp_path / "text.npz").write_text("not a zip")
    model = nnx.Network([nnx.Dense(3)], input_dim=2, seed=0)
    model.fit(np.eye(3)[:, :2], [0, 1, 2], epochs=1)
    model = model.save(tmp_path / "m.nnx")
    t = lambda name: tmp_path / name  # noqa: E731
    out = ["--out", tmp_path / "o"]
    cases = [
        (["--data", t("ints.npy"), "--target", t("y.npy")],
         r"the features in '.*ints\.npy' must be floats; got int64"),
        (["--data", t("flat.npy"), "--target", t("y.npy")],
         r"must be a 2-D array of shape \(rows, features\).*got shape \(40,\)"),
        (["--data", t("empty.npy"), "--target", t("y.npy")], r"got shape \(0, 2\)"),
        (["--data", t("X.npy"), "--target", t("short.npy")],
         r"the labels in '.*short\.npy' have 39 rows but the features in '.*X\.npy' have 40"),
        (["--data", t("X.npy"), "--target", t("wide_y.npy")],
         r"must be 1-D, one per row; got shape \(40, 2\)"),
        (["--data", t("X.npy"), "--target", t("nan_y.npy")], r"contain NaN \(first at row 9\)"),
        (["--data", t("X.npy"), "--target", t("complex_y.npy")], "numbers or text"),
        (["--data", t("holes.npy"), "--target", t("y.npy")],
         r"the features in '.*holes\.npy' hold NaN or inf \(first at row 17, column 1\)"),
        (["--data", t("huge.npy"), "--target", t("y.npy")], "too large for float32"),
        (["--data", t("X.npy")], r"--data .*X\.npy needs --target LABELS\.npy"),
        (["--data", t("X.npy"), "--target", "label"], "--target is the labels' .npy file"),
        (["--data", t("ok.npz"), "--target", t("y.npy")], "holds its labels as the array 'y'"),
        (["--data", t("no_y.npz")],
         r"has no array named 'y' \(it holds: X, labels\); save it with "
         r"np\.savez\(path, X=X, y=y\)"),
        (["--data", t("missing.npy"), "--target", t("y.npy")], r"no such \.npy file \(features\)"),
        (["--data", t("X.npy"), "--target", t("missing.npy")], r"no such \.npy file \(labels\)"),
        (["--data", t("missing.npz")], r"no such \.npz file"),
        (["--data", t("text.npy"), "--target", t("y.npy")], "is not a readable .npy file"),
        (["--data", t("text.npz")], "is not a readable .npz file"),
        (["--data", t("d.csv")], r"invalid choice: .*a CSV file goes to --csv"),
    ]
    for argv, message in cases:
        code, _, err = run(["train", *argv, "--epochs", "1", *out], capsys)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnx: error: "), (argv, err)
        assert re.search(message, lines[0]), (argv, lines[0])
    predict_cases = [
        (["--data", t("three.npy")], r"the model takes 2 feature\(s\) per row; the features "
                                     r"in '.*three\.npy' have 3"),
        (["--data", t("ints.npy")], "must be floats"),
        (["--data", t("text.npz"), "--out", t("p.npy")], "is not a readable .npz file"),
        (["--data", t("holes.npy"), "--out", t("p.csv")], "hold NaN or inf"),
        (["--data", t("X.csv")], r"argument --data: expected a \.npy or \.npz file"),
        (["--data", t("X.npy"), "--csv", t("X.csv")], "not allowed with argument"),
        ([], "one of the arguments --csv --data is required"),
    ]
    for argv, message in predict_cases:
        code, _, err = run(["predict", "--model", model, *argv], capsys)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnx: error: "), (argv, err)
        assert re.search(message, lines[0]), (argv, lines[0])
    assert not (tmp_path / "p.csv").exists()  # a bad row is found before anything is written


def test_help_explains_the_array_files(capsys):
    texts = {}
    for command in ("train", "predict"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        texts[command] = " ".join(capsys.readouterr().out.split())
        assert "memory-mapped" in texts[command] and ".npz" in texts[command]
    assert "NumPy cannot memory-map an .npz: it is loaded into memory" in texts["train"]
    assert "--target y.npy" in texts["train"] and "use .npy files" in texts["train"]


def test_plain_errors_for_an_unknown_optimizer_and_an_unwritable_output(tmp_path, capsys):
    code, _, err = run(["train", "--data", "moons", "--optimizer", "foo", "--out", tmp_path],
                       capsys)
    assert code == 2
    assert "unknown optimizer 'foo'; choose one of" in err and "nnx.optimizers" not in err
    code, _, _ = run(["train", "--data", "moons", "--epochs", "2", "--out", tmp_path / "m"],
                     capsys)
    assert code == 0
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    code, _, err = run(["predict", "--model", tmp_path / "m" / "model.nnx", "--data",
                        tmp_path / "x.npy", "--out", tmp_path / "no" / "such" / "p.csv"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"cannot use '{tmp_path / 'no' / 'such' / 'p.csv'}'" in err and "Errno" not in err


def test_the_help_explains_epochs_and_batch_size(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "passes over the training rows (default: 300)" in out
    assert "rows per training step (default: 32)" in out
