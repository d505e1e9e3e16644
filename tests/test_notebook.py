"""``notebooks/quickstart.ipynb`` runs top to bottom (so it never goes stale): executed with
nbclient on the ``python3`` kernel from the notebooks folder, it raises nothing, prints the
run summary and the tables, and draws its figures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "notebooks" / "quickstart.ipynb"
TIME_LIMIT_S = 60


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        pytest.skip(f"{module} is not installed: pip install -e '.[test]' to run the notebook test")


@pytest.fixture(scope="module")
def executed():
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    _require("ipykernel")
    from jupyter_client.kernelspec import NoSuchKernel

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # run from the notebooks folder, as a user would; the notebook finds this checkout's sim
    # package itself when it is not installed
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: python -m ipykernel install --user")
    elapsed = time.perf_counter() - t0
    return nb, elapsed


def _outputs(nb, kind: str):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if kind == "text" and out.get("output_type") == "stream":
                yield out.get("text", "")
            elif kind == "text" and "data" in out and "text/plain" in out["data"]:
                yield out["data"]["text/plain"]
            elif kind == "png" and "data" in out and "image/png" in out["data"]:
                yield out["data"]["image/png"]
            elif kind == "error" and out.get("output_type") == "error":
                yield out


def test_notebook_runs_without_errors(executed):
    nb, _ = executed
    assert list(_outputs(nb, "error")) == []
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_notebook_is_fast(executed):
    _, elapsed = executed
    assert elapsed < TIME_LIMIT_S, f"the quickstart notebook took {elapsed:.0f} s"


def test_notebook_shows_results(executed):
    """The run summary, the Monte Carlo summary and the paired comparison are shown, and the
    network map, fan chart and scenario comparison are drawn."""
    nb, _ = executed
    text = "\n".join(_outputs(nb, "text"))
    assert "network mini-magnets" in text            # run.summary()
    assert "sector:automotive" in text
    assert "ci95_low" in text                        # Monte Carlo summary
    assert "variance_ratio_paired_vs_unpaired" in text
    assert len(list(_outputs(nb, "png"))) >= 3


def test_notebook_is_stored_without_outputs():
    """The committed notebook holds no outputs (they are made by running it)."""
    nbformat = _require("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
