"""Measured speed: every step in every framework, and how the cost grows.

    python tools/benchmark.py                      # everything (about 30 minutes on 2 cores)
    python tools/benchmark.py --steps 06_unet --frameworks pytorch,chainer --no-scaling
    python tools/benchmark.py --quick              # fewer repeats: a smoke run, not for the record

For each step and framework, in a fresh process each:

  bare step   forward, loss, backward and SGD update on one fixed batch
              (Trainer.train_step, the same call the scripts make), timed over
              --repeats repeats of --iters iterations after --warmup iterations;
              median and spread (min-max) of the per-repeat ms/iteration.
  full loop   the step script itself (`python <framework>/<step>.py`), data,
              flip augmentation, progress, checkpoints and all: the median of its
              per-iteration wall times (metrics.json "ms_per_iter_loop").
  FLOPs       counted once, with PyTorch's torch.utils.flop_counter on one
              training iteration of one image (forward + backward): convolutions,
              transposed convolutions and matrix products only, 2 FLOPs per
              multiply-add; BatchNorm, ReLU, pooling, resizing and the loss are
              not counted (a few percent here). The four frameworks compute the
              same network (tests/test_parity.py), so one count serves all.
  scaling     the bare step of --scaling-step at sizes 64, 128, 256 (batch 4) and
              batch sizes 1, 4, 16 (size 64).

Results go to BENCHMARKS.md (between its "generated" markers; the text around
them is kept), runs/benchmark/results.json, and two figures in assets/.
Run it on an otherwise idle machine: it measures the machine as much as the code.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from common import REPO, RUNS
from common.errors import UserError, exit_on_user_error
from common.frameworks import FRAMEWORKS, describe_cpu, environment, installed
from common import driver, lessons
from common.driver import make_trainer
from common.frameworks import COLUMNS
from common.runs import command, resolve

OUT_MD = REPO / "BENCHMARKS.md"
ASSETS = REPO / "assets"
MARK_START, MARK_END = "<!-- generated:start -->", "<!-- generated:end -->"
SIZE, BATCH = 64, 4
SCALING_SIZES, SCALING_BATCHES = (64, 128, 256), (1, 4, 16)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="all", help="comma-separated steps, or all (default: all)")
    p.add_argument("--frameworks", default="installed+keras-torch",
                   help="comma-separated from pytorch,tensorflow,keras,chainer,keras-torch "
                        "(default: every installed one, and keras-torch)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (default: 5)")
    p.add_argument("--iters", type=int, default=5, help="iterations per repeat (default: 5)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    p.add_argument("--loop-iters", type=int, default=30,
                   help="iterations of the full-loop run (default: 30)")
    p.add_argument("--scaling-step", default="06_unet",
                   help="the step whose scaling is measured (default: 06_unet)")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling runs")
    p.add_argument("--quick", action="store_true",
                   help="2 repeats of 2 iterations, 10-iteration loops: a smoke run")
    p.add_argument("--no-write", action="store_true",
                   help="print the tables; leave BENCHMARKS.md and assets/ alone")
    p.add_argument("--from-results", type=Path, default=None, metavar="FILE",
                   help="measure nothing: rewrite BENCHMARKS.md and the figures from an earlier "
                        "run's results.json")
    p.add_argument("--out", type=Path, default=RUNS / "benchmark",
                   help="folder for results.json and the runs (default: runs/benchmark)")
    p.add_argument("--worker", nargs=4, metavar=("LABEL", "STEP", "SIZE", "BATCH"),
                   help=argparse.SUPPRESS)
    p.add_argument("--flops", nargs=2, metavar=("STEP", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.iters, args.warmup, args.loop_iters = 2, 2, 1, 10
    if args.worker or args.flops:
        return args
    args.steps = resolve(args.steps, lessons.steps(), "step", "--steps")
    if args.frameworks == "installed+keras-torch":
        args.frameworks = [f for f in FRAMEWORKS if installed(f)]
        if installed("keras", "torch"):
            args.frameworks.append("keras-torch")
    else:
        args.frameworks = resolve(args.frameworks, COLUMNS, "framework",
                                          "--frameworks")
    return args


# ------------------------------------------------------------------ workers
def bare_step(label, step, size, batch, args) -> dict:
    """Time Trainer.train_step on one fixed batch (runs inside a worker process)."""
    from common.runner import to_layout, to_targets
    from common.weights import init_weights
    framework = "keras" if label == "keras-torch" else label
    trainer, st = make_trainer(framework, step, ["--size", str(size), "--batch-size", str(batch)])
    shapes = {k: v.shape for k, v in trainer.get_weights().items()}
    trainer.set_weights(init_weights(shapes, 0))
    rng = np.random.default_rng(0)
    x = to_layout(rng.random((batch, size, size, 3), dtype=np.float32), trainer.layout)
    y = to_targets(rng.integers(0, 3, (batch, size, size)).astype(np.uint8), st.task, None)
    t0 = time.perf_counter()
    trainer.train_step(x, y)                 # tracing / first allocation
    first = time.perf_counter() - t0
    for _ in range(args.warmup):
        trainer.train_step(x, y)
    per_repeat = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.iters):
            trainer.train_step(x, y)
        per_repeat.append(1000 * (time.perf_counter() - t0) / args.iters)
    return {"ms": float(np.median(per_repeat)), "ms_min": min(per_repeat),
            "ms_max": max(per_repeat), "first_ms": 1000 * first,
            "params": int(trainer.num_params()), "threads": threads(framework)}


def threads(framework) -> dict:
    out = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
    if framework == "pytorch" or os.environ.get("KERAS_BACKEND") == "torch":
        import torch
        out["torch_threads"] = torch.get_num_threads()
    if framework == "tensorflow" or (framework == "keras" and os.environ.get("KERAS_BACKEND") != "torch"):
        import tensorflow as tf
        out["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads() or "auto"
        out["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads() or "auto"
    return out


def count_flops(step, size) -> dict:
    """Training FLOPs (forward + backward) of one image, and forward FLOPs, by PyTorch's counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    mod = lessons.answer("pytorch", step)
    opts = driver.parse_args(mod, ["--size", str(size)])
    st = driver.step_of(mod, opts)
    model = mod.build(1 if st.task == "binary" else 3, opts)
    model.train()
    x = torch.rand(1, 3, size, size)
    with FlopCounterMode(display=False) as fwd:
        with torch.no_grad():
            model(x)
    with FlopCounterMode(display=False) as train:
        model(x).sum().backward()
    return {"forward": int(fwd.get_total_flops()), "train": int(train.get_total_flops())}


