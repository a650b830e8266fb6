"""Every input rule of the public API, written once.

Checks run on the host before any math, so bad input gets a ``ValueError`` (or ``TypeError``)
that names the problem instead of a traceback from inside the network. Hyperparameter checks
run at construction.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import to_numpy


# ------------------------------------------------------------------ hyperparameters


def check_number(name: str, value, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
    """Return ``value`` as a Python float (or int) after checking it lies in the given range.

    Raises
    ------
    ValueError
        Not a real number, not finite, or outside ``[low, high]`` (open ends as requested).
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what}; got {value!r}")
    value = int(value) if integer else float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}; got {value!r}")
    return value


def check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_layer_sizes(sizes) -> list[int]:
    """The lesson's ``[n_inputs, hidden..., n_outputs]`` form: at least two positive ints."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least two entries (inputs and outputs); got {sizes!r}"
        )
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"layer_sizes must be positive integers; got {sizes!r}")
    return [int(s) for s in sizes]


def check_batch_size(batch_size):
    if batch_size is None:
        return None
    return check_number("batch_size", batch_size, low=1, integer=True)


# ------------------------------------------------------------------ data


def _host(x, name):
    """The host NumPy view of user data, refusing what cannot be numeric."""
    if x is None:
        raise ValueError(f"{name} is None")
    try:
        arr = to_numpy(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    return arr


def check_features(X, name="X", n_features=None) -> np.ndarray:
    """Validate a feature matrix; returns it as a float64 or float32 NumPy array.

    Rules: 2-D, at least one row and one column, numeric (bool and int are accepted and
    converted; complex, object and strings are not), finite, and ``n_features`` columns when
    given (the count seen at ``fit``).
    """
    arr = _host(X, name)
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be numeric; got dtype {arr.dtype} with non-numeric entries"
            ) from None
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = " (reshape a single feature with X.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "clean or impute it before training"
        )
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the network was built for {n_features}"
        )
    return arr


def check_targets(y, n_samples: int, name="y") -> np.ndarray:
    """Validate targets: 1-D or 2-D, ``n_samples`` rows, no NaN/inf, no missing labels."""
    arr = _host(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and arr.dtype.kind in "biuf":
        pass  # a column vector is fine; the encoder decides what it means
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D labels or a 2-D target matrix; got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} and {arr.shape[0]}")
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; drop or fix those rows")
    if arr.dtype == object:
        flat = arr.ravel()
        if any(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in flat):
            raise ValueError(f"{name} contains missing labels (None or NaN)")
    return arr


def check_features_on_device(X, ctx, n_features=None):
    """Shape and finiteness checks for an array already on the network's backend."""
    xp = ctx.xp
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"X must be real and numeric; got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty: shape {tuple(X.shape)}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the network was built for {n_features}")
    if xp.isdtype(X.dtype, "real floating") and not bool(xp.all(xp.isfinite(X))):
        raise ValueError("X contains NaN or inf; clean or impute it before training")


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """Per-row weights: 1-D, one per row, finite and non-negative, not all zero."""
    w = _host(sample_weight, "sample_weight")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric; got dtype {w.dtype}")
    w = w.astype(np.float64).reshape(-1) if w.ndim == 2 and w.shape[1] == 1 else w.astype(np.float64)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if not np.any(w > 0):
        raise ValueError("sample_weight is zero everywhere")
    return w
