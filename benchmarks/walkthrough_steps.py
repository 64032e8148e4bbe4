"""Issue 13's walk-through on mpdta: one fit, four aggregations and three variances, none
of which refits; prints each step's result and wall time.

    python benchmarks/walkthrough_steps.py [path/to/mpdta.csv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators import imputation, sun_abraham, twfe
from zoneimpact.parallel import set_progress

set_progress(False)
path = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/canonical/mpdta.csv")
frame = pd.read_csv(path)
frame["state"] = frame["countyreal"] // 1000  # FIPS: the county's state
panel = Panel.from_frame(
    frame,
    unit="countyreal",
    time="year",
    outcomes=["lemp"],
    cohort="first.treat",
    covariates=["lpop", "state"],
)


def step(label: str, func):
    t0 = time.perf_counter()
    out = func()
    ms = (time.perf_counter() - t0) * 1e3
    print(f"{label:<62} {ms:8.1f} ms")
    return out


res = step(
    "fit (ATT(g,t) + simple, 999 multiplier draws)",
    lambda: cs.fit(panel, outcome="lemp", rng=np.random.default_rng(1), aggregations=["simple"]),
)
print(res.tidy().round(5).to_string(index=False))
for kind in ("simple", "dynamic", "group", "calendar"):
    agg = step(f"aggregate({kind!r})", lambda kind=kind: res.aggregate(kind))
    print(
        "   ",
        ", ".join(
            f"{t}={e:.4f}({s:.4f})"
            for t, e, s in agg.terms[["term", "estimate", "se"]].itertuples(index=False)
        ),
    )
binned = step(
    "aggregate('dynamic', bins=[[-3,-2],[0,1],[2,3]])",
    lambda: res.aggregate("dynamic", bins=[[-3, -2], [0, 1], [2, 3]]),
)
print(
    "   ",
    binned.terms.set_index("term")
    .filter(like="event_bin", axis=0)[["estimate", "se"]]
    .round(5)
    .to_dict("index"),
)
state = frame.groupby("countyreal")["state"].first().rename("state")
a = step("with_inference('analytic')", lambda: res.with_inference("analytic"))
print(f"    att se {a.se:.5f}")
b = step(
    "with_inference('bootstrap', cluster='state')",
    lambda: res.with_inference("bootstrap", cluster="state"),
)
print(f"    att se {b.se:.5f}, {b.info['n_clusters']} clusters")
cohort = frame.groupby("countyreal")["first.treat"].first().rename("cohort")
two = step(
    "with_inference('analytic', cluster=[state, cohort])",
    lambda: res.with_inference("analytic", cluster=[state, cohort]),
)
print(f"    att se {two.se:.5f}")
tw = step(
    "twfe.fit (unit + year FE, clustered by county)",
    lambda: twfe.fit(panel, outcome="lemp", ssc="fixest"),
)
wild = step(
    "twfe with_inference('wild', cluster='state', 9999 draws)",
    lambda: tw.with_inference("wild", cluster="state", n_boot=9999, rng=1),
)
row = wild.terms.set_index("term").loc["att"]
print(
    f"    att {row['estimate']:.5f}, CR1 se {row['se']:.5f}, wild p {row['p_value']:.4f}, CI [{row['ci_low']:.4f}, {row['ci_high']:.4f}] over {wild.info['n_clusters']} states"
)

# the same three steps on the imputation estimator (Borusyak, Jaravel & Spiess 2024)
imp = step(
    "imputation.fit (BJS, event study, clustered by county)",
    lambda: imputation.fit(panel, outcome="lemp"),
)
for kind in ("simple", "dynamic", "group", "calendar"):
    agg = step(f"imputation aggregate({kind!r})", lambda kind=kind: imp.aggregate(kind))
    print(
        "   ",
        ", ".join(
            f"{t}={e:.4f}({s:.4f})"
            for t, e, s in agg.terms[["term", "estimate", "se"]].itertuples(index=False)
        ),
    )
by_state = step(
    "imputation with_inference('cluster', cluster='state')",
    lambda: imp.with_inference("cluster", cluster="state"),
)
print(f"    att {by_state.estimate:.5f}, se {by_state.se:.5f} (county: {imp.se:.5f})")

# and on Sun-Abraham's interaction-weighted estimator (Sun & Abraham 2021)
sa = step(
    "sun_abraham.fit (saturated regression, clustered by county)",
    lambda: sun_abraham.fit(panel, outcome="lemp"),
)
for kind in ("simple", "group", "calendar"):
    agg = step(f"sun_abraham aggregate({kind!r})", lambda kind=kind: sa.aggregate(kind))
    print(
        "   ",
        ", ".join(
            f"{t}={e:.4f}({s:.4f})"
            for t, e, s in agg.terms[["term", "estimate", "se"]].itertuples(index=False)
        ),
    )
two_sa = step(
    "sun_abraham with_inference('cluster', cluster='state')",
    lambda: sa.with_inference("cluster", cluster="state"),
)
print(f"    att {two_sa.estimate:.5f}, se {two_sa.se:.5f} (county: {sa.se:.5f})")
