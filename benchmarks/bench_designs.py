"""Issue 16 designs: reference value, ours and the difference for each capability.

Reads ``benchmarks/reference/designs.json`` (peers run by
``benchmarks/reference/designs_reference.py``) and refits our estimators on mpdta with the
same constructed columns (``pop = exp(lpop)`` as weight, ``emp = exp(lemp)``). Prints one
line per capability with the headline number, the largest absolute difference over every
number compared (estimates and SEs), and the fit time. The peers do not run here (their
numbers come from the reference file), so each timed capability's ratio line says "no
peer" and gives zoneimpact / floor, the floor being ``bench_ratios.floor`` on the same
mpdta columns (county, year, outcome read into numpy and three passes; see
``benchmarks/_floor.py``), timed before the fits.

Run:  python benchmarks/bench_designs.py
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _floor import long_floor, ratio_line, time_floor  # noqa: E402
from conftest import CANONICAL  # noqa: E402

from zoneimpact import Panel  # noqa: E402
from zoneimpact.estimators import (  # noqa: E402
    bacon,
    callaway_santanna,
    etwfe,
    imputation,
    ppml,
    sun_abraham,
    twfe,
)

warnings.simplefilter("ignore")
REF = json.loads((REPO / "benchmarks" / "reference" / "designs.json").read_text())


def main() -> None:
    df = pd.read_csv(CANONICAL / "mpdta.csv")
    df = df.assign(
        pop=np.exp(df["lpop"]),
        emp=np.exp(df["lemp"]),
        state=df["countyreal"] // 1000,
        lpop_year=df["lpop"] * df["year"],
    )
    p = Panel.from_frame(
        df,
        unit="countyreal",
        time="year",
        cohort="first.treat",
        outcomes=["lemp", "emp"],
        covariates=["lpop", "pop", "state", "lpop_year"],
    )
    rows = []
    # one floor per outcome column read (the same mpdta rows, so the same size)
    floor_s = {
        y: time_floor(long_floor(df, "countyreal", "year", y), reps=5) for y in ("lemp", "emp")
    }

    def add(what, ref, ours, diffs, secs, outcome="lemp"):
        rows.append((what, ref, ours, max(diffs), secs, outcome))

    t0 = time.perf_counter()
    r = twfe.fit(p, outcome="lemp", covariates=["lpop_year"], weights="pop", ssc="fixest")
    R = REF["twfe_weighted"]["cluster_countyreal_pop"]
    add(
        "TWFE weights=pop (pyfixest)",
        R["att"],
        r.estimate,
        [abs(r.estimate - R["att"]), abs(r.se - R["se"])],
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    r = callaway_santanna.fit(p, outcome="lemp", weights="pop", bootstrap=False)
    R = REF["cs_weighted"]["never_unconditional"]
    t = r.terms.set_index("term")
    d = [
        abs(r.att_gt["estimate"] - R["att_gt"]["att"]).max(),
        abs(r.att_gt["se"] - R["att_gt"]["se"]).max(),
        abs(t.loc["att", "estimate"] - R["simple"]["att"]),
        abs(t.loc["att", "se"] - R["simple"]["se"]),
    ]
    add(
        "CS weights=pop (R did/moderndid)",
        R["simple"]["att"],
        r.estimate,
        d,
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    r = sun_abraham.fit(p, outcome="lemp", weights="pop")
    R = REF["sun_abraham_weighted"]["aggregates"]
    t = r.terms.set_index("term")
    d = [
        abs(t.loc["att" if k == "att" else f"event:{k}", c] - v[c2])
        for k, v in R.items()
        for c, c2 in (("estimate", "estimate"), ("se", "se"))
    ]
    add(
        "Sun-Abraham weights=pop (pyfixest)",
        R["att"]["estimate"],
        r.estimate,
        d,
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    r = ppml.fit(p, outcome="emp", weights="pop", ssc="fixest")
    R = REF["ppml_weighted"]["pop"]
    add(
        "PPML weights=pop (pyfixest fepois)",
        R["att"],
        r.estimate,
        [abs(r.estimate - R["att"]), abs(r.se - R["se"])],
        time.perf_counter() - t0,
        outcome="emp",
    )

    t0 = time.perf_counter()
    r = twfe.fit_event_study(p, outcome="lemp", ssc="fixest", bins=[[-4, -3], [0, 1], [2, 3]])
    R = REF["event_bins"]["two_period_bins_unweighted"]
    t = r.terms.set_index("term")
    d = [abs(t.loc[f"event:{e}", c] - v[c]) for e, v in R.items() for c in ("estimate", "se")]
    add(
        "Event study, 2-period bins (pyfixest)",
        R["0"]["estimate"],
        t.loc["event:0", "estimate"],
        d,
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    r = etwfe.fit(p, outcome="lemp", ssc="fixest")
    R = REF["etwfe"]["ols"]
    gt = r.att_gt.set_index(["cohort", "time"])
    d = [
        abs(gt.loc[(c["cohort"], c["time"]), k] - c[k2])
        for c in R["att_gt"]
        for k, k2 in (("estimate", "att"), ("se", "se"))
    ]
    d += [abs(r.estimate - R["overall"]["att"]), abs(r.se - R["overall"]["se"])]
    add("ETWFE linear (diff-diff)", R["overall"]["att"], r.estimate, d, time.perf_counter() - t0)
    t0 = time.perf_counter()
    r = etwfe.fit(p, outcome="lemp", covariates=["lpop"], ssc="fixest")
    R = REF["etwfe"]["ols_lpop"]
    gt2 = r.att_gt.set_index(["cohort", "time"])
    d = [
        abs(gt2.loc[(c["cohort"], c["time"]), k] - c[k2])
        for c in R["att_gt"]
        for k, k2 in (("estimate", "att"), ("se", "se"))
    ]
    d += [abs(r.estimate - R["overall"]["att"]), abs(r.se - R["overall"]["se"])]
    add(
        "ETWFE linear + lpop (diff-diff exovar)",
        R["overall"]["att"],
        r.estimate,
        d,
        time.perf_counter() - t0,
    )
    imp = imputation.fit(p, outcome="lemp")
    cell = imp.effects.groupby(["cohort", "time"])["tau"].mean()
    add(
        "ETWFE linear = imputation ATT(g,t)",
        float(cell.iloc[0]),
        float(gt["estimate"].iloc[0]),
        [float(np.abs(gt.loc[cell.index, "estimate"].to_numpy() - cell.to_numpy()).max())],
        0.0,
    )

    t0 = time.perf_counter()
    r = etwfe.fit(p, outcome="emp", method="poisson")
    R = REF["etwfe"]["poisson"]
    gt = r.att_gt.set_index(["cohort", "time"])
    d = [abs(gt.loc[(c["cohort"], c["time"]), "estimate"] - c["att"]) for c in R["att_gt"]]
    d += [abs(r.estimate - R["overall"]["att"]), abs(r.se - R["overall"]["se"])]
    add(
        "ETWFE Poisson, levels (diff-diff)",
        R["overall"]["att"],
        r.estimate,
        d,
        time.perf_counter() - t0,
        outcome="emp",
    )

    ft = df["first.treat"].replace({2004: 2003})
    pa = Panel.from_frame(
        df.assign(d=((ft > 0) & (df["year"] >= ft)).astype(int)),
        unit="countyreal",
        time="year",
        treatment="d",
        outcomes=["lemp"],
    )
    t0 = time.perf_counter()
    r = bacon.fit(pa, outcome="lemp")
    R = REF["bacon_always"]
    comp = r.comparisons
    d = [abs(r.estimate - R["twfe"])]
    for c in R["comparisons"]:
        if c["type"] == "treated_vs_never":
            m = comp[
                comp["type"].isin(["treated_vs_never", "later_vs_always"])
                & (comp["treated_cohort"] == c["treated"])
            ]
            d += [
                abs(m["weight"].sum() - c["weight"]),
                abs(m["weight"] @ m["estimate"] - c["weight"] * c["estimate"]),
            ]
    add(
        "Bacon, always treated (diff-diff, merged U)",
        R["twfe"],
        r.estimate,
        d,
        time.perf_counter() - t0,
    )
    print(
        f"later_vs_always: weight {r.info['weight_later_vs_always']:.6f}, "
        f"estimate {r.info['estimate_later_vs_always']:.6f}"
    )

    print(f"{'capability':46s} {'reference':>12s} {'ours':>12s} {'max |diff|':>10s} {'secs':>6s}")
    for what, ref, ours, diff, secs, _ in rows:
        print(f"{what:46s} {ref:12.7f} {ours:12.7f} {diff:10.1e} {secs:6.2f}")
    for what, _, _, _, secs, outcome in rows:
        if secs > 0:  # the imputation cross-check row is not timed
            note = "peer numbers read from reference/designs.json, not run here"
            print(ratio_line(what, secs, {}, floor_s[outcome], note=note))


if __name__ == "__main__":
    main()
