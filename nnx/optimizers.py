"""Optimizers: per-parameter update rules in PyTorch's conventions.

An optimizer is built once for a network's parameters (``build``), then ``step(params,
grads)`` updates every parameter and returns the updated arrays, which the caller installs as
the parameters: the same objects updated in place (``p -= u``) where the backend's arrays are
writeable, or, for a rule running packed (``foreach``), slices of its packed vector.

Every rule follows ``torch.optim`` to the operation (where epsilon sits, how momentum takes the
learning rate, when weight decay is coupled), so ``torch.optim`` is an exact oracle: the tests
train the same network with both for 100 steps in float64 and compare parameters to 1e-8.
Each docstring gives the formula and says where scikit-learn or Keras differ.

What every optimizer shares (the :class:`Optimizer` base):

- ``learning_rate`` is a positive Python float or a schedule ``step -> rate`` (see
  :mod:`nnx.schedules`) evaluated once per step with the 0-based step count;
- ``clip_value=`` clamps every gradient entry to ``[-clip_value, clip_value]`` and
  ``clip_norm=`` rescales all gradients together so that their global L2 norm is at most
  ``clip_norm`` (``torch.nn.utils.clip_grad_norm_``; value clipping first when both are set);
- ``state_dict()`` / ``load_state_dict()`` hold host NumPy arrays and Python scalars, so a run
  can be saved (without pickle) and resumed exactly.

Hyperparameters are Python floats and the step count a Python int, so nothing here creates a
float64 scalar in a float32 step or waits for a GPU. Per-parameter state ("slots") is created
with ``xp.zeros_like`` (of the parameter, or of the packed vector when the rule runs packed)
and so inherits its device and dtype; where the backend's arrays are writeable, slots are
updated in place too (it saves one temporary array per moving average, which matters for
large layers).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .backend import to_numpy
from .packing import FlatLayout
from .validation import check_bool, check_choice, check_learning_rate, check_number



_PACKED = "*packed*"  # the one slots key of a rule running on packed parameters


def _check_beta(name, value):
    return check_number(name, value, low=0, high=1, high_open=True)


def _optional_positive(name, value):
    return None if value is None else check_number(name, value, low=0, low_open=True)


def _host_copy(x):
    """A host NumPy copy of a device array (a copy even on NumPy: slots mutate in place)."""
    return None if x is None else np.array(to_numpy(x), copy=True)


class Optimizer:
    r"""Base class of the update rules.

    Subclasses define ``init_slots(xp, p) -> dict`` (per-parameter state) and
    ``direction(xp, p, g, slots, t) -> (u, slots)``: the update before the learning rate is
    applied, :math:`p \leftarrow p - \eta_t c_t u`, where ``t`` is the 1-based step number.
    Per-step host scalars shared by all parameters (bias corrections) go in ``begin_step(t)``,
    which may also set the host factor :math:`c_t` (``self._rate_factor``, default 1): a
    scalar folded into the rate costs no array operation.

    Parameters
    ----------
    learning_rate : float or callable
        A positive number, or a schedule ``step -> rate`` called with the 0-based step count
        (one step per batch; see :mod:`nnx.schedules`).
    clip_norm : float, optional
        Rescale the gradients so that their global L2 norm (all parameters together) is at
        most ``clip_norm``: :math:`g \leftarrow g \min(1, c / (\lVert g \rVert + 10^{-6}))`,
        exactly ``torch.nn.utils.clip_grad_norm_``. Keras calls this ``global_clipnorm``
        (its ``clipnorm`` clips each parameter separately).
    clip_value : float, optional
        Clamp every gradient entry to ``[-clip_value, clip_value]``
        (``torch.nn.utils.clip_grad_value_``, Keras ``clipvalue``). Applied before
        ``clip_norm`` when both are given.
    foreach : bool, optional
        Run the rule once over all parameters packed into one vector
        (:class:`~nnx.packing.FlatLayout`) instead of once per parameter: the same
        arithmetic on every entry, in a dozen array calls per step instead of a dozen per
        parameter (fewer calls, the aim of torch's ``foreach`` option, which launches
        multi-tensor kernels instead of packing). ``None`` (default) packs when the
        parameters average at most :attr:`FOREACH_MAX_MEAN_SIZE` elements, where the calls'
        fixed cost dominates; packing costs one copy of the gradients per step, which large
        layers do not repay. Only rules marked :attr:`elementwise` can pack. A kernel
        constraint that replaces ``W`` after every step (``MaxNorm``) makes every step pack
        the parameters again (correct, one more copy).

    Attributes
    ----------
    iterations : int
        Steps taken so far.
    slots : dict
        Parameter name -> that parameter's state (device arrays).
    needs_closure : bool
        ``True`` for optimizers that must re-evaluate the objective inside a step (LBFGS);
        they provide ``minimize(closure, params)`` instead of ``step``.
    elementwise : bool
        ``True`` for rules whose update of an entry depends on that entry alone (its
        gradient, its value, its own state) and on host scalars: these may pack
        (``foreach``). A subclass that defines its own ``direction``, ``init_slots`` or
        ``begin_step`` is not element-wise unless it says so (``elementwise = True`` in its
        class body): a rule that looks across entries (a per-matrix norm, ``p.ndim``) must
        never see the packed vector.
    """

    name = "optimizer"
    needs_closure = False
    elementwise = False
    #: ``foreach=None`` packs when the parameters average at most this many elements, unless
    #: the backend sets its own (:attr:`nnx.backend.Backend.foreach_max_mean_size`). Measured
    #: by ``benchmarks/foreach_threshold.py`` with NumPy on a CPU; GPU backends use it too
    #: until a GPU run of that script sets theirs.
    FOREACH_MAX_MEAN_SIZE = 2**13
    _rate_factor = 1.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "elementwise" not in own and any(
                name in own for name in ("direction", "init_slots", "begin_step")):
            cls.elementwise = False  # a new rule is not element-wise until it says so

    def __init__(self, learning_rate, *, clip_norm=None, clip_value=None, foreach=None):
        self.learning_rate = check_learning_rate(learning_rate)
        self.clip_norm = _optional_positive("clip_norm", clip_norm)
        self.clip_value = _optional_positive("clip_value", clip_value)
        self.foreach = None if foreach is None else check_bool("foreach", foreach)
        if self.foreach and not self.elementwise:
            raise ValueError(
                f"foreach=True packs all parameters into one vector, which only element-wise "
                f"rules allow; {type(self).__name__} is not element-wise"
            )
        self.iterations = 0
        self._slots: dict = {}
        self._packing: FlatLayout | None = None  # set by build when the rule runs packed
        self._packed_params = None  # the packed parameters the last step handed out
        self.ctx = None

    # ------------------------------------------------------------------ lifecycle

    def build(self, params: dict, ctx) -> None:
        """Create the per-parameter state for ``params`` (name -> array); resets the count."""
        self.ctx = ctx
        self.iterations = 0
        self._packing = FlatLayout(params) if self._packs(params) else None
        self._packed_params = None
        if self._packing is None:
            self._slots = {name: self.init_slots(ctx.xp, p) for name, p in params.items()}
        else:
            self._slots = {_PACKED: self.init_slots(ctx.xp, self._packing.pack(ctx.xp, params))}
        self.reset()

    def __getstate__(self):
        # a copy (lr_find's, a pickle) must pack its own parameters again: the parameters
        # handed out here are views of this optimizer's packed vector, a copy's are not
        state = dict(vars(self))
        state["_packed_params"] = None
        return state

    def _packs(self, params: dict) -> bool:
        """Whether this rule runs on the packed parameters (see ``foreach``)."""
        if not self.elementwise or self.foreach is False or len(params) < 2:
            return False
        if self.foreach:
            return True
        total = sum(math.prod(p.shape) for p in params.values())
        limit = self.ctx.backend.foreach_max_mean_size or self.FOREACH_MAX_MEAN_SIZE
        return total <= limit * len(params)

    @property
    def packed(self) -> bool:
        """True when the rule runs once over all parameters packed (``foreach``)."""
        return self._packing is not None

    @property
    def slots(self) -> dict:
        """Parameter name -> that parameter's state (slot name -> array or ``None``).

        When the rule runs packed, these are the parameter's slices of the packed state
        (views on NumPy, CuPy and torch); read them, do not replace them.
        """
        if self._packing is None:
            return self._slots
        xp, layout = self.ctx.xp, self._packing
        per_slot = {k: None if v is None else layout.unpack(xp, v)
                    for k, v in self._slots[_PACKED].items()}
        return {name: {k: None if parts is None else parts[name]
                       for k, parts in per_slot.items()}
                for name in layout.names}

    def _set_slots(self, per_parameter: dict) -> None:
        """Install per-parameter slots (``load_state_dict``), packing them when needed."""
        if self._packing is None:
            self._slots = per_parameter
            return
        xp, layout = self.ctx.xp, self._packing
        first = per_parameter[layout.names[0]]
        self._slots = {_PACKED: {
            k: None if first[k] is None
            else layout.pack(xp, {name: per_parameter[name][k] for name in layout.names})
            for k in first}}
        self._packed_params = None

    def reset(self) -> None:
        """Reset optimizer-level state (beyond the slots); called by ``build``."""

    def current_learning_rate(self) -> float:
        """The rate the next step will use, as a Python float."""
        lr = self.learning_rate
        if not callable(lr):
            return lr
        value = float(lr(self.iterations))
        if not value >= 0.0:  # also catches NaN
            raise ValueError(
                f"the learning-rate schedule returned {value!r} at step {self.iterations}; "
                "rates must be >= 0"
            )
        return value

    # ------------------------------------------------------------------ the step

    def step(self, params: dict, grads: dict) -> dict:
        """Apply one update to every parameter; returns name -> updated array.

        Install the returned arrays as the parameters: when the rule runs packed they are
        slices of the packed vector, not the arrays passed in. Replacing a parameter between
        steps (passing another array under its name) is noticed; writing into a returned
        array in place reaches the packed vector only where slices are views (NumPy, CuPy,
        torch).
        """
        xp = self.ctx.xp
        lr = self.current_learning_rate()
        self.iterations += 1
        t = self.iterations
        layout = self._packing
        if layout is not None:
            # the packed parameters stay current while the arrays handed out last step come
            # back unchanged; anything else (set_parameters, a restore, a constraint that
            # rebinds) means pack again
            if self._packed_params is None or not layout.holds(params):
                self._packed_params = layout.pack(xp, params)
            params = {_PACKED: self._packed_params}
            grads = {_PACKED: layout.pack(xp, grads)}
        if self.clip_value is not None or self.clip_norm is not None:
            grads = self.clip_gradients(grads)
        self.begin_step(t)
        lr = lr * self._rate_factor
        writeable = self.ctx.writeable
        slots = self._slots
        out = {}
        for name, p in params.items():
            u, slots[name] = self.direction(xp, p, grads[name], slots[name], t)
            if writeable:
                p -= lr * u
                out[name] = p
            else:
                out[name] = p - lr * u
        if layout is None:
            return out
        self._packed_params = out[_PACKED]
        return layout.hand_out(xp, self._packed_params, self.ctx.views)

    def clip_gradients(self, grads: dict) -> dict:
        """Apply ``clip_value`` then ``clip_norm``; returns new gradient arrays.

        The global norm stays a device 0-d array (no host synchronisation): the scale factor
        :math:`\\min(1, c / (\\lVert g \\rVert + 10^{-6}))` multiplies every gradient, as in
        ``torch.nn.utils.clip_grad_norm_``.
        """
        xp = self.ctx.xp
        if self.clip_value is not None:
            c = self.clip_value
            grads = {k: xp.clip(g, min=-c, max=c) for k, g in grads.items()}
        if self.clip_norm is not None:
            # the norm of the per-parameter norms, as torch: no squared temporaries
            total = None
            for g in grads.values():
                s = xp.linalg.vector_norm(g) ** 2
                total = s if total is None else total + s
            scale = xp.minimum(self.clip_norm / (xp.sqrt(total) + 1e-6), 1.0)
            grads = {k: g * scale for k, g in grads.items()}
        return grads

    def begin_step(self, t: int) -> None:
        """Hook: host scalars shared by all parameters at step ``t`` (1-based)."""

    def init_slots(self, xp, p) -> dict:
        return {}

    def direction(self, xp, p, g, slots, t):
        raise NotImplementedError("abstract method: subclasses define direction")

    def _scale_add(self, buf, a: float, x, b: float, x_is_temporary=False):
        """``a * buf + b * x``, computed in ``buf`` itself where the backend allows it (and
        in ``x`` too when the caller made it for this call): large arrays then cost no
        fresh allocations, whose page faults dominate a memory-bound update."""
        if self.ctx.writeable:
            if a != 1.0:
                buf *= a
            if b != 1.0:
                if x_is_temporary:
                    x *= b
                else:
                    x = b * x
            buf += x
            return buf
        return a * buf + b * x

    # ------------------------------------------------------------------ saving

    def state_dict(self) -> dict:
        """Everything needed to resume: host NumPy arrays and Python scalars only.

        Returns
        -------
        dict
            ``{"optimizer": name, "iterations": int, "learning_rate": float (when not a
            schedule), "slots": {param: {slot: ndarray or None}}, "extra": {...}}``.
        """
        state = {
            "optimizer": self.name,
            "iterations": self.iterations,
            "slots": {
                pname: {k: _host_copy(v) for k, v in slots.items()}
                for pname, slots in self.slots.items()
            },
            "extra": self._extra_state(),
        }
        if not callable(self.learning_rate):
            # a rate lowered by ReduceLROnPlateau must survive the resume
            state["learning_rate"] = self.learning_rate
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` into this (built) optimizer.

        Raises
        ------
        ValueError
            Not built, written by another optimizer, or slots that do not match the
            parameters this optimizer was built for.
        """
        if self.ctx is None:
            raise ValueError("load_state_dict needs a built optimizer: build the network first")
        if state.get("optimizer") != self.name:
            raise ValueError(
                f"this state was saved by optimizer {state.get('optimizer')!r}; "
                f"cannot load it into {self.name!r}"
            )
        slots, expected = state["slots"], self.slots
        if set(slots) != set(expected):
            raise ValueError(
                f"state holds slots for parameters {sorted(slots)}; this optimizer has "
                f"{sorted(expected)}"
            )
        new = {}
        for pname, saved in slots.items():
            current = expected[pname]
            if set(saved) != set(current):
                raise ValueError(f"slots of {pname!r} differ: saved {sorted(saved)}, "
                                 f"expected {sorted(current)}")
            new[pname] = {}
            for k, arr in saved.items():
                ref = current[k]
                if arr is not None and ref is not None and tuple(arr.shape) != tuple(ref.shape):
                    raise ValueError(
                        f"slot {pname}.{k} has shape {tuple(ref.shape)}; saved {arr.shape}"
                    )
                new[pname][k] = self._to_device(arr, None if ref is None else ref.dtype)
        self._set_slots(new)
        self.iterations = int(state["iterations"])
        if "learning_rate" in state and not callable(self.learning_rate):
            self.learning_rate = float(state["learning_rate"])
        self._load_extra_state(state.get("extra", {}))

    def snapshot(self) -> dict:
        """An in-memory restore point on the device (no host transfer): copies of the slots,
        and the other attributes as they are (counters, host scalars; lists are copied).

        An optimizer that updates an array outside ``slots`` in place must override this.
        """
        state = dict(vars(self))
        for key in ("ctx", "_packing", "_packed_params"):
            del state[key]
        for key, value in state.items():
            if type(value) is list:
                state[key] = list(value)
        state["_slots"] = self._copy_slots(self._slots)
        return state

    def restore(self, state: dict) -> None:
        """Go back to a :meth:`snapshot` (which stays reusable)."""
        state = dict(state)
        state["_slots"] = self._copy_slots(state["_slots"])
        vars(self).update(state)
        self._packed_params = None  # the parameters are packed again from the network's

    def _copy_slots(self, slots: dict) -> dict:
        if not any(slots.values()):  # a rule without state (plain SGD): nothing to copy
            return {name: {} for name in slots}
        xp = self.ctx.xp
        return {name: {k: (xp.asarray(v, copy=True) if hasattr(v, "shape") else v)
                       for k, v in per_param.items()}
                for name, per_param in slots.items()}

    def _to_device(self, arr, dtype=None):
        if arr is None:
            return None
        # copy=True: slots are updated in place, the caller's arrays must not be
        return self.ctx.xp.asarray(arr, dtype=self.ctx.dtype if dtype is None else dtype,
                                   device=self.ctx.device, copy=True)

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    # ------------------------------------------------------------------ display

    def get_config(self) -> dict:
        lr = self.learning_rate
        config = {"learning_rate": lr}
        if self.clip_norm is not None:
            config["clip_norm"] = self.clip_norm
        if self.clip_value is not None:
            config["clip_value"] = self.clip_value
        if self.foreach is not None:
            config["foreach"] = self.foreach
        return config

    def _config(self, **kwargs) -> dict:
        """The base config with the subclass's hyperparameters inserted after the rate."""
        base = Optimizer.get_config(self)
        lr = {"learning_rate": base.pop("learning_rate")}
        return {**lr, **kwargs, **base}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------- first-order rules


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
        Coupled L2: :math:`\lambda p` is added to the gradient (as torch).
    clip_norm, clip_value : float, optional
        See :class:`Optimizer`.
    foreach : bool, optional
        Pack the parameters into one vector (see :class:`Optimizer`). ``None`` never packs
        for SGD: at two to five array calls per parameter, packing saves under 5% even on
        the smallest networks (``benchmarks/foreach_threshold.py``).

    Notes
    -----
    scikit-learn and Keras keep the learning rate inside the velocity,
    :math:`v \leftarrow \mu v - \eta g,\ p \leftarrow p + v`; that is the same trajectory
    while :math:`\eta` is constant, and differs once a schedule changes it (torch applies
    the current rate to the whole buffer). scikit-learn's ``alpha`` is an L2 penalty whose
    gradient is ``alpha / batch_size * W`` on weights only: ``weight_decay = alpha / n``.
    """

    name = "sgd"
    elementwise = True

    def __init__(self, learning_rate=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, *, clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        self.dampening = check_number("dampening", dampening, low=0, high=1)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                "nesterov=True needs momentum in (0, 1) and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )

    def init_slots(self, xp, p):
        # None until the first step, which copies the gradient (torch: buf = grad.clone())
        return {"momentum": None} if self.momentum else {}

    def _packs(self, params):
        # SGD takes two to five array calls per parameter: measured with momentum, packing
        # saves under 5% on the smallest networks and loses from ~9k entries per parameter
        # (benchmarks/foreach_threshold.py); plain SGD has less to save. Only on request.
        return bool(self.foreach) and super()._packs(params)

    def step(self, params, grads):
        if (self.momentum or self.weight_decay or self.clip_value or self.clip_norm
                or self._packing is not None):
            return super().step(params, grads)
        # Plain SGD, p <- p - lr g, without a direction() call per parameter: on a small
        # network the Python overhead of the general path is ~3% of the whole step.
        lr = self.current_learning_rate()
        self.iterations += 1
        if self.ctx.writeable:
            for name, p in params.items():
                p -= lr * grads[name]
            return params
        return {name: p - lr * grads[name] for name, p in params.items()}

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return g, slots
        b = slots["momentum"]
        if b is None:
            b = xp.asarray(g, copy=True)
        else:
            b = self._scale_add(b, self.momentum, g, 1.0 - self.dampening)
        u = g + self.momentum * b if self.nesterov else b
        return u, {"momentum": b}

    def get_config(self):
        return self._config(momentum=self.momentum, dampening=self.dampening,
                            nesterov=self.nesterov, weight_decay=self.weight_decay)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        p &\leftarrow p - \frac{\eta}{1 + (t - 1)\,\delta}\,
             \frac{g_t}{\sqrt{s_t} + \epsilon}

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-2
    lr_decay : float >= 0, default 0
        :math:`\delta` above.
    weight_decay : float >= 0, default 0
        Coupled L2 (added to the gradient).
    initial_accumulator_value : float >= 0, default 0
    epsilon : float >= 0, default 1e-10
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras defaults differ: ``learning_rate=0.001``, ``initial_accumulator_value=0.1``,
    ``epsilon=1e-7``.
    """

    name = "adagrad"
    elementwise = True

    def __init__(self, learning_rate=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, epsilon=1e-10, *, clip_norm=None,
                 clip_value=None, foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.lr_decay = check_number("lr_decay", lr_decay, low=0)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)
        self.initial_accumulator_value = check_number(
            "initial_accumulator_value", initial_accumulator_value, low=0)
        self.epsilon = check_number("epsilon", epsilon, low=0)

    def init_slots(self, xp, p):
        return {"sum": xp.full_like(p, self.initial_accumulator_value)}

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._scale_add(slots["sum"], 1.0, g * g, 1.0)
        u = g / (xp.sqrt(s) + self.epsilon)
        if self.lr_decay:
            u = u * (1.0 / (1.0 + (t - 1) * self.lr_decay))
        return u, {"sum": s}

    def get_config(self):
        return self._config(lr_decay=self.lr_decay, weight_decay=self.weight_decay,
                            initial_accumulator_value=self.initial_accumulator_value,
                            epsilon=self.epsilon)


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), as ``torch.optim.RMSprop`` (``rho`` is torch's ``alpha``).

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2, \qquad
        \bar g_t = \rho \bar g_{t-1} + (1 - \rho) g_t \ \text{(centered)} \\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)}, \quad
               \sqrt{v_t} + \epsilon \ \text{otherwise} \\
        b_t &= \mu b_{t-1} + g_t / d_t \quad (b_0 = 0) \\
        p &\leftarrow p - \eta\, b_t \quad (\mu > 0), \qquad
        p \leftarrow p - \eta\, g_t / d_t \quad (\mu = 0)

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-2
    rho : float in [0, 1), default 0.99
        Decay of the squared-gradient average (torch ``alpha``, Keras ``rho``).
    epsilon : float >= 0, default 1e-8
    momentum : float in [0, 1), default 0
    centered : bool, default False
        Normalise by the estimated variance instead of the uncentered second moment.
    weight_decay : float >= 0, default 0
        Coupled L2 (added to the gradient).
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras puts epsilon inside the square root, :math:`g / \sqrt{v + \epsilon}`, keeps the
    rate inside the momentum buffer (:math:`b \leftarrow \mu b + \eta g / d`), and defaults
    to ``rho=0.9``, ``epsilon=1e-7``, ``learning_rate=0.001``.
    """

    name = "rmsprop"
    elementwise = True

    def __init__(self, learning_rate=1e-2, rho=0.99, epsilon=1e-8, momentum=0.0,
                 centered=False, weight_decay=0.0, *, clip_norm=None, clip_value=None,
                 foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.rho = _check_beta("rho", rho)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        self.centered = check_bool("centered", centered)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)

    def init_slots(self, xp, p):
        slots = {"square_avg": xp.zeros_like(p)}
        if self.centered:
            slots["grad_avg"] = xp.zeros_like(p)
        if self.momentum:
            slots["momentum"] = xp.zeros_like(p)
        return slots

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        rho = self.rho
        new = {"square_avg": self._scale_add(slots["square_avg"], rho, g * g, 1.0 - rho)}
        if self.centered:
            ga = new["grad_avg"] = self._scale_add(slots["grad_avg"], rho, g, 1.0 - rho)
            denom = xp.sqrt(new["square_avg"] - ga * ga) + self.epsilon
        else:
            denom = xp.sqrt(new["square_avg"]) + self.epsilon
        u = g / denom
        if self.momentum:
            u = new["momentum"] = self._scale_add(slots["momentum"], self.momentum, u, 1.0)
        return u, new

    def get_config(self):
        return self._config(rho=self.rho, epsilon=self.epsilon, momentum=self.momentum,
                            centered=self.centered, weight_decay=self.weight_decay)


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        a_t &= \rho a_{t-1} + (1 - \rho) \Delta_t^2 \\
        p &\leftarrow p - \eta\, \Delta_t

    Parameters
    ----------
    learning_rate : float or schedule, default 1.0
        Adadelta needs no rate in the paper; torch keeps one as a multiplier.
    rho : float in [0, 1), default 0.9
    epsilon : float >= 0, default 1e-6
    weight_decay : float >= 0, default 0
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras uses ``learning_rate=0.001``, ``rho=0.95`` and ``epsilon=1e-7`` by default.
    """

    name = "adadelta"
    elementwise = True

    def __init__(self, learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.0, *,
                 clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.rho = _check_beta("rho", rho)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)

    def init_slots(self, xp, p):
        return {"square_avg": xp.zeros_like(p), "acc_delta": xp.zeros_like(p)}

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        rho, eps = self.rho, self.epsilon
        v = self._scale_add(slots["square_avg"], rho, g * g, 1.0 - rho)
        delta = xp.sqrt(slots["acc_delta"] + eps) / xp.sqrt(v + eps) * g
        a = self._scale_add(slots["acc_delta"], rho, delta * delta, 1.0 - rho)
        return delta, {"square_avg": v, "acc_delta": a}

    def get_config(self):
        return self._config(rho=self.rho, epsilon=self.epsilon,
                            weight_decay=self.weight_decay)



