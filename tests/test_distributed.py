"""Data-parallel training against its oracle: N processes with global batch B give the
one-process fit with batch B and the same seed (MPI on 2 and 3 ranks, torch's gloo on 2),
and a failing rank makes every rank fail with a clear error, never hang.

The ranks are real processes launched by ``mpiexec`` (the MPICH wheel) and by
``torch.distributed.run``; each runs tests/distributed_job.py.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distributed_job as job
from nnx.communicators import Communicator
from nnx.layers import Dense

HERE = Path(__file__).parent
ROOT = HERE.parent
HAS_MPI = (importlib.util.find_spec("mpi4py") is not None
           and shutil.which("mpiexec") is not None)
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_mpi = pytest.mark.skipif(not HAS_MPI, reason="mpi4py and mpiexec (the 'mpi' extra) "
                               "are not installed")
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def _env():
    # one BLAS thread per rank (the ranks share two cores), the checkout first on the path
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(n, scenario, out, communicator="mpi", timeout=240):
    """Run ``scenario`` on ``n`` ranks; returns the finished process (a hang fails)."""
    script = [str(HERE / "distributed_job.py"), scenario, str(out), communicator]
    if communicator.startswith("mpi"):
        command = ["mpiexec", "-n", str(n), sys.executable, *script]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *script]
    return subprocess.run(command, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def oracle():
    """Every case trained in this one process, as the ranks save it."""
    expected = {}
    for backend in job.OTHER_BACKENDS:
        *_, result = job.run_case("sync_batchnorm", "float64", None, backend=backend)
        expected.update({f"{backend}/float64/{k}": v for k, v in result.items()})
    for case in job.CASES:
        for dtype in ("float64", "float32"):
            *_, result = job.run_case(case, dtype, None)
            expected.update({f"{case}/{dtype}/{k}": v for k, v in result.items()})
    return expected


@pytest.fixture(scope="module")
def one_process():
    return oracle()


def _check_against_oracle(out, n, expected):
    ranks = [dict(np.load(out / f"rank-{r}.npz")) for r in range(n)]
    for key, want in expected.items():
        rtol = 1e-12 if "/float64/" in key else 2e-4  # float32: rounding
        for r, got in enumerate(ranks):
            np.testing.assert_allclose(got[key], want, rtol=rtol, atol=rtol * 1e-3,
                                       err_msg=f"{key} on rank {r} of {n}")
    for r in ranks:
        for name in ("layers.0.W", "layers.2.b"):
            # streamed from a memmap: the in-memory fit
            np.testing.assert_allclose(r["memmap/" + name],
                                       expected[f"adam_clip_norm/float64/{name}"], rtol=1e-12)
            # resumed from rank 0's checkpoint: the uninterrupted fit
            np.testing.assert_allclose(r["resumed/" + name],
                                       expected[f"sgd_nesterov_l2/float64/{name}"],
                                       rtol=1e-12)
    return ranks


@needs_mpi
@pytest.mark.parametrize("n, communicator", [
    (2, "mpi"), (3, "mpi"),  # the gradients summed in shared memory (the default)
    (2, "mpi-allreduce"),  # one MPI_Allreduce per step
    (3, "mpi-machines"),  # ranks 0 and 2 on one "machine", rank 1 on another
])
def test_mpi_ranks_reproduce_the_one_process_fit(tmp_path, n, communicator, one_process):
    proc = launch(n, "oracle", tmp_path, communicator)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_oracle_and_inference(tmp_path, n, one_process)


@needs_torch
def test_torch_gloo_ranks_reproduce_the_one_process_fit(tmp_path, one_process):
    proc = launch(2, "oracle", tmp_path, communicator="torch")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_oracle_and_inference(tmp_path, 2, one_process)


def _check_oracle_and_inference(out, n, expected):
    """The fits against the oracle; evaluate: global means on every rank; predict:
    gathered on rank 0."""
    ranks = _check_against_oracle(out, n, expected)
    net, X, y, _ = job.run_case("weighted_multiclass", "float64", None)
    scores = net.evaluate(X, y)
    for r in ranks:
        np.testing.assert_allclose(r["evaluate"], [scores["loss"], scores["accuracy"]],
                                   rtol=1e-12)
    np.testing.assert_array_equal(ranks[0]["predict"], net.predict(X))
    assert all(bool(r["predict_is_none"]) for r in ranks[1:])


@needs_mpi
def test_dropout_masks_differ_per_rank_and_own_shards_train_one_model(tmp_path):
    proc = launch(2, "dropout", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank-{r}.npz") for r in range(2)]
    for r in ranks:  # the same seed, the same fit
        np.testing.assert_array_equal(r["run0"], r["run1"])
    np.testing.assert_array_equal(ranks[0]["run0"], ranks[1]["run0"])  # one model
    assert not np.array_equal(ranks[0]["masks"], ranks[1]["masks"])
    # data="local": shards of 120 and 83 rows, one model and one loss curve on both ranks
    np.testing.assert_array_equal(ranks[0]["local"], ranks[1]["local"])
    np.testing.assert_array_equal(ranks[0]["local_loss"], ranks[1]["local_loss"])
    # the training accuracy counts both ranks' rows, the scaling is both shards' rows
    # merged (not rank 0's alone), one progress
    np.testing.assert_array_equal(ranks[0]["local_accuracy"], ranks[1]["local_accuracy"])
    X, _ = job.binary()
    np.testing.assert_allclose(ranks[1]["local_mean"], X.mean(axis=0), rtol=1e-12)
    assert not np.allclose(X[:120].mean(axis=0), X.mean(axis=0), rtol=1e-3)
    assert proc.stderr.count("epoch 3/3") == 1, proc.stderr[-2000:]


@needs_mpi
def test_each_rank_reads_only_its_part_of_each_batch(tmp_path):
    proc = launch(2, "reads", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reads = [np.load(tmp_path / f"rank-{r}.npz")["rows"] for r in range(2)]
    # two epochs: every row read exactly twice in all, by one rank or the other
    np.testing.assert_array_equal(np.bincount(np.concatenate(reads), minlength=job.ROWS),
                                  np.full(job.ROWS, 2))
    assert all(abs(len(r) - job.ROWS) <= 7 for r in reads)  # about half each epoch


@needs_mpi
def test_ranks_that_see_different_things_still_agree_on_everything(tmp_path):
    """Own shards and validation rows, BatchNorm's per-rank statistics, early stopping and a
    plateau rule, a learning rate given as a function, ranks without rows in a batch (with
    the training accuracy counted and a divergence replayed), inference from .npy paths:
    every rank logs the same and ends with the same model."""
    proc = launch(2, "agree", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank-{r}.npz") for r in range(2)]
    for key in ("local", "local_history", "empty_parts", "divergence", "evaluate"):
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    assert len(ranks[0]["local_history"][0]) < 30  # early stopping ended it, on both
    assert str(ranks[0]["divergence"]) == "training diverged at epoch 1, step 1 of 6"
    import nnx

    X, y = job.binary()
    tiny = nnx.Network([5, 4, 1], optimizer=nnx.optimizers.SGD(lambda step: 0.01), seed=4)
    tiny.fit(X[:6], y[:6], epochs=2, batch_size=1)
    np.testing.assert_array_equal(ranks[0]["predict"], tiny.predict(X))
    assert ranks[1]["predict"].size == 0  # gathered on rank 0 only
    np.testing.assert_allclose(ranks[0]["evaluate"], list(tiny.evaluate(X, y).values()),
                               rtol=1e-6)


def _errors(out, n):
    return [(out / f"error-{r}.txt").read_text() if (out / f"error-{r}.txt").exists()
            else None for r in range(n)]


@needs_mpi
def test_a_rank_that_raises_makes_the_others_fail_not_hang(tmp_path):
    proc = launch(2, "raise", tmp_path, timeout=120)
    assert proc.returncode != 0
    errors = _errors(tmp_path, 2)
    assert errors[1] == "RuntimeError: rank 1 fails on purpose"
    assert errors[0].startswith("DistributedError: rank 0 of 2 waited 3 s for the other ranks")
    assert "another rank failed" in errors[0]


@needs_mpi
def test_the_gradient_sum_each_communicator_gives(tmp_path):
    proc = launch(2, "sums", tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank-{r}.npz") for r in range(2)]
    for r in ranks:
        assert r["mpi"] and not r["nccl"]  # NCCL keeps the gradients on the GPU
        assert not r["short"]  # too little shared memory: MPI_Allreduce instead
        if "first_sum" in r:  # a sum through the host stays what it was
            np.testing.assert_array_equal(r["first_sum"], [2.0, 2.0, 2.0])
    assert ranks[1]["warnings"].size == 0  # warned once, by rank 0
    (warning,) = ranks[0]["warnings"]
    assert warning.startswith("the gradient sum needs 0 MiB of shared memory (/dev/shm) on ")
    assert "which has 0 MiB free: summing with MPI_Allreduce instead" in warning


def _refit_is_the_one_process_fit(tmp_path, scenario, communicator, errors, expected):
    """Run ``scenario`` (a run that fails, then a fit): each rank's first error and its fit."""
    proc = launch(2, scenario, tmp_path, communicator, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank-{r}.npz") for r in range(2)]
    assert [str(r["first"]) for r in ranks] == errors
    for r in ranks:
        for name in ("layers.0.W", "layers.2.b"):
            np.testing.assert_allclose(r["refit/" + name],
                                       expected[f"sgd_nesterov_l2/float64/{name}"],
                                       rtol=1e-12)


@needs_mpi
@pytest.mark.parametrize("communicator", ["mpi", "mpi-allreduce"])
def test_a_fit_after_a_failed_fit_is_the_one_process_fit(tmp_path, one_process, communicator):
    """The ranks stopped at different steps, one of them inside a gradient sum: the next
    fit on the same communicator must not meet what they left behind (in shared memory, or
    pending on the MPI communicator)."""
    _refit_is_the_one_process_fit(tmp_path, "refit", communicator,
                                  ["DistributedError", "RuntimeError"], one_process)


BOTH = [pytest.param("mpi", marks=needs_mpi), pytest.param("torch", marks=needs_torch)]


@pytest.mark.parametrize("communicator", BOTH)
def test_a_fit_after_an_evaluate_failed_on_one_rank_is_the_one_process_fit(tmp_path,
                                                                         one_process,
                                                                         communicator):
    _refit_is_the_one_process_fit(tmp_path, "broken_evaluate", communicator,
                                  ["DistributedError", "ValueError"], one_process)


@pytest.mark.parametrize("communicator", BOTH)
def test_an_evaluate_over_the_ranks_inside_a_fit_over_them(tmp_path, one_process,
                                                           communicator):
    proc = launch(2, "nested", tmp_path, communicator, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank-{r}.npz") for r in range(2)]
    assert ranks[0]["scores"].shape == (8,)
    np.testing.assert_array_equal(ranks[0]["scores"], ranks[1]["scores"])
    assert all(r["on_own"].all() for r in ranks)
    for r in ranks:  # the fit went on undisturbed
        for name in ("layers.0.W", "layers.2.b"):
            np.testing.assert_allclose(r["refit/" + name],
                                       one_process[f"sgd_nesterov_l2/float64/{name}"],
                                       rtol=1e-12)


@needs_torch
def test_a_fit_after_a_failed_torch_fit_is_the_one_process_fit(tmp_path, one_process):
    """Rank 1 failed mid-step while rank 0 waited in gloo for its sum: the next fit gets a
    process group of its own, which never meets what the failed one left unmatched."""
    _refit_is_the_one_process_fit(tmp_path, "refit", "torch",
                                  ["DistributedError", "RuntimeError"], one_process)
    # rank 1 closed its group as it failed: rank 0 hears of it at once, in plain words
    message = str(np.load(tmp_path / "rank-0.npz")["message"])
    assert message.startswith(("rank 0 of 2: another rank left the run at "
                               "the gradient sum of step 10 (see its error)",
                               "rank 0 of 2 waited 6 s for the other ranks "
                               "at the gradient sum of step 10")), message


@pytest.mark.parametrize("communicator", BOTH)
def test_a_rank_that_never_starts_a_fit_makes_later_fits_refused_clearly(tmp_path,
                                                                         communicator):
    proc = launch(2, "never_started", tmp_path, communicator, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = np.load(tmp_path / "rank-0.npz")["errors"]
    assert first.startswith("DistributedError: rank 0 of 2 waited 6 s for the other ranks "
                            "at the start of the run")
    assert second.startswith("DistributedError: rank 0 of 2: a run before this one never "
                             "started on some rank")


@needs_mpi
@pytest.mark.parametrize("scenario, what", [
    ("mismatch", "the number of training rows (rank 0: 203, rank 1: 193)"),
    ("mismatch_epochs", "epochs (rank 0: 1, rank 1: 2)"),
])
def test_ranks_that_disagree_are_refused_on_every_rank(tmp_path, scenario, what):
    proc = launch(2, scenario, tmp_path, timeout=120)
    assert proc.returncode != 0
    for error in _errors(tmp_path, 2):
        assert error.startswith(f"DistributedError: the ranks disagree on {what}"), error


@needs_mpi
def test_a_divergence_on_one_rank_raises_the_same_error_on_all(tmp_path):
    proc = launch(2, "diverge", tmp_path, timeout=120)
    assert proc.returncode != 0
    errors = _errors(tmp_path, 2)
    assert all(e is not None and e.startswith("DivergenceError: training diverged at epoch 1,")
               for e in errors), errors
    where = [e.split(":")[2] for e in errors]  # "... epoch 1, step k of 7"
    assert where[0] == where[1]


class _OneRank(Communicator):
    """A communicator of one rank: its sums are the arrays themselves."""

    def allreduce(self, ctx, array, what):
        return array


class _OwnBackward(Dense):
    """A user's Dense with a backward of its own, which takes no ``into``."""

    def backward(self, cache, dy, need_dx=True):
        return super().backward(cache, dy, need_dx)


@pytest.mark.parametrize("l2, own", [(0.0, False), (1e-2, False), (0.0, True)],
                         ids=["plain", "l2", "own_backward"])
def test_a_data_parallel_step_makes_the_dense_gradients_in_the_summed_vector(backend, l2, own):
    import nnx
    from nnx.distributed import GradientSum

    class Spy(GradientSum):  # which gradients arrive already in the step's vector
        def sum(self, loss, grads, keep=False):
            made = self.destinations() or {}
            self.made_there = {n for n, g in grads.items() if g is made.get(n)}
            return super().sum(loss, grads, keep)

    rng = np.random.default_rng(0)
    # widths that put the second kernel at an odd offset of a vector packed end to end,
    # where torch's product into it would round differently (the vector aligns them)
    first = (_OwnBackward if own else Dense)(7, activation="relu")
    net = nnx.Network([first, Dense(3)], input_dim=6, loss="categorical_crossentropy",
                      l2=l2, dtype="float64", seed=0, **backend.kwargs)
    net.build(6)
    xb = net.ctx.asarray(rng.normal(size=(8, 6)))
    yb = net.ctx.asarray(np.eye(3)[rng.integers(0, 3, 8)])
    plain_loss, plain = net.objective_and_gradients(xb, yb)
    plain = {k: nnx.to_numpy(v) for k, v in plain.items()}
    net.reduction = spy = Spy(net, _OneRank())
    spy.rows_total = 8
    for _ in range(3):  # the vectors are reused from step to step
        loss, grads = net.objective_and_gradients(xb, yb)
        for name, g in grads.items():
            np.testing.assert_array_equal(nnx.to_numpy(g), plain[name], err_msg=name)
        assert float(loss) == float(plain_loss)
    # a penalised kernel's gradient is a new array (the penalty added): copied in; so are
    # the gradients of a layer whose backward takes no into=
    made = {k for k in plain if (k.endswith(".b") or not l2)
            and not (own and k.startswith("layers.0."))}
    assert spy.made_there == (made if net.ctx.views and net.ctx.writeable else set())


def test_a_missing_mpi_runtime_is_an_import_error_with_the_install_hint():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, nnx\n"
            "net = nnx.Network([2, 4, 1], seed=0)\n"
            "try:\n"
            "    net.fit(np.zeros((8, 2)), np.arange(8) % 2, epochs=1, distributed='mpi')\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert "pip install 'nnx-mlp[mpi]'" in proc.stdout, proc.stderr


def test_bad_distributed_arguments_are_clear_errors():
    import nnx
    from nnx.distributed import DataParallel

    net = nnx.Network([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="distributed"):
        net.fit(np.zeros((8, 2)), np.arange(8) % 2, epochs=1, distributed="smoke-signals")
    with pytest.raises(TypeError, match="distributed must be"):
        DataParallel(communicator=3)
    with pytest.raises(ValueError, match="data"):
        DataParallel("mpi", data="everything")


@needs_mpi
def test_the_example_trains_on_two_ranks(tmp_path):
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable,
                           str(ROOT / "examples" / "data_parallel.py"), "--out", str(tmp_path),
                           "--epochs", "10"],
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = float(proc.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.9 and (tmp_path / "digits.nnx").exists()
    assert proc.stdout.count("test accuracy") == 1  # printed by rank 0 only


def _cuda_devices():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no CuPy, or no driver
        pass
    if HAS_TORCH:
        import torch

        return torch.cuda.device_count()
    return 0


@pytest.mark.gpu
@needs_mpi
@pytest.mark.parametrize("communicator", ["nccl", "torch"])
@pytest.mark.parametrize("n", [1, 2])
def test_nccl_ranks_reproduce_the_one_process_fit_on_gpus(tmp_path, communicator, n):
    """CuPy through nnx's NCCL communicator, torch CUDA tensors through torch's NCCL: one
    GPU per rank (a one-rank job checks the path on a machine with one GPU)."""
    if _cuda_devices() < n:
        pytest.skip(f"needs {n} CUDA GPU(s) ({_cuda_devices()} here)")
    if communicator == "nccl" and importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed")
    proc = launch(n, "gpu", tmp_path, communicator=communicator)
    assert proc.returncode == 0, proc.stderr[-3000:]
    backend = ({"backend": "cupy", "device": 0} if communicator == "nccl"
               else {"backend": "torch", "device": "cuda:0"})
    for case in ("adam_clip_norm", "sync_batchnorm"):
        *_, want = job.run_case(case, "float64", None, **backend)
        for r in range(n):
            got = np.load(tmp_path / f"rank-{r}.npz")
            for key, value in want.items():
                np.testing.assert_allclose(got[f"{case}/{key}"], value, rtol=1e-10,
                                           err_msg=f"{case} {key} on rank {r} of {n}")


@needs_mpi
def test_the_command_line_trains_on_two_ranks_as_on_one(tmp_path):
    """``mpiexec -n 2 nnx train --distributed mpi`` writes one model, rank 0's, and it is
    the one-process command's model."""
    import nnx

    argv = ["-m", "nnx.cli", "train", "--data", "moons", "--hidden", "8", "--epochs", "15",
            "--batch-size", "16", "--no-early-stopping"]
    one = subprocess.run([sys.executable, *argv, "--out", str(tmp_path / "one")], env=_env(),
                         capture_output=True, text=True, timeout=240)
    two = subprocess.run(["mpiexec", "-n", "2", sys.executable, *argv, "--out",
                          str(tmp_path / "two"), "--distributed", "mpi"], env=_env(),
                         capture_output=True, text=True, timeout=240)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Test metrics") == 1  # rank 0 speaks
    a, b = (nnx.load(tmp_path / name / "model.nnx") for name in ("one", "two"))
    for name, value in a.parameters().items():  # float32: rounding
        np.testing.assert_allclose(nnx.to_numpy(b.parameters()[name]), nnx.to_numpy(value),
                                   rtol=1e-4, atol=1e-6)
