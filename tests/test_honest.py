"""Tests of zoneimpact.inference.honest (Rambachan & Roth 2023 sensitivity analysis).

Reference input: the Benzarti & Carloni (2019) event study shipped with R HonestDiD as
``BCdata_EventStudy`` (4 pre, 4 post periods), at the 7 significant digits printed by the
Stata port (mcaceresb/stata-honestdid, ``_honestExampleBCBeta/Sigma``); see
benchmarks/reference/honestdid_reference.py, which also prints the Python ``honestdid``
0.1.1 numbers next to ours.

R numbers: R HonestDiD as logged in mcaceresb/stata-honestdid
``test/unit-tests-consistency.R.log`` (R 4.x, HonestDiD 0.2.x), printed to 3 significant
digits. Conditional confidence sets are min/max of accepted points of a theta grid, so
on the same grid our numbers are the same grid points; where the grid is R's default the
tolerance allows one grid step plus R's print rounding, and for C-LF the Monte Carlo noise
of R's 1000-draw least-favourable critical value (same magnitude).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from zoneimpact.inference import honest as h
from zoneimpact.results import EstimationResult, terms_frame

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
E1 = np.eye(4)[0]
E3 = np.eye(4)[2]
AVG = np.full(4, 0.25)
MBARS = [0, 0.5, 1, 1.5, 2]

# R HonestDiD, createSensitivityResults_relativeMagnitudes(gridPoints=100, grid.lb=-1,
# grid.ub=1, Mbarvec=0..2 by 0.5); identical for "C-LF" and "Conditional" in R.
R_RM = {
    "first": [(0.172, 0.232), (0.131, 0.253), (0.0707, 0.313), (0.0303, 0.354), (-0.0303, 0.414)],
    "third": [(0.212, 0.273), (0.0707, 0.414), (-0.0909, 0.576), (-0.253, 0.737), (-0.434, 0.919)],
    "average": [
        (0.192, 0.253),
        (0.0707, 0.354),
        (-0.0505, 0.495),
        (-0.192, 0.636),
        (-0.333, 0.778),
    ],
}
L_OF = {"first": E1, "third": E3, "average": AVG}


@pytest.mark.parametrize("method", ["C-LF", "Conditional"])
@pytest.mark.parametrize("target", ["first", "third", "average"])
def test_rm_matches_r_on_r_grid(target: str, method: str) -> None:
    out = h.sensitivity_rm(
        BC_BETA,
        BC_SIGMA,
        4,
        4,
        MBARS,
        L_OF[target],
        method=method,
        grid_points=100,
        grid_lb=-1,
        grid_ub=1,
    )
    ref = np.array(R_RM[target])
    # same grid -> same grid points; 6e-4 covers R's 3-significant-digit printing only
    np.testing.assert_allclose(out[["lb", "ub"]].to_numpy(), ref, atol=6e-4)
    assert list(out["mbar"]) == MBARS


def test_rm_default_grid_matches_r() -> None:
    # R default: Mbarvec = seq(0, 2, length.out = 10), 1000 grid points on +/- 20 sd.
    r_vals = [
        (0.159, 0.233),
        (0.143, 0.248),
        (0.123, 0.266),
        (0.102, 0.287),
        (0.0786, 0.308),
        (0.0551, 0.329),
        (0.0315, 0.352),
        (0.00722, 0.376),
    ]
    t0 = time.perf_counter()
    out = h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4)
    elapsed = time.perf_counter() - t0
    # one grid step (40 sd / 999 = 7.6e-4) + R rounding + R's 1000-draw LF critical value
    np.testing.assert_allclose(out[["lb", "ub"]].to_numpy()[:8], np.array(r_vals), atol=1.6e-3)
    # R stops at its grid edge 0.379 for Mbar >= 1.78; we widen the grid instead
    assert out["ub"].iloc[-1] > 0.4
    assert elapsed < 5.0  # 10 values of Mbar x 8 pieces x 1000 grid points


# R HonestDiD createSensitivityResults(Mvec = 0, 0.1, 0.2, 0.3), l_vec = first post period.
R_SD_FIRST = {
    "FLCI": [(0.131, 0.216), (0.119, 0.419), (0.0194, 0.519), (-0.0806, 0.619)],
    "Conditional": [(0.210, 0.328), (0.120, 0.418), (0.0203, 0.518), (-0.0796, 0.618)],
    "C-F": [(0.206, 0.234), (0.120, 0.418), (0.0195, 0.518), (-0.0801, 0.618)],
    "C-LF": [(0.210, 0.328), (0.119, 0.419), (0.0191, 0.519), (-0.0809, 0.618)],
}


@pytest.mark.parametrize("method", ["FLCI", "Conditional", "C-F", "C-LF"])
def test_sd_matches_r_first_period(method: str) -> None:
    out = h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, [0, 0.1, 0.2, 0.3], E1, method=method)
    ref = np.array(R_SD_FIRST[method])
    # FLCI: R simulates the folded-normal quantile (1e6 draws) -> 1e-3; grid methods: one
    # grid step (<= 1.4e-3 here) + print rounding (+ LF Monte Carlo noise for C-LF)
    tol = 1e-3 if method == "FLCI" else 2e-3
    np.testing.assert_allclose(out[["lb", "ub"]].to_numpy(), ref, atol=tol)


def test_sd_flci_average_and_default_grid_match_r() -> None:
    out = h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, [0, 0.1, 0.2, 0.3], AVG)
    ref = np.array([(0.133, 0.230), (-0.186, 0.988), (-0.686, 1.49), (-1.19, 1.99)])
    np.testing.assert_allclose(out[["lb", "ub"]].to_numpy(), ref, atol=6e-3)  # 3 s.f. of 1.49/1.99
    # default M grid: 10 points up to DeltaSD_upperBound_Mpre = 0.202 (R prints 0.202)
    assert h.delta_sd_upper_bound_mpre(BC_BETA, BC_SIGMA, 4) == pytest.approx(0.2022, abs=1e-4)
    default = h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4)
    assert len(default) == 10
    # R: M = 0.0899 -> [0.130, 0.408]; M = 0.202 -> [0.0173, 0.521] (the optimum is flat
    # at small M, where R's derivative bisection and ours pick different centres)
    np.testing.assert_allclose(
        default[["lb", "ub"]].to_numpy()[[4, 9]], [(0.130, 0.408), (0.0173, 0.521)], atol=1e-3
    )


def test_sd_conditional_degenerate_case_matches_python_ports() -> None:
    # l = third period, M = 0: the moments are equalities written as +/- pairs, a degenerate
    # LP. moderndid 0.2.0 (compute_conditional_cs_sd, hybrid_flag="ARP") and honestdid
    # 0.1.1 both accept theta in [0.34, 0.58] on this 26-point grid (R 0.2.x prints
    # ub = 0.442 here; the two independent Python ports agree with each other and with us).
    out = h.sensitivity_sd(
        BC_BETA,
        BC_SIGMA,
        4,
        4,
        [0],
        E3,
        method="Conditional",
        grid_points=26,
        grid_lb=0.2,
        grid_ub=0.7,
    )
    assert out["lb"].iloc[0] == pytest.approx(0.34)
    assert out["ub"].iloc[0] == pytest.approx(0.58)


def test_original_ci() -> None:
    lo, hi = h.original_ci(BC_BETA, BC_SIGMA, 4, 4)
    se = np.sqrt(BC_SIGMA[4, 4])
    assert (lo, hi) == pytest.approx(
        (BC_BETA[4] - 1.959963985 * se, BC_BETA[4] + 1.959963985 * se), rel=1e-9
    )
    assert (lo, hi) == pytest.approx((0.159, 0.233), abs=5e-4)  # R constructOriginalCS


def test_scaling_invariance() -> None:
    c = 7.5
    rm1 = h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4, [0.5, 1.0])
    rm2 = h.sensitivity_rm(c * BC_BETA, c**2 * BC_SIGMA, 4, 4, [0.5, 1.0])
    # the default grid, LF draws and test statistics all scale with sd: exact up to rounding
    np.testing.assert_allclose(
        rm2[["lb", "ub"]].to_numpy(), c * rm1[["lb", "ub"]].to_numpy(), rtol=1e-8
    )
    sd1 = h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, [0.0, 0.1])
    sd2 = h.sensitivity_sd(c * BC_BETA, c**2 * BC_SIGMA, 4, 4, [0.0, c * 0.1])
    # FLCI solved numerically (SLSQP + Brent): agreement to 1e-6 relative
    np.testing.assert_allclose(
        sd2[["lb", "ub"]].to_numpy(), c * sd1[["lb", "ub"]].to_numpy(), rtol=1e-6
    )


def test_smoothness_m0_removes_a_linear_pre_trend() -> None:
    # beta = linear trend 0.03 * t plus an effect tau = (0.2, 0.1, 0, 0) after treatment:
    # under M = 0 the FLCI is centred on tau_1 whatever the trend (unbiased for linear
    # trends), while the naive CI is centred on tau_1 + 0.03.
    t = np.array([-4, -3, -2, -1, 1, 2, 3, 4], dtype=float)
    beta = 0.03 * t + np.array([0, 0, 0, 0, 0.2, 0.1, 0, 0])
    f = h.flci(beta, BC_SIGMA, 4, 4, 0.0)
    assert (f.lb + f.ub) / 2 == pytest.approx(0.2, abs=1e-9)
    assert f.max_bias == 0.0
    lo, hi = h.original_ci(beta, BC_SIGMA, 4, 4)
    assert (lo + hi) / 2 == pytest.approx(0.23, abs=1e-12)
    # with a linear pre-trend the M = 0 conditional set also centres near tau_1
    cond = h.sensitivity_sd(beta, BC_SIGMA, 4, 4, [0.0], method="Conditional", refine=True)
    assert cond["lb"].iloc[0] < 0.2 < cond["ub"].iloc[0]


def test_worst_case_bias_formula_matches_lp() -> None:
    # max over Delta^SD(M) of w'delta_pre + l'delta_post by linear programming
    rng = np.random.default_rng(3)
    k, tbar, m = 4, 3, 0.7
    lv = np.array([0.5, 0.3, 0.2])
    dmat, avec, c, const = h._sd_bias_matrix(k, tbar, lv)
    a = h._a_sd(k, tbar)
    for _ in range(5):
        w = rng.normal(size=k)
        w[-1] += c - avec @ w  # impose unbiasedness for linear trends (a_K = 1)
        obj = -np.concatenate([w, lv])
        res = optimize.linprog(
            obj, A_ub=a, b_ub=np.full(a.shape[0], m), bounds=[(None, None)] * (k + tbar)
        )
        assert res.status == 0
        assert -res.fun == pytest.approx(m * (np.abs(dmat @ w).sum() + const), rel=1e-8)


def test_flci_is_optimal_against_random_weights() -> None:
    m, alpha = 0.05, 0.05
    f = h.flci(BC_BETA, BC_SIGMA, 4, 4, m)
    dmat, avec, c, const = h._sd_bias_matrix(4, 4, E1)
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = f.vec[:4] + rng.normal(scale=0.3, size=4)
        w[-1] += c - avec @ w
        v = np.concatenate([w, E1])
        sd = np.sqrt(v @ BC_SIGMA @ v)
        hl = sd * h._folded_normal_quantile(1 - alpha, m * (np.abs(dmat @ w).sum() + const) / sd)
        assert hl >= f.halflength - 1e-7


def test_breakdown_value_logic() -> None:
    bd = h.breakdown_value(BC_BETA, BC_SIGMA, 4, 4)  # relative magnitudes, C-LF
    assert 1.55 < bd < 1.8  # R's table: lb > 0 at Mbar = 1.56, < 0 at 1.78
    below = h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4, [bd * 0.98])
    above = h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4, [bd * 1.02])
    assert below["lb"].iloc[0] > 0 and above["lb"].iloc[0] <= 0
    bd_sd = h.breakdown_value(BC_BETA, BC_SIGMA, 4, 4, restriction="smoothness")
    assert 0.202 < bd_sd < 0.3  # FLCI lb = 0.0173 > 0 at M = 0.202 and < 0 at M = 0.3
    sd_at = h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, [bd_sd * 0.99, bd_sd * 1.01])
    assert sd_at["lb"].iloc[0] > 0 and sd_at["lb"].iloc[1] <= 0
    # original CI already covers the null -> 0; null never reached on the grid -> inf
    assert h.breakdown_value(BC_BETA, BC_SIGMA, 4, 4, null=0.2) == 0.0
    assert h.breakdown_value(BC_BETA, BC_SIGMA, 4, 4, grid=[0.0, 0.5]) == np.inf


def _bc_result(with_reference_row: bool = False) -> EstimationResult:
    names = [f"event:{e}" for e in (-5, -4, -3, -2, 0, 1, 2, 3)]
    est, se, vc = list(BC_BETA), list(np.sqrt(np.diag(BC_SIGMA))), BC_SIGMA
    names = ["att", *names]
    est, se = [0.2, *est], [0.01, *se]
    vc = np.pad(vc, ((1, 0), (1, 0)))
    vc[0, 0] = 1e-4
    if with_reference_row:
        names.append("event:-1")
        est.append(0.0)
        se.append(0.0)
        vc = np.pad(vc, ((0, 1), (0, 1)))
    # shuffle the term order: honest_did must sort by event time
    order = np.r_[0, 8, 2, 1, 3, 4, 6, 5, 7, np.arange(9, len(names))]
    return EstimationResult(
        estimator="event_study",
        outcome="y",
        terms=terms_frame([names[i] for i in order], np.array(est)[order], np.array(se)[order]),
        vcov=vc[np.ix_(order, order)],
    )


def test_honest_did_reads_event_terms() -> None:
    res = h.honest_did(_bc_result(with_reference_row=True), grid_points=100, grid_lb=-1, grid_ub=1)
    assert isinstance(res, h.HonestResult)
    assert res.event_times == ((-5, -4, -3, -2), (0, 1, 2, 3))
    np.testing.assert_allclose(
        res.table[["lb", "ub"]].to_numpy(), np.array(R_RM["first"]), atol=6e-4
    )
    assert res.original_ci == pytest.approx(h.original_ci(BC_BETA, BC_SIGMA, 4, 4))
    tidy = res.tidy()
    assert list(tidy["method"]) == ["Original"] + ["C-LF"] * 5
    assert tidy["breakdown"].iloc[0] == res.breakdown
    with pytest.raises(AttributeError):
        res.breakdown = 1.0  # type: ignore[misc]
    avg = h.honest_did(_bc_result(), type="smoothness", grid=[0.1], target="average")
    assert avg.table[["lb", "ub"]].to_numpy()[0] == pytest.approx((-0.186, 0.988), abs=1e-3)


def test_honest_did_errors() -> None:
    r = _bc_result()
    no_vcov = EstimationResult("twfe", "y", r.terms)
    with pytest.raises(h.HonestDiDError, match="vcov"):
        h.honest_did(no_vcov)
    gap = r.terms[r.terms["term"] != "event:-3"].reset_index(drop=True)
    keep = r.terms.index[r.terms["term"] != "event:-3"].to_numpy()
    with pytest.raises(h.HonestDiDError, match=r"\[-3\]"):
        h.honest_did(EstimationResult("twfe", "y", gap, vcov=r.vcov[np.ix_(keep, keep)]))
    with pytest.raises(h.HonestDiDError, match="target"):
        h.honest_did(r, target="median")


def test_bad_raw_inputs() -> None:
    with pytest.raises(h.HonestDiDError, match="num_pre"):
        h.sensitivity_rm(BC_BETA, BC_SIGMA, 3, 4)
    with pytest.raises(h.HonestDiDError, match="sigma"):
        h.sensitivity_rm(BC_BETA, BC_SIGMA[:7, :7], 4, 4)
    with pytest.raises(h.HonestDiDError, match="l_vec"):
        h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4, l_vec=[1, 0])
    with pytest.raises(h.HonestDiDError, match="mbar_grid"):
        h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4, mbar_grid=[-1])
    with pytest.raises(h.HonestDiDError, match="method"):
        h.sensitivity_sd(BC_BETA, BC_SIGMA, 4, 4, [0.1], method="FLCI2")  # type: ignore[arg-type]
    beta = BC_BETA.copy()
    h.sensitivity_rm(beta, BC_SIGMA, 4, 4, [1.0])
    np.testing.assert_array_equal(beta, BC_BETA)  # the caller's arrays are not modified


def test_one_post_period_and_lp_fallback_agree() -> None:
    # one post-period uses no nuisance parameters (R's NoNuis branch)
    b, s = BC_BETA[:5], BC_SIGMA[:5, :5]
    out = h.sensitivity_rm(
        b, s, 4, 1, [1.0], method="Conditional", grid_points=200, grid_lb=-0.5, grid_ub=0.7
    )
    assert out["lb"].iloc[0] < b[4] < out["ub"].iloc[0]
    # the LP fall-back (used when vertices are too many to enumerate) gives the same answers
    a = h._a_sd(4, 4)
    piece = h._make_piece(
        BC_BETA,
        BC_SIGMA,
        a,
        np.full(a.shape[0], 0.1),
        4,
        E1,
        0.05,
        "ARP",
        0.005,
        100,
        np.random.default_rng(0),
    )
    grid = np.linspace(0.05, 0.5, 46)
    fast = piece.accept(grid)
    slow = np.array([piece._accept_lp(t) for t in grid])
    np.testing.assert_array_equal(fast, slow)
    assert isinstance(pd.DataFrame(out), pd.DataFrame)
