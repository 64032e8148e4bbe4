"""Data-parallel estimation on Dask (issue 19 item 2): the estimators of
``zoneimpact.distributed``, run on a two-worker local cluster over partitioned Parquet, equal
the in-memory estimators to 1e-10.

Tolerance: both sides compute the same formulas; only the order of floating-point sums
differs (per partition, then across partitions), which moves results by ~1e-16 relative.
1e-10 (absolute, on numbers of order 0.01-10) leaves room for the logit's Newton steps
stopping one step apart, and cannot hide a wrong formula, a missing term or a wrong weight
(those move the estimates or SEs by 1e-4 or more).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import needs_data
from zoneimpact import Panel
from zoneimpact.errors import EstimationError, PanelError, SpecError
from zoneimpact.estimators import callaway_santanna, imputation, twfe

distributed = pytest.importorskip("distributed")
zd = pytest.importorskip("zoneimpact.distributed")
zd_imputation = pytest.importorskip("zoneimpact.distributed.imputation")

TOL = 1e-10


def _write(frame: pd.DataFrame, folder: Path, n_files: int, seed: int = 0) -> str:
    """The rows shuffled and split over ``n_files`` Parquet files (units spread across
    files, as a real extract would be), returning the glob."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = frame.sample(frac=1.0, random_state=seed)
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), n_files)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return str(folder / "*.parquet")


