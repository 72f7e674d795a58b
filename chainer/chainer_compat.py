"""Make Chainer 7.8.1 (its last release, 2022) import on current NumPy.

Import this module before chainer; every lesson here does (right after
common.ctrl_c), and so do chainer_layers, chainer_losses, chainer_weights and
chainer_trainer. Three fixes, each measured on NumPy 2.4 and 1.26:

1. Install time (not here): chainer's setup.py imports pkg_resources, which
   setuptools >= 81 no longer has. requirements/constraints.txt pins
   setuptools < 81 and the Makefile passes it as PIP_CONSTRAINT, which also
   reaches pip's isolated build environment.
2. chainer uses ``numpy.float`` (removed in NumPy 1.24) and ``numpy.sctypes``
   (removed in 2.0). We restore both names, with their old meanings.
3. ``import chainer`` runs ``chainer._environment_check``, which imports
   ``numpy.distutils`` (gone in NumPy 2 and Python 3.12) and pkg_resources.
   The check only prints advice; we register an empty module in its place.

Nothing else in chainer is changed.
"""
import sys
import types

import numpy as np

if not hasattr(np, "float"):
    np.float = float   # what numpy.float always was: an alias of the builtin
if not hasattr(np, "sctypes"):
    np.sctypes = {   # NumPy 1.x's table, as chainer reads it
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64, np.longdouble],
        "complex": [np.complex64, np.complex128, np.clongdouble],
        "others": [bool, object, bytes, str, np.void],
    }

if "chainer" not in sys.modules:
    _check = types.ModuleType("chainer._environment_check")
    _check.check = lambda: None
    sys.modules[_check.__name__] = _check

import chainer  # noqa: E402,F401  (imported here so `import chainer_compat` is enough)
