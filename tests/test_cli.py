"""The command line: --version, help text for every command and option, errors without
tracebacks, the demo note of a simulated claims run; and the run summary it prints."""

from __future__ import annotations

import argparse
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from zoneimpact import __version__, cli
from zoneimpact.report.narrative import run_summary
from zoneimpact.results import EstimationResult, terms_frame


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    act = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(act.choices)


def test_version_flag():
    proc = subprocess.run(
        [sys.executable, "-m", "zoneimpact", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"zoneimpact {__version__}"


def test_every_command_and_option_has_help(capsys):
    parser = cli.build_parser()
    subs = _subparsers(parser)
    assert set(subs) == {"estimate", "claims", "simulate", "power", "figures"}
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    # No raw module docstring (reST markup), every command listed with a one-line help.
    assert "``" not in text and "Command line:" not in text
    for name in subs:
        assert f"    {name}" in text
    for name, sub in subs.items():
        assert sub.description and "``" not in sub.description, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        assert "--quiet" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    code = cli.main(["simulate", "--set", "bogus=3", "--out", str(tmp_path / "p.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("zoneimpact: error: --set 'bogus=3'") and "Traceback" not in err
    assert "displacement_share" in err  # the allowed keys are listed
    code = cli.main(["estimate", "--spec", str(tmp_path / "missing.toml"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "missing.toml" in err


def test_simulate_sets_a_true_false_design_field(tmp_path, capsys):
    # displace_zone_units=true writes a world where zone units lose activity before their
    # own zone; anything but true/false is refused, naming the key
    out = tmp_path / "p.csv"
    base = ["simulate", "--set", "n_units=120", "--set", "n_regions=10", "--quiet"]
    assert cli.main([*base, "--set", "displace_zone_units=true", "--out", str(out)]) == 0
    f = pd.read_csv(out)
    pre = f[(f["cohort"] > 0) & (f["year"] < f["cohort"])]
    assert pre["fdi_spillover"].min() < 0
    out2 = tmp_path / "q.csv"  # an existing output is not overwritten
    assert cli.main([*base, "--set", "displace_zone_units=FALSE", "--out", str(out2)]) == 0
    f = pd.read_csv(out2)
    assert (f.loc[(f["cohort"] > 0) & (f["year"] < f["cohort"]), "fdi_spillover"] == 0).all()
    code = cli.main([*base, "--set", "displace_zone_units=1", "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "displace_zone_units needs true or false; received '1'" in err


def test_claims_on_simulated_data_say_so(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_judge_and_write", lambda spec, args: print("VERDICTS") or 0)
    code = cli.main(["claims", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    before, after = out.split("VERDICTS")
    assert "DEMONSTRATION on SIMULATED data: no --spec given" in before
    assert "not against China's data" in before
    assert "Simulated data" in after


def _output():
    def res(est: str, value: float, se: float) -> EstimationResult:
        return EstimationResult(
            est, "fdi", terms_frame(["att"], [value], [se]), n_units=280, n_obs=7560
        )

    results = {
        "twfe_fdi": res("twfe", 79.45, 4.2),
        "cs_fdi": res("callaway_santanna", 68.7, 5.1),
        "imputation_fdi": res("imputation", 107.3, 5.7),
    }
    truth = SimpleNamespace(overall={"fdi": 84.05}, displacement_share={"fdi": 0.5})
    spec = SimpleNamespace(
        inference=SimpleNamespace(alpha=0.05),
        estimates=[SimpleNamespace(name=n, label=None) for n in results],
        data=SimpleNamespace(
            labels={"fdi": "FDI inflow"},
            units={"fdi": "million USD"},
            outcomes=["fdi"],
            simulate={"displacement_share": 0.5},
        ),
    )
    data = SimpleNamespace(
        simulation=SimpleNamespace(truth=truth, design=SimpleNamespace(displacement_share=0.5))
    )
    return SimpleNamespace(spec=spec, data=data, results=results, extras={})


def test_run_summary_states_estimates_truth_and_why_they_differ():
    paras = run_summary(_output())
    text = " ".join(paras)
    # Headline estimates with 95% intervals, labelled and with units: 79.45 +/- 1.96*4.2.
    assert paras[0].startswith("Headline estimates of the effect on FDI inflow (million USD)")
    assert "TWFE 79.5 [71.2, 87.7]" in paras[0]
    # The simulated truth, and which intervals cover it (84.05 in [71.2, 87.7] only).
    assert "true overall ATT 84" in text
    assert "intervals of TWFE cover the true 84" in text
    assert "Callaway–Sant'Anna, Imputation (BJS) miss it" in text
    # Why they differ: the range, the weights, and the contaminated controls by design.
    assert "range from 68.7 (Callaway–Sant'Anna) to 107 (Imputation (BJS))" in text
    assert "displaces 50% of each zone's gain" in text and "contaminated" in text
    assert np.isfinite(len(paras))
