"""The tests' environment and markers; shared helpers are in helpers.py.

The repository is installed (make setup: `common` editable, the lesson folders
through a .pth file), so nothing here edits sys.path.
"""
import os

import pytest

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
