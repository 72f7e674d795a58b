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
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, ConvTranspose2D, Module, Sequential, batch_norm


class ConcatNet(Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q5.1 as step 4, plus fuse: a 1x1 CBR from 2*width to width
        self.enc = Sequential(CBR(3, width), CBR(width, width))
        self.mid = Sequential(CBR(width, width), CBR(width, width))
        self.up = ConvTranspose2D(width, width, kernel_size=2, stride=2)
        self.up_bn = batch_norm(width)
        self.fuse = CBR(2 * width, width, kernel_size=1)
        self.dec = Sequential(CBR(width, width), CBR(width, width))
        self.head = Conv2D(width, num_classes, kernel_size=1)
        # <<< Q5.1

    def __call__(self, x, training=False):
        # >>> Q5.1 concatenate [skip (enc output), upsampled] on the channel axis (the last), then fuse
        skip = self.enc(x, training)
        x = self.mid(tf.nn.max_pool2d(skip, 2, 2, "VALID"), training)
        x = self.up_bn(tf.nn.relu(self.up(x)), training)
        x = tf.concat([skip, x], axis=-1)   # the lesson: [B, H, W, 32+32]
        return self.head(self.dec(self.fuse(x, training), training))
        # <<< Q5.1


def build(num_outputs, args):
    return ConcatNet(num_outputs)


def step(args):
    return Step("05_concat", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
