"""Pictures: prediction grids, probability maps, loss curves, bar charts.

Everything here takes NumPy arrays and writes an image file; nothing opens a
window, so it runs the same on a laptop, a server and CI.

Shapes used throughout:
    images   float [N, H, W, 3] in [0, 1]   (uint8 [N, H, W, 3] also accepted)
    truth    integer class indices [N, H, W]; ignore_index marks unlabelled pixels
    pred     integer class indices [N, H, W] (argmax of the logits)
    probs    float [N, H, W], probability of the foreground class (binary lesson)
    palette  [K, 3] RGB colours 0..255, one per class index (common.palette.PALETTE,
             VOC_PALETTE); indices outside it, like VOC's 255, are drawn in
             common.palette.IGNORE_COLOUR

Files are written atomically (temporary file in the same folder, then
os.replace), so a reader never sees half a PNG.
"""
import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless backend: must be chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from common.palette import IGNORE_COLOUR, index_to_rgb  # noqa: E402

DPI = 100
CELL_INCHES = 2.0                # width of one picture in a grid (200 px at DPI 100)
CORRECT_COLOUR = (48, 48, 48)    # error map: right prediction (dark grey)
WRONG_COLOUR = (255, 0, 0)       # error map: wrong prediction (red)
# Unlabelled pixels are drawn in common.palette.IGNORE_COLOUR (VOC's light cream-grey).
# Fixed line/bar colours for the four frameworks, so they look the same in every plot.
SERIES_COLOURS = {"pytorch": "tab:blue", "tensorflow": "tab:orange",
                  "keras": "tab:green", "chainer": "tab:red"}


# ----------------------------------------------------------------------------
# Arrays -> RGB pictures
# ----------------------------------------------------------------------------

