"""Reference numbers for Callaway-Sant'Anna with repeated cross-sections, from moderndid.

Runs moderndid 0.2 (a line-by-line Python port of R ``did`` 2.x and ``DRDID``) with
``panel=False`` on mpdta, i.e. every county-year row is treated as its own observation
(the way R ``did`` handles a repeated cross-section: Sant'Anna & Zhao 2020 RC estimators,
R's default ``est_method = "dr"`` being ``DRDID::drdid_rc``, the locally efficient DR
estimator). The weighted configurations use a deterministic sampling weight
``w = 1 + (countyreal mod 7) / 3 + (year - 2003) / 10`` (mpdta has none), which varies
within and across groups and periods. Analytic standard errors (``boot=False``).

Writes ``cs_rc_moderndid.json`` beside this script; ``tests/test_cs_repeated_cross_section.py``
reads it.

Run:  python benchmarks/reference/cs_rc_reference.py
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "canonical" / "mpdta.csv"

CONFIGS = {
    "never_dr": dict(control_group="nevertreated", xformla=None, est_method="dr"),
    "notyet_dr": dict(control_group="notyettreated", xformla=None, est_method="dr"),
    "never_dr_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="dr"),
    "never_ipw_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="ipw"),
    "never_reg_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="reg"),
    "notyet_dr_lpop": dict(control_group="notyettreated", xformla="~lpop", est_method="dr"),
    "never_dr_lpop_weighted": dict(
        control_group="nevertreated", xformla="~lpop", est_method="dr", weightsname="w"
    ),
    "notyet_ipw_lpop_weighted": dict(
        control_group="notyettreated", xformla="~lpop", est_method="ipw", weightsname="w"
    ),
    "never_universal_weighted": dict(
        control_group="nevertreated",
        xformla=None,
        est_method="dr",
        base_period="universal",
        weightsname="w",
    ),
}


def sampling_weight(df: pd.DataFrame) -> pd.Series:
    return 1 + (df["countyreal"] % 7) / 3 + (df["year"] - 2003) / 10


def _f(x) -> list[float]:
    return [float(v) for v in np.atleast_1d(np.asarray(x, dtype=float))]


def csdid_numbers(df: pd.DataFrame) -> dict:
    """Simple ATT from csdid (another port of R ``did``) with and without the weights.

    moderndid 0.2 computes the aggregation's cohort shares without the sampling weights
    (its ``weights_ind`` is never filled); R ``did::compute.aggte`` uses
    ``pg = mean(weights.ind * 1{G = g})`` with ``weights.ind = dta$.w``, as csdid does. So
    weighted aggregations are checked against csdid, cell-level numbers against moderndid.
    """
    from csdid.att_gt import ATTgt

    rc = df.assign(rid=np.arange(len(df)))  # csdid requires a unique id per RC row
    out = {}
    for name, wn in (("never_dr_lpop", None), ("never_dr_lpop_weighted", "w")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ATTgt(
                yname="lemp",
                tname="year",
                idname="rid",
                gname="first.treat",
                data=rc,
                xformla="lemp~lpop",
                panel=False,
                weights_name=wn,
                control_group=["nevertreated"],
            )
            m.fit(est_method="dr", bstrap=False)
            m.aggte(typec="simple", bstrap=False)
        out[name] = {"att": float(m.atte["overall_att"]), "se": float(m.atte["overall_se"])}
        print(f"csdid {version('csdid')} {name}: {out[name]}")
    return out


def main() -> None:
    import moderndid

    df = pd.read_csv(DATA)
    df["w"] = sampling_weight(df)
    out: dict = {}
    for name, cfg in CONFIGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mp = moderndid.att_gt(
                df,
                yname="lemp",
                tname="year",
                gname="first.treat",
                panel=False,
                boot=False,
                cband=False,
                **cfg,
            )
            rec = {
                "att_gt": {
                    "group": _f(mp.groups),
                    "time": _f(mp.times),
                    "att": _f(mp.att_gt),
                    "se": _f(mp.se_gt),
                }
            }
            s = moderndid.aggte(mp, type="simple")
            rec["simple"] = {"att": float(s.overall_att), "se": float(s.overall_se)}
            for typ in ("dynamic", "group", "calendar"):
                a = moderndid.aggte(mp, type=typ)
                rec[typ] = {
                    "index": _f(a.event_times),
                    "att": _f(a.att_by_event),
                    "se": _f(a.se_by_event),
                    "overall_att": float(a.overall_att),
                    "overall_se": float(a.overall_se),
                }
        out[name] = rec
        print(f"{name:28s} simple ATT {rec['simple']['att']: .7f} SE {rec['simple']['se']:.7f}")
    out["csdid"] = csdid_numbers(df)
    out["_meta"] = {
        "tool": "moderndid",
        "version": version("moderndid"),
        "csdid_version": version("csdid"),
        "data": "shared/data/canonical/mpdta.csv, rows as repeated cross-sections (panel=False)",
        "weights": "w = 1 + (countyreal mod 7)/3 + (year - 2003)/10 where weightsname='w'",
        "se": "analytic (boot=False)",
    }
    path = HERE / "cs_rc_moderndid.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
