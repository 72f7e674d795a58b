"""Step 7: FCN-8s (Long, Shelhamer and Darrell, 2015) -- coarse scores, refined by skips.

Fully connected layers read as convolutions (fc6, fc7) score a coarse grid
at 1/32 of the input; FCN-8s refines it twice, each time upsampling by 2 with
a transposed convolution and ADDING class scores read off a finer map by a
1x1 convolution (pool4, then pool3); a last transposed convolution enlarges
by 8. The upsamplers start as bilinear interpolation (bilinear_upsampling).

    x [B, 64, 64, 3]
      conv1, conv2 (CBR x 2 each), conv3..conv5 (CBR x 3 each), each -> pool
        pool3 [B, 8, 8, 128] -> score_pool3 (1x1) [B, 8, 8, C]
        pool4 [B, 4, 4, 256] -> score_pool4 (1x1) [B, 4, 4, C]
        pool5 [B, 2, 2, 256] -> fc6 (3x3) -> ReLU -> fc7 (1x1) -> ReLU -> score_fr [B, 2, 2, C]
      upscore2 (transposed 4x4, stride 2, "same")      [B, 4, 4, C] + score_pool4
      upscore_pool4 (transposed 4x4, stride 2, "same") [B, 8, 8, C] + score_pool3
      upscore8 (transposed 16x16, stride 8, "same")    [B, 64, 64, C]  S divisible by 32

Departures from the paper: "same" padding instead of its 100-pixel pad and
crops; trained from scratch, VGG16's 2-2-3-3-3 blocks narrower (32 to 256)
with the exercise's CBR (Conv -> ReLU -> BatchNorm), fc6 3x3 with 512
channels; no dropout; the three stages trained at once. Why, and the
receptive fields: docs/lessons/07_fcn8s.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from common.weights import bilinear_kernel
from keras_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization

UPSAMPLING = ("upscore2", "upscore_pool4", "upscore8")   # layer names, for bilinear_upsampling


def vgg_block(x, filters, convs, name):
    """CBR x convs, named <name>-0, <name>-1, ... (neutral <name>.0, <name>.1, ...)."""
    for i in range(convs):
        x = CBR(x, filters, f"{name}-{i}")
    return x


def upsampling(channels, factor, name):
    """Transposed conv enlarging exactly `factor` times: kernel 2f, stride f, "same", no bias.

    Keras' padding="same" on a transposed convolution with kernel 2f and stride f
    gives exactly f times the input side and pads f/2 on every side: output side
    (in - 1) * f - 2 * (f/2) + 2f = in * f, the same as PyTorch's padding=f/2 here
    (4x4 stride 2: 1; 16x16 stride 8: 4), on both Keras backends. No bias, as in the paper.
    """
    return layers.Conv2DTranspose(channels, 2 * factor, strides=factor, padding="same",
                                  use_bias=False, name=name)


def FCN8s(num_classes: int, widths=(32, 64, 128, 256, 256), fc_width: int = 512) -> keras.Model:
    # >>> Q7.1 five conv blocks, fc6/fc7 as convolutions, score heads for pool3 and pool4; score of fc7 up x2 + score of pool4, up x2 + score of pool3, up x8
    w1, w2, w3, w4, w5 = widths
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.MaxPooling2D(2)(vgg_block(x, w1, 2, "conv1"))          # 1/2
    x = layers.MaxPooling2D(2)(vgg_block(x, w2, 2, "conv2"))          # 1/4
    pool3 = layers.MaxPooling2D(2)(vgg_block(x, w3, 3, "conv3"))      # 1/8
    pool4 = layers.MaxPooling2D(2)(vgg_block(pool3, w4, 3, "conv4"))  # 1/16
    pool5 = layers.MaxPooling2D(2)(vgg_block(pool4, w5, 3, "conv5"))  # 1/32
    # VGG's first and second fully connected layers, as convolutions
    x = layers.Conv2D(fc_width, 3, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Conv2D(fc_width, 1, activation="relu", name="fc7")(x)
    score = layers.Conv2D(num_classes, 1, name="score_fr")(x)        # FCN-32s would upsample this x32
    fuse_pool4 = layers.Add()([upsampling(num_classes, 2, "upscore2")(score),
                               layers.Conv2D(num_classes, 1, name="score_pool4")(pool4)])  # FCN-16s
    fuse_pool3 = layers.Add()([upsampling(num_classes, 2, "upscore_pool4")(fuse_pool4),
                               layers.Conv2D(num_classes, 1, name="score_pool3")(pool3)])
    logits = upsampling(num_classes, 8, "upscore8")(fuse_pool3)      # FCN-8s
    return keras.Model(inputs, logits, name="fcn8s")
    # <<< Q7.1


def bilinear_upsampling(weights):
    """Step.init: the neutral initial weights with every upsampling layer set to bilinear.

    As in the paper, the upsamplers start as bilinear interpolation: class c to class c,
    other pairs zero (common.weights.bilinear_kernel), the same kernels in every framework.
    A transposed convolution with kernel 2f, stride f and padding f/2 carrying that kernel
    IS bilinear upsampling by f with half-pixel centres (keras.ops.image.resize), except
    in the outermost f/2 rows and columns, which it fades towards zero instead of
    clamping. Training then adapts all three.
    """
    out = dict(weights)
    for layer in UPSAMPLING:
        in_channels, out_channels, k, _ = out[f"{layer}.weight"].shape   # neutral IOHW
        out[f"{layer}.weight"] = bilinear_kernel(in_channels, out_channels, k)
    return out


def build(num_outputs, args):
    return FCN8s(num_outputs)


def step(args):
    return Step("07_fcn8s", size_multiple=32, init=bilinear_upsampling)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
