"""The framework-free training driver every step script ends in.

runner.run() does, in order: check the options, read the data, build the
network through the framework's Trainer, set its initial weights (the shared
seeded initializer, --init-from, or --resume), train with a progress bar and
atomic checkpoints, evaluate with BatchNorm in inference mode, and write

    <out>/metrics.json      scores and timings (keys listed in OUTPUT_KEYS)
    <out>/weights.npz       neutral weights (common.weights)
    <out>/predictions.npz   pred: uint8 [N,H,W] class indices of the test split, reader order
    <out>/predictions.png   input | truth | prediction | overlay | error (+ probability for binary)
    <out>/loss.png          training loss curve
    <out>/eval_iou.png      test mean IoU during training (with --eval-every N)
    <out>/checkpoint.npz    weights + optimizer state + loss history, for --resume

Before any data is read, <out> is checked (common/outdir.py): it must be
writable, and a folder that already holds a run is used only with --resume
(continue it) or --overwrite (replace it). Nothing is written into <out>
before the options and data have been checked, and every file is written
atomically, so a bad input never damages an earlier run.
"""
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import data, interrupt, losses, masks, metrics, synth, viz
from common.errors import UserError
from common.frameworks import environment
from common.outdir import check_out
from common.weights import (atomic_write, check_compatible, init_weights, load_npz, perturb,
                            save_npz)

OUTPUT_KEYS = ("framework", "step", "iters", "final_loss", "test_loss", "mean_iou",
               "per_class_iou", "pixel_accuracy", "ms_per_iter", "params", "seconds")
DRY_RUN = {"iters": 2, "train_images": 8, "test_images": 4}
BINARY_CLASSES = ("background", "newt")
EVAL_BATCH = 16
# Options that must match for --resume to continue the same run.
RESUME_OPTIONS = ("size", "batch_size", "lr", "lr_schedule", "momentum", "loss", "seed", "flip",
                  "augment", "data", "perturb_init")
POLY_POWER = 0.9       # DeepLab's "poly" learning-rate policy: lr * (1 - i / iters) ** 0.9


@dataclass
class Step:
    """What the runner needs to know about a lesson."""
    name: str                       # "06_unet"
    task: str = "multiclass"        # "binary": 1 output channel, sigmoid; "multiclass": softmax
    size_multiple: int = 1          # --size must be divisible by this (2**depth for UNet)
    init: object = None             # optional init(weights: dict) -> dict, e.g. bilinear upsampling
    extra: dict = field(default_factory=dict)   # step options recorded in metrics.json


