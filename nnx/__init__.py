"""nnx: readable multi-layer perceptrons with hand-written backprop on any array API backend.

The same forward pass, backprop, losses and optimizers run on NumPy, CuPy, PyTorch or
array_api_strict, chosen by ``Network(..., backend=...)``.
"""

__version__ = "0.1.0"

from . import activations, callbacks, initializers, layers, losses, optimizers, regularizers
from . import schedules
from . import metrics
from .backend import available_backends, get_context, to_numpy
from .callbacks import EarlyStopping, History, ReduceLROnPlateau
from .layers import BatchNorm, Dense, Dropout, LayerNorm, Residual
from .lr_finder import lr_find
from .network import DivergenceError, Network, NonFiniteWarning
from .testing import check_gradients
from . import io
from .callbacks import ModelCheckpoint
from .io import load, save

__all__ = [
    "Network",
    "load",
    "save",
    "io",
    "ModelCheckpoint",
    "DivergenceError",
    "NonFiniteWarning",
    "Dense",
    "Dropout",
    "BatchNorm",
    "LayerNorm",
    "Residual",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "lr_find",
    "schedules",
    "metrics",
    "History",
    "regularizers",
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
