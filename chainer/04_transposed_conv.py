"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 3, 64, 64] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 32, 64, 64] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

Chainer calls the transposed convolution L.Deconvolution2D and stores its
weight W as [in, out, kH, kW], like PyTorch's nn.ConvTranspose2d; that is
also the layout of the neutral weights files (docs/framework-differences.md).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import CBR, Sequential, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from common.driver import main
from common.runner import Step


class TransposedConvNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q4.1 as step 3, but up: a transposed convolution (L.Deconvolution2D) kernel 2 stride 2, then ReLU and up_bn
        with self.init_scope():
            self.enc = Sequential(CBR(3, width), CBR(width, width))
            self.mid = Sequential(CBR(width, width), CBR(width, width))
            self.up = L.Deconvolution2D(width, width, ksize=2, stride=2)   # the lesson
            self.up_bn = batch_norm(width)
            self.dec = Sequential(CBR(width, width), CBR(width, width))
            self.head = L.Convolution2D(width, num_classes, ksize=1)
        # <<< Q4.1

    def forward(self, x):
        # >>> Q4.1 up, ReLU, BatchNorm where step 3 copied pixels
        x = self.mid(F.max_pooling_2d(self.enc(x), 2, cover_all=False))
        x = self.up_bn(F.relu(self.up(x)))
        return self.head(self.dec(x))
        # <<< Q4.1


def build(num_outputs, args):
    return TransposedConvNet(num_outputs)


def step(args):
    return Step("04_transposed_conv", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
