"""Learning-rate schedules, ReduceLROnPlateau and the range test (lr_find).

Schedules are host functions ``step -> float``: their values are checked step for step
against ``torch.optim.lr_scheduler`` (and scikit-learn's ``invscaling``). That the optimizers
use them correctly on every backend is proven in test_optimizers.py (trajectories with
OneCycle, cosine and step schedules against torch).
"""

from __future__ import annotations


import numpy as np
import pytest

import nnx
from nnx import optimizers as O
from nnx import schedules as S
from nnx.backend import to_numpy
from nnx.callbacks import ReduceLROnPlateau


# ----------------------------------------------------------------------------- vs torch


def _torch_rates(torch, make, n, lr0):
    """The rate torch's scheduler gives before each of ``n`` optimizer steps."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make(torch.optim.lr_scheduler, opt)
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


# name: (nnx schedule, torch scheduler from (lr_scheduler, optimizer), torch base rate, steps)
TORCH_CASES = {
    "step": (S.StepDecay(0.1, 7, 0.5), lambda L, o: L.StepLR(o, 7, 0.5), 0.1, 40),
    "multistep": (S.MultiStep(0.1, [3, 10, 11], 0.3),
                  lambda L, o: L.MultiStepLR(o, [3, 10, 11], 0.3), 0.1, 30),
    "exponential": (S.Exponential(0.1, 0.95), lambda L, o: L.ExponentialLR(o, 0.95), 0.1, 60),
    "polynomial": (S.Polynomial(0.1, 25, 2.0), lambda L, o: L.PolynomialLR(o, 25, 2.0), 0.1, 40),
    "polynomial-linear": (S.Polynomial(0.3, 10), lambda L, o: L.PolynomialLR(o, 10), 0.3, 15),
    "cosine": (S.CosineAnnealing(0.1, 30, 0.001),
               lambda L, o: L.CosineAnnealingLR(o, 30, 0.001), 0.1, 31),
    "cosine-to-zero": (S.CosineAnnealing(0.1, 30), lambda L, o: L.CosineAnnealingLR(o, 30),
                       0.1, 31),
    "cosine-restarts": (S.CosineAnnealing(0.1, 5, 0.001, restarts=True),
                        lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, 1, 0.001), 0.1, 40),
    "cosine-restarts-growing": (
        S.CosineAnnealing(0.1, 3, restarts=True, period_mult=2),
        lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2), 0.1, 60),
    "onecycle": (S.OneCycle(0.5, 50),
                 lambda L, o: L.OneCycleLR(o, 0.5, total_steps=50, cycle_momentum=False), 0.1, 50),
    "onecycle-three-phase-linear": (
        S.OneCycle(0.5, 47, 0.25, "linear", three_phase=True),
        lambda L, o: L.OneCycleLR(o, 0.5, total_steps=47, pct_start=0.25,
                                  anneal_strategy="linear", three_phase=True,
                                  cycle_momentum=False), 0.1, 47),
    "warmup-cosine": (S.LinearWarmup(S.CosineAnnealing(0.1, 20), 5, 0.1),
                      lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 5),
                                                      L.CosineAnnealingLR(o, 20)], [5]),
                      0.1, 25),
    "warmup-exponential": (S.LinearWarmup(S.Exponential(0.1, 0.9), 4, 0.2),
                           lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.2, 1.0, 4),
                                                           L.ExponentialLR(o, 0.9)], [4]),
                           0.1, 25),
    "warmup-constant": (S.LinearWarmup(0.1, 8, 0.25),
                        lambda L, o: L.LinearLR(o, 0.25, 1.0, 8), 0.1, 20),
    "per-epoch-step": (S.PerEpoch(S.StepDecay(0.1, 2, 0.5), 1),
                       lambda L, o: L.StepLR(o, 2, 0.5), 0.1, 12),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_schedule_matches_torch_step_for_step(case, torch):
    schedule, make, lr0, n = TORCH_CASES[case]
    theirs = _torch_rates(torch, make, n, lr0)
    ours = np.array([schedule(k) for k in range(n)])
    assert all(type(schedule(k)) is float for k in range(3))
    # torch updates most rates recursively (rate_k = rate_{k-1} * ratio): rounding only
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15 * lr0)
    assert np.ptp(theirs) > 0.1 * lr0  # the schedule does change the rate


def test_invscaling_matches_scikit_learn():
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    ref = SGDOptimizer([np.zeros(1)], learning_rate_init=0.05, lr_schedule="invscaling",
                       power_t=0.25)
    schedule = S.InvScaling(0.05, power_t=0.25)
    for t in [0, 1, 2, 10, 32, 1000, 12345]:
        ref.iteration_ends(t)  # scikit-learn's t counts samples seen
        assert schedule(t) == pytest.approx(ref.learning_rate, rel=1e-15)


def test_closed_forms_written_out():
    it = S.InverseTime(0.1, decay_rate=0.5, decay_steps=10)
    assert [it(k) for k in (0, 10, 30)] == pytest.approx([0.1, 0.1 / 1.5, 0.1 / 2.5])
    assert S.InverseTime(1.0, 1.0, 1, power=2.0)(3) == pytest.approx(1 / 16)
    poly = S.Polynomial(0.1, 10, power=1.0, end_learning_rate=0.01)
    assert [poly(k) for k in (0, 5, 10, 50)] == pytest.approx([0.1, 0.055, 0.01, 0.01])
    assert S.Constant(0.3)(10**9) == 0.3
    warm = S.LinearWarmup(S.StepDecay(1.0, 2, 0.5), 4)  # from 0 by default
    assert [warm(k) for k in range(8)] == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1, 0.5, 0.5])
    per = S.PerEpoch(S.Exponential(1.0, 0.5), steps_per_epoch=3)
    assert [per(k) for k in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_past_the_horizon_the_rate_holds():
    cos = S.CosineAnnealing(0.1, 10, 0.001)
    assert cos(10) == cos(11) == cos(1000) == pytest.approx(0.001)
    one = S.OneCycle(1.0, 20)
    assert one(19) == one(20) == one(500) == pytest.approx(1.0 / 25 / 1e4)
    assert S.Polynomial(0.1, 10)(11) == 0.0


def test_schedules_by_name():
    s = S.get("cosine", initial_learning_rate=0.1, period=50)
    assert isinstance(s, S.CosineAnnealing) and s.period == 50
    assert set(S.SCHEDULES) >= {"constant", "step", "multistep", "exponential", "inverse_time",
                                "invscaling", "polynomial", "cosine", "warmup", "onecycle"}
    assert S.get(s) is s
    assert "period=50" in repr(s)


@pytest.mark.parametrize("make,match", [
    (lambda: S.Constant(0.0), r"learning_rate must be in \(0"),
    (lambda: S.StepDecay(0.1, 0), r"step_size must be in \[1"),
    (lambda: S.StepDecay(-0.1, 5), "initial_learning_rate"),
    (lambda: S.StepDecay(0.1, 5, gamma=1.5), r"gamma must be in \(0, 1\]"),
    (lambda: S.MultiStep(0.1, [5, 3]), "strictly increasing"),
    (lambda: S.MultiStep(0.1, []), "non-empty"),
    (lambda: S.Exponential(0.1, 0.0), "gamma"),
    (lambda: S.InverseTime(0.1, decay_rate=-1), "decay_rate"),
    (lambda: S.InvScaling(0.1, power_t=0), "power"),
    (lambda: S.Polynomial(0.1, 10, end_learning_rate=0.2), "end_learning_rate"),
    (lambda: S.CosineAnnealing(0.1, 10, min_learning_rate=0.2), "min_learning_rate"),
    (lambda: S.CosineAnnealing(0.1, 0), "period"),
    (lambda: S.CosineAnnealing(0.1, 5, restarts=True, period_mult=0), "period_mult"),
    (lambda: S.LinearWarmup(0.1, 0), "warmup_steps"),
    (lambda: S.LinearWarmup(0.1, 5, start_factor=2.0), "start_factor"),
    (lambda: S.OneCycle(0.1, 100, pct_start=1.0), r"pct_start must be in \(0, 1\)"),
    (lambda: S.OneCycle(0.1, 1), "total_steps"),
    (lambda: S.OneCycle(0.1, 100, anneal_strategy="exp"), "anneal_strategy must be one of"),
    (lambda: S.PerEpoch(0.1, 5), "schedule must be callable"),
    (lambda: S.get("cosin"), "unknown schedule 'cosin'; choose one of constant"),
    (lambda: S.Constant(0.1)(-1), "step must be a non-negative integer"),
    (lambda: S.Constant(0.1)(1.5), "step must be a non-negative integer"),
])
def test_bad_schedule_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_network_accepts_a_schedule_by_learning_rate(backend):
    """``learning_rate=`` takes a schedule; it is called once per batch with the step count."""
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1

    net = nnx.Network([2, 3, 1], optimizer="sgd", learning_rate=schedule, seed=0,
                      **backend.kwargs)
    X = np.random.default_rng(0).normal(size=(20, 2))
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=2, batch_size=8)  # 3 batches per epoch
    assert seen == list(range(6))


# ----------------------------------------------------------------------------- plateau


def _torch_plateau(torch, metrics, **kw):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    rates = []
    for m in metrics:
        sched.step(m)
        rates.append(opt.param_groups[0]["lr"])
    return rates


_noisy = list(np.round(1 / np.arange(1, 41) + 0.05 * np.sin(np.arange(40)), 4))
PLATEAU_CASES = [
    dict(),
    dict(patience=2, factor=0.5),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.3, min_lr=0.05),
    dict(patience=2, threshold=0.05, threshold_mode="abs"),
    dict(patience=2, threshold=0.2, threshold_mode="rel", factor=0.5),
    dict(mode="max", patience=1, factor=0.5),
    dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs", cooldown=1),
    dict(patience=0, factor=0.5, eps=0.3),
]


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=lambda kw: ",".join(map(str, kw.items())))
def test_reduce_on_plateau_matches_torch(kw, torch):
    metrics = _noisy + [0.5] * 15 + _noisy[::-1]
    theirs = _torch_plateau(torch, metrics, **kw)
    cb = ReduceLROnPlateau(monitor="loss", **kw)
    opt = O.SGD(1.0)
    ours = [cb.update(m, opt) for m in metrics]
    assert ours == pytest.approx(theirs, rel=1e-15)
    assert len(set(theirs)) > 1  # some reduction happened


def _sklearn_adaptive_rates(metrics, tol, n_iter_no_change, early_stopping=False):
    """scikit-learn's own code: MLP's no-improvement counter and SGDOptimizer.trigger_stopping."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    mlp = MLPClassifier(tol=tol, n_iter_no_change=n_iter_no_change)
    mlp.loss_curve_, mlp.validation_scores_ = [], []
    mlp.best_loss_, mlp.best_validation_score_ = np.inf, -np.inf
    mlp._no_improvement_count = 0
    mlp.coefs_, mlp.intercepts_ = [], []
    opt = SGDOptimizer([np.zeros(1)], learning_rate_init=0.1, lr_schedule="adaptive")
    rates, stopped = [], False
    for m in metrics:
        if early_stopping:
            mlp._score = lambda *args, m=m, **kw: m
        else:
            mlp.loss_curve_.append(m)
        try:
            mlp._update_no_improvement_count(early_stopping, None, None, None)
        except TypeError:  # scikit-learn < 1.6 has no sample_weight argument
            mlp._update_no_improvement_count(early_stopping, None, None)
        if mlp._no_improvement_count > n_iter_no_change:
            if opt.trigger_stopping("", False):
                stopped = True
                break
            mlp._no_improvement_count = 0
        rates.append(opt.learning_rate)
    return rates, stopped


