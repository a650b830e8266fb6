"""The divergence guard: no NaN model comes out of ``fit``, at no cost per step.

Once per epoch the loss (already summed on the device) and a finiteness reduction over the
parameters cross to the host together, as one value. When it is not finite, the epoch is
replayed from a restore point taken at its start (device copies of the parameters, layer
state, optimizer state and the random streams, so the replay draws the same dropout masks),
now checking every step on the host, to name the exact step and stop right before it.
"""

from __future__ import annotations

import math
import warnings


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss, gradient or parameter.

    ``fit`` raises it after restoring the last finite parameters; the message names the
    epoch, the step and the likely cause.
    """


class NonFiniteWarning(UserWarning):
    """``fit(..., on_nonfinite="warn")``: training stopped at a NaN/inf step (see
    :class:`DivergenceError`); the last finite parameters were restored."""


class DivergenceGuard:
    """Watches one ``fit`` of ``network`` (see the module docstring).

    Parameters
    ----------
    network : Network
    on_nonfinite : {"raise", "warn"}
        What :meth:`diverged` does after restoring: raise :class:`DivergenceError`, or warn
        with :class:`NonFiniteWarning` (the caller then stops training).
    """

    def __init__(self, network, on_nonfinite: str = "raise"):
        self.network = network
        self.on_nonfinite = on_nonfinite
        self.restore_point = None

    def begin_epoch(self) -> None:
        """Take the epoch's restore point: device copies, no host sync. Taken once the
        epoch's row order is drawn, so only the mask streams need keeping."""
        self.restore_point = self.network.snapshot(optimizer=True, masks_only=True)

    def epoch_loss(self, total) -> float:
        """The epoch's summed loss as a Python float: the epoch's one host sync, NaN when any
        parameter is NaN or inf."""
        return float(self.network.with_finiteness(total))

    def diverged(self, epoch: int, batches, data) -> None:
        """Replay the epoch from its restore point step by step, stop before the first
        non-finite step, then raise or warn."""
        net = self.network
        xp = net.ctx.xp
        net.restore(self.restore_point)
        if not getattr(batches, "replayable", True):
            self._report(epoch, "?", "?", "the loss", None)
            return
        problem, step = "the loss", len(batches)  # if the replay cannot reproduce it
        closure = net.optimizer.needs_closure
        scale = 0.0
        for k in range(len(batches)):
            before = net.snapshot(optimizer=True, masks_only=True)
            xb, yb, wb = batches.batch(data, k)
            if xb.shape[0]:  # (a data-parallel rank's part may be empty)
                scale = max(scale, float(xp.max(xp.abs(xb))))
            if closure:
                loss, grads = net.step(xb, yb, wb), {}
            else:
                loss, grads = net.objective_and_gradients(xb, yb, wb)
            bad = [] if math.isfinite(float(loss)) else ["the loss"]
            bad += [f"the gradient of {name}" for name, g in grads.items()
                    if not bool(xp.all(xp.isfinite(g)))]
            if not bad and not closure:
                net.apply_gradients(grads)
            if not bad and not net.parameters_finite():
                bad = ["the updated parameters"]
            if bad:
                net.restore(before)
                problem, step = " and ".join(bad[:3]), k + 1
                break
        self._report(epoch, step, len(batches), problem, scale)

    def _report(self, epoch, step, steps, problem, scale):
        net = self.network
        lr = net.optimizer.current_learning_rate()
        where = (f"step {step} of {steps}" if step != "?" else
                 "a step the data source cannot replay to name")
        message = (
            f"training diverged at epoch {epoch + 1}, {where}: {problem} "
            f"became NaN or inf. Likely cause: a learning rate too high for this problem "
            f"(now {lr:g}; try 10x lower)"
            + (f", or unscaled inputs (largest |x| is {scale:.3g}; standardize the features)"
               if scale is not None and scale > 100 else "")
            + (". The parameters were restored to their last finite values, before that step."
               if step != "?" else
               ". The parameters were restored to their values at the start of that epoch.")
        )
        net.diverged_ = {"epoch": epoch, "step": step, "problem": problem}
        if self.on_nonfinite == "warn":
            # the user's fit call: Network.fit (and its entry point), training.fit,
            # run_epochs, diverged, here
            warnings.warn(message, NonFiniteWarning, stacklevel=7)
            return
        raise DivergenceError(message)
