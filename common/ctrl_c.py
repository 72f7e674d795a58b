"""Imported first by every lesson, before its framework: `import common.ctrl_c`.

Importing a framework takes seconds; from here on, Ctrl-C ends the script
with one line and exit status 130 instead of a traceback (common/interrupt.py).
"""
from common import interrupt

interrupt.install()
