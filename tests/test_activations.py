"""Activations: values and derivatives against finite differences and torch, on every backend."""

import numpy as np
import pytest

import nnx
from nnx import activations as A

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "swish", "gelu",
         "softplus", "softmax"]


def _torch_fn(name, torch):
    F = torch.nn.functional
    return {
        "identity": lambda x: x,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
        "elu": F.elu,
        "selu": F.selu,
        "swish": F.silu,
        "gelu": lambda x: F.gelu(x, approximate="tanh"),
        "softplus": F.softplus,
        "softmax": lambda x: torch.softmax(x, dim=-1),
    }[name]


def _points(seed=0, shape=(7, 5)):
    x = np.random.default_rng(seed).normal(scale=3.0, size=shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the kinks at 0
    return x


@pytest.mark.parametrize("name", NAMES)
def test_values_and_backward_match_torch_autograd(name, backend, torch):
    act = A.get(name)
    x = _points()
    dy = np.random.default_rng(1).normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_fn(name, torch)(xt)
    (yt * torch.tensor(dy)).sum().backward()

    ctx = backend.context("float64")
    xd, dyd = ctx.asarray(x), ctx.asarray(dy)
    y = act.forward(ctx.xp, xd)
    dx = act.backward(ctx.xp, xd, y, dyd)
    np.testing.assert_allclose(nnx.to_numpy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(nnx.to_numpy(dx), xt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "softmax"])
def test_derivative_matches_central_differences(name, backend):
    act = A.get(name)
    x = _points(2)
    eps = 1e-6
    xd = backend.asarray(x)
    numeric = (nnx.to_numpy(act(backend.asarray(x + eps)))
               - nnx.to_numpy(act(backend.asarray(x - eps)))) / (2 * eps)
    np.testing.assert_allclose(nnx.to_numpy(act.derivative(xd)), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_jacobian_matches_central_differences(backend):
    x = _points(3, (4, 6))
    dy = np.random.default_rng(4).normal(size=x.shape)
    ctx = backend.context("float64")
    xp = ctx.xp
    y = A.softmax.forward(xp, ctx.asarray(x))
    dx = nnx.to_numpy(A.softmax.backward(xp, ctx.asarray(x), y, ctx.asarray(dy)))
    eps = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        fp = nnx.to_numpy(A.softmax(ctx.asarray(plus)))
        fm = nnx.to_numpy(A.softmax(ctx.asarray(minus)))
        numeric[idx] = np.sum((fp - fm) * dy) / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_no_overflow_for_large_inputs_in_float32(name, backend):
    # pyproject turns RuntimeWarning (overflow, invalid) into errors
    act = A.get(name)
    x = np.linspace(-1e4, 1e4, 41, dtype=np.float32).reshape(1, -1)
    xd = backend.asarray(x, dtype="float32")
    y = nnx.to_numpy(act(xd))
    d = nnx.to_numpy(act.derivative(xd))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(d))
    assert y.dtype == np.float32 and d.dtype == np.float32


def test_sigmoid_keeps_precision_in_both_tails():
    x = np.array([-40.0, -20.0, 0.0, 20.0, 40.0])
    np.testing.assert_allclose(A.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_lookup_by_name_class_and_instance():
    assert isinstance(A.get("ReLU"), A.ReLU)
    assert isinstance(A.get(A.Tanh), A.Tanh)
    leaky = A.LeakyReLU(0.2)
    assert A.get(leaky) is leaky
    assert A.get(None) is None
    assert A.get("silu") == A.Swish()


@pytest.mark.parametrize("bad", ["relu6", "", 3])
def test_unknown_activation_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="unknown activation"):
        A.get(bad)


@pytest.mark.parametrize("cls", [A.LeakyReLU, A.ELU])
def test_non_positive_alpha_rejected(cls):
    with pytest.raises(ValueError, match="alpha"):
        cls(0.0)
