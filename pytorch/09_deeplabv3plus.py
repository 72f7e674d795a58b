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

import torch
import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import ConvBNReLU

RATES = (2, 3, 4)   # ASPP's atrous rates, for an 8x8 map (see the docstring)


class SeparableConv(nn.Module):
    """Depthwise 3x3 (rate d) -> BN -> ReLU, then pointwise 1x1 -> BN -> ReLU.

    The extra BatchNorm and ReLU after the depthwise convolution are the
    paper's (as in MobileNet). Names: <block>.depthwise.conv.weight [C, 1, 3, 3],
    <block>.pointwise.conv.weight [C', C, 1, 1], and their .bn.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1):
        super().__init__()
        self.depthwise = ConvBNReLU(in_channels, in_channels, 3, dilation=dilation,
                                        groups=in_channels)
        self.pointwise = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def conv_block(in_channels, out_channels, dilation=1):
    """ConvBNReLU 3x3 x 2 (rate `dilation`), named <block>.0, <block>.1."""
    return nn.Sequential(ConvBNReLU(in_channels, out_channels, dilation=dilation),
                         ConvBNReLU(out_channels, out_channels, dilation=dilation))


class Encoder(nn.Module):
    """[B, 3, S, S] -> features [B, 256, S/8, S/8] and low-level features [B, 128, S/4, S/4]."""

    def __init__(self, widths=(32, 64, 128, 256)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = conv_block(3, w0)
        self.block1 = conv_block(w0, w1)
        self.block2 = conv_block(w1, w2)
        self.block3 = conv_block(w2, w3)
        # where a classifier would pool to 1/16, keep 1/8 and dilate instead
        self.block4 = conv_block(w3, w3, dilation=2)

    def forward(self, x):
        x = F.max_pool2d(self.stem(x), 2)                # 1/2
        x = F.max_pool2d(self.block1(x), 2)              # 1/4
        low_level = self.block2(x)                       # 1/4
        x = self.block3(F.max_pool2d(low_level, 2))      # 1/8
        return self.block4(x), low_level                 # still 1/8


class ImagePooling(nn.Module):
    """Global average -> 1x1 conv (with bias, no BatchNorm) -> ReLU -> copied to every position."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        y = F.relu(self.conv(x.mean(dim=(2, 3), keepdim=True)))    # [B, out, 1, 1]
        return y.expand(-1, -1, h, w)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: [B, in, h, w] -> [B, out, h, w]."""

    def __init__(self, in_channels: int, out_channels: int, rates=RATES):
        super().__init__()
        # >>> Q9.1 branches: a 1x1 ConvBNReLU, SeparableConv at each rate, ImagePooling; project: 1x1 ConvBNReLU
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, out_channels, 1)] +
            [SeparableConv(in_channels, out_channels, dilation=r) for r in rates] +
            [ImagePooling(in_channels, out_channels)])
        self.project = ConvBNReLU(len(self.branches) * out_channels, out_channels, 1)
        # <<< Q9.1

    def forward(self, x):
        # >>> Q9.1 concatenate the branches in order on the channel axis, then project
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
        # <<< Q9.1


def resize(x, size):
    """Bilinear, half-pixel centres (align_corners=False), as in tf.image.resize."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    """ASPP output [B, a, S/8, S/8] + low-level [B, l, S/4, S/4] -> logits [B, C, S/4, S/4]."""

    def __init__(self, num_classes: int, aspp_channels: int = 256, low_channels: int = 128,
                 reduced: int = 48, width: int = 256):
        super().__init__()
        # >>> Q9.2 reduce: 1x1 ConvBNReLU to 48; refine: two SeparableConv; classifier 1x1
        self.reduce = ConvBNReLU(low_channels, reduced, 1)
        self.refine = nn.Sequential(SeparableConv(aspp_channels + reduced, width),
                                    SeparableConv(width, width))
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)
        # <<< Q9.2

    def forward(self, x, low_level):
        # >>> Q9.2 bilinear-resize x to low_level's side, concatenate [x, reduced low-level], refine, classify
        x = resize(x, low_level.shape[-2:])
        x = torch.cat([x, self.reduce(low_level)], dim=1)
        return self.classifier(self.refine(x))
        # <<< Q9.2


class DeepLabV3Plus(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
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
