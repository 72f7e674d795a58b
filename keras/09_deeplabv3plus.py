"""Step 9: DeepLabv3+ (Chen, Zhu, Papandreou, Schroff and Adam, 2018), small.

Atrous (dilated) convolutions keep the encoder at 1/8 (output stride 8) with
the reach of a deeper one; ASPP looks at that map at several scales (a 1x1
convolution, three atrous rates, the image's average); the v3+ decoder joins
the upsampled result with low-level features at 1/4. ASPP's and the
decoder's 3x3 convolutions are depthwise-separable (separable_conv).

    x [B, 64, 64, 3]
      encoder: stem, block1, block2 (= low-level, stride 4), block3 (stride 8),
               block4 (atrous rate 2, still stride 8)     [B, 8, 8, 256]
      aspp: branches 1x1 | separable_conv rates 2, 3, 4 | image_pooling
            concat [B, 8, 8, 1280] -> project (1x1)       [B, 8, 8, 256]
      decoder: bilinear x2, concat [aspp, reduce(low-level) 48] [B, 16, 16, 304]
               -> refine (separable_conv x 2) -> classifier [B, 16, 16, C]
      bilinear x4                                         [B, 64, 64, C]  S divisible by 8

Departures from the paper: a small plain encoder (3x3 convolutions, 32 to 256
channels, no residuals, no ImageNet weights), output stride 8 with rates
2, 3, 4 (for an 8x8 map), max pooling to downsample, no BatchNorm in image
pooling, no dropout. Why each choice (and the receptive fields):
docs/lessons/09_deeplabv3plus.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers, ops

from common.driver import main
from common.runner import Step
from keras_layers import conv_bn_relu

RATES = (2, 3, 4)   # ASPP's atrous rates, for an 8x8 map (see the docstring)


def separable_conv(x, filters, name, dilation_rate=1):
    """Depthwise 3x3 (rate d) -> BN -> ReLU, then pointwise 1x1 -> BN -> ReLU.

    The extra BatchNorm and ReLU after the depthwise convolution are the
    paper's (as in MobileNet). Names: <name>.depthwise.conv.weight [C, 1, 3, 3],
    <name>.pointwise.conv.weight [C', C, 1, 1], and their .bn. The depthwise
    convolution is Keras' DepthwiseConv2D (one 3x3 filter per channel, kernel
    [3, 3, C, 1]); 9C + C*C' weights instead of 9C*C'. (Keras' SeparableConv2D
    fuses the two convolutions into one layer with nothing between them; the
    paper, and PyTorch's version, put BatchNorm and ReLU in between, so this
    port uses the two layers.)
    """
    x = conv_bn_relu(x, x.shape[-1], f"{name}-depthwise", dilation_rate=dilation_rate,
                     depthwise=True)
    return conv_bn_relu(x, filters, f"{name}-pointwise", kernel_size=1)


def conv_block(x, filters, name, dilation_rate=1):
    """ConvBNReLU 3x3 x 2 (rate `dilation_rate`), named <name>-0, <name>-1."""
    x = conv_bn_relu(x, filters, f"{name}-0", dilation_rate=dilation_rate)
    return conv_bn_relu(x, filters, f"{name}-1", dilation_rate=dilation_rate)


def encoder(x, widths=(32, 64, 128, 256)):
    """[B, S, S, 3] -> features [B, S/8, S/8, 256] and low-level features [B, S/4, S/4, 128]."""
    w0, w1, w2, w3 = widths
    x = layers.MaxPooling2D(2)(conv_block(x, w0, "encoder-stem"))      # 1/2
    x = layers.MaxPooling2D(2)(conv_block(x, w1, "encoder-block1"))    # 1/4
    low_level = conv_block(x, w2, "encoder-block2")                     # 1/4
    x = conv_block(layers.MaxPooling2D(2)(low_level), w3, "encoder-block3")   # 1/8
    # where a classifier would pool to 1/16, keep 1/8 and dilate instead
    return conv_block(x, w3, "encoder-block4", dilation_rate=2), low_level    # still 1/8


class CopyToEveryPosition(layers.Layer):
    """y [B, 1, 1, C] copied to the sides of `like` [B, h, w, *] -> [B, h, w, C].

    Bilinear upsampling of a 1x1 map copies the value everywhere, so image pooling
    writes it as a copy (ops.broadcast_to).
    """

    def call(self, y, like):
        batch, h, w = ops.shape(like)[:3]
        return ops.broadcast_to(y, (batch, h, w, y.shape[-1]))

    def compute_output_shape(self, y_shape, like_shape):
        return tuple(like_shape[:3]) + (y_shape[-1],)


def image_pooling(x, filters, name):
    """Global average -> 1x1 conv (with bias, no BatchNorm) -> ReLU -> copied to every position."""
    y = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}-mean")(x)     # [B, 1, 1, in]
    y = layers.Conv2D(filters, 1, activation="relu", name=f"{name}-conv")(y)     # [B, 1, 1, out]
    return CopyToEveryPosition(name=f"{name}-copy")(y, x)


def aspp(x, filters, rates=RATES, name="aspp"):
    """Atrous spatial pyramid pooling: [B, h, w, in] -> [B, h, w, filters]."""
    # >>> Q9.1 branches: a 1x1 conv_bn_relu, separable_conv at each rate, image_pooling; concatenate them in order, then project: 1x1 conv_bn_relu
    branches = [conv_bn_relu(x, filters, f"{name}-branches-0", kernel_size=1)]
    branches += [separable_conv(x, filters, f"{name}-branches-{i + 1}", dilation_rate=r)
                 for i, r in enumerate(rates)]
    branches.append(image_pooling(x, filters, f"{name}-branches-{len(rates) + 1}"))
    x = layers.Concatenate(axis=-1, name=f"{name}-concat")(branches)
    return conv_bn_relu(x, filters, f"{name}-project", kernel_size=1)
    # <<< Q9.1


def resize(factor, name):
    """Bilinear upsampling, half-pixel centres (PyTorch's align_corners=False), no antialiasing.

    UpSampling2D(interpolation="bilinear") calls keras.ops.image.resize with
    antialias=False, which is tf.image.resize on the tensorflow backend and
    F.interpolate(align_corners=False) on the torch backend. The sides are multiples
    of 8, so the factors 2 and 4 reach exactly the sizes PyTorch's version resizes to
    (the low-level map's, the input's).

    On the tensorflow backend ops.image.resize is tf.image.resize, whose bilinear kernel
    computes and returns float32 whatever the input, so a float64 network (the parity
    tests' exact check; keras.config.floatx() while it is built) gets the same
    interpolation written out, BilinearUpSampling. The scripts run float32: UpSampling2D.
    """
    if keras.backend.backend() == "tensorflow" and keras.config.floatx() == "float64":
        return BilinearUpSampling(factor, name=name)
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)


class BilinearUpSampling(layers.Layer):
    """[B, h, w, C] -> [B, f*h, f*w, C]: UpSampling2D(f, interpolation="bilinear") in keras.ops.

    Along each axis, output j = f*k + p reads the source coordinate k + d with
    d = (p + 0.5) / f - 0.5, in (-0.5, 0.5): (-d) x[k-1] + (1+d) x[k] if d < 0,
    (1-d) x[k] + d x[k+1] otherwise; the input's edge values repeated past its
    ends give the clamping at the borders. For f = 2 and 4 the weights are exact
    binary fractions.
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def _axis(self, x, axis):
        def part(t, s):
            return t[(slice(None),) * axis + (s,)]                    # t[..., s, ...] at axis
        # edge values repeated (ops.pad's mode="edge" has no tensorflow backend)
        padded = ops.concatenate([part(x, slice(0, 1)), x, part(x, slice(-1, None))], axis=axis)
        prev, cur, nxt = [part(padded, s)                              # x[k-1], x[k], x[k+1]
                          for s in (slice(0, -2), slice(1, -1), slice(2, None))]
        phases = []
        for p in range(self.factor):
            d = (p + 0.5) / self.factor - 0.5
            phases.append(-d * prev + (1 + d) * cur if d < 0 else (1 - d) * cur + d * nxt)
        _, h, w, c = ops.shape(x)
        shape = (-1, self.factor * h, w, c) if axis == 1 else (-1, h, self.factor * w, c)
        return ops.reshape(ops.stack(phases, axis=axis + 1), shape)   # phases interleaved

    def call(self, x):
        return self._axis(self._axis(x, 1), 2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else f * h, None if w is None else f * w, c)


def decoder(x, low_level, num_classes, reduced=48, width=256, name="decoder"):
    """ASPP output [B, S/8, S/8, a] + low-level [B, S/4, S/4, l] -> logits [B, S/4, S/4, C]."""
    # >>> Q9.2 upsample x bilinearly x2; reduce: 1x1 conv_bn_relu of low_level to 48; concatenate [x, reduced low-level]; refine: two separable_conv; classifier 1x1
    x = resize(2, f"{name}-upsample")(x)
    low_level = conv_bn_relu(low_level, reduced, f"{name}-reduce", kernel_size=1)
    x = layers.Concatenate(axis=-1, name=f"{name}-concat")([x, low_level])
    x = separable_conv(separable_conv(x, width, f"{name}-refine-0"), width, f"{name}-refine-1")
    return layers.Conv2D(num_classes, 1, name=f"{name}-classifier")(x)
    # <<< Q9.2


def DeepLabV3Plus(num_classes: int) -> keras.Model:
    # >>> Q9.2 encoder, ASPP, decoder; bilinear-upsample the logits x4 to the input side
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    features, low_level = encoder(x)
    logits = decoder(aspp(features, 256), low_level, num_classes)
    logits = resize(4, "upsample")(logits)
    return keras.Model(inputs, logits, name="deeplabv3plus")
    # <<< Q9.2


def build(num_outputs, args):
    return DeepLabV3Plus(num_outputs)


def step(args):
    return Step("09_deeplabv3plus", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
