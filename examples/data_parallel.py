"""Data-parallel training: one model on several processes.

Run::

    mpiexec -n 2 python examples/data_parallel.py [--out DIR]

Every rank passes the same data; ``batch_size`` is the global batch, so the model is the one
a single process would train with the same seed (see the README's "Several processes, GPUs
or nodes"). Plain ``python examples/data_parallel.py`` runs it on one rank.
"""

import argparse
import sys
from pathlib import Path

import nnx
from nnx.datasets import Standardizer, load, train_test_split


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("nnx-output"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)

    digits = load("digits")                               # every rank: the same data
    X_train, X_test, y_train, y_test = train_test_split(digits.X, digits.y)
    scaler = Standardizer().fit(X_train)
    net = nnx.Network([64, 64, 32, 10], loss="categorical_crossentropy", optimizer="adam",
                      learning_rate=0.003, seed=0)
    net.fit(scaler.transform(X_train), y_train, epochs=args.epochs, batch_size=64,
            distributed="mpi")                            # 64: the global batch
    scores = net.evaluate(scaler.transform(X_test), y_test, distributed="mpi")
    labels = net.predict(scaler.transform(X_test), distributed="mpi")
    if labels is not None:                                # rank 0 gathers the labels
        args.out.mkdir(parents=True, exist_ok=True)
        net.save(args.out / "digits.nnx")
        print(f"test accuracy {scores['accuracy']:.3f} (labels of {len(labels)} rows); "
              f"saved {args.out / 'digits.nnx'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
