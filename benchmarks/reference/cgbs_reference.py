"""Reference numbers for the continuous-dose DiD (Callaway, Goodman-Bacon & Sant'Anna 2024).

diff-diff 3.13's ``ContinuousDiD`` (a port of R ``contdid``'s parametric B-spline sieve,
cohort-share cell weights and analytic influence-function SEs) on one seeded draw of
``benchmarks/mc_designs.simulate_dose`` (600 units, 4 periods, cohorts 2-4, seed 2024),
cubic splines without and with two interior knots, never-treated and not-yet-treated
comparisons; the overall ATT^o and ACRT^o, the event study of the binarised ATT^o, and ATT(d)/ACRT(d) with SEs on contdid's
default grid (treated-dose percentiles 10..99). moderndid 0.2's ``cont_did`` fails with
the installed polars (``is_in`` on a float cohort), so it is not used.

Run:  python benchmarks/reference/cgbs_reference.py
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
    "never_cubic": dict(degree=3, num_knots=0, control_group="never_treated"),
    "never_cubic_2knots": dict(degree=3, num_knots=2, control_group="never_treated"),
    "notyet_quadratic": dict(degree=2, num_knots=1, control_group="not_yet_treated"),
}


def main() -> None:
    import mc_designs
    from diff_diff import ContinuousDiD

    df = mc_designs.simulate_dose(np.random.default_rng(2024))
    out: dict = {}
    for name, cfg in CONFIGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = ContinuousDiD(**cfg).fit(
                df, outcome="y", unit="unit", time="time", first_treat="g", dose="dose"
            )
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
        }
        print(
            f"{name:22s} ATT^o {out[name]['att']:.6f} ({out[name]['att_se']:.6f}) ACRT^o {out[name]['acrt']:.6f}"
        )
    # the event study of the binarised ATT^o (contdid aggregation = "eventstudy")
    for name in ("never_cubic", "notyet_quadratic"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = ContinuousDiD(**CONFIGS[name]).fit(
                df,
                outcome="y",
                unit="unit",
                time="time",
                first_treat="g",
                dose="dose",
                aggregate="eventstudy",
            )
        es = r.event_study_effects
        out[name]["event_study"] = {
            "event": [int(e) for e in sorted(es)],
            "att": [float(es[e]["effect"]) for e in sorted(es)],
            "se": [float(es[e]["se"]) for e in sorted(es)],
        }
    out["_meta"] = {
        "tool": "diff-diff",
        "version": version("diff-diff"),
        "data": "mc_designs.simulate_dose(np.random.default_rng(2024))",
        "se": "analytic (n_bootstrap=0)",
    }
    path = HERE / "cgbs_diffdiff.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
