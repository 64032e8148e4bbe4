"""Breaker findings on ETWFE, IFE, PPML and Bacon (session fixes): units treated in every
period in linear ETWFE, non-converged IFE fits and bootstrap replications, separation in
PPML, cohorts sharing a timing in Bacon, and a far-from-zero covariate in Poisson ETWFE."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError
from zoneimpact.estimators import bacon, etwfe, ife, imputation, ppml, twfe
from zoneimpact.estimators._fe import absorb
from zoneimpact.estimators.twfe import _gram_full_rank
from zoneimpact.panel import Panel


def _sim(
    seed: int,
    n: int = 40,
    t: int = 10,
    cohorts: tuple[int, ...] = (5, 7),
    poisson: bool = False,
) -> pd.DataFrame:
    """Half the units treated in ``cohorts`` (alternating), effect ``1 + 0.2 e`` (linear)
    or a log-point 0.3 (Poisson), unit and period effects, a covariate ``x``."""
    rng = np.random.default_rng(seed)
    g = np.zeros(n)
    g[: n // 2] = np.asarray(cohorts, float)[np.arange(n // 2) % len(cohorts)]
    a, xi = rng.normal(size=n), rng.normal(size=t)
    rows = []
    for i in range(n):
        for s in range(1, t + 1):
            d = g[i] > 0 and s >= g[i]
            if poisson:
                y = float(rng.poisson(np.exp(1 + 0.5 * a[i] + 0.3 * xi[s - 1] + 0.3 * d)))
            else:
                y = a[i] + xi[s - 1] + (1 + 0.2 * (s - g[i]) if d else 0.0) + rng.normal()
            rows.append((i + 1, s, y, g[i], rng.normal() + 0.3 * a[i]))
    return pd.DataFrame(rows, columns=["unit", "time", "y", "g", "x"])


def _always_treated() -> pd.DataFrame:
    df = _sim(4)
    df.loc[df["unit"] <= 4, "g"] = 1  # units 1-4 treated in every period
    return df.assign(D=((df["g"] > 0) & (df["time"] >= df["g"])).astype(int))


def _by_treatment(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcomes="y", treatment="D")


# ------------------------------------------------------------------ 1. ETWFE always treated
def test_gram_rank_check_sees_rounding_level_collinearity() -> None:
    # the always-treated cohort's cell dummies add up to its units' dummies: exactly
    # collinear, yet the normalised Gram's smallest eigenvalue is -1.1e-14, which
    # numpy.linalg.matrix_rank (tolerance 20 eps times the largest eigenvalue) called non-zero
    df = _always_treated()
    g = df["g"].replace(0, np.inf)
    cells = [(c, s) for c in (1, 5, 7) for s in range(1, 11) if s >= c]
    X = np.column_stack([((g == c) & (df["time"] == s)).to_numpy(float) for c, s in cells])
    Xd, _ = absorb(X, [pd.factorize(df["unit"])[0], pd.factorize(df["time"])[0]])
    U = Xd / np.sqrt((Xd**2).sum(axis=0))
    assert np.linalg.matrix_rank(U.T @ U) == len(cells)  # the old check's verdict
    assert not _gram_full_rank(U.T @ U, len(U))
    # and a well-conditioned design (the same without cohort 1) still passes
    keep = [j for j, (c, _) in enumerate(cells) if c != 1]
    rows = (g != 1).to_numpy()
    Xd2, _ = absorb(X[rows][:, keep], [pd.factorize(df["unit"][rows])[0], df["time"][rows]])
    U2 = Xd2 / np.sqrt((Xd2**2).sum(axis=0))
    assert _gram_full_rank(U2.T @ U2, len(U2))


@pytest.mark.parametrize("control_group", ["not_yet_treated", "never_treated"])
def test_etwfe_drops_always_treated_cells_with_a_warning(control_group: str) -> None:
    # before: not_yet_treated att 0.650 with SE 100,393 (the cohort's cells were rounding
    # noise), never_treated 0.841 with SE 0. Those cells are not identified (their sum is
    # their units' dummies); dropping their rows must give the fit without units 1-4
    # exactly (same regression, so to rounding: 1e-10)
    df = _always_treated()
    with pytest.warns(
        UserWarning, match=r"40 unit-period\(s\) of cohort x period cells.*unit 1, period 1"
    ) as rec:
        got = etwfe.fit(_by_treatment(df), outcome="y", control_group=control_group)
    assert rec[0].filename == __file__
    ref = etwfe.fit(_by_treatment(df[df["unit"] > 4]), outcome="y", control_group=control_group)
    assert got.info["n_dropped_unidentified"] == 40
    assert (got.att_gt["cohort"] != 1).all()
    a, b = got.terms.set_index("term"), ref.terms.set_index("term")
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-8)
    if control_group == "not_yet_treated":
        # Wooldridge (2021, Theorem 6.1): on a balanced panel the cells equal the
        # imputation estimator's, which drops the same 40 rows (1.0909 here)
        with pytest.warns(UserWarning, match="no imputable"):
            bjs = imputation.fit(_by_treatment(df), outcome="y")
        assert got.estimate == pytest.approx(bjs.estimate, abs=1e-10)
        assert got.estimate == pytest.approx(1.0909278844, abs=1e-8)


def test_etwfe_period_without_untreated_rows_is_dropped() -> None:
    # no never-treated units: in periods 7-10 every unit is treated, so the period effect
    # and the cells of those periods cannot be told apart; the cells of periods 5-6
    # (cohort 5 against not-yet-treated cohort 7) remain, as in the imputation estimator
    df = _sim(2)
    df = df[df["g"] > 0]
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    with pytest.warns(UserWarning, match="none in their period") as rec:
        got = etwfe.fit(p, outcome="y")
    assert rec[0].filename == __file__
    assert sorted(got.att_gt["time"].unique()) == [5, 6]
    with pytest.warns(UserWarning, match="no imputable"):
        bjs = imputation.fit(p, outcome="y")
    # Wooldridge (2021, Theorem 6.1) equivalence on the identified cells: to rounding
    assert got.estimate == pytest.approx(bjs.estimate, abs=1e-10)


# ------------------------------------------------------------------ 2. IFE convergence
def _drifting_panel() -> Panel:
    """IFE with r=3 on a panel of 2 true factors: the EM drifts along a flat direction
    (a treated unit's loading grows without bound) and the ATT leaves any sensible range
    (breaker's ife_diverge.py, its second draw)."""
    rng = np.random.default_rng(1)
    for _ in range(2):
        n, t = 20, 12
        F, L = rng.normal(size=(t, 2)), rng.normal(size=(n, 2))
        X = rng.normal(size=(n, t)) + 0.5 * L[:, [0]]
        Y = (
            rng.normal(size=(n, 1))
            + rng.normal(size=(1, t))
            + L @ F.T
            + 2 * X
            + 0.5 * rng.normal(size=(n, t))
        )
        g = np.where(np.arange(n) < 8, np.where(np.arange(n) % 2, 9, 11), 0)
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t),
            "time": np.tile(np.arange(1, t + 1), n),
            "y": Y.ravel(),
            "x": X.ravel(),
            "g": np.repeat(g, t),
        }
    )
    return Panel.from_frame(
        df, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"]
    )


