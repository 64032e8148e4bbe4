"""SpilloverResult.with_inference: another clustering or Conley spatial HAC for the joint
inference (direct, spillover rings, totals, net, net per treated, displacement share)
without refitting the pieces, equal to a refit with ``cluster=`` / ``conley_km=``."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import piece_vectors_and_scores
from scipy import stats

from zoneimpact.errors import EstimationError, SpecError, ZoneImpactError
from zoneimpact.estimators import _bjs, _spillover_exact, spillover
from zoneimpact.exposure import build_exposure, exposure_from_adjacency
from zoneimpact.panel import Panel
from zoneimpact.parallel import set_progress
from zoneimpact.simulate import simulate

set_progress(False)
SMALL = dict(
    n_units=150,
    n_regions=30,
    first_year=2002,
    last_year=2016,
    waves={2006: 0.4, 2010: 0.3, 2013: 0.3},
)


@pytest.fixture(scope="module")
def panel() -> Panel:
    """The simulated zone world with two more unit-level cluster variables: ``province``
    (ten groups of three regions) in the geography, and its numeric code ``prov_code``
    as a panel column (constant within unit)."""
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    geo = sim.geography.copy()
    geo["province"] = "p" + (geo["region"].str[1:].astype(int) // 3).astype(str)
    frame = sim.frame.copy()
    frame["prov_code"] = (
        geo.set_index("unit")["province"].str[1:].astype(float).reindex(frame["unit"]).to_numpy()
    )
    return Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi", "patents"],
        covariates=["x", "prov_code"],
        geography=geo,
        adjacency=sim.adjacency,
    )


@pytest.fixture(scope="module")
def fitted(panel: Panel) -> spillover.SpilloverResult:
    # regional clusters (the default), CR2 and the region check in the joint scores
    return spillover.fit(panel, outcome="fdi", rng=11, n_boot=50)


@pytest.fixture(scope="module")
def satterthwaite(panel: Panel) -> spillover.SpilloverResult:
    """``fitted`` with the Satterthwaite df (the exact reference's fallback: above
    ``MAX_COLUMNS`` pieces x models x clusters, set here to 0)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_spillover_exact, "MAX_COLUMNS", 0)
        return spillover.fit(panel, outcome="fdi", rng=11, n_boot=50)


def _same(a: spillover.SpilloverResult, b: spillover.SpilloverResult, rtol: float) -> None:
    ta, tb = a.terms.set_index("term"), b.terms.set_index("term")
    assert list(ta.index) == list(tb.index)
    for col in ("estimate", "se", "df"):
        np.testing.assert_allclose(ta[col], tb[col], rtol=rtol, atol=0, err_msg=col)
    pd.testing.assert_frame_equal(a.draws, b.draws, check_exact=False, rtol=rtol, atol=1e-9)
    assert a.info["cluster"] == b.info["cluster"]
    assert a.info["n_clusters"] == b.info["n_clusters"]


def test_own_clustering_reproduces_every_term(fitted):
    # the fit's own clusters re-scored from the kept pieces: every term's estimate, SE and
    # degrees of freedom and the bootstrap draws (same seed) to 1e-12 — the same
    # arithmetic on the same numbers, so only summation order could differ
    terms = set(fitted.terms["term"])
    assert {"direct", "spillover", "net", "net_per_treated", "displacement_share"} <= terms
    assert "net_region_did" in terms
    again = fitted.with_inference("cluster", cluster="region", rng=11)
    _same(again, fitted, 1e-12)
    _same(fitted.with_inference(rng=11), fitted, 1e-12)


def test_another_cluster_column_equals_a_refit(panel, fitted):
    # provinces (a geography column of strings) re-scored = a refit with cluster="province"
    # (BJS leave-out averages and CR2 recomputed for the new clusters); the region check
    # then keeps its own regional SE. 1e-10: identical arithmetic, order of sums aside.
    refit = spillover.fit(panel, outcome="fdi", rng=11, n_boot=50, cluster="province")
    got = fitted.with_inference("cluster", cluster="province", rng=11)
    _same(got, refit, 1e-10)
    assert got.info["n_clusters"] == 10
    se = got.terms.set_index("term")["se"]
    assert not np.isclose(se["direct"], fitted.terms.set_index("term")["se"]["direct"])
    # the same partition as a numeric panel column or as a Series indexed by unit
    num = fitted.with_inference(cluster="prov_code", rng=11)
    np.testing.assert_allclose(num.terms["se"], got.terms["se"], rtol=1e-12)
    labels = panel.geography["province"]
    ser = fitted.with_inference(cluster=labels, rng=11)
    np.testing.assert_allclose(ser.terms["se"], got.terms["se"], rtol=1e-12)
    # and back to the regions: the joint region check returns
    back = got.with_inference(cluster="region", rng=11)
    _same(back, fitted, 1e-12)


def test_unit_clusters_and_callaway_santanna_base_equal_refits(panel):
    # the CS base re-sums its per-unit influence functions; unit clusters by a refit
    cs = spillover.fit(panel, outcome="fdi", rng=5, n_boot=20, base_estimator="callaway_santanna")
    refit = spillover.fit(
        panel, outcome="fdi", rng=5, n_boot=20, base_estimator="callaway_santanna", cluster="unit"
    )
    _same(cs.with_inference(cluster="unit", rng=5), refit, 1e-10)


def test_conley_equals_a_refit(panel, fitted):
    # unit scores (CR2 on unit clusters, as the fit does) times the kernel's root
    refit = spillover.fit(panel, outcome="fdi", rng=11, n_boot=50, conley_km=300.0)
    with pytest.warns(UserWarning, match="Conley spatial-HAC SEs") as rec:
        got = fitted.with_inference("conley", conley_km=300.0, rng=11)
    assert [w.filename for w in rec if "Conley spatial" in str(w.message)] == [__file__]
    _same(got, refit, 1e-10)
    assert got.info["cluster"] == "Conley (Uniform kernel, 300 km)"
    # the kernel's Satterthwaite df (re-scoring recomputes the vectors they need): finite,
    # and below the unit clusters' own, since the kernel pools neighbours' scores
    df, unit_df = (r.terms.set_index("term").loc[["direct", "net"], "df"]
                   for r in (got, fitted.with_inference(cluster="unit")))  # fmt: skip
    assert np.isfinite(df).all() and (df < unit_df).all()
    bart = fitted.with_inference("conley", conley_km=300.0, conley_kernel="bartlett", rng=11)
    _same(bart, spillover.fit(panel, outcome="fdi", rng=11, n_boot=50, conley_km=300.0,
                              conley_kernel="bartlett"), 1e-10)  # fmt: skip
    assert bart.info["cluster"] == "Conley (Bartlett kernel, 300 km)"


