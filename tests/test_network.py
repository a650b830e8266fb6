"""The Network API: construction, training modes, reproducibility, cross-backend agreement."""

import io

import numpy as np
import pytest

import nnx
from nnx.backend import to_numpy
from nnx.layers import Dense


def _moons(n=200, seed=0):
    from sklearn.datasets import make_moons
    from sklearn.preprocessing import StandardScaler

    X, y = make_moons(n_samples=n, noise=0.2, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_layer_sizes_form_builds_the_lesson_network(backend):
    net = nnx.Network([2, 16, 8, 1], activation="relu", learning_rate=0.1, seed=0,
                      **backend.kwargs)
    shapes = {k: tuple(v.shape) for k, v in net.parameters().items()}
    assert shapes == {
        "layers.0.W": (2, 16), "layers.0.b": (16,),
        "layers.1.W": (16, 8), "layers.1.b": (8,),
        "layers.2.W": (8, 1), "layers.2.b": (1,),
    }
    assert [type(layer.activation).__name__ for layer in net.layers] == ["ReLU", "ReLU", "NoneType"]
    assert net.loss_.name == "binary_crossentropy"
    assert nnx.Network([2, 3, 4], **backend.kwargs).loss_.name == "categorical_crossentropy"


def test_default_initialization_follows_the_activation():
    def std(activation, **kw):
        net = nnx.Network([400, 300, 1], activation=activation, seed=0, **kw)
        return float(np.std(nnx.to_numpy(net.parameters()["layers.0.W"])))

    assert std("relu") == pytest.approx(np.sqrt(2 / 400), rel=0.02)          # He
    assert std("tanh") == pytest.approx(np.sqrt(2 / 700), rel=0.02)          # Glorot
    assert std("tanh", kernel_initializer="lecun_normal") == pytest.approx(np.sqrt(1 / 400), rel=0.02)
    # the output layer uses the network activation's rule too (as the lesson does)
    net = nnx.Network([400, 300, 1], activation="relu", seed=0)
    assert float(np.std(nnx.to_numpy(net.parameters()["layers.1.W"]))) == pytest.approx(
        np.sqrt(2 / 300), rel=0.1)


def test_same_seed_same_initial_weights_on_every_backend(backend):
    reference = nnx.Network([3, 7, 2], seed=123).parameters()
    other = nnx.Network([3, 7, 2], seed=123, **backend.kwargs).parameters()
    for name, p in reference.items():
        np.testing.assert_array_equal(nnx.to_numpy(other[name]), p)


def test_seed_makes_training_bit_reproducible(backend):
    X, y = _moons(100)
    runs = []
    for _ in range(2):
        net = nnx.Network([2, 8, 1], seed=7, learning_rate=0.1, **backend.kwargs)
        net.fit(X, y, epochs=5, batch_size=16)
        runs.append({k: nnx.to_numpy(v) for k, v in net.parameters().items()})
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_cross_backend_predictions_agree(backend):
    X, y = _moons(120)
    ref = nnx.Network([2, 16, 8, 1], seed=3, learning_rate=0.1)
    ref.fit(X, y, epochs=20, batch_size=32)
    net = nnx.Network([2, 16, 8, 1], seed=3, learning_rate=0.1, **backend.kwargs)
    net.fit(X, y, epochs=20, batch_size=32)
    np.testing.assert_allclose(net.predict_proba(X), ref.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(net.predict(X), ref.predict(X))


@pytest.mark.parametrize("batch_size,steps_per_epoch", [(None, 1), (1, 50), (16, 4), (50, 1),
                                                        (500, 1)])
def test_three_gradient_descent_modes(batch_size, steps_per_epoch, backend):
    X, y = _moons(50)
    net = nnx.Network([2, 8, 1], seed=0, learning_rate=0.05, **backend.kwargs)
    history = net.fit(X, y, epochs=3, batch_size=batch_size)
    assert net.optimizer.iterations == 3 * steps_per_epoch
    assert len(history.history["loss"]) == 3
    assert all(isinstance(v, float) for v in history.history["loss"])


def test_full_batch_step_equals_the_gradient_descent_formula(backend):
    X, y = _moons(40)
    net = nnx.Network([2, 5, 1], seed=1, learning_rate=0.3, dtype="float64", **backend.kwargs)
    before = {k: nnx.to_numpy(v).copy() for k, v in net.parameters().items()}
    _, grads = net.gradients(X, y)
    net.fit(X, y, epochs=1, batch_size=None, shuffle=False)
    for name, p in net.parameters().items():
        np.testing.assert_allclose(nnx.to_numpy(p), before[name] - 0.3 * nnx.to_numpy(grads[name]),
                                   rtol=1e-12, atol=1e-14)


def test_training_reaches_the_lesson_accuracy_on_moons(backend):
    X, y = _moons(200, seed=42)
    net = nnx.Network([2, 16, 8, 1], activation="relu", learning_rate=0.1, seed=0,
                      **backend.kwargs)
    history = net.fit(X[:140], y[:140], epochs=100, batch_size=32)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    assert net.evaluate(X[140:], y[140:])["accuracy"] >= 0.9


def test_train_step_forward_and_gradients_api(backend):
    X, y = _moons(32)
    net = nnx.Network([2, 4, 1], seed=0, learning_rate=0.1, **backend.kwargs)
    loss0, grads = net.gradients(X, y)
    assert isinstance(loss0, float) and set(grads) == set(net.parameters())
    loss_step = net.train_step(X, y)
    assert loss_step == pytest.approx(loss0, rel=1e-5)
    assert net.gradients(X, y)[0] < loss0
    logits, caches = net.forward(X, return_cache=True)
    assert logits.shape == (32, 1) and len(caches) == 2
    np.testing.assert_allclose(nnx.to_numpy(caches[0].a),
                               np.maximum(nnx.to_numpy(caches[0].z), 0), rtol=1e-6)


def test_labels_of_any_type_and_proba_columns(backend):
    X, y = _moons(80)
    names = np.array(["cat", "dog"])[y]
    net = nnx.Network([2, 8, 1], seed=0, learning_rate=0.1, **backend.kwargs)
    net.fit(X, names, epochs=30)
    assert list(net.classes_) == ["cat", "dog"]
    pred = net.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= {"cat", "dog"}
    proba = net.predict_proba(X)
    assert proba.shape == (80, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.where(proba[:, 1] > 0.5, "dog", "cat"), pred)


def test_multiclass_with_integer_labels(backend):
    rng = np.random.default_rng(0)
    centers = np.array([[0, 3], [3, 0], [-3, -3]])
    y = rng.integers(0, 3, size=150) + 5  # labels 5, 6, 7
    X = centers[y - 5] + rng.normal(size=(150, 2))
    net = nnx.Network([2, 16, 3], seed=0, learning_rate=0.1, **backend.kwargs)
    net.fit(X, y, epochs=30)
    assert list(net.classes_) == [5, 6, 7]
    assert net.evaluate(X, y)["accuracy"] > 0.9
    assert net.score(X, y) == net.evaluate(X, y)["accuracy"]
    assert set(np.unique(net.predict(X))) <= {5, 6, 7}


def test_regression_predict_shape(backend):
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = X @ np.array([1.0, -1.0, 2.0])
    net = nnx.Network([3, 16, 1], loss="mse", seed=0, learning_rate=0.05, **backend.kwargs)
    net.fit(X, y, epochs=60, batch_size=16)
    assert net.predict(X).shape == (60,)
    assert net.score(X, y) > 0.9
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        net.predict_proba(X)


def test_layer_objects_form_with_lazy_build(backend):
    X, y = _moons(40)
    net = nnx.Network([Dense(8, activation="tanh"), Dense(1)], seed=0, **backend.kwargs)
    assert not net.built
    net.fit(X, y, epochs=1)
    assert net.input_dim == 2 and net.parameters()["layers.0.W"].shape == (2, 8)


def test_verbose_progress_bar_reports_the_loss(backend):
    X, y = _moons(40)
    stream = io.StringIO()
    net = nnx.Network([2, 4, 1], seed=0, **backend.kwargs)
    cb = nnx.callbacks.ProgressBar(3, stream=stream)
    net.fit(X, y, epochs=3, callbacks=[cb])
    assert "loss=" in stream.getvalue()


def test_history_and_callbacks_stop_training(backend):
    X, y = _moons(40)

    class StopAtTwo(nnx.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.network.stop_training = True

    net = nnx.Network([2, 4, 1], seed=0, **backend.kwargs)
    history = net.fit(X, y, epochs=10, callbacks=[StopAtTwo()])
    assert history.epoch == [0, 1]
    net.fit(X, y, epochs=2)
    assert len(net.history_.history["loss"]) == 4


def test_set_parameters_moves_numpy_to_the_device(backend):
    net = nnx.Network([2, 3, 1], **backend.kwargs)
    net.set_parameters({"layers.0.W": np.ones((2, 3))})
    W = net.parameters()["layers.0.W"]
    assert net.ctx.owns(W) and W.dtype == net.ctx.dtype
    np.testing.assert_array_equal(nnx.to_numpy(W), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        net.set_parameters({"layers.0.W": np.ones((3, 2))})
    with pytest.raises(ValueError, match="unknown parameter"):
        net.set_parameters({"layers.9.W": np.ones((3, 2))})


def test_summary_prints_every_layer_and_counts_nested_parameters(capsys):
    from nnx.layers import BatchNorm, Residual

    assert nnx.Network([2, 16, 8, 1]).summary() is None
    assert capsys.readouterr().out.splitlines()[-1] == "total parameters: 193"
    net = nnx.Network([Dense(8, activation="relu"),
                       Residual([Dense(8, activation="relu"), BatchNorm(), Dense(8)]),
                       Dense(1)], input_dim=4)
    lines = []
    net.summary(print_fn=lines.append)
    # 4*8+8 + (8*8+8 + 2*8 + 8*8+8) + 8+1 = 40 + 160 + 9
    assert lines[-1] == "total parameters: 209"
    assert sum(np.prod(p.shape) for p in net.parameters().values()) == 209
    nested = [line for line in lines if "layers.1.layers." in line]
    assert len(nested) == 3 and nested[1].split()[-1] == "16"  # BatchNorm's gamma and beta
    assert len({len(line) for line in lines[1:-1]}) == 1  # the columns line up


@pytest.mark.parametrize("name,default", [("adam", 1e-3), ("lion", 1e-4), ("adadelta", 1.0),
                                          ("sgd", 0.01), ("nadam", 2e-3)])
def test_named_optimizers_keep_their_own_default_rate(name, default):
    assert nnx.Network([2, 1], optimizer=name).optimizer.learning_rate == default
    assert nnx.Network([2, 1], optimizer=name, learning_rate=0.5).optimizer.learning_rate == 0.5


def test_multilabel_accuracy_is_subset_accuracy_like_sklearn(backend):
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Y = (X[:, :3] + 0.8 * rng.normal(size=(60, 3)) > 0).astype(int)
    net = nnx.Network([4, 8, 3], loss="binary_crossentropy", seed=0, **backend.kwargs)
    net.fit(X, Y, epochs=5)
    expected = accuracy_score(Y, net.predict(X))
    assert net.evaluate(X, Y)["accuracy"] == pytest.approx(expected, abs=1e-12)


def test_gradients_leave_parameters_live(backend):
    X, y = _moons(20)
    net = nnx.Network([2, 4, 1], seed=0, **backend.kwargs)
    W = net.parameters()["layers.0.W"]
    net.gradients(X, y)
    assert net.parameters()["layers.0.W"] is W


def test_accuracy_is_an_exact_fraction():
    X, y = _moons(30)
    net = nnx.Network([2, 8, 1], seed=0, learning_rate=0.1)
    net.fit(X, y, epochs=5)
    correct = int(np.sum(net.predict(X) == y))
    assert net.evaluate(X, y)["accuracy"] == correct / 30


@pytest.mark.parametrize("weighted", [False, True])
def test_large_data_sets_gathered_batch_by_batch_train_identically(weighted, backend,
                                                                    monkeypatch):
    """Above GATHER_PER_BATCH_BYTES a shuffled epoch gathers each batch instead of the whole
    set: the same rows in the same order, so the same numbers bit for bit."""
    from nnx.data import EpochBatches

    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    weight = rng.uniform(0.5, 2.0, size=90) if weighted else None
    nets = []
    for per_batch in (False, True):
        if per_batch:
            monkeypatch.setattr(EpochBatches, "GATHER_PER_BATCH_BYTES", 0)
        net = nnx.Network([4, 8, 1], optimizer="adam", learning_rate=0.05, dtype="float64",
                          seed=2, **backend.kwargs)
        net.fit(X, y, epochs=4, batch_size=16, sample_weight=weight)
        batches = EpochBatches(net.prepare(X, y), 16, net.random, net.ctx)
        assert (batches.epoch(shuffle=True)[1] is not None) is per_batch
        nets.append(net)
    for name, p in nets[0].parameters().items():
        np.testing.assert_array_equal(to_numpy(nets[1].parameters()[name]), to_numpy(p))
    assert nets[0].history_.history["loss"] == nets[1].history_.history["loss"]


def test_divergence_replay_gathers_the_same_batches(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)) * 1000
    y = (X[:, 0] > 0).astype(int)
    infos, params = [], []
    for per_batch in (False, True):
        net = nnx.Network([3, 16, 1], learning_rate=10.0, seed=0, **backend.kwargs)
        if per_batch:
            net.GATHER_PER_BATCH_BYTES = 0
        with pytest.raises(nnx.DivergenceError, match="unscaled inputs"):
            net.fit(X, y, epochs=50)
        infos.append(net.diverged_)
        params.append({k: to_numpy(v) for k, v in net.parameters().items()})
    assert infos[0] == infos[1]
    for name in params[0]:
        np.testing.assert_array_equal(params[1][name], params[0][name])


def test_a_twin_from_get_config_leaves_the_original_alone():
    from nnx.layers import Residual

    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    net = nnx.Network([Dense(4, activation="relu"), Residual([Dense(4)]), Dense(1)],
                      input_dim=3, optimizer="adam", seed=0)
    net.fit(X, y, epochs=2)
    before = net.predict_proba(X)
    slots = {k: nnx.to_numpy(v["m"]).copy() for k, v in net.optimizer.slots.items()}
    twin = nnx.Network(**net.get_config())
    np.testing.assert_array_equal(net.predict_proba(X), before)
    assert net.optimizer.iterations > 0 and twin.optimizer.iterations == 0
    for k, v in net.optimizer.slots.items():
        np.testing.assert_array_equal(nnx.to_numpy(v["m"]), slots[k])
    assert all(a is not b for a, b in zip(twin.layers, net.layers))
    with pytest.raises(ValueError, match="already built"):
        nnx.Network(net.layers, input_dim=3)


def test_dataframe_columns_are_matched_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    y = (X.a - X.c > 0).astype(int)
    net = nnx.Network([4, 8, 1], seed=0)
    net.fit(X, y, epochs=5)
    assert net.feature_names_in_ == list("abcd")
    expected = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X[list("dcba")]), expected)  # reordered
    np.testing.assert_array_equal(net.predict_proba(X.to_numpy()), expected)  # by position
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['d'\]"):
        net.predict(X.rename(columns={"d": "e"}))
    loaded = nnx.load(net.save(tmp_path / "m.nnx"))
    np.testing.assert_array_equal(loaded.predict_proba(X[list("bdac")]), expected)


def test_torch_and_sklearn_style_initial_weights_and_biases(tmp_path):
    """``torch_default``: U(+-1/sqrt(fan_in)) for W and b, as torch.nn.Linear; Glorot-uniform
    biases, as scikit-learn's MLP; zeros stays the default and leaves W unchanged."""
    torch = pytest.importorskip("torch")
    from nnx.layers import Dense

    def layer_params(**kwargs):
        net = nnx.Network([Dense(400, **kwargs), Dense(1)], input_dim=25, seed=0,
                          dtype="float64")
        return (nnx.to_numpy(net.parameters()["layers.0.W"]),
                nnx.to_numpy(net.parameters()["layers.0.b"]), net)

    W, b, net = layer_params(kernel_initializer="torch_default",
                             bias_initializer="torch_default")
    reference = torch.nn.Linear(25, 400)
    bound = 1 / 5.0
    for ours, theirs in ((W, reference.weight), (b, reference.bias)):
        theirs = theirs.detach().numpy()
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        assert ours.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform's std
        assert theirs.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
    _, b_glorot, _ = layer_params(kernel_initializer="glorot_uniform",
                                  bias_initializer="glorot_uniform")
    assert np.abs(b_glorot).max() <= np.sqrt(6 / 425) and b_glorot.std() > 0
    W_zero, b_zero, _ = layer_params(kernel_initializer="torch_default")
    np.testing.assert_array_equal(W_zero, W)  # the bias draw comes after W
    assert not b_zero.any()
    loaded = nnx.load(net.save(tmp_path / "m.nnx"))
    assert loaded.layers[0].bias_initializer == "torch_default"
