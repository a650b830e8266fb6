"""Save and load networks in one file, without pickle.

``net.save(path)`` (or :func:`save`) writes everything needed to predict with the network on
any backend and to resume its training exactly; :func:`load` rebuilds it on the backend you
choose, whatever backend saved it (save on CuPy or torch, load on NumPy).

The file format (``format_version`` 1)
--------------------------------------
An ordinary ``.npz`` archive (a zip of ``.npy`` arrays, as written by :func:`numpy.savez`),
readable with ``numpy.load(path, allow_pickle=False)`` and nothing else:

==========================  ================================================================
entry                       content
==========================  ================================================================
``__nnx__``                 the header: UTF-8 JSON as a 1-D ``uint8`` array (below)
``parameters/<name>``       every parameter, e.g. ``parameters/layers.0.W`` of shape
                            ``(in, out)``, in the network's dtype
``state/<name>``            non-trainable arrays (BatchNorm ``running_mean``/``running_var``)
``optimizer/...``           the optimizer's slots (Adam's ``m``, ``v``, ...), when saved
``targets/classes``         the class labels (numbers, booleans, or a unicode string array)
``random/mask_native``      the backend generator's state (torch), as ``uint8``
==========================  ================================================================

The JSON header holds ``format`` (``"nnx-model"``), ``format_version``, ``nnx_version``,
``saved_on`` (backend and device), ``network`` (``input_dim``, ``n_outputs``, ``dtype``,
``seed``, ``l1``, ``l2``), ``layers`` (``{"class": "Dense", "config": {...}}`` per layer:
units, activation, initializer, regularizer, constraint...; a ``Residual`` lists its inner
layers), ``loss`` and ``optimizer`` (class name and hyperparameters, a learning-rate
schedule as ``{"__schedule__": class, "config": {...}}``), the optimizer's ``state_dict``
(step count, current rate, extra scalars) with ``{"__array__": entry}`` in place of arrays,
``targets`` (kind, task, outputs), ``random`` (the NumPy generators' states: initialization,
shuffling, host masks), ``history`` (the logs of every epoch) and free-form ``metadata``
(``nnx train`` stores the feature names, target and task there).

Safety
------
Loading never runs code from the file: arrays are read with ``allow_pickle=False`` (an
object array is refused), the header is plain JSON, and every class named in it is looked up
in an explicit registry of nnx's own layers, activations, losses, optimizers, schedules,
regularizers and constraints. A file that is not an nnx model, a truncated or altered file
(the zip's CRC-32 catches flipped bits), an unknown class, an inconsistent shape or a format
version newer than this nnx understands raises :class:`ModelFileError` (a ``ValueError``)
saying which. What the registry cannot express (a custom loss, layer, activation,
initializer, or a learning rate given as a plain function) cannot be saved: :func:`save`
raises a ``ValueError`` naming the piece, before writing anything.

Writes are atomic: the archive goes to a temporary file in the destination folder, is
flushed and ``fsync``-ed, then renamed over the destination with :func:`os.replace`. A crash
or a kill in the middle of a save leaves the previous file intact (and at worst a stray
``.<name>.<random>.tmp`` file next to it).

Exact resume: with the optimizer state (the default) and the random streams saved, training
10 epochs, saving, loading on the same backend and training 10 more gives bit-identical
parameters to 20 uninterrupted epochs (shuffling and dropout masks included). One limit: the
native generator's state (torch's, CuPy's) is only restored on the backend (and device type)
that saved it. (On CuPy, exact resume is checked by the ``gpu``-marked tests, which run on
a machine with a GPU.)

Pickle
------
The scikit-learn estimators (:mod:`nnx.sklearn`) pickle and unpickle (``joblib.dump`` /
``joblib.load``), as scikit-learn users expect. **Unpickling runs code chosen by whoever
wrote the file: load pickles from trusted sources only.** For models you exchange, save an
:class:`~nnx.Network` with :func:`save` and read it with :func:`load`. (An estimator's
``network_`` uses scikit-learn's objective and initializer, which this format does not name
yet, so :func:`save` refuses it with a message saying so.)
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import secrets
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import __version__
from . import activations as _activations
from . import initializers as _initializers
from . import layers as _layers
from . import losses as _losses
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import schedules as _schedules
from .backend import BACKENDS, DTYPES, get_context, to_numpy

FORMAT = "nnx-model"
FORMAT_VERSION = 1
HEADER = "__nnx__"
_ZIP_MAGIC = b"PK\x03\x04"

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]


class ModelFileError(ValueError):
    """The file is not a loadable nnx model: not one at all, damaged, or from a newer nnx."""


# --------------------------------------------------------------------------- registries
# Everything a file may name. Loading looks names up here and nowhere else, so a file can
# only ever create these classes, with JSON values as arguments.


def _by_class_name(classes):
    return {cls.__name__: cls for cls in classes}


LAYERS = _by_class_name([_layers.Dense, _layers.Activation, _layers.Dropout,
                         _layers.BatchNorm, _layers.LayerNorm, _layers.Residual])
LOSSES = _by_class_name(set(_losses.LOSSES.values()))
OPTIMIZERS = _by_class_name(cls for cls in _optimizers.OPTIMIZERS.values()
                            if isinstance(cls, type))
SCHEDULES = _by_class_name(cls for cls in vars(_schedules).values()
                           if isinstance(cls, type) and issubclass(cls, _schedules.Schedule)
                           and cls is not _schedules.Schedule)
REGULARIZERS = _by_class_name([_regularizers.L1L2, _regularizers.L1, _regularizers.L2])
CONSTRAINTS = _by_class_name([_regularizers.MaxNorm])


def _registered(registry, obj, what, where):
    """The registry name of ``obj``'s class, or a ValueError naming the piece."""
    name = type(obj).__name__
    if registry.get(name) is not type(obj):
        raise ValueError(
            f"cannot save {where}: {what} {obj!r} is not one of nnx's own "
            f"({', '.join(sorted(registry))}); a file can only name those, because loading "
            "must not run code"
        )
    return name