@pytest.mark.filterwarnings("ignore:Conley spatial-HAC SEs")
def test_a_pickled_result_redoes_its_inference(fitted):
    # a result sent through pickle (a joblib worker, a saved session) holds its frozen
    # arrays over an immutable buffer, on which scipy's sparse fancy indexing raised in the
    # Conley leave-out ("cannot set WRITEABLE flag"; a reviewer, session 45)
    again = pickle.loads(pickle.dumps(fitted))
    for method, kw in [("conley", {"conley_km": 300.0}), ("cluster", {"cluster": "unit"})]:
        a = fitted.with_inference(method, rng=11, **kw)
        b = again.with_inference(method, rng=11, **kw)
        # the same arithmetic on the same numbers: equal to the last bit
        pd.testing.assert_frame_equal(a.terms, b.terms, check_exact=True)
        pd.testing.assert_frame_equal(a.draws, b.draws, check_exact=True)


def test_original_result_is_unchanged(fitted):
    terms, draws, info = fitted.terms, fitted.draws, dict(fitted.info)
    new = fitted.with_inference("cluster", cluster="unit", rng=3, n_boot=10)
    assert new is not fitted and len(new.draws) == 10
    pd.testing.assert_frame_equal(fitted.terms, terms)
    pd.testing.assert_frame_equal(fitted.draws, draws)
    assert dict(fitted.info) == info
    assert fitted.info["cluster"] == "region" and new.info["cluster"] == "unit"


def test_ratio_bias_is_the_second_order_bias_of_the_share():
    # 1 - N/D for jointly normal totals with the scores' covariance, direct total's CV 0.13
    # (the 10-region design's is 0.15): the simulated mean bias, 0.0149 over 4,000,000
    # draws (Monte Carlo SE 1e-4), against Cochran's second-order term 0.0143; the gap is
    # the O(CV^4) remainder, so 1.5e-3 (10%) is the tolerance. At CV 0.26 the term
    # understates the bias by a quarter (0.057 against 0.078; not asserted)
    rng = np.random.default_rng(5)
    S = rng.normal(size=(20, 2)) * [4.5, 3.0]
    S[:, 0] += 1.2 * S[:, 1]  # net moves with the direct total, as the pieces share rows
    n_tot, d_tot = 60.0, 100.0
    got = spillover._ratio_bias(S[:, 0], S[:, 1], n_tot, d_tot)
    sd_d = np.sqrt(S[:, 1] @ S[:, 1])
    assert got["direct_total_cv"] == pytest.approx(sd_d / d_tot, rel=1e-12)
    draws = rng.multivariate_normal([n_tot, d_tot], S.T @ S, size=4_000_000)
    simulated = np.mean(1 - draws[:, 0] / draws[:, 1]) - (1 - n_tot / d_tot)
    assert got["displacement_share_ratio_bias"] == pytest.approx(simulated, abs=1.5e-3)
    assert got["displacement_share_ratio_bias"] > 0.01


@pytest.mark.parametrize(
    ("n_tot", "d_tot", "shape"),
    [(50.0, 100.0, "interval"), (50.0, 10.0, "interval"), (50.0, 3.0, "rays"), (1.0, 0.5, "line")],
)
def test_share_fieller_set_is_the_inverted_restriction_test(n_tot, d_tot, shape):
    # Fieller's set for 1 - N/D: every s whose restriction N - (1 - s) D = 0 a t test
    # with critical value 2.05 keeps. A grid inversion (step 5e-4) finds the same ends to
    # the grid step; with an imprecise D the set is two rays or the whole line, and the
    # hull of either, the whole line, is returned (a ray alone would under-cover)
    rng = np.random.default_rng(0)
    S = rng.normal(size=(30, 2))
    v_nn, v_dd, v_nd = S[:, 0] @ S[:, 0], S[:, 1] @ S[:, 1], S[:, 0] @ S[:, 1]
    lo, hi, t0 = spillover._share_fieller(n_tot, d_tot, v_nn, v_dd, v_nd, 2.05)
    grid = np.arange(-200, 200, 5e-4)
    r = 1 - grid
    stat = (n_tot - r * d_tot) ** 2 / (v_nn - 2 * r * v_nd + r**2 * v_dd)
    kept = grid[stat <= 2.05**2]
    if shape == "interval":
        assert lo == pytest.approx(kept.min(), abs=5e-4)
        assert hi == pytest.approx(kept.max(), abs=5e-4)
    else:
        assert (lo, hi) == (-np.inf, np.inf)
        # both grid ends are kept; with two rays some share in between is not
        assert kept.min() == grid[0] and kept.max() == grid[-1]
        assert (kept.size < grid.size) == (shape == "rays")
    # fieller_set gives the pieces: the same interval, or the rays whose inner ends are
    # the grid's last kept shares either side of the excluded gap (grid step)
    pieces = spillover.fieller_set(n_tot, d_tot, v_nn, v_dd, v_nd, 2.05)
    if shape == "rays":
        (a0, a), (b, b1) = pieces
        assert (a0, b1) == (-np.inf, np.inf)
        gap = grid[stat > 2.05**2]
        assert a == pytest.approx(gap.min(), abs=5e-4) and b == pytest.approx(gap.max(), abs=5e-4)
    else:
        assert pieces == ((lo, hi),)
    assert lo <= 1 - n_tot / d_tot <= hi
    # the zero test is the t test of the losses N - D; NaN when they have no variance
    assert t0 == pytest.approx(abs(n_tot - d_tot) / np.sqrt(v_nn - 2 * v_nd + v_dd), rel=1e-12)
    assert np.isnan(spillover._share_fieller(n_tot, d_tot, 1.0, 1.0, 1.0, 2.05)[2])


