"""One rule for negative two-way variances; Sun-Abraham's aggregate at extreme scales; TWFE
under an outcome offset.

* Cameron, Gelbach & Miller's (2011) two-way ``V_1 + V_2 - V_12`` need not be positive
  semi-definite. Every estimator takes its SEs from
  :func:`zoneimpact.inference.covariance.standard_errors_from_variance`: NaN where the
  variance is negative, and one warning naming those terms at the caller's line. Before,
  TWFE, Sun-Abraham and the imputation estimator gave the NaN silently (only the CS family
  warned). The reference is the two-way variance rebuilt by hand from three one-way
  variances of the same result (clusters ``reg``, ``blk`` and their intersection).
* Sun-Abraham's ``aggregate`` at y x 1e+-160: the old code formed ``A V A'`` in the
  outcome's units, where V overflowed (SEs NaN at 1e160) or went subnormal (0.3% off at
  1e-160). Reference: the same aggregation at y, times ``|c|``.
* TWFE on ``y + 1e10``: the fixed effects absorb a constant, but absorbed at the outcome's
  level the residuals lost digits (SEs 3e-6 relative off). Reference: the fit on the same
  rounded data with the offset removed exactly (``(y + 1e10) - 1e10`` is exact).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import callaway_santanna, imputation, sun_abraham, twfe

NEGATIVE = re.compile(
    r"The two-way clustered variance V_1 \+ V_2 - V_12 \(Cameron, Gelbach & Miller 2011\) "
    r"is negative for (\d+) term\(s\) \((.*?)\): their SE and interval are NaN"
)
TWO = ["reg", "blk"]


def _frame(seed: int = 0, n: int = 48, periods: int = 8) -> pd.DataFrame:
    """Staggered adoption (2003, 2005, 2007, never), two crossed unit-level groupings
    (``reg``: 6 groups, ``blk``: 5; ``regblk`` their intersection), a covariate, weights
    and 15% of the outcomes missing.
    Seed 0 gives negative two-way variances in every estimator (found by search)."""
    rng = np.random.default_rng(seed)
    cohorts = [2003, 2005, 2007, 0]
    rows = []
    for i in range(n):
        g, a = cohorts[i % 4], rng.normal()
        wt = rng.uniform(0.5, 3.0)
        for t in range(2000, 2000 + periods):
            x = rng.normal()
            eff = 1.0 + 0.3 * (t - g) if g and t >= g else 0.0
            y = a + 0.2 * (t - 2000) + 0.5 * x + eff + rng.normal()
            reg, blk = i % 6, (i // 3) % 5
            rows.append((f"u{i:02d}", t, g, y, x, wt, reg, blk, reg * 10 + blk))
    df = pd.DataFrame(rows, columns=["unit", "time", "g", "y", "x", "w", "reg", "blk", "regblk"])
    # unbalanced: on a balanced panel the old TWFE absorbed an offset exactly
    df.loc[rng.random(len(df)) < 0.15, "y"] = np.nan
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        outcomes=["y"],
        cohort="g",
        covariates=["x", "w", "reg", "blk", "regblk"],
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def _scaled(df: pd.DataFrame, c: float) -> Panel:
    return _panel(df.assign(y=df["y"] * c))


def _negative_warnings(call):
    """Run ``call``; its result and the negative-variance warnings it raised."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = call()
    return out, [w for w in rec if NEGATIVE.search(str(w.message))]


def _assert_one_warning(found, names: list[str], var: np.ndarray) -> None:
    """One warning, at this file's line, counting and naming (first five) the negatives."""
    neg = [n for n, v in zip(names, var, strict=True) if v < 0]
    assert neg, "the design must have a negative two-way variance"
    assert len(found) == 1
    assert found[0].filename == __file__
    m = NEGATIVE.search(str(found[0].message))
    assert m is not None
    assert int(m.group(1)) == len(neg)
    assert m.group(2).removesuffix(" ...").split(", ") == neg[:5]


