"""Packed ("foreach") optimizers: the same trajectory as per-parameter updates, bit for bit.

An element-wise rule run once over all parameters laid end to end must give exactly the numbers
of the rule run parameter by parameter (every operation is correctly rounded and sees the same
operands), through replaced parameters, constraints, divergence replays and save/resume.
Against torch.optim both ways are checked in ``test_optimizers.test_matches_torch_optim``.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnx
from nnx import optimizers as O
from nnx.backend import to_numpy
from nnx.packing import FlatLayout

_rng = np.random.default_rng(7)
X = _rng.normal(size=(40, 4))
Y = (X[:, 0] - X[:, 1] * X[:, 2] > 0).astype(np.int64)
# every element-wise rule with each of its options that touches the slots
RULES = {
    "sgd": lambda: O.SGD(0.1),
    "momentum-wd": lambda: O.SGD(0.1, momentum=0.9, weight_decay=1e-2),
    "nesterov": lambda: O.SGD(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda: O.Adagrad(0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "rmsprop-centered": lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
    "adadelta": lambda: O.Adadelta(0.5, weight_decay=1e-3),
    "adam-amsgrad": lambda: O.Adam(0.01, amsgrad=True, clip_value=0.5),
    "adamw": lambda: O.AdamW(0.01),
    "nadam": lambda: O.NAdam(0.01),
    "radam": lambda: O.RAdam(0.01),
    "adamax": lambda: O.Adamax(0.01),
    "lion": lambda: O.Lion(1e-3, weight_decay=0.1),
}


def _net(rule, foreach, backend, **kwargs):
    optimizer = RULES[rule]()
    optimizer.foreach = foreach
    return nnx.Network([4, 6, 5, 2], activation="tanh", optimizer=optimizer, dtype="float64",
                       seed=1, **backend.kwargs, **kwargs)


def _host(net):
    return {k: np.array(to_numpy(v)) for k, v in net.parameters().items()}


def _assert_same(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ----------------------------------------------------------------------------- the layout


def test_layout_packs_and_unpacks_in_order(backend):
    ctx = backend.context("float64")
    xp = ctx.xp
    arrays = {"W": ctx.asarray(np.arange(6.0).reshape(2, 3)), "b": ctx.asarray([10.0, 11.0]),
              "V": ctx.asarray(np.arange(4.0).reshape(4, 1))}
    layout = FlatLayout(arrays)
    assert layout.size == 12 and layout.bounds == [(0, 6), (6, 8), (8, 12)]
    flat = layout.pack(xp, arrays)
    np.testing.assert_array_equal(to_numpy(flat), [0, 1, 2, 3, 4, 5, 10, 11, 0, 1, 2, 3])
    back = layout.unpack(xp, flat)
    for name, value in arrays.items():
        assert tuple(back[name].shape) == tuple(value.shape)
        np.testing.assert_array_equal(to_numpy(back[name]), to_numpy(value))
    # a pack is a copy: changing it leaves the arrays alone
    flat *= 0.0
    assert float(xp.sum(arrays["b"])) == 21.0


def test_an_aligned_layout_starts_every_array_on_a_multiple_and_cannot_pack():
    arrays = {"W": np.zeros((2, 3)), "b": np.zeros(2), "V": np.zeros((17, 1))}
    layout = FlatLayout(arrays, align=16)
    assert layout.bounds == [(0, 6), (16, 18), (32, 49)] and layout.size == 64
    back = layout.unpack(np, np.arange(64.0))
    np.testing.assert_array_equal(back["b"], [16.0, 17.0])
    with pytest.raises(ValueError, match="align"):
        layout.pack(np, arrays)


def test_layout_recognises_only_what_it_handed_out(backend):
    ctx = backend.context("float64")
    xp = ctx.xp
    arrays = {"a": ctx.asarray([1.0, 2.0]), "b": ctx.asarray([[3.0]])}
    layout = FlatLayout(arrays)
    assert not layout.holds(arrays)
    out = layout.hand_out(xp, layout.pack(xp, arrays))
    assert layout.holds(out)
    assert not layout.holds({**out, "b": xp.asarray(out["b"], copy=True)})
    assert not FlatLayout(arrays).holds(out)  # a copy of the layout (no hand-out yet)


def test_hand_out_reuses_views_only_of_the_same_vector(backend):
    ctx = backend.context("float64")
    xp = ctx.xp
    arrays = {"a": ctx.asarray([1.0, 2.0]), "b": ctx.asarray([[3.0, 4.0]])}
    layout = FlatLayout(arrays)
    flat = layout.pack(xp, arrays)
    first = layout.hand_out(xp, flat, views=ctx.views)
    flat *= 2.0  # an in-place update of the packed vector
    again = layout.hand_out(xp, flat, views=ctx.views)
    np.testing.assert_array_equal(to_numpy(again["b"]), [[6.0, 8.0]])
    assert all(again[k] is first[k] for k in first) is ctx.views
    other = layout.hand_out(xp, layout.pack(xp, arrays), views=ctx.views)
    assert not any(other[k] is first[k] for k in first)
    np.testing.assert_array_equal(to_numpy(other["b"]), [[3.0, 4.0]])


def test_a_single_array_packs_as_a_copy(backend):
    ctx = backend.context("float64")
    w = ctx.asarray(np.ones((2, 2)))
    flat = FlatLayout({"w": w}).pack(ctx.xp, {"w": w})
    flat *= 3.0
    np.testing.assert_array_equal(to_numpy(w), np.ones((2, 2)))


# ----------------------------------------------------------------------------- trajectories


@pytest.mark.parametrize("rule", list(RULES))
def test_packed_and_per_parameter_trajectories_are_identical(rule, backend):
    per_param, packed = _net(rule, False, backend), _net(rule, True, backend)
    for net in (per_param, packed):
        net.fit(X, Y, epochs=6, batch_size=8, shuffle=True)
    assert packed.optimizer.packed and not per_param.optimizer.packed
    _assert_same(_host(packed), _host(per_param))
    start = _host(_net(rule, True, backend))
    assert any(np.max(np.abs(start[k] - v)) > 1e-3 for k, v in _host(packed).items())
    # the per-parameter view of the packed state equals the per-parameter state
    slots_a, slots_b = packed.optimizer.slots, per_param.optimizer.slots
    assert set(slots_a) == set(slots_b) == set(start)
    for name in slots_a:
        assert set(slots_a[name]) == set(slots_b[name])
        for key, value in slots_a[name].items():
            ref = slots_b[name][key]
            if ref is None:
                assert value is None
            else:
                assert tuple(value.shape) == tuple(ref.shape)
                np.testing.assert_array_equal(to_numpy(value), to_numpy(ref))


def test_clip_norm_packed_matches_per_parameter_to_rounding(backend):
    nets = []
    for foreach in (False, True):
        net = nnx.Network([4, 6, 2], optimizer=O.Adam(0.05, clip_norm=0.01, foreach=foreach),
                          dtype="float64", seed=2, **backend.kwargs)
        net.fit(X, Y, epochs=5, batch_size=10)
        nets.append(_host(net))
    for name in nets[0]:  # one norm over the packed vector: summed in another order
        np.testing.assert_allclose(nets[1][name], nets[0][name], rtol=1e-12, atol=1e-14)


def test_replaced_parameters_are_packed_again(backend):
    """set_parameters between steps: the packed copy must not overwrite the new values."""
    nets = [_net("adam-amsgrad", foreach, backend) for foreach in (False, True)]
    for net in nets:
        net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
        net.set_parameters({"layers.0.W": np.full((4, 6), 0.1)})
        assert np.all(to_numpy(net.parameters()["layers.0.W"]) == 0.1)
        net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
    _assert_same(_host(nets[1]), _host(nets[0]))


def test_constraints_and_divergence_replay_stay_identical(backend):
    """MaxNorm rebinds W after every step; a diverging epoch is replayed from a restore
    point. Both replace the parameters under the packed optimizer."""
    results = []
    for foreach in (False, True):
        net = nnx.Network([nnx.layers.Dense(6, "relu", kernel_constraint=nnx.regularizers.MaxNorm(0.5)),
                           nnx.layers.Dense(2)], input_dim=4,
                          optimizer=O.SGD(0.2, momentum=0.9, foreach=foreach), dtype="float64",
                          seed=4, **backend.kwargs)
        net.fit(X, Y, epochs=3, batch_size=8, shuffle=False)
        big = X * 1e200  # overflows on the first step of the next epoch
        with pytest.warns(nnx.NonFiniteWarning):
            net.fit(big, Y, epochs=1, batch_size=8, shuffle=False, on_nonfinite="warn")
        net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)  # continues from the restore
        results.append(_host(net))
    _assert_same(results[1], results[0])
    assert np.all(np.linalg.norm(results[1]["layers.0.W"], axis=0) <= 0.5 + 1e-12)


@pytest.mark.parametrize("saved_packed", [False, True])
def test_state_saved_one_way_resumes_the_other_way(saved_packed, backend):
    straight = _net("adam-amsgrad", saved_packed, backend)
    straight.fit(X, Y, epochs=8, batch_size=None, shuffle=False)

    first = _net("adam-amsgrad", saved_packed, backend)
    first.fit(X, Y, epochs=4, batch_size=None, shuffle=False)
    state = first.optimizer.state_dict()
    assert set(state["slots"]) == set(first.parameters())  # per parameter, either way
    for name, p in first.parameters().items():
        assert state["slots"][name]["m"].shape == tuple(p.shape)

    resumed = _net("adam-amsgrad", not saved_packed, backend)
    assert resumed.optimizer.packed is (not saved_packed)
    resumed.set_parameters(_host(first))
    resumed.optimizer.load_state_dict(state)
    resumed.fit(X, Y, epochs=4, batch_size=None, shuffle=False)
    _assert_same(_host(resumed), _host(straight))


def test_saved_model_keeps_the_foreach_choice(tmp_path, backend):
    net = _net("adamw", False, backend)
    net.fit(X, Y, epochs=2, batch_size=8)
    net.save(tmp_path / "m.npz")
    loaded = nnx.load(tmp_path / "m.npz", **backend.kwargs)
    assert loaded.optimizer.foreach is False and not loaded.optimizer.packed
    assert "foreach=False" in repr(loaded.optimizer)


# ----------------------------------------------------------------------------- the choice


def test_auto_packs_small_networks_only():
    small = nnx.Network([4, 8, 2], optimizer="adam", seed=0)
    assert small.optimizer.packed
    wide = nnx.Network([784, 512, 10], optimizer="adam", seed=0)  # ~200k entries per kernel
    assert not wide.optimizer.packed
    plain = nnx.Network([4, 8, 2], optimizer=O.SGD(0.1), seed=0)  # two calls per parameter
    assert not plain.optimizer.packed
    assert nnx.Network([4, 8, 2], optimizer=O.SGD(0.1, foreach=True), seed=0).optimizer.packed
    assert not nnx.Network([4, 8, 2], optimizer="momentum", seed=0).optimizer.packed
    assert nnx.Network([4, 8, 2], optimizer="rmsprop", seed=0).optimizer.packed
    lbfgs = nnx.Network([4, 8, 2], optimizer="lbfgs", seed=0)
    assert not lbfgs.optimizer.packed


def test_foreach_is_validated():
    with pytest.raises(ValueError, match="foreach"):
        O.Adam(foreach="yes")

    class PerMatrix(O.Optimizer):  # not element-wise: may never pack
        def direction(self, xp, p, g, slots, t):
            return g / xp.linalg.vector_norm(g), slots

    with pytest.raises(ValueError, match="PerMatrix is not element-wise"):
        PerMatrix(0.1, foreach=True)
    net = nnx.Network([4, 8, 2], optimizer=PerMatrix(0.1), seed=0)
    assert not net.optimizer.packed
    net.fit(X, Y, epochs=1)


# ----------------------------------------------------------------------------- copies


def _continue(net, epochs=3):
    net.fit(X, Y, epochs=epochs, batch_size=8, shuffle=False)
    return _host(net)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_of_a_packed_network_trains_like_the_original(how, backend):
    """A copy's parameters are no views of its optimizer's packed vector (copying does not
    keep views): it must pack its own again, or its updates would never reach its layers."""
    import copy
    import pickle

    make_copy = {"deepcopy": copy.deepcopy,
                 "pickle": lambda net: pickle.loads(pickle.dumps(net))}[how]
    net = _net("adam-amsgrad", True, backend)
    net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
    twin = make_copy(net)
    original = _host(net)
    _assert_same(_continue(twin), _continue(net))
    assert any(np.max(np.abs(v - original[k])) > 1e-6 for k, v in _host(twin).items())


def test_lr_find_is_the_same_packed_or_not(backend):
    results = []
    for foreach in (False, True):
        net = _net("adamw", foreach, backend)
        net.fit(X, Y, epochs=1, batch_size=8)
        found = nnx.lr_find(net, X, Y, start_lr=1e-4, end_lr=1.0, num_steps=30, batch_size=8)
        results.append(np.asarray(found.losses))
    np.testing.assert_array_equal(results[1], results[0])


# ----------------------------------------------------------------------------- the step API


def test_replacing_an_entry_of_the_returned_dict_is_noticed(backend):
    """``params = opt.step(params, grads)`` then ``params[name] = something_else``: the next
    step must start from the replacement, as it does per parameter."""
    ctx = backend.context("float64")
    results = []
    for foreach in (False, True):
        opt = O.Adam(0.1, foreach=foreach)
        params = {"a": ctx.asarray([1.0, 2.0, 3.0]), "b": ctx.asarray([[0.5, -0.5]])}
        grads = {"a": ctx.asarray([1.0, -1.0, 2.0]), "b": ctx.asarray([[0.3, 0.1]])}
        opt.build(params, ctx)
        assert opt.packed is foreach
        params = opt.step(params, grads)
        params["a"] = ctx.xp.zeros_like(params["a"])  # a projection, a reset, ...
        params = opt.step(params, grads)
        results.append({k: to_numpy(v) for k, v in params.items()})
    _assert_same(results[1], results[0])
    assert not np.all(results[1]["a"] == 0.0)  # the second step moved the replacement


def test_a_subclass_with_its_own_rule_is_not_packed_unless_it_says_so():
    class NoBiasDecay(O.Adam):  # looks at p.ndim: must never see the packed vector
        def direction(self, xp, p, g, slots, t):
            if p.ndim == 1:
                g = g * 0.5
            return super().direction(xp, p, g, slots, t)

    class Declared(O.Adam):
        elementwise = True

        def direction(self, xp, p, g, slots, t):
            return super().direction(xp, p, g, slots, t)

    class OnlyRenamed(O.Adam):  # inherits the rule: still element-wise
        name = "renamed"

    assert not NoBiasDecay.elementwise and Declared.elementwise and OnlyRenamed.elementwise
    assert not nnx.Network([4, 8, 2], optimizer=NoBiasDecay(0.01), seed=0).optimizer.packed
    assert nnx.Network([4, 8, 2], optimizer=Declared(0.01), seed=0).optimizer.packed
    with pytest.raises(ValueError, match="NoBiasDecay is not element-wise"):
        NoBiasDecay(0.01, foreach=True)


@pytest.mark.parametrize("foreach", [False, True])
def test_arrays_that_cannot_be_written_in_place_train_identically(foreach):
    """The path for namespaces whose arrays are not writeable (every update a new array, no
    views): a NumPy context that claims so must give the same numbers."""
    import dataclasses

    from nnx.backend import get_context

    frozen = dataclasses.replace(get_context("numpy", dtype="float64"), writeable=False,
                                 views=False)
    nets = []
    for ctx in (None, frozen):
        optimizer = RULES["adam-amsgrad"]()
        optimizer.foreach = foreach
        kwargs = {} if ctx is None else {"backend": ctx}
        net = nnx.Network([4, 6, 5, 2], activation="tanh", optimizer=optimizer,
                          dtype="float64", seed=1, **kwargs)
        net.fit(X, Y, epochs=4, batch_size=8)
        nets.append(_host(net))
    _assert_same(nets[1], nets[0])


def test_packed_optimizer_state_survives_save_and_load(tmp_path, backend):
    net = _net("adam-amsgrad", True, backend)
    net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
    net.save(tmp_path / "m.npz")
    loaded = nnx.load(tmp_path / "m.npz", **backend.kwargs)
    assert loaded.optimizer.packed and loaded.optimizer.foreach is True
    for model in (net, loaded):
        model.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
    _assert_same(_host(loaded), _host(net))


def test_a_backend_sets_its_own_packing_threshold():
    """The threshold was measured on a CPU; a backend whose calls cost more (a GPU) sets its
    own through its descriptor, without touching the optimizers."""
    from nnx.backend import NumPyBackend, register_backend, unregister_backend

    class Threshold(NumPyBackend):
        name = "numpy_no_packing"
        foreach_max_mean_size = 1

    register_backend(Threshold())
    try:
        sizes = [4, 8, 1]
        assert nnx.Network(sizes, optimizer="adam", seed=0).optimizer.packed
        assert not nnx.Network(sizes, optimizer="adam", seed=0,
                               backend="numpy_no_packing").optimizer.packed
    finally:
        unregister_backend("numpy_no_packing")


# ----------------------------------------------------------------------------- the seam


def test_the_seam_packs_and_hands_back(backend):
    """``Packed``: one vector in (kept while the arrays handed out come back), slices out,
    slots shown per parameter and taken back per parameter; ``PerParameter`` passes all."""
    from nnx.packing import PACKED, Packed, PerParameter

    ctx = backend.context("float64")
    xp = ctx.xp
    params = {"W": ctx.asarray(np.arange(6.0).reshape(2, 3)), "b": ctx.asarray([7.0, 8.0])}
    grads = {"W": ctx.asarray(np.ones((2, 3))), "b": ctx.asarray([0.5, 0.5])}
    identity = PerParameter()
    assert identity.enter(params, grads) == (params, grads) and not identity.packed
    assert identity.leave(params) is params

    seam = Packed(params, ctx)
    packed_params, packed_grads = seam.enter(params, grads)
    assert set(packed_params) == set(packed_grads) == {PACKED}
    np.testing.assert_array_equal(to_numpy(packed_grads[PACKED]), [1] * 6 + [0.5, 0.5])
    out = seam.leave({PACKED: packed_params[PACKED] - 1.0})
    np.testing.assert_array_equal(to_numpy(out["W"]), np.arange(6.0).reshape(2, 3) - 1.0)
    again, _ = seam.enter(out, grads)  # what it handed out came back: no new pack
    assert again[PACKED] is seam._vector
    replaced, _ = seam.enter({**out, "b": ctx.asarray([0.0, 0.0])}, grads)
    np.testing.assert_array_equal(to_numpy(replaced[PACKED])[-2:], [0.0, 0.0])

    slots = {PACKED: {"m": xp.asarray(np.arange(8.0)), "momentum": None}}
    per_parameter = seam.per_parameter(slots)
    assert tuple(per_parameter["W"]["m"].shape) == (2, 3)
    assert per_parameter["b"]["momentum"] is None
    back = seam.from_per_parameter(per_parameter)
    np.testing.assert_array_equal(to_numpy(back[PACKED]["m"]), np.arange(8.0))
    assert back[PACKED]["momentum"] is None and seam._vector is None  # packs again next step


def test_a_copy_of_the_seam_forgets_its_vector(backend):
    import pickle

    from nnx.packing import Packed

    ctx = backend.context("float64")
    params = {"a": ctx.asarray([1.0, 2.0]), "b": ctx.asarray([[3.0]])}
    seam = Packed(params, ctx)
    out = seam.leave(seam.enter(params, params)[0])
    twin = pickle.loads(pickle.dumps(seam))
    assert twin._vector is None and not twin.layout.holds(out)
    assert seam.layout.holds(out)


@pytest.mark.parametrize("rule", ["momentum-wd", "adam-amsgrad", "lion"])
def test_setting_a_hyperparameter_mid_run_is_the_same_packed_or_not(rule, backend):
    results = []
    for foreach in (False, True):
        net = _net(rule, foreach, backend)
        net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
        net.optimizer.weight_decay = 0.05
        if rule == "momentum-wd":
            net.optimizer.momentum = 0.5
        else:
            net.optimizer.beta_1 = 0.5
        net.fit(X, Y, epochs=2, batch_size=8, shuffle=False)
        results.append(_host(net))
    _assert_same(results[1], results[0])
