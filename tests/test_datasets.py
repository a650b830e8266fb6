"""nnx.datasets: the lesson's data and preprocessing, checked draw for draw against scikit-learn."""

import sys

import numpy as np
import pytest

from nnx import datasets

@pytest.fixture
def skd():
    return pytest.importorskip("sklearn.datasets")


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("n", [7, 200, 501])
def test_generators_replay_scikit_learn_exactly(seed, n, skd):
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
    pytest.importorskip("sklearn")
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
    pytest.importorskip("sklearn")
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
    with pytest.raises(ImportError, match=r"pip install 'nnx-mlp\[sklearn\]'"):
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


# --------------------------------------------------------------------------- streaming statistics


def _hard_table(n=240, seed=0):
    """Columns that test the arithmetic: a large mean with a tiny spread, a wide spread, a
    constant, tiny values, 0/1 integers, and a sorted (drifting) column."""
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.normal(size=n) * 1e-2 + 1e3,
        rng.normal(size=n) * 1e4 + 5e4,
        np.full(n, 0.1),
        rng.exponential(size=n) * 1e-8 + 1e-8,
        rng.integers(0, 2, n) + 1.0,
        np.sort(rng.normal(size=n)) * 1e-3 + 7e5,
    ])


def _chunks(X, size):
    return [X[start:start + size] for start in range(0, X.shape[0], size)]


def _assert_same_statistics(scaler, reference, rtol=1e-12):
    np.testing.assert_allclose(scaler.mean_, reference.mean_, rtol=rtol, atol=0)
    np.testing.assert_allclose(scaler.scale_, reference.scale_, rtol=rtol, atol=0)
    # a constant column: 0 here, rounding noise (~1e-31) from fit's two passes
    np.testing.assert_allclose(scaler.var_, reference.var_, rtol=2 * rtol, atol=1e-28)
    assert scaler.n_samples_seen_ == reference.n_samples_seen_


@pytest.mark.parametrize("size", [1, 2, 7, 64, 239, 240, 1000])
def test_partial_fit_over_every_chunk_equals_fit_on_the_whole(size):
    X = _hard_table()
    reference = datasets.Standardizer().fit(X)
    scaler = datasets.Standardizer()
    for chunk in _chunks(X, size):
        assert scaler.partial_fit(chunk) is scaler
    _assert_same_statistics(scaler, reference)
    assert scaler.scale_[2] == 1.0 and scaler.mean_[2] == 0.1  # the constant is only centred
    Z = scaler.transform(X)  # the mean of column 5 (7e5) is a 1e-3 spread: 1e-7 per ulp
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Z.std(axis=0), [1, 1, 0, 1, 1, 1], atol=1e-6)


def test_partial_fit_takes_uneven_chunks_in_any_order():
    X = _hard_table(301, seed=3)
    bounds = [0, 1, 2, 50, 51, 190, 300, 301]
    pieces = [X[a:b] for a, b in zip(bounds, bounds[1:])]
    reference = datasets.Standardizer().fit(X)
    for order in (pieces, pieces[::-1], pieces[3:] + pieces[:3]):
        scaler = datasets.Standardizer()
        for piece in order:
            scaler.partial_fit(piece)
        _assert_same_statistics(scaler, reference)


@pytest.mark.parametrize("size", [1, 5, 64, 200])
def test_partial_fit_and_chunked_fit_on_a_float32_memmap(tmp_path, size):
    path = tmp_path / "X.npy"
    np.save(path, _hard_table(200, seed=1).astype(np.float32))
    X = np.load(path, mmap_mode="r")
    assert isinstance(X, np.memmap) and X.dtype == np.float32
    reference = datasets.Standardizer().fit(np.asarray(X, dtype=np.float64))
    scaler = datasets.Standardizer()
    for chunk in _chunks(X, size):
        scaler.partial_fit(chunk)
    _assert_same_statistics(scaler, reference)
    assert scaler.mean_.dtype == np.float64
    _assert_same_statistics(datasets.Standardizer().fit(X, chunk_rows=size), reference)


