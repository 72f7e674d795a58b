"""Step 7: FCN-8s (Long, Shelhamer and Darrell, 2015) -- coarse scores, refined by skips.

Fully connected layers read as convolutions (fc6, fc7) score a coarse grid
at 1/32 of the input; FCN-8s refines it twice, each time upsampling by 2 with
a transposed convolution and ADDING class scores read off a finer map by a
1x1 convolution (pool4, then pool3); a last transposed convolution enlarges
by 8. The upsamplers start as bilinear interpolation (bilinear_upsampling).

    x [B, 64, 64, 3]
      conv1, conv2 (CBR x 2 each), conv3..conv5 (CBR x 3 each), each -> pool
        pool3 [B, 8, 8, 128] -> score_pool3 (1x1) [B, 8, 8, C]
        pool4 [B, 4, 4, 256] -> score_pool4 (1x1) [B, 4, 4, C]
        pool5 [B, 2, 2, 256] -> fc6 (3x3) -> ReLU -> fc7 (1x1) -> ReLU -> score_fr [B, 2, 2, C]
      upscore2 (transposed 4x4, stride 2, pad 1)      [B, 4, 4, C] + score_pool4
      upscore_pool4 (transposed 4x4, stride 2, pad 1) [B, 8, 8, C] + score_pool3
      upscore8 (transposed 16x16, stride 8, pad 4)    [B, 64, 64, C]  S divisible by 32

Departures from the paper: "same" padding instead of its 100-pixel pad and
crops; trained from scratch, VGG16's 2-2-3-3-3 blocks narrower (32 to 256)
with the exercise's CBR (Conv -> ReLU -> BatchNorm), fc6 3x3 with 512
channels; no dropout; the three stages trained at once. Why, and the
receptive fields: docs/lessons/07_fcn8s.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
from common.weights import bilinear_kernel
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, ConvTranspose2D, Module, Sequential

UPSAMPLING = ("upscore2", "upscore_pool4", "upscore8")   # layer names, for bilinear_upsampling


def vgg_block(in_channels, out_channels, convs):
    """CBR x convs (the first changes the channels), named <block>.0, <block>.1, ..."""
    return Sequential(CBR(in_channels, out_channels),
                      *[CBR(out_channels, out_channels) for _ in range(convs - 1)])


def upsampling(channels, factor):
    """Transposed conv enlarging exactly `factor` times: kernel 2f, stride f, pad f/2, no bias.

    Output side (in - 1) * f - 2 * (f/2) + 2f = in * f. No bias, as in the paper.
    The padding f/2 is passed explicitly to tf.nn.conv2d_transpose
    (tf_layers.ConvTranspose2D). For these even f, padding="SAME" with output
    side in*f would crop the same f/2 per side; explicit padding says what
    PyTorch's padding=f/2 says.
    """
    return ConvTranspose2D(channels, channels, 2 * factor, stride=factor,
                           padding=factor // 2, bias=False)


def pool(x):
    """2x2 max pooling. After CBR blocks it meets ties: where a window has four negative
    pre-activations, the ReLU gives four zeros and BatchNorm four equal values.
    tf.nn.max_pool2d's gradient goes to the first maximum in row-major order, as PyTorch's
    does, so gradients agree (checked inside tf.function on a tensor full of exact ties)."""
    return tf.nn.max_pool2d(x, 2, 2, "VALID")


class FCN8s(Module):
    def __init__(self, num_classes: int, widths=(32, 64, 128, 256, 256), fc_width: int = 512):
        super().__init__()
        # >>> Q7.1 five conv blocks, fc6/fc7 as convolutions, score heads for pool3 and pool4, bilinear-initialised transposed convolutions
        w1, w2, w3, w4, w5 = widths
        self.conv1 = vgg_block(3, w1, 2)
        self.conv2 = vgg_block(w1, w2, 2)
        self.conv3 = vgg_block(w2, w3, 3)
        self.conv4 = vgg_block(w3, w4, 3)
        self.conv5 = vgg_block(w4, w5, 3)
        self.fc6 = Conv2D(w5, fc_width, 3)               # VGG's first fully connected layer
        self.fc7 = Conv2D(fc_width, fc_width, 1)         # ... and its second
        self.score_fr = Conv2D(fc_width, num_classes, 1)
        self.score_pool4 = Conv2D(w4, num_classes, 1)
        self.score_pool3 = Conv2D(w3, num_classes, 1)
        self.upscore2 = upsampling(num_classes, 2)
        self.upscore_pool4 = upsampling(num_classes, 2)
        self.upscore8 = upsampling(num_classes, 8)
        # <<< Q7.1

    def __call__(self, x, training=False):
        # >>> Q7.1 score of fc7 up x2 + score of pool4, up x2 + score of pool3, up x8
        x = pool(self.conv1(x, training))                # 1/2
        x = pool(self.conv2(x, training))                # 1/4
        pool3 = pool(self.conv3(x, training))            # 1/8
        pool4 = pool(self.conv4(pool3, training))        # 1/16
        pool5 = pool(self.conv5(pool4, training))        # 1/32
        x = tf.nn.relu(self.fc7(tf.nn.relu(self.fc6(pool5))))
        score = self.score_fr(x)                         # FCN-32s would upsample this x32
        fuse_pool4 = self.upscore2(score) + self.score_pool4(pool4)   # FCN-16s: this x16
        fuse_pool3 = self.upscore_pool4(fuse_pool4) + self.score_pool3(pool3)
        return self.upscore8(fuse_pool3)                 # FCN-8s
        # <<< Q7.1


def bilinear_upsampling(weights):
    """Step.init: the neutral initial weights with every upsampling layer set to bilinear.

    As in the paper, the upsamplers start as bilinear interpolation: class c to class c,
    other pairs zero (common.weights.bilinear_kernel), the same kernels in every framework
    (the neutral layout is PyTorch's IOHW; tf_weights turns it into TF's [k, k, out, in]).
    A transposed convolution with kernel 2f, stride f and padding f/2 carrying that kernel
    IS bilinear upsampling by f with half-pixel centres (tf.image.resize(method="bilinear")),
    except in the outermost f/2 rows and columns, which it fades towards zero instead of
    clamping. Training then adapts all three.
    """
    out = dict(weights)
    for layer in UPSAMPLING:
        in_channels, out_channels, k, _ = out[f"{layer}.weight"].shape   # neutral IOHW
        out[f"{layer}.weight"] = bilinear_kernel(in_channels, out_channels, k)
    return out


def build(num_outputs, args):
    return FCN8s(num_outputs)


def step(args):
    return Step("07_fcn8s", size_multiple=32, init=bilinear_upsampling)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