# --------------------------------------------------------------------------- saving


class _Writer:
    """Collects the arrays of the archive while the JSON header is built."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, key: str, value) -> dict:
        arr = np.ascontiguousarray(to_numpy(value))
        if arr.dtype.kind not in "biufU":
            raise ValueError(f"cannot save {key}: arrays of dtype {arr.dtype} are not supported")
        self.arrays[key] = arr
        return {"__array__": key}

    def tree(self, value, key: str):
        """JSON-ready copy of nested dicts/lists of scalars and arrays (arrays become entries)."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, np.ndarray) or hasattr(value, "__array_namespace__"):
            return self.array(key, value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ValueError(f"cannot save {key}: key {k!r} is not a string")
                out[k] = self.tree(v, f"{key}/{k}")
            return out
        if isinstance(value, (list, tuple)):
            return [self.tree(v, f"{key}/{i}") for i, v in enumerate(value)]
        if isinstance(value, _schedules.Schedule):
            return _schedule_spec(value, self, key)
        raise ValueError(
            f"cannot save {key}: {value!r} (a {type(value).__name__}) is not serializable; "
            "learning rates must be numbers or nnx.schedules schedules"
        )


def _schedule_spec(schedule, writer, where):
    name = _registered(SCHEDULES, schedule, "the schedule", where)
    return {"__schedule__": name, "config": writer.tree(schedule.get_config(), where)}


def _activation_spec(activation, where):
    if activation is None:
        return None
    name = getattr(activation, "name", None)
    if _activations.ACTIVATIONS.get(name) is not type(activation):
        raise ValueError(
            f"cannot save {where}: the activation {activation!r} is not one of nnx's own "
            f"({', '.join(sorted(_activations.ACTIVATIONS))}); loading must not run code"
        )
    return {"name": name, **activation.get_config()}


def _initializer_spec(initializer, where):
    if initializer is None or isinstance(initializer, str):
        return initializer
    name = _initializers.name_of(initializer)
    if name is None:
        raise ValueError(
            f"cannot save {where}: the kernel_initializer {initializer!r} is a custom function; "
            f"use a named one ({', '.join(sorted(_initializers.INITIALIZERS))})"
        )
    return name


def _layer_spec(layer, where):
    name = _registered(LAYERS, layer, "the layer", where)
    if isinstance(layer, _layers.Residual):
        return {"class": name, "layers": [_layer_spec(inner, f"{where}.layers.{j}")
                                          for j, inner in enumerate(layer.layers)]}
    if isinstance(layer, _layers.Dense):
        reg, con = layer.kernel_regularizer, layer.kernel_constraint
        config = {
            "units": layer.units,
            "activation": _activation_spec(layer.activation, where),
            "kernel_initializer": _initializer_spec(layer.kernel_initializer, where),
            "use_bias": layer.use_bias,
            "kernel_regularizer": None if reg is None else {
                "class": _registered(REGULARIZERS, reg, "the kernel_regularizer", where),
                "config": reg.get_config()},
            "kernel_constraint": None if con is None else {
                "class": _registered(CONSTRAINTS, con, "the kernel_constraint", where),
                "config": con.get_config()},
        }
    elif isinstance(layer, _layers.Activation):
        config = {"activation": _activation_spec(layer.activation, where)}
    else:
        config = layer.get_config()
    return {"class": name, "config": config}


def _json_seed(seed):
    if seed is None or isinstance(seed, numbers.Integral):
        return None if seed is None else int(seed)
    try:
        return [int(s) for s in seed]
    except TypeError:
        raise ValueError(f"cannot save the network's seed {seed!r}: use an integer") from None


def _classes_entry(classes, writer):
    arr = np.asarray(classes)
    if arr.dtype == object:
        if not all(isinstance(c, str) for c in arr.tolist()):
            raise ValueError(
                f"cannot save the class labels {arr.tolist()!r}: labels must be numbers, "
                "booleans or strings"
            )
        arr = arr.astype(str)  # a unicode array: no pickle needed
    return writer.array("targets/classes", arr)


def _random_state(net, writer):
    return writer.tree(net.random.export_state(), "random")


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise ValueError(f"metadata must be a dict with string keys; got {metadata!r}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serializable (numbers, strings, lists, "
                         f"dicts): {exc}") from None
    return metadata


def save(network, path, *, include_optimizer=True, metadata=None) -> Path:
    """Write ``network`` to one file, atomically (see the module docstring for the format).

    Parameters
    ----------
    network : Network
        A built network (fitted, or created with ``input_dim=``).
    path : str or os.PathLike
        Destination; ``.nnx`` is the customary suffix (none is added).
    include_optimizer : bool, default True
        Also save the optimizer's state (moments, step count, current rate), needed to resume
        training exactly. Without it a loaded network starts a fresh optimizer.
    metadata : dict, optional
        JSON-serializable information stored with the model and given back as
        ``loaded.metadata``. Default: the network's own ``metadata`` attribute if it has one
        (a loaded network keeps its metadata when saved again).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        An unbuilt network, or a piece that cannot be rebuilt without running code (a custom
        layer, loss, activation, initializer, or a learning rate that is a plain function);
        nothing is written then.
    OSError
        The folder does not exist or is not writable.
    """
    from .network import Network

    if not isinstance(network, Network):
        raise ValueError(f"save needs an nnx.Network; got {type(network).__name__}")
    if not network.built:
        raise ValueError("save needs a built network: call fit first or pass input_dim=")
    if metadata is None:
        metadata = getattr(network, "metadata", None)
    writer = _Writer()
    ctx = network.ctx
    opt = network.optimizer
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnx_version": __version__,
        "saved_on": {"backend": ctx.name, "device": ctx.device_name},
        "network": {"input_dim": int(network.input_dim), "n_outputs": int(network.n_outputs),
                    "dtype": ctx.dtype_name, "seed": _json_seed(network.seed),
                    "l1": float(network.l1), "l2": float(network.l2)},
        "layers": [_layer_spec(layer, f"layers.{i}") for i, layer in enumerate(network.layers)],
        "loss": {"class": _registered(LOSSES, network.loss_, "the loss", "the loss"),
                 "config": network.loss_.get_config()},
        "optimizer": {"class": _registered(OPTIMIZERS, opt, "the optimizer", "the optimizer"),
                      "config": writer.tree(opt.get_config(), "optimizer config")},
        "parameters": {name: writer.array(f"parameters/{name}", arr)
                       for name, arr in network.parameters().items()},
        "state": {name: writer.array(f"state/{name}", arr)
                  for name, arr in network.state().items()},
        "optimizer_state": writer.tree(opt.state_dict(), "optimizer") if include_optimizer
        else None,
        "targets": None,
        "random": _random_state(network, writer),
        "history": {"epoch": [int(e) for e in network.history_.epoch],
                    "history": writer.tree(network.history_.history, "history")},
        "metadata": _check_metadata(metadata),
    }
    targets = network.targets_
    if targets is not None:
        header["targets"] = {
            "kind": targets.kind, "task": targets.task, "n_outputs": int(targets.n_outputs),
            "classes": None if targets.classes_ is None else _classes_entry(targets.classes_,
                                                                            writer),
        }
    text = json.dumps(header)  # NaN/inf in a history are written as NaN/Infinity
    writer.arrays[HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return _atomic_write(path, writer.arrays)


def _atomic_write(path, arrays) -> Path:
    """Write the archive to a temporary file in the same folder, fsync, then rename it."""
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"cannot save the model to {str(path)!r}: it is a folder")
    folder = path.parent
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            # 0o666 filtered by the umask: the file gets the permissions of any new file
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)
    return path


