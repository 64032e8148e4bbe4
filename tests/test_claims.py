"""Claims: the seed file, the verdict rules, and verdicts in three simulated worlds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, mc_reps

from zoneimpact.claims import Claim, evaluate_claims, judge, load_claims, run_claims
from zoneimpact.errors import SpecError
from zoneimpact.estimators import spillover
from zoneimpact.exposure import exposure_from_onsets
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

set_progress(False)
SEEDS = SHARED_DATA.parent / "seeds"
SMALL = dict(
    n_units=150,
    n_regions=30,
    first_year=2002,
    last_year=2016,
    waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
)


def test_seed_claims_file():
    claims = load_claims()
    assert len(claims) >= 10
    assert {c.estimand for c in claims if c.testable} >= {
        "direct",
        "net",
        "displacement_share",
        "concentration",
    }
    for c in claims:
        assert c.testable or c.reason
        assert c.quote.count(". ") == 0  # one sentence at most
    if SEEDS.exists():
        for c in claims:
            text = (SEEDS / c.document).read_text(encoding="utf-8")
            assert c.quote in text, c.id


@pytest.mark.parametrize(
    ("est", "se", "test", "null", "expected"),
    [
        (0.0, 1.0, "equivalence", 0.0, "supported"),  # 90% CI +-1.645 inside +-3
        (2.0, 1.0, "equivalence", 0.0, "inconclusive"),  # upper 3.645 crosses 3
        (6.0, 1.0, "equivalence", 0.0, "contradicted"),  # lower 4.355 beyond 3
        (1.1, 1.0, "equivalence", 1.0, "supported"),  # around the null value 1
        (5.0, 1.0, "positive", 0.0, "supported"),
        (1.0, 0.1, "positive", 0.0, "supported"),
        (-1.0, 1.0, "positive", 0.0, "contradicted"),  # upper 0.645 < margin 3
        (1.0, 2.0, "positive", 0.0, "inconclusive"),
        (-5.0, 1.0, "negative", 0.0, "supported"),
        (math.nan, 1.0, "equivalence", 0.0, "not estimable"),
    ],
)
def test_judge_rules(est, se, test, null, expected):
    assert judge(est, se, 3.0, test=test, null_value=null, alpha=0.05)[0] == expected


def test_judge_t_interval_wider():
    lo_z = judge(0.0, 1.0, 3.0)[1]
    lo_t = judge(0.0, 1.0, 3.0, df=5)[1]
    assert lo_t == pytest.approx(-2.015048, abs=1e-6)  # qt(.95, 5) in R
    assert lo_z == pytest.approx(-1.644854, abs=1e-6)


def test_claim_validation():
    with pytest.raises(SpecError, match="estimand"):
        Claim(id="x", document="d", quote="q", hypothesis="h", estimand="gdp", margin=1)
    with pytest.raises(SpecError, match="margin"):
        Claim(id="x", document="d", quote="q", hypothesis="h")
    with pytest.raises(SpecError, match="reason"):
        Claim(id="x", document="d", quote="q", hypothesis="h", testable=False)


def test_run_claims_table():
    sim = simulate(rng=2, **SMALL, displacement_share=0.0)
    table, results = run_claims(panels={"sim": sim.panel}, rng=1, spillover={"n_boot": 49})
    assert list(table.columns[:10]) == [
        "claim",
        "document",
        "data",
        "estimator",
        "outcome",
        "estimand",
        "test",
        "estimate",
        "ci_low",
        "ci_high",
    ]
    v = table.set_index(["claim", "outcome"])["verdict"]
    untestable = table.loc[table["verdict"] == "untestable", "claim"]
    assert "firms_relocate_within_region" in set(untestable)
    assert v[("stips_invigorate_regions", "gdp")] == "untestable"  # no gdp in the panel
    assert v[("no_direct_fdi_gain", "fdi")] == "contradicted"  # a clear direct effect
    assert set(results["sim"]) == {"fdi", "patents", "fdi:share", "fdi:hhi"}
    # the margin of a pre_mean claim scales with the zone units' pre-zone mean
    row = table.set_index("claim").loc["no_net_fdi_gain"]
    assert row["margin"] == pytest.approx(0.1 * results["sim"]["fdi"].info["pre_mean"])


# ---------------------------------------------------------------------- Monte Carlo
NET_CLAIM = [c for c in load_claims() if c.id == "no_net_fdi_gain"]
WORLDS = {
    "concentration": dict(displacement_share=1.0, agglomeration=0.0),
    "creation": dict(displacement_share=0.0, agglomeration=0.0),
    "no_effect": dict(effect_size=0.0),
}


def _world(world: dict, reps: int, seed: int) -> pd.DataFrame:
    def run(i: int, rng: np.random.Generator) -> dict:
        sim = simulate(rng=rng, **SMALL, **world)
        onset = sim.frame.drop_duplicates("unit").set_index("unit")["exposure_onset"]
        res = spillover.fit(
            sim.panel,
            outcome="fdi",
            rng=rng,
            n_boot=99,
            exposure=exposure_from_onsets(sim.panel, onset),
        )
        ci = res.conf_int()
        net = sim.truth.net_total["fdi"]
        return {
            "verdict": evaluate_claims(NET_CLAIM, {"sim": {"fdi": res}})["verdict"].iloc[0],
            "cover": ci.at["net", "lower"] <= net <= ci.at["net", "upper"],
            "direct_low": ci.at["direct", "lower"],
            "direct_err": res.coef("direct") - sim.truth.overall["fdi"],
            "naive_err": res.coef("naive") - sim.truth.overall["fdi"],
            "net_err": res.coef("net") - net,
            "net_se": res.terms.set_index("term").at["net", "se"],
            "sd": res.info["outcome_sd"],
        }

    return pd.DataFrame(replicate(run, reps, rng=seed))


def test_mc_pure_concentration():
    reps = mc_reps(16, 200)
    df = _world(WORLDS["concentration"], reps, 101)
    sd = df["sd"].mean()
    assert (df["direct_low"] > 0).all()  # the direct effect is detected
    # spillover-aware direct effect unbiased, naive one biased up (by ~0.2 SD here);
    # the reduced run's Monte Carlo error of the mean is ~0.01 SD
    assert abs(df["direct_err"].mean()) < 0.05 * sd
    assert df["naive_err"].mean() > 0.1 * sd
    # net truth 0 covered; bias within 3 MC standard errors
    assert abs(df["net_err"].mean()) < 3 * df["net_err"].std() / np.sqrt(reps)
    # full run: >= 0.9 (the benchmark reports ~0.9, see benchmarks/mc_worlds.py); the
    # reduced run allows the binomial error of 16 draws
    assert df["cover"].mean() >= (0.88 if reps >= 200 else 0.75)
    # the null claim "no net gain" is never contradicted when it is true
    assert (df["verdict"] != "contradicted").all()


def test_mc_pure_creation():
    df = _world(WORLDS["creation"], mc_reps(10, 200), 202)
    assert (df["verdict"] == "contradicted").mean() >= 0.9
    assert df["cover"].mean() >= 0.7


def test_mc_no_effect():
    df = _world(WORLDS["no_effect"], mc_reps(10, 200), 303)
    # a true null is rarely contradicted (size of the minimal-effect test <= alpha); whether
    # it is *supported* depends on power against the 10%-of-pre-mean margin, which this
    # small design lacks (benchmarks/mc_worlds.py prints the frequencies)
    assert (df["verdict"] != "contradicted").mean() >= 0.9
    assert set(df["verdict"]) <= {"supported", "inconclusive", "contradicted"}