def test_share_interval_is_fiellers_from_the_reported_numbers(fitted):
    # the displacement share's interval and zero test come from the joint covariance of net
    # and the direct total, recovered here from the reported SEs and the delta-method SE
    # (as below): the same numbers to rounding (1e-9 relative). They are not the symmetric
    # estimate +- t x SE
    t = fitted.terms.set_index("term")
    n, d = t.loc["net", "estimate"], t.loc["direct_total", "estimate"]
    vn, vd = t.loc["net", "se"] ** 2, t.loc["direct_total", "se"] ** 2
    delta2 = fitted.info["displacement_share_se_delta"] ** 2
    cov = (vn / d**2 + n**2 * vd / d**4 - delta2) * d**3 / (2 * n)
    df = t.loc["displacement_share", "df"]

    def fieller(level: float) -> list[float]:
        c2 = stats.t.ppf(1 - level / 2, df) ** 2
        A, B, C = d**2 - c2 * vd, n * d - c2 * cov, n**2 - c2 * vn
        return sorted(1 - (B + k * np.sqrt(B * B - A * C)) / A for k in (-1, 1))

    ci = fitted.conf_int().loc["displacement_share"]
    np.testing.assert_allclose([ci["lower"], ci["upper"]], fieller(0.05), rtol=1e-9)
    est, se = t.loc["displacement_share", ["estimate", "se"]]
    assert abs((ci["upper"] - est) - (est - ci["lower"])) > 1e-3 * (ci["upper"] - ci["lower"])
    assert abs(ci["upper"] - est - stats.t.ppf(0.975, df) * se) > 1e-6
    p = 2 * stats.t.sf(abs(n - d) / np.sqrt(vn + vd - 2 * cov), df)
    assert fitted.pvalues["displacement_share"] == pytest.approx(p, rel=1e-9)
    # tidy's statistic is the t that p-value reads (signed as the share), not est / IQR SE,
    # so statistic and p-value agree; other terms keep estimate / SE
    tidy = fitted.tidy().set_index("term")
    stat = np.sign(1 - n / d) * abs(n - d) / np.sqrt(vn + vd - 2 * cov)
    assert tidy.loc["displacement_share", "statistic"] == pytest.approx(stat, rel=1e-9)
    assert 2 * stats.t.sf(abs(tidy.loc["displacement_share", "statistic"]), df) == pytest.approx(
        tidy.loc["displacement_share", "p_value"], rel=1e-9
    )
    assert abs(tidy.loc["displacement_share", "statistic"] - est / se) > 1e-3
    assert tidy.loc["net", "statistic"] == pytest.approx(n / np.sqrt(vn), rel=1e-12)
    # at another level too (from the (co)variances kept in info): the 90% set by the same
    # formula, nested in the 95% one, as the symmetric fallback would not guarantee
    ci90 = fitted.conf_int(0.10).loc["displacement_share"]
    np.testing.assert_allclose([ci90["lower"], ci90["upper"]], fieller(0.10), rtol=1e-9)
    assert ci["lower"] < ci90["lower"] < ci90["upper"] < ci["upper"]


def test_terms_carry_every_terms_interval_and_p_value(fitted):
    # a referee (RESULTS.md, session 45) read ci_low / p_value from terms and found NaN
    # for every term but the share, whose Fieller interval alone lived there
    t, tidy = fitted.terms.set_index("term"), fitted.tidy().set_index("term")
    assert t[["ci_low", "ci_high", "p_value", "statistic"]].notna().all().all()
    # the same arithmetic as tidy / conf_int / pvalues, so equal to the last bit
    for col, tcol in [("ci_low", "conf_low"), ("ci_high", "conf_high"), ("p_value", "p_value")]:
        np.testing.assert_array_equal(t[col], tidy[tcol])
    np.testing.assert_array_equal(t["statistic"], tidy["statistic"])
    # by hand: t with the term's Bell-McCaffrey df
    row = t.loc["net"]
    half = stats.t.ppf(0.975, row["df"]) * row["se"]
    assert row["ci_low"] == pytest.approx(row["estimate"] - half, rel=1e-12)
    assert row["p_value"] == pytest.approx(
        2 * stats.t.sf(abs(row["estimate"] / row["se"]), row["df"]), rel=1e-12
    )
    # the share keeps Fieller's set, which is not symmetric about the estimate
    share = t.loc["displacement_share"]
    lo, hi = share["ci_low"] - share["estimate"], share["ci_high"] - share["estimate"]
    assert abs(lo + hi) > 1e-3 * (hi - lo)
    # rebuilt from the new SEs when the inference is redone or the outcome rescaled
    unit = fitted.with_inference(cluster="unit")
    u, ut = unit.terms.set_index("term"), unit.tidy().set_index("term")
    assert u.loc["direct", "se"] != t.loc["direct", "se"]
    np.testing.assert_array_equal(u["ci_low"], ut["conf_low"])
    scaled = fitted.rescaled(-3.0).terms.set_index("term")
    np.testing.assert_allclose(
        scaled.loc["net", ["ci_low", "ci_high"]], -3 * row[["ci_high", "ci_low"]], rtol=1e-12
    )


def test_a_result_at_another_level_recomputes_the_shares_fieller_set(fitted):
    # with_terms(alpha=) (or dataclasses.replace) once kept the share's Fieller set at the
    # fit's 95% while the result claimed 90%: a wrong interval under a right label
    at90 = fitted.with_terms(fitted.terms, alpha=0.10)
    t90 = at90.terms.set_index("term")
    want = fitted.conf_int(0.10)
    # Fieller's quadratic at the 90% critical value, the same arithmetic: to 1e-12
    np.testing.assert_allclose(
        t90.loc["displacement_share", ["ci_low", "ci_high"]].to_numpy(float),
        want.loc["displacement_share"].to_numpy(float),
        rtol=1e-12,
    )
    narrower = fitted.terms.set_index("term").loc["displacement_share"]
    assert narrower["ci_low"] < t90.loc["displacement_share", "ci_low"]
    assert t90.loc["displacement_share", "ci_high"] < narrower["ci_high"]
    # the zero test does not depend on the level
    assert t90.loc["displacement_share", "p_value"] == narrower["p_value"]
    pd.testing.assert_frame_equal(at90.conf_int(), want)
    # and back at 95%: the fit's own numbers to rounding
    back = at90.with_terms(at90.terms, alpha=0.05).terms
    np.testing.assert_allclose(
        back[["ci_low", "ci_high"]].to_numpy(float),
        fitted.terms[["ci_low", "ci_high"]].to_numpy(float),
        rtol=1e-12,
    )


