"""Measure every difference listed in docs/framework-differences.md, before and after harmonising.

    .venv/bin/python tools/measure_differences.py            # print the table
    .venv/bin/python tools/measure_differences.py --write    # and put it into the page

Each row runs the real frameworks' ops on the same NumPy inputs (fixed seeds,
CPU, float32) twice: with each framework's DEFAULTS ("before") and with this
suite's settings, through the framework modules (torch_*, tf_*, keras_*,
chainer_*: layers, losses, weights, trainer) where they provide them ("after"). Every number is measured
against one reference:

- outputs and running statistics: PyTorch in float64 with the suite's settings
  (the parity tests' "pytorch64"); the number is the max |difference|;
- losses: common.losses (NumPy, float64); the relative difference;
- parameter counts: the suite's count, trainable parameters; the difference;
- initial weights and logits: common.weights.init_weights; a ratio of standard
  deviations (1 = the suite's He-normal).

A framework that is not installed is left out of its rows. Keras runs on its
tensorflow backend (the backend is fixed per process). tests/test_differences.py
calls rows() and checks that every "after" is within the parity tests'
tolerances and that every default expected to differ does, so the page cannot
go stale silently.
"""
import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib  # noqa: E402  (after the environment: TensorFlow reads it at import)
import types  # noqa: E402

import numpy as np  # noqa: E402

from common import REPO, losses, parity  # noqa: E402
from common.data import to_nchw  # noqa: E402
from common.driver import make_trainer  # noqa: E402
from common.frameworks import PREFIX, ROLES, environment, installed  # noqa: E402
from common.runner import to_layout  # noqa: E402
from common.weights import init_weights  # noqa: E402

PAGE = REPO / "docs" / "framework-differences.md"
START, END = "<!-- measured:start -->", "<!-- measured:end -->"
FRAMEWORKS = tuple(f for f in ("pytorch", "tensorflow", "keras", "chainer") if installed(f))
# Tolerances for one harmonised difference in float32: 1e-4 on outputs, 1e-5 relative on
# losses (the parity tests' fixed tolerances of issue #4; those now use measured floors,
# common/parity_floors.json, where whole networks' float32 logits end <= 2.2e-5 from exact).
ATOL, LOSS_RTOL = 1e-4, 1e-5
IGNORE = 255                    # VOC's ignore index (common/data.py)


@dataclass
class Row:
    """One line of the table. before/after: label -> number, or a str where there is none.

    A number is "within" when |value - target| <= tol. The test requires every
    number in `after` to be within, and every label in `differs` (a default that
    is not the suite's setting) to be further than `floor` from the target.
    """
    difference: str
    measure: str
    before: dict
    after: dict
    differs: tuple = ()
    target: float = 0.0
    tol: float = ATOL
    floor: float = 1e-3
    fmt: str = "diff"           # diff: 1.2e-07; rel: the same, relative; count: +1,234; ratio: 0.41
    notes: list = field(default_factory=list)

    def __post_init__(self):   # a framework that is not installed has no label to check
        self.differs = tuple(k for k in self.differs if k in self.before)


def has(*frameworks):
    return all(f in FRAMEWORKS for f in frameworks)


def glue(framework):
    """A framework's four modules (<prefix>_layers, _losses, _weights, _trainer) as one namespace."""
    merged = {}
    for role in ROLES:
        merged.update(vars(importlib.import_module(f"{PREFIX[framework]}_{role}")))
    return types.SimpleNamespace(**merged)


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def nchw(a):
    """An NHWC framework tensor -> NCHW numpy, to compare with the reference."""
    return to_nchw(np.asarray(a))


def torch64(fn, *arrays, **kwargs):
    """fn(*tensors) computed in PyTorch float64, as numpy: the reference."""
    import torch
    return fn(*[torch.from_numpy(np.asarray(a, np.float64)) for a in arrays], **kwargs).numpy()


def torch32(fn, *arrays, **kwargs):
    import torch
    return fn(*[torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in arrays], **kwargs).numpy()


def error(call):
    """The exception call() raises, as 'TypeName', or None."""
    try:
        call()
    except Exception as exc:   # noqa: BLE001  (we report whatever the framework raises)
        return type(exc).__name__
    return None


# --------------------------------------------------------------------- BatchNorm
# x [B, C, H, W]: channel c has a mean in [-1, 1] and a std from 0.1 to 1 (a
# channel with a small spread is where epsilon shows). gamma, beta and the running
# statistics are random, not 1/0/0/1, so that no convention hides behind them.
def bn_case(shape, seed):
    r = np.random.default_rng(seed)
    b, c, h, w = shape
    std = np.geomspace(0.1, 1, c)[None, :, None, None]
    x = r.uniform(-1, 1, (1, c, 1, 1)) + std * r.standard_normal(shape)
    p = {"gamma": 1 + 0.1 * r.standard_normal(c), "beta": 0.1 * r.standard_normal(c),
         "mean": 0.1 * r.standard_normal(c), "var": r.uniform(0.5, 1.5, c)}
    return x.astype(np.float32), {k: v.astype(np.float32) for k, v in p.items()}


def torch_bn(bn, x, p):
    """(training-mode output, running mean, running var after the update) of an nn.BatchNorm2d."""
    import torch
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    bn.to(dtype).train()
    with torch.no_grad():
        for t, k in ((bn.weight, "gamma"), (bn.bias, "beta"), (bn.running_mean, "mean"),
                     (bn.running_var, "var")):
            t.copy_(torch.from_numpy(p[k]))
        y = bn(torch.from_numpy(x).to(dtype))
    return y.numpy(), bn.running_mean.numpy(), bn.running_var.numpy()


