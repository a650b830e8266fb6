"""Losses computed from the network's logits, with their gradients.

The last layer of every nnx network emits logits ``z``; a loss owns the *output link* that
turns logits into predictions (``link``: identity, sigmoid or softmax) and fuses it into its
value and gradient, which is both faster and numerically safer than differentiating
``log(sigmoid(z))`` step by step:

- binary cross-entropy from logits: :math:`\\ell = \\max(z, 0) - z y + \\log(1 + e^{-|z|})`,
  :math:`\\partial\\ell/\\partial z = \\sigma(z) - y`;
- categorical cross-entropy from logits: :math:`\\ell = \\mathrm{lse}(z) - \\sum_j y_j z_j`,
  :math:`\\partial\\ell/\\partial z = \\mathrm{softmax}(z) - y`.

Reductions follow PyTorch (``reduction="mean"``): element-wise losses (MSE, MAE, Huber, BCE)
average over every element, cross-entropy averages over samples. A custom loss is any object
with ``value(xp, z, y)`` and ``gradient(xp, z, y)``; subclass :class:`Loss` and define
``terms`` (per-element loss and derivative) to get weighting for free.
"""

from __future__ import annotations


from . import activations
from .backend import namespace_of
from .checks import check_number
from .config import Value


class Loss(Value):
    """Base class of losses.

    Attributes
    ----------
    name : str
    task : {"regression", "binary", "categorical"}
        Decides how targets are encoded and what ``predict`` returns.
    link : Activation
        Maps logits to predictions (``predict_proba``).
    """

    name = "loss"
    registry_kind = "loss"
    task = "regression"
    link = activations.identity

    #: cross-entropy normalizes a weighted sum by the sum of weights (torch's
    #: ``CrossEntropyLoss(weight=...)``); element-wise losses by the element count (torch's
    #: ``BCEWithLogitsLoss(weight=...)``)
    normalize_by_weight = False

    def terms(self, xp, z, y):
        """Per-element losses ``l`` (``(n, k)``, or ``(n, 1)`` per sample) and
        :math:`\\partial l / \\partial z` (``(n, k)``). Subclasses define this."""
        raise NotImplementedError("abstract method: subclasses define terms")

    def value(self, xp, z, y, weight=None):
        """Mean loss as a 0-d array. ``z``, ``y``: ``(n_samples, n_outputs)``."""
        return self.value_and_grad(xp, z, y, weight)[0]

    def gradient(self, xp, z, y, weight=None):
        """:math:`\\partial L / \\partial z`, shape of ``z``."""
        return self.value_and_grad(xp, z, y, weight)[1]

    def value_and_grad(self, xp, z, y, weight=None):
        """Loss and gradient together.

        Parameters
        ----------
        z, y : arrays of shape (n_samples, n_outputs)
            Logits and encoded targets.
        weight : array of shape (n_samples, 1), optional
            Per-sample weights (sample weight times class weight). Reduction with weights:
            :math:`\\sum_i w_i l_i / \\sum_i w_i` for cross-entropy,
            :math:`\\sum_{ij} w_i l_{ij} / (n k)` for element-wise losses (as torch).
        """
        l, dl = self.terms(xp, z, y)
        if weight is None:
            scale = 1.0 / (l.shape[0] * l.shape[1])
            return xp.sum(l) * scale, dl * scale
        if self.normalize_by_weight:
            # a batch whose rows all weigh 0 contributes 0, not 0/0 = NaN
            tiny = float(xp.finfo(weight.dtype).smallest_normal)
            scale = 1.0 / xp.maximum(xp.sum(weight), tiny)
        else:
            scale = 1.0 / (l.shape[0] * l.shape[1])
        return xp.sum(weight * l) * scale, (weight * scale) * dl

    def __call__(self, z, y):
        """Standalone: the mean loss of logits ``z`` against encoded targets ``y``."""
        return self.value(namespace_of(z, y), z, y)



class MeanSquaredError(Loss):
    r""":math:`L = \frac{1}{nk}\sum (z - y)^2`, :math:`\partial L/\partial z = 2(z - y)/(nk)`."""

    name = "mse"

    def terms(self, xp, z, y):
        d = z - y
        return d * d, 2.0 * d


class MeanAbsoluteError(Loss):
    r""":math:`L = \frac{1}{nk}\sum |z - y|`, gradient :math:`\mathrm{sign}(z - y)/(nk)`."""

    name = "mae"

    def terms(self, xp, z, y):
        d = z - y
        return xp.abs(d), xp.sign(d)


