"""nnx: readable multi-layer perceptrons with hand-written backprop on any array API backend.

The same forward pass, backprop, losses and optimizers run on NumPy, CuPy, PyTorch or
array_api_strict, chosen by ``Network(..., backend=...)``.
"""

__version__ = "0.1.0"

from . import activations, callbacks, initializers, layers, losses, optimizers
from .backend import available_backends, get_context, to_numpy
from .callbacks import History
from .layers import Dense
from .network import Network
from .testing import check_gradients

__all__ = [
    "Network",
    "Dense",
    "History",
    "activations",
    "available_backends",
    "callbacks",
    "check_gradients",
    "get_context",
    "initializers",
    "layers",
    "losses",
    "optimizers",
    "to_numpy",
    "__version__",
]
