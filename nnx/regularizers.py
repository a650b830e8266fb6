"""Weight penalties added to the loss (and its gradient), and weight constraints.

A penalty is part of the objective: it is included in the reported training loss and
differentiated with everything else (gradient-checked in the tests). Biases are never
penalised.

How the strengths compare across libraries (``W`` a kernel, ``n`` the batch size):

==================================  ====================================  ======================
nnx                                 adds to the loss                      adds to the gradient
==================================  ====================================  ======================
``L2(l)`` (as Keras)                :math:`l \\sum W^2`                    :math:`2 l W`
``L1(l)`` (as Keras)                :math:`l \\sum |W|`                    :math:`l\\,\\mathrm{sign}(W)`
torch ``weight_decay=wd`` (SGD)     nothing (gradient only)               :math:`wd\\, W` = ``L2(wd / 2)`` [*]_
scikit-learn ``alpha``              :math:`\\frac{\\alpha}{2n} \\sum W^2`    = ``L2(alpha / (2 n))``
==================================  ====================================  ======================

.. [*] torch's ``weight_decay`` also decays biases unless they sit in a parameter group
   without it; nnx's penalties never touch biases.

*Decoupled* weight decay (AdamW, ``weight_decay=`` of the optimizers) is different: it
shrinks the weights directly in the update, outside the loss, so adaptive optimizers do not
rescale it; it is not part of the reported loss.
"""

from __future__ import annotations

from .checks import check_number
from .config import Value


class Regularizer(Value):
    """Base class: ``penalty(xp, W)`` (0-d array) and ``gradient(xp, W)`` (shape of ``W``)."""

    registry_kind = "regularizer"

    def penalty(self, xp, W):
        raise NotImplementedError("abstract method: subclasses define penalty")

    def gradient(self, xp, W):
        raise NotImplementedError("abstract method: subclasses define gradient")



class L1L2(Regularizer):
    r"""Elastic net: :math:`l_1 \sum |W| + l_2 \sum W^2`.

    Parameters
    ----------
    l1, l2 : float >= 0
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_number("l1", l1, low=0)
        self.l2 = check_number("l2", l2, low=0)

    def penalty(self, xp, W):
        value = 0.0
        if self.l1:
            value = value + self.l1 * xp.sum(xp.abs(W))
        if self.l2:
            value = value + self.l2 * xp.sum(W * W)
        return value

    def gradient(self, xp, W):
        grad = 0.0
        if self.l1:
            grad = grad + self.l1 * xp.sign(W)
        if self.l2:
            grad = grad + (2.0 * self.l2) * W
        return grad



class L1(L1L2):
    r""":math:`l \sum |W|` (sparsity); gradient :math:`l\,\mathrm{sign}(W)` (0 at 0)."""

    def __init__(self, l: float = 0.01):  # noqa: E741 - the conventional name
        super().__init__(l1=l)

    @property
    def l(self):  # noqa: E743 - the constructor's name for it
        return self.l1


class L2(L1L2):
    r""":math:`l \sum W^2` (weight decay in the loss); gradient :math:`2 l W`."""

    def __init__(self, l: float = 0.01):  # noqa: E741
        super().__init__(l2=l)

    @property
    def l(self):  # noqa: E743
        return self.l2


class Constraint(Value):
    """Base class: ``constraint(xp, W) -> W`` applied after every update."""

    registry_kind = "constraint"

    def __call__(self, xp, W):
        raise NotImplementedError("abstract method: subclasses define the projection")


class MaxNorm(Constraint):
    r"""Max-norm constraint (Srebro et al. 2005; used with dropout, Srivastava et al. 2014).

    After every update each unit's incoming weight vector (a column of ``W``, shape
    ``(in, out)``) is rescaled so that :math:`\lVert W_{:,j} \rVert_2 \le c`:
    :math:`W_{:,j} \leftarrow W_{:,j} \min(1, c / \lVert W_{:,j} \rVert)`.

    Parameters
    ----------
    max_value : float > 0, default 3
    """

    def __init__(self, max_value: float = 3.0):
        self.max_value = check_number("max_value", max_value, low=0, low_open=True)

    def __call__(self, xp, W):
        norms = xp.sqrt(xp.sum(W * W, axis=0, keepdims=True))
        return W * xp.minimum(1.0, self.max_value / xp.maximum(norms, 1e-12))



def get(regularizer):
    """``None``, a :class:`Regularizer`, or a dict ``{"l1": ..., "l2": ...}``."""
    if regularizer is None or isinstance(regularizer, Regularizer):
        return regularizer
    if isinstance(regularizer, dict) and set(regularizer) <= {"l1", "l2"}:
        return L1L2(**regularizer)
    raise ValueError(
        f"kernel_regularizer must be an nnx.regularizers.Regularizer (L1, L2, L1L2); got {regularizer!r}"
    )
