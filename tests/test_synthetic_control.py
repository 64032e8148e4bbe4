"""ADH (2010) synthetic control on Prop 99 with covariates, and placebo inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, PanelError
from zoneimpact.estimators import synthetic_control as sc
from zoneimpact.inference import placebo as plc
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)

# ADH (2010) Table 1 predictors.
ADH_PREDICTORS = [
    {"variable": "lnincome", "window": [1980, 1988]},
    {"variable": "retprice", "window": [1980, 1988]},
    {"variable": "age15to24", "window": [1980, 1988]},
    {"variable": "beer", "window": [1984, 1988]},
    {"variable": "cigsale", "years": [1975]},
    {"variable": "cigsale", "years": [1980]},
    {"variable": "cigsale", "years": [1988]},
]
# ADH (2010) Table 2 / R Synth: synthetic California.
ADH_WEIGHTS = {
    "Utah": 0.334,
    "Nevada": 0.234,
    "Montana": 0.199,
    "Colorado": 0.164,
    "Connecticut": 0.069,
}


def adh_panel(canonical) -> Panel:
    df = pd.read_csv(canonical / "smoking_adh_covariates.csv")
    df["first"] = np.where(df["state"] == "California", 1989, 0)
    return Panel.from_frame(
        df,
        unit="state",
        time="year",
        outcomes="cigsale",
        cohort="first",
        covariates=["lnincome", "beer", "age15to24", "retprice"],
    )


@pytest.fixture(scope="module")
def adh_result(canonical):
    return sc.fit(
        adh_panel(canonical),
        outcome="cigsale",
        predictors=ADH_PREDICTORS,
        fit_window=[1970, 1988],
        rng=np.random.default_rng(20261122),
        placebos=True,
    )


def test_adh_weights(adh_result):
    w = adh_result.donor_weights
    assert len(w) == 38
    for state, ref in ADH_WEIGHTS.items():
        # 0.03: the brief's tolerance; we land within 0.004 of R Synth.
        assert w[state] == pytest.approx(ref, abs=0.03), state
    others = w.drop(list(ADH_WEIGHTS))
    assert others.max() < 0.01
    # ADH (2010): pre-period RMSPE of synthetic California about 1.76 packs.
    assert adh_result.info["pre_rmspe"] == pytest.approx(1.76, abs=0.05)
    assert adh_result.coef("weight:Utah") == pytest.approx(w["Utah"])
    bal = adh_result.balance
    assert list(bal.columns) == ["treated", "synthetic", "donor_mean"]
    assert bal.loc["cigsale[1975]", "synthetic"] == pytest.approx(127.1, abs=1.0)


def test_adh_placebo_p_value(adh_result):
    # ADH (2010) Figure 8: California's post/pre RMSPE ratio is the largest of 39.
    r = adh_result.rmspe
    assert len(r) == 39
    assert r.loc["California", "rank"] == 1
    assert adh_result.p_value == pytest.approx(1 / 39)
    assert adh_result.placebo_gaps.shape == (31, 39)
    assert adh_result.estimate < -15  # ATT: mean 1989-2000 gap (about -19 packs)
    arts = adh_result.artifacts()
    assert {"donor_weights", "gaps", "balance", "placebo_gaps", "rmspe"} <= set(arts)


def test_permutation_p_drop_ratio():
    gaps = pd.DataFrame(
        {"T": [1, 1, 25, 25], "a": [0.1, 0.1, 3, 3], "b": [5, 5, 100, 100]},
        index=[1, 2, 3, 4],
        dtype=float,
    )
    pre = np.array([True, True, False, False])
    tab = plc.rmspe_table(gaps, pre, ~pre)
    p, _ = plc.permutation_p(tab, "T")
    assert p == pytest.approx(2 / 3)  # ratios: a 30 > T 25 > b 20
    p2, t2 = plc.permutation_p(tab, "T", drop_ratio=2)
    assert not t2.loc["b", "kept"] and t2.loc["a", "kept"]
    assert p2 == pytest.approx(2 / 2)


def test_outcome_based_sc_invariant_to_donor_order(canonical):
    df = pd.read_csv(canonical / "california_prop99.csv", sep=";")
    p1 = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    p2 = Panel.from_frame(
        df.iloc[::-1], unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    r1 = sc.fit(p1, outcome="PacksPerCapita", placebos=False)
    r2 = sc.fit(p2, outcome="PacksPerCapita", placebos=False, in_time=1980, leave_one_out=True)
    # Exact QP solution: same weights whatever the order (1e-8: linear-algebra rounding).
    assert r1.estimate == pytest.approx(r2.estimate, abs=1e-8)
    assert r2.in_time_gaps is not None and r2.loo_paths.shape[1] == int(
        (r2.donor_weights > 1e-6).sum()
    )


def test_errors(canonical):
    p = adh_panel(canonical)
    with pytest.raises(PanelError, match="Texas-Mexico"):
        sc.fit(p, outcome="cigsale", treated_unit="Texas-Mexico", placebos=False)
    df = pd.read_csv(canonical / "smoking_adh_covariates.csv")
    df["first"] = np.where(df["state"] == "California", 1989, 0)
    df = df.drop(df[(df.state == "Nevada") & (df.year == 1975)].index)
    q = Panel.from_frame(df, unit="state", time="year", outcomes="cigsale", cohort="first")
    with pytest.raises(PanelError, match=r"Nevada.*1975"):
        sc.fit(q, outcome="cigsale", placebos=False)
    only = df[df.state.isin(["California"])]
    only = pd.concat([only, df[df.state == "Utah"].assign(first=1995)])
    with pytest.raises(EstimationError, match="No donor"):
        sc.fit(
            Panel.from_frame(only, unit="state", time="year", outcomes="cigsale", cohort="first"),
            outcome="cigsale",
            treated_unit="California",
            placebos=False,
        )


def test_outcome_predictors_give_the_exact_nested_optimum(canonical):
    # With the pre-period outcomes as predictors (the default), the nested V problem is
    # solved in closed form: W is the simplex least-squares fit of the raw pre-period
    # outcomes, the smallest pre-period MSPE any V can give. Same QP solver: 1e-8.
    from zoneimpact.estimators._simplex import simplex_qp

    df = pd.read_csv(canonical / "california_prop99.csv", sep=";")
    p = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    r = sc.fit(p, outcome="PacksPerCapita", placebos=False)
    Y = p.wide("PacksPerCapita")
    pre = Y.columns < 1989
    donors = Y.drop("California")
    w, _ = simplex_qp(donors.loc[:, pre].to_numpy().T, Y.loc["California", pre].to_numpy())
    assert r.donor_weights.reindex(donors.index).to_numpy() == pytest.approx(w, abs=1e-8)


def test_optimistic_v_fits_at_least_as_well_as_nested(canonical):
    # v="optimistic" adds the boundary of the V simplex, where W(V) is not unique and the
    # best-fitting tied W is taken (Malo et al. 2024): on Prop 99 it puts V on one
    # predictor and reaches a pre-period RMSPE of 1.657 (our computation; ADH's nested
    # solution is 1.76), so it can only improve on the nested fit.
    p = adh_panel(canonical)
    kw = dict(
        outcome="cigsale",
        predictors=ADH_PREDICTORS,
        fit_window=[1970, 1988],
        rng=np.random.default_rng(20261122),
        placebos=False,
    )
    nested = sc.fit(p, **kw)
    opt = sc.fit(p, v="optimistic", **kw)
    assert opt.info["pre_rmspe"] <= nested.info["pre_rmspe"] + 1e-9
    assert opt.info["pre_rmspe"] == pytest.approx(1.657, abs=0.01)
    assert (opt.predictor_weights > 0).sum() == 1  # all of V on the matched predictor
    # why it is not the default: it moves ADH's weights out of issue 4's tolerance and,
    # with every placebo fitted the same way, California's RMSPE ratio from first to third
    # of 39 (our computation; the nested default gives ADH's 1/39, test_adh_placebo_p_value)
    assert opt.donor_weights["Utah"] == pytest.approx(0.398, abs=0.005)
    with_placebos = sc.fit(p, v="optimistic", **{**kw, "placebos": True})
    assert with_placebos.p_value == pytest.approx(3 / 39)
