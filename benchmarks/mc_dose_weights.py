"""Monte Carlo: unit weights in the continuous-dose DiD (CGBS 2024) under heterogeneity.

Design (``simulate``): 600 units, 4 periods, cohorts 2-4 (25% never treated), dose
``D ~ U(0.05, 1)`` and a unit type ``h ~ Bernoulli(1/2)`` independent of each other and of
the cohort; the unit weight (say, population) is ``w = 1 + 3 h``. Effects are heterogeneous
in the type: ``Y_it = a_i + 0.5 D_i + c_t + 1{t >= G_i} (1 + 2 h_i) f(D_i) + e_it`` with
``f(d) = 0.5 d + 0.8 d^2``; trends do not depend on ``D`` or ``h`` (strong parallel trends).
The weighted (population) dose response is ``ATT_w(d) = (1 + 2 P_w(h=1)) f(d) = 2.6 f(d)``
(``P_w(h=1) = 0.8``) and ``ACRT_w(d) = 2.6 f'(d)``; the unweighted one is ``2 f(d)``.

Reported for each target (ATT^o, ACRT^o, ATT(d) and ACRT(d) at d = 0.2, 0.4, 0.6, 0.8)
against the weighted truth: the weighted estimator with our influence-function SEs
(``weighted``), the same estimates with diff-diff 3.13's survey SE formula
``sqrt(n/(n-1) sum_i (w_i psi_i - mean)^2)`` (``weighted, diff-diff SE``; the weight enters
twice), and the unweighted estimator (``unweighted``), plus the coverage of the weighted
uniform bands.

Run:  python benchmarks/mc_dose_weights.py [reps]   (default 1000; output in RESULTS.md)
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mc_designs  # noqa: E402

from zoneimpact.panel import Panel  # noqa: E402

FACTOR_WEIGHTED = 1 + 2 * 0.8  # 1 + 2 P_w(h = 1), P_w(h = 1) = 0.5 * 4 / (0.5 * 1 + 0.5 * 4)


def simulate(rng: np.random.Generator, n_units: int = 600, n_periods: int = 4) -> pd.DataFrame:
    """One draw of the design above: columns ``unit``, ``time``, ``g``, ``dose``, ``w``, ``y``."""
    g = rng.integers(2, n_periods + 1, n_units)
    g = np.where(rng.random(n_units) < 0.25, 0, g)
    dose = np.where(g > 0, rng.uniform(mc_designs.DOSE_LOW, 1.0, n_units), 0.0)
    h = rng.random(n_units) < 0.5
    a = rng.normal(0, 1, n_units) + 0.5 * dose
    c = rng.normal(0, 0.5, n_periods).cumsum()
    t = np.arange(1, n_periods + 1)
    on = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    effect = (1 + 2 * h) * mc_designs.dose_effect(dose)
    y = a[:, None] + c[None, :] + on * effect[:, None] + rng.normal(0, 0.5, (n_units, n_periods))
    ui, ti = np.meshgrid(np.arange(n_units), np.arange(n_periods), indexing="ij")
    return pd.DataFrame(
        {
            "unit": ui.ravel() + 1,
            "time": ti.ravel() + 1,
            "g": g[ui].ravel(),
            "dose": dose[ui].ravel(),
            "w": (1 + 3 * h)[ui].ravel().astype(float),
            "y": y.ravel(),
        }
    )


def truth() -> dict[str, float]:
    """Weighted (population) targets: 2.6 times the homogeneous design's."""
    return {k: FACTOR_WEIGHTED * v for k, v in mc_designs.dose_truth().items()}


def _diffdiff_se(panel: Panel) -> dict[str, float]:
    """diff-diff's survey SE of the weighted fit, ``sqrt(n/(n-1) sum (w psi - mean)^2)``,
    from our influence functions (they equal diff-diff's: see the reference test)."""
    from zoneimpact.estimators import continuous_did as cd

    data = cd._unit_arrays(panel, "y", "dose", "w")
    sieve = cd._sieve(data.dose[data.treated], 3, 0, list(mc_designs.DOSE_GRID))
    cells = cd._post_cells(data, 0)
    fits = [f for c in cells if (f := cd._cell_fit(data, sieve, c, "never_treated", 0))]
    psi = cd._aggregate(fits)[2] * np.asarray(data.w)[:, None]
    n = len(psi)
    se = np.sqrt(n / (n - 1) * ((psi - psi.mean(axis=0)) ** 2).sum(axis=0))
    k = len(sieve.grid)
    names = ["att", "acrt"] + [f"att_d:{i}" for i in range(k)] + [f"acrt_d:{i}" for i in range(k)]
    return dict(zip(names, se, strict=True))


def one(rep: int, rng: np.random.Generator, n_boot: int = 199) -> list[dict]:
    """One replication: records for :func:`mc_designs.summarise`."""
    from zoneimpact.estimators.continuous_did import fit

    df = simulate(rng)
    panel = Panel.from_frame(
        df, unit="unit", time="time", cohort="g", outcomes="y", covariates=["dose", "w"]
    )
    grid = list(mc_designs.DOSE_GRID)
    tru = truth()
    weighted = fit(
        panel, outcome="y", dose="dose", weights="w", dose_grid=grid, n_boot=n_boot, rng=rng
    )
    flat = fit(panel, outcome="y", dose="dose", dose_grid=grid, n_boot=0)
    se_dd = _diffdiff_se(panel)
    out = []
    for label, res in (("weighted", weighted), ("unweighted", flat)):
        t = res.terms.set_index("term")
        for k, v in tru.items():
            rec = {"term": k, "truth": v, "estimate": float(t.loc[k, "estimate"])}
            out.append({"estimator": label, **rec, "se": float(t.loc[k, "se"])})
            if label == "weighted":
                out.append({"estimator": "weighted, diff-diff SE", **rec, "se": se_dd[k]})
    t = weighted.terms.set_index("term")
    for curve in ("att_d", "acrt_d") if n_boot else ():
        keys = [f"{curve}:{i}" for i in range(len(grid))]
        inside = all(t.loc[k, "band_low"] <= tru[k] <= t.loc[k, "band_high"] for k in keys)
        out.append(
            {
                "estimator": "weighted",
                "term": f"{curve} uniform band",
                "truth": np.nan,
                "estimate": np.nan,
                "se": np.nan,
                "covered": float(inside),
            }
        )
    return out


def run(reps: int, seed: int = 16, n_boot: int = 199, n_jobs: int = 1) -> pd.DataFrame:
    from zoneimpact.parallel import replicate

    recs = replicate(
        lambda i, rng: one(i, rng, n_boot=n_boot),
        reps,
        rng=np.random.default_rng(seed),
        n_jobs=n_jobs,
        desc="dose weights",
    )
    return mc_designs.summarise([r for rep in recs for r in rep])


def main() -> None:
    from zoneimpact.parallel import set_progress

    set_progress(False)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    start = time.perf_counter()
    table = run(reps)
    pd.set_option("display.width", 140)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{reps} replications, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
