"""Multi-class networks done right: any labels in and out, one-hot on the device, multilabel."""

import numpy as np
import pytest
from array_api_compat import array_namespace
from array_api_compat import device as device_of

import nnx
from nnx import metrics
from nnx.data import TargetEncoder
from nnx.datasets import make_spiral


def _blobs(n=150, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0], [0.0, -3.0]])[:k]
    y = np.arange(n) % k
    return centers[y] + 0.4 * rng.normal(size=(n, 2)), y


LABELS = {
    "int": np.array([3, 7, 11]),
    "negative": np.array([-5, 0, 5]),
    "str": np.array(["cat", "dog", "emu"]),
    "float": np.array([0.5, 1.5, 2.5]),
}


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_labels_of_any_type_come_back_in_their_type(backend, kind):
    X, idx = _blobs()
    labels = LABELS[kind][idx]
    net = nnx.Network([2, 16, 3], learning_rate=0.1, seed=0, **backend.kwargs)
    net.fit(X, labels, epochs=30, batch_size=16)
    np.testing.assert_array_equal(net.classes_, LABELS[kind])
    pred = net.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype == labels.dtype
    assert metrics.accuracy_score(labels, pred) > 0.95
    proba = nnx.to_numpy(net.predict_proba(X))
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # the columns follow classes_: the most probable column names the predicted label
    np.testing.assert_array_equal(net.classes_[np.argmax(proba, axis=1)], pred)


def test_list_labels_and_bool_binary(backend):
    X, idx = _blobs(k=2)
    net = nnx.Network([2, 8, 1], learning_rate=0.1, seed=0, **backend.kwargs)
    net.fit(X, list(idx == 1), epochs=20, batch_size=16)  # a plain list of bools
    assert net.targets_.kind == "binary" and net.loss_.name == "binary_crossentropy"
    np.testing.assert_array_equal(net.classes_, [False, True])
    pred = net.predict(X)
    assert pred.dtype == bool and metrics.accuracy_score(idx == 1, pred) > 0.95
    proba = nnx.to_numpy(net.predict_proba(X))  # one sigmoid output, two columns [1 - p, p]
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, pred)


def test_one_hot_is_built_on_the_device(backend):
    ctx = backend.context()
    enc = TargetEncoder("categorical", 3).fit(np.array(["b", "a", "c", "a"]))
    Y = enc.encode(np.array(["c", "a", "b"]), ctx)
    assert array_namespace(Y) is array_namespace(ctx.zeros((1,)))
    assert device_of(Y) == device_of(ctx.zeros((1,))) and Y.dtype == ctx.dtype
    np.testing.assert_array_equal(nnx.to_numpy(Y), np.eye(3)[[2, 0, 1]])


def test_numeric_labels_stay_on_the_device_for_device_input(backend):
    X, idx = _blobs()
    labels = LABELS["int"][idx]
    net = nnx.Network([2, 16, 3], learning_rate=0.1, seed=0, **backend.kwargs)
    net.fit(X, labels, epochs=10, batch_size=32)
    Xd = backend.context().asarray(X)
    pred = net.predict(Xd)  # device in, device out, still the user's labels
    assert not isinstance(pred, np.ndarray) or backend.name == "numpy"
    np.testing.assert_array_equal(nnx.to_numpy(pred), net.predict(X))


def test_one_hot_targets_give_class_indices(backend):
    X, idx = _blobs()
    net = nnx.Network([2, 16, 3], learning_rate=0.1, seed=0, **backend.kwargs)
    net.fit(X, np.eye(3)[idx], epochs=20, batch_size=16)
    assert net.targets_.kind == "multiclass"
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])
    assert metrics.accuracy_score(idx, net.predict(X)) > 0.95


def test_multilabel_targets_get_independent_sigmoids(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = (X > 0).astype(int)  # three independent labels, rows may have 0..3 ones
    net = nnx.Network([3, 16, 3], loss="binary_crossentropy", learning_rate=0.5, seed=0,
                      **backend.kwargs)
    net.fit(X, Y, epochs=40, batch_size=20)
    assert net.targets_.kind == "multilabel"
    proba = nnx.to_numpy(net.predict_proba(X))
    assert proba.shape == (200, 3)
    assert np.abs(proba.sum(axis=1) - 1).max() > 0.5  # not a softmax
    pred = nnx.to_numpy(net.predict(X))
    assert pred.shape == (200, 3) and set(np.unique(pred)) <= {0, 1}
    assert metrics.accuracy_score(Y, pred) > 0.9  # subset accuracy


def test_spiral_three_classes_on_every_backend(backend):
    X, y = make_spiral(300, n_classes=3, noise=0.2, seed=0)
    kw = dict(activation="relu", optimizer="adam", learning_rate=0.05, seed=1)
    net = nnx.Network([2, 64, 64, 3], **kw, **backend.kwargs)
    net.fit(X, y, epochs=40, batch_size=32)
    assert net.score(X, y) > 0.95
    # same seed, same start and batch order: after a few steps the backends agree up to
    # float32 rounding (long runs at this rate drift apart, as any chaotic float32 run does)
    ref = nnx.Network([2, 64, 64, 3], **kw)
    ref.fit(X, y, epochs=3, batch_size=32)
    net = nnx.Network([2, 64, 64, 3], **kw, **backend.kwargs)
    net.fit(X, y, epochs=3, batch_size=32)
    np.testing.assert_allclose(nnx.to_numpy(net.predict_proba(X)), ref.predict_proba(X),
                               rtol=1e-3, atol=1e-5)


def test_evaluate_agrees_with_metrics(backend):
    X, idx = _blobs(seed=3)
    labels = LABELS["str"][idx]
    net = nnx.Network([2, 8, 3], learning_rate=0.05, seed=0, **backend.kwargs)
    net.fit(X, labels, epochs=3, batch_size=32)
    result = net.evaluate(X, labels)
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(labels, net.predict(X)))
    proba = net.predict_proba(X)
    assert result["loss"] == pytest.approx(metrics.log_loss(labels, proba), rel=1e-4)


