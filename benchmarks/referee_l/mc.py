"""Check C: Monte Carlo with default options. Usage: mc.py VARIANT NREP [worlds...]"""

import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import world

variant = sys.argv[1]
nrep = int(sys.argv[2])
START = int(os.environ.get("START", 0))
TAG = os.environ.get("TAG", "")
WORLDS = {
    "s=1": (1.0, False),
    "s=0.5": (0.5, False),
    "s=0": (0.0, False),
    "s=-0.5": (-0.5, False),
    "null": (0.0, True),
}
names = sys.argv[3:] or list(WORLDS)
des = world.make_design(variant=variant)
TERMS = [
    "direct",
    "spillover",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "direct_total",
    "spillover_total",
]
rows, wrows = [], []
t_start = time.time()
for wi, name in enumerate(names):
    s, null = WORLDS[name]
    tr = world.truths(des, s, null)
    ring_terms = [k for k in world.truths(des, 1.0) if k.startswith("spillover:")]
    for rep in range(START, START + nrep):
        rng = np.random.default_rng([2024, wi, rep])
        y = world.simulate(des, s, rng, null=null)
        f, g = world.to_frames(des, y)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = world.fit_world(des, f, g, rng=rep)
        for ww in w:
            wrows.append(
                dict(
                    world=name,
                    rep=rep,
                    category=ww.category.__name__,
                    message=str(ww.message)[:200],
                )
            )
        T = res.terms.set_index("term")
        for term in TERMS + ring_terms:
            if term not in T.index:
                continue
            r = T.loc[term]
            rows.append(
                dict(
                    variant=variant,
                    world=name,
                    rep=rep,
                    term=term,
                    truth=tr.get(term, 0.0 if null else np.nan),
                    estimate=r["estimate"],
                    se=r["se"],
                    ci_low=r["ci_low"],
                    ci_high=r["ci_high"],
                    p_value=r["p_value"],
                    df=r["df"],
                )
            )
        if rep % 50 == 0:
            print(f"{name} rep {rep} elapsed {time.time() - t_start:.0f}s", flush=True)
    pd.DataFrame(rows).to_csv(f"mc_{variant}{TAG}.csv", index=False)
    pd.DataFrame(wrows).to_csv(f"mc_{variant}{TAG}_warnings.csv", index=False)
print("done", time.time() - t_start)
