r"""Optimizers: update rules in PyTorch's conventions, composed from element-wise transforms.

An optimizer is built once for a network's parameters (``build``), then ``step(params,
grads)`` updates every parameter and returns the updated arrays, which the caller installs as
the parameters: the same objects updated in place (``p -= u``) where the backend's arrays are
writeable, or, for a rule running packed (``foreach``), slices of its packed vector.

Every rule follows ``torch.optim`` to the operation (where epsilon sits, how momentum takes the
learning rate, when weight decay is coupled), so ``torch.optim`` is an exact oracle: the tests
train the same network with both for 100 steps in float64 and compare parameters to 1e-8.
Each docstring gives the formula and says where scikit-learn or Keras differ.

An element-wise rule is a list of small stages from :mod:`nnx.transforms` (a weight decay, a
moving average, a division by a root mean square, a bias correction): its :meth:`~Optimizer.rule`.
``AdamW`` is Adam's stages followed by a decoupled decay; :class:`Chain` runs any list on the
spot. ``docs/optimizers.md`` writes one rule both ways, as a class and as a composition.

What every optimizer shares (the :class:`Optimizer` base):

- ``learning_rate`` is a positive Python float or a schedule ``step -> rate`` (see
  :mod:`nnx.schedules`) evaluated once per step with the 0-based step count;
- ``clip_value=`` clamps every gradient entry to ``[-clip_value, clip_value]`` and
  ``clip_norm=`` rescales all gradients together so that their global L2 norm is at most
  ``clip_norm`` (``torch.nn.utils.clip_grad_norm_``; value clipping first when both are set);
- ``foreach=`` runs an element-wise rule once over all parameters packed into one vector;
- ``state_dict()`` / ``load_state_dict()`` hold host NumPy arrays and Python scalars, so a run
  can be saved (without pickle) and resumed exactly;
- ``get_config()`` and ``repr`` are derived from the constructor: every hyperparameter is
  declared once, as a :class:`Hyper` in the class body, and stored under its own name.

Hyperparameters are Python floats and the step count a Python int, so nothing here creates a
float64 scalar in a float32 step or waits for a GPU: bias corrections are host factors of the
rate. Per-parameter state ("slots") is created with ``xp.zeros_like`` (of the parameter, or of
the packed vector when the rule runs packed) and so inherits its device and dtype; where the
backend's arrays are writeable, slots are updated in place too (it saves one temporary array
per moving average, which matters for large layers).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math

import numpy as np

from . import transforms as T
from .backend import to_numpy
from .checks import check_learning_rate
from .config import Configurable
from .linesearch import strong_wolfe
from .packing import FlatLayout, Packed, PerParameter
from .transforms import (check_beta, check_count, check_flag, check_fraction, check_nonnegative,
                         check_positive, one_of, optional)

REQUIRED = inspect.Parameter.empty


def _host_copy(x):
    """A host NumPy copy of a device array (a copy even on NumPy: slots mutate in place)."""
    return None if x is None else np.array(to_numpy(x), copy=True)


# ---------------------------------------------------------------------- declarations


class _Argument:
    """A constructor argument declared in the class body (see :class:`Hyper`), read where it
    is used: setting it needs nothing more than its check (the learning rate, read at every
    step, set by schedules' callbacks and ``lr_find``)."""

    def __init__(self, default=REQUIRED, check=None, *, keyword=False):
        self.default, self.check, self.keyword = default, check, keyword

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None  # declared, not set yet

    def __set__(self, obj, value):
        obj.__dict__[self.name] = value if self.check is None else self.check(self.name, value)

    def __repr__(self):
        return f"{type(self).__name__}({self.default!r})"


class Hyper(_Argument):
    """A hyperparameter, declared once in the class body: a constructor argument by that name.

    ``beta_1 = Hyper(0.9, check_beta)`` (and ``learning_rate = rate(1e-3)``): the class gets a
    constructor with these arguments (the base's first, then each class's in the order they
    are declared, keyword-only ones last), which checks each value and stores it under its
    name, so ``get_config`` and ``repr`` are derived (:class:`nnx.config.Configurable`). A
    subclass redeclares one to change its default (it keeps its place) or withdraws it with a
    plain class attribute (``foreach = None``).

    The stages of the rule are built from the hyperparameters, so setting one on a built
    optimizer rebuilds them: the next step uses the new value.

    Parameters
    ----------
    default : optional
        Omitted: a required argument.
    check : callable, optional
        ``check(name, value) -> value`` (:mod:`nnx.transforms` has the usual ones).
    keyword : bool, default False
        Keyword-only.
    """

    def __set__(self, obj, value):
        old = obj.__dict__.get(self.name, REQUIRED)
        super().__set__(obj, value)
        try:
            obj._hyperparameter_changed(self.name)
        except ValueError:
            obj.__dict__[self.name] = old  # refused: the optimizer stays as it was
            if obj.__dict__.get("_rule") is not None:
                obj._compile()
            raise


def _check_rate(name, value):
    return check_learning_rate(value, name)


def rate(default=REQUIRED) -> _Argument:
    """The ``learning_rate`` declaration, with a class's own default."""
    return _Argument(default, _check_rate)


def _declarations(cls) -> dict:
    """Name -> declared argument of ``cls``, base classes' first, each in declaration order."""
    declared = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, _Argument):
                declared[name] = value  # a redeclaration keeps the first place
            elif name in declared:
                del declared[name]  # a plain class attribute withdraws the argument
    return declared


