"""Notebooks show figures inline and progress bars without widget warnings."""

from __future__ import annotations

import json
from pathlib import Path

import nbclient
import nbformat

QUICKSTART = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"

CELLS = [
    "%matplotlib inline\n"
    "import numpy as np\n"
    "from zoneimpact.parallel import replicate\n"
    "from zoneimpact.report import event_study_plot\n"
    "from zoneimpact.results import EstimationResult, terms_frame",
    # A loop with a progress bar (forced on): tqdm.auto without ipywidgets would print
    # "IProgress not found. Please update jupyter and ipywidgets."
    "replicate(lambda i, rng: float(rng.normal()), 3, rng=0, progress=True, desc='draws')",
    "res = EstimationResult('callaway_santanna', 'fdi', terms_frame(\n"
    "    [f'event:{e}' for e in range(-2, 3)], [0, 0, 1, 2, 3], [0.5] * 5))\n"
    "fig = event_study_plot(res)\n"
    "fig",
]


def test_figures_inline_and_no_widget_warning(monkeypatch):
    # The quickstart does not force a non-interactive backend (its figure would not show).
    src = "".join("".join(c["source"]) for c in json.loads(QUICKSTART.read_text())["cells"])
    assert 'matplotlib.use("Agg")' not in src and "%matplotlib inline" in src
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "IProgress" not in text and "ipywidgets" not in text
    shown = nb.cells[2].outputs
    assert any("image/png" in o.get("data", {}) for o in shown), shown
