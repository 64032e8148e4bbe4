"""Fast TWFE path: a third fixed effect, fixest's small-sample factor, exact absorption."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import PEERS

from zoneimpact import Panel
from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import twfe
from zoneimpact.estimators._fe import absorb, demean, drop_nested, fe_dof


def make_frame() -> pd.DataFrame:
    """60 cities x 10 years, unbalanced, with region-by-year shocks (also read by
    benchmarks/reference/peer_references.py, which runs pyfixest on it)."""
    rng = np.random.default_rng(3)
    n, years = 60, np.arange(2001, 2011)
    df = pd.DataFrame([(f"c{i:02d}", t) for i in range(n) for t in years], columns=["city", "year"])
    coh = {f"c{i:02d}": (2004 if i < 15 else 2007 if i < 30 else 0) for i in range(n)}
    df["first_zone"] = df["city"].map(coh)
    df["region"] = df["city"].map({f"c{i:02d}": f"r{i % 5}" for i in range(n)})
    df["d"] = ((df.first_zone > 0) & (df.year >= df.first_zone)).astype(float)
    shock = df.groupby(["region", "year"]).ngroup().to_numpy()
    df["x"] = rng.normal(size=len(df))
    df["y"] = (
        rng.normal(size=len(df))
        + 1.0 * df.d
        + 0.1 * df.year
        + 0.3 * df.x
        + 0.05 * (shock % 7)  # region-by-year shocks the third fixed effect absorbs
    )
    df = df.drop(index=[3, 50, 200, 333]).reset_index(drop=True)  # unbalanced on purpose
    df["ry"] = df.region + df.year.astype(str)
    return df


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


def _panel(df: pd.DataFrame) -> Panel:
    geo = df.groupby("city", as_index=False)["region"].first().rename(columns={"city": "unit"})
    return Panel.from_frame(
        df,
        unit="city",
        time="year",
        cohort="first_zone",
        outcomes=["y"],
        covariates=["x"],
        geography=geo,
    )


def _full_rank_dummies(df: pd.DataFrame) -> np.ndarray:
    """City dummies and region-year dummies less each region's first year: a full-rank
    basis of the city + year + region:year dummy space (year is nested in region:year).
    statsmodels' formula would keep redundant columns, and its CR1 factor counts columns,
    not the rank, so the reference is built on a full-rank design as Stata/fixest do.
    """
    city = pd.get_dummies(df.city).to_numpy(float)
    first = df.year == df.year.min()
    ry = pd.get_dummies(df.ry).to_numpy(float)
    drop = np.unique(df.ry[first])
    keep = ~pd.get_dummies(df.ry).columns.isin(drop)
    return np.column_stack([city, ry[:, keep]])


@pytest.mark.parametrize("cluster", ["unit", "region"])
def test_three_fixed_effects_match_statsmodels_dummies(frame, cluster):
    groups = pd.factorize(frame.city if cluster == "unit" else frame.region)[0]
    design = np.column_stack([frame[["d", "x"]].to_numpy(), _full_rank_dummies(frame)])
    assert np.linalg.matrix_rank(design) == design.shape[1]
    ref = sm.OLS(frame.y.to_numpy(), design).fit(cov_type="cluster", cov_kwds={"groups": groups})
    ref_params, ref_bse = ref.params[:2], ref.bse[:2]
    res = twfe.fit(
        _panel(frame),
        outcome="y",
        covariates=["x"],
        cluster=cluster,
        fixed_effects=("unit", "time", "region:time"),
    )
    # same estimator, same CR1 factor with K = rank of the dummy design: rounding only
    assert res.estimate == pytest.approx(ref_params[0], abs=1e-8)
    assert res.se == pytest.approx(ref_bse[0], abs=1e-8)
    assert res.coef("x") == pytest.approx(ref_params[1], abs=1e-8)
    assert res.info["fixed_effects"] == "unit + time + region:time"


def test_event_study_with_region_year_effects_matches_statsmodels(frame):
    df = frame.copy()
    ev = np.where(df.first_zone > 0, df.year - df.first_zone, np.nan)
    names = []
    for e in range(-6, 7):
        name = f"e_m{-e}" if e < 0 else f"e_{e}"
        if e != -1 and (ev == e).any():
            df[name] = (ev == e).astype(float)
            names.append((e, name))
    cols = [n for _, n in names]
    design = np.column_stack([df[cols].to_numpy(), _full_rank_dummies(df)])
    ref = sm.OLS(df.y.to_numpy(), design).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.city)[0]}
    )
    res = twfe.fit_event_study(
        _panel(frame), outcome="y", fixed_effects=("unit", "time", "region:time")
    )
    for j, (e, _) in enumerate(names):
        row = res.tidy().set_index("term").loc[f"event:{e}"]
        assert row["estimate"] == pytest.approx(ref.params[j], abs=1e-8)
        assert row["std_error"] == pytest.approx(ref.bse[j], abs=1e-8)


@pytest.mark.parametrize(
    ("fes", "formula"),
    [
        (("unit", "time"), "y ~ d | city + year"),
        (("unit", "time", "region:time"), "y ~ d | city + year + ry"),
    ],
)
@pytest.mark.parametrize("cluster", ["unit", "region"])
def test_fixest_ssc_matches_pyfixest(frame, fes, formula, cluster):
    pf = pytest.importorskip("pyfixest")
    fit = pf.feols(formula, frame, vcov={"CRV1": "city" if cluster == "unit" else "region"})
    res = twfe.fit(_panel(frame), outcome="y", fixed_effects=fes, cluster=cluster, ssc="fixest")
    # same formula (fixest's K leaves out the FE nested in the clusters): rounding only
    assert res.estimate == pytest.approx(fit.coef()["d"], abs=1e-8)
    assert res.se == pytest.approx(fit.se()["d"], abs=1e-8)


@pytest.mark.parametrize("fes", [("unit", "time"), ("unit", "time", "region:time")])
@pytest.mark.parametrize("cluster", ["unit", "region"])
def test_fixest_ssc_matches_pyfixest_reference(frame, fes, cluster):
    # pyfixest 0.60 feols CRV1 on make_frame(), from peers.json (generator:
    # benchmarks/reference/peer_references.py); the same formula, rounding only
    ref = PEERS["fixest_ssc"]["+".join(fes) + "|" + cluster]
    res = twfe.fit(_panel(frame), outcome="y", fixed_effects=fes, cluster=cluster, ssc="fixest")
    assert res.estimate == pytest.approx(ref["estimate"], abs=1e-8)
    assert res.se == pytest.approx(ref["se"], abs=1e-8)


def test_fixest_ssc_is_smaller_when_unit_fe_nested_in_clusters(frame):
    sm = twfe.fit(_panel(frame), outcome="y", ssc="statsmodels")
    fx = twfe.fit(_panel(frame), outcome="y", ssc="fixest")
    n, g, t = len(frame), 60, 10
    # statsmodels K = 1 + 60 + 10 - 1 = 70, fixest K = 1 + 10 (unit FE nested in units)
    ratio = np.sqrt((n - 1 - 10) / (n - 1 - (g + t - 1)) * 1.0)
    assert sm.estimate == fx.estimate
    assert sm.se / fx.se == pytest.approx(ratio, rel=1e-12)


def test_absorb_equals_alternating_projections_and_counts_rank():
    rng = np.random.default_rng(0)
    n = 4000
    u, t = rng.integers(0, 300, n), rng.integers(0, 12, n)
    r = u % 7
    X = rng.normal(size=(n, 3))
    w = rng.uniform(0.5, 2.0, n)
    for fe in ([u, t], [u, t, r * 12 + t], [u, r]):
        for weights in (None, w):
            z, rank = absorb(X, fe, weights=weights)
            # two routes to the same projection; MAP stops at 1e-12 relative
            np.testing.assert_allclose(z, demean(X, fe, weights=weights), atol=1e-9)
    # two effects: the rank is levels minus connected components (fe_dof)
    assert absorb(X, [u, t])[1] == fe_dof([u, t])
    # time is nested in region x time, region in unit: both add nothing
    assert drop_nested([u, t, r * 12 + t]) == [0, 2]
    assert drop_nested([u, r]) == [0]
    # unit + region x time: 300 + 84 - 7 (one redundancy per region's block)
    assert absorb(X, [u, t, r * 12 + t])[1] == 300 + 84 - 7


def test_large_secondary_effect_falls_back_to_iterations():
    rng = np.random.default_rng(1)
    n = 3000
    a, b = rng.integers(0, 400, n), rng.integers(0, 300, n)
    X = rng.normal(size=(n, 2))
    exact, exact_rank = absorb(X, [a, b])
    assert exact_rank == fe_dof([a, b])
    for kw in ({"max_dense": 100}, {"max_block": 10}):
        z, rank = absorb(X, [a, b], **kw)
        # iterative and direct routes: MAP stops at 1e-12 relative
        np.testing.assert_allclose(z, exact, atol=1e-9)
        assert rank == exact_rank


def test_bad_options(frame):
    p = _panel(frame)
    with pytest.raises(SpecError, match="'province'"):
        twfe.fit(p, outcome="y", fixed_effects=("unit", "province:time"))
    with pytest.raises(SpecError, match="ssc"):
        twfe.fit(p, outcome="y", ssc="stata")
    with pytest.raises(EstimationError, match="absorbed"):
        twfe.fit(p, outcome="y", covariates=["x"], fixed_effects=("unit", "time", "city:time"))


def test_caller_frame_untouched_and_string_fe(frame):
    before = frame.copy()
    res = twfe.fit(_panel(frame), outcome="y", fixed_effects=["unit", "time"])
    pd.testing.assert_frame_equal(frame, before)
    assert res.info["fixed_effects"] == "unit + time"