def test_ratio_bias_follows_the_inference_but_the_share_does_not(fitted):
    # the diagnostic is computed from whichever covariance the result carries; the share
    # itself stays the plain ratio 1 - net / direct_total
    t = fitted.terms.set_index("term")
    share = 1 - t.loc["net", "estimate"] / t.loc["direct_total", "estimate"]
    assert t.loc["displacement_share", "estimate"] == pytest.approx(share, rel=1e-12)
    new = fitted.with_inference("cluster", cluster="unit", rng=3, n_boot=10)
    assert new.terms.set_index("term").loc["displacement_share", "estimate"] == pytest.approx(
        share, rel=1e-12
    )
    a, b = fitted.info["displacement_share_ratio_bias"], new.info["displacement_share_ratio_bias"]
    assert np.isfinite(a) and np.isfinite(b) and a != b
    # the term from the reported numbers alone: Var(N) and Var(D) are the SEs squared and
    # Cov(N, D) follows from the delta-method SE of 1 - N/D, so a wrong column (say the
    # spillover total for net) would miss it; equal to rounding (1e-9 relative)
    n, d = t.loc["net", "estimate"], t.loc["direct_total", "estimate"]
    vn, vd = t.loc["net", "se"] ** 2, t.loc["direct_total", "se"] ** 2
    delta2 = fitted.info["displacement_share_se_delta"] ** 2
    cov = (vn / d**2 + n**2 * vd / d**4 - delta2) * d**3 / (2 * n)
    assert a == pytest.approx(cov / d**2 - n * vd / d**3, rel=1e-9)
    assert fitted.info["direct_total_cv"] == pytest.approx(
        t.loc["direct_total", "se"] / abs(t.loc["direct_total", "estimate"]), rel=1e-12
    )


def _never_exposed(sim) -> pd.Index:
    """The simulated world's units that are never a zone nor exposed (clean throughout)."""
    tab = exposure_from_adjacency(sim.panel).table
    return tab.index[
        np.isinf(tab["cohort"].to_numpy(float)) & np.isinf(tab["exposure_onset"].to_numpy(float))
    ]


def _small_world_fit(frame: pd.DataFrame, sim, covariates: list[str]) -> spillover.SpilloverResult:
    """The small world's rows ``frame`` as a panel, fitted with ``covariates`` and the
    ``"onset_event"`` cells, which use no exposure intensity (the split cells' intensity
    quartiles are formed over every exposed unit-period, the left-out ones included, so
    they would differ from a cut panel's)."""
    p = Panel.from_frame(
        frame,
        unit="unit",
        time="year",
        cohort="cohort",
        outcomes=["fdi"],
        covariates=covariates or ["x"],
        geography=sim.geography,
        adjacency=sim.adjacency,
    )
    return spillover.fit(
        p, outcome="fdi", rng=1, n_boot=0, covariates=covariates, aux_partition="onset_event"
    )


def test_collinear_covariates_are_refused_not_given_wrong_degrees_of_freedom():
    # x2 = 2 x + 1 adds covariate-by-period terms that the period effects and x's already
    # span. SuperLU factorises that normal matrix (condition ~1e17) and the estimates
    # survive, but before the check the CR2 roots and degrees of freedom built from its
    # inverse did not: the direct effect's df fell from 18.7 to 1.6 without a warning
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    frame = sim.frame.assign(x2=2 * sim.frame["x"] + 1)
    with pytest.raises(EstimationError, match="collinear given the unit and period effects"):
        _small_world_fit(frame, sim, ["x", "x2"])
    ok = _small_world_fit(frame, sim, ["x"])
    assert np.isfinite(ok.terms.set_index("term").loc["direct", "df"])


@pytest.mark.parametrize(("covariates", "kept"), [(["x"], 1), (["x"], 2), ([], 1)])
def test_periods_too_thin_for_their_own_terms_are_left_out_like_empty_ones(covariates, kept):
    # in 2015-16 only `kept` clean (never exposed) units are observed. With K covariates a
    # period's own terms (period effect, K slopes) need more than K + 1 clean units: with
    # fewer they are not identified, and with exactly K + 1 the clean rows are fitted
    # exactly, so their noise moves the period's imputations while the variance sees zero
    # residuals. Those targets are counted out (before, fewer than K + 1 refused the fit
    # and K + 1 went through), and every other number is that of the panel cut at 2014,
    # since the thin rows inform no other coefficient (equal to rounding, 1e-9 relative;
    # "onset_event" because the default's intensity quartiles are formed over every
    # exposed unit-period, the left-out ones included)
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    never = _never_exposed(sim)
    assert len(never) > 5
    f = sim.frame

    def late_thinned(n: int) -> pd.DataFrame:
        return f[~(f["unit"].isin(never[n:]) & (f["year"] >= 2015))]

    with pytest.warns(UserWarning, match="with a residual to spare"):
        thin = _small_world_fit(late_thinned(kept), sim, covariates)
    cut = _small_world_fit(f[f["year"] < 2015], sim, covariates)
    late = f[(f["year"] >= 2015) & (f["cohort"] > 0)]  # zone rows (0: never a zone)
    pieces = thin.pieces.set_index("piece")
    assert pieces.loc["direct", "n_unidentified"] == len(late) == 100
    a, b = thin.terms.set_index("term"), cut.terms.set_index("term")
    for term in ("direct", "spillover", "net", "displacement_share", "spillover_on_zones"):
        for col in ("estimate", "se", "df"):
            assert a.loc[term, col] == pytest.approx(b.loc[term, col], rel=1e-9), (term, col)
    # one clean unit more leaves a residual: every target is imputed again
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        more = _small_world_fit(late_thinned(len(covariates) + 2), sim, covariates)
    assert more.pieces.set_index("piece").loc["direct", "n_unidentified"] == 0
    if kept == 1 and covariates:
        # the wild bootstrap's model leaves out the unused covariate-by-period columns
        # (zero on its rows) and inverts the same tests
        wa = thin.with_inference("wild", n_boot=99, rng=7).terms.set_index("term")
        wb = cut.with_inference("wild", n_boot=99, rng=7).terms.set_index("term")
        for col in ("p_value", "ci_low", "ci_high"):
            assert wa.loc["direct", col] == pytest.approx(wb.loc["direct", col], rel=1e-9)


def test_a_units_only_clean_row_does_not_count_towards_its_period():
    # in 2015-16 two never-exposed units are observed, but one of them only in 2016: its
    # one clean row is fitted by its own unit effect, so 2016's terms rest on one unit
    # (K = 1 needs three). 2016 goes, after which 2015 has one unit and goes too; the
    # left-out rows then move nothing (a review found the estimate following an outcome
    # bump of 1,000 on such a period's row with an unchanged SE)
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    never = _never_exposed(sim)
    f = sim.frame.copy()
    f.loc[f["unit"].isin(never[2:]) & (f["year"] >= 2015), "fdi"] = np.nan
    f.loc[(f["unit"] == never[1]), "fdi"] = f["fdi"].where(f["year"] == 2016)
    res = []
    for bump in (0.0, 1000.0):
        g = f.copy()
        g.loc[(g["unit"] == never[0]) & (g["year"] == 2016), "fdi"] += bump
        with pytest.warns(UserWarning, match=r"2015 \(1 unit\(s\)\), 2016 \(1 unit"):
            res.append(_small_world_fit(g, sim, ["x"]))
    a, b = (r.terms.set_index("term").loc["direct", ["estimate", "se"]] for r in res)
    # nothing the fit uses moved: equal to rounding
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12)
    assert res[0].pieces.set_index("piece").loc["direct", "left_out_periods"] == "2015, 2016"


