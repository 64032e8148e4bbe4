"""Re-inference and Poisson fits at extreme and small scales: ETWFE, dCDH and PPML.

Multiplying the outcome by ``c`` multiplies level effects and their standard errors by
``c`` and leaves PPML's log-point and proportional effects unchanged; multiplying the
weights by a constant changes nothing. The reference in every test is the same
computation on the unscaled data (times ``c`` for outcome-scaled numbers). Old code:
ETWFE ``with_inference`` gave SEs of 0 one way and NaN two ways at y x 1e160 and was off
by up to 5e-3 relative at 1e-160; dCDH ``with_inference`` gave SEs of inf at 1e160 and 0 at
1e-300; the Poisson fits (PPML, ETWFE Poisson) stopped IRLS early on y or weights
x 2^-56 and gave SEs of 0 or refused the fit for weights x 1e-300 / 1e300.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact import Panel
from zoneimpact.estimators import chaisemartin, etwfe, ppml

#: y * c and w * c round each value (relative 2^-53; exact for a power of two), and the
#: IRLS fits converge to ~1e-13 in the deviance; well-conditioned sandwiches carry that
#: to ~1e-12 relative at most, so 1e-8 is far above rounding and far below the failures
#: (0, inf, NaN; 4e-4 relative or more at 1e-160; 2.6e-3 for the early IRLS stop).
RTOL = 1e-8

#: A power of two inside the decorator's safe range [2^-64, 2^64]: the outcome is not
#: rescaled by ``scale_equivariant``, and y * 2^-56 is exact.
SMALL = 2.0**-56


def _frame(seed: int = 0, n: int = 42, periods: int = 8, missing: float = 0.15) -> pd.DataFrame:
    """Staggered adoption (cohorts 2003, 2005, 2007 and never), varying positive weights,
    7 regions, a share ``missing`` of the outcomes missing; ``y`` may be negative,
    ``ypos = |y|`` is the Poisson outcome."""
    rng = np.random.default_rng(seed)
    cohorts = [2003, 2005, 2007, 0]
    rows = []
    for i in range(n):
        g = cohorts[i % 4]
        a = rng.normal()
        wt = rng.uniform(0.5, 3.0)
        for t in range(2000, 2000 + periods):
            effect = 1.0 + 0.3 * (t - g) if g and t >= g else 0.0
            y = a + 0.2 * (t - 2000) + effect + rng.normal()
            rows.append((f"u{i:02d}", t, g, y, wt * rng.uniform(0.8, 1.2), i % 7))
    df = pd.DataFrame(rows, columns=["unit", "time", "g", "y", "w", "reg"])
    df["ypos"] = df["y"].abs()
    if missing:
        drop = rng.random(len(df)) < missing
        df.loc[drop, ["y", "ypos"]] = np.nan
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(
        df,
        unit="unit",
        time="time",
        outcomes=["y", "ypos"],
        cohort="g",
        covariates=["w", "reg"],
    )


def _scaled(df: pd.DataFrame, columns: list[str], c: float) -> Panel:
    out = df.copy()
    for col in columns:
        out[col] = out[col] * c
    return _panel(out)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def balanced() -> pd.DataFrame:
    return _frame(seed=1, n=60, periods=10, missing=0.0)


def _assert_terms(got: pd.DataFrame, ref: pd.DataFrame, c: float, cols=("estimate", "se")):
    """``got`` equals ``ref`` with its columns times ``c`` (SEs times ``|c|``); a two-way
    variance that comes out negative gives a NaN SE, which must then be NaN in both."""
    keys = ["term"] if "term" in ref.columns else ["cohort", "time"]
    pd.testing.assert_frame_equal(got[keys], ref[keys])
    assert np.isfinite(ref["estimate"].to_numpy(float)).all()
    assert np.isfinite(ref["se"].to_numpy(float)).any()
    for col in cols:
        want = ref[col].to_numpy(float) * (abs(c) if col == "se" else c)
        np.testing.assert_allclose(got[col].to_numpy(float), want, rtol=RTOL, err_msg=col)


# ---------------------------------------------------------------- ETWFE with_inference
@pytest.mark.parametrize(
    ("method", "outcome", "c"),
    [
        ("linear", "y", 1e160),
        ("linear", "y", -1e160),
        ("linear", "y", 1e-160),
        ("poisson", "ypos", 1e160),
        ("poisson", "ypos", 1e-160),
    ],
)
@pytest.mark.parametrize("cluster", ["reg", ["unit", "time"]], ids=["reg", "unit+time"])
def test_etwfe_with_inference_is_scale_equivariant(frame, method, outcome, c, cluster):
    """Old code: att SE 0 (reg) and NaN (unit+time) at 1e160 (linear and Poisson), and
    at 1e-160 0.180578 for 0.179740 (linear, reg; the squared scores lose digits as
    subnormals)."""
    base = etwfe.fit(_panel(frame), outcome=outcome, method=method)
    got = etwfe.fit(_scaled(frame, [outcome], c), outcome=outcome, method=method)
    b, g = base.with_inference(cluster=cluster), got.with_inference(cluster=cluster)
    _assert_terms(g.terms, b.terms, c)
    _assert_terms(g.att_gt, b.att_gt, c)
    assert g.info["n_clusters"] == b.info["n_clusters"]


# ---------------------------------------------------------------- dCDH with_inference
@pytest.mark.parametrize("c", [1e160, -1e160, 1e-160, 1e300, 1e-300])
@pytest.mark.parametrize("cluster", ["reg", None], ids=["reg", "group"])
def test_chaisemartin_with_inference_is_scale_equivariant(balanced, c, cluster):
    """Old code: every SE inf at 1e160 and 1e300, 0 at 1e-300, 4e-4 relative off at
    1e-160 (the influence functions squared on the user's scale)."""
    opts = {"effects": 2, "placebo": 1}
    base = chaisemartin.fit(_panel(balanced), outcome="y", **opts)
    got = chaisemartin.fit(_scaled(balanced, ["y"], c), outcome="y", **opts)
    b, g = base.with_inference(cluster=cluster), got.with_inference(cluster=cluster)
    _assert_terms(g.terms, b.terms, c)
    _assert_terms(g.effects, b.effects, c)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_chaisemartin_ignores_a_constant_factor_on_the_weights(balanced, c):
    """Cell weights N_gt x c: the same DID_l and SEs (this held on the old code too)."""
    opts = {"effects": 2, "placebo": 1, "weights": "w"}
    base = chaisemartin.fit(_panel(balanced), outcome="y", **opts)
    got = chaisemartin.fit(_scaled(balanced, ["w"], c), outcome="y", **opts)
    _assert_terms(got.terms, base.terms, 1.0)
    _assert_terms(
        got.with_inference(cluster="reg").terms, base.with_inference(cluster="reg").terms, 1.0
    )


# ---------------------------------------------------------------- Poisson fits
def _poisson_fits(panel: Panel, weights: str | None = None):
    return (
        ppml.fit(panel, outcome="ypos", weights=weights),
        etwfe.fit(panel, outcome="ypos", method="poisson", weights=weights),
    )


@pytest.mark.parametrize("c", [SMALL, 1e160, 1e-160])
def test_poisson_fits_are_scale_equivariant_in_the_outcome(frame, c):
    """PPML's log-point ``att`` and proportional ``att_pct`` do not move; ETWFE Poisson's
    level effects scale by c. Old code at y x 2^-56 (inside the decorator's range, so
    fitted as given): PPML att 0.641707 for 0.640023 (its convergence test's 0.1 is
    absolute), ETWFE Poisson att/c 0.7057 for 1.5379 with an SE/c of 1.395 for 0.176
    (statsmodels' test is absolute); at 1e+-160 both held (the decorator)."""
    base_p, base_e = _poisson_fits(_panel(frame))
    got_p, got_e = _poisson_fits(_scaled(frame, ["ypos"], c))
    _assert_terms(got_p.terms, base_p.terms, 1.0)
    _assert_terms(got_e.terms, base_e.terms, c)
    _assert_terms(got_e.att_gt, base_e.att_gt, c)
    for cluster in ("reg", ["unit", "time"]):
        _assert_terms(
            got_p.with_inference(cluster=cluster).terms,
            base_p.with_inference(cluster=cluster).terms,
            1.0,
        )


@pytest.mark.parametrize("c", [1e-300, 1e300, SMALL])
def test_poisson_fits_ignore_a_constant_factor_on_the_weights(frame, c):
    """Weights x c leave the weighted QMLE and its sandwich unchanged. Old code: x 1e-300
    gave SEs of 0 and moved the estimates (PPML 0.716855 for 0.715508, ETWFE Poisson
    1.761905 for 1.660595: IRLS stopped early), x 1e300 refused both fits as not finite,
    x 2^-56 moved the estimates as 1e-300 did."""
    base = _poisson_fits(_panel(frame), weights="w")
    got = _poisson_fits(_scaled(frame, ["w"], c), weights="w")
    for g, b in zip(got, base, strict=True):
        _assert_terms(g.terms, b.terms, 1.0)
        for cluster in ("reg", ["unit", "time"]):
            _assert_terms(
                g.with_inference(cluster=cluster).terms,
                b.with_inference(cluster=cluster).terms,
                1.0,
            )
