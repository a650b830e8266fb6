"""fit's verbose output, as Keras's: a bar per epoch that stays (1), a line per epoch (2),
with the loss, the validation scores and a classifier's training accuracy."""

import io
import re

import numpy as np
import pytest

import nnx
from nnx.callbacks import ProgressBar


def _moons(n=200):
    X, y = nnx.datasets.make_moons(n, noise=0.2, seed=0)
    return nnx.datasets.standardize(X), y


def _lines(text):
    return [line for line in text.split("\n") if line]


def test_verbose_2_prints_one_line_per_epoch_with_the_history(backend, capsys):
    X, y = _moons()
    net = nnx.Network([2, 16, 1], learning_rate=0.1, seed=0, **backend.kwargs)
    history = net.fit(X, y, epochs=4, validation_split=0.25, verbose=2)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 4 and "[" not in "".join(lines)  # no bar
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch + 1}/4  ")
        shown = dict(re.findall(r"(\w+)=(\S+)", line))
        assert list(shown) == ["loss", "accuracy", "val_loss", "val_accuracy"]
        for key, value in shown.items():
            assert float(value) == pytest.approx(history.history[key][epoch], rel=1e-3)
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]


def test_verbose_1_draws_a_bar_of_the_steps(backend, capsys):
    X, y = _moons()
    net = nnx.Network([2, 8, 1], seed=0, **backend.kwargs)
    net.fit(X, y, epochs=3, batch_size=32, verbose=1)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 3  # a captured stream gets each finished line, no redraws
    for epoch, line in enumerate(lines):
        assert re.match(rf"epoch {epoch + 1}/3  7/7 \[={{30}}\]  \d+\.\d\ds \d+\.\dms/step  "
                        r"loss=\S+  accuracy=\S+$", line), line


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_bar_moves_and_each_epoch_stays(monkeypatch):
    X, y = _moons()
    stream = _Terminal()
    monkeypatch.setattr(ProgressBar, "REFRESH", 0.0)  # redraw at every step
    bar = ProgressBar(2, stream=stream, steps=7)
    net = nnx.Network([2, 8, 1], seed=0)
    net.fit(X, y, epochs=2, batch_size=32, callbacks=[bar])
    text = stream.getvalue()
    epochs = text.split("\n")
    assert len(epochs) == 3 and epochs[2] == ""  # two lines that stay, then nothing
    for epoch, drawn in enumerate(epochs[:2]):
        frames = drawn.split("\r")[1:]
        assert len(frames) == 7 + 1  # one per step, then the finished line
        assert frames[0].startswith(f"epoch {epoch + 1}/2  1/7 [====>")
        assert frames[-1].startswith(f"epoch {epoch + 1}/2  7/7 [{'=' * 30}]")
        assert "loss=" in frames[-1] and frames[-1].endswith("\x1b[K")


def test_training_accuracy_is_the_steps_own(backend):
    """Full-batch: one step per epoch, so each epoch's training accuracy is that of the
    network before its step, on every training row (twins from the same seed)."""
    X, y = _moons()
    y3 = np.random.default_rng(0).integers(0, 3, len(y))
    for layers, labels in (([2, 8, 1], y), ([2, 8, 3], y3)):
        def make():
            return nnx.Network(layers, learning_rate=0.5, seed=0, **backend.kwargs)
        history = make().fit(X, labels, epochs=3, batch_size=None, verbose=2)
        for epoch in range(3):
            twin = make()
            twin.fit(X, labels, epochs=epoch, batch_size=None)  # 0: labels learned, no step
            assert history.history["accuracy"][epoch] == twin.score(X, labels)


def test_regression_shows_no_accuracy(capsys):
    X, _ = _moons()
    net = nnx.Network([2, 8, 1], loss="mse", optimizer="adam", seed=0)
    history = net.fit(X, X[:, 0] * 2.0, epochs=2, verbose=2)
    assert sorted(history.history) == ["loss"]
    assert "accuracy" not in capsys.readouterr().err


def test_an_iterable_of_unknown_length_counts_its_steps(capsys):
    X, y = _moons()

    def batches():
        return ((X[s:s + 50], y[s:s + 50]) for s in range(0, 200, 50))
    nnx.Network([2, 8, 1], seed=0).fit(batches, epochs=2, verbose=1)
    lines = _lines(capsys.readouterr().err)
    assert [line.split("  ")[1] for line in lines] == ["4/4 [" + "=" * 30 + "]"] * 2


def test_bad_verbose_is_named():
    X, y = _moons(20)
    with pytest.raises(ValueError, match="verbose must be one of 0, 1, 2"):
        nnx.Network([2, 1]).fit(X, y, verbose=3)
    with pytest.raises(ValueError, match="verbose"):
        ProgressBar(3, verbose="yes")


def test_lbfgs_shows_the_loss_alone(capsys):
    """L-BFGS steps through a closure, without step outputs to count: no training accuracy,
    and no empty history key for it."""
    X, y = _moons()
    history = nnx.Network([2, 8, 1], optimizer="lbfgs", seed=0).fit(X, y, epochs=2,
                                                                  verbose=2)
    assert sorted(history.history) == ["loss"]
    assert "accuracy" not in capsys.readouterr().err


def test_a_closure_optimizer_prints_a_line_per_epoch_and_no_bar_that_never_fills(capsys):
    # L-BFGS takes one full-batch step an epoch through a closure, which reports no step
    X, y = _moons()
    net = nnx.Network([2, 8, 1], optimizer="lbfgs", seed=0)
    net.fit(X, y, epochs=3, verbose=1)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 3 and "[" not in "".join(lines), lines
    assert all(re.match(rf"epoch {k + 1}/3  \d+\.\d\ds  loss=\S+$", line)
               for k, line in enumerate(lines)), lines