def _constructor(declared: dict):
    """``__init__`` with the declared arguments: check, store, then ``_setup()``."""
    order = ([h for h in declared.values() if not h.keyword]
             + [h for h in declared.values() if h.keyword])
    kinds = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature(
        [inspect.Parameter("self", kinds[0])]
        + [inspect.Parameter(h.name, kinds[h.keyword], default=h.default) for h in order])

    positional = [h.name for h in order if not h.keyword]

    def __init__(self, *args, **kwargs):
        # what Signature.bind does, in the few lines these signatures need (constructing an
        # optimizer is part of every small Network(...).fit call)
        if len(args) > len(positional):
            raise TypeError(f"{type(self).__name__}() takes {len(positional)} positional "
                            f"arguments but {len(args)} were given")
        values = dict(zip(positional, args))
        for name, value in kwargs.items():
            if name not in declared:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                                f"{name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument "
                                f"{name!r}")
            values[name] = value
        for h in order:
            value = values.get(h.name, h.default)
            if value is REQUIRED:
                raise TypeError(f"{type(self).__name__}() missing required argument "
                                f"{h.name!r}")
            self.__dict__[h.name] = value if h.check is None else h.check(h.name, value)
        self._setup()

    __init__.__signature__ = signature
    return __init__


def _check_composition(stages) -> None:
    """Each stage reads only slots that an earlier stage keeps, and no two stages keep a slot
    or a host scalar of the same name (they would silently share it)."""
    slots, host = set(), set()
    for stage in stages:
        for attr in ("source", "center"):
            read = getattr(stage, attr, None)
            if read is not None and read not in slots:
                raise ValueError(f"{stage!r} reads the slot {read!r}, which no stage before "
                                 f"it keeps (kept so far: {sorted(slots) or 'none'})")
        for name in stage.slots:
            if name in slots:
                raise ValueError(f"two stages keep a slot named {name!r}; give one of them "
                                 "another slot= name")
            slots.add(name)
        for name in stage.host_state:
            if name in host:
                raise ValueError(f"two stages keep a host scalar named {name!r}")
            host.add(name)


def _overrides(stage, method) -> bool:
    return getattr(type(stage), method) is not getattr(T.Transform, method)


class _Rule:
    """An optimizer's stages bound to its context: what a step runs. Rebuilt by ``build``
    and whenever a hyperparameter changes; never saved, copied or snapshot."""

    def __init__(self, optimizer, ctx):
        ops = T.arithmetic(ctx.writeable)
        self.transforms = [s.bind(ctx.xp, ops) for s in optimizer.rule() if s.active]
        self.begins = [s.begin for s in self.transforms if _overrides(s, "begin")]
        self.applies = [s.apply for s in self.transforms if _overrides(s, "apply")]
        # a hand-written direction runs as the one stage; begin_step only when it has work
        own_direction = type(optimizer).direction is not Optimizer.direction
        self.run = [optimizer._direction_stage] if own_direction else self.applies
        own_begin = type(optimizer).begin_step is not Optimizer.begin_step
        self.begin_step = optimizer.begin_step if own_begin or self.begins else None
        self.sub, self.results = ops.sub, ops.results
        self.clip = optimizer.clip_value is not None or optimizer.clip_norm is not None


