"""Sun & Abraham (2021) interaction-weighted event study: references, invariances, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import PEERS, mc_reps

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import sun_abraham
from zoneimpact.panel import Panel

# CS dynamic aggregation, never-treated controls, universal base period, on mpdta (lemp):
# diff-diff 3.13.0 CallawaySantAnna(control_group="never_treated", base_period="universal")
# .fit(..., aggregate="event_study"). With never-treated controls the saturated SA regression
# reproduces CS's long differences exactly (Sun & Abraham 2021, Prop. 3 / CS 2021 Sec. 4), so
# the tolerance 1e-6 only absorbs the demeaning tolerance.
CS_DYNAMIC_UNIVERSAL = {
    -4: 0.0033063566925119886,
    -3: 0.025021829597554203,
    -2: 0.024458744971168976,
    0: -0.019931816789259777,
    1: -0.05095736706519498,
    2: -0.13725873888940443,
    3: -0.10081136308540525,
}
# Clustered (by county) SEs of the IW event-time effects from pyfixest 0.60.0
# event_study(estimator="saturated").aggregate(), which follows fixest sunab/aggregate and
# fixest's default small-sample correction; same closed form, so relative tolerance 1e-7.
PYFIXEST_SE = {
    -4: 0.024555095531863545,
    -3: 0.018154344410048408,
    -2: 0.014266792154618136,
    0: 0.011857538963453259,
    1: 0.016870678384610056,
    2: 0.03658947596376536,
    3: 0.03450427191020736,
}
# fixest agg="ATT" equals CS "simple" on a balanced panel: R did prints -0.0399513; full digits
# and SE from diff-diff 3.13.0 SunAbraham(control_group="never_treated") overall_att/overall_se.
ATT_REF, ATT_SE_REF = -0.03995127515517691, 0.011796277441754275
# One interaction from pyfixest 0.60.0 feols("lemp ~ cell dummies | countyreal + year",
# vcov={"CRV1": "countyreal"}): cohort 2004 at e = 0.
CELL_2004_0 = (-0.010503246, 0.023349189673294017)


def _event(res) -> pd.Series:
    t = res.terms.set_index("term")
    ev = t[t.index.str.startswith("event:")]
    return pd.Series(ev["estimate"].to_numpy(), index=[int(s.split(":")[1]) for s in ev.index])


def _event_se(res) -> pd.Series:
    t = res.terms.set_index("term")
    ev = t[t.index.str.startswith("event:")]
    return pd.Series(ev["se"].to_numpy(), index=[int(s.split(":")[1]) for s in ev.index])


def test_mpdta_equals_cs_dynamic_universal(mpdta) -> None:
    res = sun_abraham.fit(mpdta, outcome="lemp")
    est = _event(res)
    assert sorted(est.index) == sorted(CS_DYNAMIC_UNIVERSAL)
    for e, ref in CS_DYNAMIC_UNIVERSAL.items():
        assert est[e] == pytest.approx(ref, abs=1e-6)
    se = _event_se(res)
    for e, ref in PYFIXEST_SE.items():
        assert se[e] == pytest.approx(ref, rel=1e-7)
    assert res.estimate == pytest.approx(ATT_REF, abs=1e-8)
    assert res.se == pytest.approx(ATT_SE_REF, rel=1e-7)
    cell = res.cohort_effects.set_index(["cohort", "event"]).loc[(2004, 0)]
    assert cell["estimate"] == pytest.approx(CELL_2004_0[0], abs=1e-8)
    assert cell["se"] == pytest.approx(CELL_2004_0[1], rel=1e-7)
    assert res.terms["df"].iloc[0] == 499  # t(G - 1), fixest t.df = "min"
    assert res.vcov.shape == (len(res.terms), len(res.terms))
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.terms["se"], rtol=1e-12)
    # IW weights of each event time sum to one
    w = res.cohort_effects.groupby("event")["weight"].sum()
    np.testing.assert_allclose(w.to_numpy(), 1.0, atol=1e-12)


def test_matches_diff_diff_reference(mpdta) -> None:
    # diff-diff 3.13 SunAbraham(never_treated) on mpdta, from peers.json (generator:
    # benchmarks/reference/peer_references.py); 1e-8 / 1e-6 relative as in the live check
    ref = PEERS["sun_abraham_mpdta"]["event"]
    res = sun_abraham.fit(mpdta, outcome="lemp")
    est, se = _event(res), _event_se(res)
    assert len(ref) >= 7
    for e, v in ref.items():
        assert est[int(e)] == pytest.approx(v["estimate"], abs=1e-8)
        assert se[int(e)] == pytest.approx(v["se"], rel=1e-6)


def test_peer_diff_diff_if_installed(mpdta_frame, mpdta) -> None:
    dd = pytest.importorskip("diff_diff")
    frame = mpdta_frame.assign(ft=mpdta_frame["first.treat"])
    ref = dd.SunAbraham(control_group="never_treated").fit(
        frame, outcome="lemp", unit="countyreal", time="year", first_treat="ft"
    )
    res = sun_abraham.fit(mpdta, outcome="lemp")
    est, se = _event(res), _event_se(res)
    for e, v in ref.event_study_effects.items():
        assert est[int(e)] == pytest.approx(v["effect"], abs=1e-8)
        assert se[int(e)] == pytest.approx(v["se"], rel=1e-6)


def test_point_estimates_match_dummy_ols_unbalanced_with_covariate() -> None:
    # Brute force: OLS with unit, year and cell dummies in statsmodels on an unbalanced
    # panel with a time-varying covariate; same estimator, so 1e-8.
    rng = np.random.default_rng(5)
    n, years = 60, np.arange(2000, 2010)
    coh = rng.choice([2003, 2005, 2007, 0], size=n)
    rows = [(i, t) for i in range(n) for t in years if rng.uniform() > 0.15]
    df = pd.DataFrame(rows, columns=["id", "year"])
    df["g"] = coh[df["id"]]
    df["x"] = rng.normal(size=len(df))
    treat = (df["g"] > 0) & (df["year"] >= df["g"])
    df["y"] = (
        0.2 * df["id"]
        + 0.1 * df["year"]
        + 0.5 * df["x"]
        + treat * (1 + 0.3 * (df["year"] - df["g"]))
        + rng.normal(size=len(df))
    )
    panel = Panel.from_frame(
        df, unit="id", time="year", outcomes=["y"], cohort="g", covariates=["x"]
    )
    res = sun_abraham.fit(panel, outcome="y", covariates=["x"])
    rel = np.where(df["g"] > 0, df["year"] - df["g"], -1)
    cells = sorted({(g, e) for g, e in zip(df["g"], rel, strict=True) if g > 0 and e != -1})
    X = np.column_stack(
        [((df["g"] == g) & (rel == e)).to_numpy(float) for g, e in cells]
        + [df["x"].to_numpy()]
        + [pd.get_dummies(df["id"].astype(str)).to_numpy(float)]
        + [pd.get_dummies(df["year"].astype(str), drop_first=True).to_numpy(float)]
    )
    params = sm.OLS(df["y"].to_numpy(), X).fit().params
    got = res.cohort_effects.set_index(["cohort", "event"])["estimate"]
    for j, (g, e) in enumerate(cells):
        assert got[(g, e)] == pytest.approx(params[j], abs=1e-8)
    assert res.info["covariates"] == "x"


def test_invariances(mpdta_frame, mpdta) -> None:
    base = sun_abraham.fit(mpdta, outcome="lemp")
    # unit order: relabel counties with a random permutation so the sorted order changes
    rng = np.random.default_rng(0)
    ids = mpdta_frame["countyreal"].unique()
    relabel = dict(zip(ids, rng.permutation(len(ids)) + 10_000, strict=True))
    shuffled = mpdta_frame.sample(frac=1.0, random_state=1).assign(
        countyreal=lambda d: d["countyreal"].map(relabel),
        lemp2=lambda d: 3.0 * d["lemp"] + 7.0,
        lemp3=lambda d: d["lemp"] + 100.0,
    )
    p2 = Panel.from_frame(
        shuffled,
        unit="countyreal",
        time="year",
        outcomes=["lemp", "lemp2", "lemp3"],
        cohort="first.treat",
    )
    perm = sun_abraham.fit(p2, outcome="lemp")
    np.testing.assert_allclose(perm.terms["estimate"], base.terms["estimate"], atol=1e-10)
    np.testing.assert_allclose(perm.terms["se"], base.terms["se"], rtol=1e-8)
    shift = sun_abraham.fit(p2, outcome="lemp3")  # a constant is absorbed by the FE
    np.testing.assert_allclose(shift.terms["estimate"], base.terms["estimate"], atol=1e-9)
    np.testing.assert_allclose(shift.terms["se"], base.terms["se"], rtol=1e-6)
    scaled = sun_abraham.fit(p2, outcome="lemp2")  # affine: estimates and SEs scale by 3
    np.testing.assert_allclose(scaled.terms["estimate"], 3 * base.terms["estimate"], atol=1e-9)
    np.testing.assert_allclose(scaled.terms["se"], 3 * base.terms["se"], rtol=1e-6)


def test_caller_data_untouched(mpdta_frame, mpdta) -> None:
    before_frame = mpdta_frame.copy()
    before_panel = mpdta.data.copy()
    sun_abraham.fit(mpdta, outcome="lemp", covariates=["lpop"], min_e=-2, max_e=2)
    pd.testing.assert_frame_equal(mpdta_frame, before_frame)
    pd.testing.assert_frame_equal(mpdta.data, before_panel)


def test_last_cohort_control_is_restricted_never_treated(mpdta_frame) -> None:
    # SA with the last cohort (2007) as control on periods < 2007 equals the never-treated
    # regression on the same sample with 2007 recoded as never treated (never-treated units
    # dropped in both, so the control group is exactly cohort 2007).
    treated = mpdta_frame[mpdta_frame["first.treat"] > 0]
    p_last = Panel.from_frame(
        treated, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat"
    )
    res = sun_abraham.fit(p_last, outcome="lemp", control_group="last_cohort")
    recoded = treated[treated["year"] < 2007].assign(
        **{"first.treat": lambda d: d["first.treat"].where(d["first.treat"] != 2007, 0)}
    )
    p_never = Panel.from_frame(
        recoded, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat"
    )
    ref = sun_abraham.fit(p_never, outcome="lemp")
    pd.testing.assert_frame_equal(res.terms, ref.terms, atol=1e-10, rtol=1e-8)
    assert res.info["control_cohort"] == 2007


def test_window_trim_and_bin(mpdta) -> None:
    trim = sun_abraham.fit(mpdta, outcome="lemp", min_e=-2, max_e=1)
    assert sorted(_event(trim).index) == [-2, 0, 1]
    binned = sun_abraham.fit(mpdta, outcome="lemp", min_e=-2, max_e=1, window="bin")
    assert sorted(_event(binned).index) == [-2, 0, 1]
    full = sun_abraham.fit(mpdta, outcome="lemp")
    # Binning pools e = 1..3 of cohort 2004 into the e = 1 cell, so e = 1 changes; trimming
    # drops e = 2, 3 rows of cohort 2004, which leaves its e <= 1 cells as in the full fit.
    assert not np.isclose(_event(binned)[1], _event(full)[1])
    assert _event(trim)[1] == pytest.approx(_event(full)[1], abs=1e-10)
    # multiple reference periods (fixest ref.p = c(-1, -4))
    two = sun_abraham.fit(mpdta, outcome="lemp", ref_period=[-1, -4])
    assert -4 not in _event(two).index and two.info["ref_period"] == "-4,-1"


def test_cluster_by_geography_column() -> None:
    from zoneimpact.simulate import simulate

    sim = simulate(
        rng=3,
        n_units=80,
        n_regions=8,
        first_year=2004,
        last_year=2012,
        waves={2007: 0.5, 2009: 0.5},
        displacement_share=0.0,
    )
    res = sun_abraham.fit(sim.panel, outcome="fdi", cluster="region")
    assert res.info["cluster"] == "region" and res.info["n_clusters"] == 8
    assert np.all(res.terms["df"] == 7)


def test_errors(mpdta_frame, mpdta) -> None:
    no_never = Panel.from_frame(
        mpdta_frame[mpdta_frame["first.treat"] > 0],
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
    )
    with pytest.raises(EstimationError, match="never-treated"):
        sun_abraham.fit(no_never, outcome="lemp")
    with pytest.raises(EstimationError, match="control_group="):
        sun_abraham.fit(mpdta, outcome="lemp", control_group="not_yet")
    with pytest.raises(EstimationError, match="pre-treatment"):
        sun_abraham.fit(mpdta, outcome="lemp", ref_period=0)
    with pytest.raises(EstimationError, match="Covariate"):
        sun_abraham.fit(mpdta, outcome="lemp", covariates=["nope"])
    with pytest.raises(EstimationError, match="Cluster"):
        sun_abraham.fit(mpdta, outcome="lemp", cluster="state")
    res = sun_abraham.fit(mpdta, outcome="lemp", covariates=["lpop"])
    assert res.info["dropped_covariates"] == "lpop"  # time-invariant: absorbed by unit FE


def _staggered_mc(item: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from zoneimpact.simulate import simulate

    sim = simulate(
        rng=rng,
        n_units=150,
        n_regions=10,
        first_year=2004,
        last_year=2013,
        waves={2007: 0.4, 2009: 0.3, 2011: 0.3},
        displacement_share=0.0,
        agglomeration=0.0,
        zero_share=0.0,
    )
    res = sun_abraham.fit(sim.panel, outcome="fdi")
    truth = sim.truth.event.query("outcome == 'fdi'").set_index("event_time")["att"]
    t = res.terms.set_index("term")
    es = [0, 1, 2]
    ci = res.conf_int().loc[[f"event:{e}" for e in es]]
    return {
        "err": np.array([t.loc[f"event:{e}", "estimate"] - truth[e] for e in es]),
        "cover": np.array(
            [ci.loc[f"event:{e}", "lower"] <= truth[e] <= ci.loc[f"event:{e}", "upper"] for e in es]
        ),
    }


def test_monte_carlo_recovers_event_effects() -> None:
    from zoneimpact.parallel import replicate

    reps = mc_reps(100, 500)
    out = replicate(_staggered_mc, reps, rng=np.random.default_rng(20261122), progress=False)
    err = np.array([o["err"] for o in out])
    cover = np.array([o["cover"] for o in out]).mean(axis=0)
    sd = err.std(axis=0, ddof=1)
    # Bias below 0.05 SD is the target; with R replications the mean error itself has MC
    # standard error SD/sqrt(R) (0.1 SD at R = 100), so allow 0.05 SD + 3 MC SEs.
    assert np.all(np.abs(err.mean(axis=0)) < (0.05 + 3 / np.sqrt(reps)) * sd)
    # Nominal 95%: binomial MC SE is 2.2 points at R = 100; the truth is the sample CATT,
    # so the CI (targeting it conditionally) may over-cover.
    assert np.all((cover >= 0.87) & (cover <= 1.0))


def test_clustered_se_matches_dense_sandwich_any_cluster() -> None:
    # The estimator never builds the n x P dummy matrix; check it against the dense
    # computation (materialised cell dummies, alternating-projection demeaning, explicit
    # cluster scores, fixest small-sample factor) on an unbalanced panel with a covariate,
    # for clusters nesting the units and a time-varying cluster cutting across units.
    # Same formula, demeaning tolerance 1e-12: 1e-8.
    from zoneimpact.estimators._fe import cluster_scores, cluster_ssc_k, demean, factorize

    rng = np.random.default_rng(8)
    n, years = 120, np.arange(2000, 2011)
    coh = rng.choice([2003, 2005, 2008, 0], size=n)
    rows = [(i, t) for i in range(n) for t in years if rng.uniform() > 0.2]
    df = pd.DataFrame(rows, columns=["id", "year"])
    df["g"] = coh[df["id"]]
    df["x"] = rng.normal(size=len(df))
    df["reg"] = df["id"] % 9
    df["shift"] = rng.integers(0, 12, len(df))  # varies within unit
    treat = (df["g"] > 0) & (df["year"] >= df["g"])
    df["y"] = 0.1 * df["id"] + 0.5 * df["x"] + treat * 1.0 + rng.normal(size=len(df))
    panel = Panel.from_frame(
        df, unit="id", time="year", outcomes=["y"], cohort="g", covariates=["x", "reg", "shift"]
    )
    rel = np.where(df["g"] > 0, df["year"] - df["g"], -1).astype(int)
    cells = sorted({(e, g) for g, e in zip(df["g"], rel, strict=True) if g > 0 and e != -1})
    D = np.column_stack([((df["g"] == g) & (rel == e)).to_numpy(float) for e, g in cells])
    X = np.column_stack([D, df["x"].to_numpy()])
    fe = [factorize(df["id"]), factorize(df["year"])]
    Xd, yd = demean(X, fe), demean(df["y"].to_numpy(), fe)
    bread = np.linalg.inv(Xd.T @ Xd)
    beta = bread @ Xd.T @ yd
    u = yd - Xd @ beta
    for cluster in ("reg", "shift"):
        res = sun_abraham.fit(panel, outcome="y", covariates=["x"], cluster=cluster)
        cl = factorize(df[cluster])
        S = cluster_scores(Xd * u[:, None], cl)
        G, K = cl.max() + 1, cluster_ssc_k(X.shape[1], fe, cl)
        V = G / (G - 1) * (len(u) - 1) / (len(u) - K) * bread @ S.T @ S @ bread
        got = res.cohort_effects.set_index(["event", "cohort"])
        for j, (e, g) in enumerate(cells):
            assert got.loc[(e, g), "estimate"] == pytest.approx(beta[j], abs=1e-8)
            assert got.loc[(e, g), "se"] == pytest.approx(np.sqrt(V[j, j]), rel=1e-8)
        assert res.info["n_clusters"] == G


def test_old_option_name_still_works_with_a_warning(mpdta) -> None:
    import warnings

    from zoneimpact.estimators import check_options

    new = sun_abraham.fit(mpdta, outcome="lemp", control_group="never_treated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = sun_abraham.fit(mpdta, outcome="lemp", control="never_treated")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert "control_group" in str(caught[0].message)
    pd.testing.assert_frame_equal(old.terms, new.terms)
    check_options("sun_abraham", {"control": "never_treated"})  # specs keep working
    with pytest.raises(SpecError, match="same option"):
        sun_abraham.fit(mpdta, outcome="lemp", control="never_treated", control_group="x")
