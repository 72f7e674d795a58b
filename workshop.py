"""The workshop: exercises made from the lessons, and a checker that says what is wrong.

    python workshop.py start pytorch            # or tensorflow, keras, chainer, all
    python workshop.py check pytorch 02         # a step, a range (01-03) or all; --watch
    python workshop.py status                   # steps x frameworks; --json for a teacher
    python workshop.py notebook pytorch 02      # the exercise as a Jupyter notebook

`start` writes the learner's copies into workshop/ (--dir to choose): each
lesson with the code of its questions replaced by `raise NotImplementedError`
naming the question (docs/questions/en.md, ja.md), and 00_masks.py for the
framework-free mask questions. It never overwrites a copy the learner has
changed. `check` runs the learner's copy against the answer, exercise by
exercise (common/checker.py), and exits 0 only when every exercise passes.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, exercises, lessons
from common.errors import UserError, exit_on_user_error
from common.frameworks import FRAMEWORKS, installed
from common.weights import atomic_write

DEFAULT_DIR = REPO / "workshop"
MANIFEST = ".workshop.json"     # what start wrote: {relative path: sha256}
PROGRESS = ".progress.json"     # the last check of every copy: {relative path: result}
MASKS = "00_masks"


def atomic_write_text(path: Path, text: str):
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# ------------------------------------------------------------------ selection
def frameworks_of(name: str) -> tuple:
    if name == "all":
        return FRAMEWORKS
    if name not in FRAMEWORKS:
        raise UserError(f"framework {name!r}: choose one of {', '.join(FRAMEWORKS)}, or all.")
    return (name,)


def steps_of(spec: str) -> tuple:
    """'02', '02_multiclass', '01-03', 'all' -> lesson names (00 = the mask questions)."""
    every = (MASKS,) + lessons.steps()
    by_number = {s[:2]: s for s in every}
    if spec == "all":
        return every
    if "-" in spec and spec.split("-")[0].isdigit():
        lo, hi = (part.zfill(2) for part in spec.split("-", 1))
        chosen = tuple(s for s in every if lo <= s[:2] <= hi)
    else:
        chosen = tuple(s for s in every if spec in (s, s[:2], s[:2].lstrip("0")))
    if not chosen:
        raise UserError(f"step {spec!r}: give a number ({', '.join(by_number)}), a range such as "
                        "01-03, or all.")
    return chosen


def copy_path(folder: Path, framework: str, step: str) -> Path:
    return folder / f"{MASKS}.py" if step == MASKS else folder / framework / f"{step}.py"


def answer_path(framework: str, step: str) -> Path:
    return REPO / "common" / "masks.py" if step == MASKS else lessons.lesson_file(framework, step)


# ------------------------------------------------------------------ start
def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def start(framework_spec: str, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(folder)
    wrote, kept, same = [], [], []
    targets = [(None, MASKS)] + [(fw, st) for fw in frameworks_of(framework_spec)
                                 for st in lessons.steps()]
    for fw, st in targets:
        dest = copy_path(folder, fw, st)
        rel = str(dest.relative_to(folder))
        text = exercises.blank(answer_path(fw, st).read_text(), str(answer_path(fw, st)))
        if dest.exists():
            current = exercises.digest(dest.read_text())
            if current == exercises.digest(text):
                same.append(rel)
                manifest[rel] = current
                continue
            if manifest.get(rel) != current:
                kept.append(rel)        # the learner changed it (or wrote it): never overwritten
                continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dest, text)
        manifest[rel] = exercises.digest(text)
        wrote.append(rel)
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"{folder}: wrote {len(wrote)} exercise files, {len(same)} already up to date"
          + (f", kept {len(kept)} you have changed: {', '.join(kept)}" if kept else "") + ".")
    missing = [fw for fw in frameworks_of(framework_spec) if not installed(fw)]
    if missing:
        print(f"not installed here: {', '.join(missing)} (make setup REQS=<framework>); "
              "their exercises are written but cannot be checked.")
    first = frameworks_of(framework_spec)[0]
    print(f"Questions: docs/questions/en.md (日本語: ja.md). Next: edit "
          f"{_shown(folder / first / '01_binarization.py')}, then "
          f"`python workshop.py check {first} 01`.")
    return 0


# ------------------------------------------------------------------ check
def _notebook_source(nb_path: Path, framework: str, step: str) -> Path:
    """The code of a notebook as a .py file in a folder named after the framework."""
    from common import notebooks
    text = notebooks.to_source(nb_path)
    folder = Path(tempfile.mkdtemp(prefix="notebook-")) / framework
    folder.mkdir()
    path = folder / f"{step}.py"
    path.write_text(text)
    return path


def source_of(folder: Path, framework: str, step: str) -> Path:
    """The learner's copy: the .py, or its notebook when that was saved last."""
    py = copy_path(folder, framework, step)
    nb = py.with_suffix(".ipynb")
    if nb.exists() and (not py.exists() or nb.stat().st_mtime > py.stat().st_mtime):
        return _notebook_source(nb, framework, step)
    return py


