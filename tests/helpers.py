"""Helpers the tests share (conftest.py keeps only the environment and the markers)."""
import pytest

from common import REPO, driver, lessons
from common.frameworks import FRAMEWORKS, installed

STEPS = lessons.steps()
FOLDERS = FRAMEWORKS


def require(framework):
    if not installed(framework):
        pytest.skip(f"{framework} is not installed")


def load_step(framework: str, step: str):
    """The answer <framework>/<step>.py as a module (file names start with digits)."""
    require(framework)
    return lessons.answer(framework, step)


def run_step(framework: str, step: str, argv) -> dict:
    """What `python <framework>/<step>.py ARGV` does, in this process: the metrics dict.

    A UserError ends in SystemExit(2) as on the command line."""
    return driver.main(load_step(framework, step).__name__, list(argv))


make_trainer = driver.make_trainer


def script(relative: str):
    """A script of the repository (compare.py, workshop.py, tools/*.py) as a module, by path."""
    path = REPO / relative
    return lessons.load(path, name=path.stem)
