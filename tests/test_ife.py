"""Interactive fixed effects (Xu 2017; fect "ife"): references, known truth, invariances.

``factor_world`` is the factor-model DGP of the Monte Carlo here and of
``benchmarks/mc_factor.py`` / ``benchmarks/bench_factor.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CANONICAL, mc_reps, needs_data

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import REGISTRY, callaway_santanna, check_options, ife, imputation, twfe
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)

SIMDATA = "canonical/gsynth_simdata.csv"
TURNOUT = "canonical/gsynth_turnout.csv"
MPDTA = "canonical/mpdta.csv"

# gsynth's simdata (canonical/gsynth_simdata.SOURCE.txt): the true ATT over the 50 treated
# unit-periods and by period 21..30, computed from its `eff` column (realised effects).
SIM_TRUE_ATT = 5.462
SIM_TRUE_BY_PERIOD = [0.532, 2.121, 3.110, 3.321, 4.977, 5.792, 7.685, 7.928, 9.314, 9.841]
# The simulation's covariate coefficients: regressing Y - eff*D - mu - alpha - xi - F1 L1 -
# F2 L2 - error on (X1, X2) gives exactly (1, 3) (residual 7e-15).
SIM_TRUE_BETA = (1.0, 3.0)


def factor_world(
    rng: np.random.Generator,
    *,
    n_units: int = 60,
    n_periods: int = 24,
    treated_share: float = 0.3,
    cohorts: tuple[int, ...] = (16, 18, 20),
    selection: float = 1.0,
    effect: float = 1.0,
    slope: float = 0.1,
    beta: float = 0.0,
    noise: float = 1.0,
    anticipation: float = 0.0,
    select_factor: int = 0,
) -> tuple[Panel, float]:
    """A two-factor panel where treatment selects on a trending factor's loading.

    ``Y_it(0) = alpha_i + xi_t + lambda_i' f_t + beta x_it + e_it`` with ``f_1t = 3t/T +
    N(0, 0.5^2)`` (a trend), ``f_2t`` a stationary AR(1) (rho 0.5, unit innovations),
    ``lambda ~ N(0, I)`` plus ``selection`` on the first loading of the treated units (so
    their untreated trend is steeper: parallel trends fail; ``select_factor=1`` shifts the
    second, stationary factor's loading instead), ``x = N(0, 1) + 0.5 lambda_1``,
    unit and time effects and errors N(0, 1). Treated units adopt in ``cohorts`` (in
    turn); the effect is ``effect + slope * E`` at event time ``E >= 0`` (and
    ``anticipation`` in the two periods before adoption, for the diagnostics' power).
    Returns the panel (outcome ``y``, covariate ``x``) and the true ATT over the treated
    cells.
    """
    N, T = n_units, n_periods
    n_tr = int(round(treated_share * N))
    cohort = np.full(N, np.inf)
    cohort[:n_tr] = np.asarray(cohorts, float)[np.arange(n_tr) % len(cohorts)]
    t = np.arange(T, dtype=float)
    f2 = np.zeros(T)
    innov = rng.normal(0, 1, T)
    for s in range(T):
        f2[s] = (0.5 * f2[s - 1] if s else 0.0) + innov[s]
    F = np.column_stack([3.0 * t / T + rng.normal(0, 0.5, T), f2])
    L = rng.normal(0, 1, (N, 2))
    L[:n_tr, select_factor] += selection
    alpha = rng.normal(0, 1, N)
    xi = rng.normal(0, 1, T)
    X = rng.normal(0, 1, (N, T)) + 0.5 * L[:, [0]]
    E = t[None, :] - cohort[:, None]
    D = E >= 0
    tau = np.where(D, effect + slope * np.where(D, E, 0.0), 0.0)
    tau = tau + anticipation * ((E >= -2) & (E < 0))
    Y = alpha[:, None] + xi[None, :] + L @ F.T + beta * X + tau + rng.normal(0, noise, (N, T))
    frame = pd.DataFrame(
        {
            "unit": np.repeat([f"u{i:03d}" for i in range(N)], T),
            "time": np.tile(np.arange(T), N),
            "y": Y.ravel(),
            "x": X.ravel(),
            "g": np.repeat(np.where(np.isinf(cohort), 0, cohort), T),
        }
    )
    panel = Panel.from_frame(
        frame, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"]
    )
    return panel, float(tau[D].mean())


def _t(res) -> pd.DataFrame:
    return res.terms.set_index("term")


@pytest.fixture(scope="module")
def simdata() -> Panel:
    frame = pd.read_csv(CANONICAL / "gsynth_simdata.csv")
    return Panel.from_frame(
        frame, unit="id", time="time", outcomes="Y", treatment="D", covariates=["X1", "X2"]
    )


@pytest.fixture(scope="module")
def turnout() -> Panel:
    frame = pd.read_csv(CANONICAL / "gsynth_turnout.csv")
    return Panel.from_frame(
        frame,
        unit="abb",
        time="year",
        outcomes="turnout",
        treatment="policy_edr",
        covariates=["policy_mail_in", "policy_motor"],
    )


# ------------------------------------------------------------------------------ references
@needs_data(SIMDATA)
@pytest.mark.parametrize("factors_from", ["not_yet_treated", "never_treated"])
def test_simdata_recovers_the_simulation_truth(simdata, factors_from) -> None:
    # No estimate printed by gsynth/fect for simdata could be found in their tutorials,
    # vignettes or tests (the rendered outputs are not stored; the .Rmd sources print
    # none), so the check is against the simulation's truth. The DGP has two factors.
    res = ife.fit(
        simdata,
        outcome="Y",
        covariates=["X1", "X2"],
        rng=np.random.default_rng(20261122),
        factors_from=factors_from,
        se_method=None,
        diagnostics=False,
    )
    assert res.info["r"] == 2
    # bootstrap SEs of the ATT are about 0.25 (see the parametric test below): +-0.5 is
    # two of them; estimates are 5.58 (IFE-EM) and 5.54 (gsynth's estimator)
    assert res.estimate == pytest.approx(SIM_TRUE_ATT, abs=0.5)
    t = _t(res)
    by_period = np.array([t.loc[f"calendar:{p}", "estimate"] for p in range(21, 31)])
    # per-period estimates average 5 treated cells (SE about 0.5): within 1.5 of the truth
    assert np.abs(by_period - SIM_TRUE_BY_PERIOD).max() < 1.5
    assert np.corrcoef(by_period, SIM_TRUE_BY_PERIOD)[0, 1] > 0.97
    # event time 0 is period 21: the two agree for one cohort
    assert t.loc["event:0", "estimate"] == pytest.approx(t.loc["calendar:21", "estimate"])
    assert res.beta.to_numpy() == pytest.approx(SIM_TRUE_BETA, abs=0.1)


@needs_data(SIMDATA)
def test_simdata_parametric_bootstrap_covers_truth(simdata) -> None:
    res = ife.fit(
        simdata,
        outcome="Y",
        covariates=["X1", "X2"],
        r=2,
        factors_from="never_treated",
        rng=np.random.default_rng(7),
        se_method="parametric",
        n_reps=60,
        diagnostics=False,
    )
    # 5 treated units, errors N(0, 1): the ATT's SE is about 1/sqrt(50) plus the loadings'
    # estimation error, 0.15-0.4
    assert 0.15 < res.se < 0.4
    lo, hi = res.conf_int().loc["att"]
    assert lo < SIM_TRUE_ATT < hi
    assert res.replicates.shape == (60, len(res.terms) + 1)


@needs_data(TURNOUT)
def test_turnout_matches_gsynth(turnout) -> None:
    # R gsynth on turnout with Xu's (2017) tutorial call (force = "two-way", CV over r in
    # 0..5, covariates policy_mail_in and policy_motor) selects r = 2 and reports an ATT of
    # 4.90 percentage points, as printed in the comparison table of the gsynth Python port's
    # tutorial (github.com/dwrich27/Gsynth-Python, docs/tutorials/turnout.md, "R gsynth"
    # column). The paper's own text could not be retrieved to confirm the "about 4.8" quoted
    # in the issue, so this secondary source is the reference; tolerance: half a unit of
    # the printed last digit.
    res = ife.fit(
        turnout,
        outcome="turnout",
        covariates=["policy_mail_in", "policy_motor"],
        factors_from="never_treated",
        rng=np.random.default_rng(2139),
        se_method=None,
        diagnostics=False,
    )
    assert res.info["r"] == 2
    assert res.estimate == pytest.approx(4.90, abs=0.005)
    # fect's IFE-EM (factors from every untreated cell) gives a close number
    em = ife.fit(
        turnout,
        outcome="turnout",
        covariates=["policy_mail_in", "policy_motor"],
        r=2,
        se_method=None,
        diagnostics=False,
    )
    assert em.estimate == pytest.approx(res.estimate, abs=0.3)


@needs_data(MPDTA)
def test_zero_factors_is_the_imputation_estimator(mpdta) -> None:
    # fect's documented equivalence IFE(r = 0) == FEct, and FEct is BJS imputation: same
    # least-squares problem, ours solved iteratively (tol 1e-11), BJS's exactly.
    ref = _t(imputation.fit(mpdta, outcome="lemp"))
    res = _t(
        ife.fit(mpdta, outcome="lemp", r=0, se_method=None, diagnostics=False, min_T0=1, tol=1e-11)
    )
    for term in ["att", "event:0", "event:1", "event:2", "event:3"]:
        assert res.loc[term, "estimate"] == pytest.approx(ref.loc[term, "estimate"], abs=1e-9)


# ------------------------------------------------------------------------------ Monte Carlo
def test_monte_carlo_unbiased_with_calibrated_se_where_twfe_and_cs_are_biased() -> None:
    reps = mc_reps(12, 200)
    rows = []
    for k in range(reps):
        panel, truth = factor_world(np.random.default_rng(1000 + k))
        res = ife.fit(
            panel,
            outcome="y",
            rng=np.random.default_rng(k),
            k=5,
            n_reps=60,
            diagnostics=False,
        )
        lo, hi = res.conf_int().loc["att"]
        rows.append(
            {
                "ife": res.estimate - truth,
                "se": res.se,
                "cover": lo <= truth <= hi,
                "twfe": twfe.fit(panel, outcome="y").estimate - truth,
                "cs": callaway_santanna.fit(panel, outcome="y", bootstrap=False).estimate - truth,
            }
        )
    mc = pd.DataFrame(rows)
    sd = mc["ife"].std(ddof=1)
    mcse = sd / np.sqrt(reps)
    # IFE: bias within 3 Monte Carlo SEs; the bootstrap SE matches the sampling SD (a SE
    # off by a factor such as sqrt(2) or the number of treated units fails this even at
    # 12 replications: the ratio's sampling spread is about 0.2 there)
    assert abs(mc["ife"].mean()) < 3 * mcse + 0.02
    assert 0.6 < mc["se"].mean() / sd < 1.6
    assert mc["cover"].mean() >= (0.75 if reps < 50 else 0.9)
    # TWFE and CS assume parallel trends, which the trending factor breaks: biased by more
    # than 5 of IFE's Monte Carlo SEs (about 1.4 and 0.45 outcome units in benchmarks/)
    for est in ("twfe", "cs"):
        assert mc[est].mean() > 5 * mcse
        assert mc[est].mean() > 0.3


# ------------------------------------------------------------------------------ invariances
@pytest.fixture(scope="module")
def world() -> tuple[Panel, float]:
    return factor_world(np.random.default_rng(5), n_units=40, n_periods=20, cohorts=(14, 16))


def _fit(panel: Panel, **kw):
    opts = dict(outcome="y", rng=np.random.default_rng(3), r=2, n_reps=10, diagnostics=False)
    opts.update(kw)
    return ife.fit(panel, **opts)


def _frame(panel: Panel) -> pd.DataFrame:
    d = panel.data.copy()
    d["g"] = d["cohort"].replace(np.inf, 0)
    return d.drop(columns="cohort")


def test_unit_labels_and_row_order_do_not_matter(world) -> None:
    panel, _ = world
    base = _fit(panel, diagnostics=True, placebo_periods=2, pretrend_min_share=0.9)
    d = _frame(panel)
    ids = d["unit"].unique()
    relabel = dict(zip(ids, np.random.default_rng(0).permutation(len(ids)) * 3 + 500, strict=True))
    d["unit"] = d["unit"].map(relabel)
    d = d.sample(frac=1.0, random_state=1)
    other = Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g")
    res = _fit(other, diagnostics=True, placebo_periods=2, pretrend_min_share=0.9)
    pd.testing.assert_frame_equal(res.terms, base.terms, rtol=1e-9, atol=1e-12)
    assert res.info["placebo_att"] == pytest.approx(base.info["placebo_att"], rel=1e-9)


# rescaling the bootstrap covariance by 1e200 squared overflows to inf, as it should
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("shift, scale", [(1000.0, 1.0), (0.0, 10.0), (0.0, 1e200)])
def test_shift_and_scale_equivariance(world, shift, scale) -> None:
    panel, _ = world
    base = _fit(panel)
    d = _frame(panel)
    d["y"] = d["y"] * scale + shift
    res = _fit(Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g"))
    # the unit effects absorb a constant; everything scales with the outcome (iterative
    # solver stopped at a tolerance relative to the outcome's SD: 1e-6)
    assert res.terms["estimate"].to_numpy() / scale == pytest.approx(
        base.terms["estimate"].to_numpy(), rel=1e-6, abs=1e-6
    )
    assert res.terms["se"].to_numpy() / scale == pytest.approx(
        base.terms["se"].to_numpy(), rel=1e-5, abs=1e-6
    )
    assert res.info["r"] == base.info["r"]


def test_n_jobs_gives_identical_draws(world) -> None:
    panel, _ = world
    a = _fit(panel, n_reps=12, diagnostics=False)
    b = _fit(panel, n_reps=12, diagnostics=False, n_jobs=2)
    np.testing.assert_array_equal(a.replicates, b.replicates)


def test_caller_frame_is_not_modified(world) -> None:
    panel, _ = world
    before = panel.data.copy()
    _fit(panel, n_reps=4, diagnostics=False, se_method="jackknife")
    pd.testing.assert_frame_equal(panel.data, before)


def test_unbalanced_panel_runs_and_stays_close(world) -> None:
    panel, _ = world
    d = _frame(panel)
    drop = np.random.default_rng(2).choice(len(d), size=20, replace=False)
    d = d.drop(index=d.index[drop])
    res = _fit(
        Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g"),
        se_method=None,
        diagnostics=False,
    )
    base = _fit(panel, se_method=None, diagnostics=False)
    assert res.estimate == pytest.approx(base.estimate, abs=0.3)
    assert res.n_obs == panel.data.shape[0] - 20


# ------------------------------------------------------------------------------ diagnostics
def test_diagnostics_pass_on_a_correct_model_and_fail_with_anticipation() -> None:
    shape = dict(n_units=60, n_periods=20, cohorts=(14, 16), treated_share=0.5)
    panel, _ = factor_world(np.random.default_rng(11), **shape)
    opts = dict(outcome="y", r=2, rng=np.random.default_rng(4), n_reps=40, pretrend_min_share=0.5)
    good = ife.fit(panel, **opts)
    diag = good.diagnostics.set_index("test")
    # 30 treated units and the pre-periods held by half of them: the F test is defined
    assert np.isfinite(good.info["pretrend_f"])
    assert good.info["pretrend_p"] > 0.01
    assert good.info["placebo_p"] > 0.01
    assert diag.loc["carryover", "note"].startswith("not applicable")
    assert len(good.leave_one_out) == 30
    assert good.info["equivalence_margin"] == pytest.approx(0.36 * good.info["sigma"])
    pre = good.pretrend.set_index("event")
    assert pre.loc[-1.0, "estimate"] == pytest.approx(_t(good).loc["event:-1", "estimate"])
    # out-of-sample errors exceed in-sample residuals in spread (the fit saw the latter)
    assert pre["estimate"].abs().mean() > pre["in_sample"].abs().mean()

    bad_panel, _ = factor_world(np.random.default_rng(11), anticipation=1.5, **shape)
    bad = ife.fit(bad_panel, **opts)
    # effects 1.5 in the two periods before adoption: the placebo periods (-3..-1) see it
    assert bad.info["placebo_p"] < 0.01
    assert bad.info["placebo_att"] > 0.5


def test_results_api(world) -> None:
    panel, _ = world
    res = _fit(panel, n_reps=8, diagnostics=True, pretrend_min_share=0.9)
    tidy = res.tidy()
    assert tidy["term"].iloc[0] == "att"
    assert {"effects", "pretrend", "diagnostics", "cv", "factors"} - set(res.artifacts()) <= {"cv"}
    assert res.effects["tau"].mean() == pytest.approx(res.estimate)
    assert res.factors.shape == (20, 2)
    assert res.vcov is not None and res.vcov.shape == (len(res.terms),) * 2
    double = res.rescaled(2.0)
    assert double.estimate == pytest.approx(2 * res.estimate)
    assert double.effects["tau"].to_numpy() == pytest.approx(2 * res.effects["tau"].to_numpy())


# ------------------------------------------------------------------------------ errors, registry
def test_registry_and_options() -> None:
    assert REGISTRY["ife"] == "zoneimpact.estimators.ife:fit"
    assert REGISTRY["matrix_completion"] == "zoneimpact.estimators.matrix_completion:fit"
    check_options("ife", {"r": 2, "se_method": "parametric"})
    with pytest.raises(SpecError, match="n_factors"):
        check_options("ife", {"n_factors": 2})


def test_bad_input_gets_named_errors(world) -> None:
    panel, _ = world
    with pytest.raises(SpecError, match="se_method"):
        _fit(panel, se_method="wild")
    with pytest.raises(SpecError, match="min_T0"):
        _fit(panel, r=6)
    with pytest.raises(SpecError, match="covariates"):
        _fit(panel, covariates=["nope"])
    with pytest.raises(SpecError, match="cv_prop"):
        _fit(panel, r=None, cv_prop=1.5)
    with pytest.raises(SpecError, match="factors_from"):
        _fit(panel, factors_from="controls")
    d = _frame(panel)
    d.loc[(d["unit"] == "u000") & (d["time"] == 3), "x"] = np.nan
    bad = Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"])
    with pytest.raises(EstimationError, match="covariate 'x' is missing for unit 'u000'"):
        _fit(bad, covariates="x")
    d = _frame(panel)
    d = d[~((d["unit"] == "u001") & (d["time"] < 12))]
    few = Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g")
    # as fect does, units with fewer than min_T0 untreated periods are dropped, by name
    with pytest.warns(UserWarning, match="dropped 1 unit.*'u001'"):
        res = _fit(few, min_T0=5, se_method=None, diagnostics=False)
    assert res.info["dropped_units"] == "u001" and res.n_units == 39
    d = _frame(panel)
    d["g"] = np.where(d["g"] == 0, 18, d["g"])  # every unit treated by period 18
    late = Panel.from_frame(d, unit="unit", time="time", outcomes="y", cohort="g")
    with pytest.raises(EstimationError, match="period 18 has no untreated"):
        _fit(late)
