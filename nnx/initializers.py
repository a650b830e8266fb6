"""Weight initializers: drawn on the host (float64 NumPy) so every backend starts identical.

Each initializer is a callable ``init(shape, rng, size=None) -> numpy.ndarray`` where
``shape`` is ``(fan_in, fan_out)``, ``rng`` a :class:`numpy.random.Generator` and ``size`` the
shape drawn when it is not ``shape`` itself: a bias of ``fan_out`` entries drawn with the
kernel's bound (``Dense(bias_initializer=...)``). The layer casts the result to the network's
dtype and moves it to the device once.

==================  =======================================  ====================================
name                distribution                             use with
==================  =======================================  ====================================
``he_normal``       :math:`N(0, 2/n_{in})`                   ReLU family (He et al. 2015)
``he_uniform``      :math:`U(\\pm\\sqrt{6/n_{in}})`
``glorot_normal``   :math:`N(0, 2/(n_{in}+n_{out}))`         sigmoid, tanh (Glorot & Bengio 2010)
``glorot_uniform``  :math:`U(\\pm\\sqrt{6/(n_{in}+n_{out})})`
``lecun_normal``    :math:`N(0, 1/n_{in})`                   SELU; also the lesson's "Xavier"
``lecun_uniform``   :math:`U(\\pm\\sqrt{3/n_{in}})`
``torch_default``   :math:`U(\\pm 1/\\sqrt{n_{in}})`           ``torch.nn.Linear``'s own, for its
                                                             weight and its bias
``zeros``           all zeros                                biases (never weights: symmetry)
==================  =======================================  ====================================

Aliases ``kaiming_*`` and ``xavier_*`` name the same functions as in PyTorch. To start a
network as torch or scikit-learn would: ``Dense(units, kernel_initializer="torch_default",
bias_initializer="torch_default")``, or ``"glorot_uniform"`` for both (scikit-learn's
``MLPClassifier`` draws its weights and its biases from the same Glorot bound).
"""

from __future__ import annotations

import math

import numpy as np


def _normal(std_fn):
    def init(shape, rng: np.random.Generator, size=None) -> np.ndarray:
        return rng.standard_normal(shape if size is None else size) * std_fn(*shape)

    return init


def _uniform(limit_fn):
    def init(shape, rng: np.random.Generator, size=None) -> np.ndarray:
        limit = limit_fn(*shape)
        return rng.uniform(-limit, limit, size=shape if size is None else size)

    return init


def zeros(shape, rng=None, size=None) -> np.ndarray:
    """All zeros (for biases)."""
    return np.zeros(shape if size is None else size)


he_normal = _normal(lambda fan_in, fan_out: math.sqrt(2.0 / fan_in))
he_uniform = _uniform(lambda fan_in, fan_out: math.sqrt(6.0 / fan_in))
glorot_normal = _normal(lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out)))
glorot_uniform = _uniform(lambda fan_in, fan_out: math.sqrt(6.0 / (fan_in + fan_out)))
lecun_normal = _normal(lambda fan_in, fan_out: math.sqrt(1.0 / fan_in))
lecun_uniform = _uniform(lambda fan_in, fan_out: math.sqrt(3.0 / fan_in))
torch_default = _uniform(lambda fan_in, fan_out: 1.0 / math.sqrt(fan_in))

INITIALIZERS = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "kaiming_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "torch_default": torch_default,
    "zeros": zeros,
}


def get(initializer):
    """Resolve an initializer name or callable.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known names).
    """
    if callable(initializer):
        return initializer
    if isinstance(initializer, str) and initializer.lower() in INITIALIZERS:
        return INITIALIZERS[initializer.lower()]
    raise ValueError(
        f"unknown initializer {initializer!r}; choose one of {', '.join(sorted(INITIALIZERS))} "
        "or pass a callable (shape, rng, size=None) -> numpy array"
    )


def name_of(initializer) -> str | None:
    """The registry name of an initializer function (for serialization), if it has one."""
    for name, fn in INITIALIZERS.items():
        if fn is initializer:
            return name
    return None


def default_for(activation) -> str:
    """The lesson's rule: He for the ReLU family, LeCun for SELU, Glorot otherwise."""
    from .activations import RELU_FAMILY, SELU

    if isinstance(activation, RELU_FAMILY):
        return "he_normal"
    if isinstance(activation, SELU):
        return "lecun_normal"
    return "glorot_normal"
