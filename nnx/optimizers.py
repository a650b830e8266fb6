"""Optimizers: per-parameter update rules in PyTorch's conventions.

An optimizer is built once for a network's parameters (``build``), then ``step(params,
grads)`` updates every parameter and returns the updated arrays (the same objects when the
backend's arrays are writeable: updates are applied in place, ``p -= u``).

Hyperparameters are Python floats and the step count a Python int, so nothing here creates a
float64 scalar in a float32 step or waits for a GPU.
"""

from __future__ import annotations

from .validation import check_number


class Optimizer:
    """Base class.

    Subclasses define ``init_slots(xp, p) -> dict`` (per-parameter state, created with
    ``xp.zeros_like`` so it inherits the device and dtype) and
    ``direction(xp, p, g, slots, t) -> (u, slots)``, the update to subtract before the
    learning rate is applied: :math:`p \\leftarrow p - \\eta_t u`.

    Parameters
    ----------
    learning_rate : float or callable
        A positive number, or a schedule ``step -> rate`` called with the 0-based step count.
    """

    name = "optimizer"

    def __init__(self, learning_rate):
        if callable(learning_rate):
            self.learning_rate = learning_rate
        else:
            self.learning_rate = check_number("learning_rate", learning_rate, low=0, low_open=True)
        self.iterations = 0
        self.slots: dict = {}
        self.ctx = None

    def build(self, params: dict, ctx) -> None:
        """Create the per-parameter state for ``params`` (name -> array)."""
        self.ctx = ctx
        self.iterations = 0
        self.slots = {name: self.init_slots(ctx.xp, p) for name, p in params.items()}

    def current_learning_rate(self) -> float:
        """The rate the next step will use."""
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    def step(self, params: dict, grads: dict) -> dict:
        """Apply one update to every parameter; returns name -> updated array."""
        xp = self.ctx.xp
        lr = self.current_learning_rate()
        self.iterations += 1
        t = self.iterations
        writeable = self.ctx.writeable
        out = {}
        for name, p in params.items():
            u, self.slots[name] = self.direction(xp, p, grads[name], self.slots[name], t)
            if writeable:
                p -= lr * u
                out[name] = p
            else:
                out[name] = p - lr * u
        return out

    def init_slots(self, xp, p) -> dict:
        return {}

    def direction(self, xp, p, g, slots, t):
        raise NotImplementedError("abstract method: subclasses define direction")

    def get_config(self) -> dict:
        lr = self.learning_rate
        return {"learning_rate": lr if not callable(lr) else repr(lr)}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        u_t &= g_t + \mu b_t \ \text{(Nesterov)}, \quad b_t \ \text{otherwise} \\
        p &\leftarrow p - \eta\, u_t

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-3
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False (needs ``momentum > 0`` and ``dampening == 0``)
    weight_decay : float >= 0, default 0
        Coupled L2: :math:`\lambda p` is added to the gradient (as torch). scikit-learn's
        ``alpha`` is the same penalty divided by the batch size.
    """

    name = "sgd"

    def __init__(self, learning_rate=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(learning_rate)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        self.dampening = check_number("dampening", dampening, low=0, high=1)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening == 0")

    def init_slots(self, xp, p):
        return {"momentum": None} if self.momentum else {}

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return g, slots
        b = slots["momentum"]
        b = g if b is None else self.momentum * b + (1.0 - self.dampening) * g
        u = g + self.momentum * b if self.nesterov else b
        return u, {"momentum": b}

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


OPTIMIZERS = {"sgd": SGD}


def get(optimizer, learning_rate=None) -> Optimizer:
    """Resolve an optimizer name or instance.

    ``learning_rate`` (when given) is passed to an optimizer created from a name.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known names).
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
        return OPTIMIZERS[optimizer.lower()](**kwargs)
    raise ValueError(
        f"unknown optimizer {optimizer!r}; choose one of {', '.join(sorted(OPTIMIZERS))} "
        "or pass an nnx.optimizers.Optimizer"
    )
