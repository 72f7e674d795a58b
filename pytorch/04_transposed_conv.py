"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 3, 64, 64] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 32, 64, 64] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

PyTorch stores the transposed conv's weight as [in, out, kH, kW]; that is
also the layout of the neutral weights files (docs/framework-differences.md).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import CBR, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


class TransposedConvNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q4.1 as step 3, but up: a transposed convolution kernel 2 stride 2, then ReLU and up_bn
        self.enc = nn.Sequential(CBR(3, width), CBR(width, width))
        self.mid = nn.Sequential(CBR(width, width), CBR(width, width))
        self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)   # the lesson
        self.up_bn = batch_norm(width)
        self.dec = nn.Sequential(CBR(width, width), CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)
        # <<< Q4.1

    def forward(self, x):
        # >>> Q4.1 up, ReLU, BatchNorm where step 3 copied pixels
        x = self.mid(F.max_pool2d(self.enc(x), 2))
        x = self.up_bn(F.relu(self.up(x)))
        return self.head(self.dec(x))
        # <<< Q4.1


def build(num_outputs, args):
    return TransposedConvNet(num_outputs)


def step(args):
    return Step("04_transposed_conv", size_multiple=2)



if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
