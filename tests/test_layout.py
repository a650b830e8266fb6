"""The layout holds: no import circles, nobody reaches into the Network's private members,
and a new layer or optimizer is one class in the user's own file."""

import ast
from pathlib import Path

import numpy as np
import pytest

import nnx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnx"


def _imports(path: Path) -> set:
    """The nnx modules ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnx."):
            found.add(node.module.split(".")[1])
    return found


def test_the_import_graph_has_no_circles():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    graph = {m: _imports(PACKAGE / f"{m}.py") & modules for m in modules}

    def visit(module, path):
        for dep in sorted(graph[module]):
            assert dep not in path, "import circle: " + " -> ".join([*path, dep])
            visit(dep, [*path, dep])

    for module in sorted(modules):
        visit(module, [module])


def _network_private_names() -> set:
    tree = ast.parse((PACKAGE / "network.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Network")
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    names |= {t.attr for n in ast.walk(cls) if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Attribute)}
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_nothing_outside_the_network_calls_its_private_members():
    private = _network_private_names()
    assert {"_param_refs", "_forward"} <= private  # the check itself sees them
    offenders = []
    files = [p for p in PACKAGE.glob("*.py") if p.name != "network.py"]
    files += list((ROOT / "benchmarks").rglob("*.py")) + list((ROOT / "examples").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in private
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


# --------------------------------------------------------------------------- one file


@nnx.register
class Scale(nnx.layers.Layer):
    """A user's layer: a learned per-feature scale, :math:`y = x \\odot s`."""

    def __init__(self, initial=1.0):
        super().__init__()
        self.initial = initial

    def shapes(self, in_dim):
        return in_dim, {"s": (in_dim,)}

    def build(self, in_dim, ctx, rng):
        super().build(in_dim, ctx, rng)
        self.params = {"s": ctx.asarray(np.full(in_dim, self.initial))}
        return in_dim

    def forward(self, x, *, training=False):
        return x * self.params["s"], x

    def backward(self, cache, dy, need_dx=True):
        return dy * self.params["s"], {"s": self.ctx.xp.sum(dy * cache, axis=0)}


@nnx.register
class SignSGD(nnx.optimizers.Optimizer):
    """A user's element-wise optimizer: :math:`p \\leftarrow p - \\eta\\,\\mathrm{sign}(g)`."""

    learning_rate = nnx.optimizers.rate(0.01)

    def rule(self):
        return [nnx.transforms.Sign()]


def test_a_users_layer_and_optimizer_train_save_and_load(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    net = nnx.Network([Scale(0.5), nnx.Dense(8, activation="tanh"), nnx.Dense(1)],
                      input_dim=3, optimizer=SignSGD(0.01), seed=0, **backend.kwargs)
    nnx.check_gradients(nnx.Network([Scale(0.5), nnx.Dense(1)], input_dim=3,
                                    dtype="float64", seed=0, **backend.kwargs), X[:5], y[:5])
    before = nnx.to_numpy(net.parameters()["layers.0.s"]).copy()
    net.fit(X, y, epochs=5, batch_size=16)
    assert not np.allclose(nnx.to_numpy(net.parameters()["layers.0.s"]), before)
    loaded = nnx.load(net.save(tmp_path / "own.nnx"))
    assert isinstance(loaded.layers[0], Scale) and loaded.layers[0].initial == 0.5
    assert isinstance(loaded.optimizer, SignSGD)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_an_unregistered_class_cannot_be_saved_and_names_cannot_be_taken_twice(tmp_path):
    class Unlisted(Scale):
        pass

    net = nnx.Network([Unlisted(), nnx.Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match=r"not registered.*@nnx.register"):
        net.save(tmp_path / "m.nnx")
    class MyNet(nnx.Network):
        pass

    with pytest.raises(ValueError, match="cannot save a MyNet.*@nnx.register"):
        MyNet([2, 1]).save(tmp_path / "n.nnx")
    with pytest.raises(ValueError, match="already registered"):
        nnx.register(name="Scale")(Unlisted)
    with pytest.raises(TypeError, match="building block"):
        nnx.register(dict)


def test_every_registered_class_rebuilds_from_its_config():
    """``type(obj)(**obj.get_config())`` is a twin, for every class a file may name that can
    be built from defaults and a few required values."""
    from nnx import schedules
    from nnx.config import _REGISTRIES

    required = {"learning_rate": 0.1, "initial_learning_rate": 0.1, "period": 5,
                "gamma": 0.5, "step_size": 3, "milestones": [2, 4], "total_steps": 10,
                "max_learning_rate": 0.1, "warmup_steps": 2, "steps_per_epoch": 3,
                "schedule": schedules.Exponential(0.1, 0.9), "units": 3,
                "activation": "relu", "layers": [nnx.Dense(2)], "rate": 0.2}
    checked = 0
    for kind, classes in _REGISTRIES.items():
        if kind == "model":
            continue
        for name, cls in classes.items():
            args = {k: v for k, v in required.items() if k in cls.config_names()}
            try:
                obj = cls(**args)
            except TypeError:
                continue  # needs a value this table does not know
            twin = type(obj)(**obj.get_config())
            assert repr(twin) == repr(obj), name
            assert twin.get_config().keys() == obj.get_config().keys(), name
            checked += 1
    assert checked >= 40
