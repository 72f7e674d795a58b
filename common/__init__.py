"""Framework-free half of the suite: data, mask colours, metrics, pictures, CLI.

Nothing in this package imports a deep-learning framework. The four framework
folders (pytorch/, tensorflow/, keras/, chainer/) each have one glue module that
converts between this package's NumPy arrays and the framework's tensors.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs"
DATA = REPO / "data"
