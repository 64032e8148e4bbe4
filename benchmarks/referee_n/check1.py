import numpy as np
from sim import design, draw, fit_one, truths

d = design()
KEYS = [
    "direct",
    "spillover",
    "spillover:0-25km",
    "spillover:25-60km",
    "spillover_on_zones",
    "direct_total",
    "spillover_total",
    "spillover_on_zones_total",
    "net",
    "displacement_share",
]
for s, null in [(1.0, False), (0.5, False), (0.0, True)]:
    tr = truths(d, 0.0 if null else s)
    if null:
        tr = {k: 0.0 for k in KEYS}
        tr["displacement_share"] = np.nan
    res, w = fit_one(d, draw(d, s, 0, noise=False, null=null), 1)
    est = res.terms.set_index("term").estimate
    print(
        f"s={s} null={null}: max abs diff",
        max(abs(est[k] - tr[k]) for k in KEYS if k != "displacement_share" or not null),
    )
    for k in KEYS:
        print(f"   {k:26s} truth {tr[k]: .10g}  est {est[k]: .10g}  diff {est[k] - tr[k]: .2e}")
    if null:
        print("   share_note:", res.info.get("share_note"))
    # target counts
    p = res.pieces.set_index("piece")
    print(
        "   n targets pkg",
        p.n_target_unit_periods.to_dict(),
        "mine",
        tr.get("n_direct"),
        tr.get("n:0-25km"),
        tr.get("n:25-60km"),
        tr.get("n_soz"),
    )
