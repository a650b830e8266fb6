"""One contiguous vector for a dict of parameter arrays, and back.

An element-wise update rule (SGD, Adam, RMSprop, ...) costs a dozen array operations per
parameter. On a small network each operation is dominated by its fixed cost (a NumPy call is
~1 us; a GPU kernel launch ~5 us) rather than by its arithmetic, so the optimizer can run the
rule once over all parameters packed end to end instead of once per parameter (PyTorch's
``foreach`` optimizers cut the calls with multi-tensor kernels instead; apex's flat buffers
pack, as here). :class:`FlatLayout`
records where each parameter lives in that vector; L-BFGS uses it too, for its dot products.

Only standard calls are used (``reshape``, ``concat``, slicing). Whether slices share memory
with the packed vector is the library's choice (the standard leaves it open), so the arrays
handed out are unpacked again after every update, except where the backend is known to make
views (``Context.views``): then the slices handed out last time already show the update.
"""

from __future__ import annotations

import math


class FlatLayout:
    """Where each parameter of a ``name -> array`` dict sits in one flat vector.

    Parameters
    ----------
    params : dict
        Name -> array; the order of the dict is the order in the vector.

    Attributes
    ----------
    names : list of str
    shapes : list of tuple
    bounds : list of (start, stop)
        Slice of the flat vector holding each parameter (C order).
    size : int
        Total number of elements.
    """

    def __init__(self, params: dict):
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.bounds, start = [], 0
        for shape in self.shapes:
            self.bounds.append((start, start + math.prod(shape)))
            start += math.prod(shape)
        self.size = start
        self._handed_out: dict | None = None
        self._handed_from = None  # the packed vector they were sliced from

    def __getstate__(self):
        state = dict(vars(self))
        state["_handed_out"] = state["_handed_from"] = None  # a copy has handed out nothing
        return state

    def pack(self, xp, arrays: dict):
        """``(size,)`` vector of ``arrays`` (keyed like the layout) laid end to end: a copy."""
        parts = []
        for name, shape in zip(self.names, self.shapes):
            a = arrays[name]
            parts.append(a if len(shape) == 1 else xp.reshape(a, (-1,)))
        return xp.concat(parts) if len(parts) > 1 else xp.asarray(parts[0], copy=True)

    def unpack(self, xp, flat) -> dict:
        """Name -> ``flat``'s slice for it in the parameter's shape (views where the
        namespace makes views, which is what keeps this cheap; never relied upon)."""
        out = {}
        for name, shape, (start, stop) in zip(self.names, self.shapes, self.bounds):
            part = flat[start:stop]
            out[name] = part if len(shape) == 1 else xp.reshape(part, shape)
        return out

    def hand_out(self, xp, flat, views=False) -> dict:
        """:meth:`unpack`, remembering the arrays returned so :meth:`holds` can recognise
        them when they come back.

        With ``views=True`` (the namespace's slices share memory with ``flat``) and the same
        ``flat`` object as last time (updated in place), last time's arrays are returned: they
        show the update already.
        """
        if not (views and flat is self._handed_from and self._handed_out is not None):
            self._handed_out = self.unpack(xp, flat)
            self._handed_from = flat
        # a new dict each time: a caller replacing an entry in it must not edit the record
        # that holds() compares with
        return dict(self._handed_out)

    def holds(self, arrays: dict) -> bool:
        """True when ``arrays`` are exactly the arrays of the last :meth:`hand_out` (the
        same objects): nobody replaced a parameter since, so the flat vector is current."""
        last = self._handed_out
        if last is None:
            return False
        for name, a in last.items():
            if arrays[name] is not a:
                return False
        return True
