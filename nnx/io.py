"""Save and load networks in one file, without pickle.

``net.save(path)`` (or :func:`save`) writes everything needed to predict with the network on
any backend and to resume its training exactly; :func:`load` rebuilds it on the backend you
choose, whatever backend saved it (save on CuPy or torch, load on NumPy).

The file format (``format_version`` 2; files of version 1 still load)
---------------------------------------------------------------------
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
``seed``, ``l1``, ``l2``), ``layers``, ``loss`` and ``optimizer`` as object entries
``{"__object__": kind, "class": name, "config": {...}}`` (the constructor's arguments, from
``get_config``; objects inside a config, such as a Dense layer's activation, a Residual
block's layers or a learning-rate schedule, are object entries too), the optimizer's ``state_dict``
(step count, current rate, extra scalars) with ``{"__array__": entry}`` in place of arrays,
``targets`` (kind, task, outputs), ``random`` (the NumPy generators' states: initialization,
shuffling, host masks), ``history`` (the logs of every epoch) and free-form ``metadata``
(``nnx train`` stores the feature names, target and task there).

Safety
------
Loading never runs code from the file: arrays are read with ``allow_pickle=False`` (an
object array is refused), the header is plain JSON, and every class named in it is looked up
in the registries of :mod:`nnx.config`: nnx's own layers, activations, losses, optimizers,
schedules, regularizers and constraints, and the classes a user registered with
``@nnx.register``. A file that is not an nnx model, a truncated or altered file
(the zip's CRC-32 catches flipped bits), an unknown class, an inconsistent shape or a format
version newer than this nnx understands raises :class:`ModelFileError` (a ``ValueError``)
saying which. What the registries cannot express (an unregistered class, an unnamed
initializer function, or a learning rate given as a plain function) cannot be saved:
:func:`save` raises a ``ValueError`` naming the piece, before writing anything.

Writes are atomic: the archive goes to a temporary file in the destination folder, is
flushed and ``fsync``-ed, then renamed over the destination with :func:`os.replace`. A crash
or a kill in the middle of a save leaves the previous file intact (and at worst a stray
``.<name>.<pid>-<random>.tmp`` file next to it, which the next save of that name deletes
once its process is gone). An archive that would expand to far more than its size on disk
(a zip bomb) is refused before anything is read.

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

from . import initializers as _initializers
from .backend import DTYPES, backend_names, get_context, to_numpy
from .config import Configurable, lookup, registered_name, registry
from .layers import Layer
from .version import __version__

FORMAT = "nnx-model"
FORMAT_VERSION = 2
HEADER = "__nnx__"
_ZIP_MAGIC = b"PK\x03\x04"

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]


class ModelFileError(ValueError):
    """The file is not a loadable nnx model: not one at all, damaged, or from a newer nnx."""


# --------------------------------------------------------------------------- objects
# Building blocks are written as {"__object__": kind, "class": name, "config": {...}}, their
# config encoded the same way all the way down (a Residual's layers, a Dense's activation,
# a warm-up's inner schedule). Loading looks classes up in nnx.config's registries and
# nowhere else, so a file can only ever create registered classes, with JSON values.


def _encode_object(obj, writer, where):
    kind = getattr(type(obj), "registry_kind", None) or "piece"
    name = registered_name(obj)
    if name is None and type(obj).__module__.startswith("nnx.") and kind != "piece":
        raise ValueError(
            f"cannot save {where}: the {kind} {obj!r} is internal to nnx and not part of the "
            "model format (a scikit-learn estimator's network_: pickle the estimator instead)"
        )
    if name is None:
        known = ", ".join(sorted(registry(kind))) or "none"
        raise ValueError(
            f"cannot save {where}: the {kind} {obj!r} is not registered ({known}); a file "
            "can only name registered classes, because loading must not run code: register "
            f"yours with @nnx.register"
        )
    return {"__object__": kind, "class": name,
            "config": writer.tree(obj.get_config(), where)}


def _upgrade_v1(header: dict) -> dict:
    """A format-1 header in format 2's terms: class entries, activation names and schedule
    markers become object entries (the arrays are laid out the same)."""
    from .activations import ACTIVATIONS

    def node(kind, name, config):
        return {"__object__": kind, "class": name, "config": config}

    def part(kind, spec):
        return None if spec is None else node(kind, spec["class"], upgrade(spec.get("config", {})))

    def activation(spec):
        if spec is None:
            return None
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        cls = ACTIVATIONS.get(spec.pop("name", None))
        return node("activation", getattr(cls, "__name__", "?"), spec)

    def layer(spec):
        if spec.get("class") == "Residual":
            return node("layer", "Residual", {"layers": [layer(s) for s in spec["layers"]]})
        config = dict(spec.get("config", {}))
        if "activation" in config:
            config["activation"] = activation(config["activation"])
        config["kernel_regularizer"] = part("regularizer", config.get("kernel_regularizer"))
        config["kernel_constraint"] = part("constraint", config.get("kernel_constraint"))
        if spec.get("class") != "Dense":
            config = {k: v for k, v in config.items() if v is not None or k == "activation"}
        return node("layer", spec.get("class"), config)

    def upgrade(value):
        if isinstance(value, dict):
            if "__schedule__" in value:
                return node("schedule", value["__schedule__"], upgrade(value.get("config", {})))
            return {k: upgrade(v) for k, v in value.items()}
        if isinstance(value, list):
            return [upgrade(v) for v in value]
        return value

    header = upgrade(dict(header))
    header["layers"] = [layer(spec) for spec in header["layers"]]
    header["loss"] = part("loss", header["loss"])
    header["optimizer"] = part("optimizer", header["optimizer"])
    return header


def _decode_object(node, reader):
    if set(node) != {"__object__", "class", "config"} or not isinstance(node["config"], dict):
        raise ModelFileError(f"malformed object entry {node!r}")
    try:
        cls = lookup(node["__object__"], node["class"])
    except KeyError as exc:
        raise ModelFileError(f"{exc.args[0]} (in the model file)") from None
    return cls(**reader.tree(node["config"]))


# --------------------------------------------------------------------------- saving


_ENTRY = {"optimizer_state": "optimizer"}  # archive folder of a state_dict key, where it differs


class _Writer:
    """Collects the arrays of the archive while the JSON header is built."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, key: str, value) -> dict:
        arr = np.ascontiguousarray(to_numpy(value))
        if arr.dtype == object:  # labels: strings become a unicode array (no pickle needed)
            if not all(isinstance(v, str) for v in arr.ravel().tolist()):
                raise ValueError(f"cannot save {key}: {arr.tolist()!r} holds values other "
                                 "than numbers, booleans or strings")
            arr = arr.astype(str)
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
        if isinstance(value, Configurable):
            return _encode_object(value, self, key)
        if callable(value) and _initializers.name_of(value) is not None:
            return _initializers.name_of(value)  # a named initializer function: its name
        raise ValueError(
            f"cannot save {key}: {value!r} (a {type(value).__name__}) is not serializable; "
            "a file holds numbers, strings, arrays and registered nnx classes (a learning "
            "rate that is a plain function, or an unnamed initializer, cannot be saved)"
        )


