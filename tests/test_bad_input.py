"""Bad input gets a ValueError that names the problem, before any math runs."""

import numpy as np
import pytest

import nnx
from nnx.layers import Dense

X_OK = np.random.default_rng(0).normal(size=(10, 2))
Y_OK = np.array([0, 1] * 5)


def _net(backend, **kw):
    return nnx.Network([2, 4, 1], seed=0, **backend.kwargs, **kw)


@pytest.mark.parametrize("X,match", [
    (np.ones(10), "2-D"),
    (np.ones((10, 2, 1)), "2-D"),
    (np.ones((0, 2)), "empty"),
    (np.ones((10, 0)), "empty"),
    (np.array([[1.0, np.nan]] * 10), "NaN or inf"),
    (np.array([[1.0, np.inf]] * 10), "NaN or inf"),
    (np.array([["a", "b"]] * 10), "numeric"),
    (np.array([[1 + 1j, 2]] * 10), "complex"),
    (np.ones((10, 3)), "3 features, but the network was built for 2"),
])
def test_bad_features(X, match, backend):
    with pytest.raises(ValueError, match=match):
        _net(backend).fit(X, Y_OK[: len(X)] if len(X) else Y_OK[:0], epochs=1)


@pytest.mark.parametrize("y,match", [
    (np.array([0, 1] * 4), "different lengths: 10 and 8"),
    (np.array([0.0, np.nan] * 5), "NaN"),
    (np.array(["a"] * 10), "only one class"),
    (np.array([0, 1, 2] * 3 + [0]), "3 classes but the network has 1 output"),
    (np.ones((10, 2, 2)), "1-D labels or a 2-D"),
    (np.array([[0.5, 0.5]] * 10), "0s and 1s"),
    (np.array([None, "a"] * 5, dtype=object), "missing labels"),
])
def test_bad_targets(y, match, backend):
    with pytest.raises(ValueError, match=match):
        _net(backend).fit(X_OK, y, epochs=1)


def test_predict_feature_mismatch_and_before_fit(backend):
    net = _net(backend)
    with pytest.raises(ValueError, match="call fit first"):
        net.predict(X_OK)
    net.fit(X_OK, Y_OK, epochs=1)
    with pytest.raises(ValueError, match="3 features"):
        net.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="not among the classes"):
        net.evaluate(X_OK, np.array([0, 2] * 5))


def test_device_arrays_are_checked_too(backend):
    net = _net(backend)
    net.fit(X_OK, Y_OK, epochs=1)
    bad = nnx.backend.to_device(np.full((3, 2), np.nan), net.ctx)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(bad)


@pytest.mark.parametrize("sizes,match", [
    ([2], "at least two"),
    ([], "layer sizes"),
    ([2, 0, 1], "positive integers"),
    ([2, -3, 1], "positive integers"),
])
def test_bad_layer_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        nnx.Network(sizes)


@pytest.mark.parametrize("kwargs,match", [
    ({"activation": "relu7"}, "unknown activation"),
    ({"kernel_initializer": "orthogonalish"}, "unknown initializer"),
    ({"loss": "hinge"}, "unknown loss"),
    ({"optimizer": "sgdd"}, "unknown optimizer"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"dtype": "int32"}, "dtype"),
])
def test_bad_network_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nnx.Network([2, 3, 1], **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "32"}, "batch_size"),
    ({"callbacks": [print]}, "Callback"),
])
def test_bad_fit_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nnx.Network([2, 3, 1]).fit(X_OK, Y_OK, **{"epochs": 1, **kwargs})


def test_bad_layers():
    with pytest.raises(ValueError, match="units"):
        Dense(0)
    with pytest.raises(ValueError, match="logits"):
        nnx.Network([Dense(3), Dense(1, activation="sigmoid")], input_dim=2)
    with pytest.raises(ValueError, match="layer sizes"):
        nnx.Network(["a", "b"])


def test_integer_and_bool_features_are_accepted(backend):
    net = _net(backend)
    history = net.fit(np.array([[0, 1], [1, 0]] * 5), Y_OK, epochs=1)
    assert np.isfinite(history.history["loss"][0])
    pred = net.predict(np.array([[True, False], [False, True]]))
    assert pred.shape == (2,) and set(pred) <= {0, 1}


def test_a_one_dimensional_input_gets_the_reshape_that_fits():
    X = np.random.default_rng(0).normal(size=(20, 4))
    y = (X[:, 0] > 0).astype(int)
    net = nnx.Network([4, 3, 1], seed=0)
    net.fit(X, y, epochs=1)
    with pytest.raises(ValueError, match=r"one sample: X\.reshape\(1, -1\)"):
        net.predict(X[0])
    with pytest.raises(ValueError, match=r"X\.reshape\(-1, 4\)"):
        net.predict(X.ravel()[:12])
    with pytest.raises(ValueError, match=r"a single feature: X\.reshape\(-1, 1\)"):
        nnx.Network([1, 3, 1]).fit(X[:, 0], y, epochs=1)
