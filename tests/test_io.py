"""Saving and loading without pickle: complete round trips on every backend, exact resume,
cross-backend loading, refusal of damaged or hostile files, atomic writes (a killed writer
leaves a complete file), ModelCheckpoint, and pickling of the scikit-learn estimators."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import nnx
from nnx import io as nio
from nnx import schedules
from nnx.callbacks import Callback, ModelCheckpoint
from nnx.layers import Activation, BatchNorm, Dense, Dropout, Layer, LayerNorm, Residual
from nnx.optimizers import SGD, Adam, NAdam
from nnx.regularizers import L1L2, MaxNorm

ROOT = Path(__file__).resolve().parents[1]


def _data(n=60, d=4, seed=0, labels=("ant", "bee", "cat")):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.asarray(labels)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    return X, y


def _host(mapping):
    """Host copies (NumPy parameters are updated in place: a view would follow them)."""
    return {k: np.array(nnx.to_numpy(v), copy=True) for k, v in mapping.items()}


def _assert_same_arrays(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(nnx.to_numpy(a[name]), nnx.to_numpy(b[name]),
                                      err_msg=name)


def _assert_same_tree(a, b, where="state"):
    """Deep equality of optimizer state dicts (arrays bit for bit)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def _strict_device():
    import array_api_strict

    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    return array_api_strict.Device("device1")


def _target(name):
    """Backend keyword arguments for loading on ``name``."""
    if name == "array_api_strict":
        pytest.importorskip("array_api_strict")
        return {"backend": name, "device": _strict_device()}
    if name == "torch":
        pytest.importorskip("torch")
        return {"backend": name, "device": "cpu"}
    return {"backend": name}


def _everything_network(backend, seed=0):
    """One of every saveable piece: layers, activations with parameters, initializer,
    regularizer, constraint, a loss with a parameter, an optimizer with extra state and a
    nested schedule, a network-wide penalty."""
    layers = [
        Dense(8, activation=nnx.activations.LeakyReLU(0.2), kernel_initializer="he_uniform",
              kernel_regularizer=L1L2(1e-3, 1e-2), kernel_constraint=MaxNorm(2.5)),
        BatchNorm(momentum=0.2),
        Dropout(0.25),
        Dense(6, use_bias=False),
        Activation("tanh"),
        LayerNorm(epsilon=1e-4),
        Residual([Dense(6, activation="elu"), LayerNorm(affine=False), Dense(6)]),
        Dense(3),
    ]
    lr = schedules.LinearWarmup(schedules.CosineAnnealing(0.02, period=30), warmup_steps=4)
    return nnx.Network(layers, input_dim=4, loss=nnx.losses.CategoricalCrossentropy(0.1),
                       optimizer=NAdam(learning_rate=lr, clip_norm=5.0), l2=1e-3, seed=seed,
                       **backend.kwargs)


# --------------------------------------------------------------------------- round trips


