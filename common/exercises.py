"""Exercises made from the answers: marked regions of a lesson become blanks.

In an answer file, the lines a learner writes sit between two comments:

        # >>> Q1.1 a one-line hint
        self.conv = nn.Conv2d(...)
        # <<< Q1.1

The learner's copy keeps both comments and replaces the lines between them
with `raise NotImplementedError(...)` naming the question and the hint, so an
untouched exercise fails loudly with its number. A question may have several
regions (a class's __init__ and forward). Regions sit inside a function body,
where a `raise` is a statement. Nothing is written twice: the copy is made
from the answer each time (workshop.py start).
"""
import hashlib
import re
from dataclasses import dataclass

OPEN = re.compile(r"^(?P<indent>[ \t]*)# >>> (?P<qid>Q\d+\.\d+)(?: (?P<hint>.*?))?\s*$")
CLOSE = re.compile(r"^[ \t]*# <<< (?P<qid>Q\d+\.\d+)\s*$")
QUESTIONS_DOC = "docs/questions/en.md"


class MarkerError(ValueError):
    """An answer file whose markers do not pair up."""


@dataclass(frozen=True)
class Region:
    qid: str        # "Q1.1"
    hint: str
    indent: str
    first: int      # 0-based line number of the `# >>>` comment
    last: int       # 0-based line number of the `# <<<` comment


def regions(text: str, source: str = "<text>") -> list[Region]:
    """The marked regions of a file, in order; MarkerError names the line of a broken pair."""
    out, open_ = [], None
    for n, line in enumerate(text.splitlines()):
        m_open, m_close = OPEN.match(line), CLOSE.match(line)
        if m_open:
            if open_ is not None:
                raise MarkerError(f"{source}:{n + 1}: '# >>> {m_open['qid']}' inside the region of "
                                  f"{open_['qid']} opened on line {open_['line'] + 1}; close it first "
                                  f"with '# <<< {open_['qid']}'.")
            open_ = {"qid": m_open["qid"], "hint": (m_open["hint"] or "").strip(),
                     "indent": m_open["indent"], "line": n}
        elif m_close:
            if open_ is None or m_close["qid"] != open_["qid"]:
                expected = f"'# <<< {open_['qid']}'" if open_ else "no closing marker"
                raise MarkerError(f"{source}:{n + 1}: '# <<< {m_close['qid']}' where {expected} "
                                  "was expected.")
            out.append(Region(open_["qid"], open_["hint"], open_["indent"], open_["line"], n))
            open_ = None
    if open_ is not None:
        raise MarkerError(f"{source}:{open_['line'] + 1}: '# >>> {open_['qid']}' is never closed; "
                          f"add '# <<< {open_['qid']}' after its last line.")
    return out


def questions(text: str, source: str = "<text>") -> list[str]:
    """The question numbers of a file, each once, in order of first appearance."""
    return list(dict.fromkeys(r.qid for r in regions(text, source)))


def blank_line(region: Region) -> str:
    hint = f"; hint: {region.hint}" if region.hint else ""
    message = f"{region.qid} is not done yet ({QUESTIONS_DOC}, {region.qid}){hint}"
    return f"{region.indent}raise NotImplementedError({message!r})"


def blank(text: str, source: str = "<text>") -> str:
    """The learner's copy of an answer: every region's lines replaced by one `raise`."""
    lines = text.splitlines()
    out, pos = [], 0
    for r in regions(text, source):
        out += lines[pos:r.first + 1]
        out.append(blank_line(r))
        pos = r.last
    out += lines[pos:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def region_lines(text: str, qid: str) -> list[tuple[int, int]]:
    """1-based (first, last) line numbers of the learner's lines of question `qid` (between markers)."""
    return [(r.first + 2, r.last) for r in regions(text) if r.qid == qid]


def untouched(text: str, qid: str) -> bool:
    """True while every region of `qid` still holds only the blank `raise` line."""
    lines = text.splitlines()
    found = [r for r in regions(text) if r.qid == qid]
    return bool(found) and all(
        [ln.strip() for ln in lines[r.first + 1:r.last] if ln.strip()] == [blank_line(r).strip()]
        for r in found)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
