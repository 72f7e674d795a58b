"""Chainer glue shared by the step scripts in chainer/.

Everything here is framework plumbing that all steps share: the exercise's
CBR block, BatchNorm settings, losses, conversion to and from the neutral
weights (common/weights.py), and the Trainer that common/runner.py drives.
The step files hold the networks and what each lesson teaches.
Layout: NCHW, as in PyTorch.

Chainer 7.8.1 (2022) is the last release; chainer_compat, imported below
before chainer itself, lets it run on current NumPy. Step scripts import this
module first for that reason.
"""
import re
import sys
from pathlib import Path

# Append (never prepend) the repo root, for `common`: the folders tensorflow/,
# keras/ and chainer/ there must not shadow the installed packages.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

import chainer_compat  # noqa: E402,F401  (before chainer: restores what NumPy 2 removed)

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402
import numpy as np  # noqa: E402
from chainer.backends import cuda  # noqa: E402
from chainer.functions.array import resize_images as _resize_images  # noqa: E402
from chainer.utils import type_check  # noqa: E402

from common import cli, runner  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402,F401
from common.losses import CE_DICE_WEIGHT, EPS, FOCAL_GAMMA  # noqa: E402
from common.runner import Step  # noqa: E402,F401

FRAMEWORK = "chainer"
LAYOUT = "NCHW"
# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5              # Chainer's default is 2e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch
BN_DECAY = 1 - BN_MOMENTUM  # Chainer's convention: new = 0.9 * old + (1 - 0.9) * batch
DTYPES = ("float32", "float64")   # float64: the parity tests' exact reference


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


class CBR(chainer.Chain):
    """Conv kxk (pad k//2) -> ReLU -> BatchNorm: the exercise's block.

    The exercise puts BatchNorm after the ReLU; most papers put it before.
    We keep the exercise's order. Input [B, in, H, W] -> [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        with self.init_scope():   # links assigned here become children named conv, bn
            self.conv = L.Convolution2D(in_channels, out_channels, kernel_size,
                                        pad=kernel_size // 2)
            self.bn = batch_norm(out_channels)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))


class ConvBNReLU(chainer.Chain):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (CBR has ReLU before BN).

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


# ----------------------------------------------------------------- losses
# The five --loss choices. Definitions, constants and the choices behind them
# (smoothing, averaging over classes, focal's gamma, the ce+dice weight):
# common/losses.py, the NumPy reference tests/test_losses.py compares these with.
# Chainer's cross-entropies already give 0 (not NaN) when every pixel is ignored.
def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,1,H,W] vs 0/1 targets [B,H,W], mean over labelled pixels.

    F.sigmoid_cross_entropy skips pixels labelled -1 (fixed, not configurable),
    so ignore_index is mapped to -1; normalize=True divides by the labelled count.
    """
    z = logits[:, 0]
    if ignore_index is not None:
        xp = chainer.backend.get_array_module(y)
        y = xp.where(y == ignore_index, -1, y).astype(np.int32)
    return F.sigmoid_cross_entropy(z, y, normalize=True)


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels (the lesson of 02_multiclass).

    Every pixel is one classification sample: logits [B,C,H,W] become
    [B*H*W, C] and labels [B,H,W] become [B*H*W]; the loss is their mean over
    labelled pixels. (F.softmax_cross_entropy also accepts [B,C,H,W] directly;
    we reshape to show it.)
    """
    c = logits.shape[1]
    flat = F.reshape(F.transpose(logits, (0, 2, 3, 1)), (-1, c))
    return F.softmax_cross_entropy(flat, y.reshape(-1),
                                   ignore_label=-1 if ignore_index is None else ignore_index)


def cross_entropy(logits, y, task, ignore_index=None):
    """--loss ce: sigmoid BCE for binary, softmax cross-entropy for multiclass."""
    fn = sigmoid_cross_entropy if task == "binary" else softmax_cross_entropy
    return fn(logits, y, ignore_index)


def _labelled(y, ignore_index, dtype):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored).

    Labels are plain arrays (NumPy or CuPy), not Variables: nothing is
    differentiated with respect to them, so xp does the work.
    """
    xp = chainer.backend.get_array_module(y)
    if ignore_index is None:
        return y.astype(np.int32), xp.ones(y.shape, dtype)
    keep = y != ignore_index
    return xp.where(keep, y, 0).astype(np.int32), keep.astype(dtype)


def _mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return F.sum(per_pixel * w) / max(float(w.sum()), 1.0)


