"""The lesson's decision-boundary grid: Linear / Moons / Circles x four depths of ReLU network,
test accuracy in every title (writes decision_boundaries.png).

Run::

    python examples/decision_boundaries.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.demos.decision_boundaries`, kept in the package so that ``nnx demo``
runs it too; it is built from :mod:`nnx.datasets`, :mod:`nnx.plotting` and
:mod:`nnx.callbacks`.
"""

import sys

from nnx.demos import decision_boundaries, run_example


def main(argv=None) -> int:
    return run_example(decision_boundaries, argv)


if __name__ == "__main__":
    sys.exit(main())
