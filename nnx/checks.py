"""Every input rule of the public API, written once.

Checks run on the host before any math, so bad input gets a ``ValueError`` that names the
problem (and, for hyperparameters, the parameter and its allowed range) instead of a traceback
from inside the network. Hyperparameter checks run at construction; data checks at the first
call that receives the data (``fit``, ``predict``, ``evaluate``, ``gradients``, ...).

The rules, in one table (``docs/reliability.md`` lists what each bad input gets):

=====================  ==================================================================
what                   rule
=====================  ==================================================================
hyperparameter         a real number (not bool, not a string), finite, within float32's
                       range, inside its own range (:func:`check_number`); flags are
                       ``True``/``False``
                       (:func:`check_bool`); names from a fixed set (:func:`check_choice`)
seed                   ``None`` or a non-negative integer (:func:`check_seed`)
learning rate          a number > 0 or a schedule ``step -> rate`` (:func:`check_learning_rate`)
features ``X``         2-D, non-empty, real and numeric (bool/int accepted, complex/object/
                       strings refused), no NaN/inf, values representable in the network's
                       dtype (a float64 ``1e300`` is ``inf`` in float32), the column count
                       seen at ``fit`` (:func:`check_features`)
targets ``y``          1-D or 2-D, one row per sample, no NaN/inf/None, at least one column
                       (:func:`check_targets`); regression values representable in the
                       network's dtype (:func:`check_in_range`)
weights                1-D, one per row, finite, non-negative, not all zero, representable
                       (:func:`check_sample_weight`)
outputs                predictions and scores are finite or the call raises
                       (:func:`check_finite_result`)
=====================  ==================================================================
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import to_numpy


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _show(value, limit: int = 60) -> str:
    """``repr`` shortened for messages (a 400-digit integer must not flood the terminal)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------ hyperparameters


def check_number(name: str, value, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
    """Return ``value`` as a Python float (or int) after checking it lies in the given range.

    NumPy scalars are accepted; ``bool`` is not a number here (``True`` for a learning rate is
    a mistake, not ``1.0``). Real values must also fit float32 (``|value| <= 3.4e38``): a
    hyperparameter meets the network's arrays, where a larger one would be ``inf``.

    Raises
    ------
    ValueError
        Not a real number (an integer when ``integer``), not finite, beyond the float32
        range, or outside ``[low, high]`` (open ends as requested). The message names
        ``name`` and the allowed interval.
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what}; got {_show(value)}")
    if integer:
        value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:  # an int beyond float64, e.g. 10**400
            raise ValueError(f"{name} must be finite; got {_show(value)}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value!r}")
        if abs(value) > _FLOAT32_MAX:  # it meets float32 arrays as inf
            raise ValueError(f"{name} must be at most {_FLOAT32_MAX:.3g} in magnitude (the "
                             f"float32 range); got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}; got {_show(value)}")
    return value


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` (NumPy bools too); ``"no"`` or ``0`` is refused, not cast."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {_show(value)}")
    return bool(value)


def check_choice(name: str, value, choices):
    """``value`` if it is one of ``choices``; else a ValueError listing them."""
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable values are not among the choices
        ok = False
    if not ok:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {_show(value)}")
    return value


def check_seed(seed, name: str = "seed"):
    """``None`` (fresh entropy) or a non-negative integer, returned as a Python int."""
    if seed is None:
        return None
    return check_number(name, seed, low=0, integer=True)


def check_learning_rate(value, name: str = "learning_rate"):
    """A rate > 0 (as a float) or a schedule: any callable ``step -> rate``."""
    if callable(value):
        return value
    return check_number(name, value, low=0, low_open=True)


def check_layer_sizes(sizes) -> list[int]:
    """The lesson's ``[n_inputs, hidden..., n_outputs]`` form: at least two positive ints."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least two entries (inputs and outputs); got {sizes!r}"
        )
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"layer_sizes must be positive integers; got {sizes!r}")
    return [int(s) for s in sizes]