def _json_seed(seed):
    if seed is None or isinstance(seed, numbers.Integral):
        return None if seed is None else int(seed)
    try:
        return [int(s) for s in seed]
    except TypeError:
        raise ValueError(f"cannot save the network's seed {seed!r}: use an integer") from None


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
    if getattr(network, "registry_kind", None) != "model":
        raise ValueError(f"save needs an nnx.Network; got {type(network).__name__}")
    if registered_name(network) is None:
        raise ValueError(f"cannot save a {type(network).__name__}: a file names its model "
                         "class, so register it with @nnx.register")
    if not network.built:
        raise ValueError("save needs a built network: call fit first or pass input_dim=")
    if metadata is None:
        metadata = getattr(network, "metadata", None)
    writer = _Writer()
    ctx = network.ctx
    config = network.get_config()
    state = network.state_dict(include_optimizer)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnx_version": __version__,
        "saved_on": {"backend": ctx.name, "device": ctx.device_name},
        "model": registered_name(network),
        "network": {"input_dim": config["input_dim"], "n_outputs": int(network.n_outputs),
                    "dtype": config["dtype"], "seed": _json_seed(config["seed"]),
                    "l1": float(config["l1"]), "l2": float(config["l2"])},
        "layers": [_encode_object(layer, writer, f"layers.{i}")
                   for i, layer in enumerate(config["layers"])],
        "loss": _encode_object(config["loss"], writer, "the loss"),
        "optimizer": _encode_object(config["optimizer"], writer, "the optimizer"),
        # the archive's entries are named after these keys (parameters/layers.0.W, ...)
        **{key: writer.tree(value, _ENTRY.get(key, key)) for key, value in state.items()},
        "metadata": _check_metadata(metadata),
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
    _remove_stale_temporaries(folder, path.name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        # the writer's process id in the name: a later save knows a leftover from a crash
        tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
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


def _remove_stale_temporaries(folder, name) -> None:
    """Delete temporary files of earlier saves of ``name`` whose writing process is gone (a
    crash or a kill mid-save); a save still running elsewhere keeps its file."""
    for tmp in folder.glob(f".{name}.*-*.tmp"):
        pid = tmp.name[len(name) + 2:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: asks only whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or this platform cannot tell: keep it
    return True


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
        _check_expansion(path, where)
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


#: an archive whose entries expand to more than this times its size on disk is refused
#: (nnx writes them uncompressed: about 1x; a compressed copy of float data: about 1-2x)
MAX_EXPANSION = 16


def _check_expansion(path, where) -> None:
    """Refuse a crafted archive that would expand to far more than its size (a zip bomb)
    before any entry is read."""
    size = max(os.path.getsize(path), 1)
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    if total > MAX_EXPANSION * size + 2**20:
        raise ModelFileError(
            f"{where!r} would expand to {total:,} bytes from {size:,} on disk; nnx writes "
            "its model files uncompressed, so this is not one (refused without reading it)")


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
            if "__object__" in value:
                return _decode_object(value, self)
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value


def _check_shapes(layers, width, arrays):
    """Every layer's parameters and state must have the shapes its config builds, so building
    allocates no more than the file holds (a tampered ``units`` cannot ask for terabytes)."""
    for i, layer in enumerate(layers):
        try:
            width, shapes = layer.shapes(width)
        except ValueError as exc:
            raise ModelFileError(f"layers.{i}: {exc}") from None
        for name, shape in shapes.items():
            saved = arrays.get(f"layers.{i}.{name}")
            if saved is None or tuple(saved.shape) != tuple(shape):
                raise ModelFileError(
                    f"layers.{i}.{name}: {type(layer).__name__} builds shape {tuple(shape)}; "
                    f"the file has {None if saved is None else tuple(saved.shape)}")


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
    if header["format_version"] == 1:
        try:
            header = _upgrade_v1(header)
        except (*_DAMAGE, AttributeError) as exc:
            raise ModelFileError(f"{str(path)!r} is damaged or altered: {exc}") from exc
    saved_on = header.get("saved_on") if isinstance(header.get("saved_on"), dict) else {}
    net_spec = header.get("network") if isinstance(header.get("network"), dict) else {}
    chosen = backend or saved_on.get("backend", "numpy")
    if backend is None and chosen not in backend_names():
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
    spec = header["network"]
    layers = [reader.tree(node) for node in header["layers"]]
    if not all(isinstance(layer, Layer) for layer in layers):
        raise ModelFileError("the layers entry names something that is not a layer")
    params = {name: reader.array(ref, "f") for name, ref in header["parameters"].items()}
    states = {name: reader.array(ref, "f") for name, ref in header["state"].items()}
    input_dim = spec["input_dim"]
    if isinstance(input_dim, bool) or not isinstance(input_dim, int):
        raise ModelFileError(f"invalid input_dim {input_dim!r}")
    _check_shapes(layers, input_dim, {**params, **states})
    try:
        model = lookup("model", header.get("model", "Network"))
    except KeyError as exc:
        raise ModelFileError(exc.args[0]) from None
    net = model(layers, input_dim=input_dim, loss=reader.tree(header["loss"]),
                optimizer=reader.tree(header["optimizer"]), backend=ctx, seed=spec["seed"],
                l1=spec["l1"], l2=spec["l2"])
    state = {key: reader.tree(header[key]) for key in
             ("parameters", "state", "optimizer_state", "targets", "random", "history")}
    state["feature_names"] = header.get("feature_names")  # absent from older files
    net.load_state_dict(state, header.get("saved_on", {}))
    metadata = header.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(f"metadata must be a JSON object; got {metadata!r}")
    net.metadata = metadata
    return net
