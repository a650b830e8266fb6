"""Input scaling that follows the model: the Standardize layer and Network(standardize=True).

Oracles: nnx.datasets.Standardizer (the statistics) and a network trained on data scaled by
hand with those statistics (the same predictions).
"""

import warnings

import numpy as np
import pytest

import nnx
from nnx.datasets import Standardizer
from nnx.layers import Dense, Residual, Standardize


def _table(n=240, seed=0):
    """Three classes whose features are raw measurements: offsets in the thousands, spreads
    from a hundredth to hundreds, and one constant column."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[39.0, 18.3, 190.0, 3700.0], [48.8, 18.4, 196.0, 3730.0],
                        [47.5, 15.0, 217.0, 5076.0]])
    X = centres[y] + rng.normal(size=(n, 4)) * [2.6, 1.2, 6.5, 450.0]
    X = np.column_stack([X, np.full(n, 7.0)])
    return X, y


def _net(backend, **kwargs):
    kwargs.setdefault("seed", 0)
    return nnx.Network([5, 16, 3], loss="categorical_crossentropy", optimizer="adam",
                       learning_rate=1e-2, **backend.kwargs, **kwargs)


def test_statistics_are_the_standardizers_of_the_training_rows(backend):
    X, y = _table()
    net = _net(backend, dtype="float64", standardize=True)
    net.fit(X[:200], y[:200], epochs=2, validation_data=(X[200:] * 10, y[200:]))
    scaler = Standardizer().fit(X[:200])  # the training rows only, never the validation's
    layer = net.layers[0]
    np.testing.assert_allclose(layer.mean, scaler.mean_, rtol=1e-13)
    np.testing.assert_allclose(layer.scale, scaler.scale_, rtol=1e-13)
    assert layer.scale[4] == 1.0  # the constant column is only centred
    out, caches = net.forward(X[200:], return_cache=True)
    np.testing.assert_allclose(nnx.to_numpy(caches[1].x), scaler.transform(X[200:]),
                               rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(nnx.to_numpy(out)))


def test_a_validation_split_is_left_out_of_the_statistics():
    X, y = _table()
    net = nnx.Network([5, 8, 3], seed=0, standardize=True)
    net.fit(X, y, epochs=1, validation_split=0.25)
    layer = net.layers[0]
    assert layer.n_samples_seen == 180  # 240 rows less the 60 held out
    assert not np.allclose(layer.mean, Standardizer().fit(X).mean_, rtol=1e-6)


def test_float32_network_matches_scaling_by_hand(backend):
    """A network that scales its inputs is the same network trained on data scaled by hand
    (float32: the statistics are those of the float32 data the network receives)."""
    X, y = _table()
    X32 = X.astype(np.float32)
    scaler = Standardizer().fit(X32)
    a = _net(backend, standardize=True)
    b = _net(backend)
    a.fit(X, y, epochs=3, batch_size=32)
    b.fit(scaler.transform(X32), y, epochs=3, batch_size=32)
    np.testing.assert_allclose(a.layers[0].mean, scaler.mean_, rtol=1e-12)
    pa = nnx.to_numpy(a.predict_proba(X))
    pb = nnx.to_numpy(b.predict_proba(scaler.transform(X32)))
    np.testing.assert_allclose(pa, pb, rtol=1e-4, atol=1e-5)


def test_scaling_makes_raw_measurements_learnable_and_quiet():
    """The unscaled table stalls (and says so); the same network scaling inside learns it,
    with no training warning."""
    X, y = _table()
    raw = nnx.Network([5, 16, 3], learning_rate=0.01, seed=0)
    with pytest.warns(nnx.diagnostics.UnscaledInputWarning):
        raw.fit(X, y, epochs=60)
    scaled = nnx.Network([5, 16, 3], learning_rate=0.01, seed=0, standardize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled.fit(X, y, epochs=60)
    assert raw.score(X, y) < 0.5 < 0.9 < scaled.score(X, y)


def test_save_and_load_round_trip(backend, tmp_path):
    X, y = _table()
    net = _net(backend, standardize=True)
    net.fit(X, y, epochs=2)
    path = net.save(tmp_path / "m.nnx")
    loaded = nnx.load(path)
    assert isinstance(loaded.layers[0], Standardize)
    np.testing.assert_array_equal(loaded.layers[0].mean, net.layers[0].mean)
    np.testing.assert_array_equal(loaded.layers[0].scale, net.layers[0].scale)
    np.testing.assert_array_equal(nnx.to_numpy(loaded.predict_proba(X)),
                                  nnx.to_numpy(net.predict_proba(X)))
    # a later fit keeps the saved statistics, even on other rows
    loaded.fit(X[:50] * 2, y[:50], epochs=1)
    np.testing.assert_array_equal(loaded.layers[0].mean, net.layers[0].mean)
    # on another backend too
    other = nnx.load(path, backend="numpy")
    np.testing.assert_allclose(other.predict_proba(X), nnx.to_numpy(net.predict_proba(X)),
                               rtol=1e-5, atol=1e-6)


def test_config_twin_and_state_dict(backend):
    X, y = _table()
    net = _net(backend, standardize=True)
    net.fit(X, y, epochs=1)
    config = net.get_config()
    assert "standardize" not in config  # the layer is in the layers: no second one
    twin = nnx.Network(**config, **backend.kwargs)
    assert [type(layer) for layer in twin.layers] == [type(layer) for layer in net.layers]
    twin.load_state_dict(net.state_dict())
    np.testing.assert_array_equal(nnx.to_numpy(twin.predict_proba(X)),
                                  nnx.to_numpy(net.predict_proba(X)))
    assert sorted(net.parameters()) == ["layers.1.W", "layers.1.b", "layers.2.W",
                                        "layers.2.b"]


def test_adapt_and_partial_fit_match_the_standardizer_in_chunks(backend, tmp_path):
    X, _ = _table(1000)
    np.save(tmp_path / "X.npy", X)
    big = np.load(tmp_path / "X.npy", mmap_mode="r")
    full = Standardizer().fit(X)
    by_chunks = Standardize()
    for start in range(0, 1000, 300):
        by_chunks.partial_fit(big[start:start + 300])
    on_device = Standardize().adapt(backend.asarray(X))
    blocks = Standardize().adapt(X[s:s + 128] for s in range(0, 1000, 128))
    small_blocks = Standardize()
    small_blocks.BLOCK_BYTES = 8 * 5 * 7  # seven rows at a time from the device
    small_blocks.adapt(backend.asarray(X))
    for layer in (by_chunks, on_device, blocks, small_blocks):
        np.testing.assert_allclose(layer.mean, full.mean_, rtol=1e-12)
        np.testing.assert_allclose(layer.scale, full.scale_, rtol=1e-12)


def test_an_adapted_layer_is_kept_by_fit(backend):
    X, y = _table()
    layer = Standardize().adapt(X[:100])
    before = layer.mean.copy()
    np.testing.assert_allclose(before, Standardizer().fit(X[:100]).mean_, rtol=1e-14)
    net = nnx.Network([layer, Dense(8, activation="relu"), Dense(3)], input_dim=5, seed=0,
                      **backend.kwargs)
    net.fit(X, y, epochs=1)
    np.testing.assert_array_equal(layer.mean, before)
    mean, scale = [45.0, 17.0, 200.0, 4200.0, 7.0], [5.0, 2.0, 14.0, 800.0, 1.0]
    given = Standardize(mean=mean, scale=scale)
    net = nnx.Network([given, Dense(3)], seed=0, **backend.kwargs)
    net.fit(X, y, epochs=1)
    assert given.mean.tolist() == mean and given.scale.tolist() == scale


def test_streamed_sources_adapt_on_their_training_rows(tmp_path):
    X, y = _table(600)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    net = nnx.Network([5, 8, 3], seed=0, standardize=True)
    net.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), epochs=1,
            validation_split=0.2)  # the held-out tail: the last 120 rows
    np.testing.assert_allclose(net.layers[0].mean, Standardizer().fit(X[:480]).mean_,
                               rtol=1e-12)

    def batches():
        return ((X[s:s + 64], y[s:s + 64]) for s in range(0, 600, 64))
    net = nnx.Network([5, 8, 3], seed=0, standardize=True)
    net.fit(batches, epochs=1)
    np.testing.assert_allclose(net.layers[0].scale, Standardizer().fit(X).scale_, rtol=1e-12)
    one_shot = nnx.Network([5, 8, 3], seed=0, standardize=True)
    with pytest.raises(ValueError, match="one-shot iterator.*partial_fit"):
        one_shot.fit(batches(), epochs=1, steps_per_epoch=3, classes=[0, 1, 2])


def test_bad_uses_are_named():
    with pytest.raises(ValueError, match="both mean and scale"):
        Standardize(mean=[0.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        Standardize(mean=[0.0, 1.0], scale=[1.0, 0.0])
    with pytest.raises(ValueError, match="1-D, of one length"):
        Standardize(mean=[0.0, 1.0], scale=[1.0])
    with pytest.raises(ValueError, match="first layer"):
        nnx.Network([Dense(4), Standardize(), Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="first layer"):
        nnx.Network([Residual([Standardize()]), Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="standardize must be True or False"):
        nnx.Network([2, 1], standardize="yes")
    with pytest.raises(ValueError, match="no statistics yet.*adapt"):
        nnx.Network([2, 1], standardize=True).forward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="built for 2 features; the data has 3"):
        nnx.Network([2, 1], standardize=True).layers[0].adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="holds statistics of 3 features; its input has 2"):
        nnx.Network([Standardize([0.0] * 3, [1.0] * 3), Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="given \\(or loaded\\).*adapt"):
        Standardize([0.0], [1.0]).partial_fit(np.ones((2, 1)))
    layer = Standardize().adapt(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match="NaN"):  # a refused chunk changes nothing
        layer.adapt(np.array([[np.nan, 1.0]]))
    np.testing.assert_array_equal(layer.mean, [2.0, 3.0])


def test_gradients_through_the_layer():
    """Finite differences: the layer's own dx = dy / scale, and a float64 network's parameter
    gradients behind it."""
    X, y = _table(40)
    layer = Standardize().adapt(X)
    layer.build(5, nnx.get_context("numpy", None, "float64"), None)
    x, dy = X[:3], np.random.default_rng(1).normal(size=(3, 5))
    dx, grads = layer.backward(None, dy)
    eps = 1e-3
    numeric = (layer.forward(x + eps * dy)[0] - layer.forward(x - eps * dy)[0]) / (2 * eps)
    np.testing.assert_allclose(np.sum(dx * dy), np.sum(numeric * dy), rtol=1e-9)
    assert grads == {} and layer.backward(None, dy, need_dx=False)[0] is None
    net = nnx.Network([5, 4, 3], activation="tanh", dtype="float64", seed=0, standardize=True)
    net.fit(X, y, epochs=1)
    nnx.check_gradients(net, X, y)
