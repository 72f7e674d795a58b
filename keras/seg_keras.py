"""Keras 3 glue shared by the step scripts in keras/.

Everything here is framework plumbing that all steps share: the backend
choice, the exercise's CBR block, BatchNorm settings, losses, conversion to
and from the neutral weights (common/weights.py), and the Trainer that
common/runner.py drives. The step files hold the networks and what each
lesson teaches. Layout: NHWC (channels last), Keras' default.

Keras 3 runs on several backends; this suite supports two:

    python keras/06_unet.py                      # KERAS_BACKEND, else tensorflow
    python keras/06_unet.py --backend torch      # outputs go to runs/keras-torch/

A backend is chosen once per process, when Keras is imported, so this module
reads --backend from the command line *before* `import keras`. The step files
therefore import seg_keras before keras. All maths below uses keras.ops, which
runs on either backend; only Trainer.loss_and_gradients (for the parity tests)
needs a few backend-specific lines.
"""
import contextlib
import os
import re
import sys
from pathlib import Path

BACKENDS = ("tensorflow", "torch")


def _backend_in_argv(argv):
    """The value of --backend in argv (`--backend torch` or `--backend=torch`), else None."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


_backend = _backend_in_argv(sys.argv[1:])
if _backend in BACKENDS:              # anything else: argparse rejects it below, with the choices
    os.environ["KERAS_BACKEND"] = _backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # hide TensorFlow's start-up log lines

# Append (never prepend) the repo root, for `common`: the folders tensorflow/,
# keras/ and chainer/ there must not shadow the installed packages.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402
from keras.src.backend.common import dtypes as _keras_dtypes  # noqa: E402 (see using_dtype)

from common import cli, runner  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402,F401
from common.losses import CE_DICE_WEIGHT, EPS, FOCAL_GAMMA  # noqa: E402
from common.runner import Step  # noqa: E402,F401

FRAMEWORK = "keras"
LAYOUT = "NHWC"
BACKEND = keras.backend.backend()          # "tensorflow" or "torch"
LABEL = "keras" if BACKEND == "tensorflow" else f"keras-{BACKEND}"   # reports, runs/<LABEL>/
# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.9          # Keras convention: new = 0.9 * old + 0.1 * batch (= PyTorch's 0.1)
# Layer names are the neutral paths with "-" for ".": layer "trunk-0-conv"
# holds trunk.0.conv.weight and .bias. (Keras itself accepts dots, but its
# torch backend registers every variable as a torch parameter under the
# layer's name, and PyTorch forbids dots there.)
LAYER_SEP = "-"
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


def cbr(x, filters: int, name: str, kernel_size: int = 3):
    """Conv kxk ("same" padding) -> ReLU -> BatchNorm: the exercise's block.

    The exercise puts BatchNorm after the ReLU; most papers put it before.
    We keep the exercise's order. Conv2D(activation="relu") is the conv and
    the ReLU in one Keras layer. The layers are named <name>-conv and
    <name>-bn (see LAYER_SEP). x [B, H, W, in] -> [B, H, W, filters].
    """
    x = layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=f"{name}-conv")(x)
    return batch_norm(f"{name}-bn")(x)


def conv_bn_relu(x, filters: int, name: str, kernel_size: int = 3, dilation_rate: int = 1,
                 depthwise: bool = False):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (cbr has ReLU before BN).

    Used by SegNet (08) and DeepLabv3+ (09), as seg_torch.ConvBNReLU. No bias:
    BatchNorm subtracts the batch mean right after the convolution, which
    would cancel it. "same" padding with stride 1 and an odd kernel pads
    dilation_rate * (k // 2) on every side, as PyTorch's padding there.
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


# ----------------------------------------------------------------- losses
# Keras calls a loss as loss(y_true, y_pred); the runner's labels arrive as
# [B, H, W] (Keras may add a trailing axis and cast them to float32, and for
# one output channel squeezes the logits to [B, H, W]; we flatten and cast
# back, so none of that matters).
# The five --loss choices. Definitions, constants and the choices behind them
# (smoothing, averaging over classes, focal's gamma, the ce+dice weight):
# common/losses.py, the NumPy reference tests/test_losses.py compares these
# with. Ignored pixels get weight 0, so shapes stay fixed for either backend.
def _float_dtype(logits) -> str:
    """The dtype the losses compute in: the logits' own ("float32", or "float64" in the parity
    tests). Keras' compiled loss has already cast the logits to its dtype, keras.config.floatx()."""
    return keras.backend.standardize_dtype(logits.dtype)


