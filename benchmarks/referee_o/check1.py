"""Noiseless check: no shocks, no noise, effects on; the default fit must hit every truth.

Run: ``python check1.py [NREP]`` (default 3 replications per world). Prints, per world and
term, the largest absolute error of the estimate against the truth computed from the
simulated potential outcomes, relative to max(1, |truth|).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim  # noqa: E402

TERMS = (
    "direct",
    "spillover",
    "spillover:adjacent",
    "direct_total",
    "spillover_total",
    "spillover_on_zones",
    "spillover_on_zones_total",
    "net",
    "net_per_treated",
    "displacement_share",
)


def main(nrep: int = 3) -> float:
    worst = 0.0
    for world in ("s-0.5", "s0", "s0.5", "null"):
        errs: dict[str, float] = {}
        for rep in range(nrep):
            frame, truth = sim.simulate(world, rep, noiseless=True)
            assert truth["_outside"] == 0.0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res, _ = sim.fit(frame, seed=rep)
            for w in caught:
                print(f"  warning [{world} rep {rep}]: {str(w.message)[:200]}")
            est = res.terms.set_index("term")["estimate"]
            for term in TERMS:
                tr = truth[term.split(":")[0]]
                if term not in est.index:
                    print(f"  {world} rep {rep}: term {term} missing")
                    continue
                if np.isnan(tr) and np.isnan(est[term]):
                    errs.setdefault(term, 0.0)
                    continue
                e = abs(est[term] - tr) / max(1.0, abs(tr))
                errs[term] = max(errs.get(term, 0.0), e)
            if world == "null":
                print(f"  null rep {rep}: share_note = {res.info.get('share_note')}")
        print(world, " ".join(f"{k}={v:.1e}" for k, v in errs.items()))
        worst = max(worst, max(errs.values()))
    print(f"max relative error over worlds and terms: {worst:.2e}")
    return worst


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
