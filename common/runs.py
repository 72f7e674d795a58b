"""Run folders and the step scripts' command lines: what compare.py and the tools share.

resolve() reads --steps / --frameworks lists; command() is the command line of
one run (`python <framework>/<step>.py ...`, Keras on its backend); finished()
and plan() decide, before anything runs, whether a run folder is reused,
resumed, replaced (--overwrite) or refused (the step scripts' rule,
common/outdir.py); refuse() says which folders and what to do.
"""
import json
import sys

import numpy as np

from common import REPO, cli, outdir, runner, synth
from common.errors import UserError
from common.recipes import RECIPES

# The noise-floor runs (compare.py and tools/compare_losses.py --noise-floor) start from the
# first seed's weights times (1 + PERTURB * N(0, 1)): float32's relative precision
# (common/weights.perturb, the scripts' --perturb-init).
PERTURB = 1e-7


def resolve(text, known, what, flag):
    if text == "all":
        return list(known)
    chosen = []
    for name in (t.strip() for t in text.split(",") if t.strip()):
        matches = [k for k in known if k == name or k.split("_")[0] == name]
        if len(matches) != 1:
            raise UserError(f"{flag}: unknown {what} {name!r}; choose from {', '.join(known)}.")
        chosen.append(matches[0])
    return chosen


def command(label, step, args, out):
    framework = "keras" if label == "keras-torch" else label
    cmd = [sys.executable, str(REPO / framework / f"{step}.py"), "--iters", str(args.iters),
           "--seed", str(args.seed), "--out", str(out)]
    if args.data is not None:
        cmd += ["--data", str(args.data)]
    if getattr(args, "recipe", None):
        cmd += ["--recipe", args.recipe]
    if getattr(args, "perturb_init", 0.0):
        cmd += ["--perturb-init", repr(args.perturb_init)]
    if args.dry_run:
        cmd.append("--dry-run")
    if framework == "keras":
        cmd += ["--backend", "torch" if label == "keras-torch" else "tensorflow"]
    return cmd


def finished(out, args):
    """metrics.json of a finished run with the same schedule, or None."""
    try:
        m = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    o = m.get("options", {})
    recipe = getattr(args, "recipe", None)
    # The options the recipe stands for today: a run made when it stood for others is not it.
    # Options a run recorded before they existed count as their defaults.
    wanted = {k: v for k, v in (RECIPES[recipe] if recipe else {}).items() if k != "iters"}
    wanted.setdefault("lr_schedule", "constant")
    recorded = {"lr_schedule": "constant", **o}
    same_recipe = all(recorded.get(k, v) == v for k, v in wanted.items())
    same = same_recipe and (o.get("iters") == args.iters and o.get("seed") == args.seed
            and o.get("dry_run") == args.dry_run and o.get("recipe") == getattr(args, "recipe", None)
            and o.get("perturb_init", 0.0) == getattr(args, "perturb_init", 0.0)
            and o.get("data") == str(args.data) and not o.get("init_from")
            and o.get("synth_version") == synth.version_for(args.data))
    return m if same else None


def plan(out, cmd, done, force=False, overwrite=False):
    """What to do with one run folder, before anything runs.

    done: metrics of a finished run with the wanted options (finished()), or None.
    Returns ("reuse", metrics), ("run", extra flags for cmd) or ("refuse", what the folder holds):
    a same-options finished run is reused, a same-options interrupted run resumed, anything
    else in the folder replaced (--overwrite) only when force or overwrite.
    """
    if done is not None and not force:
        return "reuse", done
    held = outdir.held_run(out)
    if held is None:
        return "run", []
    if force or overwrite:
        return "run", ["--overwrite"]
    if held["kind"] == "interrupted":
        parser = cli.build_parser("step", "framework")
        script_args = cli.resolve(parser, parser.parse_known_args(cmd[2:])[0], cmd[2:])
        at = runner.resumable(out / "checkpoint.npz", script_args)
        if at is not None and at <= runner.planned_iters(script_args):
            return "run", ["--resume"]
    return "refuse", held["text"]


def refuse(conflicts, flag_out):
    """UserError listing the run folders that hold runs this call would replace."""
    listed = [f"{out} holds {text}" for out, text in conflicts]
    more = f"; ... ({len(listed)} in all)" if len(listed) > 3 else ""
    return UserError(
        f"{len(listed)} run folder(s) hold runs made with other options, which this call would "
        f"replace: {'; '.join(listed[:3])}{more}. Nothing was run. To replace them, add "
        f"--overwrite (finished runs with the same options are still reused); to keep them, "
        f"give another --out (e.g. --out {outdir.free_name(flag_out)}).")


def lead(means: dict, floor=None):
    """Who leads a comparison, and whether the lead is above the noise: the one rule of
    compare.py and tools/compare_losses.py.

    means: {name: [score of each seed]}. None with fewer than two names; else (first,
    second, lead, bars, within): bars are the noise measures the lead is held to, the noise
    floor if measured and, when both have several seeds, twice the standard error of the
    difference of the two means; `within` is the first (name, value) of them the lead does
    not exceed, or None (then the first is marked best).
    """
    if len(means) < 2:
        return None
    ranked = sorted(means, key=lambda k: np.mean(means[k]), reverse=True)
    a, b = means[ranked[0]], means[ranked[1]]
    gap = float(np.mean(a) - np.mean(b))
    bars = [("the noise floor", floor)] if floor is not None else []
    if len(a) > 1 and len(b) > 1:
        bars.append(("2 standard errors", 2 * float(np.sqrt(np.var(a, ddof=1) / len(a)
                                                             + np.var(b, ddof=1) / len(b)))))
    within = next(((name, bar) for name, bar in bars if gap <= bar), None)
    return ranked[0], ranked[1], gap, bars, within
