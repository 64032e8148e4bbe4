"""Edge inputs of the Dask Callaway & Sant'Anna engine, the repeated cross-section
multiplier bootstrap and Sun & Abraham's re-inference at extreme scales.

* The Dask CS engine equals the in-memory fit on what that fit was just taught: the
  pre-trend test leaves out the anticipation window (R ``did`` PR #276), a DR/IPW cell
  whose controls are all trimmed is a counted, named failure, and units observed in one
  period only are warned about. The reference is the in-memory fit
  (``tests/test_cs_edge_inputs.py`` checks it against R ``did``/``DRDID``); both engines
  compute the same formulas, so 1e-10 (``tests/test_distributed.py``) applies.
* The repeated cross-section multiplier bootstrap draws over an order fixed by the data,
  so renaming the units (and the clusters) leaves the bootstrap unchanged under the same
  seed; the reference is the fit on the original names.
* Sun & Abraham's ``with_inference`` scales with the outcome and its WLS ignores a
  constant factor on the weights; the reference is the same computation on the unscaled
  data (times ``c`` for outcome-scaled numbers).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import cs_repeated_cross_section as rcs
from zoneimpact.estimators import sun_abraham as sa

dask = pytest.importorskip("dask")
zd = pytest.importorskip("zoneimpact.distributed")

#: both engines compute the same formulas in another order of floating-point sums
#: (tests/test_distributed.py's tolerance)
TOL = 1e-10


@pytest.fixture(autouse=True)
def _threads():
    """Dask's threaded scheduler: no cluster to start (tests/test_distributed.py shows the
    numbers do not depend on it)."""
    with dask.config.set(scheduler="threads"):
        yield


def _write(frame: pd.DataFrame, folder: Path, n_files: int = 2) -> str:
    """The rows shuffled and split over Parquet files (units spread across files)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = frame.sample(frac=1.0, random_state=0)
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), n_files)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return str(folder / "*.parquet")


def _pair(frame: pd.DataFrame, folder: Path, covariates: list[str] | None = None):
    covs = covariates or []
    kw = {"unit": "id", "time": "t", "outcomes": ["y"], "cohort": "g", "covariates": covs}
    return Panel.from_frame(frame, **kw), zd.read_panel(_write(frame, folder), **kw)


def _assert_same(a, b) -> None:
    """The Dask result ``b`` equals the in-memory ``a`` (terms, cells, failures)."""
    assert list(a.terms["term"]) == list(b.terms["term"])
    for col in ("estimate", "se"):
        np.testing.assert_allclose(b.terms[col], a.terms[col], rtol=0, atol=TOL)
        np.testing.assert_allclose(b.att_gt[col], a.att_gt[col], rtol=0, atol=TOL)
    assert b.info["n_cells_failed"] == a.info["n_cells_failed"]


# --------------------------------------------------- A1. anticipation and the pre-test
def _anticipation_frame(n: int = 900) -> pd.DataFrame:
    """Parallel trends hold; effect 1 in g-2 and g-1 (anticipation 2), 3 from g on
    (tests/test_cs_edge_inputs.py's design)."""
    rng = np.random.default_rng(0)
    g = rng.choice([5, 6, 0], size=n)
    a = rng.normal(size=n)
    t = np.arange(1, 9)
    eff = np.where((g[:, None] > 0) & (t >= g[:, None]), 3.0, 0.0)
    eff = np.where((g[:, None] > 0) & (t < g[:, None]) & (t >= g[:, None] - 2), 1.0, eff)
    y = a[:, None] + 0.3 * t + eff + rng.normal(size=(n, len(t)))
    return pd.DataFrame(
        {"id": np.repeat(np.arange(n), len(t)), "t": np.tile(t, n), "g": np.repeat(g, len(t)),
         "y": y.ravel()}
    )  # fmt: skip


@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_dask_pretrend_test_leaves_out_the_anticipation_window(tmp_path, base_period) -> None:
    panel, dp = _pair(_anticipation_frame(), tmp_path)
    opts = {"anticipation": 2, "base_period": base_period, "bootstrap": False}
    a = cs.fit(panel, outcome="y", **opts)
    b = zd.callaway_santanna(dp, outcome="y", **opts)
    _assert_same(a, b)
    # the in-memory test keeps event times < -2 only (2 leads; R did PR #276); the Dask
    # fit tested the window's -2 and -1 too (df 4, F 321.8 and p 4e-58 against 0.93, 0.63
    # with parallel trends true)
    assert b.info["pretrend_df"] == a.info["pretrend_df"] == 2
    assert b.info["pretrend_stat"] == pytest.approx(a.info["pretrend_stat"], rel=1e-9)
    assert b.info["pretrend_p"] == pytest.approx(a.info["pretrend_p"], rel=1e-9)
    assert b.info["pretrend_p"] > 0.01


