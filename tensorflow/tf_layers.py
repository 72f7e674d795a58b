"""TensorFlow building blocks the lessons share, as small tf.Module classes (no Keras here).

The layers the lessons use (Conv2D, DepthwiseConv2D, ConvTranspose2D,
BatchNorm with the suite's settings, Sequential), ConvBNReLU (the papers'
order, used by 08 and 09), the dtype the layers create their variables in
(with_floatx), and, by name, the blocks a lesson teaches: `from tf_layers
import CBR` gives the CBR of 01_binarization (common/lessons.py).
Layout: NHWC (channels last, TensorFlow's default on CPU).

Where this differs from PyTorch, and why:
- A tf.Module has no train()/eval() switch: every layer takes `training`
  as an argument, and BatchNorm reads it (as Keras layers do).
- Variables are stored in TensorFlow's own layouts: conv kernels HWIO
  [kH, kW, in, out], transposed-conv filters [kH, kW, out, in]; they are
  converted to PyTorch's layouts only when weights go in or out (tf_weights).
"""
import numpy as np
import tensorflow as tf

from common import lessons

# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch
# BatchNorm's batch statistics are sums over the B*H*W pixels of a channel. TensorFlow's CPU
# kernels sum those rows of an NHWC tensor in one float32 reduction: at 4 x 64 x 64 the batch
# mean kept about 5 digits (PyTorch, summing pairwise, about 7) and UNet's gradients came out
# 8x further from exact than PyTorch's. Summing along each image row first, then over the rows
# (_sum_bhw, as keras_layers does) brings them within the parity tolerance with oneDNN on and
# off. (Until 2026-12-02 this column summed in float64 instead: as exact, 10% slower on UNet,
# 12% on step 1.)
# The dtype of every variable a layer creates: float32, or float64 for the parity tests'
# exact reference. Set only around building a model, by with_floatx().
FLOATX = tf.float32


class with_floatx:
    """`with with_floatx(tf.float64): model = build(n)` creates the model's variables in float64."""

    def __init__(self, dtype):
        self.dtype = tf.as_dtype(dtype)

    def __enter__(self):
        global FLOATX
        self.previous, FLOATX = FLOATX, self.dtype

    def __exit__(self, *exc):
        global FLOATX
        FLOATX = self.previous


class Module(tf.Module):
    """tf.Module that names its variables with PyTorch's dotted paths.

    A child's name is the attribute it is stored in (`self.conv` -> "conv");
    items of a list, and layers of a Sequential, are named by their index.
    So `self.trunk = Sequential(CBR(...), ...)` gives "trunk.0.conv.weight".
    (tf.Module's own `variables` has no such paths, hence this walk.)
    """

    def children(self):
        """(name, child) pairs in the order they were assigned."""
        return [(k, v) for k, v in vars(self).items() if not k.startswith("_")]

    def named_variables(self, prefix=""):
        """[(dotted name, tf.Variable)], trainable or not."""
        out = []
        for name, child in self.children():
            path = f"{prefix}{name}"
            if isinstance(child, tf.Variable):
                out.append((path, child))
            elif isinstance(child, Module):
                out.extend(child.named_variables(path + "."))
            elif isinstance(child, (list, tuple)):   # a list of layers, like nn.ModuleList
                for i, item in enumerate(child):
                    if isinstance(item, Module):
                        out.extend(item.named_variables(f"{path}.{i}."))
        return out


def _he_normal(shape, fan_in):
    # Placeholder values with the spread of the shared initializer
    # (common.weights.init_weights); the runner overwrites them with its seeded
    # values so that the four frameworks start from the same weights.
    return tf.random.normal(shape, stddev=float(np.sqrt(2.0 / fan_in)), dtype=FLOATX)


