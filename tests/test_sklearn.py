"""nnx.sklearn: scikit-learn's estimator checks, its MLP as an oracle, and the sklearn toolbox."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

import nnx
from nnx.sklearn import NNXClassifier, NNXRegressor
from nnx.sklearn.sparse import SparseRows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# --------------------------------------------------------------------------- check_estimator


@parametrize_with_checks([NNXClassifier(), NNXRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    """Every check of scikit-learn's check_estimator, default parameters, no expected failures."""
    check(estimator)


# --------------------------------------------------------------------------- MLP as an oracle


def _data(kind, n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if kind == "binary":
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.5])
    elif kind == "multilabel":
        y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5], axis=1).astype(int)
    else:
        y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_trajectory_as_mlp_with_sgd(backend, kind, weighted):
    """From the same weights, nnx follows scikit-learn's SGD path step for step: same
    objective (weighted mean, half squared error), same alpha penalty, same momentum."""
    X, y = _data(kind)
    n = X.shape[0]
    # full batches with weights (sklearn divides the penalty by each batch's weight);
    # mini-batches of 12 (they divide 48) without
    batch = n if weighted else 12
    w = np.random.default_rng(1).integers(0, 4, n).astype(float) if weighted else None
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.05, momentum=0.9,
              alpha=0.05, batch_size=batch, shuffle=False, max_iter=1, warm_start=True,
              random_state=0, n_iter_no_change=1000)
    Sk = MLPRegressor if kind == "regression" else MLPClassifier
    Nx = NNXRegressor if kind == "regression" else NNXClassifier
    sk = Sk(**kw).fit(X, y)
    ours = Nx(**kw, dtype="float64", **backend.kwargs).fit(X, y)
    start = {}
    for i, (W, b) in enumerate(zip(sk.coefs_, sk.intercepts_)):
        start[f"layers.{i}.W"], start[f"layers.{i}.b"] = W, b
    ours.network_.set_parameters(start)
    sk.set_params(max_iter=15).fit(X, y, sample_weight=w)
    ours.set_params(max_iter=15).fit(X, y, sample_weight=w)
    for got, want in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_[1:], sk.loss_curve_[1:], rtol=1e-9)


def test_adam_matches_mlp_up_to_epsilon_placement():
    """Adam: torch's epsilon placement vs scikit-learn's differ by eps-sized terms only."""
    X, y = _data("multiclass")
    kw = dict(hidden_layer_sizes=(6,), learning_rate_init=0.01, batch_size=12, shuffle=False,
              max_iter=1, warm_start=True, random_state=0, n_iter_no_change=1000)
    sk = MLPClassifier(**kw).fit(X, y)
    ours = NNXClassifier(**kw).fit(X, y)
    ours.network_.set_parameters({"layers.0.W": sk.coefs_[0], "layers.0.b": sk.intercepts_[0],
                                  "layers.1.W": sk.coefs_[1], "layers.1.b": sk.intercepts_[1]})
    sk.set_params(max_iter=20).fit(X, y)
    ours.set_params(max_iter=20).fit(X, y)
    for got, want in zip(ours.coefs_, sk.coefs_):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(ours.coefs_[0], sk.coefs_[0], rtol=1e-12, atol=0)  # not vacuous


# --------------------------------------------------------------------------- behaviour


def _iris(scale=True):
    X, y = load_iris(return_X_y=True)
    return (StandardScaler().fit_transform(X) if scale else X), y


def test_every_backend_gives_numpy_and_the_same_predictions(backend):
    X, y = _iris()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    ref = NNXClassifier(**kw).fit(X, names)
    clf = NNXClassifier(**kw, **backend.kwargs).fit(X, names)
    assert clf.network_.ctx.name == backend.name
    for method in ("predict", "predict_proba", "predict_log_proba"):
        out = getattr(clf, method)(X)
        assert type(out) is np.ndarray, method
    assert clf.predict(X).dtype == names.dtype
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-5, atol=1e-7)
    assert all(type(c) is np.ndarray for c in clf.coefs_ + clf.intercepts_)
    reg = NNXRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                       **backend.kwargs).fit(X[:, :3], X[:, 3])
    assert type(reg.predict(X[:, :3])) is np.ndarray
    assert isinstance(reg.score(X[:, :3], X[:, 3]), float)