@pytest.mark.parametrize("tol,patience", [(1e-4, 10), (0.05, 2), (0.01, 1)])
def test_sklearn_adaptive_preset_matches_scikit_learn(tol, patience):
    metrics = _noisy + [0.5] * 40 + list(np.linspace(0.5, 0.499, 30))
    theirs, stopped = _sklearn_adaptive_rates(metrics, tol, patience)
    cb = ReduceLROnPlateau.sklearn_adaptive(tol=tol, n_iter_no_change=patience)
    opt = O.SGD(0.1)
    ours = []
    for m in metrics:
        rate = cb.update(m, opt)
        if cb.stop:
            break
        ours.append(rate)
    assert ours == pytest.approx(theirs, rel=1e-15)
    assert cb.stop == stopped
    assert len(set(theirs)) > 1


def test_sklearn_adaptive_preset_on_validation_score():
    scores = list(np.round(0.5 + 0.4 * (1 - np.exp(-np.arange(30) / 5)), 3)) + [0.9] * 30
    theirs, _ = _sklearn_adaptive_rates(scores, 1e-3, 3, early_stopping=True)
    cb = ReduceLROnPlateau.sklearn_adaptive(tol=1e-3, n_iter_no_change=3,
                                            monitor="val_accuracy")
    assert cb.mode == "max"
    opt = O.SGD(0.1)
    ours = [cb.update(s, opt) for s in scores[: len(theirs)]]
    assert ours == pytest.approx(theirs, rel=1e-15)