def test_round_trip_restores_every_piece(backend, tmp_path):
    X, y = _data()
    net = _everything_network(backend)
    net.fit(X, y, epochs=3, batch_size=16)
    path = net.save(tmp_path / "m.nnx", metadata={"note": "hello", "n": [1, 2]})
    loaded = nnx.load(path, **backend.kwargs)

    assert loaded.ctx.name == net.ctx.name and loaded.ctx.dtype_name == "float32"
    _assert_same_arrays(net.parameters(), loaded.parameters())
    _assert_same_arrays(net.state(), loaded.state())
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in net.layers]
    assert repr(loaded.optimizer) == repr(net.optimizer)
    assert repr(loaded.loss_) == "CategoricalCrossentropy(label_smoothing=0.1)"
    assert loaded.l2 == net.l2 and loaded.seed == 0
    _assert_same_tree(net.optimizer.state_dict(), loaded.optimizer.state_dict())
    assert loaded.optimizer.iterations == 12
    assert loaded.random.state() == net.random.state()
    assert loaded.targets_.kind == "multiclass"
    assert loaded.classes_.dtype.kind == "U"  # strings as a unicode array, never objects
    np.testing.assert_array_equal(loaded.classes_, ["ant", "bee", "cat"])
    assert loaded.history_.history == net.history_.history
    assert loaded.metadata == {"note": "hello", "n": [1, 2]}
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("kind", ["binary-bool", "regression", "multilabel", "int-labels"])
def test_round_trip_of_every_target_kind(kind, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    if kind == "binary-bool":
        y, out, loss = X[:, 0] > 0, 1, None
    elif kind == "regression":
        y, out, loss = X @ [1.0, -2.0, 0.5], 1, "huber"
    elif kind == "multilabel":
        y, out, loss = (X > 0).astype(int), 3, "binary_crossentropy"
    else:
        y, out, loss = np.array([3, 7, 11, 7])[rng.integers(0, 4, 40)], 3, None
        y[:3] = [3, 7, 11]
    net = nnx.Network([Dense(5, activation="relu"), Dense(out)], input_dim=3, loss=loss,
                      seed=0)
    net.fit(X, y, epochs=2)
    loaded = nnx.load(net.save(tmp_path / "m.nnx"))
    assert loaded.targets_.kind == net.targets_.kind
    if net.classes_ is not None:
        assert loaded.classes_.dtype == net.classes_.dtype
        np.testing.assert_array_equal(loaded.classes_, net.classes_)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_an_unfitted_but_built_network_round_trips(tmp_path):
    net = nnx.Network([3, 4, 2], seed=5)
    loaded = nnx.load(net.save(tmp_path / "m.nnx"))
    assert loaded.targets_ is None and loaded.input_dim == 3
    _assert_same_arrays(net.parameters(), loaded.parameters())


@pytest.mark.parametrize("target", ["numpy", "array_api_strict", "torch"])
def test_save_on_one_backend_load_on_another(backend, target, tmp_path):
    """Same predictions wherever it is loaded (within float32 rounding of the matmuls)."""
    X, y = _data(seed=2)
    net = nnx.Network([Dense(16, activation="relu"), BatchNorm(), Dropout(0.2), Dense(3)],
                      input_dim=4, optimizer="adam", learning_rate=1e-2, seed=0,
                      **backend.kwargs)
    net.fit(X, y, epochs=5, batch_size=16)
    loaded = nnx.load(net.save(tmp_path / "m.nnx"), **_target(target))
    assert loaded.ctx.name == target
    _assert_same_arrays(net.parameters(), loaded.parameters())
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    loaded.fit(X, y, epochs=1)  # and it trains there (the torch mask state is not carried)


def test_load_in_another_dtype(tmp_path):
    X, y = _data()
    net = nnx.Network([4, 8, 3], seed=0)
    net.fit(X, y, epochs=3)
    loaded = nnx.load(net.save(tmp_path / "m.nnx"), dtype="float64")
    assert loaded.ctx.dtype_name == "float64"
    assert loaded.parameters()["layers.0.W"].dtype == np.float64
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-5)


def test_without_the_optimizer_state_the_optimizer_starts_fresh(tmp_path):
    X, y = _data()
    net = nnx.Network([4, 8, 3], optimizer="adam", seed=0)
    net.fit(X, y, epochs=2)
    path = net.save(tmp_path / "m.nnx", include_optimizer=False)
    assert nio.read_header(path)["optimizer_state"] is None
    loaded = nnx.load(path)
    assert loaded.optimizer.iterations == 0 and repr(loaded.optimizer) == repr(net.optimizer)


