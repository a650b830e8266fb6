"""The input boundary, fuzzed with hypothesis.

Every public call either works and gives finite results, or raises one of the documented
exceptions with a message naming the problem: ``ValueError`` for bad input (``ImportError``
for a backend that is not installed, ``nnx.DivergenceError`` when training diverges,
scikit-learn's ``NotFittedError`` / ``TypeError`` from the estimators' scikit-learn
validation). Never an exception from inside the math (IndexError, ZeroDivisionError, AxisError,
a torch RuntimeError...), never a RuntimeWarning (pyproject turns them into errors), never a
silent NaN.

Each property also carries an independent oracle where one is cheap (valid features with
moderate values *must* work, invalid ones *must* raise), so the tests can fail both ways.

The properties run derandomized (a fixed seed, no example database) with modest example
counts: the whole file takes seconds. ``docs/reliability.md`` is the table of what these tests
prove, one row per bad-input class, each naming its test.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnx
from nnx import callbacks, layers, losses, optimizers, regularizers, schedules
from nnx import activations as acts
from nnx.backend import to_numpy

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]
F32_MAX = float(np.finfo(np.float32).max)


def fuzz(max_examples):
    """Reproducible settings: fixed seed, no database, no deadline (the first call of a
    backend compiles / imports)."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


BACKENDS = ["numpy", "torch", "array_api_strict"]


def _backend_kwargs(name):
    if name == "torch":
        pytest.importorskip("torch")
        return {"backend": "torch", "device": "cpu"}
    if name == "array_api_strict":
        xps = pytest.importorskip("array_api_strict")
        xps.set_array_api_strict_flags(api_version="2024.12")
        return {"backend": "array_api_strict", "device": xps.Device("device1")}
    return {"backend": "numpy"}


# --------------------------------------------------------------------------- outcomes


def outcome(call, allowed=(ValueError,)):
    """``("ok", result)`` or ``("error", exc)`` for an allowed exception; anything else (an
    exception from inside the math, a RuntimeWarning turned error) propagates and fails."""
    try:
        return "ok", call()
    except allowed as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return "error", exc


def assert_names(exc, *words):
    """The message names the problem: one of ``words`` appears in it (case-insensitive)."""
    text = str(exc).lower()
    assert any(w.lower() in text for w in words), f"{words} not in message: {exc}"


def finite(x) -> bool:
    a = np.asarray(to_numpy(x))
    return a.dtype.kind not in "fc" or bool(np.all(np.isfinite(a)))


# --------------------------------------------------------------------------- strategies

FEATURE_DTYPES = ["bool", "int8", "int64", "uint64", "float16", "float32", "float64",
                  "complex128", "object", "U8"]

HUGE = st.sampled_from([1e30, -1e30, 1e300, -1e300, 3.5e38, -3.5e38, 1e38, 1e-300])


