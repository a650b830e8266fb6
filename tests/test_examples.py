"""Every example of examples/ runs (small sizes, Agg backend), writes real images and prints the
numbers it should."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOAT = r"[-+]?\d+\.\d*(?:e[-+]?\d+)?"


def run_example(name, tmp_path, capsys, *extra):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--dpi", "40", "--out", str(tmp_path), *extra]) == 0
    return capsys.readouterr().out


def _backend_args(backend):
    """``--backend``/``--device`` for the conftest backend (array_api_strict: its fake device)."""
    args = ["--backend", backend.name]
    if backend.name == "array_api_strict":
        args += ["--device", "device1"]
    elif backend.device is not None:
        args += ["--device", str(backend.device)]
    return args


def assert_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 50


def _demo(name, tmp_path, backend=None):
    """A demo's returned numbers (the examples print them; the tests read what is returned)."""
    from nnx import demos

    kwargs = {} if backend is None else backend.kwargs
    result = getattr(demos, name)(out=tmp_path, quick=True, dpi=40, **kwargs)
    for path in result["files"]:
        assert_png(path)
    return result


def test_decision_boundaries(tmp_path):
    acc = _demo("decision_boundaries", tmp_path)["accuracy"]
    assert len(acc) == 12 and all(0.0 <= a <= 1.0 for a in acc.values())
    # concentric circles defeat a linear model; a hidden layer or two bends the boundary round
    deep = max(acc[("Circles", arch)] for arch in ("2 hidden (8,4)", "3 hidden (16,8,4)"))
    assert acc[("Circles", "No hidden")] < 0.7 < deep