def tf_bn(bn, x, p):
    """The same for tf_layers.BatchNorm (NHWC inside)."""
    for k in ("gamma", "beta", "mean", "var"):
        getattr(bn, k).assign(p[k])
    y = bn(to_layout(x.transpose(0, 2, 3, 1), "NHWC"), training=True)
    return nchw(y), bn.mean.numpy(), bn.var.numpy()


def tf_fused_bn(x, p):
    """TensorFlow's own BatchNorm op, tf.compat.v1.nn.fused_batch_norm, with its defaults.

    It returns the batch statistics; at its default exponential_avg_factor=1.0
    they replace the running ones, so they are the "running" values here.
    """
    import tensorflow as tf
    y, mean, var = tf.compat.v1.nn.fused_batch_norm(x.transpose(0, 2, 3, 1), p["gamma"], p["beta"],
                                                    is_training=True)
    return nchw(y), mean.numpy(), var.numpy()


def tf_moments_bn(x, p, eps=1e-5, momentum=0.1):
    """BatchNorm written the textbook way with tf.nn.moments (biased variance) into the running var."""
    import tensorflow as tf
    xt = tf.constant(x.transpose(0, 2, 3, 1))
    mean, var = tf.nn.moments(xt, axes=[0, 1, 2])
    y = tf.nn.batch_normalization(xt, mean, var, p["beta"], p["gamma"], eps)
    return (nchw(y), (1 - momentum) * p["mean"] + momentum * mean.numpy(),
            (1 - momentum) * p["var"] + momentum * var.numpy())


def keras_bn(layer, x, p):
    """The same for a Keras BatchNormalization layer (NHWC inside)."""
    ops = glue("keras").ops
    layer.build((None,) + x.shape[2:] + x.shape[1:2])
    for v, k in ((layer.gamma, "gamma"), (layer.beta, "beta"), (layer.moving_mean, "mean"),
                 (layer.moving_variance, "var")):
        v.assign(p[k])
    y = layer(x.transpose(0, 2, 3, 1), training=True)
    return (nchw(ops.convert_to_numpy(y)), ops.convert_to_numpy(layer.moving_mean),
            ops.convert_to_numpy(layer.moving_variance))


def chainer_bn(link, x, p):
    """The same for a Chainer BatchNormalization link."""
    import chainer
    link.gamma.array[...] = p["gamma"]
    link.beta.array[...] = p["beta"]
    link.avg_mean[...] = p["mean"]
    link.avg_var[...] = p["var"]
    with chainer.using_config("train", True):
        y = link(x)
    return y.array, link.avg_mean.copy(), link.avg_var.copy()


def bn_runs(shape, seed):
    """(reference, before, after), each label -> (output, running mean, running var)."""
    import torch
    x, p = bn_case(shape, seed)
    c = shape[1]
    ref = torch_bn(torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1), x.astype(np.float64),
                   {k: v.astype(np.float64) for k, v in p.items()})
    before, after = {}, {}
    if has("pytorch"):
        before["PyTorch"] = torch_bn(torch.nn.BatchNorm2d(c), x, p)
        after["PyTorch"] = torch_bn(glue("pytorch").batch_norm(c), x, p)
    if has("tensorflow"):
        before["TF"] = tf_fused_bn(x, p)
        before["TF, tf.nn.moments"] = tf_moments_bn(x, p)
        after["TF"] = tf_bn(glue("tensorflow").batch_norm(c), x, p)
    if has("keras"):
        k = glue("keras")
        before["Keras"] = keras_bn(k.layers.BatchNormalization(), x, p)
        # the stock layer with the suite's epsilon and momentum: only the variance rule differs
        before["Keras, eps+momentum set"] = keras_bn(
            k.layers.BatchNormalization(epsilon=k.BN_EPS, momentum=k.BN_MOMENTUM), x, p)
        after["Keras"] = keras_bn(k.batch_norm("bn"), x, p)
    if has("chainer"):
        lab = glue("chainer")                     # first: it makes chainer importable
        import chainer.links as L
        before["Chainer"] = chainer_bn(L.BatchNormalization(c), x, p)
        after["Chainer"] = chainer_bn(lab.batch_norm(c), x, p)
    return ref, before, after


