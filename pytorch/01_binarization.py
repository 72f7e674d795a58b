"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels. Thresholding the probability at 0.5
gives the mask (the run's predictions.png shows the probability map next to
its threshold).

    x [B, 3, 64, 64] -> trunk (CBR x 6) [B, 32, 64, 64] -> head (1x1) [B, 1, 64, 64]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
Questions Q1.1-Q1.5: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch
import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import batch_norm


class CBR(nn.Module):
    """Conv 3x3 (pad 1) -> ReLU -> BatchNorm: the exercise's block, used by steps 01-07.

    The exercise puts BatchNorm after the ReLU; most papers (and ConvBNReLU,
    steps 08-09) put it before. We keep the exercise's order.
    Input [B, in, H, W] -> [B, out, H, W]; names conv.weight, conv.bias, bn.*.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        # >>> Q1.1 a kxk convolution `conv` with padding k//2, and `bn` = batch_norm(out_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = batch_norm(out_channels)
        # <<< Q1.1

    def forward(self, x):
        # >>> Q1.1 convolution, then ReLU, then BatchNorm
        return self.bn(F.relu(self.conv(x)))
        # <<< Q1.1


class BinarizationNet(nn.Module):
    def __init__(self, num_outputs: int = 1, width: int = 32):
        super().__init__()
        # >>> Q1.2 `trunk`: nn.Sequential of six CBR (3 -> width, then width -> width); `head`: 1x1 conv
        self.trunk = nn.Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
        self.head = nn.Conv2d(width, num_outputs, kernel_size=1)
        # <<< Q1.2

    def forward(self, x):
        # >>> Q1.2 trunk, then head; return the logits (no sigmoid: the loss applies it)
        return self.head(self.trunk(x))
        # <<< Q1.2


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,1,H,W] vs 0/1 targets [B,H,W], mean over labelled pixels.

    On the logits, not on sigmoid(logits): log(sigmoid(z)) computed in one
    piece never rounds to log(0). Pixels equal to ignore_index do not count;
    with none labelled the loss is 0 (not NaN).
    """
    # >>> Q1.3 F.binary_cross_entropy_with_logits(reduction="none") on logits[:, 0]; average over kept pixels
    z = logits[:, 0]
    keep = torch.ones_like(z) if ignore_index is None else (y != ignore_index).to(z.dtype)
    t = torch.where(keep > 0, y, torch.zeros_like(y)).to(z.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    return (per_pixel * keep).sum() / keep.sum().clamp_min(1)
    # <<< Q1.3


def binarize(logits):
    """The mask [B,H,W] (0/1) from logits [B,1,H,W]: sigmoid(z) > 0.5, that is z > 0."""
    # >>> Q1.4 compare the logit with 0 (sigmoid(z) > 0.5 exactly when z > 0)
    return (logits[:, 0] > 0).to(torch.uint8)
    # <<< Q1.4


def train_step(model, optimizer, loss_fn, x, y):
    """One SGD step on a batch; returns the loss (a scalar tensor) before the update.

    model.train(): BatchNorm normalises with the batch's statistics and updates
    its running ones (evaluation calls model.eval() to use those instead).
    """
    # >>> Q1.5 train mode; zero the gradients; loss of model(x); backward; optimizer step
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()
    # <<< Q1.5


def build(num_outputs, args):
    return BinarizationNet(num_outputs)


def step(args):
    return Step("01_binarization", task="binary")


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