def focal_loss(logits, y, task, ignore_index=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,C,H,W] (C = 1: binary, sigmoid), labels [B,H,W]. reduce="no"
    makes Chainer's cross-entropies return -log p_t per pixel.
    """
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = F.sigmoid_cross_entropy(logits[:, 0], t, reduce="no")
    else:
        ce = F.softmax_cross_entropy(logits, t, reduce="no")        # [B,H,W]
    return _mean_over((-F.expm1(-ce)) ** gamma * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p (Variables), T = sum t (an array). Binary: K = 1, the foreground."""
    xp = chainer.backend.get_array_module(y)
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = F.sigmoid(logits)                                       # [B,1,H,W]
        t = (t == 1).astype(logits.dtype)[:, None]                  # [B,1,H,W]
    else:
        p = F.softmax(logits, axis=1)                               # [B,C,H,W]
        classes = xp.arange(logits.shape[1])[None, :, None, None]
        t = (t[:, None] == classes).astype(logits.dtype)            # one-hot [B,C,H,W]
    w = w[:, None]                                                  # ignored pixels: 0
    axes = (0, 2, 3)                                                # batch and pixels
    return F.sum(p * t * w, axis=axes), F.sum(p * w, axis=axes), (t * w).sum(axis=axes)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = (true > 0).astype(scores.dtype)
    return F.sum((1 - scores) * present) / max(float(present.sum()), 1.0)


def _floor(x, eps):
    """max(x, eps) elementwise; F.maximum wants two operands of the same shape."""
    return F.maximum(x, x.xp.full(x.shape, eps, x.dtype))


