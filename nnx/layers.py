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

import numpy as np

from . import activations as _activations
from . import initializers
from . import regularizers as _regularizers
from .backend import Context, is_host_array, to_numpy
from .checks import check_bool, check_number
from .config import Configurable


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


class Layer(Configurable):
    """Base class. Subclasses set ``params``/``state`` in ``build`` and define the passes.

    A layer stores its constructor arguments under their own names (its config is derived
    from them, see :mod:`nnx.config`). A layer that draws random numbers while training (from
    the ``rng`` given to ``build``) sets ``draws_masks = True``: the network's restore points
    then keep the mask streams. A layer with a kernel (a parameter ``"W"`` of shape
    ``(in, out)``) gets the network's ``l1``/``l2`` penalties and may take
    ``kernel_regularizer`` / ``kernel_constraint`` attributes, as :class:`Dense` does.
    A layer whose ``backward`` can write its parameters' gradients into arrays it is given
    (``into=``, keyed like ``params``; in a data-parallel fit, slices of the vector the
    ranks sum, so no copy into it is needed) sets ``gradients_into = True``; a subclass
    whose own ``backward`` takes no ``into`` gets new arrays' copies instead.
    """

    registry_kind = "layer"
    draws_masks = False
    gradients_into = False

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

    def sublayers(self) -> list:
        """Layers nested inside this one (for blocks such as :class:`Residual`)."""
        return []

    def forward(self, x, *, training: bool = False):
        raise NotImplementedError("abstract method: subclasses define forward")

    def backward(self, cache, dy, need_dx: bool = True):
        raise NotImplementedError("abstract method: subclasses define backward")

    def shapes(self, in_dim: int) -> tuple:
        """``(out_dim, {parameter: shape})`` this layer builds for ``in_dim`` features,
        without allocating (checked against a model file before building)."""
        return in_dim, {}


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
        Default: He normal for the ReLU family, LeCun normal for SELU, Glorot normal
        otherwise (see :func:`nnx.initializers.default_for`).
    use_bias : bool, default True
    kernel_regularizer : Regularizer, optional
        Penalty on ``W`` added to the loss (:mod:`nnx.regularizers`); biases are not penalised.
    kernel_constraint : callable, optional
        Applied to ``W`` after every update, e.g. :class:`~nnx.regularizers.MaxNorm`.
    bias_initializer : str or callable, default "zeros"
        ``"torch_default"`` or ``"glorot_uniform"`` draw the bias with the kernel's bound
        (torch's ``nn.Linear``, scikit-learn's MLP); see :mod:`nnx.initializers`.
    """

    def __init__(self, units: int, activation=None, kernel_initializer=None, use_bias=True,
                 kernel_regularizer=None, kernel_constraint=None, bias_initializer="zeros"):
        super().__init__()
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        if kernel_constraint is not None and not callable(kernel_constraint):
            raise ValueError(f"kernel_constraint must be callable (e.g. MaxNorm(3)); got {kernel_constraint!r}")
        self.kernel_constraint = kernel_constraint
        self.units = check_number("Dense units", units, low=1, integer=True)
        self.activation = _activations.get(activation)
        if isinstance(self.activation, _activations.Identity):
            self.activation = None
        if kernel_initializer is not None:
            initializers.get(kernel_initializer)  # fail early on an unknown name
        self.kernel_initializer = kernel_initializer
        try:
            initializers.get(bias_initializer)  # fail early on an unknown name
        except ValueError as exc:
            raise ValueError(f"bias_initializer: {exc}") from None
        self.bias_initializer = bias_initializer
        self.use_bias = check_bool("use_bias", use_bias)

    def shapes(self, in_dim):
        shapes = {"W": (in_dim, self.units)}
        if self.use_bias:
            shapes["b"] = (self.units,)
        return self.units, shapes

    def build(self, in_dim, ctx, rng):
        self.ctx, self.input_dim, self.output_dim = ctx, in_dim, self.units
        name = self.kernel_initializer or initializers.default_for(self.activation)
        W = initializers.get(name)((in_dim, self.units), rng.init)
        self.params = {"W": ctx.asarray(W)}
        if self.use_bias:  # drawn after W: a zero bias leaves the weights' stream as it was
            b = initializers.get(self.bias_initializer)((in_dim, self.units), rng.init,
                                                        size=(self.units,))
            self.params["b"] = ctx.asarray(b)
        self._ones = {}  # cached ones vectors, one per batch size, for the bias gradient
        return self.units

    def forward(self, x, *, training=False):
        p = self.params
        z = x @ p["W"]
        if self.use_bias:
            if self.ctx.writeable:
                z += p["b"]  # z is a fresh product: add in place, one temporary less
            else:
                z = z + p["b"]
        if self.activation is None:
            return z, DenseCache(x, z, z)
        a = self.activation.forward(self.ctx.xp, z)
        return a, DenseCache(x, z, a)

    gradients_into = True

    def backward(self, cache, dy, need_dx=True, into=None):
        """``into``: arrays shaped like ``W`` and ``b`` that receive the gradients
        (:attr:`Layer.gradients_into`), or ``None`` (new arrays)."""
        x, z, a = cache
        dz = dy if self.activation is None else self.activation.backward(self.ctx.xp, z, a, dy)
        grads = {"W": self._product(x.T, dz, into, "W")}
        if self.use_bias:
            n = dz.shape[0]
            ones = self._ones.get(n)
            if ones is None:
                ones = self._ones[n] = self.ctx.ones((n,), dtype=dz.dtype)
            # A ones-vector product beats xp.sum(dz, axis=0) on small batches (BLAS vs reduce).
            grads["b"] = self._product(ones, dz, into, "b")
        dx = dz @ self.params["W"].T if need_dx else None
        return dx, grads

    def _product(self, a, b, into, name):
        if into is None:
            return a @ b
        return self.ctx.backend.matmul_into(a, b, into[name])



class Standardize(Layer):
    r"""Scales every input feature by statistics of the training rows, inside the model:

    .. math:: y = (x - \mu) / \sigma

    with :math:`\mu` and :math:`\sigma` the mean and (population) standard deviation of
    each column, exactly those of :class:`nnx.datasets.Standardizer`, which computes them (in
    float64; a constant column gets :math:`\sigma = 1` and is only centred). Being part of
    the network, the scaling is saved and loaded with it and applied to every ``predict``,
    on the device, as Keras's ``Normalization`` layer.

    Where the statistics come from, first that applies:

    * given: ``Standardize(mean=..., scale=...)`` (a loaded model's layer is made this way);
    * :meth:`adapt` (one array, a memmap read in blocks, or a device array) and
      :meth:`partial_fit` (one chunk at a time, e.g. of a data source too large to hold);
    * otherwise the network's first ``fit``, on its training rows only (never the
      ``validation_split`` or ``validation_data`` rows); later fits keep them.

    ``Network(..., standardize=True)`` puts one in front of the other layers. It must be a
    network's first layer. Backward (no parameters): :math:`dx = dy / \sigma`.

    Parameters
    ----------
    mean : array-like, shape (n_features,), optional
    scale : array-like, shape (n_features,), optional
        Positive divisors; give both or neither.
    """

    #: rows of a device array copied to the host at a time by :meth:`adapt` (about 4 MiB)
    BLOCK_BYTES = 4 * 2**20

    def __init__(self, mean=None, scale=None):
        super().__init__()
        if (mean is None) != (scale is None):
            raise ValueError("Standardize needs both mean and scale, or neither (then it is "
                             "adapted from data)")
        self.mean = self.scale = None
        self._scaler = None  # the running statistics of adapt / partial_fit
        self._device = None  # (mean, scale) on the device, once built and adapted
        if mean is not None:
            self._set(*_statistics(mean, scale))

    @property
    def adapted(self) -> bool:
        """Whether the layer holds statistics (given, adapted or loaded)."""
        return self.mean is not None

    @property
    def n_samples_seen(self):
        """Rows the statistics come from (``None`` when they were given or loaded)."""
        return None if self._scaler is None else self._scaler.n_samples_seen_

    def adapt(self, X) -> "Standardize":
        """Fresh statistics from the rows of ``X``, shape ``(n_samples, n_features)``, or
        from every block of rows an iterator ``X`` gives (one pass).

        Host data (NumPy, a memmap, a list, a DataFrame) is read in float64 blocks, never
        converted whole (see :meth:`nnx.datasets.Standardizer.partial_fit`); an array on a
        device (CuPy, torch, ...) is copied to the host in blocks of :attr:`BLOCK_BYTES`.
        When a block is refused (NaN, another width), the layer keeps what it had.
        Returns ``self``.
        """
        from .datasets import Standardizer

        scaler = Standardizer()
        for block in (X if hasattr(X, "__next__") else [X]):
            self._fold(scaler, block)
        if not scaler.n_samples_seen_:
            raise ValueError("Standardize.adapt got no rows")
        self._scaler = scaler
        self._set(scaler.mean_, scaler.scale_)
        return self

    def partial_fit(self, X) -> "Standardize":
        """Fold one more chunk of rows into the statistics of the :meth:`adapt` /
        ``partial_fit`` calls so far (Chan et al.'s exact merge, see
        :meth:`nnx.datasets.Standardizer.partial_fit`). Returns ``self``."""
        from .datasets import Standardizer

        if self._scaler is None:
            if self.adapted:
                raise ValueError(
                    "this Standardize holds statistics it was given (or loaded), without the "
                    "row count partial_fit adds to; call adapt(X) to start afresh")
            self._scaler = Standardizer()
        self._fold(self._scaler, X)
        self._set(self._scaler.mean_, self._scaler.scale_)
        return self

    @property
    def moments(self):
        """``(n_samples, mean, var)`` of the rows the statistics come from, or ``None`` when
        they were given or loaded (see :meth:`nnx.datasets.Standardizer.merged`)."""
        scaler = self._scaler
        return None if scaler is None else (scaler.n_samples_seen_, scaler.mean_, scaler.var_)

    def set_statistics(self, mean, scale) -> "Standardize":
        """Replace the statistics with given ones (as ``Standardize(mean=, scale=)``); a
        later :meth:`partial_fit` starts afresh. Returns ``self``."""
        self._scaler = None
        self._set(*_statistics(mean, scale))
        return self

    def _fold(self, scaler, X):
        if is_host_array(X):  # the scaler reads host data in float64 blocks itself
            scaler.partial_fit(X if hasattr(X, "dtype") else np.asarray(X))
            return
        n = int(X.shape[0])
        step = max(1, self.BLOCK_BYTES // (8 * max(1, int(X.shape[-1]))))
        for start in range(0, n, step):  # stops within the array: the standard's rule
            scaler.partial_fit(to_numpy(X[start:min(start + step, n), ...]))

    def _set(self, mean, scale):
        if self.input_dim is not None and mean.shape[0] != self.input_dim:
            raise ValueError(f"Standardize was built for {self.input_dim} features; the data "
                             f"has {mean.shape[0]}")
        self.mean, self.scale = np.array(mean, dtype=np.float64), np.array(scale, np.float64)
        if self.built:
            self._to_device()

    def _to_device(self):
        dtype = self.ctx.dtype_name
        self._device = (self.ctx.asarray(self.mean.astype(dtype)),
                        self.ctx.asarray(self.scale.astype(dtype)))

    def shapes(self, in_dim):
        if self.adapted and self.mean.shape[0] != in_dim:
            raise ValueError(f"Standardize holds statistics of {self.mean.shape[0]} features; "
                             f"its input has {in_dim}")
        return in_dim, {}

    def build(self, in_dim, ctx, rng):
        self.shapes(in_dim)
        super().build(in_dim, ctx, rng)
        if self.adapted:
            self._to_device()
        return in_dim

    def forward(self, x, *, training=False):
        if self._device is None:
            raise ValueError("Standardize has no statistics yet: call adapt(X_train) on it, "
                             "or fit the network (its first fit adapts it)")
        mean, scale = self._device
        return (x - mean) / scale, None

    def backward(self, cache, dy, need_dx=True):
        return (dy / self._device[1] if need_dx else None), {}

    def __repr__(self):
        if not self.adapted:
            return "Standardize()"
        return f"Standardize(features={self.mean.shape[0]})"


def _statistics(mean, scale):
    """Given statistics checked: two finite 1-D float arrays of one length, scale > 0."""
    mean, scale = (np.asarray(to_numpy(v), dtype=np.float64) for v in (mean, scale))
    if mean.ndim != 1 or mean.shape != scale.shape or mean.size == 0:
        raise ValueError(f"Standardize mean and scale must be 1-D, of one length; got shapes "
                         f"{mean.shape} and {scale.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError("Standardize mean must be finite and scale finite and positive")
    return mean, scale


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



class Dropout(Layer):
    r"""Inverted dropout (Srivastava et al. 2014).

    In training each unit is kept with probability :math:`1 - r` and scaled by
    :math:`1 / (1 - r)`, so the expected activation is unchanged and prediction needs no
    rescaling: at ``training=False`` the layer is the identity. Masks come from the backend's
    own generator where it has one (no host round trip per step on a GPU), seeded from the
    network's ``seed``.

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping a unit.
    """

    draws_masks = True

    def __init__(self, rate: float):
        super().__init__()
        self.rate = check_number("Dropout rate", rate, low=0, high=1, high_open=True)

    def build(self, in_dim, ctx, rng):
        self.rng = rng
        return super().build(in_dim, ctx, rng)

    def forward(self, x, *, training=False):
        if not training or self.rate == 0.0:
            return x, None
        keep = self.rng.uniform_like(tuple(x.shape)) >= self.rate
        mask = self.ctx.xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.rate))
        return x * mask, mask

    def backward(self, cache, dy, need_dx=True):
        return (dy if cache is None else dy * cache), {}



class _Normalization(Layer):
    r"""Shared parts of BatchNorm and LayerNorm: the affine map and its gradient.

    With :math:`\hat x` the normalized input, :math:`y = \gamma \hat x + \beta`, and the
    normalization's backward along the reduced axis is

    .. math:: dx = \frac{1}{\sigma} \left(d\hat x - \overline{d\hat x}
              - \hat x\, \overline{d\hat x \odot \hat x}\right)

    (bars are means over that axis), which is what both subclasses use in training mode.
    """

    axis = 0

    def __init__(self, epsilon: float, affine: bool):
        super().__init__()
        self.epsilon = check_number("epsilon", epsilon, low=0, low_open=True)
        self.affine = check_bool("affine", affine)

    def shapes(self, in_dim):
        return in_dim, ({"gamma": (in_dim,), "beta": (in_dim,)} if self.affine else {})

    def build(self, in_dim, ctx, rng):
        super().build(in_dim, ctx, rng)
        if self.affine:
            self.params = {"gamma": ctx.ones((in_dim,)), "beta": ctx.zeros((in_dim,))}
        return in_dim

    def _affine(self, xhat):
        return xhat * self.params["gamma"] + self.params["beta"] if self.affine else xhat

    def _backward_normalized(self, xhat, inv, dy, batch_stats):
        xp = self.ctx.xp
        grads = {}
        dxhat = dy
        if self.affine:
            grads = {"gamma": xp.sum(dy * xhat, axis=0), "beta": xp.sum(dy, axis=0)}
            dxhat = dy * self.params["gamma"]
        if not batch_stats:  # fixed statistics: an affine map
            return dxhat * inv, grads
        mean_d, mean_dx = self._backward_means(dxhat, xhat)
        return inv * (dxhat - mean_d - xhat * mean_dx), grads

    def _backward_means(self, dxhat, xhat):
        r"""The means of :math:`d\hat x` and :math:`d\hat x \odot \hat x` along the
        normalized axis."""
        xp = self.ctx.xp
        return (xp.mean(dxhat, axis=self.axis, keepdims=True),
                xp.mean(dxhat * xhat, axis=self.axis, keepdims=True))


class BatchNorm(_Normalization):
    r"""Batch normalization over features (Ioffe & Szegedy 2015), as ``torch.nn.BatchNorm1d``.

    Training: :math:`\hat x = (x - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}` with the batch mean
    and biased variance; running statistics are updated as
    :math:`r \leftarrow (1 - m) r + m s` with the *unbiased* batch variance (as torch).
    Evaluation (``training=False``) normalizes with the running statistics.

    Parameters
    ----------
    momentum : float in (0, 1], default 0.1
    epsilon : float > 0, default 1e-5
    affine : bool, default True
        Learn a scale ``gamma`` and shift ``beta`` per feature.

    In a data-parallel fit each rank normalizes with the statistics of its part of the
    batch, unless the fit synchronises them (``DataParallel(sync_batchnorm=True)``, as
    ``torch.nn.SyncBatchNorm``): then :attr:`synchronized` is set and every mean is over
    the global batch.
    """

    def __init__(self, momentum: float = 0.1, epsilon: float = 1e-5, affine: bool = True):
        super().__init__(epsilon, affine)
        self.momentum = check_number("BatchNorm momentum", momentum, low=0, high=1, low_open=True)
        #: set by a data-parallel fit with synchronised statistics: a
        #: :class:`nnx.distributed.GradientSum` (its ``sum_over_ranks`` and ``rows_total``)
        self.synchronized = None

    #: a training batch must have at least this many rows (checked by ``fit`` up front)
    min_batch_size = 2

    def shapes(self, in_dim):
        out, shapes = super().shapes(in_dim)
        return out, {**shapes, "running_mean": (in_dim,), "running_var": (in_dim,)}

    def build(self, in_dim, ctx, rng):
        super().build(in_dim, ctx, rng)
        self.state = {"running_mean": ctx.zeros((in_dim,)), "running_var": ctx.ones((in_dim,))}
        return in_dim

    def forward(self, x, *, training=False):
        xp = self.ctx.xp
        if not training:
            inv = 1.0 / xp.sqrt(self.state["running_var"] + self.epsilon)
            xhat = (x - self.state["running_mean"]) * inv
            return self._affine(xhat), (xhat, inv, False)
        n = x.shape[0] if self.synchronized is None else self.synchronized.rows_total
        if n < 2:
            raise ValueError(
                "BatchNorm needs at least 2 samples per batch in training mode; got 1 "
                "(change batch_size so that no batch has a single row)"
            )
        mean = self._batch_mean(x, "BatchNorm mean")
        centered = x - mean
        var = self._batch_mean(centered * centered, "BatchNorm variance")
        inv = 1.0 / xp.sqrt(var + self.epsilon)
        xhat = centered * inv
        m = self.momentum
        self.state["running_mean"] = (1.0 - m) * self.state["running_mean"] + m * mean
        self.state["running_var"] = (1.0 - m) * self.state["running_var"] + (m * n / (n - 1)) * var
        return self._affine(xhat), (xhat, inv, True)

    def backward(self, cache, dy, need_dx=True):
        xhat, inv, batch_stats = cache
        return self._backward_normalized(xhat, inv, dy, batch_stats)

    def _batch_mean(self, v, what):
        """The mean of ``v`` over the batch's rows: this process's, or the global batch's."""
        xp = self.ctx.xp
        sync = self.synchronized
        if sync is None:
            return xp.mean(v, axis=0)
        return sync.sum_over_ranks(xp.sum(v, axis=0), what) / sync.rows_total

    def _backward_means(self, dxhat, xhat):
        sync = self.synchronized
        if sync is None:
            return super()._backward_means(dxhat, xhat)
        xp = self.ctx.xp
        width = dxhat.shape[1]
        both = xp.concat([xp.sum(dxhat, axis=0), xp.sum(dxhat * xhat, axis=0)])
        both = sync.sum_over_ranks(both, "BatchNorm gradient means") / sync.rows_total
        return both[:width], both[width:]



