"""Step 10: FRRN (Pohlen, Hermans, Mathias and Leibe, 2017) -- two streams, one never pooled.

UNet (step 6) loses the detail on the way down and copies it back in at the end.
FRRN keeps it: a residual stream z stays at the input's resolution from end to
end, while a pooling stream y goes down and up as in an encoder-decoder. Every
full-resolution residual unit (FRRU) reads both, updates y, and adds a
correction to z.

    x [B, 3, S, S] -> stem (ConvBNReLU 5x5): y [B, 32, S, S]; split (1x1): z [B, 16, S, S]
      enc.0..5: FRRUs at scales 2, 2, 4, 4, 8, 8 (y [B, 48 | 96 | 192, S/scale, S/scale],
                y max-pooled 2x2 where the scale doubles); z stays [B, 16, S, S]
      dec.0, dec.1: y nearest x2, then an FRRU at scales 4, 2 (96, 48 channels)
      y nearest x2 [B, 48, S, S]; concat [y, z] -> merge (ConvBNReLU 3x3) [B, 32, S, S]
      -> head (1x1) [B, C, S, S]                                   S must be divisible by 8

Departures from the paper's FRRN A, to fit 64x64 images on a 2-core CPU: 3 pooling
levels, not 4; FRRUs 2+2+2 down and 1+1 up (paper 3+4+2+2 and 2+2+2); widths 48-192
(paper 96-384) and a 16-channel residual stream (paper 32); one ConvBNReLU before the
split and one after the merge (paper: a 5x5 convolution and 3 residual units at each
end); the pooling stream upsampled by nearest neighbour (step 3), where some
re-implementations use bilinear; the suite's loss, not the paper's bootstrapped one.
Why each choice, and what an FRRU computes: docs/lessons/10_frrn.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch
import torch.nn.functional as F
from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import ConvBNReLU

ENCODER = (2, 2, 4, 4, 8, 8)   # the pooling stream's scale at each encoder FRRU
DECODER = (4, 2)               # ... and at each decoder FRRU


class FRRU(nn.Module):
    """Full-resolution residual unit: y [B, in, S/s, S/s], z [B, r, S, S] -> (y', z').

    p  = max-pool z by s (the pooling stream's scale)             [B, r, S/s, S/s]
    y' = ConvBNReLU 3x3 x 2 on concat [y, p] (conv1 to `out`)     [B, out, S/s, S/s]
    z' = z + nearest-upsample by s of to_residual(y') (1x1, bias) [B, r, S, S]
    Names: <unit>.conv1, <unit>.conv2 (ConvBNReLU), <unit>.to_residual.
    """

    def __init__(self, in_channels: int, out_channels: int, residual_channels: int, scale: int):
        super().__init__()
        # >>> Q10.1 conv1 (in + residual channels -> out) and conv2 (out -> out): ConvBNReLU 3x3; to_residual: 1x1 conv with bias, out -> residual channels
        self.scale = scale
        self.conv1 = ConvBNReLU(in_channels + residual_channels, out_channels)
        self.conv2 = ConvBNReLU(out_channels, out_channels)
        self.to_residual = nn.Conv2d(out_channels, residual_channels, kernel_size=1)
        # <<< Q10.1

    def forward(self, y, z):
        # >>> Q10.1 pool z by the scale, concatenate [y, pooled z], two convolutions; add the projection, upsampled (nearest), to z
        pooled = F.max_pool2d(z, self.scale)
        y = self.conv2(self.conv1(torch.cat([y, pooled], dim=1)))
        z = z + F.interpolate(self.to_residual(y), scale_factor=self.scale, mode="nearest")
        return y, z
        # <<< Q10.1


class FRRN(nn.Module):
    def __init__(self, num_classes: int, width: int = 48, stem: int = 32, residual: int = 16):
        super().__init__()
        # >>> Q10.2 stem 5x5, split 1x1 (bias) to the residual stream, enc/dec FRRUs (width x scale/2 channels), merge 3x3, head 1x1
        chans = {s: width * s // 2 for s in ENCODER}       # scale 2, 4, 8 -> 48, 96, 192
        self.stem = ConvBNReLU(3, stem, kernel_size=5)
        self.split = nn.Conv2d(stem, residual, kernel_size=1)
        ins = [stem] + [chans[s] for s in ENCODER[:-1]]
        self.enc = nn.ModuleList([FRRU(i, chans[s], residual, s) for i, s in zip(ins, ENCODER)])
        ins = [chans[ENCODER[-1]]] + [chans[s] for s in DECODER[:-1]]
        self.dec = nn.ModuleList([FRRU(i, chans[s], residual, s) for i, s in zip(ins, DECODER)])
        self.merge = ConvBNReLU(chans[DECODER[-1]] + residual, stem)
        self.head = nn.Conv2d(stem, num_classes, kernel_size=1)
        # <<< Q10.2

    def forward(self, x):
        # >>> Q10.2 the two streams: pool y 2x2 before an encoder FRRU whose scale is larger, upsample y x2 (nearest) before each decoder FRRU and at the end; concat [y, z]
        y = self.stem(x)
        z = self.split(y)                                     # the residual stream, full size
        scale = 1
        for frru in self.enc:
            if frru.scale > scale:
                y, scale = F.max_pool2d(y, 2), scale * 2
            y, z = frru(y, z)
        for frru in self.dec:
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            y, z = frru(y, z)
        y = F.interpolate(y, scale_factor=2, mode="nearest")  # back to full size
        return self.head(self.merge(torch.cat([y, z], dim=1)))
        # <<< Q10.2


def build(num_outputs, args):
    return FRRN(num_outputs)


def step(args):
    return Step("10_frrn", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
