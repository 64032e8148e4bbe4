"""Reference numbers for ``SunAbrahamResult.aggregate`` (issue 13), written to
``sa_aggregate.json`` beside this script.

Data: R did's mpdta (``shared/data/canonical/mpdta.csv``), balanced, and an unbalanced
copy without the rows :func:`unbalanced_rows` names (the test drops the same rows).

Peers (``pip install -e ".[compare]"``):

* pyfixest 0.60 ``event_study(estimator="saturated", att=True)``: the Sun & Abraham (2021)
  saturated regression (``i(rel_time, first_treated_period, ref=-1, ref2=0)`` with unit and
  year effects, CRV1 by county) and its ``aggregate(agg="period", weighting="shares")``,
  the IW event-time effects with the cells' observation shares. That is the only
  aggregation pyfixest 0.60 defines: ``agg="att"`` and ``agg="cohort"`` raise (their
  messages are stored under ``undefined``), and ``att=True`` is not read by the saturated
  estimator. So pyfixest checks ``aggregate("dynamic")``; "group" and "simple" have no
  pyfixest counterpart.
* diff-diff 3.13 ``SunAbraham``: ``overall_att``/``overall_se``, the post-treatment cells
  weighted by their observation counts (the "simple" aggregate), with its clustered SE.

Run:  python benchmarks/reference/sa_aggregate_reference.py
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from designs_reference import mpdta

HERE = Path(__file__).resolve().parent

warnings.simplefilter("ignore")


def unbalanced_rows(df: pd.DataFrame) -> pd.Series:
    """Rows dropped for the unbalanced panel: a few counties miss 2003 or 2005.

    No county loses its first treated year: pyfixest's ``event_study`` takes a unit's
    cohort to be its first *observed* treated period (a 2007 county without its 2007 row
    becomes never treated there), while the cohort here is the data's ``first.treat``.
    """
    c, y = df["countyreal"], df["year"]
    return ((c % 7 == 0) & (y == 2005)) | ((c % 11 == 0) & (y == 2003))


def pyfixest_periods(df: pd.DataFrame) -> dict:
    import pyfixest as pf

    m = pf.event_study(
        df.rename(columns={"first.treat": "g"}),
        yname="lemp",
        idname="countyreal",
        tname="year",
        gname="g",
        estimator="saturated",
        att=True,
    )
    agg = m.aggregate(agg="period", weighting="shares")
    out = {
        "period": [int(p) for p in agg.index],
        "estimate": [float(v) for v in agg["Estimate"]],
        "se": [float(v) for v in agg["Std. Error"]],
        "n_obs": int(m._N),
    }
    undefined = {}
    for kind in ("att", "cohort"):
        try:
            m.aggregate(agg=kind)
        except ValueError as err:
            undefined[kind] = f"{type(err).__name__}: {err}"
    out["undefined"] = undefined
    return out


def diffdiff_overall(df: pd.DataFrame) -> dict:
    from diff_diff import SunAbraham

    r = SunAbraham(control_group="never_treated").fit(
        df, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat"
    )
    return {"overall_att": float(r.overall_att), "overall_se": float(r.overall_se)}


def main() -> None:
    df = mpdta()[["countyreal", "year", "lemp", "first.treat"]]
    unbalanced = df.loc[~unbalanced_rows(df)].reset_index(drop=True)
    ref = {
        "pyfixest_period": {
            "balanced": pyfixest_periods(df),
            "unbalanced": pyfixest_periods(unbalanced),
        },
        "diffdiff_simple": diffdiff_overall(df),
        "_meta": {
            "versions": {p: version(p) for p in ("pyfixest", "diff-diff", "numpy", "pandas")},
            "data": "shared/data/canonical/mpdta.csv; unbalanced: without the rows "
            "(countyreal % 7 == 0 and year == 2005) or (countyreal % 11 == 0 and year == 2003)",
            "n_dropped_unbalanced": int(unbalanced_rows(df).sum()),
            "note": "mpdta's never-treated cohort is coded 0 (first.treat); rel_time of "
            "never-treated rows is inf in pyfixest and excluded by ref2=0",
        },
    }
    path = HERE / "sa_aggregate.json"
    path.write_text(json.dumps(ref, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
