"""Reference numbers for the weighted continuous-dose DiD (CGBS 2024 with unit weights).

diff-diff 3.13's ``ContinuousDiD`` with ``survey_design=SurveyDesign(weights="w")``
(sampling weights normalised to mean one; weighted control means, weighted least-squares
sieve, cohort shares by weight mass) on the seeded draw of
``benchmarks/mc_designs.simulate_dose`` (600 units, 4 periods, seed 2024) that
``cgbs_reference.py`` uses, with the deterministic unit weight
``w = 1 + (unit mod 4) / 2`` (1, 1.5, 2, 2.5). Two configurations: cubic splines against
never-treated units, quadratic splines with one interior knot against not-yet-treated
units; the overall ATT^o and ACRT^o, ATT(d)/ACRT(d) on contdid's default grid, with the
event study of the binarised ATT^o. SEs are diff-diff's survey (Taylor linearisation)
SEs, which treat each unit as its own primary sampling unit.

Run:  python benchmarks/reference/cgbs_weighted_reference.py
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
sys.path.insert(0, str(HERE.parent))

CONFIGS = {
    "never_cubic_weighted": dict(degree=3, num_knots=0, control_group="never_treated"),
    "notyet_quadratic_weighted": dict(degree=2, num_knots=1, control_group="not_yet_treated"),
}


def weighted_dose_frame() -> pd.DataFrame:
    """The draw of ``cgbs_reference.py`` with the unit weight ``w`` (constant within unit)."""
    import mc_designs

    df = mc_designs.simulate_dose(np.random.default_rng(2024))
    return df.assign(w=1 + (df["unit"] % 4) / 2)


def main() -> None:
    from diff_diff import ContinuousDiD, SurveyDesign

    df = weighted_dose_frame()
    out: dict = {}
    for name, cfg in CONFIGS.items():
        fits = {}
        for aggregate in ("dose", "eventstudy"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits[aggregate] = ContinuousDiD(**cfg).fit(
                    df,
                    outcome="y",
                    unit="unit",
                    time="time",
                    first_treat="g",
                    dose="dose",
                    aggregate=aggregate,
                    survey_design=SurveyDesign(weights="w"),
                )
        r = fits["dose"]
        es = fits["eventstudy"].event_study_effects
        out[name] = {
            "att": float(r.overall_att),
            "att_se": float(r.overall_att_se),
            "acrt": float(r.overall_acrt),
            "acrt_se": float(r.overall_acrt_se),
            "dose_grid": [float(v) for v in r.dose_grid],
            "att_d": [float(v) for v in r.dose_response_att.effects],
            "att_d_se": [float(v) for v in r.dose_response_att.se],
            "acrt_d": [float(v) for v in r.dose_response_acrt.effects],
            "acrt_d_se": [float(v) for v in r.dose_response_acrt.se],
            "event_study": {
                "event": [int(e) for e in sorted(es)],
                "att": [float(es[e]["effect"]) for e in sorted(es)],
                "se": [float(es[e]["se"]) for e in sorted(es)],
            },
        }
        print(
            f"{name:26s} ATT^o {out[name]['att']:.6f} ({out[name]['att_se']:.6f}) "
            f"ACRT^o {out[name]['acrt']:.6f} ({out[name]['acrt_se']:.6f})"
        )
    out["_meta"] = {
        "tool": "diff-diff",
        "version": version("diff-diff"),
        "data": "mc_designs.simulate_dose(np.random.default_rng(2024)), w = 1 + (unit % 4) / 2",
        "se": "analytic with survey_design=SurveyDesign(weights='w') (Taylor linearisation)",
    }
    path = HERE / "cgbs_weighted_diffdiff.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
