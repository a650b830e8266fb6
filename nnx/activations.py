"""Activation functions and their derivatives, on any array API namespace.

Every activation is an object usable three ways:

- standalone on any supported array: ``nnx.activations.relu(x)``, ``relu.derivative(x)``
  (the namespace is looked up from ``x``);
- inside layers, with the namespace resolved once: ``act.forward(xp, x)`` and
  ``act.backward(xp, x, y, dy)`` where ``y = act.forward(xp, x)`` was cached;
- by name: ``nnx.activations.get("leaky_relu")``.

All are written to be safe for large inputs: no overflow warnings for ``|x|`` up to ``1e4`` in
float32 (exponentials only ever see non-positive arguments).
"""

from __future__ import annotations

import math


from .backend import namespace_of
from .checks import check_number
from .config import Value


def _sigmoid(xp, x):
    # exp(-|x|) is in (0, 1]: never overflows, and keeps relative precision in both tails.
    e = xp.exp(-xp.abs(x))
    s = 1.0 / (1.0 + e)
    return xp.where(x >= 0, s, e * s)


class Activation(Value):
    """Base class: an element-wise function :math:`f` and its derivative.

    Subclasses implement ``forward(xp, x)`` and ``backward(xp, x, y, dy)`` which returns
    :math:`dy \\cdot f'(x)`; ``x`` is the input and ``y = f(x)`` the cached output.
    """

    name = "activation"
    registry_kind = "activation"

    def forward(self, xp, x):
        raise NotImplementedError("abstract method: subclasses define forward")

    def backward(self, xp, x, y, dy):
        raise NotImplementedError("abstract method: subclasses define backward")

    def __call__(self, x):
        return self.forward(namespace_of(x), x)

    def derivative(self, x):
        """Element-wise derivative :math:`f'(x)`, same shape as ``x``."""
        xp = namespace_of(x)
        y = self.forward(xp, x)
        return self.backward(xp, x, y, xp.ones_like(x))


class Identity(Activation):
    r""":math:`f(x) = x`, :math:`f'(x) = 1`."""

    name = "identity"

    def forward(self, xp, x):
        return x

    def backward(self, xp, x, y, dy):
        return dy


