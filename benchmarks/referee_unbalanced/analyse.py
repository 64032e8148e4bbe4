"""refU: summarise MC output. python analyse.py PREFIX[,PREFIX2...] [truthcol]"""

import sys

import numpy as np
import pandas as pd

pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 30)
pd.set_option("display.max_rows", 300)
prefixes = sys.argv[1].split(",")
truthcol = sys.argv[2] if len(sys.argv) > 2 else "truth_targets"
kw = dict(keep_default_na=True)
T = pd.concat([pd.read_csv(p + "_terms.csv") for p in prefixes], ignore_index=True)
R = pd.concat([pd.read_csv(p + "_reps.csv") for p in prefixes], ignore_index=True)
W = pd.concat([pd.read_csv(p + "_warnings.csv") for p in prefixes], ignore_index=True)
E = pd.concat([pd.read_csv(p + "_errors.csv") for p in prefixes], ignore_index=True)

ORDER = [
    "direct",
    "spillover",
    "direct_total",
    "spillover_total",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "net_per_treated",
    "naive",
    "net_region_did",
]
T["truth"] = T[truthcol]
T["err"] = T["estimate"] - T["truth"]
T["cover"] = (T["ci_low"] <= T["truth"]) & (T["truth"] <= T["ci_high"])
T["reject"] = T["p_value"] < 0.05
T["se_fin"] = np.isfinite(T["se"])


def summ(g):
    n = len(g)
    truth = g["truth"].mean()
    bias = g["err"].mean()
    sd = g["err"].std()
    fin = g[g.se_fin]
    return pd.Series(
        {
            "n": n,
            "truth": truth,
            "bias": bias,
            "bias_pct": 100 * bias / truth if truth not in (0,) and np.isfinite(truth) else np.nan,
            "mc_se_bias": sd / np.sqrt(n),
            "sd_err": sd,
            "mean_se": fin["se"].mean(),
            "se_sd": fin["se"].mean() / sd,
            "coverage": fin["cover"].mean(),
            "reject": fin["reject"].mean(),
            "med_df": g["df"].median(),
            "n_nan_se": int((~g.se_fin).sum()),
        }
    )


S = T.groupby(["variant", "world", "term"]).apply(summ).reset_index()
S["term"] = pd.Categorical(S["term"], ORDER, ordered=True)
S = S.sort_values(["variant", "world", "term"])
fmt = S.copy()
for c in ["truth", "bias", "mc_se_bias", "sd_err", "mean_se"]:
    fmt[c] = fmt[c].map(lambda v: f"{v:.4g}")
for c in ["bias_pct", "se_sd", "med_df"]:
    fmt[c] = fmt[c].map(lambda v: f"{v:.2f}")
for c in ["coverage", "reject"]:
    fmt[c] = fmt[c].map(lambda v: f"{v:.3f}")
print(f"truth column: {truthcol}")
print(fmt.to_string(index=False))
S.to_csv(prefixes[0] + f"_summary_{truthcol}.csv", index=False)

print("\nReps:", R.groupby(["variant", "world"]).size().to_dict())
print("frame modified in any rep:", R["frame_modified"].any())
print("mean fit sec:", R["fit_sec"].mean())
cnt = R.groupby(["variant", "world"])[
    [c for c in R if c.startswith(("my_", "pk_target", "pk_unident"))]
].mean()
print("\nMean counts (my_obs = my observed; my_ident = my identifiable; pk = pieces table):")
print(cnt.round(1).to_string())
for name in ("direct", "spill", "soz"):
    mm = (R[f"my_ident_{name}"] != R[f"pk_target_{name}"]).sum()
    mo = (R[f"my_obs_{name}"] != R[f"pk_target_{name}"] + R[f"pk_unident_{name}"]).sum()
    print(
        f"{name}: reps where my identifiable count != pieces n_target: {mm}; "
        f"my observed != n_target + n_unidentified: {mo}"
    )
print(
    "left_out_periods non-empty:",
    {
        c: int(R[c].fillna("").astype(str).replace("nan", "").ne("").sum())
        for c in R
        if c.startswith("pk_leftout")
    },
)

print("\nErrors:", len(E))
if len(E):
    print(E.groupby(["variant", "world", "error"]).size())
print("\nWarnings (numbers normalised to #):")
W["kind"] = W["warning"].str.replace(r"[-+]?\d[\d.,e-]*", "#", regex=True)
print(W.groupby(["variant", "world", "kind"]).size().to_string())
print(
    "\nWarnings per rep (reps with >=1 warning):",
    W.groupby(["variant", "world"]).seed.nunique().to_dict(),
)
