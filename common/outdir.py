"""The --out folder of a run: can it be written, and does it hold a run already?

One rule for every step script and for compare.py (and for whatever else
writes a run): a run never replaces another run's results unless asked.
Before any data is read or anything trained, `check_out` refuses (UserError,
exit status 2):

- an --out that cannot be written: an existing regular file, a path through
  a file, a read-only folder or mount (probed by creating and removing a
  file, because permission bits say nothing for root or read-only mounts);
- an --out that already holds a run (metrics.json, weights.npz or
  checkpoint.npz), unless the command says what to do with it: --resume
  continues the interrupted run there, --overwrite replaces it. The message
  names the folder, what it holds, and those ways forward plus another --out.

With --overwrite the old run's files (RUN_FILES) are deleted only when the new
run writes its first file (OutFolder.before_write): a new run that fails or is
stopped before that leaves the old one whole, and afterwards the folder never
mixes two runs. Other files in --out are never touched.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.weights import META_KEY

# Any of these means "a run was here".
RUN_MARKERS = ("metrics.json", "weights.npz", "checkpoint.npz")
# Everything a run writes (common/runner.py); --overwrite removes these and nothing else.
RUN_FILES = RUN_MARKERS + ("predictions.npz", "predictions.png", "loss.png", "eval_iou.png")


def broken_link(path) -> str | None:
    """'X is a broken symbolic link (to T, which does not exist)' or None."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"{path} is a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return None


def check_writable(out, flag: str = "--out"):
    """UserError unless files can be created in `out`, or `out` can be created.

    Tried for real: a temporary file is created and removed in `out` (or, when
    `out` does not exist yet, in its nearest existing parent, so nothing is
    created for a run that may still fail its other checks).
    """
    out = Path(out)
    fix = f"Choose a folder you can write to with {flag} DIR (it is created if missing)."
    link = broken_link(out)
    if link:
        raise UserError(f"{flag} {link}. Point the link at a folder, or {fix[0].lower()}{fix[1:]}")
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder. {fix}")
    probe_dir = out
    while not probe_dir.exists():
        if broken_link(probe_dir):
            raise UserError(f"{flag} {out} cannot be created: {broken_link(probe_dir)}. {fix}")
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise UserError(f"{flag} {out} cannot be created: {probe_dir} is a file, not a folder. {fix}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "in it" if probe_dir == out else f"in {probe_dir} (where it would be created)"
        raise UserError(f"{flag} {out} cannot be written: a test file could not be created "
                        f"{where}: {exc.strerror or exc}. Read-only folders and mounts cannot "
                        f"hold a run. {fix}") from None


def _meta(path) -> dict:
    """The JSON meta of a .npz written by common.weights.save_npz, {} if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(str(f[META_KEY])) if META_KEY in f.files else {}
    except Exception:   # a damaged file is still "a run was here"; we only describe it
        return {}


def held_run(out) -> dict | None:
    """What an earlier run left in `out`, or None.

    {"kind": "finished" | "interrupted" | "weights", "files": [...], "text": "a finished run
    (...)"}; "interrupted": a checkpoint.npz without metrics.json (--resume continues it).
    """
    out = Path(out)
    if not out.is_dir():
        return None
    files = [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    if not any(name in files for name in RUN_MARKERS):
        return None
    if "metrics.json" in files:
        kind = "finished"
        try:
            m = json.loads((out / "metrics.json").read_text())
            iou = m.get("mean_iou")
            detail = (f"{m.get('framework', '?')} {m.get('step', '?')}, {m.get('iters', '?')} "
                      f"iterations" + (f", mean IoU {iou:.4f}" if isinstance(iou, float) else ""))
        except (OSError, ValueError, AttributeError):
            detail = "its metrics.json is unreadable"
    elif "checkpoint.npz" in files:
        kind = "interrupted"
        meta = _meta(out / "checkpoint.npz")
        detail = (f"{meta.get('framework', '?')} {meta.get('step', '?')}, checkpoint at "
                  f"iteration {meta.get('iteration', '?')}")
    else:
        kind = "weights"
        detail = "weights.npz of an earlier run"
    words = {"finished": "a finished run", "interrupted": "an interrupted run",
             "weights": "an earlier run's files"}[kind]
    return {"kind": kind, "files": files, "text": f"{words} ({detail}; {', '.join(files)})"}


def free_name(out) -> Path:
    """out-2, out-3, ...: the first that does not exist (a suggestion for messages)."""
    out = Path(out)
    n = 2
    while out.with_name(f"{out.name}-{n}").exists():
        n += 1
    return out.with_name(f"{out.name}-{n}")


class OutFolder:
    """A checked --out. Call before_write() right before writing any file into it."""

    def __init__(self, path, replace: dict | None):
        self.path = Path(path)
        self.replace = replace     # the run --overwrite replaces, until the first write

    def before_write(self):
        """With --overwrite: delete the earlier run's files, once."""
        if self.replace:
            for name in RUN_FILES:
                p = self.path / name
                if p.is_file() or p.is_symlink():
                    p.unlink()
            self.replace = None


def check_out(out, resume: bool = False, overwrite: bool = False, flag: str = "--out",
              what: str = "A new run") -> OutFolder:
    """Check `out` before any work: writable, and holding no run unless told what to do with it.

    resume: the caller continues the run in `out` (its own checks follow).
    overwrite: the run in `out` may be replaced (deleted at the first write).
    Returns the OutFolder to call before_write() on. Raises UserError otherwise.
    """
    out = Path(out)
    if resume and overwrite:
        raise UserError(f"--resume and --overwrite exclude each other: --resume continues the "
                        f"run in {out}, --overwrite replaces it. Choose one.")
    check_writable(out, flag)
    held = held_run(out)
    if held is None or resume:
        return OutFolder(out, None)
    if overwrite:
        return OutFolder(out, held)
    ways = []
    if held["kind"] == "interrupted":
        ways.append("to continue it, run the same command with --resume")
    ways += [f"to keep it, give another {flag} (e.g. {flag} {free_name(out)})",
             "to replace it, add --overwrite (its files are deleted when the new run writes "
             "its first file)"]
    raise UserError(f"{flag} {out} already holds {held['text']}. {what} would replace it, so "
                    f"nothing was started: " + "; ".join(ways) + ".")
