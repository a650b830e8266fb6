"""The sync audit: no training step makes the host wait for the device.

Recorded on torch's CPU with :class:`nnx.sync_audit.SyncRecorder` (see its module for which
operators block on CUDA): ``fit`` over 2 and over 20 steps per epoch must dispatch exactly the
same host-blocking operators, for every activation, loss, optimizer, clipping mode, layer,
penalty, constraint and weighting. What remains is per epoch and per call, and is pinned
below (the README's backend section lists it).
"""

import numpy as np
import pytest

import nnx
from nnx import activations, optimizers
from nnx.callbacks import EarlyStopping, ReduceLROnPlateau
from nnx.layers import BatchNorm, Dense, Dropout, LayerNorm, Residual, Standardize
from nnx.regularizers import L1, L1L2, L2, MaxNorm
from nnx.schedules import CosineAnnealing

torch = pytest.importorskip("torch")
from nnx.sync_audit import SyncRecorder, per_step_syncs  # noqa: E402  (needs torch)

BATCH = 8
ACTIVATIONS = sorted(set(activations.ACTIVATIONS) - {"linear", "logistic", "silu"})
# L-BFGS is left out on purpose: like torch.optim.LBFGS it decides on the host (its line
# search and stopping tests read values back, a few per inner iteration); in fit it takes one
# full-batch step per epoch, so those reads are per epoch. The README says so.
OPTIMIZERS = sorted(set(optimizers.OPTIMIZERS) - {"lbfgs"})


