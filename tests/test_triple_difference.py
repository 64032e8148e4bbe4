"""Staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mc_reps

from zoneimpact.errors import PanelError, SpecError
from zoneimpact.estimators import get_estimator
from zoneimpact.estimators.triple_difference import fit
from zoneimpact.panel import Panel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mc_designs  # noqa: E402

# moderndid 0.2.0 ddd / agg_ddd (port of R triplediff), benchmarks/reference/ddd_reference.py
REF = json.loads((REPO / "benchmarks" / "reference" / "ddd_moderndid.json").read_text())
CONFIGS = {
    "never": {},
    "notyet": {"control_group": "not_yet_treated"},
    "never_dr_x": {"covariates": ["x"]},
    "notyet_dr_x": {"covariates": ["x"], "control_group": "not_yet_treated"},
}
AGG = (("eventstudy", "event:", "event_avg"), ("group", "cohort:", "cohort_avg"))
AGG += (("calendar", "calendar:", "calendar_avg"),)


@pytest.fixture(scope="module")
def ddd_panel() -> Panel:
    return mc_designs.ddd_panel(mc_designs.simulate_ddd(np.random.default_rng(2025)))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_moderndid(ddd_panel: Panel, name: str) -> None:
    """Every ATT(g,t) and every aggregate equals triplediff's (via moderndid) to 1e-10
    (observed ~1e-13). SEs: the cells with one comparison cohort equal to 1e-10; the
    GMM-combined cells (not-yet-treated, several cohorts) use the GMM influence function
    here and moderndid's sqrt(1 / (n 1'Omega^-1 1)) there, 0.03% apart. moderndid's
    simple and calendar aggregations leave out the influence of the estimated cohort
    shares, which we keep (CS 2021; R did's aggte): without it our simple SE is theirs
    to 1e-10; with it, aggregated SEs are within 0.3% (rtol 5e-3)."""
    res = fit(ddd_panel, outcome="y", eligible="q", **CONFIGS[name])
    ref = REF[name]
    gt = res.att_gt
    assert gt["cohort"].tolist() == [int(g) for g in ref["att_gt"]["group"]]
    assert gt["time"].tolist() == [int(t) for t in ref["att_gt"]["time"]]
    np.testing.assert_allclose(gt["estimate"], ref["att_gt"]["att"], atol=1e-10)
    single = (gt["n_comparisons"] <= 1).to_numpy()
    np.testing.assert_allclose(
        gt["se"][single], np.array(ref["att_gt"]["se"])[single], atol=1e-10, equal_nan=True
    )
    np.testing.assert_allclose(gt["se"], ref["att_gt"]["se"], rtol=5e-3, equal_nan=True)
    t = res.terms.set_index("term")
    assert t.loc["att", "estimate"] == pytest.approx(ref["simple"]["overall_att"], abs=1e-10)
    psi = np.nan_to_num(res.influence)
    cohort = ddd_panel.unit_cohort.reindex(ddd_panel.units).to_numpy()
    share = gt["cohort"].map({g: np.mean(cohort == g) for g in gt["cohort"].unique()}).to_numpy()
    w = share * (gt["event_time"] >= 0).to_numpy()
    no_wif = np.sqrt(np.sum((psi @ (w / w.sum())) ** 2)) / len(psi)
    assert no_wif == pytest.approx(ref["simple"]["overall_se"], abs=1e-10)
    assert t.loc["att", "se"] == pytest.approx(ref["simple"]["overall_se"], rel=5e-3)
    for typ, prefix, overall in AGG:
        labels = [f"{prefix}{int(i)}" for i in ref[typ]["index"]]
        np.testing.assert_allclose(t.loc[labels, "estimate"], ref[typ]["att"], atol=1e-10)
        np.testing.assert_allclose(t.loc[labels, "se"], ref[typ]["se"], rtol=5e-3, equal_nan=True)
        assert t.loc[overall, "estimate"] == pytest.approx(ref[typ]["overall_att"], abs=1e-10)
        assert t.loc[overall, "se"] == pytest.approx(ref[typ]["overall_se"], rel=5e-3)


def test_sampling_weights() -> None:
    """With sampling weights every ATT(g,t) equals diff-diff's StaggeredTripleDifference
    with SurveyDesign(weights=...) to 1e-10 (moderndid 0.2 ignores weights in staggered
    DDD); SEs within 3% (diff-diff's survey linearisation vs our weighted influence
    functions; they agree exactly without weights). Integer weights equal duplicated
    units for the point estimates; equal weights change nothing."""
    df = mc_designs.simulate_ddd(np.random.default_rng(2025))
    df = df.assign(w=1 + (df["unit"] % 5) / 2)
    panel = Panel.from_frame(
        df, unit="unit", time="time", cohort="g", outcomes="y", covariates=["q", "x", "w"]
    )
    res = fit(panel, outcome="y", eligible="q", weights="w")
    ref = REF["never_weighted_diffdiff"]
    gt = res.att_gt[res.att_gt["se"].notna()]
    assert gt["cohort"].tolist() == [int(g) for g in ref["group"]]
    assert gt["time"].tolist() == [int(t) for t in ref["time"]]
    np.testing.assert_allclose(gt["estimate"], ref["att"], atol=1e-10)
    np.testing.assert_allclose(gt["se"], ref["se"], rtol=0.03)
    flat = fit(panel, outcome="y", eligible="q")
    same = Panel.from_frame(
        df.assign(w=3.0),
        unit="unit",
        time="time",
        cohort="g",
        outcomes="y",
        covariates=["q", "x", "w"],
    )
    np.testing.assert_allclose(
        fit(same, outcome="y", eligible="q", weights="w").terms["estimate"],
        flat.terms["estimate"],
        atol=1e-12,
    )
    small = df[df["unit"] <= 300].assign(w=lambda d: 1.0 + (d["unit"] % 2))
    dup = pd.concat([small, small[small["w"] == 2].assign(unit=lambda d: d["unit"] + 10_000)])
    cov = ["q", "x", "w"]
    weighted = fit(
        Panel.from_frame(small, unit="unit", time="time", cohort="g", outcomes="y", covariates=cov),
        outcome="y",
        eligible="q",
        weights="w",
        covariates=["x"],
    )
    doubled = fit(
        Panel.from_frame(dup, unit="unit", time="time", cohort="g", outcomes="y", covariates=cov),
        outcome="y",
        eligible="q",
        covariates=["x"],
    )
    np.testing.assert_allclose(weighted.att_gt["estimate"], doubled.att_gt["estimate"], atol=1e-9)
    np.testing.assert_allclose(weighted.terms["estimate"], doubled.terms["estimate"], atol=1e-9)


def test_invariances(ddd_panel: Panel) -> None:
    """Shuffled, relabelled units and an affine outcome scale every number; swapping
    which cohort labels come first changes nothing; a trend specific to the eligible
    units (common to all cohorts) is differenced out exactly."""
    df = mc_designs.simulate_ddd(np.random.default_rng(2025))
    base = fit(ddd_panel, outcome="y", eligible="q")
    moved = df.sample(frac=1, random_state=4).assign(
        unit=lambda d: 5000 - d["unit"], y=lambda d: 3 * d["y"] - 1
    )
    other = fit(mc_designs.ddd_panel(moved), outcome="y", eligible="q")
    np.testing.assert_allclose(
        other.terms["estimate"], 3 * base.terms["estimate"], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(other.terms["se"], 3 * base.terms["se"], rtol=1e-9)
    trended = df.assign(
        y=df["y"] + 0.7 * df["time"] ** 2 * df["q"] + 0.4 * df["time"] * (df["g"] == 3)
    )
    shifted = fit(mc_designs.ddd_panel(trended), outcome="y", eligible="q")
    np.testing.assert_allclose(shifted.terms["estimate"], base.terms["estimate"], atol=1e-9)


def test_registered_and_errors(ddd_panel: Panel) -> None:
    assert get_estimator("triple_difference") is fit
    with pytest.raises(SpecError, match="eligibility partition"):
        fit(ddd_panel, outcome="y")
    df = mc_designs.simulate_ddd(np.random.default_rng(2025))
    bad = df.assign(q=np.where((df["unit"] == 5) & (df["time"] == 2), 1 - df["q"], df["q"]))
    with pytest.raises(PanelError, match="unit 5 has"):
        fit(mc_designs.ddd_panel(bad), outcome="y", eligible="q")


def test_monte_carlo_known_truth() -> None:
    """Known truth (benchmarks/mc_designs.py, design ddd): cohort- and eligibility-specific
    trends that break both DiDs, a common eligible-ineligible trend gap, ATT(g,t) = 1 +
    0.5 e. Event-study effects and placebos are unbiased and covered (full run in
    RESULTS.md)."""
    reps = mc_reps(12, 300)
    tru = mc_designs.ddd_truth()
    errs, ses = [], []
    for rng in np.random.default_rng(9).spawn(reps):
        res = fit(
            mc_designs.ddd_panel(mc_designs.simulate_ddd(rng)),
            outcome="y",
            eligible="q",
            aggregations=("dynamic",),
        )
        t = res.terms.set_index("term")
        keys = [k for k in tru if k.startswith("event:")]
        errs.append([t.loc[k, "estimate"] - tru[k] for k in keys])
        ses.append([t.loc[k, "se"] for k in keys])
    errs, ses = np.array(errs), np.array(ses)
    assert np.all(np.abs(errs.mean(0)) < 3.5 * errs.std(0) / np.sqrt(reps))
    assert np.mean(np.abs(errs) <= 1.96 * ses) >= 0.85


def test_reachable_from_a_spec(tmp_path: Path) -> None:
    """The issue-16 estimators are reachable from a spec: a triple-difference block runs
    end to end (terms equal a direct fit, group-time artifact saved); option names of
    the four are checked against fit() before a run."""
    import json as _json

    from zoneimpact.run import run_spec
    from zoneimpact.spec import load_spec

    mc_designs.simulate_ddd(np.random.default_rng(1), n_units=300).to_csv(
        tmp_path / "ddd.csv", index=False
    )
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f"""
seed = 1
[data]
source = "file"
path = "{(tmp_path / "ddd.csv").as_posix()}"
unit = "unit"
time = "time"
cohort = "g"
outcomes = ["y"]
covariates = ["q", "x"]
[[estimate]]
name = "ddd"
estimator = "triple_difference"
outcome = "y"
[estimate.options]
eligible = "q"
control_group = "not_yet_treated"
"""
    )
    out = run_spec(load_spec(spec), tmp_path / "run")
    rows = _json.loads((out.path / "results.json").read_text())["results"]
    by = {(r["name"], r["term"]): r for r in rows}
    direct = fit(
        mc_designs.ddd_panel(pd.read_csv(tmp_path / "ddd.csv")),
        outcome="y",
        eligible="q",
        control_group="not_yet_treated",
    )
    assert by[("ddd", "att")]["estimate"] == pytest.approx(direct.estimate, rel=1e-9)
    assert (out.path / "artifacts" / "ddd_att_gt.csv").exists()
    from zoneimpact.estimators import check_options

    # the other three accept their documented options and refuse a misspelt one by name
    check_options("cs_repeated_cross_section", {"weights": "w", "est_method": "ipw"})
    check_options("chaisemartin", {"treatment": "d", "effects": 3, "placebo": 2, "switchers": "in"})
    check_options("continuous_did", {"dose": "dose", "degree": 2, "num_knots": 1, "n_boot": 99})
    with pytest.raises(SpecError, match="has no option"):
        check_options("triple_difference", {"eligibility": "q"})
