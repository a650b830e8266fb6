"""Regularization and stability layers: gradients, torch oracles, training behaviour."""

import numpy as np
import pytest

import nnx
from nnx.layers import BatchNorm, Dense, Dropout, LayerNorm, Residual
from nnx.regularizers import L1, L1L2, L2, MaxNorm


def _data(n=16, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * 2 + 1, rng.integers(0, k, size=n)


def _random_biases(net, seed=1):
    rng = np.random.default_rng(seed)
    net.set_parameters({n: rng.normal(scale=0.3, size=tuple(p.shape))
                        for n, p in net.parameters().items() if n.endswith(".b")})
    return net


# ------------------------------------------------------------------ gradient checks

@pytest.mark.parametrize("make_layers", [
    pytest.param(lambda: [Dense(6, activation="tanh", kernel_regularizer=L2(0.1)),
                          Dense(3, kernel_regularizer=L1(0.05))], id="l2-l1"),
    pytest.param(lambda: [Dense(6, activation="tanh", kernel_regularizer=L1L2(0.02, 0.3)),
                          Dense(3)], id="l1l2"),
    pytest.param(lambda: [Dense(8, activation="tanh"), Dropout(0.4), Dense(3)], id="dropout"),
    pytest.param(lambda: [Dense(6), BatchNorm(), Dense(6, activation="tanh"), Dense(3)],
                 id="batchnorm"),
    pytest.param(lambda: [Dense(6), BatchNorm(affine=False), Dense(3)], id="batchnorm-noaffine"),
    pytest.param(lambda: [Dense(6), LayerNorm(), Dense(6, activation="tanh"), Dense(3)],
                 id="layernorm"),
    pytest.param(lambda: [Dense(5, activation="tanh"),
                          Residual([Dense(5, activation="tanh"), Dense(5)]),
                          Residual([LayerNorm(), Dense(5, activation="sigmoid")]), Dense(3)],
                 id="residual"),
])
def test_gradients_of_new_layers_and_penalties(make_layers, backend):
    X, y = _data()
    net = _random_biases(nnx.Network(make_layers(), input_dim=4, dtype="float64", seed=2,
                                     **backend.kwargs))
    errors = nnx.check_gradients(net, X, y)
    assert max(errors.values()) < 1e-6


def test_network_wide_l2_shortcut_and_penalty_in_the_loss(backend):
    X, y = _data()
    plain = nnx.Network([4, 6, 3], seed=0, dtype="float64", **backend.kwargs)
    reg = nnx.Network([4, 6, 3], seed=0, dtype="float64", l2=0.05, **backend.kwargs)
    loss_plain, g_plain = plain.gradients(X, y)
    loss_reg, g_reg = reg.gradients(X, y)
    W = {k: nnx.to_numpy(v) for k, v in reg.parameters().items()}
    penalty = 0.05 * sum(np.sum(W[k] ** 2) for k in W if k.endswith(".W"))
    assert loss_reg == pytest.approx(loss_plain + penalty, rel=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(g_reg["layers.0.W"]),
                               nnx.to_numpy(g_plain["layers.0.W"]) + 0.1 * W["layers.0.W"],
                               rtol=1e-12)
    # biases are not penalised
    np.testing.assert_allclose(nnx.to_numpy(g_reg["layers.0.b"]), nnx.to_numpy(g_plain["layers.0.b"]))
    nnx.check_gradients(reg, X, y)


def test_l2_equals_torch_weight_decay_over_half(torch):
    """L2(l) in the loss and SGD(weight_decay=2l) give the same trajectory (without biases:
    weight_decay decays every parameter, penalties only kernels)."""
    X, y = _data()

    def layers():
        return [Dense(6, activation="relu", use_bias=False), Dense(3, use_bias=False)]

    a = nnx.Network(layers(), input_dim=4, seed=0, dtype="float64", l2=0.05, learning_rate=0.1)
    b = nnx.Network(layers(), input_dim=4, seed=0, dtype="float64",
                    optimizer=nnx.optimizers.SGD(0.1, weight_decay=0.1))
    for net in (a, b):
        net.fit(X, y, epochs=20, batch_size=None)
    for name, p in a.parameters().items():
        np.testing.assert_allclose(nnx.to_numpy(p), nnx.to_numpy(b.parameters()[name]), rtol=1e-10)


# ------------------------------------------------------------------ torch oracles

@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch(training, backend, torch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 5)) * 3 + 2
    dy = rng.normal(size=(10, 5))
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    running_mean, running_var = rng.normal(size=5), rng.uniform(0.5, 2, size=5)

    bn_t = torch.nn.BatchNorm1d(5, momentum=0.2, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        bn_t.weight.copy_(torch.tensor(gamma))
        bn_t.bias.copy_(torch.tensor(beta))
        bn_t.running_mean.copy_(torch.tensor(running_mean))
        bn_t.running_var.copy_(torch.tensor(running_var))
    bn_t.train(training)
    xt = torch.tensor(x, requires_grad=True)
    yt = bn_t(xt)
    (yt * torch.tensor(dy)).sum().backward()

    ctx = backend.context("float64")
    bn = BatchNorm(momentum=0.2, epsilon=1e-3)
    bn.build(5, ctx, None)
    bn.params = {"gamma": ctx.asarray(gamma), "beta": ctx.asarray(beta)}
    bn.state = {"running_mean": ctx.asarray(running_mean), "running_var": ctx.asarray(running_var)}
    y, cache = bn.forward(ctx.asarray(x), training=training)
    dx, grads = bn.backward(cache, ctx.asarray(dy))
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(y), yt.detach().numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(dx), xt.grad.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["gamma"]), bn_t.weight.grad.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["beta"]), bn_t.bias.grad.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(bn.state["running_mean"]), bn_t.running_mean.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(bn.state["running_var"]), bn_t.running_var.numpy(), **close)


