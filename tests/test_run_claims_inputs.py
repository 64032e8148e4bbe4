"""Run directories, claims files and concentration inputs that a breaker (session 20) found
deleting other work, recording the wrong provenance or changing a verdict without a word.
Each test fails on the code before (``git show 329768a``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from test_concentration import toy
from test_run import SMALL_SPEC
from test_run_directories import tiny_figures  # noqa: F401  (a fixture)

from zoneimpact import cli
from zoneimpact.claims import Claim, evaluate_claims, judge, load_claims
from zoneimpact.concentration import estimate_concentration, share_of_region
from zoneimpact.errors import PanelError, RunDirectoryError, SpecError
from zoneimpact.estimators import twfe
from zoneimpact.run import estimate_all, write_run
from zoneimpact.spec import load_spec, parse_spec

TWFE_ONLY = "[[estimate]]".join(SMALL_SPEC.split("[[estimate]]")[:2])
CLAIM = """[[claim]]
id = "zones_raise_fdi"
document = "doc"
quote = "q"
hypothesis = "Zones raise FDI"
outcomes = ["fdi"]
estimand = "direct"
margin = 0.1
margin_unit = "absolute"
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spec")
    (folder / "small.toml").write_text(TWFE_ONLY)
    return estimate_all(load_spec(folder / "small.toml"))


# ---------------------------------------------------------------------- claims files
def test_a_misspelt_claim_field_is_refused(tmp_path) -> None:
    """``tset = "positive"`` loaded as the default equivalence test with null 0: a verdict
    of 'contradicted' where the intended claim is supported."""
    path = tmp_path / "c.toml"
    path.write_text(CLAIM + 'tset = "positive"\nnull_valeu = 1.0\n')
    with pytest.raises(SpecError, match=r"'tset' \(did you mean 'test'\?\).*'null_valeu'"):
        load_claims(path)
    path.write_text(CLAIM + 'test = "positive"\ncaveat = "free text is kept"\n')
    (claim,) = load_claims(path)
    assert claim.test == "positive" and claim.extra == {"caveat": "free text is kept"}


@pytest.mark.parametrize("alpha", [0.5, 0.7])
def test_claims_refuse_alpha_from_one_half(alpha, tmp_path) -> None:
    """At alpha = 0.5 the (1 - 2 alpha) interval is the point estimate: 0.3 +- 0 was
    'supported' as positive with SE 1; at 0.7 the interval was inverted."""
    assert judge(0.3, 1.0, 2.0, test="positive", alpha=0.05)[0] == "contradicted"
    with pytest.raises(SpecError, match=r"alpha in \(0, 0.5\)"):
        judge(0.3, 1.0, 2.0, test="positive", alpha=alpha)
    # a claims run refuses before estimating anything
    (tmp_path / "c.toml").write_text(CLAIM)
    spec = tmp_path / "s.toml"
    spec.write_text(f'{TWFE_ONLY}\n[inference]\nalpha = {alpha}\n[claims]\nfile = "c.toml"\n')
    from zoneimpact.claims import claims_for_spec

    with pytest.raises(SpecError, match=r"\[inference\] alpha"):
        claims_for_spec(load_spec(spec))


def test_a_pre_mean_margin_without_a_pre_mean_is_not_judged() -> None:
    """A TWFE result has no info['pre_mean']: the margin was NaN, a positive claim could
    only be 'supported' and an equivalence claim raised from deep inside."""
    res = twfe.fit(toy(1.0), outcome="y")
    assert "pre_mean" not in res.info
    for test in ("positive", "equivalence"):
        c = Claim(
            id=f"c_{test}", document="d", quote="q", hypothesis="h", estimand="direct",
            test=test, margin=0.5, margin_unit="pre_mean", spec="other.toml", estimate="t",
        )  # fmt: skip
        row = evaluate_claims([c], {"spec:other.toml": {"t": res}}).iloc[0]
        assert row["verdict"] == "not estimable"
        assert "margin_unit 'pre_mean'" in row["note"]


