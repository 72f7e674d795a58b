"""Framework-free half of the suite: data, masks, metrics, pictures, CLI, the driver, the workshop.

Nothing in this package imports a deep-learning framework. The four framework
folders (pytorch/, tensorflow/, keras/, chainer/) hold the lessons and a few
modules named by role (<prefix>_layers, _losses, _weights, _trainer) that
convert between this package's NumPy arrays and the framework's tensors.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs"
DATA = REPO / "data"
