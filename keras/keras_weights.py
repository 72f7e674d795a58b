"""Keras models to and from the neutral weights (common/weights.py).

Keras kernels put the spatial axes first. Conv2D: [kH, kW, in, out] (HWIO)
-> neutral OIHW. Conv2DTranspose: [kH, kW, out, in] -> neutral IOHW. Both
are the same transpose, (3, 2, 0, 1); (2, 3, 1, 0) undoes it.
DepthwiseConv2D (depth_multiplier 1): [kH, kW, C, 1] -> neutral [C, 1, kH, kW],
the transpose (2, 3, 0, 1), which is its own inverse. BatchNorm's names
change (moving_mean -> mean, ...).
"""
import keras_setup  # noqa: F401  (first: it picks the Keras backend before keras is imported)

import keras
import numpy as np
from keras import layers, ops

# Layer names are the neutral paths with "-" for ".": layer "trunk-0-conv"
# holds trunk.0.conv.weight and .bias. (Keras itself accepts dots, but its
# torch backend registers every variable as a torch parameter under the
# layer's name, and PyTorch forbids dots there.)
LAYER_SEP = "-"
TO_NEUTRAL, FROM_NEUTRAL = (3, 2, 0, 1), (2, 3, 1, 0)
DEPTHWISE = "depthwise"          # the is_kernel value of a DepthwiseConv2D kernel
DEPTHWISE_PERM = (2, 3, 0, 1)


def neutral_variables(model: keras.Model) -> dict:
    """Neutral name -> (Keras variable, is_kernel), parameters and BatchNorm running stats.

    A neutral name is the layer's name, "-" read as ".", plus the leaf.
    is_kernel: False, True (Conv2D, Conv2DTranspose) or DEPTHWISE.
    """
    out = {}
    for layer in model.layers:
        path = layer.name.replace(LAYER_SEP, ".")
        if isinstance(layer, layers.DepthwiseConv2D):
            if layer.depth_multiplier != 1:
                raise ValueError(f"{layer.name}: only depth_multiplier=1 has a neutral layout here")
            out[f"{path}.weight"] = (layer.kernel, DEPTHWISE)
            if layer.use_bias:
                out[f"{path}.bias"] = (layer.bias, False)
        elif isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            out[f"{path}.weight"] = (layer.kernel, True)
            if layer.use_bias:
                out[f"{path}.bias"] = (layer.bias, False)
        elif isinstance(layer, layers.BatchNormalization):
            for leaf, var in (("gamma", layer.gamma), ("beta", layer.beta),
                              ("mean", layer.moving_mean), ("var", layer.moving_variance)):
                out[f"{path}.{leaf}"] = (var, False)
    return out


def to_neutral(a, is_kernel) -> np.ndarray:
    """A Keras variable or tensor -> numpy in the neutral layout, in its own dtype (no rounding)."""
    a = np.asarray(ops.convert_to_numpy(a))
    if is_kernel == DEPTHWISE:
        return np.ascontiguousarray(a.transpose(DEPTHWISE_PERM))
    return np.ascontiguousarray(a.transpose(TO_NEUTRAL) if is_kernel else a)


def from_neutral(a, is_kernel, dtype="float32") -> np.ndarray:
    """A neutral array (float32 or float64) -> numpy in Keras' layout and `dtype`, the variable's."""
    a = np.asarray(a, dtype)
    if is_kernel == DEPTHWISE:
        return np.ascontiguousarray(a.transpose(DEPTHWISE_PERM))
    return np.ascontiguousarray(a.transpose(FROM_NEUTRAL) if is_kernel else a)


def get_weights(model) -> dict:
    return {k: to_neutral(v, kernel) for k, (v, kernel) in neutral_variables(model).items()}


def set_weights(model, weights: dict):
    for k, (v, kernel) in neutral_variables(model).items():
        v.assign(from_neutral(weights[k], kernel, v.dtype))