def test_reduce_on_plateau_in_fit(backend):
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    # threshold 0.99 (relative): no epoch after the first can beat the best by 99%
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, threshold=0.99)
    net = nnx.Network([2, 4, 1], optimizer=O.Adam(0.08), seed=0, **backend.kwargs)
    net.fit(X, y, epochs=7, batch_size=None, callbacks=[cb])
    # bad epochs 2..7: reductions after epochs 3, 5, 7 (patience 1, counter reset each time)
    assert [epoch for epoch, _ in cb.reductions] == [2, 4, 6]
    assert net.optimizer.learning_rate == pytest.approx(0.01)
    state = net.optimizer.state_dict()
    assert state["learning_rate"] == pytest.approx(0.01)


def test_reduce_on_plateau_refuses_what_it_cannot_do(backend):
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = (X[:, 0] > 0).astype(int)
    net = nnx.Network([2, 1], optimizer=O.SGD(S.Exponential(0.1, 0.9)), seed=0, **backend.kwargs)
    with pytest.raises(ValueError, match="learning_rate, which is a schedule"):
        net.fit(X, y, epochs=1, callbacks=[ReduceLROnPlateau(monitor="loss")])
    net = nnx.Network([2, 1], seed=0, **backend.kwargs)
    with pytest.raises(ValueError, match="monitor='val_loss' is not logged"):
        net.fit(X, y, epochs=1, callbacks=[ReduceLROnPlateau()])
    for kw, match in [({"factor": 1.0}, "factor"), ({"patience": -1}, "patience"),
                      ({"threshold_mode": "pct"}, "threshold_mode"), ({"mode": "up"}, "mode"),
                      ({"min_lr": -1}, "min_lr"), ({"cooldown": 0.5}, "cooldown")]:
        with pytest.raises(ValueError, match=match):
            ReduceLROnPlateau(**kw)
    with pytest.raises(ValueError, match="n_iter_no_change"):
        ReduceLROnPlateau.sklearn_adaptive(n_iter_no_change=0)


