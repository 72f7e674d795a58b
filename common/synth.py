"""The embedded dataset: synthetic photos of two newt species, with masks.

The original exercise trains on photos of Japanese newts ("imori"): the
red-bellied newt (akahara) and the spotted newt (madara). The suite cannot ship
photos, so this module draws look-alikes, deterministically from a seed, the
first time they are needed (`ensure_dataset`), in the exercise's layout:

    root/{train,test}/images/{akahara,madara}/<class>_NNNN.jpg
    root/{train,test}/seg_images/{akahara,madara}/<class>_NNNN.png  (same stem)

Masks are palette ("P") PNGs like the real ones: index 0 background,
1 akahara, 2 madara. The class folder names the species of the largest newt.
Images are JPEGs of varied size and aspect ratio, so readers must resize.

What makes it worth segmenting:
- Newt or not: dark, rounded, grainy skin on a lighter textured ground (soil,
  gravel, leaf litter, moss). A 13x13 window mostly suffices, except at the
  distractors: dark patches and sticks, orange/cream flecks, and stones with
  newt-like skin and marks but no newt shape.
- Which species: both share one distribution of body colour, mark colour,
  size and pose. Only the make-up of the marks differs: akahara has one or two
  solid bands across the back, madara separate small spots. The marks sit in
  one or two patches along the body; the rest of the body is plain dark skin
  that looks the same in both species, so a small window there cannot tell
  which newt it is on. A network that sees the whole newt can carry the
  species from the patches to the rest of the body. Measured (PyTorch, 64x64,
  seed 0, 1000 iterations): step 2's 13x13 window labels 75% of the newt
  pixels it finds with the right species, UNet 96% (tests/test_learning.py).
  (The real akahara is red-bellied and the madara spotted; the patterns here
  are stand-ins with a known answer, not a portrait.)
- One or two newts per image, each of either species; lighting, blur, sensor
  noise and JPEG change per image.

Byte-for-byte deterministic for a seed (with a given NumPy and Pillow): image i
of a split draws everything from numpy.random.default_rng([seed, split, i]).
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

VERSION = 3  # bump when the generated images change
DEFAULT_ROOT = DATA / "synthetic-newts"
CLASSES = ("background", "akahara", "madara")
PALETTE = [(0, 0, 0), (128, 0, 0), (0, 128, 0)]  # as the real dataset's palette PNGs
SPLITS = ("train", "test")
JPEG_QUALITY = 90


# ---------------------------------------------------------------- drawing helpers

def _noise(rng, h, w, cell):
    """Smooth value noise in [0, 1]: a coarse random grid, bicubically enlarged."""
    grid = Image.fromarray((rng.random((h // cell + 2, w // cell + 2)) * 255).astype(np.uint8))
    return np.asarray(grid.resize((w, h), Image.BICUBIC), np.float32) / 255


def _fractal(rng, h, w, cells=(32, 12, 4)):
    """A few octaves of value noise, rescaled to [0, 1]."""
    total = sum(_noise(rng, h, w, c) / (i + 1) for i, c in enumerate(cells))
    return (total - total.min()) / (np.ptp(total) + 1e-6)


def _blob(rng, cx, cy, rx, ry, angle, rough=0.35, n=14):
    """Polygon [(x, y)] of an irregular ellipse around (cx, cy), long axis at angle."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + rough * (rng.random(n) - 0.5)
    x, y = rx * r * np.cos(a), ry * r * np.sin(a)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip(cx + c * x - s * y, cy + s * x + c * y))


def _stamp(acc, polygon):
    """Fill a polygon into the bool array acc, in place (drawn in its bounding box only)."""
    pts = np.asarray(polygon)
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    im = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(im).polygon([(x - x0, y - y0) for x, y in pts], fill=1)
    h, w = acc.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 < cx1 and cy0 < cy1:
        acc[cy0:cy1, cx0:cx1] |= np.asarray(im, bool)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def _body_colour(rng):
    """Dark brown/olive/grey skin: one family for both species (and dark distractors)."""
    v = rng.uniform(20, 50)
    return tuple(int(v * f) for f in (rng.uniform(0.9, 1.2), rng.uniform(0.8, 1.05), rng.uniform(0.6, 0.9)))