def test_layernorm_matches_torch(backend, torch):
    rng = np.random.default_rng(1)
    x, dy = rng.normal(size=(6, 7)) * 2, rng.normal(size=(6, 7))
    gamma, beta = rng.normal(size=7), rng.normal(size=7)
    ln_t = torch.nn.LayerNorm(7, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ln_t.weight.copy_(torch.tensor(gamma))
        ln_t.bias.copy_(torch.tensor(beta))
    xt = torch.tensor(x, requires_grad=True)
    (ln_t(xt) * torch.tensor(dy)).sum().backward()

    ctx = backend.context("float64")
    ln = LayerNorm()
    ln.build(7, ctx, None)
    ln.params = {"gamma": ctx.asarray(gamma), "beta": ctx.asarray(beta)}
    y, cache = ln.forward(ctx.asarray(x), training=True)
    dx, grads = ln.backward(cache, ctx.asarray(dy))
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(y), ln_t(torch.tensor(x)).detach().numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(dx), xt.grad.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["gamma"]), ln_t.weight.grad.numpy(), **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["beta"]), ln_t.bias.grad.numpy(), **close)


def test_residual_network_matches_torch_autograd(backend, torch):
    X, y = _data(seed=3)
    net = _random_biases(nnx.Network(
        [Dense(5, activation="relu"), Residual([Dense(5, activation="tanh"), Dense(5)]), Dense(3)],
        input_dim=4, dtype="float64", seed=4, **backend.kwargs))
    loss, grads = net.gradients(X, y)
    p = {k: torch.tensor(nnx.to_numpy(v), requires_grad=True) for k, v in net.parameters().items()}
    x = torch.tensor(X)
    h = torch.relu(x @ p["layers.0.W"] + p["layers.0.b"])
    inner = torch.tanh(h @ p["layers.1.layers.0.W"] + p["layers.1.layers.0.b"])
    h = h + inner @ p["layers.1.layers.1.W"] + p["layers.1.layers.1.b"]
    logits = h @ p["layers.2.W"] + p["layers.2.b"]
    loss_t = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    assert set(grads) == set(p)
    for k in p:
        np.testing.assert_allclose(nnx.to_numpy(grads[k]), p[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_label_smoothing_matches_torch(torch):
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(8, 4)), rng.integers(0, 4, size=8)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(zt, torch.tensor(labels))
    ref.backward()
    loss = nnx.losses.CategoricalCrossentropy(label_smoothing=0.2)
    value, grad = loss.value_and_grad(np, z, np.eye(4)[labels])
    assert float(value) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10)


def test_weighted_losses_match_torch_definitions(backend, torch):
    rng = np.random.default_rng(5)
    ctx = backend.context("float64")
    # cross-entropy with class weights: sum(w_y * l) / sum(w_y)
    z, labels = rng.normal(size=(9, 3)), rng.integers(0, 3, size=9)
    cw = np.array([0.5, 2.0, 1.5])
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(cw))(zt, torch.tensor(labels))
    ref.backward()
    value, grad = nnx.losses.CategoricalCrossentropy().value_and_grad(
        ctx.xp, ctx.asarray(z), ctx.asarray(np.eye(3)[labels]), ctx.asarray(cw[labels][:, None]))
    assert float(value) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(grad), zt.grad.numpy(), rtol=1e-10)
    # BCE with per-sample weights: mean(w * l)
    z, t, w = rng.normal(size=(9, 1)), rng.integers(0, 2, size=(9, 1)).astype(float), rng.uniform(size=(9, 1))
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w))(zt, torch.tensor(t))
    ref.backward()
    value, grad = nnx.losses.BinaryCrossentropy().value_and_grad(
        ctx.xp, ctx.asarray(z), ctx.asarray(t), ctx.asarray(w))
    assert float(value) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(grad), zt.grad.numpy(), rtol=1e-10)


