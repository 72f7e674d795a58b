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
NCHW here: F.concat(..., axis=1); axis -1 in NHWC); the order matters when
weights are exchanged.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import CBR, Sequential, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from common.driver import main
from common.runner import Step


class ConcatNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q5.1 as step 4, plus fuse: a 1x1 CBR from 2*width to width
        with self.init_scope():
            self.enc = Sequential(CBR(3, width), CBR(width, width))
            self.mid = Sequential(CBR(width, width), CBR(width, width))
            self.up = L.Deconvolution2D(width, width, ksize=2, stride=2)
            self.up_bn = batch_norm(width)
            self.fuse = CBR(2 * width, width, kernel_size=1)
            self.dec = Sequential(CBR(width, width), CBR(width, width))
            self.head = L.Convolution2D(width, num_classes, ksize=1)
        # <<< Q5.1

    def forward(self, x):
        # >>> Q5.1 concatenate [skip (enc output), upsampled] on the channel axis (F.concat, axis=1), then fuse
        skip = self.enc(x)
        x = self.mid(F.max_pooling_2d(skip, 2, cover_all=False))
        x = self.up_bn(F.relu(self.up(x)))
        x = F.concat([skip, x], axis=1)   # the lesson: [B, 32+32, H, W]
        return self.head(self.dec(self.fuse(x)))
        # <<< Q5.1


def build(num_outputs, args):
    return ConcatNet(num_outputs)


def step(args):
    return Step("05_concat", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