class _Moments(Optimizer):
    """Shared parts of the Adam family: moment rates ``beta_1``, ``beta_2``, ``epsilon`` and
    coupled weight decay (:math:`g \\leftarrow g + \\lambda p`), validated once here."""

    elementwise = True

    def __init__(self, learning_rate, beta_1, beta_2, epsilon, weight_decay, *, clip_norm=None,
                 clip_value=None, foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.beta_1 = _check_beta("beta_1", beta_1)
        self.beta_2 = _check_beta("beta_2", beta_2)
        self.epsilon = check_number("epsilon", epsilon, low=0)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)

    def _moments_config(self, **extra) -> dict:
        return self._config(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                            weight_decay=self.weight_decay, **extra)


class Adam(_Moments):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(AMSGrad)}, \quad v_t \ \text{otherwise} \\
        p &\leftarrow p - \eta\, \frac{m_t / (1 - \beta_1^t)}
                                  {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-3
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
        Coupled L2 (added to the gradient, so it is rescaled by the second moment); see
        :class:`AdamW` for decoupled decay.
    amsgrad : bool, default False
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    scikit-learn and Keras add epsilon to the *uncorrected* root,
    :math:`\eta \sqrt{1-\beta_2^t}/(1-\beta_1^t)\; m_t / (\sqrt{v_t} + \epsilon)`, which
    equals torch's rule with :math:`\epsilon` replaced by
    :math:`\epsilon / \sqrt{1-\beta_2^t}`; Keras defaults to ``epsilon=1e-7``.
    """

    name = "adam"
    elementwise = True
    _decoupled = False

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, amsgrad=False, *, clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def init_slots(self, xp, p):
        slots = {"m": xp.zeros_like(p), "v": xp.zeros_like(p)}
        if self.amsgrad:
            slots["v_max"] = xp.zeros_like(p)
        return slots

    def begin_step(self, t):
        # m_hat / (sqrt(v_hat) + eps) = (sqrt(bc2) / bc1) m / (sqrt(v) + sqrt(bc2) eps): the
        # bias corrections become a factor of the rate and a shifted epsilon, two array
        # operations less per parameter than correcting m and v
        root_bc2 = math.sqrt(1.0 - self.beta_2**t)
        self._rate_factor = root_bc2 / (1.0 - self.beta_1**t)
        self._denom_eps = root_bc2 * self.epsilon

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay and not self._decoupled:
            g = g + self.weight_decay * p
        b1, b2 = self.beta_1, self.beta_2
        m = self._scale_add(slots["m"], b1, g, 1.0 - b1)
        v = self._scale_add(slots["v"], b2, g * g, 1.0 - b2, x_is_temporary=True)
        new = {"m": m, "v": v}
        if self.amsgrad:
            v = new["v_max"] = xp.maximum(slots["v_max"], v)
        denom = xp.sqrt(v)
        if self.ctx.writeable:  # the same arithmetic, without a temporary
            denom += self._denom_eps
        else:
            denom = denom + self._denom_eps
        u = m / denom
        if self.weight_decay and self._decoupled:  # p -= lr wd p, through the rate factor
            u = u + (self.weight_decay / self._rate_factor) * p
        return u, new

    def get_config(self):
        return self._moments_config(amsgrad=self.amsgrad)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The decay shrinks the weights directly instead of passing through the moments:

    .. math::
        p \leftarrow p - \eta \lambda p - \eta\, \frac{m_t / (1 - \beta_1^t)}
                                                {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    with :math:`m_t, \hat v_t` as in :class:`Adam` computed from the raw gradient.

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-3
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float >= 0, default 1e-8
    weight_decay : float >= 0, default 1e-2
    amsgrad : bool, default False
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras's AdamW uses the same decoupled form (``weight_decay=0.004`` by default) and
    Adam's epsilon placement of Keras (see :class:`Adam`).
    """

    name = "adamw"
    _decoupled = True

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=1e-2, amsgrad=False, *, clip_norm=None, clip_value=None,
                 foreach=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, amsgrad,
                         clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)


