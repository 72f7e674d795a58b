"""Step 5: bring back the details -- concatenate an earlier feature map.

After pooling and upsampling, the fine detail of the input (edges, small
spots) is blurred. The fix that UNet is built on: keep the full-resolution
output of the first CBR x 2 and concatenate it, channel-wise, with the
upsampled map; a 1x1 convolution then mixes the 64 channels back to 32.

    x [B, 64, 64, 3] -> enc (CBR x 2) = skip [B, 64, 64, 32] -> maxpool 2 -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 -> ReLU -> up_bn [B, 64, 64, 32]
      -> concat [skip, up] [B, 64, 64, 64] -> fuse (Conv 1x1 -> ReLU -> BN) [B, 64, 64, 32]
      -> dec (CBR x 2) -> head (1x1) [B, 64, 64, 3]

Concatenation order is [skip, up] in all four frameworks (channel axis -1 in
NHWC here, axis 1 in NCHW); the order matters when weights are exchanged.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from keras_layers import CBR, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


def ConcatNet(num_classes: int, width: int = 32) -> keras.Model:
    # >>> Q5.1 as step 4; concatenate [skip (enc output), upsampled] on the channel axis, then fuse: a 1x1 CBR to width
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    skip = CBR(CBR(x, width, "enc-0"), width, "enc-1")
    x = layers.MaxPooling2D(2, name="pool")(skip)
    x = CBR(CBR(x, width, "mid-0"), width, "mid-1")
    x = layers.Conv2DTranspose(width, 2, strides=2, activation="relu", name="up")(x)
    x = batch_norm("up_bn")(x)
    x = layers.Concatenate(axis=-1, name="concat")([skip, x])   # the lesson: [B, H, W, 32+32]
    x = CBR(x, width, "fuse", kernel_size=1)
    x = CBR(CBR(x, width, "dec-0"), width, "dec-1")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="concat")
    # <<< Q5.1


def build(num_outputs, args):
    return ConcatNet(num_outputs)


def step(args):
    return Step("05_concat", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
