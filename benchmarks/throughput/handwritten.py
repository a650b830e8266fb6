"""What a person writes without nnx: the reference sides' code.

- :class:`HandMLP`, a plain NumPy (CPU) / CuPy (GPU) training step;
- :func:`torch_mlp`, :func:`torch_optimizer`, :func:`torch_step`, eager PyTorch;
- :func:`run_batches`, the epoch loop over fixed batches that drives them (and nnx's raw
  step), reordering the rows every epoch when asked.

No nnx here: the memory children import this module and nothing of nnx, so that their peak
RSS holds only what their own side needs.
"""

from __future__ import annotations

import math

from .problems import ADAM, LEARNING_RATE


def run_batches(step, X, Y, bounds, epochs, permutation=None) -> None:
    """``epochs`` passes of ``step(xb, yb)`` over the batches ``bounds`` of ``X`` and ``Y``.

    With ``permutation`` (a callable returning a new row order), every epoch first puts the
    rows in that order, ``Xs, Ys = X[perm], Y[perm]``: what a training loop written by hand
    does (the previous epoch's copies are freed once the new ones exist, so the peak holds
    two copies of the data, as such a loop's does).
    """
    Xs, Ys = X, Y
    for _ in range(epochs):
        if permutation is not None:
            perm = permutation()
            Xs, Ys = X[perm], Y[perm]
        for s, e in bounds:
            step(Xs[s:e, ...], Ys[s:e, ...])


class HandMLP:
    """A plain hand-written MLP training step in NumPy or CuPy (``xp`` is either module).

    ReLU hidden layers, logits out, sigmoid/softmax cross-entropy fused with its gradient,
    SGD or Adam applied in place; what a careful person writes without a framework. It is the
    yardstick of the array-API layer's overhead, so it does nothing clever beyond that.
    """

    def __init__(self, xp, params, binary, optimizer, lr):
        self.xp = xp
        self.params = [(xp.asarray(W), xp.asarray(b)) for W, b in params]
        self.binary = binary
        self.optimizer = optimizer
        self.lr = lr
        self.t = 0
        if optimizer == "adam":
            self.m = [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in self.params]
            self.v = [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in self.params]

    def step(self, x, y):
        xp = self.xp
        acts = [x]
        a = x
        last = len(self.params) - 1
        for i, (W, b) in enumerate(self.params):
            z = a @ W + b
            a = xp.maximum(z, 0) if i < last else z
            acts.append(a)
        z = acts[-1]
        n = z.shape[0]
        if self.binary:
            e = xp.exp(-xp.abs(z))
            loss = (xp.maximum(z, 0) - z * y + xp.log1p(e)).mean()
            p = xp.where(z >= 0, 1 / (1 + e), e / (1 + e))
            dz = (p - y) / n
        else:
            s = z - z.max(axis=1, keepdims=True)
            e = xp.exp(s)
            total = e.sum(axis=1, keepdims=True)
            loss = (xp.log(total).sum() - (y * s).sum()) / n
            dz = (e / total - y) / n
        self.t += 1
        for i in range(last, -1, -1):
            W, b = self.params[i]
            a_prev = acts[i]
            dW = a_prev.T @ dz
            db = dz.sum(axis=0)
            if i > 0:
                dz = (dz @ W.T) * (a_prev > 0)
            self.update(i, W, b, dW, db)
        return loss

    def update(self, i, W, b, dW, db):
        """The optimizer's update of layer ``i``, in place."""
        if self.optimizer == "sgd":
            W -= self.lr * dW
            b -= self.lr * db
            return
        b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
        c1 = 1 - b1**self.t
        c2 = math.sqrt(1 - b2**self.t)
        (mW, mb), (vW, vb) = self.m[i], self.v[i]
        for p, g, m, v in ((W, dW, mW, vW), (b, db, mb, vb)):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= (self.lr / c1) * m / (self.xp.sqrt(v) / c2 + eps)


def torch_mlp(sizes, params=None):
    """``nn.Sequential`` of Linear + ReLU layers; ``params`` (host ``(W, b)`` pairs with W of
    shape ``(in, out)``) replace torch's initial weights."""
    import torch
    from torch import nn

    mods = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        if params is not None:
            W, b = params[i]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def torch_optimizer(model, name):
    """``torch.optim.SGD`` or ``torch.optim.Adam(foreach=True)`` with the benchmark's settings."""
    import torch

    lr = LEARNING_RATE[name]
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(ADAM["beta1"], ADAM["beta2"]),
                            eps=ADAM["eps"], foreach=True)


def torch_step(model, opt, loss_fn):
    """One eager training step ``step(xb, yb)`` returning the loss tensor."""
    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss
    return step
