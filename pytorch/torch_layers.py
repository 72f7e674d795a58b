"""PyTorch building blocks the lessons share.

BatchNorm with the suite's settings, ConvBNReLU (the papers' order, used by
08 and 09), and, by name, the blocks a lesson teaches: `from torch_layers
import CBR` gives the CBR of 01_binarization (common/lessons.py). Layout: NCHW.
"""
import torch.nn.functional as F
from torch import nn

from common import lessons

# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvBNReLU(nn.Module):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (the exercise's CBR has ReLU first).

    Used by SegNet (08) and DeepLabv3+ (09), which put BatchNorm before the
    ReLU as their papers do (08_segnet.py explains why its unpooling needs
    that order). The convolution has no bias: BatchNorm subtracts the batch
    mean right after it, which would cancel any bias, and BatchNorm's beta
    plays its role. Padding dilation * (k // 2) keeps the side; with stride 1
    and odd k that "same" padding is symmetric in every framework.
    groups=in_channels=out_channels makes it depthwise: weight [C, 1, k, k],
    the neutral layout. Neutral names: <block>.conv.weight, <block>.bn.*.
    Input [B, in, H, W] -> [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=dilation * (kernel_size // 2), dilation=dilation,
                              groups=groups, bias=False)
        self.bn = batch_norm(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def __getattr__(name):
    """CBR and the other blocks a lesson teaches, from that lesson's answer file."""
    if name in lessons.TAUGHT:
        return lessons.taught("pytorch", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
