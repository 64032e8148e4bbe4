"""Monte Carlo: concentration versus creation in three simulated worlds with known truth.

Worlds (zoneimpact.simulate, additive FDI-like outcome):

(a) pure concentration: displacement_share = 1, agglomeration = 0 (net effect 0);
(b) pure creation: displacement_share = 0 (net effect = direct total);
(c) no effect: effect_size = 0.

For each replication: spillover-aware estimates (batched imputation, region cluster
bootstrap) with the exposure map given by the simulator's true exposure onsets
(``--map true``, default) or the adjacency list (``--map adjacency``: shows what a
misspecified map does — the simulator gives a zone without a neighbour inside the radius
its two nearest same-region units, which the adjacency list omits), and the verdict on
the claim "zones did not raise the region's FDI" (no_net_fdi_gain, seeds/claims.toml).

Prints, per world: bias of direct / naive / net (and in outcome SDs), coverage of the
95% CIs of net and direct, mean displacement share vs truth, verdict frequencies.

Usage: python benchmarks/mc_worlds.py [--reps 200] [--n-boot 199] [--map true|adjacency]
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
from collections.abc import Callable

import numpy as np
import pandas as pd

from zoneimpact.claims import evaluate_claims, load_claims
from zoneimpact.estimators import spillover
from zoneimpact.exposure import exposure_from_onsets
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

DESIGNS = {
    # the size the tests use (tests/test_claims.py)
    "small": dict(
        n_units=150,
        n_regions=30,
        first_year=2002,
        last_year=2016,
        waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
    ),
    # the simulator's China-like default (280 units, 30 regions, 1996-2022)
    "default": dict(),
}
WORLDS = {
    "a_concentration": dict(displacement_share=1.0, agglomeration=0.0),
    "b_creation": dict(displacement_share=0.0, agglomeration=0.0),
    "c_no_effect": dict(effect_size=0.0),
}


def one_rep(design: dict, world: dict, n_boot: int, use_map: str, claims: list) -> Callable:
    def run(i: int, rng: np.random.Generator) -> dict:
        sim = simulate(rng=rng, **design, **world)
        if use_map == "true":
            onset = sim.frame.drop_duplicates("unit").set_index("unit")["exposure_onset"]
            exposure = exposure_from_onsets(sim.panel, onset)
        else:
            exposure = "adjacency"
        res = spillover.fit(sim.panel, outcome="fdi", rng=rng, n_boot=n_boot, exposure=exposure)
        ci = res.conf_int()
        tr = sim.truth
        net_true, att_true = tr.net_total["fdi"], tr.overall["fdi"]
        verdict = evaluate_claims(claims, {"sim": {"fdi": res}})
        verdict = verdict.set_index("claim")["verdict"]
        return {
            "direct_err": res.coef("direct") - att_true,
            "naive_err": res.coef("naive") - att_true,
            "net_err": res.coef("net") - net_true,
            "net_per_treated_err": (res.coef("net") - net_true)
            / res.info["n_treated_unit_periods"],
            "net_cover": ci.at["net", "lower"] <= net_true <= ci.at["net", "upper"],
            "direct_cover": ci.at["direct", "lower"] <= att_true <= ci.at["direct", "upper"],
            "direct_detected": ci.at["direct", "lower"] > 0,
            "disp": res.coef("displacement_share"),
            "disp_true": tr.displacement_share["fdi"],
            "sd": res.info["outcome_sd"],
            "verdict_net": verdict["no_net_fdi_gain"],
            "verdict_disp": verdict["fdi_concentration_not_creation"],
        }

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=199)
    ap.add_argument("--map", choices=["true", "adjacency"], default="true")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--design", choices=list(DESIGNS), default="default")
    args = ap.parse_args()
    set_progress(False)
    warnings.simplefilter("ignore", RuntimeWarning)
    claims = [
        c for c in load_claims() if c.id in ("no_net_fdi_gain", "fdi_concentration_not_creation")
    ]
    design = DESIGNS[args.design]
    print(f"design {args.design} {design}, reps {args.reps}, n_boot {args.n_boot}, map {args.map}")
    for k, (name, world) in enumerate(WORLDS.items()):
        t0 = time.time()
        rows = replicate(
            one_rep(design, world, args.n_boot, args.map, claims),
            args.reps,
            rng=np.random.default_rng([args.seed, k]),
            n_jobs=args.n_jobs,
        )
        df = pd.DataFrame(rows)
        sd = df["sd"].mean()
        print(f"\n=== world {name}  ({time.time() - t0:.0f} s)")
        print(
            f"bias direct {df.direct_err.mean():9.3f} ({df.direct_err.mean() / sd:+.4f} SD)  "
            f"naive {df.naive_err.mean():9.3f} ({df.naive_err.mean() / sd:+.4f} SD)"
        )
        print(
            f"bias net total {df.net_err.mean():10.1f} (MC se {df.net_err.std() / np.sqrt(len(df)):.1f}); "
            f"per treated unit-period {df.net_per_treated_err.mean():.3f}"
        )
        print(
            f"coverage 95%: net {df.net_cover.mean():.3f}, direct {df.direct_cover.mean():.3f}; "
            f"direct detected {df.direct_detected.mean():.3f}"
        )
        print(
            f"displacement share: mean {df.disp.mean():.3f}, median {df.disp.median():.3f} "
            f"(truth {df.disp_true.mean():.3f})"
        )
        print(
            "verdict no_net_fdi_gain:",
            df.verdict_net.value_counts(normalize=True).round(3).to_dict(),
        )
        print(
            "verdict fdi_concentration_not_creation:",
            df.verdict_disp.value_counts(normalize=True).round(3).to_dict(),
        )


if __name__ == "__main__":
    main()
