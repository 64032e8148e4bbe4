"""Monte Carlo: staggered-adoption estimators against the simulator's known truth (issue 3).

Design (:func:`zoneimpact.simulate.simulate`): 200 units in 30 regions, 2000-2016, zone
waves 2004 / 2008 / 2012 (shares 0.3 / 0.4 / 0.3 of zone units), zone status and timing
driven by the covariate ``x`` (``timing_on_covariate=1.5``), unit levels tied to ``x``,
cohort-specific direct effects (earlier cohorts gain more) growing by 8% a year of
exposure, ``zero_share=0.02`` reporting zeros in both worlds, and no spillovers
(``displacement_share=0``, ``agglomeration=0``) so that never-treated units are clean
controls. Every other setting is the :class:`~zoneimpact.simulate.SimulationDesign`
default.

Part A (issue 3, "What it must show"): for each replication, TWFE static, Callaway-Sant'Anna
(never-treated and not-yet-treated controls, no covariates, analytic influence-function
SEs, ``bootstrap=False``), Sun-Abraham (never-treated control cohort) and the
Borusyak-Jaravel-Spiess imputation estimator (default conservative variance, and with the
leave-out refinement) are fitted to ``fdi``. For every reported term
the script prints

* ``bias/SDy``: mean of (estimate - truth) / SD(fdi), SD(fdi) the standard deviation of the
  outcome over the replication's panel (the issue's criterion: |bias/SDy| < 0.05);
* ``bias``, ``bias %``: the same in levels and in percent of the mean truth, and
  ``t(bias)``: bias over its Monte Carlo standard error (a stricter check: |t| > 3 means the
  bias is detectable with this many replications);
* ``SE/SD``: the mean reported SE over the Monte Carlo SD of the estimation error;
* ``cover``: share of replications whose 95% CI (the result's own ``conf_int``: normal for
  CS, TWFE and imputation, t with G-1 df for Sun-Abraham) contains the truth; the Monte
  Carlo SE of a coverage of 0.95 is ``sqrt(0.95*0.05/reps)`` (0.0069 at 1,000 reps).

Truths (realised in each replication's sample, from ``sim.frame``, effect = fdi - fdi_y0):

* ``att`` of TWFE, CS (``simple``), Sun-Abraham (fixest ``agg="ATT"``: post-treatment cells
  weighted by their observation counts) and imputation (all treated observations equally
  weighted) is the mean effect over treated unit-periods. The three weightings coincide
  here because the panel is balanced, no event window is trimmed and every treated
  observation's Y(0) is imputable (never-treated units exist in every year); the script
  checks this against ``truth.overall`` in every replication;
* ``event:E`` (E = 0..4): mean effect over treated units at event time E
  (``truth.event``); CS weights ATT(g, g+E) by cohort size, Sun-Abraham by cell counts and
  imputation equally over observations, all equal to that mean on a balanced panel;
* CS ``event_avg``: the plain mean of the event-time truths over every E >= 0;
  ``cohort:G``: the mean over post-treatment years of the cohort's ATT(g,t);
  ``cohort_avg``: their cohort-size weighted mean; ``ATT(g,t)`` pools every post-treatment
  cell of every replication.

CS and its weight-influence term: the CS ``att``, ``event:E``, ``event_avg`` and
``cohort_avg`` standard errors include the influence function of the estimated cohort
shares (R ``did``'s ``wif``), i.e. they target the population estimand with random cohort
shares. In this simulator the cohort sizes are (nearly) fixed by the wave shares and the
truth is the realised-sample ATT, so those SEs overstate the sampling variance and their
coverage exceeds 95% (with ``zero_share=0``: 0.986 for ``att``). The row ``att [fixed w]``
recomputes the CS simple SE from the ATT(g,t) influence functions with the weights held
fixed (the variance for the realised-sample estimand, what Sun-Abraham's ``att`` SE also
does); ``cohort:G`` and ``ATT(g,t)`` have no estimated weights.

Reported zeros: ``zero_share=0.02`` (the simulator default) sets 2% of unit-periods to 0
in both worlds. Those cells are outliers of the size of a unit's level (~150), so the
estimation errors are heavy-tailed and the influence-function / cluster SEs of small cells
(about 20 units per cohort) are noisy and on average too small; coverage of the
imputation event-time effects drops to about 0.92 and the CS fixed-weight ``att`` to
0.92. ``--set zero_share=0`` removes them (results in ``benchmarks/RESULTS.md``).

Part B (covariates, CS only): parallel trends in levels vs an ``x``-specific trend
(``covariate_trend=3``) under which only the covariate-adjusted CS estimators (DR, OR, IPW
with ``x``) are unbiased; TWFE and unconditional CS are biased by design.

Run:  nice -n 10 python benchmarks/mc_staggered.py [--reps 1000] [--seed 20261122]
      [--part a|b|all] [--n-jobs 1] [--set FIELD=JSON ...]
      (``--set`` overrides a SimulationDesign field, e.g. ``--set zero_share=0``)
"""

