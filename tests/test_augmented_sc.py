"""Ridge augmented SC (Ben-Michael, Feller & Rothstein 2021)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoneimpact.errors import EstimationError
from zoneimpact.estimators import augmented_sc as asc
from zoneimpact.estimators import synthetic_control as sc
from zoneimpact.estimators._simplex import simplex_qp
from zoneimpact.panel import Panel


def prop99(canonical) -> Panel:
    df = pd.read_csv(canonical / "california_prop99.csv", sep=";")
    return Panel.from_frame(
        df, unit="State", time="Year", outcomes="PacksPerCapita", treatment="treated"
    )


def test_large_lambda_is_plain_sc(canonical):
    p = prop99(canonical)
    big = asc.fit(p, outcome="PacksPerCapita", lambda_=1e12, se=False)
    Y = p.wide("PacksPerCapita")
    pre = Y.columns < 1989
    w, _ = simplex_qp(
        Y.drop("California").loc[:, pre].to_numpy().T, Y.loc["California", pre].to_numpy()
    )
    gap = Y.loc["California", ~pre].to_numpy() - w @ Y.drop("California").loc[:, ~pre].to_numpy()
    # lambda -> infinity removes the ridge correction (eq. 12): plain SC on the
    # pre-period outcomes; 1e-6 covers the 1e-12-scale remainder.
    assert big.estimate == pytest.approx(gap.mean(), abs=1e-6)
    assert big.sc_weights.to_numpy() == pytest.approx(w, abs=1e-10)


def test_ridge_improves_pre_fit_and_runs_cv(canonical):
    p = prop99(canonical)
    r = asc.fit(p, outcome="PacksPerCapita")
    plain = sc.fit(p, outcome="PacksPerCapita", placebos=False)
    assert r.lambda_ > 0
    assert r.info["pre_rmspe"] < plain.info["pre_rmspe"]
    assert r.donor_weights.sum() == pytest.approx(1.0, abs=1e-8)  # ridge adjustment sums to 0
    assert np.isfinite(r.se) and r.se > 0
    # Our value (no published reference for this setting): ATT about -13 packs.
    assert -20 < r.estimate < -8


def test_errors(canonical):
    with pytest.raises(EstimationError):
        asc.fit(prop99(canonical), outcome="PacksPerCapita", treated_unit="Atlantis")
