"""scikit-learn's multi-layer perceptron math on any array API namespace.

The forward pass, the reported loss and backpropagation of ``sklearn.neural_network``
(``_base.py`` and ``_multilayer_perceptron.py``), formula by formula and in its order of
operations, so NumPy float64 results agree with scikit-learn's to rounding. Every array
operation goes through the :class:`nnx.backend.Context` namespace (hidden activations are
nnx's own), so the same code trains on torch or CuPy. The weights are not held here: they are
the estimator's ``coefs_`` / ``intercepts_`` lists, passed in, as scikit-learn's are.

For a network with weights :math:`W_l` ``(n_l, n_{l+1})`` and biases :math:`b_l`:

.. math::

    a_0 = X, \\quad a_{l+1} = f_l(a_l W_l + b_l), \\qquad
    \\delta_L = w \\odot (a_L - Y), \\quad
    \\delta_{l-1} = (\\delta_l W_l^\\top) \\odot f'(a_l)

    \\frac{\\partial J}{\\partial W_l} = \\frac{a_l^\\top \\delta_l + \\alpha W_l}{\\sum w}, \\quad
    \\frac{\\partial J}{\\partial b_l} = \\frac{\\mathbf{1}^\\top \\delta_l}{\\sum w}

where the output link :math:`f_L` (identity, logistic, softmax, exp) is the canonical link of
the loss (squared error, binary / categorical cross-entropy, Poisson deviance), which is why
:math:`\\delta_L` is simply :math:`a_L - Y`, and :math:`w` are the sample weights (ones when
none are given).
"""

from __future__ import annotations

from .. import activations as _activations

#: scikit-learn's hidden activation names -> nnx activations (same formulas)
HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _softmax(xp, z):
    tmp = z - xp.max(z, axis=1, keepdims=True)
    e = xp.exp(tmp)
    return e / xp.sum(e, axis=1, keepdims=True)


_SIGMOID = _activations.get("sigmoid")

#: output links, by scikit-learn's ``out_activation_`` name
OUTPUTS = {
    "identity": lambda xp, z: z,
    "logistic": _SIGMOID.forward,
    "softmax": _softmax,
    "exp": lambda xp, z: xp.exp(z),
}


def _average(xp, a, w):
    """``np.average(a, weights=w, axis=0)``: column means, weighted by row."""
    if w is None:
        return xp.mean(a, axis=0)
    return xp.sum(a * w[:, None], axis=0) / xp.sum(w)


def squared_error(xp, y, p, w):
    r""":math:`\frac12` the mean over outputs of the (weighted) mean squared error."""
    return 0.5 * xp.mean(_average(xp, (y - p) ** 2, w))


def poisson(xp, y, p, w):
    r"""Half the Poisson deviance, :math:`\sum_j \overline{y \log(y/p) - y + p}`."""
    ratio = xp.where(y > 0, y / p, 1.0)  # xlogy(y, y / p): 0 where y == 0
    return xp.sum(_average(xp, y * xp.log(ratio) - y + p, w))


def log_loss(xp, y, p, w):
    r"""Categorical cross-entropy :math:`-\sum_j \overline{y_j \log p_j}`, ``p`` clipped to
    :math:`[\epsilon, 1 - \epsilon]` (machine epsilon of its dtype)."""
    eps = float(xp.finfo(p.dtype).eps)
    p = xp.clip(p, eps, 1 - eps)
    return -xp.sum(_average(xp, y * xp.log(p), w))


def binary_log_loss(xp, y, p, w):
    r"""Binary cross-entropy summed over labels, ``p`` clipped as in :func:`log_loss`."""
    eps = float(xp.finfo(p.dtype).eps)
    p = xp.clip(p, eps, 1 - eps)
    return -xp.sum(_average(xp, y * xp.log(p) + (1 - y) * xp.log(1 - p), w))


LOSSES = {"squared_error": squared_error, "poisson": poisson, "log_loss": log_loss,
          "binary_log_loss": binary_log_loss}


class Perceptron:
    """The functions of one scikit-learn MLP on one :class:`~nnx.backend.Context`.

    Parameters
    ----------
    ctx : nnx.backend.Context
    activation : {"identity", "logistic", "tanh", "relu"}
        Hidden activation.
    out_activation : {"identity", "logistic", "softmax", "exp"}
    loss : {"squared_error", "poisson", "log_loss"}
        ``"log_loss"`` with a logistic output is the binary (multilabel) cross-entropy.
    """

    def __init__(self, ctx, activation, out_activation, loss):
        self.ctx = ctx
        self.hidden = _activations.get(HIDDEN[activation])
        self.output = OUTPUTS[out_activation]
        if loss == "log_loss" and out_activation == "logistic":
            loss = "binary_log_loss"
        self.loss = LOSSES[loss]

    def forward(self, coefs, intercepts, X):
        """Activations of every layer, ``[X, a_1, ..., a_L]`` (``a_L`` after the output link).

        ``X`` is a device array, or a ``scipy.sparse`` matrix where the backend multiplies
        them (:func:`nnx.backend.sparse_to_device`)."""
        xp, act = self.ctx.xp, self.hidden
        activations = [X]
        last = len(coefs) - 1
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            z = activations[-1] @ W + b
            activations.append(self.output(xp, z) if i == last else act.forward(xp, z))
        return activations

    def predict(self, coefs, intercepts, X):
        """Output layer ``(n_samples, n_outputs)``."""
        return self.forward(coefs, intercepts, X)[-1]

    def loss_and_gradients(self, coefs, intercepts, X, Y, sample_weight, alpha):
        """scikit-learn's ``_backprop``: the objective and its gradients.

        Parameters
        ----------
        coefs, intercepts : list of Array
            ``(n_l, n_{l+1})`` and ``(n_{l+1},)``.
        X : Array or scipy.sparse matrix, shape (n_samples, n_features)
        Y : Array, shape (n_samples, n_outputs)
            Targets in the network's dtype (0/1 indicators for classifiers).
        sample_weight : Array of shape (n_samples,) or None
        alpha : float
            L2 strength; the penalty is :math:`\\frac{\\alpha}{2 \\sum w} \\sum_l \\lVert
            W_l \\rVert^2`.

        Returns
        -------
        loss : 0-d Array
            Reported loss (the mean of the per-output losses for multi-output regression,
            as scikit-learn reports it) plus the penalty.
        coef_grads, intercept_grads : list of Array
        """
        xp = self.ctx.xp
        activations = self.forward(coefs, intercepts, X)
        loss = self.loss(xp, Y, activations[-1], sample_weight)
        values = 0
        for W in coefs:
            w = xp.reshape(W, (-1,))
            values = values + w @ w
        sw_sum = X.shape[0] if sample_weight is None else xp.sum(sample_weight)
        loss = loss + (0.5 * alpha) * values / sw_sum

        n = len(coefs)
        coef_grads, intercept_grads = [None] * n, [None] * n
        delta = activations[-1] - Y
        if sample_weight is not None:
            delta = delta * sample_weight[:, None]
        for i in range(n - 1, -1, -1):
            coef_grads[i] = (activations[i].T @ delta + alpha * coefs[i]) / sw_sum
            intercept_grads[i] = xp.sum(delta, axis=0) / sw_sum
            if i:
                # scikit-learn's four hidden derivatives are functions of the output alone,
                # so the output stands in for the (unkept) input
                a = activations[i]
                delta = self.hidden.backward(xp, a, a, delta @ coefs[i].T)
        return loss, coef_grads, intercept_grads
