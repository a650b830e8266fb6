"""scikit-learn estimators backed by nnx, in two families.

- :class:`MLPClassifier`, :class:`MLPRegressor` (:mod:`nnx.sklearn.mlp`): drop-in
  replacements for scikit-learn's, with its parameters, defaults and training procedure; with
  NumPy and float64 they reproduce scikit-learn's fit to rounding, and ``backend="torch"`` or
  ``"cupy"`` trains the same model on a GPU. Pick them to switch existing scikit-learn code,
  or to check a result against scikit-learn.
- :class:`NNXClassifier`, :class:`NNXRegressor` (:mod:`nnx.sklearn.estimators`): the same
  interface with nnx's own choices (zero biases, torch-convention optimizers, any nnx optimizer,
  dropout, batch normalization, float32 on request). Pick them for new work.
"""

from .estimators import NNXClassifier, NNXRegressor
from .mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "NNXClassifier", "NNXRegressor"]

# pickles and reprs name the public module, whichever file defines the class
for _cls in (MLPClassifier, MLPRegressor, NNXClassifier, NNXRegressor):
    _cls.__module__ = __name__
del _cls
