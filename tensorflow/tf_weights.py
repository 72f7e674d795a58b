"""TensorFlow models to and from the neutral weights (common/weights.py).

The variables keep TensorFlow's layouts (tf_layers): conv kernels HWIO
[kH, kW, in, out], transposed-conv filters [kH, kW, out, in]. Both turn into
the neutral (PyTorch's) layouts, OIHW and IOHW, by the same transpose:
spatial axes last, the two channel axes swapped. The names are already the
neutral dotted paths (tf_layers.Module.named_variables).
"""
import numpy as np

_TO_NEUTRAL = (3, 2, 0, 1)
_FROM_NEUTRAL = (2, 3, 1, 0)


def to_neutral(value) -> np.ndarray:
    a = np.asarray(value)   # keeps the variable's dtype (float32; float64 in the parity reference)
    return np.ascontiguousarray(a.transpose(_TO_NEUTRAL)) if a.ndim == 4 else a.copy()


def from_neutral(value, dtype=np.float32) -> np.ndarray:
    a = np.asarray(value, dtype)
    return np.ascontiguousarray(a.transpose(_FROM_NEUTRAL)) if a.ndim == 4 else a


def get_weights(model) -> dict:
    return {k: to_neutral(v.numpy()) for k, v in model.named_variables()}


def set_weights(model, weights: dict):
    for k, v in model.named_variables():
        v.assign(from_neutral(weights[k], v.dtype.as_numpy_dtype))
