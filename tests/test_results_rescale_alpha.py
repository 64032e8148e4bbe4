"""Results after ``with_inference(alpha=...)`` and ``rescaled(c)``, and the read-only
building blocks they keep (breaker D's findings F1-F4).

- F1: ``CallawaySantAnnaResult.with_inference(alpha=a)`` is a fit at ``alpha=a`` on the
  same multiplier draws (bands and sup-t critical values at the new level, not relabelled).
- F2: ``rescaled(c)`` with ``c < 0`` keeps the artifact tables' SEs non-negative and their
  intervals ordered (ends swap), as a refit on ``c * y`` reports them.
- F3: the kept building blocks (``group_time``, ``InfluenceBlocks``) are read-only.
- F4: ``AugmentedSCResult.rescaled`` scales the jackknife+ interval once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import CANONICAL, needs_data

from zoneimpact import Panel
from zoneimpact.estimators import augmented_sc
from zoneimpact.estimators import callaway_santanna as cs
from zoneimpact.estimators._influence_results import InfluenceBlocks, InfluenceResult
from zoneimpact.results import EstimationResult, terms_frame

Y = "PacksPerCapita"


def _cs_boot(mpdta: Panel, alpha: float = 0.05) -> cs.CallawaySantAnnaResult:
    return cs.fit(
        mpdta, outcome="lemp", bootstrap=True, n_boot=199, rng=np.random.default_rng(1), alpha=alpha
    )


# ----------------------------------------------------------------------------- F1
def test_cs_with_inference_alpha_is_a_fit_at_that_alpha(mpdta: Panel) -> None:
    r05 = _cs_boot(mpdta, 0.05)
    r10 = _cs_boot(mpdta, 0.10)
    w = r05.with_inference("bootstrap", rng=np.random.default_rng(1), alpha=0.10)
    assert w.alpha == 0.10
    cols = ["estimate", "se", "band_low", "band_high"]
    # the same draws and the same arithmetic as the fit at alpha=0.10: equal to rounding
    # (1e-12 relative); the old code kept the 95% bands (crit_event 2.50 vs 2.27 on 999 draws)
    for a, b in ((w.terms, r10.terms), (w.att_gt, r10.att_gt)):
        np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), rtol=1e-12)
    for key in ("crit_event", "crit_att_gt"):
        assert w.info[key] == pytest.approx(r10.info[key], rel=1e-12)
        # and the level matters: the 90% critical value is below the 95% one
        assert w.info[key] < r05.info[key] - 0.1
    # aggregate afterwards keeps the 90% level (it did before too: a check, not the bug)
    agg = w.aggregate("dynamic").terms.set_index("term")
    np.testing.assert_allclose(
        agg["band_low"].to_numpy(float),
        r10.terms.set_index("term").loc[agg.index, "band_low"].to_numpy(float),
        rtol=1e-12,
    )
    # without alpha the fit's level stays
    same = r05.with_inference("bootstrap", rng=np.random.default_rng(1))
    np.testing.assert_allclose(same.terms[cols].to_numpy(float), r05.terms[cols].to_numpy(float))


# ----------------------------------------------------------------------------- F2
def test_cs_rescaled_negative_keeps_att_gt_se_and_band_order(mpdta: Panel) -> None:
    r = _cs_boot(mpdta)
    rr = r.rescaled(-1.0)
    a, b = r.att_gt, rr.att_gt
    # exact: multiplying by -1 and taking |.| are exact in floating point
    np.testing.assert_array_equal(b["estimate"], -a["estimate"])
    np.testing.assert_array_equal(b["se"], a["se"])  # old code: -se
    np.testing.assert_array_equal(b["band_low"], -a["band_high"])  # old: -band_low
    np.testing.assert_array_equal(b["band_high"], -a["band_low"])
    ok = b["band_low"].notna()
    assert (b.loc[ok, "band_low"] <= b.loc[ok, "band_high"]).all()
    # influence functions are linear in y (scale by c), the covariance by c^2
    np.testing.assert_array_equal(rr.influence, -r.influence)
    np.testing.assert_array_equal(rr.term_influence, -r.term_influence)
    np.testing.assert_array_equal(rr.vcov.to_numpy(), r.vcov.to_numpy())
    np.testing.assert_array_equal(rr.group_time.att, -r.group_time.att)
    # c = -2 then -1/2 is the identity (to rounding: two multiplications, 1e-15 relative)
    back = r.rescaled(-2.0).rescaled(-0.5).att_gt
    np.testing.assert_allclose(
        back[["estimate", "se", "band_low", "band_high"]].to_numpy(float),
        a[["estimate", "se", "band_low", "band_high"]].to_numpy(float),
        rtol=1e-14,
    )


@dataclass(frozen=True)
class _Tables(EstimationResult):
    """A result with the interval and size columns the estimators' tables use."""

    SCALED_FIELDS: ClassVar[dict[str, Any]] = {
        "table": {"dose": 0, "*": 1},
        "pi": 1,
        "rmspe": {"pre_rmspe": 1, "post_rmspe": 1},
        "cv": {"lambda": 2, "cv_se": 2},
        "path": 1,
    }
    SCALED_INFO: ClassVar[dict[str, int]] = {"pre_rmspe": 1, "pre_mean": 1, "lambda": 2}

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    pi: pd.DataFrame = field(default_factory=pd.DataFrame)
    rmspe: pd.DataFrame = field(default_factory=pd.DataFrame)
    cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: np.ndarray = field(default_factory=lambda: np.array([]))


