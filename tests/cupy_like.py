"""A CPU stand-in for CuPy's three traps, built on array_api_strict's fake devices.

CuPy differs from the other backends in ways a CPU suite never meets:

- its creation functions (``zeros``, ``ones``, ``full``, ``arange``, the ``*_like`` ones, as
  wrapped by array-api-compat) ignore ``device=`` and allocate on the *current* device;
- its device objects define equality but no hash;
- its random generator holds a ``threading.Lock`` (CuPy 14), so it cannot be deep-copied;
- a streamed source's copies go through pinned buffers on a copy stream
  (:class:`nnx.backend.StreamTransfer`), which the training waits for on the device.

:class:`CupyLikeBackend` reproduces all three on top of array_api_strict: arrays made on the
wrong device meet arrays of the right one and array_api_strict refuses to mix them, exactly
where a multi-GPU CuPy run would compute on the wrong GPU; its streams are
:class:`RecordingStreams`, which count what a streamed fit asks of them. ``honour=True`` applies the same
:func:`nnx.backend.honour_device` fix as the real CuPy namespace; ``honour=False`` keeps the
raw behaviour, so only the network's entry-point scope keeps arrays on the right device.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading

import numpy as np

from nnx.backend import (Namespace, NativeUniform, StreamTransfer, StrictBackend,
                         honour_device)


def _strict():
    import array_api_strict

    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    return array_api_strict


class UnhashableDevice(_strict().Device):
    """An array_api_strict device that, like ``cupy.cuda.Device``, has ``==`` but no hash.

    array_api_strict itself puts devices in sets (``concat``, ``stack``); only its own
    modules may hash one, any other caller gets CuPy's ``TypeError``.
    """

    __slots__ = ()

    def __hash__(self):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if not caller.startswith("array_api_strict"):
            raise TypeError(f"unhashable type: '{type(self).__name__}'")
        return super().__hash__()


_CREATION = ("zeros", "ones", "empty", "full", "arange", "eye", "linspace")
_CREATION_LIKE = ("zeros_like", "ones_like", "empty_like", "full_like")


class CupyLikeBackend(StrictBackend):
    """array_api_strict with CuPy's current-device allocation, unhashable devices and an
    uncopyable generator."""

    package = "array_api_strict"
    scoped = True

    def __init__(self, honour: bool):
        self.name = "cupy_like_honour" if honour else "cupy_like_raw"
        self.honour = honour
        self.current = [UnhashableDevice("CPU_DEVICE")]  # CuPy's "current device"

    def load_namespace(self):
        strict = _strict()
        ns = Namespace(self.name, strict)
        current = self.current

        def on_current(f):
            def make(*args, device=None, **kwargs):
                return f(*args, device=current[0], **kwargs)
            return make

        def on_current_like(f):
            def make(x, /, *args, device=None, **kwargs):
                return f(x, *args, device=current[0], **kwargs)
            return make

        for name in _CREATION:
            setattr(ns, name, on_current(getattr(strict, name)))
        for name in _CREATION_LIKE:
            setattr(ns, name, on_current_like(getattr(strict, name)))
        if self.honour:
            honour_device(ns, self.use_device, lambda x: x.device)
        return ns

    def device(self, xp, spec):
        if spec is None:
            spec = "device1"
        return UnhashableDevice(spec if isinstance(spec, str) else spec._device)

    @contextlib.contextmanager
    def use_device(self, device):
        before = self.current[0]
        self.current[0] = device
        try:
            yield
        finally:
            self.current[0] = before

    def scope(self, device):
        return self.use_device(device)

    def owns(self, x):
        return False  # arrays of array_api_strict belong to its own backend

    def native_uniform(self, ctx, seed):
        return LockedUniform(ctx, seed)

    def transfer(self, device):
        streams = RecordingStreams(
            lambda: self.use_device(device),
            lambda shape, dtype: np.empty(shape, dtype=dtype._np_dtype),
            lambda pinned: self.namespace().asarray(pinned, device=device))
        self.streams.append(streams)  # for the tests to read
        return StreamTransfer(streams)

    @property
    def streams(self):
        return self.__dict__.setdefault("_streams", [])


class RecordingStreams:
    """A CPU stand-in for a CUDA library's streams, events and pinned memory (what
    :class:`nnx.backend.StreamTransfer` asks of them), counting each call in ``calls``.

    Pinned buffers are plain host arrays and uploads ordinary copies; an upload outside
    :meth:`scope` (the copy stream current) fails, as does a wait for an event that is not a
    copy's. Only :meth:`finish` makes the host wait (a transfer closed while steps may still
    be queued); a host synchronisation anywhere else would be a call this class does not
    have.
    """

    def __init__(self, scope, pinned, upload):
        self._scope, self._pinned, self._upload = scope, pinned, upload
        self.calls = collections.Counter()
        self.upload_threads = set()
        self._local = threading.local()

    @contextlib.contextmanager
    def scope(self):
        with self._scope():
            self._local.on_copy_stream = True
            try:
                yield
            finally:
                self._local.on_copy_stream = False

    def pinned(self, shape, dtype):
        self.calls["pinned"] += 1
        return self._pinned(shape, dtype)

    def upload(self, pinned):
        if not getattr(self._local, "on_copy_stream", False):
            raise AssertionError("a host-to-device copy outside the copy stream")
        self.calls["upload"] += 1
        self.upload_threads.add(threading.current_thread().name)
        return self._upload(pinned)

    def record(self, copy):
        self.calls["record_copy" if copy else "record_compute"] += 1
        return "copy" if copy else "compute"

    def wait(self, event):
        if event != "copy":
            raise AssertionError(f"the training stream waits for a {event!r} event")
        self.calls["wait"] += 1

    def done(self, event):
        self.calls["query"] += 1
        return True

    def finish(self, event):
        # the one host wait: a transfer closed while steps may still be queued
        self.calls["finish"] += 1


class _LockedGenerator:
    """A generator that, like CuPy 14's, holds a lock: ``copy.deepcopy`` of it raises."""

    def __init__(self, seed):
        self.lock = threading.Lock()
        self.rng = np.random.default_rng(seed)


class LockedUniform(NativeUniform):
    def make(self, seed):
        return _LockedGenerator(seed)

    def __call__(self, shape):
        with self.gen.lock:
            return self.ctx.asarray(self.gen.rng.random(shape))

    def get_state(self):
        return self.gen.rng.bit_generator.state

    def set_state(self, state):
        self.gen.rng.bit_generator.state = state
