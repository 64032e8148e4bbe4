"""What a run's report page and files say beyond the numbers: the warnings raised while
each block was estimated, the simulated-data caveat, figure captions, PPML's log-point
scale and the weights of a weighted fit."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.report import outputs, plots
from zoneimpact.report.tables import regression_table
from zoneimpact.results import EstimationResult, terms_frame
from zoneimpact.run import run_spec
from zoneimpact.simulate import simulate
from zoneimpact.spec import load_spec

#: the warning covariance.py raises when one cluster carries the treatment
FEW_CLUSTERS = "The treatment is carried by only 1 cluster"


def _one_treated_spec(folder: Path) -> Path:
    """A file spec whose panel has a single treated unit (u0000 from 2006): TWFE's clustered
    SEs then warn; a weighted TWFE and a synthetic control (a gap figure) ride along."""
    frame = simulate(
        rng=3, n_units=30, n_regions=3, first_year=2000, last_year=2011, waves={2006: 1.0}
    ).frame
    frame = frame[["unit", "region", "year", "x", "fdi"]].assign(w=np.exp(frame["x"]))
    frame.to_csv(folder / "panel.csv", index=False)
    spec = folder / "one.toml"
    spec.write_text(
        'title = "one treated"\nseed = 5\n[data]\nsource = "file"\n'
        f'path = "{folder / "panel.csv"}"\nunit = "unit"\ntime = "year"\n'
        'treated_units = {"u0000" = 2006}\noutcomes = ["fdi"]\ncovariates = ["w"]\n'
        '[[estimate]]\nname = "twfe"\nestimator = "twfe"\noutcome = "fdi"\n'
        '[[estimate]]\nname = "twfe_w"\nestimator = "twfe"\noutcome = "fdi"\n'
        '[estimate.options]\nweights = "w"\n'
        '[[estimate]]\nname = "sc"\nestimator = "synthetic_control"\noutcome = "fdi"\n'
    )
    return spec


@pytest.fixture(scope="module")
def one_treated(tmp_path_factory):
    """The one-treated-unit spec run twice into two directories (same process): with the
    console's default filter, then with the caller ignoring warnings (the console shows
    nothing, the run's files must not change)."""
    folder = tmp_path_factory.mktemp("one")
    spec = load_spec(_one_treated_spec(folder))
    outs = []
    for k, action in enumerate(("default", "ignore")):
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter(action)
            out = run_spec(spec, folder / f"run{k}")
        outs.append((out, [str(w.message) for w in shown]))
    return outs


