"""What each process of the data-parallel tests runs (launched by ``mpiexec`` or torch's
launcher from tests/test_distributed.py; the one-process oracle imports :data:`CASES`).

``python distributed_job.py SCENARIO OUT_DIR COMMUNICATOR`` writes, per rank, what the
scenario produced to ``OUT_DIR`` (``.npz`` arrays, ``.txt`` errors).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import nnx
from nnx.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from nnx.distributed import DataParallel
from nnx.layers import BatchNorm, Dense, Dropout
from nnx.optimizers import SGD, LBFGS, Adam

ROWS, FEATURES = 203, 5  # 7 batches of 32 an epoch, the last one of 11 rows


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, FEATURES))
    score = X[:, 0] + X[:, 1] ** 2 - 0.5 * X[:, 2]
    return X, score, rng


def binary():
    X, score, _ = data()
    return X, (score > 0.5).astype(int)


def multiclass():
    X, score, _ = data()
    return X, np.digitize(score, [-0.5, 0.5, 1.5])


def regression():
    X, score, rng = data()
    return X, score + 0.1 * rng.normal(size=ROWS)


# name -> (network, its data, fit's keyword arguments, data-parallel options); 8 epochs of
# 7 steps each (56 steps) unless noted. Networks, optimizers and callbacks are made afresh
# for every fit (they keep state).
CASES = {
    "sgd_nesterov_l2": (
        lambda dtype, **kw: nnx.Network(
            [5, 16, 8, 1], optimizer=SGD(0.05, momentum=0.9, nesterov=True), l2=1e-3,
            dtype=dtype, seed=3, **kw),
        binary, {}, {}),
    "adam_clip_norm": (
        lambda dtype, **kw: nnx.Network(
            [5, 16, 8, 1], optimizer=Adam(0.01, clip_norm=0.5), dtype=dtype, seed=4, **kw),
        binary, {}, {}),
    "weighted_multiclass": (
        lambda dtype, **kw: nnx.Network(
            [5, 16, 4], loss="categorical_crossentropy", optimizer="adam",
            learning_rate=0.01, dtype=dtype, seed=5, **kw),
        multiclass, {"sample_weight": np.linspace(0.2, 2.0, ROWS)}, {}),
    "regression_validation": (
        lambda dtype, **kw: nnx.Network(
            [5, 16, 1], loss="mse", optimizer="adam", learning_rate=0.01, dtype=dtype,
            seed=6, **kw),
        regression, {"validation_split": 0.2, "callbacks": lambda: [
            EarlyStopping(patience=2, restore_best_weights=True)]}, {}),
    "sync_batchnorm": (
        lambda dtype, **kw: nnx.Network(
            [Dense(16, activation="relu"), BatchNorm(), Dense(1)], input_dim=5,
            optimizer="adam", learning_rate=0.01, dtype=dtype, seed=7, **kw),
        binary, {}, {"sync_batchnorm": True}),
    "kept_gradients": (
        lambda dtype, **kw: nnx.Network(
            [5, 16, 8, 1], optimizer=SGD(0.05, momentum=0.9), dtype=dtype, seed=9, **kw),
        binary, {"callbacks": lambda: [KeepGradients()]}, {}),
    "lbfgs": (
        lambda dtype, **kw: nnx.Network(
            [5, 8, 1], optimizer=LBFGS(max_iter=5), dtype=dtype, seed=8, **kw),
        binary, {"epochs": 3}, {}),
}


OTHER_BACKENDS = tuple(name for name in ("torch", "array_api_strict")
                       if importlib.util.find_spec(name) is not None)


def run_case(name, dtype, distributed, **backend):
    """Train case ``name``; ``distributed``: ``None`` (one process) or a communicator name;
    ``backend``: ``Network``'s ``backend=`` and ``device=`` (default NumPy)."""
    make, make_data, fit_kwargs, options = CASES[name]
    X, y = make_data()
    net = make(dtype, **backend)
    kwargs = {"epochs": 8, "batch_size": 32, **fit_kwargs}
    if "callbacks" in kwargs:
        kwargs["callbacks"] = kwargs["callbacks"]()
    if distributed is not None:
        kwargs["distributed"] = DataParallel(distributed, timeout=60, **options)
    history = net.fit(X, y, **kwargs)
    out = {k: np.asarray(nnx.to_numpy(v)) for k, v in net.parameters().items()}
    for cb in kwargs.get("callbacks", ()):
        if isinstance(cb, KeepGradients):
            out["kept_gradients"] = np.stack([nnx.to_numpy(g) for g in cb.kept])
    out["loss"] = np.asarray(history.history["loss"])
    for key, value in net.state().items():
        out["state:" + key] = np.asarray(nnx.to_numpy(value))
    return net, X, y, out


