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
from typing import Any

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
    ],
    ids=["no-zone", "one-period"],
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


def test_spillover_says_which_targets_it_leaves_out(sim):
    # every never-zone unit becomes a zone in 2011: 2011-2012 have no clean control, so
    # zone unit-periods there cannot be imputed; they are left out loudly (a warning with
    # the counts; pieces lists them) instead of turning every number into NaN
    f = sim.frame.assign(cohort=np.where(sim.frame["cohort"] == 0, 2011, sim.frame["cohort"]))
    p = Panel.from_frame(
        f, unit="unit", time="year", outcomes="fdi", cohort="cohort", geography=sim.geography
    )
    with pytest.warns(UserWarning, match=r"Piece 'direct': \d+ of \d+ target unit-periods"):
        r = spillover.fit(p, outcome="fdi", exposure="rings", n_boot=9)
    row = r.pieces.set_index("piece").loc["direct"]
    assert row["n_unidentified"] > 0 and np.isfinite(r.estimate)
    assert r.coef("direct_total") == pytest.approx(r.estimate * row["n_target_unit_periods"])


def test_constant_outcome_has_zero_se(sim):
    # every ATT is exactly 0 with no sampling variability: SE 0, not NaN
    p = sim.panel.with_outcome("c", np.full(len(sim.panel.data), 5.0))
    for kw in ({"bootstrap": False}, {"n_boot": 49, "rng": 1}):
        r = cs.fit(p, outcome="c", **kw)
        assert r.estimate == 0.0 and r.se == 0.0, kw


# ----------------------------------------------------------------------------- extreme scales
# fewer resampling draws than the defaults: the draws are seeded, so scaling is checked
# draw for draw whatever their number
_SCALE_OPTIONS = {
    "synthetic_did": {"n_reps": 20},
    "matrix_completion": {"n_reps": 20},
    "ife": {"n_reps": 20},
    "spillover": {"n_boot": 19},
    "callaway_santanna": {"n_boot": 49},
}


_SCALE_REFS: dict[str, Any] = {}


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
    if name == "triple_difference":
        # the third difference needs a 0/1 eligibility column: half the units eligible
        codes = pd.factorize(base.data["unit"])[0]
        base = base.replace(
            data=base.data.assign(q=(codes % 2).astype(float)),
            covariates=(*base.covariates, "q"),
        )
        opts = {"eligible": "q"}
    fit = get_estimator(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the unscaled fit is the same for every factor: fitted once per estimator
        if name not in _SCALE_REFS:
            _SCALE_REFS[name] = fit(base.with_outcome("yy", y), outcome="yy", rng=1, **opts)
        ref = _SCALE_REFS[name]
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


# ============================================================================ adversarial corpus
# Regression tests for the classes of bugs found by benchmarks/bad_input_corpus.py: each
# class either gives the right number or a ZoneImpactError that names what was received
# and what is allowed; the caller's frame is never modified.
import os  # noqa: E402

from zoneimpact.errors import GeographyError, RunDirectoryError, SpecError  # noqa: E402
from zoneimpact.results import TermError  # noqa: E402

_KW = dict(unit="id", time="year", outcomes="y", cohort="g")


def _raises_unchanged(frame: pd.DataFrame, error: type[Exception], message: str, **kw) -> None:
    before = frame.copy()
    with pytest.raises(error, match=message):
        Panel.from_frame(frame, **{**_KW, **kw})
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"outcomes": None}, r"outcomes must be a column name or a list .* received None"),
        ({"outcomes": 123}, r"outcomes must be a column name or a list .* received 123"),
        ({"unit": ["id"]}, r"unit must be one column name; received \['id'\]"),
        (
            {"outside_window": "adjsut"},
            "outside_window must be 'error' or 'adjust'; received 'adjsut'",
        ),
        ({"never_values": ["never"]}, r"never_values must be a list of numbers .* \['never'\]"),
        ({"never_values": None}, "never_values must be a list of numbers"),
    ],
    ids=["outcomes-none", "outcomes-int", "unit-list", "window-typo", "never-text", "never-none"],
)
def test_panel_arguments_are_checked(kw, message):
    _raises_unchanged(_mpdta_like(), PanelError, message, **kw)


