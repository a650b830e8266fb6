"""nnx.plotting (drawn with the Agg backend) and the GradientMonitor that feeds its gradient-flow
plot."""

import numpy as np
import pytest

import nnx
from nnx import datasets
from nnx.callbacks import GradientMonitor

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from nnx import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_png(path):
    """A real, decodable PNG image."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def _fitted(X, y, sizes, backend=None, epochs=30):
    kwargs = backend.kwargs if backend is not None else {}
    net = nnx.Network(sizes, activation="relu", learning_rate=0.1, seed=0, **kwargs)
    net.fit(X, y, epochs=epochs, batch_size=32)
    return net


# --------------------------------------------------------------------------- decision regions


def _region_classes(ax):
    """Class index per filled band of the contour plot (levels are k + 1 edges at i - 0.5)."""
    (contour,) = [c for c in ax.collections if hasattr(c, "levels")]
    return contour.levels


def test_decision_boundary_binary_on_every_backend(backend, tmp_path):
    X, y = datasets.make_moons(120, seed=1)
    net = _fitted(X, y, [2, 8, 1], backend)
    ax = plotting.plot_decision_boundary(net, X, y, resolution=40, title="moons")
    assert ax.get_title() == "moons"
    np.testing.assert_array_equal(_region_classes(ax), [-0.5, 0.5, 1.5])
    points = ax.collections[-1]
    assert points.get_offsets().shape == (120, 2)
    # the points are coloured by their class index
    np.testing.assert_array_equal(np.asarray(points.get_array()), y)
    ax.figure.savefig(tmp_path / "b.png")
    assert_png(tmp_path / "b.png")


def test_decision_boundary_multiclass_with_string_labels(tmp_path):
    X, y = datasets.make_spiral(150, n_classes=3, seed=0)
    names = np.array(["red", "green", "blue"])[y]
    net = _fitted(X, names, [2, 32, 3], epochs=60)
    fig, ax = plt.subplots()
    out = plotting.plot_decision_boundary(net, X, names, ax=ax, resolution=50)
    assert out is ax
    np.testing.assert_array_equal(_region_classes(ax), [-0.5, 0.5, 1.5, 2.5])
    # colours follow the network's sorted classes_: blue=0, green=1, red=2
    expected = np.searchsorted(net.classes_, names)
    np.testing.assert_array_equal(np.asarray(ax.collections[-1].get_array()), expected)
    fig.savefig(tmp_path / "m.png")
    assert_png(tmp_path / "m.png")


def test_decision_boundary_legend_names_the_classes_and_sets_test_points_apart():
    X, y = datasets.make_spiral(150, n_classes=3, seed=0)
    names = np.array(["red", "green", "blue"])[y]
    net = _fitted(X, names, [2, 32, 3], epochs=20)
    ax = plotting.plot_decision_boundary(net, X[:100], names[:100], X_test=X[100:],
                                         y_test=names[100:], resolution=30)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["blue", "green", "red", "train points", "test points"]
    train, test = ax.collections[-2:]
    assert train.get_offsets().shape == (100, 2) and test.get_offsets().shape == (50, 2)
    np.testing.assert_array_equal(np.asarray(test.get_array()),
                                  np.searchsorted(net.classes_, names[100:]))
    assert train.get_paths()[0] != test.get_paths()[0]  # other markers
    assert train.get_alpha() < test.get_alpha() == 1.0  # the scored points stand out
    # the grid covers the test points too
    assert ax.get_xlim()[1] >= X[:, 0].max() + 1.0 - 1e-9
    # training points alone: the classes only; legend=False: none
    ax = plotting.plot_decision_boundary(net, X, names, resolution=30)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["blue", "green", "red"]
    assert plotting.plot_decision_boundary(net, X, names, resolution=30,
                                           legend=False).get_legend() is None
    with pytest.raises(ValueError, match="y_test contains labels"):
        plotting.plot_decision_boundary(net, X[:100], names[:100], X_test=X[100:],
                                        y_test=np.full(50, "pink"))


class _Rule:
    """A stand-in classifier with a known, asymmetric rule: class 1 where x > 0.3 y."""

    classes_ = np.array([0, 1])

    def predict(self, X):
        return (X[:, 0] > 0.3 * X[:, 1]).astype(int)


def test_decision_boundary_regions_are_the_predictions_on_the_grid():
    """The shading must be predict on the grid points, in the grid's orientation."""
    fig, ax = plt.subplots()
    seen = {}
    real = ax.contourf

    def spy(xx, yy, zz, **kwargs):
        seen.update(xx=xx, yy=yy, zz=zz)
        return real(xx, yy, zz, **kwargs)

    ax.contourf = spy
    X = np.array([[-1.0, -2.0], [1.0, 3.0]])
    plotting.plot_decision_boundary(_Rule(), X, ax=ax, resolution=25, margin=0.5)
    xx, yy, zz = seen["xx"], seen["yy"], seen["zz"]
    assert xx.shape == yy.shape == zz.shape == (25, 25)
    np.testing.assert_array_equal(zz, (xx > 0.3 * yy).astype(int))
    assert (xx.min(), xx.max(), yy.min(), yy.max()) == (-1.5, 1.5, -2.5, 3.5)
    assert ax.get_xlim() == (-1.5, 1.5) and ax.get_ylim() == (-2.5, 3.5)


