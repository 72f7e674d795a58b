"""Segmentation losses in NumPy: the reference the four frameworks' losses are tested against.

`--loss` picks one of five training losses. Each framework's losses module
(torch_losses, tf_losses, keras_losses, chainer_losses: make_loss) writes them
again with its own ops, with these definitions and these constants (imported from here);
tests/test_losses.py checks that all four equal this file to 1e-5, gradients
included. This file computes in float64 and is written for reading, not speed.

Shapes: logits [B, C, H, W] (NCHW; C = 1 for binarisation), labels y [B, H, W]
of class indices, or ignore_index for unlabelled pixels (VOC's 255).
task "binary": one logit z per pixel, p = sigmoid(z) is the probability of the
foreground, labels 0/1. task "multiclass": p = softmax over the C logits.

A pixel is *labelled* when its label is not ignore_index. Ignored pixels are
dropped before anything is summed: they add nothing to a numerator, a
denominator or a count. (The reference drops them; the frameworks multiply
them by 0, which keeps tensor shapes fixed inside tf.function.)

Two families. Distribution losses score every pixel on its own and average:

    ce       mean over labelled pixels of -log p_t, p_t = the probability given
             to the pixel's true class (binary: p if t = 1, else 1 - p; this is
             sigmoid binary cross-entropy).
    focal    mean over labelled pixels of -(1 - p_t)^gamma log p_t, gamma = 2
             (Lin et al. 2017). Pixels already right (p_t near 1) are weighted
             down. No alpha: the class-balancing factor of the paper (0.25 for
             detection's 1000:1 imbalance) is not used; gamma = 0 gives ce exactly.

Region losses compare whole regions, per class, summed over every labelled
pixel of the batch (the batch is one big image, not a mean of per-image scores):

    I_k = sum p_k t_k        P_k = sum p_k        T_k = sum t_k       (t = one-hot truth)
    dice     dice_k = 2 I_k / max(P_k + T_k, EPS);          loss_k = 1 - dice_k
    jaccard  iou_k  = I_k / max(P_k + T_k - I_k, EPS);      loss_k = 1 - iou_k  (soft IoU)
    loss = mean of loss_k over the classes *present* in the batch (T_k > 0),
           0 when no class is present (an empty binary mask, all pixels ignored).

    Binary: one class only, the foreground: p = sigmoid(z), t = (label == 1).
    The background is not scored, so an all-background batch gives 0 and no
    gradient (a false positive there is not punished by dice or jaccard).
    Multiclass: every class, background included, p = softmax.

    ce+dice  CE_DICE_WEIGHT * dice + (1 - CE_DICE_WEIGHT) * ce, weight 0.5: the
             region term for the overlap, the pixel term for a gradient on every
             pixel (also where dice gives none).

Choices, compared with segmentation_models.pytorch (SMP, losses/dice.py,
jaccard.py, focal.py), whose conventions we follow where they fit:
- Like SMP's DiceLoss / JaccardLoss (from_logits=True, smooth=0, eps=1e-7):
  probabilities from softmax (multiclass) or sigmoid (binary, foreground only),
  sums over the batch and the pixels per class (SMP's dims=(0, 2)), no
  smoothing, the denominator floored at EPS = 1e-7, and a class without a
  true pixel in the batch contributes no loss.
- Unlike SMP, the mean is over the classes present, not over all C: SMP adds a
  0 for every absent class and divides by C, so a batch that shows 2 of 3
  classes has its loss scaled by 2/3; here every batch's loss lies in [0, 1].
- No smoothing is needed: a present class has T_k >= 1, so its denominator is
  at least 1 and EPS never changes its value. EPS only keeps an absent class's
  0 / 0 finite before that class is masked out (and its gradient exactly 0).
- Focal: binary is SMP's FocalLoss(mode="binary", alpha=None, gamma=2).
  Multiclass departs from SMP, which sums a one-vs-rest *sigmoid* focal loss
  over the channels; here it is the softmax focal loss, which is ce at gamma=0.
- Reductions: one scalar per batch; distribution losses divide by the number
  of labelled pixels, floored at 1 (0 labelled pixels -> loss 0, gradient 0).

Every loss is a formula of a few sums over labelled pixels (statistics()),
which is how the runner computes test_loss exactly over a whole test split,
batch by batch: add the sums, then apply the formula (from_statistics()).
"""
import numpy as np

