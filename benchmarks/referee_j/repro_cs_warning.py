"""The CS base's "drop them from the panel" warning on a balanced panel (referee J).

Referee J (issue 14, session 46) wrote the world (``world.py``) from the package's public
docstrings only. Fits the noiseless s = 1 world with ``base_estimator="callaway_santanna"``
and prints any "one period only" warning, the exposure rows of units 92 and 12 and the
fit's ``cs_sources_note``.
"""

import warnings

import world as w

u, s = w.design()
lk = w.links(u, s)
eff, m, _, _ = w.effects(u, s, lk, 1.0)
df = w.frame(u, w.outcome(u, eff, None, noise=False))
print("user panel balanced:", df.groupby("city").size().eq(13).all(), "rows", len(df))
with warnings.catch_warnings(record=True) as W:
    warnings.simplefilter("always")
    r = w.do_fit(w.panel(u, s, df), seed=1, base_estimator="callaway_santanna")
for x in W:
    if "one period only" in str(x.message):
        print(x.category.__name__, str(x.message))
t = r.exposure.table
so = r.exposure.sample_onset()
for unit in [92, 12]:
    print(unit, t.loc[unit, ["role", "cohort", "exposure_onset"]].to_dict(), "e_est", so.loc[unit])
print(r.info.get("cs_sources_note"))
