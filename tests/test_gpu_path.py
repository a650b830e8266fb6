"""What a GPU run meets that a CPU run does not, reproduced on the CPU.

Each test names the GPU mechanism it stands in for; the ones that need a real GPU are
marked ``gpu`` and say why.
"""

import copy
import importlib.util

import numpy as np
import pytest

import nnx
from nnx.backend import get_backend, register_backend, to_device, unregister_backend
from nnx.layers import BatchNorm, Dense, Dropout, LayerNorm
from nnx.optimizers import Adam
from nnx.regularizers import MaxNorm

from cupy_like import CupyLikeBackend, UnhashableDevice


def _three_classes(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.argmax(X[:, :3], axis=1)
    return X, y


def _busy_network(**kwargs):
    """A network that exercises every per-step mechanism: slots, running statistics,
    masks, clipping, penalties and a constraint."""
    layers = [Dense(8, activation="relu", kernel_constraint=MaxNorm(3.0)), BatchNorm(),
              Dropout(0.2), Dense(8, activation="elu"), LayerNorm(), Dense(3)]
    return nnx.Network(layers, input_dim=4, optimizer=Adam(1e-2, clip_norm=1.0), l1=1e-4,
                       l2=1e-3, seed=0, loss=nnx.losses.CategoricalCrossentropy(0.1), **kwargs)


@pytest.fixture(params=[True, False], ids=["honour_device", "raw_current_device"])
def cupy_like(request):
    """A registered CuPy stand-in (see ``cupy_like.py``), removed after the test."""
    backend = register_backend(CupyLikeBackend(honour=request.param))
    yield backend
    unregister_backend(backend.name)


def test_every_entry_point_computes_on_the_network_device(cupy_like, tmp_path):
    """CuPy allocates on the current device whatever ``device=`` says: a network on GPU 1
    called while GPU 0 is current must still compute on GPU 1. Here the stand-in's creation
    functions allocate on "CPU_DEVICE" unless the network's scope (or the namespace's
    device fix) makes "device1" current, and array_api_strict refuses to mix the two."""
    X, y = _three_classes()
    net = _busy_network(backend=cupy_like.name, device="device1")
    history = net.fit(X, y, epochs=3, batch_size=16, validation_split=0.25)
    assert np.all(np.isfinite(history.history["val_loss"]))
    assert set(net.evaluate(X, y)) == {"loss", "accuracy"}
    assert 0.0 <= net.score(X, y) <= 1.0
    assert net.predict(X).shape == (60,)
    assert net.predict_proba(X).shape == (60, 3)
    assert np.isfinite(net.train_step(X[:8], y[:8]))
    loss, grads = net.gradients(X[:8], y[:8])
    assert set(grads) == set(net.parameters())
    assert net.forward(X[:2]).shape == (2, 3)
    for p in list(net.parameters().values()) + list(net.state().values()):
        assert p.device == net.ctx.device
    path = net.save(tmp_path / "m.nnx")
    again = nnx.load(path, backend=cupy_like.name, device="device1")
    np.testing.assert_array_equal(again.predict_proba(X), net.predict_proba(X))
    again.fit(X, y, epochs=1)
    result = nnx.lr_find(net, X, y, num_steps=8, batch_size=16)
    assert len(result.learning_rates) >= 5


def test_unhashable_device_objects_are_never_keys(cupy_like):
    """``cupy.cuda.Device`` has ``==`` but no hash: a dict keyed by a device raised
    ``TypeError: unhashable type`` on the first step of every multi-class network."""
    X, y = _three_classes()
    net = nnx.Network([4, 8, 3], seed=0, backend=cupy_like.name, device="device1")
    with pytest.raises(TypeError, match="unhashable"):
        hash(net.ctx.device)
    net.fit(X, y, epochs=2)
    assert np.isfinite(net.evaluate(X, y)["loss"])
    assert 0 <= net.score(X, y) <= 1
    assert nnx.get_context("array_api_strict", UnhashableDevice("device1")).device_name == \
        "device1"


def test_copies_of_a_network_with_an_uncopyable_generator(cupy_like):
    """CuPy 14's generator holds a ``threading.Lock``: ``copy.deepcopy(net)`` and
    ``lr_find`` (which trains a copy) raised. A copy builds its own generator and continues
    the same mask stream."""
    X, y = _three_classes()
    net = nnx.Network([Dense(8, activation="relu"), Dropout(0.3), Dense(3)], input_dim=4,
                      seed=1, backend=cupy_like.name, device="device1")
    net.fit(X, y, epochs=1)
    twin = copy.deepcopy(net)
    assert twin.random._native.gen is not net.random._native.gen
    net.fit(X, y, epochs=2)
    twin.fit(X, y, epochs=2)
    for name, p in net.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(twin.parameters()[name]), nnx.to_numpy(p))
    nnx.lr_find(net, X, y, num_steps=6)


