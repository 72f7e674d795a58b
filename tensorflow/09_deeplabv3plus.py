"""Step 9: DeepLabv3+ (Chen, Zhu, Papandreou, Schroff and Adam, 2018), small.

Atrous (dilated) convolutions keep the encoder at 1/8 (output stride 8) with
the reach of a deeper one; ASPP looks at that map at several scales (a 1x1
convolution, three atrous rates, the image's average); the v3+ decoder joins
the upsampled result with low-level features at 1/4. ASPP's and the
decoder's 3x3 convolutions are depthwise-separable (SeparableConv).

    x [B, 64, 64, 3]
      encoder: stem, block1, block2 (= low-level, stride 4), block3 (stride 8),
               block4 (atrous rate 2, still stride 8)     [B, 8, 8, 256]
      aspp: branches 1x1 | SeparableConv rates 2, 3, 4 | ImagePooling
            concat [B, 8, 8, 1280] -> project (1x1)       [B, 8, 8, 256]
      decoder: bilinear x2, concat [aspp, reduce(low-level) 48] [B, 16, 16, 304]
               -> refine (SeparableConv x 2) -> classifier [B, 16, 16, C]
      bilinear x4                                         [B, 64, 64, C]  S divisible by 8

Departures from the paper: a small plain encoder (3x3 convolutions, 32 to 256
channels, no residuals, no ImageNet weights), output stride 8 with rates
2, 3, 4 (for an 8x8 map), max pooling to downsample, no BatchNorm in image
pooling, no dropout. Why each choice (and the receptive fields):
docs/lessons/09_deeplabv3plus.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
from tf_layers import Conv2D, ConvBNReLU, Module, Sequential

RATES = (2, 3, 4)   # ASPP's atrous rates, for an 8x8 map (see the docstring)


class SeparableConv(Module):
    """Depthwise 3x3 (rate d) -> BN -> ReLU, then pointwise 1x1 -> BN -> ReLU.

    The extra BatchNorm and ReLU after the depthwise convolution are the
    paper's (as in MobileNet). The depthwise one is tf.nn.depthwise_conv2d
    (tf_layers.DepthwiseConv2D), its neutral weight [C, 1, 3, 3] as PyTorch's
    groups=channels stores it; 9C + C*C' weights instead of 9C*C'. Neutral
    names: <block>.depthwise.conv.weight [C, 1, 3, 3], <block>.pointwise.conv.weight
    [C', C, 1, 1], and their .bn.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        self.depthwise = ConvBNReLU(in_channels, in_channels, 3, dilation=dilation,
                                    groups=in_channels)
        self.pointwise = ConvBNReLU(in_channels, out_channels, 1)

    def __call__(self, x, training=False):
        return self.pointwise(self.depthwise(x, training), training)


def conv_block(in_channels, out_channels, dilation=1):
    """ConvBNReLU 3x3 x 2 (rate `dilation`), named <block>.0, <block>.1.

    Stride 1, dilated or not, with "SAME": for an odd kernel it pads rate * (k // 2) on
    every side, as PyTorch's padding does. (A stride-2 3x3 convolution would not match:
    on an even side "SAME" pads 0 at the top and 1 at the bottom, PyTorch 1 on each side;
    hence max pooling to downsample.)
    """
    return Sequential(ConvBNReLU(in_channels, out_channels, dilation=dilation),
                      ConvBNReLU(out_channels, out_channels, dilation=dilation))


def pool(x):
    return tf.nn.max_pool2d(x, 2, 2, "VALID")


