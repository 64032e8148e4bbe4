"""Imputation (Borusyak, Jaravel & Spiess 2024): other estimands from the same imputed
effects without re-running the regression (``ImputationResult.aggregate``).

Every BJS estimand is ``sum_{it in Omega_1} w_it tau_hat_it`` (eq. 3-4), so an aggregation
only changes the weights ``w``. The checks: ``"dynamic"``/``"simple"`` reproduce ``fit``'s
own estimands (same formulas on the same numbers, so 1e-12); group, calendar and bins are
the weighted sums of ``fit``'s ``tau_hat`` by hand, and their Theorem 3 standard errors
match an independent dense-dummy implementation; the clustering follows
``with_inference``; the window options behave as in Callaway-Sant'Anna's ``aggregate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bjs_reference import eq8_tilde

from zoneimpact.errors import EstimationError, SpecError, ZoneImpactError
from zoneimpact.estimators import imputation
from zoneimpact.panel import Panel

YEARS = np.arange(2001, 2010)


def _frame(seed: int = 11) -> pd.DataFrame:
    """Unbalanced staggered panel: 60 units, 2001-2009, cohorts 2004/2006/2008 and never
    treated, about 10% of the rows missing, effects growing with event time."""
    rng = np.random.default_rng(seed)
    n = 60
    coh = rng.choice([2004, 2006, 2008, 0], size=n)
    rows = [(i, t) for i in range(n) for t in YEARS if rng.uniform() > 0.1]
    df = pd.DataFrame(rows, columns=["id", "year"])
    df["g"] = coh[df["id"]]
    df["x"] = rng.normal(size=len(df)) + 0.05 * df["year"]
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    df["region"] = df["id"] % 7
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
    geo = pd.DataFrame({"unit": np.arange(60)})
    geo["province"] = [f"prov-{u % 4}" for u in geo["unit"]]
    return Panel.from_frame(
        df,
        unit="id",
        time="year",
        outcomes=["y"],
        cohort="g",
        covariates=["x", "w", "region"],
        geography=geo,
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def panel(frame: pd.DataFrame) -> Panel:
    return _panel(frame)


def _terms(res) -> pd.DataFrame:
    return res.terms.set_index("term")


def _vcov(res, names: list[str]) -> np.ndarray:
    return res.vcov.loc[names, names].to_numpy(float)


def _same(a, b, names: list[str], tol: float = 1e-12) -> None:
    """Equal estimates, SEs and covariance on ``names``: the same formulas on the same
    numbers (only summation order can differ), hence 1e-12."""
    ta, tb = _terms(a).loc[names], _terms(b).loc[names]
    np.testing.assert_allclose(ta["estimate"], tb["estimate"], rtol=0, atol=tol)
    np.testing.assert_allclose(ta["se"], tb["se"], rtol=tol, atol=tol)
    np.testing.assert_allclose(_vcov(a, names), _vcov(b, names), rtol=tol, atol=tol)


def _weighted_mean(effects: pd.DataFrame, w: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sum(w[mask] * effects["tau"].to_numpy()[mask]) / w[mask].sum())


OPTIONS = [
    {},
    {"covariates": ["x"], "weights": "w"},
    {"leave_out": True, "cluster": "region"},
    {"aux_partition": "cohort", "pretrends": 2, "covariates": ["x"]},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_dynamic_and_simple_equal_fit(panel: Panel, options: dict) -> None:
    res = imputation.fit(panel, outcome="y", **options)
    ref = imputation.fit(panel, outcome="y", horizons=[0, 1, 2, 3], **options)
    agg = res.aggregate("dynamic", min_e=-1, max_e=3)
    events = ["event:0", "event:1", "event:2", "event:3"]
    # Test 1 leads are shown within the window: event:-2 is outside min_e=-1
    leads = ["event:-1"] if options.get("pretrends") else []
    assert agg.terms["term"].tolist() == ["att", *leads, *events, "event_avg"]
    _same(agg, ref, [*leads, *events])
    # the full event study equals the fit's own terms, covariance included
    full = res.aggregate("dynamic")
    fit_names = res.terms["term"].tolist()
    assert full.terms["term"].tolist() == [*fit_names, "event_avg"]
    _same(full, res, fit_names)
    # event_avg is the mean of the event-time estimands (R aggte's dynamic overall)
    ev = _terms(full).loc[[n for n in fit_names if n.startswith("event:") and n[6] != "-"]]
    assert _terms(full).loc["event_avg", "estimate"] == pytest.approx(
        ev["estimate"].mean(), abs=1e-12
    )
    # "simple" is the fit's att, estimate and SE
    simple = res.aggregate("simple")
    assert simple.terms["term"].tolist() == ["att"]
    _same(simple, res, ["att"])
    assert simple.pretrend.equals(res.pretrend)


def _dense_theorem3(df: pd.DataFrame, weights: np.ndarray, cluster: np.ndarray) -> dict:
    """Independent Theorem 3 (no leave-out, cohort x event cells) with dense dummies: the
    estimate and SE of each estimand given by weights on the treated rows of ``df``."""
    d = ((df["g"] > 0) & (df["year"] >= df["g"])).to_numpy()
    U = (df["id"].to_numpy()[:, None] == np.sort(df["id"].unique())[None, :]).astype(float)
    T = (df["year"].to_numpy()[:, None] == YEARS[None, 1:]).astype(float)
    Z = np.column_stack([U, T, df["x"].to_numpy()])
    y, w = df["y"].to_numpy(), df["w"].to_numpy()
    sw = np.sqrt(w[~d])
    theta = np.linalg.lstsq(Z[~d] * sw[:, None], y[~d] * sw, rcond=None)[0]
    resid0 = y[~d] - Z[~d] @ theta
    tau = y[d] - Z[d] @ theta
    event = (df["year"] - df["g"]).to_numpy()
    cells = pd.Series(list(zip(df["g"].to_numpy()[d], event[d], strict=True)))
    M = np.linalg.pinv(Z[~d].T @ (Z[~d] * w[~d][:, None]))
    out = {}
    for name, w1 in weights.items():
        v0 = -w[~d] * (Z[~d] @ (M @ (Z[d].T @ w1)))  # BJS Section 4.1
        tt = eq8_tilde(w1, tau, cells, np.asarray(cluster)[d])
        contrib = np.zeros(len(df))
        contrib[~d] = v0 * resid0
        contrib[d] = w1 * (tau - tt)
        se = np.sqrt((pd.Series(contrib).groupby(cluster).sum() ** 2).sum())
        out[name] = (float(w1 @ tau), float(se))
    return out


def test_group_calendar_bins_are_weighted_sums(frame: pd.DataFrame, panel: Panel) -> None:
    res = imputation.fit(panel, outcome="y", covariates=["x"], weights="w", cluster="region")
    eff = res.effects
    # the rows of the frame are panel.data's (sorted by unit, time, none dropped)
    w1 = panel.data["w"].to_numpy()[(panel.data["time"] >= panel.data["cohort"]).to_numpy()]
    assert len(w1) == len(eff) and res.info["n_dropped_unidentified"] == 0
    np.testing.assert_array_equal(frame[["id", "year"]], panel.data[["unit", "time"]])
    coh, ev, t = (eff[c].to_numpy() for c in ("cohort", "event", "time"))
    group = _terms(res.aggregate("group", bins=[[0, 1], [2, 9]]))
    cal = _terms(res.aggregate("calendar"))
    hand = {f"cohort:{g}": coh == g for g in (2004, 2006, 2008)}
    hand |= {f"calendar:{y}": t == y for y in range(2004, 2010)}
    hand |= {"event_bin:0..1": ev <= 1, "event_bin:2..9": ev >= 2}
    for name, mask in hand.items():
        table = cal if name.startswith("calendar") else group
        assert table.loc[name, "estimate"] == pytest.approx(
            _weighted_mean(eff, w1, mask), abs=1e-12
        )
    # cohort_avg: cohort sizes in units, each unit counted with its mean weight
    treated = pd.DataFrame({"unit": eff["unit"], "cohort": coh, "w": w1})
    size = treated.groupby("unit").agg(cohort=("cohort", "first"), w=("w", "mean"))
    share = size.groupby("cohort")["w"].sum()
    share = share / share.sum()
    cohorts = [group.loc[f"cohort:{g}", "estimate"] for g in share.index]
    assert group.loc["cohort_avg", "estimate"] == pytest.approx(share @ cohorts, abs=1e-12)
    cal_terms = [f"calendar:{y}" for y in range(2004, 2010)]
    assert cal.loc["calendar_avg", "estimate"] == pytest.approx(
        cal.loc[cal_terms, "estimate"].mean(), abs=1e-12
    )
    # Theorem 3 SEs against dense dummies (lstsq + pinv: agreement to rounding, 1e-9)
    rows = {n: np.where(m, w1, 0.0) / w1[m].sum() for n, m in hand.items()}
    rows["cohort_avg"] = sum(share[g] * rows[f"cohort:{g}"] for g in share.index)
    dense = _dense_theorem3(frame, rows, frame["region"].to_numpy())
    for name, (est, se) in dense.items():
        table = cal if name.startswith("calendar") else group
        assert table.loc[name, "estimate"] == pytest.approx(est, abs=1e-9)
        assert table.loc[name, "se"] == pytest.approx(se, rel=1e-9)


def test_aggregate_follows_with_inference_clustering(panel: Panel) -> None:
    res = imputation.fit(panel, outcome="y", pretrends=2, leave_out=True)
    by_region = res.with_inference(cluster="region")
    refit = imputation.fit(panel, outcome="y", pretrends=2, leave_out=True, cluster="region")
    for kind in ("group", "calendar", "dynamic"):
        a, b = by_region.aggregate(kind), refit.aggregate(kind)
        names = a.terms["term"].tolist()
        assert names == b.terms["term"].tolist()
        _same(a, b, names)
        assert a.info["cluster"] == "region" and a.info["n_clusters"] == 7
        # the SEs did change from the unit clustering (7 regions vs 60 units)
        unit = res.aggregate(kind)
        assert not np.allclose(a.terms["se"], unit.terms["se"], rtol=1e-3)
    # two ways: aggregating then clustering equals clustering then aggregating
    two = ["province", "time"]
    a = res.with_inference(cluster=two).aggregate("group", bins=[[0, 2]])
    b = res.aggregate("group", bins=[[0, 2]]).with_inference(cluster=two)
    names = a.terms["term"].tolist()
    assert names == b.terms["term"].tolist()
    _same(a, b, names)
    assert a.info["cluster"] == "province + time"


def test_window_balance_and_bins(panel: Panel) -> None:
    res = imputation.fit(panel, outcome="y")
    eff = res.effects
    ev, coh = eff["event"].to_numpy(), eff["cohort"].to_numpy()
    ones = np.ones(len(eff))
    win = _terms(res.aggregate("dynamic", min_e=2, max_e=4, bins=[[-3, 2], [3, 9]]))
    assert win.index.tolist() == [
        "att",
        "event:2",
        "event:3",
        "event:4",
        "event_avg",
        "event_bin:-3..2",
        "event_bin:3..9",
    ]
    # max_e caps att; bins keep only the event times inside the window
    assert win.loc["att", "estimate"] == pytest.approx(
        _weighted_mean(eff, ones, ev <= 4), abs=1e-12
    )
    assert win.loc["event_bin:-3..2", "estimate"] == pytest.approx(
        _weighted_mean(eff, ones, ev == 2), abs=1e-12
    )
    assert win.loc["event_bin:3..9", "estimate"] == pytest.approx(
        _weighted_mean(eff, ones, (ev >= 3) & (ev <= 4)), abs=1e-12
    )
    # max_e also caps the cohort effects
    grp = _terms(res.aggregate("group", max_e=1))
    assert grp.loc["cohort:2004", "estimate"] == pytest.approx(
        _weighted_mean(eff, ones, (coh == 2004) & (ev <= 1)), abs=1e-12
    )
    # balance_e=2: cohorts 2004 and 2006 reach e=2 by 2009, 2008 does not; e = 0..2
    bal = _terms(res.aggregate("dynamic", balance_e=2))
    assert [n for n in bal.index if n.startswith("event:")] == ["event:0", "event:1", "event:2"]
    for e in range(3):
        keep = (ev == e) & np.isin(coh, [2004, 2006])
        assert bal.loc[f"event:{e}", "estimate"] == pytest.approx(
            _weighted_mean(eff, ones, keep), abs=1e-12
        )
    # the att (simple) is not balanced, as in R aggte
    assert bal.loc["att", "estimate"] == pytest.approx(res.estimate, abs=1e-12)


def test_original_unchanged_and_new_objects(panel: Panel) -> None:
    res = imputation.fit(panel, outcome="y", pretrends=1, covariates=["x"])
    terms, vcov, info = res.terms.copy(), res.vcov.copy(), dict(res.info)
    targets, W = res.blocks.targets, res.blocks.estimand_weights.copy()
    agg = res.aggregate("group")
    again = res.with_inference(cluster="region").aggregate("calendar")
    assert agg is not res and again is not res and agg.blocks is not res.blocks
    pd.testing.assert_frame_equal(res.terms, terms)
    pd.testing.assert_frame_equal(res.vcov, vcov)
    assert dict(res.info) == info and "aggregation" not in res.info
    assert res.blocks.targets == targets
    np.testing.assert_array_equal(res.blocks.estimand_weights, W)
    assert agg.info["aggregation"] == "group"
    # aggregating an aggregated result starts from the same tau_hat
    names = res.aggregate("dynamic").terms["term"].tolist()
    _same(agg.aggregate("dynamic"), res.aggregate("dynamic"), names)


# the variances of a 1e200 outcome (about 1e400) exceed the float range: vcov overflows
# when the result is scaled back (as the fit's own does), the SEs do not
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_extreme_outcome_aggregates_on_working_scale(panel: Panel) -> None:
    big = imputation.fit(panel.with_outcome("y", panel.data["y"] * 1e200), outcome="y")
    small = imputation.fit(panel, outcome="y")
    a, b = _terms(big.aggregate("calendar")), _terms(small.aggregate("calendar"))
    # 1e200 is no power of two: the two fits differ by rounding of the inputs
    np.testing.assert_allclose(a["estimate"] / 1e200, b["estimate"], rtol=1e-10)
    np.testing.assert_allclose(a["se"] / 1e200, b["se"], rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"type": "cohort"}, SpecError, "type must be one of"),
        ({"type": "dynamic", "bins": [[-3, -2]]}, EstimationError, r"bin \[-3, -2\]"),
        ({"type": "dynamic", "bins": [[3, 1]]}, SpecError, "first <= last"),
        ({"type": "dynamic", "min_e": 20}, EstimationError, r"\[min_e=20, max_e=inf\]"),
        ({"type": "dynamic", "min_e": 3, "max_e": 1}, SpecError, "min_e=3 exceeds max_e=1"),
        ({"type": "dynamic", "min_e": 9, "max_e": 12}, EstimationError, "min_e=9, max_e=12"),
        ({"type": "dynamic", "max_e": -1}, SpecError, "max_e=-1"),
        ({"type": "dynamic", "min_e": 1.5}, SpecError, "min_e must be a whole number"),
        ({"type": "dynamic", "balance_e": 8}, EstimationError, "balance_e=8"),
        ({"type": "dynamic", "balance_e": -1}, SpecError, "balance_e"),
    ],
)
def test_bad_input_named(panel: Panel, kwargs: dict, error: type, match: str) -> None:
    res = imputation.fit(panel, outcome="y")
    kind = kwargs.pop("type")
    with pytest.raises(error, match=match) as info:
        res.aggregate(kind, **kwargs)
    assert isinstance(info.value, ZoneImpactError)


def test_without_blocks_refuses(panel: Panel) -> None:
    res = imputation.fit(panel, outcome="y")
    from dataclasses import replace

    with pytest.raises(EstimationError, match="refit to aggregate"):
        replace(res, blocks=None).aggregate("group")
