"""Repro 1b (control for repro 1): in a noiseless world whose per-unit loss follows the package's
equal-split model exactly (tau_jt = -c * sum_z 1/n_z(t), n_z(t) linked not-yet-zone units), the default
aux_partition's heterogeneity SE for the spillover should be ~0, and onset_event's not."""

import warnings

import numpy as np
import world as w

from zoneimpact.estimators import spillover as sp

warnings.simplefilter("ignore")
geo = w.geography()
df, tau_w = w.simulate(geo, 0.0, 7, noise=False)  # direct gains only
coh = geo.cohort.values
D, ring = w.links(geo)
years = np.arange(w.T0, w.T1 + 1)
tau_s = np.zeros_like(tau_w)
for ti, t in enumerate(years):
    zone_now = coh <= t
    for z in np.where(np.isfinite(coh))[0]:
        if coh[z] > t:
            continue
        lk = (ring[:, z] >= 0) & ~zone_now
        if lk.any():
            tau_s[lk, ti] -= 3.0 / lk.sum()
df["y"] = df["y"] + tau_s.ravel()  # df rows are unit-major, year-minor like tau
P = w.panel_of(df, geo)
tr = w.truths(geo, tau_w + tau_s)
for aux in ["onset_event_proportional", "onset_event"]:
    r = sp.fit(
        P,
        outcome="y",
        exposure="rings",
        rings_km=w.RINGS,
        covariates=["x"],
        rng=1,
        aux_partition=aux,
    )  # unweighted
    T = r.terms.set_index("term")
    print(
        f"{aux:26s} spillover est {T.loc['spillover', 'estimate']:.6f} (truth, unweighted mean, printed below) SE {T.loc['spillover', 'se']:.4g}"
        f"  spillover_on_zones SE {T.loc['spillover_on_zones', 'se']:.4g}"
    )
m = (~np.isfinite(coh))[:, None] & (years[None, :] >= w.roles(geo)[0][:, None])
print("unweighted truth of spillover:", (tau_s[m]).mean())
