"""The embedded dataset: synthetic photos of two newt species, with masks.

The original exercise trains on photos of Japanese newts ("imori"): the
red-bellied newt (akahara) and the spotted newt (madara). Those photos cannot
ship with the suite, so this module draws look-alikes, deterministically from a
seed, on first use (`ensure_dataset`), in the exercise's layout:

    root/{train,test}/images/{akahara,madara}/<class>_NNNN.jpg
    root/{train,test}/seg_images/{akahara,madara}/<class>_NNNN.png  (same stem)

Masks are palette ("P") PNGs like the real ones: index 0 background,
1 akahara, 2 madara. The class folder is the species of the largest newt.

Why it is hard (on purpose, so that the lessons show something):
- Both species share one distribution of body colour, accent colour, accent
  coverage and size. They differ only in how the accent is laid out: akahara
  has a few large blotches along the flanks, madara many small spots. A pixel's
  colour, or a small window, says little about the species.
- Backgrounds (soil, gravel, leaf litter, moss) carry distractor blobs in the
  newts' own colours; lighting, blur, sensor noise and JPEG vary per image.
- One or two newts per image, each of either species.

Telling a newt from the background is learnable by a plain stack of 3x3
convolutions; telling the species needs a receptive field that sees a good part
of the body, which is what the encoder-decoder steps bring.

Byte-for-byte deterministic for a seed with a given NumPy and Pillow.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common import DATA
from common.errors import UserError

VERSION = 1  # bump when the generated images change
DEFAULT_ROOT = DATA / "synthetic-newts"
CLASSES = ("background", "akahara", "madara")
PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0)]  # as the real dataset's palette PNGs
SPLITS = ("train", "test")
JPEG_QUALITY = 90


# ---------------------------------------------------------------- backgrounds

def _noise(rng, h, w, cell):
    """Smooth value noise in [0, 1]: a coarse random grid, bicubically enlarged."""
    grid = rng.random((h // cell + 2, w // cell + 2))
    small = Image.fromarray((grid * 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) / 255


def _fractal(rng, h, w, cells=(32, 12, 4)):
    """A few octaves of value noise, rescaled to [0, 1]."""
    total = sum(_noise(rng, h, w, c) / (i + 1) for i, c in enumerate(cells))
    return (total - total.min()) / (np.ptp(total) + 1e-6)


def _mix(c0, c1, t):
    """Per-pixel blend of two RGB colours by t in [0, 1]: [H,W] -> [H,W,3]."""
    return np.asarray(c0, np.float32) + t[..., None] * np.subtract(c1, c0, dtype=np.float32)


def _rand_colour(rng, lo, hi):
    return tuple(int(v) for v in rng.integers(lo, hi))


def _blob(rng, cx, cy, rx, ry, angle, rough=0.35, n=14):
    """Polygon of an irregular ellipse around (cx, cy), long axis at `angle`."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + rough * (rng.random(n) - 0.5)
    x, y = rx * r * np.cos(a), ry * r * np.sin(a)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip(cx + c * x - s * y, cy + s * x + c * y))


def _background(rng, w, h):
    """A random ground texture with distractors: float32 RGB [H,W,3].

    The ground is mostly lighter than newt skin, so newt-vs-ground can be told
    locally, except at the distractors: dark patches and sticks, orange/cream
    flecks, and (see _stones) stones with newt-like skin but no newt shape.
    """
    kind = rng.choice(["soil", "gravel", "litter", "moss"])
    if kind == "moss":
        base = _mix(_rand_colour(rng, (60, 90, 30), (100, 130, 60)),
                    _rand_colour(rng, (110, 150, 50), (170, 210, 110)),
                    0.6 * _fractal(rng, h, w, (16, 3, 2)) + 0.4 * _noise(rng, h, w, 1))
    else:
        base = _mix(_rand_colour(rng, (90, 75, 55), (140, 125, 100)),
                    _rand_colour(rng, (140, 125, 100), (220, 205, 180)), _fractal(rng, h, w))
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    if kind == "gravel":
        for _ in range(int(w * h / 50)):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1.5, 6)
            grey = rng.integers(90, 220)
            draw.ellipse([x - r, y - r * rng.uniform(0.5, 1), x + r, y + r * rng.uniform(0.5, 1)],
                         fill=tuple(int(grey + t) for t in rng.integers(-15, 15, 3)))
    elif kind == "litter":
        for _ in range(int(w * h / 150)):
            x, y, r, ang = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 16), rng.uniform(0, np.pi)
            v = rng.uniform(110, 210)
            colour = tuple(int(v * f) for f in (1, rng.uniform(0.65, 0.9), rng.uniform(0.35, 0.55)))
            draw.polygon(_blob(rng, x, y, r, r * rng.uniform(0.3, 0.5), ang, 0.15), fill=colour)
            draw.line([(x - r * np.cos(ang), y - r * np.sin(ang)), (x + r * np.cos(ang), y + r * np.sin(ang))],
                      fill=tuple(int(c * 0.7) for c in colour), width=1)
    for _ in range(rng.integers(0, 4)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.1) * min(w, h)
        kind = rng.integers(3)
        if kind == 0:      # a dark patch: a hole, a wet spot, a dark leaf
            draw.polygon(_blob(rng, x, y, r, r * rng.uniform(0.3, 1), rng.uniform(0, np.pi), 0.5),
                         fill=_body_colour(rng))
        elif kind == 1:    # a dark stick
            ang = rng.uniform(0, np.pi)
            dx, dy = 2 * r * np.cos(ang), 2 * r * np.sin(ang)
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=_body_colour(rng), width=max(2, int(r / 3)))
        else:              # an orange or cream fleck: a berry, a petal, a bright leaf
            draw.polygon(_blob(rng, x, y, r / 2, r / 3, rng.uniform(0, np.pi), 0.6), fill=_accent_colour(rng))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8))), np.float32)