def batchnorm_rows():
    ref, before, after = bn_runs((4, 8, 16, 16), seed=0)
    defaults = ("PyTorch", "TF", "Keras", "Chainer")

    def col(runs, i, labels):
        return {k: maxdiff(runs[k][i], ref[i]) for k in labels if k in runs}
    eps = Row("BatchNorm epsilon (1e-5 / Keras 1e-3 / Chainer 2e-5)",
              "training-mode output, 4×8×16×16, channel std 0.1…1",
              col(before, 0, defaults), col(after, 0, after),
              differs=("TF", "Keras", "Chainer"), floor=1e-4)
    eps.notes.append("TF before: `tf.compat.v1.nn.fused_batch_norm` (TF's own BatchNorm op, "
                     "eps 1e-3); `tf.nn.batch_normalization` has no default eps.")
    mom = Row("BatchNorm running-average factor (PyTorch 0.1 / Keras 0.99 / Chainer decay 0.9)",
              "running mean after one update",
              col(before, 1, defaults), col(after, 1, after), differs=("TF", "Keras"))
    mom.notes.append("TF before: the batch mean that `fused_batch_norm` returns, which replaces "
                     "the running mean at its default `exponential_avg_factor=1.0`.")
    # The variance rule matters where a channel has few values: a UNet bottleneck, 2×2, batch 2.
    ref_s, before_s, after_s = bn_runs((2, 8, 2, 2), seed=1)
    labels = ("PyTorch", "TF, tf.nn.moments", "Keras, eps+momentum set", "Chainer")
    small = {k: maxdiff(before_s[k][2], ref_s[2]) for k in labels if k in before_s}
    if "Keras, eps+momentum set" in before:
        small["same Keras at 4×8×16×16"] = maxdiff(before["Keras, eps+momentum set"][2], ref[2])
    var = Row("running variance: unbiased (PyTorch, Chainer, fused TF) vs biased (Keras, tf.nn.moments)",
              "running var after one update, 2×8×2×2 (n = 8 values per channel)",
              small, {k: maxdiff(v[2], ref_s[2]) for k, v in after_s.items()},
              differs=labels[1:3])
    var.notes.append("\"Keras, eps+momentum set\": the stock layer with eps 1e-5 and momentum 0.9, "
                     "so only the variance rule differs; at 4×8×16×16 (n = 1024) that rule costs "
                     "0.1·var/(n−1), just under the 1e-4 tolerance.")
    return [eps, mom, var]


