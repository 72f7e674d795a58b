"""The embedded synthetic newt dataset (common/synth.py): layout, masks,
determinism, the on-disk cache, and that no trivial colour cue gives the
species away."""
import json

import numpy as np
import pytest
from PIL import Image

from common import synth
from common.errors import UserError

SPECIES = synth.CLASSES[1:]
SMALL = dict(n_train=6, n_test=4, min_side=64, max_side=112)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("synth") / "newts", seed=3, **SMALL)


def pairs(root, split):
    """[(species, image path, mask path)] of one split, checking the stems pair up."""
    out = []
    for name in SPECIES:
        images = sorted((root / split / "images" / name).glob("*.jpg"))
        masks = sorted((root / split / "seg_images" / name).glob("*.png"))
        assert [p.stem for p in images] == [p.stem for p in masks]
        assert all(p.stem.startswith(name + "_") for p in images)
        out += [(name, i, m) for i, m in zip(images, masks)]
    return out


def test_layout_counts_and_manifest(small):
    manifest = json.loads((small / "synth.json").read_text())
    assert manifest["version"] == synth.VERSION and manifest["seed"] == 3
    for split, n in (("train", SMALL["n_train"]), ("test", SMALL["n_test"])):
        found = pairs(small, split)
        assert len(found) == n
        assert {name: sum(f[0] == name for f in found) for name in SPECIES} == manifest["counts"][split]
    assert sorted(p.name for p in small.iterdir()) == ["synth.json", "test", "train"]


def test_images_and_palette_masks(small):
    seen = set()
    for name, image_path, mask_path in pairs(small, "train") + pairs(small, "test"):
        image, mask = Image.open(image_path), Image.open(mask_path)
        assert image.format == "JPEG" and image.mode == "RGB"
        assert mask.mode == "P" and mask.size == image.size
        assert all(SMALL["min_side"] <= s <= SMALL["max_side"] for s in image.size)
        assert mask.getpalette()[:9] == [v for colour in synth.PALETTE for v in colour]
        m = np.asarray(mask)
        values, counts = np.unique(m, return_counts=True)
        assert set(values) <= {0, 1, 2}
        seen |= set(values.tolist())
        # The folder names the species of the largest newt, so that species has
        # at least as many pixels as the other one.
        own = synth.CLASSES.index(name)
        assert (m == own).sum() > 0 and (m == own).sum() >= (m == 3 - own).sum()
    assert seen == {0, 1, 2}


def test_varied_sizes(small):
    sizes = {Image.open(p).size for _, p, _ in pairs(small, "train")}
    assert len(sizes) > 1 and any(w != h for w, h in sizes)


def test_both_species_in_both_splits(small):
    for split in ("train", "test"):
        found = pairs(small, split)
        assert {f[0] for f in found} == set(SPECIES)
        classes = set().union(*(np.unique(np.asarray(Image.open(m))).tolist() for _, _, m in found))
        assert {1, 2} <= classes


def test_deterministic(tmp_path, small):
    again = synth.generate(tmp_path / "again", seed=3, **SMALL)
    files = sorted(p.relative_to(small) for p in small.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert (small / f).read_bytes() == (again / f).read_bytes(), f
    other = synth.generate(tmp_path / "other", seed=4, **SMALL)
    f = files[0]
    assert (other / f).read_bytes() != (small / f).read_bytes()


def test_render_sample_contract():
    image, mask = synth.render_sample(np.random.default_rng(0), 120, 80)
    assert image.shape == (80, 120, 3) and image.dtype == np.uint8
    assert mask.shape == (80, 120) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 2} and (mask > 0).any()
    again = synth.render_sample(np.random.default_rng(0), 120, 80)
    assert np.array_equal(image, again[0]) and np.array_equal(mask, again[1])


@pytest.fixture
def fast_generate(monkeypatch):
    """ensure_dataset with a tiny dataset, counting the generations."""
    calls = []
    real = synth.generate

    def tiny(root):
        calls.append(root)
        return real(root, n_train=2, n_test=2, min_side=48, max_side=64)
    monkeypatch.setattr(synth, "generate", tiny)
    return calls


def test_ensure_dataset_generates_then_reuses(tmp_path, fast_generate):
    root = tmp_path / "newts"
    assert synth.ensure_dataset(root) == root
    assert len(fast_generate) == 1 and len(pairs(root, "train")) == 2
    (root / "marker").write_text("kept")
    assert synth.ensure_dataset(root) == root
    assert len(fast_generate) == 1 and (root / "marker").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["newts"]   # no temporary folders left


def test_ensure_dataset_regenerates_other_version(tmp_path, fast_generate):
    root = tmp_path / "newts"
    synth.ensure_dataset(root)
    manifest = json.loads((root / "synth.json").read_text())
    (root / "synth.json").write_text(json.dumps(dict(manifest, version=synth.VERSION - 1)))
    (root / "marker").write_text("old")
    synth.ensure_dataset(root)
    assert len(fast_generate) == 2 and not (root / "marker").exists()
    assert json.loads((root / "synth.json").read_text())["version"] == synth.VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["newts"]


def test_ensure_dataset_keeps_foreign_folder(tmp_path, fast_generate):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "photo.jpg").write_text("not ours")
    with pytest.raises(UserError, match="synth.json"):
        synth.ensure_dataset(root)
    assert (root / "photo.jpg").exists() and not fast_generate


def paired_pixels(n=60, size=80):
    """RGB pixels [N, 3] of the same newts rendered once as akahara, once as madara.

    render_sample with the same generator and the other species changes only
    that newt's marks, so any difference here comes from the species alone.
    """
    akahara, madara = [], []
    for i in range(n):
        a_image, a_mask = synth.render_sample(np.random.default_rng([7, i]), size, size, species=1)
        m_image, m_mask = synth.render_sample(np.random.default_rng([7, i]), size, size, species=2)
        newt = a_mask != m_mask        # the largest newt: the only pixels whose label changed
        assert np.array_equal(a_mask > 0, m_mask > 0) and newt.any()
        akahara.append(a_image[newt].astype(np.float64))
        madara.append(m_image[newt].astype(np.float64))
    return np.concatenate(akahara), np.concatenate(madara)


def histogram(pixels):
    """Share of pixels in each of 8x8x8 colour bins."""
    return np.bincount((pixels // 32).astype(int) @ [64, 8, 1], minlength=512) / len(pixels)


def test_species_share_colours():
    """The species differ by the layout of their marks, not by colour.

    If akahara were redder, brighter or more marked than madara on average, a
    1x1 convolution could tell them apart and the lessons about receptive
    fields would show nothing. Measured: means within ~2 levels, histograms
    overlapping ~0.9; a red-vs-cream mark colour per species fails this test.
    """
    akahara, madara = paired_pixels()
    assert len(akahara) > 20000
    assert np.abs(akahara.mean(0) - madara.mean(0)).max() < 4, (akahara.mean(0), madara.mean(0))
    assert np.abs(akahara.std(0) - madara.std(0)).max() < 6, (akahara.std(0), madara.std(0))
    assert np.minimum(histogram(akahara), histogram(madara)).sum() > 0.85
