"""Randomness: the array API standard has none, so nnx brings its own.

Initial weights and shuffle orders are drawn on the host from NumPy generators seeded from the
user's ``seed`` and moved to the device once, so the same seed gives the same initial network
and the same batch order on every backend. Per-step masks (dropout) come from the backend's own
generator where it has one (torch, CuPy) to avoid a host-to-device copy every step; host NumPy
is the fallback (NumPy itself, array_api_strict).
"""

from __future__ import annotations

import numpy as np

from .backend import Context


class Random:
    """Seeded random streams of one network.

    Three independent streams are spawned from ``seed``: initialization, shuffling and masks,
    so adding dropout does not change the initial weights or the batch order.

    Parameters
    ----------
    seed : int or None
        ``None`` draws fresh entropy (not reproducible).
    ctx : Context
    """

    def __init__(self, seed, ctx: Context):
        self.ctx = ctx
        self.seed = seed
        init_seq, shuffle_seq, mask_seq = np.random.SeedSequence(seed).spawn(3)
        self.init = np.random.default_rng(init_seq)
        self.shuffle = np.random.default_rng(shuffle_seq)
        self._mask_seed = int(mask_seq.generate_state(1)[0])
        self._native = _native_generator(ctx, self._mask_seed)
        self._mask_host = np.random.default_rng(mask_seq)

    def permutation(self, n: int):
        """A random order of ``n`` rows, drawn on the host, moved once to the device."""
        return self.ctx.asarray(self.shuffle.permutation(n), dtype=self.ctx.xp.int64)

    def uniform_like(self, shape):
        """Uniform [0, 1) device array of ``ctx.dtype`` for per-step masks."""
        if self._native is not None:
            return self._native(shape)
        return self.ctx.asarray(self._mask_host.random(shape))

    def state(self, masks_only: bool = False) -> dict:
        """Generator states, so a resumed run continues the same streams.

        ``masks_only=True`` leaves out the initialization and shuffle streams: enough for a
        restore point inside an epoch, whose order was drawn before it (reading a
        generator's state is not free, and a small network's epoch takes one such point).
        """
        out = {"mask_host": self._mask_host.bit_generator.state}
        if not masks_only:
            out["init"] = self.init.bit_generator.state
            out["shuffle"] = self.shuffle.bit_generator.state
        native_state = getattr(self._native, "get_state", None)
        if native_state is not None:
            out["mask_native"] = native_state()
        return out

    def export_state(self) -> dict:
        """:meth:`state` with the native generator's state as an array (for saving)."""
        state = dict(self.state())
        native = state.get("mask_native")
        if isinstance(native, list):  # torch's generator state: a few thousand bytes
            state["mask_native"] = np.asarray(native, dtype=np.uint8)
        return state

    def import_state(self, state: dict, backend=None, device=None) -> None:
        """Restore an :meth:`export_state` saved on ``backend``/``device``.

        The host streams always apply; the native generator's state only on the same backend
        and kind of device (a CPU torch generator's state does not fit a CUDA one); elsewhere
        the native stream simply continues from this network's seed.
        """
        state = dict(state)
        native = state.pop("mask_native", None)
        same_kind = (backend == self.ctx.name
                     and str(device or "").split(":")[0] == str(self.ctx.device).split(":")[0])
        if native is not None and same_kind:
            state["mask_native"] = (native if isinstance(native, dict)
                                    else np.asarray(native, dtype=np.uint8).tolist())
        self.set_state(state)

    def set_state(self, state: dict) -> None:
        """Restore a :meth:`state` (the streams it holds)."""
        for key, generator in (("init", self.init), ("shuffle", self.shuffle),
                               ("mask_host", self._mask_host)):
            if key in state:
                generator.bit_generator.state = state[key]
        if "mask_native" in state and hasattr(self._native, "set_state"):
            self._native.set_state(state["mask_native"])


class _TorchUniform:
    def __init__(self, ctx: Context, seed: int):
        import torch

        self._torch = torch
        self.ctx = ctx
        self.gen = torch.Generator(device=ctx.device)
        self.gen.manual_seed(seed)

    def __call__(self, shape):
        return self._torch.rand(
            shape, generator=self.gen, device=self.ctx.device, dtype=self.ctx.dtype
        )

    def get_state(self):
        return self.gen.get_state().cpu().numpy().tolist()

    def set_state(self, state):
        self.gen.set_state(self._torch.tensor(state, dtype=self._torch.uint8))


class _CupyUniform:
    """CuPy's Philox generator, re-seeded before every draw from a host NumPy stream.

    Re-seeding Philox only sets a key (no state initialisation on the GPU) and passes the seed
    as a kernel argument, so no data crosses to the device; in exchange the generator's whole
    state is the host stream's, which can be saved and restored for an exact resume (CuPy's
    own generator state cannot be read back).
    """

    def __init__(self, ctx: Context, seed: int):
        import cupy
        from cupy.cuda import curand

        self.ctx = ctx
        self.host = np.random.default_rng(seed)
        with ctx.device:
            self.gen = cupy.random.RandomState(seed, method=curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)

    def __call__(self, shape):
        with self.ctx.device:
            self.gen.seed(int(self.host.integers(2**63)))
            return self.gen.random_sample(shape, dtype=self.ctx.dtype)

    def get_state(self):
        return self.host.bit_generator.state

    def set_state(self, state):
        self.host.bit_generator.state = state


def _native_generator(ctx: Context, seed: int):
    """The backend's own uniform generator, or ``None`` to use the host fallback."""
    if ctx.name == "torch":
        return _TorchUniform(ctx, seed)
    if ctx.name == "cupy":
        return _CupyUniform(ctx, seed)
    return None
