"""Train every step in every framework and show the results side by side.

    python compare.py --quick                    # the README's demo: short schedule
    python compare.py                            # the exercise's schedule (500 iterations)
    python compare.py --steps 06_unet --frameworks pytorch,keras-torch --iters 200
    python compare.py --seeds 0,1,2 --noise-floor  # make full: mean and spread, and the noise floor

Each run is the step script's own command line (`python <framework>/<step>.py
--iters N --out ...`), its output kept in a log file; the runs of one framework
share one process (common/batch.py), which imports the framework once
(--one-process-per-run: a process each). Finished runs with the same options are reused unless --force; a
failing run is reported in the table and the others go on. An interrupted
run with the same options (its checkpoint.npz, no metrics.json) is continued
with the script's --resume. A run folder that holds anything else (a run
made with other options: another schedule, seed, data or dataset version)
is replaced only with --overwrite or --force; otherwise nothing is run and
the folders are listed (the step scripts' rule, common/outdir.py). Writes
to --out (default runs/compare/):

    report.md, report.html     table step x framework, best per row marked, environment
    <step>_predictions.png     input | ground truth | each framework's prediction
    <step>_loss.png            the frameworks' loss curves overlaid
    <step>_eval_iou.png        their test mean IoU during training (runs with --eval-every)
    runs/<label>/<step>/       each run's own outputs (metrics.json, weights.npz, ...), of the
                               first seed; runs/seed-<s>/<label>/<step>/ of the others, and
                               runs/perturbed/<label>/<step>/ the --noise-floor runs
    logs/<label>-<step>.log    each run's console output (seed-<s>-..., perturbed-... likewise)

With several --seeds every cell is the mean and standard deviation over them.
--noise-floor measures how far apart training alone carries two runs that differ
only by rounding: every framework again from the first seed, its initial weights
multiplied by (1 + 1e-7 N(0, 1)) (the scripts' --perturb-init); the floor of a step
is the largest |mean IoU difference| of such a pair. The best framework of a step
is marked only when its lead over the second is larger than the floor and than
twice the standard error of the two means; otherwise the row says "within noise".
"""
import argparse
import base64
import html
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import REPO, RUNS, data, lessons, outdir, synth, viz
from common.errors import UserError, exit_on_user_error
from common.frameworks import COLUMNS, FRAMEWORKS, describe_cpu, environment, installed
from common.data import dataset_path
from common.runner import fmt
from common.recipes import RECIPES, describe as recipe_text
from common.runs import PERTURB, command, finished, lead, plan, refuse, resolve

STEPS = lessons.steps()
LABELS = COLUMNS
QUICK_ITERS = 60     # measured 2026-11-21, 2 idle cores, all four frameworks: 100 took 11.9 min
FULL_ITERS = 500
SHOWN_ROWS = 6


