"""Monte Carlo of the weighted spillover decomposition: a known weighted truth.

World (``zoneimpact.simulate``): 200 units in 30 regions, 2000-2018, three zone waves,
half of each zone's gain displaced onto its neighbours, region-by-year AR(1) shocks. Each
unit is "big" with probability 0.3, independently of zone timing; big units have weights
(population) drawn from U(3, 6) and small ones from U(0.5, 1.5), and every effect of a big
unit (its direct effect, or the spillover it receives) is 2.5 times the simulator's. The
outcome is the simulator's latent outcome (no censoring at zero), so effects are additive:
``Y = Y(0) + m_i tau_it``.

Truth, over the estimator's own targets (zone unit-periods from the zone's opening;
exposed unit-periods from the exposure onset): the weighted mean effects
``sum w_i tau_it / sum w_i``, the weighted totals ``sum w_i tau_it`` (net = direct +
spillover totals + the zone units' change before their own zone) and the displacement
share ``1 - net / direct total``. The
weighted estimator (``weights="pop"``) should recover them; the unweighted one estimates
the unweighted means, which differ because the effects vary with the weight.

Reports, for each estimator and quantity, the mean weighted truth, bias (and |bias| as a
share of the truth), SE/SD and coverage of 95% intervals of the weighted truth; the
column ``own_truth`` is each estimator's own estimand (weighted or unweighted).

Run:  python benchmarks/mc_spillover_weights.py [--reps 200]
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

import numpy as np
import pandas as pd

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

DESIGN = dict(
    n_units=200,
    n_regions=30,
    first_year=2000,
    last_year=2018,
    waves={2005: 0.4, 2009: 0.3, 2013: 0.3},
    displacement_share=0.5,
    region_shock_sd=10.0,
)
BIG_SHARE, BIG_EFFECT = 0.3, 2.5
QUANTITIES = ("direct", "spillover", "net", "displacement_share")


def world(g: np.random.Generator, big_effect: float = BIG_EFFECT) -> tuple[Panel, pd.DataFrame]:
    """The weighted panel and each unit-period's weight and true effect."""
    sim = simulate(rng=g, **DESIGN)
    units = sim.geography["unit"].to_numpy()
    big = g.random(len(units)) < BIG_SHARE
    pop = np.where(big, g.uniform(3, 6, len(units)), g.uniform(0.5, 1.5, len(units)))
    mult = np.where(big, big_effect, 1.0)
    f = sim.frame
    pos = pd.Series(np.arange(len(units)), index=units).reindex(f["unit"]).to_numpy()
    tau = mult[pos] * (f["fdi_latent"] - f["fdi_latent_y0"]).to_numpy()
    frame = pd.DataFrame(
        {
            "unit": f["unit"],
            "year": f["year"],
            "cohort": f["cohort"],
            "y": f["fdi_latent_y0"].to_numpy() + tau,
            "pop": pop[pos],
        }
    )
    panel = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["y"],
        covariates=["pop"],
        geography=sim.geography,
        adjacency=sim.adjacency,
    )
    return panel, frame.assign(tau=tau)


def truths(res: spillover.SpilloverResult, frame: pd.DataFrame, weighted: bool) -> dict:
    """Means, totals and share of the true effects over the fit's targets."""
    assert res.exposure is not None
    tab = res.exposure.table.reindex(frame["unit"])
    role = tab["role"].to_numpy()
    t = frame["year"].to_numpy(float)
    g = tab["cohort"].to_numpy(float)
    e = tab["exposure_onset"].to_numpy(float)
    w = frame["pop"].to_numpy() if weighted else np.ones(len(frame))
    tau = frame["tau"].to_numpy()
    d_mask = (role == "direct") & (t >= g)
    s_mask = (role == "exposed") & (t >= e)
    # zone units' change before their own zone (spillover_on_zones_total; zero in this
    # world, whose simulator displaces never-zone neighbours only)
    z_mask = (role == "direct") & (t >= e) & (t < g)
    d_tot, s_tot = float(w[d_mask] @ tau[d_mask]), float(w[s_mask] @ tau[s_mask])
    z_tot = float(w[z_mask] @ tau[z_mask])
    return {
        "direct": d_tot / w[d_mask].sum(),
        "spillover": s_tot / w[s_mask].sum(),
        "net": d_tot + s_tot + z_tot,
        "displacement_share": 1 - (d_tot + s_tot + z_tot) / d_tot,
    }


def one(g: np.random.Generator, n_boot: int, big_effect: float) -> dict[str, float]:
    panel, frame = world(g, big_effect)
    out: dict[str, float] = {}
    for name, weights in (("weighted", "pop"), ("unweighted", None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = spillover.fit(panel, outcome="y", rng=g, n_boot=n_boot, weights=weights)
        t = res.terms.set_index("term")
        ci = res.conf_int(0.05)
        truth = truths(res, frame, weighted=True)
        own = truths(res, frame, weighted=weights is not None)
        for q in QUANTITIES:
            key = f"{name}|{q}"
            out[f"{key}|est"] = float(t.loc[q, "estimate"])
            out[f"{key}|se"] = float(t.loc[q, "se"])
            out[f"{key}|truth"] = truth[q]
            out[f"{key}|own"] = own[q]
            out[f"{key}|cover"] = float(ci.loc[q, "lower"] <= truth[q] <= ci.loc[q, "upper"])
    return out


def run(
    reps: int, n_boot: int = 0, seed: int = 20261130, big_effect: float = BIG_EFFECT
) -> pd.DataFrame:
    """Summary table (estimator, quantity, truth, bias, bias_pct, se_sd, coverage,
    own_truth); ``n_boot`` = 0 uses the delta-method SE of the share; ``big_effect`` = 1
    makes the effects homogeneous (the weights then change the estimand nothing)."""
    set_progress(False)
    rows = pd.DataFrame(replicate(lambda _i, g: one(g, n_boot, big_effect), reps, rng=seed))
    recs = []
    for name in ("weighted", "unweighted"):
        for q in QUANTITIES:
            key = f"{name}|{q}"
            est, truth = rows[f"{key}|est"], rows[f"{key}|truth"]
            err = est - truth
            recs.append(
                {
                    "estimator": name,
                    "quantity": q,
                    "truth": float(truth.mean()),
                    "mean_est": float(est.mean()),
                    "bias": float(err.mean()),
                    "bias_pct": float(100 * abs(err.mean()) / abs(truth.mean())),
                    "se_sd": float(rows[f"{key}|se"].mean() / err.std(ddof=1)),
                    "coverage": float(rows[f"{key}|cover"].mean()),
                    "own_truth": float(rows[f"{key}|own"].mean()),
                }
            )
    return pd.DataFrame(recs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=199)
    ap.add_argument("--big-effect", type=float, default=BIG_EFFECT)
    args = ap.parse_args()
    t0 = time.perf_counter()
    table = run(args.reps, args.n_boot, big_effect=args.big_effect)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"{args.reps} replications, n_boot {args.n_boot}, big effect {args.big_effect:g}: "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
