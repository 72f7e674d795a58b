"""Step 9: DeepLabv3+ (Chen, Zhu, Papandreou, Schroff and Adam, 2018), small.

Three ideas on top of an encoder-decoder:
- Atrous (dilated) convolution: a 3x3 kernel with its taps `rate` pixels
  apart sees a (2*rate+1)^2 window for the same 9 weights. The encoder stops
  striding at 1/8 (output stride 8): its last stage, which a classifier
  would run at 1/16 after one more pooling, keeps 1/8 and uses rate 2, so
  its filters span as far as they would have, on a map twice as fine.
- ASPP (atrous spatial pyramid pooling): five branches look at the same map
  at different scales -- a 1x1 convolution, three 3x3 atrous convolutions
  (rates 2, 3, 4) and the image's average (image pooling) -- and a 1x1
  convolution (project) mixes their concatenation.
- The v3+ decoder: the ASPP output, upsampled bilinearly to stride 4, is
  concatenated with the encoder's stride-4 features (low-level: edges,
  spots), reduced first by a 1x1 convolution so they do not outweigh it;
  two 3x3 convolutions refine, a 1x1 classifier scores, and a bilinear
  upsampling by 4 returns to the input size.
The 3x3 convolutions of ASPP and the decoder are depthwise-separable
(SeparableConv), as in the paper: a depthwise 3x3 (one filter per channel,
groups=channels, weight [C, 1, 3, 3]) then a pointwise 1x1 that mixes
channels; 9C + C*C' weights instead of 9C*C'.

    x [B, 3, 64, 64]
      encoder.stem   (ConvBNReLU 3x3 x 2)                 [B,  32, 64, 64] -> pool
      encoder.block1 (ConvBNReLU 3x3 x 2)                 [B,  64, 32, 32] -> pool
      encoder.block2 (ConvBNReLU 3x3 x 2) = low-level     [B, 128, 16, 16] -> pool   (stride 4)
      encoder.block3 (ConvBNReLU 3x3 x 2)                 [B, 256,  8,  8]           (stride 8)
      encoder.block4 (ConvBNReLU 3x3 rate 2 x 2)          [B, 256,  8,  8]  no pool: atrous
      aspp.branches.0 (ConvBNReLU 1x1)                    [B, 256,  8,  8]
      aspp.branches.1..3 (SeparableConv, rates 2, 3, 4)   [B, 256,  8,  8] each
      aspp.branches.4 (ImagePooling: mean -> 1x1 conv -> ReLU -> copied to 8x8)
      concat [B, 1280, 8, 8] -> aspp.project (ConvBNReLU 1x1) [B, 256, 8, 8]
      decoder: bilinear x2 [B, 256, 16, 16], reduce (ConvBNReLU 1x1) low-level [B, 48, 16, 16]
        concat [aspp, low-level] [B, 304, 16, 16] -> refine (SeparableConv x 2) [B, 256, 16, 16]
        -> classifier (1x1) [B, C, 16, 16] -> bilinear x4 [B, C, 64, 64]
                                                   S must be divisible by 8

Receptive field: an encoder output cell sees 132x132 input pixels (block4's
rate 2 adds 64, as two 3x3 convolutions after one more pooling would), a
rate-4 ASPP cell 196x196, the image pooling branch all of it.

Why output stride 8 at 64x64: at stride 16 the map would be 4x4, and a 3x3
filter with rate 4 there has all 8 outer taps in the zero padding: it
degenerates to a 1x1 filter, the failure the paper describes for rates close
to the map size. (The paper trains at stride 16: stride 8 quadruples the
cost of its last blocks at 513x513; at 64x64 an 8x8 map is cheap.) Why rates
2, 3, 4: the paper's rates 6, 12, 18 on its 33x33 map (513-pixel crops at
stride 16) keep 77%, 57% and 40% of their taps inside the map on average; on
our 8x8 map rates 2, 3, 4 keep 69%, 56% and 44% (rate 1: 84%, rate 6: 25%).
The rates are fixed: they suit --size 64.

Choices that keep the four frameworks equal:
- Downsampling by 2x2 max pooling, not by strided convolutions (the paper's
  Xception strides its separable convolutions, ResNet its 3x3 ones). For a
  stride-2 3x3 convolution on an even side, PyTorch pads 1 pixel on each
  side (the bottom one unused), TensorFlow's and Keras's "same" pad 0 at the
  top and 1 at the bottom: their windows are one pixel apart.
- Bilinear resizing with align_corners=False (half-pixel centres), which
  tf.image.resize and Keras's UpSampling2D/Resizing also use; Chainer's
  F.resize_images needs align_corners=False passed (its default is True).
- The image pooling branch has no BatchNorm (the paper's has): its map is 1x1,
  so with batch 1 BatchNorm would see one value per channel and have no
  statistics; its 1x1 convolution keeps its bias instead. Bilinear upsampling
  of a 1x1 map copies the value everywhere, so we write it as a copy
  (F.broadcast_to).
- Concatenation orders: ASPP branches 0..4; decoder [aspp, low-level].

Departures from the paper: a small plain encoder of ordinary 3x3
convolutions, widths 32 to 256, no residual connections, no ImageNet weights
(the paper: ResNet-101, or an Xception whose convolutions are separable too,
up to 2048 channels; an all-separable version of this small encoder learned
markedly slower in our 300-iteration runs);
no dropout after ASPP (random masks differ between frameworks); output stride
8 for training and testing. ASPP and decoder keep the paper's 256 channels,
the low-level reduction its 48.

Chainer:
- Atrous and depthwise convolutions are both L.Convolution2D:
  Convolution2D(C, C, 3, pad=d, dilate=d, groups=C) is a depthwise 3x3 with
  rate d and weight W [C, 1, 3, 3], the neutral layout (chainer_layers.ConvBNReLU).
  L.DilatedConvolution2D(..., dilate=d) computes the same atrous convolution
  but takes no groups (its docs point to Convolution2D's dilate).
  L.DepthwiseConvolution2D(C, channel_multiplier, 3) computes
  a depthwise convolution too, but stores W as [channel_multiplier, C, 3, 3]
  = [1, C, 3, 3] (the neutral layout transposed) and has no dilation, so we
  do not use it.
- F.resize_images(x, size, align_corners=False) is PyTorch's
  interpolate(mode="bilinear", align_corners=False): source coordinate
  (i + 0.5) * in / out - 0.5, clamped at 0, neighbours clamped at the edge.
  Measured against PyTorch on 8->16, 16->64, 1->8 and 5x7->13x11: outputs
  within 1e-6, gradients within 3e-6 (float32 rounding). Its default,
  align_corners=True, differs by about 1 on random inputs.
- The image average is F.mean(x, axis=(2, 3), keepdims=True) and the copy
  F.broadcast_to; the gradient of a copy sums over the positions.
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
    """Global average -> 1x1 conv (with bias, no BatchNorm) -> ReLU -> copied to every position."""

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
    """Bilinear, half-pixel centres, as tf.image.resize (needs align_corners=False: default True)."""
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
