"""Inputs that used to give the spillover decomposition wrong numbers without a word.

Each case was found by a breaker's read of the code (session 19, ``benchmarks/RESULTS.md``):
a never-treated code that is also a period, exposure onsets at or below 0, an exposure map
built on other cohorts, the CS base on pieces whose units leave after their zone opens,
sources given as dates or out of range, tied k-nearest neighbours and a post-zone covariate
baseline. Each test fails on the code before the fix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, GeographyError, PanelError, SpecError
from zoneimpact.estimators import callaway_santanna, imputation, spillover, sun_abraham, twfe
from zoneimpact.exposure import exposure_from_knn, exposure_from_onsets, exposure_from_rings
from zoneimpact.panel import Panel
from zoneimpact.sensitivity import cv_cutoff
from zoneimpact.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(rng=1)


def _frames(sim):
    p = sim.panel
    return p.data[["unit", "time", "cohort", "fdi", "x"]].copy(), p.geography.reset_index()


def _since(df, geo, year, **kw):
    """The panel with periods and cohorts counted from ``year``."""
    shifted = df.assign(time=df["time"] - year, cohort=df["cohort"] - year)
    return Panel.from_frame(
        shifted, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], geography=geo, **kw
    )


def test_a_never_code_that_is_a_period_is_refused(sim):
    df, geo = _frames(sim)
    # years since 2000: the 2000 cohort becomes cohort 0, which never_values=(0,) read as
    # never treated, turning 27 zone units into controls (direct 75.7 -> 52.4)
    with pytest.raises(PanelError, match=r"holds 0 at 27 unit\(s\).*observed period"):
        _since(df, geo, 2000)
    # with never-treated units as NaN and no never code, the same data are read as dated
    p = _since(df, geo, 2000, never_values=())
    n_zones = int(np.isfinite(sim.panel.unit_cohort.to_numpy(float)).sum())
    assert int(np.isfinite(p.unit_cohort.to_numpy(float)).sum()) == n_zones
    # periods counted from 0 with 0 for never (the common coding): 0 is the first period,
    # where a zone would have no untreated period, so the code keeps its meaning
    counted = df.assign(time=df["time"] - 1996, cohort=(df["cohort"] - 1996).fillna(0))
    p0 = Panel.from_frame(
        counted, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], geography=geo
    )
    assert int(np.isfinite(p0.unit_cohort.to_numpy(float)).sum()) == n_zones


def test_onsets_at_or_below_zero_are_onsets_where_they_are_periods(sim):
    df, geo = _frames(sim)
    p = _since(df, geo, 2000, never_values=())
    clean = p.unit_cohort.index[~np.isfinite(p.unit_cohort.to_numpy(float))][:40]
    for onset in (1, 0, -2):  # all periods of this panel (-4..22)
        em = exposure_from_onsets(p, pd.Series(onset, index=clean))
        assert (em.table["role"] == "exposed").sum() == 40
    # 0 where it is not a period keeps R did's meaning, never
    em = exposure_from_onsets(sim.panel, pd.Series(0, index=clean))
    assert (em.table["role"] == "exposed").sum() == 0


def test_a_map_built_on_other_cohorts_is_refused(sim):
    df, geo = _frames(sim)
    # a placebo panel (zones three years earlier) fitted with the original panel's map
    # mixed the two: the pieces took the map's cohorts, the region check the panel's
    placebo = Panel.from_frame(
        df.assign(cohort=df["cohort"] - 3),
        unit="unit",
        time="time",
        cohort="cohort",
        outcomes=["fdi"],
        geography=geo,
        adjacency=sim.panel.adjacency,
    )
    emap = exposure_from_rings(sim.panel, [(0, 60)])
    with pytest.raises(SpecError, match="built on other cohorts"):
        spillover.fit(placebo, outcome="fdi", rng=1, n_boot=0, exposure=emap)
    # a map of a larger panel on a subpanel: its rows outside the panel are dropped, so
    # the unit counts are the subpanel's
    units = sim.panel.units[:200]
    sub = sim.panel.replace(data=sim.panel.data[sim.panel.data["unit"].isin(units)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sub, outcome="fdi", rng=1, n_boot=0, exposure=emap)
    counts = [res.info[k] for k in ("n_direct_units", "n_exposed_units", "n_clean_units")]
    assert sum(counts) == 200


def _leaving_world() -> tuple[Panel, float, float]:
    """Noiseless: effects 10 + 5 e, half of the 2004 cohort leaves after 2005."""
    rng = np.random.default_rng(3)
    rows, geo = [], []
    for i in range(60):
        u, c = f"u{i:02d}", 2004 if i < 10 else (2007 if i < 20 else np.nan)
        a = rng.normal(0, 5)
        geo.append({"unit": u, "region": f"R{i % 6}", "lat": 20 + i * 1.0, "lon": 100.0})
        for t in range(2001, 2011):
            tau = 10 + 5 * (t - c) if c == c and t >= c else 0.0
            rows.append({"unit": u, "time": t, "cohort": c, "y": a + 0.3 * (t - 2000) ** 1.5 + tau})
            rows[-1]["tau"] = tau
    df = pd.DataFrame(rows)
    gone = df["unit"].isin([f"u{i:02d}" for i in range(5)]) & (df["time"] > 2005)
    df = df[~gone]
    post = df["time"] >= df["cohort"]
    p = Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes=["y"], geography=pd.DataFrame(geo)
    )
    return p, float(df.loc[post, "tau"].mean()), float(df.loc[post, "tau"].sum())


def test_cs_base_means_are_the_targets_means_when_units_leave():
    panel, mean, total = _leaving_world()
    assert mean == pytest.approx(20.0) and total == pytest.approx(1700.0)
    kw = dict(outcome="y", rng=1, n_boot=0, exposure="rings", rings_km=[(0, 1)])
    for base in ("imputation", "callaway_santanna"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = spillover.fit(panel, base_estimator=base, **kw).terms.set_index("term")
        # noiseless: exact up to rounding (CS's att weighted the 2004 cells by the whole
        # cohort and read 22.27 / 1893.18 before)
        assert t.at["direct", "estimate"] == pytest.approx(mean, abs=1e-9)
        assert t.at["direct_total", "estimate"] == pytest.approx(total, abs=1e-7)


def test_sources_are_read_on_the_panel_period_scale(sim):
    df, geo = _frames(sim)
    clean = sim.panel.unit_cohort.index[~np.isfinite(sim.panel.unit_cohort.to_numpy(float))]
    g0 = geo.set_index("unit").loc[clean[0]]
    src = pd.DataFrame(
        {"unit": ["S1"], "lat": [g0["lat"] + 0.05], "lon": [g0["lon"]], "cohort": [2005]}
    )
    dated = df.assign(
        time=pd.to_datetime(df["time"].astype(str) + "-01-01"),
        cohort=pd.to_datetime(
            df["cohort"].map(lambda c: f"{int(c)}-01-01" if np.isfinite(c) else None)
        ),
    )
    kw = dict(unit="unit", time="time", cohort="cohort", outcomes=["fdi"], geography=geo)
    # a Timestamp opening was stored as nanoseconds (1.1e15): the source never opened
    p = Panel.from_frame(dated, **kw, sources=src.assign(cohort=pd.Timestamp("2005-06-30")))
    assert p.sources["cohort"].iloc[0] == 2005
    onset = exposure_from_rings(p, [(0, 60)]).table.loc[clean[0], "exposure_onset"]
    assert onset == 2005
    bad = {
        "lat": src.assign(lat=200.0),
        "whole period": src.assign(cohort=2005.5),
        "never-treated code": src.assign(cohort=0),
        "more than once": pd.concat([src, src.assign(cohort=2010)]),
    }
    for match, s in bad.items():
        with pytest.raises(GeographyError, match=match):
            Panel.from_frame(df, **kw, sources=s)
    # a monthly panel (each year of the simulation read as a month) with a source opening
    # given as a number: a year or an internal month code, ambiguous, so refused
    start = pd.Timestamp("2000-01-01")
    to_month = {y: start + pd.DateOffset(months=y - 1996) for y in range(1990, 2030)}
    monthly = df.assign(
        time=df["time"].map(to_month),
        cohort=df["cohort"].map(lambda c: to_month[int(c)] if np.isfinite(c) else pd.NaT),
    )
    with pytest.raises(GeographyError, match="does not hold dates"):
        Panel.from_frame(monthly, **kw, sources=src)


def test_tied_nearest_neighbours_do_not_depend_on_labels():
    rng = np.random.default_rng(0)
    rows, geo = [], []
    for a in range(6):
        for b in range(6):
            u = f"g{a}{b}"
            geo.append({"unit": u, "lat": 0.5 * (a - 3), "lon": 0.5 * (b - 3)})
            c = 2004 if (a, b) == (2, 2) else (2005 if (a, b) == (4, 4) else np.nan)
            for t in range(2001, 2007):
                rows.append({"unit": u, "time": t, "cohort": c, "y": t + rng.normal()})
    df, geo = pd.DataFrame(rows), pd.DataFrame(geo)
    relabel = {u: f"h{99 - int(u[1:]):02d}" for u in geo["unit"]}
    back = {v: k for k, v in relabel.items()}
    kw = dict(unit="unit", time="time", cohort="cohort", outcomes=["y"])
    p1 = Panel.from_frame(df, **kw, geography=geo)
    p2 = Panel.from_frame(
        df.assign(unit=df["unit"].map(relabel)),
        **kw,
        geography=geo.assign(unit=geo["unit"].map(relabel)),
    )
    e1, e2 = exposure_from_knn(p1, 1), exposure_from_knn(p2, 1)
    ex1 = sorted(e1.table.index[e1.table["role"] == "exposed"])
    ex2 = sorted(back[u] for u in e2.table.index[e2.table["role"] == "exposed"])
    # each zone's two east-west neighbours tie (its north-south ones are a little
    # farther): both count, whatever the labels (a label-order tie-break kept one, and
    # relabelling moved the spillover from 1.02 to 0.93)
    assert ex1 == ex2 and len(ex1) == 4


def test_a_post_zone_covariate_baseline_warns(sim):
    df, geo = _frames(sim)
    df["xv"] = df["x"] + np.where(df["time"] >= df["cohort"], 3.0, 0.0)
    early = df.loc[df["cohort"] == 2000, "unit"].unique()
    df.loc[df["unit"].isin(early) & (df["time"] < 2000), "xv"] = np.nan
    p = Panel.from_frame(
        df,
        unit="unit",
        time="time",
        cohort="cohort",
        outcomes=["fdi"],
        covariates=["xv"],
        geography=geo,
        adjacency=sim.panel.adjacency,
    )
    with pytest.warns(
        UserWarning, match=rf"\({len(early)} in all\) have no pre-zone period"
    ) as rec:
        spillover.fit(p, outcome="fdi", covariates=["xv"], rng=1, n_boot=0)
    assert any(w.filename == __file__ for w in rec)


def test_a_covariate_named_by_a_string_is_one_covariate():
    # covariates="xx" was read as ["x", "x"] (list of the string's letters): refused as
    # two unknown columns; one name counts as a list of one, as in every other estimator
    s = simulate(rng=5, n_units=60, n_regions=6, first_year=2001, last_year=2010,
                 waves={2004: 0.5, 2007: 0.5})  # fmt: skip
    p = Panel.from_frame(
        s.panel.data.rename(columns={"x": "xx"}), unit="unit", time="time", cohort="cohort",
        outcomes=["fdi"], covariates=["xx"], geography=s.geography,
    )  # fmt: skip
    kw = dict(outcome="fdi", exposure="region", n_boot=0, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = spillover.fit(p, covariates="xx", **kw).terms
        listed = spillover.fit(p, covariates=["xx"], **kw).terms
    pd.testing.assert_frame_equal(one, listed)
    assert listed.set_index("term").loc["direct", "estimate"] != pytest.approx(
        spillover.fit(p, **kw).terms.set_index("term").loc["direct", "estimate"]
    )
    # the cross-validated cutoff alike
    cv = [cv_cutoff(p, "fdi", (0, 50), covariates=c, n_folds=2)[1] for c in ("xx", ["xx"])]
    pd.testing.assert_frame_equal(*cv)


def test_fieller_parts_are_reported_in_the_outcome_units(sim):
    # an outcome of order 1e30 is fitted on a rescaled copy; Fieller's totals and
    # (co)variances in info stayed on the copy's scale (a breaker's check)
    kw = dict(outcome="fdi", rng=1, n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = spillover.fit(sim.panel, **kw)
        big = spillover.fit(sim.panel.with_outcome("fdi", sim.panel.data["fdi"] * -1e30), **kw)
    assert big.info["outcome_rescaled_by"] != 1.0
    powers = (1, 1, 2, 2, 2)  # net, direct total, then variances and the covariance
    for a, b, k in zip(
        base.info["displacement_share_fieller"],
        big.info["displacement_share_fieller"],
        powers,
        strict=True,
    ):
        # the fits differ by rounding only: 1e-8 of each part
        assert b == pytest.approx(a * (-1e30) ** k, rel=1e-8)


def test_conflicting_cluster_labels_for_a_unit_are_refused(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=0)
    region = sim.panel.geography["region"]
    # a long column indexed by unit is fine when each unit keeps one label
    rows = sim.panel.data["unit"]
    long = pd.Series(rows.map(region).to_numpy(), index=rows.to_numpy(), name="region")
    same = res.with_inference("cluster", cluster=long).terms["se"].to_numpy()
    assert np.allclose(same, res.with_inference("cluster", cluster=region).terms["se"], rtol=1e-12)
    # the first label used to win silently
    two = pd.concat([region, pd.Series({region.index[0]: "elsewhere"})])
    with pytest.raises(SpecError, match="more than one label"):
        res.with_inference("cluster", cluster=two)


def test_onset_zero_at_the_first_period_still_means_never(sim):
    df, geo = _frames(sim)
    p = _since(df, geo, 1996)
    clean = p.unit_cohort.index[~np.isfinite(p.unit_cohort.to_numpy(float))][:40]
    onsets = pd.Series(0, index=clean).where(np.arange(40) < 20, 5)
    em = exposure_from_onsets(p, onsets)
    assert (em.table["role"] == "exposed").sum() == 20


def test_cs_warns_about_units_without_an_observed_outcome(sim):
    # such a unit enters no ATT(g,t) but counts in the cohort shares (att 81.70 against
    # 81.55 without it; a breaker's check): said at the caller, not silently used
    f = sim.frame[["unit", "year", "cohort", "fdi"]].copy()
    u0 = f.loc[f["cohort"] == 2010, "unit"].iloc[0]
    f.loc[f["unit"] == u0, "fdi"] = np.nan
    p = Panel.from_frame(f, unit="unit", time="year", outcomes="fdi", cohort="cohort")
    with pytest.warns(UserWarning, match=rf"1 unit\(s\) \(first '{u0}'\) have no observed") as rec:
        callaway_santanna.fit(p, outcome="fdi", bootstrap=False)
    assert any(w.filename == __file__ for w in rec)


def test_a_missing_weight_on_an_observed_row_is_refused(sim):
    # Sun-Abraham and TWFE dropped such rows without a word (81.31: the unit removed);
    # CS already refused them
    d = sim.panel.data.assign(w=1.0)
    d.loc[d["unit"] == d["unit"].iloc[0], "w"] = np.nan
    p = Panel.from_frame(
        d, unit="unit", time="time", cohort="cohort", outcomes=["fdi"], covariates=["w"]
    )
    for est in (twfe, sun_abraham, callaway_santanna):
        with pytest.raises(EstimationError, match=r"Weight column 'w' must be positive and finite"):
            est.fit(p, outcome="fdi", weights="w")


def test_imputation_says_which_treated_rows_it_cannot_impute(sim):
    # zone units observed only from their zone on have no unit effect to impute with;
    # they were left out with only info["n_dropped_unidentified"] to say so
    d = sim.panel.data
    early = d.loc[d["cohort"] == 2000, "unit"].unique()[:3]
    q = sim.panel.replace(data=d[~(d["unit"].isin(early) & (d["time"] < 2000))])
    with pytest.warns(UserWarning, match="69 treated unit-period") as rec:
        res = imputation.fit(q, outcome="fdi")
    assert res.info["n_dropped_unidentified"] == 69  # 3 units x 23 years, 2000-2022
    assert any(w.filename == __file__ for w in rec)


def test_the_region_check_note_names_missing_region_totals(sim):
    # with 15% of outcomes missing most region-year totals are blank; the note gave only
    # the imputation's reason (a referee's unbalanced worlds)
    d = sim.panel.data.copy()
    d.loc[np.random.default_rng(0).random(len(d)) < 0.15, "fdi"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel.replace(data=d), outcome="fdi", rng=1, n_boot=0)
    assert "636 of 810 region-period totals are missing" in res.info["net_region_did_note"]
