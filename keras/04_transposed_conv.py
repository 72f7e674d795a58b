"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 64, 64, 3] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 64, 64, 32] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

Keras stores the Conv2DTranspose kernel as [kH, kW, out, in]; the neutral
weights files use PyTorch's [in, out, kH, kW] (keras_weights converts;
docs/framework-differences.md).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from keras_layers import CBR, batch_norm   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


def TransposedConvNet(num_classes: int, width: int = 32) -> keras.Model:
    # >>> Q4.1 as step 3, but up: a Conv2DTranspose kernel 2 stride 2 with the ReLU, then batch_norm("up_bn")
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    x = CBR(CBR(x, width, "enc-0"), width, "enc-1")
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = CBR(CBR(x, width, "mid-0"), width, "mid-1")
    x = layers.Conv2DTranspose(width, 2, strides=2, activation="relu", name="up")(x)   # the lesson
    x = batch_norm("up_bn")(x)
    x = CBR(CBR(x, width, "dec-0"), width, "dec-1")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="transposed_conv")
    # <<< Q4.1


def build(num_outputs, args):
    return TransposedConvNet(num_outputs)


def step(args):
    return Step("04_transposed_conv", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
