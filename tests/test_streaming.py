"""Training and inference on data read batch by batch: memmaps, .npy paths, datasets,
iterables. The oracle is the in-memory fit: same seed, same shuffle, same parameters."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnx
from nnx.data import epoch_order
from nnx.sources import ArrayDataset, Dataset


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(n, 3)), axis=1)
    return X, y


def _memmaps(tmp_path, X, y):
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    Xm[:] = X
    ym = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=y.dtype, shape=y.shape)
    ym[:] = y
    Xm.flush()
    ym.flush()
    return np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")


def _net(backend, **kwargs):
    from nnx.layers import BatchNorm, Dense, Dropout

    return nnx.Network([Dense(8, activation="relu"), BatchNorm(), Dropout(0.2), Dense(3)],
                       input_dim=5, optimizer="adam", seed=3, dtype="float64",
                       **backend.kwargs, **kwargs)


def _params(net):
    return {k: nnx.to_numpy(v) for k, v in net.parameters().items()}


@pytest.mark.parametrize("shuffle", [True, "block", False])
def test_a_streamed_fit_equals_the_in_memory_fit(backend, tmp_path, shuffle, monkeypatch):
    monkeypatch.setattr("nnx.data.BLOCK_ROWS", 64)  # several blocks in 300 rows
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    memory, streamed = _net(backend), _net(backend)
    h1 = memory.fit(X, y, epochs=3, batch_size=32, shuffle=shuffle)
    h2 = streamed.fit(Xm, ym, epochs=3, batch_size=32, shuffle=shuffle)
    for name, p in _params(memory).items():
        np.testing.assert_array_equal(_params(streamed)[name], p, err_msg=name)
    assert h1.history["loss"] == h2.history["loss"]
    # paths, a dataset of the user's, and no prefetch give the same again
    by_path = _net(backend)
    by_path.fit(str(tmp_path / "X.npy"), tmp_path / "y.npy", epochs=3, batch_size=32,
                shuffle=shuffle, prefetch=0)
    np.testing.assert_array_equal(_params(by_path)["layers.0.W"], _params(memory)["layers.0.W"])


def test_block_shuffle_reads_contiguous_blocks_and_covers_every_row(monkeypatch):
    monkeypatch.setattr("nnx.data.BLOCK_ROWS", 10)
    order = epoch_order(95, "block", np.random.default_rng(0))
    assert sorted(order) == list(range(95))
    i = 0
    while i < 95:  # the order is whole blocks of consecutive rows, one after another
        start = order[i] // 10 * 10
        length = min(10, 95 - start)
        assert sorted(order[i:i + length]) == list(range(start, start + length))
        i += length
    assert not np.array_equal(order, np.arange(95))


class Squares(Dataset):
    """A user's map-style dataset: rows computed on demand."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def take(self, rows):
        x = np.stack([np.sin(rows), np.cos(rows)], axis=1)
        return x, (np.sin(rows) > 0).astype(int)


def test_datasets_and_iterables_train(backend):
    net = nnx.Network([2, 8, 1], seed=0, **backend.kwargs)
    history = net.fit(Squares(200), epochs=3, batch_size=25)
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()
    X, y = _data(120, 5)
    chunks = [(X[i:i + 40], y[i:i + 40]) for i in range(0, 120, 40)]
    for source in (lambda: iter(chunks), chunks):
        net = nnx.Network([5, 8, 3], seed=0, **backend.kwargs)
        net.fit(source, epochs=2)
        assert net.classes_.tolist() == [0, 1, 2]
    one_shot = nnx.Network([5, 8, 3], seed=0, **backend.kwargs)
    endless = (chunk for _ in range(100) for chunk in chunks)
    one_shot.fit(endless, epochs=4, steps_per_epoch=3, classes=[0, 1, 2])
    assert len(one_shot.history_.epoch) == 4


