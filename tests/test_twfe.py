"""TWFE static and event study: agree with statsmodels OLS with unit and year dummies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from zoneimpact import Panel
from zoneimpact.errors import SpecError
from zoneimpact.estimators import twfe
from zoneimpact.simulate import simulate


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(42)
    n, years = 30, np.arange(2001, 2009)
    df = pd.DataFrame([(f"c{i:02d}", t) for i in range(n) for t in years], columns=["city", "year"])
    coh = {f"c{i:02d}": (2004 if i < 8 else 2006 if i < 16 else 0) for i in range(n)}
    df["first_zone"] = df["city"].map(coh)
    df["region"] = df["city"].map({f"c{i:02d}": f"r{i % 6}" for i in range(n)})
    df["x"] = rng.normal(size=len(df))
    treated = (df["first_zone"] > 0) & (df["year"] >= df["first_zone"])
    df["y"] = (
        df["city"].str[1:].astype(int) * 0.3
        + (df["year"] - 2000) * 0.5
        + 2.0 * treated
        + 0.4 * df["x"]
        + rng.normal(size=len(df))
    )
    df = df.drop(index=[5, 40, 77]).reset_index(drop=True)  # unbalanced on purpose
    return df


def _panel(df):
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


def test_static_matches_statsmodels_dummies_to_1e8(small):
    df = small.assign(d=((small.first_zone > 0) & (small.year >= small.first_zone)).astype(float))
    ref = smf.ols("y ~ d + x + C(city) + C(year)", df).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.city)[0]}
    )
    res = twfe.fit(_panel(small), outcome="y", covariates=["x"])
    # same estimator and the same CR1 correction G/(G-1)(N-1)/(N-K): agree to rounding
    assert res.estimate == pytest.approx(ref.params["d"], abs=1e-8)
    assert res.se == pytest.approx(ref.bse["d"], abs=1e-8)
    assert res.coef("x") == pytest.approx(ref.params["x"], abs=1e-8)


def test_region_clustering_matches_statsmodels(small):
    df = small.assign(d=((small.first_zone > 0) & (small.year >= small.first_zone)).astype(float))
    ref = smf.ols("y ~ d + C(city) + C(year)", df).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.region)[0]}
    )
    res = twfe.fit(_panel(small), outcome="y", cluster="region")
    assert res.se == pytest.approx(ref.bse["d"], abs=1e-8)
    assert res.info["n_clusters"] == 6


def test_event_study_matches_statsmodels(small):
    df = small.copy()
    ev = np.where(df.first_zone > 0, df.year - df.first_zone, np.nan)
    names = []
    for e in range(-5, 5):
        if e == -1:
            continue
        name = f"e_m{-e}" if e < 0 else f"e_{e}"
        df[name] = (ev == e).astype(float)
        if df[name].sum() > 0:
            names.append((e, name))
    formula = "y ~ " + " + ".join(n for _, n in names) + " + C(city) + C(year)"
    ref = smf.ols(formula, df).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.city)[0]}
    )
    res = twfe.fit_event_study(_panel(small), outcome="y")
    for e, name in names:
        assert res.coef(f"event:{e}") == pytest.approx(ref.params[name], abs=1e-8)
        row = res.tidy().set_index("term").loc[f"event:{e}"]
        assert row["std_error"] == pytest.approx(ref.bse[name], abs=1e-8)
    post = [n for e, n in names if e >= 0]
    w = np.zeros(len(ref.params))
    idx = [list(ref.params.index).index(n) for n in post]
    w[idx] = 1 / len(post)
    assert res.estimate == pytest.approx(w @ ref.params.to_numpy(), abs=1e-8)
    assert res.se == pytest.approx(np.sqrt(w @ ref.cov_params().to_numpy() @ w), abs=1e-8)


def test_binned_endpoints_pool_distant_event_times(small):
    res = twfe.fit_event_study(_panel(small), outcome="y", leads=2, lags=1, bin_endpoints=True)
    assert res.event_times == (-2, 0, 1)
    with pytest.raises(SpecError, match="outside the window"):
        twfe.fit_event_study(_panel(small), outcome="y", leads=2, lags=1, ref_period=-4)


def test_invariances(small):
    base = twfe.fit(_panel(small), outcome="y")
    shuffled = twfe.fit(_panel(small.sample(frac=1, random_state=1)), outcome="y")
    shifted = twfe.fit(_panel(small.assign(y=small.y + 100)), outcome="y")
    scaled = twfe.fit(_panel(small.assign(y=small.y * 3)), outcome="y")
    assert shuffled.estimate == pytest.approx(base.estimate, abs=1e-10)
    assert shifted.estimate == pytest.approx(base.estimate, abs=1e-9)
    assert scaled.estimate == pytest.approx(3 * base.estimate, rel=1e-10)
    assert scaled.se == pytest.approx(3 * base.se, rel=1e-10)


def test_twfe_is_biased_with_growing_heterogeneous_effects():
    # the design issue 3 warns about: TWFE's weights mix cohorts and event times
    sim = simulate(rng=2, displacement_share=0.0)
    res = twfe.fit(sim.panel, outcome="fdi")
    truth = sim.truth.overall["fdi"]
    assert res.estimate < truth - 3 * res.se
