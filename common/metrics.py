"""Segmentation metrics, all computed from one confusion matrix.

Every framework's predictions come back here as NumPy class indices, so the
four frameworks are scored by the same code:

    cm = confusion_matrix(y_true, y_pred, num_classes, ignore_index=255)
    s = scores(cm)            # pixel accuracy, IoU, Dice, per-class accuracy

The confusion matrix ``cm[t, p]`` counts pixels whose ground truth is class
``t`` and whose prediction is class ``p``. For class ``c``:

    TP = cm[c, c]              predicted c, truly c
    FP = cm[:, c].sum() - TP   predicted c, truly something else
    FN = cm[c, :].sum() - TP   truly c, predicted something else

    IoU_c  = TP / (TP + FP + FN)        (intersection over union, Jaccard)
    Dice_c = 2 TP / (2 TP + FP + FN)    (= F1 score; Dice = 2 IoU / (1 + IoU))

Summing matrices over batches and then scoring gives the dataset-level
numbers (what papers report), not a mean of per-image scores.
"""
import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Count (truth, prediction) pairs over all labelled pixels.

    Args:
        y_true: integer class indices, any shape, e.g. [N, H, W].
        y_pred: integer class indices, the same shape (argmax of the logits).
        num_classes: C; valid classes are 0 .. C-1.
        ignore_index: pixels whose *truth* equals it are skipped (255 for
            VOC's unlabelled borders); their prediction is not looked at.

    Returns:
        int64 [C, C]; rows = ground truth, columns = prediction.

    Raises:
        ValueError: shapes differ, non-integer arrays, or a class index
            outside 0 .. C-1 (other than ignore_index in y_true).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    C = int(num_classes)
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}; "
                         "they must match pixel for pixel (labels [N, H, W], not logits [N, C, H, W])")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}; "
                             "for logits or probabilities take argmax over the class axis first")

    t = t.reshape(-1).astype(np.int64)  # int64: C * t + p must not overflow uint8 masks
    p = p.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]

    for name, a in (("y_true", t), ("y_pred", p)):
        bad = (a < 0) | (a >= C)
        if bad.any():
            values = np.unique(a[bad])
            hint = f" (ignore_index is {ignore_index})" if name == "y_true" else ""
            raise ValueError(f"{name} has {int(bad.sum())} labelled pixel(s) with class index "
                             f"{values[:10].tolist()} outside 0..{C - 1}{hint}; check num_classes "
                             "or pass ignore_index for unlabelled pixels")

    # Each (t, p) pair gets its own bin C*t + p; reshaping the counts gives the matrix.
    return np.bincount(C * t + p, minlength=C * C).reshape(C, C).astype(np.int64)


def _ratio(num, den):
    """num / den as a plain float, or None when den == 0 (undefined, never NaN)."""
    return float(num) / float(den) if den > 0 else None


def _mean(values):
    """Mean of the defined (not None) values, or None if there are none."""
    defined = [v for v in values if v is not None]
    return float(sum(defined) / len(defined)) if defined else None


def scores(cm: np.ndarray, class_names=None) -> dict:
    """Pixel accuracy, IoU, Dice and per-class accuracy from a confusion matrix.

    Args:
        cm: [C, C] non-negative counts, rows = truth, columns = prediction
            (from ``confusion_matrix``; may be summed over batches).
        class_names: optional C names, copied to the result's "class_names"
            (default "0", "1", ...), in the same order as the per-class lists.

    Returns a JSON-serialisable dict of plain Python floats:
        pixel_accuracy      trace / sum: share of labelled pixels predicted right
                            (None if there are no labelled pixels)
        per_class_iou       C values, TP / (TP + FP + FN)
        mean_iou            mean of the defined per-class IoUs (mIoU)
        per_class_dice      C values, 2 TP / (2 TP + FP + FN)
        mean_dice           mean of the defined per-class Dice scores
        per_class_accuracy  C values, TP / (TP + FN) (recall), None if the
                            class has no ground-truth pixel
        class_names         C names

    Absent classes: a class that appears neither in the ground truth nor in
    the prediction (TP + FP + FN == 0) has no defined IoU or Dice (0 / 0).
    It is reported as None and left out of the means, as in the PASCAL VOC
    evaluation and torchmetrics' mean over present classes; counting it as 1
    or 0 would reward or punish a model for a class it never had to find.
    A class that is in the ground truth but never predicted scores 0, and so
    does a class predicted where it does not occur.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square [C, C], got shape {cm.shape}")
    if (cm < 0).any():
        raise ValueError("confusion matrix has negative counts")
    C = cm.shape[0]
    if class_names is None:
        class_names = [str(c) for c in range(C)]
    class_names = [str(n) for n in class_names]
    if len(class_names) != C:
        raise ValueError(f"got {len(class_names)} class names for a {C}x{C} confusion matrix")

    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp  # predicted c, truly another class
    fn = cm.sum(axis=1) - tp  # truly c, predicted another class

    iou = [_ratio(tp[c], tp[c] + fp[c] + fn[c]) for c in range(C)]
    dice = [_ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]) for c in range(C)]
    acc = [_ratio(tp[c], tp[c] + fn[c]) for c in range(C)]
    return {
        "pixel_accuracy": _ratio(tp.sum(), cm.sum()),
        "per_class_iou": iou,
        "mean_iou": _mean(iou),
        "per_class_dice": dice,
        "mean_dice": _mean(dice),
        "per_class_accuracy": acc,
        "class_names": class_names,
    }


def evaluate(y_true, y_pred, num_classes, ignore_index=None, class_names=None) -> dict:
    """``scores(confusion_matrix(...))`` plus the matrix itself as nested lists.

    y_true, y_pred: integer class indices of the same shape, e.g. [N, H, W].
    Returns the dict of ``scores`` with "confusion_matrix": C lists of C ints
    (rows = truth, columns = prediction), ready for json.dump.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes, ignore_index)
    result = scores(cm, class_names)
    result["confusion_matrix"] = cm.tolist()
    return result
