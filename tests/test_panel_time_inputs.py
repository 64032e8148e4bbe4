"""Time, cohort, treatment and unit-id columns read by Panel.from_frame (session of the
time-input fixes): fiscal Periods, epoch dates, mixed ids, treatment gaps, mixed dates,
pyarrow and time-zone-aware dates, and the labels in messages.

Every reference number is the integer-year path of the same data (R did's mpdta, whose
callaway_santanna estimate -0.0399513 matches R did), computed in the test: the date
spellings below describe the same unit-periods, so the estimate must be the same up to
floating-point noise (rel=1e-12; the computation is identical once the periods are read).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import PanelError
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.panel import Panel

KW = {"unit": "countyreal", "time": "year", "outcomes": "lemp", "cohort": "first.treat"}
#: the integer-year result on mpdta (R did 2.1.2 gives -0.0399513 too)
R_DID = -0.039951275155177


def _cs(frame: pd.DataFrame, **kw) -> float:
    args = {**KW, **kw}
    return cs.fit(Panel.from_frame(frame, **args), outcome="lemp", bootstrap=False).estimate


@pytest.fixture(scope="module")
def years_cs(mpdta_frame: pd.DataFrame) -> float:
    """The integer-year reference (and a check that it is R did's number)."""
    est = _cs(mpdta_frame)
    assert est == pytest.approx(R_DID, rel=1e-9)
    return est


# ---------------------------------------------------------------- 1. fiscal periods
def test_fiscal_year_period_time_is_read_by_its_label(mpdta_frame, years_cs):
    # FY2006 (Y-JUN) runs July 2005 - June 2006; pandas labels it 2006, and a numeric
    # cohort 2006 means that fiscal year. The start time (2005-07-01) read every period one
    # year early: periods 2002-2006, cohort 2007 late (refused), CS -0.061205 with adjust
    fy = mpdta_frame.assign(year=pd.PeriodIndex(mpdta_frame["year"].astype(str), freq="Y-JUN"))
    p = Panel.from_frame(fy, **KW)
    assert p.periods.tolist() == [2003, 2004, 2005, 2006, 2007]
    assert p.report["time_frequency"] == "Y-JUN"
    assert _cs(fy) == pytest.approx(years_cs, rel=1e-12)


def test_fiscal_year_period_cohorts_keep_their_fiscal_year(mpdta_frame, years_cs):
    # Y-JUN time and Y-JUN cohorts: cohorts were 2003/2005/2006 (start years), not FY
    # 2004/2006/2007 (the integer path's sizes 20/40/131, never 309)
    g = mpdta_frame["first.treat"]
    fy = mpdta_frame.assign(
        year=pd.PeriodIndex(mpdta_frame["year"].astype(str), freq="Y-JUN"),
        **{"first.treat": pd.PeriodIndex([str(v) if v else None for v in g], freq="Y-JUN")},
    )
    p = Panel.from_frame(fy, **KW)
    assert p.report["cohort_sizes"] == {2004: 20, 2006: 40, 2007: 131, "never": 309}
    assert _cs(fy) == pytest.approx(years_cs, rel=1e-12)


def test_fiscal_quarters_with_timestamp_cohorts(mpdta_frame, years_cs):
    # five consecutive Q-NOV quarters (2010Q1 = Dec 2009 - Feb 2010, ...) stand for the
    # years 2003-2007; each cohort is a date in the middle month of its quarter. The
    # quarters were read as calendar quarters of their start dates, one quarter off the
    # cohort dates (cohort 149 'but the data end in 148')
    quarter = {y: pd.Period("2010Q1", "Q-NOV") + i for i, y in enumerate(range(2003, 2008))}
    g = mpdta_frame["first.treat"]
    q = mpdta_frame.assign(
        year=pd.PeriodIndex(mpdta_frame["year"].map(quarter), freq="Q-NOV"),
        **{
            "first.treat": [
                quarter[v].start_time + pd.DateOffset(months=1, days=14) if v else pd.NaT for v in g
            ]
        },
    )
    p = Panel.from_frame(q, **KW)
    assert p.report["time_frequency"] == "Q-NOV"
    assert np.diff(p.periods).tolist() == [1, 1, 1, 1]
    assert _cs(q) == pytest.approx(years_cs, rel=1e-12)


# ---------------------------------------------------------------- 2. epoch cohorts
def _monthly(frame: pd.DataFrame, early_units, early_month: str) -> pd.DataFrame:
    """Years 2003-2007 as months 1975-01..05; ``early_units`` opened in ``early_month``."""
    month = pd.PeriodIndex([f"1975-{y - 2002:02d}" for y in frame["year"]], freq="M")
    coh = pd.Series(
        [pd.Period(f"1975-{g - 2002:02d}", "M") if g else pd.NaT for g in frame["first.treat"]],
        dtype="period[M]",
    )
    coh[frame["countyreal"].isin(early_units).to_numpy()] = pd.Period(early_month, "M")
    return frame.assign(year=month, **{"first.treat": coh})


def test_cohort_at_1970_01_is_always_treated_not_never(mpdta_frame):
    # month 1970-01 is Period ordinal 0, which never_values=(0,) used to turn into "never
    # treated": 30 zones opened before the data became controls (CS -0.036860)
    early = mpdta_frame["countyreal"].unique()[300:330]
    m = _monthly(mpdta_frame, early, "1970-01")
    with pytest.raises(PanelError, match=r"cohort 1970-01 but the data start in 1975-01"):
        Panel.from_frame(m, **KW)
    # reference: the integer-year path with those units opened before the data (1999),
    # dropped as always treated (CS -0.0399254)
    ref = _cs(
        mpdta_frame.assign(
            **{
                "first.treat": mpdta_frame["first.treat"].where(
                    ~mpdta_frame["countyreal"].isin(early), 1999
                )
            }
        ),
        outside_window="adjust",
    )
    p = Panel.from_frame(m, **KW, outside_window="adjust")
    assert sorted(p.report["dropped_always_treated"]) == sorted(early.tolist())
    assert _cs(m, outside_window="adjust") == pytest.approx(ref, rel=1e-12)


# ---------------------------------------------------------------- 3. unit ids
def test_unit_ids_mixing_numbers_and_text_are_refused(mpdta_frame):
    # 2003 rows with int ids, later rows with str ids (a concat of two sources): 1000 units,
    # CS -0.024862 instead of -0.039951
    a = mpdta_frame[mpdta_frame["year"] == 2003]
    b = mpdta_frame[mpdta_frame["year"] > 2003].assign(
        countyreal=lambda d: d["countyreal"].astype(str)
    )
    mixed = pd.concat([a, b], ignore_index=True)
    with pytest.raises(
        PanelError, match=r"'countyreal' mixes numbers and text, e\.g\. 8001 and '8001'"
    ):
        Panel.from_frame(mixed, **KW)


def test_text_ids_spelling_one_number_twice_are_refused(mpdta_frame, years_cs):
    ids = mpdta_frame["countyreal"].astype(str)
    late = (mpdta_frame["year"] > 2003).to_numpy()
    two = mpdta_frame.assign(countyreal=ids.where(~late, ids + ".0"))
    with pytest.raises(
        PanelError, match=r"spells one number in several ways: \['8001', '8001.0'\]"
    ):
        Panel.from_frame(two, **KW)
    # text ids that are different labels still work: same estimate as the integer ids
    assert _cs(mpdta_frame.assign(countyreal="c" + ids)) == pytest.approx(years_cs, rel=1e-12)
    assert _cs(mpdta_frame.assign(countyreal=ids)) == pytest.approx(years_cs, rel=1e-12)


# ---------------------------------------------------------------- 4. treatment= gaps
def _with_d(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame["first.treat"]
    return frame.assign(D=((frame["year"] >= g) & (g > 0)).astype(int))


def test_treatment_onset_after_a_gap_is_refused(mpdta_frame):
    # the 2004 cohort lacks its 2004 row: the first observed 1 is 2005, but the zone may
    # have opened in 2004 (it did); the cohort was silently 2005 (CS -0.024862, the cohort
    # path on the same rows gives -0.042125)
    df = _with_d(mpdta_frame)
    gap = df[~((df["first.treat"] == 2004) & (df["year"] == 2004))]
    kw = {k: v for k, v in KW.items() if k != "cohort"}
    with pytest.raises(
        PanelError,
        match=r"turns on for unit 17005 in period 2005, but the unit is not observed in "
        r"period 2004 .*previous observed period is 2003.*Pass cohort=",
    ):
        Panel.from_frame(gap, treatment="D", **kw)
    # a late entry already treated is the same gap
    late = df[~((df["first.treat"] == 2006) & (df["year"] < 2006))]
    with pytest.raises(PanelError, match=r"not observed in period 2005 .*first observed then"):
        Panel.from_frame(late, treatment="D", **kw)


def test_treatment_without_gaps_matches_the_cohort_path(mpdta_frame, years_cs):
    df = _with_d(mpdta_frame)
    kw = {k: v for k, v in KW.items() if k != "cohort"}
    p = Panel.from_frame(df, treatment="D", **kw)
    assert cs.fit(p, outcome="lemp", bootstrap=False).estimate == pytest.approx(years_cs, rel=1e-12)
    # a gap elsewhere (not before the onset) is fine: drop 2005 rows of never-treated units
    holes = df[~((df["first.treat"] == 0) & (df["year"] == 2005))]
    Panel.from_frame(holes, treatment="D", **kw)


# ---------------------------------------------------------------- 5. mixed dates
def test_cohort_mixing_dates_and_numbers_is_refused(mpdta_frame):
    # Timestamps for most units, plain years for the 2006 cohort: the numbers were read as
    # nanoseconds since 1970 (cohort 1970, 40 units always treated)
    df = mpdta_frame.sort_values(
        ["first.treat", "countyreal", "year"], ascending=[False, True, True]
    )
    g = df["first.treat"]
    coh = pd.Series(
        [pd.Timestamp(f"{v}-01-01") if v else None for v in g], dtype=object, index=df.index
    )
    coh[(g == 2006).to_numpy()] = 2006
    dated = df.assign(year=pd.to_datetime(df["year"].astype(str)), **{"first.treat": coh})
    for ow in ("error", "adjust"):
        with pytest.raises(
            PanelError, match=r"'first.treat' mixes dates and other values: unit \d+ has 2006"
        ):
            Panel.from_frame(dated, **KW, outside_window=ow)


# ---------------------------------------------------------------- 6. crashes
@pytest.mark.parametrize("dtype", ["timestamp[ns][pyarrow]", "timestamp[ns, tz=UTC][pyarrow]"])
def test_pyarrow_timestamps(mpdta_frame, years_cs, dtype):
    pytest.importorskip("pyarrow")
    ts = pd.to_datetime(mpdta_frame["year"].astype(str))
    g = mpdta_frame["first.treat"]
    cd = pd.to_datetime(g.where(g > 0).astype("Int64").astype(str), errors="coerce")
    if "tz=" in dtype:
        ts, cd = ts.dt.tz_localize("UTC"), cd.dt.tz_localize("UTC")
    df = mpdta_frame.assign(year=ts.astype(dtype), **{"first.treat": cd.astype(dtype)})
    assert _cs(df) == pytest.approx(years_cs, rel=1e-12)


def test_mixed_time_zones_are_refused_naming_the_column(mpdta_frame):
    ts = pd.to_datetime(mpdta_frame["year"].astype(str))
    mixed = pd.Series(
        [t.tz_localize("UTC" if i % 2 else "Asia/Shanghai") for i, t in enumerate(ts)],
        dtype=object,
    )
    with pytest.raises(PanelError, match=r"Column 'year' holds dates .*several time zones"):
        Panel.from_frame(mpdta_frame.assign(year=mixed), **KW)


def test_never_values_must_not_be_a_string(mpdta_frame):
    # "10" was read character by character as the codes 1 and 0
    with pytest.raises(PanelError, match="never_values must be a list of numbers"):
        Panel.from_frame(mpdta_frame, **KW, never_values="10")


# ---------------------------------------------------------------- 8. messages
def test_date_panel_messages_name_periods_not_ordinals(mpdta_frame):
    # messages printed Period ordinals ("cohort 65 but the data end in 64")
    m = _monthly(mpdta_frame, [], "1975-01")
    coh = m["first.treat"]
    late = coh.where(coh != pd.Period("1975-05", "M"), pd.Period("1975-06", "M"))
    with pytest.raises(PanelError, match=r"cohort 1975-06 but the data end in 1975-05"):
        Panel.from_frame(m.assign(**{"first.treat": late}), **KW)


# ---------------------------------------------------------------- 7. dates inside periods
def test_opening_dates_count_from_the_first_observation_after_them(mpdta_frame):
    # annual observations dated 30 June; zones opened on 1 September of the year before
    # their integer cohort (first.treat 2007 -> 2006-09-01), so the 2006-06-30 observation,
    # taken before the opening, is untreated and 2007-06-30 is the first treated one. The
    # opening used to be read by its calendar year (cohorts 2005/2006, CS -0.035918); the
    # reference is the integer-year path on the same rows (2004 cohort left out so every
    # cohort stays inside the window; CS -0.024862)
    df = mpdta_frame[mpdta_frame["first.treat"] != 2004]
    g = df["first.treat"]
    opened = pd.to_datetime((g - 1).astype(str) + "-09-01").where(g > 0)
    dated = df.assign(
        year=pd.to_datetime(df["year"].astype(str) + "-06-30"), **{"first.treat": opened}
    )
    p = Panel.from_frame(dated, **KW)
    assert p.report["cohort_sizes"] == {2006: 40, 2007: 131, "never": 309}
    assert _cs(dated) == pytest.approx(_cs(df), rel=1e-12)
    # an opening on the observation day itself counts that observation as treated
    on_day = dated.assign(
        **{"first.treat": pd.to_datetime(g.astype(str) + "-06-30", errors="coerce").where(g > 0)}
    )
    assert _cs(on_day) == pytest.approx(_cs(df), rel=1e-12)
    # dates at the period start keep the calendar reading: 1 September 2006 is in 2006
    starts = df.assign(year=pd.to_datetime(df["year"].astype(str)), **{"first.treat": opened})
    shifted = df.assign(**{"first.treat": (g - 1).where(g > 0, 0)})
    assert _cs(starts, outside_window="adjust") == pytest.approx(
        _cs(shifted, outside_window="adjust"), rel=1e-12
    )


def test_varying_cohort_message_names_periods(mpdta_frame):
    # the values of a cohort that varies within a unit were Period ordinals ([61.0, 62.0])
    m = _monthly(mpdta_frame, [], "1975-01")
    coh = m["first.treat"].copy()
    row = int(np.flatnonzero((mpdta_frame["first.treat"] == 2004).to_numpy())[0])
    coh.iloc[row] = pd.Period("1975-03", "M")
    with pytest.raises(
        PanelError, match=r"varies within unit \d+ \(values \['1975-02', '1975-03'\]\)"
    ):
        Panel.from_frame(m.assign(**{"first.treat": coh}), **KW)
