"""Layers with explicit forward caches and hand-written backward passes.

The protocol every layer follows::

    params: dict[str, Array]          # trainable, e.g. {"W": (in, out), "b": (out,)}
    state:  dict[str, Array]          # non-trainable (running statistics)
    build(in_dim, ctx, rng) -> out_dim
    forward(x, *, training) -> (y, cache)
    backward(cache, dy, need_dx=True) -> (dx, grads)   # grads keyed like params

The cache is returned, not hidden on ``self``, so a layer can be gradient-checked alone and the
teaching walk-through can print every ``z`` and ``a``. All math goes through ``ctx.xp``.
"""

from __future__ import annotations

from typing import NamedTuple

from . import activations as _activations
from . import initializers
from .backend import Context


class DenseCache(NamedTuple):
    """What :class:`Dense` keeps for its backward pass.

    Attributes
    ----------
    x : Array, shape (n_samples, in_dim)
        The layer's input.
    z : Array, shape (n_samples, units)
        Pre-activation :math:`z = xW + b`.
    a : Array, shape (n_samples, units)
        Output :math:`a = f(z)` (``a is z`` without an activation).
    """

    x: object
    z: object
    a: object


class Layer:
    """Base class. Subclasses set ``params``/``state`` in ``build`` and define the passes."""

    def __init__(self):
        self.params: dict = {}
        self.state: dict = {}
        self.ctx: Context | None = None
        self.input_dim: int | None = None
        self.output_dim: int | None = None

    @property
    def built(self) -> bool:
        return self.ctx is not None

    def build(self, in_dim: int, ctx: Context, rng) -> int:
        self.ctx, self.input_dim, self.output_dim = ctx, in_dim, in_dim
        return in_dim

    def forward(self, x, *, training: bool = False):
        raise NotImplementedError("abstract method: subclasses define forward")

    def backward(self, cache, dy, need_dx: bool = True):
        raise NotImplementedError("abstract method: subclasses define backward")

    def get_config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    r"""Fully connected layer :math:`a = f(xW + b)`, ``W`` of shape ``(in, units)``.

    Backward, with :math:`dz = dy \odot f'(z)`:

    .. math:: dW = x^\top dz, \quad db = \mathbf{1}^\top dz, \quad dx = dz\, W^\top

    Parameters
    ----------
    units : int
        Output width.
    activation : str, Activation or None
        Applied after the affine map; ``None`` emits logits (use it for the output layer).
    kernel_initializer : str or callable, optional
        Default: He normal for the ReLU family, Glorot normal otherwise (see
        :func:`nnx.initializers.default_for`).
    use_bias : bool, default True
    """

    def __init__(self, units: int, activation=None, kernel_initializer=None, use_bias=True):
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense units must be a positive integer; got {units!r}")
        self.units = units
        self.activation = _activations.get(activation)
        if isinstance(self.activation, _activations.Identity):
            self.activation = None
        if kernel_initializer is not None:
            initializers.get(kernel_initializer)  # fail early on an unknown name
        self.kernel_initializer = kernel_initializer
        self.use_bias = bool(use_bias)

    def build(self, in_dim, ctx, rng):
        self.ctx, self.input_dim, self.output_dim = ctx, in_dim, self.units
        name = self.kernel_initializer or initializers.default_for(self.activation)
        W = initializers.get(name)((in_dim, self.units), rng.init)
        self.params = {"W": ctx.asarray(W)}
        if self.use_bias:
            self.params["b"] = ctx.zeros((self.units,))
        self._ones = {}  # cached ones vectors, one per batch size, for the bias gradient
        return self.units

    def forward(self, x, *, training=False):
        p = self.params
        z = x @ p["W"]
        if self.use_bias:
            z = z + p["b"]
        if self.activation is None:
            return z, DenseCache(x, z, z)
        a = self.activation.forward(self.ctx.xp, z)
        return a, DenseCache(x, z, a)

    def backward(self, cache, dy, need_dx=True):
        x, z, a = cache
        dz = dy if self.activation is None else self.activation.backward(self.ctx.xp, z, a, dy)
        grads = {"W": x.T @ dz}
        if self.use_bias:
            n = dz.shape[0]
            ones = self._ones.get(n)
            if ones is None:
                ones = self._ones[n] = self.ctx.ones((n,), dtype=dz.dtype)
            # A ones-vector product beats xp.sum(dz, axis=0) on small batches (BLAS vs reduce).
            grads["b"] = ones @ dz
        dx = dz @ self.params["W"].T if need_dx else None
        return dx, grads

    def get_config(self):
        return {
            "units": self.units,
            "activation": _activation_config(self.activation),
            "kernel_initializer": self.kernel_initializer
            if isinstance(self.kernel_initializer, (str, type(None)))
            else initializers.name_of(self.kernel_initializer),
            "use_bias": self.use_bias,
        }


class Activation(Layer):
    """An activation function as a layer of its own (no parameters).

    Parameters
    ----------
    activation : str or nnx.activations.Activation
    """

    def __init__(self, activation):
        super().__init__()
        self.activation = _activations.get(activation)
        if self.activation is None:
            raise ValueError("Activation layer needs an activation; got None")

    def forward(self, x, *, training=False):
        y = self.activation.forward(self.ctx.xp, x)
        return y, (x, y)

    def backward(self, cache, dy, need_dx=True):
        x, y = cache
        return self.activation.backward(self.ctx.xp, x, y, dy), {}

    def get_config(self):
        return {"activation": _activation_config(self.activation)}


def _activation_config(activation):
    if activation is None:
        return None
    config = activation.get_config()
    return {"name": activation.name, **config} if config else activation.name