class Huber(Loss):
    r"""Huber loss, as ``torch.nn.HuberLoss``:

    .. math:: \ell(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
              \delta (|d| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    averaged over all elements; gradient :math:`\mathrm{clip}(d, -\delta, \delta)/(nk)`.
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        self.delta = check_number("Huber delta", delta, low=0, low_open=True)

    def terms(self, xp, z, y):
        d = z - y
        a = xp.abs(d)
        small = xp.minimum(a, self.delta)  # quadratic part, capped at delta
        return small * (a - 0.5 * small), xp.clip(d, -self.delta, self.delta)



class BinaryCrossentropy(Loss):
    r"""Sigmoid + binary cross-entropy fused, from logits (``BCEWithLogitsLoss``):

    .. math:: L = \frac{1}{nk}\sum \max(z, 0) - z y + \log(1 + e^{-|z|}),
              \qquad \frac{\partial L}{\partial z} = \frac{\sigma(z) - y}{nk}

    With one output it is the binary problem; with ``k`` outputs, ``k`` independent labels
    (multilabel).
    """

    name = "binary_crossentropy"
    task = "binary"
    link = activations.sigmoid

    def terms(self, xp, z, y):
        e = xp.exp(-xp.abs(z))
        inv = 1.0 / (1.0 + e)
        p = xp.where(z >= 0, inv, e * inv)
        return xp.maximum(z, 0.0) - z * y + xp.log1p(e), p - y


class CategoricalCrossentropy(Loss):
    r"""Softmax + categorical cross-entropy fused, from logits (``CrossEntropyLoss``):

    .. math:: L = \frac1n \sum_i \Big(\log\sum_j e^{z_{ij}} - \sum_j y_{ij} z_{ij}\Big),
              \qquad \frac{\partial L}{\partial z} = \frac{\mathrm{softmax}(z) - y}{n}

    ``y`` is one-hot (the network encodes integer or string labels once per ``fit``).

    Parameters
    ----------
    label_smoothing : float in [0, 1), default 0
        Targets become :math:`y (1 - \\varepsilon) + \\varepsilon / k` (Szegedy et al. 2016),
        exactly as ``torch.nn.CrossEntropyLoss(label_smoothing=...)``.
    """

    name = "categorical_crossentropy"
    task = "categorical"
    link = activations.softmax
    normalize_by_weight = True

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = check_number("label_smoothing", label_smoothing, low=0, high=1,
                                            high_open=True)
        self._ones = None  # ones column for the row sums, rebuilt when z changes shape/place

    def terms(self, xp, z, y):
        if self.label_smoothing:
            eps = self.label_smoothing
            y = y * (1.0 - eps) + eps / y.shape[1]
        shifted = z - xp.max(z, axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = xp.sum(e, axis=1, keepdims=True)
        per_sample = xp.log(total) - xp.sum(y * shifted, axis=1, keepdims=True)
        return per_sample, e / total - y

    def value_and_grad(self, xp, z, y, weight=None):
        if weight is not None or self.label_smoothing:
            return super().value_and_grad(xp, z, y, weight)
        # The unweighted case in fewer reductions (on a small NumPy batch each reduction
        # costs about as much as the arithmetic): the row sums as a product with a cached
        # ones column (as Dense's bias gradient) and L = -sum(y * log_softmax(z)) / n,
        # torch's own definition, in one sum.
        shifted = z - xp.max(z, axis=1, keepdims=True)
        e = xp.exp(shifted)
        ones = self._ones
        # compared, never hashed: device objects need not be hashable (CuPy's are not)
        if (ones is None or ones.shape[0] != z.shape[1] or ones.dtype != z.dtype
                or ones.device != z.device):
            ones = self._ones = xp.ones((z.shape[1], 1), dtype=z.dtype, device=z.device)
        total = e @ ones
        scale = 1.0 / z.shape[0]
        value = xp.sum(y * (xp.log(total) - shifted)) * scale
        return value, (e / total - y) * scale



class _ExpLink(activations.Activation):
    """:math:`\\exp`, the output link of :class:`Poisson` (not a hidden-layer activation)."""

    name = "exp"

    def forward(self, xp, x):
        return xp.exp(x)

    def backward(self, xp, x, y, dy):
        return dy * y


class Poisson(Loss):
    r"""Poisson deviance with a log link, from the log-mean ``z`` (scikit-learn's
    ``MLPRegressor(loss="poisson")``): predictions are :math:`\mu = e^z` and

    .. math:: L = \frac{1}{nk}\sum y \log\frac{y}{\mu} - y + \mu, \qquad
              \frac{\partial L}{\partial z} = \frac{\mu - y}{nk}

    (half the Poisson deviance; :math:`y \log y = 0` at :math:`y = 0`). Targets must be
    non-negative.
    """

    name = "poisson"
    link = _ExpLink()

    def terms(self, xp, z, y):
        mu = xp.exp(z)
        # y log y, with 0 log 0 = 0 (the inner where keeps log away from 0)
        y_log_y = xp.where(y > 0, y * xp.log(xp.where(y > 0, y, 1.0)), 0.0)
        return y_log_y - y * z - y + mu, mu - y



LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "cross_entropy": CategoricalCrossentropy,
    "poisson": Poisson,
}


def get(loss) -> Loss:
    """Resolve a loss name or object.

    A custom object needs ``value(xp, z, y)`` and ``gradient(xp, z, y)``; it may define
    ``link`` (default identity) and ``task`` (default ``"regression"``).

    Raises
    ------
    ValueError
        Unknown name, or an object without ``value`` and ``gradient``.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str):
        key = loss.lower()
        if key in LOSSES:
            return LOSSES[key]()
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(sorted(LOSSES))}")
    if callable(getattr(loss, "value", None)) and callable(getattr(loss, "gradient", None)):
        return _CustomLoss(loss)
    raise ValueError(
        f"loss must be a name ({', '.join(sorted(LOSSES))}) or an object with "
        f"value(xp, z, y) and gradient(xp, z, y) methods; got {loss!r}"
    )


class _CustomLoss(Loss):
    """Adapter giving a duck-typed user loss the :class:`Loss` interface."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.task = getattr(inner, "task", "regression")
        self.link = activations.get(getattr(inner, "link", None)) or activations.identity

    def value_and_grad(self, xp, z, y, weight=None):
        if weight is not None:
            raise ValueError(
                f"the custom loss {self.name!r} does not support sample or class weights; "
                "subclass nnx.losses.Loss and define terms() to get them"
            )
        return self.inner.value(xp, z, y), self.inner.gradient(xp, z, y)
