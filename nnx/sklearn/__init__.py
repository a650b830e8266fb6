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

import sklearn as _sklearn

#: The oldest scikit-learn these estimators work with: ``validate_data`` and
#: ``__sklearn_tags__`` came in 1.6, the MLP's ``sample_weight`` and ``MLPRegressor(loss=...)``
#: (which the drop-ins take their parameters and checks from) in 1.7.
_MIN_SKLEARN = (1, 7)


def _check_sklearn_version(version: str) -> None:
    """ImportError naming the version needed when ``version`` is older than
    :data:`_MIN_SKLEARN` (checked at import, before any name fails to import)."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit()) or "0"
        parts.append(int(digits))
    if tuple(parts) < _MIN_SKLEARN:
        need = ".".join(map(str, _MIN_SKLEARN))
        raise ImportError(f"nnx.sklearn needs scikit-learn >= {need}; found {version}. "
                          f'Upgrade it: pip install "scikit-learn>={need}"')


_check_sklearn_version(_sklearn.__version__)

from .estimators import NNXClassifier, NNXRegressor  # noqa: E402
from .mlp import MLPClassifier, MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor", "NNXClassifier", "NNXRegressor"]

# pickles and reprs name the public module, whichever file defines the class
for _cls in (MLPClassifier, MLPRegressor, NNXClassifier, NNXRegressor):
    _cls.__module__ = __name__
del _cls
