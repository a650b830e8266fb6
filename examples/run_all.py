"""Every demonstration of the lesson, one after the other: what ``nnx demo`` runs.

Run::

    python examples/run_all.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.run_all`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import run_all, run_example


def main(argv=None) -> int:
    return run_example(run_all, argv)


if __name__ == "__main__":
    sys.exit(main())
