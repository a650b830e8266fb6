#!/usr/bin/env python
"""Memory of a streamed fit: one epoch over a ~400 MiB float32 memmap.

Writes a 2**20 x 100 float32 ``.npy`` file (and labels) to a folder, then, for a float32 and a
float64 network, trains one epoch from the memmap in a fresh process and samples ``RssAnon``
(anonymous memory, from ``/proc/self/status``) during the fit: a memmap's file pages count in
plain RSS whatever the code does, so only anonymous memory tells streaming from copying. The
same process then trains the in-memory fit from the same seed and says whether the parameters
are equal. Prints one line per dtype: ``<dtype> <MiB grown> <same parameters>``.

Usage (Linux)::

    python benchmarks/streaming_memory.py [--folder DIR] [--rows 1048576]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import sys, threading, time
import numpy as np
import nnx

path, dtype = sys.argv[1], sys.argv[2]
X = np.load(path + "/X.npy", mmap_mode="r")
y = np.load(path + "/y.npy", mmap_mode="r")

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

def network():
    net = nnx.Network([X.shape[1], 16, 1], optimizer="adam", seed=0, dtype=dtype)
    net.fit(X[:2048], y[:2048], epochs=1, batch_size=1024, shuffle="block")  # warm
    return net

net = network()
peak, start, done = [0], anon(), [False]

def sample():
    while not done[0]:
        peak[0] = max(peak[0], anon())
        time.sleep(0.005)

thread = threading.Thread(target=sample)
thread.start()
net.fit(X, y, epochs=1, batch_size=1024, shuffle="block")
done[0] = True
thread.join()
grown = (max(peak[0], anon()) - start) / 2**20
streamed = {k: nnx.to_numpy(v) for k, v in net.parameters().items()}
again = network()
again.fit(np.array(X), np.array(y), epochs=1, batch_size=1024, shuffle="block")
same = all(np.array_equal(nnx.to_numpy(v), streamed[k]) for k, v in again.parameters().items())
print(dtype, f"{grown:.1f}", same)
"""


def write_data(folder: Path, rows: int, width: int = 100) -> None:
    """The memmap, written a block at a time (never whole in memory)."""
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, width))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 2**16):
        stop = min(start + 2**16, rows)
        X[start:stop] = rng.standard_normal((stop - start, width), dtype=np.float32)
    y = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.int8, shape=(rows,))
    y[:] = X[:, 0] > 0
    X.flush()
    y.flush()


def measure(folder: Path, dtype: str) -> tuple[float, bool]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), dtype],
                         capture_output=True, text=True, timeout=300, check=True)
    _, grown, same = out.stdout.split()
    return float(grown), same == "True"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="where to write the data (a temp dir)")
    parser.add_argument("--rows", type=int, default=2**20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        write_data(folder, args.rows)
        for dtype in ("float32", "float64"):
            grown, same = measure(folder, dtype)
            print(f"{dtype} {grown:.1f} {same}", flush=True)


if __name__ == "__main__":
    main()