_TRANSIENT = ("ctx", "_seam", "_rule")  # rebuilt, not part of a snapshot


def _copy_containers(state: dict) -> dict:
    return {k: type(v)(v) if type(v) in (list, dict) else v for k, v in state.items()}


# ---------------------------------------------------------------------- the base


class Optimizer(Configurable):
    r"""Base class of the update rules.

    A step computes an update :math:`u` for each parameter from its gradient by running the
    rule's stages in order (:meth:`rule`, a list of :class:`nnx.transforms.Transform`), then

    .. math:: p \leftarrow p - \eta_t\, c_t\, u

    where :math:`c_t` is the product of the stages' host factors at step :math:`t` (1-based).
    A new element-wise rule is a class that declares its hyperparameters (:class:`Hyper`) and
    returns its stages from :meth:`rule`, or a :class:`Chain` of stages. A rule that cannot be
    written as stages defines ``init_slots(xp, p) -> dict``, ``direction(xp, p, g, slots, t)
    -> (u, slots)`` and, for host scalars shared by all parameters, ``begin_step(t) ->
    c_t``; such a class is not element-wise unless it says so (``elementwise = True``).

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
        (``foreach``). Stages are element-wise by contract; a subclass that defines its own
        ``direction``, ``init_slots``, ``begin_step`` or ``step`` is not element-wise unless
        it says so (``elementwise = True`` in its class body): a rule that looks across
        entries (a per-matrix norm, ``p.ndim``) must never see the packed vector.
    """

    registry_kind = "optimizer"
    name = "optimizer"
    needs_closure = False
    elementwise = True
    #: ``foreach=None`` packs when the parameters average at most this many elements, unless
    #: the backend sets its own (:attr:`nnx.backend.Backend.foreach_max_mean_size`). Measured
    #: by ``benchmarks/foreach_threshold.py`` with NumPy on a CPU; GPU backends use it too
    #: until a GPU run of that script sets theirs.
    FOREACH_MAX_MEAN_SIZE = 2**13

    learning_rate = rate()
    clip_norm = Hyper(None, optional(check_positive), keyword=True)
    clip_value = Hyper(None, optional(check_positive), keyword=True)
    foreach = Hyper(None, optional(check_flag), keyword=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "elementwise" not in own and any(
                name in own for name in ("direction", "init_slots", "begin_step", "step")):
            cls.elementwise = False  # a hand-written rule is not element-wise until it says so
        cls._declared = _declarations(cls)
        if "__init__" not in own:
            cls.__init__ = _constructor(cls._declared)

    def _setup(self) -> None:
        """After the constructor stored the hyperparameters: checks across them, and the
        state of an optimizer not built yet."""
        stages = self.rule()  # the stages check their own arguments (nesterov, ...)
        _check_composition(stages)
        if self.foreach and not self._elementwise(stages):
            raise ValueError(
                f"foreach=True packs all parameters into one vector, which only element-wise "
                f"rules allow; {type(self).__name__} is not element-wise"
            )
        self.iterations = 0
        self.ctx = None
        self._rule = None
        self._slots: dict = {}
        self._host: dict = {}
        self._seam = PerParameter()
        self.reset()

    def _elementwise(self, stages) -> bool:
        return self.elementwise and all(s.elementwise for s in stages)

    def rule(self) -> list:
        """The update rule: stages (:mod:`nnx.transforms`) run in order on every parameter's
        update, starting from its gradient. Inactive stages (a decay of 0) are left out."""
        return []

    def get_config(self) -> dict:
        """The constructor's arguments; keyword-only options left at ``None`` (no clipping,
        ``foreach`` decided per network) are omitted."""
        declared = self._declared
        return {k: v for k, v in super().get_config().items()
                if not (v is None and k in declared and declared[k].keyword)}

    # ------------------------------------------------------------------ lifecycle

    def build(self, params: dict, ctx) -> None:
        """Create the per-parameter state for ``params`` (name -> array); resets the count."""
        self.ctx = ctx
        self.iterations = 0
        self._compile()
        self._seam = Packed(params, ctx) if self._packs(params) else PerParameter()
        self._slots = {name: self.init_slots(ctx.xp, p)
                       for name, p in self._seam.initial(params).items()}
        self.reset()

    def _compile(self) -> None:
        self._rule = _Rule(self, self.ctx)

    def _hyperparameter_changed(self, name: str) -> None:
        """Rebuild the stages of a built optimizer for a new hyperparameter value; refuse a
        value the built state cannot serve (a new slot, another packing)."""
        if self.__dict__.get("_rule") is None:
            return
        if name == "foreach":
            raise ValueError("foreach is chosen when the optimizer is built (at the first "
                             "fit); set it before, or build a new optimizer")
        self._compile()
        if self._rule.run == [self._direction_stage] or not self._slots:
            return  # a hand-written rule keeps its own slots
        kept = set(next(iter(self._slots.values())))
        needed = {slot for stage in self._rule.transforms for slot in stage.slots}
        if needed - kept:
            raise ValueError(
                f"{name}={self.__dict__[name]!r} needs optimizer state this optimizer did not "
                f"build ({', '.join(sorted(needed - kept))}); set it before training starts, "
                "or build a new optimizer"
            )

    def __getstate__(self):
        # a copy (lr_find's, a pickle) rebinds its stages and packs its own parameters again
        # (the seam forgets its vector): the arrays handed out here are views of this
        # optimizer's packed vector, a copy's are not
        return {**vars(self), "_rule": None}

    def __setstate__(self, state):
        vars(self).update(state)
        if self.ctx is not None:
            self._compile()

    def _packs(self, params: dict) -> bool:
        """Whether this rule runs on the packed parameters (see ``foreach``)."""
        if (not self._elementwise(self._rule.transforms) or self.foreach is False
                or len(params) < 2):
            return False
        if self.foreach:
            return True
        total = sum(math.prod(p.shape) for p in params.values())
        limit = self.ctx.backend.foreach_max_mean_size or self.FOREACH_MAX_MEAN_SIZE
        return total <= limit * len(params)

    @property
    def packed(self) -> bool:
        """True when the rule runs once over all parameters packed (``foreach``)."""
        return self._seam.packed

    @property
    def slots(self) -> dict:
        """Parameter name -> that parameter's state (slot name -> array or ``None``).

        When the rule runs packed, these are the parameter's slices of the packed state
        (views on NumPy, CuPy and torch); read them, do not replace them.
        """
        return self._seam.per_parameter(self._slots)

    def reset(self) -> None:
        """Reset optimizer-level state (beyond the slots): the stages' host scalars; called by
        ``build``."""
        stages = [] if self._rule is None else self._rule.transforms
        self._host = {k: v for s in stages for k, v in s.host_state.items()}

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
        rule = self._rule
        lr = self.learning_rate
        if callable(lr):
            lr = self.current_learning_rate()
        self.iterations += 1
        params, grads = self._seam.enter(params, grads)
        if rule.clip:
            grads = self.clip_gradients(grads)
        if rule.begin_step is not None:
            lr *= rule.begin_step(self.iterations)
        run, sub, slots = rule.run, rule.sub, self._slots
        out = rule.results(params)
        if run:
            for name, p in params.items():
                u, s = grads[name], slots[name]
                for stage in run:
                    u = stage(u, p, s)
                out[name] = sub(p, lr * u)
        else:  # no stage touches the arrays (plain SGD): the update is the gradient
            for name, p in params.items():
                out[name] = sub(p, lr * grads[name])
        return self._seam.leave(out)

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

    def begin_step(self, t: int) -> float:
        """Host scalars shared by all parameters at step ``t`` (1-based); returns the factor
        :math:`c_t` of the rate (the product of the stages' factors)."""
        factor, host = 1.0, self._host
        for begin in self._rule.begins:
            factor = begin(t, factor, host)
        return factor

    def init_slots(self, xp, p) -> dict:
        """The state of one parameter ``p``: every stage's slots."""
        slots = {}
        for stage in self._rule.transforms:
            slots.update(stage.init(xp, p))
        return slots

    def direction(self, xp, p, g, slots, t):
        """The update of one parameter before the rate, and its new slots: the stages, in
        order. A hand-written rule overrides this (and ``init_slots``, ``begin_step``)."""
        for apply in self._rule.applies:
            g = apply(g, p, slots)
        return g, slots

    def _direction_stage(self, u, p, s):
        """A hand-written :meth:`direction` as the one stage of the rule."""
        u, new = self.direction(self.ctx.xp, p, u, s, self.iterations)
        if new is not s:
            s.clear()
            s.update(new)
        return u

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
        self._slots = self._seam.from_per_parameter(new)
        self.iterations = int(state["iterations"])
        if "learning_rate" in state and not callable(self.learning_rate):
            self.learning_rate = float(state["learning_rate"])
        self._load_extra_state(state.get("extra", {}))

    def snapshot(self) -> dict:
        """An in-memory restore point on the device (no host transfer): copies of the slots,
        and the other attributes as they are (counters, host scalars; lists and dicts are
        copied).

        An optimizer that updates an array outside ``slots`` in place must override this.
        """
        state = _copy_containers({k: v for k, v in vars(self).items() if k not in _TRANSIENT})
        state["_slots"] = self._copy_slots(self._slots)
        return state

    def restore(self, state: dict) -> None:
        """Go back to a :meth:`snapshot` (which stays reusable)."""
        state = _copy_containers(state)
        state["_slots"] = self._copy_slots(state["_slots"])
        vars(self).update(state)
        self._seam.forget()  # the parameters are packed again from the network's
        if self.ctx is not None:
            self._compile()  # with the snapshot's hyperparameters

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
        return dict(self._host)

    def _load_extra_state(self, extra: dict) -> None:
        for key in self._host:
            self._host[key] = float(extra[key])


Optimizer.__init__ = _constructor(_declarations(Optimizer))
Optimizer._declared = _declarations(Optimizer)


def _check_transforms(name, value):
    stages = list(value) if isinstance(value, (list, tuple)) else None
    if not stages or not all(isinstance(s, T.Transform) for s in stages):
        raise ValueError(f"{name} must be a non-empty list of nnx.transforms.Transform; "
                         f"got {value!r}")
    return stages


class Chain(Optimizer):
    r"""An optimizer composed on the spot from stages of :mod:`nnx.transforms`.

    .. math:: u \leftarrow f_k(\cdots f_1(g)), \qquad p \leftarrow p - \eta\, c_t\, u

    ``Chain(1e-3, nnx.transforms.adam())`` is :class:`Adam` to the last bit, and
    ``Chain(lr, [*nnx.transforms.adam(), DecoupledDecay(1e-2)])`` is :class:`AdamW`. The
    stages given are copied when the chain is built, so one list may serve several chains.

    Parameters
    ----------
    learning_rate : float or schedule
    transforms : list of :class:`nnx.transforms.Transform`
    clip_norm, clip_value : float, optional
    foreach : bool, optional
        See :class:`Optimizer`.
    """

    name = "chain"
    transforms = Hyper(REQUIRED, _check_transforms)

    def rule(self):
        return [copy.copy(s) for s in self.transforms]


# ---------------------------------------------------------------------- first-order rules


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        u_t &= g_t + \mu b_t \ \text{(Nesterov)}, \quad b_t \ \text{otherwise} \\
        p &\leftarrow p - \eta\, u_t

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.Trace`.

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
    learning_rate = rate(1e-3)
    momentum = Hyper(0.0, check_beta)
    dampening = Hyper(0.0, check_fraction)
    nesterov = Hyper(False, check_flag)
    weight_decay = Hyper(0.0, check_nonnegative)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay),
                T.Trace(self.momentum, self.dampening, self.nesterov)]

    def _packs(self, params):
        # SGD takes two to five array calls per parameter: measured with momentum, packing
        # saves under 5% on the smallest networks and loses from ~9k entries per parameter
        # (benchmarks/foreach_threshold.py); plain SGD has less to save. Only on request.
        return bool(self.foreach) and super()._packs(params)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        p &\leftarrow p - \frac{\eta}{1 + (t - 1)\,\delta}\,
             \frac{g_t}{\sqrt{s_t} + \epsilon}

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.SumOfSquares`,
    :class:`~nnx.transforms.RMSScale`, :class:`~nnx.transforms.RateDecay`.

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
    learning_rate = rate(1e-2)
    lr_decay = Hyper(0.0, check_nonnegative)
    weight_decay = Hyper(0.0, check_nonnegative)
    initial_accumulator_value = Hyper(0.0, check_nonnegative)
    epsilon = Hyper(1e-10, check_nonnegative)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay),
                T.SumOfSquares(self.initial_accumulator_value, "sum"),
                T.RMSScale(self.epsilon, "sum"), T.RateDecay(self.lr_decay)]


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

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.SecondMoment`,
    :class:`~nnx.transforms.FirstMoment` (centered), :class:`~nnx.transforms.RMSScale`,
    :class:`~nnx.transforms.Trace`.

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
    learning_rate = rate(1e-2)
    rho = Hyper(0.99, check_beta)
    epsilon = Hyper(1e-8, check_nonnegative)
    momentum = Hyper(0.0, check_beta)
    centered = Hyper(False, check_flag)
    weight_decay = Hyper(0.0, check_nonnegative)

    def rule(self):
        centered = [T.FirstMoment(self.rho, "grad_avg", replace=False)] if self.centered else []
        return [T.CoupledDecay(self.weight_decay), T.SecondMoment(self.rho, "square_avg"),
                *centered,
                T.RMSScale(self.epsilon, "square_avg", center="grad_avg" if centered else None),
                T.Trace(self.momentum, copy_first=False)]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        a_t &= \rho a_{t-1} + (1 - \rho) \Delta_t^2 \\
        p &\leftarrow p - \eta\, \Delta_t

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.SecondMoment`,
    :class:`~nnx.transforms.DeltaScale`.

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
    learning_rate = rate(1.0)
    rho = Hyper(0.9, check_beta)
    epsilon = Hyper(1e-6, check_nonnegative)
    weight_decay = Hyper(0.0, check_nonnegative)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay), T.SecondMoment(self.rho, "square_avg"),
                T.DeltaScale(self.rho, self.epsilon, "square_avg", "acc_delta")]


