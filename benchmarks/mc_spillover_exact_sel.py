"""Selection-aware exact reference for the adaptive tau~ model (referee L's null worlds).

Per world (seeds as mc_spillover_exact_t.one_l: default_rng([2024, 4, rep]), fit_world
default, i.e. aux_partition="onset_event_adaptive"):
  * per spillover ring piece p and candidate model k (rescore.candidates + cell means):
    Bell-McCaffrey vectors C_pk on the long table, implied weights a_p;
  * B draws of (a_p'u, C_pk'u) jointly Gaussian with covariance Gram([a, C...]) (u ~ N(0, I));
    per draw per piece the model with smallest ||C_pk'u||^2 (first on a tie), the term's
    t = sum_p w_p a_p'u / ||sum_p w_p C_{p,k*}'u||; selection-aware critical value = 95%
    quantile of |t|;  also the fixed-chosen-model simulated quantile (check vs Imhof).
  * the existing non-selection exact value (exact_row_long) and the fit's t, df.

Session 48 (a helper; RESULTS.md, "Session 48"). Run:
  python benchmarks/mc_spillover_exact_sel.py --start 0 --reps 1000 --out sel.csv [--check] [--B 4000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
import warnings

# the benchmarks folder (mc_spillover_exact_t) and referee L's world
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(BENCH, "referee_l"))

import mc_spillover_exact_t as ex
import numpy as np
import pandas as pd
import world as l_world
from scipy import stats

from zoneimpact.estimators import _bjs, spillover
from zoneimpact.parallel import set_progress

TERMS = ["spillover", "spillover:0-30km", "spillover:30-80km"]
_DES = None


def fit_world(rep: int):
    global _DES
    if _DES is None:
        _DES = l_world.make_design(variant="rings")
    rng = np.random.default_rng([2024, 4, rep])
    y = l_world.simulate(_DES, 0.0, rng, null=True)
    f, g = l_world.to_frames(_DES, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return l_world.fit_world(_DES, f, g, rng=rep)


def piece_vectors(r, piece: str):
    """a_p (long), [(name, C_pk long)] over the candidates, the chosen index."""
    fits = r.fitted.fits
    sc = fits[piece].rescore
    n_rows = len(sc.unit_row)
    region = r.fitted.panel.geography["region"].reindex(r.fitted.units).to_numpy()
    cluster = np.unique(region[sc.unit_row], return_inverse=True)[1]
    G = int(cluster.max()) + 1
    fit = _bjs.refactored(sc.fit)
    cells = sc.cells_for(cluster[fit.target])
    parts = _bjs.cr2_parts(fit, cluster[fit.clean])
    a = np.zeros(n_rows)
    a[fit.clean] = _bjs.implied_weights(fit, sc.w)[:, 0]
    a[fit.target] = sc.w[:, 0]
    models = [*sc.candidates, ("cell means", None)]
    Cs = []
    for name, scale in models:
        C0, C1 = _bjs.bm_parts(
            fit, sc.w[:, 0], cells, cluster, G, scale=scale, row_weight=sc.row_weight, cr2=parts
        )
        Cs.append((name, _bjs.bm_vectors(fit, (C0, C1), n_rows)))
    names = [m[0] for m in models]
    chosen = names.index(sc.model)
    # the chosen scale is the same array as the candidate's
    if sc.scale is None:
        assert models[chosen][1] is None
    else:
        assert np.array_equal(sc.scale, models[chosen][1])
    return a, Cs, chosen, sc, G


def world_row(rep: int, B: int, check: bool) -> dict:
    t0 = time.time()
    r = fit_world(rep)
    t_fit = time.time() - t0
    fits = r.fitted.fits
    weights = dict(spillover._term_weights(fits))
    pieces = list(weights["spillover"])
    tab = r.terms.set_index("term")
    out: dict = {"rep": rep}
    vec = {p: piece_vectors(r, p) for p in pieces}
    y = fits[pieces[0]].rescore.long.y
    K = {p: len(vec[p][1]) for p in pieces}
    G = vec[pieces[0]][4]
    for p in pieces:
        out[f"{p}_model"] = vec[p][3].model
        out[f"{p}_K"] = K[p]
    # --- wiring checks on the data
    if check:
        for p in pieces:
            a, Cs, k, sc, _ = vec[p]
            row = tab.loc[p]
            v = [float(np.sum((C.T @ y) ** 2)) for _, C in Cs]
            out[f"{p}_chk_est"] = float(a @ y) - row["estimate"]
            out[f"{p}_chk_se"] = np.sqrt(v[k]) / row["se"] - 1
            out[f"{p}_chk_df"] = _bjs.satterthwaite_df(Cs[k][1]) - row["df"]
            out[f"{p}_chk_argmin"] = int(np.argmin(v)) - k  # the rule reproduced on y
            out[f"{p}_chk_vars"] = ";".join(f"{x:.6g}" for x in v)
        w = weights["spillover"]
        a = sum(w[p] * vec[p][0] for p in pieces)
        C = sum(w[p] * vec[p][1][vec[p][2]][1] for p in pieces)
        row = tab.loc["spillover"]
        out["spillover_chk_est"] = float(a @ y) - row["estimate"]
        out["spillover_chk_se"] = np.sqrt(np.sum((C.T @ y) ** 2)) / row["se"] - 1
        out["spillover_chk_df"] = _bjs.satterthwaite_df(C) - row["df"]
    # --- the existing exact (non-selection) values, fit's t and df
    t1 = time.time()
    for term in TERMS:
        e = ex.exact_row_long(r, term, 0.0, False)
        out[f"{term}_t"] = e[f"{term}_t"]
        out[f"{term}_df"] = e[f"{term}_df"]
        out[f"{term}_G"] = e[f"{term}_G"]
        out[f"{term}_exact"] = e[f"{term}_exact"]
        out[f"{term}_bm"] = stats.t.ppf(0.975, e[f"{term}_df"])
    t_exact = time.time() - t1
    # --- simulation: X = [a_1, a_2, C_1k..., C_2k...]
    t2 = time.time()
    cols = []
    for p in pieces:
        cols.append(vec[p][0][:, None])
        cols += [C for _, C in vec[p][1]]
    X = np.hstack(cols)
    off, j = {}, 0
    for p in pieces:
        off[(p, "a")] = j
        j += 1
        for k in range(K[p]):
            off[(p, k)] = slice(j, j + G)
            j += G
    assert j == X.shape[1]
    used = (X != 0).any(axis=1)
    Xu = X[used]
    gram = Xu.T @ Xu
    ev, V = np.linalg.eigh((gram + gram.T) / 2)
    ev = np.clip(ev, 0, None)
    L = V * np.sqrt(ev)  # cov = L L'
    g = np.random.default_rng([99, rep])
    Z = g.standard_normal((B, X.shape[1])) @ L.T  # B x cols, rows ~ N(0, gram)
    if check:
        # same via u directly on the used rows (small check of the Gram route)
        U = g.standard_normal((min(B, 2000), Xu.shape[0]))
        Zu = U @ Xu
    err, s_sel, s_fix, nsel = {}, {}, {}, {}
    for p in pieces:
        ea = Z[:, off[(p, "a")]]
        S = np.stack([Z[:, off[(p, k)]] for k in range(K[p])], axis=1)  # B x K x G
        v = np.sum(S**2, axis=2)  # B x K
        kstar = np.argmin(v, axis=1)  # first on a tie
        err[p] = ea
        s_sel[p] = S[np.arange(B), kstar]
        s_fix[p] = S[:, vec[p][2]]
        nsel[p] = np.bincount(kstar, minlength=K[p]) / B
        out[f"{p}_selshare"] = ";".join(f"{x:.3f}" for x in nsel[p])
    for term in TERMS:
        w = weights[term]
        e = sum(w[p] * err[p] for p in w)
        ss = sum(w[p] * s_sel[p] for p in w)
        sf = sum(w[p] * s_fix[p] for p in w)
        tsel = np.abs(e) / np.sqrt(np.sum(ss**2, axis=1))
        tfix = np.abs(e) / np.sqrt(np.sum(sf**2, axis=1))
        out[f"{term}_sel"] = float(np.quantile(tsel, 0.95))
        out[f"{term}_simfix"] = float(np.quantile(tfix, 0.95))
        if check:
            eu = sum(w[p] * Zu[:, off[(p, "a")]] for p in w)
            # fixed chosen model via u directly
            su = sum(w[p] * Zu[:, off[(p, vec[p][2])]] for p in w)
            out[f"{term}_simfix_u"] = float(
                np.quantile(np.abs(eu) / np.sqrt(np.sum(su**2, 1)), 0.95)
            )
    t_sim = time.time() - t2
    out.update(
        t_fit=t_fit,
        t_exact=t_exact,
        t_sim=t_sim,
        t_world=time.time() - t0,
        n_used=int(used.sum()),
        n_cols=X.shape[1],
    )
    return out


def summary(rows: pd.DataFrame) -> None:
    z = stats.norm.ppf(0.975)
    print(
        f"{len(rows)} worlds (rep {int(rows.rep.min())}-{int(rows.rep.max())}); "
        f"time per world {rows.t_world.mean():.2f}s (fit {rows.t_fit.mean():.2f}, "
        f"Imhof {rows.t_exact.mean():.2f}, sim {rows.t_sim.mean():.2f})"
    )
    for term in TERMS:
        a = rows[f"{term}_t"].abs()
        n = len(a)
        rej = {
            k: (a > rows[f"{term}_{c}"]).mean()
            for k, c in [
                ("t(BM df)", "bm"),
                ("exact", "exact"),
                ("sel-aware", "sel"),
                ("sim-fixed", "simfix"),
            ]
        }
        rej["normal"] = (a > z).mean()

        def se(p: float, n: int = n) -> float:
            return float(np.sqrt(p * (1 - p) / n))

        print(
            f"{term}: SD t {rows[f'{term}_t'].std():.3f}; df median {rows[f'{term}_df'].median():.2f}; "
            "median crit BM {:.3f} exact {:.3f} sel {:.3f} simfix {:.3f}".format(
                rows[f"{term}_bm"].median(),
                rows[f"{term}_exact"].median(),
                rows[f"{term}_sel"].median(),
                rows[f"{term}_simfix"].median(),
            )
        )
        print(
            "   rejection: "
            + ", ".join(f"{k} {100 * v:.1f}% (±{100 * se(v):.1f})" for k, v in rej.items())
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--B", type=int, default=4000)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    set_progress(False)
    recs, t0 = [], time.time()
    for i in range(args.start, args.start + args.reps):
        recs.append(world_row(i, args.B, args.check))
        if args.out and len(recs) % 25 == 0:
            pd.DataFrame(recs).to_csv(args.out, index=False)
            print(f"{len(recs)} worlds, {time.time() - t0:.0f}s", flush=True)
    rows = pd.DataFrame(recs)
    if args.out:
        rows.to_csv(args.out, index=False)
    if args.check:
        with pd.option_context(
            "display.width", 250, "display.max_columns", 80, "display.max_colwidth", 80
        ):
            print(rows.filter(regex="chk|model|selshare|simfix|exact|_sel$|_K$").T)
    summary(rows)


if __name__ == "__main__":
    main()
