"""The quiet failures fit warns about: inputs far from standardized, and a loss that ends
above where it started; and silence on healthy fits."""

import warnings

import numpy as np
import pytest

import nnx
from nnx.diagnostics import NoProgressWarning, TrainingWarning, UnscaledInputWarning
from nnx.layers import BatchNorm, Dense, Dropout


def _moons(n=200, seed=0):
    X, y = nnx.datasets.make_moons(n, noise=0.2, seed=seed)
    return nnx.datasets.standardize(X), y


def _only(caught, category):
    return [w for w in caught if issubclass(w.category, category)]


def test_unscaled_inputs_warn_once_at_the_users_call(backend):
    X, y = _moons()
    X = X * [1.0, 500.0] + [0.0, 2000.0]
    net = nnx.Network([2, 8, 1], seed=0, **backend.kwargs)
    with pytest.warns(UnscaledInputWarning, match=r"column 1 .* 2\.06e\+03.*standardize=True") \
            as caught:
        net.fit(X, y, epochs=3)
    assert len(_only(caught, UnscaledInputWarning)) == 1
    assert caught[0].filename == __file__
    # the same data as a device array of the network's backend: measured there
    net = nnx.Network([2, 8, 1], seed=0, **backend.kwargs)
    with pytest.warns(UnscaledInputWarning):
        net.fit(net.ctx.asarray(X), y, epochs=1)


def test_a_network_that_scales_its_inputs_is_not_warned(backend):
    X, y = _moons()
    X = X * 1000.0
    net = nnx.Network([2, 8, 1], learning_rate=0.1, seed=0, standardize=True,
                      **backend.kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, y, epochs=5)


def test_streamed_sources_are_measured_on_their_first_rows(tmp_path):
    X, y = _moons()
    np.save(tmp_path / "X.npy", X * 1000.0)
    np.save(tmp_path / "y.npy", y)
    with pytest.warns(UnscaledInputWarning, match="column"):
        nnx.Network([2, 8, 1], seed=0).fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"),
                                           epochs=1)

    def batches():
        return ((X[s:s + 50] * 1000.0, y[s:s + 50]) for s in range(0, 200, 50))
    with pytest.warns(UnscaledInputWarning):
        nnx.Network([2, 8, 1], seed=0).fit(batches, epochs=1)


@pytest.mark.parametrize("optimizer, rate", [("adam", 1e6), ("sgd", 100.0)])
def test_a_loss_that_ends_above_its_start_warns(backend, optimizer, rate):
    """Finite but useless: the rate is far too high, the loss ends orders of magnitude above
    the untrained network's, and accuracy is a coin toss."""
    X, y = _moons()
    net = nnx.Network([2, 16, 8, 1], optimizer=optimizer, learning_rate=rate, seed=0,
                      **backend.kwargs)
    with pytest.warns(NoProgressWarning, match=r"ended at .*above where this fit started.*"
                      r"learning rate too high \(now") as caught:
        history = net.fit(X, y, epochs=30)
    assert len(_only(caught, NoProgressWarning)) == 1
    assert caught[0].filename == __file__
    assert np.all(np.isfinite(history.history["loss"]))
    assert net.score(X, y) < 0.8


def test_later_fits_and_divergences_are_not_second_guessed():
    X, y = _moons()
    net = nnx.Network([2, 16, 8, 1], optimizer="adam", learning_rate=1e6, seed=0)
    with pytest.warns(NoProgressWarning):
        net.fit(X, y, epochs=30)
    with warnings.catch_warnings():  # a continuation compares nothing: no read, no warning
        warnings.simplefilter("error", TrainingWarning)
        net.fit(X, y, epochs=2)
    diverging = nnx.Network([2, 16, 1], learning_rate=1e38, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diverging.fit(X, y, epochs=3, on_nonfinite="warn")
    assert [w.category for w in caught] == [nnx.NonFiniteWarning]


def _healthy_fits():
    X, y = _moons()
    rng = np.random.default_rng(0)
    Xm = rng.normal(size=(150, 4))
    ym = np.argmax(Xm[:, :3], axis=1)
    yr = Xm @ [1.0, -2.0, 0.5, 0.0] + 0.1 * rng.normal(size=150)
    yield "binary", lambda: nnx.Network([2, 16, 8, 1], learning_rate=0.1, seed=0).fit(
        X, y, epochs=50, validation_split=0.2, verbose=2)
    yield "multiclass", lambda: nnx.Network([4, 16, 3], optimizer="adam", seed=1).fit(
        Xm, ym, epochs=20, batch_size=16)
    yield "regression", lambda: nnx.Network([4, 16, 1], loss="mse", optimizer="adam",
                                            seed=2).fit(Xm, yr, epochs=20)
    yield "dropout and batch norm", lambda: nnx.Network(
        [Dense(32, activation="relu"), BatchNorm(), Dropout(0.5), Dense(3)], input_dim=4,
        optimizer="adam", seed=3).fit(Xm, ym, epochs=5)
    yield "one short epoch", lambda: nnx.Network([2, 4, 1], seed=4).fit(X[:16], y[:16],
                                                                      epochs=1)

    def many_short_fits():
        net = nnx.Network([4, 16, 3], optimizer="adam", seed=5)
        for _ in range(30):  # as partial_fit does
            net.fit(Xm, ym, epochs=1, batch_size=32)
    yield "many short fits", many_short_fits


@pytest.mark.parametrize("name, run", list(_healthy_fits()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_healthy_fits_are_silent(name, run, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run()


@pytest.mark.parametrize("loss, lr", [("mse", 0.002), (None, 0.01)])
def test_a_healthy_weighted_fit_is_not_warned(loss, lr):
    # weights scale the epochs' losses (element-wise losses divide by the row count, not
    # the weights' sum): the starting loss must be weighted the same way
    X, y = _moons()
    net = nnx.Network([2, 16, 1], seed=0, loss=loss, learning_rate=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        history = net.fit(X, y, epochs=30, sample_weight=np.full(y.shape[0], 50.0))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_the_input_check_converts_only_its_sample_of_a_dataframe(monkeypatch):
    pd = pytest.importorskip("pandas")
    from nnx.diagnostics import SAMPLE_ROWS, FitWatch

    X, y = _moons(4 * SAMPLE_ROWS)
    frame = pd.DataFrame(X * [1.0, 500.0], columns=["width", "mass_g"])
    net = nnx.Network([2, 8, 1], seed=0)
    Xd = net.prepare(frame)
    seen = []
    to_numpy = pd.DataFrame.to_numpy
    monkeypatch.setattr(pd.DataFrame, "to_numpy",
                        lambda self, *a, **k: seen.append(len(self)) or to_numpy(self, *a, **k))
    with pytest.warns(UnscaledInputWarning, match="column 'mass_g' has a typical magnitude"):
        FitWatch.for_arrays(net, frame, Xd, net.encode_targets(y, len(y)))
    assert seen == [SAMPLE_ROWS]  # the sampled rows, not the whole frame
