"""What a run writes: the Markdown table, the log lines and the scaling plot."""

from __future__ import annotations

from .harness import us
from .sides import SIDES


def fmt(s):
    """A summary of seconds as ``median (min–max)``."""
    if s is None:
        return "–"
    return f"{us(s['median'])} ({us(s['min'])}–{us(s['max'])})"


def fmt_ratio(r, invert=False):
    """A summary of ratios as ``median (min–max)``; ``invert`` shows b/a as ``x faster``."""
    if r is None:
        return "–"
    if invert:
        return f"{1 / r['median']:.2f}x ({1 / r['max']:.2f}–{1 / r['min']:.2f})"
    return f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"


def config_lines(name, entry):
    """The log lines of one config of the throughput part."""
    lines = [f"  {name} results (median per step):"]
    for k, v in entry["step_s"].items():
        lines.append(f"    {k:<14} {us(v['median']):>9} ({us(v['min'])}-{us(v['max'])})")
    for k, v in entry["ratios"].items():
        if v is not None:
            lines.append(f"    {k:<22} {v['median']:.3f} ({v['min']:.3f}-{v['max']:.3f})")
    return "\n".join(lines)


def scaling_line(point):
    """The log line of one point of the scaling part."""
    t = point["step_s"]
    return (f"  {point['sweep']:>5}={point['x']:<5} nnx {us(t['nnx.step']['median']):>9}  "
            + (f"torch {us(t['torch']['median']):>9}  " if "torch" in t else "")
            + f"gemm {us(t['gemm']['median']):>9}  floor {us(point['floor_at_peak_s']):>9}")


def header(results):
    env = results["environment"]
    return [f"# nnx training throughput — {results['title']}", "",
            f"Command: `{env['command']}`  ", f"Date: {env['date']}  ",
            f"Machine: {env['cpu_model']}, {env['cpus']} CPUs, {env['platform']}  ",
            "NumPy BLAS: " + ", ".join(
                f"{p['internal_api']} {p['version']} kernel={p['architecture']} "
                f"threads={p['num_threads']}" for p in env["threadpools"]
                if p["user_api"] == "blas"),
            f"Torch: {env['versions'].get('torch')} threads={env.get('torch_threads')} "
            + "; ".join(env.get("torch_parallel", [])) + "  ",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + "  ",
            f"OpenBLAS overrides unset for this run: {env['openblas_env_unset']}  ",
            f"Thread cap: {env.get('threads_cap') or 'none (library defaults)'}  ",
            f"Load average at start: {', '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
            + (f"  \nGPU: {env['gpu']}" if env.get("gpu") else ""), ""]


def throughput_section(results, thr):
    out = ["## Per-step time, median (min–max) over interleaved repetitions", "",
           f"Backend `{results['backend']}` on `{results['device']}`; float32; "
           f"matmul rate measured in this run: {thr['matmul_rate_flops'] / 1e9:.1f} GFLOP/s.",
           "",
           "`.fit` columns reorder the rows every epoch (nnx: `Network.fit(shuffle=True)`, "
           "hand: `X[perm]`, torch: `X[torch.randperm(n)]`), as scikit-learn's `fit` does; "
           "the others run the batches in a fixed order.", "",
           "| config | opt | " + " | ".join(SIDES) + " | GEMM only | floor (peak) |",
           "|---" * (len(SIDES) + 4) + "|"]
    measured = {name: e for name, e in thr["configs"].items() if "skipped" not in e}
    for name, e in thr["configs"].items():
        if name not in measured:
            out.append(f"| {name} | – | " + " | ".join(["not yet measured"] * len(SIDES))
                       + " | – | – |")
            continue
        opts = sorted({k.split(":")[0] for k in e["step_s"] if ":" in k},
                      key=["sgd", "adam"].index)
        for opt in opts:
            cells = [fmt(e["step_s"].get(f"{opt}:{c}")) for c in SIDES]
            out.append(f"| {name} | {opt} | " + " | ".join(cells)
                       + f" | {fmt(e['step_s']['gemm'])} | {us(e['floor_at_peak_s'])} |")
    out += ["", "## Ratios, paired within each repetition: median (min–max)", "",
            "`a/b` < 1 means nnx is faster. `x faster` columns are b/a.", "",
            "| config | opt | step/hand | step/torch | step/gemm | fit/hand.fit | "
            "fit/torch.fit | torch/step | sk32/step | sk64/step | sk32/fit | sk64/fit |",
            "|---" * 12 + "|"]
    columns = [("nnx.step/hand", False), ("nnx.step/torch", False), ("nnx.step/gemm", False),
               ("nnx.fit/hand.fit", False), ("nnx.fit/torch.fit", False),
               ("nnx.step/torch", True), ("nnx.step/sk32", True), ("nnx.step/sk64", True),
               ("nnx.fit/sk32", True), ("nnx.fit/sk64", True)]
    for name, e in measured.items():
        r = e["ratios"]
        for opt in ("sgd", "adam"):
            if f"{opt}:nnx.step/gemm" in r:
                out.append(f"| {name} | {opt} | " + " | ".join(
                    fmt_ratio(r.get(f"{opt}:{key}"), invert) for key, invert in columns) + " |")
    overheads = [(n, e["adam_overhead_s"]) for n, e in measured.items()
                 if e.get("adam_overhead_s")]
    if overheads:
        out += ["", "## Adam overhead per step (Adam step − SGD step, paired)", "",
                "| config | " + " | ".join(SIDES) + " |", "|---" * (len(SIDES) + 1) + "|"]
        for n, o in overheads:
            out.append(f"| {n} | " + " | ".join(fmt(o.get(s)) for s in SIDES) + " |")
    for n, e in measured.items():
        if e.get("launches_per_step"):
            out += ["", f"CUDA launches per step on {n}: {e['launches_per_step']}"]
    return out


