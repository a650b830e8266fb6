"""Callbacks: code that runs at epoch boundaries of ``Network.fit``.

They see epoch-level logs only (a dict of Python floats such as ``{"loss": 0.31}``), so none of
them forces a device synchronisation inside an epoch. A callback may stop training by setting
``network.stop_training = True``.
"""

from __future__ import annotations

import sys


class Callback:
    """Base class; override the hooks you need. ``self.network`` is set before training."""

    network = None

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

    def on_train_end(self, logs=None):
        pass


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is one float per epoch.

    Returned by ``fit``; successive ``fit`` calls on one network append to the network's
    ``history_`` but each call returns its own record.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class ProgressBar(Callback):
    """A progress bar over epochs with the latest logs (tqdm when installed, plain lines else).

    Parameters
    ----------
    epochs : int
    stream : file, default sys.stderr
    """

    def __init__(self, epochs: int, stream=None):
        self.epochs = epochs
        self.stream = stream or sys.stderr
        self._bar = None

    def on_train_begin(self, logs=None):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = None
            return
        self._bar = tqdm(total=self.epochs, unit="epoch", file=self.stream, dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        text = " ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
        else:
            print(f"epoch {epoch + 1}/{self.epochs} {text}", file=self.stream)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
