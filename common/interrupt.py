"""Ctrl-C outside the training loop: one line on stderr, exit status 130, no traceback.

Inside the loop, runner.StopOnSigint finishes the iteration and saves a
checkpoint. Everywhere else (importing a framework takes seconds, then
reading data, evaluating, writing) Python would raise KeyboardInterrupt
wherever the program happens to be and print a traceback. Every step script
imports common/ctrl_c.py before anything else, which calls install()
here; the runner keeps `note` saying what is on disk at that moment.
"""
import re
import signal
import sys
from pathlib import Path

from common.frameworks import FRAMEWORKS

# What a Ctrl-C leaves behind, kept current by common.runner.run ("" = nothing to add).
note = ""


def message() -> str:
    return "interrupted (Ctrl-C)" + (f"; {note}" if note else "") + "."


def _stop(signum, frame):
    print(f"\n{message()}", file=sys.stderr, flush=True)
    raise SystemExit(130)


def is_step_script(main_file) -> bool:
    """True for <framework folder>/NN_<step>.py (the answers, and a learner's copy in workshop/),
    not inside Jupyter (a notebook's kernel keeps its own Ctrl-C: interrupt the cell)."""
    path = Path(main_file).resolve()
    return ("IPython" not in sys.modules and path.parent.name in FRAMEWORKS
            and re.fullmatch(r"\d\d_\w+\.py", path.name) is not None)


def install():
    """SIGINT -> one line and exit 130, when a step script is the running program.

    A step module imported by the tests (or by another program) leaves the
    caller's Ctrl-C handling alone.
    """
    global note
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file or not is_step_script(main_file):
        return
    try:
        signal.signal(signal.SIGINT, _stop)
        note = "nothing was written"   # the runner says more once it starts
    except ValueError:   # not the main thread
        pass
