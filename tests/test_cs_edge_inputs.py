"""Edge inputs of the group-time estimators (Callaway & Sant'Anna panel and repeated
cross-sections, their shared cells, continuous DiD's re-inference, Sun & Abraham):
cells whose controls are all trimmed, negative two-way clustered variances, the
anticipation window, single-observation units, unobserved reference periods."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import EstimationError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import cs_repeated_cross_section as rcs
from zoneimpact.estimators import sun_abraham as sa
from zoneimpact.estimators._cells import Cell, CellFit, estimate_cells


def _staggered(
    seed: int = 0,
    n: int = 300,
    periods: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    cohorts: tuple[int, ...] = (3, 4, 5, 0),
) -> pd.DataFrame:
    """Staggered adoption, parallel trends, heterogeneous effects (cohort 0: never)."""
    rng = np.random.default_rng(seed)
    g = rng.choice(cohorts, size=n)
    a = rng.normal(size=n)
    rows = []
    for i in range(n):
        for t in periods:
            eff = 1 + 0.5 * (t - g[i]) + 0.3 * g[i] if g[i] > 0 and t >= g[i] else 0.0
            y = a[i] + 0.2 * t + 0.1 * t * (g[i] > 0) + eff + rng.normal()
            rows.append((i + 1, t, g[i], y, rng.normal()))
    return pd.DataFrame(rows, columns=["id", "t", "g", "y", "x"])


def _all_trimmed() -> pd.DataFrame:
    """Cohort 3 (700 units, x ~ N(0, 1)) against 3 never-treated units at x ~ 0 and a
    cohort 5 of 300 units at x ~ 0: in every cohort-3 cell the 3 controls have a
    propensity score in [0.995, 0.999), so all of them are trimmed."""
    rng = np.random.default_rng(0)
    rows = []
    n_t, n_c = 700, 3
    for i in range(n_t + n_c + 300):
        g = 3 if i < n_t else (0 if i < n_t + n_c else 5)
        x = rng.normal() if i < n_t else rng.normal() * 0.001
        for t in range(1, 6):
            rows.append((i, t, g, x + 0.1 * t + (2.0 if g and t >= g else 0) + rng.normal(), x))
    return pd.DataFrame(rows, columns=["id", "t", "g", "y", "x"])


# ------------------------------------------------------------- 1. all controls trimmed
@pytest.mark.parametrize("method", ["dr", "ipw"])
def test_cell_with_every_control_trimmed_is_a_counted_failure(method: str) -> None:
    # DRDID (drdid 1.x, /tmp/brk_cs/alltrim_drdid.py) refuses such a 2x2: "Each required
    # treatment/period group must have positive weight after trimming"; here the cell fails
    # and says so (before: NaN, n_cells_failed 0, no warning of ours, cohort 3 gone silently)
    p = Panel.from_frame(
        _all_trimmed(), unit="id", time="t", outcomes="y", cohort="g", covariates=["x"]
    )
    with pytest.warns(UserWarning, match=r"4 ATT\(g,t\) cell\(s\) could not be estimated.*"
                      r"\(3,2\) all 3 control unit\(s\).*trimmed") as rec:  # fmt: skip
        r = cs.fit(p, outcome="y", covariates=["x"], est_method=method, bootstrap=False)
    assert any(w.filename == __file__ for w in rec)
    assert r.info["n_cells_failed"] == 4
    cells = r.att_gt.set_index(["cohort", "time"])
    assert cells.loc[3, "estimate"].isna().all() and cells.loc[3, "se"].isna().all()
    # the overall effect is cohort 5's one post cell (the only estimated post cell)
    assert r.terms.set_index("term").loc["att", "estimate"] == cells.loc[(5, 5), "estimate"]


def test_rcs_cell_with_every_control_trimmed_is_a_counted_failure() -> None:
    df = _all_trimmed()
    df["rid"] = np.arange(len(df))
    p = Panel.from_frame(df, unit="rid", time="t", outcomes="y", cohort="g", covariates=["x"])
    for method in ("ipw", "dr"):
        with pytest.warns(UserWarning, match=r"4 ATT\(g,t\) cell\(s\) could not be estimated"
                          r".*control observation\(s\).*trimmed"):  # fmt: skip
            r = rcs.fit(p, outcome="y", covariates=["x"], est_method=method)
        assert r.info["n_cells_failed"] == 4
        assert r.att_gt.query("cohort == 3")["estimate"].isna().all()


def test_a_non_finite_cell_estimate_is_never_a_success() -> None:
    # a 2x2 routine returning NaN with an influence function was recorded as estimated
    cells = [Cell(3.0, 2, 1, False), Cell(3.0, 3, 1, False)]
    fits = {2: CellFit(np.nan, np.zeros(4), 4), 3: CellFit(1.5, np.ones(4), 4)}
    att, psi, counts, failures = estimate_cells(cells, 4, lambda c: fits[c.t])
    assert failures == ["(3,2) the estimate is not finite"]
    # given the periods, the message names the period rather than its position
    named = estimate_cells(cells, 4, lambda c: fits[c.t], np.array([2000, 2001, 2002, 2003]))
    assert named[3] == ["(3,2002) the estimate is not finite"]
    assert np.isnan(att[0]) and np.isnan(psi[:, 0]).all() and counts[0] == 0
    assert att[1] == 1.5 and counts[1] == 4


# ------------------------------------------------------------ 2. two-way clustering
NEGATIVE = r"two-way clustered variance V_1 \+ V_2 - V_12 .* is negative"


def _two_way_hand(ti: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Diagonal of V_a + V_b - V_ab (Cameron, Gelbach & Miller 2011) by numpy."""
    n = ti.shape[0]

    def v(lab: np.ndarray) -> np.ndarray:
        s = pd.DataFrame(ti).groupby(lab).sum().to_numpy()
        return np.diag(s.T @ s) / n**2

    return (
        v(a) + v(b) - v(pd.factorize(pd.Series(a).astype(str) + "_" + pd.Series(b).astype(str))[0])
    )