def test_the_file_is_a_plain_npz_with_a_json_header(tmp_path):
    """What the README documents: readable with numpy alone, no pickle."""
    X, y = _data()
    net = nnx.Network([Dense(8, activation="relu"), BatchNorm(), Dense(3)], input_dim=4,
                      optimizer="adam", seed=0)
    net.fit(X, y, epochs=1)
    path = net.save(tmp_path / "m.nnx")
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["__nnx__"].tobytes().decode("utf-8"))
        W = npz["parameters/layers.0.W"]
        running_var = npz["state/layers.1.running_var"]
        m = npz["optimizer/slots/layers.0.W/m"]
        classes = npz["targets/classes"]
    assert header["format"] == "nnx-model" and header["format_version"] == 2
    assert header["nnx_version"] == nnx.__version__
    assert header["layers"][0] == {"__object__": "layer", "class": "Dense", "config": {
        "units": 8,
        "activation": {"__object__": "activation", "class": "ReLU", "config": {}},
        "kernel_initializer": None, "use_bias": True, "kernel_regularizer": None,
        "kernel_constraint": None, "bias_initializer": "zeros"}}
    assert header["optimizer"]["__object__"] == "optimizer"
    assert header["optimizer"]["class"] == "Adam"
    np.testing.assert_array_equal(W, nnx.to_numpy(net.parameters()["layers.0.W"]))
    np.testing.assert_array_equal(running_var, nnx.to_numpy(net.state()["layers.1.running_var"]))
    assert W.dtype == np.float32 and m.shape == W.shape and classes.dtype.kind == "U"


def test_a_schedule_survives_the_round_trip(tmp_path):
    lr = schedules.PerEpoch(schedules.MultiStep(0.1, milestones=[2, 5], gamma=0.5), 3)
    net = nnx.Network([2, 3, 1], optimizer=SGD(learning_rate=lr, momentum=0.9), seed=0)
    loaded = nnx.load(net.save(tmp_path / "m.nnx"))
    got = loaded.optimizer.learning_rate
    assert type(got) is schedules.PerEpoch and repr(got) == repr(lr)
    assert [got(k) for k in range(20)] == [lr(k) for k in range(20)]


# --------------------------------------------------------------------------- exact resume


def _resume_network(backend, make_optimizer):
    return nnx.Network([Dense(16, activation="relu"), Dropout(0.3), Dense(12, activation="tanh"),
                        BatchNorm(), Dense(3)], input_dim=4, optimizer=make_optimizer(),
                       seed=3, **backend.kwargs)


@pytest.mark.parametrize("make_optimizer", [
    pytest.param(lambda: Adam(learning_rate=1e-2), id="adam"),
    pytest.param(lambda: SGD(learning_rate=schedules.StepDecay(0.05, 20, 0.5), momentum=0.9,
                             nesterov=True), id="nesterov-schedule"),
])
def test_resume_is_bit_identical(backend, make_optimizer, tmp_path):
    """10 epochs, save, load, 10 more == 20 uninterrupted (shuffling, dropout masks,
    running statistics and optimizer moments all continue where they were)."""
    X, y = _data(n=60)
    straight = _resume_network(backend, make_optimizer)
    straight.fit(X, y, epochs=20, batch_size=16)

    first = _resume_network(backend, make_optimizer)
    first.fit(X, y, epochs=10, batch_size=16)
    path = first.save(tmp_path / "half.nnx")
    resumed = nnx.load(path, **backend.kwargs)
    resumed.fit(X, y, epochs=10, batch_size=16)

    _assert_same_arrays(straight.parameters(), resumed.parameters())
    _assert_same_arrays(straight.state(), resumed.state())
    assert resumed.history_.history["loss"] == straight.history_.history["loss"]

    # the test can fail: without the optimizer state the same continuation differs
    fresh = nnx.load(first.save(tmp_path / "no_opt.nnx", include_optimizer=False),
                     **backend.kwargs)
    fresh.fit(X, y, epochs=10, batch_size=16)
    assert not np.array_equal(nnx.to_numpy(fresh.parameters()["layers.0.W"]),
                              nnx.to_numpy(straight.parameters()["layers.0.W"]))


@pytest.mark.parametrize("name", sorted(nnx.optimizers.OPTIMIZERS))
def test_every_optimizer_resumes_exactly(name, tmp_path):
    """Each optimizer's slots and extra state (NAdam's mu product, L-BFGS's history)."""
    X, y = _data(n=40)
    rate = 1.0 if name in ("lbfgs", "adadelta") else 0.01

    def opt():
        return nnx.optimizers.get(name, rate)

    straight = nnx.Network([4, 6, 3], optimizer=opt(), seed=1)
    straight.fit(X, y, epochs=4, batch_size=16)
    first = nnx.Network([4, 6, 3], optimizer=opt(), seed=1)
    first.fit(X, y, epochs=2, batch_size=16)
    resumed = nnx.load(first.save(tmp_path / "m.nnx"))
    _assert_same_tree(first.optimizer.state_dict(), resumed.optimizer.state_dict())
    resumed.fit(X, y, epochs=2, batch_size=16)
    _assert_same_arrays(straight.parameters(), resumed.parameters())


