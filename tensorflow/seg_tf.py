"""TensorFlow 2 glue shared by the step scripts in tensorflow/.

Everything here is framework plumbing that all steps share: the layers the
lessons use (written as small tf.Module classes: no Keras in this column),
the exercise's CBR block (and the papers' ConvBNReLU), BatchNorm settings,
losses, SGD with momentum, conversion to and from the neutral weights
(common/weights.py), and the Trainer that common/runner.py drives. The
step files hold the networks and what each lesson teaches.
Layout: NHWC (channels last, TensorFlow's default on CPU).

Where this differs from PyTorch, and why:
- A tf.Module has no train()/eval() switch: every layer takes `training`
  as an argument, and BatchNorm reads it (as Keras layers do).
- Variables are stored in TensorFlow's own layouts: conv kernels HWIO
  [kH, kW, in, out], transposed-conv filters [kH, kW, out, in]; they are
  converted to PyTorch's layouts only when weights go in or out.
- The training step runs as a graph (tf.function), traced once; eager
  execution gives the same numbers about three times slower here.
"""
import sys
from pathlib import Path

# Append (never prepend) the repo root, for `common`: the folders tensorflow/,
# keras/ and chainer/ there must not shadow the installed packages.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import cli, runner  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402,F401
from common.losses import CE_DICE_WEIGHT, EPS, FOCAL_GAMMA  # noqa: E402
from common.runner import Step  # noqa: E402,F401

FRAMEWORK = "tensorflow"
LAYOUT = "NHWC"
# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch
# BatchNorm's batch statistics are sums over the B*H*W pixels of a channel.
# TensorFlow's CPU kernels sum those rows of an NHWC tensor with running float32
# totals: at 4 x 64 x 64 the batch mean keeps only about 5 digits (PyTorch sums
# pairwise, about 7), and UNet's gradients came out 8x further from exact than
# PyTorch's. So in training mode BatchNorm computes in float64 (its backward
# sums too) and casts back; that costs ~10% of a UNet step on a CPU and makes
# TF's gradients as exact as PyTorch's. Set tf.float32 to see the difference.
BN_DTYPE = tf.float64
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


# ------------------------------------------------------------------ layers
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
        return y if self.bias is None else y + self.bias


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
        return y if self.bias is None else y + self.bias


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
        dtype = x.dtype
        x = tf.cast(x, BN_DTYPE)                              # float64: see BN_DTYPE
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])          # per channel; var is the biased one
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], BN_DTYPE)  # B*H*W values per channel
        m = self.momentum
        self.mean.assign((1 - m) * self.mean + m * tf.cast(mean, dtype))
        self.var.assign((1 - m) * self.var + m * tf.cast(var * n / (n - 1), dtype))   # unbiased
        y = ((x - mean) * tf.math.rsqrt(var + self.eps) * tf.cast(self.gamma, BN_DTYPE)
             + tf.cast(self.beta, BN_DTYPE))
        return tf.cast(y, dtype)


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


class CBR(Module):
    """Conv kxk (pad k//2) -> ReLU -> BatchNorm: the exercise's block.

    The exercise puts BatchNorm after the ReLU; most papers put it before.
    We keep the exercise's order. Input [B, H, W, in] -> [B, H, W, out].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = Conv2D(in_channels, out_channels, kernel_size)
        self.bn = batch_norm(out_channels)

    def __call__(self, x, training=False):
        return self.bn(tf.nn.relu(self.conv(x)), training)


class ConvBNReLU(Module):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (CBR has ReLU before BN).

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


# ----------------------------------------------------------------- losses
# The five --loss choices. Definitions, constants and the choices behind them
# (smoothing, averaging over classes, focal's gamma, the ce+dice weight):
# common/losses.py, the NumPy reference tests/test_losses.py compares these with.
# Written for tf.function: ignored pixels get weight 0 instead of being
# dropped, so every tensor keeps its shape.
def _labelled(y, ignore_index, dtype=tf.float32):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored)."""
    if ignore_index is None:
        return y, tf.ones(tf.shape(y), dtype)
    keep = tf.not_equal(y, ignore_index)
    return tf.where(keep, y, tf.zeros_like(y)), tf.cast(keep, dtype)


def _mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return tf.reduce_sum(per_pixel * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,H,W,1] vs 0/1 targets [B,H,W], mean over labelled pixels."""
    y, w = _labelled(y, ignore_index, logits.dtype)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y, logits.dtype),
                                                        logits=logits[..., 0])
    return _mean_over(per_pixel, w)


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels (the lesson of 02_multiclass).

    Every pixel is one classification sample: logits [B,H,W,C] become
    [B*H*W, C] and labels [B,H,W] become [B*H*W]; the loss is their mean.
    In NHWC the classes are already the last axis, so a reshape is enough
    (PyTorch's NCHW needs a permute first). Ignored pixels get weight 0:
    TF's sparse cross-entropy has no ignore_index.
    """
    c = logits.shape[-1]
    y, w = _labelled(tf.reshape(y, [-1]), ignore_index, logits.dtype)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                               logits=tf.reshape(logits, [-1, c]))
    return _mean_over(per_pixel, w)


