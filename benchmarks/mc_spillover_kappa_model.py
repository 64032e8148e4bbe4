"""Would dividing the spillover variance by its expected excess under an estimated working
model calibrate the default? (session 20; ``benchmarks/RESULTS.md``).

Under a working model ``Omega`` for the errors, the CR2 variance of a term, ``sum_g
(c_g'y)^2`` with ``C`` its Bell-McCaffrey vectors (:func:`zoneimpact.estimators._bjs.bm_parts`),
has expectation ``tr(C' Omega C)`` while the estimate's variance is ``omega' Omega omega``
(``omega`` its weights on the outcomes), so ``kappa = tr(C' Omega C) / omega' Omega omega``
is the variance estimator's excess (Pustejovsky & Tipton 2018, JBES, Section 3, build CR2 to
make it 1 under a chosen working model). Session 11 measured ``kappa`` under independent
errors; here ``Omega`` adds the region-year AR(1) shocks of
``mc_spillover_working_model.shock_model``, estimated from the direct piece's clean step-1
residuals. For each null world this records each term's t statistic, the default df, the
df under the estimated model and both kappas, and the summary gives the rejection rate at
5% of the default and of ``t x sqrt(kappa)`` (the SE divided by ``sqrt(kappa)``) against
the default df, the model's df, t(G - 1) and the normal.

Experiment, not a feature: it reads private fit internals (``fitted.fits[...].rescore``).

Run:  python benchmarks/mc_spillover_kappa_model.py [--reps 300] [--seed 0]
      [--designs refu main no_shocks short_panel] [--world null]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "referee_unbalanced"))

import dgp as referee_u  # noqa: E402
from mc_spillover import DESIGN, WORLDS, truths  # noqa: E402
from mc_spillover_working_model import shock_gram as quad  # noqa: E402
from mc_spillover_working_model import shock_model  # noqa: E402

from zoneimpact.estimators import _bjs  # noqa: E402
from zoneimpact.estimators import spillover as sp  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.simulate import simulate  # noqa: E402

VARIANTS = {
    "main": {},
    "no_shocks": dict(region_shock_sd=0.0, covariate_trend=0.0),
    "short_panel": dict(first_year=2000, last_year=2014, waves={2004: 0.4, 2008: 0.3, 2011: 0.3}),
}
N_CLUSTERS = {"refu": 24}  # the simulator's designs have DESIGN["n_regions"]


def analyse(res: sp.SpilloverResult, truth: dict[str, float]) -> list[dict[str, Any]]:
    """Each of direct, spillover and net: t statistic, df, kappas (module docstring)."""
    fits = res.fitted.fits
    region = res.fitted.panel.geography["region"]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cl = time = y = model = None
    for name, f in fits.items():
        sc = getattr(f, "rescore", None)
        if sc is None or f.n == 0:
            continue
        fit = _bjs.refactored(sc.fit)
        codes = region.reindex(res.fitted.units).to_numpy()[sc.unit_row]
        if cl is None:
            cl = np.unique(codes, return_inverse=True)[1]
            time, y = np.asarray(sc.long.time), np.asarray(sc.long.y)
        n_cl = int(cl.max()) + 1
        w = sc.w[:, 0]
        cells = sc.cells_for(cl[fit.target])
        C = _bjs.bm_vectors(fit, _bjs.bm_parts(fit, w, cells, cl, n_cl, scale=sc.scale), len(y))
        omega = np.zeros(len(y))
        omega[fit.clean] = _bjs.implied_weights(fit, sc.w)[:, 0]
        omega[fit.target] = w
        parts[name] = (C, omega)
        if name == "direct":
            model = shock_model(cl, time, fit)
    terms = res.terms.set_index("term")
    rows = []
    for name, weights in sp._term_weights(fits):
        if name not in ("direct", "spillover", "net") or weights is None:
            continue
        if any(k not in parts for k in weights):
            continue
        C = sum(v * parts[k][0] for k, v in weights.items())
        omega = sum(v * parts[k][1] for k, v in weights.items())
        se = terms.loc[name, "se"]
        M = quad(C, cl, time, model)
        rows.append(
            {
                "term": name,
                "t": (terms.loc[name, "estimate"] - truth[name]) / se,
                # the vectors reproduce the reported SE (1 to rounding)
                "se_check": np.sqrt(np.sum((C.T @ y) ** 2)) / se,
                "df": terms.loc[name, "df"],
                "df_model": _bjs.gram_df(M),
                "kappa_iid": np.trace(C.T @ C) / (omega @ omega),
                "kappa_model": np.trace(M) / quad(omega[:, None], cl, time, model)[0, 0],
            }
        )
    return rows


def world(design: str, world_name: str, seed: int) -> tuple[sp.SpilloverResult, dict]:
    if design == "refu":
        fr, geo, tr = referee_u.simulate(
            seed, "full", "noeffect" if world_name == "null" else "share"
        )
        panel = Panel.from_frame(
            fr, unit="unit", time="year", outcomes="y", cohort="cohort", covariates=["x"],
            geography=geo,
        )  # fmt: skip
        res = sp.fit(
            panel, outcome="y", covariates=["x"], exposure="rings", rings_km=[(0, 50)],
            n_boot=0, rng=seed,
        )  # fmt: skip
        pc = res.pieces.set_index("piece")
        nd, ns = (
            pc.loc["direct", "n_target_unit_periods"],
            pc.loc["spillover:0-50km", "n_target_unit_periods"],
        )
        nz = (
            pc.loc["spillover_on_zones", "n_target_unit_periods"]
            if "spillover_on_zones" in pc.index
            else 0
        )
        td, s = tr["tau_d"], tr["s"]
        return res, {"direct": td, "spillover": s, "net": td * nd + s * (ns + nz)}
    g = np.random.default_rng(seed)
    sim = simulate(rng=g, **{**DESIGN, **VARIANTS[design]}, **WORLDS[world_name])
    return sp.fit(sim.panel, outcome="fdi", rng=g, covariates=["x"], n_boot=0), truths(sim)


def summarise(d: pd.DataFrame) -> pd.DataFrame:
    def rej(t: np.ndarray, df: Any) -> float:
        return float(np.mean(np.abs(t) > stats.t.ppf(0.975, df)))

    rows = []
    for (design, term), g in d.groupby(["design", "term"], sort=False):
        t, df = g["t"].to_numpy(), g["df"].to_numpy()
        tc = t * np.sqrt(g["kappa_model"].to_numpy())
        rows.append(
            {
                "design": design, "term": term, "n": len(g),
                "kappa_iid": g["kappa_iid"].median(), "kappa_model": g["kappa_model"].median(),
                "df": np.median(df), "df_model": g["df_model"].median(),
                "sd_t": np.std(t), "sd_t_corrected": np.std(tc),
                "default": rej(t, df), "corr_df": rej(tc, df),
                "corr_df_model": rej(tc, g["df_model"].to_numpy()),
                "corr_tG1": rej(tc, N_CLUSTERS.get(design, DESIGN["n_regions"]) - 1),
                "corr_normal": float(np.mean(np.abs(tc) > stats.norm.ppf(0.975))),
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--designs", nargs="+", default=["refu", *VARIANTS])
    ap.add_argument("--world", default="null")
    ap.add_argument("--out", default=None, help="CSV of the per-world rows")
    args = ap.parse_args()
    recs = []
    for design in args.designs:
        for seed in range(args.seed, args.seed + args.reps):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res, truth = world(design, args.world, seed)
            recs += [{"design": design, "seed": seed, **r} for r in analyse(res, truth)]
    d = pd.DataFrame(recs)
    if args.out:
        d.to_csv(args.out, index=False)
    print(f"max |se_check - 1| = {np.abs(d['se_check'] - 1).max():.1e}")
    print(summarise(d).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
