"""report.html: self-contained (no network resources), figures embedded, renders non-blank."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from zoneimpact.errors import ZoneImpactError  # noqa: E402
from zoneimpact.report import plots  # noqa: E402
from zoneimpact.report.html import ReportError, figure_to_png, write_report  # noqa: E402
from zoneimpact.report.tables import claims_table, regression_table  # noqa: E402
from zoneimpact.results import EstimationResult, terms_frame  # noqa: E402


@dataclass(frozen=True)
class SCResult(EstimationResult):
    treated_path: pd.Series | None = None
    synthetic_path: pd.Series | None = None
    treatment_period: int | None = None
    treated_unit: str | None = None


def _results() -> dict[str, EstimationResult]:
    ev = np.arange(-3, 4)
    est = np.where(ev >= 0, 0.1 * (ev + 1), 0.0)
    es = EstimationResult(
        "callaway_santanna",
        "lemp",
        terms_frame(["att", *[f"event:{e}" for e in ev]], [0.2, *est], [0.05] * 8),
        n_units=500,
        n_obs=2500,
        info={"control_group": "never_treated", "pretrend_p": 0.6},
    )
    years = np.arange(1980, 2000)
    path = pd.Series(100.0 - years + 1980, index=years)
    sc = SCResult(
        "synthetic_control",
        "cigsale",
        terms_frame(["att", "weight:Utah", "weight:<Nevada&Co>"], [-19.0, 0.4, 0.6], [np.nan] * 3),
        n_units=39,
        n_obs=780,
        treated_path=path,
        synthetic_path=path + np.r_[np.zeros(9), np.arange(11)],
        treatment_period=1989,
        treated_unit="California",
    )
    return {"CS event study": es, "SC <California>": sc}


def _verdicts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "claim": ["Zones raised employment", "Zones did not move FDI"],
            "data": ["mpdta", "mpdta"],
            "estimator": ["callaway_santanna", "spillover"],
            "estimate": [0.2, 0.01],
            "ci_low": [0.1, -0.05],
            "ci_high": [0.3, 0.07],
            "margin": [np.nan, 0.1],
            "breakdown": [0.5, np.nan],
            "verdict": ["supported", "inconclusive"],
        }
    )


def _write(tmp_path, **kw):
    res = _results()
    figs = {
        "event_study": plots.event_study_plot(res["CS event study"]),
        "sc_paths": plots.sc_paths_plot(res["SC <California>"]),
    }
    png = tmp_path / "gap.png"
    png.write_bytes(figure_to_png(plots.sc_gap_plot(res["SC <California>"])))
    figs["sc_gap (file)"] = png
    args = dict(
        title="Zones & jobs <test>",
        results=res,
        tables={
            "Main": regression_table(list(res.values())),
            "Claims": claims_table(_verdicts()),
            "raw": pd.DataFrame({"a": [1.5, np.nan]}),
        },
        figures=figs,
        verdicts=_verdicts(),
        manifest={
            "spec": "specs/test.toml",
            "seed": 20240501,
            "versions": {"numpy": np.__version__},
            "url_note": "see https://example.org (text only)",
        },
    )
    args.update(kw)
    return write_report(tmp_path / "report.html", **args)


def test_report_self_contained(tmp_path):
    out = _write(tmp_path)
    assert out == tmp_path / "report.html"
    text = out.read_text(encoding="utf-8")
    # No resource loaded from anywhere: every src/href is a data: URI or an in-page anchor.
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert refs, "expected anchors and images"
    assert all(r.startswith(("data:", "#")) for r in refs), [
        r for r in refs if not r.startswith(("data:", "#"))
    ]
    assert not re.search(r"<(script|link|iframe)\b", text)
    assert "@import" not in text and "url(" not in text
    # Three embedded PNGs that decode to PNG bytes.
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(imgs) == 3
    assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in imgs)
    # Escaping of names and titles.
    assert "<title>Zones &amp; jobs &lt;test&gt;</title>" in text
    assert "SC &lt;California&gt;" in text and "<California>" not in text
    # Verdicts colour-coded, manifest folded, weights folded.
    assert 'class="verdict v-supported"' in text and 'class="verdict v-inconclusive"' in text
    assert "<details><summary>Run manifest (JSON)</summary>" in text and "20240501" in text
    assert "Weights (2 rows)" in text
    # The regression table and the claims table are in.
    assert "(0.050)" in text and "Zones did not move FDI" in text


def test_report_deterministic_and_dir_target(tmp_path):
    a = _write(tmp_path).read_bytes()
    d = tmp_path / "run"
    d.mkdir()
    out = write_report(d, title="x")
    assert out == d / "report.html" and out.exists()
    b = _write(tmp_path).read_bytes()
    assert a == b


def test_report_bad_inputs(tmp_path):
    with pytest.raises(ReportError, match="not a PNG"):
        bad = tmp_path / "x.png"
        bad.write_text("hello")
        write_report(tmp_path / "r.html", title="t", figures={"x": bad})
    with pytest.raises(ZoneImpactError, match="does not exist"):
        write_report(tmp_path / "nope" / "r.html", title="t")
    with pytest.raises(ReportError, match="Table or a DataFrame"):
        write_report(tmp_path / "r.html", title="t", tables={"t": 3})
    assert not list(tmp_path.glob(".report-*"))  # no temporary file left behind


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    out = _write(tmp_path)
    shot = tmp_path / "shot.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        out.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (1600, 1200)
    # A blank page has zero variance; text, tables and figures give a large one. Threshold
    # far below what the page gives (about 900 here) and far above a blank render (0).
    assert img.var() > 100.0
    # Dark pixels (text, lines) cover a visible share of the page.
    assert (img < 128).mean() > 0.01