def scaling_section(results, sc):
    out = ["## Scaling (SGD): step time, median of interleaved repetitions", "",
           f"Matmul rate in this run: {sc['matmul_rate_flops'] / 1e9:.1f} GFLOP/s. "
           f"Plot: `{results.get('plot', '')}`", "",
           "| sweep | sizes | batch | nnx | torch | GEMM only | floor (peak) | nnx/torch | "
           "nnx/GEMM | nnx samples/s |", "|---" * 10 + "|"]
    for p in sc["points"]:
        t = p["step_s"]
        out.append(
            f"| {p['sweep']}={p['x']} | {'-'.join(map(str, p['sizes']))} | {p['batch']} | "
            f"{us(t['nnx.step']['median'])} | "
            f"{us(t['torch']['median']) if 'torch' in t else '–'} | "
            f"{us(t['gemm']['median'])} | {us(p['floor_at_peak_s'])} | "
            f"{fmt_ratio(p['nnx/torch'])} | {fmt_ratio(p['nnx/gemm'])} | "
            f"{p['batch'] / t['nnx.step']['median']:,.0f} |")
    return out


def memory_section(mem):
    out = [f"## Peak RSS, {mem['config']} config, {mem['epochs']} epochs of training "
           "(each in a fresh subprocess)", "",
           "| side | peak RSS (MiB) | RSS before training | training increment |",
           "|---|---|---|---|"]
    for k, r in mem["runs"].items():
        out.append(f"| {k} | {r['peak_mib']:.1f} | {r['before_training_mib']:.1f} | "
                   f"{r['peak_mib'] - r['before_training_mib']:.1f} |")
    return out + ["", f"nnx / hand: peak {mem['nnx/hand_peak']:.3f}, training increment "
                  f"{mem['nnx/hand_increment']:.3f}."]


def accuracy_section(acc):
    out = [f"## Time to {acc['target']:.0%} test accuracy on digits "
           f"(64-64-32-10, {acc['optimizer']}, lr {acc['learning_rate']}, batch 32)", "",
           "| seed | nnx (s) | nnx epochs | sklearn partial_fit (s) | sklearn epochs | "
           "sklearn fit(max_iter=k) (s) |", "|---|---|---|---|---|---|"]
    for r in acc["rows"]:
        out.append(f"| {r['seed']} | {r['nnx_s']:.3f} | {r['nnx_epochs']} | {r['sk_s']:.3f} | "
                   f"{r['sk_epochs']} | "
                   + (f"{r['sk_oracle_s']:.3f}" if r["sk_oracle_s"] else "–") + " |")
    if "sk/nnx" in acc:
        out += ["", f"sklearn / nnx wall-clock: {fmt_ratio(acc['sk/nnx'])}; "
                f"sklearn told k / nnx: {fmt_ratio(acc['sk_oracle/nnx'])}."]
    return out


def targets_section(rows):
    return (["## Targets", "", "| config | opt | target | value | status |",
             "|---|---|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows])


def markdown(results, target_rows):
    """The run's Markdown report: environment, then every part it ran, then the targets'
    rows (:func:`.targets.evaluate`)."""
    out = header(results)
    if results.get("throughput"):
        out += throughput_section(results, results["throughput"])
    if results.get("scaling"):
        out += [""] + scaling_section(results, results["scaling"])
    if results.get("memory"):
        out += [""] + memory_section(results["memory"])
    if results.get("accuracy"):
        out += [""] + accuracy_section(results["accuracy"])
    if target_rows:
        out += [""] + targets_section(target_rows)
    return "\n".join(out) + "\n"


def plot_scaling(scaling, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, xlabel in ((axes[0], "batch", "batch size (784-512-256-10)"),
                              (axes[1], "width", "hidden width w (784-w-w-10, batch 256)")):
        pts = [p for p in scaling["points"] if p["sweep"] == sweep]
        xs = [p["x"] for p in pts]
        for key, style, label in (("nnx.step", "o-", "nnx"), ("torch", "s-", "torch eager"),
                                  ("gemm", "--", "GEMM only (measured)")):
            if all(key in p["step_s"] for p in pts):
                ax.plot(xs, [p["step_s"][key]["median"] * 1e3 for p in pts], style, label=label)
        ax.plot(xs, [p["floor_at_peak_s"] * 1e3 for p in pts], ":", color="gray",
                label="6B·Σin·out at peak matmul rate")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("step time (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
