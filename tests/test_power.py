"""Power analysis: calibration, size at zero effect, rising power, MDE, CLI."""

from __future__ import annotations

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import mc_reps

from zoneimpact import Panel
from zoneimpact.cli import main as cli_main
from zoneimpact.estimators import spillover as spill
from zoneimpact.parallel import set_progress
from zoneimpact.power import calibrate_design, power_analysis, simulate_outcome
from zoneimpact.simulate import simulate

matplotlib.use("Agg")


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    set_progress(False)
    yield
    set_progress(True)


def _ar1_panel(n: int, periods: int, rho: float, sigma: float, seed: int) -> Panel:
    """Staggered panel whose untreated outcome has a known stationary AR(1) error."""
    rng = np.random.default_rng(seed)
    u = np.empty((n, periods))
    u[:, 0] = sigma * rng.standard_normal(n)
    for t in range(1, periods):
        u[:, t] = rho * u[:, t - 1] + sigma * np.sqrt(1 - rho**2) * rng.standard_normal(n)
    cohort = rng.choice([2006, 2008, 0], size=n, p=[0.3, 0.3, 0.4])
    years = np.arange(2001, 2001 + periods)
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), periods),
            "year": np.tile(years, n),
            "g": np.repeat(cohort, periods),
        }
    )
    df["y"] = np.repeat(rng.normal(0, 3, n), periods) + 0.3 * (df.year - 2000) + u.ravel()
    return Panel.from_frame(df, unit="unit", time="year", cohort="g", outcomes="y")


def test_calibration_recovers_known_noise():
    panel = _ar1_panel(400, 12, rho=0.5, sigma=2.0, seed=0)
    design = calibrate_design(panel, "y", exposure=False)
    # ~3,900 clean observations: the SE of the lag-1 autocorrelation is ~0.015 and the
    # first-order Nickell correction leaves an O(1/T^2) ~ 0.01 bias -> 0.06 is ~3 SE + bias;
    # sigma's relative SE is ~1.5% -> 6%
    assert design.rho == pytest.approx(0.5, abs=0.06)
    assert design.sigma == pytest.approx(2.0, rel=0.06)
    # the raw (uncorrected) autocorrelation is biased down, as Nickell (1981) says
    assert design.info["raw_autocorrelation"] < design.rho - 0.1
    assert design.exposure is None


def test_simulated_outcome_injects_exact_effects():
    sim = simulate(
        rng=3,
        n_units=80,
        n_regions=8,
        first_year=2004,
        last_year=2011,
        waves={2007: 0.5, 2009: 0.5},
    )
    design = replace(calibrate_design(sim.panel, "fdi"), sigma=0.0)  # noise-free
    rng = np.random.default_rng(0)
    base = simulate_outcome(design, rng)
    y = simulate_outcome(design, np.random.default_rng(0), direct=5.0, spillover=-2.0)
    diff = y - base
    d, s = design.direct_rows(), design.exposed_rows()
    assert np.allclose(diff[d], 5.0) and np.allclose(diff[s & ~d], -2.0)
    assert np.allclose(diff[~d & ~s], 0.0)
    assert d.any() and s.any()
    # missing outcomes of the data stay missing
    assert np.array_equal(np.isnan(y), sim.panel.data["fdi"].isna().to_numpy())


def test_size_near_alpha_and_power_rises_with_effect():
    panel = _ar1_panel(100, 10, rho=0.4, sigma=1.0, seed=1)
    reps = mc_reps(120, 1000)
    res = power_analysis(
        panel,
        outcome="y",
        estimator="twfe",
        effect_grid=[0.0, 0.25, 0.6],
        n_reps=reps,
        rng=7,
        alpha=0.05,
        exposure=False,
    )
    cur = res.curves.set_index("effect")["power"]
    # size: TWFE with CR1 and t(G-1) on 100 clusters is close to exact; the Monte Carlo SD
    # of a rejection rate is sqrt(.05 * .95 / R) (0.02 at R = 120): allow 3 SD
    band = 3 * np.sqrt(0.05 * 0.95 / reps)
    assert abs(cur.loc[0.0] - 0.05) <= band
    assert cur.loc[0.0] < cur.loc[0.25] < cur.loc[0.6]
    assert cur.loc[0.6] > 0.9
    # the simulated MDE agrees with Bloom's analytic (z_.975 + z_.8) x SE within the
    # interpolation error of a 3-point grid
    assert res.mde["direct"] == pytest.approx(res.analytic_mde["direct"], rel=0.3)
    assert res.info["notes"].startswith("spillover and displacement not analysed")
    assert set(res.curves["target"]) == {"direct"}
    fig = res.figure()
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 1