def test_class_weight_and_sample_weight_in_fit(backend):
    X, y = _data(n=30)
    net = nnx.Network([4, 6, 3], seed=0, dtype="float64", **backend.kwargs)
    Xd, Yd = net.prepare(X, y)
    from sklearn.utils.class_weight import compute_class_weight

    balanced = net.targets_.class_weights("balanced", y)
    np.testing.assert_allclose(balanced, compute_class_weight("balanced", classes=np.arange(3), y=y)[y])
    # class_weight={c: w} behaves like sample_weight=w[y]
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    a = nnx.Network([4, 6, 3], seed=0, dtype="float64", **backend.kwargs)
    b = nnx.Network([4, 6, 3], seed=0, dtype="float64", **backend.kwargs)
    a.fit(X, y, epochs=5, batch_size=8, class_weight=weights)
    b.fit(X, y, epochs=5, batch_size=8, sample_weight=np.array([weights[c] for c in y]))
    for name, p in a.parameters().items():
        np.testing.assert_allclose(nnx.to_numpy(p), nnx.to_numpy(b.parameters()[name]), rtol=1e-10)
    # and it changes the result compared with no weights
    c = nnx.Network([4, 6, 3], seed=0, dtype="float64", **backend.kwargs)
    c.fit(X, y, epochs=5, batch_size=8)
    assert not np.allclose(nnx.to_numpy(c.parameters()["layers.0.W"]),
                           nnx.to_numpy(a.parameters()["layers.0.W"]))


# ------------------------------------------------------------------ dropout behaviour

def test_dropout_is_identity_at_predict_and_inverted_in_training(backend):
    net = nnx.Network([Dropout(0.25)] + [Dense(1)], input_dim=2000, seed=0, **backend.kwargs)
    x = net.ctx.asarray(np.ones((50, 2000)))
    layer = net.layers[0]
    y_eval, _ = layer.forward(x, training=False)
    np.testing.assert_array_equal(nnx.to_numpy(y_eval), 1.0)
    y_train, mask = layer.forward(x, training=True)
    values = nnx.to_numpy(y_train)
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((values == 0).mean() - 0.25) < 0.01   # drops the requested fraction
    assert abs(values.mean() - 1.0) < 0.02            # expectation preserved