class _Moments(Optimizer):
    """The Adam family's moment rates ``beta_1``, ``beta_2``, ``epsilon`` and coupled weight
    decay (:math:`g \\leftarrow g + \\lambda p`), declared once here."""

    beta_1 = Hyper(0.9, check_beta)
    beta_2 = Hyper(0.999, check_beta)
    epsilon = Hyper(1e-8, check_nonnegative)
    weight_decay = Hyper(0.0, check_nonnegative)


class Adam(_Moments):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(AMSGrad)}, \quad v_t \ \text{otherwise} \\
        p &\leftarrow p - \eta\, \frac{m_t / (1 - \beta_1^t)}
                                  {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Stages: :class:`~nnx.transforms.CoupledDecay`, then :func:`nnx.transforms.adam` (the
    bias corrections become a factor of the rate and a shifted epsilon, two array operations
    less per parameter than correcting :math:`m` and :math:`v`).

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
    learning_rate = rate(1e-3)
    amsgrad = Hyper(False, check_flag)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay), *self._adam()]

    def _adam(self):
        return T.adam(self.beta_1, self.beta_2, self.epsilon, self.amsgrad)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The decay shrinks the weights directly instead of passing through the moments:

    .. math::
        p \leftarrow p - \eta \lambda p - \eta\, \frac{m_t / (1 - \beta_1^t)}
                                                {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    with :math:`m_t, \hat v_t` as in :class:`Adam` computed from the raw gradient. Stages:
    :func:`nnx.transforms.adam`, then :class:`~nnx.transforms.DecoupledDecay`.

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
    weight_decay = Hyper(1e-2, check_nonnegative)

    def rule(self):
        return [*self._adam(), T.DecoupledDecay(self.weight_decay)]


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

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.SecondMoment`,
    :class:`~nnx.transforms.NesterovMomentum`, :class:`~nnx.transforms.RMSScale`.

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
    The running product :math:`\prod \mu_i` is a host float64 (saved as ``mu_product``).
    torch keeps it in a tensor of the default dtype, so to compare in float64 run torch with
    ``torch.set_default_dtype(torch.float64)``. Keras's Nadam fixes
    ``momentum_decay=0.004`` and defaults to ``learning_rate=0.001``, ``epsilon=1e-7``.
    """

    name = "nadam"
    learning_rate = rate(2e-3)
    momentum_decay = Hyper(4e-3, check_nonnegative)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay), T.SecondMoment(self.beta_2, "v"),
                T.NesterovMomentum(self.beta_1, self.momentum_decay, "m"),
                T.RMSScale(self.epsilon, "v", debias=self.beta_2)]


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

    with :math:`m_t, v_t` Adam's moments of :math:`g_t = \nabla_p L + \lambda p`. Stages:
    :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.SecondMoment`,
    :class:`~nnx.transforms.FirstMoment`, :class:`~nnx.transforms.Rectify`,
    :class:`~nnx.transforms.BiasCorrection` (the host factors of the rate).

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
    learning_rate = rate(1e-3)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay), T.SecondMoment(self.beta_2, "v"),
                T.FirstMoment(self.beta_1, "m"), T.Rectify(self.beta_2, self.epsilon, "v"),
                T.BiasCorrection(self.beta_1)]


