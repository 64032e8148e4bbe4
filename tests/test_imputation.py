"""Borusyak-Jaravel-Spiess (2024) imputation estimator: references, brute force, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from bjs_reference import eq8_tilde
from conftest import PEERS, mc_reps
from scipy import stats

from zoneimpact.errors import EstimationError
from zoneimpact.estimators import imputation
from zoneimpact.panel import Panel

# diff-diff 3.13.0 ImputationDiD().fit(mpdta, outcome="lemp", ..., aggregate="event_study"):
# BJS Theorem 3 conservative SEs clustered by county, tau~ by cohort x event time (Stata
# did_imputation's default). Same closed form: estimates 1e-10, SEs relative 1e-8.
REF_ATT = (-0.04770991827781823, 0.01322248865001642)
REF_EVENT = {
    0: (-0.03106692719194074, 0.01357724974617999),
    1: (-0.05223485674786847, 0.01881242682276269),
    2: (-0.13607811443998968, 0.03534197213337359),
    3: (-0.10470747157562603, 0.03376585335779145),
}
# diff-diff 3.13.0 pretrend_test(n_leads=3): F on (3, G-1). It codes the leads as e = -4..-2
# (reference -1) while did_imputation codes K = -1..-3; with unit FE both sets span the same
# space, so the joint test is identical (relative tolerance 1e-8).
REF_PRETREND_F, REF_PRETREND_P = 1.8380922189315134, 0.1392669932741693


# Leave-out variance (BJS 2024 Supplementary Appendix A.9): diff-diff 3.13.0
# ImputationDiD(leave_one_out=True), same mpdta fit; same formula, relative tolerance 1e-8.
REF_LOO_SE = {
    "att": 0.013469090063466638,
    "event:0": 0.013681443065788524,
    "event:1": 0.019339980193479694,
    "event:2": 0.03700546541362137,
    "event:3": 0.03527565499344129,
}


def _t(res) -> pd.DataFrame:
    return res.terms.set_index("term")


def test_mpdta_matches_did_imputation_reference(mpdta) -> None:
    res = imputation.fit(mpdta, outcome="lemp", pretrends=3)
    t = _t(res)
    assert t.loc["att", "estimate"] == pytest.approx(REF_ATT[0], abs=1e-10)
    assert t.loc["att", "se"] == pytest.approx(REF_ATT[1], rel=1e-8)
    for e, (b, se) in REF_EVENT.items():
        assert t.loc[f"event:{e}", "estimate"] == pytest.approx(b, abs=1e-10)
        assert t.loc[f"event:{e}", "se"] == pytest.approx(se, rel=1e-8)
    assert res.info["pretrend_F_did_imputation"] == pytest.approx(REF_PRETREND_F, rel=1e-8)
    assert res.info["pretrend_p_did_imputation"] == pytest.approx(REF_PRETREND_P, rel=1e-8)
    # the default reference is Hotelling's: the same W (= 3 F) times (G - 3) / (3 (G - 1)) on
    # (3, G - 3), G = 500 counties; formula identity, so 1e-12
    G = res.info["n_clusters"]
    F_h = res.info["pretrend_F_did_imputation"] * (G - 3) / (G - 1)
    assert G == 500 and res.info["pretrend_df"] == "(3, 497)"
    assert res.info["pretrend_F"] == pytest.approx(F_h, rel=1e-12)
    assert res.info["pretrend_p"] == pytest.approx(stats.f.sf(F_h, 3, G - 3), rel=1e-12)
    assert list(t.index) == [
        "att",
        "event:-3",
        "event:-2",
        "event:-1",
        "event:0",
        "event:1",
        "event:2",
        "event:3",
    ]
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.terms["se"], rtol=1e-12)
    np.testing.assert_allclose(res.vcov, res.vcov.T, atol=1e-15)
    assert res.info["n_treated_obs"] == 291 and res.info["n_untreated_obs"] == 2209


def test_matches_diff_diff_reference(mpdta) -> None:
    # diff-diff 3.13 ImputationDiD on mpdta, from peers.json (generator:
    # benchmarks/reference/peer_references.py): the same estimator and variance
    # (Borusyak et al. 2024, Theorem 3), so 1e-10 on points and 1e-8 relative on SEs
    _assert_matches_reference(
        _t(imputation.fit(mpdta, outcome="lemp")), PEERS["imputation_mpdta"], se_rel=1e-8
    )


def _assert_matches_reference(t: pd.DataFrame, ref: dict, se_rel: float) -> None:
    """att and the four post-treatment event times against a peers.json entry: points to
    1e-10, SEs to ``se_rel`` relative."""
    assert t.loc["att", "estimate"] == pytest.approx(ref["att"], abs=1e-10)
    assert t.loc["att", "se"] == pytest.approx(ref["att_se"], rel=se_rel)
    post = {e: v for e, v in ref["event"].items() if int(e) >= 0}
    assert len(post) == 4
    for e, v in post.items():
        assert t.loc[f"event:{e}", "estimate"] == pytest.approx(v["estimate"], abs=1e-10)
        assert t.loc[f"event:{e}", "se"] == pytest.approx(v["se"], rel=se_rel)


@pytest.mark.parametrize("leave_out", [False, True])
def test_eq8_tau_tilde_matches_diff_diff_on_unbalanced_cohort_cells(mpdta_frame, leave_out):
    # diff-diff 3.13 ImputationDiD(aux_partition="cohort", leave_one_out=...) on mpdta without
    # 15% of its rows, from peers.json (generator: benchmarks/reference/peer_references.py,
    # imputation_aux_cohort). Units then hold different numbers of rows in a cohort cell, so
    # BJS's eq. 8 tau~ (sum_i a_i b_i / sum_i a_i^2) is not the plain cell mean: the plain
    # mean was off by up to 7e-4 relative here; eq. 8 agrees to 1e-10 relative.
    ref = PEERS["imputation_mpdta_unbalanced_aux_cohort"]["leave_out" if leave_out else "plain"]
    keep = np.random.default_rng(7).uniform(size=len(mpdta_frame)) > 0.15
    panel = Panel.from_frame(
        mpdta_frame[keep], unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat"
    )
    t = _t(imputation.fit(panel, outcome="lemp", aux_partition="cohort", leave_out=leave_out))
    _assert_matches_reference(t, ref, se_rel=1e-10)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_peer_diff_diff_if_installed(mpdta_frame, mpdta) -> None:
    dd = pytest.importorskip("diff_diff")
    frame = mpdta_frame.assign(ft=mpdta_frame["first.treat"])
    ref = dd.ImputationDiD().fit(
        frame,
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treat="ft",
        aggregate="event_study",
    )
    t = _t(imputation.fit(mpdta, outcome="lemp"))
    assert t.loc["att", "estimate"] == pytest.approx(ref.overall_att, abs=1e-10)
    for e, v in ref.event_study_effects.items():
        if e >= 0:
            assert t.loc[f"event:{e}", "estimate"] == pytest.approx(v["effect"], abs=1e-10)
            assert t.loc[f"event:{e}", "se"] == pytest.approx(v["se"], rel=1e-8)


def _toy_frame(seed: int = 2, never: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, years = 50, np.arange(2001, 2010)
    coh = rng.choice([2004, 2006, 2008, 0] if never else [2004, 2006, 2008], size=n)
    rows = [(i, t) for i in range(n) for t in years if rng.uniform() > 0.12]
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


def _brute_force(df: pd.DataFrame, covs: list[str], weights: str | None, cluster: str):
    """Independent implementation with dense dummies (statsmodels), for small panels."""
    d = ((df["g"] > 0) & (df["year"] >= df["g"])).to_numpy()
    units = np.sort(df["id"].unique())
    years = np.sort(df["year"].unique())
    U = (df["id"].to_numpy()[:, None] == units[None, :]).astype(float)
    T = (df["year"].to_numpy()[:, None] == years[None, 1:]).astype(float)
    Z = np.column_stack([U, T, df[covs].to_numpy(float)]) if covs else np.column_stack([U, T])
    y = df["y"].to_numpy()
    w = df[weights].to_numpy() if weights else np.ones(len(df))
    fit0 = sm.WLS(y[~d], Z[~d], weights=w[~d]).fit()
    tau = y[d] - Z[d] @ fit0.params
    ev = (df["year"] - df["g"]).to_numpy()[d]
    coh = df["g"].to_numpy()[d]
    targets = {"att": np.ones(d.sum(), bool)} | {f"event:{e}": ev == e for e in np.unique(ev)}
    out = {}
    Z0w = Z[~d] * w[~d][:, None]
    M = np.linalg.pinv(Z[~d].T @ Z0w)
    for name, m in targets.items():
        w1 = np.where(m, w[d], 0.0)
        w1 /= w1.sum()
        v0 = -Z0w @ (M @ (Z[d].T @ w1))  # implied weights on untreated obs (BJS 4.1)
        cells = list(zip(coh, ev, strict=True))
        e1 = tau - eq8_tilde(w1, tau, cells, df[cluster].to_numpy()[d])
        contrib = np.zeros(len(df))
        contrib[~d] = v0 * fit0.resid
        contrib[d] = w1 * e1
        se = np.sqrt((pd.Series(contrib).groupby(df[cluster].to_numpy()).sum() ** 2).sum())
        out[name] = (float(w1 @ tau), float(se))
    return out


@pytest.mark.parametrize(
    ("covs", "weights", "cluster"),
    [([], None, "id"), (["x"], "w", "id"), (["x"], None, "region")],
)
def test_matches_brute_force(covs, weights, cluster) -> None:
    df = _toy_frame()
    panel = Panel.from_frame(
        df, unit="id", time="year", outcomes=["y"], cohort="g", covariates=["x", "w", "region"]
    )
    res = imputation.fit(
        panel,
        outcome="y",
        covariates=covs or None,
        weights=weights,
        cluster=None if cluster == "id" else cluster,
    )
    ref = _brute_force(df, covs, weights, cluster)
    t = _t(res)
    assert set(ref) == set(t.index)
    for name, (b, se) in ref.items():
        # point estimates: same estimator by two routes (sparse LU vs dense OLS) -> 1e-8
        assert t.loc[name, "estimate"] == pytest.approx(b, abs=1e-8)
        assert t.loc[name, "se"] == pytest.approx(se, rel=1e-7)


def test_pretrend_coefficients_match_ols_on_untreated() -> None:
    df = _toy_frame(4)
    panel = Panel.from_frame(df, unit="id", time="year", outcomes=["y"], cohort="g")
    res = imputation.fit(panel, outcome="y", pretrends=2)
    d = (df["g"] > 0) & (df["year"] >= df["g"])
    u = df[~d].copy()
    k = np.where(u["g"] > 0, u["year"] - u["g"], 0)
    X = np.column_stack(
        [
            (k == -1).astype(float),
            (k == -2).astype(float),
            pd.get_dummies(u["id"].astype(str)).to_numpy(float),
            pd.get_dummies(u["year"].astype(str), drop_first=True).to_numpy(float),
        ]
    )
    params = sm.OLS(u["y"].to_numpy(), X).fit().params
    t = _t(res)
    assert t.loc["event:-1", "estimate"] == pytest.approx(params[0], abs=1e-8)
    assert t.loc["event:-2", "estimate"] == pytest.approx(params[1], abs=1e-8)
    assert 0 <= res.info["pretrend_p"] <= 1
    assert list(res.pretrend["event"]) == [-1, -2]


def test_invariances_and_untouched(mpdta_frame, mpdta) -> None:
    before = mpdta_frame.copy()
    before_panel = mpdta.data.copy()
    base = imputation.fit(mpdta, outcome="lemp")
    pd.testing.assert_frame_equal(mpdta_frame, before)
    pd.testing.assert_frame_equal(mpdta.data, before_panel)
    rng = np.random.default_rng(0)
    ids = mpdta_frame["countyreal"].unique()
    relabel = dict(zip(ids, rng.permutation(len(ids)) + 10_000, strict=True))
    shuffled = mpdta_frame.sample(frac=1.0, random_state=2).assign(
        countyreal=lambda d: d["countyreal"].map(relabel),
        lemp2=lambda d: -2.0 * d["lemp"] + 5.0,
        lemp3=lambda d: d["lemp"] + 50.0,
    )
    p2 = Panel.from_frame(
        shuffled,
        unit="countyreal",
        time="year",
        outcomes=["lemp", "lemp2", "lemp3"],
        cohort="first.treat",
    )
    for col, a in (("lemp", 1.0), ("lemp3", 1.0), ("lemp2", -2.0)):
        r = imputation.fit(p2, outcome=col)
        np.testing.assert_allclose(r.terms["estimate"], a * base.terms["estimate"], atol=1e-9)
        np.testing.assert_allclose(r.terms["se"], abs(a) * base.terms["se"], rtol=1e-7)


def test_not_yet_treated_only_drops_unidentified() -> None:
    # No never-treated unit: treated observations in periods >= the last cohort have no
    # untreated observation to identify the period effect and are dropped (did_imputation
    # autosample).
    df = _toy_frame(6, never=False)
    panel = Panel.from_frame(df, unit="id", time="year", outcomes=["y"], cohort="g")
    res = imputation.fit(panel, outcome="y")
    assert res.info["n_dropped_unidentified"] == int((df["year"] >= 2008).sum())
    assert res.effects["time"].max() == 2007


def test_horizons_and_errors(mpdta) -> None:
    res = imputation.fit(mpdta, outcome="lemp", horizons=[0, 2])
    assert list(res.terms["term"]) == ["att", "event:0", "event:2"]
    assert res.coef("event:2") == pytest.approx(REF_EVENT[2][0], abs=1e-10)
    with pytest.raises(EstimationError, match="horizons"):
        imputation.fit(mpdta, outcome="lemp", horizons=[7])
    with pytest.raises(EstimationError, match="aux_partition"):
        imputation.fit(mpdta, outcome="lemp", aux_partition="unit")
    with pytest.raises(EstimationError, match="Weight column"):
        imputation.fit(mpdta, outcome="lemp", weights="nope")
    toy = _toy_frame().assign(w=lambda d: d["w"] - 1.0)  # some weights now negative
    toy_panel = Panel.from_frame(
        toy, unit="id", time="year", outcomes=["y"], cohort="g", covariates=["w"]
    )
    with pytest.raises(EstimationError, match="positive"):
        imputation.fit(toy_panel, outcome="y", weights="w")
    with pytest.raises(EstimationError, match="pretrends"):
        imputation.fit(mpdta, outcome="lemp", pretrends=-1)
    dropped = imputation.fit(mpdta, outcome="lemp", covariates="lpop")
    assert dropped.info["dropped_covariates"] == "lpop"
    assert dropped.estimate == pytest.approx(REF_ATT[0], abs=1e-10)


def _mc(item: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
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
    res = imputation.fit(sim.panel, outcome="fdi")
    truth = sim.truth.event.query("outcome == 'fdi'").set_index("event_time")["att"]
    es = [0, 1, 2]
    tv = np.array([sim.truth.overall["fdi"], *[truth[e] for e in es]])
    names = ["att", *[f"event:{e}" for e in es]]
    t = res.terms.set_index("term").loc[names]
    ci = res.conf_int().loc[names]
    return {
        "err": t["estimate"].to_numpy() - tv,
        "cover": ((ci["lower"].to_numpy() <= tv) & (tv <= ci["upper"].to_numpy())),
    }


def test_monte_carlo_recovers_effects() -> None:
    from zoneimpact.parallel import replicate

    reps = mc_reps(100, 500)
    out = replicate(_mc, reps, rng=np.random.default_rng(20261123), progress=False)
    err = np.array([o["err"] for o in out])
    cover = np.array([o["cover"] for o in out]).mean(axis=0)
    sd = err.std(axis=0, ddof=1)
    # |bias| < 0.05 SD plus 3 Monte Carlo SEs of the mean error (SD/sqrt(R)).
    assert np.all(np.abs(err.mean(axis=0)) < (0.05 + 3 / np.sqrt(reps)) * sd)
    # Theorem 3 variance is conservative: coverage at or above ~95% (binomial MC SE 2.2
    # points at R = 100).
    assert np.all((cover >= 0.88) & (cover <= 1.0))


def test_leave_out_variance_matches_reference(mpdta) -> None:
    res = imputation.fit(mpdta, outcome="lemp", leave_out=True)
    t = _t(res)
    for name, se in REF_LOO_SE.items():
        assert t.loc[name, "se"] == pytest.approx(se, rel=1e-8)
    assert t.loc["att", "estimate"] == pytest.approx(REF_ATT[0], abs=1e-10)  # unchanged
    assert res.info["leave_out_fallback"] == 0
    # with unit clusters and equal weights, leave-out rescales tau_hat - tau~ by n/(n-1)
    # per cell, so the SE can only grow
    plain = _t(imputation.fit(mpdta, outcome="lemp"))
    assert np.all(t["se"].to_numpy() >= plain["se"].to_numpy())