def cross_entropy(logits, y, task, ignore_index=None):
    """--loss ce: sigmoid BCE for binary, softmax cross-entropy for multiclass."""
    fn = sigmoid_cross_entropy if task == "binary" else softmax_cross_entropy
    return fn(logits, y, ignore_index)


def focal_loss(logits, y, task, ignore_index=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,H,W,C] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(t, logits.dtype),
                                                     logits=logits[..., 0])
    else:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=logits)   # [B,H,W]
    return _mean_over(tf.pow(-tf.math.expm1(-ce), gamma) * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = tf.sigmoid(logits)                                      # [B,H,W,1]
        t = tf.cast(tf.equal(t, 1), logits.dtype)[..., None]        # [B,H,W,1]
    else:
        p = tf.nn.softmax(logits, axis=-1)                          # [B,H,W,C]
        t = tf.one_hot(t, tf.shape(logits)[-1], dtype=logits.dtype)  # [B,H,W,C]
    w = w[..., None]                                                # ignored pixels: 0
    axes = [0, 1, 2]                                                # batch and pixels
    return (tf.reduce_sum(p * t * w, axes), tf.reduce_sum(p * w, axes),
            tf.reduce_sum(t * w, axes))


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = tf.cast(true > 0, scores.dtype)
    return tf.reduce_sum((1 - scores) * present) / tf.maximum(tf.reduce_sum(present), 1.0)


def dice_loss(logits, y, task, ignore_index=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / tf.maximum(p + t, EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / tf.maximum(p + t - i, EPS), t)


def ce_dice_loss(logits, y, task, ignore_index=None):
    """--loss ce+dice: CE_DICE_WEIGHT * dice + (1 - CE_DICE_WEIGHT) * ce."""
    return (CE_DICE_WEIGHT * dice_loss(logits, y, task, ignore_index)
            + (1 - CE_DICE_WEIGHT) * cross_entropy(logits, y, task, ignore_index))


LOSSES = {"ce": cross_entropy, "dice": dice_loss, "jaccard": jaccard_loss, "focal": focal_loss,
          "ce+dice": ce_dice_loss}


def make_loss(name: str, task: str, ignore_index=None):
    """loss(logits, y) for --loss name and the step's task ("binary" or "multiclass")."""
    if name not in LOSSES:
        raise UserError(f"--loss {name}: unknown; choose one of {', '.join(LOSSES)}.")
    fn = LOSSES[name]
    return lambda logits, y: fn(logits, y, task, ignore_index)


# ------------------------------------------------------- neutral weights
# Both conv kernels (HWIO -> OIHW) and transposed-conv filters ([kH, kW, out, in]
# -> [in, out, kH, kW]) turn into PyTorch's layout by the same transpose:
# spatial axes last, the two channel axes swapped.
_TO_NEUTRAL = (3, 2, 0, 1)
_FROM_NEUTRAL = (2, 3, 1, 0)


def to_neutral(value) -> np.ndarray:
    a = np.asarray(value)   # keeps the variable's dtype (float32; float64 in the parity reference)
    return np.ascontiguousarray(a.transpose(_TO_NEUTRAL)) if a.ndim == 4 else a.copy()


def from_neutral(value, dtype=np.float32) -> np.ndarray:
    a = np.asarray(value, dtype)
    return np.ascontiguousarray(a.transpose(_FROM_NEUTRAL)) if a.ndim == 4 else a


def get_weights(model: Module) -> dict:
    return {k: to_neutral(v.numpy()) for k, v in model.named_variables()}


def set_weights(model: Module, weights: dict):
    for k, v in model.named_variables():
        v.assign(from_neutral(weights[k], v.dtype.as_numpy_dtype))


def select_device(name: str) -> str:
    """--device auto|cpu|gpu[:N]|cuda[:N] -> a tf.device string, '/CPU:0' or '/GPU:N'."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        return "/GPU:0" if gpus else "/CPU:0"
    if name == "cpu":
        return "/CPU:0"
    kind, _, index = name.partition(":")
    if kind not in ("gpu", "cuda") or not (index or "0").isdigit():
        raise UserError(f"--device {name}: not a device name; use auto, cpu, gpu or gpu:N.")
    if int(index or 0) >= len(gpus):
        raise UserError(f"--device {name}: TensorFlow sees {len(gpus)} GPU(s) here; "
                        "use --device cpu.")
    return f"/GPU:{int(index or 0)}"


class Trainer:
    """What common/runner.py drives: one SGD step, evaluation, weights in/out."""
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: Module, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32"):
        self.device_name = select_device(device)
        self.dtype = dtype     # the model's variables must have been built in it (with_floatx)
        self.tf_dtype = tf.as_dtype(dtype)
        self.model = model
        self.loss_fn = make_loss(loss, task, ignore_index)
        self.lr, self.momentum = lr, momentum
        # (neutral name, variable) of every trainable parameter, in definition order
        self.params = [(k, v) for k, v in model.named_variables() if v.trainable]
        # SGD momentum buffers, one per trainable variable, in its TF layout
        with tf.device(self.device_name):
            self.velocity = [tf.Variable(tf.zeros_like(v), trainable=False) for _, v in self.params]
        # Graphs traced once: the batch dimension is None so the last, smaller
        # evaluation batch reuses the graph instead of tracing a new one.
        sig = [tf.TensorSpec([None, None, None, None], self.tf_dtype),   # x [B, H, W, 3]
               tf.TensorSpec([None, None, None], tf.int32)]           # y [B, H, W]
        self._train_step = tf.function(self._sgd_step, input_signature=sig)
        self._gradients = tf.function(self._loss_and_grads, input_signature=sig)
        self._eval = tf.function(self._eval_batch, input_signature=sig)

    # --- the graphs
    def _loss_and_grads(self, x, y):
        with tf.device(self.device_name):
            with tf.GradientTape() as tape:
                loss = self.loss_fn(self.model(x, training=True), y)
            return loss, tape.gradient(loss, [v for _, v in self.params])

    def _sgd_step(self, x, y):
        loss, grads = self._loss_and_grads(x, y)
        with tf.device(self.device_name):
            for (_, p), g, v in zip(self.params, grads, self.velocity):
                v.assign(self.momentum * v + g)     # PyTorch's form of momentum SGD
                p.assign_sub(self.lr * v)
        return loss

    def _eval_batch(self, x, y):
        with tf.device(self.device_name):
            logits = self.model(x, training=False)   # BatchNorm uses its running statistics
            return logits, self.loss_fn(logits, y)

    # --- the interface
    def _input(self, x):
        return tf.constant(np.asarray(x, self.dtype))

    def train_step(self, x, y) -> float:
        return float(self._train_step(self._input(x), y))

    def eval_batch(self, x, y):
        logits, loss = self._eval(self._input(x), y)
        return to_nchw(logits), float(loss)

    def forward(self, x, training: bool):
        """Logits (numpy, NCHW). training=True: batch statistics (running ones get updated)."""
        with tf.device(self.device_name):
            return to_nchw(self.model(self._input(x), training=training))

    def loss_and_gradients(self, x, y):
        """Loss and d loss / d parameter (neutral names and layouts), training mode, no update."""
        loss, grads = self._gradients(self._input(x), y)
        return float(loss), {k: to_neutral(g) for (k, _), g in zip(self.params, grads)}

    def get_weights(self):
        return get_weights(self.model)

    def set_weights(self, weights):
        set_weights(self.model, weights)

    def get_optimizer_state(self):
        """Momentum buffer v per parameter (PyTorch form: v = mu*v + g; p -= lr*v)."""
        return {k: to_neutral(v.numpy()) for (k, _), v in zip(self.params, self.velocity)}

    def set_optimizer_state(self, state):
        for (k, _), v in zip(self.params, self.velocity):
            v.assign(from_neutral(state[k], v.dtype.as_numpy_dtype))

    def num_params(self):
        return sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)


def to_nchw(logits) -> np.ndarray:
    """[B, H, W, C] tensor -> [B, C, H, W] numpy, the layout the runner expects for logits."""
    return np.ascontiguousarray(np.asarray(logits).transpose(0, 3, 1, 2))


# ------------------------------------------------------------ step driver
def step_name(file) -> str:
    return Path(file).stem


def parse_args(file, doc, argv=None, add_arguments=None):
    return cli.parse_args(step_name(file), FRAMEWORK, argv, doc, add_arguments)


def trainer_factory(args, step: Step, build, dtype: str = "float32"):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        with tf.device(select_device(args.device)), with_floatx(dtype):   # variables on the device
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, args.device,
                       ignore_index, dtype)
    return make_trainer


def run(args, step: Step, build) -> dict:
    """Train and evaluate: build(num_outputs) -> Module."""
    tf.random.set_seed(args.seed)   # only the placeholder initial values draw from it
    return runner.run(args, step, trainer_factory(args, step, build), FRAMEWORK)
