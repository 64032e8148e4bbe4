"""TWFE and first-difference event studies record the lead they drop as a second reference
(no never-treated units) and their window's ends, and the tables and figures read them.

Before: the figures drew only ``info["reference"]`` at 0, so the lead dropped for
collinearity (Borusyak, Jaravel & Spiess 2024, Sec. 3: without never-treated units the
relative-period dummies are collinear with the unit and time effects up to a linear trend)
was missing from the plot; the tables guessed the binned lower endpoint from whether the
panel had never-treated units, so with a requested reference at the window's start the
first estimated lead was labelled as if it pooled everything before it.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from zoneimpact.estimators import first_difference, twfe
from zoneimpact.panel import Panel
from zoneimpact.report import plots
from zoneimpact.report.tables import event_study_table


def _panel(never: bool) -> Panel:
    rng = np.random.default_rng(7)
    rows = []
    cohorts = [2004, 2006, 2008] + ([np.inf] if never else [])
    for i in range(80):
        g = cohorts[i % len(cohorts)]
        a = rng.normal()
        for t in range(2000, 2011):
            e = t - g
            y = a + 0.1 * t + (1.0 + 0.5 * e if e >= 0 else 0.0) + 0.3 * rng.normal()
            rows.append((i, t, g, y))
    df = pd.DataFrame(rows, columns=["unit", "year", "cohort", "y"])
    return Panel.from_frame(df, unit="unit", time="year", cohort="cohort", outcomes=["y"])


def _fit(fn, panel: Panel, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(panel, outcome="y", **kw)


def _stub(res) -> list[str]:
    return [s for s in event_study_table(res).to_frame()["Event time"] if s.startswith("E")]


@pytest.mark.parametrize("fn", [twfe.fit_event_study, first_difference.fit_event_study])
def test_second_reference_and_window_are_recorded(fn) -> None:
    res = _fit(fn, _panel(never=False), leads=3, lags=3, bin_endpoints=True)
    # window [-3, 3]; -1 requested; -3 (the window's first lead) dropped for collinearity
    assert res.info["reference"] == -1
    assert res.info["second_reference"] == -3
    assert (res.info["window_start"], res.info["window_end"]) == (-3, 3)
    assert "event:-3" not in list(res.tidy()["term"])
    # with never-treated units nothing else is dropped: no second_reference entry
    full = _fit(fn, _panel(never=True), leads=3, lags=3, bin_endpoints=True)
    assert "second_reference" not in full.info
    assert "event:-3" in list(full.tidy()["term"])


def test_binned_endpoint_labels_follow_the_recorded_window() -> None:
    # no never-treated: -3 dropped, so E = -2 is no endpoint; E = 3 pools E >= 3
    res = _fit(twfe.fit_event_study, _panel(never=False), leads=3, lags=3, bin_endpoints=True)
    assert _stub(res) == ["E = -2", "E = 0", "E = 1", "E = 2", "E >= 3"]
    # never-treated units but the requested reference is the window's start (-3, binned):
    # E = -2 is no endpoint (before: "E <= -2", as if it pooled E <= -3 too)
    ref3 = _fit(
        twfe.fit_event_study,
        _panel(never=True),
        leads=3,
        lags=3,
        bin_endpoints=True,
        ref_period=-3,
    )
    assert ref3.info["window_start"] == -3
    assert _stub(ref3)[0] == "E = -2"
    assert _stub(ref3)[-1] == "E >= 3"
    # the usual case still labels both ends
    usual = _fit(twfe.fit_event_study, _panel(never=True), leads=3, lags=3, bin_endpoints=True)
    assert _stub(usual)[0] == "E <= -3" and _stub(usual)[-1] == "E >= 3"


def test_plot_draws_both_references_at_zero() -> None:
    res = _fit(twfe.fit_event_study, _panel(never=False), leads=3, lags=3, bin_endpoints=True)
    ax = plots.event_study_plot(res).axes[0]
    hollow = [
        (float(x), float(y))
        for line in ax.get_lines()
        if line.get_markerfacecolor() == "white"
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
    ]
    # before: only (-1, 0); the dropped lead -3 was not drawn
    assert sorted(hollow) == [(-3.0, 0.0), (-1.0, 0.0)]
    assert plots._pre_period_meaning(res) == "vs. E = -3, -1 (reference periods)"