def _labelled(y, ignore_index, dtype="float32"):
    """Labels [N] (int32, ignored pixels set to 0) and weight [N] (1 labelled, 0 ignored) in dtype."""
    labels = ops.cast(ops.reshape(y, (-1,)), "int32")
    if ignore_index is None:
        return labels, ops.ones(ops.shape(labels), dtype)
    keep = ops.not_equal(labels, ignore_index)
    return ops.where(keep, labels, 0), ops.cast(keep, dtype)


def _mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return ops.sum(per_pixel * w) / ops.maximum(ops.sum(w), 1.0)


def _pixel_cross_entropy(y, logits, task, ignore_index):
    """-log p_t per pixel [N] (p_t: probability of the true class) and the weight [N]."""
    dtype = _float_dtype(logits)
    t, w = _labelled(y, ignore_index, dtype)
    if task == "binary":
        # With p = sigmoid(z): -t*log(p) - (1-t)*log(1-p) = softplus(z) - t*z,
        # which never takes the log of 0.
        z = ops.reshape(logits, (-1,))
        return ops.softplus(z) - ops.cast(t, dtype) * z, w
    c = logits.shape[-1]
    flat = ops.reshape(logits, (-1, c))                               # [B*H*W, C]
    log_p = ops.log_softmax(flat, axis=-1)
    return -ops.take_along_axis(log_p, t[:, None], axis=-1)[:, 0], w   # [B*H*W]


def sigmoid_cross_entropy(y, logits, ignore_index=None):
    """Binary cross-entropy on logits [B,H,W,1] vs 0/1 targets [B,H,W], mean over labelled pixels.

    With p = sigmoid(z): -t*log(p) - (1-t)*log(1-p) = softplus(z) - t*z,
    which never takes the log of 0.
    """
    return _mean_over(*_pixel_cross_entropy(y, logits, "binary", ignore_index))


def softmax_cross_entropy(y, logits, ignore_index=None):
    """Softmax cross-entropy over pixels (the lesson of 02_multiclass).

    Every pixel is one classification sample: logits [B,H,W,C] become
    [B*H*W, C] and labels [B,H,W] become [B*H*W]; the loss is the mean of
    -log softmax(row)[label]. In NHWC the class axis is already last, so a
    reshape is enough (PyTorch's NCHW needs a permute first).
    """
    return _mean_over(*_pixel_cross_entropy(y, logits, "multiclass", ignore_index))


def cross_entropy(y, logits, task, ignore_index=None):
    """--loss ce: sigmoid BCE for binary, softmax cross-entropy for multiclass."""
    fn = sigmoid_cross_entropy if task == "binary" else softmax_cross_entropy
    return fn(y, logits, ignore_index)


def focal_loss(y, logits, task, ignore_index=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,H,W,C] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    ce, w = _pixel_cross_entropy(y, logits, task, ignore_index)
    return _mean_over(ops.power(-ops.expm1(-ce), gamma) * ce, w)