class Adamax(_Moments):
    r"""Adamax, Adam with an infinity norm (Kingma & Ba, 2015), as ``torch.optim.Adamax``.

    .. math::
        g_t &= \nabla_p L + \lambda p \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        p &\leftarrow p - \frac{\eta}{1 - \beta_1^t}\, \frac{m_t}{u_t}

    Stages: :class:`~nnx.transforms.CoupledDecay`, :class:`~nnx.transforms.InfinityNorm`,
    :class:`~nnx.transforms.FirstMoment`, :class:`~nnx.transforms.DivideBy`,
    :class:`~nnx.transforms.BiasCorrection`.

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
    learning_rate = rate(2e-3)

    def rule(self):
        return [T.CoupledDecay(self.weight_decay),
                T.InfinityNorm(self.beta_2, self.epsilon, "u"),
                T.FirstMoment(self.beta_1, "m"), T.DivideBy("u"), T.BiasCorrection(self.beta_1)]


class Lion(Optimizer):
    r"""Lion, "evolved sign momentum" (Chen et al., 2023, arXiv:2302.06675, Algorithm 2).

    Not in ``torch.optim``; the tests check it against the paper's update written out.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        p &\leftarrow p - \eta \left(\operatorname{sign}(c_t) + \lambda p\right) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    Every coordinate moves by exactly :math:`\pm\eta` (plus decay), so Lion wants a rate
    3-10x smaller than Adam's and a decoupled weight decay 3-10x larger. Stages:
    :class:`~nnx.transforms.LionMomentum`, :class:`~nnx.transforms.Sign`,
    :class:`~nnx.transforms.DecoupledDecay`.

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
    learning_rate = rate(1e-4)
    beta_1 = Hyper(0.9, check_beta)
    beta_2 = Hyper(0.99, check_beta)
    weight_decay = Hyper(0.0, check_nonnegative)

    def rule(self):
        return [T.LionMomentum(self.beta_1, self.beta_2, "m"), T.Sign(),
                T.DecoupledDecay(self.weight_decay)]


