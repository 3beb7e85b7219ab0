"""Clear outputs, execution counts and run metadata from notebooks, so the repository stores them clean.

    python scripts/strip_notebooks.py                 # every notebooks/*.ipynb, in place
    python scripts/strip_notebooks.py --check         # exit 1 and list the notebooks that need it
    python scripts/strip_notebooks.py path.ipynb ...  # only these files

Cell metadata other than run records (`execution`, `collapsed`, `scrolled`) is kept,
so collapsed solution cells stay collapsed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# Cell metadata that records a run or a view state rather than the lesson.
RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def strip(notebook: nbformat.NotebookNode) -> bool:
    """Clear the outputs and run records of every cell in place, and return True when anything changed."""
    changed = False
    for cell in notebook.cells:
        for key in RUN_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs = []
            cell.execution_count = None
            changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to strip (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing, but exit 1 if a notebook needs stripping")
    args = parser.parse_args(argv)

    paths = args.paths or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    dirty = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if not strip(notebook):
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(notebook, path)
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
