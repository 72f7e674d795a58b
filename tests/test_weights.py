import numpy as np
import pytest

from common.errors import UserError
from common.weights import (bilinear_kernel, check_compatible, init_weights, load_npz,
                            perturb, save_npz)


def test_round_trip_and_meta(tmp_path):
    w = {"a.weight": np.ones((2, 3, 3, 3), np.float32), "a.bias": np.zeros(2, np.float32)}
    save_npz(tmp_path / "w.npz", w, {"step": "06_unet"})
    got, meta = load_npz(tmp_path / "w.npz")
    assert meta == {"step": "06_unet"} and set(got) == set(w)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]   # no temporary left


def test_pickled_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="evil.npz"):
        load_npz(tmp_path / "evil.npz")


def test_truncated_and_missing_files(tmp_path):
    save_npz(tmp_path / "w.npz", {"a.bias": np.zeros(4, np.float32)})
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.npz"):
        load_npz(tmp_path / "cut.npz")
    with pytest.raises(UserError, match="no such weights file"):
        load_npz(tmp_path / "none.npz")


def test_check_compatible_lists_mismatches():
    exp = {"a.weight": np.zeros((4, 3, 3, 3)), "b.bias": np.zeros(4)}
    got = {"a.weight": np.zeros((8, 3, 3, 3)), "c.bias": np.zeros(4)}
    with pytest.raises(UserError) as e:
        check_compatible(exp, got, "f.npz", "06_unet", {"step": "03_nearest"})
    msg = str(e.value)
    assert "a.weight (8, 3, 3, 3) (expected (4, 3, 3, 3))" in msg
    assert "missing: b (1 tensors)" in msg and "unexpected: c (1 tensors)" in msg and "03_nearest" in msg
    check_compatible(exp, exp, "f.npz")


def test_init_weights_rules():
    w = init_weights({"c.weight": (64, 32, 3, 3), "c.bias": (64,), "bn.gamma": (8,),
                      "bn.var": (8,), "bn.mean": (8,), "bn.beta": (8,)}, seed=0)
    assert abs(w["c.weight"].std() - np.sqrt(2 / (32 * 9))) < 0.01   # He normal, fan_in
    assert not w["c.bias"].any() and (w["bn.gamma"] == 1).all() and (w["bn.var"] == 1).all()
    again = init_weights({"c.weight": (64, 32, 3, 3)}, seed=0)["c.weight"]
    other = init_weights({"c.weight": (64, 32, 3, 3)}, seed=1)["c.weight"]
    assert np.array_equal(again, w["c.weight"]) and not np.array_equal(other, again)
    with pytest.raises(ValueError):
        init_weights({"x.unknown": (2,)}, 0)


def test_perturb_moves_every_value_by_about_eps_and_keeps_zeros():
    w = init_weights({"c.weight": (64, 32, 3, 3), "c.bias": (64,)}, seed=0)
    p = perturb(w, 1e-7, seed=0)
    rel = np.abs(p["c.weight"].astype(np.float64) / w["c.weight"] - 1)
    assert rel.max() < 1e-6                            # a few float32 units in the last place
    assert 0.3 < np.mean(rel > 0) < 0.95               # about half move by one unit
    assert not p["c.bias"].any() and p["c.weight"].dtype == np.float32
    assert all(np.array_equal(p[k], perturb(w, 1e-7, seed=0)[k]) for k in p)   # deterministic
    assert not np.array_equal(p["c.weight"], perturb(w, 1e-7, seed=1)["c.weight"])


def test_bilinear_kernel_upsamples_a_ramp():
    k = bilinear_kernel(1, 1, 4)[0, 0]
    assert k.shape == (4, 4) and np.isclose(k.max(), 0.5625)
    assert np.allclose(k, k[::-1, ::-1])
