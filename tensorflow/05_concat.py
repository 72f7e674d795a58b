"""Step 5: bring back the details -- concatenate an earlier feature map.

After pooling and upsampling, the fine detail of the input (edges, small
spots) is blurred. The fix that UNet is built on: keep the full-resolution
output of the first CBR x 2 and concatenate it, channel-wise, with the
upsampled map; a 1x1 convolution then mixes the 64 channels back to 32.

    x [B, 64, 64, 3] -> enc (CBR x 2) = skip [B, 64, 64, 32] -> maxpool 2 -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 -> ReLU -> up_bn [B, 64, 64, 32]
      -> concat [skip, up] [B, 64, 64, 64] -> fuse (Conv 1x1 -> ReLU -> BN) [B, 64, 64, 32]
      -> dec (CBR x 2) -> head (1x1) [B, 64, 64, 3]

Concatenation order is [skip, up] in all four frameworks (channel axis -1 in
NHWC here, axis 1 in NCHW); the order matters when weights are exchanged.
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

import seg_tf as lab


class ConcatNet(lab.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.enc = lab.Sequential(lab.CBR(3, width), lab.CBR(width, width))
        self.mid = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.up = lab.ConvTranspose2D(width, width, kernel_size=2, stride=2)
        self.up_bn = lab.batch_norm(width)
        self.fuse = lab.CBR(2 * width, width, kernel_size=1)
        self.dec = lab.Sequential(lab.CBR(width, width), lab.CBR(width, width))
        self.head = lab.Conv2D(width, num_classes, kernel_size=1)

    def __call__(self, x, training=False):
        skip = self.enc(x, training)
        x = self.mid(tf.nn.max_pool2d(skip, 2, 2, "VALID"), training)
        x = self.up_bn(tf.nn.relu(self.up(x)), training)
        x = tf.concat([skip, x], axis=-1)   # the lesson: [B, H, W, 32+32]
        return self.head(self.dec(self.fuse(x, training), training))


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
