"""A step script as a module, and its Trainer built without running the script.

For the tests, the parity probe and the benchmark: they need a step's network
and Trainer exactly as the script builds them, but not its training run.
Framework-free: the step module brings its own glue (`mod.lab`).
"""
import importlib.util
import sys

from common import REPO


def load_step(framework: str, step: str):
    """Import <framework>/<step>.py (file names start with digits) once per process.

    The framework folder is APPENDED to sys.path (for its glue module), never
    prepended: tensorflow/, keras/ and chainer/ must not shadow the packages.
    """
    folder = str(REPO / framework)
    if folder not in sys.path:
        sys.path.append(folder)
    name = f"{framework}_{step}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / framework / f"{step}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def make_trainer(framework: str, step: str, argv=(), ignore_index=None, dtype="float32"):
    """(Trainer, Step) for the step's command line `argv`; 1 output for binary steps, else 3.

    dtype "float64" builds and trains the network in double precision (the parity tests'
    exact reference); the step scripts always run in float32."""
    mod = load_step(framework, step)
    args = mod.lab.parse_args(mod.__file__, None, list(argv), getattr(mod, "add_arguments", None))
    st = mod.step(args)
    num_outputs = 1 if st.task == "binary" else 3
    make = mod.lab.trainer_factory(args, st, lambda n: mod.build(n, args), dtype=dtype)
    return make(num_outputs, ignore_index), st
