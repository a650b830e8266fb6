"""nnx.sklearn.MLPClassifier / MLPRegressor against scikit-learn's own, which is the oracle.

With NumPy and float64 the whole fit must agree with scikit-learn's to 1e-9 relative
(``coefs_``, ``intercepts_``, ``loss_curve_``, ``loss_``, ``n_iter_``); on the other
backends to 1e-7 (their matrix products sum in another order, and training carries the
difference along).
"""

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network as sk  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.datasets import make_regression  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnx  # noqa: E402
from nnx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# short fits on purpose: both libraries warn alike that they stopped at max_iter
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(task, n=120, seed=0):
    if task == "regression":
        X, y = make_regression(n_samples=n, n_features=6, n_targets=2, noise=5.0,
                               random_state=seed)
        return X / 3, y / 100
    if task == "multilabel":
        return make_multilabel_classification(n_samples=n, n_features=6, n_classes=3,
                                              random_state=seed)
    X, y = make_classification(n_samples=n, n_features=6, n_informative=4,
                               n_classes=2 if task == "binary" else 3, random_state=seed)
    return X, y


def _pair(task, **params):
    """scikit-learn's estimator and nnx's, with the same parameters."""
    nnx_only = {k: params.pop(k) for k in ("backend", "device") if k in params}
    params = {"hidden_layer_sizes": (12, 7), "batch_size": 32, "max_iter": 25,
              "random_state": 3, **params}
    if task == "regression":
        return sk.MLPRegressor(**params), MLPRegressor(**params, **nnx_only)
    return sk.MLPClassifier(**params), MLPClassifier(**params, **nnx_only)


def _fit_both(task, X=None, y=None, fit=None, **params):
    reference, ours = _pair(task, **params)
    if X is None:
        X, y = _data(task)
    for est in (reference, ours):
        (fit or (lambda e: e.fit(X, y)))(est)
    return reference, ours


def assert_same_fit(reference, ours, rtol=1e-9):
    assert ours.n_iter_ == reference.n_iter_
    for name in ("coefs_", "intercepts_"):
        for a, b in zip(getattr(reference, name), getattr(ours, name)):
            np.testing.assert_allclose(nnx.to_numpy(b), a, rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(ours.loss_, reference.loss_, rtol=rtol)
    if hasattr(reference, "loss_curve_"):  # scikit-learn's L-BFGS keeps no curve
        np.testing.assert_allclose(ours.loss_curve_, reference.loss_curve_, rtol=rtol)
    else:
        assert not hasattr(ours, "loss_curve_")
    for name in ("validation_scores_", "best_validation_score_", "best_loss_"):
        expected = getattr(reference, name, None)
        if expected is None:
            assert getattr(ours, name, None) is None, name
        else:
            np.testing.assert_allclose(getattr(ours, name), expected, rtol=rtol, err_msg=name)


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_check_estimator(estimator, check):
    """Every check of scikit-learn's check_estimator, default parameters, no expected failures
    (as scikit-learn's own MLPs)."""
    check(estimator)


SOLVERS = {
    "sgd_nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd_momentum": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False),
    "sgd_plain": dict(solver="sgd", learning_rate_init=0.05, momentum=0.0),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}
TASKS = ["binary", "multiclass", "multilabel", "regression"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_numpy_float64_reproduces_scikit_learns_fit(solver, task):
    assert_same_fit(*_fit_both(task, **SOLVERS[solver]))


@pytest.mark.parametrize("params", [
    dict(solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.2),
    dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=2, max_iter=60),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2, n_iter_no_change=3),
    dict(solver="sgd", shuffle=False, activation="tanh"),
    dict(solver="adam", activation="logistic", alpha=0.5),
    dict(solver="lbfgs", activation="identity", max_fun=40),
    dict(solver="adam", n_iter_no_change=np.inf, tol=1e3),
], ids=["invscaling", "adaptive", "early_stopping", "no_shuffle", "logistic", "max_fun",
        "never_stop"])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_schedules_stopping_and_activations_match(params, task):
    assert_same_fit(*_fit_both(task, **params))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_poisson_loss_matches(solver):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(90, 3))
    y = rng.poisson(np.exp(X @ [1.0, -0.5, 0.3]))
    y[:5] = 0  # y = 0 takes the xlogy branch
    assert_same_fit(*_fit_both("regression", X, y, loss="poisson", **SOLVERS[solver]))


