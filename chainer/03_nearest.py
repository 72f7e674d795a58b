"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 3, 64, 64] -> enc (CBR x 2) [B, 32, 64, 64] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 32, 64, 64]
      -> dec (CBR x 2) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

The original Chainer answer used a bilinear resize here (F.resize_images);
every framework in this suite uses true nearest neighbour. In Chainer that is
F.unpooling_2d(x, 2, stride=2, cover_all=False): the inverse of 2x2 pooling,
which writes each value into all four cells of its 2x2 window.
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_chainer as lab   # first: it makes Chainer importable on NumPy 2

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402


class NearestNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        with self.init_scope():
            self.enc = lab.Sequential(lab.CBR(3, width), lab.CBR(width, width))
            self.mid = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
            self.dec = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
            self.head = L.Convolution2D(width, num_classes, ksize=1)

    def forward(self, x):
        # cover_all=False: floor(H/2) like PyTorch (Chainer's default pads odd sizes)
        x = self.mid(F.max_pooling_2d(self.enc(x), 2, cover_all=False))
        x = F.unpooling_2d(x, 2, stride=2, cover_all=False)   # the lesson: each pixel -> 2x2
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
