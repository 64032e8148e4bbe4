"""Imputation (Borusyak, Jaravel & Spiess 2024): another clustering of the Theorem 3
variance without re-running the imputation regression (``with_inference``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bjs_reference import eq8_tilde

from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import imputation
from zoneimpact.panel import Panel


def _frame(seed: int = 5) -> pd.DataFrame:
    """Unbalanced staggered panel: 60 units, 9 years, never treated included."""
    rng = np.random.default_rng(seed)
    n, years = 60, np.arange(2001, 2010)
    coh = rng.choice([2004, 2006, 2008, 0], size=n)
    rows = [(i, t) for i in range(n) for t in years if rng.uniform() > 0.1]
    df = pd.DataFrame(rows, columns=["id", "year"])
    df["g"] = coh[df["id"]]
    df["x"] = rng.normal(size=len(df)) + 0.05 * df["year"]
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    df["region"] = df["id"] % 7
    # the intersection of region and year, for the two-way combination by hand
    df["region_year"] = df["region"] * 10_000 + df["year"]
    d = (df["g"] > 0) & (df["year"] >= df["g"])
    df["y"] = (
        0.1 * df["id"]
        + 0.2 * (df["year"] - 2000)
        + 0.7 * df["x"]
        + d * (1.0 + 0.4 * (df["year"] - df["g"]))
        + rng.normal(size=len(df))
    )
    return df


def _panel(df: pd.DataFrame) -> Panel:
    # a string cluster column lives in the geography table (panel covariates are numeric)
    geo = pd.DataFrame({"unit": np.arange(60)})
    geo["province"] = [f"prov-{u % 4}" for u in geo["unit"]]
    return Panel.from_frame(
        df,
        unit="id",
        time="year",
        outcomes=["y"],
        cohort="g",
        covariates=["x", "w", "region", "region_year"],
        geography=geo,
    )


@pytest.fixture(scope="module")
def panel() -> Panel:
    return _panel(_frame())


def _vcov(res) -> np.ndarray:
    return np.asarray(res.vcov, dtype=float)


def _same_inference(a, b, tol: float = 1e-12) -> None:
    """Equal estimates, SEs, covariance and Test 1 (same formulas on the same numbers:
    only summation order can differ, so 1e-12)."""
    assert list(a.terms["term"]) == list(b.terms["term"])
    np.testing.assert_allclose(a.terms["estimate"], b.terms["estimate"], rtol=0, atol=tol)
    np.testing.assert_allclose(a.terms["se"], b.terms["se"], rtol=tol, atol=tol)
    np.testing.assert_allclose(_vcov(a), _vcov(b), rtol=tol, atol=tol)
    for key in ("pretrend_F", "pretrend_p"):
        if key in b.info:
            assert a.info[key] == pytest.approx(b.info[key], rel=tol, nan_ok=True)
    assert a.info["cluster"] == b.info["cluster"]
    assert a.info["n_clusters"] == b.info["n_clusters"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cluster": "region", "pretrends": 2},
        {"covariates": "x", "weights": "w", "leave_out": True, "pretrends": 2},
        {"cluster": "province", "leave_out": True, "aux_partition": "cohort"},
    ],
)
def test_same_cluster_reproduces_the_fit(panel, options) -> None:
    res = imputation.fit(panel, outcome="y", **options)
    again = res.with_inference("cluster", cluster=options.get("cluster"))
    _same_inference(again, res)
    assert again.info["leave_out_fallback"] == res.info["leave_out_fallback"]


@pytest.mark.parametrize("leave_out", [False, True])
def test_coarser_cluster_equals_refit(panel, leave_out) -> None:
    # fitted by unit, reclustered by a numeric panel column, a string geography column
    # and string labels given as a Series indexed by unit: each equals the refit
    base = imputation.fit(panel, outcome="y", pretrends=2, covariates="x", leave_out=leave_out)
    for cluster in ("region", "province"):
        refit = imputation.fit(
            panel, outcome="y", pretrends=2, covariates="x", leave_out=leave_out, cluster=cluster
        )
        _same_inference(base.with_inference("cluster", cluster=cluster), refit)
        assert refit.terms["se"].iloc[0] != pytest.approx(base.terms["se"].iloc[0], rel=1e-3)
    labels = pd.Series([f"prov-{u % 4}" for u in range(60)], index=range(60), name="province")
    by_series = base.with_inference(cluster=labels)
    refit = imputation.fit(
        panel, outcome="y", pretrends=2, covariates="x", leave_out=leave_out, cluster="province"
    )
    _same_inference(by_series, refit)


def _hand_eq10(df: pd.DataFrame, cluster: np.ndarray) -> dict[str, tuple[float, float]]:
    """BJS (2024) Theorem 2 and the conservative variance (eq. 10) with dense dummies:
    ``sum_c (sum_{it in c} v_it e~_it)^2``, ``v_0 = -Z_0 (Z_0'Z_0)^+ Z_1'w``, ``e~`` the
    step-1 residual on untreated rows and ``tau_hat - tau~`` on treated ones, ``tau~`` the
    ``w``-weighted mean of ``tau_hat`` in its cohort x event-time cell."""
    d = ((df["g"] > 0) & (df["year"] >= df["g"])).to_numpy()
    U = pd.get_dummies(df["id"]).to_numpy(float)
    T = pd.get_dummies(df["year"]).to_numpy(float)[:, 1:]
    Z = np.column_stack([U, T, df["x"].to_numpy()])
    y = df["y"].to_numpy()
    theta = np.linalg.lstsq(Z[~d], y[~d], rcond=None)[0]
    resid0 = y[~d] - Z[~d] @ theta
    tau = y[d] - Z[d] @ theta
    ev = (df["year"] - df["g"]).to_numpy()[d]
    cell = pd.Series(list(zip(df["g"].to_numpy()[d], ev, strict=True)))
    M = np.linalg.pinv(Z[~d].T @ Z[~d])
    out = {}
    targets = {"att": np.ones(d.sum(), bool)} | {f"event:{e}": ev == e for e in range(3)}
    for name, m in targets.items():
        w1 = m / m.sum()
        v0 = -Z[~d] @ (M @ (Z[d].T @ w1))
        tilde = eq8_tilde(w1, tau, cell, np.asarray(cluster)[d])
        contrib = np.zeros(len(df))
        contrib[~d] = v0 * resid0
        contrib[d] = w1 * (tau - tilde)
        scores = pd.Series(contrib).groupby(cluster).sum().to_numpy()
        out[name] = (float(w1 @ tau), float(np.sqrt(scores @ scores)))
    return out


def test_coarser_cluster_matches_hand_eq10(panel) -> None:
    df = _frame()
    res = imputation.fit(panel, outcome="y", covariates="x", horizons=[0, 1, 2])
    t = res.with_inference("cluster", cluster="region").terms.set_index("term")
    hand = _hand_eq10(df, df["region"].to_numpy())
    for name, (b, se) in hand.items():
        # dense least squares vs the exact Schur-complement solve: 1e-9 on points, SEs
        # relative 1e-8 (both are the same closed form; only rounding differs)
        assert t.loc[name, "estimate"] == pytest.approx(b, abs=1e-9)
        assert t.loc[name, "se"] == pytest.approx(se, rel=1e-8)


def test_two_way_equals_cgm_combination(panel) -> None:
    # Cameron, Gelbach & Miller (2011, eq. 2.11): V_region + V_year - V_(region x year),
    # each a one-way BJS variance (no small-sample factor), here from three refits
    opts = {"outcome": "y", "covariates": "x", "pretrends": 2}
    base = imputation.fit(panel, **opts)
    two = base.with_inference("cluster", cluster=["region", "time"])
    parts = [imputation.fit(panel, cluster=c, **opts) for c in ("region", "time", "region_year")]
    m = len(base.terms)
    first = [i for i, t in enumerate(base.terms["term"]) if not t.startswith("event:-")]
    hand = _vcov(parts[0]) + _vcov(parts[1]) - _vcov(parts[2])
    got = _vcov(two)
    assert got.shape == (m, m)
    # the estimands' block: exactly the combination (same scores, summed): 1e-12
    np.testing.assert_allclose(got[np.ix_(first, first)], hand[np.ix_(first, first)], atol=1e-12)
    diag = np.diag(got)
    expect = np.where(diag >= 0, np.sqrt(np.abs(diag)), np.nan)
    np.testing.assert_allclose(two.terms["se"], expect, rtol=1e-12, equal_nan=True)
    assert two.info["cluster"] == "region + time"
    assert two.info["n_clusters"] == 7  # the smaller dimension (7 regions, 9 years)
    # the cross block (lead x estimand) is the same combination of score products
    pre = [i for i, t in enumerate(base.terms["term"]) if t.startswith("event:-")]
    np.testing.assert_allclose(got[np.ix_(pre, first)], hand[np.ix_(pre, first)], atol=1e-12)


def test_two_way_pretrend_meat_by_hand(panel) -> None:
    res = imputation.fit(panel, outcome="y", pretrends=2)
    b = res.blocks
    cl = {c: panel.data[c].to_numpy()[b.rows][b.untreated] for c in ("region", "region_year")}
    cl["time"] = panel.data["time"].to_numpy()[b.rows][b.untreated]

    def meat(codes: np.ndarray) -> np.ndarray:
        s = pd.DataFrame(b.pre_scores).groupby(codes).sum().to_numpy()
        return s.T @ s

    n0, g = len(b.untreated), 7
    n_unit, n_year = b.gamma_unit.shape[1], b.gamma_period.shape[1]
    # fixest's K with fixef.K = "nested" (as twfe): the leads, plus the unit and year
    # effects less one, less the levels of each effect nested in a clustering (units in
    # regions, years in years), plus one per nested effect
    k_params = b.pre_scores.shape[1] + (n_unit + n_year - 1) - (n_unit + n_year) + 2
    factor = g / (g - 1) * (n0 - 1) / (n0 - k_params)
    V = factor * (meat(cl["region"]) + meat(cl["time"]) - meat(cl["region_year"]))
    two = res.with_inference(cluster=["region", "time"])
    pre = [i for i, t in enumerate(two.terms["term"]) if t.startswith("event:-")]
    assert list(two.terms["term"].iloc[pre]) == ["event:-2", "event:-1"]
    np.testing.assert_allclose(_vcov(two)[np.ix_(pre, pre)], V[:2, :2][::-1, ::-1], rtol=1e-12)
    # a negative two-way variance is left as it is: its standard error is NaN
    d = np.diag(V)[:2]
    assert (d < 0).any()
    expect = np.where(d >= 0, np.sqrt(np.abs(d)), np.nan)
    np.testing.assert_allclose(two.pretrend["se"], expect, rtol=1e-12, equal_nan=True)
    assert np.isnan(two.info["pretrend_F"]) and np.isnan(two.info["pretrend_p"])


def test_invalid_cluster_names_the_column(panel) -> None:
    res = imputation.fit(panel, outcome="y")
    with pytest.raises(ZoneImpactError, match="'county'"):
        res.with_inference("cluster", cluster="county")
    with pytest.raises(ZoneImpactError, match="'county'"):
        res.with_inference("cluster", cluster=["region", "county"])
    with pytest.raises(ZoneImpactError, match="one or two ways"):
        res.with_inference("cluster", cluster=["region", "time", "province"])
    partial = pd.Series({u: u % 3 for u in range(30)}, name="tier")
    with pytest.raises(ZoneImpactError, match="'tier' have no value for unit 30"):
        res.with_inference("cluster", cluster=partial)
    with pytest.raises(ZoneImpactError, match="method"):
        res.with_inference("wild", cluster="region")
    with pytest.raises(ZoneImpactError, match="cluster must be a column name"):
        res.with_inference("cluster", cluster=3.5)


def test_new_result_caller_untouched_and_scale(panel) -> None:
    res = imputation.fit(panel, outcome="y", pretrends=2, leave_out=True)
    before = res.terms.copy()
    other = res.with_inference(cluster="region")
    assert other is not res
    pd.testing.assert_frame_equal(res.terms, before)
    assert res.info["cluster"] == "unit" and other.info["cluster"] == "region"
    # an outcome beyond 2**64 is fitted on a rescaled copy (estimators._scale): the kept
    # blocks are rescaled too, so the reclustered SEs scale exactly (powers of two)
    c = 2.0**70
    big = panel.with_outcome("y", panel.data["y"].to_numpy() * c)
    big_res = imputation.fit(big, outcome="y", pretrends=2, leave_out=True)
    assert big_res.info["outcome_rescaled_by"] > 1
    np.testing.assert_allclose(
        big_res.with_inference(cluster="region").terms["se"] / c,
        other.terms["se"],
        rtol=1e-12,
    )
