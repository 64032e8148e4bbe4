"""Monte Carlo: bias and placebo-SE coverage of SDID / SC / DID with one treated unit.

Two-factor DGP with the treated unit's loadings inside the donors' hull (SC and SDID
consistent, DID biased when loadings differ); true effect 5. Prints bias / outcome SD and,
for SDID, the coverage of the 95% placebo interval.

Run: python benchmarks/mc_sc.py [reps]   (default 500)
"""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, "tests")
from test_synthetic_did import factor_panel  # noqa: E402

from zoneimpact.estimators import synthetic_did as sdid  # noqa: E402
from zoneimpact.panel import Panel  # noqa: E402
from zoneimpact.parallel import set_progress  # noqa: E402

set_progress(False)


def main(reps: int = 500) -> None:
    rng = np.random.default_rng(20261122)
    est = {"sdid": [], "sc": [], "did": []}
    cover, sds = [], []
    for _ in range(reps):
        df = factor_panel(rng)
        sds.append(df["y"].std())
        p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
        for m in est:
            se_method = "placebo" if m == "sdid" else None
            r = sdid.fit(p, outcome="y", method=m, se_method=se_method, n_reps=50, rng=rng)
            est[m].append(r.estimate)
            if m == "sdid":
                cover.append(abs(r.estimate - 5.0) <= 1.96 * r.se)
    sd_y = float(np.mean(sds))
    for m, v in est.items():
        v = np.asarray(v)
        print(
            f"{m:5s} bias {v.mean() - 5:+.4f} ({(v.mean() - 5) / sd_y:+.4f} SD)  sd {v.std():.3f}"
        )
    print(f"SDID placebo 95% coverage: {np.mean(cover):.3f} over {reps} reps")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