class NAdam(_Moments):
    r"""Adam with Nesterov momentum (Dozat, 2016), as ``torch.optim.NAdam``.

    The momentum coefficient warms up, :math:`\mu_t = \beta_1 (1 - \tfrac12
    0.96^{t\psi})` with :math:`\psi` = ``momentum_decay``, and the update looks one step
    ahead:

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        p &\leftarrow p - \eta \left( \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i} g_t
             + \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i} m_t \right)
             \Big/ \left(\sqrt{v_t / (1 - \beta_2^t)} + \epsilon\right)

    Parameters
    ----------
    learning_rate : float or schedule, default 2e-3
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
        Coupled L2.
    momentum_decay : float >= 0, default 4e-3
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    The running product :math:`\prod \mu_i` is a host float64. torch keeps it in a tensor of
    the default dtype, so to compare in float64 run torch with
    ``torch.set_default_dtype(torch.float64)``. Keras's Nadam fixes
    ``momentum_decay=0.004`` and defaults to ``learning_rate=0.001``, ``epsilon=1e-7``.
    """

    name = "nadam"
    elementwise = True

    def __init__(self, learning_rate=2e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, momentum_decay=4e-3, *, clip_norm=None, clip_value=None,
                 foreach=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.momentum_decay = check_number("momentum_decay", momentum_decay, low=0)
        self.mu_product = 1.0

    def reset(self):
        self.mu_product = 1.0

    def init_slots(self, xp, p):
        return {"m": xp.zeros_like(p), "v": xp.zeros_like(p)}

    def begin_step(self, t):
        b1, psi = self.beta_1, self.momentum_decay
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        self.mu_product *= mu
        self._coef_g = (1.0 - mu) / (1.0 - self.mu_product)
        self._coef_m = mu_next / (1.0 - self.mu_product * mu_next)
        self._inv_bc2 = 1.0 / (1.0 - self.beta_2**t)

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        b1, b2 = self.beta_1, self.beta_2
        m = self._scale_add(slots["m"], b1, g, 1.0 - b1)
        v = self._scale_add(slots["v"], b2, g * g, 1.0 - b2)
        denom = xp.sqrt(v * self._inv_bc2) + self.epsilon
        u = (self._coef_g * g + self._coef_m * m) / denom
        return u, {"m": m, "v": v}

    def _extra_state(self):
        return {"mu_product": self.mu_product}

    def _load_extra_state(self, extra):
        self.mu_product = float(extra["mu_product"])

    def get_config(self):
        return self._moments_config(momentum_decay=self.momentum_decay)


class RAdam(_Moments):
    r"""Rectified Adam (Liu et al., 2020), as ``torch.optim.RAdam``.

    While the variance of the adaptive rate is intractable (early steps) the update is
    momentum SGD; afterwards it is Adam scaled by the rectification :math:`r_t`:

    .. math::
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        \hat m_t &= m_t / (1 - \beta_1^t) \\
        p &\leftarrow p - \eta\, \hat m_t\, r_t \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} +
              \epsilon} \quad (\rho_t > 5), \qquad p \leftarrow p - \eta\, \hat m_t
              \ \text{otherwise} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    with :math:`m_t, v_t` Adam's moments of :math:`g_t = \nabla_p L + \lambda p`.

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-3
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
        Coupled L2.
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.
    """

    name = "radam"
    elementwise = True

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, *, clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)

    def init_slots(self, xp, p):
        return {"m": xp.zeros_like(p), "v": xp.zeros_like(p)}

    def begin_step(self, t):
        b2 = self.beta_2
        bc2 = 1.0 - b2**t
        self._inv_bc1 = 1.0 / (1.0 - self.beta_1**t)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2**t / bc2
        self._rectify = rho_t > 5.0
        if self._rectify:
            r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                 / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
            self._adaptive_scale = math.sqrt(bc2) * r

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        b1, b2 = self.beta_1, self.beta_2
        m = self._scale_add(slots["m"], b1, g, 1.0 - b1)
        v = self._scale_add(slots["v"], b2, g * g, 1.0 - b2)
        u = m * self._inv_bc1
        if self._rectify:
            u = u * (self._adaptive_scale / (xp.sqrt(v) + self.epsilon))
        return u, {"m": m, "v": v}

    def get_config(self):
        return self._moments_config()


