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

import time

import numpy as np

BC_BETA = np.array(
    [
        0.006696352,
        0.029345034,
        -0.006472972,
        0.073014989,
        0.195961118,
        0.312063903,
        0.239541546,
        0.126042500,
    ]
)
BC_SIGMA = np.array(
    [
        [
            8.428358e-04,
            4.768687e-04,
            2.618051e-04,
            2.354220e-04,
            1.676371e-04,
            1.128708e-04,
            1.992816e-05,
            -1.368265e-04,
        ],
        [
            4.768687e-04,
            6.425420e-04,
            3.987425e-04,
            2.435515e-04,
            2.201960e-04,
            1.804591e-04,
            3.843765e-05,
            -2.960422e-05,
        ],
        [
            2.618051e-04,
            3.987425e-04,
            5.229950e-04,
            2.117686e-04,
            1.840722e-04,
            1.458528e-04,
            7.005197e-05,
            5.952995e-05,
        ],
        [
            2.354220e-04,
            2.435515e-04,
            2.117686e-04,
            3.089595e-04,
            1.197866e-04,
            1.334081e-04,
            1.016335e-04,
            1.079052e-04,
        ],
        [
            1.676371e-04,
            2.201960e-04,
            1.840722e-04,
            1.197866e-04,
            3.599704e-04,
            2.478819e-04,
            1.749579e-04,
            1.654257e-04,
        ],
        [
            1.128708e-04,
            1.804591e-04,
            1.458528e-04,
            1.334081e-04,
            2.478819e-04,
            4.263950e-04,
            2.171438e-04,
            2.892748e-04,
        ],
        [
            1.992816e-05,
            3.843765e-05,
            7.005197e-05,
            1.016335e-04,
            1.749579e-04,
            2.171438e-04,
            4.886698e-04,
            3.805322e-04,
        ],
        [
            -1.368265e-04,
            -2.960422e-05,
            5.952995e-05,
            1.079052e-04,
            1.654257e-04,
            2.892748e-04,
            3.805322e-04,
            7.617394e-04,
        ],
    ]
)


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