NAMES = ("ce", "dice", "jaccard", "focal", "ce+dice")
TASKS = ("binary", "multiclass")
EPS = 1e-7              # floor of the region losses' denominators (SMP's eps)
FOCAL_GAMMA = 2.0       # focal exponent; no alpha
CE_DICE_WEIGHT = 0.5    # ce+dice = w * dice + (1 - w) * ce


def _pixels(logits, y, task, ignore_index):
    """Labelled pixels as rows: (log p_t [N], probabilities [N, K], one-hot truth [N, K]).

    K = C for multiclass, K = 1 (the foreground) for binary.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 4:
        raise ValueError(f"logits must be [B, C, H, W], got shape {logits.shape}")
    c = logits.shape[1]
    if (task == "binary") != (c == 1):
        raise ValueError(f"task {task!r} with {c} logit channels: binary has 1, multiclass >= 2")
    y = np.asarray(y)
    if y.shape != (logits.shape[0],) + logits.shape[2:]:
        raise ValueError(f"labels {y.shape} do not match logits {logits.shape}: want [B, H, W]")
    z = logits.transpose(0, 2, 3, 1).reshape(-1, c)         # [N, C]: one row per pixel
    y = y.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = y != ignore_index
        z, y = z[keep], y[keep]                              # ignored pixels are gone
    num_labels = 2 if task == "binary" else c
    if y.size and (y.min() < 0 or y.max() >= num_labels):
        raise ValueError(f"labels must be 0..{num_labels - 1} or ignore_index={ignore_index}, "
                         f"got {sorted(set(y.tolist()) - set(range(num_labels)))[:5]}")

    if task == "binary":
        z, t = z[:, 0], (y == 1).astype(np.float64)
        log_pt = -(np.logaddexp(0.0, z) - t * z)             # log sigmoid(z) or log(1 - sigmoid(z))
        probs = np.exp(-np.logaddexp(0.0, -z))[:, None]     # sigmoid(z), [N, 1]
        onehot = t[:, None]
    else:
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))   # log softmax
        log_pt = log_p[np.arange(len(y)), y]
        probs = np.exp(log_p)                                # [N, C]
        onehot = (y[:, None] == np.arange(c)).astype(np.float64)
    return log_pt, probs, onehot


def statistics(logits, y, task, ignore_index=None, gamma=FOCAL_GAMMA) -> dict:
    """The sums every loss here is a formula of (all over labelled pixels).

    count: labelled pixels; ce: sum of -log p_t; focal: sum of
    -(1 - p_t)^gamma log p_t; intersection, predicted, true: per class [K],
    sums of p*t, p and t. Sums of two batches' statistics (add_statistics)
    are the statistics of the two batches together.
    """
    log_pt, probs, onehot = _pixels(logits, y, task, ignore_index)
    return {
        "count": float(len(log_pt)),
        "ce": float(np.sum(-log_pt)),
        "focal": float(np.sum((-np.expm1(log_pt)) ** gamma * -log_pt)),   # 1 - p_t = -expm1(log p_t)
        "intersection": (probs * onehot).sum(axis=0),
        "predicted": probs.sum(axis=0),
        "true": onehot.sum(axis=0),
    }


def add_statistics(a: dict, b: dict) -> dict:
    return {k: a[k] + b[k] for k in a}


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel; 0 if there is none."""
    present = true > 0
    return float(np.sum(1.0 - scores[present]) / max(int(present.sum()), 1))


