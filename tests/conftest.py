"""Shared test helpers.

The repo root and the framework folders are APPENDED to sys.path (never
prepended): tensorflow/, keras/ and chainer/ in the repo must not shadow the
installed packages. Frameworks are detected with importlib.metadata.
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("pytorch", "tensorflow", "keras", "chainer")
for p in [REPO] + [REPO / f for f in FOLDERS]:
    if str(p) not in sys.path:
        sys.path.append(str(p))

# One thread per test process: pytest runs two workers (pytest.ini) on the two cores, and
# a worker loads several frameworks, each with its own thread pool. With their default
# threads they contend: a PyTorch training step of step 1 took 1017 ms with TensorFlow
# loaded in the same process, 132 ms with one thread each (measured 2026-11-21, machine
# busy). Set before any framework is imported; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from common import steps  # noqa: E402
from common.frameworks import installed  # noqa: E402

STEPS = ("01_binarization", "02_multiclass", "03_nearest", "04_transposed_conv", "05_concat",
         "06_unet", "07_fcn8s", "08_segnet", "09_deeplabv3plus")
SHARED_DATA = REPO.parent / "shared" / "datasets" / "imori-train"


def require(framework):
    if not installed(framework):
        pytest.skip(f"{framework} is not installed")


def load_step(framework: str, step: str):
    """Import <framework>/<step>.py as a module (file names start with digits)."""
    require(framework)
    return steps.load_step(framework, step)


# TensorFlow runs its CPU kernels from oneDNN or from its own (Eigen) code: on by default only
# on some processors (AVX-512 VNNI/BF16, AMX), off on most laptops, chosen by the environment
# variable TF_ENABLE_ONEDNN_OPTS. The two have different kernels (without oneDNN, a dilated
# tf.nn.conv2d has no filter gradient) and round differently. `make test` runs the whole suite
# with one setting and the tests marked here again with the other (Makefile).
TF_KERNEL_FILES = ("test_parity.py", "test_steps.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(item, "callspec", None)
        framework = params.params.get("framework") if params else None
        if item.path.name in TF_KERNEL_FILES and framework in ("tensorflow", "keras"):
            item.add_marker(pytest.mark.tf_kernels)
