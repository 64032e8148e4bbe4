"""The simulator's truth: no response without effects, conservation under pure displacement."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from zoneimpact.errors import ZoneImpactError
from zoneimpact.simulate import design_dict, design_from_dict, simulate

SMALL = dict(
    n_units=120, n_regions=12, first_year=2000, last_year=2015, waves={2004: 0.5, 2009: 0.5}
)


def test_zero_effects_mean_no_treatment_response():
    sim = simulate(rng=3, effect_size=0.0, **SMALL)
    f = sim.frame
    assert np.array_equal(f["fdi"], f["fdi_y0"])
    assert np.array_equal(f["patents"], f["patents_y0"])
    assert sim.truth.overall == {"fdi": 0.0, "patents": 0.0}
    assert (sim.truth.totals["net_total"] == 0).all()


def test_pure_displacement_leaves_every_region_total_unchanged():
    sim = simulate(
        rng=4,
        displacement_share=1.0,
        agglomeration=0.0,
        zero_share=0.0,
        noise_sd=1.0,
        effect_size=15.0,
        **SMALL,
    )
    f = sim.frame
    # observed outcome, not only the latent one: with no zero-reporting and small noise the
    # clip at zero never binds, so conservation is exact up to floating-point summation
    assert (f["fdi_latent"] >= 0).all()
    diff = (f["fdi"] - f["fdi_y0"]).groupby([f["region"], f["year"]]).sum()
    assert np.abs(diff).max() < 1e-9
    zone_gain = (f["fdi"] - f["fdi_y0"])[f["cohort"] > 0].sum()
    assert zone_gain > 1000  # the zones did gain: the activity was moved, not absent
    assert sim.truth.displacement_share["fdi"] == pytest.approx(1.0, abs=1e-9)


def test_pure_creation_has_no_spillover_and_net_equals_direct():
    sim = simulate(rng=5, displacement_share=0.0, **SMALL)
    assert sim.truth.spillover["fdi"] == 0.0
    t = sim.truth.totals.query("outcome == 'fdi'")
    np.testing.assert_allclose(t["net_total"], t["direct_total"])


def test_latent_conservation_with_default_design():
    sim = simulate(rng=6, displacement_share=1.0)
    f = sim.frame
    diff = (f["fdi_latent"] - f["fdi_latent_y0"]).groupby([f["region"], f["year"]]).sum()
    assert np.abs(diff).max() < 1e-8


def test_effects_grow_with_event_time_and_differ_by_cohort():
    sim = simulate(rng=7, displacement_share=0.0, zero_share=0.0, noise_sd=1.0, **SMALL)
    gt = sim.truth.att_gt.query("outcome == 'fdi'")
    first = gt[gt.cohort == 2004].set_index("time")["att"]
    assert first.loc[2010] > first.loc[2005] > first.loc[2004] > 0
    # cohort heterogeneity: the early cohort gains more at the same event time
    late = gt[gt.cohort == 2009].set_index("time")["att"]
    assert first.loc[2004] > late.loc[2009]


def test_timing_depends_on_covariate():
    sim = simulate(rng=8)
    u = sim.frame.groupby("unit")[["cohort", "x"]].first()
    early = u[u.cohort == 2000]["x"].mean()
    never = u[u.cohort == 0]["x"].mean()
    assert early - never > 0.5


def test_same_seed_same_panel_and_fdi_looks_like_fdi():
    a, b = simulate(rng=11, **SMALL), simulate(rng=11, **SMALL)
    assert a.frame.equals(b.frame)
    f = a.frame["fdi"]
    assert (f >= 0).all() and (f == 0).any()
    assert f.skew() > 1  # right-skewed like city FDI


def test_design_round_trip_and_errors():
    sim = simulate(rng=1, **SMALL)
    assert design_from_dict(design_dict(sim.design)) == sim.design
    with pytest.raises(ZoneImpactError, match="Unknown simulation setting"):
        design_from_dict({"n_cities": 3})
    with pytest.raises(ZoneImpactError, match="outside"):
        simulate(rng=1, waves={1990: 1.0})


def test_simulate_command_writes_panel_and_geography(tmp_path, capsys):
    from zoneimpact.cli import main

    out = tmp_path / "sim.csv"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--seed",
                "5",
                "--set",
                "n_units=60",
                "--set",
                "n_regions=6",
                "--set",
                "displacement_share=1.0",
            ]
        )
        == 0
    )
    import pandas as pd

    frame = pd.read_csv(out)
    assert frame["unit"].nunique() == 60 and {"fdi", "fdi_y0", "cohort", "exposure_onset"} <= set(
        frame.columns
    )
    assert (tmp_path / "sim_geography.csv").exists()
    assert "displacement share" in capsys.readouterr().out
    assert main(["simulate", "--out", str(out)]) == 2  # never overwritten without --force


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("bogus=3", "allowed keys: .*n_units"),
        ("design=0", "allowed keys"),
        ("rng=5", "allowed keys"),
        ("n_units=two", "n_units needs a number; received 'two'"),
        ("n_units", "expected KEY=VALUE"),
    ],
)
def test_cli_simulate_set_is_checked(tmp_path, capsys, item, message):
    from zoneimpact.cli import main

    out = tmp_path / "sim.csv"
    assert main(["simulate", "--out", str(out), "--set", item]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_wave_shares_outside_zero_one_are_refused():
    # {2000: 1.5, 2010: -0.5} sums to 1 and was accepted: wave 2010 got no unit and wave
    # 2000 all of them (a breaker, session 22)
    with pytest.raises(ZoneImpactError, match=r"Wave shares must lie in \(0, 1\]"):
        simulate(rng=0, waves={2000: 1.5, 2010: -0.5})


def test_the_zero_floor_is_announced_and_truth_is_the_realised_share():
    # zone_share 0.8 and effect_size 80: few never-zone neighbours lose more than their
    # level, the floor at zero cuts 32.1% of the direct effect (seed 1) and the realised
    # displacement share is 0.665 for a design of 1; truth must be the realised one
    # (exactly: -spillover total / direct total of fdi - fdi_y0)
    with pytest.warns(UserWarning, match=r"floored at zero, which cut 32\.1%") as rec:
        sim = simulate(rng=1, zone_share=0.8, effect_size=80, displacement_share=1.0)
    assert rec[0].filename == __file__
    f = sim.frame
    eff = f["fdi"] - f["fdi_y0"]
    treated = (f["cohort"] > 0) & (f["year"] >= f["cohort"])
    share = -eff[~treated].sum() / eff[treated].sum()
    assert sim.truth.displacement_share["fdi"] == pytest.approx(share, rel=1e-12)
    assert 0.6 < share < 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(rng=1, displacement_share=1.0)  # the default levels keep the floor slack
