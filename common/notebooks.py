"""A lesson as a Jupyter notebook, and a notebook back as the code the checker reads (nbformat).

The notebook holds the step's questions (docs/questions/en.md) and the
lesson's docstring as markdown, then the lesson's code, one cell per
top-level definition, the exercise markers kept. Its first code cell names
the lesson file it stands for (`__file__`): the framework is the name of its
folder, as for the .py. The last cell trains, with the options of `argv`.
"""
import ast
import re
from pathlib import Path

from common import REPO

QUESTIONS = REPO / "docs" / "questions" / "en.md"


def questions_of(step: str) -> str:
    """The section of docs/questions/en.md for a step ('## Step 01: ...' up to the next '## ')."""
    text = QUESTIONS.read_text(encoding="utf-8")
    m = re.search(rf"^## Step {step[:2]}\b.*?(?=^## |\Z)", text, re.M | re.S)
    return m.group(0).strip() if m else ""


def cells_of(source: str) -> tuple[str, list[str]]:
    """(docstring, code chunks): the imports in one chunk, then one chunk per top-level
    statement, each with the comments above it and every line up to the next statement (the
    closing exercise markers are comments after a body); `if __name__ == "__main__":` left out."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree) or ""
    body = [n for n in (tree.body[1:] if doc else tree.body)
            if not (isinstance(n, ast.If) and "__name__" in ast.unparse(n.test))]

    def start(node):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        return first
    starts = [start(n) for n in body]
    main_if = [n for n in tree.body if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
    ends = starts[1:] + [start(main_if[0]) if main_if else len(lines)]
    chunks, imports = [], []
    for node, a, b in zip(body, starts, ends):
        text = "\n".join(lines[a:b]).strip("\n")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(text)
        else:
            chunks.append(text)
    return doc, ["\n".join(imports)] + chunks if imports else chunks


def make(py_path, framework: str, step: str, argv=()):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    py_path = Path(py_path).resolve()
    doc, chunks = cells_of(py_path.read_text())
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_markdown_cell(f"# {framework} {step}\n\n{questions_of(step)}"))
    nb.cells.append(new_markdown_cell(doc))
    nb.cells.append(new_code_cell(
        f"# The lesson file this notebook stands for: the checker and the run read its folder.\n"
        f"__file__ = {str(py_path)!r}"))
    for chunk in chunks:
        nb.cells.append(new_code_cell(chunk))
    nb.cells.append(new_markdown_cell(
        "Train and evaluate (the command line's options as a list, e.g. `[\"--iters\", \"100\"]`); "
        "check your answers with `python workshop.py check " f"{framework} {step[:2]}` "
        "(it reads this notebook when it was saved after the .py)."))
    nb.cells.append(new_code_cell(f'if __name__ == "__main__":\n    main(__name__, argv={list(argv)!r})'))
    nbformat.validate(nb)
    return nb


def write(py_path, framework: str, step: str, argv=(), dest=None) -> Path:
    import nbformat
    from common.weights import atomic_write
    dest = Path(dest) if dest else Path(py_path).with_suffix(".ipynb")
    nb = make(py_path, framework, step, argv)
    atomic_write(dest, lambda tmp: nbformat.write(nb, str(tmp)))
    return dest


def to_source(nb_path) -> str:
    """The code cells of a notebook, joined: what the checker loads as the learner's module."""
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code") + "\n"
