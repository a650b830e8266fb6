"""The training-throughput benchmark behind ``benchmarks/train_throughput.py``.

Modules, by responsibility:

``problems``     the configurations (``CONFIGS``), their data and hyperparameters
``handwritten``  what a person writes without nnx: the NumPy/CuPy step, the torch model and
                 the epoch loop over fixed batches (no nnx import: memory children use it)
``sides``        the contestants, each timing its own block: nnx.step, nnx.fit, hand, torch,
                 scikit-learn, the GEMM floor
``harness``      warm-ups, timed blocks, interleaved repetitions, paired ratios, summaries
``runs``         the throughput and scaling parts: which sides run, what is recorded
``memory``       peak RSS of training, each side in a fresh subprocess
``accuracy``     wall-clock time to a test accuracy, nnx against scikit-learn
``environment``  the machine and libraries of a run; the OpenBLAS re-execution
``targets``      the targets as data, evaluated against a run's results
``report``       the Markdown table, the log lines and the scaling plot

Nothing here imports NumPy at package import time: the command re-executes itself without
OpenBLAS overrides before NumPy loads (see :mod:`.environment`).
"""
