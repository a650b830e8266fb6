"""One contiguous vector for a dict of parameter arrays, and back.

An element-wise update rule (SGD, Adam, RMSprop, ...) costs a dozen array operations per
parameter. On a small network each operation is dominated by its fixed cost (a NumPy call, a
GPU kernel launch) rather than by its arithmetic (``benchmarks/foreach_threshold.py``
measures where that stops), so the optimizer can run the rule once over all parameters
packed end to end instead of once per parameter (PyTorch's ``foreach`` optimizers cut the
calls with multi-tensor kernels instead; apex's flat buffers pack, as here). :class:`FlatLayout`
records where each parameter lives in that vector; L-BFGS uses it too, for its dot products.
:class:`Packed` is the one seam between an optimizer and packing (:class:`PerParameter` its
identity): the optimizer hands it the parameters and gradients, runs its rule on what comes
back, and never asks whether it runs packed.

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
    align : int, default 1
        Each parameter starts at a multiple of this many elements, and ``size`` is one
        (gaps between parameters are left unused). 16 puts every float32 or float64
        parameter on a 64-byte boundary wherever the vector itself starts on one: BLAS
        libraries may round a product differently into memory that is not (torch does).

    Attributes
    ----------
    names : list of str
    shapes : list of tuple
    bounds : list of (start, stop)
        Slice of the flat vector holding each parameter (C order).
    size : int
        Total number of elements.
    """

    def __init__(self, params: dict, align: int = 1):
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.bounds, start = [], 0
        for shape in self.shapes:
            self.bounds.append((start, start + math.prod(shape)))
            start = -(-(start + math.prod(shape)) // align) * align
        self.size, self.align = start, align
        self._handed_out: dict | None = None
        self._handed_from = None  # the packed vector they were sliced from

    def __getstate__(self):
        state = dict(vars(self))
        state["_handed_out"] = state["_handed_from"] = None  # a copy has handed out nothing
        return state

    def pack(self, xp, arrays: dict):
        """``(size,)`` vector of ``arrays`` (keyed like the layout) laid end to end: a copy.

        One call, ``concat(..., axis=None)`` (the standard flattens the arrays first), rather
        than a ``reshape`` per parameter and a ``concat``: half the time on NumPy.
        """
        if self.align != 1:
            raise ValueError("pack lays the arrays end to end: a layout with align > 1 "
                             "has gaps, fill its vector by slices instead")
        return xp.concat([arrays[name] for name in self.names], axis=None)

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


# ---------------------------------------------------------------------- the optimizers' seam


PACKED = "*packed*"  # the one key of the parameters, gradients and slots of a packed rule


class PerParameter:
    """How an optimizer sees the parameters when its rule runs once per parameter: as they
    are. The identity of :class:`Packed`'s interface, so the optimizer never asks which."""

    packed = False

    def initial(self, params: dict) -> dict:
        """The arrays to create the slots for (``build``)."""
        return params

    def enter(self, params: dict, grads: dict):
        """``(params, grads)`` as the rule runs on them."""
        return params, grads

    def leave(self, updated: dict) -> dict:
        """The updated parameters, by the network's names."""
        return updated

    def per_parameter(self, slots: dict) -> dict:
        """The optimizer's slots by parameter name (``state_dict``, ``slots``)."""
        return slots

    def from_per_parameter(self, slots: dict) -> dict:
        """Slots by parameter name (``load_state_dict``) as the rule keeps them."""
        return slots

    def forget(self) -> None:
        """The parameters were replaced behind the optimizer's back (``restore``)."""


class Packed(PerParameter):
    """The one seam between an element-wise rule and packing (``foreach``).

    The rule sees one parameter, :data:`PACKED`: every parameter laid end to end
    (:class:`FlatLayout`), its gradient packed the same way each step, its slots vectors of the
    same size. The packed parameters stay current while the arrays handed out after the last
    step come back unchanged; anything else (``set_parameters``, a restore, a constraint that
    rebinds a kernel) means packing them again. A copy (deepcopy, pickle) packs again too: the
    arrays it hands out are no views of its own vector.

    Parameters
    ----------
    params : dict
        Name -> array, as the network names them.
    ctx : nnx.backend.Context
        Its ``xp`` packs and slices; ``views`` says whether slices share memory.
    """

    packed = True

    def __init__(self, params: dict, ctx):
        self.layout = FlatLayout(params)
        self.ctx = ctx
        self._vector = None  # the packed parameters the last step handed out

    def __getstate__(self):
        return {**vars(self), "_vector": None}

    def initial(self, params):
        return {PACKED: self.layout.pack(self.ctx.xp, params)}

    def enter(self, params, grads):
        xp, layout = self.ctx.xp, self.layout
        if self._vector is None or not layout.holds(params):
            self._vector = layout.pack(xp, params)
        return {PACKED: self._vector}, {PACKED: layout.pack(xp, grads)}

    def leave(self, updated):
        self._vector = updated[PACKED]
        return self.layout.hand_out(self.ctx.xp, self._vector, self.ctx.views)

    def per_parameter(self, slots):
        """Each parameter's slices of the packed slots (views on NumPy, CuPy and torch)."""
        xp, layout = self.ctx.xp, self.layout
        per_slot = {k: None if v is None else layout.unpack(xp, v)
                    for k, v in slots[PACKED].items()}
        return {name: {k: None if parts is None else parts[name]
                       for k, parts in per_slot.items()}
                for name in layout.names}

    def from_per_parameter(self, slots):
        xp, layout = self.ctx.xp, self.layout
        first = slots[layout.names[0]]
        self._vector = None
        return {PACKED: {
            k: None if first[k] is None
            else layout.pack(xp, {name: slots[name][k] for name in layout.names})
            for k in first}}

    def forget(self):
        self._vector = None