def test_bad_sources_name_the_batch_and_the_row(tmp_path):
    X, y = _data(120, 5)
    good = [(X[:40], y[:40]), (X[40:80], y[40:80])]
    nan = np.where(X[80:] > 1.5, np.nan, X[80:])
    first_nan = 80 + int(np.argmax(np.isnan(nan).any(axis=1)))
    stranger = y[80:].copy()
    stranger[13] = 7
    here = "counted from the epoch's first batch"
    cases = [
        (good + [(X[80:, :4], y[80:])], f"batch 2 of the data source.*4 features.*5.*row 80 {here}"),
        (good + [(np.full((40, 5), "a"), y[80:])], f"batch 2 of the data source.*row 80 {here}"),
        (good + [(nan, y[80:])], rf"batch 2 .*NaN.*is row {first_nan} {here}"),
        (good + [(X[80:], stranger)], rf"batch 2 of the data source.*7.*row 13 of batch 2 is row "
                                      rf"93 {here}"),
        (good + [(X[80:], y[80:], np.ones(40))], "batch 2 of the data source has 3 elements"),
        (good + [(X[80:], y[80:-1])], "batch 2 of the data source.*40 and 39"),
        (good + [(X[80:80], y[80:80])], "batch 2 of the data source.*empty"),
    ]
    for batches, match in cases:
        net = nnx.Network([5, 8, 3], seed=0)
        with pytest.raises(ValueError, match=match):
            net.fit(batches, epochs=1, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="no batch"):
        nnx.Network([5, 8, 3]).fit(lambda: iter([]), epochs=1, classes=[0, 1, 2])
    one_shot = iter(good)
    with pytest.raises(ValueError, match=r"exhausted after 2 of steps_per_epoch=3 batches "
                                         r"\(80 rows\)"):
        nnx.Network([5, 8, 3]).fit(one_shot, epochs=1, steps_per_epoch=3, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="steps_per_epoch"):
        nnx.Network([5, 8, 3]).fit(iter(good), epochs=1, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes="):
        nnx.Network([5, 8, 3]).fit(iter(good), epochs=1, steps_per_epoch=2)
    Xm, ym = _memmaps(tmp_path, X, y)
    with pytest.raises(ValueError, match="not a .npy file"):
        nnx.Network([5, 8, 3]).fit(tmp_path / "X.npz", ym)
    with pytest.raises(ValueError, match="120 rows but y has 100"):
        nnx.Network([5, 8, 3]).fit(Xm, y[:100])


@pytest.mark.parametrize("shuffle", [True, "block", False])
def test_a_bad_row_of_a_memmap_is_named_as_a_row_of_the_source(tmp_path, shuffle, monkeypatch):
    """Wherever the shuffle puts it, in whichever group and batch, the error names the row
    as the source numbers it; labels outside classes= are refused before the first step."""
    monkeypatch.setattr("nnx.sources.GROUP_BYTES", 2000)  # several groups of a few batches
    X, y = _data()
    X[137, 2] = np.nan
    Xm, ym = _memmaps(tmp_path, X, y)
    with pytest.raises(ValueError, match=r"batch \d+ of the data source: X contains NaN.* "
                                         r"is row 137 of the source"):
        nnx.Network([5, 8, 3], seed=0).fit(Xm, ym, epochs=1, batch_size=16, shuffle=shuffle)
    y[251] = 5
    _, ym = _memmaps(tmp_path, X, y)
    with pytest.raises(ValueError, match=r"not among the classes.*\[5\] \(first at row 251\)"):
        nnx.Network([5, 8, 3], seed=0).fit(Xm, ym, epochs=1, classes=[0, 1, 2])


def _weighted_data(tmp_path):
    X, y = _data()
    w = np.random.default_rng(5).uniform(0.0, 2.0, size=len(y))
    np.save(tmp_path / "w.npy", w)
    return X, y, w


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_weighted_streamed_fit_equals_the_weighted_in_memory_fit(backend, tmp_path, shuffle):
    """Sample weights read with the rows (a .npy path) and class weights applied batch by
    batch ("balanced" counted in the label pass) give the in-memory fit's parameters."""
    X, y, w = _weighted_data(tmp_path)
    Xm, ym = _memmaps(tmp_path, X, y)
    for sample_weight, class_weight in ((w, None), (None, {0: 2.0, 2: 0.5}),
                                        (w, "balanced")):
        memory, streamed = _net(backend), _net(backend)
        h1 = memory.fit(X, y, epochs=2, batch_size=32, shuffle=shuffle,
                        sample_weight=sample_weight, class_weight=class_weight)
        h2 = streamed.fit(Xm, ym, epochs=2, batch_size=32, shuffle=shuffle,
                          sample_weight=None if sample_weight is None else tmp_path / "w.npy",
                          class_weight=class_weight)
        for name, p in _params(memory).items():
            np.testing.assert_array_equal(_params(streamed)[name], p, err_msg=name)
        assert h1.history["loss"] == h2.history["loss"]


def test_an_iterable_gives_its_weights_with_its_batches(backend, tmp_path):
    X, y, w = _weighted_data(tmp_path)
    batches = [(X[i:i + 32], y[i:i + 32], w[i:i + 32]) for i in range(0, len(y), 32)]
    memory, streamed = _net(backend), _net(backend)
    memory.fit(X, y, epochs=2, batch_size=32, shuffle=False, sample_weight=w,
               class_weight="balanced")
    streamed.fit(lambda: iter(batches), epochs=2, class_weight="balanced", classes=[0, 1, 2])
    for name, p in _params(memory).items():
        np.testing.assert_array_equal(_params(streamed)[name], p, err_msg=name)


def test_bad_weights_of_a_source_are_refused_naming_the_row(tmp_path):
    X, y, w = _weighted_data(tmp_path)
    Xm, ym = _memmaps(tmp_path, X, y)
    net = nnx.Network([5, 8, 3], seed=0)
    bad = w.copy()
    bad[211] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight must be finite and non-negative; "
                                         r"row 211 of the source has -1.0"):
        net.fit(Xm, ym, epochs=1, sample_weight=bad)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(300,\)"):
        net.fit(Xm, ym, epochs=1, sample_weight=w[:10])
    with pytest.raises(ValueError, match="zero everywhere"):
        net.fit(Xm, ym, epochs=1, sample_weight=np.zeros(300))
    batches = [(X[:150], y[:150], w[:150]), (X[150:], y[150:], bad[150:])]
    with pytest.raises(ValueError, match=r"batch 1 of the data source: sample_weight must be "
                                         r"finite.*row 61 of batch 1 is row 211 counted"):
        net.fit(batches, epochs=1)
    with pytest.raises(ValueError, match=r"third element of each batch, \(X, y, w\)"):
        net.fit(batches, epochs=1, sample_weight=w)
    with pytest.raises(ValueError, match="'balanced' counts the labels.*one-shot"):
        nnx.Network([5, 8, 3], seed=0).fit(iter(batches), epochs=1, steps_per_epoch=2,
                                           classes=[0, 1, 2], class_weight="balanced")


