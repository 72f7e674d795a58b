"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 3, 64, 64] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 32, 64, 64] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

Chainer calls the transposed convolution L.Deconvolution2D and stores its
weight W as [in, out, kH, kW], like PyTorch's nn.ConvTranspose2d; that is
also the layout of the neutral weights files (docs/framework-differences.md).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_chainer as lab   # first: it makes Chainer importable on NumPy 2

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402


class TransposedConvNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        with self.init_scope():
            self.enc = lab.Sequential(lab.CBR(3, width), lab.CBR(width, width))
            self.mid = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
            self.up = L.Deconvolution2D(width, width, ksize=2, stride=2)   # the lesson
            self.up_bn = lab.batch_norm(width)
            self.dec = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
            self.head = L.Convolution2D(width, num_classes, ksize=1)

    def forward(self, x):
        x = self.mid(F.max_pooling_2d(self.enc(x), 2, cover_all=False))
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
