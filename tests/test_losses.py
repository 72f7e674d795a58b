"""Segmentation losses (issue #7): the NumPy reference, and every framework against it.

1. common/losses.py on tiny examples worked out by hand (a broken formula,
   averaging or ignore rule changes these numbers), and its edge cases.
2. PyTorch float64 autograd = central differences of the reference: this
   ties the reference's values to a gradient that the frameworks can be held to.
3. Every framework's make_loss (PyTorch, TensorFlow inside tf.function, Keras
   on both backends, Chainer), float32, on random and edge-case batches, binary
   and multiclass: loss within 1e-5 of the reference, gradient with respect
   to the logits within 1e-6 of PyTorch float64 autograd (gradients here are
   about 1e-2; each is a mean over 72 pixels).
4. The plumbing: Keras train_on_batch with every loss, each framework's
   Trainer with a non-ce loss, and the runner's test_loss over a whole split.

Keras on the torch backend runs in one subprocess (the backend is fixed per
process): `python tests/test_losses.py keras-torch OUT.npz` writes its results.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if __name__ == "__main__":   # the keras-torch subprocess
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
else:
    from helpers import require, run_step

from common import losses as ref

REPO_DIR = Path(__file__).resolve().parents[1]

NAMES = ref.NAMES
IGNORE = 255
LOSS_ATOL = 1e-5      # every framework's loss vs the float64 reference
GRAD_ATOL = 1e-6      # every framework's d loss / d logits vs PyTorch float64 autograd
FRAMEWORKS = ("pytorch", "tensorflow", "keras", "chainer", "keras-torch")


# ------------------------------------------------------------------ cases
def _hand_binary():
    """2 pixels: z = 0 (p = 1/2, truth 1) and z = ln 3 (p = 3/4, truth 0)."""
    return np.array([0.0, np.log(3.0)], np.float32).reshape(1, 1, 1, 2), np.array([[[1, 0]]], np.int32)


def _hand_multiclass():
    """3 pixels, 3 classes: uniform logits (truth 0); (ln 2, 0, 0) -> p = (1/2, 1/4, 1/4)
    (truth 1); a third pixel that is ignored. Class 2 is absent."""
    z = np.array([[0, 0, 0], [np.log(2.0), 0, 0], [5, -3, 1]], np.float32).T.reshape(1, 3, 1, 3)
    return z, np.array([[[0, 1, IGNORE]]], np.int32)


# The values worked out by hand, with p_t the probability of the true class.
HAND = {
    "binary": {
        "ce": (np.log(2) + np.log(4)) / 2,                           # -log 1/2, -log 1/4
        "focal": ((1 / 2) ** 2 * np.log(2) + (3 / 4) ** 2 * np.log(4)) / 2,
        "dice": 1 - 2 * 0.5 / (1.25 + 1),                            # I = 1/2, P = 5/4, T = 1
        "jaccard": 1 - 0.5 / (1.25 + 1 - 0.5),
        "ce+dice": 0.5 * (1 - 1 / 2.25) + 0.5 * (np.log(2) + np.log(4)) / 2,
    },
    "multiclass": {   # class 0: I = 1/3, P = 5/6, T = 1; class 1: I = 1/4, P = 7/12, T = 1
        "ce": (np.log(3) + np.log(4)) / 2,
        "focal": ((2 / 3) ** 2 * np.log(3) + (3 / 4) ** 2 * np.log(4)) / 2,
        "dice": ((1 - 4 / 11) + (1 - 6 / 19)) / 2,                   # mean over the 2 present classes
        "jaccard": ((1 - 2 / 9) + (1 - 3 / 16)) / 2,
        "ce+dice": 0.5 * ((1 - 4 / 11) + (1 - 6 / 19)) / 2 + 0.5 * (np.log(3) + np.log(4)) / 2,
    },
}


def make_cases():
    """name -> (task, logits NCHW float32, labels int32 [B,H,W], ignore_index). Seeded."""
    rng = np.random.default_rng(7)
    shape = (2, 6, 6)
    cases = {"binary/hand": ("binary", *_hand_binary(), None),
             "multiclass/hand": ("multiclass", *_hand_multiclass(), IGNORE)}
    for task, c in (("binary", 1), ("multiclass", 3)):
        k = 2 if task == "binary" else c
        z = (2 * rng.standard_normal((shape[0], c) + shape[1:])).astype(np.float32)
        y = rng.integers(0, k, shape).astype(np.int32)
        with_ignored = np.where(rng.random(shape) < 0.25, IGNORE, y).astype(np.int32)
        cases[f"{task}/random"] = (task, z, y, None)                 # no ignore_index at all
        cases[f"{task}/ignore"] = (task, z, with_ignored, IGNORE)
        cases[f"{task}/all-ignored"] = (task, z, np.full(shape, IGNORE, np.int32), IGNORE)
        cases[f"{task}/confident"] = (task, 8 * z, with_ignored, IGNORE)   # saturated p
        cases[f"{task}/empty"] = (task, z, np.zeros(shape, np.int32), IGNORE)   # background only
    absent = np.where(rng.random(shape) < 0.2, IGNORE, rng.integers(0, 2, shape)).astype(np.int32)
    cases["multiclass/class-2-absent"] = ("multiclass", cases["multiclass/random"][1], absent, IGNORE)
    cases["binary/full"] = ("binary", cases["binary/random"][1], np.ones(shape, np.int32), IGNORE)
    return cases


CASES = make_cases()


# ---------------------------------------------------- framework harnesses
# Each returns (loss, d loss / d logits as NCHW float64) for one loss on one case.
def torch_loss_and_grad(name, task, z, y, ignore, dtype=None):
    import torch
    import torch_losses
    zt = torch.tensor(z, dtype=dtype or torch.float32, requires_grad=True)
    loss = torch_losses.make_loss(name, task, ignore)(zt, torch.from_numpy(y))
    loss.backward()
    return float(loss.detach()), zt.grad.numpy().astype(np.float64)


_TF_GRAPHS = {}


def tensorflow_loss_and_grad(name, task, z, y, ignore):
    """Inside tf.function, traced once per (loss, task, ignore_index) like the Trainer's step."""
    import tensorflow as tf
    import tf_losses
    key = (name, task, ignore, z.shape[1])
    if key not in _TF_GRAPHS:
        fn = tf_losses.make_loss(name, task, ignore)

        # the class axis is static, as a network's output is; the rest is not
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, z.shape[1]], tf.float32),
                                      tf.TensorSpec([None, None, None], tf.int32)])
        def graph(logits, labels):
            with tf.GradientTape() as tape:
                tape.watch(logits)
                loss = fn(logits, labels)
            return loss, tape.gradient(loss, logits)
        _TF_GRAPHS[key] = graph
    loss, grad = _TF_GRAPHS[key](tf.constant(z.transpose(0, 2, 3, 1)), tf.constant(y))
    return float(loss), grad.numpy().transpose(0, 3, 1, 2).astype(np.float64)


