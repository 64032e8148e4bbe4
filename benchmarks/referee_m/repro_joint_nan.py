"""Weighted fit: info['joint_source_total'] / ['joint_source_outside_part'] were NaN (finite
unweighted), while the note still reported the joint count. Since session 48 they are weighted
totals (this prints finite values for both fits)."""

import warnings

from world import draw_panel, fit, make_design, make_panel, observed

warnings.simplefilter("ignore")

d = make_design()
pan = make_panel(d, observed(draw_panel(d, 1.0, 7, noiseless=True)))
for wt in ["pop", None]:
    r = fit(pan, rng=0, weights=wt)
    print(
        wt,
        r.info["n_joint_source_unit_periods"],
        r.info["joint_source_total"],
        r.info["joint_source_outside_part"],
    )
