"""Losses from logits: values and gradients against torch and finite differences."""

import numpy as np
import pytest

import nnx
from nnx import losses as L


def _case(name, seed=0, n=9, k=4):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, k))
    if name == "binary_crossentropy":
        y = rng.integers(0, 2, size=(n, k)).astype(float)
    elif name == "categorical_crossentropy":
        y = np.eye(k)[rng.integers(0, k, size=n)]
    elif name == "poisson":
        y = rng.poisson(2.0, size=(n, k)).astype(float)  # counts, zeros included
    else:
        y = rng.normal(size=(n, k))
    return z, y


def _torch_loss(name, torch):
    nn = torch.nn
    return {
        "mse": nn.MSELoss(),
        "mae": nn.L1Loss(),
        "huber": nn.HuberLoss(delta=1.0),
        "binary_crossentropy": nn.BCEWithLogitsLoss(),
        "categorical_crossentropy": nn.CrossEntropyLoss(),  # accepts class probabilities
    }[name]


NAMES = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy"]


@pytest.mark.parametrize("name", NAMES)
def test_value_and_gradient_match_torch(name, backend, torch):
    z, y = _case(name)
    zt = torch.tensor(z, requires_grad=True)
    value_t = _torch_loss(name, torch)(zt, torch.tensor(y))
    value_t.backward()
    ctx = backend.context("float64")
    value, grad = L.get(name).value_and_grad(ctx.xp, ctx.asarray(z), ctx.asarray(y))
    np.testing.assert_allclose(float(value), value_t.item(), rtol=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(grad), zt.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", NAMES + ["poisson"])
def test_gradient_matches_central_differences(name, backend):
    z, y = _case(name, seed=3)
    ctx = backend.context("float64")
    loss = L.get(name)
    grad = nnx.to_numpy(loss.gradient(ctx.xp, ctx.asarray(z), ctx.asarray(y)))
    # five-point stencil: truncation O(h^4) ~ 1e-16 and rounding ~ 1e-16 / h ~ 1e-12, so the
    # comparison can be tight even for gradients of order 1e-5
    h = 1e-4
    numeric = np.zeros_like(z)

    def f(point):
        return float(loss(ctx.asarray(point), ctx.asarray(y)))

    for idx in np.ndindex(*z.shape):
        shifted = {}
        for step in (-2, -1, 1, 2):
            point = z.copy()
            point[idx] += step * h
            shifted[step] = f(point)
        numeric[idx] = (-shifted[2] + 8 * shifted[1] - 8 * shifted[-1] + shifted[-2]) / (12 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-11)


def test_poisson_is_half_scikit_learns_mean_deviance(backend):
    metrics = pytest.importorskip("sklearn.metrics")
    z, y = _case("poisson", seed=5, k=1)
    ctx = backend.context("float64")
    value = float(L.get("poisson")(ctx.asarray(z), ctx.asarray(y)))
    assert value == pytest.approx(metrics.mean_poisson_deviance(y, np.exp(z)) / 2, rel=1e-12)


def test_cross_entropy_is_stable_for_huge_logits(backend):
    ctx = backend.context("float32")
    z = ctx.asarray(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]]))
    y = ctx.asarray(np.eye(3)[[0, 0]])
    value, grad = L.CategoricalCrossentropy().value_and_grad(ctx.xp, z, y)
    assert np.isclose(float(value), 1e4, rtol=1e-6)  # the second row is wrong by 2e4 / 2 rows
    assert np.all(np.isfinite(nnx.to_numpy(grad)))
    value, grad = L.BinaryCrossentropy().value_and_grad(ctx.xp, z[:, :1], y[:, :1])
    assert np.isfinite(float(value)) and np.all(np.isfinite(nnx.to_numpy(grad)))


def test_custom_loss_object_is_accepted_and_used(backend):
    class Cubic:
        """A user loss: mean |z - y|^3."""

        def value(self, xp, z, y):
            return xp.mean(xp.abs(z - y) ** 3)

        def gradient(self, xp, z, y):
            d = z - y
            return 3.0 * d * xp.abs(d) / (d.shape[0] * d.shape[1])

    X = np.random.default_rng(0).normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    net = nnx.Network([3, 8, 1], loss=Cubic(), dtype="float64", seed=0, **backend.kwargs)
    nnx.check_gradients(net, X, y)
    before = net.evaluate(X, y)["loss"]
    net.fit(X, y, epochs=30, batch_size=10)
    assert net.evaluate(X, y)["loss"] < before


def test_loss_lookup_errors():
    with pytest.raises(ValueError, match="unknown loss"):
        L.get("hinge")
    with pytest.raises(ValueError, match="value"):
        L.get(object())
    with pytest.raises(ValueError, match="delta"):
        L.Huber(delta=0)
