"""Breaker findings on power calibration and displacement, HonestDiD's inversion and
inputs, the pre-trend Wald test's covariance, and exposure sources (fixes of session 21)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.errors import GeographyError, SpecError
from zoneimpact.exposure import exposure_from_region, exposure_from_rings
from zoneimpact.inference.honest import (
    HonestDiDError,
    flci,
    original_ci,
    sensitivity_rm,
    sensitivity_sd,
)
from zoneimpact.inference.pretrends import pretrend_wald
from zoneimpact.parallel import set_progress
from zoneimpact.power import (
    _displacement_sizes,
    _one_rep,
    calibrate_design,
    power_analysis,
)
from zoneimpact.results import terms_frame
from zoneimpact.simulate import simulate

KM = 2 * np.pi * 6371 / 360  # km per degree of latitude


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    set_progress(False)
    yield
    set_progress(True)


# ---------------------------------------------------------------------- power
def _ar1_panel(years: np.ndarray, rho: float = 0.7, sigma: float = 2.0, n: int = 400) -> Panel:
    """Staggered panel with a stationary AR(1) error per *observed period*."""
    rng = np.random.default_rng(0)
    periods = len(years)
    u = np.empty((n, periods))
    u[:, 0] = sigma * rng.standard_normal(n)
    for t in range(1, periods):
        u[:, t] = rho * u[:, t - 1] + sigma * np.sqrt(1 - rho**2) * rng.standard_normal(n)
    cohort = rng.choice([years[5], years[7], 0], size=n, p=[0.3, 0.3, 0.4])
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), periods),
            "year": np.tile(years, n),
            "g": np.repeat(cohort, periods),
        }
    )
    df["y"] = np.repeat(rng.normal(0, 3, n), periods) + u.ravel()
    return Panel.from_frame(df, unit="unit", time="year", cohort="g", outcomes="y")


def test_calibration_invariant_to_period_labels():
    # simulate_outcome's AR(1) steps over positions of panel.periods, so the calibration
    # must pair rows by position: relabelling the periods (biennial, or irregular census
    # years) with the same draws must give the same rho and sigma. The old code lagged by
    # time + 1 and found no pairs at step 2: rho 0.000, sigma 1.603 (vs 0.715 / 2.087).
    base = calibrate_design(_ar1_panel(2001 + np.arange(12)), "y", exposure=False)
    assert base.rho == pytest.approx(0.715, abs=0.01)  # truth 0.7 (Nickell-corrected)
    for years in (
        2001 + 2 * np.arange(12),
        np.array([1990, 1995, 2000, 2001, 2003, 2004, 2008, 2010, 2011, 2015, 2020, 2021]),
    ):
        d = calibrate_design(_ar1_panel(years), "y", exposure=False)
        # same draws, same positions: equal to rounding
        assert d.rho == pytest.approx(base.rho, rel=1e-12)
        assert d.sigma == pytest.approx(base.sigma, rel=1e-12)


def _pre_exposed_design():
    """Rings design where units r0u21-24 and r1u21-24 are exposed since before the first
    period (an old zone, 1990, next to them): the spillover estimator cannot impute them."""
    rng = np.random.default_rng(0)
    rows, geo, zones = [], [], {}
    for r in range(4):
        for i in range(25):
            geo.append({"unit": f"r{r}u{i}", "region": f"R{r}", "lat": r * 2.0, "lon": i * 10 / KM})
        zones[f"r{r}u5"], zones[f"r{r}u15"] = 2004, 2006
    for g in geo:
        a = rng.normal()
        for t in range(2000, 2010):
            rows.append(
                {"unit": g["unit"], "year": t, "g": zones.get(g["unit"], 0), "y": a + rng.normal()}
            )
    src = pd.DataFrame(
        {
            "unit": ["old1", "old2"],
            "cohort": [1990, 1990],
            "lat": [0.0, 2.0],
            "lon": [23 * 10 / KM] * 2,
            "region": ["R0", "R1"],
        }
    )
    p = Panel.from_frame(
        pd.DataFrame(rows),
        unit="unit",
        time="year",
        cohort="g",
        outcomes="y",
        geography=pd.DataFrame(geo),
        sources=src,
    )
    return calibrate_design(p, "y", exposure="rings", exposure_options={"rings_km": [(0, 25)]})


@pytest.mark.filterwarnings("ignore")
def test_displacement_share_injected_equals_grid():
    design = _pre_exposed_design()
    # the estimator's targets: 40 direct, 160 spillover (its pieces table); the 80 rows of
    # the 8 units exposed since 1990 are not among them (the old count was 240)
    assert _displacement_sizes(design, {"n_boot": 0}) == (40.0, 160.0)
    # nearly noiseless outcome: the estimated share is the injected one up to 1e-6 noise;
    # it was d * 160 / 240 (0.333 and 0.667) before
    quiet = replace(design, sigma=1e-6, rho=0.0)
    out = _one_rep(
        0,
        np.random.default_rng(1),
        design=quiet,
        estimator="twfe",
        options={},
        spill_options={"n_boot": 0},
        grids={"displacement": [0.5, 1.0]},
        displacement_direct=2.0,
        displacement_sizes=_displacement_sizes(quiet, {"n_boot": 0}),
    )
    assert [row[3] for row in out] == pytest.approx([0.5, 1.0], abs=1e-4)


@pytest.mark.filterwarnings("ignore")
def test_power_displacement_only_runs():
    # targets=["displacement"] alone used to raise TypeError (empty object-dtype draws)
    p = simulate(rng=0).panel
    r = power_analysis(
        p,
        outcome=p.outcomes[0],
        targets=["displacement"],
        displacement_direct=1.0,
        displacement_grid=[0.0, 1.0],
        n_reps=2,
        rng=0,
        spillover_options={"n_boot": 9},
    )
    assert list(r.curves["target"]) == ["displacement", "displacement"]
    assert list(r.curves["effect"]) == [0.0, 1.0]
    assert r.curves["n_reps"].tolist() == [2, 2]
    assert set(r.mde) == {"displacement"}


# ---------------------------------------------------------------------- HonestDiD
def test_honest_far_estimate_grid_follows_the_estimate():
    # l'beta_post = 3.0 with se 0.1 (30 SEs from zero): R's default grid [-20 sd, 20 sd]
    # about zero holds no accepted theta, and every Mbar read NaN. The set does not depend
    # on the grid: with refined ends, the default must equal an explicit grid [0, 6]
    # covering it, to the bisection tolerance.
    beta = np.array([0.0, 0.01, -0.01, 3.0])
    sig = np.eye(4) * 0.01
    default = sensitivity_rm(beta, sig, 3, 1, [0.0, 0.5, 1.0], refine=True)
    explicit = sensitivity_rm(
        beta, sig, 3, 1, [0.0, 0.5, 1.0], refine=True, grid_lb=0.0, grid_ub=6.0
    )
    assert np.isfinite(default[["lb", "ub"]].to_numpy()).all()
    np.testing.assert_allclose(default[["lb", "ub"]], explicit[["lb", "ub"]], atol=1e-4)
    # Mbar = 0 contains the original CI (2.804, 3.196), as the set under parallel trends
    assert default["lb"].iloc[0] <= 2.81 and default["ub"].iloc[0] >= 3.19
    sd = sensitivity_sd(beta, sig, 3, 1, [0.0], method="C-LF", refine=True)
    sd_explicit = sensitivity_sd(
        beta, sig, 3, 1, [0.0], method="C-LF", refine=True, grid_lb=0.0, grid_ub=6.0
    )
    np.testing.assert_allclose(sd[["lb", "ub"]], sd_explicit[["lb", "ub"]], atol=1e-4)


def test_honest_near_grid_keeps_r_grid():
    # an estimate well inside R's grid keeps R's grid points: bounds are grid points of
    # linspace(-20 sd, 20 sd, 1000) (sd 0.1), as HonestDiD reports
    beta = np.array([0.0, 0.01, -0.01, 0.5])
    out = sensitivity_rm(beta, np.eye(4) * 0.01, 3, 1, [0.0])
    grid = np.linspace(-2.0, 2.0, 1000)
    assert np.min(np.abs(grid - out["lb"].iloc[0])) < 1e-12
    assert np.min(np.abs(grid - out["ub"].iloc[0])) < 1e-12


@pytest.mark.parametrize(
    "sig",
    [
        np.array([[0.01, 0.02, 0.0], [0.02, 0.01, 0.0], [0.0, 0.0, 0.04]]),  # eig -0.01
        np.array([[0.01, 0.0, 0.0], [0.0, 0.01, -0.03], [0.0, -0.03, 0.01]]),  # eig -0.02
    ],
)
def test_honest_refuses_indefinite_sigma(sig):
    # not a covariance: scipy's brentq failed deep inside (ValueError) or the FLCI
    # collapsed to a point
    b = np.array([0.1, 0.05, 0.5])
    for call in (
        lambda: flci(b, sig, 2, 1, 0.1),
        lambda: sensitivity_rm(b, sig, 2, 1, [0, 1]),
        lambda: sensitivity_sd(b, sig, 2, 1, [0, 0.1]),
        lambda: original_ci(b, sig, 2, 1),
    ):
        with pytest.raises(HonestDiDError, match="not positive semi-definite"):
            call()


def test_honest_accepts_rounding_indefinite_sigma():
    # a singular covariance whose smallest eigenvalue is -1e-17 from rounding is accepted
    x = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * 0.01
    x[0, 0] -= 1e-17
    lo, hi = original_ci(np.array([0.1, 0.1, 0.5]), x, 2, 1)
    assert lo == pytest.approx(0.5 - 1.959964 * 0.1, abs=1e-5)


# ---------------------------------------------------------------------- pre-trends
def test_pretrend_wald_uses_leads_vcov():
    terms = terms_frame(
        ["event:-3", "event:-2", "event:0", "att"], [0.02, 0.03, 0.5, 0.5], [0.01, 0.01, 0.1, 0.1]
    )
    v = np.array([[1e-4, 0.9e-4], [0.9e-4, 1e-4]])
    out = pretrend_wald(terms, vcov=v)
    # hand: V = 1e-4 [[1, .9], [.9, 1]], b = (0.02, 0.03), so b' V^-1 b =
    # (4 - 2 * 0.9 * 6 + 9) / (1 - 0.81) = 2.2 / 0.19 = 11.5789; the diagonal SEs (the
    # old fallback) gave 4 + 9 = 13
    assert out["statistic"] == pytest.approx(2.2 / 0.19, rel=1e-9)
    assert out["vcov_source"] == "vcov"
    with pytest.raises(SpecError, match=r"vcov has shape \(3, 3\)"):
        pretrend_wald(terms, vcov=np.eye(3))


# ---------------------------------------------------------------------- exposure
def _small_panel(units, cohort, sources, region=None, lat=None, lon=None) -> Panel:
    rows = [
        {"u": u, "t": t, "g": cohort.get(u, 0), "y": float(k + t - 2000)}
        for k, u in enumerate(units)
        for t in range(2000, 2008)
    ]
    geo = pd.DataFrame({"unit": units})
    if lat is not None:
        geo["lat"], geo["lon"] = lat, lon
    if region is not None:
        geo["region"] = region
    return Panel.from_frame(
        pd.DataFrame(rows),
        unit="u",
        time="t",
        cohort="g",
        outcomes="y",
        geography=geo,
        sources=sources,
    )


def test_source_region_codes_of_another_type_refused():
    units = list("abcd")
    kw = {"region": [2, 1, 1, 2], "lat": [0.0] * 4, "lon": [5.0, 0.0, 0.2, 5.1]}
    src = pd.DataFrame(
        {"unit": ["S"], "cohort": [2004], "region": ["1"], "lat": [0.0], "lon": [0.1]}
    )
    p = _small_panel(units, {"a": 2003}, src, **kw)
    # "1" never equals 1: the source exposed nobody (b and c stayed clean), silently
    with pytest.raises(GeographyError, match=r"\['number'\] codes in the geography but \['str'\]"):
        exposure_from_region(p)
    with pytest.raises(GeographyError, match="'S'"):
        exposure_from_rings(p, [(0, 50)], within_region=True)
    # same type: b and c (region 1) exposed from the source's 2004
    src["region"] = [1]
    m = exposure_from_region(_small_panel(units, {"a": 2003}, src, **kw))
    assert m.table.loc[["b", "c"], "exposure_onset"].tolist() == [2004.0, 2004.0]


def test_source_after_data_end_ignored_with_warning():
    units = ["A", "B", "C", "D"]
    src = pd.DataFrame({"unit": ["Z"], "cohort": [2030], "lat": [0.0], "lon": [0.0]})
    p = _small_panel(units, {"D": 2003}, src, lat=[0.0] * 4, lon=[20 / KM, 2.0, 3.0, 4.0])
    with pytest.warns(UserWarning, match=r"last period 2007 \(first: 'Z', cohort 2030\)") as rec:
        m = exposure_from_rings(p, rings_km=[(0, 50)])
    assert rec[0].filename == __file__
    # A, 20 km from Z, was 'exposed' from 2030 (a period the data never reach) and left
    # the never-exposed controls; within the data nobody is exposed
    assert m.table.loc["A", "role"] == "clean"
    assert np.isinf(m.table.loc["A", "exposure_onset"])