def keras_loss_and_grad(name, task, z, y, ignore):
    """Labels as float32, as Keras' compiled loss passes them; either backend."""
    import keras_setup  # noqa: F401  (first: the Keras backend)
    import keras_losses
    import keras_trainer
    from keras import ops
    fn = keras_losses.make_loss(name, task, ignore)
    logits, labels = z.transpose(0, 2, 3, 1).copy(), y.astype(np.float32)
    if keras_trainer.BACKEND == "tensorflow":
        import tensorflow as tf
        zt = tf.constant(logits)
        with tf.GradientTape() as tape:
            tape.watch(zt)
            loss = fn(zt, ops.convert_to_tensor(labels))
        grad = tape.gradient(loss, zt).numpy()
    else:
        import torch
        zt = torch.tensor(logits, requires_grad=True)
        loss = fn(zt, ops.convert_to_tensor(labels))
        loss.backward()
        grad = zt.grad.numpy()
    return float(ops.convert_to_numpy(loss)), grad.transpose(0, 3, 1, 2).astype(np.float64)


def chainer_loss_and_grad(name, task, z, y, ignore):
    import chainer_losses   # first: it makes Chainer importable on NumPy 2 (chainer_compat)
    import chainer
    zv = chainer.Variable(z.copy())
    loss = chainer_losses.make_loss(name, task, ignore)(zv, y.copy())
    loss.backward()
    grad = np.zeros_like(z) if zv.grad is None else zv.grad
    return float(loss.array), grad.astype(np.float64)