def _fsync_folder(folder) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened on Windows."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- reading

_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, TypeError,
           UnicodeDecodeError, OverflowError)


def _open(path):
    """Header dict and ``entry -> ndarray`` of a model file, after the container checks."""
    path = Path(os.fspath(path))
    with open(path, "rb") as f:
        magic = f.read(4)
    where = str(path)
    if magic != _ZIP_MAGIC:
        raise ModelFileError(f"{where!r} is not an nnx model file (not a zip/npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if HEADER not in npz.files:
                raise ModelFileError(
                    f"{where!r} is not an nnx model file (an npz archive without the "
                    f"{HEADER!r} header)")
            raw = npz[HEADER]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise ModelFileError(f"{where!r}: the {HEADER!r} header is not a byte array")
            header = json.loads(raw.tobytes().decode("utf-8"))
            _check_header(header, where)
            arrays = {key: npz[key] for key in npz.files if key != HEADER}
    except ModelFileError:
        raise
    except _DAMAGE as exc:
        raise ModelFileError(
            f"{where!r} is damaged (truncated or altered) or not an nnx model: "
            f"{type(exc).__name__}: {exc}") from exc
    return header, arrays


def _check_header(header, where):
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{where!r} is not an nnx model file (no {FORMAT!r} header)")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{where!r} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where!r} was written by nnx {header.get('nnx_version')!r} in format version "
            f"{version}; this nnx {__version__} reads format version {FORMAT_VERSION} and "
            "older: upgrade nnx to load it"
        )


