"""The lesson's worked examples, reproduced through nnx and checked against written numbers."""

import numpy as np
import pytest

import nnx
from nnx.layers import Dense

# Written out independently (plain NumPy, the lesson's formulas) for np.random.seed(42),
# W = randn * 0.5, x = [0.5, 0.3], y = 1, learning rate 0.1.
W1 = [[0.24835707650561634, -0.06913215058559233], [0.32384426905034625, 0.7615149282040127]]
W2 = [[-0.11707668736166799], [-0.11706847847459027]]
EXPECTED = {
    "z1": [[0.22133181896791204, 0.1938884031684076]],
    "a1": [[0.5551081693276283, 0.5483208196594858]],
    "z2": [[-0.1291813096657548]],
    "a2": [[0.4677495092884513]],
    "loss": 0.7598223629178494,
    "dz2": [[-0.5322504907115486]],
    "dW2": [[-0.2954565955226196], [-0.29184402533111986]],
    "db2": [-0.5322504907115486],
    "dW1": [[0.007694644333601435, 0.007715975815521174],
            [0.004616786600160861, 0.004629585489312704]],
    "db1": [0.01538928866720287, 0.015431951631042348],
    "W1_new": [[0.24758761207225619, -0.06990374816714444],
               [0.3233825903903302, 0.7610519696550814]],
    "b1_new": [-0.001538928866720287, -0.0015431951631042348],
    "W2_new": [[-0.08753102780940603], [-0.08788407594147829]],
    "b2_new": [0.05322504907115486],
}


def test_initial_weights_of_the_lesson():
    np.random.seed(42)
    np.testing.assert_array_equal(np.random.randn(2, 2) * 0.5, W1)
    np.testing.assert_array_equal(np.random.randn(2, 1) * 0.5, W2)


def test_backprop_step_by_step_2_2_1(backend):
    net = nnx.Network([Dense(2, activation="sigmoid"), Dense(1)], input_dim=2,
                      loss="binary_crossentropy", learning_rate=0.1, dtype="float64",
                      **backend.kwargs)
    net.set_parameters({"layers.0.W": W1, "layers.0.b": np.zeros(2),
                        "layers.1.W": W2, "layers.1.b": np.zeros(1)})
    X, y = np.array([[0.5, 0.3]]), np.array([1])
    logits, (hidden, out) = net.forward(X, return_cache=True)
    close = dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(nnx.to_numpy(hidden.z), EXPECTED["z1"], **close)
    np.testing.assert_allclose(nnx.to_numpy(hidden.a), EXPECTED["a1"], **close)
    np.testing.assert_allclose(nnx.to_numpy(out.z), EXPECTED["z2"], **close)

    loss, grads = net.gradients(X, y)
    np.testing.assert_allclose(nnx.to_numpy(net.predict_proba(X))[:, 1:], EXPECTED["a2"], **close)
    assert loss == pytest.approx(EXPECTED["loss"], rel=1e-12)
    np.testing.assert_allclose(nnx.to_numpy(grads["layers.1.W"]), EXPECTED["dW2"], **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["layers.1.b"]), EXPECTED["db2"], **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["layers.0.W"]), EXPECTED["dW1"], **close)
    np.testing.assert_allclose(nnx.to_numpy(grads["layers.0.b"]), EXPECTED["db1"], **close)

    net.train_step(X, y)
    params = {k: nnx.to_numpy(v) for k, v in net.parameters().items()}
    np.testing.assert_allclose(params["layers.0.W"], EXPECTED["W1_new"], **close)
    np.testing.assert_allclose(params["layers.0.b"], EXPECTED["b1_new"], **close)
    np.testing.assert_allclose(params["layers.1.W"], EXPECTED["W2_new"], **close)
    np.testing.assert_allclose(params["layers.1.b"], EXPECTED["b2_new"], **close)


# The lesson's own code over 100 seeds: (mean, sd) of test accuracy per cell, architectures
# [2,1], [2,4,1], [2,8,4,1], [2,16,8,4,1].
LESSON = {
    "Linear": [(.876, .008), (.859, .019), (.861, .015), (.855, .047)],
    "Moons": [(.834, .002), (.869, .031), (.937, .034), (.949, .025)],
    "Circles": [(.422, .027), (.877, .103), (.954, .077), (.934, .125)],
}
ARCHITECTURES = [[2, 1], [2, 4, 1], [2, 8, 4, 1], [2, 16, 8, 4, 1]]
N_SEEDS = 50


def _lesson_datasets():
    from sklearn.datasets import make_circles, make_classification, make_moons
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = {
        "Linear": make_classification(n_samples=200, n_features=2, n_redundant=0,
                                      n_informative=2, n_clusters_per_class=1, random_state=42),
        "Moons": make_moons(n_samples=200, noise=0.2, random_state=42),
        "Circles": make_circles(n_samples=200, noise=0.1, factor=0.5, random_state=42),
    }
    for name, (X, y) in data.items():
        X = StandardScaler().fit_transform(X)
        yield name, train_test_split(X, y, test_size=0.3, random_state=42)


@pytest.mark.slow
def test_decision_boundary_experiment_matches_the_lesson_distribution():
    """Over 50 seeds nnx's mean accuracy per cell is within 3 standard errors of the lesson's
    long-run mean (or above it): the same model, trained the same way, not a lucky run."""
    failures = []
    for name, (X_train, X_test, y_train, y_test) in _lesson_datasets():
        for arch, (mean, sd) in zip(ARCHITECTURES, LESSON[name]):
            accs = []
            for seed in range(N_SEEDS):
                net = nnx.Network(arch, activation="relu", learning_rate=0.1, seed=seed)
                net.fit(X_train, y_train, epochs=100, batch_size=32)
                accs.append(net.score(X_test, y_test))
            floor = mean - 3 * sd / np.sqrt(N_SEEDS)
            if np.mean(accs) < floor:
                failures.append(f"{name} {arch}: {np.mean(accs):.3f} < {floor:.3f}")
    assert not failures, failures
