"""The measured table in docs/framework-differences.md still holds.

tools/measure_differences.py measures each framework difference with the
frameworks' defaults ("before") and with this suite's settings ("after").
Here every "after" must be within 1e-4 on outputs, 1e-5 relative on losses,
counts exact (ATOL, LOSS_RTOL there), and every default the page
says differs must still differ: if a framework changes a default, or the glue
stops harmonising it, this test fails and the page needs regenerating.
06_unet is built small (--depth 2 --width 8) to keep the test fast; the page
uses its defaults. Frameworks that are not installed are left out of each row.
"""
import importlib.util
import math

import pytest

from common import REPO
from helpers import require

SMALL_UNET = ("--depth", "2", "--width", "8")
pytestmark = pytest.mark.xdist_group("differences")   # one worker measures once, for all four tests


@pytest.fixture(scope="module")
def measured():
    require("pytorch")       # the reference
    spec = importlib.util.spec_from_file_location("measure_differences",
                                                  REPO / "tools" / "measure_differences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {row.difference: row for row in module.rows(unet_argv=SMALL_UNET)}


def numbers(values):
    return {k: v for k, v in values.items() if not isinstance(v, str)}


def test_every_row_is_measured(measured):
    assert len(measured) >= 15
    for row in measured.values():
        assert numbers(row.after), f"{row.difference}: nothing measured after"
        for label, v in numbers({**row.before, **row.after}).items():
            assert math.isfinite(v), f"{row.difference}: {label} = {v}"


def test_after_within_parity_tolerance(measured):
    for row in measured.values():
        for label, v in numbers(row.after).items():
            assert abs(v - row.target) <= row.tol, (
                f"{row.difference}: {label} is {v:.3g} after harmonising "
                f"(target {row.target:.3g}, tolerance {row.tol:g})")


def test_defaults_still_differ(measured):
    for row in measured.values():
        assert row.differs or all(abs(v - row.target) <= row.tol for v in numbers(row.before).values()), (
            f"{row.difference}: a default now differs; list it in Row.differs and on the page")
        for label in row.differs:
            v = row.before[label]
            assert not isinstance(v, str)
            assert abs(v - row.target) > row.floor, (
                f"{row.difference}: {label}'s default gives {v:.3g}, no longer different from "
                f"{row.target:.3g}; update docs/framework-differences.md")


def test_expected_defaults_are_measured(measured):
    """The rows name the frameworks the page says differ (when they are installed)."""
    from common.frameworks import installed
    expect = {"BatchNorm epsilon": ("tensorflow", "TF"), "conv weight OIHW": ("keras", "Keras"),
              "parameter count": ("keras", "Keras count_params()"),
              "bilinear resize": ("chainer", "Chainer"),
              "sigmoid cross-entropy": ("pytorch", "PyTorch")}
    for prefix, (framework, label) in expect.items():
        row = next(r for name, r in measured.items() if name.startswith(prefix))
        if installed(framework):
            assert label in row.differs, f"{prefix}: {label}"
