"""Goodman-Bacon (2021) decomposition: exactness against TWFE OLS, references, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import PEERS

from zoneimpact.errors import EstimationError
from zoneimpact.estimators import bacon
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