class Encoder(Module):
    """[B, S, S, 3] -> features [B, S/8, S/8, 256] and low-level features [B, S/4, S/4, 128]."""

    def __init__(self, widths=(32, 64, 128, 256)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = conv_block(3, w0)
        self.block1 = conv_block(w0, w1)
        self.block2 = conv_block(w1, w2)
        self.block3 = conv_block(w2, w3)
        # where a classifier would pool to 1/16, keep 1/8 and dilate instead
        self.block4 = conv_block(w3, w3, dilation=2)

    def __call__(self, x, training=False):
        x = pool(self.stem(x, training))                 # 1/2
        x = pool(self.block1(x, training))               # 1/4
        low_level = self.block2(x, training)             # 1/4
        x = self.block3(pool(low_level), training)       # 1/8
        return self.block4(x, training), low_level       # still 1/8


class ImagePooling(Module):
    """Global average -> 1x1 conv (with bias, no BatchNorm) -> ReLU -> copied to every position.

    Bilinear upsampling of a 1x1 map copies the value everywhere, so it is written as a
    copy (tf.broadcast_to; its gradient sums over the copies).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Conv2D(in_channels, out_channels, kernel_size=1)

    def __call__(self, x, training=False):
        y = tf.nn.relu(self.conv(tf.reduce_mean(x, axis=[1, 2], keepdims=True)))  # [B, 1, 1, out]
        return tf.broadcast_to(y, tf.concat([tf.shape(x)[:3], tf.shape(y)[3:]], axis=0))


class ASPP(Module):
    """Atrous spatial pyramid pooling: [B, h, w, in] -> [B, h, w, out]."""

    def __init__(self, in_channels: int, out_channels: int, rates=RATES):
        super().__init__()
        # >>> Q9.1 branches: a 1x1 ConvBNReLU, SeparableConv at each rate, ImagePooling; project: 1x1 ConvBNReLU
        self.branches = ([ConvBNReLU(in_channels, out_channels, 1)] +
                         [SeparableConv(in_channels, out_channels, dilation=r) for r in rates] +
                         [ImagePooling(in_channels, out_channels)])
        self.project = ConvBNReLU(len(self.branches) * out_channels, out_channels, 1)
        # <<< Q9.1

    def __call__(self, x, training=False):
        # >>> Q9.1 concatenate the branches in order on the channel axis (the last), then project
        return self.project(tf.concat([branch(x, training) for branch in self.branches], axis=-1),
                            training)
        # <<< Q9.1


def resize(x, size):
    """Bilinear, half-pixel centres (PyTorch's align_corners=False); size = (height, width).

    tf.image.resize(method="bilinear", antialias=False) computes the source coordinate
    (dst + 0.5) * in/out - 0.5 and clamps at the border, as F.interpolate(align_corners=False)
    does. (TF1's tf.image.resize_bilinear defaulted to align_corners=False WITHOUT half-pixel
    centres, a third convention; antialias only matters when shrinking.)

    tf.image.resize's bilinear kernel computes and returns float32 whatever the input, so
    for a float64 network (the parity tests' exact check) the same interpolation is written
    as two matrix products. The scripts run float32: tf.image.resize.
    """
    if x.dtype == tf.float64:
        rows = _interpolation_matrix(tf.shape(x)[1], size[0], x.dtype)   # [out_h, in_h]
        cols = _interpolation_matrix(tf.shape(x)[2], size[1], x.dtype)   # [out_w, in_w]
        return tf.einsum("oh,bhwc,pw->bopc", rows, x, cols)
    return tf.image.resize(x, size, method="bilinear", antialias=False)


def _interpolation_matrix(n_in, n_out, dtype):
    """[n_out, n_in] weights of 1-D linear interpolation with half-pixel centres: output i
    reads the source coordinate (i + 0.5) * n_in / n_out - 0.5, clamped to [0, n_in - 1]."""
    scale = tf.cast(n_in, dtype) / tf.cast(n_out, dtype)
    src = tf.maximum((tf.cast(tf.range(n_out), dtype) + 0.5) * scale - 0.5, 0.0)
    i0 = tf.minimum(tf.cast(tf.floor(src), tf.int32), n_in - 1)
    i1 = tf.minimum(i0 + 1, n_in - 1)
    frac = (src - tf.cast(i0, dtype))[:, None]
    return tf.one_hot(i0, n_in, dtype=dtype) * (1 - frac) + tf.one_hot(i1, n_in, dtype=dtype) * frac


class Decoder(Module):
    """ASPP output [B, S/8, S/8, a] + low-level [B, S/4, S/4, l] -> logits [B, S/4, S/4, C]."""

    def __init__(self, num_classes: int, aspp_channels: int = 256, low_channels: int = 128,
                 reduced: int = 48, width: int = 256):
        super().__init__()
        # >>> Q9.2 reduce: 1x1 ConvBNReLU to 48; refine: two SeparableConv; classifier 1x1
        self.reduce = ConvBNReLU(low_channels, reduced, 1)
        self.refine = Sequential(SeparableConv(aspp_channels + reduced, width),
                                 SeparableConv(width, width))
        self.classifier = Conv2D(width, num_classes, kernel_size=1)
        # <<< Q9.2

    def __call__(self, x, low_level, training=False):
        # >>> Q9.2 bilinear-resize x to low_level's side, concatenate [x, reduced low-level], refine, classify
        x = resize(x, tf.shape(low_level)[1:3])
        x = tf.concat([x, self.reduce(low_level, training)], axis=-1)
        return self.classifier(self.refine(x, training))
        # <<< Q9.2


class DeepLabV3Plus(Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.encoder = Encoder()
        self.aspp = ASPP(256, 256)
        self.decoder = Decoder(num_classes)

    def __call__(self, x, training=False):
        # >>> Q9.2 encoder, ASPP, decoder; bilinear-resize the logits to the input side
        features, low_level = self.encoder(x, training)
        logits = self.decoder(self.aspp(features, training), low_level, training)
        return resize(logits, tf.shape(x)[1:3])
        # <<< Q9.2


def build(num_outputs, args):
    return DeepLabV3Plus(num_outputs)


def step(args):
    return Step("09_deeplabv3plus", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