def _shown(path) -> str:
    """A dataset path as the reports show it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def parse_seeds(parser, text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {text!r}: give comma-separated whole numbers, e.g. --seeds 0,1,2")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        parser.error(f"--seeds {text!r}: give distinct seeds >= 0, e.g. --seeds 0,1,2")
    return seeds


def variants(args):
    """The runs of one step and framework: (key suffix, seed, perturbation, run subfolder)."""
    out = [((), args.seeds[0], 0.0, "")]
    out += [(("seed", s), s, 0.0, f"seed-{s}") for s in args.seeds[1:]]
    if args.noise_floor:
        out.append((("perturbed",), args.seeds[0], PERTURB, "perturbed"))
    return out


def for_run(args, seed, perturbation):
    """args as one run sees them (command() and finished() read seed and perturb_init)."""
    return argparse.Namespace(**{**vars(args), "seed": seed, "perturb_init": perturbation})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="all",
                   help=f"comma-separated steps, or all (default: all = {','.join(STEPS)})")
    p.add_argument("--frameworks", default="installed",
                   help="comma-separated from pytorch,tensorflow,keras,chainer,keras-torch "
                        "(keras-torch = Keras 3 on the torch backend); default: every installed "
                        "one of the first four")
    p.add_argument("--quick", action="store_true",
                   help=f"short schedule: {QUICK_ITERS} iterations per run (default: off)")
    p.add_argument("--iters", type=int, default=None,
                   help=f"iterations per run (default: {FULL_ITERS}, or {QUICK_ITERS} with --quick)")
    p.add_argument("--data", type=dataset_path, default=None,
                   help="dataset root, or imori (the course\'s 16 real photos; default: the embedded synthetic newts)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="pass --recipe to every script (common/recipes.py); its iterations "
                        "unless --iters is given")
    p.add_argument("--seed", type=int, default=0, help="seed for every run (default: 0)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds, e.g. 0,1,2: every step and framework is run with "
                        "each, cells show mean and standard deviation (default: --seed alone)")
    p.add_argument("--noise-floor", action="store_true",
                   help=f"also run every step and framework from the first seed's weights "
                        f"perturbed by {PERTURB:g} (relative) and report the noise floor "
                        f"(default: off)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/compare, or runs/compare-quick with --quick, "
                        "so that the demo never meets the full schedule's runs)")
    p.add_argument("--force", action="store_true",
                   help="rerun every run, replacing finished ones (default: reuse)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace runs made with other options in the run folders (default: "
                        "refuse and list them); finished runs with these options are still reused")
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds before a single run is stopped and reported failed (default: 3600)")
    p.add_argument("--assets", type=Path, default=None,
                   help="also copy report.md and the figures here, e.g. assets/compare "
                        "(the README's results come from there)")
    p.add_argument("--dry-run", action="store_true",
                   help="pass --dry-run to every script (2 iterations on a few images)")
    p.add_argument("--one-process-per-run", action="store_true",
                   help="start every run as its own process (default: the runs of a framework "
                        "share one, which imports the framework once; the results are the same)")
    args = p.parse_args(argv)
    if args.iters is None and args.recipe and "iters" in RECIPES[args.recipe] and not args.quick:
        args.iters = RECIPES[args.recipe]["iters"]
    args.iters = args.iters if args.iters is not None else (QUICK_ITERS if args.quick else FULL_ITERS)
    if args.out is None:
        args.out = RUNS / ("compare-quick" if args.quick else "compare")
    if args.iters < 1:
        p.error(f"--iters {args.iters}: give 1 or more iterations (every run trains; a step "
                f"script's --iters 0 evaluates weights given with --init-from)")
    args.steps = resolve(args.steps, STEPS, "step", "--steps")
    args.seeds = parse_seeds(p, args.seeds) if args.seeds else [args.seed]
    args.seed = args.seeds[0]
    if args.frameworks == "installed":
        args.frameworks = [f for f in FRAMEWORKS if installed(f)]
    else:
        args.frameworks = resolve(args.frameworks, LABELS, "framework", "--frameworks")
    return args


def run_all(args, results):
    """Run (or reuse) every step x framework into results {(step, label): result dict}."""
    jobs, conflicts = [], []
    for suffix, seed, perturbation, sub in variants(args):
        run_args = for_run(args, seed, perturbation)
        for step in args.steps:
            for label in args.frameworks:
                out = args.out / "runs" / sub / label / step
                key = (step, label, *suffix)
                framework = "keras" if label == "keras-torch" else label
                backend = "torch" if label == "keras-torch" else "tensorflow"
                if not installed(framework, backend):
                    jobs.append((key, run_args, out, ("not installed", None)))
                    continue
                cmd = command(label, step, run_args, out)
                decision = plan(out, cmd, finished(out, run_args), args.force, args.overwrite)
                if decision[0] == "refuse":
                    conflicts.append((out, decision[1]))
                jobs.append((key, run_args, out, decision))
    if conflicts:
        raise refuse(conflicts, args.out)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(jobs), desc="compare", unit="run", dynamic_ncols=True)
    todo = []
    for key, run_args, out, (action, detail) in jobs:
        step, label = key[:2]
        variant = "-".join(str(k) for k in key[2:])
        log = args.out / "logs" / f"{variant + '-' if variant else ''}{label}-{step}.log"
        if action in ("not installed", "reuse"):
            results[key] = ({"status": "not installed", "log": None} if action == "not installed"
                            else {"status": "reused", "metrics": detail, "log": log})
            bar.update()
            continue
        cmd = command(label, step, run_args, out) + detail
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
        todo.append((key, run_args, out, cmd, log))

    def record(key, run_args, out, log, rc):
        m = finished(out, run_args) if rc == 0 else None
        if m is None:
            results[key] = {"status": "failed", "error": failure(log, rc), "log": log}
            tqdm.write(f"{key[1]} {key[0]}: FAILED ({results[key]['error']}); see {log}")
        else:
            results[key] = {"status": "ran", "metrics": m, "log": log}
        bar.update()

    announce(args, todo)
    spent = args.spent = {}   # label: [seconds, runs], for timing.json (publish)

    def clock(label, t0, runs):
        s = spent.setdefault(label, [0.0, 0])
        s[0] += time.perf_counter() - t0
        s[1] += runs

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if not args.one_process_per_run:   # one process per column: imports once (common/batch.py)
        for label in args.frameworks:
            mine = [j for j in todo if j[0][1] == label]
            if len(mine) < 2:
                continue
            bar.set_postfix_str(f"{label}, {len(mine)} runs in one process")
            t0 = time.perf_counter()
            by_log = {str(j[4]): j for j in mine}

            def done(log, rc):   # as each run of the process ends: the bar moves with it
                key, run_args, out, _, _ = by_log[log]
                record(key, run_args, out, Path(log), rc)
            rcs = run_batch(args, label, mine, env, done)
            clock(label, t0, len(rcs))
            todo = [j for j in todo if str(j[4]) not in rcs]   # the rest: one process each
    for key, run_args, out, cmd, log in todo:
        bar.set_postfix_str(f"{key[1]} {key[0]} {'-'.join(map(str, key[2:]))}".strip())
        t0 = time.perf_counter()
        with open(log, "a") as f:
            try:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                    timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = f"timeout after {args.timeout:g} s"
        clock(key[1], t0, 1)
        record(key, run_args, out, log, rc)
    bar.close()


# ------------------------------------------------------------------ expected duration
TIMING = "timing.json"   # written next to a published report (--assets): what its runs took


def calibrate(repeats: int = 7) -> float:
    """Seconds for a fixed NumPy workload (10 products of 1024x1024 float32 matrices, 0.12 s
    on the reference machine; 384x384 took 12 ms, too short to time steadily), the fastest of
    `repeats` (the median moved 0.12-0.19 s between processes on the idle machine, the fastest
    0.114-0.117 but once 0.174): how fast this CPU is against the machine a timing.json was
    made on.
    It tracks the processor (cores, clock, AVX-512 or not in BLAS), not each framework's
    kernels: an estimate, not a promise."""
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ a
        times.append(time.perf_counter() - t0)
    return float(min(times))


def reference_timing(args):
    """The timing.json of a published report made with this schedule, or None."""
    for folder in ("compare-quick", "compare"):
        try:
            ref = json.loads((REPO / "assets" / folder / TIMING).read_text())
        except (OSError, ValueError):
            continue
        if ref.get("iters") == args.iters and ref.get("dry_run") == args.dry_run \
                and args.data is None and not getattr(args, "recipe", None):
            return ref
    return None


def announce(args, todo):
    """Print the expected duration of the runs to do, scaled from a published report's."""
    ref = reference_timing(args)
    if not todo or ref is None:
        return
    per_label = {}
    for key, *_ in todo:
        per_label[key[1]] = per_label.get(key[1], 0) + 1
    known = {k: n for k, n in per_label.items() if ref["labels"].get(k, {}).get("runs")}
    seconds = sum(ref["labels"][k]["seconds"] / ref["labels"][k]["runs"] * n
                  for k, n in known.items())
    factor = calibrate() / ref["calibration_s"]
    missing = sorted(set(per_label) - set(known))
    eta = seconds * factor
    eta = f"about {eta / 60:.0f} min" if eta >= 90 else f"about {eta:.0f} s"
    tqdm.write(f"expected: {eta} on this machine for {len(todo)} "
               f"runs ({seconds / 60:.1f} min on {ref['machine']}, {ref['date']}; this CPU "
               f"is x{factor:.2f} as slow on a NumPy calibration, which tracks the processor, "
               f"not each framework's kernels)"
               + (f"; no reference for {', '.join(missing)}" if missing else ""))


