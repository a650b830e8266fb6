r"""Element-wise transforms: the stages an optimizer's update rule is composed of.

An element-wise rule (SGD, Adam, RMSprop, ...) maps each entry's gradient to an update through
a few small stages: a weight decay, a moving average, a division by a root mean square, a bias
correction. Each stage is a :class:`Transform`, and an optimizer is its list of stages
(:meth:`nnx.optimizers.Optimizer.rule`, or :class:`nnx.optimizers.Chain` on the spot): starting
from the gradient, every stage maps the update :math:`u` of a parameter to a new one, then

.. math:: p \leftarrow p - \eta\, c_t\, u

where :math:`c_t` is the product of the stages' host factors for step :math:`t` (bias
corrections and rate decays are Python floats folded into the rate: they cost no array
operation). The idea is optax's; the numbers are ``torch.optim``'s, operation for operation.

A stage has up to three parts:

- ``init(xp, p)``: its per-parameter arrays ("slots"), zeros like ``p`` by default, under the
  names in ``slots`` (its ``slot`` argument). Stages read each other's slots by name (Adam's
  :class:`RMSScale` reads the ``"v"`` that :class:`SecondMoment` keeps).
- ``begin(t, factor, host)``: once per step, before any parameter, with the 1-based step
  ``t``; it returns ``factor`` (the product of the earlier stages' factors) times its own, and
  may keep host scalars across steps in ``host`` (declared with initial values in
  :attr:`Transform.host_state`; they are saved with the optimizer's state).
- ``apply(u, p, s)``: the new update from the update ``u`` of parameter ``p``, whose slots are
  the dict ``s`` (read and written by name).

Stages are element-wise: an entry's update depends on that entry alone (its update, value and
slots) and on host scalars, never on ``p.shape`` or a reduction over ``p``. That is what lets
an optimizer run them once over all parameters packed into one vector (``foreach``). A stage
that breaks this sets ``elementwise = False``; an optimizer using it then never packs.

In place or not: ``bind`` hands every stage the namespace ``xp`` and the arithmetic of
:func:`arithmetic` (``self.mul``, ``self.add``), which writes into its first
operand where the backend's arrays are writeable and returns a new array otherwise. A stage
uses it only on arrays it owns (its slots, or temporaries it just made), never on the incoming
update or ``p``, and always uses the result: ``m = self.add(self.mul(m, beta), (1 - beta) * u)``.
Nothing here reads a device value back to the host.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, NamedTuple

from .checks import check_bool, check_choice, check_number
from .config import Value

__all__ = [
    "Arithmetic", "BiasCorrection", "ClipValue", "CoupledDecay", "DecoupledDecay", "DeltaScale",
    "DivideBy", "FirstMoment", "InfinityNorm", "LionMomentum", "NesterovMomentum", "RMSScale",
    "RateDecay", "Rectify", "RunningMax", "SecondMoment", "Sign", "SumOfSquares", "Trace",
    "Transform", "adam", "arithmetic",
]


# ---------------------------------------------------------------------- checks
# ``check(name, value) -> value``: the hyperparameter checks of transforms and optimizers


def _number(**bounds):
    return lambda name, value: check_number(name, value, **bounds)


check_beta = _number(low=0, high=1, high_open=True)  # a decay rate in [0, 1)
check_fraction = _number(low=0, high=1)  # [0, 1]
check_nonnegative = _number(low=0)
check_positive = _number(low=0, low_open=True)
check_count = _number(low=1, integer=True)
check_flag = check_bool


def optional(check):
    """``check``, letting ``None`` through."""
    return lambda name, value: None if value is None else check(name, value)


def one_of(*choices):
    return lambda name, value: check_choice(name, value, choices)


# ---------------------------------------------------------------------- in place or not


class Arithmetic(NamedTuple):
    """``mul``, ``add``, ``sub`` of updates: the one place that decides in place or not.

    In place (``operator.imul``, ``iadd``, ``isub``) they write the result into the first
    operand, which saves one fresh array per call: on a large layer the page faults of fresh
    arrays dominate a memory-bound update. Otherwise (``operator.mul``, ...) they return a
    new array. Either way the caller uses the result. ``results(d)`` is the dict for results
    keyed like ``d``: ``d`` itself in place (its arrays are updated where they stand, so
    storing them again changes nothing), a copy otherwise (the caller's dict stays as it was).
    """

    mul: Callable
    add: Callable
    sub: Callable
    results: Callable


IN_PLACE = Arithmetic(operator.imul, operator.iadd, operator.isub, lambda d: d)
NEW_ARRAYS = Arithmetic(operator.mul, operator.add, operator.sub, dict)


def arithmetic(writeable: bool) -> Arithmetic:
    """:data:`IN_PLACE` where the namespace's arrays are writeable (``ctx.writeable``), else
    :data:`NEW_ARRAYS`."""
    return IN_PLACE if writeable else NEW_ARRAYS


# ---------------------------------------------------------------------- the base


class Transform(Value):
    """One element-wise stage of an update rule (see the module docstring).

    Constructor arguments are stored under their own names, so ``get_config``, ``repr`` and
    equality are derived (:class:`nnx.config.Value`) and a composition of transforms can be
    saved with its optimizer.
    """

    registry_kind = "transform"
    #: whether an entry's update depends on that entry alone (see the module docstring)
    elementwise = True
    #: host scalars this stage keeps across steps, with their initial values
    host_state: dict = {}

    @property
    def slots(self) -> tuple:
        """Names of the per-parameter arrays this stage keeps: its ``slot`` argument, if any."""
        slot = getattr(self, "slot", None)
        return () if slot is None else (slot,)

    @property
    def active(self) -> bool:
        """``False`` when the stage changes nothing (a decay of 0): it is then left out."""
        return True

    def bind(self, xp, ops: Arithmetic) -> "Transform":
        """Attach the namespace and the in-place-or-not arithmetic; returns ``self``."""
        self.xp = xp
        self.mul, self.add = ops.mul, ops.add
        return self

    def init(self, xp, p) -> dict:
        """Slot name -> this stage's initial state for parameter ``p`` (zeros like it)."""
        return {name: xp.zeros_like(p) for name in self.slots}

    def begin(self, t: int, factor: float, host: dict) -> float:
        """Once per step ``t`` (1-based): ``factor`` times this stage's factor of the rate."""
        return factor

    def apply(self, u, p, s):
        """The new update from the update ``u`` of parameter ``p`` with slots ``s``."""
        return u


# ---------------------------------------------------------------------- weight decay


class _Decay(Transform):
    def __init__(self, weight_decay):
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    @property
    def active(self):
        return self.weight_decay != 0


class CoupledDecay(_Decay):
    r"""L2 weight decay added to the gradient, so later stages rescale it (torch's
    ``weight_decay`` of SGD, Adam, RMSprop, ...).

    .. math:: u \leftarrow u + \lambda p
    """

    def apply(self, u, p, s):
        return u + self.weight_decay * p


class DecoupledDecay(_Decay):
    r"""Weight decay at the learning rate alone (Loshchilov & Hutter, 2019), whatever the
    stages before it did: :math:`p \leftarrow p - \eta \lambda p - \eta c_t u`.

    .. math:: u \leftarrow u + \frac{\lambda}{c_t}\, p

    with :math:`c_t` the product of the earlier stages' factors, so it goes after every stage
    that contributes one (last, in practice).
    """

    def begin(self, t, factor, host):
        self._coefficient = self.weight_decay / factor
        return factor

    def apply(self, u, p, s):
        return u + self._coefficient * p


# ---------------------------------------------------------------------- moments


class Trace(Transform):
    r"""A momentum buffer, as torch's SGD (and RMSprop's ``momentum``).

    .. math::
        b_t &= \mu b_{t-1} + (1 - \tau) u \\
        u &\leftarrow u + \mu b_t \ \text{(Nesterov)}, \quad b_t \ \text{otherwise}

    Parameters
    ----------
    momentum : float in [0, 1)
        :math:`\mu`; 0 leaves the stage out.
    dampening : float in [0, 1], default 0
        :math:`\tau`.
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    slot : str, default "momentum"
    copy_first : bool, default True
        The buffer starts as a copy of the first update, :math:`b_1 = u` (torch's SGD:
        ``buf = grad.clone()``, the slot is ``None`` until then) instead of :math:`b_0 = 0`
        (torch's RMSprop).
    """

    def __init__(self, momentum, dampening=0.0, nesterov=False, slot="momentum",
                 copy_first=True):
        self.momentum = check_beta("momentum", momentum)
        self.dampening = check_fraction("dampening", dampening)
        self.nesterov = check_flag("nesterov", nesterov)
        self.slot = slot
        self.copy_first = check_flag("copy_first", copy_first)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                "nesterov=True needs momentum in (0, 1) and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )

    @property
    def active(self):
        return self.momentum != 0

    def init(self, xp, p):
        return {self.slot: None if self.copy_first else xp.zeros_like(p)}

    def apply(self, u, p, s):
        b = s[self.slot]
        if b is None:
            b = self.xp.asarray(u, copy=True)
        else:
            b = self.add(self.mul(b, self.momentum),
                         u if self.dampening == 0 else (1.0 - self.dampening) * u)
        s[self.slot] = b
        return u + self.momentum * b if self.nesterov else b


class FirstMoment(Transform):
    r"""A moving average of the update, which then replaces it (Adam's :math:`m`).

    .. math:: m_t = \beta m_{t-1} + (1 - \beta) u, \qquad u \leftarrow m_t

    With ``replace=False`` the update passes through unchanged (RMSprop's centred
    :math:`\bar g`, read by a later :class:`RMSScale`).
    """

    def __init__(self, beta, slot="m", replace=True):
        self.beta = check_beta("beta", beta)
        self.slot = slot
        self.replace = check_flag("replace", replace)

    def apply(self, u, p, s):
        m = s[self.slot] = self.add(self.mul(s[self.slot], self.beta), (1.0 - self.beta) * u)
        return m if self.replace else u


class SecondMoment(Transform):
    r"""A moving average of the squared update; the update passes through unchanged, for a
    later :class:`RMSScale` (so it comes before a stage that replaces the update).

    .. math:: v_t = \beta v_{t-1} + (1 - \beta) u^2
    """

    def __init__(self, beta, slot="v"):
        self.beta = check_beta("beta", beta)
        self.slot = slot

    def apply(self, u, p, s):
        s[self.slot] = self.add(self.mul(s[self.slot], self.beta),
                                self.mul(u * u, 1.0 - self.beta))
        return u


class SumOfSquares(Transform):
    r"""The running sum of squared updates (Adagrad's); the update passes through.

    .. math:: s_t = s_{t-1} + u^2, \qquad s_0 = \text{initial}
    """

    def __init__(self, initial=0.0, slot="sum"):
        self.initial = check_nonnegative("initial", initial)
        self.slot = slot

    def init(self, xp, p):
        return {self.slot: xp.full_like(p, self.initial)}

    def apply(self, u, p, s):
        s[self.slot] = self.add(s[self.slot], u * u)
        return u


class RunningMax(Transform):
    r"""The running maximum of another stage's slot (AMSGrad's :math:`\hat v`); the update
    passes through.

    .. math:: \hat v_t = \max(\hat v_{t-1}, v_t)
    """

    def __init__(self, source="v", slot="v_max"):
        self.source = source
        self.slot = slot

    def apply(self, u, p, s):
        s[self.slot] = self.xp.maximum(s[self.slot], s[self.source])
        return u


class InfinityNorm(Transform):
    r"""Adamax's exponentially weighted infinity norm; the update passes through.

    .. math:: n_t = \max(\beta n_{t-1},\ |u| + \epsilon)
    """

    def __init__(self, beta, epsilon, slot="u"):
        self.beta = check_beta("beta", beta)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.slot = slot

    def apply(self, u, p, s):
        xp = self.xp
        s[self.slot] = xp.maximum(self.beta * s[self.slot], xp.abs(u) + self.epsilon)
        return u


# ---------------------------------------------------------------------- scaling


class RMSScale(Transform):
    r"""Divide by the root of a mean square another stage keeps.

    .. math::
        u \leftarrow \frac{u}{\sqrt{v_t / (1 - \beta^t)} + \epsilon}
          = \sqrt{1 - \beta^t}\ \frac{u}{\sqrt{v_t} + \sqrt{1 - \beta^t}\,\epsilon}

    with ``debias=`` :math:`\beta` (Adam's bias-corrected :math:`\hat v`; the root of the
    correction joins the rate factor, which saves two array operations per parameter), or
    :math:`u / (\sqrt{v_t} + \epsilon)` without; ``center=`` names a mean to subtract,
    :math:`\sqrt{v_t - \bar g_t^2}` (centred RMSprop).
    """

    def __init__(self, epsilon, source="v", debias=None, center=None):
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.source = source
        self.debias = optional(check_beta)("debias", debias)
        self.center = center
        self._epsilon = self.epsilon

    def begin(self, t, factor, host):
        if self.debias is None:
            return factor
        root = math.sqrt(1.0 - self.debias**t)
        self._epsilon = root * self.epsilon
        return factor * root

    def apply(self, u, p, s):
        v = s[self.source]
        if self.center is not None:
            c = s[self.center]
            v = v - c * c
        return u / self.add(self.xp.sqrt(v), self._epsilon)


class Rectify(RMSScale):
    r"""RAdam's rectified scaling (Liu et al., 2020): :class:`RMSScale` times :math:`r_t` with
    the bias-corrected root, once the variance of the adaptive rate is tractable
    (:math:`\rho_t > 5`); before that the update passes through (momentum SGD).

    .. math::
        \rho_\infty = \frac{2}{1 - \beta} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta^t}{1 - \beta^t}, \quad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        u \leftarrow r_t \sqrt{1 - \beta^t}\ \frac{u}{\sqrt{v_t} + \epsilon}
    """

    def __init__(self, beta, epsilon, source="v"):
        super().__init__(epsilon, source)
        self.beta = check_beta("beta", beta)
        self._on = False

    def begin(self, t, factor, host):
        b = self.beta
        bc = 1.0 - b**t
        rho_inf = 2.0 / (1.0 - b) - 1.0
        rho_t = rho_inf - 2.0 * t * b**t / bc
        self._on = rho_t > 5.0
        if not self._on:
            return factor
        r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
             / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
        return factor * (math.sqrt(bc) * r)

    def apply(self, u, p, s):
        return super().apply(u, p, s) if self._on else u


class DivideBy(Transform):
    r"""Divide by another stage's slot (Adamax's infinity norm): :math:`u \leftarrow u / n_t`."""

    def __init__(self, source):
        self.source = source

    def apply(self, u, p, s):
        return u / s[self.source]


class DeltaScale(Transform):
    r"""Adadelta's unit correction (Zeiler, 2012): the ratio of the RMS of past steps to the
    RMS of the gradients (kept by a :class:`SecondMoment` as ``source``).

    .. math::
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, u \\
        a_t &= \rho a_{t-1} + (1 - \rho) \Delta_t^2, \qquad u \leftarrow \Delta_t
    """

    def __init__(self, rho, epsilon, source="square_avg", slot="acc_delta"):
        self.rho = check_beta("rho", rho)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.source = source
        self.slot = slot

    def apply(self, u, p, s):
        xp, eps = self.xp, self.epsilon
        a = s[self.slot]
        delta = xp.sqrt(a + eps) / xp.sqrt(s[self.source] + eps) * u
        s[self.slot] = self.add(self.mul(a, self.rho), (1.0 - self.rho) * (delta * delta))
        return delta


class NesterovMomentum(FirstMoment):
    r"""NAdam's look-ahead momentum (Dozat, 2016) with torch's warm-up
    :math:`\mu_t = \beta (1 - \tfrac12 0.96^{t\psi})`:

    .. math::
        m_t &= \beta m_{t-1} + (1 - \beta) u \\
        u &\leftarrow \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i}\, u
             + \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i}\, m_t

    The running product is a host float64 kept across steps (``mu_product``).
    """

    host_state = {"mu_product": 1.0}

    def __init__(self, beta, momentum_decay, slot="m"):
        super().__init__(beta, slot)
        self.momentum_decay = check_nonnegative("momentum_decay", momentum_decay)

    def begin(self, t, factor, host):
        b, psi = self.beta, self.momentum_decay
        mu = b * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        product = host["mu_product"] = host["mu_product"] * mu
        self._coef_u = (1.0 - mu) / (1.0 - product)
        self._coef_m = mu_next / (1.0 - product * mu_next)
        return factor

    def apply(self, u, p, s):
        return self._coef_u * u + self._coef_m * super().apply(u, p, s)


class LionMomentum(Transform):
    r"""Lion's interpolation and momentum (Chen et al., 2023, Algorithm 2): the update becomes
    the interpolation, the momentum moves on with the other rate.

    .. math::
        c_t = \beta_1 m_{t-1} + (1 - \beta_1) u, \qquad
        m_t = \beta_2 m_{t-1} + (1 - \beta_2) u, \qquad u \leftarrow c_t
    """

    def __init__(self, beta_1, beta_2, slot="m"):
        self.beta_1 = check_beta("beta_1", beta_1)
        self.beta_2 = check_beta("beta_2", beta_2)
        self.slot = slot

    def apply(self, u, p, s):
        m = s[self.slot]
        c = self.beta_1 * m + (1.0 - self.beta_1) * u
        s[self.slot] = self.add(self.mul(m, self.beta_2), (1.0 - self.beta_2) * u)
        return c


class Sign(Transform):
    r""":math:`u \leftarrow \operatorname{sign}(u)` (Lion)."""

    def apply(self, u, p, s):
        return self.xp.sign(u)


class ClipValue(Transform):
    r"""Clamp every entry of the update: :math:`u \leftarrow \min(\max(u, -c), c)`.

    The optimizers' ``clip_value=`` clamps the gradient before every stage; this clamps the
    update wherever it stands in a composition (after a scaling, say).
    """

    def __init__(self, limit):
        self.limit = check_positive("limit", limit)

    def apply(self, u, p, s):
        return self.xp.clip(u, min=-self.limit, max=self.limit)


# ---------------------------------------------------------------------- host factors


class BiasCorrection(Transform):
    r"""The bias correction of an average started at zero, folded into the rate:
    :math:`c_t \leftarrow c_t / (1 - \beta^t)`. No array operation."""

    def __init__(self, beta):
        self.beta = check_beta("beta", beta)

    def begin(self, t, factor, host):
        return factor / (1.0 - self.beta**t)


class RateDecay(Transform):
    r"""Adagrad's rate decay, folded into the rate as torch does:
    :math:`c_t \leftarrow c_t / (1 + (t - 1)\,\delta)`."""

    def __init__(self, decay):
        self.decay = check_nonnegative("decay", decay)

    @property
    def active(self):
        return self.decay != 0

    def begin(self, t, factor, host):
        return factor / (1.0 + (t - 1) * self.decay)


# ---------------------------------------------------------------------- compositions


def adam(beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False) -> list:
    r"""Adam's stages (Kingma & Ba, 2015), torch's arithmetic:

    .. math::
        u \leftarrow \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}\
            \frac{m_t}{\sqrt{\hat v_t} + \sqrt{1 - \beta_2^t}\,\epsilon}
        = \frac{m_t / (1 - \beta_1^t)}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    with :math:`\hat v_t = \max(\hat v_{t-1}, v_t)` under AMSGrad (slot ``"v_max"``).
    """
    stages = [SecondMoment(beta_2, "v"), FirstMoment(beta_1, "m")]
    if amsgrad:
        stages.append(RunningMax("v", "v_max"))
    return stages + [RMSScale(epsilon, "v_max" if amsgrad else "v", debias=beta_2),
                     BiasCorrection(beta_1)]