HARNESS = {"pytorch": torch_loss_and_grad, "tensorflow": tensorflow_loss_and_grad,
           "keras": keras_loss_and_grad, "chainer": chainer_loss_and_grad}


def all_results(framework):
    """{(case, loss): (loss value, gradient)} for every case and loss."""
    fn = HARNESS[framework]
    return {(case, name): fn(name, task, z, y, ignore)
            for case, (task, z, y, ignore) in CASES.items() for name in NAMES}


# ----------------------------------------------------------- 1. reference
@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("name", NAMES)
def test_reference_hand_computed(task, name):
    _, z, y, ignore = CASES[f"{task}/hand"]
    # 1e-7: the logits ln 2, ln 3 are rounded to float32 (a wrong formula is off by > 1e-2)
    assert ref.loss(name, z, y, task, ignore) == pytest.approx(HAND[task][name], abs=1e-7)


def test_reference_choices():
    """The documented constants, and what they imply."""
    assert (ref.EPS, ref.FOCAL_GAMMA, ref.CE_DICE_WEIGHT) == (1e-7, 2.0, 0.5)
    for case, (task, z, y, ignore) in CASES.items():
        # focal with gamma = 0 is cross-entropy
        assert ref.focal_loss(z, y, task, ignore, gamma=0) == pytest.approx(
            ref.cross_entropy(z, y, task, ignore), rel=1e-12), case
        # dice = 2 iou / (1 + iou) per class, so dice loss <= jaccard loss
        assert ref.dice_loss(z, y, task, ignore) <= ref.jaccard_loss(z, y, task, ignore) + 1e-12
    # the region losses reach 0 on a perfect, confident prediction
    y = CASES["multiclass/ignore"][2]
    perfect = 60.0 * (np.arange(3)[None, :, None, None] == y[:, None]).astype(np.float32)
    for name in ("dice", "jaccard"):
        assert ref.loss(name, perfect, y, "multiclass", IGNORE) < 1e-12


def test_reference_edge_cases():
    for task in ("binary", "multiclass"):
        _, z, y, _ = CASES[f"{task}/all-ignored"]
        for name in NAMES:   # nothing labelled: 0, not NaN
            assert ref.loss(name, z, y, task, IGNORE) == 0.0
    _, z, y, _ = CASES["binary/empty"]          # no foreground: dice and jaccard have nothing to score
    assert ref.dice_loss(z, y, "binary", IGNORE) == ref.jaccard_loss(z, y, "binary", IGNORE) == 0.0
    assert ref.loss("ce+dice", z, y, "binary", IGNORE) == pytest.approx(
        0.5 * ref.cross_entropy(z, y, "binary", IGNORE))
    # an absent class is left out of the mean (not counted as 0: SMP divides by all C)
    _, z, y, _ = CASES["multiclass/class-2-absent"]
    s = ref.statistics(z, y, "multiclass", IGNORE)
    assert s["true"][2] == 0 and s["predicted"][2] > 1
    per_class = 1 - 2 * s["intersection"][:2] / (s["predicted"][:2] + s["true"][:2])
    assert ref.dice_loss(z, y, "multiclass", IGNORE) == pytest.approx(per_class.mean())
    # ignored pixels change nothing, whatever their logits
    task, z, y, _ = CASES["multiclass/ignore"]
    noisy = np.where((y == IGNORE)[:, None], 1e3 * np.sign(z), z)
    for name in NAMES:
        assert ref.loss(name, noisy, y, task, IGNORE) == pytest.approx(ref.loss(name, z, y, task, IGNORE))
    with pytest.raises(ValueError, match="labels must be"):
        ref.loss("ce", z, y, task, None)    # 255 is a class index when nothing is ignored


def test_reference_statistics_add_up_over_batches():
    """A split's loss from summed per-batch statistics = the loss of one big batch."""
    task, z, y, ignore = CASES["multiclass/ignore"]
    parts = [ref.statistics(z[i:i + 1], y[i:i + 1], task, ignore) for i in range(len(z))]
    total = ref.add_statistics(*parts)
    for name in NAMES:
        assert ref.from_statistics(name, total) == pytest.approx(ref.loss(name, z, y, task, ignore))
    # and differs from the mean of the per-image region losses
    per_image = np.mean([ref.from_statistics("dice", p) for p in parts])
    assert abs(per_image - ref.loss("dice", z, y, task, ignore)) > 1e-3


