"""The teaching notebooks: each runs top to bottom in CI's quick setting, and is stored without outputs.

Each notebook asserts what it teaches, so executing it is the test. The kernel is the
interpreter running pytest (a kernel spec written to a temporary JUPYTER_PATH), the
working folder is a temporary one, and MSPLORA_QUICK=1 selects fewer steps and samples.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from msplora.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
STRIP_SCRIPT = ROOT / "scripts" / "strip_notebooks.py"
CELL_TIMEOUT_S = 300
MAX_CELL_LINES = 25
IDS = [path.stem for path in NOTEBOOKS]


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """Point the python3 kernel spec at this interpreter, and run in a temporary folder with a temporary run store."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    write_kernel_spec(spec_dir, overrides={"argv": argv})
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MSPLORA_QUICK", "1")
    monkeypatch.setenv("MSPLORA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The notebooks' temporary folders (notebook 5 saves a 90 MB merged model) go under tmp_path.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    # One intra-op thread per process unless set, because PyTorch's default of one thread per
    # core contends on a busy machine: 12 MiniLM steps took 47 s instead of 6 s (2 cores, load 9).
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    yield work_dir
    # A notebook that fails before its last cell leaves its engine worker running.
    if (tmp_path / "runs").is_dir():
        Engine(tmp_path / "runs").stop_workers(timeout=30)


def test_notebooks_found():
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01_from_lora_to_a_pyramid.ipynb",
        "02_budgets_what_if.ipynb",
        "03_fine_tuning_through_the_engine.ipynb",
        "04_what_each_level_learns.ipynb",
        "05_taking_it_home.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, kernel_env):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(kernel_env)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(_describe_failure(path, notebook, error), pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {index} has stored outputs; run scripts/strip_notebooks.py"
        assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_structure(path):
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    assert cells[0].cell_type == "markdown", "the first cell is the title"
    assert cells[0].source.startswith("# "), "the title is a level-1 heading"
    assert "MSPLORA_QUICK" in code[0].source, "the first code cell reads MSPLORA_QUICK"
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        lines = len(cell.source.splitlines())
        assert 1 <= lines <= MAX_CELL_LINES, f"cell {index} has {lines} lines"
        if "solution" in cell.metadata.get("tags", []):
            assert cell.metadata["jupyter"]["source_hidden"] is True, f"solution cell {index} is not collapsed"
    solutions = [cell for cell in code if "solution" in cell.metadata.get("tags", [])]
    assert solutions, "every notebook has at least one exercise with a solution"
    assert "assert" in "\n".join(cell.source for cell in code)


def test_strip_script_clears_outputs(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["solution"], "execution": {"iopub.status.busy": "x"}})
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    cell.execution_count = 1
    notebook.cells = [cell]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)

    check = subprocess.run([sys.executable, str(STRIP_SCRIPT), "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 1
    assert "lesson.ipynb" in check.stdout

    subprocess.run([sys.executable, str(STRIP_SCRIPT), str(path)], check=True)
    stripped = nbformat.read(path, as_version=4).cells[0]
    assert stripped.outputs == []
    assert stripped.execution_count is None
    assert stripped.metadata == {"tags": ["solution"]}
    check = subprocess.run([sys.executable, str(STRIP_SCRIPT), "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0


def _describe_failure(path: Path, notebook, error: CellExecutionError) -> str:
    """Name the notebook, the failing cell's index and first lines, and the error."""
    for index, cell in enumerate(notebook.cells):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            head = "\n".join(cell.source.splitlines()[:8])
            return f"{path.name}: cell {index} failed.\n--- cell source ---\n{head}\n--- error ---\n{error}"
    return f"{path.name}: execution failed.\n{error}"
