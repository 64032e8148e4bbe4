"""Callaway & Sant'Anna with the delete-one-cluster jackknife (CV3) covariance.

References: the jackknife is checked against refits written out here (each deleted
cluster fitted by ``callaway_santanna.fit`` itself), so every number below has its
origin in this file; the size check is a small seeded Monte Carlo.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.inference.jackknife import cluster_jackknife_vcov


@pytest.fixture(scope="module")
def mpdta_states(canonical):
    df = pd.read_csv(canonical / "mpdta.csv")
    df["state"] = df["countyreal"] // 1000  # FIPS: the county code's leading digits
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat",
        covariates=["lpop", "state"],
    )  # fmt: skip


def _fit(panel: Panel, **kw):
    kw = {"covariates": ["lpop"], "est_method": "dr", "bootstrap": False, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cs.fit(panel, outcome="lemp", aggregations=("simple", "dynamic", "group"), **kw)


def _quiet_jackknife(res, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return res.with_inference("jackknife", **kw)


def test_jackknife_equals_refits_written_out(mpdta_states) -> None:
    panel = _panel(mpdta_states)
    res = _fit(panel, cluster="state")
    jk = _quiet_jackknife(res, cluster="state")
    t = jk.terms.set_index("term")
    full = res.terms.set_index("term")["estimate"]
    states = mpdta_states.groupby("countyreal")["state"].first()
    reps = []
    for s in pd.unique(states.reindex(res.units)):
        sub = panel.replace(data=panel.data[panel.data["state"] != s].reset_index(drop=True))
        r = _fit(sub)
        reps.append(r.terms.set_index("term")["estimate"].reindex(full.index))
    reps = pd.DataFrame(reps)
    g = len(reps)
    assert g == 29 == jk.info["jackknife_clusters"] == jk.info["n_clusters"]
    for term in ("att", "event:0", "event:-2", "cohort:2006", "cohort_avg"):
        dev = reps[term].to_numpy() - full[term]
        want = np.sqrt((g - 1) / g * np.sum(dev**2))
        # the same refits in another order: equal to summation rounding
        assert t.at[term, "se"] == pytest.approx(want, rel=1e-10)
        # the mean-centred form (Stata's vce(jackknife)) differs: the test can tell them apart
        mean_c = np.sqrt((g - 1) / g * np.sum((reps[term] - reps[term].mean()) ** 2))
        assert abs(mean_c / want - 1) > 1e-6
    # the estimates are the fit's; the jackknife moves the SEs (analytic 0.0164 for att)
    pd.testing.assert_series_equal(t["estimate"], full, check_names=False)
    assert t.at["att", "se"] / res.terms.set_index("term").at["att", "se"] > 1.1
    assert jk.info["se_type"] == "cluster jackknife (CV3)"


def test_deletions_that_remove_a_cohort(mpdta_states) -> None:
    # mpdta's 2004 cohort sits in one state: deleting it leaves cohort:2004 and the event
    # times only that cohort reaches undefined (NaN SE, named), and att loses a cohort
    res = _fit(_panel(mpdta_states), cluster="state")
    jk = _quiet_jackknife(res, cluster="state")
    t = jk.terms.set_index("term")
    assert set(jk.info["jackknife_undefined"]) == {"cohort:2004", "event:2", "event:3"}
    assert t.loc[["cohort:2004", "event:2", "event:3"], "se"].isna().all()
    assert np.isfinite(t.at["att", "se"])
    assert len(jk.info["jackknife_cohorts_lost"]) == 1
    # the state is named as given (17), not as the panel's float copy of it ("17.0")
    assert jk.info["jackknife_cohorts_lost"][0] == "17: cohort(s) [2004]"
    # the same states as a float Series by unit are named alike
    by_unit = mpdta_states.groupby("countyreal")["state"].first().astype(float)
    named = _quiet_jackknife(res, cluster=by_unit).info["jackknife_cohorts_lost"]
    assert named == ["17: cohort(s) [2004]"]
    cells = jk.att_gt
    assert cells.loc[cells["cohort"] == 2004, "se"].isna().all()
    assert cells.loc[cells["cohort"] == 2006, "se"].notna().any()
    # back to analytic: the jackknife's info goes with it
    back = jk.with_inference("analytic", cluster="state")
    assert not any(k.startswith("jackknife_") for k in back.info)
    pd.testing.assert_frame_equal(back.terms, res.terms)


def test_jackknife_invariances(mpdta_states) -> None:
    base = _quiet_jackknife(_fit(_panel(mpdta_states), cluster="state"), cluster="state")
    b = base.terms.set_index("term")
    # units renamed and rows shuffled: the same numbers (summation order only)
    df = mpdta_states.assign(countyreal=mpdta_states["countyreal"] * 7 + 3)
    df = df.assign(state=df["state"] + 100).sample(frac=1.0, random_state=3)
    moved = _quiet_jackknife(_fit(_panel(df), cluster="state"), cluster="state")
    m = moved.terms.set_index("term")
    np.testing.assert_allclose(m["se"], b["se"], rtol=1e-9, equal_nan=True)
    # a constant added leaves every SE (1e-7: the refits' regressions see lemp + 100)
    shifted = mpdta_states.assign(lemp=mpdta_states["lemp"] + 100)
    sh = _quiet_jackknife(_fit(_panel(shifted), cluster="state"), cluster="state")
    np.testing.assert_allclose(sh.terms["se"], base.terms["se"], rtol=1e-7, equal_nan=True)
    # scaling the outcome scales every SE
    scaled = mpdta_states.assign(lemp=mpdta_states["lemp"] * 1e3)
    sc = _quiet_jackknife(_fit(_panel(scaled), cluster="state"), cluster="state")
    np.testing.assert_allclose(sc.terms["se"], 1e3 * base.terms["se"], rtol=1e-9, equal_nan=True)
    # aggregating a jackknife result refits and keeps the jackknife
    dyn = base.aggregate("dynamic", min_e=-2, max_e=1)
    assert dyn.info["se_type"] == "cluster jackknife (CV3)"
    assert dyn.terms.set_index("term").at["att", "se"] != pytest.approx(b.at["att", "se"])


def test_jackknife_refits_on_workers_give_the_same_numbers(mpdta_states, monkeypatch) -> None:
    # refits (a deletion the batch cannot stand for) run on n_jobs workers; each refit is
    # deterministic and results come back in cluster order, so two workers reproduce one
    monkeypatch.setattr(cs, "_JACKKNIFE_BATCHED", False)
    panel = _panel(mpdta_states)
    one = _quiet_jackknife(_fit(panel, cluster="state"), cluster="state")
    two = _quiet_jackknife(_fit(panel, cluster="state", n_jobs=2), cluster="state")
    pd.testing.assert_frame_equal(two.terms, one.terms)
    pd.testing.assert_frame_equal(two.att_gt, one.att_gt)
    assert two.info["pretrend_p"] == one.info["pretrend_p"]


def test_jackknife_refusals(mpdta_states) -> None:
    res = _fit(_panel(mpdta_states), cluster="state")
    with pytest.raises(SpecError, match="one dimension|clustering dimensions"):
        res.with_inference("jackknife", cluster=["state", "year"])
    from dataclasses import replace

    with pytest.raises(EstimationError, match="keeps no panel"):
        replace(res, panel=None).with_inference("jackknife", cluster="state")
    with pytest.raises(SpecError, match="method"):
        res.with_inference("jackknifer")


def test_cluster_jackknife_vcov_formula() -> None:
    est = np.array([1.0, 2.0])
    reps = np.array([[1.1, 2.0], [0.8, np.nan], [1.2, 2.5]])
    v = cluster_jackknife_vcov(est, reps)
    assert v[0, 0] == pytest.approx(2 / 3 * (0.01 + 0.04 + 0.04))
    assert np.isnan(v[1, 1]) and np.isnan(v[0, 1])
    vm = cluster_jackknife_vcov(est, reps, center="mean")
    assert vm[0, 0] == pytest.approx(2 / 3 * np.sum((reps[:, 0] - reps[:, 0].mean()) ** 2))
    with pytest.raises(SpecError, match="G x 2"):
        cluster_jackknife_vcov(est, reps[:, :1])
    with pytest.raises(SpecError, match="at least 2"):
        cluster_jackknife_vcov(est, reps[:1])


def _world(rng: np.random.Generator) -> pd.DataFrame:
    """12 regions x 8 units x 8 years, half the regions' units treated in year 5 (no
    effect), region-year shocks (SD 1) and unit noise (SD 0.5) with a covariate."""
    n_r, per, years = 12, 8, np.arange(1, 9)
    region = np.repeat(np.arange(n_r), per)
    unit = np.arange(n_r * per)
    x = rng.normal(size=len(unit))
    treated = np.isin(region, rng.permutation(n_r)[: n_r // 2])
    shock = rng.normal(size=(n_r, len(years)))
    y = (
        rng.normal(size=len(unit))[:, None] + 0.3 * x[:, None] * years[None, :] / 8
        + shock[region] + 0.5 * rng.normal(size=(len(unit), len(years)))
    )  # fmt: skip
    return pd.DataFrame({
        "unit": np.repeat(unit, len(years)), "year": np.tile(years, len(unit)),
        "region": np.repeat(region, len(years)), "x": np.repeat(x, len(years)),
        "g": np.repeat(np.where(treated, 5, 0), len(years)), "y": y.ravel(),
    })  # fmt: skip


def test_jackknife_sizes_a_region_shock_world() -> None:
    # 120 seeded worlds with region-year shocks and no effect: the unit-level analytic SE
    # ignores the shared shocks (its SE/SD came out 0.39), the region jackknife tracks the
    # SD (1.12; rejection at 5% against t(11) 5.0%, 14 s). The band [0.85, 1.3] leaves room
    # for the SD's Monte Carlo error (about 6.5% at 120 draws) and fails the analytic SE;
    # the (G-1)/G factor (4%) is the written-out refits' test to catch, not this one's. At
    # most 10% rejection: twice the level, 2.5 MC SEs above it.
    ests, jse, ase, rej = [], [], [], []
    for seed in range(120):
        df = _world(np.random.default_rng(seed))
        p = Panel.from_frame(df, unit="unit", time="year", outcomes=["y"], cohort="g",
                             covariates=["x", "region"])  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = cs.fit(p, outcome="y", covariates=["x"], est_method="dr", bootstrap=False,
                       aggregations=("simple",))  # fmt: skip
            j = r.with_inference("jackknife", cluster="region")
        e = r.terms.set_index("term").at["att", "estimate"]
        s = j.terms.set_index("term").at["att", "se"]
        ests.append(e)
        jse.append(s)
        ase.append(r.terms.set_index("term").at["att", "se"])
        rej.append(abs(e) / s > 2.200985)  # t(11) 97.5% quantile
    sd = np.std(ests, ddof=1)
    assert 0.85 < np.sqrt(np.mean(np.square(jse))) / sd < 1.3
    assert np.sqrt(np.mean(np.square(ase))) / sd < 0.6
    assert np.mean(rej) <= 0.10


def _manual(panel: Panel, df: pd.DataFrame, res, term: str, **kw) -> float:
    """CV3 of ``term`` from refits written out (one per state, in any order)."""
    states = df.groupby("countyreal")["state"].first()
    full = res.terms.set_index("term").at[term, "estimate"]
    reps = []
    for s in pd.unique(states.reindex(res.units)):
        sub = panel.replace(data=panel.data[panel.data["state"] != s].reset_index(drop=True))
        reps.append(_fit(sub, **kw).terms.set_index("term").at[term, "estimate"])
    g = len(reps)
    return float(np.sqrt((g - 1) / g * np.sum((np.asarray(reps) - full) ** 2)))


def test_jackknife_passes_the_fit_options_on(mpdta_states) -> None:
    # weights, not-yet-treated controls, a universal base period and anticipation reach
    # every refit: the SE equals the written-out refits with the same options (dropping
    # any of them from the refits moves it by more than 1e-6)
    df = mpdta_states.assign(w=1.0 + (mpdta_states["countyreal"] % 3))
    panel = Panel.from_frame(
        df, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat",
        covariates=["lpop", "state", "w"],
    )  # fmt: skip
    kw = dict(weights="w", control_group="not_yet_treated", base_period="universal",
              anticipation=1)  # fmt: skip
    res = _fit(panel, cluster="state", **kw)
    jk = _quiet_jackknife(res, cluster="state")
    want = _manual(panel, df, res, "att", **kw)
    assert jk.terms.set_index("term").at["att", "se"] == pytest.approx(want, rel=1e-10)
    plain = _manual(panel, df, _fit(panel), "att")
    assert abs(plain / want - 1) > 1e-6


def test_jackknife_cells_pretrend_and_reweighted_terms(mpdta_states) -> None:
    from zoneimpact.inference.pretrends import pretrend_wald

    panel = _panel(mpdta_states)
    res = _fit(panel, cluster="state")
    jk = _quiet_jackknife(res, cluster="state")
    # one cell's SE against its written-out refits (estimate-centred, not mean-centred)
    states = mpdta_states.groupby("countyreal")["state"].first()
    cell = jk.att_gt.set_index(["cohort", "time"])
    full = cell.at[(2006, 2007), "estimate"]
    reps = []
    for s in pd.unique(states.reindex(res.units)):
        sub = panel.replace(data=panel.data[panel.data["state"] != s].reset_index(drop=True))
        reps.append(_fit(sub).att_gt.set_index(["cohort", "time"]).at[(2006, 2007), "estimate"])
    g = len(reps)
    want = np.sqrt((g - 1) / g * np.sum((np.asarray(reps) - full) ** 2))
    assert cell.at[(2006, 2007), "se"] == pytest.approx(want, rel=1e-10)
    # the pre-trend test reads the jackknife covariance on the CR1 scale (CV3 = CR1 for a
    # cluster mean); CR0 would put the p-value at 0.2251 instead of 0.2120
    ref = pretrend_wald(jk.terms, jk.vcov, n_clusters=g, vcov_type="CR1")["p_value"]
    assert jk.info["pretrend_p"] == pytest.approx(ref, rel=1e-12)
    assert jk.info["pretrend_p"] == pytest.approx(0.2120, abs=5e-4)
    # the deletion of the 2004 cohort's state refits the averages without it: named
    assert {"att", "event_avg", "cohort_avg"} <= set(jk.info["jackknife_terms_reweighted"])
    assert "event:0" in jk.info["jackknife_terms_reweighted"]  # 2004's event 0 is in it
    assert "cohort:2006" not in jk.info["jackknife_terms_reweighted"]


def test_jackknife_on_an_outcome_near_the_float_limits(mpdta_states) -> None:
    # the fit divides such an outcome by a power of two and keeps the divided panel; the
    # refits must be put back on the outcome's scale (before, att's SE came out 11x too
    # large at x 2^70 and inf at x 1e-300)
    base = _quiet_jackknife(_fit(_panel(mpdta_states), cluster="state"), cluster="state")
    for f in (2.0**70, 1e-300):
        df = mpdta_states.assign(lemp=mpdta_states["lemp"] * f)
        jk = _quiet_jackknife(_fit(_panel(df), cluster="state"), cluster="state")
        np.testing.assert_allclose(jk.terms["se"] / f, base.terms["se"], rtol=1e-8, equal_nan=True)


def test_a_failed_refit_warns_and_blanks_every_se(mpdta_states) -> None:
    # every never-treated county in one cluster: deleting it leaves no comparison group
    df = mpdta_states.copy()
    df.loc[df["first.treat"] == 0, "state"] = 999
    res = _fit(_panel(df), cluster="state")
    with pytest.warns(UserWarning, match="jackknife refits failed"):
        jk = res.with_inference("jackknife", cluster="state")
    assert jk.terms["se"].isna().all()
    assert len(jk.info["jackknife_failed"]) == 1 and jk.info["jackknife_failed"][0].startswith(
        "999"
    )
    assert jk.info["jackknife_undefined"] == []


def test_propensity_fits_reused_across_refits_change_no_number(mpdta_states, monkeypatch) -> None:
    # the logit memo (cs._LOGIT_MEMO) serves a repeated propensity fit from its inputs'
    # digest: a jackknife with it cold and one with it warm must agree to the last bit,
    # and the warm one must not fit a single new logit (the refits' path, where deletions
    # repeat fits across outcomes)
    monkeypatch.setattr(cs, "_JACKKNIFE_BATCHED", False)
    panel = _panel(mpdta_states)
    cs._clear_logit_memo()
    cold = _quiet_jackknife(_fit(panel, cluster="state"), cluster="state")
    n_fitted = len(cs._LOGIT_MEMO)
    assert n_fitted > 0
    calls = []
    real = cs._logit_fit
    monkeypatch.setattr(cs, "_logit_fit", lambda *a: calls.append(1) or real(*a))
    warm = _quiet_jackknife(_fit(panel, cluster="state"), cluster="state")
    assert not calls and len(cs._LOGIT_MEMO) == n_fitted
    pd.testing.assert_frame_equal(warm.terms, cold.terms, check_exact=True)
    pd.testing.assert_frame_equal(warm.att_gt, cold.att_gt, check_exact=True)
    # a singular fit is remembered as the same error
    x = np.column_stack([np.ones(6), np.ones(6)])
    d = np.array([0.0, 1, 0, 1, 0, 0])
    for _ in range(2):
        with pytest.raises(np.linalg.LinAlgError, match="[Ss]ingular"):
            cs._logit(x, d, np.ones(6))
    # the memo stays within its bound on the floats it holds (8 fitted p + 4 of (X'WX)^-1
    # per fit of 8 rows here), evicting the least recently used
    monkeypatch.setattr(cs, "_LOGIT_MEMO_FLOATS", 40)
    for k in range(5):
        cs._logit(np.column_stack([np.ones(8), np.arange(8.0) + k]), d.repeat(2)[:8], np.ones(8))
    held = sum(cs._memo_size(v) for v in cs._LOGIT_MEMO.values())
    assert held == cs._LOGIT_MEMO_HELD[0] <= 40 and len(cs._LOGIT_MEMO) == 3


def _both_paths(res, monkeypatch, **kw):
    """The jackknife with every cell batched across the deletions, and with CS refitted
    once per deletion (``cs._JACKKNIFE_BATCHED``), each from a cold logit memo."""
    out = []
    for batched in (True, False):
        monkeypatch.setattr(cs, "_JACKKNIFE_BATCHED", batched)
        cs._clear_logit_memo()
        out.append(_quiet_jackknife(res, **kw))
    return out


def _assert_same_jackknife(a, b) -> None:
    # two summation orders of the same sums and the same Newton iterations: 1e-10
    # (measured: at most 1.5e-15 relative on mpdta)
    np.testing.assert_allclose(a.terms["se"], b.terms["se"], rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(a.att_gt["se"], b.att_gt["se"], rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(a.vcov, b.vcov, rtol=1e-10, atol=1e-18, equal_nan=True)
    for key in ("jackknife_undefined", "jackknife_failed", "jackknife_cohorts_lost",
                "jackknife_terms_reweighted", "jackknife_clusters"):  # fmt: skip
        assert a.info[key] == b.info[key], key
    p_a, p_b = a.info["pretrend_p"], b.info["pretrend_p"]
    assert (p_a is None and p_b is None) or p_a == pytest.approx(p_b, rel=1e-9)


@pytest.mark.parametrize(
    "kw",
    [
        {"est_method": "dr"},
        {"est_method": "ipw"},
        {"est_method": "reg"},
        {"est_method": "dr", "control_group": "not_yet_treated", "weights": "w"},
        {"est_method": "ipw", "base_period": "universal", "anticipation": 1},
    ],
    ids=["dr", "ipw", "reg", "dr-nyt-weights", "ipw-universal-anticipation"],
)
def test_cells_batched_across_deletions_equal_the_refits(mpdta_states, monkeypatch, kw) -> None:
    # each ATT(g,t) is estimated for all 29 deletions at once; CS refitted without each
    # state must give the same replicates, failures and names, on an unbalanced panel
    # (5% of outcomes missing) with a second covariate whose scale the deletions move
    rng = np.random.default_rng(7)
    df = mpdta_states.assign(
        w=1.0 + (mpdta_states["countyreal"] % 3), x2=1e6 * rng.normal(size=len(mpdta_states))
    )
    df.loc[rng.random(len(df)) < 0.05, "lemp"] = np.nan
    panel = Panel.from_frame(
        df, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat",
        covariates=["lpop", "x2", "state", "w"],
    )  # fmt: skip
    res = _fit(panel, cluster="state", covariates=["lpop", "x2"], **kw)
    batched, refits = _both_paths(res, monkeypatch, cluster="state")
    _assert_same_jackknife(batched, refits)
    # the 2004 cohort has no pre-period under anticipation 1: no deletion can lose it
    lost = [] if "anticipation" in kw else ["17: cohort(s) [2004]"]
    assert batched.info["jackknife_cohorts_lost"] == lost
    assert np.isfinite(batched.terms.set_index("term").at["att", "se"])


def test_batched_jackknife_keeps_the_refits_failures_and_fallbacks(
    mpdta_states, monkeypatch
) -> None:
    # (a) a deletion that leaves no never-treated unit fails as the refit does
    df = mpdta_states.copy()
    df.loc[df["first.treat"] == 0, "state"] = 999
    batched, refits = _both_paths(_fit(_panel(df), cluster="state"), monkeypatch,
                                  cluster="state")  # fmt: skip
    assert batched.info["jackknife_failed"][0].startswith("999: control_group='never_treated'")
    _assert_same_jackknife(batched, refits)
    # (b) a deletion that removes a whole period is refitted (the batch keeps the periods);
    # the other deletions are batched, and together they equal all refits
    one = mpdta_states["state"].iloc[0]
    df = mpdta_states[(mpdta_states["year"] != 2005) | (mpdta_states["state"] == one)]
    res = _fit(_panel(df.reset_index(drop=True)), cluster="state")
    refitted = []
    real = cs._refit_or_reason
    monkeypatch.setattr(cs, "_refit_or_reason",
                        lambda *a: refitted.append(1) or real(*a))  # fmt: skip
    batched, refits = _both_paths(res, monkeypatch, cluster="state")
    assert len(refitted) == 1 + 29  # the batched run's one, then every refit
    _assert_same_jackknife(batched, refits)
    # (c) a deletion whose stack meets a singular matrix runs the single 2x2: every
    # deletion sent there gives the refits' numbers too
    monkeypatch.setattr(cs, "_refit_or_reason", real)
    res = _fit(_panel(mpdta_states), cluster="state")
    batch = cs._att_batch

    def all_redone(*a):
        att, why, redo = batch(*a)
        return att * np.nan, [None] * len(why), np.ones_like(redo)

    monkeypatch.setattr(cs, "_att_batch", all_redone)
    batched, refits = _both_paths(res, monkeypatch, cluster="state")
    _assert_same_jackknife(batched, refits)
    # (d) deletions batched in chunks (here one per stack, as a large panel's would be)
    monkeypatch.setattr(cs, "_att_batch", batch)
    monkeypatch.setattr(cs, "_BATCH_FLOATS", 1)
    batched, refits = _both_paths(res, monkeypatch, cluster="state")
    _assert_same_jackknife(batched, refits)
    # and the stack's solve flags the singular matrix alone, solving the others
    mat = np.stack([np.eye(2), np.ones((2, 2)), 2 * np.eye(2)])
    redo = np.zeros(5, dtype=bool)
    out = cs._solve_each(mat, np.ones((3, 2)), np.array([4, 1, 0]), redo)
    assert redo.tolist() == [False, True, False, False, False]
    np.testing.assert_allclose(out, [[1, 1], [0, 0], [0.5, 0.5]])
