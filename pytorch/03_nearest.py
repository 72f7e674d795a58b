"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 3, 64, 64] -> enc (CBR x 2) [B, 32, 64, 64] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 32, 64, 64]
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

The original Chainer answer used a bilinear resize here; every framework in
this suite uses true nearest neighbour (torch: F.interpolate mode="nearest").
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch.nn.functional as F
from torch import nn

import seg_torch as lab


class NearestNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.enc = nn.Sequential(lab.CBR(3, width), lab.CBR(width, width))
        self.mid = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.dec = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, x):
        x = self.mid(F.max_pool2d(self.enc(x), 2))
        x = F.interpolate(x, scale_factor=2, mode="nearest")   # the lesson: each pixel -> 2x2
        return self.head(self.dec(x))


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), size_multiple=2)


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
