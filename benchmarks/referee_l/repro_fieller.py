"""D: null world, rep 27: share's p_value < 0.05 but its reported interval is (-inf, inf)."""

import warnings

import numpy as np
import world
from scipy import stats

des = world.make_design(variant="rings")
rng = np.random.default_rng([2024, 4, 27])  # world index 4 = null, rep 27 (as mc.py)
y = world.simulate(des, 0.0, rng, null=True)
f, g = world.to_frames(des, y)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    res = world.fit_world(des, f, g, rng=27)
for ww in w:
    print("WARNING:", str(ww.message)[:300])
T = res.terms.set_index("term")
print(
    T.loc[
        [
            "direct_total",
            "spillover_total",
            "spillover_on_zones_total",
            "net",
            "displacement_share",
        ],
        ["estimate", "se", "df", "ci_low", "ci_high", "p_value"],
    ].to_string()
)
print("info fieller:", res.info.get("displacement_share_fieller"))
print("info percentile ci:", res.info.get("displacement_share_percentile_ci"))
# Fieller set by hand from info (num = net, den = direct_total, var_num, var_den, cov), ratio r = net/D,
# share = 1 - r; share = 0 <=> r = 1.

num, den, vnn, vdd, cnd = res.info["displacement_share_fieller"][:5]
c2 = stats.t.ppf(0.975, T.loc["displacement_share", "df"]) ** 2
a, b, c = den**2 - c2 * vdd, -2 * (num * den - c2 * cnd), num**2 - c2 * vnn


def q(r):  # r in the Fieller set iff q(r) <= 0
    return a * r**2 + b * r + c


print(
    f"a={a:.4g} (<0: unbounded set), q(r=1 i.e. share=0) = {q(1.0):.4g}  -> share 0 in set: {q(1.0) <= 0}"
)
disc = b * b - 4 * a * c
if disc > 0:
    r1, r2 = sorted([(-b - disc**0.5) / (2 * a), (-b + disc**0.5) / (2 * a)])
    print(
        f"set for r: (-inf, {r1:.4g}] U [{r2:.4g}, inf) -> share: (-inf, {1 - r2:.4g}] U [{1 - r1:.4g}, inf); reported hull (-inf, inf)"
    )