def _simulated(seed: int = 7, n: int = 400, n_t: int = 8) -> pd.DataFrame:
    """Staggered panel with a covariate that shifts timing and trends, sampling weights,
    regions, and holes (unbalanced rows and missing outcomes)."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    cohort = rng.choice([0, 4, 5, 7], size=n, p=[0.35, 0.25, 0.2, 0.2])
    unit = np.repeat(np.array([f"u{i:04d}" for i in range(n)]), n_t)
    t = np.tile(np.arange(1, n_t + 1), n)
    g = np.repeat(cohort, n_t)
    x = np.repeat(x0, n_t) + 0.3 * rng.normal(size=n * n_t)
    eff = np.where((g > 0) & (t >= g), 1.0 + 0.2 * (t - g), 0.0)
    y = np.repeat(rng.normal(size=n), n_t) + 0.1 * t + 0.2 * x * t / n_t + eff
    y = y + rng.normal(size=n * n_t)
    frame = pd.DataFrame(
        {
            "id": unit,
            "year": t,
            "first": g,
            "y": y,
            "x": x,
            "pop": np.repeat(rng.uniform(0.5, 3.0, size=n), n_t),
            "region": np.repeat(rng.integers(0, 25, size=n), n_t).astype(float),
        }
    )
    keep = rng.random(len(frame)) > 0.06  # unbalanced: 6% of unit-periods absent
    frame = frame[keep].reset_index(drop=True)
    frame.loc[rng.random(len(frame)) < 0.03, "y"] = np.nan  # and some missing outcomes
    return frame


def _assert_cs_equal(a, b) -> None:
    assert list(a.terms["term"]) == list(b.terms["term"])
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    cols = ["cohort", "time", "base_period", "n_treated", "n_control"]
    pd.testing.assert_frame_equal(a.att_gt[cols], b.att_gt[cols], check_dtype=False)
    np.testing.assert_allclose(b.att_gt["estimate"], a.att_gt["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.att_gt["se"], a.att_gt["se"], rtol=0, atol=TOL)
    np.testing.assert_array_equal(a.units, b.units)
    np.testing.assert_allclose(b.term_influence, a.term_influence, rtol=0, atol=1e-8)
    assert a.n_obs == b.n_obs and a.n_units == b.n_units


@pytest.fixture(scope="module")
def mpdta_parts(client, tmp_path_factory, request):
    from tests.conftest import CANONICAL

    path = CANONICAL / "mpdta.csv"
    if not path.exists():
        pytest.skip(f"missing shared data file {path}")
    frame = pd.read_csv(path)
    glob = _write(frame, tmp_path_factory.mktemp("mpdta"), n_files=3)
    dp = zd.read_panel(
        glob, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat",
        covariates=["lpop"], npartitions=3,
    )  # fmt: skip
    panel = Panel.from_frame(
        frame, unit="countyreal", time="year", outcomes=["lemp"], cohort="first.treat",
        covariates=["lpop"],
    )  # fmt: skip
    return panel, dp


@needs_data("canonical/mpdta.csv")
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"control_group": "not_yet_treated"},
        {"covariates": ["lpop"], "est_method": "reg"},
        {"covariates": ["lpop"], "est_method": "ipw"},
        {"covariates": ["lpop"], "est_method": "dr"},
        {"covariates": ["lpop"], "control_group": "not_yet_treated", "base_period": "universal"},
    ],
)
def test_cs_on_mpdta_equals_in_memory(mpdta_parts, options) -> None:
    panel, dp = mpdta_parts
    a = callaway_santanna.fit(panel, outcome="lemp", bootstrap=False, **options)
    b = zd.callaway_santanna(dp, outcome="lemp", bootstrap=False, **options)
    _assert_cs_equal(a, b)
    assert b.info["engine"] == "dask"
    assert b.info["est_method"] == a.info["est_method"]


@needs_data("canonical/mpdta.csv")
def test_cs_result_aggregates_and_reinfers_like_in_memory(mpdta_parts) -> None:
    panel, dp = mpdta_parts
    a = callaway_santanna.fit(panel, outcome="lemp", n_boot=199, rng=11)
    b = zd.callaway_santanna(dp, outcome="lemp", n_boot=199, rng=11)
    # same multiplier draws (same label-free unit order and generator): same bootstrap SEs
    _assert_cs_equal(a, b)
    np.testing.assert_allclose(b.terms["band_low"], a.terms["band_low"], rtol=0, atol=TOL)
    a2, b2 = a.aggregate("group", max_e=2), b.aggregate("group", max_e=2)
    _assert_cs_equal(a2, b2)
    labels = pd.Series(panel.units % 9, index=panel.units, name="state")
    a3 = a.with_inference("analytic", cluster=labels)
    b3 = b.with_inference("analytic", cluster=labels)
    _assert_cs_equal(a3, b3)


@pytest.fixture(scope="module")
def simulated(client, tmp_path_factory):
    frame = _simulated()
    glob = _write(frame, tmp_path_factory.mktemp("sim"), n_files=4)
    dp = zd.read_panel(
        glob, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["x"],
        weights="pop", cluster="region", npartitions=4,
    )  # fmt: skip
    panel = Panel.from_frame(
        frame, unit="id", time="year", outcomes=["y"], cohort="first",
        covariates=["x", "pop", "region"],
    )  # fmt: skip
    return panel, dp


@pytest.mark.parametrize(
    "options",
    [
        {"control_group": "not_yet_treated", "anticipation": 1},
        {"covariates": ["x"], "est_method": "dr"},
        {"covariates": ["x"], "est_method": "ipw", "control_group": "not_yet_treated"},
        {"covariates": ["x"], "est_method": "reg", "base_period": "universal"},
    ],
)
def test_cs_on_unbalanced_weighted_clustered_parquet(simulated, options) -> None:
    panel, dp = simulated
    a = callaway_santanna.fit(
        panel, outcome="y", bootstrap=False, weights="pop", cluster="region", **options
    )
    b = zd.callaway_santanna(
        dp, outcome="y", bootstrap=False, weights=True, cluster=True, **options
    )
    assert a.info["unbalanced"] and b.info["unbalanced"]
    assert b.info["n_clusters"] == a.info["n_clusters"] == 25
    _assert_cs_equal(a, b)


@needs_data("canonical/mpdta.csv")
def test_twfe_on_mpdta_equals_in_memory(mpdta_parts) -> None:
    panel, dp = mpdta_parts
    for ssc in ("statsmodels", "fixest"):
        a = twfe.fit(panel, outcome="lemp", ssc=ssc)
        b = zd.twfe(dp, outcome="lemp", ssc=ssc)
        np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
        np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
        assert b.n_obs == a.n_obs and b.info["n_clusters"] == a.info["n_clusters"]


def test_twfe_unbalanced_with_covariate_and_clusters(simulated) -> None:
    panel, dp = simulated
    a = twfe.fit(panel, outcome="y", covariates=["x"], cluster="region")
    b = zd.twfe(dp, outcome="y", covariates=["x"], cluster=True)
    assert list(a.terms["term"]) == list(b.terms["term"])
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(b.vcov), np.asarray(a.vcov), rtol=0, atol=TOL)
    # unbalanced: the projections needed more than the one sweep of a balanced panel
    assert b.info["sweeps"] > 2


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cluster": "region"},
        {"aux_partition": "none", "horizons": [0, 2]},
        {"aux_partition": "event"},
        {"cluster": "region", "leave_out": True},
        {"leave_out": True, "aux_partition": "none", "horizons": [0, 2]},
        # unbalanced cohort cells under region clusters: eq. 8's tau~ is not a cell mean
        {"cluster": "region", "aux_partition": "cohort"},
        {"cluster": "region", "aux_partition": "cohort", "leave_out": True},
    ],
)
def test_imputation_on_unbalanced_parquet_equals_in_memory(simulated, options) -> None:
    panel, dp = simulated
    a = imputation.fit(panel, outcome="y", **options)
    b = zd.imputation(dp, outcome="y", **options)
    assert list(a.terms["term"]) == list(b.terms["term"])
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(b.vcov), np.asarray(a.vcov), rtol=0, atol=TOL)
    for key in ("n_clusters", "n_untreated_obs", "n_treated_obs"):
        assert b.info[key] == a.info[key], key
    assert (b.n_obs, b.n_units) == (a.n_obs, a.n_units)
    # a short panel: step 1 and the implied weights are solved from the reduced normal
    # equations, one pass each
    assert b.info["sweeps"] == b.info["implied_weight_sweeps"] == 1


@pytest.mark.parametrize(
    ("options", "why"),
    [({}, "long"), ({"cluster": "region", "leave_out": True}, "long"), ({}, "not_pd")],
)
def test_imputation_iterated_as_for_long_panels_equals_in_memory(
    simulated, options, why, monkeypatch
) -> None:
    # panels longer than _DIRECT_MAX_PERIODS iterate (alternating projections for step 1,
    # Gauss-Seidel for the implied weights), and so does a reduced system that rounding
    # leaves not positive definite: forced here on the short test panel, the iterations
    # reach the in-memory fit to the same 1e-10 as the direct solve
    panel, dp = simulated
    a = imputation.fit(panel, outcome="y", **options)
    if why == "long":
        monkeypatch.setattr(zd_imputation, "_DIRECT_MAX_PERIODS", 0)
    else:

        def not_pd(*args, **kwargs):
            raise np.linalg.LinAlgError("not positive definite")

        monkeypatch.setattr(zd_imputation.linalg, "cho_factor", not_pd)
    b = zd.imputation(dp, outcome="y", **options)
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    # unbalanced: the iterations needed many passes where the direct solve needs one
    assert b.info["sweeps"] > 5 and b.info["implied_weight_sweeps"] > 5


def test_a_missing_cluster_label_is_named(client, tmp_path) -> None:
    frame = _simulated(n=40)
    frame["region"] = frame["region"].astype(object)
    frame.loc[frame["id"] == "u0006", "region"] = None
    dp = zd.read_panel(
        _write(frame, tmp_path / "nan", n_files=2),
        unit="id", time="year", outcomes=["y"], cohort="first", cluster="region",
    )  # fmt: skip
    with pytest.raises(EstimationError, match="cluster column is missing for unit 'u0006'"):
        zd.imputation(dp, outcome="y", cluster=True)


def test_bad_input_is_named(client, tmp_path) -> None:
    frame = _simulated(n=40)
    dup = pd.concat([frame, frame.iloc[[5]]])
    glob = _write(dup, tmp_path / "dup", n_files=2)
    unit, year = frame.iloc[5]["id"], frame.iloc[5]["year"]
    with pytest.raises(PanelError, match=rf"{unit}.*period {year}"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first")
    moved = frame.copy()
    moved.loc[moved.index[moved["id"] == "u0003"][0], "first"] = 99
    glob = _write(moved, tmp_path / "coh", n_files=2)
    with pytest.raises(PanelError, match="'first' varies within unit 'u0003'"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first")
    # the user's column name, not the stored one ('weight'): before, "Column 'weight' ..."
    wv = frame.assign(wt=1.0)
    wv.loc[wv.index[wv["id"] == "u0003"][0], "wt"] = 2.0
    glob = _write(wv, tmp_path / "wv", n_files=2)
    with pytest.raises(PanelError, match="'wt' varies within unit 'u0003'"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first", weights="wt")
    late = frame[frame["year"] <= 6]
    glob = _write(late, tmp_path / "late", n_files=2)
    with pytest.raises(PanelError, match="has cohort 7 but the data end in 6"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first")
    text = frame.assign(y=frame["y"].astype(str))
    glob = _write(text, tmp_path / "text", n_files=2)
    with pytest.raises(PanelError, match=r"Column\(s\) \['y'\] must be numeric"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first")
    with pytest.raises(PanelError, match=r"Column\(s\) \['nope'\]"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["nope"], cohort="first")
    holes = frame.copy()
    holes.loc[(holes["id"] == "u0002") & (holes["year"] == 3), "x"] = np.nan
    glob = _write(holes, tmp_path / "holes", n_files=2)
    dp = zd.read_panel(
        glob, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["x"]
    )
    if not ((holes["id"] == "u0002") & (holes["year"] == 3)).any():
        pytest.fail("the simulated panel lost the row this test needs")
    with pytest.raises(PanelError, match="Covariate 'x' is missing for unit 'u0002' in period 3"):
        zd.callaway_santanna(
            dp, outcome="y", covariates=["x"], control_group="not_yet_treated", bootstrap=False
        )
    with pytest.raises(SpecError, match="control_group"):
        zd.callaway_santanna(dp, outcome="y", control_group="everyone")
    with pytest.raises(SpecError, match="without a cluster column"):
        zd.twfe(dp, outcome="y", cluster=True)
    from zoneimpact.distributed._spec import estimator

    with pytest.raises(SpecError, match="'synthetic_did' has no data-parallel version"):
        estimator("synthetic_did", {})
    with pytest.raises(SpecError, match=r"\['fixed_effects'\] of 'twfe' are not supported"):
        estimator("twfe", {"fixed_effects": ["unit", "region:time"]})


_SPEC = """
seed = 5
title = "Dask engine"

