"""Does a learner's lesson compute what the answer computes?  If not, what differs?

The learner's copy (workshop/<framework>/<step>.py, made by workshop.py start)
is loaded as a module and compared with the answer, exercise by exercise:

  network     (Q1.1, Q1.2, Q2.1, Q3.1 ... Q9.2) the learner's network with the
              answer's loss: it builds; output shape and dtype at two input
              sides; parameter names and shapes fit the answer's neutral
              weights; with the same weights and inputs, the same logits
              (BatchNorm in both modes), loss, gradients, and a few SGD steps.
  loss        (Q1.3, Q2.2) the answer's network with the learner's loss: the
              same loss and gradients.
  threshold   (Q1.4, Q2.3) the same class of every pixel from the same logits.
  train step  (Q1.5) from the same weights, the same loss, weights, BatchNorm
              statistics and momentum after one step.

"The same" is within the parity tests' tolerances (common/parity.py: 10x
the float32 rounding floor measured for each step), so a learner who writes an
equivalent computation in another order still passes. When something differs,
the checker replays the mistakes learners make (MISTAKES: the answer with one
realistic change) and names the one that computes what the learner's code
does; failures point at the learner's own lines, not into the framework.
"""
import contextlib
import linecache
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import REPO, exercises, lessons, parity
from common.mistakes import MISTAKES

NETWORK, LOSS, CLASSES, TRAIN_STEP = "network", "loss", "classes", "train step"
KIND = {"Q1.3": LOSS, "Q2.2": LOSS, "Q1.4": CLASSES, "Q2.3": CLASSES, "Q1.5": TRAIN_STEP}
SIDES = (32, 64)   # two input sides for the shape check; every step's size multiple divides 32


def kind(qid: str) -> str:
    return KIND.get(qid, NETWORK)


def titles(lang: str = "en") -> dict:
    """Question number -> its title, from docs/questions/<lang>.md (`### Q1.1 The CBR block`)."""
    path = REPO / "docs" / "questions" / f"{lang}.md"
    found = re.findall(r"^### (Q\d+\.\d+) (.*)$", path.read_text(encoding="utf-8"), re.M)
    return dict(found)


@dataclass
class Result:
    qid: str
    status: str            # "pass", "todo", "fail", "not checked"
    message: str = ""


@dataclass
class Report:
    framework: str
    step: str
    path: str
    results: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.status == "pass" for r in self.results)

    def as_dict(self) -> dict:
        return {"framework": self.framework, "step": self.step, "file": self.path,
                "passed": self.passed,
                "exercises": [{"question": r.qid, "status": r.status, "message": r.message}
                              for r in self.results]}


class Finding(Exception):
    """A check that failed, with the learner-facing explanation."""


# ------------------------------------------------------------------ the learner's code
def _learner_frame(exc, path: Path):
    """The deepest traceback frame in the learner's file: (line number, source line) or None."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    return (frames[-1].lineno, (frames[-1].line or "").strip()) if frames else None


def _region_of(text: str, line: int):
    for r in exercises.regions(text):
        if r.first + 1 <= line <= r.last + 1:
            return r.qid
    return None


def explain_exception(exc, path: Path, text: str) -> tuple:
    """(question or None, message) for an exception raised while running the learner's code."""
    where = _learner_frame(exc, path)
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == path.resolve():
        where = (exc.lineno, (exc.text or "").strip())
        exc = type(exc)(exc.msg)
    what = f"{type(exc).__name__}: {exc}".strip()
    if where is None:
        return None, f"{what} (raised outside your file: {traceback.format_exc(limit=-1).strip()})"
    line, source = where
    return _region_of(text, line), f"your line {line}: `{source}` raised {what}"


def load_learner(path: Path, framework: str, step: str):
    """The learner's file as a fresh module (a new import after every save, for --watch)."""
    name = f"workshop_{framework}_{step}"
    sys.modules.pop(name, None)
    linecache.checkcache(str(path))
    return lessons.load(path, name=name)


# ------------------------------------------------------------------ comparisons
IGNORE = 255          # the loss checks label a fifth of the pixels "ignore" (Pascal VOC's 255)
TRAJECTORY = 3        # SGD steps after the first; the 20-step floors bound these from above
_QUANTITY = {"logits": "the logits", "loss": "the loss", "grads": "the gradients",
             "update": "the weights after one SGD step",
             "trajectory": f"the losses of {TRAJECTORY} more SGD steps"}


