"""The Dask engines at extreme outcome scales and with few treated clusters, and the
in-memory imputation's Y(0) model far from zero.

* Scale: every estimator is equivariant in the outcome's scale (``y x c`` multiplies
  effects and SEs by ``c``). The in-memory fits keep this at ``c = 1e+-160`` through
  ``estimators._scale.scale_equivariant`` (dividing by a power of two is exact); the Dask
  fits now do the same, so the reference is the in-memory fit on the same data, itself
  checked against diff-diff and R ``did`` in the reference tests. Tolerance 1e-10
  relative: the engines differ only in the order of floating-point sums (~1e-15), while
  the old code gave SE inf/NaN at 1e160 and SEs off by 0.4% to 35% at 1e-160.
* Few treated clusters: the in-memory TWFE and imputation fits warn; the Dask fits now
  give the same message, pointing at the caller's line.
* Translation: the BJS Y(0) model absorbs a constant in the unit effects, so the fit on
  ``y + 1e9`` equals the fit on ``y`` (the offset removed exactly from the rounded data).
  The old in-memory ``_impute`` solved at the outcome's level and moved the estimates by
  4e-7 relative; 1e-12 leaves room for summation order only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna, imputation, spillover, twfe

dask = pytest.importorskip("dask")
zd = pytest.importorskip("zoneimpact.distributed")

REL = 1e-10


@pytest.fixture(scope="module", autouse=True)
def _synchronous():
    # one process: these tests check numbers, not the scheduler (test_distributed does)
    with dask.config.set(scheduler="synchronous"):
        yield


def _write(frame: pd.DataFrame, folder: Path, n_files: int = 3) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    rows = frame.sample(frac=1.0, random_state=0)
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), n_files)):
        rows.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return str(folder / "*.parquet")


def _simulated(seed: int = 7, n: int = 200, n_t: int = 8) -> pd.DataFrame:
    """Staggered panel with regions and holes (absent rows, missing outcomes)."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 4, 5, 7], size=n, p=[0.35, 0.25, 0.2, 0.2])
    unit = np.repeat(np.array([f"u{i:04d}" for i in range(n)]), n_t)
    t = np.tile(np.arange(1, n_t + 1), n)
    g = np.repeat(cohort, n_t)
    eff = np.where((g > 0) & (t >= g), 1.0 + 0.2 * (t - g), 0.0)
    y = np.repeat(rng.normal(size=n), n_t) + 0.1 * t + eff + rng.normal(size=n * n_t)
    frame = pd.DataFrame(
        {
            "id": unit,
            "year": t,
            "first": g,
            "y": y,
            "region": np.repeat(rng.integers(0, 25, size=n), n_t).astype(float),
        }
    )
    frame = frame[rng.random(len(frame)) > 0.06].reset_index(drop=True)
    frame.loc[rng.random(len(frame)) < 0.03, "y"] = np.nan
    return frame


def _pair(frame: pd.DataFrame, folder: Path) -> tuple[Panel, object]:
    panel = Panel.from_frame(
        frame, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["region"]
    )
    dp = zd.read_panel(
        _write(frame, folder), unit="id", time="year", outcomes=["y"], cohort="first",
        cluster="region", npartitions=3,
    )  # fmt: skip
    return panel, dp


def _assert_close(a: pd.DataFrame, b: pd.DataFrame, cols: tuple[str, ...]) -> None:
    a, b = a.set_index("term"), b.set_index("term")
    assert list(a.index) == list(b.index)
    for col in cols:
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        assert np.all(np.isfinite(y)), (col, y)
        np.testing.assert_allclose(y, x, rtol=REL, atol=0, err_msg=col)


FITS = {
    "twfe": (twfe.fit, "twfe", {}),
    "imputation": (imputation.fit, "imputation", {}),
    "cs": (callaway_santanna.fit, "callaway_santanna", {"bootstrap": False}),
    "cs_boot": (callaway_santanna.fit, "callaway_santanna", {"n_boot": 49, "rng": 1}),
}


@pytest.fixture(scope="module")
def scaled_pairs(tmp_path_factory):
    base = _simulated()
    out = {}
    for c in (1e160, 1e-160):
        frame = base.assign(y=base["y"] * c)
        out[c] = _pair(frame, tmp_path_factory.mktemp(f"scale{c:g}"))
    return out


@pytest.mark.parametrize("c", [1e160, 1e-160])
@pytest.mark.parametrize("name", list(FITS))
def test_dask_fit_is_scale_equivariant(scaled_pairs, name, c) -> None:
    # old code: se[att] inf (TWFE, imputation) or NaN (CS; the bootstrap's pre-trend
    # Wald test raised LinAlgError) at 1e160; at 1e-160 TWFE 1.154979e-161 for
    # 1.150208e-161, imputation 7.03e-162 for 1.08e-161, CS 1.405796e-161 for 1.432765e-161
    mem_fit, dask_name, kw = FITS[name]
    panel, dp = scaled_pairs[c]
    cluster = {"cluster": "region"} if name in ("twfe", "imputation") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mem_fit(panel, outcome="y", **cluster, **kw)
        b = getattr(zd, dask_name)(dp, outcome="y", **({"cluster": True} if cluster else {}), **kw)
    _assert_close(a.terms, b.terms, ("estimate", "se"))
    assert b.info["outcome_rescaled_by"] == a.info["outcome_rescaled_by"]
    if name.startswith("cs"):
        # the pre-trend Wald statistic is scale-free (NaN and "no pre-period term" before)
        assert b.info["pretrend_stat"] == pytest.approx(a.info["pretrend_stat"], rel=REL)