def test_ife_warns_when_the_fit_does_not_converge() -> None:
    p = _drifting_panel()
    with pytest.warns(UserWarning, match=r"did not converge within max_iter=300.*drifts") as rec:
        res = ife.fit(
            p, outcome="y", covariates=["x"], r=3, se_method=None, diagnostics=False, max_iter=300
        )
    assert rec[0].filename == __file__
    assert "smaller r" in str(rec[0].message)
    assert res.info["converged"] is False
    # the true effect is 0; the drifting fit's ATT is far off (33 at 1000 iterations)
    assert abs(res.estimate) > 5
    # the model with the true number of factors converges silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = ife.fit(p, outcome="y", covariates=["x"], r=2, se_method=None, diagnostics=False)
    assert ok.info["converged"] is True


def test_ife_bootstrap_leaves_out_non_converged_replications() -> None:
    # 2 of 10 unit-bootstrap draws of the drifting r=3 model stop at max_iter with
    # arbitrary ATTs; they are NaN in the replicates, counted, and the SE is the standard
    # deviation of the converged draws only (recomputed here from the replicates); with
    # more than 10% failed the SE is NaN rather than a number dominated by them
    p = _drifting_panel()
    kw = dict(covariates=["x"], se_method="bootstrap", diagnostics=False, max_iter=200)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = ife.fit(p, outcome="y", r=3, n_reps=10, rng=np.random.default_rng(0), **kw)
    msgs = [str(w.message) for w in rec if "replications did not converge" in str(w.message)]
    n_failed = res.info["n_reps_not_converged"]
    assert n_failed > 0 and len(msgs) == 1
    assert msgs[0].startswith(f"{n_failed} of 10 bootstrap replications")
    assert [w.filename for w in rec if "replications" in str(w.message)] == [__file__]
    assert n_failed > 1  # > 10% of 10: every draw NaN, so is the SE
    assert np.isnan(res.replicates).all() and np.isnan(res.se)