def test_panel_names_duplicate_columns_and_index_ids():
    df = _mpdta_like()
    _raises_unchanged(
        pd.concat([df, df[["y"]]], axis=1), PanelError, r"several columns named \['y'\]"
    )
    _raises_unchanged(
        df.set_index("id"), PanelError, r"\['id'\] is in the index: call frame.reset_index"
    )
    # one covariate given as a string is that covariate, not its letters
    p = Panel.from_frame(df.assign(lpop=df["y"] * 0), covariates="lpop", **_KW)
    assert p.covariates == ("lpop",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.assign(y=d["y"] + 1j), "'y' holds complex numbers"),
        (lambda d: d.assign(y=pd.to_datetime(d["y"] * 1e9)), "'y' holds dates"),
        (lambda d: d.assign(y=pd.to_timedelta(d["y"], unit="s")), r"'y' holds durations"),
        (lambda d: d.assign(year=d["year"] + 0j), "'year' holds complex numbers"),
        (lambda d: d.assign(year=pd.to_timedelta(d["year"], unit="D")), "'year' holds durations"),
        (lambda d: d.assign(year=d["year"] * 10**16, g=d["g"] * 10**16), r"beyond \+-2\*\*53"),
        (lambda d: d.assign(g=d["g"] > 0), "Cohort column 'g' is boolean.*pass treatment="),
        (lambda d: d.assign(g=d["g"] + 0j), "Cohort column 'g' holds complex numbers"),
        (
            lambda d: d.assign(
                g=pd.to_datetime(
                    d["g"].replace(0, np.nan).astype("Int64").astype(str), errors="coerce"
                )
            ),
            "Cohort column 'g' holds dates but column 'year' holds numbers",
        ),
        (lambda d: d.assign(g=(d["g"] > 0).astype(int)), r"holds only 0/1 values: .* treatment="),
    ],
    ids=[
        "complex-outcome",
        "date-outcome",
        "duration-outcome",
        "complex-time",
        "duration-time",
        "time-1e20",
        "bool-cohort",
        "complex-cohort",
        "date-cohort-numeric-time",
        "indicator-as-cohort",
    ],
)
def test_values_that_are_not_numbers_are_named(edit, message):
    # complex parts, dates and durations used to become numbers (imaginary parts dropped,
    # nanoseconds) and periods beyond 2**53 overflowed int64 into duplicate periods
    _raises_unchanged(edit(_mpdta_like()), PanelError, message)


def test_annual_dates_in_mid_year_are_annual():
    # 1 July is one position in every year although its distance from 1 January changes in
    # leap years; the dates were taken for every fourth quarter
    df = _mpdta_like()
    mid = df.assign(year=pd.to_datetime(df["year"].astype(str) + "-07-01"))
    p = Panel.from_frame(mid, **_KW)
    assert p.report["time_frequency"] == "Y"
    assert _cs(mid, time="year", cohort="g") == pytest.approx(
        _cs(df, time="year", cohort="g"), rel=1e-12
    )


def test_unit_labels_that_print_alike_stay_distinct_in_ppml():
    # units 0 and "0" are two labels that print alike; PPML's dummies were built from
    # str(unit) and merged them. from_frame now refuses such a unit column (it is almost
    # always one unit spelled two ways), so the labels are put in through Panel.replace,
    # which does not re-validate, to keep PPML itself honest
    from zoneimpact.estimators import ppml

    df = _mpdta_like().assign(yp=lambda d: np.exp(d["y"] / 3))
    both = pd.concat([df, df[df["id"] == 0].assign(id="0")])
    kw = {**_KW, "outcomes": "yp"}
    with pytest.raises(PanelError, match=r"mixes numbers and text, e\.g\. 0 and '0'"):
        Panel.from_frame(both, **kw)
    renamed = pd.concat([df, df[df["id"] == 0].assign(id="zero")])
    b_panel = Panel.from_frame(renamed, **kw)
    data = b_panel.data.copy()
    data["unit"] = data["unit"].astype(object).where(data["unit"] != "zero", "0")
    a = ppml.fit(b_panel.replace(data=data), outcome="yp")
    b = ppml.fit(b_panel, outcome="yp")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-10) and a.n_units == 41


