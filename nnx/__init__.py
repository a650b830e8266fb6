"""nnx: readable multi-layer perceptrons with hand-written backprop on any array API backend.

The same forward pass, backprop, losses and optimizers run on NumPy, CuPy, PyTorch or
array_api_strict, chosen by ``Network(..., backend=...)``.
"""

import importlib

from . import activations, callbacks, initializers, io, layers, losses, metrics, optimizers
from . import regularizers, schedules
from .backend import available_backends, get_context, to_numpy
from .callbacks import EarlyStopping, History, ModelCheckpoint, ReduceLROnPlateau
from .config import register
from .io import load, save
from .layers import BatchNorm, Dense, Dropout, LayerNorm, Residual
from .lr_finder import lr_find
from .network import DivergenceError, Network, NonFiniteWarning
from .testing import check_gradients
from .version import __version__

# Loaded on first use (``nnx.plotting``, ``nnx.sklearn``, ...): they pull in matplotlib,
# scikit-learn or torch, which ``import nnx`` alone must not need.
_LAZY = ("datasets", "demos", "overfitting", "plotting", "sklearn", "sync_audit")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Network",
    "load",
    "save",
    "io",
    "register",
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