# ------------------------------------------------------------ layouts and padding
def conv_case(seed=2, side=16):
    """Images NHWC [2, side, side, 3] as common.data reads them, a 3x3 conv in the neutral OIHW."""
    r = np.random.default_rng(seed)
    x = r.random((2, side, side, 3), dtype=np.float32)
    w = (r.standard_normal((8, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    b = (0.1 * r.standard_normal(8)).astype(np.float32)
    return x, w, b


def torch_conv(x, w, b, **kw):
    import torch.nn.functional as F
    return (torch64 if x.dtype == np.float64 else torch32)(F.conv2d, x, w, b, **kw)


def chainer_conv(x, w, b, stride=1, pad=1):
    import chainer.functions as CF
    return CF.convolution_2d(x, w, b, stride=stride, pad=pad).array


def tf_conv(x, kernel, b, stride=1, padding="SAME"):
    import tensorflow as tf
    return nchw(tf.nn.conv2d(x, kernel, strides=stride, padding=padding) + b)


def keras_layer(layer, x, **weights):
    """Build a Keras layer on x (NHWC), set its variables, call it: NCHW numpy out."""
    ops = glue("keras").ops
    layer.build(x.shape)
    for name, value in weights.items():
        getattr(layer, name).assign(value)
    return nchw(ops.convert_to_numpy(layer(x)))


def tf_glue_conv(x, w, b, convert):
    conv = glue("tensorflow").Conv2D(w.shape[1], w.shape[0], w.shape[2])
    conv.weight.assign(convert(w))
    conv.bias.assign(b)
    return nchw(conv(x))


def layout_rows():
    x, w, b = conv_case()
    ref = torch_conv(to_nchw(x).astype(np.float64), w, b, padding=1)
    naive = x.reshape(x.shape[0], x.shape[3], x.shape[1], x.shape[2])   # NHWC bytes read as NCHW
    lay_b, lay_a, ker_b, ker_a = {}, {}, {}, {}
    if has("pytorch"):
        lay_b["PyTorch"] = maxdiff(torch_conv(naive, w, b, padding=1), ref)
        lay_a["PyTorch"] = ker_a["PyTorch"] = maxdiff(torch_conv(to_layout(x, "NCHW"), w, b, padding=1), ref)
        ker_b["PyTorch"] = ker_a["PyTorch"]          # OIHW is PyTorch's own layout
    if has("chainer"):
        glue("chainer")
        lay_b["Chainer"] = maxdiff(chainer_conv(naive, w, b), ref)
        lay_a["Chainer"] = ker_a["Chainer"] = maxdiff(chainer_conv(to_layout(x, "NCHW"), w, b), ref)
        ker_b["Chainer"] = ker_a["Chainer"]          # and Chainer's
    hwio = (w.shape[2], w.shape[3], w.shape[1], w.shape[0])
    if has("tensorflow"):
        t = glue("tensorflow")
        lay_a["TF"] = maxdiff(tf_glue_conv(to_layout(x, "NHWC"), w, b, t.from_neutral), ref)
        ker_b["TF"] = maxdiff(tf_glue_conv(x, w, b, lambda a: a.reshape(hwio)), ref)
        ker_a["TF"] = lay_a["TF"]
    if has("keras"):
        k = glue("keras")
        conv = lambda kernel: keras_layer(k.layers.Conv2D(8, 3, padding="same"), x, kernel=kernel, bias=b)
        lay_a["Keras"] = ker_a["Keras"] = maxdiff(conv(k.from_neutral(w, True)), ref)
        ker_b["Keras"] = maxdiff(conv(w.reshape(hwio)), ref)
    layout = Row("layout NCHW (PyTorch, Chainer) vs NHWC (TF, Keras)",
                 "3×3 conv output, images read NHWC; NCHW by reshape vs `to_layout`",
                 lay_b, lay_a, differs=("PyTorch", "Chainer"))
    layout.notes.append("TF and Keras take the images as read (NHWC; `to_layout` only makes them "
                        "contiguous); their outputs are transposed to NCHW for the comparison.")
    kernel = Row("conv weight OIHW (PyTorch, Chainer) vs HWIO (TF, Keras)",
                 "3×3 conv output, neutral OIHW weight loaded by reshape vs `from_neutral`",
                 ker_b, ker_a, differs=("TF", "Keras"))
    return [layout, kernel, transposed_row(), padding_row()]


def transposed_row():
    """UNet's up-convolution: 2x2, stride 2, 8 -> 4 channels; neutral weight IOHW [8, 4, 2, 2]."""
    r = np.random.default_rng(3)
    x = r.standard_normal((2, 8, 8, 8)).astype(np.float32)            # NHWC
    w = (r.standard_normal((8, 4, 2, 2)) * 0.3).astype(np.float32)    # [in, out, kH, kW]
    b = (0.1 * r.standard_normal(4)).astype(np.float32)
    import torch.nn.functional as F
    ref = torch64(F.conv_transpose2d, to_nchw(x), w, b, stride=2)
    naive = w.reshape(2, 2, 4, 8)                                     # TF/Keras want [kH, kW, out, in]
    before, after = {}, {}
    if has("pytorch"):
        before["PyTorch"] = after["PyTorch"] = maxdiff(
            torch32(F.conv_transpose2d, to_nchw(x), w, b, stride=2), ref)
    if has("chainer"):
        glue("chainer")
        import chainer.functions as CF
        before["Chainer"] = after["Chainer"] = maxdiff(
            CF.deconvolution_2d(to_nchw(x), w, b, stride=2).array, ref)
    if has("tensorflow"):
        t = glue("tensorflow")
        up = t.ConvTranspose2D(8, 4, 2, stride=2)
        up.bias.assign(b)
        for label, kernel, out in (("TF", naive, before), ("TF", t.from_neutral(w), after)):
            up.weight.assign(kernel)
            out[label] = maxdiff(nchw(up(x)), ref)
    if has("keras"):
        k = glue("keras")
        up = lambda kernel: keras_layer(k.layers.Conv2DTranspose(4, 2, strides=2), x, kernel=kernel, bias=b)
        before["Keras"] = maxdiff(up(naive), ref)
        after["Keras"] = maxdiff(up(k.from_neutral(w, True)), ref)
    return Row("transposed-conv weight (in, out, kH, kW) vs (kH, kW, out, in)",
               "2×2 stride-2 up-conv output, weight by reshape vs `from_neutral`",
               before, after, differs=("TF", "Keras"))


def padding_row():
    """A 3x3 stride-2 conv on an even side: "same" pads (0, 1) in TF/Keras, PyTorch pads (1, 1)."""
    x, w, b = conv_case(side=16)
    ref = torch_conv(to_nchw(x).astype(np.float64), w, b, stride=2, padding=1)
    hwio = w.transpose(2, 3, 1, 0)
    before, after, row_notes = {}, {}, []
    if has("pytorch"):
        import torch
        err = error(lambda: torch.nn.Conv2d(3, 8, 3, stride=2, padding="same"))
        before["PyTorch"] = err or "no error"         # padding="same" with stride 2
        row_notes.append(f"PyTorch `padding=\"same\"` with stride 2 raises {err}, and Chainer has "
                         "no \"same\" (default pad 0): both are written with padding 1.")
        after["PyTorch"] = maxdiff(torch_conv(to_nchw(x), w, b, stride=2, padding=1), ref)
    if has("chainer"):
        glue("chainer")
        side = chainer_conv(to_nchw(x), w, b, 2, 0).shape[-1]      # Chainer's default pad 0
        before["Chainer"] = f"{side}×{side} output (pad 0)"
        after["Chainer"] = maxdiff(chainer_conv(to_nchw(x), w, b, 2, 1), ref)
    if has("tensorflow"):
        before["TF"] = maxdiff(tf_conv(x, hwio, b, 2, "SAME"), ref)
        after["TF"] = maxdiff(tf_conv(x, hwio, b, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]), ref)
        odd, _, _ = conv_case(side=15)
        before["TF, odd side 15"] = maxdiff(tf_conv(odd, hwio, b, 2, "SAME"),
                                            torch_conv(to_nchw(odd).astype(np.float64), w, b,
                                                       stride=2, padding=1))
    if has("keras"):
        k = glue("keras")
        before["Keras"] = maxdiff(keras_layer(k.layers.Conv2D(8, 3, strides=2, padding="same"), x,
                                              kernel=hwio, bias=b), ref)
        padded = k.ops.convert_to_numpy(k.layers.ZeroPadding2D(1)(x))
        after["Keras"] = maxdiff(keras_layer(k.layers.Conv2D(8, 3, strides=2, padding="valid"), padded,
                                             kernel=hwio, bias=b), ref)
    row = Row('padding "same", 3×3 stride 2, even side',
              "conv output 16×16 → 8×8; after: explicit symmetric padding 1",
              before, after, differs=("TF", "Keras"))
    row.notes += row_notes + ["The steps avoid the question: they downsample by 2×2 max pooling, "
                              "and their stride-1 odd-kernel \"same\" pads symmetrically."]
    return row


# ------------------------------------------------------------------------ resize
def resize_rows():
    import torch.nn.functional as F
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 4, 8, 8)).astype(np.float32)           # NCHW
    x5 = r.standard_normal((2, 4, 5, 5)).astype(np.float32)
    rows = []

    # nearest x2, what step 03 uses
    ref = torch64(F.interpolate, x, scale_factor=2, mode="nearest")
    before, after = {}, {}
    if has("pytorch"):
        before["PyTorch"] = after["PyTorch"] = maxdiff(torch32(F.interpolate, x, scale_factor=2), ref)
    if has("tensorflow"):
        import tensorflow as tf
        before["TF"] = after["TF"] = maxdiff(
            nchw(tf.image.resize(x.transpose(0, 2, 3, 1), (16, 16), method="nearest")), ref)
    if has("keras"):
        k = glue("keras")
        xk = x.transpose(0, 2, 3, 1)
        before["Keras"] = maxdiff(keras_layer(k.layers.UpSampling2D(2), xk), ref)
        resizing = k.layers.Resizing(16, 16, interpolation="nearest")
        before["Keras Resizing"] = maxdiff(keras_layer(resizing, xk), ref)
        after["Keras"] = maxdiff(keras_layer(k.layers.UpSampling2D(2, interpolation="nearest"), xk), ref)
    if has("chainer"):
        glue("chainer")
        import chainer.functions as CF
        before["Chainer resize_images"] = maxdiff(CF.resize_images(x, (16, 16), mode="nearest").array, ref)
        after["Chainer"] = maxdiff(CF.unpooling_2d(x, 2, stride=2, cover_all=False).array, ref)
    rows.append(Row("nearest upsampling ×2 (step 03)", "8×8 → 16×16 output",
                    before, after))

    # nearest to a non-integer factor: which source pixel? half-pixel centres vs floor(i * in/out)
    ref = torch64(F.interpolate, x5, size=(8, 8), mode="nearest-exact")
    before, after, notes = {}, {}, []
    if has("pytorch"):
        before["PyTorch"] = maxdiff(torch32(F.interpolate, x5, size=(8, 8), mode="nearest"), ref)
        after["PyTorch"] = maxdiff(torch32(F.interpolate, x5, size=(8, 8), mode="nearest-exact"), ref)
    if has("tensorflow"):
        import tensorflow as tf
        before["TF"] = after["TF"] = maxdiff(
            nchw(tf.image.resize(x5.transpose(0, 2, 3, 1), (8, 8), method="nearest")), ref)
    if has("keras"):
        k = glue("keras")
        before["Keras"] = after["Keras"] = maxdiff(
            keras_layer(k.layers.Resizing(8, 8, interpolation="nearest"), x5.transpose(0, 2, 3, 1)), ref)
    if has("chainer"):
        glue("chainer")
        import chainer.functions as CF
        before["Chainer"] = maxdiff(CF.resize_images(x5, (8, 8), mode="nearest").array, ref)
        off = maxdiff(CF.resize_images(x5, (8, 8), mode="nearest", align_corners=False).array, ref)
        after["Chainer"] = f"{off:.2g}: no half-pixel nearest"
        notes.append("Chainer's nearest `F.resize_images` takes floor(i·in/out) with either "
                     "`align_corners`; the steps only upsample nearest by exactly 2, where all agree.")
    row = Row("nearest resize, non-integer factor (half-pixel centres vs floor)",
              "5×5 → 8×8 vs half-pixel nearest (`nearest-exact`)",
              before, after, differs=("PyTorch", "Chainer"))
    row.notes += notes
    rows.append(row)

    # bilinear x2, as in DeepLabv3+'s decoder (step 09)
    ref = torch64(F.interpolate, x, size=(16, 16), mode="bilinear", align_corners=False)
    before, after = {}, {}
    if has("pytorch"):
        before["PyTorch"] = maxdiff(torch32(F.interpolate, x, size=(16, 16), mode="bilinear"), ref)
        before["PyTorch align_corners=True"] = maxdiff(
            torch32(F.interpolate, x, size=(16, 16), mode="bilinear", align_corners=True), ref)
        after["PyTorch"] = maxdiff(
            torch32(F.interpolate, x, size=(16, 16), mode="bilinear", align_corners=False), ref)
    if has("tensorflow"):
        import tensorflow as tf
        xt = x.transpose(0, 2, 3, 1)
        before["TF"] = after["TF"] = maxdiff(nchw(tf.image.resize(xt, (16, 16))), ref)   # bilinear
        before["TF1 resize_bilinear"] = maxdiff(nchw(tf.compat.v1.image.resize_bilinear(xt, (16, 16))), ref)
    if has("keras"):
        k = glue("keras")
        xk = x.transpose(0, 2, 3, 1)
        before["Keras UpSampling2D"] = maxdiff(keras_layer(k.layers.UpSampling2D(2), xk), ref)   # nearest!
        before["Keras Resizing"] = maxdiff(keras_layer(k.layers.Resizing(16, 16), xk), ref)
        after["Keras"] = maxdiff(keras_layer(k.layers.UpSampling2D(2, interpolation="bilinear"), xk), ref)
    if has("chainer"):
        glue("chainer")
        import chainer.functions as CF
        before["Chainer"] = maxdiff(CF.resize_images(x, (16, 16)).array, ref)     # align_corners=True
        after["Chainer"] = maxdiff(CF.resize_images(x, (16, 16), align_corners=False).array, ref)
    row = Row("bilinear resize ×2 (step 09): half-pixel centres, align_corners=False",
              "8×8 → 16×16 output",
              before, after,
              differs=("PyTorch align_corners=True", "TF1 resize_bilinear", "Keras UpSampling2D",
                       "Chainer"))
    row.notes.append("Keras `UpSampling2D()` interpolates nearest unless told "
                     "`interpolation=\"bilinear\"`; `Resizing` defaults to bilinear. "
                     "TF1's `resize_bilinear` has neither half-pixel centres nor align_corners.")
    rows.append(row)
    return rows


