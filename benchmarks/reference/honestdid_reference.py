"""Reference numbers for tests/test_honest.py from the Python ``honestdid`` package.

Run:  python benchmarks/reference/honestdid_reference.py   (needs ``pip install honestdid``)

Input: the Benzarti & Carloni (2019) event study shipped with R HonestDiD as
``BCdata_EventStudy`` (4 pre-periods, 4 post-periods, reference period excluded). The
numbers below are the values printed by the Stata port's ``_honestExampleBCBeta()`` /
``_honestExampleBCSigma()`` (mcaceresb/stata-honestdid, src/mata/utilities.mata), i.e. R's
data rounded to 7 significant digits.

The script prints our numbers next to honestdid's for the grids the tests use, so the
committed reference values in the tests can be regenerated and audited.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

_BC = json.loads((Path(__file__).with_name("bc_event_study.json")).read_text())
BC_BETA = np.array(_BC["betahat"])
BC_SIGMA = np.array(_BC["sigma"])


def main() -> None:
    import honestdid

    print("honestdid", honestdid.__version__)
    l_first = honestdid.basis_vector(1, 4)
    for label, l_vec in (("first", l_first), ("third", honestdid.basis_vector(3, 4))):
        for method in ("C-LF", "Conditional"):
            t0 = time.perf_counter()
            rm = honestdid.createSensitivityResults_relativeMagnitudes(
                BC_BETA,
                BC_SIGMA,
                4,
                4,
                l_vec=l_vec,
                Mbarvec=[0, 0.5, 1, 1.5, 2],
                method=method,
                gridPoints=100,
                grid_lb=-1,
                grid_ub=1,
            )
            print(f"RM {method} l={label} ({time.perf_counter() - t0:.1f}s)\n{rm}")
    from zoneimpact.inference import honest

    mvec = [0, 0.01, 0.02, 0.03, 0.1, 0.2, 0.3]
    for method in ("FLCI", "C-LF", "C-F", "Conditional"):
        t0 = time.perf_counter()
        try:  # honestdid 0.1.1's C-F needs the ECOS solver through cvxpy
            sd = honestdid.createSensitivityResults(
                BC_BETA, BC_SIGMA, 4, 4, l_vec=l_first, Mvec=mvec, method=method
            )
            print(f"SD {method} honestdid ({time.perf_counter() - t0:.1f}s)\n{sd}")
        except Exception as exc:  # report and go on to ours
            print(f"SD {method} honestdid failed: {exc!r}")
        t0 = time.perf_counter()
        ours = honest.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, mvec, method=method)
        print(f"SD {method} zoneimpact ({time.perf_counter() - t0:.1f}s)\n{ours}")
    print(honestdid.constructOriginalCS(BC_BETA, BC_SIGMA, 4, 4, l_vec=l_first))


if __name__ == "__main__":
    main()