def _mark_colour(rng):
    """Orange-red .. yellow-cream: one range for both species (and bright distractors)."""
    t = rng.random()
    c = (1 - t) * np.array([215, 75, 35]) + t * np.array([235, 205, 120])
    return tuple(int(v) for v in c * rng.uniform(0.85, 1.05))


# ---------------------------------------------------------------- the ground

def _background(rng, w, h):
    """Ground texture plus flat distractors: float32 RGB [H,W,3], mostly lighter than newts."""
    kind = rng.choice(["soil", "gravel", "litter", "moss"])
    lo, hi = ((60, 90, 30), (100, 130, 60)), ((110, 150, 50), (170, 210, 110))   # moss greens
    if kind != "moss":
        lo, hi = ((90, 75, 55), (140, 125, 100)), ((140, 125, 100), (220, 205, 180))
    c0, c1 = (np.array(rng.integers(*c), np.float32) for c in (lo, hi))
    t = 0.6 * _fractal(rng, h, w, (16, 3, 2)) + 0.4 * _noise(rng, h, w, 1) if kind == "moss" else _fractal(rng, h, w)
    im = Image.fromarray((c0 + t[..., None] * (c1 - c0)).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    if kind == "gravel":
        for _ in range(w * h // 50):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1.5, 6)
            grey = rng.integers(90, 220)
            draw.ellipse([x - r, y - r * rng.uniform(0.5, 1), x + r, y + r * rng.uniform(0.5, 1)],
                         fill=tuple(int(grey + d) for d in rng.integers(-15, 15, 3)))
    elif kind == "litter":
        for _ in range(w * h // 150):
            x, y, r, a = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 16), rng.uniform(0, np.pi)
            v = rng.uniform(110, 210)
            colour = tuple(int(v * f) for f in (1, rng.uniform(0.65, 0.9), rng.uniform(0.35, 0.55)))
            draw.polygon(_blob(rng, x, y, r, r * rng.uniform(0.3, 0.5), a, 0.15), fill=colour)
            dx, dy = r * np.cos(a), r * np.sin(a)
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=tuple(int(c * 0.7) for c in colour))
    for _ in range(rng.integers(0, 4)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.1) * min(w, h)
        kind, a = rng.integers(3), rng.uniform(0, np.pi)
        if kind == 0:      # a dark patch: a hole, a wet spot, a dark leaf
            draw.polygon(_blob(rng, x, y, r, r * rng.uniform(0.3, 1), a, 0.5), fill=_body_colour(rng))
        elif kind == 1:    # a dark stick
            dx, dy = 2 * r * np.cos(a), 2 * r * np.sin(a)
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=_body_colour(rng), width=max(2, int(r / 3)))
        else:              # an orange or cream fleck: a berry, a petal
            draw.polygon(_blob(rng, x, y, r / 2, r / 3, a, 0.6), fill=_mark_colour(rng))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8))), np.float32)


# ---------------------------------------------------------------- newts

# Half-width along the body (0 = snout, 1 = tail tip), as a fraction of the widest part.
_PROFILE_S = [0.0, 0.03, 0.08, 0.14, 0.2, 0.35, 0.5, 0.6, 0.8, 1.0]
_PROFILE_R = [0.35, 0.75, 0.85, 0.7, 0.9, 1.0, 0.95, 0.7, 0.35, 0.05]


