"""Descriptives and pooled tables from the raw CSVs (run after the MC).

Usage: python analyse.py [OUTDIR]   (default: mc_referee_i.py's default --outdir)"""

import glob
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mc_referee_i as mc  # noqa: E402
from world import simulate  # noqa: E402

os.chdir(sys.argv[1] if len(sys.argv) > 1 else mc.OUT)
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 60)

files = sorted(f for f in glob.glob("raw_*.csv") if "warnings" not in f and "noiseless" not in f)
frames = {}
for f in files:
    d = pd.read_csv(f, dtype={"world": str, "error": str, "warnings": str})
    d["world"] = f.replace("raw_", "").replace(".csv", "").replace("crn_", "").replace("seed3_", "")
    d = d.copy()
    frames[f] = d
    print(f, len(d))

alld = pd.concat(frames.values(), keys=frames.keys(), names=["file"]).reset_index(level=0)
print("\n== errors:", int((alld["error"].fillna("") != "").sum()))
fs = alld.fit_seconds
print(
    f"== fit seconds: mean {fs.mean():.3f} median {fs.median():.3f} "
    f"p95 {fs.quantile(0.95):.3f} max {fs.max():.3f} (n={fs.notna().sum()})"
)
cols = [
    "n_zones",
    "info_n_clean_units",
    "info_n_exposed_units",
    "info_n_pre_exposed_zones",
    "n_direct_fit",
    "n_spillover:0-40km_fit",
    "n_spillover_on_zones_fit",
]
print("\n== design descriptives over all fits (min / mean / max)")
print(alld[cols].agg(["min", "mean", "max"]).T)
for c in ["direct", "spillover:0-40km", "spillover_on_zones"]:
    print(
        c,
        "target-count mismatches mine vs fit:",
        int((alld[f"n_{c}_mine"] != alld[f"n_{c}_fit"]).sum()),
        "unidentified>0:",
        int((alld[f"unid_{c}"] > 0).sum()),
        "left_out nonempty:",
        int(alld[f"leftout_{c}"].astype(str).replace("nan", "").str.strip().ne("").sum()),
    )
print("role mismatches:", int(alld.role_mismatch.sum()))
print("info notes keys:", alld.info_keys_notes.value_counts().to_dict())
print("warnings nonempty:", int(alld.warnings.fillna("").ne("").sum()))
# share of fits where terms' ci_low / p_value are NaN for direct/spillover/net
for q in ["direct", "spillover", "net", "displacement_share"]:
    print(
        q,
        "terms ci_low NaN:",
        int(alld[f"{q}_terms_lo"].isna().sum()),
        "/",
        len(alld),
        " terms p_value NaN:",
        int(alld[f"{q}_terms_p"].isna().sum()),
    )

# region sizes / geography of a few worlds
print("\n== geography of 5 draws")
for s in [2_100_000, 2_100_001, 2_100_002, 2_500_000, 2_500_001]:
    w = simulate(s, 0.5)
    D = w["D"]
    print(
        s,
        "sizes min/max",
        w["sizes"].min(),
        w["sizes"].max(),
        "zones",
        int(np.isfinite(w["cohort"]).sum()),
        "lat",
        round(w["lat"].min(), 1),
        round(w["lat"].max(), 1),
        "lon",
        round(w["lon"].min(), 1),
        round(w["lon"].max(), 1),
        "median #cities<40km",
        np.median((D < 40).sum(1)),
    )

# pooled null rejection: null worlds from all seeds, plus the s0 spillover (truth 0)
print("\n== null world per file and pooled")
nulls = alld[alld.world == "null"]
rows = []
for f, d in list(nulls.groupby("file")) + [("POOLED", nulls)]:
    s = mc.summarise(d)
    s.insert(0, "file", f)
    rows.append(
        s[
            [
                "file",
                "quantity",
                "R",
                "rej_p05",
                "rej_p05_mcse",
                "rej_z196",
                "sd_t",
                "exkurt_t",
                "se_sd_real",
                "cover_real",
                "bias_real",
                "bias_mcse_real",
                "mean_df",
            ]
        ]
    )
print(pd.concat(rows).to_string())

# pooled share worlds (seed 1 CRN + seed 2 independent), per world
print("\n== share worlds pooled over seed-1 (CRN) and seed-2 runs, 400 per world")
rows = []
for wd in ["s1", "s0.5", "s0", "s-0.5"]:
    d = alld[(alld.world == wd) & alld.file.isin([f"raw_{wd}.csv", f"raw_crn_{wd}.csv"])]
    s = mc.summarise(d)
    s.insert(0, "world", wd)
    rows.append(s)
pool = pd.concat(rows)
pool.to_csv("pooled_share_worlds.csv", index=False)
print(
    pool[
        [
            "world",
            "quantity",
            "R",
            "truth_real",
            "biaspct_real",
            "se_sd_real",
            "cover_real",
            "cover_mcse_real",
            "truth_pop",
            "biaspct_pop",
            "se_sd_pop",
            "cover_pop",
            "cover_mcse_pop",
            "rej_p05",
        ]
    ].to_string()
)
