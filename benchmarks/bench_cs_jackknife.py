"""Benchmark: the delete-one-cluster jackknife of doubly robust Callaway-Sant'Anna with each
ATT(g,t) estimated for every deletion at once, against CS refitted once per deletion (the
path used before, and still used for a deletion the batch cannot stand for).

Task: ``callaway_santanna.fit(outcome="fdi", est_method="dr", covariates=COVARIATES,
cluster="province")`` then ``with_inference("jackknife", cluster="province")``, on the
China curve's full-sample designs in one simulated null world of
``mc_referee_china_structure.py`` (China's 232 cities, 27 provinces, zone cohorts, gaps and
covariates): maps none / knn3 / ring100 x clean / not-yet-treated controls, as
``speccurve._fit_direct`` fits them. Only the jackknife is timed (the fit is shared). No
peer offers a cluster jackknife of CS (R ``did`` and ``csdid`` have the multiplier
bootstrap; diff-diff none), so the comparison is with our own refits, on one process
(``n_jobs=1``); the floor (``_floor.long_floor`` on the panel's unit, year and fdi columns)
divides each time in the printed ratios. The two paths alternate (``--repeats`` rounds,
medians), each from a cold propensity memo; their SEs must agree to 1e-9 relative or the
script stops. Needs ``shared/data/china``.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_cs_jackknife.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import _floor  # type: ignore[import-not-found]  # noqa: E402
import mc_referee_china_structure as m  # type: ignore[import-not-found]  # noqa: E402
import numpy as np  # noqa: E402

from zoneimpact.china.speccurve import COVARIATES, direct_panel  # noqa: E402
from zoneimpact.estimators import callaway_santanna as cs  # noqa: E402
from zoneimpact.parallel import SHOW_PROGRESS  # noqa: E402


def _jackknife(res, batched: bool) -> tuple[float, np.ndarray]:
    cs._JACKKNIFE_BATCHED = batched
    cs._clear_logit_memo()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = res.with_inference("jackknife", cluster="province")
    return time.perf_counter() - start, out.terms["se"].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    SHOW_PROGRESS["on"] = False
    base, loaded = m.curve_panel()
    w = m.World(base, loaded, m.curve_exposure(base, "knn3"))
    maps = {mp: m.curve_exposure(base, mp) for mp in m.DIRECT_MAPS}
    direct, spill = w.effects(maps["knn3"], None)
    panel = w.panel_with(w.draw_y0(np.random.default_rng(m.SEED)) + direct + spill)
    total = {True: 0.0, False: 0.0}
    floor_total = 0.0
    for mp, ctl, _ in [sp for sp in m.direct_specs() if sp[2] == "cs_dr"]:
        sub = direct_panel(panel, maps[mp], ctl)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cs.fit(
                sub, outcome="fdi", est_method="dr", covariates=list(COVARIATES),
                control_group="never_treated" if ctl == "clean" else "not_yet_treated",
                bootstrap=False, cluster="province", aggregations=("simple", "dynamic"),
                min_e=-6, max_e=10,
            )  # fmt: skip
        times: dict[bool, list[float]] = {True: [], False: []}
        ses = {}
        for _ in range(args.repeats):
            for batched in (True, False):
                t, se = _jackknife(res, batched)
                times[batched].append(t)
                ses[batched] = se
        ok = np.isfinite(ses[False])
        assert np.array_equal(ok, np.isfinite(ses[True]))
        np.testing.assert_allclose(ses[True][ok], ses[False][ok], rtol=1e-9)
        floor_s = _floor.time_floor(_floor.long_floor(sub.data, "unit", "time", "fdi"))
        med = {b: float(np.median(v)) for b, v in times.items()}
        for b in med:
            total[b] += med[b]
        floor_total += floor_s
        print(
            _floor.ratio_line(
                f"cs dr jackknife {mp}/{ctl} ({len(sub.units)} units, "
                f"{res.info['n_clusters']} provinces)",
                med[True], {"own refits": med[False]}, floor_s,
            )
        )  # fmt: skip
    print(_floor.ratio_line("cs dr jackknife, six designs", total[True],
                            {"own refits": total[False]}, floor_total))  # fmt: skip


if __name__ == "__main__":
    main()
