"""The Network: layers, a loss, an optimizer and the training loop, on one backend."""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from . import activations as _activations
from . import distributed as _distributed
from . import initializers
from . import losses as _losses
from . import optimizers as _optimizers
from . import training
from .backend import entry_point, get_context, is_host_array, to_device, to_namespace_of, to_numpy
from .callbacks import History, wants_gradients
from .checks import (
    check_bool,
    check_features,
    check_features_on_device,
    check_finite_result,
    check_layer_sizes,
    check_number,
    check_regression_targets,
    check_seed,
    check_sequence,
    check_targets,
)
from .config import Configurable, fresh, register
from .data import TargetEncoder
from .guard import DivergenceError, NonFiniteWarning  # noqa: F401  (part of this module's API)
from .layers import Dense, Layer, Standardize
from .random import Random
from .regularizers import L1L2
from .sources import GROUP_BYTES, IterableSource, is_streamed, rows_item, source_for


class Network(Configurable):
    """A multi-layer perceptron with hand-written backprop on any array API backend.

    Two ways to describe it::

        nnx.Network([2, 16, 8, 1], activation="relu")              # the lesson's layer sizes
        nnx.Network([Dense(64, activation="relu"), Dense(10)], input_dim=64)

    In the layer-sizes form every hidden layer uses ``activation`` and every layer, the output
    layer included, is initialised by that activation's rule (He for the ReLU family, LeCun
    for SELU, Glorot otherwise), as in the lesson. The last layer always emits logits; the
    loss applies the output link (sigmoid, softmax or identity).

    Parameters
    ----------
    layers : list of int or list of Layer
        ``[n_inputs, hidden..., n_outputs]`` or layer objects.
    input_dim : int, optional
        Number of features, for the layer-object form (else taken from the first ``fit``).
    activation : str or Activation, default "relu"
        Hidden activation of the layer-sizes form.
    kernel_initializer : str or callable, optional
        Overrides the per-activation default in the layer-sizes form.
    loss : str or Loss, optional
        Default: binary cross-entropy for one output, categorical cross-entropy for several.
    optimizer : str or Optimizer, default "sgd"
    learning_rate : float or schedule, optional
        Used when ``optimizer`` is given by name (an optimizer object carries its own).
        Default: 0.01 for ``"sgd"`` (the lesson's), else the optimizer's own default
        (torch's: 1e-3 for Adam, 1e-4 for Lion, ...).
    backend : {"numpy", "cupy", "torch", "array_api_strict"}, default "numpy"
    device : optional
        Where to compute (``"cuda:0"`` for torch, an int for CuPy, ...).
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Makes initial weights, shuffling and dropout reproducible; the same seed gives the same
        initial weights on every backend.
    l1, l2 : float, default 0
        Network-wide weight penalties: every kernel (``W``, of Dense or any layer) without
        its own ``kernel_regularizer`` gets ``L1L2(l1, l2)`` (see :mod:`nnx.regularizers` for how
        this relates to torch's ``weight_decay`` and scikit-learn's ``alpha``).
    standardize : bool, default False
        Put a :class:`~nnx.layers.Standardize` layer in front: the inputs are scaled by the
        mean and standard deviation of the training rows of the first ``fit`` (never of its
        validation rows), saved with the model and applied by every later call. The other
        layers' parameters are then named from ``"layers.1"`` on.

    Attributes
    ----------
    layers : list of Layer
    loss_ : Loss
    optimizer : Optimizer
    ctx : Context
        Backend namespace, device and dtype, resolved once.
    classes_ : numpy.ndarray or None
        Labels seen at the first ``fit`` of a classifier.
    feature_names_in_ : list of str or None
        Column names of the DataFrame the network was built from; later DataFrames are
        reordered by these names (a missing one is an error).
    history_ : History
        Logs of every epoch of every ``fit`` call.
    """

    registry_kind = "model"

    def __init__(self, layers, *, input_dim=None, activation="relu", kernel_initializer=None,
                 loss=None, optimizer="sgd", learning_rate=None, backend="numpy", device=None,
                 dtype="float32", seed=None, l1=0.0, l2=0.0, standardize=False):
        self.ctx = get_context(backend, device, dtype)
        self.l1 = check_number("l1", l1, low=0)
        self.l2 = check_number("l2", l2, low=0)
        self.seed = check_seed(seed)
        self.random = Random(self.seed, self.ctx)
        layers = check_sequence("layers", layers, "a list of layer sizes like [2, 16, 1] or a "
                                "list of nnx.layers objects")
        if layers and all(isinstance(s, numbers.Integral) for s in layers):
            sizes = check_layer_sizes(layers)
            act = _activations.get(activation)
            init = kernel_initializer or initializers.default_for(act)
            layers = [Dense(s, activation=act, kernel_initializer=init) for s in sizes[1:-1]]
            layers.append(Dense(sizes[-1], kernel_initializer=init))
            input_dim = sizes[0]
        elif not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError(
                "layers must be a list of layer sizes like [2, 16, 1] or a list of nnx.layers "
                f"objects; got {layers!r}"
            )
        elif any(layer.built for layer in layers):
            # building it again would replace the parameters of the network it belongs to
            raise ValueError(
                "a layer given to Network is already built (part of another network); pass "
                "new layers, e.g. the ones in other.get_config()['layers']"
            )
        if check_bool("standardize", standardize) and not isinstance(layers[0], Standardize):
            layers = [Standardize(), *layers]
        if any(isinstance(layer, Standardize) for name, layer in self.named_layers(layers)
               if name != "layers.0"):
            raise ValueError("a Standardize layer scales the network's inputs: it must be the "
                             "first layer")
        if not isinstance(layers[-1], Dense) or layers[-1].activation is not None:
            raise ValueError(
                "the last layer must be a Dense layer without activation (it emits logits; the "
                "loss applies sigmoid/softmax)"
            )
        self.layers = layers
        self.loss_ = None if loss is None else _losses.get(loss)
        if learning_rate is None and isinstance(optimizer, str) and optimizer.lower() == "sgd":
            learning_rate = 0.01  # the lesson's default rate
        self.optimizer = _optimizers.get(optimizer, learning_rate)
        self.input_dim = None
        self.targets_ = None
        self.feature_names_in_ = None  # a DataFrame's column names, from the first one seen
        self.history_ = History()
        self.stop_training = False
        #: set while a data-parallel fit runs (:class:`nnx.distributed.GradientSum`): the
        #: objective and gradients are then the global batch's, summed over the ranks
        self.reduction = None
        if input_dim is not None:
            self.build(check_number("input_dim", input_dim, low=1, integer=True))

    # ------------------------------------------------------------------ construction

    @entry_point
    def build(self, input_dim: int) -> "Network":
        """Create every layer's parameters for ``input_dim`` features and the optimizer state."""
        dim = input_dim
        for layer in self.layers:
            dim = layer.build(dim, self.ctx, self.random)
        self.input_dim = input_dim
        self.n_outputs = dim
        if self.loss_ is None:
            self.loss_ = _losses.get("binary_crossentropy" if dim == 1 else "categorical_crossentropy")
        leaves = list(self.named_layers())
        # (name, owning dict, key) of every parameter, so a step never formats a string
        self._param_refs = [(f"{prefix}.{key}", layer.params, key)
                            for prefix, layer in leaves for key in layer.params]
        self._state_refs = [(f"{prefix}.{key}", layer.state, key)
                            for prefix, layer in leaves for key in layer.state]
        self._draws_masks = any(layer.draws_masks for _, layer in leaves)
        # the layers that take into= (Layer.gradients_into): not a subclass whose own
        # backward lacks it
        self._writes_into = [layer.gradients_into
                             and "into" in inspect.signature(layer.backward).parameters
                             for layer in self.layers]
        # a top-level layer reports gradients under names relative to itself
        self._grad_names = [
            {name[len(f"layers.{i}."):]: name for name, _, _ in self._param_refs
             if name.startswith(f"layers.{i}.")}
            for i in range(len(self.layers))
        ]
        shortcut = L1L2(self.l1, self.l2) if (self.l1 or self.l2) else None
        self._penalties, self._constraints = [], []
        for prefix, layer in leaves:
            if "W" not in layer.params:  # penalties and constraints act on kernels
                continue
            regularizer = getattr(layer, "kernel_regularizer", None) or shortcut
            if regularizer is not None:
                self._penalties.append((f"{prefix}.W", layer.params, regularizer))
            constraint = getattr(layer, "kernel_constraint", None)
            if constraint is not None:
                self._constraints.append((layer.params, constraint))
        self.optimizer.build(self.parameters(), self.ctx)
        return self

    def named_layers(self, layers=None, prefix="layers"):
        """``(name prefix, layer)`` of every layer, nested ones included (depth first)."""
        for i, layer in enumerate(self.layers if layers is None else layers):
            name = f"{prefix}.{i}"
            yield name, layer
            if layer.sublayers():
                yield from self.named_layers(layer.sublayers(), f"{name}.layers")

    @property
    def built(self) -> bool:
        return self.input_dim is not None

    @property
    def classes_(self):
        return None if self.targets_ is None else self.targets_.classes_

    def _require_built(self, what: str):
        if not self.built:
            raise ValueError(f"{what} needs a built network: call fit first or pass input_dim=")

    # ------------------------------------------------------------------ parameters

    def parameters(self) -> dict:
        """Name -> the live parameter arrays (``"layers.0.W"`` of shape ``(in, out)``, ...)."""
        self._require_built("parameters()")
        return {name: owner[key] for name, owner, key in self._param_refs}

    @entry_point
    def set_parameters(self, mapping: dict) -> None:
        """Replace parameters by name; NumPy (or any backend's) arrays are moved to the device.

        Raises
        ------
        ValueError
            Unknown name, or a shape different from the current parameter's.
        """
        self._require_built("set_parameters()")
        self._assign(self._param_refs, mapping, "parameter")

    def state(self) -> dict:
        """Name -> non-trainable arrays (BatchNorm running statistics), live."""
        self._require_built("state()")
        return {name: owner[key] for name, owner, key in self._state_refs}

    @entry_point
    def set_state(self, mapping: dict) -> None:
        """Replace non-trainable arrays by name, as :meth:`set_parameters` does parameters."""
        self._require_built("set_state()")
        self._assign(self._state_refs, mapping, "state")

    def _assign(self, refs, mapping, what):
        refs = {name: (owner, key) for name, owner, key in refs}
        for name, value in mapping.items():
            if name not in refs:
                raise ValueError(f"unknown {what} {name!r}; known: {', '.join(refs)}")
            owner, key = refs[name]
            arr = to_numpy(value)
            if tuple(arr.shape) != tuple(owner[key].shape):
                raise ValueError(
                    f"{what} {name!r} has shape {tuple(owner[key].shape)}; got {arr.shape}"
                )
            owner[key] = self.ctx.asarray(np.array(arr, dtype=self.ctx.dtype_name, copy=True))

    @entry_point
    def snapshot(self, parameters=True, optimizer=False, masks_only=False) -> dict:
        """A restore point: device copies of the parameters (optional), the layer state and
        (optionally) the optimizer's state, plus the random streams' state. No host sync.

        ``masks_only=True`` keeps only the mask streams, and none when no layer draws masks:
        enough for the divergence guard's points, taken once an epoch's row order is drawn."""
        xp = self.ctx.xp
        refs = (self._param_refs if parameters else []) + self._state_refs
        streams = (self.random.state(masks_only) if self._draws_masks or not masks_only
                   else {})
        snapshot = {"arrays": {name: xp.asarray(owner[key], copy=True)
                               for name, owner, key in refs},
                    "random": streams}
        if optimizer:
            snapshot["optimizer"] = self.optimizer.snapshot()
        return snapshot

    @entry_point
    def restore(self, snapshot: dict) -> None:
        """Go back to a :meth:`snapshot` (the parts it holds)."""
        arrays = snapshot["arrays"]
        for name, owner, key in self._param_refs + self._state_refs:
            if name in arrays:
                owner[key] = self.ctx.xp.asarray(arrays[name], copy=True)
        self.random.set_state(snapshot["random"])
        if "optimizer" in snapshot:
            self.optimizer.restore(snapshot["optimizer"])

    # ------------------------------------------------------------------ forward / backward

    def _forward(self, x, training):
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, training=training)
            caches.append(cache)
        return x, caches

    def _backward(self, caches, dy, into=None) -> dict:
        """Gradients by parameter name; ``into`` (name -> array, or ``None``) receives them
        from the layers that write their gradients in place (``Layer.gradients_into``)."""
        grads = {}
        for i in range(len(self.layers) - 1, -1, -1):
            layer, names = self.layers[i], self._grad_names[i]
            if into is not None and self._writes_into[i]:
                dy, layer_grads = layer.backward(
                    caches[i], dy, need_dx=i > 0,
                    into={key: into[name] for key, name in names.items()})
            else:
                dy, layer_grads = layer.backward(caches[i], dy, need_dx=i > 0)
            for key, g in layer_grads.items():
                grads[names[key]] = g
        return grads

    def apply_gradients(self, grads: dict) -> None:
        """One optimizer update with ``grads`` (keyed like :meth:`parameters`), then the
        kernel constraints."""
        # the live arrays by name (parameters() without its per-step built check)
        params = {name: owner[key] for name, owner, key in self._param_refs}
        updated = self.optimizer.step(params, grads)
        # the updated arrays are the parameters from now on: in place they are the same
        # objects, but a packed optimizer hands out slices of its packed vector
        for name, owner, key in self._param_refs:
            owner[key] = updated[name]
        for owner, constraint in self._constraints:
            owner["W"] = constraint(self.ctx.xp, owner["W"])

    def objective_and_gradients(self, xb, yb, wb=None, batch_callbacks=()):
        """Training-mode objective and its gradients on device arrays (no host sync).

        The objective is the (weighted) data loss plus every kernel penalty. In a
        data-parallel fit (``reduction`` set, see :mod:`nnx.distributed`) both are the
        global batch's, summed over the ranks. ``batch_callbacks`` see the outputs
        (``on_batch_outputs``).
        """
        xp = self.ctx.xp
        out, caches = self._forward(xb, True)
        for cb in batch_callbacks:
            cb.on_batch_outputs(out, yb)
        reduction = self.reduction
        if reduction is None:
            loss, dout = self.loss_.value_and_grad(xp, out, yb, wb)
        else:  # this rank's share of the global batch's mean
            loss, dout = reduction.share(self.loss_, out, yb, wb)
        # a data-parallel step's gradients are made in the vector the ranks sum, if they can
        grads = self._backward(caches, dout, None if reduction is None
                               else reduction.destinations())
        if reduction is None or reduction.owns_penalties:  # added once, not once per rank
            for name, owner, reg in self._penalties:
                loss = loss + reg.penalty(xp, owner["W"])
                grads[name] = grads[name] + reg.gradient(xp, owner["W"])
        if reduction is not None:
            # callbacks that see every step's gradients may keep them: copies for them
            keep = any(wants_gradients(cb) for cb in batch_callbacks)
            loss, grads = reduction.sum(loss, grads, keep=keep)
        return loss, grads

    def objective(self, xb, yb, training, wb=None):
        """The objective alone (what the gradients differentiate), as a device scalar."""
        xp = self.ctx.xp
        out, _ = self._forward(xb, training)
        loss = self.loss_.value(xp, out, yb, wb)
        for _, owner, reg in self._penalties:
            loss = loss + reg.penalty(xp, owner["W"])
        return loss

    def step(self, xb, yb, wb=None, grad_callbacks=()):
        """One optimizer update on a batch already on the device (see :meth:`prepare`).

        The engine's step: no checks, no host synchronisation; returns the batch objective
        (before the update) as a device scalar. ``wb`` is a ``(batch, 1)`` weight column;
        ``grad_callbacks`` get every step's outputs and gradients (``on_batch_outputs``,
        ``on_batch_gradients``). Like the
        other engine methods (:meth:`objective_and_gradients`, :meth:`apply_gradients`,
        :meth:`scores`, :meth:`with_finiteness`) it runs in the caller's scope: a loop of
        its own runs inside ``with net.ctx.scope():`` (on CuPy, the network's GPU current),
        as ``fit`` does.
        """
        if self.optimizer.needs_closure:
            return self._closure_step(xb, yb, wb)
        loss, grads = self.objective_and_gradients(xb, yb, wb, grad_callbacks)
        for cb in grad_callbacks:
            cb.on_batch_gradients(self.optimizer.iterations, grads)
        self.apply_gradients(grads)
        return loss

    def _closure_step(self, xb, yb, wb):
        """One step of an optimizer that re-evaluates the objective itself (LBFGS)."""
        def install(params):
            for name, owner, key in self._param_refs:
                owner[key] = params[name]

        def closure(params):
            install(params)
            return self.objective_and_gradients(xb, yb, wb)

        loss, params = self.optimizer.minimize(closure, self.parameters())
        install(params)
        for owner, constraint in self._constraints:
            owner["W"] = constraint(self.ctx.xp, owner["W"])
        return loss

    # ------------------------------------------------------------------ data crossings

    @entry_point
    def prepare(self, X, y=None):
        """``X`` (and ``y``) checked and moved to the device, as training uses them.

        Returns ``Xd``, or ``(Xd, Yd)`` with ``Yd`` the encoded targets (see
        :class:`~nnx.data.TargetEncoder`); builds the network at the first call. An array
        already on the network's device is kept and checked there (its finiteness costs one
        sync per call).
        """
        X = self._by_column_name(X)
        if self.ctx.owns(X) and not is_host_array(X):
            check_features_on_device(X, self.ctx, self.input_dim)
        else:
            X = check_features(X, n_features=self.input_dim, dtype=self.ctx.dtype_name)
        if not self.built:
            self.build(int(X.shape[1]))
        Xd = to_device(X, self.ctx)
        return Xd if y is None else (Xd, self.encode_targets(y, Xd.shape[0]))

    def _by_column_name(self, X):
        """A DataFrame's columns in the order the network learned them (recorded at the
        first one it saw); a DataFrame without one of them is refused by name."""
        columns = getattr(X, "columns", None)
        if columns is None or not hasattr(X, "iloc"):
            return X
        names = [str(c) for c in columns]
        if self.feature_names_in_ is None:
            if self.targets_ is None:  # the first fit: learn the names
                self.feature_names_in_ = names
            return X
        missing = [c for c in self.feature_names_in_ if c not in names]
        if missing:
            raise ValueError(f"X lacks the column(s) {missing} the network was trained on "
                             f"(it has {names})")
        if names != self.feature_names_in_:  # reorder by name, never by position
            X = X.iloc[:, [names.index(c) for c in self.feature_names_in_]]
        return X

    def prepare_batch(self, X, y, k: int):
        """One host batch ``k`` of a streamed source, checked and moved to the device:
        ``(Xd, Yd)``. A problem is a ``ValueError`` that names the batch (another feature
        count or type, a label the network does not know, NaN)."""
        try:
            X = check_features(X, n_features=self.input_dim, dtype=self.ctx.dtype_name)
            Yd = None if y is None else self.encode_targets(y, X.shape[0])
        except ValueError as exc:
            raise ValueError(f"batch {k} of the data source: {exc}") from None
        return to_device(X, self.ctx), Yd

    def learn_targets(self, y, classes=None) -> None:
        """Learn the label kind and set from host targets ``y`` (or from ``classes=``, every
        label), before the first step; a no-op once the network knows them."""
        if self.targets_ is None:
            y = check_targets(y, len(y))
            self.targets_ = TargetEncoder(self.loss_.task, self.n_outputs).fit(y, classes)

    def adapt_inputs(self, X) -> None:
        """Adapt a first :class:`~nnx.layers.Standardize` layer that has no statistics yet on
        ``X``, the training rows: an array (on the device or the host) or a data source of
        :mod:`nnx.sources`, read chunk by chunk in one extra pass. A no-op otherwise; ``fit``
        calls it before its first step."""
        layer = self.layers[0]
        if not isinstance(layer, Standardize) or layer.adapted:
            return
        if isinstance(X, IterableSource):
            if X.one_shot:
                raise ValueError(
                    "the network standardizes its inputs but a one-shot iterator cannot be "
                    "read twice: adapt the layer first (net.layers[0].partial_fit(chunk) for "
                    "each training chunk), or pass a callable that returns a new iterator")
            X = (np.asarray(item[0]) for item in X.fresh())
        elif is_streamed(X):
            X = (Xc for Xc, _ in self._chunks(X))
        layer.adapt(X)

    def encode_targets(self, y, n_samples: int):
        """``y`` checked and encoded for the loss, on the device; the first call learns the
        labels (``classes_``)."""
        y = check_targets(y, n_samples)
        if self.targets_ is None:
            self.targets_ = TargetEncoder(self.loss_.task, self.n_outputs).fit(y)
        return self.targets_.encode(y, self.ctx)

    # ------------------------------------------------------------------ public math

    @entry_point
    def forward(self, X, training=False, return_cache=False):
        """Logits of ``X``, shape ``(n_samples, n_outputs)``, in the namespace of ``X``.

        With ``return_cache=True`` also returns every layer's cache (for :class:`Dense`, a
        :class:`~nnx.layers.DenseCache` with ``x``, ``z`` and ``a``), as device arrays.
        """
        out, caches = self._forward(self.prepare(X), training)
        out = to_namespace_of(X, out, self.ctx)
        return (out, caches) if return_cache else out

    @entry_point
    def gradients(self, X, y):
        """Loss and gradients on ``(X, y)`` in training mode, without updating anything.

        Returns
        -------
        loss : float
        grads : dict
            Keyed like :meth:`parameters`, device arrays.
        """
        Xd, Yd = self.prepare(X, y)
        # running statistics and random streams stay untouched; parameters stay the live arrays
        snapshot = self.snapshot(parameters=False)
        with self.ctx.errstate():  # overflow is reported below, once
            loss, grads = self.objective_and_gradients(Xd, Yd)
        self.restore(snapshot)
        check_finite_result([loss, *grads.values()], self.ctx,
                            "the loss or a gradient", Xd, self.parameters())
        return float(loss), grads

    @entry_point
    def train_step(self, X, y) -> float:
        """One optimizer update on one batch; returns the batch loss (before the update).

        Guarded like ``fit``: a step that makes the loss or a parameter NaN or inf is undone
        and raises :class:`DivergenceError`.
        """
        Xd, Yd = self.prepare(X, y)
        before = self.snapshot(optimizer=True, masks_only=True)
        with self.ctx.errstate():
            loss = float(self.with_finiteness(self.step(Xd, Yd)))
        if not math.isfinite(loss):
            self.restore(before)
            raise DivergenceError(
                "train_step produced a NaN or infinite loss or parameter; the step was undone. "
                "Likely cause: a learning rate too high, or unscaled inputs."
            )
        return loss

    # ------------------------------------------------------------------ training

    @entry_point
    def fit(self, X, y=None, epochs=100, batch_size=32, shuffle=True, verbose=0,
            callbacks=None, validation_split=None, validation_data=None, sample_weight=None,
            class_weight=None, on_nonfinite="raise", classes=None, steps_per_epoch=None,
            prefetch=2, distributed=None):
        """Train with mini-batch gradient descent.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features), or a data source
            Arrays in memory go to the device once. Larger-than-memory data is read batch by
            batch (:mod:`nnx.sources`): a NumPy memmap or ``.npy`` path, a Dask array, a
            dataset (``len`` and ``take(rows)``), or an iterable of ``(X, y)`` batches (then
            ``y`` is ``None``).
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
            Labels of any sortable type, one-hot / multilabel 0-1 matrix, or regression values.
        epochs : int, default 100
        batch_size : int or None, default 32
            ``None``: full-batch gradient descent; ``1``: pure stochastic; else mini-batches.
            Ignored by optimizers that re-evaluate the objective (``LBFGS``): they take one
            full-batch step per epoch.
        shuffle : bool or "block", default True
            Reshuffle the rows before every epoch (order drawn from the network's seed);
            ``"block"`` shuffles blocks of consecutive rows and the rows within each (for data
            read from disk; see :mod:`nnx.sources` for what each source gets).
        verbose : {0, 1, 2}, default 0
            As Keras: ``1`` shows a bar per epoch that stays on screen, ``2`` one line per
            epoch, both with the epoch's loss, validation scores and, for a classifier, the
            training accuracy (then also in the history as ``"accuracy"``: the rows the
            steps' own outputs classified right, counted on the device, read once per
            epoch). See :class:`~nnx.callbacks.ProgressBar`.
        callbacks : list of Callback, optional
            E.g. :class:`~nnx.callbacks.EarlyStopping`.
        validation_split : float in (0, 1), optional
            Hold out this fraction of the rows and report ``val_loss`` (and
            ``val_accuracy``) after every epoch: a random subset drawn from the network's
            seed for arrays in memory, the last rows as one block for a streamed source.
        validation_data : tuple (X_val, y_val), optional
            Explicit validation set (takes precedence over ``validation_split``).
        sample_weight : array-like, shape (n_samples,), optional
            Non-negative weight of every row.
        class_weight : dict or "balanced", optional
            Weight per class label; ``"balanced"`` is scikit-learn's
            ``n_samples / (n_classes * count(class))``. Multiplies ``sample_weight``.
            Weighted losses follow torch: cross-entropy divides the weighted sum by the sum
            of weights, element-wise losses (BCE, MSE) by the number of elements.

        on_nonfinite : {"raise", "warn"}, default "raise"
            When the loss, a gradient or a parameter becomes NaN or inf, training stops at
            that step and the last finite parameters are restored; then
            :class:`DivergenceError` is raised, or a :class:`NonFiniteWarning` issued and the
            history so far returned (its last epoch, the one that diverged, NaN under every
            key). Checked once per epoch (no host synchronisation per
            step), then the failing epoch is replayed step by step to name the step.
        classes : array-like, optional
            Every label, when the first batches of a source may not show them all.
        steps_per_epoch : int, optional
            Batches per epoch of an iterable source whose length is unknown.
        prefetch : int, default 2
            Batches of a streamed source read ahead on a host thread (0: none).
        distributed : {"mpi", "nccl", "torch"}, Communicator or DataParallel, optional
            Train data-parallel on the processes of an ``mpiexec``/``srun``/``torchrun``
            launch (:mod:`nnx.distributed`): every rank passes the same data and
            ``batch_size`` is the global batch, which gives the one-process fit.

        Returns
        -------
        History
            ``history.history["loss"]``: mean training objective of each epoch (penalties
            included); ``"val_loss"``, ``"val_accuracy"`` with validation data;
            ``"accuracy"`` with ``verbose``.

        Warns
        -----
        UnscaledInputWarning, NoProgressWarning
            Inputs far from standardized; a first fit whose loss ended above where it
            started (see :mod:`nnx.diagnostics`).
        """
        return training.fit(self, X, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                            verbose=verbose, callbacks=callbacks,
                            validation_split=validation_split,
                            validation_data=validation_data, sample_weight=sample_weight,
                            class_weight=class_weight, on_nonfinite=on_nonfinite,
                            classes=classes, steps_per_epoch=steps_per_epoch,
                            prefetch=prefetch, distributed=distributed)

    # ------------------------------------------------------------------ engine
    def check_batch_rows(self, n: int, batch_size) -> None:
        """Refuse a batching of ``n`` rows that would give a layer needing several rows per
        training batch (BatchNorm) a batch of one."""
        step = n if batch_size is None else min(batch_size, n)
        smallest = step if n % step == 0 else n % step
        for _, layer in self.named_layers():
            need = getattr(layer, "min_batch_size", 1)
            if smallest < need:
                raise ValueError(
                    f"{type(layer).__name__} needs at least {need} rows per training batch, but "
                    f"{n} rows in batches of {step} leave a batch of {smallest}; change batch_size"
                )

    def with_finiteness(self, total):
        """``total`` (a device scalar) turned NaN when any parameter is NaN or inf
        (``0 * inf`` is NaN), so one host transfer answers both questions. Sums beyond float
        range (weights ~1e35) count as divergence too."""
        xp = self.ctx.xp
        # one addition per parameter and one product (not two operations per parameter);
        # no stack (on NumPy the sums are scalars, which a stack converts one by one)
        sums = sum([xp.sum(owner[key]) for _, owner, key in self._param_refs])
        return total + 0.0 * sums

    def parameters_finite(self) -> bool:
        """Whether every parameter is finite (one host sync)."""
        return math.isfinite(float(self.with_finiteness(0.0)))

    # ------------------------------------------------------------------ inference

    def _require_fitted(self, what):
        if self.targets_ is None:
            raise ValueError(f"{what} needs a fitted network: call fit first")

    def _proba_device(self, X):
        Xd = self.prepare(X)
        with self.ctx.errstate():  # huge logits saturate the link: 0/1, not an error
            out, _ = self._forward(Xd, False)
            out = self.loss_.link.forward(self.ctx.xp, out)
        # ...but NaN (overflow in the layers, softmax of inf) would be silent garbage
        check_finite_result(out, self.ctx, "the network's output for X", Xd, self.parameters())
        return out

    def _chunks(self, X, y=None):
        """Host ``(X, y)`` chunks of a streamed ``X`` (see :mod:`nnx.sources`), in order."""
        source = source_for(X, y)
        if isinstance(source, IterableSource):
            for k, item in enumerate(source.fresh()):
                # (X,), (X, y) or (X, y, w): evaluate and predict do not weigh rows
                Xc, yc = ((item[0], item[1] if len(item) > 1 else None)
                          if isinstance(item, (tuple, list)) else (item, None))
                yield np.asarray(Xc), None if yc is None else np.asarray(yc)
            return
        n = len(source)
        chunk = max(1, GROUP_BYTES // (8 * (self.input_dim or 1)))  # about GROUP_BYTES
        for start in range(0, n, chunk):  # (a dataset's own weights play no part here)
            yield rows_item(source.take(np.arange(start, min(start + chunk, n))))[:2]

    def _streamed(self, method, X, y=None):
        """``method`` (predict, predict_proba) over a streamed ``X``, chunk by chunk."""
        return np.concatenate([method(Xc) for Xc, _ in self._chunks(X, y)])

    @entry_point
    def predict_proba(self, X, distributed=None):
        """Class probabilities, shape ``(n_samples, n_classes)``, columns following ``classes_``.

        A binary network (one sigmoid output) gives two columns ``[1 - p, p]``, as
        scikit-learn does; a multilabel network one probability per label. ``distributed=``
        as in :meth:`predict`.
        """
        self._require_fitted("predict_proba")
        if distributed is not None:
            return _distributed.predict(self, self.predict_proba, X, distributed)
        if is_streamed(X):
            return self._streamed(self.predict_proba, X)
        if self.targets_.kind == "regression":
            raise ValueError("predict_proba is for classifiers; this network does regression")
        p = self._proba_device(X)
        if self.targets_.kind == "binary":
            p = self.ctx.xp.concat([1.0 - p, p], axis=1)
        return to_namespace_of(X, p, self.ctx)

    @entry_point
    def predict(self, X, distributed=None):
        """Labels for classifiers (in the type of ``classes_``), values for regression.

        Regression with one output returns shape ``(n_samples,)``. ``distributed=`` (as in
        :meth:`fit`) splits the rows over the ranks and gathers the labels on rank 0 (a
        NumPy array; ``None`` on the other ranks).
        """
        self._require_fitted("predict")
        if distributed is not None:
            return _distributed.predict(self, self.predict, X, distributed)
        if is_streamed(X):
            return self._streamed(self.predict, X)
        xp = self.ctx.xp
        p = self._proba_device(X)
        if self.targets_.kind == "regression":
            out = p[:, 0] if p.shape[1] == 1 else p
            return to_namespace_of(X, out, self.ctx)
        idx = self.targets_.decode(p, xp)
        if self.ctx.owns(X) and self.targets_.classes_.dtype.kind in "biuf":
            if self.targets_.kind == "multilabel":
                return to_namespace_of(X, idx, self.ctx)
            classes = xp.asarray(self.targets_.classes_, device=self.ctx.device)
            return to_namespace_of(X, xp.take(classes, idx, axis=0), self.ctx)
        return self.targets_.labels(to_numpy(idx))

    @entry_point
    def evaluate(self, X, y, distributed=None) -> dict:
        """Loss (and accuracy for classifiers) on ``(X, y)`` in inference mode, as floats.

        The loss here is the data loss alone (no weight penalties), as Keras reports it.
        ``distributed=`` (as in :meth:`fit`) splits the rows over the ranks; every rank
        gets the global means.
        """
        self._require_fitted("evaluate")
        if distributed is not None:
            return _distributed.evaluate(self, X, y, distributed)
        if is_streamed(X):  # means weighted by the rows of each chunk
            parts = [(self.evaluate(Xc, yc), len(Xc)) for Xc, yc in self._chunks(X, y)]
            n = sum(rows for _, rows in parts)
            return {key: sum(s[key] * rows for s, rows in parts) / n for key in parts[0][0]}
        Xd, Yd = self.prepare(X, y)
        with self.ctx.errstate():  # an overflowing loss is reported below, once
            scores = self.scores(Xd, Yd)
        check_finite_result(scores["loss"], self.ctx, "the evaluated loss", Xd,
                            self.parameters())
        return scores

    def scores(self, Xd, Yd) -> dict:
        xp = self.ctx.xp
        with self.ctx.errstate():
            out, _ = self._forward(Xd, False)
        result = {"loss": float(self.loss_.value(xp, out, Yd))}
        if self.targets_.kind != "regression":
            result["accuracy"] = int(self.count_correct(out, Yd)) / out.shape[0]
        return result

    def count_correct(self, out, Yd):
        """How many rows the logits ``out`` classify right against the encoded targets
        ``Yd``, as a device integer (no host sync): a classifier's accuracy numerator."""
        xp = self.ctx.xp
        kind = self.targets_.kind
        pred = self.targets_.decode(self.loss_.link.forward(xp, out), xp)
        if kind == "binary":
            truth = xp.astype(Yd[:, 0] > 0.5, xp.int64)
        elif kind == "multiclass":
            truth = xp.argmax(Yd, axis=1)
        else:
            truth = xp.astype(Yd > 0.5, xp.int64)
        correct = pred == truth
        if kind == "multilabel":  # subset accuracy, as scikit-learn: every label right
            correct = xp.all(correct, axis=1)
        # an integer count: exact at any size (a float32 mean is not beyond 2**24 rows)
        return xp.sum(xp.astype(correct, xp.int64))

    @entry_point
    def score(self, X, y) -> float:
        """Accuracy for classifiers, :math:`R^2` for regression (scikit-learn's convention)."""
        if self.targets_ is not None and self.targets_.kind == "regression":
            if is_streamed(X):  # the sums of R^2, chunk by chunk
                n = ss_res = total = squares = 0.0  # sums; total, squares per column
                for Xc, yc in self._chunks(X, y):
                    t = check_regression_targets(check_targets(yc, len(Xc)),
                                                 dtype=self.ctx.dtype_name).astype(float)
                    t = t.reshape(len(Xc), -1)
                    p = to_numpy(self.predict(Xc)).astype(float).reshape(t.shape)
                    n += t.shape[0]
                    ss_res += float(((t - p) ** 2).sum())
                    total, squares = total + t.sum(axis=0), squares + (t * t).sum(axis=0)
                ss_tot = float(np.sum(squares - total * total / n))
                return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
            pred = to_numpy(self.predict(X)).astype(float)  # checks X first
            truth = check_targets(y, pred.shape[0])
            truth = check_regression_targets(truth, dtype=self.ctx.dtype_name).astype(float)
            if truth.size != pred.size:
                raise ValueError(f"y has {truth.size // pred.shape[0]} target column(s) but the "
                                 f"network has {self.n_outputs} output(s)")
            pred = pred.reshape(truth.shape)
            ss_res = float(((truth - pred) ** 2).sum())
            ss_tot = float(((truth - truth.mean(axis=0)) ** 2).sum())
            return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
        return self.evaluate(X, y)["accuracy"]

    # ------------------------------------------------------------------ config and state

    def get_config(self) -> dict:
        """What rebuilds this network's architecture and training setup (not its learned
        values, see :meth:`state_dict`): ``Network(**config, backend=...)`` is a twin. The
        layers and the optimizer in it are new, unbuilt copies."""
        self._require_built("get_config()")
        return {"layers": fresh(self.layers), "input_dim": int(self.input_dim),
                "loss": self.loss_, "optimizer": fresh(self.optimizer),
                "dtype": self.ctx.dtype_name, "seed": self.seed, "l1": self.l1, "l2": self.l2}

    def state_dict(self, include_optimizer: bool = True) -> dict:
        """Everything learned or drawn so far: parameters, layer state, the optimizer's state
        (with ``include_optimizer``), the labels, the random streams and the history, as host
        NumPy arrays and plain values. :meth:`load_state_dict` puts it back, so that training
        resumes exactly."""
        self._require_built("state_dict()")
        history = self.history_
        return {
            "parameters": {k: to_numpy(v) for k, v in self.parameters().items()},
            "state": {k: to_numpy(v) for k, v in self.state().items()},
            "optimizer_state": self.optimizer.state_dict() if include_optimizer else None,
            "targets": None if self.targets_ is None else self.targets_.state_dict(),
            "feature_names": self.feature_names_in_,
            "random": self.random.export_state(),
            "history": {"epoch": [int(e) for e in history.epoch],
                        "history": {k: list(v) for k, v in history.history.items()}},
        }

    @entry_point
    def load_state_dict(self, state: dict, saved_on: dict | None = None) -> None:
        """Restore a :meth:`state_dict` (the names and shapes must be this network's).

        ``saved_on`` (``{"backend": ..., "device": ...}``) says where the random streams were
        saved: a backend generator's state applies only on the same kind of device.

        Raises
        ------
        ValueError
            A missing or extra parameter or state name, or a wrong shape.
        """
        for key, current in (("parameters", self.parameters()), ("state", self.state())):
            if set(state[key]) != set(current):
                raise ValueError(f"the {key} are {sorted(state[key])}; this network has "
                                 f"{sorted(current)}")
        self.set_parameters(state["parameters"])
        self.set_state(state["state"])
        if state.get("optimizer_state") is not None:
            self.optimizer.load_state_dict(state["optimizer_state"])
        targets = state.get("targets")
        self.targets_ = None if targets is None else TargetEncoder.from_state_dict(targets)
        names = state.get("feature_names")
        self.feature_names_in_ = None if names is None else [str(n) for n in names]
        saved_on = saved_on or {}
        self.random.import_state(state["random"], saved_on.get("backend"),
                                 saved_on.get("device"))
        history = History()
        history.epoch = [int(e) for e in state["history"]["epoch"]]
        history.history = {str(k): [float(v) for v in values]
                           for k, values in state["history"]["history"].items()}
        self.history_ = history

    # ------------------------------------------------------------------ saving

    def save(self, path, include_optimizer=True, metadata=None):
        """Write the network to one file (no pickle), atomically; reload with :func:`nnx.load`.

        The file holds the architecture and hyperparameters (JSON), the parameters, the
        running statistics, the labels, the random streams and, with ``include_optimizer``,
        the optimizer's state, so that training resumes exactly. See :mod:`nnx.io` for the
        format.

        Parameters
        ----------
        path : str or os.PathLike
        include_optimizer : bool, default True
        metadata : dict, optional
            JSON-serializable notes, given back as ``loaded.metadata``.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        ValueError
            Unbuilt network, or a custom piece (layer, loss, activation, initializer, a
            learning rate that is a plain function) that cannot be rebuilt without running
            code.
        """
        from . import io

        return io.save(self, path, include_optimizer=include_optimizer, metadata=metadata)

    # ------------------------------------------------------------------ display

    def summary(self, print_fn=print, width: int = 60) -> None:
        """Print a table of the layers (nested ones indented), their output widths and
        parameter counts, as Keras's ``summary`` does.

        Parameters
        ----------
        print_fn : callable, default print
            Called with each line (``lines.append`` collects them).
        width : int, default 60
            Longest layer description; longer ones are cut with "...".
        """
        self._require_built("summary()")
        rows = [("layer", "type", "output", "params")]
        for prefix, layer in self.named_layers():
            depth = prefix.count(".layers.")
            text = repr(layer) if not layer.sublayers() else f"{type(layer).__name__}(...)"
            text = text if len(text) <= width else text[:width - 3] + "..."
            own = sum(math.prod(p.shape) for p in layer.params.values())
            rows.append(("  " * depth + prefix, text,
                         str(layer.output_dim), str(own) if own or not layer.sublayers() else ""))
        sizes = [max(len(row[i]) for row in rows) for i in range(4)]
        line = "  ".join(f"{{:{align}{size}}}" for align, size in zip("<<>>", sizes))
        total = sum(math.prod(p.shape) for p in self.parameters().values())
        print_fn(f"Network on {self.ctx.name} ({self.ctx.dtype_name}), loss={self.loss_!r}")
        for row in rows:
            print_fn(line.format(*row))
        print_fn(f"total parameters: {total}")

    def __repr__(self):
        return (
            f"Network(layers={self.layers!r}, backend={self.ctx.name!r}, "
            f"dtype={self.ctx.dtype_name!r})"
        )


register(Network)  # model files name it; a user's subclass registers with @nnx.register