# --------------------------------------------------------------------------- what save refuses


class _Scale(Layer):
    def forward(self, x, *, training=False):
        return 2.0 * x, None

    def backward(self, cache, dy, need_dx=True):
        return 2.0 * dy, {}


class _Cube(nnx.activations.Activation):
    name = "cube"

    def forward(self, xp, x):
        return x * x * x

    def backward(self, xp, x, y, dy):
        return dy * 3.0 * x * x


class _MSE:
    def value(self, xp, z, y):
        return xp.mean((z - y) ** 2)

    def gradient(self, xp, z, y):
        return 2.0 * (z - y) / (z.shape[0] * z.shape[1])


@pytest.mark.parametrize("make, message", [
    (lambda: nnx.Network([Dense(3)]), "built network"),
    (lambda: nnx.Network([_Scale(), Dense(1)], input_dim=2), r"layers\.0: the layer"),
    (lambda: nnx.Network([Dense(3, activation=_Cube()), Dense(1)], input_dim=2),
     "activation"),
    (lambda: nnx.Network([Dense(3, kernel_initializer=lambda s, r: np.ones(s)), Dense(1)],
                         input_dim=2), "kernel_initializer"),
    (lambda: nnx.Network([2, 3, 1], loss=_MSE()), "the loss"),
    (lambda: nnx.Network([2, 3, 1], optimizer=SGD(learning_rate=lambda k: 0.1 / (k + 1))),
     "learning_rate"),
])
def test_save_refuses_what_load_could_not_rebuild(make, message, tmp_path):
    net = make()
    with pytest.raises(ValueError, match=message):
        net.save(tmp_path / "m.nnx")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="metadata"):
        nnx.Network([2, 3, 1]).save(tmp_path / "m.nnx", metadata={"when": object()})


# --------------------------------------------------------------------------- what load refuses


