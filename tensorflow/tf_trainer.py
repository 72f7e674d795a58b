"""The TensorFlow Trainer that common/runner.py drives, the optimizer, and the device choice.

One SGD step (the lesson's train_step, taught in 01_binarization, run as a
graph), evaluation with BatchNorm in inference mode, the class of every
pixel (binarize, 01; to_classes, 02), and weights and optimizer state in and
out as neutral arrays. Layout: NHWC inside; logits leave as NCHW numpy, the
layout the runner expects.

The training step runs as a graph (tf.function), traced once; eager
execution gives the same numbers about three times slower here.
"""
import numpy as np
import tensorflow as tf

import tf_layers
import tf_losses
import tf_weights
from common import lessons
from common.errors import UserError

FRAMEWORK = "tensorflow"
LAYOUT = "NHWC"


def out_label() -> str:
    """Folder under runs/ and the name in reports."""
    return FRAMEWORK


def seed(n: int):
    tf.random.set_seed(n)   # only the placeholder initial values draw from it


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


class SGD:
    """SGD with momentum in PyTorch's form (v = mu*v + g; p -= lr*v), with the interface of
    TensorFlow's optimizers: apply_gradients(zip(gradients, variables)).

    Not tf.keras.optimizers.SGD: this column uses no Keras, and Keras keeps its
    momentum in another form (v = mu*v - lr*g; p += v), which rounds otherwise
    and whose v is not the neutral optimizer state. One momentum buffer per
    variable, created here, eagerly (a tf.function cannot create variables).
    """

    def __init__(self, variables, lr: float, momentum: float):
        # lr a variable, so a traced step reads the current value (--lr-schedule)
        self.lr = tf.Variable(lr, dtype=variables[0].dtype if variables else tf.float32,
                              trainable=False)
        self.momentum = momentum
        self.velocity = {v.ref(): tf.Variable(tf.zeros_like(v), trainable=False)
                         for v in variables}

    def apply_gradients(self, grads_and_vars):
        for g, p in grads_and_vars:
            v = self.velocity[p.ref()]
            v.assign(self.momentum * v + g)     # PyTorch's form of momentum SGD
            p.assign_sub(self.lr * v)


class Trainer:
    """What common/runner.py drives: one SGD step, evaluation, weights in/out.

    `lesson`: the lesson module whose train_step, losses and thresholds to use
    (a learner's copy brings its own; common/lessons.py).
    """
    framework = FRAMEWORK
    layout = LAYOUT

    def __init__(self, model: tf_layers.Module, task: str, loss: str = "ce", lr: float = 0.01,
                 momentum: float = 0.9, device: str = "cpu", ignore_index=None,
                 dtype: str = "float32", lesson=None):
        self.device_name = select_device(device)
        self.dtype = dtype     # the model's variables must have been built in it (with_floatx)
        self.tf_dtype = tf.as_dtype(dtype)
        self.task = task
        self.model = model
        self.loss_fn = tf_losses.make_loss(loss, task, ignore_index, lesson)
        self.lr, self.momentum = lr, momentum
        self._lesson_step = lessons.taught(FRAMEWORK, "train_step", lesson)
        self._classes = lessons.taught(FRAMEWORK, "binarize" if task == "binary" else "to_classes",
                                       lesson)
        # (neutral name, variable) of every trainable parameter, in definition order
        self.params = [(k, v) for k, v in model.named_variables() if v.trainable]
        # SGD momentum buffers, one per trainable variable, in its TF layout
        with tf.device(self.device_name):
            self.opt = SGD([v for _, v in self.params], lr, momentum)
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
        with tf.device(self.device_name):
            return self._lesson_step(self.model, self.opt, self.loss_fn, x, y)   # 01_binarization

    def _eval_batch(self, x, y):
        with tf.device(self.device_name):
            logits = self.model(x, training=False)   # BatchNorm uses its running statistics
            return logits, self.loss_fn(logits, y)

    # --- the interface
    def _input(self, x):
        return tf.constant(np.asarray(x, self.dtype))

    def train_step(self, x, y) -> float:
        return float(self._train_step(self._input(x), y))

    def set_lr(self, lr: float):
        """The learning rate of the next steps (--lr-schedule); the momentum buffer is kept."""
        self.lr = lr
        self.opt.lr.assign(lr)

    def eval_batch(self, x, y):
        logits, loss = self._eval(self._input(x), y)
        return to_nchw(logits), float(loss)

    def classes(self, logits) -> np.ndarray:
        """uint8 [N,H,W] class indices from logits [N,C,H,W] (binarize / to_classes of the lesson,
        which take TensorFlow's NHWC)."""
        nhwc = np.ascontiguousarray(np.asarray(logits).transpose(0, 2, 3, 1))
        with tf.device(self.device_name):
            return np.asarray(self._classes(tf.constant(nhwc))).astype(np.uint8)

    def forward(self, x, training: bool):
        """Logits (numpy, NCHW). training=True: batch statistics (running ones get updated)."""
        with tf.device(self.device_name):
            return to_nchw(self.model(self._input(x), training=training))

    def loss_and_gradients(self, x, y):
        """Loss and d loss / d parameter (neutral names and layouts), training mode, no update."""
        loss, grads = self._gradients(self._input(x), y)
        return float(loss), {k: tf_weights.to_neutral(g) for (k, _), g in zip(self.params, grads)}

    def get_weights(self):
        return tf_weights.get_weights(self.model)

    def set_weights(self, weights):
        tf_weights.set_weights(self.model, weights)

    def get_optimizer_state(self):
        """Momentum buffer v per parameter (PyTorch form: v = mu*v + g; p -= lr*v)."""
        return {k: tf_weights.to_neutral(self.opt.velocity[p.ref()].numpy())
                for k, p in self.params}

    def set_optimizer_state(self, state):
        for k, p in self.params:
            v = self.opt.velocity[p.ref()]
            v.assign(tf_weights.from_neutral(state[k], v.dtype.as_numpy_dtype))

    def num_params(self):
        return sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)


def to_nchw(logits) -> np.ndarray:
    """[B, H, W, C] tensor -> [B, C, H, W] numpy, the layout the runner expects for logits."""
    return np.ascontiguousarray(np.asarray(logits).transpose(0, 3, 1, 2))


def trainer_factory(args, step, build, dtype: str = "float32", lesson=None):
    """make_trainer(num_outputs, ignore_index) for common.runner.run (dtype float64: parity tests)."""
    def make_trainer(num_outputs, ignore_index=None):
        # the variables on the device, in dtype
        with tf.device(select_device(args.device)), tf_layers.with_floatx(dtype):
            model = build(num_outputs)
        return Trainer(model, step.task, args.loss, args.lr, args.momentum, args.device,
                       ignore_index, dtype, lesson)
    return make_trainer