@pytest.mark.parametrize(
    ("geo_edit", "message"),
    [
        (lambda g: g.assign(lat="north"), "Geography column 'lat' is not numeric: 'north'"),
        (lambda g: g.assign(lon=999.0), r"Longitude out of range .* \[-180, 180\]"),
        (lambda g: g.assign(lon=np.inf), "Longitude out of range"),
    ],
    ids=["lat-text", "lon-999", "lon-inf"],
)
def test_geography_coordinates_are_checked(geo_edit, message):
    df = _mpdta_like()
    geo = geo_edit(pd.DataFrame({"unit": range(40), "lat": 30.0, "lon": 110.0}))
    _raises_unchanged(df, GeographyError, message, geography=geo)


def test_with_outcome_is_checked():
    p = Panel.from_frame(_mpdta_like(), **_KW)
    n = len(p.data)
    with pytest.raises(PanelError, match="other than .*received 'unit'"):
        p.with_outcome("unit", np.ones(n))  # used to overwrite the unit ids
    with pytest.raises(PanelError, match=r"\(199,\) values for 200 rows"):
        p.with_outcome("z", np.ones(n - 1))
    with pytest.raises(PanelError, match="infinite value at unit 0, period 2003"):
        p.with_outcome("z", np.r_[np.inf, np.ones(n - 1)])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: 5, r"must be a path .* received 5 \(int\)"),
        (lambda tmp: (tmp / "d.csv").mkdir() or tmp / "d.csv", "is a folder, not a data file"),
        (lambda tmp: os.mkfifo(tmp / "p.csv") or tmp / "p.csv", "not a regular file"),
        (
            lambda tmp: (
                (tmp / "u.csv").write_bytes("id,year\n1,2003\n".encode("utf-16-le"))
                and tmp / "u.csv"
            ),
            "Cannot decode .*NUL bytes.*Save the file as UTF-8",
        ),
    ],
    ids=["int", "folder", "fifo", "utf16-without-bom"],
)
def test_read_table_refuses_what_is_not_a_data_file(tmp_path, make, message):
    # a FIFO used to hang, UTF-16 without a byte-order mark was read as garbage columns
    with pytest.raises(PanelError, match=message):
        read_table(make(tmp_path))
    with pytest.raises(PanelError, match="sep must be a non-empty string"):
        read_table(tmp_path / "x.csv", sep="")


# ----------------------------------------------------------------------------- fit arguments
_DID_ESTIMATORS = [
    "twfe",
    "event_study",
    "callaway_santanna",
    "sun_abraham",
    "imputation",
    "bacon",
    "ppml",
    "synthetic_did",
]
_SC_ESTIMATORS = ["synthetic_control", "augmented_sc"]
_FAST = {
    "callaway_santanna": {"bootstrap": False},
    "synthetic_did": {"se_method": None},
    "synthetic_control": {"placebos": False},
    "augmented_sc": {"se": False},
}


@pytest.fixture(scope="module")
def did_panel():
    df = _mpdta_like().assign(yp=lambda d: np.exp(d["y"] / 3))
    return Panel.from_frame(df, **{**_KW, "outcomes": ["y", "yp"]})


@pytest.mark.parametrize("name", _DID_ESTIMATORS + _SC_ESTIMATORS)
@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"alpha": 0}, r"alpha must be a number in \(0, 1\).*received 0"),
        ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\).*received 1.5"),
        ({"alpha": "0.05"}, r"alpha must be a number in \(0, 1\).*received '0.05'"),
        ({"alpha": float("nan")}, r"alpha must be a number in \(0, 1\).*received nan"),
        ({"n_jobs": 0}, "n_jobs must be a whole number >= 1, or -1"),
        ({"rng": "seed"}, r"rng \(a seed\) must be a whole number >= 0; received 'seed'"),
        ({"rng": -1}, r"rng \(a seed\) must be a whole number >= 0; received -1"),
    ],
    ids=["alpha-0", "alpha-1.5", "alpha-text", "alpha-nan", "n_jobs-0", "rng-text", "rng-negative"],
)
def test_every_fit_checks_the_shared_arguments(did_panel, prop99_like, name, kw, message):
    # alpha outside (0, 1) used to be stored on the result (NaN or infinite intervals)
    panel = prop99_like if name in _SC_ESTIMATORS else did_panel
    outcome = "yp" if name == "ppml" else "y"
    with pytest.raises(SpecError, match=message):
        get_estimator(name)(panel, outcome=outcome, **{**_FAST.get(name, {}), **kw})