def test_rescaled_negative_tables_generic() -> None:
    table = pd.DataFrame(
        {
            "dose": [1.0, 2.0],
            "att": [1.0, 3.0],
            "att_se": [0.5, 0.25],
            "att_band_low": [0.0, 2.5],
            "att_band_high": [2.0, 3.5],
            "se": [0.5, 0.25],
            "ci_low": [0.1, 2.6],
            "ci_high": [1.9, 3.4],
            "conf_low": [0.2, 2.7],
            "conf_high": [1.8, 3.3],
        }
    )
    pi = pd.DataFrame({"term": ["att"], "estimate": [1.0], "low": [0.5], "high": [2.0]})
    pi2 = pd.DataFrame({"estimate": [1.0], "lower": [0.5], "upper": [2.0]})
    res = _Tables(
        estimator="x",
        outcome="y",
        terms=terms_frame(["att"], [1.0], [0.5]),
        info={"pre_rmspe": 0.3, "pre_mean": 4.0, "lambda": 2.0},
        table=table,
        pi=pi,
        rmspe=pd.DataFrame({"pre_rmspe": [0.3], "post_rmspe": [0.9]}),
        cv=pd.DataFrame({"lambda": [2.0], "cv_se": [0.1]}),
        path=np.array([1.0, -2.0]),
    )
    out = res.rescaled(-2.0)
    t = out.table
    # hand computation, exact in binary floating point (factors of 2)
    np.testing.assert_array_equal(t["dose"], [1.0, 2.0])
    np.testing.assert_array_equal(t["att"], [-2.0, -6.0])
    np.testing.assert_array_equal(t["att_se"], [1.0, 0.5])
    np.testing.assert_array_equal(t["se"], [1.0, 0.5])
    np.testing.assert_array_equal(t["att_band_low"], [-4.0, -7.0])
    np.testing.assert_array_equal(t["att_band_high"], [0.0, -5.0])
    np.testing.assert_array_equal(t["ci_low"], [-3.8, -6.8])
    np.testing.assert_array_equal(t["ci_high"], [-0.2, -5.2])
    np.testing.assert_array_equal(t["conf_low"], [-3.6, -6.6])
    np.testing.assert_array_equal(t["conf_high"], [-0.4, -5.4])
    np.testing.assert_array_equal(out.pi[["estimate", "low", "high"]].iloc[0], [-2.0, -4.0, -1.0])
    assert out.pi["term"].tolist() == ["att"]
    np.testing.assert_array_equal(out.rmspe.iloc[0], [0.6, 1.8])  # sizes: |c|
    np.testing.assert_array_equal(out.cv.iloc[0], [8.0, 0.4])  # squares: c^2
    np.testing.assert_array_equal(out.path, [-2.0, 4.0])
    assert out.info["pre_rmspe"] == 0.6 and out.info["pre_mean"] == -8.0
    assert out.info["lambda"] == 8.0
    # lower/upper pairs swap as well
    res2 = _Tables(estimator="x", outcome="y", terms=terms_frame(["att"], [1.0], [0.5]), pi=pi2)
    np.testing.assert_array_equal(res2.rescaled(-1.0).pi.iloc[0], [-1.0, -2.0, -0.5])
    # a positive factor changes no order
    np.testing.assert_array_equal(res.rescaled(2.0).table["ci_low"], [0.2, 5.2])