def read_header(path) -> dict:
    """The JSON header of a model file (architecture, versions, metadata), without building.

    Raises
    ------
    ModelFileError
        Not an nnx model, damaged, or a newer format.
    """
    return _open(path)[0]


# --------------------------------------------------------------------------- loading


class _Reader:
    def __init__(self, arrays):
        self.arrays = arrays

    def array(self, ref, kinds="biufU"):
        if not (isinstance(ref, dict) and set(ref) == {"__array__"}):
            raise ModelFileError(f"expected an array reference, got {ref!r}")
        key = ref["__array__"]
        if key not in self.arrays:
            raise ModelFileError(f"the header refers to a missing array entry {key!r}")
        arr = self.arrays[key]
        if arr.dtype.kind not in kinds:
            raise ModelFileError(f"array entry {key!r} has an unexpected dtype {arr.dtype}")
        return arr

    def tree(self, value):
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return self.array(value)
            if "__schedule__" in value:
                return _decode_schedule(value, self)
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value


def _lookup(registry, name, what):
    if not isinstance(name, str) or name not in registry:
        raise ModelFileError(
            f"unknown {what} {name!r} in the model file; this nnx knows "
            f"{', '.join(sorted(registry))}")
    return registry[name]


def _config(spec):
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"expected a config dict, got {config!r}")
    return config


