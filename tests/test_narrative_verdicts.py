"""The run summary's verdicts: each estimate judged against its own data's truth and on its
own scale, estimands that are not the overall ATT kept apart, intervals of every kind
shown, claims counted as claims, and numbers to 3 significant figures."""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
import pytest

from zoneimpact import cli, labels, registry
from zoneimpact.report import narrative
from zoneimpact.report.narrative import run_summary
from zoneimpact.results import EstimationResult, terms_frame

Z975 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def _res(est: str, value: float, se: float, outcome: str = "y", **kw: object) -> EstimationResult:
    terms = kw.pop("terms", None)
    if terms is None:
        terms = terms_frame(["att"], [value], [se])
    return EstimationResult(est, outcome, terms, n_units=50, n_obs=500, **kw)  # type: ignore[arg-type]


def _output(results: dict, *, truth=None, extras=None, claims=None, estimates=None, outcomes=None):
    spec = NS(
        inference=NS(alpha=0.05),
        estimates=estimates
        if estimates is not None
        else [NS(name=n, label=None, data=None) for n in results],
        data=NS(labels={}, units={}, outcomes=outcomes or ["y"], simulate={}),
        claims=claims or {},
    )
    sim = None if truth is None else NS(truth=truth, design=NS(displacement_share=None))
    return NS(spec=spec, results=results, extras=extras or {}, data=NS(simulation=sim))


def _truth(overall: float, event0: float | None = None, outcome: str = "y") -> NS:
    event = pd.DataFrame(
        {"outcome": [outcome], "event_time": [0], "att": [event0 if event0 is not None else 0.0]}
    )
    return NS(overall={outcome: overall}, displacement_share={outcome: 0.0}, event=event)


# ----------------------------------------------------------------------------- 1 block data
BLOCK_SPEC = """
title = "block data"
seed = 9
[data]
source = "simulate"
outcomes = ["fdi"]
[data.simulate]
n_units = 80
n_regions = 8
first_year = 2000
last_year = 2014
waves = {"2006" = 0.5, "2010" = 0.5}
displacement_share = 0.0

[[estimate]]
name = "cs_main"
estimator = "callaway_santanna"
outcome = "fdi"
[estimate.options]
bootstrap = false

[[estimate]]
name = "cs_null"
estimator = "callaway_santanna"
outcome = "fdi"
[estimate.options]
bootstrap = false
[estimate.data]
source = "simulate"
outcomes = ["fdi"]
[estimate.data.simulate]
n_units = 80
n_regions = 8
first_year = 2000
last_year = 2014
waves = {"2006" = 0.5, "2010" = 0.5}
displacement_share = 0.0
effect_size = 0.0
"""


def test_block_with_own_data_is_judged_against_its_own_truth(tmp_path) -> None:
    # before: "Callaway–Sant'Anna: fdi (cs_null) miss it" against the main panel's truth
    # 62.0, and both blocks ranged as "differently weighted averages of the same effects"
    from zoneimpact.run import estimate_all
    from zoneimpact.spec import load_spec

    path = tmp_path / "spec.toml"
    path.write_text(BLOCK_SPEC)
    with warnings.catch_warnings():  # the simulated panels' notes are not under test
        warnings.simplefilter("ignore")
        out = estimate_all(load_spec(str(path)))
    own = out.extras["block_data"][0].simulation.truth.overall["fdi"]
    main = out.data.simulation.truth.overall["fdi"]
    # the block's design has effect_size = 0: its true ATT is exactly 0, the main one is not
    assert own == 0.0 and main > 10
    lo, hi = out.results["cs_null"].conf_int(0.05).loc["att", ["lower", "upper"]]
    assert lo <= 0.0 <= hi  # so its interval covers its own truth
    text = " ".join(run_summary(out))
    assert "(cs_null) miss" not in text
    assert (
        "the own data of cs_null), the intervals of Callaway–Sant'Anna: fdi (cs_null) cover the true 0"
        in text
    )
    assert f"cover the true {narrative._num(main)}; none miss it" in text
    assert "range from" not in text  # one estimate per (data, outcome): nothing to range