def test_backend_arrays_as_input(backend):
    X, y = _iris()
    ctx = backend.context("float64")
    Xd = ctx.asarray(X)
    yd = ctx.asarray(y, dtype=ctx.xp.int64)
    clf = NNXClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, **backend.kwargs)
    clf.fit(Xd, yd)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert type(clf.predict(Xd)) is np.ndarray


@pytest.mark.parametrize("Estimator", [NNXClassifier, NNXRegressor, nnx.sklearn.MLPClassifier,
                                       nnx.sklearn.MLPRegressor])
def test_pipeline_gridsearch_cross_val_clone_and_joblib(Estimator, tmp_path):
    """What the README says of all four estimators."""
    import joblib

    X, y = load_iris(return_X_y=True)
    name = Estimator.__name__.lower()
    pipe = make_pipeline(StandardScaler(), Estimator(max_iter=50, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    if name.endswith("classifier"):
        assert scores.mean() > 0.6
    grid = GridSearchCV(pipe, {f"{name}__hidden_layer_sizes": [(4,), (16,)],
                               f"{name}__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert set(grid.best_params_) == {f"{name}__hidden_layer_sizes", f"{name}__alpha"}
    joblib.dump(grid.best_estimator_, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert isinstance(loaded.predict(X), np.ndarray)
    np.testing.assert_array_equal(loaded.predict(X), grid.best_estimator_.predict(X))
    fresh = clone(grid.best_estimator_)
    assert fresh.get_params().keys() == grid.best_estimator_.get_params().keys()


def test_clone():
    X, y = load_iris(return_X_y=True)
    est = NNXClassifier(hidden_layer_sizes=(7, 3), dropout=0.1, backend="numpy").fit(X, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not hasattr(fresh, "classes_")


def test_fitted_attributes_follow_mlp():
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(5, 4), max_iter=40, random_state=0).fit(X, y)
    mlp = MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=40, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [c.shape for c in mlp.coefs_]
    assert [b.shape for b in clf.intercepts_] == [b.shape for b in mlp.intercepts_]
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_",
                 "n_features_in_"):
        assert getattr(clf, name) == getattr(mlp, name), name
    assert len(clf.loss_curve_) == clf.n_iter_ == 40
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    np.testing.assert_array_equal(clf.classes_, mlp.classes_)


def test_binary_and_multilabel_outputs_follow_mlp():
    X, y = _data("binary")
    clf = NNXClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y == 1)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    np.testing.assert_array_equal(clf.classes_, [False, True])
    assert clf.predict(X).dtype == bool and clf.predict_proba(X).shape == (48, 2)
    X, Y = _data("multilabel")
    clf = NNXClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, Y)
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "logistic"
    assert clf.predict(X).shape == (48, 3) and clf.predict_proba(X).shape == (48, 3)
    assert clf.network_.targets_.kind == "multilabel"


def test_log_proba_is_finite_where_proba_underflows():
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    far = X[:3] * 1e4  # saturated softmax: some probabilities are exactly 0
    log_p = clf.predict_log_proba(far)
    assert np.all(np.isfinite(log_p))
    assert np.any(clf.predict_proba(far) == 0.0)
    with np.errstate(divide="ignore"):
        finite = np.isfinite(np.log(clf.predict_proba(X)))
    np.testing.assert_allclose(clf.predict_log_proba(X)[finite],
                               np.log(clf.predict_proba(X))[finite], rtol=1e-10, atol=1e-12)


def test_early_stopping_keeps_the_best_validation_weights():
    X, y = make_classification(n_samples=300, n_features=10, n_informative=5, flip_y=0.2,
                               random_state=0)
    clf = NNXClassifier(hidden_layer_sizes=(64,), early_stopping=True, n_iter_no_change=5,
                        learning_rate_init=0.01, max_iter=200, random_state=0).fit(X, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.validation_scores_[-1] < clf.best_validation_score_  # it did have to restore
    # the same split as sklearn's MLP draws it: score there equals the best score seen
    _, X_val, _, y_val = train_test_split(X, y, random_state=check_random_state(0),
                                          test_size=0.1, stratify=y)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


def test_regressor_early_stopping_scores_are_r2():
    X, y = _data("regression", n=120)
    reg = NNXRegressor(hidden_layer_sizes=(16,), early_stopping=True, learning_rate_init=0.01,
                       max_iter=300, random_state=0).fit(X, y)
    assert -1.0 < reg.validation_scores_[-1] <= 1.0 and reg.best_validation_score_ > 0.9


def test_partial_fit_with_classes_on_the_first_call():
    X, y = _iris()
    first = y < 2  # the first chunk has no class 2
    clf = NNXClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and clf.predict_proba(X).shape == (150, 3)
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.8 and len(clf.loss_curve_) == 31
    with pytest.raises(ValueError, match="not the same as on last call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_warm_start_continues_and_checks_classes():
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(8,), max_iter=10, warm_start=True, random_state=0)
    clf.fit(X, y)
    W = clf.coefs_[0]
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 20 and not np.allclose(W, clf.coefs_[0])
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X[y < 2], y[y < 2])


def test_dropout_and_batch_norm_are_wired():
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(16, 8), dropout=0.2, batch_norm=True, max_iter=100,
                        learning_rate_init=0.01,
                        random_state=0).fit(X, y)
    kinds = [type(layer).__name__ for layer in clf.network_.layers]
    assert kinds == ["Dense", "BatchNorm", "Activation", "Dropout"] * 2 + ["Dense"]
    assert clf.score(X, y) > 0.8
    assert len(clf.coefs_) == 3


def test_dtype_follows_x_unless_given():
    X, y = _iris()
    assert NNXClassifier(max_iter=2).fit(X, y).network_.ctx.dtype_name == "float64"
    assert NNXClassifier(max_iter=2).fit(X.astype(np.float32), y).network_.ctx.dtype_name == \
        "float32"
    assert NNXClassifier(max_iter=2, dtype="float32").fit(X, y).network_.ctx.dtype_name == \
        "float32"


def test_pickle_round_trip_keeps_predictions_and_training_state(backend):
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(8,), batch_norm=True, max_iter=5, random_state=0,
                        **backend.kwargs).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)  # optimizer moments and shuffle stream survive the round trip
    np.testing.assert_allclose(copy.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("changed", [
    {"activation": "tanh"}, {"dropout": 0.5}, {"batch_norm": True},
    {"hidden_layer_sizes": (3, 3)}, {"solver": "lbfgs"}, {"dtype": "float32"},
    {"backend": "array_api_strict"}, {"activation": "bogus"},
])
def test_pickle_and_deepcopy_rebuild_the_fitted_network_not_the_current_settings(changed):
    """set_params after fit changes the next fit, never what a round trip brings back."""
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(**changed)
    for twin in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(twin.predict_proba(X), expected)
        assert twin.get_params() == clf.get_params()


def test_other_solvers_and_optimizer_alias():
    X, y = _iris()
    for solver in ("sgd", "rmsprop", nnx.optimizers.AdamW(0.01)):
        clf = NNXClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=30,
                            random_state=0).fit(X, y)
        assert clf.score(X, y) > 0.6
    opt = nnx.optimizers.Adam(0.01)
    clf = NNXClassifier(solver="sgd", optimizer=opt, max_iter=3).fit(X, y)
    assert type(clf.network_.optimizer).__name__ == "Adam"
    assert opt.slots == {} and opt.iterations == 0  # the parameter itself is never trained


