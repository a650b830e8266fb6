"""Whole-network gradients: finite differences (float64) and torch autograd as an oracle."""

import numpy as np
import pytest

import nnx
from nnx.layers import Activation, Dense

def _randomize_biases(net, seed=0):
    """Zero initial biases put ReLU kinks exactly at 0 for rows whose hidden units are all
    off; random biases move every pre-activation off the kink so finite differences apply."""
    rng = np.random.default_rng(seed)
    net.set_parameters({name: rng.normal(scale=0.3, size=tuple(p.shape))
                        for name, p in net.parameters().items() if name.endswith(".b")})
    return net


ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "swish", "gelu", "softplus"]


def _data(kind, n=12, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if kind == "binary":
        return X, rng.integers(0, 2, size=n)
    if kind == "multiclass":
        return X, rng.integers(0, k, size=n)
    return X, rng.normal(size=(n, k))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_network_gradients_match_finite_differences(activation, backend):
    X, y = _data("multiclass")
    net = nnx.Network([3, 5, 4, 3], activation=activation, dtype="float64", seed=1,
                      **backend.kwargs)
    _randomize_biases(net)
    errors = nnx.check_gradients(net, X, y)
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("loss,kind,outputs", [
    ("binary_crossentropy", "binary", 1),
    ("categorical_crossentropy", "multiclass", 3),
    ("mse", "regression", 3),
    ("mae", "regression", 3),
    ("huber", "regression", 3),
])
def test_every_loss_through_a_network(loss, kind, outputs, backend):
    X, y = _data(kind)
    net = nnx.Network([3, 6, outputs], activation="tanh", loss=loss, dtype="float64", seed=2,
                      **backend.kwargs)
    _randomize_biases(net)
    nnx.check_gradients(net, X, y)


def test_activation_layers_and_no_bias(backend):
    X, y = _data("binary")
    layers = [Dense(5, use_bias=False), Activation("gelu"), Dense(4, activation="elu"), Dense(1)]
    net = _randomize_biases(nnx.Network(layers, input_dim=3, dtype="float64", seed=3,
                                        **backend.kwargs))
    nnx.check_gradients(net, X, y)


def test_the_checker_catches_a_wrong_gradient(backend):
    X, y = _data("binary")
    net = nnx.Network([3, 4, 1], activation="tanh", dtype="float64", seed=4, **backend.kwargs)

    class WrongTanh(nnx.activations.Tanh):
        def backward(self, xp, x, y, dy):
            return dy * (1.0 - 0.9 * y * y)  # deliberately wrong

    net.layers[0].activation = WrongTanh()
    with pytest.raises(nnx.testing.GradientCheckError):
        nnx.check_gradients(net, X, y)


def _torch_model(net, torch):
    """The same network in torch, with the same weights (torch Linear stores W transposed)."""
    params = {k: nnx.to_numpy(v) for k, v in net.parameters().items()}
    modules = []
    acts = {
        "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01), "elu": torch.nn.ELU,
        "selu": torch.nn.SELU, "swish": torch.nn.SiLU,
        "gelu": lambda: torch.nn.GELU(approximate="tanh"), "softplus": torch.nn.Softplus,
    }
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(layer.input_dim, layer.units, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(params[f"layers.{i}.W"].T))
            lin.bias.copy_(torch.tensor(params[f"layers.{i}.b"]))
        modules.append(lin)
        if layer.activation is not None:
            modules.append(acts[layer.activation.name]())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_gradients_match_torch_autograd(activation, kind, backend, torch):
    X, y = _data(kind, n=16, seed=5)
    outputs = 1 if kind == "binary" else 3
    net = _randomize_biases(nnx.Network([3, 6, 5, outputs], activation=activation,
                                        dtype="float64", seed=6, **backend.kwargs))
    loss, grads = net.gradients(X, y)

    model = _torch_model(net, torch)
    logits = model(torch.tensor(X))
    if kind == "binary":
        target = torch.tensor(y, dtype=torch.float64).reshape(-1, 1)
        loss_t = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    else:
        loss_t = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-10)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        np.testing.assert_allclose(nnx.to_numpy(grads[f"layers.{i}.W"]), lin.weight.grad.numpy().T,
                                   rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(nnx.to_numpy(grads[f"layers.{i}.b"]), lin.bias.grad.numpy(),
                                   rtol=1e-10, atol=1e-15)
