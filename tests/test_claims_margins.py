"""Claim margins: unit of the displacement share's margin, the log-scale band, and inputs
that cannot give a verdict (negative SE, df <= 0, missing pre-zone mean)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from zoneimpact.claims import (
    Claim,
    CurveRule,
    curve_verdict,
    evaluate_claims,
    judge,
    load_claims,
    load_curve_rule,
)
from zoneimpact.errors import SpecError
from zoneimpact.inference.equivalence import (
    EquivalenceError,
    equivalence_test,
    judge_null_claim,
)
from zoneimpact.results import EstimationResult, terms_frame

Z95 = stats.norm.ppf(0.95)


def _claim(**kw):
    base = dict(id="x", document="d", quote="q", hypothesis="h", outcomes=("fdi",))
    return Claim(**{**base, **kw})


def _result(term, est, se, info=None, **extra):
    return EstimationResult(
        "x", "fdi", terms_frame([term], [est], [se], **extra), term, 10, 10, info=info or {}
    )


def _evaluate(claim, res):
    return evaluate_claims([claim], {"sim": {"fdi": res}}).iloc[0]


def _specs(est, se, kind="level", pre_mean=100.0, df=math.inf):
    n = len(est)
    return pd.DataFrame(
        {
            "estimate": est,
            "se": se,
            "df": df if isinstance(df, list) else [df] * n,
            "pretrend_p": [0.5] * n,
            "n_clean": [50] * n,
            "scale_kind": [kind] * n,
            "pre_mean": pre_mean if isinstance(pre_mean, list) else [pre_mean] * n,
            "judged": [True] * n,
        }
    )


# ---------------------------------------------------------------- 1: the share's margin unit
def test_displacement_share_margin_is_absolute_by_default():
    c = _claim(estimand="displacement_share", null_value=1.0, margin=0.25)
    assert c.margin_unit == "absolute"
    # share 0.098 (SE 0.083), the outcome's pre-zone mean 260 (dollars): the 90% CI
    # (-0.039, 0.235) lies 0.77 below the null 1, beyond the margin 0.25 -> contradicted.
    # The old default multiplied 0.25 by 260 (margin 65) and said "supported".
    row = _evaluate(c, _result("displacement_share", 0.098, 0.083, {"pre_mean": 260.0}))
    assert row["margin"] == 0.25  # exact: the declared number, not scaled
    assert row["verdict"] == "contradicted"
    assert row["ci_high"] == pytest.approx(0.098 + Z95 * 0.083, rel=1e-12)
    # other estimands keep the pre_mean default (the concentration share and HHI too:
    # their pre_mean is the share's / HHI's own pre-zone mean, in the estimand's unit)
    for estimand in ("direct", "net", "spillover", "concentration", "concentration_hhi"):
        assert _claim(estimand=estimand, margin=0.1).margin_unit == "pre_mean"


def test_displacement_share_explicit_pre_mean_is_refused(tmp_path):
    with pytest.raises(SpecError, match="'share_x'.*margin_unit 'pre_mean'"):
        _claim(id="share_x", estimand="displacement_share", margin=0.25, margin_unit="pre_mean")
    head = '[[claim]]\nid = "s"\ndocument = "d"\nquote = "q"\nhypothesis = "h"\n'
    head += 'outcomes = ["fdi"]\nestimand = "displacement_share"\nmargin = 0.25\n'
    ok = tmp_path / "ok.toml"
    ok.write_text(head)
    assert load_claims(ok)[0].margin_unit == "absolute"
    bad = tmp_path / "bad.toml"
    bad.write_text(head + 'margin_unit = "pre_mean"\n')
    with pytest.raises(SpecError, match="'s'.*ratio without unit"):
        load_claims(bad)


def test_displacement_share_curve_margin_ignores_pre_mean():
    c = _claim(estimand="displacement_share", null_value=1.0, margin=0.25, scales=("levels",))
    # share 0.0 (SE 0.05) on a curve row carrying the outcome's pre_mean 144.85: the CI
    # (-0.082, 0.082) is 0.92 below the null, beyond 0.25 -> contradicted (old: margin
    # 0.25 x 144.85 = 36.2, "supported")
    out = curve_verdict(c, _specs([0.0], [0.05], pre_mean=144.85), CurveRule())
    assert out["margin"] == 0.25
    assert out["verdict"] == "contradicted"


# ---------------------------------------------------------------- 2: log-scale band
def test_log_scale_band_is_minus_m_to_plus_m():
    eq = _claim(estimand="direct", test="equivalence", margin=0.10, scales=("log1p",))
    neg = _claim(estimand="direct", test="negative", margin=0.10, scales=("log1p",))
    # a -9.5% change, tiny SE: inside [-10%, +10%], so supported as on the level scale
    # (old band +-log(1.1) put the lower edge at -9.09% and said "contradicted")
    tight = _specs([math.log(0.905)], [0.001], kind="log", pre_mean=math.nan)
    out = curve_verdict(eq, tight, CurveRule())
    assert out["verdict"] == "supported"
    assert out["margin"] == math.log1p(0.10)  # the upper edge, exact
    assert out["margin_lower"] == -math.log1p(-0.10)  # = -log(0.9), exact
    assert "band [-0.1054, 0.09531]" in out["note"]
    # negative claim whose 90% CI runs from a -9.5% change to +1.4%: it lies above
    # log(0.9) (-10%), so the effect is at most negligible -> contradicted (as on levels);
    # old: inconclusive (compared against -log(1.1), a -9.09% change)
    wide = _specs([math.log(0.96)], [0.0334], kind="log", pre_mean=math.nan)
    out = curve_verdict(neg, wide, CurveRule())
    assert out["ci_low"] == pytest.approx(math.log(0.96) - Z95 * 0.0334, rel=1e-12)
    assert math.log(0.9) < out["ci_low"] < -math.log1p(0.10)
    assert out["verdict"] == "contradicted"
    lvl = curve_verdict(neg, _specs([-4.0], [3.344], pre_mean=100.0), CurveRule())
    assert lvl["verdict"] == "contradicted"


def test_log_scale_margin_of_one_or_more_is_refused():
    c = _claim(estimand="direct", margin=1.0, scales=("log1p",))
    with pytest.raises(SpecError, match="'x'.*margin < 1"):
        curve_verdict(c, _specs([0.0], [0.01], kind="log"), CurveRule())
    # level scales take any positive margin
    assert curve_verdict(c, _specs([0.0], [0.01]), CurveRule())["verdict"] == "supported"


def test_asymmetric_tost_and_symmetric_case_unchanged():
    b, s, lo_m, hi_m = -0.095, 0.01, -math.log(0.9), math.log(1.1)
    r = equivalence_test(b, s, hi_m, 0.05, None, margin_lower=lo_m)
    # hand computation: TOST p-values with the band (-lo_m, hi_m)
    assert r.p_lower == pytest.approx(stats.norm.sf((b + lo_m) / s), rel=1e-12)
    assert r.p_upper == pytest.approx(stats.norm.cdf((b - hi_m) / s), rel=1e-12)
    assert r.margin_lower == lo_m
    # symmetric: bit for bit what the test gives without margin_lower
    for est, se, m, df in ((0.3, 0.2, 0.5, None), (-0.8, 0.1, 0.5, 7.0), (0.0, 1.0, 0.1, None)):
        a = equivalence_test(est, se, m, 0.05, df)
        c = equivalence_test(est, se, m, 0.05, df, margin_lower=m)
        assert a == c
        assert a.margin_lower == m
    # judge with an asymmetric band agrees with the interval rule
    assert judge(-0.11, 0.001, hi_m, margin_lower=lo_m)[0] == "contradicted"
    assert judge(-0.10, 0.001, hi_m, margin_lower=lo_m)[0] == "supported"


# ---------------------------------------------------------------- 3: negative standard error
def test_negative_se_is_not_estimable():
    # old: the inverted interval (16.4, -16.4) was read as inside (-1, 1): "supported"
    assert judge(0.0, -10.0, 1.0, test="equivalence")[0] == "not estimable"
    assert judge(0.0, -10.0, 1.0, test="positive")[0] == "not estimable"
    assert judge(5.0, -0.1, 1.0, test="negative")[0] == "not estimable"
    # direct use of the equivalence test raises, as for a NaN standard error
    for se in (-10.0, math.nan):
        with pytest.raises(EquivalenceError, match="se must be a positive finite"):
            judge_null_claim(0.0, se, 1.0)
    row = _evaluate(_claim(estimand="direct", margin=1.0, margin_unit="absolute"),
                    _result("direct", 0.0, -10.0))  # fmt: skip
    assert row["verdict"] == "not estimable"
    assert "standard error is negative" in row["note"]


# ---------------------------------------------------------------- 4: unusable inputs
@pytest.mark.parametrize("pre_mean", [0.0, math.nan, None, "n/a"])
@pytest.mark.parametrize("test", ["equivalence", "positive"])
def test_unusable_pre_mean_is_not_estimable(pre_mean, test):
    # old: 0 raised (equivalence) or judged against a zero margin (positive: "supported");
    # None raised TypeError
    c = _claim(estimand="direct", test=test, margin=0.1, margin_unit="pre_mean")
    row = _evaluate(c, _result("direct", 0.05, 0.01, {"pre_mean": pre_mean}))
    assert row["verdict"] == "not estimable"
    assert "pre-zone mean" in row["note"]


@pytest.mark.parametrize("df", [0.0, -3.0])
@pytest.mark.parametrize("test", ["equivalence", "positive"])
def test_nonpositive_df_is_not_estimable(df, test):
    c = _claim(estimand="direct", test=test, margin=1.0, margin_unit="absolute")
    row = _evaluate(c, _result("direct", 0.0, 0.1, df=[df]))  # old: raised / "inconclusive"
    assert row["verdict"] == "not estimable"
    assert "degrees of freedom" in row["note"]


def test_curve_row_without_margin_is_not_admissible_evidence():
    pos = _claim(estimand="direct", test="positive", margin=0.1, scales=("levels",))
    # both rows: estimate 0, SE 0.1, CI (-0.16, 0.16) below the margin 0.1 x 10 = 1; the
    # second has no pre-zone mean. Old: its NaN margin made it "inconclusive" and blocked
    # the contradicted verdict
    specs = _specs([0.0, 0.0], [0.1, 0.1], pre_mean=[10.0, math.nan])
    out = curve_verdict(pos, specs, CurveRule())
    assert out["verdict"] == "contradicted"
    assert out["n_admissible"] == 1
    assert "not estimable: 1 no margin (pre-zone mean nan)" in out["note"]
    # equivalence, an inadmissible row without SE and pre-zone mean (old: raised), and a
    # pre-zone mean of 0 (old: raised)
    eq = _claim(estimand="direct", margin=0.1, scales=("levels",))
    two = _specs([0.0, 0.0], [0.1, math.nan], pre_mean=[10.0, math.nan])
    assert curve_verdict(eq, two, CurveRule())["verdict"] == "supported"
    zero = curve_verdict(eq, _specs([0.0], [0.1], pre_mean=0.0), CurveRule())
    assert zero["verdict"] == "inconclusive"
    assert "no admissible specification" in zero["note"] and "pre-zone mean 0" in zero["note"]
    # df <= 0 on a curve row: not admissible
    bad_df = curve_verdict(eq, _specs([0.0], [0.1], df=0.0), CurveRule())
    assert bad_df["n_admissible"] == 0 and "0 degrees of freedom" in bad_df["note"]


def test_curve_df_none_is_the_normal_reference():
    eq = _claim(estimand="direct", margin=0.1, scales=("levels",))
    normal = curve_verdict(eq, _specs([0.2], [0.3], df=math.inf), CurveRule())
    missing = curve_verdict(eq, _specs([0.2], [0.3], df=[None]), CurveRule())  # old: TypeError
    assert missing == normal
    assert missing["ci_high"] == pytest.approx(0.2 + Z95 * 0.3, rel=1e-12)


def test_pretrend_alpha_as_string_is_refused(tmp_path):
    p = tmp_path / "claims.toml"
    p.write_text('[curve_rule]\npretrend_alpha = "0.1"\n')
    with pytest.raises(SpecError, match="pretrend_alpha must be a number"):
        load_curve_rule(p)  # old: accepted, then TypeError when comparing p-values
    p.write_text("[curve_rule]\npretrend_alpha = 0.1\n")
    assert load_curve_rule(p).pretrend_alpha == 0.1


# ---------------------------------------------------------------- 5: supported and small
def test_positive_supported_inside_margin_says_so():
    # 90% CI (0.0067, 0.0133): above 0 and below the margin 0.02 -> supported (significant)
    # and the note says the effect is smaller than the margin
    for test, est in (("positive", 0.01), ("negative", -0.01)):
        c = _claim(estimand="direct", test=test, margin=0.02, margin_unit="absolute")
        row = _evaluate(c, _result("direct", est, 0.002))
        assert row["verdict"] == "supported"
        assert "within the margin" in row["note"]
    c = _claim(estimand="direct", test="positive", margin=0.005, margin_unit="absolute")
    row = _evaluate(c, _result("direct", 0.01, 0.002))
    assert row["verdict"] == "supported" and "within the margin" not in row["note"]


def test_spec_claim_on_the_share_term_takes_an_absolute_margin():
    # a claim bound to another spec judges its term: term="displacement_share" with the
    # default estimand got margin 0.25 x a pre-zone mean of 260.1 = 65.025 and "supported"
    # (the session-22 reviewer); the share's margin is in share points, as estimand= has it
    c = _claim(spec="other", estimate="spill", term="displacement_share", margin=0.25)
    assert c.margin_unit == "absolute"
    with pytest.raises(SpecError, match="cannot apply to the displacement_share"):
        _claim(spec="other", estimate="spill", term="displacement_share", margin=0.25,
               margin_unit="pre_mean")  # fmt: skip