def from_statistics(name: str, s: dict) -> float:
    """The loss `name` from statistics() (of one batch, or added over many)."""
    n = max(s["count"], 1.0)
    i, p, t = s["intersection"], s["predicted"], s["true"]
    if name == "ce":
        return s["ce"] / n
    if name == "focal":
        return s["focal"] / n
    if name == "dice":
        return _mean_over_present(2 * i / np.maximum(p + t, EPS), t)
    if name == "jaccard":
        return _mean_over_present(i / np.maximum(p + t - i, EPS), t)
    if name == "ce+dice":
        return (CE_DICE_WEIGHT * from_statistics("dice", s)
                + (1 - CE_DICE_WEIGHT) * from_statistics("ce", s))
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(NAMES)}")


def loss(name: str, logits, y, task: str, ignore_index=None) -> float:
    """--loss `name` of one batch: logits [B, C, H, W], labels [B, H, W]."""
    if name not in NAMES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(NAMES)}")
    return from_statistics(name, statistics(logits, y, task, ignore_index))


def cross_entropy(logits, y, task, ignore_index=None) -> float:
    return loss("ce", logits, y, task, ignore_index)


def focal_loss(logits, y, task, ignore_index=None, gamma=FOCAL_GAMMA) -> float:
    return from_statistics("focal", statistics(logits, y, task, ignore_index, gamma))


def dice_loss(logits, y, task, ignore_index=None) -> float:
    return loss("dice", logits, y, task, ignore_index)


def jaccard_loss(logits, y, task, ignore_index=None) -> float:
    return loss("jaccard", logits, y, task, ignore_index)


def ce_dice_loss(logits, y, task, ignore_index=None) -> float:
    return loss("ce+dice", logits, y, task, ignore_index)


def describe(name: str) -> dict:
    """What metrics.json records about the loss: its name, formula and constants."""
    formulas = {
        "ce": "mean over labelled pixels of -log p_t (binary: sigmoid BCE)",
        "focal": "mean over labelled pixels of -(1 - p_t)^gamma log p_t",
        "dice": "mean over classes present in the batch of 1 - 2 I / max(P + T, eps)",
        "jaccard": "mean over classes present in the batch of 1 - I / max(P + T - I, eps)",
        "ce+dice": "weight * dice + (1 - weight) * ce",
    }
    if name not in formulas:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(NAMES)}")
    out = {"name": name, "formula": formulas[name], "reference": "common/losses.py"}
    if name in ("dice", "jaccard", "ce+dice"):
        out.update(eps=EPS, smooth=0.0, region_sums="per class over the batch",
                   binary_classes="foreground only")
    if name == "focal":
        out.update(gamma=FOCAL_GAMMA, alpha=None)
    if name == "ce+dice":
        out.update(weight=CE_DICE_WEIGHT)
    return out


# ------------------------------------------------------------------ shared by the four frameworks
def table(framework: str, dice, jaccard, focal) -> dict:
    """The five --loss functions of a framework, {name: fn(logits, y, task, ignore_index, lesson)},
    from the three it writes in its own ops. ce is the lessons' (sigmoid cross-entropy taught in
    01_binarization, softmax in 02_multiclass: common/lessons.py); ce+dice combines ce and dice."""
    from common import lessons

    def cross_entropy(logits, y, task, ignore_index=None, lesson=None):
        name = "sigmoid_cross_entropy" if task == "binary" else "softmax_cross_entropy"
        return lessons.taught(framework, name, lesson)(logits, y, ignore_index)

    def ce_dice_loss(logits, y, task, ignore_index=None, lesson=None):
        return (CE_DICE_WEIGHT * dice(logits, y, task, ignore_index)
                + (1 - CE_DICE_WEIGHT) * cross_entropy(logits, y, task, ignore_index, lesson))
    return dict(zip(NAMES, (cross_entropy, dice, jaccard, focal, ce_dice_loss)))


def bind(table: dict, name: str, task: str, ignore_index=None, lesson=None):
    """loss(logits, y) for --loss `name`, from a framework's table (table() above)."""
    from common.errors import UserError
    if name not in table:
        raise UserError(f"--loss {name}: unknown; choose one of {', '.join(table)}.")
    fn = table[name]

    def loss(logits, y):
        return fn(logits, y, task, ignore_index, lesson)
    loss.__name__ = fn.__name__      # Keras names a compiled loss after its function
    return loss