# ----------------------------------------------------------------------------- 2 PPML scale
def test_ppml_is_stated_as_a_percent_and_not_judged_against_a_level_truth() -> None:
    # before: "PPML 0.172 [0.0893, 0.254]" beside CS 6.6, "PPML miss it" against the level
    # truth 6.3 and "range from 0.172 (PPML) to 6.6"
    b, se = 0.172, 0.042
    ppml = _res(
        "ppml",
        b,
        se,
        outcome="patents",
        terms=terms_frame(["att", "att_pct"], [b, math.expm1(b)], [se, math.exp(b) * se]),
    )
    cs = _res("callaway_santanna", 6.6, 1.43, outcome="patents")
    truth = _truth(6.33, outcome="patents")
    out = _output({"ppml": ppml, "cs": cs}, truth=truth, outcomes=["patents"])
    text = " ".join(run_summary(out))
    # exp(0.172) - 1 = 0.18768 -> 18.8%; the interval is exp(b +/- 1.96 se) - 1 (hand formula)
    lo, hi = (100 * math.expm1(b - Z975 * se), 100 * math.expm1(b + Z975 * se))
    assert f"PPML 18.8% [{narrative._num(lo)}%, {narrative._num(hi)}%]" in text
    assert (round(lo, 1), round(hi, 1)) == (9.4, 29.0)  # exp(0.0897) - 1, exp(0.2543) - 1
    assert "PPML miss" not in text and "PPML 0.172 [" not in text
    assert "the intervals of Callaway–Sant'Anna cover the true 6.33; none miss it" in text
    assert "range from" not in text  # the only level estimate left is CS


# ----------------------------------------------------------------------------- 3 dCDH, TWFE
def test_dcdh_att_is_compared_with_the_event_zero_truth_and_twfe_is_qualified() -> None:
    # before: "de Chaisemartin–D'Haultfœuille miss it" against the overall ATT 65.6 though
    # its att (effects = 1) is event:0, whose truth 41.8 its interval covers
    dcdh = _res(
        "chaisemartin",
        31.6,
        9.95,
        terms=terms_frame(["att", "event:0"], [31.6, 31.6], [9.95, 9.95]),
        info={"treatment": "1{t >= cohort}", "normalized": False},
    )
    cs = _res("callaway_santanna", 61.4, 4.77)
    tw = _res("twfe", 50.2, 4.0)
    out = _output({"dcdh": dcdh, "cs": cs, "tw": tw}, truth=_truth(65.6, event0=41.8))
    text = " ".join(run_summary(out))
    # 31.6 +/- 1.96 * 9.95 = [12.1, 51.1] contains 41.8, not 65.6
    assert "D'Haultfœuille miss" not in text and "D'Haultfœuille, " not in text.split("cover")[1]
    assert "its interval [12.1, 51.1] covers the true event-time-0 effect 41.8" in text
    # TWFE: 50.2 +/- 7.84 misses 65.6, and the summary says why that is no surprise
    assert "cover the true 65.6; TWFE miss it" in text
    assert "TWFE weights its 2x2 comparisons by their variance (Goodman-Bacon 2021)" in text

    # with several horizons the att is their switcher-weighted average: not compared at all
    many = _res(
        "chaisemartin",
        40.0,
        5.0,
        terms=terms_frame(["att", "event:0", "event:1"], [40.0, 35.0, 45.0], [5.0, 5.0, 5.0]),
        info={"treatment": "1{t >= cohort}", "normalized": False},
    )
    text = " ".join(run_summary(_output({"dcdh": many}, truth=_truth(65.6, event0=41.8))))
    assert "is not compared with the true value" in text and "cover" not in text


