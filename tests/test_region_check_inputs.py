"""The region-level cross-checks (``net_region_did``, ``net_region_sdid``, ``region_hhi``):
which regions are treated and from when, what they omit, and the net terms under
``pre_exposed="keep"``. Noiseless worlds: every reference number is the sum of the
effects written into the data (the truth) or a plain least-squares region DiD by hand,
so the tolerances only absorb floating-point error."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.concentration import estimate_concentration, region_hhi
from zoneimpact.estimators import spillover
from zoneimpact.estimators.spillover import region_panel
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)

YEARS = range(2000, 2010)


def _panel(df: pd.DataFrame, adj: list[tuple[str, str]], **kw) -> Panel:
    geo = df.drop_duplicates("unit")[["unit", "region"]]
    return Panel.from_frame(
        df, unit="unit", time="year", cohort="g", outcomes="y", geography=geo,
        adjacency=pd.DataFrame(adj, columns=["unit", "neighbour"]), **kw,
    )  # fmt: skip


def _world(openings: dict[int, int], n_regions: int = 8, extra=None):
    """Region r has 3 + r % 3 units; unit 0 of region r is a zone opening ``openings[r]``
    that gains 10 + 2e at event time e while its neighbours (the region's other units)
    lose 60% of that between them. ``extra(r, k, t)`` adds another effect. Returns the
    frame (column ``eff``: the unit-period's effect), the adjacency and the net truth over
    the data (the sum of ``eff``)."""
    rows, adj = [], []
    for r in range(n_regions):
        n = 3 + r % 3
        names = [f"r{r}u{k}" for k in range(n)]
        adj += [(names[0], x) for x in names[1:]]
        g0 = openings.get(r)
        for k, u in enumerate(names):
            for t in YEARS:
                eff = 0.0
                if g0 is not None and t >= g0:
                    e = t - g0
                    eff = (10 + 2 * e) if k == 0 else -0.6 * (10 + 2 * e) / (n - 1)
                if extra is not None:
                    eff += extra(r, k, t)
                y = 100 + 5 * k + 10 * r + 3 * (t - 2000) + eff
                g = g0 if (k == 0 and g0 is not None) else 0
                rows.append(dict(unit=u, year=t, g=g, y=float(y), eff=eff, region=f"r{r}"))
    return pd.DataFrame(rows), adj


def _hand_region_did(df: pd.DataFrame, onset: dict[str, int]) -> float:
    """Imputation DiD by numpy lstsq on region means (region and year dummies fitted on
    the untreated region-years), each region-year's effect times the region's size:
    the check's estimand computed independently of zoneimpact."""
    size = df.groupby("region")["unit"].nunique()
    m = df.groupby(["region", "year"])["y"].mean().reset_index()
    g = m["region"].map(onset).fillna(np.inf).to_numpy(float)
    tr = m["year"].to_numpy(float) >= g
    X = np.hstack(
        [
            pd.get_dummies(m["region"]).to_numpy(float),
            pd.get_dummies(m["year"]).to_numpy(float)[:, 1:],
        ]
    )
    b = np.linalg.lstsq(X[~tr], m.loc[~tr, "y"].to_numpy(float), rcond=None)[0]
    tau = m.loc[tr, "y"].to_numpy(float) - X[tr] @ b
    return float(tau @ size.reindex(m.loc[tr, "region"]).to_numpy(float))


def _fit(p: Panel, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spillover.fit(p, outcome="y", rng=1, n_boot=0, **kw)


def test_a_region_whose_zone_is_an_outside_source_is_treated_from_its_opening():
    # r0's zone unit is outside the sample (a source zone opening 2005 inside the data);
    # r0's sample units lose from 2005. Before: r0 was a never-treated control, 130.7
    df, adj = _world({0: 2005, 1: 2004, 2: 2005, 3: 2006})
    d = df[df["unit"] != "r0u0"]
    src = pd.DataFrame({"unit": ["r0u0"], "cohort": [2005], "region": ["r0"]})
    p = _panel(d, adj, sources=src)
    truth = d["eff"].sum()  # 42.8: the sample units' total change
    hand = _hand_region_did(d, {"r0": 2005, "r1": 2004, "r2": 2005, "r3": 2006})
    assert truth == pytest.approx(42.8, abs=1e-9) and hand == pytest.approx(truth, abs=1e-6)
    res = _fit(p)
    # 1e-6: least squares on outcomes near 100-200, exact up to rounding
    assert res.coef("net_region_did") == pytest.approx(truth, abs=1e-6)
    # net leaves out the losses to the source zone r0u0, whose gain no total counts
    # (spillover_from_sources); with them it is the region check's total
    assert res.coef("net") + res.coef("spillover_from_sources_total") == pytest.approx(
        truth, abs=1e-6
    )
    assert region_panel(p, "y").unit_cohort["r0"] == 2005  # sources count without the map


def test_a_region_treated_before_the_data_is_left_out_with_a_note():
    # r0's only zone opened 1998 (dropped by outside_window="adjust", kept as a source);
    # its neighbours' losses grow through the data. Before: r0 a control, 119.8
    df, adj = _world({0: 1998, 1: 2004, 2: 2005, 3: 2006})
    p = _panel(df, adj, outside_window="adjust")
    rest = df[df["region"] != "r0"]
    truth = rest["eff"].sum()  # 84.8: the change of the regions whose zones open in the data
    hand = _hand_region_did(rest, {"r1": 2004, "r2": 2005, "r3": 2006})
    assert truth == pytest.approx(84.8, abs=1e-9) and hand == pytest.approx(truth, abs=1e-6)
    res = _fit(p)
    assert res.coef("net_region_did") == pytest.approx(truth, abs=1e-6)
    note = res.info["net_region_did_note"]
    assert "leaves out 1 region(s)" in note and "'r0' (from 1998)" in note
    rp = region_panel(p, "y", exposure=res.exposure)
    assert "r0" not in set(rp.data["unit"]) and rp.report["regions_left_out"] == {"r0": 1998}


def test_a_zone_free_region_with_a_unit_exposed_across_its_border_is_treated():
    # r0's zone also draws on r5u3 (adjacent across the border) from 2004; r5 has no zone.
    # Before: r5 was a clean control region and the check returned 94.2
    def across(r: int, k: int, t: int) -> float:
        return -0.3 * (10 + 2 * (t - 2004)) if (r == 5 and k == 3 and t >= 2004) else 0.0

    df, adj = _world({0: 2004, 1: 2005, 2: 2006}, extra=across)
    p = _panel(df, adj + [("r0u0", "r5u3")])
    truth = df["eff"].sum()  # 57.8: every unit-period's effect
    hand = _hand_region_did(df, {"r0": 2004, "r1": 2005, "r2": 2006, "r5": 2004})
    assert hand == pytest.approx(truth, abs=1e-6)
    res = _fit(p)
    assert res.exposure.table.loc["r5u3", "exposure_onset"] == 2004
    assert res.coef("net_region_did") == pytest.approx(truth, abs=1e-6)
    assert res.coef("net") == pytest.approx(truth, abs=1e-6)


def test_region_hhi_dates_regions_by_source_zones_and_the_exposure_map():
    # region_hhi dated a region by its sample zone units only: a region whose zone
    # predates the data (a source now) was a control (cohort inf) and one whose zone is an
    # outside source opening 2005 too
    df, adj = _world({0: 1998, 1: 2004, 2: 2005, 3: 2006})
    p = _panel(df, adj, outside_window="adjust")
    h = region_hhi(p, "y")
    assert "r0" not in set(h.data["unit"]) and h.report["regions_left_out"] == {"r0": 1998}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_concentration(p, "y", kind="hhi", rng=1)
    assert "'r0' (from 1998)" in est.info["regions_left_out_note"]
    df, adj = _world({0: 2005, 1: 2004, 2: 2005, 3: 2006})
    d = df[df["unit"] != "r0u0"]
    src = pd.DataFrame({"unit": ["r0u0"], "cohort": [2005], "region": ["r0"]})
    assert region_hhi(_panel(d, adj, sources=src), "y").unit_cohort["r0"] == 2005
    # a unit exposed across the border: without the map r5 stays a control, with it r5 is
    # treated from the exposure onset
    df, adj = _world({0: 2004, 1: 2005, 2: 2006})
    p = _panel(df, adj + [("r0u0", "r5u3")])
    emap = _fit(p).exposure
    assert np.isinf(region_hhi(p, "y").unit_cohort["r5"])
    assert region_hhi(p, "y", exposure=emap).unit_cohort["r5"] == 2004


def _no_spillover_world() -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Zones in r0-r3 (2004, 2005, 2006, 2004) gaining 10 each year, nobody losing."""
    rows, adj = [], []
    for r in range(8):
        names = [f"r{r}u{k}" for k in range(3 + r % 3)]
        adj += [(names[0], x) for x in names[1:]]
        for k, u in enumerate(names):
            g = {0: 2004, 1: 2005, 2: 2006, 3: 2004}.get(r, 0) if k == 0 else 0
            for t in YEARS:
                y = 100 + 5 * k + 10 * r + 3 * (t - 2000) + (10.0 if g and t >= g else 0.0)
                rows.append(dict(unit=u, year=t, g=g, y=y, region=f"r{r}"))
    return pd.DataFrame(rows), adj


def test_a_missing_outcome_in_a_treated_region_period_omits_the_check():
    # one neighbour's outcome missing in r0's 2008 blanked that region-period, and the
    # check silently dropped its zone's gain: 200 for a truth of 210 (21 zone
    # unit-periods x 10, no spillover)
    df, adj = _no_spillover_world()
    df.loc[(df["unit"] == "r0u2") & (df["year"] == 2008), "y"] = np.nan
    res = _fit(_panel(df, adj))
    assert res.coef("net") == pytest.approx(210.0, abs=1e-6)  # truth: 21 x 10
    assert "net_region_did" not in set(res.terms["term"])
    note = res.info["net_region_did_note"]
    assert "treated region 'r0' is missing in period 2008" in note


def test_the_pieces_table_gives_the_region_check_its_unit_periods():
    # the table's n_target_unit_periods held the 21 treated region-periods; the total
    # scales each by its region's units: r0 3 x 6, r1 4 x 5, r2 5 x 4, r3 3 x 6 = 76
    full = _fit(_panel(*_no_spillover_world()))
    assert full.coef("net_region_did") == pytest.approx(210.0, abs=1e-6)
    row = full.pieces.set_index("piece").loc["net_region_did"]
    assert row["n_target_unit_periods"] == 3 * 6 + 4 * 5 + 5 * 4 + 3 * 6


def test_region_sdid_on_regions_of_different_sizes_recovers_the_net_total():
    # regions of different sizes with a common trend in unit levels: their totals do not
    # trend in parallel. SDID on totals gave 6419.6 (SE 7257) for a truth of 5832.3
    sim = simulate(rng=4, n_units=240, n_regions=20, first_year=2002, last_year=2016,
                   waves={2006: 0.4, 2010: 0.3, 2013: 0.3}, displacement_share=0.7,
                   noise_sd=0, region_shock_sd=0, zero_share=0, covariate_trend=0,
                   zone_region_share=0.35)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=0, region_sdid=True)
    truth = sim.truth.net_total["fdi"]  # simulate's own sum of effects
    assert truth == pytest.approx(5832.288, abs=1e-3)
    # noiseless: exact up to the Frank-Wolfe solver's rounding (outcomes ~1e3 x 240 units)
    assert res.coef("net_region_sdid") == pytest.approx(truth, rel=1e-9)
    assert res.coef("net_region_did") == pytest.approx(truth, rel=1e-9)
    # the placebo SE of a noiseless world is rounding error only (before: 7257)
    se = res.terms.set_index("term").loc["net_region_sdid", "se"]
    assert 0 <= se < 1e-6


def test_keep_blanks_net_and_share_with_a_note():
    # zone units exposed before their own zone: under "keep" their exposed pre-zone rows
    # stay among the direct piece's controls and the direct total re-counts losses that
    # spillover_on_zones_total also counts. Before: net 247.5, share 0.368 (no warning)
    rows, adj = [], []
    for r in range(10):
        n = 3 + r % 2
        names = [f"r{r}u{k}" for k in range(n)]
        adj += [(names[0], x) for x in names[1:]]
        for k, u in enumerate(names):
            g = 2004 if (r < 4 and k == 0) else 2007 if (r < 4 and k == 1) else 0
            for t in YEARS:
                eff = 0.0
                if r < 4:
                    if k in (0, 1) and g and t >= g:
                        eff = 10.0
                    elif t >= 2004:
                        eff = -4.0 if k == 1 else -4.0 / (n - 2)
                y = 50 * r + 7 * k + 3 * (t - 2000) + eff
                rows.append(dict(unit=u, year=t, g=g, y=float(y), eff=eff, region=f"r{r}"))
    df = pd.DataFrame(rows)
    p = _panel(df, adj)
    truth_net = df["eff"].sum()  # 216
    truth_share = 1 - truth_net / df.loc[df["eff"] > 0, "eff"].sum()  # 1 - 216 / 360
    base = _fit(p)
    # the default still identifies both exactly
    assert base.coef("net") == pytest.approx(truth_net, abs=1e-6)
    assert base.coef("displacement_share") == pytest.approx(truth_share, abs=1e-9)
    with pytest.warns(UserWarning, match="pre_exposed='keep'") as rec:
        keep = spillover.fit(p, outcome="y", rng=1, n_boot=0, pre_exposed="keep")
    assert any(w.filename == __file__ for w in rec)  # the warning points at this call
    t = keep.terms.set_index("term")["estimate"]
    assert np.isnan(t["net"]) and np.isnan(t["displacement_share"])
    assert np.isnan(t["net_per_treated"])
    assert "spillover_on_zones_total counts again" in keep.info["net_note"]
    # the region check does not depend on the pieces' controls and stays exact
    assert t["net_region_did"] == pytest.approx(truth_net, abs=1e-6)


def test_region_sdid_on_an_unbalanced_region_panel_names_the_region_and_outcome():
    # a unit of never-treated region r7 enters in 2002: SDID needs balanced region totals,
    # so net_region_sdid is skipped with a note naming the user's region and outcome (it
    # named an internal "cohort 2005" unit and outcome 'm'); net_region_did keeps the truth
    df, adj = _world({0: 2004, 1: 2005, 2: 2006, 3: 2004}, n_regions=12)
    d = df[~((df["unit"] == "r7u1") & (df["year"] < 2002))]
    res = _fit(_panel(d, adj), region_sdid=True)
    assert "net_region_sdid" not in set(res.terms["term"])
    note = res.info["net_region_sdid_note"]
    assert "of 'y'" in note and "region 'r7'" in note and "period 2000" in note
    assert "cohort" not in note and "'m'" not in note
    truth = d["eff"].sum()  # 120.8: the sum of the world's effects
    assert res.coef("net_region_did") == pytest.approx(truth, abs=1e-6)  # lstsq rounding
