"""Conformal inference for SC-type estimators (Chernozhukov, Wüthrich & Zhu 2021)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CANONICAL, mc_reps, needs_data

from zoneimpact.errors import EstimationError, SpecError
from zoneimpact.estimators import augmented_sc, synthetic_control, synthetic_did, twfe
from zoneimpact.inference.conformal import (
    conformal_inference,
    conformal_pvalue,
    permutations,
    statistic,
)
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress

set_progress(False)

PROP99 = "canonical/california_prop99.csv"


def sc_world(
    rng: np.random.Generator,
    *,
    n_donors: int = 15,
    T: int = 20,
    T0: int = 14,
    effect: float | np.ndarray = 0.0,
    noise: float = 0.5,
    shift: float = 0.0,
    scale: float = 1.0,
) -> Panel:
    """Donors follow two stationary factors (AR(1), rho 0.5, around a common trend); the
    treated unit is a convex combination of three donors' loadings plus iid noise,
    treated from period ``T0`` with ``effect``. (With random-walk factors the SC refit
    under the null can absorb a level shift by re-weighting donors that happen to grow
    after ``T0``, and the test loses power: CWZ's method needs a model that does not
    overfit the post-treatment periods.)"""
    e = rng.normal(0, 1, (T, 2))
    F = np.zeros((T, 2))
    for t in range(T):
        F[t] = (0.5 * F[t - 1] if t else 0.0) + e[t]
    F = 3 * F + np.linspace(0, 5, T)[:, None]
    load = rng.uniform(0, 1, (n_donors, 2))
    w = np.zeros(n_donors)
    w[rng.choice(n_donors, 3, replace=False)] = rng.dirichlet(np.ones(3))
    Y0 = load @ F.T + rng.normal(0, noise, (n_donors, T))
    y = (w @ load) @ F.T + rng.normal(0, noise, T)
    path = np.zeros(T)
    path[T0:] = effect
    y = y + path
    rows = [(f"d{j:02d}", t, Y0[j, t], 0) for j in range(n_donors) for t in range(T)]
    rows += [("treated", t, y[t], T0) for t in range(T)]
    frame = pd.DataFrame(rows, columns=["unit", "time", "y", "g"])
    frame["y"] = frame["y"] * scale + shift
    return Panel.from_frame(frame, unit="unit", time="time", outcomes="y", cohort="g")


def _sc(panel: Panel):
    return synthetic_control.fit(panel, outcome="y", placebos=False)


# ------------------------------------------------------------------------------ the test itself
def test_statistic_and_permutations_follow_cwz() -> None:
    u = np.array([1.0, -2.0, 3.0, -4.0])
    post = np.array([False, False, True, True])
    # S_q of CWZ = (T*^{-1/2} sum |u_t|^q)^{1/q}
    assert statistic(u, post, 1.0) == pytest.approx(7 / np.sqrt(2))
    assert statistic(u, post, 2.0) == pytest.approx(np.sqrt(25 / np.sqrt(2)))
    assert statistic(u, post, np.inf) == pytest.approx(4.0)
    shifts = permutations(4, "moving_block", None, None)
    assert shifts.shape == (4, 4) and sorted(map(tuple, shifts))[0] == (0, 1, 2, 3)
    assert (shifts[1] == [1, 2, 3, 0]).all()
    iid = permutations(4, "iid", 50, 1)
    assert iid.shape == (51, 4) and (iid[0] == np.arange(4)).all()


def test_exact_fit_gives_extreme_pvalues() -> None:
    # no noise: under the true effect path the residuals are 0 (p = 1); under no effect
    # the post-period residuals dominate every shifted block (p at its minimum, 1/T)
    panel = sc_world(np.random.default_rng(1), effect=5.0, noise=0.0)
    res = _sc(panel)
    assert conformal_pvalue(res, panel, theta0=5.0) == pytest.approx(1.0)
    assert conformal_pvalue(res, panel, theta0=0.0) <= 2 / 20


def test_size_under_the_null() -> None:
    # CWZ: with exchangeable errors the permutation test is exact: under no effect,
    # P(p <= 0.1) = 2/20 for the 20 cyclic shifts; binomial SD over 100 panels is 0.03
    n = mc_reps(100, 1000)
    pvals = []
    for k in range(n):
        panel = sc_world(np.random.default_rng(100 + k))
        pvals.append(conformal_pvalue(_sc(panel), panel))
    rate = np.mean(np.asarray(pvals) <= 0.1)
    assert 0.02 <= rate <= 0.2
    # and it has power against an effect of 8 noise SDs (0.77 over 30 panels; not near 1:
    # the refit under the null can re-weight donors to absorb part of a level shift)
    power = np.mean(
        [
            conformal_pvalue(_sc(p), p) <= 0.1
            for p in (sc_world(np.random.default_rng(500 + k), effect=4.0) for k in range(20))
        ]
    )
    assert power >= 0.5


def test_intervals_cover_the_effect() -> None:
    effect = np.linspace(1.0, 3.0, 6)
    panel = sc_world(np.random.default_rng(3), effect=effect, noise=0.3)
    out = conformal_inference(_sc(panel), panel, alpha=0.1)
    t = out.table.set_index("term")
    assert list(t.index) == ["att", *[f"calendar:{p}" for p in range(14, 20)]]
    for k, p in enumerate(range(14, 20)):
        assert t.loc[f"calendar:{p}", "ci_low"] < effect[k] < t.loc[f"calendar:{p}", "ci_high"]
    # the joint test of the true path does not reject, and finds it more plausible than
    # no effect
    p_true = conformal_pvalue(_sc(panel), panel, theta0=effect)
    assert p_true > 0.1 and out.p_value < p_true
    assert out.residuals.shape == (20,)
    assert out.tidy().columns.tolist() == ["term", "estimate", "p_value", "conf_low", "conf_high"]


def test_shift_and_scale() -> None:
    base_panel = sc_world(np.random.default_rng(4), effect=1.0)
    base = conformal_inference(_sc(base_panel), base_panel, n_grid=30)
    moved = sc_world(np.random.default_rng(4), effect=1.0, shift=100.0, scale=3.0)
    out = conformal_inference(_sc(moved), moved, n_grid=30)
    # SC weights sum to one, so a common shift drops out; intervals scale with the outcome
    # (bisection stops at 1e-9 relative)
    np.testing.assert_allclose(out.table["p_value"], base.table["p_value"])
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(out.table[col], 3 * base.table[col], rtol=1e-6, atol=1e-6)


def test_iid_permutations_are_reproducible() -> None:
    panel = sc_world(np.random.default_rng(6), effect=1.0)
    res = _sc(panel)
    a = conformal_pvalue(res, panel, permutation="iid", n_permutations=500, rng=7)
    b = conformal_pvalue(res, panel, permutation="iid", n_permutations=500, rng=7)
    assert a == b and 1 / 501 <= a <= 1


# ------------------------------------------------------------------------------ the estimators
@needs_data(PROP99)
def test_prop99_with_sc_augmented_sc_and_sdid() -> None:
    # No published conformal numbers for Prop 99 were found; the checks are structural:
    # every estimator's per-year intervals contain its own gap estimate, and the effect
    # is significant at 10% in the 1990s for SC and SDID (the result of every method on
    # these data, e.g. ADH 2010 Figure 8's permutation rank 1 of 39).
    frame = pd.read_csv(CANONICAL / "california_prop99.csv", sep=";")
    panel = Panel.from_frame(
        frame, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )
    fits = {
        "synthetic_control": synthetic_control.fit(
            panel, outcome="PacksPerCapita", placebos=False, rng=1
        ),
        "augmented_sc": augmented_sc.fit(panel, outcome="PacksPerCapita", se=False),
        "synthetic_did": synthetic_did.fit(panel, outcome="PacksPerCapita", se_method=None),
    }
    for name, res in fits.items():
        before = res.terms.copy()
        out = conformal_inference(res, panel, n_grid=25)
        pd.testing.assert_frame_equal(res.terms, before)  # the result is not changed
        per = out.table[out.table["term"].str.startswith("calendar:")]
        assert len(per) == 12
        inside = (per["ci_low"] <= per["estimate"]) & (per["estimate"] <= per["ci_high"])
        assert inside.all(), name
        if name != "augmented_sc":
            late = per[per["term"] >= "calendar:1993"]
            assert (late["p_value"] <= 0.1).all(), name
    # the estimates reported are the results' own
    out = conformal_inference(fits["synthetic_control"], panel, n_grid=25)
    est = out.table.set_index("term")["estimate"]
    assert est["calendar:1995"] == fits["synthetic_control"].gaps[1995]
    assert est["att"] == fits["synthetic_control"].estimate


def test_bad_input_named_errors() -> None:
    panel = sc_world(np.random.default_rng(8))
    res = _sc(panel)
    with pytest.raises(SpecError, match="theta0"):
        conformal_pvalue(res, panel, theta0=[1.0, 2.0])
    with pytest.raises(SpecError, match="permutation"):
        conformal_pvalue(res, panel, permutation="bootstrap")
    with pytest.raises(SpecError, match="Panel"):
        conformal_pvalue(res, panel.data)
    other = sc_world(np.random.default_rng(9))
    frame = other.data.assign(g=other.data["cohort"].replace(np.inf, 0)).drop(columns="cohort")
    with pytest.raises(SpecError, match="result.estimator"):
        conformal_pvalue(twfe.fit(other, outcome="y"), other)
    frame.loc[frame["unit"] == "d00", "g"] = 16
    staggered = Panel.from_frame(frame, unit="unit", time="time", outcomes="y", cohort="g")
    sd = synthetic_did.fit(staggered, outcome="y", se_method=None)
    with pytest.raises(EstimationError, match="one treatment date"):
        conformal_pvalue(sd, staggered)


def test_peer_scinference_if_installed() -> None:
    # scinference (PyPI port of CWZ's R package) on the DID counterfactual model: the same
    # permutation p-values exactly, and interval ends within its grid step (0.05); its
    # import needs cvxpy, and a missing peer skips
    peer = pytest.importorskip("scinference.conformal")
    grid = np.linspace(-30, 30, 1201)
    for k in range(8):
        panel = sc_world(np.random.default_rng(k), effect=1.5)
        res = synthetic_did.fit(panel, outcome="y", method="did", se_method=None)
        wide = panel.wide("y")
        y1 = wide.loc["treated"].to_numpy()
        Y0 = wide.drop(index="treated").to_numpy().T
        for theta in (0.0, 1.5, 3.0):
            ours = conformal_pvalue(res, panel, theta0=theta)
            assert ours == peer.movingblock(y1, Y0, 6, 14, theta, "did")
        ci = peer.confidence_interval(y1, Y0, 6, 14, "did", 0.1, grid)
        per = conformal_inference(res, panel, alpha=0.1, n_grid=40).table.iloc[1:]
        np.testing.assert_allclose(per["ci_low"], ci["lb"], atol=0.05)
        np.testing.assert_allclose(per["ci_high"], ci["ub"], atol=0.05)