# ----------------------------------------------------------------------------- F3
def test_cs_group_time_is_read_only(mpdta: Panel) -> None:
    r = cs.fit(mpdta, outcome="lemp", bootstrap=False)
    before = r.aggregate("simple").terms
    gt = r.group_time
    for name in ("att", "basis", "pg_cohort", "units", "cell_g", "order", "n_treated"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(gt, name)[...] = 0
    # the result's numbers are unchanged (exact: no arithmetic differs)
    pd.testing.assert_frame_equal(r.aggregate("simple").terms, before)
    # rescaling builds new blocks (still read-only) and leaves these alone
    assert not r.rescaled(2.0).group_time.basis.flags.writeable
    assert not r.group_time.att.flags.writeable


def test_influence_blocks_ids_and_labels_read_only() -> None:
    rng = np.random.default_rng(0)
    n = 20
    ids = np.arange(n)
    labels = (np.repeat(np.arange(5), 4),)
    blocks = InfluenceBlocks(
        psi=rng.normal(size=(n, 1)), amat=None, n=float(n), ids=ids, labels=labels
    )
    res = InfluenceResult(
        estimator="x", outcome="y", terms=terms_frame(["att"], [1.0], [0.1]), blocks=blocks
    )
    with pytest.raises(ValueError, match="read-only"):
        res.blocks.ids[0] = 99
    with pytest.raises(ValueError, match="read-only"):
        res.blocks.labels[0][0] = 99
    with pytest.raises(ValueError, match="read-only"):
        res.blocks.psi[0, 0] = 99.0
    # views, not copies, and the caller's arrays stay theirs (writable)
    assert np.shares_memory(res.blocks.ids, ids) and ids.flags.writeable
    assert labels[0].flags.writeable


# ----------------------------------------------------------------------------- F4
def _prop99(scale: float = 1.0) -> Panel:
    df = pd.read_csv(CANONICAL / "california_prop99.csv", sep=";")
    df["g"] = np.where(df["State"] == "California", 1989, 0)
    df[Y] = df[Y] * scale
    return Panel.from_frame(df, unit="State", time="Year", outcomes=Y, cohort="g")


@needs_data("canonical/california_prop99.csv")
def test_asc_rescaled_scales_jackknife_plus_once() -> None:
    r = augmented_sc.fit(_prop99(), outcome=Y, lambda_=430.0, se=False).with_inference("jackknife+")
    cols = ["estimate", "ci_low", "ci_high"]
    base = r.terms[cols].to_numpy(float)[0]
    twice = r.rescaled(2.0)
    # exact: a factor of 2 (old code: ci x 4, e.g. [-22.14, -12.27] -> [-88.55, -49.07])
    np.testing.assert_array_equal(twice.terms[cols].to_numpy(float)[0], 2.0 * base)
    # the same as a refit on 2 * y with the ridge penalty on its scale (4 x lambda); 1e-8
    # relative: the refit's QP and ridge solves round differently
    refit = augmented_sc.fit(_prop99(2.0), outcome=Y, lambda_=430.0 * 4, se=False).with_inference(
        "jackknife+"
    )
    np.testing.assert_allclose(
        twice.terms[cols].to_numpy(float)[0], refit.terms[cols].to_numpy(float)[0], rtol=1e-8
    )
    # a negative factor turns the interval (terms and prediction_intervals) around
    neg = r.rescaled(-1.0)
    np.testing.assert_array_equal(
        neg.terms[cols].to_numpy(float)[0], [-base[0], -base[2], -base[1]]
    )
    pi, npi = r.prediction_intervals, neg.prediction_intervals
    np.testing.assert_array_equal(npi["low"], -pi["high"])
    np.testing.assert_array_equal(npi["high"], -pi["low"])
    # donor weights do not scale
    pd.testing.assert_series_equal(twice.donor_weights, r.donor_weights)
    ci = neg.conf_int()
    assert (ci["lower"] <= ci["upper"]).all()


@needs_data("canonical/california_prop99.csv")
def test_asc_with_inference_jackknife_takes_alpha() -> None:
    r = augmented_sc.fit(_prop99(), outcome=Y, lambda_=430.0, se=False)
    j = r.with_inference("jackknife", alpha=0.10)
    # old code kept alpha 0.05: conf_int gave the 95% interval for a request of 90%
    assert j.alpha == 0.10
    ci = j.conf_int().loc["att"]
    # estimate +- z_0.95 x se (scipy's normal quantile; 1e-12 relative: one product)
    z = 1.6448536269514722
    np.testing.assert_allclose(
        [ci["lower"], ci["upper"]], [j.estimate - z * j.se, j.estimate + z * j.se], rtol=1e-12
    )


@needs_data("canonical/california_prop99.csv")
def test_asc_jackknife_plus_interval_is_not_relabelled_at_another_level() -> None:
    # the jackknife+ interval is computed at one level and has no SE to fall back on: a
    # result rebuilt at 90% must show no interval rather than the 95% one
    r = augmented_sc.fit(_prop99(), outcome=Y, lambda_=430.0, se=False).with_inference("jackknife+")
    assert np.isfinite(r.conf_int().loc["att"]).all()
    at90 = r.with_terms(r.terms, alpha=0.10)
    assert at90.conf_int().loc["att"].isna().all()
    # a jackknife+ at 90% has its own, narrower interval
    j90 = r.with_inference("jackknife+", alpha=0.10).conf_int().loc["att"]
    assert r.conf_int().loc["att", "lower"] < j90["lower"] < j90["upper"]


def test_uniform_bands_are_shown_at_their_own_level_only(mpdta: Panel) -> None:
    # a reviewer (session 46): tidy(0.10) on a CS fit at 95% printed the 95% sup-t band
    # beside 90% intervals in columns that carry no level; a band is computed at the
    # fit's level, so tidy leaves it out (NaN) elsewhere. The report's tables and plots
    # keep drawing it and name its own level (test_report_inputs)
    r = _cs_boot(mpdta, 0.05)
    assert r.tidy()["band_low"].notna().any()
    assert r.tidy(0.10)["band_low"].isna().all() and r.tidy(0.10)["band_high"].isna().all()
    np.testing.assert_array_equal(r.tidy(0.05)["band_low"], r.terms["band_low"])


def test_stored_intervals_hold_only_at_their_level() -> None:
    # generic: ci_low/ci_high at info["ci_alpha"] are read at that level only; without
    # ci_alpha they are taken to be at the result's level (results built before it)
    terms = terms_frame(["a"], [1.0], [0.5], df=[np.inf]).assign(ci_low=[-9.0], ci_high=[9.0])
    res = EstimationResult(
        estimator="x", outcome="y", terms=terms, alpha=0.05, info={"ci_alpha": 0.05}
    )
    assert res.conf_int().loc["a"].tolist() == [-9.0, 9.0]
    moved = res.with_terms(res.terms, alpha=0.10)
    # 1 +- z_0.95 x 0.5 (scipy's normal quantile): one product and a sum, 1e-12
    np.testing.assert_allclose(
        moved.conf_int().loc["a"],
        [1 - 1.6448536269514722 * 0.5, 1 + 1.6448536269514722 * 0.5],
        rtol=1e-12,
    )
    legacy = EstimationResult(estimator="x", outcome="y", terms=terms, alpha=0.10)
    assert legacy.conf_int().loc["a"].tolist() == [-9.0, 9.0]


@needs_data("canonical/california_prop99.csv")
def test_sdid_rescaled_negative_keeps_noise_level_and_penalties_positive() -> None:
    # SDID's noise level and ridge penalties are sizes (Arkhangelsky et al. 2021, eq. 2-3:
    # zeta = (N_tr T_post)^(1/4) sigma); rescaled(-2) made them negative (session 22)
    from zoneimpact.estimators import synthetic_did

    r = synthetic_did.fit(_prop99(), outcome=Y, se_method=None)
    neg = r.rescaled(-2.0)
    for key in ("noise_level", "zeta_omega", "zeta_lambda"):
        assert neg.info[key] == pytest.approx(2.0 * r.info[key], rel=1e-12)
    assert neg.coef("att") == pytest.approx(-2.0 * r.coef("att"), rel=1e-12)


@needs_data("canonical/california_prop99.csv")
def test_inference_redone_after_a_negative_rescale_is_a_refit_on_minus_c_y() -> None:
    # rescaled(-2).with_inference(...) read SDID's replication SE negative (jackknife -0.4493) and ASC's intervals
    # reversed (a reviewer, session 22); the kept data's scale is signed, sizes take |c|.
    # Reference: the same inference on the positive result, mapped by hand (the jackknife
    # is deterministic, so to 1e-12)
    from zoneimpact.estimators import synthetic_did

    sd = synthetic_did.fit(_prop99(), outcome=Y, se_method=None)
    # placebo (one treated unit: no jackknife) with the same seed draws the same placebos
    pos_fit = sd.with_inference("placebo", n_reps=50, rng=1)
    neg_fit = sd.rescaled(-2.0).with_inference("placebo", n_reps=50, rng=1)
    se_pos = pos_fit.terms.set_index("term").loc["att", "se"]
    se_neg = neg_fit.terms.set_index("term").loc["att", "se"]
    assert se_neg == pytest.approx(2.0 * se_pos, rel=1e-12) and se_neg > 0
    asc = augmented_sc.fit(_prop99(), outcome=Y, lambda_=430.0, se=False)
    for method in ("jackknife", "jackknife+"):
        pos = asc.with_inference(method).conf_int().loc["att"].to_numpy()
        neg = asc.rescaled(-2.0).with_inference(method).conf_int().loc["att"].to_numpy()
        np.testing.assert_allclose(neg, -2.0 * pos[::-1], rtol=1e-12)
        assert neg[0] < neg[1]


def test_with_terms_at_another_level_records_what_it_cannot_recompute() -> None:
    # session 46 left this: a result without ci_alpha rebuilt with with_terms(alpha=)
    # showed its stored intervals and bands as the new level's. The old level is now on
    # record (info["ci_alpha"], info["band_alpha"]) and they are shown at it only
    terms = terms_frame(["a"], [1.0], [0.5], df=[np.inf]).assign(
        ci_low=[-9.0], ci_high=[9.0], band_low=[-7.0], band_high=[7.0]
    )
    legacy = EstimationResult(estimator="x", outcome="y", terms=terms, alpha=0.05)
    assert legacy.band_alpha == 0.05 and legacy.tidy()["band_low"].tolist() == [-7.0]
    moved = legacy.with_terms(legacy.terms, alpha=0.10)
    assert moved.info["ci_alpha"] == 0.05 and moved.band_alpha == 0.05
    assert "ci_alpha" not in legacy.info  # the caller's result is left as it was
    # 1 +- z_0.95 x 0.5 (scipy's normal quantile): one product and a sum, 1e-12
    z90 = 1.6448536269514722
    np.testing.assert_allclose(
        moved.conf_int().loc["a"], [1 - z90 * 0.5, 1 + z90 * 0.5], rtol=1e-12
    )
    assert moved.tidy()["band_low"].isna().all()
    assert moved.tidy(0.05)["band_low"].tolist() == [-7.0]
    # a level already on record is kept, not overwritten by the intermediate one
    back = moved.with_terms(moved.terms, alpha=0.20)
    assert back.info["ci_alpha"] == 0.05 and back.band_alpha == 0.05
    # the same level changes nothing
    assert legacy.with_terms(legacy.terms, alpha=0.05).info == legacy.info


def test_cs_bands_keep_their_level_in_tables_and_plots_after_with_terms(mpdta: Panel) -> None:
    import matplotlib.pyplot as plt

    from zoneimpact.report import plots
    from zoneimpact.report.tables import event_study_table

    r = _cs_boot(mpdta, 0.05)
    at90 = r.with_terms(r.terms, alpha=0.10)
    assert at90.band_alpha == 0.05
    # the table states the band's own level, not the result's new one
    notes = " ".join(event_study_table(at90).notes)
    assert "95% simultaneous (uniform) confidence bands" in notes
    assert "90% pointwise confidence intervals" in notes
    fig = plots.event_study_plot(at90)
    labels = fig.axes[0].get_legend().get_texts()
    assert {"90% pointwise CI", "95% uniform band"} <= {t.get_text() for t in labels}
    plt.close(fig)
    # ATT(g, t): the stored 95% band is not drawn under a 90% legend
    fig = plots.group_time_plot(at90)
    texts = {t.get_text() for lg in fig.legends for t in lg.get_texts()}
    assert "90% pointwise CI" in texts and not any("uniform band" in t for t in texts)
    plt.close(fig)


def test_an_inference_redone_after_with_terms_drops_the_level_records(mpdta: Panel) -> None:
    # the records describe bands computed at another level; with_inference recomputes the
    # bands at the result's level, so a stale record would hide them (tidy) or mislabel
    # them (tables, plots)
    at90 = _cs_boot(mpdta, 0.05).with_terms(_cs_boot(mpdta, 0.05).terms, alpha=0.10)
    assert at90.band_alpha == 0.05
    redone = at90.with_inference("bootstrap", rng=np.random.default_rng(1))
    assert redone.alpha == 0.10 and redone.band_alpha == 0.10
    assert "band_alpha" not in redone.info and "ci_alpha" not in redone.info
    assert redone.tidy()["band_low"].notna().any()
    # the same as a fit at 90% (the same multiplier draws: equal to rounding)
    np.testing.assert_allclose(
        redone.terms["band_low"], _cs_boot(mpdta, 0.10).terms["band_low"], rtol=1e-12
    )


def test_stored_intervals_are_read_at_their_level_and_tables_say_which() -> None:
    # a reviewer (session 47): a wild-bootstrap result rebuilt at 90% showed analytic 95%
    # intervals although its 95% inversions were stored, and the table note named the
    # result's new level as the bootstrap's
    from zoneimpact.report.tables import regression_table

    terms = terms_frame(["a"], [1.0], [0.5], df=[np.inf]).assign(ci_low=[-9.0], ci_high=[9.0])
    info = {"ci_alpha": 0.05, "inference": "wild cluster bootstrap"}
    res = EstimationResult(estimator="x", outcome="y", terms=terms, alpha=0.05, info=info)
    at90 = res.with_terms(res.terms, alpha=0.10)
    assert at90.conf_int(0.05).loc["a"].tolist() == [-9.0, 9.0]
    # at its own 90% the table says the intervals are analytic and where the inversion was
    notes = " ".join(regression_table({"m": at90}).notes)
    assert "its 90% intervals are analytic" in notes and "inverted its test at 95% only" in notes
    # tabulated at 95% it shows the stored inversions, with no such note
    assert "are analytic" not in " ".join(regression_table({"m": at90}, alpha=0.05).notes)