def _cgm(one_way: dict[str, np.ndarray], sizes: dict[str, int]) -> np.ndarray:
    """Two-way diagonal from one-way CR1 diagonals: each is ``G/(G-1) q B M B`` with the
    same ``q = (n-1)/(n-K)`` (ssc='statsmodels' counts every absorbed effect, so ``K`` does
    not depend on the clustering), and the two-way one is ``Gmin/(Gmin-1) q B (M_1 + M_2
    - M_12) B`` (Cameron, Gelbach & Miller 2011, eq. 2.11; fixest's smallest G)."""
    meat = {k: v * (sizes[k] - 1) / sizes[k] for k, v in one_way.items()}
    g = min(sizes["reg"], sizes["blk"])
    return g / (g - 1) * (meat["reg"] + meat["blk"] - meat["regblk"])


SIZES = {"reg": 6, "blk": 5, "regblk": 30}
# sums of the same scores in another order and a combination of three covariances: 1e-9
# relative is far above rounding (~1e-14) and far below any real difference
BY_HAND = 1e-9


# ---------------------------------------------------------------- the helper itself
def test_helper_nan_for_negative_two_way_and_one_warning() -> None:
    # imported here: the other tests run (and fail on their own terms) on the old code
    from zoneimpact.inference.covariance import standard_errors_from_variance

    var = np.array([4.0, -1.0, 0.0, np.nan, -1e-300])
    names = ["a", "b", "c", "d", "e"]
    se, found = _negative_warnings(
        lambda: standard_errors_from_variance(var, names, two_way=True, stacklevel=1)
    )
    np.testing.assert_array_equal(se, [2.0, np.nan, 0.0, np.nan, np.nan])
    _assert_one_warning(found, names, var)
    # one way: sums of squares, so a negative value is rounding of zero: 0, no warning
    se, found = _negative_warnings(
        lambda: standard_errors_from_variance(var, names, two_way=False, stacklevel=1)
    )
    np.testing.assert_array_equal(se, [2.0, 0.0, 0.0, np.nan, 0.0])
    assert not found
    # no names: the caller warns (the CS family leaves out terms NaN by construction)
    se, found = _negative_warnings(lambda: standard_errors_from_variance(var, two_way=True))
    assert np.isnan(se[1]) and not found


# ------------------------------------------------------- each estimator, two ways
def _twfe_check(res) -> None:
    names = res.terms["term"].tolist()
    one = {c: res.with_inference(cluster=c, ssc="statsmodels") for c in SIZES}
    var = _cgm({c: one[c].terms["se"].to_numpy() ** 2 for c in SIZES}, SIZES)
    two, found = _negative_warnings(lambda: res.with_inference(cluster=TWO, ssc="statsmodels"))
    _assert_one_warning(found, names, var)
    se = two.terms["se"].to_numpy()
    assert np.array_equal(np.isnan(se), var < 0)  # before the helper: NaN, but no warning
    np.testing.assert_allclose(se[var >= 0], np.sqrt(var[var >= 0]), rtol=BY_HAND)
    assert not _negative_warnings(lambda: res.with_inference(cluster="reg"))[1]


def test_twfe_event_study_two_way_negative_warns(frame) -> None:
    _twfe_check(twfe.fit_event_study(_panel(frame), outcome="y"))


