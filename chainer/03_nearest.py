"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 3, 64, 64] -> enc (CBR x 2) [B, 32, 64, 64] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 32, 64, 64]
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

The original Chainer answer used a bilinear resize here (F.resize_images);
every framework in this suite uses true nearest neighbour. In Chainer that is
F.unpooling_2d(x, 2, stride=2, cover_all=False): the inverse of 2x2 pooling,
which writes each value into all four cells of its 2x2 window.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import CBR, Sequential   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from common.driver import main
from common.runner import Step


class NearestNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q3.1 in init_scope: enc (CBR x2), mid (CBR x2), dec (CBR x2), head 1x1; pooling and upsampling have no links
        with self.init_scope():
            self.enc = Sequential(CBR(3, width), CBR(width, width))
            self.mid = Sequential(CBR(width, width), CBR(width, width))
            self.dec = Sequential(CBR(width, width), CBR(width, width))
            self.head = L.Convolution2D(width, num_classes, ksize=1)
        # <<< Q3.1

    def forward(self, x):
        # >>> Q3.1 pool after enc, upsample (nearest, factor 2: F.unpooling_2d) after mid; cover_all=False
        # cover_all=False: floor(H/2) like PyTorch (Chainer's default pads odd sizes)
        x = self.mid(F.max_pooling_2d(self.enc(x), 2, cover_all=False))
        x = F.unpooling_2d(x, 2, stride=2, cover_all=False)   # the lesson: each pixel -> 2x2
        return self.head(self.dec(x))
        # <<< Q3.1


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return Step("03_nearest", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
