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
this suite uses true nearest neighbour (Keras: UpSampling2D(interpolation="nearest")).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from keras_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


def NearestNet(num_classes: int, width: int = 32) -> keras.Model:
    # >>> Q3.1 enc (CBR x2), max-pool 2, mid (CBR x2), nearest upsampling x2, dec (CBR x2), head 1x1
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    x = CBR(CBR(x, width, "enc-0"), width, "enc-1")
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = CBR(CBR(x, width, "mid-0"), width, "mid-1")
    x = layers.UpSampling2D(2, interpolation="nearest", name="upsample")(x)   # the lesson: each pixel -> 2x2
    x = CBR(CBR(x, width, "dec-0"), width, "dec-1")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="nearest")
    # <<< Q3.1


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return Step("03_nearest", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