def test_negative_two_way_variance_gives_nan_se_not_zero() -> None:
    df = _staggered(0, n=300)
    df["a"], df["b"] = df.id % 20, df.id % 3
    p = Panel.from_frame(df, unit="id", time="t", outcomes="y", cohort="g", covariates=["a", "b"])
    with pytest.warns(UserWarning, match="carried by only 3 cluster"):  # b has 3 labels
        with pytest.warns(UserWarning, match=NEGATIVE + r".*cohort:5") as rec:
            fitted = cs.fit(p, outcome="y", bootstrap=False, cluster=["a", "b"])
    assert all(w.filename == __file__ for w in rec)
    with pytest.warns(UserWarning, match=NEGATIVE + r".*cohort:5") as rec:
        again = cs.fit(p, outcome="y", bootstrap=False).with_inference(cluster=["a", "b"])
    assert all(w.filename == __file__ for w in rec)
    for r in (fitted, again):
        lab = df.groupby("id")[["a", "b"]].first().reindex(r.units)
        var = _two_way_hand(r.term_influence, lab.a.to_numpy(), lab.b.to_numpy())
        se = r.terms["se"].to_numpy()
        neg = var < 0
        # this design has negative two-way variances (cohort:5: -0.0041 by numpy); before
        # the fix they were reported as SE 0 with a zero-width interval
        assert neg.any() and "cohort:5" in set(r.terms["term"][neg])
        assert np.isnan(se[neg]).all()
        assert np.isnan(r.conf_int().to_numpy()[neg]).all()
        # the others: sqrt of the same numpy variance (rounding of two sums: 1e-12)
        np.testing.assert_allclose(se[~neg], np.sqrt(var[~neg]), rtol=1e-9, atol=1e-12)


def test_rcs_negative_two_way_variance_gives_nan_se() -> None:
    df = _staggered(11, n=150)
    df["rid"] = np.arange(len(df)) + 1
    df["area"] = df.id % 20
    df["area2"] = df.t * 100 + (df.id % 3)
    p = Panel.from_frame(
        df, unit="rid", time="t", outcomes="y", cohort="g", covariates=["x", "area", "area2"]
    )
    r = rcs.fit(p, outcome="y", est_method="dr", covariates=["x"])
    b = r.blocks
    with pytest.warns(UserWarning, match=NEGATIVE) as rec:
        r2 = r.with_inference(cluster=["area", "area2"])
    assert all(w.filename == __file__ for w in rec)
    frame = df.set_index("rid").loc[b.ids]
    var = _two_way_hand(b.psi @ b.amat, frame.area.to_numpy(), frame.area2.to_numpy()) * (
        len(b.psi) ** 2 / b.n**2
    )
    se = r2.terms["se"].to_numpy()
    neg = var < 0
    assert neg.any()
    assert np.isnan(se[neg]).all()  # before: 0.0
    np.testing.assert_allclose(se[~neg], np.sqrt(var[~neg]), rtol=1e-9, atol=1e-12)