# ---------------------------------------------------------------------- quasi-Newton


class LBFGS(Optimizer):
    r"""Limited-memory BFGS, a port of ``torch.optim.LBFGS`` (itself after minFunc).

    Full-batch and deterministic: one *step* runs up to ``max_iter`` quasi-Newton iterations
    on the whole training set. The search direction comes from the two-loop recursion over
    the last ``history_size`` curvature pairs :math:`s_k = p_{k+1} - p_k`,
    :math:`y_k = g_{k+1} - g_k` (pairs with :math:`y^\top s \le 10^{-10}` are skipped):

    .. math::
        d = -H_k g_k, \qquad H_k^0 = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}} I

    and the step length comes from a strong-Wolfe line search
    (:func:`nnx.linesearch.strong_wolfe`: sufficient decrease :math:`c_1 = 10^{-4}`,
    curvature :math:`c_2 = 0.9`, cubic interpolation), or is the fixed ``learning_rate``
    with ``line_search=None`` (the first iteration ever uses
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
    learning_rate = rate(1.0)
    max_iter = Hyper(20, check_count)
    history_size = Hyper(100, check_count)
    tolerance_grad = Hyper(1e-7, check_nonnegative)
    tolerance_change = Hyper(1e-9, check_nonnegative)
    line_search = Hyper("strong_wolfe", one_of("strong_wolfe", None))
    max_eval = Hyper(None, optional(check_count), keyword=True)
    foreach = None  # no such argument: the flat vector is L-BFGS's own

    def _setup(self):
        if self.clip_norm is not None or self.clip_value is not None:
            raise ValueError(
                "LBFGS does not support clip_norm/clip_value: its curvature pairs and line "
                "search need the true gradient"
            )
        if self.max_eval is None:
            self.max_eval = self.max_iter * 5 // 4
        super()._setup()

    def reset(self):
        super().reset()
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
                loss, flat_grad, t, ls_evals = strong_wolfe(
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
