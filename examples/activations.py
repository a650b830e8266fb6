"""Every activation function of nnx and its derivative, in two rows (writes activations.png).

The derivatives are the activations' own ``derivative``, the code backprop runs.

Run::

    python examples/activations.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.activations`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import activations, run_example


def main(argv=None) -> int:
    return run_example(activations, argv)


if __name__ == "__main__":
    sys.exit(main())
