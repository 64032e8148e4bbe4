"""Every notebook in notebooks/ executes top to bottom (small replication counts)."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest
from conftest import SHARED_DATA, require_data

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    # each notebook lists the data files it reads in its metadata; without them the test
    # skips and says which are missing (a fresh clone without shared/data)
    require_data(*nb.metadata["zoneimpact"]["data_files"])
    monkeypatch.setenv("ZONEIMPACT_FAST", "1")
    if SHARED_DATA.exists():
        monkeypatch.setenv("ZONEIMPACT_DATA", str(SHARED_DATA))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
    assert len(nb.cells) <= 20 or path.stem != "quickstart"


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