def test_streamed_inference_equals_in_memory(backend, tmp_path):
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    net = _net(backend)
    net.fit(X, y, epochs=2)
    np.testing.assert_array_equal(net.predict(Xm), net.predict(X))
    np.testing.assert_allclose(net.predict_proba(Xm), net.predict_proba(X), rtol=1e-12)
    a, b = net.evaluate(Xm, ym), net.evaluate(X, y)
    assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-12)
    assert net.score(Xm, ym) == net.score(X, y)


def test_streamed_validation_and_divergence(tmp_path):
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    net = nnx.Network([5, 8, 3], seed=0)
    history = net.fit(Xm, ym, epochs=2, validation_split=0.2)
    assert set(history.history) == {"loss", "val_loss", "val_accuracy"}
    held_out = nnx.Network([5, 8, 3], seed=0)
    held_out.fit(Xm[:240], ym[:240], epochs=2, validation_data=(X[240:], y[240:]))
    assert history.history["val_loss"] == held_out.history_.history["val_loss"]
    wild = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=float,
                                     shape=X.shape)
    wild[:] = X * 1e3
    with pytest.raises(nnx.DivergenceError, match=r"epoch \d+, step \d+ of"):
        nnx.Network([5, 8, 3], learning_rate=50.0, seed=0).fit(wild, y, epochs=20)
    with pytest.raises(nnx.DivergenceError, match="cannot replay to name"):
        nnx.Network([5, 8, 3], learning_rate=50.0, seed=0, input_dim=5).fit(
            (b for _ in range(50) for b in [(X * 1e3, y)]), epochs=20, steps_per_epoch=1,
            classes=[0, 1, 2])


