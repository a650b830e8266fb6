"""Learning-rate schedules: callables ``step -> rate`` (a Python float).

An optimizer built with ``learning_rate=schedule`` calls ``schedule(k)`` before its
``k``-th update, ``k = 0, 1, 2, ...``, so **a schedule steps once per batch** (once per epoch
in full-batch training, ``batch_size=None``). To step one per *epoch* with mini-batches, wrap
it: ``PerEpoch(schedule, steps_per_epoch)``. Every schedule is a pure function of the step,
so an optimizer's ``state_dict`` (which holds the step count) resumes it exactly.

``schedule(k)`` equals the learning rate of ``torch.optim.lr_scheduler``'s scheduler of the
same name after ``k`` calls to ``scheduler.step()`` (tested step for step):

================  ===========================================  ===========================
nnx               torch.optim.lr_scheduler                     elsewhere
================  ===========================================  ===========================
Constant          (no scheduler)                               sklearn ``constant``
StepDecay         StepLR                                       Keras ExponentialDecay
                                                               (``staircase=True``)
MultiStep         MultiStepLR                                  Keras PiecewiseConstantDecay
Exponential       ExponentialLR
InverseTime       (LambdaLR)                                   Keras InverseTimeDecay
InvScaling        (LambdaLR)                                   sklearn ``invscaling``
Polynomial        PolynomialLR (``end_learning_rate=0``)       Keras PolynomialDecay
CosineAnnealing   CosineAnnealingLR / ...WarmRestarts          Keras CosineDecay(Restarts)
LinearWarmup      SequentialLR(LinearLR, other)                optax warmup_* schedules
OneCycle          OneCycleLR (``cycle_momentum=False``)
================  ===========================================  ===========================

The plateau rule (lower the rate when a metric stops improving) needs validation results, so
it is a callback: :class:`nnx.callbacks.ReduceLROnPlateau`.
"""

from __future__ import annotations

import bisect
import math
import numbers

from .checks import check_bool, check_choice, check_number, check_sequence
from .config import Value


def _rate(name, value):
    return check_number(name, value, low=0, low_open=True)


def _steps(name, value, low=1):
    return check_number(name, value, low=low, integer=True)


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer; got {step!r}")
    return int(step)


class Schedule(Value):
    """Base class: ``schedule(step) -> float`` for the 0-based optimizer step."""

    registry_kind = "schedule"

    def __call__(self, step: int) -> float:
        return float(self.rate(_check_step(step)))

    def rate(self, step: int) -> float:
        raise NotImplementedError("abstract method: subclasses define rate")




def as_schedule(value) -> Schedule:
    """A number becomes :class:`Constant`; a callable is returned unchanged."""
    if callable(value):
        return value
    return Constant(value)


class Constant(Schedule):
    """:math:`\\eta_k = \\eta`.

    Parameters
    ----------
    learning_rate : float > 0
    """

    def __init__(self, learning_rate):
        self.learning_rate = _rate("learning_rate", learning_rate)

    def rate(self, step):
        return self.learning_rate



class StepDecay(Schedule):
    r"""Multiply by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    .. math:: \eta_k = \eta_0\, \gamma^{\lfloor k / s \rfloor}

    Usually stepped per epoch (wrap in :class:`PerEpoch` for mini-batches).

    Parameters
    ----------
    initial_learning_rate : float > 0
    step_size : int >= 1
    gamma : float in (0, 1], default 0.1
    """

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.step_size = _steps("step_size", step_size)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def rate(self, step):
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)



class MultiStep(Schedule):
    r"""Multiply by ``gamma`` at each milestone (torch ``MultiStepLR``).

    .. math:: \eta_k = \eta_0\, \gamma^{\#\{m_i \le k\}}

    Usually stepped per epoch.

    Parameters
    ----------
    initial_learning_rate : float > 0
    milestones : increasing sequence of int >= 1
    gamma : float in (0, 1], default 0.1
    """

    def __init__(self, initial_learning_rate, milestones, gamma=0.1):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        milestones = [_steps("milestones", m) for m in check_sequence(
            "milestones", milestones, "a strictly increasing list of steps >= 1")]
        if not milestones or any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(
                f"milestones must be a non-empty strictly increasing list; got {milestones!r}"
            )
        self.milestones = milestones
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def rate(self, step):
        return self.initial_learning_rate * self.gamma ** bisect.bisect_right(self.milestones,
                                                                             step)



class Exponential(Schedule):
    r"""Multiply by ``gamma`` every step (torch ``ExponentialLR``).

    .. math:: \eta_k = \eta_0\, \gamma^{k}

    Per epoch in torch's examples; per batch it needs ``gamma`` much closer to 1.

    Parameters
    ----------
    initial_learning_rate : float > 0
    gamma : float in (0, 1]
    """

    def __init__(self, initial_learning_rate, gamma):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.gamma = check_number("gamma", gamma, low=0, high=1, low_open=True)

    def rate(self, step):
        return self.initial_learning_rate * self.gamma**step