def test_block_warnings_reach_run_files_and_report(one_treated):
    out, shown = one_treated[0]
    # the console still gets the warning (re-emitted after recording)
    assert any(FEW_CLUSTERS in m for m in shown)
    root = out.path
    saved = json.loads((root / "warnings.json").read_text(encoding="utf-8"))
    assert set(saved) >= {"twfe"} and "sc" not in saved
    assert any(FEW_CLUSTERS in w["message"] for w in saved["twfe"])
    assert saved["twfe"][0]["category"] == "UserWarning"
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["warnings"] == saved
    page = (root / "report.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="warnings"') :]
    section = section[: section.index("</section>")]
    assert "<code>twfe</code>" in section and FEW_CLUSTERS in section
    # escaped: the message quotes the cluster column ('unit') and cites "MacKinnon & Webb"
    assert "&#x27;unit&#x27;" in section and "&amp; Webb" in section
    assert "'unit'" not in section
    # and again with the block's own estimates
    est = page[page.index('id="res-twfe"') :]
    assert FEW_CLUSTERS in est[: est.index("</h3>") + 2000]


def test_warnings_recorded_again_in_the_same_process(one_treated):
    # the second run, in the same process and with the caller ignoring warnings, records
    # the same warnings (the run's files do not depend on the console's filters) and writes
    # byte-identical tables
    (first, _), (second, shown) = one_treated
    assert not shown  # the caller's "ignore" still silences the console
    assert second.warnings == first.warnings and "twfe" in second.warnings
    for rel in ["warnings.json", "results.json"] + [
        f"tables/{p.name}" for p in sorted((first.path / "tables").iterdir())
    ]:
        assert (first.path / rel).read_bytes() == (second.path / rel).read_bytes(), rel


def test_weights_row_from_recorded_weights(one_treated):
    out, _ = one_treated[0]
    # the estimators record their weight column as info["weights"] ("" when unweighted)
    assert out.results["twfe_w"].info["weights"] == "w"
    assert out.results["twfe"].info["weights"] == ""
    table = pd.read_csv(out.path / "tables" / "estimates.csv", keep_default_na=False)
    row = table.loc[table.iloc[:, 0] == "Weights"]
    assert len(row) == 1
    assert row.iloc[0].tolist()[1:] == ["none", "w", "none"]


def test_counterfactual_gap_has_caption(one_treated):
    out, _ = one_treated[0]
    page = (out.path / "report.html").read_text(encoding="utf-8")
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert "sc_counterfactual_gap" not in captions
    assert any(c.endswith(outputs.FIGURE_TITLES["counterfactual_gap"]) for c in captions)
    # no figure is captioned by its raw key
    alts = re.findall(r'<img alt="([^"]*)"', page)
    assert not set(alts) & set(captions)


def test_every_standard_figure_key_has_a_title():
    # the keys plots.default_figures / counterfactual_figures can return, read from their
    # plans: a new figure without a caption would show its raw key in report.html
    keys = set()
    for fn in (plots.default_figures, plots.counterfactual_figures):
        # each plan entry is ("key", lambda: ...): a key followed by its maker
        keys |= set(re.findall(r'\(\s*"([a-z_]+)",\s*lambda', inspect.getsource(fn)))
    assert {"event_study", "sc_paths", "counterfactual_gap", "equivalence_event"} <= keys
    assert keys <= set(outputs.FIGURE_TITLES)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    spec = folder / "sim.toml"
    spec.write_text(
        'title = "sim"\nseed = 2\n[data]\nsource = "simulate"\noutcomes = ["fdi"]\n'
        "[data.simulate]\nn_units = 40\nn_regions = 4\nfirst_year = 2000\nlast_year = 2010\n"
        'waves = {"2005" = 1.0}\n'
        '[[estimate]]\nname = "twfe"\nestimator = "twfe"\noutcome = "fdi"\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_spec(load_spec(spec), folder / "run")


def test_simulated_caveat_on_report(simulated):
    page = (simulated.path / "report.html").read_text(encoding="utf-8")
    assert "DEMONSTRATION on SIMULATED data" in page
    # a claims run (verdicts present) on simulated data says its verdicts are a demo too
    claims = dataclasses.replace(simulated, extras={"verdicts": pd.DataFrame({"claim": ["c"]})})
    (caveat,) = outputs.run_caveats(claims)
    assert "DEMONSTRATION on SIMULATED data" in caveat and "verdicts" in caveat


def test_ppml_att_labelled_as_log_points():
    b, se = 0.2, 0.05
    ppml = EstimationResult(
        "ppml",
        "patents",
        terms_frame(
            ["att", "att_pct"], [b, np.expm1(b)], [se, np.exp(b) * se], df=[np.inf, np.inf]
        ),
        n_units=80,
        n_obs=1200,
        info={"cluster": "unit", "n_clusters": 80, "weights": ""},
    )
    twfe = EstimationResult(
        "twfe", "patents", terms_frame(["att"], [1.5], [0.4]), n_units=80, n_obs=1200
    )
    table = regression_table({"PPML": ppml, "TWFE": twfe}, outcome_units={"patents": "count"})
    cells = table.frame
    scale = cells.loc[cells[""] == "Effect scale"]
    assert scale.iloc[0].tolist() == ["Effect scale", "log points", ""]
    note = next(n for n in table.notes if "log points" in n)
    # hand computation: exp(0.2) - 1 = 0.2214; delta-method SE exp(0.2) * 0.05 = 0.06107,
    # 95% interval 0.2214 -/+ 1.95996 * 0.06107 = [0.1017, 0.3411]
    assert "att_pct = exp(ATT) - 1 = 0.221 [0.102, 0.341]" in note
    assert not any(r == "Weights" for r in cells[""])  # nothing weighted: no row