# ------------------------------------- 2. gradients: autograd = differences
@pytest.mark.parametrize("case", ["binary/hand", "binary/ignore", "binary/empty", "binary/full",
                                  "multiclass/hand", "multiclass/ignore", "multiclass/class-2-absent",
                                  "multiclass/all-ignored"])
def test_torch_float64_gradient_is_the_reference_derivative(case):
    """Central differences of the NumPy reference (float64, h = 1e-6) = PyTorch float64 autograd."""
    require("pytorch")
    import torch
    task, z, y, ignore = CASES[case]
    z = z.astype(np.float64)
    for name in NAMES:
        value, grad = torch_loss_and_grad(name, task, z, y, ignore, dtype=torch.float64)
        assert value == pytest.approx(ref.loss(name, z, y, task, ignore), abs=1e-12), name
        numeric = np.zeros_like(z)
        h = 1e-6
        for idx in np.ndindex(z.shape):
            up, down = z.copy(), z.copy()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (ref.loss(name, up, y, task, ignore) - ref.loss(name, down, y, task, ignore)) / (2 * h)
        assert np.max(np.abs(numeric - grad)) < 1e-8, (name, np.max(np.abs(numeric - grad)))
        if case.endswith("all-ignored"):
            assert not grad.any(), name


# ---------------------------------------------- 3. every framework, float32
@pytest.fixture(scope="module")
def torch64():
    """PyTorch float64 autograd: the gradient every float32 framework is compared with."""
    require("pytorch")
    import torch
    return {(case, name): torch_loss_and_grad(name, task, z, y, ignore, dtype=torch.float64)
            for case, (task, z, y, ignore) in CASES.items() for name in NAMES}


_KERAS_TORCH = {}


def keras_torch_results():
    """Everything the keras-torch tests check, from one subprocess (run once)."""
    require("keras")
    require("pytorch")
    if not _KERAS_TORCH:
        out = Path(f"/tmp/losses-keras-torch-{os.getpid()}.npz")
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        r = subprocess.run([sys.executable, __file__, "keras-torch", str(out)], env=env,
                           cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        with np.load(out) as f:
            _KERAS_TORCH.update(f)
        out.unlink()
    return _KERAS_TORCH


def _unpack(data):
    res = {}
    for case in CASES:
        for name in NAMES:
            key = f"{case}|{name}"
            res[(case, name)] = (float(data[key + "|loss"]), data[key + "|grad"])
    return res


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.xdist_group(f.split("-")[0]))
                                       for f in FRAMEWORKS])
def test_framework_equals_reference(framework, torch64):
    if framework == "keras-torch":
        data = keras_torch_results()
        got = _unpack(data)
        assert str(data["backend"]) == "torch"
    else:
        require(framework)
        got = all_results(framework)
    loss_diff = grad_diff = 0.0
    for (case, name), (value, grad) in got.items():
        task, z, y, ignore = CASES[case]
        expected = ref.loss(name, z, y, task, ignore)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), (case, name)
        assert abs(value - expected) <= LOSS_ATOL, (case, name, value, expected)
        g64 = torch64[(case, name)][1]
        diff = float(np.max(np.abs(grad - g64)))
        assert diff <= GRAD_ATOL, (case, name, diff)
        if case.endswith("all-ignored"):
            assert value == 0.0 and not np.any(grad), (case, name)
        loss_diff, grad_diff = max(loss_diff, abs(value - expected)), max(grad_diff, diff)
    print(f"\n{framework}: max |loss - reference| {loss_diff:.2e}, "
          f"max |grad - torch float64| {grad_diff:.2e} over {len(got)} (case, loss) pairs")


