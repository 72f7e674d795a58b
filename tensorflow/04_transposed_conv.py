"""Step 4: learn the upsampling with a transposed convolution.

Step 3 copied each pixel into a 2x2 patch. A transposed convolution with
kernel 2 and stride 2 also turns every input pixel into a 2x2 patch, but the
patch is a learned 2x2 kernel per (input, output) channel pair, weighted by
the pixel's values: the network learns how to upsample. Followed, as in the
exercise, by ReLU and BatchNorm.

    x [B, 64, 64, 3] -> enc (CBR x 2) -> maxpool 2 [B, 32, 32, 32] -> mid (CBR x 2)
      -> up: transposed conv 2x2 stride 2 [B, 64, 64, 32] -> ReLU -> up_bn
      -> dec (CBR x 2) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

tf.nn.conv2d_transpose takes its filter as [kH, kW, out, in]; the neutral
weights files use PyTorch's [in, out, kH, kW], and tf_weights converts between
them (docs/framework-differences.md).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, ConvTranspose2D, Module, Sequential, batch_norm


class TransposedConvNet(Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q4.1 as step 3, but up: a transposed convolution kernel 2 stride 2, then ReLU and up_bn
        self.enc = Sequential(CBR(3, width), CBR(width, width))
        self.mid = Sequential(CBR(width, width), CBR(width, width))
        self.up = ConvTranspose2D(width, width, kernel_size=2, stride=2)   # the lesson
        self.up_bn = batch_norm(width)
        self.dec = Sequential(CBR(width, width), CBR(width, width))
        self.head = Conv2D(width, num_classes, kernel_size=1)
        # <<< Q4.1

    def __call__(self, x, training=False):
        # >>> Q4.1 up, ReLU, BatchNorm where step 3 copied pixels
        x = self.mid(tf.nn.max_pool2d(self.enc(x, training), 2, 2, "VALID"), training)
        x = self.up_bn(tf.nn.relu(self.up(x)), training)
        return self.head(self.dec(x, training))
        # <<< Q4.1


def build(num_outputs, args):
    return TransposedConvNet(num_outputs)


def step(args):
    return Step("04_transposed_conv", size_multiple=2)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
