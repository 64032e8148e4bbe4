"""How far is the Bell-McCaffrey t from the exact distribution of the CR2 t-ratio?

Under the working model behind the Bell & McCaffrey (2002) degrees of freedom (independent
N(0, s^2) errors) the direct effect's estimation error is ``a'u`` and its CR2 variance
``sum_g (c_g'u)^2`` (``_bjs.bm_parts``; ``a`` is the implied weights on the clean rows and
``w`` on the targets), so ``P(|t| > c) = P(u'(a a' - c^2 C C')u > 0)``, a quadratic form in
normals whose distribution Imhof (1961) gives by one integral; the exact critical value
solves it for 5%. This script draws the worlds of ``mc_spillover.py`` (``--design`` as
there), fits the default and reports coverage of the direct effect's 95% interval with
t(Bell-McCaffrey df), the exact critical value and t(G - 1). With ``--working-model`` the
outcome is replaced by independent N(0, 1) draws, where the exact value is exact. With
``--omega`` the same is computed under a working model estimated from step 1's residuals
(covariances by lag within a unit and within a region, Imbens & Kolesar 2016's suggestion
of a richer working model), by the Gram ``X' Omega X`` of ``X = [a, C]``.

With ``--referee-l`` the worlds are referee L's null ones (``referee_l/``; session 48): any
linear term, also one combining pieces (``spillover`` over its two rings), from the pieces'
vectors on the long table they share; ``--aux-partition`` fixes the fit's ``tau~`` model,
``--check`` prints the wiring checks (the default test rebuilt against the fit's own),
``--start`` and ``--out`` extend a run into a CSV.

Run:  python benchmarks/mc_spillover_exact_t.py [--reps 300] [--seed 20261205]
      [--world null] [--working-model] [--design n_regions=10 ...]
      python benchmarks/mc_spillover_exact_t.py --referee-l --reps 1000 --terms direct
      spillover spillover:0-30km spillover:30-80km [--aux-partition onset_event] --out F.csv
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
import warnings

# the benchmarks folder (mc_spillover, the referees' scripts)
BENCH = os.path.dirname(os.path.abspath(__file__))

import numpy as np
import pandas as pd
from mc_spillover import WORLDS, design_from, truths
from scipy import integrate, optimize, stats

from zoneimpact.estimators import _bjs, spillover
from zoneimpact.parallel import replicate, set_progress
from zoneimpact.simulate import simulate

#: ``--omega``: also the exact law under a working model estimated from the residuals
OMEGA = False


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


def lag_covariances(
    e: np.ndarray, unit: np.ndarray, time: np.ndarray, region: np.ndarray, n_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Residual covariances by lag ``L = |t - s|``: within a unit (``Ku``) and between two
    units of the same region (``Kr``), each the mean product over the pairs observed."""
    unit = np.unique(unit, return_inverse=True)[1]
    E, M = np.zeros((unit.max() + 1, n_periods)), np.zeros((unit.max() + 1, n_periods))
    E[unit, time], M[unit, time] = e, 1.0
    reg = np.zeros(unit.max() + 1, int)
    reg[unit] = region
    S, N = np.zeros((region.max() + 1, n_periods)), np.zeros((region.max() + 1, n_periods))
    np.add.at(S, reg, E)
    np.add.at(N, reg, M)
    Ku, Kr = np.zeros(n_periods), np.zeros(n_periods)
    for L in range(n_periods):
        su, cu = (E[:, : n_periods - L] * E[:, L:]).sum(), (M[:, : n_periods - L] * M[:, L:]).sum()
        sr = (S[:, : n_periods - L] * S[:, L:]).sum() - su
        cr = (N[:, : n_periods - L] * N[:, L:]).sum() - cu
        Ku[L], Kr[L] = (su / cu if cu else 0.0), (sr / cr if cr else 0.0)
    return Ku, Kr


def omega_gram(
    X: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    region: np.ndarray,
    Ku: np.ndarray,
    Kr: np.ndarray,
) -> np.ndarray:
    """``X' Omega X`` for the estimated working model: errors correlated within a region
    by lag (``Kr``), and more within a unit (``Ku``), independent across regions."""
    out = np.zeros((X.shape[1], X.shape[1]))
    for g in np.unique(region):
        r = np.flatnonzero(region == g)
        lag = np.abs(time[r][:, None] - time[r][None, :])
        om = Kr[lag] + (unit[r][:, None] == unit[r][None, :]) * (Ku[lag] - Kr[lag])
        out += X[r].T @ om @ X[r]
    return out


