"""Check C: Monte Carlo of the spillover fit (imputation base) in referee J's world.

Referee J (issue 14, session 46) wrote the world (``world.py``) from the package's public
docstrings only.

Usage: python mc.py WORLD NREP   (WORLD: s1, s05, s0 or null)

World ``sK`` lets every open zone take share K of its gain from its linked non-zone units;
``null`` has no gains. Replication ``rep`` draws the noise from
``default_rng([world id, rep])`` and fits with ``rng=rep``. Writes ``mc_WORLD.csv`` (one row
per replication and term: truth, estimate, SE, intervals, p-value, seconds) and
``mc_WORLD_warnings.csv`` (warning counts) to the current directory; ``analyse.py``
summarises them.
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd
import world as w

world_name = sys.argv[1]
nrep = int(sys.argv[2])
share = {"s1": 1.0, "s05": 0.5, "s0": 0.0, "null": 0.0}[world_name]
tau0 = 0.0 if world_name == "null" else 30.0
u, s = w.design()
lk = w.links(u, s)
eff, m, _, _ = w.effects(u, s, lk, share, tau0=tau0)
tr, cnt = w.truths(eff, m)
TERMS = [
    "direct",
    "spillover",
    "net",
    "displacement_share",
    "direct_total",
    "spillover_total",
    "spillover_on_zones_total",
    "spillover_from_sources",
]
rows = []
wcount = {}
for rep in range(nrep):
    rng = np.random.default_rng([{"s1": 1, "s05": 2, "s0": 3, "null": 4}[world_name], rep])
    Y = w.outcome(u, eff, rng, noise=True)
    p = w.panel(u, s, w.frame(u, Y))
    t0 = time.time()
    with warnings.catch_warnings(record=True) as W:
        warnings.simplefilter("always")
        try:
            r = w.do_fit(p, seed=rep)
        except Exception as ex:
            rows.append(dict(rep=rep, term="ERROR", estimate=np.nan, err=repr(ex)))
            continue
    dt = time.time() - t0
    for ww in W:
        key = str(ww.message)[:90]
        wcount[key] = wcount.get(key, 0) + 1
    T = r.terms.set_index("term")
    ci = r.conf_int()
    for k in TERMS:
        if k not in T.index:
            continue
        rows.append(
            dict(
                rep=rep,
                term=k,
                truth=tr[k],
                estimate=T.loc[k, "estimate"],
                se=T.loc[k, "se"],
                ci_low=T.loc[k, "ci_low"],
                ci_high=T.loc[k, "ci_high"],
                ci_low_ci=ci.loc[k].iloc[0],
                ci_high_ci=ci.loc[k].iloc[1],
                p_value=T.loc[k, "p_value"],
                sec=dt,
            )
        )
    if rep % 25 == 0:
        print(world_name, rep, round(dt, 2), flush=True)
pd.DataFrame(rows).to_csv(f"mc_{world_name}.csv", index=False)
pd.Series(wcount).to_csv(f"mc_{world_name}_warnings.csv")
print("done", world_name)