from __future__ import annotations

import os

# one BLAS thread per process: the replications already use the cores, and two processes
# with OpenBLAS's default threads on two cores ran several times slower (RESULTS.md)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import time
import warnings
from datetime import datetime

import numpy as np
import pandas as pd

from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import imputation as imp
from zoneimpact.estimators import sun_abraham as sa
from zoneimpact.estimators import twfe
from zoneimpact.parallel import replicate
from zoneimpact.simulate import simulate

DESIGN = dict(
    n_units=200,
    first_year=2000,
    last_year=2016,
    waves={2004: 0.3, 2008: 0.4, 2012: 0.3},
    displacement_share=0.0,
    agglomeration=0.0,
)
EVENTS = (0, 1, 2, 3, 4)
CONFIGS_B = {
    "PT levels | CS unconditional": ({}, {}),
    "PT levels | CS DR(x)": ({}, {"covariates": ["x"], "est_method": "dr"}),
    "x-trend   | CS unconditional": ({"covariate_trend": 3.0}, {}),
    "x-trend   | CS DR(x)": ({"covariate_trend": 3.0}, {"covariates": ["x"], "est_method": "dr"}),
    "x-trend   | CS OR(x)": ({"covariate_trend": 3.0}, {"covariates": ["x"], "est_method": "reg"}),
    "x-trend   | CS IPW(x)": ({"covariate_trend": 3.0}, {"covariates": ["x"], "est_method": "ipw"}),
}
Z95 = 1.959963984540054

# one record per (estimator, term) and replication
Record = tuple[str, str, float, float, float, float, float, float]


def _truths(sim) -> dict:
    """Realised-sample truths from the two worlds in ``sim.frame``."""
    f = sim.frame
    treated = (f["cohort"] > 0) & (f["year"] >= f["cohort"])
    eff = (f["fdi"] - f["fdi_y0"])[treated]
    att_obs = float(eff.mean())
    # every treated observation is in the SA sample and imputable: the three "att"
    # weightings are the same number here; stop if a design change breaks that
    if abs(att_obs - sim.truth.overall["fdi"]) > 1e-9 * max(1.0, abs(att_obs)):
        raise RuntimeError("Treated-observation mean differs from truth.overall['fdi'].")
    tr = f.loc[treated, ["cohort", "year"]].assign(eff=eff)
    gt = tr.groupby(["cohort", "year"])["eff"].mean()
    ev = tr.assign(e=tr["year"] - tr["cohort"]).groupby("e")["eff"].mean()
    coh = gt.groupby(level="cohort").mean()
    size = f.groupby("unit")["cohort"].first().value_counts()
    size = size[size.index > 0]
    coh_avg = float((coh * size.reindex(coh.index)).sum() / size.sum())
    return {
        "att": att_obs,
        "event": ev,
        "event_avg": float(ev.mean()),
        "cohort": coh,
        "cohort_avg": coh_avg,
        "gt": gt,
        "sd_y": float(f["fdi"].std(ddof=1)),
    }