def test_the_namespace_fix_puts_creation_on_the_asked_device(cupy_like):
    """The fix the real CuPy namespace uses (``honour_device``): with "CPU_DEVICE" current,
    ``zeros(..., device=device1)`` and ``zeros_like(x_on_device1)`` land on device1."""
    xp = cupy_like.namespace()
    d1 = UnhashableDevice("device1")
    for make in (lambda: xp.zeros(3, device=d1), lambda: xp.ones(3, device=d1),
                 lambda: xp.full(3, 2.0, device=d1), lambda: xp.arange(3, device=d1)):
        assert make().device == (d1 if cupy_like.honour else UnhashableDevice("CPU_DEVICE"))
    x = xp.asarray([1.0, 2.0], device=d1)
    for like in (xp.zeros_like, xp.ones_like, xp.empty_like):
        assert like(x).device == (d1 if cupy_like.honour else UnhashableDevice("CPU_DEVICE"))


def test_deep_copies_and_lr_find_with_dropout(backend):
    X, y = _three_classes()
    net = nnx.Network([Dense(8, activation="relu"), Dropout(0.3), Dense(3)], input_dim=4,
                      seed=2, **backend.kwargs)
    net.fit(X, y, epochs=1)
    twin = copy.deepcopy(net)
    net.fit(X, y, epochs=2)
    twin.fit(X, y, epochs=2)
    for name, p in net.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(twin.parameters()[name]), nnx.to_numpy(p))
    result = nnx.lr_find(net, X, y, num_steps=6)
    assert np.all(np.isfinite(result.losses[:5]))


def test_flipped_and_read_only_inputs(backend, tmp_path):
    """torch cannot view a negative-stride array and shares (and warns about) a read-only
    one; every backend takes both, as NumPy does."""
    X, y = _three_classes()
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    read_only = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    frozen = X.copy()
    frozen.flags.writeable = False
    net = nnx.Network([4, 8, 3], seed=0, dtype="float64", **backend.kwargs)
    net.fit(X, y, epochs=1, shuffle=False)
    reference = net.predict_proba(X)
    for variant, rows in ((X[::-1], slice(None, None, -1)), (np.flip(X, axis=0), slice(None, None, -1)),
                          (read_only, slice(None)), (frozen, slice(None)),
                          (X[:, ::-1][:, ::-1], slice(None))):
        np.testing.assert_allclose(net.predict_proba(variant), reference[rows], rtol=1e-12)
    for data in (X[::-1], read_only, frozen):
        nnx.Network([4, 8, 3], seed=0, **backend.kwargs).fit(data, y, epochs=1)
    assert not read_only.flags.writeable and np.array_equal(np.asarray(read_only), X)


def test_requires_grad_inputs_do_not_build_an_autograd_graph(torch):
    """``fit(X.requires_grad_(), y)`` made every parameter carry a ``grad_fn``: a graph that
    grew each epoch until a GPU ran out of memory."""
    X, y = _three_classes()
    Xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    yt = torch.tensor(y)
    net = _busy_network(backend="torch")
    net.fit(Xt, yt, epochs=2, batch_size=16)
    net.train_step(Xt[:8], yt[:8])
    net.gradients(Xt[:8], yt[:8])
    for name, p in list(net.parameters().items()) + list(net.state().items()):
        assert p.grad_fn is None and not p.requires_grad, name
    for name, slots in net.optimizer.slots.items():
        for slot in slots.values():
            assert slot is None or (slot.grad_fn is None and not slot.requires_grad), name
    for out in (net.forward(Xt), net.predict_proba(Xt), net.predict(Xt)):
        assert not out.requires_grad
    assert Xt.grad is None


