"""Step 7: FCN-8s (Long, Shelhamer and Darrell, 2015) -- coarse scores, refined by skips.

A classification network becomes a segmentation network when its fully
connected layers are read as convolutions: fc6 and fc7 then score every cell
of a coarse grid instead of the whole image, and a 1x1 convolution (score_fr)
turns each cell into class scores. That grid is 1/32 of the input (output
stride 32): semantically strong but coarse. FCN-8s refines it in two steps,
each an upsampling by 2 (a transposed convolution) followed by the ADDITION
of class scores read off a finer map with a 1x1 convolution: pool4 (stride
16), then pool3 (stride 8). A last transposed convolution enlarges the fused
scores 8 times, to the input size. (Step 5 fused by concatenation; FCN adds
scores, so every skip costs only a 1x1 convolution.)

    x [B, 64, 64, 3]
      conv1 (CBR x 2) -> pool [B, 32, 32,  32]
      conv2 (CBR x 2) -> pool [B, 16, 16,  64]
      conv3 (CBR x 3) -> pool [B,  8,  8, 128] = pool3 -> score_pool3 (1x1) [B, 8, 8, C]
      conv4 (CBR x 3) -> pool [B,  4,  4, 256] = pool4 -> score_pool4 (1x1) [B, 4, 4, C]
      conv5 (CBR x 3) -> pool [B,  2,  2, 256] = pool5
      fc6 (conv 3x3) -> ReLU -> fc7 (conv 1x1) -> ReLU [B, 2, 2, 512]
      score_fr (1x1) [B, 2, 2, C]
      upscore2      (transposed 4x4, stride 2, "same") [B, 4, 4, C]   + score_pool4
      upscore_pool4 (transposed 4x4, stride 2, "same") [B, 8, 8, C]   + score_pool3
      upscore8      (transposed 16x16, stride 8, "same") [B, 64, 64, C]  logits
                                                   S must be divisible by 32

Receptive fields (3x3 convolutions, 2x2 pooling): a score_pool3 cell sees
44x44 input pixels, a score_pool4 cell 100x100, a score_fr cell 276x276 --
more than the whole 64x64 image: the coarse path knows what, the skips where.

Keras' padding="same" on a transposed convolution with kernel 2f and stride f
gives exactly f times the input side and pads f/2 on every side: the same as
PyTorch's padding=f/2 here (4x4 stride 2: 1; 16x16 stride 8: 4), on both
Keras backends.

The upsampling layers start as bilinear interpolation, as in the paper:
step(args) passes Step(init=bilinear_upsampling), which replaces their weights
in the neutral initial weights (common.weights.bilinear_kernel, class c to
class c, other pairs zero), so every framework starts from the same kernels.
A transposed convolution with kernel 2f, stride f and padding f/2 carrying
that kernel IS bilinear upsampling by f with half-pixel centres (as
keras.ops.image.resize), except in the outermost f/2 rows and columns, which
it fades towards zero instead of clamping. Training then adapts all three.

Departures from the paper:
- Padding: every convolution pads ("same") and the transposed convolutions
  pad (k - stride)/2, so with a side divisible by 32 all maps line up exactly
  (8 = 2 x 4, 4 = 2 x 2, 64 = 8 x 8). The paper instead pads the input by
  100 pixels (its VGG convolutions did not pad) and crops each upsampled map
  to its skip and to the input (Caffe Crop layers).
- No ImageNet weights: trained from scratch; widths 32-64-128-256-256
  (VGG16: 64-128-256-512-512) with VGG16's 2-2-3-3-3 convolutions per block;
  fc6 is 3x3 with 512 channels (VGG16: 7x7, 4096): on the 2x2 pool5 map a 3x3
  with padding 1 already sees every cell.
- BatchNorm in the conv blocks (the exercise's CBR, Conv -> ReLU -> BN);
  VGG had none. None in fc6/fc7: with a 32x32 input pool5 is 1x1, and one
  value per channel (batch 1) gives BatchNorm no statistics. No dropout
  after fc6/fc7: its random masks differ between frameworks.
- The three stages are trained at once, all three upsamplers learned, and
  the score_pool layers start like every other convolution; the paper
  trained FCN-32s, then 16s, then 8s, zero-initialised each new score layer
  and kept the final x8 upsampling fixed at bilinear.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from common.weights import bilinear_kernel
from keras_layers import CBR   # CBR: taught in 01_binarization

UPSAMPLING = ("upscore2", "upscore_pool4", "upscore8")   # layer names, for bilinear_upsampling


def vgg_block(x, filters, convs, name):
    """CBR x convs, named <name>-0, <name>-1, ... (neutral <name>.0, <name>.1, ...)."""
    for i in range(convs):
        x = CBR(x, filters, f"{name}-{i}")
    return x


def upsampling(channels, factor, name):
    """Transposed conv enlarging exactly `factor` times: kernel 2f, stride f, "same", no bias.

    "same" pads f/2 on each side: output side (in - 1) * f - 2 * (f/2) + 2f = in * f.
    No bias, as in the paper.
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
    """Step.init: the neutral initial weights with every upsampling layer set to bilinear."""
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