def test_streaming_adds_no_host_sync_per_step(torch, monkeypatch):
    """A streamed fit moves rows to the device a group of batches at a time and reads
    nothing back: per step, nothing grows. With groups of one batch, only the batch's own
    transfer (features and labels; on CUDA a copy the step needs) grows."""
    from nnx.sync_audit import per_step_syncs

    def run(steps):
        X, y = _data(steps * 8, 5)
        net = nnx.Network([5, 8, 3], backend="torch", seed=0)
        net.fit(ArrayDataset(X, y), epochs=2, batch_size=8, prefetch=0)

    def grown():
        few, many = per_step_syncs(run)
        return {k: many[k] - few.get(k, 0) for k in many if many[k] != few.get(k, 0)}

    assert grown() == {}
    monkeypatch.setattr("nnx.sources.GROUP_BYTES", 1)
    per_batch = grown()
    assert set(per_batch) == {"lift_fresh"} and per_batch["lift_fresh"] % (2 * 18) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_memmap_larger_than_the_memory_budget_streams(tmp_path):
    """One epoch over a ~400 MiB float32 memmap grows anonymous memory by less than 64 MiB
    (file pages count in plain RSS whatever the code does; RssAnon tells streaming from
    copying), for a float32 and a float64 network, and ends with the in-memory fit's
    parameters (``benchmarks/streaming_memory.py`` measures it)."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "streaming_memory.py"),
                          "--folder", str(tmp_path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines()]
    assert [row[0] for row in rows] == ["float32", "float64"]
    for dtype, grown, same in rows:
        assert float(grown) < 64, f"{dtype}: anonymous memory grew by {grown} MiB"
        assert same == "True", dtype


def test_dask_arrays_are_read_chunk_by_chunk(backend):
    da = pytest.importorskip("dask.array")
    X, y = _data()
    Xd = da.from_array(X, chunks=(64, 5))
    yd = da.from_array(y, chunks=64)
    memory, streamed = _net(backend), _net(backend)
    memory.fit(X, y, epochs=2, batch_size=32)
    streamed.fit(Xd, yd, epochs=2, batch_size=32)
    for name, p in _params(memory).items():
        np.testing.assert_array_equal(_params(streamed)[name], p, err_msg=name)
    np.testing.assert_allclose(streamed.predict_proba(Xd), memory.predict_proba(X), rtol=1e-12)


def test_a_streamed_fit_resumes_exactly(tmp_path):
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    whole = _net(_Numpy())
    whole.fit(Xm, ym, epochs=4, batch_size=32)
    first = _net(_Numpy())
    first.fit(Xm, ym, epochs=2, batch_size=32)
    resumed = nnx.load(first.save(tmp_path / "m.nnx"))
    resumed.fit(Xm, ym, epochs=2, batch_size=32)
    for name, p in _params(whole).items():
        np.testing.assert_array_equal(_params(resumed)[name], p, err_msg=name)


class _Numpy:
    kwargs = {"backend": "numpy"}


def test_streamed_sources_that_review_found_wrong(tmp_path):
    """Labels by position whatever their type, validation after the classes, streamed R^2,
    and an upper-case .NPY path."""
    pd = pytest.importorskip("pandas")
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    rng = np.random.default_rng(1)
    shuffled = pd.Series(y, index=rng.permutation(len(y)))  # labels by position, not index
    a, b = nnx.Network([5, 8, 3], seed=0), nnx.Network([5, 8, 3], seed=0)
    a.fit(X, y, epochs=2)
    b.fit(Xm, shuffled, epochs=2)
    np.testing.assert_array_equal(_params(a)["layers.0.W"], _params(b)["layers.0.W"])
    val = nnx.Network([5, 8, 3], seed=0)
    two = y[240:] % 2  # validation shows only classes 0 and 1
    val.fit(Xm[:240], ym[:240], epochs=1, validation_data=(X[240:], two), classes=[0, 1, 2])
    assert "val_loss" in val.history_.history
    reg_X, reg_y = X, X @ np.arange(1.0, 6.0)
    with open(tmp_path / "R.NPY", "wb") as f:
        np.save(f, reg_X)
    reg = nnx.Network([5, 8, 1], loss="mse", seed=0)
    reg.fit(reg_X, reg_y, epochs=3)
    assert reg.score(str(tmp_path / "R.NPY"), reg_y) == pytest.approx(reg.score(reg_X, reg_y),
                                                                      rel=1e-9)


class _On:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def cupy_like():
    """The CuPy stand-in (``cupy_like.py``), whose streams record what a fit asks of them."""
    from cupy_like import CupyLikeBackend

    from nnx.backend import register_backend, unregister_backend

    backend = register_backend(CupyLikeBackend(honour=True))
    yield backend
    unregister_backend(backend.name)


@pytest.mark.parametrize("prefetch", [2, 0])
def test_groups_cross_through_pinned_buffers_on_a_copy_stream(cupy_like, tmp_path, monkeypatch,
                                                              prefetch):
    """On a CUDA backend each group of rows is written to a pinned buffer and copied on the
    copy stream (the next groups by the prefetch thread when there is one), and the training stream waits
    for the copy on the device: once per group whatever the number of steps, and never on
    the host. The parameters are the in-memory fit's."""
    monkeypatch.setattr("nnx.sources.GROUP_BYTES", 80 * 5 * 8)  # groups of 80 rows
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    on = _On(backend=cupy_like.name, device="device1")
    memory = _net(on)
    memory.fit(X, y, epochs=2, batch_size=16)
    calls = {}
    for batch in (16, 8):  # 19 and 38 steps an epoch, 4 groups either way
        cupy_like.streams.clear()
        net = _net(on)
        net.fit(Xm, ym, epochs=2, batch_size=batch, prefetch=prefetch)
        (streams,) = cupy_like.streams
        calls[batch] = dict(streams.calls)
        # the epoch's first group in the loop (nothing to overlap it with), the rest ahead
        assert streams.upload_threads == ({"MainThread", "nnx-prefetch_0"} if prefetch
                                          else {"MainThread"})
        if batch == 16:
            for name, p in _params(memory).items():
                np.testing.assert_array_equal(_params(net)[name], p, err_msg=name)
    per_group = {"pinned": 8, "upload": 8, "record_copy": 8, "wait": 8, "record_compute": 8,
                 "query": 8}  # 4 groups, 2 epochs
    assert calls[16] == calls[8] == per_group