def test_poisson_refuses_negative_targets_as_nnx_regressor_does():
    X, y = _data("regression")
    with pytest.raises(ValueError, match="^Some value.s. of y are negative which is not "
                                         "allowed for Poisson regression"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y[:, 0])
    with pytest.raises(ValueError, match="^Some value.s. of y are negative"):
        MLPRegressor(loss="poisson", max_iter=2).partial_fit(X, y[:, 0])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_sample_weights_match(early_stopping):
    X, y = _data("multiclass")
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=y.shape[0])
    assert_same_fit(*_fit_both("multiclass", X, y, fit=lambda e: e.fit(X, y, sample_weight=w),
                               early_stopping=early_stopping))


@pytest.mark.parametrize("weights", ["scalar", "negative"])
def test_sample_weights_are_checked_as_scikit_learn_checks_them(weights):
    """A scalar weighs every row; negative weights are taken, as scikit-learn takes them."""
    X, y = _data("regression")
    w = 2.5 if weights == "scalar" else np.where(np.arange(y.shape[0]) % 7 == 0, -0.5, 1.0)
    assert_same_fit(*_fit_both("regression", X, y,
                               fit=lambda e: e.fit(X, y, sample_weight=w), solver="sgd",
                               learning_rate_init=0.01))


@pytest.mark.parametrize("weights", [lambda n: np.ones((n, 1)), lambda n: np.ones(n + 1),
                                     lambda n: np.zeros(n), lambda n: 0.0,
                                     lambda n: np.full(n, np.nan)],
                         ids=["column", "length", "zeros", "zero", "nan"])
def test_bad_sample_weights_get_scikit_learns_errors(weights):
    X, y = _data("binary")
    w = weights(y.shape[0])
    with pytest.raises(ValueError) as expected:
        sk.MLPClassifier(max_iter=1).fit(X, y, sample_weight=w)
    with pytest.raises(ValueError) as found:
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=w)
    assert str(found.value) == str(expected.value)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["sgd_nesterov", "lbfgs"])
def test_sparse_input_matches(fmt, solver):
    X, y = _data("multiclass")
    X[np.abs(X) < 0.8] = 0.0
    Xs = scipy.sparse.csr_matrix(X) if fmt == "csr" else scipy.sparse.csc_matrix(X)
    reference, ours = _fit_both("multiclass", Xs, y, **SOLVERS[solver])
    assert_same_fit(reference, ours)
    np.testing.assert_allclose(ours.predict_proba(Xs), reference.predict_proba(Xs), rtol=1e-9)


def test_partial_fit_and_warm_start_continue_as_scikit_learn_does():
    X, y = _data("multiclass")

    def chunks(est):
        for start in range(0, 120, 40):
            est.partial_fit(X[start:start + 40], y[start:start + 40], classes=np.unique(y))

    assert_same_fit(*_fit_both("multiclass", fit=chunks, solver="sgd", learning_rate="invscaling"))

    def twice(est):
        est.fit(X, y)
        est.set_params(max_iter=7)
        est.fit(X, y)

    assert_same_fit(*_fit_both("multiclass", fit=twice, warm_start=True))