def in_worker(cmd_args, label="pytorch", env_extra=None, timeout=3600) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    if label == "keras-torch":
        env["KERAS_BACKEND"] = "torch"
    elif label == "keras":
        env["KERAS_BACKEND"] = "tensorflow"
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), *cmd_args],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def worker_args(args):
    return ["--repeats", str(args.repeats), "--iters", str(args.iters), "--warmup", str(args.warmup)]


def full_loop(label, step, args) -> dict:
    """Run the script itself; the median per-iteration wall time of its training loop."""
    with tempfile.TemporaryDirectory() as tmp:
        ns = argparse.Namespace(iters=args.loop_iters, seed=0, data=None, dry_run=False)
        cmd = command(label, step, ns, Path(tmp)) + ["--size", str(SIZE),
                                                             "--batch-size", str(BATCH)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env, cwd=REPO)
        if r.returncode != 0:
            return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
        m = json.loads((Path(tmp) / "metrics.json").read_text())
    return {"loop_ms": m["ms_per_iter_loop"], "step_ms_in_loop": m["ms_per_iter"]}


# ------------------------------------------------------------------ driver
def measure(args) -> dict:
    from tqdm import tqdm
    results = {"steps": {}, "scaling": {}, "flops": {}}
    jobs = [("flops", s, None) for s in args.steps]
    jobs += [("step", s, f) for s in args.steps for f in args.frameworks]
    if not args.no_scaling:
        jobs += [("flops-size", args.scaling_step, n) for n in SCALING_SIZES]
        jobs += [("scale", args.scaling_step, (f, n, b)) for f in args.frameworks
                 for n, b in sorted({(n, BATCH) for n in SCALING_SIZES} |
                                    {(SIZE, b) for b in SCALING_BATCHES})]
    for kind, step, what in tqdm(jobs, desc="benchmark", unit="run", dynamic_ncols=True):
        if kind == "flops":
            results["flops"][step] = in_worker(["--flops", step, str(SIZE)])
        elif kind == "flops-size":
            results["flops"][f"{step}@{what}"] = in_worker(["--flops", step, str(what)])
        elif kind == "step":
            res = in_worker(["--worker", what, step, str(SIZE), str(BATCH)] + worker_args(args), what)
            res.update(full_loop(what, step, args))
            results["steps"].setdefault(step, {})[what] = res
        else:
            label, size, batch = what
            key = f"{label} {size} {batch}"
            results["scaling"][key] = in_worker(["--worker", label, step, str(size), str(batch)]
                                                + worker_args(args), label)
    return results