# ----------------------------------------------------------------------------- lr_find


def _moons():
    from sklearn.datasets import make_moons
    from sklearn.preprocessing import StandardScaler

    X, y = make_moons(n_samples=200, noise=0.2, random_state=42)
    return StandardScaler().fit_transform(X), y


def test_lr_find_sweeps_a_copy(backend):
    X, y = _moons()
    net = nnx.Network([2, 16, 8, 1], optimizer="momentum", seed=0, **backend.kwargs)
    net.fit(X, y, epochs=1)
    before = {k: np.array(to_numpy(v), copy=True) for k, v in net.parameters().items()}
    slots_before = {k: np.array(to_numpy(v["momentum"]), copy=True)
                    for k, v in net.optimizer.slots.items()}
    iterations, rate = net.optimizer.iterations, net.optimizer.learning_rate
    random_state = net.random.state()

    result = nnx.lr_find(net, X, y, start_lr=1e-5, end_lr=10.0, num_steps=60)

    for k, v in net.parameters().items():
        np.testing.assert_array_equal(to_numpy(v), before[k])
    for k, v in net.optimizer.slots.items():
        np.testing.assert_array_equal(to_numpy(v["momentum"]), slots_before[k])
    assert net.optimizer.iterations == iterations and net.optimizer.learning_rate == rate
    assert net.random.state() == random_state

    lrs = result.learning_rates
    assert lrs[0] == pytest.approx(1e-5) and np.all(np.diff(np.log(lrs)) > 0)
    ratio = np.diff(np.log(lrs))
    np.testing.assert_allclose(ratio, np.log(1e6) / 59, rtol=1e-9)  # geometric
    assert len(result.losses) == len(lrs) == len(result.smoothed_losses)
    # momentum SGD diverges well before 10 on this problem; the test stops there
    assert result.diverged and len(lrs) < 60
    assert 1e-5 < result.suggestion <= result.min_loss_rate < lrs[-1]
    assert result.smoothed_losses[np.argmin(np.abs(lrs - result.min_loss_rate))] < \
        result.smoothed_losses[0]


def test_lr_find_on_an_unbuilt_network_leaves_it_unbuilt(backend):
    X, y = _moons()
    net = nnx.Network([nnx.Dense(8, activation="relu"), nnx.Dense(1)], optimizer="adam",
                      seed=0, **backend.kwargs)
    result = nnx.lr_find(net, X, y, num_steps=20, end_lr=1e-1)
    assert not net.built and net.targets_ is None
    assert np.all(np.isfinite(result.losses)) and not result.diverged


def test_lr_find_plot(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = _moons()
    result = nnx.lr_find(nnx.Network([2, 8, 1], optimizer="adam", seed=0), X, y, num_steps=30)
    ax = result.plot()
    assert ax.get_xscale() == "log" and len(ax.lines) == 3
    ax.figure.savefig(tmp_path / "lr.png")
    plt.close(ax.figure)


@pytest.mark.parametrize("kw,match", [
    ({"start_lr": 0}, "start_lr"), ({"start_lr": 1.0, "end_lr": 0.5}, "end_lr"),
    ({"num_steps": 2}, "num_steps"), ({"smoothing": 1.0}, "smoothing"),
    ({"diverge": 1.0}, "diverge"), ({"batch_size": 0}, "batch_size"),
])
def test_lr_find_bad_input(kw, match):
    X, y = _moons()
    with pytest.raises(ValueError, match=match):
        nnx.lr_find(nnx.Network([2, 1]), X, y, **kw)
    with pytest.raises(ValueError, match="line search"):
        nnx.lr_find(nnx.Network([2, 1], optimizer="lbfgs"), X, y)