def check_sequence(name: str, value, what: str) -> list:
    """``value`` as a list when it is a list-like (not a string or a mapping); else a
    ValueError saying what ``name`` must be."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be {what}; got {_show(value)}")
    return list(value)


def check_batch_size(batch_size):
    if batch_size is None:
        return None
    return check_number("batch_size", batch_size, low=1, integer=True)


# ------------------------------------------------------------------ data


def _host(x, name):
    """The host NumPy view of user data, refusing what cannot be an array."""
    if x is None:
        raise ValueError(f"{name} is None")
    try:
        arr = to_numpy(x)
    except (TypeError, ValueError, RuntimeError) as exc:  # ragged lists, bfloat16 tensors
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    return arr


def _is_missing(v) -> bool:
    """None, NaN, and pandas' NA / NaT (recognised by type name: pandas stays optional)."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(v, float) and math.isnan(v)


def _object_to_float(arr: np.ndarray, name: str) -> np.ndarray:
    """Object / string arrays (pandas mixed frames, lists of numeric strings) as float64."""
    # None would silently become NaN and pandas' NA refuses the cast: name both for what
    # they are
    if arr.dtype == object and any(v is None or type(v).__name__ in ("NAType", "NaTType")
                                   for v in arr.ravel()):
        raise ValueError(
            f"{name} contains missing values (None or pandas NA); impute or drop them first"
        )
    try:
        return arr.astype(np.float64)
    except OverflowError:  # Python ints beyond float64
        raise ValueError(
            f"{name} has a number too large for float64 (above 1.8e308); rescale it"
        ) from None
    except (TypeError, ValueError):
        pass
    try:
        arr.astype(np.complex128)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"{name} must be numeric; got dtype {arr.dtype} with non-numeric entries"
        ) from None
    raise ValueError(f"{name} must be real; got complex values")


def _float_limit(dtype) -> float | None:
    """Largest finite value of a float dtype given by name or object (``None``: no limit)."""
    if dtype is None:
        return None
    return float(np.finfo(str(getattr(dtype, "name", dtype)).replace("torch.", "")).max)


def first_nonfinite(block) -> tuple | None:
    """``(row, column)`` of the first NaN or inf of a 2-D host block, or ``None``."""
    finite = np.isfinite(block)
    if finite.all():
        return None
    row, col = np.argwhere(~finite)[0]
    return int(row), int(col)


def check_in_range(arr: np.ndarray, name: str, dtype,
                   hint: str = "rescale it (e.g. standardize) or use dtype='float64'"):
    """Refuse values that the cast to ``dtype`` would turn into ``inf`` (host float arrays).

    A float64 ``1e300`` becomes ``inf`` in a float32 network and poisons every result after;
    this turns it into a ValueError up front.
    """
    limit = _float_limit(dtype)
    if limit is None or arr.dtype.kind != "f" or arr.size == 0:
        return arr
    if float(np.finfo(arr.dtype).max) <= limit:
        return arr  # every finite value fits
    largest = float(np.max(np.abs(arr)))
    if largest > limit:
        dtype_name = str(getattr(dtype, "name", dtype)).replace("torch.", "")
        raise ValueError(
            f"{name} has values too large for {dtype_name} (largest |value| is {largest:.3g}; "
            f"{dtype_name} holds up to {limit:.3g}): {hint}"
        )
    return arr


def check_features(X, name="X", n_features=None, dtype=None) -> np.ndarray:
    """Validate a feature matrix; returns it as a NumPy array (float16 widened to float32).

    Rules: 2-D, at least one row and one column, numeric (bool and int are accepted and
    converted; complex, object and strings are not, though numeric strings are parsed),
    finite, representable in ``dtype`` (the network's float dtype) when given, and
    ``n_features`` columns when given (the count seen at ``fit``).
    """
    arr = _host(X, name)
    if arr.dtype == object or arr.dtype.kind in "USV":
        arr = _object_to_float(arr, name)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1 and n_features not in (None, 1) and arr.shape[0] == n_features:
            hint = " (one sample: X.reshape(1, -1))"
        elif arr.ndim == 1 and n_features in (None, 1):
            hint = " (a single feature: X.reshape(-1, 1); one sample: X.reshape(1, -1))"
        elif arr.ndim == 1:
            hint = f" (samples of {n_features} features: X.reshape(-1, {n_features}))"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "clean or impute it before training"
        )
    check_in_range(arr, name, dtype)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the network was built for {n_features}"
        )
    return arr


