"""One step of backpropagation on the lesson's 2-2-1 network, printed value by value.

Forward values, loss, every gradient and the updated weights, laid out as the lesson prints
them, but computed by nnx's own layers (``Network.forward(..., return_cache=True)``, each
layer's ``backward``, nnx's SGD). Writes no figure.

Run::

    python examples/backprop_step_by_step.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.backprop_step_by_step`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import backprop_step_by_step, run_example


def main(argv=None) -> int:
    return run_example(backprop_step_by_step, argv)


if __name__ == "__main__":
    sys.exit(main())