def _data(n, task, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    if task == "multiclass":
        y = np.argmax(X[:, :3], axis=1)
    elif task == "regression":
        y = X[:, 0] * 2.0 + 0.5
    else:
        y = (X[:, 0] > 0).astype(int)
    return X, y


def _fit(make_net, task="binary", **fit_kwargs):
    def run(steps):
        X, y = _data(steps * BATCH, task)
        net = make_net()
        net.fit(X, y, epochs=2, batch_size=BATCH, **fit_kwargs)
    return run


def _assert_no_per_step_sync(run):
    few, many = per_step_syncs(run)
    assert many == few, f"host syncs grow with the steps: {dict(few)} -> {dict(many)}"


def _net(layers=None, **kwargs):
    kwargs.setdefault("seed", 0)
    return nnx.Network(layers or [4, 8, 1], backend="torch", **kwargs)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations(name):
    _assert_no_per_step_sync(_fit(lambda: _net([4, 8, 8, 1], activation=name)))


@pytest.mark.parametrize("loss, task, outputs", [
    ("binary_crossentropy", "binary", 1), ("categorical_crossentropy", "multiclass", 3),
    (nnx.losses.CategoricalCrossentropy(label_smoothing=0.1), "multiclass", 3),
    ("mse", "regression", 1), ("mae", "regression", 1), ("huber", "regression", 1),
])
def test_losses(loss, task, outputs):
    _assert_no_per_step_sync(_fit(lambda: _net([4, 8, outputs], loss=loss), task))


@pytest.mark.parametrize("foreach", [False, True], ids=["per_parameter", "packed"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers(name, foreach):
    def make():
        opt = optimizers.get(name)
        return _net([4, 8, 1], optimizer=type(opt)(**{**opt.get_config(), "foreach": foreach}))
    _assert_no_per_step_sync(_fit(make))


@pytest.mark.parametrize("clip", [{"clip_norm": 1.0}, {"clip_value": 0.1}],
                         ids=["clip_norm", "clip_value"])
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_clipping(name, clip):
    opt = type(optimizers.get(name))
    _assert_no_per_step_sync(_fit(lambda: _net(optimizer=opt(1e-2, **clip))))


@pytest.mark.parametrize("extras", [
    [Dropout(0.3)], [BatchNorm()], [LayerNorm()],
    [Residual([Dense(8, activation="relu"), Dense(8)])],
], ids=["dropout", "batch_norm", "layer_norm", "residual"])
def test_layers(extras):
    def make():
        import copy

        layers = [Dense(8, activation="relu"), *copy.deepcopy(extras), Dense(1)]
        return _net(layers, input_dim=4)
    _assert_no_per_step_sync(_fit(make))


def test_input_standardization():
    """The Standardize layer is adapted once per fit (the training rows copied back, in
    blocks); its steps read nothing."""
    _assert_no_per_step_sync(_fit(lambda: _net(standardize=True)))
    _assert_no_per_step_sync(_fit(lambda: _net([Standardize(), Dense(8, activation="relu"),
                                                Dense(1)], input_dim=4)))


def test_progress_and_training_accuracy():
    _assert_no_per_step_sync(_fit(_net, verbose=1))
    _assert_no_per_step_sync(_fit(lambda: _net([4, 8, 3], loss="categorical_crossentropy"),
                                  "multiclass", verbose=2))


@pytest.mark.parametrize("dense", [
    dict(kernel_regularizer=L1(1e-3)), dict(kernel_regularizer=L2(1e-3)),
    dict(kernel_regularizer=L1L2(1e-3, 1e-3)), dict(kernel_constraint=MaxNorm(0.5)),
], ids=["l1", "l2", "l1l2", "max_norm"])
def test_penalties_and_constraints(dense):
    _assert_no_per_step_sync(_fit(
        lambda: _net([Dense(8, activation="relu", **dense), Dense(1)], input_dim=4)))


def test_network_wide_penalties_and_schedule():
    _assert_no_per_step_sync(_fit(lambda: _net(
        optimizer=optimizers.SGD(CosineAnnealing(0.1, 10), momentum=0.9), l1=1e-4, l2=1e-3)))


@pytest.mark.parametrize("fit_kwargs", [
    {"class_weight": "balanced"}, {"validation_split": 0.25},
    {"callbacks": [EarlyStopping(patience=5), ReduceLROnPlateau(patience=2)],
     "validation_split": 0.25},
    {"shuffle": False},
], ids=["class_weight", "validation", "callbacks", "no_shuffle"])
def test_fit_options(fit_kwargs):
    def make():
        return _net()
    import copy

    _assert_no_per_step_sync(_fit(make, **copy.deepcopy(fit_kwargs)))


def test_the_audit_catches_a_per_step_read():
    """The audit itself: a loss that reads a value back every step is caught."""
    class Reading(nnx.losses.BinaryCrossentropy):
        def value_and_grad(self, xp, z, y, weight=None):
            value, grad = super().value_and_grad(xp, z, y, weight)
            bool(value > 0)  # a host read, as an `if` on a device value would be
            return value, grad

    few, many = per_step_syncs(_fit(lambda: _net(loss=Reading())))
    assert many["_local_scalar_dense"] - few["_local_scalar_dense"] == 2 * 18


def test_the_audit_catches_host_copies_of_whole_tensors():
    x = torch.randn(5)
    with SyncRecorder() as rec:
        x.numpy()
        np.asarray(x)
        x.tolist()
        x.cpu()
        x.to("cpu")
        nnx.to_numpy(x)
        x.to(torch.float64)  # a cast, no device: not a copy between devices
    assert rec.blocking == {"Tensor.numpy": 2, "Tensor.__array__": 1, "Tensor.tolist": 1,
                            "Tensor.cpu": 2, "Tensor.to with a device": 1}


def test_the_audit_catches_a_per_step_copy_to_the_host():
    class Copying(nnx.losses.BinaryCrossentropy):
        def value_and_grad(self, xp, z, y, weight=None):
            nnx.to_numpy(z)  # a per-step copy, as a host-side metric would make
            return super().value_and_grad(xp, z, y, weight)

    few, many = per_step_syncs(_fit(lambda: _net(loss=Copying())))
    assert many["Tensor.numpy"] - few["Tensor.numpy"] == 2 * 18


def test_the_audit_catches_host_data_and_boolean_masks():
    x = torch.randn(5)
    with SyncRecorder() as rec:
        torch.asarray(np.ones(3))
        x[x > 0] = 0.0
        _ = x[x < 0]
    # the 0.0 written through the mask is made into a tensor too
    assert rec.blocking == {"lift_fresh": 2, "index_put_ with a boolean index": 1,
                            "index with a boolean index": 1}


def test_what_each_call_reads_back():
    """Per call and per epoch, pinned: what the README's backend section lists."""
    X, y = _data(64, "binary")
    net = _net()
    with SyncRecorder() as rec:
        net.fit(X, y, epochs=3, batch_size=BATCH)
    # per fit: the data, labels and each epoch's order cross in; each epoch one value
    # (loss and parameter finiteness together) comes back; a network's first fit reads
    # one more at its end: the untrained loss, for the no-progress warning
    assert rec.blocking == {"lift_fresh": 2 + 3, "_local_scalar_dense": 3 + 1}
    with SyncRecorder() as rec:
        net.fit(X, y, epochs=3, batch_size=BATCH, validation_split=0.25)
    # validation: its rows cross in once; each epoch its loss and accuracy come back
    assert rec.blocking == {"lift_fresh": 2 + 2 + 3, "_local_scalar_dense": 3 * 3}
    with SyncRecorder() as rec:
        net.fit(X, y, epochs=3, batch_size=BATCH, verbose=2)
    # the progress line's training accuracy: its count, once per epoch, beside the loss
    assert rec.blocking == {"lift_fresh": 2 + 3, "_local_scalar_dense": 3 * 2}
    with SyncRecorder() as rec:
        net.train_step(X[:BATCH], y[:BATCH])
    assert rec.blocking == {"lift_fresh": 2, "_local_scalar_dense": 1}  # the batch loss
    for predict in (net.predict, net.predict_proba):
        with SyncRecorder() as rec:
            predict(X)
        # the output's finiteness (NaN output is an error, never a silent result), then the
        # result itself, copied to the host for a host input
        assert rec.blocking == {"lift_fresh": 1, "_local_scalar_dense": 1, "Tensor.cpu": 1,
                                "Tensor.numpy": 1}
    with SyncRecorder() as rec:
        net.evaluate(X, y)
    assert rec.blocking == {"lift_fresh": 2, "_local_scalar_dense": 2}  # loss, accuracy


@pytest.mark.parametrize("sync_batchnorm", [False, True])
def test_a_data_parallel_step_adds_no_host_sync(tmp_path, sync_batchnorm):
    """The gradient sum of a data-parallel fit (torch.distributed, one gloo process here)
    reads nothing back: it sums on the device's own tensors."""
    import torch.distributed as dist

    from nnx.distributed import DataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/group", rank=0,
                            world_size=1)
    try:
        plan = DataParallel("torch", sync_batchnorm=sync_batchnorm)
        _assert_no_per_step_sync(_fit(
            lambda: _net([Dense(8, activation="relu"), BatchNorm(), Dense(1)], input_dim=4,
                         optimizer="adam", l2=1e-3),
            distributed=plan, sample_weight=None))
    finally:
        dist.destroy_process_group()
