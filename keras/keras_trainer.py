"""The Keras 3 Trainer that common/runner.py drives, the backend flag and the device choice.

One SGD step (the lesson's compile_model and train_step, taught in
01_binarization: model.compile, then train_on_batch), evaluation with
BatchNorm in inference mode, the class of every pixel (binarize, 01;
to_classes, 02), and weights and optimizer state in and out as neutral
arrays. Layout: NHWC; what goes to the runner (logits, weights) is NCHW and
neutral.

Keras runs on the backend keras_setup picked (--backend, else
$KERAS_BACKEND, else tensorflow); outputs of the torch backend go to
runs/keras-torch/ (out_label). All maths uses keras.ops, which runs on either
backend; only Trainer.loss_and_gradients (for the parity tests and the
checker) needs a few backend-specific lines.
"""
import keras_setup  # noqa: F401  (first: it picks the Keras backend before keras is imported)

import contextlib
import re

import keras
import numpy as np
from keras import ops

import keras_losses
import keras_weights
from common import lessons
from common.errors import UserError
from keras_layers import DTYPES, using_dtype
from keras_setup import BACKENDS

FRAMEWORK = "keras"
LAYOUT = "NHWC"
BACKEND = keras.backend.backend()          # "tensorflow" or "torch"


def out_label() -> str:
    """Folder under runs/ and the name in reports: keras, or keras-torch on the torch backend."""
    return FRAMEWORK if BACKEND == "tensorflow" else f"{FRAMEWORK}-{BACKEND}"


def seed(n: int):
    # Nothing here draws from it; seeded for user additions. keras.utils.set_random_seed
    # would import TensorFlow even on the torch backend (seconds, and 400 MB), so not there.
    if BACKEND == "torch":
        import torch
        torch.manual_seed(n)
    else:
        keras.utils.set_random_seed(n)


def add_arguments(parser):
    parser.add_argument("--backend", choices=BACKENDS, default=BACKEND,
                        help="Keras backend, read before Keras is imported; outputs of the torch "
                             "backend go to runs/keras-torch/ (default: $KERAS_BACKEND, else "
                             "tensorflow)")


def check_args(args):
    if BACKEND not in BACKENDS:
        raise UserError(f"KERAS_BACKEND={BACKEND}: the Keras steps run on " + " or ".join(BACKENDS)
                        + "; unset KERAS_BACKEND or pass --backend tensorflow.")
    if args.backend != BACKEND:
        # Only when argv is passed to main() directly: the command line is read at import.
        raise UserError(f"--backend {args.backend}: Keras already runs on the {BACKEND} backend in "
                        "this process (the backend is fixed when Keras is imported). Give --backend "
                        f"on the command line, or set KERAS_BACKEND={args.backend} before starting Python.")


def taught(name: str, lesson=None):
    """A lesson function (common/lessons.py TAUGHT; compile_model is Q1.5's too: Keras's
    training step is model.compile once, then train_on_batch per batch)."""
    return lessons.taught(FRAMEWORK, name, lesson)


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
    `lesson`: the lesson module whose training step, losses and thresholds to
    use (a learner's copy brings its own; common/lessons.py).
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: keras.Model, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32", lesson=None):
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
        self.task = task
        self.lr = lr
        self.loss_fn = keras_losses.make_loss(loss, task, ignore_index, lesson)
        self._train_step = taught("train_step", lesson)
        self._classes = taught("binarize" if task == "binary" else "to_classes", lesson)
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
            taught("compile_model", lesson)(model, self.optimizer, self.loss_fn)   # 01_binarization
        self.tensors = keras_weights.neutral_variables(model)
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
        # gets one batch at a time (the lesson's train_step: train_on_batch).
        with self._scope():
            return float(self._train_step(self.model, self._input(x), y))   # 01_binarization

    def eval_batch(self, x, y):
        """Logits [B,H,W,C] -> numpy NCHW, and the loss; BatchNorm uses its running statistics."""
        with self._scope():
            logits = self.model.predict_on_batch(self._input(x))   # inference mode, no gradients
            loss = self.loss_fn(ops.convert_to_tensor(logits), ops.convert_to_tensor(y))
        return to_nchw(logits), float(ops.convert_to_numpy(loss))

    def classes(self, logits) -> np.ndarray:
        """uint8 [N,H,W] class indices from logits [N,C,H,W] (binarize / to_classes of the lesson,
        which take Keras' NHWC)."""
        nhwc = np.ascontiguousarray(np.asarray(logits).transpose(0, 2, 3, 1))
        with self._scope():
            out = self._classes(ops.convert_to_tensor(nhwc))
        return np.asarray(ops.convert_to_numpy(out)).astype(np.uint8)

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
                    loss = self.loss_fn(self.model(x, training=True), y)
                grads = tape.gradient(loss, variables)
            else:
                loss = self.loss_fn(self.model(x, training=True), y)
                for v in variables:
                    v.value.grad = None                  # v.value is the torch.nn.Parameter
                loss.backward()
                grads = [v.value.grad for v in variables]
                for v in variables:
                    v.value.grad = None
        out = {name: keras_weights.to_neutral(g, self.tensors[name][1])
               for name, g in zip(self.param_names, grads)}
        return float(ops.convert_to_numpy(loss)), out

    def set_lr(self, lr: float):
        """The learning rate of the next steps (--lr-schedule).

        Keras' velocity is u = -lr * v (PyTorch's v): with a new lr it is rescaled by
        new/old, so the next step is PyTorch's p -= lr_new * (mu*v + g), not
        p -= mu*lr_old*v + lr_new*g (what Keras itself does when lr changes)."""
        if lr == self.lr:
            return
        with self._scope():
            for u in self.optimizer.momentums:
                u.assign(u * (lr / self.lr))
            self.optimizer.learning_rate = lr        # assigns Keras' lr variable
        self.lr = lr

    def get_weights(self):
        return keras_weights.get_weights(self.model)

    def set_weights(self, weights):
        with self._scope():
            keras_weights.set_weights(self.model, weights)

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
            out[name] = keras_weights.to_neutral(-u / self.lr, kernel)
        return out

    def set_optimizer_state(self, state):
        if not self.optimizer.momentums:             # --momentum 0: nothing to restore
            return
        with self._scope():
            for u, name in zip(self.optimizer.momentums, self.param_names):
                u.assign(-self.lr * keras_weights.from_neutral(state[name], self.tensors[name][1],
                                                               u.dtype))

    def num_params(self):
        return sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)


def trainer_factory(args, step, build, dtype: str = "float32", lesson=None):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        device = select_device(args.device)
        # variables are created where they will live, in dtype
        with keras.device(device), using_dtype(dtype):
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, device, ignore_index,
                       dtype, lesson)
    return make_trainer
