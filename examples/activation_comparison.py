"""Sigmoid vs tanh vs ReLU on Moons (500 samples, network [2, 16, 8, 1]): learning curves,
decision boundaries and final test accuracy (writes activation_comparison.png).

Run::

    python examples/activation_comparison.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.activation_comparison`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import activation_comparison, run_example


def main(argv=None) -> int:
    return run_example(activation_comparison, argv)


if __name__ == "__main__":
    sys.exit(main())