def _region_sums(y, logits, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    dtype = _float_dtype(logits)
    t, w = _labelled(y, ignore_index, dtype)
    if task == "binary":
        p = ops.sigmoid(ops.reshape(logits, (-1, 1)))                 # [N, 1]
        t = ops.cast(ops.equal(t, 1), dtype)[:, None]                 # [N, 1]
    else:
        c = logits.shape[-1]
        p = ops.softmax(ops.reshape(logits, (-1, c)), axis=-1)        # [N, C]
        t = ops.one_hot(t, c, dtype=dtype)
    w = w[:, None]                                                # ignored pixels: 0
    return ops.sum(p * t * w, axis=0), ops.sum(p * w, axis=0), ops.sum(t * w, axis=0)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = ops.cast(ops.greater(true, 0), _float_dtype(scores))
    return ops.sum((1 - scores) * present) / ops.maximum(ops.sum(present), 1.0)


def dice_loss(y, logits, task, ignore_index=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(y, logits, task, ignore_index)
    return _mean_over_present(2 * i / ops.maximum(p + t, EPS), t)


def jaccard_loss(y, logits, task, ignore_index=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(y, logits, task, ignore_index)
    return _mean_over_present(i / ops.maximum(p + t - i, EPS), t)


def ce_dice_loss(y, logits, task, ignore_index=None):
    """--loss ce+dice: CE_DICE_WEIGHT * dice + (1 - CE_DICE_WEIGHT) * ce."""
    return (CE_DICE_WEIGHT * dice_loss(y, logits, task, ignore_index)
            + (1 - CE_DICE_WEIGHT) * cross_entropy(y, logits, task, ignore_index))


LOSSES = {"ce": cross_entropy, "dice": dice_loss, "jaccard": jaccard_loss, "focal": focal_loss,
          "ce+dice": ce_dice_loss}


def make_loss(name: str, task: str, ignore_index=None):
    """loss(y_true, logits) for --loss name and the step's task, as model.compile takes it."""
    if name not in LOSSES:
        raise UserError(f"--loss {name}: unknown; choose one of {', '.join(LOSSES)}.")
    fn = LOSSES[name]

    def loss(y_true, logits):
        return fn(y_true, logits, task, ignore_index)
    loss.__name__ = fn.__name__
    return loss


# ------------------------------------------------------- neutral weights
# Keras kernels put the spatial axes first. Conv2D: [kH, kW, in, out] (HWIO)
# -> neutral OIHW. Conv2DTranspose: [kH, kW, out, in] -> neutral IOHW. Both
# are the same transpose, (3, 2, 0, 1); (2, 3, 1, 0) undoes it.
# DepthwiseConv2D (depth_multiplier 1): [kH, kW, C, 1] -> neutral [C, 1, kH, kW],
# the transpose (2, 3, 0, 1), which is its own inverse.
TO_NEUTRAL, FROM_NEUTRAL = (3, 2, 0, 1), (2, 3, 1, 0)
DEPTHWISE = "depthwise"          # the is_kernel value of a DepthwiseConv2D kernel
DEPTHWISE_PERM = (2, 3, 0, 1)


def neutral_variables(model: keras.Model) -> dict:
    """Neutral name -> (Keras variable, is_kernel), parameters and BatchNorm running stats.

    A neutral name is the layer's name, "-" read as ".", plus the leaf.
    is_kernel: False, True (Conv2D, Conv2DTranspose) or DEPTHWISE.
    """
    out = {}
    for layer in model.layers:
        path = layer.name.replace(LAYER_SEP, ".")
        if isinstance(layer, layers.DepthwiseConv2D):
            if layer.depth_multiplier != 1:
                raise ValueError(f"{layer.name}: only depth_multiplier=1 has a neutral layout here")
            out[f"{path}.weight"] = (layer.kernel, DEPTHWISE)
            if layer.use_bias:
                out[f"{path}.bias"] = (layer.bias, False)
        elif isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            out[f"{path}.weight"] = (layer.kernel, True)
            if layer.use_bias:
                out[f"{path}.bias"] = (layer.bias, False)
        elif isinstance(layer, layers.BatchNormalization):
            for leaf, var in (("gamma", layer.gamma), ("beta", layer.beta),
                              ("mean", layer.moving_mean), ("var", layer.moving_variance)):
                out[f"{path}.{leaf}"] = (var, False)
    return out


def to_neutral(a, is_kernel) -> np.ndarray:
    """A Keras variable or tensor -> numpy in the neutral layout, in its own dtype (no rounding)."""
    a = np.asarray(ops.convert_to_numpy(a))
    if is_kernel == DEPTHWISE:
        return np.ascontiguousarray(a.transpose(DEPTHWISE_PERM))
    return np.ascontiguousarray(a.transpose(TO_NEUTRAL) if is_kernel else a)


def from_neutral(a, is_kernel, dtype="float32") -> np.ndarray:
    """A neutral array (float32 or float64) -> numpy in Keras' layout and `dtype`, the variable's."""
    a = np.asarray(a, dtype)
    if is_kernel == DEPTHWISE:
        return np.ascontiguousarray(a.transpose(DEPTHWISE_PERM))
    return np.ascontiguousarray(a.transpose(FROM_NEUTRAL) if is_kernel else a)


def get_weights(model) -> dict:
    return {k: to_neutral(v, kernel) for k, (v, kernel) in neutral_variables(model).items()}


def set_weights(model, weights: dict):
    for k, (v, kernel) in neutral_variables(model).items():
        v.assign(from_neutral(weights[k], kernel, v.dtype))


def _gpu_count() -> int:
    if BACKEND == "torch":
        import torch
        return torch.cuda.device_count()
    import tensorflow as tf
    return len(tf.config.list_physical_devices("GPU"))


def select_device(name: str) -> str:
    """--device auto|cpu|gpu[:N]|cuda[:N] -> a keras.device() name, "cpu" or "gpu:N".

    Plain "cpu", not "cpu:0": on the torch backend Keras moves each new
    parameter .to() that device, and torch treats "cpu:0" as another device
    than "cpu", copying the parameter into a non-leaf tensor that never gets
    a gradient.
    """
    name = name.lower()
    if name == "auto":
        return "gpu:0" if _gpu_count() else "cpu"
    if name == "cpu":
        return "cpu"
    match = re.fullmatch(r"(?:gpu|cuda)(?::(\d+))?", name)
    if not match:
        raise UserError(f"--device {name}: not a device name; use auto, cpu, gpu or gpu:N.")
    index, count = int(match.group(1) or 0), _gpu_count()
    if index >= count:
        raise UserError(f"--device {name}: Keras ({BACKEND} backend) sees {count} GPU(s) here; "
                        "use --device cpu" + (f" or gpu:0..{count - 1}." if count else "."))
    return f"gpu:{index}"


def to_nchw(logits) -> np.ndarray:
    """Logits [B, H, W, C] -> numpy [B, C, H, W], in their own dtype."""
    return np.ascontiguousarray(np.asarray(ops.convert_to_numpy(logits)).transpose(0, 3, 1, 2))


class Trainer:
    """What common/runner.py drives: one SGD step, evaluation, weights in/out.

    dtype: "float32", or "float64" for the parity tests' exact reference; the
    model must have been built in it (trainer_factory builds it inside
    using_dtype). Inputs x of any float dtype are cast to it; logits,
    gradients, weights and optimizer state come out in it.
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: keras.Model, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
        wrong = {v.dtype for v in model.variables if "float" in v.dtype} - {dtype}
        if wrong:
            raise ValueError(f"dtype {dtype}: the model has {', '.join(sorted(wrong))} variables; "
                             "build it inside using_dtype(dtype)")
        self.model = model
        self.device = device                       # a keras.device() name; see trainer_factory
        self.device_name = f"{device} ({BACKEND})"
        self.dtype = dtype
        self.lr = lr
        self.loss_fn = make_loss(loss, task, ignore_index)
        if dtype == "float64":
            # SGD.update_step casts the momentum with ops.cast(self.momentum, dtype), and on
            # the tensorflow backend tf.cast turns a Python float into a float32 tensor first:
            # 0.9 would become 0.8999999762 (measured: the 20-step losses then drift 3.5e-9
            # from PyTorch's). A NumPy float64 (a subclass of float) is cast exactly.
            momentum = np.float64(momentum)
        with self._scope():
            # the learning-rate variable is created in floatx: float64 keeps lr exact
            self.optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
            # Built now rather than at the first step, so that --resume can fill
            # its momentum buffers before training starts.
            self.optimizer.build(model.trainable_variables)
            model.compile(optimizer=self.optimizer, loss=self.loss_fn)
        self.tensors = neutral_variables(model)
        # neutral name of each trainable variable, in the optimizer's order
        by_id = {id(v): k for k, (v, _) in self.tensors.items()}
        self.param_names = [by_id[id(v)] for v in model.trainable_variables]

    @contextlib.contextmanager
    def _scope(self):
        """The device, and floats in the trainer's dtype (using_dtype), for every Keras call."""
        with keras.device(self.device), using_dtype(self.dtype):
            yield

    def _input(self, x):
        return np.asarray(x, self.dtype)

    def train_step(self, x, y) -> float:
        # model.fit would run the whole loop itself; the shared runner owns the
        # loop (checkpoints, --resume, the per-iteration loss curve), so Keras
        # gets one batch at a time. Keras 3's train_on_batch resets the metrics
        # on each call, so it returns this batch's loss, not a running mean.
        with self._scope():
            return float(self.model.train_on_batch(self._input(x), y))

    def eval_batch(self, x, y):
        """Logits [B,H,W,C] -> numpy NCHW, and the loss; BatchNorm uses its running statistics."""
        with self._scope():
            logits = self.model.predict_on_batch(self._input(x))   # inference mode, no gradients
            loss = self.loss_fn(ops.convert_to_tensor(y), ops.convert_to_tensor(logits))
        return to_nchw(logits), float(ops.convert_to_numpy(loss))

    def forward(self, x, training: bool):
        """Logits (numpy, NCHW). training=True: batch statistics (running ones get updated)."""
        with self._scope():
            return to_nchw(self.model(ops.convert_to_tensor(self._input(x)), training=training))

    def loss_and_gradients(self, x, y):
        """Loss and d loss / d parameter (neutral names and layouts), training mode, no update.

        train_on_batch computes the gradients and applies them in one go, and
        Keras 3 has no backend-neutral "just the gradients" call, so this is
        the one backend-specific function: TensorFlow records the forward pass
        on a GradientTape, PyTorch's autograd fills each parameter's .grad.
        """
        variables = self.model.trainable_variables
        with self._scope():
            x, y = ops.convert_to_tensor(self._input(x)), ops.convert_to_tensor(y)
            if BACKEND == "tensorflow":
                import tensorflow as tf
                with tf.GradientTape() as tape:
                    loss = self.loss_fn(y, self.model(x, training=True))
                grads = tape.gradient(loss, variables)
            else:
                loss = self.loss_fn(y, self.model(x, training=True))
                for v in variables:
                    v.value.grad = None                  # v.value is the torch.nn.Parameter
                loss.backward()
                grads = [v.value.grad for v in variables]
                for v in variables:
                    v.value.grad = None
        out = {name: to_neutral(g, self.tensors[name][1]) for name, g in zip(self.param_names, grads)}
        return float(ops.convert_to_numpy(loss)), out

    def get_weights(self):
        return get_weights(self.model)

    def set_weights(self, weights):
        with self._scope():
            set_weights(self.model, weights)

    def get_optimizer_state(self):
        """PyTorch's momentum buffer v per parameter (neutral layout).

        Keras keeps a velocity u = mu*u - lr*g and adds it (p += u); PyTorch
        keeps v = mu*v + g and subtracts lr*v. The same step when u = -lr*v.
        """
        out = {}
        for i, name in enumerate(self.param_names):
            var, kernel = self.tensors[name]
            u = (ops.convert_to_numpy(self.optimizer.momentums[i]) if self.optimizer.momentums
                 else np.zeros(var.shape, var.dtype))     # --momentum 0: Keras keeps no buffers
            out[name] = to_neutral(-u / self.lr, kernel)
        return out

    def set_optimizer_state(self, state):
        if not self.optimizer.momentums:             # --momentum 0: nothing to restore
            return
        with self._scope():
            for u, name in zip(self.optimizer.momentums, self.param_names):
                u.assign(-self.lr * from_neutral(state[name], self.tensors[name][1], u.dtype))

    def num_params(self):
        return sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)


# ------------------------------------------------------------ step driver
def step_name(file) -> str:
    return Path(file).stem


def _add_backend(parser):
    parser.add_argument("--backend", choices=BACKENDS, default=BACKEND,
                        help="Keras backend, read before Keras is imported; outputs of the torch "
                             "backend go to runs/keras-torch/ (default: $KERAS_BACKEND, else "
                             "tensorflow)")


def parse_args(file, doc, argv=None, add_arguments=None):
    def add(parser):
        _add_backend(parser)
        if add_arguments:
            add_arguments(parser)
    args = cli.parse_args(step_name(file), FRAMEWORK, argv, doc, add, out_label=LABEL)
    if BACKEND not in BACKENDS:
        raise UserError(f"KERAS_BACKEND={BACKEND}: the Keras steps run on " + " or ".join(BACKENDS)
                        + "; unset KERAS_BACKEND or pass --backend tensorflow.")
    if args.backend != BACKEND:
        # Only when argv is passed to main() directly: the command line is read at import.
        raise UserError(f"--backend {args.backend}: Keras already runs on the {BACKEND} backend in "
                        "this process (the backend is fixed when Keras is imported). Give --backend "
                        f"on the command line, or set KERAS_BACKEND={args.backend} before starting Python.")
    return args


def trainer_factory(args, step: Step, build, dtype: str = "float32"):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        device = select_device(args.device)
        # variables are created where they will live, in dtype
        with keras.device(device), using_dtype(dtype):
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, device, ignore_index,
                       dtype)
    return make_trainer


def run(args, step: Step, build) -> dict:
    """Train and evaluate: build(num_outputs) -> keras.Model."""
    # Nothing here draws from it; seeded for user additions. keras.utils.set_random_seed
    # would import TensorFlow even on the torch backend (seconds, and 400 MB), so not there.
    if BACKEND == "torch":
        import torch
        torch.manual_seed(args.seed)
    else:
        keras.utils.set_random_seed(args.seed)
    return runner.run(args, step, trainer_factory(args, step, build), FRAMEWORK, label=LABEL)
