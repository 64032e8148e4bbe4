"""Event study in first differences (issue 16, item 2; Schmidheiny & Siegloch 2023).

References, all computed here from the data (no peer package needed):

* statsmodels OLS/WLS of the hand-differenced outcome on hand-differenced event-time
  dummies built in this file (an independent implementation: its own event times, bins,
  endpoints and differences) with one dummy per period and ``cov_type="cluster"``; both
  are the same least squares with the same CR1 factor ``G/(G-1) (N-1)/(N-K)``, so they
  agree to rounding (observed below 1e-13; 1e-10 leaves room for BLAS differences);
* Schmidheiny & Siegloch's (2023, Section 3) equivalence: in first differences the
  binned event study is the distributed-lag model in the treatment changes, whose
  coefficients are the differences ``mu_m - mu_{m-1}`` of the event-study ones;
* invariances (row order, unit labels, a constant added to y, scale) and a seeded
  Monte Carlo with a known truth (random-walk errors, FD's home ground).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from conftest import mc_reps

from zoneimpact import Panel
from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import check_options, first_difference, get_estimator, twfe

# same least squares and CR1 factor on the same differences: rounding only (see above)
EXACT = 1e-10


@pytest.fixture(scope="module")
def full(mpdta_frame: pd.DataFrame) -> pd.DataFrame:
    return mpdta_frame.assign(
        pop=np.exp(mpdta_frame["lpop"]), state=mpdta_frame["countyreal"] // 1000
    )


@pytest.fixture(scope="module")
def frame(full: pd.DataFrame) -> pd.DataFrame:
    # three rows removed: no difference may span the gaps they leave
    return full.drop(index=[3, 17, 400]).reset_index(drop=True)


def _panel(df: pd.DataFrame, unit: str = "countyreal", y: str = "lemp") -> Panel:
    return Panel.from_frame(
        df,
        unit=unit,
        time="year",
        outcomes=[y],
        cohort="first.treat",
        covariates=["pop", "state"],
    )


def _terms(res) -> pd.DataFrame:
    return res.terms.set_index("term")


# ------------------------------------------------------------------ independent reference
def _reference(
    df: pd.DataFrame,
    *,
    leads: int | None = None,
    lags: int | None = None,
    refs: tuple[int, ...] = (-1,),
    bins: tuple[tuple[int, int], ...] = (),
    endpoints: bool = False,
    weights: str | None = None,
    cluster: str = "countyreal",
):
    """statsmodels on dummies built and differenced by hand; returns (fit, names)."""
    d = df.sort_values(["countyreal", "year"]).copy()
    treated = d["first.treat"] > 0
    e = (d["year"] - d["first.treat"]).where(treated)
    lo = int(e.min()) if leads is None else -leads
    hi = int(e.max()) if lags is None else lags
    if endpoints:
        e = e.clip(lo, hi)
    else:
        keep = ~treated | e.between(lo, hi)
        d, e = d[keep], e[keep]
    label = e.copy()
    for a, z in bins:
        label[(e >= a) & (e <= z)] = z if z < 0 else a

    def label_of(x: int) -> int:
        return next(((z if z < 0 else a) for a, z in bins if a <= x <= z), x)

    omit = {label_of(r) for r in refs}
    if not (d["first.treat"] == 0).any() and len(omit) == 1:
        omit.add(label_of(lo) if label_of(lo) not in omit else label_of(lo + 1))
    times = sorted(int(v) for v in label.dropna().unique() if lo <= v <= hi and v not in omit)
    names = {t: f"e_{'m' if t < 0 else ''}{abs(t)}" for t in times}
    for t, name in names.items():
        d[name] = (label == t).astype(float)
    g = d.groupby("countyreal")
    diffed = d.assign(dy=g["lemp"].diff(), **{n: g[n].diff() for n in names.values()})
    s = diffed[g["year"].diff() == 1]
    formula = "dy ~ " + " + ".join(names.values()) + " + C(year)"
    model = smf.wls(formula, s, weights=s[weights]) if weights else smf.ols(formula, s)
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(s[cluster])[0]})
    return fit, {f"event:{t}": n for t, n in names.items()}, len(s)


_CASES = {
    "all_event_times": ({}, {}),
    "window_binned_endpoints": (
        {"leads": 3, "lags": 2, "bin_endpoints": True},
        {"leads": 3, "lags": 2, "endpoints": True},
    ),
    "window_dropped_outside": ({"leads": 2, "lags": 2}, {"leads": 2, "lags": 2}),
    "two_period_bins": (
        {"bins": [[-4, -3], [0, 1], [2, 3]]},
        {"bins": ((-4, -3), (0, 1), (2, 3))},
    ),
    "two_refs": ({"ref_period": [-4, -1]}, {"refs": (-4, -1)}),
    "leads_pooled_into_ref": ({"bins": [[-3, -1]]}, {"bins": ((-3, -1),)}),
}


@pytest.mark.parametrize("weights", [None, "pop"])
@pytest.mark.parametrize("case", list(_CASES))
def test_matches_statsmodels_on_hand_differenced_dummies(frame, case, weights):
    ours_kw, ref_kw = _CASES[case]
    ref, names, n = _reference(frame, weights=weights, **ref_kw)
    res = first_difference.fit_event_study(
        _panel(frame), outcome="lemp", weights=weights, **ours_kw
    )
    t = _terms(res)
    assert res.n_obs == n
    assert set(t.index) == {*names, "att"}
    for term, name in names.items():
        assert t.loc[term, "estimate"] == pytest.approx(ref.params[name], abs=EXACT)
        assert t.loc[term, "se"] == pytest.approx(ref.bse[name], abs=EXACT)
    # att: the mean of the post-period coefficients, its SE from the same covariance
    post = [names[k] for k in names if int(k.split(":")[1]) >= 0]
    w = np.full(len(post), 1 / len(post))
    v = ref.cov_params().loc[post, post].to_numpy()
    assert t.loc["att", "estimate"] == pytest.approx(w @ ref.params[post], abs=EXACT)
    assert t.loc["att", "se"] == pytest.approx(np.sqrt(w @ v @ w), abs=EXACT)
    assert res.info["fixed_effects"] == "time (differenced)"
    assert (t["df"] == res.info["n_clusters"] - 1).all()


def test_cluster_and_no_never_treated_match_statsmodels(frame):
    ref, names, _ = _reference(frame, cluster="state", leads=3, lags=3)
    res = first_difference.fit_event_study(
        _panel(frame), outcome="lemp", cluster="state", leads=3, lags=3
    )
    t = _terms(res)
    for term, name in names.items():
        assert t.loc[term, "estimate"] == pytest.approx(ref.params[name], abs=EXACT)
        assert t.loc[term, "se"] == pytest.approx(ref.bse[name], abs=EXACT)
    # the same variance without refitting
    again = _terms(res.with_inference(cluster="state"))
    assert np.allclose(again["se"], t["se"], rtol=1e-12, atol=0)
    # without never-treated units the most distant lead becomes a second reference
    # (the full set of differenced dummies is collinear with the period effects)
    treated_only = frame[frame["first.treat"] > 0]
    ref, names, _ = _reference(treated_only)
    res = first_difference.fit_event_study(_panel(treated_only), outcome="lemp")
    t = _terms(res)
    assert "event:-4" not in t.index and set(t.index) == {*names, "att"}
    for term, name in names.items():
        assert t.loc[term, "estimate"] == pytest.approx(ref.params[name], abs=EXACT)
        assert t.loc[term, "se"] == pytest.approx(ref.bse[name], abs=EXACT)


def test_distributed_lag_equivalence(full):
    # Schmidheiny & Siegloch (2023, Section 3): with binned endpoints the differenced
    # event-time dummies span the same space as the treatment changes Delta b_{i,t-m}
    # = 1[t - G_i = m] for m in (lo, hi]; the distributed-lag coefficients are
    # gamma_m = mu_m - mu_{m-1} (mu_{-1} = 0), an exact reparametrisation.
    lo, hi = -3, 2
    d = full.sort_values(["countyreal", "year"]).copy()
    e = (d["year"] - d["first.treat"]).where(d["first.treat"] > 0)
    lags = {m: f"db_{'m' if m < 0 else ''}{abs(m)}" for m in range(lo + 1, hi + 1)}
    for m, name in lags.items():
        d[name] = (e == m).astype(float)
    g = d.groupby("countyreal")
    s = d.assign(dy=g["lemp"].diff())[g["year"].diff() == 1]
    dl = smf.ols("dy ~ " + " + ".join(lags.values()) + " + C(year)", s).fit()
    res = first_difference.fit_event_study(
        _panel(full), outcome="lemp", leads=-lo, lags=hi, bin_endpoints=True
    )
    mu = {int(k.split(":")[1]): v for k, v in _terms(res)["estimate"].items() if k != "att"}
    mu[-1] = 0.0
    for m, name in lags.items():
        assert mu[m] - mu[m - 1] == pytest.approx(dl.params[name], abs=EXACT)


# ------------------------------------------------------------------ invariances
def test_invariances_unit_order_labels_constant_and_scale(full):
    kw = {"leads": 3, "lags": 2, "bin_endpoints": True}
    base = _terms(first_difference.fit_event_study(_panel(full), outcome="lemp", **kw))
    rng = np.random.default_rng(16)
    codes = rng.permutation(full["countyreal"].unique())
    relabel = dict(zip(full["countyreal"].unique(), [f"c{c}" for c in codes], strict=True))
    shuffled = full.sample(frac=1.0, random_state=3).assign(
        county=lambda x: x["countyreal"].map(relabel), lemp=lambda x: x["lemp"] + 1000.0
    )
    moved = _terms(
        first_difference.fit_event_study(_panel(shuffled, unit="county"), outcome="lemp", **kw)
    )
    # differences remove the constant exactly up to the rounding of y + 1000 (~1e-13)
    assert np.allclose(moved["estimate"], base["estimate"], atol=1e-10, rtol=0)
    assert np.allclose(moved["se"], base["se"], atol=1e-10, rtol=0)
    scaled = _terms(
        first_difference.fit_event_study(
            _panel(full.assign(lemp=full["lemp"] * 7.0)), outcome="lemp", **kw
        )
    )
    assert np.allclose(scaled["estimate"], 7.0 * base["estimate"], rtol=1e-12, atol=1e-14)
    assert np.allclose(scaled["se"], 7.0 * base["se"], rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ known truth
def test_known_truth_dynamic_effects_random_walk_errors():
    # Homogeneous dynamic effects (0 before the opening, 1.0, 1.5, then 2.0 from e = 2
    # on, so the binned endpoints hold), random-walk errors (FD is efficient), a unit
    # effect and a common trend. Bias, SE/SD, 95% coverage and the pre-period null.
    reps = mc_reps(60, 500)
    truth = {-3: 0.0, -2: 0.0, 0: 1.0, 1: 1.5, 2: 2.0}
    rng = np.random.default_rng(2016)
    n, T = 80, 10
    unit = np.repeat(np.arange(n), T)
    year = np.tile(np.arange(2000, 2000 + T), n)
    est, se = [], []
    for _ in range(reps):
        cohort = np.repeat(rng.choice([2004, 2006, 0], size=n), T)
        e = np.where(cohort > 0, year - cohort, -99)
        effect = np.select([e >= 2, e == 1, e == 0], [2.0, 1.5, 1.0], 0.0)
        noise = rng.normal(size=(n, T)).cumsum(axis=1).ravel()
        y = np.repeat(rng.normal(size=n), T) + 0.3 * (year - 2000) + effect + noise
        df = pd.DataFrame({"u": unit, "t": year, "g": cohort, "y": y})
        p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"])
        t = _terms(
            first_difference.fit_event_study(p, outcome="y", leads=3, lags=2, bin_endpoints=True)
        )
        est.append([t.loc[f"event:{k}", "estimate"] for k in truth])
        se.append([t.loc[f"event:{k}", "se"] for k in truth])
    est, se = np.array(est), np.array(se)
    true = np.array(list(truth.values()))
    sd = est.std(axis=0, ddof=1)
    # unbiased: within 4 Monte Carlo standard errors of the mean for every coefficient
    assert np.all(np.abs(est.mean(axis=0) - true) < 4 * sd / np.sqrt(reps))
    # clustered SEs track the sampling SD (their own MC noise is ~1/sqrt(2 reps) ~ 9%)
    ratio = se.mean(axis=0) / sd
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio
    cover = (np.abs(est - true) <= 1.96 * se).mean(axis=0)
    # binomial SD of a 95% coverage over 60 replications is ~2.8 points
    assert np.all(cover >= 0.85), cover
    # FD is tighter than the levels event study under random-walk errors (Wooldridge
    # 2010, 10.7.1): compared on the last panel's SEs of the post-period average
    fd = first_difference.fit_event_study(p, outcome="y", leads=3, lags=2, bin_endpoints=True)
    lv = twfe.fit_event_study(p, outcome="y", leads=3, lags=2, bin_endpoints=True)
    assert fd.se < lv.se


# ------------------------------------------------------------------ registry and errors
def test_registry_and_named_errors(full):
    assert get_estimator("first_difference_event_study") is first_difference.fit_event_study
    check_options("first_difference_event_study", {"leads": 2, "bins": [[0, 1]], "cluster": "x"})
    with pytest.raises(SpecError, match="Valid options"):
        check_options("first_difference_event_study", {"time_effects": False})
    panel = _panel(full)
    with pytest.raises(SpecError, match="outside the window"):
        first_difference.fit_event_study(panel, outcome="lemp", leads=2, ref_period=-3)
    with pytest.raises(SpecError, match="overlap"):
        first_difference.fit_event_study(panel, outcome="lemp", bins=[[0, 2], [2, 3]])
    with pytest.raises(SpecError, match="ssc"):
        first_difference.fit_event_study(panel, outcome="lemp", ssc="stata")
    # one period per unit (units spread over the years): nothing to difference
    single = full[full["year"] == 2003 + full["countyreal"] % 5]
    with pytest.raises(EstimationError, match="consecutive periods"):
        first_difference.fit_event_study(_panel(single), outcome="lemp")


def test_static_first_difference_reclusters_without_refitting(full):
    # the static FD result now keeps its differenced design: another clustering equals
    # the refit with that clustering (same CR1 algebra; rounding only)
    panel = _panel(full)
    res = first_difference.fit(panel, outcome="lemp")
    again = res.with_inference(cluster="state")
    refit = first_difference.fit(panel, outcome="lemp", cluster="state")
    assert again.estimate == refit.estimate
    assert again.se == pytest.approx(refit.se, rel=1e-12)
    assert again.info["n_clusters"] == refit.info["n_clusters"] < res.info["n_clusters"]