def test_sun_abraham_two_way_negative_warns_once_for_terms_and_cells(frame) -> None:
    res = sun_abraham.fit(_panel(frame), outcome="y")
    one = {c: res.with_inference(cluster=c, ssc="statsmodels") for c in SIZES}
    var = _cgm({c: one[c].terms["se"].to_numpy() ** 2 for c in SIZES}, SIZES)
    cell_var = _cgm({c: one[c].cohort_effects["se"].to_numpy() ** 2 for c in SIZES}, SIZES)
    two, found = _negative_warnings(lambda: res.with_inference(cluster=TWO, ssc="statsmodels"))
    ce = res.cohort_effects
    cells = [f"cell({g},{e})" for g, e in zip(ce["cohort"], ce["event"], strict=True)]
    _assert_one_warning(found, [*res.terms["term"], *cells], np.concatenate([var, cell_var]))
    se, cell_se = two.terms["se"].to_numpy(), two.cohort_effects["se"].to_numpy()
    assert np.array_equal(np.isnan(se), var < 0)
    assert np.array_equal(np.isnan(cell_se), cell_var < 0)
    np.testing.assert_allclose(se[var >= 0], np.sqrt(var[var >= 0]), rtol=BY_HAND)
    # aggregate: the same rule on A V A' of the two-way cell covariance
    agg, found = _negative_warnings(lambda: two.aggregate("group"))
    A, V = np.asarray(agg.design.iw_weights), np.asarray(two.cell_vcov)
    agg_var = np.diag(A @ V @ A.T)
    _assert_one_warning(found, agg.terms["term"].tolist(), agg_var)
    assert np.array_equal(np.isnan(agg.terms["se"].to_numpy()), agg_var < 0)


def test_imputation_two_way_negative_warns(frame) -> None:
    res = imputation.fit(_panel(frame), outcome="y")
    names = res.terms["term"].tolist()
    # the BJS variance has no small-sample factor: V = V_reg + V_blk - V_regblk exactly
    one = {c: np.diag(res.with_inference(cluster=c).vcov.to_numpy()) for c in SIZES}
    var = one["reg"] + one["blk"] - one["regblk"]
    two, found = _negative_warnings(lambda: res.with_inference(cluster=TWO))
    _assert_one_warning(found, names, var)
    se = two.terms["se"].to_numpy()
    assert np.array_equal(np.isnan(se), var < 0)
    np.testing.assert_allclose(se[var >= 0], np.sqrt(var[var >= 0]), rtol=BY_HAND)
    # aggregating keeps the two-way clustering, and the rule
    agg, found = _negative_warnings(lambda: two.aggregate("group"))
    agg_var = np.diag(agg.vcov.to_numpy())
    _assert_one_warning(found, agg.terms["term"].tolist(), agg_var)
    assert np.array_equal(np.isnan(agg.terms["se"].to_numpy()), agg_var < 0)


