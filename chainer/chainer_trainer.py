"""The Chainer Trainer that common/runner.py drives, and the device choice.

One SGD step (the lesson's train_step, taught in 01_binarization),
evaluation with BatchNorm in inference mode, the class of every pixel
(binarize, 01; to_classes, 02), and weights and optimizer state in and out
as neutral arrays. Layout: NCHW, as in PyTorch.

float64 (the parity tests' exact reference): the model is built inside
chainer.using_config("dtype", numpy.float64), the dtype in which Chainer's
links create their parameters and BatchNorm statistics (trainer_factory).
"""
import re

import chainer_compat  # noqa: F401  (before chainer: restores what NumPy 2 removed)

import chainer
import numpy as np
from chainer.backends import cuda

import chainer_losses
import chainer_weights
from common import lessons
from common.errors import UserError

FRAMEWORK = "chainer"
LAYOUT = "NCHW"
DTYPES = ("float32", "float64")   # float64: the parity tests' exact reference


def out_label() -> str:
    """Folder under runs/ and the name in reports."""
    return FRAMEWORK


def seed(n: int):
    """Chainer's own initializers draw from NumPy's global generator; the runner
    then overwrites every weight with the suite's seeded ones."""
    np.random.seed(n)


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
    `lesson`: the lesson module whose train_step, losses and thresholds to use
    (a learner's copy brings its own; common/lessons.py).
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: chainer.Chain, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32", lesson=None):
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
        wrong = {p.array.dtype for p in model.params() if p.array is not None} - {np.dtype(dtype)}
        if wrong:
            raise ValueError(f"dtype {dtype}: the model has {', '.join(map(str, wrong))} parameters; "
                             f"build it inside chainer.using_config('dtype', numpy.{dtype})")
        self.dtype = dtype
        self.task = task
        self.device = select_device(device)
        self.device_name = "cpu" if self.device.xp is np else f"cuda:{self.device.device.id}"
        self.model = model
        self.model.to_device(self.device)
        self.loss_fn = chainer_losses.make_loss(loss, task, ignore_index, lesson)
        self.lr = lr
        # Chainer's MomentumSGD keeps v = mu*v - lr*g; p += v. PyTorch keeps
        # v = mu*v + g; p -= lr*v. Same steps, with v_chainer = -lr * v_torch.
        self.opt = chainer.optimizers.MomentumSGD(lr=lr, momentum=momentum)
        self.opt.setup(self.model)
        self._train_step = lessons.taught(FRAMEWORK, "train_step", lesson)
        self._classes = lessons.taught(FRAMEWORK, "binarize" if task == "binary" else "to_classes",
                                       lesson)
        # neutral name of each trainable parameter, for gradients and optimizer state
        self.params = [(chainer_weights.neutral_name(path), p)
                       for path, p in self.model.namedparams()]

    def _input(self, x):
        # Chainer's functions want x in the weights' dtype (they raise otherwise)
        return self.device.send(np.asarray(x, self.dtype))

    def _loss(self, x, y):
        return self.loss_fn(self.model(self._input(x)), self.device.send(y))

    def train_step(self, x, y) -> float:
        loss = self._train_step(self.model, self.opt, self.loss_fn,      # 01_binarization
                                self._input(x), self.device.send(y))
        return float(chainer.as_array(loss))

    def eval_batch(self, x, y):
        # train=False: BatchNorm uses its running statistics; no_backprop_mode:
        # no graph is recorded (PyTorch's torch.no_grad()).
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            logits = self.model(self._input(x))
            loss = self.loss_fn(logits, self.device.send(y))
        return chainer.backend.CpuDevice().send(logits.array), float(loss.array)

    def classes(self, logits) -> np.ndarray:
        """uint8 [N,H,W] class indices from logits [N,C,H,W] (binarize / to_classes of the lesson)."""
        out = self._classes(np.asarray(logits))
        return np.asarray(chainer.backend.CpuDevice().send(chainer.as_array(out))).astype(np.uint8)

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
        return chainer_weights.get_weights(self.model)

    def set_weights(self, weights):
        chainer_weights.set_weights(self.model, weights)

    def set_lr(self, lr: float):
        """The learning rate of the next steps (--lr-schedule). Chainer's v is -lr * v_torch:
        rescaled by new/old, so the next step is PyTorch's (as keras_trainer.set_lr)."""
        if lr == self.lr:
            return
        for _, p in self.params:
            if p.update_rule.state is not None:
                p.update_rule.state["v"] *= lr / self.lr
        self.opt.lr = lr
        self.lr = lr

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


def trainer_factory(args, step, build, dtype: str = "float32", lesson=None):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        # config.dtype: the dtype in which links create their parameters and BatchNorm statistics
        with chainer.using_config("dtype", np.dtype(dtype)):
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, args.device,
                       ignore_index, dtype, lesson)
    return make_trainer