def _rows(name: str, res, want: dict[str, float], sd_y: float) -> list[Record]:
    ci = res.conf_int(0.05)
    t = res.terms.set_index("term")
    out = []
    for term, truth in want.items():
        out.append(
            (
                name,
                term,
                float(t.loc[term, "estimate"]),
                float(t.loc[term, "se"]),
                float(ci.loc[term, "lower"]),
                float(ci.loc[term, "upper"]),
                float(truth),
                sd_y,
            )
        )
    return out


def _cs_rows(name: str, res, tru: dict) -> list[Record]:
    sd_y = tru["sd_y"]
    want = {"att": tru["att"], "event_avg": tru["event_avg"], "cohort_avg": tru["cohort_avg"]}
    want |= {f"event:{e}": tru["event"][e] for e in EVENTS}
    want |= {f"cohort:{int(g)}": v for g, v in tru["cohort"].items()}
    out = _rows(name, res, want, sd_y)
    # simple ATT with the cohort-size weights held fixed: sum_k w_k psi_k, se = |psi|/n
    gt = res.att_gt
    post = (gt["event_time"] >= 0).to_numpy() & np.isfinite(gt["estimate"].to_numpy())
    w = gt["n_treated"].to_numpy(float) * post
    w = w / w.sum()
    psi = np.nan_to_num(res.influence[:, post]) @ w[post]
    se_fixed = float(np.sqrt(np.sum(psi**2)) / res.influence.shape[0])
    est = float(res.terms.set_index("term").loc["att", "estimate"])
    out.append(
        (name, "att [fixed w]", est, se_fixed, est - Z95 * se_fixed, est + Z95 * se_fixed)
        + (tru["att"], sd_y)
    )
    # every post-treatment ATT(g,t) cell, pooled
    for _, row in gt[gt["event_time"] >= 0].iterrows():
        est, se = float(row["estimate"]), float(row["se"])
        truth = tru["gt"][(row["cohort"], row["time"])]
        out.append((name, "ATT(g,t)", est, se, est - Z95 * se, est + Z95 * se, truth, sd_y))
    return out


def one_a(rep: int, rng: np.random.Generator, design: dict) -> list[Record]:
    """Part A: one simulated panel, every estimator."""
    sim = simulate(rng=rng, **design)
    tru = _truths(sim)
    ev = {f"event:{e}": tru["event"][e] for e in EVENTS}
    out: list[Record] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out += _rows(
            "TWFE static", twfe.fit(sim.panel, outcome="fdi"), {"att": tru["att"]}, tru["sd_y"]
        )
        for label, cg in (
            ("CS never-treated", "never_treated"),
            ("CS not-yet-treated", "not_yet_treated"),
        ):
            res = cs.fit(
                sim.panel,
                outcome="fdi",
                control_group=cg,
                bootstrap=False,
                aggregations=["dynamic", "group"],
            )
            out += _cs_rows(label, res, tru)
        res = sa.fit(sim.panel, outcome="fdi", control_group="never_treated")
        out += _rows("Sun-Abraham", res, {"att": tru["att"]} | ev, tru["sd_y"])
        for label, leave_out in (("Imputation", False), ("Imputation leave-out", True)):
            res = imp.fit(sim.panel, outcome="fdi", horizons=list(EVENTS), leave_out=leave_out)
            out += _rows(label, res, {"att": tru["att"]} | ev, tru["sd_y"])
    return out