class _Newt:
    """Geometry of one newt: a smooth centre line (64 points, snout first) with
    a width profile and four legs; `mask` is its [H,W] bool silhouette."""

    def __init__(self, rng, w, h):
        self.length = rng.uniform(0.45, 0.9) * min(w, h)
        self.half_width = self.length * rng.uniform(0.1, 0.12)
        s = np.linspace(0, 1, 64)
        # Heading = start angle + two slow sine bends: an S or a C pose.
        self.heading = rng.uniform(0, 2 * np.pi) + sum(
            rng.uniform(-1, 1) * np.sin(np.pi * k * s + rng.uniform(0, 2 * np.pi)) for k in (1, 2))
        self.tangent = np.stack([np.cos(self.heading), np.sin(self.heading)], 1)
        self.normal = self.tangent @ [[0, 1], [-1, 0]]
        pts = np.cumsum(self.tangent * self.length / (len(s) - 1), 0)
        room = np.maximum([w, h] - np.ptp(pts, 0), 0)       # place the whole body in the image
        self.pts = pts - pts.min(0) + rng.uniform(0, 1, 2) * room
        self.r = np.interp(s, _PROFILE_S, _PROFILE_R) * self.half_width
        self.legs = [self._leg(rng, s0, forward, side) for s0, forward in ((0.2, 1), (0.5, -1)) for side in (-1, 1)]
        im = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(im)
        for (x, y), r in zip(self.pts, np.maximum(self.r, 0.6)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
        width = max(2, int(round(self.half_width * 0.7)))
        for hip, knee, foot in self.legs:
            draw.line([hip, knee, foot], fill=1, width=width, joint="curve")
            draw.ellipse([foot[0] - 0.8 * width, foot[1] - 0.8 * width, foot[0] + 0.8 * width, foot[1] + 0.8 * width], fill=1)
        self.mask = np.asarray(im, bool)

    def at(self, s):
        """Point, tangent, normal and half-width at s in [0, 1] (0 = snout)."""
        i = int(round(s * (len(self.pts) - 1)))
        return self.pts[i], self.tangent[i], self.normal[i], self.r[i]

    def _leg(self, rng, s0, forward, side):
        """(hip, knee, foot) of a leg: out sideways, the foot bent toward head or tail."""
        p, t, n, r = self.at(s0 + rng.uniform(-0.02, 0.02))
        out = side * n * rng.uniform(0.8, 1.2) - forward * t * rng.uniform(-0.3, 0.5)
        knee = p + side * n * r * 0.5 + out * self.half_width * rng.uniform(1.4, 2.0)
        foot = knee + (forward * t * rng.uniform(-0.6, 0.8) + side * n * 0.5) * self.half_width * 1.2
        return tuple(p), tuple(knee), tuple(foot)


def _marks(rng, region, kind, unit, track, patches):
    """Where the mark colour goes: [H,W] bool inside region.

    `patches` patches on `track` (the body's middle line as [(x, y, angle)])
    hold the species' marks: kind 1 (akahara) one or two solid bands across the
    back, edge to edge; kind 2 (madara) separate small round spots that never
    touch, over about 6 unit. unit = half the body width. Both kinds cover
    about the same area (tests/test_synth.py checks the colours match); outside
    the patches the skin is plain and looks the same in both species.
    """
    acc = np.zeros_like(region)
    n = len(track)
    step = np.hypot(track[1][0] - track[0][0], track[1][1] - track[0][1]) + 1e-6   # pixels per track point
    for centre in rng.integers(n // 8, n * 6 // 8, patches):
        if kind == 1:
            bands = rng.integers(1, 3)
            for k in range(bands):
                j = min(max(int(centre + (k - (bands - 1) / 2) * 2.2 * unit / step), 0), n - 1)
                x, y, angle = track[j]
                # Longer across the body than the body is wide: `& region` trims it to the edges.
                _stamp(acc, _blob(rng, x, y, unit * rng.uniform(0.3, 0.5), unit * 1.8, angle, 0.3))
            continue
        for _ in range(60):
            j = min(max(int(centre + rng.uniform(-3, 3) * unit / step), 0), n - 1)
            x, y, angle = track[j]
            off = unit * rng.uniform(-0.8, 0.8)
            cx, cy = x - off * np.sin(angle), y + off * np.cos(angle)
            r = max(0.8, unit * rng.uniform(0.3, 0.42))
            keep = 1.3 * r    # clear space around the spot's centre
            if not acc[max(0, int(cy - keep)):int(cy + keep) + 1, max(0, int(cx - keep)):int(cx + keep) + 1].any():
                _stamp(acc, _blob(rng, cx, cy, r, r, angle, 0.2, 8))
    return acc & region


def _skin(rng, img, region, kind, unit, track, patches):
    """Paint a shadow, then shaded grainy dark skin with marks over region of img.

    Works in place on the region's bounding box (numpy views), to stay fast.
    """
    ys, xs = np.nonzero(region)
    pad = int(2 * unit) + 2
    y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
    region, img = region[y0:ys.max() + pad + 1, x0:xs.max() + pad + 1], img[y0:ys.max() + pad + 1, x0:xs.max() + pad + 1]
    track = [(x - x0, y - y0, a) for x, y, a in track]
    m = Image.fromarray(region.astype(np.uint8) * 255)
    dx, dy = rng.uniform(-0.4, 0.4, 2) * unit
    shadow = m.transform(m.size, Image.AFFINE, (1, 0, -dx, 0, 1, -dy)).filter(ImageFilter.GaussianBlur(unit * 0.6))
    img *= 1 - 0.3 * np.asarray(shadow, np.float32)[..., None] / 255
    # Rounded body: brighter along the middle, darker at the edges; warty grain.
    shade = np.asarray(m.filter(ImageFilter.GaussianBlur(max(1, unit * 0.5))), np.float32) / 255
    shade = (0.65 + 0.5 * shade) * (0.8 + 0.4 * _noise(rng, *region.shape, 1))
    body, mark = _body_colour(rng), _mark_colour(rng)
    acc = _marks(rng, region, kind, unit, track, patches)    # last: the only draws that depend on kind
    skin = np.where(acc[..., None], mark, body) * shade[..., None]
    img[region] = skin[region]


def _paint_newt(rng, img, newt, species):
    track = [(x, y, a) for (x, y), a in zip(newt.pts, newt.heading)]
    _skin(rng, img, newt.mask, species, newt.half_width, track, rng.integers(1, 3))
    p, t, n, r = newt.at(0.06)
    er = max(0.8, newt.half_width * 0.2)
    for x, y in (p + n * r * 0.7, p - n * r * 0.7):   # eyes
        img[max(0, int(y - er)):int(y + er) + 1, max(0, int(x - er)):int(x + er) + 1] *= 0.3


def _paint_stone(rng, img):
    """A distractor: a roundish stone or piece of bark with newt skin and marks."""
    h, w, _ = img.shape
    unit = rng.uniform(0.03, 0.06) * min(w, h)
    x, y, a = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, np.pi)
    region = np.zeros((h, w), bool)
    _stamp(region, _blob(rng, x, y, unit * rng.uniform(1.5, 3), unit * rng.uniform(1.2, 2), a, 0.4))
    if region.any():
        track = [(x + d * np.cos(a), y + d * np.sin(a), a) for d in np.linspace(-2 * unit, 2 * unit, 16)]
        _skin(rng, img, region, rng.integers(1, 3), unit, track, 2)


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
        img *= (1 + rng.uniform(0, 0.6) * (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5)))[..., None]
    else:
        img *= (1 - rng.uniform(0, 0.5) * 2 * ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2))[..., None]
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    img = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(1, 6), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_sample(rng, width, height, species=None):
    """One image: uint8 RGB [H,W,3] and uint8 class-index mask [H,W] (0, 1, 2).

    species: the species (1 akahara, 2 madara) of the largest newt; random if None.
    Ground, shapes, each newt's skin and the lighting draw from separate child
    generators, so the same rng with the other species gives the same picture
    except for that newt's marks (tests use this to compare the species fairly).
    """
    ground, shapes, skins, light = rng.spawn(4)
    img = _background(ground, width, height)
    for stone in ground.spawn(ground.integers(0, 3)):
        _paint_stone(stone, img)
    newts = [_Newt(shapes, width, height)]
    if shapes.random() < 0.4:
        # A second newt, drawn on top: of a few placements, the one that overlaps the first least.
        newts.append(min((_Newt(shapes, width, height) for _ in range(6)),
                         key=lambda nt: (nt.mask & newts[0].mask).sum() / nt.mask.sum()))
    # Species are chosen after the geometry, so size and pose say nothing about them.
    visible = [newts[0].mask & ~newts[-1].mask if len(newts) == 2 else newts[0].mask] + [n.mask for n in newts[1:]]
    kinds = shapes.integers(1, 3, len(newts))
    kinds[int(np.argmax([v.sum() for v in visible]))] = species if species is not None else shapes.integers(1, 3)
    mask = np.zeros((height, width), np.uint8)
    for newt, kind, skin in zip(newts, kinds, skins.spawn(len(newts))):
        _paint_newt(skin, img, newt, kind)
        mask[newt.mask] = kind
    return _lighting(light, img), mask