# --------------------------------------------------------------------------- label errors


def test_label_errors_are_clear_and_early():
    X, idx = _blobs()
    with pytest.raises(ValueError, match="only one class"):
        nnx.Network([2, 4, 3]).fit(X, np.full(150, "a"), epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        nnx.Network([2, 4, 3]).fit(X, np.where(idx == 2, np.nan, idx), epochs=1)
    with pytest.raises(ValueError, match="missing labels"):
        nnx.Network([2, 4, 3]).fit(X, np.array(["a", None, "b"] * 50, dtype=object), epochs=1)
    with pytest.raises(ValueError, match="0s and 1s"):
        nnx.Network([2, 4, 3]).fit(X, np.stack([idx, idx, idx], axis=1), epochs=1)
    with pytest.raises(ValueError, match="sortable"):
        nnx.Network([2, 4, 3]).fit(X, np.array([1, "a", 2.5] * 50, dtype=object), epochs=1)
    with pytest.raises(ValueError, match="3 classes but the network has 1 output"):
        nnx.Network([2, 4, 1]).fit(X, idx, epochs=1)
    with pytest.raises(ValueError, match="3 classes but the network has 4 outputs"):
        # labels that are not class indices of 4 outputs (0..3 would be)
        nnx.Network([2, 4, 4]).fit(X, idx + 5, epochs=1)
    net = nnx.Network([2, 4, 3], seed=0)
    net.fit(X, idx, epochs=1)
    with pytest.raises(ValueError, match="not among the classes"):
        net.fit(X, np.where(idx == 2, 9, idx), epochs=1)  # label 9 never seen
    with pytest.raises(ValueError, match="columns"):
        net.fit(X, np.eye(4)[idx], epochs=1)  # 4 one-hot columns for 3 outputs


def test_classes_declared_up_front():
    enc = TargetEncoder("categorical", 4).fit(np.array(["b", "a"]), classes=["d", "c", "b", "a"])
    assert enc.kind == "multiclass"
    np.testing.assert_array_equal(enc.classes_, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(enc.indices(np.array(["d", "a"])), [3, 0])
    with pytest.raises(ValueError, match="not among the classes"):
        TargetEncoder("categorical", 3).fit(np.array(["a", "z"]), classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="only one class"):
        TargetEncoder("categorical", 3).fit(np.array(["a"]), classes=["a"])
    with pytest.raises(ValueError, match="regression"):
        TargetEncoder("regression", 1).fit(np.array([1.0]), classes=[1.0, 2.0])
    # declared classes win over the binary 0/1 shortcut: a one-class chunk is fine
    enc = TargetEncoder("binary", 1).fit(np.array([1, 1]), classes=[1, 2])
    np.testing.assert_array_equal(enc.classes_, [1, 2])


def test_multiclass_example_runs(tmp_path, capsys):
    """examples/multiclass.py --quick: both figures, and the numbers it prints are sane."""
    import importlib.util
    import re
    from pathlib import Path

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    path = Path(__file__).resolve().parents[1] / "examples" / "multiclass.py"
    spec = importlib.util.spec_from_file_location("example_multiclass", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--dpi", "40", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("multiclass_spiral.png", "multiclass_digits.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "classes_=['arm A', 'arm B', 'arm C']" in out
    spiral = float(re.search(r"spiral: .* test accuracy ([\d.]+)", out).group(1))
    digits = float(re.search(r"digits: .* test accuracy ([\d.]+)", out).group(1))
    assert spiral > 0.9 and digits > 0.9
    assert re.search(r"^\s+accuracy\s+[\d.]+\s+450$", out, re.M)  # the classification report


def test_integer_labels_are_class_indices_in_any_batch():
    """A custom loop's first batch may show only some classes: integers in [0, outputs) are
    class indices, as in torch and Keras."""
    X = np.random.default_rng(0).normal(size=(8, 4))
    net = nnx.Network([4, 16, 3], seed=0)
    net.train_step(X, np.array([0, 1, 0, 1, 0, 1, 0, 1]))
    assert net.classes_.tolist() == [0, 1, 2]
    loss, grads = nnx.Network([4, 16, 3], seed=0).gradients(X, np.zeros(8, dtype=int))
    assert np.isfinite(loss)
    with pytest.raises(ValueError, match="4 classes but the network has 3 outputs"):
        # beyond the outputs: labels, not indices, and too many of them
        nnx.Network([4, 16, 3], seed=0).train_step(X, np.array([0, 1, 5, 7, 0, 1, 0, 1]))


def test_fractional_float_targets_point_to_a_regression_loss():
    X = np.random.default_rng(0).normal(size=(150, 4))
    with pytest.raises(ValueError, match=r"look like regression targets.*loss='mse'"):
        nnx.Network([4, 16, 1]).fit(X, X[:, 0] * 3.3, epochs=1)
