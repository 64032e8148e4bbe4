"""ExposureMap.intensity vs my own equal-split intensity (docstring formula) for both maps."""

import numpy as np
import world

for variant in ("rings", "knn"):
    des = world.make_design(variant=variant)
    y = world.simulate(des, 1.0, None, noise=False)
    f, g = world.to_frames(des, y)
    res = world.fit_world(des, f, g)
    ids = np.arange(1, des["n"] + 1)
    pk = res.exposure.intensity(ids, world.YEARS)
    pk = (
        pk.reindex(index=ids, columns=world.YEARS)
        if set(pk.index) >= set(ids)
        else pk.T.reindex(index=ids, columns=world.YEARS)
    )
    link = des["W"] > 0
    mine = np.zeros((des["n"], len(world.YEARS)))
    for ti, t in enumerate(world.YEARS):
        notz = des["cohort"] > t
        for z in np.where(np.isfinite(des["cohort"]) & (des["cohort"] <= t))[0]:
            m = link[z] & notz
            m[z] = False
            if m.sum():
                mine[m, ti] += 1.0 / m.sum()
    # docstring: "A zone unit's own zone does not count" -- my matrix already excludes it
    diff = np.abs(pk.values - mine)
    print(
        variant,
        "max |pkg - mine| =",
        np.nanmax(diff),
        " NaNs in pkg:",
        int(np.isnan(pk.values).sum()),
        " nonzero cells:",
        int((mine > 0).sum()),
    )
