"""Check D probes: weight validation, unweighted joint-source bounds."""

import warnings

import numpy as np
from world import draw_panel, fit, make_design, make_panel, observed

d = make_design()
fr = draw_panel(d, 1.0, 7, noiseless=True)
obs = observed(fr)


def tryfit(df, label, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            r = fit(make_panel(d, df), rng=0, **kw)
            T = r.terms.set_index("term")["estimate"]
            print(
                f"[{label}] OK direct={T['direct']:.6f} share={T['displacement_share']:.6f}",
                "| joint:",
                r.info.get("joint_source_total"),
                r.info.get("joint_source_outside_part"),
            )
        except Exception as e:
            print(f"[{label}] ERROR {type(e).__name__}: {str(e)[:300]}")
    for x in w:
        m = str(x.message)
        if "no outcome while" in m or "exposed both" in m or "one cluster" in m:
            continue
        print("    WARN", m[:300])


tryfit(obs, "unweighted", weights=None)
a = obs.copy()
a.loc[a.index[a.city == 0][0], "pop"] *= 2
tryfit(a, "pop varies within unit 0")
a = obs.copy()
a.loc[a.city == 0, "pop"] = 0.0
tryfit(a, "pop zero for unit 0")
a = obs.copy()
a.loc[a.city == 0, "pop"] = -5.0
tryfit(a, "pop negative for unit 0")
a = obs.copy()
a.loc[a.index[a.city == 0][0], "pop"] = np.nan
tryfit(a, "pop NaN in one row of unit 0")
a = obs.copy()
a.loc[a.city == 0, "pop"] = np.nan
tryfit(a, "pop NaN for all rows of unit 0")
z = int(d["units"].index[np.isfinite(d["units"].cohort)][0])
a = obs.copy()
a.loc[a.city == z, "pop"] = np.nan
tryfit(a, f"pop NaN for zone unit {z}")
