"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 3, 64, 64] -> enc (CBR x 2) [B, 32, 64, 64] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 32, 64, 64]
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

The original Chainer answer used a bilinear resize here; every framework in
this suite uses true nearest neighbour (torch: F.interpolate mode="nearest").
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


class NearestNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q3.1 enc (CBR x2), max-pool 2, mid (CBR x2), nearest upsampling x2, dec (CBR x2), head 1x1
        self.enc = nn.Sequential(CBR(3, width), CBR(width, width))
        self.mid = nn.Sequential(CBR(width, width), CBR(width, width))
        self.dec = nn.Sequential(CBR(width, width), CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)
        # <<< Q3.1

    def forward(self, x):
        # >>> Q3.1 pool after enc, upsample (nearest, factor 2) after mid
        x = self.mid(F.max_pool2d(self.enc(x), 2))
        x = F.interpolate(x, scale_factor=2, mode="nearest")   # the lesson: each pixel -> 2x2
        return self.head(self.dec(x))
        # <<< Q3.1


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return Step("03_nearest", size_multiple=2)



if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