# ------------------------------------------------- initialisers and parameter counts
UNET = "06_unet"


def unet_trainers(argv=()):
    """framework -> 06_unet Trainer (argv: its options) with the framework's own initial weights."""
    np.random.seed(0)                                 # Chainer's initializers draw from NumPy's
    out = {}
    for fw in FRAMEWORKS:
        if fw == "pytorch":
            import torch
            torch.manual_seed(0)
        elif fw == "tensorflow":
            import tensorflow as tf
            tf.random.set_seed(0)
        elif fw == "keras":
            glue("keras").keras.utils.set_random_seed(0)
        out[fw] = make_trainer(fw, UNET, argv)[0]
    return out


def conv_std_ratio(weights):
    """Mean over the 3x3 conv weights of std / sqrt(2 / fan_in): 1 for He-normal."""
    ratios = [np.std(w) / np.sqrt(2 / (w.shape[1] * 9)) for k, w in sorted(weights.items())
              if k.endswith("conv.weight") and w.ndim == 4 and w.shape[2:] == (3, 3)]
    return float(np.mean(ratios))


def init_and_count_rows(trainers, argv=()):
    shapes = {k: v.shape for k, v in trainers["pytorch"].get_weights().items()}
    w0 = init_weights(shapes, 0)
    x = np.random.default_rng(5).random((2, 32, 32, 3), dtype=np.float32)
    ref_trainer = make_trainer("pytorch", UNET, argv, dtype="float64")[0]
    ref_trainer.set_weights(w0)
    ref_logits = ref_trainer.forward(to_layout(x, "NCHW").astype(np.float64), training=False)
    label = {"pytorch": "PyTorch", "tensorflow": "TF (placeholder He)", "keras": "Keras",
             "chainer": "Chainer"}
    std_b, std_a, log_b, log_a = {}, {}, {}, {}
    for fw, tr in trainers.items():
        std_b[label[fw]] = conv_std_ratio(tr.get_weights())
        log_b[label[fw]] = float(np.std(tr.forward(to_layout(x, tr.layout), training=False))
                                 / np.std(ref_logits))
        tr.set_weights(w0)
        std_a[fw_label(fw)] = conv_std_ratio(tr.get_weights())
        log_a[fw_label(fw)] = float(np.std(tr.forward(to_layout(x, tr.layout), training=False))
                                 / np.std(ref_logits))
    differs = tuple(label[f] for f in ("pytorch", "keras", "chainer") if f in trainers)
    std = Row("default initialiser (Kaiming-uniform a=√5 / Glorot-uniform / LeCun-normal)",
              "3×3 conv weight std ÷ √(2/fan_in), 06_unet",
              std_b, std_a, differs=differs, target=conv_std_ratio(w0), tol=1e-6, floor=0.1, fmt="ratio")
    std.notes.append("After, every framework holds the same arrays (`common.weights.init_weights`).")
    logits = Row("… its effect on the initial logits",
                 "std of 06_unet's initial logits (inference BN) ÷ the suite's",
                 log_b, log_a, differs=differs, target=1.0, tol=ATOL, floor=0.1, fmt="ratio")

    suite = trainers["pytorch"].num_params()
    before, after = {}, {}
    for fw, tr in trainers.items():
        if fw == "pytorch":
            own = sum(p.numel() for p in tr.model.parameters())
        elif fw == "tensorflow":
            own = sum(int(np.prod(v.shape)) for v in tr.model.variables)     # tf.Module's own list
        else:
            own = tr.model.count_params()                                    # Keras and Chainer
        name = {"pytorch": "PyTorch parameters()", "tensorflow": "TF Module.variables",
                "keras": "Keras count_params()", "chainer": "Chainer count_params()"}[fw]
        before[name] = own - suite
        after[fw_label(fw)] = tr.num_params() - suite
    count = Row("parameter count", f"06_unet, own counter − trainable parameters ({suite:,})",
                before, after, differs=tuple(k for k in before if k.startswith(("TF", "Keras"))),
                tol=0, floor=0, fmt="count")
    return [std, logits, count]


