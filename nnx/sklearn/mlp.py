"""Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``.

Same parameters, defaults, attributes, errors and training procedure as scikit-learn 1.9
(:mod:`.base`), plus ``backend`` and ``device``: with NumPy and float64 data they reproduce
scikit-learn's fit (``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_``) to rounding for
every solver, and ``backend="torch"`` / ``"cupy"`` train the same model on a GPU.
``MLPRegressor(loss="poisson")`` refuses negative targets (scikit-learn's trains on them into
a ``nan`` loss), with the sentence of scikit-learn's other Poisson estimators.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier as _SkClassifier
from sklearn.neural_network import MLPRegressor as _SkRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .base import BaseMLP

_EXTRA_CONSTRAINTS = {"backend": [str], "device": "no_validation"}

_PARAMETERS = """
    Parameters
    ----------
    Every parameter of scikit-learn's ``{name}``, same meaning and default, and:

    backend : {{"numpy", "torch", "cupy", "array_api_strict"}}, default "numpy"
        The array library that trains and runs the network (the dtype follows ``X``:
        float32 or float64, as scikit-learn's).
    device : optional
        ``"cuda:0"`` etc. (see :func:`nnx.get_context`).

    Attributes
    ----------
    As scikit-learn's (``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``t_``, ``coefs_``, ``intercepts_``,
    ``n_features_in_``, ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_``). ``coefs_`` and ``intercepts_`` are the arrays the model trains and
    predicts with (NumPy arrays on the default backend, the backend's arrays otherwise):
    editing or assigning them changes the model, as in scikit-learn.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    """scikit-learn's ``MLPClassifier`` (log-loss, LBFGS / SGD / Adam) on any nnx backend.
    {parameters}
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=500, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    __doc__ = __doc__.format(parameters=_PARAMETERS.format(name="MLPClassifier"))
    _parameter_constraints = {**_SkClassifier._parameter_constraints, **_EXTRA_CONSTRAINTS}
    _score_function = staticmethod(accuracy_score)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="numpy", device=None):
        super().__init__(
            loss="log_loss", hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend,
            device=device)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        # bool, not float: float32 data must not be upcast by its targets
        return X, self._label_binarizer.transform(y).astype(bool)

    def _output_to_prediction(self, y_pred):
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)`` (stochastic solvers only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), optional
        classes : array of shape (n_classes,), optional
            Every class; required on the first call.

        Returns
        -------
        self
        """
        if classes is None and getattr(self, "classes_", None) is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                                     f"partial_fit, was: {self.classes_!r}")
            else:
                self.classes_ = unique_labels(classes)
                self._label_binarizer = LabelBinarizer()
                multilabel = type_of_target(y).startswith("multilabel")
                self._label_binarizer.fit(y if multilabel else classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probability of each class, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """scikit-learn's ``MLPRegressor`` (squared error or Poisson loss) on any nnx backend.
    {parameters}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor(solver="lbfgs", random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    __doc__ = __doc__.format(parameters=_PARAMETERS.format(name="MLPRegressor"))
    _parameter_constraints = {**_SkRegressor._parameter_constraints, **_EXTRA_CONSTRAINTS}
    _score_function = staticmethod(r2_score)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="numpy", device=None):
        super().__init__(
            loss=loss, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend,
            device=device)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's MLP trains on such y into a nan loss; its Poisson estimators refuse
        # it, and so does this one, with their sentence
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        return X, y

    def _output_to_prediction(self, y_pred):
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    # scikit-learn's MLPRegressor offers partial_fit with every solver (with "lbfgs" it runs
    # a whole L-BFGS fit from the current weights); kept, as a drop-in must
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