class _Payload:
    """Unpickling this creates a file: proof that loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite(src, dst, header=None, arrays=None, drop=()):
    """Copy a model file, changing its header or entries (a hostile or damaged copy)."""
    with np.load(src, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files if k not in drop}
    if header is not None:
        text = json.dumps(header(json.loads(entries["__nnx__"].tobytes())))
        entries["__nnx__"] = np.frombuffer(text.encode(), dtype=np.uint8)
    entries.update(arrays or {})
    with open(dst, "wb") as f:
        np.savez(f, allow_pickle=True, **entries)
    return dst


def _set(path_keys, value):
    def change(header):
        node = header
        for key in path_keys[:-1]:
            node = node[key]
        node[path_keys[-1]] = value
        return header
    return change


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    X, y = _data()
    net = nnx.Network([Dense(8, activation="relu"), BatchNorm(), Dense(3)], input_dim=4,
                      optimizer="adam", seed=0)
    net.fit(X, y, epochs=1)
    return net.save(tmp_path_factory.mktemp("good") / "m.nnx")


def _bad_files(good, d):
    size = good.stat().st_size
    data = good.read_bytes()
    with np.load(good) as npz:
        # flip a byte in the middle of the first layer's kernel (its CRC no longer matches)
        start = data.find(npz["parameters/layers.0.W"].tobytes()[:16])
    flipped = bytearray(data)
    flipped[start + 40] ^= 0xFF
    npy = d / "x.npy"
    np.save(npy, np.ones(3))
    marker = d / "pwned"
    cases = {
        "text": (d / "t.nnx", b"hello, I am not a model\n", "not an nnx model"),
        "empty": (d / "e.nnx", b"", "not an nnx model"),
        "npy": (npy, None, "not an nnx model"),
        "pickle": (d / "p.nnx", pickle.dumps(_Payload(marker)), "not an nnx model"),
        "truncated": (d / "cut.nnx", data[: size // 2], "damaged"),
        "truncated-end": (d / "cut2.nnx", data[:-10], "damaged"),
        "flipped-byte": (d / "flip.nnx", bytes(flipped), "damaged"),
    }
    written = {name: (path, message) for name, (path, content, message) in cases.items()
               if content is None or path.write_bytes(content) is not None}
    plain = d / "plain.npz"
    np.savez(plain, a=np.ones(3))
    written["npz-without-header"] = (plain, "without the '__nnx__' header")
    hostile = [
        ("object-array", dict(arrays={"evil": np.array([_Payload(marker)], dtype=object)}),
         "damaged"),
        ("unknown-layer", dict(header=_set(["layers", 0, "class"], "os.system")),
         "unknown layer 'os.system'"),
        ("unknown-optimizer", dict(header=_set(["optimizer", "class"], "eval")),
         "unknown optimizer 'eval'"),
        ("unknown-activation",
         dict(header=_set(["layers", 0, "config", "activation", "class"], "__import__")),
         "unknown activation '__import__'"),
        ("not-a-layer", dict(header=_set(["layers", 0, "__object__"], "loss")),
         "unknown loss 'Dense'"),
        ("newer-format", dict(header=_set(["format_version"], 99)),
         "format version 99.*upgrade nnx"),
        ("not-nnx-format", dict(header=_set(["format"], "keras")), "not an nnx model"),
        ("huge-units", dict(header=_set(["layers", 0, "config", "units"], 10**12)),
         r"layers.0.W: Dense builds shape \(4, 1000000000000\); the file has \(4, 8\)"),
        ("missing-entry", dict(drop=("parameters/layers.2.b",)), "missing array entry"),
        ("bad-config", dict(header=_set(["layers", 1, "config", "momentum"], "x")),
         "damaged or altered"),
        ("missing-key", dict(header=lambda h: {k: v for k, v in h.items() if k != "layers"}),
         "damaged or altered"),
        ("wrong-shape", dict(arrays={"state/layers.1.running_mean": np.zeros(5, np.float32)}),
         "shape"),
        ("string-params", dict(arrays={"parameters/layers.0.b": np.array(["a"] * 8)}),
         "unexpected dtype"),
        ("bad-json", dict(arrays={"__nnx__": np.frombuffer(b"{not json", dtype=np.uint8)}),
         "damaged"),
    ]
    for name, change, message in hostile:
        written[name] = (_rewrite(good, d / f"{name}.nnx", **change), message)
    return written, marker


def test_damaged_hostile_or_foreign_files_give_a_clear_error(good_file, tmp_path):
    cases, marker = _bad_files(good_file, tmp_path)
    nnx.load(good_file)  # the original is fine
    for name, (path, message) in cases.items():
        with pytest.raises(nio.ModelFileError, match=message) as info:
            nnx.load(path)
        assert isinstance(info.value, ValueError)
        assert str(path) in str(info.value), name
    assert not marker.exists()  # no pickle payload ever ran


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        nnx.load(tmp_path / "nope.nnx")


# --------------------------------------------------------------------------- atomic writes


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    old = nnx.Network([2, 3, 1], seed=0)
    path = old.save(tmp_path / "m.nnx")
    new = nnx.Network([2, 3, 1], seed=1)

    def half_written(f, *args, **kwargs):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(nio.np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()

    def no_rename(src, dst):
        raise OSError("power cut before the rename")

    monkeypatch.setattr(nio.os, "replace", no_rename)
    with pytest.raises(OSError, match="power cut"):
        new.save(path)
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ["m.nnx"]  # temporaries removed
    _assert_same_arrays(nnx.load(path).parameters(), old.parameters())


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import nnx

    # ~4M float32 parameters plus Adam's two moments: a ~50 MB file per save
    net = nnx.Network([nnx.Dense(2000, activation="relu"), nnx.Dense(1)], input_dim=2000,
                      optimizer="adam", seed=0)
    shapes = {name: tuple(p.shape) for name, p in net.parameters().items()}
    version = 0
    while True:
        version += 1
        net.set_parameters({name: np.full(s, float(version)) for name, s in shapes.items()})
        net.save(sys.argv[1], metadata={"version": version})
        print(version, flush=True)
""")


