"""Check B: invariance of the fit to shuffled rows, string ids, ``y + 1000`` and ``y x 2``.

Referee J (issue 14, session 46) wrote the world (``world.py``) from the package's public
docstrings only. One noisy draw of worlds s = 1, s = 0.5 and null; every term's estimate,
SE, interval and p-value is compared with the base fit (rescaled for ``y x 2``). Writes
``B_invariance.csv`` to the current directory and prints the largest relative differences.
"""

import warnings

import numpy as np
import pandas as pd
import world as w

warnings.simplefilter("ignore")
u, s = w.design()
lk = w.links(u, s)
out = []
for wn, share, tau0, seed in [
    ("s1", 1.0, 30.0, 11),
    ("s05", 0.5, 30.0, 12),
    ("null", 0.0, 0.0, 13),
]:
    eff, m, _, _ = w.effects(u, s, lk, share, tau0=tau0)
    Y = w.outcome(u, eff, np.random.default_rng(seed))
    df = w.frame(u, Y)
    base = w.do_fit(w.panel(u, s, df), seed=5).terms.set_index("term")
    us = u.sample(frac=1, random_state=3)
    ss = s.sample(frac=1, random_state=4)
    variants = {
        "shuffled": (w.panel(us, ss, df.sample(frac=1, random_state=7)), 1, 0),
        "string_ids": (w.panel(u, s, df, unit_as_str=True), 1, 0),
        "plus1000": (w.panel(u, s, df.assign(y=df.y + 1000)), 1, 0),
        "times2": (w.panel(u, s, df.assign(y=df.y * 2)), 2, 0),
    }
    for vn, (p, scale, _) in variants.items():
        T = w.do_fit(p, seed=5).terms.set_index("term")
        for term in base.index:
            sc = 1 if term == "displacement_share" else scale
            for col in ["estimate", "se", "ci_low", "ci_high", "p_value"]:
                b = base.loc[term, col]
                v = T.loc[term, col]
                if col in ("estimate", "se", "ci_low", "ci_high"):
                    b = b * sc
                d = abs(v - b) / max(abs(b), 1e-8) if np.isfinite(b) or np.isfinite(v) else 0.0
                if not (np.isnan(b) and np.isnan(v)):
                    out.append(
                        dict(
                            world=wn,
                            variant=vn,
                            term=term,
                            col=col,
                            base=b,
                            variant_val=v,
                            rel_diff=d,
                        )
                    )
o = pd.DataFrame(out)
o.to_csv("B_invariance.csv", index=False)
print(o.groupby(["world", "variant"]).rel_diff.max().unstack().to_string())
bad = o[o.rel_diff > 1e-6]
print(bad.to_string() if len(bad) else "no differences > 1e-6")