# ----------------------------------------------------- A2. every control trimmed
def _all_trimmed() -> pd.DataFrame:
    """Cohort 3 (700 units, x ~ N(0, 1)) against 3 never-treated units at x ~ 0 and a
    cohort 5 of 300 units at x ~ 0: in every cohort-3 cell the 3 controls have a
    propensity score in [0.995, 0.999), so all of them are trimmed
    (tests/test_cs_edge_inputs.py's design)."""
    rng = np.random.default_rng(0)
    rows = []
    n_t, n_c = 700, 3
    for i in range(n_t + n_c + 300):
        g = 3 if i < n_t else (0 if i < n_t + n_c else 5)
        x = rng.normal() if i < n_t else rng.normal() * 0.001
        for t in range(1, 6):
            rows.append((i, t, g, x + 0.1 * t + (2.0 if g and t >= g else 0) + rng.normal(), x))
    return pd.DataFrame(rows, columns=["id", "t", "g", "y", "x"])


@pytest.mark.parametrize("method", ["dr", "ipw"])
def test_dask_cell_with_every_control_trimmed_is_a_counted_failure(tmp_path, method) -> None:
    panel, dp = _pair(_all_trimmed(), tmp_path, covariates=["x"])
    opts = {"covariates": ["x"], "est_method": method, "bootstrap": False}
    match = (
        r"4 ATT\(g,t\) cell\(s\) could not be estimated.*\(3,2\) all 3 control unit\(s\) "
        r"have a propensity score >= 0.995 and are trimmed"
    )
    with pytest.warns(UserWarning, match=match):
        a = cs.fit(panel, outcome="y", **opts)
    # before: no warning and n_cells_failed 0 (cohort 3 left every aggregate unreported)
    with pytest.warns(UserWarning, match=match) as rec:
        b = zd.callaway_santanna(dp, outcome="y", **opts)
    assert [w.filename for w in rec if "could not be estimated" in str(w.message)] == [__file__]
    assert b.info["n_cells_failed"] == 4
    assert b.att_gt.query("cohort == 3")[["estimate", "se"]].isna().all().all()
    _assert_same(a, b)


# ---------------------------------------------------- A3. units observed in one period
def _with_single_units() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    g = rng.choice([3, 5, 0], size=n)
    rows = [
        (i + 1, t, g[i], rng.normal() + 0.2 * t + (1.0 if g[i] and t >= g[i] else 0.0))
        for i in range(n)
        for t in range(1, 7)
    ]
    frame = pd.DataFrame(rows, columns=["id", "t", "g", "y"])
    # 20 cohort-3 units observed in period 4 only, 20 more with no outcome at all
    single = pd.DataFrame({"id": np.arange(1000, 1020), "t": 4, "g": 3, "y": 0.0})
    blank = single.assign(id=single["id"] + 100, y=np.nan)
    return pd.concat([frame, single, blank], ignore_index=True)


def test_dask_warns_about_units_observed_in_one_period(tmp_path) -> None:
    frame = _with_single_units()
    single = frame[frame["id"] < 1100]
    panel, dp = _pair(single, tmp_path / "single")
    match = r"20 unit\(s\) \(first 1000\) have 'y' in one period only; they enter no ATT"
    with pytest.warns(UserWarning, match=match):
        a = cs.fit(panel, outcome="y", bootstrap=False)
    with pytest.warns(UserWarning, match=match) as rec:  # before: no warning
        b = zd.callaway_santanna(dp, outcome="y", bootstrap=False)
    assert [w.filename for w in rec if "one period only" in str(w.message)] == [__file__]
    _assert_same(a, b)
    # with blank units too, one warning names both, each by its smallest unit, as in memory
    panel, dp = _pair(frame, tmp_path / "both")
    both = (
        r"20 unit\(s\) \(first 1100\) have no observed 'y' and 20 more unit\(s\) "
        r"\(first 1000\) have 'y' in one period only"
    )
    with pytest.warns(UserWarning, match=both):
        cs.fit(panel, outcome="y", bootstrap=False)
    with pytest.warns(UserWarning, match=both):
        zd.callaway_santanna(dp, outcome="y", bootstrap=False)


