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
        self._native = ctx.backend.native_uniform(ctx, self._mask_seed)
        self._mask_host = np.random.default_rng(mask_seq)

    @property
    def mask_seed(self) -> int:
        """The seed of the native mask stream (rank 0's, in a data-parallel fit)."""
        return self._mask_seed

    def fork_masks(self, base_seed: int, rank: int, fit_count: int) -> None:
        """Give rank ``rank > 0`` of a data-parallel fit its own mask streams, derived from
        rank 0's mask seed and the fit's number: each rank's dropout masks differ, and the
        same seed gives the same masks again. Rank 0 keeps its streams (one rank draws
        what one process would)."""
        if rank == 0:
            return
        sequence = np.random.SeedSequence([base_seed, rank, fit_count])
        self._mask_seed = int(sequence.generate_state(1)[0])
        self._native = self.ctx.backend.native_uniform(self.ctx, self._mask_seed)
        self._mask_host = np.random.default_rng(sequence)

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
        """:meth:`state` in saveable form (the native generator's state as its backend
        exports it: plain values and NumPy arrays)."""
        state = dict(self.state())
        if "mask_native" in state:
            state["mask_native"] = self._native.export_state()
        return state

    def import_state(self, state: dict, backend=None, device=None) -> None:
        """Restore an :meth:`export_state` saved on ``backend``/``device`` (names).

        The host streams always apply; the native generator's state only where its backend
        says it fits (the same backend and kind of device: a CPU torch generator's state does
        not fit a CUDA one); elsewhere the native stream simply continues from this network's
        seed.
        """
        state = dict(state)
        native = state.pop("mask_native", None)
        if (native is not None and self._native is not None and backend == self.ctx.name
                and self.ctx.backend.same_device_kind(device, self.ctx.device)):
            state["mask_native"] = self._native.import_state(native)
        self.set_state(state)

    def set_state(self, state: dict) -> None:
        """Restore a :meth:`state` (the streams it holds)."""
        for key, generator in (("init", self.init), ("shuffle", self.shuffle),
                               ("mask_host", self._mask_host)):
            if key in state:
                generator.bit_generator.state = state[key]
        if "mask_native" in state and hasattr(self._native, "set_state"):
            self._native.set_state(state["mask_native"])