class Adamax(_Moments):
    r"""Adamax, Adam with an infinity norm (Kingma & Ba, 2015), as ``torch.optim.Adamax``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        p &\leftarrow p - \frac{\eta}{1 - \beta_1^t}\, \frac{m_t}{u_t}

    Parameters
    ----------
    learning_rate : float or schedule, default 2e-3
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
        Coupled L2.
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras adds epsilon outside the maximum, :math:`m_t / (\max(\beta_2 u, |g|) +
    \epsilon)`, with ``learning_rate=0.001``, ``epsilon=1e-7``.
    """

    name = "adamax"
    elementwise = True

    def __init__(self, learning_rate=2e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, *, clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)

    def init_slots(self, xp, p):
        return {"m": xp.zeros_like(p), "u": xp.zeros_like(p)}

    def direction(self, xp, p, g, slots, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        b1 = self.beta_1
        m = self._scale_add(slots["m"], b1, g, 1.0 - b1)
        norm = xp.maximum(self.beta_2 * slots["u"], xp.abs(g) + self.epsilon)
        u = m / norm * (1.0 / (1.0 - b1**t))
        return u, {"m": m, "u": norm}

    def get_config(self):
        return self._moments_config()


class Lion(Optimizer):
    r"""Lion, "evolved sign momentum" (Chen et al., 2023, arXiv:2302.06675, Algorithm 2).

    Not in ``torch.optim``; the tests check it against the paper's update written out.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        p &\leftarrow p - \eta \left(\operatorname{sign}(c_t) + \lambda p\right) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    Every coordinate moves by exactly :math:`\pm\eta` (plus decay), so Lion wants a rate
    3-10x smaller than Adam's and a decoupled weight decay 3-10x larger.

    Parameters
    ----------
    learning_rate : float or schedule, default 1e-4
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.99
    weight_decay : float >= 0, default 0
        Decoupled (multiplied by the rate, not passed through the sign).
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.

    Notes
    -----
    Keras's Lion is the same rule (its ``weight_decay`` decoupled the same way) but defaults
    to ``learning_rate=0.001``; the authors' implementation (google/automl) uses ``1e-4``.
    """

    name = "lion"
    elementwise = True

    def __init__(self, learning_rate=1e-4, beta_1=0.9, beta_2=0.99, weight_decay=0.0, *,
                 clip_norm=None, clip_value=None, foreach=None):
        super().__init__(learning_rate, clip_norm=clip_norm, clip_value=clip_value,
                         foreach=foreach)
        self.beta_1 = _check_beta("beta_1", beta_1)
        self.beta_2 = _check_beta("beta_2", beta_2)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)

    def init_slots(self, xp, p):
        return {"m": xp.zeros_like(p)}

    def direction(self, xp, p, g, slots, t):
        b1, b2 = self.beta_1, self.beta_2
        u = xp.sign(b1 * slots["m"] + (1.0 - b1) * g)
        if self.weight_decay:
            u = u + self.weight_decay * p
        m = self._scale_add(slots["m"], b2, g, 1.0 - b2)
        return u, {"m": m}

    def get_config(self):
        return self._config(beta_1=self.beta_1, beta_2=self.beta_2,
                            weight_decay=self.weight_decay)


