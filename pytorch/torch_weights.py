"""PyTorch models to and from the neutral weights (common/weights.py).

PyTorch already stores convolutions as OIHW and transposed convolutions as
IOHW, the neutral layouts; only BatchNorm's names change (weight -> gamma, ...).
"""
import numpy as np
import torch
from torch import nn

_BN_LEAF = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}


def neutral_tensors(model: nn.Module) -> dict:
    """Neutral name -> the model's tensor (parameters and BatchNorm running stats)."""
    out = {}
    for mname, m in model.named_modules():
        is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
        own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
        for pname, t in own:
            if pname == "num_batches_tracked":
                continue
            leaf = _BN_LEAF[pname] if is_bn else pname
            out[f"{mname}.{leaf}" if mname else leaf] = t
    return out


def get_weights(model) -> dict:
    return {k: t.detach().cpu().numpy().copy() for k, t in neutral_tensors(model).items()}


def set_weights(model, weights: dict):
    with torch.no_grad():
        for k, t in neutral_tensors(model).items():
            t.copy_(torch.from_numpy(np.asarray(weights[k])))   # copy_ casts to t's dtype
