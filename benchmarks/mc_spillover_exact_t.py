"""How far is the Bell-McCaffrey t from the exact distribution of the CR2 t-ratio?

Under the working model behind the Bell & McCaffrey (2002) degrees of freedom (independent
N(0, s^2) errors) the direct effect's estimation error is ``a'u`` and its CR2 variance
``sum_g (c_g'u)^2`` (``_bjs.bm_parts``; ``a`` is the implied weights on the clean rows and
``w`` on the targets), so ``P(|t| > c) = P(u'(a a' - c^2 C C')u > 0)``, a quadratic form in
normals whose distribution Imhof (1961) gives by one integral; the exact critical value
solves it for 5%. This script draws the worlds of ``mc_spillover.py`` (``--design`` as
there), fits the default and reports coverage of the direct effect's 95% interval with
t(Bell-McCaffrey df), the exact critical value and t(G - 1). With ``--working-model`` the
outcome is replaced by independent N(0, 1) draws, where the exact value is exact.

Run:  python benchmarks/mc_spillover_exact_t.py [--reps 300] [--seed 20261205]
      [--world null] [--working-model] [--design n_regions=10 ...]
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import warnings

import numpy as np
import pandas as pd
from mc_spillover import WORLDS, design_from, truths
from scipy import integrate, optimize, stats

from zoneimpact.estimators import _bjs, spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate


def prob_positive(lam: np.ndarray) -> float:
    """``P(sum_j lam_j z_j^2 > 0)`` for independent standard normal ``z`` (Imhof 1961)."""
    lam = lam[np.abs(lam) > 1e-12 * np.abs(lam).max()]

    def integrand(t: float) -> float:
        theta = 0.5 * np.sum(np.arctan(lam * t))
        return np.sin(theta) / (t * np.prod((1 + (lam * t) ** 2) ** 0.25))

    return 0.5 + integrate.quad(integrand, 0, np.inf, limit=500)[0] / np.pi


def exact_critical_value(a: np.ndarray, C: np.ndarray, alpha: float = 0.05) -> float:
    """``c`` with ``P(|a'u| > c ||C'u||) = alpha`` for ``u ~ N(0, I)``: the nonzero
    eigenvalues of ``a a' - c^2 C C'`` are those of ``R S R`` with ``R = (X'X)^{1/2}``,
    ``X = [a, C]`` and ``S = diag(1, -c^2, ...)``."""
    X = np.column_stack([a, C])
    w, V = np.linalg.eigh(X.T @ X)
    R = V @ np.diag(np.sqrt(np.clip(w, 0, None))) @ V.T
    sign = np.r_[1.0, -np.ones(C.shape[1])]

    def excess(c: float) -> float:
        S = np.diag(sign * np.r_[1.0, np.full(C.shape[1], c * c)])
        return prob_positive(np.linalg.eigvalsh(R @ S @ R)) - alpha

    return float(optimize.brentq(excess, 0.5, 100.0, xtol=1e-6))


def one(world: dict, design: dict, working: bool, g: np.random.Generator) -> dict[str, float]:
    sim = simulate(rng=g, **design, **world)
    panel = (
        sim.panel.with_outcome("noise", g.normal(size=len(sim.panel.data)))
        if working
        else sim.panel
    )
    outcome = "noise" if working else "fdi"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = spillover.fit(panel, outcome=outcome, rng=g, covariates=["x"], n_boot=0)
    sc = r.fitted.fits["direct"].rescore
    fit = _bjs.refactored(sc.fit)
    region = r.fitted.panel.geography["region"].reindex(r.fitted.units).to_numpy()
    cluster = np.unique(region[sc.unit_row], return_inverse=True)[1]
    G = int(cluster.max()) + 1
    cells = sc.cells_for(cluster[fit.target])
    C0, C1 = _bjs.bm_parts(fit, sc.w[:, 0], cells, cluster, G, scale=sc.scale)
    a = np.concatenate([_bjs.implied_weights(fit, sc.w)[:, 0], sc.w[:, 0]])
    t = r.terms.set_index("term").loc["direct"]
    truth = 0.0 if working else truths(sim)["direct"]
    return {
        "t": (t["estimate"] - truth) / t["se"],
        "df": t["df"],
        "G": float(G),
        "exact": exact_critical_value(a, np.vstack([C0, C1])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--world", default="null", choices=list(WORLDS))
    ap.add_argument("--working-model", action="store_true")
    ap.add_argument("--design", nargs="+", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args()
    design = design_from(args.design)
    set_progress(False)
    w = WORLDS[args.world]
    rows = pd.DataFrame(
        replicate(lambda _i, g: one(w, design, args.working_model, g), args.reps, rng=args.seed)
    )
    a = rows["t"].abs()
    bm = stats.t.ppf(0.975, rows["df"])
    print(
        f"direct effect, {args.world} world{' (working model)' if args.working_model else ''}: "
        f"BM df median {rows['df'].median():.2f}, critical value median t(BM df) "
        f"{np.median(bm):.2f} / exact {rows['exact'].median():.2f}; coverage of 95% intervals "
        f"t(BM df) {(a <= bm).mean():.3f}, exact {(a <= rows['exact']).mean():.3f}, "
        f"t(G-1) {(a <= stats.t.ppf(0.975, rows['G'] - 1)).mean():.3f}"
    )
    print(f"{args.reps} replications, seed {args.seed}, design changes {args.design}")


if __name__ == "__main__":
    main()
