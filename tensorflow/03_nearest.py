"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 64, 64, 3] -> enc (CBR x 2) [B, 64, 64, 32] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 64, 64, 32]
      -> dec (CBR x 2) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

The original Chainer answer used a bilinear resize here; every framework in
this suite uses true nearest neighbour (TF: tf.image.resize method="nearest";
for an exact factor of 2 it picks the same pixels as torch's F.interpolate).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

import seg_tf as lab


class NearestNet(lab.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.enc = lab.Sequential(lab.CBR(3, width), lab.CBR(width, width))
        self.mid = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.dec = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.head = lab.Conv2D(width, num_classes, kernel_size=1)

    def __call__(self, x, training=False):
        x = self.mid(tf.nn.max_pool2d(self.enc(x, training), 2, 2, "VALID"), training)
        x = tf.image.resize(x, 2 * tf.shape(x)[1:3], method="nearest")   # the lesson: pixel -> 2x2
        return self.head(self.dec(x, training))


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