def test_decision_boundary_rejects_what_it_cannot_draw():
    X3 = np.random.default_rng(0).normal(size=(20, 3))
    y = (X3[:, 0] > 0).astype(int)
    net3 = _fitted(X3, y, [3, 1], epochs=2)
    with pytest.raises(ValueError, match="2 features"):
        plotting.plot_decision_boundary(net3, X3, y)
    with pytest.raises(ValueError, match="fitted classifier"):
        plotting.plot_decision_boundary(nnx.Network([2, 1]), X3[:, :2], y)
    net2 = _fitted(X3[:, :2], y, [2, 1], epochs=2)
    with pytest.raises(ValueError, match="not trained on"):
        plotting.plot_decision_boundary(net2, X3[:, :2], y + 5)


# --------------------------------------------------------------------------- activations


def test_activations_plot_draws_each_function_and_its_derivative(tmp_path):
    fig, axes = plotting.plot_activations()
    names = plotting.ACTIVATION_NAMES
    assert axes.shape == (2, len(names))
    assert axes[0, 0].get_title() == "Sigmoid" and axes[1, 2].get_title() == "ReLU derivative"
    x, s = axes[0, 0].lines[0].get_data()
    # written out here, independently of nnx: the logistic function and s(1 - s)
    ref = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(s, ref, rtol=1e-12)
    np.testing.assert_allclose(axes[1, 0].lines[0].get_ydata(), ref * (1 - ref), rtol=1e-12)
    np.testing.assert_allclose(axes[1, 1].lines[0].get_ydata(), 1 - np.tanh(x) ** 2,
                               atol=1e-12)
    np.testing.assert_array_equal(axes[1, 2].lines[0].get_ydata(), (x > 0).astype(float))
    fig.savefig(tmp_path / "a.png", dpi=40)
    assert_png(tmp_path / "a.png")


def test_activations_plot_subset_and_errors():
    fig, axes = plotting.plot_activations(["tanh", "leaky_relu"], x=[-2.0, 2.0])
    assert axes.shape == (2, 2)
    np.testing.assert_allclose(axes[0, 1].lines[0].get_ydata(), [-0.02, 2.0])
    with pytest.raises(ValueError, match="element-wise"):
        plotting.plot_activations(["softmax"])
    with pytest.raises(ValueError, match="unknown activation"):
        plotting.plot_activations(["nope"])
    with pytest.raises(ValueError, match="at least one"):
        plotting.plot_activations([])


# --------------------------------------------------------------------------- curves


def test_history_groups_train_and_validation(tmp_path):
    logs = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.9]}
    fig, axes = plotting.plot_history(logs)
    assert len(axes) == 2
    assert [line.get_label() for line in axes[0].lines] == ["train", "validation"]
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), logs["val_loss"])
    np.testing.assert_array_equal(axes[1].lines[0].get_xdata(), [1, 2, 3])
    fig.savefig(tmp_path / "h.png")
    assert_png(tmp_path / "h.png")
    X, y = datasets.make_moons(64)
    history = nnx.Network([2, 4, 1], seed=0).fit(X, y, epochs=3)
    _, axes = plotting.plot_history(history)
    assert len(axes[0].lines[0].get_ydata()) == 3
    with pytest.raises(ValueError, match="per-epoch"):
        plotting.plot_history({})
    with pytest.raises(ValueError, match="needs 2 axes"):
        plotting.plot_history(logs, axes=[plt.subplots()[1]])


def test_history_draws_validation_in_its_own_colour_even_alone():
    """fit logs no training accuracy: the accuracy panel holds validation values alone, and
    they must not take the training colour."""
    logs = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "val_accuracy": [0.6, 0.8]}
    _, axes = plotting.plot_history(logs)
    train, val = axes[0].lines
    (alone,) = axes[1].lines
    assert alone.get_label() == "validation"
    assert alone.get_color() == val.get_color() == plotting.HISTORY_COLOURS["validation"]
    assert train.get_color() == plotting.HISTORY_COLOURS["train"] != alone.get_color()
    assert axes[1].get_legend() is not None


def _visible_tick_labels(ax):
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]


def test_gradient_flow_bars_have_numbers_on_their_axis_even_when_shared():
    norms = {"layers.0.W": [1e-3, 1e-4], "layers.1.W": [0.5, 0.1]}
    fig, axes = plt.subplots(2, 2, sharey=True)
    for row in axes:
        plotting.plot_gradient_flow(norms, axes=row)
    for ax in axes.ravel():
        assert len(_visible_tick_labels(ax)) >= 2, ax.get_title()


