"""A spec's [data] table as the user wrote it: treated_units on periods counted from 0 or
centred, keys of another source, the separator of a .tsv, a Parquet file saved with its
index, and CLI errors that name spec keys rather than Python calls.

Reference numbers come from an equivalent path the old code already handled: the same
seeded panel with calendar years 2000-2004 (where no period is 0, so "0 = never" cannot
catch a treated unit). Shifting every period and first-treated period by the same
constant leaves every 2x2 comparison of Callaway-Sant'Anna unchanged, so the estimates
agree to rounding (tolerance 1e-10: the same sums in the same order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact import cli
from zoneimpact.datasets import load_data
from zoneimpact.errors import SpecError, ZoneImpactError
from zoneimpact.estimators import callaway_santanna
from zoneimpact.spec import DataSpec, load_spec, parse_spec

# units listed as treated, by their first treated period on the calendar-year scale:
# u00-u03 from the first year (always treated), u04-u11 from 2003, u12-u19 from 2004
TREATED_YEARS = {f"u{i:02d}": 2000 if i < 4 else 2003 if i < 12 else 2004 for i in range(20)}
N_UNITS = 60


def _frame(first_period: int, seed: int = 5) -> pd.DataFrame:
    """60 units x 5 periods first_period..first_period+4; effect 1 on treated unit-periods
    (cohorts as TREATED_YEARS shifted to this scale), unit and period effects, noise."""
    rng = np.random.default_rng(seed)
    units = [f"u{i:02d}" for i in range(N_UNITS)]
    shift = first_period - 2000
    rows = []
    alpha = rng.normal(size=len(units))
    for k, u in enumerate(units):
        g = TREATED_YEARS.get(u)
        for t in range(5):
            year = 2000 + t
            treated = g is not None and year >= g
            y = alpha[k] + 0.3 * t + 1.0 * treated + rng.normal(scale=0.3)
            rows.append({"unit": u, "period": year + shift, "y": y})
    return pd.DataFrame(rows)


def _treated_units(first_period: int, drop: tuple[str, ...] = ()) -> str:
    shift = first_period - 2000
    return ", ".join(f"{u} = {g + shift}" for u, g in TREATED_YEARS.items() if u not in drop)


def _spec(tmp_path, body: str, name: str = "spec.toml"):
    path = tmp_path / name
    path.write_text(
        'title = "t"\nseed = 1\n'
        + body
        + '\n[[estimate]]\nname = "tw"\nestimator = "twfe"\noutcome = "y"\n'
    )
    return path


def _file_spec(tmp_path, data_file: str, first_period: int, extra: str = "") -> str:
    return _spec(
        tmp_path,
        f'[data]\npath = "{data_file}"\nunit = "unit"\ntime = "period"\noutcomes = ["y"]\n'
        f"treated_units = {{{_treated_units(first_period)}}}\n{extra}",
        f"{data_file}.{len(extra)}.toml",
    )


def _cs_att(spec_path) -> tuple[float, dict]:
    spec = load_spec(spec_path)
    loaded = load_data(spec, np.random.default_rng(0))
    res = callaway_santanna.fit(loaded.panel, outcome="y", bootstrap=False)
    return float(res.estimate), loaded.panel.report


@pytest.fixture
def reference(tmp_path) -> tuple[float, dict]:
    """CS ATT of the calendar-year panel with outside_window = "adjust" (u00-u03,
    treated from the first year 2000, are dropped as always treated)."""
    _frame(2000).to_csv(tmp_path / "years.csv", index=False)
    return _cs_att(_file_spec(tmp_path, "years.csv", 2000, 'outside_window = "adjust"'))


def test_reference_path_drops_the_units_treated_from_the_first_year(reference):
    att, report = reference
    assert sorted(report["dropped_always_treated"]) == ["u00", "u01", "u02", "u03"]
    assert report["cohort_sizes"]["never"] == 40  # the 40 units not listed
    # the true effect is 1; noise sd 0.3 on 16 treated units: the ATT's SE is about 0.1
    assert 0.6 < att < 1.4


def test_treated_units_from_period_0_are_treated_not_controls(tmp_path, reference):
    # old code: unlisted units were coded 0 = never, so u00-u03 (listed as treated from
    # period 0) became never-treated controls and the run went ahead with them as controls
    _frame(0).to_csv(tmp_path / "zero.csv", index=False)
    with pytest.raises(ZoneImpactError, match=r"'u00' has cohort 0"):
        _cs_att(_file_spec(tmp_path, "zero.csv", 0))
    att, report = _cs_att(_file_spec(tmp_path, "zero.csv", 0, 'outside_window = "adjust"'))
    assert sorted(report["dropped_always_treated"]) == ["u00", "u01", "u02", "u03"]
    assert report["cohort_sizes"]["never"] == 40
    assert att == pytest.approx(reference[0], abs=1e-10)  # reference: calendar years


def test_treated_units_on_centred_periods(tmp_path, reference):
    # old code: refused with an error about the internal column '_cohort' and never_values,
    # which a spec cannot set
    _frame(-2).to_csv(tmp_path / "centred.csv", index=False)
    att, report = _cs_att(_file_spec(tmp_path, "centred.csv", -2, 'outside_window = "adjust"'))
    assert sorted(report["dropped_always_treated"]) == ["u00", "u01", "u02", "u03"]
    assert att == pytest.approx(reference[0], abs=1e-10)  # reference: calendar years


@pytest.mark.parametrize(
    ("data", "stray", "source"),
    [
        (
            '[data]\nsource = "simulate"\npath = "x.csv"\nunit = "id"\noutcomes = ["fdi"]\n'
            "[data.simulate]\nn_units = 200\n",
            "['path', 'unit']",
            "simulate",
        ),
        (
            '[data]\npath = "x.csv"\ncohort = "g"\noutcomes = ["y"]\n'
            '[data.simulate]\nn_units = 200\n[data.china]\ndataset = "wanjiang"\n',
            "['simulate', 'china']",
            "file",
        ),
        (
            '[data]\nsource = "china"\noutcomes = ["fdi"]\noutside_window = "error"\n',
            "['outside_window']",
            "china",
        ),
    ],
)
def test_keys_of_another_source_are_refused(data, stray, source):
    # old code: parsed, and the keys were silently ignored (the run used the simulator)
    import tomllib

    raw = tomllib.loads(
        'title = "t"\n' + data + '[[estimate]]\nname = "a"\nestimator = "twfe"\noutcome = "y"\n'
    )
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    msg = str(info.value)
    assert f'source = "{source}" does not use key(s) {stray}' in msg
    assert f'The keys of source = "{source}" are:' in msg and "outcomes" in msg


def test_estimate_block_data_is_checked_the_same_way():
    raw = {
        "data": {"source": "simulate"},
        "estimate": [
            {
                "name": "a",
                "estimator": "twfe",
                "outcome": "fdi",
                "data": {"source": "simulate", "cohort": "g"},
            }
        ],
    }
    with pytest.raises(SpecError, match=r"\[estimate\.data\] source = \"simulate\" does not use"):
        parse_spec(raw)


def test_simulated_covariates_must_exist(tmp_path):
    # old code: [data] covariates was ignored under source = "simulate"
    spec = load_spec(
        _spec(tmp_path, '[data]\nsource = "simulate"\noutcomes = ["fdi"]\ncovariates = ["lpop"]\n')
    )
    with pytest.raises(SpecError, match=r"covariates.*\['x'\].*not \['lpop'\]"):
        load_data(spec, np.random.default_rng(0))
    load_data(load_spec(), np.random.default_rng(0))  # the bundled spec: covariates = ["x"]


def test_tsv_is_read_with_a_tab(tmp_path, reference):
    # old code: DataSpec.sep = "," overrode the tab default of .tsv: one column, an error
    frame = _frame(2000)
    frame.to_csv(tmp_path / "years.tsv", sep="\t", index=False)
    att, _ = _cs_att(_file_spec(tmp_path, "years.tsv", 2000, 'outside_window = "adjust"'))
    assert att == pytest.approx(reference[0], abs=1e-10)  # reference: the same data as CSV
    frame.to_csv(tmp_path / "semi.txt", sep=";", index=False)
    extra = 'outside_window = "adjust"\nsep = ";"'
    att, _ = _cs_att(_file_spec(tmp_path, "semi.txt", 2000, extra))
    assert att == pytest.approx(reference[0], abs=1e-10)  # a set sep is still used
    assert DataSpec().sep is None  # by extension


def test_parquet_saved_with_its_index(tmp_path, reference):
    # old code: "call frame.reset_index() first", which a spec user cannot do
    pytest.importorskip("pyarrow")
    _frame(2000).set_index(["unit", "period"]).to_parquet(tmp_path / "years.parquet")
    att, _ = _cs_att(_file_spec(tmp_path, "years.parquet", 2000, 'outside_window = "adjust"'))
    assert att == pytest.approx(reference[0], abs=1e-10)  # reference: the same data as CSV


def _cli_error(spec_path, tmp_path, capsys) -> str:
    code = cli.main(["estimate", "--spec", str(spec_path), "--out", str(tmp_path / "run")])
    assert code == 2
    return capsys.readouterr().err


def test_cli_errors_name_spec_keys(tmp_path, capsys):
    # old code: "Add them with Panel.from_frame(..., covariates=[...])",
    # "Pass outside_window='adjust'" and "pass never_values=()"
    _frame(2000).assign(x=1.0, g=0).to_csv(tmp_path / "years.csv", index=False)
    spec = _spec(
        tmp_path,
        '[data]\npath = "years.csv"\nunit = "unit"\ntime = "period"\ncohort = "g"\n'
        'outcomes = ["y"]\n'
        '[[estimate]]\nname = "cs"\nestimator = "callaway_santanna"\noutcome = "y"\n'
        'options = {bootstrap = false, covariates = ["x"]}\n',
    )
    err = _cli_error(spec, tmp_path, capsys)
    assert "[data] covariates = [...]" in err and "Panel.from_frame" not in err

    _frame(0).to_csv(tmp_path / "zero.csv", index=False)
    err = _cli_error(_file_spec(tmp_path, "zero.csv", 0), tmp_path, capsys)
    assert 'Set [data] outside_window = "adjust" in the spec' in err
    assert "outside_window='adjust'" not in err

    # a cohort column holding 0 on centred periods (0 is an observed period)
    _frame(-2).assign(g=0).to_csv(tmp_path / "centred.csv", index=False)
    spec = _spec(
        tmp_path,
        '[data]\npath = "centred.csv"\nunit = "unit"\ntime = "period"\ncohort = "g"\n'
        'outcomes = ["y"]\n',
        "centred.toml",
    )
    err = _cli_error(spec, tmp_path, capsys)
    assert "[data] treated_units" in err and "never_values=(" not in err
