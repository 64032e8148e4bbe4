"""Reference numbers for the Callaway & Sant'Anna tests on mpdta, from peer packages.

Runs moderndid (a line-by-line Python port of R ``did`` 2.x) on the canonical mpdta data
for every configuration tested in ``tests/test_callaway_santanna.py`` and writes
``cs_mpdta_moderndid.json`` beside this script; then cross-checks the overall ATT with
csdid and diff-diff and prints the largest disagreement. Analytic (influence-function)
standard errors throughout (``boot=False``), so the numbers are deterministic.

Run:  python benchmarks/reference/cs_mpdta_reference.py
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "canonical" / "mpdta.csv"

CONFIGS = {
    "never_unconditional": dict(control_group="nevertreated", xformla=None, est_method="dr"),
    "notyet_unconditional": dict(control_group="notyettreated", xformla=None, est_method="dr"),
    "never_universal": dict(
        control_group="nevertreated", xformla=None, est_method="dr", base_period="universal"
    ),
    "never_reg_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="reg"),
    "never_ipw_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="ipw"),
    "never_dr_lpop": dict(control_group="nevertreated", xformla="~lpop", est_method="dr"),
    "notyet_dr_lpop": dict(control_group="notyettreated", xformla="~lpop", est_method="dr"),
    "notyet_reg_lpop": dict(control_group="notyettreated", xformla="~lpop", est_method="reg"),
}


def _f(x):
    return [float(v) for v in np.atleast_1d(np.asarray(x, dtype=float))]


def moderndid_numbers(df: pd.DataFrame) -> dict:
    import moderndid

    out = {}
    for name, cfg in CONFIGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mp = moderndid.att_gt(
                df,
                yname="lemp",
                tname="year",
                idname="countyreal",
                gname="first.treat",
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
                },
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
            if name == "never_unconditional":
                a = moderndid.aggte(mp, type="dynamic", balance_e=1)
                rec["dynamic_balance_e1"] = {
                    "index": _f(a.event_times),
                    "att": _f(a.att_by_event),
                    "overall_att": float(a.overall_att),
                    "overall_se": float(a.overall_se),
                }
        out[name] = rec
    return out


def cross_check(df: pd.DataFrame, ref: dict) -> None:
    """Overall ATT and SE from csdid and diff-diff against moderndid."""
    try:
        from csdid.att_gt import ATTgt

        for name in ("never_unconditional", "never_dr_lpop", "notyet_unconditional"):
            cfg = CONFIGS[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = ATTgt(
                    yname="lemp",
                    tname="year",
                    idname="countyreal",
                    gname="first.treat",
                    data=df,
                    control_group=[cfg["control_group"]],
                    xformla="lemp ~ lpop" if cfg["xformla"] else None,
                ).fit(est_method=cfg["est_method"], bstrap=False)
                m.aggte(typec="simple", bstrap=False)
            att = float(m.atte["overall_att"])
            print(
                f"csdid {version('csdid')} {name}: ATT {att:.7f} vs moderndid "
                f"{ref[name]['simple']['att']:.7f}"
            )
    except Exception as exc:  # a peer failing must not stop the reference run
        print("csdid cross-check skipped:", exc, file=sys.stderr)
    try:
        from diff_diff import CallawaySantAnna

        for name, cg, method, cov in (
            ("never_unconditional", "never_treated", "dr", None),
            ("never_dr_lpop", "never_treated", "dr", ["lpop"]),
            ("notyet_unconditional", "not_yet_treated", "dr", None),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = CallawaySantAnna(control_group=cg, estimation_method=method).fit(
                    df,
                    outcome="lemp",
                    unit="countyreal",
                    time="year",
                    first_treat="first.treat",
                    covariates=cov,
                )
            print(
                f"diff-diff {version('diff-diff')} {name}: ATT {r.overall_att:.7f} "
                f"(SE {r.overall_se:.7f}) vs moderndid {ref[name]['simple']['att']:.7f} "
                f"(SE {ref[name]['simple']['se']:.7f})"
            )
    except Exception as exc:
        print("diff-diff cross-check skipped:", exc, file=sys.stderr)


def main() -> None:
    df = pd.read_csv(DATA)
    ref = moderndid_numbers(df)
    ref["_meta"] = {
        "tool": "moderndid",
        "version": version("moderndid"),
        "data": "shared/data/canonical/mpdta.csv",
        "se": "analytic (boot=False)",
    }
    path = HERE / "cs_mpdta_moderndid.json"
    path.write_text(json.dumps(ref, indent=1))
    print("wrote", path)
    for name in CONFIGS:
        print(
            f"{name:24s} simple ATT {ref[name]['simple']['att']: .7f} SE {ref[name]['simple']['se']:.7f}"
        )
    cross_check(df, ref)


if __name__ == "__main__":
    main()
