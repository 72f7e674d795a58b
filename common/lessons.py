"""The lessons as modules, and what later lessons and the glue take from earlier ones.

A lesson file (`pytorch/02_multiclass.py`) is a script, and its name starts
with a digit, so it is loaded by path (load). Some of what a lesson teaches is
used by every later step: the exercise's CBR block, the two cross-entropies,
the threshold and the argmax, the training step. That code is written once,
in the lesson that teaches it (TAUGHT), and the glue takes it from there
(`taught`): as d2l marks what it saves, a comment at each use says
"taught in 01_binarization". A learner's own copy of a lesson
(workshop/<framework>/) brings its own definitions, and the run and the
checker use those.
"""
import importlib.util
import sys
from pathlib import Path

from common import REPO
from common.frameworks import FRAMEWORKS

# name -> (lesson that teaches it, question in docs/questions/)
TAUGHT = {
    "CBR": ("01_binarization", "Q1.1"),
    "sigmoid_cross_entropy": ("01_binarization", "Q1.3"),
    "binarize": ("01_binarization", "Q1.4"),
    "train_step": ("01_binarization", "Q1.5"),
    "compile_model": ("01_binarization", "Q1.5"),        # Keras: compile, then train_on_batch
    "softmax_cross_entropy": ("02_multiclass", "Q2.2"),
    "to_classes": ("02_multiclass", "Q2.3"),
}


def steps() -> tuple:
    """The lessons, in order: the one list every script, test and report reads.

    Taken from pytorch/ (every framework has the same files; tests/test_layout.py checks it).
    """
    return tuple(sorted(p.stem for p in (REPO / "pytorch").glob("[0-9][0-9]_*.py")))


def lesson_file(framework: str, step: str) -> Path:
    return REPO / framework / f"{step}.py"


def load(path, name: str | None = None):
    """Import a lesson file by path, once per process (its name starts with a digit).

    The framework folders are on sys.path through the install (Makefile, setup: a
    .pth file), so the lesson's own imports (torch_layers, ...) resolve; the
    answers load as <framework>_<step>, a learner's copy under the name given.
    """
    path = Path(path).resolve()
    if name is None:
        name = f"{path.parent.name}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def answer(framework: str, step: str):
    """The answer file <framework>/<step>.py as a module."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; one of {', '.join(FRAMEWORKS)}")
    return load(lesson_file(framework, step))


def taught(framework: str, name: str, lesson=None):
    """`name` as the lesson module `lesson` defines it (a learner's copy), else as its answer does."""
    if lesson is not None and name in vars(lesson):
        return vars(lesson)[name]
    return getattr(answer(framework, TAUGHT[name][0]), name)
