"""Zone units of the sample whose outcome is missing after they open, on the Dask spillover
engine (the in-memory ``spillover_from_sources`` rule at the period level).

A zone unit without an outcome in a period after its opening has no direct target then:
its gain is in no total, so its neighbours' losses in that period must stay out of
``spillover_total``, ``net`` and the displacement share. The in-memory imputation base
reports them apart, and so does the Dask engine's imputation base (equal to the in-memory
fit). The CS base (either engine) leaves out units every exposed period of which is such
a period, and blanks such periods of other non-zone units in its ring pieces; it cannot
split them off zone units exposed before their own zone and refuses the fit, naming the
count and an example, unless another linked zone, open and observed in that period,
exposes the unit too. Worlds are built by hand on a line of 40 units (each
adjacent to the next), noise-free, with pure relocation (a zone gains ``G`` a year, each of
its two neighbours loses ``G / 2``), so the displacement share is 1 (tolerance 1e-9:
least squares on outcomes near 100, exact up to rounding).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.estimators import spillover
from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel

zd = pytest.importorskip("zoneimpact.distributed")

YEARS = list(range(2000, 2010))
N = 40
UNITS = [f"u{i:02d}" for i in range(N)]
G = 10.0


def _world(zones: dict[str, int], seed: int = 1) -> pd.DataFrame:
    """Outcomes on the line: unit and year effects, ``+G`` for an open zone, ``-G/2`` per
    open adjacent zone for a unit that is not (yet) a zone itself."""
    rng = np.random.default_rng(seed)
    a = {u: rng.normal() * 5 for u in UNITS}
    b = {t: rng.normal() for t in YEARS}
    rows = []
    for i, u in enumerate(UNITS):
        for t in YEARS:
            own = zones.get(u, np.inf)
            eff = G if t >= own else 0.0
            for j in (i - 1, i + 1):
                v = f"u{j:02d}"
                if v in zones and zones[v] <= t < own:
                    eff -= G / 2
            rows.append(
                dict(unit=u, time=t, cohort=zones.get(u, np.inf), y=100 + a[u] + b[t] + eff)
            )
    return pd.DataFrame(rows)


def _panel(df: pd.DataFrame) -> Panel:
    geo = pd.DataFrame({"unit": UNITS, "lat": 30.0, "lon": [0.3 * i for i in range(N)]})
    adj = pd.DataFrame({"unit": UNITS[:-1], "neighbour": UNITS[1:]})
    return Panel.from_frame(
        df, unit="unit", time="time", cohort="cohort", outcomes="y", geography=geo,
        adjacency=adj, never_values=(),
    )  # fmt: skip


def _dask(df: pd.DataFrame, folder):
    df.to_parquet(folder / "part-0.parquet", index=False)
    return zd.read_panel(str(folder / "*.parquet"), unit="unit", time="time", outcomes=["y"],
                         cohort="cohort", never_values=(), npartitions=2)  # fmt: skip


def _missing(df: pd.DataFrame, unit: str, year: int, how: str) -> pd.DataFrame:
    """``df`` with ``unit``'s outcome missing in ``year``: NaN, or the row left out."""
    at = (df["unit"] == unit) & (df["time"] == year)
    if how == "nan":
        return df.assign(y=df["y"].mask(at))
    return df.loc[~at].reset_index(drop=True)