def _fmt_shape(a) -> str:
    return "[" + ", ".join(str(int(d)) for d in np.shape(a)) + "]"


_ANSWERS = {}


def measure(group, net, taught, step) -> dict:
    """What the checks of `group` compare: the lesson module `net`'s network with the lesson
    functions of `taught` (each the answer or the learner's module). The answer's own
    measurement is kept for the process (the checker compares every copy with it)."""
    answer = net is taught and net.__name__ == f"{net.__name__.split('_', 1)[0]}_{step}"
    key = (net.__name__, group, step)
    if answer and key in _ANSWERS:
        return _ANSWERS[key]
    result = _measure(group, net, taught, step)
    if answer:
        _ANSWERS[key] = result
    return result


def _measure(group, net, taught, step) -> dict:
    if group == CLASSES:
        trainer, st = parity.make_trainer_for(net, step, taught_from=taught)
        c = 1 if st.task == "binary" else 3
        logits = np.random.default_rng(0).standard_normal((2, c, 8, 8)).astype(np.float32)
        return {"logits": logits, "classes": np.asarray(trainer.classes(logits))}
    if group == LOSS:
        trainer, st = parity.make_trainer_for(net, step, taught_from=taught, ignore_index=IGNORE)
        trainer.set_weights(parity.random_weights(
            {k: v.shape for k, v in trainer.get_weights().items()}))
        x, y = parity.inputs(st.task, trainer.layout, n=1, seed=parity.check_seed(step))[0]
        y = y.copy()
        y[np.random.default_rng(1).random(y.shape) < 0.2] = IGNORE
        loss, grads = trainer.loss_and_gradients(x, y)
        return {"loss": np.array(loss, np.float64), **{f"grad/{k}": v for k, v in grads.items()}}
    trainer, st = parity.make_trainer_for(net, step, taught_from=taught)
    return parity.probe_trainer(trainer, st, seed=parity.check_seed(step), trajectory=TRAJECTORY)


def difference(group, step, ref, got) -> str | None:
    """None when `got` computes what `ref` does (within the parity tolerance), else what differs."""
    if group == CLASSES:
        exp, out = ref["classes"], got["classes"]
        if out.shape != exp.shape:
            return (f"for logits {_fmt_shape(ref['logits'])} ([B, C, H, W]) the result is "
                    f"{_fmt_shape(out)}, expected {_fmt_shape(exp)}: one class per pixel, the "
                    "channel axis reduced")
        if not np.array_equal(out, exp):
            at = np.argmax(out != exp)
            return (f"{int((out != exp).sum())} of {exp.size} pixels get another class than the "
                    f"answer's (e.g. {int(out.flat[at])} instead of {int(exp.flat[at])})")
        return None
    quantities = ("loss", "grads") if group == LOSS else parity.QUANTITIES
    if any(np.shape(ref[k]) != np.shape(got.get(k)) for k in ref if k.startswith("logits")):
        return "the output shapes differ"
    for q, (v, where) in parity.differences(ref, got, quantities).items():
        tol = parity.tolerance(step, q)
        if not v <= tol:
            ignored = " (a fifth of the pixels ignored)" if group == LOSS else ""
            return (f"with the answer's weights and inputs{ignored}, {_QUANTITY[q]} "
                    f"differ{'s' if q == 'loss' else ''} from the answer's by {v:.2e} "
                    f"(at {where}; allowed {tol:.1e})")
    return None


def _mutant(framework, step, m):
    """The answer with mistake m, loaded as a lesson module (in a folder named after the framework)."""
    folder = Path(tempfile.mkdtemp(prefix="mistake-")) / framework
    folder.mkdir()
    path = folder / f"{step}.py"
    path.write_text(m.apply(lessons.lesson_file(framework, step).read_text()))
    return lessons.load(path, name=f"mistake_{framework}_{step}_{abs(hash((m.qid, m.text, m.new)))}")