@pytest.mark.parametrize("name", _DID_ESTIMATORS + _SC_ESTIMATORS)
def test_every_fit_needs_a_panel(name):
    with pytest.raises(SpecError, match=f"{name} needs a zoneimpact Panel; received DataFrame"):
        get_estimator(name)(_mpdta_like(), outcome="y")


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, float("nan"), "0.05"])
def test_result_intervals_check_alpha(did_panel, alpha):
    res = cs.fit(did_panel, outcome="y", bootstrap=False)
    for method in (res.conf_int, res.tidy, res.records):
        with pytest.raises(SpecError, match=r"alpha must be a number in \(0, 1\)"):
            method(alpha)
    with pytest.raises(TermError, match=r"No term 'event:99'; terms are \['att'"):
        res.coef("event:99")


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        (
            "callaway_santanna",
            {"bootstrap": "false"},
            SpecError,
            "bootstrap must be true or false; received 'false'",
        ),
        (
            "callaway_santanna",
            {"n_boot": "x"},
            SpecError,
            "n_boot must be a whole number >= 2; received 'x'",
        ),
        (
            "callaway_santanna",
            {"n_boot": 99.5},
            SpecError,
            "n_boot must be a whole number >= 2; received 99.5",
        ),
        ("callaway_santanna", {"n_boot": 10**12}, SpecError, "GiB of memory"),
        (
            "callaway_santanna",
            {"bootstrap": False, "min_e": 3, "max_e": -3},
            SpecError,
            "min_e=3 exceeds max_e=-3",
        ),
        (
            "callaway_santanna",
            {"bootstrap": False, "max_e": -1},
            SpecError,
            "max_e=-1 leaves no post-treatment",
        ),
        (
            "callaway_santanna",
            {"bootstrap": False, "min_e": "x"},
            SpecError,
            "min_e must be a whole number",
        ),
        (
            "callaway_santanna",
            {"bootstrap": False, "balance_e": 100},
            EstimationError,
            "balance_e=100: no cohort",
        ),
        (
            "callaway_santanna",
            {"bootstrap": False, "anticipation": "x"},
            SpecError,
            "anticipation must be a whole number",
        ),
        (
            "callaway_santanna",
            {"bootstrap": False, "cluster": "time"},
            SpecError,
            "cluster='time' does not group units",
        ),
        (
            "event_study",
            {"lags": "x"},
            SpecError,
            "lags must be a whole number >= 0 or None; received 'x'",
        ),
        (
            "event_study",
            {"lags": 1.5},
            SpecError,
            "lags must be a whole number >= 0 or None; received 1.5",
        ),
        ("event_study", {"ref": "x"}, SpecError, "ref_period must be a whole number; received 'x'"),
        ("twfe", {"cluster": ["unit"]}, SpecError, "cluster must be a column name"),
        (
            "twfe",
            {"fixed_effects": 5},
            SpecError,
            "fixed_effects must be a name or a list of names",
        ),
        (
            "sun_abraham",
            {"ref_period": None},
            SpecError,
            "ref_period must be a whole number or a list",
        ),
        ("sun_abraham", {"min_e": "x"}, SpecError, "min_e must be a whole number or None"),
        ("imputation", {"horizons": "x"}, SpecError, "horizons must be a list of event times"),
        (
            "imputation",
            {"pretrends": "x"},
            EstimationError,
            "pretrends='x' must be a non-negative integer",
        ),
        (
            "imputation",
            {"weights": "unit"},
            EstimationError,
            "Weight column 'unit' is not in the panel",
        ),
        (
            "synthetic_did",
            {"n_reps": 1},
            SpecError,
            "n_reps must be a whole number >= 2; received 1",
        ),
        (
            "synthetic_did",
            {"n_reps": "x"},
            SpecError,
            "n_reps must be a whole number >= 2; received 'x'",
        ),
        (
            "synthetic_did",
            {"zeta_omega": float("nan")},
            SpecError,
            "zeta_omega must be a finite number >= 0",
        ),
        ("synthetic_did", {"max_iter": 0}, SpecError, "max_iter must be a whole number >= 1"),
    ],
)
def test_did_options_are_checked(did_panel, name, options, error, message):
    # each used to be a raw TypeError/ValueError, a NaN estimate, a silently truncated
    # number, or (bootstrap="false") the opposite of what was asked
    with pytest.raises(error, match=message):
        get_estimator(name)(did_panel, outcome="y", rng=1, **options)


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        (
            "synthetic_control",
            {"fit_window": [1985]},
            SpecError,
            r"fit_window must be \[first, last\]",
        ),
        ("synthetic_control", {"fit_window": [1984, 1980]}, SpecError, "is reversed"),
        ("synthetic_control", {"fit_window": [1900, 1910]}, SpecError, "holds no observed period"),
        (
            "synthetic_control",
            {"v": [float("nan")] * 15},
            SpecError,
            "finite non-negative predictor weights",
        ),
        (
            "synthetic_control",
            {"treatment_start": "x", "treated_unit": "s05"},
            SpecError,
            "treatment_start must be a whole number",
        ),
        (
            "synthetic_control",
            {"donors": ["s01", "s01", "s02"]},
            SpecError,
            "donors: unit 's01' is listed twice",
        ),
        ("synthetic_control", {"predictors": []}, SpecError, "predictors is empty"),
        ("synthetic_control", {"in_time": "x"}, SpecError, "in_time must be a whole number"),
        (
            "augmented_sc",
            {"lambda_": float("nan")},
            SpecError,
            "lambda_ must be a finite number >= 0",
        ),
        (
            "augmented_sc",
            {"lambda_": float("inf")},
            SpecError,
            "lambda_ must be a finite number >= 0",
        ),
        ("augmented_sc", {"lambda_": "x"}, SpecError, "lambda_ must be a finite number >= 0"),
        (
            "augmented_sc",
            {"donors": ["s01", "s02"], "se": True},
            EstimationError,
            "needs at least 3 donors",
        ),
        (
            "augmented_sc",
            {"donors": ["s01", "atlantis", "s02"]},
            EstimationError,
            "donors: unit 'atlantis' is not in the panel",
        ),
    ],
)
def test_sc_options_are_checked(prop99_like, name, options, error, message):
    # malformed windows used to divide by zero, NaN V to fail in an SVD, a NaN or infinite
    # ridge penalty to give a NaN estimate, and two donors a NaN SE without an error
    opts = {**_FAST[name], **options}
    with pytest.raises(error, match=message):
        get_estimator(name)(prop99_like, outcome="y", rng=1, **opts)