class Conv2D(Module):
    """Conv kxk, stride 1, rate `dilation`, padding dilation*(k//2), a bias unless bias=False.

    x [B, H, W, in] -> [B, H, W, out]. Kernel stored HWIO [k, k, in, out].
    With stride 1 and odd k, "SAME" pads (k-1)*dilation/2 on every side: the
    same symmetric padding as PyTorch's padding=dilation*(k//2). (With stride 2
    it would not be: "SAME" then pads less at the top than at the bottom.)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int = 1, bias: bool = True):
        super().__init__()
        self.dilation = dilation
        self.weight = tf.Variable(_he_normal([kernel_size, kernel_size, in_channels, out_channels],
                                             in_channels * kernel_size ** 2), name="weight")
        self.bias = tf.Variable(tf.zeros([out_channels], FLOATX), name="bias") if bias else None

    def __call__(self, x, training=False):
        if self.dilation == 1:
            y = tf.nn.conv2d(x, self.weight, strides=1, padding="SAME")
        else:
            # Atrous as the DeepLab papers write it: space-to-batch (the map split into
            # rate x rate interleaved sub-maps), a plain 3x3 convolution on each, batch-to-space.
            # Not tf.nn.conv2d(dilations=): without oneDNN (TF_ENABLE_ONEDNN_OPTS=0, TF's
            # default on CPUs without AVX-512 VNNI/BF16 or AMX, i.e. most laptops) its filter
            # gradient has no CPU kernel. (tf.nn.depthwise_conv2d already does space-to-batch.)
            y = tf.nn.atrous_conv2d(x, self.weight, self.dilation, padding="SAME")
        return y if self.bias is None else tf.nn.bias_add(y, self.bias)


class DepthwiseConv2D(Module):
    """One kxk filter per channel (nn.Conv2d with groups=channels), rate `dilation`, no bias.

    x [B, H, W, C] -> [B, H, W, C]; channel c is convolved with filter c only.
    Filter stored [k, k, 1, C]: the HWIO layout of a grouped convolution with
    one input channel per group, which the neutral conversion turns into
    PyTorch's [C, 1, k, k]. tf.nn.depthwise_conv2d wants [k, k, C, 1]
    (channel multiplier 1): the same numbers in the same order, so a reshape.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        self.dilation = dilation
        self.weight = tf.Variable(_he_normal([kernel_size, kernel_size, 1, channels],
                                             kernel_size ** 2), name="weight")

    def __call__(self, x, training=False):
        k, _, _, c = self.weight.shape
        return tf.nn.depthwise_conv2d(x, tf.reshape(self.weight, [k, k, c, 1]), [1, 1, 1, 1],
                                      padding="SAME", dilations=[self.dilation, self.dilation])