# ------------------------------------------------------------ 4. plumbing
def keras_train_on_batch():
    """Each loss compiled into a 1x1-conv Keras model by the lesson's compile_model
    (keras/01_binarization.py, Q1.5: Keras passes (y_true, y_pred), our losses take
    (logits, y)): train_on_batch's loss (computed before the update) = the reference on
    the model's logits; the weights move."""
    import keras_setup  # noqa: F401  (first: the Keras backend)
    import keras
    import keras_losses
    from common import lessons
    compile_model = lessons.answer("keras", "01_binarization").compile_model
    out = {}
    for task, c in (("binary", 1), ("multiclass", 3)):
        _, z, y, _ = CASES[f"{task}/ignore"]
        rng = np.random.default_rng(3)
        x = rng.random((len(y), y.shape[1], y.shape[2], 3), dtype=np.float32)
        for name in NAMES:
            inp = keras.Input((y.shape[1], y.shape[2], 3))
            model = keras.Model(inp, keras.layers.Conv2D(c, 1, name="head")(inp))
            compile_model(model, keras.optimizers.SGD(learning_rate=0.1),
                          keras_losses.make_loss(name, task, IGNORE))
            logits = np.asarray(model.predict_on_batch(x)).transpose(0, 3, 1, 2)
            before = np.array(keras.ops.convert_to_numpy(model.layers[-1].kernel))
            got = float(model.train_on_batch(x, y))
            after = np.array(keras.ops.convert_to_numpy(model.layers[-1].kernel))
            out[f"tob|{task}|{name}"] = np.array(
                [got, ref.loss(name, logits, y, task, IGNORE), np.abs(after - before).max()])
    return out


def check_train_on_batch(results):
    for key, (got, expected, moved) in results.items():
        assert abs(got - expected) <= LOSS_ATOL, (key, got, expected)
        assert moved > 0, f"{key}: train_on_batch did not change the weights"


@pytest.mark.xdist_group("keras")
def test_keras_train_on_batch_tensorflow_backend():
    require("keras")
    import keras_trainer
    assert keras_trainer.BACKEND == "tensorflow"
    check_train_on_batch(keras_train_on_batch())


@pytest.mark.xdist_group("keras")
def test_keras_train_on_batch_torch_backend():
    results = {k: v for k, v in keras_torch_results().items() if k.startswith("tob|")}
    assert len(results) == 2 * len(NAMES)
    check_train_on_batch(results)


TRAINER_CASES = [("01_binarization", "ce+dice"), ("02_multiclass", "jaccard"),
                 ("02_multiclass", "focal")]


def trainer_step_losses(framework):
    """For each (step, loss): the Trainer's train_step loss and the reference on the same
    training-mode logits (BatchNorm on batch statistics, so both see the same numbers)."""
    from common.driver import make_trainer
    rows = []
    for step, name in TRAINER_CASES:
        label = "keras" if framework.startswith("keras") else framework
        trainer, st = make_trainer(label, step, ["--loss", name], IGNORE)
        rng = np.random.default_rng(5)
        x = rng.random((2, 16, 16, 3), dtype=np.float32)
        y = rng.integers(0, 2 if st.task == "binary" else 3, (2, 16, 16)).astype(np.int32)
        y[rng.random(y.shape) < 0.2] = IGNORE
        if trainer.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        w0 = trainer.get_weights()
        logits = trainer.forward(x, training=True)
        trainer.set_weights(w0)
        got = trainer.train_step(x, y)
        rows.append((step, name, got, ref.loss(name, logits, y, st.task, IGNORE)))
    return rows


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.xdist_group(f))
                                       for f in ("pytorch", "tensorflow", "keras", "chainer")])
def test_trainer_trains_with_the_chosen_loss(framework):
    require(framework)
    for step, name, got, expected in trainer_step_losses(framework):
        assert abs(got - expected) <= 1e-4 * max(1.0, abs(expected)), (framework, step, name)


@pytest.mark.xdist_group("keras")
def test_trainer_trains_with_the_chosen_loss_keras_torch():
    data = keras_torch_results()
    rows = [k for k in data if k.startswith("trainer|")]
    assert len(rows) == len(TRAINER_CASES)
    for k in rows:
        got, expected = data[k]
        assert abs(got - expected) <= 1e-4 * max(1.0, abs(expected)), k


class _FixedTrainer:
    """eval_batch returns precomputed logits: tests the runner's test_loss alone."""
    layout = "NCHW"

    def __init__(self, logits):
        self.logits, self.at = logits, 0

    def eval_batch(self, x, y):
        out = self.logits[self.at:self.at + len(x)]
        self.at += len(x)
        return out, float("nan")

    def classes(self, logits):
        return logits.argmax(axis=1).astype(np.uint8)


