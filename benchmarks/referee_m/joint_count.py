"""Count ring/soz targets exposed by a counted sample zone AND an uncounted zone (source or sample zone without estimated gain then)."""

import numpy as np
from world import YEARS, draw_panel, make_design

d = make_design()
fr = draw_panel(d, 1.0, 7, noiseless=True)
u, src, links = d["units"], d["sources"], d["links"]
n, T = len(u), len(YEARS)
cohort = u["cohort"].to_numpy()
obs = fr["obs"].to_numpy().reshape(n, T)
zc = {int(z): cohort[z] for z in np.where(np.isfinite(cohort))[0]}
for _, r in src.iterrows():
    zc[int(r.city)] = r.cohort
S = set(src.city.astype(int))
lk = {i: [] for i in range(n)}
for _, r in links.iterrows():
    lk[int(r.unit)].append(int(r.zone))
onset = {i: min([zc[z] for z in lk[i] if z != i], default=np.inf) for i in range(n)}
hu = {z: (obs[z] & (YEARS < min(cohort[z], onset[z]))).any() for z in zc if z not in S}


def cnt(z, ti):
    return z not in S and obs[z, ti] and hu[z]


nj = 0
for i in range(n):
    for ti, t in enumerate(YEARS):
        if not obs[i, ti] or (np.isfinite(cohort[i]) and t >= cohort[i]):
            continue
        oz = [z for z in lk[i] if z != i and zc[z] <= t]
        if any(cnt(z, ti) for z in oz) and any(not cnt(z, ti) for z in oz):
            nj += 1
print("joint (broad definition):", nj)
