"""The learning-rate range test (Smith, 2017; popularised by fastai's ``lr_find``).

The learning rate is the hyperparameter that matters most, and the quickest way to choose it
is to look: train a throw-away copy of the network for a few hundred batches while the rate
grows exponentially from tiny to huge, and plot the loss against the rate. The loss first
does nothing (rate too small), then falls (good rates), then explodes (too large). A good
rate sits on the steepest part of the fall, somewhat below the minimum.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .checks import check_number
from .data import EpochBatches


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured.

    Attributes
    ----------
    learning_rates : numpy.ndarray, shape (n_steps,)
        The rate of each step (exponentially increasing).
    losses : numpy.ndarray, shape (n_steps,)
        Training loss of each batch, before its update.
    smoothed_losses : numpy.ndarray, shape (n_steps,)
        Bias-corrected exponential moving average of ``losses`` (what to look at).
    suggestion : float
        Rate of the steepest descent of the smoothed loss per unit of log rate (slopes over
        a window of a tenth of the points), before the smoothed minimum.
    min_loss_rate : float
        Rate at the smoothed minimum; ``min_loss_rate / 10`` is fastai's other rule of thumb.
    diverged : bool
        Whether the test stopped early because the loss exploded.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float
    min_loss_rate: float
    diverged: bool

    def plot(self, ax=None):
        """Smoothed loss against the rate (log axis), with the suggestion marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.semilogx(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        ax.semilogx(self.learning_rates, self.losses, alpha=0.3, label="batch loss")
        ax.axvline(self.suggestion, color="C3", linestyle="--",
                   label=f"suggestion {self.suggestion:.2g}")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        # the explosion at the end would squash the interesting part: clip the view to it
        finite = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if finite.size:
            low, start = float(np.min(finite)), float(finite[0])
            span = max(start - low, 0.05 * abs(start), 1e-12)
            ax.set_ylim(max(0.0, low - 0.1 * span), low + 1.5 * span)
        ax.legend()
        return ax




def lr_find(net, X, y, start_lr=1e-7, end_lr=10.0, num_steps=200, batch_size=32,
            smoothing=0.98, diverge=4.0) -> LRFinderResult:
    r"""Learning-rate range test on a copy of ``net``.

    Step :math:`k` of ``num_steps`` trains one batch at
    :math:`\eta_k = \eta_\text{start} (\eta_\text{end} / \eta_\text{start})^{k / (K-1)}`
    with the network's own optimizer (its type, hyperparameters and current state), and
    records the batch loss. The test stops early when the smoothed loss exceeds ``diverge``
    times its minimum, or is not finite.

    ``net`` itself is never touched: the copy gets its own parameters, optimizer state and
    random streams (a network that was not built yet is built on the copy only).

    Parameters
    ----------
    net : Network
    X : array-like, shape (n_samples, n_features)
    y : array-like, shape (n_samples,) or (n_samples, n_outputs)
    start_lr, end_lr : float, default 1e-7, 10.0
        ``0 < start_lr < end_lr``.
    num_steps : int >= 5, default 200
        Batches to train (the data is cycled, reshuffled every pass).
    batch_size : int or None, default 32
    smoothing : float in [0, 1), default 0.98
        Weight of the moving average of the loss.
    diverge : float > 1, default 4.0

    Returns
    -------
    LRFinderResult
        Rates, losses and the suggested rate; ``.plot()`` draws the curve.

    Raises
    ------
    ValueError
        Bad arguments, or an optimizer that needs a closure (LBFGS has no rate to sweep in
        this sense).

    Notes
    -----
    Each step reads its loss on the host (one synchronisation per batch) to detect
    divergence: this is a diagnostic tool of a few hundred steps, not a training loop.
    """
    start_lr = check_number("start_lr", start_lr, low=0, low_open=True)
    end_lr = check_number("end_lr", end_lr, low=start_lr, low_open=True)
    num_steps = check_number("num_steps", num_steps, low=5, integer=True)
    smoothing = check_number("smoothing", smoothing, low=0, high=1, high_open=True)
    diverge = check_number("diverge", diverge, low=1, low_open=True)
    if batch_size is not None:
        batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    if net.optimizer.needs_closure:
        raise ValueError(
            f"lr_find sweeps the rate of a gradient-step optimizer; {type(net.optimizer).__name__} "
            "re-evaluates the objective with its own line search"
        )

    work = copy.deepcopy(net)  # shares the Context; builds its own random generators
    with work.ctx.scope():
        return _sweep(work, X, y, start_lr, end_lr, num_steps, batch_size, smoothing, diverge)


def _sweep(work, X, y, start_lr, end_lr, num_steps, batch_size, smoothing, diverge):
    """The sweep of :func:`lr_find` on the copy ``work``, inside its device scope."""
    batches = EpochBatches(work.prepare(X, y), batch_size, work.random, work.ctx)
    optimizer = work.optimizer
    ratio = math.log(end_lr / start_lr)

    rates, losses, smoothed = [], [], []
    avg, best, diverged = 0.0, math.inf, False
    data, k_in_epoch = None, len(batches)
    # Pushing the rate past stability is the point of the test: overflow in the last steps
    # is expected, detected below, and must not surface as warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(num_steps):
            if k_in_epoch == len(batches):  # the data is cycled, reshuffled every pass
                data, k_in_epoch = batches.epoch(shuffle=True), 0
            batch = batches.batch(data, k_in_epoch)
            k_in_epoch += 1
            rate = start_lr * math.exp(ratio * k / (num_steps - 1))
            optimizer.learning_rate = rate
            loss = float(work.step(*batch))
            rates.append(rate)
            losses.append(loss)
            if not math.isfinite(loss):
                smoothed.append(math.nan)
                diverged = True
                break
            avg = smoothing * avg + (1.0 - smoothing) * loss
            value = avg / (1.0 - smoothing ** (k + 1))
            smoothed.append(value)
            best = min(best, value)
            if k > 0 and value > diverge * best:
                diverged = True
                break

    rates_a, smooth_a = np.asarray(rates), np.asarray(smoothed)
    i_min = int(np.argmin(np.where(np.isfinite(smooth_a), smooth_a, np.inf)))
    return LRFinderResult(rates_a, np.asarray(losses), smooth_a,
                          _steepest(rates_a, smooth_a, i_min), float(rates_a[i_min]), diverged)


def _steepest(rates, smoothed, i_min):
    """Rate where the smoothed loss falls fastest per unit of log rate, before its minimum.

    Slopes are taken across a window of a tenth of the points: between neighbours the
    batch-to-batch noise is larger than the descent itself.
    """
    w = max(1, len(rates) // 10)
    if i_min < w:  # no descent recorded: fall back to the rule of thumb
        return float(max(rates[0], rates[i_min] / 10))
    k = np.arange(0, i_min - w + 1)
    log_r = np.log(rates)
    slopes = (smoothed[k + w] - smoothed[k]) / (log_r[k + w] - log_r[k])
    best = int(k[np.argmin(slopes)])
    return float(np.exp((log_r[best] + log_r[best + w]) / 2))