def name_mistake(framework, step, qids, group, got=None, finding=None):
    """The MISTAKES entry of these questions that computes what the learner's code computes
    (`got`, the learner's measure) or fails as it fails (`finding`, a check_network message)."""
    answer = lessons.answer(framework, step)
    for m in MISTAKES.get((framework, step), ()):
        if m.qid not in qids:
            continue
        try:
            module = _mutant(framework, step, m)
            if finding is not None:
                try:
                    check_network(framework, step, module, answer)
                except Finding as f:
                    if str(f) == finding:
                        return m
                continue
            net, taught = (module, answer) if group == NETWORK else (answer, module)
            if difference(group, step, measure(group, net, taught, step), got) is None:
                return m
        except Exception:   # noqa: BLE001 -- a mistake that does not run is not this one
            continue
    return None


def check_network(framework, step, learner, answer):
    """Builds; parameter names and shapes; output shape and dtype at two sides. Raises Finding."""
    trainer, st = parity.make_trainer_for(learner, step, taught_from=answer)
    ref_trainer, _ = parity.make_trainer_for(answer, step, taught_from=answer)
    got = {k: tuple(v.shape) for k, v in trainer.get_weights().items()}
    ref = {k: tuple(v.shape) for k, v in ref_trainer.get_weights().items()}
    missing = [k for k in ref if k not in got]
    extra = [k for k in got if k not in ref]

    def listed(names):
        return ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    if missing or extra:
        parts = ([f"missing {listed(missing)}"] if missing else []) + (
            [f"not in the answer: {listed(extra)}"] if extra else [])
        raise Finding("the parameter names differ from the answer's (they come from your "
                      f"attribute and layer names): {'; '.join(parts)}. Use the names the "
                      "question gives, so that weights files fit every framework")
    wrong = [f"{k} is {list(got[k])}, expected {list(ref[k])}" for k in ref if got[k] != ref[k]]
    if wrong:
        raise Finding("parameter shapes differ: " + "; ".join(wrong[:4])
                      + (" ..." if len(wrong) > 4 else ""))
    weights = parity.random_weights(ref)
    trainer.set_weights(weights)
    ref_trainer.set_weights(weights)
    for side in SIDES:
        x = parity.batch(side, trainer.layout)
        out = np.asarray(trainer.forward(x, training=False))
        exp = np.asarray(ref_trainer.forward(x, training=False))
        if out.shape != exp.shape:
            raise Finding(f"for an input {_fmt_shape(x)} ({trainer.layout}) the output is "
                          f"{_fmt_shape(out)} (as [B, C, H, W]), expected {_fmt_shape(exp)}"
                          + _shape_hint(out.shape, exp.shape))
        if out.dtype != np.float32:
            raise Finding(f"the output is {out.dtype}, expected float32")


def _shape_hint(o, e) -> str:
    if len(o) == len(e) == 4 and o[0] == e[0]:
        if sorted(o[1:]) == sorted(e[1:]):
            return ": the same sizes in another order; are the axes in the framework's layout?"
        if o[1] == e[1] and o[2] != e[2] and e[2]:
            return (f": the side is {o[2] / e[2]:g} x the expected one; is a pooling, an "
                    "upsampling or a stride missing or doubled?")
        if o[1] != e[1]:
            return ": another number of channels; does the head give one per class?"
    return ""


# ------------------------------------------------------------------ one lesson
@contextlib.contextmanager
def _eager():
    """TensorFlow functions run eagerly while checking: the checker runs a handful of steps,
    and tracing them costs more than it saves (measured: checking TensorFlow's 09 answer took
    11.5 s traced, 4.8 s eager). Eager and traced compute the same; answer and copy alike."""
    tf = sys.modules.get("tensorflow")
    if tf is None:                  # not loaded (PyTorch, Chainer, Keras on torch): nothing to do
        yield
        return
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


