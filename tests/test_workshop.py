"""The workshop: exercises made from the answers, and a checker that tells right from wrong.

Every exercise regenerated from every answer fails the checker with its
question number while untouched; every answer passes; for every step at least
one realistic mistake (common/mistakes.py) is caught and named; the question
numbers in the lesson files are those of docs/questions/en.md and ja.md; one
notebook per framework executes.
"""
import json
import re
import shutil
import subprocess
import sys

import pytest

from common import REPO, checker, exercises, lessons, masks_checker
from common.frameworks import FRAMEWORKS
from common.mistakes import MISTAKES
from helpers import require, script

workshop = script("workshop.py")

STEPS = lessons.steps()
ANSWERS = [(fw, st) for fw in FRAMEWORKS for st in STEPS]
MASKS_FILE = REPO / "common" / "masks.py"


def doc_questions(lang):
    text = (REPO / "docs" / "questions" / f"{lang}.md").read_text(encoding="utf-8")
    return re.findall(r"^### (Q\d+\.\d+)\b", text, re.M)


# ------------------------------------------------------------------ markers and questions
def test_every_answer_has_paired_markers_and_the_same_questions_in_every_framework():
    for st in STEPS:
        per_fw = {fw: exercises.questions(lessons.lesson_file(fw, st).read_text(),
                                          str(lessons.lesson_file(fw, st))) for fw in FRAMEWORKS}
        assert per_fw["pytorch"], f"{st}: no exercise markers"
        for fw, q in per_fw.items():
            assert q == per_fw["pytorch"], f"{fw}/{st}.py asks {q}, pytorch/{st}.py {per_fw['pytorch']}"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_question_numbers_match_the_questions_page(lang):
    in_files = exercises.questions(MASKS_FILE.read_text())
    for st in STEPS:
        in_files += exercises.questions(lessons.lesson_file("pytorch", st).read_text())
    assert doc_questions(lang) == in_files, f"docs/questions/{lang}.md and the lesson markers differ"


def test_broken_markers_are_named_with_their_line():
    with pytest.raises(exercises.MarkerError, match=r"x.py:2: .*Q1.1.* never closed"):
        exercises.regions("def f():\n    # >>> Q1.1 hint\n    return 1\n", "x.py")
    with pytest.raises(exercises.MarkerError, match=r"x.py:3: '# <<< Q1.2'"):
        exercises.regions("def f():\n    # >>> Q1.1\n    # <<< Q1.2\n", "x.py")


@pytest.mark.parametrize("framework,step", ANSWERS + [(None, "00_masks")])
def test_blank_keeps_markers_and_compiles(framework, step):
    path = workshop.answer_path(framework, step)
    answer = path.read_text()
    blank = exercises.blank(answer, str(path))
    compile(blank, str(path), "exec")
    assert exercises.questions(blank) == exercises.questions(answer)
    for q in exercises.questions(answer):
        assert exercises.untouched(blank, q) and not exercises.untouched(answer, q)
        assert f"{q} is not done yet" in blank


# ------------------------------------------------------------------ start
def test_start_never_overwrites_a_changed_copy(tmp_path, capsys):
    assert workshop.main(["start", "pytorch", "--dir", str(tmp_path)]) == 0
    mine = tmp_path / "pytorch" / "02_multiclass.py"
    other = tmp_path / "pytorch" / "03_nearest.py"
    mine.write_text(mine.read_text().replace("raise NotImplementedError", "pass  # mine", 1))
    other.unlink()
    assert workshop.main(["start", "pytorch", "--dir", str(tmp_path)]) == 0
    assert "# mine" in mine.read_text()
    assert "kept 1 you have changed: pytorch/02_multiclass.py" in capsys.readouterr().out
    assert other.exists()                                   # a deleted copy is written again
    # a copy written by the learner before any start is theirs too
    fresh = tmp_path / "fresh"
    (fresh / "pytorch").mkdir(parents=True)
    (fresh / "pytorch" / "01_binarization.py").write_text("# my own\n")
    workshop.main(["start", "pytorch", "--dir", str(fresh)])
    assert (fresh / "pytorch" / "01_binarization.py").read_text() == "# my own\n"


# ------------------------------------------------------------------ check
@pytest.fixture(scope="module")
def blanks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workshop")
    workshop.main(["start", "all", "--dir", str(folder)])
    return folder


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_untouched_exercises_fail_with_their_number(framework, blanks, capsys):
    require(framework)
    rc = workshop.main(["check", framework, "all", "--dir", str(blanks)])
    out = capsys.readouterr().out
    assert rc == 1
    for st in STEPS:
        report = json.loads((blanks / workshop.PROGRESS).read_text())[f"{framework}/{st}"]
        assert not report["passed"]
        for ex in report["exercises"]:
            assert ex["status"] in ("todo", "not checked"), (st, ex)
            assert f"{ex['question']} " in out
    assert "not done yet" in out


def answer_as_copy(tmp_path, framework, step, text=None):
    folder = tmp_path / framework
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{step}.py"
    dest.write_text(text if text is not None else lessons.lesson_file(framework, step).read_text())
    return dest


@pytest.mark.parametrize("framework,step", [pytest.param(f, s, marks=pytest.mark.xdist_group(f))
                                            for f, s in ANSWERS])
def test_the_answer_passes(framework, step, tmp_path):
    require(framework)
    report = checker.check(framework, step, answer_as_copy(tmp_path, framework, step))
    assert report.passed, [(r.qid, r.status, r.message) for r in report.results]


