"""Find the operations that would make the host wait for a GPU, by running on torch's CPU.

On CUDA the host queues kernels and runs ahead; it stops and waits whenever a result must
exist on the host before the next line can run. Those points are visible on any device as the
aten operators torch dispatches, so the audit records them on the CPU (a
:class:`torch.utils._python_dispatch.TorchDispatchMode`) and a test fails on any that happens
once per training step:

- ``lift_fresh``: a tensor made from host data (``torch.asarray(numpy_array)``,
  ``torch.tensor(0.0)``): on CUDA a blocking host-to-device copy;
- ``_local_scalar_dense``: a value read back (``float(x)``, ``bool(x)``, ``x.item()``);
- ``nonzero``, ``masked_select``, ``is_nonzero``, ``equal``, ``unique``: results whose size
  or value the host must know;
- ``index``/``index_put_`` with a boolean index: boolean-mask indexing, a ``nonzero`` inside;
- copies of a whole tensor to the host or between devices, which dispatch no operator on a
  CPU: ``Tensor.numpy``, ``__array__`` (``np.asarray(t)``), ``tolist``, ``cpu`` and ``to``
  with a device, recorded at the level of torch functions (a ``TorchFunctionMode``).

Arithmetic with a Python number is not among them: torch passes the number to the kernel as
an argument.
"""

from __future__ import annotations

import collections

_ALWAYS = {"lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "nonzero", "nonzero_static",
           "masked_select", "is_nonzero", "equal", "unique_dim", "_unique", "_unique2",
           "unique_consecutive", "masked_scatter", "masked_scatter_"}
_BOOLEAN_INDEX = {"index", "index_put", "index_put_", "_index_put_impl_"}


_HOST_COPIES = {"numpy", "__array__", "tolist", "cpu"}


def copy_reason(func, args, kwargs) -> str | None:
    """Why the torch function ``func`` copies a whole tensor to the host or to another
    device (blocking on CUDA), or ``None``."""
    import torch

    name = getattr(func, "__name__", "")
    if name in _HOST_COPIES:
        return f"Tensor.{name}"
    if name == "to":
        targets = [a for a in (*args[1:], kwargs.get("device")) if a is not None]
        if any(isinstance(a, (str, torch.device)) for a in targets):
            return "Tensor.to with a device"
    return None


def blocking_reason(func, args) -> str | None:
    """Why the aten operator ``func`` called with ``args`` blocks the host on CUDA, or
    ``None`` when it does not."""
    import torch

    name = func._schema.name.split("::")[-1]
    if name in _ALWAYS:
        return name
    if name in _BOOLEAN_INDEX and len(args) > 1:
        indices = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
            return f"{name} with a boolean index"
    return None


class SyncRecorder:
    """Context manager recording every host-blocking operator dispatched inside it.

    Attributes
    ----------
    blocking : collections.Counter
        Reason (see :func:`blocking_reason`) -> how many times.
    ops : int
        All operators dispatched.

    Examples
    --------
    >>> with SyncRecorder() as rec:                                  # doctest: +SKIP
    ...     net.fit(X, y, epochs=1)
    >>> rec.blocking                                                 # doctest: +SKIP
    Counter({'_local_scalar_dense': 1})
    """

    def __init__(self):
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        recorder = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                recorder.ops += 1
                reason = blocking_reason(func, args)
                if reason is not None:
                    recorder.blocking[reason] += 1
                return func(*args, **(kwargs or {}))

        class _Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                reason = copy_reason(func, args, kwargs)
                if reason is not None:
                    recorder.blocking[reason] += 1
                return func(*args, **kwargs)

        self._modes = [_Functions(), _Mode()]
        self.blocking: collections.Counter = collections.Counter()
        self.ops = 0

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        return False

    @property
    def total(self) -> int:
        return sum(self.blocking.values())


def per_step_syncs(run, steps=(2, 20)) -> tuple[collections.Counter, collections.Counter]:
    """Host-blocking operators of ``run(n_steps)`` at two step counts.

    Returns the counts at the smaller and the larger step count: equal counts mean nothing
    blocks per step (only per call or per epoch).
    """
    counts = []
    for n in steps:
        with SyncRecorder() as rec:
            run(n)
        counts.append(rec.blocking)
    return counts[0], counts[1]