# ------------------------------------------------------------------- SGD momentum
def momentum_row():
    """One SGD step of 01_binarization from a non-zero momentum buffer (as after --resume).

    The neutral optimizer state stores PyTorch's v (v = mu*v + g; p -= lr*v).
    Keras and Chainer keep u = mu*u - lr*g; p += u, so the same state is u = -lr*v:
    copying v as it is ("before") vs the glue's set_optimizer_state ("after").
    """
    step = "01_binarization"
    argv = parity.PROBE_ARGS                    # lr 0.001, momentum 0.9
    ref = make_trainer("pytorch", step, argv, dtype="float64")[0]
    shapes = {k: v.shape for k, v in ref.get_weights().items()}
    w0 = parity.random_weights(shapes)
    r = np.random.default_rng(7)
    v0 = {k: (0.1 * r.standard_normal(shapes[k])).astype(np.float32) for k in ref.get_optimizer_state()}

    def after_step(trainer, set_state):
        x, y = parity.inputs("binary", trainer.layout, n=1)[0]
        if trainer is ref:
            x = x.astype(np.float64)
        trainer.set_weights(w0)
        set_state(trainer)
        trainer.train_step(x, y)
        return trainer.get_weights()

    def diff(got):
        return max(maxdiff(got[k], expected[k]) for k in v0)   # the trained parameters
    expected = after_step(ref, lambda t: t.set_optimizer_state(v0))
    before, after = {}, {}
    for fw in FRAMEWORKS:
        trainer = make_trainer(fw, step, argv)[0]
        after[fw_label(fw)] = diff(after_step(trainer, lambda t: t.set_optimizer_state(v0)))
        if fw == "keras":
            def naive(t):
                for u, name in zip(t.optimizer.momentums, t.param_names):
                    u.assign(glue("keras").from_neutral(v0[name], t.tensors[name][1]))
            before["Keras"] = diff(after_step(trainer, naive))
        elif fw == "chainer":
            def naive(t):
                t.set_optimizer_state(v0)              # creates Chainer's buffers; then v as it is
                for name, p in t.params:
                    p.update_rule.state["v"][...] = v0[name]
            before["Chainer"] = diff(after_step(trainer, naive))
        else:                                          # PyTorch's own form (the TF column uses it too)
            before[fw_label(fw)] = after[fw_label(fw)]
    row = Row("SGD momentum buffer: v = μv + g; p −= lr·v (PyTorch) vs u = μu − lr·g; p += u",
              "weights after one step of 01_binarization from a non-zero buffer (lr 0.001)",
              before, after, differs=("Keras", "Chainer"))
    row.notes.append("Before: PyTorch's buffer copied into Keras' and Chainer's as it is; after: "
                     "`Trainer.set_optimizer_state` stores u = −lr·v. TF's own "
                     "`tf.compat.v1.train.MomentumOptimizer` keeps PyTorch's form "
                     "(accumulation = μ·accumulation + g), and so does the TF column, which "
                     "writes its SGD step itself.")
    return row


