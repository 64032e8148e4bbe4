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

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from zoneimpact.inference import honest as h
from zoneimpact.results import EstimationResult, terms_frame

# Benzarti & Carloni (2019) event study from R HonestDiD (BCdata_EventStudy); the one copy of
# the numbers is benchmarks/reference/bc_event_study.json, shared with the reference script
_BC = json.loads(
    (
        Path(__file__).resolve().parents[1] / "benchmarks" / "reference" / "bc_event_study.json"
    ).read_text()
)
BC_BETA = np.array(_BC["betahat"])
BC_SIGMA = np.array(_BC["sigma"])
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
    out = h.sensitivity_rm(BC_BETA, BC_SIGMA, 4, 4)
    # one grid step (40 sd / 999 = 7.6e-4) + R rounding + R's 1000-draw LF critical value
    np.testing.assert_allclose(out[["lb", "ub"]].to_numpy()[:8], np.array(r_vals), atol=1.6e-3)
    # R stops at its grid edge 0.379 for Mbar >= 1.78; we widen the grid instead
    assert out["ub"].iloc[-1] > 0.4


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
        h.honest_did(EstimationResult("twfe", "y", gap, vcov=r.vcov.to_numpy()[np.ix_(keep, keep)]))
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


# ---------------------------------------------------------------- long event studies
def _synthetic_event_study(num_pre: int, num_post: int, seed: int = 0) -> tuple:
    """Linear pre-trend + growing effect, AR(1) covariance (as benchmarks/bench_honest.py)."""
    rng = np.random.default_rng(seed)
    n = num_pre + num_post
    t = np.r_[np.arange(-num_pre, 0), np.arange(1, num_post + 1)].astype(float)
    sd = 0.02 * (1 + 0.05 * np.abs(t))
    sigma = 0.5 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n))) * np.outer(sd, sd)
    beta = np.where(t > 0, 0.1 + 0.01 * t, 0.0) + 0.004 * t
    return beta + rng.multivariate_normal(np.zeros(n), sigma), sigma


def _as_result(beta: np.ndarray, sigma: np.ndarray, num_pre: int) -> EstimationResult:
    events = [*range(-num_pre - 1, -1), *range(0, beta.size - num_pre)]
    return EstimationResult(
        estimator="event_study",
        outcome="y",
        terms=terms_frame([f"event:{e}" for e in events], beta, np.sqrt(np.diag(sigma))),
        vcov=sigma,
    )


def test_lp_path_matches_enumeration_mid_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 pre x 6 post: 924 (RM) and 3003 (SD) candidate bases, small enough to enumerate
    # and large enough to exercise the LP path when the cap is set to 0. Both are exact
    # implementations of the same test with the same LF draws, so they accept the same
    # grid points (observed difference 0); 1e-3 is the agreement asked of the two paths.
    beta, sigma = _synthetic_event_study(4, 6, seed=1)
    avg = np.full(6, 1 / 6)

    def run(cap: int) -> np.ndarray:
        monkeypatch.setattr(h, "_MAX_BASES", cap)
        out = []
        for lv in (None, avg):
            for method in ("C-LF", "Conditional"):
                t = h.sensitivity_rm(
                    beta, sigma, 4, 6, [0, 1, 2], lv, method=method, grid_points=200
                )
                out.append(t[["lb", "ub"]].to_numpy())
            for method in ("C-LF", "C-F"):
                t = h.sensitivity_sd(
                    beta, sigma, 4, 6, [0, 0.02], lv, method=method, grid_points=200
                )
                out.append(t[["lb", "ub"]].to_numpy())
        return np.vstack(out)

    enumerated, lp = run(10**9), run(0)
    assert np.all(np.isfinite(enumerated))
    np.testing.assert_allclose(lp, enumerated, atol=1e-3, rtol=0)


def _degenerate_piece(method: str) -> h._ARPPiece:
    """Three moments; the first two are perfectly negatively correlated, so the dual vertex
    gamma = (1/2, 1/2, 0) has gamma'Sigma gamma = 0 and is optimal for theta < 4.2."""
    sig = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return h._ARPPiece(
        y0=np.array([0.3, -0.1, -2.0]),
        a1=np.array([1.0, 1.0, 0.5]),
        x=np.array([[1.0], [-1.0], [0.0]]),
        sigma_y=sig,
        rows=np.arange(3),
        alpha=0.05,
        method=method,
        kappa=0.005,
        lf_sims=1000,
        rng=np.random.default_rng(0),
    )


