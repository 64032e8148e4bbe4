"""Why the displacement share's truth is above 1 at s = 1 in referee J's world.

Referee J (issue 14, session 46) wrote the world (``world.py``) from the package's public
docstrings only. Counts the zones with a source (a zone outside the panel) among their 3
nearest places, and splits ``share - 1`` at s = 1 into the sources' losses inside the ring
and on-zone targets and the sample zones' own draws. Prints only.
"""

import numpy as np
import pandas as pd
import world as w

u, s = w.design()
lk = w.links(u, s)
# zones whose 3 nearest places include a source (slot taken)
places = pd.concat([u[["unit", "lat", "lon", "cohort"]], s[["unit", "lat", "lon", "cohort"]]])
zs = places[np.isfinite(places.cohort)]
n_slot = 0
for _, z in zs.iterrows():
    d = w.haversine(z.lat, z.lon, places.lat.values, places.lon.values)
    d[places.unit.values == z.unit] = np.inf
    nn = places.unit.values[np.argsort(d)[:3]]
    n_slot += any(x in set(s.unit) for x in nn)
print("zones with a source among their 3 nearest places:", n_slot)
# decomposition of share - 1 under s=1: source-attributed losses in ring targets, and untaken gains
eff_all, m, _, _ = w.effects(u, s, lk, 1.0)
# the same world without the sources' draws
eff_nosrc, _, _, _ = w.effects(u, s, lk[~lk.zone_is_src], 1.0)
src_part = eff_all - eff_nosrc
tr, _ = w.truths(eff_all, m)
D = eff_all[m["direct"]].sum()
print("share truth", tr["displacement_share"])
print(
    "source-driven losses inside ring targets / direct_total:",
    -src_part[m["ring"]].sum() / D,
    "inside spillover_on_zones targets:",
    -src_part[m["on_zones"]].sum() / D,
)
print(
    "sample zones' own draws (ring+on_zones) / direct_total:",
    -(eff_nosrc[m["ring"]].sum() + eff_nosrc[m["on_zones"]].sum()) / D,
)
