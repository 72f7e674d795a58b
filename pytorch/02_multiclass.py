"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, C, H, W] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices. The prediction is the argmax over channels, coloured
with the class palette.

    x [B, 3, 64, 64] -> trunk (CBR x 6) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
Questions Q2.1-Q2.3: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch
import torch.nn.functional as F
from torch import nn

from common.driver import main
from torch_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


class MulticlassNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q2.1 as step 1: `trunk` of six CBR, `head` a 1x1 conv to num_classes channels
        self.trunk = nn.Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)
        # <<< Q2.1

    def forward(self, x):
        # >>> Q2.1 trunk, then head; return the logits (softmax is inside the loss)
        return self.head(self.trunk(x))
        # <<< Q2.1


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels: logits [B,C,H,W], labels [B,H,W] -> mean over labelled.

    Every pixel is one classification sample: logits become [B*H*W, C] rows
    (channels moved last first, or the rows would mix pixels and classes) and
    labels [B*H*W]. (F.cross_entropy also accepts [B,C,H,W] directly; the
    reshape is the lesson.) The sum is divided by the labelled count floored
    at 1: F.cross_entropy's own mean gives NaN when every pixel is ignored.
    """
    # >>> Q2.2 permute to [B,H,W,C], reshape to [B*H*W, C]; F.cross_entropy(reduction="sum") / labelled count
    c = logits.shape[1]
    flat = logits.permute(0, 2, 3, 1).reshape(-1, c)
    labels = y.reshape(-1).long()
    ignore = -100 if ignore_index is None else ignore_index
    total = F.cross_entropy(flat, labels, ignore_index=ignore, reduction="sum")
    return total / (labels != ignore).sum().clamp_min(1)
    # <<< Q2.2


def to_classes(logits):
    """Class indices [B,H,W] (uint8) from logits [B,C,H,W]: the most likely class of every pixel."""
    # >>> Q2.3 argmax over the channel axis (softmax keeps the order: not needed)
    return logits.argmax(dim=1).to(torch.uint8)
    # <<< Q2.3


def build(num_outputs, args):
    return MulticlassNet(num_outputs)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