# ---------------------------------------------------------------- newts

def _body_colour(rng):
    """Dark brown/olive/grey skin, the same family for both species."""
    v = rng.uniform(20, 50)
    return tuple(int(v * f) for f in (rng.uniform(0.9, 1.2), rng.uniform(0.8, 1.05), rng.uniform(0.6, 0.9)))


def _accent_colour(rng):
    """Orange-red .. yellow-cream, the same range for both species."""
    t = rng.random()
    c = (1 - t) * np.array([215, 75, 35]) + t * np.array([235, 205, 120])
    return tuple(int(v) for v in c * rng.uniform(0.85, 1.05))


# Half-width along the body (0 = snout, 1 = tail tip), as a fraction of the widest part.
_PROFILE_S = [0.0, 0.03, 0.08, 0.14, 0.2, 0.35, 0.5, 0.6, 0.8, 1.0]
_PROFILE_R = [0.35, 0.75, 0.85, 0.7, 0.9, 1.0, 0.95, 0.7, 0.35, 0.05]


class _Newt:
    """Geometry of one newt: a smooth centre line with a width profile, plus legs."""

    def __init__(self, rng, w, h):
        short = min(w, h)
        self.length = rng.uniform(0.4, 0.9) * short
        self.half_width = self.length * rng.uniform(0.08, 0.1)
        s = np.linspace(0, 1, 64)
        # Heading = start angle + a couple of slow sine bends: an S or C pose.
        heading = rng.uniform(0, 2 * np.pi) + sum(
            rng.uniform(-1, 1) * np.sin(np.pi * k * s + rng.uniform(0, 2 * np.pi)) for k in (1, 2))
        step = self.length / (len(s) - 1)
        pts = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * step, 0)
        lo, hi = pts.min(0), pts.max(0)
        room = np.maximum(np.array([w, h]) - (hi - lo), 0)
        self.pts = pts - lo + rng.uniform(0, 1, 2) * room  # keep the body inside the image
        self.normal = np.stack([-np.sin(heading), np.cos(heading)], 1)
        self.tangent = np.stack([np.cos(heading), np.sin(heading)], 1)
        self.r = np.interp(s, _PROFILE_S, _PROFILE_R) * self.half_width
        self.s = s
        self.legs = self._legs(rng)
        self.mask = self._draw(w, h)

    def at(self, s):
        i = min(int(round(s * (len(self.s) - 1))), len(self.s) - 1)
        return self.pts[i], self.tangent[i], self.normal[i], self.r[i]

    def _legs(self, rng):
        """Four legs: a thigh out sideways, a foot bent toward the tail or head."""
        legs = []
        for s0, forward in ((0.2, 1), (0.5, -1)):
            for side in (-1, 1):
                p, t, n, r = self.at(s0 + rng.uniform(-0.02, 0.02))
                out = side * n * rng.uniform(0.8, 1.2) - forward * t * rng.uniform(-0.3, 0.5)
                knee = p + side * n * r * 0.5 + out * self.half_width * rng.uniform(1.4, 2.0)
                foot = knee + (forward * t * rng.uniform(-0.6, 0.8) + side * n * 0.5) * self.half_width * 1.2
                legs.append((p, knee, foot))
        return legs

    def _draw(self, w, h):
        im = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(im)
        for (x, y), r in zip(self.pts, self.r):
            r = max(r, 0.6)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
        lw = max(2, int(round(self.half_width * 0.7)))
        for p, knee, foot in self.legs:
            draw.line([tuple(p), tuple(knee), tuple(foot)], fill=1, width=lw, joint="curve")
            fr = lw * 0.8
            draw.ellipse([foot[0] - fr, foot[1] - fr, foot[0] + fr, foot[1] + fr], fill=1)
        return np.asarray(im, bool)