# The first mistake of every step and framework runs in CI; the others (about 25 more, ~8 s
# each) with `make test-heavy`: every one is still checked to apply to its answer and compile.
MISTAKE_CASES = [pytest.param(fw, st, i, id=f"{fw}-{st}-{m.qid}-{i}",
                              marks=[pytest.mark.xdist_group(fw)] + ([pytest.mark.heavy] if i else []))
                 for (fw, st), ms in MISTAKES.items() for i, m in enumerate(ms)]


def test_every_mistake_applies_to_its_answer_and_compiles():
    for (fw, st), ms in MISTAKES.items():
        answer = lessons.lesson_file(fw, st).read_text()
        for m in ms:
            compile(m.apply(answer), f"{fw}/{st}.py with mistake {m.qid}", "exec")
            assert m.qid in exercises.questions(answer), (fw, st, m.qid)


def test_every_step_has_a_mistake_in_every_framework():
    missing = [(fw, st) for fw, st in ANSWERS if not MISTAKES.get((fw, st))]
    assert not missing, f"no realistic mistake checked for {missing}"


@pytest.mark.parametrize("framework,step,index", MISTAKE_CASES)
def test_a_realistic_mistake_is_caught_and_named(framework, step, index, tmp_path):
    require(framework)
    mistake = MISTAKES[(framework, step)][index]
    text = mistake.apply(lessons.lesson_file(framework, step).read_text())
    report = checker.check(framework, step, answer_as_copy(tmp_path, framework, step, text))
    result = {r.qid: r for r in report.results}[mistake.qid]
    assert result.status == "fail", (result.status, result.message)
    assert mistake.text in result.message, result.message


def test_a_failure_points_at_the_learners_line(tmp_path):
    require("pytorch")
    text = lessons.lesson_file("pytorch", "02_multiclass").read_text().replace(
        "self.head = nn.Conv2d(width, num_classes, kernel_size=1)",
        "self.head = nn.Conv2d(width * 2, num_classes, kernel_size=1)")
    path = answer_as_copy(tmp_path, "pytorch", "02_multiclass", text)
    report = checker.check("pytorch", "02_multiclass", path)
    msg = {r.qid: r for r in report.results}["Q2.1"].message
    assert "parameter shapes differ" in msg and "head.weight" in msg, msg


# ------------------------------------------------------------------ Part 0: masks
def test_masks_blank_fails_answer_passes_and_mistakes_are_named(tmp_path):
    blank = tmp_path / "00_masks.py"
    blank.write_text(exercises.blank(MASKS_FILE.read_text()))
    assert [r.status for r in masks_checker.check(blank).results] == ["todo"] * 3
    answer = tmp_path / "answer" / "00_masks.py"
    answer.parent.mkdir()
    shutil.copy(MASKS_FILE, answer)
    assert masks_checker.check(answer).passed
    text = MASKS_FILE.read_text()
    cases = {
        "Q0.2": ("interpolation=cv2.INTER_NEAREST_EXACT)", "interpolation=cv2.INTER_LINEAR)",
                 "it was interpolated"),
        "Q0.2 shifted": ("interpolation=cv2.INTER_NEAREST_EXACT)", "interpolation=cv2.INTER_NEAREST)",
                         "use cv2.INTER_NEAREST_EXACT"),
        "Q0.3": ("out = np.empty(index.shape + (3,), np.uint8)",
                 "out = np.empty(index.shape + (3,), np.int64)", "expected uint8"),
        "Q0.1": ("        t[y == ignore_index] = ignore_index\n", "        pass\n",
                 "the ignored pixels (255) became 1"),
    }
    for q, (old, new, named) in cases.items():
        assert old in text, q
        wrong = tmp_path / q / "00_masks.py"
        wrong.parent.mkdir()
        wrong.write_text(text.replace(old, new))
        result = {r.qid: r for r in masks_checker.check(wrong).results}[q.split()[0]]
        assert result.status == "fail" and named in result.message, (q, result.message)


# ------------------------------------------------------------------ notebooks
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_notebook_executes_and_the_checker_reads_it(framework, tmp_path):
    require(framework)
    nbclient = pytest.importorskip("nbclient")
    import nbformat
    from common import notebooks
    py = answer_as_copy(tmp_path, framework, "01_binarization")
    out = tmp_path / "run"
    nb_path = notebooks.write(py, framework, "01_binarization",
                              argv=["--dry-run", "--size", "32", "--out", str(out)])
    nb = nbformat.read(str(nb_path), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert json.loads((out / "metrics.json").read_text())["iters"] == 2
    py.unlink()                    # the checker now reads the notebook
    report = workshop.check_one(tmp_path, framework, "01_binarization")
    assert report.passed, [(r.qid, r.message) for r in report.results]


def test_status_table_and_json(tmp_path, capsys):
    require("pytorch")
    workshop.main(["start", "pytorch", "--dir", str(tmp_path)])
    shutil.copy(lessons.lesson_file("pytorch", "03_nearest"), tmp_path / "pytorch" / "03_nearest.py")
    assert workshop.main(["check", "pytorch", "03", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    workshop.main(["status", "--dir", str(tmp_path), "--json"])
    table = json.loads(capsys.readouterr().out)["lessons"]
    assert table["pytorch/03_nearest"] == "pass"
    assert table["pytorch/02_multiclass"] == "unchecked"
    assert table["chainer/02_multiclass"] == "-"


def test_workshop_script_runs(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "workshop.py"), "check", "pytorch", "00",
                        "--dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "does not exist" in r.stdout, r.stdout + r.stderr