def check(framework: str, step: str, path) -> Report:
    """The report of every exercise of one lesson copy (see the module docstring)."""
    path = Path(path)
    report = Report(framework, step, str(path))
    answer_text = lessons.lesson_file(framework, step).read_text()
    qids = exercises.questions(answer_text)
    try:
        text = path.read_text()
        found = exercises.questions(text, str(path))
    except FileNotFoundError:
        report.results = [Result(q, "not checked", f"{path} does not exist; run "
                                 f"`python workshop.py start {framework}`") for q in qids]
        return report
    except exercises.MarkerError as exc:
        report.results = [Result(q, "not checked", f"{exc} The markers tell the checker where "
                                 "each exercise is; put them back as they were.") for q in qids]
        return report
    lost = [q for q in qids if q not in found]
    todo = {q for q in qids if q in found and exercises.untouched(text, q)}
    results = {q: Result(q, "todo", "not done yet: the blank still raises NotImplementedError "
                         f"({_lines(text, q)})") for q in todo}
    for q in lost:
        results[q] = Result(q, "not checked", f"the markers '# >>> {q}' and '# <<< {q}' are "
                            "missing; put them back around your code for this question")
    answer = lessons.answer(framework, step)
    try:
        learner = load_learner(path, framework, step)
    except BaseException as exc:   # noqa: BLE001 -- the learner's code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        qid, msg = explain_exception(exc, path, text)
        for q in qids:
            if q not in results or q == qid:
                results[q] = (Result(q, "fail", msg) if q == qid or qid is None else
                              Result(q, "not checked", "the file does not run (see above)"))
        if not any(r.status == "fail" for r in results.values()):
            first = qids[0]
            results[first] = Result(first, "fail", f"the file does not run: {msg}")
        report.results = [results[q] for q in qids]
        return report

    with _eager():   # the lessons are loaded: TensorFlow, if they use it, is imported now
        _check_groups(framework, step, qids, todo, results, learner, answer, path, text)
    report.results = [results[q] for q in qids]
    return report


def _check_groups(framework, step, qids, todo, results, learner, answer, path, text):
    for group in (NETWORK, LOSS, CLASSES, TRAIN_STEP):
        members = [q for q in qids if kind(q) == group and q not in results]
        if not members:
            continue
        if group == NETWORK and any(kind(q) == NETWORK for q in todo):
            for q in members:
                results[q] = Result(q, "not checked", "checked with the rest of the network, "
                                    "once every network question is written: "
                                    + ", ".join(q2 for q2 in qids if kind(q2) == NETWORK and q2 in todo))
            continue
        if group == NETWORK:
            # one check for the whole network; a named mistake is the failure of its question
            res = _run_check(group, members, framework, step, learner, answer, path, text)
            for q in members:
                results[q] = (Result(q, res.status, res.message) if res.qid in (q, None) else
                              Result(q, "not checked", f"checked once {res.qid} passes"))
            continue
        for q in members:
            results[q] = _run_check(group, [q], framework, step, learner, answer, path, text)


def _lines(text, qid):
    """'line 40', 'lines 40-45, 52' of the learner's code for a question."""
    spans = exercises.region_lines(text, qid)
    shown = ", ".join(f"{a}" if a >= b else f"{a}-{b}" for a, b in spans)
    return ("line " if len(spans) == 1 and spans[0][0] >= spans[0][1] else "lines ") + shown


def _run_check(group, qids, framework, step, learner, answer, path, text) -> Result:
    """The checks of `group` for questions `qids` (all a step's network questions, or one).

    The result's qid is the question a failure belongs to: the one whose mistake was
    recognised or whose lines raised; None when it could be any of qids."""
    here = qids[0] if len(qids) == 1 else None
    try:
        if group == NETWORK:
            check_network(framework, step, learner, answer)
        net, taught = (learner, answer) if group == NETWORK else (answer, learner)
        got = measure(group, net, taught, step)
        diff = difference(group, step, measure(group, answer, answer, step), got)
        if diff is None:
            return Result(here, "pass")
        mistake = name_mistake(framework, step, qids, group, got=got)
        if mistake:
            return Result(mistake.qid, "fail", f"{diff}. {mistake.text}")
        return Result(here, "fail", f"{diff}; look again at your "
                      + "; ".join(_lines(text, q) for q in qids))
    except Finding as f:
        mistake = name_mistake(framework, step, qids, group, finding=str(f))
        return (Result(mistake.qid, "fail", f"{f}. {mistake.text}") if mistake
                else Result(here, "fail", str(f)))
    except Exception as exc:   # noqa: BLE001 -- the learner's code may raise anything
        where_q, msg = explain_exception(exc, path, text)
        if isinstance(exc, NotImplementedError) and where_q and where_q not in qids:
            return Result(here, "not checked", f"needs {where_q}, not done yet")
        return Result(where_q if where_q in qids else here, "fail", msg)