@pytest.mark.parametrize("solver", ["sgd_nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "regression"])
def test_every_backend_trains_the_same_model(backend, solver, task):
    if backend.name == "numpy":
        pytest.skip("numpy is the 1e-9 comparison above")
    params = dict(SOLVERS[solver], backend=backend.name, device=backend.device)
    reference, ours = _fit_both(task, **params)
    assert_same_fit(reference, ours, rtol=1e-7)
    X, _ = _data(task)
    out = ours.predict_proba(X) if task != "regression" else ours.predict(X)
    ref = reference.predict_proba(X) if task != "regression" else reference.predict(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, ref, rtol=1e-7, atol=1e-12)


def test_sparse_data_is_densified_a_group_of_batches_at_a_time(backend, monkeypatch):
    """Where the backend cannot multiply scipy matrices, a group of batches at a time is made
    dense (never the whole X); on NumPy nothing is."""
    X, y = _data("binary", n=100)
    X[np.abs(X) < 1.0] = 0.0
    densified = []
    original = scipy.sparse.csr_matrix.toarray

    def recording(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(scipy.sparse.csr_matrix, "toarray", recording)
    # groups of two batches of 16 float64 rows of 6 features
    monkeypatch.setattr("nnx.sklearn.base.GROUP_BYTES", 2 * 16 * 6 * 8)
    est = MLPClassifier(hidden_layer_sizes=(5,), batch_size=16, max_iter=3,
                        random_state=0, backend=backend.name, device=backend.device)
    est.fit(scipy.sparse.csr_matrix(X), y)
    dense = MLPClassifier(**est.get_params()).fit(X, y)
    if backend.name == "numpy":
        assert densified == []
    else:
        # per epoch: 100 rows in groups of 32 (the last 4), then 4096-row prediction chunks
        assert densified[:4] == [32, 32, 32, 4] and max(densified) <= 100
    np.testing.assert_allclose(est.predict_proba(X), dense.predict_proba(X), rtol=1e-12)


def test_predictions_take_their_dtype_from_x_and_coefs_as_scikit_learns(backend):
    """NumPy's promotion of X @ coefs_[0]: float64 for integer X and for float64 X given to a
    float32 model; one prediction never fixes the dtype of the next."""
    X, y = _data("regression")
    y = y[:, 0]
    for X_fit in (X, X.astype(np.float32)):
        params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
        reference = sk.MLPRegressor(**params).fit(X_fit, y)
        ours = MLPRegressor(**params, backend=backend.name, device=backend.device)
        ours.fit(X_fit, y)
        for X_new in (X.astype(np.float32), X, np.round(3 * X).astype(np.int64)):
            expected, found = reference.predict(X_new), ours.predict(X_new)
            assert found.dtype == expected.dtype, (X_fit.dtype, X_new.dtype)
            np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    hand_set = MLPRegressor(hidden_layer_sizes=(5,), backend=backend.name,
                            device=backend.device)
    for name in ("coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_"):
        setattr(hand_set, name, getattr(reference, name))  # float32 coefs_
    assert hand_set.predict(X.astype(np.float32)).dtype == np.float32
    assert hand_set.predict(X).dtype == np.float64


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_after_a_backend_change_carries_the_state_along(solver):
    """set_params(backend=...) on a fitted model: the weights and the optimizer's state move,
    and training continues as it would have on the first backend."""
    pytest.importorskip("torch")
    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, solver=solver)
    stay = MLPClassifier(**params).fit(X, y)
    move = MLPClassifier(**params).fit(X, y)
    move.set_params(backend="torch")
    for est in (stay, move):
        est.partial_fit(X, y)
    assert_same_fit(stay, move, rtol=1e-7)
    move.set_params(backend="array_api_strict")
    move.partial_fit(X, y)
    stay.partial_fit(X, y)
    np.testing.assert_allclose(move.predict_proba(X), stay.predict_proba(X), rtol=1e-7)


def test_coefs_are_the_models_arrays():
    X, y = _data("binary")
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    est.fit(X, y)
    before = est.predict_proba(X)
    est.intercepts_[-1] += 3.0  # edited in place: the model changes
    assert np.all(est.predict_proba(X)[:, 1] > before[:, 1])
    est.coefs_ = [np.zeros_like(c) for c in est.coefs_]  # assigned: the model uses them
    p = 1 / (1 + np.exp(-est.intercepts_[-1][0]))
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], np.full(X.shape[0], p))
    est.partial_fit(X, y)  # and trains them
    assert np.any(est.coefs_[0] != 0)


def test_partial_fit_follows_the_solver_as_scikit_learn_does():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")
    # scikit-learn's regressor offers it for every solver (L-BFGS then fits from the weights)
    X, y = _data("regression")
    reference, ours = _fit_both("regression", X, y, fit=lambda e: e.partial_fit(X, y),
                                solver="lbfgs")
    assert_same_fit(reference, ours)