def check_size(size: int, multiple: int, what: str):
    """UserError with the nearest valid sizes unless size is a multiple of `multiple`."""
    if size % multiple == 0:
        return
    below = max(multiple, size // multiple * multiple)
    above = (size // multiple + 1) * multiple
    raise UserError(f"--size {size} does not fit {what}: the side must be divisible by {multiple}. "
                    f"Use --size {below} or --size {above}.")


def load_data(args, step: Step):
    """Train and test splits (and the class names the network predicts)."""
    root = Path(args.data) if args.data is not None else synth.ensure_dataset()
    train_limit = DRY_RUN["train_images"] if args.dry_run else None
    test_limit = DRY_RUN["test_images"] if args.dry_run else None
    train = data.load_split(root, "train", args.size, limit=train_limit)
    test = data.load_split(root, "test", args.size, limit=test_limit)
    if step.task == "binary":
        classes = BINARY_CLASSES
        palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    else:
        classes, palette = train.classes, train.palette
    return train, test, tuple(classes), palette


def to_targets(y: np.ndarray, task: str, ignore_index):
    """Class indices for the task: binary keeps 0 = background, 1 = any object (masks.to_binary, Q0.1)."""
    if task != "binary":
        return y.astype(np.int32)
    return masks.to_binary(y, ignore_index)


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return data.to_nchw(x) if layout == "NCHW" else np.ascontiguousarray(x)


def predict(trainer, images, targets, task, batch=EVAL_BATCH, ignore_index=None, loss="ce"):
    """Logits (NCHW) of every image with BatchNorm in inference mode, and the --loss over them all.

    The loss is common/losses.py's, over the whole split as if it were one
    batch: Dice and Jaccard are ratios of sums, not means over pixels, so the
    split's value comes from per-class sums added over the batches
    (losses.statistics), not from averaging per-batch losses. For ce and
    focal that is the mean over labelled pixels, as before.
    """
    logits, stats = [], None
    for s in range(0, len(images), batch):
        x = to_layout(images[s:s + batch], trainer.layout)
        y = targets[s:s + batch]
        out, _ = trainer.eval_batch(x, y)
        logits.append(np.asarray(out, np.float32))
        batch_stats = losses.statistics(logits[-1], y, task, ignore_index)
        stats = batch_stats if stats is None else losses.add_statistics(stats, batch_stats)
    logits = np.concatenate(logits)
    test_loss = losses.from_statistics(loss, stats) if stats and stats["count"] else None
    # the lesson's binarize (01_binarization) or to_classes (02_multiclass)
    pred = np.concatenate([trainer.classes(logits[s:s + batch]) for s in range(0, len(logits), batch)])
    probs = 1.0 / (1.0 + np.exp(-logits[:, 0])) if task == "binary" else None   # for predictions.png
    return logits, pred, probs, test_loss


class StopOnSigint:
    """Ctrl-C sets a flag that the loop checks between iterations.

    A KeyboardInterrupt raised in the middle of a step could land after the
    optimizer update but before the loss is recorded, and the checkpoint would
    then not match the history; finishing the current step first avoids that.
    A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:   # not the main thread: keep Python's default behaviour
            self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class Progress:
    """tqdm bar in a terminal; a plain line every `every` iterations in a log file."""

    def __init__(self, start, total, desc, every=50):
        self.tty = sys.stderr.isatty()
        self.every = every
        self.total = total
        self.desc = desc
        self.bar = tqdm(total=total, initial=start, desc=desc, disable=not self.tty,
                        dynamic_ncols=True, leave=True)

    def update(self, i, loss):
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if not self.tty and ((i + 1) % self.every == 0 or i + 1 == self.total):
            print(f"{self.desc}: iter {i + 1}/{self.total} loss {loss:.4f}", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


def save_checkpoint(path, trainer, iteration, history, args, step, framework, evals=()):
    arrays = {f"w/{k}": v for k, v in trainer.get_weights().items()}
    arrays.update({f"opt/{k}": v for k, v in trainer.get_optimizer_state().items()})
    meta = {"step": step.name, "framework": framework, "iteration": iteration,
            "history": history, "options": _options(args), "dry_run": bool(args.dry_run),
            "eval_curve": list(evals)}
    save_npz(path, arrays, meta)


def _augment(args) -> str:
    """--augment (common/augment.py); args made before it existed have only flip."""
    return getattr(args, "augment", None) or ("flip" if getattr(args, "flip", True) else "none")


def lr_at(args, i: int) -> float:
    """The learning rate of iteration i (0-based): --lr, or its poly decay over --iters."""
    if getattr(args, "lr_schedule", "constant") == "constant":
        return args.lr
    return args.lr * (1.0 - i / max(planned_iters(args), 1)) ** POLY_POWER


def _options(args):
    """The options a resumed or reused run must share; the embedded dataset's
    version counts too (a new version draws different images), and so does --iters
    under a schedule that decays over it."""
    o = {k: (str(getattr(args, k)) if k == "data" else
             _augment(args) if k == "augment" else
             getattr(args, k, "constant") if k == "lr_schedule" else
             getattr(args, k, 0.0) if k == "perturb_init" else getattr(args, k))
         for k in RESUME_OPTIONS}
    if o["lr_schedule"] != "constant":
        o["schedule_iters"] = planned_iters(args)
    o["synth_version"] = synth.version_for(args.data)
    return o


def _changed_options(meta, args):
    """The options of args that differ from a checkpoint's meta, in words ([] = it can resume).
    Checkpoints older than the "dry_run" entry are not checked for it."""
    saved = dict(meta.get("options", {}))
    saved.setdefault("lr_schedule", "constant")          # checkpoints from before --lr-schedule
    saved.setdefault("perturb_init", 0.0)                # ... and before --perturb-init
    if "augment" not in saved and "flip" in saved:     # checkpoints from before --augment
        saved["augment"] = "flip" if saved["flip"] else "none"
    words = {"synth_version": "embedded dataset version {} (now {})",
             "schedule_iters": "--iters {} under --lr-schedule poly, which decays over it (now {})"}
    changed = [words.get(k, f"--{k.replace('_', '-')} {{}} (now {{}})").format(saved.get(k), v)
               for k, v in _options(args).items() if saved.get(k) != v]
    if meta.get("dry_run", bool(args.dry_run)) != bool(args.dry_run):
        changed.append(f"--dry-run {'on' if meta['dry_run'] else 'off'} (now "
                       f"{'on' if args.dry_run else 'off'})")
    return changed


def resumable(path, args):
    """The iteration at which `path` (a checkpoint.npz) would continue with --resume and
    these args, or None (no checkpoint, unreadable, or made with other options)."""
    try:
        meta = load_npz(path)[1]
    except UserError:
        return None
    return None if _changed_options(meta, args) else meta.get("iteration")


def load_checkpoint(path, trainer, args, step):
    arrays, meta = load_npz(path)
    weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w/")}
    opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
    check_compatible(trainer.get_weights(), weights, path, step.name, meta)
    changed = _changed_options(meta, args)
    if changed:
        raise UserError(f"{path}: this checkpoint was made with other options: " + ", ".join(changed)
                        + ". Resume with the same options, or start a new run with another "
                        "--out (or replace this one with --overwrite instead of --resume).")
    trainer.set_weights(weights)
    trainer.set_optimizer_state(opt)
    return int(meta["iteration"]), list(meta["history"]), list(meta.get("eval_curve", []))


def _perturbed(weights, args):
    eps = getattr(args, "perturb_init", 0.0)
    return perturb(weights, eps, args.seed) if eps else weights


def planned_iters(args) -> int:
    """The iteration count a run of these args trains to (--dry-run caps it)."""
    return min(args.iters, DRY_RUN["iters"]) if args.dry_run else args.iters


def run(args, step: Step, make_trainer, framework: str, label: str | None = None) -> dict:
    """Train and evaluate one step; returns the metrics dict also written to metrics.json.

    make_trainer(num_outputs, ignore_index) builds the framework's network and Trainer.
    label: the name in reports (e.g. "keras-torch"); defaults to framework.
    """
    t_start = time.perf_counter()
    label = label or framework
    out = Path(args.out)
    check_size(args.size, step.size_multiple, f"step {step.name}")
    iters = planned_iters(args)
    if args.resume and args.init_from:
        raise UserError("--resume and --init-from exclude each other: --resume continues "
                        f"{out / 'checkpoint.npz'}; --init-from starts a new run from a weights file.")
    if iters == 0 and not args.init_from and not args.resume:
        raise UserError(_nothing_to_evaluate(out))
    folder = check_out(out, resume=args.resume, overwrite=getattr(args, "overwrite", False))
    ckpt_path = out / "checkpoint.npz"
    if args.resume and not ckpt_path.is_file():
        raise UserError(f"{ckpt_path}: no checkpoint to resume from. Run without --resume "
                        "first (checkpoints are written every --checkpoint-every iterations "
                        "and on Ctrl-C).")
    if args.init_from:
        init_weights_from, init_meta = load_npz(args.init_from)   # a bad file is found before the data
    interrupt.note = f"{out} is as it was"

    train, test, classes, palette = load_data(args, step)
    ignore = train.ignore_index
    num_outputs = 1 if step.task == "binary" else len(classes)
    trainer = make_trainer(num_outputs, ignore)

    start, history, evals = 0, [], []   # evals: [iteration, test mean IoU, test loss] (--eval-every)
    last_checkpoint = None         # the iteration of this run's newest checkpoint.npz
    if args.resume:
        # the momentum is loaded at the trainer's first lr; Keras and Chainer keep it scaled
        # by lr, and set_lr rescales it to the lr of the iteration the loop resumes at
        start, history, evals = load_checkpoint(ckpt_path, trainer, args, step)
        last_checkpoint = start
        if start > iters:
            raise UserError(f"{ckpt_path} is at iteration {start}, beyond --iters {iters}: "
                            f"resume with --iters {start} or more.")
    elif args.init_from:
        weights, meta = init_weights_from, init_meta
        check_compatible(trainer.get_weights(), weights, args.init_from, step.name, meta)
        trainer.set_weights(_perturbed(weights, args))
    else:
        weights = init_weights({k: v.shape for k, v in trainer.get_weights().items()}, args.seed)
        trainer.set_weights(_perturbed(step.init(weights) if step.init else weights, args))

    batches = data.Batches(train, args.batch_size, args.seed, augment=_augment(args))
    scheduled = getattr(args, "lr_schedule", "constant") != "constant"
    times, loop_times = [], []   # the train step alone; the whole iteration (data, logging, ...)
    progress = Progress(start, iters, f"{label} {step.name}")
    with StopOnSigint() as stop:
        for i in range(start, iters):
            t_loop = time.perf_counter()
            x, y = batches.batch(i)
            if scheduled:
                trainer.set_lr(lr_at(args, i))
            t0 = time.perf_counter()
            loss = float(trainer.train_step(to_layout(x, trainer.layout),
                                            to_targets(y, step.task, ignore)))
            times.append(time.perf_counter() - t0)
            if not math.isfinite(loss):
                progress.close()
                kept = (f"{ckpt_path} from iteration {last_checkpoint} is kept"
                        if last_checkpoint is not None else
                        f"no checkpoint of this run was written, {out} is as it was")
                raise UserError(f"the training loss became {loss} at iteration {i + 1} "
                                f"(--lr {args.lr}); {kept}. Training diverged: try a lower "
                                f"learning rate, e.g. --lr {args.lr / 10:g}.")
            history.append(loss)
            progress.update(i, loss)
            every = getattr(args, "eval_every", 0)
            if every and ((i + 1) % every == 0 or i + 1 == iters):
                # inference mode changes no weight and no BatchNorm statistic: the training
                # that follows is the same as without it (tests/test_augment.py)
                evals.append([i + 1, *_score(trainer, test, step, ignore, classes, args.loss)])
            if stop.requested:
                progress.close()
                folder.before_write()
                save_checkpoint(ckpt_path, trainer, i + 1, history, args, step, framework, evals)
                print(f"\ninterrupted after iteration {i + 1}; saved {ckpt_path}. "
                      f"{_resume_advice(args)}.", file=sys.stderr)
                raise SystemExit(130)
            if (i + 1) % args.checkpoint_every == 0 and i + 1 < iters:
                folder.before_write()
                save_checkpoint(ckpt_path, trainer, i + 1, history, args, step, framework, evals)
                last_checkpoint = i + 1
                interrupt.note = (f"{ckpt_path} from iteration {i + 1} is kept; "
                                  f"{_resume_advice(args).lower()}")
            loop_times.append(time.perf_counter() - t_loop)
    progress.close()
    if iters > start:
        folder.before_write()
        save_checkpoint(ckpt_path, trainer, iters, history, args, step, framework, evals)
        interrupt.note = (f"training finished, {ckpt_path} is kept; {_resume_advice(args).lower()} "
                          "to evaluate and write the outputs")

    y_test = to_targets(test.masks, step.task, ignore)
    _, pred, probs, test_loss = predict(trainer, test.images, y_test, step.task, ignore_index=ignore,
                                        loss=args.loss)
    scores = metrics.evaluate(y_test, pred, len(classes), ignore_index=ignore)

    def median_ms(t):   # the first iteration (tracing, allocation) is left out
        return 1000 * float(np.median(t[1:] if len(t) > 1 else t)) if t else None
    ms = median_ms(times)
    result = {
        "framework": framework,
        "step": step.name,
        "iters": iters,
        "final_loss": history[-1] if history else None,
        "test_loss": test_loss,
        "mean_iou": scores["mean_iou"],
        "per_class_iou": dict(zip(classes, scores["per_class_iou"])),
        "pixel_accuracy": scores["pixel_accuracy"],
        "ms_per_iter": ms,
        "params": int(trainer.num_params()),
        "seconds": None,   # filled in last
        # extensions
        "label": label,
        "task": step.task,
        "loss": args.loss,
        "loss_definition": losses.describe(args.loss),   # formula and constants; test_loss uses it
        "classes": list(classes),
        "ignore_index": ignore,
        "mean_dice": scores["mean_dice"],
        "per_class_dice": dict(zip(classes, scores["per_class_dice"])),
        "confusion_matrix": scores["confusion_matrix"],
        "options": {**_options(args), "iters": args.iters, "dry_run": args.dry_run,
                    "init_from": str(args.init_from) if args.init_from else None,
                    "resumed_from": start or None, "recipe": getattr(args, "recipe", None),
                    "eval_every": getattr(args, "eval_every", 0),
                    **step.extra},
        "train_images": len(train), "test_images": len(test),
        "device": getattr(trainer, "device_name", "cpu"),
        "ms_per_iter_loop": median_ms(loop_times),   # the whole iteration: data, step, logging
                                                     # (and an --eval-every evaluation, if due)
        "loss_curve": history,
        "eval_curve": evals,      # [iteration, test mean IoU, test loss] every --eval-every
        "environment": environment(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    folder.before_write()
    write_outputs(out, trainer, result, test, y_test, pred, probs, classes, palette, step, framework)
    result["seconds"] = time.perf_counter() - t_start
    write_json(out / "metrics.json", result)
    interrupt.note = ""
    print(f"{label} {step.name}: mean IoU {fmt(result['mean_iou'])}, pixel accuracy "
          f"{fmt(result['pixel_accuracy'])}, test loss {fmt(test_loss)} -> {out}", file=sys.stderr)
    return result


def _score(trainer, test, step, ignore, classes, loss):
    """(mean IoU, loss) on the test split now, BatchNorm in inference mode."""
    y = to_targets(test.masks, step.task, ignore)
    _, pred, _, test_loss = predict(trainer, test.images, y, step.task, ignore_index=ignore, loss=loss)
    return metrics.evaluate(y, pred, len(classes), ignore_index=ignore)["mean_iou"], test_loss


def _resume_advice(args):
    """How to continue an interrupted run: the same command plus --resume (minus --overwrite)."""
    return ("Continue with the same command plus --resume"
            + (" and without --overwrite" if getattr(args, "overwrite", False) else ""))


def _nothing_to_evaluate(out):
    """The refusal of --iters 0 without weights: it would score an untrained network."""
    earlier = out / "weights.npz"
    hint = (f" To evaluate the run in {out}, pass --init-from {earlier} and another --out."
            if earlier.is_file() else "")
    return (f"--iters 0 evaluates weights without training, but no weights were given: it "
            f"would score the untrained initial network. Add --init-from FILE.npz (a "
            f"weights.npz written by a run of this step), or give --iters N to train.{hint}")


def fmt(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def write_json(path, obj):
    def write(tmp):
        Path(tmp).write_text(json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n")
    atomic_write(path, write)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def write_outputs(out, trainer, result, test, y_test, pred, probs, classes, palette, step, framework):
    save_npz(out / "weights.npz", trainer.get_weights(),
             {"step": step.name, "framework": framework, "iteration": result["iters"],
              "classes": list(classes), "palette": np.asarray(palette).tolist(),
              "ignore_index": result["ignore_index"],
              "options": result["options"]})
    preds = {"pred": pred, "names": np.array(test.names)}
    if probs is not None:
        preds["probs"] = probs.astype(np.float32)
    save_npz(out / "predictions.npz", preds, {"step": step.name, "framework": framework})
    title = (f"{result['label']} {step.name}: mean IoU {fmt(result['mean_iou'])} "
             f"after {result['iters']} iterations")
    viz.save_prediction_grid(out / "predictions.png", test.images, y_test, pred, palette,
                             list(classes), probs=probs, title=title,
                             ignore_index=result["ignore_index"])
    if result["eval_curve"]:
        its, ious = [e[0] for e in result["eval_curve"]], [e[1] for e in result["eval_curve"]]
        viz.save_curves(out / "eval_iou.png", {result["label"]: (its, ious)},
                        ylabel="test mean IoU", title=title)
    if result["loss_curve"]:
        curve = result["loss_curve"]
        viz.save_curves(out / "loss.png", {result["label"]: (list(range(1, len(curve) + 1)), curve)},
                        ylabel=f"training loss ({result['loss']})", title=title,
                        smooth=0.9 if len(curve) > 20 else 0)
