"""Train the same UNet once per --loss and compare what each loss learns.

    python tools/compare_losses.py                        # PyTorch UNet, 500 iterations per loss
    python tools/compare_losses.py --seeds 0,1,2 --figure assets/losses.png   # the README's table
    python tools/compare_losses.py --iters 300 --losses ce,dice,focal
    python tools/compare_losses.py --framework chainer    # any column: the losses are the same

The lesson behind README's "Choosing a loss". Each run is the step script's
own command line, one after another (never in parallel: each already uses
every core):

    python <framework>/06_unet.py --loss L --iters N --seed S --out runs/losses/<framework>/<L>/seed<S>

so for one seed everything but the loss is the same: initial weights,
batches, flips, schedule. Several --seeds show how much of a difference is
luck (16 test images are few). A finished run with the same options is
reused unless --force, an interrupted one resumed; a run folder holding a run
made with other options is replaced only with --overwrite (run_folders.plan).
Writes to --out (default runs/losses/):

    report.md           per-class IoU (mean over the seeds), mean IoU of each seed, pixel accuracy
    losses.png          per-class IoU, one bar per loss (--figure copies it, e.g. to assets/)
    predictions.png     input | truth | each loss's prediction (first seed, first test images)
    <framework>/<L>/seed<S>/   each run's own outputs (metrics.json, weights.npz, ...)
"""
import argparse
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from common import REPO, RUNS, data, outdir, synth, viz
from common import runs as run_folders
from common.losses import NAMES as LOSSES
from common.errors import UserError, exit_on_user_error
from common.frameworks import COLUMNS, describe_cpu, environment
from common.runner import fmt
from common.weights import load_npz


FRAMEWORKS = COLUMNS
STEP = "06_unet"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--losses", default=",".join(LOSSES),
                   help=f"comma-separated losses (default: {','.join(LOSSES)})")
    p.add_argument("--framework", choices=FRAMEWORKS, default="pytorch",
                   help="which column trains (default: pytorch)")
    p.add_argument("--iters", type=int, default=500, help="iterations per loss (default: 500)")
    p.add_argument("--seeds", default="0",
                   help="comma-separated seeds; every loss is trained once per seed (default: 0)")
    p.add_argument("--noise-floor", action="store_true",
                   help="also train every loss from the first seed's weights perturbed by "
                        "1e-7 (compare.py's noise floor) and mark only differences above it "
                        "(default: off)")
    p.add_argument("--out", type=Path, default=RUNS / "losses",
                   help="output folder (default: runs/losses)")
    p.add_argument("--figure", type=Path, default=None,
                   help="also copy the IoU bar chart here, e.g. assets/losses.png (default: none)")
    p.add_argument("--force", action="store_true",
                   help="rerun every run, replacing finished ones (default: reuse)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace runs made with other options in the run folders (default: "
                        "refuse and list them); finished runs with these options are still reused")
    args = p.parse_args(argv)
    args.losses = [s.strip() for s in args.losses.split(",") if s.strip()]
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {args.seeds}: give whole numbers, e.g. --seeds 0,1,2") from None
    if args.iters < 1:
        raise UserError(f"--iters {args.iters}: give 1 or more iterations (every run trains)")
    if not args.seeds:
        raise UserError("--seeds is empty: give at least one seed, e.g. --seeds 0")
    unknown = [s for s in args.losses if s not in LOSSES]
    if unknown or not args.losses:
        raise UserError(f"--losses {','.join(unknown) or '(empty)'}: choose from {','.join(LOSSES)}")
    return args


def _run(args, seed, perturb=0.0):
    """compare.py's options for one run: the embedded data, full schedule."""
    return argparse.Namespace(iters=args.iters, seed=seed, data=None, dry_run=False,
                              perturb_init=perturb)


def command(args, loss, seed, out, perturb=0.0):
    """compare.py's command line for one run of the step, plus --loss."""
    return (run_folders.command(args.framework, STEP, _run(args, seed, perturb), out)
            + ["--loss", loss])


def finished(out, args, loss, seed, perturb=0.0):
    """metrics.json of a finished run with these options (compare.py's test, plus the loss), or None."""
    m = run_folders.finished(out, _run(args, seed, perturb))
    return m if m is not None and m["options"].get("loss") == loss else None


def run_dir(args, loss, seed, perturb=0.0):
    return args.out / args.framework / loss / ("perturbed" if perturb else f"seed{seed}")


def train_all(args):
    """{loss: [metrics of each seed]}, training the runs not finished yet, one at a time."""
    jobs, conflicts = [], []
    variants = [(seed, 0.0) for seed in args.seeds]
    if getattr(args, "noise_floor", False):
        variants.append((args.seeds[0], run_folders.PERTURB))
    for seed, perturb in variants:
        for loss in args.losses:
            out = run_dir(args, loss, seed, perturb)
            cmd = command(args, loss, seed, out, perturb)
            decision = run_folders.plan(out, cmd, finished(out, args, loss, seed, perturb),
                                        args.force, args.overwrite)
            if decision[0] == "refuse":
                conflicts.append((out, decision[1]))
            jobs.append((seed, perturb, loss, out, cmd, decision))
    if conflicts:
        raise run_folders.refuse(conflicts, args.out)
    results, args.perturbed = {}, {}
    for seed, perturb, loss, out, cmd, (action, detail) in jobs:
        if action == "reuse":
            print(f"--loss {loss} --seed {seed}: reusing {out}", file=sys.stderr)
            m = detail
        else:
            print(f"--loss {loss} --seed {seed}: training ({args.iters} iterations) -> {out}",
                  file=sys.stderr)
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            if subprocess.run(cmd + detail, env=env, cwd=REPO).returncode:
                raise UserError(f"--loss {loss} --seed {seed}: the run failed (see above)")
            m = finished(out, args, loss, seed, perturb)
        if perturb:
            args.perturbed[loss] = m
        else:
            results.setdefault(loss, []).append(m)
    return results