def test_results_come_back_on_the_input_device(backend):
    """A CPU tensor given to a CUDA network comes back on the CPU; here an array on the
    default device given to a network on ``device1`` comes back on the default device."""
    X, y = _three_classes()
    net = nnx.Network([4, 8, 3], seed=0, **backend.kwargs)
    net.fit(X, y, epochs=1)
    other = get_backend(backend.name).device(net.ctx.xp, None)
    Xo = net.ctx.backend.from_host(net.ctx.xp, X, net.ctx.dtype, other)
    for out in (net.forward(Xo), net.predict_proba(Xo), net.predict(Xo)):
        assert net.ctx.owns(out) and out.device == other
    np.testing.assert_allclose(nnx.to_numpy(net.predict_proba(Xo)), net.predict_proba(X),
                               rtol=1e-6)


def test_a_strict_network_on_a_fake_device_takes_default_device_arrays():
    import array_api_strict as xps

    X, y = _three_classes()
    net = nnx.Network([4, 8, 3], seed=0, backend="array_api_strict", device="device1")
    net.fit(xps.asarray(X), xps.asarray(y), epochs=1)
    out = net.predict_proba(xps.asarray(X))
    assert out.device == xps.Device("CPU_DEVICE")


def test_model_files_name_the_device_as_a_plain_string(backend, tmp_path):
    net = nnx.Network([4, 3], seed=0, **backend.kwargs)
    path = net.save(tmp_path / "m.nnx")
    saved = nnx.io.read_header(path)["saved_on"]
    assert saved == {"backend": backend.name, "device": net.ctx.device_name}
    assert "(" not in saved["device"] and "<" not in saved["device"]


def test_torch_cuda_index_beyond_the_visible_gpus_is_an_early_error(torch, monkeypatch):
    """``device="cuda:5"`` on a one-GPU machine passed validation and failed later."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"cuda:5.*does not exist: 1 CUDA device"):
        get_backend("torch").device(None, "cuda:5")


def test_unknown_backends_are_errors_never_a_fallback():
    for name in ("jax", "Torch", "cupy ", None, 3):
        with pytest.raises(ValueError, match="unknown backend"):
            nnx.get_context(name)


def test_a_registered_backend_needs_a_name():
    with pytest.raises(TypeError, match="named nnx.backend.Backend"):
        register_backend(object())


def test_sync_free_forms_equal_the_standard_ones(backend):
    """``maximum``/``minimum`` with a scalar, ``sign`` and ``clip`` as each backend's namespace
    computes them (sync-free on torch and CuPy) agree with NumPy, NaN and inf included."""
    ctx = backend.context("float64")
    xp = ctx.xp
    host = np.array([-np.inf, -2.5, -0.0, 0.0, 1e-300, 3.0, np.inf, np.nan])
    x = to_device(host, ctx)
    bound = to_device(np.full(host.shape, 0.5), ctx)
    with np.errstate(invalid="ignore"):
        cases = {
            "maximum": (xp.maximum(x, 0.0), np.maximum(host, 0.0)),
            "maximum_left": (xp.maximum(0.0, x), np.maximum(0.0, host)),
            "minimum": (xp.minimum(x, 1.0), np.minimum(host, 1.0)),
            "sign": (xp.sign(x), np.sign(host)),
            "clip": (xp.clip(x, -1.0, 2.0), np.clip(host, -1.0, 2.0)),
            "clip_low": (xp.clip(x, min=-1.0), np.clip(host, -1.0, None)),
            "clip_tensor": (xp.clip(x, -1.0, bound), np.clip(host, -1.0, 0.5)),
            "clip_tensor_low": (xp.clip(x, bound, 2.0), np.clip(host, 0.5, 2.0)),
        }
    for name, (ours, ref) in cases.items():
        assert ours.dtype == x.dtype, name
        np.testing.assert_array_equal(nnx.to_numpy(ours), ref, err_msg=name)


@pytest.mark.gpu  # needs two CUDA GPUs: CuPy's current-device allocation on real hardware
@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_cupy_network_on_the_second_gpu_stays_there():
    try:
        import cupy

        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        n_gpus = 0
    if n_gpus < 2:
        pytest.skip("needs two CUDA GPUs")
    X, y = _three_classes()
    with cupy.cuda.Device(0):
        net = _busy_network(backend="cupy", device=1)
        net.fit(X, y, epochs=2, batch_size=16)
        net.evaluate(X, y)
    for p in list(net.parameters().values()) + list(net.state().values()):
        assert p.device.id == 1
