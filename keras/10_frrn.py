"""Step 10: FRRN (Pohlen, Hermans, Mathias and Leibe, 2017) -- two streams, one never pooled.

UNet (step 6) loses the detail on the way down and copies it back in at the end.
FRRN keeps it: a residual stream z stays at the input's resolution from end to
end, while a pooling stream y goes down and up as in an encoder-decoder. Every
full-resolution residual unit (FRRU) reads both, updates y, and adds a
correction to z.

    x [B, S, S, 3] -> stem (ConvBNReLU 5x5): y [B, S, S, 32]; split (1x1): z [B, S, S, 16]
      enc.0..5: FRRUs at scales 2, 2, 4, 4, 8, 8 (y [B, S/scale, S/scale, 48 | 96 | 192],
                y max-pooled 2x2 where the scale doubles); z stays [B, S, S, 16]
      dec.0, dec.1: y nearest x2, then an FRRU at scales 4, 2 (96, 48 channels)
      y nearest x2 [B, S, S, 48]; concat [y, z] -> merge (ConvBNReLU 3x3) [B, S, S, 32]
      -> head (1x1) [B, S, S, C]                                   S must be divisible by 8

Departures from the paper's FRRN A, to fit 64x64 images on a 2-core CPU: 3 pooling
levels, not 4; FRRUs 2+2+2 down and 1+1 up (paper 3+4+2+2 and 2+2+2); widths 48-192
(paper 96-384) and a 16-channel residual stream (paper 32); one ConvBNReLU before the
split and one after the merge (paper: a 5x5 convolution and 3 residual units at each
end); the pooling stream upsampled by nearest neighbour (step 3), where some
re-implementations use bilinear; the suite's loss, not the paper's bootstrapped one.
Why each choice, and what an FRRU computes: docs/lessons/10_frrn.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from keras_layers import conv_bn_relu

ENCODER = (2, 2, 4, 4, 8, 8)   # the pooling stream's scale at each encoder FRRU
DECODER = (4, 2)               # ... and at each decoder FRRU


def FRRU(y, z, filters: int, scale: int, name: str):
    """Full-resolution residual unit: y [B, S/s, S/s, in], z [B, S, S, r] -> (y', z').

    p  = max-pool z by s (the pooling stream's scale)             [B, S/s, S/s, r]
    y' = ConvBNReLU 3x3 x 2 on concat [y, p] (conv1 to `out`)     [B, S/s, S/s, out]
    z' = z + nearest-upsample by s of to_residual(y') (1x1, bias) [B, S, S, r]
    Layers <name>-conv1, <name>-conv2 (conv_bn_relu), <name>-to_residual (neutral
    <unit>.conv1, <unit>.conv2, <unit>.to_residual), and the weightless <name>-pool,
    <name>-concat, <name>-up, <name>-add.
    """
    # >>> Q10.1 pool z by the scale, concatenate [y, pooled z], two conv_bn_relu 3x3 (conv1, conv2); to_residual: Conv2D 1x1 with bias to z's channels, upsampled (nearest) by the scale and added to z
    pooled = layers.MaxPooling2D(scale, name=f"{name}-pool")(z)
    y = layers.Concatenate(axis=-1, name=f"{name}-concat")([y, pooled])
    y = conv_bn_relu(conv_bn_relu(y, filters, f"{name}-conv1"), filters, f"{name}-conv2")
    r = layers.Conv2D(z.shape[-1], 1, name=f"{name}-to_residual")(y)
    r = layers.UpSampling2D(scale, interpolation="nearest", name=f"{name}-up")(r)
    return y, layers.Add(name=f"{name}-add")([z, r])
    # <<< Q10.1


def FRRN(num_classes: int, width: int = 48, stem: int = 32, residual: int = 16) -> keras.Model:
    # >>> Q10.2 stem conv_bn_relu 5x5, split Conv2D 1x1 (bias) to the residual stream; enc-k FRRUs, y max-pooled 2x2 when the scale grows; dec-k FRRUs after a nearest x2 of y; nearest x2, concat [y, z], merge 3x3, head 1x1
    chans = {s: width * s // 2 for s in ENCODER}       # scale 2, 4, 8 -> 48, 96, 192
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    y = conv_bn_relu(x, stem, "stem", kernel_size=5)
    z = layers.Conv2D(residual, 1, name="split")(y)         # the residual stream, full size
    scale = 1
    for k, s in enumerate(ENCODER):
        if s > scale:
            y, scale = layers.MaxPooling2D(2, name=f"pool-{k}")(y), scale * 2
        y, z = FRRU(y, z, chans[s], s, f"enc-{k}")
    for k, s in enumerate(DECODER):
        y = layers.UpSampling2D(2, interpolation="nearest", name=f"up-{k}")(y)
        y, z = FRRU(y, z, chans[s], s, f"dec-{k}")
    y = layers.UpSampling2D(2, interpolation="nearest", name="up-out")(y)   # back to full size
    x = conv_bn_relu(layers.Concatenate(axis=-1, name="concat")([y, z]), stem, "merge")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="frrn")
    # <<< Q10.2


def build(num_outputs, args):
    return FRRN(num_outputs)


def step(args):
    return Step("10_frrn", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
