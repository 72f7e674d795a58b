"""Chainer models to and from the neutral weights (common/weights.py).

Chainer stores convolutions as OIHW and transposed convolutions
(Deconvolution2D) as [in, out, kH, kW] = IOHW, both already the neutral
layouts; only the leaf names change (W -> weight, avg_var -> var, ...), and
the links are listed in the order they were assigned, as PyTorch does.
"""
import chainer_compat  # noqa: F401  (before chainer: restores what NumPy 2 removed)

import chainer
import chainer.links as L
import numpy as np

# Chainer's names for the leaves -> the neutral (PyTorch) ones, in PyTorch's
# order. Link paths already agree once the links are named like PyTorch's
# modules: /trunk/0/conv/W -> trunk.0.conv.weight, /up_bn/avg_var -> up_bn.var.
_LEAF = {"W": "weight", "b": "bias", "gamma": "gamma", "beta": "beta",
         "avg_mean": "mean", "avg_var": "var"}


def neutral_name(path: str) -> str:
    """'/enc/0/1/conv/W' -> 'enc.0.1.conv.weight'."""
    *links, leaf = path.strip("/").split("/")
    return ".".join(links + [_LEAF[leaf]])


def links_in_order(link, path=""):
    """(dotted path, link) for link and all links inside it, in definition order.

    Chainer's own namedlinks() sorts the names alphabetically; we keep the
    order in which the links were assigned, as PyTorch's named_modules() does,
    so that both list the weights in the same order.
    """
    yield path, link
    children = list(link.children())
    if isinstance(link, chainer.Chain):   # a Chain's attributes remember their order
        order = list(vars(link))
        children.sort(key=lambda child: order.index(child.name))
    for child in children:
        yield from links_in_order(child, f"{path}.{child.name}" if path else child.name)


def neutral_arrays(model: chainer.Link) -> dict:
    """Neutral name -> the model's array (parameters and BatchNorm running stats).

    BatchNorm's running statistics are not parameters but "persistent" values
    of the link.
    """
    out = {}
    for path, link in links_in_order(model):
        own = {name[1:]: p.array for name, p in link.namedparams() if name.count("/") == 1}
        if isinstance(link, L.BatchNormalization):
            own.update(avg_mean=link.avg_mean, avg_var=link.avg_var)
        for leaf, neutral in _LEAF.items():
            if leaf in own:
                out[f"{path}.{neutral}" if path else neutral] = own[leaf]
    return out


def get_weights(model) -> dict:
    """Neutral name -> a copy of the array, in the model's dtype."""
    return {k: np.array(chainer.backend.CpuDevice().send(a))   # a copy
            for k, a in neutral_arrays(model).items()}


def set_weights(model, weights: dict):
    """Float32 or float64 neutral arrays, stored in the model's dtype, in place."""
    for k, a in neutral_arrays(model).items():
        a[...] = model.device.send(np.asarray(weights[k], a.dtype))