# ---------------------------------------------------------------------- run directories
def test_force_spares_folders_and_files_that_are_not_runs(small, tmp_path, tiny_figures) -> None:  # noqa: F811
    """A folder with someone else's manifest.json (a browser extension) and a data file
    were deleted by --force."""
    ext = tmp_path / "my_extension"
    (ext / "src").mkdir(parents=True)
    (ext / "manifest.json").write_text('{"manifest_version": 3, "name": "x"}')
    (ext / "src" / "background.js").write_text("// hours of work")
    with pytest.raises(RunDirectoryError, match="not an earlier zoneimpact run"):
        write_run(small, ext, force=True)
    assert (ext / "src" / "background.js").read_text() == "// hours of work"
    data = tmp_path / "results_final.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(RunDirectoryError, match="is a file, not an earlier zoneimpact run"):
        write_run(small, data, force=True)
    assert data.read_text() == "a,b\n1,2\n"
    # an earlier run (our manifest) is replaced
    first = write_run(small, tmp_path / "run")
    assert write_run(small, first, force=True) == first
    assert json.loads((first / "manifest.json").read_text())["seed"] == small.spec.seed


def test_the_current_folder_is_refused_through_a_symlinked_parent(
    small,
    tmp_path,
    monkeypatch,
    tiny_figures,  # noqa: F811
) -> None:
    real = tmp_path / "real" / "R"
    real.mkdir(parents=True)
    (real / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(real)
    with pytest.raises(RunDirectoryError, match="current directory"):
        write_run(small, tmp_path / "link" / "R", force=True)
    assert (real / "notes.txt").read_text() == "mine"


def test_a_tilde_in_out_is_the_home_folder(small, tmp_path, monkeypatch, tiny_figures) -> None:  # noqa: F811
    """``--out=~/x`` (left unexpanded by the shell) made a literal ``./~/x``."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = write_run(small, Path("~/runs/a"))
    assert path == tmp_path / "home" / "runs" / "a" and (path / "manifest.json").is_file()
    assert not (tmp_path / "~").exists()


def test_an_interrupted_force_puts_the_earlier_run_back(
    small,
    tmp_path,
    monkeypatch,
    tiny_figures,  # noqa: F811
) -> None:
    """Ctrl-C between --force's two renames left the earlier run hidden as .run.old-*."""
    target = write_run(small, tmp_path / "run")
    before = (target / "manifest.json").read_text()
    real = os.rename

    def interrupted(a, b):
        real(a, b)
        if ".old-" in str(b):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_run(small, target, force=True)
    monkeypatch.setattr(os, "rename", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (target / "manifest.json").read_text() == before


def test_the_manifest_hashes_inputs_as_read(tmp_path, tiny_figures) -> None:  # noqa: F811
    """The spec was hashed when the run was written: an edited spec was recorded as the
    one run, and a deleted one failed the finished run."""
    spec = tmp_path / "s.toml"
    spec.write_text(TWFE_ONLY)
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    out = estimate_all(load_spec(spec))
    spec.write_text(TWFE_ONLY.replace("seed = 7", "seed = 8"))
    path = write_run(out, tmp_path / "edited")
    assert json.loads((path / "manifest.json").read_text())["inputs"] == {str(spec): digest}
    spec.unlink()
    path = write_run(out, tmp_path / "gone")
    assert json.loads((path / "manifest.json").read_text())["inputs"] == {str(spec): digest}


def test_a_claims_run_records_its_claims_file(tmp_path, tiny_figures) -> None:  # noqa: F811
    from zoneimpact.claims import claims_for_spec

    (tmp_path / "c.toml").write_text(CLAIM)
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'{TWFE_ONLY}\n[claims]\nfile = "c.toml"\n[claims.spillover]\nn_boot = 0\n'
        'exposure = "region"\n'
    )
    out = claims_for_spec(load_spec(spec))
    inputs = json.loads((write_run(out, tmp_path / "run") / "manifest.json").read_text())["inputs"]
    claims_file = str((tmp_path / "c.toml").resolve())
    assert inputs[claims_file] == hashlib.sha256((tmp_path / "c.toml").read_bytes()).hexdigest()


def test_claims_check_out_before_estimating(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    spec = tmp_path / "s.toml"
    spec.write_text(TWFE_ONLY)
    import zoneimpact.claims as claims_module

    def never(spec):
        raise AssertionError("estimated before checking --out")

    monkeypatch.setattr(claims_module, "claims_for_spec", never)
    assert cli.main(["claims", "--spec", str(spec), "--out", str(tmp_path / "run")]) == 2
    assert "exists already" in capsys.readouterr().err


def test_a_claims_run_without_estimates_is_written(tmp_path, capsys) -> None:
    """Every claim untestable on these data: the verdicts were printed, then the run failed
    with 'No results given to tabulate'."""
    (tmp_path / "c.toml").write_text(CLAIM.replace('["fdi"]', '["gdp"]'))
    spec = tmp_path / "s.toml"
    spec.write_text(f'{TWFE_ONLY}\n[claims]\nfile = "c.toml"\n')
    assert cli.main(["claims", "--spec", str(spec), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "r" / "claims.csv")
    assert list(table["verdict"]) == ["untestable"]


def test_power_out_keeps_the_earlier_files_when_writing_fails(tmp_path, monkeypatch) -> None:
    import errno
    import types

    from zoneimpact.report import plots

    out = tmp_path / "power"
    out.mkdir()
    (out / "power_curves.csv").write_text("old\n")
    res = types.SimpleNamespace(
        curves=pd.DataFrame({"effect": [0, 1], "power": [0.05, 0.9]}),
        draws=pd.DataFrame({"rep": [1]}),
        info={"n_reps": 2},
    )

    def full(_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "power_curve_plot", full)
    with pytest.raises(OSError, match="No space"):
        cli._write_power(res, pd.DataFrame({"target": ["direct"], "mde": [1.0]}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["power"]
    assert [p.name for p in out.iterdir()] == ["power_curves.csv"]
    assert (out / "power_curves.csv").read_text() == "old\n"


# ---------------------------------------------------------------------- concentration
def test_concentration_options_are_checked_by_name() -> None:
    panel = toy(1.0)
    with pytest.raises(SpecError, match="no option.*'pretrend'"):
        estimate_concentration(panel, "y", kind="hhi", options={"pretrend": 3})
    with pytest.raises(SpecError, match="set by the run itself"):
        estimate_concentration(panel, "y", kind="hhi", options={"outcome": "y"})
    with pytest.raises(SpecError, match="Unknown estimator 'magic'"):
        estimate_concentration(panel, "y", kind="hhi", base_estimator="magic")
    # region_column is documented there and read by run_claims (a reviewer's check)
    parse_spec(
        {
            "data": {"source": "simulate"},
            "estimate": [{"name": "t", "estimator": "twfe", "outcome": "fdi"}],
            "claims": {"concentration": {"options": {"region_column": "province"}}},
        }
    )
    with pytest.raises(SpecError, match=r"\[claims\] concentration: .*'pretrend'"):
        parse_spec(
            {
                "data": {"source": "simulate"},
                "estimate": [{"name": "t", "estimator": "twfe", "outcome": "fdi"}],
                "claims": {"concentration": {"options": {"pretrend": 3}}},
            }
        )


def test_share_of_region_refuses_what_it_would_get_wrong() -> None:
    panel = toy(1.0)
    # a name that is another column (here a covariate-like one) was overwritten in place
    with pytest.raises(PanelError, match="'z' is already a column"):
        share_of_region(panel.replace(data=panel.data.assign(z=1.0)), "y", name="z")
    # outcomes near the float limit: the regional totals were inf and every share 0.0
    big = panel.data.assign(y=1e308)
    with pytest.raises(PanelError, match="overflows in region"):
        share_of_region(panel.replace(data=big), "y")


def test_fits_on_a_covariate_column_still_rescale() -> None:
    """with_outcome's new refusal reached the package's own rescaling: a fit whose outcome
    is a covariate failed once that covariate was extreme (a reviewer's check)."""
    from zoneimpact.estimators import imputation

    panel = toy(1.0)
    panel = panel.replace(data=panel.data.assign(z=panel.data["y"] * 1e25), covariates=("z",))
    res = imputation.fit(panel, outcome="z")
    base = imputation.fit(toy(1.0), outcome="y")
    assert res.info["outcome_rescaled_by"] != 1.0
    assert float(res.terms["estimate"].iloc[0]) / 1e25 == pytest.approx(
        float(base.terms["estimate"].iloc[0]), rel=1e-12
    )
