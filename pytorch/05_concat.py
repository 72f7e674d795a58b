"""Step 5: bring back the details -- concatenate an earlier feature map.

After pooling and upsampling, the fine detail of the input (edges, small
spots) is blurred. The fix that UNet is built on: keep the full-resolution
output of the first CBR x 2 and concatenate it, channel-wise, with the
upsampled map; a 1x1 convolution then mixes the 64 channels back to 32.

    x [B, 3, 64, 64] -> enc (CBR x 2) = skip [B, 32, 64, 64] -> maxpool 2 -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 -> ReLU -> up_bn [B, 32, 64, 64]
      -> concat [skip, up] [B, 64, 64, 64] -> fuse (Conv 1x1 -> ReLU -> BN) [B, 32, 64, 64]
      -> dec (CBR x 2) -> head (1x1) [B, 3, 64, 64]

Concatenation order is [skip, up] in all four frameworks (channel axis 1 in
NCHW here, axis -1 in NHWC); the order matters when weights are exchanged.
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch
import torch.nn.functional as F
from torch import nn

import seg_torch as lab


class ConcatNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.enc = nn.Sequential(lab.CBR(3, width), lab.CBR(width, width))
        self.mid = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.up_bn = lab.batch_norm(width)
        self.fuse = lab.CBR(2 * width, width, kernel_size=1)
        self.dec = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, x):
        skip = self.enc(x)
        x = self.mid(F.max_pool2d(skip, 2))
        x = self.up_bn(F.relu(self.up(x)))
        x = torch.cat([skip, x], dim=1)   # the lesson: [B, 32+32, H, W]
        return self.head(self.dec(self.fuse(x)))


def build(num_outputs, args):
    return ConcatNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), size_multiple=2)


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
