"""The lesson's second exercise, "add regularization to prevent overfitting", as a study.

An oversized network (two hidden layers of 256 ReLU units) is trained on 100 noisy Moons points
with 15% flipped labels, without regularization and with L2, L1, dropout, batch norm, early
stopping and a combination. It writes regularization.png (train/validation loss curves and
decision boundaries side by side) and prints the table of training and validation accuracy.

Run::

    python examples/regularization.py [--backend B] [--device D] [--out DIR] [--quick]

The code is :func:`nnx.overfitting.regularization`.
"""

import sys

from nnx.demos import run_example
from nnx.overfitting import regularization


def main(argv=None) -> int:
    return run_example(regularization, argv)


if __name__ == "__main__":
    sys.exit(main())
