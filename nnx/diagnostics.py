"""Warnings for a ``fit`` that stays finite but is unlikely to learn.

A divergence is loud (:mod:`nnx.guard`); these two failures are quiet, so ``fit`` watches
for them at no cost per step:

* :class:`UnscaledInputWarning`, at the start: some feature's typical magnitude (root mean
  square over an evenly spaced sample of the training rows) exceeds :data:`LARGE_INPUT`.
  Raw measurements (grams, millimetres) saturate the first layer and stall training: a
  penguins-like table of three classes stays below 0.5 accuracy unscaled and passes 0.9
  standardized (``tests/test_standardize.py``). Host data is measured on the host; a device array costs one read; a streamed
  source is measured on its first rows. A network whose first layer is
  :class:`~nnx.layers.Standardize` scales its inputs itself and is not checked.
* :class:`NoProgressWarning`, at the end of a network's first fit: the last epoch's mean
  loss is more than :data:`WORSE_BY` times the loss of the untrained network (measured on a
  sample of the training rows before the first step, read back once when the fit ends). A
  learning rate far too high does this without ever reaching NaN (``learning_rate=1e6``
  with Adam ends orders of magnitude above the start, ``tests/test_diagnostics.py``). Later fits are not checked: the
  loss of a trained network is small and noisy, and a continuation of a few epochs would
  compare noise with noise.

Each is issued at most once per ``fit``, pointing at the user's call, with a hint. Silence
them like any warning: ``warnings.simplefilter("ignore", nnx.diagnostics.TrainingWarning)``.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from .backend import is_host_array
from .callbacks import Callback
from .layers import Standardize
from .sources import IterableSource

#: a feature whose root mean square is above this counts as far from standardized (the
#: divergence guard's hint uses the same bound)
LARGE_INPUT = 100.0
#: the loss "ended above where it started" when the last epoch's is this many times the
#: first: a margin for batch noise and dropout, far below what a failed fit shows
WORSE_BY = 1.5
#: training rows, evenly spaced, that the checks look at
SAMPLE_ROWS = 1024

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class TrainingWarning(UserWarning):
    """Base class: ``fit`` ran without NaN but is unlikely to have learned."""


class UnscaledInputWarning(TrainingWarning):
    """The inputs are far from standardized (see the module docstring)."""


class NoProgressWarning(TrainingWarning):
    """The loss ended above where the fit started (see the module docstring)."""


def warn(message: str, category) -> None:
    """``warnings.warn`` pointing at the first caller outside nnx (the user's ``fit``)."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)


def column_magnitudes(xp, X):
    r"""Root mean square of every column of 2-D rows, :math:`\sqrt{\overline{x^2}}`,
    computed as :math:`m \sqrt{\overline{(x / m)^2}}` with :math:`m = \max |x|` so that
    values near the float range (1e200) do not overflow when squared."""
    peak = xp.max(xp.abs(X), axis=0)
    safe = xp.where(peak > 0, peak, 1.0)
    return peak * xp.sqrt(xp.mean((X / safe) ** 2, axis=0))


class FitWatch(Callback):
    """Watches one ``fit``: the input scale before it starts, the loss when it ends.

    Make it with :meth:`for_arrays` or :meth:`for_source` once the training rows are known
    (after any validation split, after a :class:`~nnx.layers.Standardize` first layer was
    adapted) and pass it among the fit's callbacks.
    """

    rank_zero_only = True  # in a data-parallel fit, rank 0 speaks for all

    def __init__(self, network, Xd, Yd, Wd=None):
        self.network = network
        self.start = self.last = None
        if Xd is not None and not network.history_.epoch:  # an untrained network
            with network.ctx.errstate():  # huge inputs may overflow: a NaN start, no check
                # the loss before any step, on a sample: a device scalar, read at the end;
                # weighted as the epochs' losses are, or a weighted fit compares unlike values
                self.start = network.objective(Xd, Yd, False, Wd)

    @classmethod
    def for_arrays(cls, network, X, Xd, Yd, Wd=None) -> "FitWatch":
        """``X``: the user's data; ``Xd``, ``Yd``, ``Wd``: the training rows on the device
        and their weight column (``None``: unweighted)."""
        step = max(1, Xd.shape[0] // SAMPLE_ROWS)
        if not _scales_itself(network):
            if is_host_array(X):
                names = getattr(X, "columns", None)  # a DataFrame's warning names its column
                # the sample alone goes to float64: a copy of all of X would cost its size
                X = X.iloc[::step] if hasattr(X, "iloc") else np.asarray(X)[::step]
                X = np.asarray(X.to_numpy() if hasattr(X, "iloc") else X, dtype=np.float64)
                _check_scale(column_magnitudes(np, X), names)
            else:  # the user's device array: one value read back
                xp = network.ctx.xp
                worst = float(xp.max(column_magnitudes(xp, Xd[::step, ...])))
                _check_scale(np.array([worst]))
        return cls(network, Xd[::step, ...], Yd[::step, ...],
                   None if Wd is None else Wd[::step, ...])

    @classmethod
    def for_source(cls, network, source) -> "FitWatch":
        """A streamed source: its first rows (a one-shot iterator is not read ahead).

        Rows the training would refuse are not checked here: the training loop names the
        batch at fault."""
        try:
            if isinstance(source, IterableSource):
                if source.one_shot:
                    return cls(network, None, None)
                X, y = next(iter(source.fresh()))
            else:
                X, y = source.take(np.arange(min(len(source), SAMPLE_ROWS)))
            Xd, Yd = network.prepare_batch(np.asarray(X), np.asarray(y), 0)
        except (ValueError, TypeError, StopIteration):
            return cls(network, None, None)
        if not _scales_itself(network):
            _check_scale(column_magnitudes(np, np.asarray(X, dtype=np.float64)))
        return cls(network, Xd, Yd)

    def on_epoch_end(self, epoch, logs=None):
        self.last = (logs or {}).get("loss")

    def on_train_end(self, logs=None):
        if self.start is None or self.last is None or self.network.diverged_ is not None:
            return
        start = float(self.start)  # the fit's one read of its own
        if self.last > start + (WORSE_BY - 1.0) * abs(start):
            warn(f"the training loss ended at {self.last:.4g}, above where this fit started "
                 f"({start:.4g}): the network learned nothing. Likely cause: a learning rate "
                 f"too high (now {self.network.optimizer.current_learning_rate():g}; try 10x "
                 "lower), or unscaled inputs", NoProgressWarning)


def _scales_itself(network) -> bool:
    return isinstance(network.layers[0], Standardize)


def _check_scale(magnitudes, names=None) -> None:
    worst = int(np.argmax(magnitudes))
    if magnitudes[worst] > LARGE_INPUT:
        where = f"column {worst}" if magnitudes.size > 1 else "a column"
        if names is not None and len(names) == magnitudes.size:
            where = f"column {names[worst]!r}"
        warn(f"the inputs are far from standardized: {where} has a typical magnitude of "
             f"{magnitudes[worst]:.3g} (root mean square), which slows or stalls training. "
             "Standardize them with statistics of the training rows: "
             "Network(..., standardize=True), or nnx.datasets.Standardizer",
             UnscaledInputWarning)


__all__ = ["FitWatch", "NoProgressWarning", "TrainingWarning", "UnscaledInputWarning"]
