"""Check B: invariances on one noisy draw (rings world, s=0.5 and s=-0.5)."""

import sys
import warnings

import numpy as np
import pandas as pd
import world

variant = sys.argv[1] if len(sys.argv) > 1 else "rings"
s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
des = world.make_design(variant=variant)
rng = np.random.default_rng(777)
y = world.simulate(des, s, rng)
f, g = world.to_frames(des, y)
COLS = ["estimate", "std_error", "p_value", "conf_low", "conf_high"]
LEVEL_FREE = {"displacement_share"}


def tid(res):
    t = res.tidy().set_index("term")
    return t[COLS]


warnings.simplefilter("ignore")
base = tid(world.fit_world(des, f, g))
rows = []


def compare(name, other, scale=1.0, shift_ok=True):
    for term in base.index:
        for c in COLS:
            b = base.loc[term, c]
            o = other.loc[term, c] if term in other.index else np.nan
            sc = 1.0 if (term in LEVEL_FREE or c == "p_value") else scale
            rows.append(
                dict(
                    perturbation=name,
                    term=term,
                    col=c,
                    base=b,
                    other=o,
                    abs_diff=abs(o - sc * b),
                    rel_diff=abs(o - sc * b) / max(abs(sc * b), 1e-300),
                )
            )


# 1 shuffled rows
perm = np.random.default_rng(1).permutation(len(f))
compare(
    "shuffled_rows",
    tid(
        world.fit_world(des, f.iloc[perm].reset_index(drop=True), g.sample(frac=1, random_state=2))
    ),
)
# 2 relabelled unit ids (strings, permuted order)
relab = np.random.default_rng(3).permutation(des["n"])
newid = np.array([f"city_{k:03d}" for k in relab])
f2, g2 = world.to_frames(des, y, ids=newid)
compare("string_ids", tid(world.fit_world(des, f2, g2)))
# 3 y + 1000
f3 = f.copy()
f3["y"] = f3["y"] + 1000
compare("y_plus_1000", tid(world.fit_world(des, f3, g)))
# 4 y * 3
f4 = f.copy()
f4["y"] = f4["y"] * 3
compare("y_times_3", tid(world.fit_world(des, f4, g)), scale=3.0)
out = pd.DataFrame(rows)
out.to_csv(f"check_b_{variant}_s{s}.csv", index=False)
summ = (
    out.groupby(["perturbation", "col"])
    .agg(max_abs=("abs_diff", "max"), max_rel=("rel_diff", "max"))
    .unstack("col")
)
pd.set_option("display.width", 250)
print(summ.to_string(float_format=lambda v: f"{v:.1e}"))
bad = out[out.rel_diff > 1e-8]
print("entries with rel diff > 1e-8:")
print(bad.to_string() if len(bad) else "none")
