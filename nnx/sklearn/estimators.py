"""scikit-learn estimators backed by nnx networks: :class:`NNXClassifier`, :class:`NNXRegressor`.

They take scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` parameter names where the
concept is the same, train an :class:`nnx.Network` on any backend (NumPy, CuPy, torch,
array_api_strict) and give NumPy results to scikit-learn code, so they work in ``Pipeline``,
``GridSearchCV``, ``cross_val_score`` and ``clone``, and pass
``sklearn.utils.estimator_checks.check_estimator`` with no expected failures.

What matches scikit-learn's MLP, on purpose
-------------------------------------------
- The objective: the per-sample loss summed over outputs, averaged over samples with
  ``sample_weight`` (:math:`\\sum_i w_i \\ell_i / \\sum_i w_i`), plus
  :math:`\\frac{\\alpha}{2 B_w} \\sum \\lVert W \\rVert^2` where :math:`B_w` is the weight of a
  batch. Regression minimizes *half* the squared error, as scikit-learn does, so ``loss_``
  and ``learning_rate_init`` mean the same thing in both.
- The initialization: :math:`U(\\pm\\sqrt{6 / (n_{in} + n_{out})})` (Glorot uniform; factor 2
  instead of 6 for ``activation="logistic"``). Biases start at zero (scikit-learn draws them
  from the same uniform).
- The training loop: ``batch_size="auto"`` is ``min(200, n_samples)``; each epoch reshuffles
  (``shuffle``); training stops when the training loss (or, with ``early_stopping``, the
  validation score, accuracy or :math:`R^2` on a ``validation_fraction`` hold-out, stratified
  for classifiers) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs;
  ``early_stopping`` restores the best weights; a ``ConvergenceWarning`` says when
  ``max_iter`` epochs ran out first.
- ``solver="adam"`` / ``"sgd"`` use :class:`nnx.optimizers.Adam` / :class:`~nnx.optimizers.SGD`
  with ``beta_1``, ``beta_2``, ``epsilon``, ``momentum`` and ``nesterovs_momentum``
  (scikit-learn's momentum update equals torch's for a constant rate).
- ``learning_rate="constant" | "invscaling" | "adaptive"`` and ``power_t``, for
  ``solver="sgd"`` only (as scikit-learn): after each epoch the rate becomes
  :math:`\\eta_0 / (t + 1)^{p}` (``t`` samples seen), or is divided by 5 where the stopping
  rule would stop, until it is at most 1e-6. ``n_iter_no_change=np.inf`` never stops on
  ``tol``.
- ``solver="lbfgs"``: :class:`nnx.optimizers.LBFGS`, the whole run one full-batch epoch of
  ``Network.fit``, at most ``max_iter`` iterations and ``max_fun`` objective evaluations
  (a ``ConvergenceWarning`` names the limit that ended it); no ``partial_fit`` and no early
  stopping, as in scikit-learn.
- Sparse ``X`` (CSR, CSC) in ``fit``, ``partial_fit`` and the predictions: rows are made
  dense a group of batches at a time (:mod:`nnx.sklearn.sparse`); only ``solver="lbfgs"``,
  a full-batch method, makes the whole ``X`` dense.
- ``NNXRegressor(loss="squared_error" | "poisson")``; a classifier fitted on one class
  predicts it; early stopping on a diverging fit keeps the best weights and records a
  ``nan`` score; scikit-learn's error sentences start the messages.

Where nnx differs
-----------------
- ``alpha``: nnx's penalty is set once per ``fit`` from the full batch size, so the last,
  smaller batch of an epoch is penalised with the full-batch strength (scikit-learn divides
  by that batch's own size). Identical when the batch size divides ``n_samples``.
- Adam's ``epsilon`` sits where torch puts it, which equals scikit-learn's rule with
  :math:`\\epsilon / \\sqrt{1 - \\beta_2^t}` (:class:`nnx.optimizers.Adam`).
- Multi-output regression: the objective is half the squared error *summed* over outputs;
  that is the function scikit-learn's gradient differentiates (its reported ``loss_`` is the
  mean over outputs instead, so ``loss_`` is ``n_outputs`` times larger here).
- ``solver``/``optimizer`` accept any nnx optimizer (``"rmsprop"``, ``"adamw"``, an
  :class:`~nnx.optimizers.Optimizer` instance...); for schedules beyond scikit-learn's
  three, pass an optimizer with a schedule from :mod:`nnx.schedules`.
- ``solver="lbfgs"``'s ``tol`` is relative to the starting gradient (see ``_fit_lbfgs``),
  where scikit-learn's is absolute.
- ``coefs_`` / ``intercepts_`` are the model's arrays on the NumPy backend (as
  scikit-learn's) and NumPy copies on the others; assigning a list sets the weights.
- ``sample_weight`` is checked by scikit-learn's rules and messages (a scalar weighs every
  row alike) and must also be non-negative: a negative weight makes the objective unbounded
  below, and nnx's training loop refuses it.
- Extra parameters: ``dropout``, ``batch_norm``, ``backend``, ``device``, ``dtype``.
- ``dtype=None`` follows scikit-learn: float32 when ``X`` is float32, float64 otherwise.
  ``dtype="float32"`` is the fast choice (and what nnx networks use by default).

check_estimator
---------------
Both estimators pass every check of ``check_estimator`` (scikit-learn 1.9) with their default
parameters and no expected-failure list (``tests/test_sklearn.py`` runs them all, on the
numpy backend). Two checks report "skipped", by scikit-learn's own rules: the multilabel ``decision_function``
format check (there is no ``decision_function``: the network's outputs are probabilities)
and ``check_array_api_input``, which runs only with ``SCIPY_ARRAY_API=1`` (it passes then).

Why ``dtype=None`` (float64 for float64 data) is the default: with ``dtype="float32"`` every
check passes except three that compare results at float64 precision:
``check_sample_weight_equivalence_on_dense_data`` for both estimators (``rtol=1e-7`` between
a weighted fit and a fit on repeated rows; float32 rounding differs by ~1e-7 relative after
200 Adam steps) and ``check_regressor_multioutput`` (it requires float64 predictions). The
float32 results are right; they are float32.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .. import metrics
from .. import optimizers as _optimizers
from ..backend import to_device, to_numpy
from ..callbacks import Callback
from ..data import TargetEncoder
from ..layers import Activation, BatchNorm, Dense, Dropout
from ..losses import Loss
from ..losses import get as _get_loss
from ..network import DivergenceError, Network
from ..regularizers import L2
from ..checks import check_choice, check_number, check_sample_weight, check_targets
from .sparse import SparseRows, as_source

__all__ = ["NNXClassifier", "NNXRegressor"]

_SCHEDULES = ("constant", "invscaling", "adaptive")
#: scikit-learn's "adaptive" schedule stops training once the rate is this small
_SMALLEST_ADAPTIVE_RATE = 1e-6


def _logistic_uniform(shape, rng):
    """scikit-learn's initialization for logistic units,
    :math:`U(\\pm\\sqrt{2/(n_{in}+n_{out})})`."""
    limit = math.sqrt(2.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


class _SklearnObjective(Loss):
    r"""scikit-learn's MLP objective around an nnx loss.

    .. math:: L = \frac{c}{\sum_i w_i} \sum_i w_i \sum_j \ell(z_{ij}, y_{ij})

    with :math:`c = 1/2` for the squared error (scikit-learn minimizes half of it) and
    :math:`c = 1` for the cross-entropies: binary, softmax, and multilabel (a sum of binary
    cross-entropies over labels). Unweighted, :math:`\sum_i w_i = n`.
    """

    def __init__(self, base: str):
        self.base = _get_loss(base)
        self.name = f"sklearn_{self.base.name}"
        self.task = self.base.task
        self.link = self.base.link
        self.scale = 0.5 if self.base.name == "mse" else 1.0

    def value_and_grad(self, xp, z, y, weight=None):
        l, dl = self.base.terms(xp, z, y)
        if weight is None:
            s = self.scale / z.shape[0]
            return xp.sum(l) * s, dl * s
        s = self.scale / xp.sum(weight)
        return xp.sum(weight * l) * s, (weight * s) * dl

    def get_config(self):
        return {"base": self.base.name}


class _SklearnStopping(Callback):
    """scikit-learn's epoch bookkeeping, learning-rate schedule and stopping rule, as a
    callback of ``Network.fit``.

    Appends to ``loss_curve_`` (and ``validation_scores_``), counts epochs without an
    improvement of ``tol`` and stops training once the count exceeds ``n_iter_no_change``
    (with the ``"adaptive"`` schedule the rate is divided by 5 instead, until it is at most
    1e-6). With ``"invscaling"`` the rate of the next epoch is
    :math:`\\eta_0 / (t + 1)^{p}`, ``t`` the samples seen. With a validation set it keeps a
    copy of the best weights. One counter decides both the rate and the stop, as in
    scikit-learn, so the schedule lives here rather than in
    :class:`~nnx.callbacks.ReduceLROnPlateau`.
    """

    def __init__(self, estimator, n_train, validation=None, stop=True):
        self.est = estimator
        self.n_train = n_train
        self.validation = validation  # (X_val on device or SparseRows, y_val host, weights)
        self.stop = stop
        self.best_snapshot = None
        self.stopped = False

    def on_train_begin(self, logs=None):
        if self.validation is not None:  # a fit diverging at once keeps its starting weights
            self.best_snapshot = self.network.snapshot()

    def on_epoch_end(self, epoch, logs=None):
        est = self.est
        self.record(float(logs["loss"]))
        if self.validation is not None:
            score = self.validation_score()
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_snapshot = self.network.snapshot()
        else:
            loss = est.loss_
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, loss)
        optimizer = self.network.optimizer
        schedule = est._schedule()
        if schedule == "invscaling":
            optimizer.learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            message = (f"{what} did not improve more than tol={est.tol:f} for "
                       f"{est.n_iter_no_change} consecutive epochs.")
            if schedule == "adaptive" and optimizer.learning_rate > _SMALLEST_ADAPTIVE_RATE:
                optimizer.learning_rate = optimizer.learning_rate / 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{message} Setting learning rate to {optimizer.learning_rate:f}")
            elif self.stop:
                if est.verbose:
                    print(f"{message} " + ("Learning rate too small. Stopping."
                                           if schedule == "adaptive" else "Stopping."))
                self.stopped = True
                self.network.stop_training = True

    def record(self, loss):
        """One epoch's loss in the estimator's attributes (``nan`` for a diverged one)."""
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")

    def validation_score(self):
        """The estimator's score on the validation rows; ``nan`` when the network's outputs
        are not finite (a diverging fit), as scikit-learn scores it."""
        X_val, y_val, w_val = self.validation
        try:
            y_pred = self.network.predict(X_val)
        except ValueError:  # Network.predict refuses NaN / inf outputs with a ValueError
            return math.nan
        return self.est._score_predictions(y_val, y_pred, w_val)

    def diverged(self):
        """Training stopped on a NaN / inf epoch: with a validation set, record it as
        scikit-learn does (a ``nan`` loss and score) and report True (the best weights
        are restored next); without one, False (the fit fails)."""
        if self.validation is None:
            return False
        self.record(math.nan)
        self.est.validation_scores_.append(math.nan)
        return True


class _NNXBase(BaseEstimator):
    """Shared parameters, training loop and (un)pickling of the two estimators."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 optimizer=None, alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, backend="numpy", device=None, dtype=None):
        # scikit-learn's contract: __init__ stores the parameters untouched; they are
        # validated at fit (so clone and set_params always work).
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ parameters

    def _check_params(self):
        """Validate every hyperparameter; ValueError naming the parameter and its range."""
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(
                f"hidden_layer_sizes must be an int or a sequence of positive ints; got {sizes!r}"
            ) from None
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"hidden_layer_sizes must be positive integers; got {sizes!r}")
        self._hidden = [int(s) for s in sizes]
        check_number("alpha", self.alpha, low=0)
        check_number("learning_rate_init", self.learning_rate_init, low=0, low_open=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0)
        # below 1, where scikit-learn takes 1 too: nnx's SGD (torch's update) refuses a
        # momentum that never lets go of an old gradient
        check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        # 0 as scikit-learn allows it, where no rows are held out; early stopping needs some
        check_number("validation_fraction", self.validation_fraction, low=0, high=1,
                     low_open=bool(self.early_stopping), high_open=True)
        check_number("beta_1", self.beta_1, low=0, high=1, high_open=True)
        check_number("beta_2", self.beta_2, low=0, high=1, high_open=True)
        check_number("epsilon", self.epsilon, low=0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and self.n_iter_no_change == math.inf):  # inf: never stop on tol
            check_number("n_iter_no_change", self.n_iter_no_change, low=1, integer=True)
        check_choice("learning_rate", self.learning_rate, _SCHEDULES)
        check_number("power_t", self.power_t, low=0)
        check_number("max_fun", self.max_fun, low=1, integer=True)
        check_number("dropout", self.dropout, low=0, high=1, high_open=True)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_number("batch_size", self.batch_size, low=1, integer=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping",
                     "batch_norm"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {value!r}")
        if self.dtype is not None:
            check_choice("dtype", self.dtype, ("float32", "float64"))
        if not (self.random_state is None
                or isinstance(self.random_state, np.random.RandomState)):
            check_number("random_state", self.random_state, low=0, high=2**32 - 1, integer=True)
        from .. import activations as _activations

        if not isinstance(self.activation, str):
            raise ValueError(f"activation must be a name such as 'relu'; got {self.activation!r}")
        _activations.get(self.activation)  # unknown names raise a ValueError listing the known
        self._make_optimizer()  # unknown solver / optimizer names fail here, before any data

    def _make_optimizer(self):
        """A fresh optimizer for one fit (the parameter itself is never mutated)."""
        choice = self.solver if self.optimizer is None else self.optimizer
        what = "solver" if self.optimizer is None else "optimizer"
        if isinstance(choice, _optimizers.Optimizer):
            return copy.deepcopy(choice)
        if not isinstance(choice, str):
            raise ValueError(
                f"{what} must be an optimizer name or an nnx Optimizer; got {choice!r}")
        name = choice.lower()
        lr = float(self.learning_rate_init)
        if name == "adam":
            return _optimizers.Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2,
                                    epsilon=self.epsilon)
        if name == "sgd":
            momentum = float(self.momentum)
            return _optimizers.SGD(lr, momentum=momentum,
                                   nesterov=bool(self.nesterovs_momentum) and momentum > 0)
        if name == "lbfgs":
            # one Network.fit epoch is the whole L-BFGS run, with scikit-learn's limits:
            # max_iter iterations, max_fun evaluations (tol: see _fit_lbfgs)
            return _optimizers.LBFGS(1.0, max_iter=int(self.max_iter),
                                     max_eval=int(self.max_fun), tolerance_grad=float(self.tol))
        try:
            return _optimizers.get(name, lr)
        except ValueError as exc:  # name the parameter the user set
            raise ValueError(f"{what}={choice!r}: {exc}") from None

    def _lbfgs(self):
        """Whether this fit is scikit-learn's ``solver="lbfgs"`` (full batch, one epoch)."""
        choice = self.solver if self.optimizer is None else self.optimizer
        return isinstance(choice, str) and choice.lower() == "lbfgs"

    def _schedule(self):
        """The ``learning_rate`` schedule in effect: scikit-learn applies it to ``"sgd"`` only."""
        sgd = self.optimizer is None and isinstance(self.solver, str) and self.solver == "sgd"
        return self.learning_rate if sgd else "constant"

    def _check_solver(self):
        """``partial_fit`` exists for the stochastic solvers only, as in scikit-learn."""
        if self._lbfgs():
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "lbfgs is not stochastic.")
        return True

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", UserWarning, stacklevel=3)
        return int(np.clip(self.batch_size, 1, n_samples))

    def _seed(self, rs):
        """nnx seed of this fit: ``random_state`` itself when it is an int."""
        if isinstance(self.random_state, numbers.Integral) and not isinstance(
                self.random_state, bool):
            return int(self.random_state)
        return int(rs.randint(np.iinfo(np.int32).max))

    # ------------------------------------------------------------------ the network

    def _make_network(self, n_features, n_outputs, objective, seed, l2, dtype):
        act = self.activation
        init = _logistic_uniform if act in ("logistic", "sigmoid") else "glorot_uniform"
        layers = []
        for units in self._hidden:
            if self.batch_norm:
                layers += [Dense(units, kernel_initializer=init), BatchNorm(), Activation(act)]
            else:
                layers.append(Dense(units, activation=act, kernel_initializer=init))
            if self.dropout:
                layers.append(Dropout(float(self.dropout)))
        layers.append(Dense(n_outputs, kernel_initializer=init))
        # one L2 object shared by every kernel, so each fit can set its strength
        penalty = L2(l2)
        for layer in layers:
            if isinstance(layer, Dense):
                layer.kernel_regularizer = penalty
        return Network(layers, input_dim=n_features, loss=objective,
                       optimizer=self._make_optimizer(), backend=self.backend,
                       device=self.device, dtype=dtype, seed=seed)

    @staticmethod
    def _penalty(net):
        return next(layer.kernel_regularizer for layer in net.layers if isinstance(layer, Dense))

    def _set_l2(self, net, l2):
        """The penalty strength of this fit (it depends on the batch weight, see above)."""
        self._penalty(net).l2 = l2

    def _dense_params(self, key):
        """Name -> array of parameter ``key`` (``"W"`` or ``"b"``) of every Dense layer."""
        return {f"{name}.{key}": layer.params[key]
                for name, layer in self.network_.named_layers() if isinstance(layer, Dense)}

    def _get_weights(self, key, pending):
        if "network_" not in vars(self) and pending in vars(self):
            return vars(self)[pending]  # assigned before any fit: the list as given
        check_is_fitted(self)
        return [to_numpy(a) for a in self._dense_params(key).values()]

    def _set_weights(self, key, pending, arrays):
        if "network_" not in vars(self):  # the next partial_fit (or warm fit) starts here
            vars(self)[pending] = arrays
            return
        names = list(self._dense_params(key))
        if len(arrays) != len(names):
            raise ValueError(f"this network has {len(names)} Dense layers; got "
                             f"{len(arrays)} arrays")
        self.network_.set_parameters(dict(zip(names, arrays)))

    @property
    def coefs_(self):
        """Weight matrices of the Dense layers, shape ``(in, out)``: the model's own arrays on
        the NumPy backend (editing one in place edits the model), NumPy copies on the others.
        Assigning a list sets the weights (before a fit: the weights the next ``partial_fit``
        or warm-started ``fit`` starts from, as in scikit-learn)."""
        return self._get_weights("W", "_coefs_assigned")

    @coefs_.setter
    def coefs_(self, arrays):
        self._set_weights("W", "_coefs_assigned", arrays)

    @property
    def intercepts_(self):
        """Bias vectors of the Dense layers, shape ``(out,)``; as :attr:`coefs_`."""
        return self._get_weights("b", "_intercepts_assigned")

    @intercepts_.setter
    def intercepts_(self, arrays):
        self._set_weights("b", "_intercepts_assigned", arrays)

    def _install_assigned_weights(self):
        """Weights assigned to ``coefs_`` / ``intercepts_`` before the first fit."""
        for key, pending in (("W", "_coefs_assigned"), ("b", "_intercepts_assigned")):
            arrays = vars(self).pop(pending, None)
            if arrays is not None:
                self._set_weights(key, pending, arrays)

    @property
    def _optimizer(self):
        """The optimizer of the fitted network (scikit-learn's name for it); its
        ``learning_rate`` is the current rate."""
        check_is_fitted(self)
        return self.network_.optimizer

    # ------------------------------------------------------------------ input

    @staticmethod
    def _host(X):
        """Arrays of other backends (torch, CuPy...) come to the host before validation."""
        if X is not None and hasattr(X, "__dlpack__") and not isinstance(X, np.ndarray):
            return to_numpy(X)
        return X

    def _validate_input(self, X, y, reset):
        X, y = validate_data(self, self._host(X), self._host(y), multi_output=True,
                             accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32),
                             reset=reset, y_numeric=not is_classifier(self))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _validate_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, self._host(X), accept_sparse=("csr", "csc"),
                          dtype=(np.float64, np.float32), reset=False)
        return as_source(X)  # sparse rows are made dense a chunk at a time

    def _check_sample_weight(self, sample_weight, X):
        """scikit-learn's check (a scalar is every row's weight; its messages), plus nnx's
        rule that weights are non-negative (a negative weight would make the objective
        unbounded below)."""
        sample_weight = _check_sample_weight(self._host(sample_weight), X, dtype=np.float64,
                                             ensure_non_negative=True)
        return check_sample_weight(sample_weight, X.shape[0])

    # ------------------------------------------------------------------ training

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        self._check_params()
        first = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = self._validate_input(X, y, reset=first)
        if sample_weight is not None:
            sample_weight = self._check_sample_weight(sample_weight, X)
        objective, n_outputs = self._targets(y, first, incremental, classes)
        rs = check_random_state(self.random_state)
        lbfgs = self._lbfgs()
        validation = None
        X_train, y_train, w_train = X, y, sample_weight
        if self.early_stopping and not lbfgs:  # L-BFGS ignores it, as scikit-learn's
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=rs,
                                     test_size=self.validation_fraction,
                                     stratify=self._stratify(y))
            X_train, X_val, y_train, y_val = parts[:4]
            w_train, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        n_train = X_train.shape[0]
        batch_size = n_train if lbfgs else self._batch_size(n_train)
        # sklearn's alpha / (2 * batch weight) as nnx's L2 strength (see module docstring)
        batch_weight = batch_size * (1.0 if w_train is None else float(np.mean(w_train)))
        l2 = float(self.alpha) / (2.0 * batch_weight)
        if first:
            self._fit_dtype = self.dtype or ("float32" if X.dtype == np.float32 else "float64")
            net = self._make_network(X.shape[1], n_outputs, objective, self._seed(rs), l2,
                                     self._fit_dtype)
            net.targets_ = self._target_encoder(objective, n_outputs, y, classes)
            self.network_ = net
            self._init_fitted_attributes(n_outputs)
            if incremental or self.warm_start:
                self._install_assigned_weights()
        elif not incremental:
            # a warm-started fit starts a fresh optimizer (this fit's parameters) on the
            # current weights, as scikit-learn's
            net = self.network_
            net.optimizer = self._make_optimizer()
            with net.ctx.scope():
                net.optimizer.build(net.parameters(), net.ctx)
        net = self.network_
        self._set_l2(net, l2)
        if not lbfgs and not hasattr(self, "loss_curve_"):  # warm, after solver="lbfgs"
            self._init_curve()
        if self.early_stopping and not lbfgs:
            validation = (as_source(X_val) if scipy.sparse.issparse(X_val)
                          else to_device(X_val, net.ctx), y_val, w_val)
            if self.validation_scores_ is None:  # early_stopping switched on for a warm fit
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
        elif not lbfgs and self.best_loss_ is None:  # ...or switched off
            self.best_loss_ = np.inf
        self.n_iter_ = 0
        monitor = _SklearnStopping(self, n_train, validation, stop=not incremental)
        fit_kwargs = {} if w_train is None else {"sample_weight": w_train}
        source = as_source(X_train, y_train)
        try:
            if lbfgs:
                self._fit_lbfgs(X_train, y_train, w_train)
            else:
                net.fit(source, None if source is not X_train else y_train,
                        epochs=1 if incremental else int(self.max_iter),
                        batch_size=batch_size, shuffle=bool(self.shuffle),
                        callbacks=[monitor], **fit_kwargs)
        except DivergenceError as exc:  # scikit-learn's MLP raises a ValueError here...
            if not monitor.diverged():  # ...unless early stopping has weights to go back to
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may "
                    f"contain large values and need to be preprocessed. {exc}") from exc
        if monitor.best_snapshot is not None:
            keep_random = net.random.state()
            net.restore(monitor.best_snapshot)  # best weights, as sklearn's early stopping
            net.random.set_state(keep_random)
        if (not incremental and not lbfgs and not monitor.stopped
                and self.n_iter_ == self.max_iter):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=3)
        return self

    def _fit_lbfgs(self, X, y, sample_weight):
        """``solver="lbfgs"``: one full-batch epoch of :class:`nnx.optimizers.LBFGS`, then
        scikit-learn's attributes and its ``ConvergenceWarning`` when ``max_iter`` or
        ``max_fun`` ended the run.

        ``tol`` is relative here: the run has converged once the largest gradient entry is
        ``tol`` times its value at the start (scikit-learn's is absolute, ``gtol=tol``; a
        relative test does not stop on the flat start that nnx's zero biases give logistic
        units), or when an iteration changes the loss or the parameters by less than
        ``min(tol, 1e-9)``.
        """
        net = self.network_
        optimizer = net.optimizer
        # a full-batch method needs every row at once: the data go to the device once, for
        # the starting gradient, the fit and the final objective
        Xd = net.prepare(X.toarray() if scipy.sparse.issparse(X) else X)
        with net.ctx.scope():
            Yd = net.encode_targets(y, X.shape[0])
            wd = None if sample_weight is None else net.ctx.asarray(
                np.asarray(sample_weight, dtype=net.ctx.dtype_name).reshape(-1, 1))
            _, grads = net.objective_and_gradients(Xd, Yd, wd)
            largest = max(float(net.ctx.xp.max(net.ctx.xp.abs(g))) for g in grads.values())
        optimizer.tolerance_grad = float(self.tol) * largest
        optimizer.tolerance_change = min(float(self.tol), 1e-9)
        fit_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        net.fit(Xd, y, epochs=1, batch_size=None, shuffle=False, **fit_kwargs)
        with net.ctx.scope():
            self.loss_ = float(net.objective(Xd, Yd, False, wd))  # the epoch logs the start's
        self.n_iter_ = optimizer.n_iter  # t_ stays as it was, as scikit-learn's L-BFGS
        if self.verbose:
            print(f"L-BFGS: {self.n_iter_} iterations, {optimizer.func_evals} evaluations, "
                  f"loss = {self.loss_:.8f}")
        limit = ("max_iter" if optimizer.n_iter >= self.max_iter else
                 "max_fun" if optimizer.func_evals >= self.max_fun else None)
        if limit is not None:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s): {limit} "
                f"(max_iter={self.max_iter}, max_fun={self.max_fun}) reached. Increase it, "
                "or scale the data (https://scikit-learn.org/stable/modules/preprocessing.html)",
                ConvergenceWarning, stacklevel=4)

    def _target_encoder(self, objective, n_outputs, y, classes):
        """The network's targets, learned from the first fit's ``y`` (or ``classes``)."""
        return TargetEncoder(objective.task, n_outputs).fit(y, classes=classes)

    def _stratify(self, y):
        """What the early-stopping split is stratified on (``None``: not stratified)."""
        return None

    def _init_fitted_attributes(self, n_outputs):
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self._hidden) + 2
        self.t_ = 0
        self.loss_ = None
        if not self._lbfgs():  # scikit-learn's L-BFGS keeps no curve and no best values
            self._init_curve()

    def _init_curve(self):
        """The epoch bookkeeping of the stochastic solvers (``loss_curve_``, ``best_loss_``,
        ``validation_scores_``, ``best_validation_score_``)."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Train for up to ``max_iter`` epochs (a new network unless ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, pandas, or an array of any nnx backend (brought to the host for
            validation, then moved to ``backend`` once).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or float, optional
            Non-negative, not all zero (a float weighs every row alike).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # ------------------------------------------------------------------ pickling

    def __getstate__(self):
        # A Network holds its array namespace (a module) and device arrays: pickle a host
        # snapshot of it instead and rebuild on load, on the same backend. The architecture
        # is the one built at fit (the network's own config), not the current parameters:
        # set_params after fit must not change what a pickle or deepcopy brings back.
        state = dict(super().__getstate__())  # a copy: the live __dict__ stays intact
        net = state.pop("network_", None)
        if net is not None:
            snapshot = net.snapshot()
            config = net.get_config()  # fresh, unbuilt layers and optimizer
            state["_network_state"] = {
                "config": {k: v for k, v in config.items()
                           if k not in ("optimizer", "input_dim")},
                "n_features": net.input_dim,
                "optimizer": config["optimizer"],
                "optimizer_state": net.optimizer.state_dict(),
                "backend": net.ctx.name,
                "device": net.ctx.device_name,
                "arrays": {k: to_numpy(v) for k, v in snapshot["arrays"].items()},
                "random": snapshot["random"],
                "targets": net.targets_,
                "l2": self._penalty(net).l2,
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_network_state", None)
        super().__setstate__(state)
        if saved is None:
            return
        # no _check_params here: the current settings may have changed since the fit
        net = Network(**saved["config"], optimizer=saved["optimizer"],
                      backend=saved["backend"], device=saved["device"])
        # fresh() gave each Dense layer its own L2: share one again, so that _set_l2 sets
        # the strength of every kernel at the next fit
        penalty = L2(saved["l2"])
        for _, layer in net.named_layers():
            if isinstance(layer, Dense):
                layer.kernel_regularizer = penalty
        net.build(saved["n_features"])
        ctx = net.ctx

        def device_array(a):
            dtype = ctx.dtype if a.dtype.kind == "f" else getattr(ctx.xp, a.dtype.name)
            return ctx.asarray(a, dtype=dtype)

        with ctx.scope():
            net.restore({"arrays": {k: device_array(v) for k, v in saved["arrays"].items()},
                         "random": saved["random"]})
            net.optimizer.load_state_dict(saved["optimizer_state"])
        net.targets_ = saved["targets"]
        self.network_ = net


class _OneClass(TargetEncoder):
    """Targets of a classifier fitted on one class (scikit-learn fits those too): one
    sigmoid output trained towards 0, and every prediction is that class."""

    def __init__(self, label):
        super().__init__("binary", 1)
        self.kind = "binary"
        self.classes_ = np.asarray([label])

    def decode(self, proba_positive_or_scores, xp):
        p = proba_positive_or_scores
        return xp.zeros((p.shape[0],), dtype=xp.int64, device=p.device)


class NNXClassifier(ClassifierMixin, _NNXBase):
    """A multi-layer perceptron classifier with scikit-learn's ``MLPClassifier`` interface.

    Binary targets get one sigmoid output, ``k`` classes a softmax over ``k`` logits, 2-D 0/1
    targets (multilabel) independent sigmoids. Labels may be of any sortable type; ``predict``
    returns them in that type and ``predict_proba``'s columns follow ``classes_``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer.
    activation : str, default "relu"
        ``"identity"``, ``"logistic"``, ``"tanh"``, ``"relu"`` (scikit-learn's names) or any
        nnx activation (``"gelu"``, ``"elu"``, ...).
    solver : str or Optimizer, default "adam"
        ``"adam"``, ``"sgd"``, ``"lbfgs"`` or any :mod:`nnx.optimizers` name or instance.
    optimizer : str or Optimizer, optional
        Alias of ``solver`` (nnx's name); takes precedence when given.
    alpha : float >= 0, default 1e-4
        L2 penalty :math:`\\frac{\\alpha}{2 B} \\sum \\lVert W \\rVert^2` (``B``: batch size).
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        scikit-learn's schedules, for ``solver="sgd"``.
    learning_rate_init : float > 0, default 1e-3
    power_t : float >= 0, default 0.5
        Exponent of ``"invscaling"``.
    max_iter : int >= 1, default 200
        Epochs (``partial_fit`` runs one); L-BFGS iterations with ``solver="lbfgs"``.
    shuffle : bool, default True
    random_state : int, RandomState or None
        An int is the nnx ``seed`` (same initial weights and batch order on every backend).
    tol : float >= 0, default 1e-4
    verbose : bool, default False
        Print the loss of every epoch.
    warm_start : bool, default False
        ``fit`` continues from the current weights (same classes required).
    momentum : float in [0, 1), default 0.9
        SGD momentum (scikit-learn also takes 1, a momentum that never decays; nnx's SGD
        does not).
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` (stratified), stop on its accuracy, keep the best
        weights.
    validation_fraction : float in [0, 1), default 0.1
        Above 0 with ``early_stopping``; unused without it.
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
        Adam's moment decays.
    epsilon : float > 0, default 1e-8
    n_iter_no_change : int >= 1 or np.inf, default 10
    max_fun : int >= 1, default 15000
        Objective evaluations of ``solver="lbfgs"``.
    dropout : float in [0, 1), default 0
        Dropout after every hidden layer (nnx).
    batch_norm : bool, default False
        BatchNorm between every hidden Dense layer and its activation (nnx).
    backend : {"numpy", "torch", "cupy", "array_api_strict"}, default "numpy"
    device : optional
        ``"cuda:0"`` etc.; see :func:`nnx.get_context`.
    dtype : {"float32", "float64"} or None, default None
        ``None``: float32 for float32 ``X``, float64 otherwise (scikit-learn's rule).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
        Objective of the last epoch (penalty included).
    loss_curve_ : list of float
        Not with ``solver="lbfgs"`` (as scikit-learn's), nor the next three.
    best_loss_ : float or None
        ``None`` with ``early_stopping``.
    validation_scores_ : list of float or None
        Validation accuracy of every epoch with ``early_stopping``, else ``None``.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last ``fit`` (L-BFGS iterations with ``solver="lbfgs"``).
    t_ : int
        Training samples seen by the stochastic solvers (0 after ``solver="lbfgs"``, as in
        scikit-learn).
    coefs_, intercepts_ : list of ndarray
        Every Dense layer's ``W`` ``(in, out)`` and ``b`` ``(out,)``: the model's arrays on
        the NumPy backend, NumPy copies on the others; assigning a list sets them.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When ``X`` had column names.
    n_layers_, n_outputs_ : int
    out_activation_ : {"logistic", "softmax"}
    network_ : nnx.Network
        The trained network (use it for nnx's own tools: plotting, saving...).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NNXClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def _targets(self, y, first, incremental, classes):
        """Check classifier targets; on the first fit choose the output layer and loss."""
        check_targets(y, y.shape[0])  # None / NaN labels get a clear message
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"y is {kind}: NNXClassifier takes 1-D labels (binary or multi-class) or a 2-D "
                "0/1 indicator matrix (multilabel); a 2-D y must contain only 0 and 1"
            )
        if classes is not None:
            classes = np.unique(self._host(classes))
        if not first:
            if classes is not None and not np.array_equal(classes, self.classes_):
                raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                                 f"partial_fit, was: {self.classes_!r}")
            multilabel = self.network_.targets_.kind == "multilabel"
            if multilabel != (kind == "multilabel-indicator") or (
                    multilabel and y.shape[1] != self.n_outputs_):
                detail = (f"y of type {kind} and shape {y.shape} does not fit this "
                          f"classifier, fitted on {self.network_.targets_.kind} targets")
                if not multilabel:  # scikit-learn's LabelBinarizer sentences first
                    detail = f"The object was not fitted with multilabel input. {detail}"
                elif kind == "multilabel-indicator":
                    detail = (f"classes {self.classes_} mismatch with the labels "
                              f"{np.arange(y.shape[1])} found in the data. {detail}")
                raise ValueError(detail)
            if multilabel:
                return self.network_.loss_, self.n_outputs_
            seen = np.unique(y)
            unseen = np.setdiff1d(seen, self.classes_)
            if self.warm_start and not incremental and not np.array_equal(seen, self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {self.classes_}, "
                                 f"`y` has {seen}")
            if unseen.size:
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {seen}. Pass every class with "
                    "partial_fit(..., classes=...) on the first call"
                )
            return self.network_.loss_, self.n_outputs_
        if kind == "multilabel-indicator":
            return _SklearnObjective("binary_crossentropy"), y.shape[1]
        present = np.unique(y)
        labels = present if classes is None else classes
        if classes is not None and np.setdiff1d(present, classes).size:
            raise ValueError(f"y has labels {np.setdiff1d(present, classes)!r} that are not in "
                             f"classes={classes!r}")
        if labels.shape[0] <= 2:  # one class is fitted too, as by scikit-learn
            return _SklearnObjective("binary_crossentropy"), 1
        return _SklearnObjective("categorical_crossentropy"), labels.shape[0]

    def _target_encoder(self, objective, n_outputs, y, classes):
        labels = np.unique(y if classes is None else self._host(classes))
        if y.ndim == 1 and labels.shape[0] == 1:
            return _OneClass(labels[0])
        return super()._target_encoder(objective, n_outputs, y, classes)

    def _stratify(self, y):
        if y.ndim != 1:
            return None  # multilabel targets are not stratified, as in scikit-learn
        labels = np.unique(y)
        # two classes as scikit-learn's encoded 0/1 column: the same split, and a split
        # that cannot be stratified names the classes as scikit-learn does
        return (y == labels[-1]).reshape(-1, 1) if labels.shape[0] == 2 else y

    def _init_fitted_attributes(self, n_outputs):
        super()._init_fitted_attributes(n_outputs)
        self.classes_ = self.network_.classes_
        kind = self.network_.targets_.kind
        self.out_activation_ = "softmax" if kind == "multiclass" else "logistic"

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,) or float, optional
            Non-negative, not all zero (a float weighs every row alike).
        classes : array-like, optional
            Every class label, needed on the first call when that chunk lacks some classes
            (a later chunk with a label not in ``classes_`` is refused).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    def _score_predictions(self, y, y_pred, sample_weight):
        return metrics.accuracy_score(y, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Labels, in the type of ``classes_``; a 0/1 matrix for multilabel targets.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        X = self._validate_X(X)
        return np.asarray(self.network_.predict(X))

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``[1 - p, p]`` for binary targets; one independent probability per label for
            multilabel targets.
        """
        X = self._validate_X(X)
        return to_numpy(self.network_.predict_proba(X))

    def predict_log_proba(self, X):
        r"""Logarithm of :meth:`predict_proba`: ``log(p)`` wherever ``p > 0`` (so that both
        rank the classes alike), and from the logits where ``p`` underflows to 0, so it stays
        finite there: log-softmax :math:`z - \mathrm{lse}(z)`, and
        :math:`\log\sigma(z) = -\mathrm{softplus}(-z)` for sigmoid outputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        X = self._validate_X(X)
        chunks = X.chunks() if isinstance(X, SparseRows) else [X]
        with self.network_.ctx.scope():
            return np.concatenate([to_numpy(self._log_proba_device(Xc)) for Xc in chunks])

    def _log_proba_device(self, X):
        net = self.network_
        xp = net.ctx.xp
        z = net.forward(to_device(X, net.ctx))
        p = net.loss_.link.forward(xp, z)
        if net.targets_.kind == "multiclass":
            shifted = z - xp.max(z, axis=1, keepdims=True)
            from_logits = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        else:
            soft = xp.log1p(xp.exp(-xp.abs(z)))
            from_logits = -(xp.maximum(-z, 0.0) + soft)
            if net.targets_.kind == "binary":
                from_logits = xp.concat([-(xp.maximum(z, 0.0) + soft), from_logits], axis=1)
                p = xp.concat([1.0 - p, p], axis=1)
        positive = p > 0
        return xp.where(positive, xp.log(xp.where(positive, p, 1.0)), from_logits)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NNXRegressor(RegressorMixin, _NNXBase):
    """A multi-layer perceptron regressor with scikit-learn's ``MLPRegressor`` interface.

    Minimizes half the squared error (as scikit-learn) with an identity output per target,
    or with ``loss="poisson"`` half the Poisson deviance with an exponential output
    (:class:`nnx.losses.Poisson`; targets must be non-negative). Parameters and attributes
    as :class:`NNXClassifier` (less ``classes_``; ``validation_scores_`` hold :math:`R^2`),
    plus

    loss : {"squared_error", "poisson"}, default "squared_error"

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = NNXRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=50,
    ...                    random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error",
                 solver="adam", optimizer=None, alpha=0.0001, batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, batch_norm=False,
                 backend="numpy", device=None, dtype=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, optimizer=optimizer, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dropout=dropout, batch_norm=batch_norm, backend=backend,
            device=device, dtype=dtype)
        self.loss = loss

    def _check_params(self):
        check_choice("loss", self.loss, ("squared_error", "poisson"))
        super()._check_params()

    def _targets(self, y, first, incremental, classes):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        if not first:
            if n_outputs != self.n_outputs_:
                raise ValueError(f"y has {n_outputs} target column(s) but the regressor was "
                                 f"fitted with {self.n_outputs_}")
            return self.network_.loss_, n_outputs
        return _SklearnObjective("mse" if self.loss == "squared_error" else "poisson"), n_outputs

    def _init_fitted_attributes(self, n_outputs):
        super()._init_fitted_attributes(n_outputs)
        self.out_activation_ = "exp" if self.loss == "poisson" else "identity"

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current state.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _score_predictions(self, y, y_pred, sample_weight):
        if not np.all(np.isfinite(y_pred)):  # a diverging fit (inf is not caught upstream)
            return math.nan
        return metrics.r2_score(y, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted values.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        X = self._validate_X(X)
        return to_numpy(self.network_.predict(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
