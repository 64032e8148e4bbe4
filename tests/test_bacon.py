"""Goodman-Bacon (2021) decomposition: exactness against TWFE OLS, references, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import PEERS

from zoneimpact.errors import EstimationError, ZoneImpactError
from zoneimpact.estimators import bacon, twfe
from zoneimpact.panel import Panel

# diff-diff 3.13.0 BaconDecomposition(weights="exact") on mpdta (lemp): (treated, control,
# estimate, weight). Same closed form (Goodman-Bacon 2021, eq. 10a-10g): tolerance 1e-10.
REF_COMPARISONS = [
    (2004, "never", -0.07974912657473165, 0.0817795656949278),
    (2006, "never", -0.02257004760847714, 0.24533869708478342),
    (2007, "never", -0.04310603280869696, 0.5356561553017772),
    (2004, 2006, -0.045607905211030086, 0.005293175773134488),
    (2006, 2004, 0.05428690020054727, 0.010586351546268975),
    (2004, 2007, -0.0910554016004923, 0.02600272598552317),
    (2007, 2004, -0.0196048059267957, 0.026002725985523174),
    (2006, 2007, 0.018480380807538666, 0.05200545197104632),
    (2007, 2006, 0.010575453874159813, 0.017335150657015443),
]
REF_TWFE = -0.03654893667406721  # diff-diff 3.13.0 twfe_estimate; checked below vs statsmodels


def _twfe_ols(frame: pd.DataFrame, y: str, unit: str, time: str, cohort: str) -> float:
    """TWFE coefficient by brute force: OLS with unit and year dummies (statsmodels)."""
    g = frame[cohort].replace(0, np.inf)
    d = (frame[time] >= g).astype(float).to_numpy()
    X = np.column_stack(
        [
            d,
            pd.get_dummies(frame[unit].astype(str)).to_numpy(float),
            pd.get_dummies(frame[time].astype(str), drop_first=True).to_numpy(float),
        ]
    )
    return float(sm.OLS(frame[y].to_numpy(), X).fit().params[0])


def _twfe_panelols(frame: pd.DataFrame) -> float:
    """TWFE coefficient from linearmodels PanelOLS with unit and year effects (mpdta)."""
    from linearmodels.panel import PanelOLS

    g = frame["first.treat"].replace(0, np.inf)
    data = frame.assign(d=(frame["year"] >= g).astype(float)).set_index(["countyreal", "year"])
    return float(
        PanelOLS(data["lemp"], data[["d"]], entity_effects=True, time_effects=True)
        .fit()
        .params["d"]
    )


def test_mpdta_sum_equals_twfe_ols(mpdta_frame, mpdta) -> None:
    res = bacon.fit(mpdta, outcome="lemp")
    # statsmodels with 500 county dummies is slow on a shared 2-core machine, so mpdta uses
    # linearmodels PanelOLS; the dummy-variable OLS check in statsmodels runs on the smaller
    # random designs below.
    ols = _twfe_panelols(mpdta_frame)
    c = res.comparisons
    # Theorem 1 is an identity: weighted sum = TWFE coefficient to rounding (1e-8).
    assert float(c["weight"] @ c["estimate"]) == pytest.approx(ols, abs=1e-8)
    assert res.estimate == pytest.approx(ols, abs=1e-8)
    assert res.estimate == pytest.approx(REF_TWFE, abs=1e-10)
    assert c["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(res.se)
    assert abs(res.info["decomposition_error"]) < 1e-12
    assert set(res.artifacts()) == {"comparisons"}
    got = c.set_index(["treated_cohort", "control_cohort"])
    for tr, co, est, w in REF_COMPARISONS:
        assert got.loc[(tr, co), "estimate"] == pytest.approx(est, abs=1e-10)
        assert got.loc[(tr, co), "weight"] == pytest.approx(w, abs=1e-10)
    types = got["type"]
    assert types.loc[(2004, "never")] == "treated_vs_never"
    assert types.loc[(2004, 2006)] == "earlier_vs_later"
    assert types.loc[(2006, 2004)] == "later_vs_earlier"
    assert res.info["weight_later_vs_earlier"] == pytest.approx(0.0539242281888076, abs=1e-10)


def test_matches_diff_diff_reference(mpdta) -> None:
    # diff-diff 3.13 BaconDecomposition on mpdta, from peers.json (generator:
    # benchmarks/reference/peer_references.py); same decomposition, so 1e-10
    res = bacon.fit(mpdta, outcome="lemp")
    got = res.comparisons.set_index(["treated_cohort", "control_cohort"])
    ref = PEERS["bacon_mpdta"]["comparisons"]
    assert len(ref) == len(got) == 9
    for c in ref:
        key = (c["treated"], c["control"])
        assert got.loc[key, "weight"] == pytest.approx(c["weight"], abs=1e-10), key
        assert got.loc[key, "estimate"] == pytest.approx(c["estimate"], abs=1e-10), key


def test_peer_diff_diff_if_installed(mpdta_frame, mpdta) -> None:
    dd = pytest.importorskip("diff_diff")
    ref = dd.BaconDecomposition().fit(
        mpdta_frame.assign(ft=mpdta_frame["first.treat"]),
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treat="ft",
    )
    res = bacon.fit(mpdta, outcome="lemp")
    got = res.comparisons.set_index(["treated_cohort", "control_cohort"])
    for comp in ref.comparisons:
        co = "never" if comp.control_group == "never_treated" else int(comp.control_group)
        assert got.loc[(int(comp.treated_group), co), "weight"] == pytest.approx(
            comp.weight, abs=1e-10
        )
        assert got.loc[(int(comp.treated_group), co), "estimate"] == pytest.approx(
            comp.estimate, abs=1e-10
        )


def _staggered(seed: int, never: bool, periods: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 40
    choices = [periods[2], periods[4], periods[5], periods[7]] + ([0] if never else [])
    g = rng.choice(choices, size=n)
    df = pd.DataFrame([(i, t) for i in range(n) for t in periods], columns=["id", "t"])
    df["g"] = g[df["id"]]
    d = (df["g"] > 0) & (df["t"] >= df["g"])
    ev = np.where(d, df["t"] - df["g"], 0)
    df["y"] = (
        rng.normal(size=n)[df["id"]]
        + 0.3 * df["t"]
        + d * (1 + 0.2 * ev) * (1 + df["g"] % 3)
        + rng.normal(size=len(df))
    )
    return df


@pytest.mark.parametrize("never", [True, False])
def test_identity_on_random_designs(never: bool) -> None:
    periods = np.array([1, 2, 3, 5, 6, 8, 9, 10, 12])  # irregular spacing is allowed
    df = _staggered(3 if never else 4, never, periods)
    p = Panel.from_frame(df, unit="id", time="t", outcomes=["y"], cohort="g")
    res = bacon.fit(p, outcome="y")
    c = res.comparisons
    assert float(c["weight"] @ c["estimate"]) == pytest.approx(
        _twfe_ols(df, "y", "id", "t", "g"), abs=1e-8
    )
    assert c["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (c["type"] == "treated_vs_never").any() == never
    assert len(c) == (4 if never else 0) + 4 * 3


def test_single_cohort_with_never_is_the_2x2(mpdta_frame) -> None:
    sub = mpdta_frame[mpdta_frame["first.treat"].isin([0, 2006])]
    p = Panel.from_frame(
        sub, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat"
    )
    res = bacon.fit(p, outcome="lemp")
    assert len(res.comparisons) == 1 and res.comparisons["weight"].iloc[0] == pytest.approx(1.0)
    assert res.estimate == pytest.approx(res.comparisons["estimate"].iloc[0], abs=1e-12)


def test_invariances_and_untouched(mpdta_frame, mpdta) -> None:
    before, before_panel = mpdta_frame.copy(), mpdta.data.copy()
    base = bacon.fit(mpdta, outcome="lemp")
    pd.testing.assert_frame_equal(mpdta_frame, before)
    pd.testing.assert_frame_equal(mpdta.data, before_panel)
    rng = np.random.default_rng(0)
    ids = mpdta_frame["countyreal"].unique()
    relabel = dict(zip(ids, rng.permutation(len(ids)), strict=True))
    shuffled = mpdta_frame.sample(frac=1.0, random_state=3).assign(
        countyreal=lambda d: d["countyreal"].map(relabel),
        lemp2=lambda d: 4.0 * d["lemp"] - 1.0,
    )
    p2 = Panel.from_frame(
        shuffled, unit="countyreal", time="year", outcomes=["lemp", "lemp2"], cohort="first.treat"
    )
    r1, r2 = bacon.fit(p2, outcome="lemp"), bacon.fit(p2, outcome="lemp2")
    pd.testing.assert_frame_equal(r1.comparisons, base.comparisons, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(
        r2.comparisons["estimate"], 4 * base.comparisons["estimate"], atol=1e-10
    )
    np.testing.assert_allclose(r2.comparisons["weight"], base.comparisons["weight"], atol=1e-12)


def test_errors(mpdta_frame, mpdta) -> None:
    unbalanced = Panel.from_frame(
        mpdta_frame.iloc[1:],
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
    )
    with pytest.raises(EstimationError, match="balanced"):
        bacon.fit(unbalanced, outcome="lemp")
    holed = mpdta_frame.assign(lemp=mpdta_frame["lemp"].where(mpdta_frame.index != 7))
    p = Panel.from_frame(
        holed, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat"
    )
    with pytest.raises(EstimationError, match="missing"):
        bacon.fit(p, outcome="lemp")
    with pytest.raises(EstimationError, match="covariates"):
        bacon.fit(mpdta, outcome="lemp", covariates=["lpop"])


# ------------------------------------------------------------------ weights (issue 16, item 8)
# Peers on mpdta with pop = exp(lpop) (constant within county), from
# benchmarks/reference/sa_inference_bacon_weights_reference.py: pyfixest 0.60 weighted
# feols("lemp ~ d | countyreal + year") and diff-diff 3.13 BaconDecomposition with
# SurveyDesign(weights="pop"). Same algebra: rounding differences below 1e-13, tolerance 1e-10.
WEIGHTED_REF = json.loads(
    (
        Path(__file__).parents[1] / "benchmarks" / "reference" / "sa_inference_bacon_weights.json"
    ).read_text()
)


def _weighted_panel(frame: pd.DataFrame, **kw) -> Panel:
    # built from the treatment dummy: Panel refuses a cohort= in the first period (no
    # pre-period), while always-treated units are what the decomposition must handle
    d = ((frame["g"] > 0) & (frame["t"] >= frame["g"])).astype(int)
    return Panel.from_frame(
        frame.assign(d=d), outcomes=["y"], treatment="d", covariates=["w"], **kw
    )


def test_weighted_mpdta_matches_twfe_and_peers(mpdta_frame) -> None:
    frame = mpdta_frame.assign(pop=np.exp(mpdta_frame["lpop"]))
    p = Panel.from_frame(
        frame,
        unit="countyreal",
        time="year",
        outcomes=["lemp"],
        cohort="first.treat",
        covariates=["pop"],
    )
    res = bacon.fit(p, outcome="lemp", weights="pop")
    c = res.comparisons
    weighted_twfe = twfe.fit(p, outcome="lemp", weights="pop").estimate
    # Theorem 1 with weights is an identity: the weighted sum of the 2x2s is the weighted
    # TWFE coefficient to rounding (values ~1e-2, rounding ~1e-16)
    assert float(c["weight"] @ c["estimate"]) == pytest.approx(weighted_twfe, abs=1e-12)
    assert res.estimate == pytest.approx(weighted_twfe, abs=1e-12)
    assert res.estimate == pytest.approx(WEIGHTED_REF["twfe_static"]["pop"], abs=1e-10)
    assert c["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert res.info["weights"] == "pop" and abs(res.info["decomposition_error"]) < 1e-12
    # the weights change the answer (unweighted: -0.0365)
    assert res.estimate == pytest.approx(-0.0098055, abs=1e-7)
    got = c.set_index(["treated_cohort", "control_cohort"])
    ref = WEIGHTED_REF["bacon_weighted"]
    assert res.estimate == pytest.approx(ref["twfe"], abs=1e-10) and len(ref["comparisons"]) == 9
    for comp in ref["comparisons"]:
        key = (
            comp["treated"],
            "never" if comp["control"] == "never_treated" else int(comp["control"]),
        )
        assert got.loc[key, "weight"] == pytest.approx(comp["weight"], abs=1e-10), key
        assert got.loc[key, "estimate"] == pytest.approx(comp["estimate"], abs=1e-10), key


def _wls_twfe(frame: pd.DataFrame) -> float:
    """Weighted TWFE by brute force: WLS with unit and period dummies (statsmodels)."""
    d = ((frame["g"] > 0) & (frame["t"] >= frame["g"])).astype(float).to_numpy()
    X = np.column_stack(
        [
            d,
            pd.get_dummies(frame["id"]).to_numpy(float),
            pd.get_dummies(frame["t"], drop_first=True).to_numpy(float),
        ]
    )
    return float(sm.WLS(frame["y"].to_numpy(), X, weights=frame["w"].to_numpy()).fit().params[0])


@pytest.mark.parametrize(("never", "always"), [(True, False), (False, False), (True, True)])
def test_weighted_identity_on_random_designs(never: bool, always: bool) -> None:
    periods = np.array([1, 2, 3, 5, 6, 8, 9, 10, 12])
    df = _staggered(5 if never else 6, never, periods)
    if always:  # some units treated from the first period: "later vs always treated"
        df.loc[df["id"] % 7 == 0, "g"] = periods[0]
    rng = np.random.default_rng(11)
    df["w"] = rng.uniform(0.2, 5.0, size=df["id"].nunique())[df["id"]]
    res = bacon.fit(_weighted_panel(df, unit="id", time="t"), outcome="y", weights="w")
    c = res.comparisons
    # exact algebra against dummy-variable WLS: 1e-8 covers statsmodels' pinv rounding
    assert float(c["weight"] @ c["estimate"]) == pytest.approx(_wls_twfe(df), abs=1e-8)
    assert c["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (c["type"] == "later_vs_always").any() == always


def test_integer_weights_equal_replicated_units() -> None:
    # weight 3 on a unit = three identical copies of it (the definition of the weighted
    # decomposition); same numbers up to rounding (1e-12)
    periods = np.array([1, 2, 3, 5, 6, 8, 9, 10, 12])
    df = _staggered(7, True, periods)
    df["w"] = np.where(df["id"] % 4 == 0, 3.0, 1.0)
    weighted = bacon.fit(_weighted_panel(df, unit="id", time="t"), outcome="y", weights="w")
    heavy = df[df["id"] % 4 == 0]
    copies = [heavy.assign(id=heavy["id"] + 1000 * k) for k in (1, 2)]
    replicated = pd.concat([df, *copies], ignore_index=True)
    plain = bacon.fit(_weighted_panel(replicated, unit="id", time="t"), outcome="y")
    pd.testing.assert_frame_equal(
        weighted.comparisons, plain.comparisons, check_exact=False, atol=1e-12, rtol=0
    )
    # a constant weight is no weight at all
    const = bacon.fit(
        _weighted_panel(df.assign(w=2.5), unit="id", time="t"), outcome="y", weights="w"
    )
    base = bacon.fit(_weighted_panel(df, unit="id", time="t"), outcome="y")
    pd.testing.assert_frame_equal(
        const.comparisons, base.comparisons, check_exact=False, atol=1e-12, rtol=0
    )


def test_weight_errors() -> None:
    df = _staggered(1, True, np.array([1, 2, 3, 5, 6, 8, 9, 10, 12]))
    df["w"] = 1.0 + 0.1 * df["t"] * (df["id"] == 3)  # unit 3's weight grows over time
    p = _weighted_panel(df, unit="id", time="t")
    with pytest.raises(ZoneImpactError, match=r"'w' varies within unit 3.*constant within unit"):
        bacon.fit(p, outcome="y", weights="w")
    with pytest.raises(ZoneImpactError, match="'population'"):
        bacon.fit(p, outcome="y", weights="population")
    negative = _weighted_panel(df.assign(w=np.where(df["id"] == 2, -1.0, 1.0)), unit="id", time="t")
    with pytest.raises(ZoneImpactError, match=r"'w'.*unit 2, period 1 has -1.0"):
        bacon.fit(negative, outcome="y", weights="w")
