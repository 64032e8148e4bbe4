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


# ----------------------------------------------------------------------------- page layout
def _precise() -> EstimationResult:
    # z = 100: p is about 1e-2174 -> must print "<0.001", never "3.8e-41"-style.
    return EstimationResult(
        "twfe",
        "fdi",
        terms_frame(["att"], [10.0], [0.1]),
        n_units=50,
        n_obs=500,
        info={"cluster": "unit", "n_clusters": 50, "pretrend_p": 1e-9},
    )


def _wide_table() -> pd.DataFrame:
    # 14 columns of long names: wider than 1280 px on its own.
    return pd.DataFrame({f"a rather long column name {i}": [123456.789] for i in range(14)})


def test_report_layout_summary_first_tables_folded_p_values(tmp_path):
    res = {**_results(), "precise": _precise()}
    out = _write(
        tmp_path,
        results=res,
        summary=["Headline estimates: TWFE 10.0 [9.8, 10.2].", "Simulated truth: 10."],
        tables={"Main": regression_table(res), "wide": _wide_table()},
    )
    text = out.read_text(encoding="utf-8")
    # Order: summary, verdicts, figures, tables, estimates, manifest.
    pos = [text.index(f'<section id="{s}"') for s in ("summary", "verdicts", "figures", "tables")]
    assert pos == sorted(pos)
    assert "<p>Headline estimates: TWFE 10.0 [9.8, 10.2].</p>" in text
    tables = text[text.index('<section id="tables"') : text.index('<section id="results"')]
    # Every table folded (no open attribute), each inside a horizontal scroll box.
    assert tables.count("<details") == 2 and "<details open" not in tables
    assert tables.count('<div class="scroll">') == 2
    assert "<summary>Main</summary>" in tables and "<summary>wide</summary>" in tables
    # p-values as papers print them.
    assert "&lt;0.001" in text
    assert not re.search(r"<td>[0-9.]+e-\d+</td>", text)
    # Figures at their printed size: 3.5 in at 150 px/in, so 7 pt text is 14.6 px.
    widths = [int(w) for w in re.findall(r'<img [^>]*width="(\d+)"', text)]
    assert widths and all(w == 525 for w in widths)
    assert 7 / 72 * 150 >= 9  # the smallest figure text (7 pt ticks) displayed in px


def test_display_size_reads_png_resolution():
    from zoneimpact.report.html import _display_size

    fig = plots.event_study_plot(_results()["CS event study"])
    for dpi in (100, 200, 300):
        w, h = _display_size(figure_to_png(fig, dpi=dpi))
        assert w == pytest.approx(3.5 * 150, abs=2), dpi  # the same inches at any dpi


_PROBE = """
<script>
document.querySelectorAll('details').forEach(d => d.open = true);
const imgs = [...document.images].map(i => i.getBoundingClientRect().width / i.naturalWidth);
const fonts = [...document.querySelectorAll('p,td,th,summary,figcaption,li,code')]
  .filter(e => e.textContent.trim())
  .map(e => parseFloat(getComputedStyle(e).fontSize));
const probe = document.createElement('pre');
probe.id = 'probe';
probe.textContent = JSON.stringify({
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  minImgScale: Math.min(...imgs),
  minFont: Math.min(...fonts),
});
document.body.appendChild(probe);
</script>
"""


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed")
def test_report_no_horizontal_overflow_at_1280(tmp_path):
    import json

    from PIL import Image

    res = {**_results(), "precise": _precise()}
    out = _write(
        tmp_path,
        results=res,
        summary=["A summary paragraph. " * 30],
        tables={"Main": regression_table(res), "wide": _wide_table()},
    )
    probe = tmp_path / "probe.html"
    probe.write_text(
        out.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8"
    )
    base = [
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
        "--window-size=1280,1600",
    ]
    proc = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout)
    assert m, proc.stderr[-2000:]
    got = json.loads(m.group(1).replace("&quot;", '"'))
    # Every table unfolded, the 14-column one included: the page itself never scrolls
    # sideways at 1280 px (wide tables scroll inside their own box).
    assert got["clientWidth"] == 1280
    assert got["scrollWidth"] <= got["clientWidth"], got
    # Figures (PNG at 150 dpi) shown at 150 px/in, i.e. at scale 1: 7 pt figure text is
    # 14.6 px; it must stay >= 9 px (scale >= 0.62). Page text >= 9 px.
    assert got["minImgScale"] >= 9 / (7 / 72 * 150), got
    assert got["minFont"] >= 9, got
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", out.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (1600, 1280)
    # The right edge is white (nothing cut off there); text and figures cover the page.
    assert img[:, -20:].min() > 240
    assert (img < 128).mean() > 0.01