def test_dask_balanced_panel_gives_no_unit_warning(tmp_path) -> None:
    frame = _with_single_units()
    _, dp = _pair(frame[frame["id"] < 1000], tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        zd.callaway_santanna(dp, outcome="y", bootstrap=False)


# ------------------------------------------- B. repeated cross-section bootstrap draws
def _rcs_frame(names: str) -> pd.DataFrame:
    """Staggered adoption (2004, 2007, never) over 2000-2009, 60 respondents in 6 regions,
    10% of outcomes missing; ``names`` "original" or "reversed": the respondents and
    regions renamed so that their sorted order is reversed (the same data)."""
    rng = np.random.default_rng(5)
    n, years = 60, np.arange(2000, 2010)
    g = np.array([2004, 2007, 0])[np.arange(n) % 3]
    a = rng.normal(size=n)
    y = (
        a[:, None]
        + 0.5 * (years - 2000)
        + np.where((g[:, None] > 0) & (years >= g[:, None]), 2.0 + 0.5 * (years - g[:, None]), 0)
        + rng.normal(size=(n, len(years)))
    )
    ids = [f"u{i:02d}" if names == "original" else f"Z{99 - i:02d}" for i in range(n)]
    region = [10 + i % 6 if names == "original" else 50 - 3 * (i % 6) for i in range(n)]
    frame = pd.DataFrame(
        {"id": np.repeat(ids, len(years)), "t": np.tile(years, n), "g": np.repeat(g, len(years)),
         "y": y.ravel(), "region": np.repeat(region, len(years))}
    )  # fmt: skip
    frame.loc[rng.random(len(frame)) < 0.1, "y"] = np.nan
    return frame


def _rcs_panel(names: str) -> Panel:
    return Panel.from_frame(
        _rcs_frame(names), unit="id", time="t", outcomes="y", cohort="g", covariates=["region"]
    )


@pytest.mark.parametrize("cluster", [None, "region"])
def test_rcs_bootstrap_does_not_follow_the_labels(cluster) -> None:
    # same data, same seed: the reversed names drew other multipliers per row and region
    # (se[att] 39.07 -> 41.63, se[calendar:2007] by region 14.32 -> 21.31 on a breaker's
    # panel, /tmp/brk_inv/relabel_boot_repro.py); the draws now follow the data's order
    opts = {"est_method": "reg", "cluster": cluster, "bootstrap": True, "n_boot": 199}
    fits = {
        nm: rcs.fit(_rcs_panel(nm), outcome="y", rng=3, **opts) for nm in ("original", "reversed")
    }
    a, b = fits["original"], fits["reversed"]
    # the analytic numbers agree to rounding (the rows are summed in another order)
    np.testing.assert_allclose(b.terms["estimate"], a.terms["estimate"], rtol=1e-9, atol=1e-12)
    for col in ("se", "band_low", "band_high"):
        np.testing.assert_allclose(b.terms[col], a.terms[col], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.att_gt["se"], a.att_gt["se"], rtol=1e-9, atol=1e-12)
    # with_inference redraws the fit's multipliers (same seed and clustering) on either name
    for nm, r in fits.items():
        again = rcs.fit(_rcs_panel(nm), outcome="y", est_method="reg", cluster=cluster)
        redrawn = again.with_inference("bootstrap", cluster=cluster, n_boot=199, rng=3)
        np.testing.assert_allclose(redrawn.terms["se"], r.terms["se"], rtol=1e-12, atol=0)
    if cluster is None:
        # and the bootstrap SE is the analytic one up to 199 draws' noise (IQR-based: within
        # 25%; with 6 regions the clustered draws take 64 values, too coarse for this check)
        analytic = rcs.fit(_rcs_panel("original"), outcome="y", est_method="reg")
        assert a.se == pytest.approx(analytic.se, rel=0.25)


def test_rcs_with_inference_bootstrap_by_a_series_does_not_follow_the_labels() -> None:
    # clusters as a Series by unit (names follow the units): the draws per region follow
    # the data's order too
    out = []
    for nm in ("original", "reversed"):
        frame = _rcs_frame(nm)
        r = rcs.fit(_rcs_panel(nm), outcome="y", est_method="reg")
        labels = frame.groupby("id")["region"].first()
        out.append(r.with_inference("bootstrap", cluster=labels, n_boot=199, rng=7).terms)
    np.testing.assert_allclose(out[1]["se"], out[0]["se"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[1]["band_low"], out[0]["band_low"], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------ C. Sun & Abraham at the extremes
#: y * c and w * c round each value (relative 2^-53); the least squares and the sandwich
#: carry that to ~1e-15 relative, so 1e-8 is far above rounding and far below the
#: failures (NaN, 0, or 1e-3 relative at 1e-160); tests/test_scale_inference.py's choice
SCALE_RTOL = 1e-8


def _sa_frame(seed: int = 0, n: int = 60, periods: int = 10) -> pd.DataFrame:
    """Staggered adoption (2004, 2006, 2008, never), a covariate, varying positive
    weights, 7 regions, 15% of outcomes missing."""
    rng = np.random.default_rng(seed)
    cohorts = [2004, 2006, 2008, 0]
    rows = []
    for i in range(n):
        g = cohorts[i % 4]
        a = rng.normal()
        wt = rng.uniform(0.5, 3.0)
        for t in range(2001, 2001 + periods):
            x = rng.normal() + 0.1 * (t - 2000)
            effect = 1.0 + 0.3 * (t - g) if g and t >= g else 0.0
            y = a + 0.2 * (t - 2000) + 0.5 * x + effect + rng.normal()
            rows.append((f"u{i:03d}", t, g, y, x, wt * rng.uniform(0.8, 1.2), i % 7))
    df = pd.DataFrame(rows, columns=["unit", "time", "g", "y", "x", "w", "reg"])
    df.loc[rng.random(len(df)) < 0.15, "y"] = np.nan
    return df


def _sa_panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df, unit="unit", time="time", outcomes=["y"], cohort="g", covariates=["x", "w", "reg"]
    )


@pytest.mark.parametrize("c", [1e160, -1e160, 1e-160])
@pytest.mark.parametrize("cluster", ["reg", None])
def test_sun_abraham_with_inference_is_scale_equivariant(c, cluster) -> None:
    df = _sa_frame()
    base = sa.fit(_sa_panel(df), outcome="y").with_inference(cluster=cluster)
    scaled = sa.fit(_sa_panel(df.assign(y=df["y"] * c)), outcome="y").with_inference(
        cluster=cluster
    )
    # before: by region SE/c 0.274286 at c = 1, NaN at 1e160, 0.274040 at 1e-160
    np.testing.assert_allclose(
        scaled.terms["estimate"], c * base.terms["estimate"], rtol=SCALE_RTOL
    )
    np.testing.assert_allclose(scaled.terms["se"], abs(c) * base.terms["se"], rtol=SCALE_RTOL)
    np.testing.assert_allclose(
        scaled.cohort_effects["se"], abs(c) * base.cohort_effects["se"], rtol=SCALE_RTOL
    )
    assert scaled.info["n_clusters"] == base.info["n_clusters"]


@pytest.mark.parametrize("c", [1e-300, 1e300, 2.0**70])
def test_sun_abraham_ignores_a_constant_factor_on_the_weights(c) -> None:
    df = _sa_frame()
    base = sa.fit(_sa_panel(df), outcome="y", weights="w")
    scaled = sa.fit(_sa_panel(df.assign(w=df["w"] * c)), outcome="y", weights="w")
    # before: SE 0 at weights x 1e-300 and NaN at x 1e300 (0.3068 here with the weights)
    for col in ("estimate", "se"):
        np.testing.assert_allclose(scaled.terms[col], base.terms[col], rtol=SCALE_RTOL)
    np.testing.assert_allclose(
        scaled.cohort_effects["se"], base.cohort_effects["se"], rtol=SCALE_RTOL
    )
    # the reported cell totals stay in the user's units
    np.testing.assert_allclose(
        scaled.cohort_effects["total_weight"], c * base.cohort_effects["total_weight"], rtol=1e-12
    )
    again, again0 = scaled.with_inference(cluster="reg"), base.with_inference(cluster="reg")
    np.testing.assert_allclose(again.terms["se"], again0.terms["se"], rtol=SCALE_RTOL)
    assert np.isfinite(again.terms["se"]).all()
