"""Effective df implied by the Monte Carlo spread of the variance estimate: df_eff = 2 / CV(se^2)^2
(exact for a scaled chi-square), against the reported Bell-McCaffrey df."""

import pandas as pd

for w in ["s1", "s05", "null"]:
    df = pd.read_csv(f"mc_{w}.csv")
    for t in ["direct", "spillover", "net", "spillover_on_zones", "spillover_from_sources"]:
        g = df[df.term == t]
        v = g.se**2
        cv = v.std() / v.mean()
        print(
            f"{w:5s} {t:24s} reported df median {g['df'].median():6.2f} (min {g['df'].min():.2f}, max {g['df'].max():.2f})   df_eff from var(se^2): {2 / cv**2:7.1f}"
        )
