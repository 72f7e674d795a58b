"""Train the same UNet once per --loss and compare what each loss learns.

    python compare_losses.py                        # PyTorch UNet, 500 iterations per loss
    python compare_losses.py --iters 300 --losses ce,dice,focal
    python compare_losses.py --framework chainer    # any column: the losses are the same

The lesson behind README's "Choosing a loss". Each run is the step script's
own command line, one after another (never in parallel: each already uses
every core):

    python <framework>/06_unet.py --loss L --iters N --seed S --out runs/losses/<framework>/<L>

so everything but the loss is the same: initial weights, batches, flips,
schedule. A finished run with the same options is reused unless --force.
Writes to --out (default runs/losses/):

    report.md           per-class IoU, mean IoU, pixel accuracy, test loss, time per loss
    losses.png          per-class IoU, one bar per loss (--figure copies it, e.g. to assets/)
    predictions.png     input | truth | each loss's prediction, on the first test images
    <framework>/<L>/    each run's own outputs (metrics.json, weights.npz, ...)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from common import REPO, RUNS, data, synth, viz
from common.cli import LOSSES
from common.errors import UserError, exit_on_user_error
from common.frameworks import environment
from common.runner import fmt
from common.weights import load_npz

FRAMEWORKS = ("pytorch", "tensorflow", "keras", "chainer", "keras-torch")
STEP = "06_unet"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--losses", default=",".join(LOSSES),
                   help=f"comma-separated losses (default: {','.join(LOSSES)})")
    p.add_argument("--framework", choices=FRAMEWORKS, default="pytorch",
                   help="which column trains (default: pytorch)")
    p.add_argument("--iters", type=int, default=500, help="iterations per loss (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--out", type=Path, default=RUNS / "losses",
                   help="output folder (default: runs/losses)")
    p.add_argument("--figure", type=Path, default=None,
                   help="also copy the IoU bar chart here, e.g. assets/losses.png (default: none)")
    p.add_argument("--force", action="store_true", help="rerun finished runs (default: reuse)")
    args = p.parse_args(argv)
    args.losses = [s.strip() for s in args.losses.split(",") if s.strip()]
    unknown = [s for s in args.losses if s not in LOSSES]
    if unknown or not args.losses:
        raise UserError(f"--losses {','.join(unknown) or '(empty)'}: choose from {','.join(LOSSES)}")
    return args


def command(args, loss, out):
    framework = "keras" if args.framework == "keras-torch" else args.framework
    cmd = [sys.executable, str(REPO / framework / f"{STEP}.py"), "--loss", loss,
           "--iters", str(args.iters), "--seed", str(args.seed), "--out", str(out)]
    if framework == "keras":
        cmd += ["--backend", "torch" if args.framework == "keras-torch" else "tensorflow"]
    return cmd


def finished(out, args, loss):
    """metrics.json of a finished run with these options, or None."""
    try:
        m = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    o = m.get("options", {})
    same = (o.get("loss") == loss and o.get("iters") == args.iters and o.get("seed") == args.seed
            and not o.get("dry_run") and not o.get("init_from"))
    return m if same else None


def train_all(args):
    """{loss: metrics} for every loss, training the ones not finished yet."""
    results = {}
    for loss in args.losses:
        out = args.out / args.framework / loss
        m = None if args.force else finished(out, args, loss)
        if m is None:
            print(f"--loss {loss}: training ({args.iters} iterations) -> {out}", file=sys.stderr)
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            if subprocess.run(command(args, loss, out), env=env, cwd=REPO).returncode != 0:
                raise UserError(f"--loss {loss}: the run failed (its message is above)")
            m = finished(out, args, loss)
        else:
            print(f"--loss {loss}: reusing {out}", file=sys.stderr)
        results[loss] = m
    return results


def report(args, results):
    """report.md, losses.png, predictions.png in --out."""
    classes = next(iter(results.values()))["classes"]
    head = (["loss"] + [f"IoU {c}" for c in classes]
            + ["mean IoU", "pixel acc.", "test loss", "s/run"])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss, m in results.items():
        cells = [f"`{loss}`"] + [fmt(m["per_class_iou"][c]) for c in classes]
        cells += [fmt(m["mean_iou"]), fmt(m["pixel_accuracy"]), fmt(m["test_loss"]),
                  f"{m['seconds']:.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    env = environment()
    framework = "keras" if args.framework == "keras-torch" else args.framework
    any_m = next(iter(results.values()))
    text = [f"# Losses compared: {args.framework} {STEP}, {args.iters} iterations each", "",
            *rows, "",
            f"Seed {args.seed}, size {any_m['options']['size']}, batch {any_m['options']['batch_size']}, "
            f"lr {any_m['options']['lr']}, {any_m['train_images']} training and "
            f"{any_m['test_images']} test images; IoU on the test split. "
            "Test loss: each run's own loss, so the column is not comparable across rows.",
            f"Made {datetime.now(timezone.utc).date()} on {env['processor']}, {env['cpu_count']} CPUs, "
            f"Python {env['python']}, {framework} {env.get(framework)}.", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text("\n".join(text))
    chart = viz.save_bar_chart(
        args.out / "losses.png",
        {loss: m["per_class_iou"] for loss, m in results.items()},
        ylabel="IoU on the test split",
        title=f"{args.framework} UNet, {args.iters} iterations, one run per --loss")
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, args.figure)

    # the predictions themselves, on the first test images
    shown = min(6, any_m["test_images"])
    test = data.load_split(synth.ensure_dataset(), "test", any_m["options"]["size"], limit=shown)
    preds = {}
    for loss in results:
        arrays, _ = load_npz(args.out / args.framework / loss / "predictions.npz")
        preds[loss] = arrays["pred"][:len(test)]
    viz.save_comparison_grid(args.out / "predictions.png", test.images, test.masks, preds,
                             test.palette, list(test.classes),
                             title=f"{args.framework} UNet, one column per --loss")
    print("\n".join(rows), file=sys.stderr)
    print(f"-> {args.out / 'report.md'}, {chart}", file=sys.stderr)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    results = train_all(args)
    report(args, results)
    return results


if __name__ == "__main__":
    main()
