"""Robustness sweep of the spillover decomposition's default inference (issue 14 item 4).

``benchmarks/mc_spillover.py`` checks one world (300 units, 30 regions, 1998-2022, four
waves, covariate-driven adoption and trends, region shocks). This script changes one
feature of that world at a time and reruns the same default estimation,
``spillover.fit(panel, outcome="fdi", covariates=["x"], n_boot=999)``, in a "share 0.5"
world (half of the zones' gain drawn from their neighbours) and a "null" world (no effect):

* ``few_regions``: 12 regions, 120 units;
* ``many_units``: 600 units in the same 30 regions;
* ``no_shocks``: no region shocks and no x-specific trend (estimation still adjusts for x);
* ``strong_shocks``: region shocks with sd 30 and AR(1) coefficient 0.8;
* ``short_panel``: 2000-2014 with waves 2004/2008/2011;
* ``rings``: the base world, estimated with a distance-ring exposure map (0-150 km, zones
  of the unit's own region) instead of the simulator's adjacency;
* ``zone_losses``: zones also draw on the region's *later* zone units within the radius
  until those open their own zone (``displace_zone_units=True``): a zone next to an earlier
  zone. Net and displacement share must count those losses (``spillover_on_zones_total``);
  rows ``net_old`` / ``share_old`` score the definitions without them on the same worlds;
* ``zone_losses_cs``: the same worlds estimated with the Callaway-Sant'Anna base, which
  estimates ``spillover_on_zones`` too (its ATT(g,t) averaged by target count); its
  ``net_old`` / ``share_old`` rows are the CS base's net before it did (which left the
  zone units' losses out).

The simulator's spillover truth is defined on its own exposure notion (never-zone units of
the zone's region within ``radius_km`` of it, or all of the region's never-zone units when
none is that close), which the adjacency map reproduces exactly. A ring map can differ
from it (the fallback neighbours beyond 150 km are then taken as clean controls), so for
``rings`` the script also reports the truth on the map's own exposed unit-periods
(quantities suffixed ``@map``: mean true effect over the map's exposed unit-periods, and
the net and displacement share with the map's spillover total).

Targets (issue 14 item 4): |bias| < 5% of each nonzero truth, coverage of 95% intervals in
93-97%, rejection of H0: effect = 0 at 5% in 4-6% in the null world.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/mc_spillover_sweep.py [--reps 200]
      [--variants few_regions many_units ...] [--seed 20261130]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from mc_spillover import DESIGN, QUANTITIES, truths

from zoneimpact.estimators import spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

RING_FIT: dict[str, Any] = dict(exposure="rings", rings_km=[(0.0, 150.0)], within_region=True)
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "few_regions": {"design": dict(n_regions=12, n_units=120), "fit": {}},
    "many_units": {"design": dict(n_units=600), "fit": {}},
    "no_shocks": {"design": dict(region_shock_sd=0.0, covariate_trend=0.0), "fit": {}},
    "strong_shocks": {"design": dict(region_shock_sd=30.0, region_shock_rho=0.8), "fit": {}},
    "short_panel": {
        "design": dict(first_year=2000, last_year=2014, waves={2004: 0.4, 2008: 0.3, 2011: 0.3}),
        "fit": {},
    },
    "rings": {"design": {}, "fit": RING_FIT},
    "zone_losses": {"design": dict(displace_zone_units=True), "fit": {}},
    "zone_losses_cs": {
        "design": dict(displace_zone_units=True),
        "fit": dict(base_estimator="callaway_santanna"),
    },
}
WORLDS = {
    "share 0.5": dict(displacement_share=0.5),
    "null": dict(effect_size=0.0, displacement_share=0.0),
}
MAP_QUANTITIES = ("spillover", "net", "displacement_share")


def _map_truth(sim: Any, result: spillover.SpilloverResult) -> dict[str, float]:
    """Truths on the fitted exposure map's own exposed unit-periods (not the simulator's)."""
    f = sim.frame
    tab = result.exposure.table
    onset = f["unit"].map(tab["exposure_onset"]).to_numpy(float)
    role = f["unit"].map(tab["role"]).to_numpy()
    eff = (f["fdi"] - f["fdi_y0"]).to_numpy(float)
    exposed = (role == "exposed") & (f["year"].to_numpy() >= onset)
    treated = ((f["cohort"] > 0) & (f["year"] >= f["cohort"])).to_numpy()
    # losses of zone units before their own zone count as spillover, as in the estimator
    zone_pre = (role == "direct") & ~treated
    d_tot, s_tot = eff[treated].sum(), eff[exposed].sum() + eff[zone_pre].sum()
    return {
        "spillover": float(eff[exposed].mean()) if exposed.any() else 0.0,
        "net": float(d_tot + s_tot),
        "displacement_share": float(-s_tot / d_tot) if d_tot else float("nan"),
    }


def one(
    design: dict[str, Any], world: dict[str, Any], fit_kw: dict[str, Any], g: np.random.Generator
) -> dict[str, Any]:
    """One world drawn and estimated with the default inference; NaN rows on an error."""
    sim = simulate(rng=g, **{**DESIGN, **design, **world})
    truth = truths(sim)
    out: dict[str, Any] = {"error": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = spillover.fit(
                sim.panel, outcome="fdi", rng=g, covariates=["x"], n_boot=999, **fit_kw
            )
    except Exception as exc:  # recorded and counted, so one failing world does not end a sweep
        out["error"] = f"{type(exc).__name__}: {exc}"
        for q in QUANTITIES:
            out.update({f"{q}_{k}": np.nan for k in ("est", "se", "cover", "reject0")})
            out[f"{q}_truth"] = float(truth[q])
        return out
    t = r.terms.set_index("term")
    ci = r.conf_int(0.05)
    quantities = dict.fromkeys(QUANTITIES, "")
    if "exposure" in fit_kw:
        map_truth = _map_truth(sim, r)
        quantities.update({f"{q}@map": q for q in MAP_QUANTITIES})
        truth.update({f"{q}@map": map_truth[q] for q in MAP_QUANTITIES})
    if "spillover_on_zones_total" in t.index:
        # the definitions before zone units' pre-zone losses entered net (commit 3b9cdce),
        # scored on the same worlds: point estimates only (no SE was ever reported for them)
        d, s = t.loc["direct_total", "estimate"], t.loc["spillover_total", "estimate"]
        out.update({"net_old_est": d + s, "net_old_truth": float(truth["net"])})
        out.update({"share_old_est": -s / d, "share_old_truth": float(truth["displacement_share"])})
        for q in ("net_old", "share_old"):
            out.update({f"{q}_se": np.nan, f"{q}_cover": np.nan, f"{q}_reject0": np.nan})
    for q, term in quantities.items():
        term = term or q
        est, se = float(t.loc[term, "estimate"]), float(t.loc[term, "se"])
        lo, hi = float(ci.loc[term, "lower"]), float(ci.loc[term, "upper"])
        out.update({f"{q}_est": est, f"{q}_se": se, f"{q}_truth": float(truth[q])})
        out[f"{q}_cover"] = float(lo <= truth[q] <= hi) if np.isfinite(lo + hi) else np.nan
        out[f"{q}_reject0"] = float(not lo <= 0.0 <= hi) if np.isfinite(lo + hi) else np.nan
    return out


def summarise(rows: pd.DataFrame, variant: str, world: str) -> pd.DataFrame:
    """Per quantity: mean truth, bias and its Monte Carlo SE, SE/SD, coverage, rejection."""
    recs = []
    quantities = [c[: -len("_est")] for c in rows.columns if c.endswith("_est")]
    for q in quantities:
        est, se, truth = rows[f"{q}_est"], rows[f"{q}_se"], rows[f"{q}_truth"]
        ok = np.isfinite(est) & np.isfinite(truth)
        err = (est - truth)[ok]
        t_mean = float(truth[ok].mean()) if ok.any() else np.nan
        sd = float(err.std(ddof=1)) if ok.sum() > 1 else np.nan
        recs.append(
            {
                "variant": variant,
                "world": world,
                "quantity": q,
                "truth": t_mean,
                "bias": float(err.mean()) if ok.any() else np.nan,
                "bias_pct": float(100 * abs(err.mean()) / abs(t_mean)) if t_mean else np.nan,
                # Monte Carlo SE of the bias: is a bias_pct above 5 more than noise?
                "bias_mcse": sd / np.sqrt(ok.sum()),
                "se_sd": float(se[ok].mean() / sd) if sd else np.nan,
                "coverage": float(rows[f"{q}_cover"][ok].mean()),
                "reject_5pct": float(rows[f"{q}_reject0"][ok].mean()),
                "n": int(ok.sum()),
            }
        )
    return pd.DataFrame(recs)


def run(reps: int, variants: list[str], seed: int = 20261130) -> tuple[pd.DataFrame, list[str]]:
    """Every variant x world, ``reps`` replications each (same seed: common random numbers)."""
    set_progress(False)
    out, errors = [], []
    for v in variants:
        spec = VARIANTS[v]
        for name, world in WORLDS.items():
            t0 = time.perf_counter()
            rows = pd.DataFrame(
                replicate(
                    lambda _i, g, w=world, s=spec: one(s["design"], w, s["fit"], g), reps, rng=seed
                )
            )
            failed = rows["error"].astype(bool)
            if failed.any():
                errors.append(
                    f"{v} / {name}: {failed.sum()} failed, e.g. {rows['error'][failed].iloc[0]}"
                )
            out.append(summarise(rows.drop(columns="error"), v, name))
            print(f"# {v} / {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return pd.concat(out, ignore_index=True), errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=20261130, help="another seed: fresh worlds")
    args = ap.parse_args()
    t0 = time.perf_counter()
    table, errors = run(args.reps, args.variants, args.seed)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for e in errors:
        print("error:", e)
    print(f"{args.reps} replications per variant and world: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
