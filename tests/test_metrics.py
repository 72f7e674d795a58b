"""common.metrics against hand-computed cases and a brute-force reference."""
import json

import numpy as np
import pytest

from common.metrics import confusion_matrix, evaluate, scores


def brute_force(y_true, y_pred, num_classes, ignore_index=None):
    """Reference: one Python loop over pixels, then each formula literally."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(np.ravel(y_true), np.ravel(y_pred)):
        if ignore_index is not None and t == ignore_index:
            continue
        cm[t, p] += 1
    iou, dice = [], []
    for c in range(num_classes):
        tp = fp = fn = 0
        for t in range(num_classes):
            for p in range(num_classes):
                if t == c and p == c:
                    tp += cm[t, p]
                elif p == c:
                    fp += cm[t, p]
                elif t == c:
                    fn += cm[t, p]
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else None)
        dice.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None)
    return cm, iou, dice


def test_hand_worked_3x3():
    # truth       prediction     (truth, prediction) pairs:
    # 0 0 1       0 1 1          (0,0) (0,1) (1,1)
    # 1 2 2       1 2 0          (1,1) (2,2) (2,0)
    y_true = np.array([[0, 0, 1], [1, 2, 2]])
    y_pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(y_true, y_pred, 3)
    # rows = truth, columns = prediction
    np.testing.assert_array_equal(cm, [[1, 1, 0],
                                       [0, 2, 0],
                                       [1, 0, 1]])
    # TP = diagonal = [1, 2, 1]; FP = column sum - TP = [2,3,1]-TP = [1, 1, 0];
    # FN = row sum - TP = [2,2,2]-TP = [1, 0, 1]
    # IoU  = TP/(TP+FP+FN)    = [1/3, 2/3, 1/2],  mean = 1.5/3 = 1/2
    # Dice = 2TP/(2TP+FP+FN)  = [2/4, 4/5, 2/3],  mean = (15+24+20)/30/3 = 59/90
    # pixel accuracy = trace/sum = 4/6; per-class accuracy = TP/row sum = [1/2, 1, 1/2]
    s = scores(cm)
    assert s["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s["mean_iou"] == pytest.approx(1 / 2)
    assert s["per_class_dice"] == pytest.approx([1 / 2, 4 / 5, 2 / 3])
    assert s["mean_dice"] == pytest.approx(59 / 90)
    assert s["pixel_accuracy"] == pytest.approx(2 / 3)
    assert s["per_class_accuracy"] == pytest.approx([1 / 2, 1, 1 / 2])


def test_hand_worked_2x2_with_ignore_index():
    # truth       prediction
    # 0   1       0 0           the 255 pixel is skipped, whatever was predicted there;
    # 255 1       1 1           kept pairs: (0,0) (1,0) (1,1)
    y_true = np.array([[0, 1], [255, 1]], dtype=np.uint8)
    y_pred = np.array([[0, 0], [1, 1]], dtype=np.uint8)
    cm = confusion_matrix(y_true, y_pred, 2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 0],
                                       [1, 1]])
    # TP = [1, 1], FP = [1, 0], FN = [0, 1] -> IoU = [1/2, 1/2], Dice = [2/3, 2/3]
    s = scores(cm)
    assert s["per_class_iou"] == pytest.approx([1 / 2, 1 / 2])
    assert s["per_class_dice"] == pytest.approx([2 / 3, 2 / 3])
    assert s["pixel_accuracy"] == pytest.approx(2 / 3)  # 3 labelled pixels, not 4


def test_ignored_pixels_may_hold_any_prediction():
    y_true = np.array([255, 0, 1])
    y_pred = np.array([7, 0, 1])  # 7 is out of range but sits on an ignored pixel
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 2, ignore_index=255), np.eye(2))


def test_perfect_prediction():
    y = np.array([[0, 1, 2], [2, 1, 0]])
    s = evaluate(y, y, 3)
    assert s["pixel_accuracy"] == 1.0
    assert s["per_class_iou"] == [1.0, 1.0, 1.0]
    assert s["mean_iou"] == 1.0
    assert s["mean_dice"] == 1.0
    assert s["per_class_accuracy"] == [1.0, 1.0, 1.0]


def test_all_wrong():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([1, 1, 0, 0])
    s = evaluate(y_true, y_pred, 2)
    assert s["pixel_accuracy"] == 0.0
    assert s["per_class_iou"] == [0.0, 0.0]
    assert s["mean_iou"] == 0.0
    assert s["per_class_dice"] == [0.0, 0.0]


def test_class_absent_from_truth_and_prediction_is_none_and_not_averaged():
    # class 2 never occurs: TP + FP + FN = 0, IoU = 0/0 is undefined
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    s = evaluate(y_true, y_pred, 3)
    # IoU_0 = 1/(1+0+1) = 1/2, IoU_1 = 2/(2+1+0) = 2/3, IoU_2 = None
    assert s["per_class_iou"][2] is None
    assert s["per_class_dice"][2] is None
    assert s["per_class_accuracy"][2] is None
    assert s["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # mean over 2 classes, not 3
    assert s["mean_dice"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_class_in_truth_never_predicted_scores_zero():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 0])
    s = evaluate(y_true, y_pred, 2)
    # IoU_0 = 2/(2+2+0) = 1/2; IoU_1 = 0/(0+0+2) = 0 (not None: the class was there to find)
    assert s["per_class_iou"] == [0.5, 0.0]
    assert s["mean_iou"] == 0.25
    assert s["per_class_accuracy"] == [1.0, 0.0]


def test_class_predicted_but_not_in_truth_scores_zero():
    s = evaluate(np.array([0, 0]), np.array([0, 1]), 2)
    assert s["per_class_iou"] == [0.5, 0.0]      # FP only for class 1
    assert s["per_class_accuracy"] == [0.5, None]  # recall needs truth pixels


def test_no_labelled_pixels_gives_none_not_nan():
    s = evaluate(np.full((2, 2), 255), np.zeros((2, 2), int), 2, ignore_index=255)
    assert s["pixel_accuracy"] is None
    assert s["mean_iou"] is None and s["mean_dice"] is None
    assert s["per_class_iou"] == [None, None]
    json.dumps(s, allow_nan=False)


def test_dice_equals_2iou_over_1_plus_iou_on_random_data():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=(4, 16, 16))
    y_pred = np.where(rng.random(y_true.shape) < 0.6, y_true, rng.integers(0, 5, size=y_true.shape))
    s = evaluate(y_true, y_pred, 5)
    for iou, dice in zip(s["per_class_iou"], s["per_class_dice"]):
        assert dice == pytest.approx(2 * iou / (1 + iou))


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_on_random_data(seed):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(2, 7))
    y_true = rng.integers(0, C, size=(3, 9, 11))
    y_true[rng.random(y_true.shape) < 0.1] = 255
    y_pred = rng.integers(0, C - 1, size=y_true.shape)  # class C-1 never predicted
    cm_ref, iou_ref, dice_ref = brute_force(y_true, y_pred, C, ignore_index=255)
    cm = confusion_matrix(y_true, y_pred, C, ignore_index=255)
    np.testing.assert_array_equal(cm, cm_ref)
    s = scores(cm)
    assert s["per_class_iou"] == pytest.approx(iou_ref)
    assert s["per_class_dice"] == pytest.approx(dice_ref)
    labelled = y_true != 255
    assert s["pixel_accuracy"] == pytest.approx(np.mean(y_true[labelled] == y_pred[labelled]))


def test_matrices_summed_over_batches_equal_one_matrix():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, size=(6, 8, 8))
    y_pred = rng.integers(0, 4, size=(6, 8, 8))
    total = sum(confusion_matrix(y_true[i:i + 2], y_pred[i:i + 2], 4) for i in range(0, 6, 2))
    np.testing.assert_array_equal(total, confusion_matrix(y_true, y_pred, 4))


def test_uint8_masks_do_not_overflow():
    # C * t + p = 30 * 29 + 29 = 899 does not fit in uint8
    y = np.arange(30, dtype=np.uint8)
    cm = confusion_matrix(y, y, 30)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, np.eye(30))


def test_result_is_plain_json():
    s = evaluate(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), 3, class_names=["bg", "newt", "rock"])
    assert s["class_names"] == ["bg", "newt", "rock"]
    assert s["confusion_matrix"] == [[1, 0, 0], [1, 2, 0], [0, 0, 0]]
    assert type(s["pixel_accuracy"]) is float
    assert all(type(v) is float for v in s["per_class_iou"] if v is not None)
    assert json.loads(json.dumps(s, allow_nan=False)) == s


@pytest.mark.parametrize("y_true, y_pred, C, match", [
    (np.zeros((2, 2), int), np.zeros((2, 3), int), 2, "shape"),
    (np.zeros(4, int), np.zeros(4, np.float32), 2, "argmax"),
    (np.array([0, 2]), np.array([0, 1]), 2, r"y_true .*\[2\] outside 0\.\.1"),
    (np.array([0, 1]), np.array([0, -1]), 2, r"y_pred .*\[-1\] outside 0\.\.1"),
    (np.array([0, 255]), np.array([0, 1]), 2, "ignore_index"),
    (np.array([0]), np.array([0]), 0, "num_classes"),
])
def test_bad_input_raises_clear_value_error(y_true, y_pred, C, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, C)


def test_scores_rejects_bad_matrix_and_names():
    with pytest.raises(ValueError, match="square"):
        scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        scores(np.eye(2), class_names=["only one"])