[data]
engine = "{engine}"
path = "{path}"
unit = "id"
time = "year"
cohort = "first"
outcomes = ["y"]
covariates = ["x"]

[[estimate]]
name = "cs_dr"
estimator = "callaway_santanna"
outcome = "y"
[estimate.options]
covariates = ["x"]
control_group = "not_yet_treated"
cluster = "region"
n_boot = 99

[[estimate]]
name = "twfe"
estimator = "twfe"
outcome = "y"
[estimate.options]
cluster = "region"

[[estimate]]
name = "bjs"
estimator = "imputation"
outcome = "y"
[estimate.options]
cluster = "region"
"""


def test_spec_engine_dask_from_the_command_line(client, tmp_path, capsys) -> None:
    """``[data] engine = "dask"`` with a Parquet glob and ``--scheduler``: the same
    results.json numbers as the in-memory engine on the same rows (one Parquet file)."""
    import json

    from zoneimpact.cli import main
    from zoneimpact.run import estimate_all
    from zoneimpact.spec import load_spec

    frame = _simulated(seed=3, n=200)
    glob = _write(frame, tmp_path / "parts", n_files=3)
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    records = {}
    for engine, path in (("dask", glob), ("pandas", str(tmp_path / "whole.parquet"))):
        spec = tmp_path / f"{engine}.toml"
        text = _SPEC.replace("{engine}", engine).replace("{path}", path)
        if engine == "pandas":
            text = text.replace('covariates = ["x"]\n\n[[', 'covariates = ["x", "region"]\n\n[[')
        spec.write_text(text)
        if engine == "dask":
            args = ["estimate", "--spec", str(spec), "--out", str(tmp_path / engine), "--quiet"]
            assert main([*args, "--scheduler", client.scheduler.address]) == 0
            out = json.loads((tmp_path / engine / "results.json").read_text())["results"]
        else:  # the in-memory reference without writing a second run directory
            out = estimate_all(load_spec(spec)).records
        records[engine] = {(r["name"], r["term"]): r for r in out}
    assert records["dask"].keys() == records["pandas"].keys()
    for key, rec in records["pandas"].items():
        for field in ("estimate", "se"):
            a, b = rec[field], records["dask"][key][field]
            # results.json rounds to 12 significant digits
            assert (a is None and b is None) or abs(a - b) <= 1e-10 * max(1.0, abs(a)), key
    from zoneimpact.datasets import load_data

    with pytest.raises(SpecError, match="claims and power need the panel in memory"):
        load_data(load_spec(tmp_path / "dask.toml"), np.random.default_rng(0))
    capsys.readouterr()
    bad = ["estimate", "--spec", str(tmp_path / "pandas.toml"), "--scheduler", "tcp://x:1"]
    assert main([*bad, "--out", str(tmp_path / "never")]) == 2
    assert '--scheduler tcp://x:1 needs [data] engine = "dask"' in capsys.readouterr().err


def test_empty_partitions_and_no_cluster(tmp_path) -> None:
    """More partitions than units (most of them empty) and Dask's threaded scheduler
    instead of a cluster: the same numbers."""
    import dask

    frame = _simulated(n=30, seed=11)
    glob = _write(frame, tmp_path / "few", n_files=3)
    panel = Panel.from_frame(
        frame, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["x"]
    )
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cells without controls in so small a panel
        dp = zd.read_panel(
            glob, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["x"],
            npartitions=40,
        )  # fmt: skip
        pairs = [
            (callaway_santanna.fit, zd.callaway_santanna, {"bootstrap": False}),
            (
                callaway_santanna.fit,
                zd.callaway_santanna,
                {"bootstrap": False, "covariates": ["x"], "est_method": "reg"},
            ),
            (twfe.fit, zd.twfe, {}),
            (imputation.fit, zd.imputation, {}),
        ]
        for in_memory, on_dask, options in pairs:
            a = in_memory(panel, outcome="y", **options)
            b = on_dask(dp, outcome="y", **options)
            np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
            np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)


def test_treatment_indicator_gives_the_cohorts(client, tmp_path) -> None:
    """``treatment=`` (0/1 absorbing) derives each unit's cohort as ``from_frame`` does;
    a unit that leaves treatment is named with its period."""
    frame = _simulated(n=120, seed=5)
    frame["d"] = ((frame["first"] > 0) & (frame["year"] >= frame["first"])).astype(int)
    # a unit not observed in the period just before its first 1 could have opened its zone
    # in the gap: both engines refuse it, naming a unit (6% of rows are missing here)
    seen = set(zip(frame["id"], frame["year"], strict=True))
    first = frame.loc[frame["d"] == 1].groupby("id")["year"].min()
    gapped = sorted(u for u, g in first.items() if g > 1 and (u, g - 1) not in seen)
    assert len(gapped) >= 2
    kw = {"unit": "id", "time": "year", "outcomes": ["y"], "treatment": "d"}
    msg = rf"turns on for unit '({'|'.join(gapped)})'.*not observed in period"
    with pytest.raises(PanelError, match=msg):
        Panel.from_frame(frame, **kw)
    with pytest.raises(PanelError, match=msg):
        zd.read_panel(_write(frame, tmp_path / "gap", n_files=2), **kw)
    frame = frame[~frame["id"].isin(gapped)].reset_index(drop=True)
    glob = _write(frame, tmp_path / "d", n_files=2)
    dp = zd.read_panel(glob, **kw)
    panel = Panel.from_frame(frame, **kw)
    a = callaway_santanna.fit(panel, outcome="y", bootstrap=False)
    b = zd.callaway_santanna(dp, outcome="y", bootstrap=False)
    _assert_cs_equal(a, b)
    # the same cohorts as the first treated periods the data were built from
    firsts = frame.drop_duplicates("id").set_index("id")["first"].replace(0, np.inf)
    assert (panel.unit_cohort.reindex(firsts.index) == firsts).all()
    # a string of never-codes is refused, not read character by character
    with pytest.raises(SpecError, match="never_values must be an iterable"):
        zd.read_panel(
            glob, unit="id", time="year", outcomes=["y"], cohort="first", never_values="10"
        )
    off = frame.copy()
    row = off.index[(off["id"] == off.loc[off["d"] == 1, "id"].iloc[0]) & (off["d"] == 1)][-1]
    off.loc[row, "d"] = 0
    unit, year = off.loc[row, "id"], off.loc[row, "year"]
    glob = _write(off, tmp_path / "off", n_files=2)
    with pytest.raises(PanelError, match=rf"not absorbing: unit '{unit}'.*untreated in {year}"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], treatment="d")


def test_unidentified_treated_rows_warn_as_in_memory(client, tmp_path) -> None:
    """A unit first observed after its zone has no imputable Y(0): both engines leave its
    treated rows out and say so (the Dask path counted them in info only)."""
    frame = _simulated(n=60)
    late = frame["first"].eq(4) & frame["year"].lt(4)
    victim = frame.loc[late, "id"].iloc[0]
    frame = frame[~(late & frame["id"].eq(victim))].reset_index(drop=True)
    panel = Panel.from_frame(frame, unit="id", time="year", outcomes=["y"], cohort="first")
    dp = zd.read_panel(
        _write(frame, tmp_path / "late", n_files=2),
        unit="id", time="year", outcomes=["y"], cohort="first",
    )  # fmt: skip
    with pytest.warns(UserWarning, match="no imputable Y\\(0\\)") as rec:
        a = imputation.fit(panel, outcome="y")
    with pytest.warns(UserWarning, match="no imputable Y\\(0\\)") as rec_dask:
        b = zd.imputation(dp, outcome="y")
    # the victim's observed post-zone rows (years 4-8, less any absent or missing)
    n_lost = int(frame.loc[frame["id"].eq(victim), "y"].notna().sum())
    assert n_lost > 0
    assert a.info["n_dropped_unidentified"] == b.info["n_dropped_unidentified"] == n_lost
    assert f"{n_lost} treated unit-period(s)" in str(rec_dask[0].message)
    assert rec_dask[0].filename == __file__ and rec[0].filename == __file__
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)


# ------------------------------------------------- a breaker's inputs (session 20)
def _pair(frame: pd.DataFrame, folder: Path, **read):
    """The same frame in memory and on Dask (two files, units spread across them)."""
    covs = read.pop("covariates", [])
    dp = zd.read_panel(
        _write(frame, folder, n_files=2), unit="id", time="year", outcomes=["y"],
        cohort="first", covariates=covs, **read,
    )  # fmt: skip
    extra = [read[k] for k in ("weights",) if k in read]
    panel = Panel.from_frame(
        frame, unit="id", time="year", outcomes=["y"], cohort="first",
        covariates=[*covs, *extra], never_values=read.get("never_values", (0,)),
    )  # fmt: skip
    return panel, dp


def test_a_never_code_that_is_a_period_is_refused_as_in_memory(client, tmp_path) -> None:
    """Years since 2004: the 2004 cohort is coded 0, the never-treated NaN. Dask read the
    cohort-0 units as never treated (imputation ATT 0.499 against 1.327) without a word."""
    frame = _simulated(n=120)
    frame["year"] -= 4
    frame["first"] = np.where(frame["first"] > 0, frame["first"] - 4, np.nan)
    with pytest.raises(PanelError, match="both a never-treated code"):
        zd.read_panel(
            _write(frame, tmp_path / "a", n_files=2), unit="id", time="year", outcomes=["y"],
            cohort="first",
        )  # fmt: skip
    panel, dp = _pair(frame, tmp_path / "b", never_values=())
    a, b = imputation.fit(panel, outcome="y"), zd.imputation(dp, outcome="y")
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)


def test_a_fractional_cohort_is_refused(client, tmp_path) -> None:
    frame = _simulated(n=40)
    frame["first"] = frame["first"].astype(float)
    frame.loc[frame["id"] == frame.loc[frame["first"] == 4, "id"].iloc[0], "first"] = 4.5
    with pytest.raises(PanelError, match="must hold whole periods"):
        zd.read_panel(
            _write(frame, tmp_path, n_files=2), unit="id", time="year", outcomes=["y"],
            cohort="first",
        )  # fmt: skip


def test_cs_uses_the_weights_only_when_asked(simulated) -> None:
    """The panel is read with weights; an unweighted fit used them anyway (ATT 1.3803
    against the in-memory unweighted 1.3562 and weighted 1.3821)."""
    panel, dp = simulated
    a = callaway_santanna.fit(panel, outcome="y", bootstrap=False)
    b = zd.callaway_santanna(dp, outcome="y", bootstrap=False)
    _assert_cs_equal(a, b)


@pytest.mark.parametrize("shift", [("x", 1e9, 0.0), ("x", 0.0, 1e12), ("x", 0.0, 1e-12)])
def test_cs_covariate_units_do_not_matter(client, tmp_path, shift) -> None:
    """Dask CS did not standardise: every DR cell 'singular' at x + 1e9 or x * 1e12, and
    IPW SEs off by up to 3e-3 relative at x + 1e7."""
    col, add, mul = shift
    frame = _simulated(n=200)
    frame[col] = frame[col] * (mul or 1.0) + add
    panel, dp = _pair(frame, tmp_path, covariates=[col])
    for method in ("dr", "ipw"):
        opts = {"covariates": [col], "est_method": method, "bootstrap": False}
        _assert_cs_equal(
            callaway_santanna.fit(panel, outcome="y", **opts),
            zd.callaway_santanna(dp, outcome="y", **opts),
        )


def test_an_outcome_offset_and_covariate_units_leave_twfe_and_imputation(client, tmp_path) -> None:
    """y + 1000 stalled both fits' sweeps ('did not converge', 'weakly connected'); x * 1e9
    was called collinear and x * 1e-12 absorbed, where in memory nothing moves."""
    frame = _simulated(n=200)
    frame["y"] += 1000.0
    frame["big"], frame["tiny"] = frame["x"] * 1e9, frame["x"] * 1e-12
    panel, dp = _pair(frame, tmp_path, covariates=["x", "big", "tiny"])
    a, b = imputation.fit(panel, outcome="y"), zd.imputation(dp, outcome="y")
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    for cov in ("x", "big", "tiny"):
        a, b = (
            twfe.fit(panel, outcome="y", covariates=[cov]),
            zd.twfe(dp, outcome="y", covariates=[cov]),
        )
        # the att row on the outcome's scale; the covariate's own coefficient scales with it
        np.testing.assert_allclose(
            b.terms["estimate"].iloc[0], a.terms["estimate"].iloc[0], atol=TOL
        )
        np.testing.assert_allclose(b.terms["se"].iloc[0], a.terms["se"].iloc[0], atol=TOL)
        np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=1e-8)


def test_one_column_in_two_roles_is_named(tmp_path) -> None:
    """cluster= the unit column gave a raw KeyError from the shuffle."""
    glob = _write(_simulated(n=20), tmp_path, n_files=1)
    with pytest.raises(SpecError, match="'id' is given as both unit and cluster.*default"):
        zd.read_panel(glob, unit="id", time="year", outcomes=["y"], cohort="first", cluster="id")


def test_cs_warns_about_a_unit_without_outcomes_as_in_memory(client, tmp_path) -> None:
    frame = _simulated(n=60)
    frame.loc[frame["id"] == "u0003", "y"] = np.nan
    panel, dp = _pair(frame, tmp_path)
    with pytest.warns(UserWarning, match=r"1 unit\(s\) \(first 'u0003'\) have no observed"):
        a = callaway_santanna.fit(panel, outcome="y", bootstrap=False)
    with pytest.warns(UserWarning, match=r"1 unit\(s\) \(first 'u0003'\) have no observed") as rec:
        b = zd.callaway_santanna(dp, outcome="y", bootstrap=False)
    assert rec[0].filename == __file__
    _assert_cs_equal(a, b)


def test_absorbed_covariate_and_noise_free_outcome_stop_at_once(client, tmp_path) -> None:
    """A reviewer's cases: the stopping rule relative to a column's first correction alone
    swept 10,000 times on a covariate constant within units (rounding-sized corrections)
    and on a noise-free outcome, then blamed the panel's connectivity."""
    frame = _simulated(n=60)
    frame["area"] = frame["id"].str[1:].astype(float)  # constant within each unit
    panel, dp = _pair(frame, tmp_path / "a", covariates=["area"])
    with pytest.raises(EstimationError, match="absorbed"):
        zd.twfe(dp, outcome="y", covariates=["area"])
    flat = frame.assign(
        y=frame["id"].str[1:].astype(float)
        + 2.0 * (frame["year"] >= frame["first"]).where(frame["first"] > 0, False)
    )
    panel, dp = _pair(flat, tmp_path / "b")
    b = zd.imputation(dp, outcome="y")
    assert b.info["sweeps"] < 50
    np.testing.assert_allclose(b.terms["estimate"].iloc[0], 2.0, atol=1e-9)