# ---------------------------------------------------------------- files

def generate(root, seed=0, n_train=96, n_test=16, min_side=96, max_side=192):
    """Write the dataset under root (created if needed) and its synth.json; return root.

    In each split, images alternate between an akahara and a madara as the
    largest newt, so both folders fill equally. Sizes are drawn independently
    for width and height in [min_side, max_side].
    """
    root = Path(root)
    counts = {}
    for split_id, (split, n) in enumerate(zip(SPLITS, (n_train, n_test))):
        counts[split] = {name: 0 for name in CLASSES[1:]}
        for name in CLASSES[1:]:
            for sub in ("images", "seg_images"):
                (root / split / sub / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            w, h = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
            species = 1 + i % 2
            img, mask = render_sample(rng, w, h, species)
            name = CLASSES[species]
            counts[split][name] += 1
            stem = f"{name}_{counts[split][name]:04d}"
            Image.fromarray(img).save(root / split / "images" / name / f"{stem}.jpg", quality=JPEG_QUALITY)
            png = Image.fromarray(mask, "P")
            png.putpalette([v for colour in PALETTE for v in colour])
            png.save(root / split / "seg_images" / name / f"{stem}.png")
    manifest = {"version": VERSION, "seed": seed, "min_side": min_side, "max_side": max_side, "counts": counts}
    (root / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")   # written last
    return root


def version_for(data):
    """What runs record as their dataset version: VERSION for the embedded dataset
    (data None, the default), None for a user's --data (which has no version)."""
    return VERSION if data is None else None


def _version(root):
    try:
        return json.loads((root / "synth.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def ensure_dataset(root=None):
    """Return root (default DEFAULT_ROOT), generating the dataset there first if it
    is missing or was made by another VERSION (per its synth.json).

    Generation goes to a temporary sibling folder that is then renamed into
    place, so an interrupted run never leaves a half-written dataset, and of two
    processes starting at once the slower one finds the other's copy and uses it.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    if _version(root) == VERSION:
        return root
    if root.is_dir() and any(root.iterdir()) and not (root / "synth.json").exists():
        raise UserError(f"{root} is not empty and holds no synthetic dataset (no synth.json): "
                        "delete it or choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    tmp.chmod(0o755)   # mkdtemp makes it private; the dataset is not
    try:
        generate(tmp)
        if root.exists() and _version(root) != VERSION:
            # Empty, or another version (ours: it has a synth.json): move it aside, delete it.
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
            os.replace(root, old / root.name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if _version(root) != VERSION:   # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
