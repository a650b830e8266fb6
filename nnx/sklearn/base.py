"""The training procedure of scikit-learn's MLP, ported to nnx backends.

:class:`BaseMLP` is ``sklearn.neural_network.BaseMultilayerPerceptron`` step by step: the same
validation, the same random draws in the same order from the same ``RandomState``
(Glorot-uniform weights *and* biases, layer by layer; then the early-stopping split; then one
shuffle per epoch), the same mini-batches, update rules (:mod:`.updates`), loss bookkeeping,
``tol`` / ``n_iter_no_change`` rule, early stopping, and L-BFGS through the same
``scipy.optimize.minimize(method="L-BFGS-B")`` call. The arithmetic runs in
:class:`.perceptron.Perceptron` on the chosen backend.

Where the host meets the device: the data cross once per ``fit`` (a ``scipy.sparse`` ``X``
stays on the host and crosses a group of batches at a time where the backend needs it
dense, see :func:`nnx.backend.sparse_to_device`); each epoch's order crosses once; the loss
is summed on the device and read once per epoch; with ``early_stopping`` the validation predictions come
back once per epoch; the parameters' finiteness is read once per ``fit``. L-BFGS runs on the
host (SciPy), so its parameters and gradient cross at every function evaluation; being a
full-batch method it needs all rows at once, so a sparse ``X`` is made dense as a whole for
L-BFGS on a backend without sparse products (the stochastic solvers never do that).

One difference in result types: with float32 data L-BFGS keeps float32 parameters, where
scikit-learn's come back from SciPy as float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import BaseEstimator, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..backend import get_context, sparse_to_device, to_device, to_numpy
from ..sources import GROUP_BYTES, MAX_GROUP_BATCHES
from . import updates
from .perceptron import Perceptron

_STOCHASTIC_SOLVERS = ("sgd", "adam")


def _batches(n, size):
    """Slices of ``size`` rows (the last one shorter): ``sklearn.utils.gen_batches``, without
    its per-call parameter validation, which costs more than a small batch."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _optimize_result(result, max_iter):
    """scikit-learn's reading of an L-BFGS result: the iteration count, and a
    ``ConvergenceWarning`` (its wording) unless SciPy reports success."""
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        msg = (f"lbfgs failed to converge after {n_iter} iteration(s) "
               f"(status={result.status}):\n{result.message}\n")
        if n_iter == max_iter:
            msg += ("\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={max_iter}).")
        msg += ("\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return n_iter


class _Rows:
    """Training rows on their way to the network: a device array, taken by index once per
    epoch and sliced into batches; or a ``scipy.sparse`` matrix on the host, indexed once per
    epoch and moved a group of batches at a time (one transfer per group, not per step, on a
    backend that needs it dense; as is, per batch, where the backend multiplies it)."""

    def __init__(self, X, ctx):
        self.ctx = ctx
        self.sparse = scipy.sparse.issparse(X)
        self.X = X.tocsr() if self.sparse else to_device(X, ctx)

    def take(self, idx):
        """Rows ``idx`` (host integers): a device array, or a host sparse matrix."""
        if self.sparse:
            return self.X[idx]
        return self.ctx.xp.take(self.X, to_device(idx, self.ctx, self.ctx.xp.int64), axis=0)

    def batches(self, X, n, size):
        """``(slice, batch ready for the forward pass)`` of each batch of ``X``'s ``n`` rows.

        A sparse ``X`` the backend cannot multiply is made dense and moved a group of
        batches at a time (about :data:`nnx.sources.GROUP_BYTES`, as ``NNXClassifier``'s
        sparse rows), so that neither a host-to-device copy per step nor a dense copy of
        the whole ``X`` happens."""
        slices = _batches(n, size)
        if not self.sparse or self.ctx.backend.scipy_sparse:
            for rows in slices:
                yield rows, (sparse_to_device(X[rows], self.ctx) if self.sparse
                             else X[rows, ...])
            return
        row_bytes = X.shape[1] * np.dtype(self.ctx.dtype_name).itemsize
        per_group = max(1, min(MAX_GROUP_BATCHES, GROUP_BYTES // (row_bytes * size)))
        for g in range(0, len(slices), per_group):
            group = slices[g:g + per_group]
            first = group[0].start
            dense = to_device(X[first:group[-1].stop].toarray(), self.ctx)
            for rows in group:
                yield rows, dense[rows.start - first:rows.stop - first, ...]


class BaseMLP(BaseEstimator):
    """Parameters, training and prediction shared by :class:`~nnx.sklearn.MLPClassifier` and
    :class:`~nnx.sklearn.MLPRegressor` (scikit-learn's ``BaseMultilayerPerceptron``)."""

    def __init__(self, *, loss, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, backend, device):
        # scikit-learn's contract: store the parameters untouched, validate them at fit
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
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
        self.backend = backend
        self.device = device

    # ------------------------------------------------------------------ the network

    def _context(self, dtype):
        return get_context(self.backend, self.device, np.dtype(dtype).name)

    def _perceptron(self):
        return Perceptron(self._ctx, self.activation, self.out_activation_, self.loss)

    def _device_list(self, arrays):
        """Parameters assigned from outside (``coefs_ = [...]``) brought onto the backend;
        arrays already there are kept (the model trains the user's arrays, in place)."""
        return [to_device(a, self._ctx) for a in arrays]

    def _coef_dtype(self):
        """The floating dtype of ``coefs_``: the fit's, or that of arrays assigned by hand."""
        if hasattr(self, "_ctx"):
            return np.dtype(self._ctx.dtype_name)
        return to_numpy(self.coefs_[0]).dtype

    def _forward_pass_fast(self, X, check_input=True):
        """Output layer for ``X`` (validated unless ``check_input`` is False), on the host.

        A ``scipy.sparse`` ``X`` goes through in row blocks when the backend needs it dense,
        so at most one block is ever dense."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        # the dtype NumPy gives X @ coefs_[0], as in scikit-learn (float64 for integer X, or
        # for float64 X and a float32 model); a context for this call only, so that one
        # prediction never sets the dtype of the next
        ctx = self._context(np.result_type(X.dtype, self._coef_dtype()))
        net = Perceptron(ctx, self.activation, self.out_activation_, self.loss)
        with ctx.scope(), ctx.errstate():
            coefs = [to_device(a, ctx) for a in self.coefs_]
            intercepts = [to_device(a, ctx) for a in self.intercepts_]
            if not scipy.sparse.issparse(X):
                return to_numpy(net.predict(coefs, intercepts, to_device(X, ctx)))
            X = X.tocsr()
            step = X.shape[0] if ctx.backend.scipy_sparse else 4096
            return np.concatenate([
                to_numpy(net.predict(coefs, intercepts, sparse_to_device(X[s], ctx)))
                for s in _batches(X.shape[0], step)])

    # ------------------------------------------------------------------ fit

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            coef, intercept = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._best_coefs = [self._copy(c) for c in self.coefs_]
        self._best_intercepts = [self._copy(b) for b in self.intercepts_]
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in, fan_out, dtype):
        # Glorot et al.'s uniform bound (factor 2 for logistic units), drawn on the host in
        # scikit-learn's order: the weights, then the biases, of each layer in turn
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return (to_device(coef.astype(dtype, copy=False), self._ctx),
                to_device(intercept.astype(dtype, copy=False), self._ctx))

    def _copy(self, a):
        return self._ctx.xp.asarray(a, copy=True)

    def _fit(self, X, y, sample_weight=None, incremental=False):
        # the parameters were validated by _fit_context around fit / partial_fit (unless
        # set_config(skip_parameter_validation=True) says not to)
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            # scikit-learn's own check: scalars, negative weights; its messages
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        self._ctx = self._context(X.dtype)
        with self._ctx.scope(), self._ctx.errstate():
            if first_pass:
                self._initialize(y, layer_units, X.dtype)
            else:
                # the backend, device or dtype may have changed since the last fit
                # (set_params, float32 data): the weights and the state go along
                self.coefs_ = self._device_list(self.coefs_)
                self.intercepts_ = self._device_list(self.intercepts_)
                if hasattr(self, "_best_coefs"):  # not when coefs_ were set by hand
                    self._best_coefs = self._device_list(self._best_coefs)
                    self._best_intercepts = self._device_list(self._best_intercepts)
                if hasattr(self, "_optimizer"):
                    self._optimizer.move_to(self._ctx)
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight, layer_units)
            xp = self._ctx.xp
            finite = [xp.all(xp.isfinite(w)) for w in self.coefs_ + self.intercepts_]
            if not bool(xp.all(xp.stack(finite))):
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may contain "
                    "large values and need to be preprocessed.")
        return self

    def _fit_lbfgs(self, X, y, sample_weight, layer_units):
        ctx, net = self._ctx, self._perceptron()
        shapes = [(a, b) for a, b in zip(layer_units[:-1], layer_units[1:])]
        sizes = [a * b for a, b in shapes] + [b for _, b in shapes]
        bounds = np.cumsum([0] + sizes)
        n = len(shapes)
        Xd = sparse_to_device(X, ctx) if scipy.sparse.issparse(X) else to_device(X, ctx)
        Yd = to_device(y, ctx)
        wd = None if sample_weight is None else to_device(sample_weight, ctx)

        def unpack(packed):
            parts = [packed[bounds[i]:bounds[i + 1]] for i in range(2 * n)]
            self.coefs_ = [to_device(parts[i].reshape(shapes[i]), ctx) for i in range(n)]
            self.intercepts_ = [to_device(parts[n + i], ctx) for i in range(n)]

        def loss_grad(packed):
            unpack(packed)
            loss, coef_grads, intercept_grads = net.loss_and_gradients(
                self.coefs_, self.intercepts_, Xd, Yd, wd, self.alpha)
            grad = np.hstack([to_numpy(g).ravel() for g in coef_grads + intercept_grads])
            return float(loss), grad

        packed = np.hstack([to_numpy(p).ravel() for p in self.coefs_ + self.intercepts_])
        # the same call as scikit-learn's (its iprint option is gone from SciPy >= 1.15)
        result = scipy.optimize.minimize(
            loss_grad, packed, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = _optimize_result(result, self.max_iter)
        self.loss_ = result.fun
        unpack(result.x)

    def _optimizer_for(self, params):
        if self.solver == "sgd":
            return updates.SGD(self._ctx, params, self.learning_rate_init, self.learning_rate,
                               self.momentum, self.nesterovs_momentum, self.power_t)
        return updates.Adam(self._ctx, params, self.learning_rate_init, self.beta_1,
                            self.beta_2, self.epsilon)

    def _validation_split(self, rows, y, sample_weight):
        """scikit-learn's early-stopping split (stratified for single-output classifiers),
        drawn from the estimator's ``RandomState`` after the initial weights."""
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        train, val = train_test_split(np.arange(y.shape[0]), random_state=self._random_state,
                                      test_size=self.validation_fraction, stratify=stratify)
        if val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        y_val = y[val]
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        w_val = None if sample_weight is None else sample_weight[val]
        w_train = None if sample_weight is None else sample_weight[train]
        return train, (rows.take(val), y_val, w_val), w_train

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        ctx, xp, net = self._ctx, self._ctx.xp, self._perceptron()
        params = self.coefs_ + self.intercepts_
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._optimizer_for(params)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")

        rows = _Rows(X, ctx)
        if self.early_stopping:
            train, validation, w_train = self._validation_split(rows, y, sample_weight)
            X_train, y_train = rows.take(train), y[train]
        else:
            validation, w_train = None, sample_weight
            X_train, y_train = rows.X, y
        n_samples = y_train.shape[0]
        Y_train = to_device(y_train, ctx)
        W_train = None if w_train is None else to_device(w_train, ctx)
        sample_idx = np.arange(n_samples, dtype=int)

        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        n_coefs = len(self.coefs_)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                X_epoch, Y_epoch, W_epoch = X_train, Y_train, W_train
                if self.shuffle:
                    # one permutation per epoch, drawn as sklearn.utils.shuffle draws it (its
                    # parameter validation costs more than a small epoch), applied once on
                    # the device; the batches are then plain slices
                    perm = np.arange(n_samples)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                    order = to_device(sample_idx, ctx, xp.int64)
                    X_epoch = (X_train[sample_idx] if rows.sparse
                               else xp.take(X_train, order, axis=0))
                    Y_epoch = xp.take(Y_train, order, axis=0)
                    if W_train is not None:
                        W_epoch = xp.take(W_train, order, axis=0)
                accumulated_loss = 0.0
                for batch, X_batch in rows.batches(X_epoch, n_samples, batch_size):
                    batch_loss, coef_grads, intercept_grads = net.loss_and_gradients(
                        self.coefs_, self.intercepts_, X_batch,
                        Y_epoch[batch, ...], None if W_epoch is None else W_epoch[batch],
                        self.alpha)
                    accumulated_loss = accumulated_loss + batch_loss * (batch.stop - batch.start)
                    params = self._optimizer.update_params(params,
                                                           coef_grads + intercept_grads)
                    self.coefs_[:], self.intercepts_[:] = params[:n_coefs], params[n_coefs:]

                self.n_iter_ += 1
                self.loss_ = float(accumulated_loss) / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(validation)
                self._optimizer.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, validation):
        if validation is not None:
            X_val, y_val, w_val = validation
            score = self._score_with_function(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [self._copy(c) for c in self.coefs_]
                self._best_intercepts = [self._copy(b) for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_with_function(self, X, y, sample_weight):
        """Validation score of device (or host sparse) rows ``X``: ``nan`` for a non-finite
        prediction (a diverged fit then keeps its best weights instead of failing)."""
        net = self._perceptron()
        Xd = sparse_to_device(X, self._ctx) if scipy.sparse.issparse(X) else X
        y_pred = self._output_to_prediction(
            to_numpy(net.predict(self.coefs_, self.intercepts_, Xd)))
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix ``X`` and target(s) ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _predict(self, X, check_input=True):
        return self._output_to_prediction(self._forward_pass_fast(X, check_input=check_input))

    def predict(self, X):
        """Predictions for ``X`` (labels for a classifier, values for a regressor).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return self._predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
