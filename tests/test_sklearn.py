"""nnx.sklearn: scikit-learn's estimator checks, its MLP as an oracle, and the sklearn toolbox."""

import pickle
import warnings

import numpy as np
import pytest
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


def test_pipeline_gridsearch_cross_val_and_clone():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NNXClassifier(max_iter=50, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    grid = GridSearchCV(pipe, {"nnxclassifier__hidden_layer_sizes": [(4,), (16,)],
                               "nnxclassifier__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert set(grid.best_params_) == {"nnxclassifier__hidden_layer_sizes",
                                      "nnxclassifier__alpha"}
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


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors_before_any_math():
    X, y = _iris()
    with pytest.raises(NotFittedError):
        NNXClassifier().predict(X)
    with pytest.raises(NotFittedError):
        NNXRegressor().predict(X)
    with pytest.raises(ValueError, match="only one class"):
        NNXClassifier().fit(X, np.zeros(150))
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


@pytest.mark.parametrize("param, value, message", [
    ("alpha", -1.0, r"alpha must be in \[0"),
    ("learning_rate_init", 0.0, r"learning_rate_init must be in \(0"),
    ("max_iter", 0, r"max_iter must be in \[1"),
    ("hidden_layer_sizes", (10, 0), "hidden_layer_sizes"),
    ("batch_size", 0, r"batch_size must be in \[1"),
    ("validation_fraction", 1.0, "validation_fraction"),
    ("dropout", 1.0, r"dropout must be in \[0"),
    ("solver", "lbfgs", "lbfgs"),
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
