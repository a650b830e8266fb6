#!/usr/bin/env python
"""Training throughput of nnx side by side with PyTorch, scikit-learn and a hand-written step.

Run from the repository root::

    python benchmarks/train_throughput.py                       # CPU, numpy backend, everything
    python benchmarks/train_throughput.py --parts throughput --configs medium --repeats 7
    python benchmarks/train_throughput.py --backend torch --device cuda --configs medium,xlarge
    python benchmarks/train_throughput.py --backend cupy --device cuda --scaling-full

What it measures (see benchmarks/README.md for the method and the latest numbers; the code
is the package ``benchmarks/throughput/``):

``throughput``
    Per-step time of one MLP training step (forward, fused loss, backward, optimizer update)
    for every config and optimizer, on these sides, all float32 on the same data, the same
    architecture, batch size and learning rate:

    - ``nnx.step``  the raw ``net.step`` loop over the batches of one epoch;
    - ``nnx.fit``   ``Network.fit`` over a fixed number of epochs (per-step time = wall time /
      steps; includes what users pay per epoch: the shuffle ``take`` and the loss sync);
    - ``hand``      a plain hand-written NumPy (CPU) / CuPy (GPU) step;
    - ``torch``     eager PyTorch: ``nn.Sequential`` + ``torch.optim`` on the same device;
    - ``sk32`` / ``sk64``  scikit-learn ``MLPClassifier.fit(max_iter=E)`` on float32 / float64
      input, ``tol`` disabled so it runs exactly ``E`` epochs; per-step time = wall / steps
      (CPU runs only);
    - ``gemm``      the step's matrix products alone, at the step's shapes (a measured floor).

    Blocks run interleaved (A B C ... A B C ...) in one process, each preceded by its own
    warm-up (NumPy's OpenBLAS threads and torch's OpenMP threads fight over the cores when
    they alternate), ``--repeats`` times. Ratios are taken pair by pair within a repetition,
    then summarised as median (min-max).

``scaling``   step time against batch size and against width, nnx vs torch, with the floor.
``memory``    peak RSS of training the large config, nnx vs hand NumPy, each in a subprocess.
``accuracy``  wall-clock time to 97% test accuracy on scikit-learn's digits, nnx vs MLPClassifier.

OpenBLAS: a machine may set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, which can pick a
slower kernel for NumPy. Unless ``--keep-openblas-env`` is given, this script re-executes
itself once with both unset (for its own process only) and records what was set and which
kernel ran. Tests and CI never touch these variables.
"""

from __future__ import annotations

from throughput.environment import reexec_without_openblas_overrides

if __name__ == "__main__":
    reexec_without_openblas_overrides()

# imported after the re-exec on purpose: NumPy loads OpenBLAS
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from throughput import memory  # noqa: E402
from throughput.problems import CONFIGS, LEARNING_RATE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="numpy",
                   choices=["numpy", "torch", "cupy", "array_api_strict"])
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N")
    p.add_argument("--configs", default="tiny,medium,large,xlarge",
                   help="comma list of " + ",".join(CONFIGS))
    p.add_argument("--optimizer", default="sgd,adam", help="comma list of sgd,adam")
    p.add_argument("--parts", default="throughput,scaling,memory,accuracy",
                   help="comma list of throughput,scaling,memory,accuracy")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--tag", default=None, help="output file stem (default from device+backend)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--block-seconds", type=float, default=0.15,
                   help="target length of nnx.step's timed block (others take as many epochs)")
    p.add_argument("--warmup-seconds", type=float, default=0.05,
                   help="minimum warm-up of each side right before each of its timed blocks")
    p.add_argument("--scaling-full", action="store_true",
                   help="batch 32..8192 and width 64..4096 (default on GPU; minutes on a CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="cap BLAS/OpenMP threads of NumPy, scikit-learn and torch alike "
                        "(threadpoolctl + torch.set_num_threads); default: library defaults")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--allow-cpu-xlarge", action="store_true")
    p.add_argument("--count-launches", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU, count kernel launches per step with torch's profiler")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="do not unset OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for this run")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rss-epochs", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.optimizer = [o for o in args.optimizer.split(",") if o]
    args.parts = [x for x in args.parts.split(",") if x]
    for c in args.configs:
        if c not in CONFIGS:
            p.error(f"unknown config {c!r}; choose from {', '.join(CONFIGS)}")
    for o in args.optimizer:
        if o not in LEARNING_RATE:
            p.error(f"unknown optimizer {o!r}; choose sgd and/or adam")
    if args.repeats < 1:
        p.error("--repeats must be >= 1 (use >= 5 for published numbers)")
    return args


def cap_threads(threads):
    """One cap for every BLAS/OpenMP pool of the process (see "A shared 2-core machine" in
    benchmarks/README.md for why the published runs use one thread)."""
    import threadpoolctl

    try:  # load scikit-learn's SciPy (its own OpenBLAS) first, so that the cap covers it
        import sklearn.neural_network  # noqa: F401
    except ImportError:
        pass
    threadpoolctl.threadpool_limits(threads)  # applies the cap for the whole process
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def log(msg):
    print(msg, flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child:
        memory.rss_child(args.rss_child, args.configs[0], args.rss_epochs)
        return
    # not imported by the memory children above, whose peak RSS holds their own side only
    from throughput.accuracy import run_accuracy
    from throughput.environment import environment, file_tag
    from throughput.report import markdown, plot_scaling
    from throughput.runs import run_scaling, run_throughput
    from throughput.sides import torch_device
    from throughput.targets import evaluate

    if args.threads:
        cap_threads(args.threads)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = environment(args.threads, ROOT)
    device = args.device or "cpu"
    title = f"{args.backend} on {device}"
    if env.get("gpu"):
        title += f" ({env['gpu'].get('name', '')})"
    tag = args.tag or file_tag(args.backend, device, env)
    log(f"nnx benchmark: {title}; CPU {env['cpu_model']}; numpy BLAS kernel "
        f"{env['numpy_blas_kernel']}; OpenBLAS overrides unset: {env['openblas_env_unset']}")
    results = {"title": title, "backend": args.backend, "device": device, "environment": env}
    if "throughput" in args.parts:
        log("throughput:")
        results["throughput"] = run_throughput(args, log)
    if "scaling" in args.parts:
        log("scaling:")
        results["scaling"] = run_scaling(args, log)
        plot = out_dir / f"{tag}_scaling.png"
        plot_scaling(results["scaling"], plot, f"nnx vs torch step time — {title}; "
                     f"{env['cpu_model']}")
        results["plot"] = os.path.relpath(plot, ROOT)
    if "memory" in args.parts and device == "cpu" and args.backend == "numpy":
        log("memory:")
        sides = ["nnx", "hand"] + (["torch"] if torch_device(args.backend, args.device) else [])
        results["memory"] = memory.run_memory(Path(__file__).resolve(), sides, log)
    if "accuracy" in args.parts and device == "cpu":
        log("accuracy (time to 97% on digits):")
        results["accuracy"] = run_accuracy(args, log)
    env["loadavg_end"] = os.getloadavg()
    env["wall_s"] = time.perf_counter() - started
    (out_dir / f"{tag}.json").write_text(json.dumps(results, indent=1, default=str))
    rows = evaluate(results)
    (out_dir / f"{tag}.md").write_text(markdown(results, rows))
    log(f"wrote {out_dir / (tag + '.json')} and .md in {env['wall_s']:.0f}s")
    for r in rows:
        log("  " + " | ".join(r))


if __name__ == "__main__":
    main()