class Sigmoid(Activation):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, :math:`\sigma'(x) = \sigma(x)(1 - \sigma(x))`."""

    name = "sigmoid"

    def forward(self, xp, x):
        return _sigmoid(xp, x)

    def backward(self, xp, x, y, dy):
        return dy * (y * (1.0 - y))


class Tanh(Activation):
    r""":math:`\tanh(x)`, :math:`\tanh'(x) = 1 - \tanh^2(x)`."""

    name = "tanh"

    def forward(self, xp, x):
        return xp.tanh(x)

    def backward(self, xp, x, y, dy):
        return dy * (1.0 - y * y)


class ReLU(Activation):
    r""":math:`\max(0, x)`, derivative :math:`[x > 0]` (0 at 0, as PyTorch)."""

    name = "relu"

    def forward(self, xp, x):
        return xp.maximum(x, 0.0)

    def backward(self, xp, x, y, dy):
        # y = max(x, 0) >= 0, so sign(y) is the mask [x > 0] already in dy's dtype: two
        # array calls on NumPy, where a cast mask takes three and xp.where on a random mask
        # is much slower (benchmarks/fit_overhead.py and train_throughput.py measure steps).
        return dy * xp.sign(y)


class LeakyReLU(Activation):
    r""":math:`f(x) = x` for :math:`x > 0`, :math:`\alpha x` otherwise.

    Parameters
    ----------
    alpha : float, default 0.01
        Slope for negative inputs (must be > 0).
    """

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        self.alpha = check_number("LeakyReLU alpha", alpha, low=0, low_open=True)

    def forward(self, xp, x):
        return xp.where(x > 0, x, self.alpha * x)

    def backward(self, xp, x, y, dy):
        return xp.where(x > 0, dy, self.alpha * dy)



class ELU(Activation):
    r""":math:`f(x) = x` for :math:`x > 0`, :math:`\alpha (e^x - 1)` otherwise.

    :math:`f'(x) = 1` for :math:`x > 0`, :math:`f(x) + \alpha` otherwise (Clevert et al. 2016).
    """

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_number("ELU alpha", alpha, low=0, low_open=True)

    def forward(self, xp, x):
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0.0)))

    def backward(self, xp, x, y, dy):
        return dy * xp.where(x > 0, 1.0, y + self.alpha)



class SELU(Activation):
    r""":math:`\lambda\,\mathrm{ELU}_\alpha(x)` with the self-normalizing constants
    :math:`\lambda \approx 1.0507`, :math:`\alpha \approx 1.6733` (Klambauer et al. 2017)."""

    name = "selu"
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, xp, x):
        return self.scale * xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0.0)))

    def backward(self, xp, x, y, dy):
        return dy * xp.where(x > 0, self.scale, y + self.scale * self.alpha)


class Swish(Activation):
    r"""Swish / SiLU: :math:`f(x) = x\,\sigma(x)`,
    :math:`f'(x) = \sigma(x)\,(1 + x\,(1 - \sigma(x)))` (Ramachandran et al. 2017)."""

    name = "swish"

    def forward(self, xp, x):
        return x * _sigmoid(xp, x)

    def backward(self, xp, x, y, dy):
        s = _sigmoid(xp, x)
        return dy * (s * (1.0 + x * (1.0 - s)))


class GELU(Activation):
    r"""GELU, tanh approximation (Hendrycks & Gimpel 2016; PyTorch ``approximate="tanh"``):

    .. math:: f(x) = \tfrac12 x \left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)\right)

    The exact form needs ``erf``, which the array API standard does not have.
    """

    name = "gelu"
    _c = math.sqrt(2.0 / math.pi)

    def forward(self, xp, x):
        return 0.5 * x * (1.0 + xp.tanh(self._c * (x + 0.044715 * (x * x * x))))

    def backward(self, xp, x, y, dy):
        t = xp.tanh(self._c * (x + 0.044715 * (x * x * x)))
        inner = self._c * (1.0 + 3.0 * 0.044715 * (x * x))
        return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner)


class Softplus(Activation):
    r""":math:`f(x) = \log(1 + e^x)`, computed as :math:`\max(x, 0) + \log(1 + e^{-|x|})`;
    :math:`f'(x) = \sigma(x)`."""

    name = "softplus"

    def forward(self, xp, x):
        return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, xp, x, y, dy):
        return dy * _sigmoid(xp, x)


class Softmax(Activation):
    r"""Softmax over the last axis: :math:`s_i = e^{x_i - m} / \sum_j e^{x_j - m}`,
    :math:`m = \max_j x_j`.

    Not element-wise: ``backward`` applies the Jacobian,
    :math:`dx = s \odot (dy - \sum_j dy_j s_j)`; ``derivative`` returns its diagonal
    :math:`s_i (1 - s_i)`. As an output link it is fused with cross-entropy instead
    (see :mod:`nnx.losses`).
    """

    name = "softmax"

    def forward(self, xp, x):
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def backward(self, xp, x, y, dy):
        return y * (dy - xp.sum(dy * y, axis=-1, keepdims=True))

    def derivative(self, x):
        xp = namespace_of(x)
        s = self.forward(xp, x)
        return s * (1.0 - s)


identity = Identity()
sigmoid = Sigmoid()
tanh = Tanh()
relu = ReLU()
leaky_relu = LeakyReLU()
elu = ELU()
selu = SELU()
swish = silu = Swish()
gelu = GELU()
softplus = Softplus()
softmax = Softmax()

ACTIVATIONS = {
    "identity": Identity,
    "linear": Identity,
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "selu": SELU,
    "swish": Swish,
    "silu": Swish,
    "gelu": GELU,
    "softplus": Softplus,
    "softmax": Softmax,
}

#: Activations for which He initialization is the default (the ReLU family).
RELU_FAMILY = (ReLU, LeakyReLU, ELU, Swish, GELU)


def get(activation) -> Activation | None:
    """Resolve an activation name, class or instance; ``None`` stays ``None`` (identity).

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the known names).
    """
    if activation is None or isinstance(activation, Activation):
        return activation
    if isinstance(activation, type) and issubclass(activation, Activation):
        return activation()
    if isinstance(activation, str):
        key = activation.lower()
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]()
    raise ValueError(
        f"unknown activation {activation!r}; choose one of {', '.join(sorted(ACTIVATIONS))} "
        "or pass an nnx.activations.Activation"
    )