def one_b(
    rep: int, rng: np.random.Generator, design: dict, sim_kw: dict, fit_kw: dict, label: str
) -> list[Record]:
    """Part B: one simulated panel, one CS configuration (plus TWFE in that design)."""
    sim = simulate(rng=rng, **(design | sim_kw))
    tru = _truths(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cs.fit(sim.panel, outcome="fdi", bootstrap=False, aggregations=["group"], **fit_kw)
    want = {"att": tru["att"]} | {f"cohort:{int(g)}": v for g, v in tru["cohort"].items()}
    out = _rows(label, res, want, tru["sd_y"])
    if "unconditional" in label:
        out += _rows(
            label.split("|")[0] + "| TWFE static",
            twfe.fit(sim.panel, outcome="fdi"),
            {"att": tru["att"]},
            tru["sd_y"],
        )
    return out


def summarise(records: list[Record], order: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(
        records, columns=["estimator", "term", "estimate", "se", "lower", "upper", "truth", "sd_y"]
    )
    rows = []
    for (name, term), d in df.groupby(["estimator", "term"], sort=False):
        err = d["estimate"] - d["truth"]
        sd = err.std(ddof=1)
        rows.append(
            {
                "estimator": name,
                "term": term,
                "n": len(d),
                "truth": d["truth"].mean(),
                "bias": err.mean(),
                "bias %": 100 * err.mean() / d["truth"].mean(),
                "t(bias)": err.mean() / (sd / np.sqrt(len(d))),
                "bias/SDy": (err / d["sd_y"]).mean(),
                "RMSE": np.sqrt(np.mean(err**2)),
                "SE/SD": d["se"].mean() / sd,
                "cover": np.mean((d["lower"] <= d["truth"]) & (d["truth"] <= d["upper"])),
            }
        )
    out = pd.DataFrame(rows)
    out["_o"] = out["estimator"].map({k: i for i, k in enumerate(order)})
    return out.sort_values("_o", kind="stable").drop(columns="_o")


def _print(tab: pd.DataFrame) -> None:
    fmt = {
        "truth": "{:.2f}".format,
        "bias": "{:+.3f}".format,
        "bias %": "{:+.2f}".format,
        "t(bias)": "{:+.2f}".format,
        "bias/SDy": "{:+.4f}".format,
        "RMSE": "{:.2f}".format,
        "SE/SD": "{:.3f}".format,
        "cover": "{:.3f}".format,
    }
    print(tab.to_string(index=False, formatters=fmt))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override a SimulationDesign field, e.g. --set zero_share=0 or "
        '--set \'waves={"2003": 0.3, "2006": 0.4, "2009": 0.3}\'',
    )
    args = ap.parse_args()
    # line-buffered so that a run in the background shows each table as it finishes
    sys.stdout.reconfigure(line_buffering=True)
    design = dict(DESIGN)
    for item in args.set:
        key, _, value = item.partition("=")
        val = json.loads(value)
        design[key] = {int(k): v for k, v in val.items()} if key == "waves" else val
    print(f"# mc_staggered  {datetime.now():%Y-%m-%d %H:%M}  reps={args.reps}  seed={args.seed}")
    print(f"# design: {design} (other SimulationDesign fields at their defaults)")
    if args.part in ("a", "all"):
        t0 = time.perf_counter()
        recs = replicate(
            lambda r, g: one_a(r, g, design),
            args.reps,
            rng=np.random.default_rng(args.seed),
            n_jobs=args.n_jobs,
            progress=False,
            desc="part A",
        )
        flat = [r for rep in recs for r in rep]
        sd_y = np.mean([r[7] for r in flat])
        print(f"\n## Part A: all estimators, PT in levels, outcome fdi (mean SD(fdi) = {sd_y:.1f})")
        order = [
            "TWFE static",
            "CS never-treated",
            "CS not-yet-treated",
            "Sun-Abraham",
            "Imputation",
            "Imputation leave-out",
        ]
        _print(summarise(flat, order))
        print(
            f"(coverage MC SE at 0.95: {np.sqrt(0.95 * 0.05 / args.reps):.4f}; "
            f"{time.perf_counter() - t0:.0f} s)"
        )
    if args.part in ("b", "all"):
        t0 = time.perf_counter()
        flat = []
        # common random numbers: every configuration sees the same simulated draws
        for label, (sim_kw, fit_kw) in CONFIGS_B.items():
            recs = replicate(
                lambda r, g, s=sim_kw, f=fit_kw, lab=label: one_b(r, g, design, s, f, lab),
                args.reps,
                rng=np.random.default_rng([args.seed, 1]),
                n_jobs=args.n_jobs,
                progress=False,
                desc=label,
            )
            flat += [r for rep in recs for r in rep]
        print("\n## Part B: covariate-specific trends (CS only; TWFE for reference)")
        order = list(dict.fromkeys(r[0] for r in flat))
        _print(summarise(flat, order))
        print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
