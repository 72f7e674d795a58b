"""Train every step in every framework and show the results side by side.

    python compare.py --quick                    # the README's demo: short schedule
    python compare.py                            # the exercise's schedule (500 iterations)
    python compare.py --steps 06_unet --frameworks pytorch,keras-torch --iters 200

Each run is a separate process through the step script's own command line
(`python <framework>/<step>.py --iters N --out ...`), its output kept in a log
file. Finished runs with the same options are reused unless --force; a
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
    runs/<label>/<step>/       each run's own outputs (metrics.json, weights.npz, ...)
    logs/<label>-<step>.log    each run's console output
"""
import argparse
import base64
import html
import os
import subprocess
import sys
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
from common.runs import command, finished, plan, refuse, resolve

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
    if args.frameworks == "installed":
        args.frameworks = [f for f in FRAMEWORKS if installed(f)]
    else:
        args.frameworks = resolve(args.frameworks, LABELS, "framework", "--frameworks")
    return args


def run_all(args, results):
    """Run (or reuse) every step x framework into results {(step, label): result dict}."""
    jobs, conflicts = [], []
    for step in args.steps:
        for label in args.frameworks:
            out = args.out / "runs" / label / step
            framework = "keras" if label == "keras-torch" else label
            backend = "torch" if label == "keras-torch" else "tensorflow"
            if not installed(framework, backend):
                jobs.append((step, label, out, ("not installed", None)))
                continue
            cmd = command(label, step, args, out)
            decision = plan(out, cmd, finished(out, args), args.force, args.overwrite)
            if decision[0] == "refuse":
                conflicts.append((out, decision[1]))
            jobs.append((step, label, out, decision))
    if conflicts:
        raise refuse(conflicts, args.out)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    bar = tqdm(jobs, desc="compare", unit="run", dynamic_ncols=True)
    for step, label, out, (action, detail) in bar:
        bar.set_postfix_str(f"{label} {step}")
        log = args.out / "logs" / f"{label}-{step}.log"
        if action == "not installed":
            results[step, label] = {"status": "not installed", "log": None}
            continue
        if action == "reuse":
            results[step, label] = {"status": "reused", "metrics": detail, "log": log}
            continue
        cmd = command(label, step, args, out) + detail
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            try:
                rc = subprocess.run(cmd, stdout=f,
                                    stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                    timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = f"timeout after {args.timeout:g} s"
        m = finished(out, args) if rc == 0 else None
        if m is None:
            results[step, label] = {"status": "failed", "error": failure(log, rc), "log": log}
            tqdm.write(f"{label} {step}: FAILED ({results[step, label]['error']}); see {log}")
        else:
            results[step, label] = {"status": "ran", "metrics": m, "log": log}
    bar.close()


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


def table_rows(args, results):
    """[(step, label, metrics-or-None, cells-or-reason, is_best)]"""
    rows = []
    for step in args.steps:
        runs = {label: cells(results[step, label]) for label in args.frameworks}
        scored = [m["mean_iou"] for m, _ in runs.values() if m and m["mean_iou"] is not None]
        best = max(scored) if scored else None
        for label, (m, c) in runs.items():
            rows.append((step, label, m, c, m is not None and best is not None
                         and m["mean_iou"] == best and len(scored) > 1))
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


def summary_table(args, rows):
    """Mean IoU, one row per step, one column per framework (markdown lines)."""
    cell = {(step, label): (f"**{c[0]}**" if best else c[0]) if m else "—"
            for step, label, m, c, best in rows}
    return (["Mean IoU on the test split (step × framework):", "",
             "| step | " + " | ".join(args.frameworks) + " |",
             "|---|" + "---:|" * len(args.frameworks)]
            + [f"| {step} | " + " | ".join(cell[step, label] for label in args.frameworks) + " |"
               for step in args.steps])


def publish(args, pngs):
    """Copy report.md and its figures to --assets (for the README)."""
    import shutil
    args.assets.mkdir(parents=True, exist_ok=True)
    for files in pngs.values():
        for p in files:
            shutil.copyfile(p, args.assets / p.name)
    shutil.copyfile(args.out / "report.md", args.assets / "report.md")


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
    intro = (f"{schedule}, seed {args.seed}, dataset: {data_name}. Per-class IoU in class "
             f"order ({' / '.join(classes)}); for 01_binarization: background / newt. "
             f"**Bold**: best mean IoU of the step. Total time {seconds / 60:.1f} min.")
    md = [f"# {title}", "", intro, "", *[f"- {ln}" for ln in environment_lines(results)], "",
          *summary_table(args, rows), "",
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
    logs = [f"- {label} {step}: {r['error']} (log: {os.path.relpath(r['log'], args.out)})"
            for (step, label), r in results.items() if r["status"] == "failed"]
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
