"""Imported first by every step script in this folder, before its framework.

Importing a framework takes seconds; from here on, Ctrl-C ends the script
with one line and exit status 130 instead of a traceback (common/interrupt.py).
The same file is in each framework folder.
"""
import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)   # appended, never prepended (see seg_*.py)

from common import interrupt  # noqa: E402

interrupt.install()
