"""Backend resolution, boundary crossings and device discipline."""

import importlib.util

import numpy as np
import pytest

import nnx
from nnx.backend import get_context, to_device, to_numpy


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="unknown backend 'jax'.*numpy, cupy, torch"):
        nnx.Network([2, 1], backend="jax")


def test_bad_dtype_and_device_are_clear_errors():
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        get_context("numpy", dtype="float16")
    with pytest.raises(ValueError, match="CPU only"):
        get_context("numpy", device="cuda:0")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_missing_cupy_says_how_to_install():
    with pytest.raises(ImportError, match="pip install"):
        nnx.Network([2, 1], backend="cupy")


def test_torch_cuda_without_gpu_is_an_import_error(torch):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the error path cannot be exercised")
    with pytest.raises(ImportError, match="CUDA"):
        nnx.Network([2, 1], backend="torch", device="cuda:0")


def test_available_backends_lists_what_works(monkeypatch):
    """What is installed here, known independently of nnx, and nothing that fails."""
    installed = [name for name in ("torch", "array_api_strict")
                 if importlib.util.find_spec(name) is not None]
    names = nnx.available_backends()
    assert names[0] == "numpy"
    assert [n for n in names if n in ("torch", "array_api_strict")] == installed
    assert ("cupy" in names) == isinstance(nnx.backend.device_info()["cupy"], list)

    def broken(self):
        raise ImportError("no driver")

    monkeypatch.setattr(nnx.backend.TorchBackend, "load_namespace", broken)
    monkeypatch.delitem(nnx.backend.get_backend("torch").__dict__, "_xp", raising=False)
    assert "torch" not in nnx.available_backends()


def test_context_is_resolved_once_and_frozen(backend):
    net = nnx.Network([2, 3, 1], **backend.kwargs)
    assert net.ctx.name == backend.name
    assert all(layer.ctx is net.ctx for layer in net.layers)
    with pytest.raises(AttributeError):
        net.ctx.name = "numpy"


def test_parameters_live_on_the_requested_device_and_dtype(backend):
    for dtype in ("float32", "float64"):
        net = nnx.Network([2, 3, 1], dtype=dtype, **backend.kwargs)
        ctx = net.ctx
        for p in net.parameters().values():
            assert p.dtype == ctx.dtype
            assert str(p.device) == str(ctx.device)


def test_to_numpy_and_to_device_round_trip(backend):
    ctx = backend.context("float64")
    host = np.arange(6.0).reshape(2, 3)
    dev = to_device(host, ctx)
    assert ctx.owns(dev)
    np.testing.assert_array_equal(to_numpy(dev), host)
    again = to_device(dev, ctx)
    np.testing.assert_array_equal(to_numpy(again), host)
    np.testing.assert_array_equal(to_numpy([[1, 2]]), np.array([[1, 2]]))


def test_results_come_back_in_the_namespace_of_the_input(backend):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    net = nnx.Network([2, 4, 1], seed=0, **backend.kwargs)
    net.fit(X, y, epochs=2)
    # NumPy in -> NumPy out, whatever the backend computes on
    assert isinstance(net.predict_proba(X), np.ndarray)
    assert isinstance(net.predict(X), np.ndarray)
    assert isinstance(net.forward(X), np.ndarray)
    # backend array in -> backend array out, on the network's device
    Xd = to_device(X, net.ctx)
    for out in (net.predict_proba(Xd), net.predict(Xd), net.forward(Xd)):
        assert net.ctx.owns(out)
        assert str(out.device) == str(net.ctx.device)
    np.testing.assert_array_equal(to_numpy(net.predict(Xd)), net.predict(X))


def test_torch_tensor_input_to_numpy_network(torch):
    X = np.random.default_rng(1).normal(size=(20, 2))
    y = (X[:, 1] > 0).astype(int)
    net = nnx.Network([2, 4, 1], seed=0)
    net.fit(torch.tensor(X), torch.tensor(y), epochs=2)
    out = net.predict_proba(torch.tensor(X))
    assert isinstance(out, np.ndarray)  # a torch tensor is foreign to a NumPy network


def test_numpy_namespace_fast_functions_equal_numpys_own():
    """The C-bound sum/max/min/take/reshape return what NumPy's functions return: same
    values, dtypes (integer sums promote to int64), shapes and errors."""
    fast = nnx.backend.get_backend("numpy").namespace()

    rng = np.random.default_rng(0)
    cases = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(2, 3, 2)),
             np.arange(6, dtype=np.int32).reshape(2, 3), np.array([True, False, True]),
             np.array(2.5, dtype=np.float32)]
    for x in cases:
        axes = [None] + list(range(x.ndim)) + ([(0, 1)] if x.ndim > 1 else [])
        for axis in axes:
            for keepdims in (False, True):
                for name in ("sum", "max", "min"):
                    ours = getattr(fast, name)(x, axis=axis, keepdims=keepdims)
                    ref = getattr(np, name)(x, axis=axis, keepdims=keepdims)
                    assert type(ours) is type(ref)
                    assert np.asarray(ours).dtype == np.asarray(ref).dtype
                    np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(fast.reshape(x, (-1,)), np.reshape(x, (-1,)))
    assert fast.sum(np.ones(3, np.float32), dtype=np.float64).dtype == np.float64
    x = rng.normal(size=(5, 2))
    idx = np.array([4, 0, 2])
    np.testing.assert_array_equal(fast.take(x, idx, axis=0), np.take(x, idx, axis=0))
    copy = fast.reshape(x, (10,), copy=True)
    copy[0] = 99.0
    assert x[0, 0] != 99.0
    for name in ("max", "min"):
        with pytest.raises(ValueError, match="zero-size array"):
            getattr(fast, name)(np.zeros((0,)))
    assert fast.exp is np.exp and fast.linalg is np.linalg  # everything else is NumPy's
    assert nnx.get_context("numpy").xp is fast


def test_mask_only_random_state_restores_the_masks_and_leaves_the_order(backend):
    from nnx.random import Random

    rng = Random(3, backend.context())
    point = rng.state(masks_only=True)
    assert set(point) <= {"mask_host", "mask_native"}
    first = to_numpy(rng.uniform_like((4,)))
    order = rng.shuffle.permutation(10)
    rng.set_state(point)
    np.testing.assert_array_equal(to_numpy(rng.uniform_like((4,))), first)  # same masks again
    assert not np.array_equal(rng.shuffle.permutation(10), order)  # the order stream moved on
    full = rng.state()
    assert {"init", "shuffle", "mask_host"} <= set(full)
