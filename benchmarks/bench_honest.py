"""Benchmark: ``zoneimpact.inference.honest.honest_did`` on event studies of growing size.

Times ``honest_did`` with its default settings (sensitivity table + breakdown value) for
relative magnitudes (C-LF) and smoothness (FLCI), target "first" and "average", on

* the Benzarti-Carloni event study of R HonestDiD (4 pre x 4 post; vertex enumeration),
* synthetic event studies with 6 x 11 and 10 x 15 coefficients (LP path),
* the China zones Callaway-Sant'Anna event study (E = -6..10, 5 pre x 11 post) when the
  shared data are present.

It also checks, on a mid-size case that both paths can handle, that the enumeration path
and the LP path give the same bounds. The goal is a few seconds per call on 6 x 11 and
10 x 15 (before the LP path: 4 x 4 took ~0.4 s, 6 x 11 did not finish in 10 minutes).
The machine is shared: wall times move with the other load.

No peer runs here (the R HonestDiD numbers are read from ``reference/``), so each call's
ratio line says "no peer" and gives zoneimpact / floor; the floor (``_floor.matrix_floor``
on the event study's covariance matrix, plus a sum of its coefficients: column means, row
sums and one matrix-vector product) is timed on the same result before the calls.

Run:  python benchmarks/bench_honest.py [--sizes 4x4 6x11 10x15] [--no-china]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from zoneimpact.inference import honest as h
from zoneimpact.results import EstimationResult, terms_frame

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import matrix_floor, ratio_line, time_floor  # noqa: E402
from honestdid_reference import BC_BETA, BC_SIGMA  # noqa: E402


def synthetic_event_study(
    num_pre: int, num_post: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Event-study coefficients with a linear pre-trend, a growing effect and an AR(1)
    covariance whose standard deviations grow with distance from the reference period."""
    rng = np.random.default_rng(seed)
    n = num_pre + num_post
    t = np.r_[np.arange(-num_pre, 0), np.arange(1, num_post + 1)].astype(float)
    sd = 0.02 * (1 + 0.05 * np.abs(t))
    corr = 0.5 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    sigma = corr * np.outer(sd, sd)
    tau = np.where(t > 0, 0.1 + 0.01 * t, 0.0)
    beta = tau + 0.004 * t + rng.multivariate_normal(np.zeros(n), sigma)
    return beta, sigma


def as_result(beta: np.ndarray, sigma: np.ndarray, num_pre: int) -> EstimationResult:
    """An event-study result with terms event:-K..-2 and event:0..T-1 (reference -1)."""
    events = [*range(-num_pre - 1, -1), *range(0, beta.size - num_pre)]
    names = [f"event:{e}" for e in events]
    return EstimationResult(
        estimator="event_study",
        outcome="y",
        terms=terms_frame(names, beta, np.sqrt(np.diag(sigma))),
        vcov=sigma,
    )


def china_result() -> EstimationResult | None:
    try:
        from zoneimpact.datasets import load_data
        from zoneimpact.estimators import callaway_santanna
        from zoneimpact.spec import load_spec

        spec = load_spec(Path(__file__).resolve().parents[1] / "specs" / "china.toml")
        d = load_data(spec, np.random.default_rng(0))
    except Exception as exc:  # the shared data are not everywhere
        print(f"China case skipped: {exc!r}")
        return None
    return callaway_santanna.fit(
        d.panel,
        outcome="fdi",
        control_group="not_yet_treated",
        cluster="province",
        bootstrap=False,
        min_e=-6,
        max_e=10,
        base_period="universal",
    )


def time_honest(result: EstimationResult, label: str) -> None:
    sigma = np.asarray(result.vcov, float)
    beta = result.terms["estimate"].to_numpy(float)
    floor_s = time_floor(lambda: matrix_floor(sigma) + float(beta.sum()), reps=5)
    for kind in ("relative_magnitude", "smoothness"):
        for target in ("first", "average"):
            t0 = time.perf_counter()
            res = h.honest_did(result, type=kind, target=target)
            dt = time.perf_counter() - t0
            last = res.table.iloc[-1]
            print(
                f"{label:>14} {kind:>18} {target:>7} {res.method:>5}  {dt:6.2f} s   "
                f"breakdown {res.breakdown:8.4g}   CI at M={last['m']:.3g}: "
                f"[{last['lb']:.4g}, {last['ub']:.4g}]"
            )
            print("  " + ratio_line(f"{label} {kind} {target}", dt, {}, floor_s))


def compare_paths(num_pre: int, num_post: int) -> None:
    """Same bounds from vertex enumeration and from the LP path (exact methods both)."""
    beta, sigma = synthetic_event_study(num_pre, num_post, seed=1)
    saved = h._MAX_BASES
    worst = 0.0
    try:
        for target in ("first", "average"):
            lv = np.eye(num_post)[0] if target == "first" else np.full(num_post, 1 / num_post)
            out, times = {}, {}
            for name, cap in (("enumerate", 10**12), ("lp", 0)):
                h._MAX_BASES = cap
                t0 = time.perf_counter()
                out[name] = h.sensitivity_rm(beta, sigma, num_pre, num_post, [0, 1, 2], lv)
                times[name] = time.perf_counter() - t0
            diff = np.abs(
                out["enumerate"][["lb", "ub"]].to_numpy() - out["lp"][["lb", "ub"]].to_numpy()
            ).max()
            worst = max(worst, diff)
            print(
                f"{num_pre}x{num_post} RM C-LF {target:>7}: enumerate {times['enumerate']:.2f} s, "
                f"LP {times['lp']:.2f} s, max |bound difference| {diff:.2e}"
            )
    finally:
        h._MAX_BASES = saved
    print(f"paths agree: {worst <= 1e-3}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", default=["4x4", "6x11", "10x15"])
    ap.add_argument("--no-china", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    time_honest(as_result(BC_BETA, BC_SIGMA, 4), "BC 4x4")
    for size in args.sizes:
        k, t = (int(v) for v in size.split("x"))
        beta, sigma = synthetic_event_study(k, t)
        time_honest(as_result(beta, sigma, k), f"synthetic {k}x{t}")
    if not args.no_china:
        res = china_result()
        if res is not None:
            time_honest(res, "China CS 5x11")
    compare_paths(4, 8)


if __name__ == "__main__":
    main()
