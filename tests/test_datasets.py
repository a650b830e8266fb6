"""nnx.datasets: the lesson's data and preprocessing, checked draw for draw against scikit-learn."""

import sys

import numpy as np
import pytest

from nnx import datasets

skd = pytest.importorskip("sklearn.datasets")


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("n", [7, 200, 501])
def test_generators_replay_scikit_learn_exactly(seed, n):
    cases = [
        (datasets.make_moons(n, noise=0.2, seed=seed),
         skd.make_moons(n_samples=n, noise=0.2, random_state=seed)),
        (datasets.make_circles(n, noise=0.1, factor=0.5, seed=seed),
         skd.make_circles(n_samples=n, noise=0.1, factor=0.5, random_state=seed)),
        (datasets.make_linear(n, seed=seed),
         skd.make_classification(n_samples=n, n_features=2, n_redundant=0, n_informative=2,
                                 n_clusters_per_class=1, random_state=seed)),
        (datasets.make_linear(n, class_sep=2.0, flip_y=0.2, seed=seed),
         skd.make_classification(n_samples=n, n_features=2, n_redundant=0, n_informative=2,
                                 n_clusters_per_class=1, class_sep=2.0, flip_y=0.2,
                                 random_state=seed)),
    ]
    for (X, y), (X_ref, y_ref) in cases:
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("seed", [0, 42])
@pytest.mark.parametrize("test_size", [0.3, 0.25, 0.5])
def test_split_and_standardizer_match_scikit_learn(seed, test_size):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = datasets.make_moons(101, seed=seed)
    X = np.column_stack([X, np.full(101, 3.0)])  # a constant column is centred only
    ours = datasets.train_test_split(X, y, test_size=test_size, seed=seed)
    ref = train_test_split(X, y, test_size=test_size, random_state=seed)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a, b)
    scaler = datasets.Standardizer().fit(ours[0])
    ref_scaler = StandardScaler().fit(ref[0])
    np.testing.assert_allclose(scaler.transform(ours[1]), ref_scaler.transform(ref[1]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(ours[1])), ours[1],
                               rtol=1e-12)


def test_spiral_is_balanced_deterministic_and_spiralling():
    X, y = datasets.make_spiral(301, n_classes=3, seed=5)
    assert X.shape == (301, 2) and sorted(np.bincount(y)) == [100, 100, 101]
    X2, y2 = datasets.make_spiral(301, n_classes=3, seed=5)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    # without noise every point lies at radius r on angle 4(k + r): check the construction
    X, y = datasets.make_spiral(90, n_classes=3, noise=0.0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    theta = np.arctan2(X[:, 0], X[:, 1])
    expected = 4.0 * (y + r)
    wrapped = np.angle(np.exp(1j * (theta - expected)))
    assert np.all(r <= 1.0 + 1e-12)
    np.testing.assert_allclose(wrapped[r > 1e-9], 0.0, atol=1e-9)


def test_load_by_name():
    moons = datasets.load("moons", n_samples=50)
    assert moons.X.shape == (50, 2) and moons.task == "classification"
    assert moons.target_names == ["0", "1"] and moons.name == "moons"
    spiral = datasets.load("spiral", n_classes=4, n_samples=40)
    assert spiral.target_names == ["0", "1", "2", "3"]
    shapes = {"iris": (150, 4), "wine": (178, 13), "breast_cancer": (569, 30),
              "digits": (1797, 64), "diabetes": (442, 10)}
    for name, shape in shapes.items():
        data = datasets.load(name)
        assert data.X.shape == shape and len(data.feature_names) == shape[1]
        assert data.task == ("regression" if name == "diabetes" else "classification")
    assert datasets.load("iris").target_names == ["setosa", "versicolor", "virginica"]


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'nnx\[sklearn\]'"):
        datasets.load("iris")
    assert datasets.load("circles").X.shape == (200, 2)  # generated data needs no sklearn


@pytest.mark.parametrize("call, match", [
    (lambda: datasets.load("mnist"), "unknown dataset 'mnist'"),
    (lambda: datasets.load("iris", n_samples=10), "takes no options"),
    (lambda: datasets.make_moons(1), "n_samples"),
    (lambda: datasets.make_moons(10, noise=-1.0), "noise"),
    (lambda: datasets.make_circles(10, factor=1.0), "factor"),
    (lambda: datasets.make_spiral(10, n_classes=1), "n_classes"),
    (lambda: datasets.make_linear(10, seed=-3), "seed"),
    (lambda: datasets.train_test_split(np.zeros((4, 1)), np.zeros(4), test_size=1.0),
     "test_size"),
    (lambda: datasets.train_test_split(np.zeros((4, 1)), np.zeros(4), test_size=0.9),
     "no training rows"),
    (lambda: datasets.train_test_split(np.zeros((4, 1)), np.zeros(3)), "different lengths"),
    (lambda: datasets.Standardizer().transform(np.zeros((2, 2))), "fit first"),
    (lambda: datasets.Standardizer().fit(np.zeros((3, 2))).transform(np.zeros((3, 3))),
     "2 columns"),
])
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
