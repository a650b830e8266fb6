"""scikit-learn's own MLP tests, run against both estimator families of :mod:`nnx.sklearn`.

The test file that ships inside the installed scikit-learn
(``sklearn/neural_network/tests/test_mlp.py``) is imported here once per family, under a new
name, with its ``from sklearn.neural_network import MLPClassifier, MLPRegressor`` pointing at
nnx's estimators while it loads (so its parametrized tests get them too): the drop-ins
``MLPClassifier`` / ``MLPRegressor`` (class ``TestDropIn``) and nnx's own ``NNXClassifier`` /
``NNXRegressor`` (class ``TestNNX``). Nothing of it is copied into this repository.
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


def _load(name, classifier, regressor):
    spec = importlib.util.spec_from_file_location(f"sklearn_test_mlp_on_{name}", _PATH)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.multiple(neural_network, MLPClassifier=classifier, MLPRegressor=regressor):
        spec.loader.exec_module(module)
    return module


def _test_class(name, classifier, regressor, private):
    """A test class holding every test function of the file, loaded for one family; the
    tests named in ``private`` (name -> reason) are strict expected failures."""
    suite = _load(name, classifier, regressor)
    tests = {}
    for test_name, test in vars(suite).items():
        if test_name.startswith("test_") and callable(test):
            if test_name in private:
                test = pytest.mark.xfail(reason=private[test_name], strict=True)(test)
            tests[test_name] = staticmethod(test)
    return type(f"Test{name}", (), tests)


# Tests that drive scikit-learn's private members, which these estimators need not have.
_GRADIENT = ("calls the private _loss_grad_lbfgs(packed, X, Y, ...) of scikit-learn's "
             "implementation")

TestDropIn = _test_class("DropIn", nnx.sklearn.MLPClassifier, nnx.sklearn.MLPRegressor,
                         {"test_gradient": _GRADIENT})
TestNNX = _test_class("NNX", nnx.sklearn.NNXClassifier, nnx.sklearn.NNXRegressor,
                      {"test_gradient": _GRADIENT})


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture (its conftest is not loaded here), fixed as its CI default."""
    return 42