def _decode_schedule(spec, reader):
    cls = _lookup(SCHEDULES, spec["__schedule__"], "schedule")
    return cls(**reader.tree(_config(spec)))


def _decode_activation(spec):
    if spec is None:
        return None
    if isinstance(spec, str):  # tolerated: a bare name
        spec = {"name": spec}
    spec = dict(spec)
    cls = _lookup(_activations.ACTIVATIONS, spec.pop("name"), "activation")
    return cls(**spec)


def _decode_part(spec, registry, what):
    if spec is None:
        return None
    return _lookup(registry, spec["class"], what)(**_config(spec))


def _decode_layer(spec):
    cls = _lookup(LAYERS, spec["class"], "layer")
    if cls is _layers.Residual:
        return cls([_decode_layer(inner) for inner in spec["layers"]])
    config = dict(_config(spec))
    if cls is _layers.Dense:
        config["activation"] = _decode_activation(config.get("activation"))
        config["kernel_regularizer"] = _decode_part(config.get("kernel_regularizer"),
                                                    REGULARIZERS, "regularizer")
        config["kernel_constraint"] = _decode_part(config.get("kernel_constraint"),
                                                   CONSTRAINTS, "constraint")
    elif cls is _layers.Activation:
        config["activation"] = _decode_activation(config["activation"])
    return cls(**config)


def _check_widths(layers, width, params, prefix="layers"):
    """Every Dense width must match its saved kernel, so building allocates no more than the
    file holds (a tampered ``units`` cannot ask for terabytes). Returns the output width."""
    for i, layer in enumerate(layers):
        name = f"{prefix}.{i}"
        if isinstance(layer, _layers.Residual):
            if _check_widths(layer.layers, width, params, f"{name}.layers") != width:
                raise ModelFileError(f"{name}: the Residual block changes the width")
        elif isinstance(layer, _layers.Dense):
            W = params.get(f"{name}.W")
            if W is None or tuple(W.shape) != (width, layer.units):
                raise ModelFileError(
                    f"{name}: a Dense layer {width} -> {layer.units} needs a kernel of shape "
                    f"{(width, layer.units)}; the file has "
                    f"{None if W is None else tuple(W.shape)}")
            width = layer.units
    return width