# ---------------------------------------------------------------------- quasi-Newton


class LBFGS(Optimizer):
    r"""Limited-memory BFGS, a port of ``torch.optim.LBFGS`` (itself after minFunc).

    Full-batch and deterministic: one *step* runs up to ``max_iter`` quasi-Newton iterations
    on the whole training set. The search direction comes from the two-loop recursion over
    the last ``history_size`` curvature pairs :math:`s_k = p_{k+1} - p_k`,
    :math:`y_k = g_{k+1} - g_k` (pairs with :math:`y^\top s \le 10^{-10}` are skipped):

    .. math::
        d = -H_k g_k, \qquad H_k^0 = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}} I

    and the step length comes from a strong-Wolfe line search (sufficient decrease
    :math:`c_1 = 10^{-4}`, curvature :math:`c_2 = 0.9`, cubic interpolation), or is the
    fixed ``learning_rate`` with ``line_search=None`` (the first iteration ever uses
    :math:`\min(1, 1/\lVert g \rVert_1)\,\eta`).

    It needs the objective, not just a gradient, so it has no ``step``: call
    ``minimize(closure, params)``. :meth:`nnx.Network.fit` does so once per epoch on the
    full training set (``batch_size`` is ignored) because ``needs_closure`` is true.

    Parameters
    ----------
    learning_rate : float or schedule, default 1.0
        Initial step length of each line search (the step itself without one).
    max_iter : int >= 1, default 20
        Iterations per step.
    history_size : int >= 1, default 100
    tolerance_grad : float >= 0, default 1e-7
        Stop when :math:`\max |g| \le` this.
    tolerance_change : float >= 0, default 1e-9
        Stop when the loss or the parameters change less than this.
    line_search : {"strong_wolfe", None}, default "strong_wolfe"
        torch's default is ``None``; the line search is what makes L-BFGS robust.
    max_eval : int, optional
        Objective evaluations per step, default ``max_iter * 5 // 4`` (as torch).

    Notes
    -----
    Gradient clipping is refused: the curvature pairs and the line search need the true
    gradient. Branching decisions (line-search conditions, stopping tests) read a few
    scalars on the host each iteration: fine for full-batch training, where one iteration
    is a whole pass over the data. scikit-learn's ``solver="lbfgs"`` calls SciPy's
    L-BFGS-B (a different line search; ``max_iter`` counts iterations over the whole fit,
    ``tol`` plays ``tolerance_grad``), so it reaches the same kind of minimum by another path.
    """

    name = "lbfgs"
    needs_closure = True

    def __init__(self, learning_rate=1.0, max_iter=20, history_size=100, tolerance_grad=1e-7,
                 tolerance_change=1e-9, line_search="strong_wolfe", *, max_eval=None,
                 clip_norm=None, clip_value=None):
        if clip_norm is not None or clip_value is not None:
            raise ValueError(
                "LBFGS does not support clip_norm/clip_value: its curvature pairs and line "
                "search need the true gradient"
            )
        super().__init__(learning_rate)
        self.max_iter = check_number("max_iter", max_iter, low=1, integer=True)
        self.history_size = check_number("history_size", history_size, low=1, integer=True)
        self.tolerance_grad = check_number("tolerance_grad", tolerance_grad, low=0)
        self.tolerance_change = check_number("tolerance_change", tolerance_change, low=0)
        self.line_search = check_choice("line_search", line_search, ("strong_wolfe", None))
        self.max_eval = (self.max_iter * 5 // 4 if max_eval is None
                         else check_number("max_eval", max_eval, low=1, integer=True))
        self.reset()

    def reset(self):
        self.n_iter = 0  # iterations over all steps (torch state["n_iter"])
        self.func_evals = 0
        self._d = self._t = self._prev_flat_grad = self._prev_loss = None
        self._old_dirs, self._old_stps, self._ro = [], [], []
        self._H_diag = 1.0

    def build(self, params, ctx):
        super().build(params, ctx)
        self._vector = FlatLayout(params)

    def step(self, params, grads):
        raise ValueError(
            "LBFGS needs the objective, not one gradient: call minimize(closure, params), or "
            "let Network.fit drive it"
        )

    # ---- flat vector views of the parameter dict

    def _flatten(self, tree):
        return self._vector.pack(self.ctx.xp, tree)

    def _unflatten(self, flat):
        return self._vector.unpack(self.ctx.xp, flat)

    def minimize(self, closure, params: dict):
        """Run one L-BFGS step (up to ``max_iter`` iterations).

        Parameters
        ----------
        closure : callable
            ``closure(params) -> (loss, grads)``: the objective (0-d array or float) and its
            gradients (a dict keyed like ``params``) at the given parameters.
        params : dict
            Name -> starting parameter arrays (not modified).

        Returns
        -------
        loss
            The objective at the starting parameters, as returned by ``closure``.
        params : dict
            Name -> the new parameter arrays.
        """
        xp = self.ctx.xp
        lr = self.current_learning_rate()
        self.iterations += 1
        tol_change = self.tolerance_change

        def evaluate(x):
            loss, grads = closure(self._unflatten(x))
            return loss, float(loss), self._flatten(grads)

        def amax(v):
            return float(xp.max(xp.abs(v)))

        def dot(a, b):
            return xp.sum(a * b)

        x = self._flatten(params)
        orig_loss, loss, flat_grad = evaluate(x)
        current_evals = 1
        self.func_evals += 1
        if amax(flat_grad) <= self.tolerance_grad:
            return orig_loss, self._unflatten(x)

        d, t = self._d, self._t
        old_dirs, old_stps, ro = self._old_dirs, self._old_stps, self._ro
        H_diag, prev_flat_grad, prev_loss = self._H_diag, self._prev_flat_grad, self._prev_loss
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self.n_iter += 1
            if self.n_iter == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(dot(y, s))
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(dot(y, y))
                # two-loop recursion; the coefficients stay on the device
                q = -flat_grad
                al = [None] * len(old_dirs)
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = dot(old_stps[i], q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                r = q * H_diag
                for i in range(len(old_dirs)):
                    be_i = dot(old_dirs[i], r) * ro[i]
                    r = r + (al[i] - be_i) * old_stps[i]
                d = r
            prev_flat_grad = flat_grad
            prev_loss = loss
            if self.n_iter == 1:
                t = min(1.0, 1.0 / float(xp.sum(xp.abs(flat_grad)))) * lr
            else:
                t = lr
            gtd = float(dot(flat_grad, d))
            if gtd > -tol_change:  # not a descent direction
                break
            if self.line_search == "strong_wolfe":
                def obj(step):
                    _, f_new, g_new = evaluate(x + step * d)
                    return f_new, g_new
                loss, flat_grad, t, ls_evals = _strong_wolfe(
                    obj, t, d, loss, flat_grad, gtd, amax, dot, tol_change,
                    max_ls=self.max_eval - current_evals)
                x = x + t * d
                opt_cond = amax(flat_grad) <= self.tolerance_grad
            else:
                x = x + t * d
                ls_evals = 0
                opt_cond = False
                if n_iter != self.max_iter:
                    _, loss, flat_grad = evaluate(x)
                    opt_cond = amax(flat_grad) <= self.tolerance_grad
                    ls_evals = 1
            current_evals += ls_evals
            self.func_evals += ls_evals
            if n_iter == self.max_iter or current_evals >= self.max_eval or opt_cond:
                break
            if amax(d * t) <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        self._d, self._t = d, t
        self._old_dirs, self._old_stps, self._ro = old_dirs, old_stps, ro
        self._H_diag, self._prev_flat_grad, self._prev_loss = H_diag, prev_flat_grad, prev_loss
        return orig_loss, self._unflatten(x)

    def _extra_state(self):
        return {
            "n_iter": self.n_iter,
            "func_evals": self.func_evals,
            "d": _host_copy(self._d),
            "t": self._t,
            "old_dirs": [_host_copy(v) for v in self._old_dirs],
            "old_stps": [_host_copy(v) for v in self._old_stps],
            "ro": list(self._ro),
            "H_diag": self._H_diag,
            "prev_flat_grad": _host_copy(self._prev_flat_grad),
            "prev_loss": self._prev_loss,
        }

    def _load_extra_state(self, extra):
        self.n_iter = int(extra["n_iter"])
        self.func_evals = int(extra["func_evals"])
        self._d = self._to_device(extra["d"])
        self._t = None if extra["t"] is None else float(extra["t"])
        self._old_dirs = [self._to_device(v) for v in extra["old_dirs"]]
        self._old_stps = [self._to_device(v) for v in extra["old_stps"]]
        self._ro = [float(v) for v in extra["ro"]]
        self._H_diag = float(extra["H_diag"])
        self._prev_flat_grad = self._to_device(extra["prev_flat_grad"])
        self._prev_loss = None if extra["prev_loss"] is None else float(extra["prev_loss"])

    def get_config(self):
        return self._config(max_iter=self.max_iter, history_size=self.history_size,
                            tolerance_grad=self.tolerance_grad,
                            tolerance_change=self.tolerance_change,
                            line_search=self.line_search, max_eval=self.max_eval)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through two points with slopes, clamped to ``bounds``."""
    xmin_bound, xmax_bound = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj, t, d, f, g, gtd, amax, dot, tolerance_change, c1=1e-4, c2=0.9,
                  max_ls=25):
    """torch's strong-Wolfe line search along ``d`` (bracketing, then zoom).

    ``obj(t) -> (loss float, flat gradient)``; scalars are host floats, vectors device arrays.
    Returns ``(f_new, g_new, t, evaluations)``.
    """
    d_norm = amax(d)
    f_new, g_new = obj(t)
    ls_func_evals = 1
    gtd_new = float(dot(g_new, d))
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while ls_iter < max_ls:
        # bracketing phase
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj(t)
        ls_func_evals += 1
        gtd_new = float(dot(g_new, d))
        ls_iter += 1
    if ls_iter == max_ls:  # reached the evaluation budget while bracketing
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom phase: refine the bracket until the strong Wolfe conditions hold
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # stay away from the bracket's ends unless progress stalls
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj(t)
        ls_func_evals += 1
        gtd_new = float(dot(g_new, d))
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


# ---------------------------------------------------------------------- by name

OPTIMIZERS = {
    "sgd": SGD,
    "momentum": functools.partial(SGD, momentum=0.9),
    "nesterov": functools.partial(SGD, momentum=0.9, nesterov=True),
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": NAdam,
    "radam": RAdam,
    "adamax": Adamax,
    "lion": Lion,
    "lbfgs": LBFGS,
}


def get(optimizer, learning_rate=None, **kwargs) -> Optimizer:
    """Resolve an optimizer name, class or instance.

    ``"momentum"`` and ``"nesterov"`` are :class:`SGD` with ``momentum=0.9`` (and
    ``nesterov=True``). ``learning_rate`` (when given) and ``kwargs`` are passed to an
    optimizer created from a name or class; an instance is returned as it is.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known names).
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if learning_rate is not None:
        kwargs["learning_rate"] = learning_rate
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer(**kwargs)
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()](**kwargs)
    raise ValueError(
        f"unknown optimizer {optimizer!r}; choose one of {', '.join(sorted(OPTIMIZERS))} "
        "or pass an nnx.optimizers.Optimizer"
    )
