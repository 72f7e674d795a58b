"""Keras on the torch backend, for test_parity.py: the backend is fixed once per process.

    KERAS_BACKEND=torch python tests/parity_probe.py keras OUT_DIR STEP:SEED:DTYPE:STEPS ...

Writes common.parity.probe()'s result for every STEP:SEED:DTYPE:STEPS (trajectory steps) to
OUT_DIR/<STEP>-<DTYPE>.npz, all in one process (Keras and torch load once).
"""
import sys
from pathlib import Path

import numpy as np

from common import parity

if __name__ == "__main__":
    framework, out = sys.argv[1], Path(sys.argv[2])
    for spec in sys.argv[3:]:
        step, seed, dtype, steps = spec.split(":")
        np.savez(out / f"{step}-{dtype}.npz",
                 **parity.probe(framework, step, seed=int(seed), dtype=dtype, trajectory=int(steps)))
