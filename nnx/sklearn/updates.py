"""scikit-learn's MLP update rules (``_stochastic_optimizers.py``) on any array API namespace.

They differ from nnx's torch-convention optimizers (:mod:`nnx.optimizers`) in ways that change
the trajectory, so the drop-in estimators use these:

- SGD's velocity is :math:`v \\leftarrow \\mu v - \\eta g` and the update is :math:`v`
  (Nesterov: :math:`\\mu v - \\eta g` once more with the new :math:`v`); the rate can follow
  ``"invscaling"`` (:math:`\\eta_0 / (t + 1)^{p}` with :math:`t` the samples seen, set at
  each epoch's end) or ``"adaptive"`` (divided by 5 instead of stopping, until below
  :math:`10^{-6}`).
- Adam folds both bias corrections into the rate and adds :math:`\\epsilon` outside the square
  root: :math:`\\theta \\leftarrow \\theta - \\eta_0 \\frac{\\sqrt{1 - \\beta_2^t}}{1 - \\beta_1^t}
  \\frac{m}{\\sqrt{v} + \\epsilon}`.

Rates and step counts are host numbers, so no step reads anything back from the device.
Parameters are updated in place where the backend allows it (scikit-learn's ``coefs_`` are
the arrays it trains), else replaced.
"""

from __future__ import annotations

import math

from ..backend import to_device


class _Rule:
    """Shared parts: the current ``learning_rate``, the update, the end-of-epoch hooks."""

    def __init__(self, ctx, learning_rate_init):
        self.ctx = ctx
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)

    def update_params(self, params, grads):
        """Add this step's updates to ``params``; returns the (same or new) arrays."""
        updates = self._get_updates(grads)
        if self.ctx.writeable:
            for p, u in zip(params, updates):
                p += u
            return params
        return [p + u for p, u in zip(params, updates)]

    #: names of the per-parameter state lists (moved by :meth:`move_to`)
    _slots = ()

    def move_to(self, ctx):
        """Carry the state over to ``ctx`` (another backend, device or dtype: the estimator's
        settings changed between ``partial_fit`` calls); arrays already there are kept."""
        self.ctx = ctx
        for name in self._slots:
            setattr(self, name, [to_device(a, ctx) for a in getattr(self, name)])

    def iteration_ends(self, time_step):
        """End of an epoch, ``time_step`` samples seen so far."""

    def trigger_stopping(self, msg, verbose):
        """Whether to stop when the loss (or validation score) stalled."""
        if verbose:
            print(msg + " Stopping.")
        return True


class SGD(_Rule):
    """scikit-learn's ``SGDOptimizer``: momentum, Nesterov, and its three rate rules."""

    def __init__(self, ctx, params, learning_rate_init=0.1, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5):
        super().__init__(ctx, learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocities = [ctx.xp.zeros_like(p) for p in params]
        self._slots = ("velocities",)

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def _get_updates(self, grads):
        mu, lr = self.momentum, self.learning_rate
        updates = [mu * v - lr * g for v, g in zip(self.velocities, grads)]
        self.velocities = updates
        if self.nesterov:
            updates = [mu * v - lr * g for v, g in zip(self.velocities, grads)]
        return updates


class Adam(_Rule):
    """scikit-learn's ``AdamOptimizer`` (see the module docstring for its formula)."""

    def __init__(self, ctx, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(ctx, learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = [ctx.xp.zeros_like(p) for p in params]
        self.vs = [ctx.xp.zeros_like(p) for p in params]
        self._slots = ("ms", "vs")

    def _get_updates(self, grads):
        xp, b1, b2 = self.ctx.xp, self.beta_1, self.beta_2
        self.t += 1
        self.ms = [b1 * m + (1 - b1) * g for m, g in zip(self.ms, grads)]
        self.vs = [b2 * v + (1 - b2) * (g ** 2) for v, g in zip(self.vs, grads)]
        self.learning_rate = (self.learning_rate_init * math.sqrt(1 - b2 ** self.t)
                              / (1 - b1 ** self.t))
        return [-self.learning_rate * m / (xp.sqrt(v) + self.epsilon)
                for m, v in zip(self.ms, self.vs)]