# ------------------------------------------------------------------ report
def fmt_ms(r):
    if not r or "error" in r:
        return "failed"
    return f"{r['ms']:.0f} ({r['ms_min']:.0f}–{r['ms_max']:.0f})"


def tables(results, args) -> str:
    env = environment()
    lines = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {describe_cpu(env)}, "
             f"no GPU; Python {env['python']}, NumPy {env['numpy']}, "
             + ", ".join(f"{fw} {env[fw]}" for fw in FRAMEWORKS if env.get(fw)) + ".",
             f"Input {SIZE}x{SIZE}, batch {BATCH}, float32, default thread settings. "
             f"Bare step: median (min–max) of {args.repeats} repeats of {args.iters} iterations "
             f"after {args.warmup} warm-up iterations. Full loop: median iteration of a "
             f"{args.loop_iters}-iteration run of the script. Command: `python tools/benchmark.py`.", ""]
    labels = args.frameworks
    lines += ["### Bare training step, ms per iteration", "",
              "| step | params | GFLOP/iter | " + " | ".join(labels) + " | fastest |",
              "|---|---:|---:|" + "---:|" * len(labels) + "---|"]
    for step, row in results["steps"].items():
        fl = results["flops"].get(step, {})
        gflop = BATCH * fl.get("train", 0) / 1e9
        ok = {k: v for k, v in row.items() if "error" not in v}
        best = min(ok, key=lambda k: ok[k]["ms"]) if ok else None
        params = next((v["params"] for v in ok.values()), 0)
        lines.append(f"| {step} | {params / 1e6:.2f}M | {gflop:.2f} | "
                     + " | ".join(fmt_ms(row.get(k)) for k in labels) + f" | {best} |")
    lines += ["", "### Ratio to the fastest framework (bare step), achieved GFLOP/s, "
              "and overhead of the full loop (full loop ÷ bare step)", "",
              "| step | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for step, row in results["steps"].items():
        fl = results["flops"].get(step, {})
        ok = {k: v for k, v in row.items() if "error" not in v}
        if not ok:
            continue
        best = min(v["ms"] for v in ok.values())
        cells = []
        for k in labels:
            v = ok.get(k)
            if v is None:
                cells.append("failed")
                continue
            gflops = BATCH * fl.get("train", 0) / 1e9 / (v["ms"] / 1000)
            over = v.get("loop_ms") / v["ms"] if v.get("loop_ms") else float("nan")
            cells.append(f"×{v['ms'] / best:.2f} · {gflops:.0f} GFLOP/s · {over:.2f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    if results["scaling"]:
        step = args.scaling_step
        lines += ["", f"### How the cost grows ({step}, bare step, ms per iteration)", "",
                  "| size × batch | pixels/iter | " + " | ".join(labels) + " |",
                  "|---|---:|" + "---:|" * len(labels)]
        points = sorted({tuple(map(int, k.split()[1:])) for k in results["scaling"]},
                        key=lambda p: (p[0] * p[0] * p[1], p))
        for size, batch in points:
            cells = [fmt_ms(results["scaling"].get(f"{k} {size} {batch}")) for k in labels]
            lines.append(f"| {size}² × {batch} | {size * size * batch:,} | " + " | ".join(cells) + " |")
        lines += ["", "Growth exponent (log time ÷ log pixels, from 64²×4 to the largest run; "
                  "1.00 = proportional to the pixel count):", ""]
        for k in labels:
            def ms(size, batch):
                r = results["scaling"].get(f"{k} {size} {batch}")
                return r["ms"] if r and "error" not in r else None
            a, bsize, bbatch = ms(SIZE, BATCH), ms(max(SCALING_SIZES), BATCH), ms(SIZE, max(SCALING_BATCHES))
            parts = []
            if a and bsize:
                parts.append(f"size {np.log(bsize / a) / np.log((max(SCALING_SIZES) / SIZE) ** 2):.2f}")
            if a and bbatch:
                parts.append(f"batch {np.log(bbatch / a) / np.log(max(SCALING_BATCHES) / BATCH):.2f}")
            lines.append(f"- {k}: " + (", ".join(parts) or "n/a"))
    lines += ["", "![bare step per framework](assets/benchmark_steps.png)", ""]
    if results["scaling"]:
        lines += ["![scaling](assets/benchmark_scaling.png)", ""]
    return "\n".join(lines)


def figures(results, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps, labels = list(results["steps"]), args.frameworks
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(steps)), 4))
    w = 0.8 / max(1, len(labels))
    for j, k in enumerate(labels):
        vals = [results["steps"][s].get(k, {}).get("ms", np.nan) for s in steps]
        ax.bar(np.arange(len(steps)) + j * w, vals, w, label=k)
    ax.set_xticks(np.arange(len(steps)) + 0.4 - w / 2, steps, rotation=30, ha="right")
    ax.set_ylabel(f"ms per training iteration ({SIZE}², batch {BATCH})")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, ASSETS / "benchmark_steps.png")
    if results["scaling"]:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for k in labels:
            for ax, pts in ((axes[0], [(n, BATCH) for n in SCALING_SIZES]),
                            (axes[1], [(SIZE, b) for b in SCALING_BATCHES])):
                px = [n * n * b for n, b in pts]
                ms = [results["scaling"].get(f"{k} {n} {b}", {}).get("ms", np.nan) for n, b in pts]
                ax.plot(px, ms, "o-", label=k)
        for ax, title in zip(axes, (f"input size 64→256, batch {BATCH}", f"batch 1→16, size {SIZE}")):
            lo = np.nanmin([l.get_ydata()[0] for l in ax.get_lines()] or [1])
            x0 = ax.get_lines()[0].get_xdata()[0] if ax.get_lines() else 1
            xs = np.array(ax.get_lines()[0].get_xdata()) if ax.get_lines() else np.array([1])
            ax.plot(xs, lo * xs / x0, "k:", label="∝ pixels")
            ax.set(xscale="log", yscale="log", xlabel="pixels per iteration", title=title,
                   ylabel="ms per iteration")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{args.scaling_step}: bare training step")
        fig.tight_layout()
        save(fig, ASSETS / "benchmark_scaling.png")


