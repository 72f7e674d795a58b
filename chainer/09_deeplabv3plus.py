"""Step 9: DeepLabv3+ (Chen, Zhu, Papandreou, Schroff and Adam, 2018), small.

Atrous (dilated) convolutions keep the encoder at 1/8 (output stride 8) with
the reach of a deeper one; ASPP looks at that map at several scales (a 1x1
convolution, three atrous rates, the image's average); the v3+ decoder joins
the upsampled result with low-level features at 1/4. ASPP's and the
decoder's 3x3 convolutions are depthwise-separable (SeparableConv).

    x [B, 3, 64, 64]
      encoder: stem, block1, block2 (= low-level, stride 4), block3 (stride 8),
               block4 (atrous rate 2, still stride 8)     [B, 256, 8, 8]
      aspp: branches 1x1 | SeparableConv rates 2, 3, 4 | ImagePooling
            concat [B, 1280, 8, 8] -> project (1x1)       [B, 256, 8, 8]
      decoder: bilinear x2, concat [aspp, reduce(low-level) 48] [B, 304, 16, 16]
               -> refine (SeparableConv x 2) -> classifier [B, C, 16, 16]
      bilinear x4                                         [B, C, 64, 64]  S divisible by 8

Departures from the paper: a small plain encoder (3x3 convolutions, 32 to 256
channels, no residuals, no ImageNet weights), output stride 8 with rates
2, 3, 4 (for an 8x8 map), max pooling to downsample, no BatchNorm in image
pooling, no dropout. Why each choice (and the receptive fields):
docs/lessons/09_deeplabv3plus.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import ConvBNReLU, Sequential
from common.driver import main
from common.runner import Step

RATES = (2, 3, 4)   # ASPP's atrous rates, for an 8x8 map (see the docstring)


class SeparableConv(chainer.Chain):
    """Depthwise 3x3 (rate d) -> BN -> ReLU, then pointwise 1x1 -> BN -> ReLU.

    The extra BatchNorm and ReLU after the depthwise convolution are the
    paper's (as in MobileNet). Names: <block>.depthwise.conv.weight [C, 1, 3, 3],
    <block>.pointwise.conv.weight [C', C, 1, 1], and their .bn.

    Chainer: atrous and depthwise convolutions are both L.Convolution2D (in ConvBNReLU):
    Convolution2D(C, C, 3, pad=d, dilate=d, groups=C) is a depthwise 3x3 with rate d and
    weight W [C, 1, 3, 3], the neutral layout. L.DilatedConvolution2D computes the same
    atrous convolution but takes no groups; L.DepthwiseConvolution2D(C, 1, 3) stores W as
    [1, C, 3, 3] (the neutral layout transposed) and has no dilation: neither is used.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        with self.init_scope():
            self.depthwise = ConvBNReLU(in_channels, in_channels, 3, dilation=dilation,
                                        groups=in_channels)
            self.pointwise = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def conv_block(in_channels, out_channels, dilation=1):
    """ConvBNReLU 3x3 x 2 (rate `dilation`), named <block>.0, <block>.1."""
    return Sequential(ConvBNReLU(in_channels, out_channels, dilation=dilation),
                      ConvBNReLU(out_channels, out_channels, dilation=dilation))


def max_pool(x):
    return F.max_pooling_2d(x, 2, cover_all=False)


class Encoder(chainer.Chain):
    """[B, 3, S, S] -> features [B, 256, S/8, S/8] and low-level features [B, 128, S/4, S/4]."""

    def __init__(self, widths=(32, 64, 128, 256)):
        super().__init__()
        w0, w1, w2, w3 = widths
        with self.init_scope():
            self.stem = conv_block(3, w0)
            self.block1 = conv_block(w0, w1)
            self.block2 = conv_block(w1, w2)
            self.block3 = conv_block(w2, w3)
            # where a classifier would pool to 1/16, keep 1/8 and dilate instead
            self.block4 = conv_block(w3, w3, dilation=2)

    def forward(self, x):
        x = max_pool(self.stem(x))                       # 1/2
        x = max_pool(self.block1(x))                     # 1/4
        low_level = self.block2(x)                       # 1/4
        x = self.block3(max_pool(low_level))             # 1/8
        return self.block4(x), low_level                 # still 1/8


class ImagePooling(chainer.Chain):
    """Global average -> 1x1 conv (with bias, no BatchNorm) -> ReLU -> copied to every position.

    F.mean(x, axis=(2, 3), keepdims=True), then F.broadcast_to: bilinear upsampling of a 1x1
    map copies the value everywhere; the gradient of a copy sums over the positions.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(in_channels, out_channels, ksize=1)

    def forward(self, x):
        b, _, h, w = x.shape
        y = F.relu(self.conv(F.mean(x, axis=(2, 3), keepdims=True)))   # [B, out, 1, 1]
        return F.broadcast_to(y, (b, y.shape[1], h, w))


class ASPP(chainer.Chain):
    """Atrous spatial pyramid pooling: [B, in, h, w] -> [B, out, h, w]."""

    def __init__(self, in_channels: int, out_channels: int, rates=RATES):
        super().__init__()
        # >>> Q9.1 branches: a 1x1 ConvBNReLU, SeparableConv at each rate, ImagePooling (a ChainList); project: 1x1 ConvBNReLU
        with self.init_scope():
            self.branches = chainer.ChainList(
                ConvBNReLU(in_channels, out_channels, 1),
                *[SeparableConv(in_channels, out_channels, dilation=r) for r in rates],
                ImagePooling(in_channels, out_channels))
            self.project = ConvBNReLU(len(self.branches) * out_channels, out_channels, 1)
        # <<< Q9.1

    def forward(self, x):
        # >>> Q9.1 concatenate the branches in order on the channel axis, then project
        return self.project(F.concat([branch(x) for branch in self.branches], axis=1))
        # <<< Q9.1


def resize(x, size):
    """Bilinear, half-pixel centres (align_corners=False), as in tf.image.resize.

    F.resize_images(x, size, align_corners=False) is PyTorch's interpolate(mode="bilinear",
    align_corners=False): source coordinate (i + 0.5) * in / out - 0.5, clamped at 0,
    neighbours clamped at the edge. Measured against PyTorch on 8->16, 16->64, 1->8 and
    5x7->13x11: outputs within 1e-6, gradients within 3e-6 (float32 rounding). Its default,
    align_corners=True, differs by about 1 on random inputs. It runs in float64 too
    (chainer_layers widens its type check).
    """
    return F.resize_images(x, tuple(size), mode="bilinear", align_corners=False)


class Decoder(chainer.Chain):
    """ASPP output [B, a, S/8, S/8] + low-level [B, l, S/4, S/4] -> logits [B, C, S/4, S/4]."""

    def __init__(self, num_classes: int, aspp_channels: int = 256, low_channels: int = 128,
                 reduced: int = 48, width: int = 256):
        super().__init__()
        # >>> Q9.2 reduce: 1x1 ConvBNReLU to 48; refine: two SeparableConv; classifier 1x1
        with self.init_scope():
            self.reduce = ConvBNReLU(low_channels, reduced, 1)
            self.refine = Sequential(SeparableConv(aspp_channels + reduced, width),
                                     SeparableConv(width, width))
            self.classifier = L.Convolution2D(width, num_classes, ksize=1)
        # <<< Q9.2

    def forward(self, x, low_level):
        # >>> Q9.2 bilinear-resize x to low_level's side, concatenate [x, reduced low-level], refine, classify
        x = resize(x, low_level.shape[-2:])
        x = F.concat([x, self.reduce(low_level)], axis=1)
        return self.classifier(self.refine(x))
        # <<< Q9.2


class DeepLabV3Plus(chainer.Chain):
    def __init__(self, num_classes: int):
        super().__init__()
        with self.init_scope():
            self.encoder = Encoder()
            self.aspp = ASPP(256, 256)
            self.decoder = Decoder(num_classes)

    def forward(self, x):
        # >>> Q9.2 encoder, ASPP, decoder; bilinear-resize the logits to the input side
        features, low_level = self.encoder(x)
        logits = self.decoder(self.aspp(features), low_level)
        return resize(logits, x.shape[-2:])
        # <<< Q9.2


def build(num_outputs, args):
    return DeepLabV3Plus(num_outputs)


def step(args):
    return Step("09_deeplabv3plus", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
