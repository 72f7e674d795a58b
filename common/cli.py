"""The one command line every step script shares.

    python pytorch/06_unet.py --iters 200 --out runs/try1
    python keras/06_unet.py --backend torch --dry-run

Flags are kebab-case and identical in the four frameworks; a step may add its
own (UNet: --depth, --width). Out-of-range values are rejected by argparse
(exit status 2) with the value and the allowed range. An --out that already
holds a run needs --resume or --overwrite (common/outdir.py).
"""
import argparse
import copy
import math
from pathlib import Path

from common import RUNS, recipes
from common.augment import NAMES as AUGMENTS
from common.data import dataset_path
from common.recipes import RECIPES
from common.losses import NAMES as LOSSES


def _number(kind, lo=None, hi=None, lo_open=False, what="a number"):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite; give {what}")
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            low = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
            high = "" if hi is None else f"<= {hi}"
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: give {what} {' and '.join(x for x in (low, high) if x)}")
        return value
    return parse


def build_parser(step: str, framework: str, description: str | None = None,
                 add_arguments=None, out_label: str | None = None) -> argparse.ArgumentParser:
    """The shared parser; add_arguments(parser) adds a step's own flags."""
    p = argparse.ArgumentParser(
        prog=f"{framework}/{step}.py", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=dataset_path, default=None, metavar="DIR",
                   help="dataset root, original exercise layout (train/ and test/ with images/ and "
                        "seg_images/) or Pascal VOC, or 'imori': the original course's 16 real "
                        "photos (datasets/imori, 12 to train on, 4 to test) (default: the "
                        "embedded synthetic newts, generated into data/ on first use)")
    p.add_argument("--size", type=_number(int, 8, 2048, what="an image side in pixels"), default=64,
                   help="images are resized to SIZE x SIZE (default: 64)")
    p.add_argument("--iters", type=_number(int, 0, 10_000_000, what="an iteration count"), default=500,
                   help="training iterations; 0 = evaluate only (default: 500)")
    p.add_argument("--batch-size", type=_number(int, 1, 4096, what="a batch size"), default=4,
                   help="images per training batch (default: 4)")
    p.add_argument("--lr", type=_number(float, 0, 10, lo_open=True, what="a learning rate"),
                   default=0.01, help="SGD learning rate (default: 0.01)")
    p.add_argument("--lr-schedule", choices=("constant", "poly"), default="constant",
                   help="constant --lr, or poly: lr * (1 - iteration / iters) ** 0.9, DeepLab's "
                        "policy (default: constant)")
    p.add_argument("--momentum", type=_number(float, 0, 0.999, what="a momentum"), default=0.9,
                   help="SGD momentum (default: 0.9)")
    p.add_argument("--loss", choices=LOSSES, default="ce",
                   help="training loss: cross-entropy, soft Dice, soft Jaccard (IoU), focal "
                        "(gamma 2) or 0.5 dice + 0.5 ce; for binarisation 'ce' is sigmoid binary "
                        "cross-entropy; definitions in common/losses.py (default: ce)")
    p.add_argument("--seed", type=_number(int, 0, 2**31 - 1, what="a seed"), default=0,
                   help="seed for initial weights, batch order and flips (default: 0)")
    p.add_argument("--perturb-init", type=_number(float, 0, 1e-3, what="a relative perturbation"),
                   default=0.0, metavar="EPS",
                   help="multiply every initial weight by (1 + EPS * N(0, 1)): the same start a "
                        "rounding error away, for measuring the noise floor of training "
                        "(compare.py --noise-floor uses 1e-7) (default: 0, the seed's weights)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal/vertical flips while training (default: on); "
                        "--no-flip is --augment none")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="training augmentation, the same in every framework (common/augment.py): "
                        "none; flip (the exercise's); photos: flips, scale, shift, rotation and "
                        "colour with albumentations, for small sets of real photos "
                        "(default: flip, or none with --no-flip)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="a measured set of options (common/recipes.py); flags given on the "
                        "command line win. photos: " + recipes.describe("photos"))
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help=f"output folder (default: runs/{out_label or framework}/{step})")
    p.add_argument("--device", default="auto",
                   help="auto, cpu, or gpu / cuda[:N] (default: auto = GPU when one is visible)")
    p.add_argument("--dry-run", action="store_true",
                   help="2 iterations on 8 training and 4 test images, all outputs written")
    p.add_argument("--init-from", type=Path, default=None, metavar="FILE.npz",
                   help="start from neutral weights written by any framework's run of this step")
    p.add_argument("--predict", type=Path, default=None, metavar="PHOTO_OR_FOLDER",
                   help="no training: segment these photos (any size) with --init-from's weights "
                        "and write <name>_mask.png, <name>_overlay.png and predictions.npz into "
                        f"--out (default: runs/{out_label or framework}/{step}_predict)")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out/checkpoint.npz (same options) after an interruption")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its files are deleted when this run "
                        "writes its first file); without it, an --out holding a run is refused")
    p.add_argument("--eval-every", type=_number(int, 0, what="an iteration count"), default=0,
                   help="score the test split every N iterations (metrics.json eval_curve, "
                        "eval_iou.png); it changes nothing in the training (default: 0 = at "
                        "the end only)")
    p.add_argument("--checkpoint-every", type=_number(int, 1, what="an iteration count"),
                   default=100, help="write --out/checkpoint.npz every N iterations (default: 100)")
    if add_arguments:
        add_arguments(p)
    return p


def parse_args(step: str, framework: str, argv=None, description=None, add_arguments=None,
               out_label: str | None = None):
    """Parse argv; apply --recipe, resolve --augment, fill in the default --out
    (runs/<out_label or framework>/<step>)."""
    parser = build_parser(step, framework, description, add_arguments, out_label)
    args = resolve(parser, parser.parse_args(argv), argv)
    if args.out is None:
        args.out = RUNS / (out_label or framework) / (f"{step}_predict" if args.predict else step)
    return args


def resolve(parser, args, argv):
    """Apply --recipe to the options not given, and settle --augment against --flip."""
    given = _given(parser, argv)
    args.given_options = given
    if args.recipe:
        for name, value in RECIPES[args.recipe].items():
            if name not in given:
                setattr(args, name, value)
    if args.augment is None:
        args.augment = "flip" if args.flip else "none"
    elif not args.flip and args.augment != "none":
        source = (f"--augment {args.augment}" if "augment" in given else
                  f"--recipe {args.recipe} (which sets --augment {args.augment})")
        parser.error(f"--no-flip and {source} contradict each other: --no-flip means "
                     f"--augment none; give one of them, or --augment none with the recipe")
    args.flip = args.augment != "none"
    return args


def _given(parser, argv) -> set:
    """The options written on the command line (dest names), defaults left out."""
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_known_args(argv)[0]))
