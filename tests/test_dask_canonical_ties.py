"""The Dask engines order units as :meth:`Panel.canonical_order` does when units tie on
cohort and outcome path: the ties are broken by the units' other numeric columns (through
the shared :func:`zoneimpact.panel.canonical_positions`), not by their labels.

Before, the Dask CS fit and the Dask spillover fit broke such ties by unit label (the order
of the gathered tables), so with tied outcome paths and a covariate that differs between
the tied units their multiplier draws differed from the in-memory fit's (bootstrap SEs
apart by ~1e-3 relative) and moved when the units were renamed.

Tolerances: both engines run the same formulas on the same rows with the same multipliers
in the same unit order; only the order of floating-point sums differs (~1e-16 relative on
SEs of order 0.1-10), so 1e-12 absolute. A different unit order draws other multipliers
for the tied units and moves the SEs by ~1e-4 or more.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna, spillover
from zoneimpact.exposure import build_exposure
from zoneimpact.simulate import simulate

distributed = pytest.importorskip("distributed")
zd = pytest.importorskip("zoneimpact.distributed")

TOL = 1e-12


@pytest.fixture(scope="module")
def tied():
    """A simulated zone panel (120 units, 10 years) whose first 30 never-treated units all
    have the outcome 5.0 in every period (tied in cohort and outcome path) and a
    time-constant covariate ``z`` that differs between units; its ring exposure map."""
    sim = simulate(rng=3, n_units=120, n_regions=12, first_year=2005, last_year=2014,
                   waves={2008: 0.5, 2011: 0.5})  # fmt: skip
    frame = sim.panel.data[["unit", "time", "cohort", "fdi"]].copy()
    never = np.sort(frame.loc[np.isinf(frame["cohort"]), "unit"].unique())[:30]
    frame.loc[frame["unit"].isin(never), "fdi"] = 5.0
    z = pd.Series(np.random.default_rng(5).normal(size=frame["unit"].nunique()))
    z.index = np.sort(frame["unit"].unique())
    frame["z"] = z.reindex(frame["unit"]).to_numpy()
    emap = build_exposure(sim.panel, "rings", rings_km=[(0, 100), (100, 250)])
    return frame, emap


def _dask(frame: pd.DataFrame, folder: Path):
    rows = frame.sample(frac=1.0, random_state=0)
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), 3)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return zd.read_panel(
        str(folder / "*.parquet"), unit="unit", time="time", outcomes=["fdi"],
        cohort="cohort", covariates=["z"], never_values=(), npartitions=3,
    )  # fmt: skip


def _memory(frame: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        frame, unit="unit", time="time", outcomes=["fdi"], cohort="cohort", covariates=["z"],
        never_values=(),
    )  # fmt: skip


def _relabelled(frame: pd.DataFrame) -> pd.DataFrame:
    """The units renamed so that their sorted order is reversed."""
    units = np.sort(frame["unit"].unique())
    new = pd.Series([f"w{len(units) - i:04d}" for i in range(len(units))], index=units)
    return frame.assign(unit=new.reindex(frame["unit"]).to_numpy())


def _cs(data, engine):
    return engine(data, outcome="fdi", n_boot=199, rng=11, covariates=["z"], est_method="dr")


def test_dask_cs_bootstrap_ses_equal_in_memory_with_ties(client, tied, tmp_path) -> None:
    frame, _ = tied
    a = _cs(_memory(frame), callaway_santanna.fit)
    b = _cs(_dask(frame, tmp_path), zd.callaway_santanna)
    # same estimates (no draws involved), and same multiplier draws: same bootstrap SEs
    # (before: the tied units drew in label order on Dask, SEs apart by up to ~1e-3)
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.terms["se"], a.terms["se"], rtol=0, atol=TOL)
    assert np.all(np.isfinite(a.terms["se"])) and a.terms["se"].gt(0).all()


def test_dask_cs_draws_do_not_follow_unit_labels(client, tied, tmp_path) -> None:
    frame, _ = tied
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    b = _cs(_dask(frame, tmp_path / "a"), zd.callaway_santanna)
    c = _cs(_dask(_relabelled(frame), tmp_path / "b"), zd.callaway_santanna)
    np.testing.assert_allclose(c.terms["se"], b.terms["se"], rtol=0, atol=TOL)


def _spill(data, engine, emap):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-sample SE warnings are not tested here
        return engine(
            data, outcome="fdi", exposure=emap, base_estimator="callaway_santanna", n_boot=199,
            rng=11, cluster="unit",
        )  # fmt: skip


def test_dask_spillover_draws_equal_in_memory_with_ties(client, tied, tmp_path) -> None:
    frame, emap = tied
    a = _spill(_memory(frame), spillover.fit, emap)
    b = _spill(_dask(frame, tmp_path), zd.spillover, emap)
    # the joint bootstrap draws: the clusters (units) numbered in the same order
    np.testing.assert_allclose(b.draws.to_numpy(), a.draws[b.draws.columns].to_numpy(), atol=1e-8)
    ta, tb = a.terms.set_index("term"), b.terms.set_index("term")
    share = ["displacement_share"]
    assert np.isfinite(ta.loc[share, "se"]).all()
    np.testing.assert_allclose(tb.loc[share, "se"], ta.loc[share, "se"], rtol=0, atol=1e-10)


def test_dask_spillover_draws_do_not_follow_unit_labels(client, tied, tmp_path) -> None:
    frame, emap = tied
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    b = _spill(_dask(frame, tmp_path / "a"), zd.spillover, emap)
    renamed = _relabelled(frame)
    units = np.sort(frame["unit"].unique())
    new = pd.Series([f"w{len(units) - i:04d}" for i in range(len(units))], index=units)
    table = emap.table.rename(index=new.to_dict())
    links = None
    if emap.links is not None:
        links = emap.links.assign(
            unit=new.reindex(emap.links["unit"]).to_numpy(),
            zone=new.reindex(emap.links["zone"]).to_numpy(),
        )
    emap2 = type(emap)(emap.kind, table, emap.rings, emap.settings, links)
    c = _spill(_dask(renamed, tmp_path / "b"), zd.spillover, emap2)
    np.testing.assert_allclose(c.draws.to_numpy(), b.draws.to_numpy(), atol=1e-8)