def save(fig, path):
    import matplotlib.pyplot as plt
    from common.weights import atomic_write
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def write_markdown(text):
    """Replace the generated part of BENCHMARKS.md, keeping the hand-written text around it."""
    from common.weights import atomic_write
    block = f"{MARK_START}\n{text}\n{MARK_END}"
    if OUT_MD.is_file():
        old = OUT_MD.read_text()
        if MARK_START in old and MARK_END in old:
            head, rest = old.split(MARK_START, 1)
            new = head + block + rest.split(MARK_END, 1)[1]
        else:
            raise UserError(f"{OUT_MD}: the markers {MARK_START} and {MARK_END} are missing; "
                            "put them back around the generated tables (or delete the file).")
    else:
        new = f"# Benchmarks\n\n{block}\n"
    atomic_write(OUT_MD, lambda tmp: tmp.write_text(new))


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        label, step, size, batch = args.worker
        print(json.dumps(bare_step(label, step, int(size), int(batch), args)))
        return
    if args.flops:
        print(json.dumps(count_flops(args.flops[0], int(args.flops[1]))))
        return
    if args.from_results:   # redo the tables and figures of an earlier run, measuring nothing
        try:
            results = json.loads(args.from_results.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{args.from_results}: cannot read a benchmark results.json ({e}); "
                            "give the file a full run wrote, e.g. runs/benchmark/results.json") from None
        for k in ("frameworks", "scaling_step", "iters", "loop_iters", "repeats", "warmup"):
            setattr(args, k, results["args"][k])   # the tables name the run's own settings
    else:
        t0 = time.perf_counter()
        results = measure(args)
        results["seconds"] = time.perf_counter() - t0
        results["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                           if k not in ("out", "worker", "flops")}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = tables(results, args)
    print(text)
    if not args.no_write:
        figures(results, args)
        write_markdown(text)
        print(f"\nwrote {OUT_MD} and assets/benchmark_*.png in {results['seconds']:.0f} s",
              file=sys.stderr)


if __name__ == "__main__":
    main()
