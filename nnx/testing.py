"""Gradient checking for users and for nnx's own tests.

:func:`check_gradients` compares a network's hand-written backward pass with central finite
differences of its objective, element by element (for small networks) and along random
directions through all parameters at once (Chainer's ``check_backward`` idea, which scales to
any size). Use ``dtype="float64"``: in float32 the finite differences themselves are too noisy
to prove anything.
"""

from __future__ import annotations

import warnings

import numpy as np

from .backend import to_numpy


class GradientCheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree beyond the tolerance."""


def _relative_error(analytic, numeric, rtol, atol):
    """``|a - n| / max(|n|, atol / rtol)``: relative for large gradients, absolute (against
    ``atol``) for tiny ones, where finite differences are dominated by rounding."""
    return np.abs(analytic - numeric) / np.maximum(np.abs(numeric), atol / rtol)


def check_gradients(net, X, y, *, eps=1e-6, rtol=1e-6, atol=1e-8, max_elements=64,
                    n_directions=4, seed=0, raise_on_error=True) -> dict:
    """Check ``net.gradients(X, y)`` against central finite differences.

    .. math:: \\frac{\\partial L}{\\partial \\theta_i} \\approx
              \\frac{L(\\theta + \\epsilon e_i) - L(\\theta - \\epsilon e_i)}{2\\epsilon}

    Parameters
    ----------
    net : Network
        Built (or fittable on ``X``); its parameters, running statistics and random streams
        are restored afterwards. Dropout is checked with one fixed mask (the random streams
        are rewound before every evaluation).
    X, y : array-like
    eps : float
        Finite-difference step.
    rtol, atol : float
        An element fails when ``|a - n| > max(rtol * |n|, atol)`` (``a`` analytic, ``n``
        numerical); in float64 with ``eps=1e-6`` rounding in ``n`` is about ``1e-10 |L|``.
    max_elements : int
        Elements checked per parameter (a random subset when it has more).
    n_directions : int
        Random directions for the whole-network directional-derivative check.

    Returns
    -------
    dict
        ``name -> max relative error`` per parameter, plus ``"directional"``.

    Raises
    ------
    GradientCheckError
        When any error exceeds ``rtol`` (unless ``raise_on_error=False``).
    """
    if net.ctx.dtype_name != "float64":
        warnings.warn(
            "check_gradients on a float32 network: a perturbation of eps=1e-6 is mostly "
            "rounded away, so the comparison is noise; build the network with dtype='float64'",
            UserWarning, stacklevel=2)
    with net.ctx.scope():  # on CuPy, the network's GPU is the current device
        Xd, Yd = net.prepare(X, y)
        # Every evaluation starts from this snapshot: the same dropout masks and the same
        # running statistics, so stochastic layers are checked with a fixed mask.
        snapshot = net.snapshot()
        _, grads = net.objective_and_gradients(Xd, Yd)
        analytic = {name: to_numpy(g).astype(np.float64) for name, g in grads.items()}
        original = {name: to_numpy(p).astype(np.float64) for name, p in net.parameters().items()}
        rng = np.random.default_rng(seed)

        def objective(params):
            net.restore(snapshot)
            net.set_parameters(params)
            return float(net.objective(Xd, Yd, True))

        errors = {}
        try:
            for name, p0 in original.items():
                flat = np.arange(p0.size)
                if p0.size > max_elements:
                    flat = rng.choice(p0.size, size=max_elements, replace=False)
                numeric = np.empty(flat.size)
                for j, i in enumerate(flat):
                    idx = np.unravel_index(i, p0.shape)
                    plus, minus = p0.copy(), p0.copy()
                    plus[idx] += eps
                    minus[idx] -= eps
                    numeric[j] = (objective({name: plus}) - objective({name: minus})) / (2 * eps)
                a = analytic[name].ravel()[flat]
                errors[name] = float(np.max(_relative_error(a, numeric, rtol, atol)))
            worst = 0.0
            for _ in range(n_directions):
                d = {name: rng.standard_normal(p.shape) for name, p in original.items()}
                plus = {name: original[name] + eps * d[name] for name in original}
                minus = {name: original[name] - eps * d[name] for name in original}
                numeric = (objective(plus) - objective(minus)) / (2 * eps)
                exact = sum(float(np.sum(analytic[name] * d[name])) for name in original)
                worst = max(worst, float(_relative_error(exact, numeric, rtol, atol)))
            errors["directional"] = worst
        finally:
            net.restore(snapshot)
    failed = {k: v for k, v in errors.items() if v > rtol}
    if failed and raise_on_error:
        raise GradientCheckError(f"gradient check failed (rtol={rtol}): {failed}")
    return errors