def test_outside_window_adjust_as_in_memory(client, tmp_path) -> None:
    """[data] outside_window = "adjust" was not passed to the Dask reader, which refused a
    panel that memory adjusts (units treated from the first period dropped, cohorts after
    the last recoded as never treated)."""
    frame = _simulated(n=120)
    ids = frame["id"].unique()
    frame.loc[frame["id"].isin(ids[:5]), "first"] = 1  # treated from the first period
    frame.loc[frame["id"].isin(ids[5:9]), "first"] = 99  # after the last period
    glob = _write(frame, tmp_path, n_files=2)
    read = dict(unit="id", time="year", outcomes=["y"], cohort="first")
    with pytest.raises(PanelError, match="outside the observed periods"):
        zd.read_panel(glob, **read)
    dp = zd.read_panel(glob, **read, outside_window="adjust")
    panel = Panel.from_frame(frame, **read, outside_window="adjust")
    assert dp.n_units == panel.n_units == 115
    a, b = imputation.fit(panel, outcome="y"), zd.imputation(dp, outcome="y")
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=TOL)
    _assert_cs_equal(
        callaway_santanna.fit(panel, outcome="y", bootstrap=False),
        zd.callaway_santanna(dp, outcome="y", bootstrap=False),
    )


def test_few_treated_clusters_warn_as_in_memory(client, tmp_path) -> None:
    """Treated units in three regions only: both engines warn with the same count at the
    caller's line (the Dask CS gave no warning, session 22's reviewer)."""
    frame = _simulated(n=120)
    frame.loc[frame["region"] >= 3, "first"] = 0
    n_regions = int(frame.loc[frame["first"] > 0, "region"].nunique())
    assert n_regions == 3
    panel = Panel.from_frame(
        frame, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["region"]
    )
    dp = zd.read_panel(
        _write(frame, tmp_path / "few", n_files=2), unit="id", time="year", outcomes=["y"],
        cohort="first", cluster="region",
    )  # fmt: skip
    match = rf"carried by only {n_regions} cluster\(s\)"
    with pytest.warns(UserWarning, match=match) as rec:
        a = callaway_santanna.fit(panel, outcome="y", bootstrap=False, cluster="region")
    with pytest.warns(UserWarning, match=match) as rec_dask:
        b = zd.callaway_santanna(dp, outcome="y", bootstrap=False, cluster=True)
    assert [w.filename for w in rec if "carried by" in str(w.message)] == [__file__]
    assert [w.filename for w in rec_dask if "carried by" in str(w.message)] == [__file__]
    _assert_cs_equal(a, b)
