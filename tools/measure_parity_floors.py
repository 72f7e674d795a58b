"""Measure the float32 noise floor that the parity tests' tolerances are built from.

    .venv/bin/python tools/measure_parity_floors.py            # print the tables
    .venv/bin/python tools/measure_parity_floors.py --write    # and write common/parity_floors.json
                                                              # and the table in framework-differences.md
    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python tools/measure_parity_floors.py --columns --write
    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python tools/measure_parity_floors.py --columns --write
                                                   # every framework vs the floors, both TF kernel sets

The floor of a step and a quantity is how far PyTorch float32 itself ends from
PyTorch float64 (the exact reference) on the parity test's weights and inputs,
the largest over SEEDS well-conditioned input seeds (common/parity.py explains
"well conditioned"). Rounding is all that differs there, so no correct float32
framework on any CPU can be expected to do much better, and one that is off by
much more is computing something else. test_parity.py allows MARGIN times the
floor (MARGIN is set in common/parity.py, with its reason).
The quantities are common/parity.differences()'s, as test_parity.py compares them.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")      # as the tests run
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402  (after the environment: the frameworks read it at import)

from common import REPO, lessons, parity  # noqa: E402
from common.frameworks import describe_cpu, environment, installed  # noqa: E402

STEPS = lessons.steps()
QUANTITIES = parity.QUANTITIES
SEEDS = 5                        # well-conditioned input seeds per step
FLOORS = parity.FLOORS_FILE
PAGE = REPO / "docs" / "framework-differences.md"
START, END = "<!-- floors:start -->", "<!-- floors:end -->"
# one block of columns per TensorFlow kernel set: oneDNN off (most laptops) and on
COLUMNS_MARKERS = "<!-- columns-onednn-{}:start -->", "<!-- columns-onednn-{}:end -->"


def well_conditioned_seeds(step, n=SEEDS, first=2, tries=150):
    """The first n input seeds whose float64 forward pass stays clear of kinks (parity_probe)."""
    relu_margin = parity.STEP_RELU_MARGIN.get(step, parity.RELU_MARGIN)
    seeds = []
    for seed in range(first, first + tries):
        relu_min, gap_min = parity.kink_margins(step, parity.probe_args(step), seed)
        if relu_min >= relu_margin and gap_min >= parity.POOL_MARGIN:
            seeds.append(seed)
            if len(seeds) == n:
                return seeds
    raise RuntimeError(f"{step}: only {len(seeds)} well-conditioned seeds in {tries} tries")


def measure(steps=STEPS, n=SEEDS, log=print) -> dict:
    """{step: {"seeds": [...], quantity: largest PyTorch float32 - float64 difference}}."""
    floors = {}
    for step in steps:
        per_seed = []
        seeds = well_conditioned_seeds(step, n)
        for seed in seeds:
            ref = parity.probe("pytorch", step, seed=seed, dtype="float64")
            got = parity.probe("pytorch", step, seed=seed, dtype="float32")
            per_seed.append({q: v for q, (v, _) in parity.differences(ref, got).items()})
        floors[step] = {"seeds": seeds, **{q: max(d[q] for d in per_seed) for q in QUANTITIES},
                        "measured": date.today().isoformat(), "cpu": describe_cpu(environment())}
        log(step, " ".join(f"{q} {floors[step][q]:.2e}" for q in QUANTITIES), flush=True)
    return floors


def table(doc: dict, margin: float) -> str:
    lines = [f"Floors measured {doc['measured']} by `tools/measure_parity_floors.py` "
             f"({doc['seeds_per_step']} input seeds per step, PyTorch {doc['pytorch']}, "
             f"{doc['cpu']}); the float32 tests allow {margin:g} x these numbers "
             f"(`common/parity_floors.json`).", "",
             "| step | logits | loss | gradients | one SGD step | 20-step trajectory |",
             "|---|---:|---:|---:|---:|---:|"]
    for step, f in doc["floors"].items():
        lines.append(f"| {step} | " + " | ".join(f"{f[q]:.1e}" for q in QUANTITIES) + " |")
    later = {s: f for s, f in doc["floors"].items()
             if f.get("measured", doc["measured"]) != doc["measured"]}
    if later:
        lines += ["", "Measured later, alone: " + "; ".join(
            f"{s} on {f['measured']} ({f['cpu']})" for s, f in later.items()) + "."]
    return "\n".join(lines)


def probe_column(framework, step, seed, dtype):
    """parity.probe, with Keras on the torch backend in a subprocess (one backend a process)."""
    if framework != "keras-torch":
        return parity.probe(framework, step, seed=seed, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "tests" / "parity_probe.py"), "keras", tmp,
                        f"{step}:{seed}:{dtype}:{parity.TRAJECTORY}"], check=True, cwd=REPO,
                       env={**os.environ, "KERAS_BACKEND": "torch"})
        with np.load(Path(tmp) / f"{step}-{dtype}.npz") as f:
            return dict(f)


def onednn() -> str:
    """'off' or 'on': TensorFlow's kernels in this process, as TF_ENABLE_ONEDNN_OPTS sets them."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if setting not in ("0", "1"):
        raise SystemExit("set TF_ENABLE_ONEDNN_OPTS=0 or 1: TensorFlow's default depends on the "
                         "processor, and the page keeps one table for each")
    return {"0": "off", "1": "on"}[setting]