class InverseTime(Schedule):
    r"""Inverse-time decay (Keras ``InverseTimeDecay``, with an optional power).

    .. math:: \eta_k = \frac{\eta_0}{(1 + r\, k / s)^{p}}

    Per batch in Keras.

    Parameters
    ----------
    initial_learning_rate : float > 0
    decay_rate : float >= 0, default 1.0
        :math:`r`.
    decay_steps : int >= 1, default 1
        :math:`s`.
    power : float > 0, default 1.0
        :math:`p`.
    """

    def __init__(self, initial_learning_rate, decay_rate=1.0, decay_steps=1, power=1.0):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_rate = check_number("decay_rate", decay_rate, low=0)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.power = check_number("power", power, low=0, low_open=True)

    def rate(self, step):
        # a negative power underflows to 0.0 where a positive one would overflow (raise)
        return self.initial_learning_rate * (
            1.0 + self.decay_rate * step / self.decay_steps) ** -self.power



class InvScaling(InverseTime):
    r"""scikit-learn's ``learning_rate="invscaling"``: :math:`\eta_k = \eta_0 / (k+1)^{p}`.

    scikit-learn updates it once per epoch with :math:`k` the number of *samples* seen so
    far; here :math:`k` is the optimizer step (a batch), so the same curve is reached with
    ``PerEpoch`` and a rescaled ``initial_learning_rate``, or used directly per batch.

    Parameters
    ----------
    initial_learning_rate : float > 0, default 1e-3
    power_t : float > 0, default 0.5
    """

    def __init__(self, initial_learning_rate=1e-3, power_t=0.5):
        power_t = check_number("power_t", power_t, low=0, low_open=True)  # named as given
        super().__init__(initial_learning_rate, 1.0, 1, power_t)
        self.power_t = self.power



class Polynomial(Schedule):
    r"""Polynomial decay to ``end_learning_rate`` over ``total_steps`` (torch ``PolynomialLR``
    when ``end_learning_rate=0``; Keras ``PolynomialDecay``), then constant.

    .. math:: \eta_k = (\eta_0 - \eta_\text{end})
              \left(1 - \frac{\min(k, T)}{T}\right)^{p} + \eta_\text{end}

    Per batch (Keras) or per epoch (torch): :math:`T` counts whichever it is stepped by.

    Parameters
    ----------
    initial_learning_rate : float > 0
    total_steps : int >= 1
        :math:`T`.
    power : float > 0, default 1.0
    end_learning_rate : float >= 0, default 0.0
    """

    def __init__(self, initial_learning_rate, total_steps, power=1.0, end_learning_rate=0.0):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.total_steps = _steps("total_steps", total_steps)
        self.power = check_number("power", power, low=0, low_open=True)
        self.end_learning_rate = check_number("end_learning_rate", end_learning_rate, low=0,
                                              high=self.initial_learning_rate)

    def rate(self, step):
        frac = 1.0 - min(step, self.total_steps) / self.total_steps
        return (self.initial_learning_rate - self.end_learning_rate) * frac**self.power \
            + self.end_learning_rate



class CosineAnnealing(Schedule):
    r"""Cosine annealing (Loshchilov & Hutter, 2017), optionally with warm restarts.

    .. math:: \eta_k = \eta_\min + \tfrac12 (\eta_0 - \eta_\min)
              \left(1 + \cos\left(\pi \frac{k_\text{cur}}{T_\text{cur}}\right)\right)

    Without restarts :math:`k_\text{cur} = \min(k, T)`, :math:`T_\text{cur} = T`
    (torch ``CosineAnnealingLR(T_max=T)``, which differs only after :math:`T`, where torch's
    cosine rises again and this one stays at :math:`\eta_\min`). With restarts the rate
    jumps back to :math:`\eta_0` after each period, the periods growing by ``period_mult``
    (torch ``CosineAnnealingWarmRestarts(T_0=T, T_mult=period_mult)``, SGDR). torch steps the
    restart variant per batch or per epoch; either works here (the period counts whichever
    unit the schedule is stepped by: batches, or epochs through :class:`PerEpoch`).

    Parameters
    ----------
    initial_learning_rate : float > 0
    period : int >= 1
        :math:`T` (``T_max``, or ``T_0`` with restarts).
    min_learning_rate : float >= 0, default 0.0
        :math:`\eta_\min` (torch ``eta_min``).
    restarts : bool, default False
    period_mult : int >= 1, default 1
        Growth of the period after each restart (``T_mult``).
    """

    def __init__(self, initial_learning_rate, period, min_learning_rate=0.0, restarts=False,
                 period_mult=1):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.period = _steps("period", period)
        self.min_learning_rate = check_number("min_learning_rate", min_learning_rate, low=0,
                                              high=self.initial_learning_rate)
        self.restarts = check_bool("restarts", restarts)
        self.period_mult = _steps("period_mult", period_mult)

    def rate(self, step):
        if not self.restarts:
            cur, length = min(step, self.period), self.period
        elif self.period_mult == 1:
            cur, length = step % self.period, self.period
        else:
            cur, length = step, self.period
            while cur >= length:  # O(log k): the periods grow geometrically
                cur -= length
                length *= self.period_mult
        lo = self.min_learning_rate
        return lo + (self.initial_learning_rate - lo) * (1.0 + math.cos(math.pi * cur / length)) / 2



