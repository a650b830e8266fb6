"""The divergence guard: no NaN model comes out of fit, whatever the backend."""

import warnings

import numpy as np
import pytest

import nnx
from nnx.layers import Dense, Dropout


def _exploding(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(100, 3)) * 1000  # unscaled inputs
    return X, (X[:, 0] > 0).astype(int)


def _assert_finite(net):
    for name, p in net.parameters().items():
        assert np.all(np.isfinite(nnx.to_numpy(p))), name


def test_divergence_raises_names_epoch_step_and_cause_and_restores(backend):
    X, y = _exploding()
    net = nnx.Network([3, 16, 1], learning_rate=10.0, seed=0, **backend.kwargs)
    with pytest.raises(nnx.DivergenceError,
                       match=r"epoch \d+, step \d+ of 4.*learning rate.*unscaled inputs"):
        net.fit(X, y, epochs=50)
    _assert_finite(net)
    assert np.all(np.isfinite(net.predict_proba(X[:5])))
    info = net.diverged_
    assert info["step"] >= 1 and info["epoch"] == len(net.history_.epoch)


def test_restored_parameters_are_those_before_the_bad_step(backend):
    """Replaying by hand: the restored parameters equal the ones right before the step that
    first produced a non-finite value."""
    X, y = _exploding(1)
    net = nnx.Network([3, 16, 1], learning_rate=10.0, seed=3, **backend.kwargs)
    with pytest.raises(nnx.DivergenceError):
        net.fit(X, y, epochs=50, batch_size=None)  # one step per epoch: easy to replay
    done = net.diverged_["epoch"]  # full-batch: epochs completed = steps completed
    ref = nnx.Network([3, 16, 1], learning_rate=10.0, seed=3, **backend.kwargs)
    ref.fit(X, y, epochs=done, batch_size=None)
    for name, p in net.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(p), nnx.to_numpy(ref.parameters()[name]))


def test_warn_mode_returns_the_history_so_far(backend):
    X, y = _exploding()
    net = nnx.Network([3, 16, 1], learning_rate=10.0, seed=0, **backend.kwargs)
    with pytest.warns(nnx.NonFiniteWarning, match="diverged") as caught:
        history = net.fit(X, y, epochs=50, on_nonfinite="warn")
    assert caught[0].filename == __file__  # the warning points at the user's fit call
    loss = history.history["loss"]
    assert len(loss) < 50 and len(loss) == len(history.epoch)
    # every finished epoch is finite; the diverged one logs NaN, as Keras's history does
    assert all(np.isfinite(loss[:-1])) and np.isnan(loss[-1])
    _assert_finite(net)


def test_nan_gradient_with_dropout_and_adam_is_caught(backend):
    X, y = _exploding(2)
    net = nnx.Network([Dense(32, activation="relu"), Dropout(0.2), Dense(1)], input_dim=3,
                      optimizer=nnx.optimizers.SGD(50.0, momentum=0.9), seed=1,
                      **backend.kwargs)
    with pytest.raises(nnx.DivergenceError):
        net.fit(X, y, epochs=100, batch_size=16)
    _assert_finite(net)


def test_a_healthy_run_is_untouched(backend):
    """The guard changes nothing in a run that stays finite: the same parameters and losses as
    the same steps taken one by one with ``train_step``, no warning, no divergence record."""
    X, y = _exploding()
    X = X / 1000
    a = nnx.Network([3, 8, 1], learning_rate=0.1, seed=0, **backend.kwargs)
    b = nnx.Network([3, 8, 1], learning_rate=0.1, seed=0, **backend.kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = a.fit(X, y, epochs=3, batch_size=25, shuffle=False)
    losses = [[b.train_step(X[s:s + 25], y[s:s + 25]) for s in range(0, 100, 25)]
              for _ in range(3)]
    np.testing.assert_allclose(history.history["loss"], np.mean(losses, axis=1), rtol=1e-5)
    for name, p in a.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(p), nnx.to_numpy(b.parameters()[name]))
    assert a.diverged_ is None


def test_a_healthy_fit_after_a_diverged_one_reports_no_divergence(backend):
    X, y = _exploding()
    net = nnx.Network([3, 16, 1], learning_rate=10.0, seed=0, **backend.kwargs)
    with pytest.warns(nnx.NonFiniteWarning):
        net.fit(X, y, epochs=50, on_nonfinite="warn")
    assert net.diverged_ is not None
    net.optimizer.learning_rate = 1e-4
    net.fit(X / 1000, y, epochs=1)
    assert net.diverged_ is None


@pytest.mark.parametrize("verbose", [0, 2])
def test_a_divergence_in_the_first_epoch_still_returns_every_key(backend, verbose, capsys):
    X, y = _exploding()
    net = nnx.Network([3, 16, 1], learning_rate=1e38, seed=0, **backend.kwargs)
    with pytest.warns(nnx.NonFiniteWarning, match="epoch 1,"):
        history = net.fit(X, y, epochs=5, validation_split=0.2, on_nonfinite="warn",
                          verbose=verbose)
    keys = ["loss", "val_loss", "val_accuracy"] + (["accuracy"] if verbose else [])
    assert sorted(history.history) == sorted(keys)
    assert all(len(v) == 1 and np.isnan(v[0]) for v in history.history.values())
    assert history.epoch == [0]
    if verbose:  # the progress line of that epoch says so
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("epoch 1/5  ") and "  loss=nan  " in line


def test_bad_on_nonfinite_value():
    with pytest.raises(ValueError, match="on_nonfinite"):
        nnx.Network([2, 1]).fit(np.ones((4, 2)), [0, 1, 0, 1], on_nonfinite="ignore")


def test_train_step_is_guarded_too(backend):
    X, y = _exploding()
    net = nnx.Network([3, 16, 1], learning_rate=1e30, seed=0, **backend.kwargs)
    before = {k: nnx.to_numpy(v).copy() for k, v in net.parameters().items()}
    with pytest.raises(nnx.DivergenceError, match="train_step"):
        for _ in range(5):
            net.train_step(X, y)
            before = {k: nnx.to_numpy(v).copy() for k, v in net.parameters().items()}
    for name, p in net.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(p), before[name])


def test_restore_points_keep_the_mask_streams_only_when_a_layer_draws_masks(backend):
    X, y = _exploding(3)
    X = X / 1000
    plain = nnx.Network([3, 4, 1], seed=0, **backend.kwargs)
    assert plain.snapshot(optimizer=True, masks_only=True)["random"] == {}
    assert "shuffle" in plain.snapshot()["random"]  # a full snapshot keeps every stream
    net = nnx.Network([Dense(4, activation="relu"), Dropout(0.5), Dense(1)], input_dim=3,
                      seed=0, **backend.kwargs)
    point = net.snapshot(optimizer=True, masks_only=True)
    assert "mask_host" in point["random"] and "shuffle" not in point["random"]
    trained = []
    for _ in range(2):  # the second epoch replays the first from the restore point
        net.fit(X, y, epochs=1, shuffle=False)
        trained.append({k: nnx.to_numpy(v).copy() for k, v in net.parameters().items()})
        net.restore(point)
    for name, value in trained[0].items():
        np.testing.assert_array_equal(trained[1][name], value)  # the same masks again