class LayerNorm(_Normalization):
    r"""Layer normalization (Ba et al. 2016), as ``torch.nn.LayerNorm(features)``:
    each sample is normalized over its features,
    :math:`\hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}`, the same in training and evaluation.

    Parameters
    ----------
    epsilon : float > 0, default 1e-5
    affine : bool, default True
    """

    axis = 1

    def __init__(self, epsilon: float = 1e-5, affine: bool = True):
        super().__init__(epsilon, affine)

    def forward(self, x, *, training=False):
        xp = self.ctx.xp
        centered = x - xp.mean(x, axis=1, keepdims=True)
        var = xp.mean(centered * centered, axis=1, keepdims=True)
        inv = 1.0 / xp.sqrt(var + self.epsilon)
        xhat = centered * inv
        return self._affine(xhat), (xhat, inv)

    def backward(self, cache, dy, need_dx=True):
        xhat, inv = cache
        return self._backward_normalized(xhat, inv, dy, True)



class Residual(Layer):
    r"""A skip connection around a block: :math:`y = x + f(x)` (He et al. 2016).

    The gradient reaches the input both through the block and unchanged along the identity
    path, :math:`dx = dy + J_f^\top dy`, which is why deep residual stacks do not suffer the
    vanishing gradients of plain deep sigmoid/tanh networks.

    Parameters
    ----------
    layers : list of Layer
        The block; its output width must equal its input width. Parameters are named
        ``"layers.i.layers.j.W"``.
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise ValueError(f"Residual needs a non-empty list of layers; got {layers!r}")

    def sublayers(self):
        return self.layers

    def shapes(self, in_dim):
        dim, shapes = in_dim, {}
        for j, layer in enumerate(self.layers):
            dim, inner = layer.shapes(dim)
            shapes.update({f"layers.{j}.{name}": shape for name, shape in inner.items()})
        self._check_width(in_dim, dim)
        return in_dim, shapes

    def build(self, in_dim, ctx, rng):
        dim = in_dim
        for layer in self.layers:
            dim = layer.build(dim, ctx, rng)
        self._check_width(in_dim, dim)
        return super().build(in_dim, ctx, rng)

    @staticmethod
    def _check_width(in_dim, out_dim):
        if out_dim != in_dim:
            raise ValueError(
                f"Residual block must keep the width: input {in_dim}, output {out_dim}"
            )

    def forward(self, x, *, training=False):
        h, caches = x, []
        for layer in self.layers:
            h, cache = layer.forward(h, training=training)
            caches.append(cache)
        return x + h, caches

    def backward(self, cache, dy, need_dx=True):
        grads, d = {}, dy
        for j in range(len(self.layers) - 1, -1, -1):
            d, layer_grads = self.layers[j].backward(cache[j], d, need_dx=True)
            for key, g in layer_grads.items():
                grads[f"layers.{j}.{key}"] = g
        return dy + d, grads