def _elements(dtype: str):
    if dtype == "bool":
        return st.booleans()
    if dtype in ("int8", "int64", "uint64"):
        return st.one_of(st.integers(0 if dtype == "uint64" else -3, 3),
                         hnp.from_dtype(np.dtype(dtype)))
    if dtype in ("float16", "float32", "float64"):
        width = {"float16": 16, "float32": 32, "float64": 64}[dtype]
        special = hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
        extra = [HUGE] if dtype == "float64" else []
        return st.one_of(st.floats(-3, 3, width=width), special, *extra)
    if dtype == "complex128":
        return st.complex_numbers(max_magnitude=3)
    if dtype == "object":
        return st.one_of(st.floats(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                         st.integers(-10**400, 10**400), st.integers(-3, 3),
                         st.text(max_size=3), st.none(), st.sampled_from(["1.5", "nan", "2"]),
                         st.complex_numbers(max_magnitude=2))
    return st.one_of(st.text(alphabet="0123456789.-e", max_size=5), st.text(max_size=3))


@st.composite
def feature_arrays(draw, n_features=2, dtypes=FEATURE_DTYPES, max_rows=5):
    """Arrays meant as X: mostly ``(rows, n_features)`` (rows 0..max_rows, one-row
    included), sometimes any shape (0-d to 3-D, wrong width), of every dtype family."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.one_of(
        st.tuples(st.integers(0, max_rows), st.just(n_features)),
        st.tuples(st.integers(1, max_rows), st.just(n_features)),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    ))
    return hnp_array(draw, dtype, shape)


@st.composite
def clean_features(draw, n_features=2, max_rows=6):
    """Valid X with moderate values (so that valid input is common among the examples)."""
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool"]))
    n = draw(st.integers(1, max_rows))
    elements = {"float64": st.floats(-10, 10), "float32": st.floats(-10, 10, width=32),
                "int64": st.integers(-10, 10), "bool": st.booleans()}[dtype]
    return draw(hnp.arrays(np.dtype(dtype), (n, n_features), elements=elements))


@st.composite
def clean_targets(draw, kind, n):
    """Valid y for a task: labels of several types, or regression values."""
    if kind == "regression":
        return draw(hnp.arrays(np.float64, (n,), elements=st.floats(-10, 10)))
    labels = draw(st.sampled_from(
        [[0, 1], ["no", "yes"], [False, True], [1.5, 2.5]] if kind == "binary"
        else [["a", "b", "c"], [0, 1, 2], [-1, 5, 9]]))
    return np.array(draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))


def hnp_array(draw, dtype, shape):
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=_elements(dtype)))


def as_container(arr, kind):
    """The same data as a NumPy array, a Python list or a pandas DataFrame / Series."""
    if kind == "list":
        return arr.tolist()
    if kind == "pandas" and arr.ndim == 2:
        return pd.DataFrame(arr)
    if kind == "pandas" and arr.ndim == 1:
        return pd.Series(arr)
    return arr


def oracle_features(arr, n_features, dtype="float32"):
    """Independent of nnx: ``(valid, largest |x|)`` for a feature array."""
    a = np.asarray(arr)
    if a.dtype.kind in "OUS":
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            return False, None
    if a.dtype.kind not in "biuf" or a.ndim != 2 or 0 in a.shape or a.shape[1] != n_features:
        return False, None
    largest = float(np.max(np.abs(a.astype(np.float64))))
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        return False, None
    return largest <= float(np.finfo(dtype).max), largest


ANYTHING = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2),
    st.integers(-5, 5), st.integers(-10**400, 10**400),
    st.booleans(), st.none(), st.text(max_size=4),
    st.sampled_from([np.float32(0.5), np.int64(3), np.float64("nan"), np.bool_(True),
                     1 + 1j, [0.1], (1,), {"a": 1}, b"1", 1e300, -0.0, 0.999, 1.0, 0]),
)


# --------------------------------------------------------------------------- fitted networks

_FITTED = {}

X_TRAIN = np.random.default_rng(0).normal(size=(24, 2))
Y_KINDS = {
    "binary": np.array([0, 1] * 12),
    "multiclass": np.array(["a", "b", "c"] * 8),
    "regression": X_TRAIN[:, 0] - 2 * X_TRAIN[:, 1],
}


def fitted(kind, backend_name):
    """One small trained network per (task, backend), shared by the read-only properties."""
    key = (kind, backend_name)
    if key not in _FITTED:
        out = 3 if kind == "multiclass" else 1
        net = nnx.Network([2, 5, out], loss="mse" if kind == "regression" else None,
                          seed=0, **_backend_kwargs(backend_name))
        net.fit(X_TRAIN, Y_KINDS[kind], epochs=5, batch_size=8)
        _FITTED[key] = net
    return _FITTED[key]


def labels_for(kind, n):
    return np.resize(Y_KINDS[kind], max(n, 0))


def rows_of(arr):
    return arr.shape[0] if getattr(arr, "ndim", 0) >= 1 else 1


def check_predict_family(net, kind, X, valid, largest, X_arr=None):
    """predict / predict_proba / evaluate / score / gradients on one X against the oracle."""
    n = rows_of(np.asarray(X_arr if X_arr is not None else X))
    y = labels_for(kind, n)
    calls = {"predict": lambda: net.predict(X), "evaluate": lambda: net.evaluate(X, y),
             "gradients": lambda: net.gradients(X, y), "score": lambda: net.score(X, y)}
    if kind != "regression":
        calls["predict_proba"] = lambda: net.predict_proba(X)
    for name, call in calls.items():
        status, result = outcome(call)
        event(f"{'valid' if valid else 'invalid'} X: {name} {status}")
        if not valid:
            assert status == "error", (name, "invalid X was accepted")
            assert_names(result, "X")
            continue
        if status == "error":
            # valid X may only fail when its values overflow the float32 arithmetic
            assert largest > 1e4, (name, result)
            assert_names(result, "NaN or inf", "too large")
            continue
        if name == "evaluate":
            assert all(math.isfinite(v) for v in result.values()), result
        elif name == "gradients":
            loss, grads = result
            assert math.isfinite(loss) and all(finite(g) for g in grads.values())
        elif name == "score":
            assert math.isfinite(result)
        else:
            out = np.asarray(to_numpy(result))
            assert out.shape[0] == n and finite(out), (name, out)
            if name == "predict_proba":
                assert np.all((out >= 0) & (out <= 1))
                np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-4)
            elif name == "predict" and kind != "regression":
                assert set(np.asarray(out).ravel().tolist()) <= set(net.classes_.tolist())


# --------------------------------------------------------------------------- features


@fuzz(200)
@given(arr=feature_arrays(), container=st.sampled_from(["numpy", "list", "pandas"]),
       kind=st.sampled_from(["binary", "multiclass", "regression"]))
def test_inference_on_fuzzed_features_numpy(arr, container, kind):
    net = fitted(kind, "numpy")
    valid, largest = oracle_features(arr, 2)
    check_predict_family(net, kind, as_container(arr, container), valid, largest, arr)


def _device_array(arr, backend_name, kwargs):
    """``arr`` as an array of the network's own backend (the device-side check path)."""
    if backend_name == "torch":
        import torch

        return torch.asarray(arr)
    import array_api_strict as xps

    return xps.asarray(arr, device=kwargs["device"])


@pytest.mark.parametrize("backend_name", ["torch", "array_api_strict"])
@fuzz(40)
@given(data=st.data())
def test_inference_on_fuzzed_features_other_backends(backend_name, data):
    kwargs = _backend_kwargs(backend_name)
    # dtypes the backend's own arrays can hold (array_api_strict has no float16)
    device_dtypes = ["bool", "int8", "int64", "float32", "float64", "complex128"]
    if backend_name == "torch":
        device_dtypes.append("float16")
    on_device = data.draw(st.booleans(), label="device array")
    arr = data.draw(feature_arrays(dtypes=device_dtypes if on_device else FEATURE_DTYPES))
    kind = data.draw(st.sampled_from(["binary", "multiclass", "regression"]))
    X = _device_array(arr, backend_name, kwargs) if on_device else as_container(
        arr, data.draw(st.sampled_from(["numpy", "list", "pandas"])))
    valid, largest = oracle_features(arr, 2)
    check_predict_family(fitted(kind, backend_name), kind, X, valid, largest, arr)


@fuzz(60)
@given(data=st.data())
def test_nan_and_inf_placement_is_reported_where_it_is(data):
    """One bad value anywhere in an otherwise clean X: the error names its row and column."""
    n = data.draw(st.integers(1, 6))
    X = data.draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(-5, 5)))
    bad = data.draw(hnp.arrays(bool, (n, 2)))
    bad[data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, 1))] = True
    X[bad] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    row, col = np.argwhere(bad)[0]
    for call in (fitted("binary", "numpy").predict,
                 lambda X: nnx.Network([2, 3, 1]).fit(X, np.resize([0, 1], n), epochs=1)):
        with pytest.raises(ValueError, match=f"NaN or inf \\(first at row {row}, column {col}\\)"):
            call(pd.DataFrame(X) if data.draw(st.booleans()) else X)


