"""Referee I: Monte Carlo driver for zoneimpact.estimators.spillover.fit on an own zone world.

A helper wrote the world (``world.py``) and this driver in session 45 from a brief and the
public docstrings, without reading ``zoneimpact.simulate``, the other benchmarks or the
tests (RESULTS.md, session 45): 400 cities in 20 regions of 6-40, covariate-driven zones in
five waves 2000-2014, a sqrt(t) x x trend, AR(1) region shocks, t(5) noise, zone gains drawn
per zone around 35 with a ramp, and displacement of share s from non-zone cities within
40 km weighted by 1 / (d + 5). Truths are realised (the drawn gains) and population (every
gain at its mean), on the fit's own target unit-periods. Raw CSVs and summaries go to
``--outdir`` (default ``zoneimpact_referee_i`` in the temp directory); ``analyse.py`` pools
them. Session 45 ran ``--reps 200 --seed 2`` (every world; 400 null), the same at ``--seed 1
--crn --prefix crn_`` (the four share worlds then share their noise, so only its null counts
as more evidence) and ``--worlds null --null-reps 800 --seed 3 --prefix seed3_``.

Usage:
  python mc_referee_i.py --check noiseless --reps 20
  python mc_referee_i.py --worlds s1,s0.5,s0,s-0.5 --reps 200 --seed 1
  python mc_referee_i.py --worlds null --reps 400 --seed 1
  python mc_referee_i.py --check invariance --seed 1
  python mc_referee_i.py --check summary            (tables from the raw CSVs)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import pandas as pd
from world import YEARS, simulate

# raw CSVs and summaries: --outdir (default a folder in the temp directory), set in main
DEFAULT_OUT = os.path.join(tempfile.gettempdir(), "zoneimpact_referee_i")
OUT = DEFAULT_OUT
WORLDS = {
    "s1": (1.0, False),
    "s0.5": (0.5, False),
    "s0": (0.0, False),
    "s-0.5": (-0.5, False),
    "null": (0.0, True),
}
QUANT = ["direct", "spillover", "net", "displacement_share"]
EXTRA = ["direct_total", "spillover_total", "spillover_on_zones", "spillover_on_zones_total"]


def template(msg: str) -> str:
    msg = str(msg).splitlines()[0] if str(msg) else ""
    msg = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", msg)
    return msg[:220]


def build_panel(w, frame=None):
    from zoneimpact.panel import Panel

    frame = w["frame"] if frame is None else frame
    geo = w["geo"]
    return Panel.from_frame(
        frame,
        unit="city",
        time="year",
        outcomes="y",
        cohort="zone_year",
        covariates=["x"],
        geography=geo,
    )


def do_fit(panel, seed):
    from zoneimpact.estimators import spillover

    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = spillover.fit(
            panel, outcome="y", exposure="rings", rings_km=[(0, 40)], covariates=["x"], rng=seed
        )
        dt = time.perf_counter() - t0
    return res, dt, [f"{x.category.__name__}: {template(x.message)}" for x in ws]


def target_masks(res, units_order):
    """Target masks (units x years) rebuilt from the fit's exposure table and the
    documented rules; periods in `left_out_periods` removed."""
    tab = res.exposure.table.reindex(units_order)
    coh = tab["cohort"].to_numpy(float)[:, None]
    ons = tab["exposure_onset"].to_numpy(float)[:, None]
    role = tab["role"].to_numpy()[:, None]
    t = YEARS[None, :].astype(float)
    direct = (role == "direct") & (t >= coh)
    ring = (role == "exposed") & (t >= ons)
    soz = (role == "direct") & (ons < coh) & (t >= ons) & (t < coh)
    pcs = res.pieces.set_index("piece")
    masks = {"direct": direct, "spillover:0-40km": ring, "spillover_on_zones": soz}
    for name, m in masks.items():
        if name in pcs.index:
            lo = str(pcs.loc[name, "left_out_periods"] or "")
            for yr in re.findall(r"\b(19\d\d|20\d\d)\b", lo):
                m[:, YEARS == int(yr)] = False
    return masks


def truths(eff, masks):
    d = eff[masks["direct"]]
    r = eff[masks["spillover:0-40km"]]
    z = eff[masks["spillover_on_zones"]]
    dt, rt, zt = d.sum(), r.sum(), z.sum()
    net = dt + rt + zt
    share = 1 - net / dt if abs(dt) > 1e-9 else np.nan
    return {
        "direct": d.mean() if d.size else np.nan,
        "spillover": r.mean() if r.size else np.nan,
        "net": net,
        "displacement_share": share,
        "direct_total": dt,
        "spillover_total": rt,
        "spillover_on_zones": z.mean() if z.size else np.nan,
        "spillover_on_zones_total": zt,
    }


CRN = False  # --crn: the same seed for rep r in every world (common random numbers)


def world_seed(world, rep, seed_base):
    off = 0 if CRN else (list(WORLDS).index(world) + 1) * 100_000
    return seed_base * 1_000_000 + off + rep


def one_rep(world, rep, seed_base, noiseless=False):
    share, null = WORLDS[world]
    seed = world_seed(world, rep, seed_base)
    w = simulate(seed, share, null=null, noiseless=noiseless)
    row = {
        "world": world,
        "rep": rep,
        "seed": seed,
        "noiseless": noiseless,
        "n_zones": int(np.isfinite(w["cohort"]).sum()),
    }
    panel = build_panel(w)
    try:
        res, dt, wlist = do_fit(panel, seed)
    except Exception as exc:  # record, don't hide
        row["error"] = f"{type(exc).__name__}: {template(exc)}"
        row["traceback"] = traceback.format_exc()[-800:]
        return row, []
    row["fit_seconds"] = dt
    row["error"] = ""
    units = np.arange(len(w["cohort"]))
    masks = target_masks(res, units)
    pcs = res.pieces.set_index("piece")
    for name, m in masks.items():
        n_fit = int(pcs.loc[name, "n_target_unit_periods"]) if name in pcs.index else 0
        row[f"n_{name}_mine"] = int(m.sum())
        row[f"n_{name}_fit"] = n_fit
        row[f"unid_{name}"] = int(pcs.loc[name, "n_unidentified"]) if name in pcs.index else 0
        row[f"leftout_{name}"] = str(pcs.loc[name, "left_out_periods"]) if name in pcs.index else ""
    # my own exposure classification vs the fit's
    D = w["D"]
    coh = w["cohort"]
    zone = np.isfinite(coh)
    near = (D < 40) & zone[None, :]
    mine_exposed = (~zone) & near.any(axis=1)
    tab = res.exposure.table.reindex(units)
    row["role_mismatch"] = int(((tab["role"].to_numpy() == "exposed") != mine_exposed).sum())
    tr = truths(w["eff_real"], masks)
    tp = truths(w["eff_pop"], masks)
    td = res.tidy().set_index("term")
    tt = res.terms.set_index("term")
    for q in QUANT + EXTRA:
        if q not in td.index:
            continue
        row[f"{q}_est"] = td.loc[q, "estimate"]
        row[f"{q}_se"] = td.loc[q, "std_error"]
        row[f"{q}_lo"] = td.loc[q, "conf_low"]
        row[f"{q}_hi"] = td.loc[q, "conf_high"]
        row[f"{q}_p"] = td.loc[q, "p_value"]
        row[f"{q}_df"] = tt.loc[q, "df"] if "df" in tt.columns else np.nan
        row[f"{q}_terms_lo"] = tt.loc[q, "ci_low"] if "ci_low" in tt.columns else np.nan
        row[f"{q}_terms_p"] = tt.loc[q, "p_value"] if "p_value" in tt.columns else np.nan
        row[f"{q}_true_real"] = tr[q]
        row[f"{q}_true_pop"] = tp[q]
    for k in (
        "n_clusters",
        "n_clean_units",
        "n_exposed_units",
        "n_direct_units",
        "n_pre_exposed_zones",
        "direct_total_cv",
        "displacement_share_ratio_bias",
    ):
        v = res.info.get(k)
        row[f"info_{k}"] = v if np.isscalar(v) else str(v)
    row["info_keys_notes"] = ";".join(sorted(k for k in res.info if k.endswith("note")))
    row["warnings"] = " || ".join(sorted(set(wlist)))
    return row, wlist


def run_world(world, reps, seed_base, noiseless=False, tag=""):
    rows, wcount = [], Counter()
    t0 = time.time()
    for rep in range(reps):
        row, wl = one_rep(world, rep, seed_base, noiseless)
        rows.append(row)
        for x in set(wl):
            wcount[x] += 1
        if row.get("error"):
            print(f"[{world}] rep {rep} ERROR {row['error']}", flush=True)
        if (rep + 1) % 50 == 0:
            print(f"[{world}] {rep + 1}/{reps} {time.time() - t0:.0f}s", flush=True)
    df = pd.DataFrame(rows)
    fn = os.path.join(OUT, f"raw_{tag}{world}{'_noiseless' if noiseless else ''}.csv")
    df.to_csv(fn, index=False)
    wfn = fn.replace(".csv", "_warnings.csv")
    pd.DataFrame(
        sorted(wcount.items(), key=lambda kv: -kv[1]), columns=["template", "n_fits"]
    ).to_csv(wfn, index=False)
    print(f"wrote {fn} ({time.time() - t0:.0f}s)")
    return df, wcount


# ---------------------------------------------------------------------------- summary
def excess_kurtosis(v):
    v = v - v.mean()
    return (v**4).mean() / (v**2).mean() ** 2 - 3


def summarise(df):
    out = []
    R = len(df)
    ok = df[df["error"].fillna("") == ""]
    for q in QUANT:
        if f"{q}_est" not in ok:
            continue
        e = ok[f"{q}_est"].to_numpy(float)
        se = ok[f"{q}_se"].to_numpy(float)
        lo = ok[f"{q}_lo"].to_numpy(float)
        hi = ok[f"{q}_hi"].to_numpy(float)
        p = ok[f"{q}_p"].to_numpy(float)
        rec = {
            "quantity": q,
            "R": R,
            "n_ok": len(ok),
            "n_nan_est": int(np.isnan(e).sum()),
            "n_nan_se": int(np.isnan(se).sum()),
            "sd_est": np.nanstd(e, ddof=1),
            "mean_se": np.nanmean(se),
            "rms_se": np.sqrt(np.nanmean(se**2)),
        }
        for kind in ("real", "pop"):
            th = ok[f"{q}_true_{kind}"].to_numpy(float)
            good = np.isfinite(th) & np.isfinite(e)
            if good.sum() == 0:
                continue
            err = e[good] - th[good]
            cov = ((lo[good] <= th[good]) & (th[good] <= hi[good])).astype(float)
            rec[f"truth_{kind}"] = th[good].mean()
            rec[f"bias_{kind}"] = err.mean()
            rec[f"bias_mcse_{kind}"] = err.std(ddof=1) / np.sqrt(good.sum())
            rec[f"biaspct_{kind}"] = (
                100 * err.mean() / th[good].mean() if th[good].mean() != 0 else np.nan
            )
            rec[f"sd_err_{kind}"] = err.std(ddof=1)
            rec[f"se_sd_{kind}"] = np.nanmean(se[good]) / err.std(ddof=1)
            rec[f"cover_{kind}"] = cov.mean()
            rec[f"cover_mcse_{kind}"] = np.sqrt(cov.mean() * (1 - cov.mean()) / good.sum())
        t = e / se
        g = np.isfinite(t)
        rec["rej_p05"] = np.mean(p[g] < 0.05)
        rec["rej_p05_mcse"] = np.sqrt(rec["rej_p05"] * (1 - rec["rej_p05"]) / g.sum())
        rec["rej_z196"] = np.mean(np.abs(t[g]) > 1.96)
        rec["sd_t"] = t[g].std(ddof=1)
        rec["exkurt_t"] = excess_kurtosis(t[g])
        rec["mean_df"] = np.nanmean(ok[f"{q}_df"].to_numpy(float))
        out.append(rec)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------- checks
def check_noiseless(reps, seed_base):
    rows = []
    for world in ["s1", "s0.5", "s0", "s-0.5", "null"]:
        df, wc = run_world(world, reps, seed_base, noiseless=True)
        for q in QUANT + EXTRA:
            if f"{q}_est" not in df:
                continue
            e = df[f"{q}_est"].to_numpy(float)
            th = df[f"{q}_true_real"].to_numpy(float)
            scale = np.maximum(np.abs(th), 1e-12)
            rel = np.abs(e - th) / scale
            absd = np.abs(e - th)
            rows.append(
                {
                    "world": world,
                    "quantity": q,
                    "max_abs_diff": np.nanmax(absd),
                    "max_rel_diff": np.nanmax(rel) if np.isfinite(rel).any() else np.nan,
                    "n_est_nan": int(np.isnan(e).sum()),
                    "n_truth_nan": int(np.isnan(th).sum()),
                }
            )
        cnt = {
            c: int((df[f"n_{c}_mine"] != df[f"n_{c}_fit"]).sum())
            for c in ["direct", "spillover:0-40km", "spillover_on_zones"]
        }
        print(
            world,
            "target-count mismatches:",
            cnt,
            "role mismatches:",
            int(df["role_mismatch"].sum()),
        )
        print(world, "warnings:", dict(wc))
    out = pd.DataFrame(rows)
    out.to_csv(os.path.join(OUT, "noiseless_check.csv"), index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print(out)


def check_invariance(seed_base, world="s0.5", n=3):
    from zoneimpact.estimators import spillover  # noqa

    rows = []
    share, null = WORLDS[world]
    for rep in range(n):
        seed = seed_base * 1_000_000 + 900_000 + rep
        w = simulate(seed, share, null=null)
        base, _, _ = do_fit(build_panel(w), seed)
        b = base.tidy().set_index("term")
        variants = {}
        f = w["frame"]
        rng = np.random.default_rng(seed)
        variants["shuffled_rows"] = (
            f.sample(frac=1, random_state=rng.integers(1 << 31)).reset_index(drop=True),
            w["geo"],
        )
        lab = {i: f"c{(i * 7919) % 1000:03d}_{i}" for i in range(400)}
        f2 = f.copy()
        f2["city"] = f2["city"].map(lab)
        g2 = w["geo"].copy()
        g2["city"] = g2["city"].map(lab)
        variants["string_ids"] = (f2, g2)
        f3 = f.copy()
        f3["y"] = f3["y"] + 1000
        variants["y_plus_1000"] = (f3, w["geo"])
        f4 = f.copy()
        f4["y"] = f4["y"] * 2
        variants["y_times_2"] = (f4, w["geo"])
        for name, (fr, geo) in variants.items():
            r, _, wl = do_fit(build_panel({"geo": geo}, frame=fr), seed)
            v = r.tidy().set_index("term")
            for q in QUANT + ["direct_total", "spillover_total"]:
                mult = 2.0 if (name == "y_times_2" and q != "displacement_share") else 1.0
                rows.append(
                    {
                        "rep": rep,
                        "variant": name,
                        "quantity": q,
                        "base_est": b.loc[q, "estimate"],
                        "var_est": v.loc[q, "estimate"],
                        "expected_factor": mult,
                        "est_rel_dev": abs(v.loc[q, "estimate"] - mult * b.loc[q, "estimate"])
                        / max(abs(mult * b.loc[q, "estimate"]), 1e-12),
                        "se_rel_dev": abs(v.loc[q, "std_error"] - mult * b.loc[q, "std_error"])
                        / max(abs(mult * b.loc[q, "std_error"]), 1e-12),
                        "ci_lo_rel_dev": abs(v.loc[q, "conf_low"] - mult * b.loc[q, "conf_low"])
                        / max(abs(mult * b.loc[q, "conf_low"]), 1e-12),
                        "p_abs_dev": abs(v.loc[q, "p_value"] - b.loc[q, "p_value"]),
                    }
                )
    out = pd.DataFrame(rows)
    out.to_csv(os.path.join(OUT, "invariance_check.csv"), index=False)
    agg = out.groupby(["variant", "quantity"])[
        ["est_rel_dev", "se_rel_dev", "ci_lo_rel_dev", "p_abs_dev"]
    ].max()
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print(agg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worlds", default="s1,s0.5,s0,s-0.5,null")
    ap.add_argument(
        "--check", choices=["none", "noiseless", "invariance", "summary"], default="none"
    )
    ap.add_argument("--crn", action="store_true", help="common random numbers across worlds")
    ap.add_argument("--prefix", default="", help="prefix of raw/summary file names")
    ap.add_argument(
        "--null-reps", type=int, default=None, help="reps for the null world (default 2x --reps)"
    )
    ap.add_argument("--outdir", default=DEFAULT_OUT, help="folder of the raw CSVs and summaries")
    a = ap.parse_args()
    global CRN, OUT
    CRN = a.crn
    OUT = a.outdir
    os.makedirs(OUT, exist_ok=True)
    if a.check == "noiseless":
        check_noiseless(a.reps, a.seed)
        return
    if a.check == "invariance":
        check_invariance(a.seed, n=a.reps)
        return
    worlds = a.worlds.split(",")
    if a.check == "summary":
        allt = []
        for wd in worlds:
            fn = os.path.join(OUT, f"raw_{a.prefix}{wd}.csv")
            if os.path.exists(fn):
                s = summarise(
                    pd.read_csv(
                        fn,
                        keep_default_na=True,
                        dtype={"world": str, "error": str, "warnings": str},
                    ).assign(world=wd)
                )
                s.insert(0, "world", wd)
                allt.append(s)
        tab = pd.concat(allt)
        tab.to_csv(os.path.join(OUT, f"{a.prefix}mc_summary.csv"), index=False)
        with pd.option_context(
            "display.width",
            250,
            "display.max_columns",
            60,
            "display.max_rows",
            100,
            "display.float_format",
            "{:.4g}".format,
        ):
            print(tab.T)
        return
    for wd in worlds:
        reps = (a.null_reps or 2 * a.reps) if wd == "null" else a.reps
        run_world(wd, reps, a.seed, tag=a.prefix)


if __name__ == "__main__":
    main()