class _RowReader:
    """A 2-D array that records every row range read from it and refuses to be converted
    whole (what loading a memmap in one go would do)."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.reads = X, X.shape, X.dtype, []

    def __getitem__(self, index):
        part = self.X[index]
        self.reads.append(part.shape[0])
        return part

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole array was converted")


def test_memmaps_are_read_block_by_block(tmp_path, monkeypatch):
    path = tmp_path / "X.npy"
    X = _hard_table(500, seed=2)
    np.save(path, X)
    reference = datasets.Standardizer().fit(X)
    reader = _RowReader(np.load(path, mmap_mode="r"))
    _assert_same_statistics(datasets.Standardizer().fit(reader, chunk_rows=64), reference)
    assert max(reader.reads) == 64 and sum(reader.reads) == 500
    # one partial_fit of the whole file: converted to float64 in blocks of BLOCK_BYTES
    monkeypatch.setattr(datasets.Standardizer, "BLOCK_BYTES", 8 * X.shape[1] * 30)
    reader = _RowReader(np.load(path, mmap_mode="r"))
    _assert_same_statistics(datasets.Standardizer().partial_fit(reader), reference)
    assert max(reader.reads) == 30 and sum(reader.reads) == 500


def test_partial_fit_after_fit_adds_rows_and_fit_starts_afresh():
    X = _hard_table(150, seed=4)
    scaler = datasets.Standardizer().fit(X[:100])
    scaler.partial_fit(X[100:120]).partial_fit(X[120:])
    _assert_same_statistics(scaler, datasets.Standardizer().fit(X))
    scaler.fit(X[:10])
    _assert_same_statistics(scaler, datasets.Standardizer().fit(X[:10]))
    scaler.fit(X[:10], chunk_rows=3)
    _assert_same_statistics(scaler, datasets.Standardizer().fit(X[:10]))


def test_partial_fit_integer_and_boolean_chunks():
    X = np.arange(24).reshape(8, 3)
    scaler = datasets.Standardizer().partial_fit(X[:5]).partial_fit(X[5:])
    _assert_same_statistics(scaler, datasets.Standardizer().fit(X))
    flags = np.array([[True, False], [False, False], [True, True]])
    scaler = datasets.Standardizer().partial_fit(flags[:1]).partial_fit(flags[1:])
    _assert_same_statistics(scaler, datasets.Standardizer().fit(flags))


@pytest.mark.parametrize("chunks, match", [
    ([np.zeros((3, 2)), np.zeros((2, 2)), np.zeros((2, 3))],
     r"^chunk 3 has 3 columns, but the earlier chunks had 2$"),
    ([np.zeros((3, 2)), np.array([[0.0, 1.0], [2.0, 3.0], [np.inf, 4.0]])],
     r"^chunk 2 holds NaN or inf \(first at row 2 of the chunk, column 0\)"),
    ([np.zeros((3, 2)), np.array([[0.0, np.nan]])],
     r"^chunk 2 holds NaN or inf \(first at row 0 of the chunk, column 1\)"),
    ([np.zeros(4)], r"^chunk 1 must be a 2-D array with at least one row; got shape \(4,\)"),
    ([np.zeros((3, 2)), np.zeros((0, 2))], r"^chunk 2 must be a 2-D array with at least one row"),
    ([np.zeros((2, 2, 2))], r"^chunk 1 must be a 2-D array"),
    ([np.zeros((3, 2)), np.array([["a", "b"]])], r"^chunk 2 must hold real numbers; got dtype <U1"),
    ([np.ones((2, 2), dtype=complex)], r"^chunk 1 must hold real numbers; got dtype complex128"),
])
def test_a_bad_chunk_is_named_and_changes_nothing(chunks, match):
    scaler = datasets.Standardizer()
    for chunk in chunks[:-1]:
        scaler.partial_fit(chunk)
    before = {k: np.copy(v) for k, v in vars(scaler).items()}
    with pytest.raises(ValueError, match=match):
        scaler.partial_fit(chunks[-1])
    after = vars(scaler)
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)


def test_a_bad_block_of_a_chunked_fit_names_its_rows_and_keeps_the_old_fit():
    X = np.arange(20.0).reshape(10, 2)
    X[7, 1] = np.nan
    scaler = datasets.Standardizer().fit(np.ones((3, 2)) * [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^chunk 3 \(rows 6 to 8\) holds NaN or inf \(first at "
                                         r"row 1 of the chunk, column 1\)"):
        scaler.fit(X, chunk_rows=3)
    np.testing.assert_array_equal(scaler.mean_, [1.0, 2.0])
    for bad, match in ((np.zeros(5), "non-empty 2-D"), (np.zeros((0, 2)), "non-empty 2-D")):
        with pytest.raises(ValueError, match=match):
            datasets.Standardizer().fit(bad, chunk_rows=2)
    with pytest.raises(ValueError, match="chunk_rows"):
        datasets.Standardizer().fit(X, chunk_rows=0)


def test_transform_needs_some_rows_first():
    with pytest.raises(ValueError, match="fit first"):
        datasets.Standardizer().transform(np.zeros((2, 2)))
    scaler = datasets.Standardizer()
    with pytest.raises(ValueError):
        scaler.partial_fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="fit first"):  # a refused first chunk fits nothing
        scaler.transform(np.zeros((2, 2)))


def test_train_test_indices_are_the_rows_of_train_test_split():
    X = np.arange(60.0).reshape(30, 2)
    y = np.arange(30)
    train, test = datasets.train_test_indices(30, test_size=0.25, seed=7)
    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, test_size=0.25, seed=7)
    np.testing.assert_array_equal(X[train], X_train)
    np.testing.assert_array_equal(X[test], X_test)
    assert test.shape == (8,) and sorted(np.concatenate([train, test]).tolist()) == list(range(30))
    with pytest.raises(ValueError, match="no training rows"):
        datasets.train_test_indices(1, test_size=0.2)


def test_merged_statistics_are_those_of_the_union_of_the_row_sets():
    """Shards fitted apart, merged from their (n, mean, var): the whole set's statistics, a
    constant column's scale 1 included; later chunks add to the merged scaler."""
    from nnx.datasets import Standardizer

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(3.0, 2.0, 90), np.full(90, 7.0)])
    parts = [Standardizer().fit(X[a:b]) for a, b in ((0, 10), (10, 55), (55, 80))]
    merged = Standardizer.merged([(p.n_samples_seen_, p.mean_, p.var_) for p in parts])
    whole = Standardizer().fit(X[:80])
    np.testing.assert_allclose(merged.mean_, whole.mean_, rtol=1e-14)
    np.testing.assert_allclose(merged.scale_, whole.scale_, rtol=1e-13)
    assert merged.scale_[1] == 1.0 and merged.n_samples_seen_ == 80
    merged.partial_fit(X[80:])
    np.testing.assert_allclose(merged.mean_, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(merged.var_, X.var(axis=0), rtol=1e-12, atol=1e-20)
