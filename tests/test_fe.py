"""Tests of the fixed-effect absorption helpers (zoneimpact.estimators._fe)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from zoneimpact.errors import EstimationError
from zoneimpact.estimators._fe import (
    cluster_scores,
    cluster_ssc_k,
    demean,
    factorize,
    fe_dof,
)


def _unbalanced_panel(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(i, t) for i in range(40) for t in range(12) if rng.uniform() > 0.3]
    df = pd.DataFrame(rows, columns=["unit", "time"])
    n = len(df)
    df["x1"] = rng.normal(size=n) + 0.1 * df["time"]
    df["x2"] = rng.normal(size=n) * (1 + df["unit"] % 3)
    df["w"] = rng.uniform(0.2, 3.0, n)
    return df


def _dummies(df: pd.DataFrame) -> np.ndarray:
    """Full unit dummies plus time dummies without the first level (full rank)."""
    units = pd.get_dummies(df["unit"].astype(str)).to_numpy(float)
    times = pd.get_dummies(df["time"].astype(str), drop_first=True).to_numpy(float)
    return np.column_stack([units, times])


def _dummy_residuals(df: pd.DataFrame, col: str, weights: np.ndarray | None) -> np.ndarray:
    D = _dummies(df)
    model = (
        sm.WLS(df[col].to_numpy(), D, weights=weights)
        if weights is not None
        else sm.OLS(df[col].to_numpy(), D)
    )
    return model.fit().resid


@pytest.mark.parametrize("weighted", [False, True])
def test_demean_matches_dummy_regression_unbalanced(weighted: bool) -> None:
    df = _unbalanced_panel()
    w = df["w"].to_numpy() if weighted else None
    got = demean(
        df[["x1", "x2"]].to_numpy(), [df["unit"].to_numpy(), df["time"].to_numpy()], weights=w
    )
    for j, col in enumerate(["x1", "x2"]):
        ref = _dummy_residuals(df, col, w)
        # Same projection computed two ways; MAP stops at tol=1e-12 relative, so 1e-8 is safe.
        np.testing.assert_allclose(got[:, j], ref, atol=1e-8)


def test_demean_1d_and_input_untouched() -> None:
    df = _unbalanced_panel(3)
    x = df["x1"].to_numpy().copy()
    before = x.copy()
    out = demean(x, [df["unit"], df["time"]])
    assert out.shape == x.shape
    np.testing.assert_array_equal(x, before)
    # one-way: exactly the group-demeaned values
    one = demean(x, [df["unit"].to_numpy()])
    np.testing.assert_allclose(
        one, x - df.groupby("unit")["x1"].transform("mean").to_numpy(), atol=1e-12
    )


def test_fwl_coefficient_equals_dummy_ols() -> None:
    df = _unbalanced_panel(11)
    rng = np.random.default_rng(1)
    y = 2.0 * df["x1"] - 0.5 * df["x2"] + df["unit"] * 0.3 + rng.normal(size=len(df))
    fe = [df["unit"].to_numpy(), df["time"].to_numpy()]
    Xd = demean(df[["x1", "x2"]].to_numpy(), fe)
    yd = demean(y.to_numpy(), fe)
    b = np.linalg.lstsq(Xd, yd, rcond=None)[0]
    D = _dummies(df)
    ref = sm.OLS(y.to_numpy(), np.column_stack([df[["x1", "x2"]].to_numpy(), D])).fit().params[:2]
    np.testing.assert_allclose(b, ref, atol=1e-8)


def test_fe_dof_and_ssc_k() -> None:
    df = _unbalanced_panel()
    u, t = factorize(df["unit"]), factorize(df["time"])
    assert fe_dof([u]) == 40
    assert fe_dof([u, t]) == 40 + 12 - 1  # connected panel: one redundancy
    # two disconnected blocks of units and periods -> two redundancies
    u2 = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    t2 = np.array([0, 1, 0, 1, 2, 3, 2, 3])
    assert fe_dof([u2, t2]) == 4 + 4 - 2
    # fixest: unit + time FE clustered by unit -> K = n_coef + T (pyfixest get_ssc)
    assert cluster_ssc_k(3, [u, t], u) == 3 + 12


def test_cluster_scores_sums_rows() -> None:
    s = np.arange(12, dtype=float).reshape(6, 2)
    cl = np.array([0, 1, 0, 2, 1, 0])
    np.testing.assert_allclose(
        cluster_scores(s, cl), [[0 + 4 + 10, 1 + 5 + 11], [2 + 8, 3 + 9], [6, 7]]
    )


def test_demean_bad_input() -> None:
    with pytest.raises(EstimationError, match="shape"):
        demean(np.ones(5), [np.arange(4)])
    with pytest.raises(EstimationError, match="positive"):
        demean(np.ones(3), [np.arange(3)], weights=np.array([1.0, -1.0, 1.0]))
