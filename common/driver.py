"""What every lesson ends in: `main(__name__)` -- the command line, training, evaluation, outputs.

A lesson module provides
    build(num_outputs, args)   the network (a framework model)
    step(args)                 optional: its Step (task, size multiple, options); default Step(name)
    add_arguments(parser)      optional: its own flags (UNet: --depth, --width)
and, in lessons 01 and 02, what common/lessons.py TAUGHT lists. The framework is
the name of the lesson's folder (a learner's copy in workshop/pytorch/ is a
PyTorch lesson too); its engine module (frameworks.ENGINES, e.g. torch_trainer)
builds the Trainer that common/runner.py drives.
"""
import importlib
import sys
from pathlib import Path

from common import cli, lessons, predict, runner
from common.errors import UserError, exit_on_user_error
from common.frameworks import ENGINES, FRAMEWORKS
from common.runner import Step


def framework_of(module) -> str:
    folder = Path(module.__file__).resolve().parent.name
    if folder not in FRAMEWORKS:
        raise UserError(f"{module.__file__}: a lesson must sit in a folder named after its framework "
                        f"({', '.join(FRAMEWORKS)}); this one is in {folder}/.")
    return folder


def engine(framework: str):
    """The framework's trainer module (torch_trainer, tf_trainer, keras_trainer, chainer_trainer)."""
    return importlib.import_module(ENGINES[framework])


def parse_args(module, argv=None):
    eng = engine(framework_of(module))
    own = getattr(module, "add_arguments", None)

    def add(parser):
        if hasattr(eng, "add_arguments"):
            eng.add_arguments(parser)
        if own:
            own(parser)
    args = cli.parse_args(Path(module.__file__).stem, eng.FRAMEWORK, argv, module.__doc__, add,
                          out_label=eng.out_label())
    if hasattr(eng, "check_args"):
        eng.check_args(args)
    return args


def step_of(module, args) -> Step:
    if hasattr(module, "step"):
        return module.step(args)
    return Step(Path(module.__file__).stem)


def trainer_factory(module, args, step: Step, dtype: str = "float32", taught_from=None):
    """make_trainer(num_outputs, ignore_index): the lesson's network in its framework's Trainer,
    with the losses, thresholds and training step of `taught_from` (default: the lesson's own,
    else the answers' of 01 and 02; common/lessons.py)."""
    eng = engine(framework_of(module))
    return eng.trainer_factory(args, step, lambda n: module.build(n, args), dtype=dtype,
                               lesson=taught_from or module)


def run(module, argv=None) -> dict:
    """Parse argv, train, evaluate, write <out>; the metrics dict."""
    args = parse_args(module, argv)
    st = step_of(module, args)
    eng = engine(framework_of(module))
    eng.seed(args.seed)   # nothing in the suite draws from it; seeded for a learner's additions
    if args.predict:
        return predict.run(args, st, trainer_factory(module, args, st), eng.FRAMEWORK,
                           label=eng.out_label())
    return runner.run(args, st, trainer_factory(module, args, st), eng.FRAMEWORK,
                      label=eng.out_label())


def main(name: str, argv=None) -> dict:
    """The lesson's entry point: `if __name__ == "__main__": main(__name__)`.

    A UserError ends in one paragraph and exit 2; as a script, Ctrl-C ends in one line and
    exit 130 (imported, e.g. by the tests, KeyboardInterrupt is left to the caller).
    """
    module = sys.modules[name]
    return exit_on_user_error(_script if name == "__main__" else run)(module, argv)


def _script(module, argv):
    return run(module, argv)


_script.__module__ = "__main__"   # exit_on_user_error: this is the running program


def make_trainer(framework: str, step: str, argv=(), ignore_index=None, dtype="float32"):
    """(Trainer, Step) of an answer lesson for the command line `argv`, without running it.

    For the tests, the parity probe, the benchmark and the checker. 1 output for binary
    steps, else 3; dtype "float64" is the parity tests' exact reference.
    """
    module = lessons.answer(framework, step)
    return make_lesson_trainer(module, argv, ignore_index, dtype)


def make_lesson_trainer(module, argv=(), ignore_index=None, dtype="float32", taught_from=None):
    """make_trainer for any lesson module (a learner's copy too); taught_from: trainer_factory."""
    args = parse_args(module, list(argv))
    st = step_of(module, args)
    num_outputs = 1 if st.task == "binary" else 3
    return trainer_factory(module, args, st, dtype, taught_from)(num_outputs, ignore_index), st
