"""Check: the Dask spillover engine equals the in-memory fit on worlds with source zones.

Zones whose own gain is in no total (zones outside the sample, passed as ``sources=``, or
zone units of the panel without an estimated gain in a period) expose their neighbours;
the rows they alone expose go to ``spillover_from_sources`` and out of net and the
displacement share (``zoneimpact.estimators.spillover``, module notes). This script fits
the same worlds with ``zoneimpact.distributed.spillover`` and with the in-memory
``spillover.fit(..., small_sample="none", cluster="unit")`` and counts, per base:

* ``same``: the pieces table (targets, unidentified, by period, left-out periods), every
  term's estimate and SE (1e-8 relative and absolute), the notes (``net_note``,
  ``cs_sources_note``, ``net_unobserved_note``, ``share_note``) and the outcome's scale
  (``pre_mean``, ``outcome_sd``, 1e-12 relative) agree;
* ``differ``: both fit, something differs (printed);
* ``both_refuse`` / ``dask_only_refuse`` / ``mem_only_refuse``: an ``EstimationError``;
* ``with_unobserved_note``: fits (both engines fitted) whose in-memory result names exposed
  rows without an outcome (``net_unobserved_note``), so the note's comparison is not empty.

Worlds (``--worlds line``): 80 units on a line, each adjacent to the next (adjacency
map), 2000-2009, 14 zones opening 2001-2008 of which 3 are sources opening in 1995 or
1998 (before the data); outcomes with unit and year effects, +10 for an open zone, -5 per
open adjacent zone for a unit that is not (yet) a zone, noise N(0, 1); every other world
loses 5% of its rows at random; with ``--covariate`` outcomes add ``0.5 x_i (t - 2000)``
for a unit-level ``x_i`` ~ N(0, 1) and every fit takes ``covariates=["x"]``. Each world
is fitted under both bases, the three
``pre_exposed`` rules and both ``controls`` (12 fits). ``--worlds h``: referee H's world
(``benchmarks/mc_referee_h.py``: 300 cities, rings 0-50 km, ten zones opened in 1990),
both bases with its covariate ``x`` (session 44: the Dask imputation base takes covariates;
before, only the CS base took it).

Run:  python benchmarks/check_dask_spillover_sources.py [--worlds line] [--reps 40] [--seed 5]
      [--covariate]
      python benchmarks/check_dask_spillover_sources.py --worlds h --reps 30
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import zoneimpact.distributed as zd
from zoneimpact.errors import EstimationError
from zoneimpact.estimators import spillover
from zoneimpact.exposure import build_exposure
from zoneimpact.panel import Panel

YEARS = list(range(2000, 2010))
N = 80
UNITS = [f"u{i:02d}" for i in range(N)]
COLS = [
    "piece",
    "n_target_unit_periods",
    "n_unidentified",
    "unidentified_by_period",
    "left_out_periods",
]


def line_world(zones: dict[str, int], seed: int, trend: float = 0.0) -> pd.DataFrame:
    """Outcomes on the line (module notes)."""
    rng = np.random.default_rng(seed)
    a = {u: rng.normal() * 5 for u in UNITS}
    b = {t: rng.normal() for t in YEARS}
    # a unit-level covariate with its own trend, for ``--covariate``
    x = {u: rng.normal() for u in UNITS}
    rows = []
    for i, u in enumerate(UNITS):
        own = zones.get(u, np.inf)
        for t in YEARS:
            eff = 10.0 if t >= own else 0.0
            for j in (i - 1, i + 1):
                v = f"u{j:02d}"
                if v in zones and zones[v] <= t < own:
                    eff -= 5.0
            y = 100 + a[u] + b[t] + eff + trend * x[u] * (t - YEARS[0]) + rng.normal()
            rows.append(dict(unit=u, time=t, cohort=zones.get(u, np.nan), y=y, x=x[u]))
    return pd.DataFrame(rows)


def line_panel(df: pd.DataFrame, sources: dict[str, int]) -> Panel:
    """The panel without the ``sources`` units, which are passed as ``sources=``."""
    geo = pd.DataFrame({"unit": UNITS, "lat": 30.0, "lon": [0.3 * i for i in range(N)]})
    adj = pd.DataFrame({"unit": UNITS[:-1], "neighbour": UNITS[1:]})
    src = geo[geo["unit"].isin(sources)].assign(cohort=lambda d: d["unit"].map(sources))
    return Panel.from_frame(
        df[~df["unit"].isin(sources)], unit="unit", time="time", cohort="cohort",
        outcomes="y", covariates=["x"], geography=geo[~geo["unit"].isin(sources)], adjacency=adj,
        sources=src if len(src) else None, never_values=(),
    )  # fmt: skip


def dask_panel(p: Panel, outcome: str, covariates: tuple[str, ...] = ()) -> zd.DaskPanel:
    """The panel's rows as a Parquet file read back by the Dask engine (three partitions)."""
    folder = Path(tempfile.mkdtemp(prefix="zoneimpact_check_"))
    d = p.data[["unit", "time", "cohort", outcome, *covariates]].copy()
    d["cohort"] = d["cohort"].fillna(np.inf)
    d.to_parquet(folder / "part-0.parquet", index=False)
    return zd.read_panel(
        str(folder / "*.parquet"), unit="unit", time="time", outcomes=[outcome],
        cohort="cohort", covariates=list(covariates), never_values=(), npartitions=3,
    )  # fmt: skip


