"""TWFE and first-difference event studies: the second reference without never-treated
units is taken only when the design needs it, from an observed lead; it is recorded in
``info`` with the window's ends; the tables and figures read them.

Without never-treated units the relative-period dummies sum to a linear trend in event time
(``t - G_i``), which the unit and time effects absorb (Borusyak, Jaravel & Spiess 2024,
Sec. 3), so a second normalisation is needed -- unless bins pool several event times, which
breaks that trend. Before, the most distant lead of the *window* was always dropped: with
``leads=1`` that was event time 0 (a post-treatment period), binned designs identified with
one reference lost a lead, and a window wider than the data dropped nothing.

References for the noise-free panels: the effects that generate them (pyfixest's
``feols("y ~ i(rel, ref=-1) | unit + time")`` recovers them exactly too, as the breaker
checked with /tmp/comparevenv).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import first_difference, twfe
from zoneimpact.panel import Panel
from zoneimpact.report import plots
from zoneimpact.report.tables import event_study_table

FITS = [twfe.fit_event_study, first_difference.fit_event_study]


def _panel(never: bool, mu=None, lo: int = -99, hi: int = 99, noise: float = 0.3) -> Panel:
    """Cohorts 2004/2006/2009 (+ never), 2001-2010. Effect ``mu[clip(e, lo, hi)]`` (default:
    0 before, 1 + 0.3 e after), noise SD ``noise``."""
    rng = np.random.default_rng(7)
    rows = []
    cohorts = [2004, 2006, 2009] + ([np.inf] if never else [])
    for i in range(60):
        g = cohorts[i % len(cohorts)]
        a = rng.normal()
        for t in range(2001, 2011):
            e = int(np.clip(t - g, lo, hi)) if np.isfinite(g) else None
            if e is None:
                eff = 0.0
            elif mu is not None:
                eff = mu[e]
            else:
                eff = 1.0 + 0.3 * e if e >= 0 else 0.0
            y = a + 0.1 * (t - 2000) ** 1.5 + eff + noise * rng.normal()
            rows.append((i, t, g, y))
    df = pd.DataFrame(rows, columns=["unit", "year", "cohort", "y"])
    return Panel.from_frame(df, unit="unit", time="year", cohort="cohort", outcomes=["y"])


def _fit(fn, panel: Panel, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(panel, outcome="y", **kw)


def _est(res) -> dict[str, float]:
    return dict(zip(res.tidy()["term"], res.tidy()["estimate"], strict=True))


def _stub(res) -> list[str]:
    return [s for s in event_study_table(res).to_frame()["Event time"] if s.startswith("E")]


@pytest.mark.parametrize("fn", FITS)
def test_leads_one_binned_keeps_event_zero(fn) -> None:
    # leads=1 + binned endpoints pools every lead into the reference: identified with it
    # alone. Before: event:0 (post-treatment) dropped as a second reference, TWFE att 1.060
    # and FD 0.303 for a truth of 1.45.
    mu = {-1: 0.0, 0: 1.0, 1: 1.3, 2: 1.6, 3: 1.9}
    res = _fit(fn, _panel(False, mu, lo=-1, hi=3, noise=0.0), leads=1, lags=3, bin_endpoints=True)
    est = _est(res)
    # noise-free: exact up to the solver's rounding
    for e in (0, 1, 2, 3):
        assert est[f"event:{e}"] == pytest.approx(mu[e], abs=1e-8)
    assert est["att"] == pytest.approx(1.45, abs=1e-8)
    assert "second_reference" not in res.info


@pytest.mark.parametrize("fn", FITS)
def test_leads_one_unbinned_refuses(fn) -> None:
    # trimmed window [-1, 3], no never-treated: the trend needs a second reference and only
    # post-treatment times are left. Before: att -2.04 for effects of +1 to +1.9.
    with pytest.raises(EstimationError, match="no lead besides the reference -1"):
        _fit(fn, _panel(False), leads=1, lags=3)


@pytest.mark.parametrize("fn", FITS)
def test_binned_design_needs_no_second_reference(fn) -> None:
    # window [-3, 2], endpoints pool several event times: full rank with -1 alone. Before:
    # event:-3 dropped too, event:-2 = -0.304 for a truth of 0, att 1.192 for 1.3.
    mu = {-3: 0.5, -2: 0.0, -1: 0.0, 0: 1.0, 1: 1.3, 2: 1.6}
    res = _fit(fn, _panel(False, mu, lo=-3, hi=2, noise=0.0), leads=3, lags=2, bin_endpoints=True)
    est = _est(res)
    for e in (-3, -2, 0, 1, 2):
        assert est[f"event:{e}"] == pytest.approx(mu[e], abs=1e-8)
    assert est["att"] == pytest.approx(1.3, abs=1e-8)


@pytest.mark.parametrize("fn", FITS)
def test_second_reference_is_an_observed_lead_and_recorded(fn) -> None:
    panel = _panel(False)
    # trimmed window [-3, 3]: each label is one event time, so -3 takes the second
    # normalisation and is recorded
    res = _fit(fn, panel, leads=3, lags=3)
    assert res.info["reference"] == -1
    assert res.info["second_reference"] == -3
    assert (res.info["window_start"], res.info["window_end"]) == (-3, 3)
    assert "event:-3" not in _est(res)
    # a window wider than the data: the most distant *observed* lead (-8) takes it, as
    # with leads=None (before: nothing dropped, a collinearity error)
    wide = _fit(fn, panel, leads=10, lags=6)
    auto = _fit(fn, panel)
    assert wide.info["second_reference"] == auto.info["second_reference"] == -8
    for term, value in _est(auto).items():
        assert _est(wide)[term] == pytest.approx(value, abs=1e-10)
    # with never-treated units nothing else is dropped
    full = _fit(fn, _panel(True), leads=3, lags=3)
    assert "second_reference" not in full.info
    assert "event:-3" in _est(full)


@pytest.mark.parametrize("fn", FITS)
def test_unobserved_reference_is_refused(fn) -> None:
    # biennial periods: event time -1 never occurs. Before: "Regressors [...] are collinear"
    rows = [
        (i, t, [2004, 2008, np.inf][i % 3], float(i % 5 + t % 7))
        for i in range(30)
        for t in range(2000, 2013, 2)
    ]
    df = pd.DataFrame(rows, columns=["unit", "year", "cohort", "y"])
    panel = Panel.from_frame(df, unit="unit", time="year", cohort="cohort", outcomes=["y"])
    with pytest.raises(SpecError, match="Reference event time -1 is not observed"):
        _fit(fn, panel)


def test_binned_endpoint_labels_follow_the_recorded_window() -> None:
    # never-treated units, the requested reference is the window's start (-3): E = -2 is
    # no endpoint (before: "E <= -2", as if it pooled E <= -3 too)
    ref3 = _fit(
        twfe.fit_event_study, _panel(True), leads=3, lags=3, bin_endpoints=True, ref_period=-3
    )
    assert ref3.info["window_start"] == -3
    assert _stub(ref3)[0] == "E = -2"
    assert _stub(ref3)[-1] == "E >= 3"
    usual = _fit(twfe.fit_event_study, _panel(True), leads=3, lags=3, bin_endpoints=True)
    assert _stub(usual)[0] == "E <= -3" and _stub(usual)[-1] == "E >= 3"
    # no never-treated, trimmed: -3 is the second reference, E = -2 is no endpoint
    trimmed = _fit(twfe.fit_event_study, _panel(False), leads=3, lags=3)
    assert _stub(trimmed)[0] == "E = -2"


def test_plot_draws_both_references_at_zero() -> None:
    res = _fit(twfe.fit_event_study, _panel(False), leads=3, lags=3)
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


@pytest.mark.parametrize("fn", FITS)
def test_each_reference_must_be_observed(fn) -> None:
    # ref_period=[-9, -1] with event times -8..6: -9 normalises nothing. Before: accepted and
    # recorded as a reference with never-treated units; a collinearity error without them
    for never in (True, False):
        with pytest.raises(SpecError, match="Reference event time -9 is not observed"):
            _fit(fn, _panel(never), ref_period=[-9, -1], leads=9)
