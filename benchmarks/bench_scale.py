"""Benchmark at scale: zoneimpact beside the fastest peer on the same data (issue 8).

Cases (each tool runs in its own fresh process, so peak memory is that tool's alone):

* ``twfe2`` / ``twfe3``: static TWFE on 1,000,000 rows (100,000 firms x 10 years) with unit
  and year effects, and with a third, city x year (300 cities), clustered by unit —
  zoneimpact vs pyfixest ``feols`` and linearmodels ``PanelOLS`` (for three effects
  ``other_effects=city x year``, which spans the year effects, the same model).
* ``cs50k`` / ``cs500k``: Callaway-Sant'Anna, never-treated controls, no covariates, 999
  multiplier-bootstrap draws, on 50,000 and 500,000 units x 10 periods — zoneimpact vs
  diff-diff.
* ``sa500k``: Sun-Abraham event study on 500,000 x 10 — zoneimpact vs diff-diff.

Printed per tool: ``fit_s`` (wall seconds from the in-memory DataFrame to the result,
building zoneimpact's validated Panel included), ``proc_s`` (the process after the
numpy/pandas imports: tool imports, data generation, fit), ``peak_MB`` (``ru_maxrss`` of the process) and ``fit_MB`` (peak
minus the resident size before the fit: what the fit itself needs), the headline estimate,
and the ratios of zoneimpact to the fastest and to the leanest peer, and to the floor: after
the tools, ``bench_ratios.floor`` (the same columns read into numpy and three passes, see
``benchmarks/_floor.py``) runs on the same data in its own process. The machine is shared:
wall times move with the other load.

Run:  python benchmarks/bench_scale.py [--cases twfe2 twfe3 cs50k cs500k sa500k]
      [--tools zoneimpact pyfixest ...] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _floor import ratio_line

T_START = time.perf_counter()


# ---------------------------------------------------------------------- data
def twfe_data(n_units: int = 100_000, n_years: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_years)
    coh = rng.choice([2004, 2006, 2008, 0], size=n_units, p=[0.2, 0.2, 0.2, 0.4])
    n_city = max(2, min(300, n_units // 10))  # 300 cities for the 100,000-firm panel
    city = rng.integers(0, n_city, n_units)
    t = np.tile(years, n_units)
    g = np.repeat(coh, n_years)
    d = ((g > 0) & (t >= g)).astype(float)
    shock = rng.normal(0, 0.3, (n_city, n_years))
    c = np.repeat(city, n_years)
    y = (
        np.repeat(rng.normal(size=n_units), n_years)
        + 0.1 * (t - 2000)
        + shock[c, t - 2001]
        + 0.5 * d
        + rng.normal(size=n_units * n_years)
    )
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_years),
            "year": t,
            "first_treat": g,
            "city": c,
            "d": d,
            "y": y,
        }
    )


def did_data(n_units: int, n_periods: int = 10, seed: int = 1) -> pd.DataFrame:
    """Staggered panel as benchmarks/bench_cs.py: 30% never treated, cohorts from period 4."""
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_periods)
    cohorts = np.r_[0, years[3:]]
    probs = np.r_[0.3, np.full(len(cohorts) - 1, 0.7 / (len(cohorts) - 1))]
    g = rng.choice(cohorts, size=n_units, p=probs)
    e = years[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (e >= 0), 0.5 + 0.1 * e, 0.0)
    y = (
        rng.normal(0, 1, n_units)[:, None]
        + np.linspace(0, 1, n_periods)[None, :]
        + effect
        + rng.normal(0, 1, (n_units, n_periods))
    )
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_periods),
            "year": np.tile(years, n_units),
            "first_treat": np.repeat(g, n_periods),
            "y": y.ravel(),
        }
    )


# ---------------------------------------------------------------------- runners
def _zi_panel(df: pd.DataFrame, geography: bool = False):
    from zoneimpact.panel import Panel
    from zoneimpact.parallel import set_progress

    set_progress(False)
    geo = None
    if geography:
        geo = df.groupby("unit", as_index=False)["city"].first()
    return Panel.from_frame(
        df, unit="unit", time="year", outcomes="y", cohort="first_treat", geography=geo
    )


def zi_twfe(df: pd.DataFrame, three: bool) -> float:
    from zoneimpact.estimators import twfe

    panel = _zi_panel(df, geography=three)
    fe = ("unit", "time", "city:time") if three else ("unit", "time")
    return twfe.fit(panel, outcome="y", fixed_effects=fe).estimate


def pf_twfe(df: pd.DataFrame, three: bool) -> float:
    import pyfixest as pf

    fml = "y ~ d | unit + year + city^year" if three else "y ~ d | unit + year"
    return float(pf.feols(fml, df, vcov={"CRV1": "unit"}).coef()["d"])


def lm_twfe(df: pd.DataFrame, three: bool) -> float:
    from linearmodels.panel import PanelOLS

    x = df.set_index(["unit", "year"])
    other = None
    if three:
        other = pd.DataFrame(
            {"cy": pd.factorize(x["city"] * 10_000 + x.index.get_level_values(1))[0]}, index=x.index
        )
    mod = PanelOLS(
        x["y"], x[["d"]], entity_effects=True, time_effects=not three, other_effects=other
    )
    fit = mod.fit(cov_type="clustered", cluster_entity=True)
    return float(fit.params["d"])


def zi_cs(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import callaway_santanna as cs

    panel = _zi_panel(df)
    res = cs.fit(panel, outcome="y", rng=np.random.default_rng(7), bootstrap=True, n_boot=999)
    return res.estimate


def dd_cs(df: pd.DataFrame) -> float:
    from diff_diff import CallawaySantAnna

    res = CallawaySantAnna(n_bootstrap=999, seed=7).fit(
        df, outcome="y", unit="unit", time="year", first_treat="first_treat"
    )
    return float(res.overall_att)


def zi_sa(df: pd.DataFrame) -> float:
    from zoneimpact.estimators import sun_abraham

    return sun_abraham.fit(_zi_panel(df), outcome="y").estimate


def dd_sa(df: pd.DataFrame) -> float:
    from diff_diff import SunAbraham

    res = SunAbraham().fit(df, outcome="y", unit="unit", time="year", first_treat="first_treat")
    return float(res.overall_att)


CASES = {
    "twfe2": (
        "TWFE 1,000,000 rows, unit + year FE",
        lambda: twfe_data(),
        {
            "zoneimpact": lambda d: zi_twfe(d, False),
            "pyfixest": lambda d: pf_twfe(d, False),
            "linearmodels": lambda d: lm_twfe(d, False),
        },
    ),
    "twfe3": (
        "TWFE 1,000,000 rows, unit + year + city x year FE",
        lambda: twfe_data(),
        {
            "zoneimpact": lambda d: zi_twfe(d, True),
            "pyfixest": lambda d: pf_twfe(d, True),
            "linearmodels": lambda d: lm_twfe(d, True),
        },
    ),
    "cs50k": (
        "CS 50,000 x 10, 999 bootstrap draws",
        lambda: did_data(50_000),
        {"zoneimpact": zi_cs, "diff-diff": dd_cs},
    ),
    "cs500k": (
        "CS 500,000 x 10, 999 bootstrap draws",
        lambda: did_data(500_000),
        {"zoneimpact": zi_cs, "diff-diff": dd_cs},
    ),
    "sa500k": (
        "Sun-Abraham 500,000 x 10",
        lambda: did_data(500_000),
        {"zoneimpact": zi_sa, "diff-diff": dd_sa},
    ),
}


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def floor_step(df: pd.DataFrame) -> float:
    from bench_ratios import floor

    floor(df)
    return float("nan")  # the floor estimates nothing


def run_one(case: str, tool: str) -> None:
    _, make, tools = CASES[case]
    df = make()
    step = floor_step if tool == "floor" else tools[tool]
    base = maxrss_mb()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        est = step(df)
    fit_s = time.perf_counter() - t0
    peak = maxrss_mb()
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "proc_s": time.perf_counter() - T_START,
                "peak_MB": peak,
                "fit_MB": peak - base,
                "estimate": est,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--tools", nargs="+", default=None)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--one", nargs=2, metavar=("CASE", "TOOL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(*args.one)
        return
    rows = []
    for case in args.cases:
        title, _, tools = CASES[case]
        for tool in [*tools, "floor"]:  # the floor always runs: it is cheap
            if args.tools and tool not in args.tools and tool != "floor":
                continue
            cmd = [sys.executable, __file__, "--one", case, tool]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                rec = (
                    json.loads(out.stdout.strip().splitlines()[-1])
                    if out.returncode == 0
                    # the whole last line of the traceback: the error and its message
                    else {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
                )
            except subprocess.TimeoutExpired:
                rec = {"error": f"timeout > {args.timeout:.0f} s"}
            rec.update(case=case, title=title, tool=tool)
            rows.append(rec)
            print(json.dumps(rec), flush=True)
    table = pd.DataFrame(rows)
    print()
    for _case, grp in table.groupby("case", sort=False):
        print(grp["title"].iloc[0])
        ok = grp.dropna(subset=["fit_s"]) if "fit_s" in grp else grp.iloc[0:0]
        peers = ok[~ok.tool.isin(["zoneimpact", "floor"])]
        zi = ok[ok.tool == "zoneimpact"]
        fl = ok[ok.tool == "floor"]
        for r in grp.itertuples():
            if isinstance(getattr(r, "error", None), str):
                print(f"  {r.tool:<13} ERROR {r.error}")
                continue
            print(
                f"  {r.tool:<13} fit {r.fit_s:8.2f} s  process {r.proc_s:8.2f} s  "
                f"peak {r.peak_MB:8.0f} MB  fit +{r.fit_MB:7.0f} MB  estimate {r.estimate:.6f}"
            )
        if len(zi) and len(peers):
            fast = peers.loc[peers.fit_s.idxmin()]
            lean = peers.loc[peers.peak_MB.idxmin()]
            z = zi.iloc[0]
            print(
                f"  ratio zoneimpact / fastest peer ({fast.tool}): time {z.fit_s / fast.fit_s:.2f}x, "
                f"process {z.proc_s / fast.proc_s:.2f}x; peak memory vs leanest ({lean.tool}): "
                f"{z.peak_MB / lean.peak_MB:.2f}x"
            )
        if len(zi) and len(fl):
            print(
                "  "
                + ratio_line(
                    str(grp["title"].iloc[0]),
                    float(zi.fit_s.iloc[0]),
                    dict(zip(peers.tool, peers.fit_s, strict=True)),
                    float(fl.fit_s.iloc[0]),
                )
            )
        print()


if __name__ == "__main__":
    main()
