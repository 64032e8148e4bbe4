"""Pure relocation (each zone takes exactly its own gain from its k=2 nearest places),
one panel zone and one source zone side by side: the reported displacement_share is not 1.

Referee J's smallest reproduction (issue 14, session 46; written from the public docstrings
only; self-contained, it does not use ``world.py``). Prints the links, the terms and the
pieces.
"""

import warnings

import numpy as np
import pandas as pd

from zoneimpact.estimators.spillover import fit
from zoneimpact.panel import Panel

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
P = np.arange(1996, 2021, 2)
n = 60
lat = np.r_[30.0, 30.02, 30.0, rng.uniform(25, 35, n - 3)]
lon = np.r_[110.0, 110.0, 110.02, rng.uniform(105, 115, n - 3)]
geo = pd.DataFrame(
    dict(unit=np.arange(1, n + 1), region=[f"R{i % 4}" for i in range(n)], lat=lat, lon=lon)
)
cohort = np.full(n, np.inf)
cohort[0] = 2006  # unit 1 is the panel zone
# source between 1 and 2/3
src = pd.DataFrame(dict(unit=[999], cohort=[2006.0], region=["R0"], lat=[30.0], lon=[110.01]))
# k=2 nearest places: zone 1 -> {source 999, unit 2 or 3}; source 999 -> {unit 1, unit 2 or 3}
Y = 100 + np.arange(n)[:, None] + 2.0 * (P - 1996)[None, :]
open_ = P >= 2006
Y[0, open_] += 30  # zone 1 gains 30
r0 = fit(
    Panel.from_frame(
        pd.DataFrame(
            dict(
                city=np.repeat(geo.unit, len(P)),
                year=np.tile(P, n),
                y=Y.ravel(),
                g=np.repeat(np.where(np.isfinite(cohort), cohort, 0), len(P)),
            )
        ),
        unit="city",
        time="year",
        outcomes="y",
        cohort="g",
        geography=geo,
        sources=src,
    ),
    outcome="y",
    exposure="knn",
    k_nearest=2,
    rng=1,
)
L = r0.exposure.links
print(L)
# pure relocation: each open zone takes 30 from its linked panel units that are not zones (equal split)
Y2 = Y.copy()
pos = {u: i for i, u in enumerate(geo.unit)}
for _z, grp in L.groupby("zone"):
    rows = [pos[u] for u in grp.unit if not np.isfinite(cohort[pos[u]])]
    for i in rows:
        Y2[i, open_] -= 30 / len(rows)
d = pd.DataFrame(
    dict(
        city=np.repeat(geo.unit, len(P)),
        year=np.tile(P, n),
        y=Y2.ravel(),
        g=np.repeat(np.where(np.isfinite(cohort), cohort, 0), len(P)),
    )
)
r = fit(
    Panel.from_frame(
        d, unit="city", time="year", outcomes="y", cohort="g", geography=geo, sources=src
    ),
    outcome="y",
    exposure="knn",
    k_nearest=2,
    rng=1,
)
print(
    r.terms.set_index("term").loc[
        ["direct_total", "spillover_total", "net", "displacement_share"], "estimate"
    ]
)
print(r.pieces[["piece", "estimate", "total", "n_target_unit_periods"]])
