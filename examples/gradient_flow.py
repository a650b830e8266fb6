"""Gradient flow: per-layer weight-gradient norms over 50 epochs for a deep ReLU network and a
deep sigmoid network side by side, and the final norm of every layer (writes gradient_flow.png).

The norms are recorded by :class:`nnx.callbacks.GradientMonitor`, usable in any ``fit``.

Run::

    python examples/gradient_flow.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.gradient_flow`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import gradient_flow, run_example


def main(argv=None) -> int:
    return run_example(gradient_flow, argv)


if __name__ == "__main__":
    sys.exit(main())
