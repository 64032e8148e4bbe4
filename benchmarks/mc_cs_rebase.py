"""Monte Carlo: the CS base with zone units exposed before their own zone (session 42).

Under ``pre_exposed="drop_rows"`` such a unit's rows from its exposure onset until its zone
opens leave the direct piece. The CS base now puts it in the cohort that follows its last
untreated observed period (``zoneimpact.estimators.spillover._rebased_direct``), so its
targets are long differences from there; before, CS's missing-at-random reading gave them
its cohort-mates' ATT(g,t). This script measures both bases on worlds where that matters.

Worlds: 80 units on a line (each adjacent to the next; adjacency exposure), 2000-2011,
eight regions of ten units. Each replication draws 6 "leader" zones opening 2002-2006 and,
next to each, a "follower" zone opening 1-4 years later (so exposed before its own zone),
plus 4 lone zones opening 2003-2009. Effects: a zone gains ``10 + 4 * u`` a year (``u``
uniform on [0, 1] per zone); every unit, zone or not, loses 5 a year per open adjacent zone
for as long as that zone is open (so a follower keeps losing to its leader after it opens,
and its effect differs from its cohort-mates'). Outcomes add unit and year effects and
N(0, ``--noise``\\ ²) noise; ``--missing`` blanks that share of rows at random.

Truth: the world's realised effects on the fit's own targets: the direct total is the sum
of the zone unit-periods' effects (each zone's gain less its losses to open neighbours), net
adds every exposed non-zone and pre-zone unit-period's loss, the displacement share is
``1 - net / direct_total``; with ``--missing`` the sums run over observed rows, and a loss
counts only where an adjacent zone open then has an estimated gain (its outcome observed
then): the others are ``spillover_from_sources``, which net leaves out with their zones'
gains (session 43; session 42's truth counted them, a 10% bias in every base's spillover
total at ``--missing 0.1`` that was the truth's). Reported per
term and base: bias, SD, mean SE / SD and 95% coverage (normal intervals, estimate +- 1.96
SE), for the imputation base and the CS base's analytic SEs (unit clusters, no small-sample
correction) and the CS base's delete-one-cluster jackknife (unit clusters).

Run:  python benchmarks/mc_cs_rebase.py [--reps 200] [--seed 42] [--noise 2] [--missing 0]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from zoneimpact.estimators import spillover
from zoneimpact.panel import Panel

N = 80
YEARS = list(range(2000, 2012))
UNITS = [f"u{i:02d}" for i in range(N)]
TERMS = ["direct", "direct_total", "spillover_total", "net", "displacement_share"]
Z = 1.959963984540054  # normal 97.5% quantile: intervals estimate +- Z * SE


def draw_zones(rng: np.random.Generator) -> dict[int, int]:
    """Zone positions on the line and their opening years (module notes)."""
    zones: dict[int, int] = {}
    slots = rng.permutation(np.arange(2, N - 3, 4))
    for s in slots[:6]:
        lead = int(rng.integers(2002, 2007))
        zones[int(s)] = lead
        zones[int(s) + 1] = lead + int(rng.integers(1, 5))
    for s in slots[6:10]:
        zones[int(s)] = int(rng.integers(2003, 2010))
    return zones


def world(zones: dict[int, int], rng: np.random.Generator, noise: float) -> pd.DataFrame:
    """Outcomes (``y``), their true effects (``eff``) and the noise-free outcome (``y0``)."""
    a = rng.normal(0, 5, N)
    b = rng.normal(0, 1, len(YEARS))
    gain = {i: 10.0 + 4.0 * rng.uniform() for i in zones}
    rows = []
    for i, u in enumerate(UNITS):
        own = zones.get(i, np.inf)
        for k, t in enumerate(YEARS):
            eff = gain[i] if t >= own else 0.0
            eff -= 5.0 * sum(zones.get(j, np.inf) <= t for j in (i - 1, i + 1))
            cohort = zones.get(i, np.nan)
            rows.append(dict(unit=u, time=t, cohort=cohort, eff=eff, y0=100 + a[i] + b[k] + eff))
    df = pd.DataFrame(rows)
    return df.assign(y=df["y0"] + rng.normal(0, noise, len(df)))


def panel(df: pd.DataFrame, outcome: str) -> Panel:
    geo = pd.DataFrame({"unit": UNITS, "lat": 30.0, "lon": [0.3 * i for i in range(N)],
                        "region": [f"R{i // 10}" for i in range(N)]})  # fmt: skip
    adj = pd.DataFrame({"unit": UNITS[:-1], "neighbour": UNITS[1:]})
    d = df.rename(columns={outcome: "out"})[["unit", "time", "cohort", "out"]]
    return Panel.from_frame(d, unit="unit", time="time", cohort="cohort", outcomes="out",
                            geography=geo, adjacency=adj, never_values=())  # fmt: skip


def counted_losses(df: pd.DataFrame) -> np.ndarray:
    """Rows (in ``df``'s order) whose loss the fit counts: exposed by an adjacent zone that
    is open then with an estimated gain (its outcome observed then, and an observed row
    before both its zone and its exposure, under ``pre_exposed="drop_rows"``). The others
    are ``spillover_from_sources`` (their zones' gains are in no total), which net leaves
    out; they occur only with ``--missing``."""
    n_t = len(YEARS)
    seen = df["y"].notna().to_numpy().reshape(N, n_t)
    g = df["cohort"].to_numpy(float).reshape(N, n_t)[:, 0]
    t = np.asarray(YEARS, float)[None, :]
    g_pad = np.concatenate([[np.inf], np.where(np.isnan(g), np.inf, g), [np.inf]])
    onset = np.minimum(g_pad[:-2], g_pad[2:])  # the first adjacent zone's opening
    untreated = (seen & (t < np.minimum(g, onset)[:, None])).any(axis=1)
    gain = seen & (t >= g[:, None]) & untreated[:, None]
    gain_pad = np.vstack([np.zeros(n_t, bool), gain, np.zeros(n_t, bool)])
    return (gain_pad[:-2] | gain_pad[2:]).ravel()


def truths(df: pd.DataFrame) -> dict[str, float]:
    """The realised totals over the observed rows (module notes), losses only where the
    fit counts them (:func:`counted_losses`)."""
    observed = df["y"].notna().to_numpy()
    seen, counted = df[observed], counted_losses(df)[observed]
    zone = seen["cohort"].notna()
    after = zone & (seen["time"] >= seen["cohort"])
    d_tot = float(seen.loc[after, "eff"].sum())
    losses = float(seen.loc[~after & counted, "eff"].sum())
    net = d_tot + losses
    return {"direct": d_tot / int(after.sum()), "direct_total": d_tot,
            "spillover_total": float(seen.loc[~zone & counted, "eff"].sum()), "net": net,
            "displacement_share": 1 - net / d_tot}  # fmt: skip


def fit(p: Panel, **kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(p, outcome="out", exposure="adjacency", n_boot=0, rng=0,
                            cluster="unit", **kw)  # fmt: skip
    t = res.terms.set_index("term")
    return t.loc[TERMS, ["estimate", "se"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--noise", type=float, default=2.0)
    ap.add_argument("--missing", type=float, default=0.0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, start = [], time.perf_counter()
    for rep in range(args.reps):
        df = world(draw_zones(rng), rng, args.noise)
        if args.missing:
            df.loc[rng.uniform(size=len(df)) < args.missing, "y"] = np.nan
        truth = truths(df)
        noisy = panel(df, "y")
        bases = {
            "imputation": fit(noisy, small_sample="none"),
            "cs analytic": fit(noisy, base_estimator="callaway_santanna", small_sample="none"),
            "cs jackknife": fit(noisy, base_estimator="callaway_santanna"),
        }
        for how, f in bases.items():
            rows += [{"rep": rep, "how": how, "term": term, "truth": truth[term],
                      "estimate": f.at[term, "estimate"], "se": f.at[term, "se"],
                      "cover": float(abs(f.at[term, "estimate"] - truth[term])
                                     <= Z * f.at[term, "se"])}
                     for term in TERMS]  # fmt: skip
    raw = pd.DataFrame(rows)
    raw["err"] = raw["estimate"] - raw["truth"]
    tab = raw.groupby(["how", "term"], sort=False).agg(
        truth=("truth", "mean"), bias=("err", "mean"), sd=("err", "std"), se=("se", "mean"),
        coverage=("cover", "mean"),
    )  # fmt: skip
    tab["bias/truth"] = tab["bias"] / tab["truth"].abs()
    tab["se/sd"] = tab["se"] / tab["sd"]
    print(tab[["truth", "bias", "bias/truth", "sd", "se/sd", "coverage"]].round(4).to_string())
    print(f"# {args.reps} worlds, seed {args.seed}, noise {args.noise}, missing "
          f"{args.missing}, {time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
