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

The peer, the Python port ``honestdid`` (0.1.1), runs live on the Benzarti-Carloni 4 x 4
case only (there its relative-magnitudes table takes ~2 minutes at 1000 theta grid points
and ~50 s at 100; the larger cases would take far longer, so their ratio lines say "no
peer"). Both sides compute the same thing and their bounds are printed side by side:

* relative magnitudes: the C-LF confidence set of the first post-period effect for
  Mbar = 0, 0.5, 1, 1.5, 2 (zoneimpact's default grid), inverted over the same theta
  grid (``--peer-grid-points`` points, default 1000 as in both packages, on +/- 20
  sd(theta), the default range of both, passed to both so zoneimpact does not widen it),
  1000 least-favourable draws each (different RNGs, both seeded 0, so a bound can differ
  by a grid step or two):
  ``honestdid.createSensitivityResults_relativeMagnitudes`` against
  ``zoneimpact.inference.honest.sensitivity_rm``. A second ratio line sets zoneimpact's
  full default ``honest_did`` call (1000 grid points plus the breakdown-value search:
  more work than the peer's) against the same peer time.
* smoothness: the FLCI of the first post-period effect at zoneimpact's default M grid
  (10 values from 0 to the pre-period bound), passed to the peer as ``Mvec``:
  ``honestdid.createSensitivityResults(method="FLCI")`` against ``sensitivity_sd``.

zoneimpact and the peer alternate (zoneimpact, peer, zoneimpact, ...; ``--peer-reps``
rounds, default 1; medians) in this process. ``--skip-peer`` skips the peer; without
``honestdid`` installed the script prints "honestdid not installed" and goes on.

Each call's ratio line gives zoneimpact / fastest peer (or "no peer") and zoneimpact /
floor; the floor (``_floor.matrix_floor`` on the event study's covariance matrix, plus a
sum of its coefficients: column means, row sums and one matrix-vector product) is timed
on the same result before the calls.

Run:  python benchmarks/bench_honest.py [--sizes 4x4 6x11 10x15] [--no-china]
      [--skip-peer] [--peer-reps 1] [--peer-grid-points 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


def time_honest(
    result: EstimationResult, label: str, peer_times: dict[str, float] | None = None
) -> None:
    """Time ``honest_did``'s defaults; ``peer_times`` (honestdid's seconds by restriction,
    target "first", from :func:`peer_compare`) enter the ratio lines where given."""
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
            peer = (peer_times or {}).get(kind) if target == "first" else None
            peers = {} if peer is None else {"honestdid": peer}
            note = "peer: honestdid's table alone, timed in the peer block above" if peers else ""
            print("  " + ratio_line(f"{label} {kind} {target}", dt, peers, floor_s, note=note))


# zoneimpact honest_did's default Mbar grid for relative magnitudes
RM_GRID = [0.0, 0.5, 1.0, 1.5, 2.0]


def _timed(f: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def _side_by_side(ours: pd.DataFrame, theirs: pd.DataFrame, m_ours: str, m_peer: str) -> float:
    """Print both sides' bounds row by row; return the largest bound difference."""
    worst = 0.0
    for (_, a), (_, b) in zip(ours.iterrows(), theirs.iterrows(), strict=True):
        d = max(abs(a["lb"] - b["lb"]), abs(a["ub"] - b["ub"]))
        worst = max(worst, d)
        print(
            f"    M={a[m_ours]:<7.4g} zoneimpact [{a['lb']:.6f}, {a['ub']:.6f}]   "
            f"honestdid (M={b[m_peer]:.4g}) [{b['lb']:.6f}, {b['ub']:.6f}]   |diff| {d:.2e}"
        )
    return worst


def peer_compare(reps: int, grid_points: int) -> dict[str, float]:
    """honestdid and zoneimpact on the Benzarti-Carloni 4 x 4 case, alternating.

    Returns honestdid's median seconds by restriction (empty without honestdid).
    """
    try:
        import honestdid
    except ImportError:
        print("honestdid not installed")
        return {}
    beta, sigma, num_pre, num_post = BC_BETA, BC_SIGMA, 4, 4
    l_first = np.eye(num_post)[0]
    result = as_result(beta, sigma, num_pre)
    floor_s = time_floor(lambda: matrix_floor(sigma) + float(beta.sum()), reps=5)
    # zoneimpact's default M grid for smoothness, handed to the peer so both use it
    m_grid = np.linspace(0, h.delta_sd_upper_bound_mpre(beta, sigma, num_pre), 10)
    sd_theta = float(np.sqrt(l_first @ sigma[num_pre:, num_pre:] @ l_first))
    # both invert over the same grid, +/- 20 sd(theta) (the default range of both; passed
    # explicitly so zoneimpact does not widen it when a set reaches its edge, which
    # honestdid does not do)
    grid_lb, grid_ub = -20 * sd_theta, 20 * sd_theta
    step = (grid_ub - grid_lb) / (grid_points - 1)
    print(
        f"honestdid {honestdid.__version__} vs zoneimpact, BC 4x4, first post period, "
        f"{reps} alternating round(s)"
    )
    # untimed warm-up of both sides (imports, first-call caches)
    h.sensitivity_rm(beta, sigma, num_pre, num_post, [1.0], l_first, grid_points=10)
    honestdid.createSensitivityResults(
        beta, sigma, num_pre, num_post, method="FLCI", Mvec=[0.0], l_vec=l_first
    )
    times: dict[str, list[float]] = {
        k: [] for k in ("rm", "rm_default", "rm_peer", "sd", "sd_peer")
    }
    for _ in range(reps):
        rm, t = _timed(
            lambda: h.sensitivity_rm(
                beta,
                sigma,
                num_pre,
                num_post,
                RM_GRID,
                l_first,
                grid_points=grid_points,
                grid_lb=grid_lb,
                grid_ub=grid_ub,
            )
        )
        times["rm"].append(t)
        default, t = _timed(lambda: h.honest_did(result, type="relative_magnitude"))
        times["rm_default"].append(t)
        rm_peer, t = _timed(
            lambda: honestdid.createSensitivityResults_relativeMagnitudes(
                beta,
                sigma,
                num_pre,
                num_post,
                method="C-LF",
                Mbarvec=RM_GRID,
                l_vec=l_first,
                gridPoints=grid_points,
                grid_lb=grid_lb,
                grid_ub=grid_ub,
            )
        )
        times["rm_peer"].append(t)
        sd, t = _timed(lambda: h.sensitivity_sd(beta, sigma, num_pre, num_post, m_grid, l_first))
        times["sd"].append(t)
        sd_peer, t = _timed(
            lambda: honestdid.createSensitivityResults(
                beta, sigma, num_pre, num_post, method="FLCI", Mvec=m_grid, l_vec=l_first
            )
        )
        times["sd_peer"].append(t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(
        "  RM C-LF, 5 Mbar values, "
        f"{grid_points} theta grid points (step {step:.4f}): zoneimpact sensitivity_rm "
        f"{med['rm']:.3f} s {fmt(times['rm'])}, honestdid {med['rm_peer']:.2f} s "
        f"{fmt(times['rm_peer'])}"
    )
    worst = _side_by_side(rm, rm_peer, "mbar", "Mbar")
    print(f"    largest bound difference {worst:.2e} = {worst / step:.2f} grid steps")
    for tab, name, col in ((rm, "zoneimpact", "mbar"), (rm_peer, "honestdid", "Mbar")):
        at_edge = tab[(tab["ub"] >= grid_ub - 1e-9) | (tab["lb"] <= grid_lb + 1e-9)]
        if len(at_edge):
            print(
                f"    {name}: the set reaches the grid's end ({grid_lb:.6f}, {grid_ub:.6f}) at "
                f"Mbar = {', '.join(f'{v:g}' for v in at_edge[col])} (bound = grid "
                "edge; zoneimpact's default widens the grid there)"
            )
    task = f"BC 4x4 RM C-LF first, 5 Mbar x {grid_points} grid points"
    print("  " + ratio_line(task, med["rm"], {"honestdid": med["rm_peer"]}, floor_s))
    top = default.table.iloc[-1]
    print(
        f"  zoneimpact honest_did defaults (1000 grid points + breakdown value "
        f"{default.breakdown:.4g}): {med['rm_default']:.3f} s {fmt(times['rm_default'])}, "
        f"CI at Mbar={top['m']:.3g} [{top['lb']:.6f}, {top['ub']:.6f}]"
    )
    print(
        "  "
        + ratio_line(
            "BC 4x4 honest_did RM defaults",
            med["rm_default"],
            {"honestdid": med["rm_peer"]},
            floor_s,
            note=f"zoneimpact does more: 1000 grid points + breakdown; peer at {grid_points}",
        )
    )
    print(
        f"  SD FLCI, {m_grid.size} M values (0 to {m_grid[-1]:.4g}): zoneimpact sensitivity_sd "
        f"{med['sd']:.3f} s {fmt(times['sd'])}, honestdid {med['sd_peer']:.2f} s "
        f"{fmt(times['sd_peer'])}"
    )
    worst = _side_by_side(sd, sd_peer, "m", "M")
    print(f"    largest bound difference {worst:.2e}")
    print(
        "  "
        + ratio_line(
            "BC 4x4 SD FLCI first, 10 M", med["sd"], {"honestdid": med["sd_peer"]}, floor_s
        )
    )
    return {"relative_magnitude": med["rm_peer"], "smoothness": med["sd_peer"]}


def fmt(ts: list[float]) -> str:
    return "(" + ", ".join(f"{t:.3g}" for t in ts) + ")"


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
    ap.add_argument("--skip-peer", action="store_true", help="do not run honestdid")
    ap.add_argument("--peer-reps", type=int, default=1, help="alternating rounds with the peer")
    ap.add_argument("--peer-grid-points", type=int, default=1000, help="theta grid, both sides")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    peer_times = {} if args.skip_peer else peer_compare(args.peer_reps, args.peer_grid_points)
    time_honest(as_result(BC_BETA, BC_SIGMA, 4), "BC 4x4", peer_times)
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
