"""Monte Carlo of the spillover decomposition in realistic zone worlds.

Worlds (``zoneimpact.simulate``): 300 units in 30 regions, 1998-2022, four staggered zone
waves; adoption *and* trends depend on a covariate ``x`` (``covariate_trend``), so parallel
trends hold only given ``x``; region-by-year AR(1) shocks; displacement shares 1, 0.5, 0
and -0.5 (agglomeration), plus a null world without any zone effect. Each replication
draws a new world and estimates with ``covariates=["x"]`` (clusters: regions, the default).

For direct (mean effect on zone unit-periods), spillover (mean on exposed unit-periods),
net (regional total) and the displacement share it reports the mean truth, bias (and
|bias| as a share of the truth, with its Monte Carlo SE; and the median error's share, a
ratio's bias where its mean is unstable), SE/SD (mean SE over the SD of the estimation error),
coverage of 95% intervals and, in the null world, the rejection rate of H0: effect = 0 at
the 5% level. ``net_region_did`` (the region-totals cross-check) is scored against the
same net total, over the worlds where it is identified (``n``).

Run:  python benchmarks/mc_spillover.py [--reps 200] [--base imputation|callaway_santanna]
      [--seed 20261130] [--worlds 'share 1' null] [--aux-partition onset_event]
      [--inference cluster|jackknife|wild]
      [--design n_regions=12 n_units=200]   (other worlds: fields of SimulationDesign)
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import ast
import time
import warnings

import numpy as np
import pandas as pd

from zoneimpact.estimators import spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import _truth, simulate

DESIGN = dict(
    n_units=300,
    n_regions=30,
    first_year=1998,
    last_year=2022,
    waves={2004: 0.3, 2008: 0.25, 2012: 0.25, 2016: 0.2},
    covariate_trend=3.0,
    region_shock_sd=15.0,
)
WORLDS = {
    "share 1": dict(displacement_share=1.0),
    "share 0.5": dict(displacement_share=0.5),
    "share 0": dict(displacement_share=0.0),
    "share -0.5": dict(displacement_share=0.0, agglomeration=0.5),
    "null": dict(effect_size=0.0, displacement_share=0.0),
}
QUANTITIES = ("direct", "spillover", "net", "displacement_share")


def truths(sim, left_out: frozenset = frozenset()) -> dict[str, float]:
    """The simulated world's realised truth of every reported quantity (outcome fdi); with
    ``left_out`` years (periods the fit left out for too few clean units, its pieces
    table's ``left_out_periods``) the simulator's own truth over the other years, so that
    the estimand matches the estimate's."""
    tr = sim.truth
    if left_out:
        tr = _truth(sim.frame[~sim.frame["year"].isin(left_out)], sim.design)
    return {
        "direct": tr.overall["fdi"],
        "spillover": tr.spillover["fdi"],
        "net": tr.net_total["fdi"],
        "displacement_share": tr.displacement_share["fdi"],
    }


def left_out_years(pieces: pd.DataFrame) -> frozenset:
    """Every period some piece (but the naive one) left out for too few clean units."""
    own = pieces[pieces["piece"] != "naive"]["left_out_periods"].fillna("")
    return frozenset(float(v) for cell in own if cell for v in cell.split(", "))


def one(
    world: dict,
    base: str,
    g: np.random.Generator,
    aux: str = "onset_event_adaptive",
    design: dict | None = None,
    small_sample: str = "cr2",
    inference: str = "cluster",
) -> dict[str, float]:
    sim = simulate(rng=g, **(DESIGN if design is None else design), **world)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = spillover.fit(
            sim.panel,
            outcome="fdi",
            rng=g,
            covariates=["x"],
            base_estimator=base,
            n_boot=999,
            aux_partition=aux,
            small_sample=small_sample,
        )
        if inference != "cluster":
            r = r.with_inference(inference)
    t = r.terms.set_index("term")
    ci = r.conf_int(0.05)
    left_out = left_out_years(r.pieces)
    truth = truths(sim, left_out)
    tr = sim.truth
    out: dict[str, float] = {}
    for q in QUANTITIES:
        out[f"{q}_est"] = float(t.loc[q, "estimate"])
        out[f"{q}_se"] = float(t.loc[q, "se"])
        out[f"{q}_truth"] = float(truth[q])
        lo, hi = ci.loc[q, "lower"], ci.loc[q, "upper"]
        out[f"{q}_cover"] = float(lo <= truth[q] <= hi)
        out[f"{q}_reject0"] = float(not lo <= 0.0 <= hi)
    # the region-level cross-check: the simulator's spillovers stay inside a zone's region,
    # so its estimand (every effect in the zone regions from their first zone on) is the
    # world's net total; NaN where it reports itself not identified
    q = "net_region_did"
    out[f"{q}_truth"] = float(tr.net_total["fdi"])
    if q in t.index:
        lo, hi = ci.loc[q, "lower"], ci.loc[q, "upper"]
        est, se = float(t.loc[q, "estimate"]), float(t.loc[q, "se"])
        cover, reject = float(lo <= tr.net_total["fdi"] <= hi), float(not lo <= 0.0 <= hi)
    else:
        est = se = cover = reject = np.nan
    out.update({f"{q}_est": est, f"{q}_se": se, f"{q}_cover": cover, f"{q}_reject0": reject})
    # worlds whose thin periods were left out (their truths then leave those years out)
    out["dropped"] = float(bool(left_out))
    # the share less its second-order ratio bias (info, not a term), same interval width
    b = float(r.info.get("displacement_share_ratio_bias", np.nan))
    q = "displacement_share"
    out["share_less_ratio_bias_est"] = out[f"{q}_est"] - b
    out["share_less_ratio_bias_se"] = out[f"{q}_se"]
    out["share_less_ratio_bias_truth"] = out[f"{q}_truth"]
    lo, hi = ci.loc[q, "lower"] - b, ci.loc[q, "upper"] - b
    out["share_less_ratio_bias_cover"] = float(lo <= truth[q] <= hi)
    out["share_less_ratio_bias_reject0"] = float(not lo <= 0.0 <= hi)
    return out


def summarise(rows: pd.DataFrame, world: str) -> pd.DataFrame:
    recs = []
    for q in (*QUANTITIES, "net_region_did", "share_less_ratio_bias"):
        est, se, truth = rows[f"{q}_est"], rows[f"{q}_se"], rows[f"{q}_truth"]
        ok = np.isfinite(est) & np.isfinite(truth)
        err = (est - truth)[ok]
        t_mean = float(truth[ok].mean())
        recs.append(
            {
                "world": world,
                "quantity": q,
                "truth": t_mean,
                "bias": float(err.mean()),
                "bias_pct": float(100 * abs(err.mean()) / abs(t_mean)) if t_mean else np.nan,
                # the Monte Carlo SE of the bias: whether a bias is the estimator's or the draw's
                "bias_mcse": float(err.std(ddof=1) / np.sqrt(len(err))),
                # a ratio's mean need not exist where its denominator is weak (the share
                # under a weak direct total): its median error is the bias one can report
                "median_bias_pct": float(100 * abs(err.median()) / abs(t_mean))
                if t_mean
                else np.nan,
                "se_sd": float(se[ok].mean() / err.std(ddof=1)),
                "coverage": float(rows[f"{q}_cover"][ok].mean()),
                "reject_5pct": float(rows[f"{q}_reject0"][ok].mean()),
                "n": int(ok.sum()),
                "dropped": float(rows["dropped"].mean()),
            }
        )
    return pd.DataFrame(recs)


def run(
    reps: int,
    base: str,
    worlds: dict[str, dict] = WORLDS,
    seed: int = 20261130,
    aux: str = "onset_event_adaptive",
    design: dict | None = None,
    small_sample: str = "cr2",
    inference: str = "cluster",
) -> pd.DataFrame:
    set_progress(False)
    out = []
    for name, world in worlds.items():
        rows = replicate(
            lambda _i, g, w=world: one(w, base, g, aux, design, small_sample, inference),
            reps,
            rng=seed,
        )
        out.append(summarise(pd.DataFrame(rows), name))
    return pd.concat(out, ignore_index=True)


def design_from(items: list[str]) -> dict:
    """``DESIGN`` with ``FIELD=VALUE`` changes (values are Python literals)."""
    design = dict(DESIGN)
    for item in items:
        key, _, value = item.partition("=")
        design[key] = ast.literal_eval(value)
    return design


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--base", default="imputation", choices=["imputation", "callaway_santanna"])
    ap.add_argument("--seed", type=int, default=20261130, help="a second seed is a fresh draw")
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    ap.add_argument(
        "--aux-partition",
        default="onset_event_adaptive",
        choices=list(spillover._AUX_PARTITIONS),
        help="tau~ of the imputation base's spillover pieces (onset_event_proportional: "
        "sessions 13-46; onset_event_intensity_proportional: sessions 9-12; "
        "onset_event_intensity: session 8; onset_event: before it)",
    )
    ap.add_argument(
        "--design", nargs="+", default=[], metavar="FIELD=VALUE",
        help="change the worlds' design, e.g. n_regions=12 (Python literals)",
    )  # fmt: skip
    ap.add_argument("--small-sample", default="cr2", choices=["cr2", "none"])
    ap.add_argument(
        "--inference",
        default="cluster",
        choices=["cluster", "jackknife", "wild"],
        help="SpilloverResult.with_inference after each fit (jackknife: CS base only; with "
        "--small-sample cr2 the CS base's default already is the jackknife, falling back on "
        "the analytic SEs where a deletion leaves a piece undefined)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    worlds = {w: WORLDS[w] for w in args.worlds}
    design = design_from(args.design)
    table = run(
        args.reps,
        args.base,
        worlds,
        args.seed,
        args.aux_partition,
        design,
        args.small_sample,
        args.inference,
    )
    if args.design:
        print(
            "design:", {k: design[k] for k in design if k not in DESIGN or design[k] != DESIGN[k]}
        )
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(
        f"{args.reps} replications per world, base {args.base}, inference {args.inference}, "
        f"seed {args.seed}: "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