class ConvTranspose2D(Module):
    """Transposed conv kxk with a stride, padding p (default 0) and a bias unless bias=False.

    x [B, H, W, in] -> [B, (H-1)*stride + k - 2p, (W-1)*stride + k - 2p, out], as
    nn.ConvTranspose2d(padding=p): k = stride = 2 doubles H, W; so does k = 4,
    stride 2, p = 1 (FCN's upsampling). The padding is explicit: it crops p
    rows and columns off every side of the VALID result. ("SAME" would crop
    the same when k - stride is even, but more at the bottom when it is odd.)
    Filter stored [k, k, out, in]: tf.nn.conv2d_transpose is the gradient of a
    tf.nn.conv2d from `out` to `in` channels, and takes that conv's HWIO kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.stride, self.kernel_size, self.padding = stride, kernel_size, padding
        self.weight = tf.Variable(_he_normal([kernel_size, kernel_size, out_channels, in_channels],
                                             out_channels * kernel_size ** 2), name="weight")
        self.bias = tf.Variable(tf.zeros([out_channels], FLOATX), name="bias") if bias else None

    def __call__(self, x, training=False):
        b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        s, k, p = self.stride, self.kernel_size, self.padding
        # TF asks for the output shape: a strided conv maps several sizes to the same
        # one, so the transpose's output size is ambiguous (PyTorch takes the
        # smallest unless told otherwise with output_padding).
        out_shape = tf.stack([b, (h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p,
                              self.weight.shape[2]])
        y = tf.nn.conv2d_transpose(x, self.weight, out_shape, strides=s,
                                   padding=[[0, 0], [p, p], [p, p], [0, 0]] if p else "VALID")
        return y if self.bias is None else tf.nn.bias_add(y, self.bias)


class BatchNorm(Module):
    """BatchNorm over the channel axis (the last one in NHWC).

    training=True: normalise with the batch's mean and biased variance, and
    update the running averages (the variance with the unbiased estimate, as
    PyTorch and Chainer do); training=False: use the running averages.
    Variables: gamma, beta (trained), mean, var (running, not trained).
    x [B, H, W, C] -> [B, H, W, C]. The formula is written out;
    tf.nn.batch_normalization computes the same.
    """

    def __init__(self, channels: int, eps: float = BN_EPS, momentum: float = BN_MOMENTUM):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gamma = tf.Variable(tf.ones([channels], FLOATX), name="gamma")
        self.beta = tf.Variable(tf.zeros([channels], FLOATX), name="beta")
        self.mean = tf.Variable(tf.zeros([channels], FLOATX), trainable=False, name="mean")
        self.var = tf.Variable(tf.ones([channels], FLOATX), trainable=False, name="var")

    def __call__(self, x, training=False):
        if not training:
            return (x - self.mean) * tf.math.rsqrt(self.var + self.eps) * self.gamma + self.beta
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype)   # B*H*W values per channel
        mean = _sum_bhw(x) / n                                 # [C]; rows first: see _sum_bhw
        var = _sum_bhw(tf.square(x - mean)) / n                # [C], the biased variance
        m = self.momentum
        self.mean.assign((1 - m) * self.mean + m * mean)
        self.var.assign((1 - m) * self.var + m * var * n / (n - 1))   # unbiased, as PyTorch
        return (x - mean) * tf.math.rsqrt(var + self.eps) * self.gamma + self.beta


def _sum_bhw(x):
    """x [B, H, W, C] summed over B, H and W -> [C]: along the rows first, then over them
    (one float32 reduction over all B*H*W rounds ~10x worse on TensorFlow's CPU kernels)."""
    return tf.reduce_sum(tf.reduce_sum(x, axis=2), axis=[0, 1])


def batch_norm(channels: int) -> BatchNorm:
    return BatchNorm(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Sequential(Module):
    """Calls its layers in order; they are named 0, 1, 2, ... (as nn.Sequential's)."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __call__(self, x, training=False):
        for layer in self.layers:
            x = layer(x, training)
        return x


class ConvBNReLU(Module):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (the exercise's CBR has ReLU first).

    Used by SegNet (08) and DeepLabv3+ (09), which put BatchNorm before the
    ReLU as their papers do (08_segnet.py explains why its unpooling needs
    that order). The convolution has no bias: BatchNorm subtracts the batch
    mean right after it, which would cancel any bias, and BatchNorm's beta
    plays its role. Padding dilation * (k // 2) keeps the side (Conv2D).
    groups=in_channels=out_channels makes it depthwise (DepthwiseConv2D); no
    other grouping is offered. Neutral names: <block>.conv.weight, <block>.bn.*.
    Input [B, H, W, in] -> [B, H, W, out].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, groups: int = 1):
        super().__init__()
        if groups == 1:
            self.conv = Conv2D(in_channels, out_channels, kernel_size, dilation, bias=False)
        elif groups == in_channels == out_channels:
            self.conv = DepthwiseConv2D(in_channels, kernel_size, dilation)
        else:
            raise ValueError("ConvBNReLU: groups must be 1 or in_channels == out_channels")
        self.bn = batch_norm(out_channels)

    def __call__(self, x, training=False):
        return tf.nn.relu(self.bn(self.conv(x), training))


def __getattr__(name):
    """CBR and the other blocks a lesson teaches, from that lesson's answer file."""
    if name in lessons.TAUGHT:
        return lessons.taught("tensorflow", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
