"""Chainer building blocks the lessons share.

BatchNorm with the suite's settings (on a C-contiguous input), ConvBNReLU
(the papers' order, used by 08 and 09), Sequential (links named 0, 1, ...
like PyTorch's nn.Sequential), and, by name, the blocks a lesson teaches:
`from chainer_layers import CBR` gives the CBR of 01_binarization
(common/lessons.py). Layout: NCHW, as in PyTorch.

Chainer 7.8.1 (2022) is the last release; chainer_compat, imported below
before chainer itself, lets it run on current NumPy. Importing this module
also lets F.resize_images (bilinear, 09_deeplabv3plus) run in float64.
"""
import chainer_compat  # noqa: F401  (before chainer: restores what NumPy 2 removed)

import chainer
import chainer.functions as F
import chainer.links as L
from chainer.functions.array import resize_images as _resize_images
from chainer.utils import type_check

from common import lessons

# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5              # Chainer's default is 2e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch
BN_DECAY = 1 - BN_MOMENTUM  # Chainer's convention: new = 0.9 * old + (1 - 0.9) * batch


def _accept_any_float(argname):
    """check_type_forward for F.resize_images' two nodes: 4-d, any float dtype."""
    def check_type_forward(self, in_types):
        type_check._argname(in_types, (argname,))
        x_type, = in_types
        type_check.expect(x_type.dtype.kind == "f", x_type.ndim == 4)
    return check_type_forward


# F.resize_images (bilinear, 09_deeplabv3plus) computes in its input's dtype
# (interpolation weights cast to it, NumPy and CuPy alike), but its type
# checks accept float32 only, so a float64 network (the parity tests' exact
# reference) could not call it. Widened to any float dtype, the check
# Chainer's pooling functions make; float32 behaves as before.
_resize_images.ResizeImages.check_type_forward = _accept_any_float("x")
_resize_images.ResizeImagesGrad.check_type_forward = _accept_any_float("gy")


class Contiguous(chainer.FunctionNode):
    """y = x, stored C-contiguous (NCHW in memory). The gradient passes through."""

    def forward(self, inputs):
        xp = chainer.backend.get_array_module(*inputs)
        return xp.ascontiguousarray(inputs[0]),   # a copy only if x is not contiguous

    def backward(self, indexes, grad_outputs):
        return grad_outputs


class BatchNormalization(L.BatchNormalization):
    """L.BatchNormalization that first makes its input C-contiguous.

    Chainer's CPU convolution returns a transposed view: [B, C, H, W] stored as
    B, H, W, C in memory. NumPy then sums each channel's batch statistics
    value after value in float32 instead of pairwise, and after a few layers
    the logits drift ~1e-4 from PyTorch's (and from a float64 reference); on a
    contiguous copy they agree to ~1e-5. The copy costs little next to a conv.
    """

    def forward(self, x, **kwargs):
        x, = Contiguous().apply((x,))
        return super().forward(x, **kwargs)


def batch_norm(channels: int) -> L.BatchNormalization:
    """BatchNorm over axes (B, H, W). Like PyTorch, Chainer normalises with the
    biased batch variance and keeps the unbiased one in its running average (avg_var)."""
    return BatchNormalization(channels, decay=BN_DECAY, eps=BN_EPS)


class ConvBNReLU(chainer.Chain):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (the exercise's CBR has ReLU first).

    Used by SegNet (08) and DeepLabv3+ (09), which put BatchNorm before the
    ReLU as their papers do (08_segnet.py explains why its unpooling needs
    that order). The convolution has no bias: BatchNorm subtracts the batch
    mean right after it, which would cancel any bias, and BatchNorm's beta
    plays its role. Padding dilation * (k // 2) keeps the side; with stride 1
    and odd k that "same" padding is symmetric in every framework.
    groups=in_channels=out_channels makes it depthwise: weight [C, 1, k, k],
    the neutral layout. (L.DepthwiseConvolution2D would store [1, C, k, k],
    i.e. [channel_multiplier, in_channels, k, k], and has no dilation; a
    grouped L.Convolution2D has both right.) Neutral names: <block>.conv.weight,
    <block>.bn.*. Input [B, in, H, W] -> [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, groups: int = 1):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(in_channels, out_channels, kernel_size,
                                        pad=dilation * (kernel_size // 2), nobias=True,
                                        dilate=dilation, groups=groups)
            self.bn = batch_norm(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Sequential(chainer.ChainList):
    """Links called in order, named 0, 1, 2, ... like PyTorch's nn.Sequential.

    chainer.Sequential does the same computation, but a Chainer 7 bug names
    its third and later links in reverse order (0, n-1, ..., 2, 1; chainer/chainer
    issue #6053, left unfixed to keep old weight files loadable), so its
    weight names would not match PyTorch's. A ChainList numbers its links in
    the order they are given.
    """

    def forward(self, x):
        for link in self:
            x = link(x)
        return x


def __getattr__(name):
    """CBR and the other blocks a lesson teaches, from that lesson's answer file."""
    if name in lessons.TAUGHT:
        return lessons.taught("chainer", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