# ------------------------------------------------------------------------ losses
def loss_case(task, seed=6):
    """Logits NCHW [2, C, 16, 16] and labels with exactly a quarter of the pixels = IGNORE."""
    r = np.random.default_rng(seed)
    c = 1 if task == "binary" else 3
    logits = (2 * r.standard_normal((2, c, 16, 16))).astype(np.float32)
    y = r.integers(0, 2 if task == "binary" else 3, (2, 16, 16)).astype(np.int32)
    y.flat[r.permutation(y.size)[: y.size // 4]] = IGNORE
    return logits, y


def glue_loss(fw, task, logits, y):
    """The suite's --loss ce with ignore_index, through the framework's losses module."""
    fn = glue(fw).make_loss("ce", task, IGNORE)
    if fw == "pytorch":
        import torch
        return float(fn(torch.from_numpy(logits), torch.from_numpy(y)))
    if fw == "tensorflow":
        import tensorflow as tf
        return float(fn(tf.constant(logits.transpose(0, 2, 3, 1)), tf.constant(y)))
    if fw == "keras":
        ops = glue("keras").ops
        return float(ops.convert_to_numpy(fn(ops.convert_to_tensor(logits.transpose(0, 2, 3, 1)),
                                              ops.convert_to_tensor(y))))
    return float(fn(logits, y).array)


def loss_rows():
    rows = []
    for task in ("multiclass", "binary"):
        logits, y = loss_case(task)
        ref = losses.cross_entropy(logits, y, task, IGNORE)
        rel = lambda v: abs(v - ref) / abs(ref)
        keep = (y != IGNORE).astype(np.float32)
        y0 = np.where(y == IGNORE, 0, y)                  # any valid label; weight 0 drops it
        y_chainer = np.where(y == IGNORE, -1, y).astype(np.int32)   # Chainer ignores -1
        nhwc = logits.transpose(0, 2, 3, 1)
        before, notes = {}, []
        if has("pytorch"):
            import torch
            import torch.nn.functional as F
            t = torch.from_numpy
            if task == "multiclass":    # has ignore_index; reduction "mean" = over labelled pixels
                before["PyTorch"] = rel(float(F.cross_entropy(t(logits), t(y).long(), ignore_index=IGNORE)))
            else:                       # BCE has no ignore_index: weight 0, "mean" over all pixels
                before["PyTorch"] = rel(float(F.binary_cross_entropy_with_logits(
                    t(logits[:, 0]), t(y0.astype(np.float32)), weight=t(keep))))
        if has("tensorflow"):
            import tensorflow as tf
            if task == "multiclass":    # no ignore_index at all: weight 0, reduce_mean
                per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y0, logits=nhwc)
            else:
                per = tf.nn.sigmoid_cross_entropy_with_logits(labels=y0.astype(np.float32),
                                                              logits=nhwc[..., 0])
            before["TF"] = rel(float(tf.reduce_mean(per * keep)))
        if has("keras"):
            k = glue("keras")
            if task == "multiclass":
                fn = k.keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
                before["Keras"] = rel(float(fn(y, nhwc)))
            else:                       # BinaryCrossentropy has no ignore_class: sample_weight
                fn = k.keras.losses.BinaryCrossentropy(from_logits=True)
                before["Keras"] = rel(float(fn(y0[..., None].astype(np.float32), nhwc, sample_weight=keep)))
        if has("chainer"):
            glue("chainer")
            import chainer.functions as CF
            if task == "multiclass":
                before["Chainer"] = rel(float(CF.softmax_cross_entropy(logits, y_chainer).array))
                before["Chainer normalize=False"] = rel(float(
                    CF.softmax_cross_entropy(logits, y_chainer, normalize=False).array))
            else:
                before["Chainer"] = rel(float(CF.sigmoid_cross_entropy(logits[:, 0], y_chainer).array))
        after = {fw_label(fw): rel(glue_loss(fw, task, logits, y)) for fw in FRAMEWORKS}
        differs = {"multiclass": ("TF", "Chainer normalize=False"), "binary": ("PyTorch", "TF", "Keras")}
        name = "softmax cross-entropy" if task == "multiclass" else "sigmoid cross-entropy"
        row = Row(f"{name} with ignored pixels: mean over labelled pixels",
                  "loss, 2×16×16, 25 % labels 255; relative to the NumPy reference",
                  before, after, differs=differs[task],
                  tol=LOSS_RTOL, floor=0.05, fmt="rel")
        if task == "multiclass":
            row.notes.append(
                "Before: the framework's own ignore mechanism at its default reduction "
                "(PyTorch `ignore_index`, Keras `ignore_class`, Chainer labels −1); TF has none, so "
                "ignored pixels get weight 0 and `reduce_mean` divides by every pixel. Chainer with "
                "`normalize=False` divides by the batch size only.")
            row.notes.append("Label 255 without any ignore argument: " + ", ".join(
                f"{fw_label(fw)} {e}" for fw, e in default_call_errors(logits, y).items()) + ".")
        rows.append(row)
    return rows


def default_call_errors(logits, y):
    """What each framework's default softmax cross-entropy does with label 255 (an exception name)."""
    out = {}
    if has("pytorch"):
        import torch
        import torch.nn.functional as F
        out["pytorch"] = error(lambda: F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y).long()))
    if has("tensorflow"):
        import tensorflow as tf
        out["tensorflow"] = error(lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=logits.transpose(0, 2, 3, 1)))
    if has("keras"):
        k = glue("keras")
        out["keras"] = error(lambda: k.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, logits.transpose(0, 2, 3, 1)))
    if has("chainer"):
        import chainer.functions as CF
        out["chainer"] = error(lambda: CF.softmax_cross_entropy(logits, y))
    return {fw: e or "no error" for fw, e in out.items()}


