"""Repro 1 (inference, not point estimates): on the imputation base the default aux_partition
("onset_event_proportional": tau~ proportional to the equal-split intensity 1/n_z(t)) leaves most of
the spillover heterogeneity of a world where zones differ in size in the variance.
Noiseless world (every estimate exact): the SEs below are pure heterogeneity terms; for scale the
Monte Carlo SD of the same estimates in the noisy world (400 reps, mc_imputation_1.csv) is printed."""

import warnings

import pandas as pd
import world as w

from zoneimpact.estimators import spillover as sp

warnings.simplefilter("ignore")
geo = w.geography()
df, tau = w.simulate(geo, 1.0, 7, noise=False)
P = w.panel_of(df, geo)
mc = pd.read_csv("mc_imputation_1.csv").groupby("term").estimate.std()
rows = {}
for aux in [
    "onset_event_adaptive",
    "onset_event_proportional",
    "onset_event_intensity_proportional",
    "onset_event_intensity",
    "onset_event",
]:
    r = sp.fit(
        P,
        outcome="y",
        exposure="rings",
        rings_km=w.RINGS,
        covariates=["x"],
        weights="pop",
        rng=1,
        aux_partition=aux,
    )
    rows[aux] = r.terms.set_index("term").loc[
        ["direct", "spillover", "spillover_on_zones", "net", "displacement_share"], "se"
    ]
r = sp.fit(
    P,
    outcome="y",
    exposure="rings",
    rings_km=w.RINGS,
    covariates=["x"],
    weights="pop",
    rng=1,
    base_estimator="callaway_santanna",
)
rows["CS base (jackknife)"] = r.terms.set_index("term").loc[
    ["direct", "spillover", "spillover_on_zones", "net", "displacement_share"], "se"
]
out = pd.DataFrame(rows).T
out.loc["MC SD, noisy world, imputation"] = mc.reindex(out.columns).values
pd.set_option("display.width", 200)
print("SEs in the NOISELESS s=1 world (estimates exact to 1e-14):")
print(out.to_string(float_format="{:.4g}".format))