def test_reproducible_for_any_number_of_workers():
    panel = _ar1_panel(60, 8, rho=0.3, sigma=1.0, seed=2)
    kw = dict(outcome="y", estimator="twfe", effect_grid=[0.0, 0.5], n_reps=6, exposure=False)
    one = power_analysis(panel, rng=11, n_jobs=1, **kw)
    two = power_analysis(panel, rng=11, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.draws, two.draws, check_exact=True)
    other = power_analysis(panel, rng=12, n_jobs=1, **kw)
    assert not np.allclose(one.draws["estimate"], other.draws["estimate"])


@pytest.fixture(scope="module")
def zone_sim():
    return simulate(
        rng=3,
        n_units=120,
        n_regions=12,
        first_year=2003,
        last_year=2012,
        waves={2007: 0.5, 2009: 0.5},
    )


def test_spillover_and_displacement_targets(zone_sim):
    res = power_analysis(
        zone_sim.panel,
        outcome="fdi",
        estimator="callaway_santanna",
        effect_grid=[0.0, 40.0],
        spillover_grid=[0.0, 60.0],
        displacement_grid=[0.0, 1.0],
        displacement_direct=80.0,
        n_reps=4,
        rng=5,
        spillover_options={"n_boot": 19},
    )
    assert list(dict.fromkeys(res.curves["target"])) == ["direct", "spillover", "displacement"]
    mean = res.curves.set_index(["target", "effect"])["mean_estimate"]
    # common random numbers and linear estimators: a constant injected effect moves the
    # estimate by exactly that much
    assert mean.loc[("direct", 40.0)] - mean.loc[("direct", 0.0)] == pytest.approx(40.0, abs=1e-6)
    assert mean.loc[("spillover", 60.0)] - mean.loc[("spillover", 0.0)] == pytest.approx(
        60.0, abs=1e-6
    )
    assert res.info["displacement_direct"] == 80.0
    assert set(res.mde) == {"direct", "spillover", "displacement"}
    import matplotlib.pyplot as plt

    assert len(res.figure().axes) == 3
    assert plt.get_fignums() == []  # made without pyplot: nothing leaks into later tests


def test_noise_free_displacement_share_is_recovered(zone_sim):
    design = replace(calibrate_design(zone_sim.panel, "fdi"), sigma=0.0)
    base = simulate_outcome(design, np.random.default_rng(0))
    d, s = design.direct_rows(), design.exposed_rows()
    share, direct = 0.6, 50.0
    y = base + direct * d - share * direct * d.sum() / s.sum() * s
    res = spill.fit(
        zone_sim.panel.with_outcome("fdi", y),
        outcome="fdi",
        rng=0,
        exposure=design.exposure,
        n_boot=9,
    )
    # without noise the imputation estimator is exact: the injected share comes back
    assert res.coef("displacement_share") == pytest.approx(share, abs=1e-8)
    assert res.coef("direct") == pytest.approx(direct, abs=1e-8)


def test_cli_power(tmp_path, capsys):
    spec = tmp_path / "power.toml"
    spec.write_text(
        """
title = "power test"
seed = 3
[data]
source = "simulate"
outcomes = ["fdi"]
[data.simulate]
n_units = 80
n_regions = 8
first_year = 2004
last_year = 2011
waves = {2007 = 0.5, 2009 = 0.5}
[[estimate]]
name = "twfe"
estimator = "twfe"
outcome = "fdi"
[power]
estimator = "twfe"
targets = ["direct"]
effect_grid = [0.0, 30.0, 60.0]
n_reps = 3
""",
        encoding="utf-8",
    )
    out = tmp_path / "pw"
    assert cli_main(["power", "--spec", str(spec), "--out", str(out), "--quiet"]) == 0
    for name in ("power_curves.csv", "power_summary.csv", "power.json", "power_curve.png"):
        assert (out / name).exists()
    curves = pd.read_csv(out / "power_curves.csv")
    assert curves["effect"].tolist() == [0.0, 30.0, 60.0]
    assert "direct" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace("n_reps = 3", "n_rep = 3"), encoding="utf-8")
    assert cli_main(["power", "--spec", str(bad), "--quiet"]) == 2