class KeepGradients(Callback):
    """Keeps every step's first kernel gradient as handed over (no copy), as a user's
    callback may: each must keep its own step's values."""

    def __init__(self):
        self.kept = []

    def on_batch_gradients(self, step, grads):
        self.kept.append(grads["layers.0.W"])


class RaiseAtStep(Callback):
    """Raises on one rank in the middle of a step (before its gradient sum)."""

    def __init__(self, rank, step):
        self.rank, self.step, self.steps = rank, step, 0

    def __repr__(self):  # the same on every rank (the ranks compare their callbacks)
        return f"RaiseAtStep({self.rank}, {self.step})"

    def on_batch_outputs(self, out, yb):
        self.steps += 1
        if self.steps == self.step and self.network.reduction.comm.rank == self.rank:
            raise RuntimeError(f"rank {self.rank} fails on purpose")


class RecordingDataset(nnx.sources.Dataset):
    """Rows of two arrays, recording every row read."""

    def __init__(self, X, y):
        self.X, self.y, self.rows = X, y, []

    def __len__(self):
        return len(self.X)

    def take(self, rows):
        self.rows.append(np.asarray(rows))
        return self.X[rows], self.y[rows]


class ForgetReads(Callback):
    """Forgets the reads before training starts (the label pass and the input check)."""

    def __init__(self, source):
        self.source = source

    def on_train_begin(self, logs=None):
        self.source.rows = []


class RaiseAt(Callback):
    """Raises on one rank at the end of an epoch (a rank that crashes mid-fit)."""

    def __init__(self, rank, epoch):
        self.rank, self.epoch = rank, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.network.reduction.comm.rank == self.rank:
            raise RuntimeError(f"rank {self.rank} fails on purpose")


