"""Reference numbers for staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025).

moderndid 0.2's ``ddd`` (a port of R ``triplediff``) on one seeded draw of
``benchmarks/mc_designs.simulate_ddd`` (800 units, 5 periods, cohorts 3, 4 and never,
eligibility partition ``q``; seed 2025), universal base period, analytic SEs:
never-treated and not-yet-treated (GMM over comparison cohorts) comparisons, without and
with the covariate ``x`` (doubly robust). moderndid 0.2's staggered ``ddd`` ignores
``weightsname`` (its cells call ``ddd_panel`` without weights), so the weighted reference
is diff-diff 3.13's ``StaggeredTripleDifference`` with ``SurveyDesign(weights="w")``,
``w = 1 + (unit mod 5) / 2`` (ATT(g,t) and SEs; its unweighted cells equal moderndid's). ATT(g,t) with SEs and the simple, event-study,
group and calendar aggregations (``agg_ddd(boot=False)``).

Run:  python benchmarks/reference/ddd_reference.py
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CONFIGS = {
    "never": dict(control_group="nevertreated", xformla=None),
    "notyet": dict(control_group="notyettreated", xformla=None),
    "never_dr_x": dict(control_group="nevertreated", xformla="~x"),
    "notyet_dr_x": dict(control_group="notyettreated", xformla="~x"),
}


def _f(v) -> list[float]:
    return [float(x) for x in np.atleast_1d(np.asarray(v, dtype=float))]


def main() -> None:
    import mc_designs
    import moderndid

    df = mc_designs.simulate_ddd(np.random.default_rng(2025))
    # a deterministic sampling weight, constant within unit
    df = df.assign(q=df["q"].astype(int), w=1 + (df["unit"] % 5) / 2)
    out: dict = {}
    for name, cfg in CONFIGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = moderndid.ddd(
                df,
                yname="y",
                tname="time",
                idname="unit",
                gname="g",
                pname="q",
                base_period="universal",
                est_method="dr",
                **cfg,
            )
            rec = {
                "att_gt": {
                    "group": _f(r.groups),
                    "time": _f(r.times),
                    "att": _f(r.att),
                    "se": _f(r.se),
                }
            }
            for typ in ("simple", "eventstudy", "group", "calendar"):
                a = moderndid.agg_ddd(r, type=typ, boot=False, cband=False)
                rec[typ] = {
                    "overall_att": float(a.overall_att),
                    "overall_se": float(a.overall_se),
                    "index": _f(a.egt) if a.egt is not None else [],
                    "att": _f(a.att_egt) if a.att_egt is not None else [],
                    "se": _f(a.se_egt) if a.se_egt is not None else [],
                }
        out[name] = rec
        print(
            f"{name:12s} simple ATT {rec['simple']['overall_att']:.6f} ({rec['simple']['overall_se']:.6f})"
        )
    from diff_diff import StaggeredTripleDifference, SurveyDesign

    dfw = df.assign(w=1 + (df["unit"] % 5) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = StaggeredTripleDifference(
            control_group="nevertreated", base_period="universal", cband=False
        ).fit(
            dfw,
            outcome="y",
            unit="unit",
            time="time",
            first_treat="g",
            eligibility="q",
            survey_design=SurveyDesign(weights="w"),
        )
    cells = sorted(r.group_time_effects.items())
    out["never_weighted_diffdiff"] = {
        "group": [float(k[0]) for k, _ in cells],
        "time": [float(k[1]) for k, _ in cells],
        "att": [float(v["effect"]) for _, v in cells],
        "se": [float(v["se"]) for _, v in cells],
    }
    print("diff-diff weighted ATT(g,t)", np.round(out["never_weighted_diffdiff"]["att"], 6))
    out["_meta"] = {
        "tool": "moderndid",
        "version": version("moderndid"),
        "diff_diff_version": version("diff-diff"),
        "data": "mc_designs.simulate_ddd(np.random.default_rng(2025))",
        "se": "analytic",
    }
    path = HERE / "ddd_moderndid.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