def _stamp(acc, polygon):
    """Fill a polygon [(x, y), ...] into the bool array acc, in place."""
    pts = np.asarray(polygon)
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    im = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(im).polygon([(x - x0, y - y0) for x, y in pts], fill=1)
    h, w = acc.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)   # clip to acc
    if cx0 < cx1 and cy0 < cy1:
        acc[cy0:cy1, cx0:cx1] |= np.asarray(im, bool)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def _marks(rng, region, kind, unit, coverage, centres):
    """Where the accent colour goes: [H,W] bool inside region.

    Marks gather around a few centres (x, y, angle) until they cover the given
    fraction of the region; the rest stays plain dark skin. Only the make-up of
    the marks differs: kind 1 (akahara) draws solid blotches stretched along
    `angle`, kind 2 (madara) small round spots, `unit` (half the body width) sets
    their size.
    """
    acc = np.zeros_like(region)
    todo = coverage * region.sum()
    for i in range(400):
        x, y, angle = centres[i % len(centres)]
        t, n = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        spread = unit * (1 + i / 40)   # patches grow along the body until the coverage is met
        if kind == 1:
            c = (x, y) + t * spread * rng.uniform(-1, 1) + n * unit * rng.uniform(-0.5, 0.5)
            mark = _blob(rng, *c, unit * rng.uniform(0.8, 1.6), unit * rng.uniform(0.5, 0.9), angle, 0.5)
        else:
            c = (x, y) + t * spread * rng.normal(0, 1.2) + n * unit * rng.uniform(-1, 1)
            rad = max(0.8, unit * rng.uniform(0.2, 0.35))
            near = acc[max(0, int(c[1] - 2 * rad)):int(c[1] + 2 * rad) + 1,
                       max(0, int(c[0] - 2 * rad)):int(c[0] + 2 * rad) + 1]
            if near.any():
                continue   # keep spots apart: a spot never touches another one
            mark = _blob(rng, *c, rad, rad, 0, 0.2, 8)
        _stamp(acc, mark)
        if (acc & region).sum() >= todo:
            break
    return acc & region


def _skin(rng, img, region, kind, unit, centres):
    """Paint dark skin with accent marks over region of img (in place).

    Works on the region's bounding box only, which keeps generation fast.
    """
    ys, xs = np.nonzero(region)
    pad = int(2 * unit) + 2
    y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
    y1, x1 = ys.max() + pad + 1, xs.max() + pad + 1
    region, img = region[y0:y1, x0:x1], img[y0:y1, x0:x1]   # views: painting img paints the image
    centres = [(x - x0, y - y0, a) for x, y, a in centres]
    m = Image.fromarray(region.astype(np.uint8) * 255)
    dx, dy = rng.uniform(-0.4, 0.4, 2) * unit
    shadow = np.asarray(m.transform(m.size, Image.AFFINE, (1, 0, -dx, 0, 1, -dy))
                        .filter(ImageFilter.GaussianBlur(unit * 0.6)), np.float32) / 255
    img *= 1 - 0.3 * shadow[..., None]
    # Rounded body: brighter along the middle, darker at the edges; fine skin grain.
    shade = np.asarray(m.filter(ImageFilter.GaussianBlur(max(1, unit * 0.5))), np.float32) / 255
    h, w = region.shape
    shade = (0.65 + 0.5 * shade) * (0.8 + 0.4 * _noise(rng, h, w, 1))   # warty grain
    acc = _marks(rng, region, kind, unit, rng.uniform(0.1, 0.25), centres)
    skin = np.where(acc[..., None], _accent_colour(rng), _body_colour(rng)) * shade[..., None]
    img[region] = skin[region]


def _paint(rng, img, newt, species):
    """Draw one newt (shadow, shaded skin, one to three patches of marks, eyes) onto img."""
    centres = []
    for s in rng.uniform(0.1, 0.8, rng.integers(1, 4)):
        p, t, n, r = newt.at(s)
        c = p + n * r * rng.uniform(-0.5, 0.5)
        centres.append((c[0], c[1], np.arctan2(t[1], t[0])))
    _skin(rng, img, newt.mask, species, newt.half_width, centres)
    p, t, n, r = newt.at(0.06)
    for side in (-1, 1):
        e = p + side * n * r * 0.7
        er = max(0.8, newt.half_width * 0.2)
        img[max(0, int(e[1] - er)):int(e[1] + er) + 1, max(0, int(e[0] - er)):int(e[0] + er) + 1] *= 0.3


