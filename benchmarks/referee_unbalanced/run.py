"""Referee U: the spillover decomposition on unbalanced panels (session 19).

Written by a helper from the issue's words, without reading zoneimpact.simulate or the other
Monte Carlo scripts (``dgp.py``: 24 regions, 300 units, 2000-2020, zones in three waves
driven by x, region-year AR(1) shocks; variants a = 15% of outcomes missing at random,
b = late entry and early exit, c = missingness rising in x, full = balanced). Results and
what they showed: ``benchmarks/RESULTS.md``, session 19.

Run:  python run.py OUTPREFIX SEED0 SEED1 [a,b,c,full] [noeffect,share]
      python analyse.py OUTPREFIX [truth_targets|truth_observed]
(``AUX=onset_event`` or ``FITKW='{"small_sample": "none"}'`` change the fit.)
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from dgp import simulate

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

EXTRA = {"aux_partition": os.environ["AUX"]} if os.environ.get("AUX") else {}
EXTRA.update(json.loads(os.environ.get("FITKW", "{}")))
TERMS = [
    "direct",
    "spillover",
    "direct_total",
    "spillover_total",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "net_per_treated",
    "naive",
    "net_region_did",
]


def own_identifiable(flags, geo_onset=None):
    """My own count of identifiable targets per piece (own observed clean pre-row)."""
    f = flags.copy()
    f["ob"] = f.present & f.obs
    return f


def my_counts(fr, tr):
    f = tr["_frame_flags"].copy()
    f["ob"] = f.present & f.obs
    # clean (untreated, unexposed) observed rows per unit
    clean = f.ob & ~f.direct & ~f.spill & ~f.soz
    has_clean = clean.groupby(f.unit).transform("any")
    out = {}
    for name, m in (("direct", f.direct), ("spill", f.spill), ("soz", f.soz)):
        out[f"my_obs_{name}"] = int((m & f.ob).sum())
        out[f"my_ident_{name}"] = int((m & f.ob & has_clean).sum())
    return out


def fit_one(seed, variant, world):
    fr, geo, tr = simulate(seed, variant, world)
    fr_copy = fr.copy()
    rec = {
        "variant": variant,
        "world": world,
        "seed": seed,
        "s": tr["s"],
        "tau_d": tr["tau_d"],
        "n_rows": len(fr),
        "n_y_obs": int(fr.y.notna().sum()),
        "n_zone_units": tr["n_zone_units"],
        "n_exposed_units": tr["n_exposed_units"],
    }
    rec.update(my_counts(fr, tr))
    warns, rows, err = [], [], None
    t0 = time.time()
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p = Panel.from_frame(
                fr,
                unit="unit",
                time="year",
                outcomes="y",
                cohort="cohort",
                covariates=["x"],
                geography=geo,
            )
            r = spillover.fit(
                p,
                outcome="y",
                covariates=["x"],
                exposure="rings",
                rings_km=[(0, 50)],
                n_boot=999,
                rng=seed,
                **EXTRA,
            )
        warns = [f"{x.category.__name__}: {x.message}" for x in w]
    except Exception as e:  # noqa
        err = f"{type(e).__name__}: {e}"
        return rec, [], [], err
    rec["fit_sec"] = time.time() - t0
    rec["frame_modified"] = not fr.equals(fr_copy)
    pc = r.pieces.set_index("piece")
    for name, key in (
        ("direct", "direct"),
        ("spill", "spillover:0-50km"),
        ("soz", "spillover_on_zones"),
    ):
        if key in pc.index:
            rec[f"pk_target_{name}"] = int(pc.loc[key, "n_target_unit_periods"])
            rec[f"pk_unident_{name}"] = int(pc.loc[key, "n_unidentified"])
            rec[f"pk_leftout_{name}"] = str(pc.loc[key, "left_out_periods"])
        else:
            rec[f"pk_target_{name}"] = 0
            rec[f"pk_unident_{name}"] = 0
    # truths on the estimator's own targets (constant effects)
    td, s = tr["tau_d"], tr["s"]
    nd, ns, nz = rec["pk_target_direct"], rec["pk_target_spill"], rec["pk_target_soz"]
    T_est = {
        "direct": td,
        "spillover": s,
        "spillover_on_zones": s,
        "direct_total": td * nd,
        "spillover_total": s * ns,
        "spillover_on_zones_total": s * nz,
        "net": td * nd + s * (ns + nz),
        "net_per_treated": (td * nd + s * (ns + nz)) / nd if nd else np.nan,
        "displacement_share": (-s * (ns + nz) / (td * nd)) if td else 0.0,
        "naive": td,
    }
    nd2, ns2, nz2 = rec["my_obs_direct"], rec["my_obs_spill"], rec["my_obs_soz"]
    T_obs = {
        "direct": td,
        "spillover": s,
        "spillover_on_zones": s,
        "direct_total": td * nd2,
        "spillover_total": s * ns2,
        "spillover_on_zones_total": s * nz2,
        "net": td * nd2 + s * (ns2 + nz2),
        "net_per_treated": (td * nd2 + s * (ns2 + nz2)) / nd2,
        "displacement_share": (-s * (ns2 + nz2) / (td * nd2)) if td else 0.0,
        "naive": td,
    }
    tid = r.tidy().set_index("term")
    terms = r.terms.set_index("term")
    for term in TERMS:
        if term not in tid.index:
            continue
        rows.append(
            {
                **{k: rec[k] for k in ("variant", "world", "seed")},
                "term": term,
                "estimate": tid.loc[term, "estimate"],
                "se": tid.loc[term, "std_error"],
                "df": terms.loc[term, "df"] if "df" in terms else np.nan,
                "ci_low": tid.loc[term, "conf_low"],
                "ci_high": tid.loc[term, "conf_high"],
                "p_value": tid.loc[term, "p_value"],
                "truth_targets": T_est.get(term, np.nan),
                "truth_observed": T_obs.get(term, np.nan),
            }
        )
    return rec, rows, warns, err


def main():
    out, s0, s1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    variants = sys.argv[4].split(",") if len(sys.argv) > 4 else ["a", "b", "c"]
    worlds = sys.argv[5].split(",") if len(sys.argv) > 5 else ["noeffect", "share"]
    recs, allrows, wrows, errs = [], [], [], []
    t0 = time.time()
    for v in variants:
        for wd in worlds:
            for seed in range(s0, s1):
                rec, rows, warns, err = fit_one(seed, v, wd)
                recs.append(rec)
                allrows += rows
                for x in warns:
                    wrows.append({"variant": v, "world": wd, "seed": seed, "warning": x})
                if err:
                    errs.append({"variant": v, "world": wd, "seed": seed, "error": err})
            print(v, wd, "done", round(time.time() - t0, 1), flush=True)
            pd.DataFrame(allrows).to_csv(out + "_terms.csv", index=False)
            pd.DataFrame(recs).to_csv(out + "_reps.csv", index=False)
            pd.DataFrame(wrows, columns=["variant", "world", "seed", "warning"]).to_csv(
                out + "_warnings.csv", index=False
            )
            pd.DataFrame(errs, columns=["variant", "world", "seed", "error"]).to_csv(
                out + "_errors.csv", index=False
            )


if __name__ == "__main__":
    main()