def dice_loss(logits, y, task, ignore_index=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / _floor(p + t, EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / _floor(p + t - i, EPS), t)


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
# Chainer's names for the leaves -> the neutral (PyTorch) ones, in PyTorch's
# order. Link paths already agree once the links are named like PyTorch's
# modules: /trunk/0/conv/W -> trunk.0.conv.weight, /up_bn/avg_var -> up_bn.var.
_LEAF = {"W": "weight", "b": "bias", "gamma": "gamma", "beta": "beta",
         "avg_mean": "mean", "avg_var": "var"}


def neutral_name(path: str) -> str:
    """'/enc/0/1/conv/W' -> 'enc.0.1.conv.weight'."""
    *links, leaf = path.strip("/").split("/")
    return ".".join(links + [_LEAF[leaf]])


def links_in_order(link, path=""):
    """(dotted path, link) for link and all links inside it, in definition order.

    Chainer's own namedlinks() sorts the names alphabetically; we keep the
    order in which the links were assigned, as PyTorch's named_modules() does,
    so that both list the weights in the same order.
    """
    yield path, link
    children = list(link.children())
    if isinstance(link, chainer.Chain):   # a Chain's attributes remember their order
        order = list(vars(link))
        children.sort(key=lambda child: order.index(child.name))
    for child in children:
        yield from links_in_order(child, f"{path}.{child.name}" if path else child.name)


def neutral_arrays(model: chainer.Link) -> dict:
    """Neutral name -> the model's array (parameters and BatchNorm running stats).

    Chainer stores convs as OIHW and transposed convs (Deconvolution2D) as
    [in, out, kH, kW] = IOHW: both already the neutral layouts. BatchNorm's
    running statistics are not parameters but "persistent" values of the link.
    """
    out = {}
    for path, link in links_in_order(model):
        own = {name[1:]: p.array for name, p in link.namedparams() if name.count("/") == 1}
        if isinstance(link, L.BatchNormalization):
            own.update(avg_mean=link.avg_mean, avg_var=link.avg_var)
        for leaf, neutral in _LEAF.items():
            if leaf in own:
                out[f"{path}.{neutral}" if path else neutral] = own[leaf]
    return out


def get_weights(model) -> dict:
    """Neutral name -> a copy of the array, in the model's dtype."""
    return {k: np.array(chainer.backend.CpuDevice().send(a))   # a copy
            for k, a in neutral_arrays(model).items()}


def set_weights(model, weights: dict):
    """Float32 or float64 neutral arrays, stored in the model's dtype, in place."""
    for k, a in neutral_arrays(model).items():
        a[...] = model.device.send(np.asarray(weights[k], a.dtype))


def select_device(name: str):
    """--device auto|cpu|gpu|cuda[:N] (also Chainer's own @numpy, @cupy:N).

    Chainer runs on NumPy (CPU) or CuPy (NVIDIA GPU); auto takes GPU 0 when
    CuPy is installed and sees one.
    """
    if name == "auto":
        name = "gpu" if cuda.available else "cpu"
    if name in ("cpu", "@numpy"):
        return chainer.get_device("@numpy")
    gpu = re.fullmatch(r"(?:gpu|cuda|@cupy)(?::(\d+))?", name)
    if gpu is None:
        raise UserError(f"--device {name}: not a device name; use auto, cpu, gpu or cuda:N.")
    if not cuda.available:
        raise UserError(f"--device {name}: Chainer needs CuPy and a CUDA GPU for that, and "
                        "CuPy is not installed or sees no GPU; use --device cpu.")
    return chainer.get_device(f"@cupy:{gpu.group(1) or 0}")


class Trainer:
    """What common/runner.py drives: one SGD step, evaluation, weights in/out.

    dtype: "float32", or "float64" for the parity tests' exact reference; the
    model must have been built in it (trainer_factory builds it with Chainer's
    config.dtype set). Inputs x of any float dtype are cast to it; logits,
    gradients, weights and optimizer state come out in it.
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: chainer.Chain, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
        wrong = {p.array.dtype for p in model.params() if p.array is not None} - {np.dtype(dtype)}
        if wrong:
            raise ValueError(f"dtype {dtype}: the model has {', '.join(map(str, wrong))} parameters; "
                             f"build it inside chainer.using_config('dtype', numpy.{dtype})")
        self.dtype = dtype
        self.device = select_device(device)
        self.device_name = "cpu" if self.device.xp is np else f"cuda:{self.device.device.id}"
        self.model = model
        self.model.to_device(self.device)
        self.loss_fn = make_loss(loss, task, ignore_index)
        self.lr = lr
        # Chainer's MomentumSGD keeps v = mu*v - lr*g; p += v. PyTorch keeps
        # v = mu*v + g; p -= lr*v. Same steps, with v_chainer = -lr * v_torch.
        self.opt = chainer.optimizers.MomentumSGD(lr=lr, momentum=momentum)
        self.opt.setup(self.model)
        # neutral name of each trainable parameter, for gradients and optimizer state
        self.params = [(neutral_name(path), p) for path, p in self.model.namedparams()]

    def _input(self, x):
        # Chainer's functions want x in the weights' dtype (they raise otherwise)
        return self.device.send(np.asarray(x, self.dtype))

    def _loss(self, x, y):
        return self.loss_fn(self.model(self._input(x)), self.device.send(y))

    def train_step(self, x, y) -> float:
        with chainer.using_config("train", True):   # BatchNorm: batch statistics
            loss = self._loss(x, y)
        self.model.cleargrads()   # backward() adds to .grad, as in PyTorch
        loss.backward()
        self.opt.update()         # MomentumSGD on every parameter of the model
        return float(loss.array)

    def eval_batch(self, x, y):
        # train=False: BatchNorm uses its running statistics; no_backprop_mode:
        # no graph is recorded (PyTorch's torch.no_grad()).
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            logits = self.model(self._input(x))
            loss = self.loss_fn(logits, self.device.send(y))
        return chainer.backend.CpuDevice().send(logits.array), float(loss.array)

    def forward(self, x, training: bool):
        """Logits (numpy, NCHW). training=True: batch statistics (running ones get updated)."""
        with chainer.using_config("train", training), chainer.no_backprop_mode():
            return chainer.backend.CpuDevice().send(self.model(self._input(x)).array)

    def loss_and_gradients(self, x, y):
        """Loss and d loss / d parameter (neutral names), training mode, no update."""
        with chainer.using_config("train", True):
            loss = self._loss(x, y)
        self.model.cleargrads()
        loss.backward()
        cpu = chainer.backend.CpuDevice()
        grads = {name: np.array(cpu.send(p.grad)) for name, p in self.params}
        self.model.cleargrads()
        return float(loss.array), grads

    def get_weights(self):
        return get_weights(self.model)

    def set_weights(self, weights):
        set_weights(self.model, weights)

    def get_optimizer_state(self):
        """Momentum buffer per parameter in PyTorch's form (v_torch = -v_chainer / lr)."""
        out = {}
        for name, p in self.params:
            state = p.update_rule.state   # None until the first update
            out[name] = (-chainer.backend.CpuDevice().send(state["v"]) / self.lr
                         if state is not None else np.zeros(p.shape, p.dtype))
        return out

    def set_optimizer_state(self, state):
        for name, p in self.params:
            rule = p.update_rule
            if rule.state is None:
                # Chainer creates v lazily in the first update(); create it now
                # (the same call update() makes) so it can be filled in.
                rule._init_states(p)
            v = rule.state["v"]
            v[...] = self.device.send(-self.lr * np.asarray(state[name], v.dtype))

    def num_params(self):
        return sum(p.size for p in self.model.params())


# ------------------------------------------------------------ step driver
def step_name(file) -> str:
    return Path(file).stem


def parse_args(file, doc, argv=None, add_arguments=None):
    return cli.parse_args(step_name(file), FRAMEWORK, argv, doc, add_arguments)


def trainer_factory(args, step: Step, build, dtype: str = "float32"):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        # config.dtype: the dtype in which links create their parameters and BatchNorm statistics
        with chainer.using_config("dtype", np.dtype(dtype)):
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, args.device,
                       ignore_index, dtype)
    return make_trainer


def run(args, step: Step, build) -> dict:
    """Train and evaluate: build(num_outputs) -> chainer.Chain."""
    # Chainer's own initializers draw from NumPy's global generator; the runner
    # then overwrites every weight with the suite's seeded ones.
    np.random.seed(args.seed)
    return runner.run(args, step, trainer_factory(args, step, build), FRAMEWORK)
