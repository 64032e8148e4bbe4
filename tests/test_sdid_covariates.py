"""Synthetic DiD with time-varying covariates (Arkhangelsky et al. 2021, Section 8)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from conftest import REPO, mc_reps

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import synthetic_did
from zoneimpact.panel import Panel

REF = json.loads((REPO / "benchmarks" / "reference" / "sdid_covariates_diffdiff.json").read_text())


def covariate_panel(
    rng: np.random.Generator, n_controls: int = 24, n_treated: int = 4, T: int = 12
) -> pd.DataFrame:
    """The design of ``benchmarks/reference/sdid_covariates_reference.py``: the covariate
    trends faster in treated units (slopes 1.5-2 against 0-1), so no convex combination
    of controls matches their pre-trend; it drives the outcome with beta = 2; effect 3
    from period 8."""
    N = n_controls + n_treated
    slope = np.concatenate([rng.uniform(0, 1, n_controls), rng.uniform(1.5, 2.0, n_treated)])
    t = np.arange(T)
    x = slope[:, None] * t[None, :] + rng.normal(0, 1, (N, T))
    y = rng.normal(0, 2, N)[:, None] + 0.5 * t[None, :] + 2.0 * x + rng.normal(0, 0.5, (N, T))
    g = np.where(np.arange(N) >= n_controls, 8, 0)
    y = y + 3.0 * ((t[None, :] >= 8) & (g[:, None] > 0))
    return pd.DataFrame(
        {
            "unit": np.repeat([f"u{i:02d}" for i in range(N)], T),
            "time": np.tile(t, N),
            "y": y.ravel(),
            "x": x.ravel(),
            "g": np.repeat(g, T),
        }
    )


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"]
    )


def test_coefficient_and_estimate_match_an_independent_residualisation() -> None:
    df = pd.DataFrame(REF["panel"])
    res = synthetic_did.fit(_panel(df), outcome="y", se_method=None, covariates=["x"])
    # statsmodels OLS with unit and time dummies on the untreated cells (never-treated
    # units, treated units before period 8): the same least-squares problem, so the
    # coefficients agree to rounding (1e-9)
    untreated = df[(df["g"] == 0) | (df["time"] < df["g"])]
    beta = smf.ols("y ~ x + C(unit) + C(time)", data=untreated).fit().params["x"]
    assert res.covariate_coefs["x"] == pytest.approx(beta, rel=1e-9)
    # SDID on y - beta x (statsmodels' beta) is the same estimate (same input to 1e-9)
    plain = synthetic_did.fit(
        Panel.from_frame(
            df.assign(y=df["y"] - beta * df["x"]),
            unit="unit",
            time="time",
            outcomes="y",
            cohort="g",
        ),
        outcome="y",
        se_method=None,
    )
    assert res.estimate == pytest.approx(plain.estimate, rel=1e-8)
    assert res.info["covariates"] == "x" and res.info["covariate_method"] == "projected"
    assert "covariate_coefficients" in res.artifacts()


def test_diff_diff_rule_reproduced_and_differs_by_design() -> None:
    # diff-diff 3.13 residualises on ALL observations (no treatment indicator) and keeps
    # the full TWFE residuals; zoneimpact's SDID on those residuals gives diff-diff's
    # number (same SDID algorithm: R synthdid's Frank-Wolfe; 1e-9)
    df = pd.DataFrame(REF["panel"])
    m = smf.ols("y ~ x + C(unit) + C(time)", data=df).fit()
    dd = synthetic_did.fit(
        Panel.from_frame(
            df.assign(y=m.resid + df["y"].mean()),
            unit="unit",
            time="time",
            outcomes="y",
            cohort="g",
        ),
        outcome="y",
        se_method=None,
    )
    assert dd.estimate == pytest.approx(REF["att"]["covariates"], rel=1e-9)
    none = synthetic_did.fit(_panel(df), outcome="y", se_method=None)
    assert none.estimate == pytest.approx(REF["att"]["no_covariates"], rel=1e-9)
    # the all-observation rule lets the effect leak into beta (2.25 here against the
    # truth 3); the untreated-observation rule does not (3.23; one panel, noise SD ~0.3)
    ours = synthetic_did.fit(_panel(df), outcome="y", se_method=None, covariates="x")
    assert abs(ours.estimate - 3.0) < abs(REF["att"]["covariates"] - 3.0)
    assert abs(ours.estimate - 3.0) < 0.5


def test_covariate_driven_trends_bias_sdid_without_covariates() -> None:
    # known truth 3: without covariates SDID is biased (the treated units' faster
    # covariate trend is outside the controls' convex hull); with them it is unbiased.
    # 25 panels (full: 400 in benchmarks/mc_sdid_covariates.py): bias without covariates
    # +7.2, with +0.01 (Monte Carlo SE 0.05)
    n = mc_reps(25, 400)
    raw, adj = [], []
    for k in range(n):
        p = _panel(covariate_panel(np.random.default_rng(1000 + k)))
        raw.append(synthetic_did.fit(p, outcome="y", se_method=None).estimate)
        adj.append(synthetic_did.fit(p, outcome="y", se_method=None, covariates=["x"]).estimate)
    raw_bias, adj_bias = np.mean(raw) - 3.0, np.mean(adj) - 3.0
    mc_se = np.std(adj, ddof=1) / np.sqrt(n)
    assert raw_bias > 3.0
    assert abs(adj_bias) < 4 * mc_se + 0.05


def test_placebo_se_and_scale_with_covariates() -> None:
    df = covariate_panel(np.random.default_rng(3))
    res = synthetic_did.fit(_panel(df), outcome="y", covariates=["x"], n_reps=20, rng=1)
    assert np.isfinite(res.se) and res.se > 0
    # scaling the outcome by 10 scales the estimate, SE and coefficient by 10 (1e-8)
    big = synthetic_did.fit(
        _panel(df.assign(y=10 * df["y"])), outcome="y", covariates=["x"], n_reps=20, rng=1
    )
    assert big.estimate == pytest.approx(10 * res.estimate, rel=1e-8)
    assert big.se == pytest.approx(10 * res.se, rel=1e-6)
    assert big.covariate_coefs["x"] == pytest.approx(10 * res.covariate_coefs["x"], rel=1e-8)


def test_bad_covariates_are_named_errors() -> None:
    df = covariate_panel(np.random.default_rng(4))
    with pytest.raises(SpecError, match="covariates"):
        synthetic_did.fit(_panel(df), outcome="y", covariates=["nope"])
    gap = df.copy()
    gap.loc[(gap["unit"] == "u03") & (gap["time"] == 5), "x"] = np.nan
    with pytest.raises(EstimationError, match=r"'x' is missing for unit 'u03' in period 5"):
        synthetic_did.fit(_panel(gap), outcome="y", covariates=["x"], se_method=None)
    flat = df.assign(x=df["unit"].str[1:].astype(float))  # constant within units
    with pytest.raises(EstimationError, match="does not vary"):
        synthetic_did.fit(_panel(flat), outcome="y", covariates=["x"], se_method=None)
    before = df.copy()
    synthetic_did.fit(_panel(df), outcome="y", covariates=["x"], se_method=None)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is untouched
