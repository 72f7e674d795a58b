"""Step 9: DeepLabv3+ (Chen, Zhu, Papandreou, Schroff and Adam, 2018), small.

Three ideas on top of an encoder-decoder:
- Atrous (dilated) convolution: a 3x3 kernel with its taps `rate` pixels
  apart sees a (2*rate+1)^2 window for the same 9 weights. The encoder stops
  striding at 1/8 (output stride 8): its last stage, which a classifier
  would run at 1/16 after one more pooling, keeps 1/8 and uses rate 2, so
  its filters span as far as they would have, on a map twice as fine.
- ASPP (atrous spatial pyramid pooling): five branches look at the same map
  at different scales -- a 1x1 convolution, three 3x3 atrous convolutions
  (rates 2, 3, 4) and the image's average (image pooling) -- and a 1x1
  convolution (project) mixes their concatenation.
- The v3+ decoder: the ASPP output, upsampled bilinearly to stride 4, is
  concatenated with the encoder's stride-4 features (low-level: edges,
  spots), reduced first by a 1x1 convolution so they do not outweigh it;
  two 3x3 convolutions refine, a 1x1 classifier scores, and a bilinear
  upsampling by 4 returns to the input size.
The 3x3 convolutions of ASPP and the decoder are depthwise-separable
(SeparableConv), as in the paper: a depthwise 3x3 (one filter per channel,
Keras' DepthwiseConv2D, kernel [3, 3, C, 1], neutral [C, 1, 3, 3]) then a
pointwise 1x1 that mixes channels; 9C + C*C' weights instead of 9C*C'.
(Keras' SeparableConv2D fuses the two into one layer with nothing between
them; the paper, and PyTorch's version here, put BatchNorm and ReLU in
between, so this port uses the two layers.)

    x [B, 64, 64, 3]
      encoder.stem   (ConvBNReLU 3x3 x 2)                 [B, 64, 64,  32] -> pool
      encoder.block1 (ConvBNReLU 3x3 x 2)                 [B, 32, 32,  64] -> pool
      encoder.block2 (ConvBNReLU 3x3 x 2) = low-level     [B, 16, 16, 128] -> pool   (stride 4)
      encoder.block3 (ConvBNReLU 3x3 x 2)                 [B,  8,  8, 256]           (stride 8)
      encoder.block4 (ConvBNReLU 3x3 rate 2 x 2)          [B,  8,  8, 256]  no pool: atrous
      aspp.branches.0 (ConvBNReLU 1x1)                    [B,  8,  8, 256]
      aspp.branches.1..3 (SeparableConv, rates 2, 3, 4)   [B,  8,  8, 256] each
      aspp.branches.4 (ImagePooling: mean -> 1x1 conv -> ReLU -> copied to 8x8)
      concat [B, 8, 8, 1280] -> aspp.project (ConvBNReLU 1x1) [B, 8, 8, 256]
      decoder: bilinear x2 [B, 16, 16, 256], reduce (ConvBNReLU 1x1) low-level [B, 16, 16, 48]
        concat [aspp, low-level] [B, 16, 16, 304] -> refine (SeparableConv x 2) [B, 16, 16, 256]
        -> classifier (1x1) [B, 16, 16, C] -> bilinear x4 [B, 64, 64, C]
                                                   S must be divisible by 8

Receptive field: an encoder output cell sees 132x132 input pixels (block4's
rate 2 adds 64, as two 3x3 convolutions after one more pooling would), a
rate-4 ASPP cell 196x196, the image pooling branch all of it.

Why output stride 8 at 64x64: at stride 16 the map would be 4x4, and a 3x3
filter with rate 4 there has all 8 outer taps in the zero padding: it
degenerates to a 1x1 filter, the failure the paper describes for rates close
to the map size. (The paper trains at stride 16: stride 8 quadruples the
cost of its last blocks at 513x513; at 64x64 an 8x8 map is cheap.) Why rates
2, 3, 4: the paper's rates 6, 12, 18 on its 33x33 map (513-pixel crops at
stride 16) keep 77%, 57% and 40% of their taps inside the map on average; on
our 8x8 map rates 2, 3, 4 keep 69%, 56% and 44% (rate 1: 84%, rate 6: 25%).
The rates are fixed: they suit --size 64.

Choices that keep the four frameworks equal:
- Downsampling by 2x2 max pooling, not by strided convolutions (the paper's
  Xception strides its separable convolutions, ResNet its 3x3 ones). For a
  stride-2 3x3 convolution on an even side, PyTorch pads 1 pixel on each
  side (the bottom one unused), TensorFlow's and Keras's "same" pad 0 at the
  top and 1 at the bottom: their windows are one pixel apart. With stride 1
  and an odd kernel, "same" pads rate * 1 on every side, as PyTorch here.
- Bilinear resizing with half-pixel centres (PyTorch's align_corners=False):
  UpSampling2D(interpolation="bilinear") calls keras.ops.image.resize with
  antialias=False, which is tf.image.resize on the tensorflow backend and
  F.interpolate(align_corners=False) on the torch backend. The sides are
  multiples of 8, so the factors 2 and 4 reach exactly the sizes PyTorch's
  version resizes to (the low-level map's, the input's).
- The image pooling branch has no BatchNorm (the paper's has): its map is 1x1,
  so with batch 1 BatchNorm would see one value per channel and have no
  statistics; its 1x1 convolution keeps its bias instead. Bilinear upsampling
  of a 1x1 map copies the value everywhere, so we write it as a copy
  (ops.broadcast_to).
- Concatenation orders: ASPP branches 0..4; decoder [aspp, low-level].

Departures from the paper: a small plain encoder of ordinary 3x3
convolutions, widths 32 to 256, no residual connections, no ImageNet weights
(the paper: ResNet-101, or an Xception whose convolutions are separable too,
up to 2048 channels; an all-separable version of this small encoder learned
markedly slower in our 300-iteration runs);
no dropout after ASPP (random masks differ between frameworks); output stride
8 for training and testing. ASPP and decoder keep the paper's 256 channels,
the low-level reduction its 48.
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
    <name>.pointwise.conv.weight [C', C, 1, 1], and their .bn.
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
    """y [B, 1, 1, C] copied to the sides of `like` [B, h, w, *] -> [B, h, w, C]."""

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
