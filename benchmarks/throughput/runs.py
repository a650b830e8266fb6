"""The throughput and scaling parts: which sides run on which problem, what is recorded."""

from __future__ import annotations

import numpy as np

from nnx.backend import get_context

from .harness import Harness, pair_ratios, paired_differences, summary
from .problems import CONFIGS, Config, make_problem
from .report import config_lines, scaling_line
from .sides import (SIDES, Gemm, Hand, NnxFit, NnxStep, Sklearn, Torch, fit_counterpart,
                    is_gpu, matmul_rate, step_flops, torch_device)


def harness_of(args) -> Harness:
    return Harness(warmup_seconds=args.warmup_seconds, block_seconds=args.block_seconds,
                   repeats=args.repeats)


def hand_namespace(gpu):
    """NumPy for a CPU run; CuPy on a GPU (None when it is not installed)."""
    if not gpu:
        return np
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def throughput_sides(prob, optimizers, args, gpu, hand_xp, torch_dev):
    """Every side of one config, named ``<optimizer>:<side>``, then the shared ``gemm``."""
    sides = []
    for opt in optimizers:
        group = [NnxStep(prob, opt, args.backend, args.device),
                 NnxFit(prob, opt, args.backend, args.device)]
        if hand_xp is not None:
            group += [Hand(prob, opt, hand_xp), Hand(prob, opt, hand_xp, shuffle=True)]
        if torch_dev is not None:
            group += [Torch(prob, opt, torch_dev), Torch(prob, opt, torch_dev, shuffle=True)]
        if not gpu and not args.no_sklearn:
            group += [Sklearn(prob, opt, np.float32), Sklearn(prob, opt, np.float64)]
        for s in group:
            s.name = f"{opt}:{s.name}"
        sides += group
    return sides


def throughput_ratios(times, optimizers) -> dict:
    """Like for like: the raw step against the raw loops, fit (which reorders the rows every
    epoch) against the loops that do too; sklearn's fit shuffles; both against the floor."""
    ratios = {}
    for opt in optimizers:
        for a in ("nnx.step", "nnx.fit"):
            for b in ("hand", "torch", "sk32", "sk64"):
                b = fit_counterpart(b) if a == "nnx.fit" else b
                r = pair_ratios(times, f"{opt}:{a}", f"{opt}:{b}")
                if r is not None:
                    ratios[f"{opt}:{a}/{b}"] = r
            ratios[f"{opt}:{a}/gemm"] = pair_ratios(times, f"{opt}:{a}", "gemm")
        r = pair_ratios(times, f"{opt}:torch", "gemm")
        if r is not None:
            ratios[f"{opt}:torch/gemm"] = r
    return ratios


def run_throughput(args, log):
    ctx = get_context(args.backend, args.device)
    gpu = is_gpu(ctx)
    hand_xp = hand_namespace(gpu)
    torch_dev = torch_device(args.backend, args.device)
    harness = harness_of(args)
    rate = matmul_rate(ctx)
    log(f"  matmul rate of {args.backend}: {rate / 1e9:.1f} GFLOP/s")
    results = {"matmul_rate_flops": rate, "configs": {}}
    for name in args.configs:
        cfg = CONFIGS[name]
        if cfg.gpu_only and not gpu and not args.allow_cpu_xlarge:
            log(f"  {name}: GPU only, skipped on the CPU (not yet measured)")
            results["configs"][name] = {"skipped": "GPU only; not yet measured"}
            continue
        prob = make_problem(cfg)
        sides = throughput_sides(prob, args.optimizer, args, gpu, hand_xp, torch_dev)
        sides.append(Gemm(prob, ctx))
        ref = next(s for s in sides if s.name.endswith(":nnx.step"))
        epochs = harness.calibrate(ref)
        log(f"  {name}: {cfg.sizes} batch {cfg.batch}, {len(prob.bounds)} steps/epoch, "
            f"{epochs} epoch(s) per block, {args.repeats} repeats, sides: "
            + ", ".join(s.name for s in sides))
        times = harness.interleaved(sides, epochs, log=log if args.verbose else None)
        flops = step_flops(cfg.sizes, cfg.batch)
        entry = {
            "sizes": list(cfg.sizes), "batch": cfg.batch, "n_samples": prob.X.shape[0],
            "steps_per_epoch": len(prob.bounds), "epochs_per_block": epochs,
            "flops_per_step": flops, "floor_at_peak_s": flops / rate,
            "step_s": {k: summary(v) for k, v in times.items()},
            "ratios": throughput_ratios(times, args.optimizer),
            "samples_per_s": {k: cfg.batch / float(np.median(v)) for k, v in times.items()},
        }
        if {"adam", "sgd"} <= set(args.optimizer):
            overhead = {side: paired_differences(times, f"adam:{side}", f"sgd:{side}")
                        for side in SIDES}
            entry["adam_overhead_s"] = {k: v for k, v in overhead.items() if v is not None}
        if gpu and args.count_launches:
            entry["launches_per_step"] = count_launches(prob, args.optimizer[0], args,
                                                        torch_dev)
        results["configs"][name] = entry
        log(config_lines(name, entry))
    return results


def count_launches(prob, optimizer, args, torch_dev):
    """CUDA kernels launched per step, counted with torch's profiler (torch-based sides only)."""
    out = {}
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return {"error": "torch profiler not available"}
    candidates = {"torch": lambda: Torch(prob, optimizer, torch_dev)}
    if args.backend == "torch":
        candidates["nnx.step"] = lambda: NnxStep(prob, optimizer, args.backend, args.device)
    for name, make in candidates.items():
        side = make()
        side.warmup()
        side.sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            side.block(1)
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        out[name] = len(kernels) / side.steps_per_epoch
    if args.backend == "cupy":
        out["nnx.step"] = "not counted (CuPy launches are invisible to torch's profiler)"
    return out


def run_scaling(args, log):
    """Step time against batch size and against width, nnx vs torch, with the GEMM floor."""
    ctx = get_context(args.backend, args.device)
    full = args.scaling_full or is_gpu(ctx)
    if full:
        batches = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
        widths = [64, 128, 256, 512, 1024, 2048, 4096]
    else:
        batches = [32, 128, 512, 2048]
        widths = [64, 256, 1024]
    torch_dev = torch_device(args.backend, args.device)
    harness = harness_of(args)
    rate = matmul_rate(ctx)
    repeats = max(3, min(args.repeats, 5))
    points = []
    sweeps = [("batch", b, (784, 512, 256, 10), b) for b in batches]
    sweeps += [("width", w, (784, w, w, 10), 256) for w in widths]
    for sweep, x, sizes, batch in sweeps:
        prob = make_problem(Config(f"{sweep}={x}", sizes, batch, batch * 4, "synthetic"))
        sides = [NnxStep(prob, "sgd", args.backend, args.device)]
        if torch_dev is not None:
            sides.append(Torch(prob, "sgd", torch_dev))
        sides.append(Gemm(prob, ctx))
        epochs = harness.calibrate(sides[0], args.block_seconds / 2)
        times = harness.interleaved(sides, epochs, repeats)
        flops = step_flops(sizes, batch)
        point = {"sweep": sweep, "x": x, "sizes": list(sizes), "batch": batch,
                 "floor_at_peak_s": flops / rate,
                 "step_s": {k: summary(v) for k, v in times.items()},
                 "nnx/torch": pair_ratios(times, "nnx.step", "torch"),
                 "nnx/gemm": pair_ratios(times, "nnx.step", "gemm")}
        points.append(point)
        log(scaling_line(point))
    return {"matmul_rate_flops": rate, "full": full, "points": points}