def test_the_oldest_scikit_learn_is_checked_at_import_and_asked_for_by_every_extra():
    """validate_data / __sklearn_tags__ (1.6) and the MLP's sample_weight and loss (1.7)."""
    import pathlib
    import re

    from nnx.sklearn import _check_sklearn_version

    with pytest.raises(ImportError, match=r"scikit-learn >= 1\.7; found 1\.6\.1"):
        _check_sklearn_version("1.6.1")
    for version in ("1.7.0", "1.9.1", "1.10.dev0", "2.0rc1"):
        _check_sklearn_version(version)
    root = pathlib.Path(__file__).resolve().parents[1]
    bounds = re.findall(r'"scikit-learn>=([0-9.]+)"', (root / "pyproject.toml").read_text())
    assert bounds and all(tuple(map(int, b.split("."))) >= (1, 7) for b in bounds)
    assert "scikit-learn (>= 1.7)" in (root / "README.md").read_text()


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors_before_any_math():
    X, y = _iris()
    with pytest.raises(NotFittedError):
        NNXClassifier().predict(X)
    with pytest.raises(NotFittedError):
        NNXRegressor().predict(X)
    with pytest.raises(ValueError, match="NaN"):
        NNXClassifier().fit(X, np.where(y == 2, np.nan, y))
    labels = np.array(["a", "b", None] * 50, dtype=object)
    with pytest.raises(ValueError, match="missing labels|NaN|None"):
        NNXClassifier().fit(X, labels)
    with pytest.raises(ValueError, match="0/1|2-D"):
        NNXClassifier().fit(X, np.stack([y, y], axis=1))  # 2-D, but not 0/1
    with pytest.raises(ValueError, match="Unknown label type"):
        NNXClassifier().fit(X, X[:, 0])  # continuous targets for a classifier
    clf = NNXClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NNXClassifier is expecting 4"):
        clf.predict_proba(X[:, :3])
    clf = NNXClassifier(hidden_layer_sizes=(4,)).partial_fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(X, y)  # label 2 was never seen and classes= was not given
    with pytest.raises(ValueError, match="early_stopping"):
        NNXClassifier(early_stopping=True).partial_fit(X, y)
    with pytest.raises(ValueError, match="non-finite parameter weights.*learning rate"):
        NNXRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50).fit(X * 1e3, y * 1e6)


