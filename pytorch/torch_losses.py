"""The five --loss choices in PyTorch, each loss(logits, y) -> scalar.

Definitions, constants and the choices behind them (smoothing, averaging over
classes, focal's gamma, the ce+dice weight): common/losses.py, the NumPy
reference tests/test_losses.py compares these with. The two cross-entropies
are taught in 01_binarization and 02_multiclass and taken from there.
Every loss keeps its logits' dtype (the parity tests run PyTorch in float64).
"""
import torch
import torch.nn.functional as F

from common.losses import EPS, FOCAL_GAMMA, bind, table


def labelled(y, ignore_index, dtype):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored)."""
    if ignore_index is None:
        return y.long(), torch.ones(y.shape, dtype=dtype, device=y.device)
    keep = y != ignore_index
    return torch.where(keep, y, torch.zeros_like(y)).long(), keep.to(dtype)


def mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return (per_pixel * w).sum() / w.sum().clamp_min(1)



def focal_loss(logits, y, task, ignore_index=None, lesson=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,C,H,W] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = F.binary_cross_entropy_with_logits(logits[:, 0], t.to(logits.dtype), reduction="none")
    else:
        ce = F.cross_entropy(logits, t, reduction="none")          # [B,H,W] = -log p_t
    return mean_over((-torch.expm1(-ce)) ** gamma * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = torch.sigmoid(logits)                                   # [B,1,H,W]
        t = (t == 1).to(logits.dtype)[:, None]                      # [B,1,H,W]
    else:
        p = torch.softmax(logits, dim=1)                            # [B,C,H,W]
        t = F.one_hot(t, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    w = w[:, None]                                                  # ignored pixels: 0
    dims = (0, 2, 3)                                                # batch and pixels
    return (p * t * w).sum(dims), (p * w).sum(dims), (t * w).sum(dims)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = (true > 0).to(scores.dtype)
    return ((1 - scores) * present).sum() / present.sum().clamp_min(1)


def dice_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / (p + t).clamp_min(EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / (p + t - i).clamp_min(EPS), t)


LOSSES = table("pytorch", dice_loss, jaccard_loss, focal_loss)   # ce, ce+dice: common/losses.py


def make_loss(name: str, task: str, ignore_index=None, lesson=None):
    """loss(logits, y) for --loss name and the step's task ("binary" or "multiclass")."""
    return bind(LOSSES, name, task, ignore_index, lesson)