def _fit(dp, emap, base: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zd.spillover(dp, outcome="y", exposure=emap, base_estimator=base, n_boot=0, rng=0)


def _est(res) -> pd.Series:
    return res.terms.set_index("term")["estimate"]


def _equals_in_memory_cs(res, seen: pd.DataFrame, emap) -> None:
    """The Dask CS fit ``res`` of ``seen`` against the in-memory CS base with the same
    options (unit clusters, analytic SEs): terms and SEs (1e-10: the same formulas, sums in
    another order), the pieces' counts and the sources note."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = spillover.fit(_panel(seen), outcome="y", exposure=emap, n_boot=0, rng=0,
                            base_estimator="callaway_santanna", small_sample="none",
                            cluster="unit")  # fmt: skip
    a, b = res.terms.set_index("term"), mem.terms.set_index("term")
    for col in ("estimate", "se"):
        assert np.allclose(a[col], b.loc[a.index, col], rtol=1e-10, atol=1e-10, equal_nan=True)
    counts = ["n_target_unit_periods", "n_unidentified"]
    assert res.pieces[counts].equals(mem.pieces[counts].iloc[: len(res.pieces)])
    assert res.info["cs_sources_note"] == mem.info["cs_sources_note"]


# three zones far apart on the line: u14 and u16 are exposed by u15 alone
ZONES = {"u05": 2004, "u15": 2006, "u25": 2005}
BASES = ("imputation", "callaway_santanna")


@pytest.mark.parametrize("how", ["nan", "row"])
def test_cs_base_blanks_the_rows_a_zone_without_an_outcome_exposes(tmp_path, how):
    # u15 (open 2006) has no outcome in 2008: u14 and u16 are exposed by no observed zone
    # then, and by u15 in 2006, 2007 and 2009. The CS base refused; it now blanks their 2008
    # rows in its ring piece, so they enter only the ATT(g,t) of their counted years: u15's
    # other years' gain (40) against their losses then, share 1 (1e-9); terms, SEs, pieces
    # and note equal to the in-memory CS fit (1e-10)
    df = _world(ZONES)
    emap = build_exposure(_panel(df), "adjacency")
    seen = _missing(df, "u15", 2008, how)
    res = _fit(_dask(seen, tmp_path), emap, "callaway_santanna")
    e = _est(res)
    assert e["direct_total"] == pytest.approx(140.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-140.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-9)
    counts = ["n_target_unit_periods", "n_unidentified"]
    assert res.pieces.set_index("piece").loc["spillover_from_sources", counts].tolist() == [0, 2]
    assert "2 exposed unit-period(s) of 2 unit(s) (e.g. 'u14')" in res.info["cs_sources_note"]
    _equals_in_memory_cs(res, seen, emap)


@pytest.mark.parametrize("how", ["nan", "row"])
def test_cs_base_blanks_a_zone_units_row_exposed_by_a_zone_without_an_outcome(tmp_path, how):
    # u14 is a zone from 2009, exposed before it by u15 (2006), which has no outcome in
    # 2008: u14's 2008 row is exposed by no observed zone. The CS base refused it; it now
    # blanks that row in spillover_on_zones (counted unestimated under the source piece)
    # and counts u14's gain from 2005, its last untreated year. Noise-free, its totals are
    # the imputation base's (1e-9); terms, SEs, pieces and note equal in memory (1e-10)
    zones = {**ZONES, "u14": 2009}
    df = _world(zones)
    emap = build_exposure(_panel(df), "adjacency")
    seen = _missing(df, "u15", 2008, how)
    res = _fit(_dask(seen, tmp_path), emap, "callaway_santanna")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = spillover.fit(_panel(seen), outcome="y", exposure=emap, n_boot=0, rng=0)
    e, want = _est(res), _est(imp)
    for term in ("direct_total", "spillover_total", "net", "displacement_share"):
        assert e[term] == pytest.approx(want[term], abs=1e-9)
    counts = ["n_target_unit_periods", "n_unidentified"]
    row = res.pieces.set_index("piece").loc["spillover_on_zones_from_sources", counts]
    assert row.tolist() == [0, 1]
    assert "'u14'" in res.info["cs_sources_note"]
    _equals_in_memory_cs(res, seen, emap)


def test_cs_base_leaves_out_neighbours_of_a_zone_without_an_untreated_row(tmp_path):
    # a reviewer's world: u15 (2006) observed only from its opening has no estimated gain
    # (Dask once gave a share of 1.364 with no warning). u14 and u16 are exposed by u15
    # alone, so every exposed row of theirs is source-only: the CS base leaves them out of
    # its ring piece and counts their 8 rows under spillover_from_sources, as in memory
    # (noise-free truths 1e-9; terms, SEs and notes equal to the in-memory CS fit, 1e-10)
    df = _world(ZONES)
    emap = build_exposure(_panel(df), "adjacency")
    seen = df.loc[~((df["unit"] == "u15") & (df["time"] < 2006))].reset_index(drop=True)
    res = _fit(_dask(seen, tmp_path), emap, "callaway_santanna")
    e = _est(res)
    assert e["direct_total"] == pytest.approx(110.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-9)
    assert "spillover_from_sources" not in e.index
    counts = ["n_target_unit_periods", "n_unidentified"]
    assert res.pieces.set_index("piece").loc["spillover_from_sources", counts].tolist() == [0, 8]
    assert "leaves 2 unit(s) (e.g. 'u14')" in res.info["cs_sources_note"]
    _equals_in_memory_cs(res, seen, emap)


@pytest.mark.parametrize(
    ("drop", "direct", "from_sources"),
    [
        # u15 has no outcome in 2008: its gain then (10) and u14's and u16's losses then
        # (2 x 5) leave the totals; share 1
        (("u15", 2008, "nan"), 140.0, -10.0),
        (("u15", 2008, "row"), 140.0, -10.0),
        # the reviewer's world: u15 observed only from 2006 has no estimated gain, so its
        # neighbours' 8 losses (40) are set apart
        ("early", 110.0, -40.0),
    ],
)
def test_imputation_base_sets_the_losses_apart_as_in_memory(tmp_path, drop, direct, from_sources):
    # noise-free truths (1e-9), and every term, SE and piece count equal to the in-memory
    # fit with the same options (unit clusters, no CR2: 1e-10, sums in another order)
    df = _world(ZONES)
    emap = build_exposure(_panel(df), "adjacency")
    if drop == "early":
        seen = df.loc[~((df["unit"] == "u15") & (df["time"] < 2006))].reset_index(drop=True)
    else:
        seen = _missing(df, *drop)
    res = _fit(_dask(seen, tmp_path), emap, "imputation")
    e = _est(res)
    assert e["direct_total"] == pytest.approx(direct, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-direct, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-9)
    assert e["spillover_from_sources_total"] == pytest.approx(from_sources, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = spillover.fit(_panel(seen), outcome="y", exposure=emap, n_boot=0, rng=0,
                            small_sample="none", cluster="unit")  # fmt: skip
    a, b = res.terms.set_index("term"), mem.terms.set_index("term")
    assert a.index.tolist() == [t for t in b.index if t != "net_region_did"]
    for col in ("estimate", "se"):
        assert np.allclose(a[col], b.loc[a.index, col], rtol=1e-10, atol=1e-10, equal_nan=True)
    cols = ["n_target_unit_periods", "n_unidentified"]
    assert res.pieces[cols].equals(mem.pieces[cols].iloc[: len(res.pieces)])


@pytest.mark.parametrize("base", BASES)
def test_spillover_on_the_same_world_fully_observed_has_share_one(tmp_path, base):
    df = _world(ZONES)
    e = _est(_fit(_dask(df, tmp_path), build_exposure(_panel(df), "adjacency"), base))
    # zones open 6, 4 and 5 years (+10 each); each of their two neighbours loses 5
    assert e["direct_total"] == pytest.approx(150.0, abs=1e-9)
    assert e["spillover_total"] == pytest.approx(-150.0, abs=1e-9)
    assert e["displacement_share"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("base", BASES)
def test_spillover_fits_when_a_second_observed_zone_is_open(tmp_path, base):
    # u05 (2004) has no outcome in 2008, but its neighbours u04 and u06 are exposed then by
    # u03 (2005) and u07 (2006), open and observed: no unit-period is source-only
    zones = {"u03": 2005, "u05": 2004, "u07": 2006, "u25": 2005}
    df = _world(zones)
    emap = build_exposure(_panel(df), "adjacency")
    seen = _missing(df, "u05", 2008, "nan")
    e = _est(_fit(_dask(seen, tmp_path), emap, base))
    assert "spillover_from_sources" not in e.index
    # the same numbers as in memory (imputation without CR2, as on Dask); u04 and u06 keep
    # their 2008 loss to u05 too (a unit-period exposed to an observed zone stays whole),
    # so net is -10 (u05's missing gain) and the share 200/190, in both engines
    opts = {"small_sample": "none"} if base == "imputation" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = spillover.fit(_panel(seen), outcome="y", exposure=emap, base_estimator=base,
                            n_boot=0, rng=0, **opts)  # fmt: skip
    assert e.to_numpy() == pytest.approx(_est(mem).reindex(e.index).to_numpy(), abs=1e-9)
    assert e["net"] == pytest.approx(-10.0, abs=1e-9)
