"""The example notebooks run end to end and show what they promise.

Each notebook is executed once (in a temporary working folder, with the ``python3``
kernel) and its outputs are checked cell by cell, found through the cells' tags.
The notebooks are stored without outputs; that is checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("quickstart.ipynb", "walkthrough_mixed_table.ipynb")
KERNEL = "python3"


def _kernel_available() -> bool:
    try:
        kernelspec.KernelSpecManager().get_kernel_spec(KERNEL)
    except kernelspec.NoSuchKernel:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _kernel_available(),
    reason=f"no Jupyter kernel {KERNEL!r}; install one with: python -m ipykernel install --user",
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """name -> (executed notebook, working folder); each notebook runs once per module."""
    cache: dict[str, tuple] = {}

    def run(name: str) -> tuple:
        if name not in cache:
            notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
            work = tmp_path_factory.mktemp(Path(name).stem)
            client = nbclient.NotebookClient(notebook, timeout=300, kernel_name=KERNEL,
                                             resources={"metadata": {"path": str(work)}})
            client.execute()
            cache[name] = (notebook, work)
        return cache[name]

    return run


def _tagged(notebook, tag: str):
    cells = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def _text(cell) -> str:
    """Everything a code cell printed or displayed, as plain text and HTML."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts += [str(output["data"].get(kind, "")) for kind in ("text/plain", "text/html")]
    return "\n".join(parts)


def _images(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(notebook)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert code_cells
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells)
    assert notebook.metadata["kernelspec"]["name"] == KERNEL


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_without_errors_or_leftover_files(name: str, executed) -> None:
    notebook, work = executed(name)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    errors = [o for c in code_cells for o in c.outputs if o["output_type"] == "error"]
    assert errors == []
    # Temporary folders are removed by the notebook; nothing is written next to it.
    assert list(work.iterdir()) == []


def test_quickstart_outputs(executed) -> None:
    from ensemble_hpo.report import FIGURE_KEYS

    notebook, _ = executed("quickstart.ipynb")
    board = _text(_tagged(notebook, "leaderboard"))
    assert all(word in board for word in ("family", "score", "weight", "logistic", "xgboost"))
    assert "weight" in _text(_tagged(notebook, "ensemble-summary"))
    fusion = _text(_tagged(notebook, "fusion-comparison"))
    assert all(name in fusion for name in ("WeightedAverage", "Stacking", "OptimizedWeights"))
    held_out = _text(_tagged(notebook, "held-out"))
    assert "ensemble" in held_out and "best single" in held_out and "roc_auc" in held_out
    assert "n_bags=10" in _text(_tagged(notebook, "selection-weights"))
    reselected = _text(_tagged(notebook, "reselect"))
    assert "greedy, n_bags=10" in reselected and "held-out log_loss" in reselected
    report = _tagged(notebook, "report")
    assert "report.html" in _text(report)
    assert _images(report) == len(FIGURE_KEYS)


def test_walkthrough_outputs(executed) -> None:
    notebook, _ = executed("walkthrough_mixed_table.ipynb")
    assert "object" in _text(_tagged(notebook, "data-overview"))
    missing = _text(_tagged(notebook, "missing"))
    assert "ageOFocc" in missing and "airbag" in missing
    assert "hist_gradient_boosting" in _text(_tagged(notebook, "by-family"))
    assert "logistic" in _text(_tagged(notebook, "leaderboard"))
    assert "weight" in _text(_tagged(notebook, "ensemble-summary"))
    diversity = _text(_tagged(notebook, "diversity"))
    assert "effective_n_members" in diversity and "mean_correlation" in diversity
    assert "Stacking" in _text(_tagged(notebook, "fusion-comparison"))
    assert "Stacking over" in _text(_tagged(notebook, "stacking"))
    assert "ensemble, stacking" in _text(_tagged(notebook, "held-out"))
    submission = _text(_tagged(notebook, "submission"))
    assert "wrote 1000 rows" in submission and "prob_dead" in submission
