"""Check C: Monte Carlo, default options (plus the brief's knn/weights/covariates).
usage: mc.py NREP [worlds...]  -> mc_<world>.csv, one row per replication x term."""

import collections
import json
import re
import sys
import time
import warnings

import numpy as np
import pandas as pd
from world import draw_panel, fit, make_design, make_panel, observed, truths

NREP = int(sys.argv[1])
WORLDS = sys.argv[2:] or ["s1", "s05", "null"]
SPEC = {"s1": (1.0, True), "s05": (0.5, True), "null": (0.0, False)}
TERMS = [
    "direct",
    "spillover",
    "net",
    "displacement_share",
    "spillover_on_zones",
    "spillover_from_sources",
    "direct_total",
    "spillover_total",
    "net_per_treated",
]
d = make_design()
for wname in WORLDS:
    s, eff = SPEC[wname]
    rows, warn_tally = [], collections.Counter()
    t0 = time.time()
    for r in range(NREP):
        seed = 100_000 * (1 + list(SPEC).index(wname)) + r
        fr = draw_panel(d, s, seed, effects=eff)
        tr = truths(d, fr)
        if not eff:
            tr = {k: (0.0 if not k.startswith("n_") else v) for k, v in tr.items()}
            tr["displacement_share"] = np.nan
        err = None
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                res = fit(make_panel(d, observed(fr)), rng=seed)
            except Exception as e:  # record and go on
                err = repr(e)
        for x in w:
            warn_tally[re.sub(r"[-+.e0-9]{2,}|\d", "#", str(x.message))[:110]] += 1
        if err:
            rows.append(dict(rep=r, term="ERROR", error=err))
            continue
        T = res.terms.set_index("term")
        aux = res.info.get("aux_models")
        for t in TERMS:
            if t not in T.index:
                continue
            rows.append(
                dict(
                    rep=r,
                    term=t,
                    truth=tr.get(t, np.nan),
                    estimate=T.loc[t, "estimate"],
                    se=T.loc[t, "se"],
                    ci_low=T.loc[t, "ci_low"],
                    ci_high=T.loc[t, "ci_high"],
                    p_value=T.loc[t, "p_value"],
                    df=T.loc[t, "df"],
                    aux_models=aux,
                    ratio_bias=res.info.get("displacement_share_ratio_bias")
                    if t == "displacement_share"
                    else np.nan,
                )
            )
        if r == 0:
            print(wname, "first rep", round(time.time() - t0, 2), "s", flush=True)
    pd.DataFrame(rows).to_csv(f"mc_{wname}.csv", index=False)
    with open(f"mc_{wname}_warnings.json", "w") as f:
        json.dump(warn_tally, f, indent=1)
    print(wname, "done", NREP, "reps in", round(time.time() - t0, 1), "s", flush=True)