class LinearWarmup(Schedule):
    r"""Linear warm-up for ``warmup_steps`` steps, then any other schedule (or a constant).

    .. math:: \eta_k = \eta^{\text{after}}_0 \left(f + (1 - f) \frac{k}{W}\right)
              \ (k < W), \qquad \eta_k = \eta^{\text{after}}_{k - W} \ (k \ge W)

    The wrapped schedule starts its own clock when the warm-up ends, as torch's
    ``SequentialLR([LinearLR(start_factor=f, total_iters=W), after], milestones=[W])``.
    Warm-up is usually counted in batches.

    Parameters
    ----------
    schedule : float or schedule
        What follows the warm-up; a number means a constant rate.
    warmup_steps : int >= 1
        :math:`W`.
    start_factor : float in [0, 1], default 0.0
        :math:`f`: the first step uses ``f`` times the target rate (torch requires ``f > 0``).
    """

    def __init__(self, schedule, warmup_steps, start_factor=0.0):
        self.schedule = as_schedule(schedule)
        self.warmup_steps = _steps("warmup_steps", warmup_steps)
        self.start_factor = check_number("start_factor", start_factor, low=0, high=1)

    def rate(self, step):
        w = self.warmup_steps
        if step >= w:
            return self.schedule(step - w)
        f = self.start_factor
        return self.schedule(0) * (f + (1.0 - f) * step / w)



class OneCycle(Schedule):
    r"""The 1cycle policy (Smith & Topin, 2018), torch ``OneCycleLR``.

    The rate rises from :math:`\eta_\max / d` to :math:`\eta_\max` over the first
    ``pct_start`` of ``total_steps``, then anneals to
    :math:`\eta_\max / (d \cdot d_\text{final})` (cosine or linear). With ``three_phase``
    it comes back down to the start symmetrically before the final anneal. Stepped per
    batch; after ``total_steps`` it stays at the final rate (torch raises instead).

    torch's OneCycleLR also cycles momentum by default; nnx schedules only the rate (use
    ``cycle_momentum=False`` in torch to compare).

    Parameters
    ----------
    max_learning_rate : float > 0
    total_steps : int >= 2
    pct_start : float in (0, 1), default 0.3
    anneal_strategy : {"cos", "linear"}, default "cos"
    div_factor : float > 0, default 25.0
    final_div_factor : float > 0, default 1e4
    three_phase : bool, default False
    """

    def __init__(self, max_learning_rate, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False):
        self.max_learning_rate = _rate("max_learning_rate", max_learning_rate)
        self.total_steps = _steps("total_steps", total_steps, low=2)
        self.pct_start = check_number("pct_start", pct_start, low=0, high=1, low_open=True,
                                      high_open=True)
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = _rate("div_factor", div_factor)
        self.final_div_factor = _rate("final_div_factor", final_div_factor)
        self.three_phase = check_bool("three_phase", three_phase)
        initial = self.max_learning_rate / self.div_factor
        final = initial / self.final_div_factor
        top = self.max_learning_rate
        up_end = float(self.pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if self.three_phase:
            self._phases = [(up_end, initial, top),
                            (float(2 * self.pct_start * self.total_steps) - 2, top, initial),
                            (last, initial, final)]
        else:
            self._phases = [(up_end, initial, top), (last, top, final)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def rate(self, step):
        step = min(step, self.total_steps - 1)
        start_step = 0.0
        for i, (end_step, lo, hi) in enumerate(self._phases):
            if step <= end_step or i == len(self._phases) - 1:
                return self._anneal(lo, hi, (step - start_step) / (end_step - start_step))
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")



class PerEpoch(Schedule):
    r"""Step a schedule once per epoch in mini-batch training.

    .. math:: \eta_k = \text{schedule}(\lfloor k / n_\text{batches} \rfloor)

    Parameters
    ----------
    schedule : schedule
    steps_per_epoch : int >= 1
        Batches per epoch, ``ceil(n_samples / batch_size)``.
    """

    def __init__(self, schedule, steps_per_epoch):
        if not callable(schedule):
            raise ValueError(f"schedule must be callable (step -> rate); got {schedule!r}")
        self.schedule = schedule
        self.steps_per_epoch = _steps("steps_per_epoch", steps_per_epoch)

    def rate(self, step):
        return self.schedule(step // self.steps_per_epoch)



SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "multistep": MultiStep,
    "exponential": Exponential,
    "inverse_time": InverseTime,
    "invscaling": InvScaling,
    "polynomial": Polynomial,
    "cosine": CosineAnnealing,
    "warmup": LinearWarmup,
    "onecycle": OneCycle,
}


def get(name, **kwargs) -> Schedule:
    """Create a schedule by name, e.g. ``get("cosine", initial_learning_rate=0.1, period=50)``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known names).
    """
    if isinstance(name, Schedule):
        return name
    if isinstance(name, str) and name.lower() in SCHEDULES:
        return SCHEDULES[name.lower()](**kwargs)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