def columns(doc: dict, steps=STEPS, log=print) -> str:
    """Every framework at the parity test's input seed: float32 as a multiple of the floor
    (the largest over the five quantities), float64 as the largest difference."""
    found = [f for f in ("pytorch", "tensorflow", "keras", "chainer") if installed(f)]
    if "keras" in found and installed("pytorch"):
        found.append("keras-torch")
    head = ["| step | " + " | ".join(f"{f} f32 / floor" for f in found) + " | "
            + " | ".join(f"{f} f64" for f in found if f != "pytorch") + " |",
            "|---|" + "---:|" * (2 * len(found) - 1)]
    rows = []
    for step in steps:
        seed = parity.well_conditioned_seed(step)
        ref = parity.probe("pytorch", step, seed=seed, dtype="float64")
        ratios, exact = [], []
        for f in found:
            d32 = parity.differences(ref, probe_column(f, step, seed, "float32"))
            ratios.append(max(v / doc["floors"][step][q] for q, (v, _) in d32.items()))
            if f != "pytorch":
                d64 = parity.differences(ref, probe_column(f, step, seed, "float64"))
                exact.append(max(v for v, _ in d64.values()))
        rows.append(f"| {step} | " + " | ".join(f"{r:.2f}" for r in ratios) + " | "
                    + " | ".join(f"{e:.0e}" for e in exact) + " |")
        log(rows[-1], flush=True)
    env = environment()
    return "\n".join([f"Every column at the parity test's input seed, measured "
                      f"{date.today().isoformat()} ({describe_cpu(env)}, TensorFlow's oneDNN "
                      f"{onednn()}): float32 "
                      "as a multiple of the floor (the largest of the five quantities; the "
                      "tests allow the margin), float64 as the largest difference from PyTorch "
                      "float64 (of logits, relative loss, gradients, one step, relative trajectory).",
                      ""] + head + rows)


def replace_block(page: str, start: str, end: str, text: str) -> str:
    if start not in page or end not in page:
        raise SystemExit(f"{PAGE}: markers {start} ... {end} not found")
    head, rest = page.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{text}\n{end}{tail}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true",
                    help="write common/parity_floors.json (the steps measured replace theirs) "
                         "and the tables in docs/framework-differences.md")
    ap.add_argument("--steps", nargs="*", default=list(STEPS))
    ap.add_argument("--columns", action="store_true",
                    help="instead of the floors, measure every framework against them")
    args = ap.parse_args(argv)
    MARGIN = parity.MARGIN
    if args.columns:
        start, end = (m.format(onednn()) for m in COLUMNS_MARKERS)
        md = columns(json.loads(FLOORS.read_text()), args.steps)
    else:
        floors = measure(args.steps)
        previous = json.loads(FLOORS.read_text()) if FLOORS.exists() else {}
        old = previous.get("floors", {})
        merged = {**old, **floors}
        env = environment()
        whole = set(args.steps) == set(STEPS) or not old   # else the other steps keep their date
        doc = {"measured": date.today().isoformat() if whole else previous["measured"],
               "cpu": describe_cpu(env) if whole else previous["cpu"],
               "pytorch": env["pytorch"], "seeds_per_step": SEEDS,
               "definition": "PyTorch float32 vs PyTorch float64, max over seeds; "
                             "quantities as in tests/parity.differences",
               "floors": {s: merged[s] for s in STEPS if s in merged}}
        md = table(doc, MARGIN)
        start, end = START, END
    print(md)
    if args.write:
        from common.weights import atomic_write
        if not args.columns:
            atomic_write(FLOORS, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1) + "\n"))
        page = replace_block(PAGE.read_text(), start, end, md)
        atomic_write(PAGE, lambda tmp: Path(tmp).write_text(page))
        print(f"wrote {PAGE}" + ("" if args.columns else f" and {FLOORS}"))


if __name__ == "__main__":
    main()