def test_a_thin_first_period_is_left_out_and_the_next_becomes_the_reference():
    # only one unit is observed in 2002: the first period's rows are fitted exactly too,
    # so they go and 2003 becomes the reference (it loses its x-by-period column, which
    # the unit effects would otherwise duplicate). Before, the fit refused with a bare
    # "singular"; now every number equals the panel that starts in 2003 (to rounding,
    # 1e-9 relative)
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    f = sim.frame.copy()
    first = sorted(f["unit"].unique())[0]
    f.loc[(f["year"] == 2002) & (f["unit"] != first), "fdi"] = np.nan
    thin = _small_world_fit(f, sim, ["x"])  # no target there: nothing to warn of
    cut = _small_world_fit(f[f["year"] > 2002], sim, ["x"])
    assert thin.pieces.set_index("piece").loc["direct", "left_out_periods"] == "2002"
    a, b = thin.terms.set_index("term"), cut.terms.set_index("term")
    for term in ("direct", "spillover", "net", "displacement_share"):
        for col in ("estimate", "se", "df"):
            assert a.loc[term, col] == pytest.approx(b.loc[term, col], rel=1e-9), (term, col)


def test_a_covariate_constant_among_a_periods_clean_units_is_refused_by_name():
    # a dummy for the 2013 zone cohort: from 2013 on no clean unit has it, so those
    # periods' dummy-by-period terms are not identified although many units are clean
    # there. Their rows inform the unit effects, so leaving them out would change other
    # imputations: refused, naming the piece and the periods
    sim = simulate(rng=4, **SMALL, displacement_share=0.7)
    f = sim.frame.assign(xd=(sim.frame["cohort"] == 2013).astype(float))
    with pytest.raises(EstimationError, match=r"Piece 'direct': The covariates do not vary"):
        _small_world_fit(f, sim, ["x", "xd"])


def test_bad_requests_name_what_was_wrong(fitted):
    with pytest.raises(ZoneImpactError, match="nope"):
        fitted.with_inference(cluster="nope")
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("conley")
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("cluster", conley_km=100.0)
    with pytest.raises(ZoneImpactError, match="conley_km"):
        fitted.with_inference("conley", conley_km=-5.0)
    with pytest.raises(ZoneImpactError, match="conley_kernel"):
        fitted.with_inference("cluster", conley_kernel="uniform")
    with pytest.raises(ZoneImpactError, match="method"):
        fitted.with_inference("hac")
    with pytest.raises(ZoneImpactError, match="fdi"):  # varies within unit
        fitted.with_inference(cluster="fdi")
    with pytest.raises(ZoneImpactError, match="n_boot"):
        fitted.with_inference(n_boot=-1)
    # a result whose kept scores are on another scale refuses rather than mislead
    with pytest.raises(EstimationError, match="refit"):
        fitted.rescaled(4.0).with_inference(cluster="unit")