def test_killing_a_writer_never_leaves_a_broken_file(tmp_path):
    """SIGKILL a process that saves a large model in a loop, at several moments of a save:
    the file always loads and is one complete version (all parameters equal its number)."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs POSIX signals (SIGKILL)")
    path = tmp_path / "big.nnx"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for fraction in (0.2, 0.5, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            times = []
            for _ in range(3):  # three complete saves: the file exists, and a save's duration
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                times.append(time.perf_counter())
            last = int(line)
            time.sleep(fraction * (times[2] - times[1]))  # somewhere inside the next save
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
            proc.stdout.close()
            proc.stderr.close()
        net = nnx.load(path)
        version = net.metadata["version"]
        assert version in (last, last + 1)
        for name, p in net.parameters().items():
            assert np.all(nnx.to_numpy(p) == version), name


# --------------------------------------------------------------------------- ModelCheckpoint


class _Recorder(Callback):
    def __init__(self):
        self.params = []

    def on_epoch_end(self, epoch, logs=None):
        self.params.append(_host(self.network.parameters()))


def test_checkpoint_every_epoch_and_resume_numbering(tmp_path):
    X, y = _data()
    net = nnx.Network([4, 8, 3], optimizer="adam", seed=0)
    ckpt = ModelCheckpoint(tmp_path / "m-{epoch:02d}-{loss:.3f}.nnx", monitor="loss")
    net.fit(X, y, epochs=3, callbacks=[ckpt])
    losses = net.history_.history["loss"]
    assert [Path(p).name for _, p in ckpt.saved] == [
        f"m-{e + 1:02d}-{loss:.3f}.nnx" for e, loss in enumerate(losses)]
    last = nnx.load(ckpt.saved[-1][1])
    _assert_same_arrays(last.parameters(), net.parameters())
    ckpt2 = ModelCheckpoint(tmp_path / "r-{epoch}.nnx")
    last.fit(X, y, epochs=2, callbacks=[ckpt2])  # the resumed run continues the count
    assert [e for e, _ in ckpt2.saved] == [4, 5]


def test_checkpoint_save_best_only_keeps_the_best_epoch(tmp_path):
    X, y = _data(n=80, seed=4)
    net = nnx.Network([Dense(32, activation="relu"), Dense(3)], input_dim=4,
                      optimizer="adam", learning_rate=0.05, seed=0)
    recorder = _Recorder()
    ckpt = ModelCheckpoint(tmp_path / "best.nnx", monitor="val_loss", save_best_only=True)
    net.fit(X, y, epochs=25, batch_size=8, validation_split=0.3, callbacks=[recorder, ckpt])
    val = net.history_.history["val_loss"]
    improving = [e for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert [e - 1 for e, _ in ckpt.saved] == improving
    assert len(improving) < len(val)  # the run did overfit at some point: a real choice
    best = int(np.argmin(val))
    assert ckpt.best == val[best]
    _assert_same_arrays(nnx.load(tmp_path / "best.nnx").parameters(), recorder.params[best])

    maximize = ModelCheckpoint(tmp_path / "acc.nnx", monitor="val_accuracy",
                               save_best_only=True)
    assert maximize.mode == "max"


def test_checkpoint_bad_arguments(tmp_path):
    X, y = _data()
    net = nnx.Network([4, 3, 3], seed=0)
    with pytest.raises(ValueError, match="monitor='val_loss' is not logged"):
        net.fit(X, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "m.nnx",
                                                           save_best_only=True)])
    with pytest.raises(ValueError, match=r"uses \{val_acc\}"):
        net.fit(X, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "{val_acc}.nnx")])
    with pytest.raises(ValueError, match="mode"):
        ModelCheckpoint(tmp_path / "m.nnx", mode="best")
    with pytest.raises(ValueError, match="named fields"):
        ModelCheckpoint(tmp_path / "m-{}.nnx")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- scikit-learn


def test_sklearn_estimators_pickle_with_joblib(backend, tmp_path):
    """Pickling is for trusted files only (see nnx.io), but it must work."""
    nsk = pytest.importorskip("nnx.sklearn")
    joblib = pytest.importorskip("joblib")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)  # 5 epochs: not the point here
    X, y = _data(n=50)
    clf = nsk.NNXClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                            **backend.kwargs).fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    again = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    reg = nsk.NNXRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                           **backend.kwargs).fit(X, X[:, 0] * 2.0)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))


def test_files_of_format_version_1_still_load(tmp_path):
    """A format-1 header (class entries, activation names, schedule markers) loads into the
    same network; the arrays are laid out as in format 2."""
    from nnx.regularizers import L2

    X, y = _data()
    net = nnx.Network([Dense(8, activation="leaky_relu", kernel_regularizer=L2(1e-3),
                             kernel_constraint=MaxNorm(2.0)),
                       Residual([Dense(8, activation="tanh")]), Dense(3)], input_dim=4,
                      loss=nnx.losses.CategoricalCrossentropy(0.1),
                      optimizer=SGD(schedules.StepDecay(0.1, 5), momentum=0.9), seed=0)
    net.fit(X, y, epochs=2)
    path = net.save(tmp_path / "v2.nnx")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    header = json.loads(arrays.pop("__nnx__").tobytes().decode("utf-8"))
    dense = {"units": 8, "activation": {"name": "leaky_relu", "alpha": 0.01},
             "kernel_initializer": None, "use_bias": True,
             "kernel_regularizer": {"class": "L2", "config": {"l": 1e-3}},
             "kernel_constraint": {"class": "MaxNorm", "config": {"max_value": 2.0}}}
    inner = {"units": 8, "activation": "tanh", "kernel_initializer": None, "use_bias": True,
             "kernel_regularizer": None, "kernel_constraint": None}
    header.update(
        format_version=1,
        layers=[{"class": "Dense", "config": dense},
                {"class": "Residual", "layers": [{"class": "Dense", "config": inner}]},
                {"class": "Dense", "config": {**inner, "units": 3, "activation": None}}],
        loss={"class": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}},
        optimizer={"class": "SGD", "config": {
            "learning_rate": {"__schedule__": "StepDecay",
                              "config": {"initial_learning_rate": 0.1, "step_size": 5,
                                         "gamma": 0.1}},
            "momentum": 0.9}})
    arrays["__nnx__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    old = nnx.load(tmp_path / "v1.npz")
    assert [repr(layer) for layer in old.layers] == [repr(layer) for layer in net.layers]
    assert old.loss_ == net.loss_ and repr(old.optimizer) == repr(net.optimizer)
    np.testing.assert_array_equal(old.predict_proba(X), net.predict_proba(X))


def test_a_zip_bomb_is_refused_before_it_is_read(tmp_path, good_file):
    import zipfile

    bomb = tmp_path / "bomb.nnx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__nnx__.npy", b"\0" * (64 * 2**20))  # 64 MiB of zeros, ~64 KiB
    with pytest.raises(nio.ModelFileError, match="would expand to 67,108,864 bytes"):
        nnx.load(bomb)
    nnx.load(good_file)  # an ordinary model file is well inside the limit


def test_a_later_save_removes_what_a_crashed_save_left(tmp_path):
    net = nnx.Network([2, 3, 1], seed=0)
    path = tmp_path / "m.nnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = tmp_path / f".m.nnx.{dead}-0123456789ab.tmp"
    leftover.write_bytes(b"half a model")
    running = tmp_path / f".m.nnx.{os.getpid()}-ba9876543210.tmp"  # this process: alive
    running.write_bytes(b"being written")
    other = tmp_path / f".other.nnx.{dead}-0123456789ab.tmp"  # another model's: not ours
    other.write_bytes(b"x")
    net.save(path)
    assert not leftover.exists() and running.exists() and other.exists()
    assert nnx.load(path).input_dim == 2
