"""scikit-learn's own MLP tests, run against ``nnx.sklearn.MLPClassifier`` / ``MLPRegressor``.

The test file that ships inside the installed scikit-learn
(``sklearn/neural_network/tests/test_mlp.py``) is imported here under a new name, with its
``from sklearn.neural_network import MLPClassifier, MLPRegressor`` pointing at nnx's
estimators while it loads (so its parametrized tests get them too); its test functions are
then collected from this module. Nothing of it is copied into this repository.
"""

import importlib.util
from pathlib import Path
from unittest import mock

import pytest

neural_network = pytest.importorskip("sklearn.neural_network")

import nnx.sklearn  # noqa: E402

_PATH = Path(neural_network.__file__).parent / "tests" / "test_mlp.py"
if not _PATH.exists():
    pytest.skip(f"this scikit-learn install has no test files ({_PATH})", allow_module_level=True)


def _load():
    spec = importlib.util.spec_from_file_location("sklearn_test_mlp_on_nnx", _PATH)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.multiple(neural_network, MLPClassifier=nnx.sklearn.MLPClassifier,
                             MLPRegressor=nnx.sklearn.MLPRegressor):
        spec.loader.exec_module(module)
    return module


_SUITE = _load()

# Tests that drive scikit-learn's private members, which a drop-in need not have.
_PRIVATE = {
    "test_gradient": "calls the private _loss_grad_lbfgs(packed, X, Y, ...) of scikit-learn's "
                     "implementation",
}

for _name, _test in vars(_SUITE).items():
    if _name.startswith("test_") and callable(_test):
        if _name in _PRIVATE:
            _test = pytest.mark.xfail(reason=_PRIVATE[_name], strict=True)(_test)
        globals()[_name] = _test


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture (its conftest is not loaded here), fixed as its CI default."""
    return 42
