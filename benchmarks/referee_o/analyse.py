"""Summary table of referee O's Monte Carlo CSVs (``mc_*.csv`` in the given directory).

Run: ``python analyse.py [DIR]`` (default: the current directory). Per world and term:
replications, mean truth, bias, |bias| as % of |mean truth| with its Monte Carlo SE,
mean SE over the SD of the estimates, coverage of the reported 95% intervals (t with the
reported df; the displacement share's is Fieller's), the same with normal intervals from the
same SEs, rejection of zero at 5% (reported p-value and normal), and median df. The truths
vary by replication (zones, waves and effects are redrawn), so SE/SD is the mean reported SE
over the SD of the estimation error (estimate - truth), not of the estimates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ORDER = [
    "direct",
    "spillover",
    "direct_total",
    "spillover_total",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "net",
    "net_per_treated",
    "displacement_share",
    "naive",
]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (world, term), g in df.groupby(["world", "term"], sort=False):
        if term not in ORDER:
            continue
        g = g.dropna(subset=["estimate"])
        n = len(g)
        err = g["estimate"] - g["truth"]
        sd = err.std(ddof=1) if g["truth"].notna().all() else g["estimate"].std(ddof=1)
        mt = g["truth"].mean()
        bias = err.mean()
        bias_se = err.std(ddof=1) / np.sqrt(n)
        z = stats.norm.ppf(0.975)
        cover = ((g["ci_low"] <= g["truth"]) & (g["truth"] <= g["ci_high"])).mean()
        cover_n = ((g["estimate"] - g["truth"]).abs() <= z * g["se"]).mean()
        rej = (g["p_value"] < 0.05).mean()
        rej_n = ((g["estimate"] / g["se"]).abs() > z).mean()
        rel = 100 * abs(bias) / abs(mt) if abs(mt) > 1e-9 else np.nan
        rel_se = 100 * bias_se / abs(mt) if abs(mt) > 1e-9 else np.nan
        rows.append(
            {
                "world": world,
                "term": term,
                "n": n,
                "truth": mt,
                "bias": bias,
                "bias_mcse": bias_se,
                "abs_bias_pct": rel,
                "pct_mcse": rel_se,
                "se_sd": g["se"].mean() / sd,
                "cover": cover if np.isfinite(g["truth"]).all() else np.nan,
                "cover_normal": cover_n if np.isfinite(g["truth"]).all() else np.nan,
                "reject0": rej,
                "reject0_normal": rej_n,
                "median_df": g["df"].median(),
            }
        )
    out = pd.DataFrame(rows)
    out["term"] = pd.Categorical(out["term"], ORDER, ordered=True)
    wo = ["null", "s-0.5", "s0", "s0.5"]
    out["world"] = pd.Categorical(out["world"], wo, ordered=True)
    return out.sort_values(["world", "term"]).reset_index(drop=True)


def main(directory: str = ".") -> None:
    files = sorted(Path(directory).glob("mc_*.csv"))
    # "null" is a world name, not a missing value
    read = [pd.read_csv(f, keep_default_na=False, na_values=["", "nan", "NaN"]) for f in files]
    df = pd.concat(read, ignore_index=True)
    table = summarise(df)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    warn = df.drop_duplicates(["world", "rep"])["warnings"].astype(object).fillna("").astype(str)
    print(f"\nreplications with any warning: {(warn != '').sum()} of {len(warn)}")
    for msg, k in warn[warn != ""].value_counts().head(10).items():
        print(f"  {k} x {msg[:300]}")
    print(f"median seconds per fit: {df.drop_duplicates(['world', 'rep'])['seconds'].median():.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
