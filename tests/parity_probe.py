"""Keras on the torch backend, for test_parity.py: the backend is fixed once per process.

    KERAS_BACKEND=torch python tests/parity_probe.py keras 06_unet out.npz [seed [dtype [steps]]]

Writes common.parity.probe()'s result to out.npz.
"""
import sys

import numpy as np

from common import parity

if __name__ == "__main__":
    framework, step, out = sys.argv[1:4]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    dtype = sys.argv[5] if len(sys.argv) > 5 else "float32"
    steps = int(sys.argv[6]) if len(sys.argv) > 6 else parity.TRAJECTORY
    np.savez(out, **parity.probe(framework, step, seed=seed, dtype=dtype, trajectory=steps))