def test_continuous_did_negative_two_way_variance_gives_nan_se() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import mc_designs

    from zoneimpact.estimators import continuous_did

    p = mc_designs.dose_panel(mc_designs.simulate_dose(np.random.default_rng(2024)))
    r = continuous_did.fit(p, outcome="y")
    units = np.asarray(r.blocks.ids)
    code = pd.factorize(units)[0]
    a = pd.Series(code % 5, index=units, name="a")
    b = pd.Series(code % 2, index=units, name="b")
    with pytest.warns(UserWarning, match=NEGATIVE + r" for 5 term\(s\)") as rec:
        r2 = r.with_inference(cluster=[a, b])
    assert all(w.filename == __file__ for w in rec)
    psi = np.asarray(r.blocks.psi)  # one column per term, contribution scale (n = 1)
    var = _two_way_hand(psi, a.to_numpy(), b.to_numpy()) * len(psi) ** 2
    se, old = r2.terms["se"].to_numpy(), r.terms["se"].to_numpy()
    neg = (var < 0) & np.isfinite(old)
    assert neg.sum() == 5  # att, att_d:0, event:-1, 1, 2: negative by numpy
    assert np.isnan(se[neg]).all()  # before: 0.0
    pos = (var >= 0) & np.isfinite(old)
    np.testing.assert_allclose(se[pos], np.sqrt(var[pos]), rtol=1e-9)


# ------------------------------------------------------------- 3. anticipation window
def _anticipation_panel(n: int = 900) -> Panel:
    """Parallel trends hold; effect 1 in g-2 and g-1 (anticipation 2), 3 from g on."""
    rng = np.random.default_rng(0)
    g = rng.choice([5, 6, 0], size=n)
    a = rng.normal(size=n)
    t = np.arange(1, 9)
    eff = np.where((g[:, None] > 0) & (t >= g[:, None]), 3.0, 0.0)
    eff = np.where((g[:, None] > 0) & (t < g[:, None]) & (t >= g[:, None] - 2), 1.0, eff)
    y = a[:, None] + 0.3 * t + eff + rng.normal(size=(n, len(t)))
    df = pd.DataFrame(
        {"id": np.repeat(np.arange(n), len(t)), "t": np.tile(t, n), "g": np.repeat(g, len(t)),
         "y": y.ravel()}
    )  # fmt: skip
    return Panel.from_frame(df, unit="id", time="t", outcomes="y", cohort="g")


def test_anticipation_window_uses_the_post_treatment_base_and_leaves_the_pretest() -> None:
    # R did PR #276: cells with g - anticipation <= t < g use base g - anticipation - 1
    # under either base period; the pre-trend test keeps t < g - anticipation only
    p = _anticipation_panel()
    fits = {
        b: cs.fit(p, outcome="y", anticipation=2, base_period=b, bootstrap=False)
        for b in ("varying", "universal")
    }
    for r in fits.values():
        window = r.att_gt.query("time < cohort and time >= cohort - 2")
        assert (window["base_period"] == window["cohort"] - 3).all()
    v = fits["varying"].att_gt.set_index(["cohort", "time"])
    u = fits["universal"].att_gt.set_index(["cohort", "time"])
    idx = [(5, 3), (5, 4), (6, 4), (6, 5)]
    # the same 2x2 under both base periods: identical numbers
    np.testing.assert_allclose(v.loc[idx, "estimate"], u.loc[idx, "estimate"], rtol=0, atol=1e-12)
    ev = fits["varying"].terms.set_index("term")["estimate"]
    # the anticipation effect is 1 (sampling SE ~0.08 at n=900); before: event:-1 ~ 0.06
    assert abs(ev["event:-1"] - 1.0) < 0.3 and abs(ev["event:-2"] - 1.0) < 0.3
    for r in fits.values():
        # tested leads: the event times < -2 with a defined SE (varying: -4, -3;
        # universal: -5, -4, as -3 is its normalised zero)
        t = r.terms[r.terms["term"].str.match(r"^event:-\d+$")]
        e = t["term"].str.slice(6).astype(int)
        assert r.info["pretrend_df"] == int(((e < -2) & np.isfinite(t["se"])).sum()) == 2
        # parallel trends hold: no rejection (before: p ~ 1e-30 from the window effects)
        assert r.info["pretrend_p"] > 0.01
    # with_inference recomputes the test with the same rule
    assert fits["varying"].with_inference().info["pretrend_df"] == 2


