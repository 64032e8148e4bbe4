"""Would a working model with regional shocks give the spillover t statistics better df?

The default's Bell-McCaffrey degrees of freedom assume independent homoskedastic errors
(``_bjs.satterthwaite_df``), while the outcomes carry region-by-year shocks. Imbens &
Kolesar (2016, Section 6) suggest estimating a working model with a cluster random effect
from the residuals and taking the Satterthwaite df under it. In a panel with unit effects a
cluster-constant effect is absorbed, so the model here is the panel analogue: errors
``u = e + v``, ``e`` independent with variance ``s_e``, ``v_rt`` a region-year shock with
autocovariance ``s_v phi^|t - s|`` within a region, independent across regions. ``s_e``
is the pooled within-region-year variance of the direct piece's clean step-1 residuals,
``s_v`` their region-year means' variance less ``s_e / n_rt``, ``phi`` the means' lag-1
autocorrelation (clipped to [0, 0.95]). The df of ``sum_g (c_g'u)^2`` are then
``tr(M)^2 / ||M||_F^2`` with ``M = s_e C'C + sum_r S_r' Gamma S_r`` (``S_r`` the vectors'
sums over each region-year of region ``r``).

This is an experiment, not a feature: it reaches the pieces' vectors by wrapping two
private functions of ``zoneimpact.estimators.spillover`` (``_imputation_score`` and
``_linear_terms``), so it follows the code it was run with (``benchmarks/RESULTS.md``,
session 19). For each null world it records each term's t statistic and three df: the
default's, model A (``phi = 0``) and model B (``phi`` estimated), and reports the rejection
rate at 5% under each and under t(G - 1).

Run:  python benchmarks/mc_spillover_working_model.py [--reps 300]
      [--worlds main regions15 G8_rings G12_rings] [--seed 5000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mc_referee_few_clusters as referee  # noqa: E402
from mc_spillover import WORLDS, design_from, truths  # noqa: E402

from zoneimpact.estimators import _bjs  # noqa: E402
from zoneimpact.estimators import spillover as sp  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.simulate import simulate  # noqa: E402

TERMS = ("direct", "spillover", "net")
REGIONS15 = ["n_regions=15", "n_units=240", "radius_km=250", "waves={2003: 0.5, 2011: 0.5}"]
_seen: dict[str, Any] = {}
_alt: dict[str, Any] = {}
_score, _terms = sp._imputation_score, sp._linear_terms


def shock_model(cluster: np.ndarray, time: np.ndarray, fit: _bjs.Imputed) -> tuple[float, ...]:
    """``(s_e, s_v, phi)`` from the clean step-1 residuals (module docstring)."""
    r, cl, tt = fit.resid0, cluster[fit.clean], time[fit.clean]
    n = np.zeros((cluster.max() + 1, time.max() + 1))
    s = np.zeros_like(n)
    np.add.at(n, (cl, tt), 1.0)
    np.add.at(s, (cl, tt), r)
    ok = n > 0
    m = np.where(ok, s / np.maximum(n, 1.0), 0.0)
    s_e = float(np.sum((r - m[cl, tt]) ** 2) / max(len(r) - ok.sum(), 1))
    s_v = max(float(np.mean(m[ok] ** 2 - s_e / n[ok])), 0.0)
    both = ok[:, 1:] & ok[:, :-1]
    lag1 = float(np.mean((m[:, 1:] * m[:, :-1])[both])) if both.any() else 0.0
    phi = float(np.clip(lag1 / s_v, 0.0, 0.95)) if s_v > 0 else 0.0
    return s_e, s_v, phi


def shock_gram(C: np.ndarray, cluster: np.ndarray, time: np.ndarray, model: tuple) -> np.ndarray:
    """``C' Omega C`` under the shock model (``Omega``: independent errors plus region-year
    shocks with autocovariance ``s_v phi^|t - s|`` within a region)."""
    s_e, s_v, phi = model
    n_t = time.max() + 1
    M = s_e * (C.T @ C)
    S = np.zeros((cluster.max() + 1, n_t, C.shape[1]))
    np.add.at(S, (cluster, time), C)
    gamma = s_v * phi ** np.abs(np.subtract.outer(np.arange(n_t), np.arange(n_t)))
    for block in S:
        M += block.T @ gamma @ block
    return M


def model_df(C: np.ndarray, cluster: np.ndarray, time: np.ndarray, model: tuple) -> float:
    """Satterthwaite df of ``sum_g (c_g'u)^2`` under the shock model."""
    return _bjs.gram_df(shock_gram(C, cluster, time, model))


def _recording_score(s, cluster, n_clusters, cr2, name="", near=None):  # type: ignore[no-untyped-def]
    if name != "net_region_did":  # the region check has its own long table
        _seen.update(cluster=cluster, time=s.long.time)
    if name == "direct":
        _seen["fit"] = s.fit
    return _score(s, cluster, n_clusters, cr2, name, near)


def _recording_terms(fits, region, root=None):  # type: ignore[no-untyped-def]
    out = _terms(fits, region, root)
    cluster, time = _seen["cluster"], _seen["time"]
    model = shock_model(cluster, time, _seen["fit"])
    _alt.clear()
    _alt["model"] = model
    for name, weights in sp._term_weights(fits):
        if weights is None or any(fits[k].bm is None for k in weights):
            continue
        C = sum(w * fits[k].bm for k, w in weights.items())
        _alt[name] = (
            model_df(C, cluster, time, (model[0], model[1], 0.0)),
            model_df(C, cluster, time, model),
        )
    return out


def _fit(panel: Panel, **kw: Any) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sp.fit(panel, covariates=["x"], n_boot=0, **kw).terms.set_index("term")


def one(world: str, seed: int) -> dict[str, float]:
    """A null world's t statistics and df (default, model A, model B)."""
    rng = np.random.default_rng(seed)
    if world in ("main", "regions15"):
        design = design_from(REGIONS15 if world == "regions15" else [])
        sim = simulate(rng=rng, **design, **WORLDS["null"])
        terms, truth = _fit(sim.panel, outcome="fdi", rng=rng), truths(sim)
    else:
        cfg = referee.CONFIGS[world]
        df, geo, _ = referee.draw_world(rng, G=cfg["G"], exposure=cfg["exposure"], null=True)
        panel = Panel.from_frame(
            df,
            unit="unit",
            time="year",
            cohort="first_zone",
            outcomes=["y"],
            covariates=["x"],
            geography=geo,
        )
        kw = dict(exposure="rings", rings_km=[(0, 60)])
        terms, truth = _fit(panel, outcome="y", rng=seed, **kw), dict.fromkeys(TERMS, 0.0)
    rec = dict(zip(("s_e", "s_v", "phi"), _alt["model"], strict=True))
    for q in TERMS:
        rec[f"{q}_t"] = (terms.loc[q, "estimate"] - truth[q]) / terms.loc[q, "se"]
        rec[f"{q}_default"] = terms.loc[q, "df"]
        rec[f"{q}_A"], rec[f"{q}_B"] = _alt.get(q, (np.nan, np.nan))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--worlds", nargs="+", default=["main", "regions15", "G8_rings", "G12_rings"])
    ap.add_argument("--seed", type=int, default=5000, help="replication i has seed + i")
    args = ap.parse_args()
    sp._imputation_score, sp._linear_terms = _recording_score, _recording_terms
    recs = []
    for world in args.worlds:
        rows = pd.DataFrame([one(world, args.seed + i) for i in range(args.reps)])
        G = {"main": 30, "regions15": 15, "G8_rings": 8, "G12_rings": 12}[world]
        for q in TERMS:
            t = rows[f"{q}_t"].abs()
            rec: dict[str, Any] = {"world": world, "term": q}
            for k in ("default", "A", "B"):
                df = rows[f"{q}_{k}"]
                rec[f"df {k}"] = df.median()
                rec[f"reject {k}"] = (t > stats.t.ppf(0.975, df)).mean()
            rec["reject t(G-1)"] = (t > stats.t.ppf(0.975, G - 1)).mean()
            rec["phi"], rec["s_v/s_e"] = rows["phi"].median(), (rows["s_v"] / rows["s_e"]).median()
            recs.append(rec)
        print(f"{world} done", flush=True)
    pd.set_option("display.width", 200)
    print(pd.DataFrame(recs).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{args.reps} null worlds each, seed {args.seed}")


if __name__ == "__main__":
    main()