def test_valid_odd_options_give_the_usual_numbers(did_panel):
    ref = get_estimator("event_study")(did_panel, outcome="y")
    # a window of 10**9 periods used to build a dummy per event time (a hang)
    wide = get_estimator("event_study")(did_panel, outcome="y", lags=10**9, leads=10**9)
    pd.testing.assert_frame_equal(wide.terms, ref.terms)
    # a string is one covariate, not a list of its letters
    df = _mpdta_like().assign(lpop=lambda d: np.random.default_rng(1).normal(size=len(d)))
    p = Panel.from_frame(df, covariates=["lpop"], **_KW)
    a = twfe.fit(p, outcome="y", covariates="lpop")
    b = twfe.fit(p, outcome="y", covariates=["lpop"])
    pd.testing.assert_frame_equal(a.terms, b.terms)


def test_huge_period_gaps_do_not_allocate_the_gap():
    # Sun-Abraham counted cells over every period between the first and the last (14.6 TiB
    # for a gap of 10**12); the event study built a dummy per period of the gap
    df = _mpdta_like()
    far = df.assign(year=df["year"].where(df["year"] != 2007, 10**12))
    p = Panel.from_frame(far, **_KW)
    for name in ("sun_abraham", "callaway_santanna", "event_study"):
        opts = {"bootstrap": False} if name == "callaway_santanna" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = get_estimator(name)(p, outcome="y", **opts)
        assert np.isfinite(res.estimate), name


