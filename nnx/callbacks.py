"""Callbacks: code that runs at the boundaries of ``Network.fit``'s epochs.

Their epoch hooks see epoch-level logs (a dict of Python floats such as ``{"loss": 0.31}``);
a callback that overrides ``on_batch_gradients`` also sees every step's gradients as device
arrays, and should keep what it computes from them on the device until the epoch ends. None
of the built-in callbacks forces a device synchronisation inside an epoch. A callback may stop
training by setting ``network.stop_training = True``.
"""

from __future__ import annotations

import math
import sys
import time

from .backend import to_numpy
from .checks import _show, check_sequence


class Callback:
    """Base class; override the hooks you need. ``self.network`` is set before training.

    ``rank_zero_only = True`` marks a callback that shows or writes something (a progress
    bar, a file): in a data-parallel fit it runs on rank 0 only. The others run on every
    rank, where they see the same global values and so decide the same.
    """

    network = None
    rank_zero_only = False

    def set_network(self, network) -> None:
        self.network = network

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch: int, logs=None):
        pass

    def on_epoch_end(self, epoch: int, logs=None):
        pass

    def on_batch_gradients(self, step: int, grads: dict):
        """Called after every step's backward pass with ``name -> gradient`` device arrays.

        Only callbacks that override it are called, so the ordinary loop pays nothing. Keep
        any statistic on the device (convert at ``on_epoch_end``) to avoid a sync per step.
        """

    def on_batch_outputs(self, out, yb):
        """Called after every step's forward pass with its outputs (logits, shape
        ``(batch, n_outputs)``) and encoded targets, as device arrays; like
        :meth:`on_batch_gradients`, only for callbacks that override it."""

    def on_train_end(self, logs=None):
        pass


