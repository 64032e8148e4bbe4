"""Bad, extreme and unusual input: the right number or a named error, never a wrong number.

One parametrised case per class of input found by the bad-input review (dates as time,
fractional cohorts, odd dtypes and indexes, empty frames, file encodings and formats,
unidentified spillover designs, constant outcomes, numerically extreme outcomes), plus a
property-based test (hypothesis) that generates panels and checks that every outcome is
either a ``ZoneImpactError`` or a result that is invariant to row order, unit labels and
an added constant, and that the caller's frame is never modified.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoneimpact import Panel
from zoneimpact.errors import EstimationError, PanelError, ZoneImpactError
from zoneimpact.estimators import REGISTRY, get_estimator, spillover, twfe
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.panel import read_table
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)


@pytest.fixture(scope="module")
def sim():
    return simulate(
        rng=1,
        n_units=60,
        n_regions=6,
        first_year=2003,
        last_year=2012,
        waves={2006: 0.5, 2009: 0.5},
    )


def _mpdta_like(seed: int = 0) -> pd.DataFrame:
    """40 units x 5 years, cohorts 2005/2006 and never, a clean additive effect of 1."""
    rng = np.random.default_rng(seed)
    years = np.arange(2003, 2008)
    g = rng.choice([0, 2005, 2006], size=40)
    df = pd.DataFrame([(i, t) for i in range(40) for t in years], columns=["id", "year"])
    df["g"] = g[df["id"]]
    d = (df["g"] > 0) & (df["year"] >= df["g"])
    df["y"] = (
        rng.normal(size=40)[df["id"]]
        + 0.3 * (df["year"] - 2003)
        + d
        + rng.normal(scale=0.5, size=len(df))
    )
    df["d"] = d.astype(int)
    return df


def _cs(frame: pd.DataFrame, **kw) -> float:
    p = Panel.from_frame(frame, unit="id", outcomes="y", **kw)
    return cs.fit(p, outcome="y", bootstrap=False).estimate


# ----------------------------------------------------------------------------- time as dates
def test_dates_and_periods_as_time_give_the_same_numbers():
    df = _mpdta_like()
    ref = _cs(df, time="year", cohort="g")
    as_date = pd.to_datetime(df["year"].astype(str) + "-01-01")
    g_date = pd.to_datetime(df["g"].replace(0, np.nan).astype("Int64").astype(str), errors="coerce")
    # annual dates with a numeric (year) cohort, with a date cohort, and annual Periods
    assert _cs(df.assign(t=as_date), time="t", cohort="g") == pytest.approx(ref, rel=1e-12)
    assert _cs(df.assign(t=as_date, gd=g_date), time="t", cohort="gd") == pytest.approx(
        ref, rel=1e-12
    )
    assert _cs(
        df.assign(t=df["year"].map(lambda y: pd.Period(str(y), "Y"))), time="t", cohort="g"
    ) == (pytest.approx(ref, rel=1e-12))


def test_quarterly_dates_count_event_time_in_quarters():
    # the same five periods as consecutive quarters: identical estimates, event times in
    # quarters (not nanoseconds, not days)
    df = _mpdta_like()
    quarter = {y: pd.Period("2010Q3", "Q") + i for i, y in enumerate(range(2003, 2008))}
    q = df.assign(
        t=df["year"].map(quarter).dt.to_timestamp(how="end").dt.normalize(),
        gq=df["g"].map(lambda g: quarter[g].to_timestamp() if g else pd.NaT),
    )
    p = Panel.from_frame(q, unit="id", time="t", outcomes="y", cohort="gq")
    assert p.report["time_frequency"] == "Q"
    r = cs.fit(p, outcome="y", bootstrap=False)
    ref = cs.fit(
        Panel.from_frame(df, unit="id", time="year", outcomes="y", cohort="g"),
        outcome="y",
        bootstrap=False,
    )
    assert r.estimate == pytest.approx(ref.estimate, rel=1e-12)
    ev = [t for t in r.terms["term"] if t.startswith("event:")]
    assert ev == [t for t in ref.terms["term"] if t.startswith("event:")]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # uneven dates: no regular frequency
        (
            lambda d: d.assign(
                year=d["year"]
                .map(
                    {
                        2003: "2003-01-01",
                        2004: "2003-01-15",
                        2005: "2003-03-01",
                        2006: "2003-07-09",
                        2007: "2003-12-30",
                    }
                )
                .pipe(pd.to_datetime)
            ),
            "not regularly spaced",
        ),
        # quarterly dates with a numeric cohort: the scales differ
        (
            lambda d: d.assign(
                year=d["year"]
                .map(lambda y: pd.Period("2010Q1", "Q") + (y - 2003))
                .dt.to_timestamp()
            ),
            "holds dates .*quarterly.* holds numbers",
        ),
        (lambda d: d.assign(g=d["g"].replace(2005, 2005.5)), r"whole periods.*2005\.5"),
        (lambda d: d.assign(year=d["year"] + 0.25), "whole-numbered periods or dates"),
        (lambda d: d.assign(year=d["year"] > 2004), "boolean"),
        (lambda d: d.iloc[:0], "no rows"),
    ],
    ids=[
        "irregular-dates",
        "quarters-vs-numeric-cohort",
        "fractional-cohort",
        "fractional-time",
        "bool-time",
        "empty",
    ],
)
def test_time_and_cohort_errors(edit, message):
    df = _mpdta_like()
    before = df.copy()
    with pytest.raises(PanelError, match=message):
        Panel.from_frame(edit(df), unit="id", time="year", outcomes="y", cohort="g")
    pd.testing.assert_frame_equal(df, before)


# ----------------------------------------------------------------------------- odd frames
def test_valid_frames_with_odd_dtypes_and_indexes():
    df = _mpdta_like()
    ref = _cs(df, time="year", cohort="g")
    # a non-unique index (after pd.concat) must not align rows with each other
    dup = pd.concat([df.iloc[:100], df.iloc[100:]])
    dup.index = np.r_[np.arange(100), np.arange(len(df) - 100)]
    assert _cs(dup, time="year", treatment="d") == pytest.approx(ref, rel=1e-12)
    # a nullable boolean treatment column
    assert _cs(df.assign(d=df["d"].astype(bool).astype("boolean")), time="year", treatment="d") == (
        pytest.approx(ref, rel=1e-12)
    )
    with pytest.raises(PanelError, match=r"must be 0/1; received <NA>"):
        Panel.from_frame(
            df.assign(d=df["d"].astype("boolean").where(df.index != 7)),
            unit="id",
            time="year",
            outcomes="y",
            treatment="d",
        )


@pytest.mark.parametrize("kind", ["utf-8-sig", "utf-16", "dta", "parquet", "tsv"])
def test_file_formats_read_the_same_table(tmp_path, kind):
    df = _mpdta_like()[["id", "year", "g", "y"]]
    if kind == "dta":
        path = tmp_path / "p.dta"
        df.to_stata(path, write_index=False)
    elif kind == "parquet":
        path = tmp_path / "p.parquet"
        df.to_parquet(path)
    elif kind == "tsv":
        path = tmp_path / "p.tsv"
        df.to_csv(path, sep="\t", index=False)
    else:
        path = tmp_path / "p.csv"
        df.to_csv(path, index=False, encoding=kind)
    got = read_table(path)
    assert list(got.columns) == ["id", "year", "g", "y"]
    np.testing.assert_allclose(got["y"].to_numpy(float), df["y"].to_numpy(), rtol=1e-6)


def test_file_errors_are_named(tmp_path):
    (tmp_path / "x.xlsx").write_text("not a spreadsheet")
    with pytest.raises(PanelError, match=r"unknown file type '\.xlsx'"):
        read_table(tmp_path / "x.xlsx")
    (tmp_path / "bad.csv").write_bytes(b"a,b\n\xff\x00x,1\n")
    with pytest.raises(PanelError, match="Cannot decode .*Save the file as UTF-8"):
        read_table(tmp_path / "bad.csv")
    with pytest.raises(PanelError, match="not found"):
        read_table(tmp_path / "missing.csv")


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(cohort=0), "No zone unit-period"),
        (lambda f: f[f["year"] == 2006], "at least two periods"),
        (
            lambda f: f.assign(cohort=np.where(f["cohort"] == 0, 2011, f["cohort"])),
            r"\[2011, 2012\] have no clean control row",
        ),
    ],
    ids=["no-zone", "one-period", "no-clean-control"],
)
def test_spillover_refuses_unidentified_designs(sim, edit, message):
    f = edit(sim.frame)
    geo = sim.geography[sim.geography["unit"].isin(f["unit"])]
    p = Panel.from_frame(
        f,
        unit="unit",
        time="year",
        outcomes="fdi",
        cohort="cohort",
        geography=geo,
        outside_window="adjust",
    )
    with pytest.raises(EstimationError, match=message):
        spillover.fit(p, outcome="fdi", exposure="rings", n_boot=9)


def test_constant_outcome_has_zero_se(sim):
    # every ATT is exactly 0 with no sampling variability: SE 0, not NaN
    p = sim.panel.with_outcome("c", np.full(len(sim.panel.data), 5.0))
    for kw in ({"bootstrap": False}, {"n_boot": 49, "rng": 1}):
        r = cs.fit(p, outcome="c", **kw)
        assert r.estimate == 0.0 and r.se == 0.0, kw


# ----------------------------------------------------------------------------- extreme scales
_SCALE_OPTIONS = {
    "synthetic_did": {"n_reps": 20},
    "spillover": {"n_boot": 19},
    "callaway_santanna": {"n_boot": 49},
}


@pytest.fixture(scope="module")
def prop99_like():
    """A one-treated-unit panel for the SC family (California-like: 1 treated, 20 donors)."""
    rng = np.random.default_rng(3)
    years = np.arange(1970, 1990)
    rows = []
    load = rng.uniform(0.5, 1.5, size=21)
    trend = np.cumsum(rng.normal(1.0, 1.0, size=len(years)))
    for i in range(21):
        for k, t in enumerate(years):
            y = 100 + 10 * load[i] * trend[k] + rng.normal() - (8.0 if i == 0 and t >= 1985 else 0)
            rows.append((f"s{i:02d}", t, y, int(i == 0 and t >= 1985)))
    df = pd.DataFrame(rows, columns=["state", "year", "y", "d"])
    return Panel.from_frame(df, unit="state", time="year", outcomes="y", treatment="d")


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("factor", [2.0**990, 2.0**-990, 1e300 / 300, 1e-300])
def test_every_estimator_is_scale_equivariant_at_the_extremes(sim, prop99_like, name, factor):
    # Outcomes near 1e300 used to give inf/NaN SEs and wrong SC weights, near 1e-300 a
    # wrong PPML coefficient; now estimates and SEs scale with the outcome (PPML's
    # semi-elasticities do not). A power-of-two factor is exact; 1e300/300 and 1e-300 are
    # not (the rescaled outcome differs in its last bit), hence 1e-9 relative on estimates
    # and 1e-8 on SC weights, which come out of an iterative QP.
    if name in ("synthetic_control", "augmented_sc"):
        base, out = prop99_like, "y"
    else:
        base, out = sim.panel, "fdi"
    y = base.data[out].to_numpy() + 50.0
    opts = _SCALE_OPTIONS.get(name, {})
    fit = get_estimator(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fit(base.with_outcome("yy", y), outcome="yy", rng=1, **opts)
        big = fit(base.with_outcome("yy", y * factor), outcome="yy", rng=1, **opts)
    k = 1.0 if name == "ppml" else factor
    assert "outcome_rescaled_by" not in ref.info  # ordinary data are not touched
    assert big.estimate / k == pytest.approx(ref.estimate, rel=1e-9)
    if np.isfinite(ref.se):
        assert big.se / k == pytest.approx(ref.se, rel=1e-9)
    free = big.terms["term"].str.startswith("weight:") | (big.terms["term"] == "displacement_share")
    np.testing.assert_allclose(
        big.terms.loc[free, "estimate"], ref.terms.loc[free, "estimate"], rtol=1e-8, atol=1e-12
    )


# ----------------------------------------------------------------------------- property-based
@st.composite
def panels(draw):
    """Small long panels with random sizes, cohorts (also outside the window), missing
    unit-periods, NaN outcomes and unit labels."""
    n = draw(st.integers(2, 12))
    T = draw(st.integers(2, 6))
    first = draw(st.integers(1990, 2020))
    years = np.arange(first, first + T)
    choices = [0, 0, *years[1:].tolist(), first, first + T + 3]
    cohorts = draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n))
    rows = []
    for i in range(n):
        for t in years:
            if draw(st.integers(0, 9)) > 0:  # about one unit-period in ten is missing
                y = draw(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(np.nan)))
                rows.append((f"u{i}", int(t), cohorts[i], y))
    return pd.DataFrame(rows, columns=["unit", "year", "g", "y"])


def _fit(frame: pd.DataFrame) -> float:
    p = Panel.from_frame(
        frame, unit="unit", time="year", outcomes="y", cohort="g", outside_window="adjust"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return twfe.fit(p, outcome="y").estimate


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=panels(), seed=st.integers(0, 2**16))
def test_property_named_error_or_invariant_result(frame, seed):
    # about 40% of the generated panels are estimable (measured on 200 examples); the
    # others must end in a ZoneImpactError, never in another exception
    before = frame.copy()
    rng = np.random.default_rng(seed)
    try:
        est = _fit(frame)
    except ZoneImpactError:
        pd.testing.assert_frame_equal(frame, before)
        return
    pd.testing.assert_frame_equal(frame, before)
    # the robust estimators on the same panel: a result or a named error
    p = Panel.from_frame(
        frame, unit="unit", time="year", outcomes="y", cohort="g", outside_window="adjust"
    )
    for name in ("callaway_santanna", "imputation", "sun_abraham", "bacon", "synthetic_did"):
        opts = {"bootstrap": False} if name == "callaway_santanna" else {}
        if name == "synthetic_did":
            opts = {"se_method": None}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_estimator(name)(p, outcome="y", **opts)
        except ZoneImpactError:
            pass
    # row order, unit labels and an added constant do not change the estimate
    shuffled = frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))
    labels = {u: f"z{int(rng.integers(1 << 30))}_{u}" for u in frame["unit"].unique()}
    est2 = _fit(shuffled.assign(unit=shuffled["unit"].map(labels), y=shuffled["y"] + 1234.5))
    scale = max(1.0, float(np.nanmax(np.abs(frame["y"].to_numpy()))))
    # rounding in the absorbed fixed effects grows with the outcome's magnitude
    assert est2 == pytest.approx(est, rel=1e-6, abs=1e-9 * scale)
