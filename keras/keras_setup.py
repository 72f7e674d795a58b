"""Imported before `import keras` by every module and lesson in keras/: the Keras backend.

Keras 3 runs on several backends; this suite supports two:

    python keras/06_unet.py                      # KERAS_BACKEND, else tensorflow
    python keras/06_unet.py --backend torch      # outputs go to runs/keras-torch/

A backend is chosen once per process, when Keras is first imported, so this
module reads --backend from the command line (sys.argv) and sets
KERAS_BACKEND; every module and lesson of this folder imports it before
keras (`import keras_setup  # noqa: F401`). It does not import Keras itself.
The flag is declared, and checked against the backend Keras really runs on,
in keras_trainer (add_arguments, check_args).
"""
import os
import sys

BACKENDS = ("tensorflow", "torch")


def backend_in_argv(argv):
    """The value of --backend in argv (`--backend torch` or `--backend=torch`), else None."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


_backend = backend_in_argv(sys.argv[1:])
if _backend in BACKENDS:              # anything else: argparse rejects it later, with the choices
    os.environ["KERAS_BACKEND"] = _backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # hide TensorFlow's start-up log lines