def check_one(folder: Path, framework: str, step: str):
    from common import checker, masks_checker
    path = source_of(folder, framework, step)
    if step == MASKS:
        return masks_checker.check(path)
    return checker.check(framework, step, path)


def _shown(path: Path) -> str:
    """A path as the learner would type it: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_report(report, titles: dict):
    print(f"{report.framework or 'numpy'} {report.step}  ({_shown(report.path)})")
    marks = {"pass": "ok  ", "todo": "todo", "fail": "FAIL", "not checked": "--  "}
    for r in report.results:
        title = titles.get(r.qid, "")
        line = f"  {marks[r.status]} {r.qid} {title}"
        print(line + (f"\n         {r.message}" if r.message else ""))


def _record(folder: Path, reports):
    progress_file = folder / PROGRESS
    try:
        progress = json.loads(progress_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        progress = {}
    for rep in reports:
        key = f"{rep.framework or 'numpy'}/{rep.step}"
        path = copy_path(folder, rep.framework, rep.step)
        progress[key] = {**rep.as_dict(), "checked": time.strftime("%Y-%m-%dT%H:%M:%S"),
                         "digest": exercises.digest(path.read_text()) if path.exists() else None}
    atomic_write_text(progress_file, json.dumps(progress, indent=1, sort_keys=True) + "\n")


def check(framework_spec: str, step_spec: str, folder: Path, as_json=False) -> int:
    from common.checker import titles
    names = titles()
    reports = []
    for fw in frameworks_of(framework_spec):
        if not installed(fw):
            print(f"{fw} is not installed here (make setup REQS={fw}); skipped.", file=sys.stderr)
            continue
        for st in steps_of(step_spec):
            if st == MASKS and reports and any(r.step == MASKS for r in reports):
                continue
            rep = check_one(folder, None if st == MASKS else fw, st)
            reports.append(rep)
            if not as_json:
                print_report(rep, names)
    if folder.exists():
        _record(folder, reports)
    if as_json:
        print(json.dumps([r.as_dict() for r in reports], indent=1))
    done = sum(r.passed for r in reports)
    if not as_json:
        print(f"\n{done} of {len(reports)} lessons pass.")
    return 0 if reports and done == len(reports) else 1


def watch(framework_spec, step_spec, folder):
    """Check again whenever a selected copy is saved (polling, once a second); Ctrl-C ends."""
    def stamp():
        out = []
        for fw in frameworks_of(framework_spec):
            for st in steps_of(step_spec):
                for p in (copy_path(folder, fw, st), copy_path(folder, fw, st).with_suffix(".ipynb")):
                    out.append(p.stat().st_mtime if p.exists() else None)
        return out
    last = None
    try:
        while True:
            now = stamp()
            if now != last:
                last = now
                print("\033[2J\033[H" if sys.stdout.isatty() else "", end="")
                check(framework_spec, step_spec, folder)
                print("\nwatching for changes (Ctrl-C to stop) ...")
            time.sleep(1)
    except KeyboardInterrupt:
        return 0


# ------------------------------------------------------------------ status
def status(folder: Path, as_json=False) -> int:
    try:
        progress = json.loads((folder / PROGRESS).read_text())
    except FileNotFoundError:
        progress = {}
    table = {}
    for fw in FRAMEWORKS:
        for st in lessons.steps():
            entry = progress.get(f"{fw}/{st}")
            table[(fw, st)] = _state(folder, fw, st, entry)
    masks = _state(folder, None, MASKS, progress.get(f"numpy/{MASKS}"))
    if as_json:
        print(json.dumps({"folder": str(folder), "user": os.environ.get("USER", ""),
                          MASKS: masks,
                          "lessons": {f"{fw}/{st}": v for (fw, st), v in table.items()}},
                         indent=1))
        return 0
    width = max(len(s) for s in lessons.steps())
    print(f"{'':{width}}  " + "  ".join(f"{fw:>10}" for fw in FRAMEWORKS))
    print(f"{MASKS:{width}}  {masks:>10}")
    for st in lessons.steps():
        print(f"{st:{width}}  " + "  ".join(f"{table[(fw, st)]:>10}" for fw in FRAMEWORKS))
    print("\npass: every exercise passed its last check; n/m: exercises passing; changed: "
          "saved since the last check; -: not started. `python workshop.py check ...` updates it.")
    return 0


def _state(folder, fw, st, entry) -> str:
    path = copy_path(folder, fw, st)
    if not path.exists():
        return "-"
    if entry is None:
        return "unchecked"
    if entry.get("digest") != exercises.digest(path.read_text()):
        return "changed"
    if entry["passed"]:
        return "pass"
    ex = entry["exercises"]
    return f"{sum(e['status'] == 'pass' for e in ex)}/{len(ex)}"


# ------------------------------------------------------------------ notebook
def notebook(framework_spec: str, step_spec: str, folder: Path) -> int:
    from common import notebooks
    for fw in frameworks_of(framework_spec):
        for st in steps_of(step_spec):
            if st == MASKS:
                continue
            py = copy_path(folder, fw, st)
            if not py.exists():
                start(fw, folder)
            nb = notebooks.write(py, fw, st)
            print(f"wrote {nb}")
    return 0


# ------------------------------------------------------------------ command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workshop.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def add_dir(q):
        q.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                       help="the learner's folder (default: workshop/)")
    s = sub.add_parser("start", help="write the exercises (never overwrites your changes)")
    s.add_argument("framework", nargs="?", default="all")
    add_dir(s)
    c = sub.add_parser("check", help="check your exercises against the answers")
    c.add_argument("framework")
    c.add_argument("steps", nargs="?", default="all", help="02, 01-03 or all (default: all)")
    c.add_argument("--watch", action="store_true", help="check again whenever the file is saved")
    c.add_argument("--json", action="store_true", help="the results as JSON")
    add_dir(c)
    st = sub.add_parser("status", help="the table of what passes")
    st.add_argument("--json", action="store_true", help="as JSON, for a teacher who collects it")
    add_dir(st)
    n = sub.add_parser("notebook", help="the exercises as Jupyter notebooks")
    n.add_argument("framework")
    n.add_argument("steps", nargs="?", default="all")
    add_dir(n)
    return p


@exit_on_user_error
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    folder = args.dir.resolve()
    if args.command == "start":
        return start(args.framework, folder)
    if args.command == "check":
        if args.watch:
            return watch(args.framework, args.steps, folder)
        return check(args.framework, args.steps, folder, args.json)
    if args.command == "status":
        return status(folder, args.json)
    return notebook(args.framework, args.steps, folder)


if __name__ == "__main__":
    sys.exit(main())
