"""How long the workshop's steps take on this machine: checking an answer, and training it.

    .venv/bin/python tools/workshop_times.py            # print the table
    .venv/bin/python tools/workshop_times.py --write    # and put it into the README

For every step and installed framework: the seconds `workshop.py check` takes
on the answer (a learner's finished copy costs the same; a failing one a few
seconds more per mistake it replays), and the training time of the lesson's
default run (500 iterations), estimated from a 40-iteration run's median
ms/iter (`metrics.json`) plus its fixed costs. Each runs in its own process,
one at a time; run it on an idle machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, lessons
from common.frameworks import FRAMEWORKS, describe_cpu, installed

README = REPO / "README.md"
START, END = "<!-- workshop-times:start -->", "<!-- workshop-times:end -->"
ITERS, FULL = 40, 500


def seconds(cmd, env=None) -> float:
    """Wall seconds of a command that must succeed (an answer passes its check)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def check_time(framework, step, folder) -> float:
    dest = folder / framework / f"{step}.py"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(lessons.lesson_file(framework, step).read_text())
    return seconds([sys.executable, str(REPO / "workshop.py"), "check", framework, step[:2],
                    "--dir", str(folder)])


def train_time(framework, step, out) -> float:
    """Estimated seconds of the default 500-iteration run."""
    wall = seconds([sys.executable, str(REPO / framework / f"{step}.py"), "--iters", str(ITERS),
                    "--out", str(out), "--overwrite"])
    m = json.loads((out / "metrics.json").read_text())
    per_iter = m["ms_per_iter"] / 1000
    return wall + (FULL - ITERS) * per_iter


def measure(frameworks, steps, log=print) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for st in steps:
            for fw in frameworks:
                c = check_time(fw, st, Path(tmp) / "ws")
                t = train_time(fw, st, Path(tmp) / "run" / fw / st)
                rows[(st, fw)] = (c, t)
                log(f"{st} {fw}: check {c:.0f} s, 500 iterations ~{t / 60:.1f} min")
    return rows


def table(rows, frameworks, steps) -> str:
    head = ("| step | " + " | ".join(frameworks) + " |\n|---|" + "---:|" * len(frameworks))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `tools/workshop_times.py` on "
             f"{describe_cpu()}: seconds of `workshop.py check` on a finished exercise, then "
             f"minutes of the lesson's default run (500 iterations, estimated from a "
             f"{ITERS}-iteration run). Plan the learner's own time on top.", "", head]
    for st in steps:
        cells = [f"{rows[(st, fw)][0]:.0f} s · {rows[(st, fw)][1] / 60:.1f} min"
                 for fw in frameworks]
        lines.append(f"| {st} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="put the table into the README")
    ap.add_argument("--steps", nargs="*", default=list(lessons.steps()))
    args = ap.parse_args(argv)
    frameworks = [f for f in FRAMEWORKS if installed(f)]
    md = table(measure(frameworks, args.steps), frameworks, args.steps)
    print(md)
    if args.write:
        text = README.read_text()
        i, j = text.index(START) + len(START), text.index(END)
        README.write_text(text[:i] + "\n" + md + "\n" + text[j:])


if __name__ == "__main__":
    main()
