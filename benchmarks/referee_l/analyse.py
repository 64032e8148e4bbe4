"""Summarise the Monte Carlo CSVs: bias, SE/SD, coverage, rejection."""

import sys

import numpy as np
import pandas as pd

pd.set_option("display.width", 250)
pd.set_option("display.max_rows", 500)
for variant in sys.argv[1:] or ["rings", "knn"]:
    try:
        d = pd.read_csv(f"mc_{variant}.csv", keep_default_na=False, na_values=["", "NaN", "nan"])
    except FileNotFoundError:
        continue

    def summ(g):
        t = g.truth.iloc[0]
        ok = g.estimate.notna()
        e = g.estimate[ok]
        cov = ((g.ci_low <= g.truth) & (g.truth <= g.ci_high))[ok]
        return pd.Series(
            dict(
                reps=int(ok.sum()),
                nan=int((~ok).sum()),
                truth=t,
                mean_est=e.mean(),
                bias=e.mean() - t,
                bias_pct=100 * (e.mean() - t) / abs(t) if abs(t) > 1e-12 else np.nan,
                bias_mcse=e.std() / np.sqrt(len(e)),
                sd=e.std(),
                mean_se=g.se[ok].mean(),
                se_sd=g.se[ok].mean() / e.std(),
                coverage=cov.mean(),
                reject=(g.p_value[ok] < 0.05).mean(),
                med_df=g.df[ok].median(),
                ci_p_disagree=int(
                    (((g.ci_low > 0) | (g.ci_high < 0)) != (g.p_value < 0.05))[ok].sum()
                ),
                inf_ci=int((~np.isfinite(g.ci_low) | ~np.isfinite(g.ci_high))[ok].sum()),
            )
        )

    order = {"s=1": 0, "s=0.5": 1, "s=0": 2, "s=-0.5": 3, "null": 4}
    out = d.groupby(["world", "term"], sort=False).apply(summ, include_groups=False).reset_index()
    out["o"] = out.world.map(order)
    out = out.sort_values(["o", "term"]).drop(columns="o")
    out.to_csv(f"mc_{variant}_summary.csv", index=False)
    print(f"=== variant {variant}")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    try:
        w = pd.read_csv(f"mc_{variant}_warnings.csv", keep_default_na=False)
        w["msg"] = w.message.str[:110]
        print(w.groupby(["world", "category", "msg"]).size().to_string())
    except Exception as ex:
        print("no warnings file / empty", ex)

    # linear terms: estimation error has the same distribution in every world (fixed design,
    # same noise law, estimator linear in y) -> pool errors over worlds for a sharper bias test
    lin = d[
        d.term.isin(
            [
                "direct",
                "spillover",
                "net",
                "spillover:0-30km",
                "spillover:30-80km",
                "spillover:3-nearest",
                "spillover_on_zones",
                "direct_total",
                "spillover_total",
            ]
        )
    ].copy()
    lin["err"] = lin.estimate - lin.truth
    lin["cov"] = (lin.ci_low <= lin.truth) & (lin.truth <= lin.ci_high)
    p = lin.groupby("term").agg(
        n=("err", "size"),
        mean_err=("err", "mean"),
        sd=("err", "std"),
        mean_se=("se", "mean"),
        coverage=("cov", "mean"),
    )
    p["mcse"] = p.sd / np.sqrt(p.n)
    p["t"] = p.mean_err / p.mcse
    p["se_sd"] = p.mean_se / p.sd
    print("pooled over worlds (linear terms):")
    print(p.to_string(float_format=lambda v: f"{v:.4g}"))
    # share bias from pooled linear errors: share_hat(s) = 1 - (net_s + e_net)/(D + e_D), with
    # (e_net, e_D) the same linear functionals of the noise in every world (fixed design)
    import world as W

    des = W.make_design(variant=variant)
    E = (
        d[d.term.isin(["net", "direct_total"])]
        .assign(err=lambda x: x.estimate - x.truth)
        .pivot_table(index=["world", "rep"], columns="term", values="err")
    )
    print(f"share bias from {len(E)} pooled error draws:")
    for s in (1.0, 0.5, -0.5):
        tr = W.truths(des, s)
        sh = 1 - (tr["net"] + E["net"]) / (tr["direct_total"] + E["direct_total"])
        b = sh.mean() - tr["displacement_share"]
        print(
            f"  s={s}: truth {tr['displacement_share']:.4f}, mean {sh.mean():.4f}, bias {b:.4f} "
            f"({100 * b / abs(tr['displacement_share']):.2f}% of truth, MCSE {sh.std() / np.sqrt(len(sh)):.4f})"
        )