def scenario(name, out, communicator):
    """Run one scenario on this rank; returns what to save."""
    if name == "oracle":
        saved = {}
        for case in CASES:
            for dtype in ("float64", "float32"):
                net, X, y, result = run_case(case, dtype, communicator)
                saved.update({f"{case}/{dtype}/{k}": v for k, v in result.items()})
        # a memmap read batch by batch, each rank only its rows: the in-memory fit
        X, y = binary()
        rank = _rank(communicator)
        paths = [out / f"{name}-{rank}.npy" for name in "Xy"]
        for path, values in zip(paths, (X, y)):
            np.save(path, values)
        net = CASES["adam_clip_norm"][0]("float64")
        net.fit(str(paths[0]), str(paths[1]), epochs=8, batch_size=32,
                distributed=DataParallel(communicator, timeout=60))
        saved.update({"memmap/" + k: np.asarray(v) for k, v in net.parameters().items()})
        # the other backends: torch tensors (summed in place) and array_api_strict (copied
        # through the host)
        for backend in OTHER_BACKENDS:
            *_, result = run_case("sync_batchnorm", "float64", communicator,
                                  backend=backend)
            saved.update({f"{backend}/float64/{k}": v for k, v in result.items()})
        # exact resume: 4 epochs, a checkpoint written by rank 0, every rank loads it and
        # trains 4 more: the 8-epoch fit
        make, make_data, _, _ = CASES["sgd_nesterov_l2"]
        X, y = make_data()
        plan = DataParallel(communicator, timeout=60)
        path = out / "half.nnx"
        make("float64").fit(X, y, epochs=4, batch_size=32, distributed=plan,
                            callbacks=[ModelCheckpoint(path)])
        plan.comm.allgather_object(None, "the checkpoint")  # rank 0 has written it
        resumed = nnx.load(path)
        resumed.fit(X, y, epochs=4, batch_size=32, distributed=plan)
        saved.update({"resumed/" + k: np.asarray(v) for k, v in resumed.parameters().items()})
        # inference over the ranks: global means, labels gathered on rank 0
        plan = DataParallel(communicator, timeout=60)
        net, X, y, _ = run_case("weighted_multiclass", "float64", None)
        scores = net.evaluate(X, y, distributed=plan)
        saved["evaluate"] = np.array([scores["loss"], scores["accuracy"]])
        labels = net.predict(X, distributed=plan)
        saved["predict_is_none"] = np.array(labels is None)
        if labels is not None:
            saved["predict"] = labels
        return saved
    if name == "gpu":  # NCCL: CuPy through nnx's NCCL communicator, or torch's own
        backend = ({"backend": "cupy", "device": _rank(communicator)}
                   if communicator == "nccl" else
                   {"backend": "torch", "device": f"cuda:{_rank(communicator)}"})
        saved = {}
        for case in ("adam_clip_norm", "sync_batchnorm"):
            *_, result = run_case(case, "float64", communicator, **backend)
            saved.update({f"{case}/{k}": v for k, v in result.items()})
        return saved
    if name == "dropout":
        runs = []
        for _ in range(2):
            net = nnx.Network([Dense(16, activation="relu"), Dropout(0.3), Dense(1)],
                              input_dim=5, dtype="float64", optimizer="adam", seed=9)
            X, y = binary()
            net.fit(X, y, epochs=2, batch_size=32,
                    distributed=DataParallel(communicator, timeout=60))
            runs.append(np.concatenate([np.ravel(nnx.to_numpy(v))
                                        for v in net.parameters().values()]))
            draws = nnx.to_numpy(net.random.uniform_like((4,)))
        # each rank its own shard (of another size): still one model on every rank
        X, y = binary()
        rank = _rank(communicator)
        shard = slice(0, 120) if rank == 0 else slice(120, ROWS)
        # (inputs scaled by rank 0's statistics; progress asked for on rank 0 only)
        local = nnx.Network([5, 8, 1], dtype="float64", optimizer="adam", seed=2,
                            standardize=True)
        history = local.fit(X[shard], y[shard], epochs=3, batch_size=32,
                            verbose=1 if rank == 0 else 0,
                            distributed=DataParallel(communicator, data="local", timeout=60))
        return {"run0": runs[0], "run1": runs[1], "masks": np.asarray(draws),
                "local": np.concatenate([np.ravel(nnx.to_numpy(v))
                                         for v in local.parameters().values()]),
                "local_loss": np.asarray(history.history["loss"]),
                "local_accuracy": np.asarray(history.history["accuracy"]),
                "local_mean": local.layers[0].mean}
    if name == "reads":  # a dataset that records the rows training reads from it
        X, y = binary()
        source = RecordingDataset(X, y)
        net = nnx.Network([5, 8, 1], seed=1)
        net.fit(source, classes=[0, 1], epochs=2, batch_size=32, prefetch=0,
                callbacks=[ForgetReads(source)],
                distributed=DataParallel(communicator, timeout=60))
        return {"rows": np.concatenate(source.rows)}
    if name == "agree":  # what each rank sees differently must still end in one model
        rank = _rank(communicator)
        X, y = binary()
        saved = {}
        # own shards, each with its own validation rows; BatchNorm with each rank's own
        # statistics; the callbacks decide together
        shard = slice(0, 120) if rank == 0 else slice(120, ROWS)
        net = nnx.Network([Dense(8, activation="relu"), BatchNorm(), Dense(1)], input_dim=5,
                          optimizer=SGD(0.05), seed=3)
        history = net.fit(X[shard], y[shard], epochs=30, batch_size=16,
                          validation_split=0.3, callbacks=[
                              EarlyStopping(patience=2, restore_best_weights=True),
                              ReduceLROnPlateau(patience=1)],
                          distributed=DataParallel(communicator, data="local", timeout=60))
        saved["local"] = _flat(net)
        saved["local_history"] = np.array([history.history[k] for k in sorted(
            history.history)])
        # a batch of one row on two ranks: one rank's part is empty at every step, with the
        # training accuracy counted and a divergence replayed; a learning rate given as a
        # function (its address differs per process)
        tiny = nnx.Network([5, 4, 1], optimizer=SGD(lambda step: 0.01), seed=4)
        history = tiny.fit(X[:6], y[:6], epochs=2, batch_size=1, verbose=2,
                           distributed=DataParallel(communicator, timeout=60))
        saved["empty_parts"] = np.asarray(history.history["accuracy"])
        wild = nnx.Network([5, 4, 1], loss="mse", dtype="float64", seed=4)
        try:
            wild.fit(X[:6] * 1e200, y[:6], epochs=2, batch_size=1,
                     distributed=DataParallel(communicator, timeout=60))
        except nnx.DivergenceError as error:
            saved["divergence"] = np.array(str(error).split(":")[0])
        # evaluate and predict over the ranks from .npy paths
        paths = [out / f"agree-{name}-{rank}.npy" for name in "Xy"]
        for path, values in zip(paths, (X, y)):
            np.save(path, values)
        saved["evaluate"] = np.array(list(tiny.evaluate(
            str(paths[0]), str(paths[1]), distributed=DataParallel(communicator)).values()))
        labels = tiny.predict(str(paths[0]), distributed=DataParallel(communicator))
        saved["predict"] = np.zeros(0) if labels is None else labels
        return saved
    if name == "mismatch_epochs":
        net = nnx.Network([5, 8, 1], seed=1)
        X, y = binary()
        net.fit(X, y, epochs=1 + _rank(communicator), distributed=DataParallel(communicator,
                                                                               timeout=20))
        return {}
    if name == "raise":
        net = nnx.Network([5, 8, 1], seed=1)
        X, y = binary()
        net.fit(X, y, epochs=5, batch_size=32, callbacks=[RaiseAt(1, 1)],
                distributed=DataParallel(communicator, timeout=3))
        return {}
    if name == "refit":  # a fit that fails mid-step on one rank, then the same fit again
        make, make_data, _, _ = CASES["sgd_nesterov_l2"]
        X, y = make_data()
        if not isinstance(communicator, str):  # the timeout a name gets below
            communicator.timeout = 6
        plan = DataParallel(communicator, timeout=6)
        try:
            make("float64").fit(X, y, epochs=8, batch_size=32, callbacks=[RaiseAtStep(1, 10)],
                                distributed=plan)
        except Exception as error:
            first, message = type(error).__name__, str(error)
        if plan.rank == 1:  # rank 0 is still waiting for step 10's sum: let it give up
            time.sleep(7)
        net = make("float64")
        net.fit(X, y, epochs=8, batch_size=32, distributed=plan)
        return {"first": np.array(first), "message": np.array(message),
                **{"refit/" + k: np.asarray(v) for k, v in net.parameters().items()}}
    if name == "broken_evaluate":  # an evaluate fails on one rank, then a fit runs
        make, make_data, _, _ = CASES["sgd_nesterov_l2"]
        X, y = make_data()
        plan = DataParallel(communicator, timeout=4)
        rank = _rank(communicator)
        fitted = make("float64")
        fitted.fit(X, y, epochs=1)  # in each process alone
        try:  # rank 1 passes rows of the wrong width: it fails inside, the others wait
            fitted.evaluate(X[:, :4 if rank == 1 else 5], y, distributed=plan)
        except Exception as error:
            first = type(error).__name__
        if rank == 1:  # rank 0 still waits for rank 1's scores: let it give up
            time.sleep(5)
        net = make("float64")
        net.fit(X, y, epochs=8, batch_size=32, distributed=plan)
        return {"first": np.array(first),
                **{"refit/" + k: np.asarray(v) for k, v in net.parameters().items()}}
    if name == "nested":  # an evaluate over the ranks from a callback of a fit over them
        make, make_data, _, _ = CASES["sgd_nesterov_l2"]
        X, y = make_data()
        plan = DataParallel(communicator, timeout=20)
        scores = []

        class Scores(Callback):
            def __repr__(self):  # the same on every rank (the ranks compare their callbacks)
                return "Scores()"

            def on_epoch_end(self, epoch, logs=None):
                scores.append(self.network.evaluate(X, y, distributed=plan)["loss"])
                # the fit's own communicator still, not the one fits are made from
                comm = plan.comm
                on_own.append(comm.group is not None if hasattr(comm, "group")
                              else comm.comm is not comm.world)

        net, on_own = make("float64"), []
        net.fit(X, y, epochs=8, batch_size=32, callbacks=[Scores()], distributed=plan)
        return {"scores": np.array(scores), "on_own": np.array(on_own),
                **{"refit/" + k: np.asarray(v) for k, v in net.parameters().items()}}
    if name == "never_started":  # rank 1 never starts the first fit
        make, make_data, _, _ = CASES["sgd_nesterov_l2"]
        X, y = make_data()
        plan = DataParallel(communicator, timeout=3)
        errors = []
        for _ in range(2):
            if _rank(communicator) == 1:
                break
            try:
                make("float64").fit(X, y, epochs=1, batch_size=32, distributed=plan)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")
        return {"errors": np.array(errors)}
    if name == "sums":  # which sum each communicator gives a fit
        import warnings

        from nnx import communicators
        from nnx.communicators import MPICommunicator, NCCLCommunicator, SharedMemorySum

        ctx = nnx.Network([5, 8, 1], seed=1).ctx
        saved = {"mpi": isinstance(MPICommunicator(timeout=10).step_sum(ctx, 57),
                                   SharedMemorySum),
                 # NCCL sums on the GPU: never through host shared memory
                 "nccl": isinstance(NCCLCommunicator(timeout=10).step_sum(ctx, 57),
                                    SharedMemorySum)}
        communicators.shared_memory_free = lambda: 100  # a /dev/shm too small
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            saved["short"] = isinstance(MPICommunicator(timeout=10).step_sum(ctx, 57),
                                        SharedMemorySum)
        saved["warnings"] = np.array([str(w.message) for w in caught])
        if "array_api_strict" in OTHER_BACKENDS:  # summed through a host buffer kept
            ctx = nnx.Network([5, 8, 1], backend="array_api_strict", seed=1).ctx
            comm = MPICommunicator(timeout=10)
            first = comm.allreduce(ctx, ctx.asarray(np.ones(3)), "a first sum")
            comm.allreduce(ctx, ctx.asarray(np.full(3, 5.0)), "a second sum")
            saved["first_sum"] = np.asarray(nnx.to_numpy(first))  # not the second's
        return saved
    if name == "mismatch":
        net = nnx.Network([5, 8, 1], seed=1)
        X, y = binary()
        rank = _rank(communicator)
        rows = ROWS - 10 * rank
        net.fit(X[:rows], y[:rows], epochs=1, distributed=DataParallel(communicator, timeout=20))
        return {}
    if name == "diverge":  # one rank's shard holds rows that overflow the loss
        net = nnx.Network([5, 8, 1], loss="mse", dtype="float64", seed=1)
        X, score, _ = data()
        rank = _rank(communicator)
        if rank == 1:
            X = X.copy()
            X[100:] *= 1e150
        net.fit(X, score, epochs=3, batch_size=32,
                distributed=DataParallel(communicator, data="local", timeout=20))
        return {}
    raise ValueError(f"unknown scenario {name!r}")