def test_the_copy_stream_path_adds_no_host_sync_per_step(torch):
    """The sync audit (torch's operators that would block the host on CUDA) over a streamed
    fit whose copies take the pinned-buffer path: nothing grows with the steps."""
    import contextlib

    from cupy_like import RecordingStreams

    from nnx.backend import StreamTransfer, TorchBackend, register_backend, unregister_backend
    from nnx.sync_audit import per_step_syncs

    made = []

    class StagedTorch(TorchBackend):
        name = "torch_staged"

        def transfer(self, device):
            made.append(RecordingStreams(
                contextlib.nullcontext, lambda shape, dtype: torch.empty(shape, dtype=dtype)
                .numpy(), torch.from_numpy))
            return StreamTransfer(made[-1])

    def run(steps):
        X, y = _data(steps * 8, 5)
        net = nnx.Network([5, 8, 3], backend="torch_staged", seed=0)
        net.fit(ArrayDataset(X, y), epochs=2, batch_size=8, prefetch=0)

    register_backend(StagedTorch())
    try:
        few, many = per_step_syncs(run)
    finally:
        unregister_backend("torch_staged")
    assert many == few
    assert made and all(streams.calls["upload"] > 0 for streams in made)


def _cuda_context(name):
    try:
        return nnx.get_context(name, "cuda:0")
    except (ImportError, ValueError) as exc:
        pytest.skip(f"needs a CUDA GPU for {name}: {str(exc).splitlines()[0]}")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cupy", "torch"])
def test_on_cuda_groups_are_copied_on_a_copy_stream(name, tmp_path, monkeypatch):
    """On a GPU: a StreamTransfer, several groups read ahead, and the in-memory fit's
    parameters (the copy stream's event orders every copy before its steps)."""
    from nnx.backend import StreamTransfer

    ctx = _cuda_context(name)
    assert isinstance(ctx.transfer(), StreamTransfer)
    monkeypatch.setattr("nnx.sources.GROUP_BYTES", 80 * 5 * 8)
    X, y = _data()
    Xm, ym = _memmaps(tmp_path, X, y)
    on = _On(backend=name, device="cuda:0")
    memory, streamed = _net(on), _net(on)
    memory.fit(X, y, epochs=3, batch_size=16)
    streamed.fit(Xm, ym, epochs=3, batch_size=16, prefetch=2)
    for key, p in _params(memory).items():
        np.testing.assert_array_equal(_params(streamed)[key], p, err_msg=key)