# ----------------------------------------------------------------------------- 4 claims
def test_claim_count_counts_distinct_claims() -> None:
    # before: "(of 3 claims ...)" for two claims, one judged on two scales
    verdicts = pd.DataFrame(
        {
            "claim": ["a", "a", "b"],
            "scale": ["levels", "log1p", None],
            "verdict": ["supported", "inconclusive", "contradicted"],
        }
    )
    out = _output({"tw": _res("twfe", 1.0, 0.5)}, extras={"verdicts": verdicts})
    text = " ".join(run_summary(out))
    assert "3 verdicts on 2 distinct claims" in text and "of 3 claims" not in text
    one_each = verdicts.drop(index=1)
    text = " ".join(run_summary(_output({}, extras={"verdicts": one_each})))
    assert "(of 2 claims; the table is below)" in text


# ----------------------------------------------------------------------------- 5 China
def test_claims_run_does_not_range_estimates_across_data_and_labels_sdid_methods() -> None:
    # before: "log_gdp_real range from -0.00285 (china_west ...) to 0.191 (china_wanjiang
    # ...)" (83 western vs 15 Wanjiang units) and method="sc"/"did" labelled "Synthetic DiD"
    def sdid(method: str, v: float) -> EstimationResult:
        return _res("synthetic_did", v, 0.05, outcome="log_gdp_real", info={"method": method})

    results = {
        "china_wanjiang_sdid_gdp": sdid("sdid", 0.191),
        "china_wanjiang_sc_gdp": sdid("sc", 0.137),
        "china_wanjiang_did_gdp": sdid("did", 0.143),
        "china_west_cs_log_gdp": _res("callaway_santanna", -0.00285, 0.013, "log_gdp_real"),
        "china_west_imputation_log_gdp": _res("imputation", 0.0236, 0.036, "log_gdp_real"),
        "cities_fdi": _res("spillover", 226.4, 99.9, "fdi"),
    }
    verdicts = pd.DataFrame(
        {
            "claim": ["a", "b", "c"],
            "data": ["cities", "china_west.toml", "china_wanjiang.toml"],
            "verdict": ["inconclusive"] * 3,
        }
    )
    out = _output(
        results, extras={"verdicts": verdicts}, claims={"data_name": "cities"}, estimates=[]
    )
    paras = run_summary(out)
    ranges = [p for p in paras if "range from" in p]
    assert len(ranges) == 2  # one per data: Wanjiang (three synthdid) and the west (CS, BJS)
    for p in ranges:
        assert not ("china_west" in p and "china_wanjiang" in p)
    assert any("the china_west data range from -0.00285" in p for p in ranges)
    assert any("the china_wanjiang data range from 0.137" in p for p in ranges)
    text = " ".join(paras)
    assert "Synthetic control (synthdid)" in text and "DiD (synthdid)" in text
    assert (
        labels.estimator_label(results["china_wanjiang_sc_gdp"]) == "Synthetic control (synthdid)"
    )
    assert labels.estimator_label(results["china_wanjiang_sdid_gdp"]) == "Synthetic DiD"
    assert labels.estimator_label("synthetic_did") == "Synthetic DiD"


# ----------------------------------------------------------------------------- 7 SC intervals
def test_synthetic_control_prediction_interval_is_shown_with_its_kind() -> None:
    # before: "Synthetic control -9.3 (no interval)" with an SCPI att row [-39.0, 31.5]
    def sc(method: str, low: float, high: float) -> NS:
        nan_ci = pd.DataFrame({"term": ["att"], "lower": [np.nan], "upper": [np.nan]})
        pi = pd.DataFrame(
            {
                "term": ["calendar:2008", "att"],
                "estimate": [35.8, -9.32],
                "low": [-90.2, low],
                "high": [62.7, high],
                "method": [method, method],
            }
        )
        return NS(
            estimator="synthetic_control",
            outcome="y",
            estimate=-9.32,
            se=np.nan,
            main_term="att",
            terms=pd.DataFrame({"term": ["att"], "estimate": [-9.32], "se": [np.nan]}),
            conf_int=lambda alpha: nan_ci,
            prediction_intervals=pi,
            info={"intervals": method},
        )

    out = _output({"a": sc("scpi", -39.0, 31.5), "b": sc("conformal", -419.0, 424.0)})
    text = " ".join(run_summary(out))
    assert "no interval" not in text
    assert "-9.32 [-39.0, 31.5] (SCPI prediction interval)" in text
    assert "-9.32 [-419, 424] (conformal interval)" in text
    assert "95% confidence intervals unless said otherwise" in text