def compare(p: Panel, dp, emap, outcome: str, stats: dict, label: str, **opts) -> None:
    """Fit both engines with ``opts`` and count the outcome in ``stats``."""
    d = m = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = zd.spillover(dp, outcome=outcome, exposure=emap, n_boot=0, **opts)
        except EstimationError:
            pass
        try:
            m = spillover.fit(p, outcome=outcome, exposure=emap, n_boot=0, rng=0,
                              small_sample="none", cluster="unit", **opts)  # fmt: skip
        except EstimationError:
            pass
    if d is None or m is None:
        key = "both_refuse" if d is m else ("dask_only_refuse" if d is None else "mem_only_refuse")
        stats[key] += 1
        return
    a, b = d.terms.set_index("term"), m.terms.set_index("term")
    same = a.index.tolist() == [t for t in b.index if t != "net_region_did"] and all(
        np.allclose(a[c], b.loc[a.index, c], rtol=1e-8, atol=1e-8, equal_nan=True)
        for c in ("estimate", "se")
    )
    pieces = m.pieces[COLS].iloc[: len(d.pieces)]
    same = same and d.pieces[COLS].astype(str).equals(pieces.astype(str))
    notes = ("net_note", "cs_sources_note", "net_unobserved_note", "share_note")
    same = same and all(d.info.get(k) == m.info.get(k) for k in notes)
    same = same and all(
        np.isclose(d.info[k], m.info[k], rtol=1e-12, atol=0, equal_nan=True)
        for k in ("pre_mean", "outcome_sd")
    )
    stats["same" if same else "differ"] += 1
    stats["with_unobserved_note"] += "net_unobserved_note" in m.info
    if not same:
        print(f"DIFFER {label} {opts}\n{d.pieces[COLS]}\n{m.pieces[COLS]}")


def run_line(reps: int, seed: int, covariate: bool = False) -> dict[str, dict[str, int]]:
    rng = np.random.default_rng(seed)
    covs = ("x",) if covariate else ()
    stats = {b: dict.fromkeys(KEYS, 0) for b in BASES}
    for rep in range(reps):
        picked = rng.choice(N, 14, replace=False)
        zones = {UNITS[i]: int(rng.choice([2001, 2003, 2004, 2005, 2006, 2007, 2008]))
                 for i in picked}  # fmt: skip
        sources = {u: int(rng.choice([1995, 1998])) for u in list(zones)[:3]}
        zones.update(sources)
        df = line_world(zones, seed=rep, trend=0.5 if covariate else 0.0)
        if rep % 2:
            df = df.loc[rng.random(len(df)) >= 0.05]
        p = line_panel(df, sources)
        emap, dp = build_exposure(p, "adjacency"), dask_panel(p, "y", covs)
        for base, pre, ctl in itertools.product(BASES, PRE, CONTROLS):
            compare(p, dp, emap, "y", stats[base], f"line rep {rep}", base_estimator=base,
                    pre_exposed=pre, controls=ctl, covariates=list(covs) or None)  # fmt: skip
    return stats


def run_h(reps: int, seed: int) -> dict[str, dict[str, int]]:
    sys.path.insert(0, str(Path(__file__).parent))
    import mc_referee_h as h

    stats = {b: dict.fromkeys(KEYS, 0) for b in BASES}
    for rep in range(reps):
        _, df, geo, _, _ = h.build(rep, seed, "s0.5", "spec")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = h.make_panel(df, geo)
        emap, dp = build_exposure(p, "rings", rings_km=[(0, 50)]), dask_panel(p, "y", ("x",))
        for base in BASES:
            # both bases with the referee's covariate
            compare(p, dp, emap, "y", stats[base], f"h rep {rep}", base_estimator=base,
                    covariates=["x"])  # fmt: skip
    return stats


BASES = ("imputation", "callaway_santanna")
PRE = ("drop_rows", "drop_units", "keep")
CONTROLS = ("not_yet_exposed", "never_exposed")
KEYS = (
    "same",
    "differ",
    "both_refuse",
    "dask_only_refuse",
    "mem_only_refuse",
    "with_unobserved_note",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", choices=["line", "h"], default="line")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--covariate", action="store_true", help="line worlds: fit with x")
    args = ap.parse_args()
    if args.worlds == "line":
        stats = run_line(args.reps, args.seed, args.covariate)
    else:
        stats = run_h(args.reps, args.seed)
    for base, counts in stats.items():
        print(f"{args.worlds} worlds, base {base}: {counts}")


if __name__ == "__main__":
    main()
