"""Keras 3 building blocks the lessons share, written with keras.ops for either backend.

BatchNorm with the suite's settings (and PyTorch's running variance),
conv_bn_relu (the papers' order, used by 08 and 09), using_dtype (the dtype
Keras builds and computes in), and, by name, the blocks a lesson teaches:
`from keras_layers import CBR` gives the CBR of 01_binarization
(common/lessons.py). Layout: NHWC (channels last), Keras' default.

The blocks are functions of the functional API: block(x, filters, name, ...)
adds its layers to the graph of x and returns their output. Layer names are
the neutral paths with "-" for "." (keras_weights.LAYER_SEP): layer
"trunk-0-conv" holds trunk.0.conv.weight and .bias.
"""
import keras_setup  # noqa: F401  (first: it picks the Keras backend before keras is imported)

import contextlib

import keras
from keras import layers, ops
from keras.src.backend.common import dtypes as _keras_dtypes   # see using_dtype

from common import lessons

# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.9          # Keras convention: new = 0.9 * old + 0.1 * batch (= PyTorch's 0.1)
DTYPES = ("float32", "float64")   # float64: the parity tests' exact reference


@contextlib.contextmanager
def using_dtype(dtype: str):
    """Keras makes and computes floats in `dtype` inside the block; everything restored after.

    Keras takes the dtype of everything it creates at the moment it creates
    it: layers from the global dtype policy (their variables and the dtype they
    compute in; a float32 layer would cast float64 inputs down), keras.Input,
    the optimizer's learning-rate variable, the compiled loss (which casts the
    logits to its own dtype) and the loss tracker whose value train_on_batch
    returns from keras.config.floatx(). Both are set here. (The policy must be
    set too: unset, Keras fixes it from floatx at the first layer it builds,
    for the rest of the process.) Some of these are created lazily, at the
    first train_on_batch or predict_on_batch, so the Trainer runs all its
    Keras calls inside this block.

    float64 on the torch backend needs one more thing: Keras' type promotion
    (keras.backend.result_type, which ops.maximum, ops.divide and others use
    for their result) turns float64 into float32 on every backend but
    tensorflow, imitating JAX without x64 (keras-team/keras#23223, #23704), so
    a float64 max-pool (08_segnet) or loss tracker would silently compute in
    float32. Inside the block float64 promotes to float64.
    """
    previous = keras.config.floatx(), keras.config.dtype_policy()
    promotion = getattr(_keras_dtypes, "BIT64_TO_BIT32_DTYPE", {})   # gone once Keras fixes it
    promoted = promotion.get("float64")
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    if dtype == "float64" and promoted is not None:
        promotion["float64"] = "float64"
    try:
        yield
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])
        if promoted is not None:
            promotion["float64"] = promoted


class BatchNorm(layers.BatchNormalization):
    """keras.layers.BatchNormalization with PyTorch's running variance.

    In training mode both frameworks normalise with the batch variance
    sum((x - mean)^2) / n over the n = B*H*W values of a channel. Keras also
    averages that *biased* variance into moving_variance; PyTorch and Chainer
    average the unbiased one, sum(...) / (n - 1). Only the running statistics
    (used in inference mode) differ; this call() updates them PyTorch's way.
    Same weights as Keras' layer (gamma, beta, moving_mean, moving_variance).
    Input and output [B, H, W, C]; statistics per channel, over B, H and W.

    The sums run along each image row first, then over the rows: TensorFlow's
    CPU sum over all B*H*W values of a channel at once rounds ~10x worse
    than PyTorch's, enough to fail the 1e-4 parity tests (not to hurt training).
    """

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable:
            n = ops.cast(ops.size(inputs) // ops.shape(inputs)[-1], inputs.dtype)   # B*H*W
            mean = _sum_bhw(inputs) / n                                         # [C]
            var = _sum_bhw(ops.square(inputs - mean)) / n                       # [C], biased: / n
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * mean)
            self.moving_variance.assign(m * self.moving_variance + (1 - m) * var * n / (n - 1))
        else:                                                   # inference: running statistics
            mean, var = self.moving_mean, self.moving_variance
        return ops.batch_normalization(inputs, mean, var, axis=-1, offset=self.beta,
                                       scale=self.gamma, epsilon=self.epsilon)


def _sum_bhw(x):
    """x [B, H, W, C] summed over B, H and W -> [C]: along the rows, then over them."""
    return ops.sum(ops.sum(x, axis=2), axis=(0, 1))


def batch_norm(name: str) -> BatchNorm:
    return BatchNorm(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=name)


def conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, dilation_rate: int = 1,
                 depthwise: bool = False):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (the exercise's CBR has ReLU first).

    Used by SegNet (08) and DeepLabv3+ (09), as torch_layers.ConvBNReLU. No
    bias: BatchNorm subtracts the batch mean right after the convolution,
    which would cancel it. "same" padding with stride 1 and an odd kernel
    pads dilation_rate * (k // 2) on every side, as PyTorch's padding there.
    depthwise=True: DepthwiseConv2D, one kxk filter per channel (PyTorch's
    groups=channels; filters must equal the input's channels), kernel
    [kH, kW, C, 1], neutral [C, 1, kH, kW]. Layers <name>-conv, <name>-bn,
    <name>-relu. x [B, H, W, in] -> [B, H, W, filters].
    """
    if depthwise:
        if filters != x.shape[-1]:
            raise ValueError(f"{name}: a depthwise convolution keeps the channels ({x.shape[-1]}), "
                             f"got filters={filters}")
        conv = layers.DepthwiseConv2D(kernel_size, padding="same", dilation_rate=dilation_rate,
                                      use_bias=False, name=f"{name}-conv")
    else:
        conv = layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation_rate,
                             use_bias=False, name=f"{name}-conv")
    x = batch_norm(f"{name}-bn")(conv(x))
    return layers.ReLU(name=f"{name}-relu")(x)


def __getattr__(name):
    """CBR and the other blocks a lesson teaches, from that lesson's answer file."""
    if name in lessons.TAUGHT:
        return lessons.taught("keras", name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