def exact_from_gram(gram: np.ndarray, alpha: float = 0.05) -> float:
    """:func:`exact_critical_value` from the Gram matrix of ``[a, C]`` under any working
    model (``X' Omega X``; ``X'X`` is the independent one)."""
    w, V = np.linalg.eigh((gram + gram.T) / 2)
    R = V @ np.diag(np.sqrt(np.clip(w, 0, None))) @ V.T
    k = gram.shape[0] - 1
    sign = np.r_[1.0, -np.ones(k)]

    def excess(c: float) -> float:
        return (
            prob_positive(np.linalg.eigvalsh(R @ np.diag(sign * np.r_[1.0, np.full(k, c * c)]) @ R))
            - alpha
        )

    return float(optimize.brentq(excess, 0.3, 100.0, xtol=1e-6))


def exact_row(r: spillover.SpilloverResult, term: str, truth: float) -> dict[str, float]:
    """The term's t-ratio, Bell-McCaffrey df and exact critical value (``direct`` or the
    single ring piece's ``spillover``), keys prefixed with the term; with ``OMEGA`` set
    also the exact value and Satterthwaite df under the estimated working model of
    :func:`omega_gram` (``_exact_omega``, ``_df_omega``)."""
    fits = r.fitted.fits
    rings = [k for k in fits if k.startswith("spillover:")]
    if term == "spillover" and len(rings) != 1:
        raise SystemExit(f"--term spillover needs one ring piece; the fit has {rings}")
    sc = fits["direct" if term == "direct" else rings[0]].rescore
    fit = _bjs.refactored(sc.fit)
    region = r.fitted.panel.geography["region"].reindex(r.fitted.units).to_numpy()
    cluster = np.unique(region[sc.unit_row], return_inverse=True)[1]
    G = int(cluster.max()) + 1
    cells = sc.cells_for(cluster[fit.target])
    parts = _bjs.cr2_parts(fit, cluster[fit.clean])
    C0, C1 = _bjs.bm_parts(fit, sc.w[:, 0], cells, cluster, G, scale=sc.scale, cr2=parts)
    a = np.concatenate([_bjs.implied_weights(fit, sc.w)[:, 0], sc.w[:, 0]])
    t = r.terms.set_index("term").loc[term]
    out = {
        f"{term}_t": (t["estimate"] - truth) / t["se"],
        f"{term}_df": t["df"],
        f"{term}_G": float(G),
        f"{term}_exact": exact_critical_value(a, np.vstack([C0, C1])),
    }
    if OMEGA:
        # the working model estimated from step 1's residuals on the clean rows
        X = np.column_stack([a, np.vstack([C0, C1])])
        rows = np.concatenate([fit.clean, fit.target])
        unit, time, reg = sc.unit_row[rows], sc.long.time[rows], cluster[rows]
        k = len(fit.clean)
        Ku, Kr = lag_covariances(
            np.asarray(fit.resid0), unit[:k], time[:k], reg[:k], int(sc.long.time.max()) + 1
        )
        gram = omega_gram(X, unit, time, reg, Ku, Kr)
        out[f"{term}_exact_omega"] = exact_from_gram(gram)
        out[f"{term}_df_omega"] = float(np.trace(gram[1:, 1:]) ** 2 / np.sum(gram[1:, 1:] ** 2))
    return out


