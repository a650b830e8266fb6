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
with ``value(xp, z, y)`` and ``gradient(xp, z, y)`` (subclass :class:`Loss` to get the rest).
"""

from __future__ import annotations

from array_api_compat import array_namespace

from . import activations


class Loss:
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
    task = "regression"
    link = activations.identity

    def value(self, xp, z, y):
        """Mean loss as a 0-d array. ``z``, ``y``: ``(n_samples, n_outputs)``."""
        return self.value_and_grad(xp, z, y)[0]

    def gradient(self, xp, z, y):
        """:math:`\\partial L / \\partial z`, shape of ``z``."""
        return self.value_and_grad(xp, z, y)[1]

    def value_and_grad(self, xp, z, y):
        """Both at once (subclasses share intermediate results here)."""
        return self.value(xp, z, y), self.gradient(xp, z, y)

    def __call__(self, z, y):
        """Standalone: the mean loss of logits ``z`` against encoded targets ``y``."""
        return self.value(array_namespace(z, y), z, y)

    def get_config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanSquaredError(Loss):
    r""":math:`L = \frac{1}{nk}\sum (z - y)^2`, :math:`\partial L/\partial z = 2(z - y)/(nk)`."""

    name = "mse"

    def value_and_grad(self, xp, z, y):
        d = z - y
        scale = 1.0 / (d.shape[0] * d.shape[1])
        return xp.sum(d * d) * scale, d * (2.0 * scale)


class MeanAbsoluteError(Loss):
    r""":math:`L = \frac{1}{nk}\sum |z - y|`, gradient :math:`\mathrm{sign}(z - y)/(nk)`."""

    name = "mae"

    def value_and_grad(self, xp, z, y):
        d = z - y
        scale = 1.0 / (d.shape[0] * d.shape[1])
        return xp.sum(xp.abs(d)) * scale, xp.sign(d) * scale


class Huber(Loss):
    r"""Huber loss, as ``torch.nn.HuberLoss``:

    .. math:: \ell(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
              \delta (|d| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    averaged over all elements; gradient :math:`\mathrm{clip}(d, -\delta, \delta)/(nk)`.
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"Huber delta must be > 0; got {delta!r}")
        self.delta = float(delta)

    def value_and_grad(self, xp, z, y):
        d = z - y
        a = xp.abs(d)
        scale = 1.0 / (d.shape[0] * d.shape[1])
        small = xp.minimum(a, self.delta)  # quadratic part, capped at delta
        elementwise = small * (a - 0.5 * small)
        return xp.sum(elementwise) * scale, xp.clip(d, -self.delta, self.delta) * scale

    def get_config(self):
        return {"delta": self.delta}


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

    def value_and_grad(self, xp, z, y):
        e = xp.exp(-xp.abs(z))
        scale = 1.0 / (z.shape[0] * z.shape[1])
        value = xp.sum(xp.maximum(z, 0.0) - z * y + xp.log1p(e)) * scale
        inv = 1.0 / (1.0 + e)
        p = xp.where(z >= 0, inv, e * inv)
        return value, (p - y) * scale


class CategoricalCrossentropy(Loss):
    r"""Softmax + categorical cross-entropy fused, from logits (``CrossEntropyLoss``):

    .. math:: L = \frac1n \sum_i \Big(\log\sum_j e^{z_{ij}} - \sum_j y_{ij} z_{ij}\Big),
              \qquad \frac{\partial L}{\partial z} = \frac{\mathrm{softmax}(z) - y}{n}

    ``y`` is one-hot (the network encodes integer or string labels once per ``fit``).
    """

    name = "categorical_crossentropy"
    task = "categorical"
    link = activations.softmax

    def value_and_grad(self, xp, z, y):
        shifted = z - xp.max(z, axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = xp.sum(e, axis=1, keepdims=True)
        scale = 1.0 / z.shape[0]
        value = xp.sum(xp.log(total)) * scale - xp.sum(y * shifted) * scale
        return value, (e / total - y) * scale


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

    def value(self, xp, z, y):
        return self.inner.value(xp, z, y)

    def gradient(self, xp, z, y):
        return self.inner.gradient(xp, z, y)