def test_activations(tmp_path, backend):
    table = _demo("activations", tmp_path, backend)["values"]
    assert set(table) >= {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "swish", "selu",
                          "gelu", "softplus"}
    # written out independently at x = -1, 0, 1: f(-1), f(0), f(1), f'(-1), f'(0), f'(1)
    e = np.e
    s = 1 / (1 + e)  # sigmoid(-1)
    expected = {
        "sigmoid": [s, 0.5, 1 - s, s * (1 - s), 0.25, s * (1 - s)],
        "tanh": [-np.tanh(1), 0, np.tanh(1), 1 - np.tanh(1) ** 2, 1, 1 - np.tanh(1) ** 2],
        "relu": [0, 0, 1, 0, 0, 1],
        "leaky_relu": [-0.01, 0, 1, 0.01, 0.01, 1],
        "elu": [1 / e - 1, 0, 1, 1 / e, 1, 1],
        "swish": [-s, 0, 1 - s, s + -1 * s * (1 - s), 0.5, (1 - s) + (1 - s) * s],
        "softplus": [np.log1p(1 / e), np.log(2), np.log1p(e), s, 0.5, 1 - s],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(np.concatenate(table[name]), values, rtol=1e-12, atol=1e-15,
                                   err_msg=name)


def test_activation_comparison(tmp_path):
    results = _demo("activation_comparison", tmp_path)["results"]
    assert list(results) == ["sigmoid", "tanh", "relu"]
    for name, r in results.items():
        assert 0.0 < r["loss"][-1] < r["loss"][0] and 0.0 <= r["accuracy"] <= 1.0, name


def test_the_examples_print_and_write_what_their_demos_return(tmp_path, capsys):
    out = run_example("decision_boundaries", tmp_path, capsys)
    rows = re.findall(rf"^\s+(Linear|Moons|Circles)\s+(.+?)\s+accuracy ({FLOAT})$", out, re.M)
    assert len(rows) == 12
    assert_png(tmp_path / "decision_boundaries.png")


# --------------------------------------------------------------------------- backprop

def lesson_step():
    """The lesson's 2-2-1 step in plain NumPy, written out here (not by calling nnx)."""
    np.random.seed(42)
    W1 = np.random.randn(2, 2) * 0.5
    W2 = np.random.randn(2, 1) * 0.5
    b1, b2 = np.zeros((1, 2)), np.zeros((1, 1))
    X, y = np.array([[0.5, 0.3]]), np.array([[1.0]])
    z1 = X @ W1 + b1
    a1 = 1 / (1 + np.exp(-z1))
    z2 = a1 @ W2 + b2
    a2 = 1 / (1 + np.exp(-z2))
    loss = -np.mean(y * np.log(a2) + (1 - y) * np.log(1 - a2))
    da2 = -(y / a2 - (1 - y) / (1 - a2))
    dz2 = da2 * a2 * (1 - a2)
    dW2, db2 = a1.T @ dz2, dz2.sum(axis=0, keepdims=True)
    da1 = dz2 @ W2.T
    dz1 = da1 * a1 * (1 - a1)
    dW1, db1 = X.T @ dz1, dz1.sum(axis=0, keepdims=True)
    return {"W1": W1, "W2": W2, "z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss,
            "da2": da2, "dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dz1": dz1,
            "dW1": dW1, "db1": db1, "W1_new": W1 - 0.1 * dW1, "b1_new": b1 - 0.1 * db1,
            "W2_new": W2 - 0.1 * dW2, "b2_new": b2 - 0.1 * db2}


def _printed(out, label):
    """The array printed right after ``label`` (every array here is 2-D: it ends at "]]")."""
    start = out.index(label) + len(label)
    text = out[start:out.index("]]", start)]
    return np.array([float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", text)])


def test_backprop_step_by_step_prints_the_lesson_numbers(tmp_path, capsys, backend):
    out = run_example("backprop_step_by_step", tmp_path, capsys, *_backend_args(backend))
    ref = lesson_step()
    labels = {
        "W1": "W1:\n", "W2": "W2:\n",
        "z1": "z1 = X @ W1 + b1 =", "a1": "a1 = sigmoid(z1) =",
        "z2": "z2 = a1 @ W2 + b2 =", "a2": "a2 = sigmoid(z2) =",
        "da2": "-(y/a2 - (1-y)/(1-a2)) =", "dz2": "dz2 = a2 - y (nnx's fused BCE)         =",
        "dW2": "dW2 = a1.T @ dz2 =", "db2": "db2 = sum(dz2) =",
        "da1": "da1 = dz2 @ W2.T =", "dz1": "dz1 = da1 * sigmoid'(z1) =",
        "dW1": "dW1 = X.T @ dz1 =", "db1": "db1 = sum(dz1) =",
        "W1_new": "Updated W1:\n", "b1_new": "Updated b1:",
        "W2_new": "Updated W2:\n", "b2_new": "Updated b2:",
    }
    for key, label in labels.items():
        # NumPy prints 8 decimals: right to half a unit in the last printed place
        np.testing.assert_allclose(_printed(out, label), ref[key].ravel(), rtol=0,
                                   atol=5.0001e-9, err_msg=key)
    assert f"Loss (Binary Cross-Entropy): {ref['loss']:.4f}" in out
    chain = _printed(out, "dz2 = da2 * sigmoid'(z2) (chain rule)  =")
    np.testing.assert_allclose(chain, ref["dz2"].ravel(), rtol=0, atol=5.0001e-9)
    assert "the two agree: True" in out
    assert not list(tmp_path.iterdir())  # no figure for this one


def test_backprop_step_by_step_values_are_exact():
    from nnx.demos import backprop_step_by_step

    values = backprop_step_by_step()
    ref = lesson_step()
    for key in ("z1", "a1", "z2", "a2", "da2", "dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1",
                "W1_new", "b1_new", "W2_new", "b2_new"):
        np.testing.assert_allclose(values[key], ref[key], rtol=1e-12, atol=1e-15, err_msg=key)
    assert values["loss"] == pytest.approx(ref["loss"], rel=1e-12)


# --------------------------------------------------------------------------- gradient flow

def test_gradient_flow(tmp_path, backend):
    norms = _demo("gradient_flow", tmp_path, backend)["norms"]
    first = {name.split()[0]: [values[0] for values in history.values()]
             for name, history in norms.items()}
    assert set(first) == {"ReLU", "Sigmoid", "Residual"}
    ratio = {name: v[0] / v[-1] for name, v in first.items()}
    # the vanishing gradient: the plain deep sigmoid net's first layer gets a far smaller
    # share of the gradient than with ReLU, or than with the same sigmoids behind skips
    assert ratio["Sigmoid"] < 0.1 * min(ratio["ReLU"], ratio["Residual"])
    # quick mode: 4 hidden + 1 output weights; residual: stem + 2 blocks of 2 + output
    assert [len(history) for history in norms.values()] == [5, 5, 6]


def test_run_all_writes_every_figure(tmp_path, capsys):
    out = run_example("run_all", tmp_path, capsys)
    names = {"decision_boundaries.png", "activations.png", "activation_comparison.png",
             "gradient_flow.png", "regularization.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for name in names:
        assert_png(tmp_path / name)
        assert str(tmp_path / name) in out