def _long_panel(T: int) -> Panel:
    rng = np.random.default_rng(2)
    g = np.array([0, 0, 0, T // 2 + 1000, T // 2 + 1000, T // 3 + 1000, 0, T // 3 + 1000])
    df = pd.DataFrame([(i, 1000 + t) for i in range(8) for t in range(T)], columns=["id", "t"])
    df["g"] = g[df["id"]]
    df["y"] = rng.normal(size=len(df))
    return Panel.from_frame(df, unit="id", time="t", cohort="g", outcomes="y")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("callaway_santanna", "group-time cells .* Aggregate the periods"),
        ("sun_abraham", "cohort x relative-period cells .* Trim the event window"),
        ("event_study", "event-time dummies .* Set leads/lags"),
        ("imputation", "event-time horizons .* Pass horizons="),
    ],
)
def test_very_long_panels_are_refused_by_name(name, message):
    # 12,000 periods: dense matrices of 20,000+ columns (hours, or out of memory)
    opts = {"bootstrap": False} if name == "callaway_santanna" else {}
    with pytest.raises(EstimationError, match=message):
        get_estimator(name)(_long_panel(12_000), outcome="y", **opts)


def test_imputation_refuses_many_horizons_before_step_one(monkeypatch):
    # the refusal once came after step 1's normal equations: 8+ minutes of dense algebra on
    # the 12,000 periods above before the message (CI, session 31)
    from zoneimpact.estimators import imputation

    def step_one(*args, **kwargs):
        raise AssertionError("step 1 ran before the horizons were checked")

    monkeypatch.setattr(imputation, "_impute", step_one)
    with pytest.raises(EstimationError, match="event-time horizons .* Pass horizons="):
        imputation.fit(_long_panel(12_000), outcome="y")


def test_huge_donor_pools_are_refused_by_name():
    from zoneimpact.estimators._sc_common import MAX_DONORS, check_pool_size

    with pytest.raises(EstimationError, match=r"15,001 control units needs dense .* GiB"):
        check_pool_size(list(range(MAX_DONORS + 1)), "Synthetic control")


# ----------------------------------------------------------------------------- files, specs, CLI
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: os.mkfifo(tmp / "s.toml") or tmp / "s.toml", "not a regular file"),
        (lambda tmp: (tmp / "d.toml").mkdir() or tmp / "d.toml", "is a folder"),
        (
            lambda tmp: (tmp / "b.toml").write_bytes(bytes(range(256))) and tmp / "b.toml",
            "is not UTF-8 text",
        ),
        (lambda tmp: 5, r"must be a path to a TOML file; received 5 \(int\)"),
        (lambda tmp: "", "empty or holds a NUL character"),
    ],
    ids=["fifo", "folder", "binary", "int", "empty"],
)
def test_spec_files_that_are_not_toml_files_are_named(tmp_path, make, message):
    from zoneimpact.spec import load_spec

    # a FIFO used to hang; a folder or binary file gave raw OS or decoding errors
    with pytest.raises(SpecError, match=message):
        load_spec(make(tmp_path))