def fw_label(fw):
    return {"pytorch": "PyTorch", "tensorflow": "TF", "keras": "Keras", "chainer": "Chainer"}[fw]


# ------------------------------------------------------------------------- table
def rows(unet_argv=()):
    """Every row, in the page's order; unet_argv: options for 06_unet (default: its defaults)."""
    if not has("pytorch"):
        raise RuntimeError("the reference is PyTorch (float64): install torch")
    for fw in FRAMEWORKS:
        glue(fw)                 # chainer_layers first makes Chainer importable on NumPy 2
    import torch
    threads = torch.get_num_threads()
    # One thread: these tensors are tiny, and PyTorch's threads spinning against
    # TensorFlow's made a 01_binarization step 40x slower on 2 shared cores.
    torch.set_num_threads(1)
    try:
        out = batchnorm_rows() + layout_rows() + resize_rows()
        out += init_and_count_rows(unet_trainers(unet_argv), unet_argv)
        return out + [momentum_row()] + loss_rows()
    finally:
        torch.set_num_threads(threads)


def fmt(value, kind):
    if isinstance(value, str):
        return value
    if kind == "count":
        return f"{value:+,d}" if value else "0"
    if kind == "ratio":
        return f"{value:.3f}"
    return "0" if value == 0 else f"{value:.1e}"


def cell(values, kind):
    return "<br>".join(f"{label} {fmt(v, kind)}" for label, v in values.items())


def table(all_rows) -> str:
    lines = ["| difference | measure | before (defaults) | after (this suite) |", "|---|---|---|---|"]
    for r in all_rows:
        lines.append(f"| {r.difference} | {r.measure} | {cell(r.before, r.fmt)} | {cell(r.after, r.fmt)} |")
    notes = [f"- *{r.difference.split(' (')[0].split(':')[0]}*: {n}" for r in all_rows for n in r.notes]
    return "\n".join(lines + [""] + notes)


def header(seconds) -> str:
    env = environment()
    versions = ", ".join(f"{fw_label(fw)} {env[fw]}" for fw in FRAMEWORKS)
    return (f"Measured {date.today().isoformat()} by `tools/measure_differences.py` (measuring took "
            f"{seconds:.0f} s after the imports; CPU, float32; {versions}; NumPy {env['numpy']}; "
            "Keras on its tensorflow backend). "
            "Reference: PyTorch float64 with the suite's settings (outputs, max |difference|), "
            "common.losses in float64 (losses, relative), the trainable-parameter count, "
            "init_weights' He-normal (ratios). Regenerate with "
            "`.venv/bin/python tools/measure_differences.py --write`.")


def write_page(text, path=PAGE):
    page = path.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(page):
        sys.exit(f"{path}: no {START} ... {END} markers; add them where the table should go.")
    path.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", page))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true",
                        help=f"put the table into {PAGE.relative_to(REPO)} between {START} and {END} "
                             "(default: print only)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    text = table(rows())
    text = header(time.perf_counter() - t0) + "\n\n" + text
    print(text)
    if args.write:
        write_page(text)
        print(f"\nwritten into {PAGE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