def test_the_gpu_acceptance_streaming_part(torch):
    """What the GPU acceptance's streaming part runs, on torch's CPU; without a GPU the part
    is skipped with the reason."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"
    spec = importlib.util.spec_from_file_location("gpu_acceptance", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.streaming_epochs("torch", "cpu", repeats=1, n=1024, batch=128)
    assert out["steps_per_epoch"] == 8 and out["memmap_prefetch_ratio"] > 0
    gpus = module.gpu_backends()
    if not (gpus["cupy"] or gpus["torch"]):
        result = module.part_streaming(None, gpus)
        assert result["status"] == "skipped" and "GPU" in result["reason"]


def test_evaluate_and_predict_read_weighted_batches_of_an_iterable():
    """An iterable that gives ``(X, y, w)`` for training serves ``evaluate`` and ``predict``
    too (they do not weigh rows)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = (X[:, 0] > 0).astype(int)
    net = nnx.Network([3, 4, 1], seed=0)
    net.fit(X, y, epochs=2, batch_size=16)

    def batches():
        return ((X[a:a + 16], y[a:a + 16], np.ones(16)) for a in range(0, 64, 16))

    assert net.evaluate(batches, None) == pytest.approx(net.evaluate(X, y))
    np.testing.assert_array_equal(net.predict(batches), net.predict(X))


def test_a_dataset_with_weights_serves_validation_evaluate_and_scaling():
    """A dataset whose ``take`` gives ``(X, y, w)``: the held-out tail, ``evaluate``,
    ``predict`` and a ``Standardize`` layer's adaptation read its rows (not its weights)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = (X[:, 1] > 0).astype(int)

    class Weighted3(nnx.sources.Dataset):
        def __len__(self):
            return len(X)

        def take(self, rows):
            return X[rows], y[rows], np.ones(len(rows))

    net = nnx.Network([3, 4, 1], seed=0, standardize=True)
    history = net.fit(Weighted3(), epochs=2, batch_size=16, validation_split=0.25)
    assert len(history.history["val_loss"]) == 2
    assert net.evaluate(Weighted3(), None) == pytest.approx(net.evaluate(X, y))
    np.testing.assert_array_equal(net.predict(Weighted3()), net.predict(X))


def test_a_lazy_array_of_another_library_is_read_row_by_row_not_whole(monkeypatch):
    """Any array-like with ``shape``, ``ndim`` and row indexing (h5py, zarr, ...) stays lazy
    in an ``ArrayDataset``: ``fit`` reads the rows of one group at a time, never the whole
    array, and trains as on the same rows in memory."""
    monkeypatch.setattr(nnx.sources, "GROUP_BYTES", 1)  # a group of one batch
    rng = np.random.default_rng(2)
    data = rng.normal(size=(64, 3))
    reads = []

    class Lazy:
        shape, ndim, dtype = data.shape, 2, data.dtype

        def __len__(self):
            return self.shape[0]

        def __getitem__(self, rows):
            reads.append(len(np.arange(self.shape[0])[rows]))
            return data[rows]

        def __array__(self, *args, **kwargs):
            raise AssertionError("the whole array was read")

    y = (data[:, 0] > 0).astype(int)
    lazy = nnx.Network([3, 4, 1], seed=0)
    lazy.fit(nnx.sources.ArrayDataset(Lazy(), y), epochs=1, batch_size=16, shuffle=False)
    eager = nnx.Network([3, 4, 1], seed=0)
    eager.fit(data, y, epochs=1, batch_size=16, shuffle=False)
    # the fit's bounded look at the input scale reads a sample first (nnx.diagnostics), then
    # training reads one group of rows at a time
    assert reads[0] <= nnx.diagnostics.SAMPLE_ROWS and max(reads[1:]) <= 16
    for name, value in eager.parameters().items():
        np.testing.assert_array_equal(nnx.to_numpy(lazy.parameters()[name]),
                                      nnx.to_numpy(value))


def test_a_transfer_closed_with_steps_still_queued_waits_for_them():
    """Training that fails mid-epoch closes the copy stream's transfer while steps may still
    be queued on the device: it waits for the last one before the held arrays go (on CUDA
    their memory would be reused under a running step). A normal close waits for nothing."""
    import contextlib

    from cupy_like import RecordingStreams

    streams = RecordingStreams(contextlib.nullcontext, np.empty, np.array)
    transfer = nnx.backend.StreamTransfer(streams)
    transfer.release(("arrays of a finished step",))  # done: released at once
    transfer.close()
    assert streams.calls["finish"] == 0
    streams.done = lambda event: False  # a step still queued
    transfer.release(("arrays a queued step reads",))
    assert transfer.held
    transfer.close()
    assert streams.calls["finish"] == 1 and not transfer.held