def run_batch(args, label, jobs, env, done=lambda log, rc: None) -> dict:
    """The runs of one column in one process (common/batch.py); {log path: exit status} of the
    runs it reached (a crash or the timeout leaves the others to their own processes).
    done(log, rc) is called as each run ends."""
    spec = {"jobs": [{"framework": "keras" if label == "keras-torch" else label, "step": key[0],
                      "argv": cmd[2:], "log": str(log)} for key, _, _, cmd, log in jobs]}
    path = args.out / "logs" / f"batch-{label}.json"
    path.write_text(json.dumps(spec, indent=1))
    env = {**env, "KERAS_BACKEND": "torch" if label == "keras-torch" else "tensorflow"}
    rcs = {}
    with subprocess.Popen([sys.executable, "-m", "common.batch", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO) as proc:
        watchdog = threading.Timer(args.timeout * len(jobs), proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                try:
                    ended = json.loads(line)
                    rcs[ended["log"]] = ended["rc"]
                except (ValueError, KeyError, TypeError):
                    continue   # anything else the process printed (it should print nothing)
                done(ended["log"], ended["rc"])
        finally:
            watchdog.cancel()
    return rcs


def failure(log, rc):
    """The last 'error:' line of a log, or the exit status."""
    lines = Path(log).read_text(errors="replace").splitlines()
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln]
    return (errors[-1][:200] if errors else f"exit status {rc}")


# ------------------------------------------------------------------ report
def figures(args, results):
    """Per step: comparison grid and overlaid loss curves. Returns {step: [png paths]}."""
    root = args.data if args.data is not None else synth.ensure_dataset()
    limit = 4 if args.dry_run else SHOWN_ROWS
    out = {}
    for step in args.steps:
        ok = {label: results[step, label]["metrics"] for label in args.frameworks
              if "metrics" in results[step, label]}
        if not ok:
            continue
        any_m = next(iter(ok.values()))
        size = any_m["options"]["size"]
        test = data.load_split(root, "test", size, limit=limit)
        binary = any_m["task"] == "binary"
        truth = (test.masks > 0).astype("uint8") if binary else test.masks
        if binary and test.ignore_index is not None:
            truth[test.masks == test.ignore_index] = test.ignore_index
        palette = [[0, 0, 0], [255, 255, 255]] if binary else test.palette
        preds = {}
        for label in ok:
            with np.load(args.out / "runs" / label / step / "predictions.npz") as p:
                preds[label] = p["pred"][:len(test)]
        grid = viz.save_comparison_grid(
            args.out / f"{step}_predictions.png", test.images, truth, preds, palette,
            any_m["classes"], max_rows=limit, title=f"{step}: test images",
            ignore_index=test.ignore_index)
        curves = {label: (list(range(1, len(m["loss_curve"]) + 1)), m["loss_curve"])
                  for label, m in ok.items() if m["loss_curve"]}
        pngs = [grid]
        if curves:
            pngs.append(viz.save_curves(args.out / f"{step}_loss.png", curves,
                                        ylabel=f"training loss ({any_m['loss']})",
                                        title=f"{step}: training loss",
                                        smooth=0.9 if args.iters > 20 else 0))
        evals = {label: ([e[0] for e in m["eval_curve"]], [e[1] for e in m["eval_curve"]])
                 for label, m in ok.items() if m.get("eval_curve")}
        if evals:
            pngs.append(viz.save_curves(args.out / f"{step}_eval_iou.png", evals,
                                        ylabel="test mean IoU", title=f"{step}: test mean IoU "
                                        "during training"))
        out[step] = pngs
    return out


COLUMNS = ("mean IoU", "per-class IoU", "pixel acc.", "params", "ms/iter", "wall s")


def cells(r):
    """Table cells for one run."""
    if "metrics" not in r:
        why = r["status"] if r["status"] != "failed" else f"failed: {r['error']}"
        return None, why
    m = r["metrics"]
    per = " / ".join(fmt(v)[:4] if v is not None else "n/a" for v in m["per_class_iou"].values())
    ms = f"{m['ms_per_iter']:.0f}" if m["ms_per_iter"] else "n/a"
    return m, [fmt(m["mean_iou"]), per, fmt(m["pixel_accuracy"]), f"{m['params']:,}", ms,
               f"{m['seconds']:.0f}"]


def scores(args, results, step, label) -> list:
    """The mean IoU of every seed's finished run of one step and framework."""
    keys = [(step, label)] + [(step, label, "seed", s) for s in args.seeds[1:]]
    return [results[k]["metrics"]["mean_iou"] for k in keys
            if k in results and "metrics" in results[k]
            and results[k]["metrics"]["mean_iou"] is not None]


def noise_floor(args, results, step):
    """Largest |mean IoU of a perturbed run - the same framework's first-seed run|, or None."""
    gaps = []
    for label in args.frameworks:
        a, b = results.get((step, label), {}), results.get((step, label, "perturbed"), {})
        if "metrics" in a and "metrics" in b and None not in (a["metrics"]["mean_iou"],
                                                              b["metrics"]["mean_iou"]):
            gaps.append(abs(a["metrics"]["mean_iou"] - b["metrics"]["mean_iou"]))
    return max(gaps) if gaps else None


def leader(args, results, step):
    """(best framework or None, words): the best mean is marked only when its lead over the
    second is larger than the noise floor (if measured) and than twice the standard error of
    the difference of the two means (if several seeds)."""
    means = {label: s for label in args.frameworks if (s := scores(args, results, step, label))}
    verdict = lead(means, noise_floor(args, results, step))
    if verdict is None:
        return None, ""
    first, _, gap, bars, within = verdict
    if within:
        return None, f"within noise (lead {gap:.4f} <= {within[0]} {within[1]:.4f})"
    return first, (f"{first} leads by {gap:.4f}" if bars else "")


def table_rows(args, results):
    """[(step, label, metrics-or-None, cells-or-reason, is_best)]"""
    rows = []
    for step in args.steps:
        best, _ = leader(args, results, step)
        for label in args.frameworks:
            m, c = cells(results[step, label])
            rows.append((step, label, m, c, m is not None and label == best))
    return rows


def environment_lines(results):
    env = environment()
    fws = ", ".join(f"{f} {env[f]}" for f in FRAMEWORKS if env.get(f))
    threads = os.environ.get("OMP_NUM_THREADS", "framework default")
    devices = sorted({r["metrics"].get("device", "?") for r in results.values() if "metrics" in r})
    return [f"Python {env['python']}, NumPy {env['numpy']}; {fws}",
            f"Machine: {describe_cpu(env)}, threads: {threads}; "
            f"devices used: {', '.join(devices) or 'none'}",
            f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"]


def summary_cell(args, results, step, label) -> str:
    """Mean IoU of one step and framework: the run's, or mean ± standard deviation over seeds."""
    s = scores(args, results, step, label)
    if not s:
        return "—"
    if len(args.seeds) == 1:
        return fmt(s[0])
    text = f"{np.mean(s):.4f} ± {np.std(s, ddof=1):.4f}" if len(s) > 1 else fmt(s[0])
    return text + (f" (n={len(s)})" if len(s) < len(args.seeds) else "")


def summary_table(args, results, rows):
    """Mean IoU, one row per step, one column per framework (markdown lines)."""
    best = {step: label for step, label, m, c, is_best in rows if is_best}
    noisy = len(args.seeds) > 1 or args.noise_floor
    extra = (["noise floor"] if args.noise_floor else []) + (["verdict"] if noisy else [])
    what = (f"mean ± standard deviation over seeds {', '.join(map(str, args.seeds))}"
            if len(args.seeds) > 1 else f"seed {args.seeds[0]}")
    lines = [f"Mean IoU on the test split (step × framework; {what}):", "",
             "| step | " + " | ".join(args.frameworks + extra) + " |",
             "|---|" + "---:|" * len(args.frameworks) + "---|" * len(extra)]
    for step in args.steps:
        cells_ = []
        for label in args.frameworks:
            c = summary_cell(args, results, step, label)
            cells_.append(f"**{c}**" if best.get(step) == label else c)
        if args.noise_floor:
            floor = noise_floor(args, results, step)
            cells_.append("—" if floor is None else f"{floor:.4f}")
        if noisy:
            cells_.append(leader(args, results, step)[1] or "—")
        lines.append(f"| {step} | " + " | ".join(cells_) + " |")
    return lines


def publish(args, pngs):
    """Copy report.md and its figures to --assets (for the README)."""
    import shutil
    args.assets.mkdir(parents=True, exist_ok=True)
    for files in pngs.values():
        for p in files:
            shutil.copyfile(p, args.assets / p.name)
    shutil.copyfile(args.out / "report.md", args.assets / "report.md")
    spent = {k: {"seconds": round(s, 1), "runs": n} for k, (s, n) in
             getattr(args, "spent", {}).items() if n}
    if spent:   # what the runs made now took, for the next run's expected duration (announce)
        timing = {"date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "machine": describe_cpu(),
                  "calibration_s": round(calibrate(), 4), "iters": args.iters,
                  "dry_run": args.dry_run, "labels": spent,
                  "note": "wall seconds of the runs made (reused runs not counted), process "
                          "starts included; compare.py's announce() scales them"}
        (args.assets / TIMING).write_text(json.dumps(timing, indent=1) + "\n")


def write_report(args, results, pngs, seconds):
    rows = table_rows(args, results)
    classes = next((m["classes"] for _, _, m, _, _ in rows if m and m["task"] != "binary"),
                   ["background", "akahara", "madara"])
    title = "Side-by-side comparison"
    schedule = ("dry run (2 iterations on a few images)" if args.dry_run
                else f"{args.iters} iterations per run")
    data_name = _shown(args.data) if args.data else "embedded synthetic newts"
    if getattr(args, "recipe", None):
        schedule += f", --recipe {args.recipe} ({recipe_text(args.recipe)})"
    seeds = (f"seeds {', '.join(map(str, args.seeds))} (the per-run table: seed {args.seed})"
             if len(args.seeds) > 1 else f"seed {args.seed}")
    noise = (" when its lead is larger than the noise" if len(args.seeds) > 1 or args.noise_floor
             else "")
    floor = (f" Noise floor: the largest |mean IoU difference| between a framework's run and "
             f"the same run started from weights perturbed by {PERTURB:g} (relative)."
             if args.noise_floor else "")
    intro = (f"{schedule}, {seeds}, dataset: {data_name}. Per-class IoU in class "
             f"order ({' / '.join(classes)}); for 01_binarization: background / newt. "
             f"**Bold**: best mean IoU of the step{noise}.{floor} "
             f"Total time {seconds / 60:.1f} min.")
    md = [f"# {title}", "", intro, "", *[f"- {ln}" for ln in environment_lines(results)], "",
          *summary_table(args, results, rows), "",
          "| step | framework | " + " | ".join(COLUMNS) + " |",
          "|---|---|" + "---|" * len(COLUMNS)]
    for step, label, m, c, best in rows:
        if m is None:
            md.append(f"| {step} | {label} | {c} |" + " |" * (len(COLUMNS) - 1))
        else:
            c = [f"**{c[0]}**" if best else c[0]] + c[1:]
            md.append(f"| {step} | {label} | " + " | ".join(c) + " |")
    md.append("")
    for step, files in pngs.items():
        md += [f"## {step}", ""] + [f"![{p.stem}]({p.name})" for p in files] + [""]
    logs = [f"- {' '.join(map(str, (key[1], key[0], *key[2:])))}: {r['error']} "
            f"(log: {os.path.relpath(r['log'], args.out)})"
            for key, r in results.items() if r["status"] == "failed"]
    if logs:
        md += ["## Failed runs", ""] + logs + [""]
    (args.out / "report.md").write_text("\n".join(md))

    # HTML: the same content, images embedded, so it opens offline from anywhere.
    def img(p):
        b64 = base64.b64encode(Path(p).read_bytes()).decode()
        return f'<img alt="{p.stem}" src="data:image/png;base64,{b64}">'
    h = ["<!doctype html><html><head><meta charset='utf-8'>",
         f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         "td:nth-child(-n+2){text-align:left}.best{font-weight:bold;background:#e8f5e9}"
         ".fail{color:#b00}img{max-width:100%}</style></head><body>",
         f"<h1>{title}</h1><p>{html.escape(intro).replace('**Bold**', '<b>Bold</b>')}</p><ul>",
         *[f"<li>{html.escape(ln)}</li>" for ln in environment_lines(results)], "</ul><table><tr>",
         "<th>step</th><th>framework</th>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>"]
    for step, label, m, c, best in rows:
        if m is None:
            h.append(f"<tr><td>{step}</td><td>{label}</td>"
                     f"<td class='fail' colspan='{len(COLUMNS)}'>{html.escape(c)}</td></tr>")
        else:
            cls = " class='best'" if best else ""
            h.append(f"<tr{cls}><td>{step}</td><td>{label}</td>"
                     + "".join(f"<td>{html.escape(v)}</td>" for v in c) + "</tr>")
    h.append("</table>")
    for step, files in pngs.items():
        h += [f"<h2>{step}</h2>"] + [img(p) for p in files]
    h.append("</body></html>")
    (args.out / "report.html").write_text("\n".join(h))


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if not args.frameworks:
        raise UserError("no framework is installed: run `make setup` (all four) or "
                        "`make setup REQS=pytorch` (one).")
    outdir.check_writable(args.out)
    t0 = time.perf_counter()
    results = {}
    try:
        run_all(args, results)
    finally:   # also after Ctrl-C: report what has finished
        if results:
            pngs = figures(args, results)
            write_report(args, results, pngs, time.perf_counter() - t0)
            if args.assets:
                publish(args, pngs)
    failed = sum(r["status"] == "failed" for r in results.values())
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}"
          + (f" ({failed} failed runs)" if failed else ""), file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