def load(path, backend=None, device=None, dtype=None):
    """Rebuild a network saved by :func:`save` / ``Network.save``, on any backend.

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"numpy", "cupy", "torch", "array_api_strict"}, optional
        Default: the backend that saved the file.
    device : optional
        As for :class:`~nnx.Network` (default: the backend's default device).
    dtype : {"float32", "float64"}, optional
        Default: the dtype it was saved in. Another dtype converts the parameters (exact
        resume needs the saved one).

    Returns
    -------
    Network
        With parameters, running statistics, optimizer state (when saved), labels,
        random streams, history and ``metadata`` (a dict) restored.

    Raises
    ------
    ModelFileError (a ValueError)
        Not an nnx model, damaged or altered, or written by a newer nnx.
    ImportError
        The backend is not usable here.
    FileNotFoundError
    """
    header, arrays = _open(path)
    saved_on = header.get("saved_on") if isinstance(header.get("saved_on"), dict) else {}
    net_spec = header.get("network") if isinstance(header.get("network"), dict) else {}
    chosen = backend or saved_on.get("backend", "numpy")
    if backend is None and chosen not in BACKENDS:
        raise ModelFileError(f"{str(path)!r} names an unknown backend {chosen!r}")
    if dtype is None:
        dtype = net_spec.get("dtype")
        if dtype not in DTYPES:
            raise ModelFileError(f"{str(path)!r} names an unknown dtype {dtype!r}")
    try:
        ctx = get_context(chosen, device, dtype)
    except ImportError as exc:
        if backend is None:
            raise ImportError(f"{exc} (the model was saved on {chosen!r}; pass backend='numpy' "
                              "to load it on this machine)") from exc
        raise
    try:
        with ctx.scope():
            return _rebuild(header, _Reader(arrays), ctx)
    except ModelFileError as exc:
        raise ModelFileError(f"{str(path)!r}: {exc}") from exc
    except (*_DAMAGE, IndexError, AttributeError, RuntimeError) as exc:
        raise ModelFileError(
            f"{str(path)!r} is damaged or altered (its content is inconsistent): "
            f"{type(exc).__name__}: {exc}") from exc


def _rebuild(header, reader, ctx):
    from .callbacks import History
    from .data import TargetEncoder
    from .network import Network

    spec = header["network"]
    layers = [_decode_layer(s) for s in header["layers"]]
    params = {name: reader.array(ref, "f") for name, ref in header["parameters"].items()}
    input_dim = spec["input_dim"]
    if isinstance(input_dim, bool) or not isinstance(input_dim, int):
        raise ModelFileError(f"invalid input_dim {input_dim!r}")
    _check_widths(layers, input_dim, params)
    loss = _lookup(LOSSES, header["loss"]["class"], "loss")(**_config(header["loss"]))
    opt_cls = _lookup(OPTIMIZERS, header["optimizer"]["class"], "optimizer")
    optimizer = opt_cls(**reader.tree(_config(header["optimizer"])))
    seed = spec["seed"]
    net = Network(layers, input_dim=input_dim, loss=loss, optimizer=optimizer, backend=ctx,
                  seed=seed, l1=spec["l1"], l2=spec["l2"])

    if set(params) != set(net.parameters()):
        raise ModelFileError(f"the file has parameters {sorted(params)}; its architecture "
                             f"has {sorted(net.parameters())}")
    net.set_parameters(params)
    states = {name: reader.array(ref, "f") for name, ref in header["state"].items()}
    if set(states) != set(net.state()):
        raise ModelFileError(f"the file has layer state {sorted(states)}; its architecture "
                             f"has {sorted(net.state())}")
    net.set_state(states)

    if header["optimizer_state"] is not None:
        net.optimizer.load_state_dict(reader.tree(header["optimizer_state"]))

    targets = header["targets"]
    if targets is not None:
        kinds = ("binary", "multiclass", "multilabel", "regression")
        if targets["kind"] not in kinds:
            raise ModelFileError(f"unknown target kind {targets['kind']!r}")
        encoder = TargetEncoder(targets["task"], int(targets["n_outputs"]))
        encoder.kind = targets["kind"]
        if targets["classes"] is not None:
            encoder.classes_ = reader.array(targets["classes"], "biufU")
        if (encoder.kind == "regression") != (encoder.classes_ is None):
            raise ModelFileError("the target kind and the class labels disagree")
        net.targets_ = encoder

    saved_on = header.get("saved_on", {})
    net.random.import_state(reader.tree(header["random"]), saved_on.get("backend"),
                            saved_on.get("device"))

    history = History()
    history.epoch = [int(e) for e in header["history"]["epoch"]]
    history.history = {str(k): [float(v) for v in values]
                       for k, values in header["history"]["history"].items()}
    net.history_ = history
    metadata = header.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(f"metadata must be a JSON object; got {metadata!r}")
    net.metadata = metadata
    return net