def check_targets(y, n_samples: int, name="y") -> np.ndarray:
    """Validate targets: 1-D or 2-D with at least one column, ``n_samples`` rows, no NaN/inf,
    no missing labels (None, pandas NA)."""
    arr = _host(y, name)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D labels or a 2-D target matrix; got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} and {arr.shape[0]}")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns: shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; drop or fix those rows")
    if arr.dtype == object:
        flat = arr.ravel()
        if any(_is_missing(v) or (isinstance(v, float) and not math.isfinite(v)) for v in flat):
            raise ValueError(f"{name} contains missing labels (None or NaN)")
    return arr


def check_regression_targets(y: np.ndarray, name: str = "y", dtype=None) -> np.ndarray:
    """Regression values: numeric (bool/int/float) and representable in ``dtype``."""
    if y.dtype.kind not in "biuf":
        raise ValueError(f"regression targets must be numeric; got dtype {y.dtype}")
    return check_in_range(y, name, dtype)


def check_features_on_device(X, ctx, n_features=None):
    """Shape, finiteness and range checks for an array already on the network's backend.

    One host synchronisation: a single reduction answers "finite and representable in the
    network's dtype" (NaN fails every comparison).
    """
    xp = ctx.xp
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"X must be real and numeric; got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty: shape {tuple(X.shape)}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the network was built for {n_features}")
    if xp.isdtype(X.dtype, "real floating"):
        limit = min(float(xp.finfo(X.dtype).max), float(xp.finfo(ctx.dtype).max))
        if not bool(xp.all(xp.abs(X) <= limit)):
            if not bool(xp.all(xp.isfinite(X))):
                raise ValueError("X contains NaN or inf; clean or impute it before training")
            largest = float(xp.max(xp.abs(X)))
            raise ValueError(
                f"X has values too large for {ctx.dtype_name} (largest |value| is "
                f"{largest:.3g}; {ctx.dtype_name} holds up to {limit:.3g}): rescale it "
                "(e.g. standardize) or use dtype='float64'"
            )


def check_sample_weight(sample_weight, n_samples: int, dtype=None,
                        name: str = "sample_weight") -> np.ndarray:
    """Per-row weights: 1-D (or one column), one per row, finite and non-negative, not all
    zero, representable in ``dtype`` when given. Returns float64."""
    w = _host(sample_weight, name)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {w.dtype}")
    w = w.astype(np.float64).reshape(-1) if w.ndim == 2 and w.shape[1] == 1 else w.astype(np.float64)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},); got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if not np.any(w > 0):
        raise ValueError(f"{name} is zero everywhere")
    return check_in_range(w, name, dtype)


def check_finite_result(value, ctx, what: str, X=None, parameters=None) -> None:
    """Refuse a non-finite prediction or score instead of returning it.

    ``value`` is a device array, a list of them, or a Python float; one host sync. The error
    path looks further to name the likely cause: non-finite parameters, or inputs so large
    that the network's arithmetic overflows.
    """
    xp = ctx.xp
    if isinstance(value, float):
        finite = math.isfinite(value)
    elif isinstance(value, (list, tuple)):
        finite = bool(xp.all(xp.stack([xp.all(xp.isfinite(v)) for v in value])))
    else:
        finite = bool(xp.all(xp.isfinite(value)))
    if finite:
        return
    cause = ""
    if parameters is not None and not all(bool(xp.all(xp.isfinite(p)))
                                          for p in parameters.values()):
        cause = "the network's parameters contain NaN or inf (set or loaded that way)"
    elif X is not None:
        largest = float(xp.max(xp.abs(xp.astype(X, ctx.dtype))))
        cause = (f"the arithmetic overflowed {ctx.dtype_name} (largest |x| is {largest:.3g}); "
                 "rescale the features (e.g. standardize) or use dtype='float64'")
    raise ValueError(f"{what} is NaN or inf" + (f": {cause}" if cause else ""))