@fuzz(100)
@given(data=st.data())
def test_evaluate_and_score_on_fuzzed_targets(data):
    """A fitted network, valid X, any y: finite scores or a ValueError about y."""
    kind = data.draw(st.sampled_from(["binary", "multiclass", "regression"]))
    net = fitted(kind, "numpy")
    X = data.draw(clean_features())
    n = X.shape[0]
    y = data.draw(st.one_of(clean_targets(kind, n), target_arrays(n)))
    y_in = as_container(y, data.draw(st.sampled_from(["numpy", "list", "pandas"])))
    for name, call in (("evaluate", lambda: net.evaluate(X, y_in)),
                       ("score", lambda: net.score(X, y_in))):
        status, result = outcome(call)
        event(f"{name} {status}")
        if status == "error":
            assert_names(result, "y", "label", "class", "target", "lengths")
        elif name == "evaluate":
            assert all(math.isfinite(v) for v in result.values()), result
        else:
            assert math.isfinite(result)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("value", [1e300, -1e300, 3.5e38, 1e39])
def test_float64_beyond_float32_is_an_error_not_inf(backend_name, value):
    """A float64 1e300 is inf in float32: refused before the cast, on host and device input."""
    net = fitted("binary", backend_name)
    X = np.array([[value, 0.5], [0.1, 0.2]])
    with pytest.raises(ValueError, match="too large for float32"):
        net.predict(X)
    with pytest.raises(ValueError, match="too large for float32"):
        nnx.Network([2, 3, 1], seed=0, **_backend_kwargs(backend_name)).fit(X, [0, 1], epochs=1)
    if backend_name != "numpy":
        kwargs = _backend_kwargs(backend_name)
        with pytest.raises(ValueError, match="too large for float32"):
            net.predict(_device_array(X, backend_name, kwargs))
    # the same values are fine in a float64 network
    net64 = nnx.Network([2, 3, 1], seed=0, dtype="float64", **_backend_kwargs(backend_name))
    net64.fit(np.array([[0.1, 0.5], [0.1, 0.2]]), [0, 1], epochs=1)
    assert np.all(np.isfinite(to_numpy(net64.predict_proba(X))))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_overflowing_arithmetic_is_an_error_not_a_silent_nan(backend_name):
    """Values that fit float32 but overflow the forward pass (3e38 times a weight)."""
    net = fitted("multiclass", backend_name)
    X = np.full((3, 2), 3.0e38)
    for call in (net.predict, net.predict_proba, lambda X: net.evaluate(X, ["a", "b", "c"]),
                 lambda X: net.gradients(X, ["a", "b", "c"])):
        with pytest.raises(ValueError, match="NaN or inf.*overflowed float32"):
            call(X)


def test_a_sigmoid_output_saturates_instead_of_failing():
    """Logits that overflow to +-inf (not NaN) give probabilities 0/1: finite, returned."""
    net = nnx.Network([layers.Dense(1)], input_dim=2, seed=0)
    net.fit(X_TRAIN, Y_KINDS["binary"], epochs=1)
    net.set_parameters({"layers.0.W": np.ones((2, 1)), "layers.0.b": np.zeros(1)})
    proba = net.predict_proba(np.array([[3e38, 3e38], [-3e38, -3e38]]))
    np.testing.assert_array_equal(proba, [[0.0, 1.0], [1.0, 0.0]])


def test_inverse_time_with_a_huge_power_decays_to_zero():
    """Host-float schedules: (1 + k) ** 500 used to raise OverflowError."""
    assert schedules.InverseTime(0.1, power=500)(100) == 0.0
    rate = schedules.InvScaling(0.1, power_t=214)(27)
    assert 0.0 <= rate < 1e-300


def test_non_finite_parameters_are_named_at_predict():
    net = nnx.Network([2, 3, 1], seed=0)
    net.fit(X_TRAIN, Y_KINDS["binary"], epochs=1)
    net.set_parameters({"layers.0.W": np.full((2, 3), np.nan)})
    with pytest.raises(ValueError, match="parameters contain NaN or inf"):
        net.predict_proba(X_TRAIN)


@pytest.mark.parametrize("X,match", [
    ([[10**400, 1]], "too large for float64"),
    (np.array([[10**400, 1]], dtype=object), "too large for float64"),
    (pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]}),
     "missing values"),
    (np.array([[None, 1.0]], dtype=object), "missing values"),
    (np.array([[1 + 1j, 1]], dtype=object), "real"),
    (np.array([["1+2j", "1"]]), "real"),
    ([[1, 2], [3]], "could not be read as an array"),
    ({"a": 1}, "numeric"),
    ("abc", "numeric"),
    (np.array([["2020-01-01", "2020-01-02"]], dtype="datetime64[D]"), "numeric"),
])
def test_unreadable_features_name_the_problem(X, match):
    with pytest.raises(ValueError, match=match):
        fitted("binary", "numpy").predict(X)


