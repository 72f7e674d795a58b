"""The PyTorch Trainer that common/runner.py drives, and the device choice.

One SGD step (the lesson's train_step, taught in 01_binarization),
evaluation with BatchNorm in inference mode, the class of every pixel
(binarize, 01; to_classes, 02), and weights and optimizer state in and out
as neutral arrays. Layout: NCHW.
"""
import numpy as np
import torch

import torch_losses
import torch_weights
from common import lessons
from common.errors import UserError

FRAMEWORK = "pytorch"
LAYOUT = "NCHW"


def out_label() -> str:
    """Folder under runs/ and the name in reports."""
    return FRAMEWORK


def seed(n: int):
    torch.manual_seed(n)


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
    """What common/runner.py drives: one SGD step, evaluation, weights in/out.

    `lesson`: the lesson module whose train_step, losses and thresholds to use
    (a learner's copy brings its own; common/lessons.py).
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: torch.nn.Module, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32", lesson=None):
        self.device = select_device(device)
        self.device_name = str(self.device)
        # float64: the parity tests' exact reference (every parameter, buffer and activation)
        self.dtype = dtype
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.task = task
        self.model = model.to(self.device, self.torch_dtype)
        self.loss_fn = torch_losses.make_loss(loss, task, ignore_index, lesson)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        self._train_step = lessons.taught(FRAMEWORK, "train_step", lesson)
        self._classes = lessons.taught(FRAMEWORK, "binarize" if task == "binary" else "to_classes",
                                       lesson)
        # neutral name of each trainable parameter, for the optimizer state
        by_id = {id(t): k for k, t in torch_weights.neutral_tensors(self.model).items()}
        self.param_names = [(by_id[id(p)], p) for p in self.model.parameters()]

    def _input(self, x):
        return torch.from_numpy(x).to(self.device, self.torch_dtype)

    def _tensors(self, x, y):
        return self._input(x), torch.from_numpy(y).to(self.device)

    def train_step(self, x, y) -> float:
        x, y = self._tensors(x, y)
        return float(self._train_step(self.model, self.opt, self.loss_fn, x, y))   # 01_binarization

    @torch.no_grad()
    def eval_batch(self, x, y):
        self.model.eval()   # BatchNorm uses its running statistics
        x, y = self._tensors(x, y)
        logits = self.model(x)
        return logits.cpu().numpy(), self.loss_fn(logits, y).item()

    def classes(self, logits) -> np.ndarray:
        """uint8 [N,H,W] class indices from logits [N,C,H,W] (binarize / to_classes of the lesson)."""
        with torch.no_grad():
            return self._classes(torch.from_numpy(np.asarray(logits))).cpu().numpy().astype(np.uint8)

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

    def set_lr(self, lr: float):
        """The learning rate of the next steps (--lr-schedule); the momentum buffer is kept."""
        for group in self.opt.param_groups:
            group["lr"] = lr

    def get_weights(self):
        return torch_weights.get_weights(self.model)

    def set_weights(self, weights):
        torch_weights.set_weights(self.model, weights)

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


def trainer_factory(args, step, build, dtype: str = "float32", lesson=None):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        return Trainer(build(num_outputs), step.task, args.loss, args.lr, args.momentum,
                       args.device, ignore_index, dtype, lesson)
    return make_trainer