def test_callaway_santanna_gives_the_same_message(frame) -> None:
    # the CS family warned before (pure refactor: _gt_aggregate delegates to the helper);
    # its message is the one the other estimators now give
    res, found = _negative_warnings(
        lambda: callaway_santanna.fit(_panel(frame), outcome="y", bootstrap=False, cluster=TWO)
    )
    assert len(found) == 1 and found[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few treated clusters (6 regions)
        one = callaway_santanna.fit(_panel(frame), outcome="y", bootstrap=False, cluster="reg")
    newly_nan = res.terms["se"].isna().to_numpy() & one.terms["se"].notna().to_numpy()
    m = NEGATIVE.search(str(found[0].message))
    assert m is not None and int(m.group(1)) == newly_nan.sum() > 0


@pytest.mark.parametrize("c", [1e160, -1e160, 1e-160])
def test_the_warning_points_at_the_caller_at_extreme_scales(frame, c) -> None:
    # with_inference recomputes on the working scale (one call deeper) at these scales
    calls = {
        "twfe": lambda p: twfe.fit_event_study(p, outcome="y").with_inference(cluster=TWO),
        "sun_abraham": lambda p: sun_abraham.fit(p, outcome="y").with_inference(cluster=TWO),
        "imputation": lambda p: imputation.fit(p, outcome="y").with_inference(cluster=TWO),
    }
    for name, call in calls.items():
        base, found0 = _negative_warnings(lambda call=call: call(_panel(frame)))
        got, found = _negative_warnings(lambda call=call: call(_scaled(frame, c)))
        assert len(found) == 1 and found[0].filename == __file__, name
        assert str(found[0].message) == str(found0[0].message), name
        se0, se = base.terms["se"].to_numpy(), got.terms["se"].to_numpy()
        assert np.array_equal(np.isnan(se), np.isnan(se0)), name
        # y * c rounds each value (2^-53); the two-way sums' cancellation carries that to
        # ~1e-14 relative at most (measured for the aggregates below)
        np.testing.assert_allclose(se, abs(c) * se0, rtol=1e-12, err_msg=name)


# ------------------------------------------------- Sun-Abraham aggregate at 1e+-160
AGGREGATIONS = [
    ("simple", {}),
    ("dynamic", {"bins": [[0, 2]]}),
    ("group", {}),
    ("calendar", {}),
    ("dynamic", {"min_e": -2, "max_e": 2}),
]


@pytest.mark.parametrize("c", [1e160, -1e160, 1e-160])
@pytest.mark.parametrize("cluster", [None, TWO], ids=["fit", "two-way"])
def test_sun_abraham_aggregate_is_scale_equivariant(frame, c, cluster) -> None:
    def fitted(p):
        res = sun_abraham.fit(p, outcome="y")
        return res if cluster is None else res.with_inference(cluster=cluster)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # negative two-way variances: tested above
        base, got = fitted(_panel(frame)), fitted(_scaled(frame, c))
        n_finite = 0
        for kind, kw in AGGREGATIONS:
            a, b = base.aggregate(kind, **kw).terms, got.aggregate(kind, **kw).terms
            assert list(a["term"]) == list(b["term"])
            se0, se = a["se"].to_numpy(), b["se"].to_numpy()
            # before: NaN at 1e160 (A V A' formed from V * c^2 = inf), 3e-3 off at 1e-160;
            # two ways, the terms with a negative variance are NaN on both scales
            assert np.array_equal(np.isnan(se), np.isnan(se0)), kind
            n_finite += int(np.isfinite(se0).sum())
            # y * c rounds each value (2^-53): measured 9e-16 relative one way, 6e-14 two
            # ways (V_1 + V_2 - V_12 cancels, amplifying the rounding)
            np.testing.assert_allclose(se, abs(c) * se0, rtol=1e-12, err_msg=kind)
            np.testing.assert_allclose(b["estimate"], c * a["estimate"], rtol=1e-12)
        assert n_finite >= 10


# ----------------------------------------------------------- TWFE under y + 1e10
FITS = {
    "static": lambda p: twfe.fit(p, outcome="y", covariates=["x"]),
    "weighted": lambda p: twfe.fit(p, outcome="y", covariates=["x"], weights="w"),
    "event_study": lambda p: twfe.fit_event_study(p, outcome="y"),
    "event_study_region": lambda p: twfe.fit_event_study(p, outcome="y", cluster="reg"),
}


@pytest.mark.parametrize("offset", [1e8, 1e10])
@pytest.mark.parametrize("name", list(FITS))
def test_twfe_is_translation_invariant(frame, name, offset) -> None:
    shifted = frame.assign(y=frame["y"] + offset)
    exact = shifted.assign(y=shifted["y"] - offset)  # exact in floating point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few treated clusters; negative two-way variances
        a, b = FITS[name](_panel(shifted)), FITS[name](_panel(exact))
        pairs = [(a, b)] + [
            (a.with_inference(cluster=cl), b.with_inference(cluster=cl)) for cl in ("reg", TWO)
        ]
    for x, y in pairs:
        # the same rounded data, and the constant absorbed by the fixed effects: only the
        # order of sums may differ (measured: 2e-16 at most). Before: SEs up to 8e-10
        # relative off at 1e8 and 4e-7 at 1e10
        for col in ("estimate", "se"):
            np.testing.assert_allclose(x.terms[col], y.terms[col], rtol=1e-12, atol=0, err_msg=col)