def test_numeric_strings_and_pandas_frames_are_features():
    net = fitted("binary", "numpy")
    X = np.array([["0.5", "-1"], ["2", "1e-3"]])
    expected = net.predict_proba(X.astype(float))
    np.testing.assert_allclose(net.predict_proba(X), expected)
    np.testing.assert_allclose(net.predict_proba(pd.DataFrame(X.astype(float), columns=["a", "b"])),
                               expected)
    np.testing.assert_allclose(net.predict_proba(X.astype(float).tolist()), expected)


# --------------------------------------------------------------------------- training data


@st.composite
def target_arrays(draw, n):
    """y meant for n rows: labels of every dtype, NaN/None holes, wrong lengths and ranks."""
    length = draw(st.one_of(st.just(n), st.just(n), st.integers(0, n + 2)))
    shape = draw(st.one_of(st.just((length,)), st.just((length,)),
                           st.tuples(st.just(length), st.integers(0, 3)),
                           hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)))
    dtype = draw(st.sampled_from(["int64", "bool", "float64", "U3", "object", "complex128"]))
    elements = {
        "int64": st.integers(0, 3),
        "bool": st.booleans(),
        "float64": st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 1.0, np.nan, np.inf,
                                                                1e300, 1e30])),
        "U3": st.sampled_from(["a", "b", "c", ""]),
        "object": st.one_of(st.sampled_from(["a", "b", 1, 2.5, None, float("nan")])),
        "complex128": st.complex_numbers(max_magnitude=2),
    }[dtype]
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))


@fuzz(200)
@given(data=st.data())
def test_fit_on_fuzzed_data_numpy(data):
    kind = data.draw(st.sampled_from(["binary", "multiclass", "regression"]))
    arr = data.draw(st.one_of(clean_features(), feature_arrays(max_rows=6)))
    n = rows_of(arr)
    y = data.draw(st.one_of(clean_targets(kind, n), target_arrays(n)))
    X = as_container(arr, data.draw(st.sampled_from(["numpy", "list", "pandas"])))
    y_in = as_container(y, data.draw(st.sampled_from(["numpy", "list", "pandas"])))
    net = nnx.Network([2, 3, 3 if kind == "multiclass" else 1], seed=0,
                      loss="mse" if kind == "regression" else None)
    valid_X, largest = oracle_features(arr, 2)
    status, result = outcome(lambda: net.fit(X, y_in, epochs=2, batch_size=4),
                             allowed=(ValueError, nnx.DivergenceError))
    event(f"fit {status}" + ("" if status == "ok" else f": {str(result)[:25]}"))
    if not valid_X:
        assert status == "error" and not isinstance(result, nnx.DivergenceError)
        assert_names(result, "X")
        return
    if y.ndim >= 1 and y.shape[0] != n and y.ndim <= 2:
        assert status == "error"
        assert_names(result, "different lengths")
        return
    if y.dtype.kind == "c" or (y.dtype.kind == "f" and not np.all(np.isfinite(y))):
        assert status == "error"
        assert_names(result, "y")
        return
    if status == "error":
        if isinstance(result, nnx.DivergenceError):
            assert largest > 100, result  # only unscaled inputs may diverge in 2 epochs
        else:
            assert_names(result, "y", "class", "label", "target", "output")
        return
    # it trained: every parameter and every logged loss is finite, and it predicts
    assert all(finite(p) for p in net.parameters().values())
    assert all(math.isfinite(v) for v in result.history["loss"])
    pred = net.predict(X)
    assert len(to_numpy(pred)) == n and finite(pred)


@pytest.mark.parametrize("backend_name", ["torch", "array_api_strict"])
@fuzz(30)
@given(data=st.data())
def test_fit_on_fuzzed_data_other_backends(backend_name, data):
    kwargs = _backend_kwargs(backend_name)
    arr = data.draw(feature_arrays(max_rows=6))
    n = rows_of(arr)
    y = data.draw(target_arrays(n))
    net = nnx.Network([2, 3, 1], seed=0, **kwargs)
    valid_X, _ = oracle_features(arr, 2)
    status, result = outcome(lambda: net.fit(arr, y, epochs=1, batch_size=4),
                             allowed=(ValueError, nnx.DivergenceError))
    if not valid_X:
        assert status == "error"
        assert_names(result, "X")
    elif status == "ok":
        assert all(finite(p) for p in net.parameters().values())
        assert finite(net.predict_proba(arr))


