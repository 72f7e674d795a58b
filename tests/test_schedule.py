"""--lr-schedule: a learning rate that changes between steps is the same computation in the
four frameworks, and survives --resume.

Keras and Chainer keep their momentum as u = -lr * v (PyTorch's v); left alone, a new lr
would make their next step p -= mu*lr_old*v + lr_new*g instead of PyTorch's
p -= lr_new*(mu*v + g). Their set_lr rescales u; these tests fail without that.
Float64, so "the same" means within 1e-9 (the parity tests' float64 tolerance for one
step is 1e-9, and 1e-7 over 20 steps)."""
import numpy as np
import pytest

from common import parity
from common.driver import make_trainer
from common.runner import lr_at
from helpers import require

STEP = "02_multiclass"
LRS = [0.01, 0.004, 0.02, 0.001]        # jumps much larger than a poly decay's, on purpose
FLOAT64_TOLERANCE = 1e-9


def train(framework, lrs, resume_at=None):
    """Weights after one step per lr, from the parity probe's weights and batches."""
    trainer, st = make_trainer(framework, STEP, parity.probe_args(STEP), dtype="float64")
    w0 = parity.random_weights({k: v.shape for k, v in trainer.get_weights().items()})
    batches = parity.inputs(st.task, trainer.layout, n=len(lrs), seed=2)
    trainer.set_weights(w0)
    zeros = {k: np.zeros(np.shape(v)) for k, v in trainer.get_optimizer_state().items()}
    trainer.set_optimizer_state(zeros)
    for i, (lr, (x, y)) in enumerate(zip(lrs, batches)):
        if i == resume_at:        # what --resume does: a new trainer, lr first, then the state
            weights, state = trainer.get_weights(), trainer.get_optimizer_state()
            trainer, _ = make_trainer(framework, STEP, parity.probe_args(STEP), dtype="float64")
            trainer.set_weights(weights)
            trainer.set_lr(lr)
            trainer.set_optimizer_state(state)
        trainer.set_lr(lr)
        trainer.train_step(x.astype(np.float64), y)
    return trainer.get_weights()


def worst(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.fixture(scope="module")
def reference():
    require("pytorch")
    return train("pytorch", LRS)


@pytest.mark.parametrize("framework", ["tensorflow", "keras", "chainer"])
def test_a_changing_learning_rate_is_pytorchs_update(framework, reference):
    require(framework)
    assert worst(train(framework, LRS), reference) < FLOAT64_TOLERANCE
    # the schedule mattered: constant lr ends far away
    assert worst(train(framework, [LRS[0]] * len(LRS)), reference) > 1e3 * FLOAT64_TOLERANCE


@pytest.mark.parametrize("framework", ["pytorch", "keras", "chainer"])
def test_resume_in_the_middle_of_a_schedule(framework, reference):
    require(framework)
    assert worst(train(framework, LRS, resume_at=2), reference) < FLOAT64_TOLERANCE


def test_poly_decays_to_near_zero_and_constant_stays():
    class A:
        lr, iters, dry_run, lr_schedule = 0.01, 100, False, "poly"
    assert lr_at(A, 0) == 0.01
    assert lr_at(A, 50) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert 0 < lr_at(A, 99) < 0.01 * 0.02
    A.lr_schedule = "constant"
    assert lr_at(A, 99) == 0.01