def test_sample_weight_is_checked_with_scikit_learns_rules_and_sentences():
    X, y = _iris()
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    scalar = NNXClassifier(**params).fit(X, y, sample_weight=2.0)  # every row alike
    ones = NNXClassifier(**params).fit(X, y, sample_weight=np.full(y.shape[0], 2.0))
    np.testing.assert_array_equal(scalar.predict_proba(X), ones.predict_proba(X))
    n = y.shape[0]
    for w, message in [(np.ones((n, 1)), "^Sample weights must be 1D array or scalar"),
                       (np.ones(n + 1), r"^sample_weight.shape == \(151,\), expected"),
                       (np.zeros(n), "^Sample weights must contain at least one non-zero"),
                       (0.0, "^Sample weights must contain at least one non-zero"),
                       (np.full(n, np.nan), "^Input sample_weight contains NaN"),
                       (np.where(y == 0, -1.0, 1.0), "^Negative values in data passed to "
                                                     "`sample_weight`")]:
        for est in (NNXClassifier(**params), NNXRegressor(**params)):
            with pytest.raises(ValueError, match=message):
                est.fit(X, y, sample_weight=w)


def test_partial_fit_target_errors_start_with_scikit_learns_sentences():
    X, y = _iris()
    Y = np.stack([y == 0, y == 1, y == 2], axis=1).astype(int)
    clf = NNXClassifier(hidden_layer_sizes=(4,)).partial_fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"^`y` has classes not in `self.classes_`\. "
                                         r"`self.classes_` has \[0 1\]\. 'y' has \[0 1 2\]"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="^The object was not fitted with multilabel input"):
        clf.partial_fit(X, Y)
    multilabel = NNXClassifier(hidden_layer_sizes=(4,)).partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"^classes \[0 1 2\] mismatch with the labels \[0 1\] "
                                         "found in the data"):
        multilabel.partial_fit(X, Y[:, :2])


@pytest.mark.parametrize("param, value, message", [
    ("alpha", -1.0, r"alpha must be in \[0"),
    ("learning_rate_init", 0.0, r"learning_rate_init must be in \(0"),
    ("max_iter", 0, r"max_iter must be in \[1"),
    ("hidden_layer_sizes", (10, 0), "hidden_layer_sizes"),
    ("batch_size", 0, r"batch_size must be in \[1"),
    ("validation_fraction", 1.0, "validation_fraction"),
    ("momentum", 1.0, r"momentum must be in \[0, 1\)"),
    ("dropout", 1.0, r"dropout must be in \[0"),
    ("learning_rate", "bogus", "learning_rate"),
    ("power_t", -1.0, r"power_t must be in \[0"),
    ("max_fun", 0, r"max_fun must be in \[1"),
    ("n_iter_no_change", 0.5, "n_iter_no_change"),
    ("solver", "bogus", "unknown optimizer"),
    ("activation", "bogus", "activation"),
    ("dtype", "float16", "dtype"),
    ("backend", "jax", "backend"),
])
def test_bad_hyperparameters_are_named_at_fit(param, value, message):
    X, y = _iris()
    est = NNXClassifier(**{param: value})  # construction never validates (sklearn's contract)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)