def test_spec_numbers_must_be_finite():
    from zoneimpact.spec import parse_spec

    raw = {
        "data": {"source": "simulate", "simulate": {"displacement_share": float("nan")}},
        "estimate": [{"name": "a", "estimator": "twfe", "outcome": "fdi"}],
    }
    with pytest.raises(SpecError, match="displacement_share = nan .* nan and inf are not allowed"):
        parse_spec(raw)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--seed", "-1"], "invalid seed '-1'"),
        (["simulate", "--set", "noise_sd=1e999"], "noise_sd needs a finite number"),
        (["simulate", "--set", "n_units=1.5"], "n_units needs a whole number"),
        (["simulate", "--out", "afolder"], "afolder is a folder"),
        (["simulate", "--out", "no/such/s.csv"], "folder no/such does not exist"),
        (["power", "--out", "full"], "full exists and is not empty"),
        (["power", "--out", "afile"], "afile exists and is not a folder"),
        (["figures", "--out", "afile", "--force"], "afile exists and is not a folder"),
    ],
)
def test_cli_output_paths_are_named_errors(tmp_path, monkeypatch, capsys, argv, message):
    from zoneimpact.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afolder").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "afile").write_text("mine")
    if argv[1] == "--seed":  # argparse's usage error: exit code 2 too
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--quiet"])
        assert exc.value.code == 2
    else:
        assert main([*argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "afile").read_text() == "mine"


def test_run_directory_paths_are_checked(tmp_path, monkeypatch):
    from zoneimpact.run import check_target

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunDirectoryError, match="holds a NUL character"):
        check_target("ru\x00n")
    with pytest.raises(RunDirectoryError, match=r"must be a path .* received 5"):
        check_target(5)  # type: ignore[arg-type]
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(RunDirectoryError, match="device, pipe or socket"):
        check_target(tmp_path / "pipe", force=True)  # --force used to rename it away


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("margin = 0.1", 'margin = "small"'), "margin must be a number"),
        (lambda t: t.replace('outcomes = ["fdi"]', "outcomes = [1]"), "outcomes must be a list"),
        (lambda t: t + 'testable = "no"\n', "testable must be true or false"),
        (
            lambda t: t.replace('estimand = "direct"', 'estimand = ["direct"]'),
            "estimand must be a string",
        ),
        (lambda t: "[[claim]\n", "is not valid TOML"),
        (lambda t: 'claim = "c1"\n', "'claim' must be an array of tables"),
    ],
)
def test_claims_files_are_checked(tmp_path, edit, message):
    from zoneimpact.claims import load_claims

    good = (
        '[[claim]]\nid = "c1"\ndocument = "d"\nquote = "q"\nhypothesis = "h"\n'
        'outcomes = ["fdi"]\nestimand = "direct"\ntest = "positive"\nmargin = 0.1\n'
    )
    path = tmp_path / "c.toml"
    path.write_text(good.replace('outcomes = ["fdi"]', 'outcomes = "fdi"'))
    assert load_claims(path)[0].outcomes == ("fdi",)  # not ("f", "d", "i")
    path.write_text(edit(good))
    with pytest.raises(SpecError, match=message):
        load_claims(path)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n_reps": "x"}, "n_reps must be a whole number >= 2"),
        ({"power": "high"}, r"power must be a number in \(0, 1\)"),
        ({"effect_grid": ["a"]}, "effect_grid must be a finite number; received 'a'"),
        ({"estimator": ["twfe"]}, "estimator must be a registered name"),
        ({"rng": "x"}, r"rng \(a seed\) must be a whole number"),
        ({"estimator_options": [1]}, "estimator_options must be a table"),
    ],
)
def test_power_analysis_arguments_are_checked(did_panel, kw, message):
    from zoneimpact.power import power_analysis

    opts = {"estimator": "twfe", "effect_grid": [0.0, 1.0], "n_reps": 2, "exposure": False}
    with pytest.raises(SpecError, match=message):
        power_analysis(did_panel, outcome="y", **{**opts, **kw})


def test_report_arguments_are_checked(did_panel, tmp_path):
    from zoneimpact.report import event_study_plot, regression_table
    from zoneimpact.report.plots import PlotError
    from zoneimpact.report.tables import TableError

    res = cs.fit(did_panel, outcome="y", bootstrap=False)
    for bad in (0, 1, float("nan"), "0.05"):
        with pytest.raises(TableError, match=r"alpha must be a number in \(0, 1\)"):
            regression_table(res, alpha=bad)
        with pytest.raises(PlotError, match=r"alpha must be a number in \(0, 1\)"):
            event_study_plot(res, alpha=bad)
    for digits in (-1, "x", 10**6):
        with pytest.raises(TableError, match="digits must be a whole number from 0 to 20"):
            regression_table(res, digits=digits)
    with pytest.raises(TableError, match="received None"):
        regression_table(None)
    with pytest.raises(TableError, match="`stats` must be a list"):
        regression_table(res, stats=5)
    with pytest.raises(PlotError, match="offset must be a finite number"):
        event_study_plot(res, offset=float("nan"))
    with pytest.raises(TableError, match="Cannot write the table to .*No such file"):
        regression_table(res).save(tmp_path / "no" / "t.tex")
    # one term pattern as a string is that pattern
    assert regression_table(res, terms="att").to_frame().iloc[0, 0] == "ATT"  # display label
