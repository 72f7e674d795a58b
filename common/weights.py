"""Neutral weights: one .npz format every framework reads and writes.

A weights file maps a parameter's name to a float32 array in PyTorch's layout:

    <layer>.weight  conv OIHW; transposed conv IOHW (as nn.ConvTranspose2d stores it);
                    depthwise conv (C*m)1HW
    <layer>.bias    [O]
    <bn>.gamma, <bn>.beta, <bn>.mean, <bn>.var      BatchNorm scale, shift, running stats

Layer names are dotted paths (``trunk.0.conv``); every framework names its
layers so the paths come out equal. A JSON string under the key ``__meta__``
records the step, the framework that wrote it and the iteration. Files are read
with ``allow_pickle=False``: loading weights never executes code.
"""
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from common.errors import UserError

META_KEY = "__meta__"
ZIP_MAGIC = b"PK\x03\x04"   # every .npz is a zip archive


def atomic_write(path, write):
    """Call write(tmp_path), then rename tmp_path onto path: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path, arrays: dict, meta: dict | None = None):
    """Write arrays (name -> ndarray) and a JSON meta dict to path, atomically."""
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    payload[META_KEY] = np.array(json.dumps(meta or {}))

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
    atomic_write(path, write)


def load_npz(path) -> tuple[dict, dict]:
    """Read a file written by save_npz: (arrays, meta). Never unpickles.

    A file that is not a NumPy .npz archive is told apart before NumPy sees
    it: NumPy would take it for a pickle and suggest allow_pickle=True, which
    would let a file run code and is never the fix here.
    """
    path = Path(path)
    fix = ("Pass the weights.npz (or checkpoint.npz) that a step script wrote into its "
           "--out folder.")
    if path.is_symlink() and not path.exists():
        raise UserError(f"{path} is a broken symbolic link (to {os.readlink(path)}, which does "
                        f"not exist). {fix}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a weights file. {fix}")
    if not path.is_file():
        raise UserError(f"{path}: no such weights file. {fix}")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror or exc}). Check its permissions. "
                        f"{fix}") from None
    if not head.startswith(ZIP_MAGIC):
        what = ("is empty" if not head else
                "is a single-array .npy file" if head.startswith(b"\x93NUMPY") else
                f"starts with {head[:4]!r}, and a .npz is a zip file: it is another kind of "
                "file, or an .npz cut short")
        raise UserError(f"{path} is not a NumPy .npz archive of named weights: it {what}. {fix}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        if "pickle" in str(exc):   # an object array: never loaded (it would unpickle)
            raise UserError(f"{path} holds Python objects (pickled arrays), which are never "
                            f"loaded: weights files hold plain number arrays only. {fix}") from None
        raise UserError(f"{path}: not a readable .npz weights file ({exc}). It may be truncated; "
                        "re-run the step that produced it.") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise UserError(f"{path}: not a readable .npz weights file ({type(exc).__name__}: {exc}). "
                        "It may be truncated or damaged; re-run the step that produced it.") from None
    meta_text = arrays.pop(META_KEY, None)
    try:
        meta = json.loads(str(meta_text)) if meta_text is not None else {}
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: its {META_KEY} entry is not the JSON this suite writes, so it "
                        f"was not written by a step script. {fix}")
    return arrays, meta


def check_compatible(expected: dict, got: dict, source, step: str | None = None, meta: dict | None = None):
    """Raise UserError unless got has exactly expected's names and shapes.

    expected/got: name -> array (or shape). The message lists the mismatches.
    """
    meta = meta or {}
    exp = {k: tuple(np.shape(v)) for k, v in expected.items()}
    have = {k: tuple(np.shape(v)) for k, v in got.items()}
    missing = sorted(set(exp) - set(have))
    extra = sorted(set(have) - set(exp))
    wrong = sorted(k for k in set(exp) & set(have) if exp[k] != have[k])
    if not (missing or extra or wrong):
        return
    lines = []
    if meta.get("step") and step and meta["step"] != step:
        lines.append(f"it was saved by step {meta['step']} ({meta.get('framework', '?')}), "
                     f"this is step {step}")
    def show(names):   # by layer: "dec.0.conv" rather than its weight and bias
        layers = list(dict.fromkeys(n.rsplit(".", 1)[0] for n in names))
        more = f" and {len(layers) - 8} more layers" if len(layers) > 8 else ""
        return f"{', '.join(layers[:8])}{more} ({len(names)} tensors)"
    if wrong:
        lines.append("wrong shapes: " + ", ".join(f"{k} {have[k]} (expected {exp[k]})" for k in wrong[:6])
                     + (f" and {len(wrong) - 6} more" if len(wrong) > 6 else ""))
    if missing:
        lines.append(f"missing: {show(missing)}")
    if extra:
        lines.append(f"unexpected: {show(extra)}")
    raise UserError(f"{source}: these weights do not fit this network: " + "; ".join(lines)
                    + ". Use a weights file written by the same step with the same options "
                    "(e.g. --depth/--width) and dataset classes.")


def init_weights(shapes: dict, seed: int) -> dict:
    """The suite's one initializer, shared by all frameworks so they start equal.

    Frameworks' own defaults differ (PyTorch kaiming-uniform a=sqrt(5), Keras
    Glorot-uniform, Chainer LeCun-normal); we use He-normal (Kaiming, fan_in,
    gain sqrt(2)) for every conv weight, zero biases, and BatchNorm
    gamma=1, beta=0, mean=0, var=1. fan_in = shape[1] * kH * kW on the neutral
    layout, which is what PyTorch computes too (for a transposed conv that is
    out_channels * kH * kW). Each name gets its own generator derived from
    (seed, name), so adding a layer does not change the others.
    """
    out = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma", "var"):
            out[name] = np.ones(shape, np.float32)
        elif leaf in ("bias", "beta", "mean"):
            out[name] = np.zeros(shape, np.float32)
        elif leaf == "weight":
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            rng = np.random.default_rng([seed, *name.encode()])
            out[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            raise ValueError(f"init_weights: no rule for parameter {name!r}")
    return out


def perturb(weights: dict, eps: float, seed: int) -> dict:
    """Every value times (1 + eps * N(0, 1)): the same network, started a rounding error away.

    compare.py --noise-floor trains from these (--perturb-init eps, 1e-7 there: float32's
    relative precision is 6e-8 to 1.2e-7, so about half the values move by one unit in the
    last place) to measure how far training alone carries two runs apart that differ only by
    rounding. Zeros stay zero. Each name has its own draw from (seed, name), apart from
    init_weights' draws.
    """
    out = {}
    for name, w in weights.items():
        rng = np.random.default_rng([seed, 1, *name.encode()])
        noise = 1.0 + eps * rng.standard_normal(w.shape)
        out[name] = (w.astype(np.float64) * noise).astype(w.dtype)
    return out


def bilinear_kernel(in_channels: int, out_channels: int, k: int) -> np.ndarray:
    """Transposed-conv weight (IOHW) that upsamples by bilinear interpolation, channel by channel.

    As FCN (Long et al. 2015) initialises its upsampling layers; off-diagonal
    channel pairs are zero.
    """
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    w = np.zeros((in_channels, out_channels, k, k), np.float32)
    for c in range(min(in_channels, out_channels)):
        w[c, c] = filt
    return w