def test_ife_bootstrap_se_excludes_one_failed_replication() -> None:
    # breaker's ife_boot_se.py: one of 60 draws did not converge (ATT 58.5 against 0.9),
    # which took the SE from 0.66 to 7.47; now it is left out (1 of 60 < 10%)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_ife import factor_world

    panel, _ = factor_world(
        np.random.default_rng(5120), n_units=40, n_periods=16, cohorts=(11, 13), treated_share=0.3
    )
    with pytest.warns(UserWarning, match="1 of 60 bootstrap replications") as rec:
        res = ife.fit(
            panel,
            outcome="y",
            r=2,
            se_method="bootstrap",
            n_reps=60,
            diagnostics=False,
            rng=np.random.default_rng(120),
        )
    assert rec[0].filename == __file__
    assert res.info["n_reps_not_converged"] == 1
    draws = res.replicates[:, 0]
    assert np.isnan(draws).sum() == 1
    # the SE is the sample SD of the 59 converged draws (ddof=1, fect's bootstrap SE)
    assert res.se == pytest.approx(np.nanstd(draws, ddof=1), rel=1e-12)
    assert res.se < 1.0  # 0.66; was 7.47


# ------------------------------------------------------------------ 3. PPML separation
def test_ppml_refuses_a_separating_treatment_dummy() -> None:
    # every treated observation 0: the likelihood rises as beta -> -inf (Correia,
    # Guimaraes & Zylkin 2019); before, IRLS stopped at -32.0 with an SE of 0.335
    df = _sim(3, poisson=True)
    df.loc[(df["g"] > 0) & (df["time"] >= df["g"]), "y"] = 0.0
    p = Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g")
    with pytest.raises(EstimationError, match=r"0 in every treated observation.*-inf"):
        ppml.fit(p, outcome="y")


# ------------------------------------------------------------------ 4. Bacon timing groups
def test_bacon_merges_cohorts_with_the_same_timing() -> None:
    # biennial periods 2000, 2002, ...: cohorts 2001 and 2002 are both first treated in
    # 2002, one timing group of Theorem 1. Before, their 2x2 had a NaN estimate and the
    # type averages were NaN. The merged decomposition must equal the one of the panel
    # recoded 2001 -> 2002 (same groups), sum to 1 and reproduce the TWFE coefficient
    df = _sim(5, t=6, cohorts=(2, 3, 4))
    df["time"] = 2000 + 2 * (df["time"] - 1)
    df["g"] = df["g"].map({0: 0, 2: 2001, 3: 2002, 4: 2004})
    res = bacon.fit(
        Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g"), outcome="y"
    )
    ref_df = df.assign(g=df["g"].replace({2001: 2002}))
    ref = bacon.fit(
        Panel.from_frame(ref_df, unit="unit", time="time", outcomes="y", cohort="g"), outcome="y"
    )
    assert np.isfinite(res.comparisons["estimate"]).all()
    pd.testing.assert_frame_equal(res.comparisons, ref.comparisons)
    assert res.info["cohorts_merged"] == "2001->2002"
    assert res.info["weight_sum"] == pytest.approx(1.0, abs=1e-12)
    assert np.isfinite(res.info["estimate_earlier_vs_later"])
    tw = twfe.fit(
        Panel.from_frame(df, unit="unit", time="time", outcomes="y", cohort="g"), outcome="y"
    )
    total = float(res.comparisons["weight"] @ res.comparisons["estimate"])
    assert total == pytest.approx(tw.estimate, abs=1e-10)


# ------------------------------------------------------------------ 5. Poisson covariate shift
def test_etwfe_poisson_invariant_to_shifting_a_covariate() -> None:
    # x + c reparametrises the covariate terms (c times a period or cohort dummy is in
    # the model), so ATT and SE must not move; before, the SE went 0.426 -> 0.742 at
    # +1e5 and the design was called collinear at +3e5. Reference: the unshifted fit;
    # tolerance 1e-8 relative (IRLS to 1e-12)
    df = _sim(1, poisson=True)

    def fit(shift: float) -> pd.Series:
        d = df.assign(x=df["x"] + shift)
        p = Panel.from_frame(
            d, unit="unit", time="time", outcomes="y", cohort="g", covariates=["x"]
        )
        res = etwfe.fit(p, outcome="y", method="poisson", covariates=["x"])
        return res.terms.set_index("term").loc["att", ["estimate", "se"]]

    base = fit(0.0)
    for shift in (1e5, 3e5, 1e6):
        np.testing.assert_allclose(fit(shift), base, rtol=1e-8)