def test_validation_fraction_zero_is_taken_without_early_stopping():
    X, y = _iris()
    NNXClassifier(hidden_layer_sizes=(4,), max_iter=2, validation_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        NNXClassifier(early_stopping=True, validation_fraction=0.0).fit(X, y)


def test_one_class_is_fitted_and_predicted_as_scikit_learn_does():
    X, _ = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    clf.fit(X, np.full(150, "only"))
    np.testing.assert_array_equal(clf.classes_, ["only"])
    np.testing.assert_array_equal(clf.predict(X), np.full(150, "only"))


# --------------------------------------------------------------------------- scikit-learn's
# parameters on nnx's estimators (scikit-learn's own test file runs on them too:
# tests/test_sklearn_suite.py)


def test_lbfgs_is_one_full_batch_epoch_and_the_same_on_every_backend(backend):
    X, y = _iris()
    kw = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    ref = NNXClassifier(**kw).fit(X, y)
    clf = NNXClassifier(**kw, **backend.kwargs).fit(X, y)
    assert 0 < clf.n_iter_ <= 40 and clf.t_ == 0
    assert clf.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-5, atol=1e-7)
    assert not hasattr(clf, "partial_fit") and not hasattr(NNXRegressor(solver="lbfgs"),
                                                             "partial_fit")


@pytest.mark.parametrize("Estimator, Reference", [(NNXClassifier, MLPClassifier),
                                                   (NNXRegressor, MLPRegressor)])