def _flat(net):
    """Every parameter and state array of ``net``, end to end, on the host."""
    arrays = {**net.parameters(), **net.state()}
    return np.concatenate([np.ravel(nnx.to_numpy(arrays[k])) for k in sorted(arrays)])


def _rank(communicator):
    return DataParallel(communicator).rank


def communicator_for(name):
    """The launcher's name as ``distributed=``: ``"mpi"``, ``"nccl"`` and ``"torch"`` as
    they are; ``"mpi-allreduce"``: one ``MPI_Allreduce`` per step instead of the
    shared-memory sum; ``"mpi-machines"``: the ranks grouped as if on two machines (even
    and odd ranks), so that the sum between machines runs too."""
    if not name.startswith("mpi-"):
        return name
    from mpi4py import MPI

    from nnx.communicators import MPICommunicator

    if name == "mpi-allreduce":
        return MPICommunicator(timeout=60, shared_memory=False)
    world = MPI.COMM_WORLD
    return MPICommunicator(timeout=60, machine=world.Split(world.rank % 2, world.rank))


def main():
    name, out = sys.argv[1], Path(sys.argv[2])
    communicator = communicator_for(sys.argv[3])
    rank = _rank(communicator)
    try:
        saved = scenario(name, out, communicator)
    except Exception as error:  # each rank reports what it raised, then fails
        (out / f"error-{rank}.txt").write_text(f"{type(error).__name__}: {error}")
        traceback.print_exc()
        sys.exit(1)
    np.savez(out / f"rank-{rank}.npz", **saved)


if __name__ == "__main__":
    main()