@fuzz(100)
@given(data=st.data())
def test_fuzzed_sample_and_class_weights(data):
    kind = data.draw(st.sampled_from(["binary", "multiclass"]))
    y = Y_KINDS[kind][:12]
    n = 12
    sw_dtype = data.draw(st.sampled_from(["float64", "int64", "bool", "U2", "object"]))
    sw_shape = data.draw(st.one_of(st.just((n,)), st.just((n,)), st.just((n, 1)),
                                   st.integers(0, n + 2).map(lambda k: (k,)),
                                   hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)))
    sw_elements = {"float64": st.one_of(st.floats(0, 3), st.sampled_from(
                       [0.0, -1.0, np.nan, np.inf, 1e300, 1e-45])),
                   "int64": st.integers(-1, 3), "bool": st.booleans(),
                   "U2": st.sampled_from(["1", "a"]), "object": st.sampled_from([1.0, None])}
    sample_weight = data.draw(st.one_of(st.none(), hnp.arrays(
        np.dtype(sw_dtype), sw_shape, elements=sw_elements[sw_dtype])))
    labels = sorted(set(y.tolist()))
    class_weight = data.draw(st.one_of(
        st.none(), st.just("balanced"), st.text(max_size=3), st.just([1, 2]),
        st.dictionaries(st.sampled_from(labels + ["zz", 7]), ANYTHING, max_size=3)))
    net = nnx.Network([2, 3, 3 if kind == "multiclass" else 1], seed=0)
    status, result = outcome(lambda: net.fit(X_TRAIN[:n], y, epochs=2, batch_size=4,
                                             sample_weight=sample_weight,
                                             class_weight=class_weight))
    event(f"weights {status}")
    # oracle for sample_weight alone
    sw_ok = True
    if sample_weight is not None:
        w = sample_weight
        if w.ndim == 2 and w.shape[1] == 1:
            w = w[:, 0]
        sw_ok = (w.dtype.kind in "biuf" and w.shape == (n,)
                 and bool(np.all(np.isfinite(w.astype(float)))) and bool(np.all(w >= 0))
                 and bool(np.any(w > 0)) and float(np.max(np.abs(w.astype(float)))) <= F32_MAX)
    if not sw_ok:
        assert status == "error"
        assert_names(result, "sample_weight")
        return
    if status == "error":
        assert_names(result, "class_weight", "sample_weight")
        return
    assert all(finite(p) for p in net.parameters().values())
    assert all(math.isfinite(v) for v in result.history["loss"])


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_a_batch_whose_weights_are_all_zero_is_not_nan(backend_name):
    """Cross-entropy divides by the batch's weight sum: 0/0 used to make the loss NaN."""
    X = X_TRAIN[:12]
    y = Y_KINDS["multiclass"][:12]
    weights = np.r_[np.zeros(4), np.ones(8)]
    net = nnx.Network([2, 4, 3], seed=0, **_backend_kwargs(backend_name))
    history = net.fit(X, y, epochs=3, batch_size=4, shuffle=False, sample_weight=weights)
    assert all(math.isfinite(v) for v in history.history["loss"])
    assert all(finite(p) for p in net.parameters().values())


@pytest.mark.parametrize("kwargs,match", [
    ({"class_weight": {"a": 0, "b": 0, "c": 0}}, "sample_weight \\* class_weight is zero"),
    ({"class_weight": {"a": 1e300}}, "class_weight\\['a'\\] must be at most 3.4e\\+38"),
    ({"class_weight": {"a": 1e38}, "sample_weight": np.full(12, 100.0)},
     "sample_weight \\* class_weight has values too large for float32"),
    ({"class_weight": {"a": np.float32(2.0)}}, None),  # NumPy scalars are numbers
    ({"class_weight": {"a": "heavy"}}, "class_weight\\['a'\\] must be a number"),
    ({"sample_weight": np.full(12, 1e300)}, "sample_weight has values too large"),
])
def test_weight_edge_cases(kwargs, match):
    net = nnx.Network([2, 3, 3], seed=0)

    def call():
        net.fit(X_TRAIN[:12], Y_KINDS["multiclass"][:12], epochs=1, **kwargs)

    if match is None:
        call()
    else:
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("y,match", [
    (np.ones((24, 0)), "no columns"),
    (np.full(24, 1e300), "too large for float32"),
    (np.array(["1.5"] * 24), "regression targets must be numeric"),
    (np.ones((24, 2)), "2 target column"),
])
def test_regression_targets_name_the_problem(y, match):
    net = nnx.Network([2, 3, 1], loss="mse", seed=0)
    with pytest.raises(ValueError, match=match):
        net.fit(X_TRAIN, y, epochs=1)
    fitted_net = fitted("regression", "numpy")
    with pytest.raises(ValueError, match=match):
        fitted_net.evaluate(X_TRAIN, y)


