"""Synthetic-control family: zoneimpact vs pysyncon and diff-diff, same data, one process.

1. ADH (2010) SC with covariates and the full in-space placebo run (38 donors, nested V
   each) -- zoneimpact vs diff-diff ``SyntheticControl(v_method="nested")`` + its
   ``in_space_placebo()`` (same predictors: lnincome, retprice, age15to24 averaged over
   1980-88, beer over 1984-88, cigsale in 1975, 1980, 1988; V chosen by the pre-period
   1970-88 outcome MSPE), alternating in this process (``--reps`` rounds, medians), with
   the pre-period RMSPE, ATT (mean 1989-2000 gap), weights and permutation p-value of
   each. The placebo sets differ slightly: each diff-diff placebo has California in its
   donor pool (ADH's reading), each zoneimpact placebo the other 37 donors (with a
   lighter V search); diff-diff runs 4 starts of its V search per fit and placebo. pysyncon (Synth + PlaceboTest)
   takes over 14 minutes here, so it runs only with ``--pysyncon-placebos``.
2. SDID with a 200-rep placebo SE on Prop 99 -- zoneimpact vs diff-diff SyntheticDiD.
3. 1 treated x 1,000 donors x 40 years (SDID point estimate + outcome-based SC).

After the tools of each part, the floor (``_floor.wide_floor``: the outcome read into the
units x periods matrix, then column means, row sums and one matrix-vector product) is
timed on the same frame, and one ratio line per timed zoneimpact task gives zoneimpact /
fastest peer (or "no peer") and zoneimpact / floor.

``--quick`` runs the same comparisons smaller: ADH SC without the placebo run (diff-diff's
fit and pysyncon's ``Synth`` alone), SDID with 20 placebo replications, 1 treated x 100
donors x 40 years.

Run: python benchmarks/bench_sc.py [--data-dir ../shared/data] [--quick] [--reps 1]
     [--pysyncon-placebos] [--v nested|optimistic] [--adh-only]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _floor import ratio_line, time_floor, wide_floor

from zoneimpact.estimators import synthetic_control as sc
from zoneimpact.estimators import synthetic_did as sdid
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

warnings.filterwarnings("ignore")
set_progress(False)
DATA = (
    Path(sys.argv[sys.argv.index("--data-dir") + 1])
    if "--data-dir" in sys.argv
    else Path(__file__).resolve().parents[2] / "shared" / "data"
)
CAN = DATA / "canonical"
PREDICTORS = [
    {"variable": "lnincome", "window": [1980, 1988]},
    {"variable": "retprice", "window": [1980, 1988]},
    {"variable": "age15to24", "window": [1980, 1988]},
    {"variable": "beer", "window": [1984, 1988]},
    {"variable": "cigsale", "years": [1975]},
    {"variable": "cigsale", "years": [1980]},
    {"variable": "cigsale", "years": [1988]},
]


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def _top(weights: dict, n: int = 6) -> dict:
    return dict(
        sorted(((k, round(float(v), 3)) for k, v in weights.items()), key=lambda kv: -kv[1])[:n]
    )


def _adh_pysyncon(df: pd.DataFrame, quick: bool) -> tuple[float, str] | None:
    """pysyncon Synth (+ PlaceboTest unless ``quick``): seconds and its printed line."""
    try:
        from pysyncon import Dataprep, Synth
        from pysyncon.utils import PlaceboTest
    except ImportError:
        print("  pysyncon not installed")
        return None
    controls = sorted(set(df.state) - {"California"})
    dp = Dataprep(
        foo=df.copy(),
        predictors=["lnincome", "retprice", "age15to24"],
        predictors_op="mean",
        time_predictors_prior=range(1980, 1989),
        special_predictors=[
            ("beer", range(1984, 1989), "mean"),
            ("cigsale", [1975], "mean"),
            ("cigsale", [1980], "mean"),
            ("cigsale", [1988], "mean"),
        ],
        dependent="cigsale",
        unit_variable="state",
        time_variable="year",
        treatment_identifier="California",
        controls_identifier=controls,
        time_optimize_ssr=range(1970, 1989),
    )

    def peer():
        s = Synth()
        s.fit(dataprep=dp, optim_method="Nelder-Mead", optim_initial="equal")
        if quick:
            return s
        pt = PlaceboTest()
        pt.fit(
            dataprep=dp,
            scm=Synth(),
            scm_options={"optim_method": "Nelder-Mead", "optim_initial": "equal"},
            verbose=False,
        )
        return s

    s, t_peer = timed(peer)
    Z0, Z1 = dp.make_outcome_mats(time_period=range(1970, 1989))
    gap = Z1 - Z0 @ s.W
    pw = _top(dict(zip(Z0.columns, s.W, strict=True)))
    rmspe = float(np.sqrt(np.mean(gap**2)))
    return t_peer, f"pysyncon:   {t_peer:6.2f} s  pre-RMSPE {rmspe:.3f}  W={pw}"


def _adh_diffdiff(df: pd.DataFrame, quick: bool):
    """diff-diff SyntheticControl (nested V) + its in-space placebos unless ``quick``."""
    from diff_diff import SyntheticControl

    d = df.copy()
    d["treat"] = ((d["state"] == "California") & (d["year"] >= 1989)).astype(int)

    def run():
        r = SyntheticControl(v_method="nested", seed=1).fit(
            d,
            "cigsale",
            "treat",
            "state",
            "year",
            predictors=["lnincome", "retprice", "age15to24"],
            predictors_op="mean",
            predictor_window=list(range(1980, 1989)),
            special_predictors=[
                ("beer", list(range(1984, 1989)), "mean"),
                ("cigsale", [1975], "mean"),
                ("cigsale", [1980], "mean"),
                ("cigsale", [1988], "mean"),
            ],
        )
        if not quick:
            r.in_space_placebo()
        return r

    return run


def bench_adh(
    quick: bool = False, reps: int = 1, pysyncon_placebos: bool = False, v: str = "nested"
) -> None:
    """ADH SC on Prop 99: zoneimpact (V rule ``v``, for the treated unit and every placebo)
    and diff-diff alternate ``reps`` times; pysyncon once."""
    df = pd.read_csv(CAN / "smoking_adh_covariates.csv")
    df["first"] = np.where(df["state"] == "California", 1989, 0)
    p = Panel.from_frame(
        df,
        unit="state",
        time="year",
        outcomes="cigsale",
        cohort="first",
        covariates=["lnincome", "beer", "age15to24", "retprice"],
    )

    def ours():
        return sc.fit(
            p,
            outcome="cigsale",
            predictors=PREDICTORS,
            fit_window=[1970, 1988],
            rng=np.random.default_rng(1),
            placebos=not quick,
            v=v,
        )

    try:
        dd_run = _adh_diffdiff(df, quick)
    except ImportError:
        print("  diff-diff not installed")
        dd_run = None
    task = ("ADH SC" if quick else "ADH SC + 38 placebos") + ("" if v == "nested" else f", v={v}")
    t_z: list[float] = []
    t_dd: list[float] = []
    for _ in range(reps):  # zoneimpact, diff-diff, zoneimpact, ...
        r, t = timed(ours)
        t_z.append(t)
        if dd_run is not None:
            rd, t = timed(dd_run)
            t_dd.append(t)
    t_ours = float(np.median(t_z))
    post = r.gaps.index >= 1989
    p_value = "" if quick else f"  p={r.p_value:.4f}"
    print(
        f"{task:<21} zoneimpact: {t_ours:6.2f} s {_fmt(t_z)}  pre-RMSPE {r.info['pre_rmspe']:.3f}"
        f"  ATT {float(r.gaps[post].mean()):.3f}{p_value}  W={_top(r.donor_weights.to_dict())}"
    )
    peers: dict[str, float] = {}
    if dd_run is not None:
        peers["diff-diff"] = float(np.median(t_dd))
        p_dd = (
            ""
            if quick
            else f"  p={rd.placebo_p_value:.4f} ({rd.n_placebos} placebos, {rd.n_failed} failed)"
        )
        print(
            f"                      diff-diff:  {peers['diff-diff']:6.2f} s {_fmt(t_dd)}  "
            f"pre-RMSPE {rd.pre_rmspe:.3f}  ATT {rd.att:.3f}{p_dd}  W={_top(rd.donor_weights)}"
        )
    if quick or pysyncon_placebos:
        out = _adh_pysyncon(df, quick)
        if out is not None:
            peers["pysyncon"] = out[0]
            print("                      " + out[1])
    else:
        print(
            "                      pysyncon:   placebo run skipped (> 14 min; "
            "--pysyncon-placebos runs it)"
        )
    for name, t in peers.items():
        print(f"  ratio {name}/zoneimpact: {t / t_ours:.2f}")
    floor_s = time_floor(wide_floor(df, "state", "year", "cigsale"))
    print(
        "  "
        + ratio_line(task, t_ours, peers, floor_s, note=f"medians of {reps}" if reps > 1 else "")
    )


def _fmt(ts: list[float]) -> str:
    return "(" + ", ".join(f"{t:.2f}" for t in ts) + ")"


def bench_sdid(n_reps: int = 200) -> None:
    df = pd.read_csv(CAN / "california_prop99.csv", sep=";")
    p = Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    r, t_ours = timed(
        lambda: sdid.fit(p, outcome="PacksPerCapita", rng=np.random.default_rng(1), n_reps=n_reps)
    )
    task = f"SDID + {n_reps} placebo SE"
    print(f"{task:<21} zoneimpact: {t_ours:6.2f} s  est {r.estimate:.3f} se {r.se:.2f}")
    floor_step = wide_floor(df, "State", "Year", "PacksPerCapita")
    try:
        from diff_diff import SyntheticDiD
    except ImportError:
        print("  diff-diff not installed")
        print("  " + ratio_line(task, t_ours, {}, time_floor(floor_step)))
        return
    d = df.rename(columns={"PacksPerCapita": "y"})
    d["treat"] = (d.State == "California").astype(int)

    def peer():
        return SyntheticDiD(variance_method="placebo", n_bootstrap=n_reps, seed=1).fit(
            d,
            outcome="y",
            treatment="treat",
            unit="State",
            time="Year",
            post_periods=list(range(1989, 2001)),
        )

    res, t_peer = timed(peer)
    print(f"                      diff-diff:  {t_peer:6.2f} s  est {res.att:.3f} se {res.se:.2f}")
    print(f"  ratio diff-diff/zoneimpact: {t_peer / t_ours:.2f}")
    print("  " + ratio_line(task, t_ours, {"diff-diff": t_peer}, time_floor(floor_step)))


def bench_large(n_donors: int = 1000) -> None:
    rng = np.random.default_rng(0)
    N, T, T0 = n_donors + 1, 40, 30
    L = rng.uniform(0, 1, (N, 3))
    F = np.cumsum(rng.normal(0, 1, (T, 3)), axis=0)
    Y = L @ F.T + rng.normal(0, 0.5, (N, T))
    units = [f"u{i:04d}" for i in range(N)]
    g = np.zeros(N)
    g[0] = T0
    df = pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "time": np.tile(np.arange(T), N),
            "y": Y.ravel(),
            "g": np.repeat(g, T),
        }
    )
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    _, t1 = timed(lambda: sdid.fit(p, outcome="y", se_method=None))
    _, t2 = timed(lambda: sc.fit(p, outcome="y", placebos=False))
    size = f"1 x {n_donors} x {T}"
    print(f"{size}: SDID point {t1:.2f} s, outcome SC {t2:.2f} s")
    peers: dict[str, float] = {}
    try:
        from diff_diff import SyntheticDiD

        df["treat"] = (df.unit == "u0000").astype(int)
        _, t3 = timed(
            lambda: SyntheticDiD(variance_method="placebo", n_bootstrap=2, seed=1).fit(
                df,
                outcome="y",
                treatment="treat",
                unit="unit",
                time="time",
                post_periods=list(range(T0, T)),
            )
        )
        print(f"  diff-diff SDID (2 placebo reps): {t3:.2f} s")
        peers["diff-diff"] = t3
    except ImportError:
        pass
    floor_s = time_floor(wide_floor(df, "unit", "time", "y"))
    # diff-diff's SDID has no point-estimate-only mode: its run carries 2 placebo reps
    note = "peer: diff-diff SDID with 2 placebo reps" if peers else ""
    print("  " + ratio_line(f"SDID point {size}", t1, peers, floor_s, note=note))
    print("  " + ratio_line(f"outcome SC {size}", t2, {}, floor_s))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data-dir", help="folder holding canonical/ (default ../shared/data)")
    ap.add_argument("--quick", action="store_true", help="the same comparisons, smaller")
    ap.add_argument(
        "--reps", type=int, default=1, help="ADH: alternating zoneimpact / diff-diff rounds"
    )
    ap.add_argument(
        "--pysyncon-placebos",
        action="store_true",
        help="ADH: also run pysyncon's PlaceboTest (> 14 min; skipped by default)",
    )
    ap.add_argument(
        "--v",
        default="nested",
        choices=["nested", "optimistic"],
        help="ADH: zoneimpact's V rule (nested, the default, reproduces ADH's weights)",
    )
    ap.add_argument("--adh-only", action="store_true", help="skip the SDID and large parts")
    a = ap.parse_args()
    bench_adh(quick=a.quick, reps=a.reps, pysyncon_placebos=a.pysyncon_placebos, v=a.v)
    if a.adh_only:
        sys.exit(0)
    bench_sdid(n_reps=20 if a.quick else 200)
    bench_large(n_donors=100 if a.quick else 1000)