def _dense_bm_vectors(sc, region_of_row: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Bell & McCaffrey (2002) vectors of one imputation piece's CR2 variance, by dense
    algebra on its long table; rows x regions. Unit and year dummies (plus covariate terms)
    on the clean rows, ``H = Z0 pinv(Z0)``, implied weights ``v = -Z0 pinv(Z0'Z0) Z1'w``;
    ``T`` is the matrix of eq. 8's ``tau~`` (linear in ``tau_hat``: ``tau_tilde`` applied
    to each unit vector). A region's score is ``v_g' A_g [(I - H) y0]_g + w_g' [(I - T)
    (y1 - Z1 pinv(Z0'Z0) Z0' y0)]_g`` (``A_g`` the pseudo-inverse root of ``(I -
    H_gg)^{-1}``), so its vector is ``(I - H) P_g' A_g v_g - Z0 pinv Z1' q_g`` on the clean
    rows and ``q_g = (I - T)' P_g' w_g`` on the targets."""
    long, fit, w = sc.long, sc.fit, sc.w[:, 0]
    U = (long.unit[:, None] == np.unique(long.unit)[None, :]).astype(float)
    Tm = (long.time[:, None] == np.unique(long.time)[None, 1:]).astype(float)
    Z = np.column_stack([U, Tm, long.X])
    Z0, Z1 = Z[fit.clean], Z[fit.target]
    pinv = np.linalg.pinv(Z0.T @ Z0)
    H = Z0 @ pinv @ Z0.T
    v = -Z0 @ (pinv @ (Z1.T @ w))
    r0, r1 = region_of_row[fit.clean], region_of_row[fit.target]
    r1_codes = np.searchsorted(regions, r1)
    cells = sc.cells_for(r1_codes)
    pair = _bjs.cell_cluster_codes(cells, r1_codes, len(regions))
    n1 = len(fit.target)
    T = np.column_stack(
        [_bjs.tau_tilde(w, e, cells, pair, leave_out=True, scale=sc.scale)[0] for e in np.eye(n1)]
    )
    C = np.zeros((len(long.y), len(regions)))
    for k, g in enumerate(regions):
        rows = np.flatnonzero(r0 == g)
        lam, Q = np.linalg.eigh(np.eye(len(rows)) - H[np.ix_(rows, rows)])
        root = Q @ np.diag(np.where(lam > 1e-8, 1 / np.sqrt(np.clip(lam, 1e-8, None)), 0)) @ Q.T
        a = np.zeros(len(fit.clean))
        a[rows] = root @ v[rows]
        q = (np.eye(n1) - T).T @ np.where(r1 == g, w, 0.0)
        C[fit.clean, k] = a - H @ a - Z0 @ (pinv @ (Z1.T @ q))
        C[fit.target, k] = q
    return C


def test_bell_mccaffrey_vectors_are_the_scores_map(fitted):
    # the CR2 scores are linear in the outcomes, s_g = c_g'y: the vectors reproduce the
    # fit's scores and, for random outcome moves, outcome_shift's (itself checked against
    # refits in test_spillover_wild). The vectors before 2026-12-01, which left out tau~
    # and step 1's error in the targets' residuals, miss the fit's scores by 6-21 times the
    # largest score here; these agree to rounding (1e-10 of the largest score)
    rng = np.random.default_rng(3)
    for name in ("direct", "spillover:adjacent", "spillover_on_zones"):
        fit, sc, C, s, (cells, cluster, G) = piece_vectors_and_scores(fitted, name)
        y = sc.long.y
        got = C[fit.clean].T @ y[fit.clean] + C[fit.target].T @ y[fit.target]
        np.testing.assert_allclose(got, s, rtol=0, atol=1e-10 * np.abs(s).max())
        D0 = rng.normal(size=(len(fit.clean), 3))
        D1 = rng.normal(size=(len(fit.target), 3))
        shift = _bjs.outcome_shift(fit, sc.w[:, 0], cells, cluster, G, D0, D1, cr2=True,
                                   scale=sc.scale)[1]  # fmt: skip
        got = (C[fit.clean].T @ D0 + C[fit.target].T @ D1).T
        np.testing.assert_allclose(got, shift, rtol=0, atol=1e-10 * np.abs(shift).max())


def test_neighbourhood_leave_out_for_conley(fitted):
    # Conley SEs score units (clusters = units) with tau~ leaving out every unit near the
    # target's (tau_tilde_near). On each piece with unit clusters: (1) near = identity is
    # the own-cluster leave-out exactly (scores and vectors to 1e-12 of the largest);
    # (2) near = "same region" is eq. 8 recomputed by brute force for every target from
    # the (cell, unit) sums of the clusters that are not near it (1e-12); (3) the vectors
    # stay the exact map of those scores (C'y = s, 1e-10 of the largest score), so the
    # Satterthwaite df describe the variance actually reported; (4) the leave-out moves
    # the scores (by more than 1% of the largest)
    region = fitted.fitted.panel.geography["region"].reindex(fitted.fitted.units).to_numpy()
    same = (region[:, None] == region[None, :]).astype(float)
    for name in ("direct", "spillover:adjacent", "spillover_on_zones"):
        sc = fitted.fitted.fits[name].rescore
        fit = _bjs.refactored(sc.fit)
        unit, G = sc.unit_row, len(region)
        cells = sc.cells_for(unit[fit.target])
        args = (fit, sc.w, cells, unit, G)
        base = _bjs.scores(*args, cr2=True, scale=sc.scale)[:, 0]
        eye = _bjs.scores(*args, cr2=True, scale=sc.scale, near=np.eye(G))[:, 0]
        np.testing.assert_allclose(eye, base, rtol=0, atol=1e-12 * np.abs(base).max())
        w, c1 = sc.w[:, 0], unit[fit.target]
        kw = dict(scale=sc.scale, leave_out=True)
        B = np.vstack(_bjs.bm_parts(fit, w, cells, unit, G, **kw))
        E = np.vstack(_bjs.bm_parts(fit, w, cells, unit, G, near=np.eye(G), **kw))
        np.testing.assert_allclose(E, B, rtol=0, atol=1e-12 * np.abs(B).max())
        # (2) brute force: per target, a_c and b_c of the cell's other, non-near units
        got = _bjs.tau_tilde_near(w, fit.tau, cells, c1, G, same, scale=sc.scale)
        a_w = w if sc.scale is None else w * sc.scale
        want = np.empty(len(w))
        for i in range(len(w)):
            cell = cells == cells[i]
            far = cell & (same[c1[i], c1] == 0)
            units = np.unique(c1[cell])
            a = {u: a_w[cell & (c1 == u)].sum() for u in units}
            b = {u: (w * fit.tau)[cell & (c1 == u)].sum() for u in units}
            keep = np.unique(c1[far]) if far.any() else units
            num = sum(a[u] * b[u] for u in keep)
            den = sum(a[u] ** 2 for u in keep)
            want[i] = num / den * (1.0 if sc.scale is None else sc.scale[i])
        ok = np.array(
            [(cells == cells[i]).__and__(same[c1[i], c1] == 0).any() for i in range(len(w))]
        )
        np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-12 * np.abs(want).max())
        # (3) the vectors map the outcomes onto the scores
        near_s = _bjs.scores(*args, cr2=True, scale=sc.scale, near=same)[:, 0]
        C = _bjs.bm_vectors(fit, _bjs.bm_parts(fit, w, cells, unit, G, near=same, **kw), len(unit))
        y = sc.long.y
        np.testing.assert_allclose(C[fit.clean].T @ y[fit.clean] + C[fit.target].T @ y[fit.target],
                                   near_s, rtol=0, atol=1e-10 * np.abs(near_s).max())  # fmt: skip
        assert np.abs(near_s - base).max() > 0.01 * np.abs(base).max()


def test_conley_fit_reports_the_neighbourhood_leave_out(panel):
    # the fit's Conley SE of each imputation piece is sqrt(s'K+s) with s the unit scores
    # of the neighbourhood leave-out (_bjs.scores with near = the kernel's support), to
    # 1e-10; with one-unit leave-outs (near=None) it would differ by more than 1%
    from zoneimpact.estimators.spillover import _cluster_codes
    from zoneimpact.inference.covariance import kernel_root

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spillover.fit(panel, outcome="fdi", n_boot=0, conley_km=300.0)
        cl = _cluster_codes(panel, res.fitted.units, "fdi", None, 300.0, "region")
    R = kernel_root(cl.kernel)
    t = res.terms.set_index("term")
    for name in ("direct", "spillover_on_zones"):
        sc = res.fitted.fits[name].rescore
        fit = _bjs.refactored(sc.fit)
        unit = cl.of_unit.to_numpy()[sc.unit_row]
        cells = sc.cells_for(unit[fit.target])
        args = (fit, sc.w, cells, unit, cl.n)
        s_near = _bjs.scores(*args, cr2=True, scale=sc.scale, near=cl.near)[:, 0]
        s_unit = _bjs.scores(*args, cr2=True, scale=sc.scale)[:, 0]
        assert t.at[name, "se"] == pytest.approx(np.linalg.norm(R @ s_near), rel=1e-10)
        assert abs(np.linalg.norm(R @ s_unit) / t.at[name, "se"] - 1) > 0.01


def test_bell_mccaffrey_gram_without_the_vectors(fitted, panel):
    # bm_gram forms C'C from per-cluster and per-cell sums (the cross terms vanish because
    # (I - H) Z0 = 0), for pieces too large to keep the rows x clusters vectors: it equals
    # the dense vectors' Gram to rounding (1e-10 of its largest entry) on every piece,
    # with and without the leave-out, under region clusters and under unit clusters (150
    # clusters, each holding one unit's rows)
    for name in ("direct", "spillover:adjacent", "spillover_on_zones"):
        fit, sc, C, _, (cells, cluster, G) = piece_vectors_and_scores(fitted, name)
        unit = sc.unit_row
        for cl, n_cl in [(cluster, G), (unit, int(unit.max()) + 1)]:
            cl_cells = sc.cells_for(cl[fit.target])
            for leave_out in (True, False):
                args = (fit, sc.w[:, 0], cl_cells, cl, n_cl)
                kw = dict(scale=sc.scale, leave_out=leave_out)
                dense = _bjs.satterthwaite_df(*_bjs.bm_parts(*args, **kw))
                B0, B1 = _bjs.bm_parts(*args, **kw)
                want = B0.T @ B0 + B1.T @ B1
                got = _bjs.bm_gram(*args, **kw)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
                assert _bjs.gram_df(got) == pytest.approx(dense, rel=1e-9)


def test_combined_terms_take_their_own_bell_mccaffrey_df(satterthwaite):
    # net = n_d direct + n_r ring + n_z spillover_on_zones: its CR2 variance is
    # sum_g (c_g'u)^2 with c_g the weighted sum of the pieces' vectors on the long table
    # they share, and its Satterthwaite df (tr M)^2 / ||M||^2 with M = C'C. A dense
    # reading (pseudo-inverses, one eigendecomposition per region) gives the same df to
    # 1e-8 (two factorisations of the same normal matrices); the displacement share takes
    # its delta-method combination -(net - (net / direct_total) direct_total). The smallest
    # of the pieces' df (the rule before) differs by more than 0.05. (These are the df
    # where the exact reference is out of reach: _spillover_exact.MAX_COLUMNS.)
    fitted = satterthwaite
    fits = fitted.fitted.fits
    units = fitted.fitted.units
    region = fitted.fitted.panel.geography["region"]
    long = fits["direct"].rescore.long
    region_of_row = region.reindex(units).to_numpy()[fits["direct"].rescore.unit_row]
    regions = np.unique(region_of_row)
    t = fitted.terms.set_index("term")
    size = {k: f.size for k, f in fits.items()}
    parts = ["direct", *[k for k in fits if k.startswith("spillover:")], "spillover_on_zones"]
    parts = [k for k in parts if k in fits and fits[k].n > 0]
    assert len(parts) >= 3 and all(fits[k].rescore.long is long for k in parts)
    C = {k: _dense_bm_vectors(fits[k].rescore, region_of_row, regions) for k in parts}

    def df(weights: dict[str, float]) -> float:
        M = sum(w * C[k] for k, w in weights.items())
        M = M.T @ M
        return np.trace(M) ** 2 / np.sum(M**2)

    net_w = {k: float(size[k]) for k in parts}
    n_d, d_tot, n_tot = size["direct"], t.loc["direct_total", "estimate"], t.loc["net", "estimate"]
    share_w = {k: -w for k, w in net_w.items()}
    share_w["direct"] += n_tot / d_tot * n_d
    for term, weights in [("net", net_w), ("displacement_share", share_w)]:
        assert t.loc[term, "df"] == pytest.approx(df(weights), rel=1e-8), term
    # net per treated is net over a constant: the same df up to rounding
    assert t.loc["net_per_treated", "df"] == pytest.approx(t.loc["net", "df"], rel=1e-12)
    for k in parts:
        assert df({k: 1.0}) == pytest.approx(fits[k].df, rel=1e-8), k
    assert abs(t.loc["net", "df"] - min(fits[k].df for k in parts)) > 0.05


def test_large_designs_fall_back_to_the_smallest_piece_df(panel, satterthwaite, monkeypatch):
    # above _BM_MAX_ENTRIES (long rows x clusters) a piece keeps no vectors, so no term has
    # the exact reference: each piece's df is its Satterthwaite df (from its Gram, bm_gram,
    # without the vectors) and a combination takes its pieces' smallest df
    monkeypatch.setattr(spillover, "_BM_MAX_ENTRIES", 0)
    big = spillover.fit(panel, outcome="fdi", rng=11, n_boot=50)
    assert "t_reference" not in big.info
    a, b = big.terms.set_index("term"), satterthwaite.terms.set_index("term")
    for term in ("direct", "spillover", "spillover_on_zones", "naive"):
        assert a.loc[term, "df"] == pytest.approx(b.loc[term, "df"], rel=1e-10), term
    pieces = [a.loc[k, "df"] for k in ("direct", "spillover", "spillover_on_zones")]
    assert a.loc["net", "df"] == pytest.approx(min(pieces), rel=1e-12)
    assert a.loc["displacement_share", "df"] == pytest.approx(min(pieces), rel=1e-12)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-12)


def test_a_constant_outcome_is_refused(panel):
    # an outcome that never moves has every effect exactly 0 (or rounding errors of it):
    # the share 1 - net / direct_total was NaN at 0 but, at a constant 5, a ratio of
    # rounding errors reported as -2.34 with p = 0.002 (a breaker's check, session 19)
    for value in (0.0, 5.0):
        frame = panel.data.assign(flat=value)
        p = Panel.from_frame(
            frame, unit="unit", time="time", cohort="cohort", outcomes=["flat"],
            geography=panel.geography.reset_index(), adjacency=panel.adjacency,
        )  # fmt: skip
        with pytest.raises(SpecError, match=f"'flat' takes one value \\({value:g}\\)"):
            spillover.fit(p, outcome="flat", n_boot=0)


def _partition(codes):
    """The groups of target positions a coding puts together, whatever the labels."""
    return sorted(tuple(np.flatnonzero(codes == c)) for c in np.unique(codes))


def test_cells_inside_one_cluster_are_pooled():
    def pool(cells, cl):
        return _partition(spillover.pool_lone_cells(np.asarray(cells), np.asarray(cl)))

    # every cell spans two clusters: unchanged
    assert pool([0, 0, 1, 1], [0, 1, 0, 1]) == [(0, 1), (2, 3)]
    # cells 1 and 2 each inside one cluster, different ones: pooled into one cell
    assert pool([0, 0, 1, 2, 2], [0, 1, 0, 1, 1]) == [(0, 1), (2, 3, 4)]
    # cells 1 and 2 inside the same cluster: the pool joins the cell with most targets
    # among those spanning two clusters (cell 3, three targets, over cell 0's two)
    assert pool([0, 0, 1, 2, 3, 3, 3], [0, 1, 2, 2, 0, 1, 1]) == [(0, 1), (2, 3, 4, 5, 6)]
    # a tie goes to the first such cell
    assert pool([0, 0, 1, 2, 2], [0, 1, 2, 0, 1]) == [(0, 1, 2), (3, 4)]
    # every target in one cluster: nothing to pool
    assert pool([0, 1, 1], [4, 4, 4]) == [(0,), (1, 2)]


def _zones_in_one_cluster():
    sim = simulate(rng=3, n_units=120, n_regions=12, first_year=2005, last_year=2014,
                   waves={2008: 0.5, 2011: 0.5})  # fmt: skip
    coh = sim.panel.unit_cohort
    regions = sim.geography.set_index("unit")["region"].astype(str).reindex(coh.index)
    return sim, regions.where(~np.isfinite(coh.to_numpy(float)), "zones").rename("grp")


def test_a_piece_inside_one_cluster_has_no_se():
    # all zone units in one cluster: the direct effect's cluster-robust SE cannot see that
    # cluster's shocks on them, so the fit reports none (NaN) and says why, rather than a
    # precise-looking number; the spillover pieces, spread over clusters, keep theirs
    sim, label = _zones_in_one_cluster()
    with pytest.warns(UserWarning, match="Piece 'direct': every target unit-period sits in one"):
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=99, cluster=label)
    t = res.terms.set_index("term")
    blank = ["att", "direct", "direct_total", "spillover_on_zones", "spillover_on_zones_total"]
    for term in [*blank, "naive"]:
        assert np.isfinite(t.at[term, "estimate"])
        assert t.loc[term, ["se", "ci_low", "ci_high", "p_value"]].isna().all(), term
    assert np.isfinite(t.loc[["spillover", "net"], "se"]).all()
    # the zone units exposed before their own zone (and naive's targets) are there too
    assert res.info["one_cluster_pieces"] == "direct, spillover_on_zones, naive"
    # nor does the wild bootstrap bring back p-values or intervals for them
    with pytest.warns(UserWarning, match="Piece 'direct'"):
        wild = res.with_inference("wild", cluster=label, n_boot=99, rng=2)
    w = wild.terms.set_index("term")
    assert w.loc[blank, ["se", "ci_low", "ci_high", "p_value"]].isna().all().all()
    assert np.isfinite(w.loc[["spillover", "net"], "p_value"]).all()
    # regional clusters, by refit or by with_inference: every SE back, no stale note
    ok = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=99)
    again = res.with_inference("cluster", cluster="region", n_boot=99, rng=1)
    assert "one_cluster_pieces" not in ok.info and "one_cluster_pieces" not in again.info
    for r in (ok, again):
        assert np.isfinite(r.terms.set_index("term").loc[blank, "se"]).all()
    np.testing.assert_allclose(
        again.terms.set_index("term").loc[blank, "se"],
        ok.terms.set_index("term").loc[blank, "se"],
        rtol=1e-10,
    )
    # and the other way round: a regional fit re-clustered into one cluster goes blank
    with pytest.warns(UserWarning, match="Piece 'direct'") as rec:
        moved = ok.with_inference("cluster", cluster=label, n_boot=99, rng=1)
    assert rec[0].filename == __file__
    assert moved.info["one_cluster_pieces"] == "direct, spillover_on_zones, naive"
    assert np.isnan(moved.terms.set_index("term").loc[blank, "se"]).all()


def test_cs_base_piece_inside_one_cluster_has_no_se():
    # CS's influence functions of a cohort's treated units are deviations from the
    # cohort's mean, so one cluster holding them all sums its shared shock away, as BJS's
    # fallback does: the same refusal, by the CS pieces' own target units
    sim, label = _zones_in_one_cluster()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=99, cluster=label,
                            base_estimator="callaway_santanna")  # fmt: skip
    said = [str(w.message) for w in rec if "sits in one cluster" in str(w.message)]
    assert [m.split("'")[1] for m in said] == ["direct", "spillover_on_zones", "naive"]
    t = res.terms.set_index("term")
    blank = ["att", "direct", "direct_total", "spillover_on_zones", "spillover_on_zones_total"]
    for term in [*blank, "naive"]:
        assert np.isfinite(t.at[term, "estimate"])
        assert t.loc[term, ["se", "ci_low", "ci_high", "p_value"]].isna().all(), term
    assert np.isfinite(t.loc[["spillover", "net", "displacement_share"], "se"]).all()
    assert res.info["one_cluster_pieces"] == "direct, spillover_on_zones, naive"
    # regional clusters by with_inference bring the SEs back and clear the note, equal to
    # a regional refit's (the influence functions are re-summed, 1e-10)
    again = res.with_inference("cluster", cluster="region", n_boot=99, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=99,
                           base_estimator="callaway_santanna")  # fmt: skip
    assert "one_cluster_pieces" not in again.info and "one_cluster_pieces" not in ok.info
    assert np.isfinite(ok.terms.set_index("term").loc[[*blank, "naive"], "se"]).all()
    np.testing.assert_allclose(
        again.terms.set_index("term").loc[[*blank, "naive"], "se"],
        ok.terms.set_index("term").loc[[*blank, "naive"], "se"],
        rtol=1e-10,
    )


def test_pooled_spillover_goes_blank_when_every_ring_sits_in_one_cluster():
    # every exposed non-zone unit in cluster "X": both rings, and the pooled spillover and
    # its total over them, have no cluster-robust SE; net (zones elsewhere) keeps its own
    sim = simulate(rng=3, n_units=120, n_regions=12, first_year=2005, last_year=2014,
                   waves={2008: 0.5, 2011: 0.5})  # fmt: skip
    rings = [(0, 60), (60, 150)]
    emap = build_exposure(sim.panel, "rings", rings_km=rings)
    role = emap.table["role"]
    regions = sim.geography.set_index("unit")["region"].astype(str).reindex(role.index)
    label = regions.where(role != "exposed", "X").rename("grp")
    with pytest.warns(UserWarning, match="every target unit-period sits in one cluster"):
        res = spillover.fit(sim.panel, outcome="fdi", rng=1, n_boot=99, exposure=emap,
                            cluster=label)  # fmt: skip
    t = res.terms.set_index("term")
    ring_terms = [k for k in t.index if k.startswith("spillover:")]
    assert len(ring_terms) == 2
    for term in [*ring_terms, "spillover", "spillover_total"]:
        assert np.isfinite(t.at[term, "estimate"]) and np.isnan(t.at[term, "se"]), term
    assert np.isfinite(t.loc[["direct", "net", "displacement_share"], "se"]).all()
