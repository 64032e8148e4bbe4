"""Issue 16 designs: weights, event-study bins and references, first differences, ETWFE,
and the Bacon decomposition with always-treated units.

Reference numbers come from ``benchmarks/reference/designs.json``, written by
``benchmarks/reference/designs_reference.py`` (moderndid 0.2 = R did 2.x, pyfixest 0.60,
diff-diff 3.13, all on R did's mpdta with ``pop = exp(lpop)`` as the weight and
``emp = exp(lemp)`` as the count outcome). statsmodels and linearmodels comparisons run
live (both are installed with the test extra).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from conftest import mc_reps

from zoneimpact import Panel
from zoneimpact.errors import ZoneImpactError
from zoneimpact.estimators import (
    REGISTRY,
    bacon,
    callaway_santanna,
    check_options,
    etwfe,
    first_difference,
    get_estimator,
    imputation,
    ppml,
    sun_abraham,
    twfe,
)

REF = json.loads(
    (Path(__file__).parents[1] / "benchmarks" / "reference" / "designs.json").read_text()
)

# Exact algebra against the peers (same estimator, same small-sample factor): differences
# are rounding, observed below 1e-13; 1e-10 leaves room for BLAS differences.
EXACT = 1e-10


@pytest.fixture(scope="module")
def frame(mpdta_frame: pd.DataFrame) -> pd.DataFrame:
    df = mpdta_frame
    return df.assign(
        pop=np.exp(df["lpop"]),
        emp=np.exp(df["lemp"]),
        state=df["countyreal"] // 1000,
        lpop_year=df["lpop"] * df["year"],
        one=1.0,
        three=3.0,
    )


def _panel(df: pd.DataFrame, **kw) -> Panel:
    return Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        outcomes=["lemp", "emp"],
        covariates=["lpop", "pop", "state", "lpop_year", "one", "three"],
        **({"cohort": "first.treat"} | kw),
    )


@pytest.fixture(scope="module")
def panel(frame: pd.DataFrame) -> Panel:
    return _panel(frame)


def _terms(res) -> pd.DataFrame:
    return res.terms.set_index("term")


# ------------------------------------------------------------------ 1. weights: TWFE
@pytest.mark.parametrize("cluster", ["countyreal", "state"])
@pytest.mark.parametrize("weights", [None, "pop"])
def test_twfe_weights_match_pyfixest(panel, cluster, weights):
    ref = REF["twfe_weighted"][f"cluster_{cluster}_{weights or 'unweighted'}"]
    res = twfe.fit(
        panel,
        outcome="lemp",
        covariates=["lpop_year"],
        weights=weights,
        cluster=None if cluster == "countyreal" else cluster,
        ssc="fixest",
    )
    assert res.estimate == pytest.approx(ref["att"], abs=EXACT)
    assert res.se == pytest.approx(ref["se"], abs=EXACT)
    assert res.coef("lpop_year") == pytest.approx(ref["lpop_year"], abs=EXACT)


def test_constant_weights_equal_unweighted_everywhere(panel):
    # weighting by a constant is no weighting: every estimator, to rounding
    cases = [
        (twfe.fit, {}),
        (twfe.fit_event_study, {"bins": [[0, 1]]}),
        (first_difference.fit, {}),
        (callaway_santanna.fit, {"bootstrap": False}),
        (callaway_santanna.fit, {"bootstrap": False, "covariates": ["lpop"]}),
        (sun_abraham.fit, {}),
        (etwfe.fit, {}),
    ]
    for fn, kw in cases:
        base = _terms(fn(panel, outcome="lemp", **kw))
        for w in ("one", "three"):
            got = _terms(fn(panel, outcome="lemp", weights=w, **kw))
            assert np.allclose(got["estimate"], base["estimate"], atol=1e-12, rtol=0), fn
            assert np.allclose(got["se"], base["se"], atol=1e-12, rtol=1e-10), fn
    for fn in (ppml.fit, lambda p, **k: etwfe.fit(p, method="poisson", **k)):
        base = _terms(fn(panel, outcome="emp"))
        got = _terms(fn(panel, outcome="emp", weights="three"))
        # Poisson QMLE iterates to statsmodels' tolerance: agreement to ~1e-9 relative
        assert np.allclose(got["estimate"], base["estimate"], rtol=1e-7, atol=1e-9)
        assert np.allclose(got["se"], base["se"], rtol=1e-7)


def test_weight_errors_name_column_unit_and_period(frame):
    bad = frame.assign(pop=frame["pop"].where(frame.index != 7, -1.0))
    unit, year = frame.loc[7, "countyreal"], frame.loc[7, "year"]
    with pytest.raises(ZoneImpactError, match=rf"'pop'.*unit {unit}, period {year} has -1.0"):
        twfe.fit(_panel(bad), outcome="lemp", weights="pop")
    with pytest.raises(ZoneImpactError, match="not in the panel"):
        twfe.fit(_panel(frame), outcome="lemp", weights="population")
    varying = frame.assign(pop=frame["pop"] * (1 + 0.1 * (frame["year"] == 2005)))
    with pytest.raises(ZoneImpactError, match="varies within unit"):
        callaway_santanna.fit(_panel(varying), outcome="lemp", weights="pop", bootstrap=False)


# ------------------------------------------------------------------ 1. weights: CS
_CS = {
    "never_unconditional": {"control_group": "never_treated"},
    "notyet_unconditional": {"control_group": "not_yet_treated"},
    "never_dr_lpop": {"covariates": ["lpop"], "est_method": "dr"},
    "never_reg_lpop": {"covariates": ["lpop"], "est_method": "reg"},
    "never_ipw_lpop": {"covariates": ["lpop"], "est_method": "ipw"},
}


@pytest.mark.parametrize("name", list(_CS))
def test_callaway_santanna_weights_match_r_did(panel, name):
    # moderndid 0.2 with weightsname="pop" (its aggte fed the unit weights as R did's
    # compute.aggte uses them; see the generator): every ATT(g,t), aggregation and SE
    ref = REF["cs_weighted"][name]
    res = callaway_santanna.fit(panel, outcome="lemp", weights="pop", bootstrap=False, **_CS[name])
    gt = res.att_gt
    assert np.allclose(gt["estimate"], ref["att_gt"]["att"], atol=EXACT, rtol=0)
    assert np.allclose(gt["se"], ref["att_gt"]["se"], atol=EXACT, rtol=0)
    t = _terms(res)
    assert t.loc["att", "estimate"] == pytest.approx(ref["simple"]["att"], abs=EXACT)
    assert t.loc["att", "se"] == pytest.approx(ref["simple"]["se"], abs=EXACT)
    for fam, prefix, avg in (
        ("dynamic", "event", "event_avg"),
        ("group", "cohort", "cohort_avg"),
        ("calendar", "calendar", "calendar_avg"),
    ):
        r = ref[fam]
        names = [f"{prefix}:{int(i)}" for i in r["index"]]
        assert np.allclose(t.loc[names, "estimate"], r["att"], atol=EXACT, rtol=0)
        assert np.allclose(t.loc[names, "se"], r["se"], atol=EXACT, rtol=0)
        assert t.loc[avg, "estimate"] == pytest.approx(r["overall_att"], abs=EXACT)
        assert t.loc[avg, "se"] == pytest.approx(r["overall_se"], abs=EXACT)


def test_callaway_santanna_weights_change_the_estimate(panel):
    # a check that the weights are used at all: population weights move the ATT from R
    # did's unweighted -0.0400 (cs_mpdta_moderndid.json) to -0.0184
    w = callaway_santanna.fit(panel, outcome="lemp", weights="pop", bootstrap=False)
    u = callaway_santanna.fit(panel, outcome="lemp", bootstrap=False)
    assert u.estimate == pytest.approx(-0.039951, abs=1e-6)
    assert w.estimate == pytest.approx(-0.018413, abs=1e-6)


# ------------------------------------------------------------------ 1. weights: SA, PPML
def test_sun_abraham_weights_match_pyfixest_saturated(panel):
    ref = REF["sun_abraham_weighted"]
    res = sun_abraham.fit(panel, outcome="lemp", weights="pop")
    ce = res.cohort_effects.set_index(["cohort", "event"])
    for c in ref["cells"]:
        assert ce.loc[(c["cohort"], c["event"]), "estimate"] == pytest.approx(
            c["estimate"], abs=EXACT
        )
        assert ce.loc[(c["cohort"], c["event"]), "se"] == pytest.approx(c["se"], abs=EXACT)
    t = _terms(res)
    for k, v in ref["aggregates"].items():
        name = "att" if k == "att" else f"event:{k}"
        assert t.loc[name, "estimate"] == pytest.approx(v["estimate"], abs=EXACT)
        assert t.loc[name, "se"] == pytest.approx(v["se"], abs=EXACT)


@pytest.mark.parametrize("weights", [None, "pop"])
def test_ppml_weights_match_pyfixest_fepois(panel, weights):
    ref = REF["ppml_weighted"][weights or "unweighted"]
    res = ppml.fit(panel, outcome="emp", weights=weights, ssc="fixest")
    # both iterate IRLS to ~1e-10 relative; observed agreement 1e-14 (estimate) and 3e-9
    # (relative SE)
    assert res.estimate == pytest.approx(ref["att"], abs=1e-9)
    assert res.se == pytest.approx(ref["se"], rel=1e-7)
    # the default keeps statsmodels' K (every dummy): larger by sqrt((N-6)/(N-505))
    default = ppml.fit(panel, outcome="emp", weights=weights)
    assert default.se == pytest.approx(res.se * np.sqrt((2500 - 6) / (2500 - 505)), rel=1e-12)


# ------------------------------------------------------------------ 2. bins and references
_ES = {
    "two_period_bins": {"bins": [[-4, -3], [0, 1], [2, 3]]},
    "two_refs": {"ref": [-4, -1]},
    "leads_pooled_into_ref": {"bins": [[-3, -1]]},
    "binned_endpoints": {"leads": 2, "lags": 1, "bin_endpoints": True},
}


@pytest.mark.parametrize("weights", [None, "pop"])
@pytest.mark.parametrize("design", list(_ES))
def test_event_study_bins_match_pyfixest_hand_dummies(panel, design, weights):
    ref = REF["event_bins"][f"{design}_{weights or 'unweighted'}"]
    res = twfe.fit_event_study(panel, outcome="lemp", ssc="fixest", weights=weights, **_ES[design])
    t = _terms(res)
    assert set(t.index) - {"att"} == {f"event:{e}" for e in ref}
    for e, v in ref.items():
        assert t.loc[f"event:{e}", "estimate"] == pytest.approx(v["estimate"], abs=EXACT)
        assert t.loc[f"event:{e}", "se"] == pytest.approx(v["se"], abs=EXACT)
    post = [f"event:{e}" for e in ref if int(e) >= 0]
    assert t.loc["att", "estimate"] == pytest.approx(t.loc[post, "estimate"].mean(), abs=1e-12)


def test_event_study_bin_errors(panel):
    for bins, msg in (
        ([[0, 2], [2, 3]], "overlap"),
        ([[-1, 0]], "mixes pre-treatment"),
        ([[3, 1]], "empty"),
        ([0, 1], "pair"),
        ("0-1", "list of"),
    ):
        with pytest.raises(ZoneImpactError, match=msg):
            twfe.fit_event_study(panel, outcome="lemp", bins=bins)
    with pytest.raises(ZoneImpactError, match="outside the window"):
        twfe.fit_event_study(panel, outcome="lemp", ref_period=[-1, -9])


# ------------------------------------------------------------------ 2. first differences
@pytest.fixture(scope="module")
def gappy(frame):
    # three rows removed: differences across the gaps must not be taken
    return frame.drop(index=[3, 17, 400]).reset_index(drop=True)


def _differenced(df: pd.DataFrame) -> pd.DataFrame:
    d = df.sort_values(["countyreal", "year"]).copy()
    ft = d["first.treat"]
    d["D"] = ((ft > 0) & (d["year"] >= ft)).astype(float)
    g = d.groupby("countyreal")
    d["dy"], d["dD"] = g["lemp"].diff(), g["D"].diff()
    return d[g["year"].diff() == 1]


@pytest.mark.parametrize("cluster", ["countyreal", "state"])
@pytest.mark.parametrize("weights", [None, "pop"])
def test_first_difference_matches_statsmodels(gappy, cluster, weights):
    s = _differenced(gappy)
    groups = pd.factorize(s[cluster])[0]
    model = (
        smf.wls("dy ~ dD + C(year)", s, weights=s[weights])
        if weights
        else smf.ols("dy ~ dD + C(year)", s)
    )
    ref = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    res = first_difference.fit(
        _panel(gappy),
        outcome="lemp",
        weights=weights,
        cluster=None if cluster == "countyreal" else cluster,
    )
    # same OLS on the same 1,995 differences with statsmodels' CR1 factor
    assert res.n_obs == len(s) == 1995
    assert res.estimate == pytest.approx(ref.params["dD"], abs=EXACT)
    assert res.se == pytest.approx(ref.bse["dD"], abs=EXACT)


def test_first_difference_matches_linearmodels(gappy):
    from linearmodels.panel import FirstDifferenceOLS

    d = gappy.assign(
        D=((gappy["first.treat"] > 0) & (gappy["year"] >= gappy["first.treat"])).astype(float)
    ).set_index(["countyreal", "year"])
    ref = FirstDifferenceOLS(d["lemp"], d[["D"]]).fit(cov_type="clustered", cluster_entity=True)
    res = first_difference.fit(_panel(gappy), outcome="lemp", time_effects=False)
    assert res.estimate == pytest.approx(float(ref.params["D"]), abs=EXACT)
    # linearmodels scales the clustered sandwich by N/(N-K), we (statsmodels) by
    # G/(G-1) (N-1)/(N-K); with N = 1995 differences, K = 1, G = 500 they differ by this
    factor = np.sqrt((1995 / 1994) / (500 / 499))
    assert res.se * factor == pytest.approx(float(ref.std_errors["D"]), abs=EXACT)


def test_first_difference_known_truth_random_walk_errors():
    # FD's home ground (Wooldridge 2010, 10.7.1): random-walk errors, effect 1.5 at the
    # opening. Bias, SE/SD and 95% coverage over seeded panels.
    reps = mc_reps(60, 400)
    rng = np.random.default_rng(160)
    est, se = [], []
    for _ in range(reps):
        n, T = 60, 8
        unit = np.repeat(np.arange(n), T)
        year = np.tile(np.arange(2000, 2000 + T), n)
        cohort = np.repeat(rng.choice([2003, 2005, 0], size=n), T)
        d = (cohort > 0) & (year >= cohort)
        e = rng.normal(size=(n, T)).cumsum(axis=1).ravel()
        y = np.repeat(rng.normal(size=n), T) + 0.2 * (year - 2000) + 1.5 * d + e
        df = pd.DataFrame({"u": unit, "t": year, "g": cohort, "y": y})
        p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"])
        r = first_difference.fit(p, outcome="y")
        est.append(r.estimate)
        se.append(r.se)
    est, se = np.array(est), np.array(se)
    sd = est.std(ddof=1)
    # bias within 4 Monte Carlo standard errors; SE/SD within 25% at 60 reps; coverage
    # of the t(G-1) interval at least 85% (nominal 95%)
    assert abs(est.mean() - 1.5) < 4 * sd / np.sqrt(reps)
    assert 0.75 < se.mean() / sd < 1.25
    assert np.mean(np.abs(est - 1.5) <= 2.0 * se) >= 0.85


# ------------------------------------------------------------------ 6. ETWFE
def test_etwfe_linear_matches_diff_diff(panel):
    ref = REF["etwfe"]["ols"]
    res = etwfe.fit(panel, outcome="lemp", ssc="fixest")
    gt = res.att_gt.set_index(["cohort", "time"])
    for c in ref["att_gt"]:
        assert gt.loc[(c["cohort"], c["time"]), "estimate"] == pytest.approx(c["att"], abs=EXACT)
        assert gt.loc[(c["cohort"], c["time"]), "se"] == pytest.approx(c["se"], abs=EXACT)
    t = _terms(res)
    assert t.loc["att", "estimate"] == pytest.approx(ref["overall"]["att"], abs=EXACT)
    assert t.loc["att", "se"] == pytest.approx(ref["overall"]["se"], abs=EXACT)
    for fam, prefix in (("event", "event"), ("group", "cohort"), ("calendar", "calendar")):
        for k, v in ref[fam].items():
            assert t.loc[f"{prefix}:{k}", "estimate"] == pytest.approx(v["att"], abs=EXACT)
            assert t.loc[f"{prefix}:{k}", "se"] == pytest.approx(v["se"], abs=EXACT)


def test_etwfe_covariate_matches_diff_diff(panel):
    # time-invariant lpop: Wooldridge's cohort-centred cell interactions and lpop x year
    ref = REF["etwfe"]["ols_lpop"]
    res = etwfe.fit(panel, outcome="lemp", covariates=["lpop"], ssc="fixest")
    gt = res.att_gt.set_index(["cohort", "time"])
    for c in ref["att_gt"]:
        assert gt.loc[(c["cohort"], c["time"]), "estimate"] == pytest.approx(c["att"], abs=EXACT)
        assert gt.loc[(c["cohort"], c["time"]), "se"] == pytest.approx(c["se"], abs=EXACT)
    assert res.estimate == pytest.approx(ref["overall"]["att"], abs=EXACT)
    assert res.se == pytest.approx(ref["overall"]["se"], abs=EXACT)


def test_etwfe_time_varying_covariate_known_truth():
    # noiseless: untreated outcomes follow unit + year effects plus a year-specific slope
    # on a time-varying x; the effect is 1 + 0.5 x_it. ETWFE with x recovers every
    # ATT(g,t) = mean of the effect over the cell exactly; without x it is off
    rng = np.random.default_rng(61)
    n, years = 80, np.arange(2001, 2008)
    T = len(years)
    cohort = np.repeat(rng.choice([2003, 2005, 0], size=n), T)
    year = np.tile(years, n)
    x = rng.normal(size=n * T) + 0.3 * (cohort == 2003) * (year - 2000)
    d = (cohort > 0) & (year >= cohort)
    effect = 1.0 + 0.5 * x
    slope = dict(zip(years, np.linspace(-1, 1, T), strict=True))
    y = np.repeat(rng.normal(size=n), T) + 0.2 * year + np.array([slope[t] for t in year]) * x
    y = y + effect * d
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": year, "g": cohort, "y": y, "x": x})
    p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["x"])
    truth = df.assign(e=effect)[d].groupby(["g", "t"])["e"].mean()
    got = etwfe.fit(p, outcome="y", covariates=["x"]).att_gt.set_index(["cohort", "time"])
    assert np.allclose(got.loc[truth.index, "estimate"], truth, atol=1e-9, rtol=0)
    naive = etwfe.fit(p, outcome="y").att_gt.set_index(["cohort", "time"])
    assert np.abs(naive.loc[truth.index, "estimate"] - truth).max() > 0.05


def test_etwfe_poisson_matches_diff_diff(panel):
    ref = REF["etwfe"]["poisson"]
    res = etwfe.fit(panel, outcome="emp", method="poisson")
    gt = res.att_gt.set_index(["cohort", "time"])
    # Poisson IRLS to each package's tolerance: observed 1e-11 (ATT, levels ~ 10-100)
    # and 3e-10 relative (SE)
    for c in ref["att_gt"]:
        assert gt.loc[(c["cohort"], c["time"]), "estimate"] == pytest.approx(c["att"], abs=1e-7)
        assert gt.loc[(c["cohort"], c["time"]), "se"] == pytest.approx(c["se"], rel=1e-7)
    t = _terms(res)
    assert t.loc["att", "estimate"] == pytest.approx(ref["overall"]["att"], abs=1e-7)
    assert t.loc["att", "se"] == pytest.approx(ref["overall"]["se"], rel=1e-7)
    for k, v in ref["event"].items():
        assert t.loc[f"event:{k}", "estimate"] == pytest.approx(v["att"], abs=1e-7)
        assert t.loc[f"event:{k}", "se"] == pytest.approx(v["se"], rel=1e-7)


def test_etwfe_poisson_weighted_coefficients_match_pyfixest(panel):
    # pyfixest fepois(weights="pop") with the post cells and cohort + year effects: the
    # log-point cell coefficients (IRLS tolerances: observed 1e-9)
    ref = REF["etwfe"]["poisson_weighted_coef"]
    res = etwfe.fit(panel, outcome="emp", method="poisson", weights="pop")
    coef = res.att_gt.set_index(["cohort", "time"])["coef"]
    for c in ref:
        assert coef.loc[(c["cohort"], c["time"])] == pytest.approx(c["coef"], abs=1e-7)


@pytest.mark.parametrize("weights", [None, "pop"])
def test_etwfe_equals_imputation(frame, weights):
    # Wooldridge (2021), Theorem 6.1: without covariates, on a balanced panel, the ETWFE
    # cell coefficients are the imputation estimator's cell averages (weighted too)
    df = frame
    p = _panel(df)
    res = etwfe.fit(p, outcome="lemp", weights=weights)
    imp = imputation.fit(p, outcome="lemp", weights=weights)
    eff = imp.effects.assign(w=1.0 if weights is None else None)
    if weights is not None:
        w = df.set_index(["countyreal", "year"])["pop"]
        eff["w"] = w.reindex(pd.MultiIndex.from_frame(eff[["unit", "time"]])).to_numpy()
    cell = eff.assign(wt=eff["w"] * eff["tau"]).groupby(["cohort", "time"])[["wt", "w"]].sum()
    cell = cell["wt"] / cell["w"]
    gt = res.att_gt.set_index(["cohort", "time"])["estimate"]
    assert np.allclose(gt.loc[cell.index].to_numpy(), cell.to_numpy(), atol=EXACT, rtol=0)
    ti, te = _terms(imp), _terms(res)
    for name in ("att", "event:0", "event:1", "event:2", "event:3"):
        assert te.loc[name, "estimate"] == pytest.approx(ti.loc[name, "estimate"], abs=EXACT)


def test_etwfe_never_treated_equals_callaway_santanna(panel):
    # with every pre-period cell but g-1 dummied, only never-treated units are controls:
    # each tau_gt is the 2x2 DiD against g-1, i.e. CS's never-treated ATT(g,t) (balanced)
    res = etwfe.fit(panel, outcome="lemp", control_group="never_treated")
    cs = callaway_santanna.fit(panel, outcome="lemp", bootstrap=False, base_period="universal")
    a = res.att_gt.set_index(["cohort", "time"])["estimate"]
    b = cs.att_gt.set_index(["cohort", "time"])["estimate"]
    b = b[b.index.isin(a.index)]
    assert len(b) == len(a) == 12
    assert np.allclose(a.loc[b.index], b, atol=EXACT, rtol=0)
    assert "event:-4" in set(res.terms["term"])


def test_etwfe_poisson_covariate_matches_diff_diff(panel):
    # diff-diff 3.13 WooldridgeDiD(method="poisson", exovar=["lpop"]) (= Stata jwdid
    # emp lpop, method(poisson)), from etwfe_poisson_covariates.json (generator:
    # benchmarks/reference/etwfe_poisson_covariates_reference.py). Same model and delta
    # method; the two IRLS solutions differ by their convergence tolerances: observed
    # 4e-11 on ATT(g,t) (levels ~ 10-100) and 3e-11 relative on the SEs, so 1e-7 as the
    # Poisson test above
    ref = json.loads(
        (
            Path(__file__).parents[1] / "benchmarks" / "reference" / "etwfe_poisson_covariates.json"
        ).read_text()
    )
    res = etwfe.fit(panel, outcome="emp", method="poisson", covariates=["lpop"])
    assert res.info["covariates"] == "lpop"
    t = _terms(res)
    assert t.loc["att", "estimate"] == pytest.approx(ref["overall"]["att"], abs=1e-7)
    assert t.loc["att", "se"] == pytest.approx(ref["overall"]["se"], rel=1e-7)
    gt = res.att_gt.set_index(["cohort", "time"])
    assert len(gt) == len(ref["att_gt"]) == 7
    for c in ref["att_gt"]:
        assert gt.loc[(c["cohort"], c["time"]), "estimate"] == pytest.approx(c["att"], abs=1e-7)
        assert gt.loc[(c["cohort"], c["time"]), "se"] == pytest.approx(c["se"], rel=1e-7)
    for fam, prefix in (("event", "event"), ("group", "cohort")):
        for k, v in ref[fam].items():
            assert t.loc[f"{prefix}:{k}", "estimate"] == pytest.approx(v["att"], abs=1e-7)
            assert t.loc[f"{prefix}:{k}", "se"] == pytest.approx(v["se"], rel=1e-7)
    # the covariate moves the estimate (by 0.34, far beyond the 1e-7 match): it is used
    plain = etwfe.fit(panel, outcome="emp", method="poisson")
    assert abs(plain.estimate - res.estimate) > 0.1


# statsmodels flags the exact fit of a noiseless design as "perfect prediction"
@pytest.mark.filterwarnings("ignore:Perfect separation")
def test_etwfe_poisson_time_varying_covariate_known_truth():
    # noiseless: y equals a pooled-Poisson mean with cohort, year, x, cohort x x and
    # year x x terms and a multiplicative effect exp(0.3 + 0.2 x) on treated rows. The
    # QMLE reproduces the mean exactly, so ETWFE Poisson with x recovers each
    # ATT(g,t) = cell mean of mu1 - mu0 to rounding; without x it does not
    rng = np.random.default_rng(71)
    n, years = 90, np.arange(2001, 2008)
    T = len(years)
    cohort = np.repeat(rng.choice([2003, 2005, 0], size=n), T)
    year = np.tile(years, n)
    x = rng.normal(size=n * T) + 0.2 * (cohort == 2003) * (year - 2000) / 4
    d = (cohort > 0) & (year >= cohort)
    slope = dict(zip(years, np.linspace(-0.3, 0.3, T), strict=True))
    eta0 = (
        1.0
        + 0.05 * (year - 2000)
        + 0.2 * (cohort == 2003)
        - 0.1 * (cohort == 2005)
        + np.array([slope[t] for t in year]) * x
        + 0.15 * (cohort == 2005) * x
    )
    effect = (0.3 + 0.2 * x) * d
    y = np.exp(eta0 + effect)
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": year, "g": cohort, "y": y, "x": x})
    p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["x"])
    truth = df.assign(gap=np.exp(eta0 + effect) - np.exp(eta0))[d].groupby(["g", "t"])["gap"].mean()
    got = etwfe.fit(p, outcome="y", method="poisson", covariates=["x"])
    gt = got.att_gt.set_index(["cohort", "time"])
    # IRLS converged to tol 1e-12 on a noiseless design: 1e-8 on effects of size ~1
    assert np.allclose(gt.loc[truth.index, "estimate"], truth, atol=1e-8, rtol=0)
    naive = etwfe.fit(p, outcome="y", method="poisson").att_gt.set_index(["cohort", "time"])
    assert np.abs(naive.loc[truth.index, "estimate"] - truth).max() > 0.05


def test_etwfe_errors(panel, frame):
    with pytest.raises(ZoneImpactError, match="nope"):
        etwfe.fit(panel, outcome="emp", covariates=["nope"], method="poisson")
    # no never-treated county: every unit is treated in 2007, whose cells and year effect
    # cannot be told apart (a pseudo-inverse fit would report meaningless SEs)
    treated_only = _panel(frame[frame["first.treat"] > 0])
    with pytest.raises(ZoneImpactError, match="collinear"):
        etwfe.fit(treated_only, outcome="emp", method="poisson")
    with pytest.raises(ZoneImpactError, match="non-negative"):
        etwfe.fit(
            panel.with_outcome("lemp", panel.data["lemp"] - 9), outcome="lemp", method="poisson"
        )
    with pytest.raises(ZoneImpactError, match="method"):
        etwfe.fit(panel, outcome="lemp", method="logit")


# ------------------------------------------------------------------ 8. Bacon, always treated
def test_bacon_reports_later_vs_always_treated(frame):
    # the 2004 cohort recoded as treated from 2003: treated in every period. Built with
    # treatment= (a cohort= in the first period is refused by Panel as no pre-period).
    ft = frame["first.treat"].replace({2004: 2003})
    df = frame.assign(d=((ft > 0) & (frame["year"] >= ft)).astype(int))
    p = Panel.from_frame(df, unit="countyreal", time="year", treatment="d", outcomes=["lemp"])
    res = bacon.fit(p, outcome="lemp")
    ref = REF["bacon_always"]
    comp = res.comparisons
    assert res.estimate == pytest.approx(ref["twfe"], abs=EXACT)
    assert set(comp["type"]) == {
        "treated_vs_never",
        "earlier_vs_later",
        "later_vs_earlier",
        "later_vs_always",
    }
    info = res.info
    for t in ("treated_vs_never", "earlier_vs_later", "later_vs_earlier", "later_vs_always"):
        assert np.isfinite(info[f"estimate_{t}"]) and info[f"weight_{t}"] > 0
    assert abs(info["decomposition_error"]) < 1e-12
    assert info["weight_sum"] == pytest.approx(1.0, abs=1e-12)
    # diff-diff pools the always treated with the never treated (U): per later cohort,
    # our two comparisons' weights add to its weight and their weighted estimates to its
    # weight x estimate; the cohort comparisons are identical
    for r in ref["comparisons"]:
        if r["type"] == "treated_vs_never":
            mine = comp[
                comp["type"].isin(["treated_vs_never", "later_vs_always"])
                & (comp["treated_cohort"] == r["treated"])
            ]
            assert mine["weight"].sum() == pytest.approx(r["weight"], abs=EXACT)
            assert mine["weight"] @ mine["estimate"] == pytest.approx(
                r["weight"] * r["estimate"], abs=EXACT
            )
        else:
            row = comp[
                (comp["type"] == r["type"])
                & (comp["treated_cohort"] == r["treated"])
                & (comp["control_cohort"].astype(str) == r["control"])
            ]
            assert len(row) == 1
            assert row["weight"].iloc[0] == pytest.approx(r["weight"], abs=EXACT)
            assert row["estimate"].iloc[0] == pytest.approx(r["estimate"], abs=EXACT)


# ------------------------------------------------------------------ registry and specs
def test_new_estimators_are_registered_with_their_options():
    for name in ("etwfe", "first_difference"):
        assert name in REGISTRY
        get_estimator(name)
    check_options("etwfe", {"method": "poisson", "weights": "pop"})
    check_options("first_difference", {"time_effects": False, "weights": "pop"})
    check_options("event_study", {"bins": [[0, 1]], "ref": [-4, -1]})
    for name in ("twfe", "ppml", "callaway_santanna", "sun_abraham", "event_study"):
        check_options(name, {"weights": "pop"})
    with pytest.raises(ZoneImpactError, match="Valid options"):
        check_options("etwfe", {"weight": "pop"})


def test_adding_a_constant_changes_no_effect(frame):
    base, shifted = _panel(frame), _panel(frame.assign(lemp=frame["lemp"] + 100.0))
    for fn, kw in (
        (etwfe.fit, {"covariates": ["lpop"]}),
        (first_difference.fit, {"weights": "pop"}),
        (twfe.fit_event_study, {"bins": [[0, 1], [2, 3]], "weights": "pop"}),
        (callaway_santanna.fit, {"weights": "pop", "bootstrap": False}),
        (sun_abraham.fit, {"weights": "pop"}),
    ):
        a, b = _terms(fn(base, outcome="lemp", **kw)), _terms(fn(shifted, outcome="lemp", **kw))
        # an outcome near 108 instead of 8 costs about two digits of rounding
        assert np.allclose(a["estimate"], b["estimate"], atol=1e-9, rtol=0)
        assert np.allclose(a["se"], b["se"], atol=1e-9, rtol=0)


def test_results_are_unchanged_by_unit_order(frame):
    shuffled = _panel(frame.sample(frac=1, random_state=3))
    base = _panel(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn, kw in (
            (etwfe.fit, {}),
            (first_difference.fit, {"weights": "pop"}),
            (twfe.fit_event_study, {"bins": [[0, 1], [2, 3]], "weights": "pop"}),
        ):
            a, b = (
                _terms(fn(base, outcome="lemp", **kw)),
                _terms(fn(shuffled, outcome="lemp", **kw)),
            )
            assert np.allclose(a["estimate"], b["estimate"], atol=1e-12, rtol=0)
            assert np.allclose(a["se"], b["se"], atol=1e-12, rtol=0)


def test_weighted_estimators_recover_the_weighted_att_known_truth():
    # noiseless panel whose unit effects grow with the weight: the population-weighted
    # ATT over treated observations is the truth for the weighted ETWFE, Sun-Abraham and
    # CS (whose "simple" weights cohorts by weighted size x post periods, the same thing on
    # a balanced panel); the unweighted ATT differs from it by 0.2
    rng = np.random.default_rng(16)
    n, years = 90, np.arange(2001, 2009)
    cohort = rng.choice([2004, 2006, 0], size=n)
    w = np.exp(rng.normal(size=n))
    tau = 1.0 + 0.5 * np.log(w)
    unit = np.repeat(np.arange(n), len(years))
    year = np.tile(years, n)
    g = np.repeat(cohort, len(years))
    d = (g > 0) & (year >= g)
    y = (
        np.repeat(rng.normal(size=n), len(years))
        + 0.3 * (year - 2000)
        + np.repeat(tau, len(years)) * d
    )
    df = pd.DataFrame({"u": unit, "t": year, "g": g, "y": y, "w": np.repeat(w, len(years))})
    p = Panel.from_frame(df, unit="u", time="t", cohort="g", outcomes=["y"], covariates=["w"])
    wt = df.loc[d, "w"].to_numpy()
    truth_w = float(wt @ np.repeat(tau, len(years))[d] / wt.sum())
    truth_u = float(np.repeat(tau, len(years))[d].mean())
    assert abs(truth_w - truth_u) > 0.1
    for fn, kw in (
        (etwfe.fit, {}),
        (sun_abraham.fit, {}),
        (callaway_santanna.fit, {"bootstrap": False}),
        (imputation.fit, {}),
    ):
        assert fn(p, outcome="y", weights="w", **kw).estimate == pytest.approx(truth_w, abs=1e-10)
        assert fn(p, outcome="y", **kw).estimate == pytest.approx(truth_u, abs=1e-10)