def _mean(values):
    """Mean of the defined values (an IoU is None for a class neither present nor predicted)."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def report(args, results):
    """report.md, losses.png, predictions.png in --out. results: {loss: [metrics per seed]}."""
    first = next(iter(results.values()))[0]
    classes = first["classes"]
    n = len(args.seeds)
    head = (["loss"] + [f"IoU {c}" for c in classes] + ["mean IoU"]
            + ([f"mean IoU, seed {','.join(map(str, args.seeds))}"] if n > 1 else [])
            + ["pixel acc."])
    perturbed = getattr(args, "perturbed", {})
    gaps = {loss: abs(m["mean_iou"] - results[loss][0]["mean_iou"]) for loss, m in perturbed.items()}
    floor = max(gaps.values()) if gaps else None
    if gaps:
        head.insert(-1, f"perturbed - seed {args.seeds[0]}")
    means = {loss: [m["mean_iou"] for m in runs] for loss, runs in results.items()}
    best, verdict = None, ""
    ranking = run_folders.lead(means, floor)   # compare.py's rule
    if ranking is not None:
        top, second, gap, _, within = ranking
        best = None if within else top
        verdict = (f"`{top}` leads `{second}` by {gap:.3f}, within noise "
                   f"({within[0]} {within[1]:.3f})" if within
                   else f"`{top}` leads `{second}` by {gap:.3f}" + (
                       f", above the noise floor {floor:.3f}" if floor is not None else ""))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    iou = {}   # loss -> {class: mean over seeds}, for the chart
    for loss, runs in results.items():
        iou[loss] = {c: _mean([m["per_class_iou"][c] for m in runs]) for c in classes}
        cells = [f"`{loss}`"] + [fmt(iou[loss][c]) for c in classes]
        mean = (f"{np.mean(means[loss]):.3f} ± {np.std(means[loss], ddof=1):.3f}" if n > 1
                else fmt(_mean(means[loss])))
        cells += [f"**{mean}**" if loss == best else mean]
        if n > 1:
            cells += [" / ".join(f"{m['mean_iou']:.2f}" for m in runs)]
        if gaps:
            cells += [f"{gaps[loss]:.3f}" if loss in gaps else "—"]
        cells += [fmt(_mean([m["pixel_accuracy"] for m in runs]))]
        rows.append("| " + " | ".join(cells) + " |")
    env = environment()
    framework = "keras" if args.framework == "keras-torch" else args.framework
    o = first["options"]
    seeds = f"mean over seeds {', '.join(map(str, args.seeds))}" if n > 1 else f"seed {args.seeds[0]}"
    text = [f"# Losses compared: {args.framework} {STEP}, {args.iters} iterations each", "",
            *rows, "",
            *([f"Noise floor (largest |mean IoU of the run from weights perturbed by "
               f"{run_folders.PERTURB:g} - the seed-{args.seeds[0]} run|): {floor:.3f}."]
              if floor is not None else []),
            *([f"{verdict}. **Bold**: a lead above the noise."] if verdict else []), "",
            f"IoU on the test split, {seeds}. Size {o['size']}, batch {o['batch_size']}, "
            f"lr {o['lr']}, {first['train_images']} training and {first['test_images']} test images.",
            f"Made {datetime.now(timezone.utc).date()} on {describe_cpu(env)}, "
            f"Python {env['python']}, {framework} {env.get(framework)}.", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text("\n".join(text))
    chart = viz.save_bar_chart(
        args.out / "losses.png", iou, ylabel="IoU on the test split",
        title=f"{args.framework} UNet, {args.iters} iterations, {seeds}")
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, args.figure)

    # the predictions themselves: first seed, first test images
    shown = min(6, first["test_images"])
    test = data.load_split(synth.ensure_dataset(), "test", o["size"], limit=shown)
    preds = {}
    for loss in results:
        arrays, _ = load_npz(run_dir(args, loss, args.seeds[0]) / "predictions.npz")
        preds[loss] = arrays["pred"][:len(test)]
    viz.save_comparison_grid(args.out / "predictions.png", test.images, test.masks, preds,
                             test.palette, list(test.classes),
                             title=f"{args.framework} UNet, seed {args.seeds[0]}, one column per --loss")
    print("\n".join(rows), file=sys.stderr)
    print(f"-> {args.out / 'report.md'}, {chart}", file=sys.stderr)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    outdir.check_writable(args.out)
    results = train_all(args)
    report(args, results)
    return results


if __name__ == "__main__":
    main()
