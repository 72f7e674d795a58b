"""The house: lessons up front, modules named by role and unique, one driver, no sys.path edits."""
import ast
import re

import pytest

from common import REPO, lessons
from common.frameworks import FRAMEWORKS, PREFIX, ROLES

STEPS = lessons.steps()
LESSONS = [(fw, st) for fw in FRAMEWORKS for st in STEPS]
DOC_LINES = 25          # summary, shape flow, departures; the reasoning lives next to the code
LONG_READS = ("07_fcn8s", "08_segnet", "09_deeplabv3plus", "10_frrn")   # docs/lessons/


def python_files():
    skip = {".venv", "runs", "data", "workshop", ".git", ".pytest_cache"}
    return [p for p in REPO.rglob("*.py") if not skip & set(p.relative_to(REPO).parts)]


def test_framework_modules_are_named_by_role_and_unique():
    seen = {}
    for fw in FRAMEWORKS:
        for p in (REPO / fw).glob("*.py"):
            if re.fullmatch(r"\d\d_\w+", p.stem):
                continue
            assert p.stem.startswith(PREFIX[fw] + "_"), f"{fw}/{p.name}: name it {PREFIX[fw]}_<role>.py"
            assert p.stem not in seen, f"{p.name} is in {seen[p.stem]}/ and {fw}/"
            seen[p.stem] = fw
        for role in ROLES:
            assert (REPO / fw / f"{PREFIX[fw]}_{role}.py").exists(), f"{fw}: no {PREFIX[fw]}_{role}.py"


@pytest.mark.parametrize("framework,step", LESSONS)
def test_a_lesson_is_short_up_front_and_ends_in_the_driver(framework, step):
    path = REPO / framework / f"{step}.py"
    tree = ast.parse(path.read_text())
    doc = ast.get_docstring(tree)
    assert doc and len(doc.splitlines()) <= DOC_LINES, (
        f"{path.name}: docstring of {len(doc.splitlines())} lines; keep summary, shapes and "
        f"departures (<= {DOC_LINES}), move the reasoning next to the code or to docs/lessons/")
    if step in LONG_READS:
        assert f"docs/lessons/{step}.md" in doc and (REPO / "docs" / "lessons" / f"{step}.md").exists()
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert "main" not in names, "the driver is common/driver.py's main, not a lesson's"
    last = tree.body[-1]
    assert isinstance(last, ast.If) and ast.unparse(last) == (
        "if __name__ == '__main__':\n    main(__name__)"), f"{path.name} must end in main(__name__)"
    first = tree.body[1]
    assert isinstance(first, ast.Import) and first.names[0].name == "common.ctrl_c", (
        f"{path.name}: `import common.ctrl_c` first (Ctrl-C while the framework loads)")


def test_nothing_edits_sys_path():
    # the one place the suite extends sys.path is the .pth file `make setup` writes
    allowed = {"tests/test_nothing_lost.py"}   # emulates `python script.py` in a subprocess
    offenders = [str(p.relative_to(REPO)) for p in python_files()
                 if re.search(r"sys\.path\.(append|insert|extend)", p.read_text())
                 and str(p.relative_to(REPO)) not in allowed]
    assert not offenders, offenders


def test_no_old_glue_modules_remain():
    old = [p for p in python_files() if p.name.startswith("seg_") or p.name == "ctrl_c.py"
           and p.parent.name in FRAMEWORKS]
    assert not old, old


def test_losses_take_logits_first_in_every_framework():
    """One argument order: loss(logits, y), also the two taught in lessons 01 and 02."""
    for fw in FRAMEWORKS:
        for step, name in (("01_binarization", "sigmoid_cross_entropy"),
                           ("02_multiclass", "softmax_cross_entropy")):
            tree = ast.parse((REPO / fw / f"{step}.py").read_text())
            fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
            assert [a.arg for a in fn.args.args][:2] == ["logits", "y"], (fw, name)
