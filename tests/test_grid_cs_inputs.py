"""Inputs of the streamed ring-spillover CS (``zoneimpact._grid_cs``) that used to give silent
wrong numbers or crashes: non-whole periods and openings, balance at many periods,
duplicated table ids, infinite outcomes, default pieces without a cohort, Hive-partitioned
directories, large outcome levels, and clustered standard errors.

Reference numbers come from ``callaway_santanna.fit`` on the same panel in memory (it and
the streamed estimator compute the same differences of means and influence functions, so
they agree to rounding, 1e-10 here as in ``tests/test_grid.py``) or from a hand computation
of the influence function written out below.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError, PanelError
from zoneimpact.estimators import callaway_santanna
from zoneimpact.grid import ring_cs_from_parquet
from zoneimpact.panel import Panel

# the in-memory references warn that few units carry the treatment; the tiny cases here
# check arithmetic, not inference
pytestmark = pytest.mark.filterwarnings("ignore:The treatment is carried by only")


def _table(roles, cohorts, onsets, rings, index=None) -> pd.DataFrame:
    n = len(roles)
    return pd.DataFrame(
        {
            "role": pd.Categorical(roles, categories=["clean", "direct", "exposed"]),
            "cohort": np.array(cohorts, float),
            "exposure_onset": np.array(onsets, float),
            "ring": pd.Categorical(rings),
            "distance_km": np.nan,
        },
        index=pd.Index(np.arange(n) if index is None else index, name="cell"),
    )


def _long(y: np.ndarray, ids, periods) -> pd.DataFrame:
    n, t = y.shape
    return pd.DataFrame(
        {"cell": np.repeat(np.asarray(ids), t), "year": np.tile(periods, n), "y": y.ravel()}
    )


def _direct_case(n_treated: int, n_clean: int, cohort: float, periods, seed: int):
    n = n_treated + n_clean
    tab = _table(
        ["direct"] * n_treated + ["clean"] * n_clean,
        [cohort] * n_treated + [np.inf] * n_clean,
        [np.inf] * n,
        [""] * n,
    )
    y = np.random.default_rng(seed).normal(size=(n, len(periods)))
    y[:n_treated, np.asarray(periods) >= cohort] += 1.0
    return tab, _long(y, np.arange(n), periods)


def _in_memory(long: pd.DataFrame, cohort: pd.Series, aggregation: str = "dynamic", **kw):
    c = cohort.reindex(long["cell"]).to_numpy(float)
    fr = long.assign(cohort=np.where(np.isinf(c), 0, c))
    p = Panel.from_frame(
        fr, unit="cell", time="year", cohort="cohort", outcomes=["y"], outside_window="adjust"
    )
    return callaway_santanna.fit(
        p, outcome="y", bootstrap=False, aggregations=[aggregation], control_group="never", **kw
    )


# ------------------------------------------------------------ 1. whole periods and openings
def test_non_whole_cohort_is_refused_by_name() -> None:
    # before: opening 2005.5 on a yearly panel gave att 0.847 (2005 counted as treated;
    # the t >= g cells average 1.040); Panel.from_frame refuses it the same way
    tab, long = _direct_case(10, 20, 2005.5, np.arange(2000, 2010), seed=1)
    with pytest.raises(PanelError, match=r"'cohort'.*cell 0 has 2005\.5.*'direct'"):
        ring_cs_from_parquet(long, tab)


def test_non_whole_exposure_onset_is_refused_by_name() -> None:
    n = 12
    tab = _table(
        ["exposed"] * 4 + ["clean"] * 8, [np.inf] * n, [2004.5] * 4 + [np.inf] * 8, ["0-1km"] * n
    )
    long = _long(np.zeros((n, 6)), np.arange(n), np.arange(2001, 2007))
    with pytest.raises(PanelError, match=r"'exposure_onset'.*cell 0 has 2004\.5"):
        ring_cs_from_parquet(long, tab)


def test_non_whole_periods_are_refused_by_name() -> None:
    # before: quarterly decimal-year times with whole-year cohort 2002 gave att 0.54 for a
    # true effect of 1 in every post quarter (int(t - g) truncated -0.75 to event 0)
    per = 2000 + np.arange(12) / 4
    tab, long = _direct_case(10, 20, 2002.0, per, seed=12)
    with pytest.raises(
        PanelError, match=r"'year' must hold whole-numbered periods; cell 0 has 2000\.25"
    ):
        ring_cs_from_parquet(long, tab)
    # the same quarters numbered 0..11 (cohort at quarter 8) agree with the in-memory fit
    long_q = long.assign(year=np.round((long["year"] - 2000) * 4).astype(int))
    tab_q = tab.assign(cohort=np.where(np.isfinite(tab["cohort"]), 8.0, np.inf))
    got = ring_cs_from_parquet(long_q, tab_q)["direct"].terms.set_index("term")
    ref = _in_memory(long_q, tab_q["cohort"]).terms.set_index("term")
    common = got.index.intersection(ref.index)
    assert len(common) >= 12
    # same differences of means summed in another order: agreement to rounding
    np.testing.assert_allclose(got.loc[common, "estimate"], ref.loc[common, "estimate"], atol=1e-10)
    np.testing.assert_allclose(got.loc[common, "se"], ref.loc[common, "se"], atol=1e-10)


# ------------------------------------------------------------ 2. exact balance check
def _t60():
    return _direct_case(10, 30, 30, np.arange(60), seed=0)


def test_duplicated_period_is_caught_at_many_periods() -> None:
    # before: at T >= 54 the float sum of 2**t could not tell a cell that lacks period 0
    # and has period 1 twice from a balanced one (event:-29 went from 0.30 to 100.3)
    tab, long = _t60()
    i0 = long.index[(long.cell == 0) & (long.year == 0)][0]
    i1 = long.index[(long.cell == 0) & (long.year == 1)][0]
    bad = pd.concat([long.drop(index=i0), long.loc[[i1]].assign(y=1000.0)], ignore_index=True)
    msg = r"Cell 0 \(column 'cell'\) has 60 row\(s\) and no row for period 0"
    for es in (True, False):
        with pytest.raises(PanelError, match=msg):
            ring_cs_from_parquet(bad, tab, event_study=es)
    # spread over many batches
    with pytest.raises(PanelError, match=msg):
        ring_cs_from_parquet(bad, tab, batch_rows=7)
    # a duplicated row without a missing one
    extra = pd.concat([long, long.loc[[i1]]], ignore_index=True)
    with pytest.raises(PanelError, match=r"Cell 0 .* 61 row\(s\) and a period more than once"):
        ring_cs_from_parquet(extra, tab)


def test_missing_period_is_named() -> None:
    tab, long = _t60()
    bad = long.drop(index=long.index[(long.cell == 3) & (long.year == 17)])
    with pytest.raises(
        PanelError, match=r"Cell 3 \(column 'cell'\) has 59 row\(s\) and no row for period 17"
    ):
        ring_cs_from_parquet(bad, tab)


def test_more_than_1023_periods() -> None:
    # before: OverflowError (2.0 ** T); reference: the in-memory fit's simple aggregation
    tab, long = _direct_case(4, 8, 600, np.arange(1030), seed=5)
    got = ring_cs_from_parquet(long, tab, event_study=False)["direct"].terms.set_index("term")
    ref = _in_memory(long, tab["cohort"], "simple").terms.set_index("term")
    # same sums in another order over ~6000 cells: agreement to rounding
    assert got.at["att", "estimate"] == pytest.approx(ref.at["att", "estimate"], abs=1e-10)
    assert got.at["att", "se"] == pytest.approx(ref.at["att", "se"], abs=1e-10)


# ------------------------------------------------------------ 3. duplicated table ids
@pytest.mark.parametrize("offset", [0, 10])  # the consecutive-ids fast path, and searchsorted
def test_duplicated_table_id_is_refused(offset) -> None:
    # before: with ids [0, 1, 1, 3] a panel cell 2 (not in the table) was estimated silently
    tab = _table(
        ["direct", "direct", "clean", "clean"],
        [2003, 2003, np.inf, np.inf],
        [np.inf] * 4,
        [""] * 4,
        index=np.array([0, 1, 1, 3]) + offset,
    )
    long = _long(np.zeros((4, 4)), np.array([0, 2, 1, 3]) + offset, np.arange(2001, 2005))
    with pytest.raises(PanelError, match=rf"Cell {1 + offset} appears more than once"):
        ring_cs_from_parquet(long, tab)


# ------------------------------------------------------------ 4. infinite outcomes
def test_infinite_outcome_is_refused_by_name() -> None:
    tab, long = _direct_case(10, 30, 2004, np.arange(2001, 2009), seed=15)
    long.loc[5, "y"] = np.inf  # cell 0, period 2006
    with pytest.raises(PanelError, match=r"'y' is inf for cell 0, period 2006"):
        ring_cs_from_parquet(long, tab)


# ------------------------------------------------------------ 5. default pieces
def _pieces_case():
    n = 40
    tab = _table(
        ["direct"] * 10 + ["exposed"] * 15 + ["clean"] * 15,
        [2004] * 10 + [np.inf] * 30,
        [np.inf] * 10 + [2005] * 10 + [1995] * 5 + [np.inf] * 15,  # ring B: a zone of 1995
        [""] * 10 + ["1-5km"] * 10 + ["5-10km"] * 5 + [""] * 15,
    )
    long = _long(np.random.default_rng(13).normal(size=(n, 8)), np.arange(n), np.arange(2001, 2009))
    return tab, long


def test_default_pieces_skip_a_ring_without_cohort() -> None:
    # before: EstimationError for the whole call
    tab, long = _pieces_case()
    with pytest.warns(UserWarning, match=r"'spillover:5-10km'.*left out") as rec:
        got = ring_cs_from_parquet(long, tab)
    assert rec[0].filename == __file__  # stacklevel points at the caller
    assert list(got) == ["spillover:1-5km", "direct"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = ring_cs_from_parquet(long, tab, pieces=["spillover:1-5km", "direct"])
    for p in ref:
        pd.testing.assert_frame_equal(got[p].terms, ref[p].terms)
    # asked for by name, it still cannot be estimated
    with pytest.raises(EstimationError, match="no treated cohort"):
        ring_cs_from_parquet(long, tab, pieces=["spillover:5-10km"])


# ------------------------------------------------------------ 6. Hive partitions
def test_hive_partitioned_directory_reads_like_the_flat_file(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    tab, long = _direct_case(10, 40, 2004, np.arange(2001, 2009), seed=8)
    hive = tmp_path / "hive"
    pq.write_to_dataset(
        pa.Table.from_pandas(long, preserve_index=False), hive, partition_cols=["year"]
    )
    assert (hive / "year=2001").is_dir()  # the year lives only in the directory names
    flat = tmp_path / "flat.parquet"
    long.to_parquet(flat)
    a = ring_cs_from_parquet(str(flat), tab)["direct"].terms
    b = ring_cs_from_parquet(str(hive), tab)["direct"].terms  # before: "lack column(s) ['year']"
    # same rows in another order: sums agree to rounding
    np.testing.assert_allclose(a[["estimate", "se"]], b[["estimate", "se"]], atol=1e-12)
    # a key=value directory whose files also hold that column reads without the names
    both = tmp_path / "run=1" / "year=2001"
    both.mkdir(parents=True)
    long.to_parquet(both / "all.parquet")
    c = ring_cs_from_parquet(str(tmp_path / "run=1"), tab)["direct"].terms
    np.testing.assert_allclose(a[["estimate", "se"]], c[["estimate", "se"]], atol=1e-12)


# ------------------------------------------------------------ 7. large outcome levels
def test_large_outcome_levels_keep_their_digits() -> None:
    # outcomes on a 2**-10 grid: y + 1e12 (< 2**40) is exact in float64, so the shifted
    # panel holds the same information and every estimate must be unchanged up to the
    # rounding of centred sums (1e-9 here); before: differences of ~1e-3 (sums of 1e12s)
    periods = np.arange(2001, 2009)
    n = 400
    rng = np.random.default_rng(6)
    cohorts = list(rng.choice([2003, 2005], 100)) + [np.inf] * 300
    tab = _table(["direct"] * 100 + ["clean"] * 300, cohorts, [np.inf] * n, [""] * n)
    y = np.round(rng.normal(size=(n, len(periods))) * 1024) / 1024
    long = _long(y, np.arange(n), periods)
    a = ring_cs_from_parquet(long, tab)["direct"].terms
    b = ring_cs_from_parquet(long.assign(y=long["y"] + 1e12), tab)["direct"].terms
    np.testing.assert_allclose(a[["estimate", "se"]], b[["estimate", "se"]], rtol=0, atol=1e-9)


# ------------------------------------------------------------ 8. clusters
def _hand_if_att(
    y: np.ndarray, cohort: np.ndarray, periods: np.ndarray
) -> tuple[float, np.ndarray]:
    """CS simple ATT and its influence function by hand (CS 2021 eq. 2.3 with varying base
    periods, Section 3 weights p_g, plus the estimated-share term; R did's compute.aggte)."""
    n = len(y)
    ctrl = np.isinf(cohort)
    cells = []
    for g in np.unique(cohort[np.isfinite(cohort)]):
        tr = cohort == g
        pret = int(np.flatnonzero(periods < g)[-1])
        for c in range(1, len(periods)):
            if periods[c] < g:
                continue
            dy = y[:, c] - y[:, pret]
            psi = np.where(tr, n / tr.sum() * (dy - dy[tr].mean()), 0.0) - np.where(
                ctrl, n / ctrl.sum() * (dy - dy[ctrl].mean()), 0.0
            )
            cells.append((g, dy[tr].mean() - dy[ctrl].mean(), psi, tr.mean()))
    s = sum(p for *_, p in cells)
    est = sum(p * a for _, a, _, p in cells) / s
    infl = sum(p / s * psi + ((cohort == g) - p) / s * (a - est) for g, a, psi, p in cells)
    return est, infl


def test_cluster_se_is_the_cluster_sum_of_the_influence_function() -> None:
    periods = np.arange(2001, 2006)
    rng = np.random.default_rng(21)
    cohort = np.array([2003] * 6 + [2004] * 4 + [np.inf] * 14)
    n = len(cohort)
    tab = _table(np.where(np.isinf(cohort), "clean", "direct"), cohort, [np.inf] * n, [""] * n)
    tab["block"] = np.arange(n) % 5  # 5 clusters mixing treated and control cells
    y = rng.normal(size=(n, len(periods))) + rng.normal(size=(5, len(periods)))[tab["block"]]
    long = _long(y, np.arange(n), periods)
    est, infl = _hand_if_att(y, cohort, periods)
    sums = np.bincount(tab["block"].to_numpy(), weights=infl)
    se_hand = np.sqrt(sums @ sums) / n  # CS's clustered analytic SE (no small-sample factor)
    for es in (True, False):
        r = ring_cs_from_parquet(long, tab, cluster="block", event_study=es)["direct"]
        t = r.terms.set_index("term")
        # hand sums of the same terms: agreement to rounding
        assert t.at["att", "estimate"] == pytest.approx(est, abs=1e-12)
        assert t.at["att", "se"] == pytest.approx(se_hand, abs=1e-12)
        assert r.info["cluster"] == "block" and r.info["n_clusters"] == 5
    # the unclustered SE is the same hand influence function's sqrt(sum IF^2) / n
    r0 = ring_cs_from_parquet(long, tab)["direct"]
    assert r0.terms.set_index("term").at["att", "se"] == pytest.approx(
        np.sqrt(infl @ infl) / n, abs=1e-12
    )
    assert r0.info["cluster"] is None and r0.info["n_clusters"] is None
    # each cell its own cluster is the unclustered SE
    r1 = ring_cs_from_parquet(long, tab.assign(own=np.arange(n)), cluster="own")["direct"]
    np.testing.assert_allclose(r1.terms["se"], r0.terms["se"], atol=1e-12)


def test_cluster_se_matches_the_in_memory_fit() -> None:
    # every term (event times too) against callaway_santanna.fit(cluster=...)
    periods = np.arange(2001, 2008)
    rng = np.random.default_rng(22)
    cohort = np.array([2003] * 8 + [2005] * 6 + [np.inf] * 26)
    n = len(cohort)
    tab = _table(np.where(np.isinf(cohort), "clean", "direct"), cohort, [np.inf] * n, [""] * n)
    tab["block"] = np.arange(n) // 4
    y = rng.normal(size=(n, len(periods))) + rng.normal(size=(10, len(periods)))[tab["block"]]
    long = _long(y, np.arange(n), periods)
    got = ring_cs_from_parquet(long, tab, cluster="block")["direct"].terms.set_index("term")
    fr = long.assign(
        cohort=np.where(np.isinf(cohort), 0, cohort)[long["cell"]],
        block=tab["block"].to_numpy()[long["cell"]],
    )
    p = Panel.from_frame(
        fr, unit="cell", time="year", cohort="cohort", outcomes=["y"], covariates=["block"]
    )
    ref = callaway_santanna.fit(
        p,
        outcome="y",
        bootstrap=False,
        aggregations=["dynamic"],
        control_group="never",
        cluster="block",
    ).terms.set_index("term")
    common = got.index.intersection(ref.index)
    assert len(common) == 10  # att, event:-3..4, event_avg
    # same cluster sums in another order: agreement to rounding
    np.testing.assert_allclose(got.loc[common, "se"], ref.loc[common, "se"], atol=1e-10)


def test_few_treated_clusters_warn_as_the_in_memory_fit() -> None:
    tab, long = _direct_case(6, 14, 2003, np.arange(2001, 2006), seed=4)
    tab["block"] = np.arange(20) % 4  # the 6 treated cells lie in 4 blocks
    with pytest.warns(
        UserWarning, match=r"carried by only 4 cluster\(s\) of 'block' in piece"
    ) as rec:
        ring_cs_from_parquet(long, tab, cluster="block")
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match=r"carried by only 6 cell\(s\) in piece 'direct'"):
        ring_cs_from_parquet(long, tab)


@pytest.mark.parametrize(
    ("cluster", "words"),
    [
        ("nope", "not in the exposure table"),
        (3, "must be the name of a column"),
        ("gap", "missing for cell 2"),
    ],
)
def test_bad_cluster_is_named(cluster, words) -> None:
    tab, long = _direct_case(4, 8, 2003, np.arange(2001, 2005), seed=3)
    tab["gap"] = np.where(np.arange(12) == 2, np.nan, 1.0)
    with pytest.raises(PanelError, match=words):
        ring_cs_from_parquet(long, tab, cluster=cluster)
