import csv
import sys
import time

import numpy as np
from sim import design, draw, fit_one, truths

world, nrep = sys.argv[1], int(sys.argv[2])
s = {"null": 0.0, "s1": 1.0, "s05": 0.5}[world]
null = world == "null"
off = {"null": 0, "s1": 100000, "s05": 200000}[world]
d = design()
tr = truths(d, s)
if null:
    tr = {k: (0.0 if not isinstance(v, int) else v) for k, v in tr.items()}
    tr["displacement_share"] = np.nan
suffix = sys.argv[3] if len(sys.argv) > 3 else ""
out = open(f"mc_{world}{suffix}.csv", "w", newline="")
wr = csv.writer(out)
wr.writerow(
    [
        "world",
        "rep",
        "term",
        "estimate",
        "se",
        "df",
        "ci_low",
        "ci_high",
        "p_value",
        "truth",
        "n_warn",
        "warn_kinds",
        "secs",
    ]
)
t00 = time.time()
for rep in range(nrep):
    t0 = time.time()
    frame = draw(d, s, off + rep, noise=True, null=null)
    try:
        res, w = fit_one(d, frame, off + rep)
    except Exception as e:
        wr.writerow(
            [
                world,
                rep,
                "ERROR",
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                0,
                repr(e)[:300],
                time.time() - t0,
            ]
        )
        out.flush()
        continue
    kinds = "|".join(sorted(set(x[:60] for x in w)))
    for _, r in res.terms.iterrows():
        wr.writerow(
            [
                world,
                rep,
                r.term,
                r.estimate,
                r.se,
                r.df,
                r.ci_low,
                r.ci_high,
                r.p_value,
                tr.get(r.term, np.nan),
                len(w),
                kinds,
                round(time.time() - t0, 3),
            ]
        )
    out.flush()
    if rep % 25 == 0:
        print(world, rep, round(time.time() - t00, 1), flush=True)
print("done", world, time.time() - t00, flush=True)
