"""Check B: invariances on one noisy draw (s = 0.5)."""

import warnings

import numpy as np
import pandas as pd
from world import draw_panel, fit, make_design, make_panel, observed

warnings.simplefilter("ignore")
d = make_design()
fr = draw_panel(d, 0.5, 101)
obs = observed(fr)


def run(df, **kw):
    r = fit(
        make_panel(d, df, **{k: v for k, v in kw.items() if k in ("unit_str", "pop_scale")}), rng=0
    )
    return r.terms.set_index("term")[["estimate", "se", "ci_low", "ci_high", "p_value"]], r


base, rb = run(obs)
TOT = [t for t in base.index if t.endswith("_total") or t in ("net",)]
SHARE = ["displacement_share"]
rng = np.random.default_rng(3)
cases = {
    "shuffled rows": (
        obs.sample(frac=1, random_state=5).reset_index(drop=True),
        {},
        lambda t: (1, 0),
    ),
    "string unit ids": (obs, {"unit_str": True}, lambda t: (1, 0)),
    "y + 1000": (obs.assign(y=obs["y"] + 1000), {}, lambda t: (1, 0)),
    "y x 3": (obs.assign(y=obs["y"] * 3), {}, lambda t: (1, 0) if t in SHARE else (3, 0)),
    "pop x 7": (obs, {"pop_scale": 7.0}, lambda t: (7, 0) if t in TOT else (1, 0)),
}
rows = []
for name, (df, kw, f) in cases.items():
    est, r = run(df, **kw)
    for t in base.index:
        m, _ = f(t)
        if t in ("net_per_treated",) and name == "pop x 7":
            m = 1
        exp_e, exp_s = base.loc[t, "estimate"] * m, base.loc[t, "se"] * m
        sc = max(abs(exp_e), abs(exp_s), 1e-300)
        de = abs(est.loc[t, "estimate"] - exp_e) / max(abs(exp_e), 1e-300)
        ds = abs(est.loc[t, "se"] - exp_s) / max(abs(exp_s), 1e-300)
        dp = abs(est.loc[t, "p_value"] - base.loc[t, "p_value"])
        rows.append(dict(case=name, term=t, factor=m, rel_err_est=de, rel_err_se=ds, abs_diff_p=dp))
    print(name, "aux_models:", r.info.get("aux_models") == rb.info.get("aux_models"))
df = pd.DataFrame(rows)
pd.set_option("display.width", 200)
summ = df.groupby("case")[["rel_err_est", "rel_err_se", "abs_diff_p"]].max()
print(summ.to_string(float_format=lambda v: f"{v:.2e}"))
bad = df[(df.rel_err_est > 1e-10) | (df.rel_err_se > 1e-10) | (df.abs_diff_p > 1e-10)]
print(bad.to_string(float_format=lambda v: f"{v:.3e}"))
print(base.to_string())
df.to_csv("checks_B.csv", index=False)