def test_anticipation_zero_keeps_short_differences() -> None:
    p = _anticipation_panel(300)
    r = cs.fit(p, outcome="y", base_period="varying", bootstrap=False)
    pre = r.att_gt.query("time < cohort")
    assert (pre["base_period"] == pre["time"] - 1).all()


def test_rcs_anticipation_window_base() -> None:
    p0 = _anticipation_panel(300)
    df = p0.data.reset_index(drop=True)[["unit", "time", "cohort", "y"]].copy()
    df["cohort"] = df["cohort"].replace(np.inf, 0)
    df["rid"] = np.arange(len(df))
    p = Panel.from_frame(df, unit="rid", time="time", outcomes="y", cohort="cohort")
    r = rcs.fit(p, outcome="y", anticipation=2, base_period="varying")
    window = r.att_gt.query("time < cohort and time >= cohort - 2")
    assert len(window) == 4 and (window["base_period"] == window["cohort"] - 3).all()


# ---------------------------------------------------------- 4. single-observation units
def test_single_observation_units_are_warned_about() -> None:
    df = _staggered(0, n=60, cohorts=(3, 5, 0))
    extra = pd.DataFrame({"id": np.arange(1000, 1020), "t": 4, "g": 3, "y": 0.0, "x": 0.0})
    p = Panel.from_frame(pd.concat([df, extra]), unit="id", time="t", outcomes="y", cohort="g")
    with pytest.warns(UserWarning, match=r"20 unit\(s\) \(first 1000\) have 'y' in one "
                      r"period only; they enter no ATT\(g,t\)") as rec:  # fmt: skip
        cs.fit(p, outcome="y", bootstrap=False)
    assert any(w.filename == __file__ for w in rec)
    # with blank units too, one warning names both
    blank = extra.assign(id=extra.id + 100, y=np.nan)
    p2 = Panel.from_frame(
        pd.concat([df, extra, blank]), unit="id", time="t", outcomes="y", cohort="g"
    )
    with pytest.warns(UserWarning, match=r"20 unit\(s\) \(first 1100\) have no observed 'y' "
                      r"and 20 more unit\(s\) \(first 1000\) have 'y' in one period only"):  # fmt: skip
        cs.fit(p2, outcome="y", bootstrap=False)


def test_balanced_panel_gives_no_unit_warning() -> None:
    p = Panel.from_frame(_staggered(0, n=60), unit="id", time="t", outcomes="y", cohort="g")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cs.fit(p, outcome="y", bootstrap=False)


# --------------------------------------------------------------- 7. Sun & Abraham
def test_sun_abraham_names_an_unobserved_reference_period() -> None:
    df = _staggered(1, n=200, periods=(2000, 2002, 2004, 2006, 2008), cohorts=(2004, 2006, 0))
    p = Panel.from_frame(df, unit="id", time="t", outcomes="y", cohort="g")
    with pytest.raises(EstimationError, match=r"Cohort 2004 is not observed at "
                       r"ref_period=\[-1\].*e.g. ref_period=-2"):  # fmt: skip
        sa.fit(p, outcome="y")
    assert "event:-4" in set(sa.fit(p, outcome="y", ref_period=-2).terms["term"])


def test_sun_abraham_names_an_always_treated_cohort() -> None:
    df = _staggered(2, n=200, cohorts=(1, 3, 4, 0))
    df["d"] = ((df.g > 0) & (df.t >= df.g)).astype(int)
    p = Panel.from_frame(df, unit="id", time="t", outcomes="y", treatment="d")
    with pytest.raises(EstimationError, match=r"Cohort 1 has no pre-treatment period.*"
                       r"Drop its units"):  # fmt: skip
        sa.fit(p, outcome="y")
