"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 3, 64, 64] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 32, 64, 64] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

PyTorch stores the transposed conv's weight as [in, out, kH, kW]; that is
also the layout of the neutral weights files (docs/framework-differences.md).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import torch.nn.functional as F
from torch import nn

import seg_torch as lab


class TransposedConvNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.enc = nn.Sequential(lab.CBR(3, width), lab.CBR(width, width))
        self.mid = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)   # the lesson
        self.up_bn = lab.batch_norm(width)
        self.dec = nn.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.head = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, x):
        x = self.mid(F.max_pool2d(self.enc(x), 2))
        x = self.up_bn(F.relu(self.up(x)))
        return self.head(self.dec(x))


def build(num_outputs, args):
    return TransposedConvNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), size_multiple=2)


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