def exact_rows(r: spillover.SpilloverResult, terms: list[str], truth: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for term in terms:
        out.update(exact_row(r, term, truth.get(term, 0.0)))
    return out


def one(
    world: dict, design: dict, working: bool, terms: list[str], g: np.random.Generator
) -> dict[str, float]:
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
    return exact_rows(r, terms, {} if working else truths(sim))


def one_h(variant: str, seed: int, terms: list[str], rep: int) -> dict[str, float]:
    """Referee H's null world ``rep`` (its own simulator and default fit)."""
    import mc_referee_h as h

    _, df, geo, _, _ = h.build(rep, seed, "null", variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = h.fit(h.make_panel(df, geo), "imputation", 1)
    return exact_rows(r, terms, {})


def one_i(seed: int, terms: list[str], rep: int) -> dict[str, float]:
    """Referee I's null world ``rep`` at ``seed`` (``referee_i/``: its own simulator and
    default fit; the seeds of its ``--worlds null`` runs)."""
    import sys

    folder = os.path.join(BENCH, "referee_i")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import mc_referee_i as i_mc

    world_seed = i_mc.world_seed("null", rep, seed)
    w = i_mc.simulate(world_seed, 0.0, null=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = i_mc.do_fit(i_mc.build_panel(w), world_seed)[0]
    return exact_rows(r, terms, {})


def term_pieces(r: spillover.SpilloverResult, term: str) -> dict[str, float]:
    """The pieces a linear term combines and their weights, exactly as the fit forms the
    term (``spillover._term_weights``): ``spillover`` over several ring pieces is their
    target-count-weighted mean."""
    weights = dict(spillover._term_weights(r.fitted.fits))
    w = weights.get(term)
    if w is None:
        raise SystemExit(f"term {term!r} not formed by the fit ({sorted(weights)})")
    return w


def exact_row_long(
    r: spillover.SpilloverResult, term: str, truth: float, check: bool = False
) -> dict[str, float]:
    """:func:`exact_row` for any linear term, also one combining pieces (referee L's two
    rings): each piece's implied weights ``a`` and Bell-McCaffrey vectors ``C`` are placed
    on the long table the pieces share (as ``_bjs.bm_vectors`` does; a piece's controls may
    be another's targets) and added with the term's piece weights, so that the term's
    error is ``a'u`` and its CR2 variance ``||C'u||^2``. With ``check`` also the
    wiring checks: ``a'y`` vs the estimate, ``||C'y||`` vs the SE, the Satterthwaite df of
    ``C`` vs the reported df, and the default t test's p-value vs the reported one."""
    fits = r.fitted.fits
    weights = term_pieces(r, term)
    first = fits[next(iter(weights))].rescore
    n_rows = len(first.unit_row)
    region = r.fitted.panel.geography["region"].reindex(r.fitted.units).to_numpy()
    cluster = np.unique(region[first.unit_row], return_inverse=True)[1]
    G = int(cluster.max()) + 1
    a_long, C_long = np.zeros(n_rows), np.zeros((n_rows, G))
    for piece, wt in weights.items():
        sc = fits[piece].rescore
        assert len(sc.unit_row) == n_rows and np.array_equal(sc.unit_row, first.unit_row)
        fit = _bjs.refactored(sc.fit)
        cells = sc.cells_for(cluster[fit.target])
        parts = _bjs.cr2_parts(fit, cluster[fit.clean])
        C0, C1 = _bjs.bm_parts(
            fit, sc.w[:, 0], cells, cluster, G, scale=sc.scale, row_weight=sc.row_weight,
            cr2=parts,
        )  # fmt: skip
        a_long[fit.clean] += wt * _bjs.implied_weights(fit, sc.w)[:, 0]
        a_long[fit.target] += wt * sc.w[:, 0]
        C_long += wt * _bjs.bm_vectors(fit, (C0, C1), n_rows)
    used = (a_long != 0) | (C_long != 0).any(axis=1)
    a, C = a_long[used], C_long[used]
    t = r.terms.set_index("term").loc[term]
    out = {
        f"{term}_t": (t["estimate"] - truth) / t["se"],
        f"{term}_df": t["df"],
        f"{term}_G": float(G),
        f"{term}_exact": exact_critical_value(a, C),
    }
    if check:
        y = first.long.y
        df_own = _bjs.satterthwaite_df(C)
        se_own = float(np.sqrt(np.sum((C_long.T @ y) ** 2)))
        out.update(
            {
                f"{term}_chk_est": float(a_long @ y) - t["estimate"],
                f"{term}_chk_se": se_own / t["se"] - 1,
                f"{term}_chk_df": df_own - t["df"],
                f"{term}_chk_p": 2 * stats.t.sf(abs(t["estimate"] / t["se"]), df_own)
                - t["p_value"],
                f"{term}_p_reported": t["p_value"],
            }
        )
    return out


def one_l(
    terms: list[str], rep: int, check: bool = False, aux_partition: str | None = None
) -> dict[str, float]:
    """Referee L's null world ``rep`` (``referee_l/``: its own simulator and fit, as its
    ``mc.py rings NREP null`` draws them: design ``rings``, seed ``[2024, 4, rep]``,
    ``fit_world(des, f, g, rng=rep)``, i.e. rings 0-30 and 30-80 km, covariates x, the
    fit's other defaults)."""
    folder = os.path.join(BENCH, "referee_l")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import world as l_world

    global _L_DES
    if _L_DES is None:
        _L_DES = l_world.make_design(variant="rings")
    des = _L_DES
    rng = np.random.default_rng([2024, 4, rep])
    y = l_world.simulate(des, 0.0, rng, null=True)
    f, g = l_world.to_frames(des, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # aux_partition given: passed to spillover.fit through fit_world's **kw (nothing
        # else of the fit changes); None keeps the fit's default
        kw = {} if aux_partition is None else {"aux_partition": aux_partition}
        r = l_world.fit_world(des, f, g, rng=rep, **kw)
    out: dict[str, float] = {"rep": float(rep)}
    if check:
        print(
            rep,
            "info aux_partition:",
            r.info.get("aux_partition"),
            "|",
            r.info.get("aux_models", "-"),
        )
    for term in terms:
        out.update(exact_row_long(r, term, 0.0, check))
    return out


_L_DES = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--world", default="null", choices=list(WORLDS))
    ap.add_argument("--working-model", action="store_true")
    ap.add_argument("--design", nargs="+", default=[], metavar="FIELD=VALUE")
    ap.add_argument(
        "--terms",
        nargs="+",
        default=["direct"],
        help="direct, spillover; with --referee-l also spillover:0-30km, spillover:30-80km",
    )
    ap.add_argument("--referee-h", choices=["spec", "nopre"])
    ap.add_argument("--referee-i", action="store_true", help="referee I's null worlds")
    ap.add_argument(
        "--referee-l",
        action="store_true",
        help="referee L's null worlds (rings variant; spillover = both rings combined)",
    )
    ap.add_argument("--start", type=int, default=0, help="--referee-l: first replication")
    ap.add_argument("--check", action="store_true", help="--referee-l: print wiring checks")
    ap.add_argument("--out", help="write the per-world rows to this CSV")
    ap.add_argument(
        "--aux-partition",
        default=None,
        help="--referee-l: aux_partition passed to spillover.fit (default: the fit's own)",
    )
    ap.add_argument(
        "--omega",
        action="store_true",
        help="also the exact value and df under a working model estimated from the residuals",
    )
    args = ap.parse_args()
    global OMEGA
    OMEGA = args.omega
    design = design_from(args.design)
    set_progress(False)
    w = WORLDS[args.world]
    if args.referee_l:
        recs, t0 = [], time.time()
        for i in range(args.start, args.start + args.reps):
            recs.append(one_l(args.terms, i, args.check, args.aux_partition))
            if args.out and (len(recs) % 25 == 0):
                pd.DataFrame(recs).to_csv(args.out, index=False)
                print(f"{len(recs)} worlds, {time.time() - t0:.0f}s", flush=True)
        rows = pd.DataFrame(recs)
        print(f"time per world {(time.time() - t0) / args.reps:.2f}s")
        if args.check:
            with pd.option_context("display.width", 200, "display.max_columns", 50):
                print(rows.filter(like="chk").T)
                print(rows.filter(like="p_reported").T)
    elif args.referee_i:
        rows = pd.DataFrame([one_i(args.seed, args.terms, i) for i in range(args.reps)])
    elif args.referee_h:
        rows = pd.DataFrame(
            [one_h(args.referee_h, args.seed, args.terms, i) for i in range(args.reps)]
        )
    else:
        rows = pd.DataFrame(
            replicate(
                lambda _i, g: one(w, design, args.working_model, args.terms, g),
                args.reps,
                rng=args.seed,
            )
        )
    if args.out:
        rows.to_csv(args.out, index=False)
    where = (
        "referee L (rings) null"
        if args.referee_l
        else "referee I null"
        if args.referee_i
        else f"referee H ({args.referee_h}) null"
        if args.referee_h
        else f"{args.world}"
    )
    for term in args.terms:
        t, df, exact = rows[f"{term}_t"], rows[f"{term}_df"], rows[f"{term}_exact"]
        a, bm = t.abs(), stats.t.ppf(0.975, df)
        tg = stats.t.ppf(0.975, rows[f"{term}_G"] - 1)
        print(
            f"{term}, {where} world{' (working model)' if args.working_model else ''}: "
            f"BM df median {df.median():.2f}, critical value median t(BM df) "
            f"{np.median(bm):.2f} / exact {exact.median():.2f}; coverage of 95% intervals "
            f"t(BM df) {(a <= bm).mean():.3f}, exact {(a <= exact).mean():.3f}, "
            f"t(G-1) {(a <= tg).mean():.3f}, normal {(a <= stats.norm.ppf(0.975)).mean():.3f}; "
            f"SD of t {t.std():.3f}, excess kurtosis {stats.kurtosis(t):.2f}"
        )
        if args.omega:
            om, dfo = rows[f"{term}_exact_omega"], rows[f"{term}_df_omega"]
            print(
                f"  estimated working model: df median {dfo.median():.2f}, exact critical "
                f"value median {om.median():.3f}; rejection at 5% exact {(a > om).mean():.3f}, "
                f"t(df) {(a > stats.t.ppf(0.975, dfo)).mean():.3f}"
            )
    print(f"{args.reps} replications, seed {args.seed}, design changes {args.design}")


if __name__ == "__main__":
    main()
