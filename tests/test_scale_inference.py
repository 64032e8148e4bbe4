"""Re-inference and weighted standard errors at extreme scales.

Multiplying the outcome by ``c`` multiplies every estimate and standard error by ``c``
(``fit`` and ``aggregate`` do so through ``estimators._scale``); ``with_inference`` must
as well. Multiplying the weights column by a constant leaves WLS and its CR1 sandwich
unchanged. The reference in every test is the same computation on the unscaled data
(times ``c`` for outcome-scaled numbers): at outcomes x 1e+-160 the old ``with_inference``
gave SEs of inf or NaN, or off by 1e-3 relative (squares underflowing), and weights
x 1e+-300 gave TWFE/first-difference SEs of 0 or inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import etwfe, first_difference, imputation, twfe

#: y * c and w * c round each value (relative 2^-53); well-conditioned least squares and
#: sandwiches carry that to ~1e-15 relative, so 1e-8 is far above rounding and far below
#: the failures (inf, NaN, 0, or 1e-3 relative at 1e-160).
RTOL = 1e-8

SCALES = [1e160, -1e160, 1e-160]


def _frame(seed: int = 0, n: int = 42, periods: int = 8) -> pd.DataFrame:
    """Staggered adoption (cohorts 2003, 2005, 2007 and never), a covariate, varying
    positive weights, 7 regions, 15% of outcomes missing."""
    rng = np.random.default_rng(seed)
    cohorts = [2003, 2005, 2007, 0]
    rows = []
    for i in range(n):
        g = cohorts[i % 4]
        a = rng.normal()
        wt = rng.uniform(0.5, 3.0)
        for t in range(2000, 2000 + periods):
            x = rng.normal() + 0.1 * (t - 2000)
            effect = 1.0 + 0.3 * (t - g) if g and t >= g else 0.0
            y = a + 0.2 * (t - 2000) + 0.5 * x + effect + rng.normal()
            rows.append((f"u{i:02d}", t, g, y, x, wt * rng.uniform(0.8, 1.2), i % 7))
    df = pd.DataFrame(rows, columns=["unit", "time", "g", "y", "x", "w", "reg"])
    df.loc[rng.random(len(df)) < 0.15, "y"] = np.nan
    return df


def _panel(df: pd.DataFrame) -> Panel:
    units = sorted(df["unit"].unique())
    k = np.arange(len(units))
    geo = pd.DataFrame({"unit": units, "lat": 30.0 + 0.05 * k, "lon": 110.0 + 0.03 * (k % 9)})
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        outcomes=["y"],
        cohort="g",
        covariates=["x", "w", "reg"],
        geography=geo,
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def _scaled(df: pd.DataFrame, column: str, c: float) -> Panel:
    out = df.copy()
    out[column] = out[column] * c
    return _panel(out)


def _assert_terms(got: pd.DataFrame, ref: pd.DataFrame, c: float, cols=("estimate", "se")):
    """``got`` equals ``ref`` with its outcome-scaled columns times ``c`` (a two-way
    variance that comes out negative is NaN in both)."""
    assert list(got["term"]) == list(ref["term"])
    assert np.isfinite(ref[list(cols)].to_numpy(float)[0]).all()
    for col in cols:
        want = ref[col].to_numpy(float) * (abs(c) if col == "se" else c)
        np.testing.assert_allclose(got[col].to_numpy(float), want, rtol=RTOL, err_msg=col)


# ---------------------------------------------------------------- imputation (BJS)
@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("cluster", ["reg", ["unit", "time"]], ids=["reg", "unit+time"])
def test_imputation_with_inference_is_scale_equivariant(frame, c, cluster):
    base = imputation.fit(_panel(frame), outcome="y", pretrends=2).with_inference(cluster=cluster)
    got = imputation.fit(_scaled(frame, "y", c), outcome="y", pretrends=2).with_inference(
        cluster=cluster
    )
    _assert_terms(got.terms, base.terms, c)
    # Test 1 (pre-trend F and p) is scale-free (old code: NaN at 1e160, 0.689 for 1.035
    # at 1e-160)
    for key in ("pretrend_F", "pretrend_p"):
        assert np.isfinite(got.info[key])
        assert got.info[key] == pytest.approx(base.info[key], rel=RTOL)
    np.testing.assert_allclose(
        got.pretrend["se"].to_numpy(float), abs(c) * base.pretrend["se"].to_numpy(float), rtol=RTOL
    )
    # aggregating after reclustering keeps the new clustering on the working scale
    _assert_terms(got.aggregate("group").terms, base.aggregate("group").terms, c)


# ---------------------------------------------------------------- TWFE / FD outcome scale
def _twfe_fits(panel: Panel, weights: str | None = None):
    return {
        "twfe": twfe.fit(panel, outcome="y", covariates=["x"], weights=weights),
        "event_study": twfe.fit_event_study(panel, outcome="y", weights=weights),
        "first_difference": first_difference.fit(panel, outcome="y", weights=weights),
    }


@pytest.mark.parametrize("c", SCALES)
def test_twfe_with_inference_is_scale_equivariant(frame, c):
    base = _twfe_fits(_panel(frame))
    got = _twfe_fits(_scaled(frame, "y", c))
    for name in base:
        for kw in (
            {"cluster": "reg"},
            {"cluster": ["unit", "time"]},
            {"method": "conley", "conley_km": 50.0},
        ):
            _assert_terms(
                got[name].with_inference(**kw).terms, base[name].with_inference(**kw).terms, c
            )


@pytest.mark.parametrize("c", [1e160, 1e-160])
def test_twfe_wild_bootstrap_is_scale_equivariant(frame, c):
    """The same draws on the working scale: p-values equal, interval ends times c."""
    base = twfe.fit(_panel(frame), outcome="y").with_inference(
        "wild", cluster="reg", n_boot=199, rng=5
    )
    got = twfe.fit(_scaled(frame, "y", c), outcome="y").with_inference(
        "wild", cluster="reg", n_boot=199, rng=5
    )
    _assert_terms(got.terms, base.terms, c, cols=("estimate", "se", "ci_low", "ci_high"))
    np.testing.assert_allclose(got.terms["p_value"], base.terms["p_value"], rtol=RTOL)


# ---------------------------------------------------------------- weights scale
@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_twfe_and_fd_ignore_a_constant_factor_on_the_weights(frame, c):
    """Weights x c leave WLS and CR1 unchanged (old code: every SE 0 at 1e-300, inf at
    1e300; the reference is the fit on the unscaled weights)."""
    base = _twfe_fits(_panel(frame), weights="w")
    got = _twfe_fits(_scaled(frame, "w", c), weights="w")
    for name in base:
        _assert_terms(got[name].terms, base[name].terms, 1.0)
        _assert_terms(
            got[name].with_inference(cluster=["unit", "time"]).terms,
            base[name].with_inference(cluster=["unit", "time"]).terms,
            1.0,
        )
    # first differences without period effects: the separate no-intercept path
    fd = [
        first_difference.fit(p, outcome="y", weights="w", time_effects=False)
        for p in (_panel(frame), _scaled(frame, "w", c))
    ]
    _assert_terms(fd[1].terms, fd[0].terms, 1.0)
    # ETWFE's linear model runs on the same engine (old code: SE 0 at 1e-300, NaN at 1e300)
    et = [etwfe.fit(p, outcome="y", weights="w") for p in (_panel(frame), _scaled(frame, "w", c))]
    _assert_terms(et[1].terms, et[0].terms, 1.0)
    _assert_terms(
        et[1].with_inference(cluster="reg").terms, et[0].with_inference(cluster="reg").terms, 1.0
    )


def test_rescaled_covariance_overflow_is_silent() -> None:
    # at y x 1e160 the covariance (squared units, ~1e320) is inf; the rescale must not emit
    # numpy's "overflow encountered in multiply" (the SEs are exact, tested above)
    import warnings as _w

    from zoneimpact.results import EstimationResult, terms_frame

    res = EstimationResult(
        "twfe",
        "y",
        terms_frame(["att"], [1.0], [0.5]),
        vcov=pd.DataFrame([[0.25]], ["att"], ["att"]),
    )
    with _w.catch_warnings():
        _w.simplefilter("error")
        big = res.rescaled(1e160)
    assert float(big.terms["se"].iloc[0]) == pytest.approx(0.5e160, rel=1e-12)
    assert np.isinf(big.vcov.to_numpy()).all()