def _stones(rng, img):
    """Distractors: roundish stones or bark with newt-like skin and marks, no newt shape."""
    h, w, _ = img.shape
    for _ in range(rng.integers(0, 3)):
        unit = rng.uniform(0.03, 0.06) * min(w, h)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        im = Image.new("L", (w, h), 0)
        ImageDraw.Draw(im).polygon(_blob(rng, x, y, unit * rng.uniform(1.5, 3), unit * rng.uniform(1.2, 2),
                                         rng.uniform(0, np.pi), 0.4), fill=1)
        region = np.asarray(im, bool)
        if region.any():
            centres = [(x + rng.normal(0, unit), y + rng.normal(0, unit), rng.uniform(0, np.pi)) for _ in range(2)]
            _skin(rng, img, region, rng.integers(1, 3), unit, centres)


def _lighting(rng, img):
    """Brightness, contrast, colour temperature, a gradient or vignette, blur, noise."""
    h, w, _ = img.shape
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.75, 1.2) + mean * rng.uniform(0.7, 1.3)
    warm = rng.uniform(-0.12, 0.12)
    img *= np.array([1 + warm, 1, 1 - warm], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5))
        img *= (1 + rng.uniform(0, 0.6) * ramp)[..., None]
    else:
        d2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
        img *= (1 - rng.uniform(0, 0.5) * d2)[..., None]
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    img = np.asarray(im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0))), np.float32)
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_sample(rng, width, height, species=None):
    """One image: uint8 RGB [H,W,3] and uint8 class-index mask [H,W] (0, 1, 2).

    species: the species (1 akahara, 2 madara) of the largest newt, random if None.
    """
    img = _background(rng, width, height)
    _stones(rng, img)
    newts = [_Newt(rng, width, height)]
    if rng.random() < 0.4:
        # A second newt: the placement, of a few tries, that overlaps the first least.
        tries = [_Newt(rng, width, height) for _ in range(6)]
        newts.append(min(tries, key=lambda nt: (nt.mask & newts[0].mask).sum() / nt.mask.sum()))
    # Species are drawn after the geometry, so size says nothing about species.
    visible = [n.mask & ~sum(later.mask for later in newts[i + 1:]).astype(bool) if i + 1 < len(newts)
               else n.mask for i, n in enumerate(newts)]
    largest = int(np.argmax([v.sum() for v in visible]))
    kinds = rng.integers(1, 3, len(newts))
    kinds[largest] = species if species is not None else rng.integers(1, 3)
    mask = np.zeros((height, width), np.uint8)
    for newt, kind in zip(newts, kinds):
        _paint(rng, img, newt, kind)
        mask[newt.mask] = kind
    return _lighting(rng, img), mask


# ---------------------------------------------------------------- files

def generate(root, seed=0, n_train=96, n_test=16, min_side=96, max_side=192):
    """Write the dataset under root (created) and its synth.json manifest; return root.

    Half the images of each split have an akahara as their largest newt, half a
    madara. Image i of a split uses the generator default_rng([seed, split, i]).
    """
    root = Path(root)
    counts = {}
    for split_id, (split, n) in enumerate(zip(SPLITS, (n_train, n_test))):
        counts[split] = {name: 0 for name in CLASSES[1:]}
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            w, h = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
            species = 1 + i % 2
            img, mask = render_sample(rng, w, h, species)
            name = CLASSES[species]
            counts[split][name] += 1
            stem = f"{name}_{counts[split][name]:04d}"
            for sub, ext in (("images", ".jpg"), ("seg_images", ".png")):
                (root / split / sub / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / split / "images" / name / (stem + ".jpg"), quality=JPEG_QUALITY)
            pal = Image.fromarray(mask, "P")
            pal.putpalette([v for c in PALETTE for v in c])
            pal.save(root / split / "seg_images" / name / (stem + ".png"))
    manifest = {"version": VERSION, "seed": seed, "counts": counts,
                "min_side": min_side, "max_side": max_side}
    (root / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return root


def _version(root):
    try:
        return json.loads((root / "synth.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def ensure_dataset(root=None):
    """Return root (default DEFAULT_ROOT), generating the dataset there first if it
    is missing or was made by another VERSION.

    Generation goes to a temporary sibling folder that is then renamed into place,
    so an interrupted run or two processes starting at once never leave a
    half-written dataset: the loser of a race finds the winner's copy and uses it.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    if _version(root) == VERSION:
        return root
    if root.exists() and not (root / "synth.json").exists() and any(root.iterdir()):
        raise UserError(f"{root} exists but holds no synthetic dataset (no synth.json): "
                        "delete it or pass another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    tmp.chmod(0o755)   # mkdtemp makes it private; the dataset is not
    try:
        generate(tmp)
        if root.exists() and _version(root) != VERSION:
            # An empty folder, or an old version: move it aside, then delete it.
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
            os.replace(root, old / "data")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if _version(root) != VERSION:  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