def test_errors_start_with_scikit_learns_sentences():
    X, y = _data("binary")
    with pytest.raises(ValueError, match=r"^The 'solver' parameter of MLPClassifier must be"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match=r"^The 'learning_rate' parameter of MLPRegressor"):
        MLPRegressor(learning_rate="cyclic").fit(X, y)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        MLPClassifier(backend="nope").fit(X, y)
    with pytest.raises(ValueError, match="^The validation set is too small"):
        MLPRegressor(early_stopping=True).fit(X[:3], y[:3])


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_fit_runs_in_scikit_learns_fit_context(Estimator, monkeypatch):
    """Parameters validated once per fit by scikit-learn's _fit_context, which
    set_config(skip_parameter_validation=True) switches off, and nested calls skip."""
    X, y = _data("binary")
    calls = []
    original = Estimator._validate_params
    monkeypatch.setattr(Estimator, "_validate_params",
                        lambda self: calls.append(1) or original(self))
    est = Estimator(hidden_layer_sizes=(3,), max_iter=2, solver="sgd")
    est.fit(X, y)
    assert len(calls) == 1
    with sklearn.config_context(skip_parameter_validation=True):
        est.fit(X, y)
        est.partial_fit(X, y)
    assert len(calls) == 1
    inside = []
    fit = Estimator._fit
    monkeypatch.setattr(Estimator, "_fit", lambda self, *a, **k: inside.append(
        sklearn.get_config()["skip_parameter_validation"]) or fit(self, *a, **k))
    est.fit(X, y)
    assert inside == [True]  # nested calls (train_test_split...) skip their validation


def test_pickles_on_every_backend(backend):
    X, y = _data("multiclass")
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, random_state=0,
                        backend=backend.name, device=backend.device)
    est.fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    loaded.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("params", [
    dict(solver="sgd"), dict(solver="adam"), dict(solver="adam", early_stopping=True),
    dict(solver="sgd", learning_rate="adaptive", sample_weight=True),
    dict(solver="adam", sparse=True), dict(solver="sgd", early_stopping=True, sparse=True),
], ids=["sgd", "adam", "early_stopping", "adaptive_weighted", "sparse", "sparse_early"])
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_no_training_step_reads_back_from_the_device(Estimator, params):
    pytest.importorskip("torch")
    from nnx.sync_audit import per_step_syncs

    params = dict(params)
    weighted = params.pop("sample_weight", False)
    sparse = params.pop("sparse", False)

    def run(steps):
        X, y = _data("multiclass", n=10 * steps)
        if sparse:  # torch multiplies no scipy matrix: made dense a group of batches at a time
            X[np.abs(X) < 0.8] = 0.0
            X = scipy.sparse.csr_matrix(X)
        est = Estimator(hidden_layer_sizes=(5,), batch_size=8, max_iter=2, random_state=0,
                        validation_fraction=0.2, backend="torch", **params)
        est.fit(X, y, sample_weight=np.ones(y.shape[0]) if weighted else None)

    few, many = per_step_syncs(run)
    assert many == few, f"host syncs grow with the steps: {dict(few)} -> {dict(many)}"


# --------------------------------------------------------------------------- the benchmark

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")


def test_the_parity_benchmark_runs_and_the_drop_in_scores_are_scikit_learns(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("sklearn_parity",
                                                  ROOT / "benchmarks" / "sklearn_parity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.parity(["iris"], seeds=[0], dtype=np.float64)
    np.testing.assert_array_equal(rows[0]["drop-in"][:, 0], rows[0]["sklearn"][:, 0])
    bench.print_parity(rows, np.float64, 1)
    assert "| iris | accuracy |" in capsys.readouterr().out


def test_the_readme_parity_table_is_the_saved_benchmark_output():
    """Every number of the README's parity table comes from the saved run of the script."""
    saved = (ROOT / "benchmarks" / "results" / "sklearn_parity-cpu-numpy.md").read_text()
    float64 = saved.split("(float32")[0]
    expected = []
    for line in float64.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 12 and cells[0] in DATASETS:
            del cells[6], cells[2]  # epochs and split sizes are not in the README
            expected.append([c.replace("x", "×").replace("R^2", "R²") for c in cells])
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| data set | score | scikit-learn | drop-in | NNX |")[1].split("\n\n")[0]
    found = [[c.strip() for c in line.strip("|").split("|")]
             for line in table.strip().splitlines()[2:]]  # after the header and its rule
    assert expected and found == expected


def test_hand_set_parameters_predict_as_in_scikit_learn():
    """A model made by assigning its fitted attributes predicts without a fit, as scikit-learn's
    does (on any backend: host arrays are brought over)."""
    X, y = _data("multiclass")
    reference = sk.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    for backend in ("numpy", "torch"):
        if backend == "torch":
            pytest.importorskip("torch")
        ours = MLPClassifier(hidden_layer_sizes=(5,), backend=backend)
        for name in ("coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_",
                     "n_features_in_"):
            setattr(ours, name, getattr(reference, name))
        np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-9)
