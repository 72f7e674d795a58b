"""Step 5: bring back the details -- concatenate an earlier feature map.

After pooling and upsampling, the fine detail of the input (edges, small
spots) is blurred. The fix that UNet is built on: keep the full-resolution
output of the first CBR x 2 and concatenate it, channel-wise, with the
upsampled map; a 1x1 convolution then mixes the 64 channels back to 32.

    x [B, 3, 64, 64] -> enc (CBR x 2) = skip [B, 32, 64, 64] -> maxpool 2 -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 -> ReLU -> up_bn [B, 32, 64, 64]
      -> concat [skip, up] [B, 64, 64, 64] -> fuse (Conv 1x1 -> ReLU -> BN) [B, 32, 64, 64]
      -> dec (CBR x 2) -> head (1x1) [B, 3, 64, 64]

Concatenation order is [skip, up] in all four frameworks (channel axis 1 in
NCHW here, axis -1 in NHWC); the order matters when weights are exchanged.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch
import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import CBR, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


class ConcatNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q5.1 as step 4, plus fuse: a 1x1 CBR from 2*width to width
        self.enc = nn.Sequential(CBR(3, width), CBR(width, width))
        self.mid = nn.Sequential(CBR(width, width), CBR(width, width))
        self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.up_bn = batch_norm(width)
        self.fuse = CBR(2 * width, width, kernel_size=1)
        self.dec = nn.Sequential(CBR(width, width), CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)
        # <<< Q5.1

    def forward(self, x):
        # >>> Q5.1 concatenate [skip (enc output), upsampled] on the channel axis, then fuse
        skip = self.enc(x)
        x = self.mid(F.max_pool2d(skip, 2))
        x = self.up_bn(F.relu(self.up(x)))
        x = torch.cat([skip, x], dim=1)   # the lesson: [B, 32+32, H, W]
        return self.head(self.dec(self.fuse(x)))
        # <<< Q5.1


def build(num_outputs, args):
    return ConcatNet(num_outputs)


def step(args):
    return Step("05_concat", size_multiple=2)



if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