@pytest.fixture(scope="module")
def spill_inputs():
    from zoneimpact.exposure import build_exposure
    from zoneimpact.simulate import simulate

    sim = simulate(
        rng=3, n_units=140, n_regions=12, first_year=2005, last_year=2014,
        waves={2008: 0.5, 2011: 0.5},
    )  # fmt: skip
    regions = sim.geography.set_index("unit")["region"].astype(str)
    panel = Panel.from_frame(
        sim.panel.data.assign(cohort=sim.panel.data["cohort"].fillna(0)), unit="unit",
        time="time", outcomes=["fdi"], cohort="cohort", geography=sim.geography,
    )  # fmt: skip
    emap = build_exposure(panel, "rings", rings_km=[(0, 80), (80, 200)])
    return sim, regions, emap


@pytest.mark.parametrize("c", [1e160, 1e-160])
@pytest.mark.parametrize("base", ["callaway_santanna", "imputation"])
def test_dask_spillover_is_scale_equivariant(spill_inputs, tmp_path, base, c) -> None:
    # old code at 1e160: every SE inf and the share's SE 0.2734 for 0.2781 (CS base);
    # at 1e-160 SEs off by up to 1e-5 relative
    sim, regions, emap = spill_inputs
    data = sim.panel.data.copy()
    data["fdi"] *= c
    data["cohort"] = data["cohort"].fillna(0)
    panel = Panel.from_frame(
        data, unit="unit", time="time", outcomes=["fdi"], cohort="cohort",
        geography=sim.geography,
    )  # fmt: skip
    rows = data[["unit", "time", "cohort", "fdi"]].assign(
        region=regions.reindex(data["unit"]).to_numpy()
    )
    dp = zd.read_panel(
        _write(rows, tmp_path), unit="unit", time="time", outcomes=["fdi"], cohort="cohort",
        cluster="region", npartitions=3,
    )  # fmt: skip
    # the Dask engine's inference: no CR2 (imputation), CS's analytic SEs (CS)
    extra = {"small_sample": "none"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = spillover.fit(
            panel, outcome="fdi", base_estimator=base, exposure=emap, n_boot=0,
            cluster=regions.rename("region"), **extra,
        )  # fmt: skip
        b = zd.spillover(
            dp, outcome="fdi", base_estimator=base, exposure=emap, n_boot=0, cluster=True
        )
    ta = a.terms.set_index("term")
    tb = b.terms.set_index("term").loc[[t for t in ta.index if t in b.terms["term"].values]]
    ta = ta.loc[tb.index]
    for col in ("estimate", "se"):
        x, y = ta[col].to_numpy(float), tb[col].to_numpy(float)
        both = np.isfinite(x)
        assert np.array_equal(both, np.isfinite(y)), col
        # 1e-9: the pieces' sums run in another order over ~10 nested steps (the
        # in-memory and Dask fits agree to ~1e-14 at scale 1)
        np.testing.assert_allclose(y[both], x[both], rtol=1e-9, atol=0, err_msg=col)


def test_dask_twfe_and_imputation_warn_about_few_treated_clusters(tmp_path) -> None:
    # treated units in 3 of the 25 regions: in memory both fits warn (MacKinnon & Webb
    # 2017); the old Dask fits said nothing
    frame = _simulated()
    frame.loc[frame["region"] >= 3, "first"] = 0
    panel, dp = _pair(frame, tmp_path)
    for mem_fit, dask_fit in ((twfe.fit, zd.twfe), (imputation.fit, zd.imputation)):
        with warnings.catch_warnings(record=True) as wa:
            warnings.simplefilter("always")
            mem_fit(panel, outcome="y", cluster="region")
        with warnings.catch_warnings(record=True) as wb:
            warnings.simplefilter("always")
            dask_fit(dp, outcome="y", cluster=True)
        ma = [w for w in wa if "carried by only" in str(w.message)]
        mb = [w for w in wb if "carried by only" in str(w.message)]
        assert len(ma) == 1 and len(mb) == 1
        assert str(mb[0].message) == str(ma[0].message)
        assert "only 3 cluster(s) of 'region'" in str(mb[0].message)
        # the caller's line, as in memory
        assert mb[0].filename == __file__ == ma[0].filename


@pytest.mark.parametrize("offset", [1e8, 1e10])
def test_imputation_is_translation_invariant(offset) -> None:
    # truth: the fit on the same rounded data with the offset removed exactly
    # ((y + off) - off is exact in floating point); old relative errors 2.4e-8 at 1e8,
    # 2.4e-6 at 1e10
    frame = _simulated(seed=9)
    shifted = frame.assign(y=frame["y"] + offset)
    exact = shifted.assign(y=shifted["y"] - offset)
    fits = []
    for f in (shifted, exact):
        panel = Panel.from_frame(
            f, unit="id", time="year", outcomes=["y"], cohort="first", covariates=["region"]
        )
        fits.append(imputation.fit(panel, outcome="y", cluster="region").terms)
    a, b = (t.set_index("term") for t in fits)
    for col in ("estimate", "se"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-12, atol=0, err_msg=col)
