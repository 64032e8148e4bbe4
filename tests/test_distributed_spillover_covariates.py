"""Covariates on the Dask engine's imputation base (issue 14 item 1: conditional parallel
trends in every spillover path).

Every piece's BJS step 1 adds the baseline x period terms ``x_i 1{t = s}``, as the in-memory
imputation base does; the Dask result must equal ``spillover.fit(..., base_estimator=
"imputation", small_sample="none", covariates=...)``.

Tolerance: 1e-10 relative (estimates of order 1-1e4). Both engines solve the same normal
equations (in memory a sparse LU of the full system, on Dask the periods x covariates
system left after eliminating the unit effects), so only rounding differs; a missing or
misplaced covariate term moves the direct effect by more than 1 here (57.0 against 55.9
without the covariate), far outside it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import spillover
from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel
from zoneimpact.simulate import simulate

distributed = pytest.importorskip("distributed")
zd = pytest.importorskip("zoneimpact.distributed")
dimp = pytest.importorskip("zoneimpact.distributed.imputation")

RTOL = 1e-10


@pytest.fixture(scope="module")
def world(client):
    """``simulate``'s zone panel (its covariate ``x`` shifts trends and adoption), 120 units
    in 12 regions, 2005-2014, and its two-ring map."""
    sim = simulate(rng=3, n_units=120, n_regions=12, first_year=2005, last_year=2014,
                   waves={2008: 0.5, 2011: 0.5})  # fmt: skip
    emap = build_exposure(sim.panel, "rings", rings_km=[(0, 100), (100, 250)])
    regions = sim.geography.set_index("unit")["region"].astype(str)
    return sim.panel, emap, regions


def _dask(
    panel, folder: Path, regions, data: pd.DataFrame | None = None, covs=("x",), seed=0,
    npartitions=3,
):  # fmt: skip
    """The panel's rows (or ``data``) as three Parquet files, shuffled (``seed``), read back
    in ``npartitions`` partitions."""
    d = panel.data if data is None else data
    rows = d[["unit", "time", "cohort", "fdi", *covs]].sample(frac=1.0, random_state=seed)
    rows = rows.assign(region=regions.reindex(rows["unit"]).to_numpy())
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), 3)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return zd.read_panel(
        str(folder / "*.parquet"), unit="unit", time="time", outcomes=["fdi"], cohort="cohort",
        covariates=list(covs), never_values=(), cluster="region", npartitions=npartitions,
    )  # fmt: skip


def _same(a, b) -> None:
    """Terms, joint draws and the pieces table of the two engines agree (module notes)."""
    ta, tb = a.terms.set_index("term"), b.terms.set_index("term")
    own = [t for t in ta.index if t not in ("net_region_did", "net_region_sdid")]
    assert list(tb.index) == own
    for col in ("estimate", "se"):
        np.testing.assert_allclose(tb.loc[own, col], ta.loc[own, col], rtol=RTOL, atol=1e-10)
    if a.draws is not None and len(a.draws):
        np.testing.assert_allclose(
            b.draws.to_numpy(), a.draws[b.draws.columns].to_numpy(), rtol=RTOL, atol=1e-10
        )
    pieces = a.pieces[a.pieces["piece"] != "net_region_did"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pieces, b.pieces, check_exact=False, rtol=RTOL, atol=1e-8)
    for key in ("net_note", "net_unobserved_note", "share_note"):
        assert a.info.get(key) == b.info.get(key)


@pytest.mark.parametrize(
    "options",
    [
        {"controls": "not_yet_exposed", "pre_exposed": "drop_rows", "cluster": "region"},
        {"controls": "never_exposed", "pre_exposed": "keep", "cluster": "unit"},
    ],
)  # fmt: skip
def test_dask_imputation_base_with_covariates_equals_in_memory(world, tmp_path, options):
    panel, emap, regions = world
    dp = _dask(panel, tmp_path, regions)
    in_memory = (
        {**options, "cluster": regions.rename("region")}
        if options["cluster"] == "region"
        else options
    )
    kw = dict(outcome="fdi", base_estimator="imputation", exposure=emap, n_boot=199, rng=11)
    a = spillover.fit(panel, small_sample="none", covariates=["x"], **kw, **in_memory)
    b = zd.spillover(dp, covariates=["x"], **kw, **options)
    _same(a, b)
    assert b.info["covariates"] == a.info["covariates"] == "x"
    assert b.info["engine"] == "dask"
    # the terms are really in: without them the direct effect moves by more than 1
    plain = zd.spillover(dp, **{**kw, "n_boot": 0}, **options).terms.set_index("term")
    with_x = b.terms.set_index("term")
    assert abs(plain.loc["direct", "estimate"] - with_x.loc["direct", "estimate"]) > 1.0
    assert plain.loc["direct", "estimate"] == pytest.approx(
        spillover.fit(panel, small_sample="none", **{**kw, "n_boot": 0}, **in_memory)
        .terms.set_index("term")
        .loc["direct", "estimate"],
        rel=RTOL,
    )


def test_dask_imputation_base_leaves_out_periods_too_thin_for_the_covariate(world, tmp_path):
    # the clean units' outcomes are missing in 2013-2014 except for two units': a period
    # needs K + 2 clean units with another clean row, so with one covariate (K = 1) both
    # engines leave those periods out (two units fit its effect and slope exactly, no
    # residual left for the variance), and without it they keep them
    panel, emap, regions = world
    d = panel.data.copy()
    role = d["unit"].map(emap.table["role"])
    never = emap.table.index[(emap.table["role"] == "clean").to_numpy()]
    assert len(never) > 4
    gone = (role == "clean") & ~d["unit"].isin(never[:2]) & (d["time"] >= 2013)
    d.loc[gone.to_numpy(), "fdi"] = np.nan
    dp = _dask(panel, tmp_path, regions, data=d)
    kw = dict(outcome="fdi", exposure=emap, base_estimator="imputation", n_boot=99, rng=1)
    fits = {}
    for covs in (["x"], None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = spillover.fit(
                panel.replace(data=d), small_sample="none", cluster=regions.rename("region"),
                covariates=covs, **kw,
            )  # fmt: skip
            b = zd.spillover(dp, cluster="region", covariates=covs, **kw)
        _same(a, b)
        fits[bool(covs)] = a.pieces.set_index("piece")
    assert fits[True].loc["direct", "left_out_periods"] == "2013, 2014"
    assert fits[False].loc["direct", "left_out_periods"] == ""
    zone_late = int(((role == "direct") & (d["time"] >= 2013)).sum())
    assert fits[True].loc["direct", "n_unidentified"] == zone_late > 0


def test_dask_imputation_base_refuses_collinear_covariates_as_in_memory(world, tmp_path):
    # x2 = 2 x + 1: its period terms are those of x, so step 1 is singular; both engines
    # refuse (an EstimationError naming collinear covariate terms), not a number
    panel, emap, regions = world
    d = panel.data.assign(x2=2 * panel.data["x"] + 1)
    dp = _dask(panel, tmp_path, regions, data=d, covs=("x", "x2"))
    kw = dict(outcome="fdi", exposure=emap, base_estimator="imputation", n_boot=0)
    with pytest.raises(EstimationError, match="collinear"):
        spillover.fit(panel.replace(data=d), covariates=["x", "x2"], **kw)
    with pytest.raises(EstimationError, match="collinear") as err:
        zd.spillover(dp, covariates=["x", "x2"], **kw)
    assert "Piece 'direct'" in str(err.value)


def test_dask_imputation_base_refuses_covariates_on_long_panels(world, tmp_path, monkeypatch):
    # the covariate terms are solved directly; past _DIRECT_MAX_PERIODS periods with
    # untreated rows (7 here, patched) the engine refuses them by name. Only the exposed
    # units are observed in 2005-2007, so the direct piece has 7 such periods and the ring
    # and naive pieces 10: the refusal must stop the fit there too, not leave those pieces
    # NaN (a reviewer's finding). Without covariates the engine iterates instead
    # (tests/test_distributed.py checks those iterations against memory)
    panel, emap, regions = world
    d = panel.data.copy()
    role = d["unit"].map(emap.table["role"])
    d.loc[((d["time"] <= 2007) & (role != "exposed")).to_numpy(), "fdi"] = np.nan
    dp = _dask(panel, tmp_path, regions, data=d)
    monkeypatch.setattr(dimp, "_DIRECT_MAX_PERIODS", 7)
    kw = dict(outcome="fdi", exposure=emap, base_estimator="imputation", n_boot=0,
              controls="never_exposed")  # fmt: skip
    with pytest.raises(SpecError, match="at most 7 periods with untreated rows") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zd.spillover(dp, covariates=["x"], **kw)
    assert "(the panel has 10)" in str(err.value)


def test_dask_imputation_base_refuses_a_covariate_flat_in_one_period_whatever_the_partitions(
    world, tmp_path
):
    # b = 1{x > 0}; the untreated rows with b = 1 lose their outcome in 2013, so b is
    # constant among 2013's untreated rows and its 2013 term is the period effect's. Memory
    # names the period; Dask must refuse it too under every partitioning (a reviewer's
    # first version judged a Schur diagonal of rounding size, and one partitioning out of
    # four returned a direct effect of 78.5 instead of refusing)
    panel, emap, regions = world
    d = panel.data.copy()
    d["b"] = (d.groupby("unit")["x"].transform("first") > 0).astype(float)
    untreated = d["time"] < d["cohort"].astype(float).fillna(np.inf)
    d.loc[(d["time"] == 2013) & (d["b"] == 1) & untreated, "fdi"] = np.nan
    kw = dict(outcome="fdi", exposure=emap, base_estimator="imputation", n_boot=0)
    with pytest.raises(
        EstimationError, match=r"do not vary among the clean units of period\(s\) 2013"
    ):
        spillover.fit(panel.replace(data=d), covariates=["b"], **kw)
    for seed in (0, 1, 5):
        folder = tmp_path / f"s{seed}"
        folder.mkdir()
        dp = _dask(panel, folder, regions, data=d, covs=("b",), seed=seed,
                   npartitions=2 + seed % 3)  # fmt: skip
        with pytest.raises(
            EstimationError, match=r"do not vary among the untreated units of period\(s\) 2013 "
        ):
            zd.spillover(dp, covariates=["b"], **kw)


def _line_world() -> Panel:
    """24 places on a line (adjacency), 2000-2007; zones at u04, u10 (2003) and u16, u20
    (2005); their neighbours observed only from their exposure onset; two clean units
    (u00, u01) and no other; outcomes with a trend in the unit-level covariate ``x``,
    +10 in an open zone and -5 in an exposed unit, noise N(0, 1)."""
    rng = np.random.default_rng(7)
    names = [f"u{i:02d}" for i in range(24)]
    zones = {"u04": 2003, "u10": 2003, "u16": 2005, "u20": 2005}
    onset: dict[str, int] = {}
    for z, g in zones.items():
        for j in (int(z[1:]) - 1, int(z[1:]) + 1):
            onset[f"u{j:02d}"] = min(onset.get(f"u{j:02d}", 9999), g)
    units = [u for u in names if u in zones or u in onset or u in ("u00", "u01")]
    x = {u: rng.normal() for u in names}
    rows = []
    for u in units:
        a = rng.normal() * 5
        for t in range(2000, 2008):
            if t < onset.get(u, 0):
                continue
            eff = 10.0 * (t >= zones.get(u, 9999)) - 5.0 * (t >= onset.get(u, 9999))
            y = 100 + a + 0.3 * t + 2 * x[u] * (t - 2000) + eff + rng.normal()
            rows.append(dict(unit=u, time=t, cohort=zones.get(u, np.nan), y=y, x=x[u]))
    adj = pd.DataFrame({"unit": names[:-1], "neighbour": names[1:]})
    adj = adj[adj["unit"].isin(units) & adj["neighbour"].isin(units)]
    geo = pd.DataFrame({"unit": units, "lat": 30.0, "lon": [0.3 * int(u[1:]) for u in units]})
    return Panel.from_frame(
        pd.DataFrame(rows), unit="unit", time="time", cohort="cohort", outcomes="y",
        covariates=["x"], geography=geo, adjacency=adj, never_values=(),
    )  # fmt: skip


def test_a_ring_piece_whose_every_period_is_too_thin_is_nan_in_both_engines(client, tmp_path):
    # with one covariate a period needs 3 clean units with another clean row; the ring
    # piece has only the two clean units (its own units are observed from their onset), so
    # every period is left out. The ring piece is NaN, its 8 targets unidentified, and the
    # fit goes on, as for a piece none of whose targets can be imputed (memory refused the
    # whole fit before, "No untreated (clean) rows", while Dask gave the NaN piece: a
    # reviewer's finding); the direct piece keeps 2003-2004 (zones u16, u20 not yet open)
    p = _line_world()
    emap = build_exposure(p, "adjacency")
    kw = dict(outcome="y", exposure=emap, covariates=["x"], n_boot=0, controls="never_exposed",
              base_estimator="imputation", cluster="unit")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = spillover.fit(p, small_sample="none", **kw)
    pieces = a.pieces.set_index("piece")
    ring = pieces.loc["spillover:adjacent"]
    assert np.isnan(ring["estimate"]) and ring["n_unidentified"] == 8
    assert ring["left_out_periods"] == ", ".join(str(t) for t in range(2000, 2008))
    # the direct effect is the truth, 10, to the noise (SE 0.87: 2 SEs)
    t = a.terms.set_index("term")
    assert abs(t.loc["direct", "estimate"] - 10) < 2 * t.loc["direct", "se"]
    p.data[["unit", "time", "cohort", "y", "x"]].to_parquet(tmp_path / "p.parquet", index=False)
    dp = zd.read_panel(
        str(tmp_path / "*.parquet"), unit="unit", time="time", outcomes=["y"], cohort="cohort",
        covariates=["x"], never_values=(), npartitions=2,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = zd.spillover(dp, **kw)
    _same(a, b)


def test_dask_imputation_base_is_invariant_to_the_covariate_units_and_the_row_order(
    world, tmp_path
):
    # x -> 1e9 x + 1e12 spans the same period terms (the baseline is centred and scaled), and
    # the rows' order and partitions carry no information: the Dask result moves by rounding
    # only (a reviewer measured 2.5e-14 for x 1e-9, 2.8e-13 for row order; 1e-9 allows the
    # 1e12 offset's cancellation in the baseline's mean)
    panel, emap, regions = world
    kw = dict(outcome="fdi", base_estimator="imputation", exposure=emap, n_boot=99, rng=3,
              cluster="region", covariates=["x"])  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = zd.spillover(_dask(panel, tmp_path / "a", regions), **kw)
    d = panel.data.assign(x=1e9 * panel.data["x"] + 1e12).iloc[::-1]
    moved = zd.spillover(_dask(panel, tmp_path / "b", regions, data=d), **kw)
    ta, tb = base.terms.set_index("term"), moved.terms.set_index("term")
    for col in ("estimate", "se"):
        np.testing.assert_allclose(tb[col], ta[col], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(moved.draws.to_numpy(), base.draws.to_numpy(), rtol=1e-9, atol=1e-9)