def check_callbacks(callbacks) -> list:
    """``None`` or a list of :class:`~nnx.callbacks.Callback` objects, as a list."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise ValueError(
            f"callbacks must be a list of nnx.callbacks.Callback objects; got a single "
            f"{type(callbacks).__name__}: pass callbacks=[{type(callbacks).__name__}(...)]"
        )
    cbs = check_sequence("callbacks", callbacks, "a list of nnx.callbacks.Callback objects")
    for cb in cbs:
        if not isinstance(cb, Callback):
            raise ValueError(f"callbacks must be nnx.callbacks.Callback objects; got {_show(cb)}")
    return cbs


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is one float per epoch.

    Returned by ``fit``; successive ``fit`` calls on one network append to the network's
    ``history_`` but each call returns its own record.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        # every key the fit will log is there from the start, even when it stops in its
        # first epoch (a divergence with on_nonfinite="warn")
        for key in getattr(self.network, "metrics_names", ["loss"]):
            self.history.setdefault(key, [])

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class ProgressBar(Callback):
    """Keras's ``verbose``: one line per epoch that stays on screen, with the epoch's logs.

    ``verbose=1`` draws a bar of the epoch's steps, redrawn in place at most every
    :attr:`REFRESH` seconds while the epoch runs (on a terminal only; a file or a notebook
    log gets the finished line alone)::

        epoch 3/20  7/7 [==============================]  0.01s 1.4ms/step  loss=0.3124  accuracy=0.8714

    ``verbose=2`` prints the same line without the bar, once the epoch is over. The values
    are those of the epoch's logs (read once per epoch); during an epoch only the step count
    moves, so the bar makes the host wait for nothing.

    Parameters
    ----------
    epochs : int
    stream : file, default sys.stderr
    verbose : {1, 2}, default 1
    steps : int, optional
        Steps per epoch (``fit`` knows them); else counted in the first epoch.
    """

    rank_zero_only = True
    #: seconds between two redraws of the bar within an epoch
    REFRESH = 0.1
    WIDTH = 30

    def __init__(self, epochs: int, stream=None, verbose: int = 1, steps=None):
        from .checks import check_choice

        self.epochs = epochs
        self.stream = stream or sys.stderr
        self.verbose = check_choice("verbose", verbose, (1, 2))
        self.steps = steps
        self._live = self.verbose == 1 and getattr(self.stream, "isatty", lambda: False)()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._done = epoch, 0
        self._start = self._drawn = time.monotonic()

    def on_batch_outputs(self, out, yb):
        # a step went through: count it; draw now and then (host time only, no device read)
        self._done += 1
        if self._live and time.monotonic() - self._drawn >= self.REFRESH:
            self._drawn = time.monotonic()
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        if self.steps is None and self._done:
            self.steps = self._done
        end = "\n" if not self._live else "\x1b[K\n"  # clear what a longer redraw left
        self.stream.write(("\r" if self._live else "") + self._line(logs or {}) + end)
        self.stream.flush()

    def _line(self, logs=None) -> str:
        parts = [f"epoch {self._epoch + 1}/{self.epochs}"]
        if self.verbose == 1:
            total = self.steps or max(self._done, 1)
            filled = min(self.WIDTH, self.WIDTH * self._done // total)
            bar = "=" * filled + (">" if filled < self.WIDTH else "")
            parts.append(f"{self._done}/{self.steps or '?'} [{bar:<{self.WIDTH}}]")
        if logs is not None:
            elapsed = time.monotonic() - self._start
            parts.append(f"{elapsed:.2f}s" + (f" {1e3 * elapsed / self._done:.1f}ms/step"
                                               if self._done else ""))
            names = getattr(self.network, "metrics_names", [])  # loss, accuracy, val_...
            keys = [k for k in names if k in logs] + [k for k in logs if k not in names]
            parts += [f"{key}={logs[key]:.4g}" for key in keys]
        return "  ".join(parts)


class TrainingAccuracy(Callback):
    """The training accuracy of every epoch, as ``logs["accuracy"]`` (a classifier's).

    The fraction of the epoch's rows that the steps' own outputs (before each update, in
    training mode, as Keras measures it) classify right. The count stays on the device and
    is read once per epoch, like the loss. ``fit(verbose=1 or 2)`` adds it in front of the
    other callbacks, so that they (and the history) see the value.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._correct, self._rows = 0, 0

    def on_batch_outputs(self, out, yb):
        self._correct = self._correct + self.network.count_correct(out, yb)
        self._rows += out.shape[0]

    def on_epoch_end(self, epoch, logs=None):
        correct, rows = self._correct, self._rows
        if self.network.reduction is not None:  # a data-parallel fit: every rank's rows
            # (every rank takes part, also one whose parts of the batches were all empty)
            correct, rows = self.network.reduction.sum_counts(correct, rows)
        if logs is None or not rows:  # optimizers that step without outputs (L-BFGS)
            return
        diverged = not math.isfinite(logs.get("loss", 0.0))
        logs["accuracy"] = math.nan if diverged else int(correct) / rows


def with_progress(network, callbacks: list, epochs: int, verbose: int, steps=None) -> list:
    """``fit``'s callbacks with what ``verbose`` asks for: a classifier's training accuracy
    first (so every other callback sees it), a :class:`ProgressBar` last."""
    # An optimizer that steps through a closure (L-BFGS) shows no step outputs, and takes
    # one full-batch step an epoch: no accuracy to count, and no bar, which would never
    # fill; its epochs get verbose=2's line each.
    closure = network.optimizer.needs_closure
    if network.targets_.kind != "regression" and not closure:
        network.metrics_names.insert(1, "accuracy")
        callbacks = [TrainingAccuracy(), *callbacks]
    return [*callbacks, ProgressBar(epochs, verbose=2 if closure else verbose, steps=steps)]


def wants_gradients(cb) -> bool:
    """Whether ``cb`` overrides ``on_batch_gradients`` (sees every step's gradients)."""
    return type(cb).on_batch_gradients is not Callback.on_batch_gradients


def batch_callbacks(callbacks: list) -> list:
    """The callbacks that want every step (they override ``on_batch_gradients`` or
    ``on_batch_outputs``); the step calls no others."""
    return [cb for cb in callbacks
            if wants_gradients(cb) or type(cb).on_batch_outputs is not Callback.on_batch_outputs]


class GradientMonitor(Callback):
    r"""Records the norm of every weight gradient, once per epoch, during ``fit``.

    After each step the Frobenius norm :math:`\lVert \partial L / \partial W \rVert_F` of
    every watched weight is added to a running sum that stays on the device; at the end of the
    epoch the sums cross to the host in one transfer (not one per step or per layer) and the
    **mean norm over the epoch's steps** is appended to :attr:`history`. With full-batch
    training (``batch_size=None``) an epoch is one step, so this is that step's norm, as in the
    lesson's gradient-flow plot.

    Parameters
    ----------
    names : list of str, optional
        Parameters to watch, e.g. ``["layers.0.W"]``. Default: every parameter with two or more
        dimensions (the weight matrices; biases and normalisation scales are left out).

    Attributes
    ----------
    history : dict of str -> list of float
        Per watched parameter, in layer order, the mean gradient norm of every epoch seen
        (successive ``fit`` calls append).

    Examples
    --------
    >>> monitor = GradientMonitor()
    >>> net.fit(X, y, epochs=50, callbacks=[monitor])          # doctest: +SKIP
    >>> nnx.plotting.plot_gradient_flow(monitor.history)       # doctest: +SKIP
    """

    def __init__(self, names=None):
        from .checks import check_sequence

        self.names = None if names is None else [
            str(n) for n in check_sequence("names", names, "a list of parameter names")]
        self.history: dict[str, list[float]] = {}
        self._watched: list[str] = []
        self._sums = None
        self._steps = 0

    def on_train_begin(self, logs=None):
        params = self.network.parameters()
        if self.names is None:
            self._watched = [name for name, p in params.items() if p.ndim >= 2]
        else:
            unknown = [name for name in self.names if name not in params]
            if unknown:
                raise ValueError(
                    f"GradientMonitor: unknown parameter(s) {', '.join(unknown)}; "
                    f"known: {', '.join(params)}"
                )
            self._watched = list(self.names)
        for name in self._watched:
            self.history.setdefault(name, [])

    def on_epoch_begin(self, epoch, logs=None):
        self._sums = None
        self._steps = 0

    def on_batch_gradients(self, step, grads):
        xp = self.network.ctx.xp
        norms = xp.stack([xp.sqrt(xp.sum(grads[name] * grads[name])) for name in self._watched])
        self._sums = norms if self._sums is None else self._sums + norms
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if not self._steps or not self._watched:
            return
        means = to_numpy(self._sums) / self._steps  # the one transfer of the epoch
        for name, value in zip(self._watched, means):
            self.history[name].append(float(value))

    def final(self) -> dict:
        """The last recorded norm of each watched parameter (``name -> float``)."""
        return {name: values[-1] for name, values in self.history.items() if values}


def _resolve_mode(mode: str, monitor: str) -> str:
    if not isinstance(monitor, str):
        raise ValueError(f"monitor must be the name of a logged metric such as 'val_loss'; "
                         f"got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode == "auto":
        return "max" if any(k in monitor for k in ("acc", "score", "r2", "f1")) else "min"
    return mode


def _check_monitor(network, monitor: str) -> None:
    logged = getattr(network, "metrics_names", ["loss"])
    if monitor not in logged:
        hint = (" (pass validation_split= or validation_data= to fit)"
                if monitor.startswith("val_") else "")
        raise ValueError(
            f"monitor={monitor!r} is not logged by this fit; logged: {', '.join(logged)}{hint}"
        )


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving.

    An epoch *improves* when the value beats the best so far by more than ``min_delta``
    (lower for ``mode="min"``, higher for ``"max"``). After ``patience`` epochs without
    improvement training stops; with ``restore_best_weights`` the parameters and running
    statistics of the best epoch are put back when training ends (copies are kept on the
    device, so no host round trip).

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs (``"loss"``, ``"val_loss"``, ``"val_accuracy"``).
    patience : int >= 0, default 10
    min_delta : float >= 0, default 0
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: maximize accuracies and scores, minimize anything else.
    restore_best_weights : bool, default True

    Attributes
    ----------
    best : float
    best_epoch : int
    stopped_epoch : int or None
        The epoch at which training stopped early (``None`` if it ran to the end).
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        from .checks import check_bool, check_number

        self.monitor = monitor
        self.patience = check_number("patience", patience, low=0, integer=True)
        self.min_delta = check_number("min_delta", min_delta, low=0)
        self.mode = _resolve_mode(mode, monitor)
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        _check_monitor(self.network, self.monitor)
        self.best = float("inf") if self.mode == "min" else -float("inf")
        self.best_epoch, self.stopped_epoch, self.wait = -1, None, 0
        self._best_snapshot = None

    def on_epoch_end(self, epoch, logs=None):
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_snapshot = self.network.snapshot()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_snapshot is not None:
            random_state = self.network.random.state()  # keep the streams where they are
            self.network.restore(self._best_snapshot)
            self.network.random.set_state(random_state)


class ReduceLROnPlateau(Callback):
    """Lower the learning rate when a monitored quantity stops improving.

    The decisions are ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s, value for value: an
    epoch is *better* when

    - ``threshold_mode="rel"``: :math:`v < b (1 - \\theta)` (``min``) or
      :math:`v > b (1 + \\theta)` (``max``);
    - ``threshold_mode="abs"``: :math:`v < b - \\theta` or :math:`v > b + \\theta`;

    after more than ``patience`` epochs that are not, the rate becomes
    :math:`\\max(\\eta\\,\\text{factor}, \\text{min\\_lr})` (skipped when that changes it by
    less than ``eps``) and ``cooldown`` epochs pass before bad epochs count again.

    It changes ``network.optimizer.learning_rate``, so the optimizer needs a number, not a
    schedule. :meth:`sklearn_adaptive` gives scikit-learn's ``learning_rate="adaptive"``.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs (``"loss"`` when training without validation data).
    factor : float in (0, 1), default 0.1
    patience : int >= 0, default 10
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: maximize accuracies and scores, minimize anything else.
    threshold : float >= 0, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0.0
    eps : float >= 0, default 1e-8
    verbose : int, default 0
        ``1`` prints a line at every reduction.

    Attributes
    ----------
    best : float
    num_bad_epochs : int
    reductions : list of (epoch, new_rate)
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto",
                 threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8,
                 verbose=0):
        from .checks import check_choice, check_number

        self.monitor = monitor
        self.factor = check_number("factor", factor, low=0, high=1, low_open=True,
                                   high_open=True)
        self.patience = check_number("patience", patience, low=0, integer=True)
        self.mode = _resolve_mode(mode, monitor)
        self.threshold = check_number("threshold", threshold, low=0)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_number("cooldown", cooldown, low=0, integer=True)
        self.min_lr = check_number("min_lr", min_lr, low=0)
        self.eps = check_number("eps", eps, low=0)
        self.verbose = verbose
        self.reset()

    @classmethod
    def sklearn_adaptive(cls, tol=1e-4, n_iter_no_change=10, monitor="loss", mode="auto",
                         verbose=0):
        """scikit-learn's ``learning_rate="adaptive"`` rule (MLPClassifier/MLPRegressor).

        An epoch counts as bad when it does not beat the best value by at least ``tol``
        (``loss > best - tol``), while *any* improvement updates the best; after more than
        ``n_iter_no_change`` bad epochs in a row the rate is divided by 5, or training stops
        once the rate is already at most ``1e-6``. Monitor ``"val_accuracy"`` to mimic
        scikit-learn's ``early_stopping=True`` (validation score).
        """
        return _SklearnAdaptive(tol=tol, n_iter_no_change=n_iter_no_change, monitor=monitor,
                                mode=mode, verbose=verbose)

    def reset(self) -> None:
        self.best = float("inf") if self.mode == "min" else -float("inf")
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.stop = False
        self.reductions = []
        self._epoch = 0

    def _is_better(self, value: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return value < (self.best * (1.0 - self.threshold) if rel else self.best - self.threshold)
        return value > (self.best * (1.0 + self.threshold) if rel else self.best + self.threshold)

    def update(self, value: float, optimizer) -> float:
        """Feed one epoch's value (torch's ``scheduler.step(metric)``); returns the rate.

        Works on any optimizer whose ``learning_rate`` is a number, inside or outside ``fit``.
        """
        value = float(value)
        self._epoch += 1
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = _numeric_rate(optimizer)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self._set_rate(optimizer, new)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return optimizer.learning_rate

    def _set_rate(self, optimizer, new: float) -> None:
        optimizer.learning_rate = new
        self.reductions.append((self._epoch - 1, new))
        if self.verbose:
            print(f"ReduceLROnPlateau: epoch {self._epoch}: learning rate reduced to {new:.4g}",
                  file=sys.stderr)

    def on_train_begin(self, logs=None):
        _check_monitor(self.network, self.monitor)
        _numeric_rate(self.network.optimizer)
        self.reset()

    def on_epoch_end(self, epoch, logs=None):
        self.update(logs[self.monitor], self.network.optimizer)
        if self.stop:
            self.network.stop_training = True


class _SklearnAdaptive(ReduceLROnPlateau):
    """scikit-learn's adaptive rule; see :meth:`ReduceLROnPlateau.sklearn_adaptive`."""

    def __init__(self, tol=1e-4, n_iter_no_change=10, monitor="loss", mode="auto", verbose=0):
        from .checks import check_number

        tol = check_number("tol", tol, low=0)
        n_iter_no_change = check_number("n_iter_no_change", n_iter_no_change, low=1,
                                        integer=True)
        super().__init__(monitor=monitor, factor=0.2, patience=n_iter_no_change, mode=mode,
                         threshold=tol, threshold_mode="abs", verbose=verbose)

    def update(self, value, optimizer):
        value = float(value)
        self._epoch += 1
        tol = self.threshold
        if self.mode == "min":
            bad, best = value > self.best - tol, value < self.best
        else:
            bad, best = value < self.best + tol, value > self.best
        self.num_bad_epochs = self.num_bad_epochs + 1 if bad else 0
        if best:
            self.best = value
        if self.num_bad_epochs > self.patience:
            rate = _numeric_rate(optimizer)
            if rate <= 1e-6:
                self.stop = True
            else:
                self._set_rate(optimizer, rate / 5.0)
                self.num_bad_epochs = 0
        return optimizer.learning_rate

    def __repr__(self):
        return (f"ReduceLROnPlateau.sklearn_adaptive(tol={self.threshold!r}, "
                f"n_iter_no_change={self.patience!r}, monitor={self.monitor!r})")


def _numeric_rate(optimizer) -> float:
    rate = optimizer.learning_rate
    if callable(rate):
        raise ValueError(
            "ReduceLROnPlateau changes the optimizer's learning_rate, which is a schedule "
            f"here ({rate!r}); give the optimizer a number, or drop the callback"
        )
    return float(rate)


class ModelCheckpoint(Callback):
    """Save the network to a file at the end of epochs (see :mod:`nnx.io`), atomically.

    With ``save_best_only=False`` every epoch is saved; with ``save_best_only=True`` only
    epochs whose monitored value beats the best so far (strictly lower for ``mode="min"``,
    higher for ``"max"``; NaN never counts). The best value is kept across ``fit`` calls on
    the same callback, so a later, worse run does not overwrite a better file.

    Each save writes a temporary file next to the destination and renames it over it, so
    an interrupted run always leaves a complete model behind. Saving copies the parameters
    to the host: one transfer per saved epoch.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. It may contain ``{epoch}`` (1-based, counted over every ``fit`` of
        the network, so a resumed run continues the numbering) and any logged value, e.g.
        ``"ckpt/model-{epoch:03d}-{val_loss:.3f}.nnx"``.
    monitor : str, default "val_loss"
        A key of the epoch logs (``"loss"``, ``"val_loss"``, ``"val_accuracy"``); only
        consulted with ``save_best_only``.
    save_best_only : bool, default False
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"``: maximize accuracies and scores, minimize anything else.
    include_optimizer : bool, default True
        Save the optimizer state too (needed to resume training exactly).

    Attributes
    ----------
    best : float
        Best monitored value so far (``save_best_only``).
    saved : list of (int, str)
        ``(epoch, path)`` of every file written.

    Examples
    --------
    >>> ckpt = ModelCheckpoint("best.nnx", monitor="val_loss", save_best_only=True)
    >>> net.fit(X, y, validation_split=0.2, callbacks=[ckpt])     # doctest: +SKIP
    >>> best = nnx.load("best.nnx")                              # doctest: +SKIP
    """

    rank_zero_only = True

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto",
                 include_optimizer=True):
        import os

        try:
            self.path = os.fspath(path)
        except TypeError:
            raise ValueError(f"path must be a str or os.PathLike; got {path!r}") from None
        if not isinstance(self.path, str):
            raise ValueError(f"path must be a text path; got {path!r}")
        if not isinstance(monitor, str):
            raise ValueError(f"monitor must be a log key such as 'val_loss'; got {monitor!r}")
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _resolve_mode(mode, monitor)
        self.include_optimizer = bool(include_optimizer)
        self.best = float("inf") if self.mode == "min" else -float("inf")
        self.saved: list[tuple[int, str]] = []
        self._filename(1, {})  # a malformed template fails here, not after an epoch

    def _filename(self, epoch: int, logs: dict, known=None) -> str:
        import string

        fields = {"epoch": epoch, **logs}
        for _, name, _, _ in string.Formatter().parse(self.path):
            if name is None:
                continue
            if name == "":
                raise ValueError(f"path {self.path!r}: use named fields such as {{epoch}}")
            if name not in fields and known is not None and name not in known:
                raise ValueError(
                    f"path {self.path!r} uses {{{name}}}, which this fit does not log; "
                    f"available: epoch, {', '.join(known)}"
                )
            fields.setdefault(name, 0.0)
        try:
            return self.path.format(**fields)
        except (ValueError, IndexError, KeyError, AttributeError) as exc:
            raise ValueError(f"path {self.path!r} is not a valid template: {exc}") from None

    def on_train_begin(self, logs=None):
        logged = getattr(self.network, "metrics_names", ["loss"])
        self._filename(1, {}, known=logged)
        if self.save_best_only:
            _check_monitor(self.network, self.monitor)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs[self.monitor]
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:  # NaN compares False: never "best"
                return
            self.best = value
        # epochs over every fit of the network (its history_ has recorded this one already)
        number = max(len(self.network.history_.epoch), epoch + 1)
        path = self._filename(number, logs)
        self.network.save(path, include_optimizer=self.include_optimizer)
        self.saved.append((number, path))