@pytest.mark.parametrize("method", ["ARP", "LF"])
def test_lp_path_at_a_degenerate_vertex(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    # Regression for the NaN that reached HiGHS on newer BLAS builds: at a zero-variance
    # optimal vertex the truncation direction Sigma gamma / gamma'Sigma gamma is 0/0 (or
    # ~1e15 when rounding leaves 5e-32). The LP path must decide such points as the
    # one-theta reference (_accept_lp) does, and never probe the oracle with such points.
    monkeypatch.setattr(h, "_MAX_BASES", 0)
    seen: list[np.ndarray] = []
    solve = h._DualOracle.solve

    def spy(self, y):
        seen.append(np.atleast_2d(y))
        return solve(self, y)

    monkeypatch.setattr(h._DualOracle, "solve", spy)
    theta = np.linspace(-3.0, 6.0, 19)
    piece = _degenerate_piece(method)
    assert piece.oracle is not None  # the LP path, not the enumeration
    got = piece.accept(theta)
    want = np.array([piece._accept_lp(t) for t in theta])
    np.testing.assert_array_equal(got, want)
    # the degenerate vertex rejects exactly where eta = 0.1 - theta > 0
    np.testing.assert_array_equal(got[theta < 0.1], False)
    probes = np.vstack([y for y in seen if y.size])
    assert np.all(np.isfinite(probes))
    assert np.abs(probes).max() < 1e3  # the data are O(1); 4.5e15 was the defect


def test_lp_path_with_an_exactly_zero_variance_vertex(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine where CI failed rounded gamma'Sigma gamma to exactly 0 (here it is 5e-32):
    # emulate that rounding and check that no NaN is formed and the decisions are unchanged.
    monkeypatch.setattr(h, "_MAX_BASES", 0)
    refresh = h._DualOracle._refresh

    def exact_zero(self):
        refresh(self)
        self.vsv = np.where(np.abs(self.vsv) < 1e-20, 0.0, self.vsv)

    monkeypatch.setattr(h._DualOracle, "_refresh", exact_zero)
    theta = np.linspace(-3.0, 6.0, 19)
    piece = _degenerate_piece("ARP")
    with np.errstate(all="raise"):
        got = piece.accept(theta)
    np.testing.assert_array_equal(got, np.array([piece._accept_lp(t) for t in theta]))


def test_lp_path_matches_arp_algorithm_1_on_6x11() -> None:
    # 6 x 11: C(22, 11) = 705,432 candidate bases, so the LP path is used. Its test
    # decisions must equal those of the plain HiGHS + ARP Algorithm 1 implementation
    # (_accept_lp) point by point, also at M = 0 where the SD moments are degenerate.
    beta, sigma = _synthetic_event_study(6, 11)
    assert math.comb(22, 11) > h._MAX_BASES
    store: dict = {}
    mixed = 0
    cases = []
    for s, positive in ((0, True), (-5, False)):
        a = h._a_rm(6, 11, 1.0, s, positive)
        cases.append((a, np.zeros(a.shape[0])))
    a = h._a_sd(6, 11)
    cases += [(a, np.full(a.shape[0], 0.01)), (a, np.zeros(a.shape[0]))]
    for lv in (np.eye(11)[0], np.full(11, 1 / 11)):
        est, se = lv @ beta[6:], np.sqrt(lv @ sigma[6:, 6:] @ lv)
        grid = np.linspace(est - 12 * se, est + 12 * se, 13)
        for a, d in cases:
            for method in ("ARP", "LF"):
                piece = h._make_piece(
                    beta, sigma, a, d, 6, lv, 0.05, method, 0.005, 200,
                    np.random.default_rng(0), store=store,
                )  # fmt: skip
                assert piece.verts is None  # the LP path
                fast = piece.accept(grid)
                slow = np.array([piece._accept_lp(t) for t in grid])
                np.testing.assert_array_equal(fast, slow)
                mixed += bool(fast.any() and not fast.all())
    assert mixed >= 8  # half of the 16 tests both accept and reject on the grid (9 seen)


def test_honest_did_long_post_window() -> None:
    # 6 pre x 11 post (the size of a Callaway-Sant'Anna event study E = -7..10): the
    # LP path for relative magnitudes and the lasso-path FLCI for smoothness, with both
    # targets; timing lives in benchmarks/bench_honest.py.
    beta, sigma = _synthetic_event_study(6, 11)
    res = _as_result(beta, sigma, 6)
    rm = h.honest_did(res, grid=[0, 1, 2])
    assert rm.event_times == (tuple(range(-7, -1)), tuple(range(11)))
    lb, ub = rm.table["lb"].to_numpy(), rm.table["ub"].to_numpy()
    assert np.all(np.diff(lb) < 0) and np.all(np.diff(ub) > 0)  # sets grow with Mbar
    # at Mbar = 0 the identified set is l'beta_post - delta_0 with delta_0 = 0, and the
    # C-LF set lies within a few standard errors of the point estimate
    se = np.sqrt(sigma[6, 6])
    assert abs((lb[0] + ub[0]) / 2 - beta[6]) < 2 * se and ub[0] - lb[0] < 6 * se
    bd = rm.breakdown
    assert 0 < bd < 2
    below = h.sensitivity_rm(beta, sigma, 6, 11, [bd * 0.97])
    above = h.sensitivity_rm(beta, sigma, 6, 11, [bd * 1.03])
    assert below["lb"].iloc[0] > 0 >= above["lb"].iloc[0]
    avg = h.honest_did(res, grid=[0, 1], target="average")
    assert np.allclose(avg.l_vec, 1 / 11)
    assert avg.table["lb"].iloc[0] < avg.estimate < avg.table["ub"].iloc[0]
    # the average's conditional set at Mbar = 1 is wider than the first period's
    width = avg.table["ub"] - avg.table["lb"]
    assert width.iloc[1] > ub[1] - lb[1]
    sd = h.honest_did(res, type="smoothness", target="average", grid=[0, 0.01])
    f0 = h.flci(beta, sigma, 6, 11, 0.0, np.full(11, 1 / 11))
    assert sd.table["lb"].iloc[0] == pytest.approx(f0.lb, rel=1e-12)


def test_lasso_path_satisfies_kkt() -> None:
    # the FLCI frontier comes from the homotopy path of min 0.5 z'Qz + g'z + mu |z|_1:
    # check the optimality conditions Qz + g = -mu sign(z) on the support and
    # |Qz + g| <= mu off it at points inside every segment (exact up to rounding)
    rng = np.random.default_rng(5)
    r = rng.normal(size=(7, 7))
    q = r @ r.T + 0.5 * np.eye(7)
    g = rng.normal(size=7) * 3
    segments = h._lasso_path(q, g)
    assert segments[0][1] == pytest.approx(np.abs(g).max())
    assert segments[-1][0] == 0.0
    np.testing.assert_allclose(segments[-1][2], -np.linalg.solve(q, g), rtol=1e-9, atol=1e-12)
    for mu_lo, mu_hi, p, d in segments:
        for mu in (mu_lo + 0.3 * (mu_hi - mu_lo), mu_lo + 0.7 * (mu_hi - mu_lo)):
            z = p + mu * d
            grad = q @ z + g
            on = np.abs(z) > 1e-12
            np.testing.assert_allclose(grad[on], -mu * np.sign(z[on]), atol=1e-9 * mu)
            assert np.all(np.abs(grad[~on]) <= mu * (1 + 1e-9))


def test_flci_long_window_is_optimal_against_random_weights() -> None:
    m = 0.01
    beta, sigma = _synthetic_event_study(6, 11)
    lv = np.full(11, 1 / 11)
    f = h.flci(beta, sigma, 6, 11, m, lv)
    dmat, avec, c, const = h._sd_bias_matrix(6, 11, lv)
    rng = np.random.default_rng(0)
    for scale in (0.01, 0.1, 1.0):
        for _ in range(100):
            w = f.vec[:6] + rng.normal(scale=scale, size=6)
            w[-1] += c - avec @ w
            v = np.concatenate([w, lv])
            sd = np.sqrt(v @ sigma @ v)
            bias = m * (np.abs(dmat @ w).sum() + const)
            hl = sd * h._folded_normal_quantile(0.95, bias / sd)
            assert hl >= f.halflength * (1 - 1e-9)
