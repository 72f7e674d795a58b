"""Run one step's network in one framework on fixed inputs and weights; record what parity compares.

Used in-process by test_parity.py, and as a script for Keras on the torch
backend (the backend is chosen once per process, by KERAS_BACKEND):

    KERAS_BACKEND=torch python tests/parity_probe.py keras 06_unet out.npz
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in [REPO] + [REPO / f for f in ("pytorch", "tensorflow", "keras", "chainer")]:
    if str(p) not in sys.path:
        sys.path.append(str(p))

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402

from common.weights import init_weights  # noqa: E402

SIZE, BATCH, TRAJECTORY = 32, 2, 20
# lr 0.001: with random labels, 20 steps at the default 0.01 amplify float32 rounding
# differences ~x2 per step (measured: PyTorch vs TensorFlow and vs Chainer alike), so the
# trajectory would test chaos, not the frameworks. UNet at depth 2 for the same reason: a
# 2x2 bottleneck with batch 2 makes BatchNorm amplify rounding.
PROBE_ARGS = ["--lr", "0.001"]
STEP_ARGS = {"06_unet": ["--depth", "2"]}


def load_step(framework, step):
    name = f"{framework}_{step}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / framework / f"{step}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def make_trainer(framework, step, argv=()):
    mod = load_step(framework, step)
    args = mod.lab.parse_args(mod.__file__, None, list(argv), getattr(mod, "add_arguments", None))
    st = mod.step(args)
    num_outputs = 1 if st.task == "binary" else 3
    return mod.lab.trainer_factory(args, st, lambda n: mod.build(n, args))(num_outputs), st


def random_weights(shapes, seed=1):
    """Initial weights with non-trivial biases and BatchNorm statistics (zeros would hide bugs)."""
    w = init_weights(shapes, seed)
    rng = np.random.default_rng(seed)
    for k, v in sorted(w.items()):   # sorted: the same draws whatever order a framework lists
        leaf = k.rsplit(".", 1)[-1]
        if leaf in ("bias", "beta", "mean"):
            w[k] = (0.1 * rng.standard_normal(v.shape)).astype(np.float32)
        elif leaf == "gamma":
            w[k] = (1 + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
        elif leaf == "var":
            w[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
    return w


def inputs(task, layout, n=1 + TRAJECTORY, seed=2):
    """n batches (x in the framework's layout, y) -- the same numbers for every framework."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.random((BATCH, SIZE, SIZE, 3), dtype=np.float32)
        y = rng.integers(0, 2 if task == "binary" else 3, (BATCH, SIZE, SIZE)).astype(np.int32)
        out.append((np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x, y))
    return out


def probe(framework, step, argv=None) -> dict:
    if argv is None:
        argv = PROBE_ARGS + STEP_ARGS.get(step, [])
    trainer, st = make_trainer(framework, step, argv)
    shapes = {k: v.shape for k, v in trainer.get_weights().items()}
    w0 = random_weights(shapes)
    batches = inputs(st.task, trainer.layout)
    x, y = batches[0]
    zeros = {k: np.zeros(v, np.float32) for k, v in shapes.items()}
    res = {"params": np.array(trainer.num_params())}
    for k, s in shapes.items():
        res[f"shape/{k}"] = np.array(s)

    trainer.set_weights(w0)
    res["logits_eval"] = trainer.forward(x, training=False)
    res["logits_train"] = trainer.forward(x, training=True)
    trainer.set_weights(w0)
    loss, grads = trainer.loss_and_gradients(x, y)
    res["loss"] = np.array(loss)
    res.update({f"grad/{k}": v for k, v in grads.items()})

    trainer.set_weights(w0)
    trainer.set_optimizer_state({k: v for k, v in zeros.items() if k in grads})
    res["step_loss"] = np.array(trainer.train_step(x, y))
    res.update({f"after/{k}": v for k, v in trainer.get_weights().items()})
    res.update({f"opt/{k}": v for k, v in trainer.get_optimizer_state().items()})
    res["trajectory"] = np.array([trainer.train_step(bx, by) for bx, by in batches[1:]])
    return res


if __name__ == "__main__":
    framework, step, out = sys.argv[1:4]
    np.savez(out, **probe(framework, step, sys.argv[4:] or None))