def test_dropout_is_reproducible_under_seed(backend):
    X, y = _data(n=40)
    runs = []
    for _ in range(2):
        net = nnx.Network([Dense(16, activation="relu"), Dropout(0.5), Dense(3)], input_dim=4,
                          seed=11, **backend.kwargs)
        net.fit(X, y, epochs=3, batch_size=8)
        runs.append(nnx.to_numpy(net.parameters()["layers.0.W"]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_max_norm_constraint_holds_after_training(backend):
    X, y = _data(n=40)
    net = nnx.Network([Dense(8, activation="relu", kernel_constraint=MaxNorm(0.5)), Dense(3)],
                      input_dim=4, seed=0, learning_rate=0.5, **backend.kwargs)
    net.fit(X, y, epochs=10, batch_size=8)
    norms = np.linalg.norm(nnx.to_numpy(net.parameters()["layers.0.W"]), axis=0)
    assert np.all(norms <= 0.5 + 1e-5) and np.any(norms > 0.49)


# ------------------------------------------------------------------ early stopping

def test_early_stopping_stops_and_restores_the_best_epoch(backend):
    from sklearn.datasets import make_moons

    X, y = make_moons(120, noise=0.35, random_state=0)
    Xv, yv = make_moons(60, noise=0.35, random_state=1)

    class Recorder(nnx.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.params = []

        def on_epoch_end(self, epoch, logs=None):
            self.params.append({k: nnx.to_numpy(v).copy() for k, v in self.network.parameters().items()})

    stopper = nnx.EarlyStopping(monitor="val_loss", patience=5)
    recorder = Recorder()
    net = nnx.Network([2, 64, 64, 1], seed=0, learning_rate=0.3, **backend.kwargs)
    history = net.fit(X, y, epochs=300, batch_size=8, validation_data=(Xv, yv),
                      callbacks=[recorder, stopper])
    val = history.history["val_loss"]
    assert stopper.stopped_epoch is not None and len(val) < 300
    assert stopper.best_epoch == int(np.argmin(val))
    assert len(val) == stopper.best_epoch + 1 + 5
    assert "val_accuracy" in history.history
    for name, p in net.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(p), recorder.params[stopper.best_epoch][name])
    assert net.evaluate(Xv, yv)["loss"] == pytest.approx(min(val), rel=1e-5)


def test_validation_split_holds_out_rows(backend):
    X, y = _data(n=50)
    net = nnx.Network([4, 6, 3], seed=0, **backend.kwargs)
    net.fit(X, y, epochs=2, batch_size=None, validation_split=0.2)
    assert net.optimizer.iterations == 2  # one full batch of the 40 training rows per epoch
    assert set(net.history_.history) == {"loss", "val_loss", "val_accuracy"}


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("make,match", [
    (lambda: Dropout(1.0), "Dropout rate"),
    (lambda: Dropout(-0.1), "Dropout rate"),
    (lambda: L2(-1.0), "l2"),
    (lambda: L1(-1.0), "l1"),
    (lambda: MaxNorm(0), "max_value"),
    (lambda: BatchNorm(momentum=0), "momentum"),
    (lambda: nnx.Network([2, 3, 1], l2=-0.1), "l2"),
    (lambda: nnx.losses.CategoricalCrossentropy(label_smoothing=1.0), "label_smoothing"),
    (lambda: nnx.EarlyStopping(mode="up"), "mode"),
    (lambda: nnx.EarlyStopping(patience=-1), "patience"),
    (lambda: Dense(3, kernel_regularizer="l2"), "kernel_regularizer"),
])
def test_bad_arguments_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_fit_arguments_for_regularization():
    X, y = _data(n=33)
    net = nnx.Network([Dense(4), BatchNorm(), Dense(3)], input_dim=4)
    with pytest.raises(ValueError, match="batch of 1"):
        net.fit(X, y, epochs=1, batch_size=32)
    with pytest.raises(ValueError, match="batch of 1"):
        net.fit(X, y, epochs=1, batch_size=1)
    net.fit(X, y, epochs=1, batch_size=11)
    for split in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="validation_split"):
            net.fit(X, y, epochs=1, batch_size=11, validation_split=split)
    with pytest.raises(ValueError, match="leaves"):
        nnx.Network([4, 1]).fit(X[:2], np.array([0, 1]), epochs=1, validation_split=0.1)
    with pytest.raises(ValueError, match="not logged.*validation_split"):
        nnx.Network([4, 3]).fit(X, y, epochs=1, callbacks=[nnx.EarlyStopping()])
    with pytest.raises(ValueError, match="not a class"):
        nnx.Network([4, 3]).fit(X, y, epochs=1, class_weight={7: 2.0})
    with pytest.raises(ValueError, match="sample_weight"):
        nnx.Network([4, 3]).fit(X, y, epochs=1, sample_weight=-np.ones(33))
    with pytest.raises(ValueError, match="sample_weight"):
        nnx.Network([4, 3]).fit(X, y, epochs=1, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="keep the width"):
        nnx.Network([Residual([Dense(3)]), Dense(3)], input_dim=4)


def test_penalties_and_constraints_reach_the_kernel_of_any_layer():
    """Not only Dense: a layer of the user's with a kernel ``W`` gets the network's l1/l2
    and its own kernel_constraint."""
    from nnx.layers import Layer
    from nnx.regularizers import MaxNorm

    class Linear(Layer):
        def __init__(self, units=3):
            super().__init__()
            self.units = units
            self.kernel_constraint = MaxNorm(0.1)

        def build(self, in_dim, ctx, rng):
            super().build(in_dim, ctx, rng)
            self.params = {"W": ctx.asarray(np.full((in_dim, self.units), 0.5))}
            self.output_dim = self.units
            return self.units

        def forward(self, x, *, training=False):
            return x @ self.params["W"], x

        def backward(self, cache, dy, need_dx=True):
            return dy @ self.params["W"].T, {"W": cache.T @ dy}

    X = np.random.default_rng(0).normal(size=(8, 2))
    y = (X[:, 0] > 0).astype(int)
    plain = nnx.Network([Linear(), Dense(1)], input_dim=2, seed=0)
    penalised = nnx.Network([Linear(), Dense(1)], input_dim=2, seed=0, l2=0.5)
    loss_plain, _ = plain.gradients(X, y)
    loss_penalised, grads = penalised.gradients(X, y)
    W = nnx.to_numpy(penalised.parameters()["layers.0.W"])
    V = nnx.to_numpy(penalised.parameters()["layers.1.W"])
    assert loss_penalised == pytest.approx(loss_plain + 0.5 * (np.sum(W**2) + np.sum(V**2)),
                                           rel=1e-5)
    penalised.fit(X, y, epochs=1)
    norms = np.linalg.norm(nnx.to_numpy(penalised.parameters()["layers.0.W"]), axis=0)
    assert np.all(norms <= 0.1 + 1e-6)  # the constraint ran after the update