def _as_float_image(image, name="image"):
    """float [H, W, 3] or uint8 [H, W, 3] (also grey [H, W]) -> float64 [H, W, 3] in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} must be [H, W, 3] (channels last), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image / 255.0
    image = image.astype(np.float64)
    lo, hi = float(image.min()), float(image.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} values must lie in [0, 1] (float) or 0..255 (uint8), got {lo:.3g}..{hi:.3g}; "
                         "undo any mean/std normalisation before plotting")
    return image.clip(0.0, 1.0)


def _as_palette(palette):
    """[K, 3] colours 0..255 -> uint8 [K, 3]."""
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"palette must be [K, 3] RGB colours, got shape {palette.shape}")
    return palette.astype(np.uint8)


def _labelled(truth, ignore_index):
    """bool mask of pixels that carry a label."""
    return np.ones(truth.shape, bool) if ignore_index is None else truth != ignore_index


def overlay(image, index, palette, alpha=0.5) -> np.ndarray:
    """Blend class colours over a picture: uint8 [H, W, 3].

    image: float [H, W, 3] in [0, 1] or uint8 [H, W, 3]; index: class indices [H, W].
    Background (index 0) and indices outside the palette (VOC's 255 "ignore")
    keep the image as it is; a pixel of class c becomes
    (1 - alpha) * image + alpha * palette[c], rounded, in 0..255.
    """
    img = _as_float_image(image) * 255.0
    index = np.asarray(index)
    palette = _as_palette(palette)
    if index.shape != img.shape[:2]:
        raise ValueError(f"index shape {index.shape} does not match image shape {img.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    blend = (index > 0) & (index < len(palette))
    out = img.copy()
    out[blend] = (1.0 - alpha) * img[blend] + alpha * palette[index[blend]]
    return np.rint(out).clip(0, 255).astype(np.uint8)


def error_map(truth, pred, ignore_index=None) -> np.ndarray:
    """Where the prediction is wrong: uint8 [H, W, 3] (any leading shape works).

    CORRECT_COLOUR (dark grey) where pred == truth, WRONG_COLOUR (red) where it
    differs, IGNORE_COLOUR (VOC's light cream-grey) where truth == ignore_index.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth shape {truth.shape} does not match pred shape {pred.shape}")
    rgb = np.empty(truth.shape + (3,), np.uint8)
    rgb[truth == pred] = CORRECT_COLOUR
    rgb[truth != pred] = WRONG_COLOUR
    rgb[~_labelled(truth, ignore_index)] = IGNORE_COLOUR
    return rgb


def _pixel_accuracy(truth, pred, ignore_index):
    """Share of labelled pixels predicted right, or None if none is labelled."""
    keep = _labelled(truth, ignore_index)
    return float(np.mean(truth[keep] == pred[keep])) if keep.any() else None


def _percent(acc):
    return "n/a" if acc is None else f"{100 * acc:.1f}%"


# ----------------------------------------------------------------------------
# Figures -> files
# ----------------------------------------------------------------------------

@contextmanager
def _figure(rows=1, cols=1, **kwargs):
    """plt.subplots that always closes its figure, even on an error.

    pyplot keeps every figure alive until it is closed; a training run that
    draws a grid every epoch would otherwise pile them up.
    """
    fig, axes = plt.subplots(rows, cols, layout="constrained", **kwargs)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def _save(fig, path) -> Path:
    """Write fig atomically to path (format from the suffix, PNG if none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder (os.replace cannot cross file systems); keep the suffix so
    # matplotlib picks the format from it: runs/x/grid.tmp-1234.png
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix or '.png'}")
    try:
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # still there only if saving failed
    return path


def _class_legend(fig, palette, class_names, *shown):
    """One legend under the figure: a coloured patch per class that appears in `shown`.

    shown: the index arrays drawn in the figure. Listing only the classes
    present keeps the legend short for 21-class VOC; indices outside the
    palette (VOC's 255) get an "unlabelled" patch.
    """
    palette = _as_palette(palette)
    present = np.unique(np.concatenate([np.ravel(a) for a in shown]))
    handles = [Patch(facecolor=palette[c] / 255.0, edgecolor="black", label=name)
               for c, name in enumerate(class_names) if c in present]
    if ((present < 0) | (present >= len(palette))).any():
        handles.append(Patch(facecolor=np.array(IGNORE_COLOUR) / 255.0, edgecolor="black", label="unlabelled"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)


def _check_grid_inputs(images, truth, palette, class_names, max_rows):
    """Validate the arrays shared by both grids; return (images, truth, rows)."""
    images, truth = np.asarray(images), np.asarray(truth)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [N, H, W, 3] (channels last), got shape {images.shape}")
    if truth.shape != images.shape[:3]:
        raise ValueError(f"truth must be [N, H, W] = {images.shape[:3]}, got shape {truth.shape}")
    if len(images) == 0:
        raise ValueError("no images to plot")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if len(class_names) > len(_as_palette(palette)):
        raise ValueError(f"{len(class_names)} class names but only {len(palette)} palette colours")
    return images, truth, min(len(images), max_rows)


@contextmanager
def _grid_figure(rows, cols, height, width, title):
    """A rows x cols grid of picture axes, CELL_INCHES wide each, room for legend/title."""
    cell_h = CELL_INCHES * height / width
    size = (CELL_INCHES * cols + 0.8, cell_h * rows + 0.9 + 0.3 * bool(title))
    with _figure(rows, cols, squeeze=False, figsize=size) as (fig, axes):
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        if title:
            fig.suptitle(title, fontsize=13)
        yield fig, axes


def save_prediction_grid(path, images, truth, pred, palette, class_names, probs=None,
                         max_rows=8, title=None, ignore_index=None) -> Path:
    """One row per image: input | ground truth | prediction | overlay | error map.

    images: float [N, H, W, 3] in [0, 1]; truth, pred: uint8 [N, H, W];
    palette: [K, 3] colours; class_names: C names (legend). Only the first
    max_rows images are drawn. The row label gives the image's pixel
    accuracy over its labelled pixels (truth != ignore_index).

    probs: optional float [N, H, W], probability of the foreground class
    (class 1, binary lesson). Adds two columns: the probability map (viridis,
    0 = dark purple, 1 = yellow, with a colour bar) and its threshold p > 0.5
    in the palette colours (strictly greater, as argmax over two classes
    breaks ties towards background).
    """
    images, truth, rows = _check_grid_inputs(images, truth, palette, class_names, max_rows)
    pred = np.asarray(pred)
    if pred.shape != truth.shape:
        raise ValueError(f"pred must have the shape of truth {truth.shape}, got {pred.shape}")
    titles = ["input", "ground truth", "prediction", "prediction over input", "errors (red)"]
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != truth.shape:
            raise ValueError(f"probs must be [N, H, W] = {truth.shape} (foreground probability), "
                             f"got shape {probs.shape}")
        titles += ["P(foreground)", "P > 0.5"]
        above = (probs > 0.5).astype(np.uint8)  # class 1 where P > 0.5, else background

    with _grid_figure(rows, len(titles), truth.shape[1], truth.shape[2], title) as (fig, axes):
        for r in range(rows):
            image = _as_float_image(images[r], f"images[{r}]")
            pictures = [image,
                        index_to_rgb(truth[r], palette),
                        index_to_rgb(pred[r], palette),
                        overlay(image, pred[r], palette),
                        error_map(truth[r], pred[r], ignore_index)]
            for ax, picture in zip(axes[r], pictures):
                ax.imshow(picture, interpolation="nearest")
            if probs is not None:
                prob_image = axes[r, 5].imshow(probs[r], cmap="viridis", vmin=0.0, vmax=1.0,
                                               interpolation="nearest")
                axes[r, 6].imshow(index_to_rgb(above[r], palette), interpolation="nearest")
            acc = _pixel_accuracy(truth[r], pred[r], ignore_index)
            axes[r, 0].set_ylabel(f"image {r}\naccuracy {_percent(acc)}", fontsize=10)
        for ax, column in zip(axes[0], titles):
            ax.set_title(column, fontsize=10)
        if probs is not None:  # one colour bar for the whole probability column
            fig.colorbar(prob_image, ax=axes[:, 5], location="right", shrink=min(1.0, 2.0 / rows), pad=0.02)
        drawn = [truth[:rows], pred[:rows]] + ([] if probs is None else [above[:rows]])
        _class_legend(fig, palette, class_names, *drawn)
        return _save(fig, path)


def save_comparison_grid(path, images, truth, preds: dict, palette, class_names,
                         max_rows=8, title=None, ignore_index=None) -> Path:
    """One row per image: input | ground truth | one column per entry of preds.

    preds: name -> uint8 [N, H, W] predictions, e.g. {"pytorch": ..., "keras": ...};
    the name is the column title and each cell's pixel accuracy is written under it.
    Other arguments as in save_prediction_grid.
    """
    images, truth, rows = _check_grid_inputs(images, truth, palette, class_names, max_rows)
    if not preds:
        raise ValueError("preds is empty: give at least one name -> [N, H, W] prediction")
    preds = {name: np.asarray(p) for name, p in preds.items()}
    for name, p in preds.items():
        if p.shape != truth.shape:
            raise ValueError(f"preds[{name!r}] must have the shape of truth {truth.shape}, got {p.shape}")

    titles = ["input", "ground truth", *preds]
    with _grid_figure(rows, len(titles), truth.shape[1], truth.shape[2], title) as (fig, axes):
        for r in range(rows):
            axes[r, 0].imshow(_as_float_image(images[r], f"images[{r}]"), interpolation="nearest")
            axes[r, 0].set_ylabel(f"image {r}", fontsize=10)
            axes[r, 1].imshow(index_to_rgb(truth[r], palette), interpolation="nearest")
            for ax, p in zip(axes[r, 2:], preds.values()):
                ax.imshow(index_to_rgb(p[r], palette), interpolation="nearest")
                acc = _pixel_accuracy(truth[r], p[r], ignore_index)
                ax.set_xlabel(f"accuracy {_percent(acc)}", fontsize=9)
        for ax, column in zip(axes[0], titles):
            ax.set_title(column, fontsize=10)
        _class_legend(fig, palette, class_names, truth[:rows], *(p[:rows] for p in preds.values()))
        return _save(fig, path)


def _series_colour(name, i):
    """The framework's fixed colour, else the i-th colour of matplotlib's cycle."""
    return SERIES_COLOURS.get(str(name).lower(), f"C{i % 10}")


def ema(values, smooth):
    """Exponential moving average: e_0 = v_0, e_t = smooth * e_{t-1} + (1 - smooth) * v_t.

    smooth in [0, 1): 0 returns the values, 0.9 averages over roughly the last
    10 points (TensorBoard's "smoothing" slider). Non-finite values (a loss
    that blew up) are skipped: the average keeps its last value there.
    """
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    out, e = [], None
    for v in values:
        v = float(v)
        if np.isfinite(v):
            e = v if e is None else smooth * e + (1.0 - smooth) * v
        out.append(np.nan if e is None else e)
    return out


def save_curves(path, curves: dict, ylabel="loss", title=None, logy=False, smooth=0) -> Path:
    """Several labelled lines on one plot; x axis "iteration".

    curves: name -> (iterations list[int], values list[float]), e.g. one loss
    curve per framework. logy: logarithmic y axis. smooth in [0, 1): if > 0,
    each curve is drawn faintly and its exponential moving average (see ema)
    on top in the same colour.
    """
    if not curves:
        raise ValueError("curves is empty: give at least one name -> (iterations, values)")
    for name, (xs, ys) in curves.items():
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r}: {len(xs)} iterations but {len(ys)} values")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")

    with _figure(figsize=(7, 4.5)) as (fig, ax):
        for i, (name, (xs, ys)) in enumerate(curves.items()):
            color = _series_colour(name, i)
            if smooth > 0:
                ax.plot(xs, ys, color=color, alpha=0.25, linewidth=1)
                ax.plot(xs, ema(ys, smooth), color=color, linewidth=2, label=f"{name} (smoothed {smooth:g})")
            else:
                ax.plot(xs, ys, color=color, linewidth=1.5, label=str(name))
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3, which="both" if logy else "major")
        ax.legend()
        if title:
            ax.set_title(title)
        return _save(fig, path)


def save_bar_chart(path, values: dict, ylabel, title=None) -> Path:
    """Grouped bars: values = {series: {category: value}}.

    E.g. {"cross-entropy": {"background": 0.97, "newt": 0.71}, "dice": {...}}
    draws, for each class on the x axis, one bar per loss (legend). A missing
    category or a None value (an undefined IoU) leaves a gap marked "n/a".
    """
    if not values:
        raise ValueError("values is empty: give at least one series -> {category: value}")
    categories = list(dict.fromkeys(c for series in values.values() for c in series))
    x = np.arange(len(categories))
    width = 0.8 / len(values)
    n_bars = len(values) * len(categories)
    few = n_bars <= 40  # write the numbers on the bars while they still fit

    with _figure(figsize=(max(6.0, 1.5 + 0.3 * n_bars) + 1.5, 4.5)) as (fig, ax):
        for i, (name, series) in enumerate(values.items()):
            offsets = x - 0.4 + width * (i + 0.5)
            heights = [series.get(c) for c in categories]
            defined = np.array([h is not None for h in heights], dtype=bool)
            bars = ax.bar(offsets[defined], [float(h) for h in heights if h is not None], width,
                          label=str(name), color=_series_colour(name, i))
            if few:
                ax.bar_label(bars, fmt="%.2f", fontsize=8)
            for xpos in offsets[~defined]:
                ax.text(xpos, 0, "n/a", ha="center", va="bottom", fontsize=8, rotation=0 if few else 90)
        many = len(categories) > 6
        ax.set_xticks(x, categories, rotation=30 if many else 0, ha="right" if many else "center")
        ax.set_ylabel(ylabel)
        ax.margins(y=0.12)  # head room for the numbers
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        fig.legend(loc="outside right upper")  # beside the plot: never hides a tall bar
        if title:
            ax.set_title(title)
        return _save(fig, path)