def test_train_step_and_gradients_on_one_row_and_bad_rows():
    net = nnx.Network([2, 3, 1], seed=0)
    assert math.isfinite(net.train_step(X_TRAIN[:1], [1]))
    loss, grads = net.gradients(X_TRAIN[:1], [0])
    assert math.isfinite(loss) and all(finite(g) for g in grads.values())
    with pytest.raises(ValueError, match="X is empty"):
        net.train_step(X_TRAIN[:0], [])
    with pytest.raises(ValueError, match="different lengths"):
        net.gradients(X_TRAIN[:3], [0, 1])
    bn = nnx.Network([layers.Dense(3), layers.BatchNorm(), layers.Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="BatchNorm needs at least 2"):
        bn.train_step(X_TRAIN[:1], [1])


# --------------------------------------------------------------------------- hyperparameters

# parameters that take objects, not numbers/flags/names: not fuzzed here
_OBJECT_PARAMS = {"schedule", "layers", "stream", "activation", "kernel_initializer",
                  "kernel_regularizer", "kernel_constraint"}
_REQUIRED = {"learning_rate": 0.1, "initial_learning_rate": 0.1, "step_size": 2,
             "milestones": [2, 4], "gamma": 0.5, "total_steps": 10, "period": 5,
             "schedule": schedules.Constant(0.1), "warmup_steps": 2, "max_learning_rate": 0.1,
             "steps_per_epoch": 3, "rate": 0.5, "units": 3}
_CONSTRUCTORS = (
    [getattr(optimizers, n) for n in ("SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW",
                                      "NAdam", "RAdam", "Adamax", "Lion", "LBFGS")]
    + [getattr(schedules, n) for n in ("Constant", "StepDecay", "MultiStep", "Exponential",
                                       "InverseTime", "InvScaling", "Polynomial",
                                       "CosineAnnealing", "LinearWarmup", "OneCycle", "PerEpoch")]
    + [callbacks.EarlyStopping, callbacks.ReduceLROnPlateau, callbacks.GradientMonitor]
    + [layers.Dense, layers.Dropout, layers.BatchNorm, layers.LayerNorm]
    + [regularizers.L1L2, regularizers.L1, regularizers.L2, regularizers.MaxNorm]
    + [acts.LeakyReLU, acts.ELU, losses.Huber, losses.CategoricalCrossentropy]
)
HYPERPARAMETERS = [
    pytest.param(cls, name, id=f"{cls.__name__}.{name}")
    for cls in _CONSTRUCTORS for name in inspect.signature(cls).parameters
    if name not in _OBJECT_PARAMS
]


def _use(obj):
    """Put a constructed object to work on a tiny problem; returns nothing, raises what the
    use raises."""
    X, y = X_TRAIN[:12], Y_KINDS["binary"][:12]
    if isinstance(obj, optimizers.Optimizer):
        net = nnx.Network([2, 3, 1], optimizer=obj, seed=0)
        net.fit(X, y, epochs=2, batch_size=4)
    elif isinstance(obj, schedules.Schedule):
        for step in range(0, 30, 3):
            rate = obj(step)
            assert isinstance(rate, float) and math.isfinite(rate) and rate >= 0, rate
        return
    elif isinstance(obj, callbacks.Callback):
        net = nnx.Network([2, 3, 1], seed=0)
        net.fit(X, y, epochs=3, batch_size=4, callbacks=[obj], validation_split=0.25)
    elif isinstance(obj, layers.Layer):
        net = nnx.Network([obj, layers.Dense(1)], input_dim=2, seed=0)
        net.fit(X, y, epochs=2, batch_size=4)
    elif isinstance(obj, regularizers.MaxNorm):
        net = nnx.Network([layers.Dense(3, kernel_constraint=obj), layers.Dense(1)], input_dim=2)
        net.fit(X, y, epochs=2, batch_size=4)
    elif isinstance(obj, regularizers.Regularizer):
        net = nnx.Network([layers.Dense(3, kernel_regularizer=obj), layers.Dense(1)], input_dim=2)
        net.fit(X, y, epochs=2, batch_size=4)
    elif isinstance(obj, acts.Activation):
        net = nnx.Network([layers.Dense(3, activation=obj), layers.Dense(1)], input_dim=2)
        net.fit(X, y, epochs=2, batch_size=4)
    elif isinstance(obj, losses.Loss):
        multi = isinstance(obj, losses.CategoricalCrossentropy)
        net = nnx.Network([2, 3, 3 if multi else 1], loss=obj, seed=0)
        net.fit(X, Y_KINDS["multiclass"][:12] if multi else X[:, 0], epochs=2, batch_size=4)
    else:
        raise AssertionError(f"no use for {obj!r}")
    assert all(finite(p) for p in net.parameters().values())


def _values_for(name):
    """Anything, but no huge valid counts: epochs=10**300 is legal and would just run."""
    if name in ("max_iter", "max_eval", "epochs", "patience", "cooldown", "history_size",
                "total_steps", "warmup_steps", "period", "step_size", "steps_per_epoch",
                "n_iter_no_change", "decay_steps", "units"):
        return ANYTHING.filter(lambda v: not (isinstance(v, int) and v > 50))
    return ANYTHING


@pytest.mark.parametrize("cls,name", HYPERPARAMETERS)
@fuzz(10)
@given(data=st.data())
def test_fuzzed_hyperparameters_construct_or_name_the_parameter(cls, name, data):
    value = data.draw(_values_for(name), label=name)
    params = inspect.signature(cls).parameters
    kwargs = {k: _REQUIRED[k] for k, p in params.items()
              if p.default is inspect.Parameter.empty and k != name}
    kwargs[name] = value
    status, result = outcome(lambda: cls(**kwargs))
    if status == "error":
        # the parameter by its name ("l" of L1 is reported as "l1")
        assert_names(result, name)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. "monitor not logged"
        outcome(lambda: _use(result), allowed=(ValueError, nnx.DivergenceError))


NETWORK_KWARGS = {
    "activation": (st.sampled_from(["relu", "tanh", "sigmoid", "softmax", "RELU"]), "activation"),
    "kernel_initializer": (st.sampled_from(["he_normal", "glorot_uniform", "zeros"]),
                           "initializer"),
    "loss": (st.sampled_from(["mse", "bce", "huber", "categorical_crossentropy"]), "loss"),
    "optimizer": (st.sampled_from(["sgd", "adam", "lbfgs", "lion"]), "optimizer"),
    "learning_rate": (st.floats(1e-4, 1.0), "learning_rate"),
    "backend": (st.sampled_from(["numpy", "torch", "array_api_strict", "cupy"]), "backend"),
    "device": (st.sampled_from([None, "cpu"]), "device"),
    "dtype": (st.sampled_from(["float32", "float64"]), "dtype"),
    "seed": (st.integers(0, 2**64), "seed"),
    "l1": (st.floats(0, 1), "l1"),
    "l2": (st.floats(0, 1), "l2"),
    "input_dim": (st.just(2), "input_dim"),
}


@pytest.mark.parametrize("name", sorted(NETWORK_KWARGS))
@fuzz(20)
@given(data=st.data())
def test_fuzzed_network_arguments(name, data):
    valid, word = NETWORK_KWARGS[name]
    value = data.draw(st.one_of(valid, ANYTHING), label=name)
    status, result = outcome(
        lambda: nnx.Network([2, 3, 1], **{name: value}),
        allowed=(ValueError, ImportError) if name == "backend" else (ValueError,))
    if status == "error":
        if isinstance(result, ImportError):
            assert value == "cupy" and "cupy" in str(result)
        else:
            assert_names(result, word)
        return
    X, y = X_TRAIN[:8], Y_KINDS["binary"][:8]
    status, fit_result = outcome(lambda: result.fit(X, y, epochs=2),
                                 allowed=(ValueError, nnx.DivergenceError))
    if status == "ok":
        assert all(finite(p) for p in result.parameters().values())
        assert finite(result.predict(X))


FIT_KWARGS = {
    "epochs": (st.integers(0, 3), "epochs"),
    "batch_size": (st.one_of(st.none(), st.integers(1, 10**30)), "batch_size"),
    "shuffle": (st.booleans(), "shuffle"),
    "validation_split": (st.floats(0.05, 0.9), "validation_split"),
    "callbacks": (st.sampled_from([None, [], [callbacks.EarlyStopping(monitor="loss")],
                                   callbacks.EarlyStopping(monitor="loss"), [print]]),
                  "callbacks"),
    "on_nonfinite": (st.sampled_from(["raise", "warn"]), "on_nonfinite"),
    "validation_data": (st.sampled_from([None, (X_TRAIN[:3], [0, 1, 0]), (X_TRAIN[:3],),
                                         (X_TRAIN[:3], [0, 1])]), "validation"),
}


@pytest.mark.parametrize("name", sorted(FIT_KWARGS))
@fuzz(20)
@given(data=st.data())
def test_fuzzed_fit_arguments(name, data):
    valid, word = FIT_KWARGS[name]
    values = ANYTHING.filter(lambda v: not (name == "epochs" and isinstance(v, int) and v > 3))
    value = data.draw(st.one_of(valid, values), label=name)
    net = nnx.Network([2, 3, 1], seed=0)
    kwargs = {"epochs": 1, name: value}
    status, result = outcome(lambda: net.fit(X_TRAIN[:8], Y_KINDS["binary"][:8], **kwargs))
    if status == "error":
        assert_names(result, word, "different lengths", "Callback")
    else:
        assert all(finite(p) for p in net.parameters().values())


# --------------------------------------------------------------------------- estimators

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import NotFittedError  # noqa: E402

from nnx.sklearn import NNXClassifier, NNXRegressor  # noqa: E402

_ESTIMATOR_ERRORS = (ValueError, TypeError)  # scikit-learn's validation raises both


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@fuzz(40)
@given(data=st.data())
def test_estimators_on_fuzzed_data(data):
    Est = data.draw(st.sampled_from([NNXClassifier, NNXRegressor]))
    est = Est(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.raises(NotFittedError):
        est.predict(X_TRAIN)
    arr = data.draw(feature_arrays(max_rows=6))
    n = rows_of(arr)
    y = data.draw(target_arrays(n)) if data.draw(st.booleans()) else (
        Y_KINDS["binary"][:n] if Est is NNXClassifier else X_TRAIN[:n, 0])
    X = as_container(arr, data.draw(st.sampled_from(["numpy", "list", "pandas"])))
    status, result = outcome(lambda: est.fit(X, y), allowed=_ESTIMATOR_ERRORS)
    valid_X, _ = oracle_features(arr, 2, dtype="float64")
    if not valid_X:
        assert status == "error"
        return
    if status == "ok":
        out = est.predict(X)
        assert len(out) == n and finite(out)
        if Est is NNXClassifier:
            assert finite(est.predict_proba(X))


ESTIMATOR_PARAMS = ["hidden_layer_sizes", "activation", "solver", "optimizer", "alpha",
                    "batch_size", "learning_rate_init", "max_iter", "shuffle", "random_state",
                    "tol", "warm_start", "momentum", "nesterovs_momentum", "early_stopping",
                    "validation_fraction", "beta_1", "beta_2", "epsilon", "n_iter_no_change",
                    "dropout", "batch_norm", "backend", "device", "dtype"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ESTIMATOR_PARAMS)
@fuzz(8)
@given(data=st.data())
def test_fuzzed_estimator_parameters(name, data):
    value = data.draw(ANYTHING.filter(
        lambda v: not (name in ("max_iter", "n_iter_no_change", "hidden_layer_sizes")
                       and isinstance(v, int) and v > 50)), label=name)
    kwargs = {"hidden_layer_sizes": (3,), "max_iter": 2, "random_state": 0, name: value}
    est = NNXClassifier(**kwargs)
    allowed = (ValueError, ImportError) if name == "backend" else (ValueError,)
    status, result = outcome(lambda: est.fit(X_TRAIN, Y_KINDS["binary"]), allowed=allowed)
    if status == "error":
        if not isinstance(result, ImportError):
            word = {"optimizer": "optimizer", "device": "device"}.get(name, name)
            assert_names(result, word)
    else:
        assert finite(est.predict_proba(X_TRAIN))


# --------------------------------------------------------------------------- the CLI

from nnx import cli  # noqa: E402

_CELLS = st.one_of(
    st.floats(-5, 5).map(lambda v: f"{v:.3f}"), st.integers(0, 2).map(str),
    st.sampled_from(["", "NA", "nan", "?", "abc", "inf", "-Infinity", "1e400", "1e300",
                     "3e38", "1e30", " 1.5 ", "0x10", "true", '"q"', "1,5", "a b"]),
)


@st.composite
def csv_texts(draw):
    """A CSV file's text: mostly a table with header x1..xk,y (holes, junk, huge numbers,
    ragged rows, no rows), sometimes arbitrary text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
    k = draw(st.integers(1, 2))
    header = [f"x{i + 1}" for i in range(k)] + ["y"]
    clean = draw(st.booleans())
    n = draw(st.integers(6, 14) if clean else st.integers(0, 8))
    cell = st.floats(-5, 5).map(lambda v: f"{v:.3f}") if clean else _CELLS
    target = _CELLS
    if clean:  # two labels, or regression values
        target = draw(st.sampled_from([st.sampled_from(["0", "1"]), st.sampled_from(["a", "b"]),
                                       st.floats(-100, 100).map(lambda v: f"{v:.2f}")]))
    rows = [[draw(cell) for _ in range(k)] + [draw(target)] for _ in range(n)]
    if not clean and rows and draw(st.integers(0, 5)) == 0:  # a ragged row
        rows[draw(st.integers(0, n - 1))].append("extra")
    buf = io.StringIO()
    csv.writer(buf).writerows([header] + rows)
    return buf.getvalue()


def assert_one_error_line(err):
    """Exactly one ``nnx: error: ...`` and it ends stderr. (A failure during training may
    follow the progress bar's text on its line: a bar redrawn in place ends without a
    newline.)"""
    assert err.count("nnx: error: ") == 1, err
    assert "nnx: error: " in err.rstrip().splitlines()[-1], err
    assert "Traceback" not in err


def _run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    # plots are tested in test_cli.py; here they would only cost time
    with mock.patch.object(cli, "_train_plots", lambda *a, **k: []), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _feature_cells(text):
    rows = list(csv.reader(io.StringIO(text)))
    rows = [[c.strip() for c in r] for r in rows if r]
    if len(rows) < 2 or any(len(r) != len(rows[0]) for r in rows) or "y" not in rows[0]:
        return None
    t = rows[0].index("y")
    return [r[j] for r in rows[1:] for j in range(len(r)) if j != t]


@fuzz(100)
@given(text=csv_texts())
def test_cli_train_on_fuzzed_csv(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_text(text, encoding="utf-8")
        code, out, err = _run_cli(["train", "--csv", path, "--target", "y", "--epochs", "1",
                                   "--hidden", "2", "--batch-size", "4", "--out",
                                   Path(tmp) / "o"])
        assert code in (0, 2), (code, err)
        event(f"exit {code}")
        assert "Traceback" not in err
        if code == 2:
            assert_one_error_line(err)
        else:
            report = json.loads((Path(tmp) / "o" / "metrics.json").read_text())
            assert all(math.isfinite(v) for v in report["metrics"].values())
            assert all(math.isfinite(v) for v in report["history"]["loss"])
        cells = _feature_cells(text)
        if cells is not None and any(c.lower() in cli._MISSING for c in cells):
            assert code == 2 and "missing values" in err, err
        elif cells is not None and cells:
            try:
                values = [float(c) for c in cells]
            except ValueError:
                assert code == 2 and "non-numeric feature column" in err, err
            else:
                if not all(math.isfinite(v) for v in values):
                    assert code == 2 and "contains inf or nan" in err, err
                elif max(abs(v) for v in values) > F32_MAX:
                    assert code == 2 and "too large for float32" in err, err


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    ("x,y\n", "header but no data rows"),
    ("x,y\n1,0\n,1\n2,0\n3,1\n", "missing values in 'x'"),
    ("x,y\n1,0\nabc,1\n2,0\n3,1\n", "non-numeric feature column"),
    ("x,y\n" + "".join(f"{1e300 * (i + 1)},{i % 2}\n" for i in range(10)),
     "too large for float32"),
    ("x,y\n" + "".join(f"{i},{'inf' if i == 3 else i * 0.37}\n" for i in range(10)),
     "target column 'y' contains inf"),
    ("x,y\n" + "".join(f"{i},{1e300 * i + 0.5}\n" for i in range(10)),
     "target column 'y' has values too large for float32"),
    ("x,y\n1,0\n", "leaves no training rows out of 1"),
    ("x,y\n1,0.5\n2,1.7\n", "R^2 needs at least 2"),
    ("x,y\n1,a\n2,a\n3,b\n4,a\n5,a\n", "class(es) 'b' of 'y' have too few rows"),
])
def test_cli_malformed_csv_in_a_real_process(tmp_path, text, message):
    """Exit status 2 and one line on stderr, as a user running ``nnx`` sees it (in-process
    for all, one real process for the first case: starting Python costs seconds)."""
    path = tmp_path / "bad.csv"
    path.write_text(text)
    argv = ["train", "--csv", path, "--target", "y", "--out", tmp_path / "o", "--epochs", "1"]
    code, _, err = _run_cli(argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    if text == "":
        result = subprocess.run([sys.executable, "-m", "nnx.cli", *map(str, argv)],
                                capture_output=True, text=True, cwd=ROOT, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [err.strip()]


@pytest.mark.parametrize("argv,message", [
    (["--dropout", "-0.1"], "Dropout rate"),
    (["--lr", "1e30", "--optimizer", "sgd"], "training diverged"),
    (["--backend", "torch", "--device", "foo"], "cannot use device='foo'"),
])
def test_cli_bad_options_after_parsing(tmp_path, argv, message):
    path = tmp_path / "ok.csv"
    path.write_text("x,y\n" + "".join(f"{i * 0.1},{i % 2}\n" for i in range(20)))
    code, _, err = _run_cli(["train", "--csv", path, "--target", "y", "--hidden", "2",
                             "--epochs", "2", "--out", tmp_path / "o", *argv])
    assert code == 2 and message in err.rstrip().splitlines()[-1], err
    assert_one_error_line(err)
