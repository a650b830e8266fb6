"""Line searches for L-BFGS: torch's strong-Wolfe search (``torch.optim.lbfgs``), ported.

The search runs on the host: the objective and the directional derivatives come back as Python
floats (``obj`` and ``dot`` are given by the caller), vectors stay device arrays. Full-batch
quasi-Newton steps decide on the host by nature; element-wise optimizers never call this.
"""

from __future__ import annotations

import math

__all__ = ["cubic_interpolate", "strong_wolfe"]


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through two points with slopes, clamped to ``bounds``."""
    xmin_bound, xmax_bound = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(obj, t, d, f, g, gtd, amax, dot, tolerance_change, c1=1e-4, c2=0.9,
                 max_ls=25):
    r"""torch's strong-Wolfe line search along ``d``: bracketing, then zoom.

    Finds a step :math:`t` satisfying the strong Wolfe conditions

    .. math::
        f(x + t d) \le f(x) + c_1 t\, g^\top d, \qquad
        |g(x + t d)^\top d| \le -c_2\, g^\top d

    by cubic interpolation (:func:`cubic_interpolate`), exactly as ``torch.optim.LBFGS``'s
    ``_strong_wolfe``, so the two take the same decisions one by one.

    Parameters
    ----------
    obj : callable
        ``obj(t) -> (loss, flat gradient)`` at ``x + t d``: a host float and a device vector.
    t : float
        The initial step.
    d : array
        The search direction (a descent direction: ``gtd < 0``).
    f, g, gtd : float, array, float
        The loss, gradient and directional derivative :math:`g^\top d` at ``x``.
    amax, dot : callable
        ``amax(v) -> float`` (the largest absolute entry) and ``dot(a, b)`` (a device scalar).
    tolerance_change : float
        Stop zooming when the bracket is narrower than this (scaled by :math:`\max |d|`).
    c1, c2 : float, default 1e-4, 0.9
        Sufficient decrease and curvature constants.
    max_ls : int, default 25
        Objective evaluations allowed.

    Returns
    -------
    f_new : float
    g_new : array
    t : float
        The loss and gradient at the accepted step, and the step.
    evaluations : int
        How many times ``obj`` was called.
    """
    def probe(step):
        f_step, g_step = obj(step)
        return f_step, g_step, float(dot(g_step, d))

    d_norm = amax(d)
    f_new, g_new, gtd_new = probe(t)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while ls_iter < max_ls:
        # bracketing phase
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                              bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new, gtd_new = probe(t)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the evaluation budget while bracketing
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom phase: refine the bracket until the strong Wolfe conditions hold
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # stay away from the bracket's ends unless progress stalls
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new, gtd_new = probe(t)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    # one evaluation before the loops, one per iteration of either
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_iter + 1