def test_gradient_flow_plot(tmp_path):
    norms = {"layers.0.W": [1e-3, 1e-4], "layers.1.W": [0.5, 0.1]}
    fig, axes = plotting.plot_gradient_flow(norms, title="net")
    assert [line.get_label() for line in axes[0].lines] == ["Layer 1", "Layer 2"]
    heights = [patch.get_height() for patch in axes[1].patches]
    np.testing.assert_allclose(heights, [1e-4, 0.1])
    assert axes[0].get_yscale() == "log" and axes[1].get_title().startswith("net:")
    fig.savefig(tmp_path / "g.png")
    assert_png(tmp_path / "g.png")
    _, axes = plotting.plot_gradient_flow({"w": [0.0, 1.0]})  # a zero norm: linear axis
    assert axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="non-empty"):
        plotting.plot_gradient_flow({"w": []})


def test_confusion_matrix_plot(tmp_path):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]])
    ax = plotting.plot_confusion_matrix(cm, labels=["a", "b", "c"])
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    ax.figure.savefig(tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    ax = plotting.plot_confusion_matrix(cm, normalize=True)
    assert ax.texts[0].get_text() == "0.83" and ax.texts[8].get_text() == "1.00"
    with pytest.raises(ValueError, match="square"):
        plotting.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels has 2 names"):
        plotting.plot_confusion_matrix(cm, labels=["a", "b"])


def test_optimizer_paths_plot(tmp_path):
    def rosenbrock(x, y):
        return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2

    paths = {"sgd": np.array([[-1.5, 2.0], [-1.0, 1.0], [0.5, 0.3]]),
             "adam": [[-1.5, 2.0], [0.0, 0.0], [1.0, 1.0]]}
    ax = plotting.plot_optimizer_paths(rosenbrock, paths, (-2, 2), (-1, 3),
                                       levels=np.logspace(-1, 3, 15))
    labels = [line.get_label() for line in ax.lines]
    assert "sgd" in labels and "adam" in labels and "start" in labels
    np.testing.assert_array_equal(ax.lines[labels.index("adam")].get_ydata(), [2.0, 0.0, 1.0])
    assert ax.get_xlim() == (-2.0, 2.0)
    ax.figure.savefig(tmp_path / "o.png")
    assert_png(tmp_path / "o.png")
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_optimizer_paths(rosenbrock, {"bad": np.zeros(3)}, (0, 1), (0, 1))


# --------------------------------------------------------------------------- GradientMonitor


def test_gradient_monitor_records_the_mean_norm_of_each_epoch(backend):
    """Mean over an epoch's steps of each weight's gradient norm, against the same steps
    replayed by hand with Network.gradients (biases are not watched)."""
    X, y = datasets.make_moons(40, seed=3)
    monitor = GradientMonitor()
    net = nnx.Network([2, 5, 3, 1], learning_rate=0.1, seed=7, **backend.kwargs)
    net.fit(X, y, epochs=2, batch_size=16, shuffle=False, callbacks=[monitor])
    assert list(monitor.history) == ["layers.0.W", "layers.1.W", "layers.2.W"]

    replay = nnx.Network([2, 5, 3, 1], learning_rate=0.1, seed=7, **backend.kwargs)
    expected = {name: [] for name in monitor.history}
    for _ in range(2):
        per_step = {name: [] for name in expected}
        for start in range(0, 40, 16):
            xb, yb = X[start:start + 16], y[start:start + 16]
            _, grads = replay.gradients(xb, yb)
            for name in expected:
                per_step[name].append(np.linalg.norm(nnx.to_numpy(grads[name])))
            replay.train_step(xb, yb)
        for name in expected:
            expected[name].append(np.mean(per_step[name]))
    for name in expected:
        np.testing.assert_allclose(monitor.history[name], expected[name], rtol=1e-5)
    assert monitor.final() == {name: values[-1] for name, values in monitor.history.items()}


def test_gradient_monitor_crosses_to_the_host_once_per_epoch(monkeypatch):
    import nnx.callbacks as callbacks

    calls = []
    real = callbacks.to_numpy
    monkeypatch.setattr(callbacks, "to_numpy", lambda x: calls.append(1) or real(x))
    X, y = datasets.make_moons(64)
    monitor = GradientMonitor(names=["layers.1.W"])
    nnx.Network([2, 4, 1], seed=0).fit(X, y, epochs=3, batch_size=8, callbacks=[monitor])
    assert len(calls) == 3  # 8 steps per epoch, one transfer per epoch
    assert list(monitor.history) == ["layers.1.W"] and len(monitor.history["layers.1.W"]) == 3


def test_gradient_monitor_rejects_unknown_names():
    X, y = datasets.make_moons(16)
    with pytest.raises(ValueError, match="unknown parameter.*layers.9.W"):
        nnx.Network([2, 1], seed=0).fit(X, y, epochs=1,
                                        callbacks=[GradientMonitor(names=["layers.9.W"])])