def test_prediction_interval_at_another_level_than_the_run_says_so() -> None:
    # session 46 left this: a result rebuilt at 90% (with_terms(alpha=0.1)) fell back on
    # its 95% prediction interval under the run's "90% confidence intervals" header
    nan_ci = pd.DataFrame({"term": ["att"], "lower": [np.nan], "upper": [np.nan]})
    pi = pd.DataFrame(
        {"term": ["att"], "estimate": [-9.32], "low": [-39.0], "high": [31.5], "method": ["scpi"]}
    )

    def sc(info: dict) -> NS:
        return NS(
            estimator="synthetic_control",
            outcome="y",
            estimate=-9.32,
            se=np.nan,
            alpha=0.10,
            main_term="att",
            terms=pd.DataFrame({"term": ["att"], "estimate": [-9.32], "se": [np.nan]}),
            conf_int=lambda alpha: nan_ci,
            prediction_intervals=pi,
            info=info,
        )

    out = _output({"a": sc({"intervals": "scpi", "intervals_alpha": 0.05}), "b": sc({})})
    out.spec.inference.alpha = 0.10
    text = " ".join(run_summary(out))
    assert "90% confidence intervals unless said otherwise" in text
    assert "(SCPI prediction interval at alpha = 0.05, not the run's 0.1)" in text
    # without a record the interval is at the result's level (0.10), the run's: no remark
    assert text.count("not the run's") == 1


# ----------------------------------------------------------------------------- lower ones
def test_spillover_weighting_text_matches_its_default_controls() -> None:
    # before: "zones against controls that no zone can reach" though the default controls
    # are not yet exposed units too
    from zoneimpact.estimators import spillover

    default = inspect.signature(spillover.fit).parameters["controls"].default
    text = registry.entry("spillover").weighting
    assert default == "not_yet_exposed"
    assert "controls='not_yet_exposed'" in text and "before their exposure" in text
    assert "controls that no zone can reach" not in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5.516, "5.52"),  # before "5.5"
        (1.256, "1.26"),  # before "1.3"
        (0.1234, "0.123"),
        (62.03, "62.0"),
        (107.3, "107"),
        (9.996, "10.0"),  # rounded before the decimals are chosen: not "10.00"
        (12345.6, "12,300"),
        (-0.0, "0"),
        (-1e-9, "-1e-09"),
    ],
)
def test_numbers_have_three_significant_figures(value: float, text: str) -> None:
    assert narrative._num(value) == text


def test_console_summary_skips_every_headline_and_prints_no_negative_zero(monkeypatch, capsys):
    # before: run_summary(output)[1:] dropped only the first outcome's headline (the second
    # was printed), and a displacement share of -0.0 printed as "-0"
    import zoneimpact.distributed.cluster as cluster
    import zoneimpact.run as run
    import zoneimpact.spec as spec_mod

    results = {"a": _res("twfe", 1.0, 0.5, "y"), "b": _res("twfe", 2.0, 0.5, "z")}
    truth = NS(overall={"y": 1.0, "z": 2.0}, displacement_share={"y": -0.0, "z": -0.0})
    out = _output(results, truth=truth, outcomes=["y", "z"])
    out.path = "/nowhere"
    out.spec.data.engine = "pandas"
    monkeypatch.setattr(spec_mod, "load_spec", lambda *a, **k: out.spec)
    monkeypatch.setattr(run, "run_spec", lambda *a, **k: out)
    monkeypatch.setattr(cluster, "session", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(cli, "_print_summary", lambda output: None)
    args = NS(spec="x.toml", data_dir=None, out=None, force=False, scheduler=None)
    assert cli.cmd_estimate(args) == 0
    printed = capsys.readouterr().out
    assert "Headline estimates" not in printed
    assert "displacement share -0" not in printed and "y: ATT 1.00, displacement share 0" in printed
