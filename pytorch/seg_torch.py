"""PyTorch glue shared by the step scripts in pytorch/.

Everything here is framework plumbing that all steps share: the exercise's
CBR block, BatchNorm settings, losses, conversion to and from the neutral
weights (common/weights.py), and the Trainer that common/runner.py drives.
The step files hold the networks and what each lesson teaches.
Layout: NCHW.
"""
import sys
from pathlib import Path

# Append (never prepend) the repo root, for `common`: the folders tensorflow/,
# keras/ and chainer/ there must not shadow the installed packages.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from common import cli, runner  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402,F401
from common.losses import CE_DICE_WEIGHT, EPS, FOCAL_GAMMA  # noqa: E402
from common.runner import Step  # noqa: E402,F401

FRAMEWORK = "pytorch"
LAYOUT = "NCHW"
# Identical in all four frameworks (docs/framework-differences.md).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1          # PyTorch convention: new = (1 - 0.1) * old + 0.1 * batch


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class CBR(nn.Module):
    """Conv kxk (pad k//2) -> ReLU -> BatchNorm: the exercise's block.

    The exercise puts BatchNorm after the ReLU; most papers put it before.
    We keep the exercise's order. Input [B, in, H, W] -> [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = batch_norm(out_channels)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))


class ConvBNReLU(nn.Module):
    """Conv kxk (no bias) -> BatchNorm -> ReLU: the papers' order (CBR has ReLU before BN).

    Used by SegNet (08) and DeepLabv3+ (09), which put BatchNorm before the
    ReLU as their papers do (08_segnet.py explains why its unpooling needs
    that order). The convolution has no bias: BatchNorm subtracts the batch
    mean right after it, which would cancel any bias, and BatchNorm's beta
    plays its role. Padding dilation * (k // 2) keeps the side; with stride 1
    and odd k that "same" padding is symmetric in every framework.
    groups=in_channels=out_channels makes it depthwise: weight [C, 1, k, k],
    the neutral layout. Neutral names: <block>.conv.weight, <block>.bn.*.
    Input [B, in, H, W] -> [B, out, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=dilation * (kernel_size // 2), dilation=dilation,
                              groups=groups, bias=False)
        self.bn = batch_norm(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


# ----------------------------------------------------------------- losses
# The five --loss choices. Definitions, constants and the choices behind them
# (smoothing, averaging over classes, focal's gamma, the ce+dice weight):
# common/losses.py, the NumPy reference tests/test_losses.py compares these with.
# Every loss keeps its logits' dtype (the parity tests run PyTorch in float64).
def _labelled(y, ignore_index, dtype):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored)."""
    if ignore_index is None:
        return y.long(), torch.ones(y.shape, dtype=dtype, device=y.device)
    keep = y != ignore_index
    return torch.where(keep, y, torch.zeros_like(y)).long(), keep.to(dtype)


def _mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return (per_pixel * w).sum() / w.sum().clamp_min(1)


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,1,H,W] vs 0/1 targets [B,H,W], mean over labelled pixels."""
    z = logits[:, 0]
    t, w = _labelled(y, ignore_index, z.dtype)
    return _mean_over(F.binary_cross_entropy_with_logits(z, t.to(z.dtype), reduction="none"), w)


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels (the lesson of 02_multiclass).

    Every pixel is one classification sample: logits [B,C,H,W] become
    [B*H*W, C] and labels [B,H,W] become [B*H*W]; the loss is their mean.
    (F.cross_entropy also accepts [B,C,H,W] directly; we reshape to show it.)
    The sum is divided by the labelled count floored at 1: F.cross_entropy's
    own mean gives NaN when every pixel is ignored.
    """
    c = logits.shape[1]
    flat = logits.permute(0, 2, 3, 1).reshape(-1, c)
    labels = y.reshape(-1).long()
    ignore = -100 if ignore_index is None else ignore_index
    total = F.cross_entropy(flat, labels, ignore_index=ignore, reduction="sum")
    return total / (labels != ignore).sum().clamp_min(1)


def cross_entropy(logits, y, task, ignore_index=None):
    """--loss ce: sigmoid BCE for binary, softmax cross-entropy for multiclass."""
    fn = sigmoid_cross_entropy if task == "binary" else softmax_cross_entropy
    return fn(logits, y, ignore_index)


def focal_loss(logits, y, task, ignore_index=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,C,H,W] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = F.binary_cross_entropy_with_logits(logits[:, 0], t.to(logits.dtype), reduction="none")
    else:
        ce = F.cross_entropy(logits, t, reduction="none")          # [B,H,W] = -log p_t
    return _mean_over((-torch.expm1(-ce)) ** gamma * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    t, w = _labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = torch.sigmoid(logits)                                   # [B,1,H,W]
        t = (t == 1).to(logits.dtype)[:, None]                      # [B,1,H,W]
    else:
        p = torch.softmax(logits, dim=1)                            # [B,C,H,W]
        t = F.one_hot(t, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    w = w[:, None]                                                  # ignored pixels: 0
    dims = (0, 2, 3)                                                # batch and pixels
    return (p * t * w).sum(dims), (p * w).sum(dims), (t * w).sum(dims)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = (true > 0).to(scores.dtype)
    return ((1 - scores) * present).sum() / present.sum().clamp_min(1)


def dice_loss(logits, y, task, ignore_index=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / (p + t).clamp_min(EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / (p + t - i).clamp_min(EPS), t)


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
_BN_LEAF = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}


def neutral_tensors(model: nn.Module) -> dict:
    """Neutral name -> the model's tensor (parameters and BatchNorm running stats).

    PyTorch already stores convs as OIHW and transposed convs as IOHW, the
    neutral layouts; only BatchNorm's names change (weight -> gamma, ...).
    """
    out = {}
    for mname, m in model.named_modules():
        is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
        own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
        for pname, t in own:
            if pname == "num_batches_tracked":
                continue
            leaf = _BN_LEAF[pname] if is_bn else pname
            out[f"{mname}.{leaf}" if mname else leaf] = t
    return out


def get_weights(model) -> dict:
    return {k: t.detach().cpu().numpy().copy() for k, t in neutral_tensors(model).items()}


def set_weights(model, weights: dict):
    with torch.no_grad():
        for k, t in neutral_tensors(model).items():
            t.copy_(torch.from_numpy(np.asarray(weights[k])))   # copy_ casts to t's dtype


def select_device(name: str) -> torch.device:
    """--device auto|cpu|gpu|cuda[:N]|mps."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "gpu":
        name = "cuda"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name; use auto, cpu, gpu or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: PyTorch sees no CUDA GPU here; use --device cpu.")
    return dev


class Trainer:
    """What common/runner.py drives: one SGD step, evaluation, weights in/out."""
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: nn.Module, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32"):
        self.device = select_device(device)
        self.device_name = str(self.device)
        # float64: the parity tests' exact reference (every parameter, buffer and activation)
        self.dtype = dtype
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.model = model.to(self.device, self.torch_dtype)
        self.loss_fn = make_loss(loss, task, ignore_index)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        # neutral name of each trainable parameter, for the optimizer state
        by_id = {id(t): k for k, t in neutral_tensors(self.model).items()}
        self.param_names = [(by_id[id(p)], p) for p in self.model.parameters()]

    def _input(self, x):
        return torch.from_numpy(x).to(self.device, self.torch_dtype)

    def _tensors(self, x, y):
        return self._input(x), torch.from_numpy(y).to(self.device)

    def train_step(self, x, y) -> float:
        self.model.train()
        x, y = self._tensors(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.item()

    @torch.no_grad()
    def eval_batch(self, x, y):
        self.model.eval()   # BatchNorm uses its running statistics
        x, y = self._tensors(x, y)
        logits = self.model(x)
        return logits.cpu().numpy(), self.loss_fn(logits, y).item()

    def forward(self, x, training: bool):
        """Logits (numpy, NCHW). training=True: batch statistics (running ones get updated)."""
        self.model.train(training)
        with torch.no_grad():
            return self.model(self._input(x)).cpu().numpy()

    def loss_and_gradients(self, x, y):
        """Loss and d loss / d parameter (neutral names), training mode, no update."""
        self.model.train()
        x, y = self._tensors(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        grads = {name: p.grad.detach().cpu().numpy().copy() for name, p in self.param_names}
        self.opt.zero_grad(set_to_none=True)
        return loss.item(), grads

    def get_weights(self):
        return get_weights(self.model)

    def set_weights(self, weights):
        set_weights(self.model, weights)

    def get_optimizer_state(self):
        """Momentum buffer v per parameter (PyTorch form: v = mu*v + g; p -= lr*v)."""
        out = {}
        for name, p in self.param_names:
            buf = self.opt.state.get(p, {}).get("momentum_buffer")
            out[name] = (buf.detach().cpu().numpy().copy() if buf is not None
                         else np.zeros(tuple(p.shape), self.dtype))
        return out

    def set_optimizer_state(self, state):
        for name, p in self.param_names:
            self.opt.state[p]["momentum_buffer"] = torch.from_numpy(
                np.asarray(state[name])).to(self.device, p.dtype).clone()

    def num_params(self):
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


# ------------------------------------------------------------ step driver
def step_name(file) -> str:
    return Path(file).stem


def parse_args(file, doc, argv=None, add_arguments=None):
    return cli.parse_args(step_name(file), FRAMEWORK, argv, doc, add_arguments)


def trainer_factory(args, step: Step, build, dtype: str = "float32"):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        return Trainer(build(num_outputs), step.task, args.loss, args.lr, args.momentum,
                       args.device, ignore_index, dtype)
    return make_trainer


def run(args, step: Step, build) -> dict:
    """Train and evaluate: build(num_outputs) -> nn.Module."""
    torch.manual_seed(args.seed)   # nothing here draws from it; set for user additions
    return runner.run(args, step, trainer_factory(args, step, build), FRAMEWORK)