@pytest.mark.parametrize("name", NAMES)
def test_runner_test_loss_is_the_chosen_loss_over_the_split(name):
    from common import runner
    rng = np.random.default_rng(11)
    logits = (2 * rng.standard_normal((5, 3, 8, 8))).astype(np.float32)
    y = rng.integers(0, 3, (5, 8, 8)).astype(np.int32)
    y[rng.random(y.shape) < 0.2] = IGNORE
    images = np.zeros((5, 8, 8, 3), np.float32)
    _, _, _, test_loss = runner.predict(_FixedTrainer(logits), images, y, "multiclass", batch=2,
                                        ignore_index=IGNORE, loss=name)
    assert test_loss == pytest.approx(ref.loss(name, logits, y, "multiclass", IGNORE), rel=1e-9)


@pytest.mark.xdist_group("pytorch")
def test_step_script_records_the_loss(tmp_path):
    """A real dry run: metrics.json keeps its keys and adds the loss's definition."""
    require("pytorch")
    run_step("pytorch", "01_binarization", 
        ["--dry-run", "--size", "16", "--loss", "focal", "--out", str(tmp_path)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["loss"] == "focal" and m["options"]["loss"] == "focal"
    assert m["loss_definition"]["gamma"] == 2.0 and m["loss_definition"]["alpha"] is None
    assert np.isfinite(m["test_loss"]) and np.isfinite(m["final_loss"])


def test_compare_losses_report(tmp_path):
    """compare_losses.py reuses finished runs and writes its table and figures
    (fabricated runs: no training here)."""
    from helpers import script
    compare_losses = script("tools/compare_losses.py")
    from common import synth
    from common.weights import save_npz
    classes = ["background", "akahara", "madara"]
    for i, name in enumerate(("ce", "dice")):
        for seed in (0, 1):
            out = tmp_path / "pytorch" / name / f"seed{seed}"
            out.mkdir(parents=True)
            iou = 0.5 + 0.1 * i + 0.1 * seed
            m = {"classes": classes, "per_class_iou": {c: iou for c in classes},
                 "mean_iou": iou, "pixel_accuracy": 0.9, "train_images": 8, "test_images": 2,
                 "options": {"loss": name, "iters": 7, "seed": seed, "size": 16, "batch_size": 4,
                             "lr": 0.01, "dry_run": False, "init_from": None,
                             "data": "None", "synth_version": synth.VERSION}}
            (out / "metrics.json").write_text(json.dumps(m))
            save_npz(out / "predictions.npz", {"pred": np.zeros((2, 16, 16), np.uint8)})
            if seed == 0:   # the --noise-floor run: seed 0's start perturbed, 0.02 / 0.03 off
                out = tmp_path / "pytorch" / name / "perturbed"
                out.mkdir(parents=True)
                m = {**m, "mean_iou": iou + 0.02 + 0.01 * i,
                     "options": {**m["options"], "perturb_init": 1e-7}}
                (out / "metrics.json").write_text(json.dumps(m))
    figure = tmp_path / "assets" / "losses.png"
    compare_losses.main(["--losses", "ce,dice", "--seeds", "0,1", "--iters", "7", "--noise-floor",
                         "--out", str(tmp_path), "--figure", str(figure)])
    table = (tmp_path / "report.md").read_text()
    assert ("| `dice` | 0.6500 | 0.6500 | 0.6500 | 0.650 ± 0.071 | 0.60 / 0.70 | 0.030 | 0.9000 |"
            in table), table
    assert "Noise floor" in table and ": 0.030." in table
    # lead 0.1: above the floor, but 2 standard errors of two seeds are 0.141
    assert "within noise (2 standard errors 0.141)" in table and "**" not in table.split("\n\n")[1]
    assert figure.is_file() and (tmp_path / "predictions.png").is_file()
    with pytest.raises(SystemExit):
        compare_losses.main(["--losses", "ce,tversky", "--out", str(tmp_path)])


# ----------------------------------------------- the keras-torch subprocess
if __name__ == "__main__":
    import keras_trainer
    results = {"backend": np.array(keras_trainer.BACKEND)}
    for (case, name), (value, grad) in all_results("keras").items():
        results[f"{case}|{name}|loss"] = np.array(value)
        results[f"{case}|{name}|grad"] = grad
    results.update(keras_train_on_batch())
    for step, name, got, expected in trainer_step_losses("keras-torch"):
        results[f"trainer|{step}|{name}"] = np.array([got, expected])
    np.savez(sys.argv[2], **results)
