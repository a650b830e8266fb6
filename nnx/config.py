"""Configuration and registration: every building block owns its config.

A layer, loss, activation, schedule, regularizer, constraint or optimizer derives from
:class:`Configurable`. Its configuration is its constructor's arguments, read back from the
attributes of the same names, so ``type(obj)(**obj.get_config())`` rebuilds it and ``repr``
shows what differs from the defaults; no class writes either by hand.

Classes register by kind (``"layer"``, ``"optimizer"``, ...) where they are defined: nnx's own
on definition, a user's with :func:`register`. A model file names classes by their registered
name and loading looks names up here and nowhere else, so a file can only create registered
classes with plain values as arguments: loading never runs code from the file.

Example: a user's layer, saved and loaded like nnx's own::

    @nnx.register
    class Scale(nnx.layers.Layer):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor
        ...
"""

from __future__ import annotations

import functools
import inspect

_REGISTRIES: dict[str, dict[str, type]] = {}


def registry(kind: str) -> dict[str, type]:
    """Registered name -> class, for one kind (``"layer"``, ``"optimizer"``, ...)."""
    return _REGISTRIES.setdefault(kind, {})


def register(cls=None, *, name: str | None = None):
    """Register a :class:`Configurable` subclass under its kind, so files can name it.

    Use as ``@register`` or ``@register(name="my_layer")``; the default name is the class
    name. Registering a second class under a taken name is an error.
    """
    def add(klass):
        if not (isinstance(klass, type) and issubclass(klass, Configurable)
                and klass.registry_kind):
            raise TypeError(f"register expects a subclass of an nnx building block (a Layer, "
                            f"Loss, Optimizer, ...); got {klass!r}")
        key = name or klass.__name__
        known = registry(klass.registry_kind)
        if known.get(key, klass) is not klass:
            raise ValueError(f"a {klass.registry_kind} named {key!r} is already registered "
                             f"({known[key].__module__}.{known[key].__qualname__})")
        known[key] = klass
        klass.registered_name = key
        return klass
    return add if cls is None else add(cls)


def registered_name(obj) -> str | None:
    """The name ``obj``'s class is registered under, or ``None`` when it is not registered."""
    cls = type(obj)
    name = cls.__dict__.get("registered_name")
    kind = getattr(cls, "registry_kind", None)
    if name is None or kind is None or registry(kind).get(name) is not cls:
        return None
    return name


def lookup(kind: str, name) -> type:
    """The class registered as ``name``; ``KeyError`` naming what is known otherwise."""
    known = registry(kind)
    if not isinstance(name, str) or name not in known:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


@functools.lru_cache(maxsize=None)
def _signature(cls) -> tuple:
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple((p.name, p.default) for p in params
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


class Configurable:
    """Mixin: ``get_config`` and ``repr`` derived from the constructor; registration.

    A subclass stores every constructor argument under the argument's name (an attribute or
    a property). The base class of a family sets ``registry_kind``; its subclasses defined
    inside nnx register themselves under their class name (names starting with ``_`` never
    do), a user's with :func:`register`.
    """

    #: the registry this family of classes lives in (set by each base class)
    registry_kind: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a class that sets registry_kind itself is the base of its family, not a member
        if (cls.registry_kind and "registry_kind" not in vars(cls)
                and cls.__module__.split(".")[0] == "nnx" and not cls.__name__.startswith("_")):
            register(cls)

    @classmethod
    def config_names(cls) -> tuple:
        """The constructor's argument names, in order."""
        return tuple(name for name, _ in _signature(cls))

    def get_config(self) -> dict:
        """Constructor arguments as given: ``type(self)(**self.get_config())`` is a twin."""
        return {name: getattr(self, name) for name in self.config_names()}

    def __repr__(self):
        defaults = dict(_signature(type(self)))
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if not _same(v, defaults.get(k, inspect.Parameter.empty)))
        return f"{type(self).__name__}({args})"


def fresh(value):
    """A new, unbuilt twin of ``value`` made from its config (recursively through lists and
    nested building blocks); plain values come back as they are."""
    if isinstance(value, Configurable):
        return type(value)(**{k: fresh(v) for k, v in value.get_config().items()})
    if isinstance(value, (list, tuple)):
        return type(value)(fresh(v) for v in value)
    return value


class Value(Configurable):
    """A :class:`Configurable` that is a value: equal to another of its class with the same
    config, and hashable (activations, losses, penalties, constraints, schedules)."""

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), repr(self)))


def _same(value, default) -> bool:
    if default is inspect.Parameter.empty:
        return False
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # arrays and the like: never equal to a plain default
        return False
