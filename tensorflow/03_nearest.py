"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 64, 64, 3] -> enc (CBR x 2) [B, 64, 64, 32] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 64, 64, 32]
      -> dec (CBR x 2) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

The original Chainer answer used a bilinear resize here; every framework in
this suite uses true nearest neighbour (TF: tf.image.resize method="nearest";
for an exact factor of 2 it picks the same pixels as torch's F.interpolate).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, Module, Sequential


class NearestNet(Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q3.1 enc (CBR x2), max-pool 2, mid (CBR x2), nearest upsampling x2, dec (CBR x2), head 1x1
        self.enc = Sequential(CBR(3, width), CBR(width, width))
        self.mid = Sequential(CBR(width, width), CBR(width, width))
        self.dec = Sequential(CBR(width, width), CBR(width, width))
        self.head = Conv2D(width, num_classes, kernel_size=1)
        # <<< Q3.1

    def __call__(self, x, training=False):
        # >>> Q3.1 pool after enc, upsample (nearest, factor 2) after mid
        x = self.mid(tf.nn.max_pool2d(self.enc(x, training), 2, 2, "VALID"), training)
        x = tf.image.resize(x, 2 * tf.shape(x)[1:3], method="nearest")   # the lesson: pixel -> 2x2
        return self.head(self.dec(x, training))
        # <<< Q3.1


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return Step("03_nearest", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
