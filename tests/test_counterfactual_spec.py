"""Issue 15 through the registry: IFE, matrix completion and SC prediction intervals from a
spec, end to end on the command line, with their figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.cli import main
from zoneimpact.errors import SpecError
from zoneimpact.estimators import check_options, synthetic_control
from zoneimpact.panel import Panel

SPEC = """
title = "counterfactual estimators"
seed = 11
[data]
source = "simulate"
outcomes = ["fdi"]
[data.simulate]
n_units = 40
n_regions = 4
first_year = 2000
last_year = 2011
waves = {"2007" = 1.0}
[inference]
n_jobs = 1
[[estimate]]
name = "ife"
estimator = "ife"
outcome = "fdi"
[estimate.options]
r = 1
n_reps = 10
diagnostics = false
[[estimate]]
name = "mc"
estimator = "matrix_completion"
outcome = "fdi"
[estimate.options]
n_lambda = 4
k = 3
n_reps = 10
pretrend_min_share = 0.5
[[estimate]]
name = "sc"
estimator = "synthetic_control"
outcome = "fdi"
[estimate.options]
placebos = false
intervals = "scpi"
"""


def test_spec_runs_counterfactual_estimators_end_to_end(tmp_path: Path) -> None:
    spec = tmp_path / "cf.toml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    assert main(["estimate", "--spec", str(spec), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    att = {r["name"]: r for r in results if r["term"] == "att"}
    assert set(att) == {"ife", "mc", "sc"}
    assert att["ife"]["estimator"] == "ife" and att["mc"]["estimator"] == "matrix_completion"
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    # IFE runs without diagnostics here (they refit in every draw: tests/test_ife.py covers
    # them), so it has no equivalence margin and no equivalence plot
    assert "ife_equivalence_event" not in figures
    for stem in (
        "ife_counterfactual_gap",
        "mc_counterfactual_gap",
        "mc_equivalence_event",
        "sc_counterfactual_gap",
    ):
        assert stem in figures, stem
    # the SC blocks carry their intervals as a table of the run; the SCPI interval of the
    # average effect contains the point estimate
    pi = pd.read_csv(out / "artifacts" / "sc_prediction_intervals.csv")
    row = pi.set_index("term").loc["att"]
    assert row["method"] == "scpi" and row["low"] <= row["estimate"] <= row["high"]
    # SCPI refits the canonical SC (simplex least squares on the raw pre-period outcomes,
    # V = I; CFT 2021); the block's own SC weights may differ (e.g. standardised
    # predictors), so the two point estimates agree only up to the weights: within 2%
    assert row["estimate"] == pytest.approx(att["sc"]["estimate"], rel=0.02)


def test_interval_option_is_checked() -> None:
    check_options("synthetic_control", {"intervals": "scpi"})
    check_options("synthetic_did", {"covariates": ["x"]})
    with pytest.raises(SpecError, match="intervals"):
        check_options("synthetic_control", {"interval": "scpi"})


def test_conformal_intervals_option() -> None:
    # CWZ intervals through the same option (the conformal module is tested on its own in
    # tests/test_conformal.py): one row per post period and the average, p-values in [0, 1]
    rng = np.random.default_rng(5)
    T, J = 14, 6
    F = np.cumsum(rng.normal(0, 1, (T, 2)), axis=0)
    Y0 = rng.uniform(0.5, 1.5, (J, 2)) @ F.T + rng.normal(0, 0.3, (J, T))
    y = Y0[:3].mean(axis=0) + rng.normal(0, 0.3, T) + np.where(np.arange(T) >= 11, 2.0, 0.0)
    frame = pd.DataFrame(
        [(f"d{j}", t, Y0[j, t], 0) for j in range(J) for t in range(T)]
        + [("tr", t, y[t], 11) for t in range(T)],
        columns=["unit", "time", "y", "g"],
    )
    panel = Panel.from_frame(frame, unit="unit", time="time", outcomes="y", cohort="g")
    res = synthetic_control.fit(panel, outcome="y", placebos=False, intervals="conformal")
    pi = res.prediction_intervals.set_index("term")
    assert list(pi.index) == ["att", "calendar:11", "calendar:12", "calendar:13"]
    assert pi["method"].eq("conformal").all() and pi["p_value"].between(0, 1).all()
    assert (pi["low"] <= pi["estimate"]).all() and (pi["estimate"] <= pi["high"]).all()
    assert res.info["intervals"] == "conformal" and "prediction_intervals" in res.artifacts()