def test_lbfgs_sets_the_attributes_scikit_learns_sets(Estimator, Reference):
    """No loss_curve_ / best_loss_ / validation scores after L-BFGS, and t_ stays 0; a warm
    fit with a stochastic solver afterwards starts them."""
    X, y = _iris()
    kw = dict(solver="lbfgs", hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    ours, reference = Estimator(**kw).fit(X, y), Reference(**kw).fit(X, y)
    fitted = {name for name in vars(reference) if name.endswith("_")
              and not name.startswith("_")}
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert not hasattr(reference, name)
        assert not hasattr(ours, name), name
    assert {name for name in fitted if hasattr(ours, name)} == fitted
    assert ours.t_ == reference.t_ == 0
    ours.set_params(solver="adam", warm_start=True, max_iter=2).fit(X, y)
    assert len(ours.loss_curve_) == 2 and ours.best_loss_ == min(ours.loss_curve_)


@pytest.mark.parametrize("limit, params", [("max_fun", dict(max_fun=6)),
                                           ("max_iter", dict(max_iter=3))])
def test_lbfgs_warns_which_limit_ended_it(limit, params):
    X, y = _iris()
    with pytest.warns(ConvergenceWarning, match=limit):
        reg = NNXRegressor(solver="lbfgs", tol=0.0, random_state=0, **params).fit(X, y)
    assert reg.network_.optimizer.func_evals <= reg.max_fun and reg.n_iter_ <= reg.max_iter


def test_learning_rate_schedules_give_scikit_learns_rates():
    """invscaling's rate after each epoch and adaptive's division by 5 (tol=1e9 makes every
    epoch after the first one without improvement, so the count does not depend on the
    losses): the same rates as scikit-learn's MLP, which is the oracle."""
    X, y = _iris()
    for params, epochs in ((dict(learning_rate="invscaling", power_t=0.25), 3),
                           (dict(learning_rate="adaptive", tol=1e9, n_iter_no_change=2), 6)):
        kw = dict(solver="sgd", hidden_layer_sizes=(4,), max_iter=epochs, random_state=0,
                  **params)
        ours = NNXClassifier(**kw).fit(X, y)
        theirs = MLPClassifier(**kw).fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_ == epochs
        assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
        assert ours._optimizer.learning_rate < 1e-3
    # scikit-learn applies the schedule to "sgd" only
    adam = NNXClassifier(learning_rate="invscaling", max_iter=3, random_state=0).fit(X, y)
    assert adam._optimizer.learning_rate == 1e-3


@pytest.mark.parametrize("to_sparse", [scipy.sparse.csr_matrix, scipy.sparse.csc_array])
def test_sparse_x_is_made_dense_one_batch_at_a_time(backend, to_sparse, monkeypatch):
    X, y = _iris()
    X = np.where(X > 0, X, 0.0)
    rows_read = []
    take = SparseRows.take
    monkeypatch.setattr(SparseRows, "take",
                        lambda self, rows: rows_read.append(len(rows)) or take(self, rows))
    monkeypatch.setattr(nnx.sources, "GROUP_BYTES", 1)  # a group of one batch
    kw = dict(hidden_layer_sizes=(8,), batch_size=32, max_iter=4, random_state=0,
              early_stopping=True, **backend.kwargs)
    dense = NNXClassifier(**kw).fit(X, y)
    ours = NNXClassifier(**kw).fit(to_sparse(X), y)
    # the fit's one look at the input scale reads a bounded sample first (nnx.diagnostics);
    # training then reads one batch at a time
    assert rows_read[0] <= nnx.diagnostics.SAMPLE_ROWS
    assert len(rows_read) > 1 and max(rows_read[1:]) <= 32
    for method in ("predict_proba", "predict_log_proba"):
        np.testing.assert_allclose(getattr(ours, method)(to_sparse(X)),
                                   getattr(dense, method)(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(to_sparse(X)), dense.predict(X))
    reg = NNXRegressor(hidden_layer_sizes=(8,), batch_size=32, random_state=0, **backend.kwargs)
    reg.partial_fit(to_sparse(X[:, :3]), X[:, 3])
    same = NNXRegressor(hidden_layer_sizes=(8,), batch_size=32, random_state=0,
                        **backend.kwargs).partial_fit(X[:, :3], X[:, 3])
    np.testing.assert_allclose(reg.predict(to_sparse(X[:, :3])), same.predict(X[:, :3]),
                               rtol=1e-6, atol=1e-9)


def test_poisson_regressor_predicts_exp_of_its_output():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 2))
    y = rng.poisson(np.exp(X @ [1.0, -0.5] + 0.5))
    reg = NNXRegressor(loss="poisson", hidden_layer_sizes=(4,), solver="lbfgs",
                       random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp" and np.all(reg.predict(X) > 0)
    assert reg.predict(X).mean() == pytest.approx(y.mean(), rel=0.05)
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        NNXRegressor(loss="poisson").fit(X, -y)
    with pytest.raises(ValueError, match="loss"):
        NNXRegressor(loss="absolute_error").fit(X, y)


def test_coefs_are_the_models_weights():
    X, y = _iris()
    clf = NNXClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    clf.coefs_[1][...] = 0.0  # in place, on the NumPy backend: the model's own array
    flat = clf.predict_proba(X)
    assert not np.allclose(flat, before) and np.allclose(flat, flat[0])
    clf.coefs_ = [np.ones_like(c) for c in clf.coefs_]
    np.testing.assert_array_equal(clf.coefs_[0], 1.0)
    with pytest.raises(ValueError, match="2 Dense layers"):
        clf.intercepts_ = clf.intercepts_[:1]
    with pytest.raises(NotFittedError):
        NNXClassifier().coefs_


@pytest.mark.parametrize("params", [
    dict(solver="sgd", learning_rate="invscaling"),
    dict(solver="sgd", learning_rate="adaptive", early_stopping=True),
    dict(sparse=True), dict(loss="poisson"),
], ids=["invscaling", "adaptive_early_stopping", "sparse", "poisson"])
def test_no_training_step_reads_back_from_the_device(params):
    pytest.importorskip("torch")
    from nnx.sync_audit import per_step_syncs

    params = dict(params)
    sparse = params.pop("sparse", False)
    Estimator = NNXRegressor if "loss" in params else NNXClassifier

    def run(steps):
        X, y = _data("multiclass", n=10 * steps)
        est = Estimator(hidden_layer_sizes=(5,), batch_size=8, max_iter=2, random_state=0,
                        validation_fraction=0.2, backend="torch", **params)
        est.fit(scipy.sparse.csr_matrix(X) if sparse else X, y)

    few, many = per_step_syncs(run)
    assert many == few, f"host syncs grow with the steps: {dict(few)} -> {dict(many)}"


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer])
def test_accuracy_parity_with_mlp(loader):
    """The small version of benchmarks/sklearn_parity.py: matched settings, 3 seeds."""
    X, y = loader(return_X_y=True)
    ours, theirs = [], []
    kw = dict(hidden_layer_sizes=(32,), max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in range(3):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                                  random_state=seed)
            ours.append(make_pipeline(StandardScaler(), NNXClassifier(random_state=seed, **kw))
                        .fit(Xtr, ytr).score(Xte, yte))
            theirs.append(make_pipeline(StandardScaler(), MLPClassifier(random_state=seed, **kw))
                          .fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(ours) >= np.mean(theirs) - 0.02, (ours, theirs)
